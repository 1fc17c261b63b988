//! PHP-strict base64 (`base64_decode($s, true)`) decoded into a reused buffer.
//!
//! PHP's strict mode (ext/standard/base64.c) differs from RFC 4648 decoders in the details:
//! space, tab, CR and LF are skipped anywhere (even between and after `=`); every other byte
//! outside the standard alphabet fails; any data after the first `=` fails; padding is optional,
//! but when present it must complete the last group (`ab=` and `abcd=` fail); a last group of a
//! single symbol fails; non-zero trailing bits are accepted and dropped.
//!
//! `base64-simd` decodes the complete 4-symbol groups (SIMD, runtime-detected); the last
//! partial group, whose trailing bits PHP ignores, and the PHP-specific rules are handled here.

/// The input is not PHP-strict base64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InvalidBase64;

/// Reusable buffers for [`Decoder::decode`].
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    /// The input without whitespace, used only when it has some.
    compact: Vec<u8>,
    /// Output buffer; only its first `len` bytes belong to the last call. It is never shrunk,
    /// so it is zero-filled only when it grows.
    out: Vec<u8>,
}

impl Decoder {
    /// Decodes `input` like PHP's `base64_decode($input, true)`; the result borrows the decoder.
    pub(crate) fn decode(&mut self, input: &[u8]) -> Result<&[u8], InvalidBase64> {
        // Optimistic: payloads rarely carry whitespace, so decode first and look for the
        // skipped bytes only when that fails.
        let len = match decode_symbols(input, &mut self.out) {
            Ok(len) => len,
            Err(e) if !input.iter().copied().any(is_skipped) => return Err(e),
            Err(_) => {
                self.compact.clear();
                self.compact
                    .extend(input.iter().copied().filter(|&b| !is_skipped(b)));
                decode_symbols(&self.compact, &mut self.out)?
            }
        };
        Ok(&self.out[..len])
    }
}

/// Decodes whitespace-free `symbols` into `out` (grown, never shrunk); returns the length.
fn decode_symbols(symbols: &[u8], out: &mut Vec<u8>) -> Result<usize, InvalidBase64> {
    // Padding: the run of `=` at the end. An `=` anywhere earlier is "data after
    // padding" in PHP's terms and is rejected by the decoder as an invalid symbol.
    let data_len = symbols
        .iter()
        .rposition(|&b| b != b'=')
        .map_or(0, |i| i + 1);
    let padding = symbols.len() - data_len;
    if data_len % 4 == 1 || (padding > 0 && (padding > 2 || !symbols.len().is_multiple_of(4))) {
        return Err(InvalidBase64);
    }

    let data = &symbols[..data_len];
    let (full, tail) = data.split_at(data_len / 4 * 4);
    let full_out = full.len() / 4 * 3;
    let len = full_out + tail.len().saturating_sub(1);
    if out.len() < len {
        out.resize(len, 0);
    }
    base64_simd::STANDARD_NO_PAD
        .decode(full, base64_simd::Out::from_slice(&mut out[..full_out]))
        .map_err(|_| InvalidBase64)?;
    decode_tail(tail, &mut out[full_out..len])?;
    Ok(len)
}

/// Decodes a last group of 2 or 3 symbols into 1 or 2 bytes, dropping the trailing bits.
fn decode_tail(tail: &[u8], out: &mut [u8]) -> Result<(), InvalidBase64> {
    let mut bits = 0u32;
    for &c in tail {
        bits = bits << 6 | u32::from(symbol_value(c).ok_or(InvalidBase64)?);
    }
    match tail.len() {
        0 => {}
        2 => out[0] = (bits >> 4) as u8,
        3 => {
            out[0] = (bits >> 10) as u8;
            out[1] = (bits >> 2) as u8;
        }
        _ => return Err(InvalidBase64),
    }
    Ok(())
}

fn symbol_value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// The bytes PHP's strict decoder skips.
#[inline]
fn is_skipped(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn php(input: &str) -> Option<Vec<u8>> {
        Decoder::default()
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

    #[test]
    fn agrees_with_a_standard_decoder_at_every_length() {
        use base64::Engine as _;
        use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7919 % 251) as u8).collect();
        let mut d = Decoder::default();
        for n in 0..data.len() {
            let padded = STANDARD.encode(&data[..n]);
            assert_eq!(d.decode(padded.as_bytes()), Ok(&data[..n]), "{n}");
            let bare = STANDARD_NO_PAD.encode(&data[..n]);
            assert_eq!(d.decode(bare.as_bytes()), Ok(&data[..n]), "{n}");
            let spaced: Vec<u8> = padded
                .bytes()
                .enumerate()
                .flat_map(|(i, b)| if i % 7 == 3 { vec![b'\n', b] } else { vec![b] })
                .collect();
            assert_eq!(d.decode(&spaced), Ok(&data[..n]), "{n}");
        }
    }
}
