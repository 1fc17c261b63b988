'use strict';
/**
 * flowgate — sign a visitor context on the host site's server (Node.js 18+, with `jose`:
 * `npm install jose@5`, the maintained, dependency-free JOSE library).
 *
 * An unsigned `data-visitor-context` is built in the browser, so anyone can claim any
 * `ims_email`. On a site whose flowgate mode is `optional` or `required`, sign the context with
 * the secret you share with flowgate: a standard JWT (HS256 by default) whose private claims are
 * the context, with `aud` = your site id, `iat`, `exp` and a `kid` naming the key in the header.
 *
 *     const { signContext } = require('./sign.js');
 *     const token = await signContext(
 *       [['account_id', u.id], ['ims_username', u.name], ['ims_email', u.email]],
 *       'YOUR_SITEID',
 *       'key-2026-11',                                // the kid configured in flowgate
 *       process.env.FLOWGATE_SITE_KEY_2026_11);       // the shared secret, from your secrets store
 *     // <script src=".../flowwidget.js" data-siteid="YOUR_SITEID"
 *     //         data-visitor-context-token="${escapeHtml(token)}"></script>
 *
 * The context is a list of [key, value] pairs (or a Map) so its order is the order operators
 * see. Keep `ttl` short (seconds): the page only needs the token until the chat starts.
 * Rotation: add the new key to flowgate under a new kid, sign with it, and remove the old kid
 * from flowgate once no page can still hold a token signed with it (after `ttl`).
 */

const jose = require('jose');

/** Claims flowgate treats as registered; they cannot be context keys. */
const REGISTERED_CLAIMS = ['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti'];

/**
 * Signs `context` for `siteId`; resolves to the compact JWT.
 *
 * @param {Array<[string,string]>|Map<string,string>} context
 * @param {object} [opts] ttl (seconds, 300), alg (HS256 | HS384 | HS512), now (unix seconds)
 */
async function signContext(context, siteId, kid, secret, opts = {}) {
  const { ttl = 300, alg = 'HS256', now = Math.floor(Date.now() / 1000) } = opts;
  if (!['HS256', 'HS384', 'HS512'].includes(alg)) {
    throw new TypeError('flowgate accepts HS256, HS384 and HS512 only');
  }
  if (typeof secret !== 'string' || secret === '') {
    throw new TypeError('no signing secret (an unset variable?)');
  }
  const payload = {};
  for (const [key, value] of context) {
    if (REGISTERED_CLAIMS.includes(key)) throw new TypeError(`context key ${key} is a registered claim`);
    payload[key] = String(value);
  }
  return new jose.SignJWT(payload)
    .setProtectedHeader({ alg, typ: 'JWT', kid })
    .setAudience(siteId)
    .setIssuedAt(now)
    .setExpirationTime(now + ttl)
    .sign(new TextEncoder().encode(secret));
}

module.exports = { REGISTERED_CLAIMS, signContext };
