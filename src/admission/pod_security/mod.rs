//! PodSecurity, as upstream's admission plugin: a namespace's `pod-security.kubernetes.io/*`
//! labels (over the `PodSecurityConfiguration` defaults) say which Pod Security Standard each
//! mode holds its pods to. A pod that breaks its namespace's `enforce` level is refused (403);
//! pods and the eight pod-template workloads that break the `warn` level are admitted with a
//! `Warning` naming what broke it; a namespace with invalid labels is refused (422); raising a
//! namespace's enforce level warns about the pods already there that would break it.
//!
//! What was decided goes into the request's audit event as upstream's annotations
//! (`pod-security.kubernetes.io/enforce-policy`, `audit-violations`, `exempt`, `error`).
//!
//! Runs in the validating chain, after the kind's validation, on the object as it will be
//! stored. Namespaces and pods are read from the watch cache.

mod checks;
pub mod policy;

use crate::jsonptr::At;
use std::collections::{BTreeMap, HashSet};

use async_trait::async_trait;
use serde_json::Value;

use super::{Attributes, Operation, Validating};
use crate::api::server::Api;
use crate::api::status::{Cause, GroupResource, Status};
use checks::{evaluate, forbidden_detail, forbidden_reason};
use policy::{Level, LevelVersion, Policy, Version};

/// Existing pods a namespace's new enforce level is tried against, at most (upstream's).
const DRY_RUN_MAX_PODS: usize = 3000;

/// The annotation keys' prefix.
const ANNOTATION_PREFIX: &str = "pod-security.kubernetes.io/";

fn annotate(attrs: &Attributes<'_>, key: &str, value: String) {
    attrs.annotate(format!("{ANNOTATION_PREFIX}{key}"), value);
}

/// Invalid labels in the audit event (the pod is still evaluated, fail-safe).
fn note_label_errors(attrs: &Attributes<'_>, errors: &[Cause]) {
    if !errors.is_empty() {
        annotate(
            attrs,
            "error",
            format!("Failed to parse policy: {}", aggregate(errors)),
        );
    }
}

/// Label errors as upstream's aggregate prints them (`[e1, e2]` when several).
fn aggregate(errors: &[Cause]) -> String {
    let list: Vec<String> = errors
        .iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect();
    match list.as_slice() {
        [one] => one.clone(),
        _ => format!("[{}]", list.join(", ")),
    }
}

/// Pod subresources that never change what the pod runs.
const IGNORED_POD_SUBRESOURCES: &[&str] = &[
    "exec",
    "attach",
    "binding",
    "eviction",
    "log",
    "portforward",
    "proxy",
    "status",
];

/// The plugin with its configuration (`PodSecurityConfiguration`).
#[derive(Debug, Clone)]
pub struct PodSecurity {
    defaults: Policy,
    exempt_usernames: HashSet<String>,
    exempt_namespaces: HashSet<String>,
    exempt_runtime_classes: HashSet<String>,
}

impl Default for PodSecurity {
    /// No configuration: privileged:latest in every mode, nothing exempt.
    fn default() -> Self {
        PodSecurity {
            defaults: Policy::PRIVILEGED,
            exempt_usernames: HashSet::new(),
            exempt_namespaces: HashSet::new(),
            exempt_runtime_classes: HashSet::new(),
        }
    }
}

