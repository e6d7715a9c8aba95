//! Encryption at rest (`--encryption-provider-config`) on a real etcd: what etcd holds (read
//! with etcdctl), what kubectl reads back through kapi, values encrypted by hand in upstream's
//! formats (openssl for AES-CBC, independently of kapi's code), key rotation with automatic
//! reload, and the start refused for an invalid configuration.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use base64::Engine;
use serde_json::Value;
use support::etcd::Etcd;
use support::kapi::Kapi;

/// The Secret a real kube-apiserver v1.36.2 stored (no encryption): `default/sec`, data
/// `password: s3cr3t`, `user: admin`.
const UPSTREAM_SECRET: &[u8] = include_bytes!("data/upstream/etcd-values/secrets_default_sec.bin");

/// 32 bytes, "0123456789abcdef0123456789abcdef", base64 and hex.
const KEY1_B64: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const KEY1_HEX: &str = "3031323334353637383961626364656630313233343536373839616263646566";
/// 32 bytes of 0x42.
const KEY2_B64: &str = "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=";
/// 24 bytes (AES-192) of 0x43.
const KEY3_B64: &str = "Q0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0ND";

/// How long a change (a put in etcd, a reloaded configuration) may take to show (shared,
/// busy machine; kapi re-reads its configuration every 2 s).
const SHOW_TIMEOUT: Duration = Duration::from_secs(60);

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

/// A fresh etcd and an encryption configuration of `resources` in a temporary directory
/// (kept alive by the returned guard).
fn with_config(resources: &str) -> (Etcd, tempfile::TempDir, std::path::PathBuf) {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("encryption.yaml");
    write_config(&config, resources);
    (etcd, dir, config)
}

fn write_config(path: &Path, resources: &str) {
    std::fs::write(
        path,
        format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n{resources}"
        ),
    )
    .unwrap();
}

fn kapi_with(etcd: &Etcd, config: &Path, extra: &[&str]) -> Kapi {
    let mut args = vec![
        "--etcd-servers",
        &etcd.endpoint,
        "--encryption-provider-config",
        config.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    Kapi::start(&args, &[])
}

fn stored(etcd: &Etcd, key: &str) -> Vec<u8> {
    etcd.value(key)
}

/// Puts `value` at `key` with etcdctl (value on standard input: it may be any bytes).
fn put(etcd: &Etcd, key: &str, value: &[u8]) {
    let mut child = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}", etcd.endpoint))
        .args(["put", key])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("etcdctl runs");
    child.stdin.take().unwrap().write_all(value).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "etcdctl put: {out:?}");
}

/// AES-CBC with PKCS#7 padding by the openssl command, with the given key and IV (hex).
fn openssl_aes_256_cbc(key_hex: &str, iv_hex: &str, plain: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(["enc", "-aes-256-cbc", "-K", key_hex, "-iv", iv_hex])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl runs (apt-get install openssl)");
    child.stdin.take().unwrap().write_all(plain).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "openssl: {out:?}");
    out.stdout
}

fn secret_json(k: &Kapi, name: &str) -> Value {
    serde_json::from_str(&k.ok(&["get", "secret", name, "-o", "json"])).unwrap()
}

/// Waits until `check` holds, failing the test after SHOW_TIMEOUT.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + SHOW_TIMEOUT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn aescbc_then_identity() -> String {
    format!(
        "- resources: [secrets]\n  providers:\n  - aescbc:\n      keys:\n      - name: key1\n        secret: {KEY1_B64}\n  - identity: {{}}\n"
    )
}

