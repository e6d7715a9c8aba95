//! Upstream's pod spec defaults (`SetDefaults_PodSpec`, `_Container`, `_Probe`, `_Volume`, … in
//! `pkg/apis/core/v1/defaults.go`), shared by pods and every kind that carries a pod template
//! (workloads, jobs, cron jobs, pod templates). Runs at the defaults stage of the write path,
//! on the JSON object, filling only what the client left out.

use serde_json::{Map, Value, json};

/// File mode upstream gives secret, configMap, downwardAPI and projected volumes (0644).
const DEFAULT_MODE: i64 = 0o644;

/// Returns `m[key]` as an object, inserting `{}` when it is absent or null; None when it holds
/// something else (validation reports that).
pub fn child<'a>(m: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    let v = m.entry(key).or_insert_with(|| json!({}));
    if v.is_null() {
        *v = json!({});
    }
    v.as_object_mut()
}

/// Sets `m[key]` when absent or null (a Go pointer left nil). The value is made only when
/// set: defaults run twice on every write, and most are there already.
pub fn or_set(m: &mut Map<String, Value>, key: &str, value: impl Into<Value>) {
    match m.get(key) {
        None | Some(Value::Null) => {
            m.insert(key.into(), value.into());
        }
        _ => {}
    }
}

/// Sets `m[key]` when absent, null or its type's zero value (a Go string or number left empty).
pub fn or_zero(m: &mut Map<String, Value>, key: &str, value: impl Into<Value>) {
    let zero = match m.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        _ => false,
    };
    if zero {
        m.insert(key.into(), value.into());
    }
}

/// The objects of the list `m[key]`, if it is one.
pub fn items<'a>(
    m: &'a mut Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = &'a mut Map<String, Value>> {
    m.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

/// The object at `m[key]` if present (not inserted).
pub fn existing<'a>(
    m: &'a mut Map<String, Value>,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    m.get_mut(key).and_then(Value::as_object_mut)
}

/// A pod template (`{metadata, spec}`): its spec's defaults.
pub fn default_template(template: &mut Map<String, Value>) {
    if let Some(spec) = existing(template, "spec") {
        default_pod_spec(spec);
    }
}

/// `SetDefaults_PodSpec` and everything below it.
pub fn default_pod_spec(s: &mut Map<String, Value>) {
    or_zero(s, "dnsPolicy", "ClusterFirst");
    or_zero(s, "restartPolicy", "Always");
    or_set(s, "securityContext", json!({}));
    or_set(s, "terminationGracePeriodSeconds", json!(30));
    or_zero(s, "schedulerName", "default-scheduler");
    // The v1 conversion keeps the deprecated serviceAccount field equal to serviceAccountName.
    let sa = s
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    match sa {
        Some(name) => {
            if s.get("serviceAccount").and_then(Value::as_str) != Some(name.as_str()) {
                s.insert("serviceAccount".into(), json!(name));
            }
        }
        None => {
            if let Some(old) = s
                .get("serviceAccount")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
            {
                let old = old.to_string();
                s.insert("serviceAccountName".into(), json!(old));
            }
        }
    }
    let host_network = s.get("hostNetwork") == Some(&json!(true));
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        for c in items(s, list) {
            default_container(c, host_network);
        }
    }
    for v in items(s, "volumes") {
        default_volume(v);
    }
}

/// `SetDefaults_Container` with its probes, lifecycle handlers, ports and env.
fn default_container(c: &mut Map<String, Value>, host_network: bool) {
    let image = c.get("image").and_then(Value::as_str).unwrap_or("");
    let policy = if pulls_always(image) {
        "Always"
    } else {
        "IfNotPresent"
    };
    or_zero(c, "imagePullPolicy", policy);
    or_zero(c, "terminationMessagePath", "/dev/termination-log");
    or_zero(c, "terminationMessagePolicy", "File");
    or_set(c, "resources", json!({}));
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = existing(c, probe) {
            default_probe(p);
        }
    }
    if let Some(lc) = existing(c, "lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = existing(lc, hook) {
                default_handler(h);
            }
        }
    }
    for p in items(c, "ports") {
        or_zero(p, "protocol", "TCP");
        if host_network {
            let port = p.get("containerPort").cloned().unwrap_or(json!(0));
            or_zero(p, "hostPort", port);
        }
    }
    for e in items(c, "env") {
        if let Some(f) = existing(e, "valueFrom").and_then(|vf| existing(vf, "fieldRef")) {
            or_zero(f, "apiVersion", "v1");
        }
    }
}

