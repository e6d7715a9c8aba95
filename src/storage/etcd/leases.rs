//! Leases for keys created with a TTL (events), as upstream's lease manager keeps them: a lease
//! granted for a TTL is reused by the keys created with that TTL shortly after, so a burst of
//! events costs etcd one lease rather than one each. The lease is granted a little longer than the
//! TTL, so every key on it lives at least its TTL and at most the reuse window more.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use etcdv3client::{Client, pb};

use super::EtcdGrpc;

/// Longest a lease is reused for (upstream's `LeaseManagerConfig.ReuseDurationSeconds`).
const REUSE_WINDOW_MAX_SECONDS: i64 = 60;

/// The share of the TTL a lease is reused for, under that cap (upstream's 5 %): how much longer
/// than its TTL a key may live.
const REUSE_WINDOW_PERCENT: i64 = 5;

/// Keys attached to one lease at most (upstream's `LeaseManagerConfig.MaxObjectCount`): bounds
/// how many keys one expiry deletes at once.
const KEYS_PER_LEASE: usize = 1000;

/// The reusable lease of each TTL in use. A std mutex, not an async one: it is held only to
/// look up or record a lease, never across a call to etcd.
#[derive(Debug, Default)]
pub struct Leases {
    by_ttl: Mutex<HashMap<i64, Lease>>,
}

#[derive(Clone, Copy, Debug)]
struct Lease {
    id: i64,
    /// When etcd will expire it, measured from just before it was asked for.
    expires: Instant,
    keys: usize,
}

impl Leases {
    /// A lease that lives at least `ttl` seconds from now: the recent one of that TTL, or a new one.
    /// Two creates that race may both grant one; the later is kept for reuse, and both are valid.
    pub async fn lease(
        &self,
        ttl: i64,
        client: &Client<EtcdGrpc>,
    ) -> Result<i64, etcdv3client::Error> {
        let now = Instant::now();
        if let Some(id) = self.reuse(ttl, now) {
            return Ok(id);
        }
        let granted = client
            .lease
            .clone()
            .lease_grant(pb::LeaseGrantRequest {
                ttl: ttl + reuse_window(ttl),
                id: 0,
            })
            .await?;
        let lease = Lease {
            id: granted.id,
            expires: now + Duration::from_secs(granted.ttl.max(0) as u64),
            keys: 1,
        };
        let mut by_ttl = self.by_ttl.lock().unwrap_or_else(|e| e.into_inner());
        // Only leases still reusable are kept, so the map holds one per TTL in recent use.
        by_ttl.retain(|&t, l| now + Duration::from_secs(t as u64) < l.expires);
        by_ttl.insert(ttl, lease);
        Ok(granted.id)
    }

    /// Stops reusing lease `id` (etcd no longer has it).
    pub fn forget(&self, ttl: i64, id: i64) {
        let mut by_ttl = self.by_ttl.lock().unwrap_or_else(|e| e.into_inner());
        if by_ttl.get(&ttl).is_some_and(|l| l.id == id) {
            by_ttl.remove(&ttl);
        }
    }

    fn reuse(&self, ttl: i64, now: Instant) -> Option<i64> {
        let mut by_ttl = self.by_ttl.lock().unwrap_or_else(|e| e.into_inner());
        let lease = by_ttl.get_mut(&ttl)?;
        let lives_long_enough = now + Duration::from_secs(ttl as u64) < lease.expires;
        if !lives_long_enough || lease.keys >= KEYS_PER_LEASE {
            return None;
        }
        lease.keys += 1;
        Some(lease.id)
    }
}

/// How much longer than `ttl` a lease is granted, and so how long it is reused.
fn reuse_window(ttl: i64) -> i64 {
    (ttl * REUSE_WINDOW_PERCENT / 100).min(REUSE_WINDOW_MAX_SECONDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reuse_window_is_a_twentieth_of_the_ttl_up_to_a_minute() {
        assert_eq!(reuse_window(10), 0);
        assert_eq!(reuse_window(100), 5);
        assert_eq!(reuse_window(3600), 60);
    }

    #[test]
    fn a_lease_is_reused_while_it_outlives_the_ttl_and_has_room() {
        let leases = Leases::default();
        let now = Instant::now();
        leases.by_ttl.lock().unwrap().insert(
            100,
            Lease {
                id: 7,
                expires: now + Duration::from_secs(105),
                keys: 1,
            },
        );
        assert_eq!(leases.reuse(100, now), Some(7));
        assert_eq!(leases.reuse(50, now), None, "another TTL has its own lease");
        assert_eq!(leases.reuse(100, now + Duration::from_secs(5)), None);
        leases.by_ttl.lock().unwrap().get_mut(&100).unwrap().keys = KEYS_PER_LEASE;
        assert_eq!(leases.reuse(100, now), None);
        leases.forget(100, 7);
        assert!(leases.by_ttl.lock().unwrap().is_empty());
    }
}
