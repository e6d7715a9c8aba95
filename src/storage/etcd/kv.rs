//! The key-value requests as etcd calls: reads are ranges; writes are transactions that compare the
//! key's revisions, so a write and its precondition are one atomic step in etcd, and a refused one
//! reads the key's current state in the same step.

use bytes::Bytes;
use etcdv3client::ErrKind;
use etcdv3client::pb::{self, compare, request_op, response_op};

use super::{Etcd, HEALTH_KEY, key_value};
use crate::storage::{KeyValue, RangeResult, Revision, StoreError};

/// The key `current_revision` counts: any key will do, every answer carries the store's revision.
const REVISION_PROBE_KEY: &[u8] = b"/";

impl Etcd {
    pub(super) async fn get(&self, key: &[u8]) -> Result<Option<KeyValue>, StoreError> {
        let response = self.read(single(key)).await?;
        Ok(response.kvs.into_iter().next().map(key_value))
    }

    /// See `StoreClient::range`. The answer's revision is the one asked for, or etcd's current one.
    pub(super) async fn range(
        &self,
        prefix: &[u8],
        start: &[u8],
        revision: Revision,
        limit: i64,
    ) -> Result<RangeResult, StoreError> {
        if revision < 0 {
            return Err(StoreError::Internal(format!(
                "negative revision {revision}"
            )));
        }
        let from = if start > prefix { start } else { prefix };
        let response = self
            .read(pb::RangeRequest {
                key: first_key(from),
                range_end: prefix_end(prefix),
                limit: limit.max(0),
                revision,
                ..Default::default()
            })
            .await?;
        let read_at = match revision {
            0 => header_revision(response.header)?,
            r => r,
        };
        Ok(RangeResult {
            kvs: response.kvs.into_iter().map(key_value).collect(),
            more: response.more,
            count: response.count,
            revision: read_at,
        })
    }

    /// Puts `key` if it has never been created or was deleted; with a TTL, on a lease.
    pub(super) async fn create(
        &self,
        key: Bytes,
        value: Bytes,
        lease_ttl_seconds: Option<i64>,
    ) -> Result<KeyValue, StoreError> {
        let ttl = match lease_ttl_seconds {
            None => None,
            Some(ttl) if ttl > 0 => Some(ttl),
            Some(ttl) => return Err(StoreError::Internal(format!("invalid lease TTL {ttl}"))),
        };
        let mut lease_renewed = false;
        loop {
            let lease = match ttl {
                Some(ttl) => match self.leases.lease(ttl, &self.client).await {
                    Ok(id) => id,
                    Err(e) => return Err(self.store_error(e).await),
                },
                None => 0,
            };
            let txn = pb::TxnRequest {
                compare: vec![absent(&key)],
                success: vec![put(&key, &value, lease, false)],
                failure: vec![],
            };
            match self.client.kv.clone().txn(txn).await {
                Ok(response) if !response.succeeded => return Err(StoreError::AlreadyExists),
                Ok(response) => {
                    let revision = header_revision(response.header)?;
                    return Ok(KeyValue {
                        key,
                        value,
                        create_revision: revision,
                        mod_revision: revision,
                        version: 1,
                        lease,
                    });
                }
                // A reused lease etcd no longer has (revoked by hand, or etcd restored from a
                // backup): forget it and take a new one, once.
                Err(e) if e.kind() == ErrKind::LeaseNotFound && !lease_renewed => {
                    if let Some(ttl) = ttl {
                        self.leases.forget(ttl, lease);
                    }
                    lease_renewed = true;
                }
                Err(e) => return Err(self.store_error(e).await),
            }
        }
    }

