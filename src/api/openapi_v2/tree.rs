//! The JSON document as an ordered tree: gnostic reads the v2 document through a YAML node
//! tree, so map keys keep the document's order and a number keeps whether it was written as an
//! integer (`!!int`) or not (`!!float`). `serde_json::Value` sorts keys, hence this type.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// One JSON value in document order. Nesting is bounded by serde_json's recursion limit (128).
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    /// An integer literal, as its decimal text (gnostic's `!!int`).
    Int(String),
    /// Any other number (gnostic's `!!float`).
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl Node {
    /// The value of `key` in a map (the first one, as gnostic's `MapValueForKey`).
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// A scalar read as a string the way gnostic's `StringForScalarNode` does: strings and
    /// integers as written, null as empty; anything else is not a string.
    pub fn as_scalar_string(&self) -> Option<&str> {
        match self {
            Node::Str(s) | Node::Int(s) => Some(s),
            Node::Null => Some(""),
            _ => None,
        }
    }

    pub fn entries(&self) -> &[(String, Node)] {
        match self {
            Node::Map(entries) => entries,
            _ => &[],
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v.to_string()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Int(v.to_string()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Node>()? {
            entries.push((k, v));
        }
        Ok(Node::Map(entries))
    }
}

/// Parses a JSON document into its ordered tree.
pub fn parse(json: &[u8]) -> Result<Node, serde_json::Error> {
    serde_json::from_slice(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_document_order_and_numbers_their_kind() {
        let n = parse(br#"{"z": 1, "a": [1.5, null, true, "s"], "m": {}}"#).unwrap();
        let keys: Vec<&str> = n.entries().iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["z", "a", "m"]);
        assert_eq!(n.get("z"), Some(&Node::Int("1".into())));
        assert_eq!(
            n.get("a"),
            Some(&Node::Seq(vec![
                Node::Float(1.5),
                Node::Null,
                Node::Bool(true),
                Node::Str("s".into())
            ]))
        );
        assert_eq!(n.get("z").and_then(Node::as_scalar_string), Some("1"));
    }
}
