//! The shared write corpus's custom-resource creates (Widgets and Gadgets, see
//! `data/cr-corpus.json` for where they come from): prune, default and validate each request
//! and compare with upstream's answer — the 201 body's content, or the 422's causes (with the
//! generic object-meta rules the custom-resource strategy adds).

use serde_json::Value;

use super::Structural;
use crate::kinds::NameRule;

const CORPUS: &str = include_str!("data/cr-corpus.json");

fn without_metadata(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("metadata");
    }
    v
}

#[test]
fn custom_resource_creates_are_answered_as_upstream() {
    let corpus: Value = serde_json::from_str(CORPUS).expect("fixture parses");
    let cases = corpus["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 20);
    for case in cases {
        let id = case["id"].as_str().unwrap_or("");
        let kind = case["request"]["kind"].as_str().unwrap_or("");
        let schema = Structural::new(&corpus["schemas"][kind]);
        let mut obj = case["request"].clone();
        let unknown = schema.prune(&mut obj);
        schema.apply_defaults(&mut obj);
        let mut causes = crate::kinds::meta::validate(&obj, NameRule::Subdomain);
        causes.extend(schema.validate(&obj));
        match case["code"].as_u64() {
            Some(201) => {
                assert!(unknown.is_empty(), "{id}: {unknown:?}");
                assert!(causes.is_empty(), "{id}: {causes:?}");
                assert_eq!(
                    without_metadata(&obj),
                    without_metadata(&case["response"]),
                    "{id}"
                );
            }
            Some(422) => {
                let got: Vec<(String, String, String)> = causes
                    .into_iter()
                    .map(|c| (c.field, c.reason, c.message))
                    .collect();
                let want: Vec<(String, String, String)> = case["causes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| {
                        let s = |k: &str| c[k].as_str().unwrap_or("").to_string();
                        (s("field"), s("reason"), s("message"))
                    })
                    .collect();
                assert_eq!(got, want, "{id}");
            }
            other => panic!("{id}: unexpected code {other:?}"),
        }
    }
}

#[test]
fn strict_field_validation_sees_the_unknown_fields_of_a_corpus_request() {
    // Not in the corpus (its requests carry no unknown field); what a Strict create would
    // refuse with `unknown field "spec.shape"`.
    let corpus: Value = serde_json::from_str(CORPUS).expect("fixture parses");
    let schema = Structural::new(&corpus["schemas"]["Widget"]);
    let mut obj = serde_json::json!({"apiVersion": "stable.example.com/v1", "kind": "Widget",
        "metadata": {"name": "w1"}, "spec": {"size": 1, "shape": "round"}, "extra": true});
    assert_eq!(schema.prune(&mut obj), vec!["extra", "spec.shape"]);
}
