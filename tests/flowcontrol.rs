//! API Priority and Fairness against the real kapi binary: upstream's bootstrap configuration
//! is listed by kubectl, a user's FlowSchema and PriorityLevelConfiguration are honoured while
//! kapi runs (429 with Retry-After once the level's seats are taken, `system:masters` still
//! served), the PF headers name the classification, and the ensurer's rules hold across a
//! restart.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::kapi::Kapi;

/// How long a configuration change may take to be in force before the test gives up (kapi
/// follows it within a second; a busy machine is slower).
const CONFIG_WAIT: Duration = Duration::from_secs(30);

/// upstream 1.36's bootstrap objects (`/registry/flowschemas/*` and
/// `/registry/prioritylevelconfigurations/*` in ../shared/upstream/etcd-layout/etcd-keys-bootstrap.txt).
const FLOW_SCHEMAS: [&str; 11] = [
    "catch-all",
    "exempt",
    "global-default",
    "kube-controller-manager",
    "kube-scheduler",
    "kube-system-service-accounts",
    "probes",
    "service-accounts",
    "system-leader-election",
    "system-node-high",
    "system-nodes",
];
const PRIORITY_LEVELS: [&str; 8] = [
    "catch-all",
    "exempt",
    "global-default",
    "leader-election",
    "node-high",
    "system",
    "workload-high",
    "workload-low",
];

const TINY_LEVEL: &str = r#"
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: PriorityLevelConfiguration
metadata:
  name: tiny
spec:
  type: Limited
  limited:
    nominalConcurrencyShares: 1
    # Neither lends nor borrows: its limit stays at its nominal seats.
    borrowingLimitPercent: 0
    limitResponse:
      type: Reject
---
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: FlowSchema
metadata:
  name: apf-test
spec:
  matchingPrecedence: 50
  priorityLevelConfiguration:
    name: tiny
  distinguisherMethod:
    type: ByUser
  rules:
  - subjects:
    - kind: User
      user:
        name: apf-user
    resourceRules:
    - verbs: ["*"]
      apiGroups: ["*"]
      resources: ["*"]
      namespaces: ["*"]
      clusterScope: true
    nonResourceRules:
    - verbs: ["*"]
      nonResourceURLs: ["*"]
"#;

/// A client certificate for `user` (groups `orgs`) signed by the CA kapi made in its data dir.
fn client_cert(k: &Kapi, user: &str, orgs: &[&str]) -> (PathBuf, PathBuf) {
    let dir = &k.data_dir;
    let key = dir.join(format!("{user}.key"));
    let csr = dir.join(format!("{user}.csr"));
    let crt = dir.join(format!("{user}.crt"));
    let ext = dir.join("client-ext.cnf");
    std::fs::write(&ext, "extendedKeyUsage=clientAuth\n").expect("ext file");
    let subject: String = orgs
        .iter()
        .map(|o| format!("/O={o}"))
        .chain([format!("/CN={user}")])
        .collect();
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    run(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        &subject,
        "-keyout",
        path(&key),
        "-out",
        path(&csr),
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        path(&csr),
        "-CA",
        path(&dir.join("ca.crt")),
        "-CAkey",
        path(&dir.join("ca.key")),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        path(&ext),
        "-out",
        path(&crt),
    ]);
    grant_everything(k, user, orgs);
    (crt, key)
}

