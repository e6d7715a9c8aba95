//! CertificateSigningRequests as upstream's: the requester recorded, approval and signing
//! through their subresources and only with the `approve`/`sign` verbs on the signer, no
//! `system:masters` through the kube-apiserver-client signer, and upstream's validation.

mod support;

use base64::Engine;
use serde_json::{Value, json};
use support::client::Client;
use support::kapi::Kapi;
use support::users::{eventually, until_allowed};

const CSRS: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";

fn request(orgs: &[&str]) -> String {
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

fn csr(name: &str, signer: &str, req: String) -> Value {
    json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
           "metadata": {"name": name},
           "spec": {"request": req, "signerName": signer, "usages": ["client auth"],
                    "username": "someone-else"}})
}

#[test]
fn requests_are_approved_and_signed_only_by_those_allowed() {
    let k = Kapi::start(&[], &[]);
    let c = Client::new(&k);
    let ct = "application/json";
    let (code, made) = c.json(
        "POST",
        CSRS,
        ct,
        &csr("alice", "example.com/signer", request(&[])),
    );
    assert_eq!(code, 201, "{made}");
    assert_ne!(made["spec"]["username"], "someone-else", "{made}");
    assert!(
        made["spec"]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g == "system:masters")
    );
    assert_eq!(made["status"], json!({}));

    // bob may update approvals but not approve for this signer.
    let rbac = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: csr-approver}
rules:
- apiGroups: [certificates.k8s.io]
  resources: [certificatesigningrequests, certificatesigningrequests/approval]
  verbs: [get, list, update]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: csr-approver}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: csr-approver}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}]
"#;
    let out = k.kubectl_stdin(&["apply", "-f", "-"], rbac);
    assert!(out.status.success(), "{out:?}");
    until_allowed(
        &k,
        &[
            "update",
            "certificatesigningrequests/approval",
            "--as",
            "bob",
        ],
    );
    let out = k.kubectl(&["certificate", "approve", "alice", "--as", "bob"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "user not permitted to approve requests with signerName \"example.com/signer\""
        ),
        "{out:?}"
    );
    // The signer's domain wildcard grants it.
    let grant = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: example-signer}
rules:
- apiGroups: [certificates.k8s.io]
  resources: [signers]
  resourceNames: [example.com/*]
  verbs: [approve]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: example-signer}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: example-signer}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}]
"#;
    let out = k.kubectl_stdin(&["apply", "-f", "-"], grant);
    assert!(out.status.success(), "{out:?}");
    eventually("bob approves once the signer grant is in force", || {
        k.kubectl(&["certificate", "approve", "alice", "--as", "bob"])
            .status
            .success()
    });
    let (_, approved) = c.call("GET", &format!("{CSRS}/alice"), "", None);
    assert_eq!(approved["status"]["conditions"][0]["type"], "Approved");
    assert_eq!(approved["status"]["conditions"][0]["status"], "True");

    // The main resource changes only metadata; status keeps the approval and takes the
    // certificate.
    let mut changed = approved.clone();
    changed["spec"]["signerName"] = json!("example.com/other");
    changed["status"] = json!({});
    let (code, body) = c.json("PUT", &format!("{CSRS}/alice"), ct, &changed);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["spec"]["signerName"], "example.com/signer");
    assert_eq!(body["status"]["conditions"][0]["type"], "Approved");
    let cert = base64::engine::general_purpose::STANDARD.encode("certificate bytes");
    let mut signed = body.clone();
    signed["status"] = json!({"certificate": cert, "conditions": []});
    let (code, body) = c.json("PUT", &format!("{CSRS}/alice/status"), ct, &signed);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"]["certificate"], cert);
    assert_eq!(body["status"]["conditions"][0]["type"], "Approved");
    // bob may not sign.
    let mut again = body.clone();
    again["status"]["certificate"] = json!(base64::engine::general_purpose::STANDARD.encode("x"));
    let out = k.kubectl_stdin(
        &["replace", "--subresource=status", "--as", "bob", "-f", "-"],
        &again.to_string(),
    );
    assert!(!out.status.success(), "{out:?}");

    // No system:masters through the kube-apiserver-client signer.
    let (code, body) = c.json(
        "POST",
        CSRS,
        ct,
        &csr(
            "root",
            "kubernetes.io/kube-apiserver-client",
            request(&["system:masters"]),
        ),
    );
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "certificatesigningrequests.certificates.k8s.io \"root\" is forbidden: use of kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed"
    );
    // Validation.
    let (code, body) = c.json("POST", CSRS, ct, &csr("bad", "no-slash", String::new()));
    assert_eq!(code, 422, "{body}");
    let fields: Vec<&str> = body["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["spec.request", "spec.signerName"], "{body}");
}
