//! Request info: what an API request addresses (verb, group, version, resource, namespace,
//! name, subresource) and its query options, read from the method, path and query string as
//! upstream's RequestInfoFactory reads them. First step of every request after the transport.

use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }
}

/// A request for a resource (`/api/v1/...` or `/apis/<group>/<version>/...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRequest {
    pub verb: Verb,
    pub group: String,
    pub version: String,
    pub resource: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// What a path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `/api`, `/apis`, `/api/v1`, `/apis/<group>`, `/apis/<group>/<version>`.
    Discovery {
        path: String,
    },
    Resource(ResourceRequest),
    /// `/version`, `/healthz`, `/openapi/...`, anything else outside the resource tree.
    Other {
        path: String,
    },
}

/// Query parameters (decoded; the last value wins, as Go's `url.Values.Get` takes the first —
/// repeated parameters are rare and upstream takes the first, so we do too).
#[derive(Debug, Default, Clone)]
pub struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(query: Option<&str>) -> Query {
        let mut map = HashMap::new();
        if let Some(q) = query {
            for (k, v) in form_urlencoded::parse(q.as_bytes()) {
                map.entry(k.into_owned()).or_insert_with(|| v.into_owned());
            }
        }
        Query(map)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// An integer parameter as upstream's parameter codec reads an `*int64` (strconv.ParseInt,
    /// base 10): absent is `None`; anything else that is not an int64 is a 400 with Go's
    /// message, as upstream answers it.
    pub fn int64(&self, key: &str) -> Result<Option<i64>, super::status::Status> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        parse_int64(v).map(Some).map_err(|why| {
            super::status::Status::bad_request(format!("strconv.ParseInt: parsing {v:?}: {why}"))
        })
    }

    /// A boolean parameter as upstream reads it: `true`, `1`, or present and empty for
    /// `watch`.
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1" | "True" | "TRUE"))
    }
}

/// Go's `strconv.ParseInt(s, 10, 64)`: an optional sign and decimal digits; the error is Go's
/// wording ("invalid syntax" or "value out of range").
pub fn parse_int64(s: &str) -> Result<i64, &'static str> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("invalid syntax");
    }
    s.parse::<i64>().map_err(|_| "value out of range")
}

/// Subresources of a namespace that are not a resource inside it.
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

