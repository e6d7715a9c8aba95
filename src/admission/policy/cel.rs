//! CEL as admission policies use it, on the `cel` crate (parser and interpreter): an
//! expression is compiled once its syntax parses and every variable it names is declared
//! (upstream's type check, which names the first undeclared reference); it is evaluated over
//! the request's objects as JSON.

use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use cel::{Context, Program, Value as CelValue};
use serde_json::Value;

/// The variables a validating policy's expressions may use.
pub const POLICY_VARIABLES: &[&str] = &[
    "object",
    "oldObject",
    "request",
    "params",
    "namespaceObject",
    "authorizer",
    "variables",
];

/// The variables an admission webhook's `matchConditions` may use.
pub const WEBHOOK_VARIABLES: &[&str] = &["object", "oldObject", "request", "authorizer"];

/// A compiled expression.
pub struct Compiled {
    program: Program,
}

/// Upstream's wording: `compilation failed: ERROR: <input>:<line>:<col>: <why>`.
fn compile_error(why: &str) -> String {
    format!("compilation failed: ERROR: <input>:1:1: {why}")
}

/// Compiles `source` with `declared` as its variables.
pub fn compile(source: &str, declared: &[&str]) -> Result<Compiled, String> {
    let program = Program::compile(source).map_err(|e| {
        let text = e.to_string();
        let text = text.lines().next().unwrap_or("").to_string();
        format!("compilation failed: ERROR: <input>: Syntax error: {text}")
    })?;
    let mut bound = Vec::new();
    if let Some(name) = undeclared(program.expression(), declared, &mut bound) {
        return Err(compile_error(&format!(
            "undeclared reference to '{name}' (in container '')"
        )));
    }
    Ok(Compiled { program })
}

/// The first variable `e` names that is neither declared nor bound by a macro around it.
fn undeclared<'e>(e: &'e IdedExpr, declared: &[&str], bound: &mut Vec<&'e str>) -> Option<&'e str> {
    let walk = |x: &'e IdedExpr, bound: &mut Vec<&'e str>| undeclared(x, declared, bound);
    match &e.expr {
        Expr::Ident(name) => {
            let known = name.starts_with('@')
                || declared.contains(&name.as_str())
                || bound.contains(&name.as_str());
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

/// The values an expression is evaluated over.
#[derive(Default, Clone)]
pub struct Activation {
    vars: Vec<(&'static str, CelValue)>,
}

impl Activation {
    /// Binds `name` to a JSON value (null when absent, as upstream binds a missing object).
    pub fn bind(&mut self, name: &'static str, value: Option<&Value>) {
        let v = value
            .and_then(|v| cel::to_value(v).ok())
            .unwrap_or(CelValue::Null);
        self.vars.push((name, v));
    }

    /// Binds `name` to an evaluated value (`variables`).
    pub fn bind_value(&mut self, name: &'static str, value: CelValue) {
        self.vars.push((name, value));
    }

    fn context(&self) -> Context<'_> {
        let mut ctx = Context::default();
        for (name, v) in &self.vars {
            ctx.add_variable_from_value(*name, v.clone());
        }
        ctx
    }
}

impl Compiled {
    /// The expression's value.
    pub fn eval(&self, activation: &Activation) -> Result<CelValue, String> {
        self.program
            .execute(&activation.context())
            .map_err(|e| e.to_string())
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

fn type_name(v: &CelValue) -> &'static str {
    match v {
        CelValue::Bool(_) => "bool",
        CelValue::Int(_) => "int",
        CelValue::UInt(_) => "uint",
        CelValue::Float(_) => "double",
        CelValue::String(_) => "string",
        CelValue::Null => "null",
        CelValue::List(_) => "list",
        CelValue::Map(_) => "map",
        _ => "value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expressions_compile_against_their_declared_variables() {
        assert!(compile("object.spec.replicas <= 5", POLICY_VARIABLES).is_ok());
        assert!(
            compile(
                "object.spec.containers.all(c, c.image.startsWith('registry/'))",
                POLICY_VARIABLES
            )
            .is_ok()
        );
        let err = compile("xxxx", POLICY_VARIABLES).err().unwrap();
        assert!(err.contains("undeclared reference to 'xxxx'"), "{err}");
        let err = compile("Invalid_Value!", POLICY_VARIABLES).err().unwrap();
        assert!(err.starts_with("compilation failed: ERROR:"), "{err}");
    }

    #[test]
    fn expressions_see_the_objects_as_json() {
        let mut a = Activation::default();
        a.bind(
            "object",
            Some(&json!({"spec": {"replicas": 7, "containers": [{"image": "x"}]}})),
        );
        a.bind("oldObject", None);
        let c = compile("object.spec.replicas <= 5", POLICY_VARIABLES).unwrap();
        assert_eq!(c.eval_bool(&a), Ok(false));
        let c = compile(
            "oldObject == null && has(object.spec.replicas)",
            POLICY_VARIABLES,
        )
        .unwrap();
        assert_eq!(c.eval_bool(&a), Ok(true));
        let c = compile(
            "'replicas: ' + string(object.spec.replicas)",
            POLICY_VARIABLES,
        )
        .unwrap();
        assert_eq!(c.eval_string(&a).unwrap(), "replicas: 7");
    }
}
