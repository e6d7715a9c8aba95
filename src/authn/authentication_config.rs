//! `--authentication-config`: the AuthenticationConfiguration file (`apiserver.config.k8s.io`
//! v1, v1beta1, v1alpha1) as upstream's types name it, checked with upstream's validation and
//! messages; and the same JWT authenticator made from the `--oidc-*` flags. What a valid
//! configuration does to a token is `jwt_authenticator`'s.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::json;

use crate::api::status::Cause;
use crate::kinds::field::{duplicate, invalid, required, required_why, too_many};

/// Upstream's bound on the JWT authenticators of one configuration.
pub const MAX_JWT_AUTHENTICATORS: usize = 64;
/// Largest configuration file read: upstream's files are a few KiB; this bounds a wrong path.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;
const GROUP_VERSIONS: &[&str] = &[
    "apiserver.config.k8s.io/v1",
    "apiserver.config.k8s.io/v1beta1",
    "apiserver.config.k8s.io/v1alpha1",
];

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthenticationConfiguration {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub jwt: Vec<JwtAuthenticator>,
    #[serde(default)]
    pub anonymous: Option<AnonymousConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JwtAuthenticator {
    #[serde(default)]
    pub issuer: Issuer,
    #[serde(default)]
    pub claim_validation_rules: Vec<ClaimValidationRule>,
    #[serde(default)]
    pub claim_mappings: ClaimMappings,
    #[serde(default)]
    pub user_validation_rules: Vec<UserValidationRule>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Issuer {
    #[serde(default)]
    pub url: String,
    #[serde(default, rename = "discoveryURL")]
    pub discovery_url: String,
    #[serde(default)]
    pub certificate_authority: String,
    #[serde(default)]
    pub audiences: Vec<String>,
    #[serde(default)]
    pub audience_match_policy: String,
    #[serde(default)]
    pub egress_selector_type: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClaimValidationRule {
    #[serde(default)]
    pub claim: String,
    #[serde(default)]
    pub required_value: String,
    #[serde(default)]
    pub expression: String,
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClaimMappings {
    #[serde(default)]
    pub username: PrefixedClaimOrExpression,
    #[serde(default)]
    pub groups: PrefixedClaimOrExpression,
    #[serde(default)]
    pub uid: ClaimOrExpression,
    #[serde(default)]
    pub extra: Vec<ExtraMapping>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PrefixedClaimOrExpression {
    #[serde(default)]
    pub claim: String,
    /// `None` and `Some("")` differ: a claim needs a prefix, which may be empty.
    #[serde(default)]
    pub prefix: Option<String>,
    #[serde(default)]
    pub expression: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClaimOrExpression {
    #[serde(default)]
    pub claim: String,
    #[serde(default)]
    pub expression: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExtraMapping {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub value_expression: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UserValidationRule {
    #[serde(default)]
    pub expression: String,
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AnonymousConfig {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub conditions: Vec<AnonymousCondition>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AnonymousCondition {
    #[serde(default)]
    pub path: String,
}

/// Reads the file; upstream's wording for a file that cannot be had.
pub fn load(path: &std::path::Path) -> Result<(AuthenticationConfiguration, Vec<u8>), String> {
    use std::io::Read;
    let mut data = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut data))
        .map_err(|e| format!("open {}: {e}", path.display()))?;
    if data.len() as u64 > MAX_CONFIG_BYTES {
        return Err(format!("larger than {MAX_CONFIG_BYTES} bytes"));
    }
    Ok((parse(&data)?, data))
}

/// Decodes a configuration (YAML or JSON), strictly as upstream's decoder.
pub fn parse(data: &[u8]) -> Result<AuthenticationConfiguration, String> {
    if data.is_empty() {
        return Err("empty config data".into());
    }
    let doc = kapi_codec::yaml::from_yaml(data).map_err(|e| e.to_string())?;
    let kind = doc["kind"].as_str().unwrap_or_default();
    let api_version = doc["apiVersion"].as_str().unwrap_or_default();
    if kind.is_empty() {
        return Err(format!(
            "Object 'Kind' is missing in '{}'",
            String::from_utf8_lossy(data).trim()
        ));
    }
    if kind != "AuthenticationConfiguration" || !GROUP_VERSIONS.contains(&api_version) {
        return Err(format!(
            "no kind {kind:?} is registered for version {api_version:?} in scheme"
        ));
    }
    serde_json::from_value(doc).map_err(|e| format!("strict decoding error: {e}"))
}

/// A field error as upstream prints it: `<field>: <message>`.
fn render(c: &Cause) -> String {
    format!("{}: {}", c.field, c.message)
}

/// Several errors as upstream's aggregate prints them.
pub fn aggregate(errors: &[String]) -> String {
    match errors {
        [one] => one.clone(),
        _ => format!("[{}]", errors.join(", ")),
    }
}

/// Upstream's `ValidateAuthenticationConfiguration`: every error, rendered. CEL expressions
/// are compiled here too (as upstream's), so a configuration that passes compiles.
/// `disallowed_issuers` are the service-account issuers.
pub fn validate(c: &AuthenticationConfiguration, disallowed_issuers: &[String]) -> Vec<String> {
    let mut causes = Vec::new();
    if c.jwt.len() > MAX_JWT_AUTHENTICATORS {
        causes.push(too_many("jwt".into(), c.jwt.len(), MAX_JWT_AUTHENTICATORS));
        return causes.iter().map(render).collect();
    }
    let mut issuers = std::collections::HashSet::new();
    let mut discovery_urls = std::collections::HashSet::new();
    for (i, a) in c.jwt.iter().enumerate() {
        let path = format!("jwt[{i}]");
        validate_jwt(a, &path, disallowed_issuers, &mut causes);
        if !issuers.insert(a.issuer.url.as_str()) {
            causes.push(duplicate(
                format!("{path}.issuer.url"),
                &json!(a.issuer.url),
            ));
        }
        if !a.issuer.discovery_url.is_empty()
            && !discovery_urls.insert(a.issuer.discovery_url.as_str())
        {
            causes.push(duplicate(
                format!("{path}.issuer.discoveryURL"),
                &json!(a.issuer.discovery_url),
            ));
        }
    }
    if let Some(anonymous) = &c.anonymous
        && !anonymous.enabled
        && !anonymous.conditions.is_empty()
    {
        // Go prints the conditions as a slice of structs.
        let rendered: Vec<String> = anonymous
            .conditions
            .iter()
            .map(|c| format!("{{{}}}", c.path))
            .collect();
        causes.push(Cause {
            reason: "FieldValueInvalid".into(),
            message: format!(
                "Invalid value: [{}]: enabled should be set to true when conditions are defined",
                rendered.join(" ")
            ),
            field: "anonymous.conditions".into(),
        });
    }
    causes.iter().map(render).collect()
}

fn validate_jwt(a: &JwtAuthenticator, path: &str, disallowed: &[String], out: &mut Vec<Cause>) {
    let issuer = &a.issuer;
    let ip = format!("{path}.issuer");
    if issuer.url.is_empty() {
        out.push(required(format!("{ip}.url")));
    } else {
        validate_url(&issuer.url, disallowed, &format!("{ip}.url"), out);
    }
    if !issuer.discovery_url.is_empty() {
        let f = format!("{ip}.discoveryURL");
        if !issuer.url.is_empty()
            && issuer.url.trim_end_matches('/') == issuer.discovery_url.trim_end_matches('/')
        {
            out.push(invalid(
                f.clone(),
                &json!(issuer.discovery_url),
                "discoveryURL must be different from URL",
            ));
        }
        validate_url(&issuer.discovery_url, &[], &f, out);
    }
    let af = format!("{ip}.audiences");
    let pf = format!("{ip}.audienceMatchPolicy");
    if issuer.audiences.is_empty() {
        out.push(required_why(
            af.clone(),
            &format!("at least one {af} is required"),
        ));
    } else {
        let mut seen = std::collections::HashSet::new();
        for (i, aud) in issuer.audiences.iter().enumerate() {
            if aud.is_empty() {
                out.push(required(format!("{af}[{i}]")));
            }
            if !seen.insert(aud) {
                out.push(duplicate(format!("{af}[{i}]"), &json!(aud)));
            }
        }
        let policy = issuer.audience_match_policy.as_str();
        if issuer.audiences.len() > 1 && policy != "MatchAny" {
            out.push(invalid(
                pf,
                &json!(policy),
                "audienceMatchPolicy must be MatchAny for multiple audiences",
            ));
        } else if issuer.audiences.len() == 1 && !policy.is_empty() && policy != "MatchAny" {
            out.push(invalid(
                pf,
                &json!(policy),
                "audienceMatchPolicy must be empty or MatchAny for single audience",
            ));
        }
    }
    if !issuer.certificate_authority.is_empty()
        && let Err(e) = super::jwt_issuer::roots(issuer.certificate_authority.as_bytes())
    {
        out.push(invalid(
            format!("{ip}.certificateAuthority"),
            &json!("<omitted>"),
            &e,
        ));
    }
    match issuer.egress_selector_type.as_str() {
        "" | "controlplane" | "cluster" => {}
        other => out.push(invalid(
            format!("{ip}.egressSelectorType"),
            &json!(other),
            "egress selector must be either controlplane or cluster",
        )),
    }
    validate_claim_rules(&a.claim_validation_rules, path, out);
    validate_mappings(a, path, out);
    validate_user_rules(&a.user_validation_rules, path, out);
}

fn validate_url(url: &str, disallowed: &[String], f: &str, out: &mut Vec<Cause>) {
    if disallowed.iter().any(|d| d == url) {
        let mut list = disallowed.to_vec();
        list.sort();
        list.dedup();
        out.push(invalid(
            f.into(),
            &json!(url),
            &format!(
                "URL must not overlap with disallowed issuers: [{}]",
                list.join(" ")
            ),
        ));
    }
    let parsed = match reqwest::Url::parse(url) {
        Ok(u) => u,
        Err(e) => {
            out.push(invalid(f.into(), &json!(url), &e.to_string()));
            return;
        }
    };
    if parsed.scheme() != "https" {
        out.push(invalid(f.into(), &json!(url), "URL scheme must be https"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        out.push(invalid(
            f.into(),
            &json!(url),
            "URL must not contain a username or password",
        ));
    }
    if parsed.query().is_some_and(|q| !q.is_empty()) {
        out.push(invalid(
            f.into(),
            &json!(url),
            "URL must not contain a query",
        ));
    }
    if parsed.fragment().is_some_and(|q| !q.is_empty()) {
        out.push(invalid(
            f.into(),
            &json!(url),
            "URL must not contain a fragment",
        ));
    }
}

/// The variables expressions over a token's claims and over the mapped user may name.
pub const CLAIMS_VARS: &[&str] = &["claims"];
pub const USER_VARS: &[&str] = &["user"];

/// Compiles `expr` for `vars`; a failure as upstream's `Invalid value` at `f`.
fn compile_at(expr: &str, vars: &[&str], f: String, out: &mut Vec<Cause>) {
    if let Err(e) = crate::cel::compile(expr, vars) {
        out.push(invalid(f, &json!(expr), &e));
    }
}

/// `value` (at `f`) given beside `other`, which excludes it.
fn set_with(out: &mut Vec<Cause>, f: String, value: &str, other: &str) {
    if !value.is_empty() {
        out.push(invalid(
            f,
            &json!(value),
            &format!("may not be specified when {other} is set"),
        ));
    }
}

fn validate_claim_rules(rules: &[ClaimValidationRule], path: &str, out: &mut Vec<Cause>) {
    let mut claims = std::collections::HashSet::new();
    let mut exprs = std::collections::HashSet::new();
    for (i, rule) in rules.iter().enumerate() {
        let f = format!("{path}.claimValidationRules[{i}]");
        match (rule.claim.is_empty(), rule.expression.is_empty()) {
            (false, false) => out.push(invalid(
                f,
                &json!(rule.claim),
                "claim and expression can't both be set",
            )),
            (true, true) => out.push(required_why(f, "claim or expression is required")),
            (false, true) => {
                set_with(out, format!("{f}.message"), &rule.message, "claim");
                if !claims.insert(&rule.claim) {
                    out.push(duplicate(format!("{f}.claim"), &json!(rule.claim)));
                }
            }
            (true, false) => {
                set_with(
                    out,
                    format!("{f}.requiredValue"),
                    &rule.required_value,
                    "expression",
                );
                if !exprs.insert(&rule.expression) {
                    out.push(duplicate(
                        format!("{f}.expression"),
                        &json!(rule.expression),
                    ));
                    continue;
                }
                compile_at(
                    &rule.expression,
                    CLAIMS_VARS,
                    format!("{f}.expression"),
                    out,
                );
            }
        }
    }
}

fn validate_prefixed(m: &PrefixedClaimOrExpression, f: String, needed: bool, out: &mut Vec<Cause>) {
    match (m.claim.is_empty(), m.expression.is_empty()) {
        (false, false) => out.push(invalid(
            f,
            &json!(""),
            "claim and expression can't both be set",
        )),
        (true, true) if needed => out.push(required_why(f, "claim or expression is required")),
        (true, true) => {}
        (true, false) => {
            if let Some(prefix) = &m.prefix {
                // Even an empty prefix is one too many.
                out.push(invalid(
                    format!("{f}.prefix"),
                    &json!(prefix),
                    "may not be specified when expression is set",
                ));
            }
            compile_at(&m.expression, CLAIMS_VARS, format!("{f}.expression"), out);
        }
        (false, true) => {
            if m.prefix.is_none() {
                out.push(required_why(
                    format!("{f}.prefix"),
                    "prefix is required when claim is set. It can be set to an empty string to disable prefixing",
                ));
            }
        }
    }
}

fn validate_mappings(a: &JwtAuthenticator, path: &str, out: &mut Vec<Cause>) {
    let m = &a.claim_mappings;
    let f = format!("{path}.claimMappings");
    validate_prefixed(&m.username, format!("{f}.username"), true, out);
    validate_prefixed(&m.groups, format!("{f}.groups"), false, out);
    match (m.uid.claim.is_empty(), m.uid.expression.is_empty()) {
        (false, false) => out.push(invalid(
            format!("{f}.uid"),
            &json!(""),
            "claim and expression can't both be set",
        )),
        (true, false) => compile_at(
            &m.uid.expression,
            CLAIMS_VARS,
            format!("{f}.uid.expression"),
            out,
        ),
        _ => {}
    }
    let mut keys = std::collections::HashSet::new();
    for (i, extra) in m.extra.iter().enumerate() {
        let ef = format!("{f}.extra[{i}]");
        let kf = format!("{ef}.key");
        out.extend(crate::kinds::small_rules::domain_prefixed_path(
            &kf, &extra.key,
        ));
        if extra.key != extra.key.to_lowercase() {
            out.push(invalid(kf.clone(), &json!(extra.key), "must be lowercase"));
        }
        if is_kubernetes_domain(&extra.key) {
            out.push(invalid(
                kf.clone(),
                &json!(extra.key),
                "k8s.io, kubernetes.io and their subdomains are reserved for Kubernetes use",
            ));
        }
        if !keys.insert(&extra.key) {
            out.push(duplicate(kf, &json!(extra.key)));
            continue;
        }
        if extra.value_expression.is_empty() {
            out.push(required(format!("{ef}.valueExpression")));
            continue;
        }
        compile_at(
            &extra.value_expression,
            CLAIMS_VARS,
            format!("{ef}.valueExpression"),
            out,
        );
    }
    // An email username must be checked for verification somewhere, as upstream insists.
    let uses = |expr: &str, name: &str| selects_claim(expr, name);
    if uses(&m.username.expression, "email") {
        let verified = uses(&m.username.expression, "email_verified")
            || m.extra
                .iter()
                .any(|e| uses(&e.value_expression, "email_verified"))
            || a.claim_validation_rules
                .iter()
                .any(|r| uses(&r.expression, "email_verified"));
        if !verified {
            out.push(invalid(
                format!("{f}.username.expression"),
                &json!(m.username.expression),
                "claims.email_verified must be used in claimMappings.username.expression or claimMappings.extra[*].valueExpression or claimValidationRules[*].expression when claims.email is used in claimMappings.username.expression",
            ));
        }
    }
}

/// Whether `expr` reads `claims.<name>` (or `claims.?<name>`).
fn selects_claim(expr: &str, name: &str) -> bool {
    ["claims.", "claims.?"].iter().any(|sel| {
        let needle = format!("{sel}{name}");
        expr.match_indices(&needle).any(|(i, _)| {
            let after = expr[i + needle.len()..].chars().next();
            let before = expr[..i].chars().next_back();
            !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                && !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        })
    })
}

fn is_kubernetes_domain(key: &str) -> bool {
    let Some((domain, _)) = key.split_once('/') else {
        return false;
    };
    ["kubernetes.io", "k8s.io"]
        .iter()
        .any(|d| domain == *d || domain.ends_with(&format!(".{d}")))
}

fn validate_user_rules(rules: &[UserValidationRule], path: &str, out: &mut Vec<Cause>) {
    let mut seen = std::collections::HashSet::new();
    for (i, rule) in rules.iter().enumerate() {
        let f = format!("{path}.userValidationRules[{i}].expression");
        if rule.expression.is_empty() {
            out.push(required(f));
            continue;
        }
        if !seen.insert(&rule.expression) {
            out.push(duplicate(f, &json!(rule.expression)));
            continue;
        }
        compile_at(&rule.expression, USER_VARS, f, out);
    }
}

/// The `--oidc-*` flags, as upstream's `OIDCAuthenticationOptions`.
#[derive(Debug, Clone, Default)]
pub struct OidcFlags {
    pub issuer_url: String,
    pub client_id: String,
    pub ca_file: Option<std::path::PathBuf>,
    pub username_claim: String,
    pub username_prefix: String,
    pub groups_claim: String,
    pub groups_prefix: String,
    pub signing_algs: Vec<String>,
    pub required_claims: BTreeMap<String, String>,
}

impl OidcFlags {
    /// The JWT authenticator the flags describe, as upstream's `ToAuthenticationConfig`: the
    /// client id is the one audience, a username claim other than `email` is prefixed with
    /// `<issuer>#` unless a prefix is given (`-`: none).
    pub fn authenticator(&self) -> Result<JwtAuthenticator, String> {
        let username_prefix = match self.username_prefix.as_str() {
            "-" => String::new(),
            "" if self.username_claim != "email" => format!("{}#", self.issuer_url),
            p => p.to_string(),
        };
        let certificate_authority = match &self.ca_file {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("open {}: {e}", path.display()))?,
            None => String::new(),
        };
        let groups = if self.groups_claim.is_empty() {
            PrefixedClaimOrExpression::default()
        } else {
            PrefixedClaimOrExpression {
                claim: self.groups_claim.clone(),
                prefix: Some(self.groups_prefix.clone()),
                expression: String::new(),
            }
        };
        Ok(JwtAuthenticator {
            issuer: Issuer {
                url: self.issuer_url.clone(),
                audiences: vec![self.client_id.clone()],
                certificate_authority,
                ..Issuer::default()
            },
            claim_validation_rules: self
                .required_claims
                .iter()
                .map(|(claim, value)| ClaimValidationRule {
                    claim: claim.clone(),
                    required_value: value.clone(),
                    ..ClaimValidationRule::default()
                })
                .collect(),
            claim_mappings: ClaimMappings {
                username: PrefixedClaimOrExpression {
                    claim: self.username_claim.clone(),
                    prefix: Some(username_prefix),
                    expression: String::new(),
                },
                groups,
                ..ClaimMappings::default()
            },
            user_validation_rules: Vec::new(),
        })
    }
}

/// The errors of a configuration, against kapi's default service-account issuer.
#[cfg(test)]
fn errors_of(yaml: &str) -> Vec<String> {
    let c = parse(yaml.as_bytes()).unwrap();
    validate(
        &c,
        &["https://kubernetes.default.svc.cluster.local".to_string()],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str =
        "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\n";

    #[test]
    fn a_complete_configuration_is_valid() {
        let errors = errors_of(&format!(
            "{HEAD}jwt:
- issuer:
    url: https://issuer.example
    audiences: [a, b]
    audienceMatchPolicy: MatchAny
  claimValidationRules:
  - claim: hd
    requiredValue: example.com
  - expression: 'claims.exp - claims.iat <= 86400'
    message: too long
  claimMappings:
    username:
      expression: 'claims.email_verified ? claims.email : claims.sub'
    groups:
      claim: groups
      prefix: 'oidc:'
    uid:
      claim: sub
    extra:
    - key: example.com/tenant
      valueExpression: claims.tenant
  userValidationRules:
  - expression: \"!user.username.startsWith('system:')\"
    message: no system users
anonymous:
  enabled: true
  conditions:
  - path: /livez
"
        ));
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn errors_are_upstreams() {
        let errors = errors_of(&format!(
            "{HEAD}jwt:
- issuer:
    url: http://issuer.example?x=1
  claimMappings:
    username:
      claim: sub
    extra:
    - key: kubernetes.io/foo
      valueExpression: claims.x
  userValidationRules:
  - expression: 'nope.x'
- issuer:
    url: https://kubernetes.default.svc.cluster.local
    audiences: [a, a]
  claimValidationRules:
  - claim: c
    expression: 'true'
  claimMappings:
    username:
      expression: claims.email
anonymous:
  enabled: false
  conditions:
  - path: /livez
"
        ));
        let want = [
            "jwt[0].issuer.url: Invalid value: \"http://issuer.example?x=1\": URL scheme must be https",
            "jwt[0].issuer.url: Invalid value: \"http://issuer.example?x=1\": URL must not contain a query",
            "jwt[0].issuer.audiences: Required value: at least one jwt[0].issuer.audiences is required",
            "jwt[0].claimMappings.username.prefix: Required value: prefix is required when claim is set. It can be set to an empty string to disable prefixing",
            "jwt[0].claimMappings.extra[0].key: Invalid value: \"kubernetes.io/foo\": k8s.io, kubernetes.io and their subdomains are reserved for Kubernetes use",
            "jwt[1].issuer.url: Invalid value: \"https://kubernetes.default.svc.cluster.local\": URL must not overlap with disallowed issuers: [https://kubernetes.default.svc.cluster.local]",
            "jwt[1].issuer.audiences[1]: Duplicate value: \"a\"",
            "jwt[1].issuer.audienceMatchPolicy: Invalid value: \"\": audienceMatchPolicy must be MatchAny for multiple audiences",
            "jwt[1].claimValidationRules[0]: Invalid value: \"c\": claim and expression can't both be set",
            "jwt[1].claimMappings.username.expression: Invalid value: \"claims.email\": claims.email_verified must be used in claimMappings.username.expression or claimMappings.extra[*].valueExpression or claimValidationRules[*].expression when claims.email is used in claimMappings.username.expression",
            "anonymous.conditions: Invalid value: [{/livez}]: enabled should be set to true when conditions are defined",
        ];
        for w in want {
            assert!(errors.iter().any(|e| e == w), "missing {w}\nin {errors:#?}");
        }
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("jwt[0].userValidationRules[0].expression: Invalid value: \"nope.x\": compilation failed")),
            "{errors:#?}"
        );
    }

    #[test]
    fn files_must_be_authentication_configurations() {
        assert!(parse(b"").unwrap_err().contains("empty config data"));
        let wrong = parse(b"apiVersion: v1\nkind: ConfigMap\n").unwrap_err();
        assert!(
            wrong.contains("no kind \"ConfigMap\" is registered"),
            "{wrong}"
        );
        let unknown = parse(format!("{HEAD}jwtt: []\n").as_bytes()).unwrap_err();
        assert!(unknown.starts_with("strict decoding error"), "{unknown}");
    }

    #[test]
    fn oidc_flags_make_upstreams_authenticator() {
        let flags = OidcFlags {
            issuer_url: "https://issuer.example".into(),
            client_id: "kubectl".into(),
            username_claim: "sub".into(),
            groups_claim: "groups".into(),
            required_claims: [("hd".to_string(), "example.com".to_string())].into(),
            ..OidcFlags::default()
        };
        let a = flags.authenticator().unwrap();
        assert_eq!(a.issuer.audiences, vec!["kubectl"]);
        assert_eq!(
            a.claim_mappings.username.prefix.as_deref(),
            Some("https://issuer.example#")
        );
        assert_eq!(a.claim_mappings.groups.prefix.as_deref(), Some(""));
        assert_eq!(a.claim_validation_rules[0].required_value, "example.com");
        let email = OidcFlags {
            username_claim: "email".into(),
            ..flags.clone()
        };
        assert_eq!(
            email
                .authenticator()
                .unwrap()
                .claim_mappings
                .username
                .prefix
                .as_deref(),
            Some("")
        );
        let none = OidcFlags {
            username_prefix: "-".into(),
            ..flags
        };
        assert_eq!(
            none.authenticator()
                .unwrap()
                .claim_mappings
                .username
                .prefix
                .as_deref(),
            Some("")
        );
    }

    #[test]
    fn email_claim_selection_is_found_as_a_field_only() {
        assert!(selects_claim("claims.email", "email"));
        assert!(selects_claim("claims.?email.orValue('')", "email"));
        assert!(!selects_claim("claims.email_verified", "email"));
        assert!(!selects_claim("xclaims.email", "email"));
        assert!(selects_claim(
            "a && claims.email_verified",
            "email_verified"
        ));
    }
}
