//! The kubeconfig files that name a webhook kapi calls (`--audit-webhook-config-file`, the
//! authorization webhook's): the current context's (else the first) cluster and user, with
//! their certificates read from `<field>-data` (base64) or `<field>` (a path relative to the
//! file).

use std::path::Path;

use base64::Engine;
use serde_json::Value;

/// What a webhook's kubeconfig says about reaching it.
#[derive(Debug, Clone, Default)]
pub struct Kubeconfig {
    /// The cluster's `server` URL.
    pub server: String,
    /// PEM roots to trust (`certificate-authority`).
    pub certificate_authority: Option<Vec<u8>>,
    pub insecure_skip_tls_verify: bool,
    /// The user's client certificate chain and key (PEM).
    pub client_certificate: Option<Vec<u8>>,
    pub client_key: Option<Vec<u8>>,
    /// The user's bearer token (`token`, or the contents of `tokenFile`).
    pub token: Option<String>,
}

impl Kubeconfig {
    pub fn read(file: &Path) -> Result<Kubeconfig, String> {
        let data = std::fs::read(file).map_err(|e| format!("reading {}: {e}", file.display()))?;
        let doc = kapi_codec::yaml::from_yaml(&data).map_err(|e| e.to_string())?;
        let named = |list: &str, name: &str, field: &str| -> Value {
            let items = doc[list].as_array().cloned().unwrap_or_default();
            items
                .iter()
                .find(|i| !name.is_empty() && i["name"] == name)
                .or_else(|| items.first())
                .map(|i| i[field].clone())
                .unwrap_or(Value::Null)
        };
        let current = doc["current-context"].as_str().unwrap_or_default();
        let context = named("contexts", current, "context");
        let cluster = named(
            "clusters",
            context["cluster"].as_str().unwrap_or_default(),
            "cluster",
        );
        let user = named(
            "users",
            context["user"].as_str().unwrap_or_default(),
            "user",
        );
        let base = file.parent().unwrap_or(Path::new("."));
        let server = cluster["server"]
            .as_str()
            .ok_or("the kubeconfig names no cluster server")?
            .to_string();
        let token = match (user["token"].as_str(), user["tokenFile"].as_str()) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(path)) => Some(
                std::fs::read_to_string(base.join(path))
                    .map_err(|e| format!("tokenFile {path}: {e}"))?
                    .trim()
                    .to_string(),
            ),
            (None, None) => None,
        };
        Ok(Kubeconfig {
            server,
            certificate_authority: file_or_data(&cluster, "certificate-authority", base)?,
            insecure_skip_tls_verify: cluster["insecure-skip-tls-verify"].as_bool() == Some(true),
            client_certificate: file_or_data(&user, "client-certificate", base)?,
            client_key: file_or_data(&user, "client-key", base)?,
            token,
        })
    }

    /// The client certificate and key, when the user has both.
    pub fn identity(&self) -> Option<(Vec<u8>, Vec<u8>)> {
        Some((self.client_certificate.clone()?, self.client_key.clone()?))
    }
}

/// `<field>-data` (base64) or `<field>` (a path, relative to the kubeconfig).
fn file_or_data(v: &Value, field: &str, base: &Path) -> Result<Option<Vec<u8>>, String> {
    if let Some(data) = v[format!("{field}-data")].as_str() {
        return base64::engine::general_purpose::STANDARD
            .decode(data)
            .map(Some)
            .map_err(|e| format!("{field}-data: {e}"));
    }
    match v[field].as_str() {
        Some(path) => std::fs::read(base.join(path))
            .map(Some)
            .map_err(|e| format!("{field} {path}: {e}")),
        None => Ok(None),
    }
}
