//! The admission plugins that fill in or check an object's class, as upstream's:
//!
//! - **DefaultStorageClass**: a new PersistentVolumeClaim that names no class (no
//!   `storageClassName`, not even `""`, and no beta class annotation) gets the default
//!   StorageClass (annotated `storageclass.kubernetes.io/is-default-class: "true"`, or the beta
//!   annotation); with several, the newest.
//! - **DefaultIngressClass**: a new Ingress without `ingressClassName` or the
//!   `kubernetes.io/ingress.class` annotation gets the default IngressClass
//!   (`ingressclass.kubernetes.io/is-default-class: "true"`); with several, the newest.
//! - **PersistentVolumeClaimResize**: a claim's storage request grows only when the claim is
//!   Bound and its StorageClass sets `allowVolumeExpansion: true` (403 otherwise).
//! - **RuntimeClass**: a pod naming a RuntimeClass gets its `overhead` and its scheduling
//!   (node selector, tolerations); an unknown class, a conflicting node selector or an overhead
//!   that differs from the class's are refused (403).
//!
//! Classes are read from the watch cache, after it caught up with the store.

use crate::jsonptr::At;
use async_trait::async_trait;
use serde_json::{Value, json};

use super::{Attributes, Mutating, Operation, Validating, cached_objects, forbidden};
use crate::api::server::Api;
use crate::api::status::Status;

fn is(attrs: &Attributes<'_>, group: &str, resource: &str) -> bool {
    attrs.resource.group == group
        && attrs.resource.resource == resource
        && attrs.subresource.is_none()
}

fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.at("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

/// The newest of the classes carrying one of `annotations` = "true" (ties: the first name).
fn newest_default(classes: Vec<Value>, annotations: &[&str]) -> Option<Value> {
    let mut defaults: Vec<Value> = classes
        .into_iter()
        .filter(|c| annotations.iter().any(|a| annotation(c, a) == Some("true")))
        .collect();
    defaults.sort_by(|a, b| {
        let created = |v: &Value| {
            v.at("/metadata/creationTimestamp")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let name = |v: &Value| v["metadata"]["name"].as_str().unwrap_or("").to_string();
        // RFC 3339 in UTC sorts as text.
        created(b)
            .cmp(&created(a))
            .then_with(|| name(a).cmp(&name(b)))
    });
    defaults.into_iter().next()
}

pub struct DefaultStorageClass;

const DEFAULT_STORAGE_CLASS: &str = "storageclass.kubernetes.io/is-default-class";
const BETA_DEFAULT_STORAGE_CLASS: &str = "storageclass.beta.kubernetes.io/is-default-class";
const BETA_CLAIM_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

#[async_trait(?Send)]
impl Mutating for DefaultStorageClass {
    fn name(&self) -> &'static str {
        "DefaultStorageClass"
    }

    async fn admit(
        &self,
        api: &Api,
        attrs: &Attributes<'_>,
        obj: Option<&mut Value>,
    ) -> Result<(), Status> {
        let Some(claim) = obj else { return Ok(()) };
        if !is(attrs, "", "persistentvolumeclaims") || attrs.operation != Operation::Create {
            return Ok(());
        }
        let named = claim
            .at("/spec/storageClassName")
            .is_some_and(|v| !v.is_null());
        if named || annotation(claim, BETA_CLAIM_CLASS).is_some() {
            return Ok(());
        }
        api.catch_up_cache().await?;
        let classes = cached_objects(api, "storage.k8s.io", "v1", "storageclasses", None)?;
        let Some(class) = newest_default(
            classes,
            &[DEFAULT_STORAGE_CLASS, BETA_DEFAULT_STORAGE_CLASS],
        ) else {
            return Ok(());
        };
        if let Some(spec) = claim.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("storageClassName".into(), class["metadata"]["name"].clone());
        }
        Ok(())
    }
}

pub struct DefaultIngressClass;

const DEFAULT_INGRESS_CLASS: &str = "ingressclass.kubernetes.io/is-default-class";
const INGRESS_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

