//! cel-go's strings extension as Kubernetes enables it (version 2: `charAt`, `indexOf`,
//! `lastIndexOf`, `lowerAscii`, `upperAscii`, `replace`, `split`, `substring`, `trim`, `join`,
//! `strings.quote`, `format`) and Kubernetes' regex library (`find`, `findAll`). Indices count code
//! points, as cel-go's do.

use std::sync::Arc;

use ::cel::{ExecutionError, Value as CelValue};
use regex::{Regex, RegexBuilder};

use super::cost;
use super::library::{Call, Overload, fail};

pub(super) const OVERLOADS: &[(&str, Overload)] = &[
    ("charAt", char_at),
    ("indexOf", index_of),
    ("lastIndexOf", last_index_of),
    ("lowerAscii", lower_ascii),
    ("upperAscii", upper_ascii),
    ("replace", replace),
    ("split", split),
    ("substring", substring),
    ("trim", trim),
    ("join", join),
    ("strings.quote", quote),
    ("format", format),
    ("find", find),
    ("findAll", find_all),
];

/// The largest compiled regex (the regex crate's default is 10 MiB): patterns come from
/// clients, and one request may compile many.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

type Out = Option<Result<CelValue, ExecutionError>>;

fn string(s: impl Into<String>) -> CelValue {
    CelValue::String(Arc::new(s.into()))
}

/// The receiver as a string.
fn this_str(c: &Call) -> Option<&str> {
    match &c.this {
        Some(CelValue::String(s)) => Some(s.as_str()),
        _ => None,
    }
}

fn str_arg(c: &Call, i: usize) -> Option<&str> {
    match c.arg(i) {
        Some(CelValue::String(s)) => Some(s.as_str()),
        _ => None,
    }
}

fn int_arg(c: &Call, i: usize) -> Option<i64> {
    match c.arg(i) {
        Some(CelValue::Int(n)) => Some(*n),
        _ => None,
    }
}

fn out_of_range(i: i64) -> ExecutionError {
    fail(format!("index out of range: {i}"))
}

/// Charges a string operation over `len` bytes.
fn charged(len: usize, f: impl FnOnce() -> Result<CelValue, ExecutionError>) -> Out {
    Some(cost::charge(1 + len as u64 / 10).and_then(|_| f()))
}

fn char_at(c: &Call) -> Out {
    let s = this_str(c)?;
    let i = int_arg(c, 0)?;
    charged(s.len(), || {
        let n = s.chars().count() as i64;
        if i < 0 || i > n {
            return Err(out_of_range(i));
        }
        Ok(string(
            s.chars()
                .nth(i as usize)
                .map(String::from)
                .unwrap_or_default(),
        ))
    })
}

/// cel-go's `indexOfOffset`/`lastIndexOfOffset` over code points.
fn find_runes(s: &str, sub: &str, offset: i64, last: bool) -> Result<i64, ExecutionError> {
    if sub.is_empty() {
        return Ok(offset);
    }
    let runes: Vec<char> = s.chars().collect();
    let subrunes: Vec<char> = sub.chars().collect();
    if offset < 0 || offset >= runes.len() as i64 {
        return Err(out_of_range(offset));
    }
    let at = |i: usize| runes.get(i..i + subrunes.len()) == Some(subrunes.as_slice());
    let off = offset as usize;
    let found = if last {
        let off = off.min(runes.len().saturating_sub(subrunes.len()));
        (0..=off).rev().find(|&i| at(i))
    } else {
        (off..runes.len()).find(|&i| at(i))
    };
    Ok(found.map_or(-1, |i| i as i64))
}

fn index_of(c: &Call) -> Out {
    let s = this_str(c)?;
    let sub = str_arg(c, 0)?;
    let offset = match c.arity() {
        1 => 0,
        2 => int_arg(c, 1)?,
        _ => return None,
    };
    charged(s.len(), || {
        find_runes(s, sub, offset, false).map(CelValue::Int)
    })
}

fn last_index_of(c: &Call) -> Out {
    let s = this_str(c)?;
    let sub = str_arg(c, 0)?;
    let n = s.chars().count() as i64;
    let offset = match c.arity() {
        1 if sub.is_empty() => n,
        1 => n - 1,
        2 => int_arg(c, 1)?,
        _ => return None,
    };
    charged(s.len(), || {
        find_runes(s, sub, offset, true).map(CelValue::Int)
    })
}

fn lower_ascii(c: &Call) -> Out {
    let s = this_str(c)?;
    charged(s.len(), || Ok(string(s.to_ascii_lowercase())))
}

fn upper_ascii(c: &Call) -> Out {
    let s = this_str(c)?;
    charged(s.len(), || Ok(string(s.to_ascii_uppercase())))
}

