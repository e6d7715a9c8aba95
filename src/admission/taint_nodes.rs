//! TaintNodesByCondition, as upstream's plugin: a new Node is tainted not-ready (NoSchedule)
//! until its kubelet reports it ready and the node lifecycle controller lifts the taint.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{Attributes, Mutating, Operation};
use crate::api::server::Api;
use crate::api::status::Status;

const NOT_READY: &str = "node.kubernetes.io/not-ready";

pub struct TaintNodesByCondition;

/// Adds the not-ready NoSchedule taint unless the node carries it already.
fn add_not_ready_taint(node: &mut Value) {
    let Some(spec) = node
        .as_object_mut()
        .map(|o| o.entry("spec").or_insert_with(|| json!({})))
    else {
        return;
    };
    if spec.is_null() {
        *spec = json!({});
    }
    let Some(spec) = spec.as_object_mut() else {
        return;
    };
    let taints = spec.entry("taints").or_insert_with(|| json!([]));
    if taints.is_null() {
        *taints = json!([]);
    }
    let Some(taints) = taints.as_array_mut() else {
        return;
    };
    let present = taints
        .iter()
        .any(|t| t["key"] == NOT_READY && t["effect"] == "NoSchedule");
    if !present {
        taints.push(json!({"key": NOT_READY, "effect": "NoSchedule"}));
    }
}

#[async_trait(?Send)]
impl Mutating for TaintNodesByCondition {
    fn name(&self) -> &'static str {
        "TaintNodesByCondition"
    }

    async fn admit(
        &self,
        _api: &Api,
        attrs: &Attributes<'_>,
        obj: Option<&mut Value>,
    ) -> Result<(), Status> {
        let res = attrs.resource;
        let is_node = res.group.is_empty() && res.resource == "nodes";
        if !is_node || attrs.operation != Operation::Create || attrs.subresource.is_some() {
            return Ok(());
        }
        if let Some(node) = obj {
            add_not_ready_taint(node);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_node_is_tainted_not_ready_once() {
        let mut n = json!({"spec": {"taints": [{"key": "a", "effect": "NoSchedule"}]}});
        add_not_ready_taint(&mut n);
        add_not_ready_taint(&mut n);
        assert_eq!(
            n["spec"]["taints"],
            json!([{"key": "a", "effect": "NoSchedule"},
                   {"key": NOT_READY, "effect": "NoSchedule"}])
        );
        let mut bare = json!({"spec": null});
        add_not_ready_taint(&mut bare);
        assert_eq!(bare["spec"]["taints"][0]["key"], NOT_READY);
    }
}
