//! `pods/proxy` and `services/proxy` (and `.../proxy/<path>`), as upstream's ProxyREST: the
//! name is `name`, `name:port` or `scheme:name:port` (scheme `http` or `https`); a pod is
//! reached at its first IP and the port named (else its first container port), a Service at a
//! ready endpoint of its EndpointSlices for the Service port named by name or number. Every
//! method is passed on with the path after `proxy` and the query; the answer streams back
//! (`connect::forward`). HTTPS targets are not verified, as upstream's proxy transport (pod
//! and endpoint addresses have no names to verify).

use std::net::IpAddr;
use std::time::Duration;

use super::*;
use crate::kubelet::client::Credentials;

/// How long a proxied target may take to answer (its head; the body then streams): upstream's
/// request timeout.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// Upstream refuses to proxy to a pod address that is not global unicast (loopback,
/// link-local, unspecified: "address not allowed"). With this variable set to `1`, kapi also
/// proxies to loopback pod addresses — for tests on one machine, where a pod's server listens
/// on 127.0.0.1; off by default.
const ALLOW_LOOPBACK_ENV: &str = "KAPI_PROXY_ALLOW_LOOPBACK";

/// Whether this request is a pod's or a Service's proxy.
pub(super) fn is_proxy(rr: &ResourceRequest) -> bool {
    rr.group.is_empty()
        && rr.subresource.as_deref() == Some("proxy")
        && matches!(rr.resource.as_str(), "pods" | "services")
}

/// `scheme:name:port`, `name:port` or `name` (upstream's `SplitSchemeNamePort`).
fn split_scheme_name_port(id: &str) -> Option<(&str, &str, &str)> {
    let parts: Vec<&str> = id.split(':').collect();
    let (scheme, name, port) = match parts.as_slice() {
        [name] => ("", *name, ""),
        [name, port] => ("", *name, *port),
        [scheme, name, port] => (*scheme, *name, *port),
        _ => return None,
    };
    (!name.is_empty() && matches!(scheme, "" | "http" | "https")).then_some((scheme, name, port))
}

/// Go's `IP.IsGlobalUnicast`: not unspecified, loopback, link-local, multicast or broadcast.
fn global_unicast(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast())
        }
        IpAddr::V6(v6) => {
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || v6.is_unicast_link_local())
        }
    }
}

fn host_port(ip: &IpAddr, port: &str) -> String {
    let host = match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    };
    match port {
        "" => host,
        p => format!("{host}:{p}"),
    }
}

