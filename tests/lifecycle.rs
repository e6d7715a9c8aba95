//! Object lifecycle as upstream's apiserver leaves it to kubelets and controllers: graceful
//! deletion of pods, finalizers, the garbage collector's propagation finalizers, and namespace
//! termination (Terminating until the namespace controller has emptied and finalized it).

mod support;

use serde_json::{Value, json};
use support::client::Client;
use support::kapi::Kapi;

const CT: &str = "application/json";
const PODS: &str = "/api/v1/namespaces/default/pods";

fn secs(ts: &Value) -> i64 {
    let t = time::OffsetDateTime::parse(
        ts.as_str().expect("a timestamp"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("RFC 3339");
    t.unix_timestamp()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The watch events (type, name, deletionTimestamp set) of `path` after `rv`, for 2 s.
fn events(c: &Client, path: &str, rv: &str) -> Vec<(String, String, bool)> {
    let (code, text) = c.text(
        "GET",
        &format!("{path}?watch=1&resourceVersion={rv}&timeoutSeconds=2"),
    );
    assert_eq!(code, 200, "{text}");
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|e| {
            (
                e["type"].as_str().unwrap_or("").to_string(),
                e["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                e["object"]["metadata"]["deletionTimestamp"].is_string(),
            )
        })
        .collect()
}

#[test]
fn a_pod_on_a_node_is_deleted_gracefully_and_its_kubelet_finishes_it() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    let pod = |name: &str, node: &str| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
               "spec": {"nodeName": node, "terminationGracePeriodSeconds": 30,
                        "containers": [{"name": "c", "image": "busybox"}]}})
    };
    let (code, created) = c.json("POST", PODS, CT, &pod("bound", "node-a"));
    assert_eq!(code, 201, "{created}");
    let rv = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();

    // kubectl's delete returns at once with --wait=false; the pod stays, marked.
    let before = now();
    let out = k.ok(&["delete", "pod", "bound", "--wait=false"]);
    assert!(out.contains("pod \"bound\" deleted"), "{out}");
    let (code, marked) = c.call("GET", &format!("{PODS}/bound"), "", None);
    assert_eq!(code, 200, "the pod waits for its kubelet: {marked}");
    assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 30);
    let deadline = secs(&marked["metadata"]["deletionTimestamp"]);
    assert!(
        deadline >= before + 30 && deadline <= now() + 30,
        "{marked}"
    );
    assert_eq!(marked["metadata"]["generation"], 2, "{marked}");
    let table = k.ok(&["get", "pod", "bound"]);
    assert!(table.contains("Terminating"), "{table}");

    // A longer grace period changes nothing; a shorter one moves the deadline earlier.
    let (code, same) = c.call(
        "DELETE",
        &format!("{PODS}/bound?gracePeriodSeconds=60"),
        "",
        None,
    );
    assert_eq!(code, 200, "{same}");
    assert_eq!(
        same["metadata"]["deletionTimestamp"],
        marked["metadata"]["deletionTimestamp"]
    );
    let (code, shorter) = c.call(
        "DELETE",
        &format!("{PODS}/bound?gracePeriodSeconds=10"),
        "",
        None,
    );
    assert_eq!(code, 200, "{shorter}");
    assert_eq!(shorter["metadata"]["deletionGracePeriodSeconds"], 10);
    assert_eq!(
        secs(&shorter["metadata"]["deletionTimestamp"]),
        deadline - 20
    );

    // A status update from the kubelet while the pod terminates keeps it.
    let (code, body) = c.json(
        "PATCH",
        &format!("{PODS}/bound/status"),
        "application/merge-patch+json",
        &json!({"status": {"phase": "Running"}}),
    );
    assert_eq!(code, 200, "{body}");

    // The kubelet's delete with grace 0 once the containers stopped: gone.
    let (code, gone) = c.json(
        "DELETE",
        &format!("{PODS}/bound"),
        CT,
        &json!({"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
                "preconditions": {"uid": created["metadata"]["uid"]}}),
    );
    assert_eq!(code, 200, "{gone}");
    assert_eq!(gone["kind"], "Pod");
    assert_eq!(gone["metadata"]["deletionGracePeriodSeconds"], 0);
    let (code, _) = c.call("GET", &format!("{PODS}/bound"), "", None);
    assert_eq!(code, 404);
    let seen = events(&c, PODS, &rv);
    let kinds: Vec<&str> = seen.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        kinds,
        ["MODIFIED", "MODIFIED", "MODIFIED", "MODIFIED", "DELETED"],
        "{seen:?}"
    );
    assert!(seen.iter().all(|e| e.2), "{seen:?}");

    // A pod no node runs goes at once, even with a grace period (kubectl waits for it).
    let (code, _) = c.json("POST", PODS, CT, &pod("unbound", ""));
    assert_eq!(code, 201);
    k.ok(&["delete", "pod", "unbound", "--timeout=20s"]);
    let (code, _) = c.call("GET", &format!("{PODS}/unbound"), "", None);
    assert_eq!(code, 404);

    // A UID precondition that does not hold: 409 naming the kind, as upstream's BeforeDelete.
    let (code, _) = c.json("POST", PODS, CT, &pod("other", "node-a"));
    assert_eq!(code, 201);
    let (code, conflict) = c.json(
        "DELETE",
        &format!("{PODS}/other"),
        CT,
        &json!({"preconditions": {"uid": "not-this-one"}}),
    );
    assert_eq!(code, 409, "{conflict}");
    assert!(
        conflict["message"]
            .as_str()
            .unwrap()
            .starts_with("Operation cannot be fulfilled on Pod \"other\": the UID in the precondition (not-this-one) does not match the UID in record"),
        "{conflict}"
    );
    // --force --grace-period=0 is the way to remove it without a kubelet.
    k.ok(&["delete", "pod", "other", "--grace-period=0", "--force"]);
    let (code, _) = c.call("GET", &format!("{PODS}/other"), "", None);
    assert_eq!(code, 404);
}

