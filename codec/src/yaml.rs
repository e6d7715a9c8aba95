//! YAML as Kubernetes writes and reads it: sigs.k8s.io/yaml's `JSONToYAML` (go-yaml v2's
//! `Marshal`, reproduced byte for byte) and `YAMLToJSON` (go-yaml v2's YAML 1.1 typing, merge keys
//! and aliases, with its limits). Parsing is `saphyr-parser`'s; typing and writing are ours.

mod decode;
mod emit;
mod encode;
mod float;
mod resolve;
mod scalar;

use std::borrow::Cow;
use std::fmt;

use serde_json::Value;

pub use decode::{MAX_ALIAS_EXPANSION_BYTES, MAX_DEPTH};

/// A document that could not be read, and the line (1-based; 0 when unknown) where it went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "yaml: line {}: {}", self.line, self.message)
        } else {
            write!(f, "yaml: {}", self.message)
        }
    }
}

impl std::error::Error for YamlError {}

/// sigs.k8s.io/yaml.JSONToYAML / yaml.Marshal of a JSON document: mapping keys in go-yaml's
/// order, block style, 2-space indentation, sequences under a key not indented, strings quoted
/// exactly when go-yaml v2 quotes them, multi-line strings as literal blocks, long lines folded
/// at 80 columns, numbers as Go formats them. Ends with a newline.
///
/// Where upstream differs: JSONToYAML *fails* on strings holding DEL, C1 controls or
/// U+FFFE/U+FFFF, on keys holding U+0085 or whose JSON form passes 1024 characters, and on
/// U+0085 followed by "---" or "..."; this writes them (escaped) instead. When go-yaml's key
/// order is not transitive, its output depends on Go's map order; this gives one of them.
pub fn to_yaml(v: &Value) -> String {
    emit::to_yaml(v)
}

/// sigs.k8s.io/yaml.YAMLToJSON of one document (any later documents are ignored, as go-yaml's
/// `Unmarshal` ignores them). Numbers come out as serde_json reads Go's JSON for them: integers
/// exact in i64/u64, other values f64. Nesting deeper than [`MAX_DEPTH`] and alias expansion
/// past go-yaml's budget or [`MAX_ALIAS_EXPANSION_BYTES`] are errors.
///
/// Where upstream differs: the parser follows YAML 1.2, so U+2028/U+2029 are not line breaks,
/// and malformed input is judged differently at the edges (tabs before a token at the start of
/// a line, anchor and tag characters, `'a'#c`, the `\/` and `\'` escapes, `?` inside flow plain
/// scalars, directives after a document without `...`, flow nesting past 255). Messages are
/// the parser's own words. Keys that collide once made strings (`1` and `"1"`) keep the later
/// value, where Go's choice is random.
pub fn from_yaml(input: &[u8]) -> Result<Value, YamlError> {
    let text = read_text(input)?;
    parse_document(&text, 1)
}

/// A multi-document stream split as Kubernetes splits it (k8s.io/apimachinery's `YAMLReader`:
/// a line starting with "---" ends a document, and may carry only a comment), each document
/// converted by [`from_yaml`]. Documents that are empty or null are skipped. Error lines count
/// from the start of the stream.
pub fn from_yaml_stream(input: &[u8]) -> Result<Vec<Value>, YamlError> {
    let text = read_text(input)?;
    let mut docs = Vec::new();
    let mut chunk = String::new();
    let mut chunk_line = 1;
    let mut flush = |chunk: &mut String, first_line: usize| -> Result<(), YamlError> {
        if !chunk.is_empty() {
            let doc = parse_document(chunk, first_line)?;
            if !doc.is_null() {
                docs.push(doc);
            }
            chunk.clear();
        }
        Ok(())
    };
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if let Some(rest) = line.strip_prefix("---") {
            let rest = rest.trim();
            if !rest.is_empty() && !rest.starts_with('#') {
                return Err(YamlError {
                    line: number,
                    message: format!("invalid Yaml document separator: {rest}"),
                });
            }
            flush(&mut chunk, chunk_line)?;
            continue;
        }
        if chunk.is_empty() {
            chunk_line = number;
        }
        chunk.push_str(line);
        chunk.push('\n');
    }
    flush(&mut chunk, chunk_line)?;
    Ok(docs)
}

