//! The YAML text gnostic stores in an `Any` (vendor extensions, defaults, enums, examples):
//! what go-yaml v3's `Marshal` writes for a node whose styles were cleared — block style,
//! four-space indentation, sequence items two past their dash, scalars plain when they read
//! back as the same string (else single- or double-quoted, or a literal block when multi-line),
//! and long scalars folded past column 80. Readers (kubectl) parse it back.

use super::tree::Node;

/// go-yaml v3's default indentation.
const INDENT: usize = 4;
/// Column past which go-yaml folds a scalar at a space (its default `best_width`).
const WIDTH: usize = 80;

/// `node` as YAML text ending in a newline.
pub fn to_yaml(node: &Node) -> String {
    let mut w = Writer::default();
    match node {
        Node::Map(entries) if !entries.is_empty() => w.map(entries, 0, false),
        Node::Seq(items) if !items.is_empty() => w.seq(items, 0, false),
        // A root scalar's continuation lines are indented one level (go-yaml's flow indent).
        other => w.scalar(other, INDENT, false),
    }
    if !w.out.ends_with('\n') {
        w.out.push('\n');
    }
    w.out
}

/// The indentation of a block nested in a mapping at `indent`: the next multiple of four.
fn nested(indent: usize) -> usize {
    INDENT * ((indent + INDENT) / INDENT)
}

#[derive(Default)]
struct Writer {
    out: String,
    /// Characters since the last line break.
    column: usize,
}

impl Writer {
    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn put_str(&mut self, s: &str) {
        for c in s.chars() {
            self.put(c);
        }
    }

