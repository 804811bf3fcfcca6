//! The object cache: the part of the keyspace that is in RAM, with the bookkeeping the IO
//! scheduler needs (dirty flags, versions, save groups) and approximate-LRU eviction.
//!
//! An entry is one of
//! - a **value** (`Some`), clean (equal to disk) or dirty (newer than disk);
//! - a **tombstone** (`None`, always dirty): deleted in memory, delete not yet on disk. It answers
//!   "absent" without a disk read, which closes the seed's DEL-then-GET stale-read race.
//!
//! A key with no entry is either known absent ([`NegCache`]) or unknown, and must be loaded
//! before a command may look at it.

mod db;
mod group_table;
mod groups;

pub use db::Db;
pub(crate) use groups::Groups;

use crate::dbmap::DbMap;
use crate::diskkeys::DiskKeys;
use crate::keycount::DbCount;
use crate::negcache::NegCache;
use crate::store::DbIndex;
use crate::value::CacheValue;
use indexmap::IndexMap;
use std::sync::Arc;

/// The hasher of every map keyed by client keys (the cache, the negative cache, pins, loads):
/// seeded at random per map, so a client cannot aim keys at one bucket, and several times
/// cheaper than std's SipHash, which was 7% of the owner thread under pipelined writes.
pub(crate) type KeyHasher = foldhash::quality::RandomState;

/// A key as the cache holds it: up to 24 bytes inline (most Redis keys, and every page key),
/// longer ones on the heap. An inline key costs no allocation of its own and no extra cache
/// miss when a lookup compares it: under random keys the first touch of a key was 30% of the
/// owner thread, mostly memory latency.
pub(crate) type Key = smallvec::SmallVec<[u8; 24]>;

/// `Entry::expire` of a key without a time to live: the largest time, so "has it expired"
/// is one comparison. (A client's `PEXPIREAT 9223372036854775807` is kept a millisecond
/// earlier, see [`Entry::set_expire_at`].)
const NO_EXPIRE: i64 = i64::MAX;

/// One resident key. Every byte counts: the cache holds one per key, with up to twice that
/// in spare capacity, so the fields are as narrow as their use allows (40 bytes; the key's
/// hash and bytes come on top in the map).
#[derive(Debug, Clone)]
pub(crate) struct Entry<V> {
    pub value: Option<Arc<V>>,
    /// Unix milliseconds when the key expires, [`NO_EXPIRE`] for never: use
    /// [`Entry::expire_at`] and [`Entry::set_expire_at`].
    expire: i64,
    /// Save group of a dirty entry (keys that must reach disk in one batch); 0 when clean.
    pub group: u64,
    /// The LRU clock at the last access, truncated: ages are compared with wrapping
    /// arithmetic (see `Keyspace::pick_victim`), as Redis does with its 24-bit clock.
    pub lru: u32,
    /// Bumped on every change; a save completion for an older version leaves the key dirty.
    /// Only compared for equality with the version a save took, so wrapping is harmless (a
    /// save would have to stay in flight through 2^32 writes to be mistaken).
    pub version: u32,
    pub dirty: bool,
    /// SAVE_IN_PROGRESS: an IO worker holds a snapshot of this entry.
    pub saving: bool,
    /// Whether the store holds the key now (`None`: not known, e.g. after a blind write over a
    /// key that was never loaded). Keeps the key filter exact enough (see [`DiskKeys`]).
    pub on_disk: Option<bool>,
}

impl<V> Entry<V> {
    /// A clean entry holding `value` (the caller marks it dirty when it is a change).
    pub(crate) fn new(
        value: Arc<V>,
        expire_at: Option<i64>,
        lru: u32,
        on_disk: Option<bool>,
    ) -> Self {
        let mut e = Entry::tombstone(on_disk);
        e.value = Some(value);
        e.lru = lru;
        e.set_expire_at(expire_at);
        e
    }

    /// When the key expires (Unix milliseconds), if it does.
    pub(crate) fn expire_at(&self) -> Option<i64> {
        (self.expire != NO_EXPIRE).then_some(self.expire)
    }

    pub(crate) fn set_expire_at(&mut self, at: Option<i64>) {
        self.expire = at.map_or(NO_EXPIRE, |t| t.min(NO_EXPIRE - 1));
    }

