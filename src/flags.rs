//! kube-apiserver's command line as kapi reads it: the flags with an effect here (this file's
//! `Flags`, and each module's own), the process-wide settings some of them set, and every
//! other upstream flag, accepted with a warning that names it (kapi cannot honour it yet, or
//! upstream removed it), never silently. `-h` lists them under upstream's headings.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use clap::{Arg, ArgAction, ArgMatches, Command};

/// Upstream's help sections, in its order.
pub const GENERIC: &str = "Generic flags";
pub const ETCD: &str = "Etcd flags";
pub const SECURE_SERVING: &str = "Secure serving flags";
pub const AUDITING: &str = "Auditing flags";
pub const FEATURES: &str = "Features flags";
pub const AUTHENTICATION: &str = "Authentication flags";
pub const AUTHORIZATION: &str = "Authorization flags";
pub const API_ENABLEMENT: &str = "API enablement flags";
pub const EGRESS: &str = "Egress selector flags";
pub const ADMISSION: &str = "Admission flags";
pub const METRICS: &str = "Metrics flags";
pub const LOGS: &str = "Logs flags";
pub const TRACES: &str = "Traces flags";
pub const MISC: &str = "Misc flags";
/// kapi's own flags (no upstream counterpart).
pub const KAPI: &str = "kapi flags";

