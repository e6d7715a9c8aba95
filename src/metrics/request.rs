//! Request metrics, as upstream's endpoints/metrics: totals, durations (and the SLI duration),
//! response sizes, requests in flight and long-running requests. A `Tracker` opens when
//! `Api::handle` starts and records when the response ends: at once for a whole body, when the
//! transport is done with it for a streamed list or a watch.

use std::cell::Cell;
use std::sync::LazyLock;
use std::time::Instant;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts};

use super::{Stability, help, register};
use crate::transport::{Body, Response, StreamObserver};

/// The `component` label of the requests kapi serves (upstream's `APIServerComponent`).
const COMPONENT: &str = "apiserver";

/// Upstream's request latency buckets (seconds), chosen for the latency SLOs.
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];
/// Upstream's SLI latency buckets: the same without the two smallest.
const SLI_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0,
    30.0, 45.0, 60.0,
];

const FULL_LABELS: &[&str] = &[
    "verb",
    "dry_run",
    "group",
    "version",
    "resource",
    "subresource",
    "scope",
    "component",
];
const LABELS: &[&str] = &[
    "verb",
    "group",
    "version",
    "resource",
    "subresource",
    "scope",
    "component",
];

static REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let mut labels = FULL_LABELS.to_vec();
    labels.push("code");
    register(
        IntCounterVec::new(
            Opts::new(
                "apiserver_request_total",
                help(
                    Stability::Stable,
                    None,
                    "Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.",
                ),
            ),
            &labels,
        )
        .expect("a valid metric"),
    )
});

static DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    register(
        HistogramVec::new(
            HistogramOpts::new(
                "apiserver_request_duration_seconds",
                help(
                    Stability::Stable,
                    None,
                    "Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component.",
                ),
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            FULL_LABELS,
        )
        .expect("a valid metric"),
    )
});

static SLI_DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    register(
        HistogramVec::new(
            HistogramOpts::new(
                "apiserver_request_sli_duration_seconds",
                help(
                    Stability::Alpha,
                    None,
                    "Response latency distribution (not counting webhook duration and priority & fairness queue wait times) in seconds for each verb, group, version, resource, subresource, scope and component.",
                ),
            )
            .buckets(SLI_BUCKETS.to_vec()),
            LABELS,
        )
        .expect("a valid metric"),
    )
});

static RESPONSE_SIZES: LazyLock<HistogramVec> = LazyLock::new(|| {
    register(
        HistogramVec::new(
            HistogramOpts::new(
                "apiserver_response_sizes",
                help(
                    Stability::Stable,
                    None,
                    "Response size distribution in bytes for each group, version, verb, resource, subresource, scope and component.",
                ),
            )
            // 1 KB to 1 GB, by tens.
            .buckets(prometheus::exponential_buckets(1000.0, 10.0, 7).unwrap_or_default()),
            LABELS,
        )
        .expect("a valid metric"),
    )
});

static INFLIGHT: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register(
        IntGaugeVec::new(
            Opts::new(
                "apiserver_current_inflight_requests",
                help(
                    Stability::Stable,
                    None,
                    "Maximal number of currently used inflight request limit of this apiserver per request kind in last second.",
                ),
            ),
            &["request_kind"],
        )
        .expect("a valid metric"),
    )
});
static INFLIGHT_READ_ONLY: LazyLock<IntGauge> =
    LazyLock::new(|| INFLIGHT.with_label_values(&["readOnly"]));
static INFLIGHT_MUTATING: LazyLock<IntGauge> =
    LazyLock::new(|| INFLIGHT.with_label_values(&["mutating"]));

static LONG_RUNNING: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register(
        IntGaugeVec::new(
            Opts::new(
                "apiserver_longrunning_requests",
                help(
                    Stability::Stable,
                    None,
                    "Gauge of all active long-running apiserver requests broken out by verb, group, version, resource, scope and component. Not all requests are tracked this way.",
                ),
            ),
            LABELS,
        )
        .expect("a valid metric"),
    )
});

/// Forgets every request series (counts and histograms). The fuzzing harness calls it now and
/// then: millions of made-up requests touch every resource, verb and code, and a scrape's cost
/// grows with the series; a running server's series are bounded by what its clients do.
#[cfg(any(test, feature = "fuzzing"))]
pub fn forget_series() {
    REQUESTS.reset();
    DURATION.reset();
    SLI_DURATION.reset();
    RESPONSE_SIZES.reset();
}

pub(super) fn init() {
    LazyLock::force(&REQUESTS);
    LazyLock::force(&DURATION);
    LazyLock::force(&SLI_DURATION);
    LazyLock::force(&RESPONSE_SIZES);
    LazyLock::force(&INFLIGHT_READ_ONLY);
    LazyLock::force(&INFLIGHT_MUTATING);
    LazyLock::force(&LONG_RUNNING);
    super::watch::init();
}

