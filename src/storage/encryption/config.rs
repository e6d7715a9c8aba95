//! `--encryption-provider-config`: upstream's `apiserver.config.k8s.io/v1 EncryptionConfiguration`
//! (YAML or JSON) read, validated with upstream's messages, and resolved into one provider chain
//! per group-resource pattern (`secrets`, `deployments.apps`, `*.apps`, `*.`, `*.*`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde_json::Value;

use super::kms::Kms;
use super::providers::{AESCBC_PREFIX, AESGCM_PREFIX, NamedKey, Provider, SECRETBOX_PREFIX};

/// Largest configuration file read: a configuration is a few kilobytes; this only stops a
/// wrong path (a device, a log) from being read whole.
const MAX_CONFIG_BYTES: u64 = 4 << 20;

const AES_KEY_SIZES: &[usize] = &[16, 24, 32];
const SECRETBOX_KEY_SIZES: &[usize] = &[32];

/// The providers of one resource, in the configuration's order: the first writes, every one
/// reads the values carrying its prefix.
pub type Chain = Vec<Provider>;

/// A group-resource as the configuration names it: `secrets` (core), `deployments.apps`,
/// `*.apps`, `*.` (every core resource), `*.*` (everything).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GroupResource {
    pub group: String,
    pub resource: String,
}

impl GroupResource {
    /// As upstream's `schema.ParseGroupResource`: the resource before the first dot, the group
    /// after it.
    pub fn parse(s: &str) -> GroupResource {
        match s.split_once('.') {
            Some((resource, group)) => GroupResource {
                group: group.into(),
                resource: resource.into(),
            },
            None => GroupResource {
                group: String::new(),
                resource: s.into(),
            },
        }
    }

    /// As the configuration writes it (`*.` for every core resource).
    fn yaml(&self) -> String {
        match (self.group.as_str(), self.resource.as_str()) {
            ("", "*") => "*.".into(),
            ("", r) => r.into(),
            (g, r) => format!("{r}.{g}"),
        }
    }
}

/// A configuration read and checked: the chain of each group-resource pattern.
#[derive(Debug, Default)]
pub struct Config {
    chains: HashMap<GroupResource, Arc<Chain>>,
}

impl Config {
    /// The chain of `group`/`resource`: its own entry, else its group's `*.group`, else `*.*`.
    /// `None` when the configuration does not name it (stored as is).
    pub fn chain(&self, group: &str, resource: &str) -> Option<&Arc<Chain>> {
        let find = |g: &str, r: &str| {
            self.chains.get(&GroupResource {
                group: g.into(),
                resource: r.into(),
            })
        };
        find(group, resource)
            .or_else(|| find(group, "*"))
            .or_else(|| find("*", "*"))
    }

    /// Every provider of the configuration (each once per resource naming it).
    pub fn providers(&self) -> impl Iterator<Item = &Provider> {
        self.chains.values().flat_map(|c| c.iter())
    }

