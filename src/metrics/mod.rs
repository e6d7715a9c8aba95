//! Prometheus metrics with upstream's names, help texts, label names and histogram buckets
//! (k8s.io/apiserver's endpoints, etcd3 and cacher metrics), kept in the `prometheus` crate's
//! default registry, which `/metrics` gathers whoever defined a metric (flow control too).
//!
//! Recorded where the facts are: `request` around `Api::handle` (and the end of a streamed
//! body), `storage` around the store client's calls, `watch_cache` read off the cache when
//! `/metrics` is gathered. Hot paths hold pre-resolved label handles: a watch event is two
//! atomic adds, a store call one histogram observation.

pub mod request;
pub mod storage;
pub mod watch;
pub mod watch_cache;

use prometheus::{Encoder, TextEncoder};

/// The `Content-Type` of `/metrics`, as upstream's (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8; escaping=underscores";

/// How component-base marks a metric's stability in its help text.
#[derive(Clone, Copy)]
pub(crate) enum Stability {
    Alpha,
    Stable,
}

/// `help` as upstream prints it: `[ALPHA] ...`, and `(Deprecated since X) ` before the text of
/// a deprecated metric.
pub(crate) fn help(stability: Stability, deprecated_since: Option<&str>, text: &str) -> String {
    let level = match stability {
        Stability::Alpha => "ALPHA",
        Stability::Stable => "STABLE",
    };
    match deprecated_since {
        Some(v) => format!("[{level}] (Deprecated since {v}) {text}"),
        None => format!("[{level}] {text}"),
    }
}

/// Registers every metric this module defines, so that `/metrics` lists each one from the
/// start (as upstream's registry does), before anything was recorded.
pub fn init() {
    // The process's CPU, memory, file descriptors and start time, under the names Go's
    // client (and so upstream) reports them (`process_resident_memory_bytes`, ...).
    #[cfg(target_os = "linux")]
    {
        let _ = prometheus::register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ));
    }
    request::init();
    storage::init();
    watch_cache::init();
}

/// `/metrics`: the cache's gauges refreshed, then everything in the default registry in the
/// text format.
pub fn encode(cache: &kapi_cache::Cache, etcd_prefix: &str) -> Vec<u8> {
    watch_cache::refresh(cache, etcd_prefix);
    let families = prometheus::gather();
    let mut out = Vec::with_capacity(64 * 1024);
    // Encoding into memory fails only on a metric the library itself rejects: leave it out.
    let _ = TextEncoder::new().encode(&families, &mut out);
    out
}

/// Registers `metric` in the default registry; a second registration of the same name (tests
/// that build two servers in one process) is harmless.
pub(crate) fn register<M: prometheus::core::Collector + Clone + 'static>(metric: M) -> M {
    let _ = prometheus::register(Box::new(metric.clone()));
    metric
}
