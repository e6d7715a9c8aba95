//! The discovery documents a process serves under `--runtime-config` and `--feature-gates`,
//! made once at start from the captured GA documents: turned-off GA versions left out, served
//! beta and alpha versions added to `/apis` (legacy and aggregated) with their own
//! APIResourceLists. With the defaults nothing here runs and the captured bytes are served.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value, json};

use super::registry::DISCOVERY;
use super::runtime_config::{BETA_DISCOVERY, by_priority, gate_of};

type GroupVersions = BTreeSet<(String, String)>;

/// `v` as compact JSON with `keys` first, in that order (upstream's field order), then the rest.
fn ordered(v: &Value, keys: &[&str]) -> String {
    let Some(obj) = v.as_object() else {
        return v.to_string();
    };
    let mut parts = Vec::with_capacity(obj.len());
    for k in keys
        .iter()
        .copied()
        .chain(obj.keys().map(String::as_str).filter(|k| !keys.contains(k)))
    {
        if let Some(x) = obj.get(k) {
            parts.push(format!("{}:{}", Value::from(k), x));
        }
    }
    format!("{{{}}}", parts.join(","))
}

const RESOURCE_KEYS: &[&str] = &[
    "name",
    "singularName",
    "namespaced",
    "kind",
    "verbs",
    "shortNames",
    "categories",
    "storageVersionHash",
];

/// The enabled beta and alpha versions' APIResourceLists without their gated-off resources;
/// a version left with none is not served (upstream installs no empty group-version).
pub fn served_betas(
    enabled: &GroupVersions,
    gate_on: &dyn Fn(&str) -> bool,
) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (name, bytes) in BETA_DISCOVERY {
        let Some(gv) = enabled
            .iter()
            .find(|(g, v)| *name == format!("apis__{g}__{v}.json"))
        else {
            continue;
        };
        let Ok(doc) = serde_json::from_slice::<Value>(bytes) else {
            continue;
        };
        let kept: Vec<&Value> = doc["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| {
                let full = r["name"].as_str().unwrap_or_default();
                let base = full.split('/').next().unwrap_or_default();
                gate_of(&gv.0, base).is_none_or(gate_on)
            })
            .collect();
        if kept.is_empty() {
            continue;
        }
        let items: Vec<String> = kept.iter().map(|r| ordered(r, RESOURCE_KEYS)).collect();
        let body = format!(
            "{{\"kind\":\"APIResourceList\",\"apiVersion\":\"v1\",\"groupVersion\":{},\"resources\":[{}]}}\n",
            doc["groupVersion"],
            items.join(",")
        );
        out.push((name.to_string(), body.into_bytes()));
    }
    out
}

/// The documents that differ from the captured ones: `None` for a document not served.
pub fn effective(
    disabled: &GroupVersions,
    betas: &[(String, Vec<u8>)],
) -> HashMap<String, Option<Vec<u8>>> {
    let mut docs = HashMap::new();
    if !disabled.is_empty() {
        for (name, doc) in DISCOVERY {
            if *name != "version.json" {
                docs.insert(name.to_string(), without_disabled(name, doc, disabled));
            }
        }
    }
    if betas.is_empty() {
        return docs;
    }
    let current = |docs: &HashMap<String, Option<Vec<u8>>>, name: &str| -> Value {
        let bytes = match docs.get(name) {
            Some(d) => d.clone().unwrap_or_default(),
            None => DISCOVERY
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, b)| b.to_vec())
                .unwrap_or_default(),
        };
        serde_json::from_slice(&bytes).unwrap_or_default()
    };
    let mut apis = current(&docs, "apis.json");
    let mut agg = current(&docs, "apis.aggregated-v2.json");
    for (name, bytes) in betas {
        let Ok(list) = serde_json::from_slice::<Value>(bytes) else {
            continue;
        };
        let gv = list["groupVersion"].as_str().unwrap_or_default().to_owned();
        let Some((group, version)) = gv.split_once('/') else {
            continue;
        };
        add_group_version(&mut apis, group, version);
        add_aggregated(&mut agg, group, version, &list);
        docs.insert(name.clone(), Some(bytes.clone()));
    }
    docs.insert("apis.json".into(), Some(group_list(&apis)));
    docs.insert(
        "apis.aggregated-v2.json".into(),
        Some(aggregated_list(&agg)),
    );
    docs
}

