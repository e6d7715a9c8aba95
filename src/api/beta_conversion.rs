//! Conversion between a served beta or alpha version and the version upstream stores the
//! resource in. Most beta versions have their storage version's fields (checked against the
//! descriptor set: the conversion is a rename of apiVersion); resource.k8s.io v1beta1 differs
//! from v1 in two places, converted as upstream's `pkg/apis/resource/v1beta1/conversion.go`:
//! a device request's fields sit under `exactly` in v1, and a slice's device fields under
//! `basic` in v1beta1.

use serde_json::{Map, Value};

/// The kinds whose beta/alpha versions are served next to another stored version, by group.
const CONVERTIBLE: &[(&str, &[&str])] = &[
    (
        "admissionregistration.k8s.io",
        &["MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding"],
    ),
    ("certificates.k8s.io", &["ClusterTrustBundle"]),
    ("coordination.k8s.io", &["LeaseCandidate"]),
    ("networking.k8s.io", &["IPAddress", "ServiceCIDR"]),
    (
        "resource.k8s.io",
        &[
            "DeviceClass",
            "ResourceClaim",
            "ResourceClaimTemplate",
            "ResourceSlice",
            "DeviceTaintRule",
        ],
    ),
    ("storage.k8s.io", &["VolumeAttributesClass"]),
];

fn group_of(api_version: &str) -> &str {
    api_version.split_once('/').map_or("", |(g, _)| g)
}

/// Whether `from` → `to` (apiVersion, kind) is one of these conversions.
pub fn supported(from: (&str, &str), to: (&str, &str)) -> bool {
    let group = group_of(from.0);
    from.1 == to.1
        && from.0 != to.0
        && group == group_of(to.0)
        && CONVERTIBLE
            .iter()
            .any(|(g, kinds)| *g == group && kinds.contains(&from.1))
}

/// Moves the fields that differ between the two versions; apiVersion is the caller's.
pub fn convert_fields(obj: &mut Map<String, Value>, from: &str, to: &str) {
    let kind = obj
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    convert_kind_fields(obj, &kind, from, to);
}

/// `convert_fields` for an object of `kind` (which may lack its `kind` field).
pub fn convert_kind_fields(obj: &mut Map<String, Value>, kind: &str, from: &str, to: &str) {
    match (from, to) {
        ("resource.k8s.io/v1beta1", _) => resource_v1beta1_to_v1(obj, kind),
        (_, "resource.k8s.io/v1beta1") => resource_v1_to_v1beta1(obj, kind),
        _ => {}
    }
}

/// Whether the two versions of `kind` differ in more than their apiVersion.
pub fn fields_differ(kind: &str, from: &str, to: &str) -> bool {
    from != to
        && (from == "resource.k8s.io/v1beta1" || to == "resource.k8s.io/v1beta1")
        && matches!(
            kind,
            "ResourceClaim" | "ResourceClaimTemplate" | "ResourceSlice"
        )
}

/// A v1beta1 device request's own fields: v1's `exactly`.
const EXACT_REQUEST_FIELDS: &[&str] = &[
    "deviceClassName",
    "selectors",
    "allocationMode",
    "count",
    "adminAccess",
    "tolerations",
    "capacity",
];

/// The device requests of a claim (`spec`) or a claim template (`spec.spec`).
fn requests_mut(obj: &mut Map<String, Value>) -> Option<&mut Vec<Value>> {
    let spec = obj.get_mut("spec")?.as_object_mut()?;
    let spec = if spec.contains_key("devices") {
        spec
    } else {
        spec.get_mut("spec")?.as_object_mut()?
    };
    spec.get_mut("devices")?.get_mut("requests")?.as_array_mut()
}

fn slice_devices_mut(obj: &mut Map<String, Value>) -> Option<&mut Vec<Value>> {
    obj.get_mut("spec")?.get_mut("devices")?.as_array_mut()
}

