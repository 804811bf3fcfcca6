//! The diskstore engine: the object cache ([`Keyspace`]) plus the per-key IO scheduler that
//! moves keys between it and a [`DiskStore`].
//!
//! Everything here runs on the owner thread except the IO workers (private module `worker`).
//! The owner asks for keys ([`Engine::ensure`]), runs commands on resident data, and calls
//! [`Engine::poll`] when the worker notification fires and [`Engine::tick`] periodically; `poll`
//! returns [`Event`]s that say which parked work may continue.
//!
//! Per-key IO flags: LOAD (queued) and LOAD_IN_PROGRESS live in `loads`; SAVE is "dirty and in
//! a save group", SAVE_IN_PROGRESS is `Entry::saving`. A key is never in two saves at once, so
//! saves of one key reach the store in order.

mod cache_api;
mod worker;

pub use cache_api::CacheReport;
pub use worker::Notify;

use crate::cache::{Entry, Key, Keyspace, Residency};
use crate::keycount::{self, StoredCounts};
use crate::keysample::KeySample;
use crate::store::{DbIndex, DiskStore, StoreError};
use crate::value::CacheValue;
use crossbeam_channel::{unbounded, Receiver, Sender};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use worker::{Completion, Job, Loaded, SaveItem, Saved};

/// Engine settings (the server maps its config onto these).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Number of logical databases; every `DbIndex` passed to the engine must be below it.
    pub databases: usize,
    /// IO worker threads for reads (loads and scans) started by [`Engine::new`] (at least
    /// one is started even if 0), and as many again for writes (saves, flushes, DB map
    /// writes): clients wait for reads, while writes only have to keep up.
    pub io_threads: usize,
    /// How much lower the write workers' CPU priority is (a nice increment, 0-19; Linux only).
    /// On a machine whose cores are all busy, saves then yield to the event loop and to reads
    /// instead of taking an equal share; they catch up whenever the loop waits, and flow
    /// control holds writers if dirty data outgrows memory.
    pub background_nice: i32,
    /// How long a dirty key waits before it is saved, coalescing repeated writes.
    pub flush_delay: Duration,
    /// Most keys in one backend batch (a save group is never split).
    pub max_batch_keys: usize,
    /// Most value bytes in one batch: a batch is serialized whole on a worker (and the fs
    /// backend journals it), so this bounds the memory saves take beyond the cache.
    pub max_batch_bytes: usize,
    /// Most loads in flight at once.
    pub max_inflight_loads: usize,
    /// Capacity of the negative cache, in keys (0 disables it).
    pub negcache_entries: usize,
    /// Entries sampled per eviction when picking the least recently used clean key.
    pub maxmemory_samples: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            databases: 16,
            io_threads: 4,
            background_nice: 19,
            flush_delay: Duration::from_secs(1),
            max_batch_keys: 1024,
            max_batch_bytes: 8 << 20,
            max_inflight_loads: 256,
            negcache_entries: 100_000,
            maxmemory_samples: 5,
        }
    }
}

/// What the owner thread learns from [`Engine::poll`].
#[derive(Debug)]
pub enum Event {
    /// A load finished: the key is now resident or known absent (or must be asked for again).
    /// Also sent when a queued load was dropped by [`Engine::clear`]: the waiter asks
    /// [`Engine::ensure`] again.
    KeyReady {
        /// Database of the key.
        db: DbIndex,
        /// The key that was asked for.
        key: Vec<u8>,
    },
    /// A load failed; commands waiting for the key should fail with this message.
    KeyFailed {
        /// Database of the key.
        db: DbIndex,
        /// The key that could not be loaded.
        key: Vec<u8>,
        /// The store's error, as text.
        error: String,
        /// The record is damaged (not a passing IO error): see [`Engine::replace_corrupt`].
        corrupt: bool,
    },
    /// Everything dirty at the time of [`Engine::barrier`] is durable (or a save failed).
    BarrierDone {
        /// The token passed to [`Engine::barrier`].
        token: u64,
        /// `Err` with the store's error if a save of changes the barrier covers, or a clear of
        /// the store, failed while it waited.
        result: Result<(), String>,
    },
    /// A store scan started by [`Engine::scan`] finished.
    ScanDone {
        /// The token passed to [`Engine::scan`].
        token: u64,
        /// The page read, or the store's error as text.
        result: Result<KeyPage, String>,
    },
    /// The store side of an [`Engine::clear`] is done: the cleared DBs are empty on disk.
    ClearDone {
        /// The token passed to [`Engine::clear`].
        token: u64,
        /// Always `Ok`: a failed clear is retried until it succeeds, never reported here.
        result: Result<(), String>,
    },
}

/// A predicate over keys, run on an IO worker (see [`Engine::scan_matching`]).
pub type KeyFilter = Arc<dyn Fn(&[u8]) -> bool + Send + Sync>;

/// One page of [`Engine::scan`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPage {
    /// Keys of the page, in the store's order.
    pub keys: Vec<Vec<u8>>,
    /// With a typed scan, the record type tag of each key (same order); empty otherwise.
    pub types: Vec<u8>,
    /// With a typed scan, the first bytes of each record's payload (up to
    /// [`encoding::PAYLOAD_HEAD`](crate::encoding::PAYLOAD_HEAD), same order); empty otherwise.
    pub payload_heads: Vec<Vec<u8>>,
    /// Cursor of the next page, `None` at the end.
    pub next: Option<Vec<u8>>,
    /// With a typed scan, the keys of the page whose records have expired (left out of `keys`).
    pub expired: Vec<Vec<u8>>,
}

