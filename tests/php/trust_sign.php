<?php
// Test driver: one JSON request on stdin → examples/host/sign.php → the token on stdout.
// In: {"context": [[key, value], ...], "site": "...", "kid": "...", "secret": "...",
//      "ttl": 300, "alg": "HS256", "now": 123}
declare(strict_types=1);
require __DIR__ . '/../../examples/host/sign.php';

$in = json_decode(stream_get_contents(STDIN), true, 512, JSON_THROW_ON_ERROR);
$context = [];
foreach ($in['context'] as [$k, $v]) {
    $context[$k] = $v;
}
echo flowgate_sign_context(
    $context,
    $in['site'],
    $in['kid'],
    $in['secret'],
    $in['ttl'] ?? 300,
    $in['alg'] ?? 'HS256',
    $in['now'] ?? null
), "\n";
