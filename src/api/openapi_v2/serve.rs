//! The `/openapi/v2` handler as kube-openapi's: the `Accept` clauses sorted as goautoneg sorts
//! them, the first clause matching JSON or either protobuf name wins (406 with an empty body
//! when none does, 503 when the document has no protobuf form); `ETag` (same for both forms),
//! `If-None-Match` and `If-Modified-Since` → 304, `Vary`, gzip.

use http::{HeaderValue, StatusCode, header};

use bytes::Bytes;

use super::{Form, cached, forms};
use crate::api::offload;
use crate::api::status::Status;
use crate::transport::{Body, Request, Response};

/// The protobuf form's media type that kubectl up to 1.28 sends (upstream still accepts it).
const PROTOBUF_DEPRECATED: &str = "com.github.proto-openapi.spec.v2@v1.0+protobuf";
/// The protobuf form's media type; responses always carry this one.
const PROTOBUF: &str = "com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// Clauses of an `Accept` header considered: the header's own size limit bounds it already;
/// this bounds the sort's quadratic work on a header of many tiny clauses.
const MAX_ACCEPT_CLAUSES: usize = 64;

/// The served forms in upstream's order of preference for a wildcard.
const ACCEPTED: [(&str, Form); 3] = [
    ("json", Form::Json),
    (PROTOBUF_DEPRECATED, Form::Protobuf),
    (PROTOBUF, Form::Protobuf),
];

/// One clause of an `Accept` header (goautoneg's `Accept`, parameters other than `q` dropped).
#[derive(Debug, Clone, PartialEq)]
struct Clause<'a> {
    kind: &'a str,
    sub: &'a str,
    q: f64,
}

/// goautoneg's `ParseAccept`: split on commas, `type/subtype` (a lone `*` is `*/*`), `q`
/// parsed as a float (0 when it does not parse), then sorted by q and specificity.
fn parse_accept(header: &str) -> Vec<Clause<'_>> {
    let mut clauses = Vec::new();
    for part in header.split(',').take(MAX_ACCEPT_CLAUSES) {
        let mut params = part.trim_matches(' ').split(';');
        let range = params.next().unwrap_or("");
        let mut sp = range.split('/');
        let kind = sp.next().unwrap_or("").trim_matches(' ');
        let sub = match (sp.next(), sp.next()) {
            (None, None) if kind == "*" => "*",
            (Some(sub), None) => sub.trim_matches(' '),
            _ => continue,
        };
        let mut q = 1.0;
        for param in params {
            if let Some((token, value)) = param.split_once('=')
                && token.trim_matches(' ') == "q"
            {
                q = go_parse_float32(value).unwrap_or(0.0);
            }
        }
        clauses.push(Clause { kind, sub, q });
    }
    // Go's sort.Sort on these lengths is an insertion sort: the same comparisons, the same
    // order (the comparator is not a strict order, so the algorithm matters).
    for i in 1..clauses.len() {
        let mut j = i;
        while j > 0 && less(&clauses[j], &clauses[j - 1]) {
            clauses.swap(j, j - 1);
            j -= 1;
        }
    }
    clauses
}

fn less(a: &Clause, b: &Clause) -> bool {
    a.q > b.q || (a.kind != "*" && b.kind == "*") || (a.sub != "*" && b.sub == "*")
}

/// `strconv.ParseFloat(s, 32)`: the text as written (no spaces), rounded to a float32.
fn go_parse_float32(s: &str) -> Option<f64> {
    if s.is_empty() || s.trim() != s {
        return None;
    }
    s.parse::<f32>().ok().map(f64::from)
}

/// The form the first matching clause names, if any.
fn negotiate(accept: &str) -> Option<Form> {
    let accept = if accept.is_empty() { "*/*" } else { accept };
    for clause in parse_accept(accept) {
        for (sub, form) in ACCEPTED {
            if (clause.kind == "application" || clause.kind == "*")
                && (clause.sub == sub || clause.sub == "*")
            {
                return Some(form);
            }
        }
    }
    None
}

