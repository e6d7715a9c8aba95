//! OpenAPI v2 and v3 documents of Kubernetes v1.36 (served group-versions), as upstream
//! publishes them, gzipped in `data/openapi/`: `/openapi/v2`, the `/openapi/v3` index with
//! content hashes, and `/openapi/v3/<path>` (kubectl apply and explain read them).

use std::collections::HashMap;
use std::io::Read;
use std::sync::OnceLock;

/// (path below /openapi/v3, gzipped document); `swagger.json` is the v2 document.
const DOCS: &[(&str, &[u8])] = &[
    (
        "api/v1",
        include_bytes!("data/openapi/api__v1_openapi.json.gz"),
    ),
    ("api", include_bytes!("data/openapi/api_openapi.json.gz")),
    (
        "apis/admissionregistration.k8s.io/v1",
        include_bytes!("data/openapi/apis__admissionregistration.k8s.io__v1_openapi.json.gz"),
    ),
    (
        "apis/admissionregistration.k8s.io",
        include_bytes!("data/openapi/apis__admissionregistration.k8s.io_openapi.json.gz"),
    ),
    (
        "apis/apiextensions.k8s.io/v1",
        include_bytes!("data/openapi/apis__apiextensions.k8s.io__v1_openapi.json.gz"),
    ),
    (
        "apis/apiextensions.k8s.io",
        include_bytes!("data/openapi/apis__apiextensions.k8s.io_openapi.json.gz"),
    ),
    (
        "apis/apiregistration.k8s.io/v1",
        include_bytes!("data/openapi/apis__apiregistration.k8s.io__v1_openapi.json.gz"),
    ),
    (
        "apis/apiregistration.k8s.io",
        include_bytes!("data/openapi/apis__apiregistration.k8s.io_openapi.json.gz"),
    ),
    (
        "apis/apps/v1",
        include_bytes!("data/openapi/apis__apps__v1_openapi.json.gz"),
    ),
    (
        "apis/apps",
        include_bytes!("data/openapi/apis__apps_openapi.json.gz"),
    ),
    (
        "apis/authentication.k8s.io/v1",
        include_bytes!("data/openapi/apis__authentication.k8s.io__v1_openapi.json.gz"),
    ),
    (
        "apis/authentication.k8s.io",
        include_bytes!("data/openapi/apis__authentication.k8s.io_openapi.json.gz"),
    ),
    (
        "apis/authorization.k8s.io/v1",
        include_bytes!("data/openapi/apis__authorization.k8s.io__v1_openapi.json.gz"),
    ),
    (
        "apis/authorization.k8s.io",
        include_bytes!("data/openapi/apis__authorization.k8s.io_openapi.json.gz"),
    ),
    (
        "apis/autoscaling/v1",
        include_bytes!("data/openapi/apis__autoscaling__v1_openapi.json.gz"),
    ),
    (
        "apis/autoscaling/v2",
        include_bytes!("data/openapi/apis__autoscaling__v2_openapi.json.gz"),
    ),
    (
        "apis/autoscaling",
        include_bytes!("data/openapi/apis__autoscaling_openapi.json.gz"),
    ),
    (
        "apis/batch/v1",
        include_bytes!("data/openapi/apis__batch__v1_openapi.json.gz"),
    ),
    (
        "apis/batch",
        include_bytes!("data/openapi/apis__batch_openapi.json.gz"),
    ),
    (
        "apis/certificates.k8s.io/v1",
        include_bytes!("data/openapi/apis__certificates.k8s.io__v1_openapi.json.gz"),
    ),
    (
        "apis/certificates.k8s.io",
        include_bytes!("data/openapi/apis__certificates.k8s.io_openapi.json.gz"),
    ),
    (
        "apis/coordination.k8s.io/v1",
        include_bytes!("data/openapi/apis__coordination.k8s.io__v1_openapi.json.gz"),
    ),
    (
        "apis/coordination.k8s.io",
        include_bytes!("data/openapi/apis__coordination.k8s.io_openapi.json.gz"),
    ),
    (
        "apis/discovery.k8s.io/v1",
        include_bytes!("data/openapi/apis__discovery.k8s.io__v1_openapi.json.gz"),
    ),
    (
        "apis/discovery.k8s.io",
        include_bytes!("data/openapi/apis__discovery.k8s.io_openapi.json.gz"),
    ),
    (
        "apis/events.k8s.io/v1",
        include_bytes!("data/openapi/apis__events.k8s.io__v1_openapi.json.gz"),
    ),
    (
        "apis/events.k8s.io",
        include_bytes!("data/openapi/apis__events.k8s.io_openapi.json.gz"),
    ),
    (
        "apis/flowcontrol.apiserver.k8s.io/v1",
        include_bytes!("data/openapi/apis__flowcontrol.apiserver.k8s.io__v1_openapi.json.gz"),
    ),
    (
        "apis/flowcontrol.apiserver.k8s.io",
        include_bytes!("data/openapi/apis__flowcontrol.apiserver.k8s.io_openapi.json.gz"),
    ),
    (
        "apis/networking.k8s.io/v1",
        include_bytes!("data/openapi/apis__networking.k8s.io__v1_openapi.json.gz"),
    ),
    (
        "apis/networking.k8s.io",
        include_bytes!("data/openapi/apis__networking.k8s.io_openapi.json.gz"),
    ),
    (
        "apis/node.k8s.io/v1",
        include_bytes!("data/openapi/apis__node.k8s.io__v1_openapi.json.gz"),
    ),
    (
        "apis/node.k8s.io",
        include_bytes!("data/openapi/apis__node.k8s.io_openapi.json.gz"),
    ),
    (
        "apis/policy/v1",
        include_bytes!("data/openapi/apis__policy__v1_openapi.json.gz"),
    ),
    (
        "apis/policy",
        include_bytes!("data/openapi/apis__policy_openapi.json.gz"),
    ),
    (
        "apis/rbac.authorization.k8s.io/v1",
        include_bytes!("data/openapi/apis__rbac.authorization.k8s.io__v1_openapi.json.gz"),
    ),
    (
        "apis/rbac.authorization.k8s.io",
        include_bytes!("data/openapi/apis__rbac.authorization.k8s.io_openapi.json.gz"),
    ),
    (
        "apis/resource.k8s.io/v1",
        include_bytes!("data/openapi/apis__resource.k8s.io__v1_openapi.json.gz"),
    ),
    (
        "apis/resource.k8s.io",
        include_bytes!("data/openapi/apis__resource.k8s.io_openapi.json.gz"),
    ),
    (
        "apis/scheduling.k8s.io/v1",
        include_bytes!("data/openapi/apis__scheduling.k8s.io__v1_openapi.json.gz"),
    ),
    (
        "apis/scheduling.k8s.io",
        include_bytes!("data/openapi/apis__scheduling.k8s.io_openapi.json.gz"),
    ),
    (
        "apis/storage.k8s.io/v1",
        include_bytes!("data/openapi/apis__storage.k8s.io__v1_openapi.json.gz"),
    ),
    (
        "apis/storage.k8s.io",
        include_bytes!("data/openapi/apis__storage.k8s.io_openapi.json.gz"),
    ),
    ("apis", include_bytes!("data/openapi/apis_openapi.json.gz")),
    ("logs", include_bytes!("data/openapi/logs_openapi.json.gz")),
    (
        "openid/v1/jwks",
        include_bytes!("data/openapi/openid__v1__jwks_openapi.json.gz"),
    ),
    ("swagger", include_bytes!("data/openapi/swagger.json.gz")),
    (
        "version",
        include_bytes!("data/openapi/version_openapi.json.gz"),
    ),
];

