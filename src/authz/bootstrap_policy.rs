//! Upstream's bootstrap RBAC policy (`data/bootstrap-policy.txt`: every `system:*`
//! ClusterRole and ClusterRoleBinding, the controller roles, `admin`/`edit`/`view`/
//! `cluster-admin`, the kube-system and kube-public Roles and RoleBindings) and its
//! reconciliation at start, as upstream's `ensureRBACPolicy`: missing objects are created;
//! existing ones whose `rbac.authorization.kubernetes.io/autoupdate` is not "false" get the
//! rules, subjects, labels and annotations they lack — what users added is never removed.

use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::rbac::rules::{Rule, uncovered};
use crate::storage::{StoreClient, StoreError};

pub const AUTOUPDATE_ANNOTATION: &str = "rbac.authorization.kubernetes.io/autoupdate";
const BOOTSTRAPPING_LABEL: &str = "kubernetes.io/bootstrapping";
const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
const API_VERSION: &str = "rbac.authorization.k8s.io/v1";
const TABLE: &str = include_str!("data/bootstrap-policy.txt");

/// The bootstrap objects, each with its resource (`clusterroles`, `roles`, ...).
pub struct Objects {
    pub cluster_roles: Vec<Value>,
    pub cluster_role_bindings: Vec<Value>,
    pub roles: Vec<Value>,
    pub role_bindings: Vec<Value>,
}

fn meta(name: &str, namespace: Option<&str>, labels: &[(String, String)]) -> Value {
    let mut l = Map::new();
    l.insert(BOOTSTRAPPING_LABEL.into(), json!("rbac-defaults"));
    for (k, v) in labels {
        l.insert(k.clone(), json!(v));
    }
    let mut m = json!({
        "name": name,
        "labels": l,
        "annotations": {AUTOUPDATE_ANNOTATION: "true"},
    });
    if let Some(ns) = namespace {
        m["namespace"] = json!(ns);
    }
    m
}

fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|x| {
            if x == "-" {
                String::new()
            } else {
                x.to_string()
            }
        })
        .collect()
}

fn rule_line(line: &str) -> Option<Rule> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if let [verbs, urls] = f.as_slice()
        && let Some(urls) = urls.strip_prefix("url:")
    {
        return Some(Rule {
            verbs: list(verbs),
            non_resource_urls: list(urls),
            ..Rule::default()
        });
    }
    match f.as_slice() {
        [verbs, groups, resources] | [verbs, groups, resources, _] => Some(Rule {
            verbs: list(verbs),
            api_groups: list(groups),
            resources: list(resources),
            resource_names: f.get(3).map(|n| list(n)).unwrap_or_default(),
            ..Rule::default()
        }),
        _ => None,
    }
}

fn subject(s: &str) -> Option<Value> {
    if let Some(g) = s.strip_prefix("G:") {
        return Some(json!({"apiGroup": RBAC_GROUP, "kind": "Group", "name": g}));
    }
    if let Some(u) = s.strip_prefix("U:") {
        return Some(json!({"apiGroup": RBAC_GROUP, "kind": "User", "name": u}));
    }
    let (ns, name) = s.strip_prefix("SA:")?.split_once('/')?;
    Some(json!({"kind": "ServiceAccount", "name": name, "namespace": ns}))
}

fn binding(
    kind: &str,
    name: &str,
    ns: Option<&str>,
    role_kind: &str,
    role: &str,
    subjects: &[&str],
) -> Value {
    let mut b = json!({
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": meta(name, ns, &[]),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": role_kind, "name": role},
    });
    let subjects: Vec<Value> = subjects.iter().filter_map(|s| subject(s)).collect();
    if !subjects.is_empty() {
        b["subjects"] = json!(subjects);
    }
    b
}

