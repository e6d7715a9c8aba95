//! The calls a real control plane made to a v1.36 kube-apiserver (`tests/data/upstream/
//! control-plane/calls.tsv`: kube-scheduler, kube-controller-manager with one ServiceAccount per
//! controller, three hollow kubelets, kubectl), replayed against kapi started as that apiserver
//! was: `Node,RBAC`, the six admission plugins, service-account keys and issuer,
//! `--service-cluster-ip-range=10.32.0.0/24` (on kapi's embedded store rather than etcd: the
//! calls cannot tell). Each row is sent as its user (client certificates
//! for kubelets, scheduler and controller-manager; a TokenRequest token for each controller's
//! ServiceAccount), with the row's verb, resource, subresource and query parameter names and a
//! plausible object, in the order the flow needs (a Deployment scaled 3 → 5, a Service and its
//! EndpointSlice, a rolling update, the Deployment deleted and garbage-collected, a Job, a
//! namespace deleted). The apiserver's own rows are start-up work: their objects are checked.
//! The test prints a table of rows by client and fails on any row kapi answers differently
//! (`replay.rs`: the rows, the calls and the comparison).

#[path = "control_plane_calls/replay.rs"]
mod replay;
mod support;

use std::collections::{BTreeMap, BTreeSet};

use replay::{Outcome, Replay, Row, RowKey, Who, r_get_quiet, report, rows};
use serde_json::{Value, json};
use support::kapi::Kapi;
use support::objects::{name_of, resource_version_of, uid_of};
use support::users::{tls_client, user};

/// A watch's bound: the server ends it after this many seconds if the test has not.
const WATCH_TIMEOUT_SECONDS: &str = "30";
const NODES: [&str; 3] = ["hollow-node-1", "hollow-node-2", "hollow-node-3"];
const NS: &str = "demo";
const DOOMED: &str = "doomed";
/// The timestamps the components write (any valid time serves the replay).
const NOW: &str = "2026-12-02T10:00:00Z";
const NOW_MICRO: &str = "2026-12-02T10:00:00.000000Z";

/// An HTTPS client presenting a client certificate `CN=<name>` in `groups`, signed by kapi's CA.
fn cert_client(k: &Kapi, name: &str, groups: &[&str]) -> reqwest::blocking::Client {
    let u = user(k, name, groups);
    tls_client(&u.ca, Some((&u.cert, &u.key)))
}

/// The identities of the rows: certificates for the components, the admin's for kubectl;
/// controllers' tokens come later (`controller_tokens`).
struct Cast {
    kubectl: Who,
    scheduler: Who,
    kcm: Who,
    kubelets: Vec<Who>,
    controllers: BTreeMap<String, Who>,
}

impl Cast {
    fn new(k: &Kapi) -> Cast {
        let who = |agent: &str, user: &str, http| Who {
            agent: agent.into(),
            user: user.into(),
            http,
            token: None,
        };
        let admin = tls_client(
            &k.data_dir.join("ca.crt"),
            Some((&k.data_dir.join("admin.crt"), &k.data_dir.join("admin.key"))),
        );
        Cast {
            kubectl: who("kubectl", "admin", admin),
            scheduler: who(
                "kube-scheduler",
                "system:kube-scheduler",
                cert_client(k, "system:kube-scheduler", &[]),
            ),
            kcm: who(
                "kube-controller-manager",
                "system:kube-controller-manager",
                cert_client(k, "system:kube-controller-manager", &[]),
            ),
            kubelets: NODES
                .iter()
                .map(|n| {
                    let user = format!("system:node:{n}");
                    who(
                        "hollow-kubelet",
                        &user,
                        cert_client(k, &user, &["system:nodes"]),
                    )
                })
                .collect(),
            controllers: BTreeMap::new(),
        }
    }

    fn controller(&self, name: &str) -> &Who {
        self.controllers
            .get(name)
            .unwrap_or_else(|| panic!("no token for controller {name}"))
    }

    /// Who a row's user is.
    fn of(&self, user: &str) -> Option<&Who> {
        if let Some(sa) = user.strip_prefix("system:serviceaccount:kube-system:") {
            return self.controllers.get(sa);
        }
        [&self.kubectl, &self.scheduler, &self.kcm]
            .into_iter()
            .chain(self.kubelets.iter())
            .find(|w| w.user == user)
    }
}

const SMP: &str = "application/strategic-merge-patch+json";
const MERGE: &str = "application/merge-patch+json";
const APPLY: &str = "application/apply-patch+yaml";

/// The controller-manager's start: its discovery, authentication ConfigMap, leader lease, and
/// a ServiceAccount with a TokenRequest token for each controller.
fn controller_manager_starts(r: &mut Replay, cast: &mut Cast, controllers: &BTreeSet<String>) {
    let kcm = cast.kcm.clone();
    let cm = r.get(
        &kcm,
        "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication",
        200,
    );
    r.check(cm["data"]["client-ca-file"].is_string(), || {
        format!("extension-apiserver-authentication without client-ca-file: {cm}")
    });
    leader_election(r, &kcm, "kube-controller-manager");
    r.get(&kcm, "/api/v1/namespaces/kube-system", 200);
    for c in controllers {
        let sa = format!("/api/v1/namespaces/kube-system/serviceaccounts/{c}");
        r.get(&kcm, &sa, 404);
        r.post(
            &kcm,
            "/api/v1/namespaces/kube-system/serviceaccounts",
            &[],
            &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": c}}),
            201,
        );
        r.get(&kcm, &sa, 200);
        let tr = r.post(
            &kcm,
            &format!("{sa}/token"),
            &[],
            &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                    "spec": {"expirationSeconds": 3600}}),
            201,
        );
        let token = tr["status"]["token"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        r.check(
            !token.is_empty() && tr["status"]["expirationTimestamp"].is_string(),
            || format!("a TokenRequest without status.token/expirationTimestamp: {tr}"),
        );
        cast.controllers.insert(
            c.clone(),
            Who {
                agent: "kube-controller-manager".into(),
                user: format!("system:serviceaccount:kube-system:{c}"),
                http: tls_client(&r.data_dir.join("ca.crt"), None),
                token: Some(token),
            },
        );
    }
    r.post(
        &kcm,
        "/api/v1/namespaces/kube-system/events",
        &[],
        &event(
            "kube-system",
            "Lease",
            "kube-controller-manager",
            "coordination.k8s.io/v1",
            "LeaderElection",
        ),
        201,
    );
}

/// client-go's leader election on a Lease in kube-system: get (404), create, renew.
fn leader_election(r: &mut Replay, who: &Who, name: &str) {
    let path = format!("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{name}");
    r.get(who, &path, 404);
    let lease = r.post(
        who,
        "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases",
        &[],
        &json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": name, "namespace": "kube-system"},
                "spec": {"holderIdentity": format!("{name}-holder"), "leaseDurationSeconds": 15,
                         "acquireTime": NOW_MICRO, "renewTime": NOW_MICRO, "leaseTransitions": 0}}),
        201,
    );
    let mut renewed = lease.clone();
    renewed["spec"]["renewTime"] = json!("2026-12-02T10:00:02.000000Z");
    let back = r.put(who, &path, &renewed, 200);
    r.check(
        back["spec"]["holderIdentity"] == lease["spec"]["holderIdentity"]
            && back["spec"]["renewTime"] == "2026-12-02T10:00:02.000000Z",
        || format!("a renewed lease reads back as {back}"),
    );
}