#[async_trait(?Send)]
impl Mutating for DefaultIngressClass {
    fn name(&self) -> &'static str {
        "DefaultIngressClass"
    }

    async fn admit(
        &self,
        api: &Api,
        attrs: &Attributes<'_>,
        obj: Option<&mut Value>,
    ) -> Result<(), Status> {
        let Some(ingress) = obj else { return Ok(()) };
        if !is(attrs, "networking.k8s.io", "ingresses") || attrs.operation != Operation::Create {
            return Ok(());
        }
        let named = ingress
            .at("/spec/ingressClassName")
            .is_some_and(|v| !v.is_null());
        if named || annotation(ingress, INGRESS_CLASS_ANNOTATION).is_some() {
            return Ok(());
        }
        api.catch_up_cache().await?;
        let classes = cached_objects(api, "networking.k8s.io", "v1", "ingressclasses", None)?;
        let Some(class) = newest_default(classes, &[DEFAULT_INGRESS_CLASS]) else {
            return Ok(());
        };
        if let Some(obj) = ingress.as_object_mut() {
            let spec = obj.entry("spec").or_insert_with(|| json!({}));
            if let Some(spec) = spec.as_object_mut() {
                spec.insert("ingressClassName".into(), class["metadata"]["name"].clone());
            }
        }
        Ok(())
    }
}

pub struct PersistentVolumeClaimResize;

/// A claim's class: `spec.storageClassName`, else the beta annotation.
fn claim_class(claim: &Value) -> &str {
    claim
        .at("/spec/storageClassName")
        .and_then(Value::as_str)
        .or_else(|| annotation(claim, BETA_CLAIM_CLASS))
        .unwrap_or("")
}

fn storage_request(claim: &Value) -> i64 {
    claim
        .at("/spec/resources/requests/storage")
        .and_then(Value::as_str)
        .and_then(|s| kapi_codec::goscalar::quantity_milli_value(s).ok())
        .unwrap_or(0)
}

#[async_trait(?Send)]
impl Validating for PersistentVolumeClaimResize {
    fn name(&self) -> &'static str {
        "PersistentVolumeClaimResize"
    }

    async fn validate(
        &self,
        api: &Api,
        attrs: &Attributes<'_>,
        obj: Option<&Value>,
    ) -> Result<(), Status> {
        let (Some(claim), Some(old)) = (obj, attrs.old) else {
            return Ok(());
        };
        if !is(attrs, "", "persistentvolumeclaims") || attrs.operation != Operation::Update {
            return Ok(());
        }
        if storage_request(claim) <= storage_request(old) {
            return Ok(());
        }
        if old.at("/status/phase").and_then(Value::as_str) != Some("Bound") {
            return Err(forbidden(
                attrs,
                "Only bound persistent volume claims can be expanded",
            ));
        }
        let class = claim_class(claim);
        let allowed = !class.is_empty()
            && class == claim_class(old)
            && cached_objects(api, "storage.k8s.io", "v1", "storageclasses", None)?
                .iter()
                .find(|c| c["metadata"]["name"] == class)
                .is_some_and(|c| c["allowVolumeExpansion"] == true);
        if !allowed {
            return Err(forbidden(
                attrs,
                "only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize",
            ));
        }
        Ok(())
    }
}

pub struct RuntimeClass;

/// The RuntimeClass a new pod names, if any: `Err` when it names one that does not exist.
async fn runtime_class(
    api: &Api,
    attrs: &Attributes<'_>,
    pod: &Value,
) -> Result<Option<Value>, Status> {
    let Some(name) = pod.at("/spec/runtimeClassName").and_then(Value::as_str) else {
        return Ok(None);
    };
    let find = || -> Result<Option<Value>, Status> {
        Ok(
            cached_objects(api, "node.k8s.io", "v1", "runtimeclasses", None)?
                .into_iter()
                .find(|c| c["metadata"]["name"] == name),
        )
    };
    let mut found = find()?;
    if found.is_none() {
        api.catch_up_cache().await?;
        found = find()?;
    }
    match found {
        Some(c) => Ok(Some(c)),
        None => Err(forbidden(
            attrs,
            &format!("pod rejected: RuntimeClass \"{name}\" not found"),
        )),
    }
}

/// Whether two resource lists hold the same quantities.
fn same_resources(a: &Value, b: &Value) -> bool {
    let milli = |v: &Value| -> Vec<(String, i64)> {
        let mut out: Vec<(String, i64)> = v
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, q)| {
                        let n = q
                            .as_str()
                            .and_then(|s| kapi_codec::goscalar::quantity_milli_value(s).ok())
                            .unwrap_or(i64::MIN);
                        (k.clone(), n)
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    };
    milli(a) == milli(b)
}

fn is_pod_create(attrs: &Attributes<'_>) -> bool {
    is(attrs, "", "pods") && attrs.operation == Operation::Create
}

