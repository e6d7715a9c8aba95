//! A namespace's Pod Security policy: the level and version of each mode (enforce, audit,
//! warn) read from its `pod-security.kubernetes.io/*` labels over the configured defaults, as
//! upstream's `api.PolicyToEvaluate` — an invalid enforce level fails closed (restricted), an
//! invalid audit or warn level fails open (privileged), an invalid version is `latest`, and a
//! namespace that only enforces also warns at that level.

use std::fmt;

use crate::api::status::Cause;

pub const LABEL_PREFIX: &str = "pod-security.kubernetes.io/";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "privileged" => Some(Level::Privileged),
            "baseline" => Some(Level::Baseline),
            "restricted" => Some(Level::Restricted),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

/// `latest` or `v1.<minor>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Latest,
    Minor(u64),
}

impl Version {
    /// `latest`, or `v1.N` with no leading zero (upstream's `^v1\.(0|[1-9][0-9]*)$`).
    pub fn parse(s: &str) -> Option<Version> {
        if s == "latest" {
            return Some(Version::Latest);
        }
        let digits = s.strip_prefix("v1.")?;
        let canonical = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'));
        if !canonical {
            return None;
        }
        digits.parse().ok().map(Version::Minor)
    }

    /// The minor version its checks are chosen by (`latest`: every check).
    pub fn minor(self) -> u64 {
        match self {
            Version::Latest => u64::MAX,
            Version::Minor(m) => m,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelVersion {
    pub level: Level,
    pub version: Version,
}

impl LevelVersion {
    pub const PRIVILEGED: LevelVersion = LevelVersion {
        level: Level::Privileged,
        version: Version::Latest,
    };

    /// Upstream's `Equivalent`: two privileged policies are equal whatever their versions.
    fn equivalent(&self, other: &LevelVersion) -> bool {
        (self.level == Level::Privileged && other.level == Level::Privileged) || self == other
    }
}

impl fmt::Display for LevelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.version {
            Version::Latest => write!(f, "{}:latest", self.level.as_str()),
            Version::Minor(m) => write!(f, "{}:v1.{m}", self.level.as_str()),
        }
    }
}

/// The three modes' policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub enforce: LevelVersion,
    pub audit: LevelVersion,
    pub warn: LevelVersion,
}

impl Policy {
    pub const PRIVILEGED: Policy = Policy {
        enforce: LevelVersion::PRIVILEGED,
        audit: LevelVersion::PRIVILEGED,
        warn: LevelVersion::PRIVILEGED,
    };

    pub fn fully_privileged(&self) -> bool {
        [self.enforce, self.audit, self.warn]
            .iter()
            .all(|lv| lv.level == Level::Privileged)
    }

    pub fn equivalent(&self, other: &Policy) -> bool {
        self.enforce.equivalent(&other.enforce)
            && self.audit.equivalent(&other.audit)
            && self.warn.equivalent(&other.warn)
    }
}

/// One mode's policy within the three.
type ModeField = fn(&mut Policy) -> &mut LevelVersion;

const LEVEL_DETAIL: &str = "must be one of privileged, baseline, restricted";
const VERSION_DETAIL: &str = "must be \"latest\" or \"v1.x\"";

fn label<'a>(labels: &'a [(String, String)], key: &str) -> Option<&'a str> {
    labels
        .iter()
        .find(|(k, _)| k.strip_prefix(LABEL_PREFIX) == Some(key))
        .map(|(_, v)| v.as_str())
}

fn invalid(key: &str, value: &str, detail: &str) -> Cause {
    Cause {
        reason: "FieldValueInvalid".into(),
        message: format!(
            "Invalid value: {}: {detail}",
            super::checks::go_quote(value)
        ),
        field: format!("metadata.labels[{LABEL_PREFIX}{key}]"),
    }
}

