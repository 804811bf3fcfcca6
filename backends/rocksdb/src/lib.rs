//! kvtier-rocksdb: a [`DiskStore`] on [RocksDB](https://rocksdb.org) through the `rocksdb` crate.
//!
//! ```text
//! dir/                  one RocksDB database, default column family only
//!   key layout          b'd' ++ DB index (4 bytes, big-endian) ++ key
//! ```
//! The leading tag byte gives every DB, and all DBs together, a finite key range
//! (`d<db>` .. `d<db+1>`, and `d` .. `e`), which `clear` deletes with one range tombstone.
//!
//! Guarantees (see the `DiskStore` contract):
//! - **Atomic batches, across DBs too.** A `write` is one RocksDB `WriteBatch` (all DBs share one
//!   column family), written to the WAL as one checksummed record: after a crash it is there
//!   entirely or not at all, so [`DiskStore::atomic_batches`] is `true`. In a batch that names
//!   a key twice the last op wins.
//! - **Durability.** `write` goes through the WAL without fsync: once it returns it survives a
//!   crash of the process (kill -9), not necessarily a power loss. `sync` is `FlushWAL(sync =
//!   true)`, which fsyncs the WAL: every `write` that returned before it survives a power loss.
//! - **`clear`** writes one range tombstone with a synced WAL write, so it is atomic and durable
//!   when it returns; SST files lying wholly inside the cleared range are then deleted at once,
//!   the rest of the space comes back through compaction.
//! - **`scan`** walks one DB in byte order of the keys. The cursor is opaque: a tag byte followed
//!   by the last key returned; the next page starts strictly after that key, so a key present for
//!   the whole scan is returned exactly once whatever is written meanwhile.
//! - **`checkpoint`** is a RocksDB checkpoint (hard links to the SST files plus a consistent WAL
//!   and MANIFEST); the directory it makes opens with [`RocksStore::open`].
//! - Opening replays the WAL only; it does not read the keys.

#![forbid(unsafe_code)]

use kvtier_core::cursor::PageBuilder;
use kvtier_core::{DbIndex, DiskStore, HeadPage, ScanPage, StoreError, WriteOp};
use rocksdb::checkpoint::Checkpoint;
use rocksdb::{
    properties, BlockBasedIndexType, BlockBasedOptions, Cache, DBCompressionType, Env, Options,
    ReadOptions, WriteBatch, WriteOptions, DB,
};
use std::fmt;
use std::path::{Path, PathBuf};

/// First byte of every data key.
const DATA_TAG: u8 = b'd';
/// Length of the `tag ++ db` prefix of a data key.
const PREFIX_LEN: usize = 5;
/// Memtable bytes that gather in level 0 before it is compacted (see `l0_triggers`).
const L0_COMPACTION_BYTES: usize = 8 << 20;

/// Tuning of a [`RocksStore`].
#[derive(Debug, Clone, PartialEq)]
pub struct RocksOptions {
    /// Capacity of the LRU block cache, which also holds index and filter blocks.
    pub block_cache_bytes: usize,
    /// Size of one memtable (`write_buffer_size`).
    pub write_buffer_bytes: usize,
    /// Bits per key of the bloom filter on whole keys; `0.0` disables the filter.
    pub bloom_bits_per_key: f64,
    /// LZ4 for upper levels and Zstd for the bottommost level when `true`; no compression when
    /// `false`.
    pub compression: bool,
    /// Compaction threads at the lowest CPU priority (RocksDB's own setting for its low pool;
    /// Linux): on busy cores they yield to the server and catch up when it waits; L0's slowdown
    /// and stop triggers bound how far behind they fall.
    pub low_priority_compactions: bool,
}

impl Default for RocksOptions {
    /// 64 MiB block cache, 16 MiB write buffer, 10 bloom bits per key, compression on.
    fn default() -> Self {
        RocksOptions {
            block_cache_bytes: 64 << 20,
            write_buffer_bytes: 16 << 20,
            bloom_bits_per_key: 10.0,
            compression: true,
            low_priority_compactions: true,
        }
    }
}

