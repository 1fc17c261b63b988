#!/usr/bin/env node
'use strict';
// Self-test of the fixtures, without any proxy: starts backends on ephemeral ports and runs every
// client mode and HTTP route against them directly. Prints `ok N - name` / `not ok N - name: why`
// per case and a closing `N passed, N failed` line; exits 0 when all pass.
//
//   node tests/node/selftest.js

const http = require('node:http');
const net = require('node:net');
const zlib = require('node:zlib');
const crypto = require('node:crypto');
const assert = require('node:assert/strict');
const c = require('./lib/common');
const { startBackend, runNode, killAll } = require('./lib/procs');

const results = [];
async function check(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push({ name, ok: true });
    console.log(`ok ${results.length} - ${name} # ${Date.now() - t0} ms`);
  } catch (e) {
    results.push({ name, ok: false });
    console.log(`not ok ${results.length} - ${name}: ${e.message.split('\n').slice(0, 6).join(' | ')}`);
  }
}

/** Runs the chat client; asserts its exit code is `want` and returns its last JSON line. */
async function client(args, want = 0) {
  const r = await runNode('chat-client.js', args);
  assert.equal(r.code, want, `chat-client exit ${r.code}, want ${want}: ${JSON.stringify(r.result)} ${r.stderr}`);
  return r.result;
}

async function rawWs(args, want = 0) {
  const r = await runNode('raw-ws-client.js', args);
  assert.equal(r.code, want, `raw-ws-client exit ${r.code}, want ${want}: ${JSON.stringify(r.result)} ${r.stderr}`);
  return r.result;
}

/** One HTTP request; resolves with status, headers and the body (or the error mid-body). */
function request(url, { method = 'GET', headers = {}, body = null, expectContinue = false } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false });
    const chunks = [];
    let continued = false;
    req.on('continue', () => {
      continued = true;
      req.end(body);
    });
    req.on('response', (res) => {
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), continued }));
      res.on('error', (e) => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), error: e.code || e.message }));
      res.on('aborted', () => {});
    });
    req.on('error', reject);
    req.setTimeout(30000, () => req.destroy(new Error('request timed out')));
    if (!expectContinue) req.end(body);
  });
}

/** A raw request over TCP; resolves with everything the server sent until it closed. */
function rawRequest(port, text) {
  return new Promise((resolve, reject) => {
    // No half-close: the server ends the exchange (HTTP/1.0, or Connection: close).
    const sock = net.connect(port, '127.0.0.1', () => sock.write(text));
    const chunks = [];
    sock.on('data', (d) => chunks.push(d));
    sock.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    sock.on('error', reject);
    sock.setTimeout(15000, () => sock.destroy(new Error('raw request timed out')));
  });
}

const SPOOF = ['--header', 'X-Forwarded-For: 6.6.6.6', '--header', 'X-Flowgate-Status: accepted'];
const QUERY = ['--query', 'siteid=s1&jsSessionId=j1'];

