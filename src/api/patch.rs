//! PATCH bodies applied to the current object as a JSON tree: JSON patch (RFC 6902), JSON
//! merge patch (RFC 7386) and strategic merge patch, whose list merge keys and strategies come
//! from the OpenAPI schema of Kubernetes v1.36 (`data/patch-strategies.tsv`).

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::{Map, Value};

use super::status::Status;

const STRATEGIES: &str = include_str!("data/patch-strategies.tsv");

/// What the schema says of one property, for strategic merge.
#[derive(Debug, Clone)]
struct Prop {
    /// Definition of the value (objects, maps) or of the list items.
    ty: Option<String>,
    is_list: bool,
    is_map: bool,
    merge: bool,
    merge_key: Option<String>,
}

struct Strategies {
    props: HashMap<(String, String), Prop>,
    kinds: HashMap<(String, String), String>,
}

fn strategies() -> &'static Strategies {
    static S: OnceLock<Strategies> = OnceLock::new();
    S.get_or_init(|| {
        let mut props = HashMap::new();
        let mut kinds = HashMap::new();
        for line in STRATEGIES.lines().filter(|l| !l.starts_with('#')) {
            let c: Vec<&str> = line.split('\t').collect();
            if c.first() == Some(&"K") && c.len() == 5 {
                let av = if c[1] == "-" {
                    c[2].to_string()
                } else {
                    format!("{}/{}", c[1], c[2])
                };
                kinds.insert((av, c[3].to_string()), c[4].to_string());
            } else if c.len() == 6 {
                props.insert(
                    (c[0].to_string(), c[1].to_string()),
                    Prop {
                        ty: (c[2] != "-").then(|| c[2].to_string()),
                        is_list: c[3] == "list",
                        is_map: c[3] == "map",
                        merge: c[4].split(',').any(|s| s == "merge"),
                        merge_key: (c[5] != "-").then(|| c[5].to_string()),
                    },
                );
            }
        }
        Strategies { props, kinds }
    })
}

/// RFC 7386: objects merge, `null` deletes, anything else replaces.
pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            let mut out = t.clone();
            for (k, v) in p {
                if v.is_null() {
                    out.remove(k);
                } else {
                    let merged = merge_patch(out.get(k).unwrap_or(&Value::Null), v);
                    out.insert(k.clone(), merged);
                }
            }
            Value::Object(out)
        }
        (_, Value::Object(p)) => merge_patch(&Value::Object(Map::new()), &Value::Object(p.clone())),
        (_, p) => p.clone(),
    }
}

fn patch_error(msg: impl Into<String>) -> Status {
    Status::new(422, "Invalid", msg.into())
}