/// Whether upstream defaults the pull policy to Always: the image is a valid reference that
/// names the tag `latest`, or neither a tag nor a digest. An unparsable reference gets
/// IfNotPresent (upstream's parser returns no tag).
fn pulls_always(image: &str) -> bool {
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    // The tag follows the last ':' after the last '/' (a ':' before it is a registry port).
    let slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[slash..].rfind(':') {
        Some(i) => (&rest[..slash + i], Some(&rest[slash + i + 1..])),
        None => (rest, None),
    };
    if !valid_name(name) || digest.is_some_and(|d| !d.contains(':')) {
        return false;
    }
    match tag {
        Some(t) => valid_tag(t) && t == "latest",
        None => digest.is_none(),
    }
}

/// Image names' longest normalized form (docker reference grammar).
const IMAGE_NAME_MAX: usize = 255;

/// A docker reference name: an optional domain, then lower-case path components.
fn valid_name(name: &str) -> bool {
    let (domain, path) = match name.split_once('/') {
        Some((d, p)) if d.contains(['.', ':']) || d == "localhost" || d.to_lowercase() != d => {
            (Some(d), p)
        }
        _ => (None, name),
    };
    let normalized = match domain {
        Some(d) => d.len() + 1 + path.len(),
        None if path.contains('/') => "docker.io/".len() + path.len(),
        None => "docker.io/library/".len() + path.len(),
    };
    if path.is_empty() || normalized > IMAGE_NAME_MAX {
        return false;
    }
    if let Some(d) = domain {
        let host = d.rsplit_once(':').map_or(d, |(h, port)| {
            if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                ""
            } else {
                h
            }
        });
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !host.split('.').all(label_ok) {
            return false;
        }
    }
    path.split('/').all(valid_component)
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

/// `[\w][\w.-]{0,127}`
fn valid_tag(t: &str) -> bool {
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    !t.is_empty()
        && t.len() <= 128
        && t.bytes().next().is_some_and(word)
        && t.bytes().all(|x| word(x) || x == b'.' || x == b'-')
}

/// `SetDefaults_Probe` and its handler's defaults.
fn default_probe(p: &mut Map<String, Value>) {
    or_zero(p, "timeoutSeconds", json!(1));
    or_zero(p, "periodSeconds", json!(10));
    or_zero(p, "successThreshold", json!(1));
    or_zero(p, "failureThreshold", json!(3));
    default_handler(p);
}

/// HTTPGetAction's path and scheme; a gRPC probe's service (`""`).
fn default_handler(h: &mut Map<String, Value>) {
    if let Some(g) = existing(h, "httpGet") {
        or_zero(g, "path", "/");
        or_zero(g, "scheme", "HTTP");
    }
    if let Some(g) = existing(h, "grpc") {
        or_set(g, "service", "");
    }
}

/// `SetDefaults_Volume` and the defaults of each volume source.
fn default_volume(v: &mut Map<String, Value>) {
    let has_source = v.keys().any(|k| k != "name");
    if !has_source {
        v.insert("emptyDir".into(), json!({}));
    }
    for source in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(s) = existing(v, source) {
            or_set(s, "defaultMode", json!(DEFAULT_MODE));
        }
    }
    if let Some(d) = existing(v, "downwardAPI") {
        default_downward_items(d);
    }
    if let Some(p) = existing(v, "projected") {
        for src in items(p, "sources") {
            if let Some(d) = existing(src, "downwardAPI") {
                default_downward_items(d);
            }
            if let Some(t) = existing(src, "serviceAccountToken") {
                or_set(t, "expirationSeconds", json!(3600));
            }
        }
    }
    if let Some(h) = existing(v, "hostPath") {
        or_set(h, "type", "");
    }
    if let Some(i) = existing(v, "iscsi") {
        or_zero(i, "iscsiInterface", "default");
    }
    if let Some(r) = existing(v, "rbd") {
        or_zero(r, "pool", "rbd");
        or_zero(r, "user", "admin");
        or_zero(r, "keyring", "/etc/ceph/keyring");
    }
    if let Some(a) = existing(v, "azureDisk") {
        or_set(a, "cachingMode", "ReadWrite");
        or_set(a, "fsType", "ext4");
        or_set(a, "readOnly", json!(false));
        or_set(a, "kind", "Shared");
    }
    if let Some(s) = existing(v, "scaleIO") {
        or_zero(s, "storageMode", "ThinProvisioned");
        or_zero(s, "fsType", "xfs");
    }
    if let Some(spec) = existing(v, "ephemeral")
        .and_then(|e| existing(e, "volumeClaimTemplate"))
        .and_then(|t| existing(t, "spec"))
    {
        default_claim_spec(spec);
    }
}

fn default_downward_items(d: &mut Map<String, Value>) {
    for item in items(d, "items") {
        if let Some(f) = existing(item, "fieldRef") {
            or_zero(f, "apiVersion", "v1");
        }
    }
}

