//! `as=Table`: the server-side printing kubectl asks for. Columns are data per kind (upstream's
//! printers for the common kinds: a cell is a JSON path or one of a few computed values),
//! and every other kind gets upstream's default Name / Created At columns.

use serde_json::{Value, json};

/// How a cell is computed from the object.
#[derive(Clone, Copy)]
enum Cell {
    /// A JSON pointer; missing → `<none>` (or 0 for counts).
    Path(&'static str),
    /// A pointer read as a number; missing → 0.
    Int(&'static str),
    /// Number of keys of an object (or items of a list) at the pointer.
    Count(&'static str),
    /// metadata.creationTimestamp as a human age (`6s`, `5m`, `3h`, `2d`).
    Age,
    /// metadata.creationTimestamp as written.
    Created,
    /// Pod readiness: `ready/total` containers.
    PodReady,
    /// Pod status: reason, phase or terminating.
    PodStatus,
    /// Sum of container restarts.
    PodRestarts,
    /// `ready/desired` from two pointers.
    Ratio(&'static str, &'static str),
    /// A service's ports: `80/TCP,443/TCP` (with node ports as `80:30080/TCP`).
    ServicePorts,
    /// External IPs of a service, `<none>` when none.
    ExternalIp,
    /// Container names or images of a pod template at the pointer, comma-joined.
    Containers(&'static str),
    Images(&'static str),
    /// A label selector at the pointer (`app=web`), `<none>` when empty.
    Selector(&'static str),
    /// A node's Ready condition: `Ready`, `NotReady`, `Unknown`.
    NodeStatus,
    /// Node roles from `node-role.kubernetes.io/*` labels.
    NodeRoles,
    /// A number at the pointer, `<none>` when missing (upstream prints these as integers).
    IntOrNone(&'static str),
    /// The status of the condition of this type, `?` when there is none.
    ConditionStatus(&'static str),
}

struct Column {
    name: &'static str,
    ty: &'static str,
    format: &'static str,
    description: &'static str,
    priority: i32,
    cell: Cell,
}

const fn col(name: &'static str, cell: Cell) -> Column {
    Column {
        name,
        ty: "string",
        format: "",
        description: "",
        priority: 0,
        cell,
    }
}

const fn wide(name: &'static str, cell: Cell) -> Column {
    Column {
        name,
        ty: "string",
        format: "",
        description: "",
        priority: 1,
        cell,
    }
}

const NAME: Column = Column {
    name: "Name",
    ty: "string",
    format: "name",
    description: "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
    priority: 0,
    cell: Cell::Path("/metadata/name"),
};

const AGE: Column = Column {
    name: "Age",
    ty: "string",
    format: "",
    description: "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
    priority: 0,
    cell: Cell::Age,
};

const CREATED_AT: Column = Column {
    name: "Created At",
    ty: "date",
    format: "",
    description: AGE.description,
    priority: 0,
    cell: Cell::Created,
};

/// Upstream's printer columns for the common kinds (group, resource).
fn columns(group: &str, resource: &str) -> Vec<Column> {
    use Cell::*;
    match (group, resource) {
        ("", "pods") => vec![
            NAME,
            col("Ready", PodReady),
            col("Status", PodStatus),
            col("Restarts", PodRestarts),
            AGE,
            wide("IP", Path("/status/podIP")),
            wide("Node", Path("/spec/nodeName")),
            wide("Nominated Node", Path("/status/nominatedNodeName")),
            wide("Readiness Gates", Path("/spec/readinessGates")),
        ],
        ("", "namespaces") => vec![NAME, col("Status", Path("/status/phase")), AGE],
        ("", "configmaps") => vec![
            NAME,
            Column {
                ty: "integer",
                ..col("Data", Count("/data"))
            },
            AGE,
        ],
        ("", "secrets") => vec![
            NAME,
            col("Type", Path("/type")),
            Column {
                ty: "integer",
                ..col("Data", Count("/data"))
            },
            AGE,
        ],
        ("", "serviceaccounts") => vec![
            NAME,
            Column {
                ty: "integer",
                ..col("Secrets", Count("/secrets"))
            },
            AGE,
        ],
        ("", "services") => vec![
            NAME,
            col("Type", Path("/spec/type")),
            col("Cluster-IP", Path("/spec/clusterIP")),
            col("External-IP", ExternalIp),
            col("Port(s)", ServicePorts),
            AGE,
            wide("Selector", Selector("/spec/selector")),
        ],
        ("", "endpoints") => vec![NAME, col("Endpoints", Path("/subsets")), AGE],
        ("", "nodes") => vec![
            NAME,
            col("Status", NodeStatus),
            col("Roles", NodeRoles),
            AGE,
            col("Version", Path("/status/nodeInfo/kubeletVersion")),
            wide("Internal-IP", Path("/status/addresses/0/address")),
            wide("OS-Image", Path("/status/nodeInfo/osImage")),
            wide("Kernel-Version", Path("/status/nodeInfo/kernelVersion")),
            wide(
                "Container-Runtime",
                Path("/status/nodeInfo/containerRuntimeVersion"),
            ),
        ],
        ("", "events") => vec![
            col("Last Seen", Path("/lastTimestamp")),
            col("Type", Path("/type")),
            col("Reason", Path("/reason")),
            col("Object", Path("/involvedObject/name")),
            col("Message", Path("/message")),
        ],
        ("apps", "deployments") => vec![
            NAME,
            col("Ready", Ratio("/status/readyReplicas", "/spec/replicas")),
            Column {
                ty: "integer",
                ..col("Up-to-date", Int("/status/updatedReplicas"))
            },
            Column {
                ty: "integer",
                ..col("Available", Int("/status/availableReplicas"))
            },
            AGE,
            wide("Containers", Containers("/spec/template/spec/containers")),
            wide("Images", Images("/spec/template/spec/containers")),
            wide("Selector", Selector("/spec/selector")),
        ],
        ("apps", "replicasets") => vec![
            NAME,
            Column {
                ty: "integer",
                ..col("Desired", Int("/spec/replicas"))
            },
            Column {
                ty: "integer",
                ..col("Current", Int("/status/replicas"))
            },
            Column {
                ty: "integer",
                ..col("Ready", Int("/status/readyReplicas"))
            },
            AGE,
            wide("Containers", Containers("/spec/template/spec/containers")),
            wide("Images", Images("/spec/template/spec/containers")),
            wide("Selector", Selector("/spec/selector")),
        ],
        ("apps", "statefulsets") => vec![
            NAME,
            col("Ready", Ratio("/status/readyReplicas", "/spec/replicas")),
            AGE,
            wide("Containers", Containers("/spec/template/spec/containers")),
            wide("Images", Images("/spec/template/spec/containers")),
        ],
        ("apps", "daemonsets") => vec![
            NAME,
            Column {
                ty: "integer",
                ..col("Desired", Int("/status/desiredNumberScheduled"))
            },
            Column {
                ty: "integer",
                ..col("Current", Int("/status/currentNumberScheduled"))
            },
            Column {
                ty: "integer",
                ..col("Ready", Int("/status/numberReady"))
            },
            Column {
                ty: "integer",
                ..col("Up-to-date", Int("/status/updatedNumberScheduled"))
            },
            Column {
                ty: "integer",
                ..col("Available", Int("/status/numberAvailable"))
            },
            col(
                "Node Selector",
                Selector("/spec/template/spec/nodeSelector"),
            ),
            AGE,
            wide("Containers", Containers("/spec/template/spec/containers")),
            wide("Images", Images("/spec/template/spec/containers")),
            wide("Selector", Selector("/spec/selector")),
        ],
        ("batch", "jobs") => vec![
            NAME,
            col("Status", Path("/status/conditions/0/type")),
            col(
                "Completions",
                Ratio("/status/succeeded", "/spec/completions"),
            ),
            col("Duration", Path("/status/completionTime")),
            AGE,
            wide("Containers", Containers("/spec/template/spec/containers")),
            wide("Images", Images("/spec/template/spec/containers")),
            wide("Selector", Selector("/spec/selector")),
        ],
        ("batch", "cronjobs") => vec![
            NAME,
            col("Schedule", Path("/spec/schedule")),
            col("Timezone", Path("/spec/timeZone")),
            col("Suspend", Path("/spec/suspend")),
            Column {
                ty: "integer",
                ..col("Active", Count("/status/active"))
            },
            col("Last Schedule", Path("/status/lastScheduleTime")),
            AGE,
            wide(
                "Containers",
                Containers("/spec/jobTemplate/spec/template/spec/containers"),
            ),
            wide(
                "Images",
                Images("/spec/jobTemplate/spec/template/spec/containers"),
            ),
            wide("Selector", Selector("/spec/jobTemplate/spec/selector")),
        ],
        ("flowcontrol.apiserver.k8s.io", "flowschemas") => vec![
            NAME,
            col(
                "PriorityLevel",
                Path("/spec/priorityLevelConfiguration/name"),
            ),
            col("MatchingPrecedence", IntOrNone("/spec/matchingPrecedence")),
            col(
                "DistinguisherMethod",
                Path("/spec/distinguisherMethod/type"),
            ),
            AGE,
            col("MissingPL", ConditionStatus("Dangling")),
        ],
        ("flowcontrol.apiserver.k8s.io", "prioritylevelconfigurations") => vec![
            NAME,
            col("Type", Path("/spec/type")),
            col(
                "NominalConcurrencyShares",
                IntOrNone("/spec/limited/nominalConcurrencyShares"),
            ),
            col(
                "Queues",
                IntOrNone("/spec/limited/limitResponse/queuing/queues"),
            ),
            col(
                "HandSize",
                IntOrNone("/spec/limited/limitResponse/queuing/handSize"),
            ),
            col(
                "QueueLengthLimit",
                IntOrNone("/spec/limited/limitResponse/queuing/queueLengthLimit"),
            ),
            AGE,
        ],
        ("coordination.k8s.io", "leases") => {
            vec![NAME, col("Holder", Path("/spec/holderIdentity")), AGE]
        }
        ("coordination.k8s.io", "leasecandidates") => vec![
            NAME,
            col("LeaseName", Path("/spec/leaseName")),
            col("BinaryVersion", Path("/spec/binaryVersion")),
            col("EmulationVersion", Path("/spec/emulationVersion")),
            AGE,
        ],
        ("certificates.k8s.io", "clustertrustbundles") => {
            vec![NAME, col("SignerName", Path("/spec/signerName"))]
        }
        _ => vec![NAME, CREATED_AT],
    }
}

/// Go's `duration.HumanDuration` of the time since `created` (RFC 3339).
fn human_age(created: &str, now: i64) -> String {
    let Ok((secs, _)) = kapi_codec::goscalar::parse_rfc3339(created) else {
        return "<unknown>".into();
    };
    let d = (now - secs).max(0);
    let (s, m, h) = (d, d / 60, d / 3600);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        if h % 24 == 0 {
            format!("{}d", h / 24)
        } else {
            format!("{}d{}h", h / 24, h % 24)
        }
    } else if h < 24 * 365 * 2 {
        format!("{}d", h / 24)
    } else if h < 24 * 365 * 8 {
        let days = h / 24 - (h / 24 / 365) * 365;
        if days == 0 {
            format!("{}y", h / 24 / 365)
        } else {
            format!("{}y{}d", h / 24 / 365, days)
        }
    } else {
        format!("{}y", h / 24 / 365)
    }
}

fn text_of(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "<none>".into(),
        Some(Value::String(s)) if s.is_empty() => "<none>".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) if a.is_empty() => "<none>".into(),
        Some(other) => other.to_string(),
    }
}

/// A label selector (a LabelSelector or a plain map) as upstream prints it: `a=b,c in (d)`.
pub fn selector_text(v: Option<&Value>) -> String {
    let Some(v) = v else { return "<none>".into() };
    let labels = v.get("matchLabels").unwrap_or(v);
    let mut parts: Vec<String> = labels
        .as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}")))
                .collect()
        })
        .unwrap_or_default();
    if let Some(exprs) = v.get("matchExpressions").and_then(Value::as_array) {
        for e in exprs {
            let key = e["key"].as_str().unwrap_or("");
            let vals: Vec<&str> = e["values"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            parts.push(match e["operator"].as_str().unwrap_or("") {
                "In" => format!("{key} in ({})", vals.join(",")),
                "NotIn" => format!("{key} notin ({})", vals.join(",")),
                "Exists" => key.to_string(),
                _ => format!("!{key}"),
            });
        }
    }
    if parts.is_empty() {
        "<none>".into()
    } else {
        parts.join(",")
    }
}

fn cell(obj: &Value, c: Cell, now: i64) -> Value {
    use Cell::*;
    match c {
        Path(p) => json!(text_of(obj.pointer(p))),
        Int(p) => json!(obj.pointer(p).and_then(Value::as_i64).unwrap_or(0)),
        Count(p) => json!(match obj.pointer(p) {
            Some(Value::Object(o)) => o.len(),
            Some(Value::Array(a)) => a.len(),
            _ => 0,
        }),
        Age => json!(human_age(
            obj.pointer("/metadata/creationTimestamp")
                .and_then(Value::as_str)
                .unwrap_or(""),
            now
        )),
        IntOrNone(p) => match obj.pointer(p).and_then(Value::as_i64) {
            Some(n) => json!(n),
            None => json!("<none>"),
        },
        ConditionStatus(ty) => json!(
            obj.pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|cs| cs.iter().find(|c| c["type"] == ty))
                .and_then(|c| c["status"].as_str())
                .unwrap_or("?")
        ),
        Created => obj
            .pointer("/metadata/creationTimestamp")
            .cloned()
            .unwrap_or(Value::Null),
        PodReady => {
            let total = obj
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let ready = obj
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .map_or(0, |s| s.iter().filter(|c| c["ready"] == true).count());
            json!(format!("{ready}/{total}"))
        }
        PodStatus => {
            if obj.pointer("/metadata/deletionTimestamp").is_some() {
                return json!("Terminating");
            }
            let reason = obj
                .pointer("/status/reason")
                .and_then(Value::as_str)
                .filter(|r| !r.is_empty());
            let waiting = obj
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .and_then(|s| {
                    s.iter()
                        .find_map(|c| c.pointer("/state/waiting/reason").and_then(Value::as_str))
                });
            json!(
                reason
                    .or(waiting)
                    .or(obj.pointer("/status/phase").and_then(Value::as_str))
                    .unwrap_or("Unknown")
            )
        }
        PodRestarts => {
            let n: i64 = obj
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .map_or(0, |s| {
                    s.iter()
                        .map(|c| c["restartCount"].as_i64().unwrap_or(0))
                        .sum()
                });
            json!(n.to_string())
        }
        Ratio(a, b) => json!(format!(
            "{}/{}",
            obj.pointer(a).and_then(Value::as_i64).unwrap_or(0),
            obj.pointer(b).and_then(Value::as_i64).unwrap_or(0)
        )),
        ServicePorts => {
            let ports: Vec<String> = obj
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            let port = p["port"].as_i64().unwrap_or(0);
                            let proto = p["protocol"].as_str().unwrap_or("TCP");
                            match p["nodePort"].as_i64() {
                                Some(np) => format!("{port}:{np}/{proto}"),
                                None => format!("{port}/{proto}"),
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            json!(if ports.is_empty() {
                "<none>".to_string()
            } else {
                ports.join(",")
            })
        }
        ExternalIp => {
            let ips: Vec<&str> = obj
                .pointer("/spec/externalIPs")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            json!(if ips.is_empty() {
                "<none>".to_string()
            } else {
                ips.join(",")
            })
        }
        Containers(p) | Images(p) => {
            let field = if matches!(c, Containers(_)) {
                "name"
            } else {
                "image"
            };
            let list: Vec<&str> = obj
                .pointer(p)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|c| c[field].as_str()).collect())
                .unwrap_or_default();
            json!(list.join(","))
        }
        Selector(p) => json!(selector_text(obj.pointer(p))),
        NodeStatus => {
            let ready = obj
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
                .and_then(|c| c["status"].as_str());
            let mut s = match ready {
                Some("True") => "Ready".to_string(),
                Some("False") => "NotReady".to_string(),
                _ => "Unknown".to_string(),
            };
            if obj.pointer("/spec/unschedulable") == Some(&json!(true)) {
                s.push_str(",SchedulingDisabled");
            }
            json!(s)
        }
        NodeRoles => {
            let roles: Vec<&str> = obj
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .map(|l| {
                    l.keys()
                        .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
                        .filter(|r| !r.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            json!(if roles.is_empty() {
                "<none>".to_string()
            } else {
                roles.join(",")
            })
        }
    }
}

/// A Table of `objects` (served objects as JSON values); `metadata` is each row's
/// PartialObjectMetadata (as JSON values), `include_object` says what goes in rows.
pub fn table(
    group: &str,
    resource: &str,
    objects: &[Value],
    list_rv: Option<&str>,
    continue_token: &str,
    include: Include,
) -> Value {
    let now = unix_now();
    let cols = columns(group, resource);
    let defs: Vec<Value> = cols
        .iter()
        .map(|c| json!({"name": c.name, "type": c.ty, "format": c.format, "description": c.description, "priority": c.priority}))
        .collect();
    assemble(
        defs,
        |o| cols.iter().map(|c| cell(o, c.cell, now)).collect(),
        objects,
        list_rv,
        continue_token,
        include,
    )
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The Table of a custom resource: Name, then its `additionalPrinterColumns` (an Age column
/// when it has none), cells read by their JSONPath as upstream's CRD table convertor does.
pub fn custom_table(
    served: &crate::crd::Served,
    objects: &[Value],
    list_rv: Option<&str>,
    continue_token: &str,
    include: Include,
) -> Value {
    let now = unix_now();
    let mut cols: Vec<crate::crd::PrinterColumn> = served.printer_columns.clone();
    if cols.is_empty() {
        cols.push(crate::crd::PrinterColumn {
            name: "Age".into(),
            ty: "date".into(),
            format: String::new(),
            description: CREATION_TIMESTAMP_DESCRIPTION.into(),
            priority: 0,
            json_path: ".metadata.creationTimestamp".into(),
        });
    }
    let mut defs = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": NAME_DESCRIPTION, "priority": 0}),
    ];
    defs.extend(cols.iter().map(|c| {
        json!({"name": c.name, "type": c.ty, "format": c.format, "description": c.description, "priority": c.priority})
    }));
    assemble(
        defs,
        |o| {
            let mut cells = vec![o.pointer("/metadata/name").cloned().unwrap_or(Value::Null)];
            cells.extend(cols.iter().map(|c| {
                let found = jsonpath(o, &c.json_path);
                match (found, c.ty.as_str()) {
                    (None, _) => Value::Null,
                    (Some(Value::String(t)), "date") => json!(human_age(&t, now)),
                    (Some(v), _) => v,
                }
            }));
            cells
        },
        objects,
        list_rv,
        continue_token,
        include,
    )
}

/// Upstream's description of `metadata.name` (the Name column of custom resources).
const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";

/// Upstream's description of `metadata.creationTimestamp` (the default Age column).
const CREATION_TIMESTAMP_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// The value a printer column's JSONPath (`.spec.replicas`, `.status.conditions[0].type`,
/// `.status.conditions[?(@.type=="Ready")].status`) finds: the first match, as upstream's
/// convertor prints one value; strings, numbers and booleans as they are, others as JSON text.
pub fn jsonpath(obj: &Value, path: &str) -> Option<Value> {
    let path = path.trim().trim_start_matches('{').trim_end_matches('}');
    let mut cur = obj.clone();
    let mut rest = path.trim_start_matches('$');
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let name = &r[..end];
            if !name.is_empty() {
                cur = cur.get(name)?.clone();
            }
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inner = &r[..end];
            rest = &r[end + 1..];
            if let Some(filter) = inner.strip_prefix("?(").and_then(|f| f.strip_suffix(')')) {
                let (lhs, rhs) = filter.split_once("==")?;
                let field = lhs.trim().strip_prefix("@.")?;
                let want = rhs.trim().trim_matches(|c| c == '"' || c == '\'');
                cur = cur
                    .as_array()?
                    .iter()
                    .find(|item| {
                        let v = item.pointer(&format!("/{}", field.replace('.', "/")));
                        match v {
                            Some(Value::String(s)) => s == want,
                            Some(other) => {
                                serde_json::from_str::<Value>(want).ok().as_ref() == Some(other)
                            }
                            None => false,
                        }
                    })?
                    .clone();
            } else if let Ok(i) = inner.parse::<i64>() {
                let a = cur.as_array()?;
                let idx = if i < 0 { a.len() as i64 + i } else { i };
                cur = a.get(usize::try_from(idx).ok()?)?.clone();
            } else {
                let key = inner.trim_matches(|c| c == '"' || c == '\'');
                cur = cur.get(key)?.clone();
            }
        } else {
            return None;
        }
    }
    match cur {
        Value::Object(_) | Value::Array(_) => Some(json!(cur.to_string())),
        v => Some(v),
    }
}

/// The Table around rows made by `cells`.
fn assemble(
    defs: Vec<Value>,
    cells: impl Fn(&Value) -> Vec<Value>,
    objects: &[Value],
    list_rv: Option<&str>,
    continue_token: &str,
    include: Include,
) -> Value {
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let cells = cells(o);
            let object = match include {
                Include::None => Value::Null,
                Include::Object => o.clone(),
                Include::Metadata => json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": o.get("metadata").cloned().unwrap_or_else(|| json!({})),
                }),
            };
            let mut row = serde_json::Map::new();
            row.insert("cells".into(), Value::Array(cells));
            if !object.is_null() {
                row.insert("object".into(), object);
            }
            Value::Object(row)
        })
        .collect();
    let mut meta = serde_json::Map::new();
    if let Some(rv) = list_rv {
        meta.insert("resourceVersion".into(), json!(rv));
    }
    if !continue_token.is_empty() {
        meta.insert("continue".into(), json!(continue_token));
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": defs,
        "rows": rows,
    })
}