/// RFC 6901 pointer → path segments.
fn pointer_parts(p: &str) -> Result<Vec<String>, Status> {
    if p.is_empty() {
        return Ok(Vec::new());
    }
    let rest = p
        .strip_prefix('/')
        .ok_or_else(|| patch_error(format!("invalid JSON pointer {p:?}")))?;
    Ok(rest
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn get_mut<'a>(v: &'a mut Value, parts: &[String]) -> Option<&'a mut Value> {
    let mut cur = v;
    for part in parts {
        cur = match cur {
            Value::Object(m) => m.get_mut(part)?,
            Value::Array(a) => a.get_mut(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn add(doc: &mut Value, path: &str, value: Value, replace: bool) -> Result<(), Status> {
    let parts = pointer_parts(path)?;
    let Some((last, parent)) = parts.split_last() else {
        *doc = value;
        return Ok(());
    };
    let missing = || patch_error(format!("doc is missing path: \"{path}\": missing value"));
    match get_mut(doc, parent).ok_or_else(missing)? {
        Value::Object(m) => {
            if replace && !m.contains_key(last) {
                return Err(missing());
            }
            m.insert(last.clone(), value);
        }
        Value::Array(a) => {
            if last == "-" && !replace {
                a.push(value);
            } else {
                let i: usize = last.parse().map_err(|_| missing())?;
                if replace {
                    *a.get_mut(i).ok_or_else(missing)? = value;
                } else if i <= a.len() {
                    a.insert(i, value);
                } else {
                    return Err(missing());
                }
            }
        }
        _ => return Err(missing()),
    }
    Ok(())
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, Status> {
    let parts = pointer_parts(path)?;
    let missing = || patch_error(format!("doc is missing path: \"{path}\": missing value"));
    let (last, parent) = parts.split_last().ok_or_else(missing)?;
    match get_mut(doc, parent).ok_or_else(missing)? {
        Value::Object(m) => m.remove(last).ok_or_else(missing),
        Value::Array(a) => {
            let i: usize = last.parse().map_err(|_| missing())?;
            if i < a.len() {
                Ok(a.remove(i))
            } else {
                Err(missing())
            }
        }
        _ => Err(missing()),
    }
}

/// RFC 6902 operations applied in order; any failure fails the whole patch.
pub fn json_patch(target: &Value, ops: &Value) -> Result<Value, Status> {
    let ops = ops
        .as_array()
        .ok_or_else(|| Status::bad_request("json patch must be an array of operations"))?;
    let mut doc = target.clone();
    for op in ops {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or("");
        let path = op.get("path").and_then(Value::as_str).unwrap_or("");
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| patch_error(format!("missing value for {kind} operation")))
        };
        match kind {
            "add" => add(&mut doc, path, value()?, false)?,
            "replace" => add(&mut doc, path, value()?, true)?,
            "remove" => {
                remove(&mut doc, path)?;
            }
            "move" | "copy" => {
                let from = op.get("from").and_then(Value::as_str).unwrap_or("");
                let v = if kind == "move" {
                    remove(&mut doc, from)?
                } else {
                    let parts = pointer_parts(from)?;
                    get_mut(&mut doc, &parts).cloned().ok_or_else(|| {
                        patch_error(format!("doc is missing from path: \"{from}\""))
                    })?
                };
                add(&mut doc, path, v, false)?;
            }
            "test" => {
                let parts = pointer_parts(path)?;
                let actual = get_mut(&mut doc, &parts).cloned();
                if actual.as_ref() != op.get("value") {
                    return Err(patch_error(format!(
                        "testing value {path} failed: test failed"
                    )));
                }
            }
            other => return Err(Status::bad_request(format!("Unexpected kind: {other}"))),
        }
    }
    Ok(doc)
}

/// Strategic merge patch of `target` (an object of the kind named by its apiVersion/kind).
pub fn strategic_merge_patch(target: &Value, patch: &Value) -> Result<Value, Status> {
    let av = target
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = target.get("kind").and_then(Value::as_str).unwrap_or("");
    let def = strategies()
        .kinds
        .get(&(av.to_string(), kind.to_string()))
        .cloned();
    smp_object(target, patch, def.as_deref())
}

fn smp_object(target: &Value, patch: &Value, def: Option<&str>) -> Result<Value, Status> {
    let Value::Object(p) = patch else {
        return Ok(patch.clone());
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut out = p.clone();
        out.remove("$patch");
        return Ok(Value::Object(out));
    }
    let mut out = match target {
        Value::Object(t) => t.clone(),
        _ => Map::new(),
    };
    if let Some(keep) = p.get("$retainKeys").and_then(Value::as_array) {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        out.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (k, v) in p {
        if k.starts_with('$') {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Some(del)) = (out.get_mut(field), v.as_array()) {
                list.retain(|x| !del.contains(x));
            }
            continue;
        }
        if k.starts_with("$setElementOrder/") {
            continue;
        }
        if v.is_null() {
            out.remove(k);
            continue;
        }
        let prop = def.and_then(|d| strategies().props.get(&(d.to_string(), k.clone())));
        let current = out.get(k).cloned().unwrap_or(Value::Null);
        let merged = match (prop, v) {
            (Some(pr), Value::Array(items)) if pr.is_list && pr.merge => {
                merge_list(&current, items, pr)?
            }
            (Some(pr), Value::Object(_)) if pr.is_map => {
                // Map values are merged key by key; their own type is the item type.
                let mut m = match current {
                    Value::Object(m) => m,
                    _ => Map::new(),
                };
                if let Value::Object(pm) = v {
                    for (mk, mv) in pm {
                        if mv.is_null() {
                            m.remove(mk);
                        } else {
                            let cur = m.get(mk).cloned().unwrap_or(Value::Null);
                            m.insert(mk.clone(), smp_object(&cur, mv, pr.ty.as_deref())?);
                        }
                    }
                }
                Value::Object(m)
            }
            (Some(pr), Value::Object(_)) => smp_object(&current, v, pr.ty.as_deref())?,
            (None, Value::Object(_)) if current.is_object() => smp_object(&current, v, None)?,
            _ => v.clone(),
        };
        out.insert(k.clone(), merged);
    }
    Ok(Value::Object(out))
}

/// Merges a patch list into the current list by the schema's merge key.
fn merge_list(current: &Value, items: &[Value], prop: &Prop) -> Result<Value, Status> {
    let mut list = current.as_array().cloned().unwrap_or_default();
    if items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        return Ok(Value::Array(
            items
                .iter()
                .filter(|i| i.get("$patch").and_then(Value::as_str) != Some("replace"))
                .cloned()
                .collect(),
        ));
    }
    let Some(key) = &prop.merge_key else {
        // Primitive lists with the merge strategy: union, in order.
        for i in items {
            if !list.contains(i) {
                list.push(i.clone());
            }
        }
        return Ok(Value::Array(list));
    };
    for item in items {
        let Some(id) = item.get(key) else {
            return Err(patch_error(format!(
                "map: {item} does not contain declared merge key: {key}"
            )));
        };
        let pos = list.iter().position(|e| e.get(key) == Some(id));
        if item.get("$patch").and_then(Value::as_str) == Some("delete") {
            if let Some(p) = pos {
                list.remove(p);
            }
            continue;
        }
        match pos {
            Some(p) => list[p] = smp_object(&list[p], item, prop.ty.as_deref())?,
            None => list.push(smp_object(&Value::Null, item, prop.ty.as_deref())?),
        }
    }
    Ok(Value::Array(list))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_merges_containers_by_name() {
        let target = json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "nginx:1"}, {"name": "side", "image": "busybox"}
        ]}}}});
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}}}});
        let out = strategic_merge_patch(&target, &patch).unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "web", "image": "nginx:2"}, {"name": "side", "image": "busybox"}])
        );
        let del = json!({"spec": {"template": {"spec": {"containers": [{"name": "side", "$patch": "delete"}]}}}});
        let out = strategic_merge_patch(&out, &del).unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn merge_patch_and_json_patch_follow_their_rfcs() {
        let t = json!({"a": 1, "b": {"c": 2, "d": 3}});
        assert_eq!(
            merge_patch(&t, &json!({"b": {"c": null, "e": 4}})),
            json!({"a": 1, "b": {"d": 3, "e": 4}})
        );
        let ops = json!([
            {"op": "add", "path": "/b/f", "value": [1]},
            {"op": "add", "path": "/b/f/-", "value": 2},
            {"op": "replace", "path": "/a", "value": 9},
            {"op": "remove", "path": "/b/d"},
            {"op": "test", "path": "/a", "value": 9}
        ]);
        assert_eq!(
            json_patch(&t, &ops).unwrap(),
            json!({"a": 9, "b": {"c": 2, "f": [1, 2]}})
        );
        assert!(json_patch(&t, &json!([{"op": "remove", "path": "/nope"}])).is_err());
        assert!(json_patch(&t, &json!([{"op": "test", "path": "/a", "value": 2}])).is_err());
    }
}
