'use strict';
// Test driver: one job on stdin (tests/kits/README.md, "Job format") →
// examples/upstream/verify.js → one JSON answer on stdout.
const fs = require('fs');
const flowgate = require('../../examples/upstream/verify.js');

const job = { secrets: [], settings: {}, replay: null, requests: [] };
for (const line of fs.readFileSync(0, 'utf8').split('\n')) {
  const f = line.split('\t');
  if (f[0] === 'secret') job.secrets.push(f[1]);
  else if (f[0] === 'secret_unset') job.secrets.push(process.env.FLOWGATE_KITS_UNSET);
  else if (f[0] === 'now') job.settings.now = Number(f[1]);
  else if (f[0] === 'tolerance') job.settings.tolerance = Number(f[1]);
  else if (f[0] === 'accept_v1') job.settings.acceptV1 = true;
  else if (f[0] === 'replay') job.replay = f[1];
  else if (f[0] === 'request') job.requests.push({ method: f[1], target: f[2], headers: {} });
  else if (f[0] === 'header') {
    const h = job.requests[job.requests.length - 1].headers;
    h[f[1]] = (h[f[1]] || []).concat([f.slice(2).join('\t')]);
  }
}
let options;
try {
  if (job.replay === 'memory') job.settings.replay = new flowgate.MemoryReplayCache(job.settings.tolerance ?? 300);
  options = new flowgate.Options(job.secrets, job.settings);
} catch (e) {
  if (!(e instanceof flowgate.ConfigError)) throw e;
  process.stdout.write(JSON.stringify({ config_error: e.message }) + '\n');
  process.exit(0);
}
const pairs = (m) => (m === null ? null : [...m.entries()]);
const results = job.requests.map((request) => {
  try {
    const t = flowgate.verify(request, options);
    return { ok: true, result: {
      site: t.site, session: t.session, status: t.status, discard_reason: t.discardReason,
      context: pairs(t.context), verified_prefill: pairs(t.verifiedPrefill()),
      browser_prefill: pairs(t.browserPrefill(true)), request_id: t.requestId,
      client_ip: t.clientIp, signed_at: t.signedAt, version: t.version,
    } };
  } catch (e) {
    if (!(e instanceof flowgate.VerifyError)) throw e;
    return { ok: false, reason: e.reason };
  }
});
process.stdout.write(JSON.stringify({ results }) + '\n');
