//! Service-account issuer discovery: `/.well-known/openid-configuration` and `/openid/v1/jwks`,
//! as upstream serves them (non-resource paths, readable by the
//! `system:service-account-issuer-discovery` role), so that relying parties outside the
//! cluster can verify service-account tokens. Both documents are made once, at start.

use http::{HeaderValue, StatusCode, header};

use super::flags::Settings;
use super::keys::Alg;
use crate::transport::Response;

pub const CONFIGURATION_PATH: &str = "/.well-known/openid-configuration";
pub const JWKS_PATH: &str = "/openid/v1/jwks";
/// Upstream's: relying parties may keep the documents an hour.
const CACHE_CONTROL: &str = "public, max-age=3600";
const JWKS_CONTENT_TYPE: &str = "application/jwk-set+json";

/// The two documents, or none when the issuer is not an https URL (upstream then serves
/// neither).
pub struct Discovery {
    configuration: Vec<u8>,
    jwks: Vec<u8>,
}

impl Discovery {
    /// `external_address` (host:port) makes the default `jwks_uri`, as upstream's
    /// `https://<external address>/openid/v1/jwks`.
    pub fn new(settings: &Settings, external_address: Option<&str>) -> Option<Discovery> {
        let issuer = settings.issuers.first()?;
        let rest = issuer.strip_prefix("https://")?;
        if rest.is_empty() || issuer.contains('?') || issuer.contains('#') {
            return None;
        }
        let jwks_uri = match (&settings.jwks_uri, external_address) {
            (Some(uri), _) => uri.clone(),
            (None, Some(addr)) => format!("https://{addr}{JWKS_PATH}"),
            (None, None) => format!("{}{JWKS_PATH}", issuer.trim_end_matches('/')),
        };
        let mut algs: Vec<&str> = settings.public_keys.iter().map(|k| k.alg.name()).collect();
        if algs.is_empty() {
            algs.push(Alg::RS256.name());
        }
        algs.sort_unstable();
        algs.dedup();
        // Field order as upstream's struct.
        let s = |v: &str| serde_json::Value::from(v).to_string();
        let list = |v: &[&str]| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
        let configuration = format!(
            "{{\"issuer\":{},\"jwks_uri\":{},\"response_types_supported\":[\"id_token\"],\
             \"subject_types_supported\":[\"public\"],\
             \"id_token_signing_alg_values_supported\":{}}}",
            s(issuer),
            s(&jwks_uri),
            list(&algs)
        );
        let mut seen = std::collections::HashSet::new();
        let keys: Vec<serde_json::Value> = settings
            .public_keys
            .iter()
            .filter(|k| seen.insert(k.kid.clone()))
            .map(|k| k.jwk())
            .collect();
        let jwks = serde_json::to_vec(&serde_json::json!({ "keys": keys })).ok()?;
        Some(Discovery {
            configuration: configuration.into_bytes(),
            jwks,
        })
    }

    /// The document at `path`, if it is one of the two.
    pub fn serve(&self, path: &str) -> Option<Response> {
        let (ctype, body) = match path {
            CONFIGURATION_PATH => ("application/json", &self.configuration),
            JWKS_PATH => (JWKS_CONTENT_TYPE, &self.jwks),
            _ => return None,
        };
        let mut resp = crate::api::server::respond(StatusCode::OK, ctype, body.clone());
        resp.headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(CACHE_CONTROL),
        );
        Some(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_name_the_issuer_jwks_uri_and_key_algorithms() {
        let key = super::super::keys::SigningKey::from_pem(include_bytes!(
            "../../tests/data/serviceaccounts/ec.key"
        ))
        .unwrap();
        let settings = Settings {
            issuers: vec!["https://issuer.example".into()],
            public_keys: vec![key.public.clone(), key.public.clone()],
            ..Settings::default()
        };
        let d = Discovery::new(&settings, Some("127.0.0.1:6443")).unwrap();
        let conf: serde_json::Value = serde_json::from_slice(&d.configuration).unwrap();
        assert_eq!(conf["issuer"], "https://issuer.example");
        assert_eq!(conf["jwks_uri"], "https://127.0.0.1:6443/openid/v1/jwks");
        assert_eq!(
            conf["id_token_signing_alg_values_supported"],
            serde_json::json!(["ES256"])
        );
        let jwks: serde_json::Value = serde_json::from_slice(&d.jwks).unwrap();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
        assert_eq!(jwks["keys"][0]["kid"], key.public.kid.as_str());
        let plain = Settings {
            issuers: vec!["kubernetes/serviceaccount".into()],
            ..Settings::default()
        };
        assert!(Discovery::new(&plain, None).is_none());
    }
}
