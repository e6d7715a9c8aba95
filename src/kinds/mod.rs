//! Per-kind behaviour on the write path, as upstream's REST strategies: each registry row names
//! its `Strategy`; everything a kind does not say is the generic default. A kind with behaviour
//! of its own has one small file here; adding a kind is adding a row (and, where it needs one, a
//! file). The write pipeline (`crate::api::rest::write`) calls these stages in order:
//! prepare → mutating admission → defaults → validation → validating admission → store.

mod admissionregistration;
mod apiservice_rules;
mod apps_updates;
mod batch;
mod batch_updates;
pub mod certificates;
mod claim_rules;
mod container_rules;
mod converted;
mod core_updates;
pub mod crds;
mod endpoint_rules;
mod event_rules;
mod events;
pub mod field;
mod flowcontrol_rules;
mod group_updates;
mod hpa_rules;
mod immutable;
mod ingress_rules;
mod ip_rules;
mod json_read;
pub mod meta;
mod namespaces;
mod network_policy_rules;
mod networking;
mod nodes;
mod other_updates;
mod pod_updates;
mod pods;
pub mod podspec;
pub mod podspec_rules;
mod policy_rules;
mod rbac;
mod resource_rules;
pub mod service_families;
mod service_rules;
pub mod service_updates;
mod services;
mod simple_defaults;
pub(crate) mod small_rules;
mod statefulset_rules;
mod storage_rules;
mod storage_updates;
mod trust_bundles;
mod webhook_rules;
pub mod workload_rules;
mod workloads;

use serde_json::Value;

use crate::api::status::Cause;

/// The rule a kind's object names follow (upstream's `ValidateNameFunc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// DNS-1123 subdomain: most kinds.
    Subdomain,
    /// DNS-1123 label: namespaces and the like.
    Label,
    /// DNS-1035 label: services.
    Label1035,
    /// A path segment only (no `/`, not `.` or `..`): RBAC objects, and the like.
    PathSegment,
    /// An IP address in canonical form: IPAddresses.
    IpAddress,
}

/// A kind's write-path behaviour. Shared by all cores; pure functions of the objects given.
pub trait Strategy: Send + Sync + std::fmt::Debug {
    /// Whether `metadata.generation` is set to 1 on create and bumped when the spec changes.
    fn tracks_generation(&self) -> bool {
        false
    }

    /// Whether an update changes what `metadata.generation` counts (upstream: the spec, for most
    /// kinds that track it).
    fn generation_changed(&self, new: &Value, old: &Value) -> bool {
        new.get("spec") != old.get("spec")
    }