/// `If-None-Match` as net/http's `ServeContent` reads it: a list of entity tags compared
/// weakly, or `*`.
fn none_match(header: &str, etag: &str) -> bool {
    header.split(',').any(|t| {
        let t = t.trim();
        t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag
    })
}

/// Whether the client takes gzip (the gzip handler's rule: `gzip` with a q above zero).
fn accepts_gzip(header: &str) -> bool {
    header.split(',').any(|part| {
        let mut params = part.split(';');
        let name = params.next().unwrap_or("").trim();
        let q = params
            .filter_map(|p| p.trim().strip_prefix("q="))
            .map(|v| v.trim().parse::<f64>().unwrap_or(0.0))
            .next_back()
            .unwrap_or(1.0);
        name.eq_ignore_ascii_case("gzip") && q > 0.0
    })
}

/// Answers `/openapi/v2` from the JSON document `json` whose hash is `hash`. A version's
/// first request converts it (and a first gzip request compresses it) on the offload pool,
/// not on the core; a full pool answers 429.
pub async fn serve(req: &Request, json: Bytes, hash: &str) -> Result<Response, Status> {
    let header = |name: header::HeaderName| {
        req.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let mut headers = http::HeaderMap::new();
    headers.append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    headers.append(header::VARY, HeaderValue::from_static("Accept"));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    let Some(form) = negotiate(header(header::ACCEPT)) else {
        return Ok(Response {
            status: StatusCode::NOT_ACCEPTABLE,
            headers,
            body: Body::Full(Bytes::new()),
        });
    };
    let doc = match cached(hash) {
        Some(doc) => doc,
        None => {
            let key = hash.to_string();
            offload::run(json.len(), move || forms(&json, &key)).await?
        }
    };
    if form == Form::Protobuf && doc.protobuf_failed {
        return Ok(Response {
            status: StatusCode::SERVICE_UNAVAILABLE,
            headers,
            body: Body::Full(Bytes::new()),
        });
    }
    let etag = format!("\"{}\"", doc.etag);
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    // net/http's ServeContent: If-None-Match first (a match is 304 for GET and HEAD, 412
    // otherwise); without it, If-Modified-Since at or after Last-Modified is 304.
    let get_or_head = req.method == http::Method::GET || req.method == http::Method::HEAD;
    let if_none_match = header(header::IF_NONE_MATCH);
    let not_modified = if !if_none_match.is_empty() {
        none_match(if_none_match, &etag)
    } else {
        get_or_head
            && parse_http_date(header(header::IF_MODIFIED_SINCE))
                .is_some_and(|since| doc.last_modified_secs <= since)
    };
    if not_modified {
        return Ok(Response {
            status: if get_or_head {
                StatusCode::NOT_MODIFIED
            } else {
                StatusCode::PRECONDITION_FAILED
            },
            headers,
            body: Body::Full(Bytes::new()),
        });
    }
    let content_type = match form {
        Form::Json => "application/json".to_string(),
        Form::Protobuf => format!("application/{PROTOBUF}"),
    };
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&doc.last_modified) {
        headers.insert(header::LAST_MODIFIED, v);
    }
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let body = if accepts_gzip(header(header::ACCEPT_ENCODING)) {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        match doc.gzipped_if_made(form) {
            Some(gz) => gz.clone(),
            None => {
                let size = doc.body(form).len();
                offload::run(size, move || doc.gzipped(form).clone()).await?
            }
        }
    } else {
        doc.body(form).clone()
    };
    Ok(Response {
        status: StatusCode::OK,
        headers,
        body: Body::Full(body),
    })
}