/// Counters for INFO's `# Diskstore` section.
#[derive(Debug, Default, Clone)]
pub struct EngineStats {
    /// Keys loaded from the store into the cache (values found on disk).
    pub disk_loads: u64,
    /// Load jobs sent (each reads up to `LOAD_BATCH` keys with one `get_many`).
    pub load_batches: u64,
    /// Loads that found no record (the key then goes to the negative cache).
    pub disk_load_misses: u64,
    /// Keys written (put or deleted) by successful save batches.
    pub keys_saved: u64,
    /// Save batches (one `write` plus one `sync`) that succeeded.
    pub save_batches: u64,
    /// Bytes of the records (keys and values) those batches put: what a save writes, before
    /// the backend's own overhead (log, compaction).
    pub bytes_saved: u64,
    /// Save batches that failed; their keys stay dirty and are retried with backoff.
    pub save_errors: u64,
    /// Key loads that failed with a store error, corrupt records included.
    pub load_errors: u64,
    /// Keys loaded synchronously on the owner thread ([`Engine::load_now`]).
    pub sync_loads: u64,
    /// Failed attempts to clear the store (FLUSHDB/FLUSHALL); each is retried.
    pub clear_errors: u64,
    /// Loads that failed with [`StoreError::Corruption`] (also counted in `load_errors`).
    pub corrupt_records: u64,
    /// Records found on disk already past their expire time; they are deleted, never served.
    pub expired_on_load: u64,
    /// Message of the most recent failed save; not cleared by a later successful one.
    pub last_save_error: Option<String>,
    /// The last save failed because the store is full ([`StoreError::NoSpace`]); cleared by the
    /// next successful save. Writes should be refused meanwhile (reads go on).
    pub out_of_space: bool,
    /// Unix time in seconds of the last successful save batch; 0 if none yet.
    pub last_save_ok_unix: i64,
    /// Save batches sent to the urgent worker (see [`Engine::set_saves_urgent`]).
    pub urgent_save_batches: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LoadFlag {
    Queued,
    InProgress,
    /// A background expiry probe nobody waits for: a live value read by it is dropped, not
    /// cached (so the sweep does not flood the cache); an expired one is deleted.
    Probe,
}

/// Most keys in one load job (one `get_many`).
const LOAD_BATCH: usize = 64;
/// Token of the engine's own scans for the expired-key sweep.
const SWEEP_TOKEN: u64 = u64::MAX;
/// Token of the scans that rebuild the key filters at open.
const FILTER_TOKEN: u64 = u64::MAX - 1;
/// Keys per page of the filter rebuild.
const FILTER_PAGE: usize = 4096;

/// Progress of the background scan that fills a DB's key filter (see `diskkeys`).
struct FilterBuild {
    db: DbIndex,
    cursor: Vec<u8>,
    in_flight: bool,
    /// Epoch of `db` when the page was asked for: a page that raced a flush is dropped.
    epoch: u64,
    /// The filter's build number when the page was asked for: a page for a filter replaced
    /// since (it outgrew its size) is dropped and the scan starts over.
    build: u64,
}
/// Keys of the store probed for expiry per tick: bounds the sweep's disk reads.
const SWEEP_KEYS_PER_TICK: usize = 128;

struct Barrier {
    token: u64,
    bound: u64,
    failed: Option<String>,
}

struct PendingClear {
    token: u64,
    db: Option<DbIndex>,
    dispatched: bool,
    /// After a failure: not retried before this instant.
    retry_at: Option<Instant>,
}

/// A key a completed save wrote or deleted (see [`Engine::take_saved`]).
#[derive(Debug, Clone)]
pub struct SavedKey {
    /// The (Redis) DB of the key.
    pub db: DbIndex,
    /// The key.
    pub key: Vec<u8>,
    /// Whether the store holds the key now.
    pub present: bool,
    /// The expire time (Unix milliseconds) written with it, if any: a reader merging this with
    /// what it read treats a stored key that has expired since as absent.
    pub expire_at: Option<i64>,
}

/// The diskstore engine: owns the object cache and the IO workers over one [`DiskStore`].
///
/// Lives on the owner thread, which calls [`Engine::ensure`] before running a command,
/// [`Engine::poll`] when the [`Notify`] callback fires, and [`Engine::tick`] periodically.
/// Dropping it stops the workers (see [`Engine::shutdown`]).
pub struct Engine<V: CacheValue> {
    /// The object cache; the server reaches it through the methods in `cache_api`.
    pub(crate) ks: Keyspace<V>,
    /// IO counters for INFO.
    pub(crate) stats: EngineStats,
    cfg: EngineConfig,
    store: Arc<dyn DiskStore>,
    /// Reads (loads, scans) go to `jobs`, writes to `background` (see [`Job::is_write`]),
    /// saves to `urgent` while they are urgent.
    jobs: Option<Sender<Job<V>>>,
    background: Option<Sender<Job<V>>>,
    /// The one save worker at the process's own priority, for saves that fell behind (none
    /// when the save workers are not lowered).
    urgent: Option<Sender<Job<V>>>,
    saves_urgent: bool,
    /// The save on the urgent worker (its smallest group id, as in `saves_in_flight`).
    urgent_job: Option<u64>,
    done: Receiver<Completion<V>>,
    workers: Vec<JoinHandle<()>>,
    loads: HashMap<(DbIndex, Vec<u8>), LoadFlag, crate::cache::KeyHasher>,
    load_queue: VecDeque<(DbIndex, Vec<u8>)>,
    loads_in_flight: usize,
    /// Save jobs in flight, keyed by the smallest group id they carry.
    saves_in_flight: BTreeMap<u64, usize>,
    other_in_flight: usize,
    /// Bumped by FLUSHDB/FLUSHALL so a load that raced a clear is discarded.
    epochs: Vec<u64>,
    barriers: Vec<Barrier>,
    clears: VecDeque<PendingClear>,
    pending_events: Vec<Event>,
    backoff: Duration,
    /// Set while memory is full of dirty data: save everything now.
    pressure: bool,
    /// Expired-key sweep position: DB and store cursor; `true` while its scan is in flight.
    sweep: (DbIndex, Vec<u8>, bool),
    /// Epoch of the sweep's DB when its scan was sent: a page that raced a clear is dropped.
    sweep_epoch: u64,
    /// The last sweep page found many expired keys: go on without waiting for the next tick.
    sweep_again: bool,
    /// A few keys of each DB's store, as random start positions for RANDOMKEY.
    sample: KeySample,
    /// Keys saved while a sweep page was being read: the page may show their older, expired
    /// record, so the sweep leaves them alone.
    saved_during_sweep: std::collections::HashSet<(DbIndex, Vec<u8>)>,
    clear_backoff: Duration,
    /// `None` once every DB's filter is built.
    filter_build: Option<FilterBuild>,
    /// Keys whose store state a completed save changed, recorded while someone reads the store
    /// across several pages (see [`Engine::track_saves`]).
    saved_log: Option<Vec<SavedKey>>,
    /// Last answer of `full_batch_due` and when it was computed.
    full_batch_checked: Option<(Instant, bool)>,
    /// Due groups that wait for a save in flight of one of their keys, in queue order, and
    /// the value of `saves_done` when they were found so. Only a finished save can make them
    /// ready, so they are looked at again only after one: under a steady stream of rewrites of
    /// the same keys, re-checking thousands of them on every pass cost most of the owner thread.
    parked: (Vec<u64>, u64),
    /// Saves finished (successfully or not) since the start.
    saves_done: u64,
    /// The store's key counts and the pending DB map, shared with the workers.
    counts: Arc<StoredCounts>,
    /// Per Redis DB: how many SWAPDBs changed what it shows (part of [`Engine::db_epoch`]).
    swaps: Vec<u64>,
    /// DB map writes (SWAPDB) in flight, and the group bound barriers asked for after the last
    /// swap must wait for.
    map_writes: (usize, u64),
    /// A failed DB map write is sent again at this instant.
    map_retry_at: Option<Instant>,
}

impl<V: CacheValue> Engine<V> {
    /// Starts the IO workers over `store`. `notify` is called (from a worker) after each
    /// completion, to wake the owner's event loop.
    pub fn new(store: Arc<dyn DiskStore>, cfg: EngineConfig, notify: Notify) -> Self {
        // The page namespace is one more DB inside the engine (see `pages`).
        let spaces = cfg.databases + 1;
        let store: Arc<dyn DiskStore> =
            Arc::new(crate::pages::NsStore::new(store, cfg.databases as DbIndex));
        let (jobs_tx, jobs_rx) = unbounded::<Job<V>>();
        let (background_tx, background_rx) = unbounded::<Job<V>>();
        let (urgent_tx, urgent_rx) = unbounded::<Job<V>>();
        let lowered = cfg.background_nice > 0;
        let (done_tx, done_rx) = unbounded();
        // O(databases) point reads: the persisted key counts (see keycount.rs).
        let initial_counts = keycount::load(&*store, cfg.databases);
        let counts = Arc::new(StoredCounts::new(&initial_counts));
        // The server checks the map before it starts the engine and refuses to start on a
        // damaged one; here it can only be logged.
        let map = crate::dbmap::DbMap::load(&*store, cfg.databases).unwrap_or_else(|e| {
            log::error!("{e}; using the identity DB map");
            crate::dbmap::DbMap::identity(cfg.databases)
        });
        let pages = cfg.databases as DbIndex;
        let n = cfg.io_threads.max(1);
        // Saves that fall behind go to one worker that is not lowered (a thread cannot raise
        // its own priority back without privileges, so a second pool it is).
        let pools = [
            ("io", &jobs_rx, 0, n),
            ("save", &background_rx, cfg.background_nice, n),
            ("urgent", &urgent_rx, 0, usize::from(lowered)),
        ];
        // Each worker says when its priority is set, so the engine (and the server) starts
        // with every save worker already lowered.
        let (ready_tx, ready_rx) = crossbeam_channel::bounded::<()>(2 * n + 1);
        let workers: Vec<JoinHandle<()>> = pools
            .into_iter()
            .flat_map(|(name, rx, nice, count)| {
                (0..count).map(move |i| (format!("kvtier-{name}-{i}"), rx, nice))
            })
            .map(|(name, rx, nice)| {
                let store = Arc::clone(&store);
                let jobs = rx.clone();
                let done = done_tx.clone();
                let notify = Arc::clone(&notify);
                let counts = Arc::clone(&counts);
                let ready = ready_tx.clone();
                std::thread::Builder::new()
                    .name(name)
                    .spawn(move || {
                        worker::lower_priority(nice);
                        let _ = ready.send(());
                        worker::run(store, counts, jobs, done, notify, pages)
                    })
                    .expect("spawn IO worker")
            })
            .collect();
        for _ in &workers {
            let _ = ready_rx.recv();
        }
        let mut ks = Keyspace::new(cfg.databases, cfg.negcache_entries);
        // The page namespace has no persisted count (nobody asks for it): it stays unknown.
        for (db, (c, stored)) in ks.counts.iter_mut().zip(initial_counts).enumerate() {
            c.stored = stored;
            // A filter sized for what the store holds fills at the disk's key count without
            // outgrowing its size (see diskkeys.rs).
            ks.diskkeys.presize(db as DbIndex, stored.unwrap_or(0));
        }
        // Page keys are drawn at random and written before they are read: no filter for them.
        ks.diskkeys.disable(pages);
        ks.map = map;
        Engine {
            ks,
            stats: EngineStats::default(),
            store,
            jobs: Some(jobs_tx),
            background: Some(background_tx),
            urgent: lowered.then_some(urgent_tx),
            saves_urgent: false,
            urgent_job: None,
            done: done_rx,
            workers,
            loads: HashMap::default(),
            load_queue: VecDeque::new(),
            loads_in_flight: 0,
            saves_in_flight: BTreeMap::new(),
            other_in_flight: 0,
            epochs: vec![0; spaces],
            barriers: Vec::new(),
            clears: VecDeque::new(),
            pending_events: Vec::new(),
            backoff: Duration::from_millis(100),
            pressure: false,
            sweep: (0, Vec::new(), false),
            sweep_epoch: 0,
            sweep_again: false,
            sample: KeySample::new(spaces),
            saved_during_sweep: Default::default(),
            clear_backoff: Duration::from_millis(100),
            saved_log: None,
            full_batch_checked: None,
            parked: (Vec::new(), 0),
            saves_done: 0,
            counts,
            swaps: vec![0; spaces],
            map_writes: (0, 0),
            map_retry_at: None,
            filter_build: None,
            cfg,
        }
    }

