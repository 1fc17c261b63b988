#!/usr/bin/env node
'use strict';
// A real Socket.IO 4.8 chat backend (npm `socket.io`), plus the plain HTTP routes and a raw
// WebSocket endpoint (npm `ws`) that flowgate's integration tests need behind the proxy.
//
//   node tests/node/chat-backend.js --port 0 --node-id A [--ping-interval-ms N] [--ping-timeout-ms N]
//
// Prints exactly one line on stdout once listening: {"ready":true,"port":P,"node":"A"}.
// Everything else goes to stderr. See README.md beside this file for routes and replies.

const http = require('node:http');
const crypto = require('node:crypto');
const zlib = require('node:zlib');
const { Server } = require('socket.io');
const { WebSocketServer } = require('ws');
const c = require('./lib/common');

const USAGE =
  'chat-backend.js --port N --node-id ID [--host 127.0.0.1] [--ping-interval-ms N] ' +
  '[--ping-timeout-ms N] [--sio-path P ...] [--keep-alive-timeout-ms N] [--max-buffer-bytes N]';
const args = c.flags(
  {
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    'node-id': { type: 'string' },
    'ping-interval-ms': { type: 'string' },
    'ping-timeout-ms': { type: 'string' },
    'sio-path': { type: 'string', multiple: true },
    'keep-alive-timeout-ms': { type: 'string' },
    'max-buffer-bytes': { type: 'string' },
  },
  USAGE,
);
if (!args['node-id']) c.usageError(`--node-id is required; ${USAGE}`);
const NODE = args['node-id'];
const PORT = c.intFlag(args, 'port', 0);
if (PORT > 65535) c.usageError('--port must be at most 65535');
// Socket.IO's own defaults (25 s / 20 s) unless the test shortens or lengthens them.
const PING_INTERVAL = c.intFlag(args, 'ping-interval-ms', 25000);
const PING_TIMEOUT = c.intFlag(args, 'ping-timeout-ms', 20000);
// Node's own default, so a proxy's upstream pool meets the usual 5 s keep-alive close.
const KEEP_ALIVE_TIMEOUT = c.intFlag(args, 'keep-alive-timeout-ms', 5000);
// 10 MB payloads must pass on both transports; polling carries binary as base64 (4/3).
const MAX_BUFFER = c.intFlag(args, 'max-buffer-bytes', 32 * 1024 * 1024);
// The default path, and the same server under the widget's session prefix so flowgate's trusted
// headers reach the handshake there.
const SIO_PATHS = (args['sio-path'] || ['/socket.io', '/public_FlowWidget/socket.io']).map((p) =>
  p.replace(/\/+$/, ''),
);

// ---------------------------------------------------------------------------------------------
// Plain HTTP routes. A route is chosen by the last path segment, so `/echo` and
// `/public_FlowWidget/chat/echo` are the same route (the second one is a session route to
// flowgate and carries its trusted headers).

const server = http.createServer({
  // Long request targets must reach the route, so the proxy's own limit is what a test sees.
  maxHeaderSize: 1024 * 1024,
  keepAliveTimeout: KEEP_ALIVE_TIMEOUT,
});

/** Parses the request target; null when it cannot be. */
function target(req) {
  try {
    return new URL(req.url, 'http://backend.invalid');
  } catch {
    return null;
  }
}

function routeOf(pathname) {
  const segments = pathname.split('/').filter((s) => s !== '');
  return segments.length ? segments[segments.length - 1] : '';
}

/** An integer query parameter in [0, max], or the default. */
function param(url, name, dflt, max) {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) return dflt;
  return Math.min(n, max);
}

function json(res, status, body) {
  const bytes = Buffer.from(`${JSON.stringify(body)}\n`);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': bytes.length,
    'x-backend-node': NODE,
  });
  res.end(bytes);
}

/** Reads the whole body, counting it and hashing it without keeping it. */
function drain(req) {
  return new Promise((resolve, reject) => {
    const hash = crypto.createHash('sha256');
    let bytes = 0;
    req.on('data', (chunk) => {
      bytes += chunk.length;
      hash.update(chunk);
    });
    req.on('end', () => resolve({ bytes, sha256: hash.digest('hex') }));
    req.on('error', reject);
  });
}

