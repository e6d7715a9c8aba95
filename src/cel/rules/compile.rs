//! Compiling a schema's rules: every `x-kubernetes-validations` entry checked and compiled
//! where the CRD is written, with upstream's causes for what is wrong with it.

use std::sync::Arc;

use serde_json::Value;

use super::values::Shape;
use super::{MAX_RULES, Node, RULE_VARIABLES, Reason, Rule};
use crate::api::status::Cause;
use crate::cel::{compile, mentions};
use crate::kinds::field;

/// Go's `%#v` of the rule object, the "value" of upstream's compile errors.
fn go_rule(raw: &Value) -> String {
    let s = |k: &str| format!("{:?}", raw.get(k).and_then(Value::as_str).unwrap_or(""));
    let ptr = |k: &str, ty: &str| match raw.get(k) {
        None | Some(Value::Null) => format!("(*{ty})(nil)"),
        Some(_) => format!("(*{ty})(0xc000000000)"),
    };
    format!(
        "apiextensions.ValidationRule{{Rule:{}, Message:{}, MessageExpression:{}, Reason:{}, FieldPath:{}, OptionalOldSelf:{}}}",
        s("rule"),
        s("message"),
        s("messageExpression"),
        ptr("reason", "apiextensions.FieldValueErrorReason"),
        s("fieldPath"),
        ptr("optionalOldSelf", "bool"),
    )
}

/// Upstream's `ValidFieldPath`: `.name` and `['key']` accessors that the schema has (a
/// property of an object, or any key of a map), normalized as `field.Path` prints it.
fn normalize_field_path(path: &str, schema: &Value) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = path;
    let mut at = schema;
    while !rest.is_empty() {
        let segment = if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return Err("unexpected end of JSON path".into());
            }
            rest = &r[end..];
            r[..end].to_string()
        } else if let Some(r) = rest.strip_prefix('[') {
            if r.is_empty() {
                return Err("unexpected end of JSON path".into());
            }
            let Some(quoted) = r.strip_prefix('\'') else {
                let tok = r.split([']', '.', '[']).next().unwrap_or(r);
                return Err(format!("expected single quoted string but got {tok}"));
            };
            let Some(close) = quoted.find('\'') else {
                return Err(format!("expected single quoted string but got '{quoted}"));
            };
            let after = &quoted[close + 1..];
            let Some(after) = after.strip_prefix(']') else {
                return match after.is_empty() {
                    true => Err("unexpected end of JSON path".into()),
                    false => Err(format!("expected ] but got {}", &after[..1])),
                };
            };
            rest = after;
            quoted[..close].to_string()
        } else {
            let tok = rest.split(['.', '[']).next().unwrap_or(rest);
            return Err(format!("expected [ or . but got: {tok}"));
        };
        if let Some(props) = at.get("properties").and_then(Value::as_object) {
            at = props
                .get(&segment)
                .ok_or("does not refer to a valid field")?;
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&segment);
        } else if let Some(sub) = at.get("additionalProperties").filter(|v| v.is_object()) {
            at = sub;
            out.push_str(&format!("[{segment}]"));
        } else {
            return Err("does not refer to a valid field".into());
        }
    }
    Ok(out)
}

pub(super) struct Compiler<'a> {
    pub(super) prefix: &'a str,
    pub(super) causes: Vec<Cause>,
    pub(super) count: usize,
}

