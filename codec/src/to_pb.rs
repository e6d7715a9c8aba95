//! JSON → protobuf, driven by the schema: walks the parsed JSON tape (a request body's text) or
//! a decoded `serde_json::Value` (the write pipeline's object, `value_to_envelope`: the same
//! bytes without printing and re-parsing it; tests/value_source.rs) and writes each message's
//! fields in protobuf number order, with gogo-protobuf's rules for what is written (value
//! fields always, pointers when set, map entries sorted), so the bytes are the bytes upstream
//! stores. Unknown and duplicate fields are reported per the field-validation mode.
//! Hot path: the write path of every create/update (benches/codec.rs `json_to_pb`).

use std::borrow::Cow;

use base64::Engine;

use crate::error::{CodecError, ErrorKind, FieldValidation, MAX_DEPTH};
use crate::goscalar;
use crate::json_read::{Doc, Tok};
use crate::schema::{Field, FieldType, MapValue, Message, MsgId, Scalar, Schema, Shape, Special};
use crate::wire::{
    WIRE_FIXED64, WIRE_VARINT, begin_len, end_len, put_bytes_field, put_tag, put_varint,
};

/// Go's zero time (0001-01-01T00:00:00Z) in Unix seconds: a Time holding it is written empty.
const GO_ZERO_TIME_SECS: i64 = -62_135_596_800;

/// Upper bound on unknown/duplicate field reports kept per object: enough to be useful,
/// bounded so a hostile body cannot grow the warning list without limit.
pub const MAX_FIELD_REPORTS: usize = 100;

#[derive(Debug, Clone, Copy)]
enum Seg<'s> {
    Field(&'s str),
    Index(usize),
}

/// What the encoder reads JSON through: the tape of a request body's text (`Doc`), or an
/// object already decoded to a `serde_json::Value` (the write pipeline's, encoded without
/// printing it as text and parsing it again).
pub trait Source<'d> {
    /// A value in the source.
    type Node: Copy;
    fn tok(&self, n: Self::Node) -> Tok;
    /// A string's content, unescaped.
    fn text(&self, n: Self::Node) -> Cow<'d, str>;
    /// A number's JSON text.
    fn number(&self, n: Self::Node) -> Cow<'d, str>;
    /// An object's members: key and value.
    fn members(&self, n: Self::Node) -> impl Iterator<Item = (Cow<'d, str>, Self::Node)>;
    fn elements(&self, n: Self::Node) -> impl Iterator<Item = Self::Node>;
    /// Appends the value as compact JSON, as Go's encoder writes embedded raw JSON.
    fn compact(&self, n: Self::Node, out: &mut Vec<u8>);
    /// Appends the value as compact JSON keeping its own escapes.
    fn compact_as_is(&self, n: Self::Node, out: &mut Vec<u8>);
    /// The JSON text a placeholder stands for (`raw_json_placeholder`), if `n` is one.
    fn raw_json(&self, _n: Self::Node) -> Option<&'d str> {
        None
    }
}

/// The one key of a placeholder object standing for JSON text not parsed yet: a create's
/// `fieldsV1`, printed straight from the object (`kapi::ssa`) and written as it is, instead of
/// a tree of maps built only to be printed again. The encoder honours it for `FieldsV1` only,
/// and only when the text is valid JSON; a client's object never keeps one (undecodable
/// managedFields are reset before the encoder sees them).
pub const RAW_JSON_KEY: &str = "\u{0}kapi:raw-json";

/// A placeholder for the JSON `text`.
pub fn raw_json_placeholder(text: String) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert(RAW_JSON_KEY.into(), serde_json::Value::String(text));
    serde_json::Value::Object(m)
}

