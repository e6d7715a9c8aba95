//! Upstream's container validation (`validateContainers`, `validateInitContainers` and
//! `validateContainerCommon` in `pkg/apis/core/validation`): names, images, ports, env, volume
//! mounts, pull policy, probes and lifecycle handlers, security context. Shared by pods and
//! every pod template; `at` is the list's path (`spec.containers`, ...).

use crate::jsonptr::At;
use crate::kinds::field::FieldPath;
use rustc_hash::FxHashSet as HashSet;

use serde_json::{Value, json};

use super::NameRule;
use super::field::{
    duplicate, forbidden, invalid, non_negative, not_found, not_supported, required, required_why,
};
use super::meta::{name_errors, port_name_errors, qualified_name_errors};
use crate::api::status::Cause;

/// Which list a container is in: decides what it may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Regular,
    Init,
    Ephemeral,
}

const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const TERMINATION_MESSAGE_POLICIES: &[&str] = &["File", "FallbackToLogsOnError"];

/// The fields an env var's `fieldRef` may name (upstream's valid env downward API paths).
const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

/// The fields upstream's `ConvertDownwardAPIFieldLabel` knows for pods.
const POD_FIELD_LABELS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.serviceAccountName",
    "spec.schedulerName",
    "status.phase",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

/// What a container's `resourceFieldRef` may name.
const RESOURCE_FIELDS: &[&str] = &[
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];

fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The containers of one list. `names` holds the names seen in the lists validated before
/// (a clash is reported on the later list, as upstream); `volumes` the pod's valid volumes.
pub fn containers(
    list: &[Value],
    at: &str,
    role: Role,
    volumes: &HashSet<String>,
    names: &mut HashSet<String>,
    causes: &mut Vec<Cause>,
) {
    for (i, c) in list.iter().enumerate() {
        let f = format!("{at}[{i}]");
        let name = str_at(c, "name");
        if name.is_empty() {
            causes.push(required(format!("{f}.name")));
        } else {
            for msg in name_errors(NameRule::Label, name, false) {
                causes.push(invalid(format!("{f}.name"), &json!(name), &msg));
            }
        }
        if !name.is_empty() && !names.insert(name.to_string()) {
            causes.push(duplicate(format!("{f}.name"), &json!(name)));
        }
        common(c, &f, role, volumes, causes);
        let restartable = role == Role::Init && str_at(c, "restartPolicy") == "Always";
        match role {
            Role::Regular => probes_and_lifecycle(c, &f, causes),
            Role::Init if restartable => probes_and_lifecycle(c, &f, causes),
            Role::Init => {
                for k in [
                    "lifecycle",
                    "livenessProbe",
                    "readinessProbe",
                    "startupProbe",
                ] {
                    if c.get(k).is_some_and(|v| !v.is_null()) {
                        causes.push(forbidden(
                            format!("{f}.{k}"),
                            "may not be set for init containers without restartPolicy=Always",
                        ));
                    }
                }
            }
            Role::Ephemeral => {
                for k in [
                    "ports",
                    "livenessProbe",
                    "readinessProbe",
                    "startupProbe",
                    "lifecycle",
                    "resizePolicy",
                ] {
                    let set = match c.get(k) {
                        Some(Value::Array(a)) => !a.is_empty(),
                        Some(v) => !v.is_null(),
                        None => false,
                    };
                    if set {
                        causes.push(forbidden(
                            format!("{f}.{k}"),
                            "cannot be set for an Ephemeral Container",
                        ));
                    }
                }
            }
        }
    }
}

