//! PodSecurity admission against the real binary, driven with kubectl as a user would: a
//! namespace's `pod-security.kubernetes.io/*` labels enforce (403), warn (kubectl's
//! `Warning:` lines) and are validated (422); raising the enforce level warns about the pods
//! already there; `--admission-control-config-file` sets the defaults and exemptions.

mod support;

use std::process::Output;

use support::kapi::Kapi;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A pod that meets the restricted standard.
const HARDENED: &str = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"hardened"},
  "spec":{"securityContext":{"runAsNonRoot":true,"seccompProfile":{"type":"RuntimeDefault"}},
    "containers":[{"name":"app","image":"nginx","securityContext":{
      "allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}}}]}}"#;

/// A pod in the host's network namespace.
const HOST_NETWORK: &str = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"hostnet"},
  "spec":{"hostNetwork":true,"containers":[{"name":"c","image":"busybox"}]}}"#;

#[test]
fn namespace_labels_enforce_warn_and_are_validated() {
    let k = Kapi::start(&[], &[]);

    // An invalid level is refused with upstream's 422.
    let out = k.kubectl_stdin(
        &["create", "-f", "-"],
        r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"bad",
            "labels":{"pod-security.kubernetes.io/enforce":"bogus"}}}"#,
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "Namespace \"bad\" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: \
             Invalid value: \"bogus\": must be one of privileged, baseline, restricted"
        ),
        "{}",
        stderr(&out)
    );

    // No labels: everything goes (privileged by default).
    k.ok(&["create", "namespace", "psa"]);
    k.default_service_account("psa");
    k.ok(&["run", "root", "--image=nginx", "-n", "psa"]);

    // Enforcing restricted warns about the pod already there, and is done.
    let out = k.kubectl(&[
        "label",
        "namespace",
        "psa",
        "pod-security.kubernetes.io/enforce=restricted",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "Warning: existing pods in namespace \"psa\" violate the new PodSecurity enforce level \"restricted:latest\""
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "Warning: root: allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, seccompProfile"
        ),
        "{err}"
    );

    // A new plain pod is refused, with every rule it breaks.
    let out = k.kubectl(&["run", "p2", "--image=nginx", "-n", "psa"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "pods \"p2\" is forbidden: violates PodSecurity \"restricted:latest\": \
             allowPrivilegeEscalation != false (container \"p2\" must set securityContext.allowPrivilegeEscalation=false), \
             unrestricted capabilities (container \"p2\" must set securityContext.capabilities.drop=[\"ALL\"]), \
             runAsNonRoot != true (pod or container \"p2\" must set securityContext.runAsNonRoot=true), \
             seccompProfile (pod or container \"p2\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
        ),
        "{}",
        stderr(&out)
    );
    // The old pod's metadata may still change (not a significant update).
    k.ok(&["label", "pod", "root", "-n", "psa", "tier=old"]);

    // A hardened pod passes, without warnings.
    let out = k.kubectl_stdin(&["create", "-n", "psa", "-f", "-"], HARDENED);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("Warning"), "{}", stderr(&out));

    // Workloads are admitted with the warn level's warning (enforce alone also warns).
    let out = k.kubectl(&["create", "deployment", "web", "--image=nginx", "-n", "psa"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "Warning: would violate PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false \
             (container \"nginx\" must set securityContext.allowPrivilegeEscalation=false)"
        ),
        "{}",
        stderr(&out)
    );

    // Warn at baseline, enforce nothing: a host-network pod is admitted with a warning.
    k.ok(&["create", "namespace", "soft"]);
    k.default_service_account("soft");
    k.ok(&[
        "label",
        "namespace",
        "soft",
        "pod-security.kubernetes.io/warn=baseline",
        "pod-security.kubernetes.io/warn-version=v1.30",
    ]);
    let out = k.kubectl_stdin(&["create", "-n", "soft", "-f", "-"], HOST_NETWORK);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "Warning: would violate PodSecurity \"baseline:v1.30\": host namespaces (hostNetwork=true)"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_admission_configuration_sets_defaults_and_exemptions() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("admission.yaml");
    std::fs::write(
        &file,
        "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n\
         - name: PodSecurity\n  configuration:\n    apiVersion: pod-security.admission.config.k8s.io/v1\n\
         \x20   kind: PodSecurityConfiguration\n    defaults:\n      enforce: baseline\n\
         \x20   exemptions:\n      namespaces: [exempt]\n",
    )
    .unwrap();
    let flag = format!("--admission-control-config-file={}", file.display());
    let k = Kapi::start(&[&flag], &[]);
    for ns in ["plain", "exempt"] {
        k.ok(&["create", "namespace", ns]);
        k.default_service_account(ns);
    }
    // The default enforce level applies to a namespace without labels.
    let out = k.kubectl_stdin(&["create", "-n", "plain", "-f", "-"], HOST_NETWORK);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "pods \"hostnet\" is forbidden: violates PodSecurity \"baseline:latest\": host namespaces (hostNetwork=true)"
        ),
        "{}",
        stderr(&out)
    );
    // An exempt namespace is not checked, and says so when labelled.
    let out = k.kubectl_stdin(&["create", "-n", "exempt", "-f", "-"], HOST_NETWORK);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = k.kubectl(&[
        "label",
        "namespace",
        "exempt",
        "pod-security.kubernetes.io/enforce=restricted",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "Warning: namespace \"exempt\" is exempt from Pod Security, and the policy (enforce=restricted:latest) will be ignored"
        ),
        "{}",
        stderr(&out)
    );

    // A configuration upstream refuses stops the start.
    std::fs::write(
        &file,
        "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n\
         - name: PodSecurity\n  configuration:\n    apiVersion: pod-security.admission.config.k8s.io/v1\n\
         \x20   kind: PodSecurityConfiguration\n    defaults:\n      enforce: strict\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kapi"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--secure-port")
        .arg(support::kapi::free_port().to_string())
        .arg(&flag)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("defaults.enforce: Invalid value: \"strict\""),
        "{}",
        stderr(&out)
    );
}

