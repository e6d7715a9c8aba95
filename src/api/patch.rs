//! PATCH bodies applied to the current object as a JSON tree: JSON patch (RFC 6902), JSON
//! merge patch (RFC 7386) and strategic merge patch, whose list merge keys and strategies come
//! from the OpenAPI schema of Kubernetes v1.36 (`data/patch-strategies.tsv`).
//! Bounded as upstream bounds it: at most 10,000 JSON patch operations, at most the request
//! body limit copied by `copy`, a result no larger than the request body limit. Hot path
//! (linear in the object and the patch, in place, no whole-document clones): `benches/patch.rs`.

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::OnceLock;

use serde_json::{Map, Value};

use super::status::Status;
use crate::transport::MAX_BODY_BYTES;

const STRATEGIES: &str = include_str!("data/patch-strategies.tsv");

/// Operations one JSON patch may hold (upstream's `maxJSONPatchOperations`): more is 413.
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// Bytes a JSON patch's `copy` operations may add in total: upstream arms json-patch's
/// `AccumulatedCopySizeLimit` with `JSONPatchMaxCopyBytes`, the request body limit.
pub const MAX_COPIED_BYTES: usize = MAX_BODY_BYTES;

/// Largest patched object (as compact JSON): a patch may not make an object larger than a
/// client could have sent whole.
pub const MAX_PATCHED_BYTES: usize = MAX_BODY_BYTES;

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
    /// definition → property → strategy; nested so that lookups borrow, not allocate.
    props: HashMap<String, HashMap<String, Prop>>,
    kinds: HashMap<(String, String), String>,
}

impl Strategies {
    fn prop(&self, def: Option<&str>, name: &str) -> Option<&Prop> {
        self.props.get(def?)?.get(name)
    }
}

