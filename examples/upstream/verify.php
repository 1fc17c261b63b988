<?php
/**
 * flowgate — verify the trusted headers a request received from flowgate (plain PHP 7.4+/8.x,
 * no Composer, no extension beyond the standard `hash`).
 *
 * flowgate signs what it sets (`X-Flowgate-Site`, `-Session`, `-Status`, `-Context`,
 * `-Prefill`) with HMAC-SHA256 and sends `X-Flowgate-Signature: t=<unix>,v1=<hex>`.
 * The signed string is
 *
 *     "v1\n" . t . "\n" . path . "\n" . Site . "\n" . Session . "\n" . Status . "\n"
 *            . Context . "\n" . Prefill
 *
 * where `path` is the request path without the query, exactly as received, and each header is
 * its exact value ("" when absent). Only a request that passes this check may skip workflow
 * questions with the pre-filled values.
 *
 * Usage (front controller of the chat backend):
 *
 *     require __DIR__ . '/verify.php';
 *     // Same format as flowgate's FLOWGATE_SIGNING_SECRET: comma-separated, newest first.
 *     $secrets = flowgate_secrets_from_env('FLOWGATE_SIGNING_SECRET');
 *     try {
 *         $trusted = flowgate_verify_request($secrets);
 *     } catch (FlowgateVerifyError $e) {
 *         error_log('flowgate headers rejected: ' . $e->reason);  // never log header values
 *         $trusted = null;                                         // treat as anonymous
 *     }
 *     if ($trusted && isset($trusted['prefill']['visitor_email'])) { ... }
 *
 * Rotation: list the new secret first and keep the old one until every flowgate instance signs
 * with the new one; a signature made with any listed secret is accepted.
 */

declare(strict_types=1);

/** Why a request's trusted headers were rejected; `$reason` is a stable snake_case name. */
final class FlowgateVerifyError extends RuntimeException
{
    /** @var string no_secrets | missing_signature | malformed_signature | repeated_header |
     *              mismatch | expired | from_future | undecodable */
    public $reason;

    public function __construct(string $reason, string $message)
    {
        parent::__construct($message);
        $this->reason = $reason;
    }
}

/** Reads a comma-separated secret list from the environment (empty entries skipped). */
function flowgate_secrets_from_env(string $name = 'FLOWGATE_SIGNING_SECRET'): array
{
    $raw = getenv($name);
    if ($raw === false) {
        return [];
    }
    return array_values(array_filter(array_map('trim', explode(',', $raw)), 'strlen'));
}

/** Verifies the current request (`$_SERVER`), returning the decoded trusted context. */
function flowgate_verify_request(array $secrets, int $tolerance = 300, string $prefix = 'X-Flowgate-'): array
{
    $uri = isset($_SERVER['REQUEST_URI']) ? (string) $_SERVER['REQUEST_URI'] : '/';
    $path = explode('?', $uri, 2)[0];
    return flowgate_verify(flowgate_headers_from_server($_SERVER), $path, $secrets, $tolerance, null, $prefix);
}

/** `$_SERVER['HTTP_X_FLOWGATE_CONTEXT']` → `['x-flowgate-context' => …]`. */
function flowgate_headers_from_server(array $server): array
{
    $headers = [];
    foreach ($server as $key => $value) {
        if (is_string($key) && strncmp($key, 'HTTP_', 5) === 0) {
            $headers[strtolower(str_replace('_', '-', substr($key, 5)))] = $value;
        }
    }
    return $headers;
}

/**
 * Verifies trusted headers and decodes them.
 *
 * @param array    $headers   name => value (string, or a list of strings as PSR-7 gives them);
 *                            names are matched case-insensitively
 * @param string   $path      request path without the query, exactly as received
 * @param string[] $secrets   every secret currently accepted, newest first
 * @param int      $tolerance accepted distance between the signature's `t` and now, seconds
 * @param int|null $now       unix time to check against (tests); the clock when null
 * @return array{site: ?string, session: ?string, status: string, verified: ?bool,
 *               discard_reason: ?string, context: array, prefill: array, signed_at: int}
 * @throws FlowgateVerifyError
 */
