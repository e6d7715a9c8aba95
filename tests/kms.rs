//! KMS v2 encryption at rest on a real etcd, with a KMS v2 plugin this test runs itself: a
//! gRPC server on a unix socket (`v2.KeyManagementService`: Status, Encrypt, Decrypt) holding
//! an AES-256-GCM key per key ID, counting its calls. What etcd holds is decoded here by hand
//! (the `EncryptedObject` protobuf, the plugin's key, HKDF-SHA256 and AES-GCM), independently of
//! kapi's code.

mod support;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use prost::Message;
use serde_json::Value;
use support::etcd::Etcd;
use support::kapi::Kapi;

/// How long a change (a rotated key ID seen by the status probe, whose result is reused for
/// 20 s; the plugin back after its 10 s retry) may take to show on a shared, busy machine.
const SHOW_TIMEOUT: Duration = Duration::from_secs(120);

// The plugin API (k8s.io/kms/apis/v2), written here from the .proto.
#[derive(Clone, PartialEq, Message)]
struct StatusRequest {}
#[derive(Clone, PartialEq, Message)]
struct StatusResponse {
    #[prost(string, tag = "1")]
    version: String,
    #[prost(string, tag = "2")]
    healthz: String,
    #[prost(string, tag = "3")]
    key_id: String,
}
#[derive(Clone, PartialEq, Message)]
struct EncryptRequest {
    #[prost(bytes = "vec", tag = "1")]
    plaintext: Vec<u8>,
    #[prost(string, tag = "2")]
    uid: String,
}
#[derive(Clone, PartialEq, Message)]
struct EncryptResponse {
    #[prost(bytes = "vec", tag = "1")]
    ciphertext: Vec<u8>,
    #[prost(string, tag = "2")]
    key_id: String,
    #[prost(btree_map = "string, bytes", tag = "3")]
    annotations: BTreeMap<String, Vec<u8>>,
}
#[derive(Clone, PartialEq, Message)]
struct DecryptRequest {
    #[prost(bytes = "vec", tag = "1")]
    ciphertext: Vec<u8>,
    #[prost(string, tag = "2")]
    uid: String,
    #[prost(string, tag = "3")]
    key_id: String,
    #[prost(btree_map = "string, bytes", tag = "4")]
    annotations: BTreeMap<String, Vec<u8>>,
}
#[derive(Clone, PartialEq, Message)]
struct DecryptResponse {
    #[prost(bytes = "vec", tag = "1")]
    plaintext: Vec<u8>,
}
/// What kapi stores after `k8s:enc:kms:v2:<name>:` (kmsv2/v2 EncryptedObject).
#[derive(Clone, PartialEq, Message)]
struct EncryptedObject {
    #[prost(bytes = "vec", tag = "1")]
    encrypted_data: Vec<u8>,
    #[prost(string, tag = "2")]
    key_id: String,
    #[prost(bytes = "vec", tag = "3")]
    encrypted_dek_source: Vec<u8>,
    #[prost(btree_map = "string, bytes", tag = "4")]
    annotations: BTreeMap<String, Vec<u8>>,
    #[prost(int32, tag = "5")]
    encrypted_dek_source_type: i32,
}

/// The plugin's state: its current key ID, and calls counted.
#[derive(Default)]
struct Keys {
    key_id: Mutex<String>,
    encrypts: AtomicUsize,
    decrypts: AtomicUsize,
}

impl Keys {
    /// The AES-256 key of a key ID: 32 bytes derived from its name.
    fn key(key_id: &str) -> [u8; 32] {
        let mut key = [0u8; 32];
        for (i, b) in key_id.bytes().cycle().take(32).enumerate() {
            key[i] = b ^ 0x5a;
        }
        key
    }

    fn seal(key_id: &str, plain: &[u8]) -> Vec<u8> {
        let nonce = [1u8; 12];
        let mut out = nonce.to_vec();
        out.extend(
            aes_gcm::Aes256Gcm::new_from_slice(&Keys::key(key_id))
                .unwrap()
                .encrypt(aes_gcm::Nonce::from_slice(&nonce), plain)
                .unwrap(),
        );
        out
    }