    /// Whether the key has expired at `now_ms`.
    pub(crate) fn expired(&self, now_ms: i64) -> bool {
        self.expire <= now_ms
    }

    /// What this entry adds to its DB's key count beyond the store's records: `live - on_disk`
    /// when its presence on disk is known, otherwise one unknown (see [`crate::keycount`]).
    pub(crate) fn count_share(&self) -> (i64, u64) {
        match self.on_disk {
            None => (0, 1),
            Some(d) => (i64::from(self.value.is_some()) - i64::from(d), 0),
        }
    }

    /// A clean tombstone (the caller marks it dirty): the key reads as deleted.
    pub(crate) fn tombstone(on_disk: Option<bool>) -> Self {
        Entry {
            value: None,
            expire: NO_EXPIRE,
            group: 0,
            lru: 0,
            version: 0,
            dirty: false,
            saving: false,
            on_disk,
        }
    }
}

/// Where a key is, from the point of view of a command that wants to read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Residency {
    /// In memory (as a value or a tombstone): commands may run.
    Resident,
    /// Known absent on disk: commands may run and see no key.
    KnownAbsent,
    /// Must be loaded first.
    Unknown,
}

/// Counters shown in INFO.
#[derive(Debug, Default, Clone)]
pub struct CacheStats {
    /// Reads through [`Db::get`] that found a live value.
    pub hits: u64,
    /// Reads through [`Db::get`] that found no live value (absent, deleted or expired).
    pub misses: u64,
    /// Keys deleted because their expire time passed (on access, by active expiry, or found
    /// expired when loaded).
    pub expired_keys: u64,
    /// Clean entries dropped from memory to stay under `maxmemory` (they remain on disk).
    pub evicted_keys: u64,
    /// Lookups of a key that was neither resident nor known absent: a command ran before its
    /// key was loaded and was told "absent" for a key that may be on disk. Always 0 unless the
    /// server skipped [`Engine::ensure`](crate::Engine::ensure).
    pub unresolved_reads: u64,
}

/// The in-memory keyspace of every DB: resident entries (values and tombstones), the negative
/// cache, the key filters and the save groups. Commands use it through [`Keyspace::db`]; the
/// [`Engine`](crate::Engine) owns it and moves keys between it and the store.
#[derive(Debug)]
pub struct Keyspace<V> {
    pub(crate) dbs: Vec<IndexMap<Key, Entry<V>, KeyHasher>>,
    /// Keys known absent from the store.
    pub negcache: NegCache,
    /// Which keys may be in the store.
    pub diskkeys: DiskKeys,
    pub(crate) groups: Groups,
    /// Hit, miss, expiry and eviction counters for INFO.
    pub stats: CacheStats,
    clock: u32,
    version: u32,
    rng: u64,
    /// Keys a parked command needs, with how many commands need each: never evicted, so a
    /// command whose keys together are large cannot be starved by eviction of the ones that
    /// arrived first while the others load.
    pinned: std::collections::HashMap<(DbIndex, Vec<u8>), u32, KeyHasher>,
    /// Keys changed since the last `take_touched`, recorded only while someone needs them
    /// (WATCH, blocked clients).
    touched: Option<Vec<(DbIndex, Vec<u8>)>>,
    /// Per DB: what memory adds to the store's key count (see [`crate::keycount`]).
    pub(crate) counts: Vec<DbCount>,
    /// Values with pages ([`CacheValue::owns_pages`]) replaced, deleted or expired since the
    /// last [`Keyspace::take_released`].
    released: Vec<Arc<V>>,
    /// Page namespace only: how many pages of each page group (the first 8 bytes of a page
    /// key, the server's generation of a paged value) are in memory with a value. Lets the
    /// request path see that a paged value is wholly in memory with one lookup instead of
    /// finding each page it needs (a quarter of the owner thread under random ZADD into one
    /// large set). A count that is off only costs a synchronous page read: the commands still
    /// load a page they find missing.
    page_residents: rustc_hash::FxHashMap<u64, u32>,
    /// Redis DB index → store namespace (SWAPDB). Every `DbIndex` this type's public methods
    /// take or return is a Redis DB; every field above is indexed by store namespace.
    pub(crate) map: DbMap,
    /// While set (a CLIENT PAUSE), nothing is deleted for having expired: an expired key reads
    /// as absent but stays, and active expiry does not run, as in Redis (whose pause exists so
    /// that a failover sees a dataset that does not change under it).
    pub(crate) expiry_paused: bool,
    /// Whether reads count as keyspace hits and misses (see [`crate::Engine::count_reads`]).
    pub(crate) count_reads: bool,
}

