#!/usr/bin/env node
'use strict';
// A real socket.io-client 4.8 driven by flags. Prints one JSON result line on stdout (the
// reconnect watch prints one line per event, then the result line) and exits 0 on success,
// 1 when the scenario failed (the line says why), 2 on a usage error. Logs go to stderr.
//
//   node tests/node/chat-client.js --url http://127.0.0.1:P --query 'siteid=s&jsSessionId=j'
//        [--path /socket.io] [--transports polling,websocket] [--upgrade true|false]
//        [--header 'Name: value' ...] [--timeout-ms 10000] [--proxy-protocol v1|v2 [--proxy-source A:P]]
//        [--rooms | --reconnect-watch [--count N] [--watch-ms N] | --hold-ms N | --echo-bytes N]
//
// See README.md beside this file for every mode and its output.

const http = require('node:http');
const { io } = require('socket.io-client');
const c = require('./lib/common');

const USAGE =
  'chat-client.js --url URL [--path P] [--query Q] [--transports polling,websocket] ' +
  '[--upgrade true|false] [--header "Name: value" ...] [--timeout-ms N] ' +
  '[--proxy-protocol v1|v2 [--proxy-source ADDR:PORT]] ' +
  '[--rooms [--room R] [--query2 Q] | --reconnect-watch [--count N] [--watch-ms N] | ' +
  '--hold-ms N | --echo-bytes N [--echo-kind binary|text]]';
const args = c.flags(
  {
    url: { type: 'string' },
    path: { type: 'string', default: '/socket.io' },
    query: { type: 'string', default: '' },
    query2: { type: 'string' },
    transports: { type: 'string', default: 'polling,websocket' },
    upgrade: { type: 'string' },
    header: { type: 'string', multiple: true },
    'timeout-ms': { type: 'string' },
    reconnection: { type: 'string' },
    'reconnect-delay-ms': { type: 'string' },
    'keep-alive': { type: 'string' },
    'proxy-protocol': { type: 'string' },
    'proxy-source': { type: 'string', default: '203.0.113.7:40000' },
    rooms: { type: 'boolean' },
    room: { type: 'string', default: 'lobby' },
    'reconnect-watch': { type: 'boolean' },
    count: { type: 'string' },
    'watch-ms': { type: 'string' },
    'hold-ms': { type: 'string' },
    'echo-bytes': { type: 'string' },
    'echo-kind': { type: 'string', default: 'binary' },
  },
  USAGE,
);
if (!args.url) c.usageError(`--url is required; ${USAGE}`);
const modes = ['rooms', 'reconnect-watch', 'hold-ms', 'echo-bytes'].filter((m) => args[m] !== undefined);
if (modes.length > 1) c.usageError(`one mode at a time, got --${modes.join(' --')}`);
// The mode's name in every output line.
const MODE = { rooms: 'rooms', 'reconnect-watch': 'reconnect-watch', 'hold-ms': 'hold', 'echo-bytes': 'echo' }[modes[0]] || 'connect';
const TRANSPORTS = args.transports.split(',').map((t) => t.trim()).filter(Boolean);
if (!TRANSPORTS.length || TRANSPORTS.some((t) => t !== 'polling' && t !== 'websocket')) {
  c.usageError('--transports takes polling and/or websocket, comma-separated');
}
const UPGRADE = c.boolFlag(args, 'upgrade', true);
// An upgrade is expected when the session starts on polling and may move to WebSocket.
const EXPECT_UPGRADE = UPGRADE && TRANSPORTS[0] === 'polling' && TRANSPORTS.includes('websocket');
const TIMEOUT = c.intFlag(args, 'timeout-ms', 10000);
const HEADERS = c.headerFlags(args.header);
const RECONNECT_DELAY = c.intFlag(args, 'reconnect-delay-ms', 200);
const KEEP_ALIVE = c.boolFlag(args, 'keep-alive', false);
if (args['proxy-protocol'] !== undefined && !['v1', 'v2'].includes(args['proxy-protocol'])) {
  c.usageError('--proxy-protocol takes v1 or v2');
}
// Every connection of the client (each poll, the upgrade) starts with a PROXY header, as behind
// an L4 load balancer; otherwise Node's default (a new connection per poll) or keep-alive.
function makeAgent() {
  if (args['proxy-protocol']) return c.proxyProtocolAgent(args['proxy-protocol'], c.addressFlag(args['proxy-source']), KEEP_ALIVE);
  return KEEP_ALIVE ? new http.Agent({ keepAlive: true }) : null;
}
if (!['binary', 'text'].includes(args['echo-kind'])) c.usageError('--echo-kind takes binary or text');

