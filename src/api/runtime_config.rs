//! `--runtime-config`: which built-in group-versions are served. kapi serves 1.36's GA
//! versions (its descriptor set holds their schemas); a beta or alpha version asked for is a
//! start-up warning naming it, and a GA version turned off is gone from the registry's lookups
//! (404) and from discovery.

use std::collections::BTreeSet;
use std::sync::OnceLock;

/// (group, version) pairs turned off; empty (and unset) serves everything.
static DISABLED: OnceLock<BTreeSet<(String, String)>> = OnceLock::new();

/// Every group-version kapi serves, from the registry's discovery documents.
fn served() -> BTreeSet<(String, String)> {
    crate::api::registry::Registry::builtin()
        .all()
        .iter()
        .map(|r| (r.group.clone(), r.version.clone()))
        .collect()
}

/// A version string of the Kubernetes form (`v1`, `v2beta1`, `v1alpha3`); its stability.
fn stability(version: &str) -> Option<&'static str> {
    let rest = version.strip_prefix('v')?;
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    match &rest[digits..] {
        "" => Some("ga"),
        s if s.starts_with("beta") && s[4..].chars().all(|c| c.is_ascii_digit()) => Some("beta"),
        s if s.starts_with("alpha") && s[5..].chars().all(|c| c.is_ascii_digit()) => Some("alpha"),
        _ => None,
    }
}

/// One `key=value` → (key, enabled).
fn entry(item: &str) -> Result<(&str, bool), String> {
    let (key, value) = item.split_once('=').unwrap_or((item, ""));
    let on = match value.trim() {
        "" | "true" => true,
        "false" => false,
        v => return Err(format!("--runtime-config: invalid value {v:?} for {key}")),
    };
    Ok((key.trim(), on))
}

/// Checks the flag's entries as upstream does; the set of group-versions turned off.
pub fn parse(items: &[String]) -> Result<BTreeSet<(String, String)>, String> {
    let served = served();
    let mut disabled = BTreeSet::new();
    for item in items.iter().filter(|i| !i.trim().is_empty()) {
        let (key, on) = entry(item)?;
        let set = |disabled: &mut BTreeSet<(String, String)>, gv: &(String, String)| {
            if on {
                disabled.remove(gv);
            } else {
                disabled.insert(gv.clone());
            }
        };
        match key {
            "api/all" | "api/ga" => served.iter().for_each(|gv| set(&mut disabled, gv)),
            "api/beta" | "api/alpha" => {}
            "api/legacy" => set(&mut disabled, &(String::new(), "v1".into())),
            _ => {
                let parts: Vec<&str> = key.split('/').collect();
                let (group, version) = match parts.as_slice() {
                    ["api", v] => ("", *v),
                    [g, v] | [g, v, _] => (*g, *v),
                    _ => return Err(format!("--runtime-config: invalid key {key:?}")),
                };
                if stability(version).is_none() {
                    return Err(format!(
                        "--runtime-config: invalid version {version:?} in {key:?}"
                    ));
                }
                if parts.len() == 3 {
                    continue; // resource-level: warned about
                }
                let gv = (group.to_owned(), version.to_owned());
                if served.contains(&gv) {
                    set(&mut disabled, &gv);
                }
            }
        }
    }
    Ok(disabled)
}

/// What the flag asks for that kapi cannot do: beta and alpha versions, resource-level keys.
pub fn warnings(items: &[String]) -> Vec<String> {
    let served = served();
    let mut out = Vec::new();
    for item in items.iter().filter(|i| !i.trim().is_empty()) {
        let Ok((key, on)) = entry(item) else { continue };
        match key {
            "api/all" | "api/beta" | "api/alpha" if on => out.push(format!(
                "--runtime-config {key}=true: kapi serves 1.36's GA versions only; no beta or alpha version is served"
            )),
            "api/all" | "api/ga" | "api/beta" | "api/alpha" | "api/legacy" => {}
            _ => {
                let parts: Vec<&str> = key.split('/').collect();
                let gv = match parts.as_slice() {
                    ["api", v] => (String::new(), v.to_string()),
                    [g, v] => (g.to_string(), v.to_string()),
                    _ => {
                        out.push(format!(
                            "--runtime-config {key}: resource-level settings are not supported; ignored"
                        ));
                        continue;
                    }
                };
                if !served.contains(&gv) && on {
                    out.push(format!(
                        "--runtime-config {key}: kapi does not serve this group-version; ignored"
                    ));
                }
            }
        }
    }
    out
}

