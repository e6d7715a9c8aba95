//! The objects kapi creates at start as upstream's apiserver does, checked with kubectl:
//! the `kubernetes` Service and its addresses, APIServices, PriorityClasses, the
//! authentication ConfigMaps, the identity Lease (renewed), and that a restart keeps them;
//! the lease endpoint reconciler listing every live apiserver of one etcd.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::kapi::Kapi;
use support::openssl::make_ca;

fn get(k: &Kapi, args: &[&str]) -> Value {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    serde_json::from_str(&k.ok(&all)).expect("kubectl prints JSON")
}

#[test]
fn start_up_objects_are_made_and_kept() {
    let files = tempfile::tempdir().unwrap();
    make_ca(files.path(), "front-proxy-ca");
    let proxy_ca = files.path().join("front-proxy-ca.crt");
    let proxy_ca_arg = proxy_ca.display().to_string();
    let mut k = Kapi::start(
        &[
            "--service-cluster-ip-range=10.32.0.0/24",
            "--requestheader-client-ca-file",
            &proxy_ca_arg,
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            "--requestheader-allowed-names=front-proxy-client",
        ],
        &[],
    );
    let port = i64::from(k.port);

    // The kubernetes Service: the range's first address, 443 → the secure port.
    let svc = get(&k, &["-n", "default", "service", "kubernetes"]);
    assert_eq!(svc["spec"]["clusterIP"], "10.32.0.1");
    assert_eq!(svc["spec"]["ports"][0]["port"], 443);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], port);
    assert_eq!(svc["metadata"]["labels"]["provider"], "kubernetes");
    let ep = get(&k, &["-n", "default", "endpoints", "kubernetes"]);
    assert_eq!(ep["subsets"][0]["addresses"][0]["ip"], "127.0.0.1");
    assert_eq!(ep["subsets"][0]["ports"][0]["port"], port);
    let slice = get(&k, &["-n", "default", "endpointslices", "kubernetes"]);
    assert_eq!(slice["endpoints"][0]["addresses"][0], "127.0.0.1");
    assert_eq!(
        slice["metadata"]["labels"]["kubernetes.io/service-name"],
        "kubernetes"
    );
    let cidr = get(&k, &["servicecidr", "kubernetes"]);
    assert_eq!(cidr["spec"]["cidrs"][0], "10.32.0.0/24");
    assert_eq!(cidr["status"]["conditions"][0]["type"], "Ready");
    let ip = get(&k, &["ipaddress", "10.32.0.1"]);
    assert_eq!(ip["spec"]["parentRef"]["name"], "kubernetes");

    // An APIService per served group-version, each Local and Available.
    let apiservices = get(&k, &["apiservices"]);
    let items = apiservices["items"].as_array().unwrap();
    assert_eq!(items.len(), 21, "{apiservices}");
    for a in items {
        assert_eq!(a["status"]["conditions"][0]["reason"], "Local", "{a}");
    }
    let apps = get(&k, &["apiservice", "v1.apps"]);
    assert_eq!(apps["spec"]["groupPriorityMinimum"], 17800);
    assert_eq!(apps["spec"]["versionPriority"], 15);
    get(&k, &["apiservice", "v1."]);

    let pc = get(&k, &["priorityclass", "system-node-critical"]);
    assert_eq!(pc["value"], 2_000_001_000);
    let pc = get(&k, &["priorityclass", "system-cluster-critical"]);
    assert_eq!(pc["value"], 2_000_000_000);

    // The authentication ConfigMap publishes the client CA and the front-proxy settings.
    let cm = get(
        &k,
        &[
            "-n",
            "kube-system",
            "configmap",
            "extension-apiserver-authentication",
        ],
    );
    let data = &cm["data"];
    let kapi_ca = std::fs::read_to_string(k.data_dir.join("ca.crt")).unwrap();
    let pem_body =
        |pem: &str| -> String { pem.lines().filter(|l| !l.starts_with("-----")).collect() };
    assert_eq!(
        pem_body(data["client-ca-file"].as_str().unwrap()),
        pem_body(&kapi_ca)
    );
    assert_eq!(
        pem_body(data["requestheader-client-ca-file"].as_str().unwrap()),
        pem_body(&std::fs::read_to_string(&proxy_ca).unwrap())
    );
    assert_eq!(
        data["requestheader-username-headers"],
        "[\"X-Remote-User\"]"
    );
    assert_eq!(
        data["requestheader-allowed-names"],
        "[\"front-proxy-client\"]"
    );
    assert_eq!(data["requestheader-uid-headers"], "[]");
    let tracking = get(
        &k,
        &[
            "-n",
            "kube-system",
            "configmap",
            "kube-apiserver-legacy-service-account-token-tracking",
        ],
    );
    assert_eq!(tracking["data"]["since"].as_str().unwrap().len(), 10);

    // The identity Lease, renewed.
    let leases = get(
        &k,
        &[
            "-n",
            "kube-system",
            "leases",
            "-l",
            "apiserver.kubernetes.io/identity=kube-apiserver",
        ],
    );
    let lease = &leases["items"][0];
    let name = lease["metadata"]["name"].as_str().unwrap().to_string();
    assert!(name.starts_with("apiserver-"), "{name}");
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 3600);
    let first_renew = lease["spec"]["renewTime"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let l = get(&k, &["-n", "kube-system", "lease", &name]);
        if l["spec"]["renewTime"].as_str() != Some(&first_renew) {
            break;
        }
        assert!(Instant::now() < deadline, "the lease was not renewed: {l}");
        std::thread::sleep(Duration::from_secs(1));
    }

    // A restart keeps every object (one of each, unchanged where nothing changed).
    let cm_rv = cm["metadata"]["resourceVersion"].clone();
    k.kill_and_restart();
    let cm = get(
        &k,
        &[
            "-n",
            "kube-system",
            "configmap",
            "extension-apiserver-authentication",
        ],
    );
    assert_eq!(cm["metadata"]["resourceVersion"], cm_rv);
    assert_eq!(
        get(&k, &["apiservices"])["items"].as_array().unwrap().len(),
        21
    );
    let leases = get(&k, &["-n", "kube-system", "leases"]);
    assert_eq!(
        leases["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["metadata"]["name"] == name.as_str())
            .count(),
        1
    );
}

