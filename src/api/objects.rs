//! Objects between the store and the wire: stored bytes → the served object (protobuf
//! message with its resourceVersion) → JSON, YAML or protobuf, singly, as lists, as
//! PartialObjectMetadata, and as watch frames; and request bodies → a JSON value to mutate
//! → the bytes to store. Reads never decode more than the codec must.

use bytes::Bytes;
use kapi_codec::envelope::{
    Envelope, EventType, ListMeta, write_envelope, write_json_event, write_json_list,
    write_pb_event, write_pb_list,
};
use kapi_codec::meta::set_resource_version;
use kapi_codec::to_json::PbToJson;
use kapi_codec::to_pb::{json_to_envelope, value_to_envelope};
use kapi_codec::{FieldValidation, Schema, yaml};
use serde_json::Value;

use super::negotiate::{BodyType, Encoding};
use super::registry::{Resource, Storage};
use super::status::Status;

/// The served form of one object: its message bytes (no envelope) with resourceVersion set.
pub struct Served {
    pub raw: Vec<u8>,
    /// Encoded by kapi's own encoder in this request (a write's answer): its raw JSON fields
    /// (`FieldsV1`, `RawExtension`) are compact and escaped as Go writes them, and are copied
    /// into a JSON answer without a second pass (`PbToJson::trusting_raw_json`).
    pub own: bool,
}

fn conversion_unsupported(res: &Resource, stored: &str) -> Status {
    Status::internal(format!(
        "converting between {stored} and {}/{} is not supported yet",
        res.api_version(),
        res.kind
    ))
}

/// A stored object of another version, converted to the served one (the conversion
/// module's few kinds).
fn convert_envelope(res: &Resource, pb: &[u8], env: &Envelope<'_>) -> Result<Vec<u8>, Status> {
    let served = res.api_version();
    if !super::conversion::supported((env.api_version, env.kind), (&served, &res.kind)) {
        return Err(conversion_unsupported(
            res,
            &format!("{}/{}", env.api_version, env.kind),
        ));
    }
    let mut json = Vec::new();
    kapi_codec::to_json::envelope_to_json(pb, &mut json)
        .map_err(|e| Status::internal(e.to_string()))?;
    let v: Value = serde_json::from_slice(&json).map_err(|e| Status::internal(e.to_string()))?;
    let out = super::conversion::convert(&v, (&served, &res.kind))
        .ok_or_else(|| conversion_unsupported(res, env.kind))?;
    value_envelope(&out)
}

/// A custom resource's stored JSON at `revision` → the served object: compact JSON with keys
/// sorted (as upstream writes unstructured objects), in the served version, resourceVersion set.
fn served_custom(res: &Resource, stored: &[u8], revision: i64) -> Result<Served, Status> {
    let mut v: Value = serde_json::from_slice(stored)
        .map_err(|e| Status::internal(format!("stored object is not readable: {e}")))?;
    crate::crd::strategy::to_served(res, &mut v)?;
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.insert(
            "resourceVersion".into(),
            Value::String(revision.to_string()),
        );
    }
    let raw = serde_json::to_vec(&v).map_err(|e| Status::internal(e.to_string()))?;
    Ok(Served { raw, own: false })
}

/// Stored bytes at `revision` → the served object's message (a custom resource's: its JSON).
pub fn served(res: &Resource, stored: &[u8], revision: i64) -> Result<Served, Status> {
    if res.is_custom() {
        return served_custom(res, stored, revision);
    }
    let msg = res
        .msg
        .ok_or_else(|| Status::internal(format!("no schema for {}", res.kind)))?;
    let rv = revision.to_string();
    let env_bytes;
    let pb: &[u8] = match &res.storage {
        Storage::Json { api_version, .. } if *api_version != res.api_version() => {
            // Stored in another version (CRDs as v1beta1): converted to the served one.
            let v: Value = serde_json::from_slice(stored)
                .map_err(|e| Status::internal(format!("stored object is not readable: {e}")))?;
            let stored_av = v["apiVersion"].as_str().unwrap_or_default().to_string();
            let v = if stored_av == res.api_version() {
                v
            } else {
                super::conversion::convert(&v, (&res.api_version(), &res.kind))
                    .ok_or_else(|| conversion_unsupported(res, &stored_av))?
            };
            env_bytes = value_envelope(&v)?;
            &env_bytes
        }
        Storage::Json { .. } => {
            let mut out = Vec::new();
            json_to_envelope(
                stored,
                Some((&res.api_version(), &res.kind)),
                FieldValidation::Ignore,
                &mut out,
            )
            .map_err(|e| Status::internal(format!("stored object is not readable: {e}")))?;
            env_bytes = out;
            &env_bytes
        }
        _ => stored,
    };
    let env = Envelope::parse(pb)
        .map_err(|e| Status::internal(format!("stored object is not readable: {e}")))?;
    let converted;
    let env = if env.kind != res.kind || env.api_version != res.api_version() {
        converted = convert_envelope(res, pb, &env)?;
        Envelope::parse(&converted).map_err(|e| Status::internal(e.to_string()))?
    } else {
        env
    };
    let mut raw = Vec::with_capacity(env.raw.len() + rv.len() + 4);
    set_resource_version(msg, env.raw, &rv, &mut raw)
        .map_err(|e| Status::internal(format!("stored object is not readable: {e}")))?;
    Ok(Served { raw, own: false })
}

