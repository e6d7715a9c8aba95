//! cel-go's two-variable comprehensions (`all(k, v, p)`, `exists(k, v, p)`,
//! `existsOne(k, v, p)`, `transformList(i, v, [filter,] e)`, `transformMap(k, v, [filter,] e)`),
//! which the `cel` crate's parser leaves as plain calls: each is rewritten after parsing into a
//! one-variable comprehension over `@entries(range)` (`[key or index, value]` pairs), with
//! the two variables replaced by `@kvN[0]` and `@kvN[1]`. `cel.bind` is expanded here too.

use std::collections::HashMap;
use std::sync::Arc;

use ::cel::common::ast::operators::{
    ADD, CONDITIONAL, EQUALS, INDEX, LOGICAL_AND, LOGICAL_NOT, LOGICAL_OR, NOT_STRICTLY_FALSE,
};
use ::cel::common::ast::{
    CallExpr, ComprehensionExpr, EntryExpr, Expr, IdedExpr, ListExpr, LiteralValue,
};
use ::cel::common::types::{CelBool, CelInt};
use ::cel::objects::{Key, Map};
use ::cel::{ExecutionError, Value as CelValue};

use super::cost;
use super::library::{Call, Overload, fail};

pub(super) const OVERLOADS: &[(&str, Overload)] = &[("@entries", entries), ("@to_map", to_map)];

const RESULT: &str = "@result";

fn node(expr: Expr) -> IdedExpr {
    IdedExpr { id: 0, expr }
}

fn ident(name: &str) -> IdedExpr {
    node(Expr::Ident(name.to_string()))
}

fn call(name: &str, args: Vec<IdedExpr>) -> IdedExpr {
    node(Expr::Call(CallExpr {
        func_name: name.to_string(),
        target: None,
        args,
    }))
}

fn int(i: i64) -> IdedExpr {
    node(Expr::Literal(LiteralValue::Int(CelInt::from(i))))
}

fn boolean(b: bool) -> IdedExpr {
    node(Expr::Literal(LiteralValue::Boolean(CelBool::from(b))))
}

fn list(elements: Vec<IdedExpr>) -> IdedExpr {
    node(Expr::List(ListExpr {
        elements,
        optional_indices: Vec::new(),
    }))
}

/// Replaces the free identifier `name` in `e` with `with`.
fn substitute(e: &mut IdedExpr, name: &str, with: &IdedExpr) {
    match &mut e.expr {
        Expr::Ident(n) if n == name => *e = with.clone(),
        Expr::Select(s) => substitute(&mut s.operand, name, with),
        Expr::Call(c) => {
            if let Some(t) = &mut c.target {
                substitute(t, name, with);
            }
            for a in &mut c.args {
                substitute(a, name, with);
            }
        }
        Expr::List(l) => l
            .elements
            .iter_mut()
            .for_each(|x| substitute(x, name, with)),
        Expr::Map(m) => m.entries.iter_mut().for_each(|en| match &mut en.expr {
            EntryExpr::MapEntry(me) => {
                substitute(&mut me.key, name, with);
                substitute(&mut me.value, name, with);
            }
            EntryExpr::StructField(f) => substitute(&mut f.value, name, with),
        }),
        Expr::Struct(s) => s.entries.iter_mut().for_each(|en| match &mut en.expr {
            EntryExpr::MapEntry(me) => {
                substitute(&mut me.key, name, with);
                substitute(&mut me.value, name, with);
            }
            EntryExpr::StructField(f) => substitute(&mut f.value, name, with),
        }),
        Expr::Comprehension(c) => {
            substitute(&mut c.iter_range, name, with);
            substitute(&mut c.accu_init, name, with);
            // A comprehension that binds `name` again shadows it in its body.
            if c.iter_var != name && c.accu_var != name {
                substitute(&mut c.loop_cond, name, with);
                substitute(&mut c.loop_step, name, with);
                substitute(&mut c.result, name, with);
            }
        }
        _ => {}
    }
}

