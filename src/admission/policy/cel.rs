//! CEL as admission policies and webhook matchConditions use it: the variables each may name.
//! Compilation, evaluation and Kubernetes' CEL libraries live in `crate::cel`.

pub use crate::cel::{Activation, Compiled, compile};
use crate::cel::{JSON_PATCH_TYPE, OBJECT_TYPE};

/// The variables a validating policy's expressions may use.
pub const POLICY_VARIABLES: &[&str] = &[
    "object",
    "oldObject",
    "request",
    "params",
    "namespaceObject",
    "authorizer",
    "variables",
];

/// The variables a mutating policy's expressions may use, and the types of the objects and
/// patches its mutations construct.
pub const MUTATION_VARIABLES: &[&str] = &[
    "object",
    "oldObject",
    "request",
    "params",
    "namespaceObject",
    "authorizer",
    "variables",
    OBJECT_TYPE,
    JSON_PATCH_TYPE,
];

/// The variables an admission webhook's `matchConditions` may use.
pub const WEBHOOK_VARIABLES: &[&str] = &["object", "oldObject", "request", "authorizer"];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn policy_expressions_use_the_kubernetes_libraries() {
        let mut a = Activation::default();
        a.bind(
            "object",
            Some(&json!({"spec": {"limit": "2Gi", "url": "https://example.com/x"}})),
        );
        let c = compile(
            "quantity(object.spec.limit).isGreaterThan(quantity('1Gi')) && url(object.spec.url).getHost() == 'example.com'",
            POLICY_VARIABLES,
        )
        .unwrap();
        assert_eq!(c.eval_bool(&a), Ok(true));
        let err = compile("nope.x", WEBHOOK_VARIABLES).err().unwrap();
        assert!(err.contains("undeclared reference to 'nope'"), "{err}");
    }
}
