//! `/openapi/v2` in its protobuf form (gnostic's `openapi_v2.Document`): decoded here with
//! messages written from gnostic-models' `openapiv2/OpenAPIv2.proto` (independently of kapi's
//! encoder tables) and compared with the JSON document; upstream's negotiation, ETag and 304;
//! and the kubectl versions that read it (1.27 and 1.28 ask for nothing else) against kapi.

mod support;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha512};
use support::kapi::{Kapi, admin_tls};

/// The messages of OpenAPIv2.proto that the Kubernetes document uses (decoded once per test:
/// variant sizes do not matter).
#[allow(clippy::large_enum_variant)]
mod pb {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Document {
        #[prost(string, tag = "1")]
        pub swagger: String,
        #[prost(message, optional, tag = "2")]
        pub info: Option<Info>,
        #[prost(string, tag = "3")]
        pub host: String,
        #[prost(string, tag = "4")]
        pub base_path: String,
        #[prost(string, repeated, tag = "5")]
        pub schemes: Vec<String>,
        #[prost(string, repeated, tag = "6")]
        pub consumes: Vec<String>,
        #[prost(string, repeated, tag = "7")]
        pub produces: Vec<String>,
        #[prost(message, optional, tag = "8")]
        pub paths: Option<Paths>,
        #[prost(message, optional, tag = "9")]
        pub definitions: Option<Definitions>,
        #[prost(message, optional, tag = "10")]
        pub parameters: Option<ParameterDefinitions>,
        #[prost(message, repeated, tag = "12")]
        pub security: Vec<SecurityRequirement>,
        #[prost(message, optional, tag = "13")]
        pub security_definitions: Option<SecurityDefinitions>,
        #[prost(message, repeated, tag = "16")]
        pub vendor_extension: Vec<NamedAny>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Info {
        #[prost(string, tag = "1")]
        pub title: String,
        #[prost(string, tag = "2")]
        pub version: String,
        #[prost(string, tag = "3")]
        pub description: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Any {
        #[prost(bytes = "vec", optional, tag = "1")]
        pub value: Option<Vec<u8>>,
        #[prost(string, tag = "2")]
        pub yaml: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NamedAny {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<Any>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Paths {
        #[prost(message, repeated, tag = "1")]
        pub vendor_extension: Vec<NamedAny>,
        #[prost(message, repeated, tag = "2")]
        pub path: Vec<NamedPathItem>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NamedPathItem {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<PathItem>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PathItem {
        #[prost(string, tag = "1")]
        pub xref: String,
        #[prost(message, optional, tag = "2")]
        pub get: Option<Operation>,
        #[prost(message, optional, tag = "3")]
        pub put: Option<Operation>,
        #[prost(message, optional, tag = "4")]
        pub post: Option<Operation>,
        #[prost(message, optional, tag = "5")]
        pub delete: Option<Operation>,
        #[prost(message, optional, tag = "6")]
        pub options: Option<Operation>,
        #[prost(message, optional, tag = "7")]
        pub head: Option<Operation>,
        #[prost(message, optional, tag = "8")]
        pub patch: Option<Operation>,
        #[prost(message, repeated, tag = "9")]
        pub parameters: Vec<ParametersItem>,
        #[prost(message, repeated, tag = "10")]
        pub vendor_extension: Vec<NamedAny>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Operation {
        #[prost(string, repeated, tag = "1")]
        pub tags: Vec<String>,
        #[prost(string, tag = "2")]
        pub summary: String,
        #[prost(string, tag = "3")]
        pub description: String,
        #[prost(string, tag = "5")]
        pub operation_id: String,
        #[prost(string, repeated, tag = "6")]
        pub produces: Vec<String>,
        #[prost(string, repeated, tag = "7")]
        pub consumes: Vec<String>,
        #[prost(message, repeated, tag = "8")]
        pub parameters: Vec<ParametersItem>,
        #[prost(message, optional, tag = "9")]
        pub responses: Option<Responses>,
        #[prost(string, repeated, tag = "10")]
        pub schemes: Vec<String>,
        #[prost(bool, tag = "11")]
        pub deprecated: bool,
        #[prost(message, repeated, tag = "13")]
        pub vendor_extension: Vec<NamedAny>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ParametersItem {
        #[prost(oneof = "parameters_item::Oneof", tags = "1, 2")]
        pub oneof: Option<parameters_item::Oneof>,
    }
    pub mod parameters_item {
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Oneof {
            #[prost(message, tag = "1")]
            Parameter(super::Parameter),
            #[prost(message, tag = "2")]
            JsonReference(super::JsonReference),
        }
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Parameter {
        #[prost(oneof = "parameter::Oneof", tags = "1, 2")]
        pub oneof: Option<parameter::Oneof>,
    }
    pub mod parameter {
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Oneof {
            #[prost(message, tag = "1")]
            BodyParameter(super::BodyParameter),
            #[prost(message, tag = "2")]
            NonBodyParameter(super::NonBodyParameter),
        }
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct JsonReference {
        #[prost(string, tag = "1")]
        pub xref: String,
        #[prost(string, tag = "2")]
        pub description: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct BodyParameter {
        #[prost(string, tag = "1")]
        pub description: String,
        #[prost(string, tag = "2")]
        pub name: String,
        #[prost(string, tag = "3")]
        pub r#in: String,
        #[prost(bool, tag = "4")]
        pub required: bool,
        #[prost(message, optional, tag = "5")]
        pub schema: Option<Schema>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NonBodyParameter {
        #[prost(oneof = "non_body_parameter::Oneof", tags = "3, 4")]
        pub oneof: Option<non_body_parameter::Oneof>,
    }
    pub mod non_body_parameter {
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Oneof {
            #[prost(message, tag = "3")]
            Query(super::QueryParameterSubSchema),
            #[prost(message, tag = "4")]
            Path(super::PathParameterSubSchema),
        }
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct QueryParameterSubSchema {
        #[prost(bool, tag = "1")]
        pub required: bool,
        #[prost(string, tag = "2")]
        pub r#in: String,
        #[prost(string, tag = "3")]
        pub description: String,
        #[prost(string, tag = "4")]
        pub name: String,
        #[prost(bool, tag = "5")]
        pub allow_empty_value: bool,
        #[prost(string, tag = "6")]
        pub r#type: String,
        #[prost(bool, tag = "20")]
        pub unique_items: bool,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PathParameterSubSchema {
        #[prost(bool, tag = "1")]
        pub required: bool,
        #[prost(string, tag = "2")]
        pub r#in: String,
        #[prost(string, tag = "3")]
        pub description: String,
        #[prost(string, tag = "4")]
        pub name: String,
        #[prost(string, tag = "5")]
        pub r#type: String,
        #[prost(bool, tag = "19")]
        pub unique_items: bool,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Responses {
        #[prost(message, repeated, tag = "1")]
        pub response_code: Vec<NamedResponseValue>,
        #[prost(message, repeated, tag = "2")]
        pub vendor_extension: Vec<NamedAny>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NamedResponseValue {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<ResponseValue>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ResponseValue {
        #[prost(oneof = "response_value::Oneof", tags = "1, 2")]
        pub oneof: Option<response_value::Oneof>,
    }
    pub mod response_value {
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Oneof {
            #[prost(message, tag = "1")]
            Response(super::Response),
            #[prost(message, tag = "2")]
            JsonReference(super::JsonReference),
        }
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Response {
        #[prost(string, tag = "1")]
        pub description: String,
        #[prost(message, optional, tag = "2")]
        pub schema: Option<SchemaItem>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SchemaItem {
        #[prost(oneof = "schema_item::Oneof", tags = "1")]
        pub oneof: Option<schema_item::Oneof>,
    }
    pub mod schema_item {
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Oneof {
            #[prost(message, tag = "1")]
            Schema(super::Schema),
        }
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Schema {
        #[prost(string, tag = "1")]
        pub xref: String,
        #[prost(string, tag = "2")]
        pub format: String,
        #[prost(string, tag = "3")]
        pub title: String,
        #[prost(string, tag = "4")]
        pub description: String,
        #[prost(message, optional, tag = "5")]
        pub default: Option<Any>,
        #[prost(double, tag = "7")]
        pub maximum: f64,
        #[prost(double, tag = "9")]
        pub minimum: f64,
        #[prost(int64, tag = "11")]
        pub max_length: i64,
        #[prost(int64, tag = "12")]
        pub min_length: i64,
        #[prost(string, tag = "13")]
        pub pattern: String,
        #[prost(int64, tag = "14")]
        pub max_items: i64,
        #[prost(int64, tag = "15")]
        pub min_items: i64,
        #[prost(string, repeated, tag = "19")]
        pub required: Vec<String>,
        #[prost(message, repeated, tag = "20")]
        pub r#enum: Vec<Any>,
        /// Singular in the proto; read as repeated (same wire form) to break the type cycle.
        #[prost(message, repeated, tag = "21")]
        pub additional_properties: Vec<AdditionalPropertiesItem>,
        #[prost(message, optional, tag = "22")]
        pub r#type: Option<TypeItem>,
        #[prost(message, optional, tag = "23")]
        pub items: Option<ItemsItem>,
        #[prost(message, repeated, tag = "24")]
        pub all_of: Vec<Schema>,
        #[prost(message, optional, tag = "25")]
        pub properties: Option<Properties>,
        #[prost(bool, tag = "27")]
        pub read_only: bool,
        #[prost(message, repeated, tag = "31")]
        pub vendor_extension: Vec<NamedAny>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AdditionalPropertiesItem {
        #[prost(message, repeated, tag = "1")]
        pub schema: Vec<Schema>,
        #[prost(bool, optional, tag = "2")]
        pub boolean: Option<bool>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TypeItem {
        #[prost(string, repeated, tag = "1")]
        pub value: Vec<String>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ItemsItem {
        #[prost(message, repeated, tag = "1")]
        pub schema: Vec<Schema>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Properties {
        #[prost(message, repeated, tag = "1")]
        pub additional_properties: Vec<NamedSchema>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NamedSchema {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<Schema>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Definitions {
        #[prost(message, repeated, tag = "1")]
        pub additional_properties: Vec<NamedSchema>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ParameterDefinitions {
        #[prost(message, repeated, tag = "1")]
        pub additional_properties: Vec<NamedParameter>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NamedParameter {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<Parameter>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SecurityRequirement {
        #[prost(message, repeated, tag = "1")]
        pub additional_properties: Vec<NamedStringArray>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NamedStringArray {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<StringArray>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StringArray {
        #[prost(string, repeated, tag = "1")]
        pub value: Vec<String>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SecurityDefinitions {
        #[prost(message, repeated, tag = "1")]
        pub additional_properties: Vec<NamedSecurityDefinitionsItem>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NamedSecurityDefinitionsItem {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<SecurityDefinitionsItem>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SecurityDefinitionsItem {
        #[prost(message, optional, tag = "2")]
        pub api_key_security: Option<ApiKeySecurity>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ApiKeySecurity {
        #[prost(string, tag = "1")]
        pub r#type: String,
        #[prost(string, tag = "2")]
        pub name: String,
        #[prost(string, tag = "3")]
        pub r#in: String,
        #[prost(string, tag = "4")]
        pub description: String,
    }
}

// Back from the decoded messages to JSON, the inverse of gnostic's reading, for the keys the
// Kubernetes document has.

fn put_str(m: &mut Map<String, Value>, key: &str, s: &str) {
    if !s.is_empty() {
        m.insert(key.into(), json!(s));
    }
}

fn put_strs(m: &mut Map<String, Value>, key: &str, v: &[String]) {
    if !v.is_empty() {
        m.insert(key.into(), json!(v));
    }
}

fn yaml_value(any: &Option<pb::Any>) -> Value {
    let text = any.as_ref().map_or("", |a| a.yaml.as_str());
    kapi_codec::yaml::from_yaml(text.as_bytes()).expect("an Any's YAML parses")
}

fn put_extensions(m: &mut Map<String, Value>, ext: &[pb::NamedAny]) {
    for e in ext {
        assert!(e.name.starts_with("x-"), "{}", e.name);
        m.insert(e.name.clone(), yaml_value(&e.value));
    }
}

fn schema(s: &pb::Schema) -> Value {
    let mut m = Map::new();
    put_str(&mut m, "$ref", &s.xref);
    put_str(&mut m, "format", &s.format);
    put_str(&mut m, "title", &s.title);
    put_str(&mut m, "description", &s.description);
    if s.default.is_some() {
        m.insert("default".into(), yaml_value(&s.default));
    }
    put_str(&mut m, "pattern", &s.pattern);
    put_strs(&mut m, "required", &s.required);
    if !s.r#enum.is_empty() {
        let values = s.r#enum.iter().map(|a| yaml_value(&Some(a.clone())));
        m.insert("enum".into(), Value::Array(values.collect()));
    }
    if let Some(ap) = s.additional_properties.first() {
        let v = match (ap.schema.first(), ap.boolean) {
            (Some(inner), None) => schema(inner),
            (None, Some(b)) => json!(b),
            other => panic!("additionalProperties holds one member, not {other:?}"),
        };
        m.insert("additionalProperties".into(), v);
    }
    if let Some(t) = &s.r#type {
        let v = match t.value.as_slice() {
            [one] => json!(one),
            many => json!(many),
        };
        m.insert("type".into(), v);
    }
    if let Some(items) = &s.items {
        assert_eq!(items.schema.len(), 1);
        m.insert("items".into(), schema(&items.schema[0]));
    }
    if !s.all_of.is_empty() {
        m.insert(
            "allOf".into(),
            Value::Array(s.all_of.iter().map(schema).collect()),
        );
    }
    if let Some(p) = &s.properties {
        let mut props = Map::new();
        for n in &p.additional_properties {
            props.insert(n.name.clone(), schema(n.value.as_ref().expect("a value")));
        }
        m.insert("properties".into(), Value::Object(props));
    }
    for (key, n) in [
        ("maxLength", s.max_length),
        ("minLength", s.min_length),
        ("maxItems", s.max_items),
        ("minItems", s.min_items),
    ] {
        if n != 0 {
            m.insert(key.into(), json!(n));
        }
    }
    for (key, x) in [("maximum", s.maximum), ("minimum", s.minimum)] {
        if x != 0.0 {
            m.insert(key.into(), json!(x));
        }
    }
    if s.read_only {
        m.insert("readOnly".into(), json!(true));
    }
    put_extensions(&mut m, &s.vendor_extension);
    Value::Object(m)
}

fn parameter(p: &pb::Parameter) -> Value {
    let mut m = Map::new();
    match p.oneof.as_ref().expect("a parameter kind") {
        pb::parameter::Oneof::BodyParameter(b) => {
            put_str(&mut m, "description", &b.description);
            put_str(&mut m, "name", &b.name);
            put_str(&mut m, "in", &b.r#in);
            if b.required {
                m.insert("required".into(), json!(true));
            }
            m.insert(
                "schema".into(),
                schema(b.schema.as_ref().expect("a body schema")),
            );
        }
        pb::parameter::Oneof::NonBodyParameter(nb) => {
            let (required, place, description, name, kind, unique) =
                match nb.oneof.as_ref().expect("a non-body kind") {
                    pb::non_body_parameter::Oneof::Query(q) => {
                        assert_eq!(q.r#in, "query");
                        (
                            q.required,
                            &q.r#in,
                            &q.description,
                            &q.name,
                            &q.r#type,
                            q.unique_items,
                        )
                    }
                    pb::non_body_parameter::Oneof::Path(p) => {
                        assert_eq!(p.r#in, "path");
                        (
                            p.required,
                            &p.r#in,
                            &p.description,
                            &p.name,
                            &p.r#type,
                            p.unique_items,
                        )
                    }
                };
            if required {
                m.insert("required".into(), json!(true));
            }
            put_str(&mut m, "in", place);
            put_str(&mut m, "description", description);
            put_str(&mut m, "name", name);
            put_str(&mut m, "type", kind);
            if unique {
                m.insert("uniqueItems".into(), json!(true));
            }
        }
    }
    Value::Object(m)
}

fn parameters_item(p: &pb::ParametersItem) -> Value {
    match p.oneof.as_ref().expect("a parameter or a reference") {
        pb::parameters_item::Oneof::Parameter(p) => parameter(p),
        pb::parameters_item::Oneof::JsonReference(r) => json!({"$ref": r.xref}),
    }
}

fn operation(o: &pb::Operation) -> Value {
    let mut m = Map::new();
    put_strs(&mut m, "tags", &o.tags);
    put_str(&mut m, "summary", &o.summary);
    put_str(&mut m, "description", &o.description);
    put_str(&mut m, "operationId", &o.operation_id);
    put_strs(&mut m, "produces", &o.produces);
    put_strs(&mut m, "consumes", &o.consumes);
    if !o.parameters.is_empty() {
        let ps = o.parameters.iter().map(parameters_item).collect();
        m.insert("parameters".into(), Value::Array(ps));
    }
    if let Some(r) = &o.responses {
        let mut codes = Map::new();
        for c in &r.response_code {
            let v = match c.value.as_ref().and_then(|v| v.oneof.as_ref()) {
                Some(pb::response_value::Oneof::Response(resp)) => {
                    let mut rm = Map::new();
                    put_str(&mut rm, "description", &resp.description);
                    if let Some(pb::schema_item::Oneof::Schema(s)) =
                        resp.schema.as_ref().and_then(|s| s.oneof.as_ref())
                    {
                        rm.insert("schema".into(), schema(s));
                    }
                    Value::Object(rm)
                }
                Some(pb::response_value::Oneof::JsonReference(r)) => json!({"$ref": r.xref}),
                None => panic!("response {} has no value", c.name),
            };
            codes.insert(c.name.clone(), v);
        }
        m.insert("responses".into(), Value::Object(codes));
    }
    put_strs(&mut m, "schemes", &o.schemes);
    if o.deprecated {
        m.insert("deprecated".into(), json!(true));
    }
    put_extensions(&mut m, &o.vendor_extension);
    Value::Object(m)
}

fn document(d: &pb::Document) -> Value {
    let mut m = Map::new();
    put_str(&mut m, "swagger", &d.swagger);
    if let Some(info) = &d.info {
        let mut im = Map::new();
        put_str(&mut im, "title", &info.title);
        put_str(&mut im, "version", &info.version);
        put_str(&mut im, "description", &info.description);
        m.insert("info".into(), Value::Object(im));
    }
    let mut paths = Map::new();
    for p in &d.paths.as_ref().expect("paths").path {
        let item = p.value.as_ref().expect("a path item");
        let mut pm = Map::new();
        put_str(&mut pm, "$ref", &item.xref);
        for (verb, op) in [
            ("get", &item.get),
            ("put", &item.put),
            ("post", &item.post),
            ("delete", &item.delete),
            ("options", &item.options),
            ("head", &item.head),
            ("patch", &item.patch),
        ] {
            if let Some(op) = op {
                pm.insert(verb.into(), operation(op));
            }
        }
        if !item.parameters.is_empty() {
            let ps = item.parameters.iter().map(parameters_item).collect();
            pm.insert("parameters".into(), Value::Array(ps));
        }
        put_extensions(&mut pm, &item.vendor_extension);
        paths.insert(p.name.clone(), Value::Object(pm));
    }
    m.insert("paths".into(), Value::Object(paths));
    if let Some(defs) = &d.definitions {
        let mut dm = Map::new();
        for n in &defs.additional_properties {
            dm.insert(n.name.clone(), schema(n.value.as_ref().expect("a schema")));
        }
        m.insert("definitions".into(), Value::Object(dm));
    }
    if let Some(params) = &d.parameters {
        let mut pm = Map::new();
        for n in &params.additional_properties {
            pm.insert(
                n.name.clone(),
                parameter(n.value.as_ref().expect("a parameter")),
            );
        }
        m.insert("parameters".into(), Value::Object(pm));
    }
    if !d.security.is_empty() {
        let reqs = d.security.iter().map(|r| {
            let mut rm = Map::new();
            for n in &r.additional_properties {
                rm.insert(
                    n.name.clone(),
                    json!(n.value.as_ref().map_or(&Vec::new(), |v| &v.value)),
                );
            }
            Value::Object(rm)
        });
        m.insert("security".into(), Value::Array(reqs.collect()));
    }
    if let Some(sd) = &d.security_definitions {
        let mut sm = Map::new();
        for n in &sd.additional_properties {
            let key = n
                .value
                .as_ref()
                .and_then(|v| v.api_key_security.as_ref())
                .expect("an apiKey security definition");
            let mut km = Map::new();
            put_str(&mut km, "type", &key.r#type);
            put_str(&mut km, "name", &key.name);
            put_str(&mut km, "in", &key.r#in);
            put_str(&mut km, "description", &key.description);
            sm.insert(n.name.clone(), Value::Object(km));
        }
        m.insert("securityDefinitions".into(), Value::Object(sm));
    }
    put_extensions(&mut m, &d.vendor_extension);
    Value::Object(m)
}

/// The deprecated media type kubectl up to 1.28 sends.
const PROTOBUF_ACCEPT: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

struct Http {
    client: reqwest::blocking::Client,
    base: String,
}

impl Http {
    fn new(k: &Kapi) -> Http {
        Http {
            client: reqwest::blocking::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(60))
                .tls_backend_preconfigured(admin_tls(&k.data_dir, &[b"h2", b"http/1.1"]))
                .build()
                .expect("an HTTP client"),
            base: format!("https://127.0.0.1:{}", k.port),
        }
    }

    fn get(&self, path: &str, headers: &[(&str, &str)]) -> (u16, http::HeaderMap, Vec<u8>) {
        let mut req = self.client.get(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().expect("a response");
        let code = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().expect("a body").to_vec();
        (code, headers, body)
    }
}

fn header<'a>(h: &'a http::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

#[test]
fn the_protobuf_form_decodes_to_the_json_document() {
    let k = Kapi::start(&[], &[]);
    let http = Http::new(&k);

    let (code, jh, json_body) = http.get("/openapi/v2", &[("Accept", "application/json")]);
    assert_eq!(code, 200);
    assert_eq!(header(&jh, "content-type"), "application/json");
    let json_doc: Value = serde_json::from_slice(&json_body).expect("the JSON document");

    let (code, ph, pb_body) = http.get("/openapi/v2", &[("Accept", PROTOBUF_ACCEPT)]);
    assert_eq!(code, 200);
    assert_eq!(
        header(&ph, "content-type"),
        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    );
    let decoded: pb::Document = prost::Message::decode(&pb_body[..]).expect("a gnostic Document");
    assert_eq!(decoded.swagger, "2.0");
    assert!(decoded.vendor_extension.is_empty());
    let back = document(&decoded);
    for key in [
        "swagger",
        "info",
        "security",
        "securityDefinitions",
        "parameters",
    ] {
        assert_eq!(back[key], json_doc[key], "{key}");
    }
    let (defs, want_defs) = (&back["definitions"], &json_doc["definitions"]);
    assert_eq!(
        defs.as_object().map(|m| m.len()),
        want_defs.as_object().map(|m| m.len())
    );
    for (name, want) in want_defs.as_object().expect("definitions") {
        assert_eq!(&defs[name], want, "definition {name}");
    }
    let want_paths = json_doc["paths"].as_object().expect("paths");
    assert_eq!(
        back["paths"].as_object().map(|m| m.len()),
        Some(want_paths.len())
    );
    for (path, want) in want_paths {
        assert_eq!(&back["paths"][path], want, "path {path}");
    }
    assert_eq!(back, json_doc);

    // Map entries keep the document's order (kubectl's lookups do not care; byte identity
    // with upstream does): each path and definition comes after the one before it in the text.
    let text = String::from_utf8_lossy(&json_body);
    let at = |name: &str| {
        [format!("\"{name}\": {{"), format!("\"{name}\":{{")]
            .iter()
            .find_map(|p| text.find(p.as_str()))
            .unwrap_or_else(|| panic!("{name} is a key of the JSON text"))
    };
    let path_names = decoded
        .paths
        .as_ref()
        .expect("paths")
        .path
        .iter()
        .map(|p| &p.name);
    let def_names = decoded
        .definitions
        .as_ref()
        .expect("definitions")
        .additional_properties
        .iter()
        .map(|d| &d.name);
    for names in [path_names.collect::<Vec<_>>(), def_names.collect()] {
        let positions: Vec<usize> = names.iter().map(|n| at(n)).collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "keys out of document order"
        );
    }

    // One ETag for both forms of one version: the SHA-512 of the JSON, upper-case hex.
    let etag = format!(
        "\"{}\"",
        data_encoding::HEXUPPER.encode(&Sha512::digest(&json_body))
    );
    assert_eq!(header(&jh, "etag"), etag);
    assert_eq!(header(&ph, "etag"), etag);
    for h in [&jh, &ph] {
        let vary: Vec<&str> = h
            .get_all("vary")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        assert!(vary.iter().any(|v| v.contains("Accept")), "{vary:?}");
        assert_eq!(header(h, "accept-ranges"), "bytes");
        assert!(header(h, "last-modified").ends_with(" GMT"));
    }

    // If-None-Match with the current ETag: 304 and no body, for either form.
    for accept in ["application/json", PROTOBUF_ACCEPT] {
        let (code, h, body) = http.get(
            "/openapi/v2",
            &[("Accept", accept), ("If-None-Match", &etag)],
        );
        assert_eq!(code, 304, "{accept}");
        assert!(body.is_empty());
        assert_eq!(header(&h, "etag"), etag);
    }
    let (code, _, body) = http.get("/openapi/v2", &[("If-None-Match", "\"stale\"")]);
    assert_eq!(code, 200);
    assert_eq!(body, json_body);

    // Without If-None-Match, If-Modified-Since at Last-Modified is 304; an older date is 200.
    let last_modified = header(&jh, "last-modified").to_string();
    let (code, _, body) = http.get("/openapi/v2", &[("If-Modified-Since", &last_modified)]);
    assert_eq!(code, 304);
    assert!(body.is_empty());
    let (code, _, _) = http.get(
        "/openapi/v2",
        &[("If-Modified-Since", "Thu, 01 Jan 1970 00:00:00 GMT")],
    );
    assert_eq!(code, 200);

    // Accept lists as kube-openapi orders them.
    let (_, h, _) = http.get(
        "/openapi/v2",
        &[(
            "Accept",
            "application/json;q=0.5, application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
        )],
    );
    assert!(header(&h, "content-type").ends_with("+protobuf"));
    let (_, h, _) = http.get(
        "/openapi/v2",
        &[("Accept", "application/com.github.proto-openapi.spec.v2@v1.0+protobuf;q=0.2, application/json;q=0.8")],
    );
    assert_eq!(header(&h, "content-type"), "application/json");
    let (_, h, body) = http.get("/openapi/v2", &[("Accept", "*/*")]);
    assert_eq!(header(&h, "content-type"), "application/json");
    assert_eq!(body, json_body);
    let (code, h, body) = http.get("/openapi/v2", &[("Accept", "text/html")]);
    assert_eq!(code, 406);
    assert!(body.is_empty());
    assert!(header(&h, "vary").contains("Accept"));

    // gzip when asked, the same bytes once inflated.
    let (code, h, gz) = http.get(
        "/openapi/v2",
        &[("Accept", PROTOBUF_ACCEPT), ("Accept-Encoding", "gzip")],
    );
    assert_eq!(code, 200);
    assert_eq!(header(&h, "content-encoding"), "gzip");
    let mut inflated = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut inflated)
        .expect("gzip");
    assert_eq!(inflated, pb_body);

    // The pre-1.10 paths old clients fall back to are gone upstream, and here.
    for legacy in [
        "/swagger-2.0.0.pb-v1",
        "/swagger.json",
        "/swagger-2.0.0.json",
    ] {
        let (code, _, _) = http.get(legacy, &[]);
        assert_eq!(code, 404, "{legacy}");
    }
}

/// The kubectl binary of minor version `v` (the image ships 1.27 … 1.33 beside `kubectl`).
fn kubectl_version(v: &str) -> PathBuf {
    let real = std::fs::canonicalize("/usr/bin/kubectl").expect("/usr/bin/kubectl");
    let path = real
        .parent()
        .expect("kubectl's folder")
        .join(format!("kubectl.{v}"));
    assert!(path.exists(), "{} is missing", path.display());
    path
}

fn run(k: &Kapi, v: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(kubectl_version(v));
    cmd.arg("--kubeconfig")
        .arg(k.kubeconfig())
        .arg("--request-timeout=60s")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("kubectl runs");
    if let Some(input) = stdin {
        use std::io::Write;
        let _ = child
            .stdin
            .take()
            .map(|mut s| s.write_all(input.as_bytes()));
    }
    child.wait_with_output().expect("kubectl's output")
}

fn ok(k: &Kapi, v: &str, args: &[&str], stdin: Option<&str>) -> String {
    let out = run(k, v, args, stdin);
    assert!(
        out.status.success(),
        "kubectl.{v} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn deployment(name: &str, containers: &[(&str, &str)]) -> String {
    let mut s = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: default\n\
         spec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n\
         \x20   metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n"
    );
    for (c, image) in containers {
        s.push_str(&format!("      - name: {c}\n        image: {image}\n"));
    }
    s
}

#[test]
fn kubectl_1_27_and_1_28_explain_apply_create_and_get() {
    let k = Kapi::start(&[], &[]);
    for v in ["1.27", "1.28"] {
        let explained = ok(&k, v, &["explain", "pods.spec.containers"], None);
        assert!(
            explained.contains("KIND:") && explained.contains("Pod"),
            "{explained}"
        );
        assert!(
            explained.contains("containers <[]Container>"),
            "{explained}"
        );
        assert!(explained.contains("imagePullPolicy"), "{explained}");
        let explained = ok(&k, v, &["explain", "deployment.spec.strategy.type"], None);
        assert!(explained.contains("Deployment"), "{explained}");

        // Client-side apply: create, then an update that drops a container (a strategic merge
        // patch built from the document's patch strategy and merge key).
        let name = format!("web-{}", v.replace('.', "-"));
        let first = deployment(&name, &[("web", "nginx:1.25"), ("side", "busybox")]);
        let out = ok(&k, v, &["apply", "-f", "-"], Some(&first));
        assert!(out.contains("created"), "{out}");
        let second = deployment(&name, &[("web", "nginx:1.26")]);
        let out = ok(&k, v, &["apply", "-f", "-"], Some(&second));
        assert!(out.contains("configured"), "{out}");
        let got: Value = serde_json::from_str(&ok(
            &k,
            v,
            &["get", "deployment", &name, "-o", "json"],
            None,
        ))
        .expect("JSON");
        let containers = &got["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers.as_array().map(Vec::len), Some(1), "{containers}");
        assert_eq!(containers[0]["image"], "nginx:1.26");
        assert!(
            got["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
                .as_str()
                .is_some_and(|a| a.contains("nginx:1.26"))
        );

        let cm = format!("cm-{}", v.replace('.', "-"));
        ok(
            &k,
            v,
            &["create", "configmap", &cm, "--from-literal=a=b"],
            None,
        );
        let yaml = ok(&k, v, &["get", "configmap", &cm, "-o", "yaml"], None);
        assert!(yaml.contains("a: b"), "{yaml}");
        let listed = ok(&k, v, &["get", "deployments,configmaps"], None);
        assert!(listed.contains(&name) && listed.contains(&cm), "{listed}");
    }
}

#[test]
fn every_kubectl_from_1_27_to_1_33_applies_explains_and_gets() {
    let k = Kapi::start(&[], &[]);
    for v in ["1.27", "1.28", "1.29", "1.30", "1.31", "1.32", "1.33"] {
        let name = format!("app-{}", v.replace('.', "-"));
        let manifest = deployment(&name, &[("app", "nginx")]);
        let out = ok(&k, v, &["apply", "-f", "-"], Some(&manifest));
        assert!(out.contains("created"), "kubectl.{v}: {out}");
        let explained = ok(&k, v, &["explain", "deployments.spec.replicas"], None);
        assert!(explained.contains("replicas"), "kubectl.{v}: {explained}");
        let yaml = ok(&k, v, &["get", "deployment", &name, "-o", "yaml"], None);
        assert!(
            yaml.contains(&format!("name: {name}")),
            "kubectl.{v}: {yaml}"
        );
        assert!(yaml.contains("image: nginx"), "kubectl.{v}: {yaml}");
    }
}