#[derive(Debug, Clone, clap::Args)]
#[group(id = "generic-flags")]
pub struct Flags {
    /// The IP address on which to advertise the apiserver to members of the cluster (the
    /// `kubernetes` Service's endpoints). If blank, the --bind-address will be used.
    #[arg(long, help_heading = GENERIC)]
    pub advertise_address: Option<IpAddr>,
    /// Use an endpoint reconciler (master-count, lease, none): how the `kubernetes` Service's
    /// endpoints list the apiservers. master-count is deprecated, and will be removed in a
    /// future version.
    #[arg(long, default_value = "lease", help_heading = MISC)]
    pub endpoint_reconciler_type: String,
    /// The number of apiservers running in the cluster, must be a positive number. (In use
    /// when --endpoint-reconciler-type=master-count is enabled.)
    #[arg(long, default_value_t = 1, help_heading = MISC)]
    pub apiserver_count: i64,
    /// If true, allow privileged containers.
    #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", help_heading = MISC)]
    pub allow_privileged: bool,
    /// Turns on aggregator routing requests to endpoints IP rather than cluster IP (kapi: how
    /// admission webhooks behind a Service are reached).
    #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", help_heading = MISC)]
    pub enable_aggregator_routing: bool,
    /// Client certificate used to prove the identity of the aggregator or kube-apiserver when
    /// it must call out during a request (proxying to aggregated API servers).
    #[arg(long, help_heading = MISC)]
    pub proxy_client_cert_file: Option<std::path::PathBuf>,
    /// Private key for the client certificate used to prove the identity of the aggregator or
    /// kube-apiserver when it must call out during a request.
    #[arg(long, help_heading = MISC)]
    pub proxy_client_key_file: Option<std::path::PathBuf>,
    /// Amount of time to retain events (a Go duration).
    #[arg(long, default_value = "1h0m0s", value_parser = crate::shutdown::parse_duration,
          help_heading = MISC)]
    pub event_ttl: Duration,
    /// Indicates the tolerationSeconds of the toleration for notReady:NoExecute that is added
    /// by default to every pod that does not already have such a toleration.
    #[arg(long, default_value_t = 300, help_heading = GENERIC)]
    pub default_not_ready_toleration_seconds: i64,
    /// Indicates the tolerationSeconds of the toleration for unreachable:NoExecute that is
    /// added by default to every pod that does not already have such a toleration.
    #[arg(long, default_value_t = 300, help_heading = GENERIC)]
    pub default_unreachable_toleration_seconds: i64,
    /// An optional field indicating the minimum number of seconds a handler must keep a
    /// request open before timing it out: a watch without timeoutSeconds lasts between this
    /// and twice this.
    #[arg(long, default_value_t = 1800, help_heading = GENERIC)]
    pub min_request_timeout: u64,
    /// A CIDR notation IP range (or two, IPv4 and IPv6, comma-separated) from which to assign
    /// service cluster IPs.
    #[arg(long, value_delimiter = ',', help_heading = MISC)]
    pub service_cluster_ip_range: Vec<String>,
    /// A port range to reserve for services with NodePort visibility (`30000-32767`).
    #[arg(long, default_value = "30000-32767", help_heading = MISC)]
    pub service_node_port_range: String,
    /// admission plugins that should be enabled in addition to default enabled ones.
    #[arg(long, value_delimiter = ',', help_heading = ADMISSION)]
    pub enable_admission_plugins: Vec<String>,
    /// admission plugins that should be disabled although they are in the default enabled
    /// plugins list.
    #[arg(long, value_delimiter = ',', help_heading = ADMISSION)]
    pub disable_admission_plugins: Vec<String>,
    /// File with admission control configuration (an AdmissionConfiguration; kapi reads the
    /// PodSecurity plugin's).
    #[arg(long, help_heading = ADMISSION)]
    pub admission_control_config_file: Option<std::path::PathBuf>,
    /// A set of key=value pairs that enable or disable built-in APIs: `<group>/<version>`,
    /// `api/all`, `api/ga`, `api/beta`, `api/alpha`, `api/legacy` (= `v1`).
    #[arg(long, value_delimiter = ',', help_heading = API_ENABLEMENT)]
    pub runtime_config: Vec<String>,
    /// A set of key=value pairs that describe feature gates for alpha/experimental features
    /// (`AllAlpha`, `AllBeta`, and the gates of the alpha and beta APIs kapi serves).
    #[arg(long, value_delimiter = ',', help_heading = GENERIC)]
    pub feature_gates: Vec<String>,
    /// The storage backend for persistence. Options: 'etcd3' (default).
    #[arg(long, default_value = "etcd3", help_heading = ETCD)]
    pub storage_backend: String,
    /// Minimum TLS version supported: VersionTLS12, VersionTLS13 (rustls has no older ones).
    #[arg(long, help_heading = SECURE_SERVING)]
    pub tls_min_version: Option<String>,
    /// Comma-separated list of cipher suites for the server (IANA names, as upstream). If
    /// omitted, the default cipher suites are used.
    #[arg(long, value_delimiter = ',', help_heading = SECURE_SERVING)]
    pub tls_cipher_suites: Vec<String>,
    /// Path to a cert file for the certificate authority that kubelets' serving certificates
    /// are verified with.
    #[arg(long, help_heading = MISC)]
    pub kubelet_certificate_authority: Option<std::path::PathBuf>,
    /// Path to a client cert file for TLS to kubelets.
    #[arg(long, help_heading = MISC)]
    pub kubelet_client_certificate: Option<std::path::PathBuf>,
    /// Path to a client key file for TLS to kubelets.
    #[arg(long, help_heading = MISC)]
    pub kubelet_client_key: Option<std::path::PathBuf>,
    /// List of the preferred NodeAddressTypes to use for kubelet connections.
    #[arg(long, value_delimiter = ',', default_value = "Hostname,InternalDNS,InternalIP,ExternalDNS,ExternalIP",
          help_heading = MISC)]
    pub kubelet_preferred_address_types: Vec<String>,
    /// Timeout for kubelet operations (a Go duration; streams such as logs and exec are not
    /// bounded by it once they started).
    #[arg(long, default_value = "5s", value_parser = crate::shutdown::parse_duration,
          help_heading = MISC)]
    pub kubelet_timeout: Duration,
    /// Number for the log level verbosity.
    #[arg(short = 'v', long = "v", default_value_t = 0, help_heading = LOGS)]
    pub verbosity: u32,
}

/// Settings read where a flag takes effect deep in the request path (validation, strategies).
#[derive(Debug, Clone)]
pub struct Settings {
    pub allow_privileged: bool,
    /// `--enable-aggregator-routing`: Services (webhooks) reached at an endpoint.
    pub endpoint_routing: bool,
    /// `--default-not-ready-toleration-seconds`, `--default-unreachable-toleration-seconds`.
    pub not_ready_toleration_seconds: i64,
    pub unreachable_toleration_seconds: i64,
    pub event_ttl_seconds: i64,
    pub min_request_timeout_seconds: u64,
    /// `--service-cluster-ip-range` (empty: upstream's default range).
    pub service_cidrs: Vec<String>,
    /// `--service-node-port-range`.
    pub node_port_range: std::borrow::Cow<'static, str>,
}

