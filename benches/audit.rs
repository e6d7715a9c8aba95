//! What auditing adds to a request: `Audit::begin`, the authorization note and `finish` around a
//! LIST (a whole response of 100 pods' bytes) and a watch (a streamed body, ended), with no
//! policy (auditing off: the read path's cost must be nil) and with a Metadata policy writing
//! its events to a real file through the writer thread (blocking mode: a writer that falls
//! behind slows the producer, so the figure includes writing; in batch mode, which drops what
//! the writer cannot take, it is the request core's own share). Baselines in the same run: the
//! pipeline's own request parsing (`request::parse` of the same LIST), a cost every request
//! already pays, and the same steps as `no_policy` without the audit hooks.
//!
//! Run: `cargo bench --bench audit`.

use std::hint::black_box;
use std::rc::Rc;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use kapi::api::request::{self, Query};
use kapi::audit::{Audit, Flags};
use kapi::authn::UserInfo;
use kapi::transport::{Body, Peer, Request, RequestTarget, Response};

const LIST_PATH: &str = "/api/v1/namespaces/default/pods";

fn request(path_and_query: &str) -> Request {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::USER_AGENT,
        HeaderValue::from_static("kubectl/v1.36.0 (linux/amd64) kubernetes/abcdef"),
    );
    Request {
        method: Method::GET,
        uri: RequestTarget::parse(path_and_query).expect("a valid target"),
        headers,
        body: Bytes::new(),
        peer: Rc::new(Peer {
            certificates: Vec::new(),
            remote: Some("127.0.0.1:40000".parse().expect("an address")),
            memo: Default::default(),
        }),
        http2: true,
    }
}

fn user() -> UserInfo {
    UserInfo {
        name: "kapi-admin".into(),
        uid: String::new(),
        groups: vec!["system:masters".into(), "system:authenticated".into()],
        extra: Default::default(),
    }
}

fn audited(policy: Option<&std::path::Path>, log: &std::path::Path, mode: &str) -> Audit {
    let flags = Flags {
        audit_policy_file: policy.map(|p| p.to_path_buf()),
        audit_log_path: Some(log.display().to_string()),
        audit_log_mode: mode.into(),
        ..Flags::default()
    };
    Audit::start(&flags).expect("auditing starts")
}

/// One request through the audit hooks as the pipeline calls them.
fn through(audit: &Audit, req: &Request, user: &UserInfo, body: impl FnOnce() -> Body) {
    let query = Query::parse(req.uri.query());
    let target = request::parse(&req.method, req.uri.path(), &query);
    let recorder = audit
        .begin(req, user, target.as_ref(), req.uri.path())
        .ok()
        .flatten();
    let mut recorder = recorder;
    if let Some(r) = recorder.as_mut() {
        r.authorized(true, "");
    }
    let response = Response {
        status: StatusCode::OK,
        headers: HeaderMap::new(),
        body: body(),
    };
    let response = match recorder {
        Some(r) => r.finish(response),
        None => response,
    };
    // The transport is done with it (a stream's observer sends ResponseComplete now).
    black_box(response);
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n",
    )
    .expect("the policy is written");
    let off = audited(None, &dir.path().join("off.log"), "blocking");
    let metadata = audited(Some(&policy), &dir.path().join("audit.log"), "blocking");
    // Batch mode drops what the writer cannot take: the request core's own share.
    let batch = audited(Some(&policy), &dir.path().join("batch.log"), "batch");
    let user = user();
    let list = request(&format!("{LIST_PATH}?limit=500"));
    let watch = request(&format!("{LIST_PATH}?watch=true&resourceVersion=100"));
    let list_body = Bytes::from(vec![7u8; 100 * 3500]);

    let mut g = c.benchmark_group("audit_list");
    g.bench_function("baseline_request_info_parse", |b| {
        b.iter(|| {
            let query = Query::parse(list.uri.query());
            black_box(request::parse(&list.method, list.uri.path(), &query))
        })
    });
    g.bench_function("baseline_same_steps_without_audit_hooks", |b| {
        b.iter(|| {
            let query = Query::parse(list.uri.query());
            black_box(request::parse(&list.method, list.uri.path(), &query));
            black_box(Response {
                status: StatusCode::OK,
                headers: HeaderMap::new(),
                body: Body::Full(list_body.clone()),
            })
        })
    });
    g.bench_function("no_policy", |b| {
        b.iter(|| through(&off, &list, &user, || Body::Full(list_body.clone())))
    });
    g.bench_function("metadata_policy", |b| {
        b.iter(|| through(&metadata, &list, &user, || Body::Full(list_body.clone())))
    });
    g.bench_function("metadata_policy_batch_mode", |b| {
        b.iter(|| through(&batch, &list, &user, || Body::Full(list_body.clone())))
    });
    g.finish();

    let mut g = c.benchmark_group("audit_watch");
    let stream = || {
        let (_tx, rx) = futures::channel::mpsc::channel::<Bytes>(1);
        Body::Stream(rx)
    };
    g.bench_function("no_policy", |b| {
        b.iter(|| through(&off, &watch, &user, stream))
    });
    g.bench_function("metadata_policy", |b| {
        b.iter(|| through(&metadata, &watch, &user, stream))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