/// `SetDefaults_PersistentVolumeClaimSpec`.
pub fn default_claim_spec(spec: &mut Map<String, Value>) {
    or_set(spec, "volumeMode", "Filesystem");
}

/// What `SetDefaults_Pod` adds to the spec's defaults: requests copied from limits, service
/// links on.
pub fn default_pod_extras(s: &mut Map<String, Value>) {
    for list in ["containers", "initContainers"] {
        for c in items(s, list) {
            let Some(res) = existing(c, "resources") else {
                continue;
            };
            let Some(limits) = res.get("limits").and_then(Value::as_object) else {
                continue;
            };
            if limits.is_empty() {
                continue;
            }
            // Only the limits requests lack are copied (defaults run again on a defaulted
            // pod, where nothing is).
            let requests = res.get("requests").and_then(Value::as_object);
            let missing: Vec<(String, Value)> = limits
                .iter()
                .filter(|(k, _)| !requests.is_some_and(|r| r.contains_key(*k)))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if requests.is_some() && missing.is_empty() {
                continue;
            }
            if let Some(req) = child(res, "requests") {
                for (k, v) in missing {
                    req.entry(k).or_insert(v);
                }
            }
        }
    }
    or_set(s, "enableServiceLinks", json!(true));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: Value) -> Map<String, Value> {
        let mut m = v.as_object().cloned().unwrap_or_default();
        default_pod_spec(&mut m);
        m
    }

    #[test]
    fn a_bare_pod_spec_gets_upstreams_defaults() {
        let s = spec(json!({"containers": [{"name": "c", "image": "nginx:1.27"}]}));
        assert_eq!(s["dnsPolicy"], "ClusterFirst");
        assert_eq!(s["restartPolicy"], "Always");
        assert_eq!(s["securityContext"], json!({}));
        assert_eq!(s["terminationGracePeriodSeconds"], 30);
        assert_eq!(s["schedulerName"], "default-scheduler");
        let c = &s["containers"][0];
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(c["terminationMessagePolicy"], "File");
        assert!(s.get("enableServiceLinks").is_none(), "a pod-only default");
    }

    #[test]
    fn pull_policy_follows_the_tag() {
        assert!(pulls_always("busybox"));
        assert!(pulls_always("busybox:latest"));
        assert!(pulls_always("registry:5000/busybox"));
        assert!(!pulls_always("registry:5000/busybox:1.36"));
        assert!(!pulls_always("busybox@sha256:abcd"));
        assert!(!pulls_always(""), "unparsable: no tag");
        assert!(!pulls_always("Invalid_Value!"));
        assert!(!pulls_always(&"x".repeat(300)));
        assert!(pulls_always("Registry.example/team/app"));
    }

    #[test]
    fn probes_ports_env_and_volumes_are_defaulted() {
        let s = spec(json!({
            "containers": [{
                "name": "c", "image": "x",
                "livenessProbe": {"tcpSocket": {"port": 80}},
                "readinessProbe": {"httpGet": {"port": 80}, "periodSeconds": 5},
                "ports": [{"containerPort": 80}],
                "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
            }],
            "volumes": [
                {"name": "a"},
                {"name": "b", "configMap": {"name": "cm"}},
                {"name": "c", "hostPath": {"path": "/x"}},
                {"name": "d", "secret": {"secretName": "s", "defaultMode": 256}}
            ]
        }));
        let c = &s["containers"][0];
        assert_eq!(
            c["livenessProbe"],
            json!({"tcpSocket": {"port": 80}, "timeoutSeconds": 1, "periodSeconds": 10,
                   "successThreshold": 1, "failureThreshold": 3})
        );
        assert_eq!(c["readinessProbe"]["periodSeconds"], 5);
        assert_eq!(c["readinessProbe"]["httpGet"]["scheme"], "HTTP");
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
        assert_eq!(s["volumes"][0]["emptyDir"], json!({}));
        assert_eq!(s["volumes"][1]["configMap"]["defaultMode"], 420);
        assert_eq!(s["volumes"][2]["hostPath"]["type"], "");
        assert_eq!(s["volumes"][3]["secret"]["defaultMode"], 256);
    }

    #[test]
    fn requests_are_copied_from_limits_on_pods() {
        let mut m = json!({"containers": [{"name": "c", "image": "x",
            "resources": {"limits": {"cpu": "1"}, "requests": {"memory": "1Mi"}}}]})
        .as_object()
        .cloned()
        .unwrap_or_default();
        default_pod_extras(&mut m);
        assert_eq!(
            m["containers"][0]["resources"]["requests"],
            json!({"cpu": "1", "memory": "1Mi"})
        );
        assert_eq!(m["enableServiceLinks"], true);
    }
}
