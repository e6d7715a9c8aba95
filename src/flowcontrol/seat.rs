//! What admission hands back: a `Seat` (RAII: its seats go back when it is dropped, on
//! whatever core) or a `Rejection` (upstream's 429). Both carry the PF response headers.

use std::sync::Arc;
use std::time::Instant;

use http::{HeaderMap, HeaderValue, StatusCode, header};

use super::FlowControl;
use super::dispatch::{Dispatcher, Held};
use super::metrics::{self, FlowMeters};
use super::queueset::RejectReason;
use crate::transport::{Body, Response};

/// Upstream's headers naming (by UID, so names chosen by admins are not exposed) the
/// FlowSchema and priority level a request was classified into.
pub const FLOW_SCHEMA_UID_HEADER: &str = "x-kubernetes-pf-flowschema-uid";
pub const PRIORITY_LEVEL_UID_HEADER: &str = "x-kubernetes-pf-prioritylevel-uid";

#[derive(Debug, Clone, Default)]
pub struct PfHeaders {
    pub flow_schema_uid: String,
    pub priority_level_uid: String,
}

impl PfHeaders {
    fn apply(&self, headers: &mut HeaderMap) {
        for (name, value) in [
            (PRIORITY_LEVEL_UID_HEADER, &self.priority_level_uid),
            (FLOW_SCHEMA_UID_HEADER, &self.flow_schema_uid),
        ] {
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.insert(name, v);
            }
        }
    }
}

pub(super) enum SeatKind {
    /// Not limited (max-in-flight's watches, no configuration).
    Unlimited,
    /// The exempt level: counted, never limited.
    Exempt { meters: Option<Arc<FlowMeters>> },
    /// Seats of a limited level.
    Granted {
        dispatcher: Arc<Dispatcher>,
        held: Held,
        meters: Option<Arc<FlowMeters>>,
    },
    /// A max-in-flight slot.
    InFlight {
        limits: Arc<FlowControl>,
        mutating: bool,
    },
}

/// Seats held by an executing request; given back when dropped.
pub struct Seat {
    kind: SeatKind,
    headers: Option<PfHeaders>,
}

impl Seat {
    pub(super) fn new(kind: SeatKind) -> Seat {
        Seat {
            kind,
            headers: None,
        }
    }

    pub(super) fn unlimited() -> Seat {
        Seat::new(SeatKind::Unlimited)
    }

    pub(super) fn exempt(meters: Option<Arc<FlowMeters>>, headers: PfHeaders) -> Seat {
        if let Some(m) = &meters {
            m.dispatched.inc();
            m.executing.inc();
            m.waited.observe(0.0);
        }
        Seat {
            kind: SeatKind::Exempt { meters },
            headers: Some(headers),
        }
    }

    pub(super) fn granted(
        dispatcher: Arc<Dispatcher>,
        held: Held,
        meters: Option<Arc<FlowMeters>>,
        headers: PfHeaders,
        since: Instant,
    ) -> Seat {
        if let Some(m) = &meters {
            m.dispatched.inc();
            m.executing.inc();
            m.waited.observe(since.elapsed().as_secs_f64());
        }
        Seat {
            kind: SeatKind::Granted {
                dispatcher,
                held,
                meters,
            },
            headers: Some(headers),
        }
    }

    /// The PF headers of the request's classification, for its response (none when it was
    /// not classified).
    pub fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(h) = &self.headers {
            h.apply(&mut headers);
        }
        headers
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        match &self.kind {
            SeatKind::Unlimited => {}
            SeatKind::Exempt { meters } => {
                if let Some(m) = meters {
                    m.executing.dec();
                }
            }
            SeatKind::Granted {
                dispatcher,
                held,
                meters,
            } => {
                if let Some(m) = meters {
                    m.executing.dec();
                }
                dispatcher.release(held);
            }
            SeatKind::InFlight { limits, mutating } => limits.release_inflight(*mutating),
        }
    }
}

/// A refused request: upstream's 429.
#[derive(Debug)]
pub struct Rejection {
    pub reason: RejectReason,
    headers: Option<PfHeaders>,
    retry_after_seconds: i64,
}

impl Rejection {
    pub(super) fn new(
        level: &str,
        flow_schema: &str,
        reason: RejectReason,
        headers: Option<PfHeaders>,
        retry_after_seconds: i64,
    ) -> Rejection {
        if headers.is_some()
            && let Some(m) = metrics::get()
        {
            m.rejected
                .with_label_values(&[level, flow_schema, reason.label()])
                .inc();
        }
        Rejection {
            reason,
            headers,
            retry_after_seconds,
        }
    }

    /// Upstream's answer (its `tooManyRequests`, an `http.Error`): 429, `Retry-After`, the
    /// text "Too many requests, please try again later." and the PF headers.
    pub fn response(&self) -> Response {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(
            "x-content-type-options",
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            header::RETRY_AFTER,
            HeaderValue::from(self.retry_after_seconds),
        );
        if let Some(h) = &self.headers {
            h.apply(&mut headers);
        }
        Response {
            status: StatusCode::TOO_MANY_REQUESTS,
            headers,
            body: Body::Full(bytes::Bytes::from_static(
                b"Too many requests, please try again later.\n",
            )),
        }
    }
}
