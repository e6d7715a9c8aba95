//! The admission plugins that shape every new Pod, as upstream's:
//!
//! - **ServiceAccount**: a pod without `serviceAccountName` runs as `default`; the account must
//!   exist (403 otherwise, after upstream's retries for `default`, which the controller-manager
//!   creates a moment after the namespace); unless the pod or its account opts out, every
//!   container (and init container) mounts the `kube-api-access-<random>` projected volume (a
//!   bound token, the cluster CA, the namespace) at `/var/run/secrets/kubernetes.io/serviceaccount`;
//!   the account's `imagePullSecrets` become the pod's when it has none; an account annotated
//!   `kubernetes.io/enforce-mountable-secrets: "true"` limits the secrets the pod may name; a
//!   mirror pod may name no account, secret or token projection.
//! - **Priority**: the pod's `priority` (and `preemptionPolicy`) come from its PriorityClass, or
//!   from the global default class, or are 0 and `PreemptLowerPriority`; a pod may not state a
//!   different priority itself (403); only one PriorityClass may be the global default.
//! - **DefaultTolerationSeconds**: pods tolerate `node.kubernetes.io/not-ready` and
//!   `node.kubernetes.io/unreachable` (NoExecute) for `--default-not-ready-toleration-seconds`
//!   and `--default-unreachable-toleration-seconds` (300) unless they say otherwise.
//!
//! Service accounts and PriorityClasses are read from the watch cache, as upstream's plugins
//! read their informers; one not found there is looked for again once the cache caught up with
//! the store (an object created a moment ago).

use crate::jsonptr::At;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::{Attributes, Mutating, Operation, Validating, forbidden};
use crate::api::server::Api;
use crate::api::status::Status;

/// Where the service-account volume is mounted.
pub const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The prefix of the service-account volume's name.
const VOLUME_PREFIX: &str = "kube-api-access-";
/// A bound token's lifetime in the volume: an hour and 7 s (upstream's warn-only expiry).
const TOKEN_EXPIRATION_SECONDS: i64 = 3607;
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";
const ENFORCE_MOUNTABLE_SECRETS: &str = "kubernetes.io/enforce-mountable-secrets";
/// Upstream looks for a missing `default` account this many times, 100–200 ms apart.
const DEFAULT_ACCOUNT_ATTEMPTS: usize = 10;

fn is_pod(attrs: &Attributes<'_>) -> bool {
    attrs.resource.group.is_empty() && attrs.resource.resource == "pods"
}

fn spec_mut(pod: &mut Value) -> Option<&mut Map<String, Value>> {
    let obj = pod.as_object_mut()?;
    let spec = obj.entry("spec").or_insert_with(|| json!({}));
    if spec.is_null() {
        *spec = json!({});
    }
    spec.as_object_mut()
}

/// `list` as a mutable array, made one when absent or null (a wrong type is left to validation).
fn array_mut<'a>(obj: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Vec<Value>> {
    let v = obj.entry(key).or_insert_with(|| json!([]));
    if v.is_null() {
        *v = json!([]);
    }
    v.as_array_mut()
}

// ---------------------------------------------------------------------------------------------
// ServiceAccount

pub struct ServiceAccount;

impl ServiceAccount {
    /// The account `namespace/name`: from the cache, again once it caught up with the store,
    /// and for `default` up to upstream's ten attempts.
    async fn account(api: &Api, namespace: &str, name: &str) -> Result<Option<Arc<Value>>, Status> {
        let lookup = &api.service_accounts.lookup;
        if let Some(sa) = lookup.account(namespace, name)? {
            return Ok(Some(sa));
        }
        let attempts = if name == "default" {
            DEFAULT_ACCOUNT_ATTEMPTS
        } else {
            1
        };
        let pause = Duration::from_millis(100 + (uuid::Uuid::new_v4().as_u128() % 100) as u64);
        for attempt in 0..attempts {
            if attempt > 0 {
                monoio::time::sleep(pause).await;
            }
            api.catch_up_cache().await?;
            if let Some(sa) = lookup.account(namespace, name)? {
                return Ok(Some(sa));
            }
        }
        Ok(None)
    }
}