impl<V: CacheValue> Keyspace<V> {
    /// An empty keyspace of `databases` DBs (plus the page namespace, see [`crate::pages`]),
    /// with a negative cache of at most `negcache_entries` keys; the key filters start out
    /// building (every key may be on disk).
    pub fn new(databases: usize, negcache_entries: usize) -> Self {
        let databases = databases + 1;
        Keyspace {
            dbs: (0..databases).map(|_| IndexMap::default()).collect(),
            negcache: NegCache::new(negcache_entries),
            diskkeys: DiskKeys::new(databases),
            groups: Groups::default(),
            stats: CacheStats::default(),
            clock: 0,
            version: 0,
            rng: 0x2545_f491_4f6c_dd1d,
            pinned: Default::default(),
            touched: None,
            counts: vec![DbCount::default(); databases],
            released: Vec::new(),
            page_residents: Default::default(),
            map: DbMap::identity(databases),
            expiry_paused: false,
            count_reads: true,
        }
    }

    /// Number of Redis DBs (the page namespace not included).
    pub fn databases(&self) -> usize {
        self.dbs.len() - 1
    }

    /// The DB index of the page namespace (see [`crate::pages`]): one past the Redis DBs, never
    /// swapped, flushed by FLUSHALL only.
    pub fn pages_db(&self) -> DbIndex {
        (self.dbs.len() - 1) as DbIndex
    }

    /// The value at `key` as the cache shares it, like [`Keyspace::peek`]: a reader can keep
    /// it while it changes other entries (loads pages), without copying the value.
    pub fn peek_shared(&self, db: DbIndex, key: &[u8]) -> Option<Arc<V>> {
        self.dbs[self.map.store(db) as usize]
            .get(key)
            .and_then(|e| e.value.clone())
    }

    /// The live value of a resident key without touching its LRU clock or reclaiming it if it
    /// has expired (for planning which pages a command needs, before it runs).
    pub fn peek(&self, db: DbIndex, key: &[u8]) -> Option<&V> {
        self.dbs[self.map.store(db) as usize]
            .get(key)
            .and_then(|e| e.value.as_deref())
    }

    /// Whether the entry of `key` is a tombstone (a delete waiting for its save, or saved and
    /// not yet forgotten).
    pub fn deleted_in_memory(&self, db: DbIndex, key: &[u8]) -> bool {
        self.dbs[self.map.store(db) as usize]
            .get(key)
            .is_some_and(|e| e.value.is_none())
    }