const started = Date.now();
const since = () => Date.now() - started;

/** Writes the result line and exits once it is flushed. */
function finish(result, code) {
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(code));
}

/** A TransportError's details worth reporting (status code, start of the body). */
function errorDetails(err) {
  const out = { message: err && err.message };
  if (err && err.description !== undefined) {
    out.description = typeof err.description === 'object' ? String(err.description.message || err.description) : err.description;
  }
  const body = err && err.context && typeof err.context.responseText === 'string' ? err.context.responseText : null;
  if (body) out.body = body.split('\n')[0].slice(0, 200);
  if (err && err.data !== undefined) out.data = err.data;
  return out;
}

/** A socket.io-client socket with its own manager and a bounded trace of what happened. */
function makeClient(query, { reconnection }) {
  const agent = makeAgent();
  const socket = io(args.url, {
    path: args.path,
    query: Object.fromEntries(new URLSearchParams(query)),
    transports: TRANSPORTS,
    upgrade: UPGRADE,
    extraHeaders: HEADERS,
    reconnection,
    reconnectionDelay: RECONNECT_DELAY,
    reconnectionDelayMax: Math.max(RECONNECT_DELAY, 1000),
    timeout: TIMEOUT,
    forceNew: true,
    ...(agent ? { agent } : {}),
  });
  const trace = [];
  const note = (entry) => {
    if (trace.length < 100) trace.push({ at_ms: since(), ...entry });
  };
  socket.io.on('error', (e) => note({ type: 'error', ...errorDetails(e) }));
  socket.io.on('reconnect_attempt', (n) => note({ type: 'reconnect_attempt', attempt: n }));
  socket.on('connect_error', (e) => note({ type: 'connect_error', ...errorDetails(e) }));
  socket.on('disconnect', (reason, details) =>
    note({ type: 'disconnect', reason, ...(details ? errorDetails(details) : {}) }),
  );
  socket.on('connect', () => {
    note({ type: 'connect', transport: socket.io.engine.transport.name });
    socket.io.engine.on('upgradeError', (e) => note({ type: 'upgrade_error', ...errorDetails(e) }));
  });
  return { socket, trace };
}

/** Resolves on the next `connect` (or at once when connected). */
function connected(socket) {
  if (socket.connected) return Promise.resolve();
  return new Promise((resolve) => socket.once('connect', resolve));
}

/** Resolves once the engine runs on WebSocket; rejects if the socket disconnects first. */
function upgraded(socket) {
  const engine = socket.io.engine;
  if (engine.transport.name === 'websocket') return Promise.resolve();
  return new Promise((resolve, reject) => {
    engine.once('upgrade', resolve);
    socket.once('disconnect', (reason) => reject(new Error(`disconnected before the upgrade: ${reason}`)));
  });
}

/** Connects, waits for the upgrade when one is expected, and asks `whoami`. */
async function open(client) {
  await c.withDeadline(connected(client.socket), TIMEOUT, 'connect');
  if (EXPECT_UPGRADE) await c.withDeadline(upgraded(client.socket), TIMEOUT, 'upgrade to websocket');
  return whoami(client);
}

function whoami(client) {
  return client.socket.timeout(TIMEOUT).emitWithAck('whoami');
}

/** The fields of a whoami answer that every mode reports. */
function summary(me, client) {
  return {
    node: me.node,
    sid: me.sid,
    transport: me.transport,
    client_transport: client.socket.io.engine ? client.socket.io.engine.transport.name : null,
    upgraded: me.transport === 'websocket' && me.handshake.transport === 'polling',
  };
}

