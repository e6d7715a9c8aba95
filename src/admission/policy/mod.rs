//! ValidatingAdmissionPolicy, as upstream's plugin: a write that a policy's `matchConstraints`
//! and one of its bindings' `matchResources` select (webhooks' matchers) is checked with the
//! policy's CEL: `matchConditions` decide whether it applies, `variables` are computed, and
//! each of `validations` must hold over `object`, `oldObject`, `request`, `params` (the
//! binding's `paramRef`) and `namespaceObject`. A failed validation is what the binding's
//! `validationActions` say: `Deny` refuses the write (upstream's 422/403 with the policy's
//! message and reason), `Warn` adds a `Warning`, `Audit` an audit annotation; an expression
//! that errs follows `failurePolicy`. `auditAnnotations` go into the audit event.
//!
//! Expressions are compiled on each write that a policy selects (policies are few; a compiled
//! cache keyed by the policy's resourceVersion is the step after). Not yet: the `authorizer`
//! variable and MutatingAdmissionPolicy. CEL and Kubernetes' libraries are `crate::cel`'s.

pub mod cel;

use async_trait::async_trait;
use serde_json::{Value, json};

use self::cel::{Activation, POLICY_VARIABLES, compile};
use super::matching::{admission_request, exempt, match_resources};
use super::{Attributes, Operation, Validating, cached_object, cached_objects};
use crate::api::server::Api;
use crate::api::status::{Cause, GroupResource, Status};

const GROUP: &str = "admissionregistration.k8s.io";

pub struct ValidatingPolicies;

/// One validation that did not hold (or erred under `failurePolicy: Fail`).
struct Violation {
    message: String,
    reason: String,
    index: usize,
}

fn name_of(v: &Value) -> &str {
    v.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// A validation's reason (`Invalid` unless it names another) and its HTTP code.
fn reason_of(reason: &str) -> (&'static str, u16) {
    match reason {
        "Unauthorized" => ("Unauthorized", 401),
        "Forbidden" => ("Forbidden", 403),
        "RequestEntityTooLarge" => ("RequestEntityTooLarge", 413),
        _ => ("Invalid", 422),
    }
}

#[async_trait(?Send)]
impl Validating for ValidatingPolicies {
    fn name(&self) -> &'static str {
        "ValidatingAdmissionPolicy"
    }

    async fn validate(
        &self,
        api: &Api,
        attrs: &Attributes<'_>,
        obj: Option<&Value>,
    ) -> Result<(), Status> {
        if exempt(attrs) {
            return Ok(());
        }
        let mut bindings =
            cached_objects(api, GROUP, "v1", "validatingadmissionpolicybindings", None)?;
        if bindings.is_empty() {
            return Ok(());
        }
        bindings.sort_by(|a, b| name_of(a).cmp(name_of(b)));
        let mut policies = cached_objects(api, GROUP, "v1", "validatingadmissionpolicies", None)?;
        policies.sort_by(|a, b| name_of(a).cmp(name_of(b)));
        let mut audit_failures = Vec::new();
        for policy in &policies {
            let spec = &policy["spec"];
            if !match_resources(api, spec.get("matchConstraints"), attrs, obj)? {
                continue;
            }
            for binding in bindings.iter().filter(|b| {
                b.pointer("/spec/policyName").and_then(Value::as_str) == Some(name_of(policy))
            }) {
                if !match_resources(api, binding.pointer("/spec/matchResources"), attrs, obj)? {
                    continue;
                }
                let violations = self.evaluate(api, attrs, obj, policy, binding)?;
                let actions: Vec<&str> = binding
                    .pointer("/spec/validationActions")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                let (p, b) = (name_of(policy), name_of(binding));
                for v in &violations {
                    if actions.contains(&"Warn") {
                        attrs.warn(format!(
                            "Validation failed for ValidatingAdmissionPolicy '{p}' with binding '{b}': {}",
                            v.message
                        ));
                    }
                    if actions.contains(&"Audit") {
                        audit_failures.push(json!({"message": v.message, "policy": p,
                            "binding": b, "expressionIndex": v.index,
                            "validationActions": actions}));
                    }
                }
                if actions.contains(&"Deny")
                    && let Some(v) = violations.first()
                {
                    if !audit_failures.is_empty() {
                        annotate_failures(attrs, &audit_failures);
                    }
                    return Err(denied(attrs, p, b, v));
                }
            }
        }
        if !audit_failures.is_empty() {
            annotate_failures(attrs, &audit_failures);
        }
        Ok(())
    }
}

fn annotate_failures(attrs: &Attributes<'_>, failures: &[Value]) {
    attrs.annotate(
        "validation.policy.admission.k8s.io/validation_failure".into(),
        Value::Array(failures.to_vec()).to_string(),
    );
}

/// Upstream's refusal: `NewForbidden`'s message with the validation's reason and its code,
/// and the message as a cause.
fn denied(attrs: &Attributes<'_>, policy: &str, binding: &str, v: &Violation) -> Status {
    let message = format!(
        "ValidatingAdmissionPolicy '{policy}' with binding '{binding}' denied request: {}",
        v.message
    );
    let res = attrs.resource;
    let mut s = Status::forbidden(
        GroupResource {
            group: &res.group,
            resource: &res.resource,
        },
        attrs.name,
        &message,
    );
    (s.reason, s.code) = reason_of(&v.reason);
    s.causes.push(Cause {
        reason: String::new(),
        message,
        field: String::new(),
    });
    s
}

