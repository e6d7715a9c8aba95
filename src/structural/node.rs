//! One node of a CRD's `openAPIV3Schema`, parsed once from JSON: the structural part (type,
//! properties, items, additionalProperties, the `x-kubernetes-*` extensions, default) and the
//! value validations kube-openapi checks (enum, bounds, lengths, pattern, allOf/anyOf/oneOf/not).

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::{Map, Value};

/// How deep a schema may nest (properties, items, additionalProperties, allOf/anyOf/oneOf/not
/// together). Real CRDs stay far below (the deepest in common operators is about 30); the bound
/// keeps parsing and every walk of an instance off the end of the stack.
pub const MAX_SCHEMA_DEPTH: usize = 128;

/// The compiled size a `pattern` may take: patterns are client text, compiled once per CRD.
const MAX_PATTERN_BYTES: usize = 1 << 20;

/// `additionalProperties`: a boolean or a schema.
#[derive(Debug, Clone)]
pub enum Additional {
    Allows(bool),
    Schema(Box<Node>),
}

/// A schema node. Field names follow the JSON keywords; `ty` is `""` when `type` is unset.
#[derive(Debug, Clone, Default)]
pub struct Node {
    pub ty: String,
    pub nullable: bool,
    /// The format after upstream strips the ones CRDs do not support (as written: `date-time`).
    pub format: String,
    pub default: Option<Value>,
    pub properties: BTreeMap<String, Node>,
    pub additional: Option<Additional>,
    pub items: Option<Box<Node>>,
    pub preserve_unknown: bool,
    pub embedded: bool,
    pub int_or_string: bool,
    pub list_type: Option<String>,
    pub list_map_keys: Vec<String>,
    pub map_type: Option<String>,
    pub enum_values: Option<Vec<Value>>,
    pub maximum: Option<f64>,
    pub exclusive_maximum: bool,
    pub minimum: Option<f64>,
    pub exclusive_minimum: bool,
    pub multiple_of: Option<f64>,
    pub max_length: Option<i64>,
    pub min_length: Option<i64>,
    /// The pattern's text and its compiled form (None when it does not compile).
    pub pattern: Option<(String, Option<Regex>)>,
    pub max_items: Option<i64>,
    pub min_items: Option<i64>,
    pub unique_items: bool,
    pub max_properties: Option<i64>,
    pub min_properties: Option<i64>,
    pub required: Vec<String>,
    pub all_of: Vec<Node>,
    pub any_of: Vec<Node>,
    pub one_of: Vec<Node>,
    pub not: Option<Box<Node>>,
    /// The schema nested deeper than `MAX_SCHEMA_DEPTH` here: its instances are kept as they
    /// are and not checked (CRD validation refuses such schemas).
    pub too_deep: bool,
}

/// Formats a CRD may use on strings (upstream's `supportedVersionedFormats` at 1.36), with
/// go-openapi's normalization (dashes dropped).
const STRING_FORMATS: &[&str] = &[
    "bsonobjectid",
    "uri",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "cidr",
    "mac",
    "uuid",
    "uuid3",
    "uuid4",
    "uuid5",
    "isbn",
    "isbn10",
    "isbn13",
    "creditcard",
    "ssn",
    "hexcolor",
    "rgbcolor",
    "byte",
    "password",
    "date",
    "duration",
    "datetime",
    "k8sshortname",
    "k8slongname",
];

/// The format upstream keeps for a type (`StripUnsupportedFormatsPostProcessorForVersion`).
fn supported_format(ty: &str, format: &str) -> String {
    let keep = match ty {
        "" | "string" => STRING_FORMATS.contains(&format.replace('-', "").as_str()),
        "integer" => matches!(format, "int32" | "int64"),
        "number" => matches!(format, "float" | "double"),
        _ => false,
    };
    match keep {
        true => format.to_string(),
        false => String::new(),
    }
}

fn int(m: &Map<String, Value>, k: &str) -> Option<i64> {
    m.get(k).and_then(|v| {
        v.as_i64()
            .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
    })
}

fn float(m: &Map<String, Value>, k: &str) -> Option<f64> {
    m.get(k).and_then(Value::as_f64)
}