    fn line_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
    }

    /// A new line indented to `indent` (go-yaml's `write_indent` within a scalar).
    fn indent_line(&mut self, indent: usize) {
        self.line_break();
        self.pad(indent);
    }

    fn pad(&mut self, indent: usize) {
        while self.column < indent {
            self.put(' ');
        }
    }

    /// A mapping at `indent`; `inline_first` when its first key follows a sequence's `- `.
    fn map(&mut self, entries: &[(String, Node)], indent: usize, inline_first: bool) {
        for (i, (k, v)) in entries.iter().enumerate() {
            if i > 0 || !inline_first {
                self.pad(indent);
            }
            self.string(k, indent, true);
            self.put(':');
            match v {
                Node::Map(inner) if !inner.is_empty() => {
                    self.line_break();
                    self.map(inner, nested(indent), false);
                }
                Node::Seq(items) if !items.is_empty() => {
                    self.line_break();
                    self.seq(items, nested(indent), false);
                }
                other => {
                    self.put(' ');
                    self.scalar(other, nested(indent), false);
                    self.line_break();
                }
            }
        }
    }

    /// A sequence at `indent`; `inline_first` when its first item follows an outer `- `.
    fn seq(&mut self, items: &[Node], indent: usize, inline_first: bool) {
        for (i, item) in items.iter().enumerate() {
            if i > 0 || !inline_first {
                self.pad(indent);
            }
            self.put_str("- ");
            match item {
                Node::Map(entries) if !entries.is_empty() => self.map(entries, indent + 2, true),
                Node::Seq(inner) if !inner.is_empty() => self.seq(inner, indent + 2, true),
                other => {
                    self.scalar(other, indent + 2, false);
                    self.line_break();
                }
            }
        }
    }

    /// A scalar (or an empty collection) whose continuation lines go at `indent`.
    fn scalar(&mut self, n: &Node, indent: usize, key: bool) {
        match n {
            Node::Null => self.put_str("null"),
            Node::Bool(b) => self.put_str(if *b { "true" } else { "false" }),
            Node::Int(s) => self.put_str(s),
            Node::Float(f) => self.put_str(&float(*f)),
            Node::Str(s) => self.string(s, indent, key),
            Node::Map(_) => self.put_str("{}"),
            Node::Seq(_) => self.put_str("[]"),
        }
    }

    /// A string in the style go-yaml picks; keys (`key`) never fold and are never blocks.
    fn string(&mut self, s: &str, indent: usize, key: bool) {
        let a = analyze(s);
        let style = if s.contains('\n') {
            if a.block_allowed && !key {
                Style::Literal
            } else {
                Style::Double
            }
        } else if resolves_to_non_string(s) {
            Style::Double
        } else if a.block_plain_allowed {
            Style::Plain
        } else if a.single_allowed {
            Style::Single
        } else {
            Style::Double
        };
        let folds = !key;
        match style {
            Style::Plain => self.folded(s, indent, folds, false),
            Style::Single => {
                self.put('\'');
                self.folded(s, indent, folds, true);
                self.put('\'');
            }
            Style::Double => self.double_quoted(s, indent, folds),
            Style::Literal => self.literal(s, indent),
        }
    }

    /// Plain or single-quoted text, a space past column 80 turned into a line break.
    fn folded(&mut self, s: &str, indent: usize, folds: bool, single: bool) {
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let next_is_space = chars.get(i + 1) == Some(&' ');
                let inside = !single || (i > 0 && i + 1 < chars.len());
                if folds && !spaces && self.column > WIDTH && !next_is_space && inside {
                    self.indent_line(indent);
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                if single && c == '\'' {
                    self.put('\'');
                }
                self.put(c);
                spaces = false;
            }
        }
    }

    fn double_quoted(&mut self, s: &str, indent: usize, folds: bool) {
        self.put('"');
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if !printable(c) || c == '\u{FEFF}' || is_break(c) || c == '"' || c == '\\' {
                self.put('\\');
                match c {
                    '\0' => self.put('0'),
                    '\u{7}' => self.put('a'),
                    '\u{8}' => self.put('b'),
                    '\t' => self.put('t'),
                    '\n' => self.put('n'),
                    '\u{b}' => self.put('v'),
                    '\u{c}' => self.put('f'),
                    '\r' => self.put('r'),
                    '\u{1b}' => self.put('e'),
                    '"' => self.put('"'),
                    '\\' => self.put('\\'),
                    '\u{85}' => self.put('N'),
                    '\u{a0}' => self.put('_'),
                    '\u{2028}' => self.put('L'),
                    '\u{2029}' => self.put('P'),
                    c if (c as u32) <= 0xFF => self.put_str(&format!("x{:02X}", c as u32)),
                    c if (c as u32) <= 0xFFFF => self.put_str(&format!("u{:04X}", c as u32)),
                    c => self.put_str(&format!("U{:08X}", c as u32)),
                }
                spaces = false;
            } else if c == ' ' {
                if folds && !spaces && self.column > WIDTH && i > 0 && i + 1 < chars.len() {
                    self.indent_line(indent);
                    if chars.get(i + 1) == Some(&' ') {
                        self.put('\\');
                    }
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                spaces = false;
            }
        }
        self.put('"');
    }

    /// `|` with go-yaml's hints (an indentation digit before leading blanks; `-` without a
    /// final line break, `+` with more than one), then the lines at `indent`.
    fn literal(&mut self, s: &str, indent: usize) {
        self.put('|');
        if s.starts_with([' ', '\n', '\r']) {
            self.put_str(&INDENT.to_string());
        }
        let mut rev = s.chars().rev();
        match (rev.next(), rev.next()) {
            (Some(last), _) if !is_break(last) => self.put('-'),
            (Some(_), None) => self.put('+'),
            (Some(_), Some(before)) if is_break(before) => self.put('+'),
            _ => {}
        }
        self.line_break();
        let mut at_line_start = true;
        for c in s.chars() {
            if is_break(c) {
                self.line_break();
                at_line_start = true;
            } else {
                if at_line_start {
                    self.pad(indent);
                }
                self.put(c);
                at_line_start = false;
            }
        }
        // The caller ends the line; a text ending in a break has ended it already.
        if s.ends_with(is_break) && self.column == 0 {
            self.out.pop();
        }
    }
}

