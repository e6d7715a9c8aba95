//! CRD defaults and validation with upstream's fields, reasons and messages.

use serde_json::{Value, json};

use super::{CustomResourceDefinitions, set_defaults};
use crate::kinds::Strategy;

fn crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.stable.example.com"},
        "spec": {
            "group": "stable.example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}
                }}}
            }]
        }
    })
}

/// The causes of a create of `obj` after prepare and defaults, as the write path runs them.
fn create(mut obj: Value) -> Vec<(String, String, String)> {
    CustomResourceDefinitions.prepare_for_create(&mut obj);
    CustomResourceDefinitions.default(&mut obj);
    CustomResourceDefinitions
        .validate_create(&obj)
        .into_iter()
        .map(|c| (c.field, c.reason, c.message))
        .collect()
}

fn with(mut obj: Value, pointer: &str, v: Value) -> Value {
    if let Some(slot) = obj.pointer_mut(pointer) {
        *slot = v;
    }
    obj
}

fn fields(causes: &[(String, String, String)]) -> Vec<(&str, &str)> {
    causes
        .iter()
        .map(|(f, r, _)| (f.as_str(), r.as_str()))
        .collect()
}

fn schema(s: Value) -> Value {
    with(crd(), "/spec/versions/0/schema/openAPIV3Schema", s)
}

#[test]
fn defaults_fill_names_conversion_and_stored_versions() {
    let mut obj = crd();
    CustomResourceDefinitions.prepare_for_create(&mut obj);
    set_defaults(&mut obj);
    assert_eq!(obj["spec"]["names"]["singular"], "widget");
    assert_eq!(obj["spec"]["names"]["listKind"], "WidgetList");
    assert_eq!(obj["spec"]["conversion"], json!({"strategy": "None"}));
    assert_eq!(obj["status"]["storedVersions"], json!(["v1"]));
    let mut hooked = with(
        crd(),
        "/spec/conversion",
        json!({"strategy": "Webhook", "webhook": {"clientConfig": {"service": {"namespace": "ns", "name": "svc"}}, "conversionReviewVersions": ["v1"]}}),
    );
    if let Some(spec) = hooked["spec"].as_object_mut() {
        spec.insert(
            "conversion".into(),
            json!({"strategy": "Webhook", "webhook": {"clientConfig": {"service": {"namespace": "ns", "name": "svc"}}, "conversionReviewVersions": ["v1"]}}),
        );
    }
    set_defaults(&mut hooked);
    assert_eq!(
        hooked["spec"]["conversion"]["webhook"]["clientConfig"]["service"]["port"],
        443
    );
}

#[test]
fn a_valid_crd_has_no_causes() {
    assert_eq!(create(crd()), vec![]);
}

#[test]
fn name_must_be_plural_dot_group() {
    let got = create(with(
        crd(),
        "/metadata/name",
        json!("gadgets.stable.example.com"),
    ));
    assert_eq!(
        got,
        vec![(
            "metadata.name".into(),
            "FieldValueInvalid".into(),
            "Invalid value: \"gadgets.stable.example.com\": must be spec.names.plural+\".\"+spec.group".into()
        )]
    );
}

