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
