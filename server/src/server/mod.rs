//! The owner thread: mio event loop, command dispatch, parking of clients whose keys are on
//! disk, transactions, barriers and periodic work. The keyspace is touched only here.

use crate::client::ClientState;
use crate::commands::{self, flags, Action, BarrierThen, CmdError, CommandSpec, Ctx};
use crate::conn::{Conn, Wait};
use crate::shared::Shared;
use crate::value::Value;
use kvtier_core::{Engine, Event, Residency};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use rustc_hash::FxHashMap;
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod blocking;
mod dispatch;
mod event_loop;
mod fanout;
mod input;
mod io_events;
mod memory;
mod output;
mod residency;
mod transaction;
mod watch;

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const SIGNALS: Token = Token(2);
const FIRST_CLIENT: usize = 3;
/// Most unparsed input held per client before its commands run: a large pipeline is read and
/// executed in slices, so flow control (and the memory limit) sees each slice.
const INPUT_SLICE: usize = 256 * 1024;
/// Commands buffered behind a parked one whose keys are loaded ahead (prefetch).
const PREFETCH_COMMANDS: usize = 128;
/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 16 * 1024;

/// The reply to a write while the disk store is full (Redis answers MISCONF when it cannot
/// persist): reads go on, writes resume once a save succeeds again.
const MISCONF_NO_SPACE: &str = "MISCONF kvtier's disk store is full (no space left on device): commands that may modify the data set are disabled until a save succeeds again; reads are served. Please check the server log.";

use crate::shared::apply_config;

/// Whether a WATCHed key holds a live value, for the changes Redis judges by existence (FLUSH,
/// SWAPDB). Looked at without reclaiming an expired value; a key only on disk counts as existing.
fn watched_key_exists(
    engine: &mut kvtier_core::Engine<crate::value::Value>,
    db: u32,
    key: &[u8],
    now: i64,
) -> bool {
    match engine.residency(db, key) {
        Residency::Resident => engine.db(db, now).is_live(key),
        Residency::KnownAbsent => false,
        Residency::Unknown => true,
    }
}

/// The memory limit is applied at least this often near it (each time reads jemalloc's
/// statistics, which merges every arena's: 7% of the owner thread at -P 16 when taken every
/// millisecond), and sooner once the owner thread has allocated `memory_slack` bytes.
const MEMORY_CHECK_EVERY: Duration = Duration::from_millis(5);
/// Least allocation that brings a memory check forward (see `memory_slack` in `enforce_memory`).
const MEMORY_SLACK_MIN: u64 = 64 << 10;
/// ... and this often while memory is far from it (more than `maxmemory / 4` below, or no
/// limit): the reading merges every arena's statistics, 9% of the CPU at -c 1 when taken every
/// millisecond.
const MEMORY_CHECK_RELAXED: Duration = Duration::from_millis(10);
/// Writers held by flow control that are let go per event-loop pass once memory is back under
/// the limit (see `release_mem_waiters`).
const MEM_RELEASE_PER_PASS: usize = 8;
/// sled: how often the cache's own size is estimated (see `enforce_memory`), and from how
/// many sampled entries per DB.
const CACHE_ESTIMATE_EVERY: Duration = Duration::from_millis(100);
const CACHE_ESTIMATE_SAMPLES: usize = 32;

pub struct Server {
    poll: Poll,
    listener: TcpListener,
    signals: signal_hook_mio::v1_0::Signals,
    pub(crate) engine: Engine<Value>,
    pub(crate) shared: Shared,
    /// (Fx-hashed: tokens are ours, and this map is looked up many times per command.)
    pub(crate) conns: FxHashMap<usize, Conn>,
    next_token: usize,
    next_client_id: u64,
    /// Clients parked on a key: (db, key) → tokens.
    parked: HashMap<(u32, Vec<u8>), Vec<usize>>,
    /// Barrier / clear token → (client token or None for a signal, what to do).
    io_waiters: FxHashMap<u64, (Option<usize>, IoThen)>,
    pub(crate) to_flush: Vec<usize>,
    /// Client id → connection token (pub/sub delivery, CLIENT KILL).
    pub(crate) ids: FxHashMap<u64, usize>,
    /// Clients whose write waits for memory to be freed by saves and eviction.
    mem_waiters: Vec<usize>,
    /// After a SWAPDB: clients to run again and blocked keys to look at, once the command (or
    /// the whole EXEC) that swapped is done.
    after_swap: (Vec<usize>, Vec<(u32, Vec<u8>)>),
    /// SHUTDOWN or SIGTERM is waiting for its final barrier: no command runs meanwhile, so no
    /// write is acknowledged that the barrier does not cover.
    shutting_down: bool,
    /// Clients with input left in their socket (reading stopped at `INPUT_SLICE`).
    more_input: Vec<usize>,
    /// The buffer every socket read goes through (see `on_readable`).
    read_buf: Vec<u8>,
    /// Heap in use once the server was up, before any client: excluded from `maxmemory`.
    startup_memory: usize,
    /// When the memory limit was last applied (see `MEMORY_CHECK_EVERY`).
    memory_checked_at: Instant,
    /// The owner thread's allocation counter then ([`memory::thread_allocated`]).
    memory_checked_alloc: u64,
    /// Allocation by the owner thread that brings the next check forward.
    memory_slack: u64,
    /// A monotonic instant and the wall-clock milliseconds at it, re-taken every cron pass:
    /// a command's wall-clock time is derived from the instant it starts, so it costs one
    /// clock read instead of two (clock reads were 8% of the owner thread at -P 16 on this VM).
    clock_base: (Instant, Duration),
    /// The wall-clock milliseconds of the command being executed (see `clock_base`).
    command_ms: i64,
    /// The instant the last command ended, while the loop is running one client's pipelined
    /// commands back to back: the next command starts there, so a command costs one clock
    /// read, not two (a start and an end read were 7% of the owner thread at -P 16). Cleared
    /// whenever anything else may run before the next command (a read, a sleep, a barrier).
    pub(crate) clock_mark: Option<Instant>,
    /// Set while `process_input` runs a client's commands (when `clock_mark` may be kept).
    chain_clock: bool,
    /// When the loop's current pass began (after its wait for events): a client's last
    /// interaction is stamped with it, not with a clock read per socket read.
    pass_now: Instant,
    /// Time until the next check: `MEMORY_CHECK_EVERY` near the limit, else relaxed.
    memory_check_gap: Duration,
    /// sled only: the cache's own size estimate, jemalloc's total when it was taken, and when.
    cache_anchor: Option<(Instant, usize, usize)>,
    warned_not_cache: bool,
    exit: bool,
    /// Lua scripts and functions (scripting/).
    pub(crate) scripting: crate::scripting::Scripting,
    /// Client-side caching tables (tracking.rs).
    pub(crate) tracking: crate::tracking::Table,
}

