//! Protobuf → JSON, driven by the schema: reads a message's fields off the wire, then writes
//! them in Go declaration order with Go's zero-value rules, so the JSON is the JSON upstream
//! writes for the same object. Streaming: no object tree is built.
//! Hot path: every JSON read of a stored object (benches/codec.rs `pb_to_json`).

use base64::Engine;

use crate::error::{CodecError, MAX_DEPTH};
use crate::goscalar;
use crate::json_write::{write_i64, write_str, write_u64};
use crate::schema::{Field, FieldType, MapValue, Message, MsgId, Scalar, Schema, Shape, Special};
use crate::wire::{Reader, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT, WireValue};

/// A map entry: its key and its value with the value's offset.
type MapEntry<'a> = (&'a [u8], Option<(WireValue<'a>, usize)>);

/// One field occurrence, recorded while scanning a message.
#[derive(Clone, Copy)]
struct Occ<'a> {
    /// Index of the field in Go order.
    field: u16,
    /// Position among the message's occurrences, to keep repeated values in order.
    seq: u32,
    value: WireValue<'a>,
    /// Offset of the field's tag in the whole input, for errors.
    at: usize,
}

/// Writes protobuf messages as JSON. Holds scratch space reused across calls.
pub struct PbToJson<'s> {
    schema: &'s Schema,
    /// Whether to write what upstream's defaulting adds on every decode and protobuf cannot
    /// keep (see `served`).
    decode_defaults: bool,
    /// Whether the input's raw JSON fields are known compact (see `trusting_raw_json`).
    trusted_raw_json: bool,
}

impl<'s> PbToJson<'s> {
    /// The object exactly as its protobuf says (upstream's serializer).
    pub fn new(schema: &'s Schema) -> Self {
        PbToJson {
            schema,
            decode_defaults: false,
            trusted_raw_json: false,
        }
    }

    /// The object as upstream's apiserver serves it: decoding applies defaults, and one of them
    /// writes what protobuf drops, the TypeMeta of a StatefulSet's claim templates.
    pub fn served(schema: &'s Schema) -> Self {
        PbToJson {
            schema,
            decode_defaults: true,
            trusted_raw_json: false,
        }
    }

    /// For bytes kapi's own encoder wrote (`JsonToPb`, which compacts every `RawExtension` and
    /// `FieldsV1` as Go's encoder does): those fields are copied as they are instead of being
    /// compacted and checked again. A write's answer is such bytes; stored objects read back
    /// are not (another apiserver may have written them).
    pub fn trusting_raw_json(mut self, trusted: bool) -> Self {
        self.trusted_raw_json = trusted;
        self
    }

    /// Writes message `id` encoded in `bytes` (which start at `base` in the whole input) as a
    /// JSON object. `type_meta` is (apiVersion, kind), written where the kind's TypeMeta is.
    pub fn message(
        &self,
        id: MsgId,
        bytes: &[u8],
        base: usize,
        type_meta: Option<(&str, &str)>,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        self.value_message(id, Some((bytes, base)), type_meta, out, 0)
    }

    /// Writes a message-typed value: specials by their own rules, others as an object.
    /// `bytes` is None when the field is absent (its zero value is written).
    fn value_message(
        &self,
        id: MsgId,
        bytes: Option<(&[u8], usize)>,
        type_meta: Option<(&str, &str)>,
        out: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), CodecError> {
        if depth > MAX_DEPTH {
            return Err(CodecError::too_deep(MAX_DEPTH));
        }
        let msg = self.schema.msg(id);
        if msg.special != Special::None {
            return self.special(msg, bytes.unwrap_or((&[], 0)), out, depth);
        }
        out.push(b'{');
        let mut first = true;
        self.fields(msg, bytes, type_meta, out, &mut first, depth)?;
        out.push(b'}');
        Ok(())
    }

