//! Reading an object's fields the way upstream's typed structs see them: a missing or
//! mistyped string is "", a missing list is empty. Shared by the kinds' validation.

use serde_json::Value;

/// `v[key]` as a string ("" when absent).
pub fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// `v[key]` as a list (empty when absent).
pub fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// `v[key]` as a list of strings (a non-string item is "").
pub fn strs<'a>(v: &'a Value, key: &str) -> Vec<&'a str> {
    list(v, key)
        .iter()
        .map(|s| s.as_str().unwrap_or(""))
        .collect()
}
