//! Envelopes and framing from bytes: the `k8s\0` protobuf envelope (runtime.Unknown with
//! TypeMeta) that etcd values and protobuf responses carry, list bodies assembled around
//! already-encoded items, and watch event frames (JSON lines; length-prefixed protobuf).
//! Nothing here decodes or re-encodes an item. Hot path: every LIST and watch event
//! (benches/codec.rs `list_assembly`).

use crate::error::{CodecError, ErrorKind};
use crate::json_write::{write_i64, write_str};
use crate::schema::{FieldType, Schema};
use crate::wire::{Reader, WIRE_LEN, WireValue, put_bytes_field, put_tag, put_varint, varint_len};

/// The four bytes every protobuf-encoded Kubernetes object starts with.
pub const PROTOBUF_MAGIC: &[u8] = b"k8s\0";

/// A parsed `k8s\0` envelope; every slice borrows from the input.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    pub api_version: &'a str,
    pub kind: &'a str,
    /// The object's message bytes.
    pub raw: &'a [u8],
    /// Offset of `raw` in the input.
    pub raw_offset: usize,
    pub content_encoding: &'a str,
    pub content_type: &'a str,
}

pub(crate) fn unknown_kind(api_version: &str, kind: &str) -> CodecError {
    CodecError::new(
        ErrorKind::UnknownKind,
        format!("no kind {kind:?} is registered for version {api_version:?}"),
    )
}

impl<'a> Envelope<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Envelope<'a>, CodecError> {
        let Some(body) = bytes.strip_prefix(PROTOBUF_MAGIC) else {
            return Err(CodecError::malformed(
                "not a protobuf object: it does not start with the k8s\\0 prefix",
            ));
        };
        let base = PROTOBUF_MAGIC.len();
        let mut env = Envelope {
            api_version: "",
            kind: "",
            raw: &[],
            raw_offset: base,
            content_encoding: "",
            content_type: "",
        };
        let mut r = Reader::new(body, base);
        while !r.at_end() {
            let (n, v, at) = r.field()?;
            let WireValue::Len(b) = v else {
                if n <= 4 {
                    return Err(CodecError::at(
                        at,
                        format_args!("envelope field {n} has the wrong wire type"),
                    ));
                }
                continue;
            };
            match n {
                1 => {
                    let mut t = Reader::new(b, at);
                    while !t.at_end() {
                        let (tn, tv, tat) = t.field()?;
                        match (tn, tv) {
                            (1, WireValue::Len(s)) => env.api_version = utf8(s, tat)?,
                            (2, WireValue::Len(s)) => env.kind = utf8(s, tat)?,
                            (1 | 2, _) => {
                                return Err(CodecError::at(
                                    tat,
                                    "typeMeta field has the wrong wire type",
                                ));
                            }
                            _ => {}
                        }
                    }
                }
                2 => {
                    env.raw = b;
                    env.raw_offset = base + crate::wire::offset_in(body, b);
                }
                3 => env.content_encoding = utf8(b, at)?,
                4 => env.content_type = utf8(b, at)?,
                _ => {}
            }
        }
        if !env.content_encoding.is_empty() {
            return Err(CodecError::malformed(format!(
                "unsupported content encoding {:?}",
                env.content_encoding
            )));
        }
        Ok(env)
    }
}

fn utf8(b: &[u8], at: usize) -> Result<&str, CodecError> {
    std::str::from_utf8(b).map_err(|_| CodecError::at(at, "string is not valid UTF-8"))
}

/// Size of the envelope around a body of `raw_len` bytes.
fn envelope_body_len(api_version: &str, kind: &str, raw_len: usize) -> (usize, usize) {
    let tm = 1
        + varint_len(api_version.len() as u64)
        + api_version.len()
        + 1
        + varint_len(kind.len() as u64)
        + kind.len();
    // typeMeta, raw, and the two empty strings gogo-protobuf always writes.
    let body = 1 + varint_len(tm as u64) + tm + 1 + varint_len(raw_len as u64) + raw_len + 2 + 2;
    (tm, body)
}

/// Writes the envelope header for a body of `raw_len` bytes; the caller appends the body
/// and then calls [`write_envelope_trailer`].
pub fn write_envelope_header(api_version: &str, kind: &str, raw_len: usize, out: &mut Vec<u8>) {
    let (tm, _) = envelope_body_len(api_version, kind, raw_len);
    out.extend_from_slice(PROTOBUF_MAGIC);
    put_tag(out, 1, WIRE_LEN);
    put_varint(out, tm as u64);
    put_bytes_field(out, 1, api_version.as_bytes());
    put_bytes_field(out, 2, kind.as_bytes());
    put_tag(out, 2, WIRE_LEN);
    put_varint(out, raw_len as u64);
}