/// A decompressed document with its hash (hex, as upstream's `?hash=` and ETag carry it).
pub struct Doc {
    pub body: bytes::Bytes,
    pub hash: String,
}

impl Doc {
    pub fn new(body: Vec<u8>) -> Doc {
        let hash = hex_hash(&body);
        Doc {
            body: body.into(),
            hash,
        }
    }
}

/// The beta and alpha group-versions' documents (and the groups only they have): every
/// resource upstream's version has, gated off or not.
const BETA_DOCS: &[(&str, &[u8])] = &[
    (
        "apis/admissionregistration.k8s.io/v1alpha1",
        include_bytes!("data/openapi/apis__admissionregistration.k8s.io__v1alpha1_openapi.json.gz"),
    ),
    (
        "apis/admissionregistration.k8s.io/v1beta1",
        include_bytes!("data/openapi/apis__admissionregistration.k8s.io__v1beta1_openapi.json.gz"),
    ),
    (
        "apis/certificates.k8s.io/v1alpha1",
        include_bytes!("data/openapi/apis__certificates.k8s.io__v1alpha1_openapi.json.gz"),
    ),
    (
        "apis/certificates.k8s.io/v1beta1",
        include_bytes!("data/openapi/apis__certificates.k8s.io__v1beta1_openapi.json.gz"),
    ),
    (
        "apis/coordination.k8s.io/v1alpha2",
        include_bytes!("data/openapi/apis__coordination.k8s.io__v1alpha2_openapi.json.gz"),
    ),
    (
        "apis/coordination.k8s.io/v1beta1",
        include_bytes!("data/openapi/apis__coordination.k8s.io__v1beta1_openapi.json.gz"),
    ),
    (
        "apis/internal.apiserver.k8s.io/v1alpha1",
        include_bytes!("data/openapi/apis__internal.apiserver.k8s.io__v1alpha1_openapi.json.gz"),
    ),
    (
        "apis/internal.apiserver.k8s.io",
        include_bytes!("data/openapi/apis__internal.apiserver.k8s.io_openapi.json.gz"),
    ),
    (
        "apis/networking.k8s.io/v1beta1",
        include_bytes!("data/openapi/apis__networking.k8s.io__v1beta1_openapi.json.gz"),
    ),
    (
        "apis/resource.k8s.io/v1alpha3",
        include_bytes!("data/openapi/apis__resource.k8s.io__v1alpha3_openapi.json.gz"),
    ),
    (
        "apis/resource.k8s.io/v1beta1",
        include_bytes!("data/openapi/apis__resource.k8s.io__v1beta1_openapi.json.gz"),
    ),
    (
        "apis/resource.k8s.io/v1beta2",
        include_bytes!("data/openapi/apis__resource.k8s.io__v1beta2_openapi.json.gz"),
    ),
    (
        "apis/scheduling.k8s.io/v1alpha2",
        include_bytes!("data/openapi/apis__scheduling.k8s.io__v1alpha2_openapi.json.gz"),
    ),
    (
        "apis/storage.k8s.io/v1beta1",
        include_bytes!("data/openapi/apis__storage.k8s.io__v1beta1_openapi.json.gz"),
    ),
    (
        "apis/storagemigration.k8s.io/v1beta1",
        include_bytes!("data/openapi/apis__storagemigration.k8s.io__v1beta1_openapi.json.gz"),
    ),
    (
        "apis/storagemigration.k8s.io",
        include_bytes!("data/openapi/apis__storagemigration.k8s.io_openapi.json.gz"),
    ),
];

