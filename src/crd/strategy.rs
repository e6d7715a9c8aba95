//! The write-path strategy of a custom resource: upstream's customresource strategy (status
//! kept apart when the status subresource is on, generation bumped by any change outside
//! metadata and status), its schema's defaults and validation.

use std::sync::Arc;

use bytes::Bytes;
use kapi_codec::FieldValidation;
use serde_json::Value;

use super::Served;
use crate::api::registry::Resource;
use crate::api::status::{Cause, Status};
use crate::kinds::{NameRule, Strategy};

#[derive(Debug)]
pub struct CustomStrategy {
    pub served: Arc<Served>,
}

impl CustomStrategy {
    pub fn new(served: Arc<Served>) -> CustomStrategy {
        CustomStrategy { served }
    }
}

/// The object without `metadata` (and `status`, when it is a subresource of its own): what a
/// change of bumps the generation.
fn generation_part(obj: &Value, status_apart: bool) -> Value {
    let mut v = obj.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("metadata");
        if status_apart {
            o.remove("status");
        }
    }
    v
}

impl CustomStrategy {
    /// The schema's causes, then its CEL rules' (upstream's order), unless the schema's
    /// errors mean the rules would see values they were not written for.
    fn with_rules(&self, mut causes: Vec<Cause>, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
        let Some(rules) = &self.served.rules else {
            return causes;
        };
        if crate::structural::Structural::blocks_rules(&causes) {
            causes.push(Cause {
                reason: "FieldValueInvalid".into(),
                message: crate::structural::RULES_NOT_CHECKED.into(),
                field: String::new(),
            });
            return causes;
        }
        causes.extend(rules.validate(obj, old));
        causes
    }
}

impl Strategy for CustomStrategy {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn generation_changed(&self, new: &Value, old: &Value) -> bool {
        generation_part(new, self.served.status) != generation_part(old, self.served.status)
    }

    fn name_rule(&self) -> NameRule {
        NameRule::Subdomain
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        if self.served.status
            && let Some(o) = obj.as_object_mut()
        {
            o.remove("status");
        }
    }

    fn field_model(&self) -> Option<Arc<crate::ssa::Model>> {
        self.served.model.clone()
    }

    fn default(&self, obj: &mut Value) {
        if let Some(s) = &self.served.structural {
            s.apply_defaults(obj);
        }
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let causes = match &self.served.structural {
            Some(s) => s.validate(obj),
            None => Vec::new(),
        };
        self.with_rules(causes, obj, None)
    }

    fn validate_update(&self, obj: &Value, old: &Value) -> Vec<Cause> {
        let causes = match &self.served.structural {
            Some(s) => s.validate_update(obj, old),
            None => Vec::new(),
        };
        self.with_rules(causes, obj, Some(old))
    }
}

/// A stored custom resource in the row's served version (conversion `None`: only apiVersion
/// changes).
pub fn to_served(res: &Resource, obj: &mut Value) -> Result<(), Status> {
    let served = res.api_version();
    if obj.get("apiVersion").and_then(Value::as_str) == Some(served.as_str()) {
        return Ok(());
    }
    let Some(c) = &res.custom else {
        return Ok(());
    };
    *obj = super::conversion::convert(c, std::mem::take(obj), &served)?;
    // Defaults apply on read too, as upstream's storage decoder applies them.
    if let Some(s) = &c.structural {
        s.apply_defaults(obj);
    }
    Ok(())
}

/// A custom resource to store: in the storage version, as compact JSON with sorted keys (how
/// upstream writes unstructured objects).
pub fn encode_for_storage(
    res: &Resource,
    mut obj: Value,
    validation: FieldValidation,
) -> Result<(Bytes, Vec<String>), Status> {
    let mut warnings = Vec::new();
    // Fields the schema does not know are dropped: named in warnings, or refused under Strict.
    if let Some(s) = res.custom.as_ref().and_then(|c| c.structural.as_ref()) {
        let unknown = s.prune(&mut obj);
        if !unknown.is_empty() {
            let named: Vec<String> = unknown
                .iter()
                .map(|f| format!("unknown field \"{f}\""))
                .collect();
            match validation {
                FieldValidation::Strict => {
                    return Err(Status::bad_request(format!(
                        "strict decoding error: {}",
                        named.join(", ")
                    )));
                }
                FieldValidation::Warn => warnings.extend(named),
                FieldValidation::Ignore => {}
            }
        }
    }
    if let Some(c) = &res.custom {
        obj = super::conversion::convert(c, obj, &c.storage_api_version())?;
    }
    let json = serde_json::to_vec(&obj).map_err(|e| Status::internal(e.to_string()))?;
    Ok((Bytes::from(json), warnings))
}

/// A field selector's value of a custom resource (`metadata.name`, `spec.color`): strings as
/// they are, numbers and booleans as written, missing as "".
pub fn field_value(obj: &Value, field: &str) -> Option<String> {
    let pointer: String = field.split('.').map(|p| format!("/{p}")).collect();
    match obj.pointer(&pointer) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Null) | None => Some(String::new()),
        Some(v) => Some(v.to_string()),
    }
}
