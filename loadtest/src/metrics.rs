//! What a run measures: request latency per verb, resource and scope (the clusterloader2
//! grouping), status codes, watch delivery latency and informer sync times. Every scenario task
//! records here; the report reads it once at the end.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Histogram buckets grow by this factor: a percentile is exact to within 5 %.
const BUCKET_GROWTH: f64 = 1.05;
/// Buckets from 1 µs up to 1.05^400 µs ≈ 300 s; slower samples land in the last bucket.
pub const BUCKETS: usize = 400;
/// How many points a time series has at most: enough for a readable chart, whatever the duration.
pub const CHART_POINTS: u64 = 120;
/// Writes remembered for matching watch events to their acknowledgement; older ones are dropped.
/// 100k covers more than a minute of writes at the highest rate one client core reaches.
const ACK_BOOK_CAPACITY: usize = 100_000;

/// A log-bucketed latency histogram in microseconds.
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u32>,
    pub count: u64,
    pub sum_us: u64,
    pub max_us: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            count: 0,
            sum_us: 0,
            max_us: 0,
        }
    }
}

pub fn bucket_of(us: u64) -> usize {
    if us <= 1 {
        return 0;
    }
    (((us as f64).ln() / BUCKET_GROWTH.ln()) as usize).min(BUCKETS - 1)
}

/// The upper bound of a bucket, in microseconds.
pub fn bucket_upper_us(i: usize) -> f64 {
    BUCKET_GROWTH.powi(i as i32 + 1)
}

impl Histogram {
    pub fn record(&mut self, d: Duration) {
        let us = d.as_micros().min(u64::MAX as u128) as u64;
        let b = bucket_of(us);
        self.counts[b] = self.counts[b].saturating_add(1);
        self.count += 1;
        self.sum_us = self.sum_us.saturating_add(us);
        self.max_us = self.max_us.max(us);
    }

    /// The q-quantile in milliseconds (bucket upper bound, capped at the observed maximum).
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let rank = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            seen += *c as u64;
            if seen >= rank {
                return bucket_upper_us(i).min(self.max_us as f64) / 1000.0;
            }
        }
        self.max_us as f64 / 1000.0
    }

    pub fn mean_ms(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum_us as f64 / self.count as f64 / 1000.0
        }
    }

    /// Non-empty buckets as (upper bound ms, count).
    pub fn buckets_ms(&self) -> Vec<(f64, u64)> {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, c)| (bucket_upper_us(i) / 1000.0, *c as u64))
            .collect()
    }
}

/// A histogram over the whole run plus one per time window, for charts over time.
pub struct Series {
    pub total: Histogram,
    pub windows: BTreeMap<u64, Histogram>,
}

impl Series {
    fn new() -> Self {
        Series {
            total: Histogram::default(),
            windows: BTreeMap::new(),
        }
    }
    fn record(&mut self, window: u64, d: Duration) {
        self.total.record(d);
        self.windows.entry(window).or_default().record(d);
    }
}

/// clusterloader2's scopes: one object, a namespace's collection, or the whole cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Resource,
    Namespace,
    Cluster,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Resource => "resource",
            Scope::Namespace => "namespace",
            Scope::Cluster => "cluster",
        }
    }
}

/// What a latency sample is grouped by.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpKey {
    pub verb: &'static str,
    pub resource: &'static str,
    pub scope: Scope,
    /// `json` or `protobuf`: the response encoding asked for.
    pub format: &'static str,
}

pub struct OpStats {
    pub latency: Series,
    pub ok: u64,
    /// Failures by HTTP status code; 0 means the request never got a response.
    pub errors: BTreeMap<u16, u64>,
}