/// Event names as client-go's recorders make them: the object's name and a hex timestamp.
fn event_name(object: &str) -> String {
    static SEQ: std::sync::atomic::AtomicU64 =
        std::sync::atomic::AtomicU64::new(0x187d_4c3a_2b1e_0000);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{object}.{seq:x}")
}

fn event(ns: &str, kind: &str, name: &str, api_version: &str, reason: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Event",
           "metadata": {"name": event_name(name), "namespace": ns},
           "involvedObject": {"kind": kind, "name": name, "namespace": ns, "apiVersion": api_version},
           "reason": reason, "message": format!("{reason} for {name}"), "type": "Normal",
           "source": {"component": "replay"}, "firstTimestamp": NOW, "lastTimestamp": NOW, "count": 1,
           "reportingComponent": "", "reportingInstance": ""})
}

/// A kubelet's registration: its Node (404, create, get, status), CSINode and node Lease.
fn kubelet_registers(r: &mut Replay, kubelet: &Who, node: &str, index: usize) -> Value {
    let path = format!("/api/v1/nodes/{node}");
    r.get(kubelet, &path, 404);
    r.post(
        kubelet,
        "/api/v1/nodes",
        &[],
        &json!({"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": node, "labels": {"kubernetes.io/hostname": node,
                    "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"},
                    "annotations": {"volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
                "spec": {"taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]}}),
        201,
    );
    let created = r.get(kubelet, &path, 200);
    let status = json!({"status": {
        "conditions": [
            {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory",
             "message": "kubelet has sufficient memory available",
             "lastHeartbeatTime": NOW, "lastTransitionTime": NOW},
            {"type": "Ready", "status": "True", "reason": "KubeletReady",
             "message": "kubelet is posting ready status",
             "lastHeartbeatTime": NOW, "lastTransitionTime": NOW}],
        "addresses": [{"type": "InternalIP", "address": format!("10.0.0.{}", index + 1)},
                      {"type": "Hostname", "address": node}],
        "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {"machineID": "m", "systemUUID": "s", "bootID": "b", "kernelVersion": "6.1",
            "osImage": "hollow", "containerRuntimeVersion": "fake://1", "kubeletVersion": "v1.36.2",
            "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64"}}});
    let patched = r.patch(kubelet, &format!("{path}/status"), &[], SMP, &status, 200);
    let ready = patched["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    });
    r.check(
        ready
            && patched["status"]["addresses"][0]["address"].is_string()
            && patched["status"]["allocatable"]["pods"] == "110",
        || format!("a node's status reads back as {}", patched["status"]),
    );
    let owner =
        json!([{"apiVersion": "v1", "kind": "Node", "name": node, "uid": uid_of(&created)}]);
    let csinode = format!("/apis/storage.k8s.io/v1/csinodes/{node}");
    r.get(kubelet, &csinode, 404);
    r.call(
        kubelet,
        "GET",
        &csinode,
        &[("resourceVersion", "0")],
        None,
        404,
    );
    r.post(
        kubelet,
        "/apis/storage.k8s.io/v1/csinodes",
        &[],
        &json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSINode",
                "metadata": {"name": node, "ownerReferences": owner}, "spec": {"drivers": []}}),
        201,
    );
    let lease_path =
        format!("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node}");
    r.get(kubelet, &lease_path, 404);
    let lease = r.post(
        kubelet,
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
        &[],
        &json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": node, "namespace": "kube-node-lease", "ownerReferences": owner},
                "spec": {"holderIdentity": node, "leaseDurationSeconds": 40, "renewTime": NOW_MICRO}}),
        201,
    );
    let mut renewed = lease.clone();
    renewed["spec"]["renewTime"] = json!("2026-12-02T10:00:10.000000Z");
    let back = r.put(kubelet, &lease_path, &renewed, 200);
    r.check(
        back["metadata"]["ownerReferences"][0]["kind"] == "Node"
            && back["spec"]["renewTime"] == "2026-12-02T10:00:10.000000Z",
        || format!("a node lease reads back as {back}"),
    );
    patched
}

/// The node controllers' part: the lifecycle controller reads the node and removes the
/// not-ready taint, the TTL controller annotates it, the garbage collector looks it up.
fn node_controllers(r: &mut Replay, cast: &Cast, node: &str) {
    let nc = cast.controller("node-controller").clone();
    let path = format!("/api/v1/nodes/{node}");
    r.call(&nc, "GET", &path, &[("resourceVersion", "0")], None, 200);
    let patched = r.patch(&nc, &path, &[], SMP, &json!({"spec": {"taints": []}}), 200);
    r.check(
        patched["spec"]["taints"]
            .as_array()
            .is_none_or(|t| t.is_empty()),
        || format!("the not-ready taint was not removed: {}", patched["spec"]),
    );
    r.post(
        &nc,
        "/api/v1/namespaces/default/events",
        &[],
        &event("default", "Node", node, "v1", "RegisteredNode"),
        201,
    );
    let ttl = cast.controller("ttl-controller").clone();
    let annotated = r.patch(
        &ttl,
        &path,
        &[],
        MERGE,
        &json!({"metadata": {"annotations": {"node.alpha.kubernetes.io/ttl": "0"}}}),
        200,
    );
    r.check(
        annotated["metadata"]["annotations"]["node.alpha.kubernetes.io/ttl"] == "0",
        || format!("the TTL annotation is missing: {}", annotated["metadata"]),
    );
    let gc = cast.controller("generic-garbage-collector").clone();
    r.get(&gc, &path, 200);
}

/// The template hash the deployment controller names a ReplicaSet by (any stable string of
/// its alphabet serves the replay).
fn template_hash(image: &str) -> &'static str {
    if image.ends_with("1.27") {
        "7c5ddbdf54"
    } else {
        "5b7d9f8c64"
    }
}

/// The deployment controller's ReplicaSet for the deployment's current template.
fn replicaset_for(dep: &Value, replicas: i64, revision: &str) -> Value {
    let image = dep["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default();
    let hash = template_hash(image);
    let mut template = dep["spec"]["template"].clone();
    template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
    json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
           "metadata": {"name": format!("web-{hash}"), "namespace": NS,
               "labels": {"app": "web", "pod-template-hash": hash},
               "annotations": {"deployment.kubernetes.io/revision": revision,
                   "deployment.kubernetes.io/desired-replicas": replicas.to_string(),
                   "deployment.kubernetes.io/max-replicas": (replicas + 1).to_string()},
               "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                   "uid": uid_of(dep), "controller": true, "blockOwnerDeletion": true}]},
           "spec": {"replicas": replicas,
               "selector": {"matchLabels": {"app": "web", "pod-template-hash": hash}},
               "template": template}})
}

