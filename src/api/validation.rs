//! Per-kind validation upstream's strategies run on create and update, keyed by the registry
//! row's group and kind: the write path calls `validate` once on the object it is about to
//! store. Today the size limits of ConfigMap and Secret data (`ValidateConfigMap`,
//! `ValidateSecret`); further kinds add a row to `RULES`.

use serde_json::Value;

use super::registry::Resource;
use super::status::{Cause, Status};

/// Upstream's `MaxSecretSize`: the data a ConfigMap or Secret may hold (1 MiB).
pub const MAX_SECRET_SIZE: usize = 1024 * 1024;

/// A kind's rule: the causes of an invalid object, none when it is valid.
type Rule = fn(&Value) -> Vec<Cause>;

/// (group, kind) → rule.
const RULES: &[(&str, &str, Rule)] = &[("", "ConfigMap", config_map), ("", "Secret", secret)];

/// 422 Invalid with upstream's causes when the object breaks its kind's rules.
pub fn validate(res: &Resource, obj: &Value) -> Result<(), Status> {
    let Some((_, _, rule)) = RULES
        .iter()
        .find(|(g, k, _)| *g == res.group && *k == res.kind)
    else {
        return Ok(());
    };
    let causes = rule(obj);
    if causes.is_empty() {
        return Ok(());
    }
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    Err(Status::invalid(&res.group, &res.kind, name, causes))
}

fn too_long(field: &str) -> Cause {
    Cause {
        reason: "FieldValueTooLong".into(),
        message: format!("Too long: must have at most {MAX_SECRET_SIZE} bytes"),
        field: field.into(),
    }
}

/// Bytes a base64 string decodes to, without decoding it.
fn decoded_len(s: &str) -> usize {
    let pad = s.bytes().rev().take_while(|&b| b == b'=').count();
    (s.len() / 4 * 3 + (s.len() % 4).saturating_sub(1)).saturating_sub(pad.min(2))
}

fn string_values<'a>(obj: &'a Value, field: &str) -> impl Iterator<Item = (String, &'a str)> {
    obj.get(field)
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?)))
}

/// `data` (strings) and `binaryData` (base64) together at most 1 MiB; upstream reports it on
/// the whole object (the field path `[]`).
fn config_map(obj: &Value) -> Vec<Cause> {
    let data: usize = string_values(obj, "data").map(|(_, v)| v.len()).sum();
    let binary: usize = string_values(obj, "binaryData")
        .map(|(_, v)| decoded_len(v))
        .sum();
    if data + binary > MAX_SECRET_SIZE {
        vec![too_long("[]")]
    } else {
        Vec::new()
    }
}

/// `data` (base64, with `stringData` merged over it as upstream's conversion does) at most
/// 1 MiB, reported on `data`.
fn secret(obj: &Value) -> Vec<Cause> {
    let mut sizes: std::collections::HashMap<String, usize> = string_values(obj, "data")
        .map(|(k, v)| (k, decoded_len(v)))
        .collect();
    sizes.extend(string_values(obj, "stringData").map(|(k, v)| (k, v.len())));
    if sizes.values().sum::<usize>() > MAX_SECRET_SIZE {
        vec![too_long("data")]
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::registry::Registry;
    use base64::Engine;
    use serde_json::json;

    #[test]
    fn base64_lengths_are_counted_decoded() {
        let e = base64::engine::general_purpose::STANDARD;
        for n in 0..10 {
            let s = e.encode(vec![7u8; n]);
            assert_eq!(decoded_len(&s), n, "{s}");
        }
    }

    #[test]
    fn config_maps_and_secrets_over_one_mebibyte_are_invalid() {
        let reg = Registry::builtin();
        let cms = reg.get("", "v1", "configmaps").unwrap();
        let ok = json!({"metadata": {"name": "c"}, "data": {"a": "x".repeat(MAX_SECRET_SIZE)}});
        assert!(validate(cms, &ok).is_ok());
        let big = json!({"metadata": {"name": "c"}, "data": {"a": "x".repeat(MAX_SECRET_SIZE), "b": "y"}});
        let s = validate(cms, &big).unwrap_err();
        assert_eq!((s.code, s.reason), (422, "Invalid"));
        assert_eq!(
            s.message,
            "ConfigMap \"c\" is invalid: []: Too long: must have at most 1048576 bytes"
        );
        assert_eq!(s.causes[0].reason, "FieldValueTooLong");
        assert_eq!(s.causes[0].field, "[]");

        let secrets = reg.get("", "v1", "secrets").unwrap();
        let e = base64::engine::general_purpose::STANDARD;
        let ok =
            json!({"metadata": {"name": "s"}, "data": {"a": e.encode(vec![0u8; MAX_SECRET_SIZE])}});
        assert!(validate(secrets, &ok).is_ok());
        let big = json!({"metadata": {"name": "s"}, "data": {"a": e.encode(vec![0u8; MAX_SECRET_SIZE])}, "stringData": {"b": "z"}});
        let s = validate(secrets, &big).unwrap_err();
        assert_eq!(
            s.message,
            "Secret \"s\" is invalid: data: Too long: must have at most 1048576 bytes"
        );
        // Other kinds have no such rule.
        let pods = reg.get("", "v1", "pods").unwrap();
        assert!(validate(pods, &big).is_ok());
    }
}
