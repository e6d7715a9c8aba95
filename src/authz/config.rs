//! What the authorizer chain is made of: `--authorization-config` (an
//! `apiserver.config.k8s.io` AuthorizationConfiguration, validated with upstream's rules and
//! messages) or the legacy `--authorization-mode` and `--authorization-webhook-*` flags, both
//! read into one ordered list of authorizers.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use super::webhook::{FailurePolicy, Settings, Version};
use crate::api::status::Cause;
use crate::kinds::field;
use crate::kubeconfig::Kubeconfig;

/// Upstream's longest webhook timeout.
const MAX_TIMEOUT: Duration = Duration::from_secs(30);

/// Upstream's most match conditions of one webhook.
const MAX_MATCH_CONDITIONS: usize = 64;

/// The authorizer types upstream knows (`modes.AuthorizationModeChoices`, sorted as its
/// `Unsupported value` message lists them).
const KNOWN_TYPES: &[&str] = &[
    "ABAC",
    "AlwaysAllow",
    "AlwaysDeny",
    "Node",
    "RBAC",
    "Webhook",
];

/// Where an in-cluster webhook client finds its credentials (client-go's `InClusterConfig`).
const IN_CLUSTER_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
const IN_CLUSTER_CA: &str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";

/// One authorizer of the chain, in order.
pub enum Configured {
    AlwaysAllow,
    AlwaysDeny,
    Node,
    Rbac,
    Webhook(Box<Settings>),
}

/// An authorizer with the type and name its metrics carry.
pub struct Named {
    pub name: String,
    pub authorizer: Configured,
}

impl Named {
    pub fn type_name(&self) -> &'static str {
        match self.authorizer {
            Configured::AlwaysAllow => "AlwaysAllow",
            Configured::AlwaysDeny => "AlwaysDeny",
            Configured::Node => "Node",
            Configured::Rbac => "RBAC",
            Configured::Webhook(_) => "Webhook",
        }
    }
}

/// The legacy flags as upstream converts them: each mode named by its lower-cased type, the
/// webhook (`default`) with a 30s timeout, no opinion on failure, and the flags' version and
/// TTLs (0: not cached).
pub fn from_modes(
    modes: &[String],
    webhook_config_file: Option<&Path>,
    version: &str,
    authorized_ttl: &str,
    unauthorized_ttl: &str,
) -> Result<Vec<Named>, String> {
    let mut out = Vec::new();
    for mode in modes {
        let authorizer = match mode.as_str() {
            "AlwaysAllow" => Configured::AlwaysAllow,
            "AlwaysDeny" => Configured::AlwaysDeny,
            "RBAC" => Configured::Rbac,
            "Node" => Configured::Node,
            "Webhook" => {
                let file = webhook_config_file
                    .ok_or("authorization-mode Webhook's authorization config file not passed")?;
                let version = match version {
                    "v1" => Version::V1,
                    "v1beta1" => Version::V1beta1,
                    other => {
                        return Err(format!(
                            "unsupported webhook authorizer version {other:?}, supported versions are \"v1\", \"v1beta1\""
                        ));
                    }
                };
                let ttl = |flag: &str, v: &str| {
                    crate::shutdown::duration::parse_duration(v)
                        .map_err(|e| format!("--{flag}: {e}"))
                        .map(|d| Some(d).filter(|d| !d.is_zero()))
                };
                let connection = webhook_kubeconfig(file)
                    .map_err(|e| format!("--authorization-webhook-config-file: {e}"))?;
                Configured::Webhook(Box::new(Settings {
                    name: "default".into(),
                    connection,
                    version,
                    timeout: MAX_TIMEOUT,
                    authorized_ttl: ttl(
                        "authorization-webhook-cache-authorized-ttl",
                        authorized_ttl,
                    )?,
                    unauthorized_ttl: ttl(
                        "authorization-webhook-cache-unauthorized-ttl",
                        unauthorized_ttl,
                    )?,
                    failure_policy: FailurePolicy::NoOpinion,
                    conditions: Vec::new(),
                }))
            }
            "ABAC" => {
                return Err(
                    "--authorization-mode=ABAC: the ABAC authorizer is not supported by kapi"
                        .into(),
                );
            }
            other => return Err(format!("authorization-mode {other:?} is not a valid mode")),
        };
        // Upstream names the flags' webhook "default", every other mode by its type.
        let name = match authorizer {
            Configured::Webhook(_) => "default".to_string(),
            _ => mode.to_ascii_lowercase(),
        };
        out.push(Named { name, authorizer });
    }
    Ok(out)
}

