//! The YAML text gnostic stores in an `Any` (vendor extensions, defaults, enums, examples):
//! block style with four-space indentation, as go-yaml v3 marshals a node whose style was
//! cleared. Readers (kubectl) parse it back, so it must be valid YAML of the same value.

use super::tree::Node;

/// Indentation of nested blocks (go-yaml v3's default).
const INDENT: usize = 4;

/// `node` as YAML text ending in a newline.
pub fn to_yaml(node: &Node) -> String {
    let mut out = String::new();
    match node {
        Node::Map(entries) if !entries.is_empty() => map(&mut out, entries, 0, false),
        Node::Seq(items) if !items.is_empty() => seq(&mut out, items, 0, false),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// A mapping; `inline_first` when its first key follows a sequence's `- `.
fn map(out: &mut String, entries: &[(String, Node)], indent: usize, inline_first: bool) {
    for (i, (k, v)) in entries.iter().enumerate() {
        if i > 0 || !inline_first {
            pad(out, indent);
        }
        out.push_str(&string(k));
        out.push(':');
        value(out, v, indent + INDENT);
    }
}

/// A sequence; `inline_first` when its first item follows an outer sequence's `- `.
fn seq(out: &mut String, items: &[Node], indent: usize, inline_first: bool) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 || !inline_first {
            pad(out, indent);
        }
        out.push_str("- ");
        match item {
            Node::Map(entries) if !entries.is_empty() => map(out, entries, indent + 2, true),
            Node::Seq(inner) if !inner.is_empty() => seq(out, inner, indent + 2, true),
            other => {
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
    }
}

/// What follows `key:`: a scalar on the same line, a collection on the next lines.
fn value(out: &mut String, v: &Node, indent: usize) {
    match v {
        Node::Map(entries) if !entries.is_empty() => {
            out.push('\n');
            map(out, entries, indent, false);
        }
        Node::Seq(items) if !items.is_empty() => {
            out.push('\n');
            seq(out, items, indent, false);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn scalar(n: &Node) -> String {
    match n {
        Node::Null => "null".into(),
        Node::Bool(b) => b.to_string(),
        Node::Int(s) => s.clone(),
        Node::Float(f) => float(*f),
        Node::Str(s) => string(s),
        Node::Map(_) => "{}".into(),
        Node::Seq(_) => "[]".into(),
    }
}

/// A float as a YAML float literal (an integral value keeps a `.0`, so it stays a float).
fn float(f: f64) -> String {
    if f.is_nan() {
        ".nan".into()
    } else if f.is_infinite() {
        if f > 0.0 {
            ".inf".into()
        } else {
            "-.inf".into()
        }
    } else {
        let s = f.to_string();
        if s.contains(['.', 'e', 'E']) {
            s
        } else {
            format!("{s}.0")
        }
    }
}

/// A string: plain when YAML would read it back as this same string, single-quoted when only
/// its characters forbid plain, double-quoted when it would read as another type (`"true"`,
/// `"1"`, `""`) or holds line breaks or control characters.
fn string(s: &str) -> String {
    if s.chars().any(|c| c.is_control()) || resolves_to_non_string(s) {
        return double_quoted(s);
    }
    if plain_allowed(s) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "''"))
}

fn double_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether a plain scalar with this text would be read as null, a bool or a number.
fn resolves_to_non_string(s: &str) -> bool {
    matches!(
        s,
        "" | "~"
            | "null"
            | "Null"
            | "NULL"
            | "true"
            | "True"
            | "TRUE"
            | "false"
            | "False"
            | "FALSE"
            | ".inf"
            | ".Inf"
            | ".INF"
            | "+.inf"
            | "-.inf"
            | ".nan"
            | ".NaN"
            | ".NAN"
    ) || looks_numeric(s)
}

fn looks_numeric(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    if body.is_empty() {
        return false;
    }
    if let Some(hex) = body.strip_prefix("0x") {
        return !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit());
    }
    if let Some(oct) = body.strip_prefix("0o") {
        return !oct.is_empty() && oct.chars().all(|c| c.is_digit(8));
    }
    let body = body.replace('_', "");
    body.parse::<f64>().is_ok() && body.chars().any(|c| c.is_ascii_digit())
}

/// libyaml's rule for block plain scalars, for the characters the documents use.
fn plain_allowed(s: &str) -> bool {
    let first = s.chars().next();
    let second = s.chars().nth(1);
    if s.starts_with(' ') || s.ends_with(' ') || s.starts_with("---") || s.starts_with("...") {
        return false;
    }
    match first {
        Some('#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"')
        | Some('%' | '@' | '`') => return false,
        Some('-' | '?' | ':') if second.is_none_or(|c| c == ' ') => return false,
        _ => {}
    }
    !(s.contains(": ") || s.ends_with(':') || s.contains(" #"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::openapi_v2::tree::parse;

    fn y(json: &str) -> String {
        to_yaml(&parse(json.as_bytes()).unwrap())
    }

    #[test]
    fn scalars_as_go_yaml_writes_them() {
        assert_eq!(y(r#""merge""#), "merge\n");
        assert_eq!(y(r#""""#), "\"\"\n");
        assert_eq!(y(r#""true""#), "\"true\"\n");
        assert_eq!(y(r#""1""#), "\"1\"\n");
        assert_eq!(y("true"), "true\n");
        assert_eq!(y("3"), "3\n");
        assert_eq!(y("{}"), "{}\n");
        assert_eq!(y("[]"), "[]\n");
        assert_eq!(y(r#""*""#), "'*'\n");
        assert_eq!(y(r#""a: b""#), "'a: b'\n");
        assert_eq!(y(r#""it's""#), "it's\n");
        assert_eq!(y(r#""two\nlines""#), "\"two\\nlines\"\n");
    }

    #[test]
    fn group_version_kinds_and_nested_blocks() {
        assert_eq!(
            y(r#"[{"group": "", "kind": "Pod", "version": "v1"}]"#),
            "- group: \"\"\n  kind: Pod\n  version: v1\n"
        );
        assert_eq!(
            y(r#"{"group": "apps", "kind": "Deployment", "version": "v1"}"#),
            "group: apps\nkind: Deployment\nversion: v1\n"
        );
        assert_eq!(
            y(r#"[{"discriminator": "type", "fields-to-discriminateBy": {"a": "A"}}]"#),
            "- discriminator: type\n  fields-to-discriminateBy:\n      a: A\n"
        );
        assert_eq!(
            y(r#"{"keys": ["a", "b"], "m": {"n": [[1]]}}"#),
            "keys:\n    - a\n    - b\nm:\n    n:\n        - - 1\n"
        );
    }

    #[test]
    fn what_it_writes_reads_back_as_the_same_value() {
        for json in [
            r#"[{"group": "", "kind": "Pod", "version": "v1"}]"#,
            r##"{"a": ["x", "- y", "#z", "it's", "", "null", "1.5", "a: b"], "b": {"c": [[1, 2], []]}}"##,
            r#"{"rule": "self.x > 0 && self.y.startsWith('a')", "message": "must: be"}"#,
        ] {
            let text = y(json);
            let back = kapi_codec::yaml::from_yaml(text.as_bytes()).unwrap();
            let want: serde_json::Value = serde_json::from_str(json).unwrap();
            assert_eq!(back, want, "{text}");
        }
    }
}