impl Compiler<'_> {
    /// `path` is the node's place in the schema (`.properties[spec].items`); `uncorrelatable`
    /// the nearest ancestor list whose items have no old value.
    pub(super) fn node(
        &mut self,
        schema: &Value,
        path: &str,
        resource_root: bool,
        uncorrelatable: Option<&str>,
    ) -> (Option<Node>, Arc<Shape>) {
        let Some(obj) = schema.as_object() else {
            return (None, Arc::default());
        };
        let mut shape = Shape {
            embedded: resource_root,
            ..Shape::default()
        };
        let mut node = Node {
            ty: obj
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            atomic_map: obj.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic"),
            ..Node::default()
        };
        if obj.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map") {
            let keys = obj
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|ks| {
                    ks.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            node.list_map_keys = Some(keys);
        }
        if let Some(rules) = obj
            .get("x-kubernetes-validations")
            .and_then(Value::as_array)
        {
            for (i, raw) in rules.iter().enumerate() {
                let at = format!("{}{path}.x-kubernetes-validations[{i}]", self.prefix);
                if let Some(rule) = self.rule(raw, schema, &at, uncorrelatable) {
                    node.rules.push(rule);
                }
            }
        }
        if let Some(props) = obj.get("properties").and_then(Value::as_object) {
            let mut shapes = Vec::with_capacity(props.len());
            for (name, sub) in props {
                let embedded =
                    sub.get("x-kubernetes-embedded-resource") == Some(&Value::Bool(true));
                let p = format!("{path}.properties[{name}]");
                let (child, child_shape) = self.node(sub, &p, embedded, uncorrelatable);
                if let Some(child) = child {
                    node.properties.push((name.clone(), child));
                }
                shapes.push((name.clone(), child_shape));
            }
            shapes.sort_by(|a, b| a.0.cmp(&b.0));
            shape.properties = Some(shapes);
        }
        if let Some(sub) = obj.get("additionalProperties").filter(|v| v.is_object()) {
            let embedded = sub.get("x-kubernetes-embedded-resource") == Some(&Value::Bool(true));
            let p = format!("{path}.additionalProperties");
            let (child, child_shape) = self.node(sub, &p, embedded, uncorrelatable);
            node.additional = child.map(Box::new);
            shape.additional = Some(child_shape);
        }
        if let Some(sub) = obj.get("items").filter(|v| v.is_object()) {
            let embedded = sub.get("x-kubernetes-embedded-resource") == Some(&Value::Bool(true));
            let p = format!("{path}.items");
            let own = format!("{}{path}", self.prefix);
            let below = match node.list_map_keys {
                Some(_) => uncorrelatable,
                None => uncorrelatable.or(Some(own.as_str())),
            };
            let (child, child_shape) = self.node(sub, &p, embedded, below);
            node.items = child.map(Box::new);
            shape.items = Some(child_shape);
        }
        let shape = Arc::new(shape);
        node.shape = shape.clone();
        if let Some(all_of) = obj.get("allOf").and_then(Value::as_array) {
            for (j, sub) in all_of.iter().enumerate() {
                let p = format!("{path}.allOf[{j}]");
                if let (Some(mut child), _) = self.node(sub, &p, resource_root, uncorrelatable) {
                    // The value is this node's: its type, shape and list semantics.
                    child.ty = node.ty.clone();
                    child.shape = shape.clone();
                    child.atomic_map = node.atomic_map;
                    child.list_map_keys = node.list_map_keys.clone();
                    node.all_of.push(child);
                }
            }
        }
        let useful = !node.rules.is_empty()
            || !node.properties.is_empty()
            || node.additional.is_some()
            || node.items.is_some()
            || !node.all_of.is_empty();
        (useful.then_some(node), shape)
    }

    fn rule(
        &mut self,
        raw: &Value,
        schema: &Value,
        at: &str,
        uncorrelatable: Option<&str>,
    ) -> Option<Rule> {
        self.count += 1;
        if self.count > MAX_RULES {
            if self.count == MAX_RULES + 1 {
                self.causes
                    .push(field::too_many(at.to_string(), self.count, MAX_RULES));
            }
            return None;
        }
        let text = |k: &str| {
            raw.get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim()
                .to_string()
        };
        let source = text("rule");
        if source.is_empty() {
            self.causes.push(field::required_why(
                format!("{at}.rule"),
                "rule is not specified",
            ));
            return None;
        }
        let program = match compile(&source, RULE_VARIABLES) {
            Ok(p) => p,
            Err(e) => {
                self.causes
                    .push(invalid_rendered(format!("{at}.rule"), &go_rule(raw), &e));
                return None;
            }
        };
        let uses_old_self = mentions(&program, "oldSelf");
        if uses_old_self && let Some(list) = uncorrelatable {
            self.causes.push(field::invalid(
                format!("{at}.rule"),
                &Value::String(source.clone()),
                &format!(
                    "oldSelf cannot be used on the uncorrelatable portion of the schema within {list}"
                ),
            ));
            return None;
        }
        let message_expression = match text("messageExpression") {
            m if m.is_empty() => None,
            m => match compile(&m, RULE_VARIABLES) {
                Ok(p) => Some(p),
                Err(e) => {
                    self.causes.push(invalid_rendered(
                        format!("{at}.messageExpression"),
                        &go_rule(raw),
                        &format!("messageExpression {e}"),
                    ));
                    return None;
                }
            },
        };
        let reason = match raw.get("reason").and_then(Value::as_str) {
            None => Reason::Invalid,
            Some("FieldValueInvalid") => Reason::Invalid,
            Some("FieldValueForbidden") => Reason::Forbidden,
            Some("FieldValueRequired") => Reason::Required,
            Some("FieldValueDuplicate") => Reason::Duplicate,
            Some(other) => {
                self.causes.push(field::not_supported(
                    format!("{at}.reason"),
                    &Value::String(other.to_string()),
                    &[
                        "FieldValueDuplicate",
                        "FieldValueForbidden",
                        "FieldValueInvalid",
                        "FieldValueRequired",
                    ],
                ));
                return None;
            }
        };
        let field_path = match normalize_field_path(&text("fieldPath"), schema) {
            Ok(p) => p,
            Err(why) => {
                self.causes.push(field::invalid(
                    format!("{at}.fieldPath"),
                    &Value::String(text("fieldPath")),
                    &format!("fieldPath must be a valid path: {why}"),
                ));
                return None;
            }
        };
        Some(Rule {
            source,
            program,
            message: text("message"),
            message_expression,
            reason,
            field_path,
            optional_old_self: raw.get("optionalOldSelf") == Some(&Value::Bool(true)),
            uses_old_self,
        })
    }
}

/// `Invalid value: <rendered>: <msg>` for a value Go prints with `%#v`.
fn invalid_rendered(field: String, rendered: &str, msg: &str) -> Cause {
    Cause {
        reason: "FieldValueInvalid".into(),
        message: format!("Invalid value: {rendered}: {msg}"),
        field,
    }
}
