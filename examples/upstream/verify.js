'use strict';
/**
 * flowgate — verify a request the backend received from flowgate (Node.js 18+, no dependency:
 * `crypto.createHmac` and `crypto.timingSafeEqual`).
 *
 * flowgate signs the whole request it forwards with HMAC-SHA256 and sends
 * `X-Flowgate-Signature: t=<unix>,v2=<64 hex>` (`t=…,v1=…,v2=…` during a transition). The signed
 * string v2 is, joined with "\n" (no newline at the end):
 *
 *     v2, t, request id, method, host, target, client address,
 *     Site, Session, Status, Context, Prefill
 *
 * (README "Header signature"; the same as examples/upstream/verify.php). v1 (only with
 * `acceptV1`) is "v1", t, path, Site, Session, Status, Context, Prefill.
 *
 * Usage (an http / Express / Fastify handler):
 *
 *     const flowgate = require('./verify.js');
 *     // Once: the same list as flowgate's FLOWGATE_SIGNING_SECRET (comma-separated, newest
 *     // first). An empty list or a secret under 32 bytes throws ConfigError here.
 *     const options = new flowgate.Options(flowgate.secretsFromEnv('FLOWGATE_SIGNING_SECRET'));
 *     let trusted = null;
 *     try {
 *       trusted = flowgate.verifyRequest(req, options);     // an http.IncomingMessage
 *     } catch (e) {
 *       if (!(e instanceof flowgate.VerifyError)) throw e;
 *       console.warn('flowgate headers rejected: ' + e.reason); // never log header values
 *     }
 *     const prefill = trusted && trusted.verifiedPrefill();   // null unless the host site signed
 *     if (prefill && prefill.has('visitor_email')) { ... skip the email question ... }
 *
 * Rotation: list the new secret first and keep the old one until every flowgate instance signs
 * with it; a signature made with any listed secret is accepted.
 */

const crypto = require('crypto');

/** A secret list or option that must not be verified with; thrown before any verification. */
class ConfigError extends Error {}

/**
 * Why a request was rejected; `reason` is a stable snake_case name, the same in every kit:
 * missing_signature | malformed_signature | unsupported_version | expired | bad_signature |
 * replayed | bad_header
 */
class VerifyError extends Error {
  constructor(reason, message) {
    super(message);
    this.reason = reason;
  }
}

/** In-process replay cache: ids older than 2 × tolerance are forgotten, at most `maxEntries`. */
class MemoryReplayCache {
  constructor(tolerance = 300, maxEntries = 100000) {
    this.window = 2 * tolerance;
    this.maxEntries = Math.max(1, maxEntries);
    this.ids = new Map(); // id => t, in insertion order
    this.newest = 0;
  }

  /** Remembers `requestId`; true when it was already known. */
  seen(requestId, t) {
    this.newest = Math.max(this.newest, t);
    for (const [id, at] of this.ids) {
      if (at >= this.newest - this.window) break;
      this.ids.delete(id);
    }
    if (this.ids.has(requestId)) return true;
    while (this.ids.size >= this.maxEntries) this.ids.delete(this.ids.keys().next().value);
    this.ids.set(requestId, t);
    return false;
  }
}

const SETTINGS = ['tolerance', 'now', 'prefix', 'acceptV1', 'replay', 'requestIdHeader', 'clientIpHeader'];

