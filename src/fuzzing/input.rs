//! The fuzzer's input model: a `RawRequest` read either as text (the seed form, one request as
//! curl shows it) or built from arbitrary bytes by `Model`, which knows every resource, query
//! parameter, media type and body shape kapi reads, so mutations land past the first checks.

use std::fmt::Write as _;
use std::ops::{Deref, DerefMut};

use arbitrary::{Result, Unstructured};
use serde_json::{Map, Value, json};

use crate::api::registry::Registry;

/// One request as a client could send it, before the transport's checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRequest {
    pub method: String,
    /// Path and query, as on the request line.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub user: User,
    pub http2: bool,
}

/// Who the client proved to be: the TLS client certificate's identity, or none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum User {
    /// kubeconfig's admin: `system:masters`.
    Admin,
    Named {
        name: String,
        groups: Vec<String>,
    },
    Anonymous,
}

impl User {
    /// The TLS peer this client is: a client certificate naming the user (CN) and its groups
    /// (O), as the transport hands the verified chain to authentication, or none. Certificates
    /// are made once per user and kept (making one costs a key generation).
    pub fn peer(&self) -> std::rc::Rc<crate::transport::Peer> {
        let (name, groups): (String, Vec<String>) = match self {
            User::Admin => ("kubernetes-admin".into(), vec!["system:masters".into()]),
            User::Named { name, groups } => (name.clone(), groups.clone()),
            User::Anonymous => return crate::transport::Peer::anonymous(),
        };
        thread_local! {
            static CERTS: std::cell::RefCell<KeptCertificates> =
                std::cell::RefCell::new(KeptCertificates::new());
        }
        /// Distinct users whose certificates are kept; past it the oldest are forgotten.
        const MAX_KEPT_CERTIFICATES: usize = 64;
        let der = CERTS.with(|c| {
            let mut c = c.borrow_mut();
            if let Some(der) = c.get(&(name.clone(), groups.clone())) {
                return der.clone();
            }
            if c.len() >= MAX_KEPT_CERTIFICATES {
                c.clear();
            }
            let der = certificate(&name, &groups);
            c.insert((name.clone(), groups.clone()), der.clone());
            der
        });
        std::rc::Rc::new(crate::transport::Peer {
            certificates: if der.is_empty() {
                Vec::new()
            } else {
                vec![rustls_pki_types::CertificateDer::from(der)]
            },
            remote: None,
            memo: std::cell::OnceCell::new(),
        })
    }
}

/// Certificates made for fuzzed users, by (name, groups).
type KeptCertificates = std::collections::HashMap<(String, Vec<String>), Vec<u8>>;

/// A self-signed certificate with CN `name` and an O per group (empty if rcgen refuses the
/// names: the client is then anonymous).
fn certificate(name: &str, groups: &[String]) -> Vec<u8> {
    let Ok(mut params) = rcgen::CertificateParams::new(Vec::<String>::new()) else {
        return Vec::new();
    };
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    for g in groups {
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, g.as_str());
    }
    let Some((ca_der, ca_key, _)) = harness_ca() else {
        return Vec::new();
    };
    let Ok(issuer) = rcgen::Issuer::from_ca_cert_der(&ca_der.as_slice().into(), ca_key) else {
        return Vec::new();
    };
    match rcgen::KeyPair::generate().and_then(|key| params.signed_by(&key, &issuer)) {
        Ok(cert) => cert.der().to_vec(),
        Err(_) => Vec::new(),
    }
}

/// The CA the harness's client certificates are signed by (DER, key, PEM), made once.
pub(crate) fn harness_ca() -> Option<&'static (Vec<u8>, rcgen::KeyPair, String)> {
    static CA: std::sync::OnceLock<Option<(Vec<u8>, rcgen::KeyPair, String)>> =
        std::sync::OnceLock::new();
    CA.get_or_init(|| {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).ok()?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "kapi-fuzz-ca");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().ok()?;
        let cert = params.self_signed(&key).ok()?;
        Some((cert.der().to_vec(), key, cert.pem()))
    })
    .as_ref()
}