/// Writes the envelope header for a body whose length is not known yet; returns where the
/// body starts, for [`crate::wire::end_len`]. Then append the body, call `end_len`, and
/// [`write_envelope_trailer`].
pub fn begin_envelope(api_version: &str, kind: &str, out: &mut Vec<u8>) -> usize {
    let (tm, _) = envelope_body_len(api_version, kind, 0);
    out.extend_from_slice(PROTOBUF_MAGIC);
    put_tag(out, 1, WIRE_LEN);
    put_varint(out, tm as u64);
    put_bytes_field(out, 1, api_version.as_bytes());
    put_bytes_field(out, 2, kind.as_bytes());
    crate::wire::begin_len(out, 2)
}

/// The empty contentEncoding and contentType that follow the body.
pub fn write_envelope_trailer(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0x1a, 0x00, 0x22, 0x00]);
}

/// Writes `k8s\0` + runtime.Unknown{typeMeta, raw, "", ""}, byte for byte as upstream.
pub fn write_envelope(api_version: &str, kind: &str, raw: &[u8], out: &mut Vec<u8>) {
    out.reserve(raw.len() + 32 + api_version.len() + kind.len());
    write_envelope_header(api_version, kind, raw.len(), out);
    out.extend_from_slice(raw);
    write_envelope_trailer(out);
}

/// metav1.ListMeta of a list response.
#[derive(Debug, Clone, Default)]
pub struct ListMeta<'a> {
    pub resource_version: &'a str,
    pub continue_token: &'a str,
    pub remaining_item_count: Option<i64>,
}

impl ListMeta<'_> {
    fn pb(&self, out: &mut Vec<u8>) {
        put_bytes_field(out, 1, b""); // selfLink: a value string, always written
        put_bytes_field(out, 2, self.resource_version.as_bytes());
        put_bytes_field(out, 3, self.continue_token.as_bytes());
        if let Some(n) = self.remaining_item_count {
            put_tag(out, 4, 0);
            put_varint(out, n as u64);
        }
    }

    fn json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        let mut first = true;
        let mut sep = |out: &mut Vec<u8>| {
            if !first {
                out.push(b',');
            }
            first = false;
        };
        if !self.resource_version.is_empty() {
            sep(out);
            out.extend_from_slice(b"\"resourceVersion\":");
            write_str(out, self.resource_version.as_bytes());
        }
        if !self.continue_token.is_empty() {
            sep(out);
            out.extend_from_slice(b"\"continue\":");
            write_str(out, self.continue_token.as_bytes());
        }
        if let Some(n) = self.remaining_item_count {
            sep(out);
            out.extend_from_slice(b"\"remainingItemCount\":");
            write_i64(out, n);
        }
        out.push(b'}');
    }
}

/// Field numbers of `metadata` and `items` in a list kind (1 and 2 for every built-in list,
/// read from the schema rather than assumed).
pub fn list_fields(api_version: &str, list_kind: &str) -> Result<(u32, u32), CodecError> {
    let schema = Schema::get();
    let id = schema
        .kind(api_version, list_kind)
        .ok_or_else(|| unknown_kind(api_version, list_kind))?;
    let msg = schema.msg(id);
    let number = |name: &str| {
        msg.field_index_by_json(name)
            .map(|i| &msg.fields[i])
            .filter(|f| matches!(f.ty, FieldType::Message(_)))
            .map(|f| f.number)
    };
    match (number("metadata"), number("items")) {
        (Some(m), Some(i)) => Ok((m, i)),
        _ => Err(CodecError::malformed(format!(
            "{list_kind} is not a list kind"
        ))),
    }
}

/// Assembles a protobuf list response (`k8s\0` envelope around e.g. a PodList) from the
/// items' message bytes (no envelope), copying each item once.
pub fn write_pb_list<T: AsRef<[u8]>>(
    api_version: &str,
    list_kind: &str,
    meta: &ListMeta<'_>,
    items: &[T],
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    let (meta_field, items_field) = list_fields(api_version, list_kind)?;
    let mut meta_bytes = Vec::with_capacity(64);
    meta.pb(&mut meta_bytes);
    let items_len: usize = items
        .iter()
        .map(|i| {
            let n = i.as_ref().len();
            varint_len(u64::from(items_field) << 3) + varint_len(n as u64) + n
        })
        .sum();
    let raw_len = varint_len(u64::from(meta_field) << 3)
        + varint_len(meta_bytes.len() as u64)
        + meta_bytes.len()
        + items_len;
    out.reserve(raw_len + 64);
    write_envelope_header(api_version, list_kind, raw_len, out);
    put_bytes_field(out, meta_field, &meta_bytes);
    for item in items {
        put_bytes_field(out, items_field, item.as_ref());
    }
    write_envelope_trailer(out);
    Ok(())
}

