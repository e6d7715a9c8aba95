//! `kapi` with no subcommand: the API server. Reads the flags (named as kube-apiserver's),
//! prepares certificates, opens the store, loads the cache, creates the system namespaces
//! and starts one transport runtime per core.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use kapi_cache::Cache;
use serde_json::json;

use crate::api::registry::{Registry, Storage};
use crate::api::server::Api;
use crate::storage::{StoreClient, StoreError};
use crate::transport::{Handler, Request, Response, ServerConfig};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1", help_heading = crate::flags::SECURE_SERVING)]
    pub bind_address: IpAddr,
    /// HTTPS port.
    #[arg(long, default_value_t = 6443, help_heading = crate::flags::SECURE_SERVING)]
    pub secure_port: u16,
    /// Where the embedded store, the generated certificates and admin.kubeconfig live.
    #[arg(long, default_value = "kapi-data", help_heading = crate::flags::KAPI)]
    pub data_dir: PathBuf,
    /// Serving certificate (PEM); generated in --data-dir when absent.
    #[arg(long, help_heading = crate::flags::SECURE_SERVING)]
    pub tls_cert_file: Option<PathBuf>,
    /// Serving key (PEM).
    #[arg(long, help_heading = crate::flags::SECURE_SERVING)]
    pub tls_private_key_file: Option<PathBuf>,
    /// etcd endpoints (comma-separated); the embedded store when absent.
    #[arg(long, value_delimiter = ',', help_heading = crate::flags::ETCD)]
    pub etcd_servers: Vec<String>,
    #[arg(long, help_heading = crate::flags::ETCD)]
    pub etcd_cafile: Option<PathBuf>,
    #[arg(long, help_heading = crate::flags::ETCD)]
    pub etcd_certfile: Option<PathBuf>,
    #[arg(long, help_heading = crate::flags::ETCD)]
    pub etcd_keyfile: Option<PathBuf>,
    /// Key prefix of every object in the store.
    #[arg(long, default_value = "/registry", help_heading = crate::flags::ETCD)]
    pub etcd_prefix: String,
    /// Cores (runtimes) to serve on; all available when 0.
    #[arg(long, default_value_t = 0, help_heading = crate::flags::KAPI)]
    pub cores: usize,
    /// Bytes of encodings (served JSON, converted protobuf, watch frames) the watch cache may
    /// keep with its objects; past it they are made per request. Stored bytes do not count.
    #[arg(long, default_value_t = 1 << 30, help_heading = crate::flags::KAPI)]
    pub cache_encoded_bytes: usize,
    /// Non-mutating requests in flight at once; with priority and fairness, added to
    /// --max-mutating-requests-inflight to make the seats shared out to priority levels.
    #[arg(long, default_value_t = 400, help_heading = crate::flags::GENERIC)]
    pub max_requests_inflight: u32,
    /// Mutating requests in flight at once (see --max-requests-inflight).
    #[arg(long, default_value_t = 200, help_heading = crate::flags::GENERIC)]
    pub max_mutating_requests_inflight: u32,
    /// API Priority and Fairness (FlowSchemas, priority levels, fair queuing); when false,
    /// the plain max-in-flight limits.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", help_heading = crate::flags::GENERIC)]
    pub enable_priority_and_fairness: bool,
    /// After SIGTERM, how long /readyz fails while everything else is still served, so load
    /// balancers stop sending traffic here (a Go duration: 0s, 2s, 1m30s).
    #[arg(long, default_value = "0s", value_parser = crate::shutdown::parse_duration, help_heading = crate::flags::GENERIC)]
    pub shutdown_delay_duration: std::time::Duration,
    /// While shutting down, answer new requests 429 with Retry-After (and keep listening) until
    /// the requests in flight have drained, instead of closing the listener at once.
    #[arg(long, default_value_t = false, num_args = 0..=1, default_missing_value = "true",
          action = clap::ArgAction::Set, help_heading = crate::flags::GENERIC)]
    pub shutdown_send_retry_after: bool,
    /// While shutting down, how long open watches may end on their own before they are ended
    /// (a Go duration).
    #[arg(long, default_value = "0s", value_parser = crate::shutdown::parse_duration, help_heading = crate::flags::GENERIC)]
    pub shutdown_watch_termination_grace_period: std::time::Duration,
    #[command(flatten)]
    pub authn: crate::authn::options::Flags,
    #[command(flatten)]
    pub service_accounts: crate::authn::flags::Flags,
    #[command(flatten)]
    pub authz: crate::authz::Flags,
    #[command(flatten)]
    pub flags: crate::flags::Flags,
    #[command(flatten)]
    pub encryption: crate::storage::encryption::Flags,
    #[command(flatten)]
    pub audit: crate::audit::Flags,
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

    fn refuse(&self, refusal: crate::transport::Refusal) -> Response {
        crate::api::server::refusal_response(refusal)
    }
}

