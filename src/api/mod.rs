//! The Kubernetes API on top of the transport: request info, the registry of built-in
//! resources, content negotiation, the generic REST handlers and discovery. Knows the store
//! only through `crate::storage`.

// `Status` is the API's one error type, built on the error path only: returning it by value
// costs nothing on the success path, so clippy's boxing advice does not apply.
#![allow(clippy::result_large_err)]

pub mod cached;
pub mod conversion;
pub mod negotiate;
pub mod objects;
pub mod offload;
pub mod openapi;
pub mod patch;
pub mod registry;
pub mod request;
pub mod rest;
pub mod selector;
pub mod server;
pub mod status;
pub mod table;
pub mod validation;
