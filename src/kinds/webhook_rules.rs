//! Upstream's validation of Validating- and MutatingWebhookConfigurations
//! (`pkg/apis/admissionregistration/validation`): each webhook's fully qualified name (unique in
//! its configuration), its rules (operations, groups, versions, resources and the wildcard
//! forms, scope), failure and match policies, selectors, side effects, timeout, client config
//! (exactly one of an https URL or a Service) and AdmissionReview versions; the reinvocation
//! policy of mutating ones, and `matchConditions` (named, each expression compiled as CEL).

use serde_json::{Value, json};

use super::NameRule;
use super::meta::{name_errors, subdomain_errors};
use super::podspec_rules::{duplicate, invalid, not_supported, required, required_why};
use super::workload_rules::label_selector;
use crate::api::status::Cause;

const OPERATIONS: &[&str] = &["*", "CONNECT", "CREATE", "DELETE", "UPDATE"];
const SCOPES: &[&str] = &["*", "Cluster", "Namespaced"];
const REVIEW_VERSIONS: &str = "v1, v1beta1";
const URL_FORM: &str = "; desired format: https://host[/path]";

fn strings(v: &Value) -> Vec<&Value> {
    v.as_array().map(|a| a.iter().collect()).unwrap_or_default()
}

/// Upstream's `IsFullyQualifiedName`.
fn fully_qualified(field: &str, name: &str, causes: &mut Vec<Cause>) {
    if name.is_empty() {
        causes.push(required(field.into()));
        return;
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    let errs = subdomain_errors(name);
    if !errs.is_empty() {
        causes.push(invalid(field.into(), &json!(name), &errs.join(",")));
    } else if name.split('.').count() < 3 {
        causes.push(invalid(
            field.into(),
            &json!(name),
            "should be a domain with at least three segments separated by dots",
        ));
    }
}

fn wildcard_mixed(list: &[&Value]) -> bool {
    list.len() > 1 && list.iter().any(|v| *v == "*")
}

fn resources(field: &str, list: &[&Value], causes: &mut Vec<Cause>) {
    if list.is_empty() {
        causes.push(required(field.into()));
    }
    let mut res_wild: Vec<&str> = Vec::new();
    let mut sub_wild: Vec<&str> = Vec::new();
    let (mut double, mut single, mut plain) = (false, false, false);
    for (i, r) in list.iter().enumerate() {
        let rs = r.as_str().unwrap_or("");
        if rs.is_empty() {
            causes.push(required(format!("{field}[{i}]")));
            continue;
        }
        double |= rs == "*/*";
        single |= rs == "*";
        let Some((res, sub)) = rs.split_once('/') else {
            plain = rs != "*";
            continue;
        };
        if res_wild.contains(&res) {
            causes.push(invalid(
                format!("{field}[{i}]"),
                r,
                &format!("if '{res}/*' is present, must not specify {rs}"),
            ));
        }
        if sub_wild.contains(&sub) {
            causes.push(invalid(
                format!("{field}[{i}]"),
                r,
                &format!("if '*/{sub}' is present, must not specify {rs}"),
            ));
        }
        if sub == "*" {
            res_wild.push(res);
        }
        if res == "*" {
            sub_wild.push(sub);
        }
    }
    let all = json!(list);
    if list.len() > 1 && double {
        causes.push(invalid(
            field.into(),
            &all,
            "if '*/*' is present, must not specify other resources",
        ));
    }
    if single && plain {
        causes.push(invalid(
            field.into(),
            &all,
            "if '*' is present, must not specify other resources without subresources",
        ));
    }
}

pub(super) fn rule(field: &str, r: &Value, causes: &mut Vec<Cause>) {
    let ops = strings(&r["operations"]);
    if ops.is_empty() {
        causes.push(required(format!("{field}.operations")));
    }
    if wildcard_mixed(&ops) {
        causes.push(invalid(
            format!("{field}.operations"),
            &json!(ops),
            "if '*' is present, must not specify other operations",
        ));
    }
    for (i, op) in ops.iter().enumerate() {
        if !op.as_str().is_some_and(|o| OPERATIONS.contains(&o)) {
            causes.push(not_supported(
                format!("{field}.operations[{i}]"),
                op,
                OPERATIONS,
            ));
        }
    }
    let groups = strings(&r["apiGroups"]);
    if groups.is_empty() {
        causes.push(required(format!("{field}.apiGroups")));
    }
    if wildcard_mixed(&groups) {
        causes.push(invalid(
            format!("{field}.apiGroups"),
            &json!(groups),
            "if '*' is present, must not specify other API groups",
        ));
    }
    let versions = strings(&r["apiVersions"]);
    if versions.is_empty() {
        causes.push(required(format!("{field}.apiVersions")));
    }
    if wildcard_mixed(&versions) {
        causes.push(invalid(
            format!("{field}.apiVersions"),
            &json!(versions),
            "if '*' is present, must not specify other API versions",
        ));
    }
    for (i, v) in versions.iter().enumerate() {
        if v.as_str().unwrap_or("").is_empty() {
            causes.push(required(format!("{field}.apiVersions[{i}]")));
        }
    }
    resources(
        &format!("{field}.resources"),
        &strings(&r["resources"]),
        causes,
    );
    if let Some(scope) = r.get("scope").filter(|s| !s.is_null())
        && !scope.as_str().is_some_and(|s| SCOPES.contains(&s))
    {
        causes.push(not_supported(format!("{field}.scope"), scope, SCOPES));
    }
}

/// Upstream's `ValidateWebhookURL` (https only): scheme, host, no user, fragment or query.
pub(crate) fn url(field: &str, u: &str, causes: &mut Vec<Cause>) {
    let (scheme, rest) = match u.split_once("://") {
        Some((s, r))
            if !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            (s, r)
        }
        _ => ("", ""),
    };
    let (rest, fragment) = rest.split_once('#').unwrap_or((rest, ""));
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = rest.split('/').next().unwrap_or("");
    let (user, host) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    if scheme != "https" {
        causes.push(invalid(
            field.into(),
            &json!(scheme),
            &format!("'https' is the only allowed URL scheme{URL_FORM}"),
        ));
    }
    if host.is_empty() {
        causes.push(invalid(
            field.into(),
            &json!(host),
            &format!("host must be specified{URL_FORM}"),
        ));
    }
    if let Some(user) = user {
        causes.push(invalid(
            field.into(),
            &json!(user),
            "user information is not permitted in the URL",
        ));
    }
    if !fragment.is_empty() {
        causes.push(invalid(
            field.into(),
            &json!(fragment),
            "fragments are not permitted in the URL",
        ));
    }
    if !query.is_empty() {
        causes.push(invalid(
            field.into(),
            &json!(query),
            "query parameters are not permitted in the URL",
        ));
    }
}

