//! What the server may do with the object cache. The cache ([`Keyspace`]) belongs to the
//! engine: which keys are resident, dirty, pinned or grouped for a save is what the IO
//! scheduler works from, so the server reaches it only through these methods and never holds
//! the cache, its save groups, negative cache or key filters itself.

use super::{Engine, EngineStats};
use crate::cache::{CacheStats, Db, Residency};
use crate::diskkeys::FilterState;
use crate::store::{DbIndex, StoreError};
use crate::value::CacheValue;
use std::sync::Arc;

/// The cache's counters and sizes, for INFO, from [`Engine::cache_report`].
#[derive(Debug, Clone, Default)]
pub struct CacheReport {
    /// Hits, misses, expiries and evictions.
    pub stats: CacheStats,
    /// Lookups the key filters answered "not on disk" without a probe.
    pub filter_probes_avoided: u64,
    /// Probes a filter sent that found nothing.
    pub filter_false_positives: u64,
    /// Filters rebuilt bigger because they outgrew their size.
    pub filter_regrown: u64,
    /// Keys the filters hold, over all DBs.
    pub filter_keys: u64,
    /// DBs whose filter is still being built from the store.
    pub filters_building: usize,
    /// Memory of the filters.
    pub filter_bytes: usize,
    /// Keys known absent.
    pub negcache_entries: usize,
    /// Lookups the negative cache answered.
    pub negcache_hits: u64,
    /// Memory of the negative cache.
    pub negcache_bytes: usize,
    /// Pages of paged values in memory (a walk over the page namespace).
    pub resident_pages: usize,
}

