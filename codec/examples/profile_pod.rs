//! Transcodes the served nginx pod many times, one direction; for profilers
//! (`valgrind --tool=callgrind target/release/examples/profile_pod to-json|to-pb N`).
fn main() {
    let pb = include_bytes!("../testdata/objects/pod.get.pb");
    let mut json = Vec::new();
    kapi_codec::to_json::envelope_to_json(pb, &mut json).unwrap();
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "to-json".into());
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let mut out = Vec::with_capacity(8192);
    let mut total = 0;
    for _ in 0..n {
        out.clear();
        if dir == "to-pb" {
            kapi_codec::to_pb::json_to_envelope(
                &json,
                None,
                kapi_codec::FieldValidation::Warn,
                &mut out,
            )
            .unwrap();
        } else {
            kapi_codec::to_json::envelope_to_json(pb, &mut out).unwrap();
        }
        total += out.len();
    }
    println!("{total}");
}
