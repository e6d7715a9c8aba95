//! Kubernetes' list library (`isSorted`, `sum`, `min`, `max`, `indexOf`, `lastIndexOf`) and
//! cel-go's sets extension (`sets.contains`, `sets.equivalent`, `sets.intersects`).

use std::cmp::Ordering;
use std::sync::Arc;

use ::cel::{ExecutionError, Value as CelValue};

use super::cost;
use super::library::{Call, Overload, fail};

pub(super) const OVERLOADS: &[(&str, Overload)] = &[
    ("isSorted", is_sorted),
    ("sum", sum),
    ("min", min),
    ("max", max),
    ("indexOf", index_of),
    ("lastIndexOf", last_index_of),
    ("sets.contains", sets_contains),
    ("sets.equivalent", sets_equivalent),
    ("sets.intersects", sets_intersects),
];

type Out = Option<Result<CelValue, ExecutionError>>;

/// The receiver as a list, charged at its length.
fn this_list(c: &Call) -> Option<Result<&Arc<Vec<CelValue>>, ExecutionError>> {
    match &c.this {
        Some(CelValue::List(l)) => Some(cost::charge(l.len() as u64).map(|_| l)),
        _ => None,
    }
}

/// CEL's ordering of two comparable values (numbers across int, uint and double).
pub(super) fn compare(a: &CelValue, b: &CelValue) -> Option<Ordering> {
    use CelValue::*;
    match (a, b) {
        (Int(x), Int(y)) => Some(x.cmp(y)),
        (UInt(x), UInt(y)) => Some(x.cmp(y)),
        (Float(x), Float(y)) => x.partial_cmp(y),
        (Int(x), UInt(y)) => Some(if *x < 0 {
            Ordering::Less
        } else {
            (*x as u64).cmp(y)
        }),
        (UInt(x), Int(y)) => Some(if *y < 0 {
            Ordering::Greater
        } else {
            x.cmp(&(*y as u64))
        }),
        (Int(x), Float(y)) => (*x as f64).partial_cmp(y),
        (Float(x), Int(y)) => x.partial_cmp(&(*y as f64)),
        (UInt(x), Float(y)) => (*x as f64).partial_cmp(y),
        (Float(x), UInt(y)) => x.partial_cmp(&(*y as f64)),
        (String(x), String(y)) => Some(x.cmp(y)),
        (Bool(x), Bool(y)) => Some(x.cmp(y)),
        (Bytes(x), Bytes(y)) => Some(x.cmp(y)),
        (Duration(x), Duration(y)) => Some(x.cmp(y)),
        (Timestamp(x), Timestamp(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn is_sorted(c: &Call) -> Out {
    let l = match this_list(c)? {
        Ok(l) => l,
        Err(e) => return Some(Err(e)),
    };
    for pair in l.windows(2) {
        match compare(&pair[0], &pair[1]) {
            Some(Ordering::Greater) => return Some(Ok(CelValue::Bool(false))),
            Some(_) => {}
            None => return Some(Err(ExecutionError::NoSuchOverload)),
        }
    }
    Some(Ok(CelValue::Bool(true)))
}

fn sum(c: &Call) -> Out {
    let l = match this_list(c)? {
        Ok(l) => l,
        Err(e) => return Some(Err(e)),
    };
    let mut acc: Option<CelValue> = None;
    for v in l.iter() {
        let next = match (acc, v) {
            (None, v) => v.clone(),
            (Some(CelValue::Int(a)), CelValue::Int(b)) => match a.checked_add(*b) {
                Some(s) => CelValue::Int(s),
                None => return Some(Err(fail("integer overflow"))),
            },
            (Some(CelValue::UInt(a)), CelValue::UInt(b)) => match a.checked_add(*b) {
                Some(s) => CelValue::UInt(s),
                None => return Some(Err(fail("unsigned integer overflow"))),
            },
            (Some(CelValue::Float(a)), CelValue::Float(b)) => CelValue::Float(a + b),
            (Some(CelValue::Duration(a)), CelValue::Duration(b)) => match a.checked_add(b) {
                Some(s) => CelValue::Duration(s),
                None => return Some(Err(fail("integer overflow"))),
            },
            _ => return Some(Err(ExecutionError::NoSuchOverload)),
        };
        acc = Some(next);
    }
    // An empty list sums to the zero of its element type; without static types, an int.
    Some(Ok(acc.unwrap_or(CelValue::Int(0))))
}

fn extreme(c: &Call, name: &str, prefer: Ordering) -> Out {
    if c.arity() != 0 {
        return None;
    }
    let l = match this_list(c)? {
        Ok(l) => l,
        Err(e) => return Some(Err(e)),
    };
    let mut best: Option<&CelValue> = None;
    for v in l.iter() {
        best = match best {
            None => Some(v),
            Some(b) => match compare(v, b) {
                Some(o) if o == prefer => Some(v),
                Some(_) => Some(b),
                None => return Some(Err(ExecutionError::NoSuchOverload)),
            },
        };
    }
    Some(match best {
        Some(v) => Ok(v.clone()),
        None => Err(fail(format!("{name} called on empty list"))),
    })
}

fn min(c: &Call) -> Out {
    extreme(c, "min", Ordering::Less)
}

fn max(c: &Call) -> Out {
    extreme(c, "max", Ordering::Greater)
}

fn index_of(c: &Call) -> Out {
    let l = match this_list(c)? {
        Ok(l) => l,
        Err(e) => return Some(Err(e)),
    };
    let item = c.arg(0)?;
    let i = l.iter().position(|v| v == item).map_or(-1, |i| i as i64);
    Some(Ok(CelValue::Int(i)))
}

fn last_index_of(c: &Call) -> Out {
    let l = match this_list(c)? {
        Ok(l) => l,
        Err(e) => return Some(Err(e)),
    };
    let item = c.arg(0)?;
    let i = l.iter().rposition(|v| v == item).map_or(-1, |i| i as i64);
    Some(Ok(CelValue::Int(i)))
}

/// Two lists, borrowed from a call.
type Pair<'c> = (&'c [CelValue], &'c [CelValue]);

/// The two list arguments of a `sets.*` call, charged at the product of their lengths.
fn two_lists(c: &Call) -> Option<Result<Pair<'_>, ExecutionError>> {
    match (c.arg(0), c.arg(1)) {
        (Some(CelValue::List(a)), Some(CelValue::List(b))) if c.arity() == 2 => {
            let cost = (a.len() as u64).saturating_mul(b.len() as u64);
            Some(cost::charge(cost).map(|_| (a.as_slice(), b.as_slice())))
        }
        _ => None,
    }
}

fn contains_all(a: &[CelValue], b: &[CelValue]) -> bool {
    b.iter().all(|x| a.contains(x))
}

fn sets_contains(c: &Call) -> Out {
    Some(two_lists(c)?.map(|(a, b)| CelValue::Bool(contains_all(a, b))))
}

fn sets_equivalent(c: &Call) -> Out {
    Some(two_lists(c)?.map(|(a, b)| CelValue::Bool(contains_all(a, b) && contains_all(b, a))))
}

fn sets_intersects(c: &Call) -> Out {
    Some(two_lists(c)?.map(|(a, b)| CelValue::Bool(b.iter().any(|x| a.contains(x)))))
}

#[cfg(test)]
mod tests {
    use super::super::library::testing::{eval, fails, holds};
    use ::cel::Value as CelValue;

    #[test]
    fn lists_as_upstream() {
        holds("[1, 2, 3].isSorted()");
        holds("![3, 1].isSorted()");
        holds("['a', 'b', 'b'].isSorted()");
        holds("[].isSorted()");
        holds("[1, 2, 3].sum() == 6");
        holds("[1.5, 2.5].sum() == 4.0");
        holds("[].sum() == 0");
        holds("[3, 1, 2].min() == 1");
        holds("[3, 1, 2].max() == 3");
        holds("['b', 'a'].min() == 'a'");
        holds("[1, 2, 3, 2].indexOf(2) == 1");
        holds("[1, 2, 3, 2].lastIndexOf(2) == 3");
        holds("[1, 2].indexOf(5) == -1");
        holds("['a'].lastIndexOf('b') == -1");
        fails("[].min()", "min called on empty list");
        fails("[].max()", "max called on empty list");
        fails("[9223372036854775807, 1].sum()", "integer overflow");
        assert_eq!(eval("[1, 'a'].isSorted()"), Err("no such overload".into()));
        assert_eq!(eval("[2, 1.5].min()"), Ok(CelValue::Float(1.5)));
    }

    #[test]
    fn sets_as_upstream() {
        holds("sets.contains([1, 2, 3], [3, 1])");
        holds("!sets.contains([1, 2], [3])");
        holds("sets.contains([1], [])");
        holds("sets.equivalent([1, 2, 2], [2, 1])");
        holds("!sets.equivalent([1, 2], [1])");
        holds("sets.intersects([1, 2], [2, 3])");
        holds("!sets.intersects([1], [])");
        holds("sets.contains([1.0, 2], [1])");
    }
}
