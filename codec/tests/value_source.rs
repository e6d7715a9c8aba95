//! An object encoded from its decoded `serde_json::Value` (`value_to_envelope`, what the
//! write pipeline stores) gives the bytes, warnings and errors of encoding that value's JSON
//! text (`json_to_envelope`): for every round-trip fixture, under each field-validation mode,
//! and with fields made unknown or of the wrong type.

use kapi_codec::FieldValidation;
use kapi_codec::to_pb::{json_to_envelope, value_to_envelope};
use serde_json::{Value, json};

fn both(v: &Value, validation: FieldValidation) -> (String, String) {
    let text = serde_json::to_vec(v).unwrap();
    let show = |r: Result<kapi_codec::to_pb::Decoded, kapi_codec::CodecError>, out: Vec<u8>| match r
    {
        Ok(d) => format!("{:?} {:?}", out, d.warnings),
        Err(e) => format!("error {e}"),
    };
    let mut a = Vec::new();
    let ra = json_to_envelope(&text, None, validation, &mut a);
    let mut b = Vec::new();
    let rb = value_to_envelope(v, None, validation, &mut b);
    (show(ra, a), show(rb, b))
}

/// Variants of an object: as is, with an unknown field, with its first string field (at any
/// depth of the first object member) made a number, and with a nested value made an array.
fn variants(v: &Value) -> Vec<Value> {
    let mut out = vec![v.clone()];
    let mut unknown = v.clone();
    if let Some(o) = unknown.as_object_mut() {
        o.insert("notAField".into(), json!({"a": [1, "<b>&"]}));
    }
    out.push(unknown);
    for (k, _) in v.as_object().into_iter().flatten() {
        if k == "apiVersion" || k == "kind" {
            continue;
        }
        let mut wrong = v.clone();
        wrong[k] = json!(12.5);
        out.push(wrong);
        let mut arr = v.clone();
        arr[k] = json!([{"x": 1}]);
        out.push(arr);
        if let Some(inner) = v[k].as_object() {
            for (ik, iv) in inner {
                let mut w = v.clone();
                w[k][ik] = match iv {
                    Value::String(_) => json!(7),
                    Value::Number(_) => json!("seven"),
                    _ => json!(true),
                };
                out.push(w);
            }
        }
    }
    out
}

#[test]
fn a_decoded_value_encodes_as_its_json_text_does() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/roundtrip");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        for variant in variants(&v) {
            for mode in [
                FieldValidation::Ignore,
                FieldValidation::Warn,
                FieldValidation::Strict,
            ] {
                let (text, value) = both(&variant, mode);
                assert_eq!(text, value, "{} {mode:?}: {variant}", path.display());
                checked += 1;
            }
        }
    }
    assert!(checked > 1000, "{checked}");
}
