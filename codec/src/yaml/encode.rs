//! go-yaml v2's encoder for a decoded JSON document: the events `yaml.Marshal` hands its emitter,
//! with mapping keys in go-yaml's "natural" order, the scalar style it asks for each string, and
//! numbers as they come out of `encoding/json` and back through go-yaml.

use std::cmp::Ordering;

use serde_json::Value;
use unicode_general_category::{GeneralCategory, get_general_category};

use super::emit::{Event, ScalarText, Style};
use super::float;
use super::resolve::{self, Resolved};

/// The event stream go-yaml's encoder produces for `v`, built without recursion.
pub(super) fn events(root: &Value) -> Vec<Event<'_>> {
    enum Work<'v> {
        Node(&'v Value),
        Key(&'v str),
        End(Event<'v>),
    }
    let mut out = vec![Event::DocumentStart];
    let mut work = vec![Work::End(Event::DocumentEnd), Work::Node(root)];
    while let Some(item) = work.pop() {
        match item {
            Work::End(e) => out.push(e),
            Work::Key(k) => out.push(string_event(k)),
            Work::Node(Value::Object(map)) => {
                out.push(Event::MappingStart);
                work.push(Work::End(Event::MappingEnd));
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                sort_by(&mut entries, |a, b| key_order(a.0, b.0));
                for (k, v) in entries.into_iter().rev() {
                    work.push(Work::Node(v));
                    work.push(Work::Key(k));
                }
            }
            Work::Node(Value::Array(items)) => {
                out.push(Event::SequenceStart);
                work.push(Work::End(Event::SequenceEnd));
                work.extend(items.iter().rev().map(Work::Node));
            }
            Work::Node(Value::String(s)) => out.push(match fold_nel(s) {
                Some(folded) => string_event_owned(folded),
                None => string_event(s),
            }),
            Work::Node(Value::Null) => out.push(plain("null")),
            Work::Node(Value::Bool(b)) => out.push(plain(if *b { "true" } else { "false" })),
            Work::Node(Value::Number(n)) => out.push(Event::Scalar {
                value: ScalarText::Owned(number_text(n)),
                style: Style::Plain,
            }),
        }
    }
    out
}

fn plain(s: &'static str) -> Event<'static> {
    Event::Scalar {
        value: ScalarText::Borrowed(s),
        style: Style::Plain,
    }
}

/// go-yaml's `stringv`: literal style for multi-line text, double quotes for text that would
/// read back as another type, plain otherwise (the emitter may still quote it).
fn string_event(s: &str) -> Event<'_> {
    Event::Scalar {
        value: ScalarText::Borrowed(s),
        style: string_style(s),
    }
}

fn string_event_owned(s: String) -> Event<'static> {
    Event::Scalar {
        style: string_style(&s),
        value: ScalarText::Owned(s),
    }
}

/// `encoding/json` leaves U+0085 (NEL) unescaped, and go-yaml, reading that JSON back, takes it
/// for a line break inside a quoted scalar and folds it with the spaces around it: one NEL
/// becomes a space, n of them n-1 newlines. Upstream's YAML carries the folded text, so ours does.
pub(super) fn fold_nel(s: &str) -> Option<String> {
    if !s.contains('\u{85}') {
        return None;
    }
    let mut out = String::with_capacity(s.len());
    let mut run = String::new();
    let mut breaks = 0;
    let flush = |out: &mut String, run: &mut String, breaks: &mut usize| {
        match *breaks {
            0 => out.push_str(run),
            1 => out.push(' '),
            n => out.extend(std::iter::repeat_n('\n', n - 1)),
        }
        run.clear();
        *breaks = 0;
    };
    for c in s.chars() {
        match c {
            ' ' => run.push(c),
            '\u{85}' => breaks += 1,
            _ => {
                flush(&mut out, &mut run, &mut breaks);
                out.push(c);
            }
        }
    }
    flush(&mut out, &mut run, &mut breaks);
    Some(out)
}

fn string_style(s: &str) -> Style {
    if s.contains('\n') {
        Style::Literal
    } else if resolve::resolve("", s) == Ok(Resolved::Str) && !resolve::is_base60_float(s) {
        Style::Plain
    } else {
        Style::DoubleQuoted
    }
}

/// A JSON number as it comes out of Go: `encoding/json` writes it, go-yaml reads that text
/// back (an integer if it parses as one, else a float) and formats it again.
fn number_text(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    match resolve::resolve("", &float::json_float(f)) {
        Ok(Resolved::Int(i)) => i.to_string(),
        Ok(Resolved::Uint(u)) => u.to_string(),
        _ => float::format_float(f),
    }
}

