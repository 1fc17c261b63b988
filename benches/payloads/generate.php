<?php
// Writes the benchmark payloads (one base64 line each) next to this file:
//   a.b64  the product docs' 5-key example
//   b.b64  valid, just under 20,000 chars: 50 HTML- and entity-heavy values
//   c.b64  exactly 20,000 chars whose JSON fails at its last byte
//   d.b64  over 20,000 chars (discarded by size)
// Run: php benches/payloads/generate.php

$dir = __DIR__;

$a = json_encode([
    'account_id' => 'USR-84920',
    'plan' => 'Pro',
    'last_order' => '#ORD-20241122',
    'ims_username' => 'Jane Smith',
    'ims_email' => 'jane@example.com',
]);

$snippet = '<p class="note">Order &amp; delivery &mdash; <b>Jane</b> &lt;jane@example.com&gt; '
    . '&#x1F600; &eacute;t&eacute; &#8212; <a href="/o?id=1&amp;x=2">link</a><!-- c --> 1 &lt; 2 '
    . '&nbsp;&copy;&#169;&NotAnEntity; <script>alert(1)</script></p>';

/** 50 members; the last value is padded so the JSON has exactly $len bytes. */
function object_of_len(string $snippet, int $len): string
{
    $members = [];
    for ($i = 0; $i < 50; $i++) {
        $key = match ($i) {
            0 => 'ims_username',
            1 => 'ims_email',
            2 => 'ims_telephone',
            default => sprintf('field_%02d', $i),
        };
        $members[$key] = $snippet;
    }
    $json = json_encode($members, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
    $pad = $len - strlen($json);
    if ($pad < 0) {
        fwrite(STDERR, "snippet too long for $len bytes\n");
        exit(1);
    }
    // Pad inside the last string value.
    return substr($json, 0, -2) . str_repeat('x', $pad) . '"}';
}

// 14,997 JSON bytes → 19,996 base64 chars.
$b = object_of_len($snippet, 14997);
// 15,000 JSON bytes → exactly 20,000 chars; the closing brace becomes a bracket.
$c = substr(object_of_len($snippet, 15000), 0, -1) . ']';
// 15,003 JSON bytes → 20,004 chars.
$d = object_of_len($snippet, 15003);

foreach (['a' => $a, 'b' => $b, 'c' => $c, 'd' => $d] as $name => $json) {
    $b64 = base64_encode($json);
    file_put_contents("$dir/$name.b64", $b64 . "\n");
    fprintf(STDERR, "%s.b64: %d chars\n", $name, strlen($b64));
}
