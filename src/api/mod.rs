//! The Kubernetes API on top of the transport: request info, the registry of built-in
//! resources, content negotiation, the generic REST handlers and discovery. Knows the store
//! only through `crate::storage`.

pub mod beta_conversion;
pub mod cached;
pub mod conversion;
pub mod discovery_merge;
pub mod health;
pub mod negotiate;
pub mod objects;
pub mod offload;
pub mod openapi;
pub mod openapi_v2;
pub mod patch;
pub mod registry;
pub mod request;
pub mod rest;
pub mod runtime_config;
pub mod selector;
pub mod server;
pub mod status;
pub mod table;
pub mod validation;
