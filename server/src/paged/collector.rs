//! The store-wide collector of unreachable pages.
//!
//! Pages normally go with their value: a command that deletes or replaces a paged value hands
//! its manifest to [`Gc`], which deletes the pages in the background. Some pages become
//! unreachable without passing there:
//! - a blind SET (or another whole-value write) over a paged value that was never loaded: the
//!   old manifest is never read, so nobody knows its pages;
//! - FLUSHDB: the DB's manifests go, but pages live in one namespace shared by every DB (FLUSHALL
//!   clears that namespace, FLUSHDB cannot);
//! - a deletion cut short by a crash or a kill: [`Gc`]'s queue lived in memory.
//!
//! This collector finds them by mark and sweep: it marks the generation of every manifest, then
//! scans the page namespace and queues for deletion every page whose generation is unmarked. It
//! runs in the background, one scan page at a time, at startup (when any page exists) and after
//! a FLUSHDB, while commands keep running; the sweep must never take a live value's page.
//!
//! **Why a live page is never swept.** Take a manifest alive at the sweep, with generation `g`.
//! - `g` was drawn after the run began: every generation drawn meanwhile is kept (`born`).
//! - The manifest was in memory when the run began: every resident manifest is marked then.
//! - Otherwise it was only in the store. If no command touched its key since, the mark scan
//!   found it where it was. If a command did (a RENAME, a MOVE, a write), the command left it
//!   under one of its keys, and every manifest under a key of every command run since the run
//!   began is marked after the command ([`note_command`]).
//!
//! A FLUSHDB, FLUSHALL or SWAPDB during the run changes what the scan's DB indexes show, so the
//! run is abandoned and starts again; so is one whose scan or manifest read fails.

use super::{gen_of, Gc};
use crate::commands::{CommandSpec, Ctx};
use crate::value::Value;
use kvtier_core::{DbIndex, Engine, KeyPage};
use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Store keys per page of the mark scan (each paged one costs a manifest read).
const MARK_PAGE: usize = 512;
/// Page keys per page of the sweep.
const SWEEP_PAGE: usize = 4096;
/// How long an abandoned run waits before it starts again, doubled after every failure in a
/// row up to [`MAX_RETRY_AFTER`] (a damaged manifest fails every run: each is a full scan).
const RETRY_AFTER: Duration = Duration::from_secs(5);
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// Generations drawn since the current run began (`None` between runs): see the module
/// documentation. Kept apart from [`Collector`] because generations are drawn by
/// [`super::new_gen`], deep inside commands that see no collector.
static BORN: Mutex<Option<FxHashSet<u64>>> = Mutex::new(None);

fn born() -> std::sync::MutexGuard<'static, Option<FxHashSet<u64>>> {
    BORN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Called by [`super::new_gen`] for every generation it draws.
pub(super) fn note_born(gen: u64) {
    if let Some(b) = born().as_mut() {
        b.insert(gen);
    }
}

#[derive(Debug, Default)]
enum Phase {
    /// Nothing to do until asked.
    #[default]
    Idle,
    /// Is there any page at all? (Most stores have none: then nothing else is read.)
    Probe,
    /// Marking the generations of the manifests of `db`, from `cursor`.
    Mark { db: DbIndex, cursor: Vec<u8> },
    /// Sweeping the page namespace from `cursor`.
    Sweep { cursor: Vec<u8> },
}

/// The collector's state (see the module documentation); one per server.
#[derive(Debug, Default)]
pub struct Collector {
    phase: Phase,
    /// A run is wanted (at startup, after a FLUSHDB, after a failed run).
    requested: bool,
    /// Not before this instant (after a failure).
    not_before: Option<Instant>,
    /// The wait after the next failure.
    backoff: Duration,
    /// The scan page in flight, by token.
    in_flight: Option<u64>,
    /// Generations of live manifests found so far in this run.
    marked: FxHashSet<u64>,
    /// Generations this run found unreachable (their pages span several sweep pages).
    swept: FxHashSet<u64>,
    /// Every DB's epoch (flushes and swaps) when the run began.
    epochs: Vec<u64>,
    /// Runs completed (INFO `page_collector_runs`).
    pub runs: u64,
    /// Unreachable pages found and queued for deletion (INFO `orphan_pages_found`).
    pub found: u64,
}

impl Collector {
    /// A collector that runs once as soon as the server ticks (startup).
    pub fn new() -> Self {
        Collector {
            requested: true,
            ..Collector::default()
        }
    }

