//! Content negotiation: which encoding (JSON, YAML, protobuf) and which shape (the object, a
//! Table, PartialObjectMetadata) a response takes from `Accept`, and what a request body is
//! from `Content-Type`, as upstream negotiates them.

use super::status::Status;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Json,
    Yaml,
    Protobuf,
}

impl Encoding {
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Json => "application/json",
            Encoding::Yaml => "application/yaml",
            Encoding::Protobuf => "application/vnd.kubernetes.protobuf",
        }
    }
}

/// What the client asked to receive instead of the object itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Object,
    Table,
    PartialObjectMetadata,
    PartialObjectMetadataList,
    /// Aggregated discovery (`as=APIGroupDiscoveryList`, apidiscovery.k8s.io/v2).
    AggregatedDiscovery,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    pub encoding: Encoding,
    pub shape: Shape,
}

const AVAILABLE: &str = "application/json, application/yaml, application/vnd.kubernetes.protobuf";

/// One media range of an Accept header: type and its parameters.
struct MediaRange<'a> {
    mime: &'a str,
    params: Vec<(&'a str, &'a str)>,
}

fn media_ranges(header: &str) -> Vec<MediaRange<'_>> {
    header
        .split(',')
        .filter_map(|part| {
            let mut it = part.split(';');
            let mime = it.next()?.trim();
            if mime.is_empty() {
                return None;
            }
            let params = it
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.trim(), v.trim().trim_matches('"')))
                .collect();
            Some(MediaRange { mime, params })
        })
        .collect()
}

/// Chooses the response form from an Accept header. `shapes` are the shapes this endpoint
/// can produce besides the object (a list endpoint offers Table and
/// PartialObjectMetadataList; a watch offers none for now).
pub fn accept(header: Option<&str>, shapes: &[Shape]) -> Result<Accepted, Status> {
    accept_with(header, shapes, true)
}

/// `accept` for a resource without a protobuf form (custom resources): protobuf ranges are
/// passed over, as upstream's serializer list for them has none.
pub fn accept_json_only(header: Option<&str>, shapes: &[Shape]) -> Result<Accepted, Status> {
    accept_with(header, shapes, false)
}

fn accept_with(header: Option<&str>, shapes: &[Shape], protobuf: bool) -> Result<Accepted, Status> {
    let header = header.unwrap_or("").trim();
    if header.is_empty() {
        return Ok(Accepted {
            encoding: Encoding::Json,
            shape: Shape::Object,
        });
    }
    for range in media_ranges(header) {
        let q = range
            .params
            .iter()
            .find(|(k, _)| *k == "q")
            .map(|(_, v)| *v);
        if q.is_some_and(|q| q.parse::<f32>().map(|q| q <= 0.0).unwrap_or(false)) {
            continue;
        }
        let encoding = match range.mime.to_ascii_lowercase().as_str() {
            "application/json" | "application/*" | "*/*" => Encoding::Json,
            "application/yaml" => Encoding::Yaml,
            "application/vnd.kubernetes.protobuf" if protobuf => Encoding::Protobuf,
            _ => continue,
        };
        let param = |name: &str| {
            range
                .params
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| *v)
        };
        let shape = match (param("as"), param("g"), param("v")) {
            (None, _, _) => Shape::Object,
            (Some("Table"), Some("meta.k8s.io"), Some("v1" | "v1beta1")) => Shape::Table,
            (Some("PartialObjectMetadata"), Some("meta.k8s.io"), Some("v1" | "v1beta1")) => {
                Shape::PartialObjectMetadata
            }
            (Some("PartialObjectMetadataList"), Some("meta.k8s.io"), Some("v1" | "v1beta1")) => {
                Shape::PartialObjectMetadataList
            }
            (Some("APIGroupDiscoveryList"), Some("apidiscovery.k8s.io"), Some("v2")) => {
                Shape::AggregatedDiscovery
            }
            _ => continue,
        };
        if shape != Shape::Object && !shapes.contains(&shape) {
            continue;
        }
        if shape == Shape::Table && encoding != Encoding::Json && encoding != Encoding::Yaml {
            // Upstream serves Table as JSON (or YAML); a protobuf Table range is skipped.
            continue;
        }
        return Ok(Accepted { encoding, shape });
    }
    Err(Status::not_acceptable(AVAILABLE))
}

/// What a request body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyType {
    Json,
    Yaml,
    Protobuf,
    JsonPatch,
    MergePatch,
    StrategicMergePatch,
    ApplyYaml,
    ApplyCbor,
}

pub fn content_type(header: Option<&str>) -> Result<BodyType, Status> {
    let mime = header
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    Ok(match mime.as_str() {
        "" | "application/json" => BodyType::Json,
        "application/yaml" | "application/x-yaml" | "text/yaml" => BodyType::Yaml,
        "application/vnd.kubernetes.protobuf" => BodyType::Protobuf,
        "application/json-patch+json" => BodyType::JsonPatch,
        "application/merge-patch+json" => BodyType::MergePatch,
        "application/strategic-merge-patch+json" => BodyType::StrategicMergePatch,
        "application/apply-patch+yaml" => BodyType::ApplyYaml,
        "application/apply-patch+cbor" => BodyType::ApplyCbor,
        _ => return Err(Status::unsupported_media_type()),
    })
}

/// Whether JSON is pretty-printed: `?pretty=true`, or a User-Agent of curl, Wget or a
/// browser, as upstream decides.
pub fn pretty(query_pretty: Option<&str>, user_agent: Option<&str>) -> bool {
    match query_pretty {
        Some(v) => v == "true" || v == "1",
        None => user_agent.is_some_and(|ua| {
            ua.starts_with("curl") || ua.starts_with("Wget") || ua.starts_with("Mozilla/5.0")
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_and_client_go_headers_negotiate_as_upstream() {
        let table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        let list_shapes = [Shape::Table, Shape::PartialObjectMetadataList];
        assert_eq!(
            accept(Some(table), &list_shapes).unwrap().shape,
            Shape::Table
        );
        assert_eq!(
            accept(Some(table), &[]).unwrap(),
            Accepted {
                encoding: Encoding::Json,
                shape: Shape::Object
            }
        );
        let pb = "application/vnd.kubernetes.protobuf, */*";
        assert_eq!(accept(Some(pb), &[]).unwrap().encoding, Encoding::Protobuf);
        assert_eq!(accept(None, &[]).unwrap().encoding, Encoding::Json);
        assert_eq!(
            accept(Some("application/yaml"), &[]).unwrap().encoding,
            Encoding::Yaml
        );
        let err = accept(Some("text/html"), &[]).unwrap_err();
        assert_eq!((err.code, err.reason), (406, "NotAcceptable"));
    }

    #[test]
    fn body_types_and_pretty_printing() {
        assert_eq!(
            content_type(Some("application/strategic-merge-patch+json")).unwrap(),
            BodyType::StrategicMergePatch
        );
        assert_eq!(
            content_type(Some("application/json; charset=utf-8")).unwrap(),
            BodyType::Json
        );
        assert_eq!(content_type(Some("text/plain")).unwrap_err().code, 415);
        assert!(pretty(None, Some("curl/7.88.1")));
        assert!(!pretty(None, Some("kubectl/v1.32.0")));
        assert!(pretty(Some("true"), Some("kubectl/v1.32.0")));
    }
}