function failure(error, clients, extra = {}) {
  return {
    ok: false,
    mode: MODE,
    error: error instanceof Error ? error.message : String(error),
    ...extra,
    trace: clients.flatMap((cl, i) => cl.trace.map((t) => (clients.length > 1 ? { client: i + 1, ...t } : t))),
    elapsed_ms: since(),
  };
}

// --------------------------------------------------------------------------------------------

async function modeConnect() {
  const client = makeClient(args.query, { reconnection: c.boolFlag(args, 'reconnection', true) });
  try {
    const me = await open(client);
    const connectErrors = client.trace.filter((t) => t.type === 'connect_error').length;
    client.socket.disconnect();
    return [
      {
        ok: true,
        mode: MODE,
        ...summary(me, client),
        path: me.path,
        handshake: me.handshake,
        upgrade: me.upgrade,
        connect_errors: connectErrors,
        elapsed_ms: since(),
      },
      0,
    ];
  } catch (e) {
    client.socket.disconnect();
    return [failure(e, [client]), 1];
  }
}

/** Resolves with the first `said` event on `socket`. */
function nextSaid(socket) {
  return new Promise((resolve) => socket.once('said', resolve));
}

async function modeRooms() {
  const reconnection = c.boolFlag(args, 'reconnection', true);
  const clients = [makeClient(args.query, { reconnection }), makeClient(args.query2 ?? args.query, { reconnection })];
  const [a, b] = clients;
  const room = args.room;
  const result = { mode: MODE, room, nodes: [null, null], transports: [null, null], delivered: [false, false], peers: [null, null] };
  try {
    const me = await Promise.all(clients.map(open));
    result.nodes = me.map((m) => m.node);
    result.transports = me.map((m) => m.transport);
    await Promise.all(clients.map((cl) => cl.socket.timeout(TIMEOUT).emitWithAck('join', room)));
    // Each says one line; the other must hear it.
    for (const [i, [from, to]] of [[a, b], [b, a]].entries()) {
      const heard = nextSaid(to.socket);
      const text = `hello from client ${i + 1}`;
      const ack = await from.socket.timeout(TIMEOUT).emitWithAck('say', room, text);
      result.peers[i] = ack.peers;
      const said = await c.withDeadline(heard, TIMEOUT, `client ${2 - i} hearing client ${i + 1}`);
      result.delivered[i] = said.text === text;
    }
    clients.forEach((cl) => cl.socket.disconnect());
    const ok = result.delivered.every(Boolean);
    return [ok ? { ok, ...result, elapsed_ms: since() } : failure('say delivered with the wrong text', clients, result), ok ? 0 : 1];
  } catch (e) {
    clients.forEach((cl) => cl.socket.disconnect());
    return [failure(e, clients, result), 1];
  }
}

async function modeWatch() {
  const count = args.count === undefined ? null : c.intFlag(args, 'count', 0);
  const watchMs = c.intFlag(args, 'watch-ms', 0);
  const client = makeClient(args.query, { reconnection: c.boolFlag(args, 'reconnection', true) });
  const { socket } = client;
  const connects = [];
  let disconnects = 0;
  let connectErrors = 0;
  let done;
  const finished = new Promise((resolve) => {
    done = resolve;
  });
  let ended = false;
  const end = (stoppedBy) => {
    if (ended) return;
    ended = true;
    socket.off('disconnect');
    socket.disconnect();
    const reached = count === null || connects.filter((x) => x.node).length >= count;
    const result = { ok: reached, mode: MODE, stopped_by: stoppedBy, connects, disconnects, connect_errors: connectErrors, elapsed_ms: since() };
    if (!reached) result.error = `${connects.length} of ${count} connects before ${stoppedBy}`;
    done([result, reached ? 0 : 1]);
  };

  socket.on('connect', async () => {
    const n = connects.length + 1;
    const entry = { n, node: null, sid: null, transport: null, at_ms: since() };
    connects.push(entry);
    try {
      if (EXPECT_UPGRADE) await c.withDeadline(upgraded(socket), TIMEOUT, 'upgrade to websocket');
      const me = await whoami(client);
      Object.assign(entry, { node: me.node, sid: me.sid, transport: me.transport });
      c.line({ event: 'connect', ...entry });
      if (count !== null && connects.filter((x) => x.node).length >= count) end('count');
    } catch (e) {
      entry.error = e.message;
      c.line({ event: 'connect', ...entry });
    }
  });
  socket.on('disconnect', (reason, details) => {
    disconnects += 1;
    c.line({ event: 'disconnect', reason, ...(details ? errorDetails(details) : {}), at_ms: since() });
  });
  socket.on('connect_error', (e) => {
    connectErrors += 1;
    c.line({ event: 'connect_error', ...errorDetails(e), at_ms: since() });
  });
  process.on('SIGTERM', () => end('SIGTERM'));
  process.on('SIGINT', () => end('SIGINT'));
  if (watchMs > 0) setTimeout(() => end('watch-ms'), watchMs);
  return finished;
}

