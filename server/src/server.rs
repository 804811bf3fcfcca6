//! The owner thread: mio event loop, command dispatch, parking of clients whose keys are on
//! disk, transactions, barriers and periodic work. The keyspace is touched only here.

use crate::client::ClientState;
use crate::commands::{self, flags, Action, BarrierThen, CommandSpec, Ctx};
use crate::conn::Conn;
use crate::shared::Shared;
use crate::value::Value;
use kvtier_core::{Engine, Event, Residency};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const SIGNALS: Token = Token(2);
const FIRST_CLIENT: usize = 3;
/// Most unparsed input held per client before its commands run: a large pipeline is read and
/// executed in slices, so flow control (and the memory limit) sees each slice.
const INPUT_SLICE: usize = 256 * 1024;
/// Commands buffered behind a parked one whose keys are loaded ahead (prefetch).
const PREFETCH_COMMANDS: usize = 128;

/// Applies settings that can change at runtime to the engine.
/// The reply to a write while the disk store is full (Redis answers MISCONF when it cannot
/// persist): reads go on, writes resume once a save succeeds again.
const MISCONF_NO_SPACE: &str = "MISCONF kvtier's disk store is full (no space left on device): commands that may modify the data set are disabled until a save succeeds again; reads are served. Please check the server log.";

pub fn apply_config(engine: &mut Engine<Value>, shared: &mut Shared) {
    shared.acl.sync_requirepass(&shared.config);
    let c = &shared.config;
    engine.set_flush_delay(Duration::from_secs(c.get_u64("cache-flush-delay")));
    engine.set_maxmemory_samples(c.get_u64("maxmemory-samples") as usize);
    // Saves in flight hold serialized copies of their values: keep a batch small next to the
    // cache so they cannot blow the memory limit.
    let maxmemory = c.get_u64("maxmemory") as usize;
    engine.set_max_batch_bytes(if maxmemory == 0 {
        8 << 20
    } else {
        (maxmemory / 16).clamp(64 << 10, 8 << 20)
    });
    engine
        .ks
        .negcache
        .set_capacity(c.get_u64("negcache-max-entries") as usize);
}

/// Whether a WATCHed key holds a live value, for the changes Redis judges by existence (FLUSH,
/// SWAPDB). Looked at without reclaiming an expired value; a key only on disk counts as existing.
fn watched_key_exists(
    ks: &mut kvtier_core::Keyspace<crate::value::Value>,
    db: u32,
    key: &[u8],
    now: i64,
) -> bool {
    match ks.residency(db, key) {
        Residency::Resident => ks.db(db, now).is_live(key),
        Residency::KnownAbsent => false,
        Residency::Unknown => true,
    }
}

/// The memory limit is applied at most this often (each time reads jemalloc's statistics).
const MEMORY_CHECK_EVERY: Duration = Duration::from_millis(1);
/// Writers held by flow control that are let go per event-loop pass once memory is back under
/// the limit (see `release_mem_waiters`).
const MEM_RELEASE_PER_PASS: usize = 8;
/// sled: how often the cache's own size is estimated (see `enforce_memory`), and from how
/// many sampled entries per DB.
const CACHE_ESTIMATE_EVERY: Duration = Duration::from_millis(100);
const CACHE_ESTIMATE_SAMPLES: usize = 32;

/// Current heap bytes as jemalloc counts them.
fn allocated() -> usize {
    let _ = tikv_jemalloc_ctl::epoch::advance();
    tikv_jemalloc_ctl::stats::allocated::read().unwrap_or(0)
}

