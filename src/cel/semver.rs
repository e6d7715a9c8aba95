//! Kubernetes' semver library: `isSemver`, `semver` (each with an optional `normalize` flag),
//! `major`, `minor`, `patch`, `compareTo`, `isGreaterThan`, `isLessThan`. Parsing and
//! precedence follow blang/semver v4, which upstream uses (build metadata does not order).

use std::cmp::Ordering;
use std::sync::Arc;

use ::cel::objects::Opaque;
use ::cel::{ExecutionError, Value as CelValue};

use super::library::{Call, Overload, fail};

pub(super) const OVERLOADS: &[(&str, Overload)] = &[
    ("isSemver", is_semver),
    ("semver", semver),
    ("major", |c| part(c, |v| v.major)),
    ("minor", |c| part(c, |v| v.minor)),
    ("patch", |c| part(c, |v| v.patch)),
    ("compareTo", compare_to),
    ("isGreaterThan", is_greater_than),
    ("isLessThan", is_less_than),
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pre {
    Numeric(u64),
    Alpha(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Semver {
    major: u64,
    minor: u64,
    patch: u64,
    pre: Vec<Pre>,
}

impl Opaque for Semver {
    fn runtime_type_name(&self) -> &str {
        "kubernetes.Semver"
    }
}

fn number(s: &str, which: &str) -> Result<u64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "Invalid character(s) found in {which} number {s:?}"
        ));
    }
    if s.len() > 1 && s.starts_with('0') {
        let which = format!("{}{}", which[..1].to_uppercase(), &which[1..]);
        return Err(format!(
            "{which} number must not contain leading zeroes {s:?}"
        ));
    }
    s.parse()
        .map_err(|_| format!("Invalid character(s) found in {which} number {s:?}"))
}

/// blang/semver's `Parse`.
fn parse(s: &str) -> Result<Semver, String> {
    if s.is_empty() {
        return Err("Version string empty".into());
    }
    let (rest, build) = s.split_once('+').map_or((s, None), |(a, b)| (a, Some(b)));
    if let Some(b) = build
        && (b.is_empty()
            || b.split('.').any(|id| {
                id.is_empty() || !id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
            }))
    {
        return Err(format!("Invalid character(s) found in build meta {b:?}"));
    }
    let (core, pre) = rest
        .split_once('-')
        .map_or((rest, None), |(a, p)| (a, Some(p)));
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3 {
        return Err("No Major.Minor.Patch elements found".into());
    }
    let major = number(parts[0], "major")?;
    let minor = number(parts[1], "minor")?;
    let patch = number(parts[2], "patch")?;
    let mut pres = Vec::new();
    if let Some(p) = pre {
        for id in p.split('.') {
            if id.is_empty() || !id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-') {
                return Err(format!("Invalid character(s) found in prerelease {id:?}"));
            }
            if id.bytes().all(|b| b.is_ascii_digit()) {
                if id.len() > 1 && id.starts_with('0') {
                    return Err(format!(
                        "Numeric PreRelease version must not contain leading zeroes {id:?}"
                    ));
                }
                pres.push(Pre::Numeric(id.parse().map_err(|_| {
                    format!("Invalid character(s) found in prerelease {id:?}")
                })?));
            } else {
                pres.push(Pre::Alpha(id.to_string()));
            }
        }
    }
    Ok(Semver {
        major,
        minor,
        patch,
        pre: pres,
    })
}

/// Upstream's `normalizeAndParse`: a leading `v` dropped, missing minor and patch filled with
/// 0, leading zeroes dropped.
fn normalize_and_parse(s: &str) -> Result<Semver, String> {
    let s = s.strip_prefix('v').unwrap_or(s);
    let end = s.find(['-', '+']).unwrap_or(s.len());
    let (core, tail) = s.split_at(end);
    let mut parts: Vec<String> = core
        .split('.')
        .map(|p| {
            let t = p.trim_start_matches('0');
            if t.is_empty() && !p.is_empty() {
                "0".into()
            } else {
                t.to_string()
            }
        })
        .collect();
    while parts.len() < 3 {
        parts.push("0".into());
    }
    parse(&format!("{}{tail}", parts.join(".")))
}

