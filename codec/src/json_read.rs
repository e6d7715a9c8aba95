//! A JSON parser that builds a flat tape of nodes pointing into the input: no allocation per
//! value, original key order and raw text kept (RawExtension and FieldsV1 embed it), byte
//! offsets for errors. Hand-written because the write path parses every request body and a
//! `serde_json::Value` costs a map allocation per object. Hot path (benches/codec.rs).

use std::borrow::Cow;
use std::cell::Cell;

use crate::error::{CodecError, ErrorKind};

/// Nesting limit for JSON containers. Parsing is iterative, so this only bounds memory; Go's
/// encoding/json allows 10000.
pub const JSON_MAX_DEPTH: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tok {
    Null,
    True,
    False,
    Num,
    /// A string whose span can be used as is (no escapes, valid UTF-8).
    Str,
    /// A string that needs unescaping (or has invalid UTF-8 to replace).
    StrEsc,
    Arr,
    Obj,
}

#[derive(Debug, Clone, Copy)]
pub struct Node {
    pub tok: Tok,
    /// For strings: the content between the quotes; for numbers and literals: the text; for
    /// containers: from the opening to the closing bracket, inclusive.
    pub start: u32,
    pub end: u32,
    /// Containers: index of the first node after this subtree. Others: own index + 1.
    pub next: u32,
    /// Containers: number of elements (arrays) or members (objects).
    pub len: u32,
}

pub struct Doc<'a> {
    pub src: &'a [u8],
    pub nodes: Vec<Node>,
}

/// Nodes a thread's last document held, at most this many: the next parse on the thread
/// starts with them. A tape grows by doubling; allocated afresh for every object, its large
/// steps were page faults (a third of a create's transcode), reused they are none.
const MAX_SPARE_NODES: usize = 64 * 1024;

thread_local! {
    static SPARE_NODES: Cell<Vec<Node>> = const { Cell::new(Vec::new()) };
}

impl Drop for Doc<'_> {
    fn drop(&mut self) {
        if self.nodes.capacity() <= MAX_SPARE_NODES {
            let nodes = std::mem::take(&mut self.nodes);
            let _ = SPARE_NODES.try_with(|s| s.set(nodes));
        }
    }
}