pub struct Recorder {
    pub start: Instant,
    /// Seconds per time-series window (the run's duration divided into `CHART_POINTS`).
    pub window_s: u64,
    pub ops: Mutex<BTreeMap<OpKey, OpStats>>,
    pub delivery: Mutex<Series>,
    /// Delivery latency per (watcher kind, resource), to tell which watchers fall behind.
    pub delivery_by_watcher: Mutex<BTreeMap<(&'static str, &'static str), Series>>,
    pub sync_times: Mutex<Vec<f64>>,
    pub requests: AtomicU64,
    pub failures: AtomicU64,
    pub events: AtomicU64,
    /// Delivery samples of events that arrived before their write's acknowledgement.
    pub early_deliveries: AtomicU64,
    /// Milliseconds into the run when `updates` started sending (0: not started): its achieved
    /// rate is over the time it sent, not the kubelets' set-up before.
    pub updates_started_ms: AtomicU64,
    /// Heartbeats (Lease renewals, Node status patches) that fell due before the deadline, from
    /// each kubelet's start and period: the rate asked, to set beside the rate achieved.
    pub lease_renewals_due: AtomicU64,
    pub node_status_due: AtomicU64,
}

impl Recorder {
    pub fn new(duration: Duration) -> Self {
        Recorder {
            start: Instant::now(),
            window_s: duration.as_secs().div_ceil(CHART_POINTS).max(1),
            ops: Mutex::new(BTreeMap::new()),
            delivery: Mutex::new(Series::new()),
            delivery_by_watcher: Mutex::new(BTreeMap::new()),
            sync_times: Mutex::new(Vec::new()),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            events: AtomicU64::new(0),
            early_deliveries: AtomicU64::new(0),
            updates_started_ms: AtomicU64::new(0),
            lease_renewals_due: AtomicU64::new(0),
            node_status_due: AtomicU64::new(0),
        }
    }

    fn window(&self) -> u64 {
        self.start.elapsed().as_secs() / self.window_s
    }

    /// Records one request: `status` is the HTTP status, or 0 when there was no response.
    /// Records one call; `expected` are non-2xx statuses that are an answer, not a failure
    /// (a 404 to "does this object exist yet?").
    pub fn request(&self, key: OpKey, status: u16, took: Duration, expected: &[u16]) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let ok = (200..300).contains(&status) || expected.contains(&status);
        if !ok {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        let window = self.window();
        let mut ops = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        let s = ops.entry(key).or_insert_with(|| OpStats {
            latency: Series::new(),
            ok: 0,
            errors: BTreeMap::new(),
        });
        if ok {
            s.ok += 1;
            s.latency.record(window, took);
        } else {
            *s.errors.entry(status).or_insert(0) += 1;
        }
    }

    /// One watch event received by a `watcher` (kubelet, informer) of `resource`, with its
    /// delivery latency when it matched an acknowledged write.
    pub fn event(&self, watcher: &'static str, resource: &'static str, delivery: Option<Duration>) {
        self.events.fetch_add(1, Ordering::Relaxed);
        if let Some(d) = delivery {
            self.delivered(watcher, resource, d);
        }
    }

    /// An event received before its write was acknowledged: its latency (zero) once it is.
    pub fn early_delivery(&self, watcher: &'static str, resource: &'static str, d: Duration) {
        self.early_deliveries.fetch_add(1, Ordering::Relaxed);
        self.delivered(watcher, resource, d);
    }

    fn delivered(&self, watcher: &'static str, resource: &'static str, d: Duration) {
        {
            let window = self.window();
            self.delivery
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .record(window, d);
            self.delivery_by_watcher
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry((watcher, resource))
                .or_insert_with(Series::new)
                .record(window, d);
        }
    }

    pub fn updates_started(&self) {
        let ms = self.start.elapsed().as_millis().min(u64::MAX as u128) as u64;
        self.updates_started_ms.store(ms.max(1), Ordering::Relaxed);
    }

    pub fn synced(&self, took: Duration) {
        self.sync_times
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(took.as_secs_f64());
    }
}

