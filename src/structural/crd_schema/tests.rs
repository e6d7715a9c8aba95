//! Pure rules of CRD schemas not covered through the CRD strategy's tests.

use serde_json::json;

use super::{field_path, rule_spots, structural_errors, validate_schema};
use crate::structural::node::Node;

#[test]
fn int_or_string_patterns_are_structural() {
    let s = json!({"type": "object", "properties": {"port": {
        "x-kubernetes-int-or-string": true,
        "anyOf": [{"type": "integer"}, {"type": "string"}]
    }}});
    assert!(structural_errors(&s, "p").is_empty());
}

#[test]
fn embedded_resources_must_be_objects_with_properties() {
    let s =
        json!({"type": "object", "properties": {"t": {"x-kubernetes-embedded-resource": true}}});
    let got: Vec<(String, String)> = structural_errors(&s, "p")
        .into_iter()
        .map(|c| (c.field, c.message))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "p.properties[t].properties".into(),
                "Required value: must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields".into()
            ),
            (
                "p.properties[t].type".into(),
                "Required value: must be object if x-kubernetes-embedded-resource is true".into()
            ),
        ]
    );
}

#[test]
fn schemas_nested_too_deep_are_refused() {
    let mut s = json!({"type": "string"});
    for _ in 0..200 {
        s = json!({"type": "object", "properties": {"a": s}});
    }
    let got = validate_schema(&s, false, "spec.validation");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].field, "spec.validation.openAPIV3Schema");
    assert_eq!(got[0].reason, "FieldValueForbidden");
}

#[test]
fn field_paths_resolve_through_properties_and_maps() {
    let node = Node::parse(
        &json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {"a.b": {"type": "string"}}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}}
        }}),
        0,
    );
    assert_eq!(
        field_path(".spec['a.b']", &node, true).map(|(p, _)| p),
        Ok("spec.a.b".to_string())
    );
    assert_eq!(
        field_path(".labels.x", &node, true).map(|(p, _)| p),
        Ok("labels[x]".to_string())
    );
    assert_eq!(
        field_path(".spec['a.b']", &node, false).map(|(p, _)| p),
        Err("array notation is not allowed".to_string())
    );
    assert_eq!(
        field_path("spec", &node, true).map(|(p, _)| p),
        Err("expected [ or . but got: spec".to_string())
    );
}

#[test]
fn rule_spots_name_each_rules_list_for_the_cel_checker() {
    let s = json!({"type": "object", "properties": {"spec": {"type": "object",
        "x-kubernetes-validations": [{"rule": "self.a > 0"}],
        "properties": {"a": {"type": "integer"}}}}});
    let spots = rule_spots(&s, "spec.validation");
    assert_eq!(spots.len(), 1);
    assert_eq!(
        spots[0].path,
        "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations"
    );
}
