//! The RBAC authorizer (upstream's `plugin/pkg/auth/authorizer/rbac`): decides from the
//! Roles, ClusterRoles and their bindings, read from the watch cache into an in-memory index
//! (`policy`) that a thread keeps current; a request never reads the store.

pub mod policy;
pub mod rules;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use kapi_cache::Cache;

use super::{Attributes, Authorizer, Decision};
use crate::authn::UserInfo;
use policy::{Binding, Policy, Role};
use rules::{Request, Rule};

/// How often the follower looks at the cache's RBAC objects: a change is in force within
/// this (upstream's informers are no faster).
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The four RBAC resources, as the cache's prefixes name them.
const RESOURCES: [&str; 4] = [
    "clusterroles",
    "roles",
    "clusterrolebindings",
    "rolebindings",
];

pub struct Rbac {
    policy: RwLock<Arc<Policy>>,
    cache: Arc<Cache>,
    /// `--etcd-prefix` with its slash.
    prefix: String,
}

/// What the follower kept of one stored object: its revision and what it parsed.
#[derive(Clone)]
enum Parsed {
    Role(Arc<Role>),
    Binding(Arc<Binding>),
    Unusable,
}

/// The follower's state: per resource, the revision seen and each key's parse.
#[derive(Default)]
pub(super) struct Followed {
    seen: [(u64, i64); 4],
    objects: [HashMap<Bytes, (i64, Parsed)>; 4],
}

impl Rbac {
    pub fn new(cache: Arc<Cache>, prefix: &str) -> Arc<Rbac> {
        Arc::new(Rbac {
            policy: RwLock::new(Arc::new(Policy::default())),
            cache,
            prefix: prefix.to_string(),
        })
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Rebuilds the policy if the cache's RBAC objects changed since `state` was taken;
    /// whether it did.
    pub(super) fn refresh(&self, state: &mut Followed) -> bool {
        let mut changed = false;
        let epoch = self.cache.epoch();
        for (i, name) in RESOURCES.iter().enumerate() {
            let Some(rc) = self.resource(name) else {
                continue;
            };
            let snap = rc.snapshot();
            if state.seen[i] == (epoch, snap.revision) {
                continue;
            }
            state.seen[i] = (epoch, snap.revision);
            changed = true;
            let old = std::mem::take(&mut state.objects[i]);
            let mut now = HashMap::with_capacity(snap.len());
            for o in snap.range(&rc.prefix, b"") {
                let parsed = match old.get(&o.key) {
                    Some((rev, p)) if *rev == o.mod_revision => p.clone(),
                    _ => parse(i, &o.value),
                };
                now.insert(o.key.clone(), (o.mod_revision, parsed));
            }
            state.objects[i] = now;
        }
        if !changed {
            return false;
        }
        let roles = |i: usize| -> Vec<Arc<Role>> {
            state.objects[i]
                .values()
                .filter_map(|(_, p)| match p {
                    Parsed::Role(r) => Some(r.clone()),
                    _ => None,
                })
                .collect()
        };
        let bindings = |i: usize| -> Vec<Arc<Binding>> {
            let mut v: Vec<(&Bytes, Arc<Binding>)> = state.objects[i]
                .iter()
                .filter_map(|(k, (_, p))| match p {
                    Parsed::Binding(b) => Some((k, b.clone())),
                    _ => None,
                })
                .collect();
            // Key order, as a list from the store would have them.
            v.sort_by(|a, b| a.0.cmp(b.0));
            v.into_iter().map(|(_, b)| b).collect()
        };
        let policy = Policy::build(roles(0), roles(1), bindings(2), bindings(3));
        *self.policy.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(policy);
        true
    }

    /// Keeps the policy current: a thread that rebuilds it whenever the cache's RBAC objects
    /// change, and fills aggregated ClusterRoles (`aggregate`) in the store.
    pub fn follow(self: &Arc<Self>, store: crate::storage::StoreClient) -> std::io::Result<()> {
        let mut state = Followed::default();
        self.refresh(&mut state);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let weak = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("kapi-rbac".into())
            .spawn(move || {
                let mut first = true;
                while let Some(rbac) = weak.upgrade() {
                    if rbac.refresh(&mut state) || first {
                        first = false;
                        let policy = rbac.policy();
                        rt.block_on(super::aggregate::fill(&store, &rbac.prefix, &policy));
                    }
                    drop(rbac);
                    std::thread::sleep(POLL_INTERVAL);
                }
            })
            .map(|_| ())
    }

    /// A cached resource (by its key prefix's name, `pods`), for the authorizers that read
    /// other objects than RBAC's.
    pub fn resource(&self, name: &str) -> Option<Arc<kapi_cache::ResourceCache>> {
        self.cache
            .resource(format!("{}{name}/", self.prefix).as_bytes())
    }

    /// The rules that apply to `user` in `namespace`, with the errors met.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> (Vec<Rule>, Vec<String>) {
        self.policy().rules_for(user, namespace)
    }
}

fn parse(resource: usize, stored: &[u8]) -> Parsed {
    let Some(obj) = super::decode(stored) else {
        return Parsed::Unusable;
    };
    match resource {
        0 | 1 => Parsed::Role(Arc::new(Role::from_json(&obj))),
        _ => Binding::from_json(&obj).map_or(Parsed::Unusable, |b| Parsed::Binding(Arc::new(b))),
    }
}

/// The request as RBAC matches it.
pub fn request<'a>(attrs: &'a Attributes<'a>) -> Request<'a> {
    match attrs.resource {
        Some(rr) => Request::Resource {
            verb: attrs.verb,
            group: &rr.group,
            resource: &rr.resource,
            subresource: rr.subresource.as_deref(),
            name: attrs.name(),
            namespace: attrs.namespace(),
        },
        None => Request::NonResource {
            verb: attrs.verb,
            path: attrs.path,
        },
    }
}

/// The mode `RBAC`.
pub struct RbacAuthorizer(pub Arc<Rbac>);

impl Authorizer for RbacAuthorizer {
    fn authorize(&self, attrs: &Attributes<'_>) -> Decision {
        let (allowed, reason) = self.0.policy().authorize(attrs.user, &request(attrs));
        if allowed {
            Decision::Allow(reason)
        } else {
            Decision::NoOpinion(reason)
        }
    }

    fn rules_for(&self, user: &UserInfo, namespace: &str) -> super::RuleSet {
        let (rules, errors) = self.0.rules_for(user, namespace);
        let (non_resource, resource) = rules
            .into_iter()
            .partition(|r: &Rule| !r.non_resource_urls.is_empty());
        super::RuleSet {
            resource,
            non_resource,
            incomplete: false,
            errors,
        }
    }
}