/// `served` of bytes kapi's encoder wrote in this request (a write's answer: `Served::own`).
pub fn served_own(res: &Resource, stored: &[u8], revision: i64) -> Result<Served, Status> {
    let mut served = served(res, stored, revision)?;
    served.own = true;
    Ok(served)
}

/// One object in the negotiated encoding.
pub fn encode_object(
    res: &Resource,
    obj: &Served,
    enc: Encoding,
    pretty: bool,
) -> Result<Vec<u8>, Status> {
    if res.is_custom() {
        return custom_json(obj.raw.clone(), enc, pretty);
    }
    encode_message_of(
        res.msg,
        (&res.api_version(), &res.kind),
        &obj.raw,
        (enc, pretty),
        obj.own,
    )
}

/// A message of `api_version`/`kind` in the negotiated encoding; JSON ends with a newline,
/// as upstream's encoder writes it.
pub fn encode_message(
    msg: Option<kapi_codec::schema::MsgId>,
    api_version: &str,
    kind: &str,
    raw: &[u8],
    enc: Encoding,
    pretty: bool,
) -> Result<Vec<u8>, Status> {
    encode_message_of(msg, (api_version, kind), raw, (enc, pretty), false)
}

/// `encode_message`; `own` for bytes kapi's encoder wrote in this request (`Served::own`).
fn encode_message_of(
    msg: Option<kapi_codec::schema::MsgId>,
    (api_version, kind): (&str, &str),
    raw: &[u8],
    (enc, pretty): (Encoding, bool),
    own: bool,
) -> Result<Vec<u8>, Status> {
    let msg = msg
        .or_else(|| Schema::get().kind(api_version, kind))
        .ok_or_else(|| Status::internal(format!("no schema for {kind}")))?;
    match enc {
        Encoding::Protobuf => {
            let mut out = Vec::with_capacity(raw.len() + 32);
            write_envelope(api_version, kind, raw, &mut out);
            Ok(out)
        }
        Encoding::Json | Encoding::Yaml => {
            let mut json = Vec::with_capacity(raw.len() * 2);
            PbToJson::served(Schema::get())
                .trusting_raw_json(own)
                .message(msg, raw, 0, Some((api_version, kind)), &mut json)
                .map_err(|e| Status::internal(format!("encoding {kind}: {e}")))?;
            finish_json(json, enc, pretty)
        }
    }
}

/// A custom resource's served JSON → the response body; it has no protobuf form.
fn custom_json(json: Vec<u8>, enc: Encoding, pretty: bool) -> Result<Vec<u8>, Status> {
    if enc == Encoding::Protobuf {
        return Err(Status::not_acceptable("application/json, application/yaml"));
    }
    finish_json(json, enc, pretty)
}

/// Compact JSON → the response body: YAML, indented JSON, or JSON with a newline.
pub fn finish_json(json: Vec<u8>, enc: Encoding, pretty: bool) -> Result<Vec<u8>, Status> {
    match enc {
        Encoding::Yaml => {
            let v: Value = serde_json::from_slice(&json)
                .map_err(|e| Status::internal(format!("encoding YAML: {e}")))?;
            Ok(yaml::to_yaml(&v).into_bytes())
        }
        _ if pretty => {
            let mut out = Vec::with_capacity(json.len() * 3 / 2);
            kapi_codec::json_write::indent(&json, &mut out);
            out.push(b'\n');
            Ok(out)
        }
        _ => {
            let mut json = json;
            json.push(b'\n');
            Ok(json)
        }
    }
}

