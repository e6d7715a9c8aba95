//! PodTopologyLabels, as upstream's plugin (beta, on by default since 1.35): a pod bound to a
//! node gets the node's `topology.k8s.io/zone` and `topology.k8s.io/region` labels — a pod
//! created with `spec.nodeName` through this plugin, a pod bound through `pods/binding` by the
//! binding (`rest::computed` asks `node_labels`). Labels the pod already has are kept.

use crate::jsonptr::At;
use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::{Attributes, Mutating, Operation};
use crate::api::server::Api;
use crate::api::status::Status;
use crate::authn::lookup::Kind;

/// The node labels copied to its pods.
const LABELS: &[&str] = &["topology.k8s.io/zone", "topology.k8s.io/region"];

pub struct PodTopologyLabels;

/// The topology labels of `node` (none when it does not exist: upstream ignores that).
pub fn node_labels(api: &Api, node: &str) -> Result<Vec<(String, String)>, Status> {
    let labels = api
        .service_accounts
        .lookup
        .labels(Kind::Node, "", node, LABELS)
        .unwrap_or_default();
    Ok(LABELS
        .iter()
        .filter_map(|k| {
            labels
                .iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| (k.to_string(), v.clone()))
        })
        .collect())
}

/// Adds `labels` to `meta.labels`, keeping the values already there.
pub fn merge(meta: &mut Map<String, Value>, labels: Vec<(String, String)>) {
    if labels.is_empty() {
        return;
    }
    if let Some(existing) = meta
        .entry("labels")
        .or_insert_with(|| json!({}))
        .as_object_mut()
    {
        for (k, v) in labels {
            existing.entry(k).or_insert(json!(v));
        }
    }
}

#[async_trait(?Send)]
impl Mutating for PodTopologyLabels {
    fn name(&self) -> &'static str {
        "PodTopologyLabels"
    }

    async fn admit(
        &self,
        api: &Api,
        attrs: &Attributes<'_>,
        obj: Option<&mut Value>,
    ) -> Result<(), Status> {
        let res = attrs.resource;
        if attrs.operation != Operation::Create
            || !res.group.is_empty()
            || res.resource != "pods"
            || attrs.subresource.is_some()
        {
            return Ok(());
        }
        let Some(pod) = obj else { return Ok(()) };
        let Some(node) = pod
            .at("/spec/nodeName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
        else {
            return Ok(());
        };
        let labels = node_labels(api, &node)?;
        if let Some(meta) = pod.get_mut("metadata").and_then(Value::as_object_mut) {
            merge(meta, labels);
        }
        Ok(())
    }
}
