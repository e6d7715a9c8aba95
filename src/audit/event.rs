//! One `audit.k8s.io/v1 Event` and its two line formats: `json` (the Event, fields in
//! upstream's order) and `legacy` (upstream's `AUDIT: id=... stage=...` text line). Built on
//! the request's core with what is cheap to take (strings, shared body bytes); rendered on the
//! writer thread, where the bodies are parsed.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

use super::policy::{Level, Stage};

/// What every stage of one request's events shares.
#[derive(Debug, Clone)]
pub struct Request {
    pub level: Level,
    pub audit_id: String,
    pub request_uri: String,
    pub verb: String,
    pub user: User,
    pub impersonated_user: Option<User>,
    pub source_ips: Vec<String>,
    pub user_agent: String,
    pub object_ref: Option<ObjectRef>,
    /// The request body, at level Request and above (rendered if it is JSON).
    pub request_body: Option<Bytes>,
    /// Microseconds since the epoch.
    pub received_micros: i64,
    pub omit_managed_fields: bool,
}

#[derive(Debug, Clone)]
pub struct User {
    pub username: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: Vec<(String, Vec<String>)>,
}

#[derive(Debug, Clone)]
pub struct ObjectRef {
    pub resource: String,
    pub namespace: String,
    pub name: String,
    pub api_group: String,
    pub api_version: String,
    pub subresource: String,
}

/// One stage's event: the request's shared part and what this stage adds.
#[derive(Debug)]
pub struct Event {
    pub request: Arc<Request>,
    pub stage: Stage,
    pub stage_micros: i64,
    /// The response's code, and its body when it is a `Status` or (RequestResponse) the object.
    pub response: Option<Response>,
    pub decision: Option<Decision>,
    /// Admission's annotations (PodSecurity's, webhooks').
    pub annotations: Vec<(String, String)>,
}

#[derive(Debug)]
pub struct Response {
    pub code: u16,
    pub body: Option<Bytes>,
    /// The request panicked (stage Panic).
    pub panic: bool,
    /// The status message when there is no Status body to take it from (a panic, a failed
    /// authentication).
    pub message: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Decision {
    pub allowed: bool,
    pub reason: String,
}

/// `2026-12-01T18:30:43.123456Z`, metav1.MicroTime's form.
fn micro_time(micros: i64) -> String {
    let mut out = Vec::with_capacity(28);
    kapi_codec::goscalar::format_time(micros.div_euclid(1_000_000), &mut out);
    let base = String::from_utf8_lossy(&out);
    format!(
        "{}.{:06}Z",
        base.trim_end_matches('Z'),
        micros.rem_euclid(1_000_000)
    )
}

/// Go's RFC3339Nano: the fraction without its trailing zeros.
fn rfc3339_nano(micros: i64) -> String {
    let t = micro_time(micros);
    let Some((whole, fraction)) = t.trim_end_matches('Z').split_once('.') else {
        return t;
    };
    match fraction.trim_end_matches('0') {
        "" => format!("{whole}Z"),
        f => format!("{whole}.{f}Z"),
    }
}

fn json_str(out: &mut Vec<u8>, s: &str) {
    let _ = serde_json::to_writer(&mut *out, s);
}

fn strip_managed_fields(v: &mut Value) {
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    if let Some(items) = v.get_mut("items").and_then(Value::as_array_mut) {
        for item in items {
            strip_managed_fields(item);
        }
    }
}

/// A body as a JSON value: JSON as is, protobuf (`k8s\0` envelope) transcoded, as upstream
/// logs every object as JSON. Anything else (YAML, a patch that is not an object) is left out.
fn body_object(body: &[u8], omit_managed_fields: bool) -> Option<Value> {
    let mut v: Value = if body.starts_with(kapi_codec::envelope::PROTOBUF_MAGIC) {
        let mut json = Vec::with_capacity(body.len() * 2);
        kapi_codec::to_json::envelope_to_json(body, &mut json).ok()?;
        serde_json::from_slice(&json).ok()?
    } else {
        serde_json::from_slice(body).ok()?
    };
    if !v.is_object() {
        return None;
    }
    if omit_managed_fields {
        strip_managed_fields(&mut v);
    }
    Some(v)
}

impl User {
    fn write_json(&self, out: &mut Vec<u8>) {
        // Every field is omitted when empty (a failed authentication has no user).
        let mut fields = serde_json::Map::new();
        if !self.username.is_empty() {
            fields.insert("username".into(), self.username.clone().into());
        }
        if !self.uid.is_empty() {
            fields.insert("uid".into(), self.uid.clone().into());
        }
        if !self.groups.is_empty() {
            fields.insert("groups".into(), self.groups.clone().into());
        }
        if !self.extra.is_empty() {
            let extra: serde_json::Map<String, Value> = self
                .extra
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.clone())))
                .collect();
            fields.insert("extra".into(), Value::Object(extra));
        }
        // serde_json's map sorts its keys: write them in upstream's order instead.
        out.push(b'{');
        let mut first = true;
        for k in ["username", "uid", "groups", "extra"] {
            if let Some(v) = fields.get(k) {
                if !first {
                    out.push(b',');
                }
                first = false;
                json_str(out, k);
                out.push(b':');
                let _ = serde_json::to_writer(&mut *out, v);
            }
        }
        out.push(b'}');
    }
}

