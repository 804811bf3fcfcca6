//! kvtier-fs: a [`DiskStore`] that keeps one file per key.
//!
//! ```text
//! dir/
//!   LOCK                  held (flock) while a process has the store open
//!   tmp/                  files being written; emptied at open
//!   journal/batch.jnl     a committed multi-key batch not yet fully applied
//!   db<N>/<xx>/<hash>     one file per key: xx = first byte of the hash, hash = blake3(key) in hex
//! ```
//! Guarantees (see the `DiskStore` contract):
//! - A key's file is written in `tmp/`, then renamed over its name, so a reader or a crash sees
//!   the old or the new file, never a torn one; every file carries a crc32 and its key.
//! - A batch touching more than one key is atomic across crashes: it is committed to a journal
//!   first and replayed at open if the crash hit while it was applied (see [`journal`]); if
//!   `write` fails after that commit, the batch is rolled forward before the next write.
//!   Such a batch is durable when `write` returns.
//! - A single-key write is durable after the next `sync`.
//! - Writes are serialized inside one process; reads and scans run concurrently with them.

#![forbid(unsafe_code)]

mod file_format;
mod journal;

use kvtier_core::{DbIndex, DiskStore, ScanPage, StoreError, WriteOp};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

const JOURNAL: &str = "batch.jnl";
const JOURNAL_TMP: &str = "batch.tmp";
/// Length of a file name: blake3's 32 bytes in hex.
const NAME_LEN: usize = 64;

/// The file-per-key store. Open it with [`FsStore::open`].
#[derive(Debug)]
pub struct FsStore {
    root: PathBuf,
    tmp: PathBuf,
    journal: PathBuf,
    /// Serializes writers; holds the directories whose entries changed since the last `sync`.
    writer: Mutex<HashSet<PathBuf>>,
    tmp_seq: AtomicU64,
    _lock: File,
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::from_io(e)
}

fn fsync_dir(path: &Path) -> Result<(), StoreError> {
    File::open(path).and_then(|d| d.sync_all()).map_err(io)
}

impl FsStore {
    /// Opens (creating if needed) a store in `dir`. Replays an interrupted batch and removes
    /// leftover temp files; it does not read the keys, so opening is fast whatever the size.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        let root = dir.as_ref().to_path_buf();
        fs::create_dir_all(&root).map_err(io)?;
        let lock = File::create(root.join("LOCK")).map_err(io)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Io(std::io::Error::new(
                    ErrorKind::WouldBlock,
                    format!("{} is in use by another process", root.display()),
                )))
            }
            Err(fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let tmp = root.join("tmp");
        let journal = root.join("journal");
        for d in [&tmp, &journal] {
            fs::create_dir_all(d).map_err(io)?;
        }
        // Remove trash of an interrupted clear, and temp files of interrupted writes.
        for entry in fs::read_dir(&root).map_err(io)? {
            let entry = entry.map_err(io)?;
            if entry.file_name().to_string_lossy().starts_with("trash.") {
                fs::remove_dir_all(entry.path()).map_err(io)?;
            }
        }
        for entry in fs::read_dir(&tmp).map_err(io)? {
            fs::remove_file(entry.map_err(io)?.path()).map_err(io)?;
        }
        let _ = fs::remove_file(journal.join(JOURNAL_TMP));
        fsync_dir(&root)?;
        let store = FsStore {
            root,
            tmp,
            journal,
            writer: Mutex::new(HashSet::new()),
            tmp_seq: AtomicU64::new(0),
            _lock: lock,
        };
        store.replay_journal(&mut store.writer.lock().expect("writer lock"))?;
        Ok(store)
    }

    /// Rolls forward a committed batch whose journal is still there: one interrupted by a crash
    /// (at open), or one whose `write` failed after the commit point (before the next write or
    /// clear, so that it can never be replayed over newer data).
    fn replay_journal(&self, dirty: &mut HashSet<PathBuf>) -> Result<(), StoreError> {
        let path = self.journal.join(JOURNAL);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(e)),
        };
        let ops = journal::decode(&bytes)?;
        log::info!("fs: replaying an interrupted batch of {} ops", ops.len());
        let refs: Vec<&WriteOp> = ops.iter().collect();
        self.apply(&refs, dirty)?;
        self.finish_batch(dirty)
    }

    fn db_dir(&self, db: DbIndex) -> PathBuf {
        self.root.join(format!("db{db}"))
    }

    fn key_path(&self, db: DbIndex, key: &[u8]) -> (PathBuf, PathBuf) {
        let hash = blake3::hash(key).to_hex();
        let shard = self.db_dir(db).join(&hash[..2]);
        let file = shard.join(hash.as_str());
        (shard, file)
    }

    /// Writes one key's file into tmp/ and renames it into place. `durable_data` fsyncs the file
    /// before the rename (single-key writes); batches rely on one filesystem sync instead.
    fn put_file(
        &self,
        db: DbIndex,
        key: &[u8],
        value: &[u8],
        durable_data: bool,
        dirty: &mut HashSet<PathBuf>,
    ) -> Result<(), StoreError> {
        let (shard, target) = self.key_path(db, key);
        let tmp = self
            .tmp
            .join(format!("{}", self.tmp_seq.fetch_add(1, Ordering::Relaxed)));
        let bytes = file_format::encode(key, value)?;
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&bytes)?;
            if durable_data {
                f.sync_data()?;
            }
            Ok(())
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(io(e));
        }
        match fs::rename(&tmp, &target) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {
                self.create_shard(db, &shard, dirty)?;
                fs::rename(&tmp, &target).map_err(io)?;
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(io(e));
            }
        }
        dirty.insert(shard);
        dirty.insert(self.tmp.clone());
        Ok(())
    }

    fn create_shard(
        &self,
        db: DbIndex,
        shard: &Path,
        dirty: &mut HashSet<PathBuf>,
    ) -> Result<(), StoreError> {
        let db_dir = self.db_dir(db);
        if !db_dir.exists() {
            fs::create_dir_all(&db_dir).map_err(io)?;
            dirty.insert(self.root.clone());
        }
        match fs::create_dir(shard) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(e)),
        }
        dirty.insert(db_dir);
        Ok(())
    }

    fn delete_file(
        &self,
        db: DbIndex,
        key: &[u8],
        dirty: &mut HashSet<PathBuf>,
    ) -> Result<(), StoreError> {
        let (shard, target) = self.key_path(db, key);
        match fs::remove_file(&target) {
            Ok(()) => {
                dirty.insert(shard);
                Ok(())
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(e)),
        }
    }

    fn apply(&self, ops: &[&WriteOp], dirty: &mut HashSet<PathBuf>) -> Result<(), StoreError> {
        for op in ops {
            match op {
                WriteOp::Put { db, key, value } => self.put_file(*db, key, value, false, dirty)?,
                WriteOp::Delete { db, key } => self.delete_file(*db, key, dirty)?,
            }
        }
        Ok(())
    }

    /// Makes the applied batch durable, then retires its journal durably (so it is never
    /// replayed over newer writes).
    fn finish_batch(&self, dirty: &mut HashSet<PathBuf>) -> Result<(), StoreError> {
        let root = File::open(&self.root).map_err(io)?;
        rustix::fs::syncfs(&root).map_err(|e| io(e.into()))?;
        dirty.clear();
        fs::remove_file(self.journal.join(JOURNAL)).map_err(io)?;
        fsync_dir(&self.journal)
    }

    fn write_journal(&self, ops: &[&WriteOp]) -> Result<(), StoreError> {
        let tmp = self.journal.join(JOURNAL_TMP);
        let bytes = journal::encode(ops);
        let mut f = File::create(&tmp).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_data().map_err(io)?;
        fs::rename(&tmp, self.journal.join(JOURNAL)).map_err(io)?;
        fsync_dir(&self.journal)
    }
}