/// Reads the target of a request. `None` when the path is in the resource tree but
/// malformed (the caller answers 404).
pub fn parse(method: &http::Method, path: &str, query: &Query) -> Option<Target> {
    let trimmed = path.trim_matches('/');
    let mut parts: Vec<&str> = if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split('/').collect()
    };
    let group;
    let version;
    match parts.first() {
        Some(&"api") => {
            if parts.len() < 3 {
                return Some(Target::Discovery {
                    path: format!("/{trimmed}"),
                });
            }
            group = String::new();
            version = parts[1].to_string();
            parts.drain(..2);
        }
        Some(&"apis") => {
            if parts.len() < 4 {
                return Some(Target::Discovery {
                    path: format!("/{trimmed}"),
                });
            }
            group = parts[1].to_string();
            version = parts[2].to_string();
            parts.drain(..3);
        }
        _ => {
            return Some(Target::Other {
                path: path.to_string(),
            });
        }
    }
    let mut verb_watch = false;
    if parts.first() == Some(&"watch") {
        verb_watch = true;
        parts.remove(0);
    }
    let mut namespace = None;
    if parts.first() == Some(&"namespaces") && parts.len() > 1 {
        namespace = Some(parts[1].to_string());
        if parts.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&parts[2]) {
            parts.drain(..2);
        }
    }
    // A proxy subresource carries the proxied path after it (`nodes/n1/proxy/metrics`).
    let proxied = parts.len() > 3 && parts[2] == "proxy";
    if proxied {
        parts.truncate(3);
    }
    if parts.is_empty() || parts.iter().any(|p| p.is_empty()) || parts.len() > 3 {
        return None;
    }
    let resource = parts[0].to_string();
    let name = parts.get(1).map(|s| s.to_string());
    let subresource = parts.get(2).map(|s| s.to_string());
    // `/namespaces/<name>` addresses the namespace object, not a namespace scope.
    if resource == "namespaces" && name.is_some() && namespace.as_deref() == name.as_deref() {
        namespace = None;
    }
    let watch = verb_watch || query.flag("watch");
    let verb = match (method.as_str(), name.is_some()) {
        ("GET" | "HEAD", true) if watch => Verb::Watch,
        ("GET" | "HEAD", true) => Verb::Get,
        ("GET" | "HEAD", false) if watch => Verb::Watch,
        ("GET" | "HEAD", false) => Verb::List,
        ("POST", _) => Verb::Create,
        ("PUT", _) => Verb::Update,
        ("PATCH", _) => Verb::Patch,
        ("DELETE", true) => Verb::Delete,
        ("DELETE", false) => Verb::DeleteCollection,
        _ => return None,
    };
    Some(Target::Resource(ResourceRequest {
        verb,
        group,
        version,
        resource,
        namespace,
        name,
        subresource,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    fn res(method: Method, path: &str, query: &str) -> ResourceRequest {
        match parse(&method, path, &Query::parse(Some(query))) {
            Some(Target::Resource(r)) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn paths_are_read_as_upstream_reads_them() {
        let r = res(Method::GET, "/api/v1/namespaces/default/pods/nginx", "");
        assert_eq!(
            (
                r.verb,
                r.group.as_str(),
                r.version.as_str(),
                r.resource.as_str()
            ),
            (Verb::Get, "", "v1", "pods")
        );
        assert_eq!(
            (r.namespace.as_deref(), r.name.as_deref()),
            (Some("default"), Some("nginx"))
        );
        let r = res(Method::GET, "/apis/apps/v1/deployments", "watch=true");
        assert_eq!(
            (r.verb, r.group.as_str(), r.namespace),
            (Verb::Watch, "apps", None)
        );
        let r = res(Method::GET, "/api/v1/watch/namespaces/ns/pods", "");
        assert_eq!((r.verb, r.namespace.as_deref()), (Verb::Watch, Some("ns")));
        let r = res(Method::PUT, "/api/v1/namespaces/ns/pods/p/status", "");
        assert_eq!(
            (r.verb, r.subresource.as_deref()),
            (Verb::Update, Some("status"))
        );
        let r = res(Method::GET, "/api/v1/namespaces/kube-system", "");
        assert_eq!(
            (r.resource.as_str(), r.name.as_deref(), r.namespace),
            ("namespaces", Some("kube-system"), None)
        );
        let r = res(Method::PUT, "/api/v1/namespaces/ns1/finalize", "");
        assert_eq!(
            (
                r.resource.as_str(),
                r.name.as_deref(),
                r.subresource.as_deref()
            ),
            ("namespaces", Some("ns1"), Some("finalize"))
        );
        let r = res(Method::DELETE, "/api/v1/namespaces/ns/configmaps", "");
        assert_eq!(r.verb, Verb::DeleteCollection);
        assert!(matches!(
            parse(&Method::GET, "/apis/apps", &Query::default()),
            Some(Target::Discovery { .. })
        ));
        assert!(matches!(
            parse(&Method::GET, "/version", &Query::default()),
            Some(Target::Other { .. })
        ));
        assert_eq!(
            parse(
                &Method::GET,
                "/api/v1/namespaces/ns/pods/a/b/c",
                &Query::default()
            ),
            None
        );
    }

    #[test]
    fn integers_are_parsed_as_gos_parseint() {
        assert_eq!(parse_int64("42"), Ok(42));
        assert_eq!(parse_int64("-7"), Ok(-7));
        assert_eq!(parse_int64("+7"), Ok(7));
        assert_eq!(parse_int64("9223372036854775807"), Ok(i64::MAX));
        assert_eq!(
            parse_int64("18446744073709551615"),
            Err("value out of range")
        );
        assert_eq!(parse_int64("1e3"), Err("invalid syntax"));
        assert_eq!(parse_int64(""), Err("invalid syntax"));
        assert_eq!(parse_int64("-"), Err("invalid syntax"));
        let q = Query::parse(Some("timeoutSeconds=18446744073709551615&limit=5"));
        let err = q.int64("timeoutSeconds").unwrap_err();
        assert_eq!(err.code, 400);
        assert_eq!(
            err.message,
            "strconv.ParseInt: parsing \"18446744073709551615\": value out of range"
        );
        assert_eq!(q.int64("limit").ok().flatten(), Some(5));
        assert_eq!(q.int64("absent").ok().flatten(), None);
    }

    #[test]
    fn query_values_are_decoded() {
        let q = Query::parse(Some(
            "labelSelector=app%3Dweb%2Ctier+in+(a)&limit=5&limit=6",
        ));
        assert_eq!(q.get("labelSelector"), Some("app=web,tier in (a)"));
        assert_eq!(q.get("limit"), Some("5"));
    }
}