/// Rewrites the two-variable comprehensions in `e`, innermost first.
pub(super) fn expand(mut e: IdedExpr, counter: &mut u32) -> IdedExpr {
    match &mut e.expr {
        Expr::Select(s) => {
            let operand = std::mem::take(s.operand.as_mut());
            *s.operand = expand(operand, counter);
        }
        Expr::Call(c) => {
            if let Some(t) = &mut c.target {
                let inner = std::mem::take(t.as_mut());
                **t = expand(inner, counter);
            }
            for a in &mut c.args {
                *a = expand(std::mem::take(a), counter);
            }
        }
        Expr::List(l) => {
            for x in &mut l.elements {
                *x = expand(std::mem::take(x), counter);
            }
        }
        Expr::Map(m) => m.entries.iter_mut().for_each(|en| match &mut en.expr {
            EntryExpr::MapEntry(me) => {
                me.key = expand(std::mem::take(&mut me.key), counter);
                me.value = expand(std::mem::take(&mut me.value), counter);
            }
            EntryExpr::StructField(f) => f.value = expand(std::mem::take(&mut f.value), counter),
        }),
        Expr::Comprehension(c) => {
            c.iter_range = expand(std::mem::take(&mut c.iter_range), counter);
            c.loop_step = expand(std::mem::take(&mut c.loop_step), counter);
            c.loop_cond = expand(std::mem::take(&mut c.loop_cond), counter);
            c.result = expand(std::mem::take(&mut c.result), counter);
        }
        _ => {}
    }
    rewrite(e, counter)
}

/// `cel.bind(x, init, e)`: `e` with `x` bound to `init`, as cel-go expands it (a
/// comprehension over no items whose accumulator is `x`).
fn bind(c: &CallExpr) -> Option<IdedExpr> {
    let target = c.target.as_deref()?;
    let named_cel = matches!(&target.expr, Expr::Ident(n) if n == "cel");
    if c.func_name != "bind" || !named_cel || c.args.len() != 3 {
        return None;
    }
    let Expr::Ident(var) = &c.args[0].expr else {
        return None;
    };
    Some(node(Expr::Comprehension(Box::new(ComprehensionExpr {
        iter_range: list(vec![]),
        iter_var: "#unused".to_string(),
        iter_var2: None,
        accu_var: var.clone(),
        accu_init: c.args[1].clone(),
        loop_cond: boolean(false),
        loop_step: ident(var),
        result: c.args[2].clone(),
    }))))
}

fn rewrite(e: IdedExpr, counter: &mut u32) -> IdedExpr {
    let Expr::Call(c) = &e.expr else { return e };
    if let Some(bound) = bind(c) {
        return bound;
    }
    let two_vars = matches!(
        (c.func_name.as_str(), c.args.len()),
        ("all" | "exists" | "existsOne" | "exists_one", 3)
            | ("transformList" | "transformMap", 3 | 4)
    );
    let (Some(target), true) = (&c.target, two_vars) else {
        return e;
    };
    let (Expr::Ident(k), Expr::Ident(v)) = (&c.args[0].expr, &c.args[1].expr) else {
        return e;
    };
    *counter += 1;
    let kv = format!("@kv{counter}");
    let key = call(INDEX, vec![ident(&kv), int(0)]);
    let value = call(INDEX, vec![ident(&kv), int(1)]);
    let bind = |mut x: IdedExpr| {
        substitute(&mut x, k, &key);
        substitute(&mut x, v, &value);
        x
    };
    let mut rest: Vec<IdedExpr> = c.args[2..].iter().cloned().map(bind).collect();
    let range = call("@entries", vec![(**target).clone()]);
    let result = ident(RESULT);
    let (init, cond, step, result) = match c.func_name.as_str() {
        "all" => (
            boolean(true),
            call(NOT_STRICTLY_FALSE, vec![ident(RESULT)]),
            call(LOGICAL_AND, vec![ident(RESULT), rest.remove(0)]),
            result,
        ),
        "exists" => (
            boolean(false),
            call(
                NOT_STRICTLY_FALSE,
                vec![call(LOGICAL_NOT, vec![ident(RESULT)])],
            ),
            call(LOGICAL_OR, vec![ident(RESULT), rest.remove(0)]),
            result,
        ),
        "existsOne" | "exists_one" => (
            int(0),
            boolean(true),
            call(
                CONDITIONAL,
                vec![
                    rest.remove(0),
                    call(ADD, vec![ident(RESULT), int(1)]),
                    ident(RESULT),
                ],
            ),
            call(EQUALS, vec![ident(RESULT), int(1)]),
        ),
        name => {
            let produced = rest.pop().unwrap_or_default();
            let item = match name {
                "transformList" => produced,
                _ => list(vec![key.clone(), produced]),
            };
            let append = call(ADD, vec![ident(RESULT), list(vec![item])]);
            let step = match rest.pop() {
                Some(filter) => call(CONDITIONAL, vec![filter, append, ident(RESULT)]),
                None => append,
            };
            let result = match name {
                "transformList" => result,
                _ => call("@to_map", vec![result]),
            };
            (list(vec![]), boolean(true), step, result)
        }
    };
    node(Expr::Comprehension(Box::new(ComprehensionExpr {
        iter_range: range,
        iter_var: kv,
        iter_var2: None,
        accu_var: RESULT.to_string(),
        accu_init: init,
        loop_cond: cond,
        loop_step: step,
        result,
    })))
}

