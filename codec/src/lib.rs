//! Kubernetes wire formats: JSON, YAML and protobuf (with the `k8s\0` envelope) for every
//! built-in kind, driven by the schema of Kubernetes 1.36 rather than a Rust struct per kind.
//! Knows nothing of HTTP or storage.

pub mod envelope;
pub mod error;
pub mod goscalar;
pub mod json_compact;
pub mod json_read;
pub mod json_write;
pub mod meta;
pub mod schema;
pub mod to_json;
pub mod to_pb;
pub mod wire;
pub mod yaml;

pub use error::{CodecError, ErrorKind, FieldValidation};
pub use schema::Schema;
