//! Health checks: `/livez`, `/readyz` and `/healthz` with upstream's check names and output
//! (`?verbose`, `?exclude=<name>`), and each check alone at `/<endpoint>/<name>`. Served
//! before any resource handler; `/readyz` fails as soon as shutdown starts.

use std::time::Duration;

use http::StatusCode;

use crate::shutdown::{Lifecycle, Phase};
use crate::storage::StoreClient;

/// How long the store may take to answer a health check before it counts as failed
/// (upstream's `--etcd-healthcheck-timeout` default): a probe never hangs on a stuck store.
const STORE_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Livez,
    Readyz,
    Healthz,
}

const ALL: &[Endpoint] = &[Endpoint::Livez, Endpoint::Readyz, Endpoint::Healthz];
const READYZ: &[Endpoint] = &[Endpoint::Readyz];
/// Where upstream lists its KMS check: not livez (a plugin outage must not restart the server).
const HEALTHZ_READYZ: &[Endpoint] = &[Endpoint::Readyz, Endpoint::Healthz];

/// What a check looks at.
#[derive(Clone, Copy)]
enum Check {
    /// Always passes once the server serves: `ping`, `log`, and the start-up steps kapi runs
    /// before it listens (cache loaded, system namespaces created, store reached).
    Started,
    /// The store answers.
    Store,
    /// Shutdown has not started.
    NotShuttingDown,
    /// The KMS plugins of `--encryption-provider-config` answer `Status` (listed only when
    /// there are any, or the configuration is reloaded).
    Kms,
}

/// The checks in upstream's order, with the endpoints that list them. Only post-start hooks
/// whose meaning kapi fulfils are claimed: its watch cache is its informers and object counts,
/// it creates the system namespaces, and it waits for its store before serving.
const CHECKS: &[(&str, &[Endpoint], Check)] = &[
    ("ping", ALL, Check::Started),
    ("log", ALL, Check::Started),
    ("etcd", ALL, Check::Store),
    ("etcd-readiness", READYZ, Check::Store),
    ("kms-providers", HEALTHZ_READYZ, Check::Kms),
    ("informer-sync", READYZ, Check::Started),
    (
        "poststarthook/generic-apiserver-start-informers",
        ALL,
        Check::Started,
    ),
    (
        "poststarthook/storage-object-count-tracker-hook",
        ALL,
        Check::Started,
    ),
    (
        "poststarthook/start-system-namespaces-controller",
        ALL,
        Check::Started,
    ),
    ("poststarthook/storage-readiness", ALL, Check::Started),
    ("shutdown", READYZ, Check::NotShuttingDown),
];

/// Whether `path` is a health endpoint or one of its checks.
pub fn is_health(path: &str) -> bool {
    match split(path) {
        Some((_, None)) => true,
        // Only the checks there are: a made-up name is not a health path (nor a metric label).
        Some((endpoint, Some(name))) => CHECKS
            .iter()
            .any(|(n, on, _)| *n == name && on.contains(&endpoint)),
        None => false,
    }
}

fn split(path: &str) -> Option<(Endpoint, Option<&str>)> {
    let (endpoint, rest) = [
        ("/livez", Endpoint::Livez),
        ("/readyz", Endpoint::Readyz),
        ("/healthz", Endpoint::Healthz),
    ]
    .into_iter()
    .find_map(|(p, e)| path.strip_prefix(p).map(|rest| (e, rest)))?;
    match rest {
        "" | "/" => Some((endpoint, None)),
        r => r.strip_prefix('/').map(|name| (endpoint, Some(name))),
    }
}

/// Answers a health request: `(status, body)`, or `None` for an unknown check (404).
pub async fn serve(
    path: &str,
    query: Option<&str>,
    store: &StoreClient,
    lifecycle: &Lifecycle,
) -> Option<(StatusCode, String)> {
    let (endpoint, check) = split(path)?;
    let listed = CHECKS.iter().filter(|(_, on, _)| on.contains(&endpoint));
    if let Some(name) = check {
        let (_, _, check) = listed.into_iter().find(|(n, _, _)| *n == name)?;
        if matches!(check, Check::Kms) && store.kms_health().await.is_none() {
            return None;
        }
        return Some(match run(*check, store, lifecycle, &mut None).await {
            Ok(()) => (StatusCode::OK, "ok".into()),
            Err(reason) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("internal server error: {reason}\n"),
            ),
        });
    }
    let mut verbose = false;
    let mut exclude: Vec<String> = Vec::new();
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match &*k {
            "verbose" => verbose = true,
            "exclude" => exclude.push(v.into_owned()),
            _ => {}
        }
    }
    let mut out = String::new();
    let mut failed = false;
    let mut store_ok = None;
    for (name, _, check) in listed {
        if let Some(i) = exclude.iter().position(|e| e == name) {
            exclude.swap_remove(i);
            continue;
        }
        let outcome = match check {
            Check::Kms => match store.kms_health().await {
                None => continue,
                Some(result) => result,
            },
            check => run(*check, store, lifecycle, &mut store_ok).await,
        };
        match outcome {
            Ok(()) => out.push_str(&format!("[+]{name} ok\n")),
            Err(_) => {
                failed = true;
                out.push_str(&format!("[-]{name} failed: reason withheld\n"));
            }
        }
    }
    if !exclude.is_empty() {
        exclude.sort();
        exclude.dedup();
        let quoted: Vec<String> = exclude.iter().map(|e| format!("{e:?}")).collect();
        out.push_str(&format!(
            "warn: some health checks cannot be excluded: no matches for {}\n",
            quoted.join(",")
        ));
    }
    let name = match endpoint {
        Endpoint::Livez => "livez",
        Endpoint::Readyz => "readyz",
        Endpoint::Healthz => "healthz",
    };
    Some(if failed {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{out}{name} check failed\n"),
        )
    } else if verbose {
        (StatusCode::OK, format!("{out}{name} check passed\n"))
    } else {
        (StatusCode::OK, "ok".into())
    })
}

/// Runs one check; the store is asked at most once per request (`store_ok` remembers).
async fn run(
    check: Check,
    store: &StoreClient,
    lifecycle: &Lifecycle,
    store_ok: &mut Option<bool>,
) -> Result<(), String> {
    match check {
        Check::Started => Ok(()),
        Check::NotShuttingDown if lifecycle.phase() >= Phase::ShutdownInitiated => {
            Err("process is shutting down".into())
        }
        Check::Kms => store.kms_health().await.unwrap_or(Ok(())),
        Check::NotShuttingDown => Ok(()),
        Check::Store => {
            let ok = match *store_ok {
                Some(ok) => ok,
                None => {
                    let ok = matches!(
                        monoio::time::timeout(STORE_CHECK_TIMEOUT, store.health()).await,
                        Ok(Ok(()))
                    );
                    *store_ok = Some(ok);
                    ok
                }
            };
            if ok {
                Ok(())
            } else {
                Err("the store does not answer".into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_checks_are_recognised() {
        assert!(is_health("/readyz"));
        assert!(is_health("/livez/ping"));
        assert!(is_health("/readyz/poststarthook/storage-readiness"));
        assert!(!is_health("/readyzz"));
        assert!(!is_health("/metrics"));
        assert!(!is_health("/readyz/made-up-check"));
    }
}
