//! The long searches of `inspect --jsonl`: where a JSON string body stops being plain content,
//! in an input line's 20 KB payload (which usually has no stop at all) and in the answer's
//! values. 64 bytes per step with AVX2 where the CPU has it (checked at run time, the build's
//! baseline being SSE2), else the pipeline's 16-byte SSE2 scans.

use crate::context::json::{find_ascii_string_stop, find_writer_escape};

/// Index of the first `"`, `\`, control (< 0x20) or non-ASCII (>= 0x80) byte of `b`: the end
/// of a run that needs neither unescaping nor UTF-8 checks.
pub(super) fn find_body_stop(b: &[u8]) -> Option<usize> {
    find_stop::<true>(b)
}

/// Index of the first `"`, `\` or control byte of `b`: what a JSON writer escapes.
pub(super) fn find_escape(b: &[u8]) -> Option<usize> {
    find_stop::<false>(b)
}

/// The first `"`, `\` or control byte, and with `NON_ASCII` also the first byte >= 0x80.
#[inline]
fn find_stop<const NON_ASCII: bool>(b: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if b.len() >= 64 && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { find_stop_avx2::<NON_ASCII>(b) };
    }
    if NON_ASCII {
        find_ascii_string_stop(b)
    } else {
        find_writer_escape(b)
    }
}

/// [`find_stop`] with AVX2, 64 bytes per step; the last partial step goes to the SSE2 scan.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn find_stop_avx2<const NON_ASCII: bool>(b: &[u8]) -> Option<usize> {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_cmpgt_epi8, _mm256_loadu_si256, _mm256_min_epu8,
        _mm256_movemask_epi8, _mm256_or_si256, _mm256_set1_epi8, _mm256_xor_si256,
    };
    // 0xff in each stop byte.
    #[target_feature(enable = "avx2")]
    fn classify<const NON_ASCII: bool>(v: __m256i) -> __m256i {
        let backslash = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'\\' as i8));
        if NON_ASCII {
            // As signed bytes, the control bytes and the non-ASCII ones are exactly those
            // below 0x20: one compare for both.
            let low_or_high = _mm256_cmpgt_epi8(_mm256_set1_epi8(0x20), v);
            let quote = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'"' as i8));
            return _mm256_or_si256(_mm256_or_si256(low_or_high, quote), backslash);
        }
        // Bit 1 flipped maps `"` to 0x20 and control bytes onto 0x00-0x1f, nothing else to
        // 0x20 or below (see `find_string_stop`).
        let flipped = _mm256_xor_si256(v, _mm256_set1_epi8(0x02));
        let quote_or_control =
            _mm256_cmpeq_epi8(_mm256_min_epu8(flipped, _mm256_set1_epi8(0x20)), flipped);
        _mm256_or_si256(quote_or_control, backslash)
    }
    let mut i = 0;
    while i + 64 <= b.len() {
        // SAFETY: `i + 64 <= b.len()`, so both 32-byte loads read inside `b`; `loadu` needs
        // no alignment.
        let (lo, hi) = unsafe {
            let p = b.as_ptr().add(i);
            (
                _mm256_loadu_si256(p.cast()),
                _mm256_loadu_si256(p.add(32).cast()),
            )
        };
        let (lo, hi) = (classify::<NON_ASCII>(lo), classify::<NON_ASCII>(hi));
        if _mm256_movemask_epi8(_mm256_or_si256(lo, hi)) != 0 {
            let lo = u64::from(_mm256_movemask_epi8(lo) as u32);
            let hi = u64::from(_mm256_movemask_epi8(hi) as u32);
            return Some(i + (lo | hi << 32).trailing_zeros() as usize);
        }
        i += 64;
    }
    let tail = &b[i..];
    let found = if NON_ASCII {
        find_ascii_string_stop(tail)
    } else {
        find_writer_escape(tail)
    };
    found.map(|p| i + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_stop_byte_at_every_offset() {
        let escape = |c: u8| c == b'"' || c == b'\\' || c < 0x20;
        let scalar = |b: &[u8]| b.iter().position(|&c| escape(c) || c >= 0x80);
        let scalar_escape = |b: &[u8]| b.iter().position(|&c| escape(c));
        for c in 0..=255u8 {
            for len in [0, 1, 63, 64, 65, 127, 128, 130, 200] {
                for at in (0..len).step_by(if c % 16 == 0 { 1 } else { 7 }) {
                    // Non-stop neighbours of the stop bytes around them.
                    let mut b: Vec<u8> = (0..len)
                        .map(|i| [b'!', b'#', b' ', b'~', b']'][i % 5])
                        .collect();
                    b[at] = c;
                    assert_eq!(find_body_stop(&b), scalar(&b), "{c:#x} at {at} of {len}");
                    assert_eq!(
                        find_escape(&b),
                        scalar_escape(&b),
                        "{c:#x} at {at} of {len}"
                    );
                }
            }
        }
        assert_eq!(find_body_stop(&[b'A'; 1000]), None);
        let mut two = vec![b'A'; 300];
        two[250] = 0x80;
        two[100] = b'"';
        assert_eq!(find_body_stop(&two), Some(100));
    }
}