    /// The configuration's KMS providers, each once, by name.
    pub fn kms_providers(&self) -> Vec<Arc<Kms>> {
        let mut out: Vec<Arc<Kms>> = Vec::new();
        for p in self.providers() {
            if let Provider::Kms(kms) = p
                && !out.iter().any(|k| Arc::ptr_eq(k, kms))
            {
                out.push(kms.clone());
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

/// Reads and checks the file; the message says what is wrong, as upstream's does.
pub fn load(path: &std::path::Path) -> Result<(Config, Vec<u8>), String> {
    use std::io::Read;
    let mut data = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut data))
        .map_err(|e| {
            format!(
                "error opening encryption provider configuration file {:?}: {e}",
                path.display().to_string()
            )
        })?;
    if data.is_empty() {
        return Err(format!(
            "encryption provider configuration file {:?} is empty",
            path.display().to_string()
        ));
    }
    if data.len() as u64 > MAX_CONFIG_BYTES {
        return Err(format!(
            "encryption provider configuration file {:?} is larger than {MAX_CONFIG_BYTES} bytes",
            path.display().to_string()
        ));
    }
    let config = parse(&data)?;
    Ok((config, data))
}

/// Parses and checks a configuration's bytes (YAML or JSON).
pub fn parse(data: &[u8]) -> Result<Config, String> {
    let doc = kapi_codec::yaml::from_yaml(data).map_err(|e| e.to_string())?;
    let kind = doc["kind"].as_str().unwrap_or_default();
    let api_version = doc["apiVersion"].as_str().unwrap_or_default();
    if kind.is_empty() {
        return Err("Object 'Kind' is missing in the configuration".into());
    }
    if kind != "EncryptionConfiguration" || api_version != "apiserver.config.k8s.io/v1" {
        return Err(format!(
            "no kind {kind:?} is registered for version {api_version:?} in scheme"
        ));
    }
    let mut errors = Vec::new();
    let entries = doc["resources"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if entries.is_empty() {
        errors.push("resources: Required value: at least one resources is required".to_string());
    }
    let mut parsed: Vec<(Vec<GroupResource>, Arc<Chain>)> = Vec::new();
    let mut kms_names: Vec<String> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let rpath = format!("resources[{i}].resources");
        let ppath = format!("resources[{i}].providers");
        let names: Vec<&str> = entry["resources"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if names.is_empty() {
            errors.push(format!(
                "{rpath}: Required value: at least one {rpath} is required"
            ));
        }
        check_overlap(&names, &rpath, &mut errors);
        check_names(&names, &rpath, &mut errors);
        let providers = entry["providers"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if providers.is_empty() {
            errors.push(format!(
                "{ppath}: Required value: at least one {ppath} is required"
            ));
        }
        let mut chain = Vec::new();
        for (j, p) in providers.iter().enumerate() {
            let path = format!("{ppath}[{j}]");
            if let Some(provider) = provider(p, &path, &mut kms_names, &mut errors) {
                chain.push(provider);
            }
        }
        parsed.push((
            names.iter().map(|n| GroupResource::parse(n)).collect(),
            Arc::new(chain),
        ));
    }
    if !errors.is_empty() {
        return Err(aggregate(errors));
    }
    // A resource named in several entries reads with every entry's providers, the first
    // entry's first provider writing; naming one after its `*.group` or `*.*` is an error.
    let mut lists: Vec<(GroupResource, Chain)> = Vec::new();
    for (names, chain) in parsed {
        for gr in names {
            for mask in [
                GroupResource {
                    group: gr.group.clone(),
                    resource: "*".into(),
                },
                GroupResource {
                    group: "*".into(),
                    resource: "*".into(),
                },
            ] {
                if mask != gr && lists.iter().any(|(g, _)| *g == mask) {
                    return Err(format!(
                        "resource {:?} is masked by earlier rule {:?}",
                        gr.yaml(),
                        mask.yaml()
                    ));
                }
            }
            match lists.iter_mut().find(|(g, _)| *g == gr) {
                Some((_, c)) => c.extend(chain.iter().cloned()),
                None => lists.push((gr, chain.to_vec())),
            }
        }
    }
    Ok(Config {
        chains: lists.into_iter().map(|(g, c)| (g, Arc::new(c))).collect(),
    })
}

/// Several errors as upstream's aggregate prints them.
fn aggregate(errors: Vec<String>) -> String {
    if errors.len() == 1 {
        errors.into_iter().next().unwrap_or_default()
    } else {
        format!("[{}]", errors.join(", "))
    }
}

fn quoted_list(names: &[&str]) -> String {
    serde_json::to_string(names).unwrap_or_default()
}

fn check_overlap(names: &[&str], path: &str, errors: &mut Vec<String>) {
    let grs: Vec<GroupResource> = names.iter().map(|n| GroupResource::parse(n)).collect();
    let (mut duplicate, mut overlap) = (false, false);
    for (i, a) in grs.iter().enumerate() {
        for (j, b) in grs.iter().enumerate() {
            if i == j {
                continue;
            }
            if a == b {
                duplicate = true;
                continue;
            }
            if (a.group == "*" && a.resource == "*")
                || (a.group == b.group && (a.resource == "*" || b.resource == "*"))
            {
                overlap = true;
            }
        }
    }
    if duplicate {
        errors.push(format!(
            "{path}: Invalid value: {}: the same resource cannot be specified multiple times",
            quoted_list(names)
        ));
    }
    if overlap {
        errors.push(format!(
            "{path}: Invalid value: {}: using overlapping resources such as 'secrets' and '*.' \
             in the same resource list is not allowed as they will be masked",
            quoted_list(names)
        ));
    }
}

fn check_names(names: &[&str], path: &str, errors: &mut Vec<String>) {
    for (j, name) in names.iter().enumerate() {
        let gr = GroupResource::parse(name);
        let why = if name.to_lowercase() != *name {
            "resource name should not contain capital letters"
        } else if *name == "*" {
            "use '*.' to encrypt all the resources from core API group or *.* to encrypt all resources"
        } else if matches!(
            *name,
            "apiserveripinfo" | "serviceipallocations" | "servicenodeportallocations"
        ) {
            "resources which do not have REST API/s cannot be encrypted"
        } else if gr.group == "events.k8s.io" {
            "'*.events.k8s.io' objects are stored using the 'events' API group in etcd. Use 'events' instead in the config file"
        } else if gr.group == "extensions" {
            "'extensions' group has been removed and cannot be used for encryption"
        } else if gr.group == "*" && gr.resource != "*" {
            "encrypting the same resource across groups is not supported"
        } else {
            continue;
        };
        errors.push(format!("{path}[{j}]: Invalid value: {name:?}: {why}"));
    }
}

/// One provider element; `None` (with the errors noted) when it is not usable.
fn provider(
    p: &Value,
    path: &str,
    kms_names: &mut Vec<String>,
    errors: &mut Vec<String>,
) -> Option<Provider> {
    let present: Vec<&str> = ["kms", "aesgcm", "aescbc", "secretbox", "identity"]
        .into_iter()
        .filter(|k| !p[*k].is_null())
        .collect();
    match present.as_slice() {
        [] => {
            errors.push(format!(
                "{path}: Invalid value: {p}: provider does not contain any of the expected \
                 providers: KMS, AESGCM, AESCBC, Secretbox, Identity"
            ));
            None
        }
        [_, _, ..] => {
            errors.push(format!(
                "{path}: Invalid value: {p}: more than one provider specified in a single \
                 element, should split into different list elements"
            ));
            None
        }
        ["identity"] => Some(Provider::Identity),
        ["aescbc"] => keys(
            &p["aescbc"],
            &format!("{path}.aescbc.keys"),
            AES_KEY_SIZES,
            AESCBC_PREFIX,
            errors,
        )
        .map(Provider::AesCbc),
        ["aesgcm"] => keys(
            &p["aesgcm"],
            &format!("{path}.aesgcm.keys"),
            AES_KEY_SIZES,
            AESGCM_PREFIX,
            errors,
        )
        .map(Provider::AesGcm),
        ["secretbox"] => keys(
            &p["secretbox"],
            &format!("{path}.secretbox.keys"),
            SECRETBOX_KEY_SIZES,
            SECRETBOX_PREFIX,
            errors,
        )
        .map(Provider::Secretbox),
        _ => kms(&p["kms"], &format!("{path}.kms"), kms_names, errors),
    }
}

/// Upstream's default KMS call timeout.
const KMS_DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// A `kms` element, checked as upstream's `validateKMSConfiguration`; API version v2 only
/// (v1 is behind upstream's deprecated `KMSv1` gate, which kapi does not have).
fn kms(
    p: &Value,
    path: &str,
    names: &mut Vec<String>,
    errors: &mut Vec<String>,
) -> Option<Provider> {
    let before = errors.len();
    let name = p["name"].as_str().unwrap_or_default();
    // Upstream defaults an absent apiVersion to v1.
    let api_version = p["apiVersion"].as_str().unwrap_or("v1");
    if name.is_empty() {
        errors.push(format!(
            "{path}.name: Required value: name is a mandatory field for a provider"
        ));
    }
    if api_version != "v1" && name.contains(':') {
        errors.push(format!(
            "{path}.name: Invalid value: {name:?}: invalid KMS provider name {name}, must not contain ':'"
        ));
    }
    if names.iter().any(|n| n == name) {
        errors.push(format!(
            "{path}.name: Invalid value: {name:?}: duplicate KMS provider name {name}, names must be unique"
        ));
    }
    names.push(name.to_string());
    let timeout = match &p["timeout"] {
        Value::Null => Some(KMS_DEFAULT_TIMEOUT),
        Value::String(s) => match kapi_codec::goscalar::parse_duration(s) {
            Ok(nanos) if nanos > 0 => Some(Duration::from_nanos(nanos as u64)),
            Ok(_) => {
                errors.push(format!(
                    "{path}.timeout: Invalid value: {s:?}: timeout should be a positive value"
                ));
                None
            }
            Err(e) => {
                errors.push(format!("{path}.timeout: Invalid value: {s:?}: {e}"));
                None
            }
        },
        other => {
            errors.push(format!(
                "{path}.timeout: Invalid value: {other}: timeout should be a duration such as \"3s\""
            ));
            None
        }
    };
    let endpoint = p["endpoint"].as_str().unwrap_or_default();
    let socket = if endpoint.is_empty() {
        errors.push(format!(
            "{path}.endpoint: Invalid value: \"\": endpoint is a mandatory field for a kms"
        ));
        None
    } else {
        let scheme = endpoint.split_once("://").map_or("", |(s, _)| s);
        match super::kms::plugin::socket_path(endpoint) {
            Some(socket) => Some(socket),
            None if scheme == "unix" => {
                errors.push(format!(
                    "{path}.endpoint: Invalid value: {endpoint:?}: invalid endpoint for kms provider, \
                     error: the unix endpoint has no socket path"
                ));
                None
            }
            None => {
                errors.push(format!(
                    "{path}.endpoint: Invalid value: {endpoint:?}: unsupported scheme {scheme:?} for \
                     KMS provider, only unix is supported"
                ));
                None
            }
        }
    };
    if api_version != "v1" && !p["cachesize"].is_null() {
        errors.push(format!(
            "{path}.cachesize: Invalid value: {}: cachesize is not supported in v2",
            p["cachesize"]
        ));
    }
    if api_version != "v1" && api_version != "v2" {
        errors.push(format!(
            "{path}.apiVersion: Invalid value: {api_version:?}: unsupported apiVersion apiVersion \
             for KMS provider, only v1 and v2 are supported"
        ));
    }
    if errors.len() != before {
        return None;
    }
    if api_version == "v1" {
        errors.push(
            "KMSv1 is deprecated and will only receive security updates going forward. Use KMSv2 \
             instead.  Set --feature-gates=KMSv1=true to use the deprecated KMSv1 feature."
                .into(),
        );
        return None;
    }
    let (Some(socket), Some(timeout)) = (socket, timeout) else {
        return None;
    };
    Some(Provider::Kms(Arc::new(Kms::new(name, socket, timeout))))
}

fn keys(
    p: &Value,
    path: &str,
    sizes: &[usize],
    provider_prefix: &str,
    errors: &mut Vec<String>,
) -> Option<Vec<NamedKey>> {
    let list = p["keys"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if list.is_empty() {
        errors.push(format!(
            "{path}: Required value: at least one keys is required"
        ));
        return None;
    }
    let before = errors.len();
    let mut out = Vec::new();
    for (i, k) in list.iter().enumerate() {
        let name = k["name"].as_str().unwrap_or_default();
        let secret = k["secret"].as_str().unwrap_or_default();
        if name.is_empty() {
            errors.push(format!(
                "{path}[{i}].name: Required value: name is a mandatory field for a key"
            ));
        }
        if secret.is_empty() {
            errors.push(format!(
                "{path}[{i}].secret: Required value: secret is a mandatory field for a key"
            ));
            continue;
        }
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(secret) else {
            errors.push(format!(
                "{path}[{i}].secret: Invalid value: \"REDACTED\": secrets must be base64 encoded"
            ));
            continue;
        };
        if !sizes.contains(&bytes.len()) {
            errors.push(format!(
                "{path}[{i}].secret: Invalid value: \"REDACTED\": secret is not of the expected \
                 length, got {}, expected one of {sizes:?}",
                bytes.len()
            ));
            continue;
        }
        out.push(NamedKey::new(provider_prefix, name, bytes));
    }
    (errors.len() == before).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY32: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // "0123456789abcdef" x2

    #[test]
    fn resources_match_by_name_then_group_wildcard_then_everything() {
        let cfg = parse(
            format!(
                "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n\
                 resources:\n\
                 - resources: [secrets]\n  providers: [{{aescbc: {{keys: [{{name: k1, secret: {KEY32}}}]}}}}]\n\
                 - resources: ['*.apps']\n  providers: [{{secretbox: {{keys: [{{name: k2, secret: {KEY32}}}]}}}}]\n\
                 - resources: ['*.*']\n  providers: [{{aesgcm: {{keys: [{{name: k3, secret: {KEY32}}}]}}}}, identity: {{}}]\n"
            )
            .as_bytes(),
        )
        .unwrap();
        let first = |g: &str, r: &str| cfg.chain(g, r).unwrap()[0].prefix();
        assert_eq!(first("", "secrets"), AESCBC_PREFIX);
        assert_eq!(first("apps", "deployments"), SECRETBOX_PREFIX);
        assert_eq!(first("", "configmaps"), AESGCM_PREFIX);
        assert_eq!(first("stable.example.com", "widgets"), AESGCM_PREFIX);
        assert_eq!(cfg.chain("", "configmaps").unwrap().len(), 2);
    }

    #[test]
    fn invalid_configurations_are_refused_with_upstreams_messages() {
        let bad = |body: &str| {
            parse(
                format!(
                    "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n{body}"
                )
                .as_bytes(),
            )
            .unwrap_err()
        };
        assert!(bad("resources: []").contains("at least one resources is required"));
        let short = bad(
            "resources:\n- resources: [secrets]\n  providers: [{aescbc: {keys: [{name: k, secret: c2hvcnQ=}]}}]",
        );
        assert!(
            short.contains("resources[0].providers[0].aescbc.keys[0].secret: Invalid value: \"REDACTED\": secret is not of the expected length, got 5, expected one of [16, 24, 32]"),
            "{short}"
        );
        assert!(
            bad("resources:\n- resources: ['*']\n  providers: [{identity: {}}]")
                .contains("use '*.'")
        );
        assert!(
            bad("resources:\n- resources: [secrets, '*.']\n  providers: [{identity: {}}]")
                .contains("overlapping")
        );
        assert!(
            bad("resources:\n- resources: [Secrets]\n  providers: [{identity: {}}]")
                .contains("capital")
        );
        assert!(
            bad("resources:\n- resources: [secrets]\n  providers: [{identity: {}, aescbc: {}}]")
                .contains("more than one provider")
        );
        let kms = |p: &str| {
            bad(&format!(
                "resources:\n- resources: [secrets]\n  providers: [{p}]"
            ))
        };
        assert!(
            kms("{kms: {name: p, endpoint: 'unix:///kms.sock'}}")
                .starts_with("KMSv1 is deprecated")
        );
        assert_eq!(
            kms(
                "{kms: {apiVersion: v2, name: 'a:b', endpoint: 'tcp://127.0.0.1:1', cachesize: 10, timeout: 0s}}"
            ),
            "[resources[0].providers[0].kms.name: Invalid value: \"a:b\": invalid KMS provider name a:b, must not contain ':', \
             resources[0].providers[0].kms.timeout: Invalid value: \"0s\": timeout should be a positive value, \
             resources[0].providers[0].kms.endpoint: Invalid value: \"tcp://127.0.0.1:1\": unsupported scheme \"tcp\" for KMS provider, only unix is supported, \
             resources[0].providers[0].kms.cachesize: Invalid value: 10: cachesize is not supported in v2]"
        );
        assert!(
            kms("{kms: {apiVersion: v2, name: p, endpoint: 'unix:///a.sock'}}, {kms: {apiVersion: v2, name: p, endpoint: 'unix:///b.sock'}}")
                .contains("duplicate KMS provider name p, names must be unique")
        );
        assert!(
            kms("{kms: {apiVersion: v2, name: p}}")
                .contains("endpoint is a mandatory field for a kms")
        );
        let masked = bad(
            "resources:\n- resources: ['*.']\n  providers: [{identity: {}}]\n- resources: [secrets]\n  providers: [{identity: {}}]",
        );
        assert_eq!(
            masked,
            "resource \"secrets\" is masked by earlier rule \"*.\""
        );
        let wrong_kind = parse(b"{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\"}").unwrap_err();
        assert!(wrong_kind.contains("no kind \"ConfigMap\""), "{wrong_kind}");
    }
}
