//! A custom resource of about 5 KB through its structural schema as the custom-resource write
//! path runs it (parse the body → prune → default → validate), against the plain JSON parse of
//! the same bytes — the least any custom-resource write does.
//!
//! Run: `cargo bench --bench structural`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use std::hint::black_box;

use kapi::structural::Structural;

/// A schema with the common shapes: nested objects, a list-map, a set, int-or-string, enums,
/// bounds, patterns, formats and defaults.
fn schema() -> Value {
    json!({"type": "object", "properties": {
        "spec": {"type": "object", "required": ["replicas"], "properties": {
            "replicas": {"type": "integer", "minimum": 0, "maximum": 1000, "default": 1},
            "mode": {"type": "string", "enum": ["Fast", "Safe"], "default": "Safe"},
            "image": {"type": "string", "pattern": "^[a-z0-9./:-]+$", "maxLength": 256},
            "owner": {"type": "string", "format": "uuid"},
            "labels": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 63}},
            "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "ports": {"type": "array", "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"], "maxItems": 64,
                "items": {"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string"},
                    "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                    "target": {"x-kubernetes-int-or-string": true},
                    "protocol": {"type": "string", "enum": ["TCP", "UDP"], "default": "TCP"}
                }}}
        }},
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
    }})
}

/// An instance of about 5 KB with a few unknown fields to prune.
fn body() -> Vec<u8> {
    let ports: Vec<Value> = (0..40)
        .map(|i| json!({"name": format!("port-{i}"), "port": 8000 + i, "target": format!("p{i}"), "extra": i}))
        .collect();
    let labels: serde_json::Map<String, Value> = (0..20)
        .map(|i| {
            (
                format!("example.com/label-{i}"),
                json!(format!("value-{i}")),
            )
        })
        .collect();
    let obj = json!({"apiVersion": "stable.example.com/v1", "kind": "Widget",
        "metadata": {"name": "w1", "namespace": "default"},
        "spec": {"replicas": 3, "image": "registry.example.com/widget:1.2.3",
                 "owner": "8d6c2b0a-7f1e-4c53-9a1b-2f9b8e2d6c10", "labels": labels,
                 "tags": ["a", "b", "c"], "ports": ports, "unknown": {"x": 1}},
        "status": {"observed": 1}});
    serde_json::to_vec(&obj).unwrap()
}

fn structural(c: &mut Criterion) {
    let s = Structural::new(&schema());
    let body = body();
    let mut g = c.benchmark_group("custom_resource_5kb");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("parse_prune_default_validate", |b| {
        b.iter(|| {
            let mut obj: Value = serde_json::from_slice(black_box(&body)).unwrap();
            let unknown = s.prune(&mut obj);
            s.apply_defaults(&mut obj);
            let causes = s.validate(&obj);
            assert!(causes.is_empty());
            black_box(unknown.len())
        })
    });
    g.bench_function("baseline_parse_only", |b| {
        b.iter(|| {
            let obj: Value = serde_json::from_slice(black_box(&body)).unwrap();
            black_box(obj.is_object())
        })
    });
    g.finish();
}

criterion_group!(benches, structural);
criterion_main!(benches);
