//! Subresources the scheduler and controllers use: `pods/binding` and the older `bindings`
//! resource, answered as upstream's BindingREST answers.

mod support;

use serde_json::{Value, json};
use support::client::Client;
use support::kapi::Kapi;

fn pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
}

fn binding(name: &str, node: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name,
           "annotations": {"scheduled-by": "test"}},
           "target": {"apiVersion": "v1", "kind": "Node", "name": node}})
}

const PODS: &str = "/api/v1/namespaces/default/pods";

#[test]
fn pods_are_bound_once_to_a_node() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    let ct = "application/json";
    for name in ["p1", "p2", "p3"] {
        let (code, body) = c.json("POST", PODS, ct, &pod(name));
        assert_eq!(code, 201, "{body}");
    }
    let (code, st) = c.json(
        "POST",
        &format!("{PODS}/p1/binding"),
        ct,
        &binding("p1", "n1"),
    );
    assert_eq!(code, 201, "{st}");
    assert_eq!(st["kind"], "Status");
    assert_eq!(st["status"], "Success");
    assert_eq!(st["code"], 201);
    let (_, p1) = c.call("GET", &format!("{PODS}/p1"), ct, None);
    assert_eq!(p1["spec"]["nodeName"], "n1");
    assert_eq!(p1["metadata"]["annotations"]["scheduled-by"], "test");
    let scheduled = p1["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "PodScheduled")
        .cloned()
        .unwrap();
    assert_eq!(scheduled["status"], "True");

    // Bound once: a second binding is upstream's 409.
    let (code, st) = c.json(
        "POST",
        &format!("{PODS}/p1/binding"),
        ct,
        &binding("p1", "n2"),
    );
    assert_eq!(code, 409, "{st}");
    assert_eq!(
        st["message"],
        "Operation cannot be fulfilled on pods/binding \"p1\": pod p1 is already assigned to node \"n1\""
    );
    // The older `bindings` resource names the pod in the body.
    let (code, st) = c.json(
        "POST",
        "/api/v1/namespaces/default/bindings",
        ct,
        &binding("p2", "n2"),
    );
    assert_eq!(code, 201, "{st}");
    let (_, p2) = c.call("GET", &format!("{PODS}/p2"), ct, None);
    assert_eq!(p2["spec"]["nodeName"], "n2");
    // Refused: a name that is not the URL's, no target node, a missing pod.
    let (code, _) = c.json(
        "POST",
        &format!("{PODS}/p3/binding"),
        ct,
        &binding("p2", "n1"),
    );
    assert_eq!(code, 400);
    let (code, st) = c.json(
        "POST",
        &format!("{PODS}/p3/binding"),
        ct,
        &json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p3"}, "target": {}}),
    );
    assert_eq!(code, 422, "{st}");
    assert_eq!(st["details"]["causes"][0]["field"], "target.name");
    let (code, _) = c.json(
        "POST",
        &format!("{PODS}/nope/binding"),
        ct,
        &binding("nope", "n1"),
    );
    assert_eq!(code, 404);
    let (_, p3) = c.call("GET", &format!("{PODS}/p3"), ct, None);
    assert!(p3["spec"].get("nodeName").is_none(), "{p3}");
}

