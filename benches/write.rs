//! The write pipeline of one pod, stage by stage as `api::rest::write` runs it for a create
//! (decode the body → defaults → its managedFields (`ssa::Ownership::created` of the defaulted
//! body, as a create records them) → the kind's prepare → defaults → encode for storage →
//! object-meta and pod validation), against the plain transcode of the same JSON to the stored
//! protobuf — the least any write does — and the managedFields step alone, in one walk and
//! through field sets (`Ownership::update`, what creates used before). Admission and the
//! store are left out.
//!
//! Run: `cargo bench --bench write`.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

use kapi::api::objects::encode_owned_for_storage;
use kapi::api::registry::Registry;
use kapi::kinds::meta;
use kapi::ssa::{Model, Ownership, reset_fields};
use kapi_codec::FieldValidation;
use kapi_codec::to_json::envelope_to_json;
use kapi_codec::to_pb::json_to_envelope;

/// kapi-load's pod (three containers with env, probes and mounts: what `loadtest/ab.sh`
/// creates), beside the small nginx pod.
#[path = "../loadtest/src/objects.rs"]
#[allow(dead_code, unused_imports)]
mod load_objects;

/// A pod as a client sends it: the served nginx pod's JSON, less what the server sets.
fn pod_body() -> Vec<u8> {
    let mut json = Vec::new();
    envelope_to_json(
        include_bytes!("../codec/testdata/objects/pod.get.pb"),
        &mut json,
    )
    .unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    if let Some(m) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        for k in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "managedFields",
        ] {
            m.remove(k);
        }
    }
    if let Some(o) = v.as_object_mut() {
        o.remove("status");
    }
    serde_json::to_vec(&v).unwrap()
}

fn write_pipeline(c: &mut Criterion) {
    let load_pod =
        serde_json::to_vec(&load_objects::pod("pod-1", "kapi-load-0", "node-1")).unwrap();
    for (group, body) in [("create_pod", pod_body()), ("create_load_pod", load_pod)] {
        pipeline_of(c, group, &body);
    }
}

/// The stages of one create of `body`, and their baseline, as criterion group `group`.
fn pipeline_of(c: &mut Criterion, group: &str, body: &[u8]) {
    let registry = Registry::builtin();
    let pods = registry.get("", "v1", "pods").unwrap();
    let model = Model::builtin();
    let ownership = Ownership {
        model: &model,
        manager: "kubectl-create",
        api_version: "v1",
        kind: "Pod",
        subresource: "",
        ignored: reset_fields(true, ""),
        now: "2026-12-01T00:00:00Z".into(),
    };
    let set_based = |obj: &serde_json::Value| {
        let mut decoded = obj.clone();
        ownership.update(None, &mut decoded);
        decoded["metadata"]["managedFields"].take()
    };
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("kapi_pipeline", |b| {
        b.iter(|| {
            let mut obj: serde_json::Value = serde_json::from_slice(black_box(body)).unwrap();
            let strategy = &*pods.strategy;
            strategy.default(&mut obj);
            let fields = ownership.created(&obj).unwrap();
            strategy.prepare_for_create(&mut obj);
            obj["metadata"]["managedFields"] = fields;
            strategy.default(&mut obj);
            let (stored, _) =
                encode_owned_for_storage(pods, &mut obj, FieldValidation::Strict).unwrap();
            let mut causes = meta::validate(&obj, strategy.name_rule());
            causes.extend(strategy.validate_create(&obj));
            assert!(causes.is_empty());
            black_box(stored.len())
        })
    });
    let mut defaulted: serde_json::Value = serde_json::from_slice(body).unwrap();
    pods.strategy.default(&mut defaulted);
    let mut created =
        serde_json::json!({"metadata": {"managedFields": ownership.created(&defaulted)}});
    kapi::ssa::materialize(&mut created);
    assert_eq!(created["metadata"]["managedFields"], set_based(&defaulted));
    g.bench_function("managed_fields_only", |b| {
        b.iter(|| black_box(ownership.created(black_box(&defaulted))))
    });
    g.bench_function("managed_fields_through_sets", |b| {
        b.iter(|| black_box(set_based(black_box(&defaulted))))
    });
    // The pipeline's own stages on the load pod: defaults of a decoded body (the first pass)
    // and of a defaulted object (the pass after admission), and the create's validation.
    let decoded: serde_json::Value = serde_json::from_slice(body).unwrap();
    for (name, input) in [
        ("defaults_first_pass", &decoded),
        ("defaults_again", &defaulted),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || input.clone(),
                |mut o| {
                    pods.strategy.default(&mut o);
                    o
                },
                BatchSize::SmallInput,
            )
        });
    }
    let mut prepared = defaulted.clone();
    pods.strategy.prepare_for_create(&mut prepared);
    pods.strategy.default(&mut prepared);
    g.bench_function("validation_only", |b| {
        b.iter(|| {
            let mut causes = meta::validate(black_box(&prepared), pods.strategy.name_rule());
            causes.extend(pods.strategy.validate_create(&prepared));
            black_box(causes.len())
        })
    });
    g.bench_function("baseline_transcode_only", |b| {
        let mut out = Vec::with_capacity(body.len());
        b.iter(|| {
            out.clear();
            json_to_envelope(
                black_box(body),
                Some(("v1", "Pod")),
                FieldValidation::Strict,
                &mut out,
            )
            .unwrap();
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, write_pipeline);
criterion_main!(benches);