/// Parse the first document of `text`, whose first line is line `first_line` of the input.
fn parse_document(text: &str, first_line: usize) -> Result<Value, YamlError> {
    // YAML 1.1 counts U+0085 (NEL) as a line break and reads it as "\n" wherever it breaks a
    // line; saphyr-parser follows YAML 1.2, where it is an ordinary character.
    let text = if text.contains('\u{85}') {
        Cow::Owned(text.replace('\u{85}', "\n"))
    } else {
        Cow::Borrowed(text)
    };
    let text = text.as_ref();
    // The parser is a dependency fed with client input: should it ever panic, that is this
    // request's error, not the process's.
    std::panic::catch_unwind(|| decode::first_document(text, first_line)).unwrap_or_else(|_| {
        Err(YamlError {
            line: 0,
            message: "internal error in the YAML parser".to_string(),
        })
    })
}

/// libyaml's reader: the encoding from the byte order mark (UTF-8 without one), then only the
/// characters YAML allows.
fn read_text(input: &[u8]) -> Result<Cow<'_, str>, YamlError> {
    let text: Cow<'_, str> = match input {
        [0xFF, 0xFE, rest @ ..] => Cow::Owned(utf16(rest, u16::from_le_bytes)?),
        [0xFE, 0xFF, rest @ ..] => Cow::Owned(utf16(rest, u16::from_be_bytes)?),
        _ => {
            let bytes = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
            match std::str::from_utf8(bytes) {
                Ok(s) => Cow::Borrowed(s),
                Err(e) => {
                    let at = e.valid_up_to();
                    let message = if e.error_len().is_none() {
                        "incomplete UTF-8 octet sequence"
                    } else if matches!(bytes[at], 0xC2..=0xF4) {
                        "invalid trailing UTF-8 octet"
                    } else {
                        "invalid leading UTF-8 octet"
                    };
                    return Err(YamlError {
                        line: line_of(&bytes[..at]),
                        message: message.to_string(),
                    });
                }
            }
        }
    };
    let allowed = |c: char| {
        matches!(c as u32, 0x09 | 0x0A | 0x0D | 0x20..=0x7E | 0x85 | 0xA0..=0xD7FF | 0xE000..=0xFFFD)
            || c as u32 >= 0x10000
    };
    if let Some(at) = text.find(|c| !allowed(c)) {
        return Err(YamlError {
            line: line_of(&text.as_bytes()[..at]),
            message: "control characters are not allowed".to_string(),
        });
    }
    Ok(text)
}

fn utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> Result<String, YamlError> {
    if !bytes.len().is_multiple_of(2) {
        return Err(YamlError {
            line: 0,
            message: "incomplete UTF-16 character".to_string(),
        });
    }
    let units = bytes.chunks_exact(2).map(|p| unit([p[0], p[1]]));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .map_err(|_| YamlError {
            line: 0,
            message: "invalid UTF-16 surrogate pair".to_string(),
        })
}

fn line_of(before: &[u8]) -> usize {
    1 + before.iter().filter(|&&b| b == b'\n').count()
}

#[cfg(test)]
mod tests {
    //! Expected outputs were produced by go-yaml v2 (through sigs.k8s.io/yaml's conversions)
    //! unless a comment says otherwise.

    use super::*;
    use serde_json::json;

    fn yaml_of(v: Value) -> String {
        to_yaml(&v)
    }

    fn read(y: &str) -> Value {
        from_yaml(y.as_bytes()).unwrap_or_else(|e| panic!("{y:?}: {e}"))
    }