impl<V: CacheValue> Engine<V> {
    /// A view of one DB for a command running at `now_ms` (Unix milliseconds). Only keys
    /// [`Engine::ensure`] resolved may be read through it; a read of a key that may still be on
    /// disk is counted in [`CacheStats::unresolved_reads`].
    pub fn db(&mut self, db: DbIndex, now_ms: i64) -> Db<'_, V> {
        self.ks.db(db, now_ms)
    }

    /// The value of `key` for reading, like [`Db::get`], read from the store first
    /// (synchronously, see [`Engine::load_now`]) when it is not in memory and may be there: a
    /// page the request path did not bring in. One lookup of the key when it is resident
    /// (every paged push, pop and read comes here).
    pub fn get_or_load(
        &mut self,
        db: DbIndex,
        key: &[u8],
        now_ms: i64,
    ) -> Result<Option<&V>, StoreError> {
        Ok(match self.position_or_load(db, key)? {
            Some(i) => self.db(db, now_ms).into_get_found(i),
            None => None,
        })
    }

    /// [`Engine::get_or_load`] for changing the value, like [`Db::get_mut`] (the key becomes
    /// dirty).
    pub fn get_mut_or_load(
        &mut self,
        db: DbIndex,
        key: &[u8],
        now_ms: i64,
    ) -> Result<Option<&mut V>, StoreError> {
        Ok(match self.position_or_load(db, key)? {
            Some(i) => self.db(db, now_ms).into_get_mut_found(i),
            None => None,
        })
    }

    /// Where `key`'s entry is in its DB's map, after loading it if it may be in the store.
    fn position_or_load(&mut self, db: DbIndex, key: &[u8]) -> Result<Option<usize>, StoreError> {
        let ns = self.ks.map.store(db) as usize;
        if let Some(i) = self.ks.dbs[ns].get_index_of(key) {
            return Ok(Some(i));
        }
        self.load_now(db, key)?;
        Ok(self.ks.dbs[ns].get_index_of(key))
    }

    /// The DB index of the page namespace (one past the Redis DBs).
    pub fn pages_db(&self) -> DbIndex {
        self.ks.pages_db()
    }

    /// Number of Redis DBs.
    pub fn databases(&self) -> usize {
        self.ks.databases()
    }

    /// The live value of a resident key, without touching its LRU clock or reclaiming it if it
    /// has expired (for planning what a command needs before it runs).
    pub fn peek(&self, db: DbIndex, key: &[u8]) -> Option<&V> {
        self.ks.peek(db, key)
    }

    /// Reads the entry of `key` and the start of its value, changing nothing, so that the
    /// command that uses the key next finds them in the CPU caches. Warming the keys of a
    /// pipeline back to back, before running it, lets their memory latencies overlap (each
    /// lookup is a chain of dependent cache misses; the commands between them keep the CPU
    /// from starting the next chain early).
    pub fn warm(&self, db: DbIndex, key: &[u8]) {
        if let Some(v) = self.ks.peek(db, key) {
            std::hint::black_box(std::mem::discriminant(v));
        }
    }

    /// Pauses (or resumes) the deletion of expired keys, on access, by active expiry and by
    /// the disk sweep (CLIENT PAUSE). A paused expired key reads as absent. (A key found
    /// expired while being loaded from disk is still deleted: it was never served.)
    pub fn pause_expiry(&mut self, paused: bool) {
        self.ks.expiry_paused = paused;
    }

    /// Whether reads through [`Db::get`] count as keyspace hits and misses from now on. Redis
    /// counts the lookups of reading commands only (a write's lookup of its key is not a cache
    /// hit), so the server turns counting off while a write command runs.
    pub fn count_reads(&mut self, on: bool) {
        self.ks.count_reads = on;
    }

    /// Whether expiry is paused (see [`Engine::pause_expiry`]).
    pub fn expiry_paused(&self) -> bool {
        self.ks.expiry_paused
    }

    /// How many pages of page group `group` (a paged value's generation: the first 8 bytes of
    /// its page keys, see [`crate::pages::page_group`]) are in memory with a value.
    pub fn resident_pages(&self, group: u64) -> u32 {
        self.ks.resident_pages(group)
    }

    /// Whether memory holds a delete of `key` (a tombstone) that the store may not have yet.
    pub fn deleted_in_memory(&self, db: DbIndex, key: &[u8]) -> bool {
        self.ks.deleted_in_memory(db, key)
    }

    /// [`Engine::peek`] as the cache shares the value: the caller may keep it while it changes
    /// other entries.
    pub fn peek_shared(&self, db: DbIndex, key: &[u8]) -> Option<Arc<V>> {
        self.ks.peek_shared(db, key)
    }

    /// Where `key` is: resident, known absent or unknown. Only looks, never loads.
    pub fn residency(&self, db: DbIndex, key: &[u8]) -> Residency {
        self.ks.residency(db, key)
    }

    /// The exact number of keys of `db`, or `None` while it is not known.
    pub fn key_count(&self, db: DbIndex) -> Option<u64> {
        self.ks.key_count(db)
    }

    /// Entries of `db` in memory (values and deletions not saved yet).
    pub fn resident_len(&self, db: DbIndex) -> usize {
        self.ks.resident_len(db)
    }

    /// Number of dirty entries across all DBs.
    pub fn dirty_len(&self) -> usize {
        self.ks.dirty_len()
    }

    /// Opens a save group: every key changed until [`Engine::end_group`] reaches disk in the
    /// same backend batch (one command, one EXEC, one paged value's manifest and pages).
    pub fn begin_group(&mut self) {
        self.ks.begin_group();
    }

    /// Closes the group [`Engine::begin_group`] opened; from then on it may be saved.
    pub fn end_group(&mut self) {
        self.ks.end_group();
    }

    /// Protects `key` from eviction until a matching [`Engine::unpin`] (counted).
    pub fn pin(&mut self, db: DbIndex, key: &[u8]) {
        self.ks.pin(db, key);
    }

    /// Undoes one [`Engine::pin`].
    pub fn unpin(&mut self, db: DbIndex, key: &[u8]) {
        self.ks.unpin(db, key);
    }

    /// Starts (or with `false` stops) recording changed keys, for WATCH, blocking commands and
    /// client tracking.
    pub fn track_touched(&mut self, on: bool) {
        self.ks.track_touched(on);
    }

    /// The keys changed since the last call.
    pub fn take_touched(&mut self) -> Vec<(DbIndex, Vec<u8>)> {
        self.ks.take_touched()
    }

    /// The values with pages that left their key since the last call (their pages may need
    /// deleting).
    pub fn take_released(&mut self) -> Vec<Arc<V>> {
        self.ks.take_released()
    }

    /// Active expiry: deletes the expired among up to `samples` sampled entries per DB.
    pub fn active_expire(&mut self, now_ms: i64, samples: usize) -> usize {
        self.ks.active_expire(now_ms, samples)
    }

    /// Evicts clean entries by approximate LRU until about `bytes` were freed; returns the
    /// bytes freed.
    pub fn evict(&mut self, bytes: usize) -> usize {
        self.ks.evict(bytes, self.cfg.maxmemory_samples)
    }

    /// The bytes resident entries take as eviction counts them, estimated from up to `samples`
    /// entries per DB.
    pub fn estimate_cache_bytes(&mut self, samples: usize) -> usize {
        self.ks.estimate_bytes(samples)
    }

    /// Sets how many keys the negative cache may hold.
    pub fn set_negcache_capacity(&mut self, entries: usize) {
        self.ks.negcache.set_capacity(entries);
    }

    /// The IO counters.
    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// Zeroes the IO and cache counters (CONFIG RESETSTAT).
    pub fn reset_stats(&mut self) {
        self.stats = EngineStats::default();
        self.ks.stats = CacheStats::default();
    }

    /// Whether the key filter of `db` is built (until then every unknown key is probed).
    pub fn filter_ready(&self, db: DbIndex) -> bool {
        self.ks.diskkeys.ready(db)
    }

    /// How many keys the key filters hold over all DBs: about how many keys the store has.
    pub fn filter_keys(&self) -> u64 {
        self.ks.diskkeys.len()
    }

    /// The cache's counters and sizes. Walks the page namespace: for INFO, not a hot path.
    pub fn cache_report(&self) -> CacheReport {
        let ks = &self.ks;
        let filters = &ks.diskkeys;
        CacheReport {
            stats: ks.stats.clone(),
            filter_probes_avoided: filters.stats.probes_avoided.get(),
            filter_false_positives: filters.stats.false_positives,
            filter_regrown: filters.stats.regrown,
            filter_keys: filters.len(),
            filters_building: (0..ks.databases() as DbIndex)
                .filter(|&d| filters.state(d) == FilterState::Building)
                .count(),
            filter_bytes: filters.memory_usage(),
            negcache_entries: ks.negcache.len(),
            negcache_hits: ks.negcache.hits.get(),
            negcache_bytes: ks.negcache.bytes(),
            resident_pages: ks.resident_values(ks.pages_db()),
        }
    }
}
