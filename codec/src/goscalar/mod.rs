//! Exact Go/Kubernetes text forms of the special scalars: `resource.Quantity` (parse and
//! `String()`), `metav1.Time`/`MicroTime` (RFC 3339), `metav1.Duration` (`time.Duration`) and
//! how `encoding/json` prints floats. Pure functions that append to a caller's `Vec<u8>`.

use std::fmt;

/// Error for any parse failure; the message follows Go's error text where practical.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalarError(pub String);

impl fmt::Display for ScalarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScalarError {}

fn err(msg: &str) -> ScalarError {
    ScalarError(msg.to_owned())
}

/// Go's `time.quote`: non-ASCII and control bytes become `\xNN`, `"` and `\` are escaped.
fn go_quote(out: &mut String, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for &b in s {
        if !(0x20..0x80).contains(&b) {
            out.push_str("\\x");
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xf)] as char);
        } else {
            if b == b'"' || b == b'\\' {
                out.push('\\');
            }
            out.push(b as char);
        }
    }
    out.push('"');
}

fn quoted(s: &[u8]) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    go_quote(&mut q, s);
    q
}

mod duration;
mod float;
mod quantity;
mod time;

pub use duration::*;
pub use float::*;
pub use quantity::*;
pub use time::*;

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> Result<String, ScalarError> {
        let mut out = Vec::new();
        canonical_quantity(s, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn odd_inputs_never_panic() {
        let nines = "9".repeat(400);
        let mut inputs: Vec<String> = [
            "",
            " ",
            "\0",
            "-",
            "+",
            ".",
            "e",
            "E",
            "i",
            "Ki",
            "1e999999999",
            "1e-999999999",
            "1e2147483647",
            "1e-2147483648",
            "1e2147483648",
            "1e-2147483649",
            "10e2147483647",
            "1.5e-2147483648",
            "0.1e-2147483647",
            "1e+",
            "1e-",
            "--1",
            "+-1",
            "1..",
            "..1",
            "1.2.3",
            "µ",
            "１",
            "٣s",
            "日本",
            "\u{FFFD}",
            "9Ei",
            "-9Ei",
            "99999999999999999999Ei",
            "0.0000000000000000000000000001Ki",
            "1Ei",
            "-1e-9",
            "1n",
            "-0.5n",
            "2006-01-02T15:04:05Z",
            "2006-01-02T15:04:05.000000Z",
            "1h",
            "1.5µs",
            "9223372036854775808ns9223372036854775808ns",
            "0x10",
            "NaN",
            "inf",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        inputs.push(nines.clone());
        inputs.push(format!("{nines}Ei"));
        inputs.push(format!("{nines}e-999999999"));
        inputs.push(format!("0.{nines}"));
        inputs.push(format!("0.{}1", "0".repeat(400)));
        inputs.push(format!("{nines}.{nines}k"));
        inputs.push(format!("{nines}s"));
        inputs.push(format!("1.{nines}h"));
        inputs.push(format!("2006-01-02T15:04:05.{nines}Z"));
        // A deterministic random walk over the interesting alphabet.
        let alphabet: Vec<char> = "0123456789.+-eEinumkKMGTPhs:TZµ ".chars().collect();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 12) as usize;
            let mut s = String::new();
            let mut y = x;
            for _ in 0..len {
                y = y.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                s.push(alphabet[(y >> 33) as usize % alphabet.len()]);
            }
            inputs.push(s);
        }
        for s in &inputs {
            let mut out = Vec::new();
            if canonical_quantity(s, &mut out).is_ok() {
                // Whatever we print must parse again.
                let printed = String::from_utf8(out).unwrap();
                assert!(canon(&printed).is_ok(), "{s:?} -> {printed:?}");
            } else {
                assert!(out.is_empty());
            }
            if let Ok(q) = Quantity::parse(s) {
                q.milli_value();
                q.value();
                q.scaled_value(i32::MIN);
                q.scaled_value(i32::MAX);
                q.write_canonical(&mut Vec::new());
            }
            let _ = quantity_milli_value(s);
            let _ = parse_rfc3339(s);
            let _ = parse_micro_time(s);
            if let Ok(d) = parse_duration(s) {
                let mut out = Vec::new();
                format_duration(d, &mut out);
            }
        }
        for f in [f64::MIN, f64::MAX, f64::EPSILON, -5e-324, 1e-300, 1e300] {
            format_go_float64(f, &mut Vec::new()).unwrap();
        }
    }
}
