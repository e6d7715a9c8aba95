//! What kube-controller-manager's namespace controller does for a Terminating namespace, for
//! tests that delete namespaces (kapi, as upstream's apiserver, leaves that to the controller):
//! delete every namespaced object in it, resource by resource from discovery, wait until they
//! are gone, then take `kubernetes` out of `spec.finalizers` through `namespaces/finalize`,
//! which deletes the namespace.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::client::Client;

/// The collection paths of every namespaced resource that can be deleted as a collection.
fn collections(c: &Client, ns: &str) -> Vec<String> {
    let mut versions = vec!["/api/v1".to_string()];
    let (_, groups) = c.call("GET", "/apis", "", None);
    for g in groups["groups"].as_array().into_iter().flatten() {
        if let Some(gv) = g["preferredVersion"]["groupVersion"].as_str() {
            versions.push(format!("/apis/{gv}"));
        }
    }
    let mut out = Vec::new();
    for v in versions {
        let (_, list) = c.call("GET", &v, "", None);
        for r in list["resources"].as_array().into_iter().flatten() {
            let name = r["name"].as_str().unwrap_or("");
            let collectable = r["verbs"]
                .as_array()
                .is_some_and(|vs| vs.iter().any(|x| x == "deletecollection"));
            if r["namespaced"] == true && !name.contains('/') && collectable {
                out.push(format!("{v}/namespaces/{ns}/{name}"));
            }
        }
    }
    out
}

/// Empties the Terminating namespace `ns` and finalizes it; panics if its contents do not go
/// within 30 s.
pub fn finalize(c: &Client, ns: &str) {
    let paths = collections(c, ns);
    for p in &paths {
        c.call(
            "DELETE",
            &format!("{p}?propagationPolicy=Background"),
            "",
            None,
        );
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for p in &paths {
        loop {
            let (_, list) = c.call("GET", p, "", None);
            if list["items"].as_array().is_none_or(Vec::is_empty) {
                break;
            }
            assert!(Instant::now() < deadline, "{p} still holds {list}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let (code, mut obj) = c.call("GET", &format!("/api/v1/namespaces/{ns}"), "", None);
    assert_eq!(code, 200, "{obj}");
    let left: Vec<Value> = obj["spec"]["finalizers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| *f != "kubernetes")
        .cloned()
        .collect();
    obj["spec"]["finalizers"] = json!(left);
    let (code, body) = c.json(
        "PUT",
        &format!("/api/v1/namespaces/{ns}/finalize"),
        "application/json",
        &obj,
    );
    assert_eq!(code, 200, "{body}");
}
