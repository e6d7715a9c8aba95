//! JWT (OIDC) authentication and the webhook token authenticator against the real binary: an
//! OpenID issuer the test serves over HTTPS on loopback (discovery document and JWKS), tokens
//! the test signs, `kubectl auth whoami` and curl as their bearers. `--authentication-config`
//! (claim rules, claim mappings with prefixes and CEL, user rules, anonymous conditions,
//! reload), the `--oidc-*` flags, `--authentication-token-webhook-config-file`, and the
//! configurations upstream refuses at start.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use kapi::authn::keys::SigningKey;
use serde_json::{Value, json};
use support::hook::Hook;
use support::kapi::{Kapi, refused};

const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/serviceaccounts");
/// How long a reloaded configuration may take to be in effect.
const PROPAGATION: Duration = Duration::from_secs(30);

/// The issuer's URL (`https://127.0.0.1:<hook port>`), set once the hook listens.
static ISSUER: OnceLock<String> = OnceLock::new();
/// Keys the issuer publishes besides the two test keys (a rotation adds one).
static ROTATED: Mutex<Vec<Value>> = Mutex::new(Vec::new());

fn rsa() -> SigningKey {
    SigningKey::from_file(&Path::new(KEYS).join("rsa.key")).unwrap()
}

fn ec() -> SigningKey {
    SigningKey::from_file(&Path::new(KEYS).join("ec.key")).unwrap()
}

/// The issuer's documents, and the token webhook's answers.
fn answer(path: &str, review: &Value) -> Value {
    let issuer = ISSUER.get().cloned().unwrap_or_default();
    match path {
        "/.well-known/openid-configuration" => json!({
            "issuer": issuer,
            "jwks_uri": format!("{issuer}/jwks"),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        }),
        "/jwks" => {
            let mut keys = vec![rsa().public.jwk(), ec().public.jwk()];
            keys.extend(ROTATED.lock().unwrap().iter().cloned());
            json!({ "keys": keys })
        }
        "/tokenreview" => {
            let token = review["spec"]["token"].as_str().unwrap_or_default();
            let status = match token {
                "webhook-good" => json!({
                    "authenticated": true,
                    "user": {"username": "hooked", "uid": "h-1", "groups": ["hookers"],
                             "extra": {"example.com/via": ["webhook"]}},
                }),
                "webhook-bad" => json!({"authenticated": false, "error": "revoked"}),
                _ => json!({"authenticated": false}),
            };
            json!({"apiVersion": review["apiVersion"], "kind": "TokenReview", "status": status})
        }
        _ => json!({}),
    }
}

fn start_issuer() -> Hook {
    let hook = Hook::start(answer);
    ISSUER
        .set(format!("https://127.0.0.1:{}", hook.port))
        .unwrap();
    hook
}

