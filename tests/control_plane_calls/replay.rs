//! Replaying rows of `calls.tsv`: each row's key (who, verb, resource, subresource, query
//! parameter names), the calls sent as a row's user and what kapi answered, and the report that
//! compares them with upstream's codes and response kinds.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use serde_json::Value;

use crate::support::kapi::Kapi;

const CALLS: &str = include_str!("../data/upstream/control-plane/calls.tsv");
/// Upstream 1.36's aggregated discovery (kapi serves these files): each resource's and
/// subresource's kind, which the answers' shapes are checked against.
const CORE_DISCOVERY: &str = include_str!("../../src/api/data/discovery/api.aggregated-v2.json");
const GROUP_DISCOVERY: &str = include_str!("../../src/api/data/discovery/apis.aggregated-v2.json");

/// One row's identity: who, with which verb on what, and the query parameter names.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RowKey {
    pub agent: String,
    pub user: String,
    pub verb: String,
    pub group: String,
    pub version: String,
    pub resource: String,
    pub subresource: String,
    pub path: String,
    pub params: String,
}

pub struct Row {
    pub key: RowKey,
    pub code: u16,
}

pub fn rows() -> Vec<Row> {
    CALLS
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 11, "a row of calls.tsv: {line}");
            Row {
                key: RowKey {
                    agent: f[1].into(),
                    user: f[2].into(),
                    verb: f[3].into(),
                    group: f[4].into(),
                    version: f[5].into(),
                    resource: f[6].into(),
                    subresource: f[7].into(),
                    path: f[8].into(),
                    params: f[9].into(),
                },
                code: f[10].parse().expect("a code"),
            }
        })
        .collect()
}

/// A client of kapi as one of the row's users.
#[derive(Clone)]
pub struct Who {
    pub agent: String,
    pub user: String,
    pub http: reqwest::blocking::Client,
    pub token: Option<String>,
}

/// What one replayed call was meant to be (its row and upstream's code) and what kapi said.
pub struct Outcome {
    pub key: RowKey,
    pub expect: u16,
    pub got: u16,
    pub body: Value,
}

pub struct Replay {
    pub port: u16,
    /// kapi's data directory: its CA, which the controllers' token clients trust.
    pub data_dir: PathBuf,
    pub outcomes: Vec<Outcome>,
    /// Shape checks that failed, by the call they were made on.
    pub problems: Vec<String>,
}

/// The request info of a path, as upstream's `RequestInfoFactory` finds it: (group, version,
/// resource, name, subresource), or `None` for a non-resource path.
fn request_info(path: &str) -> Option<(String, String, String, String, String)> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    let mut rest = rest.to_vec();
    if rest.is_empty() {
        return None;
    }
    if rest[0] == "namespaces" && rest.len() > 2 && !["status", "finalize"].contains(&rest[2]) {
        rest.drain(..2);
    }
    let at = |i: usize| rest.get(i).copied().unwrap_or("").to_string();
    Some((group.into(), version.into(), at(0), at(1), at(2)))
}

impl Replay {
    fn url(&self, path: &str, query: &[(&str, &str)]) -> String {
        let mut url =
            reqwest::Url::parse(&format!("https://127.0.0.1:{}{path}", self.port)).expect("a URL");
        for (k, v) in query {
            url.query_pairs_mut().append_pair(k, v);
        }
        url.to_string()
    }

    fn key(&self, who: &Who, method: &str, path: &str, query: &[(&str, &str)]) -> RowKey {
        let mut params: Vec<&str> = query.iter().map(|(k, _)| *k).collect();
        params.sort_unstable();
        let watch = query.iter().any(|(k, v)| *k == "watch" && *v == "true");
        let mut key = RowKey {
            agent: who.agent.clone(),
            user: who.user.clone(),
            verb: String::new(),
            group: String::new(),
            version: String::new(),
            resource: String::new(),
            subresource: String::new(),
            path: String::new(),
            params: params.join(","),
        };
        match request_info(path) {
            Some((group, version, resource, name, sub)) => {
                key.verb = match (method, name.is_empty(), watch) {
                    ("GET", _, true) => "watch",
                    ("GET", true, _) => "list",
                    ("GET", false, _) => "get",
                    ("POST", ..) => "create",
                    ("PUT", ..) => "update",
                    ("PATCH", ..) => "patch",
                    ("DELETE", true, _) => "deletecollection",
                    ("DELETE", false, _) => "delete",
                    _ => panic!("no audit verb for {method}"),
                }
                .into();
                (key.group, key.version, key.resource, key.subresource) =
                    (group, version, resource, sub);
            }
            None => {
                key.verb = "get".into();
                key.path = path.into();
            }
        }
        key
    }

