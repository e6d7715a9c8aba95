//! CEL as Kubernetes uses it, on the `cel` crate (parser and interpreter): expressions compiled
//! once (syntax, optional syntax, declared variables), evaluated over JSON with Kubernetes' CEL
//! libraries and a bounded cost. Admission policies, webhook matchConditions and the
//! `x-kubernetes-validations` of custom resources ([`rules`]) all evaluate here.
//!
//! What the `cel` crate cannot do, and so kapi does not: static type checking (a type error is
//! found when the expression runs, not when it is stored), static cost estimation, the
//! `optMap`/`optFlatMap` macros. Two-variable comprehensions and `cel.bind`, which its parser
//! does not expand, are rewritten here ([`comprehensions`]), as are the `Object{...}` and
//! `JSONPatch{...}` literals of mutations, into map literals ([`objects`]).

mod authz;
mod comprehensions;
mod cost;
mod format;
mod library;
mod lists;
mod net;
mod objects;
mod quantity;
pub mod rules;
mod semver;
mod strings;
mod url;

use ::cel::common::ast::{EntryExpr, Expr, IdedExpr};
use ::cel::parser::Parser;
use ::cel::{Context, ExecutionError, Value as CelValue};
use serde_json::Value;

pub use self::authz::{Authorizer, RequestResource};
pub use self::cost::{CostBudget, PER_CALL_LIMIT};
pub use self::objects::{JSON_PATCH_TYPE, OBJECT_TYPE};

/// The longest expression compiled. Upstream bounds expressions by their estimated cost; the
/// `cel` crate has no estimator, so the text is bounded instead (the largest CRD rules seen in
/// the wild are a few KiB).
pub const MAX_EXPRESSION_BYTES: usize = 64 * 1024;

/// The deepest nesting the parser accepts (upstream's cel-go default is 250; the crate's
/// recursive-descent parser uses the stack, which is smaller on monoio's cores).
const MAX_PARSE_DEPTH: u16 = 96;

/// The most operators (`+`, `&&`, `.`, `[`, ...) outside string literals. The parser and the
/// interpreter recurse once per operator of a chain (`a + b + c ...` is as deep as it is
/// long), and a stack overflow aborts the process: this bounds the parse before it starts.
const MAX_OPERATORS: usize = 1000;

/// The deepest expression tree compiled: the interpreter recurses once per level (twice
/// where the cost meter wraps a node), in frames of up to tens of KiB in debug builds.
const MAX_TREE_DEPTH: usize = 100;

/// The stack compilation and evaluation run on (a segment of its own when the thread's is
/// short, as on a core's 2 MiB): enough for [`MAX_OPERATORS`] and [`MAX_TREE_DEPTH`].
const STACK_BYTES: usize = 16 << 20;

/// Below this much stack left, evaluation moves to a segment of [`STACK_BYTES`].
const STACK_RED_ZONE: usize = 8 << 20;

/// Runs `f` with at least [`STACK_RED_ZONE`] of stack.
pub fn with_stack<R>(f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(STACK_RED_ZONE, STACK_BYTES, f)
}

/// The operators of `source` outside its string literals (a cheap bound on its depth).
fn operators(source: &str) -> usize {
    let mut count = 0;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for ch in source.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if ch == '\\' {
                    escaped = true;
                } else if ch == q {
                    quote = None;
                }
            }
            None => match ch {
                '\'' | '"' => quote = Some(ch),
                '+' | '-' | '*' | '/' | '%' | '<' | '>' | '=' | '!' | '&' | '|' | '?' | '.'
                | '[' | '(' => count += 1,
                _ => {}
            },
        }
    }
    count
}

/// The depth of an expression tree.
fn depth(e: &IdedExpr) -> usize {
    let children: Vec<&IdedExpr> = match &e.expr {
        Expr::Select(s) => vec![&s.operand],
        Expr::Call(c) => c.target.iter().map(|t| &**t).chain(&c.args).collect(),
        Expr::List(l) => l.elements.iter().collect(),
        Expr::Map(m) => m
            .entries
            .iter()
            .flat_map(|en| match &en.expr {
                EntryExpr::MapEntry(me) => vec![&me.key, &me.value],
                EntryExpr::StructField(f) => vec![&f.value],
            })
            .collect(),
        Expr::Struct(s) => s
            .entries
            .iter()
            .flat_map(|en| match &en.expr {
                EntryExpr::MapEntry(me) => vec![&me.key, &me.value],
                EntryExpr::StructField(f) => vec![&f.value],
            })
            .collect(),
        Expr::Comprehension(c) => vec![
            &c.iter_range,
            &c.accu_init,
            &c.loop_cond,
            &c.loop_step,
            &c.result,
        ],
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => vec![],
    };
    1 + children.into_iter().map(depth).max().unwrap_or(0)
}

