//! The object construction MutatingAdmissionPolicy's expressions use: `Object{...}` apply
//! configurations (`Object{spec: Object.spec{replicas: 3}}`) and `JSONPatch{op, path, from,
//! value}` operations. The `cel` crate parses these struct literals but evaluates only structs
//! registered with field types ahead of time, and Kubernetes' `Object` types are open (any
//! field, named by their path). So after parsing, each literal is rewritten into the map
//! literal of its fields — the JSON the mutation needs — once its type name has been checked
//! as upstream checks it: `Object.<path>` literals must sit at that field path under their
//! parent (`type mismatch: unexpected type name ...`), `JSONPatch` has only its four fields.
//! Other struct names are undeclared. `jsonpatch.escapeKey` (the JSONPatch library) is here.

use std::sync::Arc;

use ::cel::Value as CelValue;
use ::cel::common::ast::{
    EntryExpr, Expr, IdedEntryExpr, IdedExpr, LiteralValue, MapEntryExpr, MapExpr,
};
use ::cel::common::types::CelString;

use super::library::{Call, Overload};

pub(super) const OVERLOADS: &[(&str, Overload)] = &[("jsonpatch.escapeKey", escape_key)];

/// The type names of the literals; declaring them (among an expression's variables) allows
/// the literals, as upstream declares them only where mutations are compiled.
pub const OBJECT_TYPE: &str = "Object";
pub const JSON_PATCH_TYPE: &str = "JSONPatch";

const JSON_PATCH_FIELDS: &[&str] = &["op", "path", "from", "value"];

/// `jsonpatch.escapeKey(k)`: `k` as one JSON pointer segment (`~` → `~0`, `/` → `~1`).
fn escape_key(c: &Call) -> Option<Result<CelValue, ::cel::ExecutionError>> {
    if c.this.is_some() {
        return None;
    }
    let Some(CelValue::String(s)) = c.arg(0) else {
        return None;
    };
    let escaped = s.replace('~', "~0").replace('/', "~1");
    Some(Ok(CelValue::String(Arc::new(escaped))))
}

fn is_object_type(name: &str) -> bool {
    name == OBJECT_TYPE || name.starts_with("Object.")
}

