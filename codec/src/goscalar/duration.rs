//! metav1.Duration: Go's time.ParseDuration and Duration.String().

use super::*;

// ---------------------------------------------------------------------------------------------
// time.Duration
// ---------------------------------------------------------------------------------------------

/// Go's `leadingInt`.
fn leading_int(s: &[u8]) -> Option<(u64, &[u8])> {
    let mut x: u64 = 0;
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        if x > (1 << 63) / 10 {
            return None;
        }
        x = x * 10 + u64::from(s[i] - b'0');
        if x > 1 << 63 {
            return None;
        }
        i += 1;
    }
    Some((x, &s[i..]))
}

/// Go's `leadingFraction`.
fn leading_fraction(s: &[u8]) -> (u64, f64, &[u8]) {
    let mut x: u64 = 0;
    let mut scale = 1.0f64;
    let mut overflow = false;
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        let c = s[i];
        i += 1;
        if overflow {
            continue;
        }
        if x > ((1u64 << 63) - 1) / 10 {
            overflow = true;
            continue;
        }
        let y = x * 10 + u64::from(c - b'0');
        if y > 1 << 63 {
            overflow = true;
            continue;
        }
        x = y;
        scale *= 10.0;
    }
    (x, scale, &s[i..])
}

/// Go's `time.ParseDuration`, returning nanoseconds.
pub fn parse_duration(s: &str) -> Result<i64, ScalarError> {
    let orig = s.as_bytes();
    let invalid = || ScalarError(format!("time: invalid duration {}", quoted(orig)));
    let mut s = orig;
    let mut neg = false;
    if let Some(&c) = s.first()
        && (c == b'-' || c == b'+')
    {
        neg = c == b'-';
        s = &s[1..];
    }
    if s == b"0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut d: u64 = 0;
    while !s.is_empty() {
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Err(invalid());
        }
        let pl = s.len();
        let (mut v, rest) = leading_int(s).ok_or_else(invalid)?;
        s = rest;
        let pre = pl != s.len();
        let (mut f, mut scale, mut post) = (0u64, 1.0f64, false);
        if s.first() == Some(&b'.') {
            s = &s[1..];
            let pl = s.len();
            let (ff, sc, rest) = leading_fraction(s);
            (f, scale, s) = (ff, sc, rest);
            post = pl != s.len();
        }
        if !pre && !post {
            return Err(invalid());
        }
        let i = s
            .iter()
            .position(|&c| c == b'.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        if i == 0 {
            return Err(ScalarError(format!(
                "time: missing unit in duration {}",
                quoted(orig)
            )));
        }
        let u = &s[..i];
        s = &s[i..];
        let unit: u64 = match u {
            b"ns" => 1,
            b"us" | b"\xc2\xb5s" | b"\xce\xbcs" => 1_000,
            b"ms" => 1_000_000,
            b"s" => 1_000_000_000,
            b"m" => 60_000_000_000,
            b"h" => 3_600_000_000_000,
            _ => {
                return Err(ScalarError(format!(
                    "time: unknown unit {} in duration {}",
                    quoted(u),
                    quoted(orig)
                )));
            }
        };
        if v > (1 << 63) / unit {
            return Err(invalid());
        }
        v *= unit;
        if f > 0 {
            // float64, exactly as Go computes it.
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > 1 << 63 {
                return Err(invalid());
            }
        }
        d = d.wrapping_add(v);
        if d > 1 << 63 {
            return Err(invalid());
        }
    }
    if neg {
        return Ok((d as i64).wrapping_neg());
    }
    if d > (1 << 63) - 1 {
        return Err(invalid());
    }
    Ok(d as i64)
}

/// Go's `fmtFrac`: v/10^prec's fraction into the tail of `buf[..w]`, trailing zeros omitted.
fn fmt_frac(buf: &mut [u8], mut w: usize, mut v: u64, prec: usize) -> (usize, u64) {
    let mut print = false;
    for _ in 0..prec {
        let digit = v % 10;
        print = print || digit != 0;
        if print {
            w -= 1;
            buf[w] = digit as u8 + b'0';
        }
        v /= 10;
    }
    if print {
        w -= 1;
        buf[w] = b'.';
    }
    (w, v)
}

fn fmt_int(buf: &mut [u8], mut w: usize, mut v: u64) -> usize {
    if v == 0 {
        w -= 1;
        buf[w] = b'0';
    } else {
        while v > 0 {
            w -= 1;
            buf[w] = (v % 10) as u8 + b'0';
            v /= 10;
        }
    }
    w
}

