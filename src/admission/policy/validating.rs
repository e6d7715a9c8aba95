//! ValidatingAdmissionPolicy, as upstream's plugin: a write that a policy and one of its
//! bindings select (`super::selected`) is checked with the policy's CEL: `matchConditions`
//! decide whether it applies, `variables` are computed, and each of `validations` must hold.
//! A failed validation is what the binding's `validationActions` say: `Deny` refuses the
//! write (upstream's 422/403 with the policy's message and reason), `Warn` adds a `Warning`,
//! `Audit` an audit annotation; an expression that errs follows `failurePolicy`.
//! `auditAnnotations` go into the audit event.

use crate::jsonptr::At;
use async_trait::async_trait;
use serde_json::{Value, json};

use super::cel::{Activation, POLICY_VARIABLES, compile};
use super::{Params, activation, match_conditions, name_of, params, selected, with_variables};
use crate::admission::{Attributes, Validating};
use crate::api::server::Api;
use crate::api::status::{Cause, GroupResource, Status};

pub struct ValidatingPolicies;

/// One validation that did not hold (or erred under `failurePolicy: Fail`).
struct Violation {
    message: String,
    reason: String,
    index: usize,
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
        let pairs = selected(
            api,
            attrs,
            obj,
            (
                "validatingadmissionpolicies",
                "validatingadmissionpolicybindings",
            ),
        )?;
        let mut audit_failures = Vec::new();
        for (policy, binding) in &pairs {
            let violations = self.evaluate(api, attrs, obj, policy, binding)?;
            let actions: Vec<&str> = binding
                .at("/spec/validationActions")
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
        let erred = |message: String, index: usize| {
            (!fail_open).then(|| Violation {
                message,
                reason: "Invalid".into(),
                index,
            })
        };
        let params = match params(api, attrs, spec, binding)? {
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
        let base = activation(api, attrs, obj, params.as_ref())?;
        let activation = match with_variables(spec, &base, POLICY_VARIABLES) {
            Ok(a) => a,
            Err(e) => return Ok(erred(e.message, 0).into_iter().collect()),
        };
        match match_conditions(spec, &activation, POLICY_VARIABLES) {
            Ok(true) => {}
            Ok(false) => return Ok(Vec::new()),
            Err(e) => return Ok(erred(e.message, e.index).into_iter().collect()),
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
                Err(why) => out.extend(erred(
                    format!("expression '{expr}' resulted in error: {why}"),
                    i,
                )),
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