/// The pseudo-header of the text form that names the client (absent: the admin; `-`: anonymous;
/// `name/group,group`: that user).
pub const USER_HEADER: &str = "x-fuzz-user";

impl RawRequest {
    /// Reads the text form: `METHOD TARGET [HTTP/1.1|HTTP/2]`, header lines, an empty line,
    /// the body. Any input starting with an ASCII capital letter is read this way.
    pub fn parse_text(data: &[u8]) -> RawRequest {
        let (head, body) = split_head(data);
        let head = String::from_utf8_lossy(head);
        let mut lines = head.lines();
        let first = lines.next().unwrap_or("");
        let mut words = first.split(' ');
        let method = words.next().unwrap_or("").to_string();
        let target = words.next().unwrap_or("").to_string();
        let http2 = words.next() != Some("HTTP/1.1");
        let mut headers = Vec::new();
        let mut user = User::Admin;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let (name, value) = (name.trim(), value.trim());
            if name.eq_ignore_ascii_case(USER_HEADER) {
                user = match value {
                    "-" => User::Anonymous,
                    v => {
                        let (name, groups) = v.split_once('/').unwrap_or((v, ""));
                        User::Named {
                            name: name.to_string(),
                            groups: groups
                                .split(',')
                                .filter(|g| !g.is_empty())
                                .map(String::from)
                                .collect(),
                        }
                    }
                };
                continue;
            }
            headers.push((name.to_string(), value.to_string()));
        }
        RawRequest {
            method,
            target,
            headers,
            body: body.to_vec(),
            user,
            http2,
        }
    }

    /// The text form, which `parse_text` reads back: how a crash input is kept as a test.
    pub fn to_text(&self) -> Vec<u8> {
        let mut head = format!(
            "{} {} {}\n",
            self.method,
            self.target,
            if self.http2 { "HTTP/2" } else { "HTTP/1.1" }
        );
        for (name, value) in &self.headers {
            let _ = writeln!(head, "{name}: {value}");
        }
        match &self.user {
            User::Admin => {}
            User::Anonymous => {
                let _ = writeln!(head, "{USER_HEADER}: -");
            }
            User::Named { name, groups } => {
                let _ = writeln!(head, "{USER_HEADER}: {name}/{}", groups.join(","));
            }
        }
        head.push('\n');
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

fn split_head(data: &[u8]) -> (&[u8], &[u8]) {
    for (sep, len) in [(&b"\r\n\r\n"[..], 4), (&b"\n\n"[..], 2)] {
        if let Some(at) = data.windows(len).position(|w| w == sep) {
            return (&data[..at], &data[at + len..]);
        }
    }
    (data, &[])
}

/// JSON patch operations a generated patch has at most: each `copy` may double the document,
/// and the unbounded doubling is a known issue of its own (issue 13, item 2), not this model's.
const MAX_PATCH_OPS: usize = 6;
/// Depth of generated JSON values: deep enough for nested specs, bounded so generation is.
const MAX_JSON_DEPTH: u32 = 4;
/// Query parameters, extra headers, list items and map entries per generated request.
const MAX_PARAMS: usize = 10;
const MAX_ITEMS: usize = 6;

/// What the generator picks from: the resources of the registry, and the vocabulary below.
pub struct Model {
    /// (group, version, resource, kind, namespaced, subresources)
    resources: Vec<(String, String, String, String, bool, Vec<String>)>,
}

/// Every query parameter kapi or upstream reads: ListOptions, GetOptions, DeleteOptions,
/// PatchOptions, CreateOptions/UpdateOptions, and the general ones.
pub const PARAMS: &[&str] = &[
    // ListOptions
    "labelSelector",
    "fieldSelector",
    "watch",
    "allowWatchBookmarks",
    "resourceVersion",
    "resourceVersionMatch",
    "timeoutSeconds",
    "limit",
    "continue",
    "sendInitialEvents",
    // DeleteOptions
    "gracePeriodSeconds",
    "propagationPolicy",
    "orphanDependents",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    // Create/Update/Patch options
    "dryRun",
    "fieldManager",
    "fieldValidation",
    "force",
    // general
    "pretty",
    "includeObject",
    "verbose",
    "exclude",
    "hash",
];

/// Values that sit on the edges of how numbers, flags and enums are read.
const VALUES: &[&str] = &[
    "",
    "0",
    "1",
    "-1",
    "2",
    "500",
    "true",
    "false",
    "True",
    "TRUE",
    "yes",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "4294967296",
    "1e3",
    "0x10",
    " 1",
    "+1",
    "01",
    "1.5",
    "NaN",
    "Exact",
    "NotOlderThan",
    "All",
    "all",
    "Strict",
    "Warn",
    "Ignore",
    "Background",
    "Foreground",
    "Orphan",
    "None",
    "Object",
    "Metadata",
    "a=b",
    "a!=b",
    "a==b",
    "a in (x,y)",
    "a notin (x)",
    "!a",
    "a,b",
    "a=",
    "=b",
    "in (",
    "metadata.name=cfg",
    "metadata.namespace=default",
    "spec.nodeName=node-1",
    "status.phase!=Running",
    "spec.nodeName=",
    "x.y=z",
    "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MzA0LCJzdGFydCI6Ii9wMVx1MDAwMCJ9",
    "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6LTEsInN0YXJ0IjoiIn0",
    "eyJ2Ijoid3JvbmciLCJydiI6MSwic3RhcnQiOiJcdTAwMDAifQ",
    "e30",
    "!!!",
];

/// Accept headers of every kind kapi negotiates (and some it refuses).
const ACCEPTS: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/vnd.kubernetes.protobuf, */*",
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
    "application/json;as=Table;v=v1;g=meta.k8s.io",
    "application/yaml;as=Table;v=v1;g=meta.k8s.io",
    "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io",
    "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
    "application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
    "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
    "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1beta1",
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
    "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
    "application/json;as=Table;g=meta.k8s.io;v=v9",
    "*/*",
    "application/*",
    "application/json;q=0",
    "application/json;q=0.5, application/yaml;q=1",
    "text/html",
    "application/json;stream=watch",
    ";",
    ",,",
];