#[test]
fn finalizers_hold_deleted_objects_until_an_update_empties_them() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    let cms = "/api/v1/namespaces/default/configmaps";
    let (code, created) = c.json(
        "POST",
        cms,
        CT,
        &json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "held", "finalizers": ["example.com/cleanup"]}}),
    );
    assert_eq!(code, 201, "{created}");
    let (code, marked) = c.call("DELETE", &format!("{cms}/held"), "", None);
    assert_eq!(code, 200, "{marked}");
    assert_eq!(
        marked["kind"], "ConfigMap",
        "an object that stays is returned"
    );
    assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 0);
    let ts = marked["metadata"]["deletionTimestamp"].clone();
    assert!(ts.is_string(), "{marked}");
    // Deleting again changes nothing (no new revision).
    let (code, again) = c.call("DELETE", &format!("{cms}/held"), "", None);
    assert_eq!(code, 200);
    assert_eq!(
        again["metadata"]["resourceVersion"],
        marked["metadata"]["resourceVersion"]
    );
    assert_eq!(again["metadata"]["deletionTimestamp"], ts);
    // The finalizer's owner removes it: the update deletes the object, in one event.
    let rv = marked["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, last) = c.json(
        "PATCH",
        &format!("{cms}/held"),
        "application/merge-patch+json",
        &json!({"metadata": {"finalizers": null}}),
    );
    assert_eq!(code, 200, "{last}");
    let (code, _) = c.call("GET", &format!("{cms}/held"), "", None);
    assert_eq!(code, 404);
    let seen = events(&c, cms, &rv);
    assert_eq!(seen, [("DELETED".to_string(), "held".to_string(), true)]);
}

