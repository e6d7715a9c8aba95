//! The built-in resources kapi serves: one row of data per group/version/resource (kind,
//! scope, verbs, subresources, etcd key prefix, storage encoding), read at start-up from the
//! discovery documents and etcd layout of a v1.36 apiserver (`src/api/data/`). Per-kind
//! behaviour is data here, not code: one generic REST path serves every row. Custom resources
//! add rows while serving (`crate::crd`), a snapshot swapped whole when CRDs change.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use kapi_codec::Schema;
use kapi_codec::schema::MsgId;

/// Discovery documents as upstream serves them, by file name (`api__v1.json`, ...).
pub const DISCOVERY: &[(&str, &[u8])] = &[
    (
        "version.json",
        include_bytes!("data/discovery/version.json"),
    ),
    ("api.json", include_bytes!("data/discovery/api.json")),
    ("apis.json", include_bytes!("data/discovery/apis.json")),
    (
        "api.aggregated-v2.json",
        include_bytes!("data/discovery/api.aggregated-v2.json"),
    ),
    (
        "apis.aggregated-v2.json",
        include_bytes!("data/discovery/apis.aggregated-v2.json"),
    ),
    (
        "api__v1.json",
        include_bytes!("data/discovery/api__v1.json"),
    ),
    (
        "apis__admissionregistration.k8s.io__v1.json",
        include_bytes!("data/discovery/apis__admissionregistration.k8s.io__v1.json"),
    ),
    (
        "apis__apiextensions.k8s.io__v1.json",
        include_bytes!("data/discovery/apis__apiextensions.k8s.io__v1.json"),
    ),
    (
        "apis__apiregistration.k8s.io__v1.json",
        include_bytes!("data/discovery/apis__apiregistration.k8s.io__v1.json"),
    ),
    (
        "apis__apps__v1.json",
        include_bytes!("data/discovery/apis__apps__v1.json"),
    ),
    (
        "apis__authentication.k8s.io__v1.json",
        include_bytes!("data/discovery/apis__authentication.k8s.io__v1.json"),
    ),
    (
        "apis__authorization.k8s.io__v1.json",
        include_bytes!("data/discovery/apis__authorization.k8s.io__v1.json"),
    ),
    (
        "apis__autoscaling__v1.json",
        include_bytes!("data/discovery/apis__autoscaling__v1.json"),
    ),
    (
        "apis__autoscaling__v2.json",
        include_bytes!("data/discovery/apis__autoscaling__v2.json"),
    ),
    (
        "apis__batch__v1.json",
        include_bytes!("data/discovery/apis__batch__v1.json"),
    ),
    (
        "apis__certificates.k8s.io__v1.json",
        include_bytes!("data/discovery/apis__certificates.k8s.io__v1.json"),
    ),
    (
        "apis__coordination.k8s.io__v1.json",
        include_bytes!("data/discovery/apis__coordination.k8s.io__v1.json"),
    ),
    (
        "apis__discovery.k8s.io__v1.json",
        include_bytes!("data/discovery/apis__discovery.k8s.io__v1.json"),
    ),
    (
        "apis__events.k8s.io__v1.json",
        include_bytes!("data/discovery/apis__events.k8s.io__v1.json"),
    ),
    (
        "apis__flowcontrol.apiserver.k8s.io__v1.json",
        include_bytes!("data/discovery/apis__flowcontrol.apiserver.k8s.io__v1.json"),
    ),
    (
        "apis__networking.k8s.io__v1.json",
        include_bytes!("data/discovery/apis__networking.k8s.io__v1.json"),
    ),
    (
        "apis__node.k8s.io__v1.json",
        include_bytes!("data/discovery/apis__node.k8s.io__v1.json"),
    ),
    (
        "apis__policy__v1.json",
        include_bytes!("data/discovery/apis__policy__v1.json"),
    ),
    (
        "apis__rbac.authorization.k8s.io__v1.json",
        include_bytes!("data/discovery/apis__rbac.authorization.k8s.io__v1.json"),
    ),
    (
        "apis__resource.k8s.io__v1.json",
        include_bytes!("data/discovery/apis__resource.k8s.io__v1.json"),
    ),
    (
        "apis__scheduling.k8s.io__v1.json",
        include_bytes!("data/discovery/apis__scheduling.k8s.io__v1.json"),
    ),
    (
        "apis__storage.k8s.io__v1.json",
        include_bytes!("data/discovery/apis__storage.k8s.io__v1.json"),
    ),
];

const ETCD_LAYOUT: &str = include_str!("data/etcd-layout.tsv");

