//! Metadata without a full decode: the ObjectMeta fields and the field-selector values the
//! cache indexes on, read straight off protobuf or JSON bytes, and the resourceVersion spliced
//! into stored bytes (etcd values carry none). Hot path: every ingested event
//! (benches/codec.rs `metadata`).

use std::borrow::Cow;

use crate::error::CodecError;
use crate::json_read::{Doc, Tok};
use crate::schema::{FieldType, MsgId, Scalar, Schema};
use crate::wire::{Reader, WireValue, put_bytes_field, varint_len};

/// ObjectMeta protobuf field numbers (k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta).
mod om {
    pub const NAME: u32 = 1;
    pub const GENERATE_NAME: u32 = 2;
    pub const NAMESPACE: u32 = 3;
    pub const UID: u32 = 5;
    pub const RESOURCE_VERSION: u32 = 6;
    pub const GENERATION: u32 = 7;
    pub const CREATION_TIMESTAMP: u32 = 8;
    pub const DELETION_TIMESTAMP: u32 = 9;
    pub const DELETION_GRACE_PERIOD_SECONDS: u32 = 10;
    pub const LABELS: u32 = 11;
    pub const ANNOTATIONS: u32 = 12;
    pub const OWNER_REFERENCES: u32 = 13;
    pub const FINALIZERS: u32 = 14;
}

/// What the cache and the generic store need of an object's metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectMeta<'a> {
    pub name: Cow<'a, str>,
    pub generate_name: Cow<'a, str>,
    pub namespace: Cow<'a, str>,
    pub uid: Cow<'a, str>,
    pub resource_version: Cow<'a, str>,
    pub generation: i64,
    /// Unix seconds.
    pub creation_timestamp: Option<i64>,
    pub deletion_timestamp: Option<i64>,
    pub deletion_grace_period_seconds: Option<i64>,
    pub labels: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub has_annotations: bool,
    pub has_owner_references: bool,
    pub finalizers: Vec<Cow<'a, str>>,
}

/// Field number of `metadata` in a kind's message (1 for every built-in kind).
fn metadata_number(schema: &Schema, kind: MsgId) -> Option<u32> {
    let m = schema.msg(kind);
    m.field_index_by_json("metadata")
        .map(|i| m.fields[i].number)
}

fn utf8(b: &[u8], at: usize) -> Result<&str, CodecError> {
    std::str::from_utf8(b).map_err(|_| CodecError::at(at, "string is not valid UTF-8"))
}

/// The last occurrence of length-delimited field `number` in a message.
fn last_len_field(
    buf: &[u8],
    base: usize,
    number: u32,
) -> Result<Option<(&[u8], usize)>, CodecError> {
    let mut r = Reader::new(buf, base);
    let mut found = None;
    while !r.at_end() {
        let (n, v, at) = r.field()?;
        if n == number {
            match v {
                WireValue::Len(b) => found = Some((b, at)),
                _ => {
                    return Err(CodecError::at(
                        at,
                        format_args!("field {n} has the wrong wire type"),
                    ));
                }
            }
        }
    }
    Ok(found)
}

fn time_seconds(b: &[u8], at: usize) -> Result<Option<i64>, CodecError> {
    if b.is_empty() {
        return Ok(None);
    }
    let mut r = Reader::new(b, at);
    let mut secs = 0;
    while !r.at_end() {
        if let (1, WireValue::Varint(v), _) = r.field()? {
            secs = v as i64;
        }
    }
    Ok(Some(secs))
}

