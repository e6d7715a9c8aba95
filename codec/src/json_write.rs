//! Writing JSON the way Go's encoding/json does, byte for byte: its string escaping (HTML
//! characters, U+2028/U+2029, invalid UTF-8 as U+FFFD) and `json.Indent` for pretty output.
//! Hot path: every JSON response body is written through `write_str` (benches/codec.rs).

/// 0: copy as is; 1: escape; 2: non-ASCII, look closer.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if i < 0x20
            || i == b'"' as usize
            || i == b'\\' as usize
            || i == b'<' as usize
            || i == b'>' as usize
            || i == b'&' as usize
        {
            1
        } else if i >= 0x80 {
            2
        } else {
            0
        };
        i += 1;
    }
    t
};

const HEX: &[u8; 16] = b"0123456789abcdef";

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Whether any byte of `x` is zero (exact when asked "any?": borrows only propagate upward
/// from a byte that really is zero).
#[inline(always)]
fn has_zero(x: u64) -> u64 {
    x.wrapping_sub(LO) & !x & HI
}

/// Advances `i` over whole 8-byte words of `s` that hold only ASCII bytes needing no JSON
/// escape (no control character, `"`, `\`, `<`, `>`, `&`). Word-at-a-time: strings are most
/// of what the JSON writer copies.
#[inline]
pub(crate) fn skip_plain(s: &[u8], mut i: usize) -> usize {
    while i + 8 <= s.len() {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[i..i + 8]);
        let x = u64::from_le_bytes(w);
        let special = (x.wrapping_sub(LO * 0x20) & !x & HI) // a byte below 0x20
            | has_zero(x ^ (LO * u64::from(b'"')))
            | has_zero(x ^ (LO * u64::from(b'\\')))
            | has_zero(x ^ (LO * u64::from(b'<')))
            | has_zero(x ^ (LO * u64::from(b'>')))
            | has_zero(x ^ (LO * u64::from(b'&')))
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

/// Appends `s` as a JSON string literal, quotes included.
#[inline]
pub fn write_str(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        match CLASS[b as usize] {
            0 => i = skip_plain(s, i + 1),
            1 => {
                out.extend_from_slice(&s[start..i]);
                match b {
                    b'"' => out.extend_from_slice(b"\\\""),
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    0x08 => out.extend_from_slice(b"\\b"),
                    0x0c => out.extend_from_slice(b"\\f"),
                    _ => {
                        out.extend_from_slice(b"\\u00");
                        out.push(HEX[(b >> 4) as usize]);
                        out.push(HEX[(b & 0xf) as usize]);
                    }
                }
                i += 1;
                start = i;
            }
            _ => {
                let (ch_len, valid) = utf8_char(&s[i..]);
                if !valid {
                    out.extend_from_slice(&s[start..i]);
                    out.extend_from_slice(b"\\ufffd");
                    i += ch_len;
                    start = i;
                } else if ch_len == 3
                    && s[i] == 0xE2
                    && s[i + 1] == 0x80
                    && (s[i + 2] & 0xFE) == 0xA8
                {
                    out.extend_from_slice(&s[start..i]);
                    out.extend_from_slice(if s[i + 2] == 0xA8 {
                        b"\\u2028"
                    } else {
                        b"\\u2029"
                    });
                    i += 3;
                    start = i;
                } else {
                    i += ch_len;
                }
            }
        }
    }
    out.extend_from_slice(&s[start..]);
    out.push(b'"');
}

/// Length of the UTF-8 sequence at the start of `s` and whether it is valid. An invalid
/// sequence counts as one byte, as Go's decoder treats it (one U+FFFD per bad byte).
#[inline]
pub(crate) fn utf8_char(s: &[u8]) -> (usize, bool) {
    let b = s[0];
    let need = match b {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return (1, false),
    };
    if s.len() < need {
        return (1, false);
    }
    match std::str::from_utf8(&s[..need]) {
        Ok(_) => (need, true),
        Err(_) => (1, false),
    }
}

/// Appends a decimal integer.
#[inline]
pub fn write_i64(out: &mut Vec<u8>, v: i64) {
    let mut buf = itoa::Buffer::new();
    out.extend_from_slice(buf.format(v).as_bytes());
}

#[inline]
pub fn write_u64(out: &mut Vec<u8>, v: u64) {
    let mut buf = itoa::Buffer::new();
    out.extend_from_slice(buf.format(v).as_bytes());
}

/// Re-indents compact JSON as Go's `json.MarshalIndent(v, "", "  ")` writes it: two spaces per
/// level, `": "` after keys, empty objects and arrays as `{}` and `[]`. Input must be valid
/// compact JSON (as this crate writes it).
pub fn indent(compact: &[u8], out: &mut Vec<u8>) {
    out.reserve(compact.len() * 3 / 2);
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    let mut i = 0;
    let newline = |out: &mut Vec<u8>, depth: usize| {
        out.push(b'\n');
        for _ in 0..depth {
            out.extend_from_slice(b"  ");
        }
    };
    while i < compact.len() {
        let c = compact[i];
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_str = false;
            }
            i += 1;
            continue;
        }
        match c {
            b'"' => {
                in_str = true;
                out.push(c);
            }
            b'{' | b'[' => {
                out.push(c);
                let close = if c == b'{' { b'}' } else { b']' };
                if compact.get(i + 1) == Some(&close) {
                    out.push(close);
                    i += 2;
                    continue;
                }
                depth += 1;
                newline(out, depth);
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                newline(out, depth);
                out.push(c);
            }
            b',' => {
                out.push(c);
                newline(out, depth);
            }
            b':' => out.extend_from_slice(b": "),
            b' ' | b'\n' | b'\t' | b'\r' => {}
            _ => out.push(c),
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &[u8]) -> String {
        let mut out = Vec::new();
        write_str(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_are_escaped_as_go_does() {
        assert_eq!(esc(b"plain"), r#""plain""#);
        assert_eq!(esc(b"a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(esc(b"<a&b>"), r#""\u003ca\u0026b\u003e""#);
        assert_eq!(esc(b"\n\t\r\x01\x08\x0c"), r#""\n\t\r\u0001\b\f""#);
        assert_eq!(esc("é€😀".as_bytes()), "\"é€😀\"");
        assert_eq!(esc("a\u{2028}b\u{2029}".as_bytes()), r#""a\u2028b\u2029""#);
        assert_eq!(esc(b"a\xffb\xe2\x82"), r#""a\ufffdb\ufffd\ufffd""#);
    }

    #[test]
    fn word_scan_stops_at_every_special_byte() {
        for special in [0u8, 0x1f, b'"', b'\\', b'<', b'>', b'&', 0x80, 0xff] {
            for pos in 0..16 {
                let mut s = vec![b'a'; 16];
                s[pos] = special;
                assert!(skip_plain(&s, 0) <= pos, "byte {special:#x} at {pos}");
            }
        }
        assert_eq!(skip_plain(b"abcdefghijklmnopq", 0), 16);
        assert_eq!(
            esc(b"0123456789<abcdefghij\\klmnop\"q"),
            r#""0123456789\u003cabcdefghij\\klmnop\"q""#
        );
    }

    #[test]
    fn indent_matches_go_marshal_indent() {
        let mut out = Vec::new();
        indent(br#"{"a":[1,{"b":"x:,{"}],"c":{},"d":[]}"#, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\n  \"a\": [\n    1,\n    {\n      \"b\": \"x:,{\"\n    }\n  ],\n  \"c\": {},\n  \"d\": []\n}"
        );
    }
}
