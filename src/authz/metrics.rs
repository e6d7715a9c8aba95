//! Upstream's authorization metrics: the decisions of the configured authorizers, the webhook
//! authorizers' calls and match conditions, and the automatic reloads of
//! `--authorization-config`. Registered when the chain is built, so `/metrics` lists them from
//! the start.

use std::sync::LazyLock;

use prometheus::{GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, Opts};

use crate::metrics::{Stability, help, register};

fn counter(name: &str, text: &str, labels: &[&str]) -> IntCounterVec {
    register(
        IntCounterVec::new(Opts::new(name, help(Stability::Alpha, None, text)), labels)
            .expect("a valid metric"),
    )
}

/// Allowed and denied decisions by authorizer type and name (no opinion is not terminal, and
/// not counted, as upstream).
pub static DECISIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "apiserver_authorization_decisions_total",
        "Total number of terminal decisions made by an authorizer split by authorizer type, name, and decision.",
        &["type", "name", "decision"],
    )
});

/// Webhook calls by result: `success`, `timeout`, `error`.
pub static WEBHOOK_EVALUATIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "apiserver_authorization_webhook_evaluations_total",
        "Round-trips to authorization webhooks.",
        &["name", "result"],
    )
});

/// Webhook round-trips' durations in seconds, by name and result (upstream's buckets).
pub static WEBHOOK_DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    register(
        HistogramVec::new(
            HistogramOpts::new(
                "apiserver_authorization_webhook_duration_seconds",
                help(Stability::Alpha, None, "Request latency in seconds."),
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["name", "result"],
        )
        .expect("a valid metric"),
    )
});

/// Failed webhook calls answered as no opinion (`failurePolicy: NoOpinion`).
pub static WEBHOOK_FAIL_OPEN: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "apiserver_authorization_webhook_evaluations_fail_open_total",
        "NoOpinion results due to webhook timeout or error.",
        &["name", "result"],
    )
});

/// Requests a webhook's match conditions kept from it.
pub static MATCH_EXCLUSIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "apiserver_authorization_match_condition_exclusions_total",
        "Total count of times the authorizer skipped a request because a match condition evaluated to false.",
        &["type", "name"],
    )
});

/// Match conditions that could not be evaluated.
pub static MATCH_ERRORS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "apiserver_authorization_match_condition_evaluation_errors_total",
        "Total number of errors when an authorization webhook encounters a match condition error split by authorizer type and name.",
        &["type", "name"],
    )
});

/// Reloads of `--authorization-config` by status (`success`, `failure`).
pub static RELOADS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "apiserver_authorization_config_controller_automatic_reloads_total",
        "Total number of automatic reloads of authorization configuration split by status and apiserver identity.",
        &["status"],
    )
});

/// When `--authorization-config` was last reloaded, by status, in seconds since the epoch.
pub static RELOAD_TIME: LazyLock<GaugeVec> = LazyLock::new(|| {
    register(
        GaugeVec::new(
            Opts::new(
                "apiserver_authorization_config_controller_automatic_reload_last_timestamp_seconds",
                help(
                    Stability::Alpha,
                    None,
                    "Timestamp of the last automatic reload of authorization configuration split by status and apiserver identity.",
                ),
            ),
            &["status"],
        )
        .expect("a valid metric"),
    )
});

/// Counts a reload of `--authorization-config` and notes its time.
pub fn reloaded(status: &str) {
    RELOADS.with_label_values(&[status]).inc();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    RELOAD_TIME.with_label_values(&[status]).set(now);
}

pub fn init() {
    LazyLock::force(&DECISIONS);
    LazyLock::force(&WEBHOOK_EVALUATIONS);
    LazyLock::force(&WEBHOOK_FAIL_OPEN);
    LazyLock::force(&MATCH_EXCLUSIONS);
    LazyLock::force(&MATCH_ERRORS);
    LazyLock::force(&RELOADS);
    LazyLock::force(&WEBHOOK_DURATION);
    LazyLock::force(&RELOAD_TIME);
}
