//! The Node authorizer (upstream's `plugin/pkg/auth/authorizer/node`): a kubelet, user
//! `system:node:<name>` in group `system:nodes`, may read only the Secrets, ConfigMaps,
//! PersistentVolumeClaims, PersistentVolumes and ResourceClaims that pods bound to its node
//! use, and ask tokens only for their service accounts; it reads only its own Node and the pods
//! bound to it (upstream's AuthorizeNodeWithSelectors, on since 1.32); everything else it may
//! do is the `system:node` ClusterRole's rules. The pods of a node are found through the watch cache's
//! `spec.nodeName` index, so a decision reads memory only.

use std::sync::Arc;

use serde_json::{Value, json};

use super::rbac::Rbac;
use super::rbac::rules::Rule;
use super::{Attributes, Authorizer, Decision, RuleSet};
use crate::authn::UserInfo;

pub const NODES_GROUP: &str = "system:nodes";
const NODE_PREFIX: &str = "system:node:";
/// Pods of one node looked at per decision: far above the kubelet's 110-pod default; past
/// it, the rest do not count (the request is refused, not served from an unbounded scan).
const MAX_NODE_PODS: usize = 1024;

pub struct NodeAuthorizer {
    rbac: Option<Arc<Rbac>>,
    /// The `system:node` ClusterRole's rules, from the bootstrap policy.
    node_rules: Vec<Rule>,
}

/// The node a user is, as upstream's `NodeIdentifier`: `system:node:<name>` in
/// `system:nodes`.
pub fn node_name(user: &UserInfo) -> Option<&str> {
    if !user.in_group(NODES_GROUP) {
        return None;
    }
    user.name
        .strip_prefix(NODE_PREFIX)
        .filter(|n| !n.is_empty())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Secret,
    ConfigMap,
    Claim,
    Volume,
    ResourceClaim,
    ServiceAccount,
}

