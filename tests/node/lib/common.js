'use strict';
// Shared by the backend and the clients: flag parsing, JSON output lines, header recording and
// the byte pattern of generated bodies.

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