fn precedence(a: &Semver, b: &Semver) -> Ordering {
    let core = (a.major, a.minor, a.patch).cmp(&(b.major, b.minor, b.patch));
    if core != Ordering::Equal {
        return core;
    }
    match (a.pre.is_empty(), b.pre.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        _ => {}
    }
    for (x, y) in a.pre.iter().zip(&b.pre) {
        let o = match (x, y) {
            (Pre::Numeric(x), Pre::Numeric(y)) => x.cmp(y),
            (Pre::Numeric(_), Pre::Alpha(_)) => Ordering::Less,
            (Pre::Alpha(_), Pre::Numeric(_)) => Ordering::Greater,
            (Pre::Alpha(x), Pre::Alpha(y)) => x.cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.pre.len().cmp(&b.pre.len())
}

type Out = Option<Result<CelValue, ExecutionError>>;

/// The string argument and the optional `normalize` flag.
fn text_and_flag(c: &Call) -> Option<(&str, bool)> {
    if c.this.is_some() {
        return None;
    }
    let Some(CelValue::String(s)) = c.arg(0) else {
        return None;
    };
    match c.arg(1) {
        None => Some((s.as_str(), false)),
        Some(CelValue::Bool(b)) if c.arity() == 2 => Some((s.as_str(), *b)),
        _ => None,
    }
}

fn parse_with(s: &str, normalize: bool) -> Result<Semver, String> {
    if normalize {
        normalize_and_parse(s)
    } else {
        parse(s)
    }
}

fn is_semver(c: &Call) -> Out {
    let (s, normalize) = text_and_flag(c)?;
    Some(Ok(CelValue::Bool(parse_with(s, normalize).is_ok())))
}

fn semver(c: &Call) -> Out {
    let (s, normalize) = text_and_flag(c)?;
    Some(
        parse_with(s, normalize)
            .map(|v| CelValue::Opaque(Arc::new(v)))
            .map_err(fail),
    )
}

fn as_semver(v: Option<&CelValue>) -> Option<&Semver> {
    match v {
        Some(CelValue::Opaque(o)) => o.downcast_ref::<Semver>(),
        _ => None,
    }
}

fn part(c: &Call, f: fn(&Semver) -> u64) -> Out {
    let v = as_semver(c.this.as_ref())?;
    Some(Ok(CelValue::Int(i64::try_from(f(v)).unwrap_or(i64::MAX))))
}

fn ordering(c: &Call) -> Option<Ordering> {
    Some(precedence(
        as_semver(c.this.as_ref())?,
        as_semver(c.arg(0))?,
    ))
}

fn compare_to(c: &Call) -> Out {
    Some(Ok(CelValue::Int(ordering(c)? as i64)))
}

fn is_greater_than(c: &Call) -> Out {
    Some(Ok(CelValue::Bool(ordering(c)? == Ordering::Greater)))
}

fn is_less_than(c: &Call) -> Out {
    Some(Ok(CelValue::Bool(ordering(c)? == Ordering::Less)))
}

#[cfg(test)]
mod tests {
    use super::super::library::testing::{fails, holds};

    #[test]
    fn semvers_as_upstream() {
        holds("isSemver('1.2.3') && isSemver('1.2.3-rc.1+build.5') && !isSemver('1.2')");
        holds("!isSemver('v1.2.3') && isSemver('v1.2', true) && isSemver('01.02.03', true)");
        holds(
            "semver('1.2.3').major() == 1 && semver('1.2.3').minor() == 2 && semver('1.2.3').patch() == 3",
        );
        holds("semver('v1.2', true) == semver('1.2.0')");
        holds("semver('1.2.3').isGreaterThan(semver('1.2.2'))");
        holds("semver('1.2.3-alpha').isLessThan(semver('1.2.3'))");
        holds("semver('1.2.3-alpha.1').isLessThan(semver('1.2.3-alpha.beta'))");
        holds("semver('1.2.3+a').compareTo(semver('1.2.3+b')) == 0");
        holds("semver('2.0.0').compareTo(semver('10.0.0')) == -1");
        fails("semver('1.2')", "No Major.Minor.Patch elements found");
        fails(
            "semver('1.x.3')",
            "Invalid character(s) found in minor number \"x\"",
        );
        fails(
            "semver('01.2.3')",
            "Major number must not contain leading zeroes \"01\"",
        );
        // quantity and semver share method names: each value picks its own.
        holds(
            "quantity('2').isGreaterThan(quantity('1')) && semver('2.0.0').isGreaterThan(semver('1.0.0'))",
        );
    }
}
