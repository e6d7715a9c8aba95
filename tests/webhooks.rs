//! Admission webhooks against the real binary: a webhook server in the test (HTTPS on a loopback
//! port, its certificate given to kapi as the configuration's caBundle) that mutates and
//! refuses and warns; rules, namespace selectors, failure policies, dry runs and Service-backed webhooks
//! (reached at their endpoint with --enable-aggregator-routing).

mod support;

use std::net::TcpListener;

use base64::Engine;
use serde_json::{Value, json};
use support::client::Client;
use support::hook::Hook;
use support::kapi::Kapi;

const CT: &str = "application/json";

/// The test's webhook answers: `/mutate` annotates the object, `/deny` refuses objects whose
/// `data` has a key `forbidden`.
fn answer(path: &str, review: &Value) -> Value {
    let uid = review["request"]["uid"].clone();
    let mut response = json!({"uid": uid, "allowed": true});
    match path {
        "/mutate" => {
            let patch = json!([{"op": "add", "path": "/metadata/annotations",
                                "value": {"mutated-by": "webhook"}}]);
            response["patchType"] = json!("JSONPatch");
            response["warnings"] = json!(["annotated by the test webhook"]);
            response["patch"] =
                json!(base64::engine::general_purpose::STANDARD.encode(patch.to_string()));
        }
        "/deny"
            if review["request"]["object"]["data"]
                .get("forbidden")
                .is_some() =>
        {
            response["allowed"] = json!(false);
            response["status"] =
                json!({"code": 403, "reason": "Forbidden", "message": "no forbidden keys"});
        }
        _ => {}
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
}

fn webhook(name: &str, client_config: Value, resources: &[&str], extra: Value) -> Value {
    let mut w = json!({
        "name": name,
        "clientConfig": client_config,
        "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": [""],
                   "apiVersions": ["v1"], "resources": resources}],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
    });
    if let (Some(w), Some(extra)) = (w.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            w.insert(k.clone(), v.clone());
        }
    }
    w
}

fn configure(c: &Client, kind: &str, name: &str, hooks: Vec<Value>) {
    let plural = format!("{}s", kind.to_lowercase());
    let (code, body) = c.json(
        "POST",
        &format!("/apis/admissionregistration.k8s.io/v1/{plural}"),
        CT,
        &json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
                "metadata": {"name": name}, "webhooks": hooks}),
    );
    assert_eq!(code, 201, "{body}");
}

fn configmap(c: &Client, ns: &str, name: &str, data: Value, query: &str) -> (u16, Value) {
    c.json(
        "POST",
        &format!("/api/v1/namespaces/{ns}/configmaps{query}"),
        CT,
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                "data": data}),
    )
}

#[test]
fn webhooks_mutate_and_refuse_the_writes_their_rules_select() {
    let hook = Hook::start(answer);
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    k.ok(&["create", "namespace", "hooked"]);
    k.ok(&["label", "namespace", "hooked", "webhooks=on"]);
    k.ok(&["create", "namespace", "plain"]);
    let url = |path: &str| {
        json!({"url": format!("https://127.0.0.1:{}{path}", hook.port),
                                  "caBundle": hook.ca_bundle()})
    };
    let selected = json!({"namespaceSelector": {"matchLabels": {"webhooks": "on"}}});
    // The mutating webhook also has a match condition: objects labelled `skip` are not sent.
    let mut conditional = selected.clone();
    conditional["matchConditions"] = json!([{"name": "not-skipped",
        "expression": "!has(object.metadata.labels) || !('skip' in object.metadata.labels)"}]);
    configure(
        &c,
        "MutatingWebhookConfiguration",
        "annotate",
        vec![webhook(
            "annotate.example.com",
            url("/mutate"),
            &["configmaps"],
            conditional,
        )],
    );
    configure(
        &c,
        "ValidatingWebhookConfiguration",
        "deny",
        vec![webhook(
            "deny.example.com",
            url("/deny"),
            &["configmaps"],
            selected,
        )],
    );

    // Selected namespace: mutated, and a forbidden key refused with the webhook's Status.
    let (code, cm) = configmap(&c, "hooked", "a", json!({"k": "v"}), "");
    assert_eq!(code, 201, "{cm}");
    assert_eq!(cm["metadata"]["annotations"]["mutated-by"], "webhook");
    let (code, refused) = configmap(&c, "hooked", "b", json!({"forbidden": "1"}), "");
    assert_eq!(code, 403, "{refused}");
    assert_eq!(refused["reason"], "Forbidden");
    assert_eq!(
        refused["message"],
        "admission webhook \"deny.example.com\" denied the request: no forbidden keys"
    );
    let out = k.kubectl(&[
        "create",
        "configmap",
        "c",
        "-n",
        "hooked",
        "--from-literal=forbidden=1",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("denied the request: no forbidden keys"),
        "{out:?}"
    );
    // A match condition that does not hold: not mutated.
    let (code, skipped) = c.json(
        "POST",
        "/api/v1/namespaces/hooked/configmaps",
        CT,
        &json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "skipped", "labels": {"skip": "yes"}}, "data": {}}),
    );
    assert_eq!(code, 201, "{skipped}");
    assert!(
        skipped["metadata"].get("annotations").is_none(),
        "{skipped}"
    );
    // A condition that does not compile is refused with the configuration.
    let mut broken = json!({"matchConditions": [{"name": "bad", "expression": "objekt.x"}]});
    broken["namespaceSelector"] = json!({});
    let (code, refused) = c.json(
        "POST",
        "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
        CT,
        &json!({"apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingWebhookConfiguration", "metadata": {"name": "broken"},
                "webhooks": [webhook("broken.example.com", url("/deny"), &["configmaps"], broken)]}),
    );
    assert_eq!(code, 422, "{refused}");
    assert_eq!(
        refused["details"]["causes"][0]["field"],
        "webhooks[0].matchConditions[0].expression"
    );
    // The webhook's warnings reach the client.
    let out = k.kubectl(&["create", "configmap", "w", "-n", "hooked"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Warning: annotated by the test webhook"),
        "{out:?}"
    );
    // An update is sent too, with the old object.
    let (code, body) = c.json(
        "PATCH",
        "/api/v1/namespaces/hooked/configmaps/a",
        "application/merge-patch+json",
        &json!({"data": {"forbidden": "now"}}),
    );
    assert_eq!(code, 403, "{body}");
    // A dry run is sent (the webhooks have no side effects), marked as one.
    let (code, dry) = configmap(&c, "hooked", "d", json!({}), "?dryRun=All");
    assert_eq!(code, 201, "{dry}");
    assert_eq!(dry["metadata"]["annotations"]["mutated-by"], "webhook");

    // Other namespaces and resources are not sent.
    let (code, cm) = configmap(&c, "plain", "a", json!({"forbidden": "1"}), "");
    assert_eq!(code, 201, "{cm}");
    assert!(cm["metadata"].get("annotations").is_none(), "{cm}");
    k.ok(&["create", "secret", "generic", "s", "-n", "hooked"]);

    let reviews = hook.reviews();
    let first = &reviews[0];
    assert_eq!(first["apiVersion"], "admission.k8s.io/v1");
    let req = &first["request"];
    assert_eq!(
        req["kind"],
        json!({"group": "", "version": "v1", "kind": "ConfigMap"})
    );
    assert_eq!(
        req["resource"],
        json!({"group": "", "version": "v1", "resource": "configmaps"})
    );
    assert_eq!(req["operation"], "CREATE");
    assert_eq!(req["namespace"], "hooked");
    assert_eq!(req["name"], "a");
    assert_eq!(req["object"]["data"]["k"], "v");
    assert!(
        req["userInfo"]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g == "system:masters")
    );
    assert!(
        reviews.iter().all(|r| r["request"]["namespace"] == "hooked"
            && r["request"]["resource"]["resource"] == "configmaps"),
        "only selected writes are sent"
    );
    let update = reviews
        .iter()
        .find(|r| r["request"]["operation"] == "UPDATE")
        .expect("the update was sent");
    assert_eq!(update["request"]["oldObject"]["data"]["k"], "v");
    assert!(reviews.iter().any(|r| r["request"]["dryRun"] == true));
}