/// Level-0 file counts that start a compaction, slow writes and stop them, for memtables of
/// `write_buffer` bytes.
///
/// While the store is small, level 0 compacts straight into the last level (dynamic level
/// sizes), rewriting the whole store. With RocksDB's fixed trigger of 4 files and the 1 MiB
/// memtables a `maxmemory` of 16mb leaves, that was every 4 MiB written: 3.8 s of compaction
/// CPU per 300,000 new 200-byte keys on a 2-core machine. The trigger is set by volume instead
/// (about 8 MiB of memtables: 8 files at 1 MiB, RocksDB's 4 from 2 MiB up), and the write
/// limits keep RocksDB's default distance above it. Not more: every level-0 file is one more
/// place a point read looks, and with 32 files cold GETs ran 25% slower (docs/benchmarks.md).
fn l0_triggers(write_buffer: usize) -> (i32, i32, i32) {
    let trigger = (L0_COMPACTION_BYTES / write_buffer.max(1)).clamp(4, 8) as i32;
    (trigger, trigger + 16, trigger + 32)
}

/// The RocksDB store. Open it with [`RocksStore::open`] or [`RocksStore::open_with`].
pub struct RocksStore {
    db: DB,
    cache: Cache,
    path: PathBuf,
    options: RocksOptions,
}

impl fmt::Debug for RocksStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RocksStore")
            .field("path", &self.path)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Maps a RocksDB error to its kind. RocksDB reports errors as text (`"IO error: …"`); an IO
/// error saying the device is full becomes `NoSpace` through [`StoreError::from_io`].
fn map_err(e: rocksdb::Error) -> StoreError {
    use rocksdb::ErrorKind as K;
    match e.kind() {
        K::Corruption => StoreError::Corruption(e.into_string()),
        K::IOError => {
            let msg = e.into_string();
            let kind = if msg.contains("No space left on device") {
                std::io::ErrorKind::StorageFull
            } else if msg.contains("Disk quota exceeded") {
                std::io::ErrorKind::QuotaExceeded
            } else if msg.contains("Not a directory") {
                std::io::ErrorKind::NotADirectory
            } else if msg.contains("No such file or directory") {
                std::io::ErrorKind::NotFound
            } else if msg.contains("Permission denied") {
                std::io::ErrorKind::PermissionDenied
            } else {
                std::io::ErrorKind::Other
            };
            StoreError::from_io(std::io::Error::new(kind, msg))
        }
        K::InvalidArgument => StoreError::InvalidArgument(e.into_string()),
        _ => StoreError::Backend(Box::new(e)),
    }
}

fn db_prefix(db: DbIndex) -> [u8; PREFIX_LEN] {
    let [a, b, c, d] = db.to_be_bytes();
    [DATA_TAG, a, b, c, d]
}

/// `[start, end)` of the stored keys of `db`.
fn db_range(db: DbIndex) -> (Vec<u8>, Vec<u8>) {
    let start = db_prefix(db).to_vec();
    let end = match db.checked_add(1) {
        Some(next) => db_prefix(next).to_vec(),
        None => vec![DATA_TAG + 1],
    };
    (start, end)
}

/// `[start, end)` of the stored keys of every DB.
fn all_range() -> (Vec<u8>, Vec<u8>) {
    (vec![DATA_TAG], vec![DATA_TAG + 1])
}

fn stored_key(db: DbIndex, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(PREFIX_LEN + key.len());
    k.extend_from_slice(&db_prefix(db));
    k.extend_from_slice(key);
    k
}