    pub fn request(
        &self,
        who: &Who,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<(&str, &Value)>,
    ) -> reqwest::blocking::Response {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let mut req = who
            .http
            .request(m, self.url(path, query))
            .header("Accept", "application/json")
            .header("User-Agent", format!("{}/v1.36.2", who.agent));
        if let Some(token) = &who.token {
            req = req.bearer_auth(token);
        }
        if let Some((ctype, body)) = body {
            req = req
                .header("Content-Type", ctype)
                .body(serde_json::to_vec(body).expect("JSON"));
        }
        req.send().expect("a response")
    }

    /// One call as `who`, meant as the row whose code is `expect`; kapi's answer.
    pub fn call(
        &mut self,
        who: &Who,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<(&str, &Value)>,
        expect: u16,
    ) -> Value {
        let resp = self.request(who, method, path, query, body);
        let got = resp.status().as_u16();
        let body: Value =
            serde_json::from_slice(&resp.bytes().expect("a body")).unwrap_or(Value::Null);
        let key = self.key(who, method, path, query);
        self.outcomes.push(Outcome {
            key,
            expect,
            got,
            body: body.clone(),
        });
        body
    }

    pub fn get(&mut self, who: &Who, path: &str, expect: u16) -> Value {
        self.call(who, "GET", path, &[], None, expect)
    }

    pub fn post(
        &mut self,
        who: &Who,
        path: &str,
        query: &[(&str, &str)],
        body: &Value,
        expect: u16,
    ) -> Value {
        self.call(
            who,
            "POST",
            path,
            query,
            Some(("application/json", body)),
            expect,
        )
    }

    pub fn put(&mut self, who: &Who, path: &str, body: &Value, expect: u16) -> Value {
        self.call(
            who,
            "PUT",
            path,
            &[],
            Some(("application/json", body)),
            expect,
        )
    }

    pub fn patch(
        &mut self,
        who: &Who,
        path: &str,
        query: &[(&str, &str)],
        ctype: &str,
        body: &Value,
        expect: u16,
    ) -> Value {
        self.call(who, "PATCH", path, query, Some((ctype, body)), expect)
    }

    pub fn delete(&mut self, who: &Who, path: &str, options: &Value, expect: u16) -> Value {
        self.call(
            who,
            "DELETE",
            path,
            &[],
            Some(("application/json", options)),
            expect,
        )
    }

    /// A watch as `who`; reads events until the initial-events-end bookmark (a watch-list) or
    /// the first event (a plain watch), then hangs up. The events read.
    pub fn watch(
        &mut self,
        who: &Who,
        path: &str,
        query: &[(&str, &str)],
        expect: u16,
    ) -> Vec<Value> {
        let resp = self.request(who, "GET", path, query, None);
        let got = resp.status().as_u16();
        let list = query.iter().any(|(k, _)| *k == "sendInitialEvents");
        let mut events = Vec::new();
        let mut body = Value::Null;
        if got == 200 {
            for line in BufReader::new(resp).lines() {
                let Ok(line) = line else { break };
                let Ok(event) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                let end = event["type"] == "BOOKMARK"
                    && event["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"]
                        == "true";
                events.push(event);
                if end || !list {
                    break;
                }
            }
            let ended = events.last().is_some_and(|e| {
                !list
                    || e["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"] == "true"
            });
            if !ended {
                self.problems.push(format!(
                    "{} watch {path}: the stream ended without {}: {events:?}",
                    who.user,
                    if list {
                        "the initial-events-end bookmark"
                    } else {
                        "an event"
                    }
                ));
            }
        } else {
            body = serde_json::from_slice(&resp.bytes().unwrap_or_default()).unwrap_or(Value::Null);
        }
        let key = self.key(who, "GET", path, query);
        self.outcomes.push(Outcome {
            key,
            expect,
            got,
            body,
        });
        events
    }

    /// A shape check on what a call returned.
    pub fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.problems.push(what());
        }
    }
}

/// A read outside the replay (for the current object a controller's informer would have).
pub fn r_get_quiet(r: &Replay, who: &Who, path: &str) -> Value {
    let resp = r.request(who, "GET", path, &[], None);
    serde_json::from_slice(&resp.bytes().unwrap_or_default()).unwrap_or(Value::Null)
}

/// (group, version, resource, subresource) → (apiVersion, kind) of upstream's answers.
fn response_kinds() -> BTreeMap<(String, String, String, String), (String, String)> {
    let mut out = BTreeMap::new();
    for doc in [CORE_DISCOVERY, GROUP_DISCOVERY] {
        let doc: Value = serde_json::from_str(doc).expect("the discovery documents");
        for group in doc["items"].as_array().into_iter().flatten() {
            let g = group["metadata"]["name"].as_str().unwrap_or_default();
            for version in group["versions"].as_array().into_iter().flatten() {
                let v = version["version"].as_str().unwrap_or_default();
                for res in version["resources"].as_array().into_iter().flatten() {
                    let r = res["resource"].as_str().unwrap_or_default();
                    let kind_of = |rk: &Value| {
                        let (kg, kv) = (
                            rk["group"].as_str().unwrap_or(g),
                            rk["version"].as_str().unwrap_or(v),
                        );
                        let (kg, kv) = if kv.is_empty() { (g, v) } else { (kg, kv) };
                        let api_version = if kg.is_empty() {
                            kv.to_string()
                        } else {
                            format!("{kg}/{kv}")
                        };
                        (
                            api_version,
                            rk["kind"].as_str().unwrap_or_default().to_string(),
                        )
                    };
                    out.insert(
                        (g.into(), v.into(), r.into(), String::new()),
                        kind_of(&res["responseKind"]),
                    );
                    for sub in res["subresources"].as_array().into_iter().flatten() {
                        let s = sub["subresource"].as_str().unwrap_or_default();
                        out.insert(
                            (g.into(), v.into(), r.into(), s.into()),
                            kind_of(&sub["responseKind"]),
                        );
                    }
                }
            }
        }
    }
    out
}

