//! One audited request's events: the `Recorder` that `Audit::begin` hands the pipeline, which
//! notes the authorization decision and sends each stage's event; for a streamed response the
//! last one is sent when the transport is done with the stream.

use std::sync::Arc;
use std::sync::mpsc::TrySendError;

use bytes::Bytes;
use http::HeaderValue;

use super::event::{self, Decision, Event};
use super::policy::{self, Level, Stage};
use super::{Auditor, ERRORS, EVENTS, Mode, now_micros};
use crate::transport::{Body, Response, StreamObserver};

/// One audited request's events.
pub struct Recorder {
    pub(super) auditor: Arc<Auditor>,
    pub(super) request: Arc<event::Request>,
    pub(super) omit: policy::Stages,
    /// A watch: ResponseStarted when its headers leave, ResponseComplete when it ends.
    pub(super) long_running: bool,
    pub(super) decision: Option<Decision>,
    /// What admission added to the events (`annotations`, beside the decision's).
    pub(super) annotations: Vec<(String, String)>,
    /// The last event was sent (or the request was refused): nothing is left to send on drop.
    pub(super) finished: bool,
}

impl Recorder {
    /// The recorder of a request the policy does not log (level None): it only names the
    /// audit ID in the response.
    pub(super) fn unlogged(auditor: Arc<super::Auditor>, audit_id: String) -> Recorder {
        Recorder {
            auditor,
            request: Arc::new(event::Request {
                level: Level::None,
                audit_id,
                request_uri: String::new(),
                verb: String::new(),
                user: event::User {
                    username: String::new(),
                    uid: String::new(),
                    groups: Vec::new(),
                    extra: Vec::new(),
                },
                impersonated_user: None,
                source_ips: Vec::new(),
                user_agent: String::new(),
                object_ref: None,
                request_body: None,
                received_micros: 0,
                omit_managed_fields: false,
            }),
            omit: policy::Stages::default(),
            long_running: false,
            decision: None,
            annotations: Vec::new(),
            finished: false,
        }
    }

    /// The user an impersonating request runs as (`impersonatedUser` in the later stages'
    /// events, as upstream's impersonation filter records it).
    pub fn impersonated(&mut self, user: &crate::authn::UserInfo) {
        let mut request = (*self.request).clone();
        request.impersonated_user = Some(event::User {
            username: user.name.clone(),
            uid: user.uid.clone(),
            groups: user.groups.clone(),
            extra: user
                .extra
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        });
        self.request = Arc::new(request);
    }

    /// The authorization decision, for the events' annotations.
    pub fn authorized(&mut self, allowed: bool, reason: &str) {
        self.decision = Some(Decision {
            allowed,
            reason: reason.to_string(),
        });
    }

    /// Annotations for the events still to send (admission's).
    pub fn annotate(&mut self, annotations: Vec<(String, String)>) {
        self.annotations.extend(annotations);
    }

    /// Sends one stage's event unless the policy omits the stage; false if it could not be
    /// queued.
    pub(super) fn emit(&self, stage: Stage, response: Option<event::Response>) -> bool {
        if self.request.level == Level::None || self.omit.contains(stage) {
            return true;
        }
        let event = Arc::new(Event {
            request: self.request.clone(),
            stage,
            stage_micros: now_micros(),
            response,
            decision: self.decision.clone(),
            annotations: self.annotations.clone(),
        });
        EVENTS.inc();
        let mut all_sent = true;
        for backend in &self.auditor.backends {
            let sent = match backend.mode {
                Mode::Batch => match backend.queue.try_send(event.clone()) {
                    Ok(()) => true,
                    Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
                },
                Mode::Blocking | Mode::BlockingStrict => backend.queue.send(event.clone()).is_ok(),
            };
            if !sent {
                ERRORS.with_label_values(&[backend.plugin]).inc();
                all_sent = false;
            }
        }
        all_sent
    }

    /// The response with its `Audit-Id` header; its events sent now, or (a streamed body)
    /// ResponseStarted now for a watch and ResponseComplete when the stream ends.
    pub fn finish(mut self: Box<Self>, mut response: Response) -> Response {
        if let Ok(id) = HeaderValue::from_str(&self.request.audit_id) {
            response.headers.insert("audit-id", id);
        }
        if self.request.level == Level::None {
            self.finished = true;
            return response;
        }
        let code = response.status.as_u16();
        let (chunks, inner) = match std::mem::replace(&mut response.body, Body::Full(Bytes::new()))
        {
            Body::Full(body) => {
                let kept = (code >= 300 || self.request.level == Level::RequestResponse)
                    .then(|| body.clone());
                response.body = Body::Full(body);
                self.finished = true;
                self.emit(Stage::ResponseComplete, Some(response_of(code, kept)));
                return response;
            }
            Body::Stream(chunks) => (chunks, None),
            Body::Observed(chunks, inner) => (chunks, Some(inner)),
            // An upgraded connection: complete once switched, as upstream's proxy records it.
            tunnel @ Body::Tunnel(..) => {
                response.body = tunnel;
                self.finished = true;
                self.emit(Stage::ResponseComplete, Some(response_of(code, None)));
                return response;
            }
        };
        if self.long_running {
            self.emit(Stage::ResponseStarted, Some(response_of(code, None)));
        }
        response.body = Body::Observed(
            chunks,
            Box::new(StreamEnd {
                inner,
                recorder: Some(self),
                code,
            }),
        );
        response
    }
}

impl Drop for Recorder {
    /// A request dropped while unwinding a panic gets the Panic stage, as upstream's.
    fn drop(&mut self) {
        if !self.finished && std::thread::panicking() {
            let response = event::Response {
                code: 500,
                body: None,
                panic: true,
                message: Some("APIServer panic'd".into()),
            };
            self.emit(Stage::Panic, Some(response));
        }
    }
}

pub(super) fn response_of(code: u16, body: Option<Bytes>) -> event::Response {
    event::Response {
        code,
        body,
        panic: false,
        message: None,
    }
}

/// Sends ResponseComplete when the transport is done with a streamed body; passes the
/// chunks on to the observer it wraps (metrics).
struct StreamEnd {
    inner: Option<Box<dyn StreamObserver>>,
    recorder: Option<Box<Recorder>>,
    code: u16,
}

impl StreamObserver for StreamEnd {
    fn chunk(&self, len: usize) {
        if let Some(inner) = &self.inner {
            inner.chunk(len);
        }
    }

    fn long_running(&self) -> bool {
        match &self.inner {
            Some(inner) => inner.long_running(),
            None => self.recorder.as_ref().is_some_and(|r| r.long_running),
        }
    }
}

impl Drop for StreamEnd {
    fn drop(&mut self) {
        // The wrapped observer ends first (metrics record the request), then the audit event.
        self.inner.take();
        if let Some(mut recorder) = self.recorder.take() {
            recorder.finished = true;
            recorder.emit(Stage::ResponseComplete, Some(response_of(self.code, None)));
        }
    }
}
