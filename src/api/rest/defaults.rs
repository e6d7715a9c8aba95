//! What the server fills in on create: generated names, timestamps, and the per-kind
//! defaults upstream's strategies set (pods, namespaces), and the name check.

use super::*;

/// The defaults upstream's pod defaulting and strategy set on a new pod (the common ones;
/// full defaulting of every kind is the write-path issue's).
pub(super) fn pod_defaults(obj: &mut Value) {
    let Some(o) = obj.as_object_mut() else { return };
    let spec = o.entry("spec").or_insert_with(|| json!({}));
    if let Some(s) = spec.as_object_mut() {
        s.entry("restartPolicy").or_insert_with(|| json!("Always"));
        s.entry("terminationGracePeriodSeconds")
            .or_insert_with(|| json!(30));
        s.entry("dnsPolicy")
            .or_insert_with(|| json!("ClusterFirst"));
        s.entry("securityContext").or_insert_with(|| json!({}));
        s.entry("schedulerName")
            .or_insert_with(|| json!("default-scheduler"));
        s.entry("enableServiceLinks").or_insert_with(|| json!(true));
        s.entry("preemptionPolicy")
            .or_insert_with(|| json!("PreemptLowerPriority"));
        s.entry("priority").or_insert_with(|| json!(0));
        for list in ["containers", "initContainers"] {
            if let Some(cs) = s.get_mut(list).and_then(Value::as_array_mut) {
                for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                    let image = c
                        .get("image")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    let tag = image.rsplit('/').next().unwrap_or("");
                    let latest = !tag.contains(':') || tag.ends_with(":latest");
                    c.entry("imagePullPolicy")
                        .or_insert_with(|| json!(if latest { "Always" } else { "IfNotPresent" }));
                    c.entry("terminationMessagePath")
                        .or_insert_with(|| json!("/dev/termination-log"));
                    c.entry("terminationMessagePolicy")
                        .or_insert_with(|| json!("File"));
                    c.entry("resources").or_insert_with(|| json!({}));
                }
            }
        }
    }
    o.insert(
        "status".into(),
        json!({"phase": "Pending", "qosClass": "BestEffort"}),
    );
}

/// What upstream's namespace strategy sets on a new namespace.
pub(super) fn namespace_defaults(obj: &mut Value, name: &str) {
    if let Some(labels) = obj
        .pointer_mut("/metadata")
        .and_then(Value::as_object_mut)
        .map(|m| m.entry("labels").or_insert_with(|| json!({})))
        && let Some(l) = labels.as_object_mut()
    {
        l.insert("kubernetes.io/metadata.name".into(), json!(name));
    }
    if let Some(o) = obj.as_object_mut() {
        let spec = o.entry("spec").or_insert_with(|| json!({}));
        if let Some(s) = spec.as_object_mut() {
            s.entry("finalizers")
                .or_insert_with(|| json!(["kubernetes"]));
        }
        o.insert("status".into(), json!({"phase": "Active"}));
    }
}

/// Five characters from upstream's generateName alphabet (no vowels, no confusable digits).
pub(super) fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut seed = uuid::Uuid::new_v4().as_u128();
    (0..5)
        .map(|_| {
            let c = ALPHABET[(seed % ALPHABET.len() as u128) as usize] as char;
            seed /= ALPHABET.len() as u128;
            c
        })
        .collect()
}

pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mut out = Vec::new();
    kapi_codec::goscalar::format_time(secs, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Upstream's name check for most kinds: a DNS-1123 subdomain.
pub(super) fn invalid_name(name: &str) -> Option<String> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    let ends_ok = name
        .as_bytes()
        .first()
        .is_some_and(u8::is_ascii_alphanumeric)
        && name
            .as_bytes()
            .last()
            .is_some_and(u8::is_ascii_alphanumeric);
    if name.len() > 253 {
        return Some("must be no more than 253 characters".into());
    }
    if !ok_chars || !ends_ok {
        return Some("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(super) fn names_are_checked_as_dns_subdomains() {
        assert!(invalid_name("nginx").is_none());
        assert!(invalid_name("a.b-c").is_none());
        assert!(invalid_name("Bad_Name").is_some());
        assert!(invalid_name("-x").is_some());
        assert_eq!(random_suffix().len(), 5);
    }
}
