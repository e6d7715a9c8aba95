//! Shared helpers of the end-to-end tests.
#[allow(dead_code)]
pub mod client;
pub mod etcd;
#[allow(dead_code)]
pub mod hook;
pub mod kapi;
#[allow(dead_code)]
pub mod namespaces;
#[allow(dead_code)]
pub mod objects;
#[allow(dead_code)]
pub mod openssl;
#[allow(dead_code)]
pub mod users;
#[allow(dead_code)]
pub mod workflow;
