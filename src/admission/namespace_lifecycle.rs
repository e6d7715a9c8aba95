//! NamespaceLifecycle, as upstream's plugin: nothing is created in a namespace that does not
//! exist (404) or is being terminated (403, cause NamespaceTerminating), and the namespaces the
//! cluster cannot live without (`default`, `kube-system`, `kube-public`) are never deleted.
//! Namespaces are read from the watch cache; one not found there is looked up once more after
//! the cache caught up with the store (a namespace created a moment ago), and so is one still
//! active there that this server admitted the deletion of lately (upstream's live lookup of
//! recently deleted namespaces): a create right after the delete is refused, not let in.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::Value;

use super::{Attributes, Mutating, Operation};
use crate::api::server::Api;
use crate::api::status::{Cause, GroupResource, Status};

/// Upstream's immortal namespaces.
const IMMORTAL: &[&str] = &["default", "kube-system", "kube-public"];

/// How long after a namespace's deletion creates in it are checked against the store rather
/// than only the cache (upstream's `forceLiveLookupTTL`).
const RECENT_DELETION: Duration = Duration::from_secs(30);
/// Deletions remembered at once; past it the oldest is forgotten (its creates then rely on
/// the cache alone, as any after `RECENT_DELETION`).
const RECENT_DELETIONS_MAX: usize = 4096;

#[derive(Default)]
pub struct NamespaceLifecycle {
    /// The namespaces whose deletion this server admitted lately, oldest first.
    recently_deleted: Mutex<VecDeque<(String, Instant)>>,
}

impl NamespaceLifecycle {
    fn remember_deletion(&self, ns: &str, at: Instant) {
        let mut recent = self
            .recently_deleted
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        recent.push_back((ns.to_string(), at));
        while recent.len() > RECENT_DELETIONS_MAX {
            recent.pop_front();
        }
    }

    fn deleted_lately(&self, ns: &str, now: Instant) -> bool {
        let mut recent = self
            .recently_deleted
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        while recent
            .front()
            .is_some_and(|(_, at)| now.saturating_duration_since(*at) > RECENT_DELETION)
        {
            recent.pop_front();
        }
        recent.iter().any(|(n, _)| n == ns)
    }
}

#[async_trait(?Send)]
impl Mutating for NamespaceLifecycle {
    fn name(&self) -> &'static str {
        "NamespaceLifecycle"
    }

    async fn admit(
        &self,
        api: &Api,
        attrs: &Attributes<'_>,
        _obj: Option<&mut Value>,
    ) -> Result<(), Status> {
        let res = attrs.resource;
        if res.group.is_empty() && res.resource == "namespaces" {
            if attrs.operation == Operation::Delete && IMMORTAL.contains(&attrs.name) {
                let mut s = Status::new(
                    403,
                    "Forbidden",
                    format!(
                        "namespaces \"{}\" is forbidden: this namespace may not be deleted",
                        attrs.name
                    ),
                );
                s.kind = Some("namespaces".into());
                s.name = Some(attrs.name.to_string());
                return Err(s);
            }
            if attrs.operation == Operation::Delete {
                self.remember_deletion(attrs.name, Instant::now());
            }
            return Ok(());
        }
        let (Operation::Create, Some(ns)) = (attrs.operation, attrs.namespace) else {
            return Ok(());
        };
        if !res.namespaced {
            return Ok(());
        }
        let mut phase = api.namespace_phase(ns).await?;
        if phase == Some(false) && self.deleted_lately(ns, Instant::now()) {
            api.catch_up_cache().await?;
            phase = api.namespace_phase(ns).await?;
        }
        match phase {
            Some(terminating) if !terminating => Ok(()),
            Some(_) => {
                let mut s = Status::new(
                    403,
                    "Forbidden",
                    format!(
                        "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                        res.group_resource(),
                        attrs.name
                    ),
                );
                s.kind = Some(res.resource.clone());
                s.group = Some(res.group.clone()).filter(|g| !g.is_empty());
                s.name = Some(attrs.name.to_string()).filter(|n| !n.is_empty());
                s.causes.push(Cause {
                    reason: "NamespaceTerminating".into(),
                    message: format!("namespace {ns} is being terminated"),
                    field: "metadata.namespace".into(),
                });
                Err(s)
            }
            None => Err(Status::not_found(
                GroupResource {
                    group: "",
                    resource: "namespaces",
                },
                ns,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_deletions_are_remembered_for_a_while_and_bounded() {
        let lifecycle = NamespaceLifecycle::default();
        let start = Instant::now();
        lifecycle.remember_deletion("gone", start);
        assert!(lifecycle.deleted_lately("gone", start));
        assert!(!lifecycle.deleted_lately("other", start));
        assert!(!lifecycle.deleted_lately("gone", start + RECENT_DELETION * 2));
        for i in 0..=RECENT_DELETIONS_MAX {
            lifecycle.remember_deletion(&format!("ns{i}"), start);
        }
        assert!(!lifecycle.deleted_lately("ns0", start));
        assert!(lifecycle.deleted_lately(&format!("ns{RECENT_DELETIONS_MAX}"), start));
    }
}