const routes = {
  // Method, target and every header as received, plus the body's size.
  async echo(req, res, url) {
    const body = await drain(req);
    json(res, 200, {
      node: NODE,
      route: 'echo',
      method: req.method,
      path: url.pathname,
      query: url.search ? url.search.slice(1) : null,
      http_version: req.httpVersion,
      headers: c.allHeaders(req.rawHeaders),
      recorded: c.recordHeaders(req.rawHeaders),
      remote: req.socket.remoteAddress,
      body_bytes: body.bytes,
    });
  },

  // Answers after hold_ms; a client (or proxy) that gives up first is logged, not answered.
  longpoll(req, res, url) {
    const hold = param(url, 'hold_ms', 0, 3600000);
    const started = Date.now();
    const timer = setTimeout(() => json(res, 200, { node: NODE, route: 'longpoll', held_ms: hold }), hold);
    res.on('close', () => {
      if (!res.writableFinished) {
        clearTimeout(timer);
        c.log(`longpoll abandoned by the client after ${Date.now() - started} ms (hold_ms=${hold})`);
      }
    });
    req.resume();
  },

  // events `tick` events, the first at once, then one every interval_ms; an `end` event; then
  // the stream stays open hold_ms more before it ends.
  sse(req, res, url) {
    const events = param(url, 'events', 3, 100000);
    const interval = param(url, 'interval_ms', 100, 3600000);
    const hold = param(url, 'hold_ms', 0, 3600000);
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      'x-backend-node': NODE,
    });
    let n = 0;
    let timer = null;
    const tick = () => {
      n += 1;
      res.write(`id: ${n}\nevent: tick\ndata: ${JSON.stringify({ n, of: events, node: NODE })}\n\n`);
      if (n < events) {
        timer = setTimeout(tick, interval);
      } else {
        res.write(`event: end\ndata: ${JSON.stringify({ events, node: NODE })}\n\n`);
        timer = setTimeout(() => res.end(), hold);
      }
    };
    if (events > 0) {
      tick();
    } else {
      res.write(`event: end\ndata: ${JSON.stringify({ events, node: NODE })}\n\n`);
      timer = setTimeout(() => res.end(), hold);
    }
    res.on('close', () => clearTimeout(timer));
    req.resume();
  },

  // bytes of the pattern (byte i is i % 251), chunked unless content_length=1.
  download(req, res, url) {
    const total = param(url, 'bytes', 1024, 1 << 30);
    const headers = {
      'content-type': 'application/octet-stream',
      'x-pattern': 'i%251',
      'x-backend-node': NODE,
    };
    if (url.searchParams.get('content_length') === '1') headers['content-length'] = total;
    res.writeHead(200, headers);
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        const n = Math.min(c.CHUNK, total - sent);
        const more = res.write(c.patternSlice(sent, n));
        sent += n;
        if (!more) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    res.on('close', () => {
      if (sent < total) c.log(`download abandoned by the client at ${sent}/${total} bytes`);
    });
    req.resume();
    pump();
  },

  // Counts and hashes the body; says how it was framed and whether a 100 Continue went out.
  async upload(req, res) {
    const body = await drain(req);
    json(res, 200, {
      node: NODE,
      route: 'upload',
      method: req.method,
      http_version: req.httpVersion,
      bytes: body.bytes,
      sha256: body.sha256,
      expect: req.headers.expect ?? null,
      continue_sent: req.continueSent === true,
      content_length: req.headers['content-length'] ?? null,
      transfer_encoding: req.headers['transfer-encoding'] ?? null,
    });
  },

  // Always gzip, whatever Accept-Encoding says, so a test sees the proxy pass it untouched;
  // the identity body's size and hash are in headers.
  gzip(req, res, url) {
    const size = param(url, 'bytes', 65536, 64 << 20);
    const unit = Buffer.from(`flowgate gzip fixture from node ${NODE}\n`);
    const identity = Buffer.alloc(size);
    for (let i = 0; i < size; i += unit.length) unit.copy(identity, i, 0, Math.min(unit.length, size - i));
    const gz = zlib.gzipSync(identity);
    res.writeHead(200, {
      'content-type': 'text/plain; charset=utf-8',
      'content-encoding': 'gzip',
      vary: 'Accept-Encoding',
      'content-length': gz.length,
      'x-identity-length': size,
      'x-identity-sha256': crypto.createHash('sha256').update(identity).digest('hex'),
      'x-backend-node': NODE,
    });
    req.resume();
    res.end(gz);
  },

  // 200, chunked, one chunk, then the socket is destroyed without the last chunk.
  'chunked-then-die'(req, res, url) {
    const die = param(url, 'die_ms', 100, 60000);
    res.writeHead(200, { 'content-type': 'text/plain', 'x-backend-node': NODE });
    res.write('first chunk\n');
    req.resume();
    setTimeout(() => {
      c.log('chunked-then-die: destroying the connection mid-body');
      req.socket.destroy();
    }, die);
  },

  // A streamed body without Content-Length: close-delimited to an HTTP/1.0 client, chunked to
  // HTTP/1.1 (as Node frames it), so a test can see what the proxy sends a 1.0 client.
  stream(req, res, url) {
    const chunks = param(url, 'chunks', 5, 100000);
    const interval = param(url, 'interval_ms', 20, 60000);
    res.writeHead(200, { 'content-type': 'text/plain', 'x-backend-node': NODE });
    let n = 0;
    let timer = null;
    const next = () => {
      n += 1;
      res.write(`line ${n} of ${chunks} from ${NODE}\n`);
      if (n < chunks) timer = setTimeout(next, interval);
      else res.end();
    };
    res.on('close', () => clearTimeout(timer));
    req.resume();
    if (chunks > 0) next();
    else res.end();
  },
};
routes.http10 = routes.stream;

