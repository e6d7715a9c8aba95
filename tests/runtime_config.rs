//! `--runtime-config` and `--feature-gates` against the real binary: `api/all=true` serves
//! 1.36's beta and alpha versions (discovery, JSON, YAML, protobuf, Table, list, watch), a
//! beta-only kind is stored as upstream's, a GA kind written through its beta version is the
//! same object read through GA (resource.k8s.io v1beta1 converted as upstream), `api/beta=false`
//! and single group-versions turn versions off, an alpha resource needs its feature gate, and
//! ClusterTrustBundleAttest refuses a signer's bundle to a user without `attest`.

mod support;

use serde_json::{Value, json};
use support::client::Client;
use support::etcd::Etcd;
use support::kapi::Kapi;
use support::users::{eventually, until_allowed};

const CTBS: &str = "/apis/certificates.k8s.io/v1beta1/clustertrustbundles";

fn ca_pem() -> String {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "test root");
    let key = rcgen::KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().pem()
}

fn ctb(name: &str, signer: Option<&str>, pem: &str) -> Value {
    let mut spec = json!({"trustBundle": pem});
    if let Some(s) = signer {
        spec["signerName"] = json!(s);
    }
    json!({"apiVersion": "certificates.k8s.io/v1beta1", "kind": "ClusterTrustBundle",
           "metadata": {"name": name}, "spec": spec})
}

fn versions(k: &Kapi) -> Vec<String> {
    k.ok(&["api-versions"]).lines().map(str::to_owned).collect()
}

/// The body of `curl` with `extra` arguments.
fn curl(k: &Kapi, extra: &[&str], path: &str) -> Vec<u8> {
    let out = k.curl(extra, path).output().expect("curl runs");
    assert!(out.status.success(), "curl {path}: {out:?}");
    out.stdout
}

/// The object etcd holds at `key` (protobuf with the `k8s\0` envelope), as JSON.
fn stored(etcd: &Etcd, key: &str) -> Value {
    let out = etcd.etcdctl(&["get", key, "--print-value-only"]);
    let mut v = out.stdout;
    v.pop(); // etcdctl's newline
    assert!(v.starts_with(b"k8s\0"), "{key}: {v:?}");
    let mut json = Vec::new();
    kapi_codec::to_json::envelope_to_json(&v, &mut json).unwrap();
    serde_json::from_slice(&json).unwrap()
}

