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
    // The AVX2 loop takes the complete 32-symbol blocks it can (if the CPU has AVX2); the
    // rest, and any block with a byte outside the alphabet, goes to `base64-simd`.
    let done = avx2::decode_blocks(full, &mut out[..full_out]);
    base64_simd::STANDARD_NO_PAD
        .decode(
            &full[done..],
            base64_simd::Out::from_slice(&mut out[done / 4 * 3..full_out]),
        )
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

/// Complete 32-symbol blocks decoded with AVX2, in registers: 24 bytes out per block for
/// about 16 instructions (`base64-simd` spends about 1.2 per input byte here). The method is
/// Wojciech Muła's and Daniel Lemire's ("Faster Base64 Encoding and Decoding using AVX2
/// Instructions", 2018): nibble lookups validate the alphabet, a third lookup maps each symbol
/// to its 6 bits, two multiply-adds pack them.
mod avx2 {
    /// Decodes the longest run of whole 32-symbol blocks at the start of `symbols` that hold
    /// only alphabet symbols and whose 32-byte store fits in `out` (`out` holds 3 bytes per 4
    /// symbols of `symbols`). Returns how many symbols were decoded (a multiple of 32); the
    /// caller decodes the rest. Without AVX2, 0.
    pub(super) fn decode_blocks(symbols: &[u8], out: &mut [u8]) -> usize {
        #[cfg(target_arch = "x86_64")]
        if symbols.len() >= 64 && std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { decode_blocks_avx2(symbols, out) };
        }
        let _ = (symbols, out);
        0
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn decode_blocks_avx2(symbols: &[u8], out: &mut [u8]) -> usize {
        use std::arch::x86_64::{
            _mm256_add_epi8, _mm256_and_si256, _mm256_cmpeq_epi8, _mm256_loadu_si256,
            _mm256_madd_epi16, _mm256_maddubs_epi16, _mm256_permutevar8x32_epi32, _mm256_set1_epi8,
            _mm256_set1_epi32, _mm256_setr_epi8, _mm256_setr_epi32, _mm256_shuffle_epi8,
            _mm256_srli_epi32, _mm256_storeu_si256, _mm256_testz_si256,
        };
        // Per low and high nibble: a symbol is outside the alphabet exactly when its two
        // entries share a bit (checked for all 256 byte values by the tests).
        #[rustfmt::skip]
        let lut_lo = _mm256_setr_epi8(
            0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x13, 0x1A, 0x1B, 0x1B, 0x1B, 0x1A,
            0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x13, 0x1A, 0x1B, 0x1B, 0x1B, 0x1A,
        );
        #[rustfmt::skip]
        let lut_hi = _mm256_setr_epi8(
            0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10,
            0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10,
        );
        // Added to a symbol to give its value, by high nibble (`/` one entry lower).
        #[rustfmt::skip]
        let lut_roll = _mm256_setr_epi8(
            0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0,
        );
        // The three bytes of each 4-symbol group, per 128-bit lane, then the lanes joined.
        #[rustfmt::skip]
        let pack = _mm256_setr_epi8(
            2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1,
            2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1,
        );
        let join = _mm256_setr_epi32(0, 1, 2, 4, 5, 6, -1, -1);
        let nibble = _mm256_set1_epi8(0x0f);
        let slash = _mm256_set1_epi8(b'/' as i8);
        let mut done = 0;
        // Each block stores 32 bytes of which 24 are output: the store must fit in `out`.
        while done + 32 <= symbols.len() && done / 4 * 3 + 32 <= out.len() {
            // SAFETY: `done + 32 <= symbols.len()`: the load reads inside `symbols`; `loadu`
            // needs no alignment.
            let v = unsafe { _mm256_loadu_si256(symbols.as_ptr().add(done).cast()) };
            let hi = _mm256_and_si256(_mm256_srli_epi32::<4>(v), nibble);
            let lo = _mm256_and_si256(v, nibble);
            let invalid = _mm256_testz_si256(
                _mm256_shuffle_epi8(lut_lo, lo),
                _mm256_shuffle_epi8(lut_hi, hi),
            ) == 0;
            if invalid {
                break;
            }
            let roll =
                _mm256_shuffle_epi8(lut_roll, _mm256_add_epi8(_mm256_cmpeq_epi8(v, slash), hi));
            let values = _mm256_add_epi8(v, roll);
            // aaaaaa bbbbbb → 12 bits per pair, then 24 bits per group, then 3 bytes each.
            let pairs = _mm256_maddubs_epi16(values, _mm256_set1_epi32(0x0140_0140));
            let groups = _mm256_madd_epi16(pairs, _mm256_set1_epi32(0x0001_1000));
            let bytes = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(groups, pack), join);
            // SAFETY: `done / 4 * 3 + 32 <= out.len()`: the store writes inside `out`; `storeu`
            // needs no alignment. Its last 8 bytes are overwritten by the next block or the
            // caller's decoder (or lie past the output's length).
            unsafe { _mm256_storeu_si256(out.as_mut_ptr().add(done / 4 * 3).cast(), bytes) };
            done += 32;
        }
        done
    }
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
    fn avx2_blocks_take_exactly_the_alphabet() {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = [0; 96];
        for b in 0..=255u8 {
            for at in [0, 5, 31, 32, 63, 64, 95] {
                let mut symbols = vec![b'Q'; 128];
                symbols[at] = b;
                let want = if ALPHABET.contains(&b) {
                    64
                } else {
                    at / 32 * 32
                };
                // Room for two 32-byte stores only: the third block is left to the caller.
                let got = avx2::decode_blocks(&symbols, &mut out[..64]);
                if std::arch::is_x86_feature_detected!("avx2") {
                    assert_eq!(got, want.min(64), "{b:#x} at {at}");
                }
            }
        }
    }

    #[test]
    fn avx2_blocks_decode_every_symbol_in_every_place() {
        use base64::Engine as _;
        let data: Vec<u8> = (0..3000u32).map(|i| (i * 7919 % 256) as u8).collect();
        let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&data);
        let mut d = Decoder::default();
        for start in 0..48 {
            let end = (start + 200 + start * 37).min(data.len());
            let symbols = &encoded[start * 4..end / 3 * 4];
            assert_eq!(
                d.decode(symbols.as_bytes()),
                Ok(&data[start * 3..end / 3 * 3]),
                "{start}"
            );
        }
        assert_eq!(d.decode(encoded.as_bytes()), Ok(&data[..]));
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
