//! One YAML scalar as go-yaml v2 types it for an `interface{}` (bool, int, uint64, big int,
//! float, string or nil, after `!!binary` and other tags), and how sigs.k8s.io/yaml then turns
//! it into JSON: as a value through `encoding/json`, or as an object key.

use saphyr_parser::{ScalarStyle, Tag};
use serde_json::Value;

use super::YamlError;
use super::decode::error;
use super::float;
use super::resolve::{self, BINARY_TAG, MERGE_TAG, Resolved};

/// A scalar as go-yaml types it for an `interface{}`.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    BigInt(String),
    Float(f64),
    Str(String),
}

impl Scalar {
    /// The JSON value `encoding/json` writes for it, as serde_json reads that text back.
    pub(super) fn into_value(self, line: usize) -> Result<Value, YamlError> {
        Ok(match self {
            Scalar::Null => Value::Null,
            Scalar::Bool(b) => Value::Bool(b),
            Scalar::Int(i) => Value::from(i),
            Scalar::Uint(u) => Value::from(u),
            Scalar::Str(s) => Value::String(s),
            Scalar::Float(f) if f.is_nan() => {
                return Err(error(line, "json: unsupported value: NaN"));
            }
            Scalar::Float(f) if f.is_infinite() => {
                let sign = if f > 0.0 { "+" } else { "-" };
                return Err(error(line, format!("json: unsupported value: {sign}Inf")));
            }
            Scalar::Float(f) => float_value(f),
            Scalar::BigInt(text) => float_value(big_to_f64(&text, line)?),
        })
    }

    /// sigs.k8s.io/yaml's conversion of a map key to a JSON object key.
    pub(super) fn into_key(self, line: usize) -> Result<String, YamlError> {
        let unsupported = |ty: &str, key: &str| {
            error(
                line,
                format!("unsupported map key of type: {ty}, key: {key}"),
            )
        };
        match self {
            Scalar::Str(s) => Ok(s),
            Scalar::Int(i) => Ok(i.to_string()),
            Scalar::Float(f) => Ok(float::format_float_key(f)),
            Scalar::Bool(b) => Ok(b.to_string()),
            Scalar::Null => Err(unsupported("<nil>", "<nil>")),
            Scalar::Uint(u) => Err(unsupported("uint64", &u.to_string())),
            Scalar::BigInt(text) => Err(unsupported("*big.Int", &text)),
        }
    }
}

/// A float as serde_json reads Go's JSON for it: Go writes integral values below 1e21 as
/// integers, and those that fit come back as i64/u64.
fn float_value(f: f64) -> Value {
    let text = float::json_float(f);
    if text == "-0" {
        // serde_json reads "-0" as the float -0.0.
        return serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number);
    }
    if let Ok(i) = text.parse::<i64>() {
        return Value::from(i);
    }
    if let Ok(u) = text.parse::<u64>() {
        return Value::from(u);
    }
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// The float nearest an unsigned integer written with a Go base prefix (0x, 0o, 0b, 0).
/// Values past the float range are refused up front, which also bounds the work.
fn big_to_f64(text: &str, line: usize) -> Result<f64, YamlError> {
    let (radix, digits) = match text.as_bytes() {
        [b'0', b'x' | b'X', ..] => (16, &text[2..]),
        [b'0', b'o' | b'O', ..] => (8, &text[2..]),
        [b'0', b'b' | b'B', ..] => (2, &text[2..]),
        [b'0', ..] => (8, &text[1..]),
        _ => (10, text),
    };
    let digits = digits.trim_start_matches('0');
    let bits_per_digit = match radix {
        16 => 4.0,
        8 => 3.0,
        2 => 1.0,
        _ => std::f64::consts::LOG2_10,
    };
    let out_of_range = || error(line, format!("number {text} is out of range"));
    if digits.len() as f64 * bits_per_digit > 1100.0 {
        return Err(out_of_range());
    }
    // Exact decimal digits first (little-endian limbs in base 10^9), then one correctly
    // rounded conversion.
    const LIMB: u64 = 1_000_000_000;
    let mut limbs: Vec<u64> = vec![0];
    for c in digits.chars() {
        let mut carry = u64::from(c.to_digit(radix).unwrap_or(0));
        for limb in &mut limbs {
            let v = *limb * u64::from(radix) + carry;
            *limb = v % LIMB;
            carry = v / LIMB;
        }
        if carry > 0 {
            limbs.push(carry);
        }
    }
    let mut decimal = limbs.last().copied().unwrap_or(0).to_string();
    for limb in limbs.iter().rev().skip(1) {
        decimal.push_str(&format!("{limb:09}"));
    }
    let f: f64 = decimal.parse().map_err(|_| out_of_range())?;
    if f.is_finite() {
        Ok(f)
    } else {
        Err(out_of_range())
    }
}