#[test]
fn api_all_serves_beta_versions_and_converts_to_the_stored_version() {
    let etcd = Etcd::start();
    let servers = format!("--etcd-servers={}", etcd.endpoint);
    let k = Kapi::start(
        &[
            &servers,
            "--runtime-config=api/all=true,certificates.k8s.io/v1alpha1=false",
            "--feature-gates=ClusterTrustBundle=true",
            "--authorization-mode=Node,RBAC",
        ],
        &[],
    );
    let c = Client::new(&k);
    let ct = "application/json";

    // Discovery: the beta versions beside GA, GA still preferred; a version turned off by
    // its own key and the versions whose every resource is gated off are absent.
    let vs = versions(&k);
    for v in [
        "certificates.k8s.io/v1beta1",
        "networking.k8s.io/v1beta1",
        "resource.k8s.io/v1beta1",
        "resource.k8s.io/v1beta2",
        "storage.k8s.io/v1beta1",
        "coordination.k8s.io/v1beta1",
        "coordination.k8s.io/v1alpha2",
        "internal.apiserver.k8s.io/v1alpha1",
        "certificates.k8s.io/v1",
    ] {
        assert!(vs.contains(&v.to_string()), "no {v} in {vs:?}");
    }
    for v in [
        "certificates.k8s.io/v1alpha1",
        "scheduling.k8s.io/v1alpha2",
        "storagemigration.k8s.io/v1beta1",
    ] {
        assert!(!vs.contains(&v.to_string()), "{v} in {vs:?}");
    }
    let (code, group) = c.call("GET", "/apis/certificates.k8s.io", ct, None);
    assert_eq!(code, 200);
    assert_eq!(group["preferredVersion"]["version"], "v1", "{group}");
    assert_eq!(group["versions"][1]["version"], "v1beta1", "{group}");
    let (code, list) = c.call("GET", "/apis/certificates.k8s.io/v1beta1", ct, None);
    assert_eq!(code, 200);
    let names: Vec<&str> = list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["clustertrustbundles"],
        "PodCertificateRequest's gate is off"
    );
    let agg: Value = serde_json::from_slice(&curl(
        &k,
        &[
            "-H",
            "Accept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
        ],
        "/apis",
    ))
    .unwrap();
    let net = agg["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["metadata"]["name"] == "networking.k8s.io")
        .unwrap();
    assert_eq!(net["versions"][0]["version"], "v1");
    assert_eq!(net["versions"][1]["version"], "v1beta1");
    let out = k.ok(&["api-resources", "--api-group=certificates.k8s.io"]);
    assert!(out.contains("clustertrustbundles"), "{out}");
    // OpenAPI v3 has the served beta versions (kubectl explain reads it).
    let explained = k.ok(&["explain", "clustertrustbundles.spec.trustBundle"]);
    assert!(explained.contains("trustBundle"), "{explained}");
    assert!(explained.contains("certificates.k8s.io"), "{explained}");

    // A beta-only kind: created with kubectl, read as JSON, YAML, protobuf and Table, listed
    // and watched; stored as upstream's v1beta1 protobuf under /registry/clustertrustbundles/.
    let pem = ca_pem();
    let out = k.kubectl_stdin(
        &["create", "-f", "-"],
        &ctb("plain", None, &pem).to_string(),
    );
    assert!(out.status.success(), "{out:?}\n{}", k.log());
    let got: Value =
        serde_json::from_str(&k.ok(&["get", "clustertrustbundle", "plain", "-o", "json"])).unwrap();
    assert_eq!(got["apiVersion"], "certificates.k8s.io/v1beta1");
    assert_eq!(got["spec"]["trustBundle"], pem);
    let yaml = k.ok(&["get", "clustertrustbundle", "plain", "-o", "yaml"]);
    assert!(yaml.contains("kind: ClusterTrustBundle"), "{yaml}");
    assert!(yaml.contains("BEGIN CERTIFICATE"), "{yaml}");
    let pb = curl(
        &k,
        &["-H", "Accept: application/vnd.kubernetes.protobuf"],
        &format!("{CTBS}/plain"),
    );
    assert!(pb.starts_with(b"k8s\0"), "{pb:?}");
    let mut from_pb = Vec::new();
    kapi_codec::to_json::envelope_to_json(&pb, &mut from_pb).unwrap();
    let from_pb: Value = serde_json::from_slice(&from_pb).unwrap();
    let (_, direct) = c.call("GET", &format!("{CTBS}/plain"), ct, None);
    assert_eq!(from_pb, direct);
    let table = k.ok(&["get", "clustertrustbundles"]);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains("SIGNERNAME"), "{table}");
    assert!(table.contains("plain"), "{table}");
    let (code, list) = c.call("GET", CTBS, ct, None);
    assert_eq!(code, 200);
    assert_eq!(list["kind"], "ClusterTrustBundleList");
    assert_eq!(list["items"][0]["metadata"]["name"], "plain");
    let watch = String::from_utf8(curl(
        &k,
        &[],
        &format!("{CTBS}?watch=1&resourceVersion=0&timeoutSeconds=1"),
    ))
    .unwrap();
    let first: Value = serde_json::from_str(watch.lines().next().unwrap_or("{}")).unwrap();
    assert_eq!(first["type"], "ADDED", "{watch}");
    assert_eq!(first["object"]["kind"], "ClusterTrustBundle", "{watch}");
    assert_eq!(first["object"]["metadata"]["name"], "plain", "{watch}");
    // Stored as upstream: v1beta1 protobuf under /registry/clustertrustbundles/.
    let as_json = stored(&etcd, "/registry/clustertrustbundles/plain");
    assert_eq!(as_json["apiVersion"], "certificates.k8s.io/v1beta1");
    assert_eq!(as_json["spec"]["trustBundle"], pem);
    // ClusterTrustBundle validation: CA certificates only.
    let mut leaf = rcgen::CertificateParams::new(vec!["leaf.example".to_string()]).unwrap();
    leaf.is_ca = rcgen::IsCa::NoCa;
    let leaf_pem = leaf
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap()
        .pem();
    let (code, status) = c.call("POST", CTBS, ct, Some(ctb("leaf", None, &leaf_pem)));
    assert_eq!(code, 422, "{status}");
    assert_eq!(
        status["details"]["causes"][0]["message"],
        "Invalid value: \"<value omitted>\": entry 0 does not have the CA bit set"
    );

    // A GA kind through its beta version: one object, read back through GA.
    let ip = json!({"apiVersion": "networking.k8s.io/v1beta1", "kind": "IPAddress",
                    "metadata": {"name": "10.0.0.77"},
                    "spec": {"parentRef": {"group": "", "resource": "services",
                                           "namespace": "default", "name": "kubernetes"}}});
    let (code, made) = c.call(
        "POST",
        "/apis/networking.k8s.io/v1beta1/ipaddresses",
        ct,
        Some(ip),
    );
    assert_eq!(code, 201, "{made}");
    assert_eq!(made["apiVersion"], "networking.k8s.io/v1beta1");
    let ga: Value = serde_json::from_str(&k.ok(&[
        "get",
        "ipaddresses.v1.networking.k8s.io",
        "10.0.0.77",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(ga["apiVersion"], "networking.k8s.io/v1");
    assert_eq!(ga["metadata"]["uid"], made["metadata"]["uid"]);
    assert_eq!(ga["spec"], made["spec"]);
    // Stored once, in the GA storage version.
    let ip_json = stored(&etcd, "/registry/ipaddresses/10.0.0.77");
    assert_eq!(ip_json["apiVersion"], "networking.k8s.io/v1");
    // Changed through GA, seen through beta.
    k.ok(&[
        "label",
        "ipaddresses.v1.networking.k8s.io",
        "10.0.0.77",
        "via=ga",
    ]);
    let (_, beta) = c.call(
        "GET",
        "/apis/networking.k8s.io/v1beta1/ipaddresses/10.0.0.77",
        ct,
        None,
    );
    assert_eq!(beta["metadata"]["labels"]["via"], "ga", "{beta}");
    let (_, beta_list) = c.call(
        "GET",
        "/apis/networking.k8s.io/v1beta1/ipaddresses",
        ct,
        None,
    );
    assert!(
        beta_list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["metadata"]["name"] == "10.0.0.77"),
        "{beta_list}"
    );

    // resource.k8s.io v1beta1 differs from v1: a request's fields sit under `exactly` in v1.
    let claim = json!({"apiVersion": "resource.k8s.io/v1beta1", "kind": "ResourceClaim",
        "metadata": {"name": "gpu", "namespace": "default"},
        "spec": {"devices": {"requests": [{"name": "gpu", "deviceClassName": "gpu.example.com",
                                            "allocationMode": "ExactCount", "count": 2}]}}});
    let claims = "/apis/resource.k8s.io/v1beta1/namespaces/default/resourceclaims";
    let (code, made) = c.call("POST", claims, ct, Some(claim));
    assert_eq!(code, 201, "{made}");
    assert_eq!(made["spec"]["devices"]["requests"][0]["count"], 2, "{made}");
    let (_, v1) = c.call(
        "GET",
        "/apis/resource.k8s.io/v1/namespaces/default/resourceclaims/gpu",
        ct,
        None,
    );
    assert_eq!(
        v1["spec"]["devices"]["requests"][0],
        json!({"name": "gpu", "exactly": {"deviceClassName": "gpu.example.com",
                                          "allocationMode": "ExactCount", "count": 2}}),
        "{v1}"
    );
    let claim_json = stored(&etcd, "/registry/resourceclaims/default/gpu");
    assert_eq!(claim_json["apiVersion"], "resource.k8s.io/v1");
    assert_eq!(
        claim_json["spec"]["devices"]["requests"][0]["exactly"]["count"],
        2
    );
    // Validated on the v1 form, with upstream's field path.
    let bare = json!({"apiVersion": "resource.k8s.io/v1beta1", "kind": "ResourceClaim",
        "metadata": {"name": "bare", "namespace": "default"},
        "spec": {"devices": {"requests": [{"name": "gpu"}]}}});
    let (code, status) = c.call("POST", claims, ct, Some(bare));
    assert_eq!(code, 422, "{status}");
    assert_eq!(
        status["details"]["causes"][0]["field"], "spec.devices.requests[0].exactly.deviceClassName",
        "{status}"
    );

    // A namespaced beta-only kind (its list across namespaces does not make it cluster-wide).
    let lc = json!({"apiVersion": "coordination.k8s.io/v1beta1", "kind": "LeaseCandidate",
        "metadata": {"name": "lc1", "namespace": "default"},
        "spec": {"leaseName": "l", "binaryVersion": "1.36.0", "emulationVersion": "1.36.0",
                 "strategy": "OldestEmulationVersion"}});
    let out = k.kubectl_stdin(&["apply", "--server-side", "-f", "-"], &lc.to_string());
    assert!(out.status.success(), "{out:?}");
    let table = k.ok(&["get", "leasecandidates", "-n", "default"]);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains("LEASENAME"), "{table}");
    assert!(table.contains("1.36.0"), "{table}");
    assert_eq!(
        stored(&etcd, "/registry/leasecandidates/default/lc1")["apiVersion"],
        "coordination.k8s.io/v1beta1"
    );

    // ClusterTrustBundleAttest: bob may write bundles, but one naming a signer needs `attest`
    // on it.
    let rbac = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: bundle-writer}