    fn read_err(y: &str) -> YamlError {
        match from_yaml(y.as_bytes()) {
            Ok(v) => panic!("{y:?} read as {v}"),
            Err(e) => e,
        }
    }

    #[test]
    fn strings_that_would_read_back_as_another_type_are_double_quoted() {
        for s in [
            "",
            "true",
            "yes",
            "y",
            "N",
            "on",
            "Off",
            "null",
            "~",
            "NULL",
            "0",
            "1",
            "-1",
            "1.5",
            "1e3",
            ".5",
            "0x1F",
            "0o17",
            "017",
            "08",
            "1_000",
            "+1",
            "1:20",
            ".inf",
            "-.Inf",
            ".nan",
            "2008-01-01T01:01:01Z",
            "2001-12-14",
        ] {
            assert_eq!(yaml_of(json!({ "k": s })), format!("k: \"{s}\"\n"), "{s:?}");
        }
        // Not a date, not a number, and the merge key is a string when quoted.
        assert_eq!(yaml_of(json!({"k": "2001-13-14"})), "k: 2001-13-14\n");
        assert_eq!(yaml_of(json!({"k": "<<"})), "k: <<\n");
        assert_eq!(yaml_of(json!({"k": "0x1g"})), "k: 0x1g\n");
    }

    #[test]
    fn strings_with_indicators_are_single_quoted() {
        for s in [
            " ", "a: b", "a #b", "#a", "- a", "-", "---", "...", "? a", ": a", "@a", "`a", "%a",
            "!a", "&a", "*a", "|a", ">a", "\"a", "[a]", "{a}", " lead", "trail ",
        ] {
            assert_eq!(yaml_of(json!({ "k": s })), format!("k: '{s}'\n"), "{s:?}");
        }
        assert_eq!(yaml_of(json!({"k": "'a"})), "k: '''a'\n");
        for s in ["a:b", "a#b", "-a", "?a", ":a", "a'b", "a,b", "é", "a b"] {
            assert_eq!(yaml_of(json!({ "k": s })), format!("k: {s}\n"), "{s:?}");
        }
    }

    #[test]
    fn unprintable_characters_are_escaped_in_double_quotes() {
        assert_eq!(yaml_of(json!({"k": "tab\there"})), "k: \"tab\\there\"\n");
        // Outside the Basic Multilingual Plane is not "printable" to go-yaml.
        assert_eq!(yaml_of(json!({"k": "😀"})), "k: \"\\U0001F600\"\n");
        // go-yaml's BOM check looks at the start of the value for every character.
        assert_eq!(
            yaml_of(json!({"k": "\u{feff}bom"})),
            "k: \"\\uFEFF\\x62\\x6F\\x6D\"\n"
        );
        // encoding/json leaves NEL unescaped and go-yaml folds it as a line break.
        assert_eq!(yaml_of(json!({"k": "a\u{85}b"})), "k: a b\n");
    }

    #[test]
    fn multiline_strings_are_literal_blocks_with_go_yaml_chomping_and_indent_hints() {
        let cases = [
            ("line1\nline2", "k: |-\n  line1\n  line2\n"),
            ("line1\nline2\n", "k: |\n  line1\n  line2\n"),
            ("line1\n\n", "k: |+\n  line1\n\n"),
            ("  indented\nx", "k: |2-\n    indented\n  x\n"),
            ("\nleading", "k: |2-\n\n  leading\n"),
            // A space before a line break rules out the block style.
            ("trailing space \nx", "k: \"trailing space \\nx\"\n"),
            ("a\tb\nc", "k: \"a\\tb\\nc\"\n"),
        ];
        for (s, want) in cases {
            assert_eq!(yaml_of(json!({ "k": s })), want, "{s:?}");
        }
        assert_eq!(
            yaml_of(json!({"k": ["a", ["b", "c"], {"d": "e\nf"}]})),
            "k:\n- a\n- - b\n  - c\n- d: |-\n    e\n    f\n"
        );
        assert_eq!(yaml_of(json!("a\nb")), "|-\n  a\n  b\n");
    }