/// A compiled expression.
pub struct Compiled {
    expr: IdedExpr,
    /// Static cost of one evaluation outside comprehensions: its number of nodes.
    nodes: u64,
}

/// Upstream's wording: `compilation failed: ERROR: <input>:<line>:<col>: <why>`.
fn compile_error(why: &str) -> String {
    format!("compilation failed: ERROR: <input>:1:1: {why}")
}

/// Compiles `source` with `declared` as its variables.
pub fn compile(source: &str, declared: &[&str]) -> Result<Compiled, String> {
    if source.len() > MAX_EXPRESSION_BYTES {
        return Err(compile_error(&format!(
            "expression is longer than {MAX_EXPRESSION_BYTES} bytes"
        )));
    }
    if operators(source) > MAX_OPERATORS {
        return Err(compile_error(&format!(
            "expression has more than {MAX_OPERATORS} operators"
        )));
    }
    with_stack(|| compile_bounded(source, declared))
}

fn compile_bounded(source: &str, declared: &[&str]) -> Result<Compiled, String> {
    let expr = Parser::new()
        .enable_optional_syntax(true)
        .max_recursion_depth(MAX_PARSE_DEPTH)
        .parse(source)
        .map_err(|e| {
            let text = e.to_string();
            let text = text.lines().next().unwrap_or("").to_string();
            format!("compilation failed: ERROR: <input>: Syntax error: {text}")
        })?;
    if depth(&expr) > MAX_TREE_DEPTH {
        return Err(compile_error(&format!(
            "expression nests more than {MAX_TREE_DEPTH} levels deep"
        )));
    }
    let mut expr = expr;
    objects::rewrite(&mut expr, declared).map_err(|why| compile_error(&why))?;
    let expr = comprehensions::expand(expr, &mut 0);
    let mut bound = Vec::new();
    if let Some(name) = undeclared(&expr, declared, &mut bound) {
        return Err(compile_error(&format!(
            "undeclared reference to '{name}' (in container '')"
        )));
    }
    let mut nodes = 0;
    let expr = cost::instrument(expr, &mut nodes);
    Ok(Compiled { expr, nodes })
}

/// The first variable `e` names that is neither declared nor bound by a macro around it.
fn undeclared<'e>(e: &'e IdedExpr, declared: &[&str], bound: &mut Vec<&'e str>) -> Option<&'e str> {
    let walk = |x: &'e IdedExpr, bound: &mut Vec<&'e str>| undeclared(x, declared, bound);
    match &e.expr {
        Expr::Ident(name) => {
            let known = name.starts_with('@')
                || declared.contains(&name.as_str())
                || bound.contains(&name.as_str())
                || library::NAMESPACES.contains(&name.as_str());
            (!known).then_some(name.as_str())
        }
        Expr::Select(s) => walk(&s.operand, bound),
        Expr::Call(c) => {
            if let Some(t) = &c.target
                && let Some(n) = walk(t, bound)
            {
                return Some(n);
            }
            c.args.iter().find_map(|a| walk(a, bound))
        }
        Expr::List(l) => l.elements.iter().find_map(|x| walk(x, bound)),
        Expr::Map(m) => m.entries.iter().find_map(|entry| match &entry.expr {
            EntryExpr::MapEntry(me) => walk(&me.key, bound).or_else(|| walk(&me.value, bound)),
            EntryExpr::StructField(f) => walk(&f.value, bound),
        }),
        Expr::Struct(s) => s.entries.iter().find_map(|entry| match &entry.expr {
            EntryExpr::MapEntry(me) => walk(&me.key, bound).or_else(|| walk(&me.value, bound)),
            EntryExpr::StructField(f) => walk(&f.value, bound),
        }),
        Expr::Comprehension(c) => {
            if let Some(n) = walk(&c.iter_range, bound).or_else(|| walk(&c.accu_init, bound)) {
                return Some(n);
            }
            let depth = bound.len();
            bound.push(&c.iter_var);
            if let Some(v2) = &c.iter_var2 {
                bound.push(v2);
            }
            bound.push(&c.accu_var);
            let found = walk(&c.loop_cond, bound)
                .or_else(|| walk(&c.loop_step, bound))
                .or_else(|| walk(&c.result, bound));
            bound.truncate(depth);
            found
        }
        Expr::Literal(_) | Expr::Unspecified => None,
    }
}