impl Ctx<'_> {
    pub(super) async fn proxy(&self) -> Result<Response, Status> {
        // A proxied exchange may outlive the request: its flow-control seat goes now.
        drop(self.seat.take());
        let id = self.name();
        let kind = if self.rr.resource == "pods" {
            "pod"
        } else {
            "service"
        };
        let (scheme, name, port) = split_scheme_name_port(id)
            .ok_or_else(|| Status::bad_request(format!("invalid {kind} request {id:?}")))?;
        let host = match kind {
            "pod" => self.pod_address(name, port).await?,
            _ => self.service_address(id, name, port).await?,
        };
        // The path after `proxy`: an empty one is redirected to `proxy/`, as upstream does.
        let full = self.req.uri.path();
        let marker = format!("/{}/{id}/proxy", self.rr.resource);
        let rest = full
            .find(&marker)
            .map(|i| &full[i + marker.len()..])
            .unwrap_or("");
        let query = self
            .req
            .uri
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        if rest.is_empty() {
            let mut headers = http::HeaderMap::new();
            if let Ok(v) = http::HeaderValue::from_str(&format!("{full}/{query}")) {
                headers.insert(header::LOCATION, v);
            }
            return Ok(Response {
                status: StatusCode::MOVED_PERMANENTLY,
                headers,
                body: Body::Full(Bytes::new()),
            });
        }
        let scheme = if scheme.is_empty() { "http" } else { scheme };
        let url = format!("{scheme}://{host}{rest}{query}");
        let credentials = Credentials {
            ca: None,
            client: None,
            timeout: ANSWER_TIMEOUT,
            insecure: true,
        };
        let fail = |_: &str, e: String| {
            Status::new(500, "", format!("error trying to reach service: {e}"))
        };
        self.forward(url, Some(credentials), fail).await
    }

    /// `pod:port`'s address: the pod's first IP (global unicast, as upstream requires) and the
    /// port named, else the first container port, else none.
    async fn pod_address(&self, name: &str, port: &str) -> Result<String, Status> {
        let pod = self.named_pod(name).await?;
        let port = match port {
            "" => pod["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .find_map(|c| c["ports"][0]["containerPort"].as_i64())
                .map(|p| p.to_string())
                .unwrap_or_default(),
            p => p.to_owned(),
        };
        let ip = pod["status"]["podIPs"][0]["ip"]
            .as_str()
            .or_else(|| pod["status"]["podIP"].as_str())
            .and_then(|ip| ip.parse::<IpAddr>().ok());
        let loopback_allowed = std::env::var(ALLOW_LOOPBACK_ENV).is_ok_and(|v| v == "1");
        match ip {
            Some(ip) if global_unicast(&ip) || (loopback_allowed && ip.is_loopback()) => {
                Ok(host_port(&ip, &port))
            }
            _ => Err(Status::bad_request("address not allowed")),
        }
    }

    /// `service:port`'s address: the Service port named (by number or name), then a ready
    /// endpoint of the Service's EndpointSlices that has that port (503 when none has).
    async fn service_address(&self, id: &str, name: &str, port: &str) -> Result<String, Status> {
        let ns = self.rr.namespace.clone().unwrap_or_default();
        let mut svc =
            crate::admission::cached_object(self.api, ("", "v1", "services"), Some(&ns), name)?;
        if svc.is_none() {
            self.api.catch_up_cache().await?;
            svc =
                crate::admission::cached_object(self.api, ("", "v1", "services"), Some(&ns), name)?;
        }
        let svc = svc.ok_or_else(|| Status::not_found(gr(self.res), name))?;
        let port_name = match port.parse::<i64>() {
            Ok(number) => svc["spec"]["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["port"].as_i64() == Some(number))
                .map(|p| p["name"].as_str().unwrap_or("").to_owned())
                .ok_or_else(|| {
                    Status::service_unavailable(format!(
                        "no service port {number} found for service {name:?}"
                    ))
                })?,
            Err(_) => port.to_owned(),
        };
        let slices = crate::admission::cached_objects(
            self.api,
            "discovery.k8s.io",
            "v1",
            "endpointslices",
            Some(&ns),
        )?;
        let mut ready: Vec<(IpAddr, i64)> = Vec::new();
        for slice in slices
            .iter()
            .filter(|s| s["metadata"]["labels"]["kubernetes.io/service-name"] == name)
        {
            let Some(target) = slice["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["name"].as_str().unwrap_or("") == port_name)
                .and_then(|p| p["port"].as_i64())
            else {
                continue;
            };
            ready.extend(
                slice["endpoints"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|ep| ep["conditions"]["ready"] != false)
                    .filter_map(|ep| ep["addresses"][0].as_str()?.parse().ok())
                    .map(|ip| (ip, target)),
            );
        }
        if ready.is_empty() {
            return Err(Status::service_unavailable(format!(
                "no endpoints available for service {id:?}"
            )));
        }
        let (ip, target) = ready[fastrand::usize(..ready.len())];
        Ok(host_port(&ip, &target.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_as_upstreams_and_only_global_unicast_pods_are_reached() {
        assert_eq!(split_scheme_name_port("p"), Some(("", "p", "")));
        assert_eq!(split_scheme_name_port("p:80"), Some(("", "p", "80")));
        assert_eq!(
            split_scheme_name_port("https:p:web"),
            Some(("https", "p", "web"))
        );
        assert_eq!(split_scheme_name_port("ftp:p:80"), None);
        assert_eq!(split_scheme_name_port(":80"), None);
        assert_eq!(split_scheme_name_port("a:b:c:d"), None);
        assert!(global_unicast(&"10.1.2.3".parse().unwrap()));
        assert!(global_unicast(&"fd00::1".parse().unwrap()));
        assert!(!global_unicast(&"127.0.0.1".parse().unwrap()));
        assert!(!global_unicast(&"169.254.1.1".parse().unwrap()));
        assert!(!global_unicast(&"::1".parse().unwrap()));
        assert_eq!(host_port(&"fd00::1".parse().unwrap(), "80"), "[fd00::1]:80");
    }
}
