//! Fuzz target: one request through kapi's real request path (`Api::handle` over the embedded
//! store, in a monoio runtime), from arbitrary bytes or a captured request in text form. A
//! panic, or a response that breaks `kapi::fuzzing::check`, is a finding.
//! `KAPI_FUZZ_PRINT=1` prints each input as the request it stands for (to keep it as a test).

#![no_main]

use std::cell::RefCell;

use kapi::fuzzing::{Harness, check};
use libfuzzer_sys::fuzz_target;

thread_local! {
    static HARNESS: RefCell<(tempfile::TempDir, Harness)> = RefCell::new(open());
}

/// The data directory goes on tmpfs when there is one: the embedded store syncs every write.
fn open() -> (tempfile::TempDir, Harness) {
    let mut builder = tempfile::Builder::new();
    builder.prefix("kapi-fuzz-");
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        builder.tempdir_in("/dev/shm")
    } else {
        builder.tempdir()
    }
    .expect("a temporary data directory");
    let harness = Harness::new(dir.path()).expect("the harness");
    (dir, harness)
}

fuzz_target!(|data: &[u8]| {
    HARNESS.with(|cell| {
        let (_, harness) = &mut *cell.borrow_mut();
        let raw = harness.model().request(data);
        if std::env::var_os("KAPI_FUZZ_PRINT").is_some() {
            eprintln!("{}", String::from_utf8_lossy(&raw.to_text()));
        }
        if let Some(out) = harness.serve(&raw)
            && let Err(e) = check(&raw, &out)
        {
            panic!(
                "{e}\n--- request ---\n{}",
                String::from_utf8_lossy(&raw.to_text())
            );
        }
    });
});
