//! Events (core/v1 and events.k8s.io/v1): written with a lease, so etcd removes them after
//! `--event-ttl` (1 h) plus upstream's 60 s lease-reuse window.

use super::Strategy;

/// --event-ttl (1 h) plus the 60 s upstream adds when it attaches keys to a shared lease.
pub const EVENT_TTL_SECONDS: i64 = 3660;

#[derive(Debug)]
pub struct Events;

impl Strategy for Events {
    fn ttl_seconds(&self) -> Option<i64> {
        Some(EVENT_TTL_SECONDS)
    }
}
