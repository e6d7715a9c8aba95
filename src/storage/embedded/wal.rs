//! The embedded store's log: an append-only file of length- and CRC32-framed records, synced
//! (fdatasync) once per group commit before any write of the group is acknowledged. It starts with
//! a snapshot; when it grows too large it is rewritten as a fresh snapshot (write, sync, rename).
//!
//! File: `KAPIWAL1`, then records `[len u32 LE][crc32 u32 LE][payload]`. Opening replays it and
//! cuts off a torn or corrupt tail (a crash mid-append): those writes were never acknowledged.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::storage::{KeyValue, Revision};

const MAGIC: &[u8; 8] = b"KAPIWAL1";
const LOG_FILE: &str = "wal";
const REWRITE_FILE: &str = "wal.rewrite";
const HEADER_BYTES: usize = 8;
/// Largest record accepted when reading: a bigger length field is corruption, not a record (the
/// store refuses values near this size long before).
const MAX_RECORD_BYTES: usize = 64 << 20;

/// One entry of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// Opens a snapshot: the state below is as of `base`, reads below `compacted` were refused.
    Snapshot {
        base: Revision,
        compacted: Revision,
    },
    /// A key's state at the snapshot's base.
    Kv {
        kv: KeyValue,
        deadline: Option<i64>,
    },
    /// A write of `kv` at `kv.mod_revision`.
    Put {
        kv: KeyValue,
        deadline: Option<i64>,
    },
    Delete {
        key: Bytes,
        revision: Revision,
    },
    Compact {
        revision: Revision,
    },
}

const SNAPSHOT: u8 = 1;
const KV: u8 = 2;
const PUT: u8 = 3;
const DELETE: u8 = 4;
const COMPACT: u8 = 5;

impl Record {
    fn encode(&self, out: &mut BytesMut) {
        match self {
            Record::Snapshot { base, compacted } => {
                out.put_u8(SNAPSHOT);
                out.put_i64_le(*base);
                out.put_i64_le(*compacted);
            }
            Record::Kv { kv, deadline } | Record::Put { kv, deadline } => {
                out.put_u8(if matches!(self, Record::Kv { .. }) {
                    KV
                } else {
                    PUT
                });
                put_bytes(out, &kv.key);
                put_bytes(out, &kv.value);
                out.put_i64_le(kv.create_revision);
                out.put_i64_le(kv.mod_revision);
                out.put_i64_le(kv.version);
                out.put_i64_le(kv.lease);
                out.put_i64_le(deadline.unwrap_or(0));
            }
            Record::Delete { key, revision } => {
                out.put_u8(DELETE);
                put_bytes(out, key);
                out.put_i64_le(*revision);
            }
            Record::Compact { revision } => {
                out.put_u8(COMPACT);
                out.put_i64_le(*revision);
            }
        }
    }

    /// Decodes a payload whose CRC matched; an error here is a bug or a forged file.
    fn decode(mut p: Bytes) -> io::Result<Record> {
        let kind = get_u8(&mut p)?;
        let record = match kind {
            SNAPSHOT => Record::Snapshot {
                base: get_i64(&mut p)?,
                compacted: get_i64(&mut p)?,
            },
            KV | PUT => {
                let key = get_bytes(&mut p)?;
                let value = get_bytes(&mut p)?;
                let kv = KeyValue {
                    key,
                    value,
                    create_revision: get_i64(&mut p)?,
                    mod_revision: get_i64(&mut p)?,
                    version: get_i64(&mut p)?,
                    lease: get_i64(&mut p)?,
                };
                let deadline = Some(get_i64(&mut p)?).filter(|d| *d != 0);
                if kind == KV {
                    Record::Kv { kv, deadline }
                } else {
                    Record::Put { kv, deadline }
                }
            }
            DELETE => Record::Delete {
                key: get_bytes(&mut p)?,
                revision: get_i64(&mut p)?,
            },
            COMPACT => Record::Compact {
                revision: get_i64(&mut p)?,
            },
            other => return Err(invalid(format!("unknown record kind {other}"))),
        };
        if p.has_remaining() {
            return Err(invalid("trailing bytes in a record".into()));
        }
        Ok(record)
    }
}

fn put_bytes(out: &mut BytesMut, b: &[u8]) {
    // Values are far below 4 GiB: the store refuses anything near MAX_RECORD_BYTES.
    out.put_u32_le(b.len() as u32);
    out.put_slice(b);
}

fn get_u8(p: &mut Bytes) -> io::Result<u8> {
    p.try_get_u8().map_err(|_| invalid("short record".into()))
}

fn get_i64(p: &mut Bytes) -> io::Result<i64> {
    p.try_get_i64_le()
        .map_err(|_| invalid("short record".into()))
}

fn get_bytes(p: &mut Bytes) -> io::Result<Bytes> {
    let len = p
        .try_get_u32_le()
        .map_err(|_| invalid("short record".into()))? as usize;
    if len > p.remaining() {
        return Err(invalid("short record".into()));
    }
    Ok(p.split_to(len))
}

pub fn invalid(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("storage log: {why}"))
}

/// Appends `record`, framed, to `out`.
fn frame(record: &Record, out: &mut BytesMut) {
    let start = out.len();
    out.put_u32_le(0);
    out.put_u32_le(0);
    record.encode(out);
    let payload = &out[start + HEADER_BYTES..];
    let len = payload.len() as u32;
    let crc = crc32fast::hash(payload);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// What opening found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    pub records: usize,
    /// Bytes of torn or corrupt tail cut off.
    pub discarded_bytes: u64,
}

#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    file: File,
    /// Bytes in the file, all synced.
    len: u64,
    /// Framed records of the group being built, not yet written.
    pending: BytesMut,
    /// The file's size right after its snapshot was written.
    snapshot_len: u64,
}

