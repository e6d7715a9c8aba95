//! Kubernetes' URL library: `url`, `isURL`, `getScheme`, `getHost`, `getHostname`, `getPort`,
//! `getEscapedPath`, `getQuery`. Go's `net/url` is the contract (`ParseRequestURI` decides
//! what is a URL: an absolute URI or an absolute path), so the parts are split here as Go
//! splits them rather than by a WHATWG parser, which normalizes (`https://a` has path `/`
//! there, `` in Go).

use std::collections::HashMap;
use std::sync::Arc;

use ::cel::objects::{Key, Map, Opaque};
use ::cel::{ExecutionError, Value as CelValue};

use super::library::{Call, Overload, fail};

pub(super) const OVERLOADS: &[(&str, Overload)] = &[
    ("url", url),
    ("isURL", is_url),
    ("getScheme", get_scheme),
    ("getHost", get_host),
    ("getHostname", get_hostname),
    ("getPort", get_port),
    ("getEscapedPath", get_escaped_path),
    ("getQuery", get_query),
];

/// A parsed URL, as Go's `url.URL` holds the parts these functions read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    scheme: String,
    host: String,
    /// The path as written (escaped), without query and fragment.
    raw_path: String,
    raw_query: String,
}

impl Opaque for Url {
    fn runtime_type_name(&self) -> &str {
        "kubernetes.URL"
    }
}

type Out = Option<Result<CelValue, ExecutionError>>;

/// Go's `getScheme`: the scheme, or none when the first colon is not preceded by one.
fn split_scheme(s: &str) -> Result<(&str, &str), String> {
    for (i, b) in s.bytes().enumerate() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
            b':' if i == 0 => return Err("missing protocol scheme".into()),
            b':' => return Ok((&s[..i], &s[i + 1..])),
            _ => return Ok(("", s)),
        }
    }
    Ok(("", s))
}

/// Go's `unescape` check: every `%` starts a two-hex-digit escape.
fn check_escapes(s: &str) -> Result<(), String> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let ok =
                b.len() > i + 2 && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit();
            if !ok {
                let mut end = (i + 3).min(b.len());
                while !s.is_char_boundary(end) {
                    end += 1;
                }
                return Err(format!("invalid URL escape {:?}", &s[i..end]));
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(())
}

/// Go's `url.ParseRequestURI` (`request`) or `url.Parse`.
fn parse(raw: &str, request: bool) -> Result<Url, String> {
    let go_err = |why: String| format!("parse {raw:?}: {why}");
    if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(go_err("net/url: invalid control character in URL".into()));
    }
    let mut rest = raw;
    if !request && let Some((before, _fragment)) = rest.split_once('#') {
        rest = before;
    }
    if rest.is_empty() && request {
        return Err(go_err("empty url".into()));
    }
    let (scheme, after) = split_scheme(rest).map_err(go_err)?;
    let mut rest = after;
    let mut raw_query = String::new();
    if let Some((before, query)) = rest.split_once('?') {
        raw_query = query.to_string();
        rest = before;
    }
    if !rest.starts_with('/') {
        if !scheme.is_empty() {
            // An opaque URL (`mailto:x`): no host or path.
            return Ok(Url {
                scheme: scheme.to_ascii_lowercase(),
                host: String::new(),
                raw_path: String::new(),
                raw_query,
            });
        }
        if request {
            return Err(go_err("invalid URI for request".into()));
        }
    }
    let mut host = String::new();
    if (!scheme.is_empty() || !request) && rest.starts_with("//") {
        let authority_end = rest[2..].find('/').map_or(rest.len(), |i| i + 2);
        let authority = &rest[2..authority_end];
        rest = &rest[authority_end..];
        let host_part = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        check_host(host_part).map_err(go_err)?;
        host = host_part.to_string();
    }
    check_escapes(rest).map_err(go_err)?;
    Ok(Url {
        scheme: scheme.to_ascii_lowercase(),
        host,
        raw_path: rest.to_string(),
        raw_query,
    })
}

/// Go's `parseHost` checks: a bracketed IPv6 literal, and a numeric port after the last colon.
fn check_host(host: &str) -> Result<(), String> {
    let port = if host.starts_with('[') {
        let Some(close) = host.find(']') else {
            return Err("missing ']' in host".into());
        };
        let after = &host[close + 1..];
        if !after.is_empty() && !after.starts_with(':') {
            return Err(format!("invalid port {after:?} after host"));
        }
        after
    } else {
        host.rfind(':').map_or("", |i| &host[i..])
    };
    if !port.is_empty() && !port[1..].bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("invalid port {port:?} after host"));
    }
    Ok(())
}

impl Url {
    fn hostname(&self) -> &str {
        let h = &self.host;
        if let Some(rest) = h.strip_prefix('[') {
            return rest.find(']').map_or(rest, |i| &rest[..i]);
        }
        h.rfind(':').map_or(h, |i| &h[..i])
    }

    fn port(&self) -> &str {
        let h = &self.host;
        let after = match h.rfind(']') {
            Some(i) => &h[i + 1..],
            None => h,
        };
        match after.rfind(':') {
            Some(i) => &after[i + 1..],
            None => "",
        }
    }

