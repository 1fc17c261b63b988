<?php
// Reference outputs for flowgate's PHP-exact value sanitising (src/context/html.rs).
//
//   php html.php            stdin: one hex-encoded input a line
//                           stdout: hex(decode) hex(strip) hex(strip(decode)) a line, where
//                           decode = html_entity_decode($v, ENT_QUOTES | ENT_HTML5, 'UTF-8')
//                           and strip = strip_tags($v)
//   php html.php --table    stdout: hex(character) hex(entity) a line, from
//                           get_html_translation_table(HTML_ENTITIES, ENT_QUOTES | ENT_HTML5)
//   php html.php --numeric  stdout: "first last" a line (decimal): the ranges of code points
//                           0..=0x110001 whose numeric reference &#xHEX; decodes
//
// Hex keeps every byte exact (NUL, invalid UTF-8) through the pipes.

$mode = $argv[1] ?? '';
$flags = ENT_QUOTES | ENT_HTML5;

if ($mode === '--table') {
    foreach (get_html_translation_table(HTML_ENTITIES, $flags, 'UTF-8') as $char => $entity) {
        echo bin2hex((string) $char), ' ', bin2hex($entity), "\n";
    }
    exit(0);
}

if ($mode === '--numeric') {
    $first = null;
    for ($cp = 0; $cp <= 0x110001; $cp++) {
        $ref = sprintf('&#x%X;', $cp);
        $ok = html_entity_decode($ref, $flags, 'UTF-8') !== $ref;
        if ($ok && $first === null) {
            $first = $cp;
        } elseif (!$ok && $first !== null) {
            echo $first, ' ', $cp - 1, "\n";
            $first = null;
        }
    }
    if ($first !== null) {
        echo $first, ' ', 0x110001, "\n";
    }
    exit(0);
}

if ($mode !== '') {
    fwrite(STDERR, "unknown mode $mode\n");
    exit(2);
}

$out = '';
while (($line = fgets(STDIN)) !== false) {
    $line = rtrim($line, "\n");
    $v = hex2bin($line);
    if ($v === false) {
        fwrite(STDERR, "bad hex line\n");
        exit(2);
    }
    $d = html_entity_decode($v, $flags, 'UTF-8');
    $out .= bin2hex($d) . ' ' . bin2hex(strip_tags($v)) . ' ' . bin2hex(strip_tags($d)) . "\n";
    if (strlen($out) > 65536) {
        fwrite(STDOUT, $out);
        $out = '';
    }
}
fwrite(STDOUT, $out);
