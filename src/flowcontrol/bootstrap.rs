//! Upstream's bootstrap configuration of API Priority and Fairness (kube-apiserver 1.36's
//! mandatory and suggested FlowSchemas and PriorityLevelConfigurations, written here as kapi's
//! own data) and the ensurer that puts them in the store at start, under upstream's keys and
//! rules: mandatory objects are kept as upstream's; suggested ones are created when missing
//! and updated only while `apf.kubernetes.io/autoupdate-spec` is "true".

use bytes::Bytes;
use serde_json::{Value, json};

use super::config::{FlowSchema, PriorityLevel};
use crate::storage::{StoreClient, StoreError};

/// The annotation that says whether the server may overwrite an object's spec.
pub const AUTOUPDATE_ANNOTATION: &str = "apf.kubernetes.io/autoupdate-spec";
const API_VERSION: &str = "flowcontrol.apiserver.k8s.io/v1";
/// FlowSchemas or levels read per pass when looking for retired bootstrap objects: far more
/// than any real configuration; past it, the rest wait for later passes.
const MAX_LISTED: i64 = 10_000;

/// One bootstrap object: its JSON (metadata.name and spec) and whether it is mandatory.
pub struct BootstrapObject {
    pub object: Value,
    pub mandatory: bool,
}

fn plc(name: &str, spec: Value, mandatory: bool) -> BootstrapObject {
    BootstrapObject {
        object: json!({
            "apiVersion": API_VERSION,
            "kind": "PriorityLevelConfiguration",
            "metadata": {"name": name},
            "spec": spec,
        }),
        mandatory,
    }
}

fn queued(shares: u32, lendable: u32, queues: u32, hand: u32, length: u32) -> Value {
    json!({
        "type": "Limited",
        "limited": {
            "nominalConcurrencyShares": shares,
            "lendablePercent": lendable,
            "limitResponse": {
                "type": "Queue",
                "queuing": {"queues": queues, "handSize": hand, "queueLengthLimit": length},
            },
        },
    })
}

/// The PriorityLevelConfigurations, mandatory first.
pub fn priority_levels() -> Vec<BootstrapObject> {
    vec![
        plc(
            "exempt",
            json!({"type": "Exempt", "exempt": {"nominalConcurrencyShares": 0, "lendablePercent": 0}}),
            true,
        ),
        plc(
            "catch-all",
            json!({
                "type": "Limited",
                "limited": {
                    "nominalConcurrencyShares": 5,
                    "lendablePercent": 0,
                    "limitResponse": {"type": "Reject"},
                },
            }),
            true,
        ),
        // Components that keep the cluster and its running pods healthy (kubelets, kube-proxy).
        plc("system", queued(30, 33, 64, 6, 50), false),
        // Node health reporting, apart from `system` so nodes report even under pod churn.
        plc("node-high", queued(40, 25, 64, 6, 50), false),
        plc("leader-election", queued(10, 0, 16, 4, 50), false),
        plc("workload-high", queued(40, 50, 128, 6, 50), false),
        plc("workload-low", queued(100, 90, 128, 6, 50), false),
        plc("global-default", queued(20, 50, 128, 6, 50), false),
    ]
}

fn group(name: &str) -> Value {
    json!({"kind": "Group", "group": {"name": name}})
}

fn user(name: &str) -> Value {
    json!({"kind": "User", "user": {"name": name}})
}

fn kube_system_service_accounts() -> Value {
    json!({"kind": "ServiceAccount", "serviceAccount": {"namespace": "kube-system", "name": "*"}})
}

/// A resource rule; `clusterScope` is written only when true (the field is omitempty, so a
/// stored object read back has no `false`).
fn resource_rule(
    verbs: &[&str],
    groups: &[&str],
    resources: &[&str],
    namespaces: &[&str],
    cluster: bool,
) -> Value {
    let mut r = json!({"verbs": verbs, "apiGroups": groups, "resources": resources, "namespaces": namespaces});
    if cluster {
        r["clusterScope"] = json!(true);
    }
    r
}

/// Every verb on every resource anywhere, and every non-resource URL.
fn everything(subjects: Vec<Value>) -> Value {
    json!({
        "subjects": subjects,
        "resourceRules": [resource_rule(&["*"], &["*"], &["*"], &["*"], true)],
        "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
    })
}

fn fs(
    name: &str,
    level: &str,
    precedence: u32,
    distinguisher: Option<&str>,
    rules: Vec<Value>,
    mandatory: bool,
) -> BootstrapObject {
    let mut spec = json!({
        "priorityLevelConfiguration": {"name": level},
        "matchingPrecedence": precedence,
        "rules": rules,
    });
    if let Some(d) = distinguisher {
        spec["distinguisherMethod"] = json!({"type": d});
    }
    BootstrapObject {
        object: json!({
            "apiVersion": API_VERSION,
            "kind": "FlowSchema",
            "metadata": {"name": name},
            "spec": spec,
        }),
        mandatory,
    }
}

