//! Eight bytes at a time in a `u64`: the classic zero-byte test behind the sanitiser's short
//! searches and reference names and the JSON writer's escape scan.
//!
//! Each mask has bit 7 set in the bytes that match. The lowest set bit is always a real match;
//! above it a borrow may flag more, so callers take the first match (`trailing_zeros`) only.

/// Every byte 1.
const ONES: u64 = 0x0101_0101_0101_0101;
/// Every byte's high bit.
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The zero bytes of `x`: `x - 0x01…` borrows out of exactly those, and `!x` drops the bytes
/// that were >= 0x80 already.
#[inline(always)]
pub(crate) fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// The bytes of `x` equal to `b`.
#[inline(always)]
pub(crate) fn bytes_equal(x: u64, b: u8) -> u64 {
    zero_bytes(x ^ (ONES * u64::from(b)))
}

/// The bytes of `x` below `n` (`n` <= 0x80), by the same borrow.
#[inline(always)]
pub(crate) fn bytes_below(x: u64, n: u8) -> u64 {
    x.wrapping_sub(ONES * u64::from(n)) & !x & HIGHS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_flagged_byte_is_the_first_match() {
        for at in 0..8 {
            for c in 0..=255u8 {
                let mut bytes = [b'a'; 8];
                bytes[at] = c;
                // A match further on must not move the first one.
                if at < 7 {
                    bytes[7] = 0;
                }
                let x = u64::from_le_bytes(bytes);
                let first = |mask: u64| (mask != 0).then(|| (mask.trailing_zeros() / 8) as usize);
                assert_eq!(first(zero_bytes(x)), bytes.iter().position(|&b| b == 0));
                assert_eq!(
                    first(bytes_equal(x, b'"')),
                    bytes.iter().position(|&b| b == b'"')
                );
                assert_eq!(
                    first(bytes_below(x, 0x20)),
                    bytes.iter().position(|&b| b < 0x20)
                );
            }
        }
    }
}
