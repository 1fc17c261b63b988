<?php
// The visitor-context pipeline of the contract (SPEC §1), written with PHP's own functions:
// the reference flowgate's Rust pipeline is compared with.
//
//   php -d precision=14 pipeline.php < lines
//
// stdin:  one {"id":…,"b64":"…"} object a line (other fields ignored)
// stdout: one {"id":…,"pairs":[[k,v],…]|null,"prefill":{…},"reason":null|"…"} a line, in
//         input order — the shape of `flowgate inspect --jsonl`; a malformed line gets
//         {"id":…,"error":"…"}.

const MAX_RAW_BYTES = 20000;
const MAX_KEY_BYTES = 100;
const MAX_VALUE_CHARS = 500;
const MAX_PAIRS = 50;

/** @return array{0: ?array, 1: ?string} [pairs, reason] */
function pipeline(string $raw): array
{
    if (strlen($raw) > MAX_RAW_BYTES) {
        return [null, 'size'];
    }
    $json = base64_decode($raw, true);
    if ($json === false) {
        return [null, 'base64'];
    }
    $data = json_decode($json);
    if (json_last_error() !== JSON_ERROR_NONE) {
        return [null, 'json'];
    }
    if (!is_object($data)) {
        return [null, 'not_object'];
    }
    $pairs = [];
    foreach ($data as $key => $value) {
        if (count($pairs) >= MAX_PAIRS) {
            break;
        }
        $key = (string) $key;
        if (strlen($key) > MAX_KEY_BYTES) {
            continue;
        }
        // The contract anchors with \z: PHP's `$` would also accept one trailing "\n".
        if (!preg_match('/^[a-zA-Z0-9_-]+\z/', $key)) {
            continue;
        }
        if ($value === null || is_array($value) || is_object($value)) {
            continue;
        }
        $value = (string) $value;
        $value = html_entity_decode($value, ENT_QUOTES | ENT_HTML5, 'UTF-8');
        $value = strip_tags($value);
        $value = mb_substr($value, 0, MAX_VALUE_CHARS, 'UTF-8');
        $pairs[] = [$key, $value];
    }
    return [$pairs, null];
}

function prefill(array $pairs): array
{
    $set = [];
    foreach ($pairs as [$key, $value]) {
        if ($value !== '') {
            $set[$key] = $value;
        }
    }
    $slots = [];
    if (isset($set['ims_username'])) {
        foreach (['visitor_name', 'username', 'name'] as $slot) {
            $slots[$slot] = $set['ims_username'];
        }
    }
    if (isset($set['ims_email'])) {
        foreach (['visitor_email', 'email'] as $slot) {
            $slots[$slot] = $set['ims_email'];
        }
    }
    $phone = $set['ims_telephone'] ?? $set['ims_phone'] ?? null;
    if ($phone !== null) {
        foreach (['visitor_phone', 'phone', 'custom1'] as $slot) {
            $slots[$slot] = $phone;
        }
    }
    return $slots;
}

$flags = JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE;
while (($line = fgets(STDIN)) !== false) {
    $line = rtrim($line, "\n");
    $in = json_decode($line, true);
    $id = is_array($in) ? ($in['id'] ?? null) : null;
    if (!is_array($in) || !is_string($in['b64'] ?? null)) {
        echo json_encode(['id' => $id, 'error' => 'malformed input line'], $flags), "\n";
        continue;
    }
    [$pairs, $reason] = pipeline($in['b64']);
    $out = [
        'id' => $id,
        'pairs' => $pairs,
        'prefill' => (object) ($pairs === null ? [] : prefill($pairs)),
        'reason' => $reason,
    ];
    $encoded = json_encode($out, $flags);
    if ($encoded === false) {
        $encoded = json_encode(['id' => $id, 'error' => json_last_error_msg()], $flags);
    }
    echo $encoded, "\n";
}