#[test]
fn a_secret_created_with_kubectl_is_stored_encrypted_and_read_back_in_clear() {
    let (etcd, _dir, config) = with_config(&aescbc_then_identity());
    let mut k = kapi_with(&etcd, &config, &[]);
    k.ok(&[
        "create",
        "secret",
        "generic",
        "s1",
        "--from-literal=password=topsecret",
    ]);
    k.ok(&["create", "configmap", "c1", "--from-literal=a=plainvalue"]);

    let value = stored(&etcd, "/registry/secrets/default/s1");
    assert!(value.starts_with(b"k8s:enc:aescbc:v1:key1:"), "{value:?}");
    assert!(!value.windows(9).any(|w| w == b"topsecret"));
    // 16 bytes of IV, then whole AES blocks.
    assert_eq!((value.len() - "k8s:enc:aescbc:v1:key1:".len()) % 16, 0);
    // Resources the configuration does not name are stored as before.
    assert!(stored(&etcd, "/registry/configmaps/default/c1").starts_with(b"k8s\0"));

    let s = secret_json(&k, "s1");
    assert_eq!(s["data"]["password"], "dG9wc2VjcmV0");

    let metrics = k.ok(&["get", "--raw", "/metrics"]);
    assert!(
        metrics.lines().any(|l| l
            .starts_with("apiserver_storage_transformation_operations_total{")
            && l.contains("transformation_type=\"to_storage\"")
            && l.contains("transformer_prefix=\"k8s:enc:aescbc:v1:\"")
            && l.contains("status=\"OK\"")),
        "no transformation count"
    );
    // A restarted kapi loads its cache from etcd: the listing is decrypted too.
    k.kill_and_restart();
    assert_eq!(secret_json(&k, "s1")["data"]["password"], "dG9wc2VjcmV0");

    // `kapi decode` reads the value as etcdctl prints it (with its newline).
    let printed = etcd.etcdctl(&["get", "/registry/secrets/default/s1", "--print-value-only"]);
    let out = support::kapi::decode_encrypted(&config, None, &printed.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decoded: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(decoded["metadata"]["name"], "s1");
    assert_eq!(decoded["data"]["password"], "dG9wc2VjcmV0");
}

#[test]
fn each_provider_round_trips_through_etcd() {
    let (etcd, _dir, config) = with_config(&format!(
        "- resources: [secrets]\n  providers:\n  - aesgcm: {{keys: [{{name: g1, secret: {KEY1_B64}}}]}}\n\
             - resources: [configmaps]\n  providers:\n  - secretbox: {{keys: [{{name: b1, secret: {KEY2_B64}}}]}}\n\
             - resources: ['*.apps']\n  providers:\n  - aescbc: {{keys: [{{name: c1, secret: {KEY3_B64}}}]}}\n"
    ));
    let mut k = kapi_with(&etcd, &config, &[]);
    k.ok(&[
        "create",
        "secret",
        "generic",
        "s",
        "--from-literal=k=gcmvalue",
    ]);
    k.ok(&["create", "configmap", "c", "--from-literal=k=boxvalue"]);
    k.ok(&["create", "deployment", "d", "--image=nginx"]);
    for (key, prefix) in [
        ("/registry/secrets/default/s", "k8s:enc:aesgcm:v1:g1:"),
        ("/registry/configmaps/default/c", "k8s:enc:secretbox:v1:b1:"),
        ("/registry/deployments/default/d", "k8s:enc:aescbc:v1:c1:"),
    ] {
        let value = stored(&etcd, key);
        assert!(value.starts_with(prefix.as_bytes()), "{key}: {value:?}");
    }
    // `kapi decode` reads the aesgcm value given its etcd key (the authenticated data).
    let key = "/registry/secrets/default/s";
    let decode = |with_key: bool| {
        support::kapi::decode_encrypted(&config, with_key.then_some(key), &stored(&etcd, key))
    };
    let out = decode(true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decoded: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(decoded["data"]["k"], "Z2NtdmFsdWU=");
    assert!(!decode(false).status.success());
    // Updates go through the same transformer; then all is read back from etcd after a restart.
    k.ok(&["label", "configmap", "c", "x=y"]);
    k.kill_and_restart();
    assert_eq!(secret_json(&k, "s")["data"]["k"], "Z2NtdmFsdWU=");
    let cm: Value = serde_json::from_str(&k.ok(&["get", "configmap", "c", "-o", "json"])).unwrap();
    assert_eq!(cm["data"]["k"], "boxvalue");
    assert_eq!(cm["metadata"]["labels"]["x"], "y");
    let d: Value = serde_json::from_str(&k.ok(&["get", "deployment", "d", "-o", "json"])).unwrap();
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx"
    );
}

#[test]
fn values_encrypted_by_hand_in_upstreams_formats_are_read() {
    let (etcd, _dir, config) = with_config(&format!(
        "- resources: [secrets]\n  providers:\n\
             \x20 - aescbc: {{keys: [{{name: key1, secret: {KEY1_B64}}}]}}\n\
             \x20 - aesgcm: {{keys: [{{name: key2, secret: {KEY2_B64}}}]}}\n\
             \x20 - secretbox: {{keys: [{{name: key3, secret: {KEY1_B64}}}]}}\n"
    ));
    let k = kapi_with(&etcd, &config, &[]);
    let key = "/registry/secrets/default/sec";
    let expect_read = |k: &Kapi, what: &str, after_rv: &str| -> String {
        let mut rv = String::new();
        eventually(what, || {
            let out = k.kubectl(&["get", "secret", "sec", "-o", "json"]);
            let Ok(s) = serde_json::from_slice::<Value>(&out.stdout) else {
                return false;
            };
            rv = s["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or("")
                .into();
            rv != after_rv && s["data"]["password"] == "czNjcjN0" && s["data"]["user"] == "YWRtaW4="
        });
        rv
    };

    // AES-CBC: prefix, 16-byte IV, AES-256-CBC(PKCS#7) of the stored bytes, by openssl.
    let iv_hex = "000102030405060708090a0b0c0d0e0f";
    let mut value = b"k8s:enc:aescbc:v1:key1:".to_vec();
    value.extend_from_slice(&(0u8..16).collect::<Vec<_>>());
    value.extend_from_slice(&openssl_aes_256_cbc(KEY1_HEX, iv_hex, UPSTREAM_SECRET));
    put(&etcd, key, &value);
    let rv = expect_read(&k, "the aescbc value", "");

    // AES-GCM: prefix, 12-byte nonce, ciphertext and tag, the etcd key as authenticated data.
    let nonce = [7u8; 12];
    let sealed = aes_gcm::Aes256Gcm::new_from_slice(&b64(KEY2_B64))
        .unwrap()
        .encrypt(
            aes_gcm::Nonce::from_slice(&nonce),
            Payload {
                msg: UPSTREAM_SECRET,
                aad: key.as_bytes(),
            },
        )
        .unwrap();
    let mut value = b"k8s:enc:aesgcm:v1:key2:".to_vec();
    value.extend_from_slice(&nonce);
    value.extend_from_slice(&sealed);
    put(&etcd, key, &value);
    let rv = expect_read(&k, "the aesgcm value", &rv);

    // secretbox: prefix, 24-byte nonce, NaCl secretbox (tag first).
    let nonce = [9u8; 24];
    let sealed = crypto_secretbox::XSalsa20Poly1305::new_from_slice(&b64(KEY1_B64))
        .unwrap()
        .encrypt(crypto_secretbox::Nonce::from_slice(&nonce), UPSTREAM_SECRET)
        .unwrap();
    let mut value = b"k8s:enc:secretbox:v1:key3:".to_vec();
    value.extend_from_slice(&nonce);
    value.extend_from_slice(&sealed);
    put(&etcd, key, &value);
    expect_read(&k, "the secretbox value", &rv);
}

#[test]
fn a_value_no_provider_reads_fails_that_object_only() {
    let (etcd, _dir, config) = with_config(&aescbc_then_identity());
    let k = kapi_with(&etcd, &config, &[]);
    k.ok(&["create", "secret", "generic", "good", "--from-literal=a=b"]);
    // A value sealed with a key the configuration does not have.
    let mut unknown_key = b"k8s:enc:aescbc:v1:key9:".to_vec();
    unknown_key.extend_from_slice(&[0u8; 32]);
    put(&etcd, "/registry/secrets/default/broken", &unknown_key);
    eventually("the ingest to pass the broken value", || {
        let out = k.kubectl(&["get", "secret", "broken"]);
        !out.status.success() && !String::from_utf8_lossy(&out.stderr).contains("NotFound")
    });
    let out = k.kubectl(&["get", "secret", "broken"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "Internal error occurred: unable to transform key \"/registry/secrets/default/broken\""
        ),
        "{err}"
    );
    // The other objects, of the same resource and others, are served; kapi is still up.
    assert_eq!(secret_json(&k, "good")["data"]["a"], "Yg==");
    k.ok(&["get", "configmaps", "-n", "kube-system"]);
    k.ok(&["create", "secret", "generic", "after", "--from-literal=a=b"]);
    assert!(
        k.log()
            .contains("unable to transform key \"/registry/secrets/default/broken\"")
    );
}

#[test]
fn a_value_written_with_an_old_key_is_read_after_a_new_key_is_put_first() {
    let (etcd, _dir, config) = with_config(&aescbc_then_identity());
    let mut k = kapi_with(
        &etcd,
        &config,
        &["--encryption-provider-config-automatic-reload"],
    );
    k.ok(&[
        "create",
        "secret",
        "generic",
        "old",
        "--from-literal=a=written-with-key1",
    ]);
    assert!(stored(&etcd, "/registry/secrets/default/old").starts_with(b"k8s:enc:aescbc:v1:key1:"));

    // Rotation: key2 first (it writes), key1 kept (it reads).
    write_config(
        &config,
        &format!(
            "- resources: [secrets]\n  providers:\n  - aescbc:\n      keys:\n      - name: key2\n        secret: {KEY2_B64}\n      - name: key1\n        secret: {KEY1_B64}\n"
        ),
    );
    let mut n = 0;
    eventually("writes with key2 after the reload", || {
        n += 1;
        let name = format!("probe-{n}");
        k.ok(&["create", "secret", "generic", &name, "--from-literal=a=b"]);
        stored(&etcd, &format!("/registry/secrets/default/{name}"))
            .starts_with(b"k8s:enc:aescbc:v1:key2:")
    });
    // The old value is still key1's in etcd and still read; rewriting it moves it to key2.
    assert!(stored(&etcd, "/registry/secrets/default/old").starts_with(b"k8s:enc:aescbc:v1:key1:"));
    k.kill_and_restart();
    assert_eq!(
        secret_json(&k, "old")["data"]["a"],
        "d3JpdHRlbi13aXRoLWtleTE="
    );
    // Upstream's rotation step: every secret replaced unchanged is rewritten with the new key.
    let all = k.ok(&["get", "secret", "old", "-o", "json"]);
    let out = k.kubectl_stdin(&["replace", "-f", "-"], &all);
    assert!(out.status.success(), "{out:?}");
    assert!(stored(&etcd, "/registry/secrets/default/old").starts_with(b"k8s:enc:aescbc:v1:key2:"));
    assert_eq!(
        secret_json(&k, "old")["data"]["a"],
        "d3JpdHRlbi13aXRoLWtleTE="
    );

    // An invalid new configuration is logged and the previous one kept.
    std::fs::write(
        &config,
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources: []\n",
    )
    .unwrap();
    eventually("the invalid configuration to be refused", || {
        k.log().contains("keeping the previous configuration")
    });
    k.ok(&["create", "secret", "generic", "later", "--from-literal=a=b"]);
    assert!(
        stored(&etcd, "/registry/secrets/default/later").starts_with(b"k8s:enc:aescbc:v1:key2:")
    );
}

#[test]
fn identity_first_stores_plaintext_and_still_reads_encrypted_values() {
    let (etcd, _dir, config) = with_config(&aescbc_then_identity());
    let mut k = kapi_with(&etcd, &config, &[]);
    k.ok(&["create", "secret", "generic", "enc", "--from-literal=a=b"]);
    // Decryption back out: identity writes, aescbc still reads the old values.
    write_config(
        &config,
        &format!(
            "- resources: [secrets]\n  providers:\n  - identity: {{}}\n  - aescbc: {{keys: [{{name: key1, secret: {KEY1_B64}}}]}}\n"
        ),
    );
    k.kill_and_restart();
    k.ok(&["create", "secret", "generic", "plain", "--from-literal=a=b"]);
    assert!(stored(&etcd, "/registry/secrets/default/plain").starts_with(b"k8s\0"));
    assert!(stored(&etcd, "/registry/secrets/default/enc").starts_with(b"k8s:enc:aescbc:v1:key1:"));
    assert_eq!(secret_json(&k, "enc")["data"]["a"], "Yg==");
}

/// Runs kapi with `config` (on the embedded store) and returns its exit and log; it must exit.
fn refused_start(config: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("encryption.yaml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kapi"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--secure-port", &support::kapi::free_port().to_string()])
        .arg("--encryption-provider-config")
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "kapi started with {config}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn an_invalid_configuration_stops_the_start_with_upstreams_message() {
    let head = "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n";
    let err = refused_start(&format!(
        "{head}resources:\n- resources: [secrets]\n  providers:\n  - aescbc: {{keys: [{{name: k, secret: c2hvcnQ=}}]}}\n"
    ));
    assert!(
        err.contains("resources[0].providers[0].aescbc.keys[0].secret: Invalid value: \"REDACTED\": secret is not of the expected length, got 5, expected one of [16, 24, 32]"),
        "{err}"
    );
    let err = refused_start(&format!(
        "{head}resources:\n- resources: [secrets]\n  providers:\n  - kms: {{apiVersion: v2, name: 'vault:1', endpoint: 'unix:///tmp/kms.sock'}}\n"
    ));
    assert!(
        err.contains("resources[0].providers[0].kms.name: Invalid value: \"vault:1\": invalid KMS provider name vault:1, must not contain ':'"),
        "{err}"
    );
    // KMS v1 (the default apiVersion) is behind upstream's deprecated KMSv1 gate.
    let err = refused_start(&format!(
        "{head}resources:\n- resources: [secrets]\n  providers:\n  - kms: {{name: vault, endpoint: 'unix:///tmp/kms.sock'}}\n"
    ));
    assert!(err.contains("KMSv1 is deprecated"), "{err}");
}
