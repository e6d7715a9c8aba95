//! OpenAPI of custom resources: one v3 document per custom group-version (`/openapi/v3/apis/
//! <group>/<version>`), and the v2 document with their definitions added, as upstream's CRD
//! OpenAPI controllers publish them (kubectl explain, apply and validation read them). Made on
//! the CRD controller's thread when CRDs change, never on a request.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value, json};

use crate::api::openapi::Doc;
use crate::api::registry::Resource;

const API_VERSION_DESCRIPTION: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DESCRIPTION: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const METADATA_DESCRIPTION: &str = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const LIST_METADATA_DESCRIPTION: &str = "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

/// `com.example.stable.v1.Widget`: upstream's definition name of a custom kind.
pub fn definition_name(group: &str, version: &str, kind: &str) -> String {
    let reversed: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{version}.{kind}", reversed.join("."))
}

/// The kind's schema as a definition (`refs` is `#/components/schemas/` or `#/definitions/`):
/// the CRD's schema with apiVersion, kind and metadata filled in, and its GVK.
fn kind_schema(r: &Resource, refs: &str, v2: bool) -> Value {
    let c = r.custom.as_ref();
    let mut schema = c
        .and_then(|c| c.schema.clone())
        .unwrap_or_else(|| json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
    if v2 {
        strip_for_v2(&mut schema);
    }
    if let Some(o) = schema.as_object_mut() {
        o.insert("type".into(), json!("object"));
        let props = o
            .entry("properties")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        let mut new_props = Map::new();
        new_props.insert(
            "apiVersion".into(),
            json!({"description": API_VERSION_DESCRIPTION, "type": "string"}),
        );
        new_props.insert(
            "kind".into(),
            json!({"description": KIND_DESCRIPTION, "type": "string"}),
        );
        let meta_ref = format!("{refs}io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta");
        new_props.insert(
            "metadata".into(),
            if v2 {
                json!({"$ref": meta_ref, "description": METADATA_DESCRIPTION})
            } else {
                json!({"allOf": [{"$ref": meta_ref}], "description": METADATA_DESCRIPTION})
            },
        );
        for (k, v) in props {
            if !matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                new_props.insert(k, v);
            }
        }
        o.insert("properties".into(), Value::Object(new_props));
        o.insert(
            "x-kubernetes-group-version-kind".into(),
            json!([{"group": r.group, "kind": r.kind, "version": r.version}]),
        );
    }
    schema
}

fn list_schema(r: &Resource, refs: &str, v2: bool) -> Value {
    let item = format!("{refs}{}", definition_name(&r.group, &r.version, &r.kind));
    let list_meta = format!("{refs}io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta");
    let list_kind = r
        .custom
        .as_ref()
        .map(|c| c.list_kind.clone())
        .unwrap_or_else(|| r.list_kind());
    json!({
        "description": format!("{list_kind} is a list of {}", r.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"description": API_VERSION_DESCRIPTION, "type": "string"},
            "items": {
                "description": format!("List of {}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md", r.resource),
                "type": "array",
                "items": {"$ref": item},
            },
            "kind": {"description": KIND_DESCRIPTION, "type": "string"},
            "metadata": if v2 {
                json!({"$ref": list_meta, "description": LIST_METADATA_DESCRIPTION})
            } else {
                json!({"allOf": [{"$ref": list_meta}], "description": LIST_METADATA_DESCRIPTION})
            },
        },
        "x-kubernetes-group-version-kind": [{"group": r.group, "kind": list_kind, "version": r.version}],
    })
}

