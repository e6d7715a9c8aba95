//! Admission policies, as upstream's generic policy plugin: ValidatingAdmissionPolicy
//! (`validating`) and MutatingAdmissionPolicy (`mutating`, whose mutations `patch` applies).
//! Shared here: which (policy, binding) pairs select a write (the policy's
//! `matchConstraints`, the binding's `matchResources`: webhooks' matchers), the binding's
//! parameter object (`paramRef`, `parameterNotFoundAction`), and what every expression sees
//! (`object`, `oldObject`, `request`, `params`, `namespaceObject`, `authorizer`,
//! `variables`) with the policy's `matchConditions`.
//!
//! Expressions are compiled on each write that a policy selects (policies are few; a compiled
//! cache keyed by the policy's resourceVersion is the step after). CEL and Kubernetes' CEL
//! libraries are `crate::cel`'s.

pub mod cel;
mod mutating;
mod patch;
mod validating;

use crate::jsonptr::At;
use std::collections::HashMap;
use std::sync::Arc;

use ::cel::Value as CelValue;
use ::cel::objects::{Key, Map as CelMap};
use serde_json::{Value, json};

pub use self::mutating::MutatingPolicies;
pub use self::validating::ValidatingPolicies;

use self::cel::{Activation, compile};
use super::matching::{admission_request, authorizer, exempt, match_resources};
use super::{Attributes, Operation, cached_object, cached_objects};
use crate::api::server::Api;
use crate::api::status::Status;

const GROUP: &str = "admissionregistration.k8s.io";

fn name_of(v: &Value) -> &str {
    v.at("/metadata/name").and_then(Value::as_str).unwrap_or("")
}

/// The (policy, binding) pairs of `policies` and `bindings` (resources of
/// admissionregistration.k8s.io/v1) that select the write: policies in name order, each with
/// its bindings in name order.
fn selected(
    api: &Api,
    attrs: &Attributes<'_>,
    obj: Option<&Value>,
    (policies, bindings): (&str, &str),
) -> Result<Vec<(Value, Value)>, Status> {
    if exempt(attrs) {
        return Ok(Vec::new());
    }
    let mut bindings = cached_objects(api, GROUP, "v1", bindings, None)?;
    if bindings.is_empty() {
        return Ok(Vec::new());
    }
    bindings.sort_by(|a, b| name_of(a).cmp(name_of(b)));
    let mut policies = cached_objects(api, GROUP, "v1", policies, None)?;
    policies.sort_by(|a, b| name_of(a).cmp(name_of(b)));
    let mut out = Vec::new();
    for policy in policies {
        if !match_resources(api, policy.at("/spec/matchConstraints"), attrs, obj)? {
            continue;
        }
        for binding in bindings
            .iter()
            .filter(|b| b.at("/spec/policyName").and_then(Value::as_str) == Some(name_of(&policy)))
        {
            if match_resources(api, binding.at("/spec/matchResources"), attrs, obj)? {
                out.push((policy.clone(), binding.clone()));
            }
        }
    }
    Ok(out)
}

enum Params {
    Found(Option<Value>),
    /// Not found, and the binding allows that: the policy does not apply.
    Skip,
    /// Not found, and the binding denies that.
    Missing(String),
}