/// Whether `e` names the variable `name` anywhere (`oldSelf` makes a rule a transition rule).
pub fn mentions(c: &Compiled, name: &str) -> bool {
    fn walk(e: &IdedExpr, name: &str) -> bool {
        match &e.expr {
            Expr::Ident(n) => n == name,
            Expr::Select(s) => walk(&s.operand, name),
            Expr::Call(c) => {
                c.target.as_ref().is_some_and(|t| walk(t, name))
                    || c.args.iter().any(|a| walk(a, name))
            }
            Expr::List(l) => l.elements.iter().any(|x| walk(x, name)),
            Expr::Map(m) => m.entries.iter().any(|entry| match &entry.expr {
                EntryExpr::MapEntry(me) => walk(&me.key, name) || walk(&me.value, name),
                EntryExpr::StructField(f) => walk(&f.value, name),
            }),
            Expr::Struct(s) => s.entries.iter().any(|entry| match &entry.expr {
                EntryExpr::MapEntry(me) => walk(&me.key, name) || walk(&me.value, name),
                EntryExpr::StructField(f) => walk(&f.value, name),
            }),
            Expr::Comprehension(c) => {
                walk(&c.iter_range, name)
                    || walk(&c.accu_init, name)
                    || walk(&c.loop_cond, name)
                    || walk(&c.loop_step, name)
                    || walk(&c.result, name)
            }
            Expr::Literal(_) | Expr::Unspecified => false,
        }
    }
    walk(&c.expr, name)
}

/// The values an expression is evaluated over.
#[derive(Default, Clone)]
pub struct Activation {
    vars: Vec<(&'static str, CelValue)>,
}

impl Activation {
    /// Binds `name` to a JSON value (null when absent, as upstream binds a missing object).
    pub fn bind(&mut self, name: &'static str, value: Option<&Value>) {
        let v = value.map(json_to_cel).unwrap_or(CelValue::Null);
        self.vars.push((name, v));
    }

