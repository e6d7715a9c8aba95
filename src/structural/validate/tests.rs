//! One row per keyword: a schema, an instance, and the causes upstream gives
//! (kube-openapi's texts through apiextensions' conversion to field errors).

use serde_json::{Value, json};

use crate::structural::Structural;

/// (field, reason, message) of each cause of `obj` under `schema`.
fn causes(schema: Value, obj: Value) -> Vec<(String, String, String)> {
    Structural::new(&schema)
        .validate(&obj)
        .into_iter()
        .map(|c| (c.field, c.reason, c.message))
        .collect()
}

/// The causes of `{"spec": {"x": value}}` with `x` under `field_schema`.
fn field(field_schema: Value, value: Value) -> Vec<(String, String, String)> {
    causes(
        json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {"x": field_schema}}}}),
        json!({"spec": {"x": value}}),
    )
}

fn one(field: &str, reason: &str, message: &str) -> Vec<(String, String, String)> {
    vec![(field.into(), reason.into(), message.into())]
}

#[test]
fn type_mismatches_are_type_invalid_with_the_instance_type() {
    assert_eq!(
        field(json!({"type": "integer"}), json!("three")),
        one(
            "spec.x",
            "FieldValueTypeInvalid",
            "Invalid value: \"string\": spec.x in body must be of type integer: \"string\""
        )
    );
    assert_eq!(
        field(json!({"type": "string"}), json!({"a": 1})),
        one(
            "spec.x",
            "FieldValueTypeInvalid",
            "Invalid value: \"object\": spec.x in body must be of type string: \"object\""
        )
    );
    // An integral float is an integer; an integer is a number.
    assert!(field(json!({"type": "integer"}), json!(2.0)).is_empty());
    assert!(field(json!({"type": "number"}), json!(2)).is_empty());
    assert!(field(json!({"type": "boolean"}), json!(true)).is_empty());
}

#[test]
fn null_needs_nullable() {
    assert_eq!(
        field(json!({"type": "string"}), Value::Null),
        one(
            "spec.x",
            "FieldValueTypeInvalid",
            "Invalid value: \"null\": spec.x in body must be of type string: \"null\""
        )
    );
    assert!(field(json!({"type": "string", "nullable": true}), Value::Null).is_empty());
}

#[test]
fn int_or_string_takes_either() {
    let s = json!({"x-kubernetes-int-or-string": true});
    assert!(field(s.clone(), json!(3)).is_empty());
    assert!(field(s.clone(), json!("30%")).is_empty());
    assert_eq!(
        field(s, json!(true)),
        one(
            "spec.x",
            "FieldValueTypeInvalid",
            "Invalid value: \"boolean\": spec.x in body must be of type integer,string: \"boolean\""
        )
    );
}

#[test]
fn formats_are_checked_on_strings() {
    assert_eq!(
        field(json!({"type": "string", "format": "uuid"}), json!("abc")),
        one(
            "spec.x",
            "FieldValueTypeInvalid",
            "Invalid value: \"abc\": spec.x in body must be of type uuid: \"abc\""
        )
    );
    assert_eq!(
        field(
            json!({"type": "string", "format": "date-time"}),
            json!("yesterday")
        ),
        one(
            "spec.x",
            "FieldValueTypeInvalid",
            "Invalid value: \"yesterday\": spec.x in body must be of type date-time: \"yesterday\""
        )
    );
    // Formats CRDs do not support are dropped, as upstream strips them.
    assert!(field(json!({"type": "string", "format": "color"}), json!("red")).is_empty());
}

#[test]
fn enum_is_not_supported_with_the_allowed_values() {
    assert_eq!(
        field(json!({"type": "string", "enum": ["a", "b"]}), json!("c")),
        one(
            "spec.x",
            "FieldValueNotSupported",
            "Unsupported value: \"c\": supported values: \"a\", \"b\""
        )
    );
    assert_eq!(
        field(json!({"type": "integer", "enum": [1, 2]}), json!(3)),
        one(
            "spec.x",
            "FieldValueNotSupported",
            "Unsupported value: 3: supported values: \"1\", \"2\""
        )
    );
    assert!(field(json!({"type": "integer", "enum": [1, 2]}), json!(2)).is_empty());
}

#[test]
fn numeric_bounds_name_the_bound() {
    assert_eq!(
        field(json!({"type": "integer", "minimum": 1}), json!(0)),
        one(
            "spec.x",
            "FieldValueInvalid",
            "Invalid value: 0: spec.x in body should be greater than or equal to 1"
        )
    );
    assert_eq!(
        field(
            json!({"type": "integer", "minimum": 1, "exclusiveMinimum": true}),
            json!(1)
        ),
        one(
            "spec.x",
            "FieldValueInvalid",
            "Invalid value: 1: spec.x in body should be greater than 1"
        )
    );
    assert_eq!(
        field(json!({"type": "integer", "maximum": 10}), json!(11)),
        one(
            "spec.x",
            "FieldValueInvalid",
            "Invalid value: 11: spec.x in body should be less than or equal to 10"
        )
    );
    assert_eq!(
        field(
            json!({"type": "number", "maximum": 1.5, "exclusiveMaximum": true}),
            json!(1.5)
        ),
        one(
            "spec.x",
            "FieldValueInvalid",
            "Invalid value: 1.5: spec.x in body should be less than 1.5"
        )
    );
    assert_eq!(
        field(json!({"type": "integer", "multipleOf": 5}), json!(12)),
        one(
            "spec.x",
            "FieldValueInvalid",
            "Invalid value: 12: spec.x in body should be a multiple of 5"
        )
    );
    assert!(field(json!({"type": "number", "multipleOf": 0.5}), json!(2.5)).is_empty());
}

