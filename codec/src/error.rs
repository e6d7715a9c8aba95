//! The codec's one error type: what went wrong and where (a byte offset in protobuf input, a
//! field path in JSON input). The server turns it into a `Status`; the CLI prints it.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Input ended inside a value.
    Truncated,
    /// Bytes that are not valid protobuf, JSON or YAML, or a value of the wrong type.
    Malformed,
    /// No kind with this apiVersion and kind is known.
    UnknownKind,
    /// Unknown or duplicate fields under strict field validation.
    Strict,
    /// Nested deeper than the codec allows.
    TooDeep,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecError {
    pub kind: ErrorKind,
    pub message: String,
}

impl CodecError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        CodecError {
            kind,
            message: message.into(),
        }
    }

    /// Malformed input at a byte offset.
    #[cold]
    pub fn at(offset: usize, message: impl fmt::Display) -> Self {
        CodecError::new(ErrorKind::Malformed, format!("{message} at byte {offset}"))
    }

    #[cold]
    pub fn truncated(offset: usize, what: &str) -> Self {
        CodecError::new(
            ErrorKind::Truncated,
            format!("truncated {what} at byte {offset}"),
        )
    }

    #[cold]
    pub fn malformed(message: impl Into<String>) -> Self {
        CodecError::new(ErrorKind::Malformed, message)
    }

    #[cold]
    pub fn too_deep(limit: usize) -> Self {
        CodecError::new(
            ErrorKind::TooDeep,
            format!("object nested deeper than {limit} levels"),
        )
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CodecError {}

/// How strictly JSON input is checked against the schema: upstream's `fieldValidation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Unknown and duplicate fields are dropped silently.
    Ignore,
    /// Dropped, and reported as warnings (upstream's default).
    #[default]
    Warn,
    /// Refused with an error naming every such field.
    Strict,
}

/// Nesting limit for messages and JSON containers: deep enough for any real object (pods
/// nest about 10 levels, CRD schemas a few dozen), shallow enough that recursion cannot
/// exhaust a thread's stack.
pub const MAX_DEPTH: usize = 256;
