//! kapi as a library: the server's parts, so that the `kapi` binary, the fuzz targets and
//! in-process tests drive one request path. `main.rs` is only the command line.

// `Status` is the API's one error type, built on the error path only: returning it by value
// costs nothing on the success path, so clippy's boxing advice does not apply.
#![allow(clippy::result_large_err)]

pub mod admission;
pub mod aggregator;
pub mod api;
pub mod audit;
pub mod authn;
pub mod authz;
pub mod cel;
pub mod convert;
pub mod crd;
pub mod fault;
pub mod features;
pub mod flags;
pub mod flowcontrol;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod ingest;
pub mod jsonptr;
pub mod kinds;
pub mod kubeconfig;
pub mod kubelet;
pub mod metrics;
pub mod offthread;
pub mod pki;
pub mod reconcilers;
pub mod reload;
pub mod serve;
pub mod shutdown;
pub mod ssa;
pub mod startup;
// Compaction and store introspection are used by the storage tests.
#[cfg_attr(not(test), allow(dead_code))]
pub mod storage;
pub mod structural;
pub mod transport;