/// Reads ObjectMeta from an object's message bytes (the envelope's `raw`).
pub fn meta_from_pb<'a>(
    kind: MsgId,
    raw: &'a [u8],
    base: usize,
) -> Result<ObjectMeta<'a>, CodecError> {
    let schema = Schema::get();
    let number = metadata_number(schema, kind).ok_or_else(|| {
        CodecError::malformed(format!("{} has no metadata", schema.msg(kind).name))
    })?;
    let mut meta = ObjectMeta::default();
    let Some((buf, at)) = last_len_field(raw, base, number)? else {
        return Ok(meta);
    };
    let mut r = Reader::new(buf, at);
    while !r.at_end() {
        let (n, v, at) = r.field()?;
        match (n, v) {
            (om::NAME, WireValue::Len(b)) => meta.name = Cow::Borrowed(utf8(b, at)?),
            (om::GENERATE_NAME, WireValue::Len(b)) => {
                meta.generate_name = Cow::Borrowed(utf8(b, at)?)
            }
            (om::NAMESPACE, WireValue::Len(b)) => meta.namespace = Cow::Borrowed(utf8(b, at)?),
            (om::UID, WireValue::Len(b)) => meta.uid = Cow::Borrowed(utf8(b, at)?),
            (om::RESOURCE_VERSION, WireValue::Len(b)) => {
                meta.resource_version = Cow::Borrowed(utf8(b, at)?)
            }
            (om::GENERATION, WireValue::Varint(x)) => meta.generation = x as i64,
            (om::CREATION_TIMESTAMP, WireValue::Len(b)) => {
                meta.creation_timestamp = time_seconds(b, at)?
            }
            (om::DELETION_TIMESTAMP, WireValue::Len(b)) => {
                // A pointer: present means set, even to the zero time.
                meta.deletion_timestamp = Some(time_seconds(b, at)?.unwrap_or(0))
            }
            (om::DELETION_GRACE_PERIOD_SECONDS, WireValue::Varint(x)) => {
                meta.deletion_grace_period_seconds = Some(x as i64)
            }
            (om::LABELS, WireValue::Len(b)) => {
                let (mut k, mut val) = ("", "");
                let mut e = Reader::new(b, at);
                while !e.at_end() {
                    match e.field()? {
                        (1, WireValue::Len(s), sat) => k = utf8(s, sat)?,
                        (2, WireValue::Len(s), sat) => val = utf8(s, sat)?,
                        _ => {}
                    }
                }
                meta.labels.push((Cow::Borrowed(k), Cow::Borrowed(val)));
            }
            (om::ANNOTATIONS, WireValue::Len(_)) => meta.has_annotations = true,
            (om::OWNER_REFERENCES, WireValue::Len(_)) => meta.has_owner_references = true,
            (om::FINALIZERS, WireValue::Len(b)) => {
                meta.finalizers.push(Cow::Borrowed(utf8(b, at)?))
            }
            (1..=17, WireValue::Len(_) | WireValue::Varint(_)) => {}
            (1..=17, _) => {
                return Err(CodecError::at(
                    at,
                    format_args!("metadata field {n} has the wrong wire type"),
                ));
            }
            _ => {}
        }
    }
    // gogo-protobuf writes map entries sorted; keep the invariant for readers that
    // binary-search labels, whatever wrote the bytes.
    if !meta.labels.windows(2).all(|w| w[0].0 < w[1].0) {
        meta.labels.sort_by(|a, b| a.0.cmp(&b.0));
        meta.labels.dedup_by(|later, earlier| {
            if later.0 == earlier.0 {
                std::mem::swap(later, earlier);
                true
            } else {
                false
            }
        });
    }
    Ok(meta)
}

