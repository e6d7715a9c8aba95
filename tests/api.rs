//! The REST API over HTTPS, as client-go speaks it (protobuf and JSON, Accept variants,
//! pagination, watches, finalizers, subresources), against the real kapi binary.

mod support;

use std::io::Read;
use std::time::Duration;

use serde_json::{Value, json};
use support::kapi::Kapi;

struct Client {
    http: reqwest::blocking::Client,
    base: String,
}

impl Client {
    fn new(k: &Kapi) -> Client {
        let tls = support::kapi::admin_tls(&k.data_dir, &[b"h2", b"http/1.1"]);
        let http = reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .tls_backend_preconfigured(tls)
            .build()
            .unwrap();
        Client {
            http,
            base: format!("https://127.0.0.1:{}", k.port),
        }
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        accept: &str,
        ctype: &str,
        body: Vec<u8>,
    ) -> (u16, String, Vec<u8>) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(m, format!("{}{path}", self.base))
            .header("Accept", accept);
        if !body.is_empty() {
            req = req.header("Content-Type", ctype).body(body);
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        (status, ct, resp.bytes().unwrap().to_vec())
    }

    fn json(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let b = body
            .map(|v| serde_json::to_vec(&v).unwrap())
            .unwrap_or_default();
        let (s, _, bytes) = self.send(method, path, "application/json", "application/json", b);
        (s, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }
}

fn cm(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"set": "a"}}, "data": {"k": name}})
}

#[test]
fn pagination_continues_from_the_first_pages_snapshot() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    for i in 0..5 {
        assert_eq!(
            c.json(
                "POST",
                "/api/v1/namespaces/default/configmaps",
                Some(cm(&format!("p{i}")))
            )
            .0,
            201
        );
    }
    let (s, page1) = c.json("GET", "/api/v1/namespaces/default/configmaps?limit=2", None);
    assert_eq!(s, 200);
    assert_eq!(page1["items"].as_array().unwrap().len(), 2);
    assert_eq!(page1["metadata"]["remainingItemCount"], 3);
    let token = page1["metadata"]["continue"].as_str().unwrap().to_string();
    // A write between pages does not show in the rest of the list.
    c.json(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        Some(cm("p9")),
    );
    let mut names: Vec<String> = page1["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    let mut token = token;
    while !token.is_empty() {
        let (s, page) = c.json(
            "GET",
            &format!("/api/v1/namespaces/default/configmaps?limit=2&continue={token}"),
            None,
        );
        assert_eq!(s, 200, "{page}");
        names.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["metadata"]["name"].as_str().unwrap().to_string()),
        );
        token = page["metadata"]["continue"]
            .as_str()
            .unwrap_or("")
            .to_string();
    }
    assert_eq!(names, ["p0", "p1", "p2", "p3", "p4"]);
    let (s, bad) = c.json(
        "GET",
        "/api/v1/namespaces/default/configmaps?limit=2&continue=garbage",
        None,
    );
    assert_eq!((s, bad["reason"].as_str()), (400, Some("BadRequest")));
}

#[test]
fn protobuf_and_json_answers_are_the_same_object() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    c.json(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        Some(cm("same")),
    );
    let (s, ct, pb) = c.send(
        "GET",
        "/api/v1/namespaces/default/configmaps/same",
        "application/vnd.kubernetes.protobuf",
        "",
        vec![],
    );
    assert_eq!(
        (s, ct.as_str()),
        (200, "application/vnd.kubernetes.protobuf")
    );
    assert!(pb.starts_with(b"k8s\0"));
    let mut from_pb = Vec::new();
    kapi_codec::to_json::envelope_to_json(&pb, &mut from_pb).unwrap();
    let (_, json) = c.json("GET", "/api/v1/namespaces/default/configmaps/same", None);
    assert_eq!(serde_json::from_slice::<Value>(&from_pb).unwrap(), json);
    // A protobuf body creates an object too.
    let mut body = Vec::new();
    kapi_codec::to_pb::json_to_envelope(
        &serde_json::to_vec(&cm("frompb")).unwrap(),
        None,
        kapi_codec::FieldValidation::Strict,
        &mut body,
    )
    .unwrap();
    let (s, _, _) = c.send(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        "application/vnd.kubernetes.protobuf",
        body,
    );
    assert_eq!(s, 201);
    let (s, ct, yaml) = c.send(
        "GET",
        "/api/v1/namespaces/default/configmaps/frompb",
        "application/yaml",
        "",
        vec![],
    );
    assert_eq!((s, ct.as_str()), (200, "application/yaml"));
    assert!(String::from_utf8(yaml).unwrap().contains("name: frompb"));
    let (s, _, body) = c.send(
        "GET",
        "/api/v1/namespaces/default/configmaps/same",
        "text/html",
        "",
        vec![],
    );
    assert_eq!(s, 406, "{}", String::from_utf8_lossy(&body));
}

