//! A complete kvtier backend, written the way a third party would write one: it depends on
//! `kvtier-core` only, implements [`DiskStore`] and runs the conformance kit
//! (`tests/conformance.rs`).
//!
//! All data lives in RAM in `BTreeMap`s. `sync` writes a snapshot of everything to
//! `dir/snapshot.tmp`, fsyncs it, renames it over `dir/snapshot` and fsyncs the directory;
//! `open` loads `dir/snapshot`. That makes each promise of the `DiskStore` contract easy to see:
//! - **Atomic batches**: a batch is applied under the write lock and a snapshot is taken under the
//!   read lock, so a snapshot holds all of a batch or none of it.
//! - **Durability**: everything a `write` did before a `sync` returned `Ok` is in the renamed
//!   snapshot, and the rename itself was made durable by the directory fsync.
//! - **No torn values**: a crash before `sync` finishes leaves the old snapshot in place (the
//!   rename is atomic), so every key has its value of the last completed `sync`. The snapshot
//!   carries a crc32; a damaged one is reported as [`StoreError::Corruption`] at open.
//!
//! - **One process at a time**: `open` takes an exclusive lock on `dir/LOCK`, so a second open of
//!   the same directory fails while the first store lives (the kernel drops the lock when the
//!   process dies, even by kill -9).
//!
//! It is an example, not a production store: the dataset must fit in memory and every `sync`
//! rewrites all of it. For a store that scales, see `examples/logstore`.

#![forbid(unsafe_code)]

use kvtier_core::{DbIndex, DiskStore, ScanPage, StoreError, WriteOp};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

const LOCK: &str = "LOCK";
const SNAPSHOT: &str = "snapshot";
const SNAPSHOT_TMP: &str = "snapshot.tmp";
const MAGIC: &[u8; 8] = b"KVMEMv1\n";

type Db = BTreeMap<Vec<u8>, Vec<u8>>;

/// The in-memory state. `version` counts writes, so `sync` can tell whether anything changed.
#[derive(Default)]
struct State {
    dbs: BTreeMap<DbIndex, Db>,
    version: u64,
}

/// A `BTreeMap` store persisted as one snapshot file. Open it with [`MemStore::open`].
pub struct MemStore {
    dir: PathBuf,
    state: RwLock<State>,
    /// The `version` last written to disk. Held for the whole of a `sync`, which serializes
    /// syncs: two of them must not share the temp file, and an older snapshot must never be
    /// renamed over a newer one (or a `sync` that returned `Ok` would be undone).
    persisted: Mutex<u64>,
    /// Holds the directory lock for as long as the store lives.
    _lock: File,
}

// `DiskStore` requires `Debug`; printing the data would be useless (and huge).
impl std::fmt::Debug for MemStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemStore").field("dir", &self.dir).finish()
    }
}

impl MemStore {
    /// Opens (creating if needed) the store in `dir` and loads its last snapshot.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(StoreError::from_io)?;
        let lock = File::create(dir.join(LOCK)).map_err(StoreError::from_io)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Io(std::io::Error::new(
                    ErrorKind::WouldBlock,
                    format!("{} is in use by another memstore", dir.display()),
                )))
            }
            Err(fs::TryLockError::Error(e)) => return Err(StoreError::from_io(e)),
        }
        // A temp file left by a crash during `sync` is an unfinished snapshot: drop it.
        match fs::remove_file(dir.join(SNAPSHOT_TMP)) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::from_io(e)),
        }
        let dbs = match fs::read(dir.join(SNAPSHOT)) {
            Ok(bytes) => decode(&bytes)?,
            Err(e) if e.kind() == ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(StoreError::from_io(e)),
        };
        Ok(MemStore {
            dir,
            state: RwLock::new(State { dbs, version: 0 }),
            persisted: Mutex::new(0),
            _lock: lock,
        })
    }
}

impl DiskStore for MemStore {
    fn get(&self, db: DbIndex, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let state = self.state.read().expect("memstore lock poisoned");
        Ok(state.dbs.get(&db).and_then(|d| d.get(key)).cloned())
    }

    fn write(&self, batch: &[WriteOp]) -> Result<(), StoreError> {
        // Applying ops in order gives "last op wins" for free.
        let mut state = self.state.write().expect("memstore lock poisoned");
        for op in batch {
            match op {
                WriteOp::Put { db, key, value } => {
                    state
                        .dbs
                        .entry(*db)
                        .or_default()
                        .insert(key.clone(), value.clone());
                }
                WriteOp::Delete { db, key } => {
                    if let Some(d) = state.dbs.get_mut(db) {
                        d.remove(key);
                    }
                }
            }
        }
        state.version += 1;
        Ok(())
    }

