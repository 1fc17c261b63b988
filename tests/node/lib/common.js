'use strict';
// Shared by the backend and the clients: flag parsing, JSON output lines, header recording and
// the byte pattern of generated bodies.

const http = require('node:http');
const net = require('node:net');
const { parseArgs } = require('node:util');

// Headers the backend records on every handshake and upgrade: the client-identity headers a
// proxy adds or must replace, and anything that looks like a trusted header (any case, `_` or
// `-` separators), so a forged one that slipped through is visible.
const RECORDED = new Set([
  'x-forwarded-for',
  'x-real-ip',
  'x-forwarded-proto',
  'x-forwarded-host',
  'forwarded',
  'x-request-id',
]);
const TRUSTED = /^x[-_]flowgate[-_]/i;

/** True when a header name (any case) is one the fixtures record. */
function isRecorded(name) {
  const lower = name.toLowerCase();
  return RECORDED.has(lower) || TRUSTED.test(lower);
}

/**
 * Recorded headers of a request, from `rawHeaders` so repeated headers stay separate:
 * `{ "<lower-case name as sent>": ["value", ...] }`.
 */
function recordHeaders(rawHeaders) {
  const out = {};
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i].toLowerCase();
    if (!isRecorded(name)) continue;
    (out[name] ||= []).push(rawHeaders[i + 1]);
  }
  return out;
}

/** Every header of a request, in order: `[["<lower-case name>", "value"], ...]`. */
function allHeaders(rawHeaders) {
  const out = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    out.push([rawHeaders[i].toLowerCase(), rawHeaders[i + 1]]);
  }
  return out;
}

/** Byte `i` of every generated body is `i % 251`, so any slice can be checked without a copy. */
function patternBytes(offset, length) {
  const buf = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) buf[i] = (offset + i) % 251;
  return buf;
}

// One period-aligned copy of the pattern, long enough that any chunk up to CHUNK bytes is a slice.
const CHUNK = 64 * 1024;
const PATTERN = patternBytes(0, CHUNK + 251);

/** `length` bytes of the pattern from `offset`; a shared slice when it fits (never mutate it). */
function patternSlice(offset, length) {
  if (length > CHUNK) return patternBytes(offset, length);
  const start = offset % 251;
  return PATTERN.subarray(start, start + length);
}

/** Index of the first byte of `buf` that breaks the pattern, or -1. */
function patternMismatch(buf, offset) {
  for (let i = 0; i < buf.length; i++) {
    if (buf[i] !== (offset + i) % 251) return offset + i;
  }
  return -1;
}

/**
 * The PROXY protocol header (HAProxy's spec, v1 text or v2 binary, TCP over IPv4 or IPv6) that
 * an L4 load balancer would put in front of a connection from `src` to `dst`
 * (`{ address, port }` each; both of one family).
 */
function proxyHeader(version, src, dst) {
  const v6 = net.isIPv6(src.address);
  // The header has one family: an IPv6 client reached over IPv4 gets the IPv4-mapped form.
  if (v6 && net.isIPv4(dst.address)) dst = { address: `::ffff:${dst.address}`, port: dst.port };
  if (v6 !== net.isIPv6(dst.address)) throw new Error('PROXY header: an IPv4 source needs an IPv4 destination');
  if (version === 'v1') {
    return Buffer.from(`PROXY ${v6 ? 'TCP6' : 'TCP4'} ${src.address} ${dst.address} ${src.port} ${dst.port}\r\n`);
  }
  const addr = (a) => (v6 ? ipv6Bytes(a) : Buffer.from(a.split('.').map(Number)));
  const ports = Buffer.alloc(4);
  ports.writeUInt16BE(src.port, 0);
  ports.writeUInt16BE(dst.port, 2);
  const body = Buffer.concat([addr(src.address), addr(dst.address), ports]);
  const head = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, v6 ? 0x21 : 0x11, 0, 0]);
  head.writeUInt16BE(body.length, 14);
  return Buffer.concat([head, body]);
}

