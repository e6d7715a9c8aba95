//! `metadata.managedFields`: who owns which fields. Decoded from and encoded to upstream's
//! entries (manager, operation, apiVersion, time, fieldsType FieldsV1, fieldsV1, subresource),
//! one entry per manager identity, sorted as upstream sorts them; at most
//! `MAX_UPDATE_MANAGERS` Update entries, older ones folded into `ancient-changes`.

use serde_json::{Map, Value, json};

use super::fieldset::{FieldSet, PathElement};

/// Update entries kept before the oldest are merged into one `ancient-changes` entry per
/// apiVersion (upstream's `DefaultMaxUpdateManagers`): an object's metadata stays bounded
/// however many clients write it.
pub const MAX_UPDATE_MANAGERS: usize = 10;

/// Entries a client may send in `managedFields`: more is not a real object's history, and the
/// entries are reset to the live object's (as upstream resets undecodable managedFields).
pub const MAX_ENTRIES: usize = 1024;

/// Upstream's name for the bucket of the oldest Update entries.
const ANCIENT_CHANGES: &str = "ancient-changes";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    Apply,
    Update,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One manager's entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub manager: String,
    pub operation: Operation,
    pub api_version: String,
    /// RFC 3339, seconds; absent on entries a client sent without one.
    pub time: Option<String>,
    pub subresource: String,
    pub fields: FieldSet,
}

impl Entry {
    /// Whether `self` is the entry of this identity: manager, operation and subresource, and
    /// the apiVersion for Update entries (an applier keeps one entry across versions).
    pub fn is(&self, manager: &str, op: Operation, api_version: &str, subresource: &str) -> bool {
        self.manager == manager
            && self.operation == op
            && self.subresource == subresource
            && (op == Operation::Apply || self.api_version == api_version)
    }

    fn same_identity(&self, o: &Entry) -> bool {
        o.is(
            &self.manager,
            self.operation,
            &self.api_version,
            &self.subresource,
        )
    }

    /// How upstream prints a manager in a conflict: `"name"`, with its subresource, and for
    /// Update entries the apiVersion it wrote.
    pub fn display(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s = format!("{s} with subresource {:?}", self.subresource);
        }
        if self.operation == Operation::Update {
            s = format!("{s} using {}", self.api_version);
        }
        s
    }
}

/// All entries of one object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Managed {
    pub entries: Vec<Entry>,
}

impl Managed {
    /// The entries of a `managedFields` value; None when any entry is not upstream's shape
    /// (upstream then falls back to the live object's entries). Absent or null is empty.
    pub fn decode(v: Option<&Value>) -> Option<Managed> {
        let items = match v {
            None | Some(Value::Null) => return Some(Managed::default()),
            Some(Value::Array(items)) if items.len() <= MAX_ENTRIES => items,
            Some(_) => return None,
        };
        let mut out = Managed::default();
        for item in items {
            let o = item.as_object()?;
            let s = |k: &str| -> Option<String> {
                match o.get(k) {
                    None | Some(Value::Null) => Some(String::new()),
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(_) => None,
                }
            };
            let operation = match s("operation")?.as_str() {
                "Apply" => Operation::Apply,
                "Update" => Operation::Update,
                // An empty entry (`[{}]`) resets managedFields: it decodes to nothing owned.
                "" if o.is_empty() => continue,
                _ => return None,
            };
            match s("fieldsType")?.as_str() {
                "FieldsV1" | "" => {}
                _ => return None,
            }
            let fields = match o.get("fieldsV1") {
                None | Some(Value::Null) => FieldSet::new(),
                Some(f) => FieldSet::from_fields_v1(f)?,
            };
            let entry = Entry {
                manager: s("manager")?,
                operation,
                api_version: s("apiVersion")?,
                time: Some(s("time")?).filter(|t| !t.is_empty()),
                subresource: s("subresource")?,
                fields,
            };
            if out.entries.iter().any(|e| e.same_identity(&entry)) {
                return None;
            }
            out.entries.push(entry);
        }
        Some(out)
    }