/// Assembles a protobuf list response whose items are written in place by `write_item`
/// (each appends one item's message to the buffer): no intermediate copy per item.
pub fn write_pb_list_with<T, E: From<CodecError>>(
    api_version: &str,
    list_kind: &str,
    meta: &ListMeta<'_>,
    items: impl IntoIterator<Item = T>,
    size_hint: usize,
    mut write_item: impl FnMut(T, &mut Vec<u8>) -> Result<(), E>,
    out: &mut Vec<u8>,
) -> Result<(), E> {
    let (meta_field, items_field) = list_fields(api_version, list_kind)?;
    out.reserve(size_hint + 128);
    let body = begin_envelope(api_version, list_kind, out);
    let m = crate::wire::begin_len(out, meta_field);
    meta.pb(out);
    crate::wire::end_len(out, m);
    for item in items {
        let at = crate::wire::begin_len(out, items_field);
        write_item(item, out)?;
        crate::wire::end_len(out, at);
    }
    crate::wire::end_len(out, body);
    write_envelope_trailer(out);
    Ok(())
}

/// Assembles a JSON list response from the items' JSON (each a complete object without
/// kind/apiVersion, as upstream writes list items).
pub fn write_json_list<T: AsRef<[u8]>>(
    api_version: &str,
    list_kind: &str,
    meta: &ListMeta<'_>,
    items: &[T],
    out: &mut Vec<u8>,
) {
    let total: usize = items.iter().map(|i| i.as_ref().len() + 1).sum();
    out.reserve(total + 128);
    write_json_list_head(api_version, list_kind, meta, out);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item.as_ref());
    }
    out.extend_from_slice(JSON_LIST_TAIL);
}

/// A JSON list up to its first item (for lists written in pieces): the items follow,
/// separated by commas, then [`JSON_LIST_TAIL`].
pub fn write_json_list_head(
    api_version: &str,
    list_kind: &str,
    meta: &ListMeta<'_>,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(b"{\"kind\":");
    write_str(out, list_kind.as_bytes());
    out.extend_from_slice(b",\"apiVersion\":");
    write_str(out, api_version.as_bytes());
    out.extend_from_slice(b",\"metadata\":");
    meta.json(out);
    out.extend_from_slice(b",\"items\":[");
}

/// What ends a JSON list after its items (with upstream's newline).
pub const JSON_LIST_TAIL: &[u8] = b"]}\n";

/// A protobuf list up to its first item (for lists written in pieces), whose items will take
/// `items_len` bytes as [`pb_list_item_len`] counts them. Returns the items' field number:
/// write each with [`write_pb_list_item_header`] and its message, then
/// [`write_envelope_trailer`].
pub fn write_pb_list_head(
    api_version: &str,
    list_kind: &str,
    meta: &ListMeta<'_>,
    items_len: usize,
    out: &mut Vec<u8>,
) -> Result<u32, CodecError> {
    let (meta_field, items_field) = list_fields(api_version, list_kind)?;
    let mut meta_bytes = Vec::with_capacity(64);
    meta.pb(&mut meta_bytes);
    let raw_len = varint_len(u64::from(meta_field) << 3)
        + varint_len(meta_bytes.len() as u64)
        + meta_bytes.len()
        + items_len;
    write_envelope_header(api_version, list_kind, raw_len, out);
    put_bytes_field(out, meta_field, &meta_bytes);
    Ok(items_field)
}

/// Bytes one list item of `message_len` bytes takes in a protobuf list.
pub fn pb_list_item_len(items_field: u32, message_len: usize) -> usize {
    varint_len(u64::from(items_field) << 3) + varint_len(message_len as u64) + message_len
}

/// The tag and length in front of one list item's message.
pub fn write_pb_list_item_header(items_field: u32, message_len: usize, out: &mut Vec<u8>) {
    put_tag(out, items_field, WIRE_LEN);
    put_varint(out, message_len as u64);
}

/// Watch event types, as written in both framings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
    Bookmark,
    Error,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
            EventType::Bookmark => "BOOKMARK",
            EventType::Error => "ERROR",
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        Some(match s {
            "ADDED" => EventType::Added,
            "MODIFIED" => EventType::Modified,
            "DELETED" => EventType::Deleted,
            "BOOKMARK" => EventType::Bookmark,
            "ERROR" => EventType::Error,
            _ => return None,
        })
    }
}