    /// The settings in effect (including changes made through the setters).
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Changes [`EngineConfig::flush_delay`] at runtime; applies to the next dispatch.
    pub fn set_flush_delay(&mut self, d: Duration) {
        self.cfg.flush_delay = d;
    }

    /// Changes [`EngineConfig::max_batch_bytes`] at runtime (0 is taken as 1).
    pub fn set_max_batch_bytes(&mut self, n: usize) {
        self.cfg.max_batch_bytes = n.max(1);
    }

    /// Changes [`EngineConfig::maxmemory_samples`] at runtime (0 is taken as 1).
    pub fn set_maxmemory_samples(&mut self, n: usize) {
        self.cfg.maxmemory_samples = n.max(1);
    }

    /// The disk store the workers use (for INFO, checkpoints and other direct calls).
    pub fn store(&self) -> &Arc<dyn DiskStore> {
        &self.store
    }

    fn send(&self, job: Job<V>) {
        let tx = if job.is_write() {
            &self.background
        } else {
            &self.jobs
        };
        if let Some(tx) = tx {
            // Workers only stop when their channel is dropped, so a send cannot fail before
            // shutdown.
            let _ = tx.send(job);
        }
    }

    /// Whether a FLUSHDB/FLUSHALL of `db` is not yet done on disk: the store's content of that
    /// DB is gone logically, so keyspace-wide reads must not look at it.
    pub fn is_clearing(&self, db: DbIndex) -> bool {
        self.clearing(self.ks.map.store(db))
    }

    /// [`Engine::is_clearing`] by store namespace.
    fn clearing(&self, ns: DbIndex) -> bool {
        self.clears.iter().any(|c| c.db.is_none_or(|d| d == ns))
    }

    /// The store namespace that holds Redis DB `db` (for a caller that reads the store itself).
    pub fn store_db(&self, db: DbIndex) -> DbIndex {
        self.ks.map.store(db)
    }

    /// SWAPDB: Redis DBs `a` and `b` exchange their contents, at once and without moving data
    /// (see [`crate::dbmap`]). The new map is made durable by the next batch written, or by a
    /// write of its own sent now; a later [`Engine::barrier`] waits for it. The caller re-asks
    /// [`Engine::ensure`] for keys it waits on in `a` or `b`: they now mean other records.
    pub fn swap_db(&mut self, a: DbIndex, b: DbIndex) {
        if a == b {
            return;
        }
        self.ks.map.swap(a, b);
        self.swaps[a as usize] += 1;
        self.swaps[b as usize] += 1;
        self.counts.set_pending_map(self.ks.map.encode());
        self.map_writes = (self.map_writes.0 + 1, self.ks.groups.last_id());
        self.send_map_write();
    }

    /// Sends a write of the pending DB map (counted in `map_writes` by the caller).
    fn send_map_write(&mut self) {
        self.other_in_flight += 1;
        self.send(Job::WriteMap);
    }

    /// Makes sure `key` can be used by a command: returns `Resident`/`KnownAbsent` when it can
    /// run now, `Unknown` after queueing a load (the caller parks until a [`Event::KeyReady`]).
    pub fn ensure(&mut self, db: DbIndex, key: &[u8]) -> Residency {
        let db = self.ks.map.store(db);
        match self.ks.residency_ns(db, key) {
            Residency::Unknown if self.clearing(db) => Residency::KnownAbsent,
            Residency::Unknown => {
                let k = (db, key.to_vec());
                match self.loads.get_mut(&k) {
                    // Someone waits for it now: keep what the probe reads.
                    Some(f @ LoadFlag::Probe) => *f = LoadFlag::InProgress,
                    Some(_) => {}
                    // Sent with the next `poll`/`tick`, batched with the other keys asked for
                    // meanwhile (the rest of this command, the rest of a pipeline).
                    None => {
                        self.loads.insert(k.clone(), LoadFlag::Queued);
                        self.load_queue.push_back(k);
                    }
                }
                Residency::Unknown
            }
            r => r,
        }
    }

    /// Gives up on a damaged record so the key can be overwritten or deleted: the key becomes a
    /// deleted key in memory (a dirty tombstone), and saving that delete removes the record from
    /// the store. Reads never get here: they fail with the load's error instead.
    pub fn replace_corrupt(&mut self, db: DbIndex, key: &[u8]) {
        let db = self.ks.map.store(db);
        if self.ks.dbs[db as usize].contains_key(key) || self.loading(db, key) {
            return;
        }
        // The damaged record is on disk, but a rebuild of the filter may have skipped it: not
        // known, so its delete removes nothing from the filter.
        self.ks.dbs[db as usize].insert(Key::from_slice(key), Entry::tombstone(None));
        self.ks.count(db, (0, 1));
        self.ks.mark_dirty(db, key);
    }

