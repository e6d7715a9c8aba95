//! `--feature-gates`: the gates of Kubernetes 1.36 that change which APIs kapi serves (an alpha
//! or beta resource's storage is installed only while its gate is on, as upstream's
//! `pkg/registry/<group>/rest` does). Other gates upstream has are accepted with a warning:
//! kapi's behaviour does not vary by them.

use std::collections::BTreeMap;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Alpha,
    Beta,
}

/// A gate kapi honours: its name, maturity and 1.36 default (`pkg/features`).
pub struct Gate {
    pub name: &'static str,
    pub stage: Stage,
    pub default: bool,
}

/// The 1.36 gates of the alpha and beta resources kapi can serve.
pub const GATES: &[Gate] = &[
    Gate {
        name: "ClusterTrustBundle",
        stage: Stage::Beta,
        default: false,
    },
    Gate {
        name: "DRADeviceTaintRules",
        stage: Stage::Beta,
        default: false,
    },
    Gate {
        name: "DRAResourcePoolStatus",
        stage: Stage::Alpha,
        default: false,
    },
    Gate {
        name: "GenericWorkload",
        stage: Stage::Alpha,
        default: false,
    },
    Gate {
        name: "PodCertificateRequest",
        stage: Stage::Beta,
        default: false,
    },
    Gate {
        name: "StorageVersionMigrator",
        stage: Stage::Beta,
        default: false,
    },
];

/// The gates set on the command line, by name (`AllAlpha`/`AllBeta` included).
#[derive(Debug, Default, Clone)]
pub struct Gates {
    set: BTreeMap<String, bool>,
}

impl Gates {
    /// `Name=true,Other=false` items as upstream's flag reads them; unknown names are
    /// warnings (kapi knows only the gates that change what it serves).
    pub fn parse(items: &[String]) -> Result<(Gates, Vec<String>), String> {
        let mut set = BTreeMap::new();
        let mut warnings = Vec::new();
        for item in items.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            let Some((name, value)) = item.split_once('=') else {
                return Err(format!("--feature-gates: missing bool value for {item}"));
            };
            let (name, value) = (name.trim(), value.trim());
            let on = parse_bool(value).ok_or_else(|| {
                format!("--feature-gates: invalid value of {name}={value}, err: strconv.ParseBool: parsing {value:?}: invalid syntax")
            })?;
            if !matches!(name, "AllAlpha" | "AllBeta") && !GATES.iter().any(|g| g.name == name) {
                warnings.push(format!(
                    "--feature-gates {name}: kapi's behaviour does not vary by this gate; ignored"
                ));
            }
            set.insert(name.to_owned(), on);
        }
        Ok((Gates { set }, warnings))
    }

    /// Whether `name` is on: set explicitly, else by `AllAlpha`/`AllBeta` for its stage, else
    /// its default.
    pub fn enabled(&self, name: &str) -> bool {
        if let Some(&on) = self.set.get(name) {
            return on;
        }
        let Some(gate) = GATES.iter().find(|g| g.name == name) else {
            return false;
        };
        let all = match gate.stage {
            Stage::Alpha => "AllAlpha",
            Stage::Beta => "AllBeta",
        };
        self.set.get(all).copied().unwrap_or(gate.default)
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

static GATES_SET: OnceLock<Gates> = OnceLock::new();

/// Applies the flag for this process, once, at start (before the registry is built).
pub fn init(items: &[String]) -> Result<(), String> {
    let (gates, _) = Gates::parse(items)?;
    let _ = GATES_SET.set(gates);
    Ok(())
}

/// Whether `name` is on in this process (defaults before `init`).
pub fn enabled(name: &str) -> bool {
    match GATES_SET.get() {
        Some(g) => g.enabled(name),
        None => Gates::default().enabled(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn gates_resolve_explicit_then_all_then_default() {
        let (g, w) =
            Gates::parse(&items(&["AllBeta=true", "PodCertificateRequest=false"])).unwrap();
        assert!(w.is_empty());
        assert!(g.enabled("ClusterTrustBundle"));
        assert!(!g.enabled("PodCertificateRequest"));
        assert!(!g.enabled("GenericWorkload"), "alpha gates follow AllAlpha");
        let (g, _) = Gates::parse(&items(&["GenericWorkload=T"])).unwrap();
        assert!(g.enabled("GenericWorkload"));
        assert!(!Gates::default().enabled("ClusterTrustBundle"));
        let (_, w) = Gates::parse(&items(&["SomethingElse=true"])).unwrap();
        assert_eq!(w.len(), 1);
        assert!(Gates::parse(&items(&["ClusterTrustBundle=yes"])).is_err());
        assert!(Gates::parse(&items(&["ClusterTrustBundle"])).is_err());
    }
}
