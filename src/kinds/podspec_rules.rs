//! Upstream's pod spec validation (`ValidatePodSpec` and what it calls in
//! `pkg/apis/core/validation`), shared by pods and every pod template (workloads, jobs, pod
//! templates): volumes, then the containers (`container_rules`), then the pod-level fields
//! (restart and DNS policies, node selector, security context, affinity, tolerations,
//! topology spread, names it refers to). Causes carry upstream's field paths and reasons; `at`
//! is the spec's path (`spec`, `spec.template.spec`, ...).

use crate::kinds::field::FieldPath;
use rustc_hash::FxHashSet as HashSet;

use serde_json::{Value, json};

use super::NameRule;
use super::container_rules::{self, Role, id_range};
use super::meta::{label_value_errors, name_errors, qualified_name_errors};
use crate::api::status::Cause;

use super::field::forbidden;
pub use super::field::{duplicate, invalid, not_supported, required, required_why};
pub use super::meta::port_name_errors;

fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Every volume source a pod volume may have (one of them).
const VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "quobyte",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

const FILE_MODE_MSG: &str = "must be a number between 0 and 0777 (octal), both inclusive";

fn file_mode(v: Option<&Value>, field: impl FieldPath, causes: &mut Vec<Cause>) {
    if let Some(m) = v.and_then(Value::as_i64)
        && !(0..=0o777).contains(&m)
    {
        causes.push(invalid(field.into_path(), &json!(m), FILE_MODE_MSG));
    }
}

/// A volume item's relative path: required, not absolute, no `..` element.
fn local_path(path: &str, field: String, causes: &mut Vec<Cause>) {
    if path.is_empty() {
        causes.push(required(field));
        return;
    }
    if path.starts_with('/') {
        causes.push(invalid(
            field.clone(),
            &json!(path),
            "must be a relative path",
        ));
    }
    if path.split('/').any(|e| e == "..") {
        causes.push(invalid(field, &json!(path), "must not contain '..'"));
    }
}

fn key_items(items: Option<&Value>, f: &str, causes: &mut Vec<Cause>) {
    for (k, item) in items
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let kf = format!("{f}.items[{k}]");
        if str_at(item, "key").is_empty() {
            causes.push(required(format!("{kf}.key")));
        }
        local_path(str_at(item, "path"), format!("{kf}.path"), causes);
        file_mode(item.get("mode"), format_args!("{kf}.mode"), causes);
    }
}

