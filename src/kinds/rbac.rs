//! RBAC objects (`pkg/apis/rbac/validation`): names are path segments; a rule needs verbs and,
//! unless it is about non-resource URLs, API groups and resources; a binding's roleRef names a
//! Role (RoleBindings) or ClusterRole in the RBAC group, and each subject is a ServiceAccount
//! (core group), User or Group (RBAC group) with a name.

use crate::jsonptr::At;
use serde_json::{Value, json};

use super::podspec_rules::{not_supported, required, required_why};
use super::{NameRule, Strategy};
use crate::api::status::Cause;

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

#[derive(Debug)]
pub enum Rbac {
    Role,
    Binding { cluster: bool },
}

pub static ROLES: Rbac = Rbac::Role;
pub static ROLE_BINDINGS: Rbac = Rbac::Binding { cluster: false };
pub static CLUSTER_ROLE_BINDINGS: Rbac = Rbac::Binding { cluster: true };

fn non_empty_list(v: &Value, key: &str) -> bool {
    v.get(key)
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
}

fn rules(obj: &Value, causes: &mut Vec<Cause>) {
    let rules = obj.get("rules").and_then(Value::as_array);
    for (i, r) in rules.into_iter().flatten().enumerate() {
        let f = format!("rules[{i}]");
        if !non_empty_list(r, "verbs") {
            causes.push(required_why(
                format!("{f}.verbs"),
                "verbs must contain at least one value",
            ));
        }
        if non_empty_list(r, "nonResourceURLs") {
            continue;
        }
        if !non_empty_list(r, "apiGroups") {
            causes.push(required_why(
                format!("{f}.apiGroups"),
                "resource rules must supply at least one api group",
            ));
        }
        if !non_empty_list(r, "resources") {
            causes.push(required_why(
                format!("{f}.resources"),
                "resource rules must supply at least one resource",
            ));
        }
    }
}

fn binding(obj: &Value, cluster: bool, causes: &mut Vec<Cause>) {
    let role_ref = obj.get("roleRef").cloned().unwrap_or(json!({}));
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    if s(&role_ref, "apiGroup") != RBAC_GROUP {
        causes.push(not_supported(
            "roleRef.apiGroup".into(),
            &json!(s(&role_ref, "apiGroup")),
            &[RBAC_GROUP],
        ));
    }
    let kinds: &[&str] = if cluster {
        &["ClusterRole"]
    } else {
        &["Role", "ClusterRole"]
    };
    if !kinds.contains(&s(&role_ref, "kind").as_str()) {
        causes.push(not_supported(
            "roleRef.kind".into(),
            &json!(s(&role_ref, "kind")),
            kinds,
        ));
    }
    let role_name = s(&role_ref, "name");
    if role_name.is_empty() {
        causes.push(required("roleRef.name".into()));
    } else {
        for msg in super::meta::name_errors(NameRule::PathSegment, &role_name, false) {
            causes.push(super::podspec_rules::invalid(
                "roleRef.name".into(),
                &json!(role_name),
                &msg,
            ));
        }
    }
    let subjects = obj.get("subjects").and_then(Value::as_array);
    for (i, sub) in subjects.into_iter().flatten().enumerate() {
        let f = format!("subjects[{i}]");
        let name = s(sub, "name");
        if name.is_empty() {
            causes.push(required(format!("{f}.name")));
        }
        match s(sub, "kind").as_str() {
            "ServiceAccount" => {
                if !name.is_empty() {
                    for msg in super::meta::name_errors(NameRule::Subdomain, &name, false) {
                        causes.push(super::podspec_rules::invalid(
                            format!("{f}.name"),
                            &json!(name),
                            &msg,
                        ));
                    }
                }
                if !s(sub, "apiGroup").is_empty() {
                    causes.push(not_supported(
                        format!("{f}.apiGroup"),
                        &json!(s(sub, "apiGroup")),
                        &[""],
                    ));
                }
                if cluster && s(sub, "namespace").is_empty() {
                    causes.push(required(format!("{f}.namespace")));
                }
            }
            "User" | "Group" => {
                if s(sub, "apiGroup") != RBAC_GROUP {
                    causes.push(not_supported(
                        format!("{f}.apiGroup"),
                        &json!(s(sub, "apiGroup")),
                        &[RBAC_GROUP],
                    ));
                }
            }
            other => causes.push(not_supported(
                format!("{f}.kind"),
                &json!(other),
                &["ServiceAccount", "User", "Group"],
            )),
        }
    }
}