fn strategies() -> &'static Strategies {
    static S: OnceLock<Strategies> = OnceLock::new();
    S.get_or_init(|| {
        let mut props: HashMap<String, HashMap<String, Prop>> = HashMap::new();
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
                props.entry(c[0].to_string()).or_default().insert(
                    c[1].to_string(),
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

/// Upstream's answer to a JSON patch that cannot be applied: a generic 422 that does not say
/// which operation failed (`NewGenericServerResponse(422, ...)`).
fn rejected() -> Status {
    let mut s = Status::new(
        422,
        "Invalid",
        "the server rejected our request due to an error in our request",
    );
    s.empty_details = true;
    s
}

/// 413 as upstream's `NewRequestEntityTooLargeError`.
pub fn entity_too_large(why: &str) -> Status {
    Status::new(
        413,
        "RequestEntityTooLarge",
        format!("Request entity too large: {why}"),
    )
}

/// Refuses a patched object larger than `MAX_PATCHED_BYTES` as compact JSON (413).
pub fn check_patched_size(v: &Value) -> Result<(), Status> {
    match json_len_within(v, MAX_PATCHED_BYTES) {
        Some(_) => Ok(()),
        None => Err(entity_too_large(&format!("limit is {MAX_PATCHED_BYTES}"))),
    }
}

/// Counts bytes written and refuses to go past a budget, so measuring a value costs at most
/// the budget however large the value is.
struct Budget {
    left: usize,
}

impl io::Write for Budget {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if b.len() > self.left {
            return Err(io::Error::other("over budget"));
        }
        self.left -= b.len();
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The length of `v` as compact JSON, or None when it is longer than `limit`.
pub fn json_len_within(v: &Value, limit: usize) -> Option<usize> {
    let mut b = Budget { left: limit };
    serde_json::to_writer(&mut b, v).ok()?;
    Some(limit - b.left)
}

/// RFC 7386: objects merge, `null` deletes, anything else replaces.
pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    let mut out = target.clone();
    merge_patch_into(&mut out, patch);
    out
}

/// `merge_patch` in place.
pub fn merge_patch_into(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else { return };
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch_into(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// Why a JSON patch failed; the client sees only the status (`into_status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonPatchError {
    NotAnArray,
    TooManyOperations(usize),
    /// `copy` operations would add more than `MAX_COPIED_BYTES`.
    CopyTooLarge,
    /// An operation does not apply (json-patch's own words, for logs and tests).
    Failed(String),
}

impl JsonPatchError {
    /// json-patch's `ErrTestFailed`: a `test` found another value (a missing path is not one).
    pub fn is_test_failure(&self) -> bool {
        matches!(self, JsonPatchError::Failed(m) if m.ends_with(TEST_FAILED))
    }

    /// What went wrong, in json-patch's words where it has them.
    pub fn text(&self) -> String {
        match self {
            JsonPatchError::NotAnArray => "the patch is not an array".into(),
            JsonPatchError::TooManyOperations(n) => format!(
                "The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {n}"
            ),
            JsonPatchError::CopyTooLarge => "copy operations copy too many bytes".into(),
            JsonPatchError::Failed(m) => m.clone(),
        }
    }

    pub fn into_status(self) -> Status {
        match self {
            JsonPatchError::NotAnArray => Status::bad_request(
                "json: cannot unmarshal object into Go value of type jsonpatch.Patch",
            ),
            JsonPatchError::TooManyOperations(n) => entity_too_large(&format!(
                "The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {n}"
            )),
            JsonPatchError::CopyTooLarge | JsonPatchError::Failed(_) => rejected(),
        }
    }
}

/// How json-patch's `ErrTestFailed` ends its message.
const TEST_FAILED: &str = ": test failed";

fn failed(msg: String) -> JsonPatchError {
    JsonPatchError::Failed(msg)
}

/// RFC 6901 pointer → its parent's segments and the last one; None for the whole document
/// (which json-patch v4 cannot add to, remove or copy from).
fn split_pointer(p: &str) -> Option<(Vec<String>, String)> {
    let rest = p.strip_prefix('/')?;
    let mut parts: Vec<String> = rest
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    let last = parts.pop()?;
    Some((parts, last))
}

fn get<'a>(v: &'a Value, parts: &[String]) -> Option<&'a Value> {
    parts.iter().try_fold(v, |cur, part| match cur {
        Value::Object(m) => m.get(part),
        Value::Array(a) => a.get(part.parse::<usize>().ok()?),
        _ => None,
    })
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

fn add(doc: &mut Value, kind: &str, path: &str, value: Value) -> Result<(), JsonPatchError> {
    let missing = || {
        failed(format!(
            "{kind} operation does not apply: doc is missing path: \"{path}\": missing value"
        ))
    };
    let (parent, last) = split_pointer(path).ok_or_else(missing)?;
    match get_mut(doc, &parent).ok_or_else(missing)? {
        Value::Object(m) => {
            m.insert(last, value);
        }
        Value::Array(a) if last == "-" => a.push(value),
        Value::Array(a) => {
            let i: usize = last
                .parse()
                .map_err(|_| failed(format!("value was not a proper array index: '{last}'")))?;
            if i > a.len() {
                return Err(failed(format!(
                    "Unable to access invalid index: {i}: invalid index referenced"
                )));
            }
            a.insert(i, value);
        }
        _ => return Err(missing()),
    }
    Ok(())
}

fn remove(doc: &mut Value, kind: &str, path: &str) -> Result<Value, JsonPatchError> {
    let missing = || {
        failed(format!(
            "{kind} operation does not apply: doc is missing path: \"{path}\": missing value"
        ))
    };
    let (parent, last) = split_pointer(path).ok_or_else(missing)?;
    match get_mut(doc, &parent).ok_or_else(missing)? {
        Value::Object(m) => m.remove(&last).ok_or_else(missing),
        Value::Array(a) => match last.parse::<usize>() {
            Ok(i) if i < a.len() => Ok(a.remove(i)),
            _ => Err(missing()),
        },
        _ => Err(missing()),
    }
}

fn replace(doc: &mut Value, path: &str, value: Value) -> Result<(), JsonPatchError> {
    let missing = || {
        failed(format!(
            "replace operation does not apply: doc is missing key: {path}: missing value"
        ))
    };
    if path.is_empty() {
        if !(value.is_object() || value.is_array()) {
            return Err(failed(
                "replace operation value must be object or array".into(),
            ));
        }
        *doc = value;
        return Ok(());
    }
    let (parent, last) = split_pointer(path).ok_or_else(missing)?;
    let slot = match get_mut(doc, &parent).ok_or_else(missing)? {
        Value::Object(m) => m.get_mut(&last),
        Value::Array(a) => last.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
        _ => None,
    };
    *slot.ok_or_else(missing)? = value;
    Ok(())
}

/// RFC 6902 operations applied in order; any failure fails the whole patch.
pub fn json_patch(target: &Value, ops: &Value) -> Result<Value, Status> {
    apply_json_patch(target.clone(), ops).map_err(JsonPatchError::into_status)
}

/// The operations applied to `doc` in place, as json-patch v4 (which upstream uses) applies
/// them, within upstream's limits.
pub fn apply_json_patch(mut doc: Value, ops: &Value) -> Result<Value, JsonPatchError> {
    let ops = ops.as_array().ok_or(JsonPatchError::NotAnArray)?;
    if ops.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(JsonPatchError::TooManyOperations(ops.len()));
    }
    let mut copied = 0usize;
    for op in ops {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or("unknown");
        let path = op.get("path").and_then(Value::as_str);
        let from = op.get("from").and_then(Value::as_str);
        fn need<'a>(
            kind: &str,
            field: Option<&'a str>,
            what: &str,
        ) -> Result<&'a str, JsonPatchError> {
            field.ok_or_else(|| {
                failed(format!(
                    "{kind} operation failed to decode {what}: missing value"
                ))
            })
        }
        let value = || op.get("value").cloned().unwrap_or(Value::Null);
        match kind {
            "add" => add(&mut doc, kind, need(kind, path, "path")?, value())?,
            "replace" => replace(&mut doc, need(kind, path, "path")?, value())?,
            "remove" => {
                remove(&mut doc, kind, need(kind, path, "path")?)?;
            }
            "move" => {
                let v = remove(&mut doc, kind, need(kind, from, "from")?)?;
                add(&mut doc, kind, need(kind, path, "path")?, v)?;
            }
            "copy" => {
                let from = need(kind, from, "from")?;
                let missing = || {
                    failed(format!(
                        "copy operation does not apply: doc is missing from path: {from}: missing value"
                    ))
                };
                let (parent, last) = split_pointer(from).ok_or_else(missing)?;
                let mut parts = parent;
                parts.push(last);
                let v = get(&doc, &parts).ok_or_else(missing)?;
                // Measured before it is cloned: a copy that would pass the budget allocates
                // nothing.
                let size = json_len_within(v, MAX_COPIED_BYTES - copied)
                    .ok_or(JsonPatchError::CopyTooLarge)?;
                copied += size;
                let v = v.clone();
                add(&mut doc, kind, need(kind, path, "path")?, v)?;
            }
            "test" => {
                let path = need(kind, path, "path")?;
                let actual = if path.is_empty() {
                    Some(&doc)
                } else {
                    let (mut parts, last) = split_pointer(path).ok_or_else(|| {
                        failed(format!(
                            "test operation does not apply: is missing path: {path}: missing value"
                        ))
                    })?;
                    parts.push(last);
                    get(&doc, &parts)
                };
                if actual != op.get("value") {
                    return Err(failed(format!("testing value {path} failed{TEST_FAILED}")));
                }
            }
            other => return Err(failed(format!("Unexpected kind: {other}"))),
        }
    }
    Ok(doc)
}

