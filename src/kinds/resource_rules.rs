//! Upstream's Dynamic Resource Allocation validation (`pkg/apis/resource/validation`), the
//! part kapi checks so far: ResourceSlices (driver, pool, node selection, device names) and
//! the device requests of ResourceClaims and their templates.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::NameRule;
use super::field::{duplicate, invalid, not_supported, required, required_why, too_long};
use super::json_read::{list, str_at};
use super::meta::{name_errors, subdomain_errors};
use crate::api::status::Cause;

fn subdomain(v: &str, field: &str, causes: &mut Vec<Cause>) {
    for msg in subdomain_errors(v) {
        causes.push(invalid(field.to_string(), &json!(v), msg));
    }
}

fn label(v: &str, field: &str, causes: &mut Vec<Cause>) {
    for msg in name_errors(NameRule::Label, v, false) {
        causes.push(invalid(field.to_string(), &json!(v), &msg));
    }
}

/// Named items (devices, requests): each a DNS label, no name twice.
fn names(items: &[Value], f: &str, causes: &mut Vec<Cause>) {
    let mut seen = HashSet::new();
    for (i, d) in items.iter().enumerate() {
        let name = str_at(d, "name");
        if !seen.insert(name) {
            causes.push(duplicate(format!("{f}[{i}]"), &json!(name)));
        }
    }
}

pub fn resource_slice(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let empty = json!({});
    let spec = obj.get("spec").unwrap_or(&empty);
    let driver = str_at(spec, "driver");
    if driver.is_empty() {
        causes.push(required("spec.driver".into()));
    } else {
        if driver.len() > 63 {
            causes.push(too_long("spec.driver".into(), 63));
        }
        subdomain(driver, "spec.driver", &mut causes);
    }
    let pool = spec.get("pool").unwrap_or(&empty);
    let pool_name = str_at(pool, "name");
    if pool_name.is_empty() {
        causes.push(required("spec.pool.name".into()));
    } else {
        if pool_name.len() > 253 {
            causes.push(too_long("spec.pool.name".into(), 253));
        }
        for part in pool_name.split('/') {
            subdomain(part, "spec.pool.name", &mut causes);
        }
    }
    let n = |k: &str| pool.get(k).and_then(Value::as_i64).unwrap_or(0);
    if n("generation") < 0 {
        let msg = "must be greater than or equal to zero";
        causes.push(invalid(
            "spec.pool.generation".into(),
            &json!(n("generation")),
            msg,
        ));
    }
    if n("resourceSliceCount") <= 0 {
        let v = json!(n("resourceSliceCount"));
        causes.push(invalid(
            "spec.pool.resourceSliceCount".into(),
            &v,
            "must be greater than zero",
        ));
    }
    let chosen = [
        "nodeName",
        "nodeSelector",
        "allNodes",
        "perDeviceNodeSelection",
    ]
    .iter()
    .filter(|k| match spec.get(**k) {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    })
    .count();
    let one = "exactly one of `nodeName`, `nodeSelector`, `allNodes`, `perDeviceNodeSelection` is required";
    match chosen {
        0 => causes.push(required_why("spec".into(), one)),
        1 => {}
        _ => causes.push(invalid(
            "spec".into(),
            &json!("{`nodeName`, `nodeSelector`, `allNodes`, `perDeviceNodeSelection`}"),
            one,
        )),
    }
    if let Some(node) = spec
        .get("nodeName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        subdomain(node, "spec.nodeName", &mut causes);
    }
    let devices = list(spec, "devices");
    for (i, d) in devices.iter().enumerate() {
        label(
            str_at(d, "name"),
            &format!("spec.devices[{i}].name"),
            &mut causes,
        );
    }
    names(devices, "spec.devices", &mut causes);
    causes
}

/// A claim spec's device requests at `at` (`spec` or `spec.spec`).
pub fn claim_spec(spec: Option<&Value>, at: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    let empty = json!({});
    let devices = spec.and_then(|s| s.get("devices")).unwrap_or(&empty);
    let requests = list(devices, "requests");
    let f = format!("{at}.devices.requests");
    for (i, r) in requests.iter().enumerate() {
        let rf = format!("{f}[{i}]");
        label(str_at(r, "name"), &format!("{rf}.name"), &mut causes);
        let exactly = r.get("exactly").filter(|v| !v.is_null());
        let first = r
            .get("firstAvailable")
            .and_then(Value::as_array)
            .filter(|l| !l.is_empty());
        match (exactly, first) {
            (Some(e), None) => exact_request(e, &format!("{rf}.exactly"), &mut causes),
            (None, Some(subs)) => {
                for (j, s) in subs.iter().enumerate() {
                    let sf = format!("{rf}.firstAvailable[{j}]");
                    label(str_at(s, "name"), &format!("{sf}.name"), &mut causes);
                    exact_request(s, &sf, &mut causes);
                }
                names(subs, &format!("{rf}.firstAvailable"), &mut causes);
            }
            _ => causes.push(required_why(
                rf,
                "exactly one of `exactly` or `firstAvailable` is required",
            )),
        }
    }
    names(requests, &f, &mut causes);
    causes
}

fn exact_request(e: &Value, f: &str, causes: &mut Vec<Cause>) {
    let class = str_at(e, "deviceClassName");
    let cf = format!("{f}.deviceClassName");
    if class.is_empty() {
        causes.push(required(cf));
    } else {
        subdomain(class, &cf, causes);
    }
    match str_at(e, "allocationMode") {
        "ExactCount" => {
            let count = e.get("count").and_then(Value::as_i64).unwrap_or(0);
            if count <= 0 {
                let msg = "must be greater than zero";
                causes.push(invalid(format!("{f}.count"), &json!(count), msg));
            }
        }
        "All" | "" => {}
        m => causes.push(not_supported(
            format!("{f}.allocationMode"),
            &json!(m),
            &["All", "ExactCount"],
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::cause_fields;

    #[test]
    fn a_slice_names_its_driver_pool_and_nodes() {
        let s = json!({"spec": {"driver": "", "pool": {"name": "p", "resourceSliceCount": 0},
            "devices": [{"name": "d"}, {"name": "d"}]}});
        let causes = resource_slice(&s);
        assert_eq!(
            causes[1].message,
            "Invalid value: 0: must be greater than zero"
        );
        assert_eq!(
            cause_fields(causes),
            [
                ("spec.driver", "FieldValueRequired"),
                ("spec.pool.resourceSliceCount", "FieldValueInvalid"),
                ("spec", "FieldValueRequired"),
                ("spec.devices[1]", "FieldValueDuplicate"),
            ]
            .map(|(f, r)| (f.to_string(), r.to_string()))
        );
    }

    #[test]
    fn a_request_asks_exactly_or_for_the_first_available() {
        let spec = json!({"devices": {"requests": [{"name": "r"},
            {"name": "r", "exactly": {"deviceClassName": ""}}]}});
        assert_eq!(
            cause_fields(claim_spec(Some(&spec), "spec")),
            [
                ("spec.devices.requests[0]", "FieldValueRequired"),
                (
                    "spec.devices.requests[1].exactly.deviceClassName",
                    "FieldValueRequired"
                ),
                ("spec.devices.requests[1]", "FieldValueDuplicate"),
            ]
            .map(|(f, r)| (f.to_string(), r.to_string()))
        );
    }
}