/// A list of served objects in the negotiated encoding.
pub fn encode_list(
    res: &Resource,
    items: &[Served],
    meta: &ListMeta<'_>,
    enc: Encoding,
    pretty: bool,
) -> Result<Vec<u8>, Status> {
    let api_version = res.api_version();
    let list_kind = res.list_kind();
    match enc {
        Encoding::Protobuf => {
            let raws: Vec<&[u8]> = items.iter().map(|i| i.raw.as_slice()).collect();
            let mut out = Vec::new();
            write_pb_list(&api_version, &list_kind, meta, &raws, &mut out)
                .map_err(|e| Status::internal(e.to_string()))?;
            Ok(out)
        }
        Encoding::Json | Encoding::Yaml if res.is_custom() => {
            let jsons: Vec<Vec<u8>> = items.iter().map(|i| i.raw.clone()).collect();
            let mut out = Vec::new();
            write_json_list(&api_version, &list_kind, meta, &jsons, &mut out);
            out.pop();
            finish_json(out, enc, pretty)
        }
        Encoding::Json | Encoding::Yaml => {
            let msg = res.msg.ok_or_else(|| Status::internal("no schema"))?;
            let enc_json = PbToJson::served(Schema::get());
            let mut jsons = Vec::with_capacity(items.len());
            for i in items {
                let mut j = Vec::with_capacity(i.raw.len() * 2);
                enc_json
                    .message(msg, &i.raw, 0, None, &mut j)
                    .map_err(|e| Status::internal(format!("encoding {}: {e}", res.kind)))?;
                jsons.push(j);
            }
            let mut out = Vec::new();
            write_json_list(&api_version, &list_kind, meta, &jsons, &mut out);
            out.pop(); // the newline; finish_json adds it back
            finish_json(out, enc, pretty)
        }
    }
}

/// The PartialObjectMetadata message of a served object: its ObjectMeta only.
pub fn partial_metadata(res: &Resource, obj: &Served) -> Result<Vec<u8>, Status> {
    if res.is_custom() {
        let v: Value =
            serde_json::from_slice(&obj.raw).map_err(|e| Status::internal(e.to_string()))?;
        let partial = serde_json::json!({
            "apiVersion": "meta.k8s.io/v1",
            "kind": "PartialObjectMetadata",
            "metadata": v.get("metadata").cloned().unwrap_or(Value::Null),
        });
        return Ok(value_message(&partial)?.raw);
    }
    let msg = res.msg.ok_or_else(|| Status::internal("no schema"))?;
    let m = Schema::get().msg(msg);
    let number = m
        .field_index_by_json("metadata")
        .map(|i| m.fields[i].number)
        .ok_or_else(|| Status::internal("kind has no metadata"))?;
    let mut r = kapi_codec::wire::Reader::new(&obj.raw, 0);
    let mut meta: &[u8] = &[];
    while !r.at_end() {
        let (n, v, _) = r.field().map_err(|e| Status::internal(e.to_string()))?;
        if let (true, kapi_codec::wire::WireValue::Len(b)) = (n == number, v) {
            meta = b;
        }
    }
    let mut out = Vec::with_capacity(meta.len() + 4);
    kapi_codec::wire::put_bytes_field(&mut out, 1, meta);
    Ok(out)
}

/// One watch event frame around a served object.
pub fn watch_frame(
    res: &Resource,
    ty: EventType,
    obj: &Served,
    enc: Encoding,
) -> Result<Vec<u8>, Status> {
    let mut out = Vec::new();
    if res.is_custom() {
        write_json_event(ty, &obj.raw, &mut out);
        return Ok(out);
    }
    match enc {
        Encoding::Protobuf => {
            let mut env = Vec::with_capacity(obj.raw.len() + 32);
            write_envelope(&res.api_version(), &res.kind, &obj.raw, &mut env);
            write_pb_event(ty, &env, &mut out);
        }
        _ => {
            let json = encode_message(
                res.msg,
                &res.api_version(),
                &res.kind,
                &obj.raw,
                Encoding::Json,
                false,
            )?;
            write_json_event(ty, &json[..json.len() - 1], &mut out);
        }
    }
    Ok(out)
}