type Out = Option<Result<CelValue, ExecutionError>>;

fn pair(k: CelValue, v: CelValue) -> CelValue {
    CelValue::List(Arc::new(vec![k, v]))
}

/// `@entries(list)`: `[index, item]` pairs; `@entries(map)`: `[key, value]` pairs by key.
fn entries(c: &Call) -> Out {
    let out = match c.arg(0)? {
        CelValue::List(l) => l
            .iter()
            .enumerate()
            .map(|(i, x)| pair(CelValue::Int(i as i64), x.clone()))
            .collect(),
        CelValue::Map(m) => {
            let mut keyed: Vec<(&Key, &CelValue)> = m.map.iter().collect();
            keyed.sort_by(|a, b| a.0.cmp(b.0));
            keyed
                .into_iter()
                .map(|(k, x)| pair(CelValue::from(k), x.clone()))
                .collect()
        }
        _ => return None,
    };
    let out: Vec<CelValue> = out;
    Some(cost::charge(out.len() as u64).map(|_| CelValue::List(Arc::new(out))))
}

/// `@to_map(pairs)`: the map `transformMap` builds.
fn to_map(c: &Call) -> Out {
    let CelValue::List(pairs) = c.arg(0)? else {
        return None;
    };
    let mut map: HashMap<Key, CelValue> = HashMap::with_capacity(pairs.len());
    for p in pairs.iter() {
        let CelValue::List(kv) = p else {
            return Some(Err(ExecutionError::NoSuchOverload));
        };
        let key = match kv.first() {
            Some(CelValue::String(s)) => Key::String(s.clone()),
            Some(CelValue::Int(i)) => Key::Int(*i),
            Some(CelValue::UInt(u)) => Key::Uint(*u),
            Some(CelValue::Bool(b)) => Key::Bool(*b),
            _ => return Some(Err(fail("unsupported map key"))),
        };
        map.insert(key, kv.get(1).cloned().unwrap_or(CelValue::Null));
    }
    Some(Ok(CelValue::Map(Map { map: Arc::new(map) })))
}

#[cfg(test)]
mod tests {
    use super::super::library::testing::holds;

    #[test]
    fn two_variable_comprehensions_as_cel_go() {
        holds("[10, 20].all(i, v, v == (i + 1) * 10)");
        holds("{'a': 1, 'b': 2}.all(k, v, k.size() == 1 && v > 0)");
        holds("{'a': 1, 'b': 2}.exists(k, v, k == 'b' && v == 2)");
        holds("![1, 2].exists(i, v, i == v)");
        holds("[5, 5, 6].existsOne(i, v, v == 6)");
        holds("[1, 2, 3].transformList(i, v, i * v) == [0, 2, 6]");
        holds("[1, 2, 3].transformList(i, v, v > 1, v * 10) == [20, 30]");
        holds("{'a': 1, 'b': 2}.transformMap(k, v, v + 1) == {'a': 2, 'b': 3}");
        holds("{'a': 1, 'b': 2}.transformMap(k, v, v > 1, k) == {'b': 'b'}");
        // Shadowing: an inner comprehension rebinding `v` sees its own.
        holds("[1, 2].all(i, v, [7].all(v, v == 7) && v > 0)");
        holds("[[1], [2]].all(i, v, v.all(j, w, w == i + 1))");
        holds("cel.bind(x, [1, 2, 3], x.size() == 3 && x[0] == 1)");
        holds("cel.bind(a, 2, cel.bind(b, a * 3, b == 6))");
    }
}