/// Rewrites the struct literals of `e` into map literals (and `authorizer.requestResource`
/// into the call the authz library answers); an error names a literal upstream refuses.
pub(super) fn rewrite(e: &mut IdedExpr, declared: &[&str]) -> Result<(), String> {
    if let Expr::Struct(s) = &e.expr {
        let allowed = if is_object_type(&s.type_name) {
            declared.contains(&OBJECT_TYPE)
        } else {
            s.type_name == JSON_PATCH_TYPE && declared.contains(&JSON_PATCH_TYPE)
        };
        if !allowed {
            return Err(format!(
                "undeclared reference to '{}' (in container '')",
                s.type_name
            ));
        }
        for entry in &s.entries {
            let EntryExpr::StructField(f) = &entry.expr else {
                continue;
            };
            if s.type_name == JSON_PATCH_TYPE {
                if !JSON_PATCH_FIELDS.contains(&f.field.as_str()) {
                    return Err(format!("undefined field '{}'", f.field));
                }
            } else {
                check_type_names(&f.value, &format!("{}.{}", s.type_name, f.field))?;
            }
        }
    }
    super::authz::rewrite_request_resource(e);
    match &mut e.expr {
        Expr::Select(s) => rewrite(&mut s.operand, declared)?,
        Expr::Call(c) => {
            if let Some(t) = &mut c.target {
                rewrite(t, declared)?;
            }
            for a in &mut c.args {
                rewrite(a, declared)?;
            }
        }
        Expr::List(l) => {
            for x in &mut l.elements {
                rewrite(x, declared)?;
            }
        }
        Expr::Map(m) => {
            for entry in &mut m.entries {
                match &mut entry.expr {
                    EntryExpr::MapEntry(me) => {
                        rewrite(&mut me.key, declared)?;
                        rewrite(&mut me.value, declared)?;
                    }
                    EntryExpr::StructField(f) => rewrite(&mut f.value, declared)?,
                }
            }
        }
        Expr::Struct(s) => {
            let mut entries = Vec::with_capacity(s.entries.len());
            for entry in std::mem::take(&mut s.entries) {
                let (key, mut value, optional) = match entry.expr {
                    EntryExpr::StructField(f) => (string(f.field), f.value, f.optional),
                    EntryExpr::MapEntry(me) => (me.key, me.value, me.optional),
                };
                rewrite(&mut value, declared)?;
                entries.push(IdedEntryExpr {
                    id: entry.id,
                    expr: EntryExpr::MapEntry(MapEntryExpr {
                        key,
                        value,
                        optional,
                    }),
                });
            }
            e.expr = Expr::Map(MapExpr { entries });
        }
        Expr::Comprehension(c) => {
            rewrite(&mut c.iter_range, declared)?;
            rewrite(&mut c.accu_init, declared)?;
            rewrite(&mut c.loop_cond, declared)?;
            rewrite(&mut c.loop_step, declared)?;
            rewrite(&mut c.result, declared)?;
        }
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
    Ok(())
}

fn string(s: String) -> IdedExpr {
    IdedExpr {
        id: 0,
        expr: Expr::Literal(LiteralValue::String(CelString::from(s))),
    }
}

/// An `Object.*` literal held (directly, or in list and map literals) by the field at `path`
/// must be named `path`.
fn check_type_names(value: &IdedExpr, path: &str) -> Result<(), String> {
    match &value.expr {
        Expr::Struct(s) if is_object_type(&s.type_name) && s.type_name != path => Err(format!(
            "type mismatch: unexpected type name \"{}\", expected \"{path}\", which matches field name path from root Object type",
            s.type_name
        )),
        Expr::List(l) => l
            .elements
            .iter()
            .try_for_each(|x| check_type_names(x, path)),
        Expr::Map(m) => m.entries.iter().try_for_each(|entry| match &entry.expr {
            EntryExpr::MapEntry(me) => check_type_names(&me.value, path),
            EntryExpr::StructField(f) => check_type_names(&f.value, path),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Activation, compile};
    use super::*;
    use serde_json::json;

    const DECLARED: &[&str] = &["object", OBJECT_TYPE, JSON_PATCH_TYPE];

    fn eval_json(src: &str) -> Result<serde_json::Value, String> {
        let mut a = Activation::default();
        a.bind("object", Some(&json!({"metadata": {"name": "x"}})));
        compile(src, DECLARED)?
            .eval(&a)?
            .json()
            .map_err(|e| e.to_string())
    }

    #[test]
    fn object_literals_evaluate_to_their_fields() {
        let v = eval_json(
            "Object{metadata: Object.metadata{labels: {'team': object.metadata.name}}, spec: Object.spec{replicas: 3, containers: [Object.spec.containers{name: 'c'}]}}",
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"metadata": {"labels": {"team": "x"}},
                   "spec": {"replicas": 3, "containers": [{"name": "c"}]}})
        );
        let v = eval_json("Object{?spec: optional.none()}").unwrap();
        assert_eq!(v, json!({}));
    }

    #[test]
    fn json_patch_literals_evaluate_to_operations() {
        let v = eval_json(
            "[JSONPatch{op: 'add', path: '/metadata/labels/' + jsonpatch.escapeKey('a/b~c'), value: 'v'}]",
        )
        .unwrap();
        assert_eq!(
            v,
            json!([{"op": "add", "path": "/metadata/labels/a~1b~0c", "value": "v"}])
        );
        let err = compile("JSONPatch{op: 'add', where: '/x'}", DECLARED)
            .err()
            .unwrap();
        assert!(err.contains("undefined field 'where'"), "{err}");
    }

    #[test]
    fn object_type_names_must_follow_their_field_path() {
        let err = compile(
            "Object{spec: Object.spec{selector: Object.spec.wrong{}}}",
            DECLARED,
        )
        .err()
        .unwrap();
        assert!(
            err.contains(
                "unexpected type name \"Object.spec.wrong\", expected \"Object.spec.selector\""
            ),
            "{err}"
        );
        let err = compile("Object{spec: [Object.status{}]}", DECLARED)
            .err()
            .unwrap();
        assert!(err.contains("expected \"Object.spec\""), "{err}");
        // Where the types are not declared, the literals are unknown.
        let err = compile("Object{}", &["object"]).err().unwrap();
        assert!(err.contains("undeclared reference to 'Object'"), "{err}");
        let err = compile("Widget{}", DECLARED).err().unwrap();
        assert!(err.contains("undeclared reference to 'Widget'"), "{err}");
    }
}