impl NodeAuthorizer {
    pub fn new(rbac: Option<Arc<Rbac>>) -> NodeAuthorizer {
        let node_rules = super::bootstrap_policy::objects()
            .cluster_roles
            .iter()
            .find(|r| r["metadata"]["name"] == "system:node")
            .and_then(|r| r["rules"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(Rule::from_json)
            .collect();
        NodeAuthorizer { rbac, node_rules }
    }

    /// Whether a pod bound to `node` in `namespace` uses the object.
    fn related(&self, node: &str, kind: Kind, namespace: &str, name: &str) -> bool {
        let Some(rbac) = &self.rbac else {
            return false;
        };
        let Some(pods) = rbac.resource("pods") else {
            return false;
        };
        let snap = pods.snapshot();
        let Some(iter) = snap.range_indexed(node, &pods.prefix, b"") else {
            return false;
        };
        let claims = (kind == Kind::Volume)
            .then(|| rbac.resource("persistentvolumeclaims"))
            .flatten();
        for obj in iter.take(MAX_NODE_PODS) {
            let Some(pod) = super::decode(&obj.value) else {
                continue;
            };
            let pod_ns = pod["metadata"]["namespace"].as_str().unwrap_or("");
            if kind == Kind::Volume {
                // A PersistentVolume is the node's when a claim of one of its pods is bound to it.
                let Some(claims) = claims.as_ref() else {
                    return false;
                };
                let csnap = claims.snapshot();
                for claim in references(&pod, Kind::Claim) {
                    let key = format!(
                        "{}{pod_ns}/{claim}",
                        String::from_utf8_lossy(&claims.prefix)
                    );
                    if let Some(c) = csnap
                        .get(key.as_bytes())
                        .and_then(|o| super::decode(&o.value))
                        && c["spec"]["volumeName"].as_str() == Some(name)
                    {
                        return true;
                    }
                }
                continue;
            }
            if pod_ns == namespace && references(&pod, kind).iter().any(|r| r == name) {
                return true;
            }
        }
        false
    }
}

/// Whether a field selector has the term `spec.nodeName=<node>` (or `==`).
fn selects_node(selector: &str, node: &str) -> bool {
    selector.split(',').any(|term| {
        term.trim()
            .strip_prefix("spec.nodeName")
            .and_then(|rest| rest.trim_start().strip_prefix('='))
            .map(|v| v.strip_prefix('=').unwrap_or(v).trim())
            == Some(node)
    })
}

/// The names of the objects of `kind` a pod uses (its namespace's).
fn references(pod: &Value, kind: Kind) -> Vec<String> {
    let mut out = Vec::new();
    let spec = &pod["spec"];
    let mut push = |v: &Value| {
        if let Some(s) = v.as_str()
            && !s.is_empty()
        {
            out.push(s.to_string());
        }
    };
    let containers = ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| spec[*k].as_array().into_iter().flatten());
    let volumes: Vec<&Value> = spec["volumes"].as_array().into_iter().flatten().collect();
    match kind {
        Kind::Secret => {
            for s in spec["imagePullSecrets"].as_array().into_iter().flatten() {
                push(&s["name"]);
            }
            for c in containers {
                for e in c["env"].as_array().into_iter().flatten() {
                    push(&e["valueFrom"]["secretKeyRef"]["name"]);
                }
                for e in c["envFrom"].as_array().into_iter().flatten() {
                    push(&e["secretRef"]["name"]);
                }
            }
            for v in &volumes {
                push(&v["secret"]["secretName"]);
                for s in v["projected"]["sources"].as_array().into_iter().flatten() {
                    push(&s["secret"]["name"]);
                }
                // Every volume source's secret reference (csi, cephfs, rbd, azureFile, ...).
                if let Some(o) = v.as_object() {
                    for src in o.values() {
                        push(&src["secretRef"]["name"]);
                        push(&src["nodePublishSecretRef"]["name"]);
                        push(&src["secretName"]);
                    }
                }
            }
        }
        Kind::ConfigMap => {
            for c in containers {
                for e in c["env"].as_array().into_iter().flatten() {
                    push(&e["valueFrom"]["configMapKeyRef"]["name"]);
                }
                for e in c["envFrom"].as_array().into_iter().flatten() {
                    push(&e["configMapRef"]["name"]);
                }
            }
            for v in &volumes {
                push(&v["configMap"]["name"]);
                for s in v["projected"]["sources"].as_array().into_iter().flatten() {
                    push(&s["configMap"]["name"]);
                }
            }
        }
        Kind::Claim | Kind::Volume => {
            let pod_name = pod["metadata"]["name"].as_str().unwrap_or("");
            for v in &volumes {
                push(&v["persistentVolumeClaim"]["claimName"]);
                if v["ephemeral"].is_object()
                    && let Some(n) = v["name"].as_str()
                {
                    push(&Value::String(format!("{pod_name}-{n}")));
                }
            }
        }
        Kind::ResourceClaim => {
            for c in spec["resourceClaims"].as_array().into_iter().flatten() {
                push(&c["resourceClaimName"]);
            }
            for s in pod["status"]["resourceClaimStatuses"]
                .as_array()
                .into_iter()
                .flatten()
            {
                push(&s["resourceClaimName"]);
            }
        }
        Kind::ServiceAccount => {
            let sa = spec["serviceAccountName"].as_str().unwrap_or("");
            push(&json!(if sa.is_empty() { "default" } else { sa }));
        }
    }
    out
}

impl Authorizer for NodeAuthorizer {
    fn authorize(&self, attrs: &Attributes<'_>) -> Decision {
        let Some(node) = node_name(attrs.user) else {
            return Decision::NoOpinion(String::new());
        };
        let Some(rr) = attrs.resource else {
            return self.by_rules(attrs);
        };
        let kind = match (
            rr.group.as_str(),
            rr.resource.as_str(),
            rr.subresource.as_deref(),
        ) {
            ("", "nodes", None) => return self.authorize_node(node, attrs),
            ("", "pods", None) => return self.authorize_pod(node, attrs),
            ("", "secrets", None) => Kind::Secret,
            ("", "configmaps", None) => Kind::ConfigMap,
            ("", "persistentvolumeclaims", None) => Kind::Claim,
            ("", "persistentvolumes", None) => Kind::Volume,
            ("resource.k8s.io", "resourceclaims", None) => Kind::ResourceClaim,
            ("", "serviceaccounts", Some("token")) => Kind::ServiceAccount,
            _ => return self.by_rules(attrs),
        };
        let no = |why: &str| Decision::NoOpinion(why.to_string());
        match kind {
            // Upstream's authorizeReadNamespacedObject.
            Kind::Secret | Kind::ConfigMap => {
                if !matches!(attrs.verb, "get" | "list" | "watch") {
                    return no("can only read resources of this type");
                }
                if attrs.namespace().is_empty() {
                    return no("can only read namespaced object of this type");
                }
            }
            // Upstream's authorizeCreateToken.
            Kind::ServiceAccount => {
                if attrs.verb != "create" {
                    return no("can only create tokens for individual service accounts");
                }
            }
            // Upstream's authorizeGet.
            _ => {
                if attrs.verb != "get" {
                    return no("can only get individual resources of this type");
                }
            }
        }
        let name = attrs.name();
        if name.is_empty() {
            return no("No Object name found");
        }
        if self.related(node, kind, attrs.namespace(), name) {
            Decision::Allow(String::new())
        } else {
            Decision::NoOpinion(format!(
                "no relationship found between node '{node}' and this object"
            ))
        }
    }