impl Event {
    /// The event as one JSON line (with its newline).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let r = &*self.request;
        out.extend_from_slice(
            b"{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\":\"",
        );
        out.extend_from_slice(r.level.as_str().as_bytes());
        out.extend_from_slice(b"\",\"auditID\":");
        json_str(out, &r.audit_id);
        out.extend_from_slice(b",\"stage\":\"");
        out.extend_from_slice(self.stage.as_str().as_bytes());
        out.extend_from_slice(b"\",\"requestURI\":");
        json_str(out, &r.request_uri);
        out.extend_from_slice(b",\"verb\":");
        json_str(out, &r.verb);
        out.extend_from_slice(b",\"user\":");
        r.user.write_json(out);
        if let Some(u) = &r.impersonated_user {
            out.extend_from_slice(b",\"impersonatedUser\":");
            u.write_json(out);
        }
        if !r.source_ips.is_empty() {
            out.extend_from_slice(b",\"sourceIPs\":");
            let _ = serde_json::to_writer(&mut *out, &r.source_ips);
        }
        if !r.user_agent.is_empty() {
            out.extend_from_slice(b",\"userAgent\":");
            json_str(out, &r.user_agent);
        }
        if let Some(o) = &r.object_ref {
            out.extend_from_slice(b",\"objectRef\":{");
            let mut first = true;
            for (k, v) in [
                ("resource", &o.resource),
                ("namespace", &o.namespace),
                ("name", &o.name),
                ("apiGroup", &o.api_group),
                ("apiVersion", &o.api_version),
                ("subresource", &o.subresource),
            ] {
                if v.is_empty() {
                    continue;
                }
                if !first {
                    out.push(b',');
                }
                first = false;
                json_str(out, k);
                out.push(b':');
                json_str(out, v);
            }
            out.push(b'}');
        }
        if let Some(resp) = &self.response {
            out.extend_from_slice(b",\"responseStatus\":");
            self.write_response_status(resp, out);
        }
        // The body is decoded after RequestReceived is logged, as upstream's is.
        if r.level >= Level::Request
            && self.stage != Stage::RequestReceived
            && let Some(obj) = r
                .request_body
                .as_ref()
                .and_then(|b| body_object(b, r.omit_managed_fields))
        {
            out.extend_from_slice(b",\"requestObject\":");
            let _ = serde_json::to_writer(&mut *out, &obj);
        }
        if r.level >= Level::RequestResponse
            && self.stage == Stage::ResponseComplete
            && let Some(obj) = self
                .response
                .as_ref()
                .and_then(|resp| resp.body.as_ref())
                .and_then(|b| body_object(b, r.omit_managed_fields))
        {
            out.extend_from_slice(b",\"responseObject\":");
            let _ = serde_json::to_writer(&mut *out, &obj);
        }
        out.extend_from_slice(b",\"requestReceivedTimestamp\":");
        json_str(out, &micro_time(r.received_micros));
        out.extend_from_slice(b",\"stageTimestamp\":");
        json_str(out, &micro_time(self.stage_micros));
        // A map, as upstream's (its keys sorted, as Go's encoder writes them).
        let mut annotations: std::collections::BTreeMap<&str, &str> = self
            .annotations
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if let Some(d) = &self.decision {
            annotations.insert(
                "authorization.k8s.io/decision",
                if d.allowed { "allow" } else { "forbid" },
            );
            annotations.insert("authorization.k8s.io/reason", &d.reason);
        }
        if !annotations.is_empty() {
            out.extend_from_slice(b",\"annotations\":{");
            for (i, (k, v)) in annotations.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json_str(out, k);
                out.push(b':');
                json_str(out, v);
            }
            out.push(b'}');
        }
        out.extend_from_slice(b"}\n");
    }

    /// `{"metadata":{},"code":200}`; a failure's `Status` fields (status, message, reason,
    /// details) when its body is a JSON Status.
    fn write_response_status(&self, resp: &Response, out: &mut Vec<u8>) {
        let mut status = serde_json::Map::new();
        status.insert("metadata".into(), Value::Object(Default::default()));
        if resp.panic {
            status.insert("status".into(), "Failure".into());
            status.insert("reason".into(), "InternalError".into());
        }
        if let Some(message) = &resp.message {
            status.insert("message".into(), message.clone().into());
        } else if resp.code >= 300
            && let Some(Value::Object(body)) =
                resp.body.as_ref().and_then(|b| body_object(b, false))
            && body.get("kind").and_then(Value::as_str) == Some("Status")
        {
            for k in ["status", "message", "reason", "details"] {
                if let Some(v) = body.get(k) {
                    status.insert(k.into(), v.clone());
                }
            }
        }
        status.insert("code".into(), resp.code.into());
        // Upstream's field order: metadata, status, message, reason, details, code.
        out.push(b'{');
        let mut first = true;
        for k in ["metadata", "status", "message", "reason", "details", "code"] {
            if let Some(v) = status.get(k) {
                if !first {
                    out.push(b',');
                }
                first = false;
                json_str(out, k);
                out.push(b':');
                let _ = serde_json::to_writer(&mut *out, v);
            }
        }
        out.push(b'}');
    }

    /// Upstream's legacy line: `<received> AUDIT: id="..." stage="..." ip="..." method="..."
    /// user="..." groups="..." as="..." asgroups="..." user-agent="..." namespace="..."
    /// uri="..." response="..."`.
    pub fn write_legacy(&self, out: &mut Vec<u8>) {
        let r = &*self.request;
        let quoted_list =
            |l: &[String]| l.iter().map(|g| go_quote(g)).collect::<Vec<_>>().join(",");
        let (username, groups) = if r.user.username.is_empty() {
            ("<none>".to_string(), "<none>".to_string())
        } else if r.user.groups.is_empty() {
            (r.user.username.clone(), "<none>".to_string())
        } else {
            (r.user.username.clone(), quoted_list(&r.user.groups))
        };
        let (as_user, as_groups) = match &r.impersonated_user {
            Some(u) => (u.username.clone(), quoted_list(&u.groups)),
            None => ("<self>".to_string(), "<lookup>".to_string()),
        };
        let namespace = r
            .object_ref
            .as_ref()
            .map(|o| o.namespace.as_str())
            .filter(|n| !n.is_empty())
            .unwrap_or("<none>");
        let response = self
            .response
            .as_ref()
            .map_or("<deferred>".to_string(), |r| r.code.to_string());
        let ip = r.source_ips.first().map_or("<unknown>", String::as_str);
        let line = format!(
            "{} AUDIT: id={} stage={} ip={} method={} user={} groups={} as={} asgroups={} user-agent={} namespace={} uri={} response=\"{}\"\n",
            rfc3339_nano(r.received_micros),
            go_quote(&r.audit_id),
            go_quote(self.stage.as_str()),
            go_quote(ip),
            go_quote(&r.verb),
            go_quote(&username),
            go_quote(&groups),
            go_quote(&as_user),
            go_quote(&as_groups),
            go_quote(&r.user_agent),
            go_quote(namespace),
            go_quote(&r.request_uri),
            response
        );
        out.extend_from_slice(line.as_bytes());
    }
}