/// Seconds since the epoch of an HTTP date in its preferred form (`Wed, 02 Dec 2026 06:36:57
/// GMT`); the obsolete RFC 850 and asctime forms net/http also reads are not taken.
fn parse_http_date(s: &str) -> Option<u64> {
    let mut parts = s.split(' ');
    let (_weekday, day, month, year, time, zone) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if parts.next().is_some() || zone != "GMT" || day.len() != 2 || year.len() != 4 {
        return None;
    }
    let day: i64 = day.parse().ok()?;
    let year: i64 = year.parse().ok()?;
    let month = MONTHS.iter().position(|m| *m == month)? as i64 + 1;
    let mut hms = time.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 || hms.next().is_some() {
        return None;
    }
    // Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days)
        .ok()?
        .checked_mul(86_400)?
        .checked_add(h * 3600 + m * 60 + sec)
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// An HTTP date (`Wed, 02 Dec 2026 06:36:57 GMT`).
pub fn http_date(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[(days.rem_euclid(7)) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_kubectl_gets_protobuf_and_the_rest_json() {
        assert_eq!(negotiate(PROTOBUF_DEPRECATED_ACCEPT), Some(Form::Protobuf));
        assert_eq!(
            negotiate("application/com.github.proto-openapi.spec.v2.v1.0+protobuf"),
            Some(Form::Protobuf)
        );
        assert_eq!(negotiate(""), Some(Form::Json));
        assert_eq!(negotiate("*/*"), Some(Form::Json));
        assert_eq!(negotiate("*"), Some(Form::Json));
        assert_eq!(negotiate("application/*"), Some(Form::Json));
        assert_eq!(negotiate("application/json"), Some(Form::Json));
        assert_eq!(negotiate("text/html"), None);
        assert_eq!(negotiate("application/yaml"), None);
        assert_eq!(negotiate("application/json/x"), None);
    }

    const PROTOBUF_DEPRECATED_ACCEPT: &str =
        "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

    #[test]
    fn q_values_order_the_clauses_as_goautoneg_does() {
        assert_eq!(
            negotiate(
                "application/json;q=0.5, application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
            ),
            Some(Form::Protobuf)
        );
        assert_eq!(
            negotiate(
                "application/com.github.proto-openapi.spec.v2@v1.0+protobuf;q=0.1, application/json;q=0.9"
            ),
            Some(Form::Json)
        );
        // q=0 is not "not acceptable" to goautoneg: the clause still matches.
        assert_eq!(negotiate("application/json;q=0"), Some(Form::Json));
        // A q that does not parse is 0; the protobuf clause then comes first.
        assert_eq!(
            negotiate(
                "application/json;q=x, application/com.github.proto-openapi.spec.v2@v1.0+protobuf;q=0.1"
            ),
            Some(Form::Protobuf)
        );
        // Same q: a specific type before a wildcard.
        assert_eq!(
            negotiate("*/*, application/com.github.proto-openapi.spec.v2@v1.0+protobuf"),
            Some(Form::Protobuf)
        );
    }

    #[test]
    fn goautoneg_parses_clauses() {
        let c = parse_accept("text/plain; q=0.5, */*;q=0.1, bad, application/json");
        assert_eq!(
            c,
            vec![
                Clause {
                    kind: "application",
                    sub: "json",
                    q: 1.0
                },
                Clause {
                    kind: "text",
                    sub: "plain",
                    q: 0.5
                },
                Clause {
                    kind: "*",
                    sub: "*",
                    q: f64::from(0.1f32)
                },
            ]
        );
    }

    #[test]
    fn if_none_match_compares_weakly_and_takes_lists() {
        assert!(none_match("\"A\"", "\"A\""));
        assert!(none_match("W/\"A\"", "\"A\""));
        assert!(none_match("\"B\", \"A\"", "\"A\""));
        assert!(none_match("*", "\"A\""));
        assert!(!none_match("\"B\"", "\"A\""));
        assert!(!none_match("", "\"A\""));
    }

    #[test]
    fn gzip_only_when_asked_with_a_positive_q() {
        assert!(accepts_gzip("gzip"));
        assert!(accepts_gzip("deflate, gzip;q=0.5"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip(""));
        assert!(!accepts_gzip("identity"));
    }

    #[test]
    fn http_dates() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_796_193_417);
        assert_eq!(http_date(t), "Wed, 02 Dec 2026 06:36:57 GMT");
        assert_eq!(
            http_date(std::time::UNIX_EPOCH),
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
    }
}