    /// Finalizers the first DELETE adds, so the object stays until they are done (CRDs: their
    /// instances are deleted first).
    fn deletion_finalizers(&self) -> &'static [&'static str] {
        &[]
    }

    /// The type model server-side apply merges this kind's objects by and tracks their
    /// managedFields with; None: the built-in kinds' model (custom resources give their
    /// schema's, `crate::ssa::Model::from_crd_schema`).
    fn field_model(&self) -> Option<std::sync::Arc<crate::ssa::Model>> {
        None
    }

    /// Whether DELETE answers with the (last) object rather than a success Status.
    fn returns_deleted_object(&self) -> bool {
        false
    }

    /// Keys of this kind are written with a lease of this many seconds (events).
    fn ttl_seconds(&self) -> Option<i64> {
        None
    }

    /// Whether DELETE only makes the object Terminating, and it goes once something else has
    /// emptied its `spec.finalizers` (namespaces: the namespace controller deletes their
    /// contents, then finalizes them).
    fn terminates_before_delete(&self) -> bool {
        false
    }

    /// The grace period a DELETE gives the object, from the one the client asked for
    /// (upstream's `CheckGracefulDelete`); `None` for kinds deleted at once (all but pods).
    fn grace_period(&self, _obj: &Value, _requested: Option<i64>) -> Option<i64> {
        None
    }

    /// What a DELETE does to the object's dependents when the client does not say (upstream's
    /// `DefaultGarbageCollectionPolicy`, for the versions kapi serves).
    fn default_gc_policy(&self) -> GcPolicy {
        GcPolicy::DeleteDependents
    }

    /// The warning a DELETE gets when it leaves the propagation to an orphaning default.
    fn default_orphan_warning(&self) -> Option<&'static str> {
        None
    }

    fn name_rule(&self) -> NameRule {
        NameRule::Subdomain
    }

    /// What the server sets on a new object before admission (upstream's PrepareForCreate):
    /// status reset, fields only the server owns.
    fn prepare_for_create(&self, _obj: &mut Value) {}

    /// `prepare_for_create` knowing who asked (CertificateSigningRequests record the
    /// requester).
    fn prepare_for_create_by(&self, obj: &mut Value, _user: &crate::authn::UserInfo) {
        self.prepare_for_create(obj);
    }

    /// What an update of the `status` subresource keeps from the old object beyond its spec
    /// (CertificateSigningRequests: their approval conditions).
    fn prepare_for_status_update(&self, _obj: &mut Value, _old: &Value) {}

    /// What the server keeps from the old object on an update of the main resource, before
    /// admission (upstream's PrepareForUpdate), beyond the generic status/spec rules.
    fn prepare_for_update(&self, _obj: &mut Value, _old: &Value) {}

    /// The object an update of one of the kind's own subresources makes (upstream's
    /// subresource strategies: `namespaces/finalize`, `certificatesigningrequests/approval`,
    /// `pods/ephemeralcontainers`, `pods/resize`): what it takes from the request, the rest
    /// from `old`. None: the kind has no such subresource.
    fn prepare_for_subresource_update(
        &self,
        _sub: &str,
        _new: &Value,
        _old: &Value,
    ) -> Option<Value> {
        None
    }

    /// The rules of an update through one of the kind's own subresources, instead of
    /// `validate_update` (None: the object is validated as any update); `status` has
    /// `validate_status_update`'s.
    fn validate_subresource_update(
        &self,
        sub: &str,
        obj: &Value,
        old: &Value,
    ) -> Option<Vec<Cause>> {
        match sub {
            "status" => self.validate_status_update(obj, old),
            _ => None,
        }
    }

    /// The rules of a `status` update, where upstream checks the status only
    /// (`Validate<Kind>StatusUpdate`); None: the object is validated as any update.
    fn validate_status_update(&self, _obj: &Value, _old: &Value) -> Option<Vec<Cause>> {
        None
    }

    /// The kind's defaults (upstream's `SetDefaults_*`).
    fn default(&self, _obj: &mut Value) {}

    /// The kind's own create rules (upstream's `Validate<Kind>`), beyond object meta.
    fn validate_create(&self, _obj: &Value) -> Vec<Cause> {
        Vec::new()
    }

    /// The kind's own update rules (upstream's `Validate<Kind>Update`), beyond object meta.
    fn validate_update(&self, obj: &Value, _old: &Value) -> Vec<Cause> {
        self.validate_create(obj)
    }
}

/// `old` with `parent.key` (a top-level object's member: `spec.finalizers`,
/// `status.conditions`) taken from `new` (removed when `new` has none): what a subresource
/// that owns one field writes.
pub(crate) fn old_with(old: &Value, new: &Value, parent: &str, key: &str) -> Value {
    let mut out = old.clone();
    let taken = new.get(parent).and_then(|p| p.get(key)).cloned();
    if let Some(p) = out
        .as_object_mut()
        .map(|o| o.entry(parent).or_insert_with(|| serde_json::json!({})))
        .and_then(Value::as_object_mut)
    {
        match taken {
            Some(v) => p.insert(key.into(), v),
            None => p.remove(key),
        };
    }
    out
}

/// What happens to an object's dependents (objects whose ownerReferences name it) when it is
/// deleted: the garbage collector deletes them, or orphans them (the `orphan` finalizer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcPolicy {
    DeleteDependents,
    OrphanDependents,
}

/// (field, reason) of each cause, borrowed: what the rules' unit tests compare.
#[cfg(test)]
pub(crate) fn field_reasons(causes: &[Cause]) -> Vec<(&str, &str)> {
    causes
        .iter()
        .map(|c| (c.field.as_str(), c.reason.as_str()))
        .collect()
}

/// (field, reason, message) of each cause: what the update rules' unit tests compare.
#[cfg(test)]
pub(crate) fn cause_triples(causes: Vec<Cause>) -> Vec<(String, String, String)> {
    causes
        .into_iter()
        .map(|c| (c.field, c.reason, c.message))
        .collect()
}

/// (field, reason) of each cause, for tests that check which rules fired.
#[cfg(test)]
pub(crate) fn cause_fields(causes: Vec<Cause>) -> Vec<(String, String)> {
    causes.into_iter().map(|c| (c.field, c.reason)).collect()
}

/// The default strategy: nothing of its own.
#[derive(Debug)]
pub struct Generic;

impl Strategy for Generic {}

/// Kinds whose only own behaviour is tracking `metadata.generation`.
#[derive(Debug)]
pub struct Generational;