impl PodSecurity {
    /// The plugin as a `PodSecurityConfiguration` (`pod-security.admission.config.k8s.io`,
    /// v1, v1beta1 or v1alpha1) configures it; what upstream refuses at start is an error.
    pub fn from_config(config: &Value) -> Result<PodSecurity, String> {
        let api_version = config
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let kind = config.get("kind").and_then(Value::as_str).unwrap_or("");
        if !matches!(
            api_version,
            "pod-security.admission.config.k8s.io/v1"
                | "pod-security.admission.config.k8s.io/v1beta1"
                | "pod-security.admission.config.k8s.io/v1alpha1"
        ) || kind != "PodSecurityConfiguration"
        {
            return Err(format!(
                "PodSecurity: expected a pod-security.admission.config.k8s.io PodSecurityConfiguration, got {api_version} {kind}"
            ));
        }
        let mut errors = Vec::new();
        let defaults = config.get("defaults");
        let default = |key: &str| {
            defaults
                .and_then(|d| d.get(key))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let mut lv = |mode: &str| {
            let mut lv = LevelVersion::PRIVILEGED;
            if let Some(l) = default(mode) {
                match Level::parse(l) {
                    Some(l) => lv.level = l,
                    None => errors.push(format!(
                        "defaults.{mode}: Invalid value: {l:?}: must be one of privileged, baseline, restricted"
                    )),
                }
            }
            let key = format!("{mode}-version");
            if let Some(v) = default(&key) {
                match Version::parse(v) {
                    Some(v) => lv.version = v,
                    None => errors.push(format!(
                        "defaults.{key}: Invalid value: {v:?}: must be \"latest\" or \"v1.x\""
                    )),
                }
            }
            lv
        };
        let defaults = Policy {
            enforce: lv("enforce"),
            audit: lv("audit"),
            warn: lv("warn"),
        };
        let mut list = |key: &str, valid: fn(&str) -> Option<String>| {
            let mut seen = HashSet::new();
            let items = config
                .at(&format!("/exemptions/{key}"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate();
            for (i, item) in items {
                let s = item.as_str().unwrap_or("").to_string();
                if let Some(why) = valid(&s) {
                    errors.push(format!(
                        "exemptions.{key}[{i}]: Invalid value: {s:?}: {why}"
                    ));
                } else if !seen.insert(s.clone()) {
                    errors.push(format!("exemptions.{key}[{i}]: Duplicate value: {s:?}"));
                }
            }
            seen
        };
        let exempt_namespaces = list("namespaces", |s| {
            let causes = crate::kinds::meta::name_errors(crate::kinds::NameRule::Label, s, false);
            (!causes.is_empty()).then(|| causes.join(", "))
        });
        let exempt_runtime_classes = list("runtimeClasses", |s| {
            let causes = crate::kinds::meta::subdomain_errors(s);
            (!causes.is_empty()).then(|| causes.join(", "))
        });
        let exempt_usernames = list("usernames", |s| {
            s.is_empty()
                .then(|| "username must not be empty".to_string())
        });
        if !errors.is_empty() {
            return Err(format!("PodSecurity configuration: {}", errors.join(", ")));
        }
        Ok(PodSecurity {
            defaults,
            exempt_usernames,
            exempt_namespaces,
            exempt_runtime_classes,
        })
    }

    fn exempt_runtime_class(&self, attrs: &Attributes<'_>, spec: &Value) -> bool {
        let exempt = self.runtime_class_exempt(spec);
        if exempt {
            annotate(attrs, "exempt", "runtimeClass".into());
        }
        exempt
    }

    fn runtime_class_exempt(&self, spec: &Value) -> bool {
        spec.get("runtimeClassName")
            .and_then(Value::as_str)
            .is_some_and(|r| !r.is_empty() && self.exempt_runtime_classes.contains(r))
    }

    /// A pod create or update (and its ephemeral containers or resize): enforce, then warn.
    async fn pod(&self, api: &Api, attrs: &Attributes<'_>, pod: &Value) -> Result<(), Status> {
        if attrs
            .subresource
            .is_some_and(|s| IGNORED_POD_SUBRESOURCES.contains(&s))
        {
            return Ok(());
        }
        let ns = attrs.namespace.unwrap_or("");
        if self.exempt(attrs, ns) {
            return Ok(());
        }
        let labels = match api.namespace_labels(ns).await {
            Ok(Some(labels)) => labels,
            Ok(None) | Err(_) => {
                let message = format!("failed to lookup namespace \"{ns}\"");
                annotate(attrs, "error", format!("{message}: not found"));
                return Err(Status::internal(message));
            }
        };
        let (policy, errors) = policy::from_labels(&labels, &self.defaults);
        if errors.is_empty() && policy.fully_privileged() {
            annotate(attrs, "enforce-policy", "privileged:latest".into());
            return Ok(());
        }
        if attrs.operation == Operation::Update
            && let Some(old) = attrs.old
            && !significant_update(old, pod)
        {
            return Ok(());
        }
        let meta = pod.get("metadata").unwrap_or(&Value::Null);
        let spec = pod.get("spec").unwrap_or(&Value::Null);
        if self.exempt_runtime_class(attrs, spec) {
            return Ok(());
        }
        note_label_errors(attrs, &errors);
        annotate(attrs, "enforce-policy", policy.enforce.to_string());
        let enforced = evaluate(policy.enforce, meta, spec);
        self.audit(
            attrs,
            policy.audit,
            meta,
            spec,
            Some((policy.enforce, &enforced)),
        );
        if !enforced.is_empty() {
            let name = meta.get("name").and_then(Value::as_str).unwrap_or("");
            return Err(Status::forbidden(
                GroupResource {
                    group: "",
                    resource: "pods",
                },
                name,
                &format!(
                    "violates PodSecurity \"{}\": {}",
                    policy.enforce,
                    forbidden_detail(&enforced)
                ),
            ));
        }
        self.warn(
            attrs,
            policy.warn,
            meta,
            spec,
            Some((policy.enforce, &enforced)),
        );
        Ok(())
    }

    /// The `warn` mode's warning, reusing the enforce result when the level is the same.
    fn warn(
        &self,
        attrs: &Attributes<'_>,
        warn: LevelVersion,
        meta: &Value,
        spec: &Value,
        known: Option<(LevelVersion, &Vec<checks::Failure>)>,
    ) {
        if let Some(text) = violation(warn, meta, spec, known) {
            attrs.warn(text);
        }
    }

    /// The `audit` mode's annotation, reusing the enforce result when the level is the same.
    fn audit(
        &self,
        attrs: &Attributes<'_>,
        audit: LevelVersion,
        meta: &Value,
        spec: &Value,
        known: Option<(LevelVersion, &Vec<checks::Failure>)>,
    ) {
        if let Some(text) = violation(audit, meta, spec, known) {
            annotate(attrs, "audit-violations", text);
        }
    }

    /// Whether the namespace or the user is exempt (and says so in the audit event).
    fn exempt(&self, attrs: &Attributes<'_>, ns: &str) -> bool {
        let why = if self.exempt_namespaces.contains(ns) {
            "namespace"
        } else if self.exempt_usernames.contains(&attrs.user.name) {
            "user"
        } else {
            return false;
        };
        annotate(attrs, "exempt", why.into());
        true
    }

    /// A pod-template workload: warned about, never refused.
    async fn workload(&self, api: &Api, attrs: &Attributes<'_>, obj: &Value) -> Result<(), Status> {
        if attrs.subresource.is_some() {
            return Ok(());
        }
        let ns = attrs.namespace.unwrap_or("");
        if self.exempt(attrs, ns) {
            return Ok(());
        }
        let Ok(Some(labels)) = api.namespace_labels(ns).await else {
            annotate(
                attrs,
                "error",
                format!("failed to lookup namespace \"{ns}\": not found"),
            );
            return Ok(());
        };
        let (policy, errors) = policy::from_labels(&labels, &self.defaults);
        if errors.is_empty()
            && policy.warn.level == Level::Privileged
            && policy.audit.level == Level::Privileged
        {
            return Ok(());
        }
        let pointer = match attrs.resource.resource.as_str() {
            "podtemplates" => "/template",
            "cronjobs" => "/spec/jobTemplate/spec/template",
            _ => "/spec/template",
        };
        let Some(template) = obj.at(pointer).filter(|t| t.is_object()) else {
            return Ok(());
        };
        let meta = template.get("metadata").unwrap_or(&Value::Null);
        let spec = template.get("spec").unwrap_or(&Value::Null);
        if self.exempt_runtime_class(attrs, spec) {
            return Ok(());
        }
        note_label_errors(attrs, &errors);
        self.audit(attrs, policy.audit, meta, spec, None);
        self.warn(attrs, policy.warn, meta, spec, None);
        Ok(())
    }

    /// A namespace: its labels must parse; a stricter enforce level warns about existing pods.
    async fn namespace(&self, api: &Api, attrs: &Attributes<'_>, ns: &Value) -> Result<(), Status> {
        if attrs.subresource.is_some() {
            return Ok(());
        }
        let name = attrs.name;
        let labels = labels_of(ns);
        let (policy, errors) = policy::from_labels(&labels, &self.defaults);
        let refuse = |errors: Vec<Cause>| Err(Status::invalid("", "Namespace", name, errors));
        let exempt_warning = || {
            if self.exempt_namespaces.contains(name)
                && !policy.fully_privileged()
                && !policy.equivalent(&self.defaults)
            {
                attrs.warn(format!(
                    "namespace \"{name}\" is exempt from Pod Security, and the policy ({}) will be ignored",
                    policy::labelled_modes(&labels, &policy).join(", ")
                ));
            }
        };
        let Some(old) = attrs.old.filter(|_| attrs.operation == Operation::Update) else {
            if !errors.is_empty() {
                return refuse(errors);
            }
            exempt_warning();
            return Ok(());
        };
        let (old_policy, old_errors) = policy::from_labels(&labels_of(old), &self.defaults);
        if !errors.is_empty() && (old_errors.is_empty() || old_errors != errors) {
            return refuse(errors);
        }
        let (new, was) = (policy.enforce, old_policy.enforce);
        if new == was
            || new.level == Level::Privileged
            || (new.version == was.version && new.level <= was.level)
        {
            return Ok(());
        }
        if self.exempt_namespaces.contains(name) {
            exempt_warning();
            return Ok(());
        }
        for w in self.existing_pods(api, name, new) {
            attrs.warn(w);
        }
        Ok(())
    }

    /// The warnings for a namespace's existing pods under a new enforce level: its pods
    /// without a controller and one pod per controller first, at most `DRY_RUN_MAX_PODS`.
    fn existing_pods(&self, api: &Api, ns: &str, enforce: LevelVersion) -> Vec<String> {
        let Ok(pods) = super::cached_objects(api, "", "v1", "pods", Some(ns)) else {
            return vec![
                "failed to list pods while checking new PodSecurity enforce level".to_string(),
            ];
        };
        let mut first = Vec::new();
        let mut rest = Vec::new();
        let mut controllers = HashSet::new();
        for pod in &pods {
            let spec = pod.get("spec").unwrap_or(&Value::Null);
            if self.runtime_class_exempt(spec) {
                continue;
            }
            match controller_uid(pod) {
                Some(uid) if !controllers.insert(uid) => rest.push(pod),
                _ => first.push(pod),
            }
        }
        first.extend(rest);
        let total = first.len();
        // Reason list → (lexically first pod, pods).
        let mut groups: BTreeMap<String, (&str, usize)> = BTreeMap::new();
        for pod in first.iter().take(DRY_RUN_MAX_PODS) {
            let meta = pod.get("metadata").unwrap_or(&Value::Null);
            let failures = evaluate(enforce, meta, pod.get("spec").unwrap_or(&Value::Null));
            if failures.is_empty() {
                continue;
            }
            let name = meta.get("name").and_then(Value::as_str).unwrap_or("");
            let entry = groups
                .entry(forbidden_reason(&failures))
                .or_insert((name, 0));
            entry.0 = entry.0.min(name);
            entry.1 += 1;
        }
        let mut out = Vec::new();
        let checked = total.min(DRY_RUN_MAX_PODS);
        if checked < total {
            out.push(format!(
                "new PodSecurity enforce level only checked against the first {checked} of {total} existing pods"
            ));
        }
        if !groups.is_empty() {
            out.push(format!(
                "existing pods in namespace \"{ns}\" violate the new PodSecurity enforce level \"{enforce}\""
            ));
        }
        let mut decorated: Vec<String> = groups
            .into_iter()
            .map(|(reasons, (pod, n))| match n {
                1 => format!("{pod}: {reasons}"),
                2 => format!("{pod} (and 1 other pod): {reasons}"),
                n => format!("{pod} (and {} other pods): {reasons}", n - 1),
            })
            .collect();
        decorated.sort();
        out.extend(decorated);
        out
    }
}

/// `would violate PodSecurity "<lv>": <details>` when the pod breaks `lv` (`known`: the
/// failures already evaluated at some level, reused when it is `lv`).
fn violation(
    lv: LevelVersion,
    meta: &Value,
    spec: &Value,
    known: Option<(LevelVersion, &Vec<checks::Failure>)>,
) -> Option<String> {
    if lv.level == Level::Privileged {
        return None;
    }
    let failures = match known {
        Some((k, f)) if k == lv => f.clone(),
        _ => evaluate(lv, meta, spec),
    };
    (!failures.is_empty()).then(|| {
        format!(
            "would violate PodSecurity \"{lv}\": {}",
            forbidden_detail(&failures)
        )
    })
}

/// The resources a pod template lives in (beside pods themselves).
fn is_workload(group: &str, resource: &str) -> bool {
    matches!(
        (group, resource),
        ("", "replicationcontrollers" | "podtemplates")
            | (
                "apps",
                "replicasets" | "deployments" | "statefulsets" | "daemonsets"
            )
            | ("batch", "jobs" | "cronjobs")
    )
}

fn labels_of(obj: &Value) -> Vec<(String, String)> {
    obj.at("/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
        .collect()
}

fn controller_uid(pod: &Value) -> Option<&str> {
    pod.at("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .and_then(|r| r.get("uid").and_then(Value::as_str))
}

/// Whether a pod update changes what it runs (upstream's filter): the number of containers
/// or init containers, an image, or a new or changed ephemeral container.
fn significant_update(old: &Value, new: &Value) -> bool {
    let list = |pod: &Value, key: &str| -> Vec<Value> {
        pod.at(&format!("/spec/{key}"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let image = |c: &Value| {
        c.get("image")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    for key in ["containers", "initContainers"] {
        let (a, b) = (list(old, key), list(new, key));
        if a.len() != b.len() || a.iter().zip(&b).any(|(x, y)| image(x) != image(y)) {
            return true;
        }
    }
    let old_ephemeral: BTreeMap<String, String> = list(old, "ephemeralContainers")
        .iter()
        .map(|c| (checks_name(c), image(c)))
        .collect();
    list(new, "ephemeralContainers")
        .iter()
        .any(|c| old_ephemeral.get(&checks_name(c)) != Some(&image(c)))
}

fn checks_name(c: &Value) -> String {
    c.get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

#[async_trait(?Send)]
impl Validating for PodSecurity {
    fn name(&self) -> &'static str {
        "PodSecurity"
    }

    async fn validate(
        &self,
        api: &Api,
        attrs: &Attributes<'_>,
        obj: Option<&Value>,
    ) -> Result<(), Status> {
        let (Operation::Create | Operation::Update, Some(obj)) = (attrs.operation, obj) else {
            return Ok(());
        };
        let res = attrs.resource;
        match (res.group.as_str(), res.resource.as_str()) {
            ("", "pods") => self.pod(api, attrs, obj).await,
            ("", "namespaces") => self.namespace(api, attrs, obj).await,
            (g, r) if is_workload(g, r) => self.workload(api, attrs, obj).await,
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn configuration_sets_defaults_and_exemptions() {
        let ps = PodSecurity::from_config(&json!({
            "apiVersion": "pod-security.admission.config.k8s.io/v1",
            "kind": "PodSecurityConfiguration",
            "defaults": {"enforce": "baseline", "warn": "restricted", "warn-version": "v1.30"},
            "exemptions": {"namespaces": ["kube-system"], "usernames": ["admin"]},
        }))
        .unwrap();
        assert_eq!(ps.defaults.enforce.to_string(), "baseline:latest");
        assert_eq!(ps.defaults.warn.to_string(), "restricted:v1.30");
        assert_eq!(ps.defaults.audit, LevelVersion::PRIVILEGED);
        assert!(ps.exempt_namespaces.contains("kube-system"));
        let err = PodSecurity::from_config(&json!({
            "apiVersion": "pod-security.admission.config.k8s.io/v1",
            "kind": "PodSecurityConfiguration",
            "defaults": {"enforce": "strict"},
            "exemptions": {"usernames": ["", "a", "a"], "namespaces": ["Bad_Name"]},
        }))
        .unwrap_err();
        assert!(
            err.contains("defaults.enforce: Invalid value: \"strict\""),
            "{err}"
        );
        assert!(
            err.contains(
                "exemptions.usernames[0]: Invalid value: \"\": username must not be empty"
            ),
            "{err}"
        );
        assert!(
            err.contains("exemptions.usernames[2]: Duplicate value: \"a\""),
            "{err}"
        );
        assert!(err.contains("exemptions.namespaces[0]"), "{err}");
    }

    #[test]
    fn only_images_and_container_counts_make_a_pod_update_significant() {
        let old = json!({"spec": {"containers": [{"name": "a", "image": "x"}]}});
        let mut labels_only = old.clone();
        labels_only["spec"]["containers"][0]["resources"] = json!({"limits": {"cpu": "1"}});
        assert!(!significant_update(&old, &labels_only));
        let mut image = old.clone();
        image["spec"]["containers"][0]["image"] = json!("y");
        assert!(significant_update(&old, &image));
        let mut debug = old.clone();
        debug["spec"]["ephemeralContainers"] = json!([{"name": "dbg", "image": "busybox"}]);
        assert!(significant_update(&old, &debug));
        assert!(!significant_update(&debug, &debug.clone()));
    }
}
