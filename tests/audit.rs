//! Auditing (`--audit-policy-file`, `--audit-log-*`) driven by kubectl and curl against the real
//! binary: the log's events for get, list, create, delete and watch (levels, stages, objectRef,
//! user, codes, objects), requests the policy leaves out, the `Audit-Id` header, the legacy
//! format, and rotation by size keeping `--audit-log-maxbackup` backups.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::kapi::Kapi;

/// How long the writer thread may take to append an event (shared, busy machine).
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

const POLICY: &str = r#"
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: None
  nonResourceURLs: ["/readyz*", "/healthz*", "/livez*", "/version", "/api", "/apis*", "/openapi*"]
- level: None
  resources:
  - group: ""
    resources: ["events"]
- level: RequestResponse
  resources:
  - group: ""
    resources: ["configmaps"]
- level: Request
  resources:
  - group: ""
    resources: ["secrets"]
  omitStages: [RequestReceived]
- level: Metadata
"#;

fn start(policy: &str, extra: &[&str]) -> (Kapi, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let policy_path = dir.path().join("policy.yaml");
    std::fs::write(&policy_path, policy).unwrap();
    let log = dir.path().join("logs").join("audit.log");
    let mut args = vec![
        "--audit-policy-file".to_string(),
        policy_path.display().to_string(),
        "--audit-log-path".to_string(),
        log.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    (Kapi::start(&args, &[]), log, dir)
}

/// The logged events of clients' requests (not kapi's own start-up requests as
/// `system:apiserver`, which are audited too, as upstream audits its loopback client).
fn events(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .filter(|e: &Value| !is_loopback(e))
        .collect()
}

fn is_loopback(e: &Value) -> bool {
    e["user"]["username"] == "system:apiserver"
}

/// The events of the requests `matches` picks, once `count` of them are in the log.
fn wait_for(log: &Path, count: usize, matches: impl Fn(&Value) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + WRITE_TIMEOUT;
    loop {
        let found: Vec<Value> = events(log).into_iter().filter(|e| matches(e)).collect();
        if found.len() >= count {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {count} events after {WRITE_TIMEOUT:?}: {found:#?}",
            found.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stages(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["stage"].as_str().unwrap())
        .collect()
}

fn is(verb: &'static str, resource: &'static str) -> impl Fn(&Value) -> bool {
    move |e: &Value| e["verb"] == verb && e["objectRef"]["resource"] == resource
}

#[test]
fn kubectl_requests_are_logged_with_the_policys_levels_and_stages() {
    let (k, log, _dir) = start(POLICY, &[]);
    k.ok(&["create", "configmap", "c1", "--from-literal=key=value1"]);
    k.ok(&["get", "configmap", "c1"]);
    assert!(!k.kubectl(&["get", "configmap", "missing"]).status.success());
    k.ok(&["create", "secret", "generic", "s1", "--from-literal=a=b"]);
    k.ok(&["get", "pods"]);
    // A watch that ends by its timeout.
    let _ = k.kubectl(&["get", "pods", "--watch", "--request-timeout=2s"]);
    k.ok(&["delete", "configmap", "c1"]);

    // create configmap: RequestResponse, both stages, the object in and out.
    let create = wait_for(&log, 2, is("create", "configmaps"));
    assert_eq!(stages(&create), ["RequestReceived", "ResponseComplete"]);
    let done = &create[1];
    assert_eq!(done["kind"], "Event");
    assert_eq!(done["apiVersion"], "audit.k8s.io/v1");
    assert_eq!(done["level"], "RequestResponse");
    assert_eq!(done["auditID"], create[0]["auditID"]);
    assert_eq!(
        done["objectRef"],
        serde_json::json!({"resource": "configmaps", "namespace": "default", "name": "c1", "apiVersion": "v1"})
    );
    assert_eq!(
        done["responseStatus"],
        serde_json::json!({"metadata": {}, "code": 201})
    );
    assert_eq!(done["requestObject"]["data"]["key"], "value1");
    assert_eq!(done["responseObject"]["data"]["key"], "value1");
    assert!(done["responseObject"]["metadata"]["resourceVersion"].is_string());
    assert!(create[0].get("requestObject").is_none());
    assert!(create[0].get("responseStatus").is_none());
    assert_eq!(done["user"]["username"], "kapi-admin");
    let groups = done["user"]["groups"].as_array().unwrap();
    assert!(groups.contains(&Value::from("system:masters")));
    assert_eq!(done["sourceIPs"], serde_json::json!(["127.0.0.1"]));
    assert!(done["userAgent"].as_str().unwrap().starts_with("kubectl/"));
    assert_eq!(
        done["annotations"]["authorization.k8s.io/decision"],
        "allow"
    );
    assert!(
        done["requestReceivedTimestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert!(
        done["stageTimestamp"].as_str().unwrap()
            >= done["requestReceivedTimestamp"].as_str().unwrap()
    );

    // get of a missing object: the failure's status.
    let missing = wait_for(&log, 2, |e| {
        e["verb"] == "get" && e["objectRef"]["name"] == "missing"
    });
    assert_eq!(missing[1]["responseStatus"]["code"], 404);
    assert_eq!(missing[1]["responseStatus"]["reason"], "NotFound");
    assert_eq!(missing[1]["responseStatus"]["status"], "Failure");

    // create secret: Request level, RequestReceived omitted; no response object.
    let secret = wait_for(&log, 1, is("create", "secrets"));
    assert_eq!(stages(&secret), ["ResponseComplete"]);
    assert_eq!(secret[0]["level"], "Request");
    assert_eq!(secret[0]["requestObject"]["kind"], "Secret");
    assert!(secret[0].get("responseObject").is_none());

    // list pods: Metadata, no objects.
    let list = wait_for(&log, 2, is("list", "pods"));
    assert_eq!(list[1]["level"], "Metadata");
    assert_eq!(list[1]["responseStatus"]["code"], 200);
    assert!(list[1].get("responseObject").is_none());
    assert!(
        list[1]["requestURI"]
            .as_str()
            .unwrap()
            .starts_with("/api/v1/namespaces/default/pods")
    );

    // watch: ResponseStarted when it starts, ResponseComplete when it ends.
    let watch = wait_for(&log, 3, is("watch", "pods"));
    assert_eq!(
        stages(&watch),
        ["RequestReceived", "ResponseStarted", "ResponseComplete"]
    );
    assert_eq!(watch[1]["responseStatus"]["code"], 200);
    assert!(watch[2]["stageTimestamp"].as_str() > watch[1]["stageTimestamp"].as_str());

    // delete.
    let delete = wait_for(&log, 2, is("delete", "configmaps"));
    assert_eq!(delete[1]["responseStatus"]["code"], 200);
    assert_eq!(delete[1]["objectRef"]["name"], "c1");

    // Level None: not logged at all.
    let all = events(&log);
    assert!(
        all.iter()
            .all(|e| e["requestURI"] != "/version" && e["requestURI"] != "/readyz")
    );
    assert!(!all.iter().any(|e| {
        e["verb"] == "get"
            && e["requestURI"]
                .as_str()
                .unwrap_or("")
                .starts_with("/version")
    }));
}

#[test]
fn the_audit_id_header_names_the_logged_event() {
    let (k, log, _dir) = start(POLICY, &[]);
    let out = k
        .curl(&["-i"], "/api/v1/namespaces/default/pods")
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
    let id = head
        .lines()
        .find_map(|l| l.strip_prefix("audit-id: "))
        .unwrap_or_else(|| panic!("no Audit-Id header: {head}"))
        .trim()
        .to_string();
    let logged = wait_for(&log, 2, move |e| e["auditID"] == id.as_str());
    assert_eq!(stages(&logged), ["RequestReceived", "ResponseComplete"]);
    assert_eq!(logged[1]["verb"], "list");
    // A request no authenticator accepts: one ResponseStarted event with the 401, no user.
    let out = std::process::Command::new("curl")
        .args(["-sS", "-k", "--max-time", "60"])
        .args(["-H", "Authorization: Bearer not-a-token"])
        .arg(format!("https://127.0.0.1:{}/api/v1/namespaces", k.port))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("Unauthorized"));
    let failed = wait_for(&log, 1, |e| e["responseStatus"]["code"] == 401);
    assert_eq!(stages(&failed), ["ResponseStarted"]);
    assert_eq!(failed[0]["user"], serde_json::json!({}));
    assert_eq!(failed[0]["verb"], "list");
    assert!(
        failed[0]["responseStatus"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Authentication failed, attempted: bearer")
    );
    // A request the policy leaves out (None) is not logged.
    let out = k.curl(&["-i"], "/readyz").output().unwrap();
    let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(head.starts_with("http/"), "{head}");
    // Its response still names its audit ID, as upstream's does.
    assert!(head.lines().any(|l| l.starts_with("audit-id: ")), "{head}");
    std::thread::sleep(Duration::from_millis(500));
    assert!(!events(&log).iter().any(|e| e["requestURI"] == "/readyz"));
}

#[test]
fn rotation_by_maxsize_keeps_maxbackup_backups() {
    let (k, log, _dir) = start(
        POLICY,
        &["--audit-log-maxsize=1", "--audit-log-maxbackup=2"],
    );
    // Each get's event carries the ~200 KB object: 20 of them pass 1 MB several times.
    let data = log.parent().unwrap().parent().unwrap().join("big.txt");
    std::fs::write(&data, "x".repeat(200 * 1024)).unwrap();
    let from_file = format!("--from-file=k={}", data.display());
    k.ok(&["create", "configmap", "big", &from_file]);
    for _ in 0..20 {
        k.ok(&["get", "configmap", "big", "-o", "name"]);
    }
    let dir = log.parent().unwrap();
    let deadline = Instant::now() + WRITE_TIMEOUT;
    loop {
        let gets = events(&log).iter().filter(|e| e["verb"] == "get").count();
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        let backups: Vec<&String> = names.iter().filter(|n| *n != "audit.log").collect();
        // 20 gets (40 events, mostly 200 KB) make at least 4 files' worth: two backups are
        // kept, the older ones removed.
        if backups.len() == 2 && gets > 0 && names.len() == 3 {
            for b in &backups {
                assert!(
                    b.starts_with("audit-")
                        && b.ends_with(".log")
                        && b.len() == "audit-2006-01-02T15-04-05.000.log".len(),
                    "{b}"
                );
                assert!(std::fs::metadata(dir.join(b)).unwrap().len() <= 1024 * 1024);
            }
            break;
        }
        assert!(Instant::now() < deadline, "files: {names:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(std::fs::metadata(&log).unwrap().len() <= 1024 * 1024);
}

#[test]
fn legacy_format_writes_upstreams_text_lines() {
    let (k, log, _dir) = start(
        POLICY,
        &["--audit-log-format=legacy", "--audit-log-mode=batch"],
    );
    k.ok(&["get", "pods"]);
    let deadline = Instant::now() + WRITE_TIMEOUT;
    let line = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(l) = text.lines().find(|l| {
            // kapi's own start-up work (system:apiserver) is audited too.
            l.contains("stage=\"ResponseComplete\"")
                && l.contains("method=\"list\"")
                && l.contains("uri=\"/api/v1/namespaces/default/pods")
        }) {
            break l.to_string();
        }
        assert!(Instant::now() < deadline, "{text}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(line.contains(" AUDIT: id=\""), "{line}");
    assert!(
        line.contains("ip=\"127.0.0.1\" method=\"list\" user=\"kapi-admin\""),
        "{line}"
    );
    assert!(
        line.contains("as=\"<self>\" asgroups=\"<lookup>\""),
        "{line}"
    );
    assert!(
        line.contains("namespace=\"default\" uri=\"/api/v1/namespaces/default/pods?limit=500"),
        "{line}"
    );
    assert!(line.ends_with(" response=\"200\""), "{line}");
    let metrics = k.ok(&["get", "--raw", "/metrics"]);
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("apiserver_audit_event_total ")),
        "no apiserver_audit_event_total"
    );
    assert!(metrics.contains("apiserver_audit_level_total{level=\"Metadata\"}"));
}

#[test]
fn an_invalid_policy_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Everything\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kapi"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--secure-port", &support::kapi::free_port().to_string()])
        .arg("--audit-policy-file")
        .arg(&policy)
        .arg("--audit-log-path")
        .arg(dir.path().join("audit.log"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rules[0].level: Unsupported value: \"Everything\""),
        "{err}"
    );
}

/// What a webhook receiver saw of one POST: its head, its body, and whether the client
/// presented a certificate (TLS only).
type Post = (String, Vec<u8>, bool);

/// Reads one HTTP/1.1 request from `stream` and answers 200.
fn serve_one(stream: &mut (impl std::io::Read + std::io::Write)) -> Option<(String, Vec<u8>)> {
    use std::io::{BufRead, BufReader, Read};
    let mut reader = BufReader::new(&mut *stream);
    let mut head = String::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        head.push_str(&line);
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    drop(reader);
    stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .ok()?;
    let _ = stream.flush();
    Some((head, body))
}

/// An audit webhook on loopback (HTTPS with `tls`): every POST, answered 200. Bounded: at most
/// 1,000 connections, each read with a timeout; it ends when the test drops the receiver.
fn webhook_receiver(
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
) -> (u16, std::sync::mpsc::Receiver<Post>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(1000) {
            let Ok(stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let post = match &tls {
                None => {
                    let mut stream = stream;
                    serve_one(&mut stream).map(|(h, b)| (h, b, false))
                }
                Some(config) => {
                    let conn = rustls::ServerConnection::new(config.clone()).unwrap();
                    let mut tls = rustls::StreamOwned::new(conn, stream);
                    let served = serve_one(&mut tls);
                    let client_cert = tls.conn.peer_certificates().is_some_and(|c| !c.is_empty());
                    tls.conn.send_close_notify();
                    let _ = std::io::Write::flush(&mut tls);
                    served.map(|(h, b)| (h, b, client_cert))
                }
            };
            if let Some(post) = post
                && tx.send(post).is_err()
            {
                return;
            }
        }
    });
    (port, rx)
}

