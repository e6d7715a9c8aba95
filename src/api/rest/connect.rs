//! The subresources served by a kubelet, proxied as upstream's pod and node REST do:
//! `pods/log` (streamed), `pods/exec`, `pods/attach`, `pods/portforward` (connection upgrades:
//! SPDY or WebSocket, spliced both ways) and `nodes/proxy` (any path and method). The pod and
//! its container are checked here (upstream's 400s), then the request goes to the kubelet of
//! the pod's node (`crate::kubelet`), with kapi's client certificate instead of the client's
//! credentials. The kubelet's answer is passed back as it comes.

use super::*;
use crate::authn::lookup::Kind;
use crate::jsonptr::At;
use crate::kubelet::client::{self, Outbound};

/// Request headers not passed to a kubelet: the client's credentials and identity, and what
/// the hop to the kubelet frames itself.
const DROPPED_REQUEST_HEADERS: &[&str] = &[
    "authorization",
    "host",
    "content-length",
    "transfer-encoding",
    "proxy-authorization",
    "te",
    "trailer",
    "keep-alive",
];

/// Whether this request is one the kubelet answers.
pub(super) fn is_connect(rr: &ResourceRequest) -> bool {
    rr.group.is_empty()
        && matches!(
            (rr.resource.as_str(), rr.subresource.as_deref()),
            ("pods", Some("log" | "exec" | "attach" | "portforward")) | ("nodes", Some("proxy"))
        )
}

/// Go's `%v` of a string slice: `[a b c]`.
fn go_list(names: &[&str]) -> String {
    format!("[{}]", names.join(" "))
}

