//! CustomResourceDefinitions made into APIs: each served version of an Established CRD becomes
//! a registry row (JSON objects at `/registry/<group>/<plural>/`), with its discovery entries,
//! its cache and its strategy. `controller` keeps the rows, the CRDs' status (names accepted,
//! Established) and their deletion (instances first) current; the rows are a snapshot the
//! registry swaps whole, so adding a CRD never pauses reads of other resources.

pub mod controller;
pub mod conversion;
pub mod openapi;
pub mod strategy;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::api::registry::{Custom, Registry, Resource, Storage, StrategyRef};

/// The verbs of every custom resource, in upstream's discovery order.
pub const VERBS: &[&str] = &[
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "create",
    "update",
    "watch",
];

/// The key prefix (below `--etcd-prefix`) of CRD objects.
pub const CRD_KEY_PREFIX: &str = "apiextensions.k8s.io/customresourcedefinitions/";

/// The finalizer a deleted CRD holds until its instances are gone.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// One additional printer column.
#[derive(Debug, Clone)]
pub struct PrinterColumn {
    pub name: String,
    pub ty: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    pub json_path: String,
}

/// The scale subresource's paths.
#[derive(Debug, Clone)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    pub label_selector: Option<String>,
}

/// How objects move between a CRD's versions.
#[derive(Debug, Clone)]
pub enum Conversion {
    /// Only apiVersion changes.
    None,
    /// A ConversionReview to this client config.
    Webhook {
        client_config: Value,
        review_versions: Vec<String>,
    },
}

/// What one served version of a CRD says beyond its registry row.
#[derive(Debug)]
pub struct Served {
    pub crd_name: String,
    pub crd_uid: String,
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub list_kind: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub namespaced: bool,
    pub storage_version: String,
    /// The version's `openAPIV3Schema`.
    pub schema: Option<Value>,
    /// The same, parsed for pruning, defaulting and validation.
    pub structural: Option<crate::structural::Structural>,
    /// Its `x-kubernetes-validations`, compiled (none when they do not compile: the CRD's
    /// validation refuses such a CRD).
    pub rules: Option<crate::cel::rules::CrdRules>,
    /// Its type model for server-side apply and managedFields.
    pub model: Option<Arc<crate::ssa::Model>>,
    pub printer_columns: Vec<PrinterColumn>,
    /// `selectableFields` JSON paths (`.spec.color`), as field selectors name them
    /// (`spec.color`).
    pub selectable_fields: Vec<String>,
    pub status: bool,
    pub scale: Option<ScalePaths>,
    pub conversion: Conversion,
    /// Deletion started: no new instances.
    pub terminating: bool,
}

impl Served {
    pub fn api_version(&self) -> String {
        format!("{}/{}", self.group, self.version)
    }