/// The event of the test's own create (kapi's start also creates the default ServiceAccount).
fn is_configmap_create_done(e: &Value) -> bool {
    e["verb"] == "create"
        && e["stage"] == "ResponseComplete"
        && e["objectRef"]["resource"] == "configmaps"
}

/// Starts kapi with the webhook of `kubeconfig` and waits for a create's ResponseComplete.
fn webhook_events(
    kubeconfig: &str,
    posts: &std::sync::mpsc::Receiver<Post>,
) -> Vec<(String, bool, Value)> {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("webhook.kubeconfig");
    std::fs::write(&config, kubeconfig).unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    let k = Kapi::start(
        &[
            "--audit-policy-file",
            policy.to_str().unwrap(),
            "--audit-webhook-config-file",
            config.to_str().unwrap(),
            "--audit-webhook-batch-max-wait=200ms",
        ],
        &[],
    );
    k.ok(&["create", "configmap", "hooked", "--from-literal=a=b"]);
    let deadline = Instant::now() + WRITE_TIMEOUT;
    let mut received: Vec<(String, bool, Value)> = Vec::new();
    while !received.iter().any(|(_, _, e)| is_configmap_create_done(e)) {
        let left = deadline.saturating_duration_since(Instant::now());
        let (head, body, client_cert) = posts
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no create event posted; got {received:#?}\n{}", k.log()));
        let list: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(list["kind"], "EventList");
        assert_eq!(list["apiVersion"], "audit.k8s.io/v1");
        for e in list["items"].as_array().unwrap() {
            if !is_loopback(e) {
                received.push((head.clone(), client_cert, e.clone()));
            }
        }
    }
    received
}

#[test]
fn the_webhook_backend_posts_event_lists() {
    let (port, posts) = webhook_receiver(None);
    let received = webhook_events(
        &format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: sink\n  cluster:\n    server: http://127.0.0.1:{port}/audit\n\
             users:\n- name: kapi\n  user:\n    token: webhook-secret\n\
             contexts:\n- name: default\n  context: {{cluster: sink, user: kapi}}\ncurrent-context: default\n"
        ),
        &posts,
    );
    let (head, _, done) = received
        .iter()
        .find(|(_, _, e)| is_configmap_create_done(e))
        .unwrap();
    assert!(head.starts_with("POST /audit HTTP/1.1\r\n"), "{head}");
    assert!(
        head.contains("Authorization: Bearer webhook-secret\r\n"),
        "{head}"
    );
    assert!(
        head.contains("Content-Type: application/json\r\n"),
        "{head}"
    );
    assert_eq!(done["objectRef"]["name"], "hooked");
    assert_eq!(done["responseStatus"]["code"], 201);
    assert_eq!(done["requestObject"]["data"]["a"], "b");
}