/// How a resource's objects are kept in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// Not persisted (bindings, reviews, componentstatuses): create-only or computed.
    None,
    /// Protobuf with the `k8s\0` envelope, in this storage version.
    Protobuf { api_version: String, kind: String },
    /// JSON (APIServices, CRDs, custom resources).
    Json { api_version: String, kind: String },
}

#[derive(Debug, Clone)]
pub struct Resource {
    pub group: String,
    pub version: String,
    /// Plural name, as in the URL.
    pub resource: String,
    pub kind: String,
    pub namespaced: bool,
    pub verbs: Vec<String>,
    /// Subresources served (`status`, `scale`, `binding`, ...).
    pub subresources: Vec<String>,
    /// Key prefix below `--etcd-prefix`, with a trailing slash: `pods/`, `minions/`.
    pub key_prefix: String,
    pub storage: Storage,
    /// The served version's message, for transcoding.
    pub msg: Option<MsgId>,
    /// The kind's behaviour on the write path (`crate::kinds`).
    pub strategy: StrategyRef,
    /// What a custom resource's definition says beyond the row (`crate::crd`).
    pub custom: Option<Arc<crate::crd::Served>>,
}

/// A row's strategy: a built-in kind's static one, or one made from a CRD.
#[derive(Clone)]
pub enum StrategyRef {
    Static(&'static dyn crate::kinds::Strategy),
    Shared(Arc<dyn crate::kinds::Strategy>),
}

impl std::ops::Deref for StrategyRef {
    type Target = dyn crate::kinds::Strategy;
    fn deref(&self) -> &Self::Target {
        match self {
            StrategyRef::Static(s) => *s,
            StrategyRef::Shared(s) => s.as_ref(),
        }
    }
}

impl std::fmt::Debug for StrategyRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

impl Resource {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    pub fn has_verb(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }

    /// Whether this row serves a custom resource (JSON objects, no protobuf message).
    pub fn is_custom(&self) -> bool {
        self.custom.is_some()
    }

    /// `pods` or `deployments.apps`: the group-qualified resource of error messages.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }
}

/// Where upstream keeps the resources that have no GA version, by the storage version of
/// `pkg/kubeapiserver/default_storage_factory_builder.go` (or the only version there is).
const BETA_STORAGE: &[(&str, &str, &str)] = &[
    ("certificates.k8s.io", "clustertrustbundles", "v1beta1"),
    ("certificates.k8s.io", "podcertificaterequests", "v1beta1"),
    ("coordination.k8s.io", "leasecandidates", "v1beta1"),
    ("internal.apiserver.k8s.io", "storageversions", "v1alpha1"),
    ("resource.k8s.io", "devicetaintrules", "v1alpha3"),
    ("resource.k8s.io", "resourcepoolstatusrequests", "v1alpha3"),
    ("scheduling.k8s.io", "workloads", "v1alpha2"),
    ("scheduling.k8s.io", "podgroups", "v1alpha2"),
    (
        "storagemigration.k8s.io",
        "storageversionmigrations",
        "v1beta1",
    ),
];

/// A beta or alpha version's storage: its GA version's (stored once, in the GA storage
/// version, and converted), else upstream's storage version under `/registry/<resource>/`.
fn beta_storage(
    layout: &HashMap<(String, String, String), (String, Storage)>,
    group: &str,
    resource: &str,
    kind: &str,
) -> Option<(String, Storage)> {
    if let Some((_, found)) = layout
        .iter()
        .find(|((g, _, r), _)| g == group && r == resource)
    {
        return Some(found.clone());
    }
    let (_, _, version) = BETA_STORAGE
        .iter()
        .find(|(g, r, _)| *g == group && *r == resource)?;
    Some((
        format!("{resource}/"),
        Storage::Protobuf {
            api_version: format!("{group}/{version}"),
            kind: kind.to_string(),
        },
    ))
}

pub struct Registry {
    resources: Vec<Resource>,
    by_gvr: HashMap<(String, String, String), usize>,
    /// The rows of custom resources, replaced whole when CRDs change.
    custom: ArcSwap<Custom>,
    /// The group-versions extension API servers serve (APIServices with a backend that
    /// answered their discovery), for discovery.
    remote: ArcSwap<Vec<crate::aggregator::availability::RemoteVersion>>,
}

/// The custom resources served now: their rows and discovery, made together from the CRDs.
#[derive(Default)]
pub struct Custom {
    pub rows: Vec<Arc<Resource>>,
    pub by_gvr: HashMap<(String, String, String), usize>,
    /// Discovery documents that change with them, by name as in `DISCOVERY`
    /// (`apis.json`, `apis.aggregated-v2.json`, `apis__<group>__<version>.json`).
    pub docs: HashMap<String, Arc<Vec<u8>>>,
    /// OpenAPI documents that change with them (`swagger`, `apis/<group>/<version>`).
    pub openapi: HashMap<String, Arc<crate::api::openapi::Doc>>,
}

/// A row found by `lookup`: a built-in one borrowed, a custom one shared.
pub enum Row<'a> {
    Builtin(&'a Resource),
    Custom(Arc<Resource>),
}

impl std::ops::Deref for Row<'_> {
    type Target = Resource;
    fn deref(&self) -> &Resource {
        match self {
            Row::Builtin(r) => r,
            Row::Custom(r) => r,
        }
    }
}