/// Reads ObjectMeta from a JSON object (custom resources are stored as JSON).
pub fn meta_from_json<'a>(doc: &Doc<'a>) -> Result<ObjectMeta<'a>, CodecError> {
    let mut meta = ObjectMeta::default();
    if doc.node(0).tok != Tok::Obj {
        return Err(CodecError::malformed("the object is not a JSON object"));
    }
    let Some(m) = doc
        .members(0)
        .find(|&(k, _)| doc.str(k) == "metadata")
        .map(|(_, v)| v)
    else {
        return Ok(meta);
    };
    if doc.node(m).tok != Tok::Obj {
        return Err(CodecError::malformed("metadata is not a JSON object"));
    }
    let string = |v: usize| -> Result<Cow<'a, str>, CodecError> {
        match doc.node(v).tok {
            Tok::Str | Tok::StrEsc => Ok(doc.str(v)),
            Tok::Null => Ok(Cow::Borrowed("")),
            _ => Err(CodecError::malformed(format!(
                "metadata field at byte {} is not a string",
                doc.offset(v)
            ))),
        }
    };
    let time = |v: usize| -> Result<Option<i64>, CodecError> {
        if doc.node(v).tok == Tok::Null {
            return Ok(None);
        }
        let s = string(v)?;
        crate::goscalar::parse_rfc3339(&s)
            .map(|(secs, _)| Some(secs))
            .map_err(|e| CodecError::malformed(format!("metadata time {s:?}: {}", e.0)))
    };
    let int = |v: usize| -> Result<i64, CodecError> {
        std::str::from_utf8(doc.raw(v))
            .ok()
            .filter(|_| doc.node(v).tok == Tok::Num)
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| {
                CodecError::malformed(format!(
                    "metadata field at byte {} is not an integer",
                    doc.offset(v)
                ))
            })
    };
    for (k, v) in doc.members(m) {
        match &*doc.str(k) {
            "name" => meta.name = string(v)?,
            "generateName" => meta.generate_name = string(v)?,
            "namespace" => meta.namespace = string(v)?,
            "uid" => meta.uid = string(v)?,
            "resourceVersion" => meta.resource_version = string(v)?,
            "generation" if doc.node(v).tok != Tok::Null => meta.generation = int(v)?,
            "creationTimestamp" => meta.creation_timestamp = time(v)?,
            "deletionTimestamp" => meta.deletion_timestamp = time(v)?,
            "deletionGracePeriodSeconds" if doc.node(v).tok != Tok::Null => {
                meta.deletion_grace_period_seconds = Some(int(v)?)
            }
            "labels" if doc.node(v).tok == Tok::Obj => {
                for (lk, lv) in doc.members(v) {
                    meta.labels.push((doc.str(lk), string(lv)?));
                }
                meta.labels.sort_by(|a, b| a.0.cmp(&b.0));
            }
            "annotations" => {
                meta.has_annotations = doc.node(v).tok == Tok::Obj && doc.node(v).len > 0
            }
            "ownerReferences" => {
                meta.has_owner_references = doc.node(v).tok == Tok::Arr && doc.node(v).len > 0
            }
            "finalizers" if doc.node(v).tok == Tok::Arr => {
                for e in doc.elements(v) {
                    meta.finalizers.push(string(e)?);
                }
            }
            _ => {}
        }
    }
    Ok(meta)
}

