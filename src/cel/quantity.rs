//! Kubernetes' quantity library: `quantity`, `isQuantity` and the Quantity methods (`sign`,
//! `isInteger`, `asInteger`, `asApproximateFloat`, `add`, `sub`, `compareTo`,
//! `isGreaterThan`, `isLessThan`). Parsing is the codec's `resource.ParseQuantity`; values are
//! held exactly in nano units (what ParseQuantity rounds to), saturating beyond ±1.7e29.

use std::cmp::Ordering;
use std::sync::Arc;

use ::cel::objects::Opaque;
use ::cel::{ExecutionError, Value as CelValue};
use kapi_codec::goscalar::Quantity as Parsed;

use super::library::{Call, Overload, fail};

pub(super) const OVERLOADS: &[(&str, Overload)] = &[
    ("quantity", quantity),
    ("isQuantity", is_quantity),
    ("sign", sign),
    ("isInteger", is_integer),
    ("asInteger", as_integer),
    ("asApproximateFloat", as_approximate_float),
    ("add", add),
    ("sub", sub),
    ("compareTo", compare_to),
    ("isGreaterThan", is_greater_than),
    ("isLessThan", is_less_than),
];

const NANO: i128 = 1_000_000_000;

/// A Quantity's value, in units of 10^-9.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    nanos: i128,
}

impl Opaque for Quantity {
    fn runtime_type_name(&self) -> &str {
        "kubernetes.Quantity"
    }
}

impl Quantity {
    fn parse(s: &str) -> Result<Quantity, String> {
        let q = Parsed::parse(s).map_err(|e| e.to_string())?;
        let (negative, digits, exp) = q.decimal();
        let mut nanos: i128 = 0;
        for d in digits {
            nanos = nanos
                .saturating_mul(10)
                .saturating_add(i128::from(d - b'0'));
        }
        let shift = exp + 9;
        if shift >= 0 {
            for _ in 0..shift.min(40) {
                nanos = nanos.saturating_mul(10);
            }
        } else {
            // ParseQuantity rounds up to nano units; a finer input keeps its nano part.
            for _ in 0..(-shift).min(40) {
                nanos /= 10;
            }
        }
        Ok(Quantity {
            nanos: if negative { -nanos } else { nanos },
        })
    }

    fn int(n: i64) -> Quantity {
        Quantity {
            nanos: i128::from(n) * NANO,
        }
    }

    /// `AsInt64`: the value when it is a whole number within int64.
    fn as_i64(self) -> Option<i64> {
        if self.nanos % NANO != 0 {
            return None;
        }
        i64::try_from(self.nanos / NANO).ok()
    }
}

type Out = Option<Result<CelValue, ExecutionError>>;

fn value(q: Quantity) -> CelValue {
    CelValue::Opaque(Arc::new(q))
}

fn as_quantity(v: Option<&CelValue>) -> Option<Quantity> {
    match v {
        Some(CelValue::Opaque(o)) => o.downcast_ref::<Quantity>().copied(),
        _ => None,
    }
}

fn this(c: &Call) -> Option<Quantity> {
    as_quantity(c.this.as_ref())
}

fn quantity(c: &Call) -> Out {
    let Some(CelValue::String(s)) = c.arg(0) else {
        return None;
    };
    if c.this.is_some() {
        return None;
    }
    Some(Quantity::parse(s).map(value).map_err(fail))
}

fn is_quantity(c: &Call) -> Out {
    let Some(CelValue::String(s)) = c.arg(0) else {
        return None;
    };
    Some(Ok(CelValue::Bool(Parsed::parse(s).is_ok())))
}

fn sign(c: &Call) -> Out {
    let q = this(c)?;
    Some(Ok(CelValue::Int(q.nanos.signum() as i64)))
}

fn is_integer(c: &Call) -> Out {
    let q = this(c)?;
    Some(Ok(CelValue::Bool(q.as_i64().is_some())))
}

fn as_integer(c: &Call) -> Out {
    let q = this(c)?;
    Some(
        q.as_i64()
            .map(CelValue::Int)
            .ok_or_else(|| fail("cannot convert value to integer")),
    )
}

fn as_approximate_float(c: &Call) -> Out {
    let q = this(c)?;
    Some(Ok(CelValue::Float(q.nanos as f64 / NANO as f64)))
}

/// The other operand of `add`/`sub`: a Quantity or an int.
fn operand(c: &Call) -> Option<Quantity> {
    match c.arg(0) {
        Some(CelValue::Int(n)) => Some(Quantity::int(*n)),
        other => as_quantity(other),
    }
}

fn add(c: &Call) -> Out {
    let (q, other) = (this(c)?, operand(c)?);
    Some(Ok(value(Quantity {
        nanos: q.nanos.saturating_add(other.nanos),
    })))
}

fn sub(c: &Call) -> Out {
    let (q, other) = (this(c)?, operand(c)?);
    Some(Ok(value(Quantity {
        nanos: q.nanos.saturating_sub(other.nanos),
    })))
}

fn ordering(c: &Call) -> Option<Ordering> {
    let (q, other) = (this(c)?, as_quantity(c.arg(0))?);
    Some(q.nanos.cmp(&other.nanos))
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
    fn quantities_as_upstream() {
        holds("isQuantity('20') && isQuantity('1.5Gi') && isQuantity('100m')");
        holds("!isQuantity('20 Gi') && !isQuantity('abc')");
        fails(
            "quantity('abc')",
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        );
        holds("quantity('1k') == quantity('1000')");
        holds("quantity('1Mi').asInteger() == 1048576");
        holds("quantity('50M').isInteger()");
        holds("!quantity('100m').isInteger()");
        fails(
            "quantity('100m').asInteger()",
            "cannot convert value to integer",
        );
        fails(
            "quantity('1E100').asInteger()",
            "cannot convert value to integer",
        );
        holds("quantity('50.703k').asApproximateFloat() == 50703.0");
        holds(
            "quantity('-3').sign() == -1 && quantity('0').sign() == 0 && quantity('2m').sign() == 1",
        );
        holds("quantity('1Gi').add(quantity('1Gi')) == quantity('2Gi')");
        holds("quantity('50k').add(20) == quantity('50020')");
        holds("quantity('50k').sub(quantity('20k')) == quantity('30k')");
        holds("quantity('50k').sub(20) == quantity('49980')");
        holds("quantity('50k').compareTo(quantity('50000')) == 0");
        holds("quantity('50M').compareTo(quantity('50Mi')) == -1");
        holds("quantity('200M').isGreaterThan(quantity('100M'))");
        holds("quantity('50M').isLessThan(quantity('100M'))");
        holds("!quantity('100M').isLessThan(quantity('100M'))");
    }
}