/// Content-Type headers of every body kapi reads, and some it refuses.
const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/json; charset=utf-8",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
    "application/apply-patch+cbor",
    "text/plain",
    "",
];

const NAMESPACES: &[&str] = &[
    "default",
    "default",
    "default",
    "kube-system",
    "missing",
    "",
    "..",
    "%2F",
];
const NAMES: &[&str] = &[
    "cfg",
    "a",
    "nginx",
    "default",
    "kube-system",
    "node-1",
    "web",
    "UPPER",
    "a.b",
    "-x",
    "..",
    "%00",
    "x%2Fy",
    "0123456789012345678901234567890123456789012345678901234567890123456789",
];
const SUBRESOURCES: &[&str] = &[
    "status", "scale", "finalize", "log", "exec", "binding", "eviction", "proxy", "token", "",
];
const DISCOVERY_PATHS: &[&str] = &[
    "/api",
    "/apis",
    "/api/v1",
    "/api/v2",
    "/apis/apps",
    "/apis/apps/v1",
    "/apis/apps/v1beta1",
    "/apis/nope",
    "/apis/nope/v1",
    "/api/",
    "//api",
];
const OTHER_PATHS: &[&str] = &[
    "/",
    "/version",
    "/version/",
    "/healthz",
    "/livez",
    "/readyz",
    "/healthz/etcd",
    "/readyz/ping",
    "/livez/log",
    "/readyz/nope",
    "/metrics",
    "/openapi/v2",
    "/openapi/v3",
    "/openapi/v3/api/v1",
    "/openapi/v3/apis/apps/v1",
    "/openapi/v3/nope",
    "/logs",
    "/favicon.ico",
];
const METHODS: &[&str] = &[
    "GET", "GET", "GET", "HEAD", "POST", "POST", "PUT", "PATCH", "PATCH", "DELETE", "OPTIONS",
    "TRACE", "CONNECT", "BREW",
];
const EXTRA_HEADERS: &[&str] = &[
    "user-agent",
    "authorization",
    "if-none-match",
    "impersonate-user",
    "impersonate-group",
    "accept-encoding",
    "content-encoding",
    "x-remote-user",
    "audit-id",
];
const HEADER_VALUES: &[&str] = &[
    "kubectl/v1.36.2 (linux/amd64) kubernetes/abcdef",
    "curl/8.5.0",
    "Mozilla/5.0",
    "Bearer abc",
    "Basic YTpi",
    "gzip",
    "\"0\"",
    "system:admin",
    "",
];
/// JSON pointers into the objects the model builds.
const POINTERS: &[&str] = &[
    "",
    "/",
    "/metadata",
    "/metadata/name",
    "/metadata/labels",
    "/metadata/labels/a",
    "/metadata/labels/a~1b",
    "/metadata/annotations/~0",
    "/metadata/resourceVersion",
    "/metadata/finalizers/0",
    "/metadata/finalizers/-",
    "/data",
    "/data/x",
    "/spec",
    "/spec/containers/0",
    "/spec/containers/-",
    "/spec/containers/9",
    "/spec/containers/-1",
    "/spec/containers/01",
    "/spec/replicas",
    "/status",
    "/kind",
    "/apiVersion",
    "x",
    "/a/b/c",
];
const STRINGS: &[&str] = &[
    "",
    "a",
    "cfg",
    "nginx",
    "busybox",
    "v1",
    "ConfigMap",
    "Pod",
    "replace",
    "delete",
    "merge",
    "retainKeys",
    "2026-01-01T00:00:00Z",
    "not-a-time",
    "100m",
    "1Gi",
    "-1",
    "\u{0}",
    "é",
    "$patch",
];