/// go-yaml v2's `keyList.Less` for string keys: letters sort after other characters, and runs
/// of digits compare by numeric value.
fn key_order(a: &str, b: &str) -> Ordering {
    if key_less(a, b) {
        Ordering::Less
    } else if key_less(b, a) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

fn is_letter(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphabetic();
    }
    matches!(
        get_general_category(c),
        GeneralCategory::UppercaseLetter
            | GeneralCategory::LowercaseLetter
            | GeneralCategory::TitlecaseLetter
            | GeneralCategory::ModifierLetter
            | GeneralCategory::OtherLetter
    )
}

fn is_digit(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    get_general_category(c) == GeneralCategory::DecimalNumber
}

fn key_less(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return runes_less(a.as_bytes(), b.as_bytes(), char::from);
    }
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    runes_less(&ar, &br, |c| c)
}

/// The comparison itself, over the runes of both keys (bytes when both are ASCII).
fn runes_less<T: Copy + PartialEq>(ar: &[T], br: &[T], rune: impl Fn(T) -> char) -> bool {
    for i in 0..ar.len().min(br.len()) {
        if ar[i] == br[i] {
            continue;
        }
        let al = is_letter(rune(ar[i]));
        let bl = is_letter(rune(br[i]));
        if al && bl {
            return rune(ar[i]) < rune(br[i]);
        }
        if al || bl {
            return bl;
        }
        let mut an: i64 = 0;
        let mut bn: i64 = 0;
        if rune(ar[i]) == '0' || rune(br[i]) == '0' {
            // Inside a number that started earlier, a zero is an ordinary digit.
            for j in (0..i).rev() {
                if !is_digit(rune(ar[j])) {
                    break;
                }
                if rune(ar[j]) != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let digit = |c: char| i64::from(c as u32) - i64::from('0' as u32);
        let mut ai = i;
        while ai < ar.len() && is_digit(rune(ar[ai])) {
            an = an.wrapping_mul(10).wrapping_add(digit(rune(ar[ai])));
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && is_digit(rune(br[bi])) {
            bn = bn.wrapping_mul(10).wrapping_add(digit(rune(br[bi])));
            bi += 1;
        }
        if an != bn {
            return an < bn;
        }
        if ai != bi {
            return ai < bi;
        }
        return rune(ar[i]) < rune(br[i]);
    }
    ar.len() < br.len()
}

/// A stable merge sort that tolerates a comparison that is not a total order (std's sorts may
/// panic on one, and Go's natural key order is not guaranteed to be one).
fn sort_by<T: Copy>(items: &mut [T], cmp: impl Fn(&T, &T) -> Ordering + Copy) {
    if items.len() <= 12 {
        // Go sorts short slices by insertion too.
        for i in 1..items.len() {
            let mut j = i;
            while j > 0 && cmp(&items[j], &items[j - 1]) == Ordering::Less {
                items.swap(j, j - 1);
                j -= 1;
            }
        }
        return;
    }
    let mid = items.len() / 2;
    sort_by(&mut items[..mid], cmp);
    sort_by(&mut items[mid..], cmp);
    let mut merged = Vec::with_capacity(items.len());
    let (mut i, mut j) = (0, mid);
    while i < mid && j < items.len() {
        if cmp(&items[j], &items[i]) == Ordering::Less {
            merged.push(items[j]);
            j += 1;
        } else {
            merged.push(items[i]);
            i += 1;
        }
    }
    merged.extend_from_slice(&items[i..mid]);
    merged.extend_from_slice(&items[j..]);
    items.copy_from_slice(&merged);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(keys: &[&'static str]) -> Vec<&'static str> {
        let mut v = keys.to_vec();
        sort_by(&mut v, |a, b| key_order(a, b));
        v
    }

    #[test]
    fn keys_sort_in_go_yaml_natural_order() {
        assert_eq!(sorted(&["b", "a10", "a9", "a"]), ["a", "a9", "a10", "b"]);
        assert_eq!(sorted(&["z", "_a", "1", "A"]), ["_a", "1", "A", "z"]);
        assert_eq!(sorted(&["a01", "a1", "a001"]), ["a1", "a01", "a001"]);
        assert_eq!(sorted(&["x-2", "x-10", "x-1"]), ["x-1", "x-2", "x-10"]);
        assert_eq!(sorted(&["é", "e", "f"]), ["e", "f", "é"]);
    }
}
