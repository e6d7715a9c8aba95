//! The scale subresource: an autoscaling/v1 Scale view of spec.replicas (deployments,
//! replicasets, statefulsets, replicationcontrollers).

use super::*;
use crate::jsonptr::At;

impl Ctx<'_> {
    /// The scale subresource: an autoscaling/v1 Scale view of spec.replicas.
    pub(super) async fn scale(&self) -> Result<Response, Status> {
        let kv = self.current().await?;
        let obj = objects::to_value(
            self.res,
            &objects::served(self.res, &kv.value, kv.mod_revision)?,
        )?;
        let current = scale_of(self.res, &obj);
        let replicas = match self.rr.verb {
            Verb::Get => return self.scale_response(&current),
            Verb::Update => {
                let body = self.body_offloaded().await?;
                let rv = body
                    .at("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if !rv.is_empty() && rv != kv.mod_revision.to_string() {
                    return Err(Status::modified_conflict(gr(self.res), self.name()));
                }
                body.at("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
            }
            Verb::Patch => {
                let ct = self
                    .req
                    .headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok());
                let p: Value = serde_json::from_slice(&self.req.body)
                    .map_err(|e| Status::bad_request(format!("error decoding patch: {e}")))?;
                let patched = match negotiate::content_type(ct)? {
                    BodyType::JsonPatch => crate::api::patch::json_patch(&current, &p)?,
                    _ => crate::api::patch::merge_patch(&current, &p),
                };
                patched
                    .at("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
            }
            _ => {
                return Err(Status::method_not_supported(
                    gr(self.res),
                    self.rr.verb.as_str(),
                ));
            }
        };
        if replicas < 0 {
            return Err(Status::invalid(
                "autoscaling",
                "Scale",
                self.name(),
                vec![Cause {
                    reason: "FieldValueInvalid".into(),
                    message: format!(
                        "Invalid value: {replicas}: must be greater than or equal to 0"
                    ),
                    field: "spec.replicas".into(),
                }],
            ));
        }
        let mut new = obj.clone();
        set_path(&mut new, &scale_paths(self.res).0, json!(replicas));
        let rv = kv.mod_revision.to_string();
        let resp = self
            .write_update(false, super::write::Change::Replace(new, rv))
            .await?;
        if !resp.status.is_success() {
            return Ok(resp);
        }
        let kv = self.current().await?;
        let obj = objects::to_value(
            self.res,
            &objects::served(self.res, &kv.value, kv.mod_revision)?,
        )?;
        self.scale_response(&scale_of(self.res, &obj))
    }

    pub(super) fn scale_response(&self, scale: &Value) -> Result<Response, Status> {
        let scale = objects::value_message(scale)?;
        let body = objects::encode_message(
            None,
            "autoscaling/v1",
            "Scale",
            &scale.raw,
            self.enc,
            self.pretty,
        )?;
        Ok(self.ok(StatusCode::OK, body))
    }
}

/// Where a kind keeps its replicas (spec, status) and, for custom resources, its selector
/// string: JSON pointers.
fn scale_paths(res: &Resource) -> (String, String, Option<String>) {
    let pointer = |p: &str| -> String {
        p.split('.')
            .filter(|s| !s.is_empty())
            .map(|s| format!("/{s}"))
            .collect()
    };
    match res.custom.as_ref().and_then(|c| c.scale.as_ref()) {
        Some(s) => (
            pointer(&s.spec_replicas),
            pointer(&s.status_replicas),
            s.label_selector.as_deref().map(pointer),
        ),
        None => ("/spec/replicas".into(), "/status/replicas".into(), None),
    }
}

/// Sets the value at a JSON pointer, making the objects on the way.
fn set_path(obj: &mut Value, pointer: &str, value: Value) {
    let mut cur = obj;
    let parts: Vec<&str> = pointer.split('/').skip(1).collect();
    for (i, p) in parts.iter().enumerate() {
        let Some(o) = cur.as_object_mut() else { return };
        if i + 1 == parts.len() {
            o.insert(p.to_string(), value);
            return;
        }
        let next = o.entry(p.to_string()).or_insert_with(|| json!({}));
        if !next.is_object() {
            *next = json!({});
        }
        cur = next;
    }
}

/// The autoscaling/v1 Scale of an object with replicas.
pub(super) fn scale_of(res: &Resource, obj: &Value) -> Value {
    if res.is_custom() {
        let (spec, status, selector) = scale_paths(res);
        let meta = obj["metadata"].clone();
        let mut m = serde_json::Map::new();
        for k in [
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "creationTimestamp",
        ] {
            if let Some(v) = meta.get(k) {
                m.insert(k.into(), v.clone());
            }
        }
        let selector = selector
            .and_then(|p| obj.at(&p).and_then(Value::as_str).map(str::to_string))
            .unwrap_or_default();
        return json!({
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": m,
            "spec": {"replicas": obj.at(&spec).and_then(Value::as_i64).unwrap_or(0)},
            "status": {"replicas": obj.at(&status).and_then(Value::as_i64).unwrap_or(0), "selector": selector},
        });
    }
    let meta = &obj["metadata"];
    let mut m = serde_json::Map::new();
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = meta.get(k) {
            m.insert(k.into(), v.clone());
        }
    }
    // The selector as a string: matchLabels (apps kinds) or the map itself (RCs).
    let selector = crate::api::table::selector_text(obj.at("/spec/selector"));
    let selector = if selector == "<none>" {
        String::new()
    } else {
        selector
    };
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": m,
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(0)},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector},
    })
}
