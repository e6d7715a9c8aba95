//! Service-account tokens, bootstrap tokens and the authentication group's reviews against the
//! real kapi binary, with kubectl, curl and the kube crate: `kubectl create token`, the token
//! as a bearer credential, the ways a token stops being valid (audience, expiry, signature,
//! deleted ServiceAccount or bound pod), legacy Secret tokens, bootstrap tokens, issuer
//! discovery, `kubectl auth whoami`, TokenReview.
//!
//! Until RBAC lands every authenticated user may do everything; these tests look only at
//! authentication: 401 or not, and who the server says the caller is.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use support::kapi::{Kapi, kubectl_at};

/// The test keys (see tests/data/serviceaccounts/README.md).
const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/serviceaccounts");
/// How long a deletion may take to reach the watch cache the authenticator reads.
const PROPAGATION: Duration = Duration::from_secs(15);

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PROPAGATION;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {PROPAGATION:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `claims` signed RS256 with the test RSA key, by jsonwebtoken (not by kapi's code).
fn rsa_signed(claims: &Value) -> String {
    use rustls_pki_types::PrivateKeyDer;
    use rustls_pki_types::pem::PemObject;
    let key = PrivateKeyDer::from_pem_file(Path::new(KEYS).join("rsa.key")).unwrap();
    let key = jsonwebtoken::EncodingKey::from_rsa_der(key.secret_der());
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        claims,
        &key,
    )
    .unwrap()
}

/// kapi with the test RSA key signing (PKCS#8) and verifying (its certificate, as the hard
/// way's unit gives them), an issuer of its own, a cap of `max` on token lifetimes, and
/// `extra` flags.
fn start_with_rsa_key(max: &str, extra: &[&str]) -> Kapi {
    let key = format!("{KEYS}/rsa.pk8");
    let public = format!("{KEYS}/rsa.crt");
    let mut args = vec![
        "--service-account-signing-key-file",
        &key,
        "--service-account-key-file",
        &public,
        "--service-account-issuer=https://issuer.test",
        max,
    ];
    args.extend_from_slice(extra);
    Kapi::start(&args, &[])
}

fn uid_of(k: &Kapi, what: &str) -> String {
    k.ok(&["get", what, "-o", "jsonpath={.metadata.uid}"])
}

#[test]
fn kubectl_create_token_authenticates_as_the_service_account() {
    let k = Kapi::start(&[], &[]);
    k.ok(&["create", "namespace", "team"]);
    k.ok(&["create", "serviceaccount", "builder", "-n", "team"]);
    let sa_uid = k.ok(&[
        "get",
        "serviceaccount",
        "builder",
        "-n",
        "team",
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    let token = k.ok(&["create", "token", "builder", "-n", "team"]);
    let token = token.trim();

    let claims = claims_of(token);
    assert_eq!(
        claims["iss"],
        "https://kubernetes.default.svc.cluster.local"
    );
    assert_eq!(
        claims["aud"],
        json!(["https://kubernetes.default.svc.cluster.local"])
    );
    assert_eq!(claims["sub"], "system:serviceaccount:team:builder");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    assert_eq!(
        claims["kubernetes.io"]["serviceaccount"]["uid"],
        sa_uid.as_str()
    );

    let review = k.whoami(token).unwrap();
    let info = &review["status"]["userInfo"];
    assert_eq!(info["username"], "system:serviceaccount:team:builder");
    assert_eq!(info["uid"], sa_uid.as_str());
    assert_eq!(
        info["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:team",
            "system:authenticated"
        ])
    );
    assert_eq!(
        info["extra"]["authentication.kubernetes.io/credential-id"],
        json!([format!("JTI={}", claims["jti"].as_str().unwrap())])
    );
    assert_ne!(k.status_with_token(token, "/api/v1/namespaces"), 401);

    // The kube crate with the token as its only credential.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use k8s_openapi::api::authentication::v1::SelfSubjectReview;
        let kubeconfig = kube::config::Kubeconfig::read_from(k.token_kubeconfig(token)).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap();
        let client = kube::Client::try_from(config).unwrap();
        let reviews: kube::Api<SelfSubjectReview> = kube::Api::all(client);
        let review = reviews
            .create(&Default::default(), &SelfSubjectReview::default())
            .await
            .unwrap();
        let user = review.status.unwrap().user_info.unwrap();
        assert_eq!(
            user.username.as_deref(),
            Some("system:serviceaccount:team:builder")
        );
        assert_eq!(user.uid.as_deref(), Some(sa_uid.as_str()));
    });

    // A missing ServiceAccount is a 404; a lifetime under ten minutes a 422.
    let out = k.kubectl(&["create", "token", "nobody"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("serviceaccounts \"nobody\" not found"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = k.kubectl(&["create", "token", "builder", "-n", "team", "--duration=5m"]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("may not specify a duration less than 10 minutes"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Deleting the ServiceAccount ends its tokens.
    k.ok(&["delete", "serviceaccount", "builder", "-n", "team"]);
    eventually("a deleted ServiceAccount's token is refused", || {
        k.status_with_token(token, "/api/v1/namespaces") == 401
    });
    assert!(k.whoami(token).unwrap_err().contains("Unauthorized"));
}

#[test]
fn tokens_for_another_audience_tampered_or_bound_to_a_deleted_pod_are_refused() {
    let k = Kapi::start(&[], &[]);
    k.ok(&["create", "serviceaccount", "runner"]);
    let other = k.ok(&["create", "token", "runner", "--audience", "vault"]);
    assert_eq!(claims_of(other.trim())["aud"], json!(["vault"]));
    assert_eq!(k.status_with_token(other.trim(), "/api/v1/namespaces"), 401);

    let good = k.ok(&["create", "token", "runner"]);
    let good = good.trim();
    assert_ne!(k.status_with_token(good, "/api/v1/namespaces"), 401);
    // The payload of another token under this token's signature.
    let mut parts: Vec<&str> = good.split('.').collect();
    let forged_payload = other.trim().split('.').nth(1).unwrap().to_string();
    parts[1] = &forged_payload;
    assert_eq!(
        k.status_with_token(&parts.join("."), "/api/v1/namespaces"),
        401
    );
    // A signature that is not the key's.
    let mut sig: Vec<char> = good.rsplit('.').next().unwrap().chars().collect();
    sig[10] = if sig[10] == 'A' { 'B' } else { 'A' };
    let (head, _) = good.rsplit_once('.').unwrap();
    let tampered = format!("{head}.{}", sig.iter().collect::<String>());
    assert_eq!(k.status_with_token(&tampered, "/api/v1/namespaces"), 401);

    // A pod-bound token: names the pod and its node, and ends with the pod.
    k.ok(&[
        "run",
        "worker",
        "--image=busybox",
        "--restart=Never",
        "--overrides={\"spec\":{\"serviceAccountName\":\"runner\",\"nodeName\":\"node-a\"}}",
    ]);
    let pod_uid = uid_of(&k, "pod/worker");
    let bound = k.ok(&[
        "create",
        "token",
        "runner",
        "--bound-object-kind=Pod",
        "--bound-object-name=worker",
    ]);
    let bound = bound.trim();
    let claims = claims_of(bound);
    assert_eq!(claims["kubernetes.io"]["pod"]["uid"], pod_uid.as_str());
    assert_eq!(claims["kubernetes.io"]["node"]["name"], "node-a");
    let info = k.whoami(bound).unwrap()["status"]["userInfo"].clone();
    assert_eq!(
        info["extra"]["authentication.kubernetes.io/pod-name"],
        json!(["worker"])
    );
    assert_eq!(
        info["extra"]["authentication.kubernetes.io/pod-uid"],
        json!([pod_uid])
    );
    assert_eq!(
        info["extra"]["authentication.kubernetes.io/node-name"],
        json!(["node-a"])
    );

    // A pod of the same name made again is another pod: the token's uid no longer matches.
    k.ok(&["delete", "pod", "worker", "--grace-period=0", "--force"]);
    k.ok(&[
        "run",
        "worker",
        "--image=busybox",
        "--restart=Never",
        "--overrides={\"spec\":{\"serviceAccountName\":\"runner\"}}",
    ]);
    assert_ne!(uid_of(&k, "pod/worker"), pod_uid);
    eventually("a token bound to a replaced pod is refused", || {
        k.status_with_token(bound, "/api/v1/namespaces") == 401
    });
    assert_ne!(k.status_with_token(good, "/api/v1/namespaces"), 401);

    // Secret- and Node-bound tokens end with their object.
    k.ok(&[
        "create",
        "secret",
        "generic",
        "anchor",
        "--from-literal=a=b",
    ]);
    let to_secret = k.ok(&[
        "create",
        "token",
        "runner",
        "--bound-object-kind=Secret",
        "--bound-object-name=anchor",
    ]);
    let to_secret = to_secret.trim();
    assert_eq!(
        claims_of(to_secret)["kubernetes.io"]["secret"]["uid"],
        uid_of(&k, "secret/anchor").as_str()
    );
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-b"}});
    let out = k.kubectl_stdin(&["create", "-f", "-"], &node.to_string());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let to_node = k.ok(&[
        "create",
        "token",
        "runner",
        "--bound-object-kind=Node",
        "--bound-object-name=node-b",
    ]);
    let to_node = to_node.trim();
    assert_eq!(
        claims_of(to_node)["kubernetes.io"]["node"]["uid"],
        uid_of(&k, "node/node-b").as_str()
    );
    assert_ne!(k.status_with_token(to_secret, "/api/v1/namespaces"), 401);
    let info = k.whoami(to_node).unwrap()["status"]["userInfo"].clone();
    assert_eq!(
        info["extra"]["authentication.kubernetes.io/node-name"],
        json!(["node-b"])
    );
    k.ok(&["delete", "secret", "anchor"]);
    k.ok(&["delete", "node", "node-b"]);
    eventually(
        "tokens bound to a deleted Secret or Node are refused",
        || {
            k.status_with_token(to_secret, "/api/v1/namespaces") == 401
                && k.status_with_token(to_node, "/api/v1/namespaces") == 401
        },
    );
    // A bound object that is not there, or not the uid asked for, gets no token.
    let out = k.kubectl(&[
        "create",
        "token",
        "runner",
        "--bound-object-kind=Secret",
        "--bound-object-name=anchor",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("secrets \"anchor\" not found"));
    let out = k.kubectl(&[
        "create",
        "token",
        "runner",
        "--bound-object-kind=Pod",
        "--bound-object-name=worker",
        "--bound-object-uid=0d4691ed-659b-4935-a832-355f77ee47cc",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not match the UID in record"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Binding to a pod of another ServiceAccount is refused, as upstream.
    k.ok(&["create", "serviceaccount", "other"]);
    let out = k.kubectl(&[
        "create",
        "token",
        "other",
        "--bound-object-kind=Pod",
        "--bound-object-name=worker",
    ]);
    assert!(!out.status.success());
}

#[test]
fn hand_signed_expired_and_legacy_secret_tokens_follow_upstream_rules() {
    let k = start_with_rsa_key("--service-account-max-token-expiration=1h", &[]);
    k.ok(&["create", "serviceaccount", "old"]);
    let uid = uid_of(&k, "serviceaccount/old");
    let bound = |exp: i64| {
        json!({
            "iss": "https://issuer.test",
            "sub": "system:serviceaccount:default:old",
            "aud": ["https://issuer.test"],
            "iat": exp - 3600, "nbf": exp - 3600, "exp": exp,
            "kubernetes.io": {"namespace": "default", "serviceaccount": {"name": "old", "uid": uid}},
        })
    };
    // Signed by the key in --service-account-key-file: good until it expires (60 s leeway).
    let fresh = rsa_signed(&bound(now() + 600));
    assert_eq!(
        k.whoami(&fresh).unwrap()["status"]["userInfo"]["username"],
        "system:serviceaccount:default:old"
    );
    let expired = rsa_signed(&bound(now() - 120));
    assert_eq!(k.status_with_token(&expired, "/api/v1/namespaces"), 401);
    // Another issuer is not ours.
    let mut foreign = bound(now() + 600);
    foreign["iss"] = json!("https://elsewhere.test");
    assert_eq!(
        k.status_with_token(&rsa_signed(&foreign), "/api/v1/namespaces"),
        401
    );

    // --service-account-max-token-expiration=1h caps what TokenRequest grants.
    let out = k.kubectl(&["create", "token", "old", "--duration=5h"]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("requested expiration of 18000 seconds shortened to 3600 seconds"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let capped = String::from_utf8_lossy(&out.stdout).into_owned();
    let c = claims_of(capped.trim());
    assert_eq!(c["iss"], "https://issuer.test");
    assert_eq!(
        c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
        3600
    );

    // A legacy token: valid while its Secret holds it.
    let legacy = rsa_signed(&json!({
        "iss": "kubernetes/serviceaccount",
        "sub": "system:serviceaccount:default:old",
        "kubernetes.io/serviceaccount/namespace": "default",
        "kubernetes.io/serviceaccount/secret.name": "old-token",
        "kubernetes.io/serviceaccount/service-account.name": "old",
        "kubernetes.io/serviceaccount/service-account.uid": uid,
    }));
    assert_eq!(
        k.status_with_token(&legacy, "/api/v1/namespaces"),
        401,
        "no Secret yet"
    );
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "old-token", "annotations": {
            "kubernetes.io/service-account.name": "old",
            "kubernetes.io/service-account.uid": uid,
        }},
        "type": "kubernetes.io/service-account-token",
        "data": {"token": b64(&legacy)},
    });
    k.kubectl_stdin(&["apply", "-f", "-"], &secret.to_string());
    eventually("a legacy token whose Secret holds it is accepted", || {
        k.status_with_token(&legacy, "/api/v1/namespaces") != 401
    });
    let info = k.whoami(&legacy).unwrap()["status"]["userInfo"].clone();
    assert_eq!(info["username"], "system:serviceaccount:default:old");
    assert_eq!(info["uid"], uid.as_str());
    k.ok(&["delete", "secret", "old-token"]);
    eventually("a legacy token without its Secret is refused", || {
        k.status_with_token(&legacy, "/api/v1/namespaces") == 401
    });
}

#[test]
fn kubelet_style_pod_tokens_are_extended_to_a_year_unless_turned_off() {
    // Upstream extends only a request of exactly 3607 s that survived the cap (here 2h).
    for (extend, expect_extended) in [("true", true), ("false", false)] {
        let flag = format!("--service-account-extend-token-expiration={extend}");
        let k = start_with_rsa_key("--service-account-max-token-expiration=2h", &[&flag]);
        k.ok(&["create", "serviceaccount", "kubelet-sa"]);
        k.ok(&[
            "run",
            "p",
            "--image=busybox",
            "--restart=Never",
            "--overrides={\"spec\":{\"serviceAccountName\":\"kubelet-sa\"}}",
        ]);
        let request = json!({
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3607,
                     "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "p"}},
        });
        let out = k.kubectl_stdin(
            &[
                "create",
                "--raw",
                "/api/v1/namespaces/default/serviceaccounts/kubelet-sa/token",
                "-f",
                "-",
            ],
            &request.to_string(),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(answer["kind"], "TokenRequest");
        assert_eq!(answer["spec"]["expirationSeconds"], 3607);
        let c = claims_of(answer["status"]["token"].as_str().unwrap());
        let lifetime = c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap();
        if expect_extended {
            assert_eq!(lifetime, 365 * 24 * 3600);
            // Used within the hour it asked for, it counts as a valid (not stale) token.
            let token = answer["status"]["token"].as_str().unwrap();
            assert_ne!(k.status_with_token(token, "/api/v1/namespaces"), 401);
            let metrics = k.ok(&["get", "--raw", "/metrics"]);
            assert!(
                metrics.contains("serviceaccount_valid_tokens_total 1"),
                "{}",
                metrics
                    .lines()
                    .filter(|l| l.contains("serviceaccount_"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            assert_eq!(
                c["kubernetes.io"]["warnafter"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
                3607
            );
        } else {
            assert_eq!(lifetime, 3607);
            assert!(c["kubernetes.io"].get("warnafter").is_none());
        }

        // As a kubelet sends it: protobuf.
        let mut pb = Vec::new();
        kapi_codec::to_pb::json_to_envelope(
            request.to_string().as_bytes(),
            None,
            kapi_codec::FieldValidation::Strict,
            &mut pb,
        )
        .unwrap();
        let (code, answer) = support::client::Client::new(&k).send(
            "POST",
            "/api/v1/namespaces/default/serviceaccounts/kubelet-sa/token",
            "application/vnd.kubernetes.protobuf",
            pb,
        );
        assert_eq!(code, 201, "{answer}");
        assert_eq!(answer["spec"]["boundObjectRef"]["name"], "p");
        assert!(
            answer["status"]["token"]
                .as_str()
                .is_some_and(|t| t.len() > 100)
        );
    }
}

#[test]
fn bootstrap_tokens_need_the_flag_and_an_unexpired_secret_and_lookup_can_be_off() {
    let secret = |id: &str, expiration: &str| {
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": format!("bootstrap-token-{id}"), "namespace": "kube-system"},
            "type": "bootstrap.kubernetes.io/token",
            "data": {
                "token-id": b64(id),
                "token-secret": b64("0123456789abcdef"),
                "expiration": b64(expiration),
                "usage-bootstrap-authentication": b64("true"),
                "auth-extra-groups": b64("system:bootstrappers:kubeadm:default-node-token"),
            },
        })
        .to_string()
    };
    let on = start_with_rsa_key(
        "--service-account-max-token-expiration=1h",
        &[
            "--enable-bootstrap-token-auth",
            "--service-account-lookup=false",
        ],
    );
    let off = Kapi::start(&[], &[]);
    for k in [&on, &off] {
        k.kubectl_stdin(
            &["apply", "-f", "-"],
            &secret("abcdef", "2099-01-01T00:00:00Z"),
        );
        k.kubectl_stdin(
            &["apply", "-f", "-"],
            &secret("expird", "2001-01-01T00:00:00Z"),
        );
    }
    eventually("a bootstrap token is accepted", || {
        on.status_with_token("abcdef.0123456789abcdef", "/api/v1/namespaces") != 401
    });
    let info = on.whoami("abcdef.0123456789abcdef").unwrap()["status"]["userInfo"].clone();
    assert_eq!(info["username"], "system:bootstrap:abcdef");
    assert_eq!(
        info["groups"],
        json!([
            "system:bootstrappers",
            "system:bootstrappers:kubeadm:default-node-token",
            "system:authenticated"
        ])
    );
    assert_eq!(
        on.status_with_token("expird.0123456789abcdef", "/api/v1/namespaces"),
        401
    );
    assert_eq!(
        on.status_with_token("abcdef.0123456789abcdee", "/api/v1/namespaces"),
        401
    );
    assert_eq!(
        off.status_with_token("abcdef.0123456789abcdef", "/api/v1/namespaces"),
        401
    );

    // --service-account-lookup=false: a legacy token is taken on its signature and claims
    // alone, without a Secret or ServiceAccount behind it.
    let legacy = rsa_signed(&json!({
        "iss": "kubernetes/serviceaccount",
        "sub": "system:serviceaccount:default:ghost",
        "kubernetes.io/serviceaccount/namespace": "default",
        "kubernetes.io/serviceaccount/secret.name": "ghost-token",
        "kubernetes.io/serviceaccount/service-account.name": "ghost",
        "kubernetes.io/serviceaccount/service-account.uid": "0d4691ed-659b-4935-a832-355f77ee47cc",
    }));
    let info = on.whoami(&legacy).unwrap()["status"]["userInfo"].clone();
    assert_eq!(info["username"], "system:serviceaccount:default:ghost");
}

#[test]
fn issuer_discovery_documents_verify_issued_tokens() {
    let k = Kapi::start(&[], &[]);
    let conf: Value =
        serde_json::from_str(&k.ok(&["get", "--raw", "/.well-known/openid-configuration"]))
            .unwrap();
    assert_eq!(
        conf["issuer"],
        "https://kubernetes.default.svc.cluster.local"
    );
    assert_eq!(
        conf["jwks_uri"],
        format!("https://127.0.0.1:{}/openid/v1/jwks", k.port)
    );
    assert_eq!(conf["response_types_supported"], json!(["id_token"]));
    assert_eq!(conf["subject_types_supported"], json!(["public"]));
    assert_eq!(
        conf["id_token_signing_alg_values_supported"],
        json!(["ES256"])
    );
    let jwks: jsonwebtoken::jwk::JwkSet =
        serde_json::from_str(&k.ok(&["get", "--raw", "/openid/v1/jwks"])).unwrap();
    assert_eq!(jwks.keys.len(), 1);

    k.ok(&["create", "serviceaccount", "reader"]);
    let token = k.ok(&["create", "token", "reader"]);
    let token = token.trim();
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("the token's kid in the JWKS");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&["https://kubernetes.default.svc.cluster.local"]);
    validation.set_issuer(&["https://kubernetes.default.svc.cluster.local"]);
    let data = jsonwebtoken::decode::<Value>(token, &key, &validation).unwrap();
    assert_eq!(data.claims["sub"], "system:serviceaccount:default:reader");

    // The content types and caching of upstream's handlers.
    let out = k
        .curl(&["-D", "-", "-o", "/dev/null"], "/openid/v1/jwks")
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(
        head.contains("content-type: application/jwk-set+json"),
        "{head}"
    );
    assert!(
        head.contains("cache-control: public, max-age=3600"),
        "{head}"
    );
}

#[test]
fn whoami_and_token_review_report_the_caller_and_the_token() {
    let k = Kapi::start(&[], &[]);
    let admin = k.ok(&["auth", "whoami"]);
    assert!(admin.contains("kapi-admin"), "{admin}");
    assert!(admin.contains("system:masters"), "{admin}");

    k.ok(&["create", "serviceaccount", "reviewed"]);
    let token = k.ok(&["create", "token", "reviewed"]);
    let token = token.trim();
    let table = String::from_utf8_lossy(
        &kubectl_at(&k.token_kubeconfig(token), &["auth", "whoami"], None).stdout,
    )
    .into_owned();
    assert!(
        table.contains("system:serviceaccount:default:reviewed"),
        "{table}"
    );

    let review = |token: &str, audiences: Value| -> Value {
        let body = json!({
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
            "spec": {"token": token, "audiences": audiences},
        });
        let out = k.kubectl_stdin(
            &[
                "create",
                "--raw",
                "/apis/authentication.k8s.io/v1/tokenreviews",
                "-f",
                "-",
            ],
            &body.to_string(),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let good = review(token, json!(null));
    assert_eq!(good["status"]["authenticated"], true);
    assert_eq!(
        good["status"]["user"]["username"],
        "system:serviceaccount:default:reviewed"
    );
    assert_eq!(
        good["status"]["audiences"],
        json!(["https://kubernetes.default.svc.cluster.local"])
    );
    let bad = review(&format!("{token}x"), json!(null));
    assert!(bad["status"].get("authenticated").is_none(), "{bad}");
    assert!(
        bad["status"]["error"]
            .as_str()
            .unwrap()
            .contains("invalid bearer token")
    );
    let elsewhere = review(token, json!(["vault"]));
    assert!(
        elsewhere["status"].get("authenticated").is_none(),
        "{elsewhere}"
    );
    let unknown = review("not-a-token", json!(null));
    assert!(
        unknown["status"].get("authenticated").is_none(),
        "{unknown}"
    );
}