impl Wal {
    /// Opens the log in `dir` (creating an empty one if there is none), calling `replay` on each
    /// record in order; the first is always a `Snapshot`.
    pub fn open(
        dir: &Path,
        mut replay: impl FnMut(Record) -> io::Result<()>,
    ) -> io::Result<(Wal, Recovery)> {
        fs::create_dir_all(dir)?;
        // A rewrite that did not reach its rename left only garbage.
        match fs::remove_file(dir.join(REWRITE_FILE)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let path = dir.join(LOG_FILE);
        if !path.exists() {
            write_snapshot(
                dir,
                [Record::Snapshot {
                    base: super::mvcc::FIRST_REVISION,
                    compacted: 0,
                }],
            )??;
        }
        let mut file = OpenOptions::new().read(true).append(true).open(&path)?;
        let mut data = Vec::new();
        file.read_to_end(&mut data)?;
        let data = Bytes::from(data);
        if data.len() < MAGIC.len() || &data[..MAGIC.len()] != MAGIC {
            return Err(invalid(format!("{} is not a kapi log", path.display())));
        }
        let mut offset = MAGIC.len();
        let mut records = 0;
        while let Some(payload) = next_payload(&data, offset) {
            let record = Record::decode(payload.clone())?;
            if (records == 0) != matches!(record, Record::Snapshot { .. }) {
                return Err(invalid("the log does not start with one snapshot".into()));
            }
            replay(record)?;
            records += 1;
            offset += HEADER_BYTES + payload.len();
        }
        if records == 0 {
            return Err(invalid("the log has no snapshot".into()));
        }
        let discarded_bytes = (data.len() - offset) as u64;
        if discarded_bytes > 0 {
            file.set_len(offset as u64)?;
            file.sync_all()?;
        }
        let len = offset as u64;
        Ok((
            Wal {
                dir: dir.to_path_buf(),
                file,
                len,
                pending: BytesMut::new(),
                snapshot_len: len,
            },
            Recovery {
                records,
                discarded_bytes,
            },
        ))
    }

    pub fn append(&mut self, record: &Record) {
        frame(record, &mut self.pending);
    }

    /// Writes and syncs the pending records. After an error the file's tail is unknown: the
    /// caller must stop writing (the next open cuts off whatever part of it was written).
    pub fn commit(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.file.write_all(&self.pending)?;
        self.file.sync_data()?;
        self.len += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the log holds much more than a fresh snapshot would: past `threshold`, and more
    /// than twice its size after the last snapshot (so a large state is not rewritten endlessly).
    pub fn wants_rewrite(&self, threshold: u64) -> bool {
        self.len > threshold && self.len > 2 * self.snapshot_len
    }

    /// Replaces the log by `snapshot` (which must start with `Record::Snapshot`). On error the old
    /// log is still the log, unless the error says otherwise (`RewriteError::Uncertain`).
    pub fn rewrite(
        &mut self,
        snapshot: impl IntoIterator<Item = Record>,
    ) -> Result<(), RewriteError> {
        debug_assert!(self.pending.is_empty());
        let renamed = match write_snapshot(&self.dir, snapshot) {
            Ok(renamed) => renamed,
            Err(e) => {
                // Best effort: the next open removes it anyway.
                let _ = fs::remove_file(self.dir.join(REWRITE_FILE));
                return Err(RewriteError::Failed(e));
            }
        };
        let reopen = || -> io::Result<File> {
            renamed?;
            OpenOptions::new()
                .read(true)
                .append(true)
                .open(self.dir.join(LOG_FILE))
        };
        // Past the rename, which log a crash leaves behind is unknown until the directory is
        // synced: appending to either could lose acknowledged writes.
        let file = reopen().map_err(RewriteError::Uncertain)?;
        self.len = file.metadata().map_err(RewriteError::Uncertain)?.len();
        self.snapshot_len = self.len;
        self.file = file;
        Ok(())
    }
}

#[derive(Debug)]
pub enum RewriteError {
    /// The rewrite did not happen; the old log is intact and in use.
    Failed(io::Error),
    /// The new log may or may not be the one a restart finds: stop writing.
    Uncertain(io::Error),
}

/// The payload of the record at `offset`, if a whole, intact one is there.
fn next_payload(data: &Bytes, offset: usize) -> Option<Bytes> {
    let header = data.get(offset..offset + HEADER_BYTES)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len == 0 || len > MAX_RECORD_BYTES || data.len() - offset - HEADER_BYTES < len {
        return None;
    }
    let payload = data.slice(offset + HEADER_BYTES..offset + HEADER_BYTES + len);
    (crc32fast::hash(&payload) == crc).then_some(payload)
}

/// Writes `records` as the new log: to a side file, synced, renamed over the log. Returns
/// `Ok(Err(_))` when the directory sync after the rename failed (the rename happened, but may not
/// survive a crash).
fn write_snapshot(
    dir: &Path,
    records: impl IntoIterator<Item = Record>,
) -> io::Result<io::Result<()>> {
    /// Bytes framed before they are handed to the file: large writes, bounded memory.
    const CHUNK_BYTES: usize = 1 << 20;
    let side = dir.join(REWRITE_FILE);
    let mut out = BufWriter::new(File::create(&side)?);
    out.write_all(MAGIC)?;
    let mut chunk = BytesMut::with_capacity(CHUNK_BYTES);
    for record in records {
        frame(&record, &mut chunk);
        if chunk.len() >= CHUNK_BYTES {
            out.write_all(&chunk)?;
            chunk.clear();
        }
    }
    out.write_all(&chunk)?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    fs::rename(&side, dir.join(LOG_FILE))?;
    Ok(File::open(dir).and_then(|d| d.sync_all()))
}
