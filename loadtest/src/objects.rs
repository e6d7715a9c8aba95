//! The objects kapi-load writes, shaped like a real cluster's: a pod with a few containers, env,
//! probes, volumes and labels (about 3 KB as protobuf, 5 KB as JSON), nodes with capacity and
//! conditions, and node leases.

use serde_json::{Value, json};

/// Prefix of every namespace and node kapi-load creates, so a run never touches other objects.
pub const PREFIX: &str = "kapi-load";
pub const LEASE_NAMESPACE: &str = "kube-node-lease";

pub fn namespace_name(i: usize) -> String {
    format!("{PREFIX}-{i}")
}

pub fn node_name(i: usize) -> String {
    format!("{PREFIX}-node-{i}")
}

/// The name of populate's pod `i` in the run `run_id`.
pub fn pod_name(run_id: u64, i: usize) -> String {
    format!("pod-{run_id}-{i}")
}

pub fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": PREFIX}}})
}

fn container(name: &str, image: &str, port: u16) -> Value {
    let env: Vec<Value> = (0..8)
        .map(|i| json!({"name": format!("{}_SETTING_{i}", name.to_uppercase()), "value": format!("value-{i}-for-{name}-configuration")}))
        .collect();
    json!({
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/server"],
        "args": ["--port", port.to_string(), "--log-level=info", "--config=/etc/config/app.yaml"],
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "env": env,
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
        "volumeMounts": [
            {"name": "config", "mountPath": "/etc/config", "readOnly": true},
            {"name": "data", "mountPath": "/var/lib/data"},
            {"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}
        ],
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": port, "scheme": "HTTP"}, "initialDelaySeconds": 10, "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": port, "scheme": "HTTP"}, "periodSeconds": 5, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "securityContext": {"runAsNonRoot": true, "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true}
    })
}

/// A pod bound to `node` (spec.nodeName set, as if scheduled).
pub fn pod(name: &str, namespace: &str, node: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app": "load", "app.kubernetes.io/name": "web", "app.kubernetes.io/instance": name, "tier": "frontend", "pod-template-hash": "5d4b7c9f8"},
            "annotations": {"kapi-load/purpose": "load test pod shaped like a deployment's replica", "prometheus.io/scrape": "true", "prometheus.io/port": "9090"}
        },
        "spec": {
            "nodeName": node,
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "schedulerName": "default-scheduler",
            "priority": 0,
            "enableServiceLinks": true,
            "securityContext": {"fsGroup": 2000, "runAsUser": 1000},
            "containers": [
                container("web", "registry.example.com/team/web-frontend:v1.24.3", 8080),
                container("sidecar", "registry.example.com/infra/log-shipper:v2.1.0", 9090),
                container("proxy", "registry.example.com/infra/envoy-proxy:v1.30.1", 15001)
            ],
            "volumes": [
                {"name": "config", "configMap": {"name": "web-config", "defaultMode": 420}},
                {"name": "data", "emptyDir": {}},
                {"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}
                ]}}
            ],
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            ]
        }
    })
}

pub fn node(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "type": PREFIX}},
        "spec": {},
        "status": {
            "capacity": {"cpu": "32", "memory": "128Gi", "pods": "110"},
            "allocatable": {"cpu": "31", "memory": "126Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"}],
            "nodeInfo": {"kubeletVersion": "v1.36.0", "containerRuntimeVersion": "containerd://2.0.0", "operatingSystem": "linux", "architecture": "amd64", "osImage": "kapi-load", "kernelVersion": "6.1.0", "kubeProxyVersion": "", "machineID": "", "systemUUID": "", "bootID": ""}
        }
    })
}

/// A microsecond RFC 3339 timestamp in UTC (`MicroTime`), computed without a date crate.
pub fn micro_time_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_micros()
    )
}

pub fn lease(node: &str) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": node, "namespace": LEASE_NAMESPACE},
        "spec": {"holderIdentity": node, "leaseDurationSeconds": 40, "renewTime": micro_time_now()}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_is_a_few_kilobytes_like_a_real_one() {
        let n = pod("p", "ns", "node").to_string().len();
        assert!((3_000..8_000).contains(&n), "pod JSON is {n} bytes");
    }

    #[test]
    fn micro_time_is_rfc3339() {
        let t = micro_time_now();
        assert_eq!(t.len(), 27, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T');
    }
}