async function modeHold() {
  const hold = c.intFlag(args, 'hold-ms', 0);
  // A reconnect would hide the closed connection the hold is there to detect.
  const client = makeClient(args.query, { reconnection: c.boolFlag(args, 'reconnection', false) });
  const { socket } = client;
  let first;
  try {
    first = await open(client);
  } catch (e) {
    socket.disconnect();
    return [failure(e, [client]), 1];
  }
  // Tells a test driving the hold (killing a node, signalling the proxy) that it has begun.
  c.line({ event: 'holding', ...summary(first, client), hold_ms: hold, at_ms: since() });
  const idleFrom = Date.now();
  const dropped = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), hold);
    socket.once('disconnect', (reason, details) => {
      clearTimeout(timer);
      resolve({ reason, ...(details ? errorDetails(details) : {}), after_idle_ms: Date.now() - idleFrom });
    });
  });
  const base = { mode: MODE, hold_ms: hold, ...summary(first, client), first };
  if (dropped) {
    return [failure('disconnected during hold', [client], { ...base, disconnect: dropped }), 1];
  }
  try {
    const second = await whoami(client);
    const same = second.sid === first.sid;
    socket.disconnect();
    const result = { ok: same, ...base, second: { node: second.node, sid: second.sid, transport: second.transport }, same_sid: same, elapsed_ms: since() };
    if (!same) result.error = 'a different session answered after the hold';
    return [result, same ? 0 : 1];
  } catch (e) {
    socket.disconnect();
    return [failure(e, [client], base), 1];
  }
}

async function modeEcho() {
  const bytes = c.intFlag(args, 'echo-bytes', 0);
  const kind = args['echo-kind'];
  const client = makeClient(args.query, { reconnection: c.boolFlag(args, 'reconnection', true) });
  try {
    const me = await open(client);
    const payload = kind === 'binary' ? c.patternBytes(0, bytes) : 'x'.repeat(bytes);
    const sentAt = Date.now();
    const back = await client.socket.timeout(TIMEOUT).emitWithAck('echo', payload);
    const match = kind === 'binary' ? Buffer.isBuffer(back) && back.equals(payload) : back === payload;
    const received = Buffer.isBuffer(back) || typeof back === 'string' ? back.length : null;
    const result = { ok: match, mode: MODE, kind, bytes, received_bytes: received, match, ...summary(me, client), round_trip_ms: Date.now() - sentAt, elapsed_ms: since() };
    client.socket.disconnect();
    if (!match) result.error = 'the echo differs from what was sent';
    return [result, match ? 0 : 1];
  } catch (e) {
    client.socket.disconnect();
    return [failure(e, [client], { kind, bytes }), 1];
  }
}

const run = { connect: modeConnect, rooms: modeRooms, 'reconnect-watch': modeWatch, hold: modeHold, echo: modeEcho }[MODE];
run().then(
  ([result, code]) => finish(result, code),
  (e) => finish({ ok: false, mode: MODE, error: `unexpected: ${e.stack || e}` }, 1),
);