async function onRequest(req, res) {
  const url = target(req);
  const route = url && Object.hasOwn(routes, routeOf(url.pathname)) ? routeOf(url.pathname) : null;
  c.log(`${req.method} ${url ? url.pathname : '?'} HTTP/${req.httpVersion} -> ${route ?? '404'}`);
  if (!route) {
    req.resume();
    json(res, 404, { node: NODE, error: 'no such route' });
    return;
  }
  try {
    await routes[route](req, res, url);
  } catch (e) {
    c.log(`${route}: ${e.message}`);
    if (!res.headersSent) json(res, 500, { node: NODE, error: e.message });
    else res.destroy();
  }
}

server.on('request', onRequest);
// Node would answer 100 Continue by itself; doing it here lets /upload report that it did.
server.on('checkContinue', (req, res) => {
  req.continueSent = true;
  res.writeContinue();
  server.emit('request', req, res);
});
server.on('clientError', (err, socket) => {
  c.log(`client error: ${err.code || err.message}`);
  if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
});

// ---------------------------------------------------------------------------------------------
// Socket.IO, one server per path (rooms are per path).

for (const path of SIO_PATHS) {
  const io = new Server(server, {
    path,
    serveClient: false,
    transports: ['polling', 'websocket'],
    allowUpgrades: true,
    pingInterval: PING_INTERVAL,
    pingTimeout: PING_TIMEOUT,
    maxHttpBufferSize: MAX_BUFFER,
    // Upgrades for other paths are ours (raw WebSocket, or a 404 below).
    destroyUpgrade: false,
  });
  // Recorded headers of each session's WebSocket upgrade request, by engine session id.
  const upgrades = new Map();

  io.engine.on('headers', (_headers, req) => {
    const sid = req._query && req._query.sid;
    if (sid && req.headers.upgrade && io.engine.clients[sid]) {
      upgrades.set(sid, { url: req.url, headers: c.recordHeaders(req.rawHeaders) });
    }
  });
  io.engine.on('connection', (conn) => {
    conn.on('upgrade', (transport) => c.log(`sio ${path} ${conn.id} upgraded to ${transport.name}`));
    conn.on('close', (reason) => {
      upgrades.delete(conn.id);
      c.log(`sio ${path} ${conn.id} closed: ${reason}`);
    });
  });
  io.engine.on('connection_error', (err) => {
    c.log(`sio ${path} connection error ${err.code} (${err.message}) for ${err.req && err.req.url}`);
  });

  io.on('connection', (socket) => {
    const req = socket.request;
    const handshake = {
      transport: socket.conn.transport.name,
      url: req.url,
      headers: c.recordHeaders(req.rawHeaders),
      remote: req.socket && req.socket.remoteAddress,
    };
    c.log(`sio ${path} connect ${socket.conn.id} over ${handshake.transport}`);

    const whoami = () => ({
      node: NODE,
      path,
      sid: socket.conn.id,
      socket_id: socket.id,
      transport: socket.conn.transport.name,
      handshake,
      // The handshake of a WebSocket-only session is itself the upgrade request.
      upgrade:
        handshake.transport === 'websocket'
          ? { url: handshake.url, headers: handshake.headers }
          : upgrades.get(socket.conn.id) || null,
    });

    socket.on('whoami', (ack) => {
      if (typeof ack === 'function') ack(whoami());
    });
    socket.on('join', (room, ack) => {
      socket.join(String(room));
      if (typeof ack === 'function') ack({ node: NODE, room: String(room) });
    });
    socket.on('say', (room, text, ack) => {
      const r = String(room);
      const peers = (io.sockets.adapter.rooms.get(r)?.size ?? 1) - 1;
      socket.to(r).emit('said', { room: r, text, node: NODE, from: socket.id });
      if (typeof ack === 'function') ack({ node: NODE, room: r, peers });
    });
    socket.on('echo', (payload, ack) => {
      if (typeof ack === 'function') ack(payload);
    });
    socket.on('disconnect', (reason) => c.log(`sio ${path} disconnect ${socket.conn.id}: ${reason}`));
  });
}