/// Go's `base64.StdEncoding.DecodeString`: padding required, '\r' and '\n' ignored.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let src: Vec<u8> = text.bytes().filter(|&c| c != b'\r' && c != b'\n').collect();
    if !src.len().is_multiple_of(4) {
        return None;
    }
    let value = |c: u8| -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    };
    let mut out = Vec::with_capacity(src.len() / 4 * 3);
    let quanta = src.len() / 4;
    for (q, chunk) in src.chunks(4).enumerate() {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && q + 1 != quanta) {
            return None;
        }
        let mut acc = 0u32;
        for &c in &chunk[..4 - pad] {
            acc = (acc << 6) | value(c)?;
        }
        acc <<= 6 * pad as u32;
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    Some(out)
}

/// Go's `encoding/json` for a string that is not valid UTF-8: each bad byte becomes U+FFFD.
fn go_lossy_utf8(mut bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    loop {
        match std::str::from_utf8(bytes) {
            Ok(s) => {
                out.push_str(s);
                return out;
            }
            Err(e) => {
                let (valid, rest) = bytes.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                out.push('\u{FFFD}');
                bytes = &rest[1..];
            }
        }
    }
}

/// go-yaml's typing of one scalar node; also says whether it is the `<<` merge key.
pub(super) fn type_scalar(
    text: &str,
    style: ScalarStyle,
    tag: Option<&Tag>,
) -> Result<(Scalar, bool), String> {
    let tag: Option<String> = tag.map(|t| format!("{}{}", t.handle, t.suffix));
    // libyaml's "plain implicit": untagged plain text, or the non-specific tag "!".
    let implicit = (tag.is_none() && style == ScalarStyle::Plain) || tag.as_deref() == Some("!");
    let merge = text == "<<" && (implicit || tag.as_deref() == Some(MERGE_TAG));
    if tag.is_none() && !implicit {
        // Quoted or block text without a tag is always a string.
        return Ok((Scalar::Str(text.to_string()), false));
    }
    let tag = tag.as_deref().unwrap_or("");
    let scalar = match resolve::resolve(tag, text)? {
        Resolved::Unresolved if tag == BINARY_TAG => {
            let bytes = decode_base64(text)
                .ok_or_else(|| "!!binary value contains invalid base64 data".to_string())?;
            Scalar::Str(go_lossy_utf8(&bytes))
        }
        Resolved::Null => Scalar::Null,
        Resolved::Bool(b) => Scalar::Bool(b),
        Resolved::Int(i) => Scalar::Int(i),
        Resolved::Uint(u) => Scalar::Uint(u),
        Resolved::BigInt(s) => Scalar::BigInt(s),
        Resolved::Float(f) => Scalar::Float(f),
        Resolved::Str | Resolved::Timestamp | Resolved::Merge | Resolved::Unresolved => {
            Scalar::Str(text.to_string())
        }
    };
    Ok((scalar, merge))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_follows_go_std_encoding() {
        assert_eq!(decode_base64("aGVsbG8="), Some(b"hello".to_vec()));
        assert_eq!(decode_base64("aGVs\nbG8="), Some(b"hello".to_vec()));
        assert_eq!(decode_base64(""), Some(Vec::new()));
        assert_eq!(decode_base64("aGVsbG8"), None);
        assert_eq!(decode_base64("aG=sbG8="), None);
        assert_eq!(decode_base64("aGVsbG8=aGVs"), None);
    }

    #[test]
    fn invalid_utf8_becomes_one_replacement_per_byte() {
        assert_eq!(go_lossy_utf8(b"a\xe2\x82b"), "a\u{FFFD}\u{FFFD}b");
        assert_eq!(go_lossy_utf8(b"\xff"), "\u{FFFD}");
    }

    #[test]
    fn big_integers_convert_to_the_nearest_float() {
        assert_eq!(
            big_to_f64("0x10000000000000000", 1),
            Ok(18446744073709551616.0)
        );
        assert_eq!(
            big_to_f64("0o2000000000000000000000", 1),
            Ok(18446744073709551616.0)
        );
        assert!(big_to_f64(&format!("0x{}", "f".repeat(300)), 1).is_err());
        assert!(big_to_f64(&"9".repeat(320), 1).is_err());
    }

    #[test]
    fn integral_floats_come_back_as_integers_like_go_json() {
        assert_eq!(float_value(3.0), Value::from(3u64));
        assert_eq!(float_value(-0.0), serde_json::json!(-0.0));
        assert_eq!(float_value(1.5), serde_json::json!(1.5));
        assert_eq!(float_value(1e20), serde_json::json!(1e20));
        assert_eq!(
            float_value(1152921504606846976.0),
            Value::from(1152921504606847000u64)
        );
    }
}
