//! ClusterTrustBundles (certificates.k8s.io), as upstream's strategy and validation
//! (`pkg/apis/certificates/validation`): the name carries the signer (`<signer with / as :>:`
//! prefix) or no `:` at all; the signer name is a domain and path and never changes; the
//! bundle is one or more PEM `CERTIFICATE` blocks, each a CA certificate, none repeated.

use base64::Engine;
use serde_json::{Value, json};

use super::Strategy;
use super::field::{invalid, too_long};
use crate::api::status::Cause;

/// Upstream's `MaxTrustBundleSize`: 1 MiB.
const MAX_TRUST_BUNDLE_SIZE: usize = 1 << 20;

#[derive(Debug)]
pub struct ClusterTrustBundles;

impl Strategy for ClusterTrustBundles {
    /// The name's own rule depends on the signer: checked in `validate_create`.
    fn name_rule(&self) -> super::NameRule {
        super::NameRule::PathSegment
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let mut causes = Vec::new();
        let signer = obj["spec"]["signerName"].as_str().unwrap_or_default();
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        if !name.is_empty()
            && let Some(why) = name_error(signer, name)
        {
            causes.push(invalid("metadata.name".into(), &json!(name), &why));
        }
        if !signer.is_empty()
            && let Some(why) = super::certificates::signer_name_error(signer)
        {
            causes.push(invalid("spec.signerName".into(), &json!(signer), &why));
        }
        let bundle = obj["spec"]["trustBundle"].as_str().unwrap_or_default();
        causes.extend(bundle_errors(bundle));
        causes
    }

    fn validate_update(&self, obj: &Value, old: &Value) -> Vec<Cause> {
        let mut causes = self.validate_create(obj);
        let (new_signer, old_signer) = (&obj["spec"]["signerName"], &old["spec"]["signerName"]);
        if new_signer.as_str().unwrap_or_default() != old_signer.as_str().unwrap_or_default() {
            let shown = new_signer.as_str().map_or_else(|| json!(""), |s| json!(s));
            causes.push(invalid(
                "spec.signerName".into(),
                &shown,
                "field is immutable",
            ));
        }
        causes
    }
}

/// Upstream's `validateClusterTrustBundleName`.
fn name_error(signer: &str, name: &str) -> Option<String> {
    let rest = if signer.is_empty() {
        if name.contains(':') {
            return Some(
                "ClusterTrustBundle without signer name must not have \":\" in its name".into(),
            );
        }
        name
    } else {
        let prefix = format!("{}:", signer.replace('/', ":"));
        match name.strip_prefix(&prefix) {
            Some(rest) => rest,
            None => {
                return Some(format!(
                    "ClusterTrustBundle for signerName {signer} must be named with prefix {prefix}"
                ));
            }
        }
    };
    super::meta::subdomain_errors(rest)
        .into_iter()
        .next()
        .map(str::to_owned)
}

/// One PEM block: its type, whether it has headers, and its decoded bytes (None when the
/// base64 does not decode, which Go's `pem.Decode` treats as no block).
struct Block {
    kind: String,
    headers: bool,
    der: Vec<u8>,
}

/// The PEM blocks of `text`, as Go's `pem.Decode` finds them one after another (text between
/// blocks is skipped; a block whose body is not base64 is skipped too).
fn pem_blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let Some(end_label) = after.find("-----") else {
            break;
        };
        let kind = after[..end_label].to_string();
        let body_start = &after[end_label + 5..];
        let end_marker = format!("-----END {kind}-----");
        let Some(end) = body_start.find(&end_marker) else {
            break;
        };
        let body = &body_start[..end];
        rest = &body_start[end + end_marker.len()..];
        let mut headers = false;
        let mut b64 = String::new();
        for line in body.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if line.contains(':') {
                headers = true;
            } else {
                b64.push_str(line);
            }
        }
        if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(b64.as_bytes()) {
            out.push(Block { kind, headers, der });
        }
    }
    out
}