    /// Loads a key now, on the calling (owner) thread, for the rare caller that cannot wait for
    /// an IO worker: a Lua script that has already written and then touches a key it did not
    /// declare (it cannot be abandoned and re-run). Every other path parks the client instead.
    /// Counted in [`EngineStats::sync_loads`]; a no-op for a key that is resident or known
    /// absent. On error the key stays unknown and nothing changes.
    pub fn load_now(&mut self, db: DbIndex, key: &[u8]) -> Result<(), StoreError> {
        let db = self.ks.map.store(db);
        if self.clearing(db) || self.ks.residency_ns(db, key) != Residency::Unknown {
            return Ok(());
        }
        self.stats.sync_loads += 1;
        let bytes = self.store.get(db, key)?;
        let loaded = worker::decode_loaded::<V>(&*self.store, bytes, now_ms())?;
        self.install_loaded(db, key, loaded);
        Ok(())
    }

    /// Whether a load for the key is queued or in progress.
    pub fn is_loading(&self, db: DbIndex, key: &[u8]) -> bool {
        self.loading(self.ks.map.store(db), key)
    }

    /// [`Engine::is_loading`] by store namespace.
    fn loading(&self, ns: DbIndex, key: &[u8]) -> bool {
        self.loads.contains_key(&(ns, key.to_vec()))
    }

    /// Asks for a point in time: [`Event::BarrierDone`] with `token` is returned once every change
    /// made before this call is durable. New writes meanwhile do not delay it.
    pub fn barrier(&mut self, token: u64) {
        let bound = self.ks.groups.last_id();
        self.barriers.push(Barrier {
            token,
            bound,
            failed: None,
        });
        self.dispatch_saves(Instant::now());
        self.check_barriers();
    }

    /// Starts reading one page (up to `limit` keys after `cursor`) of the store's keys of `db`
    /// on an IO worker; [`Event::ScanDone`] with `token` brings it. With `typed`, each key's
    /// record header is read as well (its type tag; expired keys are left out). The page is the
    /// store's view: the caller merges it with memory (resident keys are judged by memory).
    pub fn scan(&mut self, token: u64, db: DbIndex, cursor: Vec<u8>, limit: usize, typed: bool) {
        self.scan_matching(token, db, cursor, limit, typed, None);
    }

    /// [`Engine::scan`] keeping only the keys `filter` accepts, judged on the worker before any
    /// record is read: a KEYS or SCAN MATCH pattern then costs a record read per matching key,
    /// not per key of the store. The page's cursor still advances by up to `limit` store keys.
    pub fn scan_matching(
        &mut self,
        token: u64,
        db: DbIndex,
        cursor: Vec<u8>,
        limit: usize,
        typed: bool,
        filter: Option<KeyFilter>,
    ) {
        let ns = self.ks.map.store(db);
        self.scan_ns(token, ns, cursor, limit, typed, filter);
    }

    /// A scan of store namespace `ns` (not a Redis DB: the engine's own scans, the filter
    /// rebuild and the expiry sweep, walk namespaces, which a SWAPDB does not move).
    fn scan_ns(
        &mut self,
        token: u64,
        ns: DbIndex,
        cursor: Vec<u8>,
        limit: usize,
        typed: bool,
        filter: Option<KeyFilter>,
    ) {
        self.other_in_flight += 1;
        self.send(Job::Scan {
            id: token,
            db: ns,
            cursor,
            limit,
            typed,
            now_ms: now_ms(),
            filter,
        });
    }

    /// Starts (or stops) recording the keys each completed save put into or removed from the
    /// store, for [`Engine::take_saved`]: a reader of the store that spans several pages merges
    /// them with what it read, so its result is exact whatever was saved meanwhile.
    pub fn track_saves(&mut self, on: bool) {
        match (on, self.saved_log.is_some()) {
            (true, false) => self.saved_log = Some(Vec::new()),
            (false, true) => self.saved_log = None,
            _ => {}
        }
    }

    /// Keys saved since the last call.
    pub fn take_saved(&mut self) -> Vec<SavedKey> {
        let mut saved = self
            .saved_log
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        for s in &mut saved {
            s.db = self.ks.map.logical(s.db);
        }
        saved
    }

    /// A key of `db` that was in the store recently (a uniform sample of the keys seen by the
    /// filter rebuild and by saves), as a random position for reading the store; `None` when
    /// none is known.
    pub fn sampled_key(&mut self, db: DbIndex) -> Option<Vec<u8>> {
        self.sample.pick(self.ks.map.store(db))
    }

    /// Incremented by every FLUSHDB/FLUSHALL of `db`: a multi-page scan that sees it change
    /// read pages of a store content that is gone.
    /// SWAPDB changes it too: the DB then shows another store content.
    pub fn db_epoch(&self, db: DbIndex) -> u64 {
        let flushes = self.epochs[self.ks.map.store(db) as usize];
        flushes.wrapping_add(self.swaps[db as usize] << 32)
    }

    /// FLUSHDB / FLUSHALL: empties memory now and the store once no save is in flight. Until
    /// then, keys of the cleared DBs read as absent, and saves wait (so no write made after the
    /// flush can be wiped by it). A failed clear of the store is retried with backoff until it
    /// succeeds: [`Event::ClearDone`] comes only once the store is empty, so the flush is never
    /// acknowledged, nor its memory state undone, while old data could come back after a crash.
    pub fn clear(&mut self, token: u64, db: Option<DbIndex>) {
        let db = db.map(|d| self.ks.map.store(d));
        self.ks.clear(db);
        self.sample.clear(db);
        // Queued loads of cleared keys are dropped; whoever waits for them is told the key is
        // ready, asks again, and gets "absent" from `ensure` (the DB is clearing).
        let hit = |d: DbIndex| db.is_none_or(|c| c == d);
        let mut woken = Vec::new();
        self.load_queue.retain(|(d, k)| {
            if hit(*d) {
                woken.push((*d, k.clone()));
                false
            } else {
                true
            }
        });
        self.loads
            .retain(|(d, _), f| *f == LoadFlag::InProgress || !hit(*d));
        for (db, key) in woken {
            self.pending_events.push(Event::KeyReady { db, key });
        }
        match db {
            Some(d) => self.epochs[d as usize] += 1,
            None => self.epochs.iter_mut().for_each(|e| *e += 1),
        }
        self.clears.push_back(PendingClear {
            token,
            db,
            dispatched: false,
            retry_at: None,
        });
        self.dispatch_clear();
    }

    fn dispatch_clear(&mut self) {
        if !self.saves_in_flight.is_empty() {
            return;
        }
        if let Some(c) = self.clears.front_mut() {
            if !c.dispatched && c.retry_at.is_none_or(|t| t <= Instant::now()) {
                c.dispatched = true;
                let db = c.db;
                let dbs = match db {
                    Some(d) => vec![d],
                    None => (0..self.cfg.databases as DbIndex).collect(),
                };
                // FLUSHALL empties the page namespace too; FLUSHDB leaves the pages of the
                // DB's paged values behind (unreachable: no manifest names them any more).
                let pages = db.is_none().then_some(self.cfg.databases as DbIndex);
                self.other_in_flight += 1;
                self.send(Job::Clear { db, dbs, pages });
            }
        }
    }

