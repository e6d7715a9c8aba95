//! The write pipeline against the real binary: validation answers upstream's 422 byte for byte
//! where kapi has the kind's rules, admission (NamespaceLifecycle) refuses as upstream, a patch
//! or an unconditional update that loses a race is retried instead of answering 409, and the
//! strategy's generation rule holds.

mod support;

use serde_json::{Value, json};
use support::client::Client;
use support::kapi::Kapi;

#[test]
fn an_invalid_pod_gets_upstreams_422() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    let exchange = include_str!("data/upstream/04-create-invalid-pod-422.http.txt");
    let body = exchange
        .lines()
        .find(|l| l.starts_with("{\"apiVersion\""))
        .expect("the captured request body");
    let (code, got) = c.call(
        "POST",
        "/api/v1/namespaces/default/pods",
        "application/json",
        Some(serde_json::from_str(body).unwrap()),
    );
    let want: Value = serde_json::from_str(include_str!(
        "data/upstream/04-create-invalid-pod-422.body.json"
    ))
    .unwrap();
    assert_eq!(code, 422);
    assert_eq!(got, want);
    // Nothing was stored.
    assert!(!k.kubectl(&["get", "pod", "Bad_Name"]).status.success());
}

#[test]
fn namespace_lifecycle_refuses_as_upstream() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    let cm =
        |name: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});
    let (code, body) = c.call(
        "POST",
        "/api/v1/namespaces/nowhere/configmaps",
        "application/json",
        Some(cm("a")),
    );
    assert_eq!(code, 404, "{body}");
    assert_eq!(body["message"], "namespaces \"nowhere\" not found");
    // A namespace held in Terminating by a finalizer.
    k.ok(&["create", "namespace", "ending"]);
    let (code, _) = c.call(
        "PATCH",
        "/api/v1/namespaces/ending",
        "application/merge-patch+json",
        Some(json!({"metadata": {"finalizers": ["example.com/hold"]}})),
    );
    assert_eq!(code, 200);
    k.ok(&["delete", "namespace", "ending", "--wait=false"]);
    let (code, body) = c.call(
        "POST",
        "/api/v1/namespaces/ending/configmaps",
        "application/json",
        Some(cm("late")),
    );
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "configmaps \"late\" is forbidden: unable to create new content in namespace ending because it is being terminated"
    );
    assert_eq!(
        body["details"]["causes"][0]["reason"],
        "NamespaceTerminating"
    );
    assert_eq!(body["details"]["causes"][0]["field"], "metadata.namespace");
    // The namespaces a cluster needs are never deleted.
    let (code, body) = c.call("DELETE", "/api/v1/namespaces/default", "", None);
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "namespaces \"default\" is forbidden: this namespace may not be deleted"
    );
    k.ok(&["get", "namespace", "default"]);
}

#[test]
fn concurrent_patches_are_retried_and_a_stale_update_is_refused() {
    let k = Kapi::start(&[], &[]);
    k.ok(&["create", "configmap", "shared"]);
    let writers = 6;
    let rounds = 10;
    let codes: Vec<Vec<u16>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let k = &k;
                s.spawn(move || {
                    let c = Client::new(k);
                    (0..rounds)
                        .map(|r| {
                            let patch = json!({"data": {format!("w{w}-r{r}"): "x"}});
                            let (code, body) = c.call(
                                "PATCH",
                                "/api/v1/namespaces/default/configmaps/shared",
                                "application/merge-patch+json",
                                Some(patch),
                            );
                            if code != 200 {
                                eprintln!("{code}: {body}");
                            }
                            code
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (w, codes) in codes.iter().enumerate() {
        assert!(codes.iter().all(|&c| c == 200), "writer {w}: {codes:?}");
    }
    let c = Client::new(&k);
    let (_, cm) = c.call(
        "GET",
        "/api/v1/namespaces/default/configmaps/shared",
        "",
        None,
    );
    assert_eq!(
        cm["data"].as_object().map(|d| d.len()),
        Some(writers * rounds),
        "{cm}"
    );
    // An update that names a stale resourceVersion is still a 409.
    let mut stale = cm.clone();
    stale["metadata"]["resourceVersion"] = json!("1");
    let (code, body) = c.call(
        "PUT",
        "/api/v1/namespaces/default/configmaps/shared",
        "application/json",
        Some(stale),
    );
    assert_eq!(code, 409, "{body}");
    assert_eq!(body["reason"], "Conflict");
}

#[test]
fn generation_follows_the_strategy() {
    let k = Kapi::start(&[], &[]);
    k.ok(&["create", "deployment", "web", "--image=nginx"]);
    let c = Client::new(&k);
    let path = "/apis/apps/v1/namespaces/default/deployments/web";
    let (_, d) = c.call("GET", path, "", None);
    assert_eq!(d["metadata"]["generation"], 1);
    let (code, d) = c.call(
        "PATCH",
        path,
        "application/merge-patch+json",
        Some(json!({"spec": {"replicas": 3}})),
    );
    assert_eq!(code, 200, "{d}");
    assert_eq!(d["metadata"]["generation"], 2);
    // A status write does not touch the spec, nor the generation.
    let (code, d) = c.call(
        "PATCH",
        &format!("{path}/status"),
        "application/merge-patch+json",
        Some(json!({"status": {"observedGeneration": 2}})),
    );
    assert_eq!(code, 200, "{d}");
    assert_eq!(d["metadata"]["generation"], 2);
    assert_eq!(d["status"]["observedGeneration"], 2);
    // ConfigMaps have no generation.
    k.ok(&["create", "configmap", "plain"]);
    let (_, cm) = c.call(
        "GET",
        "/api/v1/namespaces/default/configmaps/plain",
        "",
        None,
    );
    assert!(cm["metadata"].get("generation").is_none(), "{cm}");
}