    pub fn storage_api_version(&self) -> String {
        format!("{}/{}", self.group, self.storage_version)
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn text(v: &Value, ptr: &str) -> String {
    v.pointer(ptr)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Whether a CRD (v1, as served) has condition `ty` True.
pub fn condition_true(crd: &Value, ty: &str) -> bool {
    crd.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == ty && c["status"] == "True"))
}

/// The served versions of a CRD (v1 JSON), as the controller's rows see them: the accepted
/// names when there are some, else the spec's.
pub fn served_versions(crd: &Value) -> Vec<Served> {
    let names = match crd.pointer("/status/acceptedNames/plural") {
        Some(p) if p.as_str().is_some_and(|p| !p.is_empty()) => &crd["status"]["acceptedNames"],
        _ => &crd["spec"]["names"],
    };
    let group = text(crd, "/spec/group");
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let storage_version = versions
        .iter()
        .find(|v| v["storage"] == true)
        .and_then(|v| v["name"].as_str())
        .unwrap_or_default()
        .to_string();
    let conversion = match crd
        .pointer("/spec/conversion/strategy")
        .and_then(Value::as_str)
    {
        Some("Webhook") => Conversion::Webhook {
            client_config: crd
                .pointer("/spec/conversion/webhook/clientConfig")
                .cloned()
                .unwrap_or(Value::Null),
            review_versions: strings(
                crd.pointer("/spec/conversion/webhook/conversionReviewVersions")
                    .unwrap_or(&Value::Null),
            ),
        },
        _ => Conversion::None,
    };
    let kind = names["kind"].as_str().unwrap_or_default().to_string();
    let list_kind = names["listKind"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| format!("{kind}List"));
    let terminating = crd.pointer("/metadata/deletionTimestamp").is_some();
    versions
        .iter()
        .filter(|v| v["served"] == true)
        .map(|v| {
            let columns = v["additionalPrinterColumns"]
                .as_array()
                .map(|cs| {
                    cs.iter()
                        .map(|c| PrinterColumn {
                            name: text(c, "/name"),
                            ty: text(c, "/type"),
                            format: text(c, "/format"),
                            description: text(c, "/description"),
                            priority: c["priority"].as_i64().unwrap_or(0),
                            json_path: text(c, "/jsonPath"),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let scale = v.pointer("/subresources/scale").map(|s| ScalePaths {
                spec_replicas: text(s, "/specReplicasPath"),
                status_replicas: text(s, "/statusReplicasPath"),
                label_selector: s["labelSelectorPath"].as_str().map(str::to_string),
            });
            Served {
                crd_name: text(crd, "/metadata/name"),
                crd_uid: text(crd, "/metadata/uid"),
                group: group.clone(),
                version: text(v, "/name"),
                plural: names["plural"].as_str().unwrap_or_default().to_string(),
                singular: names["singular"]
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .unwrap_or_else(|| kind.to_lowercase()),
                kind: kind.clone(),
                list_kind: list_kind.clone(),
                short_names: strings(&names["shortNames"]),
                categories: strings(&names["categories"]),
                namespaced: crd.pointer("/spec/scope").and_then(Value::as_str) != Some("Cluster"),
                storage_version: storage_version.clone(),
                schema: v.pointer("/schema/openAPIV3Schema").cloned(),
                structural: v
                    .pointer("/schema/openAPIV3Schema")
                    .map(crate::structural::Structural::new),
                rules: v
                    .pointer("/schema/openAPIV3Schema")
                    .and_then(|s| crate::cel::rules::CrdRules::compile(s, "").ok())
                    .filter(|r| !r.is_empty()),
                model: v
                    .pointer("/schema/openAPIV3Schema")
                    .map(|s| Arc::new(crate::ssa::Model::from_crd_schema(s))),
                printer_columns: columns,
                selectable_fields: v["selectableFields"]
                    .as_array()
                    .map(|fs| {
                        fs.iter()
                            .filter_map(|f| f["jsonPath"].as_str())
                            .map(|p| p.trim_start_matches('.').to_string())
                            .collect()
                    })
                    .unwrap_or_default(),
                status: v.pointer("/subresources/status").is_some(),
                scale,
                conversion: conversion.clone(),
                terminating,
            }
        })
        .collect()
}

/// The key prefix of a CRD's instances (below `--etcd-prefix`): `<group>/<plural>/`, named by
/// the spec (upstream keys instances by the spec's group and plural).
pub fn key_prefix(crd: &Value) -> Option<String> {
    let group = crd.pointer("/spec/group")?.as_str()?;
    let plural = crd.pointer("/spec/names/plural")?.as_str()?;
    if group.is_empty() || plural.is_empty() || group.contains('/') || plural.contains('/') {
        return None;
    }
    Some(format!("{group}/{plural}/"))
}

/// The registry row of one served version.
fn row(served: Served) -> Resource {
    let mut subresources = Vec::new();
    if served.status {
        subresources.push("status".to_string());
    }
    if served.scale.is_some() {
        subresources.push("scale".to_string());
    }
    let served = Arc::new(served);
    Resource {
        group: served.group.clone(),
        version: served.version.clone(),
        resource: served.plural.clone(),
        kind: served.kind.clone(),
        namespaced: served.namespaced,
        verbs: VERBS.iter().map(|v| v.to_string()).collect(),
        subresources,
        key_prefix: format!("{}/{}/", served.group, served.plural),
        storage: Storage::Json {
            api_version: served.storage_api_version(),
            kind: served.kind.clone(),
        },
        msg: None,
        strategy: StrategyRef::Shared(Arc::new(strategy::CustomStrategy::new(served.clone()))),
        custom: Some(served),
    }
}

/// upstream's `storageVersionHash`: 8 bytes of SHA-256 of `group/version/kind`, base64.
pub fn storage_version_hash(group: &str, version: &str, kind: &str) -> String {
    let digest = Sha256::digest(format!("{group}/{version}/{kind}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(&digest[..8])
}

/// Kubernetes-aware version order (upstream's `CompareKubeAwareVersionStrings`): GA before
/// beta before alpha, higher numbers first, then versions not like `v1beta2` by name.
pub fn version_order(a: &str, b: &str) -> std::cmp::Ordering {
    fn parse(v: &str) -> Option<(u64, u8, u64)> {
        let rest = v.strip_prefix('v')?;
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 || rest.starts_with('0') {
            return None;
        }
        let major: u64 = rest[..digits].parse().ok()?;
        let tail = &rest[digits..];
        if tail.is_empty() {
            return Some((major, 2, 0));
        }
        let (stage, n) = if let Some(n) = tail.strip_prefix("beta") {
            (1, n)
        } else if let Some(n) = tail.strip_prefix("alpha") {
            (0, n)
        } else {
            return None;
        };
        if n.is_empty() || !n.chars().all(|c| c.is_ascii_digit()) || n.starts_with('0') {
            return None;
        }
        Some((major, stage, n.parse().ok()?))
    }
    use std::cmp::Ordering;
    match (parse(a), parse(b)) {
        (Some((ma, sa, na)), Some((mb, sb, nb))) => sb.cmp(&sa).then(mb.cmp(&ma)).then(nb.cmp(&na)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// The rows and discovery documents of the custom resources of `crds` (v1 JSON): every served
/// version of every Established CRD. `registry` supplies the built-in discovery documents the
/// custom groups are added to.
pub fn build(crds: &[Value]) -> Custom {
    let mut custom = build_rows(crds);
    custom.openapi = openapi::documents(&custom.rows);
    custom
}

/// `build` without the OpenAPI documents (the quick part, for start-up).
pub fn build_rows(crds: &[Value]) -> Custom {
    let mut rows: Vec<Arc<Resource>> = Vec::new();
    for crd in crds {
        if !condition_true(crd, "Established") {
            continue;
        }
        for s in served_versions(crd) {
            if s.plural.is_empty() || s.kind.is_empty() || s.group.is_empty() {
                continue;
            }
            rows.push(Arc::new(row(s)));
        }
    }
    let by_gvr = rows
        .iter()
        .enumerate()
        .map(|(i, r)| ((r.group.clone(), r.version.clone(), r.resource.clone()), i))
        .collect();
    let docs = discovery_docs(&rows);
    Custom {
        rows,
        by_gvr,
        docs,
        openapi: HashMap::new(),
    }
}

/// Discovery with the custom groups: `/apis` (legacy and aggregated) with them added after
/// the built-in groups, and one APIResourceList per custom group-version.
fn discovery_docs(rows: &[Arc<Resource>]) -> HashMap<String, Arc<Vec<u8>>> {
    let mut docs = HashMap::new();
    if rows.is_empty() {
        return docs;
    }
    // group → version → rows
    let mut groups: BTreeMap<&str, BTreeMap<&str, Vec<&Resource>>> = BTreeMap::new();
    for r in rows {
        groups
            .entry(&r.group)
            .or_default()
            .entry(&r.version)
            .or_default()
            .push(r);
    }
    let mut legacy_groups = Vec::new();
    let mut aggregated = Vec::new();
    for (group, versions) in &groups {
        let mut names: Vec<&str> = versions.keys().copied().collect();
        names.sort_by(|a, b| version_order(a, b));
        let entries: Vec<Value> = names
            .iter()
            .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
            .collect();
        legacy_groups.push(json!({
            "name": group,
            "versions": entries,
            "preferredVersion": entries[0],
        }));
        let mut agg_versions = Vec::new();
        for v in &names {
            let mut list = Vec::new();
            let mut agg = Vec::new();
            let mut rs = versions[v].clone();
            rs.sort_by(|a, b| a.resource.cmp(&b.resource));
            for r in rs {
                let Some(c) = &r.custom else { continue };
                let scope = if r.namespaced {
                    "Namespaced"
                } else {
                    "Cluster"
                };
                let mut entry = json!({
                    "name": r.resource,
                    "singularName": c.singular,
                    "namespaced": r.namespaced,
                    "kind": r.kind,
                    "verbs": VERBS,
                });
                let mut agg_entry = json!({
                    "resource": r.resource,
                    "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
                    "scope": scope,
                    "singularResource": c.singular,
                    "verbs": VERBS,
                });
                for (key, vals) in [
                    ("shortNames", &c.short_names),
                    ("categories", &c.categories),
                ] {
                    if !vals.is_empty() {
                        entry[key] = json!(vals);
                        agg_entry[key] = json!(vals);
                    }
                }
                entry["storageVersionHash"] =
                    json!(storage_version_hash(&c.group, &c.storage_version, &c.kind));
                list.push(entry);
                let mut subs = Vec::new();
                if c.status {
                    list.push(json!({
                        "name": format!("{}/status", r.resource),
                        "singularName": "",
                        "namespaced": r.namespaced,
                        "kind": r.kind,
                        "verbs": ["get", "patch", "update"],
                    }));
                    subs.push(json!({
                        "subresource": "status",
                        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
                        "verbs": ["get", "patch", "update"],
                    }));
                }
                if c.scale.is_some() {
                    list.push(json!({
                        "name": format!("{}/scale", r.resource),
                        "singularName": "",
                        "namespaced": r.namespaced,
                        "group": "autoscaling",
                        "version": "v1",
                        "kind": "Scale",
                        "verbs": ["get", "patch", "update"],
                    }));
                    subs.push(json!({
                        "subresource": "scale",
                        "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
                        "verbs": ["get", "patch", "update"],
                    }));
                }
                if !subs.is_empty() {
                    agg_entry["subresources"] = json!(subs);
                }
                agg.push(agg_entry);
            }
            let doc = json!({
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": format!("{group}/{v}"),
                "resources": list,
            });
            docs.insert(format!("apis__{group}__{v}.json"), Arc::new(compact(&doc)));
            agg_versions.push(json!({"version": v, "resources": agg, "freshness": "Current"}));
        }
        aggregated.push(json!({"metadata": {"name": group}, "versions": agg_versions}));
    }
    let builtin = |name: &str| -> Value {
        let doc = crate::api::runtime_config::discovery(name).unwrap_or_default();
        serde_json::from_slice(doc).unwrap_or_default()
    };
    let mut apis = builtin("apis.json");
    if let Some(gs) = apis["groups"].as_array_mut() {
        gs.extend(legacy_groups);
    }
    docs.insert("apis.json".into(), Arc::new(ordered_group_list(&apis)));
    let mut agg = builtin("apis.aggregated-v2.json");
    if let Some(items) = agg["items"].as_array_mut() {
        items.extend(aggregated);
    }
    docs.insert(
        "apis.aggregated-v2.json".into(),
        Arc::new(ordered_discovery_list(&agg)),
    );
    docs
}

/// Compact JSON with a newline, as the built-in documents are kept.
fn compact(v: &Value) -> Vec<u8> {
    let mut out = serde_json::to_vec(v).unwrap_or_default();
    out.push(b'\n');
    out
}

/// An APIGroupList with `kind` and `apiVersion` first (serde_json sorts keys).
fn ordered_group_list(v: &Value) -> Vec<u8> {
    let mut out = br#"{"kind":"APIGroupList","apiVersion":"v1","groups":"#.to_vec();
    out.extend(serde_json::to_vec(&v["groups"]).unwrap_or_default());
    out.extend_from_slice(b"}\n");
    out
}

fn ordered_discovery_list(v: &Value) -> Vec<u8> {
    let mut out = br#"{"kind":"APIGroupDiscoveryList","apiVersion":"apidiscovery.k8s.io/v2","metadata":{},"items":"#.to_vec();
    out.extend(serde_json::to_vec(&v["items"]).unwrap_or_default());
    out.extend_from_slice(b"}\n");
    out
}

/// The cache spec of a CRD's instances (the ingest adds it when it meets the CRD).
pub fn cache_spec(store_prefix: &str, crd_stored: &[u8]) -> Option<kapi_cache::ResourceSpec> {
    let crd: Value = serde_json::from_slice(crd_stored).ok()?;
    let prefix = key_prefix(&crd)?;
    Some(kapi_cache::ResourceSpec {
        prefix: bytes::Bytes::from(format!("{store_prefix}{prefix}").into_bytes()),
        namespaced: crd.pointer("/spec/scope").and_then(Value::as_str) != Some("Cluster"),
        extract: Some(Arc::new(crate::api::cached::json_attrs)),
        indexed: false,
    })
}

/// Every CRD in the cache, as served (v1) JSON.
pub fn cached_crds(registry: &Registry, cache: &kapi_cache::Cache, prefix: &str) -> Vec<Value> {
    let Some(res) = registry.get("apiextensions.k8s.io", "v1", "customresourcedefinitions") else {
        return Vec::new();
    };
    let Some(rc) = cache.resource(format!("{prefix}{CRD_KEY_PREFIX}").as_bytes()) else {
        return Vec::new();
    };
    let snap = rc.snapshot();
    let view = crate::api::cached::View::new(res, cache);
    snap.range(b"", b"")
        .filter_map(|o| {
            let served = view.served(o).ok()?;
            crate::api::objects::to_value(res, &served).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_as_upstream() {
        let mut v = vec![
            "v1alpha1",
            "foo",
            "v2",
            "v1beta2",
            "v1",
            "v11alpha2",
            "v12beta1",
            "bar",
        ];
        v.sort_by(|a, b| version_order(a, b));
        assert_eq!(
            v,
            [
                "v2",
                "v1",
                "v12beta1",
                "v1beta2",
                "v11alpha2",
                "v1alpha1",
                "bar",
                "foo"
            ]
        );
    }

    #[test]
    fn storage_version_hash_is_upstreams() {
        assert_eq!(
            storage_version_hash("apps", "v1", "ControllerRevision"),
            "85nkx63pcBU="
        );
    }
}
