//! `values: strict`: what a site can ask for on top of the PHP-exact pipeline, so an operator
//! panel never shows a value other than it reads.
//!
//! Removed: C0 and C1 control characters except tab and newline, and the Unicode bidi
//! embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069), which can make
//! `abc\u{202E}gnp.exe\u{202C}def` display as `abcexe.pngdef`. Then the value is normalised to NFC,
//! so one visible string has one spelling.

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

/// Whether `c` is removed from a strict value.
pub fn is_removed(c: char) -> bool {
    match c {
        '\t' | '\n' => false,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => true,
        _ => false,
    }
}

/// `value` made strict into `out` (cleared first); `false` when nothing changed, so the
/// caller keeps the original.
pub fn strict_into(value: &str, out: &mut String) -> bool {
    out.clear();
    let clean = !value.chars().any(is_removed);
    if clean && is_nfc_quick(value.chars()) == IsNormalized::Yes {
        return false;
    }
    out.extend(value.chars().filter(|c| !is_removed(*c)).nfc());
    out != value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict(v: &str) -> String {
        let mut out = String::new();
        if strict_into(v, &mut out) {
            out
        } else {
            v.to_owned()
        }
    }

    #[test]
    fn removes_controls_and_bidi_keeps_tab_and_newline() {
        assert_eq!(strict("abc\u{202E}gnp.exe\u{202C}def"), "abcgnp.exedef");
        assert_eq!(strict("a\u{2066}b\u{2069}c"), "abc");
        assert_eq!(strict("a\u{0}b\u{1b}[31mc\u{7f}\u{85}d"), "ab[31mcd");
        assert_eq!(strict("line1\nline2\tx\r"), "line1\nline2\tx");
        assert_eq!(strict("plain text"), "plain text");
    }

    #[test]
    fn composes_to_nfc() {
        assert_eq!(strict("e\u{301}"), "\u{e9}");
        assert_eq!(strict("\u{e9}"), "\u{e9}");
        // A mark left alone after a removed control still composes with its base.
        assert_eq!(strict("e\u{202E}\u{301}"), "\u{e9}");
    }
}