#[async_trait(?Send)]
impl Mutating for RuntimeClass {
    fn name(&self) -> &'static str {
        "RuntimeClass"
    }

    async fn admit(
        &self,
        api: &Api,
        attrs: &Attributes<'_>,
        obj: Option<&mut Value>,
    ) -> Result<(), Status> {
        let Some(pod) = obj else { return Ok(()) };
        if !is_pod_create(attrs) {
            return Ok(());
        }
        let Some(class) = runtime_class(api, attrs, pod).await? else {
            return Ok(());
        };
        let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
            return Ok(());
        };
        if let Some(fixed) = class.at("/overhead/podFixed").filter(|v| !v.is_null()) {
            if let Some(own) = spec.get("overhead").filter(|v| !v.is_null())
                && !same_resources(own, fixed)
            {
                return Err(forbidden(
                    attrs,
                    "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead",
                ));
            }
            spec.insert("overhead".into(), fixed.clone());
        }
        let Some(scheduling) = class.get("scheduling").filter(|v| !v.is_null()) else {
            return Ok(());
        };
        if let Some(selector) = scheduling["nodeSelector"].as_object() {
            let own = spec.entry("nodeSelector").or_insert_with(|| json!({}));
            if !own.is_object() {
                *own = json!({});
            }
            if let Some(own) = own.as_object_mut() {
                for (k, v) in selector {
                    match own.get(k) {
                        Some(have) if have != v => {
                            return Err(forbidden(
                                attrs,
                                &format!(
                                    "conflict: runtimeClass.scheduling.nodeSelector[{k}] = {}; pod.spec.nodeSelector[{k}] = {}",
                                    v.as_str().unwrap_or(""),
                                    have.as_str().unwrap_or("")
                                ),
                            ));
                        }
                        Some(_) => {}
                        None => {
                            own.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
        }
        if let Some(tolerations) = scheduling["tolerations"].as_array() {
            let own = spec.entry("tolerations").or_insert_with(|| json!([]));
            if !own.is_array() {
                *own = json!([]);
            }
            if let Some(own) = own.as_array_mut() {
                for t in tolerations {
                    if !own.contains(t) {
                        own.push(t.clone());
                    }
                }
            }
        }
        Ok(())
    }
}

#[async_trait(?Send)]
impl Validating for RuntimeClass {
    fn name(&self) -> &'static str {
        "RuntimeClass"
    }

    async fn validate(
        &self,
        api: &Api,
        attrs: &Attributes<'_>,
        obj: Option<&Value>,
    ) -> Result<(), Status> {
        let Some(pod) = obj else { return Ok(()) };
        if !is_pod_create(attrs) {
            return Ok(());
        }
        let class = runtime_class(api, attrs, pod).await?;
        let own = pod.at("/spec/overhead").filter(|v| !v.is_null());
        match class
            .as_ref()
            .and_then(|c| c.at("/overhead/podFixed"))
            .filter(|v| !v.is_null())
        {
            Some(fixed) if own.is_none_or(|o| !same_resources(o, fixed)) => Err(forbidden(
                attrs,
                "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead",
            )),
            None if own.is_some() => Err(forbidden(
                attrs,
                "pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead",
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_default_class_wins() {
        let class = |name: &str, created: &str, default: &str| {
            json!({"metadata": {"name": name, "creationTimestamp": created,
                   "annotations": {DEFAULT_STORAGE_CLASS: default}}})
        };
        let picked = newest_default(
            vec![
                class("old", "2026-01-01T00:00:00Z", "true"),
                class("new", "2026-06-01T00:00:00Z", "true"),
                class("newest-but-not-default", "2026-09-01T00:00:00Z", "false"),
                class("also-new", "2026-06-01T00:00:00Z", "true"),
            ],
            &[DEFAULT_STORAGE_CLASS],
        );
        assert_eq!(picked.unwrap()["metadata"]["name"], "also-new");
    }

    #[test]
    fn resources_compare_as_quantities() {
        assert!(same_resources(
            &json!({"cpu": "1", "memory": "1Gi"}),
            &json!({"memory": "1024Mi", "cpu": "1000m"})
        ));
        assert!(!same_resources(&json!({"cpu": "1"}), &json!({"cpu": "2"})));
        assert!(!same_resources(
            &json!({"cpu": "1"}),
            &json!({"cpu": "1", "memory": "1"})
        ));
    }
}