    #[test]
    fn long_lines_fold_at_80_columns_and_long_keys_go_explicit() {
        let words = "word ".repeat(30);
        assert_eq!(
            yaml_of(json!({ "k": words })),
            "k: 'word word word word word word word word word word word word word word word word\n  word word word word word word word word word word word word word word '\n"
        );
        let tail = format!("{} tail", "x".repeat(100));
        assert_eq!(
            yaml_of(json!({ "k": tail })),
            format!("k: {}\n  tail\n", "x".repeat(100))
        );
        // Runs of spaces are never folded.
        let doubled = "word  ".repeat(20);
        assert_eq!(
            yaml_of(json!({ "k": doubled })),
            format!("k: '{doubled}'\n")
        );
        let long_key = "k".repeat(130);
        assert_eq!(
            yaml_of(json!({ long_key.clone(): 1 })),
            format!("? {long_key}\n: 1\n")
        );
        assert_eq!(yaml_of(json!({"x\ny": 1})), "? |-\n  x\n  y\n: 1\n");
    }

    #[test]
    fn numbers_are_formatted_as_go_formats_them() {
        let v = json!({
            "n": 1.0, "f": 0.1, "g": 1e21, "h": 1e20, "i": 123456789.0, "j": 1.5e-7,
            "k": -0.0, "l": u64::MAX, "m": i64::MIN, "o": 12345678.9,
        });
        assert_eq!(
            yaml_of(v),
            "f: 0.1\ng: 1e+21\nh: 1e+20\ni: 123456789\nj: 1.5e-07\nk: 0\nl: 18446744073709551615\nm: -9223372036854775808\n\"n\": 1\no: 1.23456789e+07\n"
        );
        assert_eq!(yaml_of(json!(42)), "42\n");
    }

    #[test]
    fn keys_are_sorted_in_go_yaml_natural_order_and_collections_may_be_empty() {
        let v = json!({"b": 1, "a10": 1, "a9": 1, "A": 1, "_": 1, "1": 1, "x-10": 1, "x-2": 1});
        assert_eq!(
            yaml_of(v),
            "_: 1\n\"1\": 1\nA: 1\na9: 1\na10: 1\nb: 1\nx-2: 1\nx-10: 1\n"
        );
        let v = json!({"k": {}, "l": [], "m": [{}], "n": [[]], "o": null, "p": true});
        assert_eq!(
            yaml_of(v),
            "k: {}\nl: []\nm:\n- {}\n\"n\":\n- []\no: null\np: true\n"
        );
        assert_eq!(yaml_of(json!(["top", "level"])), "- top\n- level\n");
        assert_eq!(yaml_of(json!(null)), "null\n");
        assert_eq!(yaml_of(json!({})), "{}\n");
    }

    #[test]
    fn yaml_1_1_booleans_and_nulls_are_read_as_go_yaml_v2_reads_them() {
        let y =
            "a: yes\nb: No\nc: on\nd: OFF\ne: y\nf: n\ng: true\nh: False\ni: ~\nj: null\nk:\nl: ''";
        assert_eq!(
            read(y),
            json!({"a": true, "b": false, "c": true, "d": false, "e": true, "f": false,
                   "g": true, "h": false, "i": null, "j": null, "k": null, "l": ""})
        );
        // As keys they become "true"/"false".
        assert_eq!(read("yes: a\nn: b"), json!({"true": "a", "false": "b"}));
    }