/// One volume source's own rules (`validateVolumeSource`'s per-source part).
pub(super) fn volume_source(kind: &str, src: &Value, f: &str, causes: &mut Vec<Cause>) {
    match kind {
        "configMap" => {
            if str_at(src, "name").is_empty() {
                causes.push(required(format!("{f}.name")));
            }
            file_mode(
                src.get("defaultMode"),
                format_args!("{f}.defaultMode"),
                causes,
            );
            key_items(src.get("items"), f, causes);
        }
        "secret" => {
            if str_at(src, "secretName").is_empty() {
                causes.push(required(format!("{f}.secretName")));
            }
            file_mode(
                src.get("defaultMode"),
                format_args!("{f}.defaultMode"),
                causes,
            );
            key_items(src.get("items"), f, causes);
        }
        "persistentVolumeClaim" if str_at(src, "claimName").is_empty() => {
            causes.push(required(format!("{f}.claimName")));
        }
        "hostPath" => {
            if str_at(src, "path").is_empty() {
                causes.push(required(format!("{f}.path")));
            }
            const TYPES: &[&str] = &[
                "",
                "DirectoryOrCreate",
                "Directory",
                "FileOrCreate",
                "File",
                "Socket",
                "CharDevice",
                "BlockDevice",
            ];
            if let Some(t) = src.get("type").and_then(Value::as_str)
                && !TYPES.contains(&t)
            {
                causes.push(not_supported(format!("{f}.type"), &json!(t), TYPES));
            }
        }
        "nfs" => {
            if str_at(src, "server").is_empty() {
                causes.push(required(format!("{f}.server")));
            }
            let path = str_at(src, "path");
            if path.is_empty() {
                causes.push(required(format!("{f}.path")));
            } else if !path.starts_with('/') {
                causes.push(invalid(
                    format!("{f}.path"),
                    &json!(path),
                    "must be an absolute path",
                ));
            }
        }
        "csi" if str_at(src, "driver").is_empty() => {
            causes.push(required(format!("{f}.driver")));
        }
        "downwardAPI" => {
            file_mode(
                src.get("defaultMode"),
                format_args!("{f}.defaultMode"),
                causes,
            );
            downward_items(src.get("items"), f, causes);
        }
        "projected" => {
            file_mode(
                src.get("defaultMode"),
                format_args!("{f}.defaultMode"),
                causes,
            );
            let sources = src.get("sources").and_then(Value::as_array);
            for (k, p) in sources.into_iter().flatten().enumerate() {
                let pf = format!("{f}.sources[{k}]");
                let set: Vec<&str> = [
                    "secret",
                    "configMap",
                    "downwardAPI",
                    "serviceAccountToken",
                    "clusterTrustBundle",
                    "podCertificate",
                ]
                .into_iter()
                .filter(|k| p.get(*k).is_some_and(|v| !v.is_null()))
                .collect();
                for extra in set.iter().skip(1) {
                    causes.push(forbidden(
                        format!("{pf}.{extra}"),
                        "may not specify more than 1 volume type per source",
                    ));
                }
                match set.first().copied() {
                    None => causes.push(required_why(pf, "must specify exactly 1 volume type")),
                    Some("serviceAccountToken") => {
                        let t = &p["serviceAccountToken"];
                        if let Some(e) = t.get("expirationSeconds").and_then(Value::as_i64) {
                            if e < 600 {
                                causes.push(invalid(
                                    format!("{pf}.serviceAccountToken.expirationSeconds"),
                                    &json!(e),
                                    "may not specify a duration less than 10 minutes",
                                ));
                            } else if e > 1 << 32 {
                                causes.push(invalid(
                                    format!("{pf}.serviceAccountToken.expirationSeconds"),
                                    &json!(e),
                                    "may not specify a duration larger than 2^32 seconds",
                                ));
                            }
                        }
                        local_path(
                            str_at(t, "path"),
                            format!("{pf}.serviceAccountToken.path"),
                            causes,
                        );
                    }
                    Some(kind @ ("secret" | "configMap")) => {
                        key_items(p[kind].get("items"), &format!("{pf}.{kind}"), causes);
                    }
                    Some("downwardAPI") => downward_items(
                        p["downwardAPI"].get("items"),
                        &format!("{pf}.downwardAPI"),
                        causes,
                    ),
                    Some(_) => {}
                }
            }
        }
        "ephemeral" => match src.get("volumeClaimTemplate").filter(|v| v.is_object()) {
            None => causes.push(required(format!("{f}.volumeClaimTemplate"))),
            Some(t) => super::claim_rules::spec(
                t.get("spec"),
                &format!("{f}.volumeClaimTemplate.spec"),
                causes,
            ),
        },
        "image" if str_at(src, "reference").is_empty() => {
            causes.push(required(format!("{f}.reference")));
        }
        _ => {}
    }
}

/// The fields a downward API volume item may name.
const VOLUME_FIELD_PATHS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
];

fn downward_items(items: Option<&Value>, f: &str, causes: &mut Vec<Cause>) {
    for (k, item) in items
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let kf = format!("{f}.items[{k}]");
        local_path(str_at(item, "path"), format!("{kf}.path"), causes);
        file_mode(item.get("mode"), format_args!("{kf}.mode"), causes);
        let field_ref = item.get("fieldRef").filter(|v| !v.is_null());
        let resource_ref = item.get("resourceFieldRef").filter(|v| !v.is_null());
        match (field_ref, resource_ref) {
            (Some(_), Some(_)) => causes.push(invalid(
                kf,
                &json!("resource"),
                "fieldRef and resourceFieldRef can not be specified simultaneously",
            )),
            (Some(fs), None) => container_rules::field_selector(
                fs,
                &format!("{kf}.fieldRef"),
                VOLUME_FIELD_PATHS,
                causes,
            ),
            (None, Some(rs)) => {
                if str_at(rs, "containerName").is_empty() {
                    causes.push(required(format!("{kf}.resourceFieldRef.containerName")));
                }
                container_rules::resource_field_selector(
                    rs,
                    &format!("{kf}.resourceFieldRef"),
                    causes,
                );
            }
            (None, None) => causes.push(required_why(
                kf,
                "one of fieldRef and resourceFieldRef is required",
            )),
        }
    }
}

