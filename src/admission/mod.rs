//! Admission: the plugins a write passes through after its kind's strategy prepared it — the
//! mutating chain (which may change the object) before defaults and validation, the validating
//! chain after — as upstream's `--enable-admission-plugins`. A plugin refuses a write with its
//! `Status`; the first refusal ends the write.

pub mod certificates;
pub mod classes;
pub mod config;
pub mod limit_ranger;
mod matching;
pub mod namespace_lifecycle;
pub mod node_restriction;
pub mod pod_security;
pub mod pods;
pub mod policy;
mod quantities;
pub mod reinvocation;
pub mod resource_quota;
pub mod storage_protection;
pub mod taint_nodes;
pub mod topology;
pub mod webhook;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::api::registry::Resource;
use crate::api::server::Api;
use crate::api::status::{GroupResource, Status};
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
    /// What plugins tell the client beside their answer (`Warning` headers), in order.
    pub warnings: std::cell::RefCell<Vec<String>>,
    /// What plugins add to the request's audit event (`annotations`), in order.
    pub audit_annotations: std::cell::RefCell<Vec<(String, String)>>,
    /// The mutating passes' state (`reinvocation`).
    pub reinvocation: std::cell::RefCell<reinvocation::Reinvocation>,
}

impl Attributes<'_> {
    /// Adds an annotation to the request's audit event (upstream's `AddAnnotation`).
    pub fn annotate(&self, key: String, value: String) {
        self.audit_annotations.borrow_mut().push((key, value));
    }

    /// Adds a warning for the response (upstream's `warning.AddWarning`); a repeated text once.
    pub fn warn(&self, text: String) {
        let mut warnings = self.warnings.borrow_mut();
        if !warnings.contains(&text) {
            warnings.push(text);
        }
    }
}

/// A plugin that may change the object. Runs on the request's core; plugins are shared by all
/// cores and read what they need from the `Api` (cache, registry, store).
#[async_trait(?Send)]
pub trait Mutating: Send + Sync {
    fn name(&self) -> &'static str;
    /// Whether the chain runs this plugin again when a reinvocable plugin changed the object.
    fn reinvocable(&self) -> bool {
        false
    }
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
    /// The watch cache's webhook configurations and policy bindings with their key
    /// prefixes, found once (`reads_whole_objects` asks on every write).
    config_caches: std::sync::OnceLock<ConfigCaches>,
}

type ConfigCaches = Vec<(Arc<kapi_cache::ResourceCache>, Vec<u8>)>;

/// Every admission plugin upstream 1.36 knows, in its order (`AllOrderedPlugins`).
pub const ALL_PLUGINS: &[&str] = &[
    "AlwaysAdmit",
    "NamespaceAutoProvision",
    "NamespaceLifecycle",
    "NamespaceExists",
    "LimitPodHardAntiAffinityTopology",
    "LimitRanger",
    "ServiceAccount",
    "NodeRestriction",
    "TaintNodesByCondition",
    "AlwaysPullImages",
    "ImagePolicyWebhook",
    "PodSecurity",
    "PodNodeSelector",
    "Priority",
    "DefaultTolerationSeconds",
    "PodTolerationRestriction",
    "EventRateLimit",
    "ExtendedResourceToleration",
    "DefaultStorageClass",
    "StorageObjectInUseProtection",
    "OwnerReferencesPermissionEnforcement",
    "PersistentVolumeClaimResize",
    "RuntimeClass",
    "CertificateApproval",
    "CertificateSigning",
    "ClusterTrustBundleAttest",
    "CertificateSubjectRestriction",
    "DefaultIngressClass",
    "PodTopologyLabels",
    "DenyServiceExternalIPs",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionWebhook",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionWebhook",
    "ResourceQuota",
    "AlwaysDeny",
];

/// The plugins upstream enables when no flag says otherwise.
pub const DEFAULT_ON: &[&str] = &[
    "NamespaceLifecycle",
    "LimitRanger",
    "ServiceAccount",
    "TaintNodesByCondition",
    "PodSecurity",
    "Priority",
    "DefaultTolerationSeconds",
    "DefaultStorageClass",
    "StorageObjectInUseProtection",
    "PersistentVolumeClaimResize",
    "RuntimeClass",
    "CertificateApproval",
    "CertificateSigning",
    "ClusterTrustBundleAttest",
    "CertificateSubjectRestriction",
    "DefaultIngressClass",
    "PodTopologyLabels",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionWebhook",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionWebhook",
    "ResourceQuota",
];