/// Upstream's `ValidateWebhookService`.
pub(crate) fn service(field: &str, svc: &Value, causes: &mut Vec<Cause>) {
    let text = |k: &str| svc[k].as_str().unwrap_or("");
    if text("name").is_empty() {
        causes.push(required_why(
            format!("{field}.name"),
            "service name is required",
        ));
    }
    if text("namespace").is_empty() {
        causes.push(required_why(
            format!("{field}.namespace"),
            "service namespace is required",
        ));
    }
    let port = svc["port"].as_i64().unwrap_or(443);
    if !(1..=65535).contains(&port) {
        causes.push(invalid(
            format!("{field}.port"),
            &json!(port),
            "port is not valid: must be between 1 and 65535, inclusive",
        ));
    }
    let path = text("path");
    if path.is_empty() || path == "/" {
        return;
    }
    let pf = format!("{field}.path");
    if path == "//" {
        causes.push(invalid(pf, &json!(path), "segment[0] may not be empty"));
        return;
    }
    if !path.starts_with('/') {
        causes.push(invalid(pf.clone(), &json!(path), "must start with a '/'"));
    }
    let check = path.strip_prefix('/').unwrap_or(path);
    let check = check.strip_suffix('/').unwrap_or(check);
    for (i, step) in check.split('/').enumerate() {
        if step.is_empty() {
            causes.push(invalid(
                pf.clone(),
                &json!(path),
                &format!("segment[{i}] may not be empty"),
            ));
            continue;
        }
        for e in subdomain_errors(step) {
            causes.push(invalid(
                pf.clone(),
                &json!(path),
                &format!("segment[{i}]: {e}"),
            ));
        }
    }
}

