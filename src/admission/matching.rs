//! Which writes an admission webhook or policy sees, as upstream's matchers decide: rules
//! (operations, groups, versions, resources and subresources, scope), namespace and object
//! selectors, a policy's `matchResources` (with its exclusions); and the `request` they are
//! shown (the AdmissionReview's, also CEL's `request`).

use crate::jsonptr::At;
use serde_json::{Value, json};

use super::{Attributes, Operation, cached_object};
use crate::api::server::Api;
use crate::api::status::Status;

/// Resources no webhook or policy sees (upstream's `IsExemptAdmissionConfigurationResource`):
/// a webhook or policy could otherwise lock itself out of being fixed.
pub(super) const EXEMPT: &[&str] = &[
    "validatingwebhookconfigurations",
    "mutatingwebhookconfigurations",
    "validatingadmissionpolicies",
    "validatingadmissionpolicybindings",
    "mutatingadmissionpolicies",
    "mutatingadmissionpolicybindings",
];

pub(super) fn listed(list: &Value, want: &str) -> bool {
    list.as_array()
        .is_some_and(|a| a.iter().any(|v| v == "*" || v == want))
}

pub(super) fn operation_name(op: Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
    }
}

/// Upstream's rule matcher: operation, group, version, resource (`*` matches every resource,
/// `*/*` and `res/*` every subresource too, `*/sub` that subresource of any), scope.
pub(super) fn rule_matches(rule: &Value, attrs: &Attributes<'_>) -> bool {
    let res = attrs.resource;
    let sub = attrs.subresource.unwrap_or("");
    let resource_ok = rule["resources"].as_array().is_some_and(|list| {
        list.iter().filter_map(Value::as_str).any(|r| {
            let (r_res, r_sub) = r.split_once('/').unwrap_or((r, ""));
            (r_res == "*" || r_res == res.resource) && (r_sub == "*" || r_sub == sub)
        })
    });
    let scope_ok = match rule["scope"].as_str().unwrap_or("*") {
        "Cluster" => !res.namespaced,
        "Namespaced" => res.namespaced,
        _ => true,
    };
    listed(&rule["operations"], operation_name(attrs.operation))
        && listed(&rule["apiGroups"], &res.group)
        && listed(&rule["apiVersions"], &res.version)
        && resource_ok
        && scope_ok
}

/// A LabelSelector against labels; an empty selector selects everything (webhooks' rule).
pub(super) fn selector_selects(selector: &Value, labels: Option<&Value>) -> bool {
    use crate::authz::aggregate::{label_pairs, requirements, selector_matches};
    requirements(selector) == 0
        || selector_matches(selector, &label_pairs(labels.unwrap_or(&Value::Null)))
}

pub(super) fn labels_of(obj: Option<&Value>) -> Option<&Value> {
    obj.and_then(|o| o.at("/metadata/labels"))
}

/// The namespace selector: a namespaced object's namespace's labels, a Namespace's own;
/// other cluster-scoped objects are always selected.
pub(super) fn namespace_selected(
    api: &Api,
    selector: &Value,
    attrs: &Attributes<'_>,
    obj: Option<&Value>,
) -> Result<bool, Status> {
    let res = attrs.resource;
    if res.group.is_empty() && res.resource == "namespaces" {
        return Ok(selector_selects(selector, labels_of(obj))
            || selector_selects(selector, labels_of(attrs.old)));
    }
    if !res.namespaced {
        return Ok(true);
    }
    if selector_selects(selector, None) && selector_selects(selector, Some(&json!({}))) {
        // An empty selector: no need to look the namespace up.
        return Ok(true);
    }
    let ns = attrs.namespace.unwrap_or("");
    let namespace = cached_object(api, ("", "v1", "namespaces"), None, ns)?;
    let labels = namespace.as_ref().and_then(|n| n.at("/metadata/labels"));
    Ok(selector_selects(selector, labels))
}

pub(super) fn object_selected(selector: &Value, obj: Option<&Value>, old: Option<&Value>) -> bool {
    selector_selects(selector, labels_of(obj)) || selector_selects(selector, labels_of(old))
}