/// Upstream's defaults: what the in-process harness and unit tests run with.
static DEFAULT_SETTINGS: Settings = Settings {
    allow_privileged: false,
    endpoint_routing: false,
    not_ready_toleration_seconds: 300,
    unreachable_toleration_seconds: 300,
    event_ttl_seconds: 3600,
    min_request_timeout_seconds: 1800,
    service_cidrs: Vec::new(),
    node_port_range: std::borrow::Cow::Borrowed("30000-32767"),
};

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// The settings of this process (upstream's defaults until `init`).
pub fn settings() -> &'static Settings {
    SETTINGS.get().unwrap_or(&DEFAULT_SETTINGS)
}

/// Sets the process's settings from the flags, once, at start.
pub fn init(flags: &Flags) {
    let _ = SETTINGS.set(Settings {
        allow_privileged: flags.allow_privileged,
        endpoint_routing: flags.enable_aggregator_routing,
        not_ready_toleration_seconds: flags.default_not_ready_toleration_seconds,
        unreachable_toleration_seconds: flags.default_unreachable_toleration_seconds,
        event_ttl_seconds: i64::try_from(flags.event_ttl.as_secs()).unwrap_or(i64::MAX),
        min_request_timeout_seconds: flags.min_request_timeout,
        service_cidrs: flags.service_cluster_ip_range.clone(),
        node_port_range: flags.service_node_port_range.clone().into(),
    });
}

impl Flags {
    /// Checks the values as upstream does at start (errors), and returns the warnings for
    /// what kapi accepts but does not act on.
    pub fn check(&self) -> Result<Vec<String>, String> {
        let mut warnings = Vec::new();
        if self.storage_backend != "etcd3" {
            return Err(format!(
                "--storage-backend: unsupported storage backend \"{}\" (only etcd3)",
                self.storage_backend
            ));
        }
        if self.apiserver_count <= 0 {
            return Err(format!(
                "--apiserver-count should be a positive number, but value '{}' provided",
                self.apiserver_count
            ));
        }
        crate::reconcilers::EndpointReconciler::parse(
            &self.endpoint_reconciler_type,
            self.apiserver_count,
        )?;
        if self.service_cluster_ip_range.len() > 2 {
            return Err("--service-cluster-ip-range must not contain more than two entries".into());
        }
        let mut families = Vec::new();
        for cidr in &self.service_cluster_ip_range {
            let (ip, _) =
                parse_cidr(cidr).map_err(|e| format!("--service-cluster-ip-range: {e}"))?;
            families.push(ip.is_ipv6());
        }
        if families.len() == 2 && families[0] == families[1] {
            return Err(
                "--service-cluster-ip-range[0] and --service-cluster-ip-range[1] must be of different IP family"
                    .into(),
            );
        }
        parse_port_range(&self.service_node_port_range)
            .map_err(|e| format!("--service-node-port-range: {e}"))?;
        if let Some(v) = &self.tls_min_version {
            match v.as_str() {
                "VersionTLS12" | "VersionTLS13" => {}
                "VersionTLS10" | "VersionTLS11" => warnings.push(format!(
                    "--tls-min-version={v}: kapi's TLS library offers TLS 1.2 and 1.3 only"
                )),
                _ => return Err(format!("--tls-min-version: unknown TLS version {v:?}")),
            }
        }
        for suite in &self.tls_cipher_suites {
            if cipher_suite(suite).is_none()
                && !INSECURE_OR_UNSUPPORTED_SUITES.contains(&suite.as_str())
            {
                return Err(format!(
                    "--tls-cipher-suites: cipher suite {suite} not supported or doesn't exist"
                ));
            }
        }
        let (gates, gate_warnings) = crate::features::Gates::parse(&self.feature_gates)?;
        warnings.extend(gate_warnings);
        crate::api::runtime_config::parse(&self.runtime_config)?;
        warnings.extend(crate::api::runtime_config::warnings(
            &self.runtime_config,
            &gates,
        ));
        warnings.extend(crate::admission::check_plugins(
            &self.enable_admission_plugins,
            &self.disable_admission_plugins,
        )?);
        let configs = match &self.admission_control_config_file {
            Some(path) => {
                let (configs, w) = crate::admission::config::Configs::load(path)
                    .map_err(|e| format!("--admission-control-config-file: {e}"))?;
                warnings.extend(w);
                configs
            }
            None => Default::default(),
        };
        crate::admission::Chain::enabled(
            &self.enable_admission_plugins,
            &self.disable_admission_plugins,
            &configs,
        )?;
        Ok(warnings)
    }
}

