//! Pods: generation tracking, a new pod's status (Pending, its QoS class), upstream's pod
//! defaults (the shared pod spec ones in `podspec`, and `SetDefaults_Pod`'s own), and DELETE
//! answering with the pod.

use serde_json::{Value, json};

use super::{Strategy, podspec};
use crate::api::status::Cause;

#[derive(Debug)]
pub struct Pods;

impl Strategy for Pods {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        if let Some(o) = obj.as_object_mut() {
            o.insert("status".into(), json!({"phase": "Pending"}));
        }
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let mut causes = Vec::new();
        let spec = obj.get("spec");
        let containers = spec
            .and_then(|s| s.get("containers"))
            .and_then(Value::as_array);
        match containers {
            Some(cs) if !cs.is_empty() => validate_containers(cs, "spec.containers", &mut causes),
            _ => causes.push(Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value".into(),
                field: "spec.containers".into(),
            }),
        }
        causes
    }

    fn default(&self, obj: &mut Value) {
        let Some(o) = obj.as_object_mut() else { return };
        let Some(s) = podspec::child(o, "spec") else {
            return;
        };
        podspec::default_pod_spec(s);
        podspec::default_pod_extras(s);
        // A negative grace period means "now", which the pod strategy turns into one second
        // (templates keep theirs).
        if s.get("terminationGracePeriodSeconds")
            .and_then(Value::as_i64)
            .is_some_and(|g| g < 0)
        {
            s.insert("terminationGracePeriodSeconds".into(), json!(1));
        }
        // What the Priority admission plugin sets when no class is named.
        podspec::or_set(s, "preemptionPolicy", json!("PreemptLowerPriority"));
        podspec::or_set(s, "priority", json!(0));
        let qos = qos_class(s);
        if let Some(status) = podspec::child(o, "status") {
            podspec::or_set(status, "qosClass", json!(qos));
        }
    }
}

/// The pod's QoS class (upstream's `ComputePodQOS`, from the defaulted requests and limits):
/// Guaranteed when every container limits cpu and memory at its requests, BestEffort when none
/// asks for either, Burstable otherwise.
fn qos_class(spec: &serde_json::Map<String, Value>) -> &'static str {
    const COMPUTE: [&str; 2] = ["cpu", "memory"];
    let mut any = false;
    let mut guaranteed = true;
    for list in ["containers", "initContainers"] {
        let cs = spec.get(list).and_then(Value::as_array);
        for c in cs.into_iter().flatten() {
            let req = c.pointer("/resources/requests").and_then(Value::as_object);
            let lim = c.pointer("/resources/limits").and_then(Value::as_object);
            let has = |m: Option<&serde_json::Map<String, Value>>, k: &str| {
                m.and_then(|m| m.get(k)).is_some_and(|q| q != "0")
            };
            for k in COMPUTE {
                if has(req, k) || has(lim, k) {
                    any = true;
                }
                let equal = match (req.and_then(|m| m.get(k)), lim.and_then(|m| m.get(k))) {
                    (Some(r), Some(l)) => r == l,
                    (None, Some(_)) => true,
                    _ => false,
                };
                if !has(lim, k) || !equal {
                    guaranteed = false;
                }
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

/// Upstream's container rules kapi checks so far: a unique DNS-label name, an image, ports
/// in range; in upstream's order, container by container.
fn validate_containers(containers: &[Value], path: &str, causes: &mut Vec<Cause>) {
    let mut seen = std::collections::HashSet::new();
    for (i, c) in containers.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let name = c.get("name").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() {
            causes.push(Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value".into(),
                field: format!("{at}.name"),
            });
        } else if !seen.insert(name) {
            causes.push(Cause {
                reason: "FieldValueDuplicate".into(),
                message: format!("Duplicate value: {}", json!(name)),
                field: format!("{at}.name"),
            });
        } else {
            for msg in super::meta::name_errors(super::NameRule::Label, name, false) {
                causes.push(Cause {
                    reason: "FieldValueInvalid".into(),
                    message: format!("Invalid value: {}: {msg}", json!(name)),
                    field: format!("{at}.name"),
                });
            }
        }
        if c.get("image")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim()
            .is_empty()
        {
            causes.push(Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value".into(),
                field: format!("{at}.image"),
            });
        }
        let ports = c.get("ports").and_then(Value::as_array);
        for (j, p) in ports.into_iter().flatten().enumerate() {
            let port = p.get("containerPort").and_then(Value::as_i64).unwrap_or(0);
            if !(1..=65535).contains(&port) {
                causes.push(Cause {
                    reason: "FieldValueInvalid".into(),
                    message: format!(
                        "Invalid value: {port}: must be between 1 and 65535, inclusive"
                    ),
                    field: format!("{at}.ports[{j}].containerPort"),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_gets_its_own_defaults_and_qos_class() {
        let mut p = json!({"spec": {"terminationGracePeriodSeconds": -1, "containers": [
            {"name": "c", "image": "x", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}});
        Pods.prepare_for_create(&mut p);
        Pods.default(&mut p);
        assert_eq!(p["spec"]["terminationGracePeriodSeconds"], 1);
        assert_eq!(p["spec"]["enableServiceLinks"], true);
        assert_eq!(
            p["status"],
            json!({"phase": "Pending", "qosClass": "Guaranteed"})
        );
        let mut b = json!({"spec": {"containers": [{"name": "c", "image": "x",
            "resources": {"requests": {"cpu": "1"}}}]}});
        Pods.default(&mut b);
        assert_eq!(b["status"]["qosClass"], "Burstable");
        let mut e = json!({"spec": {"containers": [{"name": "c", "image": "x"}]}});
        Pods.default(&mut e);
        assert_eq!(e["status"]["qosClass"], "BestEffort");
    }
}