/// `includeObject`: what each row carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Include {
    None,
    Metadata,
    Object,
}

impl Include {
    pub fn parse(v: Option<&str>) -> Include {
        match v {
            Some("None") => Include::None,
            Some("Object") => Include::Object,
            _ => Include::Metadata,
        }
    }
}

/// Writes a Table value as Go's encoder would: keys in the order built above (serde_json
/// sorts keys, so the Table is written by hand at its top level).
pub fn to_json(t: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"{\"kind\":\"Table\",\"apiVersion\":\"meta.k8s.io/v1\",\"metadata\":");
    out.extend_from_slice(
        serde_json::to_string(&t["metadata"])
            .unwrap_or_default()
            .as_bytes(),
    );
    out.extend_from_slice(b",\"columnDefinitions\":[");
    for (i, c) in t["columnDefinitions"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(
            format!(
                "{{\"name\":{},\"type\":{},\"format\":{},\"description\":{},\"priority\":{}}}",
                c["name"], c["type"], c["format"], c["description"], c["priority"]
            )
            .as_bytes(),
        );
    }
    out.extend_from_slice(b"],\"rows\":");
    out.extend_from_slice(
        serde_json::to_string(&t["rows"])
            .unwrap_or_default()
            .as_bytes(),
    );
    out.push(b'}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_as_go_writes_them() {
        let at = |d: i64| human_age("2026-01-01T00:00:00Z", 1_767_225_600 + d);
        assert_eq!(at(6), "6s");
        assert_eq!(at(150), "2m30s");
        assert_eq!(at(1200), "20m");
        assert_eq!(at(3 * 3600 + 120), "3h2m");
        assert_eq!(at(30 * 3600), "30h");
        assert_eq!(at(3 * 86400), "3d");
        assert_eq!(at(30 * 86400), "30d");
    }

    #[test]
    fn pod_rows_have_upstreams_columns() {
        let pod = json!({"metadata": {"name": "nginx", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"containers": [{"name": "nginx"}]}, "status": {"phase": "Pending"}});
        let t = table("", "pods", &[pod], Some("5"), "", Include::Metadata);
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "Name",
                "Ready",
                "Status",
                "Restarts",
                "Age",
                "IP",
                "Node",
                "Nominated Node",
                "Readiness Gates"
            ]
        );
        let cells = &t["rows"][0]["cells"];
        assert_eq!(
            (
                cells[0].as_str(),
                cells[1].as_str(),
                cells[2].as_str(),
                cells[3].as_str()
            ),
            (Some("nginx"), Some("0/1"), Some("Pending"), Some("0"))
        );
        assert_eq!(cells[5], "<none>");
        let fs = json!({"metadata": {"name": "exempt"}, "spec": {"priorityLevelConfiguration": {"name": "exempt"}, "matchingPrecedence": 1},
            "status": {"conditions": [{"type": "Dangling", "status": "False"}]}});
        let t = table(
            "flowcontrol.apiserver.k8s.io",
            "flowschemas",
            &[fs],
            None,
            "",
            Include::None,
        );
        let cells = &t["rows"][0]["cells"];
        assert_eq!(
            (
                cells[1].clone(),
                cells[2].clone(),
                cells[3].clone(),
                cells[5].clone()
            ),
            (json!("exempt"), json!(1), json!("<none>"), json!("False"))
        );
        let default = table("", "limitranges", &[], None, "", Include::None);
        assert_eq!(default["columnDefinitions"][1]["name"], "Created At");
    }
}
