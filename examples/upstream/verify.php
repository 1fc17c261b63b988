<?php
/**
 * flowgate — verify a request the backend received from flowgate (plain PHP 7.4+/8.x, no
 * Composer, no extension beyond the standard `hash`; APCu only for the shared replay cache).
 *
 * flowgate signs the whole request it forwards with HMAC-SHA256 and sends
 * `X-Flowgate-Signature: t=<unix>,v2=<64 hex>` (`t=…,v1=…,v2=…` during a transition). The signed
 * string v2 is, joined with "\n" (no newline at the end):
 *
 *     v2, t, request id, method, host, target, client address,
 *     Site, Session, Status, Context, Prefill
 *
 * where `request id` is the X-Request-Id value, `host` the Host value, `target` the path and, when
 * not empty, "?" and the query exactly as received, `client address` the X-Real-IP value, and the
 * rest the X-Flowgate-* values ("" for an absent header). v1 (only with `accept_v1`) is
 * "v1", t, path, Site, Session, Status, Context, Prefill.
 *
 * Usage (front controller of the chat backend):
 *
 *     require __DIR__ . '/verify.php';
 *     // Once: the same list as flowgate's FLOWGATE_SIGNING_SECRET (comma-separated, newest
 *     // first). An empty list or a secret under 32 bytes throws FlowgateConfigError here.
 *     $options = new FlowgateOptions(flowgate_secrets_from_env('FLOWGATE_SIGNING_SECRET'));
 *     try {
 *         $trusted = flowgate_verify_request($options);
 *     } catch (FlowgateVerifyError $e) {
 *         error_log('flowgate headers rejected: ' . $e->reason);  // never log header values
 *         $trusted = null;                                         // treat as anonymous
 *     }
 *     $prefill = $trusted ? $trusted->verifiedPrefill() : null;   // null unless the host site signed
 *     if ($prefill !== null && isset($prefill['visitor_email'])) { ... skip the email question ... }
 *
 * Rotation: list the new secret first and keep the old one until every flowgate instance signs
 * with it; a signature made with any listed secret is accepted.
 */

declare(strict_types=1);

/** A secret list or option that must not be verified with; thrown before any verification. */
final class FlowgateConfigError extends LogicException
{
}

/** Why a request was rejected; `$reason` is a stable snake_case name, the same in every kit. */
final class FlowgateVerifyError extends RuntimeException
{
    /** @var string missing_signature | malformed_signature | unsupported_version | expired |
     *              bad_signature | replayed | bad_header */
    public $reason;

    public function __construct(string $reason, string $message)
    {
        parent::__construct($message);
        $this->reason = $reason;
    }
}

/** Remembers signed request ids: `seen()` atomically remembers one and says if it was known. */
interface FlowgateReplayCache
{
    public function seen(string $requestId, int $t): bool;
}

/**
 * In-process replay cache, for long-running PHP servers (RoadRunner, Swoole, a CLI worker).
 * Bounded: entries older than 2 × tolerance (by the newest `t` seen) are forgotten, and past
 * `$maxEntries` the oldest goes. Under PHP-FPM each request is its own process: use APCu.
 */
final class FlowgateMemoryReplayCache implements FlowgateReplayCache
{
    /** @var array<string,int> id => t, in insertion order */
    private $ids = [];
    private $window;
    private $maxEntries;
    private $newest = 0;

    public function __construct(int $tolerance = 300, int $maxEntries = 100000)
    {
        $this->window = 2 * $tolerance;
        $this->maxEntries = max(1, $maxEntries);
    }

    public function seen(string $requestId, int $t): bool
    {
        $this->newest = max($this->newest, $t);
        foreach ($this->ids as $id => $at) {
            if ($at >= $this->newest - $this->window) {
                break;
            }
            unset($this->ids[$id]);
        }
        if (isset($this->ids[$requestId])) {
            return true;
        }
        while (count($this->ids) >= $this->maxEntries) {
            unset($this->ids[array_key_first($this->ids)]);
        }
        $this->ids[$requestId] = $t;
        return false;
    }
}