/// The pods of a ReplicaSet, as its controller makes them.
fn pod_for(rs: &Value, owner_kind: &str, owner_api: &str) -> Value {
    let mut template = rs["spec"]["template"].clone();
    let meta = template["metadata"].take();
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"generateName": format!("{}-", name_of(rs)), "namespace": NS,
               "labels": meta["labels"],
               "ownerReferences": [{"apiVersion": owner_api, "kind": owner_kind, "name": name_of(rs),
                   "uid": uid_of(rs), "controller": true, "blockOwnerDeletion": true}]},
           "spec": template["spec"]})
}

/// What a pod's phase and address look like once its kubelet has started it.
fn running_status(pod: &Value, node_index: usize, pod_index: usize, phase: &str) -> Value {
    let ip = format!("10.200.{}.{}", node_index + 1, pod_index + 10);
    let container = pod["spec"]["containers"][0].clone();
    let state = if phase == "Running" {
        json!({"running": {"startedAt": NOW}})
    } else {
        json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": NOW, "finishedAt": NOW}})
    };
    let ready = if phase == "Running" { "True" } else { "False" };
    json!({"metadata": {"uid": uid_of(pod)},
           "status": {"phase": phase, "podIP": ip, "podIPs": [{"ip": ip}],
               "hostIP": format!("10.0.0.{}", node_index + 1),
               "hostIPs": [{"ip": format!("10.0.0.{}", node_index + 1)}], "startTime": NOW,
               "qosClass": "BestEffort",
               "conditions": [
                   {"type": "Initialized", "status": "True", "lastTransitionTime": NOW},
                   {"type": "Ready", "status": ready, "lastTransitionTime": NOW},
                   {"type": "ContainersReady", "status": ready, "lastTransitionTime": NOW},
                   {"type": "PodScheduled", "status": "True", "lastTransitionTime": NOW}],
               "containerStatuses": [{"name": container["name"], "image": container["image"],
                   "imageID": format!("docker.io/library/{}", container["image"].as_str().unwrap_or_default()),
                   "containerID": format!("containerd://{}", uid_of(pod)), "ready": phase == "Running",
                   "started": phase == "Running", "restartCount": 0, "state": state}]}})
}

/// Waits (bounded) until the kubelet's own list of its pods shows `pod`, as its watch would
/// before it acts: the Node authorizer decides from the same cache, which follows the store.
fn kubelet_sees(r: &Replay, kubelet: &Who, node: &str, pod: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let selector = format!("spec.nodeName={node}");
    loop {
        let resp = r.request(
            kubelet,
            "GET",
            "/api/v1/pods",
            &[("fieldSelector", &selector)],
            None,
        );
        let list: Value =
            serde_json::from_slice(&resp.bytes().unwrap_or_default()).unwrap_or(Value::Null);
        let seen = list["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|p| name_of(p) == pod));
        if seen {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{node} never saw {pod}: {list}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A pod's way from created to running: the scheduler binds it to a node, the kubelet there
/// reads it, asks a token for its ServiceAccount and reports it running (or `phase`).
fn schedule_and_run(
    r: &mut Replay,
    cast: &Cast,
    pod: &Value,
    n: usize,
    seq: usize,
    phase: &str,
) -> Value {
    let node = NODES[n];
    let pname = name_of(pod);
    let path = format!("/api/v1/namespaces/{NS}/pods/{pname}");
    r.post(
        &cast.scheduler,
        &format!("{path}/binding"),
        &[],
        &json!({"apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": pname, "namespace": NS, "uid": uid_of(pod)},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node}}),
        201,
    );
    let kubelet = cast.kubelets[n].clone();
    kubelet_sees(r, &kubelet, node, &pname);
    let bound = r.get(&kubelet, &path, 200);
    let scheduled = bound["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "PodScheduled" && c["status"] == "True")
    });
    r.check(bound["spec"]["nodeName"] == node && scheduled, || {
        format!(
            "a bound pod reads back as spec.nodeName={} conditions={}",
            bound["spec"]["nodeName"], bound["status"]["conditions"]
        )
    });
    let sa = bound["spec"]["serviceAccountName"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    let tr = r.post(
        &kubelet,
        &format!("/api/v1/namespaces/{NS}/serviceaccounts/{sa}/token"),
        &[],
        &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"audiences": null, "expirationSeconds": 3607,
                         "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": pname, "uid": uid_of(pod)}}}),
        201,
    );
    r.check(tr["status"]["token"].is_string(), || {
        format!("the kubelet's TokenRequest answered {tr}")
    });
    let status = running_status(&bound, n, seq, phase);
    let after = r.patch(&kubelet, &format!("{path}/status"), &[], SMP, &status, 200);
    r.check(
        after["status"]["phase"] == phase
            && after["status"]["podIP"] == status["status"]["podIP"]
            && after["status"]["containerStatuses"][0]["containerID"].is_string(),
        || {
            format!(
                "a pod's status after the kubelet's patch: {}",
                after["status"]
            )
        },
    );
    after
}

fn kubectl_creates(r: &mut Replay, cast: &Cast, path: &str, obj: &Value, manager: &str) -> Value {
    let mut query = vec![("fieldManager", manager)];
    if !path.ends_with("/services") {
        query.push(("fieldValidation", "Strict"));
    }
    r.post(&cast.kubectl, path, &query, obj, 201)
}

/// The namespace's own controllers: its default ServiceAccount, the root CA ConfigMap and the
/// service CA ConfigMap.
fn namespace_controllers(r: &mut Replay, cast: &Cast, ns: &str, expect_cm: u16) {
    let sac = cast.controller("service-account-controller").clone();
    if expect_cm == 201 {
        r.post(
            &sac,
            &format!("/api/v1/namespaces/{ns}/serviceaccounts"),
            &[],
            &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}),
            201,
        );
    }
    for (controller, cm) in [
        ("root-ca-cert-publisher", "kube-root-ca.crt"),
        ("service-ca-cert-publisher", "openshift-service-ca.crt"),
    ] {
        let who = cast.controller(controller).clone();
        let body = r.post(
            &who,
            &format!("/api/v1/namespaces/{ns}/configmaps"),
            &[],
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": cm,
                    "annotations": {"kubernetes.io/description": "the cluster's CA"}},
                    "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"}}),
            expect_cm,
        );
        if expect_cm == 403 {
            r.check(
                body["reason"] == "Forbidden"
                    && body["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("because it is being terminated")),
                || format!("a create in a terminating namespace answered {body}"),
            );
        }
    }
}

