//! The type model server-side apply merges and tracks ownership by, as structured-merge-diff
//! sees a schema: scalars, structs and maps (granular or atomic), lists (atomic, set, or map
//! with keys) and deduced types (shape taken from the value). Built-in kinds read theirs from
//! `data/field-types.tsv` (generated from the v1.36 OpenAPI by `data/gen-field-types.py`) once;
//! a CRD's comes from its openAPIV3Schema (`Model::from_crd_schema`).

use rustc_hash::FxHashMap as HashMap;
use rustc_hash::FxHashSet;
use std::sync::{Arc, OnceLock};

use serde_json::Value;

const FIELD_TYPES: &str = include_str!("data/field-types.tsv");

/// Depth of a CRD schema the model follows: deeper properties are deduced from their values
/// (upstream bounds a CRD schema's depth well below this through its size limits).
pub const MAX_SCHEMA_DEPTH: usize = 64;

/// Index of a type in its model.
pub type TypeId = usize;

/// The deduced type: every model holds it at this index.
pub const DEDUCED: TypeId = 0;
/// A scalar: every model holds it at this index.
pub const SCALAR: TypeId = 1;

/// How a list's items are identified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListKind {
    /// The whole list is one value, owned as one field.
    Atomic,
    /// Scalar items identified by their value (`v:`).
    Set,
    /// Object items identified by the values of these keys (`k:`), each with the schema's
    /// default for an item that omits it.
    Map(Vec<(String, Option<Value>)>),
}

/// One type of the model.
#[derive(Debug, Clone)]
pub enum Type {
    /// Untyped: objects are granular maps of deduced values, lists atomic, the rest scalars.
    Deduced,
    Scalar,
    /// Named fields; `other` types fields the schema does not name (preserve-unknown-fields).
    Struct {
        fields: HashMap<String, TypeId>,
        atomic: bool,
        other: Option<TypeId>,
    },
    Map {
        elem: TypeId,
        atomic: bool,
    },
    List {
        elem: TypeId,
        kind: ListKind,
    },
}

/// A set of types and the roots of the kinds it describes.
#[derive(Debug)]
pub struct Model {
    types: Vec<Type>,
    /// (apiVersion, kind) → root type.
    kinds: HashMap<(String, String), TypeId>,
    /// The root of any object (a CRD's model describes one kind, whatever its version).
    root: Option<TypeId>,
    /// Fields present in a struct's zero Go object: true for `{}`, false for `null`.
    zero: HashMap<TypeId, Vec<(String, bool)>>,
    /// Fields of a struct whose zero value Go omits (omitempty on a value, slice or map).
    omitempty: HashMap<TypeId, FxHashSet<String>>,
}

impl Model {
    fn empty() -> Model {
        Model {
            types: vec![Type::Deduced, Type::Scalar],
            kinds: HashMap::default(),
            root: None,
            zero: HashMap::default(),
            omitempty: HashMap::default(),
        }
    }

    pub fn get(&self, id: TypeId) -> &Type {
        self.types.get(id).unwrap_or(&Type::Deduced)
    }

    /// The root type of an object of this apiVersion and kind; deduced when unknown.
    pub fn root_for(&self, api_version: &str, kind: &str) -> TypeId {
        if let Some(root) = self.root {
            return root;
        }
        self.kinds
            .get(&(api_version.to_string(), kind.to_string()))
            .copied()
            .unwrap_or(DEDUCED)
    }

    /// The object a create is compared with: the kind's zero Go object as upstream's
    /// `New()` gives it (value structs as `{}`, nil slices and maps that are not omitted as
    /// null), so that fields present there are not counted as added (no `.` in fieldsV1).
    pub fn zero_object(&self, root: TypeId) -> Value {
        self.zero_of(root, 0)
    }

    /// Whether Go leaves field `name` of struct `t` out of its objects when it holds `v` (a
    /// zero value of an omitempty field): such a field is not set, and nobody owns it.
    pub fn omitted(&self, t: TypeId, name: &str, v: &Value) -> bool {
        let zero = match v {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            Value::Bool(b) => !b,
            Value::Number(n) => n.as_f64() == Some(0.0),
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
        };
        zero && self.omitempty.get(&t).is_some_and(|f| f.contains(name))
    }

