'use strict';
// Test driver: `node sign_driver.js SITE KID TTL NOW key=value…` with the secret in
// FLOWGATE_KITS_SECRET → examples/host/sign.js → the token on stdout.
const { signContext } = require('../../examples/host/sign.js');

const [site, kid, ttl, now, ...pairs] = process.argv.slice(2);
const context = pairs.map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]);
signContext(context, site, kid, process.env.FLOWGATE_KITS_SECRET, { ttl: Number(ttl), now: Number(now) })
  .then((token) => process.stdout.write(token + '\n'));