#[test]
fn group_scope_and_names() {
    let obj = with(crd(), "/spec/group", json!("example"));
    let obj = with(obj, "/metadata/name", json!("widgets.example"));
    assert_eq!(
        create(obj),
        vec![(
            "spec.group".into(),
            "FieldValueInvalid".into(),
            "Invalid value: \"example\": should be a domain with at least one dot".into()
        )]
    );
    assert_eq!(
        create(with(crd(), "/spec/scope", json!("Global"))),
        vec![(
            "spec.scope".into(),
            "FieldValueNotSupported".into(),
            "Unsupported value: \"Global\": supported values: \"Cluster\", \"Namespaced\"".into()
        )]
    );
    let obj = with(
        crd(),
        "/spec/names",
        json!({"plural": "widgets", "kind": "Widget", "listKind": "Widget", "shortNames": ["W"], "categories": ["all"]}),
    );
    let got = create(obj);
    assert_eq!(
        fields(&got),
        vec![
            ("spec.names.shortNames[0]", "FieldValueInvalid"),
            ("spec.names.listKind", "FieldValueInvalid"),
        ]
    );
    assert_eq!(
        got[1].2,
        "Invalid value: \"Widget\": kind and listKind may not be the same"
    );
    let obj = with(
        crd(),
        "/spec/names",
        json!({"plural": "Widgets_", "kind": ""}),
    );
    let got = create(obj);
    assert!(fields(&got).contains(&("spec.names.kind", "FieldValueRequired")));
    assert!(fields(&got).contains(&("spec.names.plural", "FieldValueInvalid")));
}

#[test]
fn versions_need_exactly_one_storage_unique_names_and_a_schema() {
    let v = |name: &str, storage: bool| {
        json!({"name": name, "served": true, "storage": storage,
               "schema": {"openAPIV3Schema": {"type": "object"}}})
    };
    let got = create(with(
        crd(),
        "/spec/versions",
        json!([v("v1", true), v("v1", true)]),
    ));
    // The second storage v1 finds no stored version left to match, as upstream's map does.
    assert_eq!(
        fields(&got),
        vec![
            ("spec.versions", "FieldValueInvalid"),
            ("spec.versions", "FieldValueInvalid"),
            ("status.storedVersions", "FieldValueInvalid"),
        ]
    );
    assert!(got[0].2.ends_with(": must contain unique version names"));
    assert!(
        got[1]
            .2
            .ends_with(": must have exactly one version marked as storage version")
    );
    assert_eq!(
        got[2].2,
        "Invalid value: [\"v1\"]: must have the storage version v1"
    );
    let got = create(with(
        crd(),
        "/spec/versions",
        json!([{"name": "v1", "served": true, "storage": true}]),
    ));
    assert_eq!(
        fields(&got),
        vec![(
            "spec.versions[0].schema.openAPIV3Schema",
            "FieldValueRequired"
        )]
    );
    let got = create(with(crd(), "/spec/versions/0/name", json!("V1")));
    assert_eq!(
        fields(&got),
        vec![
            ("spec.versions[0].name", "FieldValueInvalid"),
            ("spec.version", "FieldValueInvalid"),
        ]
    );
}

#[test]
fn per_version_schemas_keep_their_paths_when_they_differ() {
    let obj = with(
        crd(),
        "/spec/versions",
        json!([
            {"name": "v1", "served": true, "storage": true,
             "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {}}}}},
            {"name": "v2", "served": true, "storage": false,
             "schema": {"openAPIV3Schema": {"type": "object"}}}
        ]),
    );
    assert_eq!(
        create(obj),
        vec![(
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].type".into(),
            "FieldValueRequired".into(),
            "Required value: must not be empty for specified object fields".into()
        )]
    );
}