impl Flags {
    /// `--tls-min-version` and `--tls-cipher-suites` for the serving configuration.
    pub fn tls_settings(&self) -> crate::pki::TlsSettings {
        crate::pki::TlsSettings {
            tls13_only: self.tls_min_version.as_deref() == Some("VersionTLS13"),
            cipher_suites: self
                .tls_cipher_suites
                .iter()
                .filter_map(|s| cipher_suite(s))
                .collect(),
        }
    }
}

/// An IP network (`10.32.0.0/24`, `fd00::/108`) as upstream's `net.ParseCIDR`.
pub fn parse_cidr(s: &str) -> Result<(IpAddr, u8), String> {
    let (ip, bits) = s
        .trim()
        .split_once('/')
        .ok_or_else(|| format!("invalid CIDR address: {s}"))?;
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| format!("invalid CIDR address: {s}"))?;
    let bits: u8 = bits
        .parse()
        .map_err(|_| format!("invalid CIDR address: {s}"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if bits > max {
        return Err(format!("invalid CIDR address: {s}"));
    }
    Ok((ip, bits))
}

/// `30000-32767` (or one port) → (base, size), as upstream's `PortRange`.
pub fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u16 = a
        .trim()
        .parse()
        .map_err(|_| format!("unable to parse port range: {s}"))?;
    let b: u16 = b
        .trim()
        .parse()
        .map_err(|_| format!("unable to parse port range: {s}"))?;
    if b < a {
        return Err(format!("end port is less than start port: {s}"));
    }
    Ok((a, b - a + 1))
}

/// Go's names for the cipher suites rustls offers.
pub fn cipher_suite(name: &str) -> Option<rustls::SupportedCipherSuite> {
    use rustls::crypto::ring::cipher_suite as cs;
    Some(match name {
        "TLS_AES_128_GCM_SHA256" => cs::TLS13_AES_128_GCM_SHA256,
        "TLS_AES_256_GCM_SHA384" => cs::TLS13_AES_256_GCM_SHA384,
        "TLS_CHACHA20_POLY1305_SHA256" => cs::TLS13_CHACHA20_POLY1305_SHA256,
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"
        | "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => {
            cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        }
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" | "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => {
            cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
        }
        _ => return None,
    })
}

/// Suites Go knows (CBC, RC4, 3DES, plain RSA key exchange) that rustls does not offer:
/// accepted and left out, as kapi cannot serve them.
const INSECURE_OR_UNSUPPORTED_SUITES: &[&str] = &[
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
];

/// Whether a compat flag takes a value or is a switch (`--flag`, `--flag=false`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Takes {
    Value,
    Switch,
}