function ipv6Bytes(address) {
  // A dotted IPv4 tail (::ffff:127.0.0.1) is two groups.
  const dotted = /^(.*:)(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(address);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(2).map(Number);
    address = `${dotted[1]}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [left, right = ''] = address.split('::');
  const l = left ? left.split(':') : [];
  const r = right ? right.split(':') : [];
  const groups = address.includes('::') ? [...l, ...Array(8 - l.length - r.length).fill('0'), ...r] : l;
  const buf = Buffer.alloc(16);
  groups.forEach((g, i) => buf.writeUInt16BE(parseInt(g, 16), i * 2));
  return buf;
}

/** `--proxy-source ADDRESS:PORT` (IPv6 in brackets) → `{ address, port }`; usage error otherwise. */
function addressFlag(raw) {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(raw || '');
  if (!m || !net.isIP(m[1]) || Number(m[2]) > 65535) usageError(`--proxy-source takes ADDRESS:PORT, got ${JSON.stringify(raw)}`);
  return { address: m[1], port: Number(m[2]) };
}

/**
 * An http.Agent whose every new connection starts with a PROXY header claiming to come from
 * `src`: socket.io-client (polling and the WebSocket upgrade) and ws both take it as `agent`.
 */
function proxyProtocolAgent(version, src, keepAlive = false) {
  class ProxyProtocolAgent extends http.Agent {
    createConnection(options, callback) {
      const dst = { address: net.isIP(options.host) ? options.host : '127.0.0.1', port: Number(options.port) };
      let header;
      try {
        header = proxyHeader(version, src, dst);
      } catch (e) {
        // Reported as a connection error, like any other failure to connect.
        const failed = new net.Socket();
        process.nextTick(() => failed.destroy(e));
        return failed;
      }
      const socket = net.connect({ host: options.host, port: options.port });
      // Queued before the request bytes, so it is the first thing on the wire.
      socket.write(header);
      void callback; // returning the socket is the synchronous form of the callback
      return socket;
    }
  }
  return new ProxyProtocolAgent({ keepAlive });
}

/** Parses flags with `node:util`; a usage error prints a JSON error line and exits 2. */
function flags(options, usage) {
  try {
    return parseArgs({ options, strict: true, allowPositionals: false }).values;
  } catch (e) {
    usageError(`${e.message}; ${usage}`);
  }
}

/** Prints `{"ok":false,"error":"usage: …"}` and exits 2. */
function usageError(message) {
  process.stdout.write(`${JSON.stringify({ ok: false, error: `usage: ${message}` })}\n`);
  process.exit(2);
}

/** A non-negative integer flag, or the default; anything else is a usage error. */
function intFlag(values, name, dflt) {
  const raw = values[name];
  if (raw === undefined) return dflt;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) usageError(`--${name} takes a non-negative integer`);
  return n;
}

/** A `true|false` flag, or the default. */
function boolFlag(values, name, dflt) {
  const raw = values[name];
  if (raw === undefined) return dflt;
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  usageError(`--${name} takes true or false`);
}

/** `--header 'Name: value'` (repeatable) → `{ Name: "value" }`. */
function headerFlags(list) {
  const out = {};
  for (const h of list || []) {
    const colon = h.indexOf(':');
    if (colon <= 0) usageError(`--header takes 'Name: value', got ${JSON.stringify(h)}`);
    out[h.slice(0, colon).trim()] = h.slice(colon + 1).trim();
  }
  return out;
}

/** One JSON line on stdout. */
function line(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

/** One log line on stderr. */
function log(...parts) {
  process.stderr.write(`${new Date().toISOString()} ${parts.join(' ')}\n`);
}

/** Resolves after `ms`. */
function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Races `promise` against a deadline; rejects with `Error(what + " timed out")`. */
function withDeadline(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

module.exports = {
  isRecorded,
  recordHeaders,
  allHeaders,
  patternBytes,
  patternSlice,
  CHUNK,
  patternMismatch,
  proxyHeader,
  proxyProtocolAgent,
  addressFlag,
  flags,
  usageError,
  intFlag,
  boolFlag,
  headerFlags,
  line,
  log,
  sleep,
  withDeadline,
};
