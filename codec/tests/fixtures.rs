//! Upstream's round-trip fixtures: for every kind in `testdata/roundtrip` (no hand-picked
//! subset), the `.json`, `.yaml` and `.pb` forms of one object must agree through this codec.

mod common;

use common::{Fixture, fixtures};
use kapi_codec::envelope::{Envelope, write_envelope};
use kapi_codec::json_read::Doc;
use kapi_codec::json_write::indent;
use kapi_codec::to_json::PbToJson;
use kapi_codec::to_pb::JsonToPb;
use kapi_codec::{FieldValidation, Schema};

fn value(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap()
}

/// The fixture's JSON, as the object upstream would write it back: the fixtures are
/// written from Go structs, so their JSON is already canonical.
fn pb_to_json(f: &Fixture, pb: &[u8]) -> Result<Vec<u8>, String> {
    let schema = Schema::get();
    let env = Envelope::parse(pb).map_err(|e| e.to_string())?;
    let id = schema
        .kind(&f.api_version, &f.kind)
        .ok_or_else(|| format!("no kind {}/{}", f.api_version, f.kind))?;
    let mut out = Vec::new();
    PbToJson::new(schema)
        .message(
            id,
            env.raw,
            env.raw_offset,
            Some((env.api_version, env.kind)),
            &mut out,
        )
        .map_err(|e| e.to_string())?;
    Ok(out)
}

fn json_to_pb(f: &Fixture, json: &[u8]) -> Result<(Vec<u8>, Vec<String>), String> {
    let schema = Schema::get();
    let doc = Doc::parse(json).map_err(|e| e.to_string())?;
    let id = schema.kind(&f.api_version, &f.kind).unwrap();
    let mut enc = JsonToPb::new(schema, &doc, FieldValidation::Strict);
    let mut raw = Vec::new();
    enc.message(id, 0, &mut raw).map_err(|e| e.to_string())?;
    // The envelope carries the fixture's own TypeMeta (empty for WatchEvent).
    let env_pb = f.read("pb");
    let env = Envelope::parse(&env_pb).unwrap();
    let mut out = Vec::new();
    write_envelope(env.api_version, env.kind, &raw, &mut out);
    Ok((out, enc.reports))
}

#[test]
fn protobuf_decodes_to_the_same_object_as_json() {
    let mut failures = Vec::new();
    for f in fixtures() {
        match pb_to_json(&f, &f.read("pb")) {
            Ok(json) => {
                if value(&json) != value(&f.read("json")) {
                    failures.push(format!("{}: decoded object differs", f.name));
                }
            }
            Err(e) => failures.push(format!("{}: {e}", f.name)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn protobuf_decodes_to_upstreams_json_bytes() {
    // Go writes fields in declaration order with its own zero-value rules; the fixture's
    // JSON is that output, indented.
    let mut failures = Vec::new();
    for f in fixtures() {
        let Ok(json) = pb_to_json(&f, &f.read("pb")) else {
            continue; // reported by the test above
        };
        let mut pretty = Vec::new();
        indent(&json, &mut pretty);
        let expected = f.read("json");
        if pretty != expected {
            let at = pretty
                .iter()
                .zip(&expected)
                .position(|(a, b)| a != b)
                .unwrap_or(pretty.len().min(expected.len()));
            let from = at.saturating_sub(80);
            failures.push(format!(
                "{}: first difference at byte {at}:\n  ours:     {:?}\n  upstream: {:?}",
                f.name,
                String::from_utf8_lossy(&pretty[from..(at + 80).min(pretty.len())]),
                String::from_utf8_lossy(&expected[from..(at + 80).min(expected.len())]),
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn json_encodes_to_upstreams_protobuf_bytes() {
    let mut failures = Vec::new();
    for f in fixtures() {
        match json_to_pb(&f, &f.read("json")) {
            Ok((pb, reports)) => {
                if !reports.is_empty() {
                    failures.push(format!("{}: unexpected reports {reports:?}", f.name));
                }
                let expected = f.read("pb");
                if pb != expected {
                    let at = pb
                        .iter()
                        .zip(&expected)
                        .position(|(a, b)| a != b)
                        .unwrap_or(pb.len().min(expected.len()));
                    failures.push(format!(
                        "{}: bytes differ at {at} (ours {} bytes, upstream {})",
                        f.name,
                        pb.len(),
                        expected.len()
                    ));
                }
                match pb_to_json(&f, &pb) {
                    Ok(back) if value(&back) == value(&f.read("json")) => {}
                    Ok(_) => failures.push(format!("{}: JSON→pb→JSON changed the object", f.name)),
                    Err(e) => failures.push(format!("{}: re-decoding: {e}", f.name)),
                }
            }
            Err(e) => failures.push(format!("{}: {e}", f.name)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// `PbToJson::served` writes what upstream's decode-time defaulting adds and protobuf cannot
/// keep: the TypeMeta of a StatefulSet's claim templates; `new` writes only what the bytes say.
#[test]
fn served_statefulsets_carry_their_claim_templates_type_meta() {
    let schema = Schema::get();
    let f = fixtures()
        .into_iter()
        .find(|f| f.api_version == "apps/v1" && f.kind == "StatefulSet")
        .expect("the apps/v1 StatefulSet fixture");
    let pb = f.read("pb");
    let env = Envelope::parse(&pb).unwrap();
    let id = schema.kind("apps/v1", "StatefulSet").unwrap();
    let decode = |enc: PbToJson<'_>| {
        let mut out = Vec::new();
        enc.message(id, env.raw, env.raw_offset, None, &mut out)
            .unwrap();
        value(&out)
    };
    let served = decode(PbToJson::served(schema));
    let plain = decode(PbToJson::new(schema));
    let templates = served["spec"]["volumeClaimTemplates"].as_array().unwrap();
    assert!(!templates.is_empty());
    for t in templates {
        assert_eq!(t["apiVersion"], "v1", "{t}");
        assert_eq!(t["kind"], "PersistentVolumeClaim", "{t}");
    }
    for t in plain["spec"]["volumeClaimTemplates"].as_array().unwrap() {
        assert!(t.get("kind").is_none(), "{t}");
    }
}