/// The policy, read from the table.
pub fn objects() -> Objects {
    let mut out = Objects {
        cluster_roles: Vec::new(),
        cluster_role_bindings: Vec::new(),
        roles: Vec::new(),
        role_bindings: Vec::new(),
    };
    // The role being read, its rules go to the last object of `cluster_roles` or `roles`.
    let mut current: Option<(bool, Vec<Value>)> = None;
    let flush = |current: &mut Option<(bool, Vec<Value>)>, out: &mut Objects| {
        if let Some((cluster, rules)) = current.take() {
            let target = if cluster {
                out.cluster_roles.last_mut()
            } else {
                out.roles.last_mut()
            };
            if let Some(r) = target
                && r.get("aggregationRule").is_none()
            {
                r["rules"] = json!(rules);
            }
        }
    };
    for line in TABLE.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if line.starts_with(' ') {
            if let (Some((_, rules)), Some(rule)) = (current.as_mut(), rule_line(line)) {
                rules.push(rule.to_json());
            }
            continue;
        }
        flush(&mut current, &mut out);
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["clusterrole", name, rest @ ..] => {
                let mut labels = Vec::new();
                let mut selectors = Vec::new();
                for r in rest {
                    if let Some((k, v)) = r.strip_prefix("label:").and_then(|x| x.split_once('=')) {
                        labels.push((k.to_string(), v.to_string()));
                    }
                    if let Some((k, v)) =
                        r.strip_prefix("aggregate:").and_then(|x| x.split_once('='))
                    {
                        selectors.push(json!({"matchLabels": {k: v}}));
                    }
                }
                let mut role = json!({
                    "apiVersion": API_VERSION,
                    "kind": "ClusterRole",
                    "metadata": meta(name, None, &labels),
                });
                if !selectors.is_empty() {
                    role["aggregationRule"] = json!({"clusterRoleSelectors": selectors});
                }
                out.cluster_roles.push(role);
                current = Some((true, Vec::new()));
            }
            ["role", ns, name] => {
                out.roles.push(json!({
                    "apiVersion": API_VERSION,
                    "kind": "Role",
                    "metadata": meta(name, Some(ns), &[]),
                }));
                current = Some((false, Vec::new()));
            }
            ["clusterrolebinding", name, role, subjects @ ..] => {
                out.cluster_role_bindings.push(binding(
                    "ClusterRoleBinding",
                    name,
                    None,
                    "ClusterRole",
                    role,
                    subjects,
                ));
            }
            ["controllerbindings"] => {
                let controllers: Vec<String> = out
                    .cluster_roles
                    .iter()
                    .filter_map(|r| r["metadata"]["name"].as_str())
                    .filter(|n| n.starts_with("system:controller:"))
                    .map(str::to_string)
                    .collect();
                for role in controllers {
                    let sa = format!(
                        "SA:kube-system/{}",
                        role.trim_start_matches("system:controller:")
                    );
                    out.cluster_role_bindings.push(binding(
                        "ClusterRoleBinding",
                        &role,
                        None,
                        "ClusterRole",
                        &role,
                        &[sa.as_str()],
                    ));
                }
            }
            ["rolebinding", ns, name, role, subjects @ ..] => {
                out.role_bindings.push(binding(
                    "RoleBinding",
                    name,
                    Some(ns),
                    "Role",
                    role,
                    subjects,
                ));
            }
            _ => {}
        }
    }
    flush(&mut current, &mut out);
    out
}

fn encode(obj: &Value) -> Result<Bytes, String> {
    let json = serde_json::to_vec(obj).map_err(|e| e.to_string())?;
    let mut pb = Vec::new();
    kapi_codec::to_pb::json_to_envelope(&json, None, kapi_codec::FieldValidation::Strict, &mut pb)
        .map_err(|e| e.to_string())?;
    Ok(Bytes::from(pb))
}

/// Adds to `current` what `expected` has and it lacks (upstream's reconciliation with
/// `RemoveExtraPermissions: false`); whether anything changed.
pub fn reconcile(current: &mut Value, expected: &Value) -> bool {
    let mut changed = false;
    for field in ["labels", "annotations"] {
        if let Some(want) = expected["metadata"][field].as_object() {
            if !current["metadata"][field].is_object() {
                current["metadata"][field] = json!({});
            }
            for (k, v) in want {
                if current["metadata"][field].get(k).is_none() {
                    current["metadata"][field][k] = v.clone();
                    changed = true;
                }
            }
        }
    }
    if let Some(want) = expected["aggregationRule"]["clusterRoleSelectors"].as_array() {
        // An aggregated role: its rules are the aggregation's; only its selectors reconcile.
        if !current["aggregationRule"]["clusterRoleSelectors"].is_array() {
            current["aggregationRule"] = json!({"clusterRoleSelectors": []});
        }
        for s in want {
            let have = current["aggregationRule"]["clusterRoleSelectors"]
                .as_array()
                .is_some_and(|a| a.contains(s));
            if !have
                && let Some(a) = current["aggregationRule"]["clusterRoleSelectors"].as_array_mut()
            {
                a.push(s.clone());
                changed = true;
            }
        }
    } else if let Some(want) = expected["rules"].as_array() {
        let have: Vec<Rule> = current["rules"]
            .as_array()
            .map(|a| a.iter().map(Rule::from_json).collect())
            .unwrap_or_default();
        let want: Vec<Rule> = want.iter().map(Rule::from_json).collect();
        let missing = uncovered(&have, &want);
        if !missing.is_empty() {
            if !current["rules"].is_array() {
                current["rules"] = json!([]);
            }
            if let Some(a) = current["rules"].as_array_mut() {
                a.extend(missing.iter().map(Rule::to_json));
            }
            changed = true;
        }
    }
    if let Some(want) = expected["subjects"].as_array() {
        if !current["subjects"].is_array() {
            current["subjects"] = json!([]);
        }
        for s in want {
            let same = |c: &Value| {
                ["kind", "name", "namespace"].iter().all(|k| {
                    c.get(*k).and_then(Value::as_str).unwrap_or("")
                        == s.get(*k).and_then(Value::as_str).unwrap_or("")
                })
            };
            let have = current["subjects"]
                .as_array()
                .is_some_and(|a| a.iter().any(same));
            if !have && let Some(a) = current["subjects"].as_array_mut() {
                a.push(s.clone());
                changed = true;
            }
        }
    }
    changed
}