impl<'a> Doc<'a> {
    /// Parses one JSON document; whitespace around it is allowed, anything else is an error.
    pub fn parse(src: &'a [u8]) -> Result<Doc<'a>, CodecError> {
        if src.len() > u32::MAX as usize - 1 {
            return Err(CodecError::malformed("JSON document larger than 4 GiB"));
        }
        let mut nodes = SPARE_NODES.try_with(Cell::take).unwrap_or_default();
        nodes.clear();
        nodes.reserve(src.len() / 12 + 4);
        let mut p = Parser {
            src,
            pos: 0,
            nodes,
            stack: Vec::new(),
        };
        p.parse()?;
        Ok(Doc {
            src,
            nodes: p.nodes,
        })
    }

    #[inline]
    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i]
    }

    /// The raw text of a node (for strings, without quotes and unprocessed).
    #[inline]
    pub fn raw(&self, i: usize) -> &'a [u8] {
        let n = &self.nodes[i];
        &self.src[n.start as usize..n.end as usize]
    }

    /// The raw text of a whole value, quotes included for strings.
    pub fn raw_value(&self, i: usize) -> &'a [u8] {
        let n = &self.nodes[i];
        match n.tok {
            Tok::Str | Tok::StrEsc => &self.src[n.start as usize - 1..n.end as usize + 1],
            _ => &self.src[n.start as usize..n.end as usize],
        }
    }

    /// A string node's value, unescaped.
    pub fn str(&self, i: usize) -> Cow<'a, str> {
        let n = &self.nodes[i];
        let raw = &self.src[n.start as usize..n.end as usize];
        match n.tok {
            // SAFETY: the parser tags a string `Str` only when its bytes are ASCII or have
            // passed `str::from_utf8` (see `Parser::string`); the tape is never mutated.
            Tok::Str => Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(raw) }),
            _ => Cow::Owned(unescape(raw)),
        }
    }

    /// Children of an array: the index of each element.
    pub fn elements(&self, i: usize) -> Children<'_, 'a> {
        Children {
            doc: self,
            at: i + 1,
            left: self.nodes[i].len,
        }
    }

    /// Members of an object: (key index, value index).
    pub fn members(&self, i: usize) -> Members<'_, 'a> {
        Members {
            doc: self,
            at: i + 1,
            left: self.nodes[i].len,
        }
    }

    /// Offset of a node in the input, for error messages.
    pub fn offset(&self, i: usize) -> usize {
        self.nodes[i].start as usize
    }

    /// Appends the value at `i` as compact JSON, keeping key order and the original string
    /// escapes (what Go's `json.Compact` does to embedded raw JSON, HTML escaping included).
    /// Iterative: nesting depth costs no stack.
    pub fn write_compact(&self, i: usize, out: &mut Vec<u8>) {
        let end = self.nodes[i].next as usize;
        // Per open container: (tokens in it, tokens written, is object). An object's tokens
        // are its keys and values, so odd positions are values.
        let mut stack: Vec<(u32, u32, bool)> = Vec::new();
        let mut j = i;
        while j < end {
            if let Some(&(_, pos, is_obj)) = stack.last() {
                if is_obj && pos % 2 == 1 {
                    out.push(b':');
                } else if pos > 0 {
                    out.push(b',');
                }
            }
            let n = self.nodes[j];
            j += 1;
            match n.tok {
                Tok::Arr | Tok::Obj => {
                    let is_obj = n.tok == Tok::Obj;
                    out.push(if is_obj { b'{' } else { b'[' });
                    stack.push((if is_obj { n.len * 2 } else { n.len }, 0, is_obj));
                }
                Tok::Str | Tok::StrEsc => {
                    out.push(b'"');
                    compact_escape(&self.src[n.start as usize..n.end as usize], out);
                    out.push(b'"');
                    if let Some(top) = stack.last_mut() {
                        top.1 += 1;
                    }
                }
                _ => {
                    out.extend_from_slice(&self.src[n.start as usize..n.end as usize]);
                    if let Some(top) = stack.last_mut() {
                        top.1 += 1;
                    }
                }
            }
            while let Some(&(total, pos, is_obj)) = stack.last() {
                if pos < total {
                    break;
                }
                out.push(if is_obj { b'}' } else { b']' });
                stack.pop();
                if let Some(top) = stack.last_mut() {
                    top.1 += 1;
                }
            }
        }
    }
}

/// Re-escapes a raw JSON string body as Go's json.Compact does: existing escapes kept, and
/// `<`, `>`, `&`, U+2028, U+2029 escaped.
fn compact_escape(raw: &[u8], out: &mut Vec<u8>) {
    let mut start = 0;
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        let rep: Option<&[u8]> = match b {
            b'<' => Some(b"\\u003c"),
            b'>' => Some(b"\\u003e"),
            b'&' => Some(b"\\u0026"),
            0xE2 if raw.get(i + 1) == Some(&0x80)
                && matches!(raw.get(i + 2), Some(0xA8 | 0xA9)) =>
            {
                Some(if raw[i + 2] == 0xA8 {
                    b"\\u2028"
                } else {
                    b"\\u2029"
                })
            }
            _ => None,
        };
        if let Some(r) = rep {
            out.extend_from_slice(&raw[start..i]);
            out.extend_from_slice(r);
            i += if b == 0xE2 { 3 } else { 1 };
            start = i;
        } else if b == b'\\' {
            i += 2;
        } else {
            i += 1;
        }
    }
    out.extend_from_slice(&raw[start.min(raw.len())..]);
}

pub struct Children<'d, 'a> {
    doc: &'d Doc<'a>,
    at: usize,
    left: u32,
}

impl Iterator for Children<'_, '_> {
    type Item = usize;
    #[inline]
    fn next(&mut self) -> Option<usize> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let i = self.at;
        self.at = self.doc.nodes[i].next as usize;
        Some(i)
    }
}

pub struct Members<'d, 'a> {
    doc: &'d Doc<'a>,
    at: usize,
    left: u32,
}

