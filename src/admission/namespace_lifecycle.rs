//! NamespaceLifecycle, as upstream's plugin: nothing is created in a namespace that does not
//! exist (404) or is being terminated (403, cause NamespaceTerminating), and the namespaces the
//! cluster cannot live without (`default`, `kube-system`, `kube-public`) are never deleted.
//! Namespaces are read from the watch cache; one not found there is looked up once more after
//! the cache caught up with the store (a namespace created a moment ago).

use async_trait::async_trait;
use serde_json::Value;

use super::{Attributes, Mutating, Operation};
use crate::api::server::Api;
use crate::api::status::{Cause, GroupResource, Status};

/// Upstream's immortal namespaces.
const IMMORTAL: &[&str] = &["default", "kube-system", "kube-public"];

pub struct NamespaceLifecycle;

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
            return Ok(());
        }
        let (Operation::Create, Some(ns)) = (attrs.operation, attrs.namespace) else {
            return Ok(());
        };
        if !res.namespaced {
            return Ok(());
        }
        match api.namespace_phase(ns).await? {
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