/// A watch frame around a Status (ERROR events).
pub fn watch_error_frame(status: &Status, enc: Encoding) -> Result<Vec<u8>, Status> {
    let pb = status_envelope(status)?;
    let mut out = Vec::new();
    match enc {
        Encoding::Protobuf => write_pb_event(EventType::Error, &pb, &mut out),
        _ => {
            let mut json = Vec::new();
            kapi_codec::to_json::envelope_to_json(&pb, &mut json)
                .map_err(|e| Status::internal(e.to_string()))?;
            write_json_event(EventType::Error, &json, &mut out);
        }
    }
    Ok(out)
}

/// An object the server built itself (a Status, a Scale, a bookmark, a converted object) as
/// a `k8s\0` envelope: its kind comes from its own apiVersion and kind.
pub fn value_envelope(v: &Value) -> Result<Vec<u8>, Status> {
    let mut pb = Vec::new();
    value_to_envelope(v, None, FieldValidation::Ignore, &mut pb)
        .map_err(|e| Status::internal(e.to_string()))?;
    Ok(pb)
}

/// The same, as the message bytes inside the envelope.
pub fn value_message(v: &Value) -> Result<Served, Status> {
    let pb = value_envelope(v)?;
    let env = Envelope::parse(&pb).map_err(|e| Status::internal(e.to_string()))?;
    Ok(Served {
        raw: env.raw.to_vec(),
        own: false,
    })
}

/// An object of `res` the server made itself (a bookmark, a dry-run answer) in its served form.
pub fn from_value(res: &Resource, v: &Value) -> Result<Served, Status> {
    if res.is_custom() {
        let raw = serde_json::to_vec(v).map_err(|e| Status::internal(e.to_string()))?;
        return Ok(Served { raw, own: false });
    }
    value_message(v)
}

/// A Status as a `k8s\0` envelope.
pub fn status_envelope(status: &Status) -> Result<Vec<u8>, Status> {
    value_envelope(&status.to_json_value())
}

/// A Status response body in the negotiated encoding.
pub fn encode_status(status: &Status, enc: Encoding, pretty: bool) -> Vec<u8> {
    let fallback = || {
        let mut v = serde_json::to_vec(&status.to_json_value()).unwrap_or_default();
        v.push(b'\n');
        v
    };
    let Ok(pb) = status_envelope(status) else {
        return fallback();
    };
    match enc {
        Encoding::Protobuf => pb,
        _ => {
            let mut json = Vec::new();
            if kapi_codec::to_json::envelope_to_json(&pb, &mut json).is_err() {
                return fallback();
            }
            finish_json(json, enc, pretty).unwrap_or_else(|_| fallback())
        }
    }
}

/// A request body as a JSON value, whatever its encoding.
pub fn decode_body(body: &[u8], ty: BodyType) -> Result<Value, Status> {
    match ty {
        BodyType::Protobuf => {
            let mut json = Vec::new();
            kapi_codec::to_json::envelope_to_json(body, &mut json).map_err(|e| {
                Status::bad_request(format!("the body is not a valid protobuf object: {e}"))
            })?;
            serde_json::from_slice(&json).map_err(|e| Status::bad_request(e.to_string()))
        }
        BodyType::Yaml | BodyType::ApplyYaml => yaml::from_yaml(body).map_err(|e| {
            Status::bad_request(format!(
                "error converting YAML to JSON: yaml: line {}: {}",
                e.line, e.message
            ))
        }),
        _ => serde_json::from_slice(body)
            .map_err(|e| Status::bad_request(format!("json: cannot unmarshal the body: {e}"))),
    }
}

/// A mutated JSON object → the bytes to store (resourceVersion cleared, as upstream stores),
/// with unknown-field warnings.
pub fn encode_for_storage(
    res: &Resource,
    obj: &Value,
    validation: FieldValidation,
) -> Result<(Bytes, Vec<String>), Status> {
    let mut obj = obj.clone();
    encode_for_storage_in(res, &mut obj, validation)
}

/// `encode_for_storage` of an object the caller owns: its resourceVersion is taken out for the
/// encoding and put back (no copy of the object).
pub fn encode_owned_for_storage(
    res: &Resource,
    obj: &mut Value,
    validation: FieldValidation,
) -> Result<(Bytes, Vec<String>), Status> {
    let rv = obj
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .and_then(|m| m.remove("resourceVersion"));
    let encoded = encode_for_storage_in(res, obj, validation);
    if let Some(rv) = rv
        && let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut)
    {
        m.insert("resourceVersion".into(), rv);
    }
    encoded
}