/** Replay cache shared by every PHP-FPM worker of the host, in APCu (`apcu_add` is atomic). */
final class FlowgateApcuReplayCache implements FlowgateReplayCache
{
    private $ttl;
    private $prefix;

    public function __construct(int $tolerance = 300, string $prefix = 'flowgate:replay:')
    {
        if (!function_exists('apcu_add') || !apcu_enabled()) {
            throw new FlowgateConfigError('APCu is not available; install and enable it, or use another FlowgateReplayCache');
        }
        $this->ttl = 2 * $tolerance;
        $this->prefix = $prefix;
    }

    public function seen(string $requestId, int $t): bool
    {
        return !apcu_add($this->prefix . $requestId, $t, $this->ttl);
    }
}

/** How to verify: secrets (checked here, once) and settings. */
final class FlowgateOptions
{
    /** @var string[] */
    public $secrets;
    /** @var int */
    public $tolerance = 300;
    /** @var int|null unix time to check against (tests); the clock when null */
    public $now = null;
    /** @var string */
    public $prefix = 'X-Flowgate-';
    /** @var bool also accept a v1 signature when there is no v2 (transition only) */
    public $acceptV1 = false;
    /** @var FlowgateReplayCache|null refuse a request id seen before */
    public $replay = null;
    /** @var string */
    public $requestIdHeader = 'X-Request-Id';
    /** @var string */
    public $clientIpHeader = 'X-Real-IP';

    /**
     * @param array $secrets  every secret currently accepted, newest first, each >= 32 bytes
     * @param array $settings tolerance, now, prefix, accept_v1, replay, request_id_header,
     *                        client_ip_header
     * @throws FlowgateConfigError
     */
    public function __construct(array $secrets, array $settings = [])
    {
        if (count($secrets) === 0) {
            throw new FlowgateConfigError('no verification secret given; use the list flowgate signs with (FLOWGATE_SIGNING_SECRET, newest first)');
        }
        $i = 0;
        foreach ($secrets as $secret) {
            $i++;
            if (!is_string($secret) || $secret === '') {
                throw new FlowgateConfigError("verification secret #$i is empty or not a string (an unset variable?)");
            }
            if (strlen($secret) < 32) {
                throw new FlowgateConfigError("verification secret #$i is shorter than 32 bytes; flowgate refuses such secrets too");
            }
        }
        $this->secrets = array_values($secrets);
        $known = ['tolerance', 'now', 'prefix', 'accept_v1', 'replay', 'request_id_header', 'client_ip_header'];
        foreach ($settings as $key => $value) {
            if (!in_array($key, $known, true)) {
                throw new FlowgateConfigError("unknown setting '$key'; known: " . implode(', ', $known));
            }
        }
        $this->tolerance = (int) ($settings['tolerance'] ?? 300);
        $this->now = isset($settings['now']) ? (int) $settings['now'] : null;
        $this->prefix = (string) ($settings['prefix'] ?? 'X-Flowgate-');
        $this->acceptV1 = (bool) ($settings['accept_v1'] ?? false);
        $this->requestIdHeader = (string) ($settings['request_id_header'] ?? 'X-Request-Id');
        $this->clientIpHeader = (string) ($settings['client_ip_header'] ?? 'X-Real-IP');
        $replay = $settings['replay'] ?? null;
        if ($replay !== null && !($replay instanceof FlowgateReplayCache)) {
            throw new FlowgateConfigError('replay must implement FlowgateReplayCache');
        }
        $this->replay = $replay;
    }
}

/** What a verified request carries. Pre-fill only through verifiedPrefill() / browserPrefill(). */
final class FlowgateTrustedContext
{
    /** @var string|null */
    public $site;
    /** @var string|null */
    public $session;
    /** @var string accepted | verified | unverified | absent | discarded */
    public $status;
    /** @var string|null the edge's reason when discarded */
    public $discardReason;
    /** @var array ordered key => value; a browser's claims unless $status is 'verified' */
    public $context;
    /** @var string|null v2 only */
    public $requestId;
    /** @var string|null v2 only */
    public $clientIp;
    /** @var int */
    public $signedAt;
    /** @var string 'v1' | 'v2' */
    public $version;
    /** @var array */
    private $prefill;