/// Reads and validates `--authorization-config`: its authorizers, or upstream's error.
pub fn load(path: &Path) -> Result<(Vec<Named>, Vec<u8>), String> {
    let data =
        std::fs::read(path).map_err(|e| format!("open {}: {}", path.display(), os_error(&e)))?;
    let authorizers = parse(&data, &[])?;
    Ok((authorizers, data))
}

/// The types other than Webhook in `authorizers`: what a reload must keep (upstream's
/// `requireNonWebhookTypes`).
pub fn non_webhook_types(authorizers: &[Named]) -> Vec<&'static str> {
    let mut types: Vec<&'static str> = authorizers
        .iter()
        .map(Named::type_name)
        .filter(|t| *t != "Webhook")
        .collect();
    types.sort_unstable();
    types
}

/// An AuthorizationConfiguration (YAML or JSON) read into its authorizers; every type of
/// `required` must be among them.
pub fn parse(data: &[u8], required: &[&str]) -> Result<Vec<Named>, String> {
    let doc = if data.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        kapi_codec::yaml::from_yaml(data)
            .map_err(|e| format!("failed to load AuthorizationConfiguration from file: {e}"))?
    };
    let api_version = doc["apiVersion"].as_str().unwrap_or("");
    let kind = doc["kind"].as_str().unwrap_or("");
    let known_version = matches!(
        api_version,
        "apiserver.config.k8s.io/v1"
            | "apiserver.config.k8s.io/v1beta1"
            | "apiserver.config.k8s.io/v1alpha1"
    );
    if !doc.as_object().is_some_and(|m| m.is_empty())
        && (!known_version || kind != "AuthorizationConfiguration")
    {
        return Err(format!(
            "failed to load AuthorizationConfiguration from file: no kind {kind:?} is registered for version {api_version:?}"
        ));
    }
    let (authorizers, causes) = validate(&doc);
    if !causes.is_empty() {
        let errs: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        return Err(aggregate(errs));
    }
    // kube-apiserver's own rules: the other types are named as the legacy flags name them,
    // and a reload keeps the types the server started with.
    let mut errs = Vec::new();
    for a in &authorizers {
        let expected = a.type_name().to_ascii_lowercase();
        if a.type_name() != "Webhook" && a.name != expected {
            errs.push(format!(
                "expected name {expected} for authorizer {} instead of {}",
                a.type_name(),
                a.name
            ));
        }
    }
    let present = non_webhook_types(&authorizers);
    let missing: Vec<&str> = required
        .iter()
        .filter(|t| !present.contains(t))
        .copied()
        .collect();
    if !missing.is_empty() {
        errs.push(format!("missing required types: [{}]", missing.join(" ")));
    }
    if !errs.is_empty() {
        return Err(aggregate(errs));
    }
    Ok(authorizers)
}

/// Upstream's aggregate error text: the one error, or `[a, b]`.
fn aggregate(mut errs: Vec<String>) -> String {
    match errs.len() {
        1 => errs.remove(0),
        _ => format!("[{}]", errs.join(", ")),
    }
}