impl RocksStore {
    /// One page of keys after `cursor`, with the first `head_len` bytes of each value if asked.
    fn walk(
        &self,
        db: DbIndex,
        cursor: &[u8],
        limit: usize,
        head_len: Option<usize>,
    ) -> Result<HeadPage, StoreError> {
        let after = kvtier_core::cursor::decode(cursor, "rocksdb")?;
        let (start, end) = db_range(db);
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(end);
        // A keyspace walk should not push the working set out of the block cache.
        ro.fill_cache(false);
        let mut it = self.db.raw_iterator_opt(ro);
        match after {
            None => it.seek(&start),
            Some(last) => {
                // `last ++ 0x00` is the smallest key strictly greater than `last`.
                let mut from = stored_key(db, last);
                from.push(0);
                it.seek(&from);
            }
        }
        let mut page = PageBuilder::new(limit, head_len);
        while let Some(stored) = it.key() {
            if !page.push(&stored[PREFIX_LEN..], || it.value().unwrap_or_default()) {
                return Ok(page.finish(true, cursor));
            }
            it.next();
        }
        it.status().map_err(map_err)?;
        Ok(page.finish(false, cursor))
    }

    /// Opens (creating if needed) a store in `dir` with [`RocksOptions::default`].
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(dir, RocksOptions::default())
    }

    /// Opens (creating if needed) a store in `dir`. Fails if another process (or another
    /// `RocksStore` in this process) has it open.
    pub fn open_with(dir: impl AsRef<Path>, options: RocksOptions) -> Result<Self, StoreError> {
        let path = dir.as_ref().to_path_buf();
        let cache = Cache::new_lru_cache(options.block_cache_bytes);
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);
        table.set_cache_index_and_filter_blocks(true);
        table.set_pin_l0_filter_and_index_blocks_in_cache(true);
        // Partitioned index and filters, top level pinned: with the small block cache that
        // `maxmemory` leaves (a few MB), whole per-file index and filter blocks kept evicting
        // each other and every point read re-read them (cold GETs at 1-2 ms); partitions are
        // cached like data blocks and only the small top level stays in memory.
        table.set_index_type(BlockBasedIndexType::TwoLevelIndexSearch);
        table.set_pin_top_level_index_and_filter(true);
        table.set_metadata_block_size(4096);
        if options.bloom_bits_per_key > 0.0 {
            table.set_bloom_filter(options.bloom_bits_per_key, false);
            table.set_partition_filters(true);
        }
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.set_block_based_table_factory(&table);
        opts.set_write_buffer_size(options.write_buffer_bytes);
        let (trigger, slowdown, stop) = l0_triggers(options.write_buffer_bytes);
        opts.set_level_zero_file_num_compaction_trigger(trigger);
        opts.set_level_zero_slowdown_writes_trigger(slowdown);
        opts.set_level_zero_stop_writes_trigger(stop);
        if options.compression {
            opts.set_compression_type(DBCompressionType::Lz4);
            opts.set_bottommost_compression_type(DBCompressionType::Zstd);
        } else {
            opts.set_compression_type(DBCompressionType::None);
            opts.set_bottommost_compression_type(DBCompressionType::None);
        }
        let parallelism = std::thread::available_parallelism().map_or(2, |n| n.get());
        opts.increase_parallelism(i32::try_from(parallelism).unwrap_or(i32::MAX));
        if options.low_priority_compactions {
            // The default environment (a process-wide one, whose low pool runs compactions).
            // A bulk load of new keys at `maxmemory 64mb` on two cores: compactions took 12 s
            // of CPU to the event loop's 4 and SETs ran at 70k/s; lowered, 3.8 s and 120k/s
            // (docs/benchmarks.md, session 19).
            let mut env = Env::new().map_err(map_err)?;
            env.lower_thread_pool_cpu_priority();
            opts.set_env(&env);
        }
        let db = DB::open(&opts, &path).map_err(map_err)?;
        log::debug!("rocksdb: opened {}", path.display());
        Ok(RocksStore {
            db,
            cache,
            path,
            options,
        })
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &RocksOptions {
        &self.options
    }

    /// An integer RocksDB property (e.g. `"rocksdb.block-cache-capacity"`), for diagnostics.
    pub fn property(&self, name: &str) -> Result<Option<u64>, StoreError> {
        self.db.property_int_value(name).map_err(map_err)
    }

    /// Deletes `[start, end)` with a synced write, then drops the SST files wholly inside it.
    fn delete_range_durably(&self, start: &[u8], end: &[u8]) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        batch.delete_range(start, end);
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db.write_opt(batch, &wo).map_err(map_err)?;
        // Only reclaims space early; the range tombstone above already hides every key.
        if let Err(e) = self.db.delete_file_in_range(start, end) {
            log::warn!("rocksdb: could not drop the files of a cleared range: {e}");
        }
        Ok(())
    }
}