    /// Nodes' permissions are not enumerable (upstream answers so); others get none here.
    fn rules_for(&self, user: &UserInfo, _namespace: &str) -> RuleSet {
        if node_name(user).is_none() {
            return RuleSet::default();
        }
        RuleSet {
            incomplete: true,
            errors: vec!["node authorizer does not support user rule resolution".into()],
            ..RuleSet::default()
        }
    }
}

impl NodeAuthorizer {
    /// Upstream's authorizeNode: a node reads only its own Node object (by name, so that it may
    /// look before registering); writes are the rules' (NodeRestriction limits them).
    fn authorize_node(&self, node: &str, attrs: &Attributes<'_>) -> Decision {
        if !matches!(attrs.verb, "get" | "list" | "watch") {
            return self.by_rules(attrs);
        }
        match attrs.name() {
            name if name == node => Decision::Allow(String::new()),
            "" => Decision::NoOpinion(format!(
                "node '{node}' cannot read all nodes, only its own Node object"
            )),
            other => Decision::NoOpinion(format!(
                "node '{node}' cannot read '{other}', only its own Node object"
            )),
        }
    }

    /// Upstream's authorizePod: a node gets the pods bound to it, and lists or watches them by
    /// its own `spec.nodeName`; other verbs are the rules'.
    fn authorize_pod(&self, node: &str, attrs: &Attributes<'_>) -> Decision {
        let related = || {
            if self.pod_on_node(node, attrs.namespace(), attrs.name()) {
                Decision::Allow(String::new())
            } else {
                Decision::NoOpinion(format!(
                    "no relationship found between node '{node}' and this object"
                ))
            }
        };
        match attrs.verb {
            "get" => related(),
            "list" | "watch" => {
                if attrs.selectors.field.is_some_and(|s| selects_node(s, node)) {
                    Decision::Allow(String::new())
                } else if !attrs.name().is_empty() {
                    related()
                } else {
                    Decision::NoOpinion(
                        "can only list/watch pods with spec.nodeName field selector".into(),
                    )
                }
            }
            _ => self.by_rules(attrs),
        }
    }

    /// Whether the pod `namespace/name` is bound to `node`.
    fn pod_on_node(&self, node: &str, namespace: &str, name: &str) -> bool {
        let Some(pods) = self.rbac.as_ref().and_then(|r| r.resource("pods")) else {
            return false;
        };
        if namespace.is_empty() || name.is_empty() {
            return false;
        }
        let key = format!(
            "{}{namespace}/{name}",
            String::from_utf8_lossy(&pods.prefix)
        );
        pods.snapshot()
            .get(key.as_bytes())
            .and_then(|o| super::decode(&o.value))
            .is_some_and(|pod| pod["spec"]["nodeName"].as_str() == Some(node))
    }

    fn by_rules(&self, attrs: &Attributes<'_>) -> Decision {
        let req = super::rbac::request(attrs);
        if self.node_rules.iter().any(|r| r.allows(&req)) {
            Decision::Allow(String::new())
        } else {
            Decision::NoOpinion(String::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::selects_node;

    #[test]
    fn a_kubelet_selects_its_pods_by_its_own_node_name_only() {
        assert!(selects_node("spec.nodeName=n1", "n1"));
        assert!(selects_node(
            "status.phase!=Failed, spec.nodeName==n1",
            "n1"
        ));
        assert!(!selects_node("spec.nodeName=n2", "n1"));
        assert!(!selects_node("spec.nodeName!=n1", "n1"));
        assert!(!selects_node("spec.nodeName=n1x", "n1"));
        assert!(!selects_node("metadata.name=n1", "n1"));
        assert!(!selects_node("", "n1"));
    }
}