rules:
- apiGroups: [certificates.k8s.io]
  resources: [clustertrustbundles]
  verbs: [create, get, list, update]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: bundle-writer}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: bundle-writer}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}]
"#;
    let out = k.kubectl_stdin(&["apply", "-f", "-"], rbac);
    assert!(out.status.success(), "{out:?}");
    until_allowed(&k, &["create", "clustertrustbundles", "--as", "bob"]);
    let signed = ctb("example.com:signer:one", Some("example.com/signer"), &pem).to_string();
    let out = k.kubectl_stdin(&["create", "-f", "-", "--as", "bob"], &signed);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "clustertrustbundles.certificates.k8s.io \"example.com:signer:one\" is forbidden: user not permitted to attest for signerName \"example.com/signer\""
        ),
        "{out:?}"
    );
    // A bundle without a signer needs no attest.
    let out = k.kubectl_stdin(
        &["create", "-f", "-", "--as", "bob"],
        &ctb("bobs", None, &pem).to_string(),
    );
    assert!(out.status.success(), "{out:?}");
    let grant = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: example-attester}
rules:
- apiGroups: [certificates.k8s.io]
  resources: [signers]
  resourceNames: [example.com/*]
  verbs: [attest]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: example-attester}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: example-attester}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}]
"#;
    let out = k.kubectl_stdin(&["apply", "-f", "-"], grant);
    assert!(out.status.success(), "{out:?}");
    eventually("bob attests once the grant is in force", || {
        k.kubectl_stdin(&["create", "-f", "-", "--as", "bob"], &signed)
            .status
            .success()
    });
}

#[test]
fn beta_off_alpha_gates_and_the_defaults() {
    // api/all with every beta version turned off; alpha gates on.
    let k = Kapi::start(
        &[
            "--runtime-config=api/all=true,api/beta=false",
            "--feature-gates=AllAlpha=true",
        ],
        &[],
    );
    let vs = versions(&k);
    assert!(!vs.iter().any(|v| v.contains("beta")), "{vs:?}");
    for v in [
        "scheduling.k8s.io/v1alpha2",
        "resource.k8s.io/v1alpha3",
        "internal.apiserver.k8s.io/v1alpha1",
        "apps/v1",
    ] {
        assert!(vs.contains(&v.to_string()), "no {v} in {vs:?}");
    }
    // AllAlpha does not turn on beta gates: v1alpha1's only resource is ClusterTrustBundle,
    // whose gate is beta.
    assert!(
        !vs.contains(&"certificates.k8s.io/v1alpha1".to_string()),
        "{vs:?}"
    );
    let c = Client::new(&k);
    let (code, _) = c.call(
        "GET",
        "/apis/scheduling.k8s.io/v1alpha2/namespaces/default/workloads",
        "application/json",
        None,
    );
    assert_eq!(code, 200);
    // OpenAPI v3 lists the served group-versions only.
    let (code, index) = c.call("GET", "/openapi/v3", "application/json", None);
    assert_eq!(code, 200);
    let paths = index["paths"].as_object().unwrap();
    assert!(
        paths.contains_key("apis/scheduling.k8s.io/v1alpha2"),
        "{index}"
    );
    assert!(paths.contains_key("apis/apps/v1"), "{index}");
    assert!(!paths.keys().any(|p| p.contains("beta")), "{index}");
    let (code, _) = c.call(
        "GET",
        "/apis/networking.k8s.io/v1beta1/ipaddresses",
        "application/json",
        None,
    );
    assert_eq!(code, 404);
    drop(k);

    // The defaults: GA only.
    let k = Kapi::start(&[], &[]);
    let vs = versions(&k);
    assert!(
        !vs.iter().any(|v| v.contains("beta") || v.contains("alpha")),
        "{vs:?}"
    );
    // The captured discovery documents, byte for byte (curl's own User-Agent would get them
    // pretty-printed, as upstream does).
    let apis = String::from_utf8(curl(&k, &["-A", "kapi-test/1.0"], "/apis")).unwrap();
    let captured = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/api/data/discovery/apis.json"
    ))
    .unwrap();
    assert!(apis == captured, "{apis}");
}