fn replace(c: &Call) -> Out {
    let s = this_str(c)?;
    let old = str_arg(c, 0)?;
    let new = str_arg(c, 1)?;
    let n = match c.arity() {
        2 => -1,
        3 => int_arg(c, 2)?,
        _ => return None,
    };
    // The result may grow by `new` at every code point: charge what it could be.
    let grows = (s.chars().count() + 1).saturating_mul(new.len());
    charged(s.len().saturating_add(grows), || {
        Ok(string(if n < 0 {
            s.replace(old, new)
        } else {
            s.replacen(old, new, n as usize)
        }))
    })
}

fn split(c: &Call) -> Out {
    let s = this_str(c)?;
    let sep = str_arg(c, 0)?;
    let n = match c.arity() {
        1 => -1,
        2 => int_arg(c, 1)?,
        _ => return None,
    };
    charged(s.len(), || {
        let parts: Vec<CelValue> = match n {
            0 => Vec::new(),
            n if sep.is_empty() => {
                // Go's SplitN with an empty separator splits into code points.
                let chars: Vec<char> = s.chars().collect();
                let take = if n < 0 {
                    chars.len()
                } else {
                    (n as usize).min(chars.len())
                };
                let mut parts: Vec<CelValue> = chars[..take.saturating_sub(1)]
                    .iter()
                    .map(|ch| string(ch.to_string()))
                    .collect();
                if take > 0 {
                    parts.push(string(chars[take - 1..].iter().collect::<String>()));
                }
                parts
            }
            n if n < 0 => s.split(sep).map(string).collect(),
            n => s.splitn(n as usize, sep).map(string).collect(),
        };
        Ok(CelValue::List(Arc::new(parts)))
    })
}

fn substring(c: &Call) -> Out {
    let s = this_str(c)?;
    let start = int_arg(c, 0)?;
    let n = s.chars().count() as i64;
    let end = match c.arity() {
        1 => n,
        2 => int_arg(c, 1)?,
        _ => return None,
    };
    charged(s.len(), || {
        if c.arity() == 1 && (start < 0 || start > n) {
            return Err(out_of_range(start));
        }
        if start > end {
            return Err(fail(format!(
                "invalid substring range. start: {start}, end: {end}"
            )));
        }
        if start < 0 || start > n {
            return Err(out_of_range(start));
        }
        if end < 0 || end > n {
            return Err(out_of_range(end));
        }
        let byte_offset = |i: i64| s.char_indices().nth(i as usize).map_or(s.len(), |(b, _)| b);
        let (a, b) = (byte_offset(start), byte_offset(end));
        Ok(string(&s[a..b]))
    })
}

fn trim(c: &Call) -> Out {
    let s = this_str(c)?;
    charged(s.len(), || Ok(string(s.trim())))
}

fn join(c: &Call) -> Out {
    let Some(CelValue::List(l)) = &c.this else {
        return None;
    };
    let sep = match c.arity() {
        0 => "",
        1 => str_arg(c, 0)?,
        _ => return None,
    };
    let mut parts = Vec::with_capacity(l.len());
    for v in l.iter() {
        match v {
            CelValue::String(s) => parts.push(s.as_str()),
            _ => return Some(Err(ExecutionError::NoSuchOverload)),
        }
    }
    let len = parts.iter().map(|p| p.len() + sep.len()).sum();
    charged(len, || Ok(string(parts.join(sep))))
}

fn quote(c: &Call) -> Out {
    let s = str_arg(c, 0)?;
    charged(s.len(), || {
        let mut out = String::with_capacity(s.len() + 2);
        out.push('"');
        for ch in s.chars() {
            match ch {
                '\u{7}' => out.push_str("\\a"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{b}' => out.push_str("\\v"),
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                ch => out.push(ch),
            }
        }
        out.push('"');
        Ok(string(out))
    })
}

/// A value as `%s` prints it (CEL's `string()` of scalars, lists and maps spelled out).
fn display(v: &CelValue, out: &mut String) -> Result<(), ExecutionError> {
    match v {
        CelValue::String(s) => out.push_str(s),
        CelValue::Int(i) => out.push_str(&i.to_string()),
        CelValue::UInt(u) => out.push_str(&u.to_string()),
        CelValue::Float(f) => out.push_str(&f.to_string()),
        CelValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        CelValue::Null => out.push_str("null"),
        CelValue::Bytes(b) => out.push_str(&String::from_utf8_lossy(b)),
        CelValue::List(l) => {
            out.push('[');
            for (i, x) in l.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                display(x, out)?;
            }
            out.push(']');
        }
        CelValue::Map(m) => {
            let mut entries: Vec<(String, &CelValue)> = m
                .map
                .iter()
                .map(|(k, v)| {
                    let key = match CelValue::from(k) {
                        CelValue::String(s) => s.to_string(),
                        other => {
                            let mut s = String::new();
                            let _ = display(&other, &mut s);
                            s
                        }
                    };
                    (key, v)
                })
                .collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            out.push('{');
            for (i, (k, x)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(k);
                out.push_str(": ");
                display(x, out)?;
            }
            out.push('}');
        }
        _ => return Err(ExecutionError::NoSuchOverload),
    }
    Ok(())
}