/// What every kind of container is checked for (`validateContainerCommon`).
fn common(c: &Value, f: &str, role: Role, volumes: &HashSet<String>, causes: &mut Vec<Cause>) {
    if str_at(c, "image").trim().is_empty() {
        causes.push(required(format!("{f}.image")));
    }
    if let Some(p) = c.get("terminationMessagePolicy").and_then(Value::as_str)
        && !TERMINATION_MESSAGE_POLICIES.contains(&p)
    {
        causes.push(not_supported(
            format!("{f}.terminationMessagePolicy"),
            &json!(p),
            TERMINATION_MESSAGE_POLICIES,
        ));
    }
    if role != Role::Ephemeral {
        ports(c, f, causes);
    }
    env(c, f, causes);
    mounts(c, f, volumes, causes);
    if let Some(policy) = c.get("imagePullPolicy").and_then(Value::as_str)
        && !PULL_POLICIES.contains(&policy)
    {
        causes.push(not_supported(
            format!("{f}.imagePullPolicy"),
            &json!(policy),
            PULL_POLICIES,
        ));
    }
    security_context(
        c.get("securityContext"),
        &format!("{f}.securityContext"),
        causes,
    );
}

fn ports(c: &Value, f: &str, causes: &mut Vec<Cause>) {
    let mut names = HashSet::default();
    let list = c.get("ports").and_then(Value::as_array);
    for (j, p) in list.into_iter().flatten().enumerate() {
        let pf = format!("{f}.ports[{j}]");
        let name = str_at(p, "name");
        if !name.is_empty() {
            let errs = port_name_errors(name);
            for msg in &errs {
                causes.push(invalid(format!("{pf}.name"), &json!(name), msg));
            }
            if errs.is_empty() && !names.insert(name) {
                causes.push(duplicate(format!("{pf}.name"), &json!(name)));
            }
        }
        match p.get("containerPort").and_then(Value::as_i64).unwrap_or(0) {
            0 => causes.push(required(format!("{pf}.containerPort"))),
            n if !(1..=65535).contains(&n) => causes.push(invalid(
                format!("{pf}.containerPort"),
                &json!(n),
                "must be between 1 and 65535, inclusive",
            )),
            _ => {}
        }
        if let Some(n) = p.get("hostPort").and_then(Value::as_i64)
            && n != 0
            && !(1..=65535).contains(&n)
        {
            causes.push(invalid(
                format!("{pf}.hostPort"),
                &json!(n),
                "must be between 1 and 65535, inclusive",
            ));
        }
        match p.get("protocol").and_then(Value::as_str) {
            None | Some("") => causes.push(required(format!("{pf}.protocol"))),
            Some(proto) if !PROTOCOLS.contains(&proto) => causes.push(not_supported(
                format!("{pf}.protocol"),
                &json!(proto),
                PROTOCOLS,
            )),
            Some(_) => {}
        }
    }
}

/// `metadata.labels['key']` → (`metadata.labels`, `key`), as upstream's
/// `SplitMaybeSubscriptedPath`.
fn split_subscript(path: &str) -> Option<(&str, &str)> {
    let s = path.strip_suffix("']")?;
    let (head, sub) = s.split_once("['")?;
    (!head.is_empty()).then_some((head, sub))
}

/// A `fieldRef` (`ObjectFieldSelector`) at `f` against the paths `allowed`.
pub fn field_selector(fs: &Value, f: &str, allowed: &[&str], causes: &mut Vec<Cause>) {
    if str_at(fs, "apiVersion").is_empty() {
        causes.push(required(format!("{f}.apiVersion")));
        return;
    }
    let path = str_at(fs, "fieldPath");
    if path.is_empty() {
        causes.push(required(format!("{f}.fieldPath")));
        return;
    }
    let field = format!("{f}.fieldPath");
    if str_at(fs, "apiVersion") != "v1" {
        causes.push(invalid(
            field,
            &json!(path),
            &format!(
                "error converting fieldPath: unsupported pod version: {}",
                str_at(fs, "apiVersion")
            ),
        ));
        return;
    }
    if let Some((head, key)) = split_subscript(path) {
        match head {
            "metadata.annotations" => {
                for msg in qualified_name_errors(&key.to_lowercase()) {
                    causes.push(invalid(field.clone(), &json!(key), &msg));
                }
            }
            "metadata.labels" => {
                for msg in qualified_name_errors(key) {
                    causes.push(invalid(field.clone(), &json!(key), &msg));
                }
            }
            _ => causes.push(invalid(
                field,
                &json!(path),
                &format!(
                    "error converting fieldPath: field label does not support subscript: {path}"
                ),
            )),
        }
        return;
    }
    let internal = if path == "spec.host" {
        "spec.nodeName"
    } else {
        path
    };
    if !POD_FIELD_LABELS.contains(&internal) {
        causes.push(invalid(
            field,
            &json!(path),
            &format!("error converting fieldPath: field label not supported: {path}"),
        ));
    } else if !allowed.contains(&internal) {
        causes.push(not_supported(field, &json!(internal), allowed));
    }
}