fn review_versions(field: &str, versions: &[&Value], causes: &mut Vec<Cause>) {
    if versions.is_empty() {
        causes.push(required_why(
            field.into(),
            &format!("must specify one of {REVIEW_VERSIONS}"),
        ));
        return;
    }
    let mut seen: Vec<&str> = Vec::new();
    let mut accepted = false;
    for (i, v) in versions.iter().enumerate() {
        let s = v.as_str().unwrap_or("");
        if seen.contains(&s) {
            causes.push(invalid(format!("{field}[{i}]"), v, "duplicate version"));
            continue;
        }
        seen.push(s);
        for e in name_errors(NameRule::Label1035, s, false) {
            causes.push(invalid(format!("{field}[{i}]"), v, &e));
        }
        accepted |= s == "v1" || s == "v1beta1";
    }
    if !accepted {
        causes.push(invalid(
            field.into(),
            &json!(versions),
            &format!("must include at least one of {REVIEW_VERSIONS}"),
        ));
    }
}

fn one_of(field: &str, v: &Value, allowed: &[&str], causes: &mut Vec<Cause>) {
    if let Some(x) = v.get(field.rsplit('.').next().unwrap_or(field))
        && !x.is_null()
        && !x.as_str().is_some_and(|s| allowed.contains(&s))
    {
        causes.push(not_supported(field.into(), x, allowed));
    }
}

fn webhook(field: &str, w: &Value, mutating: bool, causes: &mut Vec<Cause>) {
    fully_qualified(
        &format!("{field}.name"),
        w["name"].as_str().unwrap_or(""),
        causes,
    );
    for (i, r) in strings(&w["rules"]).iter().enumerate() {
        rule(&format!("{field}.rules[{i}]"), r, causes);
    }
    one_of(
        &format!("{field}.failurePolicy"),
        w,
        &["Fail", "Ignore"],
        causes,
    );
    one_of(
        &format!("{field}.matchPolicy"),
        w,
        &["Equivalent", "Exact"],
        causes,
    );
    for sel in ["namespaceSelector", "objectSelector"] {
        if let Some(s) = w.get(sel).filter(|s| s.is_object()) {
            label_selector(s, &format!("{field}.{sel}"), causes);
        }
    }
    match w.get("sideEffects").filter(|s| !s.is_null()) {
        None => causes.push(required_why(
            format!("{field}.sideEffects"),
            "must specify one of None, NoneOnDryRun",
        )),
        Some(s)
            if !s
                .as_str()
                .is_some_and(|s| s == "None" || s == "NoneOnDryRun") =>
        {
            causes.push(not_supported(
                format!("{field}.sideEffects"),
                s,
                &["None", "NoneOnDryRun"],
            ))
        }
        _ => {}
    }
    if let Some(t) = w["timeoutSeconds"].as_i64()
        && !(1..=30).contains(&t)
    {
        causes.push(invalid(
            format!("{field}.timeoutSeconds"),
            &json!(t),
            "the timeout value must be between 1 and 30 seconds",
        ));
    }
    let cc = &w["clientConfig"];
    let has_url = cc.get("url").is_some_and(|u| !u.is_null());
    let has_service = cc.get("service").is_some_and(|s| !s.is_null());
    if has_url == has_service {
        causes.push(required_why(
            format!("{field}.clientConfig"),
            "exactly one of url or service is required",
        ));
    } else if has_url {
        url(
            &format!("{field}.clientConfig.url"),
            cc["url"].as_str().unwrap_or(""),
            causes,
        );
    } else {
        service(
            &format!("{field}.clientConfig.service"),
            &cc["service"],
            causes,
        );
    }
    match_conditions(field, w, causes);
    if mutating {
        one_of(
            &format!("{field}.reinvocationPolicy"),
            w,
            &["IfNeeded", "Never"],
            causes,
        );
    }
}

