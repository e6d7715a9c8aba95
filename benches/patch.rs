//! Strategic merge patch, the reproduction: a 10,000-container pod patched with one
//! item per container (the image of each, ≈330 KB), parsed, merged by key and serialized,
//! against the baseline of a plain `serde_json::Value` parse + serialize of the same pod in
//! the same run (what any patch costs at least). Also 1,000 containers, to show the growth
//! is linear (a quadratic merge is 100× slower at 10× the items).
//!
//! Run: `cargo bench --bench patch`.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use std::hint::black_box;

use kapi::api::patch::strategic_merge_patch;

/// A pod of `n` containers as kapi serves it after defaulting (≈170 bytes per container).
fn pod(n: usize) -> Vec<u8> {
    let containers: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "name": format!("c{i}"),
                "image": "busybox:1.36",
                "resources": {},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent"
            })
        })
        .collect();
    serde_json::to_vec(&json!({
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": "wide", "namespace": "default", "uid": "0f6d1c1e-4a3a-4f0e-9b8e-1d2f3a4b5c6d",
            "resourceVersion": "42", "creationTimestamp": "2026-12-01T00:00:00Z"},
        "spec": {"containers": containers, "restartPolicy": "Always", "dnsPolicy": "ClusterFirst"},
        "status": {"phase": "Pending", "qosClass": "BestEffort"}
    }))
    .unwrap()
}

/// The patch: every container by name, a new image each.
fn patch(n: usize) -> Vec<u8> {
    let items: Vec<Value> = (0..n)
        .map(|i| json!({"name": format!("c{i}"), "image": "busybox:1.37"}))
        .collect();
    serde_json::to_vec(&json!({"spec": {"containers": items}})).unwrap()
}

fn strategic_merge(c: &mut Criterion) {
    let mut g = c.benchmark_group("strategic_merge");
    g.sample_size(10);
    for n in [1_000, 10_000] {
        let (doc, p) = (pod(n), patch(n));
        g.bench_with_input(
            BenchmarkId::new("baseline_parse_serialize", n),
            &doc,
            |b, doc| {
                b.iter(|| {
                    let v: Value = serde_json::from_slice(doc).unwrap();
                    black_box(serde_json::to_vec(&v).unwrap())
                })
            },
        );
        g.bench_with_input(
            BenchmarkId::new("parse_merge_serialize", n),
            &(doc, p),
            |b, (doc, p)| {
                b.iter(|| {
                    let v: Value = serde_json::from_slice(doc).unwrap();
                    let p: Value = serde_json::from_slice(p).unwrap();
                    let out = strategic_merge_patch(&v, &p).unwrap();
                    black_box(serde_json::to_vec(&out).unwrap())
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, strategic_merge);
criterion_main!(benches);
