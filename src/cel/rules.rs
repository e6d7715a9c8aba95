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
use serde_json::Value;

use self::compile::Compiler;
use self::values::{Shape, to_cel};
use super::{Activation, Compiled, CostBudget, PER_CALL_LIMIT};
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

/// The compiled rules of one CRD version's schema. Immutable; shared by every core.
pub struct CrdRules {
    root: Option<Node>,
}

impl std::fmt::Debug for CrdRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CrdRules")
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

mod compile;
#[cfg(test)]
mod tests;
mod values;
