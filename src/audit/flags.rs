//! The `--audit-*` flags, named, defaulted and described as kube-apiserver's.

use std::path::PathBuf;

/// The `--audit-*` flags (their own clap group id: every module's flags struct is `Flags`).
#[derive(Debug, Clone, clap::Args)]
#[group(id = "audit-flags")]
pub struct Flags {
    /// Path to the file that defines the audit policy configuration.
    #[arg(long)]
    pub audit_policy_file: Option<PathBuf>,
    /// If set, all requests coming to the apiserver will be logged to this file.  '-' means
    /// standard out.
    #[arg(long)]
    pub audit_log_path: Option<String>,
    /// The maximum number of days to retain old audit log files based on the timestamp encoded
    /// in their filename.
    #[arg(long, default_value_t = 0)]
    pub audit_log_maxage: u64,
    /// The maximum number of old audit log files to retain. Setting a value of 0 will mean
    /// there's no restriction on the number of files.
    #[arg(long, default_value_t = 0)]
    pub audit_log_maxbackup: usize,
    /// The maximum size in megabytes of the audit log file before it gets rotated.
    #[arg(long, default_value_t = 0)]
    pub audit_log_maxsize: u64,
    /// Format of saved audits. "legacy" indicates 1-line text format for each event. "json"
    /// indicates structured json format. Known formats are legacy,json.
    #[arg(long, default_value = "json", value_parser = ["legacy", "json"])]
    pub audit_log_format: String,
    /// Strategy for sending audit events. Blocking indicates sending events should block server
    /// responses. Batch causes the backend to buffer and write events asynchronously. Known
    /// modes are batch,blocking,blocking-strict.
    #[arg(long, default_value = "blocking", value_parser = ["batch", "blocking", "blocking-strict"])]
    pub audit_log_mode: String,
    /// The size of the buffer to store events before batching and writing. Only used in batch
    /// mode.
    #[arg(long, default_value_t = 10_000)]
    pub audit_log_batch_buffer_size: usize,
    /// If set, the rotated log files will be compressed using gzip.
    #[arg(long, default_value_t = false, num_args = 0..=1, default_missing_value = "true",
          action = clap::ArgAction::Set)]
    pub audit_log_compress: bool,
    /// API group and version used for serializing audit events written to log.
    #[arg(long, default_value = "audit.k8s.io/v1")]
    pub audit_log_version: String,
    /// Path to a kubeconfig formatted file that defines the audit webhook configuration.
    #[arg(long)]
    pub audit_webhook_config_file: Option<PathBuf>,
    /// Strategy for sending audit events. Blocking indicates sending events should block server
    /// responses. Batch causes the backend to buffer and write events asynchronously. Known
    /// modes are batch,blocking,blocking-strict.
    #[arg(long, default_value = "batch", value_parser = ["batch", "blocking", "blocking-strict"])]
    pub audit_webhook_mode: String,
    /// The size of the buffer to store events before batching and writing. Only used in batch
    /// mode.
    #[arg(long, default_value_t = 10_000)]
    pub audit_webhook_batch_buffer_size: usize,
    /// The maximum size of a batch. Only used in batch mode.
    #[arg(long, default_value_t = 400)]
    pub audit_webhook_batch_max_size: usize,
    /// The amount of time to wait before force writing the batch that hadn't reached the max
    /// size. Only used in batch mode.
    #[arg(long, default_value = "30s", value_parser = crate::shutdown::parse_duration)]
    pub audit_webhook_batch_max_wait: std::time::Duration,
    /// The amount of time to wait before retrying the first failed request.
    #[arg(long, default_value = "10s", value_parser = crate::shutdown::parse_duration)]
    pub audit_webhook_initial_backoff: std::time::Duration,
    /// API group and version used for serializing audit events written to webhook.
    #[arg(long, default_value = "audit.k8s.io/v1")]
    pub audit_webhook_version: String,
}

impl Default for Flags {
    fn default() -> Flags {
        Flags {
            audit_policy_file: None,
            audit_log_path: None,
            audit_log_maxage: 0,
            audit_log_maxbackup: 0,
            audit_log_maxsize: 0,
            audit_log_format: "json".into(),
            audit_log_mode: "blocking".into(),
            audit_log_batch_buffer_size: 10_000,
            audit_log_compress: false,
            audit_log_version: "audit.k8s.io/v1".into(),
            audit_webhook_config_file: None,
            audit_webhook_mode: "batch".into(),
            audit_webhook_batch_buffer_size: 10_000,
            audit_webhook_batch_max_size: 400,
            audit_webhook_batch_max_wait: std::time::Duration::from_secs(30),
            audit_webhook_initial_backoff: std::time::Duration::from_secs(10),
            audit_webhook_version: "audit.k8s.io/v1".into(),
        }
    }
}
