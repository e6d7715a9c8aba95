//! Kubernetes wire formats: JSON, YAML and protobuf (with the `k8s\0` envelope) for every
//! built-in kind, driven by the schema of Kubernetes 1.36 rather than a Rust struct per kind.
//! Knows nothing of HTTP or storage.

pub mod yaml;