    fn zero_of(&self, t: TypeId, depth: usize) -> Value {
        let mut out = serde_json::Map::new();
        if let (Some(fields), Type::Struct { fields: types, .. }) = (self.zero.get(&t), self.get(t))
            && depth < MAX_SCHEMA_DEPTH
        {
            for (name, object) in fields {
                let v = match (object, types.get(name)) {
                    (true, Some(&ft)) => self.zero_of(ft, depth + 1),
                    (true, None) => Value::Object(serde_json::Map::new()),
                    (false, _) => Value::Null,
                };
                out.insert(name.clone(), v);
            }
        }
        Value::Object(out)
    }

    fn push(&mut self, t: Type) -> TypeId {
        self.types.push(t);
        self.types.len() - 1
    }

    /// The built-in kinds of Kubernetes v1.36, parsed once.
    pub fn builtin() -> Arc<Model> {
        static MODEL: OnceLock<Arc<Model>> = OnceLock::new();
        MODEL
            .get_or_init(|| Arc::new(parse_builtin(FIELD_TYPES)))
            .clone()
    }

    /// A CRD version's openAPIV3Schema as upstream's type converter reads it:
    /// `x-kubernetes-list-type`/`-list-map-keys`, `x-kubernetes-map-type`,
    /// `x-kubernetes-int-or-string` and `x-kubernetes-preserve-unknown-fields` (deduced),
    /// `x-kubernetes-embedded-resource` (metadata typed as ObjectMeta).
    pub fn from_crd_schema(schema: &Value) -> Model {
        let mut m = Model::empty();
        let meta = builtin_object_meta(&mut m);
        let root = crd_type(&mut m, schema, 0, meta);
        // The root of a custom resource always has apiVersion, kind and metadata.
        if let Type::Struct { fields, .. } = &mut m.types[root] {
            fields.entry("apiVersion".into()).or_insert(SCALAR);
            fields.entry("kind".into()).or_insert(SCALAR);
            fields.insert("metadata".into(), meta);
        }
        m.root = Some(root);
        m
    }
}

/// ObjectMeta's type copied from the built-in model into `m` (a CRD's metadata is ObjectMeta).
fn builtin_object_meta(m: &mut Model) -> TypeId {
    let b = Model::builtin();
    let id = b.root_for("v1", "ConfigMap");
    match b.get(id) {
        Type::Struct { fields, .. } => match fields.get("metadata") {
            Some(&meta) => copy_type(m, &b, meta, &mut HashMap::default()),
            None => DEDUCED,
        },
        _ => DEDUCED,
    }
}

fn copy_type(
    m: &mut Model,
    from: &Model,
    id: TypeId,
    done: &mut HashMap<TypeId, TypeId>,
) -> TypeId {
    if id == DEDUCED || id == SCALAR {
        return id;
    }
    if let Some(&c) = done.get(&id) {
        return c;
    }
    let slot = m.push(Type::Deduced);
    done.insert(id, slot);
    let t = match from.get(id).clone() {
        Type::Struct {
            fields,
            atomic,
            other,
        } => Type::Struct {
            fields: fields
                .into_iter()
                .map(|(k, v)| (k, copy_type(m, from, v, done)))
                .collect(),
            atomic,
            other: other.map(|o| copy_type(m, from, o, done)),
        },
        Type::Map { elem, atomic } => Type::Map {
            elem: copy_type(m, from, elem, done),
            atomic,
        },
        Type::List { elem, kind } => Type::List {
            elem: copy_type(m, from, elem, done),
            kind,
        },
        other => other,
    };
    m.types[slot] = t;
    slot
}

/// The schema default of a map list's key field `key`.
fn key_default(list: &Value, key: &str) -> Option<Value> {
    list.pointer(&format!("/items/properties/{key}/default"))
        .cloned()
}

