//! Health probes and latency summaries for the stall and overload scenarios: a prober GETs
//! `/livez` on its own connection at a fixed interval and records each probe's latency, so
//! that a server core blocked by another request's work shows up as probe latency.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::client::Target;

/// Latencies one summary keeps: a 60 s phase of probes every 10 ms is 6,000; beyond this
/// the oldest are kept and the rest only counted.
const MAX_SAMPLES: usize = 1_000_000;

/// A probe that takes longer than this counts as failed (status 0).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// Latencies of one kind of call in one phase.
#[derive(Default, Clone)]
pub struct Latencies {
    samples: Vec<Duration>,
    /// Calls that got no 2xx (or no answer): counted here, and their time to failure is in
    /// the percentiles too (a probe that timed out waited at least that long).
    pub failed: usize,
    /// Samples beyond MAX_SAMPLES (counted only).
    pub dropped: usize,
}

#[derive(Serialize, Clone, Debug, Default)]
pub struct Summary {
    pub count: usize,
    pub failed: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latencies {
    pub fn record(&mut self, d: Duration) {
        if self.samples.len() < MAX_SAMPLES {
            self.samples.push(d);
        } else {
            self.dropped += 1;
        }
    }

    pub fn merge(&mut self, other: Latencies) {
        for d in other.samples {
            self.record(d);
        }
        self.failed += other.failed;
        self.dropped += other.dropped;
    }

    pub fn summary(&self) -> Summary {
        let mut s = self.samples.clone();
        s.sort();
        let q = |p: f64| -> f64 {
            if s.is_empty() {
                return 0.0;
            }
            let i = ((s.len() as f64 * p).ceil() as usize).clamp(1, s.len()) - 1;
            s[i].as_secs_f64() * 1000.0
        };
        Summary {
            count: s.len() + self.dropped,
            failed: self.failed,
            p50_ms: q(0.50),
            p99_ms: q(0.99),
            max_ms: s.last().map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0),
        }
    }
}

/// Probes `/livez` every `interval` until `deadline`, on a connection of its own.
pub async fn livez(target: Target, interval: Duration, deadline: Instant) -> Latencies {
    let mut lat = Latencies::default();
    let Ok(http) = target.bulk_client(PROBE_TIMEOUT) else {
        lat.failed += 1;
        return lat;
    };
    let url = format!("{}/livez", target.server);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while Instant::now() < deadline {
        tick.tick().await;
        let start = Instant::now();
        let ok = match target.authorize(http.get(&url)).send().await {
            Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
            Err(_) => false,
        };
        lat.record(start.elapsed());
        if !ok {
            lat.failed += 1;
        }
    }
    lat
}

/// `probers` probers over as many connections (a server spreads connections over its
/// cores; several probers make sure some share a core with the load).
pub async fn livez_all(
    target: &Target,
    probers: usize,
    interval: Duration,
    deadline: Instant,
) -> Latencies {
    let tasks: Vec<_> = (0..probers)
        .map(|_| tokio::spawn(livez(target.clone(), interval, deadline)))
        .collect();
    let mut all = Latencies::default();
    for t in tasks {
        if let Ok(l) = t.await {
            all.merge(l);
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_sorted_samples() {
        let mut l = Latencies::default();
        for ms in 1..=100 {
            l.record(Duration::from_millis(ms));
        }
        l.failed = 2;
        let s = l.summary();
        assert_eq!((s.count, s.failed), (100, 2));
        assert_eq!(s.p50_ms, 50.0);
        assert_eq!(s.p99_ms, 99.0);
        assert_eq!(s.max_ms, 100.0);
        assert_eq!(Latencies::default().summary().p99_ms, 0.0);
    }
}
