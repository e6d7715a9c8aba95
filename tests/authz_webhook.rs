//! The webhook authorizer and `--authorization-config` against the real binary, with a real
//! HTTPS webhook server (`support::hook`) answering SubjectAccessReviews by user: the review
//! kapi sends (v1 and v1beta1), allow / deny / no opinion in a chain with RBAC, the cache,
//! match conditions that skip the webhook, failure policies when the webhook is down, reload
//! of the configuration file (a bad one keeps the chain), the metrics, and configurations
//! refused at start with upstream's messages. Test users are `--token-auth-file` tokens.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::client::Client;
use support::hook::Hook;
use support::kapi::{Kapi, free_port};

/// How long a change (an RBAC binding, a rewritten configuration file) may take to be in force.
const PROPAGATION: Duration = Duration::from_secs(30);

const TOKENS: &str = "allowed-token,allowed-user,uid-allowed,\"team-a,team-b\"\n\
                      denied-token,denied-user,uid-denied,\n\
                      rbac-token,rbac-user,uid-rbac,\n\
                      nobody-token,nobody,uid-nobody,\n\
                      flaky-token,flaky-user,uid-flaky,\n\
                      refused-token,refused-user,uid-refused,\n";

/// The test's webhook: allows `allowed-user`, denies `denied-user`, has no opinion on anyone
/// else; answers in the version it was asked in.
fn answer(_path: &str, review: &Value) -> Value {
    let status = match review["spec"]["user"].as_str().unwrap_or("") {
        "allowed-user" => json!({"allowed": true, "reason": "allowed by the hook"}),
        "denied-user" => json!({"allowed": false, "denied": true, "reason": "denied by the hook"}),
        // A webhook in trouble (retried) and one refusing the call (not retried).
        "flaky-user" => return json!({"httpStatus": 500}),
        "refused-user" => return json!({"httpStatus": 400}),
        _ => json!({"allowed": false, "reason": "the hook has no opinion"}),
    };
    json!({"apiVersion": review["apiVersion"], "kind": "SubjectAccessReview", "status": status})
}

/// A kubeconfig reaching the hook at `port` (its CA trusted), with a bearer token.
fn kubeconfig(dir: &Path, name: &str, ca_pem: &str, port: u16) -> String {
    let ca = dir.join("hook-ca.crt");
    std::fs::write(&ca, ca_pem).unwrap();
    let file = dir.join(name);
    std::fs::write(
        &file,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: hook\n  cluster:\n    server: https://127.0.0.1:{port}/authorize\n    certificate-authority: {}\nusers:\n- name: kapi\n  user:\n    token: kapi-to-hook\ncontexts:\n- name: hook\n  context: {{cluster: hook, user: kapi}}\ncurrent-context: hook\n",
            ca.display()
        ),
    )
    .unwrap();
    file.display().to_string()
}

/// An AuthorizationConfiguration: the webhook (skipping kube-system), then Node and RBAC.
fn authorization_config(kubeconfig: &str, failure_policy: &str) -> String {
    format!(
        r#"apiVersion: apiserver.config.k8s.io/v1
kind: AuthorizationConfiguration
authorizers:
- type: Webhook
  name: hook
  webhook:
    timeout: 5s
    subjectAccessReviewVersion: v1
    matchConditionSubjectAccessReviewVersion: v1
    failurePolicy: {failure_policy}
    connectionInfo:
      type: KubeConfigFile
      kubeConfigFile: {kubeconfig}
    matchConditions:
    - expression: "!has(request.resourceAttributes) || request.resourceAttributes.namespace != 'kube-system'"
- type: Node
  name: node
- type: RBAC
  name: rbac
"#
    )
}

/// Writes `file` whole at once (a rename), so that kapi never reads half of it.
fn replace(file: &Path, text: &str) {
    let next = file.with_extension("next");
    std::fs::write(&next, text).unwrap();
    std::fs::rename(&next, file).unwrap();
}