#[test]
fn the_webhook_backend_speaks_tls_with_the_kubeconfigs_ca_and_client_certificate() {
    // A CA, a serving certificate for 127.0.0.1 and a client certificate, as kapi makes them.
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = kapi::pki::ensure(pki_dir.path(), &["127.0.0.1".to_string()]).unwrap();
    let ca = kapi::authn::x509::CaBundle::from_pem_file(&pki.ca_cert).unwrap();
    let tls = kapi::pki::server_tls(&pki.serving_cert, &pki.serving_key, &[&ca]).unwrap();
    let (port, posts) = webhook_receiver(Some(tls));
    let received = webhook_events(
        &format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: sink\n  cluster:\n    server: https://127.0.0.1:{port}/events\n    certificate-authority: {}\n\
             users:\n- name: kapi\n  user:\n    client-certificate: {}\n    client-key: {}\n\
             contexts:\n- name: default\n  context: {{cluster: sink, user: kapi}}\ncurrent-context: default\n",
            pki.ca_cert.display(),
            pki.admin_cert.display(),
            pki.admin_key.display()
        ),
        &posts,
    );
    let (head, client_cert, done) = received
        .iter()
        .find(|(_, _, e)| is_configmap_create_done(e))
        .unwrap();
    assert!(head.starts_with("POST /events HTTP/1.1\r\n"), "{head}");
    assert!(*client_cert, "the client certificate was not presented");
    assert_eq!(done["objectRef"]["name"], "hooked");
}
