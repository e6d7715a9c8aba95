//! The objects a credential names (its ServiceAccount, bound Pod, Secret or Node, a bootstrap
//! token's Secret), read from the watch cache: never a store round-trip on the request path.
//! Identity checks need only metadata (uid, deletionTimestamp), read straight from the stored
//! protobuf; Secrets' data and Pods' spec are decoded to JSON only where they are needed.

use std::collections::HashMap;
use std::sync::Arc;

use kapi_cache::Cache;
use serde_json::Value;

use crate::api::registry::{Registry, Resource};
use crate::api::status::Status;

/// The resources credentials refer to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    ServiceAccount,
    Secret,
    Pod,
    Node,
    /// Not a credential's: admission reads a write's namespace (lifecycle, labels).
    Namespace,
}

/// Whether an object is being deleted, and its labels.
pub type Meta = (bool, Vec<(String, String)>);

/// An object's identity: enough to tell that it is still the one a token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: String,
    /// Unix seconds.
    pub deletion_timestamp: Option<i64>,
}

pub struct Lookup {
    cache: Arc<Cache>,
    /// Per `Kind`, resolved once: a lookup is one key and one snapshot read.
    rows: [Option<Row>; 5],
    /// ServiceAccounts decoded, by key, with the revision they were decoded at: every pod
    /// create reads its account, which rarely changes.
    accounts: std::sync::Mutex<HashMap<bytes::Bytes, (i64, Arc<Value>)>>,
}

/// ServiceAccounts kept decoded; past this many the memo starts again.
const MAX_DECODED_ACCOUNTS: usize = 4096;

/// A resource credentials refer to, with its place in the watch cache.
struct Row {
    res: Resource,
    /// `--etcd-prefix` + the resource's key prefix: `/registry/serviceaccounts/`.
    dir: String,
    cached: Arc<kapi_cache::ResourceCache>,
}

impl Lookup {
    pub fn new(cache: Arc<Cache>, prefix: String, registry: &Registry) -> Lookup {
        let row = |r: &str| {
            let res = registry.get("", "v1", r)?.clone();
            let dir = format!("{prefix}{}", res.key_prefix);
            let cached = cache.resource(dir.as_bytes())?.clone();
            Some(Row { res, dir, cached })
        };
        Lookup {
            rows: [
                row("serviceaccounts"),
                row("secrets"),
                row("pods"),
                row("nodes"),
                row("namespaces"),
            ],
            cache,
            accounts: Default::default(),
        }
    }

    pub fn cache(&self) -> &Arc<Cache> {
        &self.cache
    }

    fn row(&self, kind: Kind) -> Option<&Resource> {
        self.rows[kind as usize].as_ref().map(|r| &r.res)
    }

    /// The stored bytes of `kind` `namespace/name` in the cache's current snapshot.
    fn stored(&self, kind: Kind, namespace: &str, name: &str) -> Option<bytes::Bytes> {
        self.entry(kind, namespace, name).map(|o| o.value.clone())
    }

    /// The cache's entry of `kind` `namespace/name` in its current snapshot.
    fn entry(&self, kind: Kind, namespace: &str, name: &str) -> Option<Arc<kapi_cache::Obj>> {
        let row = self.rows[kind as usize].as_ref()?;
        if name.is_empty() || name.contains('/') || namespace.contains('/') {
            return None;
        }
        let mut key = String::with_capacity(row.dir.len() + namespace.len() + name.len() + 1);
        key.push_str(&row.dir);
        if row.res.namespaced {
            key.push_str(namespace);
            key.push('/');
        }
        key.push_str(name);
        row.cached.snapshot().get(key.as_bytes()).cloned()
    }