#[test]
fn table_and_partial_object_metadata_are_served() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    c.json(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        Some(cm("t1")),
    );
    let (s, ct, body) = c.send(
        "GET",
        "/api/v1/namespaces/default/configmaps",
        "application/json;as=Table;v=v1;g=meta.k8s.io",
        "",
        vec![],
    );
    assert_eq!((s, ct.as_str()), (200, "application/json"));
    let t: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(t["kind"], "Table");
    let cols: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(cols, ["Name", "Data", "Age"]);
    assert_eq!(t["rows"][0]["cells"][0], "t1");
    assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    let (_, _, body) = c.send(
        "GET",
        "/api/v1/namespaces/default/configmaps",
        "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io",
        "",
        vec![],
    );
    let l: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(l["kind"], "PartialObjectMetadataList");
    assert_eq!(l["items"][0]["metadata"]["name"], "t1");
    assert!(l["items"][0].get("data").is_none());
}

#[test]
fn finalizers_hold_a_deleted_object_until_they_are_removed() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    let mut obj = cm("held");
    obj["metadata"]["finalizers"] = json!(["example.com/hold"]);
    c.json("POST", "/api/v1/namespaces/default/configmaps", Some(obj));
    let (s, deleted) = c.json("DELETE", "/api/v1/namespaces/default/configmaps/held", None);
    assert_eq!(s, 200);
    assert!(
        deleted["metadata"]["deletionTimestamp"].is_string(),
        "{deleted}"
    );
    let (s, still) = c.json("GET", "/api/v1/namespaces/default/configmaps/held", None);
    assert_eq!(s, 200);
    assert!(still["metadata"]["deletionTimestamp"].is_string());
    let (_, _, _) = c.send(
        "PATCH",
        "/api/v1/namespaces/default/configmaps/held",
        "application/json",
        "application/merge-patch+json",
        br#"{"metadata":{"finalizers":null}}"#.to_vec(),
    );
    let (s, gone) = c.json("GET", "/api/v1/namespaces/default/configmaps/held", None);
    assert_eq!((s, gone["reason"].as_str()), (404, Some("NotFound")));
    // deletecollection with a selector removes only what matches
    c.json(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        Some(cm("x1")),
    );
    let mut other = cm("x2");
    other["metadata"]["labels"]["set"] = json!("b");
    c.json("POST", "/api/v1/namespaces/default/configmaps", Some(other));
    let (s, _) = c.json(
        "DELETE",
        "/api/v1/namespaces/default/configmaps?labelSelector=set%3Da",
        None,
    );
    assert_eq!(s, 200);
    let (_, left) = c.json("GET", "/api/v1/namespaces/default/configmaps", None);
    let names: Vec<&str> = left["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["x2"]);
}

#[test]
fn the_status_subresource_changes_only_status() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    let dep = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
    assert_eq!(
        c.json(
            "POST",
            "/apis/apps/v1/namespaces/default/deployments",
            Some(dep)
        )
        .0,
        201
    );
    let (_, mut cur) = c.json(
        "GET",
        "/apis/apps/v1/namespaces/default/deployments/d",
        None,
    );
    cur["status"] = json!({"replicas": 1, "readyReplicas": 1});
    cur["spec"]["replicas"] = json!(9);
    let (s, after) = c.json(
        "PUT",
        "/apis/apps/v1/namespaces/default/deployments/d/status",
        Some(cur.clone()),
    );
    assert_eq!(s, 200, "{after}");
    assert_eq!(
        (
            after["status"]["readyReplicas"].as_i64(),
            after["spec"]["replicas"].as_i64()
        ),
        (Some(1), Some(1))
    );
    // and a main-resource update keeps status as it is
    let mut main = after.clone();
    main["status"] = json!({});
    main["spec"]["replicas"] = json!(3);
    let (s, after) = c.json(
        "PUT",
        "/apis/apps/v1/namespaces/default/deployments/d",
        Some(main),
    );
    assert_eq!(s, 200);
    assert_eq!(
        (
            after["status"]["readyReplicas"].as_i64(),
            after["spec"]["replicas"].as_i64(),
            after["metadata"]["generation"].as_i64()
        ),
        (Some(1), Some(3), Some(2))
    );
}

