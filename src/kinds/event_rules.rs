//! Upstream's Event validation (`ValidateEventCreate` in `pkg/apis/core/validation/events.go`):
//! the legacy rules every Event passes (the regarding object's namespace; once `eventTime` is
//! set, the reporter, action and reason), and the strict ones of events.k8s.io/v1 writes.

use crate::jsonptr::At;
use serde_json::{Value, json};

use super::field::{invalid, required};
use super::json_read::str_at;
use super::meta::qualified_name_errors;
use crate::api::status::Cause;

const LENGTH_LIMIT: usize = 128;
const NOTE_LENGTH_LIMIT: usize = 1024;

/// An Event's fields under the names of the version it was written in.
struct Names {
    regarding: &'static str,
    note: &'static str,
    controller: &'static str,
    source: &'static str,
    first: &'static str,
    last: &'static str,
    count: &'static str,
}

const CORE: Names = Names {
    regarding: "involvedObject",
    note: "message",
    controller: "reportingComponent",
    source: "source",
    first: "firstTimestamp",
    last: "lastTimestamp",
    count: "count",
};

const EVENTS_V1: Names = Names {
    regarding: "regarding",
    note: "note",
    controller: "reportingController",
    source: "deprecatedSource",
    first: "deprecatedFirstTimestamp",
    last: "deprecatedLastTimestamp",
    count: "deprecatedCount",
};

fn set(v: &Value, key: &str) -> bool {
    v.get(key).is_some_and(|t| !t.is_null() && t != "")
}

/// A required string at most `limit` bytes long (upstream reports its value as "").
fn bounded(obj: &Value, key: &str, limit: usize, causes: &mut Vec<Cause>) {
    let v = str_at(obj, key);
    if v.is_empty() {
        causes.push(required(key.into()));
    }
    if v.len() > limit {
        let msg = format!("can have at most {limit} characters");
        causes.push(invalid(key.into(), &json!(""), &msg));
    }
}

pub fn validate(obj: &Value) -> Vec<Cause> {
    let strict = obj.get("apiVersion").and_then(Value::as_str) == Some("events.k8s.io/v1");
    let n = if strict { &EVENTS_V1 } else { &CORE };
    let mut causes = Vec::new();
    let has_time = legacy_rules(obj, n, strict, &mut causes);
    if strict {
        strict_rules(obj, n, has_time, &mut causes);
    }
    causes
}

