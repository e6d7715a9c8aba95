//! Helpers shared by the fuzz targets: the invariants they check beyond "no panic".

use kapi_codec::Schema;
use kapi_codec::json_read::Doc;
use kapi_codec::schema::Kind;

/// The kind a fuzz input selects with its first two bytes (big-endian, modulo the number of
/// kinds: there are more than 256). `seed.sh` writes each fixture's message after the
/// selector of its kind, the index of its `K` line in `codec/schema/k8s.schema`.
pub fn kind_by_selector(selector: [u8; 2]) -> &'static Kind {
    let kinds = Schema::get().kinds();
    &kinds[usize::from(u16::from_be_bytes(selector)) % kinds.len()]
}

/// Panics unless `out`, which `what` returned as JSON, is JSON (RFC 8259, so UTF-8).
/// serde_json stops at 128 levels of nesting, which the codec may legitimately exceed;
/// deeper output is checked for UTF-8 and then by the codec's own iterative parser.
pub fn assert_json(out: &[u8], what: &str) {
    let Err(e) = serde_json::from_slice::<serde_json::Value>(out) else {
        return;
    };
    if e.to_string().starts_with("recursion limit exceeded") {
        if let Err(u) = std::str::from_utf8(out) {
            panic!(
                "{what} returned Ok with invalid JSON: not UTF-8 at byte {}: {:?}",
                u.valid_up_to(),
                String::from_utf8_lossy(out)
            );
        }
        if let Err(e) = Doc::parse(out) {
            panic!("{what} returned Ok with invalid JSON ({e}): {out:?}");
        }
        return;
    }
    panic!(
        "{what} returned Ok with invalid JSON ({e}): {:?}",
        String::from_utf8_lossy(out)
    );
}
