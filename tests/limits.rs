//! Bounded work per request, against the real kapi binary over HTTPS (reqwest): the issue's
//! reproductions — a JSON patch of 10,001 operations, a patch whose copies double the
//! object, a 2 MB ConfigMap, a merge patch that would make an object larger than the request
//! body limit — each answered as upstream answers it.

mod support;

use serde_json::{Value, json};
use support::client::Client;
use support::kapi::Kapi;

const CMS: &str = "/api/v1/namespaces/default/configmaps";

fn cm(name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})
}

#[test]
fn json_patches_are_bounded_as_upstream_bounds_them() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    let (s, _) = c.json("POST", CMS, "application/json", &cm("p", json!({"k": "v"})));
    assert_eq!(s, 201);
    let path = format!("{CMS}/p");
    let jp = "application/json-patch+json";

    // More than 10,000 operations: 413 before any is applied.
    let ops = vec![json!({"op": "test", "path": "/metadata/name", "value": "p"}); 10_001];
    let (s, st) = c.json("PATCH", &path, jp, &Value::Array(ops));
    assert_eq!(s, 413, "{st}");
    assert_eq!(st["reason"], "RequestEntityTooLarge");
    assert_eq!(
        st["message"],
        "Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 10001"
    );
    let ops = vec![json!({"op": "test", "path": "/metadata/name", "value": "p"}); 10_000];
    assert_eq!(c.json("PATCH", &path, jp, &Value::Array(ops)).0, 200);

    // The doubling patch: 19 copies of the whole document (json-patch cannot copy
    // the root: upstream's generic 422 at the first operation).
    let ops: Vec<Value> = (0..19)
        .map(|i| json!({"op": "copy", "from": "", "path": format!("/x{i}")}))
        .collect();
    let (s, st) = c.json("PATCH", &path, jp, &Value::Array(ops));
    assert_eq!(s, 422, "{st}");
    assert_eq!(st["reason"], "Invalid");
    assert_eq!(
        st["message"],
        "the server rejected our request due to an error in our request"
    );
    assert_eq!(st["details"], json!({}));

    // Copies that do double a subtree stop once they would add more than the body limit.
    let (s, _) = c.json(
        "POST",
        CMS,
        "application/json",
        &cm("d", json!({"k": "x".repeat(256 * 1024)})),
    );
    assert_eq!(s, 201);
    let ops: Vec<Value> = (0..19)
        .map(|i| json!({"op": "copy", "from": "/data", "path": format!("/metadata/annotations~1x{i}")}))
        .chain((0..19).map(|i| json!({"op": "copy", "from": "/data/k", "path": format!("/data/k{i}")})))
        .collect();
    let (s, st) = c.json("PATCH", &format!("{CMS}/d"), jp, &Value::Array(ops));
    assert_eq!(s, 422, "{st}");
    assert_eq!(st["reason"], "Invalid");
    // The object is unchanged and the server still answers.
    let (s, obj) = c.json("GET", &format!("{CMS}/d"), "application/json", &Value::Null);
    assert_eq!(s, 200);
    assert_eq!(obj["data"].as_object().unwrap().len(), 1);
}

#[test]
fn objects_over_their_size_limits_are_refused_as_upstream() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    let too_long = json!([{"reason": "FieldValueTooLong", "message": "Too long: must have at most 1048576 bytes", "field": "[]"}]);

    // A 2 MB ConfigMap: 422 with the cause (not a 500 from the store).
    let (s, st) = c.json(
        "POST",
        CMS,
        "application/json",
        &cm("big", json!({"k": "x".repeat(2_000_000)})),
    );
    assert_eq!(s, 422, "{st}");
    assert_eq!(st["reason"], "Invalid");
    assert_eq!(
        st["message"],
        "ConfigMap \"big\" is invalid: []: Too long: must have at most 1048576 bytes"
    );
    assert_eq!(st["details"]["causes"], too_long);

    // The same limit on update and on patch.
    let (s, _) = c.json(
        "POST",
        CMS,
        "application/json",
        &cm("big", json!({"k": "x".repeat(1_000_000)})),
    );
    assert_eq!(s, 201);
    let path = format!("{CMS}/big");
    let (s, st) = c.json(
        "PUT",
        &path,
        "application/json",
        &cm("big", json!({"k": "x".repeat(2_000_000)})),
    );
    assert_eq!((s, &st["details"]["causes"]), (422, &too_long), "{st}");
    let patch = json!({"data": {"more": "y".repeat(100_000)}});
    let (s, st) = c.json("PATCH", &path, "application/merge-patch+json", &patch);
    assert_eq!((s, &st["details"]["causes"]), (422, &too_long), "{st}");

    // A merge patch whose result would be larger than the request body limit (3 MiB): 413.
    let patch = json!({"data": {"more": "y".repeat(2_200_000)}});
    let (s, st) = c.json("PATCH", &path, "application/merge-patch+json", &patch);
    assert_eq!(s, 413, "{st}");
    assert_eq!(st["reason"], "RequestEntityTooLarge");
    assert_eq!(st["message"], "Request entity too large: limit is 3145728");

    // A Secret's limit is reported on `data`.
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "x".repeat(1_100_000)}});
    let (s, st) = c.json(
        "POST",
        "/api/v1/namespaces/default/secrets",
        "application/json",
        &secret,
    );
    assert_eq!(s, 422, "{st}");
    assert_eq!(
        st["message"],
        "Secret \"s\" is invalid: data: Too long: must have at most 1048576 bytes"
    );
}

#[test]
fn concurrent_patches_of_one_object_all_apply() {
    // A patch without a resourceVersion is applied again when another write got there first
    // (upstream retries it): none of these answers 409, and every annotation lands.
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    let (s, _) = c.json(
        "POST",
        CMS,
        "application/json",
        &cm("hot", json!({"k": "v"})),
    );
    assert_eq!(s, 201);
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let k = &k;
                scope.spawn(move || {
                    let c = Client::new(k);
                    (0..10)
                        .map(|i| {
                            let p =
                                json!({"metadata": {"annotations": {format!("a{t}-{i}"): "x"}}});
                            c.json(
                                "PATCH",
                                &format!("{CMS}/hot"),
                                "application/merge-patch+json",
                                &p,
                            )
                            .0
                        })
                        .collect::<Vec<u16>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    let (_, obj) = c.json(
        "GET",
        &format!("{CMS}/hot"),
        "application/json",
        &Value::Null,
    );
    assert_eq!(
        obj["metadata"]["annotations"].as_object().unwrap().len(),
        80
    );
}