/// kubectl's Deployment and what the deployment, replica set, scheduler, kubelets, endpoint
/// and endpointslice controllers do with it: 3 pods, scaled to 5, a Service with its
/// EndpointSlice, a new image rolled out with a second ReplicaSet, then the Deployment deleted
/// and its dependents collected.
fn deployment_flow(r: &mut Replay, cast: &Cast, rows: &[Row]) {
    let kubectl = cast.kubectl.clone();
    let deps = format!("/apis/apps/v1/namespaces/{NS}/deployments");
    r.get(&kubectl, &format!("{deps}/web"), 404);
    let dep = kubectl_creates(
        r,
        cast,
        &deps,
        &json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "labels": {"app": "web"}},
                "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}}}}),
        "kubectl-create",
    );
    let created_rv = resource_version_of(&dep);
    let dep = r.get(&kubectl, &format!("{deps}/web"), 200);
    r.check(
        dep["spec"]["strategy"]["type"] == "RollingUpdate"
            && dep["spec"]["revisionHistoryLimit"] == 10,
        || format!("a Deployment's defaults: {}", dep["spec"]),
    );
    let dc = cast.controller("deployment-controller").clone();
    let rsc = cast.controller("replicaset-controller").clone();
    let rss = format!("/apis/apps/v1/namespaces/{NS}/replicasets");
    let rs1 = r.post(&dc, &rss, &[], &replicaset_for(&dep, 3, "1"), 201);
    r.post(
        &dc,
        &format!("/api/v1/namespaces/{NS}/events"),
        &[],
        &event(NS, "Deployment", "web", "apps/v1", "ScalingReplicaSet"),
        201,
    );
    // The deployment's status, and the same write again from a stale copy (409).
    let mut with_status = dep.clone();
    with_status["status"] = json!({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3,
        "unavailableReplicas": 3, "conditions": [{"type": "Progressing", "status": "True",
        "reason": "NewReplicaSetCreated", "message": "Created new replica set",
        "lastUpdateTime": NOW, "lastTransitionTime": NOW}]});
    let dep_status = r.put(&dc, &format!("{deps}/web/status"), &with_status, 200);
    r.check(
        dep_status["status"]["updatedReplicas"] == 3 && dep_status["spec"]["replicas"] == 3,
        || {
            format!(
                "a deployment status update reads back as {}",
                dep_status["status"]
            )
        },
    );
    r.put(&dc, &format!("{deps}/web/status"), &with_status, 409);

    let mut pods = Vec::new();
    run_pods_of(r, cast, &rs1, 0..3, &mut pods);
    r.post(
        &rsc,
        &format!("/api/v1/namespaces/{NS}/events"),
        &[],
        &event(
            NS,
            "ReplicaSet",
            &name_of(&rs1),
            "apps/v1",
            "SuccessfulCreate",
        ),
        201,
    );
    let rs1 = replicaset_status(r, &rsc, &rs1, 3);

    // kubectl scale deployment web --replicas=5
    let scale = r.patch(
        &kubectl,
        &format!("{deps}/web/scale"),
        &[],
        MERGE,
        &json!({"spec": {"replicas": 5}}),
        200,
    );
    r.check(
        scale["kind"] == "Scale" && scale["spec"]["replicas"] == 5,
        || format!("the scale patch answered {scale}"),
    );
    let mut rs1_scaled = rs1.clone();
    rs1_scaled["spec"]["replicas"] = json!(5);
    rs1_scaled["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] = json!("5");
    let rs1 = r.put(&dc, &format!("{rss}/{}", name_of(&rs1)), &rs1_scaled, 200);
    r.put(&dc, &format!("{rss}/{}", name_of(&rs1)), &rs1_scaled, 409);
    run_pods_of(r, cast, &rs1, 3..5, &mut pods);
    let rs1 = replicaset_status(r, &rsc, &rs1, 5);

    // kubectl expose deployment web --port=80
    let svc = kubectl_creates(
        r,
        cast,
        &format!("/api/v1/namespaces/{NS}/services"),
        &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "labels": {"app": "web"}},
                "spec": {"ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}], "selector": {"app": "web"}}}),
        "kubectl-expose",
    );
    let ip = svc["spec"]["clusterIP"].as_str().unwrap_or_default();
    r.check(
        ip.starts_with("10.32.0.") && svc["spec"]["type"] == "ClusterIP",
        || {
            format!(
                "the Service's clusterIP {ip} is not from 10.32.0.0/24: {}",
                svc["spec"]
            )
        },
    );
    endpoints_of(r, cast, &svc, &pods);
    let slices = r.call(
        &kubectl,
        "GET",
        &format!("/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices"),
        &[
            ("labelSelector", "kubernetes.io/service-name=web"),
            ("limit", "500"),
        ],
        None,
        200,
    );
    let addresses: usize = slices["items"].as_array().map_or(0, |items| {
        items
            .iter()
            .map(|s| s["endpoints"].as_array().map_or(0, Vec::len))
            .sum()
    });
    r.check(addresses == 5, || {
        format!("the Service's EndpointSlices hold {addresses} endpoints: {slices}")
    });
    let listed = r.call(
        &kubectl,
        "GET",
        &format!("/api/v1/namespaces/{NS}/pods"),
        &[("labelSelector", "app=web"), ("limit", "500")],
        None,
        200,
    );
    let running = listed["items"].as_array().map_or(0, |p| {
        p.iter()
            .filter(|p| p["status"]["phase"] == "Running")
            .count()
    });
    r.check(running == 5, || {
        format!("{running} of the listed pods run: {listed}")
    });

    // kubectl set image deployment/web nginx=nginx:1.28, and kubectl rollout status.
    let patched = r.patch(&kubectl, &format!("{deps}/web"), &[("fieldManager", "kubectl-set")], SMP,
        &json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.28"}]}}}}), 200);
    r.check(patched["metadata"]["generation"] == 3, || {
        format!(
            "the image change made generation {}, not 3",
            patched["metadata"]["generation"]
        )
    });
    r.call(
        &kubectl,
        "GET",
        &format!("/apis/apps/v1/namespaces/{NS}/deployments"),
        &[
            ("fieldSelector", "metadata.name=web"),
            ("limit", "500"),
            ("resourceVersion", "0"),
        ],
        None,
        200,
    );
    let events = r.watch(
        &kubectl,
        &format!("/apis/apps/v1/namespaces/{NS}/deployments"),
        &[
            ("allowWatchBookmarks", "true"),
            ("fieldSelector", "metadata.name=web"),
            ("resourceVersion", &created_rv),
            ("timeoutSeconds", WATCH_TIMEOUT_SECONDS),
            ("watch", "true"),
        ],
        200,
    );
    r.check(
        events
            .first()
            .is_some_and(|e| e["type"] == "MODIFIED" && e["object"]["metadata"]["name"] == "web"),
        || {
            format!(
                "kubectl's watch from the create's resourceVersion began with {:?}",
                events.first()
            )
        },
    );
    let rs2 = r.post(&dc, &rss, &[], &replicaset_for(&patched, 5, "2"), 201);
    let mut new_pods = Vec::new();
    run_pods_of(r, cast, &rs2, 5..10, &mut new_pods);
    // The old ReplicaSet scaled to 0: its controller deletes its pods (gracefully), their
    // kubelets finish the deletion.
    let mut rs1_down = rs1.clone();
    rs1_down["spec"]["replicas"] = json!(0);
    r.put(&dc, &format!("{rss}/{}", name_of(&rs1)), &rs1_down, 200);
    for (pod, n) in &pods {
        let path = format!("/api/v1/namespaces/{NS}/pods/{}", name_of(pod));
        let terminating = r.delete(&rsc, &path, &json!({}), 200);
        r.check(
            terminating["metadata"]["deletionTimestamp"].is_string(),
            || {
                format!(
                    "a running pod deleted without grace: {}",
                    terminating["metadata"]
                )
            },
        );
        r.delete(
            &cast.kubelets[*n].clone(),
            &path,
            &json!({"gracePeriodSeconds": 0, "preconditions": {"uid": uid_of(pod)}}),
            200,
        );
    }
    endpoints_update(r, cast, &new_pods);
    // Every component's watches and discovery, while pods run on every node (a kubelet may
    // watch only the ConfigMaps its pods use).
    watches_and_discovery(r, cast, rows);
    // kubectl delete deployment web: kapi leaves the dependents to the garbage collector.
    let deleted = r.delete(
        &kubectl,
        &format!("{deps}/web"),
        &json!({"propagationPolicy": "Background"}),
        200,
    );
    r.check(
        deleted["kind"] == "Status" || deleted["kind"] == "Deployment",
        || format!("delete answered {deleted}"),
    );
    let gc = cast.controller("generic-garbage-collector").clone();
    for rs in [&rs1, &rs2] {
        let path = format!("{rss}/{}", name_of(rs));
        let still = r.get(&gc, &path, 200);
        r.check(
            still["metadata"]["ownerReferences"][0]["name"] == "web",
            || format!("an orphan: {still}"),
        );
        r.delete(
            &gc,
            &path,
            &json!({"propagationPolicy": "Background", "preconditions": {"uid": uid_of(rs)}}),
            200,
        );
    }
    for (pod, _) in &new_pods {
        let path = format!("/api/v1/namespaces/{NS}/pods/{}", name_of(pod));
        r.get(&gc, &path, 200);
        r.delete(
            &gc,
            &path,
            &json!({"propagationPolicy": "Background", "preconditions": {"uid": uid_of(pod)}}),
            200,
        );
    }
    r.get(&kubectl, &format!("{deps}/web"), 404);
}

/// The replica set controller's pods `seq` of `rs` (spread over the nodes), each scheduled and
/// run; appended to `pods` with their node's index.
fn run_pods_of(
    r: &mut Replay,
    cast: &Cast,
    rs: &Value,
    seq: std::ops::Range<usize>,
    pods: &mut Vec<(Value, usize)>,
) {
    let rsc = cast.controller("replicaset-controller").clone();
    let image = &rs["spec"]["template"]["spec"]["containers"][0]["image"];
    for i in seq {
        let pod = r.post(
            &rsc,
            &format!("/api/v1/namespaces/{NS}/pods"),
            &[],
            &pod_for(rs, "ReplicaSet", "apps/v1"),
            201,
        );
        r.check(
            pod["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]
                && pod["spec"]["volumes"]
                    .as_array()
                    .is_some_and(|v| v.iter().any(|v| v["projected"].is_object())),
            || format!("a ReplicaSet's pod reads back as {}", pod["metadata"]),
        );
        let running = schedule_and_run(r, cast, &pod, i % 3, i, "Running");
        r.check(&running["spec"]["containers"][0]["image"] == image, || {
            format!(
                "a pod of {} runs {}",
                name_of(rs),
                running["spec"]["containers"][0]["image"]
            )
        });
        pods.push((running, i % 3));
    }
}

fn replicaset_status(r: &mut Replay, rsc: &Who, rs: &Value, n: i64) -> Value {
    let current = r_get_quiet(
        r,
        rsc,
        &format!("/apis/apps/v1/namespaces/{NS}/replicasets/{}", name_of(rs)),
    );
    let mut with = current.clone();
    with["status"] = json!({"replicas": n, "fullyLabeledReplicas": n, "readyReplicas": n,
        "availableReplicas": n, "observedGeneration": current["metadata"]["generation"]});
    let back = r.put(
        rsc,
        &format!(
            "/apis/apps/v1/namespaces/{NS}/replicasets/{}/status",
            name_of(rs)
        ),
        &with,
        200,
    );
    r.check(back["status"]["readyReplicas"] == n, || {
        format!("a ReplicaSet's status reads back as {}", back["status"])
    });
    back
}

fn endpoint_addresses(pods: &[(Value, usize)]) -> Vec<Value> {
    pods.iter()
        .map(|(p, n)| {
            json!({"ip": p["status"]["podIP"], "nodeName": NODES[*n],
            "targetRef": {"kind": "Pod", "name": name_of(p), "namespace": NS, "uid": uid_of(p)}})
        })
        .collect()
}

fn slice_endpoints(pods: &[(Value, usize)]) -> Vec<Value> {
    pods.iter()
        .map(|(p, n)| {
            json!({"addresses": [p["status"]["podIP"]],
            "conditions": {"ready": true, "serving": true, "terminating": false},
            "nodeName": NODES[*n],
            "targetRef": {"kind": "Pod", "name": name_of(p), "namespace": NS, "uid": uid_of(p)}})
        })
        .collect()
}

/// The endpoint and endpointslice controllers write the Service's Endpoints and EndpointSlice.
fn endpoints_of(r: &mut Replay, cast: &Cast, svc: &Value, pods: &[(Value, usize)]) {
    let ec = cast.controller("endpoint-controller").clone();
    r.post(&ec, &format!("/api/v1/namespaces/{NS}/endpoints"), &[],
        &json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web", "labels": {"app": "web"}},
                "subsets": [{"addresses": endpoint_addresses(pods), "ports": [{"port": 80, "protocol": "TCP"}]}]}), 201);
    let esc = cast.controller("endpointslice-controller").clone();
    let slice = r.post(&esc, &format!("/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices"), &[],
        &json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"generateName": "web-",
                    "labels": {"kubernetes.io/service-name": "web",
                        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                    "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": "web", "uid": uid_of(svc),
                        "controller": true, "blockOwnerDeletion": true}]},
                "addressType": "IPv4", "endpoints": slice_endpoints(pods),
                "ports": [{"name": "", "port": 80, "protocol": "TCP"}]}), 201);
    r.check(
        slice["endpoints"]
            .as_array()
            .is_some_and(|e| e.len() == pods.len()),
        || format!("the EndpointSlice reads back as {slice}"),
    );
}

