//! PHP-strict base64 (`base64_decode($s, true)`) decoded into a reused buffer.
