//! Upstream's API Priority and Fairness validation (`pkg/apis/flowcontrol/validation`):
//! FlowSchemas (precedence, the priority level named, each rule's subjects and resource or
//! non-resource rules) and PriorityLevelConfigurations (type, limited or exempt shares, the
//! limit response and its queuing).

use crate::jsonptr::At;
use serde_json::{Value, json};

use super::NameRule;
use super::field::{forbidden, invalid, not_supported, required, required_why};
use super::json_read::str_at;
use super::meta::{name_errors, subdomain_errors};
use crate::api::status::Cause;

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "proxy",
    "update",
    "watch",
];
const NS_INTRO: &str = "each member of this list must be '*' or a DNS-1123 label; ";
/// `FlowSchemaMaxMatchingPrecedence`.
const MAX_PRECEDENCE: i64 = 10000;
const MAX_QUEUES: i64 = 10_000_000;
/// `shufflesharding.MaxHashBits`.
const MAX_HASH_BITS: f64 = 60.0;

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|s| s.as_str().unwrap_or("").to_string())
        .collect()
}

fn present<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

pub fn flow_schema(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let empty = json!({});
    let spec = obj.get("spec").unwrap_or(&empty);
    let name = obj.at("/metadata/name").and_then(Value::as_str);
    let prec = spec
        .get("matchingPrecedence")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let pf = "spec.matchingPrecedence".to_string();
    if prec <= 0 {
        causes.push(invalid(
            pf.clone(),
            &json!(prec),
            "must be a positive value",
        ));
    }
    if prec > MAX_PRECEDENCE {
        let msg = format!("must not be greater than {MAX_PRECEDENCE}");
        causes.push(invalid(pf.clone(), &json!(prec), &msg));
    }
    if prec == 1 && name != Some("exempt") {
        let msg = "only the schema named 'exempt' may have matchingPrecedence 1";
        causes.push(invalid(pf, &json!(prec), msg));
    }
    if let Some(d) = present(spec, "distinguisherMethod")
        && !matches!(str_at(d, "type"), "ByNamespace" | "ByUser")
    {
        let rendered = format!("{{\"Type\":{}}}", json!(str_at(d, "type")));
        causes.push(super::field::not_supported_rendered(
            "spec.distinguisherMethod.type".into(),
            &rendered,
            &["ByNamespace", "ByUser"],
        ));
    }
    let pl = spec
        .at("/priorityLevelConfiguration/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let plf = "spec.priorityLevelConfiguration.name".to_string();
    if pl.is_empty() {
        causes.push(required_why(plf, "must reference a priority level"));
    } else {
        for msg in subdomain_errors(pl) {
            causes.push(invalid(plf.clone(), &json!(pl), msg));
        }
    }
    let rules = spec.get("rules").and_then(Value::as_array);
    for (i, rule) in rules.into_iter().flatten().enumerate() {
        rule_with_subjects(rule, &format!("spec.rules[{i}]"), &mut causes);
    }
    causes
}

fn rule_with_subjects(rule: &Value, f: &str, causes: &mut Vec<Cause>) {
    let subjects = rule.get("subjects").and_then(Value::as_array);
    match subjects.filter(|s| !s.is_empty()) {
        Some(list) => {
            for (i, s) in list.iter().enumerate() {
                subject(s, &format!("{f}.subjects[{i}]"), causes);
            }
        }
        None => causes.push(required_why(
            format!("{f}.subjects"),
            "subjects must contain at least one value",
        )),
    }
    let list = |k: &str| rule.get(k).and_then(Value::as_array).cloned();
    let (res, non_res) = (
        list("resourceRules").unwrap_or_default(),
        list("nonResourceRules").unwrap_or_default(),
    );
    if res.is_empty() && non_res.is_empty() {
        causes.push(required_why(
            f.to_string(),
            "at least one of resourceRules and nonResourceRules has to be non-empty",
        ));
    }
    for (i, r) in res.iter().enumerate() {
        resource_rule(r, &format!("{f}.resourceRules[{i}]"), causes);
    }
    for (i, r) in non_res.iter().enumerate() {
        non_resource_rule(r, &format!("{f}.nonResourceRules[{i}]"), causes);
    }
}

fn subject(s: &Value, f: &str, causes: &mut Vec<Cause>) {
    const WHO: &[(&str, &str, &str)] = &[
        ("ServiceAccount", "serviceAccount", "serviceAccount"),
        ("User", "user", "user"),
        ("Group", "group", "group"),
    ];
    let kind = str_at(s, "kind");
    let Some((_, own, _)) = WHO.iter().find(|(k, _, _)| *k == kind) else {
        causes.push(not_supported(
            format!("{f}.kind"),
            &json!(kind),
            &["Group", "ServiceAccount", "User"],
        ));
        return;
    };
    match present(s, own) {
        None => causes.push(required_why(
            format!("{f}.{own}"),
            &format!("{own} is required when subject kind is '{kind}'"),
        )),
        Some(who) => {
            if str_at(who, "name").is_empty() {
                causes.push(required(format!("{f}.{own}.name")));
            } else if *own == "serviceAccount" && str_at(who, "name") != "*" {
                let n = str_at(who, "name");
                for msg in name_errors(NameRule::Subdomain, n, false) {
                    causes.push(invalid(format!("{f}.{own}.name"), &json!(n), &msg));
                }
            }
            if *own == "serviceAccount" {
                let ns = str_at(who, "namespace");
                if ns.is_empty() {
                    causes.push(required_why(
                        format!("{f}.{own}.namespace"),
                        "must specify namespace for service account",
                    ));
                }
                for msg in name_errors(NameRule::Label, ns, false)
                    .into_iter()
                    .filter(|_| !ns.is_empty())
                {
                    causes.push(invalid(format!("{f}.{own}.namespace"), &json!(ns), &msg));
                }
            }
        }
    }
    for (other_kind, other, _) in WHO {
        if other != own && present(s, other).is_some() {
            causes.push(forbidden(
                format!("{f}.{other}"),
                &format!("{other} is forbidden when subject kind is not '{other_kind}'"),
            ));
        }
    }
}

/// The verbs of a rule: one or more, `*` alone or known verbs.
fn verbs(rule: &Value, f: &str, causes: &mut Vec<Cause>) {
    let verbs = strings(rule, "verbs");
    let field = format!("{f}.verbs");
    if verbs.is_empty() {
        causes.push(required_why(field, "verbs must contain at least one value"));
    } else if verbs.iter().any(|v| v == "*") {
        if verbs.len() > 1 {
            let msg = "if '*' is present, must not specify other verbs";
            causes.push(invalid(field, &json!(verbs), msg));
        }
    } else if !verbs.iter().all(|v| VERBS.contains(&v.as_str())) {
        causes.push(not_supported(field, &json!(verbs), VERBS));
    }
}

/// A list that must have a member, and `*` only alone.
fn wildcard_list(
    rule: &Value,
    f: &str,
    key: &str,
    required_msg: &str,
    what: &str,
) -> Option<Cause> {
    let list = strings(rule, key);
    let field = format!("{f}.{key}");
    if list.is_empty() {
        return Some(required_why(field, required_msg));
    }
    (list.len() > 1 && list.iter().any(|v| v == "*")).then(|| {
        let msg = format!("if '*' is present, must not specify other {what}");
        invalid(field, &json!(list), &msg)
    })
}

fn resource_rule(rule: &Value, f: &str, causes: &mut Vec<Cause>) {
    verbs(rule, f, causes);
    let groups_msg = "resource rules must supply at least one api group";
    causes.extend(wildcard_list(
        rule,
        f,
        "apiGroups",
        groups_msg,
        "api groups",
    ));
    let res_msg = "resource rules must supply at least one resource";
    causes.extend(wildcard_list(rule, f, "resources", res_msg, "resources"));
    let namespaces = strings(rule, "namespaces");
    let cluster = rule.get("clusterScope").and_then(Value::as_bool) == Some(true);
    let field = format!("{f}.namespaces");
    if namespaces.is_empty() && !cluster {
        causes.push(required_why(
            field,
            "resource rules that are not cluster scoped must supply at least one namespace",
        ));
    } else if namespaces.iter().any(|n| n == "*") {
        if namespaces.len() > 1 {
            let msg = "if '*' is present, must not specify other namespaces";
            causes.push(invalid(field, &json!(namespaces), msg));
        }
    } else {
        for (i, ns) in namespaces.iter().enumerate() {
            for msg in name_errors(NameRule::Label, ns, false) {
                let m = format!("{NS_INTRO}{msg}");
                causes.push(invalid(format!("{field}[{i}]"), &json!(ns), &m));
            }
        }
    }
}

fn non_resource_rule(rule: &Value, f: &str, causes: &mut Vec<Cause>) {
    verbs(rule, f, causes);
    let urls_msg = "nonResourceURLs must contain at least one value";
    let urls = strings(rule, "nonResourceURLs");
    if let Some(c) = wildcard_list(rule, f, "nonResourceURLs", urls_msg, "non-resource URLs") {
        causes.push(c);
        return;
    }
    if urls.iter().any(|u| u == "*") {
        return;
    }
    for (i, u) in urls.iter().enumerate() {
        let msg = match u.as_str() {
            "" => "must not be empty",
            "/" => continue,
            u if !u.starts_with('/') => "must start with slash",
            u if u.contains(' ') => "must not contain white-space",
            u if u.contains("//") => "must not contain double slash",
            u if u.matches('*').count() > 1 || (u.contains('*') && !u.ends_with("/*")) => {
                "wildcard can only do suffix matching"
            }
            _ => continue,
        };
        causes.push(invalid(format!("{f}.nonResourceURLs[{i}]"), &json!(u), msg));
    }
}

pub fn priority_level(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let empty = json!({});
    let spec = obj.get("spec").unwrap_or(&empty);
    let name = obj.at("/metadata/name").and_then(Value::as_str);
    let ty = str_at(spec, "type");
    if (name == Some("exempt")) != (ty == "Exempt") {
        causes.push(invalid(
            "spec.type".into(),
            &json!(ty),
            "type must be 'Exempt' if and only if name is 'exempt'",
        ));
    }
    let (limited, exempt) = (present(spec, "limited"), present(spec, "exempt"));
    match ty {
        "Exempt" => {
            if limited.is_some() {
                let why = "must be nil if the type is not Limited";
                causes.push(forbidden("spec.limited".into(), why));
            }
            if let Some(e) = exempt {
                shares(e, "spec.exempt", &mut causes);
            }
        }
        "Limited" => {
            if exempt.is_some() {
                let why = "must be nil if the type is Limited";
                causes.push(forbidden("spec.exempt".into(), why));
            }
            match limited {
                None => causes.push(required_why(
                    "spec.limited".into(),
                    "must not be empty when type is Limited",
                )),
                Some(l) => {
                    shares(l, "spec.limited", &mut causes);
                    limit_response(l.get("limitResponse"), &mut causes);
                    if let Some(b) = l.get("borrowingLimitPercent").and_then(Value::as_i64)
                        && b < 0
                    {
                        causes.push(invalid(
                            "spec.limited.borrowingLimitPercent".into(),
                            &json!(b),
                            "if specified, must be a non-negative integer",
                        ));
                    }
                }
            }
        }
        _ => causes.push(not_supported(
            "spec.type".into(),
            &json!(ty),
            &["Exempt", "Limited"],
        )),
    }
    causes
}

/// Nominal concurrency shares and lendable percent of a limited or exempt level.
fn shares(l: &Value, f: &str, causes: &mut Vec<Cause>) {
    if let Some(n) = l.get("nominalConcurrencyShares").and_then(Value::as_i64)
        && n < 0
    {
        let field = format!("{f}.nominalConcurrencyShares");
        causes.push(invalid(field, &json!(n), "must be a non-negative integer"));
    }
    if let Some(p) = l.get("lendablePercent").and_then(Value::as_i64)
        && !(0..=100).contains(&p)
    {
        let field = format!("{f}.lendablePercent");
        causes.push(invalid(
            field,
            &json!(p),
            "must be between 0 and 100, inclusive",
        ));
    }
}

fn limit_response(lr: Option<&Value>, causes: &mut Vec<Cause>) {
    let f = "spec.limited.limitResponse";
    let empty = json!({});
    let lr = lr.unwrap_or(&empty);
    let queuing = present(lr, "queuing");
    match str_at(lr, "type") {
        "Reject" => {
            if queuing.is_some() {
                let why = "must be nil if limited.limitResponse.type is not Limited";
                causes.push(forbidden(format!("{f}.queuing"), why));
            }
        }
        "Queue" => match queuing {
            None => causes.push(required_why(
                format!("{f}.queuing"),
                "must not be empty if limited.limitResponse.type is Limited",
            )),
            Some(q) => queuing_config(q, &format!("{f}.queuing"), causes),
        },
        ty => causes.push(not_supported(
            format!("{f}.type"),
            &json!(ty),
            &["Queue", "Reject"],
        )),
    }
}

fn queuing_config(q: &Value, f: &str, causes: &mut Vec<Cause>) {
    let n = |k: &str| q.get(k).and_then(Value::as_i64).unwrap_or(0);
    let (limit, queues, hand) = (n("queueLengthLimit"), n("queues"), n("handSize"));
    if limit <= 0 {
        causes.push(invalid(
            format!("{f}.queueLengthLimit"),
            &json!(limit),
            "must be positive",
        ));
    }
    let qf = format!("{f}.queues");
    if queues <= 0 {
        causes.push(invalid(qf, &json!(queues), "must be positive"));
    } else if queues > MAX_QUEUES {
        let msg = format!("must not be greater than {MAX_QUEUES}");
        causes.push(invalid(qf, &json!(queues), &msg));
    }
    let hf = format!("{f}.handSize");
    if hand <= 0 {
        causes.push(invalid(hf, &json!(hand), "must be positive"));
    } else if hand > queues {
        let msg = format!("should not be greater than queues ({queues})");
        causes.push(invalid(hf, &json!(hand), &msg));
    } else if entropy_bits(queues, hand) > MAX_HASH_BITS {
        let msg = format!(
            "required entropy bits of deckSize {queues} and handSize {hand} should not be greater than {MAX_HASH_BITS}"
        );
        causes.push(invalid(hf, &json!(hand), &msg));
    }
}

/// `shufflesharding.RequiredEntropyBits`: ceil(log2(deck) * hand).
fn entropy_bits(deck: i64, hand: i64) -> f64 {
    ((deck as f64).log2() * hand as f64).ceil()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::cause_fields;

    #[test]
    fn a_flow_schema_needs_a_level_subjects_and_known_verbs() {
        let fs = json!({"metadata": {"name": "fs"}, "spec": {"matchingPrecedence": -1,
            "rules": [{"subjects": [{"kind": "User"}],
                "resourceRules": [{"verbs": ["bogus"], "apiGroups": ["*"],
                    "resources": ["*"], "namespaces": ["Bad_NS"]}]}]}});
        let causes = flow_schema(&fs);
        assert_eq!(
            causes[0].message,
            "Invalid value: -1: must be a positive value"
        );
        assert!(
            causes[3]
                .message
                .starts_with("Unsupported value: [\"bogus\"]")
        );
        assert_eq!(
            cause_fields(causes),
            [
                ("spec.matchingPrecedence", "FieldValueInvalid"),
                ("spec.priorityLevelConfiguration.name", "FieldValueRequired"),
                ("spec.rules[0].subjects[0].user", "FieldValueRequired"),
                (
                    "spec.rules[0].resourceRules[0].verbs",
                    "FieldValueNotSupported"
                ),
                (
                    "spec.rules[0].resourceRules[0].namespaces[0]",
                    "FieldValueInvalid"
                ),
            ]
            .map(|(f, r)| (f.to_string(), r.to_string()))
        );
    }

    #[test]
    fn a_limited_level_needs_its_limit_response() {
        let pl = json!({"metadata": {"name": "pl"}, "spec": {"type": "Limited",
            "limited": {"nominalConcurrencyShares": -1, "limitResponse": {"type": "Queue"}}}});
        let causes = priority_level(&pl);
        assert_eq!(
            causes[0].message,
            "Invalid value: -1: must be a non-negative integer"
        );
        assert_eq!(
            cause_fields(causes),
            [
                ("spec.limited.nominalConcurrencyShares", "FieldValueInvalid"),
                ("spec.limited.limitResponse.queuing", "FieldValueRequired"),
            ]
            .map(|(f, r)| (f.to_string(), r.to_string()))
        );
    }
}