#[test]
fn schemas_must_be_structural() {
    let got = create(schema(
        json!({"properties": {"spec": {"properties": {"a": {"type": "array"}}}}}),
    ));
    assert_eq!(
        got,
        vec![
            (
                "spec.validation.openAPIV3Schema.properties[spec].properties[a].items".into(),
                "FieldValueRequired".into(),
                "Required value: must be specified".into()
            ),
            (
                "spec.validation.openAPIV3Schema.properties[spec].type".into(),
                "FieldValueRequired".into(),
                "Required value: must not be empty for specified object fields".into()
            ),
            (
                "spec.validation.openAPIV3Schema.type".into(),
                "FieldValueRequired".into(),
                "Required value: must not be empty at the root".into()
            ),
        ]
    );
    let got = create(schema(json!({"type": "string"})));
    assert_eq!(
        fields(&got),
        vec![("spec.validation.openAPIV3Schema.type", "FieldValueInvalid")]
    );
    assert_eq!(
        got[0].2,
        "Invalid value: \"string\": must be object at the root"
    );
    let got = create(schema(json!({"type": "object", "properties": {
        "metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}}})));
    assert_eq!(
        got,
        vec![(
            "spec.validation.openAPIV3Schema.properties[metadata]".into(),
            "FieldValueForbidden".into(),
            "Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified".into()
        )]
    );
    // Completeness is checked for the root's value validations (as upstream).
    let got = create(schema(
        json!({"type": "object", "properties": {"spec": {"type": "object"}},
        "anyOf": [{"type": "object", "properties": {"x": {}}}]}),
    ));
    assert_eq!(
        fields(&got),
        vec![
            (
                "spec.validation.openAPIV3Schema.anyOf[0].type",
                "FieldValueForbidden"
            ),
            (
                "spec.validation.openAPIV3Schema.properties[x]",
                "FieldValueRequired"
            ),
        ]
    );
    assert_eq!(
        got[1].2,
        "Required value: because it is defined in spec.validation.openAPIV3Schema.anyOf[0].properties[x]"
    );
}

#[test]
fn defaults_must_validate_and_be_pruned() {
    let got = create(schema(
        json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "size": {"type": "integer", "default": "three"},
            "obj": {"type": "object", "properties": {"a": {"type": "string"}}, "default": {"a": "x", "b": 1}}
        }}}}),
    ));
    assert_eq!(
        got,
        vec![
            (
                "spec.validation.openAPIV3Schema.properties[spec].properties[obj].default".into(),
                "FieldValueInvalid".into(),
                "Invalid value: {\"a\":\"x\",\"b\":1}: must not have unknown fields".into()
            ),
            (
                "spec.validation.openAPIV3Schema.properties[spec].properties[size].default".into(),
                "FieldValueTypeInvalid".into(),
                "Invalid value: \"string\":  in body must be of type integer: \"string\"".into()
            ),
        ]
    );
    let got = create(schema(
        json!({"type": "object", "properties": {"metadata": {"type": "object", "default": {}}}}),
    ));
    assert_eq!(
        got,
        vec![(
            "spec.validation.openAPIV3Schema.properties[metadata].default".into(),
            "FieldValueForbidden".into(),
            "Forbidden: must not be set in top-level metadata".into()
        )]
    );
}

#[test]
fn openapi_keyword_rules() {
    let got = create(schema(
        json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "u": {"type": "array", "items": {"type": "string"}, "uniqueItems": true},
            "r": {"type": "string", "$ref": "#/x"},
            "t": {"type": "strin"},
            "p": {"type": "object", "x-kubernetes-preserve-unknown-fields": false}
        }}}}),
    ));
    assert_eq!(
        fields(&got),
        vec![
            (
                "spec.validation.openAPIV3Schema.properties[spec].properties[p].x-kubernetes-preserve-unknown-fields",
                "FieldValueInvalid"
            ),
            (
                "spec.validation.openAPIV3Schema.properties[spec].properties[r].$ref",
                "FieldValueForbidden"
            ),
            (
                "spec.validation.openAPIV3Schema.properties[spec].properties[t].type",
                "FieldValueNotSupported"
            ),
            (
                "spec.validation.openAPIV3Schema.properties[spec].properties[u].uniqueItems",
                "FieldValueForbidden"
            ),
        ]
    );
    assert_eq!(
        got[2].2,
        "Unsupported value: \"strin\": supported values: \"array\", \"boolean\", \"integer\", \"number\", \"object\", \"string\""
    );
    assert_eq!(
        got[3].2,
        "Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic"
    );
}

