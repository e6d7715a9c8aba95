//! go-yaml v2's implicit typing of scalars (its `resolve.go`, as forked into sigs.k8s.io/yaml),
//! and the Go `strconv`/`time` behaviour it leans on: which plain text is a bool, an int, a float,
//! a null or a timestamp. Used both ways: decoding YAML, and deciding which strings to quote.

pub(super) const STR_TAG: &str = "tag:yaml.org,2002:str";
pub(super) const INT_TAG: &str = "tag:yaml.org,2002:int";
pub(super) const FLOAT_TAG: &str = "tag:yaml.org,2002:float";
pub(super) const BOOL_TAG: &str = "tag:yaml.org,2002:bool";
pub(super) const NULL_TAG: &str = "tag:yaml.org,2002:null";
pub(super) const TIMESTAMP_TAG: &str = "tag:yaml.org,2002:timestamp";
pub(super) const BINARY_TAG: &str = "tag:yaml.org,2002:binary";
pub(super) const MERGE_TAG: &str = "tag:yaml.org,2002:merge";

/// What a scalar means once resolved, with Go's type for it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Resolved {
    Null,
    Bool(bool),
    /// Go `int` (64-bit).
    Int(i64),
    /// Go `uint64`: only for values above `i64::MAX`.
    Uint(u64),
    /// The fork's `*big.Int`: an unsigned integer past `u64`, as its (underscore-free) text.
    BigInt(String),
    Float(f64),
    /// The scalar's own text, as a string.
    Str,
    /// Looks like a timestamp; go-yaml hands it to `interface{}` as its text.
    Timestamp,
    /// The `<<` merge key.
    Merge,
    /// A tag go-yaml does not resolve (`!foo`, `!!binary`, `!`): the text, under that tag.
    Unresolved,
}

impl Resolved {
    fn tag(&self) -> &'static str {
        match self {
            Resolved::Null => NULL_TAG,
            Resolved::Bool(_) => BOOL_TAG,
            Resolved::Int(_) | Resolved::Uint(_) | Resolved::BigInt(_) => INT_TAG,
            Resolved::Float(_) => FLOAT_TAG,
            Resolved::Str | Resolved::Unresolved => STR_TAG,
            Resolved::Timestamp => TIMESTAMP_TAG,
            Resolved::Merge => MERGE_TAG,
        }
    }
}

fn resolvable(tag: &str) -> bool {
    matches!(
        tag,
        "" | STR_TAG | BOOL_TAG | INT_TAG | FLOAT_TAG | NULL_TAG | TIMESTAMP_TAG
    )
}

/// The fixed words of YAML 1.1 that go-yaml v2 knows (note `y`/`n`/`on`/`off`).
fn lookup_word(s: &str) -> Option<Resolved> {
    Some(match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            Resolved::Bool(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            Resolved::Bool(false)
        }
        "" | "~" | "null" | "Null" | "NULL" => Resolved::Null,
        ".nan" | ".NaN" | ".NAN" => Resolved::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Resolved::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Resolved::Float(f64::NEG_INFINITY),
        "<<" => Resolved::Merge,
        _ => return None,
    })
}

/// go-yaml's `resolve(tag, in)`: `tag` is the node's full tag, or "" when it has none.
/// Errors are go-yaml's "cannot decode !!str `x` as a !!int".
pub(super) fn resolve(tag: &str, input: &str) -> Result<Resolved, String> {
    if !resolvable(tag) {
        return Ok(Resolved::Unresolved);
    }
    let out = resolve_untagged(tag, input);
    let rtag = out.tag();
    if tag.is_empty() || tag == rtag || tag == STR_TAG {
        return Ok(out);
    }
    if tag == FLOAT_TAG
        && let Resolved::Int(i) = out
    {
        return Ok(Resolved::Float(i as f64));
    }
    Err(format!(
        "cannot decode {} `{}` as a {}",
        short_tag(rtag),
        input,
        short_tag(tag)
    ))
}

