//! `x-kubernetes-validations` of custom resources (upstream's
//! `apiextensions-apiserver/pkg/apiserver/schema/cel`): every rule of a CRD version's schema is
//! compiled once ([`CrdRules::compile`], which the CRD's own validation reports), then
//! evaluated on each write of a custom resource at its schema node, with `self`, and with
//! `oldSelf` on updates where the old value correlates ([`CrdRules::validate`]).
//!
//! Messages as 1.36's: a false rule shows a scalar's value (`Invalid value: "x": failed rule:
//! ...`) and no value for objects and arrays (`Invalid value: failed rule: ...`); an error
//! evaluating a rule shows the schema type (`Invalid value: "object": ... evaluating rule: ...`).
//!
//! Cost: one request's rules share [`RUNTIME_COST_BUDGET`] (upstream's `RuntimeCELCostBudget`),
//! each evaluation at most [`super::PER_CALL_LIMIT`] (upstream's `PerCallLimit`). Upstream's
//! static limits on a stored CRD (`StaticEstimatedCostLimit` per rule, the per-CRD total) need
//! a cost estimator the `cel` crate lacks; they are not enforced, the run-time ones are.

use std::collections::HashMap;
use std::sync::Arc;

use ::cel::Value as CelValue;
use ::cel::objects::OptionalValue;
use serde_json::{Map, Value};

use super::{Activation, Compiled, CostBudget, PER_CALL_LIMIT, compile, json_to_cel, mentions};
use crate::api::status::Cause;
use crate::kinds::field;

/// Upstream's `RuntimeCELCostBudget`: all rules of one custom resource write together (about
/// one second of CPU at upstream's cost units).
pub const RUNTIME_COST_BUDGET: u64 = 10_000_000;

/// Upstream's `MaxEvaluatedMessageExpressionSizeBytes`.
const MAX_MESSAGE_BYTES: usize = 5 * 1024;

/// The most rules one schema may carry (each is compiled and kept): a client sends the schema,
/// so this bounds the work and memory of one CRD. Upstream bounds them by estimated cost.
pub const MAX_RULES: usize = 1024;

/// The variables a rule sees.
const RULE_VARIABLES: &[&str] = &["self", "oldSelf"];

/// The field error a false rule becomes (`reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Invalid,
    Forbidden,
    Required,
    Duplicate,
}

struct Rule {
    /// `rule`, trimmed, for messages.
    source: String,
    program: Compiled,
    message: String,
    message_expression: Option<Compiled>,
    reason: Reason,
    /// `fieldPath`, normalized to upstream's field path form (`a.b[key]`).
    field_path: String,
    optional_old_self: bool,
    uses_old_self: bool,
}

impl Rule {
    /// Upstream's `ruleErrorString`.
    fn error_string(&self) -> &str {
        if self.message.is_empty() {
            &self.source
        } else {
            &self.message
        }
    }

    /// Upstream's `ruleMessageOrDefault`.
    fn message_or_default(&self) -> String {
        if self.message.is_empty() {
            format!("failed rule: {}", self.source)
        } else {
            self.message.clone()
        }
    }
}

/// One schema node that has rules, or has descendants that do.
#[derive(Default)]
struct Node {
    /// The node's `type` (`object`, `string`, ...): the "value" of upstream's messages.
    ty: String,
    /// The node's shape, to convert values as CEL sees them (escaped property names).
    shape: Arc<Shape>,
    rules: Vec<Rule>,
    properties: Vec<(String, Node)>,
    additional: Option<Box<Node>>,
    items: Option<Box<Node>>,
    /// The rules under `allOf` (upstream evaluates them at this node, on this value).
    all_of: Vec<Node>,
    /// `x-kubernetes-map-type: atomic`: children have no old value.
    atomic_map: bool,
    /// `x-kubernetes-list-type: map`: items correlate by these keys; other lists do not.
    list_map_keys: Option<Vec<String>>,
}

/// What converting a value for CEL needs of its schema: which objects have named properties
/// (their names are escaped) and where resources are embedded. Shared by the nodes along a
/// path, so the whole tree costs one pass over the schema.
#[derive(Default)]
struct Shape {
    properties: Option<Vec<(String, Arc<Shape>)>>,
    items: Option<Arc<Shape>>,
    additional: Option<Arc<Shape>>,
    /// The root of a resource (the custom resource, or an embedded one): `self.metadata` holds
    /// only `name` and `generateName`, as upstream's type for it.
    embedded: bool,
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

/// The compiled rules of one CRD version's schema. Immutable; shared by every core.
pub struct CrdRules {
    root: Option<Node>,
}

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

struct Compiler<'a> {
    prefix: &'a str,
    causes: Vec<Cause>,
    count: usize,
}