    /// The `managedFields` value, sorted as upstream: operation, time, manager, apiVersion,
    /// subresource. Entries that own nothing are dropped.
    pub fn encode(&self) -> Value {
        let mut entries: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| !e.fields.is_empty())
            .collect();
        entries.sort_by(|p, q| {
            p.operation
                .cmp(&q.operation)
                .then_with(|| {
                    p.time
                        .as_deref()
                        .unwrap_or("")
                        .cmp(q.time.as_deref().unwrap_or(""))
                })
                .then_with(|| p.manager.cmp(&q.manager))
                .then_with(|| p.api_version.cmp(&q.api_version))
                .then_with(|| p.subresource.cmp(&q.subresource))
        });
        Value::Array(
            entries
                .into_iter()
                .map(|e| {
                    let mut m = Map::new();
                    m.insert("manager".into(), json!(e.manager));
                    m.insert("operation".into(), json!(e.operation.as_str()));
                    m.insert("apiVersion".into(), json!(e.api_version));
                    if let Some(t) = &e.time {
                        m.insert("time".into(), json!(t));
                    }
                    m.insert("fieldsType".into(), json!("FieldsV1"));
                    m.insert("fieldsV1".into(), e.fields.to_fields_v1());
                    if !e.subresource.is_empty() {
                        m.insert("subresource".into(), json!(e.subresource));
                    }
                    Value::Object(m)
                })
                .collect(),
        )
    }

    pub fn find(
        &self,
        manager: &str,
        op: Operation,
        api_version: &str,
        sub: &str,
    ) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.is(manager, op, api_version, sub))
    }

    /// Sets the fields (and time) of an identity's entry, adding it when new.
    pub fn set(&mut self, entry: Entry) {
        match self.entries.iter_mut().find(|e| e.same_identity(&entry)) {
            Some(e) => *e = entry,
            None => self.entries.push(entry),
        }
    }

    pub fn drop_empty(&mut self) {
        self.entries.retain(|e| !e.fields.is_empty());
    }

    /// Folds the oldest Update entries into one `ancient-changes` entry per apiVersion until
    /// at most `MAX_UPDATE_MANAGERS` remain (upstream's capManagersManager).
    pub fn cap_updates(&mut self) {
        let mut updates: Vec<usize> = (0..self.entries.len())
            .filter(|&i| self.entries[i].operation == Operation::Update)
            .collect();
        if updates.len() <= MAX_UPDATE_MANAGERS {
            return;
        }
        updates.sort_by(|&a, &b| {
            let (p, q) = (&self.entries[a], &self.entries[b]);
            p.time
                .as_deref()
                .unwrap_or("")
                .cmp(q.time.as_deref().unwrap_or(""))
                .then_with(|| p.manager.cmp(&q.manager))
        });
        let mut first_of_version: Vec<(String, usize)> = Vec::new();
        let mut remove = vec![false; self.entries.len()];
        let mut count = updates.len();
        for &i in &updates {
            if count <= MAX_UPDATE_MANAGERS {
                break;
            }
            let version = self.entries[i].api_version.clone();
            match first_of_version.iter().find(|(v, _)| *v == version) {
                Some(&(_, first)) => {
                    let merged = self.entries[i].fields.clone();
                    let time = self.entries[i].time.clone();
                    let bucket = &mut self.entries[first];
                    bucket.manager = ANCIENT_CHANGES.into();
                    bucket.subresource.clear();
                    bucket.fields.union_with(&merged);
                    bucket.time = time;
                    remove[i] = true;
                    count -= 1;
                }
                None => first_of_version.push((version, i)),
            }
        }
        let mut gone = remove.into_iter();
        self.entries.retain(|_| !gone.next().unwrap_or(false));
    }
}

/// Fields no manager owns (upstream's stripMetaManager): the type and the server-owned
/// metadata. `metadata` itself only as a member, so that labels and the like stay owned.
pub fn strip_set() -> FieldSet {
    let mut s = FieldSet::new();
    let f = |n: &str| PathElement::Field(n.into());
    s.insert(&[f("apiVersion")]);
    s.insert(&[f("kind")]);
    s.insert(&[f("metadata")]);
    for n in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        s.insert(&[f("metadata"), f(n)]);
    }
    s
}

/// `strip_set`, built once.
pub fn strip_set_ref() -> &'static FieldSet {
    static SET: std::sync::OnceLock<FieldSet> = std::sync::OnceLock::new();
    SET.get_or_init(strip_set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_sort_as_upstream() {
        // The captured 15c response's entries, given in the other order.
        let v = json!([
            {"manager": "refpack-ssa", "operation": "Apply", "apiVersion": "v1", "time": "2026-11-22T18:11:34Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:b": {}}, "f:metadata": {"f:labels": {"f:owner": {}}}}},
            {"manager": "other-manager", "operation": "Apply", "apiVersion": "v1", "time": "2026-11-22T18:11:34Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}, "f:c": {}}}},
            {"manager": "kubectl-edit", "operation": "Update", "apiVersion": "v1", "time": "2026-11-22T18:11:30Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:d": {}}}, "subresource": "status"}
        ]);
        let m = Managed::decode(Some(&v)).unwrap();
        let out = m.encode();
        assert_eq!(out[0]["manager"], "other-manager");
        assert_eq!(out[1]["manager"], "refpack-ssa");
        assert_eq!(out[2]["subresource"], "status");
        assert_eq!(Managed::decode(Some(&out)).unwrap().entries.len(), 3);
        assert_eq!(
            m.entries[2].display(),
            r#""kubectl-edit" with subresource "status" using v1"#
        );
        // Bad entries are refused whole; an empty entry owns nothing.
        assert!(Managed::decode(Some(&json!([{"operation": "Patch"}]))).is_none());
        assert!(
            Managed::decode(Some(
                &json!([{"operation": "Apply", "fieldsType": "FieldsV2"}])
            ))
            .is_none()
        );
        assert!(Managed::decode(Some(&json!("x"))).is_none());
        assert_eq!(
            Managed::decode(Some(&json!([{}]))).unwrap().entries.len(),
            0
        );
    }

    #[test]
    fn update_entries_beyond_ten_fold_into_ancient_changes() {
        let mut m = Managed::default();
        for i in 0..12 {
            let mut fields = FieldSet::new();
            fields.insert(&[PathElement::Field(format!("f{i}"))]);
            m.set(Entry {
                manager: format!("m{i:02}"),
                operation: Operation::Update,
                api_version: "v1".into(),
                time: Some(format!("2026-01-01T00:00:{i:02}Z")),
                subresource: String::new(),
                fields,
            });
        }
        m.cap_updates();
        assert_eq!(m.entries.len(), MAX_UPDATE_MANAGERS);
        let bucket = m
            .entries
            .iter()
            .find(|e| e.manager == ANCIENT_CHANGES)
            .unwrap();
        assert_eq!(bucket.fields.paths().len(), 3);
        assert_eq!(bucket.time.as_deref(), Some("2026-01-01T00:00:02Z"));
    }
}