/// Upstream's `ValidateAuthorizationConfiguration`; the authorizers when it passes.
fn validate(doc: &Value) -> (Vec<Named>, Vec<Cause>) {
    let mut causes = Vec::new();
    let mut out = Vec::new();
    let empty = Vec::new();
    let list = doc["authorizers"].as_array().unwrap_or(&empty);
    if list.is_empty() {
        causes.push(field::required_why(
            "authorizers".into(),
            "at least one authorization mode must be defined",
        ));
    }
    let mut seen_types: Vec<&str> = Vec::new();
    let mut seen_names: Vec<&str> = Vec::new();
    for (i, a) in list.iter().enumerate() {
        let at = format!("authorizers[{i}]");
        let ty = a["type"].as_str().unwrap_or("");
        if ty.is_empty() {
            causes.push(field::required(format!("{at}.type")));
            continue;
        }
        if !KNOWN_TYPES.contains(&ty) {
            causes.push(field::not_supported(
                format!("{at}.type"),
                &json!(ty),
                KNOWN_TYPES,
            ));
            continue;
        }
        if seen_types.contains(&ty) && ty != "Webhook" {
            causes.push(field::duplicate(format!("{at}.type"), &json!(ty)));
            continue;
        }
        seen_types.push(ty);
        let name = a["name"].as_str().unwrap_or("");
        if name.is_empty() {
            causes.push(field::required(format!("{at}.name")));
        } else if seen_names.contains(&name) {
            causes.push(field::duplicate(format!("{at}.name"), &json!(name)));
        } else {
            let errs = crate::kinds::meta::subdomain_errors(name);
            if !errs.is_empty() {
                causes.push(field::invalid(
                    format!("{at}.name"),
                    &json!(name),
                    &format!("authorizer name is invalid: {}", errs.join(", ")),
                ));
            }
        }
        seen_names.push(name);
        let webhook = &a["webhook"];
        let authorizer = match ty {
            "Webhook" => {
                if webhook.is_null() {
                    causes.push(field::required_why(
                        format!("{at}.webhook"),
                        "required when type=Webhook",
                    ));
                    continue;
                }
                let before = causes.len();
                let settings = validate_webhook(&at, name, webhook, &mut causes);
                match settings {
                    Some(s) if causes.len() == before => Configured::Webhook(Box::new(s)),
                    _ => continue,
                }
            }
            other => {
                if !webhook.is_null() {
                    causes.push(field::invalid(
                        format!("{at}.webhook"),
                        &json!("non-null"),
                        "may only be specified when type=Webhook",
                    ));
                }
                match other {
                    "AlwaysAllow" => Configured::AlwaysAllow,
                    "AlwaysDeny" => Configured::AlwaysDeny,
                    "Node" => Configured::Node,
                    "RBAC" => Configured::Rbac,
                    // ABAC: a known type kapi has no authorizer for.
                    _ => {
                        causes.push(field::invalid(
                            format!("{at}.type"),
                            &json!(other),
                            "the ABAC authorizer is not supported by kapi",
                        ));
                        continue;
                    }
                }
            }
        };
        out.push(Named {
            name: name.to_string(),
            authorizer,
        });
    }
    (out, causes)
}

/// A Go duration string; `None` when absent (zero), `Err` with the text when negative.
fn duration(v: &Value) -> Result<Option<Duration>, String> {
    let Some(s) = v.as_str().filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if s.starts_with('-') {
        return Err(s.to_string());
    }
    crate::shutdown::duration::parse_duration(s)
        .map(|d| Some(d).filter(|d| !d.is_zero()))
        .map_err(|_| s.to_string())
}

