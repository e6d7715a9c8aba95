//! Watch-cache hot paths, each against a baseline measured in the same run:
//! - `list_100k_pods`: a LIST response of 100,000 pods (≈3 KB of protobuf each) assembled from
//!   a cache snapshot — protobuf (the stored bytes with the resourceVersion spliced in) and JSON
//!   (the kept JSON of each version) — against a plain copy of the same bytes (memcpy speed)
//!   and against transcoding every item per request (a cache of objects without encodings);
//! - `fan_out_10k_watchers`: one pod update handed to 10,000 watchers by a core's hub —
//!   kubelet-style watches found by the node index (one matches) and unfiltered watches (all
//!   match) — against the same kubelet watches held without the index (a predicate each);
//! - `ingest`: pod updates applied to a cache of 100,000 pods (attributes read, snapshot
//!   published, history kept), in events per second, against the same updates applied to a
//!   `RwLock<BTreeMap>` of the bytes (the first cut's structure).
//!
//! Run: `cargo bench --bench cache`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kapi_cache::{Budget, Cache, Change, EventKind, Filter, Listed, ResourceSpec, pb_extractor};
use kapi_codec::envelope::{Envelope, ListMeta, write_json_list, write_pb_list_with};
use kapi_codec::meta::set_resource_version;
use kapi_codec::to_json::PbToJson;
use kapi_codec::to_pb::json_to_envelope;
use kapi_codec::{FieldValidation, Schema};

const PODS: usize = 100_000;
const NODES: usize = 10_000;

/// A served pod made ≈3 KB of protobuf with an annotation, renamed and bound to a node.
fn pod(i: usize, rev: i64) -> (Bytes, Bytes) {
    static BASE: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    let mut v = BASE
        .get_or_init(|| {
            serde_json::from_slice(include_bytes!("../codec/testdata/objects/pod.out.json"))
                .unwrap()
        })
        .clone();
    let ns = format!("ns-{}", i % 100);
    let name = format!("pod-{i}");
    v["metadata"]["name"] = name.clone().into();
    v["metadata"]["namespace"] = ns.clone().into();
    v["metadata"]["resourceVersion"] = serde_json::Value::Null;
    v["metadata"]["labels"] =
        serde_json::json!({"app": format!("app-{}", i % 50), "rev": rev.to_string()});
    v["metadata"]["annotations"] = serde_json::json!({"note": "x".repeat(1900)});
    v["spec"]["nodeName"] = format!("node-{}", i % NODES).into();
    let mut out = Vec::new();
    json_to_envelope(
        &serde_json::to_vec(&v).unwrap(),
        Some(("v1", "Pod")),
        FieldValidation::Ignore,
        &mut out,
    )
    .unwrap();
    (
        Bytes::from(format!("/registry/pods/{ns}/{name}").into_bytes()),
        Bytes::from(out),
    )
}

fn update(key: &Bytes, value: &Bytes, revision: i64) -> Change {
    Change {
        kind: EventKind::Put,
        key: key.clone(),
        value: value.clone(),
        revision,
        created: false,
    }
}

fn new_cache() -> Arc<Cache> {
    Arc::new(Cache::new(
        vec![ResourceSpec {
            prefix: Bytes::from_static(b"/registry/pods/"),
            namespaced: true,
            extract: pb_extractor("v1", "Pod", Some("spec.nodeName")),
            indexed: true,
        }],
        4 << 30,
    ))
}

fn filled(pods: &[(Bytes, Bytes)]) -> Arc<Cache> {
    let c = new_cache();
    c.reset(
        10 + pods.len() as i64,
        pods.iter().enumerate().map(|(i, (k, v))| Listed {
            key: k.clone(),
            value: v.clone(),
            create_revision: 10 + i as i64,
            mod_revision: 10 + i as i64,
        }),
    );
    c
}

fn served(msg: kapi_codec::schema::MsgId, value: &[u8], rev: i64, out: &mut Vec<u8>) {
    let env = Envelope::parse(value).unwrap();
    set_resource_version(msg, env.raw, &rev.to_string(), out).unwrap();
}