/// The `request` of an AdmissionReview (and of a policy's CEL `request` variable).
pub(super) fn admission_request(attrs: &Attributes<'_>, obj: Option<&Value>, uid: &str) -> Value {
    let res = attrs.resource;
    let kind = json!({"group": res.group, "version": res.version, "kind": res.kind});
    let resource = json!({"group": res.group, "version": res.version, "resource": res.resource});
    let user = attrs.user;
    let mut user_info = json!({"username": user.name, "groups": user.groups});
    if !user.uid.is_empty() {
        user_info["uid"] = json!(user.uid);
    }
    if !user.extra.is_empty() {
        user_info["extra"] = json!(user.extra);
    }
    let options_kind = match attrs.operation {
        Operation::Create => "CreateOptions",
        Operation::Update => "UpdateOptions",
        Operation::Delete => "DeleteOptions",
    };
    let mut request = json!({
        "uid": uid,
        "kind": kind,
        "resource": resource,
        "requestKind": kind,
        "requestResource": resource,
        "name": attrs.name,
        "operation": operation_name(attrs.operation),
        "userInfo": user_info,
        "object": obj.cloned().unwrap_or(Value::Null),
        "oldObject": attrs.old.cloned().unwrap_or(Value::Null),
        "dryRun": attrs.dry_run,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": options_kind},
    });
    if let Some(sub) = attrs.subresource {
        request["subResource"] = json!(sub);
        request["requestSubResource"] = json!(sub);
    }
    if let Some(ns) = attrs.namespace {
        request["namespace"] = json!(ns);
    }
    request
}

/// CEL's `authorizer` for the write: the request's user, `requestResource` its resource.
pub(super) fn authorizer(api: &Api, attrs: &Attributes<'_>) -> ::cel::Value {
    let res = attrs.resource;
    let request = crate::cel::RequestResource {
        group: res.group.clone(),
        resource: res.resource.clone(),
        subresource: attrs.subresource.unwrap_or("").to_string(),
        namespace: attrs.namespace.unwrap_or("").to_string(),
        name: attrs.name.to_string(),
    };
    crate::cel::Authorizer::new(api.authz.clone(), attrs.user.clone(), Some(request)).value()
}

/// Whether a write is exempt from every webhook and policy.
pub(super) fn exempt(attrs: &Attributes<'_>) -> bool {
    let res = attrs.resource;
    res.group == "admissionregistration.k8s.io" && EXEMPT.contains(&res.resource.as_str())
}

/// A policy's or binding's `matchResources`: a rule of `resourceRules` matches (with its
/// `resourceNames`, when it has some), none of `excludeResourceRules` does, and the namespace
/// and object selectors select. `None` (a binding without one) matches everything.
pub(super) fn match_resources(
    api: &Api,
    m: Option<&Value>,
    attrs: &Attributes<'_>,
    obj: Option<&Value>,
) -> Result<bool, Status> {
    let Some(m) = m.filter(|m| m.is_object()) else {
        return Ok(true);
    };
    let named = |r: &Value| {
        r["resourceNames"]
            .as_array()
            .is_none_or(|n| n.is_empty() || n.iter().any(|v| v == attrs.name))
    };
    let included = match m["resourceRules"].as_array() {
        Some(rules) => rules.iter().any(|r| rule_matches(r, attrs) && named(r)),
        None => true,
    };
    let excluded = m["excludeResourceRules"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| rule_matches(r, attrs) && named(r));
    Ok(included
        && !excluded
        && namespace_selected(api, &m["namespaceSelector"], attrs, obj)?
        && object_selected(&m["objectSelector"], obj, attrs.old))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_selectors_select_everything() {
        assert!(selector_selects(&json!({}), None));
        assert!(selector_selects(&Value::Null, Some(&json!({"a": "b"}))));
        let sel = json!({"matchLabels": {"team": "a"}});
        assert!(selector_selects(&sel, Some(&json!({"team": "a"}))));
        assert!(!selector_selects(&sel, Some(&json!({"team": "b"}))));
        assert!(!selector_selects(&sel, None));
    }
}
