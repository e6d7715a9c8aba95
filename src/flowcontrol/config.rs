//! FlowSchemas and PriorityLevelConfigurations as flow control uses them: read from their
//! `flowcontrol.apiserver.k8s.io/v1` JSON (as the watch cache's objects decode), every number
//! bounded. Classification (`classify.rs`) and the seat pools (`dispatch.rs`) are built from these.

use serde_json::Value;

use super::queueset::Queuing;

/// Matching precedence of a FlowSchema, as validation bounds it (1..=10000).
const MAX_MATCHING_PRECEDENCE: i64 = 10_000;
/// Bound on nominalConcurrencyShares (upstream validates only ≥ 0; the sum must not overflow).
const MAX_SHARES: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowSchema {
    pub name: String,
    pub uid: String,
    pub matching_precedence: i64,
    pub priority_level: String,
    pub distinguisher: Distinguisher,
    pub rules: Vec<PolicyRules>,
}

/// How a FlowSchema splits its requests into flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distinguisher {
    /// One flow for the whole FlowSchema.
    None,
    ByUser,
    ByNamespace,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PolicyRules {
    pub subjects: Vec<Subject>,
    pub resource_rules: Vec<ResourceRule>,
    pub non_resource_rules: Vec<NonResourceRule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    User(String),
    Group(String),
    ServiceAccount { namespace: String, name: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourceRule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub cluster_scope: bool,
    pub namespaces: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NonResourceRule {
    pub verbs: Vec<String>,
    pub non_resource_urls: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorityLevel {
    pub name: String,
    pub uid: String,
    pub nominal_shares: u64,
    pub lendable_percent: u64,
    /// None: may borrow without limit.
    pub borrowing_limit_percent: Option<u64>,
    /// None for the exempt level: never queued nor rejected.
    pub limited: Option<Limited>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// None: `Reject` (no queues); requests over the limit are refused at once.
    pub queuing: Option<Queuing>,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn bounded(v: &Value, default: u64, max: u64) -> u64 {
    v.as_u64().unwrap_or(default).min(max)
}

impl FlowSchema {
    /// A FlowSchema object (JSON); None when it lacks a name or a priority level.
    pub fn from_json(obj: &Value) -> Option<FlowSchema> {
        let name = obj["metadata"]["name"].as_str()?.to_string();
        let uid = obj["metadata"]["uid"].as_str().unwrap_or("").to_string();
        let spec = &obj["spec"];
        let priority_level = spec["priorityLevelConfiguration"]["name"]
            .as_str()?
            .to_string();
        let matching_precedence = spec["matchingPrecedence"]
            .as_i64()
            .unwrap_or(1000)
            .clamp(1, MAX_MATCHING_PRECEDENCE);
        let distinguisher = match spec["distinguisherMethod"]["type"].as_str() {
            Some("ByUser") => Distinguisher::ByUser,
            Some("ByNamespace") => Distinguisher::ByNamespace,
            _ => Distinguisher::None,
        };
        let rules = spec["rules"]
            .as_array()
            .map(|rs| rs.iter().map(PolicyRules::from_json).collect())
            .unwrap_or_default();
        Some(FlowSchema {
            name,
            uid,
            matching_precedence,
            priority_level,
            distinguisher,
            rules,
        })
    }
}

impl PolicyRules {
    fn from_json(v: &Value) -> PolicyRules {
        let subjects = v["subjects"]
            .as_array()
            .map(|ss| ss.iter().filter_map(Subject::from_json).collect())
            .unwrap_or_default();
        let resource_rules = v["resourceRules"]
            .as_array()
            .map(|rs| {
                rs.iter()
                    .map(|r| ResourceRule {
                        verbs: strings(&r["verbs"]),
                        api_groups: strings(&r["apiGroups"]),
                        resources: strings(&r["resources"]),
                        cluster_scope: r["clusterScope"].as_bool().unwrap_or(false),
                        namespaces: strings(&r["namespaces"]),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let non_resource_rules = v["nonResourceRules"]
            .as_array()
            .map(|rs| {
                rs.iter()
                    .map(|r| NonResourceRule {
                        verbs: strings(&r["verbs"]),
                        non_resource_urls: strings(&r["nonResourceURLs"]),
                    })
                    .collect()
            })
            .unwrap_or_default();
        PolicyRules {
            subjects,
            resource_rules,
            non_resource_rules,
        }
    }
}

impl Subject {
    fn from_json(v: &Value) -> Option<Subject> {
        match v["kind"].as_str()? {
            "User" => Some(Subject::User(v["user"]["name"].as_str()?.to_string())),
            "Group" => Some(Subject::Group(v["group"]["name"].as_str()?.to_string())),
            "ServiceAccount" => Some(Subject::ServiceAccount {
                namespace: v["serviceAccount"]["namespace"].as_str()?.to_string(),
                name: v["serviceAccount"]["name"].as_str()?.to_string(),
            }),
            _ => None,
        }
    }
}

impl PriorityLevel {
    /// A PriorityLevelConfiguration object (JSON); None when it lacks a name or its type.
    pub fn from_json(obj: &Value) -> Option<PriorityLevel> {
        let name = obj["metadata"]["name"].as_str()?.to_string();
        let uid = obj["metadata"]["uid"].as_str().unwrap_or("").to_string();
        let spec = &obj["spec"];
        match spec["type"].as_str()? {
            "Exempt" => Some(PriorityLevel {
                name,
                uid,
                nominal_shares: bounded(&spec["exempt"]["nominalConcurrencyShares"], 0, MAX_SHARES),
                lendable_percent: bounded(&spec["exempt"]["lendablePercent"], 0, 100),
                borrowing_limit_percent: Some(0),
                limited: None,
            }),
            "Limited" => {
                let l = &spec["limited"];
                let response = &l["limitResponse"];
                let queuing = match response["type"].as_str() {
                    Some("Queue") => {
                        let q = &response["queuing"];
                        Some(
                            Queuing {
                                queues: bounded(&q["queues"], 64, u64::MAX) as usize,
                                hand_size: bounded(&q["handSize"], 8, u64::MAX) as usize,
                                queue_length_limit: bounded(&q["queueLengthLimit"], 50, u64::MAX)
                                    as usize,
                            }
                            .bounded(),
                        )
                    }
                    _ => None,
                };
                Some(PriorityLevel {
                    name,
                    uid,
                    nominal_shares: bounded(&l["nominalConcurrencyShares"], 30, MAX_SHARES),
                    lendable_percent: bounded(&l["lendablePercent"], 0, 100),
                    borrowing_limit_percent: l["borrowingLimitPercent"]
                        .as_u64()
                        .map(|p| p.min(MAX_SHARES)),
                    limited: Some(Limited { queuing }),
                })
            }
            _ => None,
        }
    }
}

/// Upstream's nominal concurrency limits: the server's limit shared out by
/// nominalConcurrencyShares, each rounded up: NominalCL(i) = ceil(ServerCL × NCS(i) / ΣNCS).
/// (A level with no seat of its own still runs one request at a time when idle, and borrows.)
pub fn nominal_limits(server_limit: u64, levels: &[PriorityLevel]) -> Vec<u32> {
    let sum: u64 = levels.iter().map(|l| l.nominal_shares).sum();
    levels
        .iter()
        .map(|l| {
            let cl = if sum == 0 {
                0
            } else {
                (server_limit * l.nominal_shares).div_ceil(sum)
            };
            cl.min(u64::from(u32::MAX)) as u32
        })
        .collect()
}