pub fn run(args: &ServeArgs) -> Result<(), String> {
    for warning in args.flags.check()? {
        eprintln!("kapi: warning: {warning}");
    }
    crate::flags::init(&args.flags);
    crate::kubelet::init(&args.flags)?;
    crate::aggregator::init(&args.flags)?;
    crate::features::init(&args.flags.feature_gates)?;
    crate::api::runtime_config::init(&args.flags.runtime_config)?;
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
    let mut authentication =
        crate::authn::options::Authentication::load(&args.authn, &pki.ca_cert)?;
    let tls = crate::pki::server_tls_with(
        &cert,
        &key,
        &authentication.handshake_bundles(),
        &args.flags.tls_settings(),
    )
    .map_err(|e| format!("TLS: {e}"))?;

    let mut authn = args
        .service_accounts
        .resolve(&args.data_dir, args.tls_private_key_file.as_deref())?;
    // The default jwks_uri's host, as upstream's external address; an unspecified bind address
    // names no host clients can reach (the issuer's host is used instead).
    authn.external_address = (!args.bind_address.is_unspecified())
        .then(|| SocketAddr::new(args.bind_address, args.secure_port).to_string());
    authentication.start_remote(&args.authn, &authn.issuers, &authn.api_audiences)?;
    let store = open_store(args)?;
    let prefix = format!("{}/", args.etcd_prefix.trim_end_matches('/'));
    let lifecycle = crate::shutdown::Lifecycle::new(crate::shutdown::Options {
        delay: args.shutdown_delay_duration,
        send_retry_after: args.shutdown_send_retry_after,
        watch_grace: args.shutdown_watch_termination_grace_period,
    });
    crate::shutdown::start(lifecycle.clone()).map_err(|e| format!("signal handlers: {e}"))?;
    let admission_configs = match &args.flags.admission_control_config_file {
        Some(path) => {
            crate::admission::config::Configs::load(path)
                .map_err(|e| format!("--admission-control-config-file: {e}"))?
                .0
        }
        None => Default::default(),
    };
    let api = Arc::new(assemble(
        store,
        prefix,
        Assembly {
            cache_encoded_bytes: args.cache_encoded_bytes,
            flowcontrol: crate::flowcontrol::Options {
                max_requests_inflight: args.max_requests_inflight,
                max_mutating_requests_inflight: args.max_mutating_requests_inflight,
                enable_priority_and_fairness: args.enable_priority_and_fairness,
            },
            lifecycle: lifecycle.clone(),
            authentication,
            admission: crate::admission::Chain::enabled(
                &args.flags.enable_admission_plugins,
                &args.flags.disable_admission_plugins,
                &admission_configs,
            )?,
            authz: args.authz.clone(),
            authn,
            encryption: args.encryption.clone(),
            audit: args.audit.clone(),
        },
    )?);
    crate::startup::start(api.clone(), startup_info(args, &pki.ca_cert)?)
        .map_err(|e| format!("start-up objects: {e}"))?;
    crate::aggregator::availability::start(&api).map_err(|e| format!("aggregator: {e}"))?;
    crate::crd::conversion::set_api(&api);
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
    let config = ServerConfig {
        bind,
        cores,
        tls,
        lifecycle,
    };
    crate::transport::serve(config, move || ApiHandler(api.clone()))
        .map_err(|e| format!("serving {bind}: {e}"))?;
    eprintln!("kapi: shut down");
    Ok(())
}