/// Go's `%q` for the strings audit lines hold: JSON's escaping is the same for printable
/// text, quotes and backslashes.
fn go_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(stage: Stage, code: Option<u16>, body: Option<&'static [u8]>) -> Event {
        Event {
            request: Arc::new(Request {
                level: Level::RequestResponse,
                audit_id: "a1".into(),
                request_uri: "/api/v1/namespaces/default/configmaps".into(),
                verb: "create".into(),
                user: User {
                    username: "admin".into(),
                    uid: String::new(),
                    groups: vec!["system:masters".into(), "system:authenticated".into()],
                    extra: vec![],
                },
                impersonated_user: None,
                source_ips: vec!["127.0.0.1".into()],
                user_agent: "kubectl".into(),
                object_ref: Some(ObjectRef {
                    resource: "configmaps".into(),
                    namespace: "default".into(),
                    name: String::new(),
                    api_group: String::new(),
                    api_version: "v1".into(),
                    subresource: String::new(),
                }),
                request_body: Some(Bytes::from_static(
                    br#"{"kind":"ConfigMap","metadata":{"name":"c","managedFields":[{}]}}"#,
                )),
                received_micros: 1_764_613_843_000_001,
                omit_managed_fields: true,
            }),
            stage,
            stage_micros: 1_764_613_843_500_000,
            response: code.map(|code| Response {
                code,
                body: body.map(Bytes::from_static),
                panic: false,
                message: None,
            }),
            decision: Some(Decision {
                allowed: true,
                reason: String::new(),
            }),
            annotations: Vec::new(),
        }
    }

    #[test]
    fn json_lines_carry_upstreams_fields() {
        let mut out = Vec::new();
        event(
            Stage::ResponseComplete,
            Some(201),
            Some(br#"{"kind":"ConfigMap","metadata":{"name":"c"}}"#),
        )
        .write_json(&mut out);
        assert_eq!(out.last(), Some(&b'\n'));
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["apiVersion"], "audit.k8s.io/v1");
        assert_eq!(v["stage"], "ResponseComplete");
        assert_eq!(
            v["objectRef"],
            serde_json::json!({"resource":"configmaps","namespace":"default","apiVersion":"v1"})
        );
        assert_eq!(
            v["responseStatus"],
            serde_json::json!({"metadata":{},"code":201})
        );
        assert_eq!(
            v["requestObject"]["metadata"],
            serde_json::json!({"name":"c"})
        );
        assert_eq!(v["responseObject"]["kind"], "ConfigMap");
        assert_eq!(v["requestReceivedTimestamp"], "2025-12-01T18:30:43.000001Z");
        assert_eq!(v["annotations"]["authorization.k8s.io/decision"], "allow");
        let mut out = Vec::new();
        event(Stage::ResponseComplete, Some(404), Some(br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"nope","reason":"NotFound","code":404}"#)).write_json(&mut out);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v["responseStatus"],
            serde_json::json!({"metadata":{},"status":"Failure","message":"nope","reason":"NotFound","code":404})
        );
    }

    #[test]
    fn legacy_lines_are_upstreams_text() {
        let mut out = Vec::new();
        event(Stage::RequestReceived, None, None).write_legacy(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2025-12-01T18:30:43.000001Z AUDIT: id=\"a1\" stage=\"RequestReceived\" ip=\"127.0.0.1\" method=\"create\" user=\"admin\" groups=\"\\\"system:masters\\\",\\\"system:authenticated\\\"\" as=\"<self>\" asgroups=\"<lookup>\" user-agent=\"kubectl\" namespace=\"default\" uri=\"/api/v1/namespaces/default/configmaps\" response=\"<deferred>\"\n"
        );
    }
}
