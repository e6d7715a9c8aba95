//! ClusterRole aggregation (upstream's clusterrole-aggregation controller, which runs in
//! kube-controller-manager; kapi does it itself so that `admin`, `edit` and `view` are filled
//! without one): a ClusterRole with an `aggregationRule` gets the rules of every ClusterRole
//! its selectors match, written to the store whenever they differ. Run by the RBAC follower.

use serde_json::{Value, json};

use super::rbac::policy::{Policy, Role};
use super::rbac::rules::Rule;
use crate::storage::StoreClient;

/// How many requirements (matchLabels entries and matchExpressions) a LabelSelector has.
pub fn requirements(selector: &Value) -> usize {
    selector["matchLabels"].as_object().map_or(0, |m| m.len())
        + selector["matchExpressions"]
            .as_array()
            .map_or(0, |a| a.len())
}

/// An object's `metadata.labels` as (key, value) pairs.
pub fn label_pairs(labels: &Value) -> Vec<(String, String)> {
    labels
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `labels` satisfy one `LabelSelector` (matchLabels and matchExpressions).
pub fn selector_matches(selector: &Value, labels: &[(String, String)]) -> bool {
    let get = |k: &str| {
        labels
            .iter()
            .find(|(lk, _)| lk == k)
            .map(|(_, v)| v.as_str())
    };
    let by_labels = selector["matchLabels"]
        .as_object()
        .is_none_or(|m| m.iter().all(|(k, v)| get(k) == v.as_str()));
    let by_expressions = selector["matchExpressions"].as_array().is_none_or(|exprs| {
        exprs.iter().all(|e| {
            let key = e["key"].as_str().unwrap_or("");
            let values: Vec<&str> = e["values"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            match e["operator"].as_str() {
                Some("In") => get(key).is_some_and(|v| values.contains(&v)),
                Some("NotIn") => get(key).is_none_or(|v| !values.contains(&v)),
                Some("Exists") => get(key).is_some(),
                Some("DoesNotExist") => get(key).is_none(),
                _ => false,
            }
        })
    });
    // An empty selector selects nothing in aggregation (upstream skips it).
    let empty = selector.as_object().is_none_or(|o| o.is_empty());
    !empty && by_labels && by_expressions
}

/// The rules `role` aggregates, as upstream orders them: per selector, the matching roles by
/// name, each rule once.
pub fn aggregated_rules(policy: &Policy, role: &Role) -> Vec<Rule> {
    let mut out: Vec<Rule> = Vec::new();
    for selector in role.selectors.iter().flatten() {
        let mut matched: Vec<&std::sync::Arc<Role>> = policy
            .cluster_roles()
            .filter(|r| r.name != role.name && selector_matches(selector, &r.labels))
            .collect();
        matched.sort_by(|a, b| a.name.cmp(&b.name));
        for r in matched {
            for rule in r.rules.iter() {
                if !out.contains(rule) {
                    out.push(rule.clone());
                }
            }
        }
    }
    out
}

/// Writes the aggregated rules of every aggregating ClusterRole whose stored rules differ.
pub async fn fill(store: &StoreClient, prefix: &str, policy: &Policy) {
    for role in policy.cluster_roles() {
        if role.selectors.is_none() {
            continue;
        }
        let rules = aggregated_rules(policy, role);
        if rules.as_slice() == &*role.rules {
            continue;
        }
        let key = format!("{prefix}clusterroles/{}", role.name);
        let Ok(Some(kv)) = store.get(key.as_bytes()).await else {
            continue;
        };
        let Some(mut obj) = super::decode(&kv.value) else {
            continue;
        };
        obj["rules"] = json!(rules.iter().map(Rule::to_json).collect::<Vec<_>>());
        if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove("resourceVersion");
        }
        let Ok(json) = serde_json::to_vec(&obj) else {
            continue;
        };
        let mut pb = Vec::new();
        if kapi_codec::to_pb::json_to_envelope(
            &json,
            None,
            kapi_codec::FieldValidation::Strict,
            &mut pb,
        )
        .is_err()
        {
            continue;
        }
        // A conflict means someone changed it meanwhile: the next pass sees their version.
        if let Err(e) = store
            .update(key.as_bytes(), bytes::Bytes::from(pb), kv.mod_revision)
            .await
            && !matches!(e, crate::storage::StoreError::Conflict { .. })
        {
            eprintln!("kapi: aggregating ClusterRole {}: {e}", role.name);
        }
    }
}