/// Creates the policy's missing objects and reconciles the others (at start, before serving).
/// `prefix` is `--etcd-prefix` with its slash.
pub async fn ensure(store: &StoreClient, prefix: &str) -> Result<(), String> {
    let now = crate::api::rest::now_rfc3339();
    let o = objects();
    let sets = [
        ("clusterroles", o.cluster_roles),
        ("clusterrolebindings", o.cluster_role_bindings),
        ("roles", o.roles),
        ("rolebindings", o.role_bindings),
    ];
    for (resource, objects) in sets {
        for expected in objects {
            let name = expected["metadata"]["name"].as_str().unwrap_or("");
            let key = match expected["metadata"]["namespace"].as_str() {
                Some(ns) => format!("{prefix}{resource}/{ns}/{name}"),
                None => format!("{prefix}{resource}/{name}"),
            };
            let stored = store
                .get(key.as_bytes())
                .await
                .map_err(|e| format!("reading {key}: {e}"))?;
            match stored {
                None => {
                    let mut obj = expected.clone();
                    obj["metadata"]["uid"] = json!(uuid::Uuid::new_v4().to_string());
                    obj["metadata"]["creationTimestamp"] = json!(now);
                    match store.create(key.as_bytes(), encode(&obj)?, None).await {
                        Ok(_) | Err(StoreError::AlreadyExists) => {}
                        Err(e) => return Err(format!("creating {key}: {e}")),
                    }
                }
                Some(kv) => {
                    let Some(mut current) = super::decode(&kv.value) else {
                        continue;
                    };
                    if current["metadata"]["annotations"][AUTOUPDATE_ANNOTATION] == "false" {
                        continue;
                    }
                    let role_ref_differs = expected.get("roleRef").is_some()
                        && current["roleRef"]["name"] != expected["roleRef"]["name"];
                    if role_ref_differs {
                        // A binding's roleRef cannot change: upstream recreates it.
                        let mut obj = expected.clone();
                        let _ = reconcile(&mut obj, &current);
                        obj["metadata"]["uid"] = json!(uuid::Uuid::new_v4().to_string());
                        obj["metadata"]["creationTimestamp"] = json!(now);
                        store
                            .update(key.as_bytes(), encode(&obj)?, kv.mod_revision)
                            .await
                            .map_err(|e| format!("recreating {key}: {e}"))?;
                        continue;
                    }
                    if !reconcile(&mut current, &expected) {
                        continue;
                    }
                    if let Some(m) = current["metadata"].as_object_mut() {
                        m.remove("resourceVersion");
                    }
                    match store
                        .update(key.as_bytes(), encode(&current)?, kv.mod_revision)
                        .await
                    {
                        Ok(_) | Err(StoreError::Conflict { .. }) => {}
                        Err(e) => return Err(format!("updating {key}: {e}")),
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_has_upstreams_objects() {
        let o = objects();
        assert_eq!(o.cluster_roles.len(), 70);
        assert_eq!(o.cluster_role_bindings.len(), 51);
        assert_eq!(o.roles.len(), 7);
        assert_eq!(o.role_bindings.len(), 7);
        let find = |v: &[Value], n: &str| v.iter().find(|o| o["metadata"]["name"] == n).cloned();
        let admin = find(&o.cluster_roles, "admin").unwrap();
        assert!(admin.get("rules").is_none());
        assert_eq!(
            admin["aggregationRule"]["clusterRoleSelectors"][0]["matchLabels"]["rbac.authorization.k8s.io/aggregate-to-admin"],
            "true"
        );
        let edit = find(&o.cluster_roles, "edit").unwrap();
        assert_eq!(
            edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"],
            "true"
        );
        let piv = find(&o.cluster_roles, "system:public-info-viewer").unwrap();
        assert_eq!(piv["rules"][0]["nonResourceURLs"][0], "/healthz");
        let gc = find(
            &o.cluster_role_bindings,
            "system:controller:generic-garbage-collector",
        )
        .unwrap();
        assert_eq!(
            gc["subjects"][0],
            json!({"kind": "ServiceAccount", "name": "generic-garbage-collector", "namespace": "kube-system"})
        );
        let node = find(&o.cluster_role_bindings, "system:node").unwrap();
        assert!(node.get("subjects").is_none());
        let signer = find(&o.roles, "system:controller:bootstrap-signer").unwrap();
        assert_eq!(signer["metadata"]["namespace"], "kube-public");
        assert_eq!(signer["rules"][1]["resourceNames"][0], "cluster-info");
        for obj in o.cluster_roles.iter().chain(&o.role_bindings) {
            assert_eq!(
                obj["metadata"]["annotations"][AUTOUPDATE_ANNOTATION],
                "true"
            );
            assert_eq!(
                obj["metadata"]["labels"][BOOTSTRAPPING_LABEL],
                "rbac-defaults"
            );
        }
    }

    #[test]
    fn the_policy_opens_public_info_to_anonymous_users_and_no_more() {
        use crate::authz::rbac::policy::{Binding, Policy, Role};
        use crate::authz::rbac::rules::Request;
        use std::sync::Arc;
        let o = objects();
        let p = Policy::build(
            o.cluster_roles.iter().map(|r| Arc::new(Role::from_json(r))),
            o.roles.iter().map(|r| Arc::new(Role::from_json(r))),
            o.cluster_role_bindings
                .iter()
                .filter_map(|b| Binding::from_json(b).map(Arc::new)),
            o.role_bindings
                .iter()
                .filter_map(|b| Binding::from_json(b).map(Arc::new)),
        );
        let anon = crate::authn::UserInfo::anonymous();
        let get = |path| Request::NonResource { verb: "get", path };
        for path in ["/livez", "/readyz", "/healthz", "/version"] {
            assert!(p.authorize(&anon, &get(path)).0, "{path}");
        }
        for path in ["/metrics", "/api", "/livez/etcd", "/openapi/v2"] {
            assert!(!p.authorize(&anon, &get(path)).0, "{path}");
        }
        let scheduler = crate::authn::UserInfo {
            name: "system:kube-scheduler".into(),
            groups: vec!["system:authenticated".into()],
            ..Default::default()
        };
        let bind = Request::Resource {
            verb: "create",
            group: "",
            resource: "pods",
            subresource: Some("binding"),
            name: "p",
            namespace: "default",
        };
        let (ok, why) = p.authorize(&scheduler, &bind);
        assert!(ok);
        assert_eq!(
            why,
            r#"RBAC: allowed by ClusterRoleBinding "system:kube-scheduler" of ClusterRole "system:kube-scheduler" to User "system:kube-scheduler""#
        );
    }

    #[test]
    fn reconciling_adds_what_is_missing_and_keeps_user_additions() {
        let expected = json!({
            "metadata": {"name": "r", "labels": {"a": "1"}, "annotations": {AUTOUPDATE_ANNOTATION: "true"}},
            "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}],
        });
        let mut current = json!({
            "metadata": {"name": "r", "labels": {"mine": "x"}},
            "rules": [
                {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]},
                {"verbs": ["delete"], "apiGroups": [""], "resources": ["secrets"]},
            ],
        });
        assert!(reconcile(&mut current, &expected));
        assert_eq!(
            current["metadata"]["labels"],
            json!({"mine": "x", "a": "1"})
        );
        assert_eq!(current["rules"].as_array().unwrap().len(), 3);
        assert_eq!(current["rules"][1]["resources"][0], "secrets");
        assert_eq!(current["rules"][2]["verbs"], json!(["list"]));
        assert!(!reconcile(&mut current, &expected));
        let expected =
            json!({"metadata": {"name": "b"}, "subjects": [{"kind": "Group", "name": "g"}]});
        let mut current =
            json!({"metadata": {"name": "b"}, "subjects": [{"kind": "User", "name": "u"}]});
        assert!(reconcile(&mut current, &expected));
        assert_eq!(current["subjects"].as_array().unwrap().len(), 2);
    }
}
