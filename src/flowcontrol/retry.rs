//! `Retry-After` of a rejected request, per priority level, as upstream's dropped-requests
//! tracker sets it: it doubles (up to 32 s) while a level keeps dropping at least three
//! requests per second of the current value, and comes down by a second at a time once drops
//! are rarer — the way TCP backs off, so rejected clients spread their retries.

/// Upstream's cap on Retry-After, in seconds.
const MAX_RETRY_AFTER: i64 = 32;

/// Dropped requests of one level: the counts of past seconds (bounded by `MAX_RETRY_AFTER`
/// entries: older ones never matter) and of the current one.
#[derive(Debug, Clone)]
pub struct Dropped {
    history: Vec<(i64, i64)>,
    current_second: i64,
    current_count: i64,
    retry_after: i64,
    /// When retry_after last grew: it grows at most once per retry_after seconds.
    raised_at: i64,
}

impl Default for Dropped {
    fn default() -> Dropped {
        Dropped {
            history: Vec::new(),
            current_second: 0,
            current_count: 0,
            retry_after: 1,
            raised_at: 0,
        }
    }
}

impl Dropped {
    /// A request was dropped during second `now` (Unix time).
    pub fn record(&mut self, now: i64) {
        if now == self.current_second {
            self.current_count += 1;
            return;
        }
        self.push_history(self.current_second, self.current_count);
        self.current_second = now;
        self.current_count = 1;
        self.update(now);
    }

    /// The Retry-After to send now, in seconds.
    pub fn retry_after(&self) -> i64 {
        self.retry_after
    }

    fn push_history(&mut self, second: i64, count: i64) {
        if count > 0 {
            self.history.push((second, count));
        }
        let keep = (2 * self.retry_after).min(MAX_RETRY_AFTER);
        let stale = self
            .history
            .iter()
            .take_while(|(s, _)| second - s > keep)
            .count();
        self.history.drain(..stale);
    }

    /// Looks at the drops of [now − retry_after, now).
    fn update(&mut self, now: i64) {
        let dropped: i64 = self
            .history
            .iter()
            .rev()
            .take_while(|(s, _)| now - s <= self.retry_after)
            .filter(|(s, _)| *s < now)
            .map(|(_, n)| n)
            .sum();
        if now - self.raised_at >= self.retry_after && dropped >= 3 * self.retry_after {
            self.retry_after = (self.retry_after * 2).min(MAX_RETRY_AFTER);
            self.raised_at = now;
        } else if dropped < self.retry_after && self.retry_after > 1 {
            self.retry_after -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_doubles_under_sustained_drops_and_decays_after() {
        let mut d = Dropped::default();
        assert_eq!(d.retry_after(), 1);
        let mut t = 1_000;
        // Ten drops a second for a while: 1 → 2 → 4 → 8 → 16 → 32, never past it.
        let mut seen = vec![d.retry_after()];
        for _ in 0..80 {
            for _ in 0..200 {
                d.record(t);
            }
            t += 1;
            d.record(t);
            seen.push(d.retry_after());
        }
        assert!(seen.windows(2).all(|w| w[1] >= w[0]), "{seen:?}");
        assert_eq!(d.retry_after(), 32);
        // A drop now and then: back down a second at a time.
        for _ in 0..5 {
            t += 40;
            d.record(t);
        }
        assert!(
            d.retry_after() < 32 && d.retry_after() >= 27,
            "{}",
            d.retry_after()
        );
    }
}