/// The legacy rules every Event passes; whether it has an event time.
fn legacy_rules(obj: &Value, n: &Names, strict: bool, causes: &mut Vec<Cause>) -> bool {
    let ns = obj
        .at("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let empty = json!({});
    let regarding = obj.get(n.regarding).unwrap_or(&empty);
    let regarding_ns = str_at(regarding, "namespace");
    let mismatch = || {
        invalid(
            "involvedObject.namespace".into(),
            &json!(regarding_ns),
            "does not match event.namespace",
        )
    };
    let has_time = set(obj, "eventTime");
    if !has_time {
        let ok = match regarding_ns {
            "" => matches!(ns, "" | "default"),
            r => r == ns,
        };
        if !ok {
            causes.push(mismatch());
        }
    } else {
        if regarding_ns.is_empty() && !matches!(ns, "default" | "kube-system") {
            causes.push(mismatch());
        }
        let controller = str_at(obj, n.controller);
        // The core v1 field keeps its own name in the path; events.k8s.io/v1 says
        // reportingController.
        let cf = if strict {
            "reportingController"
        } else {
            n.controller
        };
        if controller.is_empty() {
            causes.push(required(cf.into()));
        }
        for msg in qualified_name_errors(controller) {
            causes.push(invalid(cf.into(), &json!(controller), &msg));
        }
        bounded(obj, "reportingInstance", LENGTH_LIMIT, causes);
        bounded(obj, "action", LENGTH_LIMIT, causes);
        bounded(obj, "reason", LENGTH_LIMIT, causes);
        if str_at(obj, n.note).len() > NOTE_LENGTH_LIMIT {
            let msg = format!("can have at most {NOTE_LENGTH_LIMIT} characters");
            causes.push(invalid("message".into(), &json!(""), &msg));
        }
    }
    has_time
}

/// An events.k8s.io/v1 series: two or more, with the time last seen.
fn series_rules(obj: &Value, causes: &mut Vec<Cause>) {
    if let Some(series) = obj.get("series").filter(|s| !s.is_null()) {
        if series.get("count").and_then(Value::as_i64).unwrap_or(0) < 2 {
            causes.push(invalid(
                "series.count".into(),
                &json!(""),
                "should be at least 2",
            ));
        }
        if !set(series, "lastObservedTime") {
            causes.push(required("series.lastObservedTime".into()));
        }
    }
}

/// What only events.k8s.io/v1 writes must satisfy: a series of two or more, an event time,
/// a Normal or Warning type, none of the deprecated core fields.
fn strict_rules(obj: &Value, n: &Names, has_time: bool, causes: &mut Vec<Cause>) {
    series_rules(obj, causes);
    if !has_time {
        causes.push(required("eventTime".into()));
    }
    let ty = str_at(obj, "type");
    if !matches!(ty, "Normal" | "Warning") {
        let msg = format!("has invalid value: {ty}");
        causes.push(invalid("type".into(), &json!(""), &msg));
    }
    let unset = |c: &mut Vec<Cause>, field: &str| {
        c.push(invalid(field.into(), &json!(""), "needs to be unset"));
    };
    if set(obj, n.first) {
        unset(causes, "firstTimestamp");
    }
    if set(obj, n.last) {
        unset(causes, "lastTimestamp");
    }
    if obj.get(n.count).and_then(Value::as_i64).unwrap_or(0) != 0 {
        unset(causes, "count");
    }
    let src = obj.get(n.source).unwrap_or(&Value::Null);
    if !str_at(src, "component").is_empty() || !str_at(src, "host").is_empty() {
        unset(causes, "source");
    }
}

/// How one field of an Event is printed in an immutability cause.
type Render<'a> = &'a dyn Fn(&Value) -> String;

/// An events.k8s.io/v1 update (`ValidateEventUpdate` for that version): the legacy rules,
/// the series again when it changed, and what an Event said stays said. Fields are named as
/// upstream's internal (core) Event names them, values printed as Go's JSON of those types.
pub fn validate_update(obj: &Value, old: &Value) -> Vec<Cause> {
    let strict = obj.get("apiVersion").and_then(Value::as_str) == Some("events.k8s.io/v1");
    if !strict {
        return validate(obj);
    }
    let n = &EVENTS_V1;
    let mut causes = Vec::new();
    legacy_rules(obj, n, true, &mut causes);
    if obj.get("series") != old.get("series") {
        series_rules(obj, &mut causes);
    }
    let text = |v: &Value, key: &str| json!(str_at(v, key)).to_string();
    let time = |v: &Value, key: &str| match v.get(key).and_then(Value::as_str) {
        Some(t) if !t.is_empty() => json!(t).to_string(),
        _ => "null".to_string(),
    };
    let reference = |v: Option<&Value>| match v.filter(|r| r.is_object()) {
        None => "null".to_string(),
        Some(r) => {
            let parts: Vec<String> = [
                ("Kind", "kind"),
                ("Namespace", "namespace"),
                ("Name", "name"),
                ("UID", "uid"),
                ("APIVersion", "apiVersion"),
                ("ResourceVersion", "resourceVersion"),
                ("FieldPath", "fieldPath"),
            ]
            .iter()
            .map(|(go, key)| format!("\"{go}\":{}", text(r, key)))
            .collect();
            format!("{{{}}}", parts.join(","))
        }
    };
    let source = |v: &Value| {
        let s = v.get(n.source).unwrap_or(&Value::Null);
        format!(
            "{{\"Component\":{},\"Host\":{}}}",
            text(s, "component"),
            text(s, "host")
        )
    };
    let count = |v: &Value| {
        v.get(n.count)
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .to_string()
    };
    // Upstream checks the reason twice, and reports it twice.
    let fields: [(&str, Render); 14] = [
        ("involvedObject", &|v| reference(v.get(n.regarding))),
        ("reason", &|v| text(v, "reason")),
        ("message", &|v| text(v, n.note)),
        ("source", &source),
        ("firstTimestamp", &|v| time(v, n.first)),
        ("lastTimestamp", &|v| time(v, n.last)),
        ("count", &count),
        ("reason", &|v| text(v, "reason")),
        ("type", &|v| text(v, "type")),
        ("eventTime", &|v| time(v, "eventTime")),
        ("action", &|v| text(v, "action")),
        ("related", &|v| reference(v.get("related"))),
        ("reportingController", &|v| text(v, n.controller)),
        ("reportingInstance", &|v| text(v, "reportingInstance")),
    ];
    for (field, render) in fields {
        let (new_text, old_text) = (render(obj), render(old));
        if new_text != old_text {
            causes.push(Cause {
                reason: "FieldValueInvalid".into(),
                message: format!("Invalid value: {new_text}: field is immutable"),
                field: field.into(),
            });
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::cause_fields;

    #[test]
    fn a_legacy_event_regards_an_object_of_its_namespace() {
        let ev = json!({"apiVersion": "v1", "metadata": {"namespace": "ns"},
            "involvedObject": {"namespace": "other"}});
        let causes = validate(&ev);
        assert_eq!(
            causes[0].message,
            "Invalid value: \"other\": does not match event.namespace"
        );
        assert_eq!(
            cause_fields(causes),
            [(
                "involvedObject.namespace".to_string(),
                "FieldValueInvalid".to_string()
            )]
        );
    }

    #[test]
    fn an_events_v1_event_needs_its_reporter_and_type() {
        let ev = json!({"apiVersion": "events.k8s.io/v1", "metadata": {"namespace": "ns"},
            "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "c",
            "reportingInstance": "i", "action": "a", "reason": "x".repeat(129),
            "type": "Odd", "regarding": {"namespace": "ns"}});
        let causes = validate(&ev);
        assert_eq!(
            causes[1].message,
            "Invalid value: \"\": has invalid value: Odd"
        );
        assert_eq!(
            cause_fields(causes),
            [
                ("reason", "FieldValueInvalid"),
                ("type", "FieldValueInvalid")
            ]
            .map(|(f, r)| (f.to_string(), r.to_string()))
        );
    }

    fn v1_event() -> Value {
        json!({"apiVersion": "events.k8s.io/v1", "metadata": {"namespace": "ns"},
            "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "example.com/c",
            "reportingInstance": "i", "action": "Pull", "reason": "Pulled", "note": "pulled",
            "type": "Normal", "regarding": {"kind": "Pod", "namespace": "ns", "name": "p"}})
    }

    #[test]
    fn an_events_v1_update_keeps_what_the_event_said() {
        let old = v1_event();
        let mut series = old.clone();
        series["series"] = json!({"count": 2, "lastObservedTime": "2026-01-01T00:01:00.000000Z"});
        assert_eq!(cause_fields(validate_update(&series, &old)), []);
        let mut bad = series.clone();
        bad["series"]["count"] = json!(1);
        bad["note"] = json!("other");
        bad["regarding"]["name"] = json!("q");
        let causes = validate_update(&bad, &old);
        assert_eq!(
            causes[1].message,
            "Invalid value: {\"Kind\":\"Pod\",\"Namespace\":\"ns\",\"Name\":\"q\",\"UID\":\"\",\"APIVersion\":\"\",\"ResourceVersion\":\"\",\"FieldPath\":\"\"}: field is immutable"
        );
        assert_eq!(
            causes[2].message,
            "Invalid value: \"other\": field is immutable"
        );
        assert_eq!(
            cause_fields(causes),
            [
                ("series.count", "FieldValueInvalid"),
                ("involvedObject", "FieldValueInvalid"),
                ("message", "FieldValueInvalid"),
            ]
            .map(|(f, r)| (f.to_string(), r.to_string()))
        );
        // The type changes twice over: the legacy rules do not mind, the update rules do.
        let mut ty = old.clone();
        ty["reason"] = json!("Other");
        let fields: Vec<String> = validate_update(&ty, &old)
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(fields, ["reason", "reason"]);
    }
}