impl ValidatingPolicies {
    /// The violations of one policy under one binding (none when its match conditions do not
    /// hold).
    fn evaluate(
        &self,
        api: &Api,
        attrs: &Attributes<'_>,
        obj: Option<&Value>,
        policy: &Value,
        binding: &Value,
    ) -> Result<Vec<Violation>, Status> {
        let spec = &policy["spec"];
        let fail_open = spec["failurePolicy"] == "Ignore";
        let erred = |what: &str, expression: &str, why: String, index: usize| {
            (!fail_open).then(|| Violation {
                message: format!("{what} '{expression}' resulted in error: {why}"),
                reason: "Invalid".into(),
                index,
            })
        };
        let params = match self.params(api, attrs, spec, binding)? {
            Params::Found(p) => p,
            Params::Skip => return Ok(Vec::new()),
            Params::Missing(why) => {
                return Ok(vec![Violation {
                    message: why,
                    reason: "Invalid".into(),
                    index: 0,
                }]);
            }
        };
        // What every expression sees, bound once; `variables` are added as they are computed.
        let mut base = Activation::default();
        let (object, old) = match attrs.operation {
            Operation::Delete => (None, attrs.old),
            _ => (obj, attrs.old),
        };
        base.bind("object", object);
        base.bind("oldObject", old);
        base.bind("request", Some(&admission_request(attrs, obj, "")));
        base.bind("params", params.as_ref());
        let namespace = match attrs.namespace {
            Some(ns) => cached_object(api, ("", "v1", "namespaces"), None, ns)?,
            None => None,
        };
        base.bind("namespaceObject", namespace.as_ref());
        // Variables, in order, each seeing those before it.
        let mut variables = serde_json::Map::new();
        for v in spec["variables"].as_array().into_iter().flatten() {
            let name = v["name"].as_str().unwrap_or("");
            let mut scoped = base.clone();
            scoped.bind("variables", Some(&Value::Object(variables.clone())));
            let expr = v["expression"].as_str().unwrap_or("");
            let value = compile(expr, POLICY_VARIABLES)
                .and_then(|c| c.eval(&scoped))
                .and_then(|r| r.json().map_err(|e| e.to_string()));
            match value {
                Ok(value) => {
                    variables.insert(name.to_string(), value);
                }
                Err(why) => return Ok(erred("variable", name, why, 0).into_iter().collect()),
            }
        }
        let mut activation = base;
        activation.bind("variables", Some(&Value::Object(variables)));
        for (i, c) in spec["matchConditions"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let expr = c["expression"].as_str().unwrap_or("");
            match compile(expr, POLICY_VARIABLES).and_then(|p| p.eval_bool(&activation)) {
                Ok(true) => {}
                Ok(false) => return Ok(Vec::new()),
                Err(why) => return Ok(erred("expression", expr, why, i).into_iter().collect()),
            }
        }
        let mut out = Vec::new();
        for (i, v) in spec["validations"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let expr = v["expression"].as_str().unwrap_or("");
            match compile(expr, POLICY_VARIABLES).and_then(|p| p.eval_bool(&activation)) {
                Ok(true) => {}
                Ok(false) => out.push(Violation {
                    message: message_of(v, expr, &activation),
                    reason: v["reason"].as_str().unwrap_or("Invalid").to_string(),
                    index: i,
                }),
                Err(why) => out.extend(erred("expression", expr, why, i)),
            }
        }
        for a in spec["auditAnnotations"].as_array().into_iter().flatten() {
            let key = a["key"].as_str().unwrap_or("");
            let expr = a["valueExpression"].as_str().unwrap_or("");
            if let Ok(value) =
                compile(expr, POLICY_VARIABLES).and_then(|p| p.eval_string(&activation))
            {
                attrs.annotate(format!("{}/{key}", name_of(policy)), value);
            }
        }
        Ok(out)
    }

    /// The binding's parameter object, when the policy takes one.
    fn params(
        &self,
        api: &Api,
        attrs: &Attributes<'_>,
        spec: &Value,
        binding: &Value,
    ) -> Result<Params, Status> {
        let Some(kind) = spec.get("paramKind").filter(|k| k.is_object()) else {
            return Ok(Params::Found(None));
        };
        let missing = || {
            let deny =
                binding.pointer("/spec/paramRef/parameterNotFoundAction") != Some(&json!("Allow"));
            if deny {
                Params::Missing(
                    "no params found for policy binding with `Deny` parameterNotFoundAction".into(),
                )
            } else {
                Params::Skip
            }
        };
        let Some(param_ref) = binding.pointer("/spec/paramRef").filter(|r| r.is_object()) else {
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
}

enum Params {
    Found(Option<Value>),
    /// Not found, and the binding allows that: the policy does not apply.
    Skip,
    /// Not found, and the binding denies that.
    Missing(String),
}

/// The validation's message: its `messageExpression`'s value, its `message`, or upstream's
/// default naming the expression.
fn message_of(v: &Value, expr: &str, activation: &Activation) -> String {
    if let Some(me) = v["messageExpression"].as_str()
        && let Ok(m) = compile(me, POLICY_VARIABLES).and_then(|p| p.eval_string(activation))
        && !m.trim().is_empty()
    {
        return m;
    }
    match v["message"].as_str().filter(|m| !m.is_empty()) {
        Some(m) => m.to_string(),
        None => format!("failed expression: {expr}"),
    }
}
