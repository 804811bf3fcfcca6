//! An in-memory [`DiskStore`]: records in an ordered map behind a mutex. For tests of the
//! engine, of value types built on it and of tools (nothing is persisted; `sync` does nothing).
//! A real backend is proved with the conformance kit instead (feature `testkit`).

use crate::store::{DbIndex, DiskStore, ScanPage, StoreError, WriteOp};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Records by (namespace, key).
type Records = BTreeMap<(DbIndex, Vec<u8>), Vec<u8>>;

/// See the module documentation.
#[derive(Debug, Default)]
pub struct MemStore(Mutex<Records>);

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of records, all namespaces together.
    pub fn len(&self) -> usize {
        self.records().len()
    }

    /// Whether the store holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn records(&self) -> std::sync::MutexGuard<'_, Records> {
        // A test that panicked while holding the lock left whole records behind: still usable.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl DiskStore for MemStore {
    fn get(&self, db: DbIndex, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.records().get(&(db, key.to_vec())).cloned())
    }

    fn write(&self, batch: &[WriteOp]) -> Result<(), StoreError> {
        let mut records = self.records();
        for op in batch {
            match op {
                WriteOp::Put { db, key, value } => {
                    records.insert((*db, key.clone()), value.clone());
                }
                WriteOp::Delete { db, key } => {
                    records.remove(&(*db, key.clone()));
                }
            }
        }
        Ok(())
    }

    fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn scan(&self, db: DbIndex, cursor: &[u8], limit: usize) -> Result<ScanPage, StoreError> {
        let records = self.records();
        let from = (db, cursor.to_vec());
        let keys: Vec<Vec<u8>> = records
            .range(from..)
            .take_while(|((d, _), _)| *d == db)
            .map(|((_, k), _)| k.clone())
            .filter(|k| k.as_slice() > cursor)
            .take(limit)
            .collect();
        let next = (keys.len() == limit)
            .then(|| keys.last().cloned())
            .flatten();
        Ok(ScanPage { keys, next })
    }

    fn clear(&self, db: Option<DbIndex>) -> Result<(), StoreError> {
        self.records()
            .retain(|(d, _), _| db.is_some_and(|c| c != *d));
        Ok(())
    }

    fn name(&self) -> &'static str {
        "mem"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(db: DbIndex, key: &str) -> WriteOp {
        WriteOp::Put {
            db,
            key: key.as_bytes().to_vec(),
            value: b"v".to_vec(),
        }
    }

    #[test]
    fn records_scans_and_clears_by_namespace() {
        let s = MemStore::new();
        s.write(&[put(1, "a"), put(1, "b"), put(1, "c"), put(2, "a")])
            .unwrap();
        assert_eq!(s.get(1, b"b").unwrap(), Some(b"v".to_vec()));
        let page = s.scan(1, b"", 2).unwrap();
        assert_eq!(page.keys, vec![b"a".to_vec(), b"b".to_vec()]);
        let rest = s.scan(1, &page.next.unwrap(), 2).unwrap();
        assert_eq!((rest.keys, rest.next), (vec![b"c".to_vec()], None));
        s.write(&[WriteOp::Delete {
            db: 1,
            key: b"a".to_vec(),
        }])
        .unwrap();
        s.clear(Some(1)).unwrap();
        assert_eq!(s.len(), 1);
        s.clear(None).unwrap();
        assert!(s.is_empty());
    }
}
