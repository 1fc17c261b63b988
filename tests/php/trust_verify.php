<?php
// Test driver: one JSON job on stdin → examples/upstream/verify.php → one JSON answer.
// In:  {"secrets": [...], "settings": {tolerance, now, prefix, accept_v1, request_id_header,
//       client_ip_header}, "replay": null | "memory" | "apcu",
//       "requests": [{"method": "GET", "target": "/p?q", "headers": {name: value|[values]}}, ...]}
// Out: {"config_error": "..."} or {"results": [{"ok": true, "result": {...}} | {"ok": false,
//       "reason": "bad_signature"}, ...]}, one result per request, in order (one replay cache).
declare(strict_types=1);
require __DIR__ . '/../../examples/upstream/verify.php';

$in = json_decode(stream_get_contents(STDIN), true, 512, JSON_THROW_ON_ERROR);
$pairs = function (?array $a): ?array {
    if ($a === null) {
        return null;
    }
    $out = [];
    foreach ($a as $k => $v) {
        $out[] = [(string) $k, $v];
    }
    return $out;
};
try {
    $settings = $in['settings'] ?? [];
    $tolerance = (int) ($settings['tolerance'] ?? 300);
    switch ($in['replay'] ?? null) {
        case 'memory':
            $settings['replay'] = new FlowgateMemoryReplayCache($tolerance);
            break;
        case 'apcu':
            $settings['replay'] = new FlowgateApcuReplayCache($tolerance, 'flowgate:test:' . bin2hex(random_bytes(8)) . ':');
            break;
    }
    // Secrets as JSON gives them: null stands for getenv() of an unset variable (false).
    $secrets = array_map(function ($s) {
        return $s === null ? false : $s;
    }, $in['secrets']);
    $options = new FlowgateOptions($secrets, $settings);
} catch (FlowgateConfigError $e) {
    echo json_encode(['config_error' => $e->getMessage()]), "\n";
    exit(0);
}
$results = [];
foreach ($in['requests'] as $request) {
    try {
        $t = flowgate_verify($request, $options);
        $results[] = ['ok' => true, 'result' => [
            'site' => $t->site,
            'session' => $t->session,
            'status' => $t->status,
            'discard_reason' => $t->discardReason,
            'context' => $pairs($t->context),
            'verified_prefill' => $pairs($t->verifiedPrefill()),
            'browser_prefill' => $pairs($t->browserPrefill(true)),
            'request_id' => $t->requestId,
            'client_ip' => $t->clientIp,
            'signed_at' => $t->signedAt,
            'version' => $t->version,
        ]];
    } catch (FlowgateVerifyError $e) {
        $results[] = ['ok' => false, 'reason' => $e->reason];
    }
}
echo json_encode(['results' => $results], JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES), "\n";