/// `/apis`: `group` gains `version`, its versions in upstream's priority order, the first
/// preferred; a group not listed yet is added at the end.
fn add_group_version(apis: &mut Value, group: &str, version: &str) {
    let Some(groups) = apis["groups"].as_array_mut() else {
        return;
    };
    let entry = json!({"groupVersion": format!("{group}/{version}"), "version": version});
    let g = match groups.iter().position(|g| g["name"] == group) {
        Some(i) => &mut groups[i],
        None => {
            groups.push(json!({"name": group, "versions": []}));
            let last = groups.len() - 1;
            &mut groups[last]
        }
    };
    if let Some(vs) = g["versions"].as_array_mut() {
        vs.push(entry);
        vs.sort_by(|a, b| {
            by_priority(
                a["version"].as_str().unwrap_or_default(),
                b["version"].as_str().unwrap_or_default(),
            )
        });
    }
    let first = g["versions"][0].clone();
    g["preferredVersion"] = first;
}

/// The aggregated document: `group` gains `version` with its resources.
fn add_aggregated(agg: &mut Value, group: &str, version: &str, list: &Value) {
    let Some(items) = agg["items"].as_array_mut() else {
        return;
    };
    let resources = list["resources"].as_array().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for r in resources
        .iter()
        .filter(|r| r["name"].as_str().is_some_and(|n| !n.contains('/')))
    {
        let name = r["name"].as_str().unwrap_or_default();
        let kind = json!({"group": "", "version": "", "kind": r["kind"]});
        let mut e = Map::new();
        e.insert("resource".into(), json!(name));
        e.insert("responseKind".into(), kind.clone());
        let scope = if r["namespaced"] == true {
            "Namespaced"
        } else {
            "Cluster"
        };
        e.insert("scope".into(), json!(scope));
        e.insert("singularResource".into(), r["singularName"].clone());
        e.insert("verbs".into(), r["verbs"].clone());
        for k in ["shortNames", "categories"] {
            if let Some(v) = r.get(k) {
                e.insert(k.into(), v.clone());
            }
        }
        let subs: Vec<Value> = resources
            .iter()
            .filter_map(|s| {
                let sub = s["name"].as_str()?.strip_prefix(&format!("{name}/"))?;
                Some(json!({"subresource": sub, "responseKind": kind, "verbs": s["verbs"]}))
            })
            .collect();
        if !subs.is_empty() {
            e.insert("subresources".into(), json!(subs));
        }
        out.push(Value::Object(e));
    }
    let entry = json!({"version": version, "resources": out, "freshness": "Current"});
    let g = match items.iter().position(|g| g["metadata"]["name"] == group) {
        Some(i) => &mut items[i],
        None => {
            items.push(json!({"metadata": {"name": group}, "versions": []}));
            let last = items.len() - 1;
            &mut items[last]
        }
    };
    if let Some(vs) = g["versions"].as_array_mut() {
        vs.push(entry);
        vs.sort_by(|a, b| {
            by_priority(
                a["version"].as_str().unwrap_or_default(),
                b["version"].as_str().unwrap_or_default(),
            )
        });
    }
}

