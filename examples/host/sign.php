<?php
/**
 * flowgate — sign a visitor context on the host site's server (plain PHP, no Composer).
 *
 * An unsigned `data-visitor-context` is built in the browser, so anyone can claim any
 * `ims_email`. On a site whose flowgate mode is `optional` or `required`, sign the context
 * with the secret you share with flowgate; the result is a standard JWT (HS256 by default)
 * whose private claims are the context, with `aud` = your site id, `iat`, `exp` and a `kid`
 * naming the key:
 *
 *     require __DIR__ . '/sign.php';
 *     $token = flowgate_sign_context(
 *         ['account_id' => $u->id, 'ims_username' => $u->name, 'ims_email' => $u->email],
 *         'YOUR_SITEID',
 *         'key-2026-11',                              // the kid configured in flowgate
 *         getenv('FLOWGATE_SITE_KEY_2026_11')          // the shared secret, from your secrets store
 *     );
 *     // <script src=".../flowwidget.js" data-siteid="YOUR_SITEID"
 *     //         data-visitor-context-token="<?= htmlspecialchars($token, ENT_QUOTES) ?>"></script>
 *
 * The widget sends it as the `visitor_context_token` query parameter of its init request.
 * Keep `$ttl` short (minutes): the page only needs the token until the chat starts.
 *
 * Rotation: add the new key to flowgate under a new kid, switch this call to it, and remove the
 * old key from flowgate once no page can still hold a token signed with it (after `$ttl`).
 */

declare(strict_types=1);

/** Claims flowgate treats as registered; they cannot be context keys. */
const FLOWGATE_REGISTERED_CLAIMS = ['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti'];

/**
 * Signs `$context` (key => value, in the order operators should see it) for `$siteId`.
 *
 * @param string $alg HS256, HS384 or HS512
 * @throws InvalidArgumentException on a registered claim name in $context or another algorithm
 */
function flowgate_sign_context(
    array $context,
    string $siteId,
    string $kid,
    string $secret,
    int $ttl = 300,
    string $alg = 'HS256',
    ?int $now = null
): string {
    $algos = ['HS256' => 'sha256', 'HS384' => 'sha384', 'HS512' => 'sha512'];
    if (!isset($algos[$alg])) {
        throw new InvalidArgumentException('flowgate accepts HS256, HS384 and HS512 only');
    }
    foreach (array_keys($context) as $key) {
        if (in_array((string) $key, FLOWGATE_REGISTERED_CLAIMS, true)) {
            throw new InvalidArgumentException("context key $key is a registered claim");
        }
    }
    $now = $now ?? time();
    $payload = $context;
    $payload['aud'] = $siteId;
    $payload['iat'] = $now;
    $payload['exp'] = $now + $ttl;

    $flags = JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_THROW_ON_ERROR;
    $header = flowgate_base64url(json_encode(['typ' => 'JWT', 'alg' => $alg, 'kid' => $kid], $flags));
    $body = flowgate_base64url(json_encode($payload, $flags));
    $mac = hash_hmac($algos[$alg], $header . '.' . $body, $secret, true);
    return $header . '.' . $body . '.' . flowgate_base64url($mac);
}

/** Base64url without padding (RFC 7515 §2). */
function flowgate_base64url(string $bytes): string
{
    return rtrim(strtr(base64_encode($bytes), '+/', '-_'), '=');
}