    public function __construct(array $fields, array $prefill)
    {
        foreach ($fields as $k => $v) {
            $this->$k = $v;
        }
        $this->prefill = $prefill;
    }

    /** The pre-fill slots only when the host site signed the context (`accepted; verified`). */
    public function verifiedPrefill(): ?array
    {
        return $this->status === 'verified' ? $this->prefill : null;
    }

    /**
     * For sites documented as `mode: off`: the browser-written pre-fill of a plain `accepted`
     * status, when the caller says so. Never the pre-fill of `accepted; unverified`.
     */
    public function browserPrefill(bool $acknowledgeUnsigned): ?array
    {
        if (!$acknowledgeUnsigned) {
            return null;
        }
        return in_array($this->status, ['accepted', 'verified'], true) ? $this->prefill : null;
    }
}

/** Reads a comma-separated secret list from the environment (blank entries skipped). */
function flowgate_secrets_from_env(string $name = 'FLOWGATE_SIGNING_SECRET'): array
{
    $raw = getenv($name);
    if ($raw === false) {
        return [];
    }
    return array_values(array_filter(array_map('trim', explode(',', $raw)), 'strlen'));
}

/** The current request as flowgate_verify() takes it, from `$_SERVER`. */
function flowgate_request_from_server(array $server): array
{
    $headers = [];
    foreach ($server as $key => $value) {
        if (is_string($key) && strncmp($key, 'HTTP_', 5) === 0) {
            $headers[strtolower(str_replace('_', '-', substr($key, 5)))] = $value;
        }
    }
    return [
        'method' => (string) ($server['REQUEST_METHOD'] ?? 'GET'),
        'target' => (string) ($server['REQUEST_URI'] ?? '/'),
        'headers' => $headers,
    ];
}

/** Verifies the current request (`$_SERVER`). */
function flowgate_verify_request(FlowgateOptions $options): FlowgateTrustedContext
{
    return flowgate_verify(flowgate_request_from_server($_SERVER), $options);
}

/**
 * Verifies a request and decodes its trusted headers.
 *
 * @param array $request ['method' => 'GET', 'target' => '/path?query' (as received),
 *                       'headers' => [name => value|[values]] (Host included; any case)]
 * @throws FlowgateVerifyError
 */
