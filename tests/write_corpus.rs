//! The shared write corpus, replayed against the real binary: 2,845 dry-run creates (minimal and
//! fuller objects of every creatable resource, as is and with one field made invalid) and what
//! a real v1.36 kube-apiserver answered. Compared with the corpus README's rules: the status
//! code; for a 201 the defaulted object less what two correct servers may differ in (uid,
//! timestamps, resourceVersion, managedFields, allocated IPs and ports, random suffixes); for a
//! 422 the set of (field, reason) of its causes. Prints a per-kind agreement table (also written
//! to `<target tmp>/write-corpus.md`) and holds kapi to the agreement it has reached: the floor
//! below only ever goes up.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::time::Duration;

use serde_json::{Value, json};
use support::kapi::Kapi;

/// Cases kapi must answer as upstream did (of 2,845). Raise it as kinds gain their rules.
const AGREEMENT_FLOOR: usize = 2845;

/// Concurrent senders: enough to keep both cores busy, few enough for a shared machine.
const SENDERS: usize = 4;

struct Case {
    id: String,
    kind: String,
    path: String,
    request: Value,
    code: u16,
    response: Value,
}

fn cases() -> Vec<Case> {
    let gz: &[u8] = include_bytes!("data/upstream/writes/writes.jsonl.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_string(&mut text)
        .expect("the corpus unpacks");
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("a corpus line");
            Case {
                id: v["id"].as_str().unwrap_or_default().to_string(),
                kind: v["request"]["kind"].as_str().unwrap_or("?").to_string(),
                path: v["path_url"].as_str().unwrap_or_default().to_string(),
                request: v["request"].clone(),
                code: v["code"].as_u64().unwrap_or(0) as u16,
                response: v["response"].clone(),
            }
        })
        .collect()
}

/// Removes what two correct servers may differ in (the corpus README's list).
fn normalize(v: &mut Value) {
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "uid",
            "creationTimestamp",
            "resourceVersion",
            "managedFields",
        ] {
            meta.remove(k);
        }
        if let Some(labels) = meta.get_mut("labels").and_then(Value::as_object_mut) {
            labels.remove("controller-uid");
            labels.remove("batch.kubernetes.io/controller-uid");
        }
    }
    for p in [
        "/spec/selector/matchLabels",
        "/spec/template/metadata/labels",
    ] {
        if let Some(m) = v.pointer_mut(p).and_then(Value::as_object_mut) {
            m.remove("controller-uid");
            m.remove("batch.kubernetes.io/controller-uid");
        }
    }
    if let Some(s) = v.get_mut("status").and_then(Value::as_object_mut) {
        s.remove("lastPhaseTransitionTime");
    }
    // Who made a CertificateSigningRequest is recorded in it: the capture's client is not
    // the test's.
    if v["kind"] == "CertificateSigningRequest"
        && let Some(spec) = v.get_mut("spec").and_then(Value::as_object_mut)
    {
        for k in ["username", "uid", "groups", "extra"] {
            spec.remove(k);
        }
    }
    if v["kind"] == "Service"
        && let Some(spec) = v.get_mut("spec").and_then(Value::as_object_mut)
    {
        for k in ["clusterIP", "clusterIPs"] {
            if spec.contains_key(k) {
                spec.insert(k.into(), json!("<allocated>"));
            }
        }
        if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                if p.contains_key("nodePort") {
                    p.insert("nodePort".into(), json!("<allocated>"));
                }
            }
        }
        if spec.contains_key("healthCheckNodePort") {
            spec.insert("healthCheckNodePort".into(), json!("<allocated>"));
        }
    }
    // Pods: the kube-api-access volume's random suffix, and OpenShift's fourth source.
    let text = serde_json::to_string(v).unwrap_or_default();
    if text.contains("kube-api-access-") {
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        while let Some(i) = rest.find("kube-api-access-") {
            let (head, tail) = rest.split_at(i + "kube-api-access-".len());
            out.push_str(head);
            out.push_str("XXXXX");
            rest = tail.get(5..).unwrap_or("");
        }
        out.push_str(rest);
        if let Ok(n) = serde_json::from_str(&out) {
            *v = n;
        }
    }
    if let Some(vols) = v.pointer_mut("/spec/volumes").and_then(Value::as_array_mut) {
        for vol in vols {
            if let Some(sources) = vol
                .pointer_mut("/projected/sources")
                .and_then(Value::as_array_mut)
            {
                sources.retain(|s| {
                    s.pointer("/configMap/name") != Some(&json!("openshift-service-ca.crt"))
                });
            }
        }
    }
}