/// What a request addressed, as the metrics label it.
pub enum Target<'a> {
    /// A request for a resource (upstream's `RequestInfo` with `IsResourceRequest`).
    Resource {
        group: &'a str,
        version: &'a str,
        resource: &'a str,
        subresource: Option<&'a str>,
        namespace: Option<&'a str>,
        name: Option<&'a str>,
        /// A watch by its path (`/watch/...`) or by `?watch=`.
        watch: bool,
        /// A create (POST to a collection): upstream scopes it as `resource`.
        create: bool,
    },
    /// `/healthz`, `/livez`, `/readyz` and their checks: instrumented by path as upstream.
    Health { path: &'a str },
}

/// The request as its metrics label it.
pub struct RequestInfo<'a> {
    pub method: &'a http::Method,
    pub query: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub target: Target<'a>,
}

/// One request being served, from `Api::handle` to the end of its response.
pub struct Tracker {
    started: Instant,
    /// verb, dry_run, group, version, resource, subresource, scope, component.
    labels: [String; 8],
    /// Whether its response size counts (upstream: reads only).
    read: bool,
    state: Open,
    /// The shutdown drain's count of this request, released with it.
    _drain: Option<crate::shutdown::InFlight>,
}

/// What a request counts as while it is open.
enum Open {
    InFlight(IntGauge),
    LongRunning(IntGauge),
}

impl Tracker {
    pub fn begin(info: &RequestInfo<'_>) -> Tracker {
        let (verb, scope, group, version, resource, subresource, component, watch) =
            match &info.target {
                Target::Resource {
                    group,
                    version,
                    resource,
                    subresource,
                    namespace,
                    name,
                    watch,
                    create,
                } => {
                    let scope = if name.is_some_and(|n| !n.is_empty()) || *create {
                        "resource"
                    } else if namespace.is_some_and(|n| !n.is_empty()) {
                        "namespace"
                    } else {
                        "cluster"
                    };
                    let verb = clean_verb(info, scope, *watch, *subresource);
                    (
                        verb,
                        scope,
                        *group,
                        *version,
                        *resource,
                        subresource.unwrap_or(""),
                        COMPONENT,
                        *watch,
                    )
                }
                Target::Health { path } => (
                    clean_verb(info, "", false, None),
                    "",
                    "",
                    "",
                    "",
                    *path,
                    "",
                    false,
                ),
            };
        let labels = [
            verb.to_string(),
            dry_run(info.query),
            group.to_string(),
            version.to_string(),
            resource.to_string(),
            subresource.to_string(),
            scope.to_string(),
            component.to_string(),
        ];
        let state = if watch {
            Open::LongRunning(LONG_RUNNING.with_label_values(&short(&labels)))
        } else if matches!(verb, "GET" | "LIST" | "WATCH") {
            Open::InFlight(INFLIGHT_READ_ONLY.clone())
        } else {
            Open::InFlight(INFLIGHT_MUTATING.clone())
        };
        match &state {
            Open::InFlight(g) | Open::LongRunning(g) => g.inc(),
        }
        Tracker {
            started: Instant::now(),
            read: matches!(verb, "GET" | "LIST" | "WATCH"),
            labels,
            state,
            _drain: None,
        }
    }

    /// Holds the shutdown drain's count of this request until its response has ended.
    pub fn with_drain(mut self, drain: crate::shutdown::InFlight) -> Tracker {
        self._drain = Some(drain);
        self
    }

    /// Whether the request is long-running (a watch): not counted in flight, and not drained
    /// at shutdown but ended.
    pub fn long_running(&self) -> bool {
        matches!(self.state, Open::LongRunning(_))
    }

    /// Records a whole response now; a streamed one when the transport is done with it
    /// (`watch` counts each chunk of a watch as one event).
    pub fn finish(
        self,
        mut response: Response,
        watch: Option<super::watch::WatchEvents>,
    ) -> Response {
        let code = response.status.as_u16();
        match response.body {
            Body::Full(ref body) => self.record(code, body.len()),
            Body::Stream(chunks) => {
                let end = StreamEnd {
                    tracker: Some(self),
                    code,
                    bytes: Cell::new(0),
                    watch,
                };
                response.body = Body::Observed(chunks, Box::new(end));
            }
            Body::Observed(..) => {}
            Body::Tunnel(..) => self.record(code, 0),
        }
        response
    }