function flowgate_verify(
    array $headers,
    string $path,
    array $secrets,
    int $tolerance = 300,
    ?int $now = null,
    string $prefix = 'X-Flowgate-'
): array {
    if (count($secrets) === 0) {
        throw new FlowgateVerifyError('no_secrets', 'no verification secret configured');
    }
    $lower = [];
    foreach ($headers as $name => $value) {
        $lower[strtolower((string) $name)] = $value;
    }
    $get = function (string $suffix) use ($lower, $prefix): ?string {
        $name = strtolower($prefix . $suffix);
        if (!array_key_exists($name, $lower)) {
            return null;
        }
        $value = $lower[$name];
        if (is_array($value)) {
            if (count($value) > 1) {
                throw new FlowgateVerifyError('repeated_header', "trusted header $suffix occurs more than once");
            }
            $value = count($value) === 1 ? reset($value) : null;
        }
        return $value === null ? null : (string) $value;
    };

    $signature = $get('Signature');
    $site = $get('Site');
    $session = $get('Session');
    $status = $get('Status');
    $context = $get('Context');
    $prefill = $get('Prefill');
    if ($signature === null) {
        throw new FlowgateVerifyError('missing_signature', 'signature header missing');
    }

    // t=<digits>,v1=<64 hex>[,v1=…]; other fields are ignored (room for a later scheme).
    $t = null;
    $macs = [];
    foreach (explode(',', $signature) as $field) {
        $parts = explode('=', trim($field), 2);
        if (count($parts) !== 2) {
            continue;
        }
        [$name, $value] = $parts;
        if ($name === 't') {
            if ($t !== null || !ctype_digit($value) || strlen($value) > 18) {
                throw new FlowgateVerifyError('malformed_signature', 'signature timestamp malformed');
            }
            $t = (int) $value;
        } elseif ($name === 'v1') {
            if (strlen($value) !== 64 || !ctype_xdigit($value)) {
                throw new FlowgateVerifyError('malformed_signature', 'signature MAC malformed');
            }
            $macs[] = strtolower($value);
        }
    }
    if ($t === null || count($macs) === 0) {
        throw new FlowgateVerifyError('malformed_signature', 'signature needs t= and v1=');
    }

    $signed = "v1\n" . $t . "\n" . $path . "\n" . ($site ?? '') . "\n" . ($session ?? '') . "\n"
        . ($status ?? '') . "\n" . ($context ?? '') . "\n" . ($prefill ?? '');
    $ok = false;
    foreach ($secrets as $secret) {
        $expected = hash_hmac('sha256', $signed, (string) $secret);
        foreach ($macs as $mac) {
            // hash_equals is constant-time.
            $ok = hash_equals($expected, $mac) || $ok;
        }
    }
    if (!$ok) {
        throw new FlowgateVerifyError('mismatch', 'signature does not match the headers');
    }

    $now = $now ?? time();
    if ($now - $t > $tolerance) {
        throw new FlowgateVerifyError('expired', 'signature is ' . ($now - $t) . ' s old');
    }
    if ($t - $now > $tolerance) {
        throw new FlowgateVerifyError('from_future', 'signature is ' . ($t - $now) . ' s in the future');
    }

    $verified = null;
    $reason = null;
    $statusText = $status ?? '';
    if ($statusText === 'accepted; verified') {
        $verified = true;
    } elseif ($statusText === 'accepted; unverified') {
        $verified = false;
    } elseif (strncmp($statusText, 'discarded; reason=', 18) === 0 && strlen($statusText) > 18) {
        $reason = substr($statusText, 18);
    } elseif ($statusText !== 'accepted' && $statusText !== 'absent' && $statusText !== '') {
        throw new FlowgateVerifyError('undecodable', 'unknown status');
    }

    return [
        'site' => $site,
        'session' => $session,
        'status' => $statusText === '' ? 'absent' : $statusText,
        'verified' => $verified,
        'discard_reason' => $reason,
        'context' => flowgate_decode_object($context ?? '', 'Context'),
        'prefill' => flowgate_decode_object($prefill ?? '', 'Prefill'),
        'signed_at' => $t,
    ];
}

/** Base64 of a JSON object of strings → ordered array key => value ("" → []). */
function flowgate_decode_object(string $value, string $suffix): array
{
    if ($value === '') {
        return [];
    }
    $json = base64_decode($value, true);
    $data = $json === false ? null : json_decode($json, true);
    if (!is_array($data) || $json[0] !== '{') {
        throw new FlowgateVerifyError('undecodable', "trusted header $suffix cannot be decoded");
    }
    foreach ($data as $v) {
        if (!is_string($v)) {
            throw new FlowgateVerifyError('undecodable', "trusted header $suffix cannot be decoded");
        }
    }
    return $data;
}