impl Model {
    pub fn new(registry: &Registry) -> Model {
        Model {
            resources: registry
                .all()
                .iter()
                .map(|r| {
                    (
                        r.group.clone(),
                        r.version.clone(),
                        r.resource.clone(),
                        r.kind.clone(),
                        r.namespaced,
                        r.subresources.clone(),
                    )
                })
                .collect(),
        }
    }

    /// An input as the fuzz target reads it: the text form when it starts with a capital
    /// letter (the seeds), otherwise a request built from the bytes.
    pub fn request(&self, data: &[u8]) -> RawRequest {
        if data.first().is_some_and(u8::is_ascii_uppercase) {
            return RawRequest::parse_text(data);
        }
        let mut u = Gen {
            u: Unstructured::new(data.get(1..).unwrap_or(&[])),
            wild: data.first().is_some_and(|b| b % 3 == 0),
        };
        self.generate(&mut u).unwrap_or_else(|_| RawRequest {
            method: "GET".into(),
            target: "/".into(),
            headers: Vec::new(),
            body: Vec::new(),
            user: User::Admin,
            http2: true,
        })
    }

    pub fn generate(&self, u: &mut Gen<'_>) -> Result<RawRequest> {
        let method = if wild(u, 1, 16)? {
            token(u)?
        } else {
            u.choose(METHODS)?.to_string()
        };
        let resource = u.choose(&self.resources)?.clone();
        let (group, version, res, kind, namespaced, subs) = resource;
        let mut name = None;
        let path = match u.int_in_range(0..=15)? {
            0 => u.choose(DISCOVERY_PATHS)?.to_string(),
            1 => u.choose(OTHER_PATHS)?.to_string(),
            2 => format!("/{}", segments(u)?),
            _ => {
                let version = if wild(u, 1, 16)? {
                    segment(u)?
                } else {
                    version.clone()
                };
                let mut p = if group.is_empty() {
                    format!("/api/{version}")
                } else {
                    format!("/apis/{group}/{version}")
                };
                if u.ratio(1, 10)? {
                    p.push_str("/watch");
                }
                if (namespaced && !u.ratio(1, 6)?) || u.ratio(1, 10)? {
                    let _ = write!(p, "/namespaces/{}", pick_or(u, NAMESPACES)?);
                }
                let _ = write!(p, "/{res}");
                // Creates address the collection; the other verbs mostly an object.
                let named = if method == "POST" {
                    u.ratio(1, 8)?
                } else {
                    u.ratio(2, 3)?
                };
                if named {
                    let n = pick_or(u, NAMES)?;
                    let _ = write!(p, "/{n}");
                    name = Some(n);
                    if u.ratio(1, 5)? {
                        let sub = if !subs.is_empty() && u.ratio(2, 3)? {
                            u.choose(&subs)?.clone()
                        } else {
                            pick_or(u, SUBRESOURCES)?
                        };
                        let _ = write!(p, "/{sub}");
                    }
                }
                if u.ratio(1, 20)? {
                    p.push('/');
                }
                p
            }
        };
        let mut query = form_urlencoded::Serializer::new(String::new());
        let params = if u.wild { MAX_PARAMS } else { 3 };
        for _ in 0..u.int_in_range(0..=params)? {
            let key = if wild(u, 1, 12)? {
                text(u)?
            } else {
                u.choose(PARAMS)?.to_string()
            };
            query.append_pair(&key, &value(u)?);
        }
        let query = query.finish();
        let target = if query.is_empty() && !u.ratio(1, 20)? {
            path
        } else {
            format!("{path}?{query}")
        };

        let mut headers = Vec::new();
        if u.ratio(3, 4)? {
            let accept = if wild(u, 1, 10)? {
                text(u)?
            } else if u.ratio(1, 8)? {
                format!("{}, {}", u.choose(ACCEPTS)?, u.choose(ACCEPTS)?)
            } else {
                u.choose(ACCEPTS)?.to_string()
            };
            headers.push(("accept".to_string(), accept));
        }
        let content_type = if wild(u, 1, 12)? {
            None
        } else if wild(u, 1, 12)? {
            Some(text(u)?)
        } else if u.wild {
            Some(u.choose(CONTENT_TYPES)?.to_string())
        } else {
            // The types a clean request's verb takes.
            let fits: &[&str] = match method.as_str() {
                "PATCH" => &CONTENT_TYPES[4..9],
                _ => &CONTENT_TYPES[..4],
            };
            Some(u.choose(fits)?.to_string())
        };
        if let Some(ct) = &content_type {
            headers.push(("content-type".to_string(), ct.clone()));
        }
        let extra = if u.wild { 2 } else { 0 };
        for _ in 0..u.int_in_range(0..=extra)? {
            let value = if u.ratio(1, 3)? {
                text(u)?
            } else {
                u.choose(HEADER_VALUES)?.to_string()
            };
            headers.push((u.choose(EXTRA_HEADERS)?.to_string(), value));
        }

        let api_version = if group.is_empty() {
            version.clone()
        } else {
            format!("{group}/{version}")
        };
        let doc = DocShape {
            api_version: &api_version,
            kind: &kind,
            name: name.as_deref(),
        };
        let body = body(u, content_type.as_deref().unwrap_or(""), &doc)?;
        let first = if u.wild { 0 } else { 2 };
        let user = match u.int_in_range(first..=15)? {
            0 => User::Anonymous,
            1 => User::Named {
                name: pick_or(u, &["system:node:node-1", "alice", ""])?,
                groups: vec![pick_or(u, &["system:nodes", "system:authenticated"])?],
            },
            _ => User::Admin,
        };
        Ok(RawRequest {
            method,
            target,
            headers,
            body,
            user,
            http2: u.arbitrary()?,
        })
    }
}

