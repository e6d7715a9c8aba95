//! NodeRestriction, as upstream's plugin: a kubelet (`system:node:<name>` in `system:nodes`)
//! may change only its own Node (and not labels of the `node-restriction.kubernetes.io/`
//! domain nor other `kubernetes.io` labels than the kubelet's own), create only mirror pods
//! bound to itself that use no other objects, delete and update the status of only pods bound
//! to itself, and use only its own Lease in `kube-node-lease` and its own CSINode.

use async_trait::async_trait;
use serde_json::Value;

use super::{Attributes, Mutating, Operation};
use crate::api::server::Api;
use crate::api::status::Status;

const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";
const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// Labels a kubelet sets on its Node, and the prefixes of its own label namespaces (upstream's
/// `kubeletapis.IsKubeletLabel`).
const KUBELET_LABELS: &[&str] = &[
    "kubernetes.io/hostname",
    "kubernetes.io/arch",
    "kubernetes.io/os",
    "beta.kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "failure-domain.beta.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
];
const KUBELET_LABEL_NAMESPACES: &[&str] = &["kubelet.kubernetes.io", "node.kubernetes.io"];

pub struct NodeRestriction;

fn forbidden(attrs: &Attributes<'_>, name: &str, why: String) -> Status {
    let res = attrs.resource;
    let gr = crate::api::status::GroupResource {
        group: &res.group,
        resource: &res.resource,
    };
    Status::forbidden(gr, name, &why)
}

fn in_domain(domain: &str, of: &str) -> bool {
    domain == of || domain.ends_with(&format!(".{of}"))
}

/// Upstream's `getForbiddenLabels`.
fn forbidden_label(key: &str) -> bool {
    let Some((domain, _)) = key.split_once('/') else {
        return false;
    };
    if in_domain(domain, "node-restriction.kubernetes.io") {
        return true;
    }
    let kubernetes = in_domain(domain, "kubernetes.io") || in_domain(domain, "k8s.io");
    let kubelets = KUBELET_LABELS.contains(&key)
        || KUBELET_LABEL_NAMESPACES
            .iter()
            .any(|ns| in_domain(domain, ns));
    kubernetes && !kubelets
}