/// cel-go's `string.format(list)`: `%s`, `%d`, `%f` (with `.N` precision), `%e`, `%b`,
/// `%o`, `%x`, `%X` and `%%`.
fn format(c: &Call) -> Out {
    let template = this_str(c)?;
    let Some(CelValue::List(args)) = c.arg(0) else {
        return None;
    };
    charged(template.len() + args.len() * 10, || {
        let mut out = String::with_capacity(template.len());
        let mut next = 0;
        let mut chars = template.chars().peekable();
        while let Some(ch) = chars.next() {
            if ch != '%' {
                out.push(ch);
                continue;
            }
            if chars.peek() == Some(&'%') {
                chars.next();
                out.push('%');
                continue;
            }
            let mut precision: Option<usize> = None;
            if chars.peek() == Some(&'.') {
                chars.next();
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                precision = Some(digits.parse().unwrap_or(0).min(64));
            }
            let Some(verb) = chars.next() else {
                return Err(fail(
                    "could not parse formatting clause: unexpected end of string",
                ));
            };
            let Some(arg) = args.get(next) else {
                return Err(fail(format!("index {next} out of range")));
            };
            next += 1;
            let number = |arg: &CelValue| -> Option<f64> {
                match arg {
                    CelValue::Int(i) => Some(*i as f64),
                    CelValue::UInt(u) => Some(*u as f64),
                    CelValue::Float(f) => Some(*f),
                    _ => None,
                }
            };
            let integer = |arg: &CelValue| -> Option<i128> {
                match arg {
                    CelValue::Int(i) => Some(i128::from(*i)),
                    CelValue::UInt(u) => Some(i128::from(*u)),
                    _ => None,
                }
            };
            let bad = |what: &str| {
                fail(format!(
                    "error during formatting: {what} clause can only be used on {}",
                    match what {
                        "fixed-point" | "scientific" => "integers, doubles",
                        _ => "integers",
                    }
                ))
            };
            match verb {
                's' => display(arg, &mut out)?,
                'd' => match integer(arg) {
                    Some(i) => out.push_str(&i.to_string()),
                    None => match arg {
                        CelValue::Float(f) => out.push_str(&format!("{f}")),
                        _ => return Err(bad("decimal")),
                    },
                },
                'f' => match number(arg) {
                    Some(f) => out.push_str(&format!("{f:.*}", precision.unwrap_or(6))),
                    None => return Err(bad("fixed-point")),
                },
                'e' => match number(arg) {
                    Some(f) => {
                        let s = format!("{f:.*e}", precision.unwrap_or(6));
                        // Go writes a signed, two-digit exponent: 1.5e+03.
                        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
                        let (sign, e) = e.strip_prefix('-').map_or(("+", e), |e| ("-", e));
                        out.push_str(&format!("{m}e{sign}{e:0>2}"));
                    }
                    None => return Err(bad("scientific")),
                },
                'b' | 'o' | 'x' | 'X' => {
                    let text = match (arg, integer(arg)) {
                        (_, Some(i)) => {
                            let (neg, m) = (i < 0, i.unsigned_abs());
                            let digits = match verb {
                                'b' => format!("{m:b}"),
                                'o' => format!("{m:o}"),
                                'x' => format!("{m:x}"),
                                _ => format!("{m:X}"),
                            };
                            if neg { format!("-{digits}") } else { digits }
                        }
                        (CelValue::String(s), None) if verb == 'x' || verb == 'X' => {
                            let hex: String = s.bytes().map(|b| format!("{b:02x}")).collect();
                            if verb == 'X' { hex.to_uppercase() } else { hex }
                        }
                        _ => {
                            return Err(bad(match verb {
                                'b' => "binary",
                                'o' => "octal",
                                _ => "hex",
                            }));
                        }
                    };
                    out.push_str(&text);
                }
                other => {
                    return Err(fail(format!(
                        "could not parse formatting clause: unrecognized formatting clause \"{other}\""
                    )));
                }
            }
        }
        Ok(string(out))
    })
}

fn regex(pattern: &str) -> Result<Regex, ExecutionError> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| fail(format!("error parsing regexp: {e}")))
}

fn find(c: &Call) -> Out {
    let s = this_str(c)?;
    let pattern = str_arg(c, 0)?;
    if c.arity() != 1 {
        return None;
    }
    charged(s.len() + pattern.len() * 10, || {
        let re = regex(pattern)?;
        Ok(string(re.find(s).map_or("", |m| m.as_str())))
    })
}