#[test]
fn failure_policies_decide_when_a_webhook_cannot_be_reached() {
    let hook = Hook::start(answer);
    let k = Kapi::start(&["--enable-aggregator-routing"], &[]);
    let c = Client::new(&k);
    // A port nothing listens on.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap().port();
    drop(closed);
    let gone = json!({"url": format!("https://127.0.0.1:{dead}/"), "caBundle": hook.ca_bundle()});
    configure(
        &c,
        "ValidatingWebhookConfiguration",
        "unreachable",
        vec![
            webhook(
                "fail.example.com",
                gone.clone(),
                &["secrets"],
                json!({"failurePolicy": "Fail"}),
            ),
            webhook(
                "ignore.example.com",
                gone,
                &["serviceaccounts"],
                json!({"failurePolicy": "Ignore"}),
            ),
        ],
    );
    let (code, body) = c.json(
        "POST",
        "/api/v1/namespaces/default/secrets",
        CT,
        &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}),
    );
    assert_eq!(code, 500, "{body}");
    assert_eq!(body["reason"], "InternalError");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Internal error occurred: failed calling webhook \"fail.example.com\": failed to call webhook: "),
        "{body}"
    );
    let (code, body) = c.json(
        "POST",
        "/api/v1/namespaces/default/serviceaccounts",
        CT,
        &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa"}}),
    );
    assert_eq!(code, 201, "Ignore lets the write through: {body}");

    // admissionregistration/v1 has no webhooks with side effects (so dry runs always reach
    // webhooks): `sideEffects: Some` is refused.
    let (code, body) = c.json(
        "POST",
        "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
        CT,
        &json!({"apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration", "metadata": {"name": "effects"},
        "webhooks": [webhook(
            "effects.example.com",
            json!({"url": format!("https://127.0.0.1:{}/", hook.port),
                   "caBundle": hook.ca_bundle()}),
            &["podtemplates"],
            json!({"sideEffects": "Some"}),
        )]}),
    );
    assert_eq!(code, 422, "{body}");
    assert_eq!(
        body["details"]["causes"][0]["field"],
        "webhooks[0].sideEffects"
    );

    // A webhook behind a Service, reached at its endpoint and verified as hook.default.svc.
    hook.behind_service(&c);
    configure(
        &c,
        "MutatingWebhookConfiguration",
        "by-service",
        vec![webhook(
            "service.example.com",
            json!({"service": {"namespace": "default", "name": "hook", "path": "/mutate"},
                   "caBundle": hook.ca_bundle()}),
            &["limitranges"],
            json!({}),
        )],
    );
    let (code, lr) = c.json(
        "POST",
        "/api/v1/namespaces/default/limitranges",
        CT,
        &json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "lr"},
                "spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}}]}}),
    );
    assert_eq!(code, 201, "{lr}");
    assert_eq!(lr["metadata"]["annotations"]["mutated-by"], "webhook");
}