/// Whether a document's path (`api/v1`, `apis/<group>[/<version>]`) is served in this
/// process: its group-version is (`--runtime-config`), or for a group's, one of its versions.
fn served_path(path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    let served = crate::api::runtime_config::served;
    match parts.as_slice() {
        ["api", version] => served("", version),
        ["apis", group, version] => served(group, version),
        ["apis", group] => DOCS.iter().chain(BETA_DOCS).any(|(p, _)| {
            p.strip_prefix("apis/")
                .and_then(|gv| gv.split_once('/'))
                .is_some_and(|(g, v)| g == *group && served(g, v))
        }),
        _ => true,
    }
}

fn docs() -> &'static HashMap<&'static str, Doc> {
    static DOCS_MAP: OnceLock<HashMap<&'static str, Doc>> = OnceLock::new();
    DOCS_MAP.get_or_init(|| {
        DOCS.iter()
            .chain(BETA_DOCS)
            .filter(|(p, _)| served_path(p))
            .filter_map(|(path, gz)| {
                let mut body = Vec::new();
                flate2::read::GzDecoder::new(*gz)
                    .read_to_end(&mut body)
                    .ok()?;
                Some((*path, Doc::new(body)))
            })
            .collect()
    })
}

/// A stable 128-bit content hash in upper-case hex (the value is opaque to clients).
fn hex_hash(body: &[u8]) -> String {
    let mut a: u64 = 0xcbf2_9ce4_8422_2325;
    let mut b: u64 = 0x8422_2325_cbf2_9ce4;
    for &x in body {
        a = (a ^ u64::from(x)).wrapping_mul(0x0000_0100_0000_01b3);
        b = (b ^ u64::from(x))
            .wrapping_mul(0x0000_0100_0000_01b3)
            .rotate_left(5);
    }
    format!("{a:016X}{b:016X}")
}

/// `/openapi/v2` (JSON).
pub fn v2() -> Option<&'static Doc> {
    docs().get("swagger")
}

/// `/openapi/v3`: the index of per-path documents (built-in, and `custom`'s: custom
/// resources' group-versions).
pub fn v3_index(custom: &HashMap<String, std::sync::Arc<Doc>>) -> Vec<u8> {
    let mut paths: Vec<(&str, &Doc)> = docs()
        .iter()
        .filter(|(p, _)| **p != "swagger")
        .map(|(p, d)| (*p, d))
        .chain(
            custom
                .iter()
                .filter(|(p, _)| *p != "swagger")
                .map(|(p, d)| (p.as_str(), d.as_ref())),
        )
        .collect();
    paths.sort_by(|a, b| a.0.cmp(b.0));
    let mut map = serde_json::Map::new();
    for (p, d) in paths {
        map.insert(
            p.to_string(),
            serde_json::json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", d.hash)}),
        );
    }
    serde_json::to_vec(&serde_json::json!({ "paths": map })).unwrap_or_default()
}

/// `/openapi/v3/<path>`.
pub fn v3(path: &str) -> Option<&'static Doc> {
    docs()
        .get(path.trim_matches('/'))
        .filter(|_| path != "swagger")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_decompress_and_the_index_lists_them() {
        assert!(v2().is_some_and(|d| d.body.starts_with(b"{")));
        let idx: serde_json::Value = serde_json::from_slice(&v3_index(&HashMap::new())).unwrap();
        let url = idx["paths"]["apis/apps/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap();
        assert!(url.starts_with("/openapi/v3/apis/apps/v1?hash="));
        let doc = v3("apis/apps/v1").unwrap();
        assert!(url.ends_with(&doc.hash));
        assert!(v3("api/v1").is_some());
        assert!(v3("nope").is_none());
    }
}