/// Most match conditions a webhook may have (upstream's).
const MAX_MATCH_CONDITIONS: usize = 64;

/// `matchConditions`: each named (a qualified name, unique) with an expression that compiles.
fn match_conditions(field: &str, w: &Value, causes: &mut Vec<Cause>) {
    use crate::admission::policy::cel::{WEBHOOK_VARIABLES, compile};
    let conditions = strings(&w["matchConditions"]);
    if conditions.len() > MAX_MATCH_CONDITIONS {
        causes.push(Cause {
            reason: "FieldValueTooMany".into(),
            message: format!(
                "Too many: {}: must have at most {MAX_MATCH_CONDITIONS} items",
                conditions.len()
            ),
            field: format!("{field}.matchConditions"),
        });
    }
    let mut names: Vec<&str> = Vec::new();
    for (i, c) in conditions.iter().enumerate() {
        let f = format!("{field}.matchConditions[{i}]");
        let name = c["name"].as_str().unwrap_or("");
        if name.is_empty() {
            causes.push(required(format!("{f}.name")));
        } else {
            for msg in super::meta::qualified_name_errors(name) {
                causes.push(invalid(format!("{f}.name"), &json!(name), &msg));
            }
            if names.contains(&name) {
                causes.push(duplicate(format!("{f}.name"), &json!(name)));
            }
            names.push(name);
        }
        let expr = c["expression"].as_str().unwrap_or("");
        if expr.is_empty() {
            causes.push(required(format!("{f}.expression")));
        } else if let Err(why) = compile(expr, WEBHOOK_VARIABLES) {
            causes.push(invalid(format!("{f}.expression"), &json!(expr), &why));
        }
    }
}

/// Every cause a webhook configuration's `webhooks` give.
pub fn validate(obj: &Value, mutating: bool) -> Vec<Cause> {
    let mut causes = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    for (i, w) in strings(&obj["webhooks"]).iter().enumerate() {
        let field = format!("webhooks[{i}]");
        webhook(&field, w, mutating, &mut causes);
        review_versions(
            &format!("{field}.admissionReviewVersions"),
            &strings(&w["admissionReviewVersions"]),
            &mut causes,
        );
        let name = w["name"].as_str().unwrap_or("");
        if !name.is_empty() {
            if names.contains(&name) {
                causes.push(duplicate(format!("{field}.name"), &json!(name)));
            } else {
                names.push(name);
            }
        }
    }
    causes
}