impl Strategy for Rbac {
    fn name_rule(&self) -> NameRule {
        NameRule::PathSegment
    }

    fn default(&self, obj: &mut Value) {
        if matches!(self, Rbac::Binding { .. }) {
            super::simple_defaults::RoleBindings.default(obj);
        }
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let mut causes = Vec::new();
        match self {
            Rbac::Role => rules(obj, &mut causes),
            Rbac::Binding { cluster } => binding(obj, *cluster, &mut causes),
        }
        causes
    }

    /// A binding's role reference never changes (`ValidateRoleBindingUpdate`).
    fn validate_update(&self, obj: &Value, old: &Value) -> Vec<Cause> {
        let mut causes = self.validate_create(obj);
        if matches!(self, Rbac::Binding { .. }) && obj.get("roleRef") != old.get("roleRef") {
            causes.push(role_ref_changed(obj));
        }
        causes
    }
}

/// `roleRef: Invalid value: {...}: cannot change roleRef`, the reference printed as Go's
/// JSON of upstream's internal RoleRef (its Go field names, in their order).
fn role_ref_changed(obj: &Value) -> Cause {
    let part = |k: &str| {
        let v = obj.at(&format!("/roleRef/{k}")).and_then(Value::as_str);
        json!(v.unwrap_or(""))
    };
    Cause {
        reason: "FieldValueInvalid".into(),
        message: format!(
            "Invalid value: {{\"APIGroup\":{},\"Kind\":{},\"Name\":{}}}: cannot change roleRef",
            part("apiGroup"),
            part("kind"),
            part("name")
        ),
        field: "roleRef".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_and_bindings_are_checked_as_upstream() {
        let role = json!({"rules": [{"verbs": [], "apiGroups": [""]}, {"verbs": ["get"], "nonResourceURLs": ["/x"]}]});
        let fields: Vec<String> = ROLES
            .validate_create(&role)
            .iter()
            .map(|c| c.field.clone())
            .collect();
        assert_eq!(fields, ["rules[0].verbs", "rules[0].resources"]);
        let rb = json!({
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": "r"},
            "subjects": [{"kind": "User", "name": "alice", "apiGroup": RBAC_GROUP}, {"kind": "", "name": ""}],
        });
        let causes = CLUSTER_ROLE_BINDINGS.validate_create(&rb);
        let fields: Vec<(&str, &str)> = causes
            .iter()
            .map(|c| (c.field.as_str(), c.reason.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                ("roleRef.kind", "FieldValueNotSupported"),
                ("subjects[1].name", "FieldValueRequired"),
                ("subjects[1].kind", "FieldValueNotSupported"),
            ]
        );
        assert!(ROLE_BINDINGS.validate_create(&rb)[..].len() == 2);
    }

    #[test]
    fn a_binding_keeps_its_role_ref() {
        let rb = json!({"roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": "view"},
                        "subjects": [{"kind": "User", "name": "alice", "apiGroup": RBAC_GROUP}]});
        let mut more = rb.clone();
        more["subjects"][0]["name"] = json!("bob");
        assert!(ROLE_BINDINGS.validate_update(&more, &rb).is_empty());
        let mut edit = rb.clone();
        edit["roleRef"]["name"] = json!("edit");
        let causes = CLUSTER_ROLE_BINDINGS.validate_update(&edit, &rb);
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "roleRef");
        assert_eq!(causes[0].reason, "FieldValueInvalid");
        assert_eq!(
            causes[0].message,
            "Invalid value: {\"APIGroup\":\"rbac.authorization.k8s.io\",\"Kind\":\"ClusterRole\",\"Name\":\"edit\"}: cannot change roleRef"
        );
    }
}