    fn open(key_id: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < 12 {
            return None;
        }
        aes_gcm::Aes256Gcm::new_from_slice(&Keys::key(key_id))
            .unwrap()
            .decrypt(aes_gcm::Nonce::from_slice(&sealed[..12]), &sealed[12..])
            .ok()
    }
}

/// One unary method of the plugin.
#[derive(Clone)]
struct Method<F>(Arc<Keys>, F);

impl<Req, Resp, F> tonic::server::UnaryService<Req> for Method<F>
where
    F: Fn(&Keys, Req) -> Result<Resp, &'static str> + Clone + Send + 'static,
    Req: Send + 'static,
    Resp: Send + 'static,
{
    type Response = Resp;
    type Future = std::future::Ready<Result<tonic::Response<Resp>, tonic::Status>>;
    fn call(&mut self, request: tonic::Request<Req>) -> Self::Future {
        std::future::ready(
            (self.1)(&self.0, request.into_inner())
                .map(tonic::Response::new)
                .map_err(tonic::Status::invalid_argument),
        )
    }
}

fn status(keys: &Keys, _: StatusRequest) -> Result<StatusResponse, &'static str> {
    Ok(StatusResponse {
        version: "v2".into(),
        healthz: "ok".into(),
        key_id: keys.key_id.lock().unwrap().clone(),
    })
}

fn encrypt(keys: &Keys, r: EncryptRequest) -> Result<EncryptResponse, &'static str> {
    keys.encrypts.fetch_add(1, Ordering::SeqCst);
    let key_id = keys.key_id.lock().unwrap().clone();
    Ok(EncryptResponse {
        ciphertext: Keys::seal(&key_id, &r.plaintext),
        key_id,
        annotations: BTreeMap::from([("kms.example.com".to_string(), b"test".to_vec())]),
    })
}

fn decrypt(keys: &Keys, r: DecryptRequest) -> Result<DecryptResponse, &'static str> {
    keys.decrypts.fetch_add(1, Ordering::SeqCst);
    if r.annotations.get("kms.example.com").map(Vec::as_slice) != Some(b"test") {
        return Err("annotations lost");
    }
    Keys::open(&r.key_id, &r.ciphertext)
        .map(|plaintext| DecryptResponse { plaintext })
        .ok_or("cannot decrypt")
}

fn grpc<T: Message + Send + 'static, U: Message + Default + Send + 'static>()
-> tonic::server::Grpc<tonic::codec::ProstCodec<T, U>> {
    tonic::server::Grpc::new(tonic::codec::ProstCodec::default())
}

/// The gRPC service: routes by method path.
#[derive(Clone)]
struct Service(Arc<Keys>);

impl tonic::server::NamedService for Service {
    const NAME: &'static str = "v2.KeyManagementService";
}

impl tower::Service<http::Request<tonic::body::BoxBody>> for Service {
    type Response = http::Response<tonic::body::BoxBody>;
    type Error = Infallible;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::BoxBody>) -> Self::Future {
        let keys = self.0.clone();
        Box::pin(async move {
            Ok(match request.uri().path() {
                "/v2.KeyManagementService/Status" => {
                    grpc().unary(Method(keys, status), request).await
                }
                "/v2.KeyManagementService/Encrypt" => {
                    grpc().unary(Method(keys, encrypt), request).await
                }
                "/v2.KeyManagementService/Decrypt" => {
                    grpc().unary(Method(keys, decrypt), request).await
                }
                _ => tonic::Status::unimplemented("no such method").into_http(),
            })
        })
    }
}