/// `ValidateVolumes`: each volume's source, then its name; only a volume without errors can
/// be mounted (the names returned).
pub fn volumes(list: &[Value], at: &str, causes: &mut Vec<Cause>) -> HashSet<String> {
    let mut valid = HashSet::default();
    for (i, v) in list.iter().enumerate() {
        let f = format!("{at}[{i}]");
        let mut errs = Vec::new();
        let mut found = 0;
        for kind in VOLUME_SOURCES {
            let Some(src) = v.get(*kind).filter(|s| !s.is_null()) else {
                continue;
            };
            if found > 0 {
                errs.push(forbidden(
                    format!("{f}.{kind}"),
                    "may not specify more than 1 volume type",
                ));
                continue;
            }
            found += 1;
            volume_source(kind, src, &format!("{f}.{kind}"), &mut errs);
        }
        if found == 0 {
            errs.push(required_why(f.clone(), "must specify a volume type"));
        }
        let name = str_at(v, "name");
        if name.is_empty() {
            errs.push(required(format!("{f}.name")));
        } else {
            for msg in name_errors(NameRule::Label, name, false) {
                errs.push(invalid(format!("{f}.name"), &json!(name), &msg));
            }
        }
        if valid.contains(name) {
            errs.push(duplicate(format!("{f}.name"), &json!(name)));
        }
        if errs.is_empty() {
            valid.insert(name.to_string());
        }
        causes.extend(errs);
    }
    valid
}

/// The pod spec at `at`; `restart_policies` are the ones its owner allows (a pod: all three;
/// a Deployment's template: Always; a Job's: OnFailure and Never).
pub fn validate(spec: Option<&Value>, at: &str, restart_policies: &[&str]) -> Vec<Cause> {
    let empty = json!({});
    let spec = spec.unwrap_or(&empty);
    let list = |k: &str| {
        spec.get(k)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    };
    let mut causes = Vec::new();
    let volumes = volumes(list("volumes"), &format!("{at}.volumes"), &mut causes);
    let mut names = HashSet::default();
    let regular = list("containers");
    if regular.is_empty() {
        causes.push(required(format!("{at}.containers")));
    }
    container_rules::containers(
        regular,
        &format!("{at}.containers"),
        Role::Regular,
        &volumes,
        &mut names,
        &mut causes,
    );
    container_rules::containers(
        list("initContainers"),
        &format!("{at}.initContainers"),
        Role::Init,
        &volumes,
        &mut names,
        &mut causes,
    );
    container_rules::containers(
        list("ephemeralContainers"),
        &format!("{at}.ephemeralContainers"),
        Role::Ephemeral,
        &volumes,
        &mut names,
        &mut causes,
    );
    // An ephemeral container targets a container or init container, and mounts no subpaths.
    let targets: HashSet<&str> = regular
        .iter()
        .chain(list("initContainers"))
        .map(|c| str_at(c, "name"))
        .collect();
    for (i, e) in list("ephemeralContainers").iter().enumerate() {
        let f = format!("{at}.ephemeralContainers[{i}]");
        let target = str_at(e, "targetContainerName");
        if !target.is_empty() && !targets.contains(target) {
            causes.push(super::field::not_found(
                format!("{f}.targetContainerName"),
                &json!(target),
            ));
        }
        let mounts = e.get("volumeMounts").and_then(Value::as_array);
        for (j, m) in mounts.into_iter().flatten().enumerate() {
            for k in ["subPath", "subPathExpr"] {
                if !str_at(m, k).is_empty() {
                    causes.push(forbidden(
                        format!("{f}.volumeMounts[{j}].{k}"),
                        "cannot be set for an Ephemeral Container",
                    ));
                }
            }
        }
    }
    match spec.get("restartPolicy").and_then(Value::as_str) {
        None | Some("") => {
            let list: Vec<String> = restart_policies
                .iter()
                .map(|s| format!("\"{s}\""))
                .collect();
            causes.push(required_why(
                format!("{at}.restartPolicy"),
                &format!("valid values: {}", list.join(", ")),
            ));
        }
        Some(p) if !restart_policies.contains(&p) => causes.push(not_supported(
            format!("{at}.restartPolicy"),
            &json!(p),
            restart_policies,
        )),
        Some(_) => {}
    }
    const DNS_POLICIES: &[&str] = &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
    if let Some(p) = spec.get("dnsPolicy").and_then(Value::as_str)
        && !DNS_POLICIES.contains(&p)
    {
        causes.push(not_supported(
            format!("{at}.dnsPolicy"),
            &json!(p),
            DNS_POLICIES,
        ));
    }
    super::meta::labels(
        spec.get("nodeSelector"),
        &format!("{at}.nodeSelector"),
        &mut causes,
    );
    pod_security_context(
        spec.get("securityContext"),
        &format!("{at}.securityContext"),
        &mut causes,
    );
    affinity(spec.get("affinity"), &format!("{at}.affinity"), &mut causes);
    topology_spread(spec, at, &mut causes);
    for (key, rule) in [
        ("serviceAccountName", NameRule::Subdomain),
        ("nodeName", NameRule::Subdomain),
        ("hostname", NameRule::Label),
        ("subdomain", NameRule::Label),
        ("priorityClassName", NameRule::Subdomain),
        ("runtimeClassName", NameRule::Subdomain),
    ] {
        let v = str_at(spec, key);
        if !v.is_empty() {
            for msg in name_errors(rule, v, false) {
                causes.push(invalid(format!("{at}.{key}"), &json!(v), &msg));
            }
        }
    }
    if let Some(n) = spec.get("activeDeadlineSeconds").and_then(Value::as_i64)
        && !(1..=i64::from(i32::MAX)).contains(&n)
    {
        causes.push(invalid(
            format!("{at}.activeDeadlineSeconds"),
            &json!(n),
            "must be between 1 and 2147483647, inclusive",
        ));
    }
    tolerations(
        spec.get("tolerations"),
        &format!("{at}.tolerations"),
        &mut causes,
    );
    if let Some(p) = spec.get("preemptionPolicy").and_then(Value::as_str)
        && !["PreemptLowerPriority", "Never"].contains(&p)
    {
        causes.push(not_supported(
            format!("{at}.preemptionPolicy"),
            &json!(p),
            &["Never", "PreemptLowerPriority"],
        ));
    }
    if let Some(os) = spec.get("os").filter(|v| v.is_object()) {
        match str_at(os, "name") {
            "" => causes.push(required(format!("{at}.os.name"))),
            "linux" | "windows" => {}
            other => causes.push(not_supported(
                format!("{at}.os.name"),
                &json!(other),
                &["linux", "windows"],
            )),
        }
    }
    causes
}

