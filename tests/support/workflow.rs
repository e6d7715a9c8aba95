//! The kubectl workflow a person follows with a cluster, shared by the end-to-end tests on
//! the embedded store, the epoll driver and a real etcd.

use std::process::{Command, Stdio};
use std::time::Duration;

use super::kapi::Kapi;

const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
      - name: sidecar
        image: busybox:1.36
"#;

/// The whole kubectl workflow; every step asserts what it changed.
pub fn kubectl_workflow(k: &Kapi) {
    // version, discovery
    let v = k.ok(&["version", "-o", "json"]);
    assert!(v.contains("\"gitVersion\": \"v1.36.2\""), "{v}");
    let resources = k.ok(&["api-resources"]);
    assert!(
        resources.contains("deployments") && resources.contains("configmaps"),
        "{resources}"
    );
    assert!(k.ok(&["api-versions"]).contains("apps/v1"));
    // system namespaces exist from the start
    let ns = k.ok(&["get", "ns", "-o", "name"]);
    for n in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(ns.contains(&format!("namespace/{n}")), "{ns}");
    }
    k.ok(&["create", "namespace", "demo"]);
    // What the controller-manager would do: pods need the namespace's default account.
    k.default_service_account("demo");

    // apply twice: the second is a strategic merge patch that changes one container
    let out = k.kubectl_stdin(&["apply", "-n", "demo", "-f", "-"], DEPLOYMENT);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let changed = DEPLOYMENT.replace("nginx:1.25", "nginx:1.26");
    let out = k.kubectl_stdin(&["apply", "-n", "demo", "-f", "-"], &changed);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("configured"),
        "{out:?}"
    );
    let images = k.ok(&[
        "get",
        "deploy",
        "web",
        "-n",
        "demo",
        "-o",
        "jsonpath={.spec.template.spec.containers[*].image} {.metadata.generation}",
    ]);
    assert_eq!(images, "nginx:1.26 busybox:1.36 2");

    // get in every output form
    let yaml = k.ok(&["get", "deploy", "web", "-n", "demo", "-o", "yaml"]);
    assert!(
        yaml.contains("kind: Deployment") && yaml.contains("resourceVersion:"),
        "{yaml}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&k.ok(&["get", "deploy", "web", "-n", "demo", "-o", "json"])).unwrap();
    assert_eq!(json["spec"]["replicas"], 2);
    let wide = k.ok(&["get", "deploy", "-n", "demo", "-o", "wide"]);
    assert!(
        wide.contains("CONTAINERS") && wide.contains("nginx,sidecar") && wide.contains("app=web"),
        "{wide}"
    );

    // label, annotate, scale, patch
    k.ok(&["label", "deploy", "web", "-n", "demo", "tier=front"]);
    k.ok(&["annotate", "deploy", "web", "-n", "demo", "note=hello"]);
    k.ok(&["scale", "deploy", "web", "-n", "demo", "--replicas=5"]);
    k.ok(&[
        "patch",
        "deploy",
        "web",
        "-n",
        "demo",
        "--type=merge",
        "-p",
        r#"{"spec":{"minReadySeconds":7}}"#,
    ]);
    k.ok(&[
        "patch",
        "deploy",
        "web",
        "-n",
        "demo",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/metadata/labels/extra","value":"yes"}]"#,
    ]);
    let got = k.ok(&["get", "deploy", "web", "-n", "demo", "-o", "jsonpath={.metadata.labels.tier} {.metadata.labels.extra} {.metadata.annotations.note} {.spec.replicas} {.spec.minReadySeconds}"]);
    assert_eq!(got, "front yes hello 5 7");
    assert!(
        k.ok(&[
            "get",
            "deploy",
            "-n",
            "demo",
            "-l",
            "tier=front",
            "-o",
            "name"
        ])
        .contains("deployment.apps/web")
    );
    assert!(
        k.ok(&[
            "get",
            "deploy",
            "-n",
            "demo",
            "-l",
            "tier=back",
            "-o",
            "name"
        ])
        .trim()
        .is_empty()
    );

    // describe and explain
    let d = k.ok(&["describe", "deploy", "web", "-n", "demo"]);
    assert!(
        d.contains("Name:") && d.contains("web") && d.contains("nginx:1.26"),
        "{d}"
    );
    let e = k.ok(&["explain", "deployment.spec.replicas"]);
    assert!(e.contains("replicas") && e.contains("integer"), "{e}");

    // a stale resourceVersion is refused with upstream's conflict
    let rv = k.ok(&[
        "get",
        "deploy",
        "web",
        "-n",
        "demo",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    k.ok(&["annotate", "deploy", "web", "-n", "demo", "bump=1"]);
    let stale = k.kubectl(&[
        "annotate",
        "deploy",
        "web",
        "-n",
        "demo",
        "again=1",
        "--resource-version",
        &rv,
    ]);
    assert!(!stale.status.success());
    assert!(
        String::from_utf8_lossy(&stale.stderr).contains("the object has been modified"),
        "{stale:?}"
    );

    // writes into a missing namespace are refused
    let missing = k.kubectl(&["create", "configmap", "x", "-n", "nope"]);
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("namespaces \"nope\" not found"),
        "{missing:?}"
    );

    // get -w sees a create and a delete. The watch is known to be running once it has printed
    // an object that existed before it started; the test waits for that, not for a fixed time.
    k.ok(&["create", "configmap", "first", "-n", "demo"]);
    let mut watch = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(k.kubeconfig())
        .args([
            "get",
            "configmaps",
            "-n",
            "demo",
            "-w",
            "--output-watch-events",
            "--request-timeout=60s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl watch");
    let lines = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let lines = lines.clone();
        let mut stdout = watch.stdout.take().expect("watch stdout");
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                lines
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    let wait_for = |what: &dyn Fn(&str) -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !what(&lines.lock().unwrap()) {
            assert!(
                std::time::Instant::now() < deadline,
                "watch output: {}",
                lines.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for(&|out| out.contains("first"));
    k.ok(&[
        "create",
        "configmap",
        "watched",
        "-n",
        "demo",
        "--from-literal=a=b",
    ]);
    k.ok(&["delete", "configmap", "watched", "-n", "demo"]);
    wait_for(&|out| {
        out.lines()
            .any(|l| l.starts_with("DELETED") && l.contains("watched"))
    });
    let _ = watch.kill();
    let _ = watch.wait();
    let _ = reader.join();
    let seen = lines.lock().unwrap().clone();
    assert!(
        seen.lines()
            .any(|l| l.starts_with("ADDED") && l.contains("watched"))
            && seen
                .lines()
                .any(|l| l.starts_with("DELETED") && l.contains("watched")),
        "{seen}"
    );

    // pods: table columns, delete
    k.ok(&["run", "nginx", "-n", "demo", "--image=nginx"]);
    let pods = k.ok(&["get", "pods", "-n", "demo", "-o", "wide"]);
    assert!(
        pods.contains("READY") && pods.contains("Pending") && pods.contains("NODE"),
        "{pods}"
    );
    k.ok(&["delete", "pod", "nginx", "-n", "demo"]);
    k.ok(&["delete", "deploy", "web", "-n", "demo"]);
    let gone = k.kubectl(&["get", "deploy", "web", "-n", "demo"]);
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("not found"),
        "{gone:?}"
    );
}