/// Why kapi accepts a flag without acting on it.
#[derive(Clone, Copy)]
enum Why {
    /// An upstream 1.36 flag kapi does not honour yet: what it would need.
    NotYet(&'static str),
    /// Upstream removed the flag (it is an error there); kapi warns instead.
    Removed(&'static str),
    /// Upstream still accepts it, deprecated, with no effect worth having here.
    Deprecated(&'static str),
}

use Takes::{Switch, Value};
use Why::{Deprecated, NotYet, Removed};

/// Every other upstream flag (and removed ones people still pass), by heading. A flag a
/// module defines for real is skipped here (`add`), so a module taking one over needs no edit.
const COMPAT: &[(&str, &str, Takes, Why)] = &[
    (
        GENERIC,
        "aggregator-reject-forwarding-redirect",
        Switch,
        NotYet("kapi does not proxy to aggregated API servers yet"),
    ),
    (
        GENERIC,
        "allow-metric-labels",
        Value,
        NotYet("metric label allow-lists are not applied"),
    ),
    (
        GENERIC,
        "allow-metric-labels-manifest",
        Value,
        NotYet("metric label allow-lists are not applied"),
    ),
    (
        GENERIC,
        "cloud-provider-gce-l7lb-src-cidrs",
        Value,
        NotYet("no cloud provider integration"),
    ),
    (
        GENERIC,
        "cloud-provider-gce-lb-src-cidrs",
        Value,
        NotYet("no cloud provider integration"),
    ),
    (
        GENERIC,
        "cors-allowed-origins",
        Value,
        NotYet("CORS headers are not served"),
    ),
    (
        GENERIC,
        "emulated-version",
        Value,
        NotYet("kapi serves 1.36 only"),
    ),
    (
        GENERIC,
        "emulation-forward-compatible",
        Switch,
        NotYet("kapi serves 1.36 only"),
    ),
    (
        GENERIC,
        "runtime-config-emulation-forward-compatible",
        Switch,
        NotYet("kapi serves 1.36 only"),
    ),
    (
        GENERIC,
        "external-hostname",
        Value,
        NotYet("no generated externalized URLs"),
    ),
    (
        GENERIC,
        "goaway-chance",
        Value,
        NotYet("HTTP/2 GOAWAY is sent only at shutdown"),
    ),
    (
        GENERIC,
        "livez-grace-period",
        Value,
        NotYet("/livez has no grace period"),
    ),
    (
        GENERIC,
        "request-timeout",
        Value,
        NotYet("non-long-running requests are bounded by their own limits, not a global timeout"),
    ),
    (
        GENERIC,
        "storage-initialization-timeout",
        Value,
        NotYet("start-up waits for the store without this bound"),
    ),
    (
        GENERIC,
        "coordinated-leadership-lease-duration",
        Value,
        NotYet("coordinated leader election is not served"),
    ),
    (
        GENERIC,
        "coordinated-leadership-renew-deadline",
        Value,
        NotYet("coordinated leader election is not served"),
    ),
    (
        GENERIC,
        "coordinated-leadership-retry-period",
        Value,
        NotYet("coordinated leader election is not served"),
    ),
    (
        ETCD,
        "delete-collection-workers",
        Value,
        NotYet("deletecollection deletes in one worker"),
    ),
    (
        ETCD,
        "enable-garbage-collector",
        Switch,
        NotYet("the garbage collector is kube-controller-manager's"),
    ),
    (
        ETCD,
        "encryption-provider-config",
        Value,
        NotYet("encryption at rest is not built yet"),
    ),
    (
        ETCD,
        "encryption-provider-config-automatic-reload",
        Switch,
        NotYet("encryption at rest is not built yet"),
    ),
    (
        ETCD,
        "etcd-compaction-interval",
        Value,
        NotYet("kapi does not compact etcd"),
    ),
    (
        ETCD,
        "etcd-count-metric-poll-period",
        Value,
        NotYet("object counts come from the watch cache"),
    ),
    (
        ETCD,
        "etcd-db-metric-poll-interval",
        Value,
        NotYet("etcd database size is not polled"),
    ),
    (
        ETCD,
        "etcd-healthcheck-timeout",
        Value,
        NotYet("the etcd health check uses its own bound"),
    ),
    (
        ETCD,
        "etcd-readycheck-timeout",
        Value,
        NotYet("the etcd ready check uses its own bound"),
    ),
    (
        ETCD,
        "etcd-servers-overrides",
        Value,
        NotYet("every resource is stored on --etcd-servers"),
    ),
    (
        ETCD,
        "lease-reuse-duration-seconds",
        Value,
        NotYet("event leases are not shared"),
    ),
    (
        ETCD,
        "storage-media-type",
        Value,
        NotYet("objects are stored as upstream's default, protobuf"),
    ),
    (
        ETCD,
        "watch-cache",
        Switch,
        NotYet("kapi always serves from its watch cache"),
    ),
    (
        ETCD,
        "watch-cache-sizes",
        Value,
        NotYet("the watch cache is bounded by --cache-encoded-bytes"),
    ),
    (
        ETCD,
        "default-watch-cache-size",
        Value,
        NotYet("the watch cache is bounded by --cache-encoded-bytes"),
    ),
    (
        SECURE_SERVING,
        "cert-dir",
        Value,
        NotYet("generated certificates live in --data-dir"),
    ),
    (
        SECURE_SERVING,
        "disable-http2-serving",
        Switch,
        NotYet("HTTP/2 is always offered"),
    ),
    (
        SECURE_SERVING,
        "http2-max-streams-per-connection",
        Value,
        NotYet("kapi's HTTP/2 stream limit is fixed"),
    ),
    (
        SECURE_SERVING,
        "permit-address-sharing",
        Switch,
        NotYet("the listener's socket options are fixed"),
    ),
    (
        SECURE_SERVING,
        "permit-port-sharing",
        Switch,
        NotYet("the listener's socket options are fixed"),
    ),
    (
        SECURE_SERVING,
        "strict-transport-security-directives",
        Value,
        NotYet("no HSTS header is sent"),
    ),
    (
        SECURE_SERVING,
        "tls-sni-cert-key",
        Value,
        NotYet("one serving certificate is used for every name"),
    ),
    (
        AUDITING,
        "audit-log-batch-buffer-size",
        Value,
        NotYet("auditing is not built yet"),
    ),
    (
        AUDITING,
        "audit-log-batch-max-size",
        Value,
        NotYet("auditing is not built yet"),
    ),
    (
        AUDITING,
        "audit-log-batch-max-wait",
        Value,
        NotYet("auditing is not built yet"),
    ),
    (
        AUDITING,
        "audit-log-batch-throttle-burst",
        Value,
        NotYet("auditing is not built yet"),
    ),
    (
        AUDITING,
        "audit-log-batch-throttle-enable",
        Switch,
        NotYet("auditing is not built yet"),
    ),
    (
        AUDITING,
        "audit-log-batch-throttle-qps",
        Value,
        NotYet("auditing is not built yet"),
    ),
    (
        AUDITING,
        "audit-log-compress",
        Switch,
        NotYet("auditing is not built yet"),
    ),
    (
        AUDITING,
        "audit-log-format",
        Value,
        NotYet("auditing is not built yet"),
    ),
    (
        AUDITING,
        "audit-log-maxage",
        Value,
        NotYet("auditing is not built yet"),
    ),
    (
        AUDITING,
        "audit-log-maxbackup",
        Value,
        NotYet("auditing is not built yet"),
    ),
    (
        AUDITING,
        "audit-log-maxsize",
        Value,
        NotYet("auditing is not built yet"),
    ),
    (
        AUDITING,
        "audit-log-mode",
        Value,
        NotYet("auditing is not built yet"),
    ),
    (
        AUDITING,
        "audit-log-path",
        Value,
        NotYet("auditing is not built yet"),
    ),
    (
        AUDITING,
        "audit-log-truncate-enabled",
        Switch,
        NotYet("auditing is not built yet"),
    ),
    (
        AUDITING,
        "audit-log-truncate-max-batch-size",
        Value,
        NotYet("auditing is not built yet"),
    ),
    (
        AUDITING,
        "audit-log-truncate-max-event-size",
        Value,
        NotYet("auditing is not built yet"),
    ),
    (
        AUDITING,
        "audit-log-version",
        Value,
        NotYet("auditing is not built yet"),
    ),
    (
        AUDITING,
        "audit-policy-file",
        Value,
        NotYet("auditing is not built yet"),
    ),
    (
        AUDITING,
        "audit-webhook-batch-buffer-size",
        Value,
        NotYet("the audit webhook backend is not built yet"),
    ),
    (
        AUDITING,
        "audit-webhook-batch-max-size",
        Value,
        NotYet("the audit webhook backend is not built yet"),
    ),
    (
        AUDITING,
        "audit-webhook-batch-max-wait",
        Value,
        NotYet("the audit webhook backend is not built yet"),
    ),
    (
        AUDITING,
        "audit-webhook-batch-throttle-burst",
        Value,
        NotYet("the audit webhook backend is not built yet"),
    ),
    (
        AUDITING,
        "audit-webhook-batch-throttle-enable",
        Switch,
        NotYet("the audit webhook backend is not built yet"),
    ),
    (
        AUDITING,
        "audit-webhook-batch-throttle-qps",
        Value,
        NotYet("the audit webhook backend is not built yet"),
    ),
    (
        AUDITING,
        "audit-webhook-config-file",
        Value,
        NotYet("the audit webhook backend is not built yet"),
    ),
    (
        AUDITING,
        "audit-webhook-initial-backoff",
        Value,
        NotYet("the audit webhook backend is not built yet"),
    ),
    (
        AUDITING,
        "audit-webhook-mode",
        Value,
        NotYet("the audit webhook backend is not built yet"),
    ),
    (
        AUDITING,
        "audit-webhook-truncate-enabled",
        Switch,
        NotYet("the audit webhook backend is not built yet"),
    ),
    (
        AUDITING,
        "audit-webhook-truncate-max-batch-size",
        Value,
        NotYet("the audit webhook backend is not built yet"),
    ),
    (
        AUDITING,
        "audit-webhook-truncate-max-event-size",
        Value,
        NotYet("the audit webhook backend is not built yet"),
    ),
    (
        AUDITING,
        "audit-webhook-version",
        Value,
        NotYet("the audit webhook backend is not built yet"),
    ),
    (
        FEATURES,
        "contention-profiling",
        Switch,
        NotYet("no Go profiler to enable"),
    ),
    (
        FEATURES,
        "debug-socket-path",
        Value,
        NotYet("no profiling socket"),
    ),
    (
        FEATURES,
        "profiling",
        Switch,
        NotYet("no /debug/pprof handlers"),
    ),
    (
        AUTHENTICATION,
        "api-audiences",
        Value,
        NotYet("service-account tokens are not built yet"),
    ),
    (
        AUTHENTICATION,
        "authentication-token-cache-ttl",
        Value,
        NotYet("no token cache to tune"),
    ),
    (
        AUTHENTICATION,
        "enable-bootstrap-token-auth",
        Switch,
        NotYet("bootstrap tokens are not built yet"),
    ),
    (
        AUTHENTICATION,
        "service-account-extend-token-expiration",
        Switch,
        NotYet("service-account tokens are not built yet"),
    ),
    (
        AUTHENTICATION,
        "service-account-issuer",
        Value,
        NotYet("service-account tokens are not built yet"),
    ),
    (
        AUTHENTICATION,
        "service-account-jwks-uri",
        Value,
        NotYet("service-account tokens are not built yet"),
    ),
    (
        AUTHENTICATION,
        "service-account-key-file",
        Value,
        NotYet("service-account tokens are not built yet"),
    ),
    (
        AUTHENTICATION,
        "service-account-lookup",
        Switch,
        NotYet("service-account tokens are not built yet"),
    ),
    (
        AUTHENTICATION,
        "service-account-max-token-expiration",
        Value,
        NotYet("service-account tokens are not built yet"),
    ),
    (
        AUTHENTICATION,
        "service-account-signing-endpoint",
        Value,
        NotYet("external JWT signers are not supported"),
    ),
    (
        AUTHENTICATION,
        "service-account-signing-key-file",
        Value,
        NotYet("service-account tokens are not built yet"),
    ),
    (
        AUTHORIZATION,
        "authorization-policy-file",
        Value,
        NotYet("ABAC is not supported"),
    ),
    (
        EGRESS,
        "egress-selector-config-file",
        Value,
        NotYet("connections go direct; no egress selector"),
    ),
    (
        ADMISSION,
        "admission-control",
        Value,
        Deprecated("use --enable-admission-plugins"),
    ),
    (
        METRICS,
        "disabled-metrics",
        Value,
        NotYet("every metric is served"),
    ),
    (
        METRICS,
        "show-hidden-metrics-for-version",
        Value,
        NotYet("no hidden metrics"),
    ),
    (
        LOGS,
        "log-flush-frequency",
        Value,
        NotYet("kapi's log is unbuffered"),
    ),
    (
        LOGS,
        "log-json-info-buffer-size",
        Value,
        NotYet("kapi logs text"),
    ),
    (
        LOGS,
        "log-json-split-stream",
        Switch,
        NotYet("kapi logs text"),
    ),
    (
        LOGS,
        "log-text-info-buffer-size",
        Value,
        NotYet("kapi's log is unbuffered"),
    ),
    (
        LOGS,
        "log-text-split-stream",
        Switch,
        NotYet("kapi logs to stderr"),
    ),
    (LOGS, "logging-format", Value, NotYet("kapi logs text")),
    (LOGS, "vmodule", Value, NotYet("no per-module verbosity")),
    (
        TRACES,
        "tracing-config-file",
        Value,
        NotYet("no OpenTelemetry tracing"),
    ),
    (
        MISC,
        "enable-aggregator-routing",
        Switch,
        NotYet("kapi does not proxy to aggregated API servers yet"),
    ),
    (MISC, "kubelet-read-only-port", Value, Removed("1.24")),
    (
        MISC,
        "kubernetes-service-node-port",
        Value,
        NotYet("the kubernetes Service is not created yet"),
    ),
    (
        MISC,
        "max-connection-bytes-per-sec",
        Value,
        NotYet("connections are not rate-limited by bytes"),
    ),
    (
        MISC,
        "peer-advertise-ip",
        Value,
        NotYet("mixed-version proxying is not served"),
    ),
    (
        MISC,
        "peer-advertise-port",
        Value,
        NotYet("mixed-version proxying is not served"),
    ),
    (
        MISC,
        "peer-ca-file",
        Value,
        NotYet("mixed-version proxying is not served"),
    ),
    (MISC, "insecure-port", Value, Removed("1.24")),
    (MISC, "insecure-bind-address", Value, Removed("1.24")),
    (MISC, "port", Value, Removed("1.24")),
    (MISC, "address", Value, Removed("1.24")),
    (MISC, "kubelet-https", Switch, Removed("1.22")),
    (MISC, "target-ram-mb", Value, Removed("1.29")),
    (MISC, "master-service-namespace", Value, Removed("1.27")),
    (MISC, "deserialization-cache-size", Value, Removed("1.16")),
    (MISC, "enable-swagger-ui", Switch, Removed("1.14")),
    (MISC, "basic-auth-file", Value, Removed("1.19")),
    (MISC, "repair-malformed-updates", Switch, Removed("1.15")),
    (MISC, "storage-versions", Value, Removed("1.17")),
    (MISC, "cloud-provider", Value, Removed("1.33")),
    (MISC, "cloud-config", Value, Removed("1.33")),
    (
        MISC,
        "service-account-api-audiences",
        Value,
        Removed("1.25"),
    ),
    (
        MISC,
        "experimental-encryption-provider-config",
        Value,
        Removed("1.17"),
    ),
    (MISC, "enable-logs-handler", Switch, Removed("1.35")),
    (LOGS, "log-dir", Value, Removed("1.26")),
    (LOGS, "log-file", Value, Removed("1.26")),
    (LOGS, "log-file-max-size", Value, Removed("1.26")),
    (LOGS, "logtostderr", Switch, Removed("1.26")),
    (LOGS, "alsologtostderr", Switch, Removed("1.26")),
    (LOGS, "stderrthreshold", Value, Removed("1.26")),
    (LOGS, "skip-headers", Switch, Removed("1.26")),
    (LOGS, "skip-log-headers", Switch, Removed("1.26")),
    (LOGS, "one-output", Switch, Removed("1.26")),
    (LOGS, "add-dir-header", Switch, Removed("1.26")),
    (LOGS, "log-backtrace-at", Value, Removed("1.26")),
];

/// Adds every compat flag the command does not define for real.
pub fn add_compat(mut cmd: Command) -> Command {
    let defined: std::collections::HashSet<String> = cmd
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_owned))
        .collect();
    for &(heading, name, takes, why) in COMPAT {
        if defined.contains(name) {
            continue;
        }
        let help = match why {
            NotYet(reason) => format!("Accepted, not honoured yet: {reason}."),
            Removed(v) => format!("Removed upstream in {v}; accepted and ignored."),
            Deprecated(note) => format!("Deprecated upstream ({note}); ignored."),
        };
        let arg = Arg::new(name)
            .long(name)
            .help(help)
            .help_heading(heading)
            .action(ArgAction::Append);
        let arg = match takes {
            Value => arg.num_args(1).value_name("value"),
            Switch => arg
                .num_args(0..=1)
                .require_equals(true)
                .default_missing_value("true")
                .value_name("bool"),
        };
        cmd = cmd.arg(arg);
    }
    cmd
}

/// The warnings for every compat flag given on the command line.
pub fn compat_warnings(matches: &ArgMatches) -> Vec<String> {
    let mut warnings = Vec::new();
    for &(_, name, _, why) in COMPAT {
        let given = matches
            .try_get_raw_occurrences(name)
            .ok()
            .flatten()
            .map(|o| o.count() > 0)
            .unwrap_or(false);
        if !given {
            continue;
        }
        warnings.push(match why {
            NotYet(reason) => format!("flag --{name} is accepted but not honoured: {reason}"),
            Removed(v) => format!("flag --{name} was removed upstream in {v}; ignored"),
            Deprecated(note) => format!("flag --{name} is deprecated upstream: {note}; ignored"),
        });
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_and_port_ranges_parse_as_upstream() {
        assert!(parse_cidr("10.32.0.0/24").is_ok());
        assert!(parse_cidr("fd00::/108").is_ok());
        assert!(parse_cidr("10.32.0.0").is_err());
        assert!(parse_cidr("10.32.0.0/33").is_err());
        assert_eq!(parse_port_range("30000-32767"), Ok((30000, 2768)));
        assert_eq!(parse_port_range("8080"), Ok((8080, 1)));
        assert!(parse_port_range("32767-30000").is_err());
    }

    #[test]
    fn compat_flags_are_named_once_and_warned() {
        let mut seen = std::collections::HashSet::new();
        for (_, name, _, _) in COMPAT {
            assert!(seen.insert(*name), "--{name} listed twice");
        }
        let cmd = add_compat(Command::new("t"));
        let m = cmd
            .try_get_matches_from([
                "t",
                "--debug-socket-path=/tmp/x",
                "--profiling",
                "--insecure-port",
                "0",
            ])
            .unwrap();
        let w = compat_warnings(&m);
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(
            w.iter()
                .any(|w| w.contains("--insecure-port was removed upstream"))
        );
    }
}
