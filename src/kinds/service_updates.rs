//! What an update of a Service does to the fields the server allocated, before the allocators
//! see it: fields a type change leaves without meaning are wiped when the client did not
//! touch them (upstream's `dropTypeDependentFields`), and values a client left out are taken
//! from the old object (`patchAllocatedValues`, `normalizeClusterIPs` in the Service REST's
//! `beginUpdate`), so that a PUT of a manifest without them keeps what was allocated.

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use super::service_families::{service_type, set_strings, strings};

/// Whether a Service of this spec has cluster IPs (even "None" is a value): all but
/// ExternalName.
pub fn needs_cluster_ip(spec: &Value) -> bool {
    service_type(spec) != "ExternalName"
}

pub fn needs_node_ports(spec: &Value) -> bool {
    matches!(service_type(spec), "NodePort" | "LoadBalancer")
}

/// A LoadBalancer whose external traffic stays on the node gets a health-check node port.
pub fn needs_health_check_port(spec: &Value) -> bool {
    service_type(spec) == "LoadBalancer" && spec["externalTrafficPolicy"] == "Local"
}

fn externally_accessible(spec: &Value) -> bool {
    let ty = service_type(spec);
    ty == "LoadBalancer"
        || ty == "NodePort"
        || (ty == "ClusterIP"
            && spec["externalIPs"]
                .as_array()
                .is_some_and(|a| !a.is_empty()))
}

fn node_ports(spec: &Value) -> Vec<Value> {
    spec["ports"]
        .as_array()
        .map(|ps| ps.iter().map(|p| p["nodePort"].clone()).collect())
        .unwrap_or_default()
}

fn spec_mut(svc: &mut Value) -> Option<&mut Map<String, Value>> {
    svc.get_mut("spec").and_then(Value::as_object_mut)
}

/// `dropTypeDependentFields`: on a type change, what the new type does not use and the client
/// left as it was goes (cluster IPs, families and policy when leaving for ExternalName; node
/// ports, the health-check port, `allocateLoadBalancerNodePorts`, `loadBalancerClass` and
/// `externalTrafficPolicy` when the new type has no use for them).
pub fn drop_type_dependent_fields(svc: &mut Value, old: &Value) {
    let old = &old["spec"];
    let new = svc["spec"].clone();
    let Some(spec) = spec_mut(svc) else {
        return;
    };
    if needs_cluster_ip(old) && !needs_cluster_ip(&new) {
        if new["clusterIP"] == old["clusterIP"]
            && strings(&new, "clusterIPs") == strings(old, "clusterIPs")
        {
            spec.remove("clusterIP");
            spec.remove("clusterIPs");
        }
        if strings(&new, "ipFamilies") == strings(old, "ipFamilies") {
            spec.remove("ipFamilies");
        }
        if new["ipFamilyPolicy"] == old["ipFamilyPolicy"] {
            spec.remove("ipFamilyPolicy");
        }
    }
    if needs_node_ports(old) && !needs_node_ports(&new) && node_ports(&new) == node_ports(old) {
        for p in spec
            .get_mut("ports")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if let Some(p) = p.as_object_mut() {
                p.remove("nodePort");
            }
        }
    }
    if needs_health_check_port(old)
        && !needs_health_check_port(&new)
        && new["healthCheckNodePort"] == old["healthCheckNodePort"]
    {
        spec.remove("healthCheckNodePort");
    }
    if service_type(old) == "LoadBalancer" && service_type(&new) != "LoadBalancer" {
        let (a, b) = (
            &new["allocateLoadBalancerNodePorts"],
            &old["allocateLoadBalancerNodePorts"],
        );
        if !a.is_null() && a == b {
            spec.remove("allocateLoadBalancerNodePorts");
        }
        if new["loadBalancerClass"] == old["loadBalancerClass"] {
            spec.remove("loadBalancerClass");
        }
    }
    if externally_accessible(old)
        && !externally_accessible(&new)
        && new["externalTrafficPolicy"] == old["externalTrafficPolicy"]
    {
        spec.remove("externalTrafficPolicy");
    }
}