/// The binding's parameter object, when the policy takes one.
fn params(
    api: &Api,
    attrs: &Attributes<'_>,
    spec: &Value,
    binding: &Value,
) -> Result<Params, Status> {
    let Some(kind) = spec.get("paramKind").filter(|k| k.is_object()) else {
        return Ok(Params::Found(None));
    };
    let missing = || {
        let deny = binding.at("/spec/paramRef/parameterNotFoundAction") != Some(&json!("Allow"));
        if deny {
            Params::Missing(
                "no params found for policy binding with `Deny` parameterNotFoundAction".into(),
            )
        } else {
            Params::Skip
        }
    };
    let Some(param_ref) = binding.at("/spec/paramRef").filter(|r| r.is_object()) else {
        return Ok(missing());
    };
    let api_version = kind["apiVersion"].as_str().unwrap_or("");
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let custom = api.registry.custom();
    let Some(res) = api
        .registry
        .all()
        .iter()
        .chain(custom.rows.iter().map(|r| r.as_ref()))
        .find(|r| r.group == group && r.version == version && r.kind == kind["kind"])
    else {
        return Ok(missing());
    };
    let namespace = match param_ref["namespace"].as_str().filter(|n| !n.is_empty()) {
        Some(ns) => Some(ns.to_string()),
        None if res.namespaced => attrs.namespace.map(str::to_string),
        None => None,
    };
    let candidates = cached_objects(api, group, version, &res.resource, namespace.as_deref())?;
    let found = match param_ref["name"].as_str().filter(|n| !n.is_empty()) {
        Some(name) => candidates.into_iter().find(|c| name_of(c) == name),
        None => {
            use crate::authz::aggregate::{label_pairs, selector_matches};
            let selector = &param_ref["selector"];
            candidates
                .into_iter()
                .find(|c| selector_matches(selector, &label_pairs(&c["metadata"]["labels"])))
        }
    };
    Ok(match found {
        Some(p) => Params::Found(Some(p)),
        None => missing(),
    })
}

/// What every expression of a policy sees but its `variables`: the write's objects and
/// request, the binding's params, the namespace, the authorizer for the request's user.
fn activation(
    api: &Api,
    attrs: &Attributes<'_>,
    obj: Option<&Value>,
    params: Option<&Value>,
) -> Result<Activation, Status> {
    let mut base = Activation::default();
    let object = match attrs.operation {
        Operation::Delete => None,
        _ => obj,
    };
    base.bind("object", object);
    base.bind("oldObject", attrs.old);
    base.bind("request", Some(&admission_request(attrs, obj, "")));
    base.bind("params", params);
    let namespace = match attrs.namespace {
        Some(ns) => cached_object(api, ("", "v1", "namespaces"), None, ns)?,
        None => None,
    };
    base.bind("namespaceObject", namespace.as_ref());
    base.bind_value("authorizer", authorizer(api, attrs));
    Ok(base)
}

/// A variable or match condition that erred: what upstream names it by, and why.
struct Erred {
    index: usize,
    message: String,
}

/// `base` with the policy's `variables` bound, computed in order, each seeing those before it
/// (as CEL values: a variable may hold an authorizer's decision, which has no JSON form).
fn with_variables(spec: &Value, base: &Activation, declared: &[&str]) -> Result<Activation, Erred> {
    let mut variables: HashMap<Key, CelValue> = HashMap::new();
    let as_value = |vars: &HashMap<Key, CelValue>| {
        CelValue::Map(CelMap {
            map: Arc::new(vars.clone()),
        })
    };
    for (index, v) in spec["variables"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let name = v["name"].as_str().unwrap_or("");
        let mut scoped = base.clone();
        scoped.bind_value("variables", as_value(&variables));
        let expr = v["expression"].as_str().unwrap_or("");
        match compile(expr, declared).and_then(|c| c.eval(&scoped)) {
            Ok(value) => {
                variables.insert(Key::from(name.to_string()), value);
            }
            Err(why) => {
                return Err(Erred {
                    index,
                    message: format!("variable '{name}' resulted in error: {why}"),
                });
            }
        }
    }
    let mut activation = base.clone();
    activation.bind_value("variables", as_value(&variables));
    Ok(activation)
}

/// Whether every one of the policy's `matchConditions` holds, as upstream's matcher decides:
/// one that is false wins over one that erred; else the first error.
fn match_conditions(
    spec: &Value,
    activation: &Activation,
    declared: &[&str],
) -> Result<bool, Erred> {
    let mut error = None;
    for (index, c) in spec["matchConditions"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let expr = c["expression"].as_str().unwrap_or("");
        match compile(expr, declared).and_then(|p| p.eval_bool(activation)) {
            Ok(true) => {}
            Ok(false) => return Ok(false),
            Err(why) => {
                error.get_or_insert(Erred {
                    index,
                    message: format!("expression '{expr}' resulted in error: {why}"),
                });
            }
        }
    }
    error.map_or(Ok(true), Err)
}