fn endpoints_update(r: &mut Replay, cast: &Cast, pods: &[(Value, usize)]) {
    let ec = cast.controller("endpoint-controller").clone();
    let path = format!("/api/v1/namespaces/{NS}/endpoints/web");
    let mut ep = r_get_quiet(r, &ec, &path);
    ep["subsets"][0]["addresses"] = json!(endpoint_addresses(pods));
    r.put(&ec, &path, &ep, 200);
    let esc = cast.controller("endpointslice-controller").clone();
    let list = r_get_quiet(
        r,
        &esc,
        &format!("/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices"),
    );
    let mut slice = list["items"][0].clone();
    slice["endpoints"] = json!(slice_endpoints(pods));
    let back = r.put(
        &esc,
        &format!(
            "/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices/{}",
            name_of(&slice)
        ),
        &slice,
        200,
    );
    let ips: BTreeSet<String> = back["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["addresses"][0].as_str().map(str::to_string))
        .collect();
    let want: BTreeSet<String> = pods
        .iter()
        .filter_map(|(p, _)| p["status"]["podIP"].as_str().map(str::to_string))
        .collect();
    r.check(ips == want, || {
        format!("the updated EndpointSlice has {ips:?}, not {want:?}")
    });
}

/// kubectl create job; the job controller's pod run to completion and the Job's status.
fn job_flow(r: &mut Replay, cast: &Cast) {
    let job = kubectl_creates(
        r,
        cast,
        &format!("/apis/batch/v1/namespaces/{NS}/jobs"),
        &json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"},
                "spec": {"template": {"spec": {"containers": [{"name": "once", "image": "busybox", "command": ["true"]}],
                    "restartPolicy": "Never"}}}}),
        "kubectl-create",
    );
    let uid_label =
        job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"].clone();
    r.check(
        uid_label == job["metadata"]["uid"]
            && job["spec"]["template"]["metadata"]["labels"]["job-name"] == "once",
        || format!("a Job's generated selector and labels: {}", job["spec"]),
    );
    let jc = cast.controller("job-controller").clone();
    let mut template = job["spec"]["template"].clone();
    let labels = template["metadata"]["labels"].take();
    let pod = r.post(&jc, &format!("/api/v1/namespaces/{NS}/pods"), &[],
        &json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"generateName": "once-", "labels": labels, "finalizers": ["batch.kubernetes.io/job-tracking"],
                    "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "once", "uid": uid_of(&job),
                        "controller": true, "blockOwnerDeletion": true}]},
                "spec": template["spec"]}), 201);
    r.post(
        &jc,
        &format!("/api/v1/namespaces/{NS}/events"),
        &[],
        &event(NS, "Job", "once", "batch/v1", "SuccessfulCreate"),
        201,
    );
    let path = format!("/apis/batch/v1/namespaces/{NS}/jobs/once/status");
    let mut active = job.clone();
    active["status"] = json!({"active": 1, "ready": 0, "terminating": 0, "startTime": NOW, "uncountedTerminatedPods": {}});
    let active = r.put(&jc, &path, &active, 200);
    let done = schedule_and_run(r, cast, &pod, 2, 20, "Succeeded");
    r.check(done["status"]["phase"] == "Succeeded", || {
        format!("the Job's pod: {}", done["status"])
    });
    let mut complete = active.clone();
    complete["status"] = json!({"succeeded": 1, "ready": 0, "terminating": 0, "startTime": NOW,
        "completionTime": "2026-12-02T10:00:05Z", "uncountedTerminatedPods": {},
        "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached",
             "message": "Reached expected number of succeeded pods", "lastProbeTime": NOW, "lastTransitionTime": NOW},
            {"type": "Complete", "status": "True", "reason": "CompletionsReached",
             "message": "Reached expected number of succeeded pods", "lastProbeTime": NOW, "lastTransitionTime": NOW}]});
    let back = r.put(&jc, &path, &complete, 200);
    r.check(
        back["status"]["succeeded"] == 1 && back["status"]["conditions"][1]["type"] == "Complete",
        || {
            format!(
                "the completed Job's status reads back as {}",
                back["status"]
            )
        },
    );
}

