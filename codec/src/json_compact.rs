//! Validating `json.Compact` in one pass: embedded raw JSON (RawExtension, FieldsV1) is copied
//! to the output without whitespace, with Go's HTML escaping, and checked to be one valid JSON
//! value, without building a tape. Hot path: managedFields of every object written as JSON
//! (benches/codec.rs `pb_to_json`).

use crate::json_read::JSON_MAX_DEPTH;

/// What the scanner expects next.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A value (top level, after `:`, after `,` in an array, or first in an array).
    Value,
    /// First key of an object or `}`.
    KeyOrClose,
    /// A key (after `,` in an object).
    Key,
    Colon,
    /// `,` or the closing bracket of the innermost container.
    CommaOrClose,
    Done,
}

/// Appends the compact form of `raw` to `out`. On invalid input, `out` is restored and the
/// offset of the first bad byte is returned.
pub fn compact(raw: &[u8], out: &mut Vec<u8>) -> Result<(), usize> {
    let start_len = out.len();
    out.reserve(raw.len());
    // Open containers, innermost last: true for objects.
    let mut stack: smallvec::SmallVec<[bool; 32]> = smallvec::SmallVec::new();
    let mut expect = Expect::Value;
    let mut i = 0;
    let fail = |out: &mut Vec<u8>, at: usize| {
        out.truncate(start_len);
        Err(at)
    };
    while i < raw.len() {
        let c = raw[i];
        if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
            continue;
        }
        match (expect, c) {
            (Expect::Value | Expect::KeyOrClose | Expect::Key, b'"') => {
                let Some(end) = string(raw, i, out) else {
                    return fail(out, i);
                };
                i = end;
                expect = if expect == Expect::Value {
                    after_value(&stack)
                } else {
                    Expect::Colon
                };
            }
            (Expect::Value, b'{' | b'[') => {
                if stack.len() >= JSON_MAX_DEPTH {
                    return fail(out, i);
                }
                stack.push(c == b'{');
                out.push(c);
                i += 1;
                expect = if c == b'{' {
                    Expect::KeyOrClose
                } else {
                    Expect::Value
                };
                // An empty array closes right away.
                if c == b'[' {
                    let mut j = i;
                    while j < raw.len() && matches!(raw[j], b' ' | b'\t' | b'\n' | b'\r') {
                        j += 1;
                    }
                    if raw.get(j) == Some(&b']') {
                        stack.pop();
                        out.push(b']');
                        i = j + 1;
                        expect = after_value(&stack);
                    }
                }
            }
            (Expect::KeyOrClose, b'}') | (Expect::CommaOrClose, b'}' | b']') => {
                let is_obj = stack.pop();
                if is_obj != Some(c == b'}') {
                    return fail(out, i);
                }
                out.push(c);
                i += 1;
                expect = after_value(&stack);
            }
            (Expect::Colon, b':') => {
                out.push(b':');
                i += 1;
                expect = Expect::Value;
            }
            (Expect::CommaOrClose, b',') if !stack.is_empty() => {
                out.push(b',');
                i += 1;
                expect = if stack.last() == Some(&true) {
                    Expect::Key
                } else {
                    Expect::Value
                };
            }
            (Expect::Value, b't' | b'f' | b'n') => {
                let word: &[u8] = match c {
                    b't' => b"true",
                    b'f' => b"false",
                    _ => b"null",
                };
                if !raw[i..].starts_with(word) {
                    return fail(out, i);
                }
                out.extend_from_slice(word);
                i += word.len();
                expect = after_value(&stack);
            }
            (Expect::Value, b'-' | b'0'..=b'9') => {
                let Some(end) = number(raw, i) else {
                    return fail(out, i);
                };
                out.extend_from_slice(&raw[i..end]);
                i = end;
                expect = after_value(&stack);
            }
            _ => return fail(out, i),
        }
    }
    if expect != Expect::Done {
        return fail(out, raw.len());
    }
    Ok(())
}

#[inline]
fn after_value(stack: &[bool]) -> Expect {
    if stack.is_empty() {
        Expect::Done
    } else {
        Expect::CommaOrClose
    }
}

