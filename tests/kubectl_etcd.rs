//! kapi on a real etcd (Debian's etcd-server on free loopback ports): the kubectl workflow,
//! upstream's key layout and value encoding in etcd, objects an upstream apiserver wrote,
//! and an etcd restart under a running kapi.

mod support;

use std::time::Duration;

use support::etcd::Etcd;
use support::kapi::Kapi;
use support::workflow::kubectl_workflow;

fn kapi_on(etcd: &Etcd) -> Kapi {
    Kapi::start(&["--etcd-servers", &etcd.endpoint], &[])
}

#[test]
fn kubectl_workflow_on_etcd() {
    let etcd = Etcd::start();
    let k = kapi_on(&etcd);
    kubectl_workflow(&k);
}

#[test]
fn objects_are_stored_with_upstreams_keys_and_protobuf_values() {
    let etcd = Etcd::start();
    let k = kapi_on(&etcd);
    k.ok(&["run", "nginx", "--image=nginx"]);
    k.ok(&["create", "configmap", "cfg", "--from-literal=a=b"]);
    // etcd holds the pod at upstream's key, as protobuf with the k8s\0 envelope and no
    // resourceVersion, which kapi decode reads back.
    let out = etcd.etcdctl(&["get", "/registry/pods/default/nginx", "--print-value-only"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stdout
            .starts_with(b"k8s\0\x0a\x09\x0a\x02v1\x12\x03Pod"),
        "{:?}",
        &out.stdout[..16.min(out.stdout.len())]
    );
    let decoded = std::process::Command::new(env!("CARGO_BIN_EXE_kapi"))
        .args(["decode", "--to", "json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(&out.stdout)?;
            c.wait_with_output()
        })
        .unwrap();
    let pod: serde_json::Value = serde_json::from_slice(&decoded.stdout).unwrap();
    assert_eq!(pod["metadata"]["name"], "nginx");
    assert!(pod["metadata"].get("resourceVersion").is_none());
    let keys = String::from_utf8(
        etcd.etcdctl(&["get", "/registry/", "--prefix", "--keys-only"])
            .stdout,
    )
    .unwrap();
    for key in [
        "/registry/configmaps/default/cfg",
        "/registry/namespaces/kube-system",
        "/registry/pods/default/nginx",
    ] {
        assert!(keys.contains(key), "{key} missing from {keys}");
    }
}

#[test]
fn kapi_serves_what_an_upstream_apiserver_wrote() {
    let etcd = Etcd::start();
    let k = kapi_on(&etcd);
    // The exact value a v1.36 kube-apiserver stored for default/nginx, written behind kapi's back.
    let value = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/codec/testdata/objects/pod.etcd.bin"
    ))
    .unwrap();
    let put = std::process::Command::new("etcdctl")
        .args([
            "--endpoints",
            &etcd.endpoint,
            "put",
            "/registry/pods/default/nginx",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(&value)?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(put.status.success(), "{put:?}");
    // The cache picks it up from its watch; a consistent read waits for it.
    let mut uid = String::new();
    for _ in 0..50 {
        let out = k.kubectl(&["get", "pod", "nginx", "-o", "jsonpath={.metadata.uid}"]);
        if out.status.success() {
            uid = String::from_utf8_lossy(&out.stdout).into_owned();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(uid, "98f1fad6-5326-4c67-85cd-89d76a59747a");
    let yaml = k.ok(&["get", "pod", "nginx", "-o", "yaml"]);
    assert!(
        yaml.contains("kube-api-access-h9zjp") && yaml.contains("schedulerName: default-scheduler"),
        "{yaml}"
    );
}

#[test]
fn kubectl_workflow_on_etcd_survives_an_etcd_restart() {
    let mut etcd = Etcd::start();
    let k = kapi_on(&etcd);
    k.ok(&["create", "namespace", "demo"]);
    k.ok(&[
        "create",
        "configmap",
        "before",
        "-n",
        "demo",
        "--from-literal=a=1",
    ]);
    k.ok(&["label", "configmap", "before", "-n", "demo", "x=y"]);
    etcd.kill();
    etcd.start_again();
    // Writes work again once etcd is back; reads see everything written before and after.
    let mut created = false;
    for _ in 0..100 {
        if k.kubectl(&["create", "configmap", "after", "-n", "demo"])
            .status
            .success()
        {
            created = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        created,
        "kapi did not recover from the etcd restart: {}",
        k.log()
    );
    let names = k.ok(&["get", "configmaps", "-n", "demo", "-o", "name"]);
    assert!(
        names.contains("configmap/before") && names.contains("configmap/after"),
        "{names}"
    );
    assert_eq!(
        k.ok(&[
            "get",
            "cm",
            "before",
            "-n",
            "demo",
            "-o",
            "jsonpath={.metadata.labels.x}"
        ]),
        "y"
    );
    // The namespace goes as upstream's does: Terminating, until the namespace controller (the
    // test's stand-in here) has deleted its contents from etcd and finalized it.
    k.ok(&["delete", "namespace", "demo", "--wait=false"]);
    let c = support::client::Client::new(&k);
    support::namespaces::finalize(&c, "demo");
    let gone = k.kubectl(&["get", "namespace", "demo"]);
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("not found"),
        "{gone:?}"
    );
}