/// One JSON watch event line: `{"type":"ADDED","object":{...}}\n`, around the object's JSON
/// (with kind and apiVersion).
pub fn write_json_event(ty: EventType, object_json: &[u8], out: &mut Vec<u8>) {
    out.reserve(object_json.len() + 32);
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(ty.as_str().as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    out.extend_from_slice(object_json);
    out.extend_from_slice(b"}\n");
}

/// One protobuf watch frame: a 4-byte big-endian length, then metav1.WatchEvent{type,
/// object: RawExtension{raw: the enveloped object}} with no envelope of its own.
pub fn write_pb_event(ty: EventType, object_envelope: &[u8], out: &mut Vec<u8>) {
    let t = ty.as_str().as_bytes();
    let raw_ext = 1 + varint_len(object_envelope.len() as u64) + object_envelope.len();
    let len = 1 + 1 + t.len() + 1 + varint_len(raw_ext as u64) + raw_ext;
    out.reserve(len + 4);
    out.extend_from_slice(&(len as u32).to_be_bytes());
    put_bytes_field(out, 1, t);
    put_tag(out, 2, WIRE_LEN);
    put_varint(out, raw_ext as u64);
    put_bytes_field(out, 1, object_envelope);
}

/// A watch frame read off the wire: (event type, enveloped object, bytes consumed).
pub type PbEvent<'a> = (EventType, &'a [u8], usize);

/// Splits one protobuf watch frame off the front of `buf`: (event type, enveloped object,
/// bytes consumed), or None when the frame is not complete yet.
pub fn read_pb_event(buf: &[u8]) -> Result<Option<PbEvent<'_>>, CodecError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if buf.len() < 4 + len {
        return Ok(None);
    }
    let frame = &buf[4..4 + len];
    let mut r = Reader::new(frame, 4);
    let mut ty = None;
    let mut object: &[u8] = &[];
    while !r.at_end() {
        let (n, v, at) = r.field()?;
        match (n, v) {
            (1, WireValue::Len(t)) => {
                let s = utf8(t, at)?;
                ty = Some(EventType::parse(s).ok_or_else(|| {
                    CodecError::at(at, format_args!("unknown watch event type {s:?}"))
                })?);
            }
            (2, WireValue::Len(ext)) => {
                let mut e = Reader::new(ext, at);
                while !e.at_end() {
                    if let (1, WireValue::Len(raw), _) = e.field()? {
                        object = raw;
                    }
                }
            }
            _ => {}
        }
    }
    let ty = ty.ok_or_else(|| CodecError::malformed("watch event without a type"))?;
    Ok(Some((ty, object, 4 + len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trips_with_the_empty_trailer() {
        let mut out = Vec::new();
        write_envelope("v1", "Pod", b"\x0a\x00", &mut out);
        assert_eq!(
            out,
            b"k8s\0\x0a\x09\x0a\x02v1\x12\x03Pod\x12\x02\x0a\x00\x1a\x00\x22\x00"
        );
        let env = Envelope::parse(&out).unwrap();
        assert_eq!(
            (env.api_version, env.kind, env.raw),
            ("v1", "Pod", &b"\x0a\x00"[..])
        );
        assert_eq!(&out[env.raw_offset..env.raw_offset + 2], b"\x0a\x00");
    }

    #[test]
    fn envelope_errors_are_precise() {
        assert!(
            Envelope::parse(b"{}")
                .unwrap_err()
                .to_string()
                .contains("k8s\\0")
        );
        let err = Envelope::parse(b"k8s\0\x0a\x09\x0a\x02v1").unwrap_err();
        assert_eq!(err.kind, ErrorKind::Truncated);
    }

    #[test]
    fn json_list_wraps_items_as_upstream() {
        let mut out = Vec::new();
        let meta = ListMeta {
            resource_version: "304",
            continue_token: "abc",
            remaining_item_count: Some(1),
        };
        write_json_list(
            "v1",
            "PodList",
            &meta,
            &[b"{\"a\":1}", b"{\"b\":2}"],
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"304\",\"continue\":\"abc\",\"remainingItemCount\":1},\"items\":[{\"a\":1},{\"b\":2}]}\n"
        );
        let mut empty = Vec::new();
        let none: [&[u8]; 0] = [];
        write_json_list(
            "v1",
            "PodList",
            &ListMeta {
                resource_version: "1",
                ..Default::default()
            },
            &none,
            &mut empty,
        );
        assert_eq!(
            String::from_utf8(empty).unwrap(),
            "{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"1\"},\"items\":[]}\n"
        );
    }

    #[test]
    fn pb_event_frames_round_trip() {
        let mut obj = Vec::new();
        write_envelope("v1", "Pod", b"\x0a\x00", &mut obj);
        let mut frame = Vec::new();
        write_pb_event(EventType::Added, &obj, &mut frame);
        assert_eq!(read_pb_event(&frame[..frame.len() - 1]).unwrap(), None);
        let (ty, o, used) = read_pb_event(&frame).unwrap().unwrap();
        assert_eq!((ty, o, used), (EventType::Added, &obj[..], frame.len()));
    }
}