/// The fields each kind can be selected on with `fieldSelector`, beyond `metadata.name` and
/// `metadata.namespace` (which every kind has): (group, kind, selector label, JSON path).
/// These are upstream's per-kind field label sets (the `GetAttrs`/`SelectableFields` of each
/// registry strategy).
pub const SELECTABLE_FIELDS: &[(&str, &str, &str, &str)] = &[
    ("", "Pod", "spec.nodeName", "spec.nodeName"),
    ("", "Pod", "spec.restartPolicy", "spec.restartPolicy"),
    ("", "Pod", "spec.schedulerName", "spec.schedulerName"),
    (
        "",
        "Pod",
        "spec.serviceAccountName",
        "spec.serviceAccountName",
    ),
    ("", "Pod", "spec.hostNetwork", "spec.hostNetwork"),
    ("", "Pod", "status.phase", "status.phase"),
    ("", "Pod", "status.podIP", "status.podIP"),
    (
        "",
        "Pod",
        "status.nominatedNodeName",
        "status.nominatedNodeName",
    ),
    ("", "Node", "spec.unschedulable", "spec.unschedulable"),
    ("", "Namespace", "status.phase", "status.phase"),
    ("", "Secret", "type", "type"),
    (
        "",
        "ReplicationController",
        "status.replicas",
        "status.replicas",
    ),
    ("", "Event", "involvedObject.kind", "involvedObject.kind"),
    (
        "",
        "Event",
        "involvedObject.namespace",
        "involvedObject.namespace",
    ),
    ("", "Event", "involvedObject.name", "involvedObject.name"),
    ("", "Event", "involvedObject.uid", "involvedObject.uid"),
    (
        "",
        "Event",
        "involvedObject.apiVersion",
        "involvedObject.apiVersion",
    ),
    (
        "",
        "Event",
        "involvedObject.resourceVersion",
        "involvedObject.resourceVersion",
    ),
    (
        "",
        "Event",
        "involvedObject.fieldPath",
        "involvedObject.fieldPath",
    ),
    ("", "Event", "reason", "reason"),
    ("", "Event", "reportingComponent", "reportingComponent"),
    ("", "Event", "source", "source.component"),
    ("", "Event", "type", "type"),
    ("", "Service", "spec.clusterIP", "spec.clusterIP"),
    ("", "Service", "spec.type", "spec.type"),
    ("apps", "ReplicaSet", "status.replicas", "status.replicas"),
    ("batch", "Job", "status.successful", "status.succeeded"),
    (
        "certificates.k8s.io",
        "CertificateSigningRequest",
        "spec.signerName",
        "spec.signerName",
    ),
];

/// A field-selector path compiled against the schema: the protobuf field number at each
/// step and the scalar at the end.
#[derive(Debug, Clone)]
pub struct FieldPath {
    pub label: &'static str,
    steps: Vec<u32>,
    leaf: Scalar,
}

impl FieldPath {
    /// Compiles a JSON path (`spec.nodeName`) for message `kind`.
    pub fn compile(kind: MsgId, label: &'static str, json_path: &str) -> Option<FieldPath> {
        let schema = Schema::get();
        let mut msg = kind;
        let mut steps = Vec::new();
        let mut parts = json_path.split('.').peekable();
        while let Some(part) = parts.next() {
            let m = schema.msg(msg);
            let f = &m.fields[m.field_index_by_json(part)?];
            steps.push(f.number);
            match f.ty {
                FieldType::Message(id) if parts.peek().is_some() => msg = id,
                FieldType::Scalar(s) if parts.peek().is_none() && !f.repeated => {
                    return Some(FieldPath {
                        label,
                        steps,
                        leaf: s,
                    });
                }
                _ => return None,
            }
        }
        None
    }

    /// The value as a field selector compares it (Go's formatting: `true`, `3`, text).
    /// An absent field has its zero value, as upstream's GetAttrs reads Go structs.
    pub fn value<'a>(&self, raw: &'a [u8]) -> Result<Cow<'a, str>, CodecError> {
        let mut buf = raw;
        let mut base = 0;
        let (last, path) = self.steps.split_last().expect("a compiled path has steps");
        for &n in path {
            match last_len_field(buf, base, n)? {
                Some((b, at)) => {
                    buf = b;
                    base = at;
                }
                None => return Ok(zero(self.leaf)),
            }
        }
        let mut r = Reader::new(buf, base);
        let mut found = None;
        while !r.at_end() {
            let (n, v, at) = r.field()?;
            if n == *last {
                found = Some((v, at));
            }
        }
        Ok(match (self.leaf, found) {
            (_, None) => zero(self.leaf),
            (Scalar::String, Some((WireValue::Len(b), at))) => Cow::Borrowed(utf8(b, at)?),
            (Scalar::Bool, Some((WireValue::Varint(x), _))) => {
                Cow::Borrowed(if x != 0 { "true" } else { "false" })
            }
            (Scalar::Int32, Some((WireValue::Varint(x), _))) => {
                Cow::Owned((x as i64 as i32).to_string())
            }
            (_, Some((WireValue::Varint(x), _))) => Cow::Owned((x as i64).to_string()),
            (_, Some((_, at))) => {
                return Err(CodecError::at(at, "selector field has the wrong wire type"));
            }
        })
    }
}