fn issuer() -> String {
    ISSUER.get().unwrap().clone()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Claims of a good token for `sub`, with `changes` merged in (null removes a claim).
fn claims(sub: &str, changes: Value) -> Value {
    let mut c = json!({
        "iss": issuer(), "sub": sub, "aud": ["kapi"], "exp": now() + 600, "iat": now(),
        "nbf": now() - 10, "hd": "example.com", "uid": format!("u-{sub}"),
        "roles": ["dev", "ops"], "tenant": "acme", "groups": ["dev"],
    });
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

fn signed(key: &SigningKey, claims: &Value) -> String {
    kapi::authn::jwt::sign(key, claims).unwrap()
}

fn user_info(k: &Kapi, token: &str) -> Value {
    match k.whoami(token) {
        Ok(review) => review["status"]["userInfo"].clone(),
        Err(e) => panic!("whoami: {e}\n{}", k.log()),
    }
}

/// The HTTP status of GET `path` with no credential at all.
fn anonymous_status(k: &Kapi, path: &str) -> u16 {
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(["--max-time", "30", "--cacert"])
        .arg(k.data_dir.join("ca.crt"))
        .arg(format!("https://127.0.0.1:{}{path}", k.port))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn eventually(what: &str, k: &Kapi, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PROPAGATION;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {PROPAGATION:?}\n{}",
            k.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The configuration file's text: one JWT authenticator for the test's issuer, with
/// `username_prefix` on the `sub` claim.
fn configuration(hook: &Hook, username_prefix: &str) -> String {
    json!({
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AuthenticationConfiguration",
        "jwt": [{
            "issuer": {
                "url": issuer(),
                "certificateAuthority": hook.ca_pem,
                "audiences": ["kapi", "other"],
                "audienceMatchPolicy": "MatchAny",
            },
            "claimValidationRules": [
                {"claim": "hd", "requiredValue": "example.com"},
                {"expression": "!has(claims.tier) || claims.tier != 'banned'", "message": "banned"},
            ],
            "claimMappings": {
                "username": {"claim": "sub", "prefix": username_prefix},
                "groups": {"expression": "claims.roles.map(r, 'role:' + r)"},
                "uid": {"claim": "uid"},
                "extra": [{"key": "example.com/tenant", "valueExpression": "claims.tenant"}],
            },
            "userValidationRules": [{
                "expression": "!user.username.contains(':system')",
                "message": "no system users",
            }],
        }],
        "anonymous": {"enabled": true, "conditions": [{"path": "/livez"}]},
    })
    .to_string()
}

fn webhook_kubeconfig(dir: &Path, hook: &Hook) -> PathBuf {
    let path = dir.join("token-webhook.kubeconfig");
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: hook
  cluster:
    server: https://127.0.0.1:{}/tokenreview
    certificate-authority-data: {}
users:
- name: kapi
  user: {{token: kapi-to-hook}}
contexts:
- name: hook
  context: {{cluster: hook, user: kapi}}
current-context: hook
",
        hook.port,
        hook.ca_bundle()
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_structured_configuration_maps_verified_tokens_to_users_and_reloads() {
    let hook = start_issuer();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("authn.json");
    std::fs::write(&config, configuration(&hook, "oidc:")).unwrap();
    let webhook = webhook_kubeconfig(dir.path(), &hook);
    let k = Kapi::start(
        &[
            "--authentication-config",
            config.to_str().unwrap(),
            "--authentication-token-webhook-config-file",
            webhook.to_str().unwrap(),
        ],
        &[],
    );

    // Claims mapped: a prefixed claim, a CEL list, a claim, a CEL extra.
    let info = user_info(&k, &signed(&rsa(), &claims("alice", json!({}))));
    assert_eq!(info["username"], "oidc:alice");
    assert_eq!(
        info["groups"],
        json!(["role:dev", "role:ops", "system:authenticated"])
    );
    assert_eq!(info["uid"], "u-alice");
    assert_eq!(info["extra"], json!({"example.com/tenant": ["acme"]}));
    // ES256 is as good, and any one configured audience is enough.
    let es = signed(&ec(), &claims("bob", json!({"aud": "other"})));
    assert_eq!(user_info(&k, &es)["username"], "oidc:bob");

    let refused = |what: &str, token: &str| {
        assert_eq!(
            k.status_with_token(token, "/api/v1/namespaces"),
            401,
            "{what} must be refused"
        );
    };
    let bad = |changes: Value| signed(&rsa(), &claims("carol", changes));
    refused("another audience", &bad(json!({"aud": ["someone-else"]})));
    refused("an expired token", &bad(json!({"exp": now() - 60})));
    refused("a token without exp", &bad(json!({"exp": null})));
    refused("a token not valid yet", &bad(json!({"nbf": now() + 3600})));
    refused(
        "an issuer not configured",
        &bad(json!({"iss": "https://other.example"})),
    );
    refused("a failing required claim", &bad(json!({"hd": "evil.com"})));
    refused("a missing required claim", &bad(json!({"hd": null})));
    refused("a failing CEL claim rule", &bad(json!({"tier": "banned"})));
    refused(
        "a failing user rule",
        &signed(&rsa(), &claims("system-admin", json!({}))),
    );
    let stranger = SigningKey::from_pem(
        rcgen::KeyPair::generate()
            .unwrap()
            .serialize_pem()
            .as_bytes(),
    )
    .unwrap();
    refused(
        "a key the issuer does not publish",
        &signed(&stranger, &claims("carol", json!({}))),
    );
    // A key the issuer starts publishing is fetched when a token names it.
    ROTATED.lock().unwrap().push(stranger.public.jwk());
    assert_eq!(
        user_info(&k, &signed(&stranger, &claims("dave", json!({}))))["username"],
        "oidc:dave"
    );
    assert_ne!(
        k.status_with_token(&bad(json!({"tier": "gold"})), "/api/v1/namespaces"),
        401
    );
    assert!(
        k.whoami(&bad(json!({"exp": now() - 60})))
            .unwrap_err()
            .contains("Unauthorized")
    );

    // TokenReview: a JWT authenticator is good for the server's own audiences only.
    let c = support::client::Client::new(&k);
    let review = |token: &str, audiences: Value| {
        let (code, body) = c.json(
            "POST",
            "/apis/authentication.k8s.io/v1/tokenreviews",
            "application/json",
            &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                    "spec": {"token": token, "audiences": audiences}}),
        );
        assert_eq!(code, 201, "{body}");
        body["status"].clone()
    };
    let alice = signed(&rsa(), &claims("alice", json!({})));
    let status = review(&alice, json!(null));
    assert_eq!(status["authenticated"], true, "{status}");
    assert_eq!(status["user"]["username"], "oidc:alice");
    assert_eq!(
        status["audiences"],
        json!(["https://kubernetes.default.svc.cluster.local"])
    );
    assert_ne!(review(&alice, json!(["elsewhere"]))["authenticated"], true);
    let expired = review(&bad(json!({"exp": now() - 60})), json!(null));
    assert!(
        expired["error"]
            .as_str()
            .unwrap_or_default()
            .contains("token is expired"),
        "{expired}"
    );

    // Service-account tokens still go to their own authenticator.
    let sa = k.ok(&["create", "token", "default"]);
    assert_eq!(
        user_info(&k, sa.trim())["username"],
        "system:serviceaccount:default:default"
    );

    // Anonymous requests only where the configuration's conditions allow.
    assert_eq!(anonymous_status(&k, "/livez"), 200);
    assert_eq!(anonymous_status(&k, "/version"), 401);

    // The token webhook: its user, its refusal, and its answers remembered.
    let hooked = user_info(&k, "webhook-good");
    assert_eq!(hooked["username"], "hooked");
    assert_eq!(hooked["uid"], "h-1");
    assert_eq!(hooked["groups"], json!(["hookers", "system:authenticated"]));
    assert_eq!(hooked["extra"], json!({"example.com/via": ["webhook"]}));
    refused("a token the webhook refuses", "webhook-bad");
    let asked = |token: &str| {
        hook.reviews()
            .iter()
            .filter(|r| r["spec"]["token"] == token)
            .count()
    };
    let sent = hook
        .reviews()
        .into_iter()
        .find(|r| r["spec"]["token"] == "webhook-bad")
        .unwrap();
    assert_eq!(sent["apiVersion"], "authentication.k8s.io/v1beta1");
    assert!(
        hook.authorizations()
            .iter()
            .any(|a| a == "Bearer kapi-to-hook"),
        "the kubeconfig's token is presented to the webhook"
    );
    assert_eq!(sent["kind"], "TokenReview");
    let before = asked("webhook-bad");
    refused("a refused token, again", "webhook-bad");
    assert_eq!(asked("webhook-bad"), before, "answers are cached");

    // A changed file is in effect soon; an invalid one is refused and the last one kept.
    // Written whole (a rename), as a reload must not see half a file.
    let replace = |text: String| {
        let next = dir.path().join("authn.json.next");
        std::fs::write(&next, text).unwrap();
        std::fs::rename(&next, &config).unwrap();
    };
    replace(configuration(&hook, "new:"));
    eventually("the reloaded username prefix", &k, || {
        k.whoami(&alice)
            .is_ok_and(|r| r["status"]["userInfo"]["username"] == "new:alice")
    });
    replace(configuration(&hook, "newer:").replace("https://127.0.0.1", "http://127.0.0.1"));
    eventually("the invalid configuration logged", &k, || {
        k.log().contains("URL scheme must be https")
    });
    assert_eq!(user_info(&k, &alice)["username"], "new:alice");
    let metrics = k.ok(&["get", "--raw", "/metrics"]);
    for status in ["success", "failure"] {
        assert!(
            metrics.contains(&format!(
                "apiserver_authentication_config_controller_automatic_reloads_total{{status=\"{status}\"}}"
            )),
            "{status} reloads counted"
        );
    }
}

#[test]
fn oidc_flags_configure_the_same_authenticator() {
    let hook = start_issuer();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("issuer-ca.crt");
    std::fs::write(&ca, &hook.ca_pem).unwrap();
    let issuer_url = issuer();
    let k = Kapi::start(
        &[
            "--oidc-issuer-url",
            &issuer_url,
            "--oidc-client-id=kapi",
            "--oidc-ca-file",
            ca.to_str().unwrap(),
            "--oidc-groups-claim=groups",
            "--oidc-groups-prefix=oidc:",
            "--oidc-required-claim=hd=example.com",
        ],
        &[],
    );
    let info = user_info(&k, &signed(&rsa(), &claims("alice", json!({}))));
    // Upstream's default prefix of a username claim other than email: the issuer and '#'.
    assert_eq!(info["username"], format!("{issuer_url}#alice"));
    assert_eq!(info["groups"], json!(["oidc:dev", "system:authenticated"]));
    let status = |token: &str| k.status_with_token(token, "/api/v1/namespaces");
    // RS256 only, unless --oidc-signing-algs says otherwise.
    assert_eq!(status(&signed(&ec(), &claims("bob", json!({})))), 401);
    assert_eq!(
        status(&signed(&rsa(), &claims("bob", json!({"hd": "x.org"})))),
        401
    );
    assert_eq!(
        status(&signed(&rsa(), &claims("bob", json!({"aud": "nope"})))),
        401
    );
    assert_ne!(status(&signed(&rsa(), &claims("bob", json!({})))), 401);
}

/// The error output of kapi refusing `args` at start.
fn refused_at_start(args: &[&str]) -> String {
    String::from_utf8_lossy(&refused(args).stderr).into_owned()
}

#[test]
fn bad_configurations_are_refused_at_start_with_upstreams_messages() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let http = write(
        "http.yaml",
        "apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
jwt:
- issuer:
    url: http://issuer.example
    audiences: [kapi]
  claimMappings:
    username:
      claim: sub
      prefix: ''
",
    );
    let err = refused_at_start(&["--authentication-config", &http]);
    assert!(
        err.contains("invalid authentication configuration: jwt[0].issuer.url: Invalid value: \"http://issuer.example\": URL scheme must be https"),
        "{err}"
    );
    let err = refused_at_start(&[
        "--authentication-config",
        &http,
        "--oidc-issuer-url=https://issuer.example",
    ]);
    assert!(
        err.contains("authentication-config file and oidc-* flags are mutually exclusive"),
        "{err}"
    );
    let anonymous = write(
        "anonymous.yaml",
        "apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
anonymous:
  enabled: true
",
    );
    let err = refused_at_start(&[
        "--authentication-config",
        &anonymous,
        "--anonymous-auth=false",
    ]);
    assert!(
        err.contains("--anonymous-auth flag cannot be set when anonymous field is configured in authentication configuration file"),
        "{err}"
    );
    let err = refused_at_start(&["--oidc-client-id=kapi"]);
    assert!(
        err.contains("oidc-issuer-url and oidc-client-id must be specified together when any oidc-* flags are set"),
        "{err}"
    );
    let err = refused_at_start(&[
        "--oidc-issuer-url=https://issuer.example",
        "--oidc-client-id=kapi",
        "--oidc-signing-algs=HS256",
    ]);
    assert!(
        err.contains("oidc: unsupported signing alg: \"HS256\""),
        "{err}"
    );
    let err = refused_at_start(&[
        "--authentication-token-webhook-config-file",
        &http,
        "--authentication-token-webhook-version=v2",
    ]);
    assert!(
        err.contains("unsupported authentication webhook version \"v2\""),
        "{err}"
    );
}