fn not_found_account(attrs: &Attributes<'_>, namespace: &str, name: &str) -> Status {
    forbidden(
        attrs,
        &format!(
            "error looking up service account {namespace}/{name}: serviceaccount \"{name}\" not found"
        ),
    )
}

fn should_automount(sa: &Value, spec: &Map<String, Value>) -> bool {
    if let Some(b) = spec
        .get("automountServiceAccountToken")
        .and_then(Value::as_bool)
    {
        return b;
    }
    sa["automountServiceAccountToken"].as_bool().unwrap_or(true)
}

/// The projected volume of a bound service-account token.
fn token_volume(name: &str) -> Value {
    json!({
        "name": name,
        "projected": {"sources": [
            {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace",
                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
        ]}
    })
}

/// Mounts the token volume into every container that has nothing at the mount path yet, and
/// adds the volume when one of them needed it (reusing a `kube-api-access-` volume the pod has).
fn mount_token(spec: &mut Map<String, Value>) {
    // Most pods (every one a controller made) have the mount in each container already.
    let lacking = ["initContainers", "containers"].iter().any(|list| {
        spec.get(*list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
            .any(|c| match c.get("volumeMounts") {
                Some(Value::Array(mounts)) => {
                    !mounts.iter().any(|m| m["mountPath"] == TOKEN_MOUNT_PATH)
                }
                _ => true,
            })
    });
    if !lacking {
        return;
    }
    let existing = spec
        .get("volumes")
        .and_then(Value::as_array)
        .and_then(|vs| {
            vs.iter()
                .filter_map(|v| v["name"].as_str())
                .find(|n| n.starts_with(VOLUME_PREFIX))
                .map(String::from)
        });
    let name = existing
        .clone()
        .unwrap_or_else(|| format!("{VOLUME_PREFIX}{}", crate::api::rest::random_suffix()));
    let mount = json!({"name": name, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH});
    let mut needed = false;
    for list in ["initContainers", "containers"] {
        let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in containers.iter_mut().filter_map(Value::as_object_mut) {
            let Some(mounts) = array_mut(c, "volumeMounts") else {
                continue;
            };
            if !mounts.iter().any(|m| m["mountPath"] == TOKEN_MOUNT_PATH) {
                mounts.push(mount.clone());
                needed = true;
            }
        }
    }
    if needed
        && existing.is_none()
        && let Some(volumes) = array_mut(spec, "volumes")
    {
        volumes.push(token_volume(&name));
    }
}

/// Names of secrets the account lists under `key` (`secrets`, `imagePullSecrets`).
fn account_secrets(sa: &Value, key: &str) -> Vec<String> {
    sa[key]
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(|s| s["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// With `kubernetes.io/enforce-mountable-secrets: "true"`, the secrets a pod may name.
fn limit_secret_references(sa: &Value, spec: &Value) -> Result<(), String> {
    let sa_name = sa["metadata"]["name"].as_str().unwrap_or("");
    let mountable = account_secrets(sa, "secrets");
    for v in spec["volumes"].as_array().into_iter().flatten() {
        if let Some(secret) = v["secret"].as_object() {
            let name = secret
                .get("secretName")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !mountable.iter().any(|m| m == name) {
                return Err(format!(
                    "volume with secret.secretName=\"{name}\" is not allowed because service account {sa_name} does not reference that secret"
                ));
            }
        }
    }
    for (list, what) in [
        ("initContainers", "init container"),
        ("containers", "container"),
        ("ephemeralContainers", "ephemeral container"),
    ] {
        for c in spec[list].as_array().into_iter().flatten() {
            for env in c["env"].as_array().into_iter().flatten() {
                if let Some(secret) = env
                    .at("/valueFrom/secretKeyRef/name")
                    .and_then(Value::as_str)
                    && !mountable.iter().any(|m| m == secret)
                {
                    return Err(format!(
                        "{what} {} with envVar {} referencing secret.secretName=\"{secret}\" is not allowed because service account {sa_name} does not reference that secret",
                        c["name"].as_str().unwrap_or(""),
                        env["name"].as_str().unwrap_or("")
                    ));
                }
            }
        }
    }
    let pull = account_secrets(sa, "imagePullSecrets");
    for (i, r) in spec["imagePullSecrets"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let name = r["name"].as_str().unwrap_or("");
        if !pull.iter().any(|p| p == name) {
            return Err(format!(
                "imagePullSecrets[{i}].name=\"{name}\" is not allowed because service account {sa_name} does not reference that imagePullSecret"
            ));
        }
    }
    Ok(())
}

/// A mirror pod (the kubelet's copy of a static pod) may reference no account, secret or token.
fn check_mirror(attrs: &Attributes<'_>, spec: &Value) -> Result<(), Status> {
    if spec["serviceAccountName"]
        .as_str()
        .is_some_and(|s| !s.is_empty())
    {
        return Err(forbidden(
            attrs,
            "a mirror pod may not reference service accounts",
        ));
    }
    let volumes = spec["volumes"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let secret_volume = volumes.iter().any(|v| {
        v.get("secret").is_some_and(|s| !s.is_null())
            || v["projected"]["sources"]
                .as_array()
                .is_some_and(|ss| ss.iter().any(|s| !s["secret"].is_null()))
    });
    let secret_env = ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|l| spec[*l].as_array().into_iter().flatten())
        .any(|c| {
            c["env"].as_array().into_iter().flatten().any(|e| {
                !e.at("/valueFrom/secretKeyRef")
                    .unwrap_or(&Value::Null)
                    .is_null()
            }) || c["envFrom"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|e| !e["secretRef"].is_null())
        });
    let pull_secrets = spec["imagePullSecrets"]
        .as_array()
        .is_some_and(|v| !v.is_empty());
    if secret_volume || secret_env || pull_secrets {
        return Err(forbidden(attrs, "a mirror pod may not reference secrets"));
    }
    let token = volumes.iter().any(|v| {
        v["projected"]["sources"]
            .as_array()
            .is_some_and(|ss| ss.iter().any(|s| !s["serviceAccountToken"].is_null()))
    });
    if token {
        return Err(forbidden(
            attrs,
            "a mirror pod may not use ServiceAccountToken volume projections",
        ));
    }
    Ok(())
}

fn is_mirror(pod: &Value) -> bool {
    pod.at("/metadata/annotations")
        .and_then(Value::as_object)
        .is_some_and(|a| a.contains_key(MIRROR_ANNOTATION))
}

#[async_trait(?Send)]
impl Mutating for ServiceAccount {
    fn name(&self) -> &'static str {
        "ServiceAccount"
    }

    async fn admit(
        &self,
        api: &Api,
        attrs: &Attributes<'_>,
        obj: Option<&mut Value>,
    ) -> Result<(), Status> {
        let Some(pod) = obj else {
            return Ok(());
        };
        if !is_pod(attrs) {
            return Ok(());
        }
        if attrs.subresource == Some("ephemeralcontainers") && attrs.operation == Operation::Update
        {
            // Ephemeral containers may not name secrets the account does not allow.
            let ns = attrs.namespace.unwrap_or("");
            let name = pod["spec"]["serviceAccountName"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let Some(sa) = Self::account(api, ns, &name).await? else {
                return Err(not_found_account(attrs, ns, &name));
            };
            if enforced(&sa) {
                let only_ephemeral =
                    json!({"ephemeralContainers": pod["spec"]["ephemeralContainers"]});
                limit_secret_references(&sa, &only_ephemeral).map_err(|e| forbidden(attrs, &e))?;
            }
            return Ok(());
        }
        if attrs.subresource.is_some() || attrs.operation != Operation::Create {
            return Ok(());
        }
        if is_mirror(pod) {
            return check_mirror(attrs, &pod["spec"]);
        }
        let ns = attrs.namespace.unwrap_or("");
        let Some(spec) = spec_mut(pod) else {
            return Ok(());
        };
        let name = match spec.get("serviceAccountName").and_then(Value::as_str) {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => {
                spec.insert("serviceAccountName".into(), json!("default"));
                "default".to_string()
            }
        };
        let Some(sa) = Self::account(api, ns, &name).await? else {
            return Err(not_found_account(attrs, ns, &name));
        };
        if should_automount(&sa, spec) {
            mount_token(spec);
        }
        let pod_pull = spec
            .get("imagePullSecrets")
            .and_then(Value::as_array)
            .is_some_and(|v| !v.is_empty());
        if !pod_pull {
            let names = account_secrets(&sa, "imagePullSecrets");
            if !names.is_empty() {
                spec.insert(
                    "imagePullSecrets".into(),
                    Value::Array(names.into_iter().map(|n| json!({"name": n})).collect()),
                );
            }
        }
        if enforced(&sa) {
            limit_secret_references(&sa, &pod["spec"]).map_err(|e| forbidden(attrs, &e))?;
        }
        Ok(())
    }
}

fn enforced(sa: &Value) -> bool {
    sa.at("/metadata/annotations")
        .and_then(|a| a.get(ENFORCE_MOUNTABLE_SECRETS))
        .and_then(Value::as_str)
        .is_some_and(|v| matches!(v, "1" | "t" | "T" | "true" | "TRUE" | "True"))
}

// ---------------------------------------------------------------------------------------------
// Priority

pub struct Priority;

/// Upstream's priority of a pod when no PriorityClass is the global default.
const DEFAULT_PRIORITY: i64 = 0;

/// The global default PriorityClass (the lowest value if a race made several).
fn default_class(classes: &[Value]) -> Option<&Value> {
    classes
        .iter()
        .filter(|c| c["globalDefault"].as_bool() == Some(true))
        .min_by_key(|c| c["value"].as_i64().unwrap_or(0))
}

async fn priority_classes(api: &Api) -> Result<Arc<Vec<Value>>, Status> {
    super::cluster_objects(api, "scheduling.k8s.io", "v1", "priorityclasses")
}

#[async_trait(?Send)]
impl Mutating for Priority {
    fn name(&self) -> &'static str {
        "Priority"
    }

    async fn admit(
        &self,
        api: &Api,
        attrs: &Attributes<'_>,
        obj: Option<&mut Value>,
    ) -> Result<(), Status> {
        let Some(pod) = obj else {
            return Ok(());
        };
        if !is_pod(attrs) || attrs.subresource.is_some() {
            return Ok(());
        }
        let Some(spec) = spec_mut(pod) else {
            return Ok(());
        };
        match attrs.operation {
            Operation::Update => {
                // Priority is set on create; an update that leaves it out keeps it.
                if let Some(old) = attrs.old.map(|o| &o["spec"]) {
                    for key in ["priority", "preemptionPolicy"] {
                        if spec.get(key).is_none_or(Value::is_null) && !old[key].is_null() {
                            spec.insert(key.into(), old[key].clone());
                        }
                    }
                }
                Ok(())
            }
            Operation::Create => {
                let class_name = spec
                    .get("priorityClassName")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let (priority, policy) = if class_name.is_empty() {
                    api.catch_up_cache().await?;
                    let classes = priority_classes(api).await?;
                    match default_class(&classes) {
                        Some(c) => {
                            if let Some(n) = c.at("/metadata/name").and_then(Value::as_str) {
                                spec.insert("priorityClassName".into(), json!(n));
                            }
                            (
                                c["value"].as_i64().unwrap_or(DEFAULT_PRIORITY),
                                c["preemptionPolicy"].as_str().map(String::from),
                            )
                        }
                        None => (DEFAULT_PRIORITY, Some("PreemptLowerPriority".to_string())),
                    }
                } else {
                    let mut found = find_class(api, &class_name).await?;
                    if found.is_none() {
                        api.catch_up_cache().await?;
                        found = find_class(api, &class_name).await?;
                    }
                    let Some(c) = found else {
                        return Err(forbidden(
                            attrs,
                            &format!("no PriorityClass with name {class_name} was found"),
                        ));
                    };
                    (
                        c["value"].as_i64().unwrap_or(DEFAULT_PRIORITY),
                        c["preemptionPolicy"].as_str().map(String::from),
                    )
                };
                // A priority that is no int32 is the decoder's 400 (upstream decodes first).
                if spec
                    .get("priority")
                    .filter(|v| !v.is_null())
                    .is_some_and(|g| g.as_i64().is_none_or(|g| i32::try_from(g).is_err()))
                {
                    return Ok(());
                }
                if let Some(given) = spec.get("priority").filter(|v| !v.is_null())
                    && given.as_i64() != Some(priority)
                {
                    return Err(forbidden(
                        attrs,
                        &format!(
                            "the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {priority} from the given PriorityClass name"
                        ),
                    ));
                }
                spec.insert("priority".into(), json!(priority));
                if let Some(policy) = policy {
                    if let Some(given) = spec
                        .get("preemptionPolicy")
                        .and_then(Value::as_str)
                        .filter(|g| *g != policy)
                    {
                        return Err(forbidden(
                            attrs,
                            &format!(
                                "the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name"
                            ),
                        ));
                    }
                    spec.insert("preemptionPolicy".into(), json!(policy));
                }
                Ok(())
            }
            Operation::Delete => Ok(()),
        }
    }
}

async fn find_class(api: &Api, name: &str) -> Result<Option<Value>, Status> {
    Ok(priority_classes(api)
        .await?
        .iter()
        .find(|c| c.at("/metadata/name").and_then(Value::as_str) == Some(name))
        .cloned())
}

#[async_trait(?Send)]
impl Validating for Priority {
    fn name(&self) -> &'static str {
        "Priority"
    }

    async fn validate(
        &self,
        api: &Api,
        attrs: &Attributes<'_>,
        obj: Option<&Value>,
    ) -> Result<(), Status> {
        let res = attrs.resource;
        let is_class = res.group == "scheduling.k8s.io" && res.resource == "priorityclasses";
        if !is_class
            || attrs.subresource.is_some()
            || !matches!(attrs.operation, Operation::Create | Operation::Update)
        {
            return Ok(());
        }
        let Some(pc) = obj else {
            return Ok(());
        };
        if pc["globalDefault"].as_bool() != Some(true) {
            return Ok(());
        }
        api.catch_up_cache().await?;
        let classes = priority_classes(api).await?;
        if let Some(existing) = default_class(&classes) {
            let existing_name = existing["metadata"]["name"].as_str().unwrap_or("");
            if attrs.operation == Operation::Create || existing_name != attrs.name {
                return Err(forbidden(
                    attrs,
                    &format!(
                        "PriorityClass {existing_name} is already marked as default. Only one default can exist"
                    ),
                ));
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// DefaultTolerationSeconds

pub struct DefaultTolerationSeconds;

const NOT_READY: &str = "node.kubernetes.io/not-ready";
const UNREACHABLE: &str = "node.kubernetes.io/unreachable";

/// Adds the not-ready and unreachable NoExecute tolerations a pod lacks.
fn add_default_tolerations(spec: &mut Map<String, Value>, not_ready: i64, unreachable: i64) {
    let Some(tolerations) = array_mut(spec, "tolerations") else {
        return;
    };
    let tolerates = |key: &str| {
        tolerations.iter().any(|t| {
            let k = t["key"].as_str().unwrap_or("");
            let e = t["effect"].as_str().unwrap_or("");
            (k == key || k.is_empty()) && (e == "NoExecute" || e.is_empty())
        })
    };
    let (has_not_ready, has_unreachable) = (tolerates(NOT_READY), tolerates(UNREACHABLE));
    if !has_not_ready {
        tolerations.push(
            json!({"key": NOT_READY, "operator": "Exists", "effect": "NoExecute",
                                "tolerationSeconds": not_ready}),
        );
    }
    if !has_unreachable {
        tolerations.push(
            json!({"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute",
                                "tolerationSeconds": unreachable}),
        );
    }
}

#[async_trait(?Send)]
impl Mutating for DefaultTolerationSeconds {
    fn name(&self) -> &'static str {
        "DefaultTolerationSeconds"
    }

    async fn admit(
        &self,
        _api: &Api,
        attrs: &Attributes<'_>,
        obj: Option<&mut Value>,
    ) -> Result<(), Status> {
        let Some(pod) = obj else {
            return Ok(());
        };
        if !is_pod(attrs)
            || attrs.subresource.is_some()
            || !matches!(attrs.operation, Operation::Create | Operation::Update)
        {
            return Ok(());
        }
        let settings = crate::flags::settings();
        if let Some(spec) = spec_mut(pod) {
            add_default_tolerations(
                spec,
                settings.not_ready_toleration_seconds,
                settings.unreachable_toleration_seconds,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn every_container_mounts_one_token_volume() {
        let mut s = spec(json!({
            "initContainers": [{"name": "i"}],
            "containers": [{"name": "a"},
                           {"name": "b", "volumeMounts": [{"name": "own", "mountPath": TOKEN_MOUNT_PATH}]}]
        }));
        mount_token(&mut s);
        let volumes = s["volumes"].as_array().cloned().unwrap_or_default();
        assert_eq!(volumes.len(), 1);
        let name = volumes[0]["name"].as_str().unwrap_or("");
        assert!(name.starts_with(VOLUME_PREFIX) && name.len() == VOLUME_PREFIX.len() + 5);
        assert_eq!(s["initContainers"][0]["volumeMounts"][0]["name"], name);
        assert_eq!(s["containers"][0]["volumeMounts"][0]["readOnly"], true);
        // A container with its own mount at the path keeps it.
        assert_eq!(
            s["containers"][1]["volumeMounts"].as_array().map(Vec::len),
            Some(1)
        );
        // Again: nothing more is added.
        mount_token(&mut s);
        assert_eq!(s["volumes"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn tolerations_are_added_unless_one_covers_them() {
        let mut s = spec(json!({"tolerations": [{"operator": "Exists"}]}));
        add_default_tolerations(&mut s, 300, 300);
        assert_eq!(s["tolerations"].as_array().map(Vec::len), Some(1));
        let mut s = spec(json!({"tolerations": [
            {"key": NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}]}));
        add_default_tolerations(&mut s, 300, 60);
        assert_eq!(
            s["tolerations"][1],
            json!({"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60})
        );
        assert_eq!(s["tolerations"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn enforced_secrets_are_limited_to_the_accounts() {
        let sa = json!({"metadata": {"name": "sa"}, "secrets": [{"name": "ok"}]});
        assert!(
            limit_secret_references(&sa, &json!({"volumes": [{"secret": {"secretName": "ok"}}]}))
                .is_ok()
        );
        let e = limit_secret_references(
            &sa,
            &json!({"containers": [{"name": "c", "env": [{"name": "E",
                "valueFrom": {"secretKeyRef": {"name": "no", "key": "k"}}}]}]}),
        );
        assert_eq!(
            e.err().as_deref(),
            Some(
                "container c with envVar E referencing secret.secretName=\"no\" is not allowed because service account sa does not reference that secret"
            )
        );
    }
}
