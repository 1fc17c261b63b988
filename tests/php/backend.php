<?php
// A chat backend as PHP serves one: `php -d apc.enable_cli=1 -S HOST:PORT tests/php/backend.php`
// (router script: every request comes here). It answers what PHP made of the request — the raw
// REQUEST_URI, the path it would route on (decoded, dot segments resolved, as a framework's
// router does), $_GET's keys, the identity headers — and verify.php's verdict with the secret
// in FLOWGATE_SIGNING_SECRET and an APCu replay cache, as JSON.
declare(strict_types=1);
require __DIR__ . '/../../examples/upstream/verify.php';

/** The path a router would dispatch on: percent-decoded, dot segments and `//` resolved. */
function routed_path(string $uri): string
{
    $path = rawurldecode((string) parse_url('http://x' . $uri, PHP_URL_PATH));
    $out = [];
    foreach (explode('/', $path) as $segment) {
        if ($segment === '' || $segment === '.') {
            continue;
        }
        if ($segment === '..') {
            array_pop($out);
            continue;
        }
        $out[] = $segment;
    }
    return '/' . implode('/', $out);
}

$headers = [];
foreach ($_SERVER as $key => $value) {
    if (is_string($key) && strncmp($key, 'HTTP_', 5) === 0) {
        $headers[strtolower(str_replace('_', '-', substr($key, 5)))] = $value;
    }
}
$verdict = null;
try {
    $settings = ['replay' => new FlowgateApcuReplayCache(300, 'flowgate:backend:' . getmypid() . ':')];
    if (getenv('FLOWGATE_ACCEPT_V1') === '1') {
        $settings['accept_v1'] = true;
        $settings['replay'] = null;
    }
    $options = new FlowgateOptions(flowgate_secrets_from_env('FLOWGATE_SIGNING_SECRET'), $settings);
    $t = flowgate_verify_request($options);
    $verdict = ['ok' => true, 'status' => $t->status, 'site' => $t->site, 'session' => $t->session,
        'request_id' => $t->requestId, 'client_ip' => $t->clientIp, 'version' => $t->version,
        'verified_prefill' => $t->verifiedPrefill()];
} catch (FlowgateVerifyError $e) {
    $verdict = ['ok' => false, 'reason' => $e->reason];
} catch (FlowgateConfigError $e) {
    $verdict = ['ok' => false, 'config_error' => $e->getMessage()];
}
header('Content-Type: application/json');
echo json_encode([
    'method' => $_SERVER['REQUEST_METHOD'] ?? null,
    'request_uri' => $_SERVER['REQUEST_URI'] ?? null,
    'routed_path' => routed_path((string) ($_SERVER['REQUEST_URI'] ?? '/')),
    'get_keys' => array_keys($_GET),
    'headers' => $headers,
    'verify' => $verdict,
], JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE), "\n";
