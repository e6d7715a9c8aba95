//! Values as rules see them: a custom resource's JSON converted to CEL along its schema's
//! shape (property names escaped as upstream escapes them, a resource's `metadata` cut to
//! its name), once per node that has rules.

use std::sync::Arc;

use ::cel::Value as CelValue;
use serde_json::{Map, Value};

use super::super::json_to_cel;

/// What converting a value for CEL needs of its schema: which objects have named properties
/// (their names are escaped) and where resources are embedded. Shared by the nodes along a
/// path, so the whole tree costs one pass over the schema.
#[derive(Default)]
pub(super) struct Shape {
    pub(super) properties: Option<Vec<(String, Arc<Shape>)>>,
    pub(super) items: Option<Arc<Shape>>,
    pub(super) additional: Option<Arc<Shape>>,
    /// The root of a resource (the custom resource, or an embedded one): `self.metadata` holds
    /// only `name` and `generateName`, as upstream's type for it.
    pub(super) embedded: bool,
}

impl Shape {
    fn property(&self, name: &str) -> Option<&Arc<Shape>> {
        let props = self.properties.as_ref()?;
        props
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| &props[i].1)
    }
}

/// Upstream's escaping of a property name into a CEL field name; `None` when it has none
/// (the property is then not visible to rules).
fn escape(name: &str) -> Option<String> {
    const RESERVED: &[&str] = &[
        "true",
        "false",
        "null",
        "in",
        "as",
        "break",
        "const",
        "continue",
        "else",
        "for",
        "function",
        "if",
        "import",
        "let",
        "loop",
        "package",
        "namespace",
        "return",
        "var",
        "void",
        "while",
    ];
    if RESERVED.contains(&name) {
        return Some(format!("__{name}__"));
    }
    let first = name.chars().next()?;
    if !(first.is_ascii_alphabetic() || first == '_') {
        return None;
    }
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(ch) = rest.chars().next() {
        if rest.starts_with("__") {
            out.push_str("__underscores__");
            rest = &rest[2..];
            continue;
        }
        match ch {
            '.' => out.push_str("__dot__"),
            '-' => out.push_str("__dash__"),
            '/' => out.push_str("__slash__"),
            c if c.is_ascii_alphanumeric() || c == '_' => out.push(c),
            _ => return None,
        }
        rest = &rest[ch.len_utf8()..];
    }
    Some(out)
}

/// A JSON value as rules see it under `shape`: objects with named properties have their
/// field names escaped (and a resource's `metadata` only its name); maps keep their keys.
pub(super) fn to_cel(shape: &Shape, v: &Value) -> CelValue {
    match v {
        Value::Object(m) if shape.properties.is_some() || shape.embedded => {
            let mut entries = std::collections::HashMap::with_capacity(m.len());
            for (k, x) in m {
                let Some(name) = escape(k) else { continue };
                let value = if shape.embedded && k == "metadata" {
                    let meta: Map<String, Value> = x
                        .as_object()
                        .map(|mm| {
                            mm.iter()
                                .filter(|(k, _)| *k == "name" || *k == "generateName")
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect()
                        })
                        .unwrap_or_default();
                    json_to_cel(&Value::Object(meta))
                } else {
                    match shape.property(k) {
                        Some(sub) => to_cel(sub, x),
                        None => json_to_cel(x),
                    }
                };
                entries.insert(name.into(), value);
            }
            CelValue::Map(::cel::objects::Map {
                map: Arc::new(entries),
            })
        }
        Value::Object(m) => match &shape.additional {
            Some(sub) => {
                let entries = m
                    .iter()
                    .map(|(k, x)| (k.clone().into(), to_cel(sub, x)))
                    .collect();
                CelValue::Map(::cel::objects::Map {
                    map: Arc::new(entries),
                })
            }
            None => json_to_cel(v),
        },
        Value::Array(items) => match &shape.items {
            Some(sub) => CelValue::List(Arc::new(items.iter().map(|x| to_cel(sub, x)).collect())),
            None => json_to_cel(v),
        },
        _ => json_to_cel(v),
    }
}
