//! Events (core/v1 and events.k8s.io/v1): written with a lease, so etcd removes them after
//! `--event-ttl` (1 h); the etcd store's lease manager adds upstream's 60 s lease-reuse window.

use super::Strategy;

#[derive(Debug)]
pub struct Events;

impl Strategy for Events {
    fn ttl_seconds(&self) -> Option<i64> {
        Some(crate::flags::settings().event_ttl_seconds)
    }
}