/// `patchAllocatedValues` and `normalizeClusterIPs`: addresses, node ports (by port name,
/// unless the new spec uses the number elsewhere) and the health-check port a client left out
/// are the old object's; `clusterIPs` follows a changed `clusterIP`.
pub fn keep_allocated_values(svc: &mut Value, old: &Value) {
    let old = &old["spec"];
    let new = svc["spec"].clone();
    let Some(spec) = spec_mut(svc) else {
        return;
    };
    if needs_cluster_ip(old) && needs_cluster_ip(&new) {
        if new["clusterIP"].as_str().unwrap_or("").is_empty() && !old["clusterIP"].is_null() {
            spec.insert("clusterIP".into(), old["clusterIP"].clone());
        }
        if strings(&new, "clusterIPs").is_empty() {
            set_strings(spec, "clusterIPs", &strings(old, "clusterIPs"));
        }
    }
    if needs_node_ports(old) && needs_node_ports(&new) {
        let numbers = |s: &Value| -> HashSet<i64> {
            node_ports(s)
                .iter()
                .filter_map(Value::as_i64)
                .filter(|p| *p != 0)
                .collect()
        };
        let used: HashSet<i64> = numbers(old).intersection(&numbers(&new)).copied().collect();
        let by_name: Vec<(String, i64)> = old["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                (
                    p["name"].as_str().unwrap_or("").to_owned(),
                    p["nodePort"].as_i64().unwrap_or(0),
                )
            })
            .collect();
        for p in spec
            .get_mut("ports")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if p["nodePort"].as_i64().unwrap_or(0) != 0 {
                continue;
            }
            let name = p["name"].as_str().unwrap_or("").to_owned();
            let was = by_name
                .iter()
                .rev()
                .find(|(n, _)| *n == name)
                .map_or(0, |(_, v)| *v);
            if was != 0
                && !used.contains(&was)
                && let Some(p) = p.as_object_mut()
            {
                p.insert("nodePort".into(), json!(was));
            }
        }
    }
    if needs_health_check_port(old)
        && needs_health_check_port(&new)
        && new["healthCheckNodePort"].as_i64().unwrap_or(0) == 0
        && !old["healthCheckNodePort"].is_null()
    {
        spec.insert(
            "healthCheckNodePort".into(),
            old["healthCheckNodePort"].clone(),
        );
    }
    // normalizeClusterIPs (the update half).
    let new = Value::Object(spec.clone());
    let old_ips = strings(old, "clusterIPs");
    let same_ips = strings(&new, "clusterIPs") == old_ips;
    if !old_ips.is_empty()
        && strings(&new, "clusterIPs").is_empty()
        && new["clusterIP"] == old["clusterIP"]
    {
        set_strings(spec, "clusterIPs", &old_ips);
    }
    let (was, now) = (
        old["clusterIP"].as_str().unwrap_or(""),
        new["clusterIP"].as_str().unwrap_or(""),
    );
    if was != now && same_ips {
        if !was.is_empty() && now.is_empty() {
            spec.remove("clusterIPs");
        } else {
            set_strings(spec, "clusterIPs", &[now.to_owned()]);
        }
    }
}

/// `normalizeClusterIPs` on create: a client that set only `clusterIP` gets `clusterIPs`.
pub fn normalize_created(svc: &mut Value) {
    let Some(spec) = spec_mut(svc) else {
        return;
    };
    let ip = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if !ip.is_empty() && strings(&Value::Object(spec.clone()), "clusterIPs").is_empty() {
        spec.insert("clusterIPs".into(), json!([ip]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaving_for_cluster_ip_drops_untouched_node_ports_and_policy() {
        let old = json!({"spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local",
            "healthCheckNodePort": 30050, "allocateLoadBalancerNodePorts": true,
            "clusterIP": "10.0.0.5", "clusterIPs": ["10.0.0.5"],
            "ports": [{"port": 80, "nodePort": 30001}]}});
        let mut new = old.clone();
        new["spec"]["type"] = json!("ClusterIP");
        drop_type_dependent_fields(&mut new, &old);
        let s = &new["spec"];
        assert!(s["ports"][0].get("nodePort").is_none(), "{s}");
        assert!(s.get("healthCheckNodePort").is_none());
        assert!(s.get("externalTrafficPolicy").is_none());
        assert!(s.get("allocateLoadBalancerNodePorts").is_none());
        assert_eq!(s["clusterIP"], "10.0.0.5", "ClusterIP keeps its address");
        let mut external = old.clone();
        external["spec"]["type"] = json!("ExternalName");
        drop_type_dependent_fields(&mut external, &old);
        assert!(external["spec"].get("clusterIPs").is_none());
    }

    #[test]
    fn a_put_without_allocated_values_keeps_them() {
        let old = json!({"spec": {"type": "NodePort", "clusterIP": "10.0.0.5",
            "clusterIPs": ["10.0.0.5"], "ports": [{"name": "a", "port": 80, "nodePort": 30001},
                                                  {"name": "b", "port": 81, "nodePort": 30002}]}});
        let mut new = json!({"spec": {"type": "NodePort",
            "ports": [{"name": "a", "port": 8080}, {"name": "c", "port": 82, "nodePort": 30002}]}});
        keep_allocated_values(&mut new, &old);
        let s = &new["spec"];
        assert_eq!(s["clusterIP"], "10.0.0.5");
        assert_eq!(s["clusterIPs"], json!(["10.0.0.5"]));
        assert_eq!(s["ports"][0]["nodePort"], 30001);
        assert_eq!(s["ports"][1]["nodePort"], 30002);
        // A changed clusterIP carries clusterIPs with it (validation then refuses it).
        let mut moved = old.clone();
        moved["spec"]["clusterIP"] = json!("10.0.0.6");
        keep_allocated_values(&mut moved, &old);
        assert_eq!(moved["spec"]["clusterIPs"], json!(["10.0.0.6"]));
    }
}