impl Strategy for Generational {
    fn tracks_generation(&self) -> bool {
        true
    }
}

/// Kinds whose own behaviour is their validation (upstream's `Validate<Kind>`), and perhaps
/// tracking `metadata.generation`.
#[derive(Debug)]
pub struct Validated {
    pub generation: bool,
    pub rules: fn(&Value) -> Vec<Cause>,
    /// The rule its names follow (most kinds: a DNS subdomain; a kind whose upstream
    /// validation does not check the name: only a path segment).
    pub names: NameRule,
}

impl Strategy for Validated {
    fn tracks_generation(&self) -> bool {
        self.generation
    }

    fn name_rule(&self) -> NameRule {
        self.names
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        (self.rules)(obj)
    }
}

/// `Validated` kinds with update rules of their own (upstream's `Validate<Kind>Update`): an
/// update runs both, in upstream's order.
#[derive(Debug)]
pub struct UpdateChecked {
    pub base: Validated,
    pub update: fn(&Value, &Value) -> Vec<Cause>,
    /// Whether upstream reports the update's own causes before the create rules'.
    pub update_first: bool,
}

impl Strategy for UpdateChecked {
    fn tracks_generation(&self) -> bool {
        self.base.tracks_generation()
    }

    fn name_rule(&self) -> NameRule {
        self.base.name_rule()
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        self.base.validate_create(obj)
    }

    fn validate_update(&self, obj: &Value, old: &Value) -> Vec<Cause> {
        let (create, update) = (self.validate_create(obj), (self.update)(obj, old));
        let (mut first, then) = match self.update_first {
            true => (update, create),
            false => (create, update),
        };
        first.extend(then);
        first
    }
}

/// The create rules of a kind that has none beyond object meta.
fn no_rules(_: &Value) -> Vec<Cause> {
    Vec::new()
}

/// Kinds whose DELETE returns the object, with nothing else of their own.
#[derive(Debug)]
pub struct ReturnsDeleted;

impl Strategy for ReturnsDeleted {
    fn returns_deleted_object(&self) -> bool {
        true
    }
}

static RESOURCE_SLICES: UpdateChecked = UpdateChecked {
    base: Validated {
        generation: true,
        rules: resource_rules::resource_slice,
        names: NameRule::Subdomain,
    },
    update: other_updates::resource_slice,
    update_first: false,
};

/// resource.k8s.io v1beta1's claims, claim templates and slices: their v1 strategies on
/// the v1 form.
static RESOURCE_V1BETA1: [converted::Converted; 3] = [
    converted::Converted {
        inner: &simple_defaults::ResourceClaims { template: false },
        kind: "ResourceClaim",
        served: "resource.k8s.io/v1beta1",
        stored: "resource.k8s.io/v1",
    },
    converted::Converted {
        inner: &simple_defaults::ResourceClaims { template: true },
        kind: "ResourceClaimTemplate",
        served: "resource.k8s.io/v1beta1",
        stored: "resource.k8s.io/v1",
    },
    converted::Converted {
        inner: &RESOURCE_SLICES,
        kind: "ResourceSlice",
        served: "resource.k8s.io/v1beta1",
        stored: "resource.k8s.io/v1",
    },
];

/// The strategy of a built-in resource served at `version`: the kind's own, on the stored
/// version's form where the served version's fields differ.
pub fn strategy_for_version(group: &str, version: &str, resource: &str) -> &'static dyn Strategy {
    match (group, version, resource) {
        ("resource.k8s.io", "v1beta1", "resourceclaims") => &RESOURCE_V1BETA1[0],
        ("resource.k8s.io", "v1beta1", "resourceclaimtemplates") => &RESOURCE_V1BETA1[1],
        ("resource.k8s.io", "v1beta1", "resourceslices") => &RESOURCE_V1BETA1[2],
        _ => strategy_for(group, resource),
    }
}