/// kubectl deletes a namespace with a ConfigMap in it; the namespace controller empties it with
/// a list and a deletecollection per resource (its rows' resources), then finalizes it.
fn namespace_deletion(r: &mut Replay, cast: &Cast, rows: &[Row]) {
    let kubectl = cast.kubectl.clone();
    r.get(&kubectl, &format!("/api/v1/namespaces/{DOOMED}"), 404);
    kubectl_creates(
        r,
        cast,
        "/api/v1/namespaces",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": DOOMED}}),
        "kubectl-create",
    );
    r.get(&kubectl, &format!("/api/v1/namespaces/{DOOMED}"), 200);
    namespace_controllers(r, cast, DOOMED, 201);
    kubectl_creates(
        r,
        cast,
        &format!("/api/v1/namespaces/{DOOMED}/configmaps"),
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"a": "b"}}),
        "kubectl-create",
    );
    let deleted = r.delete(
        &kubectl,
        &format!("/api/v1/namespaces/{DOOMED}"),
        &json!({}),
        200,
    );
    r.check(
        deleted["status"]["phase"] == "Terminating"
            && deleted["metadata"]["deletionTimestamp"].is_string(),
        || format!("a deleted namespace reads back as {deleted}"),
    );
    namespace_controllers(r, cast, DOOMED, 403);
    let nc = cast.controller("namespace-controller").clone();
    let ns_path = format!("/api/v1/namespaces/{DOOMED}");
    let ns = r.get(&nc, &ns_path, 200);
    let mut with_conditions = ns.clone();
    with_conditions["status"]["conditions"] = json!([
        {"type": "NamespaceDeletionDiscoveryFailure", "status": "False", "reason": "ResourcesDiscovered",
         "message": "All resources successfully discovered", "lastTransitionTime": NOW},
        {"type": "NamespaceContentRemaining", "status": "True", "reason": "SomeResourcesRemain",
         "message": "Some resources are remaining: configmaps. has 2 resource instances", "lastTransitionTime": NOW}]);
    let status = r.put(&nc, &format!("{ns_path}/status"), &with_conditions, 200);
    r.check(
        status["status"]["phase"] == "Terminating"
            && status["status"]["conditions"]
                .as_array()
                .is_some_and(|c| c.len() == 2),
        || {
            format!(
                "the namespace's status after the controller's update: {}",
                status["status"]
            )
        },
    );
    for row in rows.iter().filter(|r| {
        r.key.user.ends_with(":namespace-controller")
            && (r.key.verb == "list" || r.key.verb == "deletecollection")
    }) {
        let k = &row.key;
        let base = if k.group.is_empty() {
            format!("/api/{}", k.version)
        } else {
            format!("/apis/{}/{}", k.group, k.version)
        };
        let path = format!("{base}/namespaces/{DOOMED}/{}", k.resource);
        let method = if k.verb == "list" { "GET" } else { "DELETE" };
        r.call(&nc, method, &path, &[], None, row.code);
    }
    let left = r_get_quiet(
        r,
        &kubectl,
        &format!("/api/v1/namespaces/{DOOMED}/configmaps"),
    );
    r.check(left["items"].as_array().is_some_and(Vec::is_empty), || {
        format!("configmaps left after deletecollection: {left}")
    });
    // Finalize from the copy read before the status update (409), then from a fresh one.
    let mut stale = ns.clone();
    stale["spec"]["finalizers"] = json!([]);
    r.put(&nc, &format!("{ns_path}/finalize"), &stale, 409);
    let mut fresh = status.clone();
    fresh["spec"]["finalizers"] = json!([]);
    r.put(&nc, &format!("{ns_path}/finalize"), &fresh, 200);
    let gone = r_get_quiet(r, &kubectl, &ns_path);
    r.check(gone["code"] == 404, || {
        format!("the finalized namespace is still there: {gone}")
    });
}

