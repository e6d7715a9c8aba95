//! CustomResourceDefinitions against the real binary, driven with kubectl and curl: a CRD
//! becomes an API (names accepted, Established, discovery, OpenAPI for explain), its
//! instances are created, listed with selectors, watched, printed with their columns, scaled
//! and updated through status; deleting the CRD deletes them first; on etcd they are JSON at
//! upstream's keys, and what an upstream apiserver stored is served.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::client::Client;
use support::etcd::Etcd;
use support::kapi::Kapi;

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.stable.example.com
spec:
  group: stable.example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd], categories: [all]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas, labelSelectorPath: .status.selector}
    additionalPrinterColumns:
    - {name: Color, type: string, jsonPath: .spec.color}
    - {name: Ready, type: string, jsonPath: '.status.conditions[?(@.type=="Ready")].status'}
    selectableFields:
    - jsonPath: .spec.color
    schema:
      openAPIV3Schema:
        type: object
        description: A widget of the test.
        properties:
          spec:
            type: object
            x-kubernetes-validations:
            - {rule: "!has(self.replicas) || self.replicas <= 10", message: at most 10 replicas}
            - {rule: "!has(oldSelf.color) || self.color == oldSelf.color", message: color is immutable}
            properties:
              size: {type: integer, description: How big it is., minimum: 1}
              color: {type: string, enum: [red, blue, green]}
              shape: {type: string, default: round}
              replicas: {type: integer}
          status:
            type: object
            properties:
              replicas: {type: integer}
              selector: {type: string}
              conditions:
                type: array
                items:
                  type: object
                  properties:
                    type: {type: string}
                    status: {type: string}
"#;

