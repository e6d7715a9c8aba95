//! Admission: the plugins a write passes through after its kind's strategy prepared it — the
//! mutating chain (which may change the object) before defaults and validation, the validating
//! chain after — as upstream's `--enable-admission-plugins`. A plugin refuses a write with its
//! `Status`; the first refusal ends the write.

pub mod namespace_lifecycle;
pub mod node_restriction;
pub mod storage_protection;
pub mod taint_nodes;

use async_trait::async_trait;
use serde_json::Value;

use crate::api::registry::Resource;
use crate::api::server::Api;
use crate::api::status::Status;
use crate::authn::UserInfo;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

/// What a write is, as upstream's `admission.Attributes`.
pub struct Attributes<'a> {
    pub operation: Operation,
    pub user: &'a UserInfo,
    pub resource: &'a Resource,
    pub subresource: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub name: &'a str,
    /// The object before the write (update, delete).
    pub old: Option<&'a Value>,
    pub dry_run: bool,
}

/// A plugin that may change the object. Runs on the request's core; plugins are shared by all
/// cores and read what they need from the `Api` (cache, registry, store).
#[async_trait(?Send)]
pub trait Mutating: Send + Sync {
    fn name(&self) -> &'static str;
    async fn admit(
        &self,
        api: &Api,
        attrs: &Attributes<'_>,
        obj: Option<&mut Value>,
    ) -> Result<(), Status>;
}

/// A plugin that only accepts or refuses the object as it will be stored.
#[async_trait(?Send)]
pub trait Validating: Send + Sync {
    fn name(&self) -> &'static str;
    async fn validate(
        &self,
        api: &Api,
        attrs: &Attributes<'_>,
        obj: Option<&Value>,
    ) -> Result<(), Status>;
}

/// The enabled plugins, in upstream's order.
#[derive(Default)]
pub struct Chain {
    pub mutating: Vec<Box<dyn Mutating>>,
    pub validating: Vec<Box<dyn Validating>>,
}

impl Chain {
    /// Upstream's default-enabled plugins that kapi has so far.
    pub fn defaults() -> Chain {
        Chain {
            mutating: vec![
                Box::new(namespace_lifecycle::NamespaceLifecycle),
                Box::new(node_restriction::NodeRestriction),
                Box::new(taint_nodes::TaintNodesByCondition),
                Box::new(storage_protection::StorageObjectInUseProtection),
                // Not a plugin of upstream's list: the RBAC resources' escalation check.
                Box::new(crate::authz::escalation::EscalationCheck),
            ],
            validating: Vec::new(),
        }
    }

    pub async fn mutate(
        &self,
        api: &Api,
        attrs: &Attributes<'_>,
        mut obj: Option<&mut Value>,
    ) -> Result<(), Status> {
        for plugin in &self.mutating {
            plugin.admit(api, attrs, obj.as_deref_mut()).await?;
        }
        Ok(())
    }

    pub async fn validate(
        &self,
        api: &Api,
        attrs: &Attributes<'_>,
        obj: Option<&Value>,
    ) -> Result<(), Status> {
        for plugin in &self.validating {
            plugin.validate(api, attrs, obj).await?;
        }
        Ok(())
    }
}