/// An update (`Validate<Kind>WebhookConfigurationUpdate`): the create rules, loosened where
/// the stored configuration already broke them — duplicate webhook names, no recognized
/// AdmissionReview version, side effects other than None/NoneOnDryRun (v1beta1's `Some`
/// and `Unknown`) — and match condition expressions it already stored are not compiled again.
pub fn validate_update(obj: &Value, old: &Value, mutating: bool) -> Vec<Cause> {
    let old_hooks = strings(&old["webhooks"]);
    let mut old_names: Vec<&str> = old_hooks
        .iter()
        .filter_map(|w| w["name"].as_str())
        .collect();
    let count = old_names.len();
    old_names.sort_unstable();
    old_names.dedup();
    let unique_names = old_names.len() == count;
    let recognized_versions = old_hooks.iter().all(|w| {
        strings(&w["admissionReviewVersions"])
            .iter()
            .any(|v| matches!(v.as_str(), Some("v1" | "v1beta1")))
    });
    let no_side_effects = old_hooks
        .iter()
        .all(|w| matches!(w["sideEffects"].as_str(), Some("None" | "NoneOnDryRun")));
    let causes = validate(obj, mutating)
        .into_iter()
        .filter(|c| {
            let last = c.field.rsplit('.').next().unwrap_or("");
            let waived_name = !unique_names
                && c.reason == "FieldValueDuplicate"
                && last == "name"
                && !c.field.contains("matchConditions");
            let waived_versions = !recognized_versions
                && last == "admissionReviewVersions"
                && c.message.contains("must include at least one of");
            let waived_side_effects = !no_side_effects
                && last == "sideEffects"
                && super::immutable::value_at(obj, &c.field)
                    .and_then(Value::as_str)
                    .is_some_and(|s| matches!(s, "Some" | "Unknown"));
            !(waived_name || waived_versions || waived_side_effects)
        })
        .collect();
    super::immutable::ratchet_expressions(obj, old, causes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook() -> Value {
        json!({"name": "check.example.com", "sideEffects": "None",
               "admissionReviewVersions": ["v1"],
               "clientConfig": {"url": "https://hooks.example.com/check"},
               "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                          "resources": ["pods"]}]})
    }

    fn fields(w: Value) -> Vec<(String, String)> {
        validate(&json!({"webhooks": [w]}), true)
            .into_iter()
            .map(|c| (c.field, c.reason))
            .collect()
    }

    #[test]
    fn a_good_webhook_passes_and_each_fault_is_named() {
        assert!(fields(hook()).is_empty());
        let mut w = hook();
        w["clientConfig"] = json!({"url": "http://host?x=1"});
        let f = fields(w);
        assert_eq!(f.len(), 2, "{f:?}");
        let mut w = hook();
        w["name"] = json!("short.name");
        w["rules"][0]["operations"] = json!(["*", "CREATE"]);
        w["rules"][0]["resources"] = json!(["*/*", "pods"]);
        w["timeoutSeconds"] = json!(31);
        w["reinvocationPolicy"] = json!("Sometimes");
        let got: Vec<String> = fields(w).into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            got,
            [
                "webhooks[0].name",
                "webhooks[0].rules[0].operations",
                "webhooks[0].rules[0].resources",
                "webhooks[0].timeoutSeconds",
                "webhooks[0].reinvocationPolicy"
            ]
        );
    }

    #[test]
    fn names_are_unique_and_review_versions_known() {
        let mut w = hook();
        w["admissionReviewVersions"] = json!(["v2"]);
        let two = json!({"webhooks": [hook(), w]});
        let got: Vec<(String, String)> = validate(&two, false)
            .into_iter()
            .map(|c| (c.field, c.reason))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "webhooks[1].admissionReviewVersions".to_string(),
                    "FieldValueInvalid".to_string()
                ),
                (
                    "webhooks[1].name".to_string(),
                    "FieldValueDuplicate".to_string()
                )
            ]
        );
    }

    #[test]
    fn an_update_keeps_what_the_stored_configuration_already_had() {
        let mut legacy = hook();
        legacy["sideEffects"] = json!("Unknown");
        legacy["admissionReviewVersions"] = json!(["v2"]);
        let old = json!({"webhooks": [legacy.clone(), legacy.clone()]});
        let mut new = old.clone();
        new["webhooks"][0]["timeoutSeconds"] = json!(5);
        let fresh: Vec<String> = validate(&new, false).into_iter().map(|c| c.field).collect();
        assert_eq!(fresh.len(), 5, "{fresh:?}");
        assert!(validate_update(&new, &old, false).is_empty());
        // A configuration that was clean stays clean.
        let clean = json!({"webhooks": [hook()]});
        let mut dirty = clean.clone();
        dirty["webhooks"][0]["sideEffects"] = json!("Some");
        let got: Vec<String> = validate_update(&dirty, &clean, false)
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(got, ["webhooks[0].sideEffects"]);
        // An expression it stored is not compiled again; a new one is.
        let mut stored = hook();
        stored["matchConditions"] = json!([{"name": "m", "expression": "nope.x"}]);
        let old = json!({"webhooks": [stored.clone()]});
        assert_eq!(validate(&old, false).len(), 1);
        assert!(validate_update(&old, &old, false).is_empty());
        let mut changed = old.clone();
        changed["webhooks"][0]["matchConditions"][0]["expression"] = json!("nope.y");
        assert_eq!(validate_update(&changed, &old, false).len(), 1);
    }
}
