//! Authentication against the real binary: client certificates made with openssl as users make
//! them (including v1 certificates, without extensions), `--token-auth-file`, front-proxy
//! request headers, `--anonymous-auth`, and impersonation. Driven with curl and kubectl.

mod support;

use std::path::Path;
use std::process::Command;

use support::kapi::Kapi;
use support::openssl::{make_ca, sign};

/// A v1 client certificate (`openssl x509 -req` with no extension file), as Go accepts.
fn make_v1_client(dir: &Path, name: &str, subject: &str, ca_crt: &Path, ca_key: &Path) {
    sign(dir, name, subject, ca_crt, ca_key, None);
    let text = Command::new("openssl")
        .current_dir(dir)
        .args(["x509", "-noout", "-text", "-in", &format!("{name}.crt")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("Version: 1"), "not a v1 certificate: {text}");
}

/// curl against kapi with the given credentials (no admin certificate); (HTTP code, body).
fn curl(k: &Kapi, creds: &[&str], path: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "-k", "--max-time", "30", "-w", "\n%{http_code}"])
        .args(creds)
        .arg(format!("https://127.0.0.1:{}{path}", k.port))
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

/// Lets group `devs` and user `carol` read (upstream's `view` role) and waits until the
/// authorizer has the binding (it follows the watch cache).
fn grant_view(k: &Kapi) {
    k.ok(&[
        "create",
        "clusterrolebinding",
        "devs-view",
        "--clusterrole=view",
        "--group=devs",
        "--user=carol",
    ]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let out = k.kubectl(&[
            "auth",
            "can-i",
            "list",
            "configmaps",
            "--as=x",
            "--as-group=devs",
            "--as-group=system:authenticated",
        ]);
        if String::from_utf8_lossy(&out.stdout).trim() == "yes" {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the binding never took effect: {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

fn cert_args(dir: &Path, name: &str) -> Vec<String> {
    vec![
        "--cert".into(),
        dir.join(format!("{name}.crt")).display().to_string(),
        "--key".into(),
        dir.join(format!("{name}.key")).display().to_string(),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn client_certificates_tokens_and_front_proxy_headers() {
    let files = tempfile::tempdir().unwrap();
    let dir = files.path();
    make_ca(dir, "proxy-ca");
    make_ca(dir, "other-ca");
    std::fs::write(
        dir.join("tokens.csv"),
        "s3cret-token,tina,uid-tina,\"devs,ops\"\n",
    )
    .unwrap();
    let token_file = dir.join("tokens.csv").display().to_string();
    let proxy_ca = dir.join("proxy-ca.crt").display().to_string();
    let k = Kapi::start(
        &[
            "--token-auth-file",
            &token_file,
            "--requestheader-client-ca-file",
            &proxy_ca,
            "--requestheader-allowed-names",
            "front-proxy",
            "--requestheader-username-headers",
            "X-Remote-User",
            "--requestheader-group-headers",
            "X-Remote-Group",
            "--requestheader-extra-headers-prefix",
            "X-Remote-Extra-",
        ],
        &[],
    );
    let kapi_ca = k.data_dir.join("ca.crt");
    let kapi_key = k.data_dir.join("ca.key");
    assert!(kapi_ca.exists() && kapi_key.exists(), "kapi's generated CA");
    grant_view(&k);

    // A v1 certificate from kapi's CA authenticates its CN.
    make_v1_client(dir, "alice", "/CN=alice/O=devs", &kapi_ca, &kapi_key);
    let alice = cert_args(dir, "alice");
    let (code, body) = curl(&k, &strs(&alice), "/api/v1/namespaces/default/configmaps");
    assert_eq!(code, 200, "{body}");
    // The same subject from a CA kapi does not trust: 401, as upstream (not a TLS failure).
    make_v1_client(
        dir,
        "mallory",
        "/CN=alice/O=system:masters",
        &dir.join("other-ca.crt"),
        &dir.join("other-ca.key"),
    );
    let mallory = cert_args(dir, "mallory");
    let (code, body) = curl(&k, &strs(&mallory), "/api/v1/namespaces");
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("\"reason\": \"Unauthorized\""), "{body}");

    // Static tokens.
    let (code, body) = curl(
        &k,
        &["-H", "Authorization: Bearer s3cret-token"],
        "/api/v1/namespaces",
    );
    assert_eq!(code, 200, "{body}");
    let (code, _) = curl(
        &k,
        &["-H", "Authorization: Bearer wrong"],
        "/api/v1/namespaces",
    );
    assert_eq!(code, 401);
    // kubectl with the token.
    let out = Command::new("kubectl")
        .args([
            "--server",
            &format!("https://127.0.0.1:{}", k.port),
            "--insecure-skip-tls-verify",
            "--token",
            "s3cret-token",
            "get",
            "namespaces",
            "-o",
            "name",
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("namespace/default"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Front proxy: an allowed proxy certificate makes the headers the identity; impersonating
    // anonymous through it shows whose identity the request carries.
    let signed_by_proxy_ca = |name: &str, subject: &str| {
        make_v1_client(
            dir,
            name,
            subject,
            &dir.join("proxy-ca.crt"),
            &dir.join("proxy-ca.key"),
        );
        let mut args = cert_args(dir, name);
        args.extend(["-H".into(), "X-Remote-User: carol".into()]);
        args
    };
    let proxy = signed_by_proxy_ca("front-proxy", "/CN=front-proxy");
    let (code, body) = curl(&k, &strs(&proxy), "/api/v1/namespaces");
    assert_eq!(code, 200, "{body}");
    // Without the user header, the proxy's certificate is a client certificate from a CA that
    // --client-ca-file does not hold: 401.
    let plain_proxy = cert_args(dir, "front-proxy");
    let (code, _) = curl(&k, &strs(&plain_proxy), "/api/v1/namespaces");
    assert_eq!(code, 401);
    // A certificate from the proxy CA whose CN is not allowed: 401.
    let other = signed_by_proxy_ca("not-allowed", "/CN=someone-else");
    let (code, _) = curl(&k, &strs(&other), "/api/v1/namespaces");
    assert_eq!(code, 401);
    // User headers from a client without the proxy certificate are not trusted.
    let mut forged = alice.clone();
    forged.extend(["-H".into(), "X-Remote-User: root".into()]);
    let (code, body) = curl(
        &k,
        &[
            &strs(&forged)[..],
            &["-H", "Impersonate-User: system:anonymous"],
        ]
        .concat(),
        "/api/v1/namespaces",
    );
    // The request is alice's, not root's: alice impersonating anonymous (who may not list
    // namespaces), or alice refused the impersonation.
    assert_eq!(code, 403, "{body}");
    assert!(!body.contains("root"), "{body}");
    assert!(
        body.contains("User \\\"system:anonymous\\\" cannot list")
            || body.contains("User \\\"alice\\\" cannot impersonate"),
        "{body}"
    );
}

#[test]
fn anonymous_requests_and_impersonation() {
    let k = Kapi::start(&[], &[]);
    grant_view(&k);
    // Anonymous: public paths, nothing else.
    let (code, body) = curl(&k, &[], "/version");
    assert_eq!(code, 200, "{body}");
    let (code, body) = curl(&k, &[], "/api/v1/namespaces");
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains("User \\\"system:anonymous\\\" cannot list resource \\\"namespaces\\\""),
        "{body}"
    );

    // Impersonation by the admin: the request runs as the impersonated user.
    let admin_as = |headers: &[&str], path: &str| -> (u16, String) {
        let mut args = vec![
            "--cert".to_string(),
            k.data_dir.join("admin.crt").display().to_string(),
            "--key".to_string(),
            k.data_dir.join("admin.key").display().to_string(),
        ];
        for h in headers {
            args.push("-H".into());
            args.push(h.to_string());
        }
        curl(&k, &strs(&args), path)
    };
    let (code, body) = admin_as(&["Impersonate-User: system:anonymous"], "/api/v1/pods");
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("system:anonymous"), "{body}");
    let (code, body) = admin_as(
        &["Impersonate-User: bob", "Impersonate-Group: devs"],
        "/api/v1/namespaces",
    );
    assert_eq!(code, 200, "{body}");
    // Groups without a user: upstream's 500.
    let (code, body) = admin_as(&["Impersonate-Group: devs"], "/api/v1/namespaces");
    assert_eq!(code, 500, "{body}");
    assert!(body.contains("without impersonating a user"), "{body}");
    // kubectl --as: anonymous may not even read discovery.
    let out = k.kubectl(&["--as", "system:anonymous", "get", "pods"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Forbidden"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn anonymous_auth_false_makes_credential_less_requests_401() {
    let k = Kapi::start(&["--anonymous-auth=false"], &[]);
    let (code, _) = curl(&k, &[], "/version");
    assert_eq!(code, 401);
    // The admin still works (the start-up readiness check used it).
    k.ok(&["get", "namespaces"]);
}