/// With RBAC (kapi's default authorization), a test user may do anything only once bound to
/// `cluster-admin`: bound as an administrator would, and in force before the test goes on
/// (asked by a SubjectAccessReview, so the user's own flow sees no extra request).
fn grant_everything(k: &Kapi, user: &str, orgs: &[&str]) {
    let mut args = vec![
        "create".to_string(),
        "clusterrolebinding".into(),
        format!("{user}-everything"),
        "--clusterrole=cluster-admin".into(),
        format!("--user={user}"),
    ];
    args.extend(orgs.iter().map(|o| format!("--group={o}")));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    k.ok(&args);
    let review = format!(
        r#"{{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{{"user":"{user}","resourceAttributes":{{"verb":"create","group":"flowcontrol.apiserver.k8s.io","resource":"flowschemas"}}}}}}"#
    );
    let since = std::time::Instant::now();
    loop {
        let out = k.kubectl_stdin(
            &[
                "create",
                "--validate=false",
                "-f",
                "-",
                "-o",
                "jsonpath={.status.allowed}",
            ],
            &review,
        );
        if String::from_utf8_lossy(&out.stdout) == "true" {
            return;
        }
        assert!(
            since.elapsed() < Duration::from_secs(20),
            "the binding of {user} never in force: {out:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

/// One request as `cert`: (status code, headers, body), by curl (HTTP/2).
fn curl(k: &Kapi, cert: &(PathBuf, PathBuf), url_path: &str) -> (u16, String, String) {
    let out = Command::new("curl")
        .args([
            "-s",
            "-i",
            "--max-time",
            "30",
            "--cacert",
            path(&k.data_dir.join("ca.crt")),
            "--cert",
            path(&cert.0),
            "--key",
            path(&cert.1),
            &format!("https://127.0.0.1:{}{url_path}", k.port),
        ])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, head.to_ascii_lowercase(), body.to_string())
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .map(str::trim)
}

/// A watch whose client reads nothing: once its initial events fill the pipes between kapi and
/// it, the watch is still being set up and holds its seat until the client goes.
fn stalled_watch(k: &Kapi, cert: &(PathBuf, PathBuf), namespace: &str) -> Child {
    stalled(
        k,
        cert,
        &format!("/api/v1/namespaces/{namespace}/configmaps?watch=1"),
    )
}

/// A request whose client reads nothing of its (large) response.
fn stalled(k: &Kapi, cert: &(PathBuf, PathBuf), url_path: &str) -> Child {
    Command::new("curl")
        .args([
            "-s",
            "-N",
            "--http1.1",
            "--max-time",
            "300",
            // Not curl's own user agent: kapi (as upstream) pretty-prints for curl, and
            // writes pretty lists whole instead of streaming them.
            "-A",
            "apf-test",
            "--cacert",
            path(&k.data_dir.join("ca.crt")),
            "--cert",
            path(&cert.0),
            "--key",
            path(&cert.1),
            &format!("https://127.0.0.1:{}{url_path}", k.port),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("curl")
}

/// Enough initial events (12 MB) in namespace `bulk` that a watch of it whose client reads
/// nothing stays in set-up (and enough items, 300, that a list of it is streamed).
fn bulk_configmaps(k: &Kapi) {
    k.ok(&["create", "namespace", "bulk"]);
    let items: Vec<serde_json::Value> = (0..300)
        .map(|i| {
            serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("cm-{i}"), "namespace": "bulk"},
                "data": {"d": "x".repeat(40_000)},
            })
        })
        .collect();
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
    let out = k.kubectl_stdin(
        &["create", "--validate=false", "-f", "-"],
        &list.to_string(),
    );
    assert!(out.status.success(), "{out:?}");
}

/// Applies `yaml` (a level and a FlowSchema `apf-test` for `apf-user`) and waits until the
/// user's requests are classified by it; the FlowSchema's and the level's UIDs.
fn configure(k: &Kapi, user: &(PathBuf, PathBuf), yaml: &str, level: &str) -> (String, String) {
    let out = k.kubectl_stdin(&["apply", "-f", "-"], yaml);
    assert!(out.status.success(), "{out:?}");
    let uid = |kind: &str, name: &str| {
        k.ok(&["get", kind, name, "-o", "jsonpath={.metadata.uid}"])
            .trim()
            .to_string()
    };
    let fs_uid = uid("flowschemas", "apf-test");
    let pl_uid = uid("prioritylevelconfigurations", level);
    wait_for("the user's FlowSchema to be in force", || {
        let (_, head, _) = curl(k, user, "/api/v1/namespaces/default");
        (header(&head, "x-kubernetes-pf-flowschema-uid") == Some(fs_uid.as_str())).then_some(())
    });
    (fs_uid, pl_uid)
}

/// Seats a watch of `bulk` takes while it is set up: upstream's estimator counts a watch as
/// the list it starts with, one seat per 100 objects (300 configmaps: 3).
const BULK_WATCH_SEATS: usize = 3;

/// Takes the seats of `level` with watches that never finish their set-up: as many watches as
/// fit whole in its current limit (all of it when the limit is a multiple of their width).
fn take_every_seat(k: &Kapi, user: &(PathBuf, PathBuf), level: &str) -> Vec<Child> {
    let limit = metric(
        k,
        &format!("apiserver_flowcontrol_current_limit_seats{{priority_level=\"{level}\"}}"),
    )
    .expect("the level's seats") as usize;
    assert!((BULK_WATCH_SEATS..=30).contains(&limit), "{limit}");
    let count = limit / BULK_WATCH_SEATS;
    let watches: Vec<Child> = (0..count).map(|_| stalled_watch(k, user, "bulk")).collect();
    let executing = format!(
        "apiserver_flowcontrol_current_executing_requests{{flow_schema=\"apf-test\",priority_level=\"{level}\"}}"
    );
    wait_for("the stalled watches to hold their seats", || {
        (metric(k, &executing) == Some(count as f64)).then_some(())
    });
    let seats =
        format!("apiserver_flowcontrol_current_executing_seats{{priority_level=\"{level}\"}}");
    assert_eq!(metric(k, &seats), Some((count * BULK_WATCH_SEATS) as f64));
    watches
}

fn metric(k: &Kapi, series: &str) -> Option<f64> {
    let text = k.ok(&["get", "--raw", "/metrics"]);
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
}

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + CONFIG_WAIT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn bootstrap_configuration_is_listed_with_upstreams_names() {
    let k = Kapi::start(&[], &[]);
    let names = |resource: &str| -> Vec<String> {
        let mut v: Vec<String> = k
            .ok(&["get", resource, "-o", "name"])
            .lines()
            .filter_map(|l| l.rsplit('/').next().map(str::to_string))
            .collect();
        v.sort();
        v
    };
    assert_eq!(names("flowschemas"), FLOW_SCHEMAS);
    assert_eq!(names("prioritylevelconfigurations"), PRIORITY_LEVELS);
    let exempt = k.ok(&["get", "flowschema", "exempt", "-o", "json"]);
    let exempt: serde_json::Value = serde_json::from_str(&exempt).expect("JSON");
    assert_eq!(
        exempt["metadata"]["annotations"]["apf.kubernetes.io/autoupdate-spec"],
        "true"
    );
    assert_eq!(exempt["spec"]["matchingPrecedence"], 1);
    assert_eq!(exempt["status"]["conditions"][0]["type"], "Dangling");
    assert_eq!(exempt["status"]["conditions"][0]["status"], "False");
    let (limit, queues) = {
        let plc = k.ok(&[
            "get",
            "prioritylevelconfiguration",
            "workload-low",
            "-o",
            "json",
        ]);
        let plc: serde_json::Value = serde_json::from_str(&plc).expect("JSON");
        (
            plc["spec"]["limited"]["nominalConcurrencyShares"].clone(),
            plc["spec"]["limited"]["limitResponse"]["queuing"]["queues"].clone(),
        )
    };
    assert_eq!((limit, queues), (100.into(), 128.into()));
    // 600 seats (400 + 200) shared by nominalConcurrencyShares: ceil(600 × 100 / 245).
    assert_eq!(
        metric(
            &k,
            "apiserver_flowcontrol_nominal_limit_seats{priority_level=\"workload-low\"}"
        ),
        Some(245.0)
    );
}

#[test]
fn a_users_reject_level_answers_429_once_its_seats_are_taken_while_masters_are_served() {
    let k = Kapi::start(&[], &[]);
    let user = client_cert(&k, "apf-user", &["apf-testers"]);
    // Before any configuration of ours: the user is classified (global-default), PF headers set.
    let (code, head, _) = curl(&k, &user, "/api/v1/namespaces/default");
    assert_eq!(code, 200, "{head}");
    assert!(
        header(&head, "x-kubernetes-pf-flowschema-uid").is_some(),
        "{head}"
    );
    assert!(
        header(&head, "x-kubernetes-pf-prioritylevel-uid").is_some(),
        "{head}"
    );

    let (fs_uid, pl_uid) = configure(&k, &user, TINY_LEVEL, "tiny");
    bulk_configmaps(&k);
    let mut watches = take_every_seat(&k, &user, "tiny");

    // Concurrent requests of the user: all refused at once, as upstream refuses them.
    let answers: Vec<(u16, String, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| curl(&k, &user, "/api/v1/namespaces/default/configmaps")))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("curl thread"))
            .collect()
    });
    for (code, head, body) in &answers {
        assert_eq!(*code, 429, "{head}{body}");
        let retry_after: u32 = header(head, "retry-after")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        assert!((1..=32).contains(&retry_after), "{head}");
        assert_eq!(body, "Too many requests, please try again later.\n");
        assert_eq!(
            header(head, "x-kubernetes-pf-flowschema-uid"),
            Some(fs_uid.trim())
        );
        assert_eq!(
            header(head, "x-kubernetes-pf-prioritylevel-uid"),
            Some(pl_uid.trim())
        );
    }
    // system:masters is exempt: served meanwhile.
    assert!(
        k.ok(&["get", "namespace", "default", "-o", "name"])
            .contains("namespace/default")
    );
    let rejected = metric(
        &k,
        "apiserver_flowcontrol_rejected_requests_total{flow_schema=\"apf-test\",priority_level=\"tiny\",reason=\"concurrency-limit\"}",
    )
    .unwrap_or(0.0);
    assert!(rejected >= 4.0, "{rejected}");

    // The watches' clients go: their seats come back and the user is served again.
    for w in &mut watches {
        let _ = w.kill();
        let _ = w.wait();
    }
    wait_for("the user to be served again", || {
        (curl(&k, &user, "/api/v1/namespaces/default").0 == 200).then_some(())
    });
}