/// Appends a placeholder's text as Go's encoder writes raw JSON; false (nothing appended)
/// when it is not valid JSON. The text is kapi's own compact print (`kapi::ssa`): unless it
/// holds a byte Go escapes and serde_json does not (`<`, `>`, `&`, or the lead byte of
/// U+2028/U+2029), it is copied as it is, without a second parse.
fn place_raw_json(text: &str, out: &mut Vec<u8>) -> bool {
    let plain = !text
        .bytes()
        .any(|b| matches!(b, b'<' | b'>' | b'&' | 0xE2 | b' ' | b'\n' | b'\r' | b'\t'));
    let shaped = text.starts_with('{') && text.ends_with('}');
    if plain && shaped {
        out.extend_from_slice(text.as_bytes());
        return true;
    }
    crate::json_compact::compact(text.as_bytes(), out).is_ok()
}

/// The JSON text of a placeholder.
pub fn raw_json_text(v: &serde_json::Value) -> Option<&str> {
    match v.as_object() {
        Some(m) if m.len() == 1 => m.get(RAW_JSON_KEY)?.as_str(),
        _ => None,
    }
}

impl<'d> Source<'d> for Doc<'d> {
    type Node = usize;
    #[inline]
    fn tok(&self, n: usize) -> Tok {
        self.node(n).tok
    }
    #[inline]
    fn text(&self, n: usize) -> Cow<'d, str> {
        self.str(n)
    }
    fn number(&self, n: usize) -> Cow<'d, str> {
        String::from_utf8_lossy(self.raw(n))
    }
    fn members(&self, n: usize) -> impl Iterator<Item = (Cow<'d, str>, usize)> {
        Doc::members(self, n).map(|(k, v)| (self.str(k), v))
    }
    fn elements(&self, n: usize) -> impl Iterator<Item = usize> {
        Doc::elements(self, n)
    }
    fn compact(&self, n: usize, out: &mut Vec<u8>) {
        if crate::json_compact::compact(self.raw_value(n), out).is_err() {
            // The tape parser already accepted this text; keep its own copy.
            self.write_compact(n, out);
        }
    }
    fn compact_as_is(&self, n: usize, out: &mut Vec<u8>) {
        self.write_compact(n, out);
    }
}

/// A decoded object as a source (the root is the value itself).
pub struct ValueSource<'d>(pub &'d serde_json::Value);

impl<'d> Source<'d> for ValueSource<'d> {
    type Node = &'d serde_json::Value;
    #[inline]
    fn tok(&self, n: Self::Node) -> Tok {
        use serde_json::Value::*;
        match n {
            Null => Tok::Null,
            Bool(true) => Tok::True,
            Bool(false) => Tok::False,
            Number(_) => Tok::Num,
            String(_) => Tok::Str,
            Array(_) => Tok::Arr,
            Object(_) => Tok::Obj,
        }
    }
    #[inline]
    fn text(&self, n: Self::Node) -> Cow<'d, str> {
        Cow::Borrowed(n.as_str().unwrap_or(""))
    }
    fn number(&self, n: Self::Node) -> Cow<'d, str> {
        match n {
            serde_json::Value::Number(x) => Cow::Owned(x.to_string()),
            _ => Cow::Borrowed(""),
        }
    }
    fn members(&self, n: Self::Node) -> impl Iterator<Item = (Cow<'d, str>, Self::Node)> {
        n.as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (Cow::Borrowed(k.as_str()), v))
    }
    fn elements(&self, n: Self::Node) -> impl Iterator<Item = Self::Node> {
        n.as_array().into_iter().flatten()
    }
    fn compact(&self, n: Self::Node, out: &mut Vec<u8>) {
        // serde_json prints compact JSON; Go's encoder also escapes HTML and U+2028/9.
        let text = serde_json::to_vec(n).unwrap_or_default();
        if crate::json_compact::compact(&text, out).is_err() {
            out.extend_from_slice(&text);
        }
    }
    fn compact_as_is(&self, n: Self::Node, out: &mut Vec<u8>) {
        let _ = serde_json::to_writer(&mut *out, n);
    }
    fn raw_json(&self, n: Self::Node) -> Option<&'d str> {
        raw_json_text(n)
    }
}

