//! The CertificateSigningRequest plugins, as upstream's:
//!
//! - CertificateApproval: changing a request's approval (`certificatesigningrequests/approval`)
//!   needs the `approve` verb on `signers` (group `certificates.k8s.io`) named by the request's
//!   signer, or by its domain with `/*`;
//! - CertificateSigning: changing the issued certificate (`status`) needs `sign` likewise;
//! - CertificateSubjectRestriction: a request to the `kubernetes.io/kube-apiserver-client`
//!   signer may not ask for the `system:masters` group;
//! - ClusterTrustBundleAttest: writing a ClusterTrustBundle that names a signer needs the
//!   `attest` verb on that signer (or its domain's `/*`), unless an update changes only what
//!   the garbage collector changes (owner references, finalizers); inert while the
//!   ClusterTrustBundle feature gate is off.
//!
//! A refusal is upstream's 403.

use async_trait::async_trait;
use serde_json::Value;

use super::{Attributes, Operation, Validating, forbidden};
use crate::api::server::Api;
use crate::api::status::Status;

pub struct CertificateApproval;
pub struct CertificateSigning;
pub struct CertificateSubjectRestriction;
pub struct ClusterTrustBundleAttest;

const GROUP: &str = "certificates.k8s.io";

fn is_request(attrs: &Attributes<'_>, subresource: Option<&str>) -> bool {
    attrs.resource.group == GROUP
        && attrs.resource.resource == "certificatesigningrequests"
        && attrs.subresource == subresource
}

/// Whether the user may `verb` requests of `signer`: the signer by name, or its domain's
/// wildcard (`example.com/*`).
async fn may(api: &Api, attrs: &Attributes<'_>, verb: &str, signer: &str) -> bool {
    let user = attrs.user;
    if api
        .authz
        .allows(user, verb, GROUP, "signers", "", signer)
        .await
    {
        return true;
    }
    let Some((domain, _)) = signer.split_once('/') else {
        return false;
    };
    api.authz
        .allows(user, verb, GROUP, "signers", "", &format!("{domain}/*"))
        .await
}

fn signer(obj: &Value) -> &str {
    obj["spec"]["signerName"].as_str().unwrap_or("")
}

/// Ok when the user may `verb` (`approve`, `sign`) requests of the object's signer.
async fn signer_check(
    api: &Api,
    attrs: &Attributes<'_>,
    obj: Option<&Value>,
    verb: &str,
) -> Result<(), Status> {
    let Some(obj) = obj else { return Ok(()) };
    let signer = signer(obj);
    if may(api, attrs, verb, signer).await {
        return Ok(());
    }
    Err(forbidden(
        attrs,
        &format!("user not permitted to {verb} requests with signerName {signer:?}"),
    ))
}

#[async_trait(?Send)]
impl Validating for CertificateApproval {
    fn name(&self) -> &'static str {
        "CertificateApproval"
    }

    async fn validate(
        &self,
        api: &Api,
        attrs: &Attributes<'_>,
        obj: Option<&Value>,
    ) -> Result<(), Status> {
        if attrs.operation != Operation::Update || !is_request(attrs, Some("approval")) {
            return Ok(());
        }
        signer_check(api, attrs, obj, "approve").await
    }
}

#[async_trait(?Send)]
impl Validating for CertificateSigning {
    fn name(&self) -> &'static str {
        "CertificateSigning"
    }

    async fn validate(
        &self,
        api: &Api,
        attrs: &Attributes<'_>,
        obj: Option<&Value>,
    ) -> Result<(), Status> {
        if attrs.operation != Operation::Update || !is_request(attrs, Some("status")) {
            return Ok(());
        }
        let old = attrs.old.map(|o| &o["status"]["certificate"]);
        if old == obj.map(|o| &o["status"]["certificate"]) {
            return Ok(());
        }
        signer_check(api, attrs, obj, "sign").await
    }
}

#[async_trait(?Send)]
impl Validating for CertificateSubjectRestriction {
    fn name(&self) -> &'static str {
        "CertificateSubjectRestriction"
    }

    async fn validate(
        &self,
        _api: &Api,
        attrs: &Attributes<'_>,
        obj: Option<&Value>,
    ) -> Result<(), Status> {
        let Some(obj) = obj else { return Ok(()) };
        if attrs.operation != Operation::Create || !is_request(attrs, None) {
            return Ok(());
        }
        if signer(obj) != "kubernetes.io/kube-apiserver-client" {
            return Ok(());
        }
        let orgs = crate::kinds::certificates::request_organizations(&obj["spec"]);
        if orgs.iter().any(|o| o == "system:masters") {
            return Err(forbidden(
                attrs,
                "use of kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed",
            ));
        }
        Ok(())
    }
}

/// Whether `new` differs from `old` only in what the garbage collector writes (upstream's
/// `rbac.IsOnlyMutatingGCFields`); server-maintained metadata is not compared.
fn only_gc_fields_changed(new: &Value, old: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            for k in [
                "ownerReferences",
                "finalizers",
                "managedFields",
                "resourceVersion",
            ] {
                m.remove(k);
            }
        }
        v
    };
    strip(new) == strip(old)
}

#[async_trait(?Send)]
impl Validating for ClusterTrustBundleAttest {
    fn name(&self) -> &'static str {
        "ClusterTrustBundleAttest"
    }

    async fn validate(
        &self,
        api: &Api,
        attrs: &Attributes<'_>,
        obj: Option<&Value>,
    ) -> Result<(), Status> {
        if !crate::features::enabled("ClusterTrustBundle")
            || attrs.resource.group != GROUP
            || attrs.resource.resource != "clustertrustbundles"
            || attrs.subresource.is_some()
            || !matches!(attrs.operation, Operation::Create | Operation::Update)
        {
            return Ok(());
        }
        let Some(obj) = obj else { return Ok(()) };
        let signer = signer(obj);
        if signer.is_empty() {
            return Ok(());
        }
        if attrs.operation == Operation::Update
            && attrs
                .old
                .is_some_and(|old| only_gc_fields_changed(obj, old))
        {
            return Ok(());
        }
        if may(api, attrs, "attest", signer).await {
            return Ok(());
        }
        Err(forbidden(
            attrs,
            &format!("user not permitted to attest for signerName {signer:?}"),
        ))
    }
}
