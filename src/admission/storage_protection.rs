//! StorageObjectInUseProtection, as upstream's plugin: a new PersistentVolume,
//! PersistentVolumeClaim or VolumeAttributesClass gets the finalizer that keeps it until
//! nothing uses it (the protection controllers remove it).

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{Attributes, Mutating, Operation};
use crate::api::server::Api;
use crate::api::status::Status;

pub struct StorageObjectInUseProtection;

/// The finalizer each protected resource gets.
fn finalizer(group: &str, resource: &str) -> Option<&'static str> {
    match (group, resource) {
        ("", "persistentvolumes") => Some("kubernetes.io/pv-protection"),
        ("", "persistentvolumeclaims") => Some("kubernetes.io/pvc-protection"),
        ("storage.k8s.io", "volumeattributesclasses") => Some("kubernetes.io/vac-protection"),
        _ => None,
    }
}

/// Appends `name` to `obj`'s finalizers unless it is there already.
pub(super) fn add_finalizer(obj: &mut Value, name: &str) {
    let Some(meta) = obj
        .as_object_mut()
        .map(|o| o.entry("metadata").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let list = meta.entry("finalizers").or_insert_with(|| json!([]));
    if list.is_null() {
        *list = json!([]);
    }
    if let Some(list) = list.as_array_mut()
        && !list.iter().any(|f| f == name)
    {
        list.push(json!(name));
    }
}

#[async_trait(?Send)]
impl Mutating for StorageObjectInUseProtection {
    fn name(&self) -> &'static str {
        "StorageObjectInUseProtection"
    }

    async fn admit(
        &self,
        _api: &Api,
        attrs: &Attributes<'_>,
        obj: Option<&mut Value>,
    ) -> Result<(), Status> {
        if attrs.operation != Operation::Create || attrs.subresource.is_some() {
            return Ok(());
        }
        let res = attrs.resource;
        if let (Some(f), Some(obj)) = (finalizer(&res.group, &res.resource), obj) {
            add_finalizer(obj, f);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_finalizer_is_added_once() {
        let mut pvc = json!({"metadata": {"finalizers": ["x"]}});
        add_finalizer(&mut pvc, "kubernetes.io/pvc-protection");
        add_finalizer(&mut pvc, "kubernetes.io/pvc-protection");
        assert_eq!(
            pvc["metadata"]["finalizers"],
            json!(["x", "kubernetes.io/pvc-protection"])
        );
        assert_eq!(
            finalizer("", "persistentvolumes"),
            Some("kubernetes.io/pv-protection")
        );
        assert_eq!(finalizer("", "pods"), None);
    }
}