/// The strategy of a built-in resource (`group`, plural `resource`).
pub fn strategy_for(group: &str, resource: &str) -> &'static dyn Strategy {
    match (group, resource) {
        ("", "pods") => &pods::Pods,
        ("certificates.k8s.io", "certificatesigningrequests") => {
            &certificates::CertificateSigningRequests
        }
        ("certificates.k8s.io", "clustertrustbundles") => &trust_bundles::ClusterTrustBundles,
        ("", "namespaces") => &namespaces::Namespaces,
        ("", "events") => &events::Events { legacy: true },
        ("events.k8s.io", "events") => &events::Events { legacy: false },
        ("", "services") => &services::Services,
        ("", "nodes") => &nodes::Nodes,
        ("resource.k8s.io", "resourceclaims") => {
            &simple_defaults::ResourceClaims { template: false }
        }
        ("resource.k8s.io", "resourceclaimtemplates") => {
            &simple_defaults::ResourceClaims { template: true }
        }
        ("", "persistentvolumes") => &simple_defaults::PersistentVolumes,
        ("", "persistentvolumeclaims") => &simple_defaults::PersistentVolumeClaims,
        ("", "secrets") => &simple_defaults::Secrets,
        ("", "configmaps") => &ConfigMaps,
        ("", "resourcequotas") => &ResourceQuotas,
        ("", "limitranges") => &simple_defaults::LimitRanges,
        ("", "endpoints") => &networking::EndpointsStrategy,
        ("apps", "deployments") => &workloads::Deployments,
        ("apps", "statefulsets") => &workloads::StatefulSets,
        ("apps", "daemonsets") => &workloads::DaemonSets,
        ("apps", "replicasets") => &workloads::ReplicaSets,
        ("", "replicationcontrollers") => &workloads::ReplicationControllers,
        ("", "podtemplates") => &workloads::PodTemplates,
        ("batch", "jobs") => &batch::Jobs,
        ("batch", "cronjobs") => &batch::CronJobs,
        ("networking.k8s.io", "networkpolicies") => &networking::NetworkPolicies,
        ("networking.k8s.io", "ingresses") => &networking::Ingresses,
        ("discovery.k8s.io", "endpointslices") => &networking::EndpointSlices,
        ("admissionregistration.k8s.io", "mutatingwebhookconfigurations") => {
            &admissionregistration::WebhookConfigurations { mutating: true }
        }
        ("admissionregistration.k8s.io", "validatingwebhookconfigurations") => {
            &admissionregistration::WebhookConfigurations { mutating: false }
        }
        ("admissionregistration.k8s.io", "validatingadmissionpolicies") => {
            &admissionregistration::VALIDATING_POLICIES
        }
        ("admissionregistration.k8s.io", "mutatingadmissionpolicies") => {
            &admissionregistration::MUTATING_POLICIES
        }
        ("admissionregistration.k8s.io", "validatingadmissionpolicybindings") => {
            &admissionregistration::VALIDATING_BINDINGS
        }
        ("admissionregistration.k8s.io", "mutatingadmissionpolicybindings") => {
            &admissionregistration::MUTATING_BINDINGS
        }
        ("autoscaling", "horizontalpodautoscalers") => &simple_defaults::HorizontalPodAutoscalers,
        ("flowcontrol.apiserver.k8s.io", "flowschemas") => &simple_defaults::FlowSchemas,
        ("flowcontrol.apiserver.k8s.io", "prioritylevelconfigurations") => {
            &simple_defaults::PriorityLevels
        }
        ("scheduling.k8s.io", "priorityclasses") => &simple_defaults::PriorityClasses,
        ("storage.k8s.io", "storageclasses") => &simple_defaults::StorageClasses,
        ("storage.k8s.io", "csidrivers") => &simple_defaults::CsiDrivers,
        ("storage.k8s.io", "volumeattachments") => &UpdateChecked {
            base: Validated {
                generation: false,
                rules: storage_rules::volume_attachment,
                names: NameRule::Subdomain,
            },
            update: storage_updates::volume_attachment,
            update_first: false,
        },
        ("storage.k8s.io", "volumeattributesclasses") => &UpdateChecked {
            base: Validated {
                generation: false,
                rules: storage_rules::volume_attributes_class,
                names: NameRule::Subdomain,
            },
            update: storage_updates::volume_attributes_class,
            update_first: true,
        },
        ("storage.k8s.io", "csistoragecapacities") => &UpdateChecked {
            base: Validated {
                generation: false,
                rules: storage_rules::csi_storage_capacity,
                names: NameRule::Subdomain,
            },
            update: storage_updates::csi_storage_capacity,
            update_first: false,
        },
        ("storage.k8s.io", "csinodes") => &UpdateChecked {
            base: Validated {
                generation: false,
                rules: no_rules,
                names: NameRule::Subdomain,
            },
            update: storage_updates::csi_node,
            update_first: false,
        },
        ("rbac.authorization.k8s.io", "roles" | "clusterroles") => &rbac::ROLES,
        ("rbac.authorization.k8s.io", "rolebindings") => &rbac::ROLE_BINDINGS,
        ("rbac.authorization.k8s.io", "clusterrolebindings") => &rbac::CLUSTER_ROLE_BINDINGS,
        ("policy", "poddisruptionbudgets") => &Updated {
            generation: true,
            create: small_rules::disruption_budget,
            update: group_updates::disruption_budget,
            status: Some(group_updates::disruption_budget_status),
            names: NameRule::PathSegment,
        },
        ("networking.k8s.io", "ingressclasses") => &UpdateChecked {
            base: Validated {
                generation: true,
                rules: small_rules::ingress_class,
                names: NameRule::Subdomain,
            },
            update: other_updates::ingress_class,
            update_first: true,
        },
        ("resource.k8s.io", "resourceslices") => &RESOURCE_SLICES,
        ("node.k8s.io", "runtimeclasses") => &UpdateChecked {
            base: Validated {
                generation: false,
                rules: small_rules::runtime_class,
                names: NameRule::Subdomain,
            },
            update: other_updates::runtime_class,
            update_first: false,
        },
        ("coordination.k8s.io", "leases") => &Validated {
            generation: false,
            rules: small_rules::lease,
            names: NameRule::Subdomain,
        },
        ("apps", "controllerrevisions") => &Updated {
            generation: false,
            create: small_rules::controller_revision,
            update: apps_updates::controller_revision,
            status: None,
            names: NameRule::Subdomain,
        },
        ("networking.k8s.io", "ipaddresses") => &ip_rules::IpAddresses,
        ("networking.k8s.io", "servicecidrs") => &UpdateChecked {
            base: Validated {
                generation: false,
                rules: ip_rules::service_cidr,
                names: NameRule::Subdomain,
            },
            update: other_updates::service_cidr,
            update_first: false,
        },
        ("apiextensions.k8s.io", "customresourcedefinitions") => &crds::CustomResourceDefinitions,
        ("resource.k8s.io", "deviceclasses") => &Generational,
        ("rbac.authorization.k8s.io", _) => &PathNamed,
        ("apiregistration.k8s.io", "apiservices") => &ApiServices,
        _ => &Generic,
    }
}