#[test]
fn watches_resume_from_a_revision_even_across_a_restart() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    let (_, first) = c.json(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        Some(cm("w1")),
    );
    let rv = first["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    c.json(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        Some(cm("w2")),
    );
    c.json("DELETE", "/api/v1/namespaces/default/configmaps/w1", None);
    let resp = c
        .http
        .get(format!(
            "{}/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=2",
            c.base
        ))
        .send()
        .unwrap();
    let mut text = String::new();
    resp.take(1 << 20).read_to_string(&mut text).unwrap();
    let events: Vec<(String, String)> = text
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["type"].as_str().unwrap().to_string(),
                v["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            ("ADDED".to_string(), "w2".to_string()),
            ("DELETED".to_string(), "w1".to_string())
        ]
    );
    // A plain watch with bookmarks starts with the current state and the initial-events-end bookmark.
    let resp = c
        .http
        .get(format!("{}/api/v1/namespaces/default/configmaps?watch=1&allowWatchBookmarks=true&timeoutSeconds=1", c.base))
        .send()
        .unwrap();
    let mut text = String::new();
    resp.take(1 << 20).read_to_string(&mut text).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["type"], "ADDED");
    let bookmark = lines
        .iter()
        .find(|l| l["type"] == "BOOKMARK")
        .expect("a bookmark");
    assert_eq!(
        bookmark["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    // After a restart the cache's history is preloaded from the store: a client resumes from
    // its last resourceVersion and sees exactly what happened after it.
    let mut k = k;
    k.kill_and_restart();
    let c = Client::new(&k);
    let resp = c
        .http
        .get(format!(
            "{}/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=2",
            c.base
        ))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let types: Vec<(String, String)> = resp
        .text()
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["type"].as_str().unwrap_or("").to_string(),
                v["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        types,
        [
            ("ADDED".to_string(), "w2".to_string()),
            ("DELETED".to_string(), "w1".to_string())
        ]
    );
    // The watch cache's gauges.
    let (status, _, body) = c.send("GET", "/metrics", "text/plain", "", Vec::new());
    let text = String::from_utf8(body).unwrap();
    assert_eq!(status, 200, "{text}");
    assert!(
        // w2, and kube-system's two start-up ConfigMaps.
        text.contains("kapi_watch_cache_objects{resource=\"configmaps\"} 3\n"),
        "{text}"
    );
}

#[test]
fn resources_stored_in_another_version_convert_both_ways() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "ev1"},
        "eventTime": "2026-11-22T20:00:00.000000Z", "reportingController": "test/ctl", "reportingInstance": "i1",
        "action": "Started", "reason": "Started", "regarding": {"kind": "Pod", "name": "nginx", "namespace": "default"},
        "note": "hello there", "type": "Normal"});
    let (s, created) = c.json(
        "POST",
        "/apis/events.k8s.io/v1/namespaces/default/events",
        Some(ev),
    );
    assert_eq!(s, 201, "{created}");
    assert_eq!(created["note"], "hello there");
    // Stored as a core v1 Event, as upstream stores it: readable through the core API.
    let (s, core) = c.json("GET", "/api/v1/namespaces/default/events/ev1", None);
    assert_eq!(s, 200, "{core}");
    assert_eq!(
        (
            core["message"].as_str(),
            core["involvedObject"]["name"].as_str()
        ),
        (Some("hello there"), Some("nginx"))
    );
    let (_, list) = c.json(
        "GET",
        "/apis/events.k8s.io/v1/namespaces/default/events",
        None,
    );
    assert_eq!(list["items"][0]["regarding"]["name"], "nginx");

    let hpa = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h1"},
        "spec": {"maxReplicas": 4, "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "targetCPUUtilizationPercentage": 60}});
    assert_eq!(
        c.json(
            "POST",
            "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers",
            Some(hpa)
        )
        .0,
        201
    );
    let (_, v2) = c.json(
        "GET",
        "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/h1",
        None,
    );
    assert_eq!(
        v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        60
    );
    let (_, v1) = c.json(
        "GET",
        "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers/h1",
        None,
    );
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 60);
}