fn widget(name: &str, color: &str) -> String {
    format!(
        "apiVersion: stable.example.com/v1\nkind: Widget\nmetadata: {{name: {name}, namespace: default, labels: {{tier: {color}}}}}\nspec: {{size: 3, color: {color}, replicas: 1}}\n"
    )
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Waits (bounded) until `f` holds.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

fn install(k: &Kapi) {
    let out = k.kubectl_stdin(&["apply", "-f", "-"], CRD);
    assert!(out.status.success(), "{}", stderr(&out));
    eventually("the CRD to be served", || {
        k.kubectl(&["get", "widgets"]).status.success()
    });
}

#[test]
fn a_crd_becomes_an_api_with_discovery_columns_selectors_and_subresources() {
    let k = Kapi::start(&[], &[]);
    install(&k);
    let crd: Value =
        serde_json::from_str(&k.ok(&["get", "crd", "widgets.stable.example.com", "-o", "json"]))
            .unwrap();
    let conditions = crd["status"]["conditions"].as_array().unwrap();
    let status_of = |t: &str| {
        conditions
            .iter()
            .find(|c| c["type"] == t)
            .map(|c| (c["status"].clone(), c["reason"].clone()))
    };
    assert_eq!(
        status_of("NamesAccepted"),
        Some(("True".into(), "NoConflicts".into()))
    );
    assert_eq!(
        status_of("Established"),
        Some(("True".into(), "InitialNamesAccepted".into()))
    );
    assert_eq!(crd["status"]["acceptedNames"]["listKind"], "WidgetList");
    assert_eq!(crd["status"]["storedVersions"][0], "v1");

    // Discovery: the group, its resource list with the subresources, aggregated discovery.
    let c = Client::new(&k);
    let (code, groups) = c.call("GET", "/apis", "", None);
    assert_eq!(code, 200);
    assert!(
        groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "stable.example.com"),
        "{groups}"
    );
    let (code, list) = c.call("GET", "/apis/stable.example.com/v1", "", None);
    assert_eq!(code, 200, "{list}");
    let names: Vec<&str> = list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["widgets", "widgets/status", "widgets/scale"]);
    assert_eq!(list["resources"][0]["shortNames"][0], "wd");
    let api_resources = k.ok(&["api-resources", "--api-group=stable.example.com"]);
    assert!(api_resources.contains("widgets"), "{api_resources}");

    // Instances: created, printed with their columns, selected by labels and fields.
    for (n, color) in [("w1", "red"), ("w2", "blue")] {
        let out = k.kubectl_stdin(&["create", "-f", "-"], &widget(n, color));
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let table = k.ok(&["get", "wd"]);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table.contains("COLOR") && table.contains("READY"),
        "{table}"
    );
    assert!(table.contains("w1") && table.contains("red"), "{table}");
    let blue = k.ok(&["get", "widgets", "-l", "tier=blue", "-o", "name"]);
    assert_eq!(blue.trim(), "widget.stable.example.com/w2");
    let red = k.ok(&[
        "get",
        "widgets",
        "--field-selector",
        "spec.color=red",
        "-o",
        "name",
    ]);
    assert_eq!(red.trim(), "widget.stable.example.com/w1");
    let bad = k.kubectl(&["get", "widgets", "--field-selector", "spec.size=3"]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("field label not supported: spec.size"),
        "{}",
        stderr(&bad)
    );
    let all = k.ok(&["get", "all", "-o", "name"]);
    assert!(all.contains("widget.stable.example.com/w1"), "{all}");

    // The schema: unknown fields refused under Strict (kubectl's default) and dropped with a
    // warning otherwise, defaults filled in, values validated with upstream's causes.
    let out = k.kubectl_stdin(
        &["create", "-f", "-"],
        "apiVersion: stable.example.com/v1\nkind: Widget\nmetadata: {name: w3, namespace: default}\nspec: {size: 3, colour: red}\n",
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(r#"unknown field "spec.colour""#),
        "{}",
        stderr(&out)
    );
    let out = k.kubectl_stdin(
        &["create", "--validate=warn", "-f", "-"],
        "apiVersion: stable.example.com/v1\nkind: Widget\nmetadata: {name: w3, namespace: default}\nspec: {size: 3, colour: red}\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let w3: Value = serde_json::from_str(&k.ok(&["get", "widget", "w3", "-o", "json"])).unwrap();
    assert!(w3["spec"].get("colour").is_none(), "{w3}");
    assert_eq!(w3["spec"]["shape"], "round");
    let (code, status) = c.call(
        "POST",
        "/apis/stable.example.com/v1/namespaces/default/widgets",
        "application/json",
        Some(
            serde_json::json!({"apiVersion": "stable.example.com/v1", "kind": "Widget",
            "metadata": {"name": "bad"}, "spec": {"size": 0, "color": "pink"}}),
        ),
    );
    assert_eq!(code, 422, "{status}");
    let mut causes: Vec<(String, String)> = status["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["field"].as_str().unwrap_or("").to_string(),
                c["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    causes.sort();
    assert_eq!(
        causes,
        [
            // The rules are not run on a value the schema refused; upstream says so.
            (String::new(), "FieldValueInvalid".to_string()),
            (
                "spec.color".to_string(),
                "FieldValueNotSupported".to_string()
            ),
            ("spec.size".to_string(), "FieldValueInvalid".to_string()),
        ],
        "{status}"
    );

    // CEL rules: a validation and a transition rule, with their messages.
    let (code, status) = c.call(
        "POST",
        "/apis/stable.example.com/v1/namespaces/default/widgets",
        "application/json",
        Some(
            serde_json::json!({"apiVersion": "stable.example.com/v1", "kind": "Widget",
            "metadata": {"name": "many"}, "spec": {"size": 1, "color": "red", "replicas": 11}}),
        ),
    );
    assert_eq!(code, 422, "{status}");
    assert_eq!(status["details"]["causes"][0]["field"], "spec", "{status}");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("at most 10 replicas"),
        "{status}"
    );
    let out = k.kubectl(&[
        "patch",
        "widget",
        "w2",
        "--type=merge",
        "-p",
        r#"{"spec":{"color":"green"}}"#,
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("color is immutable"),
        "{}",
        stderr(&out)
    );

    // The object as stored: generation 1, keys sorted as upstream writes unstructured JSON.
    let (code, raw) = c.text(
        "GET",
        "/apis/stable.example.com/v1/namespaces/default/widgets/w1",
    );
    assert_eq!(code, 200);
    assert!(
        raw.starts_with(r#"{"apiVersion":"stable.example.com/v1","kind":"Widget","metadata":{"creationTimestamp":"#),
        "{raw}"
    );
    let w1: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(w1["metadata"]["generation"], 1);

    // Status is a subresource: the main resource keeps it, status keeps the spec; only spec
    // changes move the generation.
    k.ok(&[
        "patch",
        "widget",
        "w1",
        "--type=merge",
        "-p",
        r#"{"spec":{"size":5},"status":{"replicas":9}}"#,
    ]);
    k.ok(&[
        "patch",
        "widget",
        "w1",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"spec":{"size":7},"status":{"replicas":1,"selector":"tier=red","conditions":[{"type":"Ready","status":"True"}]}}"#,
    ]);
    let w1: Value = serde_json::from_str(&k.ok(&["get", "widget", "w1", "-o", "json"])).unwrap();
    assert_eq!(w1["spec"]["size"], 5);
    assert_eq!(w1["status"]["replicas"], 1);
    assert_eq!(w1["metadata"]["generation"], 2);
    let table = k.ok(&["get", "wd", "w1"]);
    assert!(table.contains("True"), "{table}");

    // Scale: the paths the CRD names.
    k.ok(&["scale", "widget", "w1", "--replicas=4"]);
    let (code, scale) = c.call(
        "GET",
        "/apis/stable.example.com/v1/namespaces/default/widgets/w1/scale",
        "",
        None,
    );
    assert_eq!(code, 200, "{scale}");
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 4);
    assert_eq!(scale["status"]["replicas"], 1);
    assert_eq!(scale["status"]["selector"], "tier=red");

    // No strategic merge for custom resources.
    let out = k.kubectl(&[
        "patch",
        "widget",
        "w1",
        "--type=strategic",
        "-p",
        r#"{"spec":{"size":6}}"#,
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("accepted media types include: application/json-patch+json"),
        "{}",
        stderr(&out)
    );

    // kubectl explain reads the OpenAPI v3 document of the group-version.
    eventually("the OpenAPI document of the group-version", || {
        k.kubectl(&["explain", "widgets.spec.size"])
            .status
            .success()
    });
    let explained = k.ok(&["explain", "widgets.spec.size"]);
    assert!(explained.contains("How big it is."), "{explained}");

    // No protobuf form: a client that takes JSON too gets JSON; one that takes only
    // protobuf gets 406.
    let out = k
        .curl(
            &["-H", "Accept: application/vnd.kubernetes.protobuf"],
            "/apis/stable.example.com/v1/namespaces/default/widgets/w1",
        )
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        body.contains("406") || body.contains("NotAcceptable"),
        "{body}"
    );
    let out = k
        .curl(
            &[
                "-H",
                "Accept: application/vnd.kubernetes.protobuf, application/json",
            ],
            "/apis/stable.example.com/v1/namespaces/default/widgets/w1",
        )
        .output()
        .unwrap();
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["kind"], "Widget", "{got}");
}

#[test]
fn watches_see_custom_resources_change() {
    let k = Kapi::start(&[], &[]);
    install(&k);
    let mut watch = std::process::Command::new("kubectl")
        .args([
            "--kubeconfig",
            k.kubeconfig().to_str().unwrap(),
            "get",
            "widgets",
            "--watch-only",
            "-o",
            "name",
            "--request-timeout=20s",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let out = k.kubectl_stdin(&["create", "-f", "-"], &widget("w9", "green"));
    assert!(out.status.success(), "{}", stderr(&out));
    k.ok(&["delete", "widget", "w9"]);
    std::thread::sleep(Duration::from_millis(800));
    let _ = watch.kill();
    let out = watch.wait_with_output().unwrap();
    let seen = String::from_utf8_lossy(&out.stdout);
    assert!(seen.contains("widget.stable.example.com/w9"), "{seen}");
}

#[test]
fn deleting_a_crd_deletes_its_instances_first_and_removes_the_api() {
    let mut k = Kapi::start(&[], &[]);
    install(&k);
    let out = k.kubectl_stdin(&["create", "-f", "-"], &widget("w1", "red"));
    assert!(out.status.success(), "{}", stderr(&out));
    // A restart serves the CRD and its instances from the store.
    k.kill_and_restart();
    eventually("the CRD to be served again", || {
        k.kubectl(&["get", "widget", "w1"]).status.success()
    });
    // An instance with a finalizer holds the CRD in Terminating, and no new instance may be
    // created meanwhile.
    k.ok(&[
        "patch",
        "widget",
        "w1",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
    ]);
    k.ok(&[
        "delete",
        "crd",
        "widgets.stable.example.com",
        "--wait=false",
    ]);
    eventually("the Terminating condition", || {
        k.ok(&["get", "crd", "widgets.stable.example.com", "-o", "json"])
            .contains("InstanceDeletionInProgress")
    });
    let out = k.kubectl_stdin(&["create", "-f", "-"], &widget("w2", "red"));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("create not allowed while custom resource definition is terminating"),
        "{}",
        stderr(&out)
    );
    eventually("the instance to be marked deleted", || {
        k.ok(&["get", "widget", "w1", "-o", "json"])
            .contains("deletionTimestamp")
    });
    k.ok(&[
        "patch",
        "widget",
        "w1",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ]);
    eventually("the CRD to go", || {
        !k.kubectl(&["get", "crd", "widgets.stable.example.com"])
            .status
            .success()
    });
    let c = Client::new(&k);
    eventually("the group to leave discovery", || {
        c.call("GET", "/apis/stable.example.com/v1", "", None).0 == 404
    });
}

#[test]
fn custom_resources_live_in_etcd_as_upstream_keeps_them() {
    let etcd = Etcd::start();
    // What an upstream apiserver stored: the CRD (as apiextensions.k8s.io/v1beta1 JSON) and a
    // Widget (JSON), copied from its etcd (tests/data/upstream/etcd-values).
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/upstream/etcd-values");
    let crd = std::fs::read_to_string(
        dir.join("apiextensions.k8s.io_customresourcedefinitions_widgets.stable.example.com.json"),
    )
    .unwrap();
    let w1 =
        std::fs::read_to_string(dir.join("stable.example.com_widgets_layout_w1.json")).unwrap();
    for (key, value) in [
        (
            "/registry/apiextensions.k8s.io/customresourcedefinitions/widgets.stable.example.com",
            crd.trim_end(),
        ),
        (
            "/registry/stable.example.com/widgets/layout/w1",
            w1.trim_end(),
        ),
    ] {
        let out = etcd.etcdctl(&["put", key, value]);
        assert!(out.status.success(), "{out:?}");
    }
    let k = Kapi::start(&["--etcd-servers", &etcd.endpoint], &[]);
    eventually("upstream's widget to be served", || {
        k.kubectl(&["get", "widget", "w1", "-n", "layout"])
            .status
            .success()
    });
    let got: Value =
        serde_json::from_str(&k.ok(&["get", "widget", "w1", "-n", "layout", "-o", "json"]))
            .unwrap();
    assert_eq!(got["spec"]["color"], "red");
    assert_eq!(
        got["metadata"]["uid"],
        "764005fd-7e19-4eaf-b1d0-0ffeea9daad7"
    );
    // A new one is stored as upstream stores it: JSON with sorted keys, no resourceVersion.
    k.ok(&["create", "namespace", "layout2"]);
    let out = k.kubectl_stdin(
        &["create", "-f", "-"],
        "apiVersion: stable.example.com/v1\nkind: Widget\nmetadata: {name: w2, namespace: layout2}\nspec: {color: blue, size: 1}\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = etcd.etcdctl(&[
        "get",
        "/registry/stable.example.com/widgets/layout2/w2",
        "--print-value-only",
    ]);
    let stored: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stored["apiVersion"], "stable.example.com/v1");
    assert_eq!(stored["spec"]["color"], "blue");
    assert!(
        stored["metadata"].get("resourceVersion").is_none(),
        "{stored}"
    );
    assert!(
        out.stdout
            .starts_with(br#"{"apiVersion":"stable.example.com/v1","kind":"Widget","metadata":{"#),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // A CRD kapi writes is stored as upstream stores them: v1beta1 JSON, the schema at the top.
    install(&k);
    let out = etcd.etcdctl(&[
        "get",
        "/registry/apiextensions.k8s.io/customresourcedefinitions/widgets.stable.example.com",
        "--print-value-only",
    ]);
    let stored: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        stored["apiVersion"], "apiextensions.k8s.io/v1beta1",
        "{stored}"
    );
    assert_eq!(stored["spec"]["version"], "v1");
    assert_eq!(
        stored["spec"]["validation"]["openAPIV3Schema"]["type"],
        "object"
    );
    assert_eq!(
        stored["spec"]["additionalPrinterColumns"][0]["JSONPath"],
        ".spec.color"
    );
}

/// The test's conversion webhook: `spec.cronSpec` (v1) and `spec.schedule` (v2) are the same
/// field.
fn convert(_path: &str, review: &Value) -> Value {
    let to = review["request"]["desiredAPIVersion"]
        .as_str()
        .unwrap_or_default();
    let objects: Vec<Value> = review["request"]["objects"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut o| {
            let spec = o["spec"].as_object_mut().cloned().unwrap_or_default();
            let mut new = serde_json::Map::new();
            for (k, v) in spec {
                let k = match (to.ends_with("/v2"), k.as_str()) {
                    (true, "cronSpec") => "schedule".to_string(),
                    (false, "schedule") => "cronSpec".to_string(),
                    _ => k,
                };
                new.insert(k, v);
            }
            o["spec"] = Value::Object(new);
            o["apiVersion"] = Value::String(to.to_string());
            o
        })
        .collect();
    serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "response": {
            "uid": review["request"]["uid"],
            "result": {"status": "Success"},
            "convertedObjects": objects,
        },
    })
}

