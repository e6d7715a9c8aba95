//! Apply and update on the built-in model, against upstream's captured answers
//! (`shared/upstream/responses/15*`, v1.36.2).

use serde_json::{Value, json};

use super::*;

const NOW: &str = "2026-11-22T18:11:34Z";

fn ownership<'a>(model: &'a Model, manager: &'a str, av: &'a str, kind: &'a str) -> Ownership<'a> {
    Ownership {
        model,
        manager,
        api_version: av,
        kind,
        subresource: "",
        ignored: reset_fields(false, ""),
        now: NOW.into(),
    }
}

fn cm(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa-demo", "namespace": "default"}, "data": data})
}

/// What the store keeps between writes: the server-owned metadata of a created object.
fn stored(mut v: Value) -> Value {
    v["metadata"]["uid"] = json!("u");
    v["metadata"]["resourceVersion"] = json!("308");
    v
}

#[test]
fn apply_create_conflict_and_force_answer_as_upstream() {
    let m = Model::builtin();
    // 15a: the create.
    let mut first = cm(json!({"a": "1", "b": "2"}));
    first["metadata"]["labels"] = json!({"owner": "refpack"});
    let created = ownership(&m, "refpack-ssa", "v1", "ConfigMap")
        .apply(None, &first, false)
        .unwrap();
    assert_eq!(
        created["metadata"]["managedFields"],
        json!([{"manager": "refpack-ssa", "operation": "Apply", "apiVersion": "v1", "time": NOW,
            "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}, "f:b": {}}, "f:metadata": {"f:labels": {"f:owner": {}}}}}])
    );
    let live = stored(created);
    // 15b: another manager changes data.a.
    let other = ownership(&m, "other-manager", "v1", "ConfigMap");
    let s = other
        .apply(Some(&live), &cm(json!({"a": "changed"})), false)
        .unwrap_err();
    assert_eq!(
        s.to_json_value().to_string(),
        r#"{"apiVersion":"v1","code":409,"details":{"causes":[{"field":".data.a","message":"conflict with \"refpack-ssa\"","reason":"FieldManagerConflict"}]},"kind":"Status","message":"Apply failed with 1 conflict: conflict with \"refpack-ssa\": .data.a","metadata":{},"reason":"Conflict","status":"Failure"}"#
    );
    // 15c: the same with force takes data.a over.
    let forced = other
        .apply(Some(&live), &cm(json!({"a": "changed", "c": "3"})), true)
        .unwrap();
    assert_eq!(forced["data"], json!({"a": "changed", "b": "2", "c": "3"}));
    assert_eq!(
        forced["metadata"]["managedFields"],
        json!([
            {"manager": "other-manager", "operation": "Apply", "apiVersion": "v1", "time": NOW,
             "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}, "f:c": {}}}},
            {"manager": "refpack-ssa", "operation": "Apply", "apiVersion": "v1", "time": NOW,
             "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:b": {}}, "f:metadata": {"f:labels": {"f:owner": {}}}}}
        ])
    );
    // The same value applied by a second manager is shared, not a conflict.
    let shared = other
        .apply(Some(&live), &cm(json!({"b": "2"})), false)
        .unwrap();
    assert_eq!(
        shared["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn apply_removes_fields_the_manager_no_longer_applies() {
    let m = Model::builtin();
    let me = ownership(&m, "kubectl", "v1", "ConfigMap");
    let live = stored(
        me.apply(None, &cm(json!({"a": "1", "b": "2"})), false)
            .unwrap(),
    );
    let next = me
        .apply(Some(&live), &cm(json!({"a": "1"})), false)
        .unwrap();
    assert_eq!(next["data"], json!({"a": "1"}));
    // A field another manager also owns stays.
    let other = ownership(&m, "other", "v1", "ConfigMap");
    let live2 = stored(
        other
            .apply(Some(&live), &cm(json!({"b": "2"})), false)
            .unwrap(),
    );
    let next = me
        .apply(Some(&live2), &cm(json!({"a": "1"})), false)
        .unwrap();
    assert_eq!(next["data"], json!({"a": "1", "b": "2"}));
    // Nothing applied under data any more: the field goes.
    let mut bare = cm(json!({}));
    bare.as_object_mut().unwrap().remove("data");
    let next = me.apply(Some(&live), &bare, false).unwrap();
    assert!(next.get("data").is_none(), "{next}");
}

fn deployment(containers: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": containers}}}})
}

#[test]
fn apply_merges_containers_by_name_and_reports_keyed_conflicts() {
    let m = Model::builtin();
    let a = ownership(&m, "team-a", "apps/v1", "Deployment");
    let b = ownership(&m, "team-b", "apps/v1", "Deployment");
    let live = stored(
        a.apply(
            None,
            &deployment(
                json!([{"name": "web", "image": "nginx:1", "ports": [{"containerPort": 80}]}]),
            ),
            false,
        )
        .unwrap(),
    );
    let fields = &live["metadata"]["managedFields"][0]["fieldsV1"];
    let web = &fields["f:spec"]["f:template"]["f:spec"]["f:containers"][r#"k:{"name":"web"}"#];
    assert_eq!(web["."], json!({}));
    // The port's protocol key comes from the schema's default.
    assert!(
        web["f:ports"][r#"k:{"containerPort":80,"protocol":"TCP"}"#].is_object(),
        "{web}"
    );
    // Team b adds a sidecar: merged by name, no conflict.
    let both = stored(
        b.apply(
            Some(&live),
            &deployment(json!([{"name": "side", "image": "busybox"}])),
            false,
        )
        .unwrap(),
    );
    let names: Vec<&str> = both["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web", "side"]);
    // Team b changing web's image conflicts with team a, on the keyed path.
    let s = b
        .apply(
            Some(&both),
            &deployment(
                json!([{"name": "side", "image": "busybox"}, {"name": "web", "image": "nginx:2"}]),
            ),
            false,
        )
        .unwrap_err();
    assert_eq!(s.code, 409);
    assert_eq!(
        s.message,
        r#"Apply failed with 1 conflict: conflict with "team-a": .spec.template.spec.containers[name="web"].image"#
    );
    // Team a dropping its container removes it; team b's stays.
    let dropped = a.apply(Some(&both), &deployment(json!([])), false).unwrap();
    assert_eq!(
        dropped["spec"]["template"]["spec"]["containers"],
        json!([{"name": "side", "image": "busybox"}])
    );
    // An item that cannot be keyed is refused.
    let s = a
        .apply(Some(&both), &deployment(json!(["x"])), false)
        .unwrap_err();
    assert_eq!(s.code, 400);
}

#[test]
fn updates_record_what_changed_as_upstream_shapes_it() {
    let m = Model::builtin();
    let create = ownership(&m, "kubectl-create", "v1", "ConfigMap");
    let mut obj = cm(json!({"a": "1"}));
    obj["metadata"]["labels"] = json!({"x": "y"});
    create.update(None, &mut obj);
    assert_eq!(
        obj["metadata"]["managedFields"],
        json!([{"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": NOW,
            "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {".": {}, "f:a": {}}, "f:metadata": {"f:labels": {".": {}, "f:x": {}}}}}])
    );
    // Another writer changing data.a takes it; removing the label drops it from its owner.
    let live = stored(obj.clone());
    let mut new = live.clone();
    new["data"]["a"] = json!("2");
    new["metadata"].as_object_mut().unwrap().remove("labels");
    ownership(&m, "kube-controller-manager", "v1", "ConfigMap").update(Some(&live), &mut new);
    let mf = &new["metadata"]["managedFields"];
    assert_eq!(mf[0]["manager"], "kube-controller-manager");
    assert_eq!(mf[0]["fieldsV1"], json!({"f:data": {"f:a": {}}}));
    assert_eq!(mf[1]["fieldsV1"], json!({"f:data": {}}));
    // A write that changes nothing adds no entry; `[{}]` clears them all.
    let live = stored(new.clone());
    let mut same = live.clone();
    ownership(&m, "other", "v1", "ConfigMap").update(Some(&live), &mut same);
    assert_eq!(
        same["metadata"]["managedFields"],
        live["metadata"]["managedFields"]
    );
    same["metadata"]["managedFields"] = json!([{}]);
    ownership(&m, "other", "v1", "ConfigMap").update(Some(&live), &mut same);
    assert!(same["metadata"].get("managedFields").is_none());
}

#[test]
fn kubectl_apply_takes_over_fields_client_side_apply_set() {
    let m = Model::builtin();
    // Created by client-side apply: the annotation and the Update entry.
    let mut obj = cm(json!({"a": "1"}));
    obj["metadata"]["annotations"] = json!({LAST_APPLIED: r#"{"apiVersion":"v1","data":{"a":"1"},"kind":"ConfigMap","metadata":{"annotations":{},"name":"ssa-demo","namespace":"default"}}"#});
    ownership(&m, "kubectl-client-side-apply", "v1", "ConfigMap").update(None, &mut obj);
    let live = stored(obj);
    // kubectl's server-side apply changing data.a is not a conflict; another manager's is.
    let cfg = cm(json!({"a": "2"}));
    let other = ownership(&m, "someone", "v1", "ConfigMap").apply(Some(&live), &cfg, false);
    assert_eq!(other.unwrap_err().code, 409);
    let out = ownership(&m, "kubectl", "v1", "ConfigMap")
        .apply(Some(&live), &cfg, false)
        .unwrap();
    assert_eq!(out["data"]["a"], "2");
    // The annotation follows what kubectl applied.
    let la = out["metadata"]["annotations"][LAST_APPLIED]
        .as_str()
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(la).unwrap()["data"],
        json!({"a": "2"})
    );
}

#[test]
fn managers_from_user_agents_and_their_validation() {
    assert_eq!(
        manager_from_user_agent("kubectl/v1.36.0 (linux/amd64) kubernetes/abc"),
        "kubectl"
    );
    assert_eq!(
        manager_from_user_agent(
            "kube-controller-manager/v1.36.0 (linux/amd64)/system:serviceaccount"
        ),
        "kube-controller-manager"
    );
    assert_eq!(manager_from_user_agent(&"x".repeat(300)).len(), 128);
    assert!(validate_manager("ok").is_empty());
    let c = validate_manager(&"x".repeat(129));
    assert_eq!(c[0].message, "Too long: may not be more than 128 bytes");
    assert_eq!(gvk_text("v1", "ConfigMap"), "/v1, Kind=ConfigMap");
    assert_eq!(
        gvk_text("apps/v1", "Deployment"),
        "apps/v1, Kind=Deployment"
    );
}

#[test]
fn a_create_is_compared_with_the_kinds_zero_object() {
    let m = Model::builtin();
    let mut d = deployment(json!([{"name": "c", "image": "busybox"}]));
    ownership(&m, "corpus", "apps/v1", "Deployment").update(None, &mut d);
    // Upstream's answer to this create (the write corpus, less its defaults).
    assert_eq!(
        d["metadata"]["managedFields"][0]["fieldsV1"],
        json!({"f:spec": {"f:selector": {}, "f:template": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}})
    );
}

#[test]
fn custom_resources_apply_by_their_crd_schema() {
    let schema = json!({"type": "object", "properties": {
        "spec": {"type": "object", "properties": {
            "ports": {"type": "array", "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["port"],
                "items": {"type": "object", "properties": {"port": {"type": "integer"}, "name": {"type": "string"}}}},
            "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "selector": {"type": "object", "x-kubernetes-map-type": "atomic",
                "additionalProperties": {"type": "string"}},
            "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
        }}
    }});
    let m = Model::from_crd_schema(&schema);
    let widget = |spec: Value| json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec});
    let a = ownership(&m, "a", "example.com/v1", "Widget");
    let b = ownership(&m, "b", "example.com/v1", "Widget");
    let live = stored(
        a.apply(
            None,
            &widget(
                json!({"ports": [{"port": 80, "name": "http"}], "tags": ["x"],
            "selector": {"app": "w"}, "extra": {"deep": {"k": 1}}}),
            ),
            false,
        )
        .unwrap(),
    );
    assert_eq!(
        live["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"],
        json!({"f:extra": {"f:deep": {"f:k": {}}}, "f:ports": {"k:{\"port\":80}": {".": {}, "f:name": {}, "f:port": {}}},
            "f:selector": {}, "f:tags": {"v:\"x\"": {}}})
    );
    // b adds a port and a tag: merged by key and by value, no conflict.
    let both = stored(
        b.apply(
            Some(&live),
            &widget(json!({"ports": [{"port": 443}], "tags": ["y"]})),
            false,
        )
        .unwrap(),
    );
    assert_eq!(
        both["spec"]["ports"],
        json!([{"port": 80, "name": "http"}, {"port": 443}])
    );
    assert_eq!(both["spec"]["tags"], json!(["x", "y"]));
    // The atomic selector is one field: b setting it conflicts with a.
    let s = b
        .apply(
            Some(&both),
            &widget(json!({"selector": {"app": "other"}})),
            false,
        )
        .unwrap_err();
    assert_eq!(s.causes[0].field, ".spec.selector");
}

/// The one-walk managedFields of a create equal what `update(None, …)` records, for every
/// object of the write corpus (as sent and as upstream answered it), on a main resource with
/// and without a status subresource, and through `status`.
#[test]
fn created_fields_match_the_set_based_update_for_every_corpus_object() {
    use std::io::BufRead;
    let gz: &[u8] = include_bytes!("../../tests/data/upstream/writes/writes.jsonl.gz");
    let m = Model::builtin();
    let mut checked = 0;
    for line in std::io::BufReader::new(flate2::read::GzDecoder::new(gz)).lines() {
        let row: Value = serde_json::from_str(&line.unwrap()).unwrap();
        for obj in [&row["request"], &row["response"]] {
            let (Some(av), Some(kind)) = (obj["apiVersion"].as_str(), obj["kind"].as_str()) else {
                continue;
            };
            if kind == "Status" {
                continue;
            }
            let mut obj = obj.clone();
            if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("managedFields");
            }
            for (has_status, sub) in [(true, ""), (false, ""), (true, "status")] {
                let o = Ownership {
                    subresource: sub,
                    ignored: reset_fields(has_status, sub),
                    ..ownership(&m, "kubectl-create", av, kind)
                };
                let mut slow = obj.clone();
                o.update(None, &mut slow);
                let expected = slow.pointer("/metadata/managedFields").cloned();
                let created = o.created(&obj);
                // The text is what serde_json prints of the set-based object, byte for byte.
                if let (Some(c), Some(e)) = (&created, &expected) {
                    let text = kapi_codec::to_pb::raw_json_text(&c[0]["fieldsV1"]).unwrap();
                    assert_eq!(text, e[0]["fieldsV1"].to_string(), "{}", row["id"]);
                }
                let mut parsed = json!({"metadata": {"managedFields": created}});
                materialize(&mut parsed);
                assert_eq!(
                    parsed["metadata"]["managedFields"],
                    expected.unwrap_or(Value::Null),
                    "{} {av} {kind} ({has_status}, {sub:?})",
                    row["id"]
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 5000, "{checked}");
}