/// The bytes a request is built from, and whether it is a wild one: arbitrary text in any
/// place and many parameters, or a clean one (the vocabulary only, a content type that fits
/// its verb, the admin) that gets past the first checks to the handlers' depths.
pub struct Gen<'a> {
    u: Unstructured<'a>,
    wild: bool,
}

impl<'a> Deref for Gen<'a> {
    type Target = Unstructured<'a>;
    fn deref(&self) -> &Unstructured<'a> {
        &self.u
    }
}

impl DerefMut for Gen<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.u
    }
}

/// `ratio(n, d)` for a wild request; never for a clean one.
fn wild(u: &mut Gen<'_>, n: u8, d: u8) -> Result<bool> {
    Ok(u.wild && u.ratio(n, d)?)
}

/// What a generated object claims to be.
struct DocShape<'a> {
    api_version: &'a str,
    kind: &'a str,
    name: Option<&'a str>,
}

/// A body for the request's content type: most often the shape that type promises (an
/// object, a patch of its kind, DeleteOptions), sometimes another shape or raw bytes.
fn body(u: &mut Gen<'_>, content_type: &str, doc: &DocShape<'_>) -> Result<Vec<u8>> {
    let first = if u.wild { 0 } else { 3 };
    match u.int_in_range(first..=9)? {
        0 => return Ok(Vec::new()),
        1 => return Ok(u.arbitrary::<&[u8]>()?.to_vec()),
        2 => {
            // A protobuf envelope around arbitrary bytes: lengths and tags at odds with the rest.
            let mut out = b"k8s\0".to_vec();
            out.extend_from_slice(u.arbitrary::<&[u8]>()?);
            return Ok(out);
        }
        _ => {}
    }
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let value = match mime.as_str() {
        "application/json-patch+json" => json_patch(u)?,
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
            let mut v = object(u, doc)?;
            if u.ratio(1, 2)? {
                directives(u, &mut v)?;
            }
            v
        }
        _ if u.ratio(1, 8)? => delete_options(u)?,
        _ => object(u, doc)?,
    };
    Ok(match mime.as_str() {
        "application/yaml" | "application/apply-patch+yaml" => {
            kapi_codec::yaml::to_yaml(&value).into_bytes()
        }
        "application/vnd.kubernetes.protobuf" => {
            let json = serde_json::to_vec(&value).unwrap_or_default();
            let mut pb = Vec::new();
            match kapi_codec::to_pb::json_to_envelope(
                &json,
                None,
                kapi_codec::FieldValidation::Ignore,
                &mut pb,
            ) {
                Ok(_) => {
                    // Sometimes one byte changed: a valid frame with one length or tag off.
                    if !pb.is_empty() && u.ratio(1, 3)? {
                        let at = u.choose_index(pb.len())?;
                        pb[at] = u.arbitrary()?;
                    }
                    pb
                }
                Err(_) => json,
            }
        }
        _ => serde_json::to_vec(&value).unwrap_or_default(),
    })
}

