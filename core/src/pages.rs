//! The namespace of collection pages.
//!
//! A large collection is stored as a small manifest under its own key plus page records (see
//! the server's `paged` module). Pages live in one hidden namespace shared by every DB, so that
//! RENAME and MOVE of a paged value move only its manifest: a page's key names the value's
//! generation, never the user key or DB.
//!
//! Inside the engine the page namespace is one more DB, at index `databases` (after the Redis
//! DBs): the cache, loads, saves, save groups, pins and eviction treat a page like any key, so a
//! page is the unit of caching, dirtiness and saving for free. In the store it is the fixed
//! namespace [`PAGES_NS`], so that starting with another `databases` never turns page records
//! into a Redis DB's keys. [`NsStore`] does that translation at the one boundary.

use crate::store::{DbIndex, DiskStore, HeadPage, ScanPage, StoreError, WriteOp};
use std::path::Path;
use std::sync::Arc;

/// The page group of a page key: its first 8 bytes, big-endian (the server's generation of a
/// paged value; see `Keyspace::resident_pages`). `None` for a shorter key.
pub fn page_group(key: &[u8]) -> Option<u64> {
    key.first_chunk::<8>().map(|g| u64::from_be_bytes(*g))
}

/// The store namespace of page records (next to `META_DB`, far from any Redis DB).
pub const PAGES_NS: DbIndex = DbIndex::MAX - 1;

/// A store seen by the engine: its page namespace index (`databases`) is [`PAGES_NS`] in the
/// store underneath; every other namespace passes through unchanged.
#[derive(Debug)]
pub(crate) struct NsStore {
    inner: Arc<dyn DiskStore>,
    /// The engine's index of the page namespace.
    local: DbIndex,
}

impl NsStore {
    pub(crate) fn new(inner: Arc<dyn DiskStore>, local: DbIndex) -> Self {
        NsStore { inner, local }
    }

    fn ns(&self, db: DbIndex) -> DbIndex {
        if db == self.local {
            PAGES_NS
        } else {
            db
        }
    }
}

impl DiskStore for NsStore {
    fn get(&self, db: DbIndex, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(self.ns(db), key)
    }

    fn get_many(&self, db: DbIndex, keys: &[&[u8]]) -> Vec<Result<Option<Vec<u8>>, StoreError>> {
        self.inner.get_many(self.ns(db), keys)
    }

    fn write(&self, batch: &[WriteOp]) -> Result<(), StoreError> {
        if batch.iter().all(|op| op.db() != self.local) {
            return self.inner.write(batch);
        }
        // A batch with pages is copied once with their namespace rewritten: the copy costs a
        // memcpy of the batch, small next to the write and sync it precedes.
        let mapped: Vec<WriteOp> = batch
            .iter()
            .map(|op| match op {
                WriteOp::Put { db, key, value } => WriteOp::Put {
                    db: self.ns(*db),
                    key: key.clone(),
                    value: value.clone(),
                },
                WriteOp::Delete { db, key } => WriteOp::Delete {
                    db: self.ns(*db),
                    key: key.clone(),
                },
            })
            .collect();
        self.inner.write(&mapped)
    }

    fn sync(&self) -> Result<(), StoreError> {
        self.inner.sync()
    }

    fn scan(&self, db: DbIndex, cursor: &[u8], limit: usize) -> Result<ScanPage, StoreError> {
        self.inner.scan(self.ns(db), cursor, limit)
    }

    fn scan_heads(
        &self,
        db: DbIndex,
        cursor: &[u8],
        limit: usize,
        head_len: usize,
    ) -> Result<HeadPage, StoreError> {
        self.inner.scan_heads(self.ns(db), cursor, limit, head_len)
    }

    fn random_cursor(&self, seed: u64) -> Option<Vec<u8>> {
        self.inner.random_cursor(seed)
    }

    fn clear(&self, db: Option<DbIndex>) -> Result<(), StoreError> {
        self.inner.clear(db.map(|d| self.ns(d)))
    }

    fn approximate_len(&self, db: DbIndex) -> Option<u64> {
        self.inner.approximate_len(self.ns(db))
    }

    fn checkpoint(&self, dest: &Path) -> Result<(), StoreError> {
        self.inner.checkpoint(dest)
    }

    fn atomic_batches(&self) -> bool {
        self.inner.atomic_batches()
    }

    fn memory_usage(&self) -> Option<u64> {
        self.inner.memory_usage()
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memstore::MemStore;

    #[test]
    fn the_page_namespace_is_translated_and_the_others_are_not() {
        let inner: Arc<dyn DiskStore> = Arc::new(MemStore::new());
        let s = NsStore::new(Arc::clone(&inner), 16);
        s.write(&[
            WriteOp::Put {
                db: 16,
                key: b"p".to_vec(),
                value: b"page".to_vec(),
            },
            WriteOp::Put {
                db: 3,
                key: b"k".to_vec(),
                value: b"v".to_vec(),
            },
        ])
        .unwrap();
        assert_eq!(inner.get(PAGES_NS, b"p").unwrap(), Some(b"page".to_vec()));
        assert_eq!(inner.get(16, b"p").unwrap(), None);
        assert_eq!(inner.get(3, b"k").unwrap(), Some(b"v".to_vec()));
        assert_eq!(s.get(16, b"p").unwrap(), Some(b"page".to_vec()));
        s.clear(Some(16)).unwrap();
        assert_eq!(inner.get(PAGES_NS, b"p").unwrap(), None);
        assert_eq!(inner.get(3, b"k").unwrap(), Some(b"v".to_vec()));
    }
}
