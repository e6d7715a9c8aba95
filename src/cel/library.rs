//! The one place the CEL function table is built: the `cel` crate's standard functions plus
//! Kubernetes' libraries (`k8s.io/apiserver/pkg/cel/library`). The crate keys functions by
//! name alone, so each name gets one entry that tries its overloads (string, list, quantity,
//! ...) in turn, as cel-go picks an overload by the argument types at run time.

use std::collections::BTreeMap;

use ::cel::extractors::Arguments;
use ::cel::{Context, ExecutionError, FunctionContext, Value as CelValue};

use super::{comprehensions, cost, format, lists, net, quantity, strings, url};

/// Identifiers that name a function namespace (`format.named(...)`, `ip.isCanonical(...)`),
/// never a variable.
pub(super) const NAMESPACES: &[&str] = &["format", "sets", "strings", "ip", "optional"];

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