/// The FlowSchemas, mandatory first.
pub fn flow_schemas() -> Vec<BootstrapObject> {
    let anyone = || {
        vec![
            group("system:unauthenticated"),
            group("system:authenticated"),
        ]
    };
    vec![
        // Cluster administrators are never queued nor rejected (no priority inversion).
        fs(
            "exempt",
            "exempt",
            1,
            None,
            vec![everything(vec![group("system:masters")])],
            true,
        ),
        fs(
            "catch-all",
            "catch-all",
            10000,
            Some("ByUser"),
            vec![everything(anyone())],
            true,
        ),
        fs(
            "system-nodes",
            "system",
            500,
            Some("ByUser"),
            vec![everything(vec![group("system:nodes")])],
            false,
        ),
        fs(
            "system-node-high",
            "node-high",
            400,
            Some("ByUser"),
            vec![json!({
                "subjects": [group("system:nodes")],
                "resourceRules": [
                    resource_rule(&["*"], &[""], &["nodes", "nodes/status"], &["*"], true),
                    resource_rule(&["*"], &["coordination.k8s.io"], &["leases"], &["*"], false),
                ],
            })],
            false,
        ),
        // Health probes go to the exempt level: a loaded server still answers its probes.
        fs(
            "probes",
            "exempt",
            2,
            None,
            vec![json!({
                "subjects": anyone(),
                "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz", "/readyz", "/livez"]}],
            })],
            false,
        ),
        fs(
            "system-leader-election",
            "leader-election",
            100,
            Some("ByUser"),
            vec![json!({
                "subjects": [
                    user("system:kube-controller-manager"),
                    user("system:kube-scheduler"),
                    kube_system_service_accounts(),
                ],
                "resourceRules": [
                    resource_rule(&["get", "create", "update"], &["coordination.k8s.io"], &["leases"], &["*"], false),
                ],
            })],
            false,
        ),
        fs(
            "kube-controller-manager",
            "workload-high",
            800,
            Some("ByNamespace"),
            vec![everything(vec![user("system:kube-controller-manager")])],
            false,
        ),
        fs(
            "kube-scheduler",
            "workload-high",
            800,
            Some("ByNamespace"),
            vec![everything(vec![user("system:kube-scheduler")])],
            false,
        ),
        fs(
            "kube-system-service-accounts",
            "workload-high",
            900,
            Some("ByNamespace"),
            vec![everything(vec![kube_system_service_accounts()])],
            false,
        ),
        fs(
            "service-accounts",
            "workload-low",
            9000,
            Some("ByUser"),
            vec![everything(vec![group("system:serviceaccounts")])],
            false,
        ),
        fs(
            "global-default",
            "global-default",
            9900,
            Some("ByUser"),
            vec![everything(anyone())],
            false,
        ),
    ]
}

/// What the ensurer does with one stored object.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Keep,
    /// Write the bootstrap spec over the stored one.
    Update,
}

/// Upstream's ensurer rules for an object that exists: mandatory objects get the bootstrap
/// spec back (the exempt level keeps the user's `exempt` numbers); suggested ones only while
/// autoupdate-spec is "true" (or, without the annotation, while generation is 1: never edited).
pub fn decide(bootstrap: &BootstrapObject, stored: &Value) -> Decision {
    let same = same_spec(&bootstrap.object, stored);
    let autoupdate = match stored["metadata"]["annotations"][AUTOUPDATE_ANNOTATION].as_str() {
        Some(v) => v == "true",
        None => stored["metadata"]["generation"].as_i64().unwrap_or(1) == 1,
    };
    let annotated =
        stored["metadata"]["annotations"][AUTOUPDATE_ANNOTATION].as_str() == Some("true");
    if bootstrap.mandatory {
        if same && annotated {
            Decision::Keep
        } else {
            Decision::Update
        }
    } else if autoupdate && !same {
        Decision::Update
    } else {
        Decision::Keep
    }
}

/// Whether two objects' specs mean the same, read as flow control reads them (defaulted
/// and omitted fields compare equal).
fn same_spec(a: &Value, b: &Value) -> bool {
    let neutral = |v: &Value| {
        let mut v = v.clone();
        v["metadata"] = json!({"name": "x"});
        v
    };
    match a["kind"].as_str() {
        Some("FlowSchema") => {
            FlowSchema::from_json(&neutral(a)) == FlowSchema::from_json(&neutral(b))
        }
        _ => {
            let (mut pa, mut pb) = (
                PriorityLevel::from_json(&neutral(a)),
                PriorityLevel::from_json(&neutral(b)),
            );
            // The exempt level's numbers are the user's to tune.
            for p in [&mut pa, &mut pb].into_iter().flatten() {
                if p.limited.is_none() {
                    p.nominal_shares = 0;
                    p.lendable_percent = 0;
                }
            }
            pa.is_some() && pa == pb
        }
    }
}