/// Strategic merge patch of `target` (an object of the kind named by its apiVersion/kind).
pub fn strategic_merge_patch(target: &Value, patch: &Value) -> Result<Value, Status> {
    let mut out = target.clone();
    strategic_merge_patch_into(&mut out, patch)?;
    Ok(out)
}

/// `strategic_merge_patch` in place: linear in the object and the patch (lists merged by
/// key through a hash index, nothing cloned but what the patch brings).
pub fn strategic_merge_patch_into(target: &mut Value, patch: &Value) -> Result<(), Status> {
    let av = target
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = target.get("kind").and_then(Value::as_str).unwrap_or("");
    let def = strategies()
        .kinds
        .get(&(av.to_string(), kind.to_string()))
        .cloned();
    smp_merge(target, patch, def.as_deref())
}

fn directive(v: &Value) -> Option<&str> {
    v.get("$patch").and_then(Value::as_str)
}

/// A list item's identity for hashing: its merge key's value (or the whole primitive),
/// tagged so that `"1"` and `1` stay apart.
fn identity(v: &Value) -> String {
    match v {
        Value::String(s) => format!("s{s}"),
        other => format!("j{other}"),
    }
}

fn smp_merge(out: &mut Value, patch: &Value, def: Option<&str>) -> Result<(), Status> {
    let Value::Object(p) = patch else {
        *out = patch.clone();
        return Ok(());
    };
    match directive(patch) {
        Some("replace") => {
            let mut m = p.clone();
            m.remove("$patch");
            *out = Value::Object(m);
            return Ok(());
        }
        Some("delete") => {
            *out = Value::Object(Map::new());
            return Ok(());
        }
        Some("merge") | None => {}
        Some(other) => {
            return Err(Status::bad_request(format!(
                "Unknown patch type: {other} in map: {patch}"
            )));
        }
    }
    if !out.is_object() {
        *out = Value::Object(Map::new());
    }
    let Value::Object(om) = out else {
        return Ok(());
    };
    if let Some(keep) = p.get("$retainKeys").and_then(Value::as_array) {
        let keep: HashSet<&str> = keep.iter().filter_map(Value::as_str).collect();
        om.retain(|k, _| keep.contains(k.as_str()));
    }
    let strategies = strategies();
    for (k, v) in p {
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Some(del)) = (om.get_mut(field), v.as_array()) {
                let del: HashSet<String> = del.iter().map(identity).collect();
                list.retain(|x| !del.contains(&identity(x)));
            }
            continue;
        }
        if k.starts_with('$') {
            // $patch, $retainKeys (above), $setElementOrder/...: order is kept as merged.
            continue;
        }
        if v.is_null() || (v.is_object() && directive(v) == Some("delete")) {
            om.remove(k);
            continue;
        }
        let prop = strategies.prop(def, k);
        let slot = om.entry(k.clone()).or_insert(Value::Null);
        match (prop, v) {
            (Some(pr), Value::Array(items)) if pr.is_list && pr.merge => {
                merge_list(slot, items, pr)?
            }
            (Some(pr), Value::Object(pm)) if pr.is_map => {
                // Map values are merged key by key; their own type is the item type.
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                if let Value::Object(m) = slot {
                    for (mk, mv) in pm {
                        if mk.starts_with('$') {
                            continue;
                        }
                        if mv.is_null() {
                            m.remove(mk);
                        } else {
                            let entry = m.entry(mk.clone()).or_insert(Value::Null);
                            smp_merge(entry, mv, pr.ty.as_deref())?;
                        }
                    }
                }
            }
            (Some(pr), Value::Object(_)) => smp_merge(slot, v, pr.ty.as_deref())?,
            (None, Value::Object(_)) => smp_merge(slot, v, None)?,
            _ => *slot = v.clone(),
        }
    }
    Ok(())
}

