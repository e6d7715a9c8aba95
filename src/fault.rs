//! Fault injection for tests: named points where a debug build can be told, through the
//! `KAPI_FAULTS` environment variable (a comma-separated list of point names), to fail as a bug
//! would, so a test can show the failure stays contained. Release builds compile the points away.

/// Panics here if this debug build was started with `name` in `KAPI_FAULTS`.
#[inline]
pub fn point(name: &str) {
    #[cfg(debug_assertions)]
    if enabled(name) {
        panic!("injected fault: {name}");
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}

#[cfg(debug_assertions)]
fn enabled(name: &str) -> bool {
    static FAULTS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    FAULTS
        .get_or_init(|| {
            std::env::var("KAPI_FAULTS")
                .unwrap_or_default()
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .iter()
        .any(|f| f == name)
}
