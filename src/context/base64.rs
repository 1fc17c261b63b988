//! PHP-strict base64 (`base64_decode($s, true)`) decoded into a reused buffer.
//!
//! PHP's strict mode (ext/standard/base64.c) differs from RFC 4648 decoders in the details:
//! space, tab, CR and LF are skipped anywhere (even between and after `=`); every other byte
//! outside the standard alphabet fails; any data after the first `=` fails; padding is optional,
//! but when present it must complete the last group (`ab=` and `abcd=` fail); a last group of a
//! single symbol fails; non-zero trailing bits are accepted and dropped.
//!
//! The `base64` crate does the bulk decoding with a padding-indifferent, trailing-bits-tolerant
//! engine; the PHP-specific rules are checked here around it.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Standard alphabet, padding optional, non-zero trailing bits tolerated.
const ENGINE: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// The input is not PHP-strict base64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidBase64;

/// Reusable buffers for [`Decoder::decode`].
#[derive(Debug, Default)]
pub struct Decoder {
    /// The input without whitespace, used only when the input has some.
    compact: Vec<u8>,
    /// The decoded bytes of the last successful call.
    out: Vec<u8>,
}

impl Decoder {
    /// A decoder with empty buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes `input` like PHP's `base64_decode($input, true)`; the result borrows the decoder.
    pub fn decode(&mut self, input: &[u8]) -> Result<&[u8], InvalidBase64> {
        let symbols = if has_skipped_whitespace(input) {
            self.compact.clear();
            self.compact
                .extend(input.iter().copied().filter(|&b| !is_skipped(b)));
            &self.compact[..]
        } else {
            input
        };

        // Padding: the run of `=` at the end. An `=` anywhere earlier is "data after
        // padding" in PHP's terms and is rejected by the engine as an invalid byte.
        let data_len = symbols
            .iter()
            .rposition(|&b| b != b'=')
            .map_or(0, |i| i + 1);
        let padding = symbols.len() - data_len;
        if data_len % 4 == 1 || (padding > 0 && (padding > 2 || symbols.len() % 4 != 0)) {
            return Err(InvalidBase64);
        }

        self.out.clear();
        ENGINE
            .decode_vec(&symbols[..data_len], &mut self.out)
            .map_err(|_| InvalidBase64)?;
        Ok(&self.out)
    }
}

/// The bytes PHP's strict decoder skips.
#[inline]
fn is_skipped(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Whether `input` holds a byte PHP skips; branch-free per chunk so it vectorises.
fn has_skipped_whitespace(input: &[u8]) -> bool {
    input.chunks(64).any(|chunk| {
        chunk
            .iter()
            .fold(false, |seen, &b| seen | (b <= b' ' && is_skipped(b)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn php(input: &str) -> Option<Vec<u8>> {
        Decoder::new()
            .decode(input.as_bytes())
            .ok()
            .map(<[u8]>::to_vec)
    }

    #[test]
    fn standard_and_unpadded() {
        assert_eq!(php("YQ==").as_deref(), Some(&b"a"[..]));
        assert_eq!(php("YQ").as_deref(), Some(&b"a"[..]));
        assert_eq!(php("YWI").as_deref(), Some(&b"ab"[..]));
        assert_eq!(php("YWI=").as_deref(), Some(&b"ab"[..]));
        assert_eq!(php("").as_deref(), Some(&b""[..]));
    }

    #[test]
    fn whitespace_is_skipped_anywhere() {
        assert_eq!(php(" Y Q=\n=\r\t").as_deref(), Some(&b"a"[..]));
    }

    #[test]
    fn other_bytes_fail() {
        for bad in ["YQ==\u{b}", "Y\u{c}Q", "YQ-_", "Y_Q=", "YQ\0", "YQ==é"] {
            assert_eq!(php(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn padding_rules() {
        for bad in [
            "ab=", "abcd=", "=", "====", "YQ===", "YQ=a", "Y=Q=", "a", "abcde",
        ] {
            assert_eq!(php(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn trailing_bits_are_dropped() {
        assert_eq!(php("YR==").as_deref(), Some(&b"a"[..]));
        assert_eq!(php("YWJ").as_deref(), Some(&b"ab"[..]));
    }
}
