//! Kubernetes' format library: `format.named(name)` and `format.<name>()` give a format whose
//! `validate(str)` is `optional.none()` for a valid string, else the list of upstream's
//! messages. The name formats reuse the messages of metadata validation (`kinds::meta`).

use std::sync::Arc;

use ::cel::objects::{Opaque, OptionalValue};
use ::cel::{ExecutionError, Value as CelValue};
use base64::Engine as _;

use super::library::{Call, Overload};
use crate::kinds::NameRule;
use crate::kinds::meta::{label_value_errors, name_errors, qualified_name_errors};

pub(super) const OVERLOADS: &[(&str, Overload)] = &[
    ("format.named", named),
    ("format.dns1123Label", |c| by_name(c, "dns1123Label")),
    ("format.dns1123Subdomain", |c| {
        by_name(c, "dns1123Subdomain")
    }),
    ("format.dns1035Label", |c| by_name(c, "dns1035Label")),
    ("format.qualifiedName", |c| by_name(c, "qualifiedName")),
    ("format.dns1123LabelPrefix", |c| {
        by_name(c, "dns1123LabelPrefix")
    }),
    ("format.dns1123SubdomainPrefix", |c| {
        by_name(c, "dns1123SubdomainPrefix")
    }),
    ("format.dns1035LabelPrefix", |c| {
        by_name(c, "dns1035LabelPrefix")
    }),
    ("format.labelValue", |c| by_name(c, "labelValue")),
    ("format.uri", |c| by_name(c, "uri")),
    ("format.uuid", |c| by_name(c, "uuid")),
    ("format.byte", |c| by_name(c, "byte")),
    ("format.date", |c| by_name(c, "date")),
    ("format.datetime", |c| by_name(c, "datetime")),
    ("validate", validate),
];

const NAMES: &[&str] = &[
    "dns1123Label",
    "dns1123Subdomain",
    "dns1035Label",
    "qualifiedName",
    "dns1123LabelPrefix",
    "dns1123SubdomainPrefix",
    "dns1035LabelPrefix",
    "labelValue",
    "uri",
    "uuid",
    "byte",
    "date",
    "datetime",
];

/// A named format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format(&'static str);

impl Opaque for Format {
    fn runtime_type_name(&self) -> &str {
        "kubernetes.NamedFormat"
    }
}

type Out = Option<Result<CelValue, ExecutionError>>;

fn by_name(c: &Call, name: &'static str) -> Out {
    if c.arity() != 0 {
        return None;
    }
    Some(Ok(CelValue::Opaque(Arc::new(Format(name)))))
}

fn named(c: &Call) -> Out {
    let Some(CelValue::String(s)) = c.arg(0) else {
        return None;
    };
    let found = NAMES.iter().find(|n| **n == s.as_str());
    let opt = match found {
        Some(n) => OptionalValue::of(CelValue::Opaque(Arc::new(Format(n)))),
        None => OptionalValue::none(),
    };
    Some(Ok(CelValue::Opaque(Arc::new(opt))))
}

/// Upstream's messages for `s` under the format `name`.
fn errors(name: &str, s: &str) -> Vec<String> {
    let owned = |v: Vec<&'static str>| v.into_iter().map(str::to_string).collect();
    match name {
        "dns1123Label" => name_errors(NameRule::Label, s, false),
        "dns1123Subdomain" => name_errors(NameRule::Subdomain, s, false),
        "dns1035Label" => name_errors(NameRule::Label1035, s, false),
        "dns1123LabelPrefix" => name_errors(NameRule::Label, s, true),
        "dns1123SubdomainPrefix" => name_errors(NameRule::Subdomain, s, true),
        "dns1035LabelPrefix" => name_errors(NameRule::Label1035, s, true),
        "qualifiedName" => qualified_name_errors(s),
        "labelValue" => owned(label_value_errors(s)),
        "uri" => {
            let ok = s.starts_with('/')
                || s.split_once(':').is_some_and(|(scheme, _)| {
                    scheme
                        .bytes()
                        .next()
                        .is_some_and(|b| b.is_ascii_alphabetic())
                        && scheme
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
                });
            if ok {
                vec![]
            } else {
                vec![format!("parse {s:?}: invalid URI for request")]
            }
        }
        "uuid" => uuid_errors(s),
        "byte" => match base64::engine::general_purpose::STANDARD.decode(s) {
            Ok(_) => vec![],
            Err(_) => vec!["invalid base64".to_string()],
        },
        "date" => match chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            Ok(_) if s.len() == 10 => vec![],
            _ => vec![format!("invalid date format: {s:?}")],
        },
        "datetime" => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(_) => vec![],
            Err(_) => vec![format!("invalid datetime format: {s:?}")],
        },
        _ => vec![],
    }
}