impl Iterator for Members<'_, '_> {
    type Item = (usize, usize);
    #[inline]
    fn next(&mut self) -> Option<(usize, usize)> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let k = self.at;
        let v = k + 1;
        self.at = self.doc.nodes[v].next as usize;
        Some((k, v))
    }
}

struct Parser<'a> {
    src: &'a [u8],
    pos: usize,
    nodes: Vec<Node>,
    /// Open containers: node index.
    stack: Vec<usize>,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> CodecError {
        match self.src.get(self.pos) {
            None => CodecError::new(
                ErrorKind::Truncated,
                format!("unexpected end of JSON input at byte {}", self.pos),
            ),
            Some(&c) => CodecError::at(
                self.pos,
                format!("invalid character {} {what}", quote_char(c)),
            ),
        }
    }

    #[inline]
    fn skip_ws(&mut self) {
        while let Some(&c) = self.src.get(self.pos) {
            if c == b' ' || c == b'\n' || c == b'\t' || c == b'\r' {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    fn parse(&mut self) -> Result<(), CodecError> {
        self.skip_ws();
        self.value()?;
        loop {
            // After a value: close containers or expect a separator.
            self.skip_ws();
            let Some(&top) = self.stack.last() else {
                break;
            };
            let is_obj = self.nodes[top].tok == Tok::Obj;
            match self.src.get(self.pos) {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_ws();
                    if is_obj {
                        self.key()?;
                    }
                    self.value()?;
                }
                Some(b'}') if is_obj => self.close(top),
                Some(b']') if !is_obj => self.close(top),
                _ => {
                    return Err(self.err(if is_obj {
                        "after object key:value pair"
                    } else {
                        "after array element"
                    }));
                }
            }
        }
        self.skip_ws();
        if self.pos < self.src.len() {
            return Err(self.err("after top-level value"));
        }
        Ok(())
    }

    fn close(&mut self, top: usize) {
        self.pos += 1;
        self.stack.pop();
        let next = self.nodes.len() as u32;
        let n = &mut self.nodes[top];
        n.end = self.pos as u32;
        n.next = next;
        if let Some(&parent) = self.stack.last() {
            self.nodes[parent].len += 1;
        }
    }

    /// An object key and its colon.
    fn key(&mut self) -> Result<(), CodecError> {
        if self.src.get(self.pos) != Some(&b'"') {
            return Err(self.err("looking for beginning of object key string"));
        }
        self.string()?;
        self.skip_ws();
        if self.src.get(self.pos) != Some(&b':') {
            return Err(self.err("after object key"));
        }
        self.pos += 1;
        self.skip_ws();
        Ok(())
    }

    /// Parses one value. A container is opened (and, if empty, closed) here, and its first
    /// child parsed in the same loop, so nesting never recurses.
    fn value(&mut self) -> Result<(), CodecError> {
        loop {
            let start = self.pos;
            let Some(&c) = self.src.get(self.pos) else {
                return Err(self.err("looking for beginning of value"));
            };
            match c {
                b'{' | b'[' => {
                    if self.stack.len() >= JSON_MAX_DEPTH {
                        return Err(CodecError::too_deep(JSON_MAX_DEPTH));
                    }
                    let idx = self.nodes.len();
                    self.nodes.push(Node {
                        tok: if c == b'{' { Tok::Obj } else { Tok::Arr },
                        start: start as u32,
                        end: 0,
                        next: 0,
                        len: 0,
                    });
                    self.pos += 1;
                    self.stack.push(idx);
                    self.skip_ws();
                    let close = if c == b'{' { b'}' } else { b']' };
                    if self.src.get(self.pos) == Some(&close) {
                        self.close(idx);
                        return Ok(());
                    }
                    if c == b'{' {
                        self.key()?;
                    }
                    continue;
                }
                b'"' => self.string()?,
                b't' => self.literal(b"true", Tok::True)?,
                b'f' => self.literal(b"false", Tok::False)?,
                b'n' => self.literal(b"null", Tok::Null)?,
                b'-' | b'0'..=b'9' => self.number()?,
                _ => return Err(self.err("looking for beginning of value")),
            }
            if let Some(&parent) = self.stack.last() {
                // Keys are not counted: an object's len is its number of members.
                self.nodes[parent].len += 1;
            }
            return Ok(());
        }
    }

    fn literal(&mut self, word: &[u8], tok: Tok) -> Result<(), CodecError> {
        let start = self.pos;
        for &w in word {
            if self.src.get(self.pos) != Some(&w) {
                return Err(self.err("in literal"));
            }
            self.pos += 1;
        }
        let idx = self.nodes.len() as u32;
        self.nodes.push(Node {
            tok,
            start: start as u32,
            end: self.pos as u32,
            next: idx + 1,
            len: 0,
        });
        Ok(())
    }

    fn number(&mut self) -> Result<(), CodecError> {
        let start = self.pos;
        match number_end(self.src, start) {
            Ok(end) => self.pos = end,
            Err((at, what)) => {
                self.pos = at;
                return Err(self.err(what));
            }
        }
        let idx = self.nodes.len() as u32;
        self.nodes.push(Node {
            tok: Tok::Num,
            start: start as u32,
            end: self.pos as u32,
            next: idx + 1,
            len: 0,
        });
        Ok(())
    }

    fn string(&mut self) -> Result<(), CodecError> {
        self.pos += 1; // opening quote
        let start = self.pos;
        let mut plain = true;
        let mut ascii = true;
        loop {
            // Fast scan to the next byte that needs a look: whole words first.
            self.pos = skip_string_bytes(self.src, self.pos);
            while let Some(&c) = self.src.get(self.pos) {
                if c == b'"' || c == b'\\' || !(0x20..0x80).contains(&c) {
                    break;
                }
                self.pos += 1;
            }
            match self.src.get(self.pos) {
                None => {
                    return Err(CodecError::new(
                        ErrorKind::Truncated,
                        format!(
                            "unexpected end of JSON input in string at byte {}",
                            self.pos
                        ),
                    ));
                }
                Some(b'"') => break,
                Some(b'\\') => {
                    plain = false;
                    self.pos += 1;
                    match self.src.get(self.pos) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.pos += 1
                        }
                        Some(b'u') => {
                            self.pos += 1;
                            for _ in 0..4 {
                                if !self.src.get(self.pos).is_some_and(u8::is_ascii_hexdigit) {
                                    return Err(self.err("in \\u hexadecimal character escape"));
                                }
                                self.pos += 1;
                            }
                        }
                        _ => return Err(self.err("in string escape code")),
                    }
                }
                Some(&c) if c < 0x20 => return Err(self.err("in string literal")),
                Some(_) => {
                    ascii = false;
                    self.pos += 1;
                }
            }
        }
        let end = self.pos;
        self.pos += 1; // closing quote
        if plain && !ascii && std::str::from_utf8(&self.src[start..end]).is_err() {
            plain = false;
        }
        let idx = self.nodes.len() as u32;
        self.nodes.push(Node {
            tok: if plain { Tok::Str } else { Tok::StrEsc },
            start: start as u32,
            end: end as u32,
            next: idx + 1,
            len: 0,
        });
        Ok(())
    }
}

