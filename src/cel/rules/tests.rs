use serde_json::{Value, json};

use super::*;

fn messages(causes: &[Cause]) -> Vec<(String, String, String)> {
    causes
        .iter()
        .map(|c| (c.field.clone(), c.reason.clone(), c.message.clone()))
        .collect()
}

fn one(field: &str, reason: &str, message: &str) -> Vec<(String, String, String)> {
    vec![(field.into(), reason.into(), message.into())]
}

fn widget_schema(rules: Value) -> Value {
    json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "x-kubernetes-validations": rules,
                "properties": {
                    "replicas": {"type": "integer"},
                    "maxReplicas": {"type": "integer"},
                    "image": {"type": "string"}
                }
            }
        }
    })
}

#[test]
fn crd_rules_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<CrdRules>();
}

#[test]
fn a_false_rule_reports_upstreams_default_message() {
    let rules = CrdRules::compile(
        &widget_schema(json!([{"rule": "self.replicas <= self.maxReplicas"}])),
        "spec.versions[0].schema.openAPIV3Schema",
    )
    .unwrap();
    let ok = json!({"spec": {"replicas": 1, "maxReplicas": 3}});
    assert!(rules.validate(&ok, None).is_empty());
    let bad = json!({"spec": {"replicas": 5, "maxReplicas": 3}});
    assert_eq!(
        messages(&rules.validate(&bad, None)),
        one(
            "spec",
            "FieldValueInvalid",
            "Invalid value: failed rule: self.replicas <= self.maxReplicas"
        )
    );
}

#[test]
fn message_reason_and_field_path_shape_the_error() {
    let rules = CrdRules::compile(
        &widget_schema(json!([
            {"rule": "self.replicas <= self.maxReplicas", "message": " too many replicas ",
             "reason": "FieldValueForbidden", "fieldPath": ".replicas"},
            {"rule": "has(self.image)", "messageExpression": "'image is required, replicas: ' + string(self.replicas)",
             "reason": "FieldValueRequired"},
            {"rule": "self.replicas != 7", "reason": "FieldValueDuplicate"}
        ])),
        "",
    )
    .unwrap();
    let bad = json!({"spec": {"replicas": 7, "maxReplicas": 3}});
    assert_eq!(
        messages(&rules.validate(&bad, None)),
        vec![
            (
                "spec.replicas".into(),
                "FieldValueForbidden".into(),
                "Forbidden: too many replicas".into()
            ),
            (
                "spec".into(),
                "FieldValueRequired".into(),
                "Required value: image is required, replicas: 7".into()
            ),
            (
                "spec".into(),
                "FieldValueDuplicate".into(),
                "Duplicate value".into()
            ),
        ]
    );
}

#[test]
fn a_failing_message_expression_falls_back_to_the_message() {
    let rules = CrdRules::compile(
        &widget_schema(json!([
            {"rule": "false", "message": "fixed", "messageExpression": "self.nope"},
            {"rule": "false", "messageExpression": "''"}
        ])),
        "",
    )
    .unwrap();
    let causes = rules.validate(&json!({"spec": {}}), None);
    assert_eq!(causes[0].message, "Invalid value: fixed");
    assert_eq!(causes[1].message, "Invalid value: failed rule: false");
}

#[test]
fn scalar_rules_see_the_scalar_and_report_its_type() {
    let schema = json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {
            "name": {"type": "string", "maxLength": 10,
                     "x-kubernetes-validations": [{"rule": "self.startsWith('w-')"}]},
            "size": {"type": "string",
                     "x-kubernetes-validations": [{"rule": "isQuantity(self) && quantity(self).isLessThan(quantity('1Gi'))", "message": "size must be below 1Gi"}]},
            "endpoint": {"type": "string",
                     "x-kubernetes-validations": [{"rule": "isURL(self) && url(self).getScheme() == 'https'"}]}
        }}}
    });
    let rules = CrdRules::compile(&schema, "").unwrap();
    let ok = json!({"spec": {"name": "w-1", "size": "512Mi", "endpoint": "https://x.example/a"}});
    assert!(rules.validate(&ok, None).is_empty());
    let bad = json!({"spec": {"name": "x", "size": "2Gi", "endpoint": "http://x"}});
    assert_eq!(
        messages(&rules.validate(&bad, None)),
        vec![
            (
                "spec.endpoint".into(),
                "FieldValueInvalid".into(),
                "Invalid value: \"http://x\": failed rule: isURL(self) && url(self).getScheme() == 'https'".into()
            ),
            (
                "spec.name".into(),
                "FieldValueInvalid".into(),
                "Invalid value: \"x\": failed rule: self.startsWith('w-')".into()
            ),
            (
                "spec.size".into(),
                "FieldValueInvalid".into(),
                "Invalid value: \"2Gi\": size must be below 1Gi".into()
            ),
        ]
    );
}