    #[test]
    fn numbers_are_read_with_go_strconv_rules_and_kept_exact() {
        let y = "a: 0x1F\nb: 0o17\nc: 017\nd: 08\ne: 1_000\nf: +12\ng: -0b101\nh: 1e3\ni: .5\n\
                 j: 1.\nk: 9223372036854775808\nl: 18446744073709551616\nm: 1:20\nq: -0.0\n\
                 o: 1.5\np: -9223372036854775808";
        let v = read(y);
        assert_eq!(
            v,
            json!({"a": 31, "b": 15, "c": 15, "d": 8, "e": 1000, "f": 12, "g": -5, "h": 1000,
                   "i": 0.5, "j": 1, "k": 9223372036854775808u64, "l": 18446744073709551616.0,
                   "m": "1:20", "q": -0.0, "o": 1.5, "p": i64::MIN})
        );
        assert!(v["k"].is_u64() && v["l"].is_f64() && v["p"].is_i64());
        // The fork reads hexadecimal past 64 bits as a big integer (a JSON number).
        assert_eq!(
            read("a: 0x10000000000000000"),
            json!({"a": 18446744073709551616.0})
        );
    }

    #[test]
    fn timestamps_tags_and_quoting_keep_or_force_types() {
        let y = "t: 2001-12-14\nu: 2001-12-14T21:59:43.10-05:00\na: \"1\"\nb: '1'\nc: !!str 1\n\
                 d: !!int '12'\ne: !!float 3\nf: !!bool yes\ng: !!binary aGVsbG8=\nh: !custom 12\ni: ! 12";
        assert_eq!(
            read(y),
            json!({"t": "2001-12-14", "u": "2001-12-14T21:59:43.10-05:00", "a": "1", "b": "1",
                   "c": "1", "d": 12, "e": 3, "f": true, "g": "hello", "h": "12", "i": "12"})
        );
        assert_eq!(
            read_err("a: !!int x").message,
            "cannot decode !!str `x` as a !!int"
        );
    }

    #[test]
    fn non_string_keys_become_strings_or_fail_as_in_sigs_yaml() {
        let y = "1: a\n1.5: b\n0.1: c\ntrue: d\n3.14159265358979: f\n-.inf: g";
        assert_eq!(
            read(y),
            json!({"1": "a", "1.5": "b", "0.1": "c", "true": "d", "3.1415927": "f", "-.inf": "g"})
        );
        assert!(
            read_err("~: a")
                .message
                .starts_with("unsupported map key of type: <nil>")
        );
        assert!(
            read_err("18446744073709551615: a")
                .message
                .contains("uint64")
        );
        assert!(read_err("[a]: b").message.starts_with("invalid map key"));
    }

    #[test]
    fn nan_fails_only_if_it_survives_into_the_json() {
        assert_eq!(read_err("a: .nan").message, "json: unsupported value: NaN");
        assert_eq!(read("a: .nan\na: 1"), json!({"a": 1}));
        assert_eq!(read("a: 1\na: 2"), json!({"a": 2}));
    }

    #[test]
    fn merge_keys_and_aliases_follow_go_yaml() {
        let y = "base: &b {k: 1, j: 2}\nother:\n  k: 0\n  <<: *b\n  j: 5";
        assert_eq!(
            read(y),
            json!({"base": {"j": 2, "k": 1}, "other": {"j": 5, "k": 1}})
        );
        let y = "m1: &m1 {a: 1}\nm2: &m2 {a: 2, b: 2}\nx:\n  <<: [*m1, *m2]";
        assert_eq!(
            read(y),
            json!({"m1": {"a": 1}, "m2": {"a": 2, "b": 2}, "x": {"a": 1, "b": 2}})
        );
        assert_eq!(
            read_err("x:\n  <<: 1").message,
            "map merge requires map or sequence of maps as the value"
        );
        let y = "a: &x [1, {b: c}]\nb: *x";
        assert_eq!(read(y), json!({"a": [1, {"b": "c"}], "b": [1, {"b": "c"}]}));
        assert_eq!(
            read_err("a: &a [*a]").message,
            "anchor value contains itself"
        );
        assert!(read_err("a: *nope").message.contains("unknown anchor"));
    }

