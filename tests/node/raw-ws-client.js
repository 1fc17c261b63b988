#!/usr/bin/env node
'use strict';
// A raw WebSocket client (npm `ws`) for the backend's /raw-ws echo endpoint. Connects with extra
// headers, optionally asks who answered, idles, then sends one message and reports whether the
// echo came back, or when and how the connection closed. One JSON line on stdout; exit 0 when
// the echo came back, 1 when it did not (closed, refused, timed out), 2 on a usage error.
//
//   node tests/node/raw-ws-client.js --url ws://127.0.0.1:P/raw-ws [--header 'Name: value' ...]
//        [--whoami] [--idle-ms N] [--message TEXT | --bytes N] [--timeout-ms 10000]
//        [--proxy-protocol v1|v2 [--proxy-source 203.0.113.7:40000]]

const WebSocket = require('ws');
const c = require('./lib/common');

const USAGE =
  'raw-ws-client.js --url ws://HOST:PORT/raw-ws [--header "Name: value" ...] [--whoami] ' +
  '[--idle-ms N] [--message TEXT | --bytes N] [--timeout-ms N] [--proxy-protocol v1|v2 [--proxy-source A:P]]';
const args = c.flags(
  {
    url: { type: 'string' },
    header: { type: 'string', multiple: true },
    whoami: { type: 'boolean' },
    'idle-ms': { type: 'string' },
    message: { type: 'string' },
    bytes: { type: 'string' },
    'timeout-ms': { type: 'string' },
    'proxy-protocol': { type: 'string' },
    'proxy-source': { type: 'string', default: '203.0.113.7:40000' },
  },
  USAGE,
);
if (!args.url) c.usageError(`--url is required; ${USAGE}`);
if (args.message !== undefined && args.bytes !== undefined) c.usageError('--message or --bytes, not both');
const IDLE = c.intFlag(args, 'idle-ms', 0);
const TIMEOUT = c.intFlag(args, 'timeout-ms', 10000);
const BYTES = args.bytes === undefined ? null : c.intFlag(args, 'bytes', 0);
const MESSAGE = BYTES === null ? Buffer.from(args.message ?? 'hello raw websocket') : c.patternBytes(0, BYTES);
const BINARY = BYTES !== null;
if (args['proxy-protocol'] !== undefined && !['v1', 'v2'].includes(args['proxy-protocol'])) {
  c.usageError('--proxy-protocol takes v1 or v2');
}
// The connection starts with a PROXY header, as behind an L4 load balancer.
const AGENT = args['proxy-protocol'] ? c.proxyProtocolAgent(args['proxy-protocol'], c.addressFlag(args['proxy-source'])) : undefined;

const started = Date.now();
let lastActivity = started;
let phase = 'connect';
let openedAt = null;
const result = { ok: false, url: args.url, status: null, whoami: null, idle_ms: IDLE, echoed: false, close: null };

let finished = false;
function finish(code, error) {
  if (finished) return;
  finished = true;
  if (error) result.error = error;
  result.elapsed_ms = Date.now() - started;
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(code));
}

const ws = new WebSocket(args.url, {
  headers: c.headerFlags(args.header),
  perMessageDeflate: false,
  handshakeTimeout: TIMEOUT,
  ...(AGENT ? { agent: AGENT } : {}),
});
let waiter = null; // resolves with the next message

ws.on('upgrade', (res) => {
  result.status = res.statusCode;
});
ws.on('unexpected-response', (_req, res) => {
  result.status = res.statusCode;
  res.resume();
  finish(1, `upgrade refused with ${res.statusCode}`);
});
ws.on('error', (e) => {
  if (phase === 'connect') finish(1, `connect failed: ${e.message}`);
  else c.log(`raw-ws-client: ${e.message}`);
});
ws.on('message', (data, isBinary) => {
  lastActivity = Date.now();
  if (waiter) waiter({ data, isBinary });
});
ws.on('close', (code, reason) => {
  const now = Date.now();
  result.close = {
    code,
    reason: reason.toString(),
    during: phase,
    since_open_ms: openedAt === null ? null : now - openedAt,
    since_last_activity_ms: now - lastActivity,
  };
  if (phase !== 'done') finish(1, `closed during ${phase}`);
});

/** The next message, or a rejection after the deadline. */
function nextMessage(what) {
  return c.withDeadline(
    new Promise((resolve) => {
      waiter = (m) => {
        waiter = null;
        resolve(m);
      };
    }),
    TIMEOUT,
    what,
  );
}

function send(data, binary) {
  lastActivity = Date.now();
  ws.send(data, { binary });
}

ws.on('open', async () => {
  openedAt = Date.now();
  lastActivity = openedAt;
  try {
    if (args.whoami) {
      phase = 'whoami';
      const reply = nextMessage('whoami');
      send('__whoami__', false);
      result.whoami = JSON.parse((await reply).data.toString());
    }
    phase = 'idle';
    // Tells a test driving the idle period (killing a node, signalling the proxy) it has begun.
    process.stdout.write(`${JSON.stringify({ event: 'idle', idle_ms: IDLE, at_ms: Date.now() - started })}\n`);
    await c.sleep(IDLE);
    phase = 'echo';
    const reply = nextMessage('echo');
    send(MESSAGE, BINARY);
    const { data, isBinary } = await reply;
    result.echoed = isBinary === BINARY && Buffer.from(data).equals(MESSAGE);
    if (!result.echoed) {
      finish(1, 'the echo differs from what was sent');
      return;
    }
    phase = 'done';
    result.ok = true;
    ws.close(1000, 'done');
    const closed = new Promise((resolve) => ws.once('close', resolve));
    await c.withDeadline(closed, TIMEOUT, 'closing handshake').catch(() => ws.terminate());
    finish(0);
  } catch (e) {
    // A close already reported the failure; otherwise a deadline passed.
    if (result.close === null) {
      ws.terminate();
      finish(1, e.message);
    }
  }
});
