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

/// The served JSON of `pb` (an envelope), trusting its raw JSON fields or not.
fn served_json(pb: &[u8], trusted: bool) -> Vec<u8> {
    let env = kapi_codec::envelope::Envelope::parse(pb).unwrap();
    let schema = kapi_codec::schema::Schema::get();
    let id = schema.kind(env.api_version, env.kind).unwrap();
    let mut out = Vec::new();
    kapi_codec::to_json::PbToJson::served(schema)
        .trusting_raw_json(trusted)
        .message(id, env.raw, 0, Some((env.api_version, env.kind)), &mut out)
        .unwrap();
    out
}

/// What kapi's encoder writes into `FieldsV1` and `RawExtension` fields is already what Go's
/// encoder would print, so copying it into an answer (a write's, `trusting_raw_json`) gives
/// the bytes that compacting it again gives: for every fixture, with raw fields full of
/// spaces and characters Go escapes, and with a create's `fieldsV1` placeholder text.
#[test]
fn raw_json_written_by_kapi_is_served_as_compacting_it_again_would() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/roundtrip");
    let mut checked = 0;
    let managed = |fields: Value| json!([{"manager": "m", "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": fields}]);
    // Placeholders as `kapi::ssa` prints them: each with one character Go escapes, and none.
    let placeholders: Vec<Value> = ["<", ">", "&", "\u{2028}", "\u{2029}", "x"]
        .iter()
        .map(|c| {
            let text = format!(r#"{{"f:data":{{".":{{}},"f:a{c}":{{}}}}}}"#);
            kapi_codec::to_pb::raw_json_placeholder(text)
        })
        .collect();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let mut cases = vec![v.clone()];
        if v.get("metadata").is_some_and(Value::is_object) {
            let spaced = json!({"f:data": {"f:a <b> & \u{2028}": {}, " ": {"k:{\"x\":1}": {}}}});
            for fields in std::iter::once(spaced).chain(placeholders.iter().cloned()) {
                let mut c = v.clone();
                c["metadata"]["managedFields"] = managed(fields);
                cases.push(c);
            }
        }
        for case in cases {
            let mut pb = Vec::new();
            if value_to_envelope(&case, None, FieldValidation::Ignore, &mut pb).is_err() {
                continue;
            }
            assert_eq!(
                String::from_utf8_lossy(&served_json(&pb, true)),
                String::from_utf8_lossy(&served_json(&pb, false)),
                "{}",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(checked > 500, "{checked}");
}