/// The `Dangling` condition upstream keeps on a FlowSchema's status.
pub fn dangling_condition(level: &str, exists: bool, now: &str) -> Value {
    if exists {
        json!({
            "type": "Dangling",
            "status": "False",
            "lastTransitionTime": now,
            "reason": "Found",
            "message": format!("This FlowSchema references the PriorityLevelConfiguration object named {level:?} and it exists"),
        })
    } else {
        json!({
            "type": "Dangling",
            "status": "True",
            "lastTransitionTime": now,
            "reason": "NotFound",
            "message": format!("This FlowSchema references the PriorityLevelConfiguration object named {level:?} but there is no such object"),
        })
    }
}

pub(super) fn encode(obj: &Value) -> Result<Bytes, String> {
    let json = serde_json::to_vec(obj).map_err(|e| e.to_string())?;
    let mut pb = Vec::new();
    kapi_codec::to_pb::json_to_envelope(&json, None, kapi_codec::FieldValidation::Strict, &mut pb)
        .map_err(|e| e.to_string())?;
    Ok(Bytes::from(pb))
}

/// Stored bytes (protobuf with the `k8s\0` envelope) as JSON.
pub fn decode(value: &[u8]) -> Option<Value> {
    let mut out = Vec::new();
    kapi_codec::to_json::envelope_to_json(value, &mut out).ok()?;
    serde_json::from_slice(&out).ok()
}