/// The flags and files the start-up objects are made from.
fn startup_info(
    args: &ServeArgs,
    generated_ca: &std::path::Path,
) -> Result<crate::startup::Info, String> {
    let read = |p: &std::path::Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let client_ca = args.authn.client_ca_file.as_deref().unwrap_or(generated_ca);
    let requestheader = match &args.authn.requestheader_client_ca_file {
        Some(p) => Some(crate::startup::RequestHeaderInfo {
            ca_pem: read(p)?,
            username_headers: args.authn.requestheader_username_headers.clone(),
            uid_headers: args.authn.requestheader_uid_headers.clone(),
            group_headers: args.authn.requestheader_group_headers.clone(),
            extra_headers_prefix: args.authn.requestheader_extra_headers_prefix.clone(),
            allowed_names: args.authn.requestheader_allowed_names.clone(),
        }),
        None => None,
    };
    let advertise = args.flags.advertise_address.unwrap_or(args.bind_address);
    let advertise = if advertise.is_unspecified() {
        primary_address().unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
    } else {
        advertise
    };
    Ok(crate::startup::Info {
        client_ca_pem: read(client_ca)?,
        requestheader,
        service_cidrs: args.flags.service_cluster_ip_range.clone(),
        advertise,
        secure_port: args.secure_port,
        hostname: hostname::get()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "localhost".into()),
        reconciler: crate::reconcilers::EndpointReconciler::parse(
            &args.flags.endpoint_reconciler_type,
            args.flags.apiserver_count,
        )?,
    })
}

/// The host's address toward the default route (upstream's choice for an unspecified bind
/// address): a UDP socket "connected" to a public address sends nothing.
fn primary_address() -> Option<IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

/// What `assemble` takes besides the store: the flags' settings that shape the API.
pub struct Assembly {
    pub cache_encoded_bytes: usize,
    pub flowcontrol: crate::flowcontrol::Options,
    pub lifecycle: crate::shutdown::Lifecycle,
    pub authentication: crate::authn::options::Authentication,
    /// `--enable-admission-plugins`/`--disable-admission-plugins`.
    pub admission: crate::admission::Chain,
    pub authz: crate::authz::Flags,
    /// The service-account and bootstrap-token flags, resolved (`crate::authn::flags`).
    pub authn: crate::authn::flags::Settings,
    /// `--encryption-provider-config`: applied to the store before anything reads it.
    pub encryption: crate::storage::encryption::Flags,
    /// `--audit-*`: the policy and the log backend.
    pub audit: crate::audit::Flags,
}