/// The policy a namespace's labels give over `defaults`, and the labels' errors (in upstream's
/// order: enforce, enforce-version, audit, audit-version, warn, warn-version).
pub fn from_labels(labels: &[(String, String)], defaults: &Policy) -> (Policy, Vec<Cause>) {
    let mut policy = *defaults;
    let mut errors = Vec::new();
    let modes: [(&str, Level, ModeField); 3] = [
        ("enforce", Level::Restricted, |p| &mut p.enforce),
        ("audit", Level::Privileged, |p| &mut p.audit),
        ("warn", Level::Privileged, |p| &mut p.warn),
    ];
    for (mode, fallback, field) in modes {
        if let Some(v) = label(labels, mode) {
            field(&mut policy).level = Level::parse(v).unwrap_or_else(|| {
                errors.push(invalid(mode, v, LEVEL_DETAIL));
                fallback
            });
        }
        let key = format!("{mode}-version");
        if let Some(v) = label(labels, &key) {
            field(&mut policy).version = Version::parse(v).unwrap_or_else(|| {
                errors.push(invalid(&key, v, VERSION_DETAIL));
                Version::Latest
            });
        }
    }
    // A namespace that enforces a stricter level than it warns at, and says nothing of
    // warning, warns at its enforce level.
    let enforce_valid = label(labels, "enforce").and_then(Level::parse).is_some();
    if label(labels, "warn").is_none() && enforce_valid && policy.enforce.level > policy.warn.level
    {
        policy.warn.level = policy.enforce.level;
        if label(labels, "warn-version").is_none() {
            policy.warn.version = policy.enforce.version;
        }
    }
    (policy, errors)
}

/// The exempt-namespace warning's list: each mode not privileged that the labels name.
pub fn labelled_modes(labels: &[(String, String)], policy: &Policy) -> Vec<String> {
    [
        ("enforce", policy.enforce),
        ("audit", policy.audit),
        ("warn", policy.warn),
    ]
    .into_iter()
    .filter(|(mode, lv)| {
        lv.level != Level::Privileged
            && (label(labels, mode).is_some()
                || label(labels, &format!("{mode}-version")).is_some())
    })
    .map(|(mode, lv)| format!("{mode}={lv}"))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (format!("{LABEL_PREFIX}{k}"), v.to_string()))
            .collect()
    }

    #[test]
    fn versions_are_latest_or_v1_minor_without_leading_zeros() {
        assert_eq!(Version::parse("latest"), Some(Version::Latest));
        assert_eq!(Version::parse("v1.0"), Some(Version::Minor(0)));
        assert_eq!(Version::parse("v1.36"), Some(Version::Minor(36)));
        for bad in [
            "",
            "v1.05",
            "1.30",
            "V1.30",
            "v1.30.1",
            "v2.0",
            "v1.",
            "v1.99999999999999999999",
        ] {
            assert_eq!(Version::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn enforce_alone_also_warns_at_its_level() {
        let (p, errors) = from_labels(
            &labels(&[("enforce", "baseline"), ("enforce-version", "v1.30")]),
            &Policy::PRIVILEGED,
        );
        assert!(errors.is_empty());
        assert_eq!(p.warn.to_string(), "baseline:v1.30");
        assert_eq!(p.audit, LevelVersion::PRIVILEGED);
    }

    #[test]
    fn invalid_labels_fail_closed_for_enforce_and_open_for_the_others() {
        let (p, errors) = from_labels(
            &labels(&[
                ("enforce", "bogus"),
                ("warn-version", "1.2"),
                ("audit", "x"),
            ]),
            &Policy::PRIVILEGED,
        );
        assert_eq!(p.enforce.level, Level::Restricted);
        assert_eq!(p.audit.level, Level::Privileged);
        // An invalid enforce level does not make the namespace warn.
        assert_eq!(p.warn.level, Level::Privileged);
        let fields: Vec<&str> = errors.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "metadata.labels[pod-security.kubernetes.io/enforce]",
                "metadata.labels[pod-security.kubernetes.io/audit]",
                "metadata.labels[pod-security.kubernetes.io/warn-version]"
            ]
        );
        assert_eq!(
            errors[0].message,
            "Invalid value: \"bogus\": must be one of privileged, baseline, restricted"
        );
        assert_eq!(
            errors[2].message,
            "Invalid value: \"1.2\": must be \"latest\" or \"v1.x\""
        );
    }
}