fn resolve_untagged(tag: &str, input: &str) -> Resolved {
    // The first byte hints at what the text may be; anything else is a string.
    let hint = match input.as_bytes().first() {
        None => b'N',
        Some(b'+' | b'-') => b'S',
        Some(b'0'..=b'9') => b'D',
        Some(b'y' | b'Y' | b'n' | b'N' | b't' | b'T' | b'f' | b'F' | b'o' | b'O' | b'~') => b'M',
        Some(b'.') => b'.',
        Some(_) => return Resolved::Str,
    };
    if tag == STR_TAG {
        return Resolved::Str;
    }
    if let Some(word) = lookup_word(input) {
        return word;
    }
    match hint {
        b'.' => match go_parse_float(input) {
            Some(f) => Resolved::Float(f),
            None => Resolved::Str,
        },
        b'D' | b'S' => resolve_number(tag, input),
        _ => Resolved::Str,
    }
}

fn resolve_number(tag: &str, input: &str) -> Resolved {
    if (tag.is_empty() || tag == TIMESTAMP_TAG) && is_timestamp(input) {
        return Resolved::Timestamp;
    }
    let plain: String = input.chars().filter(|&c| c != '_').collect();
    if let Ok(i) = parse_int(&plain) {
        return Resolved::Int(i);
    }
    let uint = parse_uint(&plain);
    if let Ok(u) = uint {
        return Resolved::Uint(u);
    }
    if is_yaml_style_float(&plain)
        && let Some(f) = go_parse_float(&plain)
    {
        return Resolved::Float(f);
    }
    if let Some(rest) = plain.strip_prefix("0b") {
        if let Ok(i) = parse_int_radix(rest, 2) {
            return Resolved::Int(i);
        }
        if let Ok(u) = parse_uint_radix(rest, 2) {
            return Resolved::Uint(u);
        }
    } else if let Some(rest) = plain.strip_prefix("-0b")
        && let Ok(i) = parse_int_radix(&format!("-{rest}"), 2)
    {
        return Resolved::Int(i);
    }
    // The fork keeps unsigned integers past 64 bits as big integers.
    if uint == Err(NumError::Range) {
        return Resolved::BigInt(plain);
    }
    Resolved::Str
}

fn short_tag(tag: &str) -> String {
    match tag.strip_prefix("tag:yaml.org,2002:") {
        Some(rest) => format!("!!{rest}"),
        None => tag.to_string(),
    }
}

/// go-yaml v2 quotes base-60 floats ("1:20") on output though it no longer reads them.
pub(super) fn is_base60_float(s: &str) -> bool {
    // ^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    if !b.get(i).is_some_and(u8::is_ascii_digit) {
        return false;
    }
    i += 1;
    while b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while b.get(i) == Some(&b':') {
        i += 1;
        match (b.get(i), b.get(i + 1)) {
            (Some(b'0'..=b'5'), Some(b'0'..=b'9')) => i += 2,
            (Some(b'0'..=b'9'), _) => i += 1,
            _ => return false,
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b'_') {
            i += 1;
        }
    }
    i == b.len()
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn is_yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumError {
    Syntax,
    Range,
}

/// Go's `underscoreOK`: underscores only between digits (or after a base prefix).
fn underscore_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let mut saw = b'^';
    let mut i = 0;
    let b = if matches!(b.first(), Some(b'+' | b'-')) {
        &b[1..]
    } else {
        b
    };
    let mut hex = false;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = b[1].eq_ignore_ascii_case(&b'x');
    }
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() || (hex && c.to_ascii_lowercase().is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
        i += 1;
    }
    saw != b'_'
}

/// Go's `strconv.ParseUint(s, 0, 64)`.
fn parse_uint(s: &str) -> Result<u64, NumError> {
    let b = s.as_bytes();
    if b.is_empty() {
        return Err(NumError::Syntax);
    }
    let (radix, digits) = if b[0] == b'0' {
        match b.get(1).map(u8::to_ascii_lowercase) {
            Some(b'b') if b.len() >= 3 => (2, &s[2..]),
            Some(b'o') if b.len() >= 3 => (8, &s[2..]),
            Some(b'x') if b.len() >= 3 => (16, &s[2..]),
            _ => (8, &s[1..]),
        }
    } else {
        (10, s)
    };
    let n = accumulate(digits, radix, true)?;
    if s.contains('_') && !underscore_ok(s) {
        return Err(NumError::Syntax);
    }
    Ok(n)
}