#[test]
fn transition_rules_run_only_on_update_with_a_correlated_old_value() {
    let schema = json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {
            "mode": {"type": "string",
                     "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "mode is immutable"}]},
            "level": {"type": "integer",
                     "x-kubernetes-validations": [{"rule": "!oldSelf.hasValue() || self >= oldSelf.value()",
                                                    "optionalOldSelf": true, "message": "level may not decrease"}]}
        }}}
    });
    let rules = CrdRules::compile(&schema, "").unwrap();
    let v1 = json!({"spec": {"mode": "a", "level": 3}});
    assert!(
        rules.validate(&v1, None).is_empty(),
        "create skips transition rules"
    );
    let v2 = json!({"spec": {"mode": "b", "level": 2}});
    assert_eq!(
        messages(&rules.validate(&v2, Some(&v1))),
        vec![
            (
                "spec.level".into(),
                "FieldValueInvalid".into(),
                "Invalid value: 2: level may not decrease".into()
            ),
            (
                "spec.mode".into(),
                "FieldValueInvalid".into(),
                "Invalid value: \"b\": mode is immutable".into()
            ),
        ]
    );
    // A field that did not exist before has no oldSelf: the plain rule is skipped, the
    // optionalOldSelf rule runs with none.
    let old = json!({"spec": {}});
    assert!(rules.validate(&v2, Some(&old)).is_empty());
}

#[test]
fn list_map_items_correlate_by_key_and_other_lists_do_not() {
    let item = json!({"type": "object", "properties": {
        "name": {"type": "string"}, "port": {"type": "integer",
            "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "port is immutable"}]}
    }});
    let schema = json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {
            "ports": {"type": "array", "x-kubernetes-list-type": "map",
                      "x-kubernetes-list-map-keys": ["name"], "items": item}
        }}}
    });
    let rules = CrdRules::compile(&schema, "").unwrap();
    let old = json!({"spec": {"ports": [{"name": "a", "port": 1}, {"name": "b", "port": 2}]}});
    let new = json!({"spec": {"ports": [{"name": "b", "port": 2}, {"name": "a", "port": 9}, {"name": "c", "port": 3}]}});
    assert_eq!(
        messages(&rules.validate(&new, Some(&old))),
        one(
            "spec.ports[1].port",
            "FieldValueInvalid",
            "Invalid value: 9: port is immutable"
        )
    );
    // oldSelf under an atomic list is refused when the CRD is stored.
    let mut atomic = schema.clone();
    atomic["properties"]["spec"]["properties"]["ports"]["x-kubernetes-list-type"] = json!("atomic");
    let causes = match CrdRules::compile(&atomic, "spec.validation.openAPIV3Schema") {
        Err(causes) => causes,
        Ok(_) => panic!("compiled"),
    };
    assert_eq!(
        messages(&causes),
        one(
            "spec.validation.openAPIV3Schema.properties[spec].properties[ports].items.properties[port].x-kubernetes-validations[0].rule",
            "FieldValueInvalid",
            "Invalid value: \"self == oldSelf\": oldSelf cannot be used on the uncorrelatable portion of the schema within spec.validation.openAPIV3Schema.properties[spec].properties[ports]"
        )
    );
}

#[test]
fn unchanged_values_ratchet_non_transition_rules() {
    let rules = CrdRules::compile(
        &widget_schema(json!([{"rule": "self.replicas <= self.maxReplicas"}])),
        "",
    )
    .unwrap();
    let bad = json!({"spec": {"replicas": 5, "maxReplicas": 3}});
    assert!(rules.validate(&bad, Some(&bad)).is_empty());
    let worse = json!({"spec": {"replicas": 6, "maxReplicas": 3}});
    assert_eq!(rules.validate(&worse, Some(&bad)).len(), 1);
}

#[test]
fn compile_errors_name_the_rule_as_upstream() {
    let causes = match CrdRules::compile(
        &widget_schema(
            json!([{"rule": "self.replicas > nope"}, {"rule": ""}, {"rule": "true", "reason": "Bogus"}]),
        ),
        "spec.versions[0].schema.openAPIV3Schema",
    ) {
        Err(causes) => causes,
        Ok(_) => panic!("compiled"),
    };
    let at = "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations";
    assert_eq!(
        messages(&causes),
        vec![
            (
                format!("{at}[0].rule"),
                "FieldValueInvalid".into(),
                "Invalid value: apiextensions.ValidationRule{Rule:\"self.replicas > nope\", Message:\"\", MessageExpression:\"\", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\"\", OptionalOldSelf:(*bool)(nil)}: compilation failed: ERROR: <input>:1:1: undeclared reference to 'nope' (in container '')".into()
            ),
            (
                format!("{at}[1].rule"),
                "FieldValueRequired".into(),
                "Required value: rule is not specified".into()
            ),
            (
                format!("{at}[2].reason"),
                "FieldValueNotSupported".into(),
                "Unsupported value: \"Bogus\": supported values: \"FieldValueDuplicate\", \"FieldValueForbidden\", \"FieldValueInvalid\", \"FieldValueRequired\"".into()
            ),
        ]
    );
}