/// Go's `time.Duration.String()`.
pub fn format_duration(nanos: i64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 32];
    let mut w = buf.len();
    let mut u = nanos.unsigned_abs();
    if u < 1_000_000_000 {
        w -= 1;
        buf[w] = b's';
        w -= 1;
        let prec = if u == 0 {
            out.push(b'0');
            out.push(b's');
            return;
        } else if u < 1_000 {
            buf[w] = b'n';
            0
        } else if u < 1_000_000 {
            w -= 1;
            buf[w..w + 2].copy_from_slice("µ".as_bytes());
            3
        } else {
            buf[w] = b'm';
            6
        };
        (w, u) = fmt_frac(&mut buf, w, u, prec);
        w = fmt_int(&mut buf, w, u);
    } else {
        w -= 1;
        buf[w] = b's';
        (w, u) = fmt_frac(&mut buf, w, u, 9);
        w = fmt_int(&mut buf, w, u % 60);
        u /= 60;
        if u > 0 {
            w -= 1;
            buf[w] = b'm';
            w = fmt_int(&mut buf, w, u % 60);
            u /= 60;
            if u > 0 {
                w -= 1;
                buf[w] = b'h';
                w = fmt_int(&mut buf, w, u);
            }
        }
    }
    if nanos < 0 {
        w -= 1;
        buf[w] = b'-';
    }
    out.extend_from_slice(&buf[w..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    fn fd(n: i64) -> String {
        let mut out = Vec::new();
        format_duration(n, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn duration_parse() {
        const S: i64 = 1_000_000_000;
        for (s, want) in [
            ("0", 0),
            ("-0", 0),
            ("+0", 0),
            ("0s", 0),
            ("5s", 5 * S),
            ("30s", 30 * S),
            ("1478s", 1478 * S),
            ("-5s", -5 * S),
            ("+5s", 5 * S),
            ("-0s", 0),
            ("5.0s", 5 * S),
            ("5.6s", 5 * S + 600_000_000),
            ("5.s", 5 * S),
            (".5s", S / 2),
            ("1.0s", S),
            ("1.00s", S),
            ("1.004s", S + 4_000_000),
            ("1.0040s", S + 4_000_000),
            ("100.00100s", 100 * S + 1_000_000),
            ("10ns", 10),
            ("11us", 11_000),
            ("12µs", 12_000),
            ("12μs", 12_000),
            ("13ms", 13_000_000),
            ("14s", 14 * S),
            ("15m", 15 * 60 * S),
            ("16h", 16 * 3600 * S),
            ("3h30m", (3 * 60 + 30) * 60 * S),
            ("10.5s4m", 4 * 60 * S + 10 * S + S / 2),
            ("-2m3.4s", -(2 * 60 * S + 3 * S + 400_000_000)),
            (
                "1h2m3s4ms5us6ns",
                3600 * S + 120 * S + 3 * S + 4_000_000 + 5_000 + 6,
            ),
            (
                "39h9m14.425s",
                39 * 3600 * S + 9 * 60 * S + 14 * S + 425_000_000,
            ),
            ("52763797000ns", 52_763_797_000),
            ("0.3333333333333333333h", 20 * 60 * S),
            ("9007199254740993ns", (1 << 53) + 1),
            ("9223372036854775807ns", i64::MAX),
            ("9223372036854775.807us", i64::MAX),
            ("9223372036s854ms775us807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("-9223372036854775.808us", i64::MIN),
            ("-9223372036s854ms775us808ns", i64::MIN),
            ("-2562047h47m16.854775808s", i64::MIN),
            ("0.100000000000000000000h", 6 * 60 * S),
            (
                "0.830103483285477580700h",
                49 * 60 * S + 48 * S + 372_539_827,
            ),
            ("1h2m3.5s", 3600 * S + 120 * S + 3 * S + S / 2),
            ("300ms", 300_000_000),
            ("-1.5h", -5400 * S),
            ("1us", 1000),
            ("1µs", 1000),
        ] {
            assert_eq!(parse_duration(s), Ok(want), "{s}");
        }
    }

    #[test]
    fn duration_parse_errors() {
        let e = |s: &str| parse_duration(s).unwrap_err().0;
        assert_eq!(e(""), "time: invalid duration \"\"");
        assert_eq!(e("3"), "time: missing unit in duration \"3\"");
        assert_eq!(e("-"), "time: invalid duration \"-\"");
        assert_eq!(e("s"), "time: invalid duration \"s\"");
        assert_eq!(e("."), "time: invalid duration \".\"");
        assert_eq!(e("-."), "time: invalid duration \"-.\"");
        assert_eq!(e(".s"), "time: invalid duration \".s\"");
        assert_eq!(e("+.s"), "time: invalid duration \"+.s\"");
        assert_eq!(e("1d"), "time: unknown unit \"d\" in duration \"1d\"");
        assert_eq!(e("1.1.1s"), "time: missing unit in duration \"1.1.1s\"");
        assert_eq!(
            e("5µx"),
            "time: unknown unit \"\\xc2\\xb5x\" in duration \"5\\xc2\\xb5x\""
        );
        assert_eq!(e("x\"y"), "time: invalid duration \"x\\\"y\"");
        assert_eq!(
            e("9223372036854775808ns"),
            "time: invalid duration \"9223372036854775808ns\""
        );
        for s in [
            "9223372036854775810ns",
            "9223372036854775808ns",
            "9223372036854775.808us",
            "9223372036854ms775us808ns",
            "-9223372036854775809ns",
            "3000000h",
            "1 s",
        ] {
            assert!(parse_duration(s).is_err(), "{s}");
        }
    }

    #[test]
    fn duration_format() {
        const S: i64 = 1_000_000_000;
        for (n, want) in [
            (0, "0s"),
            (1, "1ns"),
            (1100, "1.1µs"),
            (1500, "1.5µs"),
            (2_200_000, "2.2ms"),
            (300_000_000, "300ms"),
            (3 * S + 300_000_000, "3.3s"),
            (4 * 60 * S + 5 * S, "4m5s"),
            (4 * 60 * S + 5 * S + S / 1000, "4m5.001s"),
            (5 * 3600 * S + 6 * 60 * S + 7 * S + S / 1000, "5h6m7.001s"),
            (8 * 60 * S + 1, "8m0.000000001s"),
            (3600 * S, "1h0m0s"),
            (3600 * S + 2 * 60 * S + 3 * S + S / 2, "1h2m3.5s"),
            (-120 * S, "-2m0s"),
            (-1, "-1ns"),
            (i64::MAX, "2562047h47m16.854775807s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ] {
            assert_eq!(fd(n), want, "{n}");
            assert_eq!(parse_duration(want), Ok(n), "{want}");
        }
    }

    // ----- floats -----
}