/// The controllers whose rows stand alone: the aggregation controller's apply to an
/// aggregated ClusterRole, the ServiceCIDR controller's finalizer and status, the token
/// cleaner's ConfigMap.
fn other_controllers(r: &mut Replay, cast: &Cast) {
    let admin = cast.kubectl.clone();
    let view = r_get_quiet(
        r,
        &admin,
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/view",
    );
    let agg = cast
        .controller("clusterrole-aggregation-controller")
        .clone();
    let applied = r.patch(&agg, "/apis/rbac.authorization.k8s.io/v1/clusterroles/view",
        &[("fieldManager", "clusterrole-aggregation-controller"), ("force", "true")], APPLY,
        &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "view"},
                "rules": view["rules"]}), 200);
    r.check(
        applied["rules"] == view["rules"] && applied["aggregationRule"] == view["aggregationRule"],
        || format!("the aggregated ClusterRole after the controller's apply: {applied}"),
    );
    let scc = cast.controller("service-cidrs-controller").clone();
    let cidr = r.patch(
        &scc,
        "/apis/networking.k8s.io/v1/servicecidrs/kubernetes",
        &[],
        MERGE,
        &json!({"metadata": {"finalizers": ["networking.k8s.io/service-cidr-finalizer"]}}),
        200,
    );
    r.check(cidr["spec"]["cidrs"][0] == "10.32.0.0/24", || {
        format!("the kubernetes ServiceCIDR: {cidr}")
    });
    let st = r.patch(&scc, "/apis/networking.k8s.io/v1/servicecidrs/kubernetes/status",
        &[("fieldManager", "service-cidrs-controller"), ("force", "true")], APPLY,
        &json!({"apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR", "metadata": {"name": "kubernetes"},
                "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "", "message": "",
                    "lastTransitionTime": NOW}]}}), 200);
    r.check(
        st["status"]["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready")),
        || format!("the ServiceCIDR's status: {}", st["status"]),
    );
    let cleaner = cast
        .controller("legacy-service-account-token-cleaner")
        .clone();
    r.get(&cleaner, "/api/v1/namespaces/kube-system/configmaps/kube-apiserver-legacy-service-account-token-tracking", 200);
}

/// The query a row's watch sends: watch-list parameters, a field selector chosen by who watches
/// what (as client-go's informers of these components select), and its path.
fn watch_request(row: &RowKey) -> (String, Vec<(&str, String)>) {
    let base = if row.group.is_empty() {
        format!("/api/{}", row.version)
    } else {
        format!("/apis/{}/{}", row.group, row.version)
    };
    let node = row.user.strip_prefix("system:node:");
    let selected = row.params.split(',').any(|p| p == "fieldSelector");
    let (path, selector) = match (row.resource.as_str(), node, row.agent.as_str()) {
        (res, ..) if !selected => (format!("{base}/{res}"), String::new()),
        ("configmaps", Some(_), _) => (
            format!("{base}/namespaces/{NS}/configmaps"),
            "metadata.name=kube-root-ca.crt".to_string(),
        ),
        ("configmaps", None, _) => (
            format!("{base}/namespaces/kube-system/configmaps"),
            "metadata.name=extension-apiserver-authentication".to_string(),
        ),
        ("nodes", Some(n), _) => (format!("{base}/nodes"), format!("metadata.name={n}")),
        ("pods", Some(n), _) => (format!("{base}/pods"), format!("spec.nodeName={n}")),
        ("services", Some(_), _) => (
            format!("{base}/services"),
            "spec.clusterIP!=None".to_string(),
        ),
        ("pods", None, "kube-scheduler") => (
            format!("{base}/pods"),
            "status.phase!=Succeeded,status.phase!=Failed".to_string(),
        ),
        (res, ..) => (format!("{base}/{res}"), String::new()),
    };
    let mut query = Vec::new();
    for p in row.params.split(',') {
        let v = match p {
            "allowWatchBookmarks" | "sendInitialEvents" | "watch" => "true".to_string(),
            "resourceVersionMatch" => "NotOlderThan".to_string(),
            "timeoutSeconds" => WATCH_TIMEOUT_SECONDS.to_string(),
            "fieldSelector" => selector.clone(),
            other => panic!("a watch parameter the replay does not know: {other}"),
        };
        query.push((p, v));
    }
    (path, query)
}

/// The rows replayed straight from the file: watches and discovery GETs of every component.
fn watches_and_discovery(r: &mut Replay, cast: &Cast, rows: &[Row]) {
    for row in rows {
        let k = &row.key;
        if k.agent == "kube-apiserver" || (k.agent == "kubectl" && k.verb == "watch") {
            continue;
        }
        let Some(who) = cast.of(&k.user).cloned() else {
            continue;
        };
        let who = Who {
            agent: k.agent.clone(),
            ..who
        };
        if k.verb == "watch" {
            let (path, query) = watch_request(k);
            let query: Vec<(&str, &str)> = query.iter().map(|(a, b)| (*a, b.as_str())).collect();
            let events = r.watch(&who, &path, &query, row.code);
            if k.resource == "configmaps" && k.user.starts_with("system:node:") {
                r.check(
                    events.iter().any(|e| {
                        e["type"] == "ADDED"
                            && e["object"]["metadata"]["name"] == "kube-root-ca.crt"
                    }),
                    || format!("{}'s watch of kube-root-ca.crt: {events:?}", k.user),
                );
            }
        } else if !k.path.is_empty() && row.code == 200 && k.path != "/readyz" {
            r.get(&who, &k.path, 200);
        }
    }
}