/// Advances `i` over whole 8-byte words holding only printable ASCII other than `"` and `\\`
/// (string bytes the parser need not look at one by one).
#[inline]
fn skip_string_bytes(s: &[u8], mut i: usize) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(LO) & !x & HI;
    while i + 8 <= s.len() {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[i..i + 8]);
        let x = u64::from_le_bytes(w);
        let special = (x.wrapping_sub(LO * 0x20) & !x & HI)
            | has_zero(x ^ (LO * u64::from(b'"')))
            | has_zero(x ^ (LO * u64::from(b'\\')))
            | (x & HI);
        if special != 0 {
            // The lowest flagged byte is exact (borrows only run upward from a true match):
            // stop right at the first byte that needs a look.
            return i + (special.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i
}

/// The end of the JSON number starting at `start`, or where and why it is malformed. One
/// grammar for the tape parser and the one-pass compactor.
pub(crate) fn number_end(src: &[u8], start: usize) -> Result<usize, (usize, &'static str)> {
    let mut i = start;
    let digits = |i: &mut usize| {
        let s = *i;
        while src.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > s
    };
    if src.get(i) == Some(&b'-') {
        i += 1;
    }
    match src.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return Err((i, "in numeric literal")),
    }
    if src.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return Err((i, "after decimal point in numeric literal"));
        }
    }
    if matches!(src.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(src.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return Err((i, "in exponent of numeric literal"));
        }
    }
    Ok(i)
}