#[test]
fn namespaces_finalize_changes_only_spec_finalizers() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    let ct = "application/json";
    let (code, ns) = c.json(
        "POST",
        "/api/v1/namespaces",
        ct,
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fin"}}),
    );
    assert_eq!(code, 201, "{ns}");
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    let mut body = ns.clone();
    body["spec"]["finalizers"] = json!([]);
    body["metadata"]["labels"]["sneaky"] = json!("yes");
    let (code, after) = c.json("PUT", "/api/v1/namespaces/fin/finalize", ct, &body);
    assert_eq!(code, 200, "{after}");
    assert!(
        after["spec"]
            .get("finalizers")
            .is_none_or(|f| f == &json!([])),
        "{after}"
    );
    assert!(
        after["metadata"]["labels"].get("sneaky").is_none(),
        "{after}"
    );
    // Only update: a patch of finalize is not served.
    let (code, _) = c.json(
        "PATCH",
        "/api/v1/namespaces/fin/finalize",
        "application/merge-patch+json",
        &json!({"spec": {"finalizers": ["x"]}}),
    );
    assert_ne!(code, 200);
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn debug_containers_are_added_through_ephemeralcontainers_only() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    let (code, body) = c.json("POST", PODS, "application/json", &pod("web"));
    assert_eq!(code, 201, "{body}");
    // `kubectl debug` patches the subresource (strategic merge) and is done.
    let out = k.kubectl(&[
        "debug",
        "web",
        "--image=busybox",
        "-c",
        "dbg",
        "--target=c",
        "--attach=false",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (code, p) = c.call("GET", &format!("{PODS}/web"), "", None);
    assert_eq!(code, 200);
    let ec = &p["spec"]["ephemeralContainers"][0];
    assert_eq!(ec["name"], "dbg");
    assert_eq!(ec["targetContainerName"], "c");
    assert_eq!(p["metadata"]["generation"], 2, "{p}");
    // GET on the subresource is the pod.
    let (code, sub) = c.call("GET", &format!("{PODS}/web/ephemeralcontainers"), "", None);
    assert_eq!((code, sub["kind"].as_str()), (200, Some("Pod")));
    // Removing one is refused; so is targeting a container the pod does not have.
    let mut none = p.clone();
    none["spec"]["ephemeralContainers"] = json!([]);
    let (code, st) = c.json(
        "PUT",
        &format!("{PODS}/web/ephemeralcontainers"),
        "application/json",
        &none,
    );
    assert_eq!(code, 422, "{st}");
    assert_eq!(
        st["message"],
        "Pod \"web\" is invalid: spec.ephemeralContainers: Forbidden: existing ephemeral containers \"dbg\" may not be removed\n"
    );
    let out = k.kubectl(&[
        "debug",
        "web",
        "--image=busybox",
        "-c",
        "dbg2",
        "--target=nope",
        "--attach=false",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out)
            .contains("spec.ephemeralContainers[1].targetContainerName: Not found: \"nope\""),
        "{}",
        stderr(&out)
    );
    // Other fields sent to the subresource are not written.
    let mut relabelled = p.clone();
    relabelled["metadata"]["labels"] = json!({"sneaky": "yes"});
    relabelled["spec"]["containers"][0]["image"] = json!("other");
    let (code, after) = c.json(
        "PUT",
        &format!("{PODS}/web/ephemeralcontainers"),
        "application/json",
        &relabelled,
    );
    assert_eq!(code, 200, "{after}");
    assert!(after["metadata"].get("labels").is_none(), "{after}");
    assert_eq!(after["spec"]["containers"][0]["image"], "busybox");
    // And a plain update may not add one (nor change most of the spec).
    let mut plain = after.clone();
    plain["spec"]["ephemeralContainers"][0]["image"] = json!("alpine");
    let (code, st) = c.json("PUT", &format!("{PODS}/web"), "application/json", &plain);
    assert_eq!(code, 422, "{st}");
    assert!(
        st["message"].as_str().unwrap_or("").starts_with(
            "Pod \"web\" is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`"
        ),
        "{st}"
    );
    // An image change is allowed, and bumps the generation.
    let out = k.kubectl(&["set", "image", "pod/web", "c=busybox:1.36"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (_, p) = c.call("GET", &format!("{PODS}/web"), "", None);
    assert_eq!(p["spec"]["containers"][0]["image"], "busybox:1.36");
    assert_eq!(p["metadata"]["generation"], 3, "{p}");
}

#[test]
fn pods_are_resized_through_resize_keeping_their_qos_class() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    let mut p = pod("sized");
    p["spec"]["containers"][0]["resources"] = json!({"requests": {"cpu": "100m", "memory": "32Mi"}, "limits": {"cpu": "200m", "memory": "64Mi"}});
    let (code, body) = c.json("POST", PODS, "application/json", &p);
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["status"]["qosClass"], "Burstable");
    // A plain update may not change resources.
    let (code, st) = c.json(
        "PATCH",
        &format!("{PODS}/sized"),
        "application/strategic-merge-patch+json",
        &json!({"spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "300m"}}}]}}),
    );
    assert_eq!(code, 422, "{st}");
    // kubectl patch --subresource=resize does (GET the subresource, then PATCH it).
    let out = k.kubectl(&[
        "patch",
        "pod",
        "sized",
        "--subresource=resize",
        "-p",
        r#"{"spec":{"containers":[{"name":"c","resources":{"limits":{"cpu":"400m"}}}]}}"#,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (_, after) = c.call("GET", &format!("{PODS}/sized"), "", None);
    assert_eq!(
        after["spec"]["containers"][0]["resources"]["limits"]["cpu"],
        "400m"
    );
    assert_eq!(after["metadata"]["generation"], 2);
    // Equal requests and limits would make it Guaranteed: refused.
    let (code, st) = c.json(
        "PATCH",
        &format!("{PODS}/sized/resize"),
        "application/strategic-merge-patch+json",
        &json!({"spec": {"containers": [{"name": "c", "resources": {
            "requests": {"cpu": "400m", "memory": "64Mi"}}}]}}),
    );
    assert_eq!(code, 422, "{st}");
    assert_eq!(
        st["message"],
        "Pod \"sized\" is invalid: spec: Invalid value: \"Burstable\": Pod QOS Class may not change as a result of resizing"
    );
    // Only cpu and memory change.
    let (code, st) = c.json(
        "PATCH",
        &format!("{PODS}/sized/resize"),
        "application/strategic-merge-patch+json",
        &json!({"spec": {"containers": [{"name": "c", "resources": {
            "limits": {"ephemeral-storage": "1Gi"}}}]}}),
    );
    assert_eq!(code, 422, "{st}");
    assert_eq!(
        st["details"]["causes"][0]["message"],
        "Forbidden: only cpu and memory resources are mutable"
    );
}

#[test]
fn bound_pods_get_their_nodes_topology_labels() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    let ct = "application/json";
    let (code, body) = c.json(
        "POST",
        "/api/v1/nodes",
        ct,
        &json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "labels": {
            "topology.k8s.io/zone": "z1", "topology.k8s.io/region": "r1", "other": "x"}}}),
    );
    assert_eq!(code, 201, "{body}");
    // Bound through pods/binding: the binding's labels and the node's topology labels.
    let (code, body) = c.json("POST", PODS, ct, &pod("bound"));
    assert_eq!(code, 201, "{body}");
    let mut b = binding("bound", "n1");
    b["metadata"]["labels"] = json!({"team": "a"});
    let (code, st) = c.json("POST", &format!("{PODS}/bound/binding"), ct, &b);
    assert_eq!(code, 201, "{st}");
    let (_, p) = c.call("GET", &format!("{PODS}/bound"), "", None);
    assert_eq!(
        p["metadata"]["labels"],
        json!({"team": "a", "topology.k8s.io/zone": "z1", "topology.k8s.io/region": "r1"}),
        "{p}"
    );
    // Created on the node: the topology labels it does not set itself.
    let mut placed = pod("placed");
    placed["spec"]["nodeName"] = json!("n1");
    placed["metadata"]["labels"] = json!({"topology.k8s.io/zone": "mine"});
    let (code, p) = c.json("POST", PODS, ct, &placed);
    assert_eq!(code, 201, "{p}");
    assert_eq!(
        p["metadata"]["labels"],
        json!({"topology.k8s.io/zone": "mine", "topology.k8s.io/region": "r1"}),
        "{p}"
    );
}
