//! The fuzz target's checks in the normal test suite, bounded in count: the seeds taken from
//! upstream's captured requests, the regressions the fuzzer found, and seeded generated inputs.

use std::path::{Path, PathBuf};

use super::*;

/// Generated inputs per run: about 15 s of a debug build on a shared machine.
const GENERATED: u64 = 3_000;
/// Mutated seeds per run (bytes changed in a captured request).
const MUTATED: u64 = 1_000;

fn harness() -> (tempfile::TempDir, Harness) {
    let dir = tempfile::tempdir().expect("temp dir");
    let h = Harness::new(dir.path()).expect("harness");
    (dir, h)
}

fn fuzz_dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(sub)
}

/// The files of a `fuzz/` directory, sorted, with their names.
fn inputs(sub: &str) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(fuzz_dir(sub))
        .expect("fuzz directory")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "http"))
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).expect("input"))
        })
        .collect();
    out.sort();
    out
}

/// splitmix64: a seed reproduces a run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn serve_and_check(h: &mut Harness, what: &str, raw: &RawRequest) -> Option<Outcome> {
    let out = h.serve(raw)?;
    if let Err(e) = check(raw, &out) {
        panic!(
            "{what}: {e}\n--- request ---\n{}",
            String::from_utf8_lossy(&raw.to_text())
        );
    }
    Some(out)
}

#[test]
fn captured_requests_are_served_with_upstream_shapes() {
    let (_dir, mut h) = harness();
    let seeds = inputs("seeds");
    assert!(seeds.len() >= 40, "only {} seeds", seeds.len());
    let mut served = 0;
    for (name, data) in &seeds {
        let raw = h.model().request(data);
        if serve_and_check(&mut h, name, &raw).is_some() {
            served += 1;
        }
    }
    assert_eq!(served, seeds.len(), "every seed reaches the handler");
    // The seeds are a working session: the object the first ones create can be read back.
    let get = RawRequest::parse_text(b"GET /api/v1/namespaces/default/configmaps/cfg HTTP/2\n\n");
    let out = h.serve(&get).expect("served");
    assert_eq!(
        out.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&out.body)
    );
}

#[test]
fn fuzzer_findings_stay_fixed() {
    let (_dir, mut h) = harness();
    for (name, data) in inputs("regressions") {
        let raw = h.model().request(&data);
        serve_and_check(&mut h, &name, &raw);
    }
}

#[test]
fn generated_requests_never_panic_and_errors_are_status_objects() {
    let (_dir, mut h) = harness();
    let mut rng = Rng(0x6b61_7069);
    let seeds: Vec<Vec<u8>> = inputs("seeds").into_iter().map(|(_, d)| d).collect();
    let mut codes = std::collections::BTreeMap::<u16, u64>::new();
    let mut count = |out: Option<Outcome>| {
        if let Some(out) = out {
            *codes.entry(out.status.as_u16()).or_default() += 1;
        }
    };
    for i in 0..GENERATED {
        let len = 16 + (rng.next() % 512) as usize;
        let mut data = rng.bytes(len);
        data[0] = 0; // the structured form
        let raw = h.model().request(&data);
        count(serve_and_check(&mut h, &format!("generated #{i}"), &raw));
    }
    for i in 0..MUTATED {
        let mut data = seeds[(rng.next() % seeds.len() as u64) as usize].clone();
        for _ in 0..1 + rng.next() % 4 {
            let at = (rng.next() % data.len() as u64) as usize;
            data[at] = rng.next() as u8;
        }
        let raw = h.model().request(&data);
        count(serve_and_check(&mut h, &format!("mutated #{i}"), &raw));
    }
    // The model reaches past the first checks: successes, client errors and writes alike.
    for code in [200, 201, 400, 404, 415, 422] {
        assert!(codes.contains_key(&code), "no {code} among {codes:?}");
    }
    eprintln!("status codes: {codes:?}");
}

#[test]
fn text_form_reads_back_what_it_writes() {
    let raw = RawRequest {
        method: "PATCH".into(),
        target: "/api/v1/namespaces/default/configmaps/cfg?fieldManager=x".into(),
        headers: vec![("content-type".into(), "application/apply-patch+yaml".into())],
        body: b"a: 1\n\nb: 2\n".to_vec(),
        user: User::Named {
            name: "alice".into(),
            groups: vec!["g1".into(), "g2".into()],
        },
        http2: false,
    };
    assert_eq!(RawRequest::parse_text(&raw.to_text()), raw);
}
