//! Object metadata rules every kind shares (upstream's `ValidateObjectMeta`): the name by the
//! kind's rule, generateName, label keys and values, annotation keys and their total size.
//! Messages and field paths are upstream's, so a 422's causes read the same.

use crate::jsonptr::At;
use serde_json::Value;

use super::NameRule;
use crate::api::status::Cause;

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const LABEL1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const QUALIFIED_NAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
/// Upstream's `TotalAnnotationSizeLimitB`: keys and values of all annotations together.
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

fn invalid(field: &str, value: &str, msg: &str) -> Cause {
    Cause {
        reason: "FieldValueInvalid".into(),
        message: format!("Invalid value: {}: {msg}", go_quote(value)),
        field: field.into(),
    }
}

/// A value as Go's `%q` prints it in field errors.
fn go_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| is_alnum(b) || b == b'-')
        && s.bytes().next().is_some_and(is_alnum)
        && s.bytes().last().is_some_and(is_alnum)
}

/// Upstream's `IsDNS1123Subdomain`: its messages, empty when valid.
pub fn subdomain_errors(s: &str) -> Vec<&'static str> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push("must be no more than 253 characters");
    }
    if !s.split('.').all(dns_label) {
        errs.push(SUBDOMAIN_MSG);
    }
    errs
}

pub fn label_errors(s: &str) -> Vec<&'static str> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push("must be no more than 63 characters");
    }
    if !dns_label(s) {
        errs.push(LABEL_MSG);
    }
    errs
}

fn label1035_errors(s: &str) -> Vec<&'static str> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push("must be no more than 63 characters");
    }
    if !(dns_label(s) && s.bytes().next().is_some_and(|b| b.is_ascii_lowercase())) {
        errs.push(LABEL1035_MSG);
    }
    errs
}

pub(super) fn path_segment_errors(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s == "." || s == ".." {
        errs.push(format!("may not be '{s}'"));
    }
    for bad in ["/", "%"] {
        if s.contains(bad) {
            errs.push(format!("may not contain '{bad}'"));
        }
    }
    errs
}

/// The messages of a name under `rule`; with `prefix` (generateName), a trailing `-` is allowed
/// as upstream's name functions allow it.
pub fn name_errors(rule: NameRule, name: &str, prefix: bool) -> Vec<String> {
    let checked = if prefix {
        name.strip_suffix('-').unwrap_or(name)
    } else {
        name
    };
    match rule {
        NameRule::Subdomain => subdomain_errors(checked)
            .into_iter()
            .map(str::to_string)
            .collect(),
        NameRule::Label => label_errors(checked)
            .into_iter()
            .map(str::to_string)
            .collect(),
        NameRule::Label1035 => label1035_errors(checked)
            .into_iter()
            .map(str::to_string)
            .collect(),
        NameRule::PathSegment => path_segment_errors(checked),
        NameRule::IpAddress => super::ip_rules::ip_address_name_errors(checked),
    }
}

/// Upstream's `IsValidPortName` (a named container, probe or target port).
pub fn port_name_errors(name: &str) -> Vec<&'static str> {
    let mut errs = Vec::new();
    if name.len() > 15 {
        errs.push("must be no more than 15 characters");
    }
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
    }
    if !name.bytes().any(|b| b.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)");
    }
    if name.contains("--") {
        errs.push("must not contain consecutive hyphens");
    }
    if name.starts_with('-') || name.ends_with('-') {
        errs.push("must not begin or end with a hyphen");
    }
    errs
}

/// Upstream's `IsConfigMapKey` (ConfigMap and Secret keys, key selectors, volume items).
pub fn config_map_key_errors(key: &str) -> Vec<&'static str> {
    let mut errs = Vec::new();
    if key.len() > 253 {
        errs.push("must be no more than 253 characters");
    }
    if key.is_empty()
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    {
        errs.push("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')");
    }
    match key {
        "." => errs.push("must not be '.'"),
        ".." => errs.push("must not be '..'"),
        k if k.starts_with("..") => errs.push("must not start with '..'"),
        _ => {}
    }
    errs
}

