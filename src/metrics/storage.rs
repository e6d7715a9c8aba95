//! Storage metrics, as upstream's etcd3 metrics: the latency, count and failures of each call
//! to the store by operation and by the group and resource its key belongs to, and the number
//! of objects stored per resource. Keys are mapped to resources by their prefix, from the
//! table `set_resources` is given at start.

use std::sync::{LazyLock, OnceLock};
use std::time::Instant;

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
};

use super::{Stability, help, register};

/// Upstream's etcd latency buckets: the same as the request latency's, to compare them.
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];
const LABELS: &[&str] = &["operation", "group", "resource"];

static DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    register(
        HistogramVec::new(
            HistogramOpts::new(
                "etcd_request_duration_seconds",
                help(
                    Stability::Alpha,
                    None,
                    "Etcd request latency in seconds for each operation and object type.",
                ),
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            LABELS,
        )
        .expect("a valid metric"),
    )
});
static COUNT: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new(
                "etcd_requests_total",
                help(
                    Stability::Alpha,
                    None,
                    "Etcd request counts for each operation and object type.",
                ),
            ),
            LABELS,
        )
        .expect("a valid metric"),
    )
});
static ERRORS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new(
                "etcd_request_errors_total",
                help(
                    Stability::Alpha,
                    None,
                    "Etcd failed request counts for each operation and object type.",
                ),
            ),
            LABELS,
        )
        .expect("a valid metric"),
    )
});
static OBJECTS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register(
        IntGaugeVec::new(
            Opts::new(
                "apiserver_storage_objects",
                help(
                    Stability::Stable,
                    Some("1.34.0"),
                    "[DEPRECATED, consider using apiserver_resource_objects instead] Number of stored objects at the time of last check split by kind. In case of a fetching error, the value will be -1.",
                ),
            ),
            &["resource"],
        )
        .expect("a valid metric"),
    )
});
static RESOURCE_OBJECTS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register(
        IntGaugeVec::new(
            Opts::new(
                "apiserver_resource_objects",
                help(
                    Stability::Alpha,
                    None,
                    "Number of stored objects at the time of last check split by kind. In case of a fetching error, the value will be -1.",
                ),
            ),
            &["group", "resource"],
        )
        .expect("a valid metric"),
    )
});

pub(super) fn init() {
    LazyLock::force(&DURATION);
    LazyLock::force(&COUNT);
    LazyLock::force(&ERRORS);
    LazyLock::force(&OBJECTS);
    LazyLock::force(&RESOURCE_OBJECTS);
}

/// A store call, named as upstream's storage names its etcd calls.
#[derive(Clone, Copy, Debug)]
pub enum Operation {
    Get,
    List,
    Create,
    Update,
    Delete,
}

const OPERATIONS: usize = 5;

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Get => "get",
            Operation::List => "list",
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }
}

/// One resource's key prefix and its series, resolved on first use (a resource never written
/// or read shows no series, as upstream).
struct Entry {
    prefix: Vec<u8>,
    group: String,
    resource: String,
    handles: [OnceLock<Handles>; OPERATIONS],
}

struct Handles {
    duration: Histogram,
    count: IntCounter,
    errors: IntCounter,
}

impl Entry {
    fn new(prefix: Vec<u8>, group: String, resource: String) -> Entry {
        Entry {
            prefix,
            group,
            resource,
            handles: Default::default(),
        }
    }

    fn handles(&self, op: Operation) -> &Handles {
        self.handles[op as usize].get_or_init(|| {
            let labels = [op.as_str(), self.group.as_str(), self.resource.as_str()];
            Handles {
                duration: DURATION.with_label_values(&labels),
                count: COUNT.with_label_values(&labels),
                errors: ERRORS.with_label_values(&labels),
            }
        })
    }

    /// Upstream's `GroupResource.String()`: `pods`, `deployments.apps`.
    fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }
}

static RESOURCES: OnceLock<Vec<Entry>> = OnceLock::new();
/// Keys outside every resource (the ingest's list of the whole prefix).
static OTHER: LazyLock<Entry> =
    LazyLock::new(|| Entry::new(Vec::new(), String::new(), String::new()));

/// The resources by full key prefix (`/registry/pods/`), given once at start.
pub fn set_resources(resources: impl IntoIterator<Item = (String, String, String)>) {
    let mut entries: Vec<Entry> = Vec::new();
    for (prefix, group, resource) in resources {
        if entries.iter().any(|e| e.prefix == prefix.as_bytes()) {
            continue;
        }
        entries.push(Entry::new(prefix.into_bytes(), group, resource));
    }
    let _ = RESOURCES.set(entries);
}

fn entry(key: &[u8]) -> &'static Entry {
    RESOURCES
        .get()
        .and_then(|all| {
            all.iter()
                .filter(|e| key.starts_with(&e.prefix))
                .max_by_key(|e| e.prefix.len())
        })
        .unwrap_or(&OTHER)
}

/// Records one store call on `key` that started at `started`.
pub fn observe(op: Operation, key: &[u8], started: Instant, ok: bool) {
    let h = entry(key).handles(op);
    h.duration.observe(started.elapsed().as_secs_f64());
    h.count.inc();
    if !ok {
        h.errors.inc();
    }
}

/// The objects stored under `prefix`, as counted by the cache (which holds all of them).
pub fn set_object_count(prefix: &[u8], count: usize) {
    let e = entry(prefix);
    if e.resource.is_empty() {
        return;
    }
    let count = i64::try_from(count).unwrap_or(i64::MAX);
    OBJECTS.with_label_values(&[&e.group_resource()]).set(count);
    RESOURCE_OBJECTS
        .with_label_values(&[&e.group, &e.resource])
        .set(count);
}

/// The group and resource stored under `prefix`, if it is a resource's.
pub fn group_resource(prefix: &[u8]) -> Option<(&'static str, &'static str)> {
    let e = entry(prefix);
    (!e.resource.is_empty()).then_some((e.group.as_str(), e.resource.as_str()))
}
