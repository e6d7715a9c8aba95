//! Pods: generation tracking, a new pod's status (Pending, its QoS class), upstream's pod
//! defaults (the shared pod spec ones in `podspec`, and `SetDefaults_Pod`'s own), and DELETE
//! answering with the pod.

use crate::jsonptr::At;
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

    /// The client's grace period, else the pod's `terminationGracePeriodSeconds`; 0 for a pod
    /// no node runs (unscheduled, or already Succeeded or Failed); a negative one is 1.
    fn grace_period(&self, obj: &Value, requested: Option<i64>) -> Option<i64> {
        let mut period = requested
            .or_else(|| {
                obj.at("/spec/terminationGracePeriodSeconds")
                    .and_then(Value::as_i64)
            })
            .unwrap_or(0);
        let unscheduled = obj
            .at("/spec/nodeName")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty);
        let finished = matches!(
            obj.at("/status/phase").and_then(Value::as_str),
            Some("Succeeded" | "Failed")
        );
        if unscheduled || finished {
            period = 0;
        }
        Some(if period < 0 { 1 } else { period })
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        if let Some(o) = obj.as_object_mut() {
            o.insert("status".into(), json!({"phase": "Pending"}));
        }
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        super::pod_updates::validate_create(obj)
    }

    /// Compared with the stored pod as its defaults make it (as upstream decodes it).
    fn validate_update(&self, obj: &Value, old: &Value) -> Vec<Cause> {
        super::pod_updates::validate_update(obj, &self.defaulted(old))
    }

    fn prepare_for_subresource_update(&self, sub: &str, new: &Value, old: &Value) -> Option<Value> {
        match sub {
            "ephemeralcontainers" => Some(super::pod_updates::prepare_ephemeral(new, old)),
            "resize" => Some(super::pod_updates::prepare_resize(new, old)),
            _ => None,
        }
    }

    /// The status is the kubelet's (upstream checks it, not the spec, on `pods/status`).
    fn validate_subresource_update(
        &self,
        sub: &str,
        obj: &Value,
        old: &Value,
    ) -> Option<Vec<Cause>> {
        // Only the spec-changing subresources compare with the defaulted stored pod: kubelets'
        // status updates (the frequent ones) skip that copy.
        match sub {
            "ephemeralcontainers" => Some(super::pod_updates::validate_ephemeral(
                obj,
                &self.defaulted(old),
            )),
            "resize" => Some(super::pod_updates::validate_resize(
                obj,
                &self.defaulted(old),
            )),
            "status" => Some(Vec::new()),
            _ => None,
        }
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
        // priority and preemptionPolicy are the Priority admission plugin's.
        let qos = qos_class(s);
        if let Some(status) = podspec::child(o, "status") {
            // Computed from the final spec (defaults run again after admission, which may
            // have added requests), as upstream's PrepareForCreate computes it last.
            if status.get("qosClass").and_then(Value::as_str) != Some(qos) {
                status.insert("qosClass".into(), json!(qos));
            }
        }
    }
}

impl Pods {
    fn defaulted(&self, pod: &Value) -> Value {
        let mut pod = pod.clone();
        self.default(&mut pod);
        pod
    }
}

/// `qos_class` of a spec given as a value.
pub(super) fn qos_of(spec: &Value) -> &'static str {
    static EMPTY: std::sync::OnceLock<serde_json::Map<String, Value>> = std::sync::OnceLock::new();
    qos_class(
        spec.as_object()
            .unwrap_or_else(|| EMPTY.get_or_init(Default::default)),
    )
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
            let req = c.at("/resources/requests").and_then(Value::as_object);
            let lim = c.at("/resources/limits").and_then(Value::as_object);
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