#[test]
fn list_and_map_type_rules() {
    let got = create(schema(json!({"type": "object", "properties": {
        "m": {"type": "array", "x-kubernetes-list-type": "map",
              "items": {"type": "object", "properties": {"k": {"type": "string"}}}},
        "n": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["k", "z"],
              "items": {"type": "object", "required": ["k"], "properties": {"k": {"type": "string"}}}},
        "s": {"type": "string", "x-kubernetes-list-type": "set"},
        "o": {"type": "object", "x-kubernetes-map-type": "sometimes"}
    }})));
    assert_eq!(
        fields(&got),
        vec![
            (
                "spec.validation.openAPIV3Schema.properties[m].x-kubernetes-list-map-keys",
                "FieldValueRequired"
            ),
            (
                "spec.validation.openAPIV3Schema.properties[n].x-kubernetes-list-map-keys",
                "FieldValueInvalid"
            ),
            (
                "spec.validation.openAPIV3Schema.properties[o].x-kubernetes-map-type",
                "FieldValueNotSupported"
            ),
            (
                "spec.validation.openAPIV3Schema.properties[s].type",
                "FieldValueInvalid"
            ),
        ]
    );
    assert_eq!(
        got[1].2,
        "Invalid value: [\"k\",\"z\"]: entries must all be names of item properties"
    );
    assert_eq!(
        got[3].2,
        "Invalid value: \"string\": must be array if x-kubernetes-list-type is specified"
    );
}

#[test]
fn rule_text_is_checked_before_compilation() {
    let got = create(schema(
        json!({"type": "object", "x-kubernetes-validations": [
            {"rule": " "},
            {"rule": "self.a", "message": "two\nlines"},
            {"rule": "self.a", "reason": "FieldValueBad"}
        ]}),
    ));
    assert_eq!(
        fields(&got),
        vec![
            (
                "spec.validation.openAPIV3Schema.x-kubernetes-validations[0].rule",
                "FieldValueRequired"
            ),
            (
                "spec.validation.openAPIV3Schema.x-kubernetes-validations[1].message",
                "FieldValueInvalid"
            ),
            (
                "spec.validation.openAPIV3Schema.x-kubernetes-validations[2].reason",
                "FieldValueNotSupported"
            ),
        ]
    );
}

#[test]
fn subresources_columns_and_selectable_fields() {
    let mut obj = crd();
    let v = &mut obj["spec"]["versions"][0];
    v["subresources"] = json!({"status": {}, "scale": {"specReplicasPath": "spec.replicas", "statusReplicasPath": ".spec.replicas"}});
    v["additionalPrinterColumns"] =
        json!([{"name": "Size", "type": "int", "jsonPath": "spec.size"}]);
    v["selectableFields"] = json!([{"jsonPath": ".spec.size"}, {"jsonPath": ".spec"}, {"jsonPath": ".spec.nope"}, {"jsonPath": ".spec.size"}]);
    let got = create(obj);
    assert_eq!(
        got,
        vec![
            (
                "spec.subresources.scale.specReplicasPath".into(),
                "FieldValueInvalid".into(),
                "Invalid value: \"spec.replicas\": must be a simple json path starting with .".into()
            ),
            (
                "spec.subresources.scale.statusReplicasPath".into(),
                "FieldValueInvalid".into(),
                "Invalid value: \".spec.replicas\": should be a json path under .status".into()
            ),
            (
                "spec.additionalPrinterColumns[0].type".into(),
                "FieldValueInvalid".into(),
                "Invalid value: \"int\": must be one of boolean,date,integer,number,string".into()
            ),
            (
                "spec.additionalPrinterColumns[0].JSONPath".into(),
                "FieldValueInvalid".into(),
                "Invalid value: \"spec.size\": must be a simple json path starting with .".into()
            ),
            (
                "spec.selectableFields[1].jsonPath".into(),
                "FieldValueInvalid".into(),
                "Invalid value: \".spec\": must point to a field of type string, boolean or integer. Enum string fields and strings with formats are allowed.".into()
            ),
            (
                "spec.selectableFields[2].jsonPath".into(),
                "FieldValueInvalid".into(),
                "Invalid value: \".spec.nope\": is an invalid path: does not refer to a valid field".into()
            ),
            (
                "spec.selectableFields[3].jsonPath".into(),
                "FieldValueDuplicate".into(),
                "Duplicate value: \".spec.size\"".into()
            ),
        ]
    );
}

