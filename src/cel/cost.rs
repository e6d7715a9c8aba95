//! The cost of evaluating CEL, bounded at run time. Upstream estimates a rule's worst case
//! when it is stored and counts actual cost as it runs; the `cel` crate does neither, so kapi
//! counts as it runs: each expression costs its node count, each comprehension iteration the
//! nodes of its body plus the size of the accumulator it builds, and library functions their
//! input sizes. An evaluation that exhausts its allowance stops with upstream's error.

use std::cell::Cell;

use ::cel::common::ast::operators::ADD;
use ::cel::common::ast::{CallExpr, EntryExpr, Expr, IdedExpr, LiteralValue};
use ::cel::common::types::CelInt;
use ::cel::{ExecutionError, Value as CelValue};

/// Upstream's `PerCallLimit` (k8s.io/apiserver/pkg/apis/cel): one evaluation of one
/// expression may cost at most this (about 0.1 s of CPU at upstream's cost units).
pub const PER_CALL_LIMIT: u64 = 1_000_000;

/// Upstream's error text when an evaluation runs past its limit.
pub const EXCEEDED: &str = "operation cancelled: actual cost limit exceeded";

/// The name of the function wrapped around every comprehension step.
pub(super) const STEP: &str = "@cost";

/// A budget several evaluations draw from (one request's CRD rules share one).
#[derive(Debug, Clone)]
pub struct CostBudget {
    remaining: u64,
}

impl CostBudget {
    pub fn new(limit: u64) -> CostBudget {
        CostBudget { remaining: limit }
    }

    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    pub fn exhausted(&self) -> bool {
        self.remaining == 0
    }

    pub(super) fn spend(&mut self, cost: u64) {
        self.remaining = self.remaining.saturating_sub(cost);
    }
}

thread_local! {
    /// The allowance left to the evaluation running on this thread. Evaluation is synchronous
    /// (no await inside), so one thread runs one evaluation at a time.
    static LEFT: Cell<u64> = const { Cell::new(u64::MAX) };
    static OVER: Cell<bool> = const { Cell::new(false) };
}

/// The meter of one evaluation; `finish` gives back what was left and whether it ran out.
pub(super) struct Meter {
    saved: (u64, bool),
}

impl Meter {
    pub(super) fn start(allowance: u64) -> Meter {
        let saved = (LEFT.replace(allowance), OVER.replace(false));
        Meter { saved }
    }

    pub(super) fn finish(self) -> (u64, bool) {
        let left = LEFT.replace(self.saved.0);
        let over = OVER.replace(self.saved.1);
        (left, over)
    }
}

/// Takes `cost` from the running evaluation's allowance; an error once it is exhausted.
pub(super) fn charge(cost: u64) -> Result<(), ExecutionError> {
    let left = LEFT.get();
    if cost > left {
        LEFT.set(0);
        OVER.set(true);
        return Err(ExecutionError::function_error(STEP, EXCEEDED));
    }
    LEFT.set(left - cost);
    Ok(())
}

/// The size a value costs to copy or scan: elements, entries, or tenths of bytes.
fn shallow_size(v: &CelValue) -> u64 {
    match v {
        CelValue::List(l) => l.len() as u64,
        CelValue::Map(m) => m.map.len() as u64,
        CelValue::String(s) => s.len() as u64 / 10,
        CelValue::Bytes(b) => b.len() as u64 / 10,
        _ => 0,
    }
}

/// What a step or a `+` built: its size, and for a list the size of its last element (the one
/// a `map` step just appended), so that building large strings in a loop is paid for.
pub(super) fn size_of(v: &CelValue) -> u64 {
    match v {
        CelValue::List(l) => (l.len() as u64).saturating_add(l.last().map_or(0, shallow_size)),
        other => shallow_size(other),
    }
}

/// `@cost(weight, step)`: charges one iteration and returns the step's value unchanged.
pub(super) fn step(weight: i64, value: CelValue) -> Result<CelValue, ExecutionError> {
    charge((weight.max(0) as u64).saturating_add(size_of(&value)))?;
    Ok(value)
}

/// Wraps `e` in `@cost(weight, e)`.
fn charged(weight: u64, e: IdedExpr) -> IdedExpr {
    let weight = IdedExpr {
        id: 0,
        expr: Expr::Literal(LiteralValue::Int(CelInt::from(weight as i64))),
    };
    IdedExpr {
        id: 0,
        expr: Expr::Call(CallExpr {
            func_name: STEP.to_string(),
            target: None,
            args: vec![weight, e],
        }),
    }
}

/// Wraps each comprehension's step, and each `+` (which concatenates strings and lists), in
/// `@cost`, and counts the nodes of `e` into `nodes`.
pub(super) fn instrument(e: IdedExpr, nodes: &mut u64) -> IdedExpr {
    *nodes += 1;
    let IdedExpr { id, expr } = e;
    let expr = match expr {
        Expr::Select(mut s) => {
            let operand = instrument(*s.operand, nodes);
            s.operand = Box::new(operand);
            Expr::Select(s)
        }
        Expr::Call(mut c) => {
            c.target = c.target.map(|t| Box::new(instrument(*t, nodes)));
            c.args = c.args.into_iter().map(|a| instrument(a, nodes)).collect();
            if c.func_name == ADD && c.target.is_none() && c.args.len() == 2 {
                return charged(
                    0,
                    IdedExpr {
                        id,
                        expr: Expr::Call(c),
                    },
                );
            }
            Expr::Call(c)
        }
        Expr::List(mut l) => {
            l.elements = l
                .elements
                .into_iter()
                .map(|x| instrument(x, nodes))
                .collect();
            Expr::List(l)
        }
        Expr::Map(mut m) => {
            for entry in &mut m.entries {
                instrument_entry(&mut entry.expr, nodes);
            }
            Expr::Map(m)
        }
        Expr::Struct(mut s) => {
            for entry in &mut s.entries {
                instrument_entry(&mut entry.expr, nodes);
            }
            Expr::Struct(s)
        }
        Expr::Comprehension(mut c) => {
            c.iter_range = instrument(std::mem::take(&mut c.iter_range), nodes);
            c.accu_init = instrument(std::mem::take(&mut c.accu_init), nodes);
            c.result = instrument(std::mem::take(&mut c.result), nodes);
            let mut body = 0;
            c.loop_cond = instrument(std::mem::take(&mut c.loop_cond), &mut body);
            let loop_step = instrument(std::mem::take(&mut c.loop_step), &mut body);
            *nodes += body;
            c.loop_step = charged(body, loop_step);
            Expr::Comprehension(c)
        }
        other => other,
    };
    IdedExpr { id, expr }
}

fn instrument_entry(entry: &mut EntryExpr, nodes: &mut u64) {
    let take = |e: &mut IdedExpr, nodes: &mut u64| {
        let owned = std::mem::take(e);
        *e = instrument(owned, nodes);
    };
    match entry {
        EntryExpr::MapEntry(me) => {
            take(&mut me.key, nodes);
            take(&mut me.value, nodes);
        }
        EntryExpr::StructField(f) => take(&mut f.value, nodes),
    }
}