#[test]
fn versions_convert_with_none_and_with_a_webhook() {
    let hook = support::hook::Hook::start(convert);
    // The webhook behind a Service (`hook`, its certificate's name), reached at its endpoint.
    let k = Kapi::start(&["--enable-aggregator-routing=true"], &[]);
    let c = Client::new(&k);
    hook.behind_service(&c);
    let crd = format!(
        r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: crontabs.conv.example.com}}
spec:
  group: conv.example.com
  scope: Namespaced
  names: {{plural: crontabs, singular: crontab, kind: CronTab}}
  conversion:
    strategy: Webhook
    webhook:
      conversionReviewVersions: [v1]
      clientConfig: {{service: {{namespace: default, name: hook, path: /convert}}, caBundle: {}}}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {{openAPIV3Schema: {{type: object, properties: {{spec: {{type: object, properties: {{cronSpec: {{type: string}}}}}}}}}}}}
  - name: v2
    served: true
    storage: false
    schema: {{openAPIV3Schema: {{type: object, properties: {{spec: {{type: object, properties: {{schedule: {{type: string}}}}}}}}}}}}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: things.conv.example.com}}
spec:
  group: conv.example.com
  scope: Cluster
  names: {{plural: things, kind: Thing}}
  versions:
  - {{name: v1beta1, served: true, storage: false, schema: {{openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}}}}}
  - {{name: v1, served: true, storage: true, schema: {{openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}}}}}
