//! PHP's `html_entity_decode` (ENT_QUOTES | ENT_HTML5, UTF-8) and `strip_tags`, byte-exact.