fn zero(s: Scalar) -> Cow<'static, str> {
    Cow::Borrowed(match s {
        Scalar::Bool => "false",
        Scalar::String | Scalar::Bytes => "",
        _ => "0",
    })
}

/// The compiled selectable fields of a kind.
pub fn selectable_fields(group: &str, kind: &str) -> Vec<FieldPath> {
    let schema = Schema::get();
    let Some(k) = schema
        .kinds()
        .iter()
        .find(|k| &*k.group == group && &*k.kind == kind)
    else {
        return Vec::new();
    };
    SELECTABLE_FIELDS
        .iter()
        .filter(|(g, kd, _, _)| *g == group && *kd == kind)
        .filter_map(|&(_, _, label, path)| FieldPath::compile(k.msg, label, path))
        .collect()
}

/// Rewrites an object's message bytes with `metadata.resourceVersion` set to `rv`: stored
/// values carry none, served objects carry the revision they were read at. Only ObjectMeta is
/// re-written; the rest of the bytes are copied.
pub fn set_resource_version(
    kind: MsgId,
    raw: &[u8],
    rv: &str,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    let schema = Schema::get();
    let number = metadata_number(schema, kind).ok_or_else(|| {
        CodecError::malformed(format!("{} has no metadata", schema.msg(kind).name))
    })?;
    out.reserve(raw.len() + rv.len() + 4);
    let mut r = Reader::new(raw, 0);
    let mut done = false;
    let mut copied_to = 0;
    while !r.at_end() {
        let start = r.offset();
        let (n, v, at) = r.field()?;
        let end = r.offset();
        if n != number || done {
            continue;
        }
        let WireValue::Len(meta) = v else {
            return Err(CodecError::at(at, "metadata has the wrong wire type"));
        };
        out.extend_from_slice(&raw[copied_to..start]);
        let new_meta = meta_with_rv(meta, at, rv)?;
        put_bytes_field(out, number, &new_meta);
        copied_to = end;
        done = true;
    }
    out.extend_from_slice(&raw[copied_to..]);
    if !done {
        // No metadata at all: append one holding just the resourceVersion.
        let mut m = Vec::new();
        put_bytes_field(&mut m, om::RESOURCE_VERSION, rv.as_bytes());
        put_bytes_field(out, number, &m);
    }
    Ok(())
}

/// Where, in a stored object (`k8s\0` envelope), the resourceVersion goes: found once when the
/// object is cached, so serving it is copying around the spot, with no parsing. Only for
/// objects with one ObjectMeta whose fields are in number order (as upstream writes them, an
/// empty resourceVersion included); others take `set_resource_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RvSplice {
    /// The message (the envelope's raw) within the stored bytes.
    raw_start: u32,
    raw_end: u32,
    /// The metadata field (tag to end) within the stored bytes.
    meta_start: u32,
    meta_end: u32,
    /// ObjectMeta's body, and the stored resourceVersion field in it (empty: where it goes).
    body_start: u32,
    cut_start: u32,
    cut_end: u32,
}

