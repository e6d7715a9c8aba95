//! Go's float printing, as the YAML path meets it: `strconv.FormatFloat(f, 'g', -1, bits)` (how
//! go-yaml writes floats and sigs.k8s.io/yaml float keys) and `encoding/json`'s float text (what
//! go-yaml reads back when Kubernetes converts JSON to YAML).

/// The shortest decimal digits that round-trip, as Go's `strconv` computes them:
/// (negative, digits without leading or trailing zeros, decimal point position).
/// Zero has no digits.
pub(super) struct Digits {
    neg: bool,
    digits: Vec<u8>,
    dp: i32,
}

impl Digits {
    pub(super) fn of_f64(f: f64) -> Digits {
        let mut d = Digits::from_exp(f.is_sign_negative(), f == 0.0, &format!("{:e}", f.abs()));
        d.round_half_even(
            |digits| format!("{:.*e}", digits, f.abs()),
            |s| s.parse::<f64>().ok() == Some(f.abs()),
        );
        d
    }

    pub(super) fn of_f32(f: f32) -> Digits {
        let mut d = Digits::from_exp(f.is_sign_negative(), f == 0.0, &format!("{:e}", f.abs()));
        d.round_half_even(
            |digits| format!("{:.*e}", digits, f.abs()),
            |s| s.parse::<f32>().ok() == Some(f.abs()),
        );
        d
    }

    /// Rust's shortest formatting breaks an exact tie between two equally short candidates
    /// upwards; Go's breaks it to the even digit. `exact(p)` formats the value correctly rounded
    /// to `p` digits after the first ("d.ddd…e±x"), and `round_trips` checks that a candidate
    /// reads back as the value.
    fn round_half_even(
        &mut self,
        exact: impl Fn(usize) -> String,
        round_trips: impl Fn(&str) -> bool,
    ) {
        let Some(&last) = self.digits.last() else {
            return;
        };
        if (last - b'0').is_multiple_of(2) {
            return;
        }
        let mut lower = self.digits.clone();
        if let Some(l) = lower.last_mut() {
            *l -= 1;
        }
        let n = lower.len();
        let expansion = |precision: usize| -> Option<Vec<u8>> {
            let full = exact(precision);
            let (mantissa, exp) = full.split_once('e')?;
            (exp.parse::<i32>().ok()? == self.dp - 1)
                .then(|| mantissa.bytes().filter(u8::is_ascii_digit).collect())
        };
        // A tie is a value exactly halfway, "lower" then a 5: check one more digit first,
        // and the full expansion (at most 767 digits for a double) only if that matches.
        let halfway =
            |digits: &[u8]| digits.len() > n && digits[..n] == lower[..] && digits[n] == b'5';
        if !expansion(n).is_some_and(|d| halfway(&d)) {
            return;
        }
        let Some(expansion) = expansion(800) else {
            return;
        };
        let tie = halfway(&expansion) && expansion[n + 1..].iter().all(|&c| c == b'0');
        if !tie {
            return;
        }
        let candidate = format!(
            "{}.{}e{}",
            char::from(lower[0]),
            String::from_utf8_lossy(&lower[1..]),
            self.dp - 1
        );
        if round_trips(&candidate) {
            self.digits = lower;
            while self.digits.len() > 1 && self.digits.last() == Some(&b'0') {
                self.digits.pop();
            }
        }
    }

    /// From Rust's shortest `{:e}` form, e.g. "1.2345e-7".
    fn from_exp(neg: bool, zero: bool, text: &str) -> Digits {
        if zero {
            return Digits {
                neg,
                digits: Vec::new(),
                dp: 0,
            };
        }
        let (mantissa, exp) = text.split_once('e').unwrap_or((text, "0"));
        let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
        let exp: i32 = exp.parse().unwrap_or(0);
        Digits {
            neg,
            digits,
            dp: exp + 1,
        }
    }

    fn sign(&self, out: &mut String) {
        if self.neg {
            out.push('-');
        }
    }

    /// `%e` with the shortest precision: "1.5e+07", "1e-07".
    fn fmt_e(&self) -> String {
        let mut out = String::new();
        self.sign(&mut out);
        let first = self.digits.first().copied().unwrap_or(b'0');
        out.push(char::from(first));
        if self.digits.len() > 1 {
            out.push('.');
            out.extend(self.digits[1..].iter().map(|&d| char::from(d)));
        }
        let exp = if self.digits.is_empty() {
            0
        } else {
            self.dp - 1
        };
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let exp = exp.unsigned_abs();
        if exp < 10 {
            out.push('0');
        }
        out.push_str(&exp.to_string());
        out
    }