/// Upstream's `validateTrustBundle` at `spec.trustBundle`.
fn bundle_errors(bundle: &str) -> Vec<Cause> {
    const FIELD: &str = "spec.trustBundle";
    let omitted = json!("<value omitted>");
    if bundle.len() > MAX_TRUST_BUNDLE_SIZE {
        return vec![too_long(FIELD.into(), MAX_TRUST_BUNDLE_SIZE)];
    }
    let mut causes = Vec::new();
    let mut anchors: Vec<(Vec<u8>, Vec<usize>)> = Vec::new();
    for (i, block) in pem_blocks(bundle).into_iter().enumerate() {
        let why = if block.kind != "CERTIFICATE" {
            Some(format!("entry {i} has bad block type: {}", block.kind))
        } else if block.headers {
            Some(format!("entry {i} has PEM block headers"))
        } else {
            match x509_parser::parse_x509_certificate(&block.der) {
                Err(_) => Some(format!("entry {i} does not parse as X.509")),
                Ok((_, cert)) => match cert.basic_constraints() {
                    Ok(Some(bc)) if bc.value.ca => None,
                    _ => Some(format!("entry {i} does not have the CA bit set")),
                },
            }
        };
        match why {
            Some(why) => causes.push(invalid(FIELD.into(), &omitted, &why)),
            None => match anchors.iter_mut().find(|(der, _)| *der == block.der) {
                Some((_, seen)) => seen.push(i),
                None => anchors.push((block.der, vec![i])),
            },
        }
    }
    if causes.is_empty() && anchors.is_empty() {
        causes.push(invalid(
            FIELD.into(),
            &omitted,
            "at least one trust anchor must be provided",
        ));
    }
    for (_, seen) in anchors.iter().filter(|(_, seen)| seen.len() > 1) {
        let list: Vec<String> = seen.iter().map(usize::to_string).collect();
        causes.push(invalid(
            FIELD.into(),
            &omitted,
            &format!("duplicate trust anchor (indices [{}])", list.join(" ")),
        ));
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca_pem(ca: bool) -> String {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = if ca {
            rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained)
        } else {
            rcgen::IsCa::NoCa
        };
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().pem()
    }

    fn messages(obj: &Value) -> Vec<String> {
        ClusterTrustBundles
            .validate_create(obj)
            .into_iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn bundles_need_ca_certificates_and_names_follow_the_signer() {
        let ca = ca_pem(true);
        let ok = json!({"metadata": {"name": "example.com:signer:one"},
                        "spec": {"signerName": "example.com/signer", "trustBundle": ca}});
        assert!(messages(&ok).is_empty(), "{:?}", messages(&ok));
        let wrong = json!({"metadata": {"name": "one"},
                           "spec": {"signerName": "example.com/signer", "trustBundle": ca}});
        assert_eq!(
            messages(&wrong),
            [
                "metadata.name: Invalid value: \"one\": ClusterTrustBundle for signerName example.com/signer must be named with prefix example.com:signer:"
            ]
        );
        let colon = json!({"metadata": {"name": "a:b"}, "spec": {"trustBundle": ca}});
        assert!(messages(&colon)[0].contains("without signer name must not have \":\""));
        let leaf = json!({"metadata": {"name": "leaf"}, "spec": {"trustBundle": ca_pem(false)}});
        assert_eq!(
            messages(&leaf),
            [
                "spec.trustBundle: Invalid value: \"<value omitted>\": entry 0 does not have the CA bit set"
            ]
        );
        let empty = json!({"metadata": {"name": "e"}, "spec": {"trustBundle": "junk"}});
        assert!(messages(&empty)[0].ends_with("at least one trust anchor must be provided"));
        let twice =
            json!({"metadata": {"name": "t"}, "spec": {"trustBundle": format!("{ca}{ca}")}});
        assert!(messages(&twice)[0].ends_with("duplicate trust anchor (indices [0 1])"));
        let old = json!({"metadata": {"name": "p"}, "spec": {"trustBundle": ca}});
        let moved =
            json!({"metadata": {"name": "p"}, "spec": {"signerName": "a.io/b", "trustBundle": ca}});
        let causes = ClusterTrustBundles.validate_update(&moved, &old);
        assert!(
            causes
                .iter()
                .any(|c| c.message.ends_with("field is immutable"))
        );
    }
}