#[test]
fn the_ensurer_restores_mandatory_objects_and_keeps_a_users_suggested_ones() {
    let mut k = Kapi::start(&[], &[]);
    k.ok(&[
        "annotate",
        "--overwrite",
        "flowschemas",
        "global-default",
        "apf.kubernetes.io/autoupdate-spec=false",
    ]);
    k.ok(&[
        "patch",
        "flowschemas",
        "global-default",
        "--type=merge",
        "-p",
        r#"{"spec":{"matchingPrecedence":9800}}"#,
    ]);
    k.ok(&[
        "patch",
        "flowschemas",
        "catch-all",
        "--type=merge",
        "-p",
        r#"{"spec":{"matchingPrecedence":9000}}"#,
    ]);
    k.ok(&["delete", "prioritylevelconfigurations", "workload-high"]);
    // An older server's suggested FlowSchema (1.36 no longer has it), and a user's.
    let older = |name: &str, annotations: &str| {
        format!(
            r#"{{"apiVersion":"flowcontrol.apiserver.k8s.io/v1","kind":"FlowSchema",
            "metadata":{{"name":"{name}","annotations":{{{annotations}}}}},
            "spec":{{"priorityLevelConfiguration":{{"name":"leader-election"}},"matchingPrecedence":200,
            "rules":[{{"subjects":[{{"kind":"Group","group":{{"name":"system:serviceaccounts"}}}}],
            "resourceRules":[{{"verbs":["*"],"apiGroups":["*"],"resources":["*"],"namespaces":["*"]}}]}}]}}}}"#
        )
    };
    let out = k.kubectl_stdin(
        &["create", "-f", "-"],
        &older(
            "workload-leader-election",
            r#""apf.kubernetes.io/autoupdate-spec":"true""#,
        ),
    );
    assert!(out.status.success(), "{out:?}");
    let out = k.kubectl_stdin(&["create", "-f", "-"], &older("mine", ""));
    assert!(out.status.success(), "{out:?}");
    wait_for("the retired bootstrap FlowSchema to be removed", || {
        let names = k.ok(&["get", "flowschemas", "-o", "name"]);
        (!names.contains("/workload-leader-election\n")).then_some(())
    });
    assert!(
        k.ok(&["get", "flowschemas", "-o", "name"])
            .contains("/mine\n")
    );
    k.kill_and_restart();
    let precedence = |name: &str| {
        k.ok(&[
            "get",
            "flowschemas",
            name,
            "-o",
            "jsonpath={.spec.matchingPrecedence}",
        ])
    };
    assert_eq!(
        precedence("global-default"),
        "9800",
        "a user's edit is kept"
    );
    assert_eq!(
        precedence("catch-all"),
        "10000",
        "a mandatory object is restored"
    );
    assert!(
        k.ok(&["get", "prioritylevelconfigurations", "-o", "name"])
            .contains("workload-high"),
        "a deleted suggested object is created again"
    );
}

