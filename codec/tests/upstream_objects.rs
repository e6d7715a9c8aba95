//! Objects a real v1.36 apiserver stored and served (testdata/objects): reading the stored
//! etcd value must give exactly the bytes that server answered with.

use kapi_codec::envelope::{Envelope, write_envelope};
use kapi_codec::meta::set_resource_version;
use kapi_codec::to_json::envelope_to_json;
use kapi_codec::to_pb::json_to_envelope;
use kapi_codec::{FieldValidation, Schema};

const STORED: &[u8] = include_bytes!("../testdata/objects/pod.etcd.bin");
const SERVED_PB: &[u8] = include_bytes!("../testdata/objects/pod.get.pb");
const SERVED_JSON: &[u8] = include_bytes!("../testdata/objects/pod.out.raw.json");

/// The stored value with the resourceVersion the server reported (etcd's mod revision).
fn served_from_stored() -> Vec<u8> {
    let env = Envelope::parse(STORED).unwrap();
    let pod = Schema::get().kind("v1", "Pod").unwrap();
    let mut raw = Vec::new();
    set_resource_version(pod, env.raw, "289", &mut raw).unwrap();
    let mut out = Vec::new();
    write_envelope(env.api_version, env.kind, &raw, &mut out);
    out
}

#[test]
fn stored_pod_with_its_revision_is_the_served_protobuf_byte_for_byte() {
    assert_eq!(served_from_stored(), SERVED_PB);
}

#[test]
fn stored_pod_transcodes_to_the_served_json_byte_for_byte() {
    let mut json = Vec::new();
    envelope_to_json(&served_from_stored(), &mut json).unwrap();
    json.push(b'\n'); // upstream's encoder ends every body with a newline
    assert_eq!(
        String::from_utf8(json).unwrap(),
        String::from_utf8(SERVED_JSON.to_vec()).unwrap()
    );
}

#[test]
fn served_json_encodes_back_to_the_served_protobuf() {
    let mut pb = Vec::new();
    let d = json_to_envelope(SERVED_JSON, None, FieldValidation::Strict, &mut pb).unwrap();
    assert!(d.warnings.is_empty());
    assert_eq!(pb, SERVED_PB);
}

#[test]
fn every_captured_response_object_round_trips_through_protobuf() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/objects");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".out.raw.json") {
            continue;
        }
        let json = std::fs::read(&path).unwrap();
        let mut pb = Vec::new();
        json_to_envelope(&json, None, FieldValidation::Strict, &mut pb)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut back = Vec::new();
        envelope_to_json(&pb, &mut back).unwrap();
        back.push(b'\n');
        assert_eq!(
            String::from_utf8(back).unwrap(),
            String::from_utf8(json).unwrap(),
            "{name}"
        );
        n += 1;
    }
    assert!(n >= 10, "found {n} captured objects");
}