/// An APIGroupList with upstream's field order.
fn group_list(apis: &Value) -> Vec<u8> {
    let groups: Vec<String> = apis["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| ordered(g, &["name", "versions", "preferredVersion"]))
        .collect();
    format!(
        "{{\"kind\":\"APIGroupList\",\"apiVersion\":\"v1\",\"groups\":[{}]}}\n",
        groups.join(",")
    )
    .into_bytes()
}

/// An APIGroupDiscoveryList with `kind` and `apiVersion` first.
fn aggregated_list(agg: &Value) -> Vec<u8> {
    let mut out = br#"{"kind":"APIGroupDiscoveryList","apiVersion":"apidiscovery.k8s.io/v2","metadata":{},"items":"#.to_vec();
    out.extend(serde_json::to_vec(&agg["items"]).unwrap_or_default());
    out.extend_from_slice(b"}\n");
    out
}

/// A captured document without the turned-off versions; `None` when the document is a
/// turned-off version's own.
fn without_disabled(name: &str, doc: &[u8], disabled: &GroupVersions) -> Option<Vec<u8>> {
    let on = |g: &str, v: &str| !disabled.contains(&(g.to_owned(), v.to_owned()));
    let mut v: Value = serde_json::from_slice(doc).ok()?;
    match name {
        "api.json" => {
            if let Some(vs) = v["versions"].as_array_mut() {
                vs.retain(|x| x.as_str().is_some_and(|ver| on("", ver)));
            }
        }
        "apis.json" => {
            if let Some(groups) = v["groups"].as_array_mut() {
                for g in groups.iter_mut() {
                    let name = g["name"].as_str().unwrap_or_default().to_owned();
                    if let Some(vs) = g["versions"].as_array_mut() {
                        vs.retain(|x| on(&name, x["version"].as_str().unwrap_or_default()));
                    }
                    let first = g["versions"].get(0).cloned();
                    if let Some(first) = first {
                        g["preferredVersion"] = first;
                    }
                }
                groups.retain(|g| g["versions"].as_array().is_some_and(|vs| !vs.is_empty()));
            }
            return Some(group_list(&v));
        }
        "api.aggregated-v2.json" | "apis.aggregated-v2.json" => {
            if let Some(items) = v["items"].as_array_mut() {
                for g in items.iter_mut() {
                    let name = g["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    if let Some(vs) = g["versions"].as_array_mut() {
                        vs.retain(|x| on(&name, x["version"].as_str().unwrap_or_default()));
                    }
                }
                items.retain(|g| g["versions"].as_array().is_some_and(|vs| !vs.is_empty()));
            }
        }
        _ => {
            let gv = v["groupVersion"].as_str().unwrap_or_default();
            let (group, version) = gv.split_once('/').unwrap_or(("", gv));
            if !on(group, version) {
                return None;
            }
            return Some(doc.to_vec());
        }
    }
    let mut out = serde_json::to_vec(&v).ok()?;
    out.push(b'\n');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_betas_join_apis_and_the_aggregated_document() {
        let enabled: GroupVersions = [
            ("certificates.k8s.io".to_string(), "v1beta1".to_string()),
            ("storagemigration.k8s.io".to_string(), "v1beta1".to_string()),
            ("networking.k8s.io".to_string(), "v1beta1".to_string()),
        ]
        .into();
        // ClusterTrustBundle on, the rest of the gates off: no storagemigration at all.
        let betas = served_betas(&enabled, &|g| g == "ClusterTrustBundle");
        let names: Vec<&str> = betas.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "apis__certificates.k8s.io__v1beta1.json",
                "apis__networking.k8s.io__v1beta1.json"
            ]
        );
        let certs: Value = serde_json::from_slice(&betas[0].1).unwrap();
        let rs: Vec<&str> = certs["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            rs,
            ["clustertrustbundles"],
            "podcertificaterequests is gated off"
        );
        assert!(String::from_utf8_lossy(&betas[0].1).starts_with(
            r#"{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"certificates.k8s.io/v1beta1","resources":[{"name":"clustertrustbundles","singularName":"clustertrustbundle","namespaced":false,"kind":"ClusterTrustBundle","verbs":["#
        ));
        let docs = effective(&GroupVersions::new(), &betas);
        let apis: Value = serde_json::from_slice(docs["apis.json"].as_ref().unwrap()).unwrap();
        let certs = apis["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == "certificates.k8s.io")
            .unwrap();
        assert_eq!(certs["versions"][0]["version"], "v1");
        assert_eq!(certs["versions"][1]["version"], "v1beta1");
        assert_eq!(certs["preferredVersion"]["version"], "v1");
        let agg: Value =
            serde_json::from_slice(docs["apis.aggregated-v2.json"].as_ref().unwrap()).unwrap();
        let net = agg["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["metadata"]["name"] == "networking.k8s.io")
            .unwrap();
        let beta = &net["versions"][1];
        assert_eq!(beta["version"], "v1beta1");
        let cidrs = beta["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "servicecidrs")
            .unwrap();
        assert_eq!(cidrs["scope"], "Cluster");
        assert_eq!(cidrs["subresources"][0]["subresource"], "status");
        // Nothing turned on or off: the captured documents are served as they are.
        assert!(effective(&GroupVersions::new(), &[]).is_empty());
    }
}
