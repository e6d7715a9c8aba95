//! kubectl against the real kapi binary: the workflow a person follows with a cluster, on
//! the embedded store, once more on the epoll driver, and across a `kill -9`.

mod support;

use support::kapi::Kapi;
use support::workflow::kubectl_workflow;

#[test]
fn kubectl_workflow_on_the_embedded_store() {
    let k = Kapi::start(&[], &[]);
    kubectl_workflow(&k);
}

#[test]
fn kubectl_workflow_on_the_epoll_driver() {
    let k = Kapi::start(&[], &[("MONOIO_FORCE_LEGACY_DRIVER", "1")]);
    kubectl_workflow(&k);
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let mut k = Kapi::start(&[], &[]);
    for i in 0..20 {
        k.ok(&[
            "create",
            "configmap",
            &format!("cm-{i}"),
            &format!("--from-literal=i={i}"),
        ]);
    }
    k.kill_and_restart();
    let names = k.ok(&["get", "configmaps", "-o", "name"]);
    for i in 0..20 {
        assert!(
            names.contains(&format!("configmap/cm-{i}\n")),
            "cm-{i} lost: {names}"
        );
    }
    assert_eq!(
        k.ok(&["get", "cm", "cm-7", "-o", "jsonpath={.data.i}"]),
        "7"
    );
}

#[test]
fn errors_are_upstreams_status_objects() {
    let k = Kapi::start(&[], &[]);
    let raw = k.kubectl(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/pods/does-not-exist",
    ]);
    let err = String::from_utf8_lossy(&raw.stderr);
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );
    k.ok(&["create", "configmap", "cfg"]);
    let dup = k.kubectl(&["create", "configmap", "cfg"]);
    assert!(
        String::from_utf8_lossy(&dup.stderr).contains("configmaps \"cfg\" already exists"),
        "{dup:?}"
    );
    let bad = k.kubectl(&["create", "configmap", "Bad_Name"]);
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("is invalid"),
        "{bad:?}"
    );
}