    fn sync(&self) -> Result<(), StoreError> {
        let mut persisted = self.persisted.lock().expect("memstore lock poisoned");
        // Serialize under the read lock (a consistent cut between batches), then let writers
        // go on while the file is written.
        let (bytes, version) = {
            let state = self.state.read().expect("memstore lock poisoned");
            if state.version == *persisted {
                return Ok(()); // nothing written since the last snapshot
            }
            (encode(&state.dbs), state.version)
        };
        let tmp = self.dir.join(SNAPSHOT_TMP);
        let write_snapshot = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?; // the data is on disk before the rename can be
            fs::rename(&tmp, self.dir.join(SNAPSHOT))?;
            File::open(&self.dir)?.sync_all() // and the rename is durable
        };
        write_snapshot().map_err(StoreError::from_io)?;
        *persisted = version;
        Ok(())
    }

    fn scan(&self, db: DbIndex, cursor: &[u8], limit: usize) -> Result<ScanPage, StoreError> {
        // The cursor is empty at the start, else a 1 byte followed by the last key returned (the
        // marker lets the empty key be a "last key"). Keys come in byte order, so a key present
        // for the whole scan is after the cursor until it is returned, whatever else changes.
        let after = match cursor {
            [] => Bound::Unbounded,
            [1, last @ ..] => Bound::Excluded(last),
            _ => {
                return Err(StoreError::InvalidArgument(
                    "invalid memstore cursor".into(),
                ))
            }
        };
        let limit = limit.max(1);
        let state = self.state.read().expect("memstore lock poisoned");
        let Some(d) = state.dbs.get(&db) else {
            return Ok(ScanPage::default());
        };
        // Take one key more than the page, to know whether another page follows.
        let mut keys: Vec<Vec<u8>> = d
            .range::<[u8], _>((after, Bound::Unbounded))
            .take(limit + 1)
            .map(|(k, _)| k.clone())
            .collect();
        let next = (keys.len() > limit).then(|| {
            keys.truncate(limit);
            let mut c = vec![1];
            c.extend_from_slice(&keys[limit - 1]);
            c
        });
        Ok(ScanPage { keys, next })
    }

    fn clear(&self, db: Option<DbIndex>) -> Result<(), StoreError> {
        {
            let mut state = self.state.write().expect("memstore lock poisoned");
            match db {
                Some(db) => {
                    state.dbs.remove(&db);
                }
                None => state.dbs.clear(),
            }
            state.version += 1;
        }
        // `clear` must be durable when it returns.
        self.sync()
    }

    fn approximate_len(&self, db: DbIndex) -> Option<u64> {
        let state = self.state.read().expect("memstore lock poisoned");
        Some(state.dbs.get(&db).map_or(0, |d| d.len() as u64))
    }

    fn atomic_batches(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "memstore"
    }
}

/// Snapshot file: `MAGIC | records | crc32 LE of everything before it`, one record per key:
/// `db u32 LE | key_len u32 LE | key | value_len u64 LE | value`.
fn encode(dbs: &BTreeMap<DbIndex, Db>) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    for (db, d) in dbs {
        for (key, value) in d {
            out.extend_from_slice(&db.to_le_bytes());
            out.extend_from_slice(&(key.len() as u32).to_le_bytes());
            out.extend_from_slice(key);
            out.extend_from_slice(&(value.len() as u64).to_le_bytes());
            out.extend_from_slice(value);
        }
    }
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn decode(bytes: &[u8]) -> Result<BTreeMap<DbIndex, Db>, StoreError> {
    let bad = |what: &str| StoreError::Corruption(format!("memstore snapshot: {what}"));
    if bytes.len() < MAGIC.len() + 4 || &bytes[..MAGIC.len()] != MAGIC {
        return Err(bad("bad header"));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32(body) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
        return Err(bad("checksum mismatch"));
    }
    let mut rest = &body[MAGIC.len()..];
    // Takes `n` bytes off the front of `rest`.
    let mut take = |n: usize| -> Result<&[u8], StoreError> {
        if rest.len() < n {
            return Err(bad("truncated record"));
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    let mut dbs: BTreeMap<DbIndex, Db> = BTreeMap::new();
    let mut remaining = body.len() - MAGIC.len();
    while remaining > 0 {
        let db = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes"));
        let key_len = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
        let key = take(key_len)?.to_vec();
        let value_len = u64::from_le_bytes(take(8)?.try_into().expect("8 bytes"));
        let value_len = usize::try_from(value_len).map_err(|_| bad("value too large"))?;
        let value = take(value_len)?.to_vec();
        remaining -= 16 + key_len + value_len;
        dbs.entry(db).or_default().insert(key, value);
    }
    Ok(dbs)
}

/// CRC-32 (IEEE), bitwise: short, and fast enough for an example. A real backend would use a
/// table-driven crate such as `crc32fast`.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}
