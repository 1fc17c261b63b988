'use strict';
// Child processes for the self-test: backends waited for by their ready line, clients run to
// completion with their JSON lines parsed, every child killed on exit.

const { spawn } = require('node:child_process');
const path = require('node:path');

const DIR = path.resolve(__dirname, '..');
const children = new Set();

function killAll() {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}
process.on('exit', killAll);

/** Parses every line of `text` that is JSON; other lines are ignored. */
function jsonLines(text) {
  const out = [];
  for (const l of text.split('\n')) {
    if (!l.trim()) continue;
    try {
      out.push(JSON.parse(l));
    } catch {
      // not a JSON line
    }
  }
  return out;
}

/**
 * Starts `node chat-backend.js --node-id ID [--port P] …` and resolves once its ready line is
 * read (deadline `ms`). The handle's `waitLog(re)` resolves when a stderr line matches.
 */
function startBackend(nodeId, extra = [], ms = 15000) {
  const child = spawn(process.execPath, [path.join(DIR, 'chat-backend.js'), '--node-id', nodeId, ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stderr = '';
  const watchers = [];
  child.stderr.on('data', (d) => {
    stderr += d;
    for (const w of watchers.slice()) {
      if (w.re.test(stderr.slice(w.from))) {
        watchers.splice(watchers.indexOf(w), 1);
        w.resolve();
      }
    }
  });
  return new Promise((resolve, reject) => {
    let stdout = '';
    const timer = setTimeout(() => reject(new Error(`backend ${nodeId}: no ready line in ${ms} ms; stderr: ${stderr}`)), ms);
    child.on('exit', (code) => reject(new Error(`backend ${nodeId} exited (${code}) before ready: ${stderr}`)));
    child.stdout.on('data', (d) => {
      stdout += d;
      const nl = stdout.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      const ready = JSON.parse(stdout.slice(0, nl));
      if (!ready.ready) {
        reject(new Error(`backend ${nodeId}: ${stdout}`));
        return;
      }
      resolve({
        node: ready.node,
        port: ready.port,
        url: `http://127.0.0.1:${ready.port}`,
        ws: `ws://127.0.0.1:${ready.port}`,
        stderr: () => stderr,
        /** How much stderr there is so far, for `waitLog`'s `from`. */
        mark: () => stderr.length,
        /** Resolves when the stderr after `from` matches `re` (deadline `wait`). */
        waitLog(re, wait = 15000, from = 0) {
          if (re.test(stderr.slice(from))) return Promise.resolve();
          return new Promise((res, rej) => {
            const w = { re, from, resolve: res };
            watchers.push(w);
            setTimeout(() => rej(new Error(`backend ${nodeId}: no log line ${re} in ${wait} ms`)), wait);
          });
        },
        kill() {
          const gone = new Promise((res) => (child.exitCode !== null ? res() : child.once('exit', res)));
          child.kill('SIGKILL');
          return gone;
        },
      });
    });
  });
}

/**
 * Runs `node <script> <args>` to completion (deadline `ms`, then SIGKILL) and resolves with
 * `{ code, lines, result, stderr }`, `result` being the last JSON line.
 */
function runNode(script, args, ms = 30000, onLine = null) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(DIR, script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let stdout = '';
    let stderr = '';
    let seen = 0;
    child.stdout.on('data', (d) => {
      stdout += d;
      if (!onLine) return;
      const lines = stdout.split('\n');
      for (; seen < lines.length - 1; seen++) {
        try {
          onLine(JSON.parse(lines[seen]), child);
        } catch {
          // not JSON
        }
      }
    });
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    // 'close', not 'exit': only then has all of stdout been read.
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      const lines = jsonLines(stdout);
      resolve({ code: code ?? signal, lines, result: lines[lines.length - 1] || null, stderr });
    });
  });
}

module.exports = { DIR, startBackend, runNode, jsonLines, killAll };