    /// `%f` with the shortest precision: "100000", "0.001".
    fn fmt_f(&self) -> String {
        let mut out = String::new();
        self.sign(&mut out);
        let nd = self.digits.len() as i32;
        if self.dp > 0 {
            let m = nd.min(self.dp) as usize;
            out.extend(self.digits[..m].iter().map(|&d| char::from(d)));
            for _ in m as i32..self.dp {
                out.push('0');
            }
        } else {
            out.push('0');
        }
        let prec = (nd - self.dp).max(0);
        if prec > 0 {
            out.push('.');
            for i in 1..=prec {
                let j = self.dp + i - 1;
                let c = if (0..nd).contains(&j) {
                    self.digits[j as usize]
                } else {
                    b'0'
                };
                out.push(char::from(c));
            }
        }
        out
    }

    /// `strconv.FormatFloat(f, 'g', -1, bits)` for a finite value.
    pub(super) fn fmt_g(&self) -> String {
        let exp = self.dp - 1;
        if !(-4..6).contains(&exp) {
            // With the shortest precision Go switches to %e from exponent 6 on.
            if !self.digits.is_empty() {
                return self.fmt_e();
            }
        }
        self.fmt_f()
    }
}

/// go-yaml's float output: `FormatFloat(f, 'g', -1, 64)` with YAML's names for the specials.
pub(super) fn format_float(f: f64) -> String {
    if f.is_nan() {
        ".nan".to_string()
    } else if f.is_infinite() {
        if f > 0.0 { ".inf" } else { "-.inf" }.to_string()
    } else {
        Digits::of_f64(f).fmt_g()
    }
}

/// sigs.k8s.io/yaml's float key: `FormatFloat(f, 'g', -1, 32)`, specials renamed.
pub(super) fn format_float_key(f: f64) -> String {
    if f.is_nan() {
        ".nan".to_string()
    } else if f.is_infinite() || (f as f32).is_infinite() {
        if f > 0.0 { ".inf" } else { "-.inf" }.to_string()
    } else {
        Digits::of_f32(f as f32).fmt_g()
    }
}

/// Go's `encoding/json` text for a finite float64: `%f` between 1e-6 and 1e21, else `%e`
/// with a one-digit negative exponent ("1e-7").
pub(super) fn json_float(f: f64) -> String {
    let digits = Digits::of_f64(f);
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let mut s = digits.fmt_e();
        let n = s.len();
        if n >= 4 && s.as_bytes()[n - 4] == b'e' && &s[n - 3..n - 1] == "-0" {
            s.remove(n - 2);
        }
        s
    } else {
        digits.fmt_f()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_format_like_go() {
        let g = |f: f64| format_float(f);
        assert_eq!(g(1.0), "1");
        assert_eq!(g(0.0), "0");
        assert_eq!(g(-0.0), "-0");
        assert_eq!(g(1.5), "1.5");
        assert_eq!(g(100000.0), "100000");
        assert_eq!(g(1e6), "1e+06");
        assert_eq!(g(1234567.0), "1.234567e+06");
        assert_eq!(g(0.0001), "0.0001");
        assert_eq!(g(0.00001), "1e-05");
        assert_eq!(g(1e21), "1e+21");
        assert_eq!(g(1.5e300), "1.5e+300");
        assert_eq!(g(5e-324), "5e-324");
        assert_eq!(g(f64::INFINITY), ".inf");
        assert_eq!(g(f64::NEG_INFINITY), "-.inf");
        assert_eq!(g(f64::NAN), ".nan");
        assert_eq!(format_float_key(0.1), "0.1");
        assert_eq!(format_float_key(std::f64::consts::PI), "3.1415927");
        assert_eq!(format_float_key(1e10), "1e+10");
        assert_eq!(json_float(1.0), "1");
        assert_eq!(json_float(1e20), "100000000000000000000");
        assert_eq!(json_float(1e21), "1e+21");
        assert_eq!(json_float(1e-7), "1e-7");
        assert_eq!(json_float(0.000001), "0.000001");
        assert_eq!(json_float(-2.5), "-2.5");
        assert_eq!(json_float(1152921504606846976.0), "1152921504606847000");
        // An exact tie between two shortest candidates goes to the even digit, as in Go.
        let tie = f64::from_bits(0x42ed_640a_923f_d6b4); // exactly 258524090334901.625
        assert_eq!(g(tie), "2.5852409033490162e+14");
        assert_eq!(json_float(tie), "258524090334901.62");
    }
}