fn parse_uint_radix(s: &str, radix: u32) -> Result<u64, NumError> {
    if s.is_empty() {
        return Err(NumError::Syntax);
    }
    accumulate(s, radix, false)
}

/// Digits of `s` in `radix`, with Go's rule that a syntax error anywhere beats a range error.
fn accumulate(s: &str, radix: u32, underscores: bool) -> Result<u64, NumError> {
    let mut n: u64 = 0;
    let mut range = false;
    for c in s.bytes() {
        if c == b'_' && underscores {
            continue;
        }
        let d = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'a'..=b'z' | b'A'..=b'Z' => u32::from(c.to_ascii_lowercase() - b'a') + 10,
            _ => return Err(NumError::Syntax),
        };
        if d >= radix {
            return Err(NumError::Syntax);
        }
        if range {
            continue;
        }
        match n
            .checked_mul(u64::from(radix))
            .and_then(|m| m.checked_add(u64::from(d)))
        {
            Some(m) => n = m,
            None => range = true,
        }
    }
    if range { Err(NumError::Range) } else { Ok(n) }
}

fn with_sign(s: &str, parse: impl Fn(&str) -> Result<u64, NumError>) -> Result<i64, NumError> {
    let (neg, rest) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let un = match parse(rest) {
        Ok(u) => u,
        Err(NumError::Range) => u64::MAX,
        Err(e) => return Err(e),
    };
    const CUTOFF: u64 = 1 << 63;
    if !neg && un >= CUTOFF || neg && un > CUTOFF {
        return Err(NumError::Range);
    }
    Ok(if neg {
        0i64.wrapping_sub_unsigned(un)
    } else {
        un as i64
    })
}

/// Go's `strconv.ParseInt(s, 0, 64)`.
fn parse_int(s: &str) -> Result<i64, NumError> {
    with_sign(s, parse_uint)
}

fn parse_int_radix(s: &str, radix: u32) -> Result<i64, NumError> {
    with_sign(s, |r| parse_uint_radix(r, radix))
}

/// Go's `strconv.ParseFloat(s, 64)` for the decimal forms go-yaml hands it (a leading '.' or
/// text already matching the YAML float pattern). Out of range is an error, as in Go.
fn go_parse_float(s: &str) -> Option<f64> {
    let cleaned;
    let s = if s.contains('_') {
        if !underscore_ok(s) {
            return None;
        }
        cleaned = s.replace('_', "");
        cleaned.as_str()
    } else {
        s
    };
    if !is_yaml_style_float(s) {
        return None;
    }
    let f: f64 = s.parse().ok()?;
    f.is_finite().then_some(f)
}

/// go-yaml's `parseTimestamp`: the four `time.Parse` layouts it tries, after a `YYYY-` check.
pub(super) fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits != 4 || b.get(4) != Some(&b'-') {
        return false;
    }
    [
        Layout::DateTimeT(b'T'),
        Layout::DateTimeT(b't'),
        Layout::DateTimeSpace,
        Layout::Date,
    ]
    .into_iter()
    .any(|layout| parse_time(b, layout).is_some())
}

#[derive(Clone, Copy)]
enum Layout {
    /// "2006-1-2T15:4:5.999999999Z07:00", with `T` or `t`.
    DateTimeT(u8),
    /// "2006-1-2 15:4:5.999999999"
    DateTimeSpace,
    /// "2006-1-2"
    Date,
}