#[test]
fn list_options_are_validated_as_upstream() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    let (status, v) = c.json("GET", "/api/v1/configmaps?resourceVersionMatch=Exact", None);
    assert_eq!(status, 422, "{v}");
    assert_eq!(
        v["message"],
        "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"
    );
    assert_eq!(
        (
            &v["details"]["group"],
            &v["details"]["kind"],
            &v["details"]["causes"][0]["reason"]
        ),
        (
            &json!("meta.k8s.io"),
            &json!("ListOptions"),
            &json!("FieldValueForbidden")
        )
    );
    for bad in [
        "/api/v1/configmaps?resourceVersion=0&resourceVersionMatch=Exact",
        "/api/v1/configmaps?resourceVersion=1&resourceVersionMatch=Newest",
        "/api/v1/configmaps?sendInitialEvents=true",
        "/api/v1/configmaps?watch=1&resourceVersion=0&resourceVersionMatch=NotOlderThan",
        "/api/v1/configmaps?watch=1&sendInitialEvents=true",
    ] {
        let (status, v) = c.json("GET", bad, None);
        assert_eq!(
            (status, v["reason"].as_str()),
            (422, Some("Invalid")),
            "{bad}: {v}"
        );
    }
    // What client-go's watch-list sends is valid.
    let (status, _, _) = c.send(
        "GET",
        "/api/v1/configmaps?watch=1&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=1",
        "application/json",
        "",
        Vec::new(),
    );
    assert_eq!(status, 200);
}

#[test]
fn large_lists_stream_the_same_list_in_json_and_protobuf() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    // More items than the streaming threshold, over both HTTP versions' body paths.
    let n = 300;
    for i in 0..n {
        let (s, v) = c.json(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            Some(cm(&format!("big-{i:03}"))),
        );
        assert_eq!(s, 201, "{v}");
    }
    let (s, _, json) = c.send(
        "GET",
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        "",
        vec![],
    );
    assert_eq!(s, 200);
    let list: Value = serde_json::from_slice(&json).expect("a whole JSON list");
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (0..n).map(|i| format!("big-{i:03}")).collect();
    assert_eq!(names, expected);
    assert_eq!(list["kind"], "ConfigMapList");
    let (s, ct, pb) = c.send(
        "GET",
        "/api/v1/namespaces/default/configmaps",
        "application/vnd.kubernetes.protobuf",
        "",
        vec![],
    );
    assert_eq!(
        (s, ct.as_str()),
        (200, "application/vnd.kubernetes.protobuf")
    );
    let mut from_pb = Vec::new();
    kapi_codec::to_json::envelope_to_json(&pb, &mut from_pb).expect("a whole protobuf list");
    assert_eq!(serde_json::from_slice::<Value>(&from_pb).unwrap(), list);
}

#[test]
fn label_selectors_select_objects_stored_as_json() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    for (name, team) in [("v1.alpha.example.com", "a"), ("v1.beta.example.com", "b")] {
        let (group, version) = (name.split_once('.').unwrap().1, "v1");
        let svc = json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": {"name": name, "labels": {"team": team}},
            "spec": {"group": group, "version": version, "groupPriorityMinimum": 100, "versionPriority": 10}});
        let (code, body) = c.json(
            "POST",
            "/apis/apiregistration.k8s.io/v1/apiservices",
            Some(svc),
        );
        assert_eq!(code, 201, "{body}");
    }
    for path in [
        "/apis/apiregistration.k8s.io/v1/apiservices?labelSelector=team%3Db",
        "/apis/apiregistration.k8s.io/v1/apiservices?labelSelector=team%3Db&resourceVersion=0",
    ] {
        let (code, list) = c.json("GET", path, None);
        assert_eq!(code, 200, "{list}");
        let names: Vec<&str> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["v1.beta.example.com"], "{path}");
    }
}
