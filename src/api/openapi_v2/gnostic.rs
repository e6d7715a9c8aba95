//! The OpenAPI v2 document in gnostic's `openapi_v2.Document` protobuf (field numbers from
//! gnostic-models' `openapiv2/OpenAPIv2.proto`), built the way gnostic's `ParseDocument` reads
//! the JSON: one table per message, maps as repeated `Named*` pairs in document order, `x-`
//! keys as vendor extensions holding their YAML, proto3 zero values left out. Hand-written
//! (no protoc here); runs once per document version (bench: `benches/openapi_v2.rs`).

use super::tree::Node;
use super::yaml::to_yaml;

/// How one field of a message is read from the JSON node and written.
enum Kind {
    /// `string`: a string or integer scalar (gnostic's `StringForScalarNode`).
    Str,
    /// `bool`: a JSON boolean.
    Bool,
    /// `int64`: an integer literal.
    Int,
    /// `double`: any number.
    Double,
    /// `repeated string` from an array.
    Strings,
    /// `Any`: the value as YAML.
    Any,
    /// `repeated Any` from an array.
    Anys,
    /// A nested message.
    Msg(&'static Message),
    /// A repeated message from an array.
    Msgs(&'static Message),
    /// `repeated Named*` from this node's own keys that `keys` admits, each `{name, value}`.
    Named(Keys, &'static Message),
    /// `repeated NamedString` from this node's own keys.
    NamedStrings,
    /// `repeated NamedAny` from this node's own keys that start with `x-`.
    Extensions,
}

/// Which of a map's keys a `Named` field takes.
#[derive(Clone, Copy)]
enum Keys {
    All,
    /// Paths: keys starting with `/`.
    Paths,
    /// Responses: three digits, or `default`.
    ResponseCodes,
}

struct Field {
    /// The JSON key (unused by the kinds that read the node's own keys).
    json: &'static str,
    number: u32,
    kind: Kind,
}

/// A message: its fields in field-number order, or a oneof wrapper that picks its member.
enum Message {
    Fields(&'static [Field]),
    /// A value-level union (`AdditionalPropertiesItem`, `ParametersItem`, ...).
    Oneof(fn(&Node, &mut Vec<u8>)),
    /// `TypeItem`: a type name or an array of them.
    TypeItem,
    /// `ItemsItem`: gnostic always reads `items` as one schema.
    ItemsItem,
    /// `StringArray`: an array of strings.
    StringArray,
}

const fn f(json: &'static str, number: u32, kind: Kind) -> Field {
    Field { json, number, kind }
}

// The messages of OpenAPIv2.proto that documents use, in the proto's field order.

static DOCUMENT: Message = Message::Fields(&[
    f("swagger", 1, Kind::Str),
    f("info", 2, Kind::Msg(&INFO)),
    f("host", 3, Kind::Str),
    f("basePath", 4, Kind::Str),
    f("schemes", 5, Kind::Strings),
    f("consumes", 6, Kind::Strings),
    f("produces", 7, Kind::Strings),
    f("paths", 8, Kind::Msg(&PATHS)),
    f("definitions", 9, Kind::Msg(&DEFINITIONS)),
    f("parameters", 10, Kind::Msg(&PARAMETER_DEFINITIONS)),
    f("responses", 11, Kind::Msg(&RESPONSE_DEFINITIONS)),
    f("security", 12, Kind::Msgs(&SECURITY_REQUIREMENT)),
    f("securityDefinitions", 13, Kind::Msg(&SECURITY_DEFINITIONS)),
    f("tags", 14, Kind::Msgs(&TAG)),
    f("externalDocs", 15, Kind::Msg(&EXTERNAL_DOCS)),
    f("", 16, Kind::Extensions),
]);

static INFO: Message = Message::Fields(&[
    f("title", 1, Kind::Str),
    f("version", 2, Kind::Str),
    f("description", 3, Kind::Str),
    f("termsOfService", 4, Kind::Str),
    f("contact", 5, Kind::Msg(&CONTACT)),
    f("license", 6, Kind::Msg(&LICENSE)),
    f("", 7, Kind::Extensions),
]);

static CONTACT: Message = Message::Fields(&[
    f("name", 1, Kind::Str),
    f("url", 2, Kind::Str),
    f("email", 3, Kind::Str),
    f("", 4, Kind::Extensions),
]);

static LICENSE: Message = Message::Fields(&[
    f("name", 1, Kind::Str),
    f("url", 2, Kind::Str),
    f("", 3, Kind::Extensions),
]);

static EXTERNAL_DOCS: Message = Message::Fields(&[
    f("description", 1, Kind::Str),
    f("url", 2, Kind::Str),
    f("", 3, Kind::Extensions),
]);

static TAG: Message = Message::Fields(&[
    f("name", 1, Kind::Str),
    f("description", 2, Kind::Str),
    f("externalDocs", 3, Kind::Msg(&EXTERNAL_DOCS)),
    f("", 4, Kind::Extensions),
]);

static PATHS: Message = Message::Fields(&[
    f("", 1, Kind::Extensions),
    f("", 2, Kind::Named(Keys::Paths, &PATH_ITEM)),
]);

static PATH_ITEM: Message = Message::Fields(&[
    f("$ref", 1, Kind::Str),
    f("get", 2, Kind::Msg(&OPERATION)),
    f("put", 3, Kind::Msg(&OPERATION)),
    f("post", 4, Kind::Msg(&OPERATION)),
    f("delete", 5, Kind::Msg(&OPERATION)),
    f("options", 6, Kind::Msg(&OPERATION)),
    f("head", 7, Kind::Msg(&OPERATION)),
    f("patch", 8, Kind::Msg(&OPERATION)),
    f("parameters", 9, Kind::Msgs(&PARAMETERS_ITEM)),
    f("", 10, Kind::Extensions),
]);

static OPERATION: Message = Message::Fields(&[
    f("tags", 1, Kind::Strings),
    f("summary", 2, Kind::Str),
    f("description", 3, Kind::Str),
    f("externalDocs", 4, Kind::Msg(&EXTERNAL_DOCS)),
    f("operationId", 5, Kind::Str),
    f("produces", 6, Kind::Strings),
    f("consumes", 7, Kind::Strings),
    f("parameters", 8, Kind::Msgs(&PARAMETERS_ITEM)),
    f("responses", 9, Kind::Msg(&RESPONSES)),
    f("schemes", 10, Kind::Strings),
    f("deprecated", 11, Kind::Bool),
    f("security", 12, Kind::Msgs(&SECURITY_REQUIREMENT)),
    f("", 13, Kind::Extensions),
]);

static RESPONSES: Message = Message::Fields(&[
    f("", 1, Kind::Named(Keys::ResponseCodes, &RESPONSE_VALUE)),
    f("", 2, Kind::Extensions),
]);

static RESPONSE_DEFINITIONS: Message =
    Message::Fields(&[f("", 1, Kind::Named(Keys::All, &RESPONSE))]);

static RESPONSE: Message = Message::Fields(&[
    f("description", 1, Kind::Str),
    f("schema", 2, Kind::Msg(&SCHEMA_ITEM)),
    f("headers", 3, Kind::Msg(&HEADERS)),
    f("examples", 4, Kind::Msg(&EXAMPLES)),
    f("", 5, Kind::Extensions),
]);

static HEADERS: Message = Message::Fields(&[f("", 1, Kind::Named(Keys::All, &HEADER))]);

static EXAMPLES: Message = Message::Fields(&[f("", 1, Kind::Named(Keys::All, &ANY))]);

/// `Any` as a message of its own (the value of `NamedAny`).
static ANY: Message = Message::Oneof(any);

static HEADER: Message = Message::Fields(&[
    f("type", 1, Kind::Str),
    f("format", 2, Kind::Str),
    f("items", 3, Kind::Msg(&PRIMITIVES_ITEMS)),
    f("collectionFormat", 4, Kind::Str),
    f("default", 5, Kind::Any),
    f("maximum", 6, Kind::Double),
    f("exclusiveMaximum", 7, Kind::Bool),
    f("minimum", 8, Kind::Double),
    f("exclusiveMinimum", 9, Kind::Bool),
    f("maxLength", 10, Kind::Int),
    f("minLength", 11, Kind::Int),
    f("pattern", 12, Kind::Str),
    f("maxItems", 13, Kind::Int),
    f("minItems", 14, Kind::Int),
    f("uniqueItems", 15, Kind::Bool),
    f("enum", 16, Kind::Anys),
    f("multipleOf", 17, Kind::Double),
    f("description", 18, Kind::Str),
    f("", 19, Kind::Extensions),
]);

/// `PrimitivesItems` has `Header`'s first seventeen fields, then its extensions at 18.
static PRIMITIVES_ITEMS: Message = Message::Fields(&[
    f("type", 1, Kind::Str),
    f("format", 2, Kind::Str),
    f("items", 3, Kind::Msg(&PRIMITIVES_ITEMS)),
    f("collectionFormat", 4, Kind::Str),
    f("default", 5, Kind::Any),
    f("maximum", 6, Kind::Double),
    f("exclusiveMaximum", 7, Kind::Bool),
    f("minimum", 8, Kind::Double),
    f("exclusiveMinimum", 9, Kind::Bool),
    f("maxLength", 10, Kind::Int),
    f("minLength", 11, Kind::Int),
    f("pattern", 12, Kind::Str),
    f("maxItems", 13, Kind::Int),
    f("minItems", 14, Kind::Int),
    f("uniqueItems", 15, Kind::Bool),
    f("enum", 16, Kind::Anys),
    f("multipleOf", 17, Kind::Double),
    f("", 18, Kind::Extensions),
]);

static PARAMETER_DEFINITIONS: Message =
    Message::Fields(&[f("", 1, Kind::Named(Keys::All, &PARAMETER))]);

static PARAMETERS_ITEM: Message = Message::Oneof(parameters_item);
static PARAMETER: Message = Message::Oneof(parameter);

static JSON_REFERENCE: Message =
    Message::Fields(&[f("$ref", 1, Kind::Str), f("description", 2, Kind::Str)]);

static BODY_PARAMETER: Message = Message::Fields(&[
    f("description", 1, Kind::Str),
    f("name", 2, Kind::Str),
    f("in", 3, Kind::Str),
    f("required", 4, Kind::Bool),
    f("schema", 5, Kind::Msg(&SCHEMA)),
    f("", 6, Kind::Extensions),
]);

/// `HeaderParameterSubSchema` and `PathParameterSubSchema` (same fields and numbers).
static HEADER_OR_PATH_PARAMETER: Message = Message::Fields(&[
    f("required", 1, Kind::Bool),
    f("in", 2, Kind::Str),
    f("description", 3, Kind::Str),
    f("name", 4, Kind::Str),
    f("type", 5, Kind::Str),
    f("format", 6, Kind::Str),
    f("items", 7, Kind::Msg(&PRIMITIVES_ITEMS)),
    f("collectionFormat", 8, Kind::Str),
    f("default", 9, Kind::Any),
    f("maximum", 10, Kind::Double),
    f("exclusiveMaximum", 11, Kind::Bool),
    f("minimum", 12, Kind::Double),
    f("exclusiveMinimum", 13, Kind::Bool),
    f("maxLength", 14, Kind::Int),
    f("minLength", 15, Kind::Int),
    f("pattern", 16, Kind::Str),
    f("maxItems", 17, Kind::Int),
    f("minItems", 18, Kind::Int),
    f("uniqueItems", 19, Kind::Bool),
    f("enum", 20, Kind::Anys),
    f("multipleOf", 21, Kind::Double),
    f("", 22, Kind::Extensions),
]);

/// `QueryParameterSubSchema` and `FormDataParameterSubSchema` (same fields and numbers).
static QUERY_OR_FORM_PARAMETER: Message = Message::Fields(&[
    f("required", 1, Kind::Bool),
    f("in", 2, Kind::Str),
    f("description", 3, Kind::Str),
    f("name", 4, Kind::Str),
    f("allowEmptyValue", 5, Kind::Bool),
    f("type", 6, Kind::Str),
    f("format", 7, Kind::Str),
    f("items", 8, Kind::Msg(&PRIMITIVES_ITEMS)),
    f("collectionFormat", 9, Kind::Str),
    f("default", 10, Kind::Any),
    f("maximum", 11, Kind::Double),
    f("exclusiveMaximum", 12, Kind::Bool),
    f("minimum", 13, Kind::Double),
    f("exclusiveMinimum", 14, Kind::Bool),
    f("maxLength", 15, Kind::Int),
    f("minLength", 16, Kind::Int),
    f("pattern", 17, Kind::Str),
    f("maxItems", 18, Kind::Int),
    f("minItems", 19, Kind::Int),
    f("uniqueItems", 20, Kind::Bool),
    f("enum", 21, Kind::Anys),
    f("multipleOf", 22, Kind::Double),
    f("", 23, Kind::Extensions),
]);

static DEFINITIONS: Message = Message::Fields(&[f("", 1, Kind::Named(Keys::All, &SCHEMA))]);
static PROPERTIES: Message = Message::Fields(&[f("", 1, Kind::Named(Keys::All, &SCHEMA))]);

static SCHEMA: Message = Message::Fields(&[
    f("$ref", 1, Kind::Str),
    f("format", 2, Kind::Str),
    f("title", 3, Kind::Str),
    f("description", 4, Kind::Str),
    f("default", 5, Kind::Any),
    f("multipleOf", 6, Kind::Double),
    f("maximum", 7, Kind::Double),
    f("exclusiveMaximum", 8, Kind::Bool),
    f("minimum", 9, Kind::Double),
    f("exclusiveMinimum", 10, Kind::Bool),
    f("maxLength", 11, Kind::Int),
    f("minLength", 12, Kind::Int),
    f("pattern", 13, Kind::Str),
    f("maxItems", 14, Kind::Int),
    f("minItems", 15, Kind::Int),
    f("uniqueItems", 16, Kind::Bool),
    f("maxProperties", 17, Kind::Int),
    f("minProperties", 18, Kind::Int),
    f("required", 19, Kind::Strings),
    f("enum", 20, Kind::Anys),
    f(
        "additionalProperties",
        21,
        Kind::Msg(&ADDITIONAL_PROPERTIES_ITEM),
    ),
    f("type", 22, Kind::Msg(&TYPE_ITEM)),
    f("items", 23, Kind::Msg(&ITEMS_ITEM)),
    f("allOf", 24, Kind::Msgs(&SCHEMA)),
    f("properties", 25, Kind::Msg(&PROPERTIES)),
    f("discriminator", 26, Kind::Str),
    f("readOnly", 27, Kind::Bool),
    f("xml", 28, Kind::Msg(&XML)),
    f("externalDocs", 29, Kind::Msg(&EXTERNAL_DOCS)),
    f("example", 30, Kind::Any),
    f("", 31, Kind::Extensions),
]);

static FILE_SCHEMA: Message = Message::Fields(&[
    f("format", 1, Kind::Str),
    f("title", 2, Kind::Str),
    f("description", 3, Kind::Str),
    f("default", 4, Kind::Any),
    f("required", 5, Kind::Strings),
    f("type", 6, Kind::Str),
    f("readOnly", 7, Kind::Bool),
    f("externalDocs", 8, Kind::Msg(&EXTERNAL_DOCS)),
    f("example", 9, Kind::Any),
    f("", 10, Kind::Extensions),
]);

static XML: Message = Message::Fields(&[
    f("name", 1, Kind::Str),
    f("namespace", 2, Kind::Str),
    f("prefix", 3, Kind::Str),
    f("attribute", 4, Kind::Bool),
    f("wrapped", 5, Kind::Bool),
    f("", 6, Kind::Extensions),
]);

static ADDITIONAL_PROPERTIES_ITEM: Message = Message::Oneof(additional_properties_item);
static TYPE_ITEM: Message = Message::TypeItem;
static ITEMS_ITEM: Message = Message::ItemsItem;
static SCHEMA_ITEM: Message = Message::Oneof(schema_item);
static RESPONSE_VALUE: Message = Message::Oneof(response_value);

static SECURITY_REQUIREMENT: Message =
    Message::Fields(&[f("", 1, Kind::Named(Keys::All, &STRING_ARRAY))]);
static STRING_ARRAY: Message = Message::StringArray;
static SECURITY_DEFINITIONS: Message =
    Message::Fields(&[f("", 1, Kind::Named(Keys::All, &SECURITY_DEFINITIONS_ITEM))]);
static SECURITY_DEFINITIONS_ITEM: Message = Message::Oneof(security_definitions_item);

static BASIC_AUTHENTICATION_SECURITY: Message = Message::Fields(&[
    f("type", 1, Kind::Str),
    f("description", 2, Kind::Str),
    f("", 3, Kind::Extensions),
]);

static API_KEY_SECURITY: Message = Message::Fields(&[
    f("type", 1, Kind::Str),
    f("name", 2, Kind::Str),
    f("in", 3, Kind::Str),
    f("description", 4, Kind::Str),
    f("", 5, Kind::Extensions),
]);

static OAUTH2_SCOPES: Message = Message::Fields(&[f("", 1, Kind::NamedStrings)]);

static OAUTH2_ACCESS_CODE_SECURITY: Message = Message::Fields(&[
    f("type", 1, Kind::Str),
    f("flow", 2, Kind::Str),
    f("scopes", 3, Kind::Msg(&OAUTH2_SCOPES)),
    f("authorizationUrl", 4, Kind::Str),
    f("tokenUrl", 5, Kind::Str),
    f("description", 6, Kind::Str),
    f("", 7, Kind::Extensions),
]);

/// `Oauth2ImplicitSecurity`: `authorizationUrl` where the others have `tokenUrl`.
static OAUTH2_IMPLICIT_SECURITY: Message = Message::Fields(&[
    f("type", 1, Kind::Str),
    f("flow", 2, Kind::Str),
    f("scopes", 3, Kind::Msg(&OAUTH2_SCOPES)),
    f("authorizationUrl", 4, Kind::Str),
    f("description", 5, Kind::Str),
    f("", 6, Kind::Extensions),
]);

/// `Oauth2PasswordSecurity` and `Oauth2ApplicationSecurity` (same fields and numbers).
static OAUTH2_TOKEN_SECURITY: Message = Message::Fields(&[
    f("type", 1, Kind::Str),
    f("flow", 2, Kind::Str),
    f("scopes", 3, Kind::Msg(&OAUTH2_SCOPES)),
    f("tokenUrl", 4, Kind::Str),
    f("description", 5, Kind::Str),
    f("", 6, Kind::Extensions),
]);

// The unions: gnostic tries each member and keeps the last that parses; these pick the
// member the same inputs end in.

fn any(node: &Node, out: &mut Vec<u8>) {
    put_str(out, 2, &to_yaml(node));
}

/// A `{"$ref": ...}` is a JSON reference (field 2); anything else a parameter (field 1).
fn parameters_item(node: &Node, out: &mut Vec<u8>) {
    if node.get("$ref").is_some() {
        put_msg(out, 2, &JSON_REFERENCE, node);
    } else {
        put_msg(out, 1, &PARAMETER, node);
    }
}

/// `in: body` is a body parameter; the others a non-body one, by where they are.
fn parameter(node: &Node, out: &mut Vec<u8>) {
    let place = node.get("in").and_then(Node::as_scalar_string);
    if place == Some("body") {
        put_msg(out, 1, &BODY_PARAMETER, node);
        return;
    }
    let (number, msg) = match place {
        Some("header") => (1, &HEADER_OR_PATH_PARAMETER),
        Some("formData") => (2, &QUERY_OR_FORM_PARAMETER),
        Some("query") => (3, &QUERY_OR_FORM_PARAMETER),
        Some("path") => (4, &HEADER_OR_PATH_PARAMETER),
        _ => return,
    };
    let mut inner = Vec::new();
    put_msg(&mut inner, number, msg, node);
    put_bytes(out, 2, &inner);
}

fn response_value(node: &Node, out: &mut Vec<u8>) {
    if node.get("$ref").is_some() {
        put_msg(out, 2, &JSON_REFERENCE, node);
    } else {
        put_msg(out, 1, &RESPONSE, node);
    }
}

fn schema_item(node: &Node, out: &mut Vec<u8>) {
    if node.get("type").and_then(Node::as_scalar_string) == Some("file") {
        put_msg(out, 2, &FILE_SCHEMA, node);
    } else {
        put_msg(out, 1, &SCHEMA, node);
    }
}

/// A schema (field 1) or a boolean (field 2, written even when false: it is a oneof member).
fn additional_properties_item(node: &Node, out: &mut Vec<u8>) {
    match node {
        Node::Bool(b) => {
            put_tag(out, 2, 0);
            put_varint(out, u64::from(*b));
        }
        _ => put_msg(out, 1, &SCHEMA, node),
    }
}

fn security_definitions_item(node: &Node, out: &mut Vec<u8>) {
    let kind = node.get("type").and_then(Node::as_scalar_string);
    let flow = node.get("flow").and_then(Node::as_scalar_string);
    let (number, msg) = match (kind, flow) {
        (Some("basic"), _) => (1, &BASIC_AUTHENTICATION_SECURITY),
        (Some("apiKey"), _) => (2, &API_KEY_SECURITY),
        (Some("oauth2"), Some("implicit")) => (3, &OAUTH2_IMPLICIT_SECURITY),
        (Some("oauth2"), Some("password")) => (4, &OAUTH2_TOKEN_SECURITY),
        (Some("oauth2"), Some("application")) => (5, &OAUTH2_TOKEN_SECURITY),
        (Some("oauth2"), Some("accessCode")) => (6, &OAUTH2_ACCESS_CODE_SECURITY),
        _ => return,
    };
    put_msg(out, number, msg, node);
}

/// Writes `node` as the body of `msg` (no tag, no length).
fn message(msg: &Message, node: &Node, out: &mut Vec<u8>) {
    match msg {
        Message::Fields(fields) => {
            for field in *fields {
                write_field(field, node, out);
            }
        }
        Message::Oneof(pick) => pick(node, out),
        Message::TypeItem => match node {
            Node::Seq(items) => {
                for item in items {
                    if let Some(s) = scalar_text(item) {
                        put_str_always(out, 1, &s);
                    }
                }
            }
            other => {
                if let Some(s) = scalar_text(other) {
                    put_str_always(out, 1, &s);
                }
            }
        },
        Message::ItemsItem => put_msg(out, 1, &SCHEMA, node),
        Message::StringArray => {
            if let Node::Seq(items) = node {
                for item in items {
                    put_str_always(out, 1, item.as_scalar_string().unwrap_or(""));
                }
            }
        }
    }
}

/// A scalar's text as YAML keeps it (`TypeItem` takes any scalar).
fn scalar_text(n: &Node) -> Option<String> {
    match n {
        Node::Str(s) | Node::Int(s) => Some(s.clone()),
        Node::Bool(b) => Some(b.to_string()),
        Node::Null => Some("null".into()),
        Node::Float(x) => Some(x.to_string()),
        Node::Map(_) | Node::Seq(_) => None,
    }
}

fn write_field(field: &Field, node: &Node, out: &mut Vec<u8>) {
    let n = field.number;
    match &field.kind {
        Kind::Extensions => {
            for (k, v) in node.entries() {
                if k.starts_with("x-") {
                    put_named(out, n, k, &ANY, v);
                }
            }
        }
        Kind::NamedStrings => {
            for (k, v) in node.entries() {
                let mut pair = Vec::new();
                put_str(&mut pair, 1, k);
                put_str(&mut pair, 2, v.as_scalar_string().unwrap_or(""));
                put_bytes(out, n, &pair);
            }
        }
        Kind::Named(keys, msg) => {
            for (k, v) in node.entries() {
                let admitted = match keys {
                    Keys::All => true,
                    Keys::Paths => k.starts_with('/'),
                    Keys::ResponseCodes => {
                        k == "default" || (k.len() == 3 && k.bytes().all(|b| b.is_ascii_digit()))
                    }
                };
                if admitted {
                    put_named(out, n, k, msg, v);
                }
            }
        }
        kind => {
            let Some(v) = node.get(field.json) else {
                return;
            };
            match kind {
                Kind::Str => {
                    if let Some(s) = v.as_scalar_string() {
                        put_str(out, n, s);
                    }
                }
                Kind::Bool => {
                    if let Node::Bool(true) = v {
                        put_tag(out, n, 0);
                        put_varint(out, 1);
                    }
                }
                Kind::Int => {
                    if let Some(i) = int(v)
                        && i != 0
                    {
                        put_tag(out, n, 0);
                        put_varint(out, i as u64);
                    }
                }
                Kind::Double => {
                    if let Some(x) = double(v)
                        && x.to_bits() != 0
                    {
                        put_tag(out, n, 1);
                        out.extend_from_slice(&x.to_le_bytes());
                    }
                }
                Kind::Strings => {
                    if let Node::Seq(items) = v {
                        for item in items {
                            if let Some(s) = item.as_scalar_string() {
                                put_str_always(out, n, s);
                            }
                        }
                    }
                }
                Kind::Any => put_msg(out, n, &ANY, v),
                Kind::Anys => {
                    if let Node::Seq(items) = v {
                        for item in items {
                            put_msg(out, n, &ANY, item);
                        }
                    }
                }
                Kind::Msg(msg) => put_msg(out, n, msg, v),
                Kind::Msgs(msg) => {
                    if let Node::Seq(items) = v {
                        for item in items {
                            put_msg(out, n, msg, item);
                        }
                    }
                }
                Kind::Extensions | Kind::NamedStrings | Kind::Named(..) => {}
            }
        }
    }
}

fn int(v: &Node) -> Option<i64> {
    match v {
        Node::Int(s) => s.parse().ok(),
        _ => None,
    }
}

fn double(v: &Node) -> Option<f64> {
    match v {
        Node::Int(s) => s.parse().ok(),
        Node::Float(x) => Some(*x),
        _ => None,
    }
}

/// A `Named*` pair: `{1: name, 2: value}`.
fn put_named(out: &mut Vec<u8>, number: u32, name: &str, msg: &Message, value: &Node) {
    let mut pair = Vec::new();
    put_str(&mut pair, 1, name);
    put_msg(&mut pair, 2, msg, value);
    put_bytes(out, number, &pair);
}

fn put_msg(out: &mut Vec<u8>, number: u32, msg: &Message, node: &Node) {
    let mut body = Vec::new();
    message(msg, node, &mut body);
    put_bytes(out, number, &body);
}

/// A proto3 `string`: left out when empty.
fn put_str(out: &mut Vec<u8>, number: u32, s: &str) {
    if !s.is_empty() {
        put_str_always(out, number, s);
    }
}

/// An element of a `repeated string`: written even when empty.
fn put_str_always(out: &mut Vec<u8>, number: u32, s: &str) {
    put_bytes(out, number, s.as_bytes());
}

fn put_bytes(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    put_tag(out, number, 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_tag(out: &mut Vec<u8>, number: u32, wire_type: u8) {
    put_varint(out, (u64::from(number) << 3) | u64::from(wire_type));
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The document's protobuf bytes.
pub fn document(root: &Node) -> Vec<u8> {
    let mut out = Vec::new();
    message(&DOCUMENT, root, &mut out);
    out
}
