//! Protobuf → JSON on arbitrary bytes: the input as a `k8s\0` envelope (what etcd stores),
//! and the input after a two-byte kind selector as that kind's message without an envelope
//! (what list items and nested objects are). Output of an Ok decode must be JSON.

#![no_main]

use kapi_codec::Schema;
use kapi_codec::to_json::{PbToJson, envelope_to_json};
use kapi_codec_fuzz::{assert_json, kind_by_selector};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    if envelope_to_json(data, &mut out).is_ok() {
        assert_json(&out, "envelope_to_json");
    }

    if let [a, b, raw @ ..] = data {
        let kind = kind_by_selector([*a, *b]);
        let api_version = kind.api_version();
        out.clear();
        let r = PbToJson::new(Schema::get()).message(
            kind.msg,
            raw,
            2,
            Some((&api_version, &kind.kind)),
            &mut out,
        );
        if r.is_ok() {
            assert_json(&out, "PbToJson::message");
        }
    }
});
