//! TEMPORARY STUB (replaced by the yaml branch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub line: usize,
    pub message: String,
}
pub fn to_yaml(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}
pub fn from_yaml(input: &[u8]) -> Result<serde_json::Value, YamlError> {
    serde_json::from_slice(input).map_err(|e| YamlError {
        line: e.line(),
        message: e.to_string(),
    })
}