/// The plugins kapi has.
const IMPLEMENTED: &[&str] = &[
    "NamespaceLifecycle",
    "LimitRanger",
    "ServiceAccount",
    "Priority",
    "DefaultTolerationSeconds",
    "NodeRestriction",
    "TaintNodesByCondition",
    "StorageObjectInUseProtection",
    "DefaultStorageClass",
    "PersistentVolumeClaimResize",
    "RuntimeClass",
    "DefaultIngressClass",
    "MutatingAdmissionWebhook",
    "ValidatingAdmissionWebhook",
    "ResourceQuota",
    "CertificateApproval",
    "CertificateSigning",
    "CertificateSubjectRestriction",
    "ClusterTrustBundleAttest",
    "PodSecurity",
    "ValidatingAdmissionPolicy",
    "MutatingAdmissionPolicy",
    "PodTopologyLabels",
];

/// The enabled plugins' names in upstream's order: the defaults, plus `enable`, minus `disable`.
pub fn enabled_plugins(enable: &[String], disable: &[String]) -> Vec<&'static str> {
    ALL_PLUGINS
        .iter()
        .copied()
        .filter(|p| {
            (DEFAULT_ON.contains(p) || enable.iter().any(|e| e == p))
                && !disable.iter().any(|d| d == p)
        })
        .collect()
}

/// Checks the flags as upstream does (an unknown plugin is an error, as is one both enabled and
/// disabled); warnings for the enabled plugins kapi does not have yet.
pub fn check_plugins(enable: &[String], disable: &[String]) -> Result<Vec<String>, String> {
    for (flag, names) in [
        ("enable-admission-plugins", enable),
        ("disable-admission-plugins", disable),
    ] {
        if let Some(unknown) = names.iter().find(|n| !ALL_PLUGINS.contains(&n.as_str())) {
            return Err(format!("{flag} plugin \"{unknown}\" is unknown"));
        }
    }
    if let Some(both) = enable.iter().find(|e| disable.contains(e)) {
        return Err(format!(
            "{both} plugins specified in both enable-admission-plugins and disable-admission-plugins"
        ));
    }
    let missing: Vec<&str> = enabled_plugins(enable, disable)
        .into_iter()
        .filter(|p| !IMPLEMENTED.contains(p))
        .collect();
    let mut warnings = Vec::new();
    let asked: Vec<&str> = missing
        .iter()
        .copied()
        .filter(|p| enable.iter().any(|e| e == p))
        .collect();
    if !asked.is_empty() {
        warnings.push(format!(
            "--enable-admission-plugins: kapi does not have these plugins yet: {}",
            asked.join(",")
        ));
    }
    let defaults: Vec<&str> = missing.into_iter().filter(|p| !asked.contains(p)).collect();
    if !defaults.is_empty() {
        warnings.push(format!(
            "admission plugins enabled by default upstream that kapi does not have yet: {}",
            defaults.join(",")
        ));
    }
    Ok(warnings)
}

/// Upstream's `admission.NewForbidden`: 403 `<resource> "<name>" is forbidden: <why>`.
pub(crate) fn forbidden(attrs: &Attributes<'_>, why: &str) -> Status {
    let res = attrs.resource;
    let gr = GroupResource {
        group: &res.group,
        resource: &res.resource,
    };
    Status::forbidden(gr, attrs.name, why)
}

/// Every object of `group/version/resource` the watch cache holds (in `namespace` only, when
/// given), as served JSON: the small kinds admission reads (PriorityClasses, LimitRanges).
pub(crate) fn cached_objects(
    api: &Api,
    group: &str,
    version: &str,
    resource: &str,
    namespace: Option<&str>,
) -> Result<Vec<Value>, Status> {
    if namespace.is_none() {
        return Ok(cluster_objects(api, group, version, resource)?.to_vec());
    }
    Ok(cached_entries(api, group, version, resource, namespace)?
        .into_iter()
        .map(|(v, _)| v)
        .collect())
}

/// Decoded cluster-scoped objects, per resource, with the cache snapshot they came from.
type Decoded = (Arc<kapi_cache::Snapshot>, Arc<Vec<Value>>);

/// Resources whose decoded objects are kept (each store prefix is one; tests start many).
const MAX_DECODED: usize = 64;

