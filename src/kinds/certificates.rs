//! CertificateSigningRequests, as upstream's strategy and validation: a new request records who
//! made it (`spec.username`, `uid`, `groups`, `extra`) and starts with an empty status; an
//! update of the main resource changes only metadata; `status` (the signer's certificate) keeps
//! the approval conditions and `approval` (`crate::api::rest::write`) changes only them. The
//! request must be a PEM `CERTIFICATE REQUEST` whose signature holds, the signer a domain and
//! path, the usages known ones.

use crate::jsonptr::At;
use base64::Engine;
use serde_json::{Value, json};

use super::Strategy;
use super::field::forbidden;
use super::podspec_rules::{duplicate, invalid, not_supported, required};
use crate::api::status::Cause;
use crate::authn::UserInfo;

/// Upstream's key usages.
const USAGES: &[&str] = &[
    "any",
    "cert sign",
    "client auth",
    "code signing",
    "content commitment",
    "crl sign",
    "data encipherment",
    "decipher only",
    "digital signature",
    "email protection",
    "encipher only",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "key agreement",
    "key encipherment",
    "microsoft sgc",
    "netscape sgc",
    "ocsp signing",
    "s/mime",
    "server auth",
    "signing",
    "timestamping",
];

const NOT_A_REQUEST: &str = "PEM block type must be CERTIFICATE REQUEST";

#[derive(Debug)]
pub struct CertificateSigningRequests;

impl Strategy for CertificateSigningRequests {
    /// Any name that is a path segment (upstream's `ValidateCertificateRequestName`).
    fn name_rule(&self) -> super::NameRule {
        super::NameRule::PathSegment
    }

    fn prepare_for_create_by(&self, obj: &mut Value, user: &UserInfo) {
        let Some(o) = obj.as_object_mut() else { return };
        if let Some(spec) = o.entry("spec").or_insert_with(|| json!({})).as_object_mut() {
            for k in ["username", "uid", "groups", "extra"] {
                spec.remove(k);
            }
            spec.insert("username".into(), json!(user.name));
            if !user.uid.is_empty() {
                spec.insert("uid".into(), json!(user.uid));
            }
            if !user.groups.is_empty() {
                spec.insert("groups".into(), json!(user.groups));
            }
            if !user.extra.is_empty() {
                spec.insert("extra".into(), json!(user.extra));
            }
        }
        o.insert("status".into(), json!({}));
    }

    /// `certificatesigningrequests/approval`: only the conditions change (an approver's
    /// decision; the certificate is the signer's, through `status`).
    fn prepare_for_subresource_update(&self, sub: &str, new: &Value, old: &Value) -> Option<Value> {
        (sub == "approval").then(|| super::old_with(old, new, "status", "conditions"))
    }

    fn prepare_for_update(&self, obj: &mut Value, old: &Value) {
        if let Some(o) = obj.as_object_mut() {
            for k in ["spec", "status"] {
                match old.get(k) {
                    Some(v) => o.insert(k.into(), v.clone()),
                    None => o.remove(k),
                };
            }
        }
    }

    fn prepare_for_status_update(&self, obj: &mut Value, old: &Value) {
        let conditions = old.at("/status/conditions").cloned();
        if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) {
            match conditions {
                Some(c) => status.insert("conditions".into(), c),
                None => status.remove("conditions"),
            };
        }
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let spec = &obj["spec"];
        let mut causes = Vec::new();
        if let Err(why) = parse_request(spec) {
            causes.push(invalid(
                "spec.request".into(),
                &spec.get("request").cloned().unwrap_or(Value::Null),
                &why,
            ));
        }
        match spec["usages"].as_array().filter(|u| !u.is_empty()) {
            None => causes.push(required("spec.usages".into())),
            Some(usages) => {
                for (i, u) in usages.iter().enumerate() {
                    let field = format!("spec.usages[{i}]");
                    if !u.as_str().is_some_and(|u| USAGES.contains(&u)) {
                        causes.push(not_supported(field, u, USAGES));
                    } else if usages[..i].contains(u) {
                        causes.push(duplicate(field, u));
                    }
                }
            }
        }
        let signer = spec["signerName"].as_str().unwrap_or("");
        if signer.is_empty() {
            causes.push(required("spec.signerName".into()));
        } else if let Some(why) = signer_name_error(signer) {
            causes.push(invalid("spec.signerName".into(), &json!(signer), &why));
        }
        if let Some(secs) = spec["expirationSeconds"].as_i64()
            && secs < 600
        {
            causes.push(invalid(
                "spec.expirationSeconds".into(),
                &json!(secs),
                "may not specify a duration less than 600 seconds (10 minutes)",
            ));
        }
        causes
    }

    /// The main resource keeps spec and status from the stored request, so only its
    /// metadata can change; what is left to check is `update_rules`' (moot there).
    fn validate_update(&self, obj: &Value, old: &Value) -> Vec<Cause> {
        update_rules(obj, old, Through::Main)
    }

    fn validate_subresource_update(
        &self,
        sub: &str,
        obj: &Value,
        old: &Value,
    ) -> Option<Vec<Cause>> {
        match sub {
            "status" => Some(update_rules(obj, old, Through::Status)),
            "approval" => Some(update_rules(obj, old, Through::Approval)),
            _ => None,
        }
    }
}