fn list(c: &mut Criterion) {
    let pods: Vec<_> = (0..PODS).map(|i| pod(i, 1)).collect();
    let cache = filled(&pods);
    let msg = Schema::get().kind("v1", "Pod").unwrap();
    let meta_field = kapi_codec::meta::metadata_field(msg).unwrap();
    let rc = cache.resource(b"/registry/pods/").unwrap().clone();
    let budget = Budget::new(4 << 30);
    let to_json = |o: &kapi_cache::Obj| -> Result<Bytes, ()> {
        let mut raw = Vec::new();
        served(msg, &o.value, o.mod_revision, &mut raw);
        let mut json = Vec::new();
        PbToJson::new(Schema::get())
            .message(msg, &raw, 0, None, &mut json)
            .unwrap();
        Ok(Bytes::from(json))
    };
    let meta = ListMeta {
        resource_version: "200000",
        ..Default::default()
    };
    let pb_bytes: usize = pods.iter().map(|(_, v)| v.len()).sum();
    let mut g = c.benchmark_group("list_100k_pods");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(pb_bytes as u64));
    g.bench_function("protobuf_from_snapshot", |b| {
        let mut out = Vec::new();
        b.iter(|| {
            out.clear();
            let snap = rc.snapshot();
            write_pb_list_with::<_, kapi_codec::CodecError>(
                "v1",
                "PodList",
                &meta,
                snap.range(b"/registry/pods/", b""),
                pb_bytes + PODS * 16,
                |o, out| {
                    // As the server does: the splice found at ingest, else a parse.
                    match &o.attrs.splice {
                        Some(plan) => {
                            plan.write(meta_field, &o.value, &o.mod_revision.to_string(), out)
                        }
                        None => served(msg, &o.value, o.mod_revision, out),
                    }
                    Ok(())
                },
                &mut out,
            )
            .unwrap();
            black_box(out.len())
        })
    });
    g.bench_function("baseline_memcpy_of_the_stored_bytes", |b| {
        let mut out = Vec::with_capacity(pb_bytes);
        b.iter(|| {
            out.clear();
            for (_, v) in &pods {
                out.extend_from_slice(v);
            }
            black_box(out.len())
        })
    });
    // Fill the kept JSON once (the first JSON list does this), then assemble.
    let snap = rc.snapshot();
    for o in snap.range(b"/registry/pods/", b"") {
        o.json.get_or_make(1, &budget, || to_json(o)).unwrap();
    }
    let json_bytes: usize = snap
        .range(b"/registry/pods/", b"")
        .map(|o| o.json.kept_len())
        .sum();
    g.throughput(Throughput::Bytes(json_bytes as u64));
    let kept = |o: &kapi_cache::Obj| o.json.get_or_make(1, &budget, || to_json(o)).unwrap();
    let per_request = |o: &kapi_cache::Obj| to_json(o).unwrap();
    type Make<'a> = &'a dyn Fn(&kapi_cache::Obj) -> Bytes;
    let makers: [(&str, Make); 2] = [
        ("json_from_kept_encodings", &kept),
        ("baseline_json_transcoded_per_request", &per_request),
    ];
    for (name, make) in makers {
        g.bench_function(name, |b| {
            let mut out = Vec::new();
            b.iter(|| {
                out.clear();
                let snap = rc.snapshot();
                let items: Vec<Bytes> = snap
                    .range(b"/registry/pods/", b"")
                    .map(|o| make(o))
                    .collect();
                write_json_list("v1", "PodList", &meta, &items, &mut out);
                black_box(out.len())
            })
        });
    }
    g.finish();
}

fn fan_out(c: &mut Criterion) {
    let pods: Vec<_> = (0..NODES).map(|i| pod(i, 1)).collect();
    let mut g = c.benchmark_group("fan_out_10k_watchers");
    g.throughput(Throughput::Elements(1));
    type MakeFilter = fn(usize) -> Filter;
    let setups: [(&str, MakeFilter); 3] = [
        ("kubelets_by_node_index", |n| Filter {
            index: Some(format!("node-{n}").into()),
            ..Filter::default()
        }),
        ("baseline_kubelets_by_predicate_scan", |n| {
            let want = format!("node-{n}");
            Filter {
                pred: Some(Box::new(move |o: &kapi_cache::Obj| {
                    o.attrs.index.as_deref() == Some(want.as_str())
                })),
                ..Filter::default()
            }
        }),
        ("unfiltered_all_match", |_| Filter::default()),
    ];
    for (name, filter) in setups {
        let cache = filled(&pods);
        let hub = cache.attach_core();
        let rc = cache.resource(b"/registry/pods/").unwrap().index;
        let mut watches: Vec<_> = (0..NODES)
            .map(|n| hub.watch(rc, None, filter(n)).unwrap().0)
            .collect();
        let mut rev = cache.revision();
        let mut i = 0usize;
        g.bench_function(name, |b| {
            b.iter(|| {
                rev += 1;
                i = (i + 7919) % NODES;
                let (k, v) = &pods[i];
                cache.apply(vec![update(k, v, rev)]);
                hub.pump();
                // Each receiving watcher takes its event (as its task would).
                let mut got = 0;
                if name == "unfiltered_all_match" {
                    for w in &mut watches {
                        while w.try_next().is_some() {
                            got += 1;
                        }
                    }
                } else {
                    while watches[i].try_next().is_some() {
                        got += 1;
                    }
                }
                black_box(got)
            })
        });
    }
    g.finish();
}

fn ingest(c: &mut Criterion) {
    let pods: Vec<_> = (0..PODS).map(|i| pod(i, 1)).collect();
    let updates: Vec<_> = (0..PODS).step_by(97).map(|i| pod(i, 2)).collect();
    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(updates.len() as u64));
    g.sample_size(20);
    let cache = filled(&pods);
    let mut rev = cache.revision();
    g.bench_function("watch_cache_one_event_per_batch", |b| {
        b.iter(|| {
            for (k, v) in &updates {
                rev += 1;
                cache.apply(vec![update(k, v, rev)]);
            }
        })
    });
    g.bench_function("watch_cache_100_events_per_batch", |b| {
        b.iter(|| {
            for chunk in updates.chunks(100) {
                let batch = chunk
                    .iter()
                    .map(|(k, v)| {
                        rev += 1;
                        update(k, v, rev)
                    })
                    .collect();
                cache.apply(batch);
            }
        })
    });
    let map: RwLock<BTreeMap<Bytes, (Bytes, i64)>> = RwLock::new(
        pods.iter()
            .map(|(k, v)| (k.clone(), (v.clone(), 1)))
            .collect(),
    );
    g.bench_function("baseline_rwlock_btreemap", |b| {
        b.iter(|| {
            for (k, v) in &updates {
                rev += 1;
                map.write().unwrap().insert(k.clone(), (v.clone(), rev));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, list, fan_out, ingest);
criterion_main!(benches);
