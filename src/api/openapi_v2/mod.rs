//! `/openapi/v2` in both forms upstream serves: the JSON document and its protobuf form
//! (gnostic's `openapi_v2.Document`, which kubectl up to 1.28 asks for and nothing else).
//! Each form is built once per document version and kept by the JSON's hash; the handler picks
//! a form from the `Accept` list, with upstream's ETag, `If-None-Match` and gzip.

mod gnostic;
mod serve;
mod tree;
mod yaml;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use sha2::{Digest, Sha512};

pub use serve::serve;

/// The protobuf form of an OpenAPI v2 JSON document, as kube-openapi's `ToProtoBinary` makes
/// it (gnostic's `ParseDocument`, then `proto.Marshal`). Empty when `try_v2_protobuf` fails.
pub fn v2_protobuf(json: &[u8]) -> Vec<u8> {
    try_v2_protobuf(json).unwrap_or_default()
}

/// The protobuf form, or `None` for bytes that are not JSON or nest deeper than serde_json's
/// recursion limit (128), which bounds the conversion's own recursion. Values of the wrong
/// type are left out where gnostic would fail the whole document.
pub fn try_v2_protobuf(json: &[u8]) -> Option<Vec<u8>> {
    tree::parse(json).ok().map(|root| gnostic::document(&root))
}

/// Upstream's OpenAPI ETag of a document: the SHA-512 of its JSON bytes in upper-case hex
/// (kube-openapi's `computeETag`); both forms of one version carry the same ETag.
pub fn etag(json: &[u8]) -> String {
    data_encoding::HEXUPPER.encode(&Sha512::digest(json))
}

/// One version of the v2 document in every form served, built once.
pub struct V2Forms {
    /// The key this version is cached under (the caller's hash of the JSON).
    key: String,
    pub json: Bytes,
    /// Empty when the document has no protobuf form (`protobuf_failed`).
    pub protobuf: Bytes,
    /// The conversion failed: the protobuf form is answered 503, as upstream does when its
    /// conversion errs and it has no older bytes.
    pub protobuf_failed: bool,
    /// Without quotes.
    pub etag: String,
    /// When this version was first served (`Last-Modified`), as an HTTP date.
    pub last_modified: String,
    /// The same instant in whole seconds since the epoch (`If-Modified-Since` compares them).
    pub last_modified_secs: u64,
    json_gzip: OnceLock<Bytes>,
    protobuf_gzip: OnceLock<Bytes>,
}

/// Which form of the document a request gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    Json,
    Protobuf,
}

impl V2Forms {
    fn build(key: &str, json: &Bytes) -> V2Forms {
        let now = std::time::SystemTime::now();
        let protobuf = try_v2_protobuf(json);
        V2Forms {
            key: key.to_string(),
            json: json.clone(),
            protobuf: protobuf.clone().unwrap_or_default().into(),
            protobuf_failed: protobuf.is_none(),
            etag: etag(json),
            last_modified: serve::http_date(now),
            last_modified_secs: now
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            json_gzip: OnceLock::new(),
            protobuf_gzip: OnceLock::new(),
        }
    }

    pub fn body(&self, form: Form) -> &Bytes {
        match form {
            Form::Json => &self.json,
            Form::Protobuf => &self.protobuf,
        }
    }

    /// The form gzipped, compressed on first use (upstream's gzip handler compresses every
    /// response; the bytes do not change within a version, so here it is done once).
    pub fn gzipped(&self, form: Form) -> &Bytes {
        self.gzip_cell(form).get_or_init(|| gzip(self.body(form)))
    }

    /// The gzipped form if it has been made already.
    pub fn gzipped_if_made(&self, form: Form) -> Option<&Bytes> {
        self.gzip_cell(form).get()
    }

    fn gzip_cell(&self, form: Form) -> &OnceLock<Bytes> {
        match form {
            Form::Json => &self.json_gzip,
            Form::Protobuf => &self.protobuf_gzip,
        }
    }
}