/// A `resourceFieldRef` at `f`.
pub fn resource_field_selector(rs: &Value, f: &str, causes: &mut Vec<Cause>) {
    let resource = str_at(rs, "resource");
    if resource.is_empty() {
        causes.push(required(format!("{f}.resource")));
    } else if !RESOURCE_FIELDS.contains(&resource)
        && !resource.starts_with("limits.hugepages-")
        && !resource.starts_with("requests.hugepages-")
    {
        causes.push(not_supported(
            format!("{f}.resource"),
            &json!(resource),
            RESOURCE_FIELDS,
        ));
    }
}

fn key_selector(s: &Value, f: &str, causes: &mut Vec<Cause>) {
    if str_at(s, "name").is_empty() {
        causes.push(required(format!("{f}.name")));
    }
    let key = str_at(s, "key");
    if key.is_empty() {
        causes.push(required(format!("{f}.key")));
    } else {
        for msg in super::meta::config_map_key_errors(key) {
            causes.push(invalid(format!("{f}.key"), &json!(key), msg));
        }
    }
}

fn env(c: &Value, f: &str, causes: &mut Vec<Cause>) {
    let list = c.get("env").and_then(Value::as_array);
    for (j, e) in list.into_iter().flatten().enumerate() {
        // The item's path is printed only for an error or a valueFrom.
        let ef = || format!("{f}.env[{j}]");
        let name = str_at(e, "name");
        if name.is_empty() {
            causes.push(required(format!("{}.name", ef())));
        } else if name.contains('=') || !name.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            causes.push(invalid(
                format!("{}.name", ef()),
                &json!(name),
                "a valid environment variable name must consist only of printable ASCII characters other than '='",
            ));
        }
        let Some(from) = e.get("valueFrom").filter(|v| !v.is_null()) else {
            continue;
        };
        let vf = format!("{}.valueFrom", ef());
        let mut sources = 0;
        if let Some(fs) = from.get("fieldRef").filter(|v| !v.is_null()) {
            sources += 1;
            field_selector(fs, &format!("{vf}.fieldRef"), ENV_FIELD_PATHS, causes);
        }
        if let Some(rs) = from.get("resourceFieldRef").filter(|v| !v.is_null()) {
            sources += 1;
            resource_field_selector(rs, &format!("{vf}.resourceFieldRef"), causes);
        }
        for k in ["configMapKeyRef", "secretKeyRef"] {
            if let Some(s) = from.get(k).filter(|v| !v.is_null()) {
                sources += 1;
                key_selector(s, &format!("{vf}.{k}"), causes);
            }
        }
        if from.get("fileKeyRef").is_some_and(|v| !v.is_null()) {
            sources += 1;
        }
        if sources == 0 {
            causes.push(invalid(
                vf,
                &json!(""),
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef`, `secretKeyRef` or `fileKeyRef`",
            ));
        } else if !str_at(e, "value").is_empty() {
            causes.push(invalid(
                vf,
                &json!(""),
                "may not be specified when `value` is not empty",
            ));
        } else if sources > 1 {
            causes.push(invalid(
                vf,
                &json!(""),
                "may not have more than one field specified at a time",
            ));
        }
    }
    let list = c.get("envFrom").and_then(Value::as_array);
    for (j, e) in list.into_iter().flatten().enumerate() {
        let ef = format!("{f}.envFrom[{j}]");
        let mut sources = 0;
        for k in ["configMapRef", "secretRef"] {
            if let Some(r) = e.get(k).filter(|v| !v.is_null()) {
                sources += 1;
                if str_at(r, "name").is_empty() {
                    causes.push(required(format!("{ef}.{k}.name")));
                }
            }
        }
        if sources == 0 {
            causes.push(invalid(
                ef,
                &json!(""),
                "must specify one of: `configMapRef` or `secretRef`",
            ));
        } else if sources > 1 {
            causes.push(invalid(
                ef,
                &json!(""),
                "may not have more than one field specified at a time",
            ));
        }
    }
}

fn mounts(c: &Value, f: &str, volumes: &HashSet<String>, causes: &mut Vec<Cause>) {
    let mut paths = HashSet::default();
    let list = c.get("volumeMounts").and_then(Value::as_array);
    for (j, m) in list.into_iter().flatten().enumerate() {
        // The item's path is printed only for an error.
        let mf = || format!("{f}.volumeMounts[{j}]");
        let name = str_at(m, "name");
        if name.is_empty() {
            causes.push(required(format!("{}.name", mf())));
        }
        if !volumes.contains(name) {
            causes.push(not_found(format!("{}.name", mf()), &json!(name)));
        }
        let path = str_at(m, "mountPath");
        if path.is_empty() {
            causes.push(required(format!("{}.mountPath", mf())));
        }
        if !paths.insert(path) {
            causes.push(invalid(
                format!("{}.mountPath", mf()),
                &json!(path),
                "must be unique",
            ));
        }
        if let Some(p) = m.get("mountPropagation").and_then(Value::as_str)
            && !["None", "HostToContainer", "Bidirectional"].contains(&p)
        {
            causes.push(not_supported(
                format!("{}.mountPropagation", mf()),
                &json!(p),
                &["Bidirectional", "HostToContainer", "None"],
            ));
        }
    }
}

/// A probe's or handler's port: a number in range, or a valid port name.
fn port_ref(port: &Value, field: impl FieldPath, causes: &mut Vec<Cause>) {
    match port {
        Value::String(s) => {
            let errors = port_name_errors(s);
            if errors.is_empty() {
                return;
            }
            let field = field.into_path();
            for msg in errors {
                causes.push(invalid(field.clone(), port, msg));
            }
        }
        other => {
            let p = other.as_i64().unwrap_or(0);
            if !(1..=65535).contains(&p) {
                causes.push(invalid(
                    field.into_path(),
                    &json!(p),
                    "must be between 1 and 65535, inclusive",
                ));
            }
        }
    }
}

/// One handler (a probe's or a lifecycle hook's): exactly one action, each checked.
fn handler(h: &Value, f: &str, actions: &[&str], causes: &mut Vec<Cause>) {
    let mut found = 0;
    for action in actions {
        let Some(a) = h.get(*action).filter(|v| !v.is_null()) else {
            continue;
        };
        if found > 0 {
            causes.push(forbidden(
                format!("{f}.{action}"),
                "may not specify more than 1 handler type",
            ));
            continue;
        }
        found += 1;
        let af = format!("{f}.{action}");
        match *action {
            "exec"
                if a.get("command")
                    .and_then(Value::as_array)
                    .is_none_or(|c| c.is_empty()) =>
            {
                causes.push(required(format!("{af}.command")));
            }
            "httpGet" => {
                if str_at(a, "path").is_empty() {
                    causes.push(required(format!("{af}.path")));
                }
                port_ref(
                    a.get("port").unwrap_or(&json!(0)),
                    format_args!("{af}.port"),
                    causes,
                );
                if let Some(s) = a.get("scheme").and_then(Value::as_str)
                    && !["HTTP", "HTTPS"].contains(&s)
                {
                    causes.push(not_supported(
                        format!("{af}.scheme"),
                        &json!(s),
                        &["HTTP", "HTTPS"],
                    ));
                }
            }
            "tcpSocket" => port_ref(
                a.get("port").unwrap_or(&json!(0)),
                format_args!("{af}.port"),
                causes,
            ),
            "grpc" => {
                let p = a.get("port").and_then(Value::as_i64).unwrap_or(0);
                if !(1..=65535).contains(&p) {
                    causes.push(invalid(
                        format!("{af}.port"),
                        &json!(p),
                        "must be between 1 and 65535, inclusive",
                    ));
                }
            }
            "sleep" if a.get("seconds").and_then(Value::as_i64).unwrap_or(0) < 0 => {
                causes.push(invalid(
                    format!("{af}.seconds"),
                    a.get("seconds").unwrap_or(&json!(0)),
                    "must be non-negative",
                ));
            }
            _ => {}
        }
    }
    if found == 0 {
        causes.push(required_why(f.to_string(), "must specify a handler type"));
    }
}

const PROBE_ACTIONS: &[&str] = &["exec", "httpGet", "tcpSocket", "grpc"];
const HOOK_ACTIONS: &[&str] = &["exec", "httpGet", "tcpSocket", "sleep"];

fn probe(p: &Value, f: &str, kind: &str, causes: &mut Vec<Cause>) {
    handler(p, f, PROBE_ACTIONS, causes);
    for k in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        non_negative(p.get(k), format_args!("{f}.{k}"), causes);
    }
    if let Some(g) = p
        .get("terminationGracePeriodSeconds")
        .and_then(Value::as_i64)
    {
        if kind == "readinessProbe" {
            causes.push(invalid(
                format!("{f}.terminationGracePeriodSeconds"),
                &json!(g),
                "must not be set for readinessProbes",
            ));
        } else if g <= 0 {
            causes.push(invalid(
                format!("{f}.terminationGracePeriodSeconds"),
                &json!(g),
                "must be greater than 0",
            ));
        }
    }
    if kind != "readinessProbe"
        && let Some(n) = p.get("successThreshold").and_then(Value::as_i64)
        && n != 1
    {
        causes.push(invalid(
            format!("{f}.successThreshold"),
            &json!(n),
            "must be 1",
        ));
    }
}

fn probes_and_lifecycle(c: &Value, f: &str, causes: &mut Vec<Cause>) {
    if let Some(l) = c.get("lifecycle").filter(|v| v.is_object()) {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = l.get(hook).filter(|v| !v.is_null()) {
                handler(h, &format!("{f}.lifecycle.{hook}"), HOOK_ACTIONS, causes);
            }
        }
    }
    for kind in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get(kind).filter(|v| v.is_object()) {
            probe(p, &format!("{f}.{kind}"), kind, causes);
        }
    }
}

/// `IsValidUserID`/`IsValidGroupID`: 0 ..= 2^31 - 1.
pub fn id_range(v: Option<&Value>, field: impl FieldPath, causes: &mut Vec<Cause>) {
    if let Some(n) = v.and_then(Value::as_i64)
        && !(0..=i64::from(i32::MAX)).contains(&n)
    {
        causes.push(invalid(
            field.into_path(),
            &json!(n),
            "must be between 0 and 2147483647, inclusive",
        ));
    }
}

fn security_context(sc: Option<&Value>, f: &str, causes: &mut Vec<Cause>) {
    let Some(sc) = sc.filter(|v| v.is_object()) else {
        return;
    };
    let privileged = sc.get("privileged").and_then(Value::as_bool) == Some(true);
    // --allow-privileged=false (upstream's default) refuses privileged containers.
    if privileged && !crate::flags::settings().allow_privileged {
        causes.push(forbidden(
            format!("{f}.privileged"),
            "disallowed by cluster policy",
        ));
    }
    id_range(sc.get("runAsUser"), format_args!("{f}.runAsUser"), causes);
    id_range(sc.get("runAsGroup"), format_args!("{f}.runAsGroup"), causes);
    if let Some(p) = sc.get("procMount").and_then(Value::as_str)
        && !["Default", "Unmasked"].contains(&p)
    {
        causes.push(not_supported(
            format!("{f}.procMount"),
            &json!(p),
            &["Default", "Unmasked"],
        ));
    }
    if sc.get("allowPrivilegeEscalation").and_then(Value::as_bool) == Some(false) {
        if privileged {
            causes.push(invalid(
                f.to_string(),
                sc,
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            ));
        }
        let adds_sys_admin = sc
            .at("/capabilities/add")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|c| c == "SYS_ADMIN" || c == "CAP_SYS_ADMIN"));
        if adds_sys_admin {
            causes.push(invalid(
                f.to_string(),
                sc,
                "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN",
            ));
        }
    }
}