/// An object of the addressed kind (or, sometimes, of another), with metadata whose every
/// field kapi reads takes edge values, and arbitrary spec, status and data.
fn object(u: &mut Gen<'_>, doc: &DocShape<'_>) -> Result<Value> {
    let mut o = Map::new();
    if !u.ratio(1, 10)? {
        let av = if wild(u, 1, 10)? {
            text(u)?
        } else {
            doc.api_version.to_string()
        };
        o.insert("apiVersion".into(), av.into());
    }
    if !u.ratio(1, 10)? {
        let kind = if u.ratio(1, 10)? {
            pick_or(u, &["Status", "DeleteOptions", "Pod", "ConfigMap", "List"])?
        } else {
            doc.kind.to_string()
        };
        o.insert("kind".into(), kind.into());
    }
    let mut meta = Map::new();
    match (doc.name, u.int_in_range(0..=5)?) {
        (_, 0) => {}
        (_, 1) => {
            meta.insert("generateName".into(), "gen-".into());
        }
        (Some(n), 2..=4) => {
            meta.insert("name".into(), n.into());
        }
        _ => {
            meta.insert("name".into(), pick_or(u, NAMES)?.into());
        }
    }
    if u.ratio(1, 4)? {
        meta.insert("namespace".into(), pick_or(u, NAMESPACES)?.into());
    }
    if u.ratio(1, 2)? {
        let mut labels = Map::new();
        for _ in 0..u.int_in_range(0..=3)? {
            labels.insert(pick_or(u, &["a", "b", "app", "a/b"])?, value(u)?.into());
        }
        meta.insert("labels".into(), labels.into());
    }
    for field in [
        "resourceVersion",
        "uid",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "finalizers",
        "ownerReferences",
        "annotations",
        "managedFields",
    ] {
        if u.ratio(1, 10)? {
            meta.insert(field.into(), json_value(u, 2)?);
        }
    }
    o.insert("metadata".into(), meta.into());
    for field in ["spec", "status", "data", "stringData", "binaryData", "type"] {
        if u.ratio(1, 3)? {
            let v = if field == "spec" && u.ratio(1, 2)? {
                pod_spec(u)?
            } else {
                json_value(u, MAX_JSON_DEPTH)?
            };
            o.insert(field.into(), v);
        }
    }
    Ok(o.into())
}