    /// A view of one DB for a command running at `now_ms` (Unix milliseconds).
    pub fn db(&mut self, db: DbIndex, now_ms: i64) -> Db<'_, V> {
        let ns = self.map.store(db);
        Db::new(self, ns, db, now_ms)
    }

    /// [`Keyspace::db`] by store namespace.
    pub(crate) fn db_ns(&mut self, ns: DbIndex, now_ms: i64) -> Db<'_, V> {
        let logical = self.map.logical(ns);
        Db::new(self, ns, logical, now_ms)
    }

    /// Where `key` is: resident, known absent (by the key filter or the negative cache), or
    /// unknown. Only looks, never loads (see [`Engine::ensure`](crate::Engine::ensure)); counts
    /// filter-avoided probes and negative-cache hits.
    pub fn residency(&self, db: DbIndex, key: &[u8]) -> Residency {
        self.residency_ns(self.map.store(db), key)
    }

    /// [`Keyspace::residency`] by store namespace.
    pub(crate) fn residency_ns(&self, db: DbIndex, key: &[u8]) -> Residency {
        if self.dbs[db as usize].contains_key(key) {
            Residency::Resident
        } else if !self.diskkeys.may_contain(db, key) {
            let avoided = &self.diskkeys.stats.probes_avoided;
            avoided.set(avoided.get() + 1);
            Residency::KnownAbsent
        } else if self.negcache.contains(db, key) {
            Residency::KnownAbsent
        } else {
            Residency::Unknown
        }
    }

    /// How many pages of page group `group` (see [`crate::pages::page_group`]) are in memory
    /// with a value.
    pub fn resident_pages(&self, group: u64) -> u32 {
        self.page_residents.get(&group).copied().unwrap_or(0)
    }

    /// Notes that the entry of `key` in store namespace `ns` gained (`gained`) or lost a value.
    pub(crate) fn note_value(&mut self, ns: DbIndex, key: &[u8], gained: bool) {
        if ns as usize != self.dbs.len() - 1 {
            return;
        }
        let Some(group) = crate::pages::page_group(key) else {
            return;
        };
        if gained {
            *self.page_residents.entry(group).or_insert(0) += 1;
        } else if let Some(n) = self.page_residents.get_mut(&group) {
            *n -= 1;
            if *n == 0 {
                self.page_residents.remove(&group);
            }
        }
    }

    /// The values with pages that left their key (replaced, deleted, expired) since the last
    /// call. A RENAME or MOVE hands one back too: the caller checks where it went before it
    /// deletes the pages.
    pub fn take_released(&mut self) -> Vec<Arc<V>> {
        std::mem::take(&mut self.released)
    }

    pub(crate) fn release(&mut self, old: Option<&Arc<V>>) {
        if let Some(v) = old.filter(|v| v.owns_pages()) {
            self.released.push(Arc::clone(v));
        }
    }

    /// Starts recording changed keys (for WATCH and blocking commands); `false` stops it.
    pub fn track_touched(&mut self, on: bool) {
        match (on, self.touched.is_some()) {
            (true, false) => self.touched = Some(Vec::new()),
            (false, true) => self.touched = None,
            _ => {}
        }
    }

    /// Returns and forgets the keys changed since the last call.
    pub fn take_touched(&mut self) -> Vec<(DbIndex, Vec<u8>)> {
        self.touched
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Opens a save group: every key changed until [`Keyspace::end_group`] reaches disk in the
    /// same backend batch (one command, or one EXEC).
    pub fn begin_group(&mut self) {
        self.groups.begin();
    }

    /// Closes the group opened by [`Keyspace::begin_group`]; from then on it may be saved.
    pub fn end_group(&mut self) {
        self.groups.end();
    }

    /// Gives back about `bytes` of negative-cache memory, keeping the entries of pinned keys
    /// (a parked command that learned its key is absent must still find that out when it runs).
    pub fn shrink_negcache(&mut self, bytes: usize) -> usize {
        let pinned = &self.pinned;
        self.negcache
            .shrink_by(bytes, |db, key| pinned.contains_key(&(db, key.to_vec())))
    }

    /// Protects `key` from eviction until a matching [`Keyspace::unpin`] (counted: several
    /// parked commands may pin the same key).
    pub fn pin(&mut self, db: DbIndex, key: &[u8]) {
        let db = self.map.store(db);
        *self.pinned.entry((db, key.to_vec())).or_insert(0) += 1;
    }

    /// Undoes one [`Keyspace::pin`].
    pub fn unpin(&mut self, db: DbIndex, key: &[u8]) {
        let k = (self.map.store(db), key.to_vec());
        if let Some(n) = self.pinned.get_mut(&k) {
            *n -= 1;
            if *n == 0 {
                self.pinned.remove(&k);
            }
        }
    }

    /// Number of entries resident in memory in `db` (values and tombstones).
    pub fn resident_len(&self, db: DbIndex) -> usize {
        self.dbs[self.map.store(db) as usize].len()
    }

    /// The values of `db` in memory, without the deletions not saved yet (which
    /// [`Keyspace::resident_len`] counts): a walk over the DB, for statistics.
    pub fn resident_values(&self, db: DbIndex) -> usize {
        self.dbs[self.map.store(db) as usize]
            .values()
            .filter(|e| e.value.is_some())
            .count()
    }

    /// The exact number of keys of `db` (memory merged with the store's persisted count), or
    /// `None` while it is not known: the store predates counts, or a blind write over a key
    /// never loaded has not been saved yet (its save finds out whether it existed).
    pub fn key_count(&self, db: DbIndex) -> Option<u64> {
        self.counts[self.map.store(db) as usize].exact()
    }

    /// Takes an entry's share out of its DB's count (before it changes or leaves memory).
    pub(crate) fn uncount(&mut self, db: DbIndex, share: (i64, u64)) {
        let c = &mut self.counts[db as usize];
        c.adj -= share.0;
        c.unknown = c.unknown.saturating_sub(share.1);
    }

    /// Adds an entry's share to its DB's count (after it changed or arrived).
    pub(crate) fn count(&mut self, db: DbIndex, share: (i64, u64)) {
        let c = &mut self.counts[db as usize];
        c.adj += share.0;
        c.unknown += share.1;
    }

    /// Number of dirty entries across all DBs.
    pub fn dirty_len(&self) -> usize {
        self.groups.dirty_keys()
    }

    pub(crate) fn next_version(&mut self) -> u32 {
        self.version = self.version.wrapping_add(1);
        self.version
    }

    pub(crate) fn tick_clock(&mut self) -> u32 {
        self.clock = self.clock.wrapping_add(1);
        self.clock
    }

    pub(crate) fn rand(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    pub(crate) fn record_touch(&mut self, db: DbIndex, key: &[u8]) {
        let pages = self.pages_db();
        note_touch(&mut self.touched, &self.map, pages, db, key);
    }

    /// Marks an entry changed: new version, dirty, in the current save group.
    pub(crate) fn mark_dirty(&mut self, db: DbIndex, key: &[u8]) {
        let i = self.dbs[db as usize]
            .get_index_of(key)
            .expect("mark_dirty of a resident key");
        self.mark_dirty_at(db, i);
    }

    /// [`Keyspace::mark_dirty`] of the entry at position `i` of DB `db`'s map.
    pub(crate) fn mark_dirty_at(&mut self, db: DbIndex, i: usize) {
        let version = self.next_version();
        let pages = self.pages_db();
        let (key, entry) = self.dbs[db as usize]
            .get_index_mut(i)
            .expect("mark_dirty of a resident key");
        entry.version = version;
        let old_group = entry.group;
        let was_dirty = entry.dirty;
        entry.dirty = true;
        let (group, moved) = self.groups.join(db, key, old_group, was_dirty);
        entry.group = group;
        note_touch(&mut self.touched, &self.map, pages, db, key);
        for (d, k) in moved {
            if let Some(e) = self.dbs[d as usize].get_mut(k.as_slice()) {
                e.group = group;
            }
        }
    }

    /// Removes every resident entry of one store namespace (or all) without saving anything;
    /// the caller clears the disk store too.
    pub(crate) fn clear(&mut self, db: Option<DbIndex>) {
        let dbs: Vec<usize> = match db {
            Some(d) => vec![d as usize],
            None => (0..self.dbs.len()).collect(),
        };
        let mut forgotten = 0;
        for d in dbs {
            let map = std::mem::take(&mut self.dbs[d]);
            if d == self.dbs.len() - 1 {
                self.page_residents.clear();
            }
            forgotten += map.values().filter(|e| e.dirty).count();
            // The store's copy goes too: the DB holds nothing, a count known again.
            self.counts[d] = DbCount {
                stored: Some(0),
                adj: 0,
                unknown: 0,
            };
        }
        self.groups.forget_db(db, forgotten);
        self.negcache.clear(db);
        self.diskkeys.cleared(db);
    }

    /// The group of the command running now, if it changed anything yet.
    pub(crate) fn open_group(&self) -> Option<u64> {
        self.groups.open_group()
    }

    /// Active expiry: samples up to `samples` resident entries per DB and deletes the expired
    /// ones (as tombstones, so the delete reaches disk). Returns how many expired.
    pub fn active_expire(&mut self, now_ms: i64, samples: usize) -> usize {
        if self.expiry_paused {
            return 0;
        }
        let mut expired = Vec::new();
        for d in 0..self.dbs.len() {
            let n = self.dbs[d].len();
            if n == 0 {
                continue;
            }
            for _ in 0..samples.min(n) {
                let i = (self.rand() % n as u64) as usize;
                if let Some((k, e)) = self.dbs[d].get_index(i) {
                    if e.value.is_some() && e.expired(now_ms) {
                        expired.push((d as DbIndex, k.clone()));
                    }
                }
            }
        }
        let count = expired.len();
        for (d, k) in expired {
            // `contains` turns an expired entry into a tombstone and counts it.
            self.db_ns(d, now_ms).contains(&k);
        }
        count
    }

    /// Evicts clean entries by sampled approximate LRU until `bytes` were freed (as estimated by
    /// `mem_size`) or nothing evictable is found. Returns the bytes freed.
    pub fn evict(&mut self, bytes: usize, samples: usize) -> usize {
        let mut freed = 0;
        let mut misses = 0;
        while freed < bytes && misses < 8 {
            match self.pick_victim(samples.max(1)) {
                Some((d, i)) => {
                    let (key, e) = self.dbs[d].swap_remove_index(i).expect("sampled index");
                    self.uncount(d as DbIndex, e.count_share());
                    if e.value.is_some() {
                        self.note_value(d as DbIndex, &key, false);
                    }
                    freed += entry_bytes(&key, &e);
                    self.stats.evicted_keys += 1;
                    misses = 0;
                }
                None => misses += 1,
            }
        }
        freed
    }

    /// The bytes resident entries take as [`Keyspace::evict`] counts them (key, value's
    /// `mem_size`, 64 bytes of bookkeeping), estimated from up to `samples` random entries per
    /// DB (exact for smaller DBs). For a server whose backend allocates from the same heap
    /// (sled), so that the allocator's total cannot tell the cache's share.
    pub fn estimate_bytes(&mut self, samples: usize) -> usize {
        let mut total = 0;
        for d in 0..self.dbs.len() {
            let n = self.dbs[d].len();
            if n <= samples.max(1) {
                total += self.dbs[d]
                    .iter()
                    .map(|(k, e)| entry_bytes(k, e))
                    .sum::<usize>();
                continue;
            }
            let mut sum = 0;
            for _ in 0..samples {
                let i = (self.rand() % n as u64) as usize;
                let (k, e) = self.dbs[d].get_index(i).expect("index in range");
                sum += entry_bytes(k, e);
            }
            total += sum / samples * n;
        }
        total
    }

    fn pick_victim(&mut self, samples: usize) -> Option<(usize, usize)> {
        let total: usize = self.dbs.iter().map(|m| m.len()).sum();
        if total == 0 {
            return None;
        }
        // (db, position, age in clock ticks): the oldest sampled entry goes.
        let mut best: Option<(usize, usize, u32)> = None;
        for _ in 0..samples {
            let mut idx = (self.rand() % total as u64) as usize;
            let mut d = 0;
            while idx >= self.dbs[d].len() {
                idx -= self.dbs[d].len();
                d += 1;
            }
            let (k, e) = self.dbs[d].get_index(idx).expect("index in range");
            if e.dirty || e.saving || e.value.is_none() {
                continue;
            }
            if !self.pinned.is_empty() && self.pinned.contains_key(&(d as DbIndex, k.to_vec())) {
                continue;
            }
            let age = self.clock.wrapping_sub(e.lru);
            if best.is_none_or(|(_, _, oldest)| age > oldest) {
                best = Some((d, idx, age));
            }
        }
        best.map(|(d, i, _)| (d, i))
    }
}

/// The memory an entry is taken to use: key, value (`mem_size`) and 64 bytes of bookkeeping.
fn entry_bytes<V: CacheValue>(key: &[u8], e: &Entry<V>) -> usize {
    key.len() + e.value.as_ref().map_or(0, |v| v.mem_size()) + 64
}

/// Records that `key` of store namespace `db` changed, for WATCH and client tracking, while
/// someone needs it (`touched` is `Some`). A page (namespace `pages`) is not a key anyone can
/// WATCH or track: the command that changes it touches its manifest's key. A free function
/// over the fields it needs, so a caller can pass a key borrowed from the cache's own maps.
fn note_touch(
    touched: &mut Option<Vec<(DbIndex, Vec<u8>)>>,
    map: &DbMap,
    pages: DbIndex,
    db: DbIndex,
    key: &[u8],
) {
    if db == pages {
        return;
    }
    if let Some(t) = touched {
        t.push((map.logical(db), key.to_vec()));
    }
}

#[cfg(test)]
mod tests;