    /// Asks for a run (after a FLUSHDB). One in progress is abandoned: the flush changed what
    /// it scanned.
    pub fn request(&mut self) {
        self.requested = true;
    }

    /// What the collector is doing (INFO `page_collector_phase`).
    pub fn phase_name(&self) -> &'static str {
        match self.phase {
            Phase::Idle => "idle",
            Phase::Probe => "probe",
            Phase::Mark { .. } => "mark",
            Phase::Sweep { .. } => "sweep",
        }
    }

    /// Whether a run is marking or sweeping (commands then report their keys' manifests).
    pub fn active(&self) -> bool {
        matches!(self.phase, Phase::Mark { .. } | Phase::Sweep { .. })
    }

    /// Whether `token` is this collector's scan.
    pub fn owns(&self, token: u64) -> bool {
        self.in_flight == Some(token)
    }

    /// Whether [`Collector::tick`] would ask for a scan page now.
    pub fn wants_scan(&self) -> bool {
        self.in_flight.is_none()
            && self.not_before.is_none_or(|t| Instant::now() >= t)
            && (self.requested || !matches!(self.phase, Phase::Idle))
    }

    /// Asks for the next scan page under the fresh scan `token`, or starts a run.
    pub fn tick(&mut self, engine: &mut Engine<Value>, token: u64) {
        if !self.wants_scan() {
            return;
        }
        if matches!(self.phase, Phase::Idle) {
            if !self.requested {
                return;
            }
            self.requested = false;
            self.phase = Phase::Probe;
        } else if self.requested {
            // A flush came during the run: start again.
            self.abandon("a flush changed the keyspace");
            return;
        }
        let t = token;
        let (db, cursor, limit, typed) = match &self.phase {
            Phase::Probe => (engine.pages_db(), Vec::new(), 1, false),
            Phase::Mark { db, cursor } => (*db, cursor.clone(), MARK_PAGE, true),
            Phase::Sweep { cursor } => (engine.pages_db(), cursor.clone(), SWEEP_PAGE, false),
            Phase::Idle => return,
        };
        self.in_flight = Some(t);
        engine.scan(t, db, cursor, limit, typed);
    }

    /// A scan page of this collector arrived.
    pub fn page(
        &mut self,
        engine: &mut Engine<Value>,
        gc: &mut Gc,
        result: Result<KeyPage, String>,
    ) {
        self.in_flight = None;
        let page = match result {
            Ok(p) => p,
            Err(e) => return self.abandon(&format!("scan failed: {e}")),
        };
        if self.active() && self.epochs_changed(engine) {
            return self.abandon("a flush or SWAPDB changed the keyspace");
        }
        match std::mem::take(&mut self.phase) {
            Phase::Idle => {}
            Phase::Probe if page.keys.is_empty() => self.finish(),
            Phase::Probe => self.begin(engine),
            Phase::Mark { db, .. } => {
                if let Err(e) = self.mark_page(engine, db, &page) {
                    return self.abandon(&format!("reading a manifest failed: {e}"));
                }
                self.phase = match page.next {
                    Some(cursor) => Phase::Mark { db, cursor },
                    None if (db as usize) + 1 < engine.databases() => Phase::Mark {
                        db: db + 1,
                        cursor: Vec::new(),
                    },
                    None => Phase::Sweep { cursor: Vec::new() },
                };
            }
            Phase::Sweep { .. } => {
                self.sweep_page(engine, gc, &page);
                match page.next {
                    Some(cursor) => self.phase = Phase::Sweep { cursor },
                    None => {
                        log::info!(
                            "page collector: done; {} unreachable pages found so far",
                            self.found
                        );
                        self.finish();
                    }
                }
            }
        }
    }

    /// Marks what is resident now and starts keeping drawn generations.
    fn begin(&mut self, engine: &mut Engine<Value>) {
        *born() = Some(FxHashSet::default());
        self.marked.clear();
        let now = kvtier_core::engine::now_ms();
        for db in 0..engine.databases() as DbIndex {
            let keys: Vec<Vec<u8>> = engine
                .db(db, now)
                .resident_keys()
                .map(<[u8]>::to_vec)
                .collect();
            for k in keys {
                if let Some(g) = engine.peek(db, &k).and_then(gen_of) {
                    self.marked.insert(g);
                }
            }
        }
        self.epochs = Self::epochs(engine);
        self.phase = Phase::Mark {
            db: 0,
            cursor: Vec::new(),
        };
    }

    /// Marks the manifests among a page of `db`'s store keys (judged by their record types).
    fn mark_page(
        &mut self,
        engine: &mut Engine<Value>,
        db: DbIndex,
        page: &KeyPage,
    ) -> Result<(), kvtier_core::StoreError> {
        for (i, (k, &tag)) in page.keys.iter().zip(&page.types).enumerate() {
            if !crate::value::is_paged_tag(tag) {
                continue;
            }
            // Memory is newer than the store: a resident value is the one that counts (the
            // store's older manifest, if replaced, had its pages queued by the replacement).
            if let Some(v) = engine.peek(db, k) {
                self.marked.extend(gen_of(v));
                continue;
            }
            if engine.deleted_in_memory(db, k) {
                continue;
            }
            // The generation from the start of the record the scan read: no manifest read on
            // the event loop (a store of many paged values made the startup run a long series
            // of synchronous reads). A head that does not have it is read whole.
            let head = page.payload_heads.get(i).map_or(&[][..], Vec::as_slice);
            if let Some(g) = crate::value::paged_gen_of_head(tag, head) {
                self.marked.insert(g);
                continue;
            }
            engine.load_now(db, k)?;
            if let Some(g) = engine.peek(db, k).and_then(gen_of) {
                self.marked.insert(g);
            }
        }
        Ok(())
    }

    /// Queues the pages of a sweep page whose generation is neither marked nor drawn since the
    /// run began nor already being deleted.
    fn sweep_page(&mut self, engine: &Engine<Value>, gc: &mut Gc, page: &KeyPage) {
        let queued = gc.queued_gens();
        let pages = engine.pages_db();
        let born = born();
        let mut orphans: FxHashMap<u64, Vec<u32>> = FxHashMap::default();
        for k in &page.keys {
            let Some((g, id)) = super::parse_page_key(k) else {
                continue;
            };
            // A long manifest's part records are in its generation's parts group
            // (`parts::parts_group`, an involution): they live while the value does.
            let live = [g, super::parts::parts_group(g)]
                .iter()
                .any(|g| self.marked.contains(g) || born.as_ref().is_some_and(|b| b.contains(g)));
            // A page whose delete waits in memory is already on its way out (its value's
            // deletion left the queue as it was handed to the cache).
            let deleting = !self.swept.contains(&g) && queued.contains(&g);
            if !live && !deleting && !engine.deleted_in_memory(pages, k) {
                orphans.entry(g).or_default().push(id);
            }
        }
        drop(born);
        for (g, ids) in orphans {
            self.swept.insert(g);
            self.found += ids.len() as u64;
            gc.push(g, ids);
        }
    }

    fn finish(&mut self) {
        self.phase = Phase::Idle;
        self.end_run();
        self.runs += 1;
        self.backoff = RETRY_AFTER;
    }

    fn abandon(&mut self, why: &str) {
        let wait = self.backoff.max(RETRY_AFTER);
        log::warn!(
            "page collector: run abandoned ({why}); it starts again in {}s",
            wait.as_secs()
        );
        self.phase = Phase::Idle;
        self.end_run();
        self.requested = true;
        self.not_before = Some(Instant::now() + wait);
        self.backoff = (wait * 2).min(MAX_RETRY_AFTER);
    }

    fn end_run(&mut self) {
        *born() = None;
        self.marked = FxHashSet::default();
        self.swept = FxHashSet::default();
        self.epochs.clear();
        self.in_flight = None;
    }

    fn epochs(engine: &Engine<Value>) -> Vec<u64> {
        (0..engine.databases() as DbIndex)
            .map(|db| engine.db_epoch(db))
            .collect()
    }

    fn epochs_changed(&self, engine: &Engine<Value>) -> bool {
        Self::epochs(engine) != self.epochs
    }

    /// Marks the manifests under `keys` in every DB (see [`note_command`]).
    fn note_keys<'a>(&mut self, engine: &Engine<Value>, keys: impl Iterator<Item = &'a [u8]>) {
        for k in keys {
            for db in 0..engine.databases() as DbIndex {
                if let Some(g) = engine.peek(db, k).and_then(gen_of) {
                    self.marked.insert(g);
                }
            }
        }
    }
}

/// After every command while a run is active: the manifests it left under its keys are live,
/// wherever the mark scan already was (a RENAME may move a manifest behind the scan).
pub fn note_command(ctx: &mut Ctx, spec: &CommandSpec, args: &[Vec<u8>]) {
    if ctx.shared.page_collector.active() {
        let keys = spec.key_args(args);
        ctx.shared
            .page_collector
            .note_keys(ctx.engine, keys.into_iter());
    }
}