fn crd_type(m: &mut Model, s: &Value, depth: usize, meta: TypeId) -> TypeId {
    if depth > MAX_SCHEMA_DEPTH || !s.is_object() {
        return DEDUCED;
    }
    if s.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true) {
        return DEDUCED;
    }
    let preserve = s
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true);
    let atomic_map = s.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic");
    match s.get("type").and_then(Value::as_str) {
        Some("array") => {
            let elem = match s.get("items") {
                Some(items) => crd_type(m, items, depth + 1, meta),
                None => DEDUCED,
            };
            let kind = match s.get("x-kubernetes-list-type").and_then(Value::as_str) {
                Some("set") => ListKind::Set,
                Some("map") => ListKind::Map(
                    s.get("x-kubernetes-list-map-keys")
                        .and_then(Value::as_array)
                        .map(|ks| {
                            ks.iter()
                                .filter_map(Value::as_str)
                                .map(|k| (k.to_string(), key_default(s, k)))
                                .collect()
                        })
                        .unwrap_or_default(),
                ),
                _ => ListKind::Atomic,
            };
            m.push(Type::List { elem, kind })
        }
        Some("object") | None if s.get("properties").is_some() => {
            let embedded = s
                .get("x-kubernetes-embedded-resource")
                .and_then(Value::as_bool)
                == Some(true);
            let mut fields = HashMap::default();
            if let Some(props) = s.get("properties").and_then(Value::as_object) {
                for (k, v) in props {
                    fields.insert(k.clone(), crd_type(m, v, depth + 1, meta));
                }
            }
            if embedded {
                fields.entry("apiVersion".into()).or_insert(SCALAR);
                fields.entry("kind".into()).or_insert(SCALAR);
                fields.insert("metadata".into(), meta);
            }
            m.push(Type::Struct {
                fields,
                atomic: atomic_map,
                other: preserve.then_some(DEDUCED),
            })
        }
        Some("object") => match s.get("additionalProperties") {
            Some(ap) if ap.is_object() => {
                let elem = crd_type(m, ap, depth + 1, meta);
                m.push(Type::Map {
                    elem,
                    atomic: atomic_map,
                })
            }
            _ if atomic_map => m.push(Type::Map {
                elem: DEDUCED,
                atomic: true,
            }),
            _ => DEDUCED,
        },
        Some(_) => SCALAR,
        None => DEDUCED,
    }
}

/// Parses `field-types.tsv` (see `gen-field-types.py` for its grammar).
fn parse_builtin(text: &str) -> Model {
    let mut m = Model::empty();
    let mut named: HashMap<String, TypeId> = HashMap::default();
    let mut id_of = |m: &mut Model, name: &str| -> TypeId {
        *named
            .entry(name.to_string())
            .or_insert_with(|| m.push(Type::Deduced))
    };
    let mut pending: Vec<(TypeId, String)> = Vec::new();
    let mut fields: Vec<(TypeId, String, String)> = Vec::new();
    let mut zero: Vec<(TypeId, String, bool)> = Vec::new();
    let mut kinds: Vec<(String, String, String)> = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let c: Vec<&str> = line.split('\t').collect();
        match c.as_slice() {
            ["D", name, ty] => {
                let id = id_of(&mut m, name);
                pending.push((id, ty.to_string()));
            }
            ["F", def, prop, ty, rest @ ..] => {
                let id = id_of(&mut m, def);
                fields.push((id, prop.to_string(), ty.to_string()));
                match rest {
                    ["o"] => {
                        m.omitempty.entry(id).or_default().insert(prop.to_string());
                    }
                    [z] => zero.push((id, prop.to_string(), *z == "{}")),
                    _ => {}
                }
            }
            ["K", av, kind, def] => kinds.push((av.to_string(), kind.to_string(), def.to_string())),
            _ => {}
        }
    }
    for (id, ty) in pending {
        m.types[id] = match ty.as_str() {
            "{" | "}" => Type::Struct {
                fields: HashMap::default(),
                atomic: ty == "}",
                other: None,
            },
            expr => {
                let t = parse_expr(&mut m, &mut id_of, expr);
                m.get(t).clone()
            }
        };
    }
    for (id, prop, ty) in fields {
        let t = parse_expr(&mut m, &mut id_of, &ty);
        if let Type::Struct { fields, .. } = &mut m.types[id] {
            fields.insert(prop, t);
        }
    }
    for (id, prop, object) in zero {
        m.zero.entry(id).or_default().push((prop, object));
    }
    for (av, kind, def) in kinds {
        let id = id_of(&mut m, &def);
        m.kinds.insert((av, kind), id);
    }
    m
}