    /// Replaces the value if the key's mod_revision is `expected`; the key keeps its lease.
    pub(super) async fn update(
        &self,
        key: Bytes,
        value: Bytes,
        expected: Revision,
        lease_ttl_seconds: Option<i64>,
    ) -> Result<KeyValue, StoreError> {
        // A new lease restarts the key's TTL; without one the key keeps its own.
        let lease = match lease_ttl_seconds {
            None => None,
            Some(ttl) if ttl > 0 => match self.leases.lease(ttl, &self.client).await {
                Ok(id) => Some(id),
                Err(e) => return Err(self.store_error(e).await),
            },
            Some(ttl) => return Err(StoreError::Internal(format!("invalid lease TTL {ttl}"))),
        };
        let put_op = match lease {
            Some(id) => put_leased(&key, &value, id),
            None => put(&key, &value, 0, true),
        };
        let txn = pb::TxnRequest {
            compare: vec![present(&key), modified_at(&key, expected)],
            success: vec![put_op],
            failure: vec![op(request_op::Request::RequestRange(single(&key)))],
        };
        let response = self.txn(txn).await?;
        let revision = header_revision(response.header)?;
        let mut responses = response.responses.into_iter();
        if !response.succeeded {
            return Err(refusal(responses.next()));
        }
        let prev = match responses.next().and_then(|r| r.response) {
            Some(response_op::Response::ResponsePut(put)) => put.prev_kv,
            _ => None,
        }
        .ok_or_else(|| StoreError::Internal("etcd's put returned no previous kv".into()))?;
        Ok(KeyValue {
            key,
            value,
            create_revision: prev.create_revision,
            mod_revision: revision,
            version: prev.version + 1,
            lease: lease.unwrap_or(prev.lease),
        })
    }

    /// Deletes the key (if its mod_revision is `expected`, when given); returns the deleted kv at
    /// the deletion's revision.
    pub(super) async fn delete(
        &self,
        key: Bytes,
        expected: Option<Revision>,
    ) -> Result<KeyValue, StoreError> {
        let mut compare = vec![present(&key)];
        compare.extend(expected.map(|e| modified_at(&key, e)));
        let txn = pb::TxnRequest {
            compare,
            success: vec![op(request_op::Request::RequestDeleteRange(
                pb::DeleteRangeRequest {
                    key: key.to_vec(),
                    prev_kv: true,
                    ..Default::default()
                },
            ))],
            failure: vec![op(request_op::Request::RequestRange(single(&key)))],
        };
        let response = self.txn(txn).await?;
        let revision = header_revision(response.header)?;
        let mut responses = response.responses.into_iter();
        if !response.succeeded {
            return Err(refusal(responses.next()));
        }
        let deleted = match responses.next().and_then(|r| r.response) {
            Some(response_op::Response::ResponseDeleteRange(d)) => d.prev_kvs.into_iter().next(),
            _ => None,
        }
        .ok_or_else(|| StoreError::Internal("etcd's delete returned no previous kv".into()))?;
        Ok(KeyValue {
            mod_revision: revision,
            ..key_value(deleted)
        })
    }

    /// etcd's revision, from a count-only read of one key (as upstream asks it).
    pub(super) async fn current_revision(&self) -> Result<Revision, StoreError> {
        let response = self
            .read(pb::RangeRequest {
                count_only: true,
                limit: 1,
                ..single(REVISION_PROBE_KEY)
            })
            .await?;
        header_revision(response.header)
    }

    pub(super) async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        let request = pb::CompactionRequest {
            revision,
            physical: false,
        };
        match self.client.kv.clone().compact(request).await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.store_error(e).await),
        }
    }

    /// Healthy when etcd serves a linearizable read (which needs a leader and a quorum).
    pub(super) async fn health(&self) -> Result<(), StoreError> {
        self.read(single(HEALTH_KEY)).await.map(|_| ())
    }

    async fn read(&self, request: pb::RangeRequest) -> Result<pb::RangeResponse, StoreError> {
        match self.client.kv.clone().range(request).await {
            Ok(response) => Ok(response),
            Err(e) => Err(self.store_error(e).await),
        }
    }

    async fn txn(&self, request: pb::TxnRequest) -> Result<pb::TxnResponse, StoreError> {
        match self.client.kv.clone().txn(request).await {
            Ok(response) => Ok(response),
            Err(e) => Err(self.store_error(e).await),
        }
    }
}

