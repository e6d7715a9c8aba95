//! Upstream's round-trip fixtures, listed once for every codec test: the same object as
//! `<group>.<version>.<Kind>.{json,yaml,pb}` ("core" for the legacy group) for each kind.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The directory holds 185 kinds for Kubernetes v1.36; fewer means files went missing.
pub const MIN_KINDS: usize = 185;

pub struct Fixture {
    pub name: String,
    pub api_version: String,
    pub kind: String,
    dir: PathBuf,
}

impl Fixture {
    pub fn path(&self, ext: &str) -> PathBuf {
        self.dir.join(format!("{}.{ext}", self.name))
    }

    pub fn read(&self, ext: &str) -> Vec<u8> {
        std::fs::read(self.path(ext)).unwrap()
    }
}

/// Every kind of `testdata/roundtrip` (no hand-picked subset), sorted by name; each has its
/// `.json`, `.yaml` and `.pb` forms.
pub fn fixtures() -> Vec<Fixture> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/roundtrip");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let Some(name) = path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .strip_suffix(".json")
        else {
            continue;
        };
        let mut parts: Vec<&str> = name.split('.').collect();
        let kind = parts.pop().unwrap().to_string();
        let version = parts.pop().unwrap();
        let group = parts.join(".");
        let api_version = if group == "core" {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        let f = Fixture {
            name: name.to_string(),
            api_version,
            kind,
            dir: dir.clone(),
        };
        for ext in ["yaml", "pb"] {
            assert!(f.path(ext).exists(), "{name} has no .{ext} twin");
        }
        out.push(f);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(
        out.len() >= MIN_KINDS,
        "expected every fixture kind, found {}",
        out.len()
    );
    out
}