/// APIServices: named `<version>.<group>` (`v1.` for the core group), a valid path segment;
/// their rules (the same on update) are `apiservice_rules`.
#[derive(Debug)]
pub struct ApiServices;

impl Strategy for ApiServices {
    fn name_rule(&self) -> NameRule {
        NameRule::PathSegment
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        apiservice_rules::validate(obj)
    }

    /// A status update checks the conditions only.
    fn validate_status_update(&self, obj: &Value, _old: &Value) -> Option<Vec<Cause>> {
        Some(apiservice_rules::validate_status(obj))
    }
}

/// RBAC objects: any name that is a valid path segment.
#[derive(Debug)]
pub struct PathNamed;

impl Strategy for PathNamed {
    fn name_rule(&self) -> NameRule {
        NameRule::PathSegment
    }
}

/// Kinds whose own behaviour is their create rules (upstream's `Validate<Kind>`) and update
/// rules (`Validate<Kind>Update`, which run the create rules too where upstream does).
#[derive(Debug)]
pub struct Updated {
    pub generation: bool,
    pub create: fn(&Value) -> Vec<Cause>,
    pub update: fn(&Value, &Value) -> Vec<Cause>,
    /// The rules of a `status` subresource update, when upstream checks only the status.
    pub status: Option<fn(&Value, &Value) -> Vec<Cause>>,
    pub names: NameRule,
}

impl Strategy for Updated {
    fn tracks_generation(&self) -> bool {
        self.generation
    }

    fn name_rule(&self) -> NameRule {
        self.names
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        (self.create)(obj)
    }

    fn validate_update(&self, obj: &Value, old: &Value) -> Vec<Cause> {
        (self.update)(obj, old)
    }

    fn validate_status_update(&self, obj: &Value, old: &Value) -> Option<Vec<Cause>> {
        self.status.map(|status| status(obj, old))
    }
}

/// ConfigMaps: marked `immutable`, their data is frozen.
#[derive(Debug)]
pub struct ConfigMaps;

impl Strategy for ConfigMaps {
    fn validate_update(&self, obj: &Value, old: &Value) -> Vec<Cause> {
        core_updates::config_map(obj, old)
    }
}

/// ResourceQuotas: their scopes are fixed once created.
#[derive(Debug)]
pub struct ResourceQuotas;

impl Strategy for ResourceQuotas {
    fn validate_update(&self, obj: &Value, old: &Value) -> Vec<Cause> {
        core_updates::resource_quota(obj, old)
    }
}