#[test]
fn int32_range_is_checked() {
    assert_eq!(
        field(
            json!({"type": "integer", "format": "int32"}),
            json!(2147483648_i64)
        ),
        one(
            "",
            "FieldValueInvalid",
            "Invalid value: \"\": Checked value must be of type integer with format int32 in spec.x"
        )
    );
}

#[test]
fn string_lengths_and_pattern() {
    assert_eq!(
        field(json!({"type": "string", "maxLength": 3}), json!("abcd")),
        one(
            "spec.x",
            "FieldValueTooLong",
            "Too long: may not be more than 3 bytes"
        )
    );
    assert_eq!(
        field(json!({"type": "string", "minLength": 2}), json!("a")),
        one(
            "spec.x",
            "FieldValueInvalid",
            "Invalid value: \"a\": spec.x in body should be at least 2 chars long"
        )
    );
    assert_eq!(
        field(
            json!({"type": "string", "pattern": "^[a-z]+$"}),
            json!("A1")
        ),
        one(
            "spec.x",
            "FieldValueInvalid",
            "Invalid value: \"A1\": spec.x in body should match '^[a-z]+$'"
        )
    );
    // Lengths count characters, not bytes.
    assert!(field(json!({"type": "string", "maxLength": 2}), json!("éé")).is_empty());
}

#[test]
fn item_counts_and_uniqueness() {
    assert_eq!(
        field(
            json!({"type": "array", "items": {"type": "integer"}, "minItems": 2}),
            json!([1])
        ),
        one(
            "spec.x",
            "FieldValueInvalid",
            "Invalid value: 1: spec.x in body should have at least 2 items"
        )
    );
    assert_eq!(
        field(
            json!({"type": "array", "items": {"type": "integer"}, "maxItems": 1}),
            json!([1, 2])
        ),
        one(
            "spec.x",
            "FieldValueTooMany",
            "Too many: 2: must have at most 1 item"
        )
    );
    assert_eq!(
        field(
            json!({"type": "array", "items": {"type": "integer"}, "uniqueItems": true}),
            json!([1, 1])
        ),
        one(
            "spec.x",
            "FieldValueInvalid",
            "Invalid value: \"\": spec.x in body shouldn't contain duplicates"
        )
    );
    assert_eq!(
        field(
            json!({"type": "array", "items": {"type": "integer"}}),
            json!([1, "b"])
        ),
        one(
            "spec.x[1]",
            "FieldValueTypeInvalid",
            "Invalid value: \"string\": spec.x[1] in body must be of type integer: \"string\""
        )
    );
}