function flowgate_verify(array $request, FlowgateOptions $options): FlowgateTrustedContext
{
    $lower = [];
    foreach ($request['headers'] ?? [] as $name => $value) {
        $lower[strtolower((string) $name)] = $value;
    }
    $get = function (string $name) use ($lower): ?string {
        $name = strtolower($name);
        if (!array_key_exists($name, $lower)) {
            return null;
        }
        $value = $lower[$name];
        if (is_array($value)) {
            if (count($value) > 1) {
                throw new FlowgateVerifyError('bad_header', "header $name occurs more than once");
            }
            $value = count($value) === 1 ? reset($value) : null;
        }
        return $value === null ? null : (string) $value;
    };
    $p = $options->prefix;
    $signature = $get($p . 'Signature');
    $values = [
        'site' => $get($p . 'Site'),
        'session' => $get($p . 'Session'),
        'status' => $get($p . 'Status'),
        'context' => $get($p . 'Context'),
        'prefill' => $get($p . 'Prefill'),
    ];
    $requestId = $get($options->requestIdHeader);
    $clientIp = $get($options->clientIpHeader);
    $host = $get('Host');
    if ($signature === null) {
        throw new FlowgateVerifyError('missing_signature', 'signature header missing');
    }

    // t=<digits>,v1=<hex>,v2=<hex>: t once, each version at most once, unknown keys ignored.
    $t = null;
    $macs = [];
    $other = false;
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
        } elseif ($name === 'v1' || $name === 'v2') {
            if (isset($macs[$name]) || strlen($value) !== 64 || !ctype_xdigit($value)) {
                throw new FlowgateVerifyError('malformed_signature', "signature $name malformed");
            }
            $macs[$name] = strtolower($value);
        } elseif (preg_match('/^v[0-9]+$/', $name) === 1) {
            $other = true;
        }
    }
    if ($t === null || (count($macs) === 0 && !$other)) {
        throw new FlowgateVerifyError('malformed_signature', 'signature needs t= and a version');
    }
    if (isset($macs['v2'])) {
        $version = 'v2';
    } elseif (isset($macs['v1']) && $options->acceptV1) {
        $version = 'v1';
    } else {
        throw new FlowgateVerifyError('unsupported_version', 'no signature version this verifier checks');
    }

    $target = (string) ($request['target'] ?? '/');
    $cut = explode('?', $target, 2);
    if (count($cut) === 2 && $cut[1] === '') {
        $target = $cut[0];   // an empty query signs as none
    }
    $tail = [$values['site'], $values['session'], $values['status'], $values['context'], $values['prefill']];
    if ($version === 'v2') {
        $parts = array_merge(
            [$requestId, (string) ($request['method'] ?? 'GET'), $host, $target, $clientIp],
            $tail
        );
    } else {
        $parts = array_merge([$cut[0]], $tail);
    }
    $signed = $version . "\n" . $t;
    foreach ($parts as $part) {
        $signed .= "\n" . ($part ?? '');
    }
    $ok = false;
    foreach ($options->secrets as $secret) {
        // hash_equals is constant-time; every secret is tried.
        $ok = hash_equals(hash_hmac('sha256', $signed, $secret), $macs[$version]) || $ok;
    }
    if (!$ok) {
        throw new FlowgateVerifyError('bad_signature', 'signature does not match the request');
    }

    $now = $options->now ?? time();
    if (abs($now - $t) > $options->tolerance) {
        throw new FlowgateVerifyError('expired', 'signature is ' . ($now - $t) . ' s from now');
    }

    $statusText = $values['status'] ?? '';
    $reason = null;
    $statuses = ['accepted' => 'accepted', 'accepted; verified' => 'verified',
        'accepted; unverified' => 'unverified', 'absent' => 'absent', '' => 'absent'];
    if (isset($statuses[$statusText])) {
        $status = $statuses[$statusText];
    } elseif (strncmp($statusText, 'discarded; reason=', 18) === 0 && strlen($statusText) > 18) {
        $status = 'discarded';
        $reason = substr($statusText, 18);
    } else {
        throw new FlowgateVerifyError('bad_header', 'unknown status');
    }
    $v2 = $version === 'v2';
    $trusted = new FlowgateTrustedContext([
        'site' => $values['site'],
        'session' => $values['session'],
        'status' => $status,
        'discardReason' => $reason,
        'context' => flowgate_decode_object($values['context'] ?? ''),
        'requestId' => $v2 && $requestId !== null && $requestId !== '' ? $requestId : null,
        'clientIp' => $v2 && $clientIp !== null && $clientIp !== '' ? $clientIp : null,
        'signedAt' => $t,
        'version' => $version,
    ], flowgate_decode_object($values['prefill'] ?? ''));

    if ($options->replay !== null) {
        if (!$v2) {
            // v1 signs no request id: a replay could not be told apart.
            throw new FlowgateVerifyError('unsupported_version', 'replay protection needs v2');
        }
        if ($trusted->requestId === null) {
            throw new FlowgateVerifyError('bad_header', 'no request id to check for replays');
        }
        if ($options->replay->seen($trusted->requestId, $t)) {
            throw new FlowgateVerifyError('replayed', 'request id seen before');
        }
    }
    return $trusted;
}

/** Base64 of a JSON object of strings → ordered array key => value ("" → []). */
function flowgate_decode_object(string $value): array
{
    if ($value === '') {
        return [];
    }
    $json = base64_decode($value, true);
    $data = $json === false ? null : json_decode($json, true);
    if (!is_array($data) || $json[0] !== '{') {
        throw new FlowgateVerifyError('bad_header', 'trusted header cannot be decoded');
    }
    foreach ($data as $v) {
        if (!is_string($v)) {
            throw new FlowgateVerifyError('bad_header', 'trusted header cannot be decoded');
        }
    }
    return $data;
}