    #[test]
    fn block_and_flow_scalars_read_as_libyaml_reads_them() {
        assert_eq!(
            read("a: |\n  line1\n  line2\n"),
            json!({"a": "line1\nline2\n"})
        );
        assert_eq!(
            read("a: >\n  folded\n  text\n\n  para\n"),
            json!({"a": "folded text\npara\n"})
        );
        assert_eq!(read("a: |+\n  keep\n\n"), json!({"a": "keep\n\n"}));
        assert_eq!(read("a: |-\n  strip\n"), json!({"a": "strip"}));
        // No line break at the end of the input: none at the end of the scalar either.
        assert_eq!(
            read("a: |\n  no final newline"),
            json!({"a": "no final newline"})
        );
        assert_eq!(
            read("a: \"esc \\t \\x41 \\u00e9 \\U0001F600 \\N \\_\""),
            json!({"a": "esc \t A é 😀 \u{85} \u{a0}"})
        );
        assert_eq!(
            read("a: 'it''s'\nb: \"multi\n  line\""),
            json!({"a": "it's", "b": "multi line"})
        );
        assert_eq!(
            read("- a\n- - b\n  - c\n- {d: [1, 2]}"),
            json!(["a", ["b", "c"], {"d": [1, 2]}])
        );
    }

    #[test]
    fn empty_input_is_null_and_only_the_first_document_is_read() {
        assert_eq!(read(""), Value::Null);
        assert_eq!(read("# only a comment\n"), Value::Null);
        assert_eq!(read("just a string"), json!("just a string"));
        assert_eq!(read("a: 1\n---\nb: 2"), json!({"a": 1}));
        // What follows a complete first document is never parsed by go-yaml.
        assert_eq!(read("{a: 1}\n~"), json!({"a": 1}));
    }

    #[test]
    fn errors_carry_the_line_where_they_were_found() {
        let cases: [(&[u8], usize); 6] = [
            (b"a:\n  b: 1\n c: 2", 3),
            (b"a: 1\nb: 2\nc: d: e", 3),
            (b"a: 1\nb: !!int x", 2),
            (b"a: 1\n\nb: *nope", 3),
            (b"a: 1\nb: \xff", 2),
            (b"a: 1\nb: \x01", 2),
        ];
        for (y, line) in cases {
            let e = from_yaml(y).expect_err("an error");
            assert_eq!(e.line, line, "{:?}: {e}", String::from_utf8_lossy(y));
        }
        let e = read_err("a: b: c");
        assert_eq!(e.to_string(), format!("yaml: line 1: {}", e.message));
    }

    #[test]
    fn input_encodings_follow_the_byte_order_mark() {
        assert_eq!(from_yaml(b"\xEF\xBB\xBFa: 1").unwrap(), json!({"a": 1}));
        let utf16le: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("a: é".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(from_yaml(&utf16le).unwrap(), json!({"a": "é"}));
        let utf16be: Vec<u8> = [0xFE, 0xFF]
            .into_iter()
            .chain("a: 1".encode_utf16().flat_map(u16::to_be_bytes))
            .collect();
        assert_eq!(from_yaml(&utf16be).unwrap(), json!({"a": 1}));
        assert_eq!(
            from_yaml(b"a: \x7f").unwrap_err().message,
            "control characters are not allowed"
        );
    }

    #[test]
    fn streams_split_on_separator_lines_and_skip_empty_documents() {
        let y = "---\na: 1\n--- # second\nb: 2\n---\n\n---\n# nothing\n...\n---\n- c\n";
        assert_eq!(
            from_yaml_stream(y.as_bytes()).unwrap(),
            vec![json!({"a": 1}), json!({"b": 2}), json!(["c"])]
        );
        assert_eq!(from_yaml_stream(b"").unwrap(), Vec::<Value>::new());
        let e = from_yaml_stream(b"a: 1\n--- b: 2\n").unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (2, "invalid Yaml document separator: b: 2")
        );
        // Lines count from the start of the stream.
        let e = from_yaml_stream(b"a: 1\n---\nb: 2\nc: [\n").unwrap_err();
        assert_eq!(e.line, 5, "{e}");
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let flow = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(from_yaml(flow.as_bytes()).is_err());
        let block = "- ".repeat(100_000) + "x";
        let e = from_yaml(block.as_bytes()).unwrap_err();
        assert!(e.message.contains("max depth"), "{e}");
        let mut nested = String::new();
        for depth in 0..MAX_DEPTH + 5 {
            nested.push_str(&" ".repeat(depth));
            nested.push_str("a:\n");
        }
        assert!(
            from_yaml(nested.as_bytes())
                .unwrap_err()
                .message
                .contains("max depth")
        );
        let mut ok = String::new();
        for depth in 0..MAX_DEPTH - 1 {
            ok.push_str(&" ".repeat(depth));
            ok.push_str("a:\n");
        }
        assert!(from_yaml(ok.as_bytes()).is_ok());
        // Aliases cannot stack one deep tree on another past the bound either.
        let half = MAX_DEPTH / 2 + 10;
        let tree = format!("a: &x\n{}1\n", "- ".repeat(half));
        assert!(from_yaml(tree.as_bytes()).is_ok());
        let stacked = format!("{tree}b:\n{}*x\n", "- ".repeat(half));
        let e = from_yaml(stacked.as_bytes()).unwrap_err();
        assert!(e.message.contains("max depth"), "{e}");
    }