async function main() {
  const started = Date.now();
  const [A, B, C] = await Promise.all([
    startBackend('A', ['--port', '0']),
    startBackend('B', ['--port', '0']),
    startBackend('C', ['--port', '0', '--ping-interval-ms', '300', '--ping-timeout-ms', '300']),
  ]);

  // Socket.IO modes, a few at a time (two cores).
  await Promise.all([
    check('socket.io: polling, upgrade to websocket, headers on handshake and upgrade', async () => {
      const r = await client(['--url', A.url, ...QUERY, ...SPOOF]);
      assert.equal(r.node, 'A');
      assert.equal(r.transport, 'websocket');
      assert.equal(r.upgraded, true);
      assert.equal(r.handshake.transport, 'polling');
      assert.match(r.handshake.url, /siteid=s1&jsSessionId=j1/);
      for (const h of [r.handshake.headers, r.upgrade.headers]) {
        assert.deepEqual(h['x-forwarded-for'], ['6.6.6.6']);
        assert.deepEqual(h['x-flowgate-status'], ['accepted']);
      }
      assert.match(r.upgrade.url, /transport=websocket&sid=/);
    }),
    check('socket.io: websocket only, under the widget prefix', async () => {
      const r = await client(['--url', B.url, '--path', '/public_FlowWidget/socket.io', '--transports', 'websocket', ...SPOOF]);
      assert.equal(r.node, 'B');
      assert.equal(r.transport, 'websocket');
      assert.equal(r.upgraded, false);
      assert.equal(r.path, '/public_FlowWidget/socket.io');
      assert.deepEqual(r.upgrade.headers['x-forwarded-for'], ['6.6.6.6']);
    }),
    check('socket.io: polling only (--upgrade false)', async () => {
      const r = await client(['--url', A.url, '--upgrade', 'false']);
      assert.equal(r.transport, 'polling');
      assert.equal(r.upgrade, null);
    }),
    check('socket.io: rooms deliver both ways', async () => {
      const r = await client(['--url', A.url, '--rooms', '--room', 'r1', ...QUERY]);
      assert.deepEqual(r.nodes, ['A', 'A']);
      assert.deepEqual(r.delivered, [true, true]);
      assert.deepEqual(r.peers, [1, 1]);
    }),
  ]);
  await Promise.all([
    check('socket.io: 10 MB binary echo over websocket', async () => {
      const r = await client(['--url', A.url, '--echo-bytes', String(10 * 1024 * 1024)]);
      assert.equal(r.match, true);
      assert.equal(r.transport, 'websocket');
    }),
    check('socket.io: 10 MB binary echo over polling', async () => {
      const r = await client(['--url', B.url, '--upgrade', 'false', '--echo-bytes', String(10 * 1024 * 1024), '--timeout-ms', '20000']);
      assert.equal(r.match, true);
      assert.equal(r.transport, 'polling');
    }),
    check('socket.io: text echo', async () => {
      const r = await client(['--url', B.url, '--echo-bytes', '100000', '--echo-kind', 'text']);
      assert.equal(r.match, true);
    }),
    check('socket.io: hold 1.2 s with 300 ms pings keeps the session', async () => {
      const r = await client(['--url', C.url, '--hold-ms', '1200']);
      assert.equal(r.same_sid, true);
      assert.equal(r.node, 'C');
    }),
  ]);

  // Three independent strands at once: most of their time is spent waiting.
  await Promise.all([nodeRestarts(), rawAndProxy(A, B), httpRoutes(A, B)]);

  const failed = results.filter((r) => !r.ok).length;
  console.log(`# ${Date.now() - started} ms`);
  console.log(`${results.length - failed} passed, ${failed} failed`);
  killAll();
  process.exit(failed ? 1 : 0);
}