fn causes(v: &Value) -> BTreeSet<(String, String)> {
    v.pointer("/details/causes")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    (
                        c["field"].as_str().unwrap_or("").to_string(),
                        c["reason"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether kapi's answer is upstream's under the corpus rules.
fn agrees(case: &Case, code: u16, body: &Value) -> bool {
    if code != case.code {
        return false;
    }
    match code {
        201 => {
            let (mut want, mut got) = (case.response.clone(), body.clone());
            normalize(&mut want);
            normalize(&mut got);
            want == got
        }
        422 => causes(&case.response) == causes(body),
        _ => true,
    }
}

#[test]
fn the_shared_write_corpus_is_answered_as_upstream() {
    let k = Kapi::start(&[], &[]);
    k.ok(&["create", "namespace", "layout"]);
    k.ok(&["create", "serviceaccount", "default", "-n", "layout"]);
    // The corpus's custom resources need the CRDs it was captured with, served.
    let crds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/upstream/crds");
    for f in ["widgets.json", "gadgets.json"] {
        k.ok(&["create", "-f", crds.join(f).to_str().expect("a UTF-8 path")]);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !(k
        .kubectl(&["get", "widgets", "-n", "layout"])
        .status
        .success()
        && k.kubectl(&["get", "gadgets"]).status.success())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the corpus's CRDs are not served"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let cases = cases();
    assert_eq!(cases.len(), 2845);
    let tls = support::kapi::admin_tls(&k.data_dir, &[b"h2"]);
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .tls_backend_preconfigured(tls)
        .build()
        .expect("an HTTP client");
    let base = format!("https://127.0.0.1:{}", k.port);
    let results: Vec<(bool, u16)> = std::thread::scope(|s| {
        let chunks: Vec<&[Case]> = cases.chunks(cases.len().div_ceil(SENDERS)).collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let (http, base) = (&http, &base);
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|case| {
                            let resp = http
                                .post(format!("{base}{}", case.path))
                                .header("Content-Type", "application/json")
                                .header("Accept", "application/json")
                                .body(serde_json::to_vec(&case.request).unwrap())
                                .send();
                            match resp {
                                Ok(r) => {
                                    let code = r.status().as_u16();
                                    let body = r
                                        .bytes()
                                        .ok()
                                        .and_then(|b| serde_json::from_slice(&b).ok())
                                        .unwrap_or(Value::Null);
                                    (agrees(case, code, &body), code)
                                }
                                Err(_) => (false, 0),
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a sender"))
            .collect()
    });
    // kapi stays healthy through it all: no 5xx, no dropped request.
    let broken: Vec<&str> = cases
        .iter()
        .zip(&results)
        .filter(|(_, (_, code))| *code == 0 || *code >= 500)
        .map(|(c, _)| c.id.as_str())
        .take(20)
        .collect();
    // Per-kind table.
    let mut table: BTreeMap<&str, [usize; 6]> = BTreeMap::new();
    for (case, (ok, _)) in cases.iter().zip(&results) {
        let row = table.entry(case.kind.as_str()).or_default();
        let col = match case.code {
            201 => 0,
            422 => 2,
            _ => 4,
        };
        row[col] += 1;
        if *ok {
            row[col + 1] += 1;
        }
    }
    let mut md = String::from(
        "| kind | 201 (defaults) | 422 (validation) | other | agree |\n|---|---|---|---|---|\n",
    );
    let mut totals = [0usize; 6];
    for (kind, r) in &table {
        for i in 0..6 {
            totals[i] += r[i];
        }
        md.push_str(&format!(
            "| {kind} | {}/{} | {}/{} | {}/{} | {}/{} |\n",
            r[1],
            r[0],
            r[3],
            r[2],
            r[5],
            r[4],
            r[1] + r[3] + r[5],
            r[0] + r[2] + r[4]
        ));
    }
    let agreed = totals[1] + totals[3] + totals[5];
    md.push_str(&format!(
        "| **all** | {}/{} | {}/{} | {}/{} | **{agreed}/{}** |\n",
        totals[1],
        totals[0],
        totals[3],
        totals[2],
        totals[5],
        totals[4],
        cases.len()
    ));
    println!("{md}");
    let _ = std::fs::write(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("write-corpus.md"),
        &md,
    );
    assert!(broken.is_empty(), "5xx or no answer for: {broken:?}");
    assert!(
        agreed >= AGREEMENT_FLOOR,
        "{agreed} of {} cases answered as upstream, below the floor of {AGREEMENT_FLOOR}\n{md}",
        cases.len()
    );
}