/// Upstream's `IsQualifiedName`: `[prefix/]name`, the prefix a DNS subdomain.
pub fn qualified_name_errors(key: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        if p.is_empty() {
            errs.push("prefix part must be non-empty".to_string());
        } else {
            errs.extend(
                subdomain_errors(p)
                    .into_iter()
                    .map(|m| format!("prefix part {m}")),
            );
        }
    }
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else {
        if name.len() > 63 {
            errs.push("name part must be no more than 63 bytes".to_string());
        }
        let b = name.as_bytes();
        let ok = b
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c))
            && b.first().is_some_and(u8::is_ascii_alphanumeric)
            && b.last().is_some_and(u8::is_ascii_alphanumeric);
        if !ok {
            errs.push(QUALIFIED_NAME_MSG.to_string());
        }
    }
    errs
}

pub fn label_value_errors(v: &str) -> Vec<&'static str> {
    let mut errs = Vec::new();
    if v.len() > 63 {
        errs.push("must be no more than 63 bytes");
    }
    let b = v.as_bytes();
    let ok = b.is_empty()
        || (b
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c))
            && b.first().is_some_and(u8::is_ascii_alphanumeric)
            && b.last().is_some_and(u8::is_ascii_alphanumeric));
    if !ok {
        errs.push(LABEL_VALUE_MSG);
    }
    errs
}

/// `ValidateLabels`: every key a qualified name and every value a label value, reported at
/// `field` (object labels, template labels, node selectors).
pub fn labels(map: Option<&Value>, field: &str, causes: &mut Vec<Cause>) {
    let Some(m) = map.and_then(Value::as_object) else {
        return;
    };
    for (k, v) in m {
        for msg in qualified_name_errors(k) {
            causes.push(invalid(field, k, &msg));
        }
        let v = v.as_str().unwrap_or("");
        for msg in label_value_errors(v) {
            causes.push(invalid(field, v, msg));
        }
    }
}

/// `ValidateAnnotations`: keys are qualified names (lower-cased), the total size bounded.
pub fn annotations(map: Option<&Value>, field: &str, causes: &mut Vec<Cause>) {
    let Some(m) = map.and_then(Value::as_object) else {
        return;
    };
    let mut total = 0;
    for (k, v) in m {
        for msg in qualified_name_errors(&k.to_ascii_lowercase()) {
            causes.push(invalid(field, k, &msg));
        }
        total += k.len() + v.as_str().map_or(0, str::len);
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        causes.push(Cause {
            reason: "FieldValueTooLong".into(),
            message: format!("Too long: may not be more than {TOTAL_ANNOTATION_SIZE_LIMIT} bytes"),
            field: field.into(),
        });
    }
}

/// The causes of an object's metadata under its kind's name rule.
pub fn validate(obj: &Value, rule: NameRule) -> Vec<Cause> {
    let mut causes = Vec::new();
    let meta = obj.get("metadata");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    for msg in name_errors(rule, name, false) {
        causes.push(invalid("metadata.name", name, &msg));
    }
    if let Some(generate) = meta
        .and_then(|m| m.get("generateName"))
        .and_then(Value::as_str)
        .filter(|g| !g.is_empty())
    {
        for msg in name_errors(rule, generate, true) {
            causes.push(invalid("metadata.generateName", generate, &msg));
        }
    }
    labels(
        meta.and_then(|m| m.get("labels")),
        "metadata.labels",
        &mut causes,
    );
    annotations(
        meta.and_then(|m| m.get("annotations")),
        "metadata.annotations",
        &mut causes,
    );
    causes
}

