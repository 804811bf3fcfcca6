//! kvtier-sled: a [`DiskStore`] on [sled](https://docs.rs/sled/0.34) 0.34.
//!
//! ```text
//! dir/                  one sled database
//!   tree "db<N>"        the keys of kvtier DB N (created on the first write to that DB)
//! ```
//! Guarantees (see the `DiskStore` contract):
//! - **Atomic batches, across DBs too.** A `write` touching one DB is one sled `Batch`; a `write`
//!   touching several DBs is one sled transaction over their trees. Both are recovered all or
//!   nothing after a crash, so [`DiskStore::atomic_batches`] is `true`. In a batch that names a
//!   key twice the last op wins.
//! - **Durability.** `write` returns once the batch is in sled's in-memory log buffer; sled's
//!   background flusher writes it out about every 500 ms. `sync` is `Db::flush`: it writes and
//!   fsyncs the log, so every `write` that returned before it survives a crash. A record is
//!   checksummed by sled, so after a crash each key holds its old or its new value.
//! - **`clear`** drops the DB's tree (one atomic change of sled's metadata) and flushes before it
//!   returns, so it is atomic and durable. It waits for writes, reads and scans in flight.
//! - **`scan`** walks one tree in byte order of the keys. The cursor is opaque: a tag byte
//!   followed by the last key returned; the next page starts strictly after that key, so a key
//!   present for the whole scan is returned exactly once whatever is written meanwhile.
//! - **`checkpoint`** copies every tree into a new sled database while writes are held back, so
//!   the copy is one consistent point in time.
//! - Opening the store reads sled's metadata only, not the keys.

#![forbid(unsafe_code)]

use kvtier_core::cursor::PageBuilder;
use kvtier_core::{DbIndex, DiskStore, HeadPage, ScanPage, StoreError, WriteOp};
use sled::transaction::{TransactionError, Transactional};
use std::collections::btree_map::{BTreeMap, Entry};
use std::fmt;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Keys copied per batch by [`SledStore::checkpoint`].
const CHECKPOINT_BATCH_KEYS: usize = 1024;
/// Bytes (keys + values) copied per batch by [`SledStore::checkpoint`].
const CHECKPOINT_BATCH_BYTES: usize = 16 << 20;

/// Tuning of a [`SledStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SledOptions {
    /// Size of sled's page cache (sled's `cache_capacity`). sled counts its cache approximately,
    /// so the memory it really holds can exceed this figure.
    pub cache_capacity_bytes: u64,
}

impl Default for SledOptions {
    /// 64 MiB of page cache (sled's own default is 1 GiB; kvtier keeps its hot data in its own
    /// object cache).
    fn default() -> Self {
        SledOptions {
            cache_capacity_bytes: 64 << 20,
        }
    }
}

/// The sled store. Open it with [`SledStore::open`] or [`SledStore::open_with`].
pub struct SledStore {
    db: sled::Db,
    path: PathBuf,
    options: SledOptions,
    /// Writers and `clear` hold it shared; `checkpoint` holds it exclusively to copy a
    /// consistent state. Taken before `trees`.
    write_gate: RwLock<()>,
    /// Open trees by DB. Held shared for the whole of every operation that uses a tree, and
    /// exclusively by `clear` (which drops trees) and to create a tree.
    trees: RwLock<BTreeMap<DbIndex, sled::Tree>>,
}

impl fmt::Debug for SledStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SledStore")
            .field("path", &self.path)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Maps a sled error to its kind: IO errors keep their kind (so ENOSPC is `NoSpace`), detected
/// corruption is `Corruption`, anything else is `Backend`.
/// How long an open waits for the file lock of a store this process has just closed.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Opens a sled database, waiting a little for its lock. Dropping a `sled::Db` does not wait for
/// every thread that holds its files (its log writers finish on their own), so reopening the
/// same store at once can find the lock still held (a flaky "could not acquire lock" in the
/// reopen test, and a restart or snapshot right after a close). Another process holding the
/// store keeps it locked past the wait, and the open then fails as before.
fn open_db(config: sled::Config) -> Result<sled::Db, StoreError> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match config.open() {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            r => return r.map_err(map_err),
        }
    }
}

fn map_err(e: sled::Error) -> StoreError {
    match e {
        sled::Error::Io(e) => StoreError::from_io(e),
        sled::Error::Corruption { at, .. } => {
            StoreError::Corruption(format!("sled detected corrupt data at {at:?}"))
        }
        other => StoreError::Backend(Box::new(other)),
    }
}

fn tree_name(db: DbIndex) -> String {
    format!("db{db}")
}