    fn record(&self, code: u16, bytes: usize) {
        let code = code.to_string();
        let l = &self.labels;
        let full: [&str; 8] = [&l[0], &l[1], &l[2], &l[3], &l[4], &l[5], &l[6], &l[7]];
        let mut with_code = [""; 9];
        with_code[..8].copy_from_slice(&full);
        with_code[8] = &code;
        REQUESTS.with_label_values(&with_code).inc();
        let secs = self.started.elapsed().as_secs_f64();
        DURATION.with_label_values(&full).observe(secs);
        let short = short(l);
        // No admission webhooks, and flow control's queue wait is not subtracted yet.
        SLI_DURATION.with_label_values(&short).observe(secs);
        if self.read {
            RESPONSE_SIZES
                .with_label_values(&short)
                .observe(bytes as f64);
        }
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        match &self.state {
            Open::InFlight(g) | Open::LongRunning(g) => g.dec(),
        }
    }
}

/// The labels without `dry_run`.
fn short(l: &[String; 8]) -> [&str; 7] {
    [&l[0], &l[2], &l[3], &l[4], &l[5], &l[6], &l[7]]
}

/// A streamed body's end: the transport reports each chunk it writes, and drops this when the
/// stream ends (finished, the client left, or the server shut it down).
struct StreamEnd {
    tracker: Option<Tracker>,
    code: u16,
    bytes: Cell<usize>,
    watch: Option<super::watch::WatchEvents>,
}

impl StreamObserver for StreamEnd {
    fn long_running(&self) -> bool {
        self.tracker.as_ref().is_some_and(Tracker::long_running)
    }

    fn chunk(&self, len: usize) {
        self.bytes.set(self.bytes.get() + len);
        if let Some(w) = &self.watch {
            w.record(len);
        }
    }
}

impl Drop for StreamEnd {
    fn drop(&mut self) {
        if let Some(t) = self.tracker.take() {
            t.record(self.code, self.bytes.get());
        }
    }
}

/// The verb as upstream reports it (`CleanVerb`): the HTTP method upper-cased, a GET of a
/// collection as LIST, a watch as WATCH, a PATCH with an apply patch as APPLY, any other method
/// as `other`.
fn clean_verb(
    info: &RequestInfo<'_>,
    scope: &str,
    watch: bool,
    subresource: Option<&str>,
) -> &'static str {
    use http::Method;
    let m = info.method;
    let verb = if *m == Method::GET || *m == Method::HEAD {
        if watch {
            "WATCH"
        } else if scope != "resource" && !scope.is_empty() {
            "LIST"
        } else {
            "GET"
        }
    } else if *m == Method::POST {
        "POST"
    } else if *m == Method::PUT {
        "PUT"
    } else if *m == Method::PATCH {
        if info.content_type == Some("application/apply-patch+yaml") {
            "APPLY"
        } else {
            "PATCH"
        }
    } else if *m == Method::DELETE {
        "DELETE"
    } else if *m == Method::CONNECT {
        "CONNECT"
    } else {
        "other"
    };
    match subresource {
        Some("log" | "exec" | "portforward" | "attach" | "proxy") => "CONNECT",
        _ => verb,
    }
}

/// The `dry_run` label: empty without `dryRun`, `invalid` for any value but `All`, else the
/// distinct values sorted and joined (upstream's `cleanDryRun`).
fn dry_run(query: Option<&str>) -> String {
    let Some(q) = query.filter(|q| q.contains("dryRun")) else {
        return String::new();
    };
    let mut values: Vec<String> = form_urlencoded::parse(q.as_bytes())
        .filter(|(k, _)| k == "dryRun")
        .map(|(_, v)| v.into_owned())
        .collect();
    if values.iter().any(|v| v != "All") {
        return "invalid".into();
    }
    values.sort();
    values.dedup();
    values.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(method: &http::Method, name: Option<&str>, watch: bool) -> Tracker {
        Tracker::begin(&RequestInfo {
            method,
            query: None,
            content_type: None,
            target: Target::Resource {
                group: "apps",
                version: "v1",
                resource: "deployments",
                subresource: None,
                namespace: Some("default"),
                name,
                watch,
                create: false,
            },
        })
    }

    #[test]
    fn a_collection_get_is_a_list_and_a_named_get_a_get() {
        assert_eq!(resource(&http::Method::GET, None, false).labels[0], "LIST");
        assert_eq!(
            resource(&http::Method::GET, None, false).labels[6],
            "namespace"
        );
        let named = resource(&http::Method::GET, Some("web"), false);
        assert_eq!(
            (named.labels[0].as_str(), named.labels[6].as_str()),
            ("GET", "resource")
        );
        let watch = resource(&http::Method::GET, None, true);
        assert_eq!(watch.labels[0], "WATCH");
        assert!(watch.long_running());
    }

    #[test]
    fn dry_run_is_cleaned_as_upstream() {
        assert_eq!(dry_run(None), "");
        assert_eq!(dry_run(Some("dryRun=All&dryRun=All")), "All");
        assert_eq!(dry_run(Some("dryRun=Some")), "invalid");
    }
}