/// Upstream's `ValidateWebhookConfiguration` (its paths are the authorizer's, `at`) with
/// upstream's defaults (TTLs 5m and 30s, both cached); the settings when the webhook is
/// usable.
fn validate_webhook(at: &str, name: &str, w: &Value, causes: &mut Vec<Cause>) -> Option<Settings> {
    let timeout = match duration(&w["timeout"]) {
        Ok(None) => {
            causes.push(field::required(format!("{at}.timeout")));
            None
        }
        Ok(Some(d)) if d <= MAX_TIMEOUT => Some(d),
        Ok(Some(_)) | Err(_) => {
            causes.push(field::invalid(
                format!("{at}.timeout"),
                &w["timeout"],
                "must be > 0s and <= 30s",
            ));
            None
        }
    };
    let ttl = |key: &str, default: Duration, causes: &mut Vec<Cause>| match duration(&w[key]) {
        Ok(d) => Some(d.unwrap_or(default)),
        Err(_) => {
            causes.push(field::invalid(
                format!("{at}.{key}"),
                &w[key],
                "must be > 0s",
            ));
            None
        }
    };
    let authorized_ttl = ttl("authorizedTTL", Duration::from_secs(300), causes);
    let unauthorized_ttl = ttl("unauthorizedTTL", Duration::from_secs(30), causes);
    let version = match w["subjectAccessReviewVersion"].as_str().unwrap_or("") {
        "" => {
            causes.push(field::required(format!("{at}.subjectAccessReviewVersion")));
            None
        }
        "v1" => Some(Version::V1),
        "v1beta1" => Some(Version::V1beta1),
        other => {
            causes.push(field::not_supported(
                format!("{at}.subjectAccessReviewVersion"),
                &json!(other),
                &["v1", "v1beta1"],
            ));
            None
        }
    };
    let empty = Vec::new();
    let conditions = w["matchConditions"].as_array().unwrap_or(&empty);
    match w["matchConditionSubjectAccessReviewVersion"]
        .as_str()
        .unwrap_or("")
    {
        "" if !conditions.is_empty() => causes.push(field::required_why(
            format!("{at}.matchConditionSubjectAccessReviewVersion"),
            "required if match conditions are specified",
        )),
        "" | "v1" => {}
        other => causes.push(field::not_supported(
            format!("{at}.matchConditionSubjectAccessReviewVersion"),
            &json!(other),
            &["v1"],
        )),
    }
    let failure_policy = match w["failurePolicy"].as_str().unwrap_or("") {
        "" => {
            causes.push(field::required(format!("{at}.failurePolicy")));
            None
        }
        "NoOpinion" => Some(FailurePolicy::NoOpinion),
        "Deny" => Some(FailurePolicy::Deny),
        other => {
            causes.push(field::not_supported(
                format!("{at}.failurePolicy"),
                &json!(other),
                &["NoOpinion", "Deny"],
            ));
            None
        }
    };
    let connection = connection(at, &w["connectionInfo"], causes);
    let conditions = match_conditions(at, conditions, causes);
    let cache = |key: &str| w[key].as_bool() != Some(false);
    Some(Settings {
        name: name.to_string(),
        connection: connection?,
        version: version?,
        timeout: timeout?,
        authorized_ttl: Some(authorized_ttl?).filter(|_| cache("cacheAuthorizedRequests")),
        unauthorized_ttl: Some(unauthorized_ttl?).filter(|_| cache("cacheUnauthorizedRequests")),
        failure_policy: failure_policy?,
        conditions,
    })
}

/// `connectionInfo`: a kubeconfig file (absolute, a regular file) or the in-cluster
/// service account's credentials.
fn connection(at: &str, info: &Value, causes: &mut Vec<Cause>) -> Option<Kubeconfig> {
    let path = format!("{at}.connectionInfo.kubeConfigFile");
    let file = &info["kubeConfigFile"];
    match info["type"].as_str().unwrap_or("") {
        "" => {
            causes.push(field::required(format!("{at}.connectionInfo.type")));
            None
        }
        "InClusterConfig" => {
            if !file.is_null() {
                causes.push(field::invalid(
                    path,
                    file,
                    "can only be set when type=KubeConfigFile",
                ));
                return None;
            }
            match in_cluster() {
                Ok(k) => Some(k),
                Err(e) => {
                    causes.push(field::invalid(
                        format!("{at}.connectionInfo.type"),
                        &json!("InClusterConfig"),
                        &e,
                    ));
                    None
                }
            }
        }
        "KubeConfigFile" => {
            let name = file.as_str().unwrap_or("");
            let why = if name.is_empty() {
                causes.push(field::required(path));
                return None;
            } else if !name.starts_with('/') {
                "must be an absolute path".to_string()
            } else {
                match std::fs::metadata(name) {
                    Err(e) => format!("error loading file: stat {name}: {}", os_error(&e)),
                    Ok(m) if !m.is_file() => "must be a regular file".to_string(),
                    Ok(_) => match webhook_kubeconfig(Path::new(name)) {
                        Ok(k) => return Some(k),
                        Err(e) => format!("error loading file: {e}"),
                    },
                }
            };
            causes.push(field::invalid(path, file, &why));
            None
        }
        other => {
            causes.push(field::not_supported(
                format!("{at}.connectionInfo.type"),
                &json!(other),
                &["InClusterConfig", "KubeConfigFile"],
            ));
            None
        }
    }
}

