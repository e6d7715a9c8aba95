//! Structural schemas of custom resources (upstream's apiextensions-apiserver `schema`
//! packages): a CRD version's `openAPIV3Schema` parsed once when the CRD changes, then pruning,
//! defaulting and validation of each custom resource written, as pure functions on JSON.
//! The custom-resource strategy calls them on the write path: decode → prune → default →
//! (admission) → validate; `crd_schema` holds the rules the CRD's own schema must follow.
//! Hot path of every custom-resource write: guarded by `benches/structural.rs` (a 5 KB
//! resource pruned, defaulted and validated, beside its plain JSON parse).

pub mod crd_schema;
mod defaults;
mod embedded;
pub mod formats;
mod keyword_rules;
mod listtype;
pub mod node;
mod openapi_errors;
pub(crate) mod prune;
mod structural_rules;
mod validate;

use serde_json::Value;

use crate::api::status::Cause;
pub use node::MAX_SCHEMA_DEPTH;
use node::Node;

/// One CRD version's `openAPIV3Schema`, parsed once (when the CRD is added or changed).
/// Immutable afterwards: share it behind an `Arc` across cores.
#[derive(Debug, Clone)]
pub struct Structural {
    root: Node,
}

impl Structural {
    /// Parses a schema; anything malformed is read as the closest schema (CRD validation has
    /// refused it before it gets here). Never panics; nesting stops at `MAX_SCHEMA_DEPTH`.
    pub fn new(open_api_v3_schema: &Value) -> Structural {
        Structural {
            root: Node::parse(open_api_v3_schema, 0),
        }
    }

    /// The parsed schema, for walks of its own (the CEL rules' types and paths).
    pub fn root(&self) -> &Node {
        &self.root
    }

    /// Removes fields the schema does not know (honouring x-kubernetes-preserve-unknown-fields,
    /// embedded resources' apiVersion/kind/metadata, and the root's apiVersion/kind/metadata);
    /// returns the removed paths as upstream names them in `unknown field "spec.foo"`, sorted.
    pub fn prune(&self, obj: &mut Value) -> Vec<String> {
        prune::prune_root(obj, &self.root)
    }

    /// Applies `default`s (nested, items and additionalProperties defaults; a `null` where the
    /// schema is not nullable is defaulted, or dropped when there is no default).
    pub fn apply_defaults(&self, obj: &mut Value) {
        defaults::default(obj, &self.root);
        defaults::drop_nulls(obj, Some(&self.root));
    }

    /// OpenAPI schema validation of an instance with upstream's field paths, reasons and
    /// messages, then embedded resources and list-type invariants, in upstream's order.
    /// The root's `metadata` is validated against the schema only if the schema says something
    /// of it; ObjectMeta's own rules are the caller's.
    pub fn validate(&self, obj: &Value) -> Vec<Cause> {
        self.causes(obj, None)
    }

    /// The same for an update, ratcheted as upstream 1.36 (CRDValidationRatcheting): schema
    /// errors inside a value equal to the old object's (by key, or list-map key) are dropped.
    pub fn validate_update(&self, obj: &Value, old: &Value) -> Vec<Cause> {
        self.causes(obj, Some(old))
    }

    /// Whether the causes block CEL rules (upstream's `hasBlockingErr`: NotSupported,
    /// Required, TooLong, TooMany or TypeInvalid mean the rules would see a value they were not
    /// written for). The custom-resource strategy then appends `RULES_NOT_CHECKED` instead of
    /// running `x-kubernetes-validations`.
    pub fn blocks_rules(causes: &[Cause]) -> bool {
        causes.iter().any(|c| {
            matches!(
                c.reason.as_str(),
                "FieldValueNotSupported"
                    | "FieldValueRequired"
                    | "FieldValueTooLong"
                    | "FieldValueTooMany"
                    | "FieldValueTypeInvalid"
            )
        })
    }

    fn causes(&self, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
        let mut out = validate::validate(&self.root, obj, old);
        embedded::validate("", &self.root, obj, &mut out);
        if let Some(m) = obj.as_object() {
            listtype::validate_object("", &self.root, m, &mut out);
        }
        out
    }
}

/// The cause upstream appends instead of rule errors when `blocks_rules` (field "", value null).
pub const RULES_NOT_CHECKED: &str = "Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation";

#[cfg(test)]
mod corpus_tests;
