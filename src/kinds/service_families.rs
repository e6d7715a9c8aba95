//! A Service's cluster-IP fields — `clusterIP`, `clusterIPs`, `ipFamilies`, `ipFamilyPolicy` —
//! as upstream settles and checks them: the stand-alone rules of validation
//! (`ValidateServiceClusterIPsRelatedFields`), the dual-stack upgrade/downgrade rules of an
//! update, and the defaulting the REST storage does before allocating (`initIPFamilyFields`),
//! which depends on the families the cluster serves (`--service-cluster-ip-range`).

use std::net::IpAddr;

use serde_json::{Map, Value, json};

use super::field::{duplicate, forbidden, invalid, not_supported, required};
use crate::api::status::Cause;

pub const IPV4: &str = "IPv4";
pub const IPV6: &str = "IPv6";
const FAMILIES: &[&str] = &[IPV4, IPV6];
const POLICIES: &[&str] = &["PreferDualStack", "RequireDualStack", "SingleStack"];
const SINGLE: &str = "SingleStack";
const PREFER_DUAL: &str = "PreferDualStack";
const REQUIRE_DUAL: &str = "RequireDualStack";
const IMMUTABLE: &str = "field is immutable";

/// The strings of a list field (missing or null: empty).
pub fn strings(spec: &Value, key: &str) -> Vec<String> {
    spec[key]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Sets a list field; an empty list removes it (Go's nil slice, omitted).
pub fn set_strings(spec: &mut Map<String, Value>, key: &str, list: &[String]) {
    if list.is_empty() {
        spec.remove(key);
    } else {
        spec.insert(key.into(), json!(list));
    }
}

fn text<'a>(spec: &'a Value, key: &str) -> &'a str {
    spec[key].as_str().unwrap_or("")
}

/// The Service's type, `ClusterIP` when unset.
pub fn service_type(spec: &Value) -> &str {
    match text(spec, "type") {
        "" => "ClusterIP",
        t => t,
    }
}

/// The family of an address, by its text (an IPv6 address has a colon).
pub fn family_of(ip: &str) -> &'static str {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V6(_)) => IPV6,
        Ok(IpAddr::V4(_)) => IPV4,
        Err(_) if ip.contains(':') => IPV6,
        Err(_) => IPV4,
    }
}

fn other_family(f: &str) -> &'static str {
    if f == IPV4 { IPV6 } else { IPV4 }
}

fn headless(spec: &Value) -> bool {
    strings(spec, "clusterIPs").first().map(String::as_str) == Some("None")
        || text(spec, "clusterIP") == "None"
}

fn selectorless(spec: &Value) -> bool {
    spec["selector"].as_object().is_none_or(Map::is_empty)
}