/// Which path an update of a request came through: what each may change.
#[derive(Clone, Copy, PartialEq)]
enum Through {
    Main,
    /// `status`: the signer sets the certificate, once.
    Status,
    /// `approval`: an approver adds Approved or Denied.
    Approval,
}

fn conditions_of<'a>(csr: &'a Value, ty: &str) -> Vec<&'a Value> {
    csr.at("/status/conditions")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter(|c| c["type"] == ty).collect())
        .unwrap_or_default()
}

/// Upstream's `validateCertificateSigningRequestUpdate`, beyond the create rules: the
/// decision conditions are never removed and only added through `approval`; the certificate is
/// only set through `status`, and never changed once set.
fn update_rules(new: &Value, old: &Value, through: Through) -> Vec<Cause> {
    let mut causes = Vec::new();
    let at = "status.conditions".to_string();
    for ty in ["Approved", "Denied", "Failed"] {
        if conditions_of(new, ty).len() < conditions_of(old, ty).len() {
            causes.push(forbidden(
                at.clone(),
                &format!("updates may not remove a condition of type \"{ty}\""),
            ));
        }
    }
    if through != Through::Approval {
        for ty in ["Approved", "Denied"] {
            let (n, o) = (conditions_of(new, ty), conditions_of(old, ty));
            if n.len() > o.len() {
                causes.push(forbidden(
                    at.clone(),
                    &format!("updates may not add a condition of type \"{ty}\""),
                ));
            } else if n.len() == o.len() && n != o {
                let shown: Vec<String> = n.iter().map(|c| c.to_string()).collect();
                causes.push(forbidden(
                    at.clone(),
                    &format!(
                        "updates may not modify a condition of type \"{ty}\"\n{}",
                        shown.join("\n")
                    ),
                ));
            }
        }
    }
    let certificate = |csr: &Value| {
        csr.at("/status/certificate")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let (new_cert, old_cert) = (certificate(new), certificate(old));
    if new_cert != old_cert {
        let field = "status.certificate".to_string();
        if through != Through::Status {
            causes.push(forbidden(field, "updates may not set certificate content"));
        } else if !old_cert.is_empty() {
            causes.push(forbidden(
                field,
                "updates may not modify existing certificate content",
            ));
        }
    }
    causes
}

/// The DER of the request's PEM `CERTIFICATE REQUEST`, its signature checked.
pub fn parse_request(spec: &Value) -> Result<Vec<u8>, String> {
    let pem = spec["request"]
        .as_str()
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .unwrap_or_default();
    let Ok((_, block)) = x509_parser::pem::parse_x509_pem(&pem) else {
        return Err(NOT_A_REQUEST.into());
    };
    if block.label != "CERTIFICATE REQUEST" {
        return Err(NOT_A_REQUEST.into());
    }
    use x509_parser::prelude::FromDer;
    let (_, csr) =
        x509_parser::certification_request::X509CertificationRequest::from_der(&block.contents)
            .map_err(|e| format!("x509: malformed certificate request: {e}"))?;
    csr.verify_signature()
        .map_err(|_| "x509: invalid signature on certificate request".to_string())?;
    Ok(block.contents)
}

/// The organizations of the request's subject (what CertificateSubjectRestriction reads).
pub fn request_organizations(spec: &Value) -> Vec<String> {
    let Ok(der) = parse_request(spec) else {
        return Vec::new();
    };
    use x509_parser::prelude::FromDer;
    let Ok((_, csr)) = x509_parser::certification_request::X509CertificationRequest::from_der(&der)
    else {
        return Vec::new();
    };
    csr.certification_request_info
        .subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_owned))
        .collect()
}

