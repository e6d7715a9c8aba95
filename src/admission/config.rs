//! `--admission-control-config-file`: upstream's `AdmissionConfiguration`
//! (`apiserver.config.k8s.io/v1`, or `apiserver.k8s.io/v1alpha1`), a list of plugins each with
//! its configuration inline (`configuration`) or in a file (`path`, relative to this file).
//! Read once at start; a file that cannot be read or parsed stops the start, as upstream.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

/// The plugins whose configuration kapi reads.
const READ: &[&str] = &["PodSecurity"];

/// Each configured plugin's configuration object, by plugin name.
#[derive(Debug, Default, Clone)]
pub struct Configs {
    plugins: BTreeMap<String, Value>,
}

impl Configs {
    pub fn get(&self, plugin: &str) -> Option<&Value> {
        self.plugins.get(plugin)
    }

    /// Reads the file; also gives the warnings for configurations kapi does not read yet.
    pub fn load(path: &Path) -> Result<(Configs, Vec<String>), String> {
        let doc = read_doc(path)?;
        let api_version = doc.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("");
        if kind != "AdmissionConfiguration"
            || !matches!(
                api_version,
                "apiserver.config.k8s.io/v1"
                    | "apiserver.k8s.io/v1alpha1"
                    | "apiserver.config.k8s.io/v1alpha1"
            )
        {
            return Err(format!(
                "{}: expected an apiserver.config.k8s.io/v1 AdmissionConfiguration, got {api_version:?} {kind:?}",
                path.display()
            ));
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut configs = Configs::default();
        let mut warnings = Vec::new();
        let plugins = doc
            .get("plugins")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        for plugin in plugins {
            let Some(name) = plugin.get("name").and_then(Value::as_str) else {
                return Err(format!("{}: a plugin without a name", path.display()));
            };
            let config = match plugin.get("path").and_then(Value::as_str) {
                Some(p) if !p.is_empty() => read_doc(&dir.join(p))?,
                _ => match plugin.get("configuration") {
                    Some(c) if !c.is_null() => c.clone(),
                    _ => continue,
                },
            };
            if !READ.contains(&name) {
                warnings.push(format!(
                    "--admission-control-config-file: kapi does not read the configuration of admission plugin {name} yet"
                ));
            }
            configs.plugins.insert(name.to_string(), config);
        }
        Ok((configs, warnings))
    }
}

fn read_doc(path: &Path) -> Result<Value, String> {
    let data = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    kapi_codec::yaml::from_yaml(&data).map_err(|e| format!("parsing {}: {e:?}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugins_are_read_inline_and_from_relative_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("psa.yaml"),
            "apiVersion: pod-security.admission.config.k8s.io/v1\nkind: PodSecurityConfiguration\ndefaults:\n  enforce: baseline\n",
        )
        .unwrap();
        let file = dir.path().join("admission.yaml");
        std::fs::write(
            &file,
            "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n- name: PodSecurity\n  path: psa.yaml\n- name: EventRateLimit\n  configuration:\n    kind: Configuration\n",
        )
        .unwrap();
        let (configs, warnings) = Configs::load(&file).unwrap();
        assert_eq!(
            configs.get("PodSecurity").unwrap()["defaults"]["enforce"],
            "baseline"
        );
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("EventRateLimit"));
        std::fs::write(&file, "kind: Something\n").unwrap();
        assert!(Configs::load(&file).is_err());
    }
}
