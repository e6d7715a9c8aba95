//! A kind's strategy for a served version whose fields differ from the stored version's
//! (resource.k8s.io v1beta1 claims and slices): upstream defaults and validates the internal
//! form, which has the stored version's shape, so the object is converted to it for the
//! kind's strategy and back (field paths in errors are then upstream's).

use serde_json::Value;

use super::{GcPolicy, NameRule, Strategy};
use crate::api::beta_conversion::convert_kind_fields;
use crate::api::status::Cause;

#[derive(Debug)]
pub struct Converted {
    pub inner: &'static dyn Strategy,
    pub kind: &'static str,
    /// The served apiVersion and the one the inner strategy's rules are written for.
    pub served: &'static str,
    pub stored: &'static str,
}

impl Converted {
    fn to_stored(&self, obj: &Value) -> Value {
        let mut v = obj.clone();
        if let Some(o) = v.as_object_mut() {
            convert_kind_fields(o, self.kind, self.served, self.stored);
        }
        v
    }

    /// Runs `f` on the stored form of `obj` and writes the result back in the served form.
    fn in_stored(&self, obj: &mut Value, f: impl FnOnce(&mut Value)) {
        let mut v = self.to_stored(obj);
        f(&mut v);
        if let Some(o) = v.as_object_mut() {
            convert_kind_fields(o, self.kind, self.stored, self.served);
        }
        *obj = v;
    }
}

impl Strategy for Converted {
    fn tracks_generation(&self) -> bool {
        self.inner.tracks_generation()
    }

    fn generation_changed(&self, new: &Value, old: &Value) -> bool {
        self.inner
            .generation_changed(&self.to_stored(new), &self.to_stored(old))
    }

    fn deletion_finalizers(&self) -> &'static [&'static str] {
        self.inner.deletion_finalizers()
    }

    fn returns_deleted_object(&self) -> bool {
        self.inner.returns_deleted_object()
    }

    fn ttl_seconds(&self) -> Option<i64> {
        self.inner.ttl_seconds()
    }

    fn terminates_before_delete(&self) -> bool {
        self.inner.terminates_before_delete()
    }

    fn grace_period(&self, obj: &Value, requested: Option<i64>) -> Option<i64> {
        self.inner.grace_period(&self.to_stored(obj), requested)
    }

    fn default_gc_policy(&self) -> GcPolicy {
        self.inner.default_gc_policy()
    }

    fn default_orphan_warning(&self) -> Option<&'static str> {
        self.inner.default_orphan_warning()
    }

    fn name_rule(&self) -> NameRule {
        self.inner.name_rule()
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        self.in_stored(obj, |v| self.inner.prepare_for_create(v));
    }

    fn prepare_for_create_by(&self, obj: &mut Value, user: &crate::authn::UserInfo) {
        self.in_stored(obj, |v| self.inner.prepare_for_create_by(v, user));
    }

    fn prepare_for_status_update(&self, obj: &mut Value, old: &Value) {
        let old = self.to_stored(old);
        self.in_stored(obj, |v| self.inner.prepare_for_status_update(v, &old));
    }

    fn prepare_for_update(&self, obj: &mut Value, old: &Value) {
        let old = self.to_stored(old);
        self.in_stored(obj, |v| self.inner.prepare_for_update(v, &old));
    }

    fn prepare_for_subresource_update(&self, sub: &str, new: &Value, old: &Value) -> Option<Value> {
        let mut out = self.inner.prepare_for_subresource_update(
            sub,
            &self.to_stored(new),
            &self.to_stored(old),
        )?;
        if let Some(o) = out.as_object_mut() {
            convert_kind_fields(o, self.kind, self.stored, self.served);
        }
        Some(out)
    }

    fn validate_subresource_update(
        &self,
        sub: &str,
        obj: &Value,
        old: &Value,
    ) -> Option<Vec<Cause>> {
        self.inner
            .validate_subresource_update(sub, &self.to_stored(obj), &self.to_stored(old))
    }

    fn default(&self, obj: &mut Value) {
        self.in_stored(obj, |v| self.inner.default(v));
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        self.inner.validate_create(&self.to_stored(obj))
    }

    fn validate_update(&self, obj: &Value, old: &Value) -> Vec<Cause> {
        self.inner
            .validate_update(&self.to_stored(obj), &self.to_stored(old))
    }
}
