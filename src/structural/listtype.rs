//! `x-kubernetes-list-type` invariants of an instance (upstream's
//! `listtype.ValidateListSetsAndMaps`): a `set` holds no value twice, a `map` no two items
//! with the same keys; each duplicate is a `Duplicate value` cause at its index.

use serde_json::{Map, Value};

use super::node::{Additional, Node};
use crate::api::status::Cause;
use crate::kinds::field::{duplicate, invalid};

/// Walks an object's members under `s`.
pub fn validate_object(path: &str, s: &Node, obj: &Map<String, Value>, out: &mut Vec<Cause>) {
    if let Some(Additional::Schema(add)) = &s.additional {
        for (k, v) in obj {
            walk(&format!("{path}[{k}]"), add, v, out);
        }
    }
    for (k, v) in obj {
        if let Some(sub) = s.properties.get(k) {
            let p = match path {
                "" => k.clone(),
                _ => format!("{path}.{k}"),
            };
            walk(&p, sub, v, out);
        }
    }
}

fn walk(path: &str, s: &Node, x: &Value, out: &mut Vec<Cause>) {
    if s.too_deep {
        return;
    }
    match x {
        Value::Array(items) => {
            match s.list_type.as_deref() {
                Some("set") => {
                    for i in non_unique(items) {
                        out.push(duplicate(format!("{path}[{i}]"), &items[i]));
                    }
                }
                Some("map") => list_map(path, s, items, out),
                _ => {}
            }
            if let Some(item) = s.items.as_deref() {
                for (i, v) in items.iter().enumerate() {
                    walk(&format!("{path}[{i}]"), item, v, out);
                }
            }
        }
        Value::Object(m) => validate_object(path, s, m, out),
        _ => {}
    }
}

/// The indices of the second occurrence of each repeated value (later ones are not named).
fn non_unique(items: &[Value]) -> Vec<usize> {
    let mut out = Vec::new();
    for (i, v) in items.iter().enumerate() {
        let seen = items[..i].iter().filter(|w| *w == v).count();
        if seen == 1 {
            out.push(i);
        }
    }
    out
}

fn list_map(path: &str, s: &Node, items: &[Value], out: &mut Vec<Cause>) {
    for (i, x) in items.iter().enumerate() {
        if !x.is_null() && !x.is_object() {
            out.push(invalid(
                format!("{path}[{i}]"),
                x,
                "must be an object for an array of list-type map",
            ));
            return;
        }
    }
    if items.len() <= 1 {
        return;
    }
    let keys: Vec<Value> = items
        .iter()
        .map(|x| {
            let mut key = Map::new();
            for k in &s.list_map_keys {
                if let Some(v) = x.get(k) {
                    key.insert(k.clone(), v.clone());
                }
            }
            Value::Object(key)
        })
        .collect();
    for i in non_unique(&keys) {
        out.push(duplicate(format!("{path}[{i}]"), &keys[i]));
    }
}