#[test]
fn status_subresource_limits_the_root_schema() {
    let mut obj = schema(
        json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true, "additionalProperties": {"type": "string"}}),
    );
    obj["spec"]["versions"][0]["subresources"] = json!({"status": {}});
    let got = create(obj);
    assert!(fields(&got).contains(&("spec.validation.openAPIV3Schema", "FieldValueInvalid")));
    assert!(fields(&got).contains(&(
        "spec.validation.openAPIV3Schema.additionalProperties",
        "FieldValueForbidden"
    )));
}

#[test]
fn webhook_conversion_needs_a_client_and_review_versions() {
    let mut obj = crd();
    obj["spec"]["conversion"] = json!({"strategy": "Webhook"});
    let got = create(obj);
    assert_eq!(
        fields(&got),
        vec![
            ("spec.conversion.webhookClientConfig", "FieldValueRequired"),
            (
                "spec.conversion.conversionReviewVersions",
                "FieldValueRequired"
            ),
        ]
    );
    assert_eq!(
        got[0].2,
        "Required value: required when strategy is set to Webhook"
    );
    let mut obj = crd();
    obj["spec"]["conversion"] = json!({"strategy": "Webhook", "webhook": {
        "clientConfig": {"url": "http://example.com/convert"}, "conversionReviewVersions": ["v2", "v2"]}});
    let got = create(obj);
    assert_eq!(
        fields(&got),
        vec![
            (
                "spec.conversion.webhookClientConfig.url",
                "FieldValueInvalid"
            ),
            (
                "spec.conversion.conversionReviewVersions[1]",
                "FieldValueInvalid"
            ),
            (
                "spec.conversion.conversionReviewVersions",
                "FieldValueInvalid"
            ),
        ]
    );
    assert_eq!(
        got[2].2,
        "Invalid value: [\"v2\",\"v2\"]: must include at least one of v1, v1beta1"
    );
    let mut obj = crd();
    obj["spec"]["conversion"] = json!({"strategy": "Sometimes"});
    assert_eq!(
        fields(&create(obj)),
        vec![("spec.conversion.strategy", "FieldValueNotSupported")]
    );
}

#[test]
fn updates_keep_group_and_plural_and_once_established_scope_and_kind() {
    let mut old = crd();
    CustomResourceDefinitions.prepare_for_create(&mut old);
    CustomResourceDefinitions.default(&mut old);
    old["status"]["conditions"] = json!([{"type": "Established", "status": "True"}]);
    let mut new = with(old.clone(), "/spec/scope", json!("Cluster"));
    new["spec"]["names"]["kind"] = json!("Gizmo");
    new["spec"]["names"]["listKind"] = json!("GizmoList");
    CustomResourceDefinitions.prepare_for_update(&mut new, &old);
    let got: Vec<(String, String, String)> = CustomResourceDefinitions
        .validate_update(&new, &old)
        .into_iter()
        .map(|c| (c.field, c.reason, c.message))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "spec.scope".into(),
                "FieldValueInvalid".into(),
                "Invalid value: \"Cluster\": field is immutable".into()
            ),
            (
                "spec.names.kind".into(),
                "FieldValueInvalid".into(),
                "Invalid value: \"Gizmo\": field is immutable".into()
            ),
        ]
    );
    let mut renamed = with(old.clone(), "/spec/names/plural", json!("gizmos"));
    CustomResourceDefinitions.prepare_for_update(&mut renamed, &old);
    let got = CustomResourceDefinitions.validate_update(&renamed, &old);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].field, "spec.names.plural");
}