/// The value of the series `series` (name and labels) in a `/metrics` text; 0 when absent.
fn counted(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// A request with a bearer token: its status and body.
fn call(k: &Kapi, token: &str, path: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-k",
            "--max-time",
            "60",
            "-w",
            "\n%{http_code}",
            "-H",
        ])
        .arg(format!("Authorization: Bearer {token}"))
        .arg(format!("https://127.0.0.1:{}{path}", k.port))
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// Repeats `call` until its status is `code` (a change in force), or fails after PROPAGATION.
fn until(k: &Kapi, token: &str, path: &str, code: u16) -> String {
    let deadline = Instant::now() + PROPAGATION;
    loop {
        let (got, body) = call(k, token, path);
        if got == code {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{token} {path}: {got} {body}, not {code}; log: {}",
            k.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

#[test]
fn the_configured_webhook_decides_in_the_chain_and_follows_its_file() {
    let hook = Hook::start(answer);
    let files = tempfile::tempdir().unwrap();
    let dir = files.path();
    std::fs::write(dir.join("tokens.csv"), TOKENS).unwrap();
    let hook_kubeconfig = kubeconfig(dir, "hook.kubeconfig", &hook.ca_pem, hook.port);
    let config = dir.join("authz.yaml");
    std::fs::write(&config, authorization_config(&hook_kubeconfig, "NoOpinion")).unwrap();
    let k = Kapi::start(
        &[
            "--token-auth-file",
            &dir.join("tokens.csv").display().to_string(),
            "--authorization-config",
            &config.display().to_string(),
        ],
        &[],
    );
    let admin = Client::new(&k);

    // Allowed by the webhook; the review carries the request's attributes and the user.
    let (code, body) = call(&k, "allowed-token", CONFIGMAPS);
    assert_eq!(code, 200, "{body}");
    let reviews = hook.reviews();
    let review = reviews
        .iter()
        .find(|r| r["spec"]["user"] == "allowed-user")
        .expect("a review for allowed-user");
    assert_eq!(review["apiVersion"], "authorization.k8s.io/v1");
    assert_eq!(review["kind"], "SubjectAccessReview");
    assert_eq!(
        review["spec"]["resourceAttributes"],
        json!({"namespace": "default", "verb": "list", "version": "v1", "resource": "configmaps"})
    );
    assert_eq!(review["spec"]["uid"], "uid-allowed");
    assert_eq!(
        review["spec"]["groups"],
        json!(["team-a", "team-b", "system:authenticated"])
    );

    // A second identical request is answered from the cache.
    let asked = hook.reviews().len();
    let (code, _) = call(&k, "allowed-token", CONFIGMAPS);
    assert_eq!(code, 200);
    assert_eq!(hook.reviews().len(), asked, "the cached answer is used");

    // A non-resource request is asked about as a path.
    let (code, _) = call(&k, "allowed-token", "/version");
    assert_eq!(code, 200);
    assert!(
        hook.reviews()
            .iter()
            .any(|r| r["spec"]["nonResourceAttributes"]
                == json!({"path": "/version", "verb": "get"})),
        "{:?}",
        hook.reviews()
    );

    // RBAC would allow denied-user and rbac-user to read configmaps; the webhook comes first.
    let out = k.kubectl(&[
        "create",
        "clusterrolebinding",
        "viewers",
        "--clusterrole=view",
        "--user=denied-user",
        "--user=rbac-user",
    ]);
    assert!(out.status.success(), "{out:?}");
    // No opinion from the webhook: RBAC decides.
    until(&k, "rbac-token", CONFIGMAPS, 200);
    // A denial stops the chain, with the webhook's reason.
    let (code, body) = call(&k, "denied-token", CONFIGMAPS);
    assert_eq!(code, 403, "{body}");
    let status: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        status["message"],
        "configmaps is forbidden: User \"denied-user\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"default\": denied by the hook"
    );
    // Nothing allows: the webhook's reason is the 403's.
    let (code, body) = call(&k, "nobody-token", CONFIGMAPS);
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("the hook has no opinion"), "{body}");

    // The match condition keeps kube-system requests from the webhook: RBAC allows
    // denied-user there, and the webhook is not asked.
    let asked = hook.reviews().len();
    let (code, body) = call(
        &k,
        "denied-token",
        "/api/v1/namespaces/kube-system/configmaps",
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(hook.reviews().len(), asked, "the webhook was skipped");

    // SubjectAccessReviews ask the same chain.
    let (code, sar) = admin.call(
        "POST",
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        "application/json",
        Some(
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": "denied-user", "resourceAttributes":
                {"namespace": "default", "verb": "get", "resource": "secrets"}}}),
        ),
    );
    assert_eq!(code, 201, "{sar}");
    assert_eq!(sar["status"]["denied"], true, "{sar}");
    assert_eq!(sar["status"]["reason"], "denied by the hook");

    // The decisions are counted by authorizer.
    let (_, metrics) = admin.text("GET", "/metrics");
    for line in [
        r#"apiserver_authorization_decisions_total{decision="allowed",name="hook",type="Webhook"}"#,
        r#"apiserver_authorization_decisions_total{decision="denied",name="hook",type="Webhook"}"#,
        r#"apiserver_authorization_decisions_total{decision="allowed",name="rbac",type="RBAC"}"#,
        r#"apiserver_authorization_webhook_evaluations_total{name="hook",result="success"}"#,
        r#"apiserver_authorization_webhook_duration_seconds_count{name="hook",result="success"}"#,
        r#"apiserver_authorization_match_condition_exclusions_total{name="hook",type="Webhook"}"#,
    ] {
        assert!(counted(&metrics, line) >= 1.0, "{line} in {metrics}");
    }

    // Reload: the webhook moves to a port where nothing listens, failing closed. Deny stops
    // the chain, and the failure makes the request a 500 (upstream's), even where RBAC allows.
    let down = kubeconfig(dir, "down.kubeconfig", &hook.ca_pem, free_port());
    replace(&config, &authorization_config(&down, "Deny"));
    let body = until(&k, "rbac-token", CONFIGMAPS, 500);
    assert!(
        body.starts_with(&format!("Internal Server Error: \"{CONFIGMAPS}\": ")),
        "{body}"
    );
    // The new chain has a new cache: the allowed user is not let in by the old answer.
    let (code, _) = call(&k, "allowed-token", CONFIGMAPS);
    assert_eq!(code, 500);
    // Failing open (no opinion): RBAC decides; a request nothing allows is still a 500.
    replace(&config, &authorization_config(&down, "NoOpinion"));
    until(&k, "rbac-token", CONFIGMAPS, 200);
    let (code, body) = call(&k, "nobody-token", CONFIGMAPS);
    assert_eq!(code, 500, "{body}");
    // A file that drops the types the server started with is refused and logged; the chain
    // in force stays.
    let webhook_only = authorization_config(&hook_kubeconfig, "NoOpinion");
    let webhook_only = &webhook_only[..webhook_only.find("- type: Node").unwrap()];
    replace(&config, webhook_only);
    let deadline = Instant::now() + PROPAGATION;
    while !k.log().contains("keeping the previous configuration") {
        assert!(
            Instant::now() < deadline,
            "no reload failure logged: {}",
            k.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        k.log().contains("missing required types: [Node RBAC]"),
        "{}",
        k.log()
    );
    let (code, _) = call(&k, "rbac-token", CONFIGMAPS);
    assert_eq!(code, 200);
    let (_, metrics) = admin.text("GET", "/metrics");
    for line in [
        r#"apiserver_authorization_config_controller_automatic_reloads_total{status="success"} 2"#,
        r#"apiserver_authorization_config_controller_automatic_reloads_total{status="failure"} 1"#,
        r#"apiserver_authorization_config_controller_automatic_reload_last_timestamp_seconds{status="failure"}"#,
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
}

#[test]
fn the_legacy_webhook_flags_send_v1beta1_reviews() {
    let hook = Hook::start(answer);
    let files = tempfile::tempdir().unwrap();
    let dir = files.path();
    std::fs::write(dir.join("tokens.csv"), TOKENS).unwrap();
    let hook_kubeconfig = kubeconfig(dir, "hook.kubeconfig", &hook.ca_pem, hook.port);
    let k = Kapi::start(
        &[
            "--token-auth-file",
            &dir.join("tokens.csv").display().to_string(),
            "--authorization-mode=Webhook,RBAC",
            "--authorization-webhook-config-file",
            &hook_kubeconfig,
            "--authorization-webhook-version=v1beta1",
            "--authorization-webhook-cache-authorized-ttl=0s",
        ],
        &[],
    );
    let (code, body) = call(&k, "allowed-token", "/api/v1/namespaces/default/secrets/s1");
    // Allowed by the webhook; the secret does not exist.
    assert_eq!(code, 404, "{body}");
    let review = hook
        .reviews()
        .into_iter()
        .find(|r| r["spec"]["user"] == "allowed-user")
        .expect("a review");
    assert_eq!(review["apiVersion"], "authorization.k8s.io/v1beta1");
    assert_eq!(
        review["spec"]["group"],
        json!(["team-a", "team-b", "system:authenticated"])
    );
    assert!(review["spec"].get("groups").is_none(), "{review}");
    assert_eq!(review["spec"]["resourceAttributes"]["name"], "s1");
    assert_eq!(review["spec"]["resourceAttributes"]["verb"], "get");
    // A list's selectors are in the review, as requirements.
    let (code, body) = call(
        &k,
        "allowed-token",
        "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb&fieldSelector=spec.nodeName%21%3Dn1",
    );
    assert_eq!(code, 200, "{body}");
    let review = hook
        .reviews()
        .into_iter()
        .find(|r| r["spec"]["resourceAttributes"]["resource"] == "pods")
        .expect("a review of the pod list");
    assert_eq!(
        review["spec"]["resourceAttributes"]["labelSelector"],
        json!({"requirements": [{"key": "app", "operator": "In", "values": ["web"]}]})
    );
    assert_eq!(
        review["spec"]["resourceAttributes"]["fieldSelector"],
        json!({"requirements": [{"key": "spec.nodeName", "operator": "NotIn", "values": ["n1"]}]})
    );
    // An authorized TTL of 0: allowed answers are not cached.
    let asked = hook.reviews().len();
    call(&k, "allowed-token", "/api/v1/namespaces/default/secrets/s1");
    assert_eq!(hook.reviews().len(), asked + 1);
    // A 500 is retried with back-off (5 tries in all), a 400 is not; then the failure (no
    // opinion, as the legacy flags' webhook fails open) leaves the request to RBAC, which has
    // no rule for these users: upstream's 500.
    let tries = |user: &str| {
        hook.reviews()
            .iter()
            .filter(|r| r["spec"]["user"] == user)
            .count()
    };
    let (code, body) = call(&k, "flaky-token", "/api/v1/namespaces/default/secrets");
    assert_eq!(code, 500, "{body}");
    assert!(body.contains("status code 500"), "{body}");
    assert_eq!(tries("flaky-user"), 5);
    let (code, _) = call(&k, "refused-token", "/api/v1/namespaces/default/secrets");
    assert_eq!(code, 500);
    assert_eq!(tries("refused-user"), 1);
    // The flags' webhook is counted as upstream names it.
    let (_, metrics) = Client::new(&k).text("GET", "/metrics");
    let line = r#"apiserver_authorization_decisions_total{decision="allowed",name="default",type="Webhook"}"#;
    assert!(counted(&metrics, line) >= 1.0, "{line} in {metrics}");
    // Denied answers are (30s by default).
    call(&k, "denied-token", "/api/v1/namespaces/default/secrets/s1");
    let asked = hook.reviews().len();
    let (code, _) = call(&k, "denied-token", "/api/v1/namespaces/default/secrets/s1");
    assert_eq!(code, 403);
    assert_eq!(hook.reviews().len(), asked);
}

/// kapi run with `args` must refuse to start, saying `says`.
fn refused(args: &[&str], says: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kapi"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--secure-port", &free_port().to_string()])
        .args(args)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{args:?} started");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(says), "{args:?}: {err}");
}

