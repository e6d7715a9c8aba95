//! `kapi` with no subcommand: the API server. Reads the flags (named as kube-apiserver's),
//! prepares certificates, opens the store, loads the cache, creates the system namespaces
//! and starts one transport runtime per core.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use kapi_cache::Cache;
use serde_json::json;

use crate::api::registry::Registry;
use crate::api::server::Api;
use crate::storage::{StoreClient, StoreError};
use crate::transport::{Handler, Request, Response, ServerConfig};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind_address: IpAddr,
    /// HTTPS port.
    #[arg(long, default_value_t = 6443)]
    pub secure_port: u16,
    /// Where the embedded store, the generated certificates and admin.kubeconfig live.
    #[arg(long, default_value = "kapi-data")]
    pub data_dir: PathBuf,
    /// Serving certificate (PEM); generated in --data-dir when absent.
    #[arg(long)]
    pub tls_cert_file: Option<PathBuf>,
    /// Serving key (PEM).
    #[arg(long)]
    pub tls_private_key_file: Option<PathBuf>,
    /// CA that client certificates are verified against; the generated CA when absent.
    #[arg(long)]
    pub client_ca_file: Option<PathBuf>,
    /// etcd endpoints (comma-separated); the embedded store when absent.
    #[arg(long, value_delimiter = ',')]
    pub etcd_servers: Vec<String>,
    #[arg(long)]
    pub etcd_cafile: Option<PathBuf>,
    #[arg(long)]
    pub etcd_certfile: Option<PathBuf>,
    #[arg(long)]
    pub etcd_keyfile: Option<PathBuf>,
    /// Key prefix of every object in the store.
    #[arg(long, default_value = "/registry")]
    pub etcd_prefix: String,
    /// Cores (runtimes) to serve on; all available when 0.
    #[arg(long, default_value_t = 0)]
    pub cores: usize,
    /// Bytes of encodings (served JSON, converted protobuf, watch frames) the watch cache may
    /// keep with its objects; past it they are made per request. Stored bytes do not count.
    #[arg(long, default_value_t = 1 << 30)]
    pub cache_encoded_bytes: usize,
}

/// Namespaces that exist from the start, as upstream's system namespaces controller makes them.
const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

struct ApiHandler(Arc<Api>);

impl Handler for ApiHandler {
    fn handle(
        &self,
        req: Request,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response>>> {
        Box::pin(self.0.clone().handle(req))
    }
}

pub fn run(args: &ServeArgs) -> Result<(), String> {
    let hosts = vec![args.bind_address.to_string()];
    let pki =
        crate::pki::ensure(&args.data_dir, &hosts).map_err(|e| format!("certificates: {e}"))?;
    pki.write_kubeconfig(args.secure_port)
        .map_err(|e| format!("admin.kubeconfig: {e}"))?;
    let (cert, key) = match (&args.tls_cert_file, &args.tls_private_key_file) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        (None, None) => (pki.serving_cert.clone(), pki.serving_key.clone()),
        _ => return Err("--tls-cert-file and --tls-private-key-file go together".into()),
    };
    let client_ca = args.client_ca_file.clone().unwrap_or(pki.ca_cert.clone());
    let tls =
        crate::pki::server_tls(&cert, &key, Some(&client_ca)).map_err(|e| format!("TLS: {e}"))?;

    let store = open_store(args)?;
    let prefix = format!("{}/", args.etcd_prefix.trim_end_matches('/'));
    let api = Arc::new(assemble(store, prefix, args.cache_encoded_bytes)?);
    let cores = if args.cores == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        args.cores
    };
    let bind = SocketAddr::new(args.bind_address, args.secure_port);
    eprintln!(
        "kapi: serving https://{bind} on {cores} cores; kubectl --kubeconfig {}",
        pki.admin_kubeconfig.display()
    );
    crate::transport::serve(ServerConfig { bind, cores, tls }, move || {
        ApiHandler(api.clone())
    })
    .map_err(|e| format!("serving {bind}: {e}"))
}

/// The API over an open store: the registry, the cache loaded by the ingest, and the system
/// namespaces. Shared with the in-process harness (`crate::fuzzing`), so both serve alike.
pub fn assemble(
    store: StoreClient,
    prefix: String,
    cache_encoded_bytes: usize,
) -> Result<Api, String> {
    let registry = Registry::builtin();
    let cache = Arc::new(Cache::new(
        crate::api::cached::specs(&registry, &prefix),
        cache_encoded_bytes,
    ));
    crate::ingest::start(store.clone(), cache.clone(), prefix.clone())
        .map_err(|e| format!("cache: {e}"))?;
    bootstrap(&store, &prefix)?;
    Ok(Api {
        registry,
        store,
        cache,
        prefix,
    })
}

fn open_store(args: &ServeArgs) -> Result<StoreClient, String> {
    if !args.etcd_servers.is_empty() {
        let cfg = crate::storage::etcd::EtcdConfig {
            endpoints: args.etcd_servers.clone(),
            ca_file: args.etcd_cafile.clone(),
            cert_file: args.etcd_certfile.clone(),
            key_file: args.etcd_keyfile.clone(),
        };
        return crate::storage::etcd::start_etcd(cfg)
            .map_err(|e| format!("connecting to etcd: {e}"));
    }
    let dir = args.data_dir.join("store");
    let backend = crate::storage::embedded::open(&dir)
        .map_err(|e| format!("opening {}: {e}", dir.display()))?;
    crate::storage::start(Box::new(backend)).map_err(|e| format!("starting the store: {e}"))
}

/// Creates the system namespaces that are missing.
fn bootstrap(store: &StoreClient, prefix: &str) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        for ns in SYSTEM_NAMESPACES {
            let obj = json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": ns,
                    "uid": uuid::Uuid::new_v4().to_string(),
                    "creationTimestamp": crate::api::rest::now_rfc3339(),
                    "labels": {"kubernetes.io/metadata.name": ns},
                },
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            });
            let json = serde_json::to_vec(&obj).map_err(|e| e.to_string())?;
            let mut pb = Vec::new();
            kapi_codec::to_pb::json_to_envelope(
                &json,
                None,
                kapi_codec::FieldValidation::Strict,
                &mut pb,
            )
            .map_err(|e| e.to_string())?;
            let key = format!("{prefix}namespaces/{ns}");
            match store.create(key.as_bytes(), Bytes::from(pb), None).await {
                Ok(_) | Err(StoreError::AlreadyExists) => {}
                Err(e) => return Err(format!("creating namespace {ns}: {e}")),
            }
        }
        Ok(())
    })
}