fn find_all(c: &Call) -> Out {
    let s = this_str(c)?;
    let pattern = str_arg(c, 0)?;
    let limit = match c.arity() {
        1 => -1,
        2 => int_arg(c, 1)?,
        _ => return None,
    };
    charged(s.len() + pattern.len() * 10, || {
        let re = regex(pattern)?;
        let take = if limit < 0 {
            usize::MAX
        } else {
            limit as usize
        };
        let found: Vec<CelValue> = re
            .find_iter(s)
            .take(take)
            .map(|m| string(m.as_str()))
            .collect();
        Ok(CelValue::List(Arc::new(found)))
    })
}

#[cfg(test)]
mod tests {
    use super::super::library::testing::{fails, holds};

    #[test]
    fn string_extensions_as_cel_go() {
        holds("'hello'.charAt(1) == 'e'");
        holds("'hello'.charAt(5) == ''");
        fails("'hello'.charAt(6)", "index out of range: 6");
        holds("'hello mellow'.indexOf('ello') == 1");
        holds("'hello mellow'.indexOf('ello', 2) == 7");
        holds("'hello'.indexOf('') == 0");
        holds("'héllo'.indexOf('l') == 2");
        fails("'hello'.indexOf('l', 9)", "index out of range: 9");
        fails("'hello'.indexOf('l', 5)", "index out of range: 5");
        holds("'hello mellow'.lastIndexOf('ello') == 7");
        holds("'hello mellow'.lastIndexOf('ello', 6) == 1");
        holds("'hello'.lastIndexOf('') == 5");
        holds("'hello'.lastIndexOf('lo', 4) == 3");
        fails("''.indexOf('a')", "index out of range: 0");
        fails("'hello'.lastIndexOf('l', -1)", "index out of range: -1");
        holds("'TacoCat'.lowerAscii() == 'tacocat'");
        holds("'TacoCÆt'.upperAscii() == 'TACOCÆT'");
        holds("'hello hello'.replace('he', 'we') == 'wello wello'");
        holds("'hello hello'.replace('he', 'we', 1) == 'wello hello'");
        holds("'hello hello'.replace('he', 'we', 0) == 'hello hello'");
        holds("'a,b,c'.split(',') == ['a', 'b', 'c']");
        holds("'a,b,c'.split(',', 2) == ['a', 'b,c']");
        holds("'a,b,c'.split(',', 0) == []");
        holds("'abc'.split('') == ['a', 'b', 'c']");
        holds("'tacocat'.substring(4) == 'cat'");
        holds("'tacocat'.substring(0, 4) == 'taco'");
        fails("'tacocat'.substring(8)", "index out of range: 8");
        fails(
            "'tacocat'.substring(4, 2)",
            "invalid substring range. start: 4, end: 2",
        );
        holds("'  \\ttrim\\n '.trim() == 'trim'");
        holds("['a', 'b'].join() == 'ab'");
        holds("['a', 'b'].join(', ') == 'a, b'");
        holds("[].join('-') == ''");
        holds("strings.quote('first\\nsecond') == '\"first\\\\nsecond\"'");
        holds("strings.quote('\"x\"') == '\"\\\\\"x\\\\\"\"'");
        holds(
            "'%s has %d items, %.2f%%'.format(['list', 3, 12.345]) == 'list has 3 items, 12.35%'",
        );
        holds("'%s'.format([[1, 'a']]) == '[1, a]'");
        holds("'%x %X %o %b'.format([255, 255, 8, 5]) == 'ff FF 10 101'");
        holds("'%e'.format([1500.0]) == '1.500000e+03'");
        fails("'%s %s'.format(['a'])", "index 1 out of range");
        holds(
            "'%s has %d items, %.2f%%'.format(['list', 3, 12.345]) == 'list has 3 items, 12.35%'",
        );
        holds("'%s'.format([[1, 'a']]) == '[1, a]'");
        holds("'%x %X %o %b'.format([255, 255, 8, 5]) == 'ff FF 10 101'");
        holds("'%e'.format([1500.0]) == '1.500000e+03'");
        fails("'%s %s'.format(['a'])", "index 1 out of range");
    }

    #[test]
    fn regex_as_upstream() {
        holds("'abc 123'.find('[0-9]+') == '123'");
        holds("'abc'.find('[0-9]+') == ''");
        holds("'123 abc 456'.findAll('[0-9]+') == ['123', '456']");
        holds("'123 abc 456'.findAll('[0-9]+', 1) == ['123']");
        holds("'123 abc 456'.findAll('[0-9]+', 0) == []");
        holds("'abc'.findAll('x') == []");
        assert!(
            super::super::library::testing::eval("'abc'.find('[')")
                .unwrap_err()
                .starts_with("error parsing regexp: ")
        );
    }
}
