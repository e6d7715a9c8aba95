//! Kubelets as the apiserver reaches them (for logs, exec, attach, port-forward and the node
//! proxy): the credentials of `--kubelet-client-certificate`/`--kubelet-client-key`, verified
//! with `--kubelet-certificate-authority`, each kubelet at its node's first address of the
//! `--kubelet-preferred-address-types` and the port its node reports. The requests themselves
//! go through `client`, off the serving cores.

pub mod client;

use std::sync::OnceLock;

use serde_json::Value;

/// The port a kubelet serves on when its node reports none (upstream's `--kubelet-port`).
const DEFAULT_KUBELET_PORT: u16 = 10250;

static PREFERRED: OnceLock<Vec<String>> = OnceLock::new();

/// Reads the kubelet flags' files (a file that cannot be read stops the start) and sets up
/// the client.
pub fn init(flags: &crate::flags::Flags) -> Result<(), String> {
    let read = |flag: &str, path: &Option<std::path::PathBuf>| {
        path.as_ref()
            .map(|p| std::fs::read(p).map_err(|e| format!("--{flag}: {}: {e}", p.display())))
            .transpose()
    };
    let ca = read(
        "kubelet-certificate-authority",
        &flags.kubelet_certificate_authority,
    )?;
    let cert = read(
        "kubelet-client-certificate",
        &flags.kubelet_client_certificate,
    )?;
    let key = read("kubelet-client-key", &flags.kubelet_client_key)?;
    let client = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => {
            return Err(
                "--kubelet-client-certificate and --kubelet-client-key must be given together"
                    .into(),
            );
        }
    };
    const TYPES: &[&str] = &[
        "Hostname",
        "InternalDNS",
        "InternalIP",
        "ExternalDNS",
        "ExternalIP",
    ];
    if let Some(t) = flags
        .kubelet_preferred_address_types
        .iter()
        .find(|t| !TYPES.contains(&t.as_str()))
    {
        return Err(format!(
            "--kubelet-preferred-address-types: {t} is not a valid address type"
        ));
    }
    let _ = PREFERRED.set(flags.kubelet_preferred_address_types.clone());
    client::init(client::Credentials {
        ca,
        client,
        timeout: flags.kubelet_timeout,
        insecure: false,
    });
    Ok(())
}

fn preferred() -> &'static [String] {
    static DEFAULT: OnceLock<Vec<String>> = OnceLock::new();
    PREFERRED.get().unwrap_or_else(|| {
        DEFAULT.get_or_init(|| {
            [
                "Hostname",
                "InternalDNS",
                "InternalIP",
                "ExternalDNS",
                "ExternalIP",
            ]
            .map(String::from)
            .to_vec()
        })
    })
}

/// Where a node's kubelet listens (`host:port`, an IPv6 address in brackets): its first
/// address of the preferred types (a Hostname also from its `kubernetes.io/hostname` label),
/// and the port of `status.daemonEndpoints.kubeletEndpoint`.
pub fn location(node: &Value) -> Result<String, String> {
    let addresses = node
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let of_type = |t: &str| {
        addresses
            .iter()
            .find(|a| a.get("type").and_then(Value::as_str) == Some(t))
            .and_then(|a| a.get("address").and_then(Value::as_str))
            .map(str::to_string)
    };
    let host = preferred().iter().find_map(|t| {
        of_type(t).or_else(|| {
            (t == "Hostname")
                .then(|| {
                    node.pointer("/metadata/labels/kubernetes.io~1hostname")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .flatten()
        })
    });
    let Some(host) = host else {
        let known: Vec<String> = addresses
            .iter()
            .map(|a| {
                format!(
                    "{}: {}",
                    a.get("type").and_then(Value::as_str).unwrap_or(""),
                    a.get("address").and_then(Value::as_str).unwrap_or("")
                )
            })
            .collect();
        return Err(format!(
            "no preferred addresses found; known addresses: [{}]",
            known.join(" ")
        ));
    };
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0)
        .unwrap_or(DEFAULT_KUBELET_PORT);
    Ok(match host.parse::<std::net::Ipv6Addr>() {
        Ok(_) => format!("[{host}]:{port}"),
        Err(_) => format!("{host}:{port}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_kubelet_is_reached_at_its_preferred_address_and_port() {
        let node = json!({"metadata": {"labels": {"kubernetes.io/hostname": "n1"}},
            "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.5"},
                                     {"type": "ExternalIP", "address": "fd00::5"}],
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": 10255}}}});
        // No Hostname address: the hostname label is used.
        assert_eq!(location(&node).unwrap(), "n1:10255");
        let mut bare = node.clone();
        bare["metadata"] = json!({});
        assert_eq!(location(&bare).unwrap(), "10.0.0.5:10255");
        let v6 = json!({"status": {"addresses": [{"type": "ExternalIP", "address": "fd00::5"}]}});
        assert_eq!(location(&v6).unwrap(), "[fd00::5]:10250");
        assert_eq!(
            location(&json!({})).unwrap_err(),
            "no preferred addresses found; known addresses: []"
        );
    }
}