#[test]
fn without_priority_and_fairness_max_in_flight_answers_429_but_serves_masters() {
    let k = Kapi::start(
        &[
            "--enable-priority-and-fairness=false",
            "--max-requests-inflight=1",
        ],
        &[],
    );
    let user = client_cert(&k, "apf-user", &["apf-testers"]);
    let (code, head, _) = curl(&k, &user, "/api/v1/namespaces/default");
    assert_eq!(code, 200, "{head}");
    assert!(
        header(&head, "x-kubernetes-pf-flowschema-uid").is_none(),
        "{head}"
    );
    bulk_configmaps(&k);
    // A streamed list whose client reads nothing holds the one read-only slot.
    let mut list = stalled(&k, &user, "/api/v1/namespaces/bulk/configmaps");
    let (head, body) = wait_for("the read-only slot to be taken", || {
        let (code, head, body) = curl(&k, &user, "/api/v1/namespaces/default");
        (code == 429).then_some((head, body))
    });
    assert_eq!(header(&head, "retry-after"), Some("1"), "{head}");
    assert_eq!(body, "Too many requests, please try again later.\n");
    // system:masters is served over the limit, as upstream serves it.
    assert!(
        k.ok(&["get", "namespace", "default", "-o", "name"])
            .contains("namespace/default")
    );
    // Watches are not limited by max-in-flight.
    let (code, head, _) = curl(
        &k,
        &user,
        "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1",
    );
    assert_eq!(code, 200, "{head}");
    let _ = list.kill();
    let _ = list.wait();
    wait_for("the slot to come back", || {
        (curl(&k, &user, "/api/v1/namespaces/default").0 == 200).then_some(())
    });
}