/// Why a write's comparison failed, from the read of its failure branch: the key is gone, or it
/// is there at another revision.
fn refusal(read: Option<pb::ResponseOp>) -> StoreError {
    match read.and_then(|r| r.response) {
        Some(response_op::Response::ResponseRange(range)) => match range.kvs.into_iter().next() {
            Some(kv) => StoreError::Conflict {
                current: Some(key_value(kv)),
            },
            None => StoreError::NotFound,
        },
        _ => StoreError::Internal("etcd's refused transaction returned no read".into()),
    }
}

fn header_revision(header: Option<pb::ResponseHeader>) -> Result<Revision, StoreError> {
    header
        .map(|h| h.revision)
        .ok_or_else(|| StoreError::Internal("etcd answered without a header".into()))
}

fn single(key: &[u8]) -> pb::RangeRequest {
    pb::RangeRequest {
        key: key.to_vec(),
        ..Default::default()
    }
}

fn op(request: request_op::Request) -> pb::RequestOp {
    pb::RequestOp {
        request: Some(request),
    }
}

/// A put; an update keeps the key's lease (`ignore_lease`) and reads what it replaced.
/// An update's put onto a new lease (the previous kv returned, the lease not kept).
fn put_leased(key: &[u8], value: &[u8], lease: i64) -> pb::RequestOp {
    op(request_op::Request::RequestPut(pb::PutRequest {
        key: key.to_vec(),
        value: value.to_vec(),
        lease,
        prev_kv: true,
        ..Default::default()
    }))
}

fn put(key: &[u8], value: &[u8], lease: i64, update: bool) -> pb::RequestOp {
    op(request_op::Request::RequestPut(pb::PutRequest {
        key: key.to_vec(),
        value: value.to_vec(),
        lease,
        prev_kv: update,
        ignore_lease: update,
        ..Default::default()
    }))
}

fn compare(
    key: &[u8],
    result: compare::CompareResult,
    target: compare::TargetUnion,
) -> pb::Compare {
    let target_kind = match target {
        compare::TargetUnion::Version(_) => compare::CompareTarget::Version,
        compare::TargetUnion::CreateRevision(_) => compare::CompareTarget::Create,
        compare::TargetUnion::ModRevision(_) => compare::CompareTarget::Mod,
        compare::TargetUnion::Value(_) => compare::CompareTarget::Value,
        compare::TargetUnion::Lease(_) => compare::CompareTarget::Lease,
    };
    pb::Compare {
        result: result as i32,
        target: target_kind as i32,
        key: key.to_vec(),
        range_end: Vec::new(),
        target_union: Some(target),
    }
}

/// The key does not exist: etcd compares a missing key's create_revision as 0.
fn absent(key: &[u8]) -> pb::Compare {
    compare(
        key,
        compare::CompareResult::Equal,
        compare::TargetUnion::CreateRevision(0),
    )
}

fn present(key: &[u8]) -> pb::Compare {
    compare(
        key,
        compare::CompareResult::Greater,
        compare::TargetUnion::CreateRevision(0),
    )
}

fn modified_at(key: &[u8], revision: Revision) -> pb::Compare {
    compare(
        key,
        compare::CompareResult::Equal,
        compare::TargetUnion::ModRevision(revision),
    )
}

/// The first key a range reads: etcd refuses an empty key, and "\0" is the least non-empty one.
pub(super) fn first_key(from: &[u8]) -> Vec<u8> {
    if from.is_empty() {
        vec![0]
    } else {
        from.to_vec()
    }
}

/// The end (exclusive) of the keys under `prefix`: the prefix with its last byte below 0xff
/// incremented and what follows dropped; "\0" (etcd's "to the end") when there is none.
pub(super) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    match prefix.iter().rposition(|&b| b < 0xff) {
        Some(i) => {
            let mut end = prefix[..=i].to_vec();
            end[i] += 1;
            end
        }
        None => vec![0],
    }
}