/// Keeps the last op per (db, key), in the order of those last ops.
fn last_wins(batch: &[WriteOp]) -> Vec<&WriteOp> {
    let mut last: HashMap<(DbIndex, &[u8]), usize> = HashMap::with_capacity(batch.len());
    for (i, op) in batch.iter().enumerate() {
        last.insert((op.db(), op.key()), i);
    }
    batch
        .iter()
        .enumerate()
        .filter(|(i, op)| last[&(op.db(), op.key())] == *i)
        .map(|(_, op)| op)
        .collect()
}

impl DiskStore for FsStore {
    fn get(&self, db: DbIndex, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let (_, path) = self.key_path(db, key);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        let (stored_key, value) = file_format::decode(&bytes)?;
        if stored_key != key {
            return Err(StoreError::Corruption(format!(
                "fs record {} holds another key",
                path.display()
            )));
        }
        Ok(Some(value.to_vec()))
    }

    fn write(&self, batch: &[WriteOp]) -> Result<(), StoreError> {
        let ops = last_wins(batch);
        let mut dirty = self.writer.lock().expect("writer lock");
        self.replay_journal(&mut dirty)?;
        match ops.as_slice() {
            [] => Ok(()),
            [WriteOp::Put { db, key, value }] => self.put_file(*db, key, value, true, &mut dirty),
            [WriteOp::Delete { db, key }] => self.delete_file(*db, key, &mut dirty),
            _ => {
                self.write_journal(&ops)?;
                self.apply(&ops, &mut dirty)?;
                self.finish_batch(&mut dirty)
            }
        }
    }

