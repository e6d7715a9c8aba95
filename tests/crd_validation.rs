//! CustomResourceDefinitions validated and defaulted by the real binary as upstream does:
//! invalid CRDs are refused with upstream's 422 causes (sent with reqwest and with kubectl),
//! and a valid one is stored with upstream's defaults.

mod support;

use serde_json::{Value, json};
use support::client::Client;
use support::kapi::Kapi;

const CRDS: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";

fn crd(name: &str, group: &str, plural: &str, schema: Value) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": name},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": plural, "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                          "schema": {"openAPIV3Schema": schema}}]
        }
    })
}

/// (field, reason, message) of a 422's causes.
fn causes(body: &Value) -> Vec<(String, String, String)> {
    body["details"]["causes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or("").to_string();
            (s("field"), s("reason"), s("message"))
        })
        .collect()
}

#[test]
fn invalid_crds_are_refused_with_upstreams_causes() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);

    // A property without a type, and a name that is not plural.group.
    let bad = crd(
        "widget.stable.example.com",
        "stable.example.com",
        "widgets",
        json!({"type": "object", "properties": {"spec": {"properties": {"size": {"type": "integer"}}}}}),
    );
    let (code, body) = c.call("POST", CRDS, "application/json", Some(bad));
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["reason"], "Invalid");
    assert_eq!(
        causes(&body),
        vec![
            (
                "metadata.name".into(),
                "FieldValueInvalid".into(),
                "Invalid value: \"widget.stable.example.com\": must be spec.names.plural+\".\"+spec.group".into()
            ),
            (
                "spec.validation.openAPIV3Schema.properties[spec].type".into(),
                "FieldValueRequired".into(),
                "Required value: must not be empty for specified object fields".into()
            ),
        ]
    );

    // A default of the wrong type, a bad list-map, and no storage version.
    let mut bad = crd(
        "widgets.stable.example.com",
        "stable.example.com",
        "widgets",
        json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "size": {"type": "integer", "default": "big"},
            "ports": {"type": "array", "x-kubernetes-list-type": "map",
                      "items": {"type": "object", "properties": {"name": {"type": "string"}}}}
        }}}}),
    );
    bad["spec"]["versions"][0]["storage"] = json!(false);
    let (code, body) = c.call("POST", CRDS, "application/json", Some(bad));
    assert_eq!(code, 422, "{body}");
    let got = causes(&body);
    let fields: Vec<(&str, &str)> = got
        .iter()
        .map(|(f, r, _)| (f.as_str(), r.as_str()))
        .collect();
    assert!(
        fields.contains(&(
            "spec.validation.openAPIV3Schema.properties[spec].properties[size].default",
            "FieldValueTypeInvalid"
        )),
        "{got:?}"
    );
    assert!(
        fields.contains(&(
            "spec.validation.openAPIV3Schema.properties[spec].properties[ports].x-kubernetes-list-map-keys",
            "FieldValueRequired"
        )),
        "{got:?}"
    );
    assert!(
        fields.contains(&("spec.versions", "FieldValueInvalid")),
        "{got:?}"
    );

    // kubectl shows the same refusal.
    let yaml = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example
spec:
  group: example
  scope: Everywhere
  names: {plural: gadgets, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object}
"#;
    let out = k.kubectl_stdin(&["create", "-f", "-"], yaml);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "spec.group: Invalid value: \"example\": should be a domain with at least one dot"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("spec.scope: Unsupported value: \"Everywhere\": supported values: \"Cluster\", \"Namespaced\""),
        "{stderr}"
    );
}

#[test]
fn a_valid_crd_is_stored_with_upstreams_defaults_and_its_names_stay() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    let good = crd(
        "widgets.stable.example.com",
        "stable.example.com",
        "widgets",
        json!({"type": "object", "properties": {"spec": {"type": "object",
            "properties": {"size": {"type": "integer", "default": 1}}}}}),
    );
    let (code, created) = c.call("POST", CRDS, "application/json", Some(good));
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["spec"]["names"]["singular"], "widget");
    assert_eq!(created["spec"]["names"]["listKind"], "WidgetList");
    assert_eq!(created["spec"]["conversion"]["strategy"], "None");
    assert_eq!(created["status"]["storedVersions"], json!(["v1"]));
    assert_eq!(created["metadata"]["generation"], 1);

    // The group and plural are immutable. The CRD controller writes the status meanwhile: a
    // PUT of a copy it made stale is a 409 (checked before validation, as upstream), so the
    // copy is read again, as a client would.
    let path = format!("{CRDS}/widgets.stable.example.com");
    let (mut code, mut body) = (0, json!(null));
    for _ in 0..20 {
        let (_, mut renamed) = c.call("GET", &path, "application/json", None);
        renamed["spec"]["group"] = json!("other.example.com");
        (code, body) = c.call("PUT", &path, "application/json", Some(renamed));
        if code != 409 {
            break;
        }
    }
    assert_eq!(code, 422, "{body}");
    let got = causes(&body);
    assert!(
        got.contains(&(
            "spec.group".into(),
            "FieldValueInvalid".into(),
            "Invalid value: \"other.example.com\": field is immutable".into()
        )),
        "{got:?}"
    );
}