/// Upstream's `ValidateSignerName`: `<domain>/<path>`, the domain a DNS subdomain.
pub(crate) fn signer_name_error(name: &str) -> Option<String> {
    let form = "must be a fully qualified domain and path of the form 'example.com/signer-name'";
    let Some((domain, path)) = name.split_once('/') else {
        return Some(form.into());
    };
    if path.is_empty() || domain.is_empty() {
        return Some(form.into());
    }
    if let Some(e) = super::meta::subdomain_errors(domain).into_iter().next() {
        return Some(e.to_string());
    }
    if name.len() > 571 {
        return Some("must be no more than 571 characters".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csr_pem(orgs: &[&str]) -> String {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "alice");
        for o in orgs {
            params
                .distinguished_name
                .push(rcgen::DnType::OrganizationName, *o);
        }
        let key = rcgen::KeyPair::generate().unwrap();
        let pem = params.serialize_request(&key).unwrap().pem().unwrap();
        base64::engine::general_purpose::STANDARD.encode(pem)
    }

    #[test]
    fn a_request_must_be_a_signed_pem_csr() {
        let good = json!({"request": csr_pem(&["devs"])});
        assert!(parse_request(&good).is_ok());
        assert_eq!(request_organizations(&good), ["devs"]);
        assert_eq!(
            parse_request(&json!({"request": ""})).unwrap_err(),
            NOT_A_REQUEST
        );
        let cert = base64::engine::general_purpose::STANDARD
            .encode("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
        assert_eq!(
            parse_request(&json!({"request": cert})).unwrap_err(),
            NOT_A_REQUEST
        );
    }

    #[test]
    fn a_new_request_records_its_requester_and_starts_unapproved() {
        let user = UserInfo {
            name: "alice".into(),
            uid: "u1".into(),
            groups: vec!["devs".into()],
            extra: Default::default(),
        };
        let mut obj = json!({"spec": {"username": "mallory", "groups": ["system:masters"]},
                             "status": {"conditions": [{"type": "Approved"}]}});
        CertificateSigningRequests.prepare_for_create_by(&mut obj, &user);
        assert_eq!(obj["spec"]["username"], "alice");
        assert_eq!(obj["spec"]["groups"], json!(["devs"]));
        assert_eq!(obj["status"], json!({}));
        let causes = CertificateSigningRequests.validate_create(&json!({"spec": {}}));
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["spec.request", "spec.usages", "spec.signerName"]);
    }

    #[test]
    fn decisions_stay_and_a_certificate_is_set_once() {
        let old = json!({"status": {"conditions": [{"type": "Approved", "status": "True"}],
            "certificate": "Y2VydA=="}});
        let removed = json!({"status": {"certificate": "Y2VydA=="}});
        let got: Vec<String> = update_rules(&removed, &old, Through::Approval)
            .into_iter()
            .map(|c| format!("{} {} {}", c.field, c.reason, c.message))
            .collect();
        assert_eq!(
            got,
            vec![
                "status.conditions FieldValueForbidden Forbidden: updates may not remove a condition of type \"Approved\""
            ]
        );
        let mut recert = old.clone();
        recert["status"]["certificate"] = json!("b3RoZXI=");
        let got = update_rules(&recert, &old, Through::Status);
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].message,
            "Forbidden: updates may not modify existing certificate content"
        );
        let got = update_rules(&recert, &old, Through::Main);
        assert_eq!(
            got[0].message,
            "Forbidden: updates may not set certificate content"
        );
        let fresh = json!({"status": {}});
        let mut denied = fresh.clone();
        denied["status"]["conditions"] = json!([{"type": "Denied", "status": "True"}]);
        assert!(update_rules(&denied, &fresh, Through::Approval).is_empty());
        assert_eq!(
            update_rules(&denied, &fresh, Through::Status)[0].message,
            "Forbidden: updates may not add a condition of type \"Denied\""
        );
    }
}