/** How to verify: secrets (checked here, once) and settings. */
class Options {
  /**
   * @param {string[]} secrets every secret currently accepted, newest first, each >= 32 bytes
   * @param {object} settings tolerance, now, prefix, acceptV1, replay, requestIdHeader,
   *                          clientIpHeader
   */
  constructor(secrets, settings = {}) {
    if (!Array.isArray(secrets) || secrets.length === 0) {
      throw new ConfigError('no verification secret given; use the list flowgate signs with (FLOWGATE_SIGNING_SECRET, newest first)');
    }
    this.secrets = secrets.map((secret, i) => {
      if (typeof secret !== 'string' || secret === '') {
        throw new ConfigError(`verification secret #${i + 1} is empty or not a string (an unset variable?)`);
      }
      const bytes = Buffer.from(secret, 'utf8');
      if (bytes.length < 32) {
        throw new ConfigError(`verification secret #${i + 1} is shorter than 32 bytes; flowgate refuses such secrets too`);
      }
      return bytes;
    });
    for (const key of Object.keys(settings)) {
      if (!SETTINGS.includes(key)) {
        throw new ConfigError(`unknown setting '${key}'; known: ${SETTINGS.join(', ')}`);
      }
    }
    this.tolerance = settings.tolerance ?? 300;
    this.now = settings.now ?? null;
    this.prefix = settings.prefix ?? 'X-Flowgate-';
    this.acceptV1 = Boolean(settings.acceptV1);
    this.replay = settings.replay ?? null;
    if (this.replay !== null && typeof this.replay.seen !== 'function') {
      throw new ConfigError('replay must have a seen(requestId, t) method');
    }
    this.requestIdHeader = settings.requestIdHeader ?? 'X-Request-Id';
    this.clientIpHeader = settings.clientIpHeader ?? 'X-Real-IP';
  }
}

/** What a verified request carries. Pre-fill only through verifiedPrefill() / browserPrefill(). */
class TrustedContext {
  constructor(fields, prefill) {
    /** site, session, status (accepted | verified | unverified | absent | discarded),
     *  discardReason, context (an ordered Map), requestId, clientIp (v2), signedAt, version */
    Object.assign(this, fields);
    Object.defineProperty(this, '_prefill', { value: prefill });
  }

  /** The pre-fill slots (a Map) only when the host site signed the context (`accepted; verified`). */
  verifiedPrefill() {
    return this.status === 'verified' ? this._prefill : null;
  }

  /**
   * For sites documented as `mode: off`: the browser-written pre-fill of a plain `accepted`
   * status, when the caller says so. Never the pre-fill of `accepted; unverified`.
   */
  browserPrefill(acknowledgeUnsigned) {
    if (acknowledgeUnsigned !== true) return null;
    return this.status === 'accepted' || this.status === 'verified' ? this._prefill : null;
  }
}

