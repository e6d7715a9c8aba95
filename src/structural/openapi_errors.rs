//! kube-openapi's validation errors (`errors.Validation` and the plain composite ones), their
//! texts as Go formats them, and their conversion to field causes as apiextensions'
//! `kubeOpenAPIResultToFieldErrors` does it.

use serde_json::Value;

use crate::api::status::Cause;
use crate::kinds::field::{invalid, not_supported_rendered, required};

/// What kind of kube-openapi error, for its conversion to a field cause.
#[derive(Debug, Clone)]
pub(super) enum Code {
    Required,
    Enum(Vec<Value>),
    TooLong,
    TooMany {
        actual: i64,
        max: i64,
    },
    InvalidType,
    /// Any other `*errors.Validation` (a `FieldValueInvalid` at its path).
    Other,
    /// A plain error (allOf/anyOf/oneOf/not, range checks): `Invalid` at the root with "".
    Composite,
}

#[derive(Debug, Clone)]
pub(super) struct Error {
    pub(super) code: Code,
    /// kube-openapi's `Name`: the instance path (`spec.list[0].a`, `.x` at the root).
    pub(super) name: String,
    pub(super) value: Value,
    /// kube-openapi's `Valid` (maxLength's bound).
    pub(super) valid: i64,
    pub(super) message: String,
}

/// kube-openapi's `Result`: errors without duplicate texts, and how much matched.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    pub(super) errors: Vec<Error>,
    pub(super) matches: usize,
}

impl Outcome {
    pub(super) fn add(&mut self, e: Error) {
        if !self.errors.iter().any(|x| x.message == e.message) {
            self.errors.push(e);
        }
    }

    pub(super) fn merge(&mut self, other: Outcome) {
        for e in other.errors {
            self.add(e);
        }
        self.matches += other.matches;
    }

    pub(super) fn valid(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Go's `%v` of a float64 (integral values print without a fraction below 1e21).
pub fn go_float(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e21 {
        format!("{}", f as i128)
    } else if f.abs() >= 1e21 || (f != 0.0 && f.abs() < 1e-4) {
        let s = format!("{f:e}");
        match s.split_once('e') {
            Some((m, e)) => {
                let (sign, digits) = e.strip_prefix('-').map_or(("+", e), |d| ("-", d));
                format!("{m}e{sign}{digits:0>2}")
            }
            None => s,
        }
    } else {
        format!("{f}")
    }
}

pub(super) fn err(code: Code, name: &str, value: Value, message: String) -> Error {
    Error {
        code,
        name: name.to_string(),
        value,
        valid: -1,
        message,
    }
}

/// `%q` of a string as Go prints it (JSON quoting is close enough for printable text).
pub(super) fn quote(s: &str) -> String {
    Value::from(s).to_string()
}

pub(super) fn in_body(name: &str) -> String {
    format!("{name} in body")
}

pub(super) fn invalid_type(name: &str, type_name: &str, value: &str) -> Error {
    err(
        Code::InvalidType,
        name,
        Value::from(value),
        format!(
            "{} must be of type {type_name}: {}",
            in_body(name),
            quote(value)
        ),
    )
}

/// Go's `%v` of a `[]interface{}` of JSON values: `[a 1 map[k:v]]`.
pub(super) fn go_list(values: &[Value]) -> String {
    fn one(v: &Value) -> String {
        match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.as_f64().map(go_float).unwrap_or_default(),
            Value::Null => "<nil>".into(),
            Value::Array(a) => go_list(a),
            Value::Object(m) => {
                let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}:{}", one(v))).collect();
                format!("map[{}]", parts.join(" "))
            }
            other => other.to_string(),
        }
    }
    let parts: Vec<String> = values.iter().map(one).collect();
    format!("[{}]", parts.join(" "))
}

/// The field path of an error's name (`.x` at the root is `x`).
fn field_of(name: &str) -> String {
    name.strip_prefix('.').unwrap_or(name).to_string()
}

fn rendered(v: &Value) -> String {
    match v {
        Value::Number(n) if n.is_f64() => n.as_f64().map(go_float).unwrap_or_default(),
        other => other.to_string(),
    }
}

pub(super) fn to_cause(e: Error) -> Cause {
    let field = field_of(&e.name);
    match e.code {
        Code::Required => required(field),
        Code::Enum(values) => {
            let values: Vec<String> = values
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            let refs: Vec<&str> = values.iter().map(String::as_str).collect();
            not_supported_rendered(field, &rendered(&e.value), &refs)
        }
        Code::TooLong => {
            let unit = if e.valid == 1 { "byte" } else { "bytes" };
            Cause {
                reason: "FieldValueTooLong".into(),
                message: format!("Too long: may not be more than {} {unit}", e.valid),
                field,
            }
        }
        Code::TooMany { actual, max } => {
            let unit = if max == 1 { "item" } else { "items" };
            Cause {
                reason: "FieldValueTooMany".into(),
                message: format!("Too many: {actual}: must have at most {max} {unit}"),
                field,
            }
        }
        Code::InvalidType => Cause {
            reason: "FieldValueTypeInvalid".into(),
            message: format!("Invalid value: {}: {}", rendered(&e.value), e.message),
            field,
        },
        Code::Other => {
            let value = match e.value {
                Value::Null => Value::from(""),
                v => v,
            };
            let mut c = invalid(field, &value, &e.message);
            c.message = format!("Invalid value: {}: {}", rendered(&value), e.message);
            c
        }
        Code::Composite => invalid(String::new(), &Value::from(""), &e.message),
    }
}