/// Merges a patch list into the current list by the schema's merge key: one pass to index
/// the current items by key, one over the patch; deletions are compacted once at the end.
fn merge_list(slot: &mut Value, items: &[Value], prop: &Prop) -> Result<(), Status> {
    if items.iter().any(|i| directive(i) == Some("replace")) {
        *slot = Value::Array(
            items
                .iter()
                .filter(|i| directive(i) != Some("replace"))
                .cloned()
                .collect(),
        );
        return Ok(());
    }
    if !slot.is_array() {
        *slot = Value::Array(Vec::new());
    }
    let Value::Array(list) = slot else {
        return Ok(());
    };
    let Some(key) = &prop.merge_key else {
        // Primitive lists with the merge strategy: union, in order.
        let mut seen: HashSet<String> = list.iter().map(identity).collect();
        for i in items {
            if seen.insert(identity(i)) {
                list.push(i.clone());
            }
        }
        return Ok(());
    };
    let mut index: HashMap<String, usize> = HashMap::with_capacity(list.len() + items.len());
    for (pos, e) in list.iter().enumerate() {
        if let Some(id) = e.get(key) {
            index.entry(identity(id)).or_insert(pos);
        }
    }
    let mut deleted = vec![false; list.len()];
    for item in items {
        let Some(id) = item.get(key) else {
            return Err(Status::bad_request(format!(
                "map: {item} does not contain declared merge key: {key}"
            )));
        };
        let id = identity(id);
        if directive(item) == Some("delete") {
            if let Some(p) = index.remove(&id) {
                deleted[p] = true;
            }
            continue;
        }
        match index.get(&id) {
            Some(&p) => smp_merge(&mut list[p], item, prop.ty.as_deref())?,
            None => {
                let mut v = Value::Object(Map::new());
                smp_merge(&mut v, item, prop.ty.as_deref())?;
                index.insert(id, list.len());
                list.push(v);
                deleted.push(false);
            }
        }
    }
    if deleted.contains(&true) {
        let mut gone = deleted.into_iter();
        list.retain(|_| !gone.next().unwrap_or(false));
    }
    Ok(())
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

    fn pod(containers: usize) -> Value {
        let cs: Vec<Value> = (0..containers)
            .map(|i| json!({"name": format!("c{i}"), "image": "busybox:1"}))
            .collect();
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": cs}})
    }

    #[test]
    fn strategic_merge_of_ten_thousand_containers_merges_each_by_key() {
        let target = pod(10_000);
        // Every container patched in reverse order, one deleted, one added.
        let mut items: Vec<Value> = (0..10_000)
            .rev()
            .map(|i| json!({"name": format!("c{i}"), "image": format!("busybox:{i}")}))
            .collect();
        items.push(json!({"name": "c5", "$patch": "delete"}));
        items.push(json!({"name": "new", "image": "x"}));
        let patch = json!({"spec": {"containers": items}});
        let out = strategic_merge_patch(&target, &patch).unwrap();
        let cs = out["spec"]["containers"].as_array().unwrap();
        assert_eq!(cs.len(), 10_000);
        assert_eq!(cs[0], json!({"name": "c0", "image": "busybox:0"}));
        assert_eq!(cs[5], json!({"name": "c6", "image": "busybox:6"}));
        assert_eq!(cs[9_999], json!({"name": "new", "image": "x"}));
    }

    #[test]
    fn strategic_merge_directives_replace_delete_and_primitive_lists() {
        let target = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"finalizers": ["a", "b", "c"], "labels": {"x": "1"}},
            "spec": {"containers": [{"name": "a", "image": "i", "args": ["1"]}, {"name": "b", "image": "j"}]}});
        // $patch: replace on a list keeps only the patch's items.
        let p =
            json!({"spec": {"containers": [{"name": "z", "image": "k"}, {"$patch": "replace"}]}});
        let out = strategic_merge_patch(&target, &p).unwrap();
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "z", "image": "k"}])
        );
        // $patch: replace on a map replaces it whole.
        let p = json!({"metadata": {"labels": {"y": "2", "$patch": "replace"}}});
        let out = strategic_merge_patch(&target, &p).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"y": "2"}));
        // $patch: delete on a map removes it.
        let p = json!({"metadata": {"labels": {"$patch": "delete"}}});
        let out = strategic_merge_patch(&target, &p).unwrap();
        assert!(out["metadata"].get("labels").is_none());
        // $deleteFromPrimitiveList removes values from a merged primitive list.
        let p = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}});
        let out = strategic_merge_patch(&target, &p).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "c"]));
        // Merged primitive lists are a union; $setElementOrder is accepted.
        let p = json!({"metadata": {"finalizers": ["c", "d"], "$setElementOrder/finalizers": ["a", "b", "c", "d"]}});
        let out = strategic_merge_patch(&target, &p).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "b", "c", "d"]));
        // A list item without its merge key is refused.
        let p = json!({"spec": {"containers": [{"image": "k"}]}});
        assert_eq!(strategic_merge_patch(&target, &p).unwrap_err().code, 400);
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
            {"op": "test", "path": "/a", "value": 9},
            {"op": "copy", "from": "/b/f", "path": "/g"},
            {"op": "move", "from": "/g", "path": "/h"}
        ]);
        assert_eq!(
            json_patch(&t, &ops).unwrap(),
            json!({"a": 9, "b": {"c": 2, "f": [1, 2]}, "h": [1, 2]})
        );
        assert!(json_patch(&t, &json!([{"op": "remove", "path": "/nope"}])).is_err());
        assert!(json_patch(&t, &json!([{"op": "test", "path": "/a", "value": 2}])).is_err());
    }

    #[test]
    fn json_patch_failures_answer_upstreams_generic_422() {
        let t = json!({"a": 1});
        let s = json_patch(&t, &json!([{"op": "remove", "path": "/nope"}])).unwrap_err();
        assert_eq!((s.code, s.reason), (422, "Invalid"));
        assert_eq!(
            s.message,
            "the server rejected our request due to an error in our request"
        );
        assert!(s.empty_details && s.causes.is_empty());
    }

    #[test]
    fn json_patch_of_more_than_ten_thousand_operations_is_413() {
        let t = json!({"a": 1});
        let op = json!({"op": "test", "path": "/a", "value": 1});
        let ok = Value::Array(vec![op.clone(); MAX_JSON_PATCH_OPERATIONS]);
        assert!(json_patch(&t, &ok).is_ok());
        let over = Value::Array(vec![op; MAX_JSON_PATCH_OPERATIONS + 1]);
        let s = json_patch(&t, &over).unwrap_err();
        assert_eq!((s.code, s.reason), (413, "RequestEntityTooLarge"));
        assert_eq!(
            s.message,
            "Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 10001"
        );
    }

    #[test]
    fn json_patch_copy_from_the_root_does_not_apply() {
        // json-patch v4 cannot address the whole document as `from`: the doubling
        // patch fails at its first operation.
        let t = json!({"data": {"k": "v"}});
        let ops = json!([{"op": "copy", "from": "", "path": "/x0"}]);
        assert_eq!(
            apply_json_patch(t, &ops).unwrap_err(),
            JsonPatchError::Failed(
                "copy operation does not apply: doc is missing from path: : missing value".into()
            )
        );
    }

    #[test]
    fn json_patch_copies_are_bounded_by_the_body_limit() {
        // 40 copies of 128 KiB: 5 MiB.
        let t = json!({"a": "x".repeat(128 * 1024)});
        let ops: Vec<Value> = (0..40)
            .map(|i| {
                if i == 0 {
                    json!({"op": "copy", "from": "/a", "path": "/b"})
                } else {
                    json!({"op": "copy", "from": "/a", "path": format!("/c{i}")})
                }
            })
            .collect();
        let err = apply_json_patch(t.clone(), &Value::Array(ops)).unwrap_err();
        assert_eq!(err, JsonPatchError::CopyTooLarge);
        assert_eq!(err.into_status().code, 422);
        // Doubling a subtree into itself stops as soon as the budget is spent.
        let ops: Vec<Value> = (0..30)
            .map(|_| json!({"op": "copy", "from": "/a", "path": "/a/-"}))
            .collect();
        let t = json!({"a": ["x".repeat(1024)]});
        assert_eq!(
            apply_json_patch(t, &Value::Array(ops)).unwrap_err(),
            JsonPatchError::CopyTooLarge
        );
    }

    #[test]
    fn patched_objects_larger_than_the_body_limit_are_413() {
        let small = json!({"a": "x".repeat(1024)});
        assert!(check_patched_size(&small).is_ok());
        let big = json!({"a": "x".repeat(MAX_PATCHED_BYTES)});
        let s = check_patched_size(&big).unwrap_err();
        assert_eq!((s.code, s.reason), (413, "RequestEntityTooLarge"));
        assert_eq!(s.message, "Request entity too large: limit is 3145728");
        assert_eq!(json_len_within(&json!({"a": 1}), 100), Some(7));
        assert_eq!(json_len_within(&json!({"a": 1}), 6), None);
    }
}
