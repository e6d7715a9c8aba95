//! Reinvocation, as upstream's admission chain does it: when a reinvocable mutating plugin
//! (MutatingAdmissionPolicy, MutatingAdmissionWebhook) changed the object, the chain runs
//! the reinvocable plugins once more, and each calls again those of its policies or webhooks
//! with `reinvocationPolicy: IfNeeded` that ran before the change. kapi's in-tree mutating
//! plugins are not rerun: they are idempotent, as upstream's are.

use std::collections::BTreeSet;

use serde_json::Value;

/// The state of one request's mutating passes; lives in its `Attributes`.
#[derive(Debug, Default)]
pub struct Reinvocation {
    /// This is the second pass (upstream's `IsReinvoke`).
    pub reinvoking: bool,
    /// A reinvocable plugin changed the object: the second pass is due.
    pub requested: bool,
    pub policies: Invoked,
    pub webhooks: Invoked,
}

/// What one reinvocable plugin remembers between passes: its IfNeeded policies or webhooks
/// that ran, those due again, and the object as it left the plugin.
#[derive(Debug, Default)]
pub struct Invoked {
    last_output: Option<Value>,
    /// IfNeeded ones that ran since the object last changed.
    previously: BTreeSet<String>,
    /// Those to run on the second pass.
    due: BTreeSet<String>,
}

impl Invoked {
    /// Whether `obj` differs from what this plugin last gave (another plugin changed it).
    pub fn changed_since_last_output(&self, obj: Option<&Value>) -> bool {
        self.last_output.as_ref() != obj
    }

    pub fn set_last_output(&mut self, obj: Option<&Value>) {
        self.last_output = obj.cloned();
    }

    /// The object changed: every IfNeeded one that ran before is due again.
    pub fn require_previously_invoked(&mut self) {
        self.due.append(&mut self.previously);
    }

    pub fn add_previously_invoked(&mut self, key: String) {
        self.previously.insert(key);
    }

    pub fn is_due(&self, key: &str) -> bool {
        self.due.contains(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_change_makes_the_if_needed_ones_that_ran_before_due() {
        let mut i = Invoked::default();
        i.add_previously_invoked("a".into());
        assert!(!i.is_due("a"));
        i.require_previously_invoked();
        i.add_previously_invoked("b".into());
        assert!(i.is_due("a") && !i.is_due("b"));
        i.set_last_output(Some(&json!({"x": 1})));
        assert!(!i.changed_since_last_output(Some(&json!({"x": 1}))));
        assert!(i.changed_since_last_output(Some(&json!({"x": 2}))));
    }
}