// ---------------------------------------------------------------------------------------------
// Raw WebSocket at any path ending in /raw-ws: echoes every message, never pings by itself.
// The text message `__whoami__` is answered with the node id and the upgrade's headers.

const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_BUFFER, perMessageDeflate: false });
wss.on('connection', (ws, req) => {
  const opened = Date.now();
  const info = { url: req.url, headers: c.recordHeaders(req.rawHeaders), remote: req.socket.remoteAddress };
  c.log(`raw-ws open ${req.url}`);
  ws.on('message', (data, isBinary) => {
    if (!isBinary && data.length === 10 && data.toString() === '__whoami__') {
      ws.send(JSON.stringify({ node: NODE, ...info }));
    } else {
      ws.send(data, { binary: isBinary });
    }
  });
  ws.on('close', (code) => c.log(`raw-ws closed with ${code} after ${Date.now() - opened} ms`));
  ws.on('error', (e) => c.log(`raw-ws error: ${e.message}`));
});

server.on('upgrade', (req, socket, head) => {
  const pathname = (target(req) || { pathname: '' }).pathname;
  if (SIO_PATHS.some((p) => pathname.startsWith(`${p}/`))) return; // Socket.IO's own listener
  if (routeOf(pathname) === 'raw-ws') {
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
    return;
  }
  c.log(`upgrade refused for ${pathname}`);
  socket.on('error', () => {});
  socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
});

// ---------------------------------------------------------------------------------------------

function stop(signal) {
  c.log(`node ${NODE}: ${signal}, exiting`);
  process.exit(0);
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));

server.on('error', (e) => {
  c.log(`listen failed: ${e.message}`);
  process.stdout.write(`${JSON.stringify({ ready: false, error: e.message, node: NODE })}\n`);
  process.exit(1);
});
server.listen(PORT, args.host, () => {
  const { port } = server.address();
  c.log(
    `node ${NODE} listening on ${args.host}:${port}; socket.io at ${SIO_PATHS.join(', ')}; ` +
      `ping ${PING_INTERVAL}/${PING_TIMEOUT} ms`,
  );
  c.line({ ready: true, port, node: NODE });
});
