//! Upstream's defaults on the real binary, beyond what the write corpus (creates only) shows:
//! a DaemonSet's template generation follows template changes on update, a Job selects its own
//! uid, and the admission plugins that default (TaintNodesByCondition,
//! StorageObjectInUseProtection) act on create only.

mod support;

use serde_json::json;
use support::client::Client;
use support::kapi::Kapi;

const TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";

#[test]
fn a_daemonset_template_change_bumps_its_template_generation() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    let path = "/apis/apps/v1/namespaces/default/daemonsets";
    let ds = json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"app": "d"}},
                 "template": {"metadata": {"labels": {"app": "d"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}}});
    let (code, created) = c.call("POST", path, "application/json", Some(ds));
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["metadata"]["annotations"][TEMPLATE_GENERATION], "1");
    assert_eq!(
        created["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    );
    let mut changed = created.clone();
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
    let (code, updated) = c.call(
        "PUT",
        &format!("{path}/d"),
        "application/json",
        Some(changed),
    );
    assert_eq!(code, 200, "{updated}");
    assert_eq!(updated["metadata"]["annotations"][TEMPLATE_GENERATION], "2");
    assert_eq!(updated["metadata"]["generation"], 2);
    let mut relabelled = updated.clone();
    relabelled["metadata"]["labels"] = json!({"tier": "x"});
    let (code, same) = c.call(
        "PUT",
        &format!("{path}/d"),
        "application/json",
        Some(relabelled),
    );
    assert_eq!(code, 200, "{same}");
    assert_eq!(same["metadata"]["annotations"][TEMPLATE_GENERATION], "2");
}

#[test]
fn a_job_selects_its_own_uid_and_labels_its_pods_with_its_name() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
                 "containers": [{"name": "c", "image": "busybox"}]}}}});
    let (code, j) = c.call(
        "POST",
        "/apis/batch/v1/namespaces/default/jobs",
        "application/json",
        Some(job),
    );
    assert_eq!(code, 201, "{j}");
    let uid = j["metadata"]["uid"].as_str().expect("a uid");
    assert_eq!(
        j["spec"]["selector"],
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
    );
    let labels = &j["spec"]["template"]["metadata"]["labels"];
    assert_eq!(labels["batch.kubernetes.io/job-name"], "j");
    assert_eq!(labels["controller-uid"], uid);
    assert_eq!(&j["metadata"]["labels"], labels);
    assert_eq!(
        (
            &j["spec"]["completions"],
            &j["spec"]["parallelism"],
            &j["spec"]["backoffLimit"]
        ),
        (&json!(1), &json!(1), &json!(6))
    );
}

#[test]
fn new_nodes_are_tainted_and_claims_protected_on_create_only() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    let (code, node) = c.call(
        "POST",
        "/api/v1/nodes",
        "application/json",
        Some(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})),
    );
    assert_eq!(code, 201, "{node}");
    assert_eq!(
        node["spec"]["taints"],
        json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}])
    );
    // The node lifecycle controller lifts the taint; an update does not bring it back.
    let mut ready = node.clone();
    ready["spec"]["taints"] = json!([]);
    let (code, updated) = c.call("PUT", "/api/v1/nodes/n1", "application/json", Some(ready));
    assert_eq!(code, 200, "{updated}");
    assert!(updated["spec"].get("taints").is_none(), "{updated}");

    let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
    let path = "/api/v1/namespaces/default/persistentvolumeclaims";
    let (code, claim) = c.call("POST", path, "application/json", Some(pvc));
    assert_eq!(code, 201, "{claim}");
    assert_eq!(
        claim["metadata"]["finalizers"],
        json!(["kubernetes.io/pvc-protection"])
    );
    assert_eq!(claim["spec"]["volumeMode"], "Filesystem");
    assert_eq!(claim["status"]["phase"], "Pending");
}