/** A comma-separated secret list from the environment (blank entries skipped). */
function secretsFromEnv(name = 'FLOWGATE_SIGNING_SECRET') {
  return (process.env[name] ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
}

/** Verifies a Node.js `http.IncomingMessage` (repeated headers are seen as such). */
function verifyRequest(req, options) {
  return verify({ method: req.method, target: req.url, headers: req.headersDistinct || req.headers }, options);
}

/**
 * Verifies a request and decodes its trusted headers.
 *
 * @param {{method: string, target: string, headers: object}} request target as received
 *        ('/path?query'); headers name => value or [values] (Host included; any case)
 * @throws {VerifyError}
 */
function verify(request, options) {
  const lower = new Map();
  for (const [name, value] of Object.entries(request.headers || {})) {
    const key = name.toLowerCase();
    const values = (Array.isArray(value) ? value : [value]).filter((v) => v !== undefined && v !== null);
    lower.set(key, (lower.get(key) || []).concat(values.map(String)));
  }
  const get = (name) => {
    const values = lower.get(name.toLowerCase()) || [];
    if (values.length > 1) throw new VerifyError('bad_header', `header ${name} occurs more than once`);
    return values.length === 1 ? values[0] : null;
  };
  const p = options.prefix;
  const signature = get(p + 'Signature');
  const values = ['Site', 'Session', 'Status', 'Context', 'Prefill'].map((n) => get(p + n));
  const requestId = get(options.requestIdHeader);
  const clientIp = get(options.clientIpHeader);
  const host = get('Host');
  if (signature === null) throw new VerifyError('missing_signature', 'signature header missing');

  // t=<digits>,v1=<hex>,v2=<hex>: t once, each version at most once, unknown keys ignored.
  let t = null;
  let other = false;
  const macs = {};
  for (const field of signature.split(',')) {
    const at = field.trim().indexOf('=');
    if (at < 0) continue;
    const name = field.trim().slice(0, at);
    const value = field.trim().slice(at + 1);
    if (name === 't') {
      if (t !== null || !/^[0-9]{1,18}$/.test(value)) {
        throw new VerifyError('malformed_signature', 'signature timestamp malformed');
      }
      t = Number(value);
    } else if (name === 'v1' || name === 'v2') {
      if (macs[name] !== undefined || !/^[0-9a-fA-F]{64}$/.test(value)) {
        throw new VerifyError('malformed_signature', `signature ${name} malformed`);
      }
      macs[name] = value.toLowerCase();
    } else if (/^v[0-9]+$/.test(name)) {
      other = true;
    }
  }
  if (t === null || (Object.keys(macs).length === 0 && !other)) {
    throw new VerifyError('malformed_signature', 'signature needs t= and a version');
  }
  let version;
  if (macs.v2 !== undefined) version = 'v2';
  else if (macs.v1 !== undefined && options.acceptV1) version = 'v1';
  else throw new VerifyError('unsupported_version', 'no signature version this verifier checks');

  let target = String(request.target ?? '/');
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  if (q === target.length - 1) target = path; // an empty query signs as none
  const parts = version === 'v2'
    ? [requestId, String(request.method ?? 'GET'), host, target, clientIp, ...values]
    : [path, ...values];
  const signed = [version, String(t), ...parts.map((x) => x ?? '')].join('\n');
  const expected = Buffer.from(macs[version], 'hex');
  let ok = false;
  for (const secret of options.secrets) {
    // timingSafeEqual is constant-time; every secret is tried.
    const mac = crypto.createHmac('sha256', secret).update(signed, 'utf8').digest();
    ok = crypto.timingSafeEqual(mac, expected) || ok;
  }
  if (!ok) throw new VerifyError('bad_signature', 'signature does not match the request');

  const now = options.now ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - t) > options.tolerance) {
    throw new VerifyError('expired', `signature is ${now - t} s from now`);
  }

  const [site, session, statusText, context, prefill] = values;
  const statuses = { accepted: 'accepted', 'accepted; verified': 'verified',
    'accepted; unverified': 'unverified', absent: 'absent', '': 'absent' };
  let status = statuses[statusText ?? ''];
  let discardReason = null;
  if (status === undefined) {
    const d = 'discarded; reason=';
    if (!statusText.startsWith(d) || statusText.length === d.length) {
      throw new VerifyError('bad_header', 'unknown status');
    }
    status = 'discarded';
    discardReason = statusText.slice(d.length);
  }
  const v2 = version === 'v2';
  const trusted = new TrustedContext({
    site, session, status, discardReason,
    context: decodeObject(context ?? ''),
    requestId: v2 && requestId ? requestId : null,
    clientIp: v2 && clientIp ? clientIp : null,
    signedAt: t,
    version,
  }, decodeObject(prefill ?? ''));

  if (options.replay !== null) {
    // v1 signs no request id: a replay could not be told apart.
    if (!v2) throw new VerifyError('unsupported_version', 'replay protection needs v2');
    if (trusted.requestId === null) throw new VerifyError('bad_header', 'no request id to check for replays');
    if (options.replay.seen(trusted.requestId, t)) throw new VerifyError('replayed', 'request id seen before');
  }
  return trusted;
}

const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;

/** Base64 of a JSON object of strings → an ordered Map ("" → empty). */
function decodeObject(value) {
  const fail = () => new VerifyError('bad_header', 'trusted header cannot be decoded');
  const out = new Map();
  if (value === '') return out;
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0) throw fail();
  const json = Buffer.from(value, 'base64').toString('utf8');
  // A small reader keeps the keys in the order flowgate sent them (an object would not).
  let i = 0;
  const ws = () => { while (' \t\r\n'.includes(json[i]) && i < json.length) i++; };
  const str = () => {
    STRING.lastIndex = i;
    const m = STRING.exec(json);
    if (!m) throw fail();
    i += m[0].length;
    return JSON.parse(m[0]);
  };
  ws();
  if (json[i++] !== '{') throw fail();
  ws();
  if (json[i] === '}') i++;
  else {
    for (;;) {
      ws();
      const key = str();
      ws();
      if (json[i++] !== ':') throw fail();
      ws();
      out.set(key, str());
      ws();
      const c = json[i++];
      if (c === '}') break;
      if (c !== ',') throw fail();
    }
  }
  ws();
  if (i !== json.length) throw fail();
  return out;
}

module.exports = {
  ConfigError, VerifyError, MemoryReplayCache, Options, TrustedContext,
  secretsFromEnv, verify, verifyRequest,
};