#[test]
fn property_names_are_escaped_and_metadata_is_name_only() {
    let schema = json!({
        "type": "object",
        "x-kubernetes-validations": [
            {"rule": "self.metadata.name.startsWith('w')"},
            {"rule": "!has(self.metadata.labels)"}
        ],
        "properties": {"spec": {"type": "object",
            "x-kubernetes-validations": [{"rule": "self.max__dash__size > 0 && self.__namespace__ == 'x'"}],
            "properties": {"max-size": {"type": "integer"}, "namespace": {"type": "string"}}}}
    });
    let rules = CrdRules::compile(&schema, "").unwrap();
    let obj = json!({"metadata": {"name": "w1", "labels": {"a": "b"}},
                     "spec": {"max-size": 3, "namespace": "x"}});
    assert_eq!(rules.validate(&obj, None), vec![]);
}

#[test]
fn runtime_errors_and_budget_are_reported_as_upstream() {
    let rules = CrdRules::compile(
        &widget_schema(json!([{"rule": "self.missing > 1"}, {"rule": "self.replicas / 0 > 1"}])),
        "",
    )
    .unwrap();
    assert_eq!(
        messages(&rules.validate(&json!({"spec": {"replicas": 1}}), None)),
        vec![
            (
                "spec".into(),
                "FieldValueInvalid".into(),
                "Invalid value: \"object\": no such key: missing evaluating rule: self.missing > 1".into()
            ),
            (
                "spec".into(),
                "FieldValueInvalid".into(),
                "Invalid value: \"object\": division by zero evaluating rule: self.replicas / 0 > 1".into()
            ),
        ]
    );
    let expensive = "self.items.all(a, self.items.all(b, self.items.all(c, a + b + c >= 0)))";
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
        "x-kubernetes-validations": [{"rule": expensive}],
        "properties": {"items": {"type": "array", "items": {"type": "integer"}}}}}});
    let rules = CrdRules::compile(&schema, "").unwrap();
    let items: Vec<i64> = (0..200).collect();
    let causes = rules.validate(&json!({"spec": {"items": items}}), None);
    assert_eq!(
        messages(&causes),
        one(
            "spec",
            "FieldValueInvalid",
            &format!(
                "Invalid value: \"object\": 'operation cancelled: actual cost limit exceeded': no further validation rules will be run due to call cost exceeds limit for rule: {expensive}"
            )
        )
    );
}

#[test]
fn field_paths_must_name_a_field_of_the_schema() {
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
        "x-kubernetes-validations": [
            {"rule": "true", "fieldPath": ".labels['a.b']"},
            {"rule": "true", "fieldPath": "['replicas']"},
            {"rule": "true", "fieldPath": ".nope"},
            {"rule": "true", "fieldPath": ".labels[0]"}
        ],
        "properties": {"replicas": {"type": "integer"},
                       "labels": {"type": "object", "additionalProperties": {"type": "string"}}}}}});
    let causes = match CrdRules::compile(&schema, "") {
        Err(causes) => causes,
        Ok(_) => panic!("compiled"),
    };
    let at = ".properties[spec].x-kubernetes-validations";
    assert_eq!(
        messages(&causes),
        vec![
            (
                format!("{at}[2].fieldPath"),
                "FieldValueInvalid".into(),
                "Invalid value: \".nope\": fieldPath must be a valid path: does not refer to a valid field".into()
            ),
            (
                format!("{at}[3].fieldPath"),
                "FieldValueInvalid".into(),
                "Invalid value: \".labels[0]\": fieldPath must be a valid path: expected single quoted string but got 0".into()
            ),
        ]
    );
    let schema_ok = {
        let mut s = schema.clone();
        let rules = s["properties"]["spec"]["x-kubernetes-validations"]
            .as_array_mut()
            .unwrap();
        rules.truncate(2);
        rules[0]["rule"] = json!("self.replicas < 3");
        rules[1]["rule"] = json!("self.replicas < 5");
        s
    };
    let rules = CrdRules::compile(&schema_ok, "").unwrap();
    let causes = rules.validate(&json!({"spec": {"replicas": 9, "labels": {}}}), None);
    assert_eq!(causes[0].field, "spec.labels[a.b]");
    assert_eq!(causes[1].field, "spec.replicas");
}

#[test]
fn rules_under_all_of_apply_to_the_value() {
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
        "properties": {"replicas": {"type": "integer"}},
        "allOf": [{"x-kubernetes-validations": [{"rule": "self.replicas < 10", "message": "at most 9"}]}]}}});
    let rules = CrdRules::compile(&schema, "").unwrap();
    assert!(
        rules
            .validate(&json!({"spec": {"replicas": 3}}), None)
            .is_empty()
    );
    assert_eq!(
        messages(&rules.validate(&json!({"spec": {"replicas": 30}}), None)),
        one("spec", "FieldValueInvalid", "Invalid value: at most 9")
    );
}