/// A webhook's kubeconfig; one that asks to skip TLS verification is refused (kapi always
/// verifies the webhook's certificate).
fn webhook_kubeconfig(path: &Path) -> Result<Kubeconfig, String> {
    let k = Kubeconfig::read(path)?;
    if k.insecure_skip_tls_verify {
        return Err(
            "insecure-skip-tls-verify is not supported by kapi: give certificate-authority".into(),
        );
    }
    Ok(k)
}

/// Go's wording of a file error (`no such file or directory`).
fn os_error(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_ascii_lowercase(),
        None => text,
    }
}

/// client-go's in-cluster configuration: the service host and port from the environment,
/// the service account's token and CA.
fn in_cluster() -> Result<Kubeconfig, String> {
    let host = std::env::var("KUBERNETES_SERVICE_HOST").unwrap_or_default();
    let port = std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_default();
    if host.is_empty() || port.is_empty() {
        return Err("unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined".into());
    }
    let token = std::fs::read_to_string(IN_CLUSTER_TOKEN)
        .map_err(|e| format!("open {IN_CLUSTER_TOKEN}: {}", os_error(&e)))?;
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    Ok(Kubeconfig {
        server: format!("https://{host}:{port}"),
        certificate_authority: std::fs::read(IN_CLUSTER_CA).ok(),
        token: Some(token.trim().to_string()),
        ..Kubeconfig::default()
    })
}