/// OpenAPI v2 has no `nullable`, `anyOf`, `oneOf`, `not`: upstream drops them from the v2
/// form of a CRD schema.
fn strip_for_v2(schema: &mut Value) {
    match schema {
        Value::Object(o) => {
            for k in [
                "nullable",
                "anyOf",
                "oneOf",
                "not",
                "x-kubernetes-validations",
            ] {
                o.remove(k);
            }
            for (_, v) in o.iter_mut() {
                strip_for_v2(v);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(strip_for_v2),
        _ => {}
    }
}

/// The v3 paths of a custom resource: its collection and its objects (and status), with
/// the operations whose response schemas `kubectl explain` finds the kind by.
fn resource_paths(r: &Resource, write_params: &Value) -> Map<String, Value> {
    let refs = |kind: &str| {
        let schema = json!({"$ref": format!("#/components/schemas/{}", definition_name(&r.group, &r.version, kind))});
        json!({"application/json": {"schema": schema}, "application/yaml": {"schema": schema}})
    };
    let gvk = json!({"group": r.group, "kind": r.kind, "version": r.version});
    let list_kind = r
        .custom
        .as_ref()
        .map(|c| c.list_kind.clone())
        .unwrap_or_else(|| r.list_kind());
    let op = |action: &str, description: String, content: Value| {
        let params = match action {
            "post" | "put" | "patch" => write_params.clone(),
            _ => json!([]),
        };
        json!({
            "description": description,
            "parameters": params,
            "responses": {"200": {"description": "OK", "content": content}, "401": {"description": "Unauthorized"}},
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk,
        })
    };
    let base = if r.namespaced {
        format!(
            "/apis/{}/{}/namespaces/{{namespace}}/{}",
            r.group, r.version, r.resource
        )
    } else {
        format!("/apis/{}/{}/{}", r.group, r.version, r.resource)
    };
    let mut out = Map::new();
    out.insert(
        base.clone(),
        json!({
            "get": op("list", format!("list objects of kind {}", r.kind), refs(&list_kind)),
            "post": op("post", format!("create a {}", r.kind), refs(&r.kind)),
        }),
    );
    let item = json!({
        "get": op("get", format!("read the specified {}", r.kind), refs(&r.kind)),
        "put": op("put", format!("replace the specified {}", r.kind), refs(&r.kind)),
        "patch": op("patch", format!("partially update the specified {}", r.kind), refs(&r.kind)),
    });
    out.insert(format!("{base}/{{name}}"), item.clone());
    if r.subresources.iter().any(|s| s == "status") {
        out.insert(format!("{base}/{{name}}/status"), item);
    }
    out
}

static APPS_V3: OnceLock<Value> = OnceLock::new();
static V2: OnceLock<Value> = OnceLock::new();

/// A built-in document, parsed once (the v2 one is megabytes; CRD changes reuse it).
fn parsed(
    cell: &'static OnceLock<Value>,
    doc: impl FnOnce() -> Option<&'static Doc>,
) -> &'static Value {
    cell.get_or_init(|| {
        doc()
            .and_then(|d| serde_json::from_slice(&d.body).ok())
            .unwrap_or_default()
    })
}

fn json_doc(v: &Value) -> Arc<Doc> {
    let body = serde_json::to_vec(v).unwrap_or_default();
    Arc::new(Doc::new(body))
}

/// The documents that change with the custom resources: `swagger` (v2) and
/// `apis/<group>/<version>` (v3).
pub fn documents(rows: &[Arc<Resource>]) -> HashMap<String, Arc<Doc>> {
    let mut out = HashMap::new();
    if rows.is_empty() {
        return out;
    }
    // The meta definitions every custom kind refers to, from a built-in document.
    let apps = parsed(&APPS_V3, || crate::api::openapi::v3("apis/apps/v1"));
    // The query parameters of writes (dryRun, fieldManager, fieldValidation): kubectl checks
    // for fieldValidation before it leaves validation to the server.
    let write_params = apps
        .pointer("/paths/~1apis~1apps~1v1~1namespaces~1{namespace}~1deployments/post/parameters")
        .cloned()
        .unwrap_or(json!([]));
    let meta_v3: Map<String, Value> = apps["components"]["schemas"]
        .as_object()
        .cloned()
        .map(|s| {
            s.into_iter()
                .filter(|(k, _)| k.starts_with("io.k8s.apimachinery.pkg.apis.meta.v1."))
                .collect()
        })
        .unwrap_or_default();
    let mut by_gv: BTreeMap<(String, String), Vec<&Resource>> = BTreeMap::new();
    for r in rows {
        by_gv
            .entry((r.group.clone(), r.version.clone()))
            .or_default()
            .push(r);
    }
    for ((group, version), rs) in &by_gv {
        let mut schemas = meta_v3.clone();
        let mut paths = Map::new();
        for r in rs {
            paths.extend(resource_paths(r, &write_params));
            let refs = "#/components/schemas/";
            schemas.insert(
                definition_name(&r.group, &r.version, &r.kind),
                kind_schema(r, refs, false),
            );
            let list_kind = r
                .custom
                .as_ref()
                .map(|c| c.list_kind.clone())
                .unwrap_or_default();
            schemas.insert(
                definition_name(&r.group, &r.version, &list_kind),
                list_schema(r, refs, false),
            );
        }
        let doc = json!({
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"},
            "paths": paths,
            "components": {"schemas": schemas},
        });
        out.insert(format!("apis/{group}/{version}"), json_doc(&doc));
    }
    let builtin_v2 = parsed(&V2, crate::api::openapi::v2);
    if builtin_v2.is_object() {
        let mut v2 = builtin_v2.clone();
        if let Some(defs) = v2["definitions"].as_object_mut() {
            for r in rows {
                let refs = "#/definitions/";
                defs.insert(
                    definition_name(&r.group, &r.version, &r.kind),
                    kind_schema(r, refs, true),
                );
                let list_kind = r
                    .custom
                    .as_ref()
                    .map(|c| c.list_kind.clone())
                    .unwrap_or_default();
                defs.insert(
                    definition_name(&r.group, &r.version, &list_kind),
                    list_schema(r, refs, true),
                );
            }
        }
        out.insert("swagger".into(), json_doc(&v2));
    }
    out
}