impl Ctx<'_> {
    /// Every value of a repeated query parameter (`command=sh&command=-c`).
    fn all_values(&self, key: &str) -> Vec<String> {
        form_urlencoded::parse(self.req.uri.query().unwrap_or("").as_bytes())
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
            .collect()
    }

    pub(super) async fn connect(&self) -> Result<Response, Status> {
        // A stream outlives the request: its flow-control seat goes now.
        drop(self.seat.take());
        let sub = self.rr.subresource.as_deref().unwrap_or("");
        let (node_name, path) = match self.rr.resource.as_str() {
            "nodes" => self.node_proxy_target()?,
            _ => self.pod_target(sub).await?,
        };
        let Some(node_name) = node_name else {
            // A pod no node runs has no logs yet.
            return Ok(respond(StatusCode::OK, "text/plain", Vec::new()));
        };
        let lookup = &self.api.service_accounts.lookup;
        let mut node = lookup.object(Kind::Node, "", &node_name)?;
        if node.is_none() {
            self.api.catch_up_cache().await?;
            node = lookup.object(Kind::Node, "", &node_name)?;
        }
        let node = node.ok_or_else(|| {
            Status::not_found(
                GroupResource {
                    group: "",
                    resource: "nodes",
                },
                &node_name,
            )
        })?;
        let address = crate::kubelet::location(&node).map_err(Status::internal)?;
        let url = format!("https://{address}{path}");
        let method = self.req.method.clone();
        let fail = move |url: &str, e: String| Status::internal(format!("{method} {url:?}: {e}"));
        self.forward(url, None, fail).await
    }

    /// Sends the request on to `url` (its credentials and identity headers dropped; a
    /// connection upgrade kept over HTTP/1.1) and passes the answer back as it comes: a
    /// stream, or a tunnel spliced both ways. `other`: credentials other than the kubelets';
    /// `fail`: the answer when the target cannot be reached.
    pub(super) async fn forward(
        &self,
        url: String,
        other: Option<client::Credentials>,
        fail: impl FnOnce(&str, String) -> Status,
    ) -> Result<Response, Status> {
        let upgrade = self
            .req
            .headers
            .get(header::CONNECTION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("upgrade"))
            && !self.req.http2;
        let mut headers = self.req.headers.clone();
        for h in DROPPED_REQUEST_HEADERS {
            headers.remove(*h);
        }
        let drop_identity: Vec<http::HeaderName> = headers
            .keys()
            .filter(|k| {
                let k = k.as_str();
                k.starts_with("impersonate-") || k.starts_with("x-remote-")
            })
            .cloned()
            .collect();
        for k in drop_identity {
            headers.remove(k);
        }
        if !upgrade {
            headers.remove(header::CONNECTION);
            headers.remove(header::UPGRADE);
        }
        let answer = client::send(Outbound {
            method: self.req.method.clone(),
            url: url.clone(),
            headers,
            body: self.req.body.clone(),
            upgrade,
            other: other.map(|c| (c, None)),
        })
        .await
        .map_err(|e| fail(&url, e))?;
        let mut out_headers = answer.headers;
        for h in ["content-length", "transfer-encoding", "keep-alive"] {
            out_headers.remove(h);
        }
        let body = match answer.tunnel {
            Some(to_kubelet) => Body::Tunnel(answer.body, to_kubelet),
            None => {
                out_headers.remove(header::CONNECTION);
                Body::Stream(answer.body)
            }
        };
        Ok(Response {
            status: answer.status,
            headers: out_headers,
            body,
        })
    }

    /// `nodes/<name>/proxy/<path>`: the node (a `:port` or `scheme:name:port` suffix names its
    /// kubelet's port; kapi always uses the node's) and the path with its query.
    fn node_proxy_target(&self) -> Result<(Option<String>, String), Status> {
        let name = self.name();
        let node = match name.split(':').collect::<Vec<_>>().as_slice() {
            [n] | [n, _] => n.to_string(),
            [_, n, _] => n.to_string(),
            _ => {
                return Err(Status::bad_request(format!(
                    "invalid node request {name:?}"
                )));
            }
        };
        let full = self.req.uri.path();
        let marker = format!("/nodes/{name}/proxy");
        let rest = full
            .find(&marker)
            .map(|i| &full[i + marker.len()..])
            .unwrap_or("");
        let mut path = if rest.is_empty() {
            "/".to_string()
        } else {
            rest.to_string()
        };
        if let Some(q) = self.req.uri.query() {
            path.push('?');
            path.push_str(q);
        }
        Ok((Some(node), path))
    }

    /// The pod `name` of the request's namespace, from the cache (caught up once when the pod
    /// is not there yet); 404 when there is none.
    pub(super) async fn named_pod(&self, name: &str) -> Result<Value, Status> {
        let ns = self.rr.namespace.clone().unwrap_or_default();
        let lookup = &self.api.service_accounts.lookup;
        let mut pod = lookup.object(Kind::Pod, &ns, name)?;
        if pod.is_none() {
            self.api.catch_up_cache().await?;
            pod = lookup.object(Kind::Pod, &ns, name)?;
        }
        pod.ok_or_else(|| Status::not_found(gr(self.res), name))
    }

    /// A pod's kubelet path for `log`, `exec`, `attach` or `portforward`, after upstream's
    /// checks of the pod and container; no node when the pod has none yet (logs only).
    async fn pod_target(&self, sub: &str) -> Result<(Option<String>, String), Status> {
        let ns = self.rr.namespace.clone().unwrap_or_default();
        let name = self.name();
        let pod = self.named_pod(name).await?;
        let query = self.query;
        let spec = pod.get("spec").unwrap_or(&Value::Null);
        let names = |key: &str| -> Vec<&str> {
            spec.get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|c| c.get("name").and_then(Value::as_str))
                .collect()
        };
        let container = if sub == "portforward" {
            String::new()
        } else {
            match query.get("container").filter(|c| !c.is_empty()) {
                Some(c) => {
                    let known = ["initContainers", "containers", "ephemeralContainers"]
                        .iter()
                        .any(|k| names(k).contains(&c));
                    if !known {
                        return Err(Status::bad_request(format!(
                            "container {c} is not valid for pod {name}"
                        )));
                    }
                    c.to_string()
                }
                None => match names("containers").as_slice() {
                    [only] => only.to_string(),
                    [] => {
                        return Err(Status::bad_request(format!(
                            "a container name must be specified for pod {name}"
                        )));
                    }
                    _ => {
                        let all: Vec<&str> =
                            ["initContainers", "containers", "ephemeralContainers"]
                                .iter()
                                .flat_map(|k| names(k))
                                .collect();
                        return Err(Status::bad_request(format!(
                            "a container name must be specified for pod {name}, choose one of: {}",
                            go_list(&all)
                        )));
                    }
                },
            }
        };
        let node = spec
            .get("nodeName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(str::to_string);
        if sub != "log" {
            if node.is_none() {
                return Err(Status::bad_request(format!(
                    "pod {name} does not have a host assigned"
                )));
            }
            if let Some(phase @ ("Succeeded" | "Failed")) =
                pod.at("/status/phase").and_then(Value::as_str)
            {
                let action = if sub == "portforward" {
                    "port-forward"
                } else {
                    sub
                };
                return Err(Status::bad_request(format!(
                    "cannot {action} into a container in a completed pod; current phase is {phase}"
                )));
            }
        }
        let mut params = form_urlencoded::Serializer::new(String::new());
        let path = match sub {
            "log" => {
                for (k, ty) in [
                    ("follow", "bool"),
                    ("previous", "bool"),
                    ("timestamps", "bool"),
                    ("sinceSeconds", "int"),
                    ("sinceTime", "time"),
                    ("tailLines", "int"),
                    ("limitBytes", "int"),
                    ("stream", "str"),
                ] {
                    if let Some(v) = query.get(k) {
                        match ty {
                            "bool" if v != "true" => continue,
                            "int" => {
                                let n: i64 = v.parse().map_err(|_| {
                                    Status::bad_request(format!("{k}: invalid value {v:?}"))
                                })?;
                                let bad = match k {
                                    "tailLines" => {
                                        (n < 0).then_some("must be greater than or equal to 0")
                                    }
                                    _ => (n < 1).then_some("must be greater than 0"),
                                };
                                if let Some(why) = bad {
                                    return Err(Status::invalid(
                                        "",
                                        "PodLogOptions",
                                        name,
                                        vec![crate::kinds::field::invalid(
                                            k.into(),
                                            &json!(n),
                                            why,
                                        )],
                                    ));
                                }
                            }
                            _ => {}
                        }
                        params.append_pair(k, v);
                    }
                }
                format!("/containerLogs/{ns}/{name}/{container}")
            }
            "exec" | "attach" => {
                // Upstream's defaults: stdout on unless the client says otherwise.
                for (k, param, default) in [
                    ("stdin", "input", false),
                    ("stdout", "output", true),
                    ("stderr", "error", false),
                    ("tty", "tty", false),
                ] {
                    let on = query.get(k).map_or(default, |v| v == "true" || v == "1");
                    if on {
                        params.append_pair(param, "1");
                    }
                }
                if sub == "exec" {
                    for c in self.all_values("command") {
                        params.append_pair("command", &c);
                    }
                }
                format!("/{sub}/{ns}/{name}/{container}")
            }
            _ => {
                for p in self.all_values("ports") {
                    params.append_pair("port", &p);
                }
                format!("/portForward/{ns}/{name}")
            }
        };
        let params = params.finish();
        let path = if params.is_empty() {
            path
        } else {
            format!("{path}?{params}")
        };
        Ok((node, path))
    }
}
