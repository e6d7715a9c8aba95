//! Codec hot paths against baselines measured in the same run:
//! - `pb_to_json` / `json_to_pb`: transcoding one pod, against `serde_json::Value` parse +
//!   serialize of the same pod's JSON;
//! - `metadata`: ObjectMeta and selector fields read off the protobuf bytes, against a full
//!   decode (the object transcoded and parsed into a `serde_json::Value`, then read);
//! - `list_assembly`: a 10,000-pod list from encoded items, against a plain copy of the same
//!   bytes (memcpy speed).
//!
//! Run: `cargo bench --bench codec`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

use kapi_codec::envelope::{Envelope, ListMeta, write_json_list, write_pb_list};
use kapi_codec::meta::{meta_from_pb, selectable_fields};
use kapi_codec::to_json::envelope_to_json;
use kapi_codec::to_pb::json_to_envelope;
use kapi_codec::{FieldValidation, Schema};

/// A pod as a v1.36 apiserver served it (1.1 KB of protobuf), and upstream's fully filled
/// round-trip fixture pod (13 KB).
fn pods() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "served-nginx",
            include_bytes!("../codec/testdata/objects/pod.get.pb").to_vec(),
        ),
        (
            "fixture-full",
            include_bytes!("../codec/testdata/roundtrip/core.v1.Pod.pb").to_vec(),
        ),
    ]
}

fn json_of(pb: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    envelope_to_json(pb, &mut out).unwrap();
    out
}

fn transcoding(c: &mut Criterion) {
    for (name, pb) in pods() {
        let json = json_of(&pb);
        let mut g = c.benchmark_group(format!("pb_to_json/{name}"));
        g.throughput(Throughput::Bytes(json.len() as u64));
        g.bench_function("kapi", |b| {
            let mut out = Vec::with_capacity(json.len() * 2);
            b.iter(|| {
                out.clear();
                envelope_to_json(black_box(&pb), &mut out).unwrap();
                black_box(out.len())
            })
        });
        g.bench_function("baseline_serde_value_parse_serialize", |b| {
            b.iter(|| {
                let v: serde_json::Value = serde_json::from_slice(black_box(&json)).unwrap();
                black_box(serde_json::to_vec(&v).unwrap())
            })
        });
        g.finish();

        let mut g = c.benchmark_group(format!("json_to_pb/{name}"));
        g.throughput(Throughput::Bytes(json.len() as u64));
        g.bench_function("kapi", |b| {
            let mut out = Vec::with_capacity(pb.len() * 2);
            b.iter(|| {
                out.clear();
                json_to_envelope(black_box(&json), None, FieldValidation::Warn, &mut out).unwrap();
                black_box(out.len())
            })
        });
        g.bench_function("baseline_serde_value_parse_serialize", |b| {
            b.iter(|| {
                let v: serde_json::Value = serde_json::from_slice(black_box(&json)).unwrap();
                black_box(serde_json::to_vec(&v).unwrap())
            })
        });
        g.finish();
    }
}

fn metadata(c: &mut Criterion) {
    let schema = Schema::get();
    let pod = schema.kind("v1", "Pod").unwrap();
    let fields = selectable_fields("", "Pod");
    for (name, pb) in pods() {
        let mut g = c.benchmark_group(format!("metadata/{name}"));
        g.throughput(Throughput::Bytes(pb.len() as u64));
        g.bench_function("kapi_meta_and_selector_fields", |b| {
            b.iter(|| {
                let env = Envelope::parse(black_box(&pb)).unwrap();
                let m = meta_from_pb(pod, env.raw, env.raw_offset).unwrap();
                let node = fields[0].value(env.raw).unwrap();
                black_box((m.name.len(), m.labels.len(), node.len()))
            })
        });
        g.bench_function("baseline_full_decode", |b| {
            let mut out = Vec::new();
            b.iter(|| {
                out.clear();
                envelope_to_json(black_box(&pb), &mut out).unwrap();
                let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
                let name = v["metadata"]["name"].as_str().map(str::len);
                let node = v["spec"]["nodeName"].as_str().map(str::len);
                black_box((
                    name,
                    v["metadata"]["labels"].as_object().map(|l| l.len()),
                    node,
                ))
            })
        });
        g.finish();
    }
}

fn list_assembly(c: &mut Criterion) {
    const ITEMS: usize = 10_000;
    let (_, pb) = pods().remove(0);
    let env = Envelope::parse(&pb).unwrap();
    let pb_items: Vec<Vec<u8>> = (0..ITEMS).map(|_| env.raw.to_vec()).collect();
    let json = json_of(&pb);
    let json_items: Vec<Vec<u8>> = (0..ITEMS).map(|_| json.clone()).collect();
    let meta = ListMeta {
        resource_version: "123456",
        ..Default::default()
    };
    let mut g = c.benchmark_group("list_assembly_10k_pods");
    g.sample_size(20);
    for (form, items) in [("protobuf", &pb_items), ("json", &json_items)] {
        let total: usize = items.iter().map(Vec::len).sum();
        g.throughput(Throughput::Bytes(total as u64));
        g.bench_function(BenchmarkId::new("kapi", form), |b| {
            let mut out = Vec::with_capacity(total + (1 << 20));
            b.iter(|| {
                out.clear();
                if form == "protobuf" {
                    write_pb_list("v1", "PodList", &meta, items, &mut out).unwrap();
                } else {
                    write_json_list("v1", "PodList", &meta, items, &mut out);
                }
                black_box(out.len())
            })
        });
        g.bench_function(BenchmarkId::new("baseline_memcpy", form), |b| {
            let mut out = Vec::with_capacity(total + (1 << 20));
            b.iter(|| {
                out.clear();
                for i in items.iter() {
                    out.extend_from_slice(i);
                }
                black_box(out.len())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, transcoding, metadata, list_assembly);
criterion_main!(benches);
