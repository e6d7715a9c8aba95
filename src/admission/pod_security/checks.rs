//! The Pod Security Standards' checks, as upstream's `pod-security-admission/policy`: each
//! looks at a pod's metadata and spec (served JSON) and says why it breaks its level, in
//! upstream's words. `evaluate` runs the checks a level and version hold, in upstream's order
//! (baseline checks by id, then restricted ones, a restricted check replacing the baseline
//! check it overrides), and versions newer than the newest check are clamped to it.

use crate::jsonptr::At;
use std::collections::BTreeSet;

use serde_json::Value;

use super::policy::{Level, LevelVersion};

/// The newest version any check changed at (`latest` and newer versions evaluate as it).
pub const MAX_MINOR: u64 = 35;

/// A check that failed: its reason, and the detail naming what broke it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub reason: String,
    pub detail: String,
}

/// The failures of every check `lv` holds, in upstream's order (empty: allowed).
pub fn evaluate(lv: LevelVersion, meta: &Value, spec: &Value) -> Vec<Failure> {
    let m = lv.version.minor().min(MAX_MINOR) as u32;
    let pod = Pod { meta, spec };
    let restricted = lv.level == Level::Restricted;
    if lv.level == Level::Privileged {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut run = |f: Option<Failure>| out.extend(f);
    // Baseline checks, sorted by id.
    run(app_armor(&pod));
    if !(restricted && m >= 22) {
        run(capabilities_baseline(&pod));
    }
    run(host_namespaces(&pod));
    if !restricted {
        run(host_path_volumes(&pod));
    }
    run(host_ports(&pod));
    if m >= 34 {
        run(host_probes(&pod));
    }
    run(privileged(&pod));
    if !(restricted && m >= 35) {
        run(proc_mount(&pod, m >= 35));
    }
    run(se_linux(&pod, m));
    if !(restricted && m >= 19) {
        run(seccomp_baseline(&pod, m));
    }
    run(sysctls(&pod, m));
    run(windows_host_process(&pod));
    if !restricted {
        return out;
    }
    // Restricted checks, sorted by id.
    if m >= 8 {
        run(allow_privilege_escalation(&pod, m));
    }
    if m >= 22 {
        run(capabilities_restricted(&pod, m));
    }
    if m >= 35 {
        run(proc_mount(&pod, false));
    }
    run(restricted_volumes(&pod));
    run(run_as_non_root(&pod, m));
    if m >= 23 {
        run(run_as_user(&pod, m));
    }
    if m >= 19 {
        run(seccomp_restricted(&pod, m));
    }
    out
}

/// `reason (detail), …`: the enforce refusal's and the warnings' text.
pub fn forbidden_detail(failures: &[Failure]) -> String {
    failures
        .iter()
        .map(|f| match f.detail.is_empty() {
            true => f.reason.clone(),
            false => format!("{} ({})", f.reason, f.detail),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `reason, …`: how the namespace dry run groups existing pods.
pub fn forbidden_reason(failures: &[Failure]) -> String {
    failures
        .iter()
        .map(|f| f.reason.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

struct Pod<'a> {
    meta: &'a Value,
    spec: &'a Value,
}

impl<'a> Pod<'a> {
    /// Init containers, containers, then ephemeral containers, each in spec order.
    fn containers(&self) -> impl Iterator<Item = &'a Value> + use<'a> {
        let spec = self.spec;
        ["initContainers", "containers", "ephemeralContainers"]
            .into_iter()
            .flat_map(move |k| spec.get(k).and_then(Value::as_array).into_iter().flatten())
    }

    fn pod_sc(&self) -> Option<&'a Value> {
        self.spec.get("securityContext").filter(|v| v.is_object())
    }

    fn is_windows(&self) -> bool {
        self.spec.at("/os/name").and_then(Value::as_str) == Some("windows")
    }

    /// `hostUsers: false`: the pod runs in a user namespace.
    fn user_namespaced(&self) -> bool {
        self.spec.get("hostUsers").and_then(Value::as_bool) == Some(false)
    }
}

fn name(c: &Value) -> &str {
    c.get("name").and_then(Value::as_str).unwrap_or("")
}

fn sc<'a>(c: &'a Value, path: &str) -> Option<&'a Value> {
    c.get("securityContext")?.at(path)
}

fn join_quote<I: IntoIterator<Item = S>, S: AsRef<str>>(items: I) -> String {
    items
        .into_iter()
        .map(|s| format!("\"{}\"", s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn plural<'s>(one: &'s str, many: &'s str, n: usize) -> &'s str {
    if n == 1 { one } else { many }
}

/// `container "a"` / `containers "a", "b"`.
fn containers_phrase(names: &[String]) -> String {
    format!(
        "{} {}",
        plural("container", "containers", names.len()),
        join_quote(names)
    )
}

/// Who set a bad value: `pod`, then the containers, joined by ` and `.
fn setters(pod: bool, containers: &[String]) -> String {
    let mut parts = Vec::new();
    if pod {
        parts.push("pod".to_string());
    }
    if !containers.is_empty() {
        parts.push(containers_phrase(containers));
    }
    parts.join(" and ")
}

fn fail(reason: &str, detail: String) -> Option<Failure> {
    Some(Failure {
        reason: reason.to_string(),
        detail,
    })
}

/// Go's `%q` for the strings these checks quote: printable text as is, `"` and `\` escaped,
/// control characters as Go escapes them.
pub(super) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

const APPARMOR_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

fn app_armor(pod: &Pod<'_>) -> Option<Failure> {
    let allowed = |t: &str| t == "RuntimeDefault" || t == "Localhost";
    let profile_type = |v: &Value| {
        v.get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let mut types = BTreeSet::new();
    let mut pod_bad = false;
    if let Some(p) = pod.pod_sc().and_then(|s| s.get("appArmorProfile"))
        && p.is_object()
    {
        let t = profile_type(p);
        if !allowed(&t) {
            pod_bad = true;
            types.insert(t);
        }
    }
    let mut bad = Vec::new();
    for c in pod.containers() {
        if let Some(p) = sc(c, "/appArmorProfile").filter(|p| p.is_object()) {
            let t = profile_type(p);
            if !allowed(&t) {
                bad.push(name(c).to_string());
                types.insert(t);
            }
        }
    }
    let mut annotations = BTreeSet::new();
    if let Some(map) = pod.meta.get("annotations").and_then(Value::as_object) {
        for (k, v) in map {
            let v = v.as_str().unwrap_or("");
            if k.starts_with(APPARMOR_PREFIX)
                && !(v.is_empty() || v == "runtime/default" || v.starts_with("localhost/"))
            {
                annotations.insert(format!("{k}={}", go_quote(v)));
            }
        }
    }
    if !pod_bad && bad.is_empty() && annotations.is_empty() {
        return None;
    }
    let mut who = vec![setters(pod_bad, &bad)];
    who.retain(|s| !s.is_empty());
    if !annotations.is_empty() {
        who.push(plural("annotation", "annotations", annotations.len()).to_string());
    }
    let values: Vec<String> = types.into_iter().chain(annotations).collect();
    fail(
        plural(
            "forbidden AppArmor profile",
            "forbidden AppArmor profiles",
            values.len(),
        ),
        format!(
            "{} must not set AppArmor profile type to {}",
            who.join(" and "),
            join_quote(&values)
        ),
    )
}

/// The capabilities a baseline container may add.
const BASELINE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

fn added_capabilities(c: &Value) -> impl Iterator<Item = &str> {
    sc(c, "/capabilities/add")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

fn capabilities_baseline(pod: &Pod<'_>) -> Option<Failure> {
    let mut bad = Vec::new();
    let mut caps = BTreeSet::new();
    for c in pod.containers() {
        let mut found = false;
        for cap in added_capabilities(c) {
            if !BASELINE_CAPABILITIES.contains(&cap) {
                found = true;
                caps.insert(cap.to_string());
            }
        }
        if found {
            bad.push(name(c).to_string());
        }
    }
    if bad.is_empty() {
        return None;
    }
    fail(
        "non-default capabilities",
        format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&bad),
            join_quote(&caps)
        ),
    )
}

fn host_namespaces(pod: &Pod<'_>) -> Option<Failure> {
    let set: Vec<String> = ["hostNetwork", "hostPID", "hostIPC"]
        .into_iter()
        .filter(|k| pod.spec.get(*k).and_then(Value::as_bool) == Some(true))
        .map(|k| format!("{k}=true"))
        .collect();
    if set.is_empty() {
        return None;
    }
    fail("host namespaces", set.join(", "))
}

fn volumes<'a>(pod: &Pod<'a>) -> impl Iterator<Item = &'a Value> + use<'a> {
    pod.spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn host_path_volumes(pod: &Pod<'_>) -> Option<Failure> {
    let names: Vec<String> = volumes(pod)
        .filter(|v| v.get("hostPath").is_some_and(|h| !h.is_null()))
        .map(|v| name(v).to_string())
        .collect();
    if names.is_empty() {
        return None;
    }
    fail(
        "hostPath volumes",
        format!(
            "{} {}",
            plural("volume", "volumes", names.len()),
            join_quote(&names)
        ),
    )
}

fn host_ports(pod: &Pod<'_>) -> Option<Failure> {
    let mut bad = Vec::new();
    let mut ports = BTreeSet::new();
    for c in pod.containers() {
        let mut found = false;
        for p in c
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(hp) = p.get("hostPort").and_then(Value::as_i64)
                && hp != 0
            {
                found = true;
                // Sorted as strings, as upstream's string set.
                ports.insert(hp.to_string());
            }
        }
        if found {
            bad.push(name(c).to_string());
        }
    }
    if bad.is_empty() {
        return None;
    }
    fail(
        "hostPort",
        format!(
            "{} {} {} {}",
            containers_phrase(&bad),
            plural("uses", "use", bad.len()),
            plural("hostPort", "hostPorts", ports.len()),
            ports.into_iter().collect::<Vec<_>>().join(", ")
        ),
    )
}

fn host_probes(pod: &Pod<'_>) -> Option<Failure> {
    let mut bad = BTreeSet::new();
    let mut hosts = BTreeSet::new();
    for c in pod.containers() {
        let handlers = ["livenessProbe", "readinessProbe", "startupProbe"]
            .into_iter()
            .filter_map(|k| c.get(k))
            .chain(
                ["postStart", "preStop"]
                    .into_iter()
                    .filter_map(|k| c.get("lifecycle").and_then(|l| l.get(k))),
            );
        for h in handlers {
            for action in ["httpGet", "tcpSocket"] {
                if let Some(host) = h
                    .get(action)
                    .and_then(|a| a.get("host"))
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                {
                    bad.insert(name(c).to_string());
                    hosts.insert(host.to_string());
                }
            }
        }
    }
    if bad.is_empty() {
        return None;
    }
    let names: Vec<String> = bad.into_iter().collect();
    fail(
        "probe or lifecycle host",
        format!(
            "{} {} {} {}",
            containers_phrase(&names),
            plural("uses", "use", names.len()),
            plural(
                "probe or lifecycle host",
                "probe or lifecycle hosts",
                hosts.len()
            ),
            join_quote(&hosts)
        ),
    )
}

fn privileged(pod: &Pod<'_>) -> Option<Failure> {
    let bad: Vec<String> = pod
        .containers()
        .filter(|c| sc(c, "/privileged").and_then(Value::as_bool) == Some(true))
        .map(|c| name(c).to_string())
        .collect();
    if bad.is_empty() {
        return None;
    }
    fail(
        "privileged",
        format!(
            "{} must not set securityContext.privileged=true",
            containers_phrase(&bad)
        ),
    )
}

/// `procMount` other than `Default`; `relax`: a user-namespaced pod may (v1.35+ baseline).
fn proc_mount(pod: &Pod<'_>, relax: bool) -> Option<Failure> {
    if relax && pod.user_namespaced() {
        return None;
    }
    let mut bad = Vec::new();
    let mut values = BTreeSet::new();
    for c in pod.containers() {
        if let Some(v) = sc(c, "/procMount").and_then(Value::as_str)
            && v != "Default"
        {
            bad.push(name(c).to_string());
            values.insert(v.to_string());
        }
    }
    if bad.is_empty() {
        return None;
    }
    fail(
        "procMount",
        format!(
            "{} must not set securityContext.procMount to {}",
            containers_phrase(&bad),
            join_quote(&values)
        ),
    )
}

fn se_linux(pod: &Pod<'_>, m: u32) -> Option<Failure> {
    let allowed = |t: &str| {
        matches!(
            t,
            "" | "container_t" | "container_init_t" | "container_kvm_t"
        ) || (m >= 31 && t == "container_engine_t")
    };
    let mut types = BTreeSet::new();
    let (mut user, mut role) = (false, false);
    let mut check = |opts: &Value| {
        let mut bad = false;
        let t = opts.get("type").and_then(Value::as_str).unwrap_or("");
        if !allowed(t) {
            types.insert(t.to_string());
            bad = true;
        }
        if opts
            .get("user")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
        {
            user = true;
            bad = true;
        }
        if opts
            .get("role")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
        {
            role = true;
            bad = true;
        }
        bad
    };
    let pod_bad = pod
        .pod_sc()
        .and_then(|s| s.get("seLinuxOptions"))
        .filter(|o| o.is_object())
        .is_some_and(&mut check);
    let mut bad = Vec::new();
    for c in pod.containers() {
        if let Some(o) = sc(c, "/seLinuxOptions").filter(|o| o.is_object())
            && check(o)
        {
            bad.push(name(c).to_string());
        }
    }
    if !pod_bad && bad.is_empty() {
        return None;
    }
    let mut parts = Vec::new();
    if !types.is_empty() {
        parts.push(format!(
            "{} {}",
            plural("type", "types", types.len()),
            join_quote(&types)
        ));
    }
    if user {
        parts.push("user may not be set".to_string());
    }
    if role {
        parts.push("role may not be set".to_string());
    }
    fail(
        "seLinuxOptions",
        format!(
            "{} set forbidden securityContext.seLinuxOptions: {}",
            setters(pod_bad, &bad),
            parts.join("; ")
        ),
    )
}

const SECCOMP_POD_ANNOTATION: &str = "seccomp.security.alpha.kubernetes.io/pod";
const SECCOMP_CONTAINER_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";

fn seccomp_type(v: &Value) -> Option<&str> {
    v.get("seccompProfile")
        .filter(|p| p.is_object())
        .map(|p| p.get("type").and_then(Value::as_str).unwrap_or(""))
}

fn seccomp_allowed(t: &str) -> bool {
    t == "RuntimeDefault" || t == "Localhost"
}

fn seccomp_baseline(pod: &Pod<'_>, m: u32) -> Option<Failure> {
    if m < 19 {
        // Before the fields, the annotations.
        let annotations = pod.meta.get("annotations").and_then(Value::as_object);
        let allowed = |v: &str| {
            v == "runtime/default" || v == "docker/default" || v.starts_with("localhost/")
        };
        let mut bad = BTreeSet::new();
        let mut look = |key: String| {
            if let Some(v) = annotations
                .and_then(|a| a.get(&key))
                .map(|v| v.as_str().unwrap_or(""))
                && !allowed(v)
            {
                bad.insert(format!("{key}={}", go_quote(v)));
            }
        };
        look(SECCOMP_POD_ANNOTATION.to_string());
        for c in pod.containers() {
            look(format!("{SECCOMP_CONTAINER_PREFIX}{}", name(c)));
        }
        if bad.is_empty() {
            return None;
        }
        return fail(
            "seccompProfile",
            format!(
                "forbidden {} {}",
                plural("annotation", "annotations", bad.len()),
                bad.into_iter().collect::<Vec<_>>().join(", ")
            ),
        );
    }
    let mut types = BTreeSet::new();
    let mut pod_bad = false;
    if let Some(t) = pod.pod_sc().and_then(seccomp_type)
        && !seccomp_allowed(t)
    {
        pod_bad = true;
        types.insert(t.to_string());
    }
    let mut bad = Vec::new();
    for c in pod.containers() {
        if let Some(t) = c.get("securityContext").and_then(seccomp_type)
            && !seccomp_allowed(t)
        {
            bad.push(name(c).to_string());
            types.insert(t.to_string());
        }
    }
    if !pod_bad && bad.is_empty() {
        return None;
    }
    fail(
        "seccompProfile",
        format!(
            "{} must not set securityContext.seccompProfile.type to {}",
            setters(pod_bad, &bad),
            join_quote(&types)
        ),
    )
}

fn sysctl_allowed(name: &str, m: u32) -> bool {
    match name {
        "kernel.shm_rmid_forced"
        | "net.ipv4.ip_local_port_range"
        | "net.ipv4.tcp_syncookies"
        | "net.ipv4.ping_group_range"
        | "net.ipv4.ip_unprivileged_port_start" => true,
        "net.ipv4.ip_local_reserved_ports" => m >= 27,
        "net.ipv4.tcp_keepalive_time"
        | "net.ipv4.tcp_fin_timeout"
        | "net.ipv4.tcp_keepalive_intvl"
        | "net.ipv4.tcp_keepalive_probes" => m >= 29,
        "net.ipv4.tcp_rmem" | "net.ipv4.tcp_wmem" => m >= 32,
        _ => false,
    }
}

fn sysctls(pod: &Pod<'_>, m: u32) -> Option<Failure> {
    let bad: Vec<&str> = pod
        .pod_sc()
        .and_then(|s| s.get("sysctls"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(name)
        .filter(|n| !sysctl_allowed(n, m))
        .collect();
    if bad.is_empty() {
        return None;
    }
    fail("forbidden sysctls", bad.join(", "))
}

fn windows_host_process(pod: &Pod<'_>) -> Option<Failure> {
    let host_process =
        |s: &Value| s.at("/windowsOptions/hostProcess").and_then(Value::as_bool) == Some(true);
    let pod_bad = pod.pod_sc().is_some_and(host_process);
    let bad: Vec<String> = pod
        .containers()
        .filter(|c| c.get("securityContext").is_some_and(host_process))
        .map(|c| name(c).to_string())
        .collect();
    if !pod_bad && bad.is_empty() {
        return None;
    }
    fail(
        "hostProcess",
        format!(
            "{} must not set securityContext.windowsOptions.hostProcess=true",
            setters(pod_bad, &bad)
        ),
    )
}

fn allow_privilege_escalation(pod: &Pod<'_>, m: u32) -> Option<Failure> {
    if m >= 25 && pod.is_windows() {
        return None;
    }
    let bad: Vec<String> = pod
        .containers()
        .filter(|c| sc(c, "/allowPrivilegeEscalation").and_then(Value::as_bool) != Some(false))
        .map(|c| name(c).to_string())
        .collect();
    if bad.is_empty() {
        return None;
    }
    fail(
        "allowPrivilegeEscalation != false",
        format!(
            "{} must set securityContext.allowPrivilegeEscalation=false",
            containers_phrase(&bad)
        ),
    )
}

fn capabilities_restricted(pod: &Pod<'_>, m: u32) -> Option<Failure> {
    if m >= 25 && pod.is_windows() {
        return None;
    }
    let mut no_drop = Vec::new();
    let mut bad_add = Vec::new();
    let mut caps = BTreeSet::new();
    for c in pod.containers() {
        let Some(capabilities) = sc(c, "/capabilities").filter(|v| v.is_object()) else {
            no_drop.push(name(c).to_string());
            continue;
        };
        let drops_all = capabilities
            .get("drop")
            .and_then(Value::as_array)
            .is_some_and(|d| d.iter().any(|v| v.as_str() == Some("ALL")));
        if !drops_all {
            no_drop.push(name(c).to_string());
        }
        let mut found = false;
        for cap in added_capabilities(c) {
            if cap != "NET_BIND_SERVICE" {
                found = true;
                caps.insert(cap.to_string());
            }
        }
        if found {
            bad_add.push(name(c).to_string());
        }
    }
    let mut parts = Vec::new();
    if !no_drop.is_empty() {
        parts.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            containers_phrase(&no_drop)
        ));
    }
    if !bad_add.is_empty() {
        parts.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&bad_add),
            join_quote(&caps)
        ));
    }
    if parts.is_empty() {
        return None;
    }
    fail("unrestricted capabilities", parts.join("; "))
}

/// The volume sources a restricted pod may use.
const RESTRICTED_ALLOWED: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// The other sources, in the order upstream names a volume's type by.
const RESTRICTED_NAMED: &[&str] = &[
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
];

fn restricted_volumes(pod: &Pod<'_>) -> Option<Failure> {
    let set = |v: &Value, k: &str| v.get(k).is_some_and(|s| !s.is_null());
    let mut names = Vec::new();
    let mut types = BTreeSet::new();
    for v in volumes(pod) {
        if RESTRICTED_ALLOWED.iter().any(|k| set(v, k)) {
            continue;
        }
        names.push(name(v).to_string());
        let t = RESTRICTED_NAMED
            .iter()
            .find(|k| set(v, k))
            .copied()
            .unwrap_or("unknown");
        types.insert(t);
    }
    if names.is_empty() {
        return None;
    }
    fail(
        "restricted volume types",
        format!(
            "{} {} {} {} {}",
            plural("volume", "volumes", names.len()),
            join_quote(&names),
            plural("uses", "use", names.len()),
            plural(
                "restricted volume type",
                "restricted volume types",
                types.len()
            ),
            join_quote(&types)
        ),
    )
}

fn run_as_non_root(pod: &Pod<'_>, m: u32) -> Option<Failure> {
    if m >= 35 && pod.user_namespaced() {
        return None;
    }
    let pod_value = pod
        .pod_sc()
        .and_then(|s| s.get("runAsNonRoot"))
        .and_then(Value::as_bool);
    let pod_bad = pod_value == Some(false);
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for c in pod.containers() {
        match sc(c, "/runAsNonRoot").and_then(Value::as_bool) {
            Some(false) => explicit.push(name(c).to_string()),
            Some(true) => {}
            None if pod_value != Some(true) => implicit.push(name(c).to_string()),
            None => {}
        }
    }
    if pod_bad || !explicit.is_empty() {
        return fail(
            "runAsNonRoot != true",
            format!(
                "{} must not set securityContext.runAsNonRoot=false",
                setters(pod_bad, &explicit)
            ),
        );
    }
    if implicit.is_empty() {
        return None;
    }
    fail(
        "runAsNonRoot != true",
        format!(
            "pod or {} must set securityContext.runAsNonRoot=true",
            containers_phrase(&implicit)
        ),
    )
}

fn run_as_user(pod: &Pod<'_>, m: u32) -> Option<Failure> {
    if m >= 35 && pod.user_namespaced() {
        return None;
    }
    let zero = |v: Option<&Value>| v.and_then(Value::as_i64) == Some(0);
    let pod_bad = zero(pod.pod_sc().and_then(|s| s.get("runAsUser")));
    let bad: Vec<String> = pod
        .containers()
        .filter(|c| zero(sc(c, "/runAsUser")))
        .map(|c| name(c).to_string())
        .collect();
    if !pod_bad && bad.is_empty() {
        return None;
    }
    fail(
        "runAsUser=0",
        format!("{} must not set runAsUser=0", setters(pod_bad, &bad)),
    )
}

fn seccomp_restricted(pod: &Pod<'_>, m: u32) -> Option<Failure> {
    if m >= 25 && pod.is_windows() {
        return None;
    }
    let mut types = BTreeSet::new();
    let mut pod_bad = false;
    let mut pod_ok = false;
    if let Some(t) = pod.pod_sc().and_then(seccomp_type) {
        if seccomp_allowed(t) {
            pod_ok = true;
        } else {
            pod_bad = true;
            types.insert(t.to_string());
        }
    }
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for c in pod.containers() {
        match c.get("securityContext").and_then(seccomp_type) {
            Some(t) if !seccomp_allowed(t) => {
                explicit.push(name(c).to_string());
                types.insert(t.to_string());
            }
            Some(_) => {}
            None if !pod_ok => implicit.push(name(c).to_string()),
            None => {}
        }
    }
    if pod_bad || !explicit.is_empty() {
        return fail(
            "seccompProfile",
            format!(
                "{} must not set securityContext.seccompProfile.type to {}",
                setters(pod_bad, &explicit),
                join_quote(&types)
            ),
        );
    }
    if implicit.is_empty() {
        return None;
    }
    fail(
        "seccompProfile",
        format!(
            "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
            containers_phrase(&implicit)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::super::policy::Version;
    use super::*;
    use serde_json::json;

    fn restricted() -> LevelVersion {
        LevelVersion {
            level: Level::Restricted,
            version: Version::Latest,
        }
    }

    fn baseline() -> LevelVersion {
        LevelVersion {
            level: Level::Baseline,
            version: Version::Latest,
        }
    }

    #[test]
    fn a_plain_container_breaks_four_restricted_rules_and_no_baseline_rule() {
        let spec = json!({"containers": [{"name": "app", "image": "nginx"}]});
        assert!(evaluate(baseline(), &json!({}), &spec).is_empty());
        let f = evaluate(restricted(), &json!({}), &spec);
        assert_eq!(
            forbidden_detail(&f),
            "allowPrivilegeEscalation != false (container \"app\" must set securityContext.allowPrivilegeEscalation=false), \
             unrestricted capabilities (container \"app\" must set securityContext.capabilities.drop=[\"ALL\"]), \
             runAsNonRoot != true (pod or container \"app\" must set securityContext.runAsNonRoot=true), \
             seccompProfile (pod or container \"app\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
        );
    }

    #[test]
    fn a_hardened_pod_passes_restricted() {
        let spec = json!({
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "app", "image": "nginx", "securityContext": {
                "allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}],
            "volumes": [{"name": "d", "emptyDir": {}}],
        });
        assert_eq!(evaluate(restricted(), &json!({}), &spec), vec![]);
    }

    #[test]
    fn host_ports_sort_as_strings_and_containers_keep_their_order() {
        let spec = json!({"containers": [
            {"name": "b", "ports": [{"containerPort": 1, "hostPort": 80}]},
            {"name": "a", "ports": [{"containerPort": 1, "hostPort": 443}, {"containerPort": 2, "hostPort": 9}]},
        ]});
        let f = evaluate(baseline(), &json!({}), &spec);
        assert_eq!(
            forbidden_detail(&f),
            "hostPort (containers \"b\", \"a\" use hostPorts 443, 80, 9)"
        );
    }

    #[test]
    fn baseline_names_host_namespaces_privileged_and_host_paths() {
        let spec = json!({
            "hostPID": true, "hostNetwork": true,
            "containers": [{"name": "c", "securityContext": {"privileged": true,
                "capabilities": {"add": ["SYS_ADMIN", "CHOWN", "NET_RAW"]}}}],
            "volumes": [{"name": "h", "hostPath": {"path": "/"}}, {"name": "n", "nfs": {"server": "x", "path": "/"}}],
            "securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}, {"name": "net.ipv4.tcp_rmem", "value": "1"}]},
        });
        let f = evaluate(baseline(), &json!({}), &spec);
        assert_eq!(
            forbidden_detail(&f),
            "non-default capabilities (container \"c\" must not include \"NET_RAW\", \"SYS_ADMIN\" in securityContext.capabilities.add), \
             host namespaces (hostNetwork=true, hostPID=true), hostPath volumes (volume \"h\"), \
             privileged (container \"c\" must not set securityContext.privileged=true), \
             forbidden sysctls (kernel.msgmax)"
        );
        // Restricted replaces the host-path and capability checks with its own.
        let f = evaluate(restricted(), &json!({}), &spec);
        let reasons = forbidden_reason(&f);
        assert_eq!(
            reasons,
            "host namespaces, privileged, forbidden sysctls, allowPrivilegeEscalation != false, \
             unrestricted capabilities, restricted volume types, runAsNonRoot != true, seccompProfile"
        );
        assert!(forbidden_detail(&f).contains(
            "restricted volume types (volumes \"h\", \"n\" use restricted volume types \"hostPath\", \"nfs\")"
        ));
        // Before v1.32 the TCP buffer sysctls were not allowed either.
        let old = LevelVersion {
            level: Level::Baseline,
            version: Version::Minor(31),
        };
        assert!(
            forbidden_detail(&evaluate(old, &json!({}), &spec))
                .contains("forbidden sysctls (kernel.msgmax, net.ipv4.tcp_rmem)")
        );
    }

    #[test]
    fn explicit_setters_win_over_implicit_ones() {
        let spec = json!({
            "securityContext": {"runAsNonRoot": false, "runAsUser": 0, "seccompProfile": {"type": "Unconfined"}},
            "containers": [{"name": "a"}, {"name": "b", "securityContext": {"runAsNonRoot": false, "runAsUser": 0}}],
        });
        let f = evaluate(restricted(), &json!({}), &spec);
        let detail = forbidden_detail(&f);
        assert!(detail.contains("runAsNonRoot != true (pod and container \"b\" must not set securityContext.runAsNonRoot=false)"), "{detail}");
        assert!(detail.contains("runAsUser=0 (pod and container \"b\" must not set runAsUser=0)"));
        assert!(detail.contains("seccompProfile (pod must not set securityContext.seccompProfile.type to \"Unconfined\")"));
        // A user-namespaced pod may run as root (v1.35+).
        let mut spec = spec;
        spec["hostUsers"] = json!(false);
        let detail = forbidden_detail(&evaluate(restricted(), &json!({}), &spec));
        assert!(!detail.contains("runAsUser"), "{detail}");
        assert!(!detail.contains("runAsNonRoot"), "{detail}");
    }

    #[test]
    fn app_armor_annotations_and_fields_are_both_named() {
        let meta = json!({"annotations": {
            "container.apparmor.security.beta.kubernetes.io/e": "unconfined",
            "container.apparmor.security.beta.kubernetes.io/f": "runtime/default"}});
        let spec = json!({
            "securityContext": {"appArmorProfile": {"type": "Unconfined"}},
            "containers": [{"name": "foo", "securityContext": {"appArmorProfile": {"type": "Unconfined"}}}],
        });
        let f = evaluate(baseline(), &meta, &spec);
        assert_eq!(
            forbidden_detail(&f),
            "forbidden AppArmor profiles (pod and container \"foo\" and annotation must not set AppArmor profile type to \
             \"Unconfined\", \"container.apparmor.security.beta.kubernetes.io/e=\"unconfined\"\")"
        );
    }

    #[test]
    fn probe_hosts_and_se_linux_options() {
        let spec = json!({
            "securityContext": {"seLinuxOptions": {"type": "foo", "user": "u"}},
            "containers": [
                {"name": "z", "livenessProbe": {"httpGet": {"host": "localhost", "port": 1}}},
                {"name": "a", "lifecycle": {"preStop": {"tcpSocket": {"host": "::1", "port": 1}}},
                 "securityContext": {"seLinuxOptions": {"type": "container_engine_t"}}},
            ],
        });
        let f = evaluate(baseline(), &json!({}), &spec);
        assert_eq!(
            forbidden_detail(&f),
            "probe or lifecycle host (containers \"a\", \"z\" use probe or lifecycle hosts \"::1\", \"localhost\"), \
             seLinuxOptions (pod set forbidden securityContext.seLinuxOptions: type \"foo\"; user may not be set)"
        );
        // container_engine_t is allowed from v1.31; probe hosts are checked from v1.34.
        let v30 = LevelVersion {
            level: Level::Baseline,
            version: Version::Minor(30),
        };
        assert_eq!(
            forbidden_detail(&evaluate(v30, &json!({}), &spec)),
            "seLinuxOptions (pod and container \"a\" set forbidden securityContext.seLinuxOptions: \
             types \"container_engine_t\", \"foo\"; user may not be set)"
        );
    }

    #[test]
    fn windows_pods_skip_the_linux_only_rules() {
        let spec = json!({"os": {"name": "windows"},
            "securityContext": {"runAsNonRoot": true},
            "containers": [{"name": "w"}]});
        assert_eq!(evaluate(restricted(), &json!({}), &spec), vec![]);
    }

    #[test]
    fn go_quote_escapes_as_go() {
        assert_eq!(go_quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
    }
}