#[test]
fn propagation_policies_put_the_garbage_collectors_finalizers_on_owners() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    let template = json!({"metadata": {"labels": {"app": "a"}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}});
    let jobs = "/apis/batch/v1/namespaces/default/jobs";
    for name in ["j1", "j2"] {
        let (code, body) = c.json(
            "POST",
            jobs,
            CT,
            &json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
                    "spec": {"template": template}}),
        );
        assert_eq!(code, 201, "{body}");
    }
    // batch/v1 orphans a Job's pods by default, and says so.
    let (code, warnings, kept) = c.warned("DELETE", &format!("{jobs}/j1"));
    assert_eq!(code, 200, "{kept}");
    assert_eq!(kept["metadata"]["finalizers"], json!(["orphan"]), "{kept}");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("child pods are preserved by default when jobs are deleted")),
        "{warnings:?}"
    );
    // Background: gone, no warning (kubectl asks for it).
    let (code, warnings, _) =
        c.warned("DELETE", &format!("{jobs}/j2?propagationPolicy=Background"));
    assert_eq!(code, 200);
    assert!(warnings.is_empty(), "{warnings:?}");
    let (code, _) = c.call("GET", &format!("{jobs}/j2"), "", None);
    assert_eq!(code, 404);

    // Foreground on a Deployment: the foregroundDeletion finalizer holds it for the collector.
    let deploys = "/apis/apps/v1/namespaces/default/deployments";
    let (code, body) = c.json(
        "POST",
        deploys,
        CT,
        &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                "spec": {"selector": {"matchLabels": {"app": "a"}},
                         "template": {"metadata": {"labels": {"app": "a"}},
                                      "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}),
    );
    assert_eq!(code, 201, "{body}");
    k.ok(&[
        "delete",
        "deployment",
        "d",
        "--cascade=foreground",
        "--wait=false",
    ]);
    let (code, d) = c.call("GET", &format!("{deploys}/d"), "", None);
    assert_eq!(code, 200, "{d}");
    assert_eq!(d["metadata"]["finalizers"], json!(["foregroundDeletion"]));
    assert_eq!(
        d["metadata"]["generation"], 2,
        "marking bumps the generation"
    );
    // A core/v1 ReplicationController orphans by default; orphanDependents=false overrides
    // that, and an object that stays after it is answered with 202.
    let rcs = "/api/v1/namespaces/default/replicationcontrollers";
    for (name, finalizers) in [("rc1", json!([])), ("rc2", json!(["example.com/x"]))] {
        let (code, body) = c.json(
            "POST",
            rcs,
            CT,
            &json!({"apiVersion": "v1", "kind": "ReplicationController",
                    "metadata": {"name": name, "finalizers": finalizers},
                    "spec": {"template": {"metadata": {"labels": {"app": "a"}},
                        "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}),
        );
        assert_eq!(code, 201, "{body}");
    }
    let (code, rc) = c.call("DELETE", &format!("{rcs}/rc1"), "", None);
    assert_eq!(code, 200, "{rc}");
    assert_eq!(rc["metadata"]["finalizers"], json!(["orphan"]), "{rc}");
    let (code, rc) = c.call(
        "DELETE",
        &format!("{rcs}/rc2?orphanDependents=false"),
        "",
        None,
    );
    assert_eq!(code, 202, "{rc}");
    assert_eq!(
        rc["metadata"]["finalizers"],
        json!(["example.com/x"]),
        "{rc}"
    );
}

#[test]
fn a_namespace_terminates_until_its_controller_has_emptied_and_finalized_it() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    k.ok(&["create", "namespace", "team"]);
    k.ok(&["create", "configmap", "settings", "-n", "team"]);
    k.ok(&["create", "secret", "generic", "key", "-n", "team"]);
    let out = k.ok(&["delete", "namespace", "team", "--wait=false"]);
    assert!(out.contains("namespace \"team\" deleted"), "{out}");
    let (code, ns) = c.call("GET", "/api/v1/namespaces/team", "", None);
    assert_eq!(code, 200, "{ns}");
    assert_eq!(ns["status"]["phase"], "Terminating");
    assert!(ns["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    // The apiserver deletes nothing in it itself; new content is refused.
    k.ok(&["get", "configmap", "settings", "-n", "team"]);
    let (code, _) = c.json(
        "POST",
        "/api/v1/namespaces/team/configmaps",
        CT,
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"}}),
    );
    assert_eq!(code, 403);
    // A second DELETE answers with the namespace, unchanged.
    let (code, again) = c.call("DELETE", "/api/v1/namespaces/team", "", None);
    assert_eq!(code, 200, "{again}");
    assert_eq!(
        again["metadata"]["resourceVersion"],
        ns["metadata"]["resourceVersion"]
    );
    // The namespace controller's work: the contents go, then the finalize deletes it.
    support::namespaces::finalize(&c, "team");
    let (code, _) = c.call("GET", "/api/v1/namespaces/team", "", None);
    assert_eq!(code, 404);
    let (code, _) = c.call(
        "GET",
        "/api/v1/namespaces/team/configmaps/settings",
        "",
        None,
    );
    assert_eq!(code, 404);
}

/// A pod on `node`, Running and Ready (as its kubelet would report it).
fn running_pod(c: &Client, name: &str, node: &str) {
    let (code, body) = c.json(
        "POST",
        PODS,
        CT,
        &json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "labels": {"app": "web"}},
                "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}}),
    );
    assert_eq!(code, 201, "{body}");
    let (code, body) = c.json(
        "PATCH",
        &format!("{PODS}/{name}/status"),
        "application/merge-patch+json",
        &json!({"status": {"phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}]}}),
    );
    assert_eq!(code, 200, "{body}");
}

fn evict(c: &Client, name: &str, options: Value) -> (u16, Value) {
    c.json(
        "POST",
        &format!("{PODS}/{name}/eviction"),
        CT,
        &json!({"apiVersion": "policy/v1", "kind": "Eviction",
                "metadata": {"name": name, "namespace": "default"},
                "deleteOptions": options}),
    )
}

#[test]
fn evictions_respect_the_pods_disruption_budget() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    // A pod no node runs is deleted by its eviction, budget or not.
    let (code, _) = c.json(
        "POST",
        PODS,
        CT,
        &json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "waiting", "labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
    );
    assert_eq!(code, 201);
    let (code, st) = evict(&c, "waiting", json!({}));
    assert_eq!(code, 201, "{st}");
    assert_eq!(st["status"], "Success");
    let (code, _) = c.call("GET", &format!("{PODS}/waiting"), "", None);
    assert_eq!(code, 404);

    running_pod(&c, "web-1", "node-a");
    running_pod(&c, "web-2", "node-a");
    let pdbs = "/apis/policy/v1/namespaces/default/poddisruptionbudgets";
    let (code, body) = c.json(
        "POST",
        pdbs,
        CT,
        &json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                "metadata": {"name": "web"},
                "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}}),
    );
    assert_eq!(code, 201, "{body}");
    // The disruption controller has not seen the budget yet: 429, come back in 10 s.
    let (code, refused) = evict(&c, "web-1", json!({}));
    assert_eq!(code, 429, "{refused}");
    assert_eq!(refused["reason"], "TooManyRequests");
    assert_eq!(
        refused["message"],
        "Cannot evict pod as it would violate the pod's disruption budget."
    );
    assert_eq!(
        refused["details"]["causes"],
        json!([{"reason": "DisruptionBudget",
                "message": "The disruption budget web is still being processed by the server."}])
    );
    assert_eq!(refused["details"]["retryAfterSeconds"], 10);
    // What the disruption controller would write: one disruption allowed.
    let (code, body) = c.json(
        "PATCH",
        &format!("{pdbs}/web/status"),
        "application/merge-patch+json",
        &json!({"status": {"observedGeneration": 1, "disruptionsAllowed": 1,
                "currentHealthy": 2, "desiredHealthy": 1, "expectedPods": 2}}),
    );
    assert_eq!(code, 200, "{body}");
    let (code, st) = evict(&c, "web-1", json!({"gracePeriodSeconds": 5}));
    assert_eq!(code, 201, "{st}");
    let (_, pod) = c.call("GET", &format!("{PODS}/web-1"), "", None);
    assert_eq!(
        pod["metadata"]["deletionGracePeriodSeconds"], 5,
        "the pod on its node is deleted gracefully: {pod}"
    );
    let (_, budget) = c.call("GET", &format!("{pdbs}/web"), "", None);
    assert_eq!(budget["status"]["disruptionsAllowed"], 0, "{budget}");
    assert!(
        budget["status"]["disruptedPods"]["web-1"].is_string(),
        "{budget}"
    );
    assert_eq!(
        budget["status"]["conditions"][0]["type"],
        "DisruptionAllowed"
    );
    assert_eq!(budget["status"]["conditions"][0]["status"], "False");
    // None left: the next eviction is refused and the pod stays.
    let (code, refused) = evict(&c, "web-2", json!({}));
    assert_eq!(code, 429, "{refused}");
    assert_eq!(
        refused["details"]["causes"][0]["message"],
        "The disruption budget web needs 1 healthy pods and has 2 currently"
    );
    let (_, pod) = c.call("GET", &format!("{PODS}/web-2"), "", None);
    assert!(pod["metadata"].get("deletionTimestamp").is_none(), "{pod}");
    // A dry run is answered as the real one would be, and changes nothing.
    let (code, _) = c.json(
        "PATCH",
        &format!("{pdbs}/web/status"),
        "application/merge-patch+json",
        &json!({"status": {"disruptionsAllowed": 1}}),
    );
    assert_eq!(code, 200);
    let (code, st) = evict(&c, "web-2", json!({"dryRun": ["All"]}));
    assert_eq!(code, 201, "{st}");
    let (_, pod) = c.call("GET", &format!("{PODS}/web-2"), "", None);
    assert!(pod["metadata"].get("deletionTimestamp").is_none(), "{pod}");
    // The eviction names its pod.
    let (code, bad) = c.json(
        "POST",
        &format!("{PODS}/web-2/eviction"),
        CT,
        &json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "other"}}),
    );
    assert_eq!(code, 400, "{bad}");
    assert_eq!(
        bad["message"],
        "name in URL does not match name in Eviction object"
    );
    // kubectl drain: cordons the node and evicts what runs there (the budget allows one).
    let (code, _) = c.json(
        "POST",
        "/api/v1/nodes",
        CT,
        &json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"}}),
    );
    assert_eq!(code, 201);
    let out = k.kubectl(&[
        "drain",
        "node-a",
        "--grace-period=0",
        "--force",
        "--timeout=30s",
        "--pod-selector=app=web",
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("evicting pod default/web-2"), "{text}");
    let (_, node) = c.call("GET", "/api/v1/nodes/node-a", "", None);
    assert_eq!(node["spec"]["unschedulable"], true);
    let (code, _) = c.call("GET", &format!("{PODS}/web-2"), "", None);
    assert_eq!(code, 404);
}