    /// Sends queued loads to the workers in batches (one `get_many` each): the queue is split
    /// evenly over the workers, up to `LOAD_BATCH` keys a job, so a pipeline or an MGET of cold
    /// keys costs a few batched reads rather than one job per key.
    fn dispatch_loads(&mut self) {
        // The share of each worker is taken from the whole queue once: taken again from what is
        // left after each batch, 100 keys went out as 25, 19, 14, … 1, 1, 1 (14 jobs queued on
        // 4 workers instead of 4 jobs in parallel).
        let per_worker = self.load_queue.len().div_ceil(self.cfg.io_threads.max(1));
        while self.loads_in_flight < self.cfg.max_inflight_loads && !self.load_queue.is_empty() {
            let room = self.cfg.max_inflight_loads - self.loads_in_flight;
            let size = per_worker.clamp(1, LOAD_BATCH).min(room);
            let mut batch: Vec<Vec<u8>> = Vec::with_capacity(size);
            let mut batch_db = None;
            while batch.len() < size {
                let Some((db, _)) = self.load_queue.front() else {
                    break;
                };
                if batch_db.is_some_and(|d| d != *db) {
                    break;
                }
                let (db, key) = self.load_queue.pop_front().expect("front exists");
                match self.loads.get_mut(&(db, key.clone())) {
                    Some(f @ LoadFlag::Queued) => *f = LoadFlag::InProgress,
                    _ => continue,
                }
                batch_db = Some(db);
                batch.push(key);
            }
            let Some(db) = batch_db else {
                continue;
            };
            self.loads_in_flight += batch.len();
            self.stats.load_batches += 1;
            self.send(Job::Load {
                db,
                keys: batch,
                epoch: self.epochs[db as usize],
                now_ms: now_ms(),
            });
        }
    }

    /// Sends due save groups to the workers, batched up to `max_batch_keys`.
    fn dispatch_saves(&mut self, now: Instant) {
        if !self.clears.is_empty() {
            return;
        }
        let max_jobs = self.cfg.io_threads.max(1);
        let open = self.ks.open_group();
        let force_bound = self.barriers.iter().map(|b| b.bound).max().unwrap_or(0);
        if self.parked.1 != self.saves_done {
            // A save finished since they were parked: they may be ready now.
            for id in self.parked.0.drain(..).rev() {
                self.ks.groups.queue.push_front(id);
            }
        }
        let mut deferred = Vec::new();
        let mut busy_groups = Vec::new();
        // Positions of a group's keys in their maps, found once for both passes below.
        let mut at: Vec<Option<usize>> = Vec::new();
        loop {
            // While saves are urgent, the worker that is not lowered takes what is due as soon
            // as it is free, whatever is in flight on the lowered ones (they may be getting
            // no CPU at all).
            let urgent = self.saves_urgent() && self.urgent_job.is_none();
            if !urgent && self.saves_in_flight.values().sum::<usize>() >= max_jobs {
                break;
            }
            // Group commit: while a save is in flight, what became due meanwhile waits for it
            // and goes out as one larger batch (one write + one sync), unless a full batch is
            // already due.
            if !urgent
                && !self.saves_in_flight.is_empty()
                && !self.full_batch_due_cached(now, force_bound, open)
            {
                break;
            }
            let mut groups = Vec::new();
            let mut items = Vec::new();
            let mut bytes = 0usize;
            while items.len() < self.cfg.max_batch_keys && bytes < self.cfg.max_batch_bytes {
                let Some(&id) = self.ks.groups.queue.front() else {
                    break;
                };
                if Some(id) == open {
                    // The running command (an EXEC) is still adding to it.
                    break;
                }
                let Some(g) = self.ks.groups.groups.get(id) else {
                    self.ks.groups.queue.pop_front();
                    continue;
                };
                let forced = self.pressure || id <= force_bound;
                // A group that failed waits for its backoff; others for the flush delay.
                match g.retry_at() {
                    Some(t) if t > now => {
                        deferred.push(self.ks.groups.queue.pop_front().expect("front"));
                        continue;
                    }
                    Some(_) => {}
                    None if !forced && g.since + self.cfg.flush_delay > now => break,
                    None => {}
                }
                at.clear();
                at.extend(
                    g.keys
                        .iter()
                        .map(|(d, k)| self.ks.dbs[*d as usize].get_index_of(k.as_slice())),
                );
                let busy = g
                    .keys
                    .iter()
                    .zip(&at)
                    .any(|((d, _), i)| i.is_some_and(|i| self.ks.dbs[*d as usize][i].saving));
                if busy {
                    busy_groups.push(self.ks.groups.queue.pop_front().expect("front"));
                    continue;
                }
                self.ks.groups.queue.pop_front();
                let g = self.ks.groups.take(id).expect("group exists");
                for ((d, k), i) in g.keys.into_iter().zip(&at) {
                    if let Some(e) = i.map(|i| &mut self.ks.dbs[d as usize][i]) {
                        // The entry says which group it is in; a repeated candidate was taken
                        // already (it is `saving` now).
                        if e.dirty && !e.saving && e.group == id {
                            e.saving = true;
                            e.group = 0;
                            bytes += k.len() + e.value.as_ref().map_or(0, |v| v.mem_size());
                            items.push(SaveItem {
                                db: d,
                                key: k,
                                version: e.version,
                                value: e.value.clone(),
                                expire_at: e.expire_at(),
                                on_disk: e.on_disk,
                                epoch: self.epochs[d as usize],
                            });
                        }
                    }
                }
                groups.push(id);
            }
            if groups.is_empty() {
                break;
            }
            let min = *groups.iter().min().expect("non-empty");
            *self.saves_in_flight.entry(min).or_insert(0) += 1;
            if items.is_empty() {
                // Every key of these groups was already clean (e.g. flushed); nothing to write.
                self.finish_save(min, Vec::new(), true, Ok(()));
                continue;
            }
            if urgent {
                self.urgent_job = Some(min);
            }
            self.send_save(Job::Save { groups, items }, urgent);
        }
        // Deferred groups go back in front, in their original order; busy ones are parked
        // until a save finishes (behind those parked before, which were in front of them).
        for id in deferred.into_iter().rev() {
            self.ks.groups.queue.push_front(id);
        }
        if !busy_groups.is_empty() {
            self.parked.0.extend(busy_groups);
            self.parked.1 = self.saves_done;
        }
    }

    /// [`Engine::full_batch_due`], looked at most once a millisecond: it walks up to a batch of
    /// groups, and dispatch is attempted on every event-loop pass.
    fn full_batch_due_cached(&mut self, now: Instant, force_bound: u64, open: Option<u64>) -> bool {
        if let Some((at, due)) = self.full_batch_checked {
            if now.duration_since(at) < Duration::from_millis(1) {
                return due;
            }
        }
        let due = self.full_batch_due(now, force_bound, open);
        self.full_batch_checked = Some((now, due));
        due
    }

    /// Whether the groups due now fill at least one batch (counted in keys).
    fn full_batch_due(&self, now: Instant, force_bound: u64, open: Option<u64>) -> bool {
        let mut keys = 0;
        for id in &self.ks.groups.queue {
            let Some(g) = self.ks.groups.groups.get(*id) else {
                continue;
            };
            let forced = self.pressure || *id <= force_bound;
            let due = match g.retry_at() {
                Some(t) => t <= now,
                None => forced || g.since + self.cfg.flush_delay <= now,
            };
            if !due || Some(*id) == open {
                return false;
            }
            keys += g.keys.len();
            if keys >= self.cfg.max_batch_keys {
                return true;
            }
        }
        false
    }