/** A node that dies and comes back on the same port; drops seen by every client kind. */
async function nodeRestarts() {
  let D = await startBackend('D', ['--port', '0']);
  const port = D.port;
  await check('socket.io: reconnect watch across a node restart', async () => {
    let restarted = null;
    const r = await runNode('chat-client.js', ['--url', D.url, '--reconnect-watch', '--count', '2', '--watch-ms', '20000'], 30000, (l) => {
      if (l.event === 'connect' && l.n === 1) {
        restarted = D.kill().then(() => startBackend('D2', ['--port', String(port)]));
      }
    });
    assert.equal(r.code, 0, JSON.stringify(r.result));
    D = await restarted;
    const connects = r.lines.filter((l) => l.event === 'connect').map((l) => l.node);
    assert.deepEqual(connects, ['D', 'D2']);
    assert.ok(r.lines.some((l) => l.event === 'disconnect' && l.reason === 'transport close'));
    assert.deepEqual(r.result.connects.map((x) => x.node), ['D', 'D2']);
    assert.equal(r.result.stopped_by, 'count');
  });
  await check('socket.io: reconnect watch stops on SIGTERM with a result line', async () => {
    const r = await runNode('chat-client.js', ['--url', D.url, '--reconnect-watch'], 30000, (l, child) => {
      if (l.event === 'connect') child.kill('SIGTERM');
    });
    assert.equal(r.code, 0, JSON.stringify(r.result));
    assert.equal(r.result.stopped_by, 'SIGTERM');
    assert.equal(r.result.connects[0].node, 'D2');
  });
  await check('closed connections: hold and raw websocket report the close', async () => {
    let started = 0;
    let bothIdle;
    const idleNow = new Promise((resolve) => (bothIdle = resolve));
    const onIdle = (l) => {
      if (l.event === 'holding' || l.event === 'idle') started += 1;
      if (started === 2) bothIdle();
    };
    const hold = runNode('chat-client.js', ['--url', D.url, '--hold-ms', '30000'], 30000, onIdle);
    const idle = runNode('raw-ws-client.js', ['--url', `${D.ws}/raw-ws`, '--idle-ms', '30000'], 30000, onIdle);
    await c.withDeadline(idleNow, 15000, 'both clients idle');
    await D.kill();
    const [h, w] = await Promise.all([hold, idle]);
    assert.equal(h.code, 1);
    assert.equal(h.result.error, 'disconnected during hold');
    assert.equal(h.result.disconnect.reason, 'transport close');
    assert.equal(w.code, 1);
    assert.equal(w.result.close.code, 1006);
    assert.equal(w.result.close.during, 'idle');
  });
  await check('socket.io: connect failure is a JSON error line, exit 1', async () => {
    const r = await client(['--url', D.url, '--timeout-ms', '1000'], 1);
    assert.equal(r.ok, false);
    assert.match(r.error, /connect timed out/);
    assert.ok(r.trace.some((t) => t.type === 'connect_error'));
  });

}

