//! YAML as Kubernetes writes and reads it: sigs.k8s.io/yaml's `JSONToYAML` (go-yaml v2's
//! `Marshal`, reproduced byte for byte) and `YAMLToJSON` (go-yaml v2's YAML 1.1 typing, merge keys
//! and aliases, with its limits). Parsing is `saphyr-parser`'s; typing and writing are ours.

mod decode;
mod emit;
mod resolve;
mod scalar;

use std::borrow::Cow;
use std::fmt;

use serde_json::Value;

pub use decode::{MAX_ALIAS_EXPANSION_BYTES, MAX_DEPTH};

/// A document that could not be read, and the line (1-based; 0 when unknown) where it went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "yaml: line {}: {}", self.line, self.message)
        } else {
            write!(f, "yaml: {}", self.message)
        }
    }
}

impl std::error::Error for YamlError {}

/// sigs.k8s.io/yaml.JSONToYAML / yaml.Marshal of a JSON document: mapping keys in go-yaml's
/// order, block style, 2-space indentation, sequences under a key not indented, strings quoted
/// exactly when go-yaml v2 quotes them, multi-line strings as literal blocks, long lines folded
/// at 80 columns, numbers as Go formats them. Ends with a newline.
pub fn to_yaml(v: &Value) -> String {
    emit::to_yaml(v)
}

/// sigs.k8s.io/yaml.YAMLToJSON of one document (any later documents are ignored, as go-yaml's
/// `Unmarshal` ignores them). Numbers come out as serde_json reads Go's JSON for them: integers
/// exact in i64/u64, other values f64.
pub fn from_yaml(input: &[u8]) -> Result<Value, YamlError> {
    let text = read_text(input)?;
    parse_document(&text, 1)
}

/// A multi-document stream split as Kubernetes splits it (k8s.io/apimachinery's `YAMLReader`:
/// a line starting with "---" ends a document, and may carry only a comment), each document
/// converted by [`from_yaml`]. Documents that are empty or null are skipped. Error lines count
/// from the start of the stream.
pub fn from_yaml_stream(input: &[u8]) -> Result<Vec<Value>, YamlError> {
    let text = read_text(input)?;
    let mut docs = Vec::new();
    let mut chunk = String::new();
    let mut chunk_line = 1;
    let mut flush = |chunk: &mut String, first_line: usize| -> Result<(), YamlError> {
        if !chunk.is_empty() {
            let doc = parse_document(chunk, first_line)?;
            if !doc.is_null() {
                docs.push(doc);
            }
            chunk.clear();
        }
        Ok(())
    };
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if let Some(rest) = line.strip_prefix("---") {
            let rest = rest.trim();
            if !rest.is_empty() && !rest.starts_with('#') {
                return Err(YamlError {
                    line: number,
                    message: format!("invalid Yaml document separator: {rest}"),
                });
            }
            flush(&mut chunk, chunk_line)?;
            continue;
        }
        if chunk.is_empty() {
            chunk_line = number;
        }
        chunk.push_str(line);
        chunk.push('\n');
    }
    flush(&mut chunk, chunk_line)?;
    Ok(docs)
}

/// Parse the first document of `text`, whose first line is line `first_line` of the input.
fn parse_document(text: &str, first_line: usize) -> Result<Value, YamlError> {
    // YAML 1.1 counts U+0085 (NEL) as a line break and reads it as "\n" wherever it breaks a
    // line; saphyr-parser follows YAML 1.2, where it is an ordinary character.
    let text = if text.contains('\u{85}') {
        Cow::Owned(text.replace('\u{85}', "\n"))
    } else {
        Cow::Borrowed(text)
    };
    let text = text.as_ref();
    // The parser is a dependency fed with client input: should it ever panic, that is this
    // request's error, not the process's.
    std::panic::catch_unwind(|| decode::first_document(text, first_line)).unwrap_or_else(|_| {
        Err(YamlError {
            line: 0,
            message: "internal error in the YAML parser".to_string(),
        })
    })
}

/// libyaml's reader: the encoding from the byte order mark (UTF-8 without one), then only the
/// characters YAML allows.
fn read_text(input: &[u8]) -> Result<Cow<'_, str>, YamlError> {
    let text: Cow<'_, str> = match input {
        [0xFF, 0xFE, rest @ ..] => Cow::Owned(utf16(rest, u16::from_le_bytes)?),
        [0xFE, 0xFF, rest @ ..] => Cow::Owned(utf16(rest, u16::from_be_bytes)?),
        _ => {
            let bytes = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
            match std::str::from_utf8(bytes) {
                Ok(s) => Cow::Borrowed(s),
                Err(e) => {
                    let at = e.valid_up_to();
                    let message = if e.error_len().is_none() {
                        "incomplete UTF-8 octet sequence"
                    } else if matches!(bytes[at], 0xC2..=0xF4) {
                        "invalid trailing UTF-8 octet"
                    } else {
                        "invalid leading UTF-8 octet"
                    };
                    return Err(YamlError {
                        line: line_of(&bytes[..at]),
                        message: message.to_string(),
                    });
                }
            }
        }
    };
    let allowed = |c: char| {
        matches!(c as u32, 0x09 | 0x0A | 0x0D | 0x20..=0x7E | 0x85 | 0xA0..=0xD7FF | 0xE000..=0xFFFD)
            || c as u32 >= 0x10000
    };
    if let Some(at) = text.find(|c| !allowed(c)) {
        return Err(YamlError {
            line: line_of(&text.as_bytes()[..at]),
            message: "control characters are not allowed".to_string(),
        });
    }
    Ok(text)
}

fn utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> Result<String, YamlError> {
    if !bytes.len().is_multiple_of(2) {
        return Err(YamlError {
            line: 0,
            message: "incomplete UTF-16 character".to_string(),
        });
    }
    let units = bytes.chunks_exact(2).map(|p| unit([p[0], p[1]]));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .map_err(|_| YamlError {
            line: 0,
            message: "invalid UTF-16 surrogate pair".to_string(),
        })
}

fn line_of(before: &[u8]) -> usize {
    1 + before.iter().filter(|&&b| b == b'\n').count()
}
