//! Reading an object's metadata from its JSON form (empty when absent).

use serde_json::Value;

fn meta(v: &Value, field: &str) -> String {
    v["metadata"][field]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

pub fn name_of(v: &Value) -> String {
    meta(v, "name")
}

pub fn namespace_of(v: &Value) -> String {
    meta(v, "namespace")
}

pub fn uid_of(v: &Value) -> String {
    meta(v, "uid")
}

pub fn resource_version_of(v: &Value) -> String {
    meta(v, "resourceVersion")
}
