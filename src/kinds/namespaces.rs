//! Namespaces: the `kubernetes.io/metadata.name` label and the `kubernetes` finalizer on create,
//! phase Active; DELETE makes the namespace Terminating, and it goes when the namespace controller
//! has deleted its contents and emptied `spec.finalizers` (`namespaces/finalize`).

use crate::jsonptr::At;
use serde_json::{Value, json};

use super::{NameRule, Strategy};

#[derive(Debug)]
pub struct Namespaces;

impl Strategy for Namespaces {
    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn terminates_before_delete(&self) -> bool {
        true
    }

    fn name_rule(&self) -> NameRule {
        NameRule::Label
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        if let Some(o) = obj.as_object_mut() {
            o.insert("status".into(), json!({"phase": "Active"}));
            let spec = o.entry("spec").or_insert_with(|| json!({}));
            if let Some(s) = spec.as_object_mut() {
                s.entry("finalizers")
                    .or_insert_with(|| json!(["kubernetes"]));
            }
        }
    }

    /// `namespaces/finalize`: only `spec.finalizers` changes (the namespace controller's last
    /// step before the namespace goes).
    fn prepare_for_subresource_update(&self, sub: &str, new: &Value, old: &Value) -> Option<Value> {
        (sub == "finalize").then(|| super::old_with(old, new, "spec", "finalizers"))
    }

    /// An update of the namespace itself keeps its finalizers (upstream's PrepareForUpdate):
    /// only `namespaces/finalize` changes them.
    fn prepare_for_update(&self, obj: &mut Value, old: &Value) {
        let kept = super::old_with(obj, old, "spec", "finalizers");
        *obj = kept;
    }

    fn validate_create(&self, obj: &Value) -> Vec<crate::api::status::Cause> {
        super::core_updates::namespace_finalizers(obj, false)
    }

    /// `namespaces/status`: the phase follows the deletion timestamp; `namespaces/finalize`:
    /// the finalizers' names, each at its index.
    fn validate_subresource_update(
        &self,
        sub: &str,
        obj: &Value,
        _old: &Value,
    ) -> Option<Vec<crate::api::status::Cause>> {
        match sub {
            "status" => Some(super::core_updates::namespace_status(obj)),
            "finalize" => Some(super::core_updates::namespace_finalizers(obj, true)),
            _ => None,
        }
    }

    fn default(&self, obj: &mut Value) {
        let name = obj
            .at("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            let labels = meta.entry("labels").or_insert_with(|| json!({}));
            if let Some(l) = labels.as_object_mut() {
                l.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
        }
    }
}
