//! OpenAPI validation of a custom resource against its schema, as kube-openapi's
//! `SchemaValidator` does it for apiextensions: the same checks in the same order, the same
//! error texts, turned into field causes as upstream's `kubeOpenAPIResultToFieldErrors`
//! does. Updates ratchet: a subtree equal to the old object's (correlated by key, or by
//! list-map keys) keeps its errors to itself, as upstream 1.36's CRDValidationRatcheting.

use serde_json::{Value, json};

use super::formats;
use super::node::{Additional, Node};
use super::openapi_errors::{
    Code, Error, Outcome, err, go_float, go_list, in_body, invalid_type, quote, to_cause,
};
use crate::api::status::Cause;
/// An instance value as Go's JSON decoding types it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Null,
    Bool,
    Int(i64),
    Float(f64),
    Str,
    Array,
    Object,
}

fn kind(x: &Value) -> Kind {
    match x {
        Value::Null => Kind::Null,
        Value::Bool(_) => Kind::Bool,
        Value::Number(n) => match n.as_i64() {
            Some(i) => Kind::Int(i),
            None => Kind::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(_) => Kind::Str,
        Value::Array(_) => Kind::Array,
        Value::Object(_) => Kind::Object,
    }
}

/// The validation of one instance node against one schema node.
struct Check<'a> {
    node: &'a Node,
    path: &'a str,
    /// The old object's value correlated with this node, on updates.
    old: Option<&'a Value>,
}

