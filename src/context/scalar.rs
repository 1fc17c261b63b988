//! JSON scalars → strings, exactly like PHP 8.2's `(string)` cast with `precision=14`.

use std::fmt::Write as _;

/// `precision` ini default: significant digits of `(string)$float`.
const PRECISION: i32 = 14;

/// Appends PHP's `(string)$i`.
pub(crate) fn push_int(out: &mut String, i: i64) {
    // Writing an integer into a String cannot fail.
    let _ = write!(out, "{i}");
}

/// Appends PHP's `(string)$b`: `"1"` or `""`.
pub(crate) fn push_bool(out: &mut String, b: bool) {
    if b {
        out.push('1');
    }
}

/// Appends PHP's `(string)$f` (`zend_gcvt` with 14 significant digits, `E` exponent).
///
/// `scratch` is a reused buffer for the digit generation.
pub(crate) fn push_float(out: &mut String, f: f64, scratch: &mut String) {
    if f.is_nan() {
        out.push_str("NAN");
        return;
    }
    if f.is_infinite() {
        out.push_str(if f < 0.0 { "-INF" } else { "INF" });
        return;
    }

    // Rust's `{:.13e}` is correctly rounded, ties to even, like zend_dtoa mode 2:
    // `d.ddddddddddddde<exp>`.
    scratch.clear();
    let _ = write!(scratch, "{:.13e}", f.abs());
    let (mantissa, exp) = scratch.split_once('e').unwrap_or((scratch.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits = [0u8; 16];
    let mut n = 0;
    for b in mantissa.bytes().filter(u8::is_ascii_digit) {
        if n < digits.len() {
            digits[n] = b;
            n += 1;
        }
    }
    // zend_dtoa trims trailing zeros on every path but one: a 15-digit integer whose last
    // digit is an exact tie (…5) makes its floating-point fast path give up, and the
    // small-integer loop that redoes it stops at the 14th digit without trimming when the tie
    // goes down, i.e. when that digit is even (`589429356391905.0` → `5.8942935639190E+14`).
    let a = f.abs();
    let untrimmed = a.fract() == 0.0
        && (1e14..1e15).contains(&a)
        && a % 10.0 == 5.0
        && (a / 10.0).trunc() % 2.0 == 0.0;
    while n > 1 && digits[n - 1] == b'0' && !untrimmed {
        n -= 1;
    }
    let digits = &digits[..n];
    // zend_dtoa's decimal-point position: value = 0.d1d2… × 10^decpt.
    let decpt = if digits == b"0" { 1 } else { exp + 1 };

    if f.is_sign_negative() {
        out.push('-');
    }
    let exponential = if decpt < 0 {
        decpt < -3
    } else {
        decpt > PRECISION
    };
    if exponential {
        let e = decpt - 1;
        push_ascii(out, &digits[..1]);
        out.push('.');
        if digits.len() > 1 {
            push_ascii(out, &digits[1..]);
        } else {
            out.push('0');
        }
        out.push_str(if e < 0 { "E-" } else { "E+" });
        let _ = write!(out, "{}", e.abs());
    } else if decpt <= 0 {
        out.push_str("0.");
        for _ in decpt..0 {
            out.push('0');
        }
        push_ascii(out, digits);
    } else {
        let int_len = decpt as usize;
        if digits.len() <= int_len {
            push_ascii(out, digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
        } else {
            push_ascii(out, &digits[..int_len]);
            out.push('.');
            push_ascii(out, &digits[int_len..]);
        }
    }
}

fn push_ascii(out: &mut String, digits: &[u8]) {
    for &d in digits {
        out.push(char::from(d));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn float(f: f64) -> String {
        let mut out = String::new();
        push_float(&mut out, f, &mut String::new());
        out
    }

    #[test]
    fn floats_like_php() {
        let cases: [(f64, &str); 26] = [
            (-589429356391905.0, "-5.8942935639190E+14"),
            (100000000000005.0, "1.0000000000000E+14"),
            (100000000000015.0, "1.0000000000002E+14"),
            (100000000000020.0, "1.0000000000002E+14"),
            (1e15, "1.0E+15"),
            (1e14, "1.0E+14"),
            (1e13, "10000000000000"),
            (0.1 + 0.2, "0.3"),
            (-0.0, "-0"),
            (0.0, "0"),
            (0.00001, "1.0E-5"),
            (0.0001, "0.0001"),
            (123456789012345.0, "1.2345678901234E+14"),
            (1.5, "1.5"),
            (2.5e-7, "2.5E-7"),
            (1e100, "1.0E+100"),
            (9223372036854775808.0, "9.2233720368548E+18"),
            (f64::INFINITY, "INF"),
            (f64::NEG_INFINITY, "-INF"),
            (0.5, "0.5"),
            (100.0, "100"),
            (1.25e15, "1.25E+15"),
            (123456789012345678.0, "1.2345678901235E+17"),
            (99999999999999.5, "1.0E+14"),
            (999999999999995.0, "1.0E+15"),
            (-1.5e-300, "-1.5E-300"),
        ];
        for (f, php) in cases {
            assert_eq!(float(f), php, "{f:e}");
        }
    }

    #[test]
    fn ints_and_bools() {
        let mut out = String::new();
        push_int(&mut out, i64::MIN);
        push_bool(&mut out, true);
        push_bool(&mut out, false);
        assert_eq!(out, "-92233720368547758081");
    }
}