/// Creates the missing bootstrap objects and brings the others in line with the rules above.
/// `prefix` is `--etcd-prefix` with its trailing slash.
pub async fn ensure(store: &StoreClient, prefix: &str) -> Result<(), String> {
    let now = crate::api::rest::now_rfc3339();
    let levels = priority_levels();
    let level_names: Vec<String> = levels
        .iter()
        .filter_map(|l| l.object["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    let sets = [
        ("prioritylevelconfigurations", levels),
        ("flowschemas", flow_schemas()),
    ];
    for (resource, objects) in sets {
        remove_retired(store, &format!("{prefix}{resource}/"), &objects).await?;
        for b in objects {
            let Some(name) = b.object["metadata"]["name"].as_str() else {
                continue;
            };
            let key = format!("{prefix}{resource}/{name}");
            let stored = store
                .get(key.as_bytes())
                .await
                .map_err(|e| format!("reading {key}: {e}"))?;
            let mut obj = b.object.clone();
            match stored {
                None => {
                    obj["metadata"] = json!({
                        "name": name,
                        "uid": uuid::Uuid::new_v4().to_string(),
                        "generation": 1,
                        "creationTimestamp": now,
                        "annotations": {AUTOUPDATE_ANNOTATION: "true"},
                    });
                    obj["status"] = match obj["spec"]["priorityLevelConfiguration"]["name"].as_str()
                    {
                        Some(level) => json!({"conditions": [dangling_condition(
                            level,
                            level_names.iter().any(|l| l == level),
                            &now,
                        )]}),
                        None => json!({}),
                    };
                    match store.create(key.as_bytes(), encode(&obj)?, None).await {
                        Ok(_) | Err(StoreError::AlreadyExists) => {}
                        Err(e) => return Err(format!("creating {key}: {e}")),
                    }
                }
                Some(kv) => {
                    let Some(mut current) = decode(&kv.value) else {
                        continue;
                    };
                    if decide(&b, &current) == Decision::Keep {
                        continue;
                    }
                    let mut spec = obj["spec"].take();
                    // The exempt level keeps the user's `exempt` numbers.
                    if spec["type"] == "Exempt" && current["spec"]["exempt"].is_object() {
                        spec["exempt"] = current["spec"]["exempt"].clone();
                    }
                    let generation = current["metadata"]["generation"].as_i64().unwrap_or(1);
                    if current["spec"] != spec {
                        current["metadata"]["generation"] = json!(generation + 1);
                    }
                    current["spec"] = spec;
                    if !current["metadata"]["annotations"].is_object() {
                        current["metadata"]["annotations"] = json!({});
                    }
                    current["metadata"]["annotations"][AUTOUPDATE_ANNOTATION] = json!("true");
                    if let Some(m) = current["metadata"].as_object_mut() {
                        m.remove("resourceVersion");
                    }
                    match store
                        .update(key.as_bytes(), encode(&current)?, kv.mod_revision)
                        .await
                    {
                        // Someone else changed it meanwhile: their version stands until the
                        // next start.
                        Ok(_) | Err(StoreError::Conflict { .. }) => {}
                        Err(e) => return Err(format!("updating {key}: {e}")),
                    }
                }
            }
        }
    }
    Ok(())
}

/// Stored objects of an older bootstrap set that this one no longer has (such as an older
/// server's `workload-leader-election`): deleted while the server still owns their spec
/// (autoupdate-spec "true"), as upstream's ensurer removes them. Objects of users (no such
/// annotation, or "false") stay.
async fn remove_retired(
    store: &StoreClient,
    prefix: &str,
    current: &[BootstrapObject],
) -> Result<(), String> {
    let listed = store
        .range(prefix.as_bytes(), b"", 0, MAX_LISTED)
        .await
        .map_err(|e| format!("listing {prefix}: {e}"))?;
    for kv in listed.kvs {
        let name = String::from_utf8_lossy(&kv.key[prefix.len()..]).to_string();
        if current
            .iter()
            .any(|b| b.object["metadata"]["name"].as_str() == Some(name.as_str()))
        {
            continue;
        }
        let owned = decode(&kv.value).is_some_and(|v| {
            v["metadata"]["annotations"][AUTOUPDATE_ANNOTATION].as_str() == Some("true")
        });
        if owned {
            // Changed meanwhile: the next pass decides again.
            let _ = store.delete(&kv.key, Some(kv.mod_revision)).await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(b: &BootstrapObject, annotation: Option<&str>, generation: i64) -> Value {
        let mut v = b.object.clone();
        v["metadata"]["generation"] = json!(generation);
        if let Some(a) = annotation {
            v["metadata"]["annotations"] = json!({AUTOUPDATE_ANNOTATION: a});
        }
        v
    }

    #[test]
    fn upstreams_names_and_limits() {
        let names = |v: Vec<BootstrapObject>| -> Vec<String> {
            let mut n: Vec<String> = v
                .iter()
                .map(|o| o.object["metadata"]["name"].as_str().unwrap().to_string())
                .collect();
            n.sort();
            n
        };
        // As upstream 1.36 stores them (../shared/upstream/etcd-layout/etcd-keys-bootstrap.txt).
        assert_eq!(
            names(priority_levels()),
            [
                "catch-all",
                "exempt",
                "global-default",
                "leader-election",
                "node-high",
                "system",
                "workload-high",
                "workload-low"
            ]
        );
        assert_eq!(
            names(flow_schemas()),
            [
                "catch-all",
                "exempt",
                "global-default",
                "kube-controller-manager",
                "kube-scheduler",
                "kube-system-service-accounts",
                "probes",
                "service-accounts",
                "system-leader-election",
                "system-node-high",
                "system-nodes"
            ]
        );
        let levels: Vec<PriorityLevel> = priority_levels()
            .iter()
            .filter_map(|o| PriorityLevel::from_json(&o.object))
            .collect();
        let limits = super::super::config::nominal_limits(600, &levels);
        let by_name: Vec<(&str, u32)> =
            levels.iter().map(|l| l.name.as_str()).zip(limits).collect();
        // ceil(600 × NCS / 245).
        assert!(by_name.contains(&("catch-all", 13)), "{by_name:?}");
        assert!(by_name.contains(&("workload-low", 245)), "{by_name:?}");
        assert!(by_name.contains(&("global-default", 49)), "{by_name:?}");
        assert!(by_name.contains(&("exempt", 0)), "{by_name:?}");
    }

    #[test]
    fn the_ensurer_keeps_user_edits_only_of_suggested_objects() {
        let fss = flow_schemas();
        let (mandatory, suggested) = (&fss[0], &fss[2]);
        assert!(mandatory.mandatory && !suggested.mandatory);
        assert_eq!(
            decide(suggested, &stored(suggested, Some("true"), 1)),
            Decision::Keep
        );
        let mut edited = stored(suggested, Some("false"), 2);
        edited["spec"]["matchingPrecedence"] = json!(7);
        assert_eq!(decide(suggested, &edited), Decision::Keep);
        edited["metadata"]["annotations"][AUTOUPDATE_ANNOTATION] = json!("true");
        assert_eq!(decide(suggested, &edited), Decision::Update);
        let mut no_annotation = stored(suggested, None, 3);
        no_annotation["spec"]["matchingPrecedence"] = json!(7);
        assert_eq!(decide(suggested, &no_annotation), Decision::Keep);
        let mut m = stored(mandatory, Some("false"), 2);
        m["spec"]["matchingPrecedence"] = json!(7);
        assert_eq!(decide(mandatory, &m), Decision::Update);
        // The exempt level's numbers are the user's.
        let plcs = priority_levels();
        let mut exempt = stored(&plcs[0], Some("true"), 2);
        exempt["spec"]["exempt"]["nominalConcurrencyShares"] = json!(40);
        assert_eq!(decide(&plcs[0], &exempt), Decision::Keep);
    }
}