#[test]
fn bad_authorization_configurations_are_refused_at_start() {
    let files = tempfile::tempdir().unwrap();
    let dir = files.path();
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthorizationConfiguration\nauthorizers:\n- type: Webhook\n  name: hook\n  webhook:\n    timeout: 45s\n    subjectAccessReviewVersion: v1\n    failurePolicy: Sometimes\n    connectionInfo: {type: KubeConfigFile, kubeConfigFile: relative.kubeconfig}\n- {type: RBAC, name: hook}\n",
    )
    .unwrap();
    let bad = bad.display().to_string();
    refused(
        &["--authorization-config", &bad],
        r#"authorizers[0].timeout: Invalid value: "45s": must be > 0s and <= 30s"#,
    );
    refused(
        &["--authorization-config", &bad],
        r#"authorizers[0].failurePolicy: Unsupported value: "Sometimes": supported values: "NoOpinion", "Deny""#,
    );
    refused(
        &["--authorization-config", &bad],
        r#"authorizers[0].connectionInfo.kubeConfigFile: Invalid value: "relative.kubeconfig": must be an absolute path"#,
    );
    refused(
        &["--authorization-config", &bad],
        r#"authorizers[1].name: Duplicate value: "hook""#,
    );
    let good = dir.join("good.yaml");
    std::fs::write(
        &good,
        "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthorizationConfiguration\nauthorizers:\n- {type: RBAC, name: rbac}\n",
    )
    .unwrap();
    refused(
        &[
            "--authorization-config",
            &good.display().to_string(),
            "--authorization-mode=RBAC",
        ],
        "--authorization-config can not be specified when --authorization-mode or --authorization-webhook-* flags are defined",
    );
    refused(
        &["--authorization-mode=Node,Webhook"],
        "authorization-mode Webhook's authorization config file not passed",
    );
    refused(
        &[
            "--authorization-mode=RBAC,Webhook",
            "--authorization-webhook-config-file",
            &bad,
            "--authorization-webhook-version=v2",
        ],
        r#"unsupported webhook authorizer version "v2", supported versions are "v1", "v1beta1""#,
    );
}