fn encode_for_storage_in(
    res: &Resource,
    obj: &mut Value,
    validation: FieldValidation,
) -> Result<(Bytes, Vec<String>), Status> {
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    if res.is_custom() {
        // Stored as the object's JSON: a create's managedFields parsed first.
        crate::ssa::materialize(obj);
        return crate::crd::strategy::encode_for_storage(res, obj.clone(), validation);
    }
    // Encoded from the value (not its JSON text) into this thread's scratch buffer: allocated
    // afresh for every write, its pages were a tenth of a pod create's CPU in the allocator.
    let mut pb = SCRATCH.try_with(std::cell::Cell::take).unwrap_or_default();
    pb.clear();
    let encoded = encode_in(res, obj, validation, &mut pb);
    if pb.capacity() <= MAX_SCRATCH {
        let _ = SCRATCH.try_with(|s| s.set(pb));
    }
    encoded
}

/// Bytes of scratch buffer a thread keeps between writes (a larger one is let go).
const MAX_SCRATCH: usize = 1 << 20;

thread_local! {
    static SCRATCH: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

fn encode_in(
    res: &Resource,
    obj: &Value,
    validation: FieldValidation,
    pb: &mut Vec<u8>,
) -> Result<(Bytes, Vec<String>), Status> {
    let decoded = value_to_envelope(obj, Some((&res.api_version(), &res.kind)), validation, pb)
        .map_err(|e| {
            let msg = format!(
                "{} in version \"{}\" cannot be handled as a {}: {e}",
                res.kind,
                res.api_version(),
                res.kind
            );
            Status::bad_request(msg)
        })?;
    // Stored in another version upstream, as JSON (CRDs as v1beta1): converted, then written
    // in that version's field order.
    if let Storage::Json { api_version, kind } = &res.storage
        && (*api_version != res.api_version() || *kind != res.kind)
    {
        let mut served = Vec::new();
        kapi_codec::to_json::envelope_to_json(pb, &mut served)
            .map_err(|e| Status::internal(e.to_string()))?;
        let typed: Value =
            serde_json::from_slice(&served).map_err(|e| Status::internal(e.to_string()))?;
        let stored = super::conversion::convert(&typed, (api_version, kind))
            .ok_or_else(|| conversion_unsupported(res, &format!("{api_version}/{kind}")))?;
        let mut out = Vec::new();
        super::conversion::write_go_order(&stored, &mut out);
        out.push(b'\n');
        return Ok((Bytes::from(out), decoded.warnings));
    }
    // Stored in another version upstream: convert before storing.
    if let Storage::Protobuf { api_version, kind } = &res.storage
        && (*api_version != res.api_version() || *kind != res.kind)
    {
        let mut typed = obj.clone();
        if let Some(o) = typed.as_object_mut() {
            o.insert("apiVersion".into(), Value::String(res.api_version()));
            o.insert("kind".into(), Value::String(res.kind.clone()));
        }
        let stored = super::conversion::convert(&typed, (api_version, kind))
            .ok_or_else(|| conversion_unsupported(res, &format!("{api_version}/{kind}")))?;
        return Ok((Bytes::from(value_envelope(&stored)?), decoded.warnings));
    }
    match &res.storage {
        Storage::Json { .. } => {
            // Stored as JSON: the served object, through the schema, keys in Go order.
            let mut out = Vec::new();
            kapi_codec::to_json::envelope_to_json(pb, &mut out)
                .map_err(|e| Status::internal(e.to_string()))?;
            out.push(b'\n');
            Ok((Bytes::from(out), decoded.warnings))
        }
        _ => Ok((Bytes::copy_from_slice(pb), decoded.warnings)),
    }
}

/// The served object as a JSON value (for updates and patches, which start from it).
pub fn to_value(res: &Resource, obj: &Served) -> Result<Value, Status> {
    if res.is_custom() {
        return serde_json::from_slice(&obj.raw).map_err(|e| Status::internal(e.to_string()));
    }
    let json = encode_message(
        res.msg,
        &res.api_version(),
        &res.kind,
        &obj.raw,
        Encoding::Json,
        false,
    )?;
    serde_json::from_slice(&json).map_err(|e| Status::internal(e.to_string()))
}