    /// The ServiceAccount `namespace/name` as served JSON, if the cache has it: decoded once
    /// per revision of it.
    pub fn account(&self, namespace: &str, name: &str) -> Result<Option<Arc<Value>>, Status> {
        let Some(entry) = self.entry(Kind::ServiceAccount, namespace, name) else {
            return Ok(None);
        };
        let Some(res) = self.row(Kind::ServiceAccount) else {
            return Ok(None);
        };
        let lock = || self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((rev, sa)) = lock().get(&entry.key)
            && *rev == entry.mod_revision
        {
            return Ok(Some(sa.clone()));
        }
        let served = crate::api::objects::served(res, &entry.value, 0)?;
        let sa = Arc::new(crate::api::objects::to_value(res, &served)?);
        let mut memo = lock();
        if memo.len() >= MAX_DECODED_ACCOUNTS {
            memo.clear();
        }
        memo.insert(entry.key.clone(), (entry.mod_revision, sa.clone()));
        Ok(Some(sa))
    }

    /// The uid and deletion time of `kind` `namespace/name`, if the cache has it.
    pub fn identity(&self, kind: Kind, namespace: &str, name: &str) -> Option<Identity> {
        let stored = self.stored(kind, namespace, name)?;
        let msg = self.row(kind)?.msg?;
        let env = kapi_codec::envelope::Envelope::parse(&stored).ok()?;
        let meta = kapi_codec::meta::meta_from_pb(msg, env.raw, 0).ok()?;
        Some(Identity {
            uid: meta.uid.into_owned(),
            deletion_timestamp: meta.deletion_timestamp,
        })
    }

    /// Whether `kind` `namespace/name` is being deleted, and its labels when `labels` is set,
    /// if the cache has it: from the stored metadata (the object served first when it is not
    /// stored in its served version).
    pub fn meta(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        labels: bool,
    ) -> Result<Option<Meta>, Status> {
        let (Some(stored), Some(res)) = (self.stored(kind, namespace, name), self.row(kind)) else {
            return Ok(None);
        };
        let served;
        let raw = match kapi_codec::envelope::Envelope::parse(&stored) {
            Ok(env) if env.api_version == res.api_version() && env.kind == res.kind => env.raw,
            _ => {
                served = crate::api::objects::served(res, &stored, 0)?;
                &served.raw[..]
            }
        };
        let Some(meta) = res
            .msg
            .and_then(|m| kapi_codec::meta::meta_from_pb(m, raw, 0).ok())
        else {
            return Ok(Some((false, Vec::new())));
        };
        let labels = match labels {
            true => meta
                .labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            false => Vec::new(),
        };
        Ok(Some((meta.deletion_timestamp.is_some(), labels)))
    }

    /// The labels of `kind` `namespace/name` among `wanted`, if the cache has it: read from
    /// the stored metadata without decoding the object (a pod create asks for its node's).
    pub fn labels(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        wanted: &[&str],
    ) -> Option<Vec<(String, String)>> {
        let stored = self.stored(kind, namespace, name)?;
        let msg = self.row(kind)?.msg?;
        let env = kapi_codec::envelope::Envelope::parse(&stored).ok()?;
        let meta = kapi_codec::meta::meta_from_pb(msg, env.raw, 0).ok()?;
        Some(
            meta.labels
                .into_iter()
                .filter(|(k, _)| wanted.contains(&k.as_ref()))
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The whole object as served JSON, if the cache has it.
    pub fn object(&self, kind: Kind, namespace: &str, name: &str) -> Result<Option<Value>, Status> {
        let Some(stored) = self.stored(kind, namespace, name) else {
            return Ok(None);
        };
        let Some(res) = self.row(kind) else {
            return Ok(None);
        };
        let served = crate::api::objects::served(res, &stored, 0)?;
        crate::api::objects::to_value(res, &served).map(Some)
    }

    /// The group-resource of `kind`, for `Status` messages.
    pub fn resource(kind: Kind) -> &'static str {
        match kind {
            Kind::ServiceAccount => "serviceaccounts",
            Kind::Secret => "secrets",
            Kind::Pod => "pods",
            Kind::Node => "nodes",
            Kind::Namespace => "namespaces",
        }
    }
}