/// The API over an open store: the registry, the cache loaded by the ingest, the start-up
/// objects (system namespaces, flow-control configuration), the request pipeline's stages.
/// Shared with the in-process harness (`crate::fuzzing`), so both serve alike.
pub fn assemble(store: StoreClient, prefix: String, opts: Assembly) -> Result<Api, String> {
    let registry = Arc::new(Registry::builtin());
    let store = match crate::storage::encryption::start(
        &opts.encryption,
        storage_layout(&registry),
        &prefix,
    )? {
        Some(encryption) => store.with_encryption(encryption),
        None => store,
    };
    crate::metrics::init();
    crate::metrics::storage::set_resources(
        registry
            .all()
            .iter()
            .filter(|r| !r.key_prefix.is_empty())
            .map(|r| {
                (
                    format!("{prefix}{}", r.key_prefix),
                    r.group.clone(),
                    r.resource.clone(),
                )
            }),
    );
    let cache = Arc::new(Cache::new(
        crate::api::cached::specs(&registry, &prefix),
        opts.cache_encoded_bytes,
    ));
    crate::ingest::start(store.clone(), cache.clone(), prefix.clone())
        .map_err(|e| format!("cache: {e}"))?;
    crate::crd::controller::start(&registry, cache.clone(), store.clone(), prefix.clone())
        .map_err(|e| format!("custom resources: {e}"))?;
    bootstrap(
        &store,
        &prefix,
        opts.flowcontrol.enable_priority_and_fairness,
    )?;
    let flowcontrol = crate::flowcontrol::FlowControl::new(
        opts.flowcontrol,
        cache.clone(),
        &prefix,
        cached_prefixes(&registry, &prefix),
    );
    flowcontrol
        .follow_configuration(store.clone())
        .map_err(|e| format!("flow control: {e}"))?;
    let authz = crate::authz::start(&opts.authz, &store, &cache, &prefix)?;
    let (tokens, service_accounts) = token_authenticators(opts.authn, &cache, &prefix, &registry);
    let loopback_token = crate::authn::loopback::new_token();
    Ok(Api {
        authn: opts.authentication.chain(tokens, &loopback_token),
        loopback_token,
        service_accounts,
        authz,
        admission: opts.admission,
        registry,
        store,
        cache,
        prefix,
        flowcontrol,
        lifecycle: opts.lifecycle,
        audit: crate::audit::Audit::start(&opts.audit)?,
    })
}

/// The authenticator chain in upstream's order (x509, bootstrap tokens, service-account
/// tokens), and the service-account token issuer it shares with TokenRequest.
/// The bearer-token authenticators of the service-account flags, in upstream's order
/// (bootstrap tokens, then service-account tokens), and the service accounts' token issuer.
fn token_authenticators(
    settings: crate::authn::flags::Settings,
    cache: &Arc<Cache>,
    prefix: &str,
    registry: &Registry,
) -> (
    Vec<Box<dyn crate::authn::Authenticator>>,
    Arc<crate::authn::serviceaccount::ServiceAccounts>,
) {
    use crate::authn::{Authenticator, bootstrap, lookup, serviceaccount};
    let lookup = Arc::new(lookup::Lookup::new(
        cache.clone(),
        prefix.to_string(),
        registry,
    ));
    let bootstrap_tokens = settings.bootstrap_tokens;
    let sas = Arc::new(serviceaccount::ServiceAccounts::new(
        settings,
        lookup.clone(),
    ));
    let mut chain: Vec<Box<dyn Authenticator>> = Vec::new();
    if bootstrap_tokens {
        chain.push(Box::new(bootstrap::BootstrapTokens(lookup)));
    }
    chain.push(Box::new(serviceaccount::ServiceAccountTokens(sas.clone())));
    (chain, sas)
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

/// Every stored resource's key prefix (below `--etcd-prefix`), group and resource.
pub fn storage_layout(registry: &Registry) -> crate::storage::encryption::Layout {
    registry
        .all()
        .iter()
        .filter(|r| r.storage != Storage::None && !r.key_prefix.is_empty())
        .map(|r| (r.key_prefix.clone(), r.group.clone(), r.resource.clone()))
        .collect()
}

/// (group, resource) → the watch cache's key prefix of every stored resource.
fn cached_prefixes(
    registry: &Registry,
    prefix: &str,
) -> std::collections::HashMap<(String, String), Bytes> {
    registry
        .all()
        .iter()
        .filter(|r| r.storage != Storage::None && !r.key_prefix.is_empty())
        .map(|r| {
            (
                (r.group.clone(), r.resource.clone()),
                Bytes::from(format!("{prefix}{}", r.key_prefix).into_bytes()),
            )
        })
        .collect()
}

/// Creates the system namespaces that are missing, and (with priority and fairness) the
/// bootstrap FlowSchemas and PriorityLevelConfigurations as upstream's ensurer keeps them.
fn bootstrap(store: &StoreClient, prefix: &str, apf: bool) -> Result<(), String> {
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
        if apf {
            crate::flowcontrol::ensure_bootstrap(store, prefix).await?;
        }
        Ok(())
    })
}