fn flag(m: &Map<String, Value>, k: &str) -> bool {
    m.get(k).and_then(Value::as_bool).unwrap_or(false)
}

fn text(m: &Map<String, Value>, k: &str) -> Option<String> {
    m.get(k).and_then(Value::as_str).map(str::to_string)
}

/// Compiles a schema `pattern` as Go's RE2 would (unanchored), bounded in size.
pub fn compile_pattern(p: &str) -> Result<Regex, regex::Error> {
    regex::RegexBuilder::new(p)
        .size_limit(MAX_PATTERN_BYTES)
        .dfa_size_limit(MAX_PATTERN_BYTES)
        .build()
}

impl Node {
    /// Parses a schema object; anything that is not one is an empty schema.
    pub fn parse(v: &Value, depth: usize) -> Node {
        let Some(m) = v.as_object() else {
            return Node::default();
        };
        if depth >= MAX_SCHEMA_DEPTH {
            return Node {
                too_deep: true,
                preserve_unknown: true,
                ..Node::default()
            };
        }
        let child = |v: &Value| Node::parse(v, depth + 1);
        let list = |k: &str| -> Vec<Node> {
            m.get(k)
                .and_then(Value::as_array)
                .map(|a| a.iter().map(child).collect())
                .unwrap_or_default()
        };
        let ty = text(m, "type").unwrap_or_default();
        let format = supported_format(&ty, &text(m, "format").unwrap_or_default());
        let properties = m
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.iter().map(|(k, v)| (k.clone(), child(v))).collect())
            .unwrap_or_default();
        let additional = match m.get("additionalProperties") {
            Some(Value::Bool(b)) => Some(Additional::Allows(*b)),
            Some(v @ Value::Object(_)) => Some(Additional::Schema(Box::new(child(v)))),
            _ => None,
        };
        let items = match m.get("items") {
            Some(v @ Value::Object(_)) => Some(Box::new(child(v))),
            _ => None,
        };
        let pattern = text(m, "pattern").map(|p| {
            let re = compile_pattern(&p).ok();
            (p, re)
        });
        let strings = |k: &str| -> Vec<String> {
            m.get(k)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        Node {
            ty,
            nullable: flag(m, "nullable"),
            format,
            default: m.get("default").cloned(),
            properties,
            additional,
            items,
            preserve_unknown: flag(m, "x-kubernetes-preserve-unknown-fields"),
            embedded: flag(m, "x-kubernetes-embedded-resource"),
            int_or_string: flag(m, "x-kubernetes-int-or-string"),
            list_type: text(m, "x-kubernetes-list-type"),
            list_map_keys: strings("x-kubernetes-list-map-keys"),
            map_type: text(m, "x-kubernetes-map-type"),
            enum_values: m.get("enum").and_then(Value::as_array).cloned(),
            maximum: float(m, "maximum"),
            exclusive_maximum: flag(m, "exclusiveMaximum"),
            minimum: float(m, "minimum"),
            exclusive_minimum: flag(m, "exclusiveMinimum"),
            multiple_of: float(m, "multipleOf"),
            max_length: int(m, "maxLength"),
            min_length: int(m, "minLength"),
            pattern,
            max_items: int(m, "maxItems"),
            min_items: int(m, "minItems"),
            unique_items: flag(m, "uniqueItems"),
            max_properties: int(m, "maxProperties"),
            min_properties: int(m, "minProperties"),
            required: strings("required"),
            all_of: list("allOf"),
            any_of: list("anyOf"),
            one_of: list("oneOf"),
            not: m
                .get("not")
                .filter(|v| v.is_object())
                .map(|v| Box::new(child(v))),
            too_deep: false,
        }
    }

    /// The types an instance may have, as kube-openapi sees them (int-or-string is two).
    pub fn types(&self) -> Vec<&str> {
        if self.int_or_string {
            return vec!["integer", "string"];
        }
        match self.ty.as_str() {
            "" => Vec::new(),
            t => vec![t],
        }
    }

    /// The schema a member `key` of an object instance follows, if any (a property, else
    /// additionalProperties' schema).
    pub fn member(&self, key: &str) -> Option<&Node> {
        self.properties.get(key).or(match &self.additional {
            Some(Additional::Schema(s)) => Some(s),
            _ => None,
        })
    }
}
