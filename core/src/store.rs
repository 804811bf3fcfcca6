//! The `DiskStore` trait: the one interface between kvtier and a persistent key-value store.

use std::fmt;
use std::path::Path;

/// Logical database number (Redis `SELECT` index).
pub type DbIndex = u32;

/// One mutation inside a [`DiskStore::write`] batch.
#[derive(Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// Create or replace `key` in `db` with `value`.
    Put {
        /// Database the key lives in.
        db: DbIndex,
        /// The key, arbitrary bytes.
        key: Vec<u8>,
        /// The full new record (for kvtier, an [`encoding`](crate::encoding) record).
        value: Vec<u8>,
    },
    /// Remove `key` from `db`; removing an absent key is not an error.
    Delete {
        /// Database the key lives in.
        db: DbIndex,
        /// The key to remove.
        key: Vec<u8>,
    },
}

impl WriteOp {
    /// The database this op targets.
    pub fn db(&self) -> DbIndex {
        match self {
            WriteOp::Put { db, .. } | WriteOp::Delete { db, .. } => *db,
        }
    }

    /// The key this op targets.
    pub fn key(&self) -> &[u8] {
        match self {
            WriteOp::Put { key, .. } | WriteOp::Delete { key, .. } => key,
        }
    }
}

impl fmt::Debug for WriteOp {
    // Values can be megabytes; a debug print shows sizes only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteOp::Put { db, key, value } => write!(
                f,
                "Put(db={db}, key={:?}, {} bytes)",
                String::from_utf8_lossy(&key[..key.len().min(64)]),
                value.len()
            ),
            WriteOp::Delete { db, key } => write!(
                f,
                "Delete(db={db}, key={:?})",
                String::from_utf8_lossy(&key[..key.len().min(64)])
            ),
        }
    }
}

/// A page of [`DiskStore::scan_heads`]: the keys and, for each, the head of its record (`None`
/// for a key deleted meanwhile).
pub type HeadPage = (ScanPage, Vec<Option<Vec<u8>>>);

/// One page of a [`DiskStore::scan`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanPage {
    /// Keys of this page, in the backend's scan order (not necessarily byte order).
    pub keys: Vec<Vec<u8>>,
    /// Cursor for the next page, or `None` when the scan is complete.
    pub next: Option<Vec<u8>>,
}

/// What went wrong in a backend. The IO scheduler acts on the kind: `Io`/`Backend` are retried
/// with backoff, `NoSpace` refuses further writes until a save succeeds, `Corruption` is reported
/// for the key and never turned into a value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An I/O error from the device or OS (retryable; see [`StoreError::from_io`] for
    /// ENOSPC).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The stored data is damaged or unreadable; the message says what was found. Never
    /// transient: retrying reads the same damage.
    #[error("corrupt record: {0}")]
    Corruption(String),
    /// The device or quota is full (ENOSPC/EDQUOT); writes may succeed once space is freed.
    #[error("no space left on the storage device")]
    NoSpace,
    /// The backend does not implement this operation (e.g. the default
    /// [`DiskStore::checkpoint`]).
    #[error("operation not supported by this backend")]
    Unsupported,
    /// The caller passed something the backend rejects, such as a scan cursor it did not make.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Any other failure of the underlying store library, boxed (treated as transient).
    #[error("backend error: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Maps an `io::Error` to its kind, so that ENOSPC/EDQUOT become [`StoreError::NoSpace`].
    pub fn from_io(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                StoreError::NoSpace
            }
            _ => StoreError::Io(e),
        }
    }

    /// Whether retrying the same operation later can succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Io(_) | StoreError::NoSpace | StoreError::Backend(_)
        )
    }
}

