//! JSON → protobuf on arbitrary bytes, under strict and warning field validation. What is
//! accepted must decode back to JSON; what strict validation accepts, warning validation
//! must accept with the same bytes and no warnings.

#![no_main]

use kapi_codec::FieldValidation;
use kapi_codec::to_json::envelope_to_json;
use kapi_codec::to_pb::json_to_envelope;
use kapi_codec_fuzz::assert_json;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut strict = Vec::new();
    let strict_ok = json_to_envelope(data, None, FieldValidation::Strict, &mut strict).is_ok();

    let mut warn = Vec::new();
    let warned = json_to_envelope(data, None, FieldValidation::Warn, &mut warn);
    if strict_ok {
        let decoded = warned.as_ref().expect("Strict accepted what Warn refused");
        assert!(
            decoded.warnings.is_empty(),
            "Strict accepted, Warn warned: {decoded:?}"
        );
        assert_eq!(strict, warn, "Strict and Warn wrote different protobuf");
    }

    if warned.is_ok() {
        let mut out = Vec::new();
        if let Err(e) = envelope_to_json(&warn, &mut out) {
            panic!("json_to_envelope wrote protobuf that envelope_to_json refuses: {e}");
        }
        assert_json(&out, "envelope_to_json of json_to_envelope's output");
    }
});