    /// Background sweep of expired keys on disk: scans a page of the store and probes the keys
    /// that are not in memory; expired ones are deleted like any tombstone. Runs only when no
    /// client load waits, a page at a time.
    fn sweep_expired(&mut self) {
        if self.sweep.2
            || !self.load_queue.is_empty()
            || !self.clears.is_empty()
            || self.ks.expiry_paused
        {
            return;
        }
        if self.loads_in_flight * 2 > self.cfg.max_inflight_loads {
            return;
        }
        self.sweep.2 = true;
        self.saved_during_sweep.clear();
        let (db, cursor) = (self.sweep.0, self.sweep.1.clone());
        self.sweep_epoch = self.epochs[db as usize];
        self.scan_ns(SWEEP_TOKEN, db, cursor, SWEEP_KEYS_PER_TICK, true, None);
    }

    fn sweep_page(&mut self, result: Result<KeyPage, StoreError>) {
        self.sweep.2 = false;
        let page = match result {
            Ok(p) => p,
            Err(e) => {
                log::warn!("expired-key sweep: scan failed: {e}");
                return;
            }
        };
        let db = self.sweep.0;
        if self.sweep_epoch != self.epochs[db as usize] || self.clearing(db) {
            // The page lists keys of a DB flushed since: probing them would read old data.
            self.sweep.1 = Vec::new();
            return;
        }
        // The worker read each record's header: an expired key becomes a dirty tombstone, and
        // its save deletes the record (a key in memory or loading is judged there instead).
        let found = page.expired.len();
        let saved = std::mem::take(&mut self.saved_during_sweep);
        for key in page.expired {
            if self.ks.dbs[db as usize].contains_key(key.as_slice())
                || self.loading(db, &key)
                || saved.contains(&(db, key.clone()))
            {
                continue;
            }
            self.stats.expired_on_load += 1;
            self.ks.stats.expired_keys += 1;
            self.ks.dbs[db as usize].insert(Key::from_slice(&key), Entry::tombstone(Some(true)));
            self.ks.count(db, (-1, 0));
            self.ks.mark_dirty(db, &key);
        }
        // Like Redis's active expiry: a page that was a quarter expired or more suggests more.
        self.sweep_again = found * 4 >= SWEEP_KEYS_PER_TICK;
        match page.next {
            Some(c) => self.sweep.1 = c,
            None => {
                self.sweep.0 = (db + 1) % self.cfg.databases as DbIndex;
                self.sweep.1 = Vec::new();
            }
        }
    }

    /// Asks for the next page of a filter's scan, one page in flight at a time, starting on the
    /// next DB whose filter waits for one (at open, every DB in turn; later, a filter that
    /// outgrew its size).
    fn build_filters(&mut self) {
        if self.filter_build.is_none() {
            let filters = &self.ks.diskkeys;
            let Some(db) = (0..self.cfg.databases as DbIndex).find(|&d| filters.needs_scan(d))
            else {
                return;
            };
            self.filter_build = Some(FilterBuild {
                db,
                cursor: Vec::new(),
                in_flight: false,
                epoch: 0,
                build: 0,
            });
        }
        let Some(b) = self.filter_build.as_mut() else {
            return;
        };
        if b.in_flight {
            return;
        }
        b.in_flight = true;
        b.epoch = self.epochs[b.db as usize];
        b.build = self.ks.diskkeys.build(b.db);
        let (db, cursor) = (b.db, b.cursor.clone());
        self.scan_ns(FILTER_TOKEN, db, cursor, FILTER_PAGE, false, None);
    }

    fn filter_page(&mut self, result: Result<KeyPage, StoreError>) {
        let Some(b) = self.filter_build.as_mut() else {
            return;
        };
        b.in_flight = false;
        let page = match result {
            Ok(p) => p,
            Err(e) => {
                // Retried from the same cursor on the next tick; meanwhile keys of this DB are
                // probed as before.
                log::warn!("filling the key filter of db {}: scan failed: {e}", b.db);
                return;
            }
        };
        let (db, build) = (b.db, b.build);
        let filters = &mut self.ks.diskkeys;
        // Flushed meanwhile (`clear` left an empty, ready filter) or replaced by a bigger one
        // (which needs every key again): this page counts for nothing.
        let stale = b.epoch != self.epochs[db as usize] || build != filters.build(db);
        if !stale {
            for k in &page.keys {
                filters.added(db, k);
                self.sample.offer(db, k);
            }
        }
        let done = match (stale, page.next) {
            (false, Some(c)) if filters.build(db) == build => {
                b.cursor = c;
                false
            }
            (false, None) if filters.build(db) == build => {
                filters.built(db, build);
                true
            }
            // Stale, or outgrown while this page was added: start over if it still needs it.
            _ => {
                b.cursor.clear();
                !filters.needs_scan(db)
            }
        };
        if done {
            self.filter_build = None;
            if !(0..self.cfg.databases as DbIndex).any(|d| self.ks.diskkeys.needs_scan(d)) {
                log::info!("key filters built ({} keys)", self.ks.diskkeys.len());
            }
        }
        self.build_filters();
    }

    /// Sends the loads asked for since the last `poll`/`tick` now. A caller that asks for keys
    /// while handling `poll`'s events (a client resumed by one key and parked on the next) calls
    /// this before it sleeps: otherwise those loads waited for the next wake-up, up to a
    /// whole cron period (pipelines of cold GETs: p99 50–70 ms instead of 5).
    pub fn send_queued_loads(&mut self) {
        self.dispatch_loads();
    }

    /// Periodic work: saves that became due, loads waiting for a slot, the expiry sweep.
    pub fn tick(&mut self) {
        if self.map_retry_at.is_some_and(|t| t <= Instant::now()) {
            self.map_retry_at = None;
            self.send_map_write();
        }
        self.build_filters();
        self.dispatch_clear();
        self.sweep_expired();
        self.dispatch_loads();
        self.dispatch_saves(Instant::now());
        self.check_barriers();
        self.ks.groups.shrink_idle();
    }

    /// Applies the memory limit, given the bytes in use now. Evicts clean keys; when that is not
    /// enough, every dirty key is saved at once. Returns `true` while memory is still over the
    /// limit (write commands that grow memory should then be refused).
    pub fn enforce_memory(&mut self, used: usize, maxmemory: usize) -> bool {
        if maxmemory == 0 || used <= maxmemory {
            self.pressure = false;
            return false;
        }
        let need = used - maxmemory;
        let mut freed = self.ks.evict(need, self.cfg.maxmemory_samples);
        if freed < need {
            // The negative cache is memory too, and cheaper to lose than a value.
            freed += self.ks.shrink_negcache(need - freed);
        }
        if freed < need {
            if !self.pressure {
                log::debug!("memory full of dirty data: saving all dirty keys now");
            }
            self.pressure = true;
            self.dispatch_saves(Instant::now());
            return true;
        }
        false
    }

