//! Upstream's round-trip fixtures (Kubernetes v1.36 `staging/src/k8s.io/api/testdata/HEAD`):
//! for every kind, our YAML of the `.json` object must be the `.yaml` upstream wrote, byte for
//! byte, and reading that `.yaml` must give back the `.json` object.

use std::fs;
use std::path::{Path, PathBuf};

use kapi_codec::yaml::{from_yaml, from_yaml_stream, to_yaml};
use serde_json::Value;

mod common;

/// (name, .json path, .yaml path) of every kind.
fn fixtures() -> Vec<(String, PathBuf, PathBuf)> {
    common::fixtures()
        .into_iter()
        .map(|f| (f.name.clone(), f.path("json"), f.path("yaml")))
        .collect()
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

#[test]
fn to_yaml_writes_exactly_what_upstream_wrote_for_every_kind() {
    let mut failures = Vec::new();
    for (kind, json_path, yaml_path) in fixtures() {
        let expected = fs::read_to_string(&yaml_path).unwrap();
        let got = to_yaml(&json(&json_path));
        if got != expected {
            let line = got
                .lines()
                .zip(expected.lines())
                .position(|(a, b)| a != b)
                .map_or(0, |i| i + 1);
            failures.push(format!("{kind}: first difference at line {line}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} kinds differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn from_yaml_reads_back_the_json_object_for_every_kind() {
    let mut failures = Vec::new();
    for (kind, json_path, yaml_path) in fixtures() {
        let yaml = fs::read(&yaml_path).unwrap();
        match from_yaml(&yaml) {
            Ok(v) if v == json(&json_path) => {}
            Ok(_) => failures.push(format!("{kind}: value differs")),
            Err(e) => failures.push(format!("{kind}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} kinds differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn all_kinds_read_back_as_one_stream() {
    let pairs = fixtures();
    let mut stream = Vec::new();
    for (_, _, yaml_path) in &pairs {
        stream.extend_from_slice(b"---\n");
        stream.extend(fs::read(yaml_path).unwrap());
    }
    let docs = from_yaml_stream(&stream).unwrap();
    assert_eq!(docs.len(), pairs.len());
    for (doc, (kind, json_path, _)) in docs.iter().zip(&pairs) {
        assert_eq!(doc, &json(json_path), "{kind}");
    }
}