/// Label keys added, removed or changed between `old` and `new`.
fn modified_labels(new: &Value, old: Option<&Value>) -> Vec<String> {
    let labels = |v: Option<&Value>| {
        v.and_then(|v| v["metadata"]["labels"].as_object().cloned())
            .unwrap_or_default()
    };
    let (n, o) = (labels(Some(new)), labels(old));
    let mut keys: Vec<String> = n
        .iter()
        .filter(|(k, v)| o.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .chain(o.keys().filter(|k| !n.contains_key(*k)).cloned())
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Upstream's operation names in messages.
fn op_name(op: Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
    }
}

impl NodeRestriction {
    fn pod_create(
        &self,
        api: &Api,
        attrs: &Attributes<'_>,
        node: &str,
        pod: &Value,
    ) -> Result<(), Status> {
        let name = pod["metadata"]["name"].as_str().unwrap_or(attrs.name);
        let deny = |why: String| Err(forbidden(attrs, name, why));
        if pod["metadata"]["annotations"]
            .get(MIRROR_ANNOTATION)
            .is_none()
        {
            return deny(format!(
                "pod does not have \"{MIRROR_ANNOTATION}\" annotation, node \"{node}\" can only create mirror pods"
            ));
        }
        if pod["spec"]["nodeName"].as_str() != Some(node) {
            return deny(format!(
                "node \"{node}\" can only create pods with spec.nodeName set to itself"
            ));
        }
        let owners = pod["metadata"]["ownerReferences"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        match owners.as_slice() {
            [] => {
                return deny(format!(
                    "node \"{node}\" can only create pods with an owner reference set to itself"
                ));
            }
            [owner] => {
                if owner["apiVersion"] != "v1" || owner["kind"] != "Node" || owner["name"] != node {
                    return deny(format!(
                        "node \"{node}\" can only create pods with an owner reference set to itself"
                    ));
                }
                if owner["controller"] != true {
                    return deny(format!(
                        "node \"{node}\" can only create pods with a controller owner reference set to itself"
                    ));
                }
                if owner["blockOwnerDeletion"] == true {
                    return deny(format!(
                        "node \"{node}\" must not set blockOwnerDeletion on an owner reference"
                    ));
                }
                let uid = api
                    .cache
                    .resource(format!("{}minions/", api.prefix).as_bytes())
                    .and_then(|rc| {
                        let key = format!("{}minions/{node}", api.prefix);
                        rc.snapshot()
                            .get(key.as_bytes())
                            .and_then(|o| crate::authz::decode(&o.value))
                    })
                    .and_then(|n| n["metadata"]["uid"].as_str().map(str::to_string));
                if uid.as_deref() != owner["uid"].as_str() {
                    return deny(format!("node {node} UID mismatch"));
                }
            }
            _ => {
                return deny(format!(
                    "node \"{node}\" can only create pods with a single owner reference set to itself"
                ));
            }
        }
        let spec = &pod["spec"];
        if spec["serviceAccountName"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
        {
            return deny(format!(
                "node \"{node}\" can not create pods that reference a service account"
            ));
        }
        let text = spec.to_string();
        let uses = |keys: &[&str]| keys.iter().any(|k| text.contains(&format!("\"{k}\"")));
        if uses(&[
            "secret",
            "secretKeyRef",
            "secretRef",
            "imagePullSecrets",
            "nodePublishSecretRef",
        ]) {
            return deny(format!(
                "node \"{node}\" can not create pods that reference secrets"
            ));
        }
        if uses(&["configMap", "configMapKeyRef", "configMapRef"]) {
            return deny(format!(
                "node \"{node}\" can not create pods that reference configmaps"
            ));
        }
        if uses(&["persistentVolumeClaim", "ephemeral"]) {
            return deny(format!(
                "node \"{node}\" can not create pods that reference persistentvolumeclaims"
            ));
        }
        if spec["resourceClaims"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        {
            return deny(format!(
                "node \"{node}\" can not create pods that reference resourceclaims"
            ));
        }
        Ok(())
    }
}

#[async_trait(?Send)]
impl Mutating for NodeRestriction {
    fn name(&self) -> &'static str {
        "NodeRestriction"
    }

    async fn admit(
        &self,
        api: &Api,
        attrs: &Attributes<'_>,
        obj: Option<&mut Value>,
    ) -> Result<(), Status> {
        let Some(node) = crate::authz::node::node_name(attrs.user) else {
            return Ok(());
        };
        let res = attrs.resource;
        let obj = obj.map(|o| &*o);
        let deny = |why: String| Err(forbidden(attrs, attrs.name, why));
        match (res.group.as_str(), res.resource.as_str()) {
            ("", "pods") => match (attrs.subresource, attrs.operation) {
                (None, Operation::Create) => match obj {
                    Some(pod) => self.pod_create(api, attrs, node, pod),
                    None => Ok(()),
                },
                (None, Operation::Delete) => {
                    if attrs
                        .old
                        .is_some_and(|p| p["spec"]["nodeName"].as_str() != Some(node))
                    {
                        return deny(format!(
                            "node \"{node}\" can only delete pods with spec.nodeName set to itself"
                        ));
                    }
                    Ok(())
                }
                (None, op) => deny(format!(
                    "unexpected operation {}, node \"{node}\" can only create and delete mirror pods",
                    op_name(op)
                )),
                (Some("status"), Operation::Update) => {
                    if attrs
                        .old
                        .is_some_and(|p| p["spec"]["nodeName"].as_str() != Some(node))
                    {
                        return deny(format!(
                            "node \"{node}\" can only update pod status for pods with spec.nodeName set to itself"
                        ));
                    }
                    Ok(())
                }
                (Some("status"), op) => deny(format!("unexpected operation {}", op_name(op))),
                (Some("eviction"), _) => Ok(()),
                (Some(sub), _) => deny(format!(
                    "unexpected pod subresource \"{sub}\", only 'status' and 'eviction' are allowed"
                )),
            },
            ("", "nodes") => {
                let requested = match (attrs.operation, obj) {
                    (Operation::Create, Some(o)) => {
                        o["metadata"]["name"].as_str().unwrap_or(attrs.name)
                    }
                    _ => attrs.name,
                };
                if requested != node {
                    return Err(forbidden(
                        attrs,
                        requested,
                        format!("node \"{node}\" is not allowed to modify node \"{requested}\""),
                    ));
                }
                let Some(new) = obj else {
                    return Ok(());
                };
                let labels: Vec<String> = modified_labels(new, attrs.old)
                    .into_iter()
                    .filter(|k| forbidden_label(k))
                    .collect();
                if labels.is_empty() {
                    return Ok(());
                }
                if attrs.operation == Operation::Create {
                    deny(format!(
                        "node \"{node}\" is not allowed to set the following labels: {}",
                        labels.join(", ")
                    ))
                } else {
                    deny(format!(
                        "is not allowed to modify labels: {}",
                        labels.join(", ")
                    ))
                }
            }
            ("", "persistentvolumeclaims") => match attrs.subresource {
                Some("status") => Ok(()),
                _ => deny(format!("node \"{node}\" may only update PVC status")),
            },
            ("coordination.k8s.io", "leases") => {
                if attrs.namespace != Some(NODE_LEASE_NAMESPACE) {
                    return deny(format!(
                        "can only access leases in the \"{NODE_LEASE_NAMESPACE}\" system namespace"
                    ));
                }
                let name = match (attrs.operation, obj) {
                    (Operation::Create, Some(o)) => o["metadata"]["name"].as_str().unwrap_or(""),
                    _ => attrs.name,
                };
                if name != node {
                    return deny(
                        "can only access node lease with the same name as the requesting node"
                            .into(),
                    );
                }
                Ok(())
            }
            ("storage.k8s.io", "csinodes") => {
                let name = match (attrs.operation, obj) {
                    (Operation::Create, Some(o)) => o["metadata"]["name"].as_str().unwrap_or(""),
                    _ => attrs.name,
                };
                if name != node {
                    return deny(
                        "can only access CSINode with the same name as the requesting node".into(),
                    );
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_restricted_and_foreign_kubernetes_labels_are_forbidden() {
        assert!(forbidden_label("node-restriction.kubernetes.io/pool"));
        assert!(forbidden_label("a.node-restriction.kubernetes.io/x"));
        assert!(forbidden_label("node-role.kubernetes.io/control-plane"));
        assert!(!forbidden_label("kubernetes.io/hostname"));
        assert!(!forbidden_label("node.kubernetes.io/exclude"));
        assert!(!forbidden_label("example.com/team"));
        assert!(!forbidden_label("plain"));
        let old = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
        let new = json!({"metadata": {"labels": {"a": "1", "b": "3", "c": "4"}}});
        assert_eq!(modified_labels(&new, Some(&old)), vec!["b", "c"]);
    }
}