/// Upstream's `ValidateObjectMetaAccessorUpdate`: what an update may not do to the metadata the
/// server owns. The pipeline has already taken from `old` what upstream's `BeforeUpdate` takes
/// (generation always; uid, creationTimestamp, deletionTimestamp and the grace period where the
/// request left them out), so what is left here is a change the client asked for.
///
/// Upstream runs this twice on an update (once for every kind, once in the kind's own update
/// rules) and its causes repeat; the message it builds from them does not. kapi reports each once.
pub fn validate_update(new: &Value, old: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let at = |obj: &Value, k: &str| obj.at(&format!("/metadata/{k}")).cloned();
    if at(old, "deletionTimestamp").is_some_and(|v| !v.is_null()) {
        let known = finalizers(old);
        let mut extra: Vec<String> = finalizers(new)
            .into_iter()
            .filter(|f| !known.contains(f))
            .collect();
        extra.sort();
        extra.dedup();
        if !extra.is_empty() {
            causes.push(super::field::forbidden(
                "metadata.finalizers".into(),
                &format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers {}",
                    go_string_slice(&extra)
                ),
            ));
        }
    }
    let generation = |obj: &Value| at(obj, "generation").and_then(|g| g.as_i64()).unwrap_or(0);
    if generation(new) < generation(old) {
        causes.push(super::field::invalid(
            "metadata.generation".into(),
            &Value::from(generation(new)),
            "must not be decremented",
        ));
    }
    for k in ["name", "namespace", "uid"] {
        let text = |obj: &Value| {
            at(obj, k)
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        };
        if text(new) != text(old) {
            causes.push(immutable(&format!("metadata.{k}"), &go_quote(&text(new))));
        }
    }
    for k in ["creationTimestamp", "deletionTimestamp"] {
        let (n, o) = (at(new, k), at(old, k));
        if !same_instant(n.as_ref(), o.as_ref()) {
            causes.push(immutable(&format!("metadata.{k}"), &go_time(n.as_ref())));
        }
    }
    let grace = |obj: &Value| at(obj, "deletionGracePeriodSeconds").filter(|v| !v.is_null());
    if grace(new) != grace(old) {
        let shown = grace(new).map_or("null".to_string(), |v| v.to_string());
        causes.push(immutable("metadata.deletionGracePeriodSeconds", &shown));
    }
    causes
}

fn immutable(field: &str, shown: &str) -> Cause {
    Cause {
        reason: "FieldValueInvalid".into(),
        message: format!("Invalid value: {shown}: field is immutable"),
        field: field.into(),
    }
}

fn finalizers(obj: &Value) -> Vec<String> {
    let meta = obj.get("metadata").unwrap_or(&Value::Null);
    super::json_read::strs(meta, "finalizers")
        .into_iter()
        .map(str::to_string)
        .collect()
}

/// A list of strings as Go's `%#v` prints a `[]string`.
pub fn go_string_slice(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

/// Whether two timestamps (RFC 3339 text, or absent) name the same instant, as upstream's
/// semantic equality compares `metav1.Time`.
fn same_instant(a: Option<&Value>, b: Option<&Value>) -> bool {
    let parse = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(|s| chrono::DateTime::parse_from_rfc3339(s).map_err(|_| s.to_string()))
    };
    match (parse(a), parse(b)) {
        (Some(Ok(x)), Some(Ok(y))) => x == y,
        (x, y) => x == y,
    }
}

