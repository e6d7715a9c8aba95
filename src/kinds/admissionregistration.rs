//! Admission configuration objects: webhook configurations, (mutating and validating)
//! admission policies and their bindings. Upstream's `SetDefaults_*` of
//! `pkg/apis/admissionregistration/v1`; all track `metadata.generation`.

use serde_json::{Map, Value, json};

use super::Strategy;
use super::podspec::{existing, items, or_set};
use super::policy_rules::PolicyKind;

/// Seconds a webhook call may take when the configuration names no timeout.
const WEBHOOK_TIMEOUT_SECONDS: i64 = 10;

/// Webhook configurations: `mutating` adds the reinvocation policy.
#[derive(Debug)]
pub struct WebhookConfigurations {
    pub mutating: bool,
}

impl Strategy for WebhookConfigurations {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn validate_create(&self, obj: &Value) -> Vec<crate::api::status::Cause> {
        super::webhook_rules::validate(obj, self.mutating)
    }

    fn validate_update(&self, obj: &Value, old: &Value) -> Vec<crate::api::status::Cause> {
        super::webhook_rules::validate_update(obj, old, self.mutating)
    }

    fn default(&self, obj: &mut Value) {
        let Some(o) = obj.as_object_mut() else { return };
        for w in items(o, "webhooks") {
            or_set(w, "failurePolicy", "Fail");
            or_set(w, "matchPolicy", "Equivalent");
            or_set(w, "namespaceSelector", json!({}));
            or_set(w, "objectSelector", json!({}));
            or_set(w, "timeoutSeconds", json!(WEBHOOK_TIMEOUT_SECONDS));
            if self.mutating {
                or_set(w, "reinvocationPolicy", "Never");
            }
            for r in items(w, "rules") {
                or_set(r, "scope", "*");
            }
            if let Some(svc) = existing(w, "clientConfig").and_then(|c| existing(c, "service")) {
                or_set(svc, "port", json!(443));
            }
        }
    }
}

/// `SetDefaults_MatchResources`.
fn default_match_resources(m: &mut Map<String, Value>) {
    or_set(m, "matchPolicy", "Equivalent");
    or_set(m, "namespaceSelector", json!({}));
    or_set(m, "objectSelector", json!({}));
    for list in ["resourceRules", "excludeResourceRules"] {
        for r in items(m, list) {
            or_set(r, "scope", "*");
        }
    }
}

/// Validating and mutating admission policies.
#[derive(Debug)]
pub struct AdmissionPolicies {
    kind: PolicyKind,
}

pub static VALIDATING_POLICIES: AdmissionPolicies = AdmissionPolicies {
    kind: PolicyKind::Validating,
};
pub static MUTATING_POLICIES: AdmissionPolicies = AdmissionPolicies {
    kind: PolicyKind::Mutating,
};

impl Strategy for AdmissionPolicies {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn validate_create(&self, obj: &Value) -> Vec<crate::api::status::Cause> {
        super::policy_rules::validate(obj, self.kind)
    }

    fn validate_update(&self, obj: &Value, old: &Value) -> Vec<crate::api::status::Cause> {
        super::policy_rules::validate_update(obj, old, self.kind)
    }

    fn default(&self, obj: &mut Value) {
        let Some(s) = obj.as_object_mut().and_then(|o| existing(o, "spec")) else {
            return;
        };
        or_set(s, "failurePolicy", "Fail");
        if let Some(m) = existing(s, "matchConstraints") {
            default_match_resources(m);
        }
    }
}

/// Bindings of validating and mutating admission policies.
#[derive(Debug)]
pub struct PolicyBindings {
    kind: PolicyKind,
}

pub static VALIDATING_BINDINGS: PolicyBindings = PolicyBindings {
    kind: PolicyKind::ValidatingBinding,
};
pub static MUTATING_BINDINGS: PolicyBindings = PolicyBindings {
    kind: PolicyKind::MutatingBinding,
};

impl Strategy for PolicyBindings {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn validate_create(&self, obj: &Value) -> Vec<crate::api::status::Cause> {
        super::policy_rules::validate(obj, self.kind)
    }

    fn validate_update(&self, obj: &Value, old: &Value) -> Vec<crate::api::status::Cause> {
        super::policy_rules::validate_update(obj, old, self.kind)
    }

    fn default(&self, obj: &mut Value) {
        if let Some(m) = obj
            .as_object_mut()
            .and_then(|o| existing(o, "spec"))
            .and_then(|s| existing(s, "matchResources"))
        {
            default_match_resources(m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mutating_webhook_gets_policies_selectors_timeout_and_rule_scope() {
        let mut c = json!({"webhooks": [{"name": "w.example.com",
            "clientConfig": {"service": {"name": "s", "namespace": "n"}},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": ["pods"]}]}]});
        WebhookConfigurations { mutating: true }.default(&mut c);
        let w = &c["webhooks"][0];
        assert_eq!(w["failurePolicy"], "Fail");
        assert_eq!(w["matchPolicy"], "Equivalent");
        assert_eq!(w["namespaceSelector"], json!({}));
        assert_eq!(w["objectSelector"], json!({}));
        assert_eq!(w["timeoutSeconds"], 10);
        assert_eq!(w["reinvocationPolicy"], "Never");
        assert_eq!(w["rules"][0]["scope"], "*");
        assert_eq!(w["clientConfig"]["service"]["port"], 443);
    }

    #[test]
    fn a_validating_webhook_has_no_reinvocation_policy() {
        let mut c = json!({"webhooks": [{"name": "w"}]});
        WebhookConfigurations { mutating: false }.default(&mut c);
        assert!(c["webhooks"][0].get("reinvocationPolicy").is_none());
    }

    #[test]
    fn a_policy_gets_its_failure_policy_and_match_defaults() {
        let mut p =
            json!({"spec": {"matchConstraints": {"resourceRules": [{"resources": ["pods"]}]}}});
        VALIDATING_POLICIES.default(&mut p);
        assert_eq!(p["spec"]["failurePolicy"], "Fail");
        let m = &p["spec"]["matchConstraints"];
        assert_eq!(m["matchPolicy"], "Equivalent");
        assert_eq!(m["resourceRules"][0]["scope"], "*");
    }
}
