<?php
// Test driver: one JSON request on stdin → examples/upstream/verify.php → one JSON answer.
// In:  {"headers": {name: value|[values]}, "path": "...", "secrets": [...], "tolerance": 300, "now": 123}
// Out: {"ok": true, "result": {...}} or {"ok": false, "reason": "mismatch"}
declare(strict_types=1);
require __DIR__ . '/../../examples/upstream/verify.php';

$in = json_decode(stream_get_contents(STDIN), true, 512, JSON_THROW_ON_ERROR);
try {
    $result = flowgate_verify(
        $in['headers'],
        $in['path'],
        $in['secrets'],
        $in['tolerance'] ?? 300,
        $in['now'] ?? null,
        $in['prefix'] ?? 'X-Flowgate-'
    );
    // Ordered pairs, so the caller can compare order too.
    $pairs = function (array $a): array {
        $out = [];
        foreach ($a as $k => $v) {
            $out[] = [(string) $k, $v];
        }
        return $out;
    };
    $result['context'] = $pairs($result['context']);
    $result['prefill'] = $pairs($result['prefill']);
    echo json_encode(['ok' => true, 'result' => $result], JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES), "\n";
} catch (FlowgateVerifyError $e) {
    echo json_encode(['ok' => false, 'reason' => $e->reason]), "\n";
}