impl Compiler<'_> {
    /// `path` is the node's place in the schema (`.properties[spec].items`); `uncorrelatable`
    /// the nearest ancestor list whose items have no old value.
    fn node(
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
fn to_cel(shape: &Shape, v: &Value) -> CelValue {
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

/// Where validation stands: the budget left and whether to go on.
struct Run {
    budget: CostBudget,
    causes: Vec<Cause>,
    stopped: bool,
}

fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

impl Node {
    /// Validates `obj` at `path` against its correlated `old` value. `ratchet` holds when the
    /// nearest correlated ancestor is unchanged (upstream's validation ratcheting).
    fn validate(&self, path: &str, obj: &Value, old: Option<&Value>, ratchet: bool, run: &mut Run) {
        if obj.is_null() || run.stopped {
            return;
        }
        let ratchet = match old {
            Some(o) => o == obj,
            None => ratchet,
        };
        if !self.rules.is_empty() {
            self.evaluate(path, obj, old, ratchet, run);
        }
        for all_of in &self.all_of {
            all_of.validate(path, obj, old, ratchet, run);
        }
        match obj {
            Value::Object(m) => {
                let old_map = old.and_then(Value::as_object).filter(|_| !self.atomic_map);
                for (name, sub) in &self.properties {
                    if let Some(v) = m.get(name) {
                        let o = old_map.and_then(|om| om.get(name));
                        sub.validate(&child(path, name), v, o, ratchet, run);
                    }
                }
                if let Some(sub) = &self.additional {
                    for (k, v) in m {
                        let o = old_map.and_then(|om| om.get(k));
                        sub.validate(&format!("{path}[{k}]"), v, o, ratchet, run);
                    }
                }
            }
            Value::Array(items) => {
                let Some(sub) = &self.items else { return };
                // Old items by their list-map key, indexed once (lists may be long).
                let key_of = |keys: &[String], item: &Value| -> String {
                    let parts: Vec<Option<&Value>> = keys.iter().map(|k| item.get(k)).collect();
                    serde_json::to_string(&parts).unwrap_or_default()
                };
                let olds: HashMap<String, &Value> = match (&self.list_map_keys, old) {
                    (Some(keys), Some(Value::Array(olds))) => {
                        olds.iter().map(|o| (key_of(keys, o), o)).collect()
                    }
                    _ => HashMap::new(),
                };
                for (i, v) in items.iter().enumerate() {
                    let o = match &self.list_map_keys {
                        Some(keys) if !olds.is_empty() => olds.get(&key_of(keys, v)).copied(),
                        _ => None,
                    };
                    sub.validate(&format!("{path}[{i}]"), v, o, ratchet, run);
                }
            }
            _ => {}
        }
    }

    fn evaluate(&self, path: &str, obj: &Value, old: Option<&Value>, ratchet: bool, run: &mut Run) {
        let ty = Value::String(self.ty.clone());
        if run.budget.exhausted() {
            run.causes.push(field::invalid(
                path.to_string(),
                &ty,
                "validation failed due to running out of cost budget, no further validation rules will be run",
            ));
            run.stopped = true;
            return;
        }
        let self_value = to_cel(&self.shape, obj);
        let old_value = old.map(|o| to_cel(&self.shape, o));
        for rule in &self.rules {
            if rule.uses_old_self && old.is_none() && !rule.optional_old_self {
                continue;
            }
            let mut activation = Activation::default();
            activation.bind_value("self", self_value.clone());
            match (&old_value, rule.optional_old_self) {
                (Some(o), false) => activation.bind_value("oldSelf", o.clone()),
                (o, true) => {
                    let opt = match o {
                        Some(o) => OptionalValue::of(o.clone()),
                        None => OptionalValue::none(),
                    };
                    activation.bind_value("oldSelf", CelValue::Opaque(Arc::new(opt)));
                }
                (None, false) => {}
            }
            let whole_budget = run.budget.remaining() <= PER_CALL_LIMIT;
            let result = rule.program.eval_within(&activation, &mut run.budget);
            let failed = match result {
                Ok(CelValue::Bool(true)) => continue,
                Ok(CelValue::Bool(false)) => true,
                Ok(_) => {
                    run.causes.push(field::invalid(
                        path.to_string(),
                        &ty,
                        &format!(
                            "'no such overload': call arguments did not match a supported operator, function or macro signature for rule: {}",
                            rule.error_string()
                        ),
                    ));
                    false
                }
                Err(e) if e.starts_with(super::cost::EXCEEDED) => {
                    let msg = if whole_budget {
                        "validation failed due to running out of cost budget, no further validation rules will be run".to_string()
                    } else {
                        format!(
                            "'{e}': no further validation rules will be run due to call cost exceeds limit for rule: {}",
                            rule.error_string()
                        )
                    };
                    run.causes.push(field::invalid(path.to_string(), &ty, &msg));
                    run.stopped = true;
                    return;
                }
                Err(e) if e.starts_with("no such overload") => {
                    run.causes.push(field::invalid(
                        path.to_string(),
                        &ty,
                        &format!(
                            "'{e}': call arguments did not match a supported operator, function or macro signature for rule: {}",
                            rule.error_string()
                        ),
                    ));
                    false
                }
                Err(e) => {
                    run.causes.push(field::invalid(
                        path.to_string(),
                        &ty,
                        &format!("{e} evaluating rule: {}", rule.error_string()),
                    ));
                    false
                }
            };
            if !failed {
                continue;
            }
            // Upstream's ratcheting: an unchanged value keeps passing rules that do not
            // look at oldSelf (it gets a warning there; kapi drops it).
            if !rule.uses_old_self && old.is_some() && ratchet {
                continue;
            }
            let at = match (path.is_empty(), rule.field_path.is_empty()) {
                (_, true) => path.to_string(),
                (true, false) => rule.field_path.clone(),
                (false, false) => format!("{path}.{}", rule.field_path),
            };
            let mut detail = None;
            if let Some(m) = &rule.message_expression {
                let whole_budget = run.budget.remaining() <= PER_CALL_LIMIT;
                match m.eval_within(&activation, &mut run.budget) {
                    Ok(CelValue::String(s)) => {
                        let s = s.trim();
                        if !s.is_empty() && s.len() <= MAX_MESSAGE_BYTES && !s.contains('\n') {
                            detail = Some(s.to_string());
                        }
                    }
                    Err(e) if e.starts_with(super::cost::EXCEEDED) => {
                        let msg = if whole_budget {
                            "messageExpression evaluation failed due to running out of cost budget, no further validation rules will be run".to_string()
                        } else {
                            "no further validation rules will be run due to call cost exceeds limit for messageExpression".to_string()
                        };
                        run.causes.push(field::invalid(at, &ty, &msg));
                        run.stopped = true;
                        return;
                    }
                    _ => {}
                }
            }
            let detail = detail.unwrap_or_else(|| rule.message_or_default());
            // Since 1.35 a failed rule shows a scalar's value, and no value for objects and
            // arrays (kubernetes#132798, #133832); errors evaluating it still show the type.
            let shown = match self.ty.as_str() {
                "object" | "array" => None,
                _ => Some(obj).filter(|v| !v.is_object() && !v.is_array()),
            };
            run.causes.push(match (rule.reason, shown) {
                (Reason::Invalid, Some(v)) => field::invalid(at, v, &detail),
                (Reason::Invalid, None) => field::invalid_omitted(at, &detail),
                (Reason::Forbidden, _) => field::forbidden(at, &detail),
                (Reason::Required, _) => field::required_why(at, &detail),
                (Reason::Duplicate, Some(v)) => field::duplicate(at, v),
                (Reason::Duplicate, None) => field::duplicate_omitted(at),
            });
        }
    }
}

impl CrdRules {
    /// Compiles every rule of the schema; `Err` with upstream's causes for the CRD object
    /// (`<field_prefix>.properties[spec].x-kubernetes-validations[0].rule`:
    /// `compilation failed: ...`), which the CRD's validation reports as 422.
    pub fn compile(open_api_v3_schema: &Value, field_prefix: &str) -> Result<CrdRules, Vec<Cause>> {
        let mut compiler = Compiler {
            prefix: field_prefix,
            causes: Vec::new(),
            count: 0,
        };
        let (root, _) = compiler.node(open_api_v3_schema, "", true, None);
        match compiler.causes.is_empty() {
            true => Ok(CrdRules { root }),
            false => Err(compiler.causes),
        }
    }

    /// Whether any rule is present (a CRD without rules costs nothing per write).
    pub fn is_empty(&self) -> bool {
        self.root.is_none()
    }

    /// Evaluates every rule over `obj` (and `old` on update); the causes of a 422.
    pub fn validate(&self, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
        let Some(root) = &self.root else {
            return Vec::new();
        };
        let mut run = Run {
            budget: CostBudget::new(RUNTIME_COST_BUDGET),
            causes: Vec::new(),
            stopped: false,
        };
        // One stack segment for the whole walk, when the thread's is short (a core's).
        super::with_stack(|| root.validate("", obj, old, false, &mut run));
        run.causes
    }
}

#[cfg(test)]
mod tests;
