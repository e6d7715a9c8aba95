//! The API's one error type: upstream's `Status` (code, reason, message, details, causes),
//! built where the error is found and rendered once, in the negotiated encoding, through the
//! codec like any other v1 object.

use serde_json::{Map, Value, json};

/// One field-level cause of an `Invalid` or `BadRequest` error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldValueDuplicate`, ...
    pub reason: String,
    pub message: String,
    pub field: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub code: u16,
    /// Empty for success.
    pub reason: &'static str,
    pub message: String,
    pub name: Option<String>,
    pub group: Option<String>,
    pub kind: Option<String>,
    pub uid: Option<String>,
    pub causes: Vec<Cause>,
    pub retry_after_seconds: Option<i32>,
    /// Whether `details` is written even when empty (upstream's 406 carries `"details":{}`).
    pub empty_details: bool,
}

/// The group and resource an error is about: `pods`, `deployments.apps`.
#[derive(Debug, Clone, Copy)]
pub struct GroupResource<'a> {
    pub group: &'a str,
    pub resource: &'a str,
}

impl std::fmt::Display for GroupResource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group.is_empty() {
            f.write_str(self.resource)
        } else {
            write!(f, "{}.{}", self.resource, self.group)
        }
    }
}

impl Status {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Status {
        Status {
            code,
            reason,
            message: message.into(),
            name: None,
            group: None,
            kind: None,
            uid: None,
            causes: Vec::new(),
            retry_after_seconds: None,
            empty_details: false,
        }
    }

    fn about(mut self, gr: GroupResource<'_>, name: &str) -> Status {
        self.name = Some(name.to_string()).filter(|n| !n.is_empty());
        self.group = Some(gr.group.to_string()).filter(|g| !g.is_empty());
        self.kind = Some(gr.resource.to_string());
        self
    }

    pub fn not_found(gr: GroupResource<'_>, name: &str) -> Status {
        Status::new(404, "NotFound", format!("{gr} \"{name}\" not found")).about(gr, name)
    }

    /// Upstream's `NewForbidden`: 403 `<resource> "<name>" is forbidden: <why>` (without the
    /// name when there is none).
    pub fn forbidden(gr: GroupResource<'_>, name: &str, why: &str) -> Status {
        let what = if name.is_empty() {
            gr.to_string()
        } else {
            format!("{gr} \"{name}\"")
        };
        Status::new(403, "Forbidden", format!("{what} is forbidden: {why}")).about(gr, name)
    }

    pub fn already_exists(gr: GroupResource<'_>, name: &str) -> Status {
        Status::new(
            409,
            "AlreadyExists",
            format!("{gr} \"{name}\" already exists"),
        )
        .about(gr, name)
    }

