//! Pods: generation tracking, a new pod's status (Pending, its QoS class), the defaults of
//! upstream's `SetDefaults_PodSpec`/`SetDefaults_Container` that kapi fills in so far, and
//! DELETE answering with the pod.

use serde_json::{Value, json};

use super::Strategy;
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
            o.insert(
                "status".into(),
                json!({"phase": "Pending", "qosClass": "BestEffort"}),
            );
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
        let spec = o.entry("spec").or_insert_with(|| json!({}));
        let Some(s) = spec.as_object_mut() else {
            return;
        };
        s.entry("restartPolicy").or_insert_with(|| json!("Always"));
        s.entry("terminationGracePeriodSeconds")
            .or_insert_with(|| json!(30));
        s.entry("dnsPolicy")
            .or_insert_with(|| json!("ClusterFirst"));
        s.entry("securityContext").or_insert_with(|| json!({}));
        s.entry("schedulerName")
            .or_insert_with(|| json!("default-scheduler"));
        s.entry("enableServiceLinks").or_insert_with(|| json!(true));
        s.entry("preemptionPolicy")
            .or_insert_with(|| json!("PreemptLowerPriority"));
        s.entry("priority").or_insert_with(|| json!(0));
        for list in ["containers", "initContainers"] {
            let Some(cs) = s.get_mut(list).and_then(Value::as_array_mut) else {
                continue;
            };
            for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                let image = c
                    .get("image")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let tag = image.rsplit('/').next().unwrap_or("");
                let latest = !tag.contains(':') || tag.ends_with(":latest");
                c.entry("imagePullPolicy")
                    .or_insert_with(|| json!(if latest { "Always" } else { "IfNotPresent" }));
                c.entry("terminationMessagePath")
                    .or_insert_with(|| json!("/dev/termination-log"));
                c.entry("terminationMessagePolicy")
                    .or_insert_with(|| json!("File"));
                c.entry("resources").or_insert_with(|| json!({}));
            }
        }
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