/** The raw WebSocket client, and the PROXY headers both clients send. */
async function rawAndProxy(A, B) {
  // Raw WebSocket.
  await Promise.all([
    check('raw websocket: whoami, idle, echo', async () => {
      const r = await rawWs(['--url', `${A.ws}/raw-ws`, '--whoami', '--idle-ms', '300', '--header', 'X-Real-IP: 6.6.6.6']);
      assert.equal(r.echoed, true);
      assert.equal(r.whoami.node, 'A');
      assert.deepEqual(r.whoami.headers['x-real-ip'], ['6.6.6.6']);
    }),
    check('raw websocket: 1 MB binary under a prefix', async () => {
      const r = await rawWs(['--url', `${B.ws}/public_FlowWidget/raw-ws`, '--bytes', '1048576']);
      assert.equal(r.echoed, true);
    }),
    check('raw websocket: unknown path is refused with 404', async () => {
      const r = await rawWs(['--url', `${A.ws}/nope`], 1);
      assert.equal(r.status, 404);
    }),
  ]);

  // PROXY protocol: what goes on the wire first, read by a bare TCP listener.
  await check('proxy protocol: v1 and v2 headers lead every connection of both clients', async () => {
    const firsts = [];
    // Each connection's bytes up to the end of its request line (header and request may come
    // in separate segments).
    const sink = net.createServer((sock) => {
      let got = Buffer.alloc(0);
      sock.on('data', (d) => {
        got = Buffer.concat([got, d]);
        if (got.includes('HTTP/1.1\r\n')) {
          firsts.push(got);
          sock.destroy();
        }
      });
    });
    await new Promise((resolve) => sink.listen(0, '127.0.0.1', resolve));
    const { port: sinkPort } = sink.address();
    try {
      const src = ['--proxy-source', '203.0.113.7:40000'];
      const url = `http://127.0.0.1:${sinkPort}`;
      await client(['--url', url, '--proxy-protocol', 'v2', ...src, '--timeout-ms', '1000', '--reconnection', 'false'], 1);
      await rawWs(['--url', `ws://127.0.0.1:${sinkPort}/raw-ws`, '--proxy-protocol', 'v1', ...src], 1);
      await rawWs(['--url', `ws://127.0.0.1:${sinkPort}/raw-ws`, '--proxy-protocol', 'v2', '--proxy-source', '[2001:db8::7]:40000'], 1);
      const dst = { address: '127.0.0.1', port: sinkPort };
      const v1 = c.proxyHeader('v1', { address: '203.0.113.7', port: 40000 }, dst);
      const v2 = c.proxyHeader('v2', { address: '203.0.113.7', port: 40000 }, dst);
      const v2six = c.proxyHeader('v2', { address: '2001:db8::7', port: 40000 }, dst);
      assert.equal(v1.toString(), `PROXY TCP4 203.0.113.7 127.0.0.1 40000 ${sinkPort}\r\n`);
      assert.equal(v2.length, 28);
      assert.equal(v2six.length, 52);
      const starts = (buf, head) => buf.length >= head.length && buf.subarray(0, head.length).equals(head);
      assert.ok(firsts.some((f) => starts(f, v2) && /^GET \/socket\.io\//.test(f.subarray(v2.length).toString())), 'socket.io poll after a v2 header');
      assert.ok(firsts.some((f) => starts(f, v1) && /^GET \/raw-ws /.test(f.subarray(v1.length).toString())), 'upgrade after a v1 header');
      assert.ok(firsts.some((f) => starts(f, v2six)), 'IPv6 source in a v2 header');
    } finally {
      sink.close();
    }
  });

}

/** Every plain HTTP route. */
async function httpRoutes(A, B) {
  // Plain HTTP routes.
  await check('http: /echo reflects method, path, query, headers', async () => {
    const r = await request(`${A.url}/public_FlowWidget/chat/echo?a=1&b=2`, { headers: { 'X-Forwarded-For': '6.6.6.6', x_flowgate_status: 'x' } });
    const j = JSON.parse(r.body);
    assert.equal(r.status, 200);
    assert.equal(j.node, 'A');
    assert.equal(j.path, '/public_FlowWidget/chat/echo');
    assert.equal(j.query, 'a=1&b=2');
    assert.ok(j.headers.some(([n, v]) => n === 'x-forwarded-for' && v === '6.6.6.6'));
    assert.deepEqual(j.recorded.x_flowgate_status, ['x']);
  });
  await check('http: a 70,000-byte request target reaches /echo', async () => {
    const r = await request(`${A.url}/echo?q=${'a'.repeat(70000)}`);
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).query.length, 70002);
  });
  await check('http: /longpoll answers after hold_ms', async () => {
    const r = await request(`${A.url}/longpoll?hold_ms=300`);
    assert.equal(JSON.parse(r.body).held_ms, 300);
  });
  await check('http: /longpoll abandoned by the client is logged', async () => {
    const req = http.get(`${B.url}/longpoll?hold_ms=60000`, { agent: false });
    req.on('error', () => {});
    await B.waitLog(/-> longpoll/);
    req.destroy();
    await B.waitLog(/longpoll abandoned by the client/);
  });
  await check('http: /sse sends N tick events and an end event', async () => {
    const r = await request(`${A.url}/sse?events=5&interval_ms=20`);
    assert.equal(r.headers['content-type'], 'text/event-stream');
    const events = r.body.toString().split('\n\n').filter(Boolean);
    assert.equal(events.filter((e) => e.includes('event: tick')).length, 5);
    assert.match(events[events.length - 1], /event: end/);
  });
  await check('http: /sse streams (first event arrives while the stream is held open)', async () => {
    await c.withDeadline(
      new Promise((resolve, reject) => {
        const req = http.get(`${A.url}/sse?events=1&hold_ms=60000`, { agent: false }, (res) => {
          res.once('data', (d) => {
            assert.match(d.toString(), /event: tick/);
            req.destroy();
            resolve();
          });
        });
        req.on('error', (e) => (e.code === 'ECONNRESET' ? null : reject(e)));
      }),
      15000,
      'first SSE event',
    );
  });
  await check('http: /download streams 50 MB of the pattern, chunked', async () => {
    const r = await request(`${A.url}/download?bytes=${50 * 1024 * 1024}`);
    assert.equal(r.headers['transfer-encoding'], 'chunked');
    assert.equal(r.body.length, 50 * 1024 * 1024);
    assert.equal(c.patternMismatch(r.body, 0), -1);
  });
  await check('http: /download?content_length=1 sends Content-Length', async () => {
    const r = await request(`${A.url}/download?bytes=1000&content_length=1`);
    assert.equal(r.headers['content-length'], '1000');
    assert.equal(c.patternMismatch(r.body, 0), -1);
  });
  const tenMb = c.patternBytes(0, 10 * 1024 * 1024);
  const tenMbSha = crypto.createHash('sha256').update(tenMb).digest('hex');
  await check('http: /upload counts 10 MB', async () => {
    const r = await request(`${A.url}/upload`, { method: 'POST', body: tenMb, headers: { 'content-length': tenMb.length } });
    const j = JSON.parse(r.body);
    assert.equal(j.bytes, tenMb.length);
    assert.equal(j.sha256, tenMbSha);
    assert.equal(j.continue_sent, false);
  });
  await check('http: /upload with Expect: 100-continue', async () => {
    const r = await request(`${A.url}/upload`, {
      method: 'POST',
      body: tenMb,
      headers: { 'content-length': tenMb.length, expect: '100-continue' },
      expectContinue: true,
    });
    const j = JSON.parse(r.body);
    assert.equal(r.continued, true);
    assert.equal(j.bytes, tenMb.length);
    assert.equal(j.expect, '100-continue');
    assert.equal(j.continue_sent, true);
  });
  await check('http: /gzip is gzip whatever Accept-Encoding says', async () => {
    const r = await request(`${A.url}/gzip?bytes=100000`);
    assert.equal(r.headers['content-encoding'], 'gzip');
    const plain = zlib.gunzipSync(r.body);
    assert.equal(plain.length, 100000);
    assert.equal(crypto.createHash('sha256').update(plain).digest('hex'), r.headers['x-identity-sha256']);
  });
  await check('http: /chunked-then-die aborts after the first chunk', async () => {
    const r = await request(`${A.url}/chunked-then-die`);
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'first chunk\n');
    assert.ok(r.error, 'the body must end in an error, not a clean end');
  });
  await check('http: /http10 to an HTTP/1.0 client is close-delimited', async () => {
    const raw = await rawRequest(A.port, 'GET /http10?chunks=3 HTTP/1.0\r\nHost: x\r\n\r\n');
    const [head, body] = raw.split('\r\n\r\n');
    assert.match(head, /^HTTP\/1\.1 200/);
    assert.doesNotMatch(head, /transfer-encoding/i);
    assert.doesNotMatch(head, /content-length/i);
    assert.equal(body, 'line 1 of 3 from A\nline 2 of 3 from A\nline 3 of 3 from A\n');
  });
  await check('http: /http10 to an HTTP/1.1 client is chunked', async () => {
    const raw = await rawRequest(A.port, 'GET /stream?chunks=3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.match(raw.split('\r\n\r\n')[0], /transfer-encoding: chunked/i);
  });
  await check('http: unknown route is a 404 with the node id', async () => {
    const r = await request(`${A.url}/nope`);
    assert.equal(r.status, 404);
    assert.equal(JSON.parse(r.body).node, 'A');
  });

}

main().catch((e) => {
  console.log(`not ok - setup: ${e.stack}`);
  console.log(`${results.filter((r) => r.ok).length} passed, ${results.filter((r) => !r.ok).length + 1} failed`);
  killAll();
  process.exit(1);
});
