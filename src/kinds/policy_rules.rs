//! Upstream's validation of admission policies and their bindings
//! (`pkg/apis/admissionregistration/validation`): Validating- and MutatingAdmissionPolicies
//! (failure policy, match constraints with webhooks' rule checks, validations, audit
//! annotations, mutations, reinvocation; every CEL expression compiled) and their bindings
//! (policy name, match resources, validation actions).

use serde_json::{Value, json};

use super::field::{duplicate, invalid, not_supported, required, required_why};
use super::meta::{qualified_name_errors, subdomain_errors};
use super::webhook_rules::rule;
use super::workload_rules::label_selector;
use crate::admission::policy::cel::{MUTATION_VARIABLES, POLICY_VARIABLES, compile};
use crate::api::status::Cause;

/// Which object: decides the spec's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    Validating,
    Mutating,
    ValidatingBinding,
    MutatingBinding,
}

fn list(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// A CEL expression at `field`: required, and it must compile.
fn expression(
    v: &Value,
    key: &str,
    field: String,
    why_required: Option<&str>,
    causes: &mut Vec<Cause>,
) {
    declared_expression(v, key, field, why_required, causes, POLICY_VARIABLES);
}

/// A mutation's expression: it may also construct `Object{...}` and `JSONPatch{...}`.
fn mutation_expression(v: &Value, field: String, causes: &mut Vec<Cause>) {
    declared_expression(v, "expression", field, None, causes, MUTATION_VARIABLES);
}

fn declared_expression(
    v: &Value,
    key: &str,
    field: String,
    why_required: Option<&str>,
    causes: &mut Vec<Cause>,
    declared: &[&str],
) {
    let expr = str_of(v, key);
    if expr.is_empty() {
        causes.push(match why_required {
            Some(why) => required_why(field, why),
            None => required(field),
        });
        return;
    }
    if let Err(why) = compile(expr, declared) {
        causes.push(invalid(field, &json!(expr), &why));
    }
}

/// `validateMatchResources`: selectors, match policy, the rules (required for a policy's
/// `matchConstraints`), and a mutating policy's operations.
fn match_resources(
    m: &Value,
    at: &str,
    required_rules: bool,
    mutating: bool,
    causes: &mut Vec<Cause>,
) {
    for sel in ["namespaceSelector", "objectSelector"] {
        if let Some(s) = m.get(sel).filter(|s| s.is_object()) {
            label_selector(s, &format!("{at}.{sel}"), causes);
        }
    }
    if let Some(p) = m.get("matchPolicy").filter(|p| !p.is_null())
        && !p
            .as_str()
            .is_some_and(|p| ["Equivalent", "Exact"].contains(&p))
    {
        causes.push(not_supported(
            format!("{at}.matchPolicy"),
            p,
            &["Equivalent", "Exact"],
        ));
    }
    let rules = list(&m["resourceRules"]);
    if required_rules && rules.is_empty() {
        causes.push(required(format!("{at}.resourceRules")));
    }
    for (key, rules) in [
        ("resourceRules", rules),
        ("excludeResourceRules", list(&m["excludeResourceRules"])),
    ] {
        for (i, r) in rules.iter().enumerate() {
            rule(&format!("{at}.{key}[{i}]"), r, causes);
            for (j, n) in list(&r["resourceNames"]).iter().enumerate() {
                for msg in subdomain_errors(n.as_str().unwrap_or("")) {
                    causes.push(invalid(
                        format!("{at}.{key}[{i}].resourceNames[{j}]"),
                        n,
                        msg,
                    ));
                }
            }
            // Mutating policies see no deletes.
            if mutating && key == "resourceRules" {
                const OPS: &[&str] = &["*", "CONNECT", "CREATE", "UPDATE"];
                for op in list(&r["operations"]) {
                    if op.as_str().is_some_and(|o| !OPS.contains(&o)) {
                        causes.push(not_supported(format!("{at}.{key}.operations"), op, OPS));
                    }
                }
            }
        }
    }
}

fn failure_policy(spec: &Value, causes: &mut Vec<Cause>) {
    if let Some(p) = spec.get("failurePolicy").filter(|p| !p.is_null())
        && !p.as_str().is_some_and(|p| ["Fail", "Ignore"].contains(&p))
    {
        causes.push(not_supported(
            "spec.failurePolicy".into(),
            p,
            &["Fail", "Ignore"],
        ));
    }
}

fn match_conditions(spec: &Value, causes: &mut Vec<Cause>) {
    let mut names = Vec::new();
    for (i, c) in list(&spec["matchConditions"]).iter().enumerate() {
        let f = format!("spec.matchConditions[{i}]");
        let name = str_of(c, "name");
        if name.is_empty() {
            causes.push(required(format!("{f}.name")));
        } else {
            for msg in qualified_name_errors(name) {
                causes.push(invalid(format!("{f}.name"), &json!(name), &msg));
            }
            if names.contains(&name) {
                causes.push(duplicate(format!("{f}.name"), &json!(name)));
            }
            names.push(name);
        }
        expression(c, "expression", format!("{f}.expression"), None, causes);
    }
}

fn variables(spec: &Value, causes: &mut Vec<Cause>) {
    for (i, v) in list(&spec["variables"]).iter().enumerate() {
        let f = format!("spec.variables[{i}]");
        if str_of(v, "name").is_empty() {
            causes.push(required(format!("{f}.name")));
        }
        expression(v, "expression", format!("{f}.expression"), None, causes);
    }
}

fn validating_policy(spec: &Value, causes: &mut Vec<Cause>) {
    failure_policy(spec, causes);
    match spec.get("matchConstraints").filter(|m| m.is_object()) {
        None => causes.push(required("spec.matchConstraints".into())),
        Some(m) => match_resources(m, "spec.matchConstraints", true, false, causes),
    }
    let validations = list(&spec["validations"]);
    let annotations = list(&spec["auditAnnotations"]);
    if validations.is_empty() && annotations.is_empty() {
        let why = "validations or auditAnnotations must contain at least one item";
        causes.push(required_why("spec.validations".into(), why));
        causes.push(required_why("spec.auditAnnotations".into(), why));
    }
    for (i, v) in validations.iter().enumerate() {
        let f = format!("spec.validations[{i}]");
        expression(
            v,
            "expression",
            format!("{f}.expression"),
            Some("expression is not specified"),
            causes,
        );
        if let Some(me) = v.get("messageExpression").and_then(Value::as_str)
            && let Err(why) = compile(me, POLICY_VARIABLES)
        {
            causes.push(invalid(format!("{f}.messageExpression"), &json!(me), &why));
        }
        const REASONS: &[&str] = &[
            "Unauthorized",
            "Forbidden",
            "Invalid",
            "RequestEntityTooLarge",
        ];
        if let Some(r) = v.get("reason").filter(|r| !r.is_null())
            && !r.as_str().is_some_and(|r| REASONS.contains(&r))
        {
            causes.push(not_supported(format!("{f}.reason"), r, REASONS));
        }
    }
    for (i, a) in annotations.iter().enumerate() {
        let f = format!("spec.auditAnnotations[{i}]");
        let key = str_of(a, "key");
        if key.is_empty() {
            causes.push(required(format!("{f}.key")));
        }
        expression(
            a,
            "valueExpression",
            format!("{f}.valueExpression"),
            None,
            causes,
        );
    }
    match_conditions(spec, causes);
    variables(spec, causes);
}

fn mutating_policy(spec: &Value, causes: &mut Vec<Cause>) {
    failure_policy(spec, causes);
    match spec.get("matchConstraints").filter(|m| m.is_object()) {
        None => causes.push(required("spec.matchConstraints".into())),
        Some(m) => match_resources(m, "spec.matchConstraints", true, true, causes),
    }
    let mutations = list(&spec["mutations"]);
    if mutations.is_empty() {
        causes.push(required_why(
            "spec.mutations".into(),
            "mutations must contain at least one item",
        ));
    }
    for (i, m) in mutations.iter().enumerate() {
        let f = format!("spec.mutations[{i}]");
        match str_of(m, "patchType") {
            "" => causes.push(required(format!("{f}.patchType"))),
            "ApplyConfiguration" => match m.get("applyConfiguration").filter(|a| a.is_object()) {
                None => causes.push(required_why(
                    format!("{f}.applyConfiguration"),
                    "must be specified when patchType is ApplyConfiguration",
                )),
                Some(a) => {
                    mutation_expression(a, format!("{f}.applyConfiguration.expression"), causes)
                }
            },
            "JSONPatch" => match m.get("jsonPatch").filter(|a| a.is_object()) {
                None => causes.push(required_why(
                    format!("{f}.jsonPatch"),
                    "must be specified when patchType is JSONPatch",
                )),
                Some(a) => mutation_expression(a, format!("{f}.jsonPatch.expression"), causes),
            },
            other => causes.push(not_supported(
                format!("{f}.patchType"),
                &json!(other),
                &["ApplyConfiguration", "JSONPatch"],
            )),
        }
    }
    match spec.get("reinvocationPolicy") {
        None | Some(Value::Null) => causes.push(required("spec.reinvocationPolicy".into())),
        Some(p) if p == "" => causes.push(required("spec.reinvocationPolicy".into())),
        Some(p)
            if !p
                .as_str()
                .is_some_and(|p| ["IfNeeded", "Never"].contains(&p)) =>
        {
            causes.push(not_supported(
                "spec.reinvocationPolicy".into(),
                p,
                &["IfNeeded", "Never"],
            ))
        }
        Some(_) => {}
    }
    match_conditions(spec, causes);
    variables(spec, causes);
}

fn binding(spec: &Value, validating: bool, causes: &mut Vec<Cause>) {
    let name = str_of(spec, "policyName");
    if name.is_empty() {
        causes.push(required("spec.policyName".into()));
    } else {
        for msg in subdomain_errors(name) {
            causes.push(invalid("spec.policyName".into(), &json!(name), msg));
        }
    }
    if let Some(m) = spec.get("matchResources").filter(|m| m.is_object()) {
        match_resources(m, "spec.matchResources", false, !validating, causes);
    }
    if validating {
        const ACTIONS: &[&str] = &["Audit", "Deny", "Warn"];
        let actions = list(&spec["validationActions"]);
        if actions.is_empty() {
            causes.push(required_why(
                "spec.validationActions".into(),
                "at least one validation action is required",
            ));
        }
        let mut seen = Vec::new();
        for (i, a) in actions.iter().enumerate() {
            let f = format!("spec.validationActions[{i}]");
            if !a.as_str().is_some_and(|a| ACTIONS.contains(&a)) {
                causes.push(not_supported(f, a, ACTIONS));
            } else if seen.contains(&a) {
                causes.push(duplicate(f, a));
            } else {
                seen.push(a);
            }
        }
    }
}

/// Every cause of one policy or binding's own rules.
pub fn validate(obj: &Value, kind: PolicyKind) -> Vec<Cause> {
    let mut causes = Vec::new();
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    match kind {
        PolicyKind::Validating => validating_policy(spec, &mut causes),
        PolicyKind::Mutating => mutating_policy(spec, &mut causes),
        PolicyKind::ValidatingBinding => binding(spec, true, &mut causes),
        PolicyKind::MutatingBinding => binding(spec, false, &mut causes),
    }
    causes
}

/// An update of a policy or binding (`Validate<Kind>Update`): the create rules, with the CEL
/// expressions the stored object already had not compiled again.
pub fn validate_update(obj: &Value, old: &Value, kind: PolicyKind) -> Vec<Cause> {
    super::immutable::ratchet_expressions(obj, old, validate(obj, kind))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::field_reasons as fields;

    #[test]
    fn a_policy_needs_rules_and_compiling_validations() {
        let p = json!({"spec": {"failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{"operations": ["CREATE"], "apiGroups": ["apps"],
                "apiVersions": ["v1"], "resources": ["deployments"]}]},
            "validations": [{"expression": "object.spec.replicas <= 5"}, {"expression": "nope.x"}]}});
        let causes = validate(&p, PolicyKind::Validating);
        assert_eq!(
            fields(&causes),
            vec![("spec.validations[1].expression", "FieldValueInvalid")]
        );
        assert!(
            causes[0].message.contains("undeclared reference to 'nope'"),
            "{}",
            causes[0].message
        );
        let empty = validate(&json!({"spec": {}}), PolicyKind::Validating);
        assert_eq!(
            fields(&empty),
            vec![
                ("spec.matchConstraints", "FieldValueRequired"),
                ("spec.validations", "FieldValueRequired"),
                ("spec.auditAnnotations", "FieldValueRequired"),
            ]
        );
    }

    #[test]
    fn a_binding_names_its_policy_and_its_actions() {
        let b = json!({"spec": {"policyName": "Bad_Name", "validationActions": ["Deny", "Deny", "Log"]}});
        assert_eq!(
            fields(&validate(&b, PolicyKind::ValidatingBinding)),
            vec![
                ("spec.policyName", "FieldValueInvalid"),
                ("spec.validationActions[1]", "FieldValueDuplicate"),
                ("spec.validationActions[2]", "FieldValueNotSupported"),
            ]
        );
    }

    #[test]
    fn an_update_does_not_compile_stored_expressions_again() {
        let p = json!({"spec": {"failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{"operations": ["CREATE"], "apiGroups": ["apps"],
                "apiVersions": ["v1"], "resources": ["deployments"]}]},
            "validations": [{"expression": "nope.x"}]}});
        assert_eq!(validate(&p, PolicyKind::Validating).len(), 1);
        assert!(validate_update(&p, &p, PolicyKind::Validating).is_empty());
        let mut q = p.clone();
        q["spec"]["validations"][0]["expression"] = json!("nope.y");
        assert_eq!(
            fields(&validate_update(&q, &p, PolicyKind::Validating)),
            vec![("spec.validations[0].expression", "FieldValueInvalid")]
        );
    }
}