impl Registry {
    pub fn builtin() -> Registry {
        let schema = Schema::get();
        let mut layout: HashMap<(String, String, String), (String, Storage)> = HashMap::new();
        for line in ETCD_LAYOUT.lines().skip(1) {
            let c: Vec<&str> = line.split('\t').collect();
            if c.len() < 9 {
                continue;
            }
            let storage = match (c[7], c[8].split_once(' ')) {
                (e, Some((av, k))) if e.starts_with("protobuf") => Storage::Protobuf {
                    api_version: av.to_string(),
                    kind: k.to_string(),
                },
                (e, Some((av, k))) if e.starts_with("json") => Storage::Json {
                    api_version: av.to_string(),
                    kind: k.to_string(),
                },
                _ => Storage::None,
            };
            let prefix = c[6].strip_prefix("/registry/").unwrap_or("").to_string();
            layout.insert((c[0].into(), c[1].into(), c[2].into()), (prefix, storage));
        }
        let mut resources = Vec::new();
        let betas = crate::api::runtime_config::served_betas()
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()));
        for (name, bytes) in DISCOVERY.iter().map(|(n, b)| (*n, *b)).chain(betas) {
            if !(name.starts_with("api__") || name.starts_with("apis__")) {
                continue;
            }
            let Ok(doc) = serde_json::from_slice::<serde_json::Value>(bytes) else {
                continue;
            };
            let gv = doc["groupVersion"].as_str().unwrap_or_default();
            let (group, version) = gv.split_once('/').unwrap_or(("", gv));
            let entries = doc["resources"].as_array().cloned().unwrap_or_default();
            for r in &entries {
                let full = r["name"].as_str().unwrap_or_default();
                if full.contains('/') {
                    continue;
                }
                let strings = |v: &serde_json::Value| -> Vec<String> {
                    v.as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|s| s.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default()
                };
                let subresources = entries
                    .iter()
                    .filter_map(|s| s["name"].as_str())
                    .filter_map(|n| n.strip_prefix(&format!("{full}/")).map(str::to_string))
                    .collect();
                let kind = r["kind"].as_str().unwrap_or_default().to_string();
                let (key_prefix, storage) = layout
                    .get(&(group.to_string(), version.to_string(), full.to_string()))
                    .cloned()
                    .or_else(|| beta_storage(&layout, group, full, &kind))
                    .unwrap_or((String::new(), Storage::None));
                let api_version = gv.to_string();
                resources.push(Resource {
                    group: group.to_string(),
                    version: version.to_string(),
                    resource: full.to_string(),
                    msg: schema.kind(&api_version, &kind),
                    kind,
                    namespaced: r["namespaced"].as_bool().unwrap_or(false),
                    verbs: strings(&r["verbs"]),
                    subresources,
                    strategy: StrategyRef::Static(crate::kinds::strategy_for_version(
                        group, version, full,
                    )),
                    custom: None,
                    key_prefix,
                    storage,
                });
            }
        }
        let by_gvr = resources
            .iter()
            .enumerate()
            .map(|(i, r)| ((r.group.clone(), r.version.clone(), r.resource.clone()), i))
            .collect();
        Registry {
            resources,
            by_gvr,
            custom: ArcSwap::from_pointee(Custom::default()),
            remote: ArcSwap::from_pointee(Vec::new()),
        }
    }

    /// The group-versions of extension API servers.
    pub fn remote(&self) -> Arc<Vec<crate::aggregator::availability::RemoteVersion>> {
        self.remote.load_full()
    }

    pub fn set_remote(&self, remote: Vec<crate::aggregator::availability::RemoteVersion>) {
        let same = {
            let cur = self.remote.load();
            cur.len() == remote.len()
                && cur.iter().zip(&remote).all(|(a, b)| {
                    a.group == b.group && a.version == b.version && a.resources == b.resources
                })
        };
        if !same {
            self.remote.store(Arc::new(remote));
        }
    }

    /// A built-in row or a custom resource's row.
    pub fn lookup(&self, group: &str, version: &str, resource: &str) -> Option<Row<'_>> {
        if let Some(r) = self.get(group, version, resource) {
            return Some(Row::Builtin(r));
        }
        let custom = self.custom.load();
        if custom.rows.is_empty() {
            return None;
        }
        custom
            .by_gvr
            .get(&(group.to_string(), version.to_string(), resource.to_string()))
            .map(|&i| Row::Custom(custom.rows[i].clone()))
    }

    /// Whether kapi itself serves `group/version` (a built-in or custom resource's).
    pub fn lookup_version(&self, group: &str, version: &str) -> Option<()> {
        if self
            .resources
            .iter()
            .any(|r| r.group == group && r.version == version)
        {
            return Some(());
        }
        self.custom
            .load()
            .rows
            .iter()
            .any(|r| r.group == group && r.version == version)
            .then_some(())
    }

    /// The custom resources served now.
    pub fn custom(&self) -> Arc<Custom> {
        self.custom.load_full()
    }

    /// Serves `custom` from now on (the CRD controller, when CRDs change).
    pub fn set_custom(&self, custom: Custom) {
        self.custom.store(Arc::new(custom));
    }

    pub fn get(&self, group: &str, version: &str, resource: &str) -> Option<&Resource> {
        self.by_gvr
            .get(&(group.to_string(), version.to_string(), resource.to_string()))
            .map(|&i| &self.resources[i])
    }

    pub fn all(&self) -> &[Resource] {
        &self.resources
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_resource_is_known_with_storage_and_schema() {
        let reg = Registry::builtin();
        let pods = reg.get("", "v1", "pods").expect("pods");
        assert_eq!(pods.kind, "Pod");
        assert!(pods.namespaced);
        assert_eq!(pods.key_prefix, "pods/");
        assert!(pods.subresources.iter().any(|s| s == "status"));
        assert!(pods.msg.is_some());
        assert_eq!(reg.get("", "v1", "nodes").unwrap().key_prefix, "minions/");
        assert_eq!(
            reg.get("", "v1", "services").unwrap().key_prefix,
            "services/specs/"
        );
        // Every persisted resource has a key prefix and a message to transcode with.
        for r in reg.all() {
            if r.storage != Storage::None {
                assert!(!r.key_prefix.is_empty(), "{} has no key prefix", r.resource);
                assert!(
                    r.msg.is_some(),
                    "{}/{} {} has no schema",
                    r.group,
                    r.version,
                    r.kind
                );
            }
        }
        assert!(reg.all().len() >= 60, "{}", reg.all().len());
    }

    #[test]
    fn every_beta_resource_has_a_schema_and_upstreams_storage() {
        let schema = Schema::get();
        let mut layout: HashMap<(String, String, String), (String, Storage)> = HashMap::new();
        for r in Registry::builtin().all() {
            layout.insert(
                (r.group.clone(), r.version.clone(), r.resource.clone()),
                (r.key_prefix.clone(), r.storage.clone()),
            );
        }
        for (name, bytes) in crate::api::runtime_config::BETA_DISCOVERY {
            let doc: serde_json::Value = serde_json::from_slice(bytes).unwrap();
            let gv = doc["groupVersion"].as_str().unwrap();
            let group = gv.split('/').next().unwrap();
            for r in doc["resources"].as_array().unwrap() {
                let (resource, kind) = (r["name"].as_str().unwrap(), r["kind"].as_str().unwrap());
                if resource.contains('/') {
                    continue;
                }
                assert!(
                    schema.kind(gv, kind).is_some(),
                    "{name}: no schema for {kind}"
                );
                let (prefix, storage) = beta_storage(&layout, group, resource, kind)
                    .unwrap_or_else(|| panic!("{name}: no storage for {resource}"));
                assert_eq!(prefix, format!("{resource}/"), "{name}");
                let Storage::Protobuf { api_version, kind } = storage else {
                    panic!("{name}: {resource} is not stored as protobuf");
                };
                assert!(
                    schema.kind(&api_version, &kind).is_some(),
                    "{api_version} {kind}"
                );
            }
        }
        // GA resources' beta versions are stored as GA's are.
        let ips = beta_storage(&layout, "networking.k8s.io", "ipaddresses", "IPAddress").unwrap();
        assert_eq!(
            ips.1,
            Storage::Protobuf {
                api_version: "networking.k8s.io/v1".into(),
                kind: "IPAddress".into()
            }
        );
    }
}