/// When each write was acknowledged, by `namespace/name@resourceVersion`, so that a watcher can
/// measure write-acknowledged → event-received. A watch event may arrive before its write's
/// response (the server sends both at once); such an early receipt waits here for the
/// acknowledgement and then counts as its (zero) latency, so that the fastest deliveries are not
/// the ones left out. Bounded: the oldest entries of each kind are forgotten.
#[derive(Default)]
pub struct AckBook {
    inner: Mutex<Book>,
}

#[derive(Default)]
struct Book {
    acked: HashMap<String, Instant>,
    acked_order: VecDeque<String>,
    early: HashMap<String, Vec<Early>>,
    early_order: VecDeque<String>,
}

/// A watch event received before its write was acknowledged.
pub struct Early {
    pub at: Instant,
    pub watcher: &'static str,
    pub resource: &'static str,
}

impl AckBook {
    /// Records a write's acknowledgement; returns the events of it that arrived before.
    pub fn acknowledged(&self, key: String, at: Instant) -> Vec<Early> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let b = &mut *g;
        let early = b.early.remove(&key).unwrap_or_default();
        if b.acked.insert(key.clone(), at).is_none() {
            b.acked_order.push_back(key);
        }
        while b.acked_order.len() > ACK_BOOK_CAPACITY {
            if let Some(old) = b.acked_order.pop_front() {
                b.acked.remove(&old);
            }
        }
        early
    }

    /// A watcher received the event of `key` at `now`: its delivery latency if the write was
    /// acknowledged; otherwise the receipt is kept until it is.
    pub fn delivered(
        &self,
        key: String,
        now: Instant,
        watcher: &'static str,
        resource: &'static str,
    ) -> Option<Duration> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let b = &mut *g;
        if let Some(t) = b.acked.get(&key) {
            return Some(now.saturating_duration_since(*t));
        }
        let receipt = Early {
            at: now,
            watcher,
            resource,
        };
        match b.early.get_mut(&key) {
            Some(v) => v.push(receipt),
            None => {
                b.early.insert(key.clone(), vec![receipt]);
                b.early_order.push_back(key);
            }
        }
        while b.early_order.len() > ACK_BOOK_CAPACITY {
            if let Some(old) = b.early_order.pop_front() {
                b.early.remove(&old);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_five_percent() {
        let mut h = Histogram::default();
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let p50 = h.quantile_ms(0.5);
        let p99 = h.quantile_ms(0.99);
        assert!((p50 - 50.0).abs() <= 2.6, "p50 {p50}");
        assert!((p99 - 99.0).abs() <= 5.0, "p99 {p99}");
        assert_eq!(h.quantile_ms(1.0), 100.0);
    }

    #[test]
    fn ack_book_forgets_the_oldest_beyond_its_capacity() {
        let book = AckBook::default();
        let now = Instant::now();
        for i in 0..(ACK_BOOK_CAPACITY + 10) {
            book.acknowledged(format!("k{i}"), now);
        }
        assert!(book.delivered("k0".into(), now, "w", "r").is_none());
        assert!(
            book.delivered(format!("k{}", ACK_BOOK_CAPACITY + 9), now, "w", "r")
                .is_some()
        );
    }

    #[test]
    fn an_event_before_its_acknowledgement_is_returned_with_it() {
        let book = AckBook::default();
        let t = Instant::now();
        assert!(book.delivered("a@1".into(), t, "kubelet", "pods").is_none());
        assert!(
            book.delivered("a@1".into(), t, "informer", "pods")
                .is_none()
        );
        let early = book.acknowledged("a@1".into(), t + Duration::from_millis(1));
        assert_eq!(early.len(), 2);
        assert_eq!(early[0].watcher, "kubelet");
        let later = book.delivered("a@1".into(), t + Duration::from_millis(3), "w", "pods");
        assert_eq!(later, Some(Duration::from_millis(2)));
        assert!(book.acknowledged("a@1".into(), t).is_empty());
    }
}