/// Copies the string starting at the quote `raw[start]`, escaping as Go's compact does;
/// returns the offset after the closing quote.
fn string(raw: &[u8], start: usize, out: &mut Vec<u8>) -> Option<usize> {
    out.push(b'"');
    let mut i = start + 1;
    let mut run = i;
    loop {
        let c = *raw.get(i)?;
        match c {
            b'"' => {
                out.extend_from_slice(&raw[run..i]);
                out.push(b'"');
                return Some(i + 1);
            }
            b'\\' => match raw.get(i + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                b'u' => {
                    if !raw.get(i + 2..i + 6)?.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    i += 6;
                }
                _ => return None,
            },
            0..=0x1f => return None,
            b'<' | b'>' | b'&' => {
                out.extend_from_slice(&raw[run..i]);
                out.extend_from_slice(match c {
                    b'<' => b"\\u003c",
                    b'>' => b"\\u003e",
                    _ => b"\\u0026",
                });
                i += 1;
                run = i;
            }
            0xE2 if raw.get(i + 1) == Some(&0x80)
                && matches!(raw.get(i + 2), Some(0xA8 | 0xA9)) =>
            {
                out.extend_from_slice(&raw[run..i]);
                out.extend_from_slice(if raw[i + 2] == 0xA8 {
                    b"\\u2028"
                } else {
                    b"\\u2029"
                });
                i += 3;
                run = i;
            }
            0x80.. => {
                // Go would copy invalid UTF-8 through; clients need valid JSON, so each bad
                // byte becomes U+FFFD, as Go's encoder does for strings it writes itself.
                let (len, valid) = crate::json_write::utf8_char(&raw[i..]);
                if !valid {
                    out.extend_from_slice(&raw[run..i]);
                    out.extend_from_slice(b"\\ufffd");
                    run = i + len;
                }
                i += len;
            }
            _ => i = crate::json_write::skip_plain(raw, i + 1),
        }
    }
}

/// The end of the JSON number starting at `start`, if it is one.
fn number(raw: &[u8], start: usize) -> Option<usize> {
    crate::json_read::number_end(raw, start).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json_read::Doc;

    fn c(s: &str) -> Result<String, usize> {
        let mut out = b"keep".to_vec();
        compact(s.as_bytes(), &mut out).map(|()| String::from_utf8(out[4..].to_vec()).unwrap())
    }

    #[test]
    fn compacts_like_the_tape_writer() {
        for s in [
            r#" { "z" : [ 1 , {"a": "<b>&"} , [] , {} , [ ] ], "a": true, "n": null, "f": -1.5e3 } "#,
            r#"{"f:spec":{"k:{\"name\":\"x\"}":{".":{}}}}"#,
            "[]",
            "\"s\u{2028}\"",
            "0",
            "[[[]],{}]",
            "[\"\u{e9}\u{1F600}\"]",
        ] {
            let mut tape = Vec::new();
            Doc::parse(s.as_bytes())
                .unwrap()
                .write_compact(0, &mut tape);
            assert_eq!(c(s).unwrap(), String::from_utf8(tape).unwrap(), "{s}");
        }
    }

    #[test]
    fn invalid_utf8_in_strings_becomes_replacement_characters() {
        let mut out = Vec::new();
        compact(b"[\"a\xffb\xe2\x82\"]", &mut out).unwrap();
        assert_eq!(out, br#"["a\ufffdb\ufffd\ufffd"]"#);
    }

    #[test]
    fn rejects_what_the_parser_rejects_and_restores_the_output() {
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\" 1}",
            "01",
            "1.",
            "-",
            "\"abc",
            "[1] 2",
            "{\"a\":1,}",
            "nul",
            "\"\\x\"",
            "\"\x01\"",
            "{\"a\":1]",
            "[1}",
            "{1:2}",
            ",",
            "]",
            "{\"a\"}",
            "[,1]",
        ] {
            let mut out = b"keep".to_vec();
            assert!(
                compact(bad.as_bytes(), &mut out).is_err(),
                "{bad:?} should fail"
            );
            assert_eq!(out, b"keep");
            assert!(
                Doc::parse(bad.as_bytes()).is_err(),
                "parser accepts {bad:?}"
            );
        }
    }
}