impl Check<'_> {
    fn run(&self, x: &Value) -> Outcome {
        let mut out = Outcome::default();
        if self.node.too_deep {
            return out;
        }
        if self.old == Some(x) {
            // Ratcheting: an unchanged value keeps whatever errors it had.
            return out;
        }
        let k = kind(x);
        if k == Kind::Null {
            out.merge(self.type_check(x, k));
            out.merge(self.enum_check(x));
            return out;
        }
        let s = self.node;
        if !s.types().is_empty() || !s.format.is_empty() {
            out.merge(self.type_check(x, k));
            out.matches += 1;
        }
        out.merge(self.composition(x));
        out.matches += 1;
        if k == Kind::Str {
            out.merge(self.string_check(x));
            out.matches += 1;
            if formats::known(&s.format) {
                out.merge(self.format_check(x));
                out.matches += 1;
            }
        }
        if matches!(k, Kind::Int(_) | Kind::Float(_)) {
            out.merge(self.number_check(k));
            out.matches += 1;
        }
        if k == Kind::Array {
            out.merge(self.slice_check(x));
            out.matches += 1;
        }
        out.merge(self.enum_check(x));
        out.matches += 1;
        if k == Kind::Object {
            out.merge(self.object_check(x));
            out.matches += 1;
        }
        out.matches += 1;
        out
    }

    fn type_check(&self, x: &Value, k: Kind) -> Outcome {
        let mut out = Outcome {
            matches: 1,
            ..Outcome::default()
        };
        let types = self.node.types();
        let format = self.node.format.as_str();
        if k == Kind::Null {
            if !types.is_empty() && !types.contains(&"null") && !self.node.nullable {
                out.add(invalid_type(self.path, &types.join(","), "null"));
            }
            return out;
        }
        let (sch_type, sch_format) = match k {
            Kind::Bool => ("boolean", ""),
            Kind::Str => ("string", ""),
            Kind::Int(_) => ("integer", "int64"),
            Kind::Float(_) => ("number", "float64"),
            Kind::Array => ("array", ""),
            Kind::Object | Kind::Null => ("object", ""),
        };
        let float_int = matches!(k, Kind::Float(f) if f.fract() == 0.0 && f.is_finite())
            && types.contains(&"integer");
        let int_float = matches!(k, Kind::Int(_)) && types.contains(&"number");
        let stringish = matches!(k, Kind::Str | Kind::Array);
        let type_or_format_fits =
            types.contains(&sch_type) || sch_format == format || float_int || int_float;
        if !(stringish || format.is_empty() || type_or_format_fits) {
            out.add(invalid_type(self.path, format, sch_format));
            return out;
        }
        let numeric = types.contains(&"number") || types.contains(&"integer");
        if stringish && !(numeric || format.is_empty()) {
            return out;
        }
        if !(types.contains(&sch_type) || float_int || int_float) {
            out.add(invalid_type(self.path, &types.join(","), sch_type));
        }
        let _ = x;
        out
    }

    fn sub<'b>(&self, node: &'b Node, path: &'b str, old: Option<&'b Value>) -> Check<'b> {
        Check { node, path, old }
    }

    fn composition(&self, x: &Value) -> Outcome {
        let s = self.node;
        let mut main = Outcome::default();
        let q = quote(self.path);
        if !s.any_of.is_empty() {
            let mut best: Option<Outcome> = None;
            let mut succeeded = false;
            for n in &s.any_of {
                let r = self.sub(n, self.path, self.old).run(x);
                if r.valid() {
                    succeeded = true;
                    best = None;
                    break;
                }
                if best.as_ref().is_none_or(|b| r.matches > b.matches) {
                    best = Some(r);
                }
            }
            if !succeeded {
                main.add(err(
                    Code::Composite,
                    "",
                    Value::Null,
                    format!("{q} must validate at least one schema (anyOf)"),
                ));
            }
            if let Some(b) = best {
                main.merge(b);
            }
        }
        if !s.one_of.is_empty() {
            let mut best: Option<Outcome> = None;
            let mut validated = 0;
            for n in &s.one_of {
                let r = self.sub(n, self.path, self.old).run(x);
                if r.valid() {
                    validated += 1;
                    best = None;
                    continue;
                }
                if validated == 0 && best.as_ref().is_none_or(|b| r.matches > b.matches) {
                    best = Some(r);
                }
            }
            if validated != 1 {
                let more = match validated {
                    0 => "Found none valid".to_string(),
                    n => format!("Found {n} valid alternatives"),
                };
                main.add(err(
                    Code::Composite,
                    "",
                    Value::Null,
                    format!("{q} must validate one and only one schema (oneOf). {more}"),
                ));
                if let Some(b) = best {
                    main.merge(b);
                }
            }
        }
        if !s.all_of.is_empty() {
            let mut validated = 0;
            for n in &s.all_of {
                let r = self.sub(n, self.path, self.old).run(x);
                if r.valid() {
                    validated += 1;
                }
                main.merge(r);
            }
            if validated != s.all_of.len() {
                let more = if validated == 0 {
                    ". None validated"
                } else {
                    ""
                };
                main.add(err(
                    Code::Composite,
                    "",
                    Value::Null,
                    format!("{q} must validate all the schemas (allOf){more}"),
                ));
            }
        }
        if let Some(n) = &s.not
            && self.sub(n, self.path, self.old).run(x).valid()
        {
            main.add(err(
                Code::Composite,
                "",
                Value::Null,
                format!("{q} must not validate the schema (not)"),
            ));
        }
        main.matches += 1;
        main
    }

    fn string_check(&self, x: &Value) -> Outcome {
        let mut out = Outcome::default();
        let s = self.node;
        let data = x.as_str().unwrap_or("");
        let len = data.chars().count() as i64;
        let name = self.path;
        if let Some(max) = s.max_length
            && len > max
        {
            let mut e = err(
                Code::TooLong,
                name,
                x.clone(),
                format!("{} should be at most {max} chars long", in_body(name)),
            );
            e.valid = max;
            out.add(e);
            return out;
        }
        if let Some(min) = s.min_length
            && len < min
        {
            out.add(err(
                Code::Other,
                name,
                x.clone(),
                format!("{} should be at least {min} chars long", in_body(name)),
            ));
            return out;
        }
        if let Some((p, re)) = &s.pattern {
            let msg = match re {
                Some(re) if re.is_match(data) => None,
                Some(_) => Some(format!("{} should match '{p}'", in_body(name))),
                None => Some(format!(
                    "{} should match '{p}, but pattern is invalid'",
                    in_body(name)
                )),
            };
            if let Some(m) = msg {
                out.add(err(Code::Other, name, x.clone(), m));
            }
        }
        out
    }

    fn format_check(&self, x: &Value) -> Outcome {
        let mut out = Outcome::default();
        let data = x.as_str().unwrap_or("");
        if !formats::valid(&self.node.format, data) {
            out.add(invalid_type(self.path, &self.node.format, data));
        }
        out
    }

    /// kube-openapi's `IsValueValidAgainstRange`: whether `v` fits the node's numeric type.
    fn range_error(&self, v: Kind, prefix: &str) -> Option<Error> {
        let s = self.node;
        let (type_name, format) = match s.types().as_slice() {
            ["integer"] => (
                "integer",
                match s.format.as_str() {
                    f @ ("int32" | "int64") => f,
                    _ => "",
                },
            ),
            ["number"] => (
                "number",
                match s.format.as_str() {
                    f @ ("float" | "double") => f,
                    _ => "",
                },
            ),
            _ => ("", ""),
        };
        let fits = match (type_name, format, v) {
            ("integer", "int32", Kind::Int(i)) => i32::try_from(i).is_ok(),
            ("integer", "int32", Kind::Float(f)) => {
                f.fract() == 0.0 && f >= f64::from(i32::MIN) && f <= f64::from(i32::MAX)
            }
            ("integer", _, Kind::Float(f)) => {
                f.fract() == 0.0
                    && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f)
            }
            ("", _, _) | ("number", "double", _) => true,
            ("number", "float", Kind::Float(f)) => f.abs() <= f64::from(f32::MAX),
            _ => true,
        };
        if fits {
            return None;
        }
        let message = match format {
            "" => format!(
                "{prefix} value must be of type {type_name} (default format) in {}",
                self.path
            ),
            f => format!(
                "{prefix} value must be of type {type_name} with format {f} in {}",
                self.path
            ),
        };
        Some(err(Code::Composite, "", Value::Null, message))
    }

    fn number_check(&self, k: Kind) -> Outcome {
        let s = self.node;
        let name = self.path;
        let mut out = Outcome::default();
        let value = match k {
            Kind::Int(i) => json!(i),
            Kind::Float(f) => json!(f),
            _ => return out,
        };
        let data = match k {
            Kind::Int(i) => i as f64,
            Kind::Float(f) => f,
            _ => 0.0,
        };
        if let Some(e) = self.range_error(k, "Checked") {
            out.add(e);
        }
        let as_bound = |b: f64| {
            if b.fract() == 0.0 {
                Kind::Int(b as i64)
            } else {
                Kind::Float(b)
            }
        };
        let mut multiple = Outcome::default();
        if let Some(factor) = s.multiple_of {
            let native = self.range_error(as_bound(factor), "MultipleOf").is_none();
            let failed = match (native, k) {
                (true, Kind::Int(i)) => {
                    let f = factor as i64;
                    if f <= 0 {
                        Some(format!(
                            "factor MultipleOf declared for {name} must be positive: {f}"
                        ))
                    } else if i % f != 0 {
                        Some(format!("{} should be a multiple of {f}", in_body(name)))
                    } else {
                        None
                    }
                }
                _ => {
                    if factor <= 0.0 {
                        Some(format!(
                            "factor MultipleOf declared for {name} must be positive: {}",
                            go_float(factor)
                        ))
                    } else {
                        let mult = if factor < 1.0 {
                            1.0 / factor * data
                        } else {
                            data / factor
                        };
                        (mult.fract() != 0.0 || !mult.is_finite()).then(|| {
                            format!(
                                "{} should be a multiple of {}",
                                in_body(name),
                                go_float(factor)
                            )
                        })
                    }
                }
            };
            if let Some(m) = failed {
                multiple.add(err(Code::Other, name, value.clone(), m));
            }
        }
        let bound = |b: f64, exclusive: bool, max: bool| -> Option<String> {
            let native = self
                .range_error(
                    as_bound(b),
                    if max {
                        "Maximum boundary"
                    } else {
                        "Minimum boundary"
                    },
                )
                .is_none();
            let (fails, shown) = match (native, k) {
                (true, Kind::Int(i)) => {
                    let b = b as i64;
                    let fails = match (max, exclusive) {
                        (true, false) => i > b,
                        (true, true) => i >= b,
                        (false, false) => i < b,
                        (false, true) => i <= b,
                    };
                    (fails, b.to_string())
                }
                _ => {
                    let fails = match (max, exclusive) {
                        (true, false) => data > b,
                        (true, true) => data >= b,
                        (false, false) => data < b,
                        (false, true) => data <= b,
                    };
                    (fails, go_float(b))
                }
            };
            let rel = match (max, exclusive) {
                (true, false) => "less than or equal to",
                (true, true) => "less than",
                (false, false) => "greater than or equal to",
                (false, true) => "greater than",
            };
            fails.then(|| format!("{} should be {rel} {shown}", in_body(name)))
        };
        let mut minimum = Outcome::default();
        if let Some(m) = s.minimum
            && let Some(msg) = bound(m, s.exclusive_minimum, false)
        {
            minimum.add(err(Code::Other, name, value.clone(), msg));
        }
        let mut maximum = Outcome::default();
        if let Some(m) = s.maximum
            && let Some(msg) = bound(m, s.exclusive_maximum, true)
        {
            maximum.add(err(Code::Other, name, value.clone(), msg));
        }
        out.merge(multiple);
        out.merge(minimum);
        out.merge(maximum);
        out
    }

    fn slice_check(&self, x: &Value) -> Outcome {
        let s = self.node;
        let name = self.path;
        let mut out = Outcome::default();
        let Some(items) = x.as_array() else {
            return out;
        };
        if let Some(item) = s.items.as_deref() {
            let olds = correlate_items(s, items, self.old);
            for (i, v) in items.iter().enumerate() {
                let p = format!("{name}[{i}]");
                let old = olds.get(i).copied().flatten();
                out.merge(self.sub(item, &p, old).run(v));
            }
        }
        let size = items.len() as i64;
        if let Some(min) = s.min_items
            && size < min
        {
            out.add(err(
                Code::Other,
                name,
                json!(size),
                format!("{} should have at least {min} items", in_body(name)),
            ));
        }
        if let Some(max) = s.max_items
            && size > max
        {
            out.add(err(
                Code::TooMany { actual: size, max },
                name,
                json!(size),
                format!("{} should have at most {max} items", in_body(name)),
            ));
        }
        if s.unique_items {
            let dup = items
                .iter()
                .enumerate()
                .any(|(i, a)| items[..i].iter().any(|b| json_equal(a, b)));
            if dup {
                out.add(err(
                    Code::Other,
                    name,
                    Value::Null,
                    format!("{} shouldn't contain duplicates", in_body(name)),
                ));
            }
        }
        out
    }

    fn enum_check(&self, x: &Value) -> Outcome {
        let mut out = Outcome::default();
        let Some(values) = &self.node.enum_values else {
            return out;
        };
        if values.is_empty() || (!x.is_null() && values.iter().any(|v| json_equal(x, v))) {
            return out;
        }
        out.add(err(
            Code::Enum(values.clone()),
            self.path,
            x.clone(),
            format!(
                "{} should be one of {}",
                in_body(self.path),
                go_list(values)
            ),
        ));
        out
    }

    fn object_check(&self, x: &Value) -> Outcome {
        let s = self.node;
        let name = self.path;
        let mut out = Outcome::default();
        let Some(map) = x.as_object() else {
            return out;
        };
        let size = map.len() as i64;
        if let Some(min) = s.min_properties
            && size < min
        {
            out.add(err(
                Code::Other,
                name,
                json!(size),
                format!("{} should have at least {min} properties", in_body(name)),
            ));
        }
        if let Some(max) = s.max_properties
            && size > max
        {
            out.add(err(
                Code::TooMany { actual: size, max },
                name,
                json!(size),
                format!("{} should have at most {max} properties", in_body(name)),
            ));
        }
        let old_of = |k: &str| self.old.and_then(|o| o.get(k));
        match &s.additional {
            Some(Additional::Allows(false)) => {
                for k in map.keys().filter(|k| !s.properties.contains_key(*k)) {
                    out.add(err(
                        Code::Other,
                        name,
                        Value::from(k.as_str()),
                        format!("{name}.{k} in body is a forbidden property"),
                    ));
                }
            }
            Some(Additional::Schema(add)) => {
                for (k, v) in map.iter().filter(|(k, _)| !s.properties.contains_key(*k)) {
                    let p = format!("{name}.{k}");
                    out.merge(self.sub(add, &p, old_of(k)).run(v));
                }
            }
            _ => {}
        }
        for (k, prop) in &s.properties {
            if let Some(v) = map.get(k) {
                let p = match name {
                    "" => k.clone(),
                    _ => format!("{name}.{k}"),
                };
                out.merge(self.sub(prop, &p, old_of(k)).run(v));
            }
        }
        for k in &s.required {
            if !map.contains_key(k) {
                let p = format!("{name}.{k}");
                out.add(err(
                    Code::Required,
                    &p,
                    Value::Null,
                    format!("{} is required", in_body(&p)),
                ));
            }
        }
        out
    }
}