/// The audit log's events for pod creates, once `count` are written.
fn pod_create_events(log: &std::path::Path, count: usize) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let found: Vec<serde_json::Value> = std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .filter(|e: &serde_json::Value| {
                e["verb"] == "create"
                    && e["objectRef"]["resource"] == "pods"
                    && e["stage"] == "ResponseComplete"
            })
            .collect();
        if found.len() >= count || std::time::Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn decisions_are_annotated_in_the_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n",
    )
    .unwrap();
    let log = dir.path().join("audit.log");
    let flags = [
        format!("--audit-policy-file={}", policy.display()),
        format!("--audit-log-path={}", log.display()),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let k = Kapi::start(&flags, &[]);
    k.ok(&["create", "namespace", "audited"]);
    k.default_service_account("audited");
    k.ok(&[
        "label",
        "namespace",
        "audited",
        "pod-security.kubernetes.io/enforce=baseline",
        "pod-security.kubernetes.io/audit=restricted",
    ]);
    // Allowed at baseline, but it breaks restricted: audited as a violation.
    k.ok(&["run", "plain", "--image=nginx", "-n", "audited"]);
    // Refused at baseline.
    let out = k.kubectl_stdin(&["create", "-n", "audited", "-f", "-"], HOST_NETWORK);
    assert!(!out.status.success());
    let events = pod_create_events(&log, 2);
    assert_eq!(events.len(), 2, "{events:?}");
    let plain = &events[0]["annotations"];
    assert_eq!(
        plain["pod-security.kubernetes.io/enforce-policy"],
        "baseline:latest"
    );
    assert!(
        plain["pod-security.kubernetes.io/audit-violations"]
            .as_str()
            .unwrap_or("")
            .starts_with(
                "would violate PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false"
            ),
        "{plain}"
    );
    assert_eq!(plain["authorization.k8s.io/decision"], "allow");
    let refused = &events[1];
    assert_eq!(refused["responseStatus"]["code"], 403);
    assert_eq!(
        refused["annotations"]["pod-security.kubernetes.io/enforce-policy"],
        "baseline:latest"
    );
}