fn quote_char(c: u8) -> String {
    match c {
        b'\'' => "'\\''".into(),
        b'"' => "'\"'".into(),
        c if c.is_ascii_graphic() || c == b' ' => format!("'{}'", c as char),
        c => format!("'\\x{c:02x}'"),
    }
}

/// Decodes a JSON string body (escapes; invalid UTF-8 and lone surrogates become U+FFFD, as
/// in Go).
pub fn unescape(raw: &[u8]) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let e = raw.get(i + 1).copied().unwrap_or(b'\\');
        i += 2;
        let c = match e {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = hex4(raw.get(i..i + 4));
                i += 4;
                match hi {
                    Some(h @ 0xD800..=0xDBFF) => {
                        let lo = if raw.get(i) == Some(&b'\\') && raw.get(i + 1) == Some(&b'u') {
                            hex4(raw.get(i + 2..i + 6))
                        } else {
                            None
                        };
                        match lo {
                            Some(l @ 0xDC00..=0xDFFF) => {
                                i += 6;
                                char::from_u32(0x10000 + ((h - 0xD800) << 10) + (l - 0xDC00))
                                    .unwrap_or('\u{fffd}')
                            }
                            _ => '\u{fffd}',
                        }
                    }
                    Some(cp) => char::from_u32(cp).unwrap_or('\u{fffd}'),
                    None => '\u{fffd}',
                }
            }
            _ => '\u{fffd}',
        };
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }
    match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

fn hex4(s: Option<&[u8]>) -> Option<u32> {
    let s = s?;
    let mut v = 0u32;
    for &c in s {
        v = v * 16 + (c as char).to_digit(16)?;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compact(s: &str) -> String {
        let d = Doc::parse(s.as_bytes()).unwrap();
        let mut out = Vec::new();
        d.write_compact(0, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn tape_links_siblings_and_counts_children() {
        let d = Doc::parse(br#" {"a": [1, 2, {"x": null}], "b": "s", "c": {}} "#).unwrap();
        let members: Vec<_> = d.members(0).map(|(k, _)| d.str(k).into_owned()).collect();
        assert_eq!(members, ["a", "b", "c"]);
        let (_, a) = d.members(0).next().unwrap();
        assert_eq!(d.elements(a).count(), 3);
        assert_eq!(d.raw_value(d.members(0).nth(1).unwrap().1), br#""s""#);
    }

    #[test]
    fn compact_keeps_order_and_escapes_html() {
        assert_eq!(
            compact(r#"{ "z" : [ 1 , {"a": "<b>"} , [] , {} ], "a": true }"#),
            r#"{"z":[1,{"a":"\u003cb\u003e"},[],{}],"a":true}"#
        );
        assert_eq!(compact("[[],[[]],{}]"), "[[],[[]],{}]");
        assert_eq!(
            compact(r#"{"a":{"b":{}},"c":1}"#),
            r#"{"a":{"b":{}},"c":1}"#
        );
        assert_eq!(compact("\"x\""), "\"x\"");
    }

    #[test]
    fn unescape_handles_surrogates_and_garbage() {
        assert_eq!(unescape(br#"a\n\u00e9\ud83d\ude00"#), "a\né😀");
        assert_eq!(unescape(br#"\ud83dx"#), "\u{fffd}x");
    }

    #[test]
    fn syntax_errors_name_the_byte() {
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
        ] {
            let err = Doc::parse(bad.as_bytes()).err();
            assert!(err.is_some(), "{bad:?} should fail");
        }
        let err = Doc::parse(b"{\"a\": x}").err().unwrap();
        assert_eq!(
            err.to_string(),
            "invalid character 'x' looking for beginning of value at byte 6"
        );
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        let deep = "[".repeat(JSON_MAX_DEPTH + 1);
        assert_eq!(
            Doc::parse(deep.as_bytes()).err().unwrap().kind,
            ErrorKind::TooDeep
        );
    }
}
