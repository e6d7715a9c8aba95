//! The stall scenario: does one slow request stall the others? `--patchers` clients each
//! strategic-merge-patch a pod of `--containers` containers (every container's image, the
//! issue's 330 KB patch at 10,000) back to back, while `--probers` connections GET `/livez`
//! every `--probe-interval-ms`. A baseline phase with the same probes and no patches comes
//! first in the same run; the report gives probe p50/p99/max of both phases.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use crate::client::Target;
use crate::probe::{self, Latencies, Summary};

/// How long one setup call or one heavy patch may take (a quadratic merge of 10,000 items
/// took 12.6 s in the issue).
const HEAVY_TIMEOUT: Duration = Duration::from_secs(120);

/// Where the wide pods live.
const NAMESPACE: &str = "kapi-load-stall";

#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub patchers: usize,
    pub containers: usize,
    pub phase_s: f64,
    pub probers: usize,
    pub probe_interval_ms: u64,
}

#[derive(Serialize, Debug)]
pub struct Report {
    pub server: String,
    pub plan: Plan,
    /// /livez with no heavy requests.
    pub baseline: Summary,
    /// /livez while the patchers run.
    pub loaded: Summary,
    /// The heavy patches themselves (2xx only in the percentiles).
    pub patches: Summary,
    pub patch_statuses: BTreeMap<u16, usize>,
    pub patch_bytes: usize,
}

impl Report {
    pub fn markdown(&self) -> String {
        let p = &self.plan;
        let mut s = format!(
            "Server `{}`: {} patchers × a {}-container pod (strategic merge patch of {} bytes), {} probers of /livez every {} ms, {:.0} s per phase.\n\n",
            self.server,
            p.patchers,
            p.containers,
            self.patch_bytes,
            p.probers,
            p.probe_interval_ms,
            p.phase_s
        );
        s += "| phase | probes | failed | p50 ms | p99 ms | max ms |\n|---|--:|--:|--:|--:|--:|\n";
        for (name, x) in [
            ("baseline (no heavy requests)", &self.baseline),
            ("with the heavy patchers", &self.loaded),
        ] {
            s += &format!(
                "| {name} | {} | {} | {:.2} | {:.2} | {:.2} |\n",
                x.count, x.failed, x.p50_ms, x.p99_ms, x.max_ms
            );
        }
        s += &format!(
            "\nHeavy patches: {} answered (statuses {:?}), p50 {:.0} ms, max {:.0} ms.\n",
            self.patches.count, self.patch_statuses, self.patches.p50_ms, self.patches.max_ms
        );
        s
    }
}

fn wide_pod(name: &str, containers: usize) -> Value {
    let cs: Vec<Value> = (0..containers)
        .map(|i| json!({"name": format!("c{i}"), "image": "busybox:1"}))
        .collect();
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": cs}})
}

fn image_patch(containers: usize, image: &str) -> Vec<u8> {
    let cs: Vec<Value> = (0..containers)
        .map(|i| json!({"name": format!("c{i}"), "image": image}))
        .collect();
    json!({"spec": {"containers": cs}}).to_string().into_bytes()
}

async fn send(
    target: &Target,
    http: &reqwest::Client,
    method: reqwest::Method,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> u16 {
    let r = target
        .authorize(http.request(method, format!("{}{path}", target.server)))
        .header("Content-Type", content_type)
        .header("Accept", "application/json")
        .body(body);
    match r.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            match resp.bytes().await {
                Ok(_) => status,
                Err(_) => 0,
            }
        }
        Err(_) => 0,
    }
}