    /// Drains worker completions and returns what parked work may continue.
    pub fn poll(&mut self) -> Vec<Event> {
        while let Ok(c) = self.done.try_recv() {
            match c {
                Completion::Load {
                    db,
                    key,
                    epoch,
                    result,
                } => self.finish_load(db, key, epoch, result),
                Completion::Save {
                    groups,
                    items,
                    applied,
                    bytes,
                    result,
                } => {
                    if result.is_ok() {
                        self.stats.bytes_saved += bytes;
                    }
                    let min = *groups.iter().min().expect("non-empty");
                    self.finish_save(min, items, applied, result);
                }
                Completion::Scan { id, result } if id == FILTER_TOKEN => {
                    self.other_in_flight -= 1;
                    self.filter_page(result);
                }
                Completion::Scan { id, result } if id == SWEEP_TOKEN => {
                    self.other_in_flight -= 1;
                    self.sweep_page(result);
                }
                Completion::Scan { id, result } => {
                    self.other_in_flight -= 1;
                    self.pending_events.push(Event::ScanDone {
                        token: id,
                        result: result.map_err(|e| e.to_string()),
                    });
                }
                Completion::Clear { result } => {
                    self.other_in_flight -= 1;
                    match result {
                        Ok(()) => {
                            self.clear_backoff = Duration::from_millis(100);
                            if let Some(c) = self.clears.pop_front() {
                                self.pending_events.push(Event::ClearDone {
                                    token: c.token,
                                    result: Ok(()),
                                });
                            }
                        }
                        Err(e) => {
                            // Memory is already cleared: the store must follow, or old data
                            // would come back. Retry; meanwhile point-in-time requests (SAVE,
                            // SHUTDOWN) fail instead of waiting forever.
                            self.stats.clear_errors += 1;
                            log::error!(
                                "clearing the store failed: {e}; retrying in {:?}",
                                self.clear_backoff
                            );
                            if let Some(c) = self.clears.front_mut() {
                                c.dispatched = false;
                                c.retry_at = Some(Instant::now() + self.clear_backoff);
                            }
                            self.clear_backoff =
                                (self.clear_backoff * 2).min(Duration::from_secs(10));
                            for b in &mut self.barriers {
                                b.failed = Some(format!("flushing the disk store failed: {e}"));
                            }
                        }
                    }
                    self.dispatch_clear();
                }
                Completion::MapWritten { result } => {
                    self.other_in_flight -= 1;
                    if let Err(e) = result {
                        // Later batches carry the map too; this retry covers an idle store.
                        // It stays counted in `map_writes` until it succeeds.
                        log::error!("writing the DB map (SWAPDB) failed: {e}; retrying");
                        self.stats.save_errors += 1;
                        self.stats.last_save_error = Some(e.to_string());
                        self.map_retry_at = Some(Instant::now() + self.backoff);
                        for b in &mut self.barriers {
                            b.failed = Some(format!("writing the DB map failed: {e}"));
                        }
                    } else {
                        self.map_writes.0 -= 1;
                    }
                }
            }
        }
        if self.sweep_again {
            self.sweep_again = false;
            self.sweep_expired();
        }
        self.dispatch_loads();
        self.dispatch_clear();
        self.dispatch_saves(Instant::now());
        self.check_barriers();
        let mut events = std::mem::take(&mut self.pending_events);
        if !self.ks.map.is_identity() {
            // Loads are of store namespaces; waiters know Redis DBs.
            for ev in &mut events {
                if let Event::KeyReady { db, .. } | Event::KeyFailed { db, .. } = ev {
                    *db = self.ks.map.logical(*db);
                }
            }
        }
        events
    }

    fn finish_load(
        &mut self,
        db: DbIndex,
        key: Vec<u8>,
        epoch: u64,
        result: Result<Loaded<V>, StoreError>,
    ) {
        self.loads_in_flight -= 1;
        let probe = self.loads.remove(&(db, key.clone())) == Some(LoadFlag::Probe);
        if probe && matches!(result, Ok(Loaded::Value(..)) | Ok(Loaded::Absent)) {
            return;
        }
        let map = &mut self.ks.dbs[db as usize];
        // A key written or deleted in memory while it loaded keeps its newer state; a load that
        // raced a FLUSHDB read data that no longer exists.
        if epoch != self.epochs[db as usize] || map.contains_key(key.as_slice()) {
            self.pending_events.push(Event::KeyReady { db, key });
            return;
        }
        match result {
            Ok(loaded) => self.install_loaded(db, &key, loaded),
            Err(e) => {
                self.stats.load_errors += 1;
                if matches!(e, StoreError::Corruption(_)) {
                    self.stats.corrupt_records += 1;
                }
                log::error!(
                    "loading key {:?} of db {db} failed: {e}",
                    String::from_utf8_lossy(&key[..key.len().min(64)])
                );
                let corrupt = matches!(e, StoreError::Corruption(_));
                self.pending_events.push(Event::KeyFailed {
                    db,
                    key,
                    error: e.to_string(),
                    corrupt,
                });
                return;
            }
        }
        self.pending_events.push(Event::KeyReady { db, key });
    }

    /// Puts what a load found into memory: the value (clean, on disk), a known absence, or a
    /// dirty tombstone for an expired record (its save deletes the record).
    fn install_loaded(&mut self, db: DbIndex, key: &[u8], loaded: Loaded<V>) {
        match loaded {
            Loaded::Value(v, expire_at) => {
                self.stats.disk_loads += 1;
                let lru = self.ks.tick_clock();
                let old = self.ks.dbs[db as usize].insert(
                    Key::from_slice(key),
                    // Just loaded means just wanted: not the first eviction victim.
                    Entry::new(Arc::new(v), expire_at, lru, Some(true)),
                );
                if old.is_none_or(|e| e.value.is_none()) {
                    self.ks.note_value(db, key, true);
                }
            }
            Loaded::Absent => {
                self.stats.disk_load_misses += 1;
                if self.ks.diskkeys.ready(db) {
                    self.ks.diskkeys.stats.false_positives += 1;
                }
                self.ks.negcache.insert(db, key.to_vec());
            }
            Loaded::Expired => {
                // Never served; a tombstone deletes it from disk with the next save.
                self.stats.expired_on_load += 1;
                self.ks.stats.expired_keys += 1;
                self.ks.dbs[db as usize].insert(Key::from_slice(key), Entry::tombstone(Some(true)));
                self.ks.count(db, (-1, 0));
                self.ks.mark_dirty(db, key);
            }
        }
    }

    /// A saved item is in the store (durable or not): counts and presence follow it, so a retry
    /// after a failed sync changes no count twice. `i` is the key's position in its map.
    fn note_stored(&mut self, it: &Saved, i: Option<usize>) {
        // Saved before a FLUSHDB/FLUSHALL that the store has yet to apply: the clear will
        // remove it, and memory already forgot it (a key written since is new).
        if it.epoch != self.epochs[it.db as usize] {
            return;
        }
        let c = &mut self.ks.counts[it.db as usize];
        c.stored = c
            .stored
            .map(|n| (n as i64 + i64::from(it.put) - i64::from(it.existed)).max(0) as u64);
        let Some(i) = i else { return };
        let e = &mut self.ks.dbs[it.db as usize][i];
        let before = e.count_share();
        // The store changed whatever the entry's version: keep the filter's invariant (see
        // diskkeys.rs).
        match (it.put, it.existed) {
            (true, true) | (false, false) => {}
            (true, false) => {
                self.ks.diskkeys.added(it.db, &it.key);
                self.sample.offer(it.db, &it.key);
            }
            (false, true) => self.ks.diskkeys.removed(it.db, &it.key),
        }
        e.on_disk = Some(it.put);
        let after = e.count_share();
        self.ks.uncount(it.db, before);
        self.ks.count(it.db, after);
    }