pub struct Server {
    poll: Poll,
    listener: TcpListener,
    signals: signal_hook_mio::v1_0::Signals,
    pub(crate) engine: Engine<Value>,
    pub(crate) shared: Shared,
    pub(crate) conns: HashMap<usize, Conn>,
    next_token: usize,
    next_client_id: u64,
    /// Clients parked on a key: (db, key) → tokens.
    parked: HashMap<(u32, Vec<u8>), Vec<usize>>,
    /// Barrier / clear token → (client token or None for a signal, what to do).
    io_waiters: HashMap<u64, (Option<usize>, IoThen)>,
    pub(crate) to_flush: Vec<usize>,
    /// Client id → connection token (pub/sub delivery, CLIENT KILL).
    pub(crate) ids: HashMap<u64, usize>,
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
    /// Heap in use once the server was up, before any client: excluded from `maxmemory`.
    startup_memory: usize,
    /// When the memory limit was last applied (see `MEMORY_CHECK_EVERY`).
    memory_checked_at: Instant,
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

impl Server {
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
            conns: HashMap::new(),
            next_token: FIRST_CLIENT,
            next_client_id: 1,
            parked: HashMap::new(),
            io_waiters: HashMap::new(),
            to_flush: Vec::new(),
            ids: HashMap::new(),
            mem_waiters: Vec::new(),
            after_swap: Default::default(),
            shutting_down: false,
            more_input: Vec::new(),
            startup_memory: allocated(),
            memory_checked_at: Instant::now(),
            cache_anchor: None,
            warned_not_cache: false,
            exit: false,
            scripting: crate::scripting::Scripting::new(),
            tracking: Default::default(),
        })
    }

    /// Runs until SHUTDOWN or a signal, after everything dirty reached disk.
    pub fn run(&mut self) -> std::io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut last_cron = Instant::now();
        while !self.exit {
            let hz = self.shared.config.get_u64("hz").max(1);
            let period = Duration::from_millis(1000 / hz);
            let mut timeout = period.saturating_sub(last_cron.elapsed());
            if self.input_ready() {
                timeout = Duration::ZERO;
            } else if !self.mem_waiters.is_empty() && !self.shared.mem_delay {
                // Writers are being let go a few per pass (`release_mem_waiters`).
                timeout = timeout.min(MEMORY_CHECK_EVERY);
            }
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept(),
                    WAKER => {}
                    SIGNALS => self.on_signal(),
                    Token(t) => {
                        if ev.is_readable() || ev.is_read_closed() {
                            self.on_readable(t);
                        }
                        if ev.is_writable() {
                            self.to_flush.push(t);
                        }
                    }
                }
            }
            self.on_io_events();
            self.tracking_tick();
            self.read_more();
            if last_cron.elapsed() >= period {
                self.cron();
                self.tracking_tick();
                self.tracking_cron();
                last_cron = Instant::now();
            }
            self.enforce_memory();
            self.tracking_broadcast();
            self.flush_all();
        }
        self.engine.shutdown();
        Ok(())
    }

    fn on_signal(&mut self) {
        for sig in self.signals.pending() {
            log::warn!("received signal {sig}, scheduling shutdown");
            self.shutting_down = true;
            let token = self.shared.token();
            self.engine.barrier(token);
            self.io_waiters
                .insert(token, (None, IoThen::Barrier(BarrierThen::Shutdown)));
        }
    }

    pub(crate) fn accept(&mut self) {
        loop {
            let (mut sock, addr) = match self.listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::warn!("accept failed: {e}");
                    return;
                }
            };
            let maxclients = self.shared.config.get_u64("maxclients") as usize;
            if self.conns.len() >= maxclients {
                let _ = sock.write(b"-ERR max number of clients reached\r\n");
                self.shared.rejected_connections += 1;
                continue;
            }
            let _ = sock.set_nodelay(true);
            let token = self.next_token;
            self.next_token += 1;
            if let Err(e) =
                self.poll
                    .registry()
                    .register(&mut sock, Token(token), Interest::READABLE)
            {
                log::warn!("register failed: {e}");
                continue;
            }
            if crate::acl::protected::refuses(&self.shared, &addr) {
                let _ = sock.write(crate::acl::protected::DENIED.as_bytes());
                continue;
            }
            let laddr = sock.local_addr().map(|a| a.to_string()).unwrap_or_default();
            let authed = self.shared.acl.default_nopass();
            let id = self.next_client_id;
            self.next_client_id += 1;
            let state = ClientState::new(id, addr.to_string(), laddr, authed);
            self.ids.insert(id, token);
            self.conns.insert(token, Conn::new(sock, state));
            self.shared.total_connections += 1;
            self.shared.connected_clients = self.conns.len();
        }
    }

    fn on_readable(&mut self, t: usize) {
        let limit = self.shared.config.get_u64("client-query-buffer-limit") as usize;
        self.more_input.retain(|&x| x != t);
        let mut closed = false;
        let mut more = false;
        let mut chunk = [0u8; 16 * 1024];
        let mut read = 0;
        loop {
            let Some(conn) = self.conns.get_mut(&t) else {
                return;
            };
            let unparsed = conn.inbuf.len() - conn.inpos;
            // At most a slice per event-loop pass, so the memory limit and other clients are
            // looked at between slices; the rest stays in the socket (and TCP slows the
            // sender). A single request larger than a slice is read on to its end.
            let big_request = conn.incomplete && unparsed >= INPUT_SLICE.min(limit);
            if !big_request && (unparsed >= INPUT_SLICE.min(limit) || read >= INPUT_SLICE) {
                more = true;
                break;
            }
            match conn.sock.read(&mut chunk) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => {
                    read += n;
                    conn.inbuf.extend_from_slice(&chunk[..n]);
                    conn.state.last_interaction = Instant::now();
                    if conn.inbuf.len() - conn.inpos + conn.parser.held() > limit {
                        log::warn!("closing client {}: query buffer over limit", conn.state.id);
                        closed = true;
                        break;
                    }
                    if conn.inbuf.len() - conn.inpos >= INPUT_SLICE {
                        self.process_input(t);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        if more {
            self.more_input.push(t);
        }
        self.process_input(t);
        if closed {
            // Replies to what was already read are still flushed when possible.
            self.flush(t);
            self.close(t);
        }
    }

    /// Whether a client has unread input and is free to run it.
    fn input_ready(&self) -> bool {
        self.more_input.iter().any(|t| {
            self.conns
                .get(t)
                .is_some_and(|c| !c.is_waiting() && !self.shutting_down)
        })
    }

    /// Reads the next slice of input of clients that stopped at `INPUT_SLICE` and may run more.
    fn read_more(&mut self) {
        if self.more_input.is_empty() || self.shutting_down {
            return;
        }
        let ready: Vec<usize> = self
            .more_input
            .iter()
            .copied()
            .filter(|t| self.conns.get(t).is_some_and(|c| !c.is_waiting()))
            .collect();
        for t in ready {
            self.on_readable(t);
        }
    }

    /// Runs as many complete requests from the client's buffer as it may.
    fn process_input(&mut self, t: usize) {
        let max_bulk = self.shared.config.get_u64("proto-max-bulk-len") as usize;
        loop {
            let Some(conn) = self.conns.get_mut(&t) else {
                return;
            };
            if conn.is_waiting() || conn.close_after_write || self.shutting_down {
                break;
            }
            let mut pos = conn.inpos;
            conn.parser.unauthenticated = !conn.state.authenticated;
            let parsed = conn.parser.parse(&conn.inbuf, &mut pos, max_bulk);
            conn.inpos = pos;
            match parsed {
                Ok(Some(args)) if args.is_empty() => continue,
                Ok(Some(args)) => {
                    conn.incomplete = false;
                    self.handle(t, args)
                }
                Ok(None) => {
                    // Part of a request is buffered: reading must go on until it is whole.
                    conn.incomplete = conn.inpos < conn.inbuf.len();
                    break;
                }
                Err(e) => {
                    conn.out.error(&format!("ERR Protocol error: {}", e.0));
                    conn.close_after_write = true;
                    self.shared.total_error_replies += 1;
                    break;
                }
            }
        }
        if let Some(conn) = self.conns.get_mut(&t) {
            conn.compact_input();
        }
        self.to_flush.push(t);
    }

    /// Entry point for one request of client `t`.
    fn handle(&mut self, t: usize, mut args: Vec<Vec<u8>>) {
        let conn = self.conns.get_mut(&t).expect("live conn");
        // rename-command: requests name commands by their new names from here on.
        let visible = self.shared.acl.renames.resolve(&mut args);
        let Some(spec) = commands::lookup(&args[0]).filter(|_| visible) else {
            let mut msg = format!(
                "ERR unknown command '{}', with args beginning with: ",
                String::from_utf8_lossy(&args[0][..args[0].len().min(128)])
            );
            // Like Redis: arguments are quoted until the list reaches 128 bytes, the last one
            // cut to fit.
            let mut listed = 0usize;
            for a in args.iter().skip(1) {
                if listed >= 128 {
                    break;
                }
                let part = &a[..a.len().min(128 - listed)];
                let quoted = format!("'{}' ", String::from_utf8_lossy(part));
                listed += part.len() + 3;
                msg.push_str(&quoted);
            }
            if conn.state.multi.is_some() {
                conn.state.multi_error = true;
            }
            return self.reply_error(t, &msg, None);
        };
        let n = args.len() as i32;
        if (spec.arity > 0 && n != spec.arity) || (spec.arity < 0 && n < -spec.arity) {
            if conn.state.multi.is_some() {
                conn.state.multi_error = true;
            }
            let msg = format!("ERR wrong number of arguments for '{}' command", spec.name);
            return self.reply_error(t, &msg, Some(spec.name));
        }
        if !conn.state.authenticated && !spec.has(flags::NO_AUTH) {
            return self.reply_error(t, "NOAUTH Authentication required.", Some(spec.name));
        }
        // (The log's settings and the client's line are only computed for a refusal.)
        let config = &self.shared.config;
        if let Err(denied) = self.shared.acl.check_request(
            &conn.state,
            || conn.client_list_line(Instant::now()),
            spec,
            &args,
            || config.get_u64("acllog-max-len") as usize,
        ) {
            if denied == crate::acl::Denied::NoUser {
                conn.close_after_write = true;
                return;
            }
            // Refused at queue time, as in Redis: the transaction then fails with EXECABORT.
            if conn.state.multi.is_some() {
                conn.state.multi_error = true;
            }
            return self.reply_error(t, &denied.message(), Some(spec.name));
        }
        if conn.state.subscriptions() > 0 && !conn.out.resp3 && !spec.has(flags::PUBSUB) {
            let msg = format!("ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context", spec.name);
            return self.reply_error(t, &msg, Some(spec.name));
        }
        if let Some(queue) = &mut conn.state.multi {
            if spec.has(flags::NO_MULTI) {
                if spec.name == "watch" {
                    return self.reply_error(
                        t,
                        "ERR WATCH inside MULTI is not allowed",
                        Some(spec.name),
                    );
                }
                conn.state.multi_error = true;
                return self.reply_error(
                    t,
                    "ERR Command not allowed inside a transaction",
                    Some(spec.name),
                );
            }
            if !spec.has(flags::NO_QUEUE) {
                queue.push(args);
                conn.out.simple("QUEUED");
                return;
            }
        }
        conn.pending = Some(args);
        self.try_run(t);
    }

    fn reply_error(&mut self, t: usize, msg: &str, cmd: Option<&'static str>) {
        if let Some(conn) = self.conns.get_mut(&t) {
            conn.out.error(msg);
        }
        self.tracking_refused(t, cmd);
        self.count_error(msg, cmd, true);
    }

    fn count_error(&mut self, msg: &str, cmd: Option<&'static str>, rejected: bool) {
        self.shared.total_error_replies += 1;
        let code = msg.split_whitespace().next().unwrap_or("ERR").to_string();
        *self.shared.error_stats.entry(code).or_insert(0) += 1;
        if let Some(c) = cmd {
            let s = self.shared.command_stats.entry(c).or_default();
            if rejected {
                s.rejected_calls += 1;
            } else {
                s.failed_calls += 1;
            }
        }
    }

    /// The (db, key) pairs a request needs in memory.
    fn needed_keys(&self, t: usize, args: &[Vec<u8>]) -> Vec<(u32, Vec<u8>)> {
        let conn = &self.conns[&t];
        let db = conn.state.db;
        let Some(spec) = commands::lookup(&args[0]) else {
            return Vec::new();
        };
        if spec.name == "exec" {
            let mut keys = Vec::new();
            if let Some(queued) = &conn.state.multi {
                // A SELECT queued in the transaction changes the DB of the commands after it,
                // and a SWAPDB what their DBs show: their keys are loaded now, before the swap,
                // under the DB that holds them now.
                let mut db = db;
                let databases = self.engine.ks.databases() as i64;
                let mut now_in: Vec<u32> = (0..databases as u32).collect();
                for q in queued {
                    if q[0].eq_ignore_ascii_case(b"select") && q.len() == 2 {
                        if let Some(n) =
                            crate::util::parse_i64(&q[1]).filter(|n| (0..databases).contains(n))
                        {
                            db = n as u32;
                        }
                    }
                    if q[0].eq_ignore_ascii_case(b"swapdb") {
                        if let Some((a, b)) = commands::swapdb::swapdb_args(q, databases as u32) {
                            now_in.swap(a as usize, b as usize);
                        }
                    }
                    let q_keys = self.keys_of(db, q);
                    keys.extend(
                        q_keys
                            .into_iter()
                            .map(|(d, k)| (now_in.get(d as usize).copied().unwrap_or(d), k)),
                    );
                }
            }
            return keys;
        }
        let mut keys = self.keys_of(db, args);
        // Keys a script touched without declaring them, found cold on an earlier run.
        keys.extend_from_slice(self.scripting.extra_keys(t));
        keys
    }

    fn keys_of(&self, db: u32, args: &[Vec<u8>]) -> Vec<(u32, Vec<u8>)> {
        let Some(spec) = commands::lookup(&args[0]) else {
            return Vec::new();
        };
        // Prefetch looks at requests not yet arity-checked: one with too few arguments has no
        // keys to load (and indexing its arguments would panic; found by the dispatch fuzz).
        let n = args.len() as i32;
        if (spec.arity > 0 && n != spec.arity) || (spec.arity < 0 && n < -spec.arity) {
            return Vec::new();
        }
        if spec.blind_write(args) {
            // Nothing to load: the old values are replaced unread.
            return Vec::new();
        }
        let mut keys: Vec<(u32, Vec<u8>)> = spec
            .key_args(args)
            .into_iter()
            .map(|k| (db, k.to_vec()))
            .collect();
        let databases = self.engine.ks.databases() as u32;
        if spec.name == "swapdb" {
            // Whether a WATCHed key of either DB is touched depends on whether it exists in
            // either: those keys are loaded first.
            if let Some((a, b)) = commands::swapdb::swapdb_args(args, databases) {
                for c in self.conns.values() {
                    for (d, k) in &c.state.watched {
                        if *d == a || *d == b {
                            keys.push((a, k.clone()));
                            keys.push((b, k.clone()));
                        }
                    }
                }
            }
        }
        let extra_db = match spec.name {
            "move" => crate::util::parse_i64(&args[2]).and_then(|n| u32::try_from(n).ok()),
            "copy" => commands::keys::copy_target_db(args),
            _ => None,
        };
        if let Some(target) = extra_db.filter(|&d| d < databases) {
            let key = if spec.name == "move" {
                &args[1]
            } else {
                &args[2]
            };
            keys.push((target, key.clone()));
        }
        keys
    }

    /// Runs the client's pending command if all its keys are available; parks it otherwise.
    fn try_run(&mut self, t: usize) {
        if self.shutting_down {
            // Stays pending; runs if the shutdown fails (see `resume_all`).
            return;
        }
        let Some(args) = self.conns.get_mut(&t).and_then(|c| c.pending.take()) else {
            return;
        };
        if let Some(c) = self.conns.get_mut(&t) {
            if commands::pause::holds(&mut self.shared, &c.state, &args) {
                // CLIENT PAUSE: stays pending until the pause ends (see `resume_all`).
                c.pending = Some(args);
                return;
            }
        }
        let keys = self.needed_keys(t, &args);
        let mut missing = 0;
        for (db, key) in &keys {
            if self.engine.ensure(*db, key) == Residency::Unknown {
                let waiters = self.parked.entry((*db, key.clone())).or_default();
                if !waiters.contains(&t) {
                    waiters.push(t);
                    missing += 1;
                }
            }
        }
        if missing > 0 {
            let conn = self.conns.get_mut(&t).expect("live");
            if conn.pins.is_empty() {
                // The keys that arrive first stay until the last one is there.
                for (db, key) in &keys {
                    self.engine.ks.pin(*db, key);
                }
                conn.pins = keys;
            }
            conn.pending = Some(args);
            conn.waiting_keys = missing;
            self.prefetch(t);
            self.shared.parked_clients = self.conns.values().filter(|c| c.waiting_keys > 0).count();
            return;
        }
        let conn = self.conns.get_mut(&t).expect("live");
        conn.waiting_keys = 0;
        let maxmemory = self.shared.config.get_u64("maxmemory") as usize;
        if maxmemory > 0
            && args.iter().map(Vec::len).sum::<usize>() > maxmemory
            && Self::grows_memory(&conn.state, &args)
        {
            self.release_pins(t);
            // The one case a writer is refused rather than slowed: it can never fit.
            return self.reply_error(
                t,
                "OOM command not allowed when used memory > 'maxmemory'.",
                None,
            );
        }
        if self.shared.mem_delay
            && conn.mem_wait_since.is_none()
            && Self::grows_memory(&conn.state, &args)
        {
            // Flow control: hold the writer (and so stop reading its input) while saves and
            // eviction make room; readers go on being served.
            conn.pending = Some(args);
            conn.mem_wait_since = Some(Instant::now());
            self.mem_waiters.push(t);
            self.shared.writers_delayed_total += 1;
            self.shared.delayed_writers = self.mem_waiters.len();
            return;
        }
        conn.mem_wait_since = None;
        // Pins are kept through a wait for memory: eviction meanwhile would send the command
        // back to loading its keys, and around again.
        self.release_pins(t);
        self.tracking_before_call(t);
        let conn = self.conns.get_mut(&t).expect("live");
        if args[0].eq_ignore_ascii_case(b"exec") && conn.state.multi.is_some() {
            self.exec(t);
            if !self.shared.monitor_ids.is_empty() {
                self.feed_monitors(t, &args);
            }
        } else {
            self.execute(t, &args);
            if let Some(i) = self.scripting.retry.iter().position(|&x| x == t) {
                // The script met keys not in memory: it runs again once they are loaded.
                self.scripting.retry.swap_remove(i);
                self.retry_script(t, &args);
                self.try_run(t);
            }
        }
        self.tracking_after_command(t, &args);
        self.after_command();
    }

    /// Queues loads for the keys of the commands buffered behind a parked one, so a pipeline
    /// of cold reads costs about one batched read instead of one disk round trip per command.
    /// Bounded by `PREFETCH_COMMANDS`; stops at a command that changes the DB.
    fn prefetch(&mut self, t: usize) {
        let max_bulk = self.shared.config.get_u64("proto-max-bulk-len") as usize;
        let Some(c) = self.conns.get(&t) else {
            return;
        };
        let (db, mut pos) = (c.state.db, c.inpos);
        let mut parser = crate::resp::Parser::default();
        let mut ahead = Vec::new();
        while ahead.len() < PREFETCH_COMMANDS {
            match parser.parse(&c.inbuf, &mut pos, max_bulk) {
                Ok(Some(args)) if args.is_empty() => continue,
                Ok(Some(args)) => {
                    let stop = [b"select".as_slice(), b"multi", b"exec", b"swapdb"]
                        .iter()
                        .any(|n| args[0].eq_ignore_ascii_case(n));
                    if stop {
                        break;
                    }
                    ahead.push(args);
                }
                _ => break,
            }
        }
        for args in ahead {
            for (d, key) in self.keys_of(db, &args) {
                self.engine.ensure(d, &key);
            }
        }
    }

    /// Whether a request may grow memory (DENYOOM, or an EXEC queuing such a command).
    fn grows_memory(state: &ClientState, args: &[Vec<u8>]) -> bool {
        let denyoom =
            |a: &[Vec<u8>]| commands::lookup(&a[0]).is_some_and(|s| s.has(flags::DENYOOM));
        if args[0].eq_ignore_ascii_case(b"exec") {
            return state
                .multi
                .as_ref()
                .is_some_and(|q| q.iter().any(|c| denyoom(c)));
        }
        denyoom(args)
    }

    /// Runs writers held for memory once it is back under the low-water mark. With
    /// `maxmemory-max-wait` set, a writer held longer than that gets -OOM instead.
    fn release_mem_waiters(&mut self) {
        if self.mem_waiters.is_empty() {
            return;
        }
        let now = Instant::now();
        let all = !self.shared.mem_delay;
        let max_wait = self.shared.config.get_u64("maxmemory-max-wait");
        let waiters = std::mem::take(&mut self.mem_waiters);
        let mut released = 0;
        for t in waiters {
            let Some(c) = self.conns.get_mut(&t) else {
                continue;
            };
            let waited = c.mem_wait_since.map(|s| now.duration_since(s));
            let late = max_wait > 0 && waited.is_some_and(|w| w >= Duration::from_millis(max_wait));
            // A few writers per loop pass: each runs what it pipelined meanwhile, and 64 of them
            // at once held every other client for up to 250 ms (soak); the rest go on the
            // next pass, which comes at once (see `run`).
            let go = late || (all && released < MEM_RELEASE_PER_PASS);
            if !go {
                self.mem_waiters.push(t);
                continue;
            }
            released += 1;
            self.shared.writer_delay_usec += waited.map_or(0, |w| w.as_micros() as u64);
            if late && self.shared.mem_delay {
                c.pending = None;
                c.mem_wait_since = None;
                c.state.multi = None;
                self.release_pins(t);
                self.reply_error(
                    t,
                    "OOM command not allowed when used memory > 'maxmemory'.",
                    None,
                );
            } else {
                self.try_run(t);
            }
            self.process_input(t);
        }
        self.shared.delayed_writers = self.mem_waiters.len();
    }

    /// Runs a handler for client `t` and returns what it asks the loop to do.
    pub(crate) fn call(&mut self, t: usize, spec: &CommandSpec, args: &[Vec<u8>]) -> Action {
        if crate::scripting::Scripting::handles(spec.name) {
            // Scripts need the whole server (redis.call runs commands through it).
            return self.scripting_command(t, spec, args);
        }
        let conn = self.conns.get_mut(&t).expect("live");
        let mut ctx = Ctx {
            engine: &mut self.engine,
            client: &mut conn.state,
            out: &mut conn.out,
            shared: &mut self.shared,
            now_ms: kvtier_core::engine::now_ms(),
            action: Action::None,
        };
        (spec.handler)(&mut ctx, args);
        ctx.action
    }

    /// Executes one command (keys already resident) and performs its action.
    fn execute(&mut self, t: usize, args: &[Vec<u8>]) {
        let spec = commands::lookup(&args[0]).expect("looked up before");
        if self.shared.oom && spec.has(flags::DENYOOM) {
            return self.reply_error(
                t,
                "OOM command not allowed when used memory > 'maxmemory'.",
                Some(spec.name),
            );
        }
        if self.engine.stats.out_of_space && spec.has(flags::WRITE) {
            return self.reply_error(t, MISCONF_NO_SPACE, Some(spec.name));
        }
        if spec.name == "watch" {
            self.engine.ks.track_touched(true);
        }
        if spec.name == "info" {
            self.shared.tracking = self.tracking.stats();
            self.shared.parked_clients = self.conns.values().filter(|c| c.waiting_keys > 0).count();
        }
        if spec.name == "client" {
            let now = Instant::now();
            self.shared.client_list = self
                .conns
                .values()
                .map(|c| c.client_list_line(now))
                .collect();
        }
        let conn = self.conns.get_mut(&t).expect("live");
        conn.state.last_cmd = spec.name.to_string();
        let before = conn.out.buf.len();
        let start = Instant::now();
        self.engine.ks.begin_group();
        let action = self.call(t, spec, args);
        self.engine.ks.end_group();
        self.tracking_after_call(t, spec, args);
        let conn = self.conns.get_mut(&t).expect("live");
        let failed = conn.out.buf.get(before) == Some(&b'-');
        let err_text = if failed {
            let end = conn.out.buf[before..]
                .iter()
                .position(|&b| b == b'\r')
                .unwrap_or(0);
            Some(String::from_utf8_lossy(&conn.out.buf[before + 1..before + end]).into_owned())
        } else {
            None
        };
        let stat = self.shared.command_stats.entry(spec.name).or_default();
        stat.calls += 1;
        stat.usec += start.elapsed().as_micros() as u64;
        self.shared.total_commands += 1;
        if let Some(e) = err_text {
            self.count_error(&e, Some(spec.name), false);
        }
        self.perform(t, action, args);
        if let Some(c) = self.conns.get_mut(&t) {
            commands::connection::apply_reply_mode(&mut c.state, &mut c.out, before, spec.name);
        }
        if !self.shared.monitor_ids.is_empty() && !spec.has(flags::ADMIN) {
            self.feed_monitors(t, args);
        }
    }

    pub(crate) fn perform(&mut self, t: usize, action: Action, args: &[Vec<u8>]) {
        match action {
            Action::None => {}
            Action::Close => {
                if let Some(c) = self.conns.get_mut(&t) {
                    c.close_after_write = true;
                }
            }
            Action::Sleep(d) => std::thread::sleep(d),
            Action::Barrier(then) => {
                if matches!(then, BarrierThen::Shutdown) {
                    self.shutting_down = true;
                }
                let token = self.shared.token();
                if let Some(c) = self.conns.get_mut(&t) {
                    c.waiting_io = true;
                }
                self.io_waiters
                    .insert(token, (Some(t), IoThen::Barrier(then)));
                self.engine.barrier(token);
            }
            Action::Clear(db) => {
                let token = self.shared.token();
                if let Some(c) = self.conns.get_mut(&t) {
                    c.waiting_io = true;
                }
                self.io_waiters.insert(token, (Some(t), IoThen::Clear));
                self.invalidate_watchers(db);
                self.tracking_flush(t);
                self.engine.clear(token, db);
            }
            Action::Block { timeout_ms } => self.block(t, args, timeout_ms),
            Action::SwapDb(a, b) => self.swap_dbs(a, b),
            Action::BlockWith { timeout_ms, args } => self.block(t, &args, timeout_ms),
            Action::KeyScan(scan) => {
                if let Some(c) = self.conns.get_mut(&t) {
                    c.waiting_io = true;
                }
                // Saves recorded so far belong to the scans already running, not to this one.
                self.route_saves();
                self.next_key_page(t, scan);
            }
            Action::Publish {
                channel,
                message,
                shard,
            } => {
                let n = if shard {
                    self.spublish(&channel, &message)
                } else {
                    self.publish(&channel, &message)
                };
                if let Some(c) = self.conns.get_mut(&t) {
                    c.out.int(n as i64);
                }
            }
        }
    }

    fn exec(&mut self, t: usize) {
        let conn = self.conns.get_mut(&t).expect("live");
        let queued = conn.state.multi.take().expect("in multi");
        let aborted = std::mem::take(&mut conn.state.multi_error);
        // A watched key that expired since WATCH counts as touched, as in Redis.
        let expired = conn
            .state
            .watch_expires_at
            .take()
            .is_some_and(|t| t <= kvtier_core::engine::now_ms());
        let dirty = std::mem::take(&mut conn.state.watch_dirty) || expired;
        conn.state.watched.clear();
        if aborted {
            return self.reply_error(
                t,
                "EXECABORT Transaction discarded because of previous errors.",
                Some("exec"),
            );
        }
        if dirty {
            conn.out.null_array();
            return;
        }
        if self.shared.oom
            && queued
                .iter()
                .any(|q| commands::lookup(&q[0]).is_some_and(|s| s.has(flags::DENYOOM)))
        {
            return self.reply_error(
                t,
                "OOM command not allowed when used memory > 'maxmemory'.",
                Some("exec"),
            );
        }
        if self.engine.stats.out_of_space
            && queued
                .iter()
                .any(|q| commands::lookup(&q[0]).is_some_and(|s| s.has(flags::WRITE)))
        {
            return self.reply_error(t, MISCONF_NO_SPACE, Some("exec"));
        }
        let conn = self.conns.get_mut(&t).expect("live");
        let reply_start = conn.out.buf.len();
        conn.out.array(queued.len());
        conn.state.in_exec = true;
        let mut bgsave = false;
        // One save group for the whole transaction: it reaches disk in one batch.
        self.engine.ks.begin_group();
        let oom = std::mem::replace(&mut self.shared.oom, false);
        let user = self
            .conns
            .get(&t)
            .map(|c| c.state.user.clone())
            .unwrap_or_default();
        for q in &queued {
            let spec = commands::lookup(&q[0]).expect("checked at queue time");
            // The ACL may have changed since the command was queued: checked again, as Redis.
            if let Err(denied) = self.shared.acl.check(&user, spec, q) {
                if let Some(c) = self.conns.get_mut(&t) {
                    c.out.error(&denied.exec_message());
                }
                continue;
            }
            let action = self.call_nested(t, spec, q);
            match action {
                Action::Clear(db) => self.clear_nested(t, db),
                // BGSAVE: a point in time taken when the transaction ends (below).
                Action::Barrier(BarrierThen::Save { .. }) => bgsave = true,
                a => self.perform(t, a, q),
            }
        }
        self.shared.oom = oom;
        self.engine.ks.end_group();
        if bgsave {
            let token = self.shared.token();
            self.io_waiters.insert(
                token,
                (None, IoThen::Barrier(BarrierThen::Save { reply: false })),
            );
            self.engine.barrier(token);
        }
        if let Some(c) = self.conns.get_mut(&t) {
            c.state.in_exec = false;
            if c.exec_io > 0 {
                // Nothing of the reply leaves, and no further command runs, until then.
                c.waiting_io = true;
                c.held_from = Some(reply_start);
            }
        }
    }

    /// Runs one command inside a transaction or a script (keys resident, save group open) and
    /// accounts for it as for a client's command: MONITOR line, statistics, error counts.
    pub(crate) fn call_nested(&mut self, t: usize, spec: &CommandSpec, args: &[Vec<u8>]) -> Action {
        let before = self.conns.get(&t).map_or(0, |c| c.out.buf.len());
        let start = Instant::now();
        let action = self.call(t, spec, args);
        self.tracking_after_call(t, spec, args);
        if !self.shared.monitor_ids.is_empty() && !spec.has(flags::ADMIN) {
            self.feed_monitors(t, args);
        }
        let stat = self.shared.command_stats.entry(spec.name).or_default();
        stat.calls += 1;
        stat.usec += start.elapsed().as_micros() as u64;
        self.shared.total_commands += 1;
        let err = self.conns.get(&t).and_then(|c| {
            let rest = c.out.buf.get(before..)?;
            (rest.first() == Some(&b'-')).then(|| {
                let end = rest.iter().position(|&b| b == b'\r').unwrap_or(rest.len());
                String::from_utf8_lossy(&rest[1..end]).into_owned()
            })
        });
        if let Some(e) = err {
            self.count_error(&e, Some(spec.name), false);
        }
        action
    }

    /// A flush inside a transaction or script: it takes effect in memory at its place; the
    /// reply is held until the store is cleared too, as a plain FLUSHDB's reply is.
    pub(crate) fn clear_nested(&mut self, t: usize, db: Option<u32>) {
        let token = self.shared.token();
        self.invalidate_watchers(db);
        self.tracking_flush(t);
        self.engine.clear(token, db);
        self.io_waiters.insert(token, (Some(t), IoThen::ExecClear));
        if let Some(c) = self.conns.get_mut(&t) {
            c.out.ok();
            c.exec_io += 1;
        }
    }

    /// SWAPDB after the engine's checks: clients parked on cold keys of either DB let go of
    /// them (their pins name the old contents) and ask again; WATCHers of a key that exists
    /// in either DB see it modified and blocked clients of either DB look again, as in Redis.
    fn swap_dbs(&mut self, a: u32, b: u32) {
        let hit = |keys: &[(u32, Vec<u8>)]| keys.iter().any(|(d, _)| *d == a || *d == b);
        let parked: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| hit(&c.pins))
            .map(|(t, _)| *t)
            .collect();
        for &t in &parked {
            self.unpark(t);
        }
        self.engine.swap_db(a, b);
        let now = kvtier_core::engine::now_ms();
        let ks = &mut self.engine.ks;
        for c in self.conns.values_mut() {
            // (The keys were loaded before SWAPDB ran; evicted since only if clean on disk.)
            let touched = c.state.watched.iter().any(|(d, k)| {
                (*d == a || *d == b) && [a, b].iter().any(|&x| watched_key_exists(ks, x, k, now))
            });
            if touched {
                c.state.watch_dirty = true;
            }
        }
        let blocked: Vec<(u32, Vec<u8>)> = self
            .conns
            .values()
            .filter(|c| c.blocked.is_some())
            .flat_map(|c| c.state.blocked_on.iter())
            .filter(|(d, _)| *d == a || *d == b)
            .cloned()
            .collect();
        // Not now: inside EXEC, another client's command must not run mid-transaction.
        self.after_swap.0.extend(parked);
        self.after_swap.1.extend(blocked);
    }

    /// Runs again the clients a SWAPDB let go of (see `swap_dbs`).
    fn retry_after_swap(&mut self) {
        let (parked, blocked) = std::mem::take(&mut self.after_swap);
        for t in parked {
            let waiting_memory = self.mem_waiters.contains(&t);
            if !waiting_memory && self.conns.get(&t).is_some_and(|c| c.pending.is_some()) {
                self.try_run(t);
                self.process_input(t);
            }
        }
        if !blocked.is_empty() {
            self.wake_blocked(&blocked);
        }
    }

    /// A watcher of a key the flush removes sees it as modified, as in Redis (a watched key
    /// that did not exist, or lives in another DB, is not touched). Called before the clear; a
    /// key whose existence is unknown (on disk, not loaded) counts as existing.
    fn invalidate_watchers(&mut self, db: Option<u32>) {
        let now = kvtier_core::engine::now_ms();
        let ks = &mut self.engine.ks;
        for c in self.conns.values_mut() {
            let hit = c
                .state
                .watched
                .iter()
                .any(|(d, k)| db.is_none_or(|x| x == *d) && watched_key_exists(ks, *d, k, now));
            if hit {
                c.state.watch_dirty = true;
            }
        }
    }

    /// Sends the monitor line of client `t`'s command to the clients in MONITOR mode.
    fn feed_monitors(&mut self, t: usize, args: &[Vec<u8>]) {
        let Some(c) = self.conns.get(&t) else {
            return;
        };
        let line = commands::monitor::line(c.state.db, &c.state.addr, args);
        for id in std::mem::take(&mut self.shared.monitor_ids) {
            let Some(&mt) = self.ids.get(&id) else {
                continue; // disconnected
            };
            if let Some(m) = self.conns.get_mut(&mt).filter(|m| m.state.monitor) {
                m.out.simple(&line);
                self.to_flush.push(mt);
                self.shared.monitor_ids.push(id);
            }
        }
    }

    /// Sends a message to every subscriber of `channel`; returns how many received it.
    fn publish(&mut self, channel: &[u8], message: &[u8]) -> usize {
        let receivers = self.shared.pubsub.receivers(channel);
        for (id, pattern) in &receivers {
            let Some(&t) = self.ids.get(id) else { continue };
            let Some(c) = self.conns.get_mut(&t) else {
                continue;
            };
            match pattern {
                Some(p) => {
                    c.out.push(4);
                    c.out.bulk(b"pmessage");
                    c.out.bulk(p);
                }
                None => {
                    c.out.push(3);
                    c.out.bulk(b"message");
                }
            }
            c.out.bulk(channel);
            c.out.bulk(message);
            self.to_flush.push(t);
        }
        receivers.len()
    }

    /// Sends an SPUBLISH message to the subscribers of shard channel `channel`.
    fn spublish(&mut self, channel: &[u8], message: &[u8]) -> usize {
        let receivers = self.shared.pubsub.shard_receivers(channel);
        for id in &receivers {
            let Some(&t) = self.ids.get(id) else { continue };
            let Some(c) = self.conns.get_mut(&t) else {
                continue;
            };
            c.out.push(3);
            c.out.bulk(b"smessage");
            c.out.bulk(channel);
            c.out.bulk(message);
            self.to_flush.push(t);
        }
        receivers.len()
    }

    /// Parks a client in a blocking command until one of its keys changes or the timeout.
    fn block(&mut self, t: usize, args: &[Vec<u8>], timeout_ms: u64) {
        let db = self.conns[&t].state.db;
        let keys = self.keys_of(db, args);
        let Some(c) = self.conns.get_mut(&t) else {
            return;
        };
        c.state.blocked_on = keys;
        c.state.blocked_at = Some(Instant::now());
        c.state.block_deadline =
            (timeout_ms > 0).then(|| Instant::now() + Duration::from_millis(timeout_ms));
        c.blocked = Some(args.to_vec());
        self.engine.ks.track_touched(true);
        self.shared.blocked_clients = self.conns.values().filter(|c| c.blocked.is_some()).count();
    }

    /// Re-runs blocked commands whose keys were touched.
    fn wake_blocked(&mut self, touched: &[(u32, Vec<u8>)]) {
        let mut ready: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.blocked.is_some() && c.state.blocked_on.iter().any(|k| touched.contains(k))
            })
            .map(|(t, _)| *t)
            .collect();
        // Served in the order they blocked, as in Redis.
        ready.sort_by_key(|t| self.conns[t].state.blocked_at);
        for t in ready {
            let Some(c) = self.conns.get_mut(&t) else {
                continue;
            };
            let Some(args) = c.blocked.take() else {
                continue;
            };
            c.state.blocked_on.clear();
            // A command that blocks again keeps its deadline and its place in line, as in Redis
            // (XREAD woken by a change that adds no entry).
            let kept = (c.state.block_deadline.take(), c.state.blocked_at);
            c.pending = Some(args);
            c.state.woken = true;
            self.try_run(t);
            if let Some(c) = self.conns.get_mut(&t) {
                c.state.woken = false;
                if c.blocked.is_some() {
                    (c.state.block_deadline, c.state.blocked_at) = kept;
                }
            }
            self.process_input(t);
        }
        self.shared.blocked_clients = self.conns.values().filter(|c| c.blocked.is_some()).count();
    }

    /// Marks watchers of touched keys dirty.
    fn after_command(&mut self) {
        if std::mem::take(&mut self.shared.pause_released) {
            self.resume_all();
        }
        // Keyspace notifications queued by the command (commands/notify.rs).
        for (channel, message) in std::mem::take(&mut self.shared.notifications) {
            self.publish(&channel, &message);
        }
        if !self.after_swap.0.is_empty() || !self.after_swap.1.is_empty() {
            self.retry_after_swap();
        }
        // (Keys client-side caching already took from the keyspace come first.)
        let mut touched = self.tracking.take_seen();
        touched.extend(self.engine.ks.take_touched());
        // Tracking is only on while someone watches or blocks; nothing touched, nothing to do.
        if touched.is_empty() {
            return;
        }
        {
            let now = kvtier_core::engine::now_ms();
            let ks = &mut self.engine.ks;
            for c in self.conns.values_mut() {
                if c.state.watched.is_empty() {
                    continue;
                }
                let st = &mut c.state;
                for w in &touched {
                    if !st.watched.contains(w) {
                        continue;
                    }
                    if let Some(i) = st.watch_stale.iter().position(|s| s == w) {
                        // Expired when watched: its reclaim is no change; what comes after is.
                        if !ks.db(w.0, now).is_live(&w.1) {
                            st.watch_stale.swap_remove(i);
                            continue;
                        }
                    }
                    st.watch_dirty = true;
                }
            }
        }
        if !touched.is_empty() && self.conns.values().any(|c| c.blocked.is_some()) {
            self.wake_blocked(&touched);
        }
        let tracking = self.tracking.active()
            || self
                .conns
                .values()
                .any(|c| !c.state.watched.is_empty() || c.blocked.is_some());
        self.engine.ks.track_touched(tracking);
    }

    fn on_io_events(&mut self) {
        let events = self.engine.poll();
        // Keys the IO work changed (expired records found) belong to no client's command.
        self.tracking_tick();
        for ev in events {
            match ev {
                Event::KeyReady { db, key } => {
                    for t in self.parked.remove(&(db, key)).unwrap_or_default() {
                        self.key_arrived(t);
                    }
                }
                Event::KeyFailed {
                    db,
                    key,
                    error,
                    corrupt,
                } => {
                    let mut waiters = self.parked.remove(&(db, key.clone())).unwrap_or_default();
                    if corrupt {
                        // A damaged record must not block a command that replaces or deletes
                        // it without reading it: those run as if the key were absent, and the
                        // bad record goes with their save. Readers get the error.
                        let (replacers, readers): (Vec<usize>, Vec<usize>) = waiters
                            .into_iter()
                            .partition(|&t| self.overwrites_without_reading(t));
                        waiters = readers;
                        if !replacers.is_empty() {
                            self.engine.replace_corrupt(db, &key);
                        }
                        for t in replacers {
                            self.key_arrived(t);
                        }
                    }
                    for t in waiters {
                        self.unpark(t);
                        let msg = format!("IOERR disk store read failed: {error}");
                        self.reply_error(t, &msg, None);
                        if let Some(c) = self.conns.get_mut(&t) {
                            c.pending = None;
                            c.state.multi = None;
                        }
                        self.process_input(t);
                    }
                }
                Event::BarrierDone { token, result } => self.barrier_done(token, result),
                Event::ClearDone { token, result } => match self.io_waiters.remove(&token) {
                    Some((Some(t), IoThen::ExecClear)) => {
                        if let Some(c) = self.conns.get_mut(&t) {
                            c.exec_io = c.exec_io.saturating_sub(1);
                            if c.exec_io == 0 {
                                c.waiting_io = false;
                                c.held_from = None;
                                self.to_flush.push(t);
                            }
                        }
                        self.process_input(t);
                    }
                    Some((Some(t), _)) => {
                        if let Some(c) = self.conns.get_mut(&t) {
                            c.waiting_io = false;
                            match result {
                                Ok(()) => c.out.ok(),
                                Err(e) => c.out.error(&format!("ERR flush failed on disk: {e}")),
                            }
                        }
                        self.process_input(t);
                    }
                    _ => {}
                },
                Event::ScanDone { token, result } => {
                    self.route_saves();
                    self.key_page_done(token, result)
                }
            }
        }
    }

    /// Whether the client's parked command overwrites or deletes its keys without reading them
    /// (SET, MSET, DEL…), so that a damaged record of one of them can simply be replaced.
    fn overwrites_without_reading(&self, t: usize) -> bool {
        let Some(args) = self.conns.get(&t).and_then(|c| c.pending.as_ref()) else {
            return false;
        };
        commands::lookup(&args[0]).is_some_and(|s| s.overwrites_keys(args))
    }

    /// Asks the IO workers for the next store page of a keyspace-wide command.
    fn next_key_page(&mut self, t: usize, scan: crate::keyscan::KeyScan) {
        if scan.needs_saves() {
            self.engine.track_saves(true);
        }
        let token = self.shared.token();
        let (limit, typed) = scan.page();
        let (db, cursor, filter) = (scan.db, scan.cursor.clone(), scan.filter());
        self.io_waiters
            .insert(token, (Some(t), IoThen::KeyScan(scan)));
        self.engine
            .scan_matching(token, db, cursor, limit, typed, filter);
    }

    /// Hands the keys saved since the last call to the multi-page scans running; stops the
    /// recording when none is left.
    fn route_saves(&mut self) {
        let saved = self.engine.take_saved();
        let mut any = false;
        for (_, then) in self.io_waiters.values_mut() {
            if let IoThen::KeyScan(scan) = then {
                if scan.needs_saves() {
                    scan.saw_saves(&saved);
                    any = true;
                }
            }
        }
        if !any {
            self.engine.track_saves(false);
        }
    }

    /// A store page of a keyspace-wide command arrived: merge it with memory, then ask for the
    /// next one or reply and let the client go on.
    fn key_page_done(&mut self, token: u64, result: Result<kvtier_core::KeyPage, String>) {
        let Some((Some(t), IoThen::KeyScan(mut scan))) = self.io_waiters.remove(&token) else {
            return;
        };
        let Some(c) = self.conns.get_mut(&t) else {
            return;
        };
        let page = match result {
            Err(e) => {
                if matches!(
                    scan.kind,
                    crate::keyscan::Kind::RandomKey { wrapped: false }
                ) {
                    // A random start position this store does not take: from the beginning.
                    scan.kind = crate::keyscan::Kind::RandomKey { wrapped: true };
                    scan.cursor.clear();
                    return self.next_key_page(t, scan);
                }
                c.waiting_io = false;
                let msg = format!("ERR disk store scan failed: {e}");
                self.reply_error(t, &msg, None);
                return self.process_input(t);
            }
            // A flush of the DB since the scan began: nothing of the store is left to read.
            Ok(_) if self.engine.db_epoch(scan.db) != scan.epoch => None,
            Ok(p) => Some(p),
        };
        let now = kvtier_core::engine::now_ms();
        let mut db = self.engine.ks.db(scan.db, now);
        match scan.absorb(page, &mut db, &mut self.shared.scan_cursors, &mut c.out) {
            crate::keyscan::Step::More => self.next_key_page(t, scan),
            crate::keyscan::Step::Done => {
                c.waiting_io = false;
                self.to_flush.push(t);
                let running = self
                    .io_waiters
                    .values()
                    .any(|(_, then)| matches!(then, IoThen::KeyScan(s) if s.needs_saves()));
                if !running {
                    self.engine.track_saves(false);
                }
                self.process_input(t);
            }
        }
    }

    /// Forgets every parking registration of a client.
    fn unpark(&mut self, t: usize) {
        self.parked.retain(|_, v| {
            v.retain(|&x| x != t);
            !v.is_empty()
        });
        self.release_pins(t);
        if let Some(c) = self.conns.get_mut(&t) {
            c.waiting_keys = 0;
        }
    }

    /// Lets the keys a parked command held in memory be evicted again.
    fn release_pins(&mut self, t: usize) {
        let Some(c) = self.conns.get_mut(&t) else {
            return;
        };
        for (db, key) in std::mem::take(&mut c.pins) {
            self.engine.ks.unpin(db, &key);
        }
    }

    fn key_arrived(&mut self, t: usize) {
        let Some(c) = self.conns.get_mut(&t) else {
            return;
        };
        c.waiting_keys = c.waiting_keys.saturating_sub(1);
        if c.waiting_keys == 0 && c.pending.is_some() {
            // Re-checks every key: one may have been evicted again meanwhile.
            self.try_run(t);
            self.process_input(t);
        }
    }

    fn barrier_done(&mut self, token: u64, result: Result<(), String>) {
        let Some((client, then)) = self.io_waiters.remove(&token) else {
            return;
        };
        if let Some(t) = client {
            if let Some(c) = self.conns.get_mut(&t) {
                c.waiting_io = false;
            }
        }
        let IoThen::Barrier(then) = then else {
            return;
        };
        match then {
            BarrierThen::Save { reply } => {
                self.shared.bgsave_in_progress = false;
                self.shared.last_bgsave_ok = result.is_ok();
                if result.is_ok() {
                    self.shared.last_save_unix = kvtier_core::engine::now_ms() / 1000;
                }
                if let (true, Some(t)) = (reply, client) {
                    if let Some(c) = self.conns.get_mut(&t) {
                        match &result {
                            Ok(()) => c.out.ok(),
                            Err(e) => c
                                .out
                                .error(&format!("ERR saving to the disk store failed: {e}")),
                        }
                    }
                }
            }
            BarrierThen::Shutdown => match result {
                Ok(()) => {
                    log::warn!("all data is on disk; exiting");
                    self.exit = true;
                }
                Err(e) => {
                    log::error!("shutdown aborted: saving failed: {e}");
                    if let Some(c) = client.and_then(|t| self.conns.get_mut(&t)) {
                        c.out.error("ERR Errors trying to SHUTDOWN. Check logs.");
                    }
                    self.shutting_down = false;
                    self.resume_all();
                }
            },
        }
        if let Some(t) = client {
            self.process_input(t);
        }
    }

    /// Runs what was held while a shutdown was pending: parked commands whose keys are all
    /// there, then buffered input.
    fn resume_all(&mut self) {
        let tokens: Vec<usize> = self.conns.keys().copied().collect();
        for t in tokens {
            let ready = self.conns.get(&t).is_some_and(|c| {
                c.pending.is_some() && c.waiting_keys == 0 && c.mem_wait_since.is_none()
            });
            if ready {
                self.try_run(t);
            }
            self.process_input(t);
        }
    }

    fn cron(&mut self) {
        self.engine.tick();
        commands::pause::tick(&mut self.shared);
        if std::mem::take(&mut self.shared.pause_released) {
            self.resume_all();
        }
        let now_ms = kvtier_core::engine::now_ms();
        commands::notify::expire_tick(&mut self.engine, &mut self.shared, now_ms);
        for (channel, message) in std::mem::take(&mut self.shared.notifications) {
            self.publish(&channel, &message);
        }
        let timeout = self.shared.config.get_u64("timeout");
        let now = Instant::now();
        if timeout > 0 {
            let idle: Vec<usize> = self
                .conns
                .iter()
                .filter(|(_, c)| {
                    !c.is_waiting()
                        && c.state.subscriptions() == 0
                        && now.duration_since(c.state.last_interaction).as_secs() > timeout
                })
                .map(|(t, _)| *t)
                .collect();
            for t in idle {
                self.close(t);
            }
        }
        // CLIENT UNBLOCK: end those blocks now, as a timeout (or an error, see below).
        for (id, error) in std::mem::take(&mut self.shared.unblock_requests) {
            if let Some(c) = self.ids.get(&id).and_then(|t| self.conns.get_mut(t)) {
                if c.blocked.is_some() {
                    c.state.block_deadline = Some(now);
                    c.state.unblock_error = error;
                }
            }
        }
        let expired: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.blocked.is_some() && c.state.block_deadline.is_some_and(|d| d <= now)
            })
            .map(|(t, _)| *t)
            .collect();
        for t in expired {
            let Some(c) = self.conns.get_mut(&t) else {
                continue;
            };
            let args = c.blocked.take().unwrap_or_default();
            c.state.blocked_on.clear();
            c.state.block_deadline = None;
            if std::mem::take(&mut c.state.unblock_error) {
                c.out.error("UNBLOCKED client unblocked via CLIENT UNBLOCK");
            } else if args.first().is_some_and(|a| {
                a.eq_ignore_ascii_case(b"blmove") || a.eq_ignore_ascii_case(b"brpoplpush")
            }) {
                c.out.null();
            } else {
                c.out.null_array();
            }
            self.to_flush.push(t);
            self.process_input(t);
        }
        self.shared.blocked_clients = self.conns.values().filter(|c| c.blocked.is_some()).count();
        for id in std::mem::take(&mut self.shared.kill_requests) {
            if let Some(t) = self
                .conns
                .iter()
                .find(|(_, c)| c.state.id == id)
                .map(|(t, _)| *t)
            {
                self.close(t);
            }
        }
        self.engine
            .ks
            .active_expire(kvtier_core::engine::now_ms(), 20);
    }

    fn enforce_memory(&mut self) {
        // Reading jemalloc's totals merges every arena's statistics: at one request per event
        // loop pass (a client at -c 1) it was 40% of the server's CPU. Input is read in bounded
        // slices, so a millisecond's staleness lets memory overshoot by little.
        let now = Instant::now();
        if now.duration_since(self.memory_checked_at) < MEMORY_CHECK_EVERY {
            return;
        }
        self.memory_checked_at = now;
        // RocksDB allocates through the C++ allocator, outside this count, and is bounded by
        // its own settings. sled allocates from this process's heap, and its heap grows with
        // the data far beyond its configured cache (the soak saw 100+ MB for 320 MB of data):
        // counted as cache, it left the object cache empty (every clean key evicted at once).
        // So for sled the cache is measured by its own estimate, re-taken every
        // CACHE_ESTIMATE_EVERY, plus what the heap grew since (writes between two estimates).
        let store = self.engine.store();
        let budget = crate::backend::memory_budget(store.name(), &self.shared.config);
        self.shared.backend_memory_budget = budget;
        let total = allocated();
        let used = if store.name() == "sled" {
            let stale = self
                .cache_anchor
                .is_none_or(|(at, _, _)| now.duration_since(at) >= CACHE_ESTIMATE_EVERY);
            if stale {
                let estimate = self.engine.ks.estimate_bytes(CACHE_ESTIMATE_SAMPLES);
                self.cache_anchor = Some((now, estimate, total));
            }
            let (_, estimate, then) = self.cache_anchor.expect("set above");
            self.startup_memory + estimate + total.saturating_sub(then)
        } else {
            total
        };
        self.shared.used_memory = used;
        self.shared.used_memory_startup = self.startup_memory;
        self.shared.used_memory_peak = self.shared.used_memory_peak.max(used);
        // What the server needs to exist (tables, threads, buffers at startup) is not cache:
        // the limit applies to what came after.
        let counted = used.saturating_sub(self.startup_memory);
        // The backend's own caches (outside this heap for RocksDB, subtracted above for sled)
        // are inside `maxmemory`: the object cache gets the rest, at least half.
        let maxmemory = match self.shared.config.get_u64("maxmemory") as usize {
            0 => 0,
            m => m.saturating_sub(budget).max(m / 2),
        };
        // Writers wait while memory is over the limit (saves make room) and go on once it is
        // back under a low-water mark, so they do not start and stop on every byte; while they
        // wait, eviction works towards that mark.
        let low = maxmemory - maxmemory / 16;
        let target = if self.shared.mem_delay {
            low
        } else {
            maxmemory
        };
        let over = self.engine.enforce_memory(counted, target);
        // Over the limit with nothing dirty, nothing being saved and nothing left to evict: the
        // memory is not cache (buffers, the backend's heap) and waiting would never end.
        // (Cheap accessors: this runs on every event-loop pass.)
        let nothing_to_free = self.engine.ks.dirty_len() == 0 && !self.engine.saving();
        if over && nothing_to_free && !self.warned_not_cache {
            self.warned_not_cache = true;
            log::warn!(
                "memory is over maxmemory ({counted} bytes used beyond startup) with no cache \
                 left to free: raise maxmemory"
            );
        }
        self.shared.mem_delay = !nothing_to_free && over;
        self.shared.oom = false;
        self.release_mem_waiters();
    }

    fn flush_all(&mut self) {
        let mut list = std::mem::take(&mut self.to_flush);
        list.sort_unstable();
        list.dedup();
        for t in list {
            self.flush(t);
        }
    }

    pub(crate) fn flush(&mut self, t: usize) {
        let Some(c) = self.conns.get_mut(&t) else {
            return;
        };
        let end = c.held_from.unwrap_or(c.out.buf.len());
        while c.written < end {
            match c.sock.write(&c.out.buf[c.written..end]) {
                Ok(0) => break,
                Ok(n) => c.written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    c.out.buf.clear();
                    c.written = 0;
                    c.close_after_write = true;
                    break;
                }
            }
        }
        if c.written == c.out.buf.len() {
            c.out.buf.clear();
            c.written = 0;
            if c.out.buf.capacity() > 1 << 20 {
                c.out.buf.shrink_to(64 * 1024);
            }
            if c.close_after_write {
                return self.close(t);
            }
        }
        // A client that does not read its replies (a slow subscriber, a stuck pipeline) is
        // disconnected rather than allowed to hold unbounded memory, as Redis does.
        let pending = c.out.buf.len() - c.written;
        let limit = if c.state.subscriptions() > 0 {
            32 << 20
        } else {
            1 << 30
        };
        if pending > limit {
            log::warn!(
                "closing client {}: output buffer over {limit} bytes",
                c.state.id
            );
            return self.close(t);
        }
        let want_write = c.written < end;
        if want_write != c.writable_interest {
            let interest = if want_write {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let _ = self
                .poll
                .registry()
                .reregister(&mut c.sock, Token(t), interest);
            c.writable_interest = want_write;
        }
    }

    pub(crate) fn close(&mut self, t: usize) {
        self.scripting.forget(t);
        let was_tracking = self.conns.get(&t).is_some_and(|c| c.state.tracking.on);
        if let Some(mut c) = self.conns.remove(&t) {
            let _ = self.poll.registry().deregister(&mut c.sock);
            self.ids.remove(&c.state.id);
            self.shared.pubsub.forget_client(&mut c.state);
            if c.pending.is_some() {
                self.unpark(t);
            }
            for (db, key) in std::mem::take(&mut c.pins) {
                self.engine.ks.unpin(db, &key);
            }
            self.mem_waiters.retain(|&x| x != t);
        }
        self.tracking_closed(was_tracking);
        self.shared.connected_clients = self.conns.len();
        self.shared.parked_clients = self.conns.values().filter(|c| c.waiting_keys > 0).count();
    }
}
