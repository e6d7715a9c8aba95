//! What may change in a pod once it exists, as upstream's pod strategies: an update of the
//! pod itself may change images, shorten `activeDeadlineSeconds`, add tolerations, drop
//! scheduling gates and little else (`ValidatePodUpdate`); ephemeral containers are only added,
//! never removed or changed, through `pods/ephemeralcontainers`; container cpu and memory only
//! change through `pods/resize`, keeping the pod's QoS class. Each subresource takes only its
//! own fields from the request, the rest from the stored pod.

use crate::jsonptr::At;
use serde_json::{Map, Value, json};

use super::field::{forbidden, invalid};
use super::podspec_rules;
use crate::api::status::Cause;

const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

const UPDATE_FORBIDDEN: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

fn spec_of(pod: &Value) -> &Value {
    pod.get("spec").unwrap_or(&Value::Null)
}

fn list<'a>(spec: &'a Value, key: &str) -> &'a [Value] {
    spec.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The spec fields that differ between two specs, as the "diff" part of a Forbidden message
/// (upstream prints a go-cmp diff of its internal struct, which cannot be reproduced).
pub(super) fn spec_diff(old: &Value, new: &Value) -> String {
    let empty = Map::new();
    let (o, n) = (
        old.as_object().unwrap_or(&empty),
        new.as_object().unwrap_or(&empty),
    );
    let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| o.get(*k) != n.get(*k))
        .map(|k| {
            format!(
                "  spec.{k}: {} -> {}",
                o.get(k).unwrap_or(&Value::Null),
                n.get(k).unwrap_or(&Value::Null)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A pod create: a valid spec, and no ephemeral containers (they come through the subresource).
pub fn validate_create(pod: &Value) -> Vec<Cause> {
    let mut causes =
        podspec_rules::validate(pod.get("spec"), "spec", &["Always", "OnFailure", "Never"]);
    if !list(spec_of(pod), "ephemeralContainers").is_empty() {
        causes.push(forbidden(
            "spec.ephemeralContainers".into(),
            "cannot be set on create",
        ));
    }
    causes
}

/// An update of the pod itself (`ValidatePodUpdate`).
pub fn validate_update(pod: &Value, old: &Value) -> Vec<Cause> {
    let mut causes =
        podspec_rules::validate(pod.get("spec"), "spec", &["Always", "OnFailure", "Never"]);
    let (new_spec, old_spec) = (spec_of(pod), spec_of(old));
    // What may change is set back to the old value; anything else left over is forbidden.
    let mut munged = new_spec.clone();
    let Some(m) = munged.as_object_mut() else {
        return causes;
    };
    for key in ["containers", "initContainers"] {
        let olds = list(old_spec, key);
        if let Some(news) = m.get_mut(key).and_then(Value::as_array_mut) {
            for (c, o) in news.iter_mut().zip(olds) {
                if let (Some(c), Some(image)) = (c.as_object_mut(), o.get("image")) {
                    c.insert("image".into(), image.clone());
                }
            }
        }
    }
    let new_deadline = new_spec
        .get("activeDeadlineSeconds")
        .and_then(Value::as_i64);
    let old_deadline = old_spec
        .get("activeDeadlineSeconds")
        .and_then(Value::as_i64);
    match (new_deadline, old_deadline) {
        (Some(n), _) if !(0..=i64::from(i32::MAX)).contains(&n) => {
            causes.push(invalid(
                "spec.activeDeadlineSeconds".into(),
                &json!(n),
                "must be between 0 and 2147483647, inclusive",
            ));
            return causes;
        }
        (Some(n), Some(o)) if o < n => {
            causes.push(invalid(
                "spec.activeDeadlineSeconds".into(),
                &json!(n),
                "must be less than or equal to previous value",
            ));
            return causes;
        }
        (None, Some(_)) => causes.push(invalid(
            "spec.activeDeadlineSeconds".into(),
            &Value::Null,
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }
    set_or_remove(
        m,
        "activeDeadlineSeconds",
        old_spec.get("activeDeadlineSeconds"),
    );
    // Tolerations: the old ones stay (a NoExecute one may change its seconds), new ones may
    // be added.
    let new_tolerations = list(new_spec, "tolerations");
    for t in list(old_spec, "tolerations") {
        let kept = new_tolerations.iter().any(|n| {
            let same_but_seconds = ["key", "operator", "value", "effect"]
                .iter()
                .all(|k| n.get(*k) == t.get(*k));
            same_but_seconds
                && (n == t || t.get("effect").and_then(Value::as_str) == Some("NoExecute"))
        });
        if !kept {
            causes.push(forbidden(
                "spec.tolerations".into(),
                "existing toleration can not be modified except its tolerationSeconds",
            ));
            break;
        }
    }
    set_or_remove(m, "tolerations", old_spec.get("tolerations"));
    if old_spec
        .get("terminationGracePeriodSeconds")
        .and_then(Value::as_i64)
        .is_some_and(|g| g < 0)
        && new_spec
            .get("terminationGracePeriodSeconds")
            .and_then(Value::as_i64)
            == Some(1)
    {
        set_or_remove(
            m,
            "terminationGracePeriodSeconds",
            old_spec.get("terminationGracePeriodSeconds"),
        );
    }
    // Scheduling gates may only be removed; a gated pod may still gain node constraints.
    let old_gates = list(old_spec, "schedulingGates");
    for g in list(new_spec, "schedulingGates") {
        if !old_gates.contains(g) {
            let name = g.get("name").and_then(Value::as_str).unwrap_or("");
            causes.push(forbidden(
                "spec.schedulingGates".into(),
                &format!("only deletion is allowed, but found new scheduling gate '{name}'"),
            ));
        }
    }
    set_or_remove(m, "schedulingGates", old_spec.get("schedulingGates"));
    if !old_gates.is_empty() {
        for k in ["nodeSelector", "affinity"] {
            set_or_remove(m, k, old_spec.get(k));
        }
    }
    if &munged != old_spec {
        causes.push(forbidden(
            "spec".into(),
            &format!("{UPDATE_FORBIDDEN}\n{}", spec_diff(old_spec, &munged)),
        ));
    }
    causes
}

fn set_or_remove(m: &mut Map<String, Value>, key: &str, v: Option<&Value>) {
    match v {
        Some(v) => m.insert(key.into(), v.clone()),
        None => m.remove(key),
    };
}

/// `pods/ephemeralcontainers`: the stored pod with the request's ephemeral containers.
pub fn prepare_ephemeral(new: &Value, old: &Value) -> Value {
    super::old_with(old, new, "spec", "ephemeralContainers")
}

/// `pods/resize`: the stored pod with each container's resources and resize policy from the
/// request (a list whose containers were added, removed or renamed is taken whole, for
/// validation to refuse).
pub fn prepare_resize(new: &Value, old: &Value) -> Value {
    let (new_spec, old_spec) = (spec_of(new), spec_of(old));
    let counts_differ = ["containers", "initContainers"]
        .iter()
        .any(|k| list(new_spec, k).len() != list(old_spec, k).len());
    if counts_differ {
        return new.clone();
    }
    let mut out = old.clone();
    for key in ["containers", "initContainers"] {
        let (news, olds) = (list(new_spec, key), list(old_spec, key));
        if news.is_empty() {
            continue;
        }
        let renamed = news
            .iter()
            .zip(olds)
            .any(|(n, o)| n.get("name") != o.get("name"));
        let merged: Vec<Value> = if renamed {
            news.to_vec()
        } else {
            olds.iter()
                .zip(news)
                .map(|(o, n)| {
                    let mut c = o.clone();
                    if let Some(c) = c.as_object_mut() {
                        set_or_remove(c, "resources", n.get("resources"));
                        set_or_remove(c, "resizePolicy", n.get("resizePolicy"));
                    }
                    c
                })
                .collect()
        };
        if let Some(spec) = out.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert(key.into(), Value::Array(merged));
        }
    }
    out
}

fn is_mirror(pod: &Value) -> bool {
    pod.at("/metadata/annotations")
        .and_then(|a| a.get(MIRROR_ANNOTATION))
        .is_some()
}

/// An error with no field (upstream's `field.NewPath("")`), alone in its answer.
fn alone(why: &str) -> Vec<Cause> {
    vec![forbidden(String::new(), why)]
}

/// `ValidatePodEphemeralContainersUpdate`.
pub fn validate_ephemeral(pod: &Value, old: &Value) -> Vec<Cause> {
    let mut causes =
        podspec_rules::validate(pod.get("spec"), "spec", &["Always", "OnFailure", "Never"]);
    if is_mirror(old) {
        return alone("static pods do not support ephemeral containers");
    }
    let news = list(spec_of(pod), "ephemeralContainers");
    for o in list(spec_of(old), "ephemeralContainers") {
        let name = o.get("name").and_then(Value::as_str).unwrap_or("");
        match news.iter().find(|n| n.get("name") == o.get("name")) {
            None => causes.push(forbidden(
                "spec.ephemeralContainers".into(),
                &format!("existing ephemeral containers \"{name}\" may not be removed\n"),
            )),
            Some(n) if n != o => causes.push(forbidden(
                "spec.ephemeralContainers".into(),
                &format!(
                    "existing ephemeral containers \"{name}\" may not be changed\n{} -> {}",
                    o, n
                ),
            )),
            Some(_) => {}
        }
    }
    causes
}

const COMPUTE: [&str; 2] = ["cpu", "memory"];

/// A container with its cpu and memory requests and limits set to `from`'s (what a resize
/// may change, masked).
fn masked(c: &Value, from: &Value) -> Value {
    let mut c = c.clone();
    for part in ["requests", "limits"] {
        let old_list = from.at(&format!("/resources/{part}"));
        let Some(res) = c.get_mut("resources").and_then(Value::as_object_mut) else {
            continue;
        };
        let entry = res.entry(part).or_insert_with(|| json!({}));
        if let Some(m) = entry.as_object_mut() {
            for k in COMPUTE {
                match old_list.and_then(|l| l.get(k)) {
                    Some(v) => m.insert(k.into(), v.clone()),
                    None => m.remove(k),
                };
            }
            if m.is_empty() && old_list.is_none() {
                res.remove(part);
            }
        }
    }
    c
}

/// Which keys of `old`'s requests or limits `new` dropped (a resize may not remove them).
fn removed(new: &Value, old: &Value, f: &str, causes: &mut Vec<Cause>) {
    for (part, what) in [
        ("requests", "resource requests"),
        ("limits", "resource limits"),
    ] {
        let pointer = format!("/resources/{part}");
        let olds = old.at(&pointer).and_then(Value::as_object);
        let news = new.at(&pointer).and_then(Value::as_object);
        if olds.is_some_and(|o| o.keys().any(|k| news.is_none_or(|n| !n.contains_key(k)))) {
            causes.push(forbidden(
                format!("{f}.resources.{part}"),
                &format!("{what} cannot be removed"),
            ));
        }
    }
}

/// `ValidatePodResize`.
pub fn validate_resize(pod: &Value, old: &Value) -> Vec<Cause> {
    let mut causes =
        podspec_rules::validate(pod.get("spec"), "spec", &["Always", "OnFailure", "Never"]);
    if is_mirror(old) {
        return alone("static pods cannot be resized");
    }
    if old.at("/spec/os/name").and_then(Value::as_str) == Some("windows") {
        return alone("windows pods cannot be resized");
    }
    let (new_spec, old_spec) = (spec_of(pod), spec_of(old));
    let old_qos = old
        .at("/status/qosClass")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| super::pods::qos_of(old_spec).to_string());
    if super::pods::qos_of(new_spec) != old_qos {
        causes.push(invalid(
            "spec".into(),
            &json!(old_qos),
            "Pod QOS Class may not change as a result of resizing",
        ));
    }
    let first_running = old
        .at("/status/containerStatuses")
        .and_then(Value::as_array)
        .and_then(|s| s.iter().find(|c| c.at("/state/running").is_some()));
    if first_running.is_some_and(|c| c.get("resources").is_none_or(Value::is_null)) {
        causes.push(forbidden(
            "spec".into(),
            "Pod running on node without support for resize",
        ));
    }
    let pod_level = |s: &Value| {
        ["requests", "limits"].iter().any(|k| {
            s.at(&format!("/resources/{k}"))
                .and_then(Value::as_object)
                .is_some_and(|m| !m.is_empty())
        })
    };
    if pod_level(new_spec) || pod_level(old_spec) {
        causes.push(forbidden(
            String::new(),
            "resize of pods with pod-level resources is forbidden when InPlacePodLevelResourcesVerticalScalingEnabled feature gate is disabled",
        ));
        return causes;
    }
    let mut ordering = Vec::new();
    for key in ["containers", "initContainers"] {
        let (news, olds) = (list(new_spec, key), list(old_spec, key));
        if news.len() != olds.len() {
            ordering.push(forbidden(
                format!("spec.{key}"),
                &format!("{key} may not be added or removed on resize"),
            ));
            continue;
        }
        for (i, (n, o)) in news.iter().zip(olds).enumerate() {
            if n.get("name") != o.get("name") {
                ordering.push(forbidden(
                    format!("spec.{key}[{i}].name"),
                    &format!("{key} may not be renamed or reordered on resize"),
                ));
            }
        }
    }
    if !ordering.is_empty() {
        causes.extend(ordering);
        return causes;
    }
    let restartable = |c: &Value| c.get("restartPolicy").and_then(Value::as_str) == Some("Always");
    for (i, (n, o)) in list(new_spec, "initContainers")
        .iter()
        .zip(list(old_spec, "initContainers"))
        .enumerate()
    {
        if restartable(o) {
            removed(n, o, &format!("spec.initContainers[{i}]"), &mut causes);
        }
    }
    for (i, (n, o)) in list(new_spec, "containers")
        .iter()
        .zip(list(old_spec, "containers"))
        .enumerate()
    {
        removed(n, o, &format!("spec.containers[{i}]"), &mut causes);
    }
    for (n, o) in list(new_spec, "containers")
        .iter()
        .zip(list(old_spec, "containers"))
    {
        if &masked(n, o) != o {
            causes.push(forbidden(
                "spec".into(),
                "only cpu and memory resources are mutable",
            ));
        }
    }
    for (i, (n, o)) in list(new_spec, "initContainers")
        .iter()
        .zip(list(old_spec, "initContainers"))
        .enumerate()
    {
        if restartable(o) {
            if &masked(n, o) != o {
                causes.push(forbidden(
                    format!("spec.initContainers[{i}]"),
                    "only cpu and memory resources for init or sidecar containers are mutable",
                ));
            }
        } else if n != o {
            causes.push(forbidden(
                "spec".into(),
                "resources for non-sidecar init containers are immutable",
            ));
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::field_reasons as fields;

    fn pod() -> Value {
        json!({"metadata": {"name": "p"}, "spec": {
            "restartPolicy": "Always",
            "containers": [{"name": "app", "image": "nginx:1", "resources": {
                "requests": {"cpu": "500m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}}}],
            "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}],
        }, "status": {"qosClass": "Burstable"}})
    }

    #[test]
    fn a_pod_update_may_change_images_and_add_tolerations_only() {
        let old = pod();
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = json!("nginx:2");
        new["spec"]["tolerations"][0]["tolerationSeconds"] = json!(60);
        new["spec"]["tolerations"]
            .as_array_mut()
            .unwrap()
            .push(json!({"key": "x", "operator": "Exists"}));
        assert_eq!(fields(&validate_update(&new, &old)), vec![]);
        let mut bad = old.clone();
        bad["spec"]["containers"][0]["ports"] = json!([{"containerPort": 80, "protocol": "TCP"}]);
        let causes = validate_update(&bad, &old);
        assert_eq!(fields(&causes), vec![("spec", "FieldValueForbidden")]);
        assert!(
            causes[0].message.contains("spec.containers:"),
            "{}",
            causes[0].message
        );
    }

    #[test]
    fn ephemeral_containers_are_added_never_removed() {
        let old = pod();
        let mut added = old.clone();
        added["spec"]["ephemeralContainers"] = json!([{"name": "dbg", "image": "busybox",
            "terminationMessagePolicy": "File", "imagePullPolicy": "Always", "targetContainerName": "app"}]);
        let prepared = prepare_ephemeral(&added, &old);
        assert_eq!(fields(&validate_ephemeral(&prepared, &old)), vec![]);
        let removed = prepare_ephemeral(&old, &prepared);
        let causes = validate_ephemeral(&removed, &prepared);
        assert_eq!(
            fields(&causes),
            vec![("spec.ephemeralContainers", "FieldValueForbidden")]
        );
        assert_eq!(
            causes[0].message,
            "Forbidden: existing ephemeral containers \"dbg\" may not be removed\n"
        );
    }

    #[test]
    fn a_resize_changes_cpu_and_memory_and_keeps_the_qos_class() {
        let old = pod();
        let mut new = old.clone();
        new["spec"]["containers"][0]["resources"]["limits"]["cpu"] = json!("2");
        new["spec"]["containers"][0]["image"] = json!("ignored");
        let prepared = prepare_resize(&new, &old);
        assert_eq!(prepared["spec"]["containers"][0]["image"], "nginx:1");
        assert_eq!(
            prepared["spec"]["containers"][0]["resources"]["limits"]["cpu"],
            "2"
        );
        assert_eq!(fields(&validate_resize(&prepared, &old)), vec![]);
        // Requests equal to limits would make it Guaranteed.
        let mut guaranteed = old.clone();
        guaranteed["spec"]["containers"][0]["resources"]["requests"] =
            json!({"cpu": "1", "memory": "128Mi"});
        let causes = validate_resize(&prepare_resize(&guaranteed, &old), &old);
        assert_eq!(fields(&causes), vec![("spec", "FieldValueInvalid")]);
        // Other resources may not change.
        let mut storage = old.clone();
        storage["spec"]["containers"][0]["resources"]["limits"]["ephemeral-storage"] = json!("1Gi");
        let causes = validate_resize(&prepare_resize(&storage, &old), &old);
        assert_eq!(fields(&causes), vec![("spec", "FieldValueForbidden")]);
        assert_eq!(
            causes[0].message,
            "Forbidden: only cpu and memory resources are mutable"
        );
    }
}
