//! The one place the CEL function table is built: the `cel` crate's standard functions plus
//! Kubernetes' libraries (`k8s.io/apiserver/pkg/cel/library`). The crate keys functions by
//! name alone, so each name gets one entry that tries its overloads (string, list, quantity,
//! ...) in turn, as cel-go picks an overload by the argument types at run time.

use std::collections::BTreeMap;

use ::cel::extractors::Arguments;
use ::cel::{Context, ExecutionError, FunctionContext, Value as CelValue};

use super::{
    authz, comprehensions, cost, format, lists, net, objects, quantity, semver, strings, url,
};

/// Identifiers that name a function namespace (`format.named(...)`, `ip.isCanonical(...)`),
/// never a variable.
pub(super) const NAMESPACES: &[&str] =
    &["format", "sets", "strings", "ip", "optional", "jsonpatch"];

/// A call as a library function sees it: the receiver (for `x.f(...)`) and the arguments.
pub(super) struct Call {
    pub this: Option<CelValue>,
    pub args: Vec<CelValue>,
}

impl Call {
    /// The receiver, or the first argument of a global call.
    pub fn arg(&self, i: usize) -> Option<&CelValue> {
        self.args.get(i)
    }

    pub fn arity(&self) -> usize {
        self.args.len()
    }
}

/// One overload: `None` when the call's types are not its own.
pub(super) type Overload = fn(&Call) -> Option<Result<CelValue, ExecutionError>>;

/// A library error with cel-go's text (shown as is by [`super::error_text`]).
pub(super) fn fail(message: impl Into<String>) -> ExecutionError {
    ExecutionError::FunctionError {
        function: String::new(),
        message: message.into(),
    }
}

/// Every library's overloads, by function name.
fn overloads() -> BTreeMap<&'static str, Vec<Overload>> {
    let mut table: BTreeMap<&'static str, Vec<Overload>> = BTreeMap::new();
    for (name, f) in lists::OVERLOADS
        .iter()
        .chain(strings::OVERLOADS)
        .chain(quantity::OVERLOADS)
        .chain(net::OVERLOADS)
        .chain(url::OVERLOADS)
        .chain(format::OVERLOADS)
        .chain(comprehensions::OVERLOADS)
        .chain(semver::OVERLOADS)
        .chain(authz::OVERLOADS)
        .chain(objects::OVERLOADS)
    {
        table.entry(name).or_default().push(*f);
    }
    table
}

fn dispatch(
    overloads: Vec<Overload>,
) -> impl Fn(&FunctionContext, Arguments) -> Result<CelValue, ExecutionError> + Send + Sync + 'static
{
    move |ftx, Arguments(args)| {
        let this = match &ftx.this {
            Some(t) => Some(CelValue::try_from(t.as_ref())?),
            None => None,
        };
        let call = Call {
            this,
            args: args.to_vec(),
        };
        for f in &overloads {
            if let Some(result) = f(&call) {
                return result;
            }
        }
        Err(ExecutionError::NoSuchOverload)
    }
}

/// The base context: every library function, no variables.
pub(super) fn base_context() -> Context<'static> {
    let mut ctx = Context::default();
    ctx.add_function(cost::STEP, cost::step);
    for (name, fs) in overloads() {
        ctx.add_function(name, dispatch(fs));
    }
    ctx
}

#[cfg(test)]
pub(super) mod testing {
    use super::super::{Activation, compile};
    use ::cel::Value as CelValue;

    /// Evaluates `src` with no variables.
    pub fn eval(src: &str) -> Result<CelValue, String> {
        compile(src, &[])?.eval(&Activation::default())
    }

    /// Asserts that `src` evaluates to true.
    #[track_caller]
    pub fn holds(src: &str) {
        assert_eq!(eval(src), Ok(CelValue::Bool(true)), "{src}");
    }

    /// Asserts that `src` fails with `message`.
    #[track_caller]
    pub fn fails(src: &str, message: &str) {
        assert_eq!(eval(src), Err(message.to_string()), "{src}");
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Activation, compile};
    use serde_json::{Value, json};

    /// Every library function, called every way with awkward values, answers (a value or an
    /// error) and never panics.
    #[test]
    fn library_functions_never_panic_on_odd_input() {
        let values = [
            json!(null),
            json!(-1),
            json!(0),
            json!(9_223_372_036_854_775_807i64),
            json!(18_446_744_073_709_551_615u64),
            json!(1.5),
            json!(""),
            json!("é%aé/:[]@?#"),
            json!("%"),
            json!("::ffff:1.2.3.4/200"),
            json!("1e999999"),
            json!("[::1]:x"),
            json!([]),
            json!([1, "a", null]),
            json!({"a": [1], "é": {}}),
        ];
        let mut programs = Vec::new();
        for name in super::overloads().keys() {
            let (ns, f) = name.rsplit_once('.').unwrap_or(("", name));
            let calls = if ns.is_empty() {
                vec![
                    format!("x.{f}()"),
                    format!("x.{f}(y)"),
                    format!("x.{f}(y, z)"),
                    format!("{f}(x)"),
                    format!("{f}(x, y)"),
                    format!("quantity('1').{f}(x)"),
                    format!("cidr('10.0.0.0/8').{f}(x)"),
                    format!("url('https://a/b').{f}()"),
                ]
            } else {
                vec![
                    format!("{ns}.{f}(x)"),
                    format!("{ns}.{f}(x, y)"),
                    format!("{ns}.{f}().validate(x)"),
                ]
            };
            for src in calls {
                if let Ok(c) = compile(&src, &["x", "y", "z"]) {
                    programs.push(c);
                }
            }
        }
        for x in &values {
            for y in &values {
                let mut a = Activation::default();
                a.bind("x", Some(x));
                a.bind("y", Some(y));
                a.bind("z", Some(&Value::from(2)));
                for c in &programs {
                    let _ = c.eval(&a);
                }
            }
        }
    }
}