/// Equality of JSON values with numbers compared by value (Go's convertible DeepEqual).
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

/// The old item each new item corresponds to: only lists of type `map`, by their keys
/// (upstream's `CorrelatedObject.Index`).
fn correlate_items<'a>(
    s: &Node,
    items: &[Value],
    old: Option<&'a Value>,
) -> Vec<Option<&'a Value>> {
    let olds = old.and_then(Value::as_array);
    match (s.list_type.as_deref(), olds) {
        (Some("map"), Some(olds)) => items
            .iter()
            .map(|item| {
                let key = |v: &Value| -> Vec<Option<Value>> {
                    s.list_map_keys.iter().map(|k| v.get(k).cloned()).collect()
                };
                let want = key(item);
                olds.iter().find(|o| key(o) == want)
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The causes of `x` against `root` (the object's root schema), ratcheted against `old`.
pub fn validate(root: &Node, x: &Value, old: Option<&Value>) -> Vec<Cause> {
    let out = Check {
        node: root,
        path: "",
        old,
    }
    .run(x);
    out.errors.into_iter().map(to_cause).collect()
}

/// The causes of a value (a schema's `default`) against its node, their fields below
/// `prefix` (upstream's `ValidateCustomResource(fldPath, ...)`).
pub fn validate_at(node: &Node, x: &Value, prefix: &str) -> Vec<Cause> {
    let out = Check {
        node,
        path: "",
        old: None,
    }
    .run(x);
    out.errors
        .into_iter()
        .map(|e| {
            let mut c = to_cause(e);
            c.field = match c.field.as_str() {
                "" => prefix.to_string(),
                f => format!("{prefix}.{f}"),
            };
            c
        })
        .collect()
}

#[cfg(test)]
mod tests;
