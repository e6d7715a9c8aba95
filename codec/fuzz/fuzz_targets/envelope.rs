//! The framing around objects: `k8s\0` envelopes and length-prefixed protobuf watch frames,
//! on arbitrary bytes. A parsed envelope's `raw` must be where `raw_offset` says; frames are
//! read one after another as a watch client would, each consuming what it claims.

#![no_main]

use kapi_codec::envelope::{Envelope, read_pb_event};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = Envelope::parse(data) {
        let at = env.raw_offset;
        assert_eq!(
            data.get(at..at + env.raw.len()),
            Some(env.raw),
            "raw_offset does not point at raw"
        );
    }

    let mut buf = data;
    while let Ok(Some((_ty, object, used))) = read_pb_event(buf) {
        assert!(
            (4..=buf.len()).contains(&used),
            "a frame consumed {used} of {} bytes",
            buf.len()
        );
        let _ = Envelope::parse(object);
        buf = &buf[used..];
    }
});
