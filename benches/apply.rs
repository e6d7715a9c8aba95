//! Server-side apply of a Deployment (`kapi::ssa::Ownership::apply`: the configuration's field
//! set, the merge by the type model, pruning, the comparison for conflicts, managedFields
//! encoded) beside a strategic merge patch of the same change to the same object in the same
//! run (what a non-apply patch costs), and the managedFields bookkeeping every other write pays
//! (`Ownership::update`). The Deployment has 20 containers with ports, env and probes, and two
//! managers already own parts of it.
//!
//! Run: `cargo bench --bench apply`.

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use std::hint::black_box;

use kapi::api::patch::strategic_merge_patch;
use kapi::ssa::{Model, Ownership, reset_fields};

const CONTAINERS: usize = 20;

fn containers(image: &str) -> Vec<Value> {
    (0..CONTAINERS)
        .map(|i| {
            json!({
                "name": format!("c{i}"),
                "image": image,
                "ports": [{"containerPort": 8000 + i, "protocol": "TCP", "name": format!("p{i}")}],
                "env": [{"name": "MODE", "value": "prod"}, {"name": "INDEX", "value": format!("{i}")}],
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8000 + i}},
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}
            })
        })
        .collect()
}

fn deployment(image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers(image)}}}
    })
}

fn ownership<'a>(model: &'a Model, manager: &'a str) -> Ownership<'a> {
    Ownership {
        model,
        manager,
        api_version: "apps/v1",
        kind: "Deployment",
        subresource: "",
        ignored: reset_fields(true, ""),
        now: "2026-12-01T00:00:00Z".into(),
    }
}

fn apply(c: &mut Criterion) {
    let model = Model::builtin();
    // The live object: applied by "ci", its replicas since changed by an autoscaler.
    let ci = ownership(&model, "ci");
    let mut live = ci.apply(None, &deployment("app:1"), false).unwrap();
    let mut scaled = live.clone();
    scaled["spec"]["replicas"] = json!(5);
    ownership(&model, "autoscaler").update(Some(&live), &mut scaled);
    live = scaled;
    let mut config = deployment("app:2");
    config["spec"].as_object_mut().unwrap().remove("replicas");
    let smp = json!({"spec": {"template": {"spec": {"containers": containers("app:2")}}}});

    let mut g = c.benchmark_group("deployment_change");
    g.bench_function("strategic_merge_patch", |b| {
        b.iter(|| black_box(strategic_merge_patch(&live, &smp).unwrap()))
    });
    g.bench_function("server_side_apply", |b| {
        b.iter(|| black_box(ci.apply(Some(&live), &config, false).unwrap()))
    });
    let patched = strategic_merge_patch(&live, &smp).unwrap();
    g.bench_function("managed_fields_of_an_update", |b| {
        b.iter(|| {
            let mut new = patched.clone();
            ownership(&model, "kubectl-patch").update(Some(&live), &mut new);
            black_box(new)
        })
    });
    g.bench_function("baseline_clone", |b| b.iter(|| black_box(patched.clone())));
    g.finish();
}

criterion_group!(benches, apply);
criterion_main!(benches);