fn gzip(body: &[u8]) -> Bytes {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(body);
    enc.finish().unwrap_or_default().into()
}

/// The current version's forms. Held only to read or swap the `Arc`, never while building,
/// so a core's look-up never waits for a conversion; one entry bounds the cache (an older
/// version is never served again once the document has changed, and requests still holding
/// its `Arc` finish with it).
static LATEST: Mutex<Option<Arc<V2Forms>>> = Mutex::new(None);
/// Held while a version is built, so that concurrent first requests convert it once.
static BUILDING: Mutex<()> = Mutex::new(());

/// The forms of the version whose hash is `hash`, if they are built.
pub fn cached(hash: &str) -> Option<Arc<V2Forms>> {
    let latest = LATEST.lock().unwrap_or_else(|e| e.into_inner());
    latest.as_ref().filter(|f| f.key == hash).cloned()
}

/// The forms of the document whose JSON is `json` and whose hash is `hash` (any stable hash
/// of the bytes, e.g. `Doc::hash`): built on the first call for a version (CPU-heavy: call it
/// off the cores, as `serve` does, or ahead of time when the document changes), then shared.
pub fn forms(json: &Bytes, hash: &str) -> Arc<V2Forms> {
    if let Some(f) = cached(hash) {
        return f;
    }
    let _building = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(f) = cached(hash) {
        return f;
    }
    let built = Arc::new(V2Forms::build(hash, json));
    *LATEST.lock().unwrap_or_else(|e| e.into_inner()) = Some(built.clone());
    built
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_document_encodes_field_by_field() {
        let pb = v2_protobuf(
            br#"{"swagger":"2.0","info":{"title":"T","version":"v"},"paths":{},"x-a":"b"}"#,
        );
        let mut want = vec![0x0a, 3];
        want.extend_from_slice(b"2.0");
        want.extend_from_slice(&[0x12, 6, 0x0a, 1, b'T', 0x12, 1, b'v']);
        want.extend_from_slice(&[0x42, 0]);
        // vendor_extension = 16: NamedAny {name: "x-a", value: Any {yaml: "b\n"}}
        want.extend_from_slice(&[0x82, 0x01, 11, 0x0a, 3, b'x', b'-', b'a', 0x12, 4, 0x12, 2]);
        want.extend_from_slice(b"b\n");
        assert_eq!(pb, want);
    }

    #[test]
    fn oneof_members_are_written_even_when_zero() {
        // definitions(9) { NamedSchema { name: "m", value: Schema { additionalProperties(21) {
        // boolean(2): false } } } }
        let pb = v2_protobuf(br#"{"definitions":{"m":{"additionalProperties":false}}}"#);
        assert_eq!(pb, expected_definitions());
    }

    fn expected_definitions() -> Vec<u8> {
        // Schema body: field 21 (tag 0xaa 0x01), len 2, { field 2 varint 0 }.
        let schema = vec![0xaa, 0x01, 2, 0x10, 0];
        let mut named = vec![0x0a, 1, b'm', 0x12, schema.len() as u8];
        named.extend_from_slice(&schema);
        let mut defs = vec![0x0a, named.len() as u8];
        defs.extend_from_slice(&named);
        let mut doc = vec![0x4a, defs.len() as u8];
        doc.extend_from_slice(&defs);
        doc
    }

    #[test]
    fn zero_values_are_left_out_and_integers_kept() {
        let pb = v2_protobuf(
            br#"{"definitions":{"m":{"minimum":0,"maxLength":0,"readOnly":false,"description":"","minLength":3}}}"#,
        );
        // Only minLength(12) = 3 remains in the schema.
        let schema = [0x60, 3];
        let mut named = vec![0x0a, 1, b'm', 0x12, schema.len() as u8];
        named.extend_from_slice(&schema);
        let mut defs = vec![0x0a, named.len() as u8];
        defs.extend_from_slice(&named);
        let mut doc = vec![0x4a, defs.len() as u8];
        doc.extend_from_slice(&defs);
        assert_eq!(pb, doc);
    }

    /// A protobuf message read back as (field number, wire value) pairs, to check the
    /// encoding against OpenAPIv2.proto's numbers without kapi's own tables.
    #[derive(Debug, PartialEq)]
    enum Wire {
        Varint(u64),
        Fixed64(u64),
        Bytes(Vec<u8>),
    }

    fn fields(mut b: &[u8]) -> Vec<(u32, Wire)> {
        fn varint(b: &mut &[u8]) -> u64 {
            let mut v = 0u64;
            for shift in (0..64).step_by(7) {
                let byte = b[0];
                *b = &b[1..];
                v |= u64::from(byte & 0x7f) << shift;
                if byte < 0x80 {
                    break;
                }
            }
            v
        }
        let mut out = Vec::new();
        while !b.is_empty() {
            let tag = varint(&mut b);
            let value = match tag & 7 {
                0 => Wire::Varint(varint(&mut b)),
                1 => {
                    let v = u64::from_le_bytes(b[..8].try_into().unwrap());
                    b = &b[8..];
                    Wire::Fixed64(v)
                }
                2 => {
                    let n = varint(&mut b) as usize;
                    let v = b[..n].to_vec();
                    b = &b[n..];
                    Wire::Bytes(v)
                }
                t => panic!("wire type {t}"),
            };
            out.push(((tag >> 3) as u32, value));
        }
        out
    }

    fn field(msg: &[u8], number: u32) -> Vec<u8> {
        fields(msg)
            .into_iter()
            .find_map(|(n, v)| match v {
                Wire::Bytes(b) if n == number => Some(b),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no field {number}"))
    }

    #[test]
    fn a_custom_resource_schema_keeps_every_keyword_under_its_proto_number() {
        let doc = br#"{"definitions":{"w":{
            "type":"object","required":["spec"],"x-kubernetes-preserve-unknown-fields":true,
            "properties":{"spec":{
                "type":"object","maxProperties":4,"minProperties":1,
                "additionalProperties":{"type":"string"},
                "properties":{
                    "replicas":{"type":"integer","format":"int32","default":1,"minimum":0,"maximum":10.5,"exclusiveMaximum":true,"multipleOf":2},
                    "mode":{"type":"string","enum":["A","B"],"pattern":"^[AB]$","maxLength":1,"minLength":1,"title":"Mode"},
                    "ports":{"type":"array","maxItems":3,"minItems":1,"uniqueItems":true,"items":{"x-kubernetes-int-or-string":true},
                        "x-kubernetes-list-type":"set"},
                    "size":{"x-kubernetes-validations":[{"rule":"self > 0","message":"must be positive"}]}
                }}}}}}"#;
        let pb = v2_protobuf(doc);
        let named = field(&field(&pb, 9), 1);
        assert_eq!(field(&named, 1), b"w");
        let w = field(&named, 2);
        let w_fields = fields(&w);
        assert!(w_fields.contains(&(19, Wire::Bytes(b"spec".to_vec()))));
        assert!(w_fields.contains(&(
            22,
            Wire::Bytes(vec![0x0a, 6, b'o', b'b', b'j', b'e', b'c', b't'])
        )));
        let ext = field(&w, 31);
        assert_eq!(field(&ext, 1), b"x-kubernetes-preserve-unknown-fields");
        assert_eq!(field(&field(&ext, 2), 2), b"true\n");

        let prop = |schema: &[u8], name: &str| -> Vec<u8> {
            fields(&field(schema, 25))
                .into_iter()
                .find_map(|(_, v)| match v {
                    Wire::Bytes(pair) if field(&pair, 1) == name.as_bytes() => {
                        Some(field(&pair, 2))
                    }
                    _ => None,
                })
                .unwrap_or_else(|| panic!("no property {name}"))
        };
        let spec = prop(&w, "spec");
        let spec_fields = fields(&spec);
        assert!(spec_fields.contains(&(17, Wire::Varint(4))));
        assert!(spec_fields.contains(&(18, Wire::Varint(1))));
        // additionalProperties(21) { schema(1) { type(22) { "string" } } }
        let ap = field(&field(&spec, 21), 1);
        assert_eq!(field(&field(&ap, 22), 1), b"string");

        let replicas = fields(&prop(&spec, "replicas"));
        assert!(replicas.contains(&(2, Wire::Bytes(b"int32".to_vec()))));
        assert!(replicas.contains(&(5, Wire::Bytes(vec![0x12, 2, b'1', b'\n']))));
        assert!(replicas.contains(&(6, Wire::Fixed64(2f64.to_bits()))));
        assert!(replicas.contains(&(7, Wire::Fixed64(10.5f64.to_bits()))));
        assert!(replicas.contains(&(8, Wire::Varint(1))));
        // minimum: 0 is proto3's zero: left out.
        assert!(!replicas.iter().any(|(n, _)| *n == 9));

        let mode = fields(&prop(&spec, "mode"));
        assert!(mode.contains(&(3, Wire::Bytes(b"Mode".to_vec()))));
        assert!(mode.contains(&(11, Wire::Varint(1))));
        assert!(mode.contains(&(12, Wire::Varint(1))));
        assert!(mode.contains(&(13, Wire::Bytes(b"^[AB]$".to_vec()))));
        let enums: Vec<&Wire> = mode
            .iter()
            .filter(|(n, _)| *n == 20)
            .map(|(_, v)| v)
            .collect();
        assert_eq!(
            enums,
            [
                &Wire::Bytes(vec![0x12, 2, b'A', b'\n']),
                &Wire::Bytes(vec![0x12, 2, b'B', b'\n'])
            ]
        );

        let ports = prop(&spec, "ports");
        let port_fields = fields(&ports);
        assert!(port_fields.contains(&(14, Wire::Varint(3))));
        assert!(port_fields.contains(&(15, Wire::Varint(1))));
        assert!(port_fields.contains(&(16, Wire::Varint(1))));
        // items(23) { schema(1) { vendor_extension(31) { x-kubernetes-int-or-string } } }
        let item = field(&field(&ports, 23), 1);
        assert_eq!(field(&field(&item, 31), 1), b"x-kubernetes-int-or-string");

        let size = prop(&spec, "size");
        let rules = field(&field(&size, 31), 2);
        assert_eq!(
            String::from_utf8(field(&rules, 2)).unwrap(),
            "- rule: self > 0\n  message: must be positive\n"
        );
    }

    #[test]
    fn not_json_or_too_deep_has_no_protobuf_form() {
        assert!(v2_protobuf(b"{").is_empty());
        assert!(try_v2_protobuf(b"{").is_none());
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(try_v2_protobuf(deep.as_bytes()).is_none());
        let json = Bytes::from(deep.into_bytes());
        let f = V2Forms::build("deep", &json);
        assert!(f.protobuf_failed && f.protobuf.is_empty());
    }

    #[test]
    fn etag_is_upper_case_sha512_hex() {
        let e = etag(b"");
        assert_eq!(e.len(), 128);
        assert!(e.starts_with("CF83E1357EEFB8BDF1542850D66D8007D620E4050B5715DC83F4A921D36CE9CE"));
    }

    #[test]
    fn forms_are_built_once_per_version() {
        let json = Bytes::from_static(br#"{"swagger":"2.0"}"#);
        let a = forms(&json, "forms-test-a");
        let again = forms(&json, "forms-test-a");
        assert!(Arc::ptr_eq(&a, &again));
        assert_eq!(a.protobuf.as_ref(), [0x0a, 3, b'2', b'.', b'0']);
        assert_eq!(a.etag, etag(br#"{"swagger":"2.0"}"#));
        assert!(a.gzipped_if_made(Form::Json).is_none());
        let gz = a.gzipped(Form::Json).clone();
        assert!(a.gzipped_if_made(Form::Json).is_some());
        assert!(cached("forms-test-a").is_some());
        assert!(cached("another version").is_none());
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut back).unwrap();
        assert_eq!(back, a.json.as_ref());
    }
}
