//! MutatingAdmissionPolicy, as upstream's plugin (before MutatingAdmissionWebhook in the
//! mutating chain): each (policy, binding, params) that selects the write runs the policy's
//! `mutations` in order over the object as the previous ones left it — `JSONPatch` or
//! `ApplyConfiguration` (`super::patch`) — once its `matchConditions` hold. An expression or
//! patch that fails refuses the write under `failurePolicy: Fail` (403, reason `Invalid`,
//! `policy '<p>' with binding '<b>' denied request: <why>`) and is skipped under `Ignore`.
//! `reinvocationPolicy: IfNeeded` policies run again on the chain's second pass when a later
//! policy or webhook changed the object (`crate::admission::reinvocation`). The kind's
//! defaults are applied after each mutation, as upstream applies them.

use crate::jsonptr::At;
use async_trait::async_trait;
use serde_json::Value;

use super::cel::{Activation, MUTATION_VARIABLES, compile};
use super::{
    Params, activation, match_conditions, name_of, params, patch, selected, with_variables,
};
use crate::admission::{Attributes, Mutating};
use crate::api::server::Api;
use crate::api::status::{Cause, GroupResource, Status};

pub struct MutatingPolicies;

#[async_trait(?Send)]
impl Mutating for MutatingPolicies {
    fn name(&self) -> &'static str {
        "MutatingAdmissionPolicy"
    }

    fn reinvocable(&self) -> bool {
        true
    }

    async fn admit(
        &self,
        api: &Api,
        attrs: &Attributes<'_>,
        obj: Option<&mut Value>,
    ) -> Result<(), Status> {
        // A delete has no object to mutate.
        let Some(obj) = obj else {
            return Ok(());
        };
        let pairs = selected(
            api,
            attrs,
            Some(obj),
            (
                "mutatingadmissionpolicies",
                "mutatingadmissionpolicybindings",
            ),
        )?;
        if pairs.is_empty() {
            return Ok(());
        }
        {
            let mut r = attrs.reinvocation.borrow_mut();
            if r.reinvoking && r.policies.changed_since_last_output(Some(obj)) {
                r.policies.require_previously_invoked();
            }
        }
        for (policy, binding) in &pairs {
            invoke(api, attrs, obj, policy, binding)?;
        }
        attrs
            .reinvocation
            .borrow_mut()
            .policies
            .set_last_output(Some(obj));
        Ok(())
    }
}

/// One policy under one binding: its mutations applied to `obj`, unless its params or match
/// conditions say it does not apply (or, on the second pass, it is not due again).
fn invoke(
    api: &Api,
    attrs: &Attributes<'_>,
    obj: &mut Value,
    policy: &Value,
    binding: &Value,
) -> Result<(), Status> {
    let spec = &policy["spec"];
    let (p, b) = (name_of(policy), name_of(binding));
    let fail_open = spec["failurePolicy"] == "Ignore";
    let refuse = |message: String, reason: &'static str| {
        if fail_open {
            Ok(())
        } else {
            Err(denied(attrs, p, b, message, reason))
        }
    };
    let params = match params(api, attrs, spec, binding)? {
        Params::Found(params) => params,
        Params::Skip => return Ok(()),
        Params::Missing(why) => {
            return refuse(format!("failed to configure binding: {why}"), "");
        }
    };
    let base = activation(api, attrs, Some(obj), params.as_ref())?;
    let activation = match with_variables(spec, &base, MUTATION_VARIABLES) {
        Ok(a) => a,
        Err(e) => return refuse(e.message, "Invalid"),
    };
    match match_conditions(spec, &activation, MUTATION_VARIABLES) {
        Ok(true) => {}
        Ok(false) => return Ok(()),
        Err(e) => return refuse(e.message, "Invalid"),
    }
    let param_key = params.as_ref().map_or(String::new(), |p| {
        let ns = p.at("/metadata/namespace").and_then(Value::as_str);
        format!("{}/{}", ns.unwrap_or(""), name_of(p))
    });
    let key = format!("{p}/{b}/{param_key}");
    if attrs.reinvocation.borrow().reinvoking && !attrs.reinvocation.borrow().policies.is_due(&key)
    {
        return Ok(());
    }
    let before = obj.clone();
    let res = attrs.resource;
    for mutation in spec["mutations"].as_array().into_iter().flatten() {
        let mut scoped = activation.clone();
        scoped.bind("object", Some(obj));
        match mutate(&scoped, mutation, res, obj) {
            Ok(mut mutated) => {
                // Upstream defaults the object after each mutation (what a mutation added
                // gets its defaults before the next one sees it).
                res.strategy.default(&mut mutated);
                *obj = mutated;
            }
            Err(why) => refuse(why, "Invalid")?,
        }
    }
    let mut r = attrs.reinvocation.borrow_mut();
    if *obj != before {
        r.policies.require_previously_invoked();
        r.requested = true;
    }
    if spec["reinvocationPolicy"] == "IfNeeded" {
        r.policies.add_previously_invoked(key);
    }
    Ok(())
}

/// The object after one mutation.
fn mutate(
    activation: &Activation,
    mutation: &Value,
    res: &crate::api::registry::Resource,
    obj: &Value,
) -> Result<Value, String> {
    let patch_type = mutation["patchType"].as_str().unwrap_or("");
    let expr = match patch_type {
        "JSONPatch" => &mutation["jsonPatch"]["expression"],
        "ApplyConfiguration" => &mutation["applyConfiguration"]["expression"],
        other => return Err(format!("unsupported patch type {other:?}")),
    };
    let expr = expr.as_str().unwrap_or("");
    let program = compile(expr, MUTATION_VARIABLES)?;
    let value = program
        .eval(activation)
        .and_then(|v| v.json().map_err(|e| e.to_string()))
        .map_err(|why| format!("expression '{expr}' resulted in error: {why}"))?;
    if patch_type == "JSONPatch" {
        return patch::json_patch(obj, &value);
    }
    let model = res
        .strategy
        .field_model()
        .unwrap_or_else(crate::ssa::Model::builtin);
    patch::apply_configuration(&model, (&res.api_version(), &res.kind), obj, &value)
}

/// Upstream's refusal of a write by a policy: 403 (reason `Invalid` for an expression or patch
/// that failed), the policy's and binding's names in the message and as the one cause.
fn denied(
    attrs: &Attributes<'_>,
    policy: &str,
    binding: &str,
    why: String,
    reason: &'static str,
) -> Status {
    let message = format!("policy '{policy}' with binding '{binding}' denied request: {why}");
    let res = attrs.resource;
    let gr = GroupResource {
        group: &res.group,
        resource: &res.resource,
    };
    let mut s = Status::forbidden(gr, attrs.name, "");
    s.message = message.clone();
    if !reason.is_empty() {
        s.reason = reason;
    }
    s.causes.push(Cause {
        reason: String::new(),
        message,
        field: String::new(),
    });
    s
}