impl RvSplice {
    /// The plan for `stored` (an envelope of message `kind`), if it qualifies.
    pub fn plan(kind: MsgId, stored: &[u8]) -> Option<RvSplice> {
        let env = crate::envelope::Envelope::parse(stored).ok()?;
        let number = metadata_number(Schema::get(), kind)?;
        let raw_start = env.raw.as_ptr() as usize - stored.as_ptr() as usize;
        let mut r = Reader::new(env.raw, 0);
        let mut found: Option<(usize, usize, &[u8])> = None;
        while !r.at_end() {
            let start = r.offset();
            let (n, v, _) = r.field().ok()?;
            if n == number {
                let WireValue::Len(meta) = v else {
                    return None;
                };
                if found.is_some() {
                    return None;
                }
                found = Some((start, r.offset(), meta));
            }
        }
        let (mstart, mend, meta) = found?;
        let body_start = meta.as_ptr() as usize - env.raw.as_ptr() as usize;
        let mut m = Reader::new(meta, 0);
        // set_resource_version drops every resourceVersion field and writes one before the
        // first field numbered above it: the same as replacing the one stored field when it
        // sits right there.
        let mut insert_at = meta.len();
        let mut cut: Option<(usize, usize)> = None;
        while !m.at_end() {
            let s = m.offset();
            let (f, _, _) = m.field().ok()?;
            if f == om::RESOURCE_VERSION {
                if cut.is_some() {
                    return None;
                }
                cut = Some((s, m.offset()));
            }
            if f > om::RESOURCE_VERSION && insert_at == meta.len() {
                insert_at = s;
            }
        }
        let (cut_start, cut_end) = match cut {
            Some((s, e)) if e == insert_at => (s, e),
            Some(_) => return None,
            None => (insert_at, insert_at),
        };
        let at = |x: usize| u32::try_from(raw_start + x).ok();
        Some(RvSplice {
            raw_start: at(0)?,
            raw_end: at(env.raw.len())?,
            meta_start: at(mstart)?,
            meta_end: at(mend)?,
            body_start: at(body_start)?,
            cut_start: at(body_start + cut_start)?,
            cut_end: at(body_start + cut_end)?,
        })
    }

    fn body_len(&self) -> usize {
        (self.meta_end - self.body_start - (self.cut_end - self.cut_start)) as usize
    }

    /// The length of the served message with `rv` (what `write` appends).
    pub fn len(&self, number: u32, rv: &str) -> usize {
        let body = self.body_len() + 1 + varint_len(rv.len() as u64) + rv.len();
        (self.raw_end - self.raw_start - (self.meta_end - self.meta_start)) as usize
            + varint_len(u64::from(number) << 3)
            + varint_len(body as u64)
            + body
    }

    /// Appends the served message of `stored` with `rv`: byte for byte what
    /// `set_resource_version` writes for the envelope's raw.
    pub fn write(&self, number: u32, stored: &[u8], rv: &str, out: &mut Vec<u8>) {
        let b = |x: u32| x as usize;
        let body = self.body_len() + 1 + varint_len(rv.len() as u64) + rv.len();
        out.extend_from_slice(&stored[b(self.raw_start)..b(self.meta_start)]);
        crate::wire::put_tag(out, number, crate::wire::WIRE_LEN);
        crate::wire::put_varint(out, body as u64);
        out.extend_from_slice(&stored[b(self.body_start)..b(self.cut_start)]);
        put_bytes_field(out, om::RESOURCE_VERSION, rv.as_bytes());
        out.extend_from_slice(&stored[b(self.cut_end)..b(self.meta_end)]);
        out.extend_from_slice(&stored[b(self.meta_end)..b(self.raw_end)]);
    }
}

/// The field number of `kind`'s metadata, if it has one.
pub fn metadata_field(kind: MsgId) -> Option<u32> {
    metadata_number(Schema::get(), kind)
}

/// The length of what `set_resource_version` writes for these arguments, without writing it
/// (protobuf lists written in pieces need their length first).
pub fn served_len(kind: MsgId, raw: &[u8], rv: &str) -> Result<usize, CodecError> {
    let schema = Schema::get();
    let number = metadata_number(schema, kind).ok_or_else(|| {
        CodecError::malformed(format!("{} has no metadata", schema.msg(kind).name))
    })?;
    let rv_field = 1 + varint_len(rv.len() as u64) + rv.len();
    let field_len =
        |body: usize| varint_len(u64::from(number) << 3) + varint_len(body as u64) + body;
    let mut r = Reader::new(raw, 0);
    while !r.at_end() {
        let start = r.offset();
        let (n, v, at) = r.field()?;
        if n != number {
            continue;
        }
        let WireValue::Len(meta) = v else {
            return Err(CodecError::at(at, "metadata has the wrong wire type"));
        };
        let old_field = r.offset() - start;
        let mut m = Reader::new(meta, at);
        let mut old_rv = 0;
        while !m.at_end() {
            let s = m.offset();
            let (f, _, _) = m.field()?;
            if f == om::RESOURCE_VERSION {
                old_rv += m.offset() - s;
            }
        }
        return Ok(raw.len() - old_field + field_len(meta.len() - old_rv + rv_field));
    }
    Ok(raw.len() + field_len(rv_field))
}

