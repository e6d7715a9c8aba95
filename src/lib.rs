//! kapi as a library: the server's parts, so that the `kapi` binary, the fuzz targets and
//! in-process tests drive one request path. `main.rs` is only the command line.

pub mod api;
pub mod convert;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod ingest;
pub mod pki;
pub mod serve;
// Compaction and store introspection are used by the storage tests.
#[cfg_attr(not(test), allow(dead_code))]
pub mod storage;
pub mod transport;
