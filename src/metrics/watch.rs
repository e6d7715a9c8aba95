//! Watch event metrics, as upstream's: every event sent to a watch client is counted and its
//! size observed, by the watched group, version and resource. Hot path (one call per event per
//! watcher): the handles are resolved once per watch, so an event costs two atomic updates.

use std::sync::LazyLock;

use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts};

use super::{Stability, help, register};

const LABELS: &[&str] = &["group", "version", "resource"];

static EVENTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new(
                "apiserver_watch_events_total",
                help(
                    Stability::Alpha,
                    None,
                    "Number of events sent in watch clients",
                ),
            ),
            LABELS,
        )
        .expect("a valid metric"),
    )
});

static EVENT_SIZES: LazyLock<HistogramVec> = LazyLock::new(|| {
    register(
        HistogramVec::new(
            HistogramOpts::new(
                "apiserver_watch_events_sizes",
                help(
                    Stability::Alpha,
                    None,
                    "Watch event size distribution in bytes",
                ),
            )
            // 1 KiB to 128 KiB, by doubling.
            .buckets(prometheus::exponential_buckets(1024.0, 2.0, 8).unwrap_or_default()),
            LABELS,
        )
        .expect("a valid metric"),
    )
});

pub(super) fn init() {
    LazyLock::force(&EVENTS);
    LazyLock::force(&EVENT_SIZES);
}

/// One watch's handles on its series.
pub struct WatchEvents {
    count: IntCounter,
    sizes: Histogram,
}

impl WatchEvents {
    pub fn new(group: &str, version: &str, resource: &str) -> WatchEvents {
        let labels = [group, version, resource];
        WatchEvents {
            count: EVENTS.with_label_values(&labels),
            sizes: EVENT_SIZES.with_label_values(&labels),
        }
    }

    /// One event of `len` bytes sent.
    pub fn record(&self, len: usize) {
        self.count.inc();
        self.sizes.observe(len as f64);
    }
}