fn meta_with_rv(meta: &[u8], base: usize, rv: &str) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(meta.len() + rv.len() + 2);
    let mut r = Reader::new(meta, base);
    let mut written = false;
    let mut prev_end = 0;
    while !r.at_end() {
        let start = r.offset() - base;
        let (n, _, _) = r.field()?;
        let end = r.offset() - base;
        if n == om::RESOURCE_VERSION {
            prev_end = end;
            continue;
        }
        if n > om::RESOURCE_VERSION && !written {
            put_bytes_field(&mut out, om::RESOURCE_VERSION, rv.as_bytes());
            written = true;
        }
        out.extend_from_slice(&meta[start..end]);
        prev_end = end;
    }
    debug_assert_eq!(prev_end, meta.len());
    if !written {
        put_bytes_field(&mut out, om::RESOURCE_VERSION, rv.as_bytes());
    }
    Ok(out)
}

/// Size of `set_resource_version`'s output, for callers that pre-size buffers.
pub fn resource_version_overhead(rv: &str) -> usize {
    1 + varint_len(rv.len() as u64) + rv.len() + 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Envelope;

    const POD: &[u8] = include_bytes!("../testdata/objects/pod.etcd.bin");

    #[test]
    fn a_splice_plan_writes_what_set_resource_version_writes() {
        let kinds: Vec<(MsgId, Vec<u8>)> =
            std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/roundtrip"))
                .unwrap()
                .filter_map(|e| {
                    let p = e.ok()?.path();
                    (p.extension()? == "pb").then_some(p)
                })
                .filter_map(|p| {
                    let bytes = std::fs::read(&p).ok()?;
                    let env = Envelope::parse(&bytes).ok()?;
                    let kind = Schema::get().kind(env.api_version, env.kind)?;
                    // Stored objects carry no resourceVersion: take it out first.
                    let mut bare = Vec::new();
                    set_resource_version(kind, env.raw, "", &mut bare).ok()?;
                    let mut stored = Vec::new();
                    crate::envelope::write_envelope(env.api_version, env.kind, &bare, &mut stored);
                    Some((kind, stored))
                })
                .chain(std::iter::once((pod_kind(), POD.to_vec())))
                .collect();
        assert!(kinds.len() > 100, "{} fixtures", kinds.len());
        let mut planned = 0;
        for (kind, stored) in &kinds {
            let env = Envelope::parse(stored).unwrap();
            let Some(plan) = RvSplice::plan(*kind, stored) else {
                continue;
            };
            planned += 1;
            let number = metadata_field(*kind).unwrap();
            for rv in ["1", "289", "12345678901"] {
                let mut want = Vec::new();
                set_resource_version(*kind, env.raw, rv, &mut want).unwrap();
                let mut got = Vec::new();
                plan.write(number, stored, rv, &mut got);
                assert_eq!(got, want, "{rv}");
                assert_eq!(plan.len(number, rv), want.len());
            }
        }
        assert!(planned > 100, "{planned} planned");
        // A second ObjectMeta (not how objects are stored) takes the general path.
        let env = Envelope::parse(POD).unwrap();
        let meta_at = RvSplice::plan(pod_kind(), POD).unwrap();
        let mut odd = env.raw.to_vec();
        let end = (meta_at.meta_end - meta_at.raw_start) as usize;
        let mut extra = Vec::new();
        put_bytes_field(&mut extra, om::RESOURCE_VERSION, b"9");
        let mut meta = Vec::new();
        put_bytes_field(&mut meta, 1, &extra);
        odd.splice(end..end, meta);
        let mut stored = Vec::new();
        crate::envelope::write_envelope("v1", "Pod", &odd, &mut stored);
        assert_eq!(RvSplice::plan(pod_kind(), &stored), None);
    }

    #[test]
    fn served_len_is_the_length_set_resource_version_writes() {
        let env = Envelope::parse(POD).unwrap();
        for rv in ["1", "289", "12345678901"] {
            let mut once = Vec::new();
            set_resource_version(pod_kind(), env.raw, rv, &mut once).unwrap();
            assert_eq!(served_len(pod_kind(), env.raw, rv).unwrap(), once.len());
            // Again over bytes that already carry a resourceVersion.
            let mut twice = Vec::new();
            set_resource_version(pod_kind(), &once, "7", &mut twice).unwrap();
            assert_eq!(served_len(pod_kind(), &once, "7").unwrap(), twice.len());
        }
        let mut bare = Vec::new();
        set_resource_version(pod_kind(), b"", "5", &mut bare).unwrap();
        assert_eq!(served_len(pod_kind(), b"", "5").unwrap(), bare.len());
    }

    fn pod_kind() -> MsgId {
        Schema::get().kind("v1", "Pod").unwrap()
    }

    #[test]
    fn pod_metadata_reads_off_the_stored_bytes() {
        let env = Envelope::parse(POD).unwrap();
        let m = meta_from_pb(pod_kind(), env.raw, env.raw_offset).unwrap();
        assert_eq!(m.name, "nginx");
        assert_eq!(m.namespace, "default");
        assert_eq!(m.uid, "98f1fad6-5326-4c67-85cd-89d76a59747a");
        assert_eq!(m.resource_version, "");
        assert_eq!(m.generation, 1);
        assert!(m.creation_timestamp.is_some());
        assert_eq!(m.deletion_timestamp, None);
        assert!(m.labels.is_empty() && !m.has_annotations);
    }

    #[test]
    fn selector_fields_read_zero_values_when_absent() {
        let env = Envelope::parse(POD).unwrap();
        let fields = selectable_fields("", "Pod");
        assert_eq!(fields.len(), 8);
        let get = |label: &str| {
            fields
                .iter()
                .find(|f| f.label == label)
                .unwrap()
                .value(env.raw)
                .unwrap()
                .into_owned()
        };
        assert_eq!(get("spec.schedulerName"), "default-scheduler");
        assert_eq!(get("status.phase"), "Pending");
        assert_eq!(get("spec.nodeName"), "");
        assert_eq!(get("spec.hostNetwork"), "false");
        // Every entry of the table compiles against the schema.
        for (g, k, label, _) in SELECTABLE_FIELDS {
            assert!(
                selectable_fields(g, k).iter().any(|f| f.label == *label),
                "{g}/{k} {label} does not compile"
            );
        }
    }

    #[test]
    fn resource_version_is_spliced_in_field_order() {
        let env = Envelope::parse(POD).unwrap();
        let mut out = Vec::new();
        set_resource_version(pod_kind(), env.raw, "289", &mut out).unwrap();
        let m = meta_from_pb(pod_kind(), &out, 0).unwrap();
        assert_eq!(m.resource_version, "289");
        // The stored value holds an empty resourceVersion (`32 00`); "289" adds 3 bytes.
        assert_eq!(out.len(), env.raw.len() + 3);
        let mut again = Vec::new();
        set_resource_version(pod_kind(), &out, "12345", &mut again).unwrap();
        assert_eq!(
            meta_from_pb(pod_kind(), &again, 0)
                .unwrap()
                .resource_version,
            "12345"
        );
    }
}
