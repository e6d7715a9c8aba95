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
        super::podspec_rules::validate(obj.get("spec"), "spec", &["Always", "OnFailure", "Never"])
    }

    fn default(&self, obj: &mut Value) {
        let Some(o) = obj.as_object_mut() else { return };
        let spec = o.entry("spec").or_insert_with(|| json!({}));
        default_pod_spec(spec, Some("Always"));
        // A pod's own (SetDefaults_Pod), and what the Priority plugin sets.
        if let Some(s) = spec.as_object_mut() {
            s.entry("enableServiceLinks").or_insert_with(|| json!(true));
            s.entry("preemptionPolicy")
                .or_insert_with(|| json!("PreemptLowerPriority"));
            s.entry("priority").or_insert_with(|| json!(0));
        }
    }
}

/// The pod spec defaults kapi fills in so far (upstream's `SetDefaults_PodSpec` and
/// `SetDefaults_Container`, in part): for pods and every pod template. `restart` is the
/// restartPolicy default (none for jobs' templates, which must say).
pub fn default_pod_spec(spec: &mut Value, restart: Option<&str>) {
    let Some(s) = spec.as_object_mut() else {
        return;
    };
    if let Some(r) = restart {
        s.entry("restartPolicy").or_insert_with(|| json!(r));
    }
    s.entry("terminationGracePeriodSeconds")
        .or_insert_with(|| json!(30));
    s.entry("dnsPolicy")
        .or_insert_with(|| json!("ClusterFirst"));
    s.entry("securityContext").or_insert_with(|| json!({}));
    s.entry("schedulerName")
        .or_insert_with(|| json!("default-scheduler"));
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
