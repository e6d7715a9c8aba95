//! Shared helpers of the end-to-end tests.
pub mod etcd;
pub mod kapi;
#[allow(dead_code)]
pub mod workflow;
