//! Label and field selectors, parsed as upstream parses them (`labels.Parse`,
//! `fields.ParseSelector`) and matched against an object's labels and field values.

use super::status::Status;

#[derive(Debug, Clone, PartialEq, Eq)]
enum LabelReq {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(Vec<LabelReq>);

fn bad_label(s: &str, why: &str) -> Status {
    Status::bad_request(format!(
        "unable to parse requirement: {why} (selector {s:?})"
    ))
}

/// Splits on commas outside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn valid_label_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 317
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<LabelSelector, Status> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(LabelSelector(reqs));
        }
        for part in split_top(s) {
            let p = part.trim();
            if p.is_empty() {
                return Err(bad_label(s, "found '', expected: identifier"));
            }
            let set = |rest: &str| -> Result<Vec<String>, Status> {
                let rest = rest.trim();
                let inner = rest
                    .strip_prefix('(')
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(|| bad_label(s, "expected a set of values in parentheses"))?;
                Ok(inner
                    .split(',')
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
                    .collect())
            };
            let req = if let Some(k) = p.strip_prefix('!') {
                LabelReq::NotExists(k.trim().to_string())
            } else if let Some((k, v)) = p.split_once("!=") {
                LabelReq::NotEq(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = p.split_once("==") {
                LabelReq::Eq(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = p.split_once('=') {
                LabelReq::Eq(k.trim().into(), v.trim().into())
            } else if let Some(idx) = p.find(" notin ") {
                LabelReq::NotIn(p[..idx].trim().into(), set(&p[idx + 7..])?)
            } else if let Some(idx) = p.find(" in ") {
                LabelReq::In(p[..idx].trim().into(), set(&p[idx + 4..])?)
            } else {
                LabelReq::Exists(p.to_string())
            };
            let key = match &req {
                LabelReq::Eq(k, _)
                | LabelReq::NotEq(k, _)
                | LabelReq::In(k, _)
                | LabelReq::NotIn(k, _)
                | LabelReq::Exists(k)
                | LabelReq::NotExists(k) => k,
            };
            if !valid_label_key(key) {
                return Err(bad_label(s, &format!("invalid label key {key:?}")));
            }
            reqs.push(req);
        }
        Ok(LabelSelector(reqs))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The requirements as `metav1.LabelSelectorRequirement`s (`In`, `NotIn`, `Exists`,
    /// `DoesNotExist`), sorted by key as upstream's parser sorts them: what an authorization
    /// webhook is told a request selects.
    pub fn requirements(&self) -> Vec<serde_json::Value> {
        let mut reqs: Vec<(&str, &str, Vec<&str>)> = self
            .0
            .iter()
            .map(|r| match r {
                LabelReq::Eq(k, v) => (k.as_str(), "In", vec![v.as_str()]),
                LabelReq::In(k, vs) => (k.as_str(), "In", vs.iter().map(String::as_str).collect()),
                LabelReq::NotEq(k, v) => (k.as_str(), "NotIn", vec![v.as_str()]),
                LabelReq::NotIn(k, vs) => {
                    (k.as_str(), "NotIn", vs.iter().map(String::as_str).collect())
                }
                LabelReq::Exists(k) => (k.as_str(), "Exists", Vec::new()),
                LabelReq::NotExists(k) => (k.as_str(), "DoesNotExist", Vec::new()),
            })
            .collect();
        reqs.sort_by_key(|r| r.0);
        reqs.into_iter()
            .map(|(key, operator, values)| {
                let mut r = serde_json::json!({"key": key, "operator": operator});
                if !values.is_empty() {
                    r["values"] = serde_json::json!(values);
                }
                r
            })
            .collect()
    }

    /// `labels` sorted by key or not; looked up linearly (objects carry few labels).
    pub fn matches<K: AsRef<str>, V: AsRef<str>>(&self, labels: &[(K, V)]) -> bool {
        let get = |k: &str| {
            labels
                .iter()
                .find(|(lk, _)| lk.as_ref() == k)
                .map(|(_, v)| v.as_ref())
        };
        self.0.iter().all(|r| match r {
            LabelReq::Eq(k, v) => get(k) == Some(v.as_str()),
            LabelReq::NotEq(k, v) => get(k) != Some(v.as_str()),
            LabelReq::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            LabelReq::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
            LabelReq::Exists(k) => get(k).is_some(),
            LabelReq::NotExists(k) => get(k).is_none(),
        })
    }
}

/// A parsed field selector: `field=value`, `field==value`, `field!=value`, comma-joined.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(pub Vec<(String, bool, String)>);

impl FieldSelector {
    pub fn parse(s: &str) -> Result<FieldSelector, Status> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(FieldSelector(reqs));
        }
        for part in s.split(',') {
            let (field, eq, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(Status::bad_request(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            reqs.push((field.trim().to_string(), eq, value.trim().to_string()));
        }
        Ok(FieldSelector(reqs))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The requirements as `metav1.FieldSelectorRequirement`s (`=` is `In`, `!=` is `NotIn`),
    /// in the selector's order: what an authorization webhook is told a request selects.
    pub fn requirements(&self) -> Vec<serde_json::Value> {
        self.0
            .iter()
            .map(|(field, eq, value)| {
                let operator = if *eq { "In" } else { "NotIn" };
                serde_json::json!({"key": field, "operator": operator, "values": [value]})
            })
            .collect()
    }

    /// The value required for `field` by an `=` requirement, if any (to narrow a scan).
    pub fn required(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, eq, _)| f == field && *eq)
            .map(|(_, _, v)| v.as_str())
    }

    /// `value_of` gives an object's value for a field label, None when the kind has no such
    /// field (an error upstream reports before matching; see `check_fields`).
    pub fn matches(&self, value_of: impl Fn(&str) -> Option<String>) -> bool {
        self.0.iter().all(|(f, eq, v)| {
            let actual = value_of(f).unwrap_or_default();
            (actual == *v) == *eq
        })
    }

    /// Upstream refuses selectors on fields the kind does not support.
    pub fn check_fields(&self, supported: &[&str]) -> Result<(), Status> {
        for (f, _, _) in &self.0 {
            if !supported.contains(&f.as_str()) {
                return Err(Status::bad_request(format!(
                    "field label not supported: {f}"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_selectors_match_as_upstream() {
        let labels = [("app", "web"), ("tier", "front")];
        let m = |s: &str| LabelSelector::parse(s).unwrap().matches(&labels);
        assert!(m(""));
        assert!(m("app=web"));
        assert!(m("app==web,tier"));
        assert!(!m("app!=web"));
        assert!(m("tier in (front, back)"));
        assert!(!m("tier notin (front)"));
        assert!(m("!missing"));
        assert!(!m("missing"));
        assert!(LabelSelector::parse("a=b,,c").is_err());
    }

    #[test]
    fn field_selectors_parse_and_match() {
        let f = FieldSelector::parse("spec.nodeName=n1,status.phase!=Failed").unwrap();
        assert_eq!(f.required("spec.nodeName"), Some("n1"));
        let v = |field: &str| match field {
            "spec.nodeName" => Some("n1".to_string()),
            "status.phase" => Some("Running".to_string()),
            _ => None,
        };
        assert!(f.matches(v));
        assert!(FieldSelector::parse("nonsense").is_err());
        let err = FieldSelector::parse("spec.foo=1")
            .unwrap()
            .check_fields(&["metadata.name"])
            .unwrap_err();
        assert_eq!(err.code, 400);
    }
}