/// A persistent, byte-oriented key-value store partitioned into numbered databases.
///
/// kvtier calls it only from its IO worker threads, possibly several at once, so every method
/// takes `&self` and implementations do their own synchronisation.
///
/// # Contract
/// - **Keys** are arbitrary byte strings, including the empty string, NUL bytes, `/`, `.` and
///   `..`, up to at least 1 MiB. **Values** are arbitrary bytes up to at least 512 MiB (kvtier
///   writes at most `proto-max-bulk-len` plus a small header). Databases are isolated: the same
///   key in two DBs names two records.
/// - **`get`** of a key that was never written, or was deleted, is `Ok(None)`; an empty value is
///   `Ok(Some(vec![]))`, distinct from absence. A damaged record is `Err(Corruption)`, never a
///   different or truncated value.
/// - **`write`** applies the batch in order; when a batch names the same key twice, the last op
///   wins. Once `write` returns `Ok`, every later `get`/`scan` from any thread sees the batch.
///   Backends state in [`DiskStore::atomic_batches`] whether a crash can expose part of a batch.
/// - **Durability**: everything written by a `write` that returned `Ok` before a `sync` that
///   returned `Ok` survives a crash (kill -9 or power loss, given honest disk flushes). Writes not
///   yet covered by a `sync` may or may not survive, but each key is then either its old or its
///   new value, never a torn mix.
/// - **`scan`** walks one DB in pages of at most `limit` keys, starting from the empty cursor and
///   continuing with `ScanPage::next` until it is `None`. Without concurrent writes it returns
///   every key exactly once. With concurrent writes, every key present for the whole scan is
///   returned at least once, and a cursor stays valid whatever is written meanwhile. Order is the
///   backend's own and opaque to callers.
/// - **`clear`** removes every key of one DB (`Some(db)`) or of all DBs (`None`); it is durable
///   once it returns.
pub trait DiskStore: Send + Sync + fmt::Debug + 'static {
    /// Reads one key.
    fn get(&self, db: DbIndex, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Reads several keys of one DB, answering for each in order. The default calls `get` for
    /// each; a backend with a batched read (RocksDB's `multi_get`) overrides it, since the
    /// engine loads the keys of a pipeline or an MGET through here in one job.
    fn get_many(&self, db: DbIndex, keys: &[&[u8]]) -> Vec<Result<Option<Vec<u8>>, StoreError>> {
        keys.iter().map(|k| self.get(db, k)).collect()
    }

    /// Applies a batch of puts and deletes (see the contract above).
    fn write(&self, batch: &[WriteOp]) -> Result<(), StoreError>;

    /// Makes every completed `write` durable.
    fn sync(&self) -> Result<(), StoreError>;

    /// Returns the page of keys after `cursor` (empty cursor = start).
    fn scan(&self, db: DbIndex, cursor: &[u8], limit: usize) -> Result<ScanPage, StoreError>;

    /// Like [`DiskStore::scan`], also returning the first `head_len` bytes of each key's record
    /// (all of a shorter record; `None` for a key deleted meanwhile). kvtier reads the record
    /// header this way (type, expire time) for SCAN TYPE, KEYS and the expiry sweep. The default
    /// reads the records with `get_many`; a backend whose scan walks the records in order (an
    /// LSM tree, a B-tree) overrides it to take them in the same pass instead of one point read
    /// per key.
    fn scan_heads(
        &self,
        db: DbIndex,
        cursor: &[u8],
        limit: usize,
        head_len: usize,
    ) -> Result<HeadPage, StoreError> {
        let page = self.scan(db, cursor, limit)?;
        let refs: Vec<&[u8]> = page.keys.iter().map(Vec::as_slice).collect();
        let mut heads = Vec::with_capacity(refs.len());
        for got in self.get_many(db, &refs) {
            heads.push(got?.map(|mut v| {
                v.truncate(head_len);
                v
            }));
        }
        Ok((page, heads))
    }

    /// A scan cursor at a random position of the backend's scan order, for RANDOMKEY, if the
    /// backend can make one without reading anything (it is called on the owner thread, so it
    /// must not do IO). `seed` is random. The default `None` makes kvtier start after a random
    /// key it holds in memory, which suits backends whose cursors are
    /// [`cursor::after`](crate::cursor::after) of a key (ordered stores).
    fn random_cursor(&self, _seed: u64) -> Option<Vec<u8>> {
        None
    }

    /// Removes all keys of one DB, or of all DBs, durably.
    fn clear(&self, db: Option<DbIndex>) -> Result<(), StoreError>;

    /// Number of keys in `db`, if the backend can tell cheaply (without a full scan).
    fn approximate_len(&self, _db: DbIndex) -> Option<u64> {
        None
    }

    /// Writes a consistent copy of the whole store into `dest` (which must not exist).
    fn checkpoint(&self, _dest: &Path) -> Result<(), StoreError> {
        Err(StoreError::Unsupported)
    }

    /// Whether a crash can never expose part of one `write` batch.
    fn atomic_batches(&self) -> bool {
        false
    }

    /// Bytes of memory the backend itself holds (caches, memtables), if known.
    fn memory_usage(&self) -> Option<u64> {
        None
    }

    /// Short backend name, as used in the `backend` setting.
    fn name(&self) -> &'static str;
}