const NARROW_QUEUE: &str = r#"
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: PriorityLevelConfiguration
metadata:
  name: narrow
spec:
  type: Limited
  limited:
    nominalConcurrencyShares: 1
    # Neither lends nor borrows: its limit stays at its nominal seats.
    borrowingLimitPercent: 0
    limitResponse:
      type: Queue
      queuing:
        queues: 1
        handSize: 1
        queueLengthLimit: 1
---
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: FlowSchema
metadata:
  name: apf-test
spec:
  matchingPrecedence: 50
  priorityLevelConfiguration:
    name: narrow
  distinguisherMethod:
    type: ByUser
  rules:
  - subjects:
    - kind: User
      user:
        name: apf-user
    resourceRules:
    - verbs: ["*"]
      apiGroups: ["*"]
      resources: ["*"]
      namespaces: ["*"]
      clusterScope: true
    nonResourceRules:
    - verbs: ["*"]
      nonResourceURLs: ["*"]
"#;

#[test]
fn a_queued_request_runs_when_a_seat_frees_and_a_full_queue_is_refused() {
    let k = Kapi::start(&[], &[]);
    let user = client_cert(&k, "apf-user", &["apf-testers"]);
    configure(&k, &user, NARROW_QUEUE, "narrow");
    bulk_configmaps(&k);
    let mut watches = take_every_seat(&k, &user, "narrow");
    std::thread::scope(|s| {
        let queued = s.spawn(|| curl(&k, &user, "/api/v1/namespaces/default"));
        let inqueue = "apiserver_flowcontrol_current_inqueue_requests{flow_schema=\"apf-test\",priority_level=\"narrow\"}";
        wait_for("a request to wait in the queue", || {
            (metric(&k, inqueue) == Some(1.0)).then_some(())
        });
        // The one queue holds one request: the next is refused at once.
        let (code, head, _) = curl(&k, &user, "/api/v1/namespaces/default");
        assert_eq!(code, 429, "{head}");
        assert!(
            metric(
                &k,
                "apiserver_flowcontrol_rejected_requests_total{flow_schema=\"apf-test\",priority_level=\"narrow\",reason=\"queue-full\"}"
            )
            .is_some_and(|n| n >= 1.0)
        );
        // A seat frees (on whichever core that watch ran): the waiting request runs.
        let _ = watches[0].kill();
        let _ = watches[0].wait();
        let (code, head, _) = queued.join().expect("curl thread");
        assert_eq!(code, 200, "{head}");
    });
    for w in &mut watches {
        let _ = w.kill();
        let _ = w.wait();
    }
}