    /// Go's `url.ParseQuery`: `&`-separated, `+` is a space, bad pairs skipped.
    fn query(&self) -> HashMap<String, Vec<String>> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for pair in self.raw_query.split('&').filter(|p| !p.is_empty()) {
            if pair.contains(';') {
                continue;
            }
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| -> Option<String> {
                check_escapes(s).ok()?;
                let s = s.replace('+', " ");
                percent_encoding::percent_decode_str(&s)
                    .decode_utf8()
                    .ok()
                    .map(|c| c.into_owned())
            };
            if let (Some(k), Some(v)) = (decode(k), decode(v)) {
                out.entry(k).or_default().push(v);
            }
        }
        out
    }
}

fn string(s: &str) -> CelValue {
    CelValue::String(Arc::new(s.to_string()))
}

fn str_arg(c: &Call) -> Option<&str> {
    match c.arg(0) {
        Some(CelValue::String(s)) if c.this.is_none() => Some(s.as_str()),
        _ => None,
    }
}

fn this(c: &Call) -> Option<&Url> {
    match &c.this {
        Some(CelValue::Opaque(o)) => o.downcast_ref::<Url>(),
        _ => None,
    }
}

fn url(c: &Call) -> Out {
    let s = str_arg(c)?;
    let parsed = parse(s, true).and_then(|_| parse(s, false));
    Some(parsed.map(|u| CelValue::Opaque(Arc::new(u))).map_err(|e| {
        fail(format!(
            "URL parse error during conversion from string: {e}"
        ))
    }))
}

fn is_url(c: &Call) -> Out {
    Some(Ok(CelValue::Bool(parse(str_arg(c)?, true).is_ok())))
}

fn get_scheme(c: &Call) -> Out {
    Some(Ok(string(&this(c)?.scheme)))
}

fn get_host(c: &Call) -> Out {
    Some(Ok(string(&this(c)?.host)))
}

fn get_hostname(c: &Call) -> Out {
    Some(Ok(string(this(c)?.hostname())))
}

fn get_port(c: &Call) -> Out {
    Some(Ok(string(this(c)?.port())))
}

/// Go's `EscapedPath`: the path as written when it is validly encoded, else re-escaped.
fn escaped_path(raw: &str) -> String {
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || b"-_.~".contains(&b);
    let valid = raw
        .bytes()
        .all(|b| unreserved(b) || b"!$&'()*+,;=:@[]%/".contains(&b));
    if valid {
        return raw.to_string();
    }
    let decoded: Vec<u8> = percent_encoding::percent_decode_str(raw).collect();
    let mut out = String::with_capacity(decoded.len() * 3);
    for b in decoded {
        if unreserved(b) || b"$&+,/:;=@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn get_escaped_path(c: &Call) -> Out {
    Some(Ok(CelValue::String(Arc::new(escaped_path(
        &this(c)?.raw_path,
    )))))
}

fn get_query(c: &Call) -> Out {
    let q = this(c)?.query();
    let map: HashMap<Key, CelValue> = q
        .into_iter()
        .map(|(k, vs)| {
            let list = vs.iter().map(|v| string(v)).collect::<Vec<_>>();
            (Key::from(k), CelValue::List(Arc::new(list)))
        })
        .collect();
    Some(Ok(CelValue::Map(Map { map: Arc::new(map) })))
}

#[cfg(test)]
mod tests {
    use super::super::library::testing::{fails, holds};

    #[test]
    fn urls_as_upstream() {
        holds("isURL('https://example.com:80/path?query=val#fragment')");
        holds("isURL('/absolute-path') && !isURL('relative-path') && !isURL('')");
        holds("url('https://example.com:80/path').getScheme() == 'https'");
        holds("url('https://example.com:80/path').getHost() == 'example.com:80'");
        holds("url('https://example.com:80/path').getHostname() == 'example.com'");
        holds("url('https://[::1]:80/path').getHostname() == '::1'");
        holds("url('https://[::1]:80/path').getHost() == '[::1]:80'");
        holds("url('https://example.com:80/path').getPort() == '80'");
        holds("url('https://example.com/path').getPort() == ''");
        holds("url('https://example.com/with space/').getEscapedPath() == '/with%20space/'");
        holds("url('https://example.com/a%20b').getEscapedPath() == '/a%20b'");
        holds("url('https://example.com').getEscapedPath() == ''");
        holds("url('https://example.com/path#frag').getEscapedPath() == '/path'");
        holds(
            "url('https://example.com/path?k=a&k=b&j=c+d').getQuery() == {'k': ['a', 'b'], 'j': ['c d']}",
        );
        holds("url('https://example.com/path').getQuery() == {}");
        holds("url('/path?x=1').getScheme() == '' && url('/path?x=1').getHost() == ''");
        holds("!isURL('https://example.com/%aé')");
        fails(
            "url('../relative')",
            "URL parse error during conversion from string: parse \"../relative\": invalid URI for request",
        );
        fails(
            "url('https://a:b/')",
            "URL parse error during conversion from string: parse \"https://a:b/\": invalid port \":b\" after host",
        );
    }
}