enum Style {
    Plain,
    Single,
    Double,
    Literal,
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

fn is_break(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// libyaml's printable set (as go-yaml tests it: four-byte characters are not).
fn printable(c: char) -> bool {
    let u = c as u32;
    u == 0x0A
        || (0x20..=0x7E).contains(&u)
        || (0xA0..=0xD7FF).contains(&u)
        || ((0xE000..=0xFFFD).contains(&u) && u != 0xFEFF)
}

/// Which styles libyaml's scalar analysis allows for a block-context value.
struct Analysis {
    block_plain_allowed: bool,
    single_allowed: bool,
    block_allowed: bool,
}

fn analyze(s: &str) -> Analysis {
    if s.is_empty() {
        return Analysis {
            block_plain_allowed: true,
            single_allowed: true,
            block_allowed: false,
        };
    }
    let chars: Vec<char> = s.chars().collect();
    let mut block_indicators = s.starts_with("---") || s.starts_with("...");
    let (mut line_breaks, mut special, mut tabs) = (false, false, false);
    let (mut leading, mut trailing) = (false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut previous_space, mut previous_break) = (false, false);
    let mut preceded_by_whitespace = true;
    let blank = |c: char| c == ' ' || c == '\t';
    for (i, &c) in chars.iter().enumerate() {
        let followed_by_whitespace = chars.get(i + 1).is_none_or(|&n| blank(n));
        let last = i + 1 == chars.len();
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => block_indicators = true,
                '?' | ':' | '-' if followed_by_whitespace => block_indicators = true,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_by_whitespace => block_indicators = true,
                '#' if preceded_by_whitespace => block_indicators = true,
                _ => {}
            }
        }
        if c == '\t' {
            tabs = true;
        } else if !printable(c) {
            special = true;
        }
        if c == ' ' {
            leading |= i == 0;
            trailing |= last;
            break_space |= previous_break;
            previous_space = true;
            previous_break = false;
        } else if is_break(c) {
            line_breaks = true;
            leading |= i == 0;
            trailing |= last;
            space_break |= previous_space;
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = blank(c) || is_break(c) || c == '\0';
    }
    let trailing_space = s.ends_with(' ');
    let mut a = Analysis {
        block_plain_allowed: true,
        single_allowed: true,
        block_allowed: true,
    };
    if leading || trailing {
        a.block_plain_allowed = false;
    }
    if trailing_space {
        a.block_allowed = false;
    }
    if break_space {
        a.block_plain_allowed = false;
        a.single_allowed = false;
    }
    if space_break || tabs || special {
        a.block_plain_allowed = false;
        a.single_allowed = false;
    }
    if space_break || special {
        a.block_allowed = false;
    }
    if line_breaks || block_indicators {
        a.block_plain_allowed = false;
    }
    a
}

/// Whether go-yaml would read this text, written plain, as something other than a string
/// (null, a bool, a number, a timestamp): then it writes the string double-quoted.
fn resolves_to_non_string(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return true;
    };
    if matches!(
        s,
        "~" | "null"
            | "Null"
            | "NULL"
            | "true"
            | "True"
            | "TRUE"
            | "false"
            | "False"
            | "FALSE"
            | ".nan"
            | ".NaN"
            | ".NAN"
            | ".inf"
            | ".Inf"
            | ".INF"
            | "+.inf"
            | "+.Inf"
            | "+.INF"
            | "-.inf"
            | "-.Inf"
            | "-.INF"
    ) {
        return true;
    }
    match first {
        '.' => yaml_float(s),
        '0'..='9' | '+' | '-' => {
            let plain = s.replace('_', "");
            timestamp(s) || go_int(&plain) || yaml_float(&plain)
        }
        _ => false,
    }
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn yaml_float(s: &str) -> bool {
    let b = s.strip_prefix(['-', '+']).unwrap_or(s).as_bytes();
    let digits = |b: &[u8]| b.iter().take_while(|c| c.is_ascii_digit()).count();
    let mut i;
    if b.first() == Some(&b'.') {
        let n = digits(&b[1..]);
        if n == 0 {
            return false;
        }
        i = 1 + n;
    } else {
        let n = digits(b);
        if n == 0 {
            return false;
        }
        i = n;
        if b.get(i) == Some(&b'.') {
            i += 1 + digits(&b[i + 1..]);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        let n = digits(&b[i..]);
        if n == 0 {
            return false;
        }
        i += n;
    }
    i == b.len()
}

/// Go's `strconv.ParseInt(s, 0, 64)` syntax: a sign, then `0x`/`0o`/`0b` digits, a leading-0
/// octal, or decimal digits.
fn go_int(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (digits, radix) = match body.get(..2) {
        Some("0x" | "0X") => (&body[2..], 16),
        Some("0o" | "0O") => (&body[2..], 8),
        Some("0b" | "0B") => (&body[2..], 2),
        _ if body.len() > 1 && body.starts_with('0') => (&body[1..], 8),
        _ => (body, 10),
    };
    !digits.is_empty() && digits.chars().all(|c| c.is_digit(radix))
}

/// go-yaml's timestamps: `YYYY-M-D`, optionally followed by a time (`T`, `t` or a space).
fn timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let rest = &s[5..];
    let date_end = rest.find(['T', 't', ' ']).unwrap_or(rest.len());
    let mut parts = rest[..date_end].split('-');
    let valid = |p: Option<&str>, max: u32| {
        p.is_some_and(|p| {
            (1..=2).contains(&p.len())
                && p.chars().all(|c| c.is_ascii_digit())
                && p.parse::<u32>().is_ok_and(|n| (1..=max).contains(&n))
        })
    };
    let date = valid(parts.next(), 12) && valid(parts.next(), 31) && parts.next().is_none();
    // A time after the date is accepted as go-yaml's layouts would take it when well formed;
    // the documents carry dates, if anything.
    date && (date_end == rest.len() || rest[date_end + 1..].contains(':'))
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
        assert_eq!(y(r#""0x1F""#), "\"0x1F\"\n");
        assert_eq!(y(r#""1e3""#), "\"1e3\"\n");
        assert_eq!(y(r#""2024-01-31""#), "\"2024-01-31\"\n");
        assert_eq!(y(r#""inf""#), "inf\n");
        assert_eq!(y(r#""yes""#), "yes\n");
        assert_eq!(y(r#""v1""#), "v1\n");
        assert_eq!(y("true"), "true\n");
        assert_eq!(y("3"), "3\n");
        assert_eq!(y("{}"), "{}\n");
        assert_eq!(y("[]"), "[]\n");
        assert_eq!(y(r#""*""#), "'*'\n");
        assert_eq!(y(r#""a: b""#), "'a: b'\n");
        assert_eq!(y(r#"" lead""#), "' lead'\n");
        assert_eq!(y(r#""it's""#), "it's\n");
        assert_eq!(y(r#""'q""#), "'''q'\n");
        assert_eq!(y(r#""tab\there""#), "\"tab\\there\"\n");
        assert_eq!(y(r#""two\nlines""#), "|-\n    two\n    lines\n");
        assert_eq!(y(r#"{"k": "a\nb\n"}"#), "k: |\n    a\n    b\n");
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
        // A mapping nested in a sequence item aligns to the next multiple of four.
        assert_eq!(
            y(r#"[{"discriminator": "type", "fields-to-discriminateBy": {"a": "A"}}]"#),
            "- discriminator: type\n  fields-to-discriminateBy:\n    a: A\n"
        );
        assert_eq!(
            y(r#"{"keys": ["a", "b"], "m": {"n": [[1]]}}"#),
            "keys:\n    - a\n    - b\nm:\n    n:\n        - - 1\n"
        );
    }

    #[test]
    fn long_scalars_fold_past_column_eighty() {
        let rule = "self.spec.replicas <= self.spec.maxReplicas && self.spec.minReplicas <= self.spec.replicas && true";
        let text = y(&format!(r#"[{{"rule": "{rule}"}}]"#));
        assert_eq!(
            text,
            "- rule: self.spec.replicas <= self.spec.maxReplicas && self.spec.minReplicas <= self.spec.replicas\n    && true\n"
        );
    }

    #[test]
    fn what_it_writes_reads_back_as_the_same_value() {
        let long = "x ".repeat(60);
        for json in [
            r#"[{"group": "", "kind": "Pod", "version": "v1"}]"#.to_string(),
            r##"{"a": ["x", "- y", "#z", "it's", "", "null", "1.5", "a: b", "2024-01-31"], "b": {"c": [[1, 2], []]}}"##.to_string(),
            r#"{"rule": "self.x > 0 && self.y.startsWith('a')", "message": "must: be"}"#.to_string(),
            format!(r#"{{"long": "{long}end", "quoted": "'{long}'", "multi": "a\n\nb\n", "lead": "\n x"}}"#),
            r#"{"t": "a\tb", "u": "caf\u00e9 \ud83d\ude00", "nested": [{"a": [{"b": {"c": "d"}}]}]}"#.to_string(),
        ] {
            let text = y(&json);
            let back = kapi_codec::yaml::from_yaml(text.as_bytes()).unwrap();
            let want: serde_json::Value = serde_json::from_str(&json).unwrap();
            assert_eq!(back, want, "{text}");
        }
    }
}