/// `ValidateServiceClusterIPsRelatedFields`: clusterIP and clusterIPs agree, families and the
/// policy are known values, addresses are addresses (one per family, at most two) and match
/// their families; ExternalName Services have none of these.
pub fn validate(spec: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let ips = strings(spec, "clusterIPs");
    let families = strings(spec, "ipFamilies");
    if service_type(spec) == "ExternalName" {
        if !ips.is_empty() {
            causes.push(forbidden(
                "spec.clusterIPs".into(),
                "may not be set for ExternalName services",
            ));
        }
        if !families.is_empty() {
            causes.push(forbidden(
                "spec.ipFamilies".into(),
                "may not be set for ExternalName services",
            ));
        }
        if !spec["ipFamilyPolicy"].is_null() {
            causes.push(forbidden(
                "spec.ipFamilyPolicy".into(),
                "may not be set for ExternalName services",
            ));
        }
        return causes;
    }
    let cluster_ip = text(spec, "clusterIP");
    if !cluster_ip.is_empty() {
        match ips.first() {
            None => causes.push(required("spec.clusterIPs".into())),
            Some(first) if first != cluster_ip => causes.push(invalid(
                "spec.clusterIPs".into(),
                &json!(ips),
                "first value must match `clusterIP`",
            )),
            _ => {}
        }
    } else if !ips.is_empty() {
        causes.push(invalid(
            "spec.clusterIPs".into(),
            &json!(ips),
            "must be empty when `clusterIP` is not specified",
        ));
    }
    for (i, f) in families.iter().enumerate() {
        let field = format!("spec.ipFamilies[{i}]");
        if !FAMILIES.contains(&f.as_str()) {
            causes.push(not_supported(field.clone(), &json!(f), FAMILIES));
        }
        if families[..i].contains(f) {
            causes.push(duplicate(field, &json!(f)));
        }
    }
    if let Some(p) = spec["ipFamilyPolicy"].as_str()
        && !POLICIES.contains(&p)
    {
        causes.push(not_supported(
            "spec.ipFamilyPolicy".into(),
            &json!(p),
            POLICIES,
        ));
    }
    let mut bad_ips = false;
    for (i, ip) in ips.iter().enumerate() {
        if i == 0 && ip == "None" {
            if ips.len() > 1 {
                bad_ips = true;
                causes.push(invalid(
                    "spec.clusterIPs".into(),
                    &json!(ips),
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        if ip.parse::<IpAddr>().is_err() {
            bad_ips = true;
            causes.push(invalid(
                format!("spec.clusterIPs[{i}]"),
                &json!(ip),
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            ));
        }
    }
    if ips.len() > 2 {
        causes.push(invalid(
            "spec.clusterIPs".into(),
            &json!(ips),
            "may only hold up to 2 values",
        ));
    }
    if bad_ips {
        return causes;
    }
    if ips.len() > 1 && (ips.len() != 2 || family_of(&ips[0]) == family_of(&ips[1])) {
        causes.push(invalid(
            "spec.clusterIPs".into(),
            &json!(ips),
            "may specify no more than one IP for each IP family",
        ));
    }
    if !headless(spec) {
        for (i, (ip, f)) in ips.iter().zip(&families).enumerate() {
            if f == IPV4 && family_of(ip) == IPV6 {
                causes.push(invalid(
                    format!("spec.clusterIPs[{i}]"),
                    &json!(ip),
                    &format!("expected an IPv4 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
            if f == IPV6 && family_of(ip) != IPV6 {
                causes.push(invalid(
                    format!("spec.clusterIPs[{i}]"),
                    &json!(ip),
                    &format!("expected an IPv6 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
        }
    }
    causes
}

/// The update rules of `validateUpgradeDowngradeClusterIPs` and `...IPFamilies`: the primary
/// address and family never change; a secondary one may be added (the policy then asks for
/// dual-stack) or released (the policy then says SingleStack). ExternalName on either side
/// lifts them.
pub fn validate_update(spec: &Value, old: &Value) -> Vec<Cause> {
    if service_type(spec) == "ExternalName" || service_type(old) == "ExternalName" {
        return Vec::new();
    }
    let policy = spec["ipFamilyPolicy"].as_str();
    let mut causes = Vec::new();
    for (key, noun) in [("clusterIPs", "clusterIP"), ("ipFamilies", "ipFamily")] {
        let new = strings(spec, key);
        let was = strings(old, key);
        let field = |i: usize| format!("spec.{key}[{i}]");
        if new.len() == was.len() {
            for (i, v) in was.iter().enumerate() {
                if *v != new[i] {
                    causes.push(invalid(field(i), &json!(new), IMMUTABLE));
                }
            }
            continue;
        }
        let primary_changed = !was.is_empty() && new.first().is_some_and(|n| *n != was[0]);
        if was.len() > new.len() {
            if new.is_empty() || primary_changed {
                causes.push(invalid(field(0), &json!(new), IMMUTABLE));
            }
            if new.len() == 1 && policy != Some(SINGLE) {
                causes.push(invalid(
                    field(0),
                    &json!(new),
                    &format!(
                        "`ipFamilyPolicy` must be set to 'SingleStack' when releasing the secondary {noun}"
                    ),
                ));
            }
        } else {
            if primary_changed {
                causes.push(invalid(field(0), &json!(new), IMMUTABLE));
            }
            if new.len() == 2 && matches!(policy, None | Some(SINGLE)) {
                causes.push(invalid(
                    field(0),
                    &json!(new),
                    &format!(
                        "`ipFamilyPolicy` must be set to 'RequireDualStack' or 'PreferDualStack' when adding a secondary {noun}"
                    ),
                ));
            }
        }
    }
    causes
}

/// A PreferDualStack Service whose addresses and families are as they were: left as it is,
/// whatever the cluster's families are now (upstream's `isMatchingPreferDualStackClusterIPFields`).
pub fn unchanged_prefer_dual_stack(spec: &Value, old: Option<&Value>) -> bool {
    let Some(old) = old else {
        return false;
    };
    spec["ipFamilyPolicy"].as_str() == Some(PREFER_DUAL)
        && service_type(spec) == service_type(old)
        && service_type(spec) != "ExternalName"
        && matches!(old["ipFamilyPolicy"].as_str(), None | Some(PREFER_DUAL))
        && strings(spec, "clusterIPs") == strings(old, "clusterIPs")
        && strings(spec, "ipFamilies") == strings(old, "ipFamilies")
}

fn policy_invalid(spec: &Value, why: &str) -> Cause {
    invalid(
        "spec.ipFamilyPolicy".into(),
        &spec["ipFamilyPolicy"].clone(),
        why,
    )
}

/// Settles `ipFamilyPolicy` and `ipFamilies` before allocation, as upstream's
/// `initIPFamilyFields`: the policy from the old object (else SingleStack, RequireDualStack
/// for a selectorless headless Service), families from the addresses given, then the cluster's
/// first family, and the other one too for a dual-stack policy on a dual-stack cluster.
/// `configured` is the cluster's families, primary first.
pub fn init(svc: &mut Value, old: Option<&Value>, configured: &[&str]) -> Result<(), Vec<Cause>> {
    let old_spec = old.map(|o| &o["spec"]);
    let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    let view = Value::Object(std::mem::take(spec));
    let result = init_spec(view, old_spec, configured);
    let (settled, outcome) = match result {
        Ok(v) => (v, Ok(())),
        Err((v, causes)) => (v, Err(causes)),
    };
    if let Value::Object(m) = settled {
        *spec = m;
    }
    outcome
}

type Settled = Result<Value, (Value, Vec<Cause>)>;

fn init_spec(mut spec: Value, old: Option<&Value>, configured: &[&str]) -> Settled {
    if service_type(&spec) == "ExternalName" || unchanged_prefer_dual_stack(&spec, old) {
        return Ok(spec);
    }
    if spec["ipFamilyPolicy"].as_str().is_none() {
        let policy = match old.and_then(|o| o["ipFamilyPolicy"].as_str()) {
            Some(p) => p.to_owned(),
            None if text(&spec, "clusterIP") == "None" && selectorless(&spec) => {
                REQUIRE_DUAL.into()
            }
            None => SINGLE.into(),
        };
        spec["ipFamilyPolicy"] = json!(policy);
    }
    let causes = validate(&spec);
    if !causes.is_empty() {
        return Err((spec, causes));
    }
    let policy = text(&spec, "ipFamilyPolicy").to_owned();
    let mut ips = strings(&spec, "clusterIPs");
    let mut families = strings(&spec, "ipFamilies");
    let mut causes = Vec::new();
    if let Some(old) = old {
        let same_ips = ips == strings(old, "clusterIPs");
        let same_families = families == strings(old, "ipFamilies");
        if policy == SINGLE {
            // Keeping the fields and asking for one stack: the secondary goes.
            if same_ips && ips.len() > 1 {
                ips.truncate(1);
            }
            if same_families && families.len() > 1 {
                families.truncate(1);
            }
        } else {
            if !ips.is_empty() && ips.len() < strings(old, "clusterIPs").len() {
                causes.push(policy_invalid(
                    &spec,
                    "must be 'SingleStack' to release the secondary cluster IP",
                ));
            }
            if !families.is_empty() && families.len() < strings(old, "ipFamilies").len() {
                causes.push(policy_invalid(
                    &spec,
                    "must be 'SingleStack' to release the secondary IP family",
                ));
            }
        }
    }
    if policy == SINGLE {
        if ips.len() == 2 {
            causes.push(policy_invalid(
                &spec,
                "must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified",
            ));
        }
        if families.len() == 2 {
            causes.push(policy_invalid(
                &spec,
                "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified",
            ));
        }
    }
    for (i, ip) in ips.iter().enumerate() {
        if ip == "None" {
            break;
        }
        if i >= families.len() {
            let fam = family_of(ip);
            if configured.contains(&fam) {
                families.push(fam.to_owned());
            } else {
                causes.push(invalid(
                    format!("spec.clusterIPs[{i}]"),
                    &json!(ips),
                    &format!("{fam} is not configured on this cluster"),
                ));
            }
        }
    }
    let default = configured.first().copied().unwrap_or(IPV4);
    let finish = |mut spec: Value, ips: &[String], families: &[String], causes: Vec<Cause>| {
        if let Some(m) = spec.as_object_mut() {
            set_strings(m, "clusterIPs", ips);
            set_strings(m, "ipFamilies", families);
        }
        match causes.is_empty() {
            true => Ok(spec),
            false => Err((spec, causes)),
        }
    };
    if !causes.is_empty() {
        return finish(spec, &ips, &families, causes);
    }
    if text(&spec, "clusterIP") == "None" && selectorless(&spec) {
        if families.is_empty() {
            families.push(default.to_owned());
        }
        if families.len() < 2 && policy != SINGLE {
            families.push(other_family(&families[0]).to_owned());
        }
        return finish(spec, &ips, &families, causes);
    }
    if policy == REQUIRE_DUAL && configured.len() < 2 {
        causes.push(policy_invalid(
            &spec,
            "this cluster is not configured for dual-stack services",
        ));
    }
    for (i, f) in families.iter().enumerate() {
        if !configured.contains(&f.as_str()) {
            causes.push(invalid(
                format!("spec.ipFamilies[{i}]"),
                &json!(f),
                "not configured on this cluster",
            ));
        }
    }
    if !causes.is_empty() {
        return finish(spec, &ips, &families, causes);
    }
    if families.is_empty() {
        families.push(default.to_owned());
    }
    if policy != SINGLE && families.len() == 1 && configured.len() == 2 {
        families.push(other_family(&families[0]).to_owned());
    }
    finish(spec, &ips, &families, causes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settled(spec: Value, old: Option<Value>, configured: &[&str]) -> Result<Value, Vec<Cause>> {
        let mut svc = json!({"spec": spec});
        let old = old.map(|o| json!({"spec": o}));
        init(&mut svc, old.as_ref(), configured).map(|()| svc["spec"].take())
    }

    #[test]
    fn families_default_from_the_cluster_and_the_policy() {
        let single = settled(json!({"selector": {"a": "b"}}), None, &[IPV6, IPV4]).unwrap();
        assert_eq!(single["ipFamilyPolicy"], "SingleStack");
        assert_eq!(single["ipFamilies"], json!(["IPv6"]));
        let prefer = settled(
            json!({"ipFamilyPolicy": "PreferDualStack"}),
            None,
            &[IPV4, IPV6],
        )
        .unwrap();
        assert_eq!(prefer["ipFamilies"], json!(["IPv4", "IPv6"]));
        let prefer_single =
            settled(json!({"ipFamilyPolicy": "PreferDualStack"}), None, &[IPV4]).unwrap();
        assert_eq!(prefer_single["ipFamilies"], json!(["IPv4"]));
        let headless = settled(
            json!({"clusterIP": "None", "clusterIPs": ["None"]}),
            None,
            &[IPV4],
        )
        .unwrap();
        assert_eq!(headless["ipFamilyPolicy"], "RequireDualStack");
        assert_eq!(headless["ipFamilies"], json!(["IPv4", "IPv6"]));
        // A requested address names its family.
        let v6 = settled(
            json!({"clusterIP": "fd00::5", "clusterIPs": ["fd00::5"]}),
            None,
            &[IPV4, IPV6],
        )
        .unwrap();
        assert_eq!(v6["ipFamilies"], json!(["IPv6"]));
    }

    #[test]
    fn dual_stack_demands_are_refused_as_upstream() {
        let e = settled(json!({"ipFamilyPolicy": "RequireDualStack"}), None, &[IPV4]).unwrap_err();
        assert_eq!(e[0].field, "spec.ipFamilyPolicy");
        assert_eq!(
            e[0].message,
            "Invalid value: \"RequireDualStack\": this cluster is not configured for dual-stack services"
        );
        let e = settled(json!({"ipFamilies": ["IPv6"]}), None, &[IPV4]).unwrap_err();
        assert_eq!(e[0].field, "spec.ipFamilies[0]");
        let e = settled(
            json!({"ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4", "IPv6"]}),
            None,
            &[IPV4, IPV6],
        )
        .unwrap_err();
        assert!(
            e[0].message
                .contains("when multiple IP families are specified")
        );
        let e = settled(
            json!({"clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1", "10.0.0.2"], "ipFamilyPolicy": "RequireDualStack"}),
            None,
            &[IPV4, IPV6],
        )
        .unwrap_err();
        assert!(
            e[0].message
                .contains("no more than one IP for each IP family")
        );
    }

    #[test]
    fn an_update_keeps_the_policy_and_single_stack_drops_the_secondary() {
        let old = json!({"ipFamilyPolicy": "RequireDualStack", "clusterIP": "10.0.0.9",
                         "clusterIPs": ["10.0.0.9", "fd00::9"], "ipFamilies": ["IPv4", "IPv6"]});
        let mut kept = old.clone();
        kept.as_object_mut().unwrap().remove("ipFamilyPolicy");
        let kept = settled(kept, Some(old.clone()), &[IPV4, IPV6]).unwrap();
        assert_eq!(kept["ipFamilyPolicy"], "RequireDualStack");
        assert_eq!(kept["clusterIPs"], old["clusterIPs"]);
        let mut down = old.clone();
        down["ipFamilyPolicy"] = json!("SingleStack");
        let down = settled(down, Some(old.clone()), &[IPV4, IPV6]).unwrap();
        assert_eq!(down["clusterIPs"], json!(["10.0.0.9"]));
        assert_eq!(down["ipFamilies"], json!(["IPv4"]));
        let mut cut = old.clone();
        cut["clusterIPs"] = json!(["10.0.0.9"]);
        let e = settled(cut, Some(old), &[IPV4, IPV6]).unwrap_err();
        assert_eq!(
            e[0].message,
            "Invalid value: \"RequireDualStack\": must be 'SingleStack' to release the secondary cluster IP"
        );
    }

    #[test]
    fn primary_addresses_and_families_are_immutable() {
        let old = json!({"clusterIP": "10.0.0.9", "clusterIPs": ["10.0.0.9"], "ipFamilies": ["IPv4"],
                         "ipFamilyPolicy": "SingleStack"});
        let mut new = old.clone();
        new["clusterIPs"] = json!(["10.0.0.8"]);
        let e = validate_update(&new, &old);
        assert_eq!(e[0].field, "spec.clusterIPs[0]");
        assert_eq!(
            e[0].message,
            "Invalid value: [\"10.0.0.8\"]: field is immutable"
        );
        let mut up = old.clone();
        up["clusterIPs"] = json!(["10.0.0.9", "fd00::1"]);
        up["ipFamilies"] = json!(["IPv4", "IPv6"]);
        let e = validate_update(&up, &old);
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].message.contains("when adding a secondary clusterIP"));
        up["ipFamilyPolicy"] = json!("PreferDualStack");
        assert!(validate_update(&up, &old).is_empty());
        let mut external = old.clone();
        external["type"] = json!("ExternalName");
        external["clusterIPs"] = json!([]);
        assert!(validate_update(&external, &old).is_empty());
    }
}