/// Go's `getnum(s, false)`: one or two digits.
fn get_num(s: &[u8]) -> Option<(u32, &[u8])> {
    let d0 = s.first().filter(|c| c.is_ascii_digit())?;
    match s.get(1).filter(|c| c.is_ascii_digit()) {
        Some(d1) => Some((u32::from(d0 - b'0') * 10 + u32::from(d1 - b'0'), &s[2..])),
        None => Some((u32::from(d0 - b'0'), &s[1..])),
    }
}

fn expect(s: &[u8], c: u8) -> Option<&[u8]> {
    (s.first() == Some(&c)).then(|| &s[1..])
}

fn days_in(month: u32, year: i64) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn parse_time(s: &[u8], layout: Layout) -> Option<()> {
    let year: i64 = std::str::from_utf8(&s[..4]).ok()?.parse().ok()?;
    let s = expect(&s[4..], b'-')?;
    let (month, s) = get_num(s)?;
    if !(1..=12).contains(&month) {
        return None;
    }
    let s = expect(s, b'-')?;
    let (day, s) = get_num(s)?;
    let s = match layout {
        Layout::Date => s,
        Layout::DateTimeT(t) => time_of_day(expect(s, t)?)?,
        Layout::DateTimeSpace => {
            // A space in a Go layout matches one or more spaces.
            if s.first() != Some(&b' ') {
                return None;
            }
            let s = &s[s.iter().take_while(|&&c| c == b' ').count()..];
            time_of_day(s)?
        }
    };
    let s = match layout {
        Layout::DateTimeT(_) => zone(s)?,
        _ => s,
    };
    if !s.is_empty() || day < 1 || day > days_in(month, year) {
        return None;
    }
    Some(())
}

