//! Configuration files that are followed while the server runs (`--authorization-config`,
//! `--encryption-provider-config` with automatic reload): read again every interval, and a
//! change handed to its owner, which puts a valid one in force; an invalid one is logged and
//! the previous configuration kept, as upstream's reload controllers do.

use std::path::Path;
use std::time::Duration;

/// Follows `path` forever from its `loaded` contents: every `interval` a changed file is given
/// to `apply`, and its outcome (`success` or `failure`) to `counted`. `what` names the
/// configuration in the log.
pub fn follow(
    path: &Path,
    mut loaded: Vec<u8>,
    interval: Duration,
    what: &str,
    apply: impl Fn(&[u8]) -> Result<(), String>,
    counted: impl Fn(&str),
) {
    loop {
        std::thread::sleep(interval);
        let Ok(data) = std::fs::read(path) else {
            continue;
        };
        if data == loaded {
            continue;
        }
        let status = match apply(&data) {
            Ok(()) => {
                eprintln!(
                    "kapi: {what}: loaded the new configuration of {}",
                    path.display()
                );
                "success"
            }
            Err(e) => {
                eprintln!(
                    "kapi: {what}: keeping the previous configuration: {}: {e}",
                    path.display()
                );
                "failure"
            }
        };
        loaded = data;
        counted(status);
    }
}