    fn finish_save(
        &mut self,
        min_group: u64,
        items: Vec<Saved>,
        applied: bool,
        result: Result<(), StoreError>,
    ) {
        self.saves_done += 1;
        if let Some(n) = self.saves_in_flight.get_mut(&min_group) {
            *n -= 1;
            if *n == 0 {
                self.saves_in_flight.remove(&min_group);
            }
        }
        if self.urgent_job == Some(min_group) {
            self.urgent_job = None;
        }
        if applied && self.sweep.2 {
            self.saved_during_sweep
                .extend(items.iter().map(|it| (it.db, it.key.clone())));
        }
        if let Ok(()) = &result {
            if !items.is_empty() {
                self.stats.out_of_space = false;
            }
            self.stats.save_batches += 1;
            self.stats.keys_saved += items.len() as u64;
            self.stats.last_save_ok_unix = now_ms() / 1000;
            self.backoff = Duration::from_millis(100);
            // One lookup per key for both what the store now holds and the entry's state.
            for it in items {
                let i = self.ks.dbs[it.db as usize].get_index_of(it.key.as_slice());
                if applied {
                    self.note_stored(&it, i);
                }
                let Saved {
                    db, key, version, ..
                } = it;
                if let Some(log) = self.saved_log.as_mut() {
                    log.push(SavedKey {
                        db,
                        key: key.clone(),
                        present: it.put,
                        expire_at: it.expire_at,
                    });
                }
                let Some(i) = i else { continue };
                let map = &mut self.ks.dbs[db as usize];
                let e = &mut map[i];
                e.saving = false;
                if e.version == version {
                    e.dirty = false;
                    self.ks.groups.cleaned();
                    if e.value.is_none() {
                        let share = e.count_share();
                        map.swap_remove_index(i);
                        self.ks.uncount(db, share);
                        self.ks.negcache.insert(db, key);
                    }
                }
            }
            return;
        }
        if applied {
            for it in &items {
                let i = self.ks.dbs[it.db as usize].get_index_of(it.key.as_slice());
                self.note_stored(it, i);
            }
        }
        let Err(err) = &result else { return };
        self.stats.save_errors += 1;
        self.stats.out_of_space = matches!(err, StoreError::NoSpace);
        self.stats.last_save_error = Some(err.to_string());
        log::error!(
            "saving {} keys failed: {err}; retrying in {:?}",
            items.len(),
            self.backoff
        );
        for b in &mut self.barriers {
            if b.bound >= min_group {
                b.failed = Some(err.to_string());
            }
        }
        // The keys stay dirty and go back into one group under the old (smallest) id,
        // merged with any newer group they joined meanwhile.
        let retry_at = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(Duration::from_secs(10));
        let mut keys = Vec::new();
        for Saved { db, key, .. } in items {
            let Some(e) = self.ks.dbs[db as usize].get_mut(key.as_slice()) else {
                continue;
            };
            e.saving = false;
            let newer = std::mem::replace(&mut e.group, min_group);
            if newer != 0 && newer != min_group {
                for (d, k) in self.ks.groups.merge_into_restored(newer) {
                    if let Some(e) = self.ks.dbs[d as usize].get_mut(k.as_slice()) {
                        e.group = min_group;
                    }
                    keys.push((d, k));
                }
            }
            keys.push((db, key));
        }
        if !keys.is_empty() {
            self.ks.groups.restore(min_group, keys, retry_at);
        }
    }

    fn check_barriers(&mut self) {
        if self.barriers.is_empty() {
            return;
        }
        let pending_min = [
            self.ks.groups.min_pending(),
            self.saves_in_flight.keys().next().copied(),
            (self.map_writes.0 > 0).then_some(self.map_writes.1),
        ]
        .into_iter()
        .flatten()
        .min();
        let events = &mut self.pending_events;
        self.barriers.retain_mut(|b| {
            let covered = pending_min.is_none_or(|m| m > b.bound);
            if covered || b.failed.is_some() {
                events.push(Event::BarrierDone {
                    token: b.token,
                    result: match b.failed.take() {
                        Some(e) => Err(e),
                        None => Ok(()),
                    },
                });
                false
            } else {
                true
            }
        });
    }

    /// How far the oldest pending save is behind its flush delay (zero when none is late).
    /// Saves that wait to retry after a failure are left out: their lateness is the backend's,
    /// shown by the save error counters, not work the saves could catch up on.
    pub fn save_lag(&self) -> Duration {
        let groups = &self.ks.groups;
        // The queue is in order of creation, and so are the groups parked behind a save in
        // flight (they left the queue's front); merged and saved groups leave stale ids, skipped
        // here (a bounded look: the next dispatch drops them).
        let oldest = |ids: &mut dyn Iterator<Item = &u64>| {
            ids.take(64)
                .filter_map(|id| groups.groups.get(*id))
                .find(|g| g.retry_at().is_none())
                .map(|g| g.since)
        };
        let since = [
            oldest(&mut self.parked.0.iter()),
            oldest(&mut groups.queue.iter()),
        ];
        since
            .into_iter()
            .flatten()
            .min()
            .map_or(Duration::ZERO, |t| {
                t.elapsed().saturating_sub(self.cfg.flush_delay)
            })
    }

    /// Sends a save to the urgent worker (see [`Engine::set_saves_urgent`]) or with the other
    /// writes.
    fn send_save(&mut self, job: Job<V>, urgent: bool) {
        match &self.urgent {
            Some(tx) if urgent => {
                self.stats.urgent_save_batches += 1;
                let _ = tx.send(job);
            }
            _ => self.send(job),
        }
    }

    /// Sends the saves dispatched from now on (`true`) to the one save worker that runs at the
    /// process's own CPU priority, instead of the lowered ones (see
    /// [`EngineConfig::background_nice`]). For saves that fell behind: on busy cores the
    /// lowered workers run only when the rest of the process waits, which keeps them from
    /// slowing clients but lets a backlog grow; the caller turns this on when it has (the
    /// server: at half of `cache-flush-max-lag`, or with memory full of dirty data) and off
    /// once it is worked down. Without lowered workers it changes nothing.
    pub fn set_saves_urgent(&mut self, on: bool) {
        self.saves_urgent = on;
    }

    /// Whether saves are sent to the urgent worker (see [`Engine::set_saves_urgent`]).
    pub fn saves_urgent(&self) -> bool {
        self.saves_urgent && self.urgent.is_some()
    }

    /// IO operations queued or running (for INFO).
    pub fn io_stats(&self) -> IoStats {
        IoStats {
            queued_loads: self.load_queue.len(),
            loads_in_flight: self.loads_in_flight,
            saves_in_flight: self.saves_in_flight.values().sum(),
            pending_groups: self.ks.groups.groups.len(),
            dirty_keys: self.ks.dirty_len(),
            oldest_dirty_age: self
                .ks
                .groups
                .groups
                .values()
                .map(|g| g.since.elapsed())
                .max()
                .unwrap_or_default(),
        }
    }

    /// Whether a save is in flight.
    pub fn saving(&self) -> bool {
        !self.saves_in_flight.is_empty()
    }

    /// Whether any IO is queued or running.
    pub fn busy(&self) -> bool {
        self.loads_in_flight > 0
            || !self.saves_in_flight.is_empty()
            || self.other_in_flight > 0
            || !self.ks.groups.groups.is_empty()
            || !self.clears.is_empty()
            || self.map_writes.0 > 0
    }

    /// Stops the workers after the jobs already sent. Call after a final barrier completed.
    pub fn shutdown(&mut self) {
        self.jobs = None;
        self.background = None;
        self.urgent = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl<V: CacheValue> Drop for Engine<V> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A snapshot of the IO scheduler's queues, from [`Engine::io_stats`] (INFO `# Diskstore`).
#[derive(Debug, Clone, Default)]
pub struct IoStats {
    /// Loads asked for but not yet sent to a worker.
    pub queued_loads: usize,
    /// Keys being read by workers (expiry-sweep probes included).
    pub loads_in_flight: usize,
    /// Save jobs (batches) being written by workers.
    pub saves_in_flight: usize,
    /// Save groups waiting to be saved (including ones waiting to retry after a failure).
    pub pending_groups: usize,
    /// Dirty keys across all DBs (changes not yet durable).
    pub dirty_keys: usize,
    /// Age of the oldest pending save group (one put back after a failed save counts from the
    /// failure); zero when there is none.
    pub oldest_dirty_age: Duration,
}

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
