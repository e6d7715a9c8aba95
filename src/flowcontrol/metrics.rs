//! Flow control's metrics, with upstream's names and labels (`apiserver_flowcontrol_*`),
//! registered in the prometheus crate's default registry that `/metrics` gathers.

use std::sync::LazyLock;

use prometheus::{
    HistogramVec, IntCounterVec, IntGaugeVec, register_histogram_vec, register_int_counter_vec,
    register_int_gauge_vec,
};

/// Upstream's buckets of `apiserver_flowcontrol_request_wait_duration_seconds`.
const WAIT_BUCKETS: &[f64] = &[
    0.0, 0.005, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0,
];

pub struct Metrics {
    pub dispatched: IntCounterVec,
    pub rejected: IntCounterVec,
    pub executing_requests: IntGaugeVec,
    pub inqueue_requests: IntGaugeVec,
    pub wait_duration: HistogramVec,
    pub nominal_limit_seats: IntGaugeVec,
    pub current_limit_seats: IntGaugeVec,
    pub executing_seats: IntGaugeVec,
}

/// Registered once per process (the default registry refuses a second registration); None
/// only if another part registered the same names first, and then flow control counts nothing.
pub static METRICS: LazyLock<Option<Metrics>> = LazyLock::new(|| {
    const PL_FS: &[&str] = &["priority_level", "flow_schema"];
    Some(Metrics {
        dispatched: register_int_counter_vec!(
            "apiserver_flowcontrol_dispatched_requests_total",
            "Number of requests executed by API Priority and Fairness subsystem",
            PL_FS
        )
        .ok()?,
        rejected: register_int_counter_vec!(
            "apiserver_flowcontrol_rejected_requests_total",
            "Number of requests rejected by API Priority and Fairness subsystem",
            &["priority_level", "flow_schema", "reason"]
        )
        .ok()?,
        executing_requests: register_int_gauge_vec!(
            "apiserver_flowcontrol_current_executing_requests",
            "Number of requests in initial (for a WATCH) or any (for a non-WATCH) execution stage in the API Priority and Fairness subsystem",
            PL_FS
        )
        .ok()?,
        inqueue_requests: register_int_gauge_vec!(
            "apiserver_flowcontrol_current_inqueue_requests",
            "Number of requests currently pending in queues of the API Priority and Fairness subsystem",
            PL_FS
        )
        .ok()?,
        wait_duration: register_histogram_vec!(
            "apiserver_flowcontrol_request_wait_duration_seconds",
            "Length of time a request spent waiting in its queue",
            &["priority_level", "flow_schema", "execute"],
            WAIT_BUCKETS.to_vec()
        )
        .ok()?,
        nominal_limit_seats: register_int_gauge_vec!(
            "apiserver_flowcontrol_nominal_limit_seats",
            "Nominal number of execution seats configured for each priority level",
            &["priority_level"]
        )
        .ok()?,
        current_limit_seats: register_int_gauge_vec!(
            "apiserver_flowcontrol_current_limit_seats",
            "current derived number of execution seats available to each priority level",
            &["priority_level"]
        )
        .ok()?,
        executing_seats: register_int_gauge_vec!(
            "apiserver_flowcontrol_current_executing_seats",
            "Concurrency (number of seats) occupied by the currently executing (initial stage for a WATCH, any stage otherwise) requests in the API Priority and Fairness subsystem",
            &["priority_level"]
        )
        .ok()?,
    })
});

pub fn get() -> Option<&'static Metrics> {
    METRICS.as_ref()
}

/// One FlowSchema's series (with its level), looked up once per configuration rather than
/// per request: the label lookups are the costly part of counting.
pub struct FlowMeters {
    pub dispatched: prometheus::IntCounter,
    pub executing: prometheus::IntGauge,
    pub inqueue: prometheus::IntGauge,
    /// Waits of requests that then executed.
    pub waited: prometheus::Histogram,
}

impl FlowMeters {
    pub fn new(level: &str, flow_schema: &str) -> Option<std::sync::Arc<FlowMeters>> {
        let m = get()?;
        let labels = [level, flow_schema];
        Some(std::sync::Arc::new(FlowMeters {
            dispatched: m.dispatched.with_label_values(&labels),
            executing: m.executing_requests.with_label_values(&labels),
            inqueue: m.inqueue_requests.with_label_values(&labels),
            waited: m
                .wait_duration
                .with_label_values(&[level, flow_schema, "true"]),
        }))
    }
}