/// The addresses the `kubernetes` Endpoints and EndpointSlice list, as kubectl shows them.
fn kubernetes_addresses(k: &Kapi) -> (Vec<String>, Vec<String>) {
    let ep = get(k, &["-n", "default", "endpoints", "kubernetes"]);
    let slice = get(k, &["-n", "default", "endpointslices", "kubernetes"]);
    let strings = |v: &Value, key: &str| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                let a = if key.is_empty() { a } else { &a[key] };
                a.as_str().unwrap_or("").to_owned()
            })
            .collect()
    };
    let endpoints = strings(&ep["subsets"][0]["addresses"], "ip");
    let slice_ips: Vec<String> = slice["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| strings(&e["addresses"], ""))
        .collect();
    (endpoints, slice_ips)
}

#[test]
fn the_lease_reconciler_lists_every_live_apiserver_of_one_etcd() {
    let etcd = support::etcd::Etcd::start();
    let first = Kapi::start(
        &[
            "--etcd-servers",
            &etcd.endpoint,
            "--advertise-address=127.0.0.1",
        ],
        &[],
    );
    let mut second = Kapi::start(
        &[
            "--etcd-servers",
            &etcd.endpoint,
            "--advertise-address=127.0.0.2",
        ],
        &[],
    );
    // The second apiserver reconciled at its start: both addresses, in order, in both objects.
    let both = vec!["127.0.0.1".to_string(), "127.0.0.2".to_string()];
    assert_eq!(kubernetes_addresses(&first), (both.clone(), both.clone()));

    // Upstream's keys: /registry/masterleases/<ip>, an Endpoints value on an etcd lease.
    for ip in ["127.0.0.1", "127.0.0.2"] {
        let key = format!("/registry/masterleases/{ip}");
        let out = etcd.etcdctl(&["get", &key, "--write-out=json"]);
        let got: Value = serde_json::from_slice(&out.stdout).expect("etcdctl's JSON");
        let kv = &got["kvs"][0];
        assert!(
            kv["lease"].as_i64().unwrap_or(0) != 0,
            "{key} has a lease: {got}"
        );
        let out = etcd.etcdctl(&["get", &key, "--print-value-only"]);
        assert!(out.stdout.starts_with(b"k8s\0"), "{key}: {:?}", out.stdout);
        assert!(
            out.stdout.windows(ip.len()).any(|w| w == ip.as_bytes()),
            "{key} holds its address"
        );
    }

    // A graceful stop removes the leaving apiserver's lease and address at once.
    second.signal("TERM");
    assert!(
        second.wait_exit(Duration::from_secs(60)).is_some(),
        "kapi exits"
    );
    let out = etcd.etcdctl(&["get", "/registry/masterleases/", "--prefix", "--keys-only"]);
    let keys = String::from_utf8_lossy(&out.stdout);
    assert_eq!(keys.trim(), "/registry/masterleases/127.0.0.1");
    let one = vec!["127.0.0.1".to_string()];
    assert_eq!(kubernetes_addresses(&first), (one.clone(), one));
}