/// The plugin, serving at `socket` until dropped.
struct Plugin {
    keys: Arc<Keys>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Plugin {
    fn start(socket: &Path, keys: Arc<Keys>) -> Plugin {
        let _ = std::fs::remove_file(socket);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = {
            let _guard = runtime.enter();
            tokio::net::UnixListener::bind(socket).unwrap()
        };
        let incoming = futures::stream::unfold(listener, |l| async move {
            let accepted = l.accept().await.map(|(stream, _)| stream);
            Some((accepted, l))
        });
        let service = Service(keys.clone());
        runtime.spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming)
                .await
        });
        Plugin {
            keys,
            runtime: Some(runtime),
        }
    }

    fn encrypts(&self) -> usize {
        self.keys.encrypts.load(Ordering::SeqCst)
    }

    fn decrypts(&self) -> usize {
        self.keys.decrypts.load(Ordering::SeqCst)
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + SHOW_TIMEOUT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn stored(etcd: &Etcd, key: &str) -> Vec<u8> {
    etcd.value(key)
}

const PREFIX: &[u8] = b"k8s:enc:kms:v2:testkms:";

/// The stored value at `key` decoded by hand: its object, and the plaintext read with the
/// plugin's key (the seed), HKDF-SHA256 expand and AES-256-GCM bound to the etcd key.
fn decode_by_hand(etcd: &Etcd, key: &str) -> (EncryptedObject, Vec<u8>) {
    let value = stored(etcd, key);
    assert!(
        value.starts_with(PREFIX),
        "{key}: {:?}",
        String::from_utf8_lossy(&value)
    );
    let object = EncryptedObject::decode(&value[PREFIX.len()..]).unwrap();
    assert_eq!(
        object.encrypted_dek_source_type, 1,
        "HKDF_SHA256_XNONCE_AES_GCM_SEED"
    );
    assert_eq!(object.annotations["kms.example.com"], b"test");
    let seed = Keys::open(&object.key_id, &object.encrypted_dek_source)
        .expect("the plugin's key opens the seed");
    assert_eq!(seed.len(), 32);
    let (info, sealed) = object.encrypted_data.split_at(32);
    let prk = ring::hkdf::Prk::new_less_safe(ring::hkdf::HKDF_SHA256, &seed);
    let mut dek = [0u8; 32];
    prk.expand(&[info], ring::hkdf::HKDF_SHA256)
        .unwrap()
        .fill(&mut dek)
        .unwrap();
    let plain = aes_gcm::Aes256Gcm::new_from_slice(&dek)
        .unwrap()
        .decrypt(
            aes_gcm::Nonce::from_slice(&sealed[..12]),
            Payload {
                msg: &sealed[12..],
                aad: key.as_bytes(),
            },
        )
        .expect("the derived key opens the value");
    (object, plain)
}

fn secret_password(k: &Kapi, name: &str) -> String {
    let s: Value = serde_json::from_str(&k.ok(&["get", "secret", name, "-o", "json"])).unwrap();
    s["data"]["password"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn write_config(dir: &Path, socket: &Path) -> PathBuf {
    let config = dir.join("encryption.yaml");
    std::fs::write(
        &config,
        format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n\
             - resources: [secrets]\n  providers:\n  - kms: {{apiVersion: v2, name: testkms, endpoint: 'unix://{}', timeout: 3s}}\n  - identity: {{}}\n",
            socket.display()
        ),
    )
    .unwrap();
    config
}

#[test]
fn secrets_are_sealed_by_the_kms_plugin_and_read_back() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("kms.sock");
    let config = write_config(dir.path(), &socket);
    let keys = Arc::new(Keys::default());
    *keys.key_id.lock().unwrap() = "key-1".into();
    let plugin = Plugin::start(&socket, keys.clone());
    let args = [
        "--etcd-servers",
        &etcd.endpoint,
        "--encryption-provider-config",
        config.to_str().unwrap(),
    ];

    let k = Kapi::start(&args, &[]);
    // Start primed one seed.
    assert_eq!(plugin.encrypts(), 1);
    for name in ["s1", "s2", "s3"] {
        k.ok(&[
            "create",
            "secret",
            "generic",
            name,
            "--from-literal=password=topsecret",
        ]);
    }
    // One seed for every write: the plugin is not called per value.
    assert_eq!(plugin.encrypts(), 1);
    let (o1, plain1) = decode_by_hand(&etcd, "/registry/secrets/default/s1");
    let (o2, _) = decode_by_hand(&etcd, "/registry/secrets/default/s2");
    assert_eq!(o1.key_id, "key-1");
    assert_eq!(
        o1.encrypted_dek_source, o2.encrypted_dek_source,
        "the seed is reused"
    );
    assert_ne!(
        o1.encrypted_data[..32],
        o2.encrypted_data[..32],
        "each value has its own info"
    );
    assert!(plain1.starts_with(b"k8s\0"), "the protobuf of the Secret");
    assert!(plain1.windows(9).any(|w| w == b"topsecret"));
    assert!(
        !stored(&etcd, "/registry/secrets/default/s1")
            .windows(9)
            .any(|w| w == b"topsecret")
    );
    assert_eq!(secret_password(&k, "s1"), "dG9wc2VjcmV0");
    assert_eq!(k.ok(&["get", "--raw", "/healthz/kms-providers"]), "ok");
    let readyz = k.ok(&["get", "--raw", "/readyz?verbose"]);
    assert!(readyz.contains("[+]kms-providers ok"), "{readyz}");
    let livez = k.ok(&["get", "--raw", "/livez?verbose"]);
    assert!(!livez.contains("kms-providers"), "{livez}");

    // The plugin's key ID changes: the next probe makes a new seed, and writes use it.
    *keys.key_id.lock().unwrap() = "key-2".into();
    eventually("a new seed after the key ID changed", || {
        let _ = k.kubectl(&["get", "--raw", "/healthz/kms-providers"]);
        plugin.encrypts() == 2
    });
    k.ok(&[
        "create",
        "secret",
        "generic",
        "s4",
        "--from-literal=password=rotated",
    ]);
    let (o4, _) = decode_by_hand(&etcd, "/registry/secrets/default/s4");
    assert_eq!(o4.key_id, "key-2");
    // A value of the old key ID is still read, and an unchanged update rewrites it with the new.
    assert_eq!(secret_password(&k, "s2"), "dG9wc2VjcmV0");
    let s2 = k.ok(&["get", "secret", "s2", "-o", "json"]);
    k.kubectl_stdin(&["replace", "-f", "-"], &s2);
    assert_eq!(
        decode_by_hand(&etcd, "/registry/secrets/default/s2")
            .0
            .key_id,
        "key-2"
    );

    // `kapi decode` reads a value with the configuration (it calls the plugin's Decrypt).
    let decrypts = plugin.decrypts();
    let out = support::kapi::decode_encrypted(
        &config,
        Some("/registry/secrets/default/s1"),
        &stored(&etcd, "/registry/secrets/default/s1"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decoded: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(decoded["data"]["password"], "dG9wc2VjcmV0");
    assert_eq!(plugin.decrypts(), decrypts + 1);
    drop(k);

    // A new kapi on the same etcd has no seeds cached: it asks Decrypt, once per seed.
    let decrypts = plugin.decrypts();
    let k = Kapi::start(&args, &[]);
    assert_eq!(secret_password(&k, "s1"), "dG9wc2VjcmV0");
    assert_eq!(secret_password(&k, "s4"), "cm90YXRlZA==");
    let used = plugin.decrypts() - decrypts;
    assert!(
        (1..=2).contains(&used),
        "{used} Decrypt calls for two seeds"
    );
    drop(k);

    // The plugin is down when kapi starts: no seed, so writes of secrets fail as upstream's do,
    // and the health checks say why; other resources are written as usual.
    drop(plugin);
    let _ = std::fs::remove_file(&socket);
    let k = Kapi::start_until(&args, &[], "/livez");
    let out = k.kubectl(&["get", "--raw", "/healthz/kms-providers"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(
            "failed to perform status section of the healthz check for KMS Provider testkms"
        ),
        "{err}"
    );
    let readyz = k.kubectl(&["get", "--raw", "/readyz?verbose"]);
    // kubectl prints a failed check's body in its error.
    assert!(
        String::from_utf8_lossy(&readyz.stderr).contains("[-]kms-providers failed"),
        "{readyz:?}"
    );
    let out = k.kubectl(&[
        "create",
        "secret",
        "generic",
        "s5",
        "--from-literal=password=x",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("got unexpected nil transformer"), "{err}");
    k.ok(&["create", "configmap", "c1", "--from-literal=a=b"]);
    // The plugin comes back: the retrying probe makes a seed, and writes go through.
    let plugin = Plugin::start(&socket, keys.clone());
    eventually("writes once the plugin is back", || {
        k.kubectl(&[
            "create",
            "secret",
            "generic",
            "s5",
            "--from-literal=password=x",
        ])
        .status
        .success()
    });
    assert_eq!(
        decode_by_hand(&etcd, "/registry/secrets/default/s5")
            .0
            .key_id,
        "key-2"
    );
    assert!(plugin.encrypts() >= 1);
}