/// A pod spec that passes the first checks, so that defaulting and validation run.
fn pod_spec(u: &mut Gen<'_>) -> Result<Value> {
    let mut containers = Vec::new();
    for _ in 0..u.int_in_range(0..=3)? {
        containers.push(json!({
            "name": pick_or(u, &["c", "d", ""])?,
            "image": pick_or(u, &["busybox", ""])?,
            "ports": [{"containerPort": number(u)?}],
        }));
    }
    Ok(json!({
        "containers": containers,
        "replicas": number(u)?,
        "nodeName": pick_or(u, &["node-1", ""])?,
        "terminationGracePeriodSeconds": number(u)?,
    }))
}

/// Strategic merge patch directives scattered into a patch.
fn directives(u: &mut Gen<'_>, v: &mut Value) -> Result<()> {
    let Some(o) = v.as_object_mut() else {
        return Ok(());
    };
    let directive = u.choose(&[
        "$patch",
        "$retainKeys",
        "$setElementOrder/containers",
        "$deleteFromPrimitiveList/finalizers",
        "$setElementOrder/finalizers",
    ])?;
    o.insert(directive.to_string(), json_value(u, 2)?);
    if u.ratio(1, 2)? {
        o.insert(
            "spec".into(),
            json!({"containers": [{"name": "c", "$patch": pick_or(u, &["delete", "replace", "merge", "x"])?}]}),
        );
    }
    Ok(())
}

fn json_patch(u: &mut Gen<'_>) -> Result<Value> {
    let mut ops = Vec::new();
    for _ in 0..u.int_in_range(0..=MAX_PATCH_OPS)? {
        let mut op = Map::new();
        op.insert(
            "op".into(),
            pick_or(
                u,
                &["add", "remove", "replace", "move", "copy", "test", "Add"],
            )?
            .into(),
        );
        if !u.ratio(1, 12)? {
            op.insert("path".into(), pick_or(u, POINTERS)?.into());
        }
        if u.ratio(1, 3)? {
            op.insert("from".into(), pick_or(u, POINTERS)?.into());
        }
        if u.ratio(2, 3)? {
            op.insert("value".into(), json_value(u, 2)?);
        }
        ops.push(Value::Object(op));
    }
    Ok(if u.ratio(1, 10)? {
        json_value(u, 2)?
    } else {
        ops.into()
    })
}

