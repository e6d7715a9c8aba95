//! Events (core/v1 and events.k8s.io/v1): written with a lease, so etcd removes them after
//! `--event-ttl` (1 h); the etcd store's lease manager adds upstream's 60 s lease-reuse window.
//! Validation is `event_rules`.

use super::Strategy;

#[derive(Debug)]
pub struct Events {
    /// core/v1 Events: any name that is a path segment (upstream's legacy event validation
    /// does not check it further); events.k8s.io/v1 names are DNS subdomains.
    pub legacy: bool,
}

impl Strategy for Events {
    fn name_rule(&self) -> super::NameRule {
        if self.legacy {
            super::NameRule::PathSegment
        } else {
            super::NameRule::Subdomain
        }
    }

    fn ttl_seconds(&self) -> Option<i64> {
        Some(crate::flags::settings().event_ttl_seconds)
    }

    fn validate_create(&self, obj: &serde_json::Value) -> Vec<crate::api::status::Cause> {
        super::event_rules::validate(obj)
    }

    /// events.k8s.io/v1: what an Event said is fixed; core/v1 updates pass the legacy rules
    /// only, as upstream keeps them for old clients.
    fn validate_update(
        &self,
        obj: &serde_json::Value,
        old: &serde_json::Value,
    ) -> Vec<crate::api::status::Cause> {
        match self.legacy {
            true => super::event_rules::validate(obj),
            false => super::event_rules::validate_update(obj, old),
        }
    }
}
