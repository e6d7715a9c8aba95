//! The Kubernetes API on top of the transport: request info, the registry of built-in
//! resources, content negotiation, the generic REST handlers and discovery. Knows the store
//! only through `crate::storage`.

pub mod registry;
pub mod request;
pub mod status;
pub mod table;
pub mod negotiate;
pub mod openapi;
pub mod objects;
pub mod selector;
pub mod patch;
pub mod rest;
pub mod server;