fn delete_options(u: &mut Gen<'_>) -> Result<Value> {
    let mut o = Map::new();
    o.insert("kind".into(), "DeleteOptions".into());
    o.insert(
        "apiVersion".into(),
        pick_or(u, &["v1", "meta.k8s.io/v1", "x"])?.into(),
    );
    for field in [
        "gracePeriodSeconds",
        "propagationPolicy",
        "orphanDependents",
        "dryRun",
    ] {
        if u.ratio(1, 2)? {
            let v = match field {
                "gracePeriodSeconds" => number(u)?,
                "dryRun" => json!([pick_or(u, &["All", "x"])?]),
                _ => json_value(u, 1)?,
            };
            o.insert(field.into(), v);
        }
    }
    if u.ratio(1, 3)? {
        o.insert(
            "preconditions".into(),
            json!({"uid": pick_or(u, STRINGS)?, "resourceVersion": value(u)?}),
        );
    }
    Ok(o.into())
}

fn json_value(u: &mut Gen<'_>, depth: u32) -> Result<Value> {
    let top = if depth == 0 { 3 } else { 5 };
    Ok(match u.int_in_range(0..=top)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => number(u)?,
        3 => pick_or(u, STRINGS)?.into(),
        4 => {
            let mut items = Vec::new();
            for _ in 0..u.int_in_range(0..=MAX_ITEMS)? {
                items.push(json_value(u, depth - 1)?);
            }
            items.into()
        }
        _ => {
            let mut m = Map::new();
            for _ in 0..u.int_in_range(0..=MAX_ITEMS)? {
                m.insert(
                    pick_or(u, &["name", "a", "containers", "items", "$patch"])?,
                    json_value(u, depth - 1)?,
                );
            }
            m.into()
        }
    })
}

fn number(u: &mut Gen<'_>) -> Result<Value> {
    Ok(match u.int_in_range(0..=5)? {
        0 => json!(u.arbitrary::<i64>()?),
        1 => json!(u.arbitrary::<u64>()?),
        2 => json!(u.arbitrary::<f64>()?),
        3 => json!(i64::MIN),
        4 => json!(u64::MAX),
        _ => json!(u.int_in_range(-2..=3)?),
    })
}

/// A query value: an edge value, an arbitrary number, or arbitrary text.
fn value(u: &mut Gen<'_>) -> Result<String> {
    let first = if u.wild { 0 } else { 3 };
    Ok(match u.int_in_range(first..=7)? {
        0 => u.arbitrary::<i64>()?.to_string(),
        1 => u.arbitrary::<u64>()?.to_string(),
        2 => text(u)?,
        3 => "9".repeat(u.int_in_range(1..=40)?),
        _ => u.choose(VALUES)?.to_string(),
    })
}

/// One of `pool`, or (rarely) arbitrary text.
fn pick_or(u: &mut Gen<'_>, pool: &[&str]) -> Result<String> {
    if wild(u, 1, 12)? {
        text(u)
    } else {
        Ok(u.choose(pool)?.to_string())
    }
}

fn text(u: &mut Gen<'_>) -> Result<String> {
    let s: &str = u.arbitrary()?;
    Ok(s.chars().take(256).collect())
}

/// A method-like word of arbitrary letters.
fn token(u: &mut Gen<'_>) -> Result<String> {
    let s: String = text(u)?
        .chars()
        .filter(|c| c.is_ascii_alphabetic())
        .collect();
    Ok(if s.is_empty() { "X".into() } else { s })
}

/// A path segment of arbitrary bytes, percent-encoded so that it reaches the router.
fn segment(u: &mut Gen<'_>) -> Result<String> {
    let raw: &[u8] = u.arbitrary()?;
    Ok(percent(&raw[..raw.len().min(64)]))
}

fn segments(u: &mut Gen<'_>) -> Result<String> {
    let mut out = Vec::new();
    for _ in 0..u.int_in_range(0..=6)? {
        out.push(if u.ratio(1, 2)? {
            pick_or(
                u,
                &[
                    "api",
                    "apis",
                    "v1",
                    "namespaces",
                    "watch",
                    "default",
                    "pods",
                ],
            )?
        } else {
            segment(u)?
        });
    }
    Ok(out.join("/"))
}

fn percent(raw: &[u8]) -> String {
    let mut out = String::new();
    for &b in raw {
        if b.is_ascii_alphanumeric() || b"-._~:@".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}
