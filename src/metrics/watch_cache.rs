//! Watch cache metrics: upstream's cacher metrics that kapi's cache has the facts for
//! (initializations, resource version, capacity), the stored object counts, and kapi's own
//! cache gauges (`kapi_watch_cache_*`). All are read off the cache when `/metrics` is gathered,
//! so the cache's write path does no metrics work.

use std::sync::LazyLock;

use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts};

use super::{Stability, help, register};

fn gauge_vec(name: &str, help_text: String, labels: &[&str]) -> IntGaugeVec {
    register(IntGaugeVec::new(Opts::new(name, help_text), labels).expect("a valid metric"))
}

static INITIALIZATIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new(
                "apiserver_watch_cache_initializations_total",
                help(
                    Stability::Alpha,
                    None,
                    "Counter of watch cache initializations broken by resource type.",
                ),
            ),
            &["group", "resource"],
        )
        .expect("a valid metric"),
    )
});
static RESOURCE_VERSION: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec(
        "apiserver_watch_cache_resource_version",
        help(
            Stability::Alpha,
            None,
            "Current resource version of watch cache broken by resource type. This is truncated to the 15 least significant digits.",
        ),
        &["group", "resource"],
    )
});
static CAPACITY: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec(
        "watch_cache_capacity",
        help(
            Stability::Alpha,
            None,
            "Total capacity of watch cache broken by resource type.",
        ),
        &["group", "resource"],
    )
});

/// kapi's own gauges, per resource.
struct Own {
    objects: IntGaugeVec,
    stored_bytes: IntGaugeVec,
    object_bytes: IntGaugeVec,
    encoded_bytes: IntGaugeVec,
    history_events: IntGaugeVec,
    watchers: IntGauge,
    revision: IntGauge,
    budget: IntGaugeVec,
}

static OWN: LazyLock<Own> = LazyLock::new(|| {
    let per_resource = |name: &str, text: &str| {
        gauge_vec(
            &format!("kapi_watch_cache_{name}"),
            text.to_string(),
            &["resource"],
        )
    };
    let single = |name: &str, text: &str| {
        register(IntGauge::new(format!("kapi_watch_cache_{name}"), text).expect("a valid metric"))
    };
    Own {
        objects: per_resource("objects", "Objects in the watch cache."),
        stored_bytes: per_resource(
            "stored_bytes",
            "Stored (protobuf or JSON) bytes of the cached objects.",
        ),
        object_bytes: per_resource(
            "object_bytes",
            "Bytes the cached objects hold: stored bytes, kept encodings, attributes, map entries.",
        ),
        encoded_bytes: per_resource(
            "encoded_bytes",
            "Bytes of encodings kept with the cached objects.",
        ),
        history_events: per_resource("history_events", "Events in the watch cache's history."),
        watchers: single("watchers", "Watches open."),
        revision: single("revision", "The revision the watch cache has reached."),
        budget: gauge_vec(
            "kapi_watch_cache_encoded_budget_bytes",
            "Bytes of kept encodings, and the cap (--cache-encoded-bytes).".into(),
            &["kind"],
        ),
    }
});

pub(super) fn init() {
    LazyLock::force(&INITIALIZATIONS);
    LazyLock::force(&RESOURCE_VERSION);
    LazyLock::force(&CAPACITY);
    LazyLock::force(&OWN);
}

fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Reads the cache's facts into the gauges; `etcd_prefix` (`/registry/`) is cut off the key
/// prefixes to name kapi's own per-resource series, as before.
pub fn refresh(cache: &kapi_cache::Cache, etcd_prefix: &str) {
    let own = &*OWN;
    // Upstream truncates to the 15 least significant digits (a float keeps 53 bits).
    let revision = cache.revision() % 1_000_000_000_000_000;
    let epoch = cache.epoch();
    for rc in cache.resources() {
        let stats = rc.stats();
        super::storage::set_object_count(&rc.prefix, stats.objects);
        if let Some((group, resource)) = super::storage::group_resource(&rc.prefix) {
            let labels = [group, resource];
            RESOURCE_VERSION.with_label_values(&labels).set(revision);
            CAPACITY
                .with_label_values(&labels)
                .set(gauge(kapi_cache::HISTORY_MAX_EVENTS));
            let inits = INITIALIZATIONS.with_label_values(&labels);
            if epoch > inits.get() {
                inits.inc_by(epoch - inits.get());
            }
        }
        if stats.objects == 0 && stats.history_events == 0 {
            continue;
        }
        let name = String::from_utf8_lossy(rc.prefix.get(etcd_prefix.len()..).unwrap_or(&[]))
            .trim_end_matches('/')
            .to_string();
        let labels = [name.as_str()];
        own.objects
            .with_label_values(&labels)
            .set(gauge(stats.objects));
        own.stored_bytes
            .with_label_values(&labels)
            .set(gauge(stats.stored_bytes));
        own.object_bytes
            .with_label_values(&labels)
            .set(gauge(stats.object_bytes));
        own.encoded_bytes
            .with_label_values(&labels)
            .set(gauge(stats.encoded_bytes));
        own.history_events
            .with_label_values(&labels)
            .set(gauge(stats.history_events));
    }
    own.watchers.set(gauge(cache.watcher_count()));
    own.revision.set(cache.revision());
    own.budget
        .with_label_values(&["used"])
        .set(gauge(cache.budget.used()));
    own.budget
        .with_label_values(&["cap"])
        .set(gauge(cache.budget.cap()));
}