    /// Binds `name` to an evaluated value (`variables`, `oldSelf` as an optional).
    pub fn bind_value(&mut self, name: &'static str, value: CelValue) {
        self.vars.push((name, value));
    }
}

/// A JSON value as CEL sees it: integers are `int` (upstream's `integer` is int64; the `cel`
/// crate's own conversion makes positive ones `uint`, which int arithmetic refuses).
pub fn json_to_cel(v: &Value) -> CelValue {
    match v {
        Value::Null => CelValue::Null,
        Value::Bool(b) => CelValue::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => CelValue::Int(i),
            (None, Some(u)) => CelValue::UInt(u),
            _ => CelValue::Float(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => CelValue::String(std::sync::Arc::new(s.clone())),
        Value::Array(items) => {
            CelValue::List(std::sync::Arc::new(items.iter().map(json_to_cel).collect()))
        }
        Value::Object(m) => {
            let entries: std::collections::HashMap<::cel::objects::Key, CelValue> = m
                .iter()
                .map(|(k, x)| (k.clone().into(), json_to_cel(x)))
                .collect();
            CelValue::Map(::cel::objects::Map {
                map: std::sync::Arc::new(entries),
            })
        }
    }
}

thread_local! {
    /// The functions of Kubernetes' CEL libraries, registered once per thread (a `Context`
    /// is not `Sync`); each evaluation opens a scope over it for its variables.
    static BASE: Context<'static> = library::base_context();
}

impl Compiled {
    /// The expression's value, within upstream's per-call cost limit.
    pub fn eval(&self, activation: &Activation) -> Result<CelValue, String> {
        let mut budget = CostBudget::new(PER_CALL_LIMIT);
        self.eval_within(activation, &mut budget)
    }

    /// The expression's value; its cost is taken from `budget` (at most [`PER_CALL_LIMIT`]
    /// per call). Exhausting it is an error whose text starts with upstream's
    /// `operation cancelled: actual cost limit exceeded`.
    pub fn eval_within(
        &self,
        activation: &Activation,
        budget: &mut CostBudget,
    ) -> Result<CelValue, String> {
        let allowance = budget.remaining().min(PER_CALL_LIMIT);
        if self.nodes > allowance {
            budget.spend(allowance.saturating_add(1));
            return Err(cost::EXCEEDED.to_string());
        }
        let guard = cost::Meter::start(allowance - self.nodes);
        let result = with_stack(|| {
            BASE.with(|base| {
                let mut scope = base.new_inner_scope();
                for (name, v) in &activation.vars {
                    scope.add_variable_from_value(*name, v.clone());
                }
                CelValue::resolve(&self.expr, &scope)
            })
        });
        let (left, exceeded) = guard.finish();
        budget.spend(allowance - left);
        if exceeded {
            budget.spend(1);
            return Err(cost::EXCEEDED.to_string());
        }
        result.map_err(|e| error_text(&e))
    }

    /// The expression's value, which must be a bool.
    pub fn eval_bool(&self, activation: &Activation) -> Result<bool, String> {
        match self.eval(activation)? {
            CelValue::Bool(b) => Ok(b),
            other => Err(format!("expected a bool, got {}", type_name(&other))),
        }
    }

    /// The expression's value, which must be a string.
    pub fn eval_string(&self, activation: &Activation) -> Result<String, String> {
        match self.eval(activation)? {
            CelValue::String(s) => Ok(s.to_string()),
            other => Err(format!("expected a string, got {}", type_name(&other))),
        }
    }
}

/// cel-go's wording of the interpreter's errors (`no such key: x`, `division by zero`, ...).
pub fn error_text(e: &ExecutionError) -> String {
    match e {
        ExecutionError::FunctionError { message, .. } => message.clone(),
        ExecutionError::NoSuchKey(k) => format!("no such key: {k}"),
        ExecutionError::NoSuchOverload
        | ExecutionError::UnsupportedTargetType { .. }
        | ExecutionError::NotSupportedAsMethod { .. }
        | ExecutionError::UnexpectedType { .. }
        | ExecutionError::UnsupportedBinaryOperator(..)
        | ExecutionError::ValuesNotComparable(..)
        | ExecutionError::UnsupportedIndex(..) => "no such overload".to_string(),
        ExecutionError::DivisionByZero(_) => "division by zero".to_string(),
        ExecutionError::RemainderByZero(_) => "modulus by zero".to_string(),
        ExecutionError::Overflow(..) => "integer overflow".to_string(),
        ExecutionError::IndexOutOfBounds(i) => match i {
            CelValue::Int(i) => format!("index out of bounds: {i}"),
            other => format!("index out of bounds: {other:?}"),
        },
        ExecutionError::UndeclaredReference(name) => {
            format!("no such attribute: {name}")
        }
        other => other.to_string(),
    }
}

/// CEL's name of a value's type.
pub fn type_name(v: &CelValue) -> &'static str {
    match v {
        CelValue::Bool(_) => "bool",
        CelValue::Int(_) => "int",
        CelValue::UInt(_) => "uint",
        CelValue::Float(_) => "double",
        CelValue::String(_) => "string",
        CelValue::Bytes(_) => "bytes",
        CelValue::Null => "null_type",
        CelValue::List(_) => "list",
        CelValue::Map(_) => "map",
        _ => "value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const VARS: &[&str] = &["object", "oldObject"];

    #[test]
    fn expressions_compile_against_their_declared_variables() {
        assert!(compile("object.spec.replicas <= 5", VARS).is_ok());
        assert!(
            compile(
                "object.spec.containers.all(c, c.image.startsWith('r/'))",
                VARS
            )
            .is_ok()
        );
        let err = compile("xxxx", VARS).err().unwrap();
        assert!(err.contains("undeclared reference to 'xxxx'"), "{err}");
        let err = compile("Invalid_Value!", VARS).err().unwrap();
        assert!(err.starts_with("compilation failed: ERROR:"), "{err}");
        let long = "1 + ".repeat(MAX_EXPRESSION_BYTES / 4) + "1";
        assert!(compile(&long, VARS).is_err());
    }

    /// A core's thread has a 2 MiB stack and an overflow aborts the process: deep expressions
    /// are refused or evaluated on a stack of their own, never overflow it.
    #[test]
    fn deep_expressions_are_refused_or_evaluated_on_a_short_stack() {
        let run = || {
            let chain = |n: usize| "1 + ".repeat(n) + "1";
            let c = compile(&chain(MAX_TREE_DEPTH - 2), &[]).unwrap();
            let sum = c.eval(&Activation::default()).unwrap();
            assert_eq!(sum, CelValue::Int(MAX_TREE_DEPTH as i64 - 1));
            let err = compile(&chain(MAX_TREE_DEPTH + 1), &[]).err().unwrap();
            assert!(err.contains("nests more than 100 levels"), "{err}");
            let err = compile(&chain(MAX_OPERATORS + 1), &[]).err().unwrap();
            assert!(err.contains("more than 1000 operators"), "{err}");
            let nested = "(".repeat(500) + "1" + &")".repeat(500);
            assert!(compile(&nested, &[]).is_err());
            // Operators inside strings do not count.
            let text = format!("'{}' != ''", "+.".repeat(2000));
            assert!(compile(&text, &[]).is_ok());
        };
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(run)
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn expressions_see_the_objects_as_json() {
        let mut a = Activation::default();
        a.bind(
            "object",
            Some(&json!({"spec": {"replicas": 7, "containers": [{"image": "x"}]}})),
        );
        a.bind("oldObject", None);
        let c = compile("object.spec.replicas <= 5", VARS).unwrap();
        assert_eq!(c.eval_bool(&a), Ok(false));
        let c = compile("oldObject == null && has(object.spec.replicas)", VARS).unwrap();
        assert_eq!(c.eval_bool(&a), Ok(true));
        let c = compile("'replicas: ' + string(object.spec.replicas)", VARS).unwrap();
        assert_eq!(c.eval_string(&a).unwrap(), "replicas: 7");
        let c = compile(
            "object.spec.replicas + 1 == 8 && object.spec.replicas * 2 == 14",
            VARS,
        );
        assert_eq!(c.unwrap().eval_bool(&a), Ok(true));
        let c = compile("object.spec.missing == 1", VARS).unwrap();
        assert_eq!(c.eval(&a).unwrap_err(), "no such key: missing");
    }

    #[test]
    fn optional_syntax_is_enabled() {
        let mut a = Activation::default();
        a.bind("object", Some(&json!({"spec": {"a": 1}})));
        let c = compile("object.spec.?b.orValue(5) == 5", VARS).unwrap();
        assert_eq!(c.eval_bool(&a), Ok(true));
        let c = compile("object.?spec.?a.hasValue()", VARS).unwrap();
        assert_eq!(c.eval_bool(&a), Ok(true));
        let c = compile(
            "optional.of(1).value() == 1 && !optional.none().hasValue()",
            VARS,
        );
        assert_eq!(c.unwrap().eval_bool(&a), Ok(true));
    }

    #[test]
    fn a_runaway_comprehension_exhausts_the_cost_budget() {
        let a = Activation::default();
        // 1000^3 iterations: far beyond the per-call limit.
        let c = compile(
            "[0,1,2,3,4,5,6,7,8,9].map(a, [0,1,2,3,4,5,6,7,8,9].map(b, [0,1,2,3,4,5,6,7,8,9])).all(x, x.all(y, y.all(z, z >= 0)))",
            VARS,
        )
        .unwrap();
        assert_eq!(c.eval_bool(&a), Ok(true));
        let src = "[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, [1,2,3,4,5,6,7,8,9,10].all(d, [1,2,3,4,5,6,7,8,9,10].all(e, [1,2,3,4,5,6,7,8,9,10].all(f, [1,2,3,4,5,6,7,8,9,10].all(g, g > 0)))))))";
        let c = compile(src, VARS).unwrap();
        let err = c.eval(&a).unwrap_err();
        assert!(
            err.starts_with("operation cancelled: actual cost limit exceeded"),
            "{err}"
        );
        // Concatenation in a loop pays for what it builds.
        let c = compile(
            "[1,2,3,4,5,6,7,8,9,10].map(x, [1,2,3,4,5,6,7,8,9,10].map(y, [1,2,3,4,5,6,7,8,9,10].map(z, s + s + s + s))).size() > 0",
            &["s"],
        )
        .unwrap();
        let mut big = Activation::default();
        big.bind("s", Some(&Value::String("x".repeat(100_000))));
        let err = c.eval(&big).unwrap_err();
        assert!(err.starts_with("operation cancelled"), "{err}");
        let mut budget = CostBudget::new(100);
        let c = compile("[1,2,3].all(x, x > 0)", VARS).unwrap();
        assert_eq!(c.eval_within(&a, &mut budget), Ok(CelValue::Bool(true)));
        assert!(budget.remaining() < 100);
    }
}
