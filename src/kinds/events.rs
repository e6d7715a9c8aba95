//! Events (core/v1 and events.k8s.io/v1): written with a lease, so etcd removes them after
//! `--event-ttl` (1 h) plus upstream's 60 s lease-reuse window.

use super::Strategy;

/// What upstream adds to --event-ttl when it attaches keys to a shared lease.
const LEASE_REUSE_SECONDS: i64 = 60;

#[derive(Debug)]
pub struct Events;

impl Strategy for Events {
    fn ttl_seconds(&self) -> Option<i64> {
        Some(
            crate::flags::settings()
                .event_ttl_seconds
                .saturating_add(LEASE_REUSE_SECONDS),
        )
    }
}