    /// File names are hashes, so a random name is a uniformly random position.
    fn random_cursor(&self, seed: u64) -> Option<Vec<u8>> {
        let mut x = seed | 1;
        let name = (0..NAME_LEN)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b"0123456789abcdef"[(x % 16) as usize]
            })
            .collect();
        Some(name)
    }

    fn sync(&self) -> Result<(), StoreError> {
        let dirs: Vec<PathBuf> = {
            let mut dirty = self.writer.lock().expect("writer lock");
            dirty.drain().collect()
        };
        for d in &dirs {
            match fsync_dir(d) {
                // A DB directory removed by clear needs no sync.
                Err(StoreError::Io(e)) if e.kind() == ErrorKind::NotFound => {}
                r => r?,
            }
        }
        Ok(())
    }

    fn scan(&self, db: DbIndex, cursor: &[u8], limit: usize) -> Result<ScanPage, StoreError> {
        // The cursor is the hex name of the last file returned; names are visited in order.
        let cursor = std::str::from_utf8(cursor)
            .ok()
            .filter(|c| {
                c.is_empty() || (c.len() == NAME_LEN && c.bytes().all(|b| b.is_ascii_hexdigit()))
            })
            .ok_or_else(|| StoreError::InvalidArgument("invalid fs scan cursor".into()))?;
        let db_dir = self.db_dir(db);
        let mut shards: Vec<String> = match fs::read_dir(&db_dir) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.len() == 2 && (cursor.is_empty() || n.as_str() >= &cursor[..2]))
                .collect(),
            Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(e)),
        };
        shards.sort();
        let mut keys = Vec::new();
        let mut last_name: Option<String> = None;
        for shard in shards {
            let shard_dir = db_dir.join(&shard);
            let names: BTreeSet<String> = match fs::read_dir(&shard_dir) {
                Ok(rd) => rd
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.len() == NAME_LEN && n.as_str() > cursor)
                    .collect(),
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(io(e)),
            };
            for name in names {
                if keys.len() >= limit.max(1) {
                    return Ok(ScanPage {
                        keys,
                        next: last_name.map(String::into_bytes),
                    });
                }
                let path = shard_dir.join(&name);
                let key = match File::open(&path) {
                    Ok(mut f) => {
                        let len = f.metadata().map_err(io)?.len();
                        match file_format::read_key(&mut f, len) {
                            Ok(k) => k,
                            // One damaged file must not make the whole DB unscannable: its key
                            // cannot be named, so it is skipped (and reported).
                            Err(StoreError::Corruption(e)) => {
                                log::error!(
                                    "fs scan: skipping damaged file {}: {e}",
                                    path.display()
                                );
                                last_name = Some(name);
                                continue;
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    // Deleted after listing: it was not present for the whole scan.
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    Err(e) => return Err(io(e)),
                };
                keys.push(key);
                last_name = Some(name);
            }
        }
        Ok(ScanPage { keys, next: None })
    }

    fn clear(&self, db: Option<DbIndex>) -> Result<(), StoreError> {
        let mut dirty = self.writer.lock().expect("writer lock");
        self.replay_journal(&mut dirty)?;
        let targets: Vec<PathBuf> = match db {
            Some(db) => vec![self.db_dir(db)],
            None => fs::read_dir(&self.root)
                .map_err(io)?
                .filter_map(|e| e.ok())
                .filter(|e| {
                    let n = e.file_name();
                    let n = n.to_string_lossy();
                    n.strip_prefix("db")
                        .is_some_and(|d| d.parse::<u32>().is_ok())
                })
                .map(|e| e.path())
                .collect(),
        };
        // Rename first (one atomic, durable step), delete the contents afterwards.
        let mut trash = Vec::new();
        for (i, t) in targets.iter().enumerate() {
            let dest = self.root.join(format!(
                "trash.{}.{i}",
                self.tmp_seq.fetch_add(1, Ordering::Relaxed)
            ));
            match fs::rename(t, &dest) {
                Ok(()) => trash.push(dest),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(io(e)),
            }
        }
        fsync_dir(&self.root)?;
        dirty.retain(|d| !targets.iter().any(|t| d.starts_with(t)));
        for t in trash {
            fs::remove_dir_all(&t).map_err(io)?;
        }
        Ok(())
    }

    fn atomic_batches(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "fs"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &[u8], value: &[u8]) -> WriteOp {
        WriteOp::Put {
            db: 0,
            key: key.to_vec(),
            value: value.to_vec(),
        }
    }

    /// A batch that fails after its journal was committed (here: a file where a shard directory
    /// belongs; in life ENOSPC) must be rolled forward before newer writes, not replayed over
    /// them at the next open.
    #[test]
    fn failed_batch_is_not_replayed_over_newer_writes() {
        let dir = tempfile::tempdir().unwrap();
        let s = FsStore::open(dir.path()).unwrap();
        let (shard, _) = s.key_path(0, b"b");
        fs::create_dir_all(shard.parent().unwrap()).unwrap();
        fs::write(&shard, b"").unwrap();
        assert!(s.write(&[put(b"a", b"old"), put(b"b", b"old")]).is_err());
        fs::remove_file(&shard).unwrap();
        s.write(&[put(b"a", b"new")]).unwrap();
        s.sync().unwrap();
        drop(s);
        let s = FsStore::open(dir.path()).unwrap();
        assert_eq!(s.get(0, b"a").unwrap().as_deref(), Some(&b"new"[..]));
        assert_eq!(s.get(0, b"b").unwrap().as_deref(), Some(&b"old"[..]));
    }
}