/// Whether a 2xx answer to a replayed row has upstream's shape: the resource's kind (its
/// list kind for a list), a Status for a binding, either for a delete.
fn shape_problem(
    o: &Outcome,
    kinds: &BTreeMap<(String, String, String, String), (String, String)>,
) -> Option<String> {
    let k = &o.key;
    if !(200..300).contains(&o.got)
        || k.agent == "kube-apiserver"
        || !k.path.is_empty()
        || k.verb == "watch"
    {
        return None;
    }
    let Some((api_version, kind)) = kinds.get(&(
        k.group.clone(),
        k.version.clone(),
        k.resource.clone(),
        k.subresource.clone(),
    )) else {
        return Some(format!("{k:?}: no such resource in upstream's discovery"));
    };
    let (want_version, want_kinds): (&str, Vec<String>) =
        match (k.verb.as_str(), k.subresource.as_str()) {
            ("list" | "deletecollection", _) => (api_version, vec![format!("{kind}List")]),
            ("create", "binding") => ("v1", vec!["Status".into()]),
            ("delete", _) => (api_version, vec![kind.clone(), "Status".into()]),
            _ => (api_version, vec![kind.clone()]),
        };
    let (got_version, got_kind) = (
        o.body["apiVersion"].as_str().unwrap_or_default(),
        o.body["kind"].as_str().unwrap_or_default(),
    );
    let version_ok = got_version == want_version || got_kind == "Status";
    (!version_ok || !want_kinds.iter().any(|w| w == got_kind)).then(|| {
        format!("{k:?}: kapi answered {got_version} {got_kind}, upstream answers {want_version} {want_kinds:?}")
    })
}

/// Prints the table of rows by client and fails on any row kapi answered otherwise, any row
/// not replayed, any replayed call that is no row, and any failed shape check.
pub fn report(rows: &[Row], r: &Replay, skipped: &BTreeSet<usize>, k: &Kapi) {
    #[derive(Default)]
    struct Tally {
        agree: usize,
        differ: usize,
        start_up: usize,
        missing: usize,
    }
    let mut by_client: BTreeMap<(String, String), Tally> = BTreeMap::new();
    let mut failures = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let t = by_client
            .entry((row.key.agent.clone(), row.key.user.clone()))
            .or_default();
        if skipped.contains(&i) {
            t.start_up += 1;
            continue;
        }
        let ours: Vec<&Outcome> = r
            .outcomes
            .iter()
            .filter(|o| o.key == row.key && o.expect == row.code)
            .collect();
        if ours.is_empty() {
            t.missing += 1;
            failures.push(format!("not replayed: {:?} {}", row.key, row.code));
        } else if let Some(bad) = ours.iter().find(|o| o.got != o.expect) {
            t.differ += 1;
            failures.push(format!(
                "differs: {:?}: upstream {}, kapi {}: {}",
                row.key, row.code, bad.got, bad.body
            ));
        } else {
            t.agree += 1;
        }
    }
    let kinds = response_kinds();
    failures.extend(
        r.outcomes
            .iter()
            .filter_map(|o| shape_problem(o, &kinds))
            .map(|p| format!("shape: {p}")),
    );
    for o in &r.outcomes {
        if !rows
            .iter()
            .any(|row| row.key == o.key && row.code == o.expect)
        {
            failures.push(format!(
                "a replayed call that is no row of calls.tsv: {:?} {} (kapi {})",
                o.key, o.expect, o.got
            ));
        }
    }
    println!(
        "{:<26} {:<58} {:>6} {:>6} {:>9} {:>8}",
        "client", "user", "agree", "differ", "start-up", "missing"
    );
    for ((agent, user), t) in &by_client {
        println!(
            "{agent:<26} {user:<58} {:>6} {:>6} {:>9} {:>8}",
            t.agree, t.differ, t.start_up, t.missing
        );
    }
    failures.extend(r.problems.iter().map(|p| format!("shape: {p}")));
    assert!(
        failures.is_empty(),
        "{} problems:\n{}\n\nkapi's log:\n{}",
        failures.len(),
        failures.join("\n"),
        k.log()
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    );
}