    #[test]
    fn alias_expansion_is_bounded() {
        // The "billion laughs": each level aliases the one before nine times.
        let mut y = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
        for pair in names.windows(2) {
            let (prev, name) = (pair[0], pair[1]);
            let items = vec![format!("*{prev}"); 9].join(",");
            y.push_str(&format!("{name}: &{name} [{items}]\n"));
        }
        let e = from_yaml(y.as_bytes()).unwrap_err();
        assert_eq!(e.message, "document contains excessive aliasing");
        // Few aliases of one big string pass go-yaml's ratio but not the byte bound.
        let big = "x".repeat(1 << 20);
        let mut y = format!("s: &s {big}\nl:\n");
        y.push_str(&"- *s\n".repeat(50));
        assert!(from_yaml(y.as_bytes()).is_ok());
        let mut y = format!("s: &s {big}\nl:\n");
        y.push_str(&"- *s\n".repeat(100));
        assert_eq!(
            from_yaml(y.as_bytes()).unwrap_err().message,
            "document contains excessive aliasing"
        );
        // Modest reuse, as in real manifests, is fine.
        let y = "d: &d {a: 1, b: [1, 2]}\nx: *d\ny: *d\nz: {<<: *d, c: 3}";
        assert_eq!(read(y)["z"], json!({"a": 1, "b": [1, 2], "c": 3}));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A small deterministic generator: splices of YAML fragments and random bytes.
        let fragments: [&[u8]; 24] = [
            b"a: ",
            b"- ",
            b"? ",
            b": ",
            b"[",
            b"]",
            b"{",
            b"}",
            b",",
            b"&x ",
            b"*x",
            b"!!int ",
            b"|\n",
            b">-\n",
            b"\"",
            b"'",
            b"\\",
            b"#",
            b"\n",
            b"  ",
            b"\t",
            b"<<: ",
            b"---\n",
            b"%YAML 1.1\n",
        ];
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..3000 {
            let mut input = Vec::new();
            for _ in 0..(next() % 24) {
                let r = next();
                if r % 4 == 0 {
                    input.push((r >> 8) as u8);
                } else {
                    input.extend_from_slice(fragments[(r >> 8) as usize % fragments.len()]);
                }
            }
            for result in [
                from_yaml(&input).map(|_| ()),
                from_yaml_stream(&input).map(|_| ()),
            ] {
                if let Err(e) = result {
                    assert!(!e.message.contains("internal error"), "{input:?}: {e}");
                }
            }
        }
    }
}