fn parse_expr(
    m: &mut Model,
    id_of: &mut impl FnMut(&mut Model, &str) -> TypeId,
    expr: &str,
) -> TypeId {
    let Some(tag) = expr.chars().next() else {
        return DEDUCED;
    };
    let rest = &expr[tag.len_utf8()..];
    match tag {
        's' => SCALAR,
        'u' => DEDUCED,
        '@' => id_of(m, rest),
        'm' | 'M' => {
            let elem = parse_expr(m, id_of, rest);
            m.push(Type::Map {
                elem,
                atomic: tag == 'M',
            })
        }
        'l' | 'S' => {
            let elem = parse_expr(m, id_of, rest);
            let kind = if tag == 'l' {
                ListKind::Atomic
            } else {
                ListKind::Set
            };
            m.push(Type::List { elem, kind })
        }
        'L' => {
            let (keys, item) = rest.split_once(';').unwrap_or((rest, "u"));
            let elem = parse_expr(m, id_of, item);
            let keys = keys
                .split(',')
                .map(|k| match k.split_once('=') {
                    Some((name, d)) => (name.to_string(), serde_json::from_str(d).ok()),
                    None => (k.to_string(), None),
                })
                .collect();
            m.push(Type::List {
                elem,
                kind: ListKind::Map(keys),
            })
        }
        _ => DEDUCED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(m: &Model, t: TypeId, name: &str) -> TypeId {
        match m.get(t) {
            Type::Struct { fields, .. } => fields[name],
            other => panic!("not a struct: {other:?}"),
        }
    }

    #[test]
    fn builtin_model_knows_list_and_map_semantics() {
        let m = Model::builtin();
        let dep = m.root_for("apps/v1", "Deployment");
        let spec = field(&m, dep, "spec");
        let tpl = field(&m, spec, "template");
        let pod = field(&m, field(&m, tpl, "spec"), "containers");
        assert!(
            matches!(m.get(pod), Type::List { kind: ListKind::Map(k), .. } if k[0].0 == "name")
        );
        let meta = field(&m, dep, "metadata");
        let fin = field(&m, meta, "finalizers");
        assert!(matches!(
            m.get(fin),
            Type::List {
                kind: ListKind::Set,
                ..
            }
        ));
        let labels = field(&m, meta, "labels");
        assert!(matches!(m.get(labels), Type::Map { atomic: false, .. }));
        // matchLabels' LabelSelector is an atomic struct (x-kubernetes-map-type: atomic).
        let sel = field(&m, spec, "selector");
        assert!(matches!(m.get(sel), Type::Struct { atomic: true, .. }));
        assert_eq!(m.root_for("v1", "NoSuchKind"), DEDUCED);
        // A Deployment's zero Go object: value structs present, a nil pointer not omitted.
        let zero = m.zero_object(dep);
        assert_eq!(zero["spec"]["selector"], Value::Null);
        assert_eq!(zero["spec"]["template"]["spec"]["containers"], Value::Null);
        assert!(zero["spec"]["strategy"].is_object() && zero["status"].is_object());
    }

    #[test]
    fn crd_schema_becomes_a_model() {
        let s = json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "ports": {"type": "array", "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["port", "protocol"],
                    "items": {"type": "object", "properties": {"port": {"type": "integer"}}}},
                "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                "sel": {"type": "object", "x-kubernetes-map-type": "atomic",
                    "additionalProperties": {"type": "string"}},
                "port": {"x-kubernetes-int-or-string": true},
                "blob": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
            }}
        }});
        let m = Model::from_crd_schema(&s);
        let root = m.root_for("x/v1", "Any");
        let spec = field(&m, root, "spec");
        let ports = field(&m, spec, "ports");
        assert!(
            matches!(m.get(ports), Type::List { kind: ListKind::Map(k), .. } if k.len() == 2 && k[1].0 == "protocol")
        );
        assert!(matches!(
            m.get(field(&m, spec, "tags")),
            Type::List {
                kind: ListKind::Set,
                ..
            }
        ));
        assert!(matches!(
            m.get(field(&m, spec, "sel")),
            Type::Map { atomic: true, .. }
        ));
        assert_eq!(field(&m, spec, "port"), DEDUCED);
        assert_eq!(field(&m, spec, "blob"), DEDUCED);
        let meta = field(&m, root, "metadata");
        assert!(matches!(m.get(field(&m, meta, "labels")), Type::Map { .. }));
    }
}
