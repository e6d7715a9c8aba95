//! Structural defaulting (upstream's `defaulting.Default` and
//! `PruneNonNullableNullsWithoutDefaults`): a missing member, or a `null` where the schema is
//! not nullable, takes the schema's `default`; the defaults are themselves defaulted further
//! down; a `null` that is neither nullable nor defaulted is dropped.

use serde_json::Value;

use super::node::{Additional, Node};

fn non_nullable_null(x: &Value, s: &Node) -> bool {
    x.is_null() && !s.nullable
}

/// Applies `s`'s defaults to `x`, depth first.
pub fn default(x: &mut Value, s: &Node) {
    match x {
        Value::Object(map) => {
            for (k, prop) in &s.properties {
                let Some(d) = &prop.default else {
                    continue;
                };
                let missing = map.get(k).is_none_or(|v| non_nullable_null(v, prop));
                if missing {
                    map.insert(k.clone(), d.clone());
                }
            }
            for (k, v) in map.iter_mut() {
                if let Some(prop) = s.properties.get(k) {
                    default(v, prop);
                } else if let Some(Additional::Schema(add)) = &s.additional {
                    if non_nullable_null(v, add) {
                        *v = add.default.clone().unwrap_or(Value::Null);
                    }
                    default(v, add);
                }
            }
        }
        Value::Array(items) => {
            let Some(item) = s.items.as_deref() else {
                return;
            };
            for v in items.iter_mut() {
                if non_nullable_null(v, item) {
                    *v = item.default.clone().unwrap_or(Value::Null);
                }
                default(v, item);
            }
        }
        _ => {}
    }
}

/// Drops `null` members whose schema is neither nullable nor defaulted (below a member the
/// schema does not specify there is nothing to drop, so the walk stops there).
pub fn drop_nulls(x: &mut Value, s: Option<&Node>) {
    if s.is_none_or(|s| s.too_deep) {
        return;
    }
    match x {
        Value::Object(map) => {
            map.retain(|k, v| {
                let sub = s.and_then(|s| s.member(k));
                let drop =
                    v.is_null() && sub.is_some_and(|sub| !sub.nullable && sub.default.is_none());
                if !drop {
                    drop_nulls(v, sub);
                }
                !drop
            });
        }
        Value::Array(items) => {
            let item = s.and_then(|s| s.items.as_deref());
            for v in items.iter_mut() {
                drop_nulls(v, item);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defaulted(schema: Value, mut obj: Value) -> Value {
        let node = Node::parse(&schema, 0);
        default(&mut obj, &node);
        drop_nulls(&mut obj, Some(&node));
        obj
    }

    #[test]
    fn missing_members_take_defaults_and_defaults_are_defaulted_further() {
        let schema = json!({"type": "object", "properties": {"spec": {
            "type": "object", "default": {},
            "properties": {
                "replicas": {"type": "integer", "default": 1},
                "inner": {"type": "object", "default": {"a": "x"},
                          "properties": {"a": {"type": "string"}, "b": {"type": "string", "default": "y"}}}
            }
        }}});
        assert_eq!(
            defaulted(schema.clone(), json!({})),
            json!({"spec": {"replicas": 1, "inner": {"a": "x", "b": "y"}}})
        );
        assert_eq!(
            defaulted(schema, json!({"spec": {"replicas": 3}})),
            json!({"spec": {"replicas": 3, "inner": {"a": "x", "b": "y"}}})
        );
    }

    #[test]
    fn items_and_additional_properties_defaults_apply_to_each_value() {
        let schema = json!({"type": "object", "properties": {
            "list": {"type": "array", "items": {"type": "object",
                "properties": {"port": {"type": "integer", "default": 80}}}},
            "map": {"type": "object", "additionalProperties": {"type": "object",
                "properties": {"on": {"type": "boolean", "default": true}}}},
            "nulls": {"type": "array", "items": {"type": "string", "default": "d"}}
        }});
        assert_eq!(
            defaulted(
                schema,
                json!({"list": [{}, {"port": 1}], "map": {"a": {}}, "nulls": [null, "x"]})
            ),
            json!({"list": [{"port": 80}, {"port": 1}], "map": {"a": {"on": true}}, "nulls": ["d", "x"]})
        );
    }

    #[test]
    fn nulls_take_defaults_unless_nullable_and_are_dropped_without_one() {
        let schema = json!({"type": "object", "properties": {
            "a": {"type": "string", "default": "d"},
            "b": {"type": "string", "nullable": true, "default": "d"},
            "c": {"type": "string"},
            "d": {"type": "string", "nullable": true}
        }});
        assert_eq!(
            defaulted(schema, json!({"a": null, "b": null, "c": null, "d": null})),
            json!({"a": "d", "b": null, "d": null})
        );
    }
}
