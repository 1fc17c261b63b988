//! The one SSE2 block scan behind the JSON reader's string scan and the sanitiser's markup
//! search: 16 bytes at a time, inline, because the stretches between stops are short and a
//! `memchr` call's set-up costs more than it saves there.
//!
//! SSE2 is part of x86-64's baseline, so there is no run-time detection; other targets use the
//! callers' portable paths.

#![cfg(all(target_arch = "x86_64", target_feature = "sse2"))]

pub(crate) use std::arch::x86_64::__m128i;

/// Scans `bytes[from..]` in whole 16-byte blocks. `classify` maps a block to a mask with
/// `0xff` in each byte that is wanted; the result is the index of the first wanted byte, or
/// `Err(start)` where `start` begins the unscanned tail (fewer than 16 bytes).
///
/// The block is built from two `u64`s read safely from the slice, so no pointer is read by
/// the intrinsics.
#[inline]
pub(crate) fn scan_blocks(
    bytes: &[u8],
    from: usize,
    classify: impl Fn(__m128i) -> __m128i,
) -> Result<usize, usize> {
    use std::arch::x86_64::{_mm_movemask_epi8, _mm_set_epi64x};
    let mut blocks = bytes[from..].chunks_exact(16);
    let mut pos = from;
    for block in &mut blocks {
        let (lo, hi) = block.split_at(8);
        let word = |half: &[u8]| {
            let mut w = [0u8; 8];
            w.copy_from_slice(half);
            i64::from_le_bytes(w)
        };
        // SAFETY: these intrinsics only need SSE2, which the module's cfg guarantees; they
        // operate on values, not memory.
        let mask = unsafe { _mm_movemask_epi8(classify(_mm_set_epi64x(word(hi), word(lo)))) };
        if mask != 0 {
            return Ok(pos + mask.trailing_zeros() as usize);
        }
        pos += 16;
    }
    Err(pos)
}