pub struct JsonToPb<'s, 'd, S: Source<'d> = Doc<'d>> {
    schema: &'s Schema,
    doc: &'d S,
    validation: FieldValidation,
    /// Unknown and duplicate fields, as upstream words them (`unknown field "spec.foo"`).
    pub reports: Vec<String>,
    path: Vec<Seg<'s>>,
}

impl<'s, 'd, S: Source<'d>> JsonToPb<'s, 'd, S> {
    pub fn new(schema: &'s Schema, doc: &'d S, validation: FieldValidation) -> Self {
        JsonToPb {
            schema,
            doc,
            validation,
            reports: Vec::new(),
            path: Vec::new(),
        }
    }

    /// Encodes the JSON value at `node` as message `id` (its body, no tag).
    pub fn message(
        &mut self,
        id: MsgId,
        node: S::Node,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        self.message_body(id, Some(node), out, true, 0)
    }

    fn path_string(&self, last: Option<&str>) -> String {
        let mut s = String::new();
        for seg in &self.path {
            match seg {
                Seg::Field(name) => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push_str(name);
                }
                Seg::Index(i) => {
                    s.push('[');
                    s.push_str(&i.to_string());
                    s.push(']');
                }
            }
        }
        if let Some(name) = last {
            if !s.is_empty() {
                s.push('.');
            }
            s.push_str(name);
        }
        s
    }

    fn report(&mut self, what: &str, name: &str) {
        if self.validation == FieldValidation::Ignore || self.reports.len() >= MAX_FIELD_REPORTS {
            return;
        }
        let path = self.path_string(Some(name));
        self.reports.push(format!("{what} field \"{path}\""));
    }

    fn type_error(&self, node: S::Node, go_type: &str) -> CodecError {
        let what = match self.doc.tok(node) {
            Tok::Null => "null",
            Tok::True | Tok::False => "bool",
            Tok::Num => "number",
            Tok::Str | Tok::StrEsc => "string",
            Tok::Arr => "array",
            Tok::Obj => "object",
        };
        let what = if self.doc.tok(node) == Tok::Num {
            format!("number {}", self.doc.number(node))
        } else {
            what.to_string()
        };
        CodecError::new(
            ErrorKind::Malformed,
            format!(
                "json: cannot unmarshal {what} into Go struct field {} of type {go_type}",
                self.path_string(None)
            ),
        )
    }

    /// Writes the body of message `id` from `node` (None or null: its zero value).
    /// `report` is false for inline messages, whose parent has already checked the keys.
    fn message_body(
        &mut self,
        id: MsgId,
        node: Option<S::Node>,
        out: &mut Vec<u8>,
        report: bool,
        depth: usize,
    ) -> Result<(), CodecError> {
        if depth > MAX_DEPTH {
            return Err(CodecError::too_deep(MAX_DEPTH));
        }
        let schema = self.schema;
        let msg = schema.msg(id);
        let node = node.filter(|&n| self.doc.tok(n) != Tok::Null);
        if msg.special != Special::None {
            return self.special(msg, node, out, depth);
        }
        if let Some(n) = node
            && self.doc.tok(n) != Tok::Obj
        {
            return Err(self.type_error(n, &format!("v1.{}", msg.short_name())));
        }
        // Which JSON member feeds each field.
        let mut slots: smallvec::SmallVec<[Option<S::Node>; 48]> =
            smallvec::smallvec![None; msg.fields.len()];
        if let Some(n) = node {
            let doc = self.doc;
            for (name, v) in doc.members(n) {
                match msg.field_index_by_json(&name) {
                    Some(fi) => {
                        if slots[fi].is_some() && report {
                            self.report("duplicate", &name);
                        }
                        slots[fi] = Some(v);
                    }
                    None if report && !self.known_elsewhere(msg, &name) => {
                        self.report("unknown", &name);
                    }
                    None => {}
                }
            }
        }
        for &fi in &msg.pb_order {
            let f = &msg.fields[fi as usize];
            if f.inline {
                let FieldType::Message(inner) = f.ty else {
                    continue;
                };
                let start = begin_len(out, f.number);
                self.message_body(inner, node, out, false, depth + 1)?;
                end_len(out, start);
                continue;
            }
            let value = match slots[fi as usize] {
                None if !f.pb_writes_zero => continue,
                // An absent value field: its zero value, which cannot fail.
                None => {
                    self.field(f, None, out, depth)?;
                    continue;
                }
                v => v,
            };
            self.path.push(Seg::Field(&f.json));
            let r = self.field(f, value, out, depth);
            self.path.pop();
            r?;
        }
        Ok(())
    }

    /// Whether a key that is not a direct field is still known: a field of an inline
    /// message, or the kind/apiVersion of a TypeMeta.
    fn known_elsewhere(&self, msg: &Message, name: &str) -> bool {
        if msg.has_typemeta && (name == "kind" || name == "apiVersion") {
            return true;
        }
        msg.fields.iter().any(|f| match f.ty {
            FieldType::Message(inner) if f.inline => {
                let m = self.schema.msg(inner);
                m.field_index_by_json(name).is_some() || self.known_elsewhere(m, name)
            }
            _ => false,
        })
    }

    fn field(
        &mut self,
        f: &'s Field,
        value: Option<S::Node>,
        out: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), CodecError> {
        let value = value.filter(|&n| self.doc.tok(n) != Tok::Null);
        if f.repeated {
            let Some(n) = value else { return Ok(()) };
            if self.doc.tok(n) != Tok::Arr {
                return Err(self.type_error(n, &self.go_type(f)));
            }
            let doc = self.doc;
            for (i, e) in doc.elements(n).enumerate() {
                self.path.push(Seg::Index(i));
                let r = self.single(f, Some(e), out, depth);
                self.path.pop();
                r?;
            }
            return Ok(());
        }
        if let FieldType::Map(_, value_ty) = f.ty {
            let Some(n) = value else { return Ok(()) };
            return self.map(f, value_ty, n, out, depth);
        }
        match (value, f.shape, f.ty) {
            (None, Shape::Pointer | Shape::Slice | Shape::Map, _) => Ok(()),
            (None, _, FieldType::Scalar(Scalar::Bytes)) => Ok(()),
            _ => self.single(f, value, out, depth),
        }
    }

    /// One value of a field with its tag; `value` None writes the zero value.
    fn single(
        &mut self,
        f: &'s Field,
        value: Option<S::Node>,
        out: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), CodecError> {
        match f.ty {
            FieldType::Scalar(s) => {
                let go_type = s.go_name();
                self.scalar(s, f.number, value, go_type, out)
            }
            FieldType::Message(id) => {
                let start = begin_len(out, f.number);
                self.message_body(id, value, out, true, depth + 1)?;
                end_len(out, start);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn go_type(&self, f: &Field) -> String {
        let elem = match f.ty {
            FieldType::Scalar(s) => s.go_name().to_string(),
            FieldType::Message(id) => format!("v1.{}", self.schema.msg(id).short_name()),
            FieldType::Map(_, MapValue::Scalar(s)) => format!("map[string]{}", s.go_name()),
            FieldType::Map(_, MapValue::Message(id)) => {
                format!("map[string]v1.{}", self.schema.msg(id).short_name())
            }
            FieldType::TypeMeta => "v1.TypeMeta".into(),
        };
        if f.repeated {
            format!("[]{elem}")
        } else {
            elem
        }
    }

    fn map(
        &mut self,
        f: &'s Field,
        value_ty: MapValue,
        n: S::Node,
        out: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), CodecError> {
        if self.doc.tok(n) != Tok::Obj {
            return Err(self.type_error(n, &self.go_type(f)));
        }
        let doc = self.doc;
        let mut entries: smallvec::SmallVec<[(Cow<'_, str>, S::Node); 8]> =
            doc.members(n).collect();
        // Sorted by key, as gogo-protobuf writes maps; for equal keys the last one wins.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut i = 0;
        while i < entries.len() {
            if i + 1 < entries.len() && entries[i + 1].0 == entries[i].0 {
                i += 1;
                continue;
            }
            let (key, v) = (&entries[i].0, entries[i].1);
            let start = begin_len(out, f.number);
            put_bytes_field(out, 1, key.as_bytes());
            self.path.push(Seg::Field(&f.json));
            let null = doc.tok(v) == Tok::Null;
            let r = match value_ty {
                MapValue::Scalar(Scalar::Bytes) if null => Ok(()),
                MapValue::Scalar(s) => self.scalar(s, 2, Some(v), s.go_name(), out),
                MapValue::Message(id) => {
                    let s = begin_len(out, 2);
                    let r = self.message_body(id, Some(v), out, true, depth + 1);
                    end_len(out, s);
                    r
                }
            };
            self.path.pop();
            r?;
            end_len(out, start);
            i += 1;
        }
        Ok(())
    }

    /// A scalar with its tag. `value` None (or null) writes the zero value.
    fn scalar(
        &mut self,
        s: Scalar,
        number: u32,
        value: Option<S::Node>,
        go_type: &str,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        let doc = self.doc;
        let value = value.filter(|&n| doc.tok(n) != Tok::Null);
        match s {
            Scalar::String => {
                let text = match value {
                    None => Cow::Borrowed(""),
                    Some(n) if matches!(doc.tok(n), Tok::Str | Tok::StrEsc) => doc.text(n),
                    Some(n) => return Err(self.type_error(n, go_type)),
                };
                put_bytes_field(out, number, text.as_bytes());
            }
            Scalar::Bytes => {
                let bytes = match value {
                    None => Vec::new(),
                    Some(n) if matches!(doc.tok(n), Tok::Str | Tok::StrEsc) => {
                        decode_base64(&doc.text(n)).map_err(|e| {
                            CodecError::malformed(format!(
                                "illegal base64 data in field {}: {e}",
                                self.path_string(None)
                            ))
                        })?
                    }
                    Some(n) => return Err(self.type_error(n, go_type)),
                };
                put_bytes_field(out, number, &bytes);
            }
            Scalar::Bool => {
                let b = match value {
                    None => false,
                    Some(n) => match doc.tok(n) {
                        Tok::False => false,
                        Tok::True => true,
                        _ => return Err(self.type_error(n, go_type)),
                    },
                };
                put_tag(out, number, WIRE_VARINT);
                out.push(b as u8);
            }
            Scalar::Double | Scalar::Float => {
                let x: f64 = match value {
                    None => 0.0,
                    Some(n) if doc.tok(n) == Tok::Num => Some(doc.number(n))
                        .and_then(|t| t.parse().ok())
                        .filter(|x: &f64| x.is_finite())
                        .ok_or_else(|| self.type_error(n, go_type))?,
                    Some(n) => return Err(self.type_error(n, go_type)),
                };
                if s == Scalar::Double {
                    put_tag(out, number, WIRE_FIXED64);
                    out.extend_from_slice(&x.to_le_bytes());
                } else {
                    put_tag(out, number, 5);
                    out.extend_from_slice(&(x as f32).to_le_bytes());
                }
            }
            _ => {
                let x: i128 = match value {
                    None => 0,
                    Some(n) if doc.tok(n) == Tok::Num => Some(doc.number(n))
                        .and_then(|t| t.parse::<i128>().ok())
                        .filter(|&x| int_fits(s, x))
                        .ok_or_else(|| self.type_error(n, go_type))?,
                    Some(n) => return Err(self.type_error(n, go_type)),
                };
                put_tag(out, number, WIRE_VARINT);
                let wire = match s {
                    Scalar::Sint32 => u64::from(((x as i32) << 1 ^ ((x as i32) >> 31)) as u32),
                    Scalar::Sint64 => ((x as i64) << 1 ^ ((x as i64) >> 63)) as u64,
                    // Negative int32 values are sign-extended to 10 bytes, as in Go.
                    _ => x as i64 as u64,
                };
                put_varint(out, wire);
            }
        }
        Ok(())
    }

    /// The body of a message with a hand-written JSON form.
    fn special(
        &mut self,
        msg: &'s Message,
        node: Option<S::Node>,
        out: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), CodecError> {
        let doc = self.doc;
        let text = |n: S::Node| -> Option<Cow<'_, str>> {
            matches!(doc.tok(n), Tok::Str | Tok::StrEsc).then(|| doc.text(n))
        };
        match msg.special {
            Special::Time | Special::MicroTime => {
                let Some(n) = node else { return Ok(()) };
                let s = text(n).ok_or_else(|| self.type_error(n, "v1.Time"))?;
                let parsed = if msg.special == Special::Time {
                    goscalar::parse_rfc3339(&s)
                } else {
                    goscalar::parse_micro_time(&s)
                };
                let (secs, nanos) = parsed.map_err(|e| {
                    CodecError::malformed(format!(
                        "parsing time {:?} in field {}: {}",
                        &*s,
                        self.path_string(None),
                        e.0
                    ))
                })?;
                let nanos = if msg.special == Special::Time {
                    0
                } else {
                    nanos
                };
                if secs == GO_ZERO_TIME_SECS && nanos == 0 {
                    return Ok(());
                }
                put_tag(out, 1, WIRE_VARINT);
                put_varint(out, secs as u64);
                put_tag(out, 2, WIRE_VARINT);
                put_varint(out, u64::from(nanos));
            }
            Special::Duration => {
                let nanos = match node {
                    None => 0,
                    Some(n) => {
                        let s = text(n).ok_or_else(|| self.type_error(n, "v1.Duration"))?;
                        goscalar::parse_duration(&s).map_err(|e| {
                            CodecError::malformed(format!(
                                "{} in field {}",
                                e.0,
                                self.path_string(None)
                            ))
                        })?
                    }
                };
                put_tag(out, 1, WIRE_VARINT);
                put_varint(out, nanos as u64);
            }
            Special::Quantity => {
                let mut canonical = Vec::with_capacity(8);
                match node {
                    None => canonical.push(b'0'),
                    Some(n) => {
                        let s: Cow<'_, str> = match doc.tok(n) {
                            Tok::Num => doc.number(n),
                            Tok::Str | Tok::StrEsc => doc.text(n),
                            _ => return Err(self.type_error(n, "resource.Quantity")),
                        };
                        goscalar::canonical_quantity(s.trim(), &mut canonical).map_err(|e| {
                            CodecError::malformed(format!(
                                "{} (field {})",
                                e.0,
                                self.path_string(None)
                            ))
                        })?;
                    }
                }
                put_bytes_field(out, 1, &canonical);
            }
            Special::IntOrString => {
                let (ty, int, s): (u64, i64, Cow<'_, str>) = match node {
                    None => (0, 0, Cow::Borrowed("")),
                    Some(n) => match doc.tok(n) {
                        Tok::Str | Tok::StrEsc => (1, 0, doc.text(n)),
                        Tok::Num => {
                            let v = Some(doc.number(n))
                                .and_then(|t| t.parse::<i32>().ok())
                                .ok_or_else(|| self.type_error(n, "int32"))?;
                            (0, i64::from(v), Cow::Borrowed(""))
                        }
                        _ => return Err(self.type_error(n, "intstr.IntOrString")),
                    },
                };
                put_tag(out, 1, WIRE_VARINT);
                put_varint(out, ty);
                put_tag(out, 2, WIRE_VARINT);
                put_varint(out, int as u64);
                put_bytes_field(out, 3, s.as_bytes());
            }
            Special::RawExtension | Special::RawJson => {
                if let Some(n) = node {
                    // Compacted straight into the output: the length prefix is patched after.
                    let start = begin_len(out, 1);
                    let placed = msg.name.ends_with(".FieldsV1")
                        && doc
                            .raw_json(n)
                            .is_some_and(|text| place_raw_json(text, out));
                    if !placed {
                        doc.compact(n, out);
                    }
                    end_len(out, start);
                }
            }
            Special::Unknown => {
                put_bytes_field(out, 1, b"");
                if let Some(n) = node {
                    let mut raw = Vec::new();
                    doc.compact_as_is(n, &mut raw);
                    put_bytes_field(out, 2, &raw);
                }
                put_bytes_field(out, 3, b"");
                put_bytes_field(out, 4, b"");
            }
            Special::StringList => {
                if let Some(n) = node {
                    if doc.tok(n) != Tok::Arr {
                        return Err(self.type_error(n, "[]string"));
                    }
                    for e in doc.elements(n) {
                        let s = match doc.tok(e) {
                            Tok::Null => Cow::Borrowed(""),
                            _ => text(e).ok_or_else(|| self.type_error(e, "string"))?,
                        };
                        put_bytes_field(out, 1, s.as_bytes());
                    }
                }
            }
            Special::PropsOrArray | Special::PropsOrBool | Special::PropsOrStrings => {
                let props = self
                    .schema
                    .schema_props_of(msg)
                    .ok_or_else(|| CodecError::malformed("schema lacks JSONSchemaProps"))?;
                let tok = node.map(|n| doc.tok(n));
                match (msg.special, tok, node) {
                    (_, None, _) | (_, _, None) => {
                        if msg.special == Special::PropsOrBool {
                            put_tag(out, 1, WIRE_VARINT);
                            out.push(0);
                        }
                    }
                    (Special::PropsOrBool, Some(Tok::True | Tok::False), Some(_)) => {
                        put_tag(out, 1, WIRE_VARINT);
                        out.push((tok == Some(Tok::True)) as u8);
                    }
                    (Special::PropsOrBool, Some(Tok::Obj), Some(n)) => {
                        put_tag(out, 1, WIRE_VARINT);
                        out.push(1);
                        let s = begin_len(out, 2);
                        self.message_body(props, Some(n), out, true, depth + 1)?;
                        end_len(out, s);
                    }
                    (Special::PropsOrArray | Special::PropsOrStrings, Some(Tok::Obj), Some(n)) => {
                        let s = begin_len(out, 1);
                        self.message_body(props, Some(n), out, true, depth + 1)?;
                        end_len(out, s);
                    }
                    (Special::PropsOrArray, Some(Tok::Arr), Some(n)) => {
                        for e in doc.elements(n) {
                            let s = begin_len(out, 2);
                            self.message_body(props, Some(e), out, true, depth + 1)?;
                            end_len(out, s);
                        }
                    }
                    (Special::PropsOrStrings, Some(Tok::Arr), Some(n)) => {
                        for e in doc.elements(n) {
                            let s = text(e).ok_or_else(|| self.type_error(e, "string"))?;
                            put_bytes_field(out, 2, s.as_bytes());
                        }
                    }
                    (_, _, Some(n)) => return Err(self.type_error(n, msg.short_name())),
                }
            }
            Special::None => unreachable!("special() is only called for specials"),
        }
        Ok(())
    }
}

fn int_fits(s: Scalar, x: i128) -> bool {
    match s {
        Scalar::Int32 | Scalar::Sint32 => i32::try_from(x).is_ok(),
        Scalar::Uint32 => u32::try_from(x).is_ok(),
        Scalar::Uint64 => u64::try_from(x).is_ok(),
        _ => i64::try_from(x).is_ok(),
    }
}

/// Go's base64.StdEncoding as encoding/json uses it for []byte: padding required; newlines
/// are ignored.
fn decode_base64(s: &str) -> Result<Vec<u8>, String> {
    let cleaned: Cow<'_, str> = if s.contains(['\r', '\n']) {
        Cow::Owned(s.chars().filter(|&c| c != '\r' && c != '\n').collect())
    } else {
        Cow::Borrowed(s)
    };
    base64::engine::general_purpose::STANDARD
        .decode(cleaned.as_bytes())
        .map_err(|e| e.to_string())
}

/// The result of decoding a JSON object for storage.
#[derive(Debug)]
pub struct Decoded {
    pub api_version: String,
    pub kind: String,
    /// Unknown and duplicate fields (empty under [`FieldValidation::Ignore`]).
    pub warnings: Vec<String>,
}

/// Reads `apiVersion` and `kind` from the top level of a JSON object.
pub fn type_meta(doc: &Doc<'_>) -> Result<(String, String), CodecError> {
    source_type_meta(doc, 0)
}

fn source_type_meta<'d, S: Source<'d>>(
    src: &S,
    root: S::Node,
) -> Result<(String, String), CodecError> {
    if src.tok(root) != Tok::Obj {
        return Err(CodecError::malformed(
            "json: cannot unmarshal the body into an object: it is not a JSON object",
        ));
    }
    let mut api_version = String::new();
    let mut kind = String::new();
    for (name, v) in src.members(root) {
        if name == "apiVersion" || name == "kind" {
            let value = match src.tok(v) {
                Tok::Str | Tok::StrEsc => src.text(v).into_owned(),
                Tok::Null => String::new(),
                _ => {
                    return Err(CodecError::malformed(format!(
                        "json: cannot unmarshal {name} into Go struct field TypeMeta.{name} of type string"
                    )));
                }
            };
            if name == "kind" {
                kind = value;
            } else {
                api_version = value;
            }
        }
    }
    Ok((api_version, kind))
}

/// Encodes a JSON object as the `k8s\0` protobuf envelope upstream stores. The kind comes
/// from the object's own `apiVersion` and `kind`, or from `expect` when given (then the
/// object's, if set, must agree).
pub fn json_to_envelope(
    json: &[u8],
    expect: Option<(&str, &str)>,
    validation: FieldValidation,
    out: &mut Vec<u8>,
) -> Result<Decoded, CodecError> {
    let doc = Doc::parse(json)?;
    out.reserve(json.len() / 2 + 64);
    source_to_envelope(&doc, 0, expect, validation, out)
}

/// `json_to_envelope` of an object already decoded: the same bytes as encoding its
/// `serde_json` text, without printing and parsing that text.
pub fn value_to_envelope(
    value: &serde_json::Value,
    expect: Option<(&str, &str)>,
    validation: FieldValidation,
    out: &mut Vec<u8>,
) -> Result<Decoded, CodecError> {
    source_to_envelope(&ValueSource(value), value, expect, validation, out)
}

fn source_to_envelope<'d, S: Source<'d>>(
    src: &'d S,
    root: S::Node,
    expect: Option<(&str, &str)>,
    validation: FieldValidation,
    out: &mut Vec<u8>,
) -> Result<Decoded, CodecError> {
    let (mut api_version, mut kind) = source_type_meta(src, root)?;
    if let Some((av, k)) = expect {
        if (!api_version.is_empty() && api_version != av) || (!kind.is_empty() && kind != k) {
            return Err(CodecError::malformed(format!(
                "the object's apiVersion/kind {api_version:?}/{kind:?} does not match {av:?}/{k:?}"
            )));
        }
        api_version = av.to_string();
        kind = k.to_string();
    }
    if kind.is_empty() {
        return Err(CodecError::malformed(
            "Object 'Kind' is missing in the object",
        ));
    }
    let schema = Schema::get();
    let id = schema
        .kind(&api_version, &kind)
        .ok_or_else(|| crate::envelope::unknown_kind(&api_version, &kind))?;
    let mut enc = JsonToPb::new(schema, src, validation);
    // Encoded straight into `out` behind the envelope header; the body's length is patched
    // in afterwards (one shift when it needs more than one length byte).
    let start_len = out.len();
    let body = crate::envelope::begin_envelope(&api_version, &kind, out);
    if let Err(e) = enc.message(id, root, out) {
        out.truncate(start_len);
        return Err(e);
    }
    if validation == FieldValidation::Strict && !enc.reports.is_empty() {
        out.truncate(start_len);
        return Err(CodecError::new(
            ErrorKind::Strict,
            format!("strict decoding error: {}", enc.reports.join(", ")),
        ));
    }
    crate::wire::end_len(out, body);
    crate::envelope::write_envelope_trailer(out);
    Ok(Decoded {
        api_version,
        kind,
        warnings: enc.reports,
    })
}