/// Creates the namespace and one wide pod per patcher (an existing one is reused).
async fn setup(target: &Target, plan: &Plan) -> Result<(), String> {
    let http = target.bulk_client(HEAVY_TIMEOUT)?;
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}});
    let st = send(
        target,
        &http,
        reqwest::Method::POST,
        "/api/v1/namespaces",
        "application/json",
        ns.to_string().into_bytes(),
    )
    .await;
    if !(st == 201 || st == 409) {
        return Err(format!("creating namespace {NAMESPACE}: status {st}"));
    }
    // The namespace's default ServiceAccount, which admission requires of pods and which
    // kube-controller-manager makes in a cluster (409: it did).
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}});
    let st = send(
        target,
        &http,
        reqwest::Method::POST,
        &format!("/api/v1/namespaces/{NAMESPACE}/serviceaccounts"),
        "application/json",
        sa.to_string().into_bytes(),
    )
    .await;
    if !(st == 201 || st == 409) {
        return Err(format!(
            "creating the default ServiceAccount of {NAMESPACE}: status {st}"
        ));
    }
    for i in 0..plan.patchers {
        let pod = wide_pod(&format!("kapi-load-wide-{i}"), plan.containers);
        let path = format!("/api/v1/namespaces/{NAMESPACE}/pods");
        let st = send(
            target,
            &http,
            reqwest::Method::POST,
            &path,
            "application/json",
            pod.to_string().into_bytes(),
        )
        .await;
        if !(st == 201 || st == 409) {
            return Err(format!("creating the wide pod {i}: status {st}"));
        }
    }
    Ok(())
}

/// One patcher: patches its pod back to back until `deadline` (a patch in flight finishes).
async fn patcher(
    target: Target,
    i: usize,
    containers: usize,
    deadline: Instant,
) -> (Latencies, BTreeMap<u16, usize>) {
    let mut lat = Latencies::default();
    let mut statuses = BTreeMap::new();
    let Ok(http) = target.bulk_client(HEAVY_TIMEOUT) else {
        lat.failed += 1;
        return (lat, statuses);
    };
    let path = format!("/api/v1/namespaces/{NAMESPACE}/pods/kapi-load-wide-{i}");
    let bodies = [
        image_patch(containers, "busybox:2"),
        image_patch(containers, "busybox:1"),
    ];
    let mut n = 0;
    while Instant::now() < deadline {
        let start = Instant::now();
        let st = send(
            &target,
            &http,
            reqwest::Method::PATCH,
            &path,
            "application/strategic-merge-patch+json",
            bodies[n % 2].clone(),
        )
        .await;
        n += 1;
        *statuses.entry(st).or_insert(0) += 1;
        if (200..300).contains(&st) {
            lat.record(start.elapsed());
        } else {
            lat.failed += 1;
        }
    }
    (lat, statuses)
}

pub async fn run(target: Target, plan: Plan) -> Result<Report, String> {
    setup(&target, &plan).await?;
    let phase = Duration::from_secs_f64(plan.phase_s);
    let interval = Duration::from_millis(plan.probe_interval_ms.max(1));
    eprintln!("kapi-load stall: baseline phase ({:.0} s)", plan.phase_s);
    let baseline = probe::livez_all(&target, plan.probers, interval, Instant::now() + phase).await;
    eprintln!(
        "kapi-load stall: {} heavy patchers ({:.0} s)",
        plan.patchers, plan.phase_s
    );
    let deadline = Instant::now() + phase;
    let patchers: Vec<_> = (0..plan.patchers)
        .map(|i| tokio::spawn(patcher(target.clone(), i, plan.containers, deadline)))
        .collect();
    let loaded = probe::livez_all(&target, plan.probers, interval, deadline).await;
    let mut patches = Latencies::default();
    let mut patch_statuses = BTreeMap::new();
    for p in patchers {
        if let Ok((l, s)) = p.await {
            patches.merge(l);
            for (k, v) in s {
                *patch_statuses.entry(k).or_insert(0) += v;
            }
        }
    }
    Ok(Report {
        server: target.server.clone(),
        patch_bytes: image_patch(plan.containers, "busybox:2").len(),
        plan,
        baseline: baseline.summary(),
        loaded: loaded.summary(),
        patches: patches.summary(),
        patch_statuses,
    })
}