fn pod_security_context(sc: Option<&Value>, f: &str, causes: &mut Vec<Cause>) {
    let Some(sc) = sc.filter(|v| v.is_object()) else {
        return;
    };
    for k in ["runAsUser", "runAsGroup", "fsGroup"] {
        id_range(sc.get(k), format_args!("{f}.{k}"), causes);
    }
    let groups = sc.get("supplementalGroups").and_then(Value::as_array);
    for (i, g) in groups.into_iter().flatten().enumerate() {
        id_range(Some(g), format_args!("{f}.supplementalGroups[{i}]"), causes);
    }
    if let Some(p) = sc.get("fsGroupChangePolicy").and_then(Value::as_str)
        && !["OnRootMismatch", "Always"].contains(&p)
    {
        causes.push(not_supported(
            format!("{f}.fsGroupChangePolicy"),
            &json!(p),
            &["OnRootMismatch", "Always"],
        ));
    }
}

fn tolerations(list: Option<&Value>, at: &str, causes: &mut Vec<Cause>) {
    const EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];
    for (i, t) in list
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let f = format!("{at}[{i}]");
        let key = str_at(t, "key");
        if !key.is_empty() {
            for msg in qualified_name_errors(key) {
                causes.push(invalid(format!("{f}.key"), &json!(key), &msg));
            }
        }
        let operator = str_at(t, "operator");
        if key.is_empty() && operator != "Exists" {
            causes.push(invalid(
                format!("{f}.operator"),
                &json!(operator),
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        let effect = str_at(t, "effect");
        if t.get("tolerationSeconds").is_some_and(|v| !v.is_null()) && effect != "NoExecute" {
            causes.push(invalid(
                format!("{f}.effect"),
                &json!(effect),
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        let value = str_at(t, "value");
        match operator {
            "" | "Equal" => {
                let errs = label_value_errors(value);
                if !errs.is_empty() {
                    causes.push(invalid(
                        format!("{f}.operator"),
                        &json!(value),
                        &errs.join(";"),
                    ));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    causes.push(invalid(
                        format!("{f}.operator"),
                        &json!(value),
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => causes.push(not_supported(
                format!("{f}.operator"),
                &json!(other),
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() && !EFFECTS.contains(&effect) {
            causes.push(not_supported(
                format!("{f}.effect"),
                &json!(effect),
                EFFECTS,
            ));
        }
    }
}

fn weight(term: &Value, f: String, causes: &mut Vec<Cause>) {
    let w = term.get("weight").and_then(Value::as_i64).unwrap_or(0);
    if !(1..=100).contains(&w) {
        causes.push(invalid(f, &json!(w), "must be in the range 1-100"));
    }
}

/// A node selector requirement (`matchExpressions` of node affinity).
fn node_requirement(r: &Value, f: &str, causes: &mut Vec<Cause>) {
    let values = r.get("values").and_then(Value::as_array);
    let n = values.map_or(0, Vec::len);
    match str_at(r, "operator") {
        "In" | "NotIn" if n == 0 => causes.push(required_why(
            format!("{f}.values"),
            "must be specified when `operator` is 'In' or 'NotIn'",
        )),
        "Exists" | "DoesNotExist" if n > 0 => causes.push(forbidden(
            format!("{f}.values"),
            "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        )),
        "Gt" | "Lt" => {
            if n != 1 {
                causes.push(required_why(
                    format!("{f}.values"),
                    "must be specified single value when `operator` is 'Lt' or 'Gt'",
                ));
            }
        }
        "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
        op => causes.push(invalid(
            format!("{f}.operator"),
            &json!(op),
            "not a valid selector operator",
        )),
    }
    let key = str_at(r, "key");
    for msg in qualified_name_errors(key) {
        causes.push(invalid(format!("{f}.key"), &json!(key), &msg));
    }
}

fn node_selector_term(term: &Value, f: &str, causes: &mut Vec<Cause>) {
    let exprs = term.get("matchExpressions").and_then(Value::as_array);
    for (j, r) in exprs.into_iter().flatten().enumerate() {
        node_requirement(r, &format!("{f}.matchExpressions[{j}]"), causes);
    }
}

fn pod_affinity_term(term: &Value, f: &str, causes: &mut Vec<Cause>) {
    if let Some(sel) = term.get("labelSelector").filter(|v| v.is_object()) {
        super::workload_rules::label_selector(sel, &format!("{f}.labelSelector"), causes);
    }
    if let Some(sel) = term.get("namespaceSelector").filter(|v| v.is_object()) {
        super::workload_rules::label_selector(sel, &format!("{f}.namespaceSelector"), causes);
    }
    let namespaces = term.get("namespaces").and_then(Value::as_array);
    for ns in namespaces.into_iter().flatten() {
        let ns = ns.as_str().unwrap_or("");
        for msg in name_errors(NameRule::Label, ns, false) {
            causes.push(invalid(format!("{f}.namespace"), &json!(ns), &msg));
        }
    }
    let key = term
        .get("topologyKey")
        .and_then(Value::as_str)
        .unwrap_or("");
    let field = format!("{f}.topologyKey");
    if key.is_empty() {
        causes.push(required_why(field.clone(), "can not be empty"));
    }
    for msg in qualified_name_errors(key) {
        causes.push(invalid(field.clone(), &json!(key), &msg));
    }
}

fn affinity(a: Option<&Value>, at: &str, causes: &mut Vec<Cause>) {
    let Some(a) = a.filter(|v| v.is_object()) else {
        return;
    };
    if let Some(na) = a.get("nodeAffinity").filter(|v| v.is_object()) {
        let f = format!("{at}.nodeAffinity");
        if let Some(req) = na
            .get("requiredDuringSchedulingIgnoredDuringExecution")
            .filter(|v| v.is_object())
        {
            let rf = format!("{f}.requiredDuringSchedulingIgnoredDuringExecution");
            let terms = req.get("nodeSelectorTerms").and_then(Value::as_array);
            if terms.is_none_or(|t| t.is_empty()) {
                causes.push(required_why(
                    format!("{rf}.nodeSelectorTerms"),
                    "must have at least one node selector term",
                ));
            }
            for (i, t) in terms.into_iter().flatten().enumerate() {
                node_selector_term(t, &format!("{rf}.nodeSelectorTerms[{i}]"), causes);
            }
        }
        let preferred = na
            .get("preferredDuringSchedulingIgnoredDuringExecution")
            .and_then(Value::as_array);
        for (i, t) in preferred.into_iter().flatten().enumerate() {
            let pf = format!("{f}.preferredDuringSchedulingIgnoredDuringExecution[{i}]");
            weight(t, format!("{pf}.weight"), causes);
            node_selector_term(
                t.get("preference").unwrap_or(&Value::Null),
                &format!("{pf}.preference"),
                causes,
            );
        }
    }
    for kind in ["podAffinity", "podAntiAffinity"] {
        let Some(pa) = a.get(kind).filter(|v| v.is_object()) else {
            continue;
        };
        let f = format!("{at}.{kind}");
        let required_terms = pa
            .get("requiredDuringSchedulingIgnoredDuringExecution")
            .and_then(Value::as_array);
        for (i, t) in required_terms.into_iter().flatten().enumerate() {
            pod_affinity_term(
                t,
                &format!("{f}.requiredDuringSchedulingIgnoredDuringExecution[{i}]"),
                causes,
            );
        }
        let preferred = pa
            .get("preferredDuringSchedulingIgnoredDuringExecution")
            .and_then(Value::as_array);
        for (i, t) in preferred.into_iter().flatten().enumerate() {
            let pf = format!("{f}.preferredDuringSchedulingIgnoredDuringExecution[{i}]");
            weight(t, format!("{pf}.weight"), causes);
            pod_affinity_term(
                t.get("podAffinityTerm").unwrap_or(&json!({})),
                &format!("{pf}.podAffinityTerm"),
                causes,
            );
        }
    }
}

fn topology_spread(spec: &Value, at: &str, causes: &mut Vec<Cause>) {
    let list = spec
        .get("topologySpreadConstraints")
        .and_then(Value::as_array);
    for (i, c) in list.into_iter().flatten().enumerate() {
        let f = format!("{at}.topologySpreadConstraints[{i}]");
        let skew = c.get("maxSkew").and_then(Value::as_i64).unwrap_or(0);
        if skew <= 0 {
            causes.push(invalid(
                format!("{f}.maxSkew"),
                &json!(skew),
                "must be greater than zero",
            ));
        }
        let key = str_at(c, "topologyKey");
        if key.is_empty() {
            causes.push(required_why(format!("{f}.topologyKey"), "can not be empty"));
        } else {
            for msg in qualified_name_errors(key) {
                causes.push(invalid(format!("{f}.topologyKey"), &json!(key), &msg));
            }
        }
        const ACTIONS: &[&str] = &["DoNotSchedule", "ScheduleAnyway"];
        let action = str_at(c, "whenUnsatisfiable");
        if !ACTIONS.contains(&action) {
            causes.push(not_supported(
                format!("{f}.whenUnsatisfiable"),
                &json!(action),
                ACTIONS,
            ));
        }
        if let Some(m) = c.get("minDomains").and_then(Value::as_i64)
            && m <= 0
        {
            causes.push(invalid(
                format!("{f}.minDomains"),
                &json!(m),
                "must be greater than 0",
            ));
        }
        if let Some(sel) = c.get("labelSelector").filter(|v| v.is_object()) {
            super::workload_rules::label_selector(sel, &format!("{f}.labelSelector"), causes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::field_reasons as fields;

    #[test]
    fn a_template_is_checked_as_upstream_checks_a_pod() {
        let spec = json!({
            "restartPolicy": "OnFailure",
            "containers": [
                {"name": "web", "image": "", "volumeMounts": [{"name": "missing", "mountPath": "/x"}]},
                {"name": "web", "image": "nginx", "ports": [{"containerPort": 0, "protocol": "HTTP"}]},
            ],
            "tolerations": [{"operator": "Equal"}],
        });
        let causes = validate(Some(&spec), "spec.template.spec", &["Always"]);
        assert_eq!(
            fields(&causes),
            vec![
                (
                    "spec.template.spec.containers[0].image",
                    "FieldValueRequired"
                ),
                (
                    "spec.template.spec.containers[0].volumeMounts[0].name",
                    "FieldValueNotFound"
                ),
                (
                    "spec.template.spec.containers[1].name",
                    "FieldValueDuplicate"
                ),
                (
                    "spec.template.spec.containers[1].ports[0].containerPort",
                    "FieldValueRequired"
                ),
                (
                    "spec.template.spec.containers[1].ports[0].protocol",
                    "FieldValueNotSupported"
                ),
                ("spec.template.spec.restartPolicy", "FieldValueNotSupported"),
                (
                    "spec.template.spec.tolerations[0].operator",
                    "FieldValueInvalid"
                ),
            ]
        );
        assert_eq!(
            causes[5].message,
            "Unsupported value: \"OnFailure\": supported values: \"Always\""
        );
        let none = validate(None, "spec", &["Always", "OnFailure", "Never"]);
        assert_eq!(
            fields(&none),
            vec![
                ("spec.containers", "FieldValueRequired"),
                ("spec.restartPolicy", "FieldValueRequired"),
            ]
        );
    }

    #[test]
    fn a_volume_with_errors_cannot_be_mounted() {
        let spec = json!({
            "restartPolicy": "Always",
            "volumes": [{"name": "cfg", "configMap": {"name": "c", "defaultMode": -1}},
                        {"name": "cfg", "emptyDir": {}}, {"name": "none"}],
            "containers": [{"name": "a", "image": "x", "volumeMounts": [
                {"name": "cfg", "mountPath": "/a"}, {"name": "", "mountPath": "/a"}]}],
        });
        let causes = validate(Some(&spec), "spec", &["Always"]);
        assert_eq!(
            fields(&causes),
            vec![
                ("spec.volumes[0].configMap.defaultMode", "FieldValueInvalid"),
                ("spec.volumes[2]", "FieldValueRequired"),
                (
                    "spec.containers[0].volumeMounts[1].name",
                    "FieldValueRequired"
                ),
                (
                    "spec.containers[0].volumeMounts[1].name",
                    "FieldValueNotFound"
                ),
                (
                    "spec.containers[0].volumeMounts[1].mountPath",
                    "FieldValueInvalid"
                ),
            ]
        );
        // The second `cfg` (valid) is what the first mount finds.
        assert_eq!(
            causes[0].message,
            format!("Invalid value: -1: {FILE_MODE_MSG}")
        );
    }

    #[test]
    fn env_probes_ports_and_scheduling_rules() {
        let spec = json!({
            "restartPolicy": "Always",
            "nodeSelector": {"disk": "Bad Value"},
            "containers": [{"name": "a", "image": "x",
                "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"},
                          {"name": "http", "containerPort": 81, "protocol": "TCP"}],
                "env": [{"name": "A", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.bogus"}}},
                        {"name": "B", "valueFrom": {}}],
                "readinessProbe": {"periodSeconds": -1},
                "securityContext": {"runAsUser": -1}}],
            "tolerations": [{"key": "k", "operator": "Equal", "value": "bad value"}],
            "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 0, "podAffinityTerm": {"topologyKey": "zone"}}]}},
        });
        let causes = validate(Some(&spec), "spec", &["Always"]);
        assert_eq!(
            fields(&causes),
            vec![
                ("spec.containers[0].ports[1].name", "FieldValueDuplicate"),
                (
                    "spec.containers[0].env[0].valueFrom.fieldRef.fieldPath",
                    "FieldValueInvalid"
                ),
                ("spec.containers[0].env[1].valueFrom", "FieldValueInvalid"),
                (
                    "spec.containers[0].securityContext.runAsUser",
                    "FieldValueInvalid"
                ),
                ("spec.containers[0].readinessProbe", "FieldValueRequired"),
                (
                    "spec.containers[0].readinessProbe.periodSeconds",
                    "FieldValueInvalid"
                ),
                ("spec.nodeSelector", "FieldValueInvalid"),
                (
                    "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight",
                    "FieldValueInvalid"
                ),
                ("spec.tolerations[0].operator", "FieldValueInvalid"),
            ]
        );
        assert_eq!(
            causes[1].message,
            "Invalid value: \"spec.bogus\": error converting fieldPath: field label not supported: spec.bogus"
        );
    }
}