    /// A stale resourceVersion on update.
    pub fn conflict(gr: GroupResource<'_>, name: &str, why: &str) -> Status {
        Status::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {gr} \"{name}\": {why}"),
        )
        .about(gr, name)
    }

    pub fn modified_conflict(gr: GroupResource<'_>, name: &str) -> Status {
        Status::conflict(
            gr,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 with field causes; `kind` is the object's kind (`Pod`).
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<Cause>) -> Status {
        let list: Vec<String> = causes
            .iter()
            // Upstream's `field.Error`: `<field>: <body>`, also for an empty field.
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let joined = if list.len() == 1 {
            list[0].clone()
        } else {
            format!("[{}]", list.join(", "))
        };
        let mut s = Status::new(
            422,
            "Invalid",
            format!("{kind} \"{name}\" is invalid: {joined}"),
        );
        s.name = Some(name.to_string()).filter(|n| !n.is_empty());
        s.group = Some(group.to_string()).filter(|g| !g.is_empty());
        s.kind = Some(kind.to_string());
        s.causes = causes;
        s
    }

    /// 404 for a path that names no resource (upstream's generic not-found page).
    pub fn no_such_resource() -> Status {
        let mut s = Status::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
        s.empty_details = true;
        s
    }

    pub fn bad_request(message: impl Into<String>) -> Status {
        Status::new(400, "BadRequest", message)
    }

    pub fn method_not_supported(gr: GroupResource<'_>, verb: &str) -> Status {
        let mut s = Status::new(
            405,
            "MethodNotAllowed",
            format!("{verb} is not supported on resources of kind \"{gr}\""),
        );
        s.group = Some(gr.group.to_string()).filter(|g| !g.is_empty());
        s.kind = Some(gr.resource.to_string());
        s
    }

    pub fn not_acceptable(available: &str) -> Status {
        let mut s = Status::new(
            406,
            "NotAcceptable",
            format!("406: Not Acceptable\n\nAvailable representations: {available}"),
        );
        s.empty_details = true;
        s
    }

    pub fn unsupported_media_type() -> Status {
        let mut s = Status::new(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf",
        );
        s.empty_details = true;
        s
    }

    /// 410 for a list at, or a continue token from, a revision no longer retained.
    pub fn expired(message: impl Into<String>) -> Status {
        Status::new(410, "Expired", message)
    }

    pub fn unauthorized() -> Status {
        Status::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn internal(message: impl Into<String>) -> Status {
        Status::new(
            500,
            "InternalError",
            format!("Internal error occurred: {}", message.into()),
        )
    }

    pub fn service_unavailable(message: impl Into<String>) -> Status {
        Status::new(503, "ServiceUnavailable", message)
    }

    pub fn timeout(message: impl Into<String>) -> Status {
        Status::new(504, "Timeout", message)
    }

    /// The `Success` status a DELETE returns for kinds that answer with a Status.
    pub fn success_deleted(gr: GroupResource<'_>, name: &str, uid: &str) -> Status {
        let mut s = Status::new(200, "", "").about(gr, name);
        s.uid = Some(uid.to_string()).filter(|u| !u.is_empty());
        s
    }

    pub fn is_success(&self) -> bool {
        self.code < 400
    }

    /// The Status as a JSON value with kind and apiVersion (key order is restored when the
    /// codec encodes it).
    pub fn to_json_value(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("kind".into(), json!("Status"));
        obj.insert("apiVersion".into(), json!("v1"));
        obj.insert("metadata".into(), json!({}));
        obj.insert(
            "status".into(),
            json!(if self.is_success() {
                "Success"
            } else {
                "Failure"
            }),
        );
        if !self.message.is_empty() {
            obj.insert("message".into(), json!(self.message));
        }
        if !self.reason.is_empty() {
            obj.insert("reason".into(), json!(self.reason));
        }
        let mut details = Map::new();
        if let Some(n) = &self.name {
            details.insert("name".into(), json!(n));
        }
        if let Some(g) = &self.group {
            details.insert("group".into(), json!(g));
        }
        if let Some(k) = &self.kind {
            details.insert("kind".into(), json!(k));
        }
        if let Some(u) = &self.uid {
            details.insert("uid".into(), json!(u));
        }
        if !self.causes.is_empty() {
            let causes: Vec<Value> = self
                .causes
                .iter()
                .map(|c| {
                    let mut cause = json!({"reason": c.reason, "message": c.message});
                    // Upstream's `field` is omitempty.
                    if !c.field.is_empty() {
                        cause["field"] = json!(c.field);
                    }
                    cause
                })
                .collect();
            details.insert("causes".into(), Value::Array(causes));
        }
        if let Some(r) = self.retry_after_seconds {
            details.insert("retryAfterSeconds".into(), json!(r));
        }
        if !details.is_empty() || self.empty_details {
            obj.insert("details".into(), Value::Object(details));
        }
        // A deletion's Success carries no code (upstream's); a binding's carries its 201.
        if !self.is_success() || self.code != 200 {
            obj.insert("code".into(), json!(self.code));
        }
        Value::Object(obj)
    }
}

impl From<kapi_codec::CodecError> for Status {
    fn from(e: kapi_codec::CodecError) -> Status {
        Status::bad_request(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kapi_codec::FieldValidation;
    use kapi_codec::to_json::envelope_to_json;
    use kapi_codec::to_pb::json_to_envelope;

    fn render(s: &Status) -> String {
        let mut pb = Vec::new();
        json_to_envelope(
            &serde_json::to_vec(&s.to_json_value()).unwrap(),
            None,
            FieldValidation::Strict,
            &mut pb,
        )
        .unwrap();
        let mut out = Vec::new();
        envelope_to_json(&pb, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn statuses_render_as_upstream_bytes() {
        let pods = GroupResource {
            group: "",
            resource: "pods",
        };
        assert_eq!(
            render(&Status::not_found(pods, "does-not-exist")),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"does-not-exist\" not found","reason":"NotFound","details":{"name":"does-not-exist","kind":"pods"},"code":404}"#
        );
        let cms = GroupResource {
            group: "",
            resource: "configmaps",
        };
        assert_eq!(
            render(&Status::modified_conflict(cms, "cfg")),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Operation cannot be fulfilled on configmaps \"cfg\": the object has been modified; please apply your changes to the latest version and try again","reason":"Conflict","details":{"name":"cfg","kind":"configmaps"},"code":409}"#
        );
        assert_eq!(
            render(&Status::success_deleted(
                cms,
                "to-delete",
                "fcd204b5-15ed-429a-87d5-76d3e92c573e"
            )),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","details":{"name":"to-delete","kind":"configmaps","uid":"fcd204b5-15ed-429a-87d5-76d3e92c573e"}}"#
        );
        assert_eq!(
            render(&Status::expired(
                "The resourceVersion for the provided list is too old."
            )),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"The resourceVersion for the provided list is too old.","reason":"Expired","code":410}"#
        );
        assert_eq!(
            render(&Status::unauthorized()),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#
        );
    }
}