#[test]
fn stored_versions_must_stay_listed() {
    let mut old = crd();
    CustomResourceDefinitions.prepare_for_create(&mut old);
    CustomResourceDefinitions.default(&mut old);
    let mut new = with(old.clone(), "/spec/versions/0/name", json!("v2"));
    CustomResourceDefinitions.prepare_for_update(&mut new, &old);
    assert_eq!(new["status"]["storedVersions"], json!(["v1", "v2"]));
    let got = CustomResourceDefinitions.validate_update(&new, &old);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].field, "status.storedVersions[0]");
    assert!(got[0].message.starts_with(
        "Invalid value: \"v1\": missing from spec.versions; v1 was previously a storage version"
    ));
}

#[test]
fn protected_groups_need_the_approval_annotation() {
    let obj = with(crd(), "/spec/group", json!("widgets.k8s.io"));
    let obj = with(obj, "/metadata/name", json!("widgets.widgets.k8s.io"));
    let got = create(obj);
    assert_eq!(
        fields(&got),
        vec![(
            "metadata.annotations[api-approved.kubernetes.io]",
            "FieldValueRequired"
        )]
    );
}

#[test]
fn status_updates_check_only_the_accepted_names() {
    let mut old = crd();
    CustomResourceDefinitions.prepare_for_create(&mut old);
    CustomResourceDefinitions.default(&mut old);
    assert_eq!(
        old["status"],
        json!({"acceptedNames": {"plural": "", "kind": ""}, "storedVersions": ["v1"]})
    );
    let mut new = old.clone();
    new["status"]["acceptedNames"] = json!({"plural": "Widgets!", "kind": "Widget"});
    let got = CustomResourceDefinitions
        .validate_subresource_update("status", &new, &old)
        .unwrap_or_default();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].field, "status.acceptedNames.plural");
    assert!(
        CustomResourceDefinitions
            .validate_subresource_update("scale", &new, &old)
            .is_none()
    );
}

#[test]
fn a_schema_with_every_common_feature_is_accepted() {
    let mut obj = schema(json!({
        "type": "object",
        "description": "A widget.",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {"type": "object", "required": ["replicas"], "properties": {
                "replicas": {"type": "integer", "format": "int32", "minimum": 0, "default": 1},
                "maxUnavailable": {"anyOf": [{"type": "integer"}, {"type": "string"}],
                                   "x-kubernetes-int-or-string": true},
                "mode": {"type": "string", "enum": ["A", "B"], "default": "A"},
                "selector": {"type": "object", "x-kubernetes-map-type": "atomic",
                             "additionalProperties": {"type": "string"}},
                "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                             "x-kubernetes-preserve-unknown-fields": true},
                "ports": {"type": "array", "x-kubernetes-list-type": "map",
                          "x-kubernetes-list-map-keys": ["name", "protocol"],
                          "items": {"type": "object", "required": ["name"], "properties": {
                              "name": {"type": "string"},
                              "protocol": {"type": "string", "default": "TCP"},
                              "port": {"type": "integer"}}}},
                "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                "config": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "when": {"type": "string", "format": "date-time", "nullable": true}
            },
            "x-kubernetes-validations": [{"rule": "self.replicas >= 0", "message": "no"}]},
            "status": {"type": "object", "properties": {
                "replicas": {"type": "integer"},
                "conditions": {"type": "array", "items": {"type": "object",
                    "properties": {"type": {"type": "string"}, "status": {"type": "string"}}}}
            }}
        }
    }));
    obj["spec"]["versions"][0]["subresources"] = json!({"status": {}, "scale": {
        "specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector"}});
    obj["spec"]["versions"][0]["additionalPrinterColumns"] = json!([
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]);
    obj["spec"]["versions"][0]["selectableFields"] = json!([{"jsonPath": ".spec.mode"}]);
    obj["spec"]["names"]["shortNames"] = json!(["wd"]);
    obj["spec"]["names"]["categories"] = json!(["all"]);
    assert_eq!(create(obj), vec![]);
}