fn resource_v1beta1_to_v1(obj: &mut Map<String, Value>, kind: &str) {
    match kind {
        "ResourceClaim" | "ResourceClaimTemplate" => {
            for r in requests_mut(obj).into_iter().flatten() {
                let Some(r) = r.as_object_mut() else { continue };
                let mut exactly = Map::new();
                for f in EXACT_REQUEST_FIELDS {
                    if let Some(v) = r.remove(*f) {
                        exactly.insert((*f).into(), v);
                    }
                }
                // A request with subrequests has no device class of its own.
                let prioritized = r
                    .get("firstAvailable")
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty());
                if !prioritized {
                    r.insert("exactly".into(), Value::Object(exactly));
                }
            }
        }
        "ResourceSlice" => {
            for d in slice_devices_mut(obj).into_iter().flatten() {
                let Some(d) = d.as_object_mut() else { continue };
                if let Some(Value::Object(basic)) = d.remove("basic") {
                    for (k, v) in basic {
                        d.entry(k).or_insert(v);
                    }
                }
            }
        }
        _ => {}
    }
}

fn resource_v1_to_v1beta1(obj: &mut Map<String, Value>, kind: &str) {
    match kind {
        "ResourceClaim" | "ResourceClaimTemplate" => {
            for r in requests_mut(obj).into_iter().flatten() {
                let Some(r) = r.as_object_mut() else { continue };
                if let Some(Value::Object(exactly)) = r.remove("exactly") {
                    for (k, v) in exactly {
                        r.entry(k).or_insert(v);
                    }
                }
            }
        }
        "ResourceSlice" => {
            for d in slice_devices_mut(obj).into_iter().flatten() {
                let Some(d) = d.as_object_mut() else { continue };
                let name = d.remove("name");
                let basic = std::mem::take(d);
                if let Some(n) = name {
                    d.insert("name".into(), n);
                }
                d.insert("basic".into(), Value::Object(basic));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round(v: Value, from: &str, to: &str) -> Value {
        let mut o = v.as_object().unwrap().clone();
        convert_fields(&mut o, from, to);
        Value::Object(o)
    }

    #[test]
    fn v1beta1_requests_and_devices_move_as_upstream_converts_them() {
        let beta = json!({"kind": "ResourceClaim", "spec": {"devices": {"requests": [
            {"name": "gpu", "deviceClassName": "gpu.example.com", "allocationMode": "ExactCount", "count": 2},
            {"name": "any", "firstAvailable": [{"name": "a", "deviceClassName": "x"}]}
        ]}}});
        let v1 = round(
            beta.clone(),
            "resource.k8s.io/v1beta1",
            "resource.k8s.io/v1",
        );
        assert_eq!(
            v1["spec"]["devices"]["requests"][0],
            json!({"name": "gpu", "exactly": {"deviceClassName": "gpu.example.com", "allocationMode": "ExactCount", "count": 2}})
        );
        assert!(
            v1["spec"]["devices"]["requests"][1]
                .get("exactly")
                .is_none()
        );
        assert_eq!(
            round(v1, "resource.k8s.io/v1", "resource.k8s.io/v1beta1"),
            beta
        );
        let slice = json!({"kind": "ResourceSlice", "spec": {"devices": [
            {"name": "d0", "basic": {"attributes": {"model": {"string": "a"}}}}
        ]}});
        let v1 = round(
            slice.clone(),
            "resource.k8s.io/v1beta1",
            "resource.k8s.io/v1",
        );
        assert_eq!(
            v1["spec"]["devices"][0],
            json!({"name": "d0", "attributes": {"model": {"string": "a"}}})
        );
        assert_eq!(
            round(v1, "resource.k8s.io/v1", "resource.k8s.io/v1beta1"),
            slice
        );
        assert!(supported(
            ("networking.k8s.io/v1beta1", "IPAddress"),
            ("networking.k8s.io/v1", "IPAddress")
        ));
        assert!(!supported(
            ("networking.k8s.io/v1beta1", "IPAddress"),
            ("networking.k8s.io/v1beta1", "IPAddress")
        ));
        assert!(!supported(
            ("apps/v1", "Deployment"),
            ("apps/v1beta1", "Deployment")
        ));
    }
}