/// `cached_objects` of a cluster-scoped resource, decoded once per snapshot and shared: every
/// pod create reads the PriorityClasses, which change a few times in a cluster's life.
pub(crate) fn cluster_objects(
    api: &Api,
    group: &str,
    version: &str,
    resource: &str,
) -> Result<Arc<Vec<Value>>, Status> {
    static DECODED: std::sync::LazyLock<std::sync::Mutex<HashMap<String, Decoded>>> =
        std::sync::LazyLock::new(Default::default);
    let Some(row) = api.registry.lookup(group, version, resource) else {
        return Ok(Arc::default());
    };
    let res: &Resource = &row;
    let prefix = format!("{}{}", api.prefix, res.key_prefix);
    let Some(rc) = api.cache.resource(prefix.as_bytes()) else {
        return Ok(Arc::default());
    };
    let snap = rc.snapshot();
    let lock = |m: &'static std::sync::Mutex<HashMap<String, Decoded>>| {
        m.lock().unwrap_or_else(|p| p.into_inner())
    };
    if let Some((at, objects)) = lock(&DECODED).get(&prefix)
        && Arc::ptr_eq(at, &snap)
    {
        return Ok(objects.clone());
    }
    let objects = snap
        .range(prefix.as_bytes(), b"")
        .map(|o| {
            let served = crate::api::objects::served(res, &o.value, o.mod_revision)?;
            crate::api::objects::to_value(res, &served)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let objects = Arc::new(objects);
    let mut memo = lock(&DECODED);
    if memo.len() >= MAX_DECODED && !memo.contains_key(&prefix) {
        memo.clear();
    }
    memo.insert(prefix, (snap, objects.clone()));
    Ok(objects)
}

/// One object of `group/version/resource` from the watch cache, as served JSON (`namespace`
/// for a namespaced resource): what a plugin needs of one namespace, without the rest.
pub(crate) fn cached_object(
    api: &Api,
    (group, version, resource): (&str, &str, &str),
    namespace: Option<&str>,
    name: &str,
) -> Result<Option<Value>, Status> {
    let Some(row) = api.registry.lookup(group, version, resource) else {
        return Ok(None);
    };
    let res: &Resource = &row;
    let prefix = format!("{}{}", api.prefix, res.key_prefix);
    let Some(rc) = api.cache.resource(prefix.as_bytes()) else {
        return Ok(None);
    };
    let key = match namespace.filter(|_| res.namespaced) {
        Some(ns) => format!("{prefix}{ns}/{name}"),
        None => format!("{prefix}{name}"),
    };
    let Some(stored) = rc.snapshot().get(key.as_bytes()).map(|o| o.value.clone()) else {
        return Ok(None);
    };
    let served = crate::api::objects::served(res, &stored, 0)?;
    crate::api::objects::to_value(res, &served).map(Some)
}

/// `cached_objects` with each object's revision (what a write of it must be conditional on).
pub(crate) fn cached_entries(
    api: &Api,
    group: &str,
    version: &str,
    resource: &str,
    namespace: Option<&str>,
) -> Result<Vec<(Value, i64)>, Status> {
    let Some(row) = api.registry.lookup(group, version, resource) else {
        return Ok(Vec::new());
    };
    let res: &Resource = &row;
    let prefix = format!("{}{}", api.prefix, res.key_prefix);
    let mut dir = prefix.clone();
    if let Some(ns) = namespace.filter(|_| res.namespaced) {
        dir.push_str(ns);
        dir.push('/');
    }
    let Some(rc) = api.cache.resource(prefix.as_bytes()) else {
        return Ok(Vec::new());
    };
    let snap = rc.snapshot();
    snap.range(dir.as_bytes(), b"")
        .map(|o| {
            let served = crate::api::objects::served(res, &o.value, o.mod_revision)?;
            Ok((crate::api::objects::to_value(res, &served)?, o.mod_revision))
        })
        .collect()
}

impl Chain {
    /// Upstream's default-enabled plugins that kapi has so far.
    pub fn defaults() -> Chain {
        Chain::enabled(&[], &[], &config::Configs::default()).unwrap_or_else(|_| Chain::default())
    }

    /// The plugins `--enable-admission-plugins`/`--disable-admission-plugins` leave on that
    /// kapi has, in upstream's order, then the RBAC escalation check (not a plugin upstream:
    /// its RBAC storage does it; here it runs with the plugins).
    /// A plugin's configuration that upstream refuses is an error.
    pub fn enabled(
        enable: &[String],
        disable: &[String],
        configs: &config::Configs,
    ) -> Result<Chain, String> {
        let mut chain = Chain::default();
        for name in enabled_plugins(enable, disable) {
            match name {
                "NamespaceLifecycle" => chain
                    .mutating
                    .push(Box::new(namespace_lifecycle::NamespaceLifecycle::default())),
                "LimitRanger" => {
                    chain.mutating.push(Box::new(limit_ranger::LimitRanger));
                    chain.validating.push(Box::new(limit_ranger::LimitRanger));
                }
                "ServiceAccount" => chain.mutating.push(Box::new(pods::ServiceAccount)),
                "Priority" => {
                    chain.mutating.push(Box::new(pods::Priority));
                    chain.validating.push(Box::new(pods::Priority));
                }
                "DefaultTolerationSeconds" => chain
                    .mutating
                    .push(Box::new(pods::DefaultTolerationSeconds)),
                "DefaultStorageClass" => {
                    chain.mutating.push(Box::new(classes::DefaultStorageClass))
                }
                "DefaultIngressClass" => {
                    chain.mutating.push(Box::new(classes::DefaultIngressClass))
                }
                "PersistentVolumeClaimResize" => chain
                    .validating
                    .push(Box::new(classes::PersistentVolumeClaimResize)),
                "RuntimeClass" => {
                    chain.mutating.push(Box::new(classes::RuntimeClass));
                    chain.validating.push(Box::new(classes::RuntimeClass));
                }
                "NodeRestriction" => chain
                    .mutating
                    .push(Box::new(node_restriction::NodeRestriction)),
                "TaintNodesByCondition" => chain
                    .mutating
                    .push(Box::new(taint_nodes::TaintNodesByCondition)),
                "StorageObjectInUseProtection" => chain
                    .mutating
                    .push(Box::new(storage_protection::StorageObjectInUseProtection)),
                "MutatingAdmissionPolicy" => {
                    chain.mutating.push(Box::new(policy::MutatingPolicies))
                }
                "MutatingAdmissionWebhook" => {
                    chain.mutating.push(Box::new(webhook::MutatingWebhooks))
                }
                "ValidatingAdmissionWebhook" => {
                    chain.validating.push(Box::new(webhook::ValidatingWebhooks))
                }
                "CertificateApproval" => chain
                    .validating
                    .push(Box::new(certificates::CertificateApproval)),
                "CertificateSigning" => chain
                    .validating
                    .push(Box::new(certificates::CertificateSigning)),
                "ClusterTrustBundleAttest" => chain
                    .validating
                    .push(Box::new(certificates::ClusterTrustBundleAttest)),
                "CertificateSubjectRestriction" => chain
                    .validating
                    .push(Box::new(certificates::CertificateSubjectRestriction)),
                "ResourceQuota" => chain
                    .validating
                    .push(Box::new(resource_quota::ResourceQuota)),
                "PodTopologyLabels" => chain.mutating.push(Box::new(topology::PodTopologyLabels)),
                "ValidatingAdmissionPolicy" => {
                    chain.validating.push(Box::new(policy::ValidatingPolicies))
                }
                "PodSecurity" => chain.validating.push(Box::new(match configs.get(name) {
                    Some(c) => pod_security::PodSecurity::from_config(c)?,
                    None => pod_security::PodSecurity::default(),
                })),
                _ => {}
            }
        }
        chain
            .mutating
            .push(Box::new(crate::authz::escalation::EscalationCheck));
        Ok(chain)
    }

    /// Whether the plugin `name` is on.
    pub fn has(&self, name: &str) -> bool {
        self.mutating.iter().any(|p| p.name() == name)
            || self.validating.iter().any(|p| p.name() == name)
    }

    /// Whether a plugin of the chain may read a written object whole (admission webhooks and
    /// CEL policies, once any is configured): such objects must not hold text placeholders
    /// (`ssa::materialize`).
    pub fn reads_whole_objects(&self, api: &Api) -> bool {
        const CONFIGS: &[&str] = &[
            "mutatingwebhookconfigurations",
            "validatingwebhookconfigurations",
            "mutatingadmissionpolicybindings",
            "validatingadmissionpolicybindings",
        ];
        let any = |caches: &ConfigCaches| {
            caches
                .iter()
                .any(|(rc, prefix)| rc.snapshot().range(prefix, b"").next().is_some())
        };
        if let Some(caches) = self.config_caches.get() {
            return any(caches);
        }
        let caches: ConfigCaches = CONFIGS
            .iter()
            .filter_map(|resource| {
                let row = api
                    .registry
                    .lookup("admissionregistration.k8s.io", "v1", resource)?;
                let prefix = format!("{}{}", api.prefix, row.key_prefix).into_bytes();
                let rc = api.cache.resource(&prefix)?.clone();
                Some((rc, prefix))
            })
            .collect();
        // Kept once every one is there (all are, once the cache has started).
        if caches.len() < CONFIGS.len() {
            return any(&caches);
        }
        any(self.config_caches.get_or_init(|| caches))
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
        if attrs.reinvocation.borrow().requested {
            attrs.reinvocation.borrow_mut().reinvoking = true;
            for plugin in self.mutating.iter().filter(|p| p.reinvocable()) {
                plugin.admit(api, attrs, obj.as_deref_mut()).await?;
            }
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