/// Applies the flag for this process, once, at start.
pub fn init(items: &[String]) -> Result<(), String> {
    let disabled = parse(items)?;
    let _ = DISABLED.set(disabled);
    Ok(())
}

/// Whether (group, version) is served.
pub fn enabled(group: &str, version: &str) -> bool {
    match DISABLED.get() {
        Some(d) if !d.is_empty() => !d.contains(&(group.to_owned(), version.to_owned())),
        _ => true,
    }
}

/// Whether any group-version is turned off (discovery is then filtered).
pub fn any_disabled() -> bool {
    DISABLED.get().is_some_and(|d| !d.is_empty())
}

/// A discovery document (by its file name) without the versions turned off; `None` when the
/// document is a turned-off version's own.
pub fn filter_discovery(name: &str, doc: &[u8]) -> Option<Vec<u8>> {
    use serde_json::Value;
    let mut v: Value = serde_json::from_slice(doc).ok()?;
    match name {
        "api.json" => {
            if let Some(vs) = v["versions"].as_array_mut() {
                vs.retain(|x| x.as_str().is_some_and(|ver| enabled("", ver)));
            }
        }
        "apis.json" => {
            if let Some(groups) = v["groups"].as_array_mut() {
                for g in groups.iter_mut() {
                    let name = g["name"].as_str().unwrap_or_default().to_owned();
                    if let Some(vs) = g["versions"].as_array_mut() {
                        vs.retain(|x| enabled(&name, x["version"].as_str().unwrap_or_default()));
                    }
                    let first = g["versions"].get(0).cloned();
                    if let Some(first) = first {
                        g["preferredVersion"] = first;
                    }
                }
                groups.retain(|g| g["versions"].as_array().is_some_and(|vs| !vs.is_empty()));
            }
        }
        "api.aggregated-v2.json" | "apis.aggregated-v2.json" => {
            if let Some(items) = v["items"].as_array_mut() {
                for g in items.iter_mut() {
                    let name = g["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    if let Some(vs) = g["versions"].as_array_mut() {
                        vs.retain(|x| enabled(&name, x["version"].as_str().unwrap_or_default()));
                    }
                }
                items.retain(|g| g["versions"].as_array().is_some_and(|vs| !vs.is_empty()));
            }
        }
        _ => {
            let gv = v["groupVersion"].as_str().unwrap_or_default();
            let (group, version) = gv.split_once('/').unwrap_or(("", gv));
            if !enabled(group, version) {
                return None;
            }
        }
    }
    let mut out = serde_json::to_vec(&v).ok()?;
    out.push(b'\n');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn keys_turn_served_versions_off_and_on() {
        let d = parse(&items(&[
            "apps/v1=false",
            "batch/v1=false",
            "batch/v1=true",
        ]))
        .unwrap();
        assert!(d.contains(&("apps".into(), "v1".into())));
        assert!(!d.contains(&("batch".into(), "v1".into())));
        let d = parse(&items(&["api/all=false", "api/legacy=true"])).unwrap();
        assert!(!d.contains(&(String::new(), "v1".into())));
        assert!(d.contains(&("apps".into(), "v1".into())));
        assert!(parse(&items(&["api/all=true"])).unwrap().is_empty());
        assert!(parse(&items(&["apps/v1=maybe"])).is_err());
        assert!(parse(&items(&["apps/one=true"])).is_err());
        let w = warnings(&items(&[
            "api/all=true",
            "flowcontrol.apiserver.k8s.io/v1beta3=true",
        ]));
        assert_eq!(w.len(), 2, "{w:?}");
    }
}