/// The DB index of a tree named `db<N>` (canonical decimal), or `None` for any other tree.
fn parse_tree_name(name: &[u8]) -> Option<DbIndex> {
    let digits = std::str::from_utf8(name.strip_prefix(b"db")?).ok()?;
    let db: DbIndex = digits.parse().ok()?;
    (tree_name(db).as_bytes() == name).then_some(db)
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    // The guarded data stays consistent even if a holder panicked: every change to it is one
    // map insert or remove.
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

impl SledStore {
    /// One page of keys after `cursor`, with the first `head_len` bytes of each value if asked.
    fn walk(
        &self,
        db: DbIndex,
        cursor: &[u8],
        limit: usize,
        head_len: Option<usize>,
    ) -> Result<HeadPage, StoreError> {
        let after = kvtier_core::cursor::decode(cursor, "sled")?;
        let trees = read(&self.trees);
        let Some(tree) = trees.get(&db) else {
            return Ok((ScanPage::default(), Vec::new()));
        };
        let iter = match after {
            None => tree.iter(),
            Some(k) => tree.range::<&[u8], _>((Bound::Excluded(k), Bound::Unbounded)),
        };
        let mut page = PageBuilder::new(limit, head_len);
        for item in iter {
            let (key, value) = item.map_err(map_err)?;
            if !page.push(&key, || &value) {
                return Ok(page.finish(true, cursor));
            }
        }
        Ok(page.finish(false, cursor))
    }

    /// Opens (creating if needed) a store in `dir` with [`SledOptions::default`].
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(dir, SledOptions::default())
    }

    /// Opens (creating if needed) a store in `dir`. Fails if another process (or another
    /// `SledStore` in this process) has it open.
    pub fn open_with(dir: impl AsRef<Path>, options: SledOptions) -> Result<Self, StoreError> {
        let path = dir.as_ref().to_path_buf();
        let db = open_db(
            sled::Config::new()
                .path(&path)
                .cache_capacity(options.cache_capacity_bytes),
        )?;
        let mut trees = BTreeMap::new();
        for name in db.tree_names() {
            if let Some(n) = parse_tree_name(&name) {
                trees.insert(n, db.open_tree(&name).map_err(map_err)?);
            }
        }
        log::debug!(
            "sled: opened {} with {} DB trees (recovered: {})",
            path.display(),
            trees.len(),
            db.was_recovered()
        );
        Ok(SledStore {
            db,
            path,
            options,
            write_gate: RwLock::new(()),
            trees: RwLock::new(trees),
        })
    }

    /// Makes the next open of the (closed) store in `dir` fast. sled writes its recovery
    /// snapshot only when it opens, so an open replays every log segment written since the
    /// previous open: 2.75 s for a store loaded with 10 million keys. Opening and closing it
    /// once more right after a clean close does that replay at shutdown instead, so a restart
    /// reads the fresh snapshot. (After a crash the replay is unavoidable.)
    pub fn snapshot_after_close(dir: impl AsRef<Path>) -> Result<(), StoreError> {
        let db = open_db(sled::Config::new().path(dir.as_ref()))?;
        db.flush().map_err(map_err)?;
        drop(db);
        Ok(())
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &SledOptions {
        &self.options
    }

    /// Returns the tree map, shared, with a tree for each DB in `dbs` (creating missing ones).
    fn trees_for(
        &self,
        dbs: &[DbIndex],
    ) -> Result<RwLockReadGuard<'_, BTreeMap<DbIndex, sled::Tree>>, StoreError> {
        loop {
            let trees = read(&self.trees);
            if dbs.iter().all(|db| trees.contains_key(db)) {
                return Ok(trees);
            }
            drop(trees);
            let mut trees = write(&self.trees);
            for &db in dbs {
                if let Entry::Vacant(slot) = trees.entry(db) {
                    slot.insert(self.db.open_tree(tree_name(db)).map_err(map_err)?);
                }
            }
            // A `clear` may drop a tree between this and the shared lock: check again.
        }
    }
}

impl DiskStore for SledStore {
    fn get(&self, db: DbIndex, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let trees = read(&self.trees);
        match trees.get(&db) {
            Some(tree) => Ok(tree.get(key).map_err(map_err)?.map(|v| v.to_vec())),
            None => Ok(None),
        }
    }

