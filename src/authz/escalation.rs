//! RBAC escalation prevention (upstream's `pkg/registry/rbac/*/policybased` storage): a user
//! may write a Role or ClusterRole only with every permission it grants (or `escalate` on
//! it), and a RoleBinding or ClusterRoleBinding only with every permission of its role (or
//! `bind` on the role). `system:masters` is exempt. Runs in the write path's admission step,
//! before defaults and validation, as upstream's check runs before its store's create/update.

use async_trait::async_trait;
use serde_json::Value;

use super::rbac::policy::RoleKind;
use super::rbac::rules::{Rule, compact, uncovered};
use crate::admission::{Attributes, Mutating, Operation};
use crate::api::server::Api;
use crate::api::status::Status;
use crate::authn::UserInfo;

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// Not an upstream admission plugin: part of the RBAC resources' storage, always on.
pub struct EscalationCheck;

/// Whether the chain allows `user` the `verb` on an RBAC object (`escalate`, `bind`).
async fn authorized(
    api: &Api,
    user: &UserInfo,
    verb: &str,
    resource: &str,
    namespace: &str,
    name: &str,
) -> bool {
    api.authz
        .allows(user, verb, RBAC_GROUP, resource, namespace, name)
        .await
}

fn rules_of(obj: &Value) -> Vec<Rule> {
    obj["rules"]
        .as_array()
        .map(|a| a.iter().map(Rule::from_json).collect())
        .unwrap_or_default()
}

/// Upstream's `ConfirmNoEscalation`: the message naming the permissions `user` lacks.
fn confirm_no_escalation(
    api: &Api,
    user: &UserInfo,
    namespace: &str,
    rules: &[Rule],
) -> Result<(), String> {
    let (owned, errors) = match api.authz.rbac() {
        Some(rbac) => rbac.rules_for(user, namespace),
        None => (Vec::new(), Vec::new()),
    };
    let missing = uncovered(&owned, rules);
    if missing.is_empty() {
        return Ok(());
    }
    let mut lines: Vec<String> = compact_rules(missing).iter().map(compact).collect();
    lines.sort();
    lines.dedup();
    let groups = user
        .groups
        .iter()
        .map(|g| format!("{g:?}"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut msg = format!(
        "user {:?} (groups=[{groups}]) is attempting to grant RBAC permissions not currently held:\n{}",
        user.name,
        lines.join("\n")
    );
    if !errors.is_empty() {
        msg.push_str(&format!("; resolution errors: [{}]", errors.join(" ")));
    }
    Err(msg)
}

/// Upstream's `CompactRules`: broken-down rules that differ only in their verb, merged.
fn compact_rules(rules: Vec<Rule>) -> Vec<Rule> {
    let mut out: Vec<Rule> = Vec::new();
    for r in rules {
        let simple = r.api_groups.len() == 1
            && r.resources.len() == 1
            && r.resource_names.is_empty()
            && r.non_resource_urls.is_empty();
        if simple
            && let Some(o) = out.iter_mut().find(|o| {
                o.api_groups == r.api_groups
                    && o.resources == r.resources
                    && o.resource_names.is_empty()
                    && o.non_resource_urls.is_empty()
            })
        {
            for v in r.verbs {
                if !o.verbs.contains(&v) {
                    o.verbs.push(v);
                }
            }
            continue;
        }
        out.push(r);
    }
    out
}

fn forbidden(resource: &str, name: &str, why: &str) -> Status {
    let gr = crate::api::status::GroupResource {
        group: RBAC_GROUP,
        resource,
    };
    Status::forbidden(gr, name, why)
}

/// Upstream's `IsOnlyMutatingGCFields`: an update that changes only ownerReferences and
/// finalizers needs no escalation check.
fn only_gc_fields(obj: &Value, old: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v["metadata"].as_object_mut() {
            for k in [
                "ownerReferences",
                "finalizers",
                "resourceVersion",
                "managedFields",
            ] {
                m.remove(k);
            }
        }
        v
    };
    strip(obj) == strip(old)
}

#[async_trait(?Send)]
impl Mutating for EscalationCheck {
    fn name(&self) -> &'static str {
        "RBACEscalationCheck"
    }

    async fn admit(
        &self,
        api: &Api,
        attrs: &Attributes<'_>,
        obj: Option<&mut Value>,
    ) -> Result<(), Status> {
        if attrs.resource.group != RBAC_GROUP
            || attrs.subresource.is_some()
            || attrs.operation == Operation::Delete
        {
            return Ok(());
        }
        let Some(obj) = obj else {
            return Ok(());
        };
        let user = attrs.user;
        if user.in_group("system:masters") {
            return Ok(());
        }
        if let Some(old) = attrs.old
            && only_gc_fields(obj, old)
        {
            return Ok(());
        }
        let resource = attrs.resource.resource.as_str();
        let namespace = attrs.namespace.unwrap_or("");
        let name = attrs.name;
        match resource {
            "roles" | "clusterroles" => {
                if authorized(api, user, "escalate", resource, namespace, name).await {
                    return Ok(());
                }
                confirm_no_escalation(api, user, namespace, &rules_of(obj))
                    .map_err(|why| forbidden(resource, name, &why))?;
                if resource == "clusterroles"
                    && obj.get("aggregationRule").is_some_and(|a| !a.is_null())
                {
                    let all = |s: &str| vec![s.to_string()];
                    let full = [
                        Rule {
                            verbs: all("*"),
                            api_groups: all("*"),
                            resources: all("*"),
                            ..Rule::default()
                        },
                        Rule {
                            verbs: all("*"),
                            non_resource_urls: all("*"),
                            ..Rule::default()
                        },
                    ];
                    confirm_no_escalation(api, user, namespace, &full).map_err(|_| {
                        forbidden(
                            resource,
                            name,
                            "must have cluster-admin privileges to use the aggregationRule",
                        )
                    })?;
                }
                Ok(())
            }
            "rolebindings" | "clusterrolebindings" => {
                let kind = match obj["roleRef"]["kind"].as_str() {
                    Some("Role") => RoleKind::Role,
                    Some("ClusterRole") => RoleKind::ClusterRole,
                    // Validation refuses it.
                    _ => return Ok(()),
                };
                let role = obj["roleRef"]["name"].as_str().unwrap_or("");
                let role_resource = match kind {
                    RoleKind::Role => "roles",
                    RoleKind::ClusterRole => "clusterroles",
                };
                if authorized(api, user, "bind", role_resource, namespace, role).await {
                    return Ok(());
                }
                let rules: Vec<Rule> = match api.authz.rbac() {
                    Some(rbac) => rbac
                        .policy()
                        .role_rules(kind, namespace, role)
                        .map(|r| r.to_vec())
                        .map_err(Status::bad_request)?,
                    None => Vec::new(),
                };
                confirm_no_escalation(api, user, namespace, &rules)
                    .map_err(|why| forbidden(resource, name, &why))
            }
            _ => Ok(()),
        }
    }
}