"#,
        hook.ca_bundle()
    );
    let out = k.kubectl_stdin(&["apply", "-f", "-"], &crd);
    assert!(out.status.success(), "{}", stderr(&out));
    eventually("both CRDs to be served", || {
        c.call(
            "GET",
            "/apis/conv.example.com/v2/namespaces/default/crontabs",
            "",
            None,
        )
        .0 == 200
            && c.call("GET", "/apis/conv.example.com/v1beta1/things", "", None)
                .0
                == 200
    });
    // Discovery prefers the highest version.
    let (_, group) = c.call("GET", "/apis/conv.example.com", "", None);
    assert_eq!(group["preferredVersion"]["version"], "v2", "{group}");

    // Written in v2, stored in v1 (through the webhook), read in either.
    let (code, created) = c.call(
        "POST",
        "/apis/conv.example.com/v2/namespaces/default/crontabs",
        "application/json",
        Some(
            serde_json::json!({"apiVersion": "conv.example.com/v2", "kind": "CronTab",
            "metadata": {"name": "nightly"}, "spec": {"schedule": "0 3 * * *"}}),
        ),
    );
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["apiVersion"], "conv.example.com/v2");
    assert_eq!(created["spec"]["schedule"], "0 3 * * *");
    let (_, v1) = c.call(
        "GET",
        "/apis/conv.example.com/v1/namespaces/default/crontabs/nightly",
        "",
        None,
    );
    assert_eq!(v1["apiVersion"], "conv.example.com/v1", "{v1}");
    assert_eq!(v1["spec"]["cronSpec"], "0 3 * * *");
    let (_, list) = c.call(
        "GET",
        "/apis/conv.example.com/v2/namespaces/default/crontabs",
        "",
        None,
    );
    assert_eq!(list["items"][0]["spec"]["schedule"], "0 3 * * *", "{list}");
    let reviews = hook.reviews();
    assert!(
        reviews
            .iter()
            .any(|r| r["request"]["desiredAPIVersion"] == "conv.example.com/v1"),
        "{reviews:?}"
    );

    // None: only apiVersion changes.
    let (code, thing) = c.call(
        "POST",
        "/apis/conv.example.com/v1beta1/things",
        "application/json",
        Some(
            serde_json::json!({"apiVersion": "conv.example.com/v1beta1", "kind": "Thing",
            "metadata": {"name": "t"}, "spec": {"a": 1}}),
        ),
    );
    assert_eq!(code, 201, "{thing}");
    let (_, thing) = c.call("GET", "/apis/conv.example.com/v1/things/t", "", None);
    assert_eq!(thing["apiVersion"], "conv.example.com/v1");
    assert_eq!(thing["spec"]["a"], 1);
}