/// "15:4:5.999999999": hour, minute, second, optional fraction of any length.
fn time_of_day(s: &[u8]) -> Option<&[u8]> {
    let (hour, s) = get_num(s)?;
    let s = expect(s, b':')?;
    let (minute, s) = get_num(s)?;
    let s = expect(s, b':')?;
    let (second, s) = get_num(s)?;
    if hour >= 24 || minute >= 60 || second >= 60 {
        return None;
    }
    if s.len() >= 2 && matches!(s[0], b'.' | b',') && s[1].is_ascii_digit() {
        let n = 1 + s[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        return Some(&s[n..]);
    }
    Some(s)
}

/// "Z07:00": `Z`, or a sign and a fixed `hh:mm` offset.
fn zone(s: &[u8]) -> Option<&[u8]> {
    if s.first() == Some(&b'Z') {
        return Some(&s[1..]);
    }
    if s.len() < 6 || s[3] != b':' || !matches!(s[0], b'+' | b'-') {
        return None;
    }
    let two = |p: &[u8]| {
        (p[0].is_ascii_digit() && p[1].is_ascii_digit())
            .then(|| u32::from(p[0] - b'0') * 10 + u32::from(p[1] - b'0'))
    };
    let (hh, mm) = (two(&s[1..3])?, two(&s[4..6])?);
    (hh <= 24 && mm <= 60).then(|| &s[6..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_1_1_words_resolve_to_bools_and_nulls() {
        for t in [
            "y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "true", "True", "TRUE",
        ] {
            assert_eq!(resolve("", t), Ok(Resolved::Bool(true)), "{t}");
        }
        for f in [
            "n", "N", "no", "NO", "off", "OFF", "false", "False", "FALSE",
        ] {
            assert_eq!(resolve("", f), Ok(Resolved::Bool(false)), "{f}");
        }
        for n in ["", "~", "null", "Null", "NULL"] {
            assert_eq!(resolve("", n), Ok(Resolved::Null), "{n}");
        }
        for s in ["yES", "tRUE", "nULL", "ok", "O", "0n"] {
            assert_eq!(resolve("", s), Ok(Resolved::Str), "{s}");
        }
    }

    #[test]
    fn numbers_follow_go_strconv_base_prefixes() {
        assert_eq!(resolve("", "0x1F"), Ok(Resolved::Int(31)));
        assert_eq!(resolve("", "0o17"), Ok(Resolved::Int(15)));
        assert_eq!(resolve("", "017"), Ok(Resolved::Int(15)));
        assert_eq!(resolve("", "0b101"), Ok(Resolved::Int(5)));
        assert_eq!(resolve("", "-0b101"), Ok(Resolved::Int(-5)));
        assert_eq!(resolve("", "1_000"), Ok(Resolved::Int(1000)));
        assert_eq!(resolve("", "+12"), Ok(Resolved::Int(12)));
        // "08" is no octal number, but it is a float.
        assert_eq!(resolve("", "08"), Ok(Resolved::Float(8.0)));
        assert_eq!(
            resolve("", "9223372036854775808"),
            Ok(Resolved::Uint(1 << 63))
        );
        assert_eq!(
            resolve("", "-9223372036854775808"),
            Ok(Resolved::Int(i64::MIN))
        );
        assert_eq!(
            resolve("", "18446744073709551616"),
            Ok(Resolved::Float(18446744073709551616.0))
        );
        assert_eq!(
            resolve("", "0x10000000000000000"),
            Ok(Resolved::BigInt("0x10000000000000000".into()))
        );
        assert_eq!(resolve("", "1e3"), Ok(Resolved::Float(1000.0)));
        assert_eq!(resolve("", ".5"), Ok(Resolved::Float(0.5)));
        assert_eq!(resolve("", "-.5"), Ok(Resolved::Float(-0.5)));
        assert_eq!(resolve("", "1."), Ok(Resolved::Float(1.0)));
        assert_eq!(resolve("", "1e400"), Ok(Resolved::Str));
        assert_eq!(resolve("", "0x"), Ok(Resolved::Str));
        assert_eq!(resolve("", "1:20"), Ok(Resolved::Str));
        assert_eq!(resolve("", "-"), Ok(Resolved::Str));
        assert_eq!(resolve("", "12e"), Ok(Resolved::Str));
    }

    #[test]
    fn timestamps_match_go_time_parse_layouts() {
        for t in [
            "2001-12-14",
            "2001-1-2",
            "2008-01-01T01:01:01Z",
            "2002-01-01T01:01:01.000002Z",
            "2001-12-14t21:59:43.10-05:00",
            "2001-12-14 21:59:43.10",
            "2001-12-14   21:59:43",
            "2000-02-29",
            // Go 1.20 and later take any number of fractional digits (1.19 stopped at 9).
            "2001-12-14 21:59:43.109223372036854775807",
        ] {
            assert!(is_timestamp(t), "{t}");
        }
        for s in [
            "2001-13-14",
            "2001-02-30",
            "1900-02-29",
            "2001-12-14T21:59:43",
            "2001-12-14 21:59:43Z",
            "2001-12-14T25:00:00Z",
            "2001-12-14T21:59:43+5",
            "01-12-14",
            "2001-12-14x",
        ] {
            assert!(!is_timestamp(s), "{s}");
        }
    }

    #[test]
    fn explicit_tags_coerce_or_fail_like_go_yaml() {
        assert_eq!(resolve(STR_TAG, "12"), Ok(Resolved::Str));
        assert_eq!(resolve(FLOAT_TAG, "12"), Ok(Resolved::Float(12.0)));
        assert_eq!(resolve(INT_TAG, "12"), Ok(Resolved::Int(12)));
        assert_eq!(resolve("!custom", "12"), Ok(Resolved::Unresolved));
        assert_eq!(
            resolve(INT_TAG, "abc"),
            Err("cannot decode !!str `abc` as a !!int".to_string())
        );
        assert_eq!(
            resolve(TIMESTAMP_TAG, "2001-12-14"),
            Ok(Resolved::Timestamp)
        );
    }

    #[test]
    fn base60_floats_are_recognised() {
        for s in ["1:20", "-1:20:30", "190:20:30.15", "1_0:59"] {
            assert!(is_base60_float(s), "{s}");
        }
        for s in ["1:60", ":20", "1:", "a:1", "12", "1:2:x"] {
            assert!(!is_base60_float(s), "{s}");
        }
    }
}
