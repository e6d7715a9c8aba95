//! Upstream's field errors (`k8s.io/apimachinery/pkg/util/validation/field`) as `Status`
//! causes: each builder gives the reason and message form of one error type. Every kind's
//! validation builds its causes with these.

use serde_json::{Value, json};

use crate::api::status::Cause;

pub fn required(field: String) -> Cause {
    Cause {
        reason: "FieldValueRequired".into(),
        message: "Required value".into(),
        field,
    }
}

pub fn required_why(field: String, why: &str) -> Cause {
    Cause {
        reason: "FieldValueRequired".into(),
        message: format!("Required value: {why}"),
        field,
    }
}

/// `Invalid value: <value as JSON>: <msg>` (just the value when `msg` is empty).
pub fn invalid(field: String, value: &Value, msg: &str) -> Cause {
    let message = match msg.is_empty() {
        true => format!("Invalid value: {value}"),
        false => format!("Invalid value: {value}: {msg}"),
    };
    Cause {
        reason: "FieldValueInvalid".into(),
        message,
        field,
    }
}

pub fn not_supported(field: String, value: &Value, supported: &[&str]) -> Cause {
    not_supported_rendered(field, &value.to_string(), supported)
}

/// `not_supported` of a value rendered by the caller (a Go struct, whose field order JSON
/// objects here do not keep).
pub fn not_supported_rendered(field: String, value: &str, supported: &[&str]) -> Cause {
    let list: Vec<String> = supported.iter().map(|s| format!("\"{s}\"")).collect();
    Cause {
        reason: "FieldValueNotSupported".into(),
        message: format!(
            "Unsupported value: {value}: supported values: {}",
            list.join(", ")
        ),
        field,
    }
}

pub fn duplicate(field: String, value: &Value) -> Cause {
    Cause {
        reason: "FieldValueDuplicate".into(),
        message: format!("Duplicate value: {value}"),
        field,
    }
}

/// `Invalid value: <msg>`: upstream's `field.Invalid` with `field.OmitValueType{}` (a value
/// too structured to print, as CEL rule failures on objects and arrays).
pub fn invalid_omitted(field: String, msg: &str) -> Cause {
    Cause {
        reason: "FieldValueInvalid".into(),
        message: format!("Invalid value: {msg}"),
        field,
    }
}

/// `Duplicate value`: upstream's `field.Duplicate` with `field.OmitValueType{}`.
pub fn duplicate_omitted(field: String) -> Cause {
    Cause {
        reason: "FieldValueDuplicate".into(),
        message: "Duplicate value".into(),
        field,
    }
}

pub fn forbidden(field: String, why: &str) -> Cause {
    Cause {
        reason: "FieldValueForbidden".into(),
        message: format!("Forbidden: {why}"),
        field,
    }
}

pub fn not_found(field: String, value: &Value) -> Cause {
    Cause {
        reason: "FieldValueNotFound".into(),
        message: format!("Not found: {value}"),
        field,
    }
}

/// A field's path, as text or as `format_args!` printed only when a check fails: the checks
/// of every pod's containers pass far more often than not.
pub trait FieldPath {
    fn into_path(self) -> String;
}

impl FieldPath for String {
    fn into_path(self) -> String {
        self
    }
}

impl FieldPath for &str {
    fn into_path(self) -> String {
        self.to_string()
    }
}

impl FieldPath for std::fmt::Arguments<'_> {
    fn into_path(self) -> String {
        std::fmt::format(self)
    }
}

/// `ValidateNonnegativeField`: a number below 0 at `field`.
pub fn non_negative(value: Option<&Value>, field: impl FieldPath, causes: &mut Vec<Cause>) {
    if let Some(n) = value.and_then(Value::as_i64)
        && n < 0
    {
        causes.push(invalid(
            field.into_path(),
            &json!(n),
            "must be greater than or equal to 0",
        ));
    }
}

/// `TooLong`: a value over `max` bytes.
pub fn too_long(field: String, max: usize) -> Cause {
    Cause {
        reason: "FieldValueTooLong".into(),
        message: format!("Too long: may not be more than {max} bytes"),
        field,
    }
}

/// `TooMany`: a list of `actual` items where at most `max` are allowed.
pub fn too_many(field: String, actual: usize, max: usize) -> Cause {
    Cause {
        reason: "FieldValueTooMany".into(),
        message: format!("Too many: {actual}: must have at most {max} items"),
        field,
    }
}

/// `ValidateImmutableField`'s error: `Invalid value: <new value>: field is immutable`. Upstream
/// prints a scalar as Go does and anything structured as JSON (a map with sorted keys); an
/// absent value is `null`.
pub fn immutable(field: String, new: Option<&Value>) -> Cause {
    invalid(field, new.unwrap_or(&Value::Null), "field is immutable")
}

/// `v` as upstream's typed structs see it after a round trip through storage: null members,
/// empty lists and empty maps are the same as absent ones.
pub fn pruned(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Array(l) if l.is_empty() => None,
        Value::Array(l) => Some(Value::Array(
            l.iter().map(|x| pruned(x).unwrap_or(Value::Null)).collect(),
        )),
        Value::Object(m) => {
            let kept: serde_json::Map<String, Value> = m
                .iter()
                .filter_map(|(k, x)| Some((k.clone(), pruned(x)?)))
                .collect();
            (!kept.is_empty()).then_some(Value::Object(kept))
        }
        other => Some(other.clone()),
    }
}

/// Whether two values are the same to upstream's semantic equality (`pruned` alike).
pub fn same(a: Option<&Value>, b: Option<&Value>) -> bool {
    a.and_then(pruned) == b.and_then(pruned)
}