/// Google's `uuid.Parse` messages for the forms it accepts.
fn uuid_errors(s: &str) -> Vec<String> {
    let body = match s.len() {
        36 => s,
        38 if s.starts_with('{') && s.ends_with('}') => &s[1..37],
        45 if s.to_ascii_lowercase().starts_with("urn:uuid:") => &s[9..],
        32 => {
            return match s.bytes().all(|b| b.is_ascii_hexdigit()) {
                true => vec![],
                false => vec!["invalid UUID format".into()],
            };
        }
        n => return vec![format!("invalid UUID length: {n}")],
    };
    let b = body.as_bytes();
    let ok = b.iter().enumerate().all(|(i, c)| match i {
        8 | 13 | 18 | 23 => *c == b'-',
        _ => c.is_ascii_hexdigit(),
    });
    match ok {
        true => vec![],
        false => vec!["invalid UUID format".into()],
    }
}

fn validate(c: &Call) -> Out {
    let Some(CelValue::Opaque(o)) = &c.this else {
        return None;
    };
    let f = o.downcast_ref::<Format>()?;
    let Some(CelValue::String(s)) = c.arg(0) else {
        return None;
    };
    let errs = errors(f.0, s);
    let opt = match errs.is_empty() {
        true => OptionalValue::none(),
        false => OptionalValue::of(CelValue::List(Arc::new(
            errs.into_iter()
                .map(|e| CelValue::String(Arc::new(e)))
                .collect(),
        ))),
    };
    Some(Ok(CelValue::Opaque(Arc::new(opt))))
}

#[cfg(test)]
mod tests {
    use super::super::library::testing::holds;

    #[test]
    fn formats_as_upstream() {
        holds("!format.dns1123Label().validate('my-name').hasValue()");
        holds(
            "format.dns1123Label().validate('MY_NAME').value() == [\"a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')\"]",
        );
        holds("format.named('dns1123Subdomain').hasValue()");
        holds("!format.named('nope').hasValue()");
        holds("!format.named('dns1123Subdomain').value().validate('a.b.c').hasValue()");
        holds("!format.dns1123LabelPrefix().validate('gen-').hasValue()");
        holds("format.dns1123Label().validate('gen-').hasValue()");
        holds("format.dns1035Label().validate('1abc').hasValue()");
        holds("!format.qualifiedName().validate('example.com/name').hasValue()");
        holds("format.labelValue().validate('-x').hasValue()");
        holds("!format.uuid().validate('123e4567-e89b-12d3-a456-426614174000').hasValue()");
        holds("format.uuid().validate('123').value() == ['invalid UUID length: 3']");
        holds("!format.byte().validate('aGVsbG8=').hasValue()");
        holds("!format.date().validate('2024-02-29').hasValue()");
        holds("format.date().validate('2023-02-29').hasValue()");
        holds("!format.datetime().validate('2024-01-01T00:00:00Z').hasValue()");
        holds("!format.uri().validate('https://example.com').hasValue()");
        holds("format.uri().validate('relative').hasValue()");
    }
}