    /// One sled `Batch` when the batch names one DB, one transaction over the DBs' trees
    /// otherwise; atomic across crashes either way, durable after the next `sync`.
    fn write(&self, batch: &[WriteOp]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        // Ops grouped by DB, in order: a later op on the same key replaces an earlier one.
        let mut per_db: BTreeMap<DbIndex, sled::Batch> = BTreeMap::new();
        for op in batch {
            let b = per_db.entry(op.db()).or_default();
            match op {
                WriteOp::Put { key, value, .. } => b.insert(&key[..], &value[..]),
                WriteOp::Delete { key, .. } => b.remove(&key[..]),
            }
        }
        let _gate = read(&self.write_gate);
        let dbs: Vec<DbIndex> = per_db.keys().copied().collect();
        let trees = self.trees_for(&dbs)?;
        if per_db.len() == 1 {
            let (db, b) = per_db.pop_first().expect("one DB");
            return trees[&db].apply_batch(b).map_err(map_err);
        }
        let involved: Vec<sled::Tree> = dbs.iter().map(|db| trees[db].clone()).collect();
        let batches: Vec<sled::Batch> = per_db.into_values().collect();
        let result: Result<(), TransactionError<()>> = involved.as_slice().transaction(|views| {
            for (view, b) in views.iter().zip(&batches) {
                view.apply_batch(b)?;
            }
            Ok(())
        });
        match result {
            Ok(()) => Ok(()),
            Err(TransactionError::Storage(e)) => Err(map_err(e)),
            Err(TransactionError::Abort(())) => Err(StoreError::Backend(
                "sled aborted a write-only transaction".into(),
            )),
        }
    }

    /// `Db::flush`: writes and fsyncs sled's log.
    fn sync(&self) -> Result<(), StoreError> {
        self.db.flush().map(drop).map_err(map_err)
    }

    fn scan(&self, db: DbIndex, cursor: &[u8], limit: usize) -> Result<ScanPage, StoreError> {
        self.walk(db, cursor, limit, None).map(|(page, _)| page)
    }

    /// Record heads are read by the same iterator pass: no point read per key.
    fn scan_heads(
        &self,
        db: DbIndex,
        cursor: &[u8],
        limit: usize,
        head_len: usize,
    ) -> Result<HeadPage, StoreError> {
        self.walk(db, cursor, limit, Some(head_len))
    }

    /// Drops the DB trees (atomic per tree) and flushes before returning.
    fn clear(&self, db: Option<DbIndex>) -> Result<(), StoreError> {
        let _gate = read(&self.write_gate);
        let mut trees = write(&self.trees);
        let victims: Vec<DbIndex> = match db {
            Some(db) => trees.contains_key(&db).then_some(db).into_iter().collect(),
            None => trees.keys().copied().collect(),
        };
        for db in victims {
            trees.remove(&db);
            self.db.drop_tree(tree_name(db)).map_err(map_err)?;
        }
        self.db.flush().map_err(map_err)?;
        Ok(())
    }

    /// Copies every DB tree into a new sled database at `dest` (which must not exist) and
    /// flushes it. Writes wait until the copy is done; reads and scans go on.
    fn checkpoint(&self, dest: &Path) -> Result<(), StoreError> {
        if dest.exists() {
            return Err(StoreError::InvalidArgument(format!(
                "checkpoint destination {} already exists",
                dest.display()
            )));
        }
        let _gate = write(&self.write_gate);
        let trees = read(&self.trees);
        let copy = sled::Config::new()
            .path(dest)
            .create_new(true)
            .cache_capacity(self.options.cache_capacity_bytes)
            .open()
            .map_err(map_err)?;
        for (&db, tree) in trees.iter() {
            let target = copy.open_tree(tree_name(db)).map_err(map_err)?;
            let mut batch = sled::Batch::default();
            let (mut keys, mut bytes) = (0usize, 0usize);
            for kv in tree.iter() {
                let (k, v) = kv.map_err(map_err)?;
                keys += 1;
                bytes += k.len() + v.len();
                batch.insert(k, v);
                if keys >= CHECKPOINT_BATCH_KEYS || bytes >= CHECKPOINT_BATCH_BYTES {
                    target
                        .apply_batch(std::mem::take(&mut batch))
                        .map_err(map_err)?;
                    (keys, bytes) = (0, 0);
                }
            }
            target.apply_batch(batch).map_err(map_err)?;
        }
        copy.flush().map_err(map_err)?;
        Ok(())
    }

    fn atomic_batches(&self) -> bool {
        true
    }

    /// The configured page-cache capacity: sled does not report what its cache holds, and
    /// counts it approximately, so this is the intended bound rather than a measurement.
    fn memory_usage(&self) -> Option<u64> {
        Some(self.options.cache_capacity_bytes)
    }

    fn name(&self) -> &'static str {
        "sled"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_names_round_trip() {
        for db in [0, 1, 15, DbIndex::MAX] {
            assert_eq!(parse_tree_name(tree_name(db).as_bytes()), Some(db));
        }
        for other in [
            &b"__sled__default"[..],
            b"db",
            b"db01",
            b"db+1",
            b"dbx",
            b"db 1",
        ] {
            assert_eq!(parse_tree_name(other), None, "{other:?}");
        }
    }
}
