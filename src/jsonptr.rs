//! JSON pointers read without allocating: `serde_json::Value::pointer` allocates two strings
//! per token (to unescape `~1` and `~0`), which the write path pays on every pod for the few
//! fields it reads by pointer. A pointer with no `~` is split in place; one with `~` takes
//! serde_json's path.

use serde_json::Value;

pub trait At {
    /// `Value::pointer`, without allocating for pointers that escape nothing.
    fn at(&self, pointer: &str) -> Option<&Value>;
}

impl At for Value {
    fn at(&self, pointer: &str) -> Option<&Value> {
        if pointer.contains('~') {
            return self.pointer(pointer);
        }
        if pointer.is_empty() {
            return Some(self);
        }
        let rest = pointer.strip_prefix('/')?;
        rest.split('/')
            .try_fold(self, |target, token| match target {
                Value::Object(m) => m.get(token),
                Value::Array(items) => index(token).and_then(|i| items.get(i)),
                _ => None,
            })
    }
}

/// An array index token as serde_json reads one: digits, no sign, no leading zero.
fn index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() != 1) {
        return None;
    }
    token.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::At;
    use serde_json::json;

    #[test]
    fn reads_what_serde_json_pointer_reads() {
        let v = json!({"a": {"b/c": 1, "d~e": 2, "": 3, "l": [10, 11, {"x": 12}]}, "0": 4});
        for p in [
            "",
            "/",
            "/a",
            "/a/b~1c",
            "/a/d~0e",
            "/a/",
            "/a/l/0",
            "/a/l/2/x",
            "/a/l/01",
            "/a/l/+1",
            "/a/l/9",
            "/0",
            "a",
            "/a/l/-1",
            "/a/l/1/x",
            "/missing/x",
        ] {
            assert_eq!(v.at(p), v.pointer(p), "{p}");
        }
    }
}
