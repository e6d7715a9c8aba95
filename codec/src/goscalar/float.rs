//! How Go's encoding/json writes float64 and float32 values.

use super::*;
use std::io::Write as _;

// ---------------------------------------------------------------------------------------------
// encoding/json floats
// ---------------------------------------------------------------------------------------------

fn unsupported(neg: bool, nan: bool) -> ScalarError {
    let v = if nan {
        "NaN"
    } else if neg {
        "-Inf"
    } else {
        "+Inf"
    };
    ScalarError(format!("json: unsupported value: {v}"))
}

/// After `{:e}` output at `out[start..]`, add Go's `+` to a non-negative exponent. Go pads
/// exponents to two digits and then encoding/json strips the pad of `e-0X`, so the only
/// visible difference left from Rust's form is the plus sign (exponents are >= 21 here).
fn fix_exponent(out: &mut Vec<u8>, start: usize) {
    if let Some(p) = out[start..].iter().rposition(|&c| c == b'e') {
        let p = start + p;
        if out.get(p + 1) != Some(&b'-') {
            out.insert(p + 1, b'+');
        }
    }
}

/// How Go's encoding/json writes a float64: shortest round-trip digits, `'f'` form for
/// 1e-6 <= |f| < 1e21, otherwise `'e'` form like `1e+21` / `1e-7`. NaN and ±Inf are errors.
pub fn format_go_float64(f: f64, out: &mut Vec<u8>) -> Result<(), ScalarError> {
    if !f.is_finite() {
        return Err(unsupported(f < 0.0, f.is_nan()));
    }
    let abs = f.abs();
    let start = out.len();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let _ = write!(out, "{f:e}");
        fix_exponent(out, start);
    } else {
        let _ = write!(out, "{f}");
    }
    Ok(())
}

/// Same for float32 fields (Go formats with bitSize 32, cut-offs compared in float32).
pub fn format_go_float32(f: f32, out: &mut Vec<u8>) -> Result<(), ScalarError> {
    if !f.is_finite() {
        return Err(unsupported(f < 0.0, f.is_nan()));
    }
    let abs = f.abs();
    let start = out.len();
    if abs != 0.0 && !(1e-6f32..1e21f32).contains(&abs) {
        let _ = write!(out, "{f:e}");
        fix_exponent(out, start);
    } else {
        let _ = write!(out, "{f}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    fn f64s(f: f64) -> String {
        let mut out = Vec::new();
        format_go_float64(f, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn f32s(f: f32) -> String {
        let mut out = Vec::new();
        format_go_float32(f, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn float64_like_encoding_json() {
        for (f, want) in [
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (-1.0, "-1"),
            (0.5, "0.5"),
            (1.5, "1.5"),
            (0.1 + 0.2, "0.30000000000000004"),
            (123_456_789.0, "123456789"),
            (1e20, "100000000000000000000"),
            (1.2345678901234568e20, "123456789012345680000"),
            (999_999_999_999_999_900_000.0, "999999999999999900000"),
            (1e21, "1e+21"),
            (-1e21, "-1e+21"),
            (1.5e300, "1.5e+300"),
            (f64::MAX, "1.7976931348623157e+308"),
            (1e-6, "0.000001"),
            (1.5e-6, "0.0000015"),
            (9.99e-7, "9.99e-7"),
            (1e-7, "1e-7"),
            (-1e-7, "-1e-7"),
            (1.23e-10, "1.23e-10"),
            (5e-324, "5e-324"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
            (9007199254740993.0, "9007199254740992"),
            (3.0e-5, "0.00003"),
        ] {
            assert_eq!(f64s(f), want, "{f:e}");
        }
        let mut out = b"x".to_vec();
        assert_eq!(
            format_go_float64(f64::NAN, &mut out).unwrap_err().0,
            "json: unsupported value: NaN"
        );
        assert_eq!(
            format_go_float64(f64::INFINITY, &mut out).unwrap_err().0,
            "json: unsupported value: +Inf"
        );
        assert_eq!(
            format_go_float64(f64::NEG_INFINITY, &mut out)
                .unwrap_err()
                .0,
            "json: unsupported value: -Inf"
        );
        assert_eq!(out, b"x");
    }

    #[test]
    fn float32_like_encoding_json() {
        for (f, want) in [
            (0.0f32, "0"),
            (0.1, "0.1"),
            (1.1, "1.1"),
            (16_777_216.0, "16777216"),
            (16_777_217.0, "16777216"),
            (3.4028235e38, "3.4028235e+38"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (1e-6, "0.000001"),
            (1e-7, "1e-7"),
            (1e-45, "1e-45"),
            (-2.5, "-2.5"),
        ] {
            assert_eq!(f32s(f), want, "{f:e}");
        }
        assert!(format_go_float32(f32::NAN, &mut Vec::new()).is_err());
    }

    // ----- robustness -----
}