    /// Writes the fields of `msg` (without braces), so inline fields can flatten into their
    /// parent.
    fn fields(
        &self,
        msg: &Message,
        bytes: Option<(&[u8], usize)>,
        type_meta: Option<(&str, &str)>,
        out: &mut Vec<u8>,
        first: &mut bool,
        depth: usize,
    ) -> Result<(), CodecError> {
        // Scan: most messages have few occurrences; 32 covers them without a heap allocation.
        let mut occs: smallvec::SmallVec<[Occ<'_>; 32]> = smallvec::SmallVec::new();
        if let Some((buf, base)) = bytes {
            let mut r = Reader::new(buf, base);
            let mut seq = 0u32;
            let mut sorted = true;
            let mut last = 0u16;
            while !r.at_end() {
                let (number, value, at) = r.field()?;
                // Unknown fields are skipped, as gogo-protobuf does.
                if let Some(fi) = msg.field_index_by_number(number) {
                    let fi = fi as u16;
                    sorted &= fi >= last;
                    last = fi;
                    occs.push(Occ {
                        field: fi,
                        seq,
                        value,
                        at,
                    });
                    seq += 1;
                }
            }
            if !sorted {
                occs.sort_unstable_by_key(|o| (o.field, o.seq));
            }
        }
        // Visit the fields present and those that write something when absent, in Go order.
        let emitters = &msg.absent_emitters;
        let (mut k, mut p) = (0, 0);
        loop {
            let next_occ = occs.get(k).map_or(usize::MAX, |o| o.field as usize);
            let next_emit = emitters.get(p).map_or(usize::MAX, |&e| e as usize);
            let fi = next_occ.min(next_emit);
            if fi == usize::MAX {
                break;
            }
            if next_emit == fi {
                p += 1;
            }
            let start = k;
            while k < occs.len() && occs[k].field as usize == fi {
                k += 1;
            }
            let here = &occs[start..k];
            let f = &msg.fields[fi];
            match f.ty {
                FieldType::TypeMeta => {
                    if let Some((api_version, kind)) = type_meta {
                        if !kind.is_empty() {
                            key(out, first, "kind");
                            write_str(out, kind.as_bytes());
                        }
                        if !api_version.is_empty() {
                            key(out, first, "apiVersion");
                            write_str(out, api_version.as_bytes());
                        }
                    }
                }
                FieldType::Message(inner) if f.inline => {
                    let b = match here.last() {
                        Some(o) => Some(len_value(f, o)?),
                        None => None,
                    };
                    let inner_msg = self.schema.msg(inner);
                    self.fields(inner_msg, b, type_meta, out, first, depth + 1)?;
                }
                _ => self.field(f, here, out, first, depth)?,
            }
        }
        Ok(())
    }

    fn field(
        &self,
        f: &Field,
        occs: &[Occ<'_>],
        out: &mut Vec<u8>,
        first: &mut bool,
        depth: usize,
    ) -> Result<(), CodecError> {
        let is_map = matches!(f.ty, FieldType::Map(..));
        if (f.repeated || is_map) && occs.is_empty() {
            // A nil slice or map: Go writes `null` unless omitempty.
            if !f.omitempty {
                field_key(out, first, f);
                out.extend_from_slice(b"null");
            }
            return Ok(());
        }
        if f.repeated {
            field_key(out, first, f);
            out.push(b'[');
            let mut n = 0;
            for o in occs {
                match (f.ty, o.value) {
                    // Packed repeated scalars (Kubernetes does not write them; accept them).
                    (FieldType::Scalar(s), WireValue::Len(b)) if s.wire_type() != WIRE_LEN => {
                        let mut r = Reader::new(b, o.at);
                        while !r.at_end() {
                            if n > 0 {
                                out.push(b',');
                            }
                            n += 1;
                            let v = match s.wire_type() {
                                WIRE_VARINT => WireValue::Varint(r.varint()?),
                                WIRE_FIXED64 => r.fixed(8)?,
                                _ => r.fixed(4)?,
                            };
                            scalar(s, v, o.at, &f.json, out)?;
                        }
                    }
                    _ => {
                        if n > 0 {
                            out.push(b',');
                        }
                        n += 1;
                        self.single(f, o, out, depth)?;
                    }
                }
            }
            out.push(b']');
            return Ok(());
        }
        if let FieldType::Map(key_ty, value_ty) = f.ty {
            field_key(out, first, f);
            return self.map(key_ty, value_ty, occs, out, depth);
        }
        let last = occs.last();
        match (f.shape, last) {
            (Shape::Pointer, None) => Ok(()),
            (_, Some(o)) if f.omitempty && f.shape == Shape::Value && is_zero_scalar(f, o) => {
                Ok(())
            }
            (_, Some(o)) => {
                if f.omitzero && is_zero_message(self.schema, f, o) {
                    return Ok(());
                }
                field_key(out, first, f);
                self.single(f, o, out, depth)
            }
            (_, None) => {
                // An absent value field: Go writes its zero value.
                match f.ty {
                    FieldType::Scalar(s) => {
                        if f.omitempty || f.shape == Shape::Slice {
                            if !f.omitempty {
                                field_key(out, first, f);
                                out.extend_from_slice(b"null");
                            }
                            return Ok(());
                        }
                        field_key(out, first, f);
                        zero_scalar(s, out);
                        Ok(())
                    }
                    FieldType::Message(id) => {
                        if f.omitzero {
                            return Ok(());
                        }
                        let m = self.schema.msg(id);
                        if f.omitempty && m.special == Special::StringList {
                            return Ok(());
                        }
                        field_key(out, first, f);
                        self.value_message(id, None, None, out, depth + 1)
                    }
                    _ => Ok(()),
                }
            }
        }
    }

    /// One value of a field (an element, for repeated fields).
    fn single(
        &self,
        f: &Field,
        o: &Occ<'_>,
        out: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), CodecError> {
        match f.ty {
            FieldType::Scalar(s) => scalar(s, o.value, o.at, &f.json, out),
            FieldType::Message(id) => {
                let b = len_value(f, o)?;
                // A StatefulSet's claim templates are PersistentVolumeClaims that upstream's
                // defaulting gives their TypeMeta on every decode (protobuf does not keep it).
                let type_meta = (self.decode_defaults && &*f.json == "volumeClaimTemplates")
                    .then_some(("v1", "PersistentVolumeClaim"));
                self.value_message(id, Some(b), type_meta, out, depth + 1)
            }
            _ => Ok(()),
        }
    }

    fn map(
        &self,
        key_ty: Scalar,
        value_ty: MapValue,
        occs: &[Occ<'_>],
        out: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), CodecError> {
        // Entries: (key, value occurrence). Go writes map keys sorted; gogo-protobuf writes
        // them sorted too, so sorting is usually a no-op check.
        let mut entries: smallvec::SmallVec<[MapEntry<'_>; 16]> = smallvec::SmallVec::new();
        for o in occs {
            let WireValue::Len(b) = o.value else {
                return Err(CodecError::at(o.at, "map entry is not length-delimited"));
            };
            let mut r = Reader::new(b, o.at);
            let mut k: &[u8] = &[];
            let mut v = None;
            while !r.at_end() {
                let (n, val, at) = r.field()?;
                match (n, val) {
                    (1, WireValue::Len(kb)) => k = kb,
                    (1, _) => return Err(CodecError::at(at, "map key has the wrong wire type")),
                    (2, val) => v = Some((val, at)),
                    _ => {}
                }
            }
            if key_ty != Scalar::String {
                return Err(CodecError::at(o.at, "only string map keys are supported"));
            }
            entries.push((k, v));
        }
        if !entries.windows(2).all(|w| w[0].0 < w[1].0) {
            // Stable sort, then keep the last of equal keys (protobuf: last one wins).
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let mut dedup: smallvec::SmallVec<[MapEntry<'_>; 16]> = smallvec::SmallVec::new();
            for e in entries {
                match dedup.last_mut() {
                    Some(last) if last.0 == e.0 => *last = e,
                    _ => dedup.push(e),
                }
            }
            entries = dedup;
        }
        out.push(b'{');
        for (i, (k, v)) in entries.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(out, k);
            out.push(b':');
            match (value_ty, v) {
                (MapValue::Scalar(s), Some((val, at))) => scalar(s, *val, *at, "map value", out)?,
                (MapValue::Scalar(Scalar::Bytes), None) => out.extend_from_slice(b"null"),
                (MapValue::Scalar(s), None) => zero_scalar(s, out),
                (MapValue::Message(id), Some((WireValue::Len(b), at))) => {
                    self.value_message(id, Some((b, *at)), None, out, depth + 1)?
                }
                (MapValue::Message(_), Some((_, at))) => {
                    return Err(CodecError::at(*at, "map value has the wrong wire type"));
                }
                (MapValue::Message(id), None) => {
                    self.value_message(id, None, None, out, depth + 1)?
                }
            }
        }
        out.push(b'}');
        Ok(())
    }

    /// Messages with a hand-written JSON form in Go.
    fn special(
        &self,
        msg: &Message,
        (bytes, base): (&[u8], usize),
        out: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), CodecError> {
        let mut r = Reader::new(bytes, base);
        // Fields by number, last occurrence wins; repeated ones are collected in order.
        let mut f1: Option<(WireValue<'_>, usize)> = None;
        let mut f2: Option<(WireValue<'_>, usize)> = None;
        let mut f3: Option<(WireValue<'_>, usize)> = None;
        let mut rep: smallvec::SmallVec<[(&[u8], usize); 8]> = smallvec::SmallVec::new();
        let repeated_field = match msg.special {
            Special::StringList => 1,
            Special::PropsOrArray | Special::PropsOrStrings => 2,
            _ => 0,
        };
        while !r.at_end() {
            let (n, v, at) = r.field()?;
            if n == repeated_field {
                let WireValue::Len(b) = v else {
                    return Err(CodecError::at(at, "repeated field has the wrong wire type"));
                };
                rep.push((b, at));
                continue;
            }
            match n {
                1 => f1 = Some((v, at)),
                2 => f2 = Some((v, at)),
                3 => f3 = Some((v, at)),
                _ => {}
            }
        }
        match msg.special {
            Special::Time | Special::MicroTime => {
                if bytes.is_empty() {
                    out.extend_from_slice(b"null");
                    return Ok(());
                }
                let secs = varint_of(f1)? as i64;
                let nanos = varint_of(f2)? as i64 as i32;
                out.push(b'"');
                if msg.special == Special::Time {
                    goscalar::format_time(secs, out);
                } else {
                    goscalar::format_micro_time(secs, nanos.clamp(0, 999_999_999) as u32, out);
                }
                out.push(b'"');
            }
            Special::Duration => {
                out.push(b'"');
                goscalar::format_duration(varint_of(f1)? as i64, out);
                out.push(b'"');
            }
            Special::Quantity => {
                let s = bytes_of(f1)?.unwrap_or(b"");
                let s = std::str::from_utf8(s)
                    .map_err(|_| CodecError::at(base, "quantity is not valid UTF-8"))?;
                out.push(b'"');
                if s.is_empty() {
                    out.push(b'0');
                } else {
                    goscalar::canonical_quantity(s, out).map_err(|e| {
                        CodecError::at(base, format_args!("invalid quantity {s:?}: {}", e.0))
                    })?;
                }
                out.push(b'"');
            }
            Special::IntOrString => {
                let ty = varint_of(f1)?;
                if ty == 1 {
                    write_str(out, bytes_of(f3)?.unwrap_or(b""));
                } else {
                    write_i64(out, i64::from(varint_of(f2)? as i64 as i32));
                }
            }
            Special::RawExtension | Special::Unknown | Special::RawJson => {
                let raw_field = if msg.special == Special::Unknown {
                    f2
                } else {
                    f1
                };
                match bytes_of(raw_field)? {
                    Some(raw)
                        if self.trusted_raw_json
                            && msg.special != Special::Unknown
                            && raw.first().is_some_and(|b| matches!(b, b'{' | b'[' | b'"')) =>
                    {
                        out.extend_from_slice(raw)
                    }
                    Some(raw) if !raw.is_empty() => {
                        let at = raw_field.map(|(_, at)| at).unwrap_or(base);
                        self.embedded(raw, at, out, depth)?
                    }
                    _ => out.extend_from_slice(b"null"),
                }
            }
            Special::StringList => {
                out.push(b'[');
                for (i, (s, _)) in rep.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_str(out, s);
                }
                out.push(b']');
            }
            Special::PropsOrArray | Special::PropsOrBool | Special::PropsOrStrings => {
                let props = self
                    .schema
                    .schema_props_of(msg)
                    .ok_or_else(|| CodecError::malformed("schema lacks JSONSchemaProps"))?;
                let schema_field = if msg.special == Special::PropsOrBool {
                    f2
                } else {
                    f1
                };
                let schema = bytes_of(schema_field)?;
                let schema_at = schema_field.map(|(_, at)| at).unwrap_or(base);
                match msg.special {
                    Special::PropsOrArray if !rep.is_empty() => {
                        out.push(b'[');
                        for (i, (b, at)) in rep.iter().enumerate() {
                            if i > 0 {
                                out.push(b',');
                            }
                            self.value_message(props, Some((b, *at)), None, out, depth + 1)?;
                        }
                        out.push(b']');
                    }
                    Special::PropsOrStrings if !rep.is_empty() => {
                        out.push(b'[');
                        for (i, (s, _)) in rep.iter().enumerate() {
                            if i > 0 {
                                out.push(b',');
                            }
                            write_str(out, s);
                        }
                        out.push(b']');
                    }
                    _ => match schema {
                        Some(b) => {
                            self.value_message(props, Some((b, schema_at)), None, out, depth + 1)?
                        }
                        None if msg.special == Special::PropsOrBool => {
                            let allows = varint_of(f1)? != 0;
                            out.extend_from_slice(if allows { b"true" } else { b"false" });
                        }
                        None => out.extend_from_slice(b"null"),
                    },
                }
            }
            Special::None => unreachable!("special() is only called for specials"),
        }
        Ok(())
    }

    /// An embedded object: JSON bytes (compacted, as Go's encoder does to them), or a
    /// protobuf `k8s\0` envelope, transcoded.
    fn embedded(
        &self,
        raw: &[u8],
        at: usize,
        out: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), CodecError> {
        if raw.starts_with(crate::envelope::PROTOBUF_MAGIC) {
            let env = crate::envelope::Envelope::parse(raw)?;
            let id = self
                .schema
                .kind(env.api_version, env.kind)
                .ok_or_else(|| crate::envelope::unknown_kind(env.api_version, env.kind))?;
            return self.value_message(
                id,
                Some((env.raw, at + env.raw_offset)),
                Some((env.api_version, env.kind)),
                out,
                depth + 1,
            );
        }
        crate::json_compact::compact(raw, out).map_err(|bad| {
            CodecError::malformed(format!(
                "embedded object at byte {at} is not valid JSON (at its byte {bad})"
            ))
        })
    }
}

#[inline]
fn key(out: &mut Vec<u8>, first: &mut bool, name: &str) {
    if !*first {
        out.push(b',');
    }
    *first = false;
    out.push(b'"');
    // JSON names of the schema are plain ASCII identifiers: no escaping needed.
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

/// A field's key, pre-rendered in the schema.
#[inline]
fn field_key(out: &mut Vec<u8>, first: &mut bool, f: &Field) {
    if !*first {
        out.push(b',');
    }
    *first = false;
    out.extend_from_slice(&f.json_key);
}

fn len_value<'a>(f: &Field, o: &Occ<'a>) -> Result<(&'a [u8], usize), CodecError> {
    match o.value {
        WireValue::Len(b) => Ok((b, o.at)),
        _ => Err(CodecError::at(
            o.at,
            format_args!(
                "field {:?} (number {}) has the wrong wire type",
                &*f.json, f.number
            ),
        )),
    }
}

fn varint_of(f: Option<(WireValue<'_>, usize)>) -> Result<u64, CodecError> {
    match f {
        None => Ok(0),
        Some((WireValue::Varint(v), _)) => Ok(v),
        Some((_, at)) => Err(CodecError::at(at, "expected a varint field")),
    }
}

fn bytes_of<'a>(f: Option<(WireValue<'a>, usize)>) -> Result<Option<&'a [u8]>, CodecError> {
    match f {
        None => Ok(None),
        Some((WireValue::Len(b), _)) => Ok(Some(b)),
        Some((_, at)) => Err(CodecError::at(at, "expected a length-delimited field")),
    }
}

/// Writes one scalar value as Go's encoding/json writes the Go type it decodes to.
fn scalar(
    s: Scalar,
    v: WireValue<'_>,
    at: usize,
    name: &str,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    let wrong = || {
        CodecError::at(
            at,
            format_args!("field {name:?} has the wrong wire type for {}", s.go_name()),
        )
    };
    match (s, v) {
        (Scalar::String, WireValue::Len(b)) => write_str(out, b),
        (Scalar::Bytes, WireValue::Len(b)) => {
            out.push(b'"');
            let start = out.len();
            let n = base64::encoded_len(b.len(), true).unwrap_or(0);
            out.resize(start + n, 0);
            let written = base64::engine::general_purpose::STANDARD
                .encode_slice(b, &mut out[start..])
                .map_err(|_| CodecError::malformed("base64 buffer"))?;
            out.truncate(start + written);
            out.push(b'"');
        }
        (Scalar::Bool, WireValue::Varint(x)) => {
            out.extend_from_slice(if x != 0 { b"true" } else { b"false" })
        }
        (Scalar::Int32, WireValue::Varint(x)) => write_i64(out, i64::from(x as i64 as i32)),
        (Scalar::Int64, WireValue::Varint(x)) => write_i64(out, x as i64),
        (Scalar::Uint32, WireValue::Varint(x)) => write_u64(out, u64::from(x as u32)),
        (Scalar::Uint64, WireValue::Varint(x)) => write_u64(out, x),
        (Scalar::Sint32, WireValue::Varint(x)) => {
            let x = x as u32;
            write_i64(out, i64::from(((x >> 1) as i32) ^ -((x & 1) as i32)))
        }
        (Scalar::Sint64, WireValue::Varint(x)) => {
            write_i64(out, ((x >> 1) as i64) ^ -((x & 1) as i64))
        }
        (Scalar::Double, WireValue::Fixed64(x)) => {
            goscalar::format_go_float64(f64::from_bits(x), out)
                .map_err(|e| CodecError::at(at, format_args!("field {name:?}: {}", e.0)))?
        }
        (Scalar::Float, WireValue::Fixed32(x)) => {
            goscalar::format_go_float32(f32::from_bits(x), out)
                .map_err(|e| CodecError::at(at, format_args!("field {name:?}: {}", e.0)))?
        }
        _ => return Err(wrong()),
    }
    Ok(())
}

fn zero_scalar(s: Scalar, out: &mut Vec<u8>) {
    out.extend_from_slice(match s {
        Scalar::String => b"\"\"",
        Scalar::Bool => b"false",
        Scalar::Bytes => b"null",
        _ => b"0",
    });
}

/// Whether a present value-shaped scalar holds its zero value (omitempty then omits it).
fn is_zero_scalar(f: &Field, o: &Occ<'_>) -> bool {
    match (f.ty, o.value) {
        (FieldType::Scalar(Scalar::Double), WireValue::Fixed64(x)) => f64::from_bits(x) == 0.0,
        (FieldType::Scalar(Scalar::Float), WireValue::Fixed32(x)) => f32::from_bits(x) == 0.0,
        (
            FieldType::Scalar(Scalar::Int32 | Scalar::Uint32 | Scalar::Sint32),
            WireValue::Varint(x),
        ) => x as u32 == 0,
        (FieldType::Scalar(_), WireValue::Varint(x)) => x == 0,
        (FieldType::Scalar(_), WireValue::Len(b)) => b.is_empty(),
        _ => false,
    }
}

/// omitzero on a message (only ObjectMeta.creationTimestamp): a Time with no bytes is zero.
fn is_zero_message(schema: &Schema, f: &Field, o: &Occ<'_>) -> bool {
    match (f.ty, o.value) {
        (FieldType::Message(id), WireValue::Len(b)) => {
            matches!(schema.msg(id).special, Special::Time | Special::MicroTime) && b.is_empty()
        }
        _ => false,
    }
}

/// Transcodes a `k8s\0` envelope (as etcd stores built-in kinds) to the JSON upstream writes.
/// An envelope with an empty TypeMeta is a bare `WatchEvent` (the one message upstream writes
/// without one), written as upstream writes it: `type` and `object`, no apiVersion or kind.
pub fn envelope_to_json(bytes: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
    let env = crate::envelope::Envelope::parse(bytes)?;
    let schema = Schema::get();
    if env.api_version.is_empty() && env.kind.is_empty() {
        let id = schema
            .kind("v1", "WatchEvent")
            .ok_or_else(|| crate::envelope::unknown_kind("v1", "WatchEvent"))?;
        return PbToJson::new(schema).message(id, env.raw, env.raw_offset, None, out);
    }
    let id = schema
        .kind(env.api_version, env.kind)
        .ok_or_else(|| crate::envelope::unknown_kind(env.api_version, env.kind))?;
    PbToJson::new(schema).message(
        id,
        env.raw,
        env.raw_offset,
        Some((env.api_version, env.kind)),
        out,
    )
}
