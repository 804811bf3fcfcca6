//! Exact key counts per DB without reading the keyspace: DBSIZE and INFO `keys=` in O(1).
//!
//! The store's own count of records per DB is kept in a reserved namespace of the store
//! ([`META_DB`]) and written in the same atomic batch as the records it counts, so after a
//! crash the count and the data agree. IO workers maintain it ([`StoredCounts`]): a save knows,
//! for every key it writes, whether the store held the key before (the owner thread knows it
//! for most keys; a blind write over a key that was never loaded is resolved by the worker with
//! one read before the batch is written). Writes of counts are serialised by one lock, so the
//! last count written is the newest.
//!
//! The owner thread adds what memory holds that the store does not ([`DbCount`]): each resident
//! entry contributes `live - on_disk` (a new key +1, a deleted one -1, a changed one 0). An entry
//! whose presence on disk is not known yet makes the count unknown until its save resolves it.
//! A key whose TTL passed counts until it is reclaimed (on access, by active expiry, by the
//! disk sweep), as in Redis, whose DBSIZE also counts such keys until they are deleted.

use crate::store::{DbIndex, DiskStore, StoreError, WriteOp};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

/// The store namespace for kvtier's own records (never a Redis DB: SELECT's range is far below).
pub const META_DB: DbIndex = DbIndex::MAX;

/// Key of the record that holds the number of records of `db`.
pub fn count_key(db: DbIndex) -> Vec<u8> {
    let mut k = b"keycount:".to_vec();
    k.extend_from_slice(&db.to_be_bytes());
    k
}

/// Reads the persisted counts of DBs `0..databases` (a point read and a one-key scan each). A DB
/// with no count record is counted 0 if it is empty and unknown (`None`) if it holds records, as
/// a store written before counts existed does.
pub fn load(store: &dyn DiskStore, databases: usize) -> Vec<Option<u64>> {
    (0..databases as DbIndex)
        .map(|db| match store.get(META_DB, &count_key(db)) {
            // A crash between a FLUSHDB's clear and the write of its zero count leaves the old
            // count over an empty DB: an empty DB counts 0 whatever its record says.
            Ok(Some(bytes)) => match decode(&bytes) {
                Some(n) if n > 0 && is_empty(store, db) => Some(0),
                n => n,
            },
            Ok(None) => is_empty(store, db).then_some(0),
            Err(e) => {
                log::warn!("reading the key count of db {db} failed: {e}; counting by scan");
                None
            }
        })
        .collect()
}

fn is_empty(store: &dyn DiskStore, db: DbIndex) -> bool {
    matches!(store.scan(db, &[], 1), Ok(page) if page.keys.is_empty())
}

fn decode(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

/// The record holding `count` for `db`.
pub fn count_record(db: DbIndex, count: u64) -> WriteOp {
    WriteOp::Put {
        db: META_DB,
        key: count_key(db),
        value: count.to_le_bytes().to_vec(),
    }
}

/// The store's record counts as the workers last wrote them (`None`: not known for that DB).
#[derive(Debug)]
pub(crate) struct StoredCounts {
    counts: Mutex<HashMap<DbIndex, u64>>,
    /// A DB map (SWAPDB, see `dbmap`) not yet written: every batch carries it until one that
    /// carries it is written. Locked only while `counts` is held.
    pending_map: Mutex<Option<Vec<u8>>>,
}

impl StoredCounts {
    pub(crate) fn new(initial: &[Option<u64>]) -> Self {
        let counts = initial
            .iter()
            .enumerate()
            .filter_map(|(db, c)| c.map(|c| (db as DbIndex, c)))
            .collect();
        StoredCounts {
            counts: Mutex::new(counts),
            pending_map: Mutex::new(None),
        }
    }

    /// A new DB map to write (owner thread, after SWAPDB).
    pub(crate) fn set_pending_map(&self, encoded: Vec<u8>) {
        let _order = self.lock();
        *self.pending_map.lock().unwrap_or_else(|p| p.into_inner()) = Some(encoded);
    }

    /// The map a batch must carry, if one is pending (call with `lock()` held).
    pub(crate) fn pending_map(&self) -> Option<Vec<u8>> {
        self.pending_map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A batch carrying `encoded` was written (call with `lock()` held): it is no longer
    /// pending unless a newer swap replaced it meanwhile.
    pub(crate) fn map_written(&self, encoded: &[u8]) {
        let mut m = self.pending_map.lock().unwrap_or_else(|p| p.into_inner());
        if m.as_deref() == Some(encoded) {
            *m = None;
        }
    }

    /// Writes and syncs the pending map, if any, on its own (SWAPDB with nothing else to save).
    pub(crate) fn write_pending_map(&self, store: &dyn DiskStore) -> Result<(), StoreError> {
        let _order = self.lock();
        if let Some(map) = self.pending_map() {
            store.write(&[crate::dbmap::map_record(&map)])?;
            self.map_written(&map);
        }
        store.sync()
    }

    /// Held while a batch that changes counts is written, so counts are written in order.
    pub(crate) fn lock(&self) -> MutexGuard<'_, HashMap<DbIndex, u64>> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// After a store clear: the cleared DBs hold nothing, so their count is known again.
    /// `dbs` are the DBs the clear covered.
    pub(crate) fn cleared(
        &self,
        store: &dyn DiskStore,
        dbs: impl Iterator<Item = DbIndex>,
    ) -> Result<(), StoreError> {
        let mut counts = self.lock();
        let dbs: Vec<DbIndex> = dbs.collect();
        let mut ops: Vec<WriteOp> = dbs.iter().map(|&db| count_record(db, 0)).collect();
        let map = self.pending_map();
        if let Some(m) = &map {
            ops.push(crate::dbmap::map_record(m));
        }
        // Durable before the flush is acknowledged, like the clear itself.
        store.write(&ops)?;
        if let Some(m) = &map {
            self.map_written(m);
        }
        store.sync()?;
        for db in dbs {
            counts.insert(db, 0);
        }
        Ok(())
    }
}

/// What memory adds to the store's count of one DB (owner thread).
#[derive(Debug, Default, Clone)]
pub struct DbCount {
    /// Records in the store as of the saves completed so far (`None`: not known; DBSIZE then
    /// reads the store).
    pub stored: Option<u64>,
    /// Sum over resident entries whose presence on disk is known of `live - on_disk`.
    pub adj: i64,
    /// Resident entries whose presence on disk is not known yet.
    pub unknown: u64,
}

impl DbCount {
    /// The exact number of keys, when known.
    pub fn exact(&self) -> Option<u64> {
        if self.unknown > 0 {
            return None;
        }
        Some((self.stored? as i64 + self.adj).max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_keys_are_distinct_per_db_and_decode_back() {
        assert_ne!(count_key(0), count_key(1));
        let op = count_record(7, 42);
        assert_eq!(op.db(), META_DB);
        match op {
            WriteOp::Put { value, .. } => assert_eq!(decode(&value), Some(42)),
            _ => unreachable!(),
        }
        assert_eq!(decode(b"short"), None);
    }

    #[test]
    fn unknown_entries_make_the_count_unknown() {
        let mut c = DbCount {
            stored: Some(10),
            adj: -2,
            unknown: 0,
        };
        assert_eq!(c.exact(), Some(8));
        c.unknown = 1;
        assert_eq!(c.exact(), None);
        c.unknown = 0;
        c.stored = None;
        assert_eq!(c.exact(), None);
    }
}
