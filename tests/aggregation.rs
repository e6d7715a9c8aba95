//! API aggregation against the real binary: an extension API server in the test (HTTPS on a
//! loopback port behind the Service `hook` (its certificate's name) and its EndpointSlice, kapi started with
//! --enable-aggregator-routing and a proxy client certificate) registered by an APIService;
//! kapi marks it Available, lists its group in discovery and proxies its requests with the
//! caller's identity in the request headers.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::client::Client;
use support::hook::Hook;
use support::kapi::Kapi;

const CT: &str = "application/json";

/// The extension server: the discovery of `metrics.example.com/v1beta1` and a list of its
/// `samples`.
fn extension(_path: &str, request: &Value) -> Value {
    let path = request["path"].as_str().unwrap_or_default();
    if path.starts_with("/apis/metrics.example.com/v1beta1/samples") {
        let user = request["identity"]
            .as_array()
            .and_then(|h| h.iter().find(|p| p[0] == "x-remote-user"))
            .map(|p| p[1].clone())
            .unwrap_or(Value::Null);
        return json!({"kind": "SampleList", "apiVersion": "metrics.example.com/v1beta1",
            "metadata": {}, "items": [{"metadata": {"name": "seen-by"}, "user": user}]});
    }
    json!({"kind": "APIResourceList", "apiVersion": "v1",
        "groupVersion": "metrics.example.com/v1beta1",
        "resources": [{"name": "samples", "singularName": "sample", "namespaced": false,
            "kind": "Sample", "verbs": ["get", "list"]}]})
}

fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn an_apiservice_with_a_service_is_proxied_and_in_discovery() {
    let hook = Hook::start(extension);
    let dir = tempfile::tempdir().unwrap();
    // The proxy client certificate kapi presents: any pair will do for this server.
    let pair = rcgen::generate_simple_self_signed(vec!["front-proxy-client".to_string()]).unwrap();
    let (cert, key) = (dir.path().join("proxy.crt"), dir.path().join("proxy.key"));
    std::fs::write(&cert, pair.cert.pem()).unwrap();
    std::fs::write(&key, pair.signing_key.serialize_pem()).unwrap();
    let k = Kapi::start(
        &[
            "--enable-aggregator-routing=true",
            "--proxy-client-cert-file",
            cert.to_str().unwrap(),
            "--proxy-client-key-file",
            key.to_str().unwrap(),
        ],
        &[],
    );
    let c = Client::new(&k);
    hook.behind_service(&c);
    let (code, body) = c.json(
        "POST",
        "/apis/apiregistration.k8s.io/v1/apiservices",
        CT,
        &json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                "metadata": {"name": "v1beta1.metrics.example.com"},
                "spec": {"group": "metrics.example.com", "version": "v1beta1",
                    "service": {"namespace": "default", "name": "hook", "port": 443},
                    "caBundle": hook.ca_bundle(), "groupPriorityMinimum": 100,
                    "versionPriority": 100}}),
    );
    assert_eq!(code, 201, "{body}");
    eventually("the APIService to be Available", || {
        let (_, svc) = c.call(
            "GET",
            "/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.example.com",
            "",
            None,
        );
        svc["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Available" && c["status"] == "True")
        })
    });
    // Discovery lists the group, and kubectl finds the resource.
    let (_, apis) = c.call("GET", "/apis", "", None);
    assert!(
        apis["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "metrics.example.com"),
        "{apis}"
    );
    let resources = k.ok(&["api-resources", "--api-group=metrics.example.com"]);
    assert!(resources.contains("samples"), "{resources}");
    // Requests are proxied with the caller's identity.
    let (code, list) = c.call("GET", "/apis/metrics.example.com/v1beta1/samples", "", None);
    assert_eq!(code, 200, "{list}");
    assert_eq!(list["kind"], "SampleList");
    assert_eq!(list["items"][0]["user"], "kapi-admin", "{list}");
    let (code, doc) = c.call("GET", "/apis/metrics.example.com/v1beta1", "", None);
    assert_eq!(code, 200, "{doc}");
    assert_eq!(doc["resources"][0]["name"], "samples");

    // A backend that is gone: Available turns False with upstream's reason.
    let (code, body) = c.json(
        "POST",
        "/apis/apiregistration.k8s.io/v1/apiservices",
        CT,
        &json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                "metadata": {"name": "v1.gone.example.com"},
                "spec": {"group": "gone.example.com", "version": "v1",
                    "service": {"namespace": "default", "name": "missing", "port": 443},
                    "insecureSkipTLSVerify": true, "groupPriorityMinimum": 100,
                    "versionPriority": 100}}),
    );
    assert_eq!(code, 201, "{body}");
    eventually("the missing backend to be unavailable", || {
        let (_, svc) = c.call(
            "GET",
            "/apis/apiregistration.k8s.io/v1/apiservices/v1.gone.example.com",
            "",
            None,
        );
        svc["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter().any(|c| {
                c["type"] == "Available"
                    && c["status"] == "False"
                    && c["reason"] == "ServiceNotFound"
            })
        })
    });
    let (code, _) = c.call("GET", "/apis/gone.example.com/v1/things", "", None);
    assert_eq!(code, 503);
}