/// A timestamp as upstream prints a `metav1.Time` in a field error (Go's `Time.String`, on a
/// server whose local zone is UTC); `null` when absent.
fn go_time(v: Option<&Value>) -> String {
    let Some(s) = v.and_then(Value::as_str).filter(|s| !s.is_empty()) else {
        return "null".into();
    };
    match chrono::DateTime::parse_from_rfc3339(s) {
        Ok(t) => {
            let t = t.with_timezone(&chrono::Utc);
            let mut out = t.format("%Y-%m-%d %H:%M:%S").to_string();
            let nanos = t.timestamp_subsec_nanos();
            if nanos != 0 {
                let frac = format!("{nanos:09}");
                out.push('.');
                out.push_str(frac.trim_end_matches('0'));
            }
            out.push_str(" +0000 UTC");
            out
        }
        Err(_) => go_quote(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_follow_their_kinds_rule() {
        assert!(name_errors(NameRule::Subdomain, "nginx", false).is_empty());
        assert!(name_errors(NameRule::Subdomain, "a.b-c", false).is_empty());
        assert_eq!(
            name_errors(NameRule::Subdomain, "Bad_Name", false),
            vec![SUBDOMAIN_MSG]
        );
        assert!(!name_errors(NameRule::Label, "a.b", false).is_empty());
        assert!(!name_errors(NameRule::Label1035, "1abc", false).is_empty());
        assert!(name_errors(NameRule::Label1035, "abc-1", false).is_empty());
        assert!(name_errors(NameRule::Subdomain, "web-", true).is_empty());
        assert_eq!(
            name_errors(NameRule::PathSegment, "a/b", false),
            vec!["may not contain '/'"]
        );
        assert!(name_errors(NameRule::PathSegment, "system:admin", false).is_empty());
    }

    #[test]
    fn labels_and_annotations_are_checked_as_upstream() {
        let obj = json!({"metadata": {
            "name": "ok",
            "labels": {"good/key": "v", "bad key": "v", "k": "-bad"},
            "annotations": {"a": "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT)},
        }});
        let causes = validate(&obj, NameRule::Subdomain);
        let fields: Vec<(&str, &str)> = causes
            .iter()
            .map(|c| (c.field.as_str(), c.reason.as_str()))
            .collect();
        assert_eq!(
            fields,
            vec![
                ("metadata.labels", "FieldValueInvalid"),
                ("metadata.labels", "FieldValueInvalid"),
                ("metadata.annotations", "FieldValueTooLong"),
            ]
        );
        assert_eq!(
            causes[0].message,
            format!("Invalid value: \"bad key\": {QUALIFIED_NAME_MSG}")
        );
    }

    fn meta(m: Value) -> Value {
        json!({ "metadata": m })
    }

    #[test]
    fn server_owned_metadata_may_not_change_on_update() {
        let old = meta(json!({"name": "a", "namespace": "ns", "uid": "u1",
            "creationTimestamp": "2026-01-02T03:04:05Z", "generation": 2}));
        assert!(validate_update(&old, &old).is_empty());
        let new = meta(json!({"name": "b", "namespace": "ns", "uid": "u2",
            "creationTimestamp": "2026-01-02T03:04:05Z", "generation": 1,
            "deletionTimestamp": "2026-01-02T03:04:06.5Z", "deletionGracePeriodSeconds": 30}));
        let causes = validate_update(&new, &old);
        let got: Vec<(&str, &str)> = causes
            .iter()
            .map(|c| (c.field.as_str(), c.message.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "metadata.generation",
                    "Invalid value: 1: must not be decremented"
                ),
                ("metadata.name", "Invalid value: \"b\": field is immutable"),
                ("metadata.uid", "Invalid value: \"u2\": field is immutable"),
                (
                    "metadata.deletionTimestamp",
                    "Invalid value: 2026-01-02 03:04:06.5 +0000 UTC: field is immutable"
                ),
                (
                    "metadata.deletionGracePeriodSeconds",
                    "Invalid value: 30: field is immutable"
                ),
            ]
        );
        assert!(causes.iter().all(|c| c.reason == "FieldValueInvalid"));
    }

    #[test]
    fn an_object_being_deleted_takes_no_new_finalizers() {
        let old = meta(
            json!({"name": "a", "deletionTimestamp": "2026-01-02T03:04:05Z",
            "finalizers": ["x/keep"]}),
        );
        let new = meta(
            json!({"name": "a", "deletionTimestamp": "2026-01-02T03:04:05+00:00",
            "finalizers": ["x/keep", "x/b", "x/a"]}),
        );
        let causes = validate_update(&new, &old);
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "metadata.finalizers");
        assert_eq!(causes[0].reason, "FieldValueForbidden");
        assert_eq!(
            causes[0].message,
            "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"x/a\", \"x/b\"}"
        );
        // Removing finalizers is how deletion proceeds.
        let fewer = meta(json!({"name": "a", "deletionTimestamp": "2026-01-02T03:04:05Z"}));
        assert!(validate_update(&fewer, &old).is_empty());
    }
}