#[test]
fn a_flow_schema_naming_a_missing_level_is_dangling() {
    let k = Kapi::start(&[], &[]);
    let yaml = NARROW_QUEUE
        .split("---")
        .nth(1)
        .expect("the FlowSchema")
        .replace("name: narrow", "name: no-such-level");
    let out = k.kubectl_stdin(&["apply", "-f", "-"], &yaml);
    assert!(out.status.success(), "{out:?}");
    wait_for("the Dangling condition", || {
        let status = k.ok(&[
            "get",
            "flowschemas",
            "apf-test",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Dangling\")].status}",
        ]);
        (status.trim() == "True").then_some(())
    });
}

#[test]
fn a_busy_level_borrows_the_seats_idle_levels_lend() {
    let k = Kapi::start(&[], &[]);
    let user = client_cert(&k, "apf-user", &["apf-testers"]);
    // The same level as TINY_LEVEL, but free to borrow.
    let yaml = TINY_LEVEL.replace("    borrowingLimitPercent: 0\n", "");
    configure(&k, &user, &yaml, "tiny");
    bulk_configmaps(&k);
    let limit = "apiserver_flowcontrol_current_limit_seats{priority_level=\"tiny\"}";
    let before = metric(&k, limit).expect("the level's limit");
    let mut watches = take_every_seat(&k, &user, "tiny");
    // Its demand shows at the next adjustment (every 10 s): room for one more watch.
    let wanted = ((watches.len() + 1) * BULK_WATCH_SEATS) as f64;
    let after = wait_for("the busy level to borrow", || {
        metric(&k, limit).filter(|l| *l >= wanted)
    });
    assert!(after > before, "{before} → {after}");
    watches.push(stalled_watch(&k, &user, "bulk"));
    let executing = "apiserver_flowcontrol_current_executing_requests{flow_schema=\"apf-test\",priority_level=\"tiny\"}";
    wait_for("a watch past the earlier limit to run", || {
        (metric(&k, executing) == Some(watches.len() as f64)).then_some(())
    });
    for w in &mut watches {
        let _ = w.kill();
        let _ = w.wait();
    }
}