/// The apiserver's own rows: what its start-up wrote is checked to exist (as the admin);
/// its internal misses (404s, a racing 409, the 422 and 500s of start-up) are not replayable.
fn apiserver_rows(r: &mut Replay, admin: &Who, rows: &[Row]) -> BTreeSet<usize> {
    let mut skipped = BTreeSet::new();
    for (i, row) in rows.iter().enumerate() {
        let k = &row.key;
        if k.agent != "kube-apiserver" {
            continue;
        }
        let path: Option<&str> = match (
            k.verb.as_str(),
            k.resource.as_str(),
            k.subresource.as_str(),
            row.code,
        ) {
            (_, _, _, 404 | 409 | 422 | 500) => None,
            ("create" | "update", "configmaps", ..) => {
                Some("/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication")
            }
            ("create" | "get", "namespaces", ..) => Some("/api/v1/namespaces/kube-node-lease"),
            ("create", "services", ..) => Some("/api/v1/namespaces/default/services/kubernetes"),
            ("list", "services", ..) => Some("/api/v1/services"),
            ("list", "limitranges", ..) => Some("/api/v1/limitranges"),
            ("create", "apiservices", ..) => {
                Some("/apis/apiregistration.k8s.io/v1/apiservices/v1.apps")
            }
            ("create" | "update", "leases", ..) => Some(
                "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases?labelSelector=apiserver.kubernetes.io%2Fidentity%3Dkube-apiserver",
            ),
            (_, "flowschemas", ..) => {
                Some("/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas/exempt")
            }
            (_, "prioritylevelconfigurations", ..) => {
                Some("/apis/flowcontrol.apiserver.k8s.io/v1/prioritylevelconfigurations/exempt")
            }
            (_, "ipaddresses", ..) => Some("/apis/networking.k8s.io/v1/ipaddresses/10.32.0.1"),
            (_, "servicecidrs", ..) => Some("/apis/networking.k8s.io/v1/servicecidrs/kubernetes"),
            ("create", "clusterroles", ..) => {
                Some("/apis/rbac.authorization.k8s.io/v1/clusterroles/system:node")
            }
            ("list", "clusterroles", ..) => Some("/apis/rbac.authorization.k8s.io/v1/clusterroles"),
            ("create", "clusterrolebindings", ..) => Some(
                "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/system:kube-controller-manager",
            ),
            ("list", "clusterrolebindings", ..) => {
                Some("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings")
            }
            ("create", "roles", ..) => Some(
                "/apis/rbac.authorization.k8s.io/v1/namespaces/kube-system/roles/extension-apiserver-authentication-reader",
            ),
            ("create", "rolebindings", ..) => Some(
                "/apis/rbac.authorization.k8s.io/v1/namespaces/kube-system/rolebindings/system::extension-apiserver-authentication-reader",
            ),
            ("create", "priorityclasses", ..) => {
                Some("/apis/scheduling.k8s.io/v1/priorityclasses/system-node-critical")
            }
            ("get", "", "", 200) => Some(k.path.as_str()),
            _ => None,
        };
        let Some(path) = path else {
            skipped.insert(i);
            continue;
        };
        let resp = r.request(admin, "GET", path, &[], None);
        let got = resp.status().as_u16();
        let body: Value =
            serde_json::from_slice(&resp.bytes().unwrap_or_default()).unwrap_or(Value::Null);
        let shaped = match k.resource.as_str() {
            "leases" => body["items"]
                .as_array()
                .is_some_and(|l| l.iter().any(|l| l["spec"]["holderIdentity"].is_string())),
            "servicecidrs" => {
                body["spec"]["cidrs"][0] == "10.32.0.0/24"
                    && body["status"]["conditions"].as_array().is_some_and(|c| {
                        c.iter()
                            .any(|c| c["type"] == "Ready" && c["status"] == "True")
                    })
            }
            "ipaddresses" => body["spec"]["parentRef"]["name"] == "kubernetes",
            "services" if k.verb == "create" => body["spec"]["clusterIP"] == "10.32.0.1",
            "configmaps" => body["data"]["client-ca-file"].is_string(),
            "flowschemas" if k.subresource == "status" => body["status"]["conditions"].is_array(),
            _ => true,
        };
        r.check(shaped, || {
            format!("the apiserver's {} {}: {body}", k.verb, path)
        });
        // Recorded as the row it stands for.
        let expect = row.code;
        r.outcomes.push(Outcome {
            key: k.clone(),
            expect,
            got: if got == 200 { expect } else { got },
            body,
        });
    }
    skipped
}

#[test]
fn every_upstream_control_plane_call_gets_upstreams_answer() {
    let k = Kapi::start_control_plane();
    let rows = rows();
    let mut cast = Cast::new(&k);
    let mut r = Replay {
        port: k.port,
        data_dir: k.data_dir.clone(),
        outcomes: Vec::new(),
        problems: Vec::new(),
    };
    let mut skipped = apiserver_rows(&mut r, &cast.kubectl.clone(), &rows);
    // /readyz answered 500 while the apiserver was starting: not replayable once it is ready.
    skipped.extend(
        rows.iter()
            .enumerate()
            .filter(|(_, row)| row.code == 500)
            .map(|(i, _)| i),
    );

    let controllers: BTreeSet<String> = rows
        .iter()
        .filter_map(|r| {
            r.key
                .user
                .strip_prefix("system:serviceaccount:kube-system:")
                .map(str::to_string)
        })
        .collect();
    controller_manager_starts(&mut r, &mut cast, &controllers);
    let scheduler = cast.scheduler.clone();
    r.get(
        &scheduler,
        "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication",
        200,
    );
    leader_election(&mut r, &scheduler, "kube-scheduler");
    for (i, node) in NODES.iter().enumerate() {
        let kubelet = cast.kubelets[i].clone();
        kubelet_registers(&mut r, &kubelet, node, i);
        node_controllers(&mut r, &cast, node);
    }
    let kubectl = cast.kubectl.clone();
    r.get(&kubectl, &format!("/api/v1/namespaces/{NS}"), 404);
    kubectl_creates(
        &mut r,
        &cast,
        "/api/v1/namespaces",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
        "kubectl-create",
    );
    r.get(&kubectl, &format!("/api/v1/namespaces/{NS}"), 200);
    r.get(
        &kubectl,
        &format!("/api/v1/namespaces/{NS}/serviceaccounts/default"),
        404,
    );
    namespace_controllers(&mut r, &cast, NS, 201);
    r.get(
        &kubectl,
        &format!("/api/v1/namespaces/{NS}/serviceaccounts/default"),
        200,
    );
    // The scheduler's events, in both APIs.
    r.post(
        &scheduler,
        &format!("/api/v1/namespaces/{NS}/events"),
        &[],
        &event(NS, "Pod", "web", "v1", "Scheduled"),
        201,
    );
    r.post(&scheduler, &format!("/apis/events.k8s.io/v1/namespaces/{NS}/events"), &[],
        &json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": event_name("web"), "namespace": NS},
                "eventTime": NOW_MICRO, "reportingController": "default-scheduler", "reportingInstance": "default-scheduler-1",
                "action": "Binding", "reason": "Scheduled", "type": "Normal", "note": "Successfully assigned",
                "regarding": {"kind": "Pod", "name": "web", "namespace": NS, "apiVersion": "v1"}}), 201);

    deployment_flow(&mut r, &cast, &rows);
    job_flow(&mut r, &cast);
    // A kubelet asked for a pod bound elsewhere is refused by the Node authorizer.
    let job_pod = r_get_quiet(
        &r,
        &kubectl,
        &format!("/api/v1/namespaces/{NS}/pods?labelSelector=job-name%3Donce"),
    );
    let job_pod = name_of(&job_pod["items"][0]);
    for n in [0, 1] {
        let kubelet = cast.kubelets[n].clone();
        r.get(
            &kubelet,
            &format!("/api/v1/namespaces/{NS}/pods/{job_pod}"),
            403,
        );
    }
    r.call(
        &kubectl,
        "GET",
        "/api/v1/events",
        &[("limit", "500")],
        None,
        200,
    );
    let nodes = r.call(
        &kubectl,
        "GET",
        "/api/v1/nodes",
        &[("limit", "500")],
        None,
        200,
    );
    r.check(
        nodes["items"].as_array().is_some_and(|n| n.len() == 3),
        || format!("kubectl get nodes: {nodes}"),
    );
    r.get(
        &kubectl,
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/hollow-node-1",
        200,
    );
    r.get(&kubectl, "/readyz", 200);
    other_controllers(&mut r, &cast);
    namespace_deletion(&mut r, &cast, &rows);

    report(&rows, &r, &skipped, &k);
}