#[test]
fn property_counts_required_and_additional_properties() {
    assert_eq!(
        field(
            json!({"type": "object", "minProperties": 2}),
            json!({"a": 1})
        ),
        one(
            "spec.x",
            "FieldValueInvalid",
            "Invalid value: 1: spec.x in body should have at least 2 properties"
        )
    );
    assert_eq!(
        field(
            json!({"type": "object", "maxProperties": 1}),
            json!({"a": 1, "b": 2})
        ),
        one(
            "spec.x",
            "FieldValueTooMany",
            "Too many: 2: must have at most 1 item"
        )
    );
    assert_eq!(
        field(
            json!({"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}),
            json!({})
        ),
        one("spec.x.name", "FieldValueRequired", "Required value")
    );
    assert_eq!(
        causes(
            json!({"type": "object", "required": ["spec"], "properties": {"spec": {"type": "object"}}}),
            json!({})
        ),
        one("spec", "FieldValueRequired", "Required value")
    );
    assert_eq!(
        field(
            json!({"type": "object", "additionalProperties": {"type": "integer"}}),
            json!({"a": 1, "b": "two"})
        ),
        one(
            "spec.x.b",
            "FieldValueTypeInvalid",
            "Invalid value: \"string\": spec.x.b in body must be of type integer: \"string\""
        )
    );
    assert_eq!(
        field(
            json!({"type": "object", "additionalProperties": false}),
            json!({"a": 1})
        ),
        one(
            "spec.x",
            "FieldValueInvalid",
            "Invalid value: \"a\": spec.x.a in body is a forbidden property"
        )
    );
}

#[test]
fn compositions_report_at_the_root_with_the_path_quoted() {
    let any_of = json!({"type": "integer", "anyOf": [{"minimum": 5}, {"maximum": 1}]});
    assert!(field(any_of.clone(), json!(6)).is_empty());
    let got = field(any_of, json!(3));
    assert_eq!(
        got[0],
        (
            "".into(),
            "FieldValueInvalid".into(),
            "Invalid value: \"\": \"spec.x\" must validate at least one schema (anyOf)".into()
        )
    );
    assert_eq!(got[1].0, "spec.x");
    let one_of = json!({"type": "integer", "oneOf": [{"minimum": 1}, {"minimum": 2}]});
    assert_eq!(
        field(one_of, json!(3)),
        one(
            "",
            "FieldValueInvalid",
            "Invalid value: \"\": \"spec.x\" must validate one and only one schema (oneOf). Found 2 valid alternatives"
        )
    );
    let all_of = json!({"type": "integer", "allOf": [{"minimum": 5}]});
    assert_eq!(
        field(all_of, json!(3)),
        vec![
            (
                "spec.x".into(),
                "FieldValueInvalid".into(),
                "Invalid value: 3: spec.x in body should be greater than or equal to 5".into()
            ),
            (
                "".into(),
                "FieldValueInvalid".into(),
                "Invalid value: \"\": \"spec.x\" must validate all the schemas (allOf). None validated".into()
            )
        ]
    );
    assert_eq!(
        field(
            json!({"type": "string", "not": {"enum": ["x"]}}),
            json!("x")
        ),
        one(
            "",
            "FieldValueInvalid",
            "Invalid value: \"\": \"spec.x\" must not validate the schema (not)"
        )
    );
}

#[test]
fn list_type_set_and_map_duplicates() {
    assert_eq!(
        field(
            json!({"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}),
            json!(["a", "b", "a", "a"])
        ),
        one("spec.x[2]", "FieldValueDuplicate", "Duplicate value: \"a\"")
    );
    let map = json!({"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
        "items": {"type": "object", "properties": {"name": {"type": "string"}, "v": {"type": "integer"}}}});
    assert_eq!(
        field(
            map.clone(),
            json!([{"name": "a", "v": 1}, {"name": "a", "v": 2}])
        ),
        one(
            "spec.x[1]",
            "FieldValueDuplicate",
            "Duplicate value: {\"name\":\"a\"}"
        )
    );
    assert!(field(map, json!([{"name": "a"}, {"name": "b"}])).is_empty());
}

#[test]
fn embedded_resources_need_type_meta_and_valid_metadata() {
    let s = json!({"type": "object", "x-kubernetes-embedded-resource": true,
                   "x-kubernetes-preserve-unknown-fields": true});
    assert_eq!(
        field(s.clone(), json!({"metadata": {"name": "ok"}})),
        vec![
            (
                "spec.x.apiVersion".into(),
                "FieldValueRequired".into(),
                "Required value".into()
            ),
            (
                "spec.x.kind".into(),
                "FieldValueRequired".into(),
                "Required value".into()
            ),
        ]
    );
    assert_eq!(
        field(s.clone(), json!({"apiVersion": "v1", "kind": "Pod_X"})),
        one(
            "spec.x.kind",
            "FieldValueInvalid",
            "Invalid value: \"Pod_X\": may have mixed case, but should otherwise match: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
        )
    );
    let got = field(
        s,
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": {"bad key!": "v"}}}),
    );
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "spec.x.metadata.labels");
}

#[test]
fn updates_ratchet_unchanged_invalid_values() {
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "a": {"type": "string", "maxLength": 1},
        "b": {"type": "string", "maxLength": 1}
    }}}});
    let s = Structural::new(&schema);
    let old = json!({"spec": {"a": "long", "b": "x"}});
    // `a` was already too long and did not change: no error; `b` changed: its error stands.
    let new = json!({"spec": {"a": "long", "b": "yy"}});
    let got: Vec<String> = s
        .validate_update(&new, &old)
        .into_iter()
        .map(|c| c.field)
        .collect();
    assert_eq!(got, vec!["spec.b"]);
    assert_eq!(s.validate(&new).len(), 2);
}

#[test]
fn deep_instances_and_schemas_do_not_overflow() {
    // A schema nested past the bound, and an instance as deep: no panic, the deep part is kept.
    let mut schema = json!({"type": "object"});
    let mut obj = json!(1);
    for _ in 0..600 {
        schema = json!({"type": "object", "properties": {"a": schema}});
        obj = json!({"a": obj});
    }
    let s = Structural::new(&schema);
    let mut pruned = obj.clone();
    assert!(s.prune(&mut pruned).is_empty());
    let _ = s.validate(&obj);
    s.apply_defaults(&mut pruned);
}

#[test]
fn a_parsed_schema_is_shared_across_cores() {
    fn shareable<T: Send + Sync + 'static>(_: &T) {}
    let s = Structural::new(&json!({"type": "object", "properties": {
        "a": {"type": "string", "pattern": "^a+$"}}}));
    shareable(&s);
    let shared = std::sync::Arc::new(s);
    let other = std::sync::Arc::clone(&shared);
    let from_thread = std::thread::spawn(move || other.validate(&json!({"a": "b"})).len())
        .join()
        .unwrap_or(0);
    assert_eq!(from_thread, 1);
}