impl DiskStore for RocksStore {
    fn get(&self, db: DbIndex, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let value = self.db.get_pinned(stored_key(db, key)).map_err(map_err)?;
        Ok(value.map(|v| v.to_vec()))
    }

    /// One `multi_get`: RocksDB batches the lookups (one pass over the memtables and SST index
    /// blocks, reads in parallel where it can).
    fn get_many(&self, db: DbIndex, keys: &[&[u8]]) -> Vec<Result<Option<Vec<u8>>, StoreError>> {
        let stored: Vec<Vec<u8>> = keys.iter().map(|k| stored_key(db, k)).collect();
        self.db
            .multi_get(stored)
            .into_iter()
            .map(|r| r.map_err(map_err))
            .collect()
    }

    /// One `WriteBatch` through the WAL (no fsync): atomic, survives kill -9 at once and power
    /// loss after the next `sync`.
    fn write(&self, batch: &[WriteOp]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut wb = WriteBatch::default();
        for op in batch {
            match op {
                WriteOp::Put { db, key, value } => wb.put(stored_key(*db, key), value),
                WriteOp::Delete { db, key } => wb.delete(stored_key(*db, key)),
            }
        }
        self.db.write(wb).map_err(map_err)
    }

    /// `FlushWAL(sync = true)`: fsyncs the WAL.
    fn sync(&self) -> Result<(), StoreError> {
        self.db.flush_wal(true).map_err(map_err)
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

    /// One range tombstone over the DB (or all DBs), written with a synced WAL write.
    fn clear(&self, db: Option<DbIndex>) -> Result<(), StoreError> {
        let (start, end) = match db {
            Some(db) => db_range(db),
            None => all_range(),
        };
        self.delete_range_durably(&start, &end)
    }

    /// A RocksDB checkpoint in `dest` (which must not exist).
    fn checkpoint(&self, dest: &Path) -> Result<(), StoreError> {
        if dest.exists() {
            return Err(StoreError::InvalidArgument(format!(
                "checkpoint destination {} already exists",
                dest.display()
            )));
        }
        Checkpoint::new(&self.db)
            .and_then(|c| c.create_checkpoint(dest))
            .map_err(map_err)
    }

    fn atomic_batches(&self) -> bool {
        true
    }

    /// Block cache usage (data, index and filter blocks) plus the size of all memtables plus
    /// table-reader memory outside the cache.
    fn memory_usage(&self) -> Option<u64> {
        let prop = |name: &rocksdb::properties::PropName| {
            self.db.property_int_value(name).ok().flatten().unwrap_or(0)
        };
        let cache = u64::try_from(self.cache.get_usage()).unwrap_or(u64::MAX);
        Some(
            cache
                .saturating_add(prop(properties::CUR_SIZE_ALL_MEM_TABLES))
                .saturating_add(prop(properties::ESTIMATE_TABLE_READERS_MEM)),
        )
    }

    fn name(&self) -> &'static str {
        "rocksdb"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_exactly_one_db() {
        for db in [0, 1, 255, 256, DbIndex::MAX - 1, DbIndex::MAX] {
            let (start, end) = db_range(db);
            let lowest = stored_key(db, b"");
            let high = stored_key(db, &[0xff; 64]);
            assert!(
                start.as_slice() <= lowest.as_slice() && high < end,
                "db {db}"
            );
            if let Some(next) = db.checked_add(1) {
                assert!(
                    stored_key(next, b"").as_slice() >= end.as_slice(),
                    "db {db}"
                );
            }
            let (all_start, all_end) = all_range();
            assert!(all_start <= start && end <= all_end, "db {db}");
        }
    }
}