/// `matchConditions`: at most 64, each a distinct non-empty CEL expression over `request`
/// that compiles.
fn match_conditions(
    at: &str,
    conditions: &[Value],
    causes: &mut Vec<Cause>,
) -> Vec<(String, crate::cel::Compiled)> {
    if conditions.len() > MAX_MATCH_CONDITIONS {
        causes.push(field::too_many(
            format!("{at}.matchConditions"),
            conditions.len(),
            MAX_MATCH_CONDITIONS,
        ));
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (i, c) in conditions.iter().enumerate() {
        let path = format!("{at}.matchConditions[{i}].expression");
        let expression = c["expression"].as_str().unwrap_or("");
        if expression.trim().is_empty() {
            causes.push(field::required(path));
            continue;
        }
        if seen.contains(&expression) {
            causes.push(field::duplicate(path, &json!(expression)));
            continue;
        }
        seen.push(expression);
        match crate::cel::compile(expression, &["request"]) {
            Ok(program) => out.push((expression.to_string(), program)),
            Err(e) => causes.push(field::invalid(path, &json!(expression), &e)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(yaml: &str) -> String {
        match parse(yaml.as_bytes(), &[]) {
            Ok(_) => String::new(),
            Err(e) => e,
        }
    }

    #[test]
    fn configurations_are_validated_with_upstreams_messages() {
        assert_eq!(
            errors(""),
            "authorizers: Required value: at least one authorization mode must be defined"
        );
        let head = "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthorizationConfiguration\n";
        assert_eq!(
            errors(&format!(
                "{head}authorizers:\n- {{type: RBAC, name: rbac}}\n- {{type: RBAC, name: again}}\n"
            )),
            r#"authorizers[1].type: Duplicate value: "RBAC""#
        );
        assert_eq!(
            errors(&format!("{head}authorizers:\n- {{type: Magic, name: m}}\n")),
            r#"authorizers[0].type: Unsupported value: "Magic": supported values: "ABAC", "AlwaysAllow", "AlwaysDeny", "Node", "RBAC", "Webhook""#
        );
        let webhook = format!(
            "{head}authorizers:\n- type: Webhook\n  name: w\n  webhook:\n    timeout: 45s\n    subjectAccessReviewVersion: v2\n    failurePolicy: Deny\n    connectionInfo: {{type: KubeConfigFile, kubeConfigFile: relative.yaml}}\n    matchConditions:\n    - expression: object.x == 1\n"
        );
        let e = errors(&webhook);
        assert!(
            e.contains(r#"authorizers[0].timeout: Invalid value: "45s": must be > 0s and <= 30s"#),
            "{e}"
        );
        assert!(e.contains(r#"authorizers[0].subjectAccessReviewVersion: Unsupported value: "v2": supported values: "v1", "v1beta1""#), "{e}");
        assert!(e.contains("authorizers[0].matchConditionSubjectAccessReviewVersion: Required value: required if match conditions are specified"), "{e}");
        assert!(e.contains(r#"authorizers[0].connectionInfo.kubeConfigFile: Invalid value: "relative.yaml": must be an absolute path"#), "{e}");
        assert!(e.contains("authorizers[0].matchConditions[0].expression: Invalid value: \"object.x == 1\": compilation failed: ERROR: <input>:1:1: undeclared reference to 'object'"), "{e}");
        assert!(e.starts_with('[') && e.ends_with(']'), "{e}");
        assert_eq!(
            errors(&format!(
                "{head}authorizers:\n- {{type: Webhook, name: Bad_Name, webhook: {{timeout: 3s, subjectAccessReviewVersion: v1, failurePolicy: NoOpinion, connectionInfo: {{type: KubeConfigFile, kubeConfigFile: /nonexistent/k.yaml}}}}}}\n"
            )),
            "[authorizers[0].name: Invalid value: \"Bad_Name\": authorizer name is invalid: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*'), authorizers[0].connectionInfo.kubeConfigFile: Invalid value: \"/nonexistent/k.yaml\": error loading file: stat /nonexistent/k.yaml: no such file or directory]"
        );
        assert!(errors("apiVersion: v1\nkind: Pod\n").contains("no kind \"Pod\" is registered"));
        assert_eq!(
            errors(&format!(
                "{head}authorizers:\n- {{type: RBAC, name: my-rbac}}\n"
            )),
            "expected name rbac for authorizer RBAC instead of my-rbac"
        );
        let only_rbac = format!("{head}authorizers:\n- {{type: RBAC, name: rbac}}\n");
        assert_eq!(
            parse(only_rbac.as_bytes(), &["Node", "RBAC"])
                .err()
                .unwrap(),
            "missing required types: [Node]"
        );
    }

    #[test]
    fn a_valid_configuration_keeps_its_order_and_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("k.yaml");
        std::fs::write(
            &kubeconfig,
            "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:9/'}}]\n",
        )
        .unwrap();
        let yaml = format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthorizationConfiguration\nauthorizers:\n- {{type: Node, name: node}}\n- type: Webhook\n  name: first\n  webhook:\n    timeout: 3s\n    subjectAccessReviewVersion: v1\n    matchConditionSubjectAccessReviewVersion: v1\n    failurePolicy: Deny\n    cacheUnauthorizedRequests: false\n    connectionInfo: {{type: KubeConfigFile, kubeConfigFile: {}}}\n    matchConditions:\n    - expression: has(request.resourceAttributes)\n- {{type: RBAC, name: rbac}}\n",
            kubeconfig.display()
        );
        let chain = parse(yaml.as_bytes(), &["Node", "RBAC"]).unwrap();
        let types: Vec<_> = chain.iter().map(|n| n.type_name()).collect();
        assert_eq!(types, ["Node", "Webhook", "RBAC"]);
        let Configured::Webhook(w) = &chain[1].authorizer else {
            panic!("a webhook");
        };
        assert_eq!(w.timeout, Duration::from_secs(3));
        assert_eq!(w.authorized_ttl, Some(Duration::from_secs(300)));
        assert_eq!(w.unauthorized_ttl, None);
        assert_eq!(w.failure_policy, FailurePolicy::Deny);
        assert_eq!(w.conditions.len(), 1);
        assert_eq!(w.connection.server, "https://127.0.0.1:9/");
        // A kubeconfig that skips TLS verification is refused.
        std::fs::write(
            &kubeconfig,
            "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:9/', insecure-skip-tls-verify: true}}]\n",
        )
        .unwrap();
        let e = parse(yaml.as_bytes(), &[]).err().unwrap();
        assert!(
            e.contains("insecure-skip-tls-verify is not supported"),
            "{e}"
        );
    }
}
