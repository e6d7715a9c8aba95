//! Borrowing between priority levels, as upstream adjusts it every 10 s: each level's seat
//! demand (executing plus waiting seats) is integrated over the period; its current limit is
//! then a fair share of the server's seats, proportional to its smoothed demand and kept within
//! [nominal − lendable, nominal + borrowing limit].

use std::time::{Duration, Instant};

/// How often current limits are recomputed (upstream's `borrowingAdjustmentPeriod`).
pub const ADJUSTMENT_PERIOD: Duration = Duration::from_secs(10);
/// Weight of the previous smoothed demand (upstream's `seatDemandSmoothingCoefficient`).
const SMOOTHING: f64 = 0.977;
/// A target is never below this, so a proportional share is always defined.
const MIN_TARGET: f64 = 0.001;

/// A time-weighted record of one level's seat demand since the last adjustment.
#[derive(Debug, Clone)]
pub struct Demand {
    value: f64,
    since: Instant,
    start: Instant,
    /// ∫ value dt and ∫ value² dt, in seat-seconds.
    sum: f64,
    sum_sq: f64,
    max: f64,
}

/// What one period's integration says about a level.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DemandStats {
    pub high_watermark: f64,
    /// max(avg + stddev, SMOOTHING × previous + (1 − SMOOTHING) × (avg + stddev)).
    pub smoothed: f64,
}

impl Demand {
    pub fn new(now: Instant) -> Demand {
        Demand {
            value: 0.0,
            since: now,
            start: now,
            sum: 0.0,
            sum_sq: 0.0,
            max: 0.0,
        }
    }

    fn accumulate(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.since).as_secs_f64();
        self.sum += self.value * dt;
        self.sum_sq += self.value * self.value * dt;
        self.since = now;
    }

    /// The demand is `value` from `now` on.
    pub fn set(&mut self, now: Instant, value: f64) {
        self.accumulate(now);
        self.value = value;
        self.max = self.max.max(value);
    }

    /// Ends the period at `now`: its statistics folded into `stats`; a new period starts with
    /// the current value.
    pub fn reset(&mut self, now: Instant, stats: &mut DemandStats) {
        self.accumulate(now);
        let span = now.saturating_duration_since(self.start).as_secs_f64();
        stats.high_watermark = self.max;
        if span > 0.0 {
            let avg = self.sum / span;
            let variance = (self.sum_sq / span - avg * avg).max(0.0);
            let envelope = avg + variance.sqrt();
            stats.smoothed =
                envelope.max(SMOOTHING * stats.smoothed + (1.0 - SMOOTHING) * envelope);
        }
        self.start = now;
        self.sum = 0.0;
        self.sum_sq = 0.0;
        self.max = self.value;
    }
}

/// One level in the allocation problem.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    pub lower: f64,
    pub upper: f64,
    pub target: f64,
}

/// Upstream's concurrency allocation: allocs summing to `required` (as far as the bounds
/// allow), each `clamp(share × target, lower, upper)` for one common `share`, found by
/// bisection (the sum grows with the share).
pub fn allocate(required: f64, items: &[Bounds]) -> Vec<f64> {
    let at = |share: f64| -> Vec<f64> {
        items
            .iter()
            .map(|b| (share * b.target.max(MIN_TARGET)).clamp(b.lower, b.upper.max(b.lower)))
            .collect()
    };
    let sum = |v: &[f64]| v.iter().sum::<f64>();
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    // Grow the bracket until it reaches the required sum (or every item is at its upper bound).
    for _ in 0..200 {
        if sum(&at(hi)) >= required {
            break;
        }
        lo = hi;
        hi *= 2.0;
    }
    for _ in 0..100 {
        let mid = (lo + hi) / 2.0;
        if sum(&at(mid)) < required {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    at(hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demand_statistics_are_time_weighted() {
        let t0 = Instant::now();
        let mut d = Demand::new(t0);
        let mut stats = DemandStats::default();
        d.set(t0, 4.0);
        d.set(t0 + Duration::from_secs(5), 0.0);
        d.reset(t0 + Duration::from_secs(10), &mut stats);
        assert_eq!(stats.high_watermark, 4.0);
        // avg 2, stddev 2: envelope 4.
        assert!((stats.smoothed - 4.0).abs() < 1e-9, "{stats:?}");
        // An idle period decays the smoothed demand slowly, not at once.
        d.reset(t0 + Duration::from_secs(20), &mut stats);
        assert_eq!(stats.high_watermark, 0.0);
        assert!((stats.smoothed - 4.0 * SMOOTHING).abs() < 1e-9, "{stats:?}");
    }

    #[test]
    fn seats_go_where_the_demand_is_within_bounds() {
        let items = [
            // Busy, may borrow up to 100.
            Bounds {
                lower: 10.0,
                upper: 100.0,
                target: 80.0,
            },
            // Idle: keeps only what it cannot lend.
            Bounds {
                lower: 5.0,
                upper: 100.0,
                target: 5.0,
            },
            // May not borrow at all.
            Bounds {
                lower: 20.0,
                upper: 20.0,
                target: 60.0,
            },
        ];
        let allocs = allocate(100.0, &items);
        assert!(
            (allocs.iter().sum::<f64>() - 100.0).abs() < 1e-6,
            "{allocs:?}"
        );
        assert_eq!(allocs[2], 20.0);
        assert!(allocs[0] > 70.0 && allocs[1] >= 5.0, "{allocs:?}");
        // Everything at its lower bound when the bounds leave no choice.
        let tight = allocate(
            30.0,
            &[
                Bounds {
                    lower: 10.0,
                    upper: 10.0,
                    target: 1.0,
                },
                Bounds {
                    lower: 20.0,
                    upper: 20.0,
                    target: 9.0,
                },
            ],
        );
        assert_eq!(tight, vec![10.0, 20.0]);
    }
}