enum IoThen {
    Barrier(BarrierThen),
    /// A plain FLUSHDB/FLUSHALL: reply +OK when done.
    Clear,
    /// A flush inside EXEC: release the held EXEC reply once the last one is done.
    ExecClear,
    /// A keyspace-wide command reading the store page by page.
    KeyScan(crate::keyscan::KeyScan),
}

/// An instant and the wall-clock time since the Unix epoch at it (see `Server::clock_base`).
///
/// The wall clock is read after the instant, so time derived from the pair is never behind the
/// wall clock (an expiry set at a client's "now + 10 s" never reads back above 10,000 ms); it is
/// ahead by the gap between the two reads, which is kept under 100 µs by reading again when the
/// thread was descheduled between them (reading the wall clock first let a preemption there put
/// every command's clock behind until the next cron pass).
pub(super) fn wall_clock_base() -> (Instant, Duration) {
    let read = || {
        let at = Instant::now();
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        (at, wall, at.elapsed())
    };
    let mut best = read();
    for _ in 0..3 {
        if best.2 < Duration::from_micros(100) {
            break;
        }
        let next = read();
        if next.2 < best.2 {
            best = next;
        }
    }
    (best.0, best.1)
}

impl Server {
    /// Wall-clock milliseconds at `at`, from the base taken at the last cron pass (a wall
    /// clock step shows within one cron period).
    fn wall_ms(&self, at: Instant) -> i64 {
        // Summed exactly, then truncated once: two truncated parts came out a millisecond
        // behind the wall clock (a PTTL one above what was set, in Redis's own suite).
        let (base_at, base_wall) = self.clock_base;
        (base_wall + at.saturating_duration_since(base_at)).as_millis() as i64
    }

    pub fn new(
        listener: TcpListener,
        engine_for: impl FnOnce(Arc<Waker>) -> Engine<Value>,
        shared: Shared,
    ) -> std::io::Result<Self> {
        let poll = Poll::new()?;
        let mut listener = listener;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let mut signals = signal_hook_mio::v1_0::Signals::new([
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGINT,
        ])?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        let mut engine = engine_for(waker);
        let mut shared = shared;
        apply_config(&mut engine, &mut shared);
        Ok(Server {
            poll,
            listener,
            signals,
            engine,
            shared,
            conns: FxHashMap::default(),
            next_token: FIRST_CLIENT,
            next_client_id: 1,
            parked: HashMap::new(),
            io_waiters: FxHashMap::default(),
            to_flush: Vec::new(),
            ids: FxHashMap::default(),
            mem_waiters: Vec::new(),
            after_swap: Default::default(),
            shutting_down: false,
            more_input: Vec::new(),
            read_buf: vec![0; READ_CHUNK],
            startup_memory: memory::heap().0,
            memory_checked_at: Instant::now(),
            memory_checked_alloc: 0,
            memory_slack: MEMORY_SLACK_MIN,
            clock_base: wall_clock_base(),
            command_ms: 0,
            clock_mark: None,
            chain_clock: false,
            pass_now: Instant::now(),
            memory_check_gap: MEMORY_CHECK_EVERY,
            cache_anchor: None,
            warned_not_cache: false,
            exit: false,
            scripting: crate::scripting::Scripting::new(),
            tracking: Default::default(),
        })
    }
}