#[test]
fn custom_resources_take_server_side_apply_with_their_schema() {
    let k = Kapi::start(&[], &[]);
    install(&k);
    let applied = "apiVersion: stable.example.com/v1\nkind: Widget\nmetadata: {name: sa, namespace: default}\nspec: {size: 2, color: red}\n";
    let out = k.kubectl_stdin(
        &["apply", "--server-side", "--field-manager=alice", "-f", "-"],
        applied,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let w: Value = serde_json::from_str(&k.ok(&[
        "get",
        "widget",
        "sa",
        "-o",
        "json",
        "--show-managed-fields",
    ]))
    .unwrap();
    let managers: Vec<&str> = w["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["manager"].as_str().unwrap())
        .collect();
    assert_eq!(managers, ["alice"], "{w}");
    assert_eq!(w["metadata"]["managedFields"][0]["operation"], "Apply");
    assert!(
        w["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:size"].is_object(),
        "{w}"
    );
    // Another manager changing alice's field conflicts, unless it forces.
    let other = "apiVersion: stable.example.com/v1\nkind: Widget\nmetadata: {name: sa, namespace: default}\nspec: {size: 5}\n";
    let out = k.kubectl_stdin(
        &["apply", "--server-side", "--field-manager=bob", "-f", "-"],
        other,
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("conflict"), "{}", stderr(&out));
    let out = k.kubectl_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager=bob",
            "--force-conflicts",
            "-f",
            "-",
        ],
        other,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let w: Value = serde_json::from_str(&k.ok(&["get", "widget", "sa", "-o", "json"])).unwrap();
    assert_eq!(w["spec"]["size"], 5);
    assert_eq!(w["spec"]["color"], "red");
}
