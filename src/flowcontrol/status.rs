//! FlowSchema status as upstream keeps it: a `Dangling` condition saying whether the priority
//! level a FlowSchema names exists. Written by the configuration thread when it changes.

use bytes::Bytes;
use serde_json::{Value, json};

use super::bootstrap::{dangling_condition, encode};
use crate::storage::StoreClient;

/// A stored FlowSchema as the cache holds it.
pub struct StoredSchema {
    pub key: Bytes,
    pub mod_revision: i64,
    pub object: Value,
}

/// The FlowSchema with its Dangling condition brought up to date, or None when it already is.
pub fn with_dangling(object: &Value, level_exists: bool, now: &str) -> Option<Value> {
    let level = object["spec"]["priorityLevelConfiguration"]["name"].as_str()?;
    let wanted = if level_exists { "False" } else { "True" };
    let conditions = object["status"]["conditions"].as_array();
    let current = conditions.and_then(|cs| cs.iter().find(|c| c["type"] == "Dangling"));
    if current.is_some_and(|c| c["status"] == wanted) {
        return None;
    }
    let mut updated = object.clone();
    let mut others: Vec<Value> = conditions
        .map(|cs| {
            cs.iter()
                .filter(|c| c["type"] != "Dangling")
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    others.push(dangling_condition(level, level_exists, now));
    if !updated["status"].is_object() {
        updated["status"] = json!({});
    }
    updated["status"]["conditions"] = Value::Array(others);
    if let Some(m) = updated["metadata"].as_object_mut() {
        m.remove("resourceVersion");
    }
    Some(updated)
}

/// Writes the Dangling conditions that changed. A write that races with a user's is left to
/// the next pass (the configuration changed, so there will be one).
pub async fn update_dangling(store: &StoreClient, schemas: &[StoredSchema], levels: &[String]) {
    let now = crate::api::rest::now_rfc3339();
    for s in schemas {
        let level = s.object["spec"]["priorityLevelConfiguration"]["name"]
            .as_str()
            .unwrap_or("");
        let exists = levels.iter().any(|l| l == level);
        let Some(updated) = with_dangling(&s.object, exists, &now) else {
            continue;
        };
        let Ok(bytes) = encode(&updated) else {
            continue;
        };
        let _ = store.update(&s.key, bytes, s.mod_revision).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dangling_condition_follows_the_level() {
        let fs = json!({
            "metadata": {"name": "x"},
            "spec": {"priorityLevelConfiguration": {"name": "gone"}},
            "status": {"conditions": [dangling_condition("gone", true, "t0")]},
        });
        assert_eq!(with_dangling(&fs, true, "t1"), None);
        let updated = with_dangling(&fs, false, "t1").expect("changed");
        let c = &updated["status"]["conditions"][0];
        assert_eq!(
            (c["status"].as_str(), c["reason"].as_str()),
            (Some("True"), Some("NotFound"))
        );
        assert_eq!(
            updated["status"]["conditions"].as_array().map(Vec::len),
            Some(1)
        );
        assert!(
            with_dangling(
                &json!({"spec": {"priorityLevelConfiguration": {"name": "a"}}}),
                true,
                "t"
            )
            .is_some()
        );
    }
}
