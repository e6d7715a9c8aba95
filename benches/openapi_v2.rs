//! The OpenAPI v2 document's protobuf form (`api::openapi_v2::v2_protobuf`), built once per
//! document version (at start, and by the lead's registry whenever a CRD changes the document):
//! the 1.36 built-in document (≈3.7 MB of JSON) converted, against the baseline of a plain
//! `serde_json::Value` parse of the same bytes in the same run.
//!
//! Run: `cargo bench --bench openapi_v2`.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

use kapi::api::{openapi, openapi_v2};

fn bench(c: &mut Criterion) {
    let Some(doc) = openapi::v2() else {
        return;
    };
    let json = &doc.body;
    let mut g = c.benchmark_group("openapi_v2");
    g.sample_size(10);
    g.bench_function("baseline: serde_json parse", |b| {
        b.iter(|| black_box(serde_json::from_slice::<serde_json::Value>(json).ok()))
    });
    g.bench_function("v2_protobuf", |b| {
        b.iter(|| black_box(openapi_v2::v2_protobuf(json)))
    });
    g.bench_function("etag (sha512)", |b| {
        b.iter(|| black_box(openapi_v2::etag(json)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
