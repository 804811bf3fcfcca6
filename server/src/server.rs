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

/// Applies settings that can change at runtime to the engine.
pub fn apply_config(engine: &mut Engine<Value>, shared: &mut Shared) {
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

/// Current heap bytes as jemalloc counts them.
fn allocated() -> usize {
    let _ = tikv_jemalloc_ctl::epoch::advance();
    tikv_jemalloc_ctl::stats::allocated::read().unwrap_or(0)
}

pub struct Server {
    poll: Poll,
    listener: TcpListener,
    signals: signal_hook_mio::v1_0::Signals,
    engine: Engine<Value>,
    shared: Shared,
    conns: HashMap<usize, Conn>,
    next_token: usize,
    next_client_id: u64,
    /// Clients parked on a key: (db, key) → tokens.
    parked: HashMap<(u32, Vec<u8>), Vec<usize>>,
    /// Barrier / clear token → (client token or None for a signal, what to do).
    io_waiters: HashMap<u64, (Option<usize>, IoThen)>,
    to_flush: Vec<usize>,
    /// Client id → connection token (pub/sub delivery, CLIENT KILL).
    ids: HashMap<u64, usize>,
    /// Clients whose write waits for memory to be freed by saves and eviction.
    mem_waiters: Vec<usize>,
    exit: bool,
}

enum IoThen {
    Barrier(BarrierThen),
    Clear,
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
            exit: false,
        })
    }

    /// Runs until SHUTDOWN or a signal, after everything dirty reached disk.
    pub fn run(&mut self) -> std::io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut last_cron = Instant::now();
        while !self.exit {
            let hz = self.shared.config.get_u64("hz").max(1);
            let period = Duration::from_millis(1000 / hz);
            let timeout = period.saturating_sub(last_cron.elapsed());
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
            if last_cron.elapsed() >= period {
                self.cron();
                last_cron = Instant::now();
            }
            self.enforce_memory();
            self.flush_all();
        }
        self.engine.shutdown();
        Ok(())
    }

    fn on_signal(&mut self) {
        for sig in self.signals.pending() {
            log::warn!("received signal {sig}, scheduling shutdown");
            let token = self.shared.token();
            self.engine.barrier(token);
            self.io_waiters
                .insert(token, (None, IoThen::Barrier(BarrierThen::Shutdown)));
        }
    }

    fn accept(&mut self) {
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
            let laddr = sock.local_addr().map(|a| a.to_string()).unwrap_or_default();
            let authed = self
                .shared
                .config
                .get("requirepass")
                .unwrap_or("")
                .is_empty();
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
        let Some(conn) = self.conns.get_mut(&t) else {
            return;
        };
        let mut closed = false;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match conn.sock.read(&mut chunk) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => {
                    conn.inbuf.extend_from_slice(&chunk[..n]);
                    if conn.inbuf.len() - conn.inpos > limit {
                        log::warn!("closing client {}: query buffer over limit", conn.state.id);
                        closed = true;
                        break;
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
        conn.state.last_interaction = Instant::now();
        self.process_input(t);
        if closed {
            // Replies to what was already read are still flushed when possible.
            self.flush(t);
            self.close(t);
        }
    }

    /// Runs as many complete requests from the client's buffer as it may.
    fn process_input(&mut self, t: usize) {
        let max_bulk = self.shared.config.get_u64("proto-max-bulk-len") as usize;
        loop {
            let Some(conn) = self.conns.get_mut(&t) else {
                return;
            };
            if conn.is_waiting() || conn.close_after_write {
                break;
            }
            let mut pos = conn.inpos;
            let parsed = conn.parser.parse(&conn.inbuf, &mut pos, max_bulk);
            conn.inpos = pos;
            match parsed {
                Ok(Some(args)) if args.is_empty() => continue,
                Ok(Some(args)) => self.handle(t, args),
                Ok(None) => break,
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
    fn handle(&mut self, t: usize, args: Vec<Vec<u8>>) {
        let conn = self.conns.get_mut(&t).expect("live conn");
        let Some(spec) = commands::lookup(&args[0]) else {
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
        if conn.state.subscriptions() > 0 && !conn.out.resp3 && !spec.has(flags::PUBSUB) {
            let msg = format!("ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context", spec.name);
            return self.reply_error(t, &msg, Some(spec.name));
        }
        if let Some(queue) = &mut conn.state.multi {
            if spec.has(flags::NO_MULTI) {
                return self.reply_error(
                    t,
                    "ERR WATCH inside MULTI is not allowed",
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
                // A SELECT queued in the transaction changes the DB of the commands after it.
                let mut db = db;
                let databases = self.engine.ks.databases() as i64;
                for q in queued {
                    if q[0].eq_ignore_ascii_case(b"select") && q.len() == 2 {
                        if let Some(n) =
                            crate::util::parse_i64(&q[1]).filter(|n| (0..databases).contains(n))
                        {
                            db = n as u32;
                        }
                    }
                    keys.extend(self.keys_of(db, q));
                }
            }
            return keys;
        }
        self.keys_of(db, args)
    }

    fn keys_of(&self, db: u32, args: &[Vec<u8>]) -> Vec<(u32, Vec<u8>)> {
        let Some(spec) = commands::lookup(&args[0]) else {
            return Vec::new();
        };
        let mut keys: Vec<(u32, Vec<u8>)> = spec
            .key_args(args)
            .into_iter()
            .map(|k| (db, k.to_vec()))
            .collect();
        let databases = self.engine.ks.databases() as u32;
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
        let args = self
            .conns
            .get_mut(&t)
            .and_then(|c| c.pending.take())
            .expect("pending command");
        let keys = self.needed_keys(t, &args);
        let mut missing = 0;
        for (db, key) in keys {
            if self.engine.ensure(db, &key) == Residency::Unknown {
                let waiters = self.parked.entry((db, key)).or_default();
                if !waiters.contains(&t) {
                    waiters.push(t);
                    missing += 1;
                }
            }
        }
        if missing > 0 {
            let conn = self.conns.get_mut(&t).expect("live");
            conn.pending = Some(args);
            conn.waiting_keys = missing;
            self.shared.parked_clients = self.conns.values().filter(|c| c.waiting_keys > 0).count();
            return;
        }
        let conn = self.conns.get_mut(&t).expect("live");
        conn.waiting_keys = 0;
        if self.shared.mem_delay
            && conn.mem_wait_since.is_none()
            && Self::grows_memory(&conn.state, &args)
        {
            // Backpressure: hold the writer while saves make room (see enforce_memory).
            conn.pending = Some(args);
            conn.mem_wait_since = Some(Instant::now());
            self.mem_waiters.push(t);
            self.shared.delayed_writers = self.mem_waiters.len();
            return;
        }
        conn.mem_wait_since = None;
        if args[0].eq_ignore_ascii_case(b"exec") && conn.state.multi.is_some() {
            self.exec(t);
        } else {
            self.execute(t, &args);
        }
        self.after_command();
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

    /// Runs writers held for memory: all of them once memory is back under the limit or past
    /// the hard limit (they then get -OOM), and any held for over a second (-OOM too).
    fn release_mem_waiters(&mut self) {
        if self.mem_waiters.is_empty() {
            return;
        }
        let now = Instant::now();
        let all = !self.shared.mem_delay;
        let waiters = std::mem::take(&mut self.mem_waiters);
        for t in waiters {
            let Some(c) = self.conns.get_mut(&t) else {
                continue;
            };
            let late = c
                .mem_wait_since
                .is_some_and(|s| now.duration_since(s) >= Duration::from_secs(1));
            if !(all || late) {
                self.mem_waiters.push(t);
                continue;
            }
            if late && self.shared.mem_delay {
                c.pending = None;
                c.mem_wait_since = None;
                c.state.multi = None;
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
    fn call(&mut self, t: usize, spec: &CommandSpec, args: &[Vec<u8>]) -> Action {
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
        if spec.name == "watch" {
            self.engine.ks.track_touched(true);
        }
        if spec.name == "info" {
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
    }

    fn perform(&mut self, t: usize, action: Action, args: &[Vec<u8>]) {
        match action {
            Action::None => {}
            Action::Close => {
                if let Some(c) = self.conns.get_mut(&t) {
                    c.close_after_write = true;
                }
            }
            Action::Sleep(d) => std::thread::sleep(d),
            Action::Barrier(then) => {
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
                self.engine.clear(token, db);
                // Every watcher of a flushed DB sees its keys as modified.
                for c in self.conns.values_mut() {
                    if c.state
                        .watched
                        .iter()
                        .any(|(d, _)| db.is_none_or(|x| x == *d))
                    {
                        c.state.watch_dirty = true;
                    }
                }
            }
            Action::Block { timeout_ms } => self.block(t, args, timeout_ms),
            Action::Publish { channel, message } => {
                let n = self.publish(&channel, &message);
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
        let dirty = std::mem::take(&mut conn.state.watch_dirty);
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
        conn.out.array(queued.len());
        conn.state.in_exec = true;
        // One save group for the whole transaction: it reaches disk in one batch.
        self.engine.ks.begin_group();
        let oom = std::mem::replace(&mut self.shared.oom, false);
        for q in &queued {
            let spec = commands::lookup(&q[0]).expect("checked at queue time");
            let action = self.call(t, spec, q);
            self.shared
                .command_stats
                .entry(spec.name)
                .or_default()
                .calls += 1;
            self.shared.total_commands += 1;
            match action {
                // Inside EXEC, barriers and clears still happen, after the reply.
                Action::Barrier(BarrierThen::Save { .. }) => {
                    let token = self.shared.token();
                    self.engine.barrier(token);
                }
                Action::Clear(db) => {
                    let token = self.shared.token();
                    self.engine.clear(token, db);
                    if let Some(c) = self.conns.get_mut(&t) {
                        c.out.ok();
                    }
                }
                a => self.perform(t, a, q),
            }
        }
        self.shared.oom = oom;
        self.engine.ks.end_group();
        if let Some(c) = self.conns.get_mut(&t) {
            c.state.in_exec = false;
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

    /// Parks a client in a blocking command until one of its keys changes or the timeout.
    fn block(&mut self, t: usize, args: &[Vec<u8>], timeout_ms: u64) {
        let db = self.conns[&t].state.db;
        let keys = self.keys_of(db, args);
        let Some(c) = self.conns.get_mut(&t) else {
            return;
        };
        c.state.blocked_on = keys;
        c.state.block_deadline =
            (timeout_ms > 0).then(|| Instant::now() + Duration::from_millis(timeout_ms));
        c.blocked = Some(args.to_vec());
        self.engine.ks.track_touched(true);
        self.shared.blocked_clients = self.conns.values().filter(|c| c.blocked.is_some()).count();
    }

    /// Re-runs blocked commands whose keys were touched.
    fn wake_blocked(&mut self, touched: &[(u32, Vec<u8>)]) {
        let ready: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.blocked.is_some() && c.state.blocked_on.iter().any(|k| touched.contains(k))
            })
            .map(|(t, _)| *t)
            .collect();
        for t in ready {
            let Some(c) = self.conns.get_mut(&t) else {
                continue;
            };
            let Some(args) = c.blocked.take() else {
                continue;
            };
            c.state.blocked_on.clear();
            c.state.block_deadline = None;
            c.pending = Some(args);
            self.try_run(t);
            self.process_input(t);
        }
        self.shared.blocked_clients = self.conns.values().filter(|c| c.blocked.is_some()).count();
    }

    /// Marks watchers of touched keys dirty.
    fn after_command(&mut self) {
        let touched = self.engine.ks.take_touched();
        // Tracking is only on while someone watches or blocks; nothing touched, nothing to do.
        if touched.is_empty() {
            return;
        }
        {
            for c in self.conns.values_mut() {
                if !c.state.watched.is_empty()
                    && c.state.watched.iter().any(|w| touched.contains(w))
                {
                    c.state.watch_dirty = true;
                }
            }
        }
        if !touched.is_empty() && self.conns.values().any(|c| c.blocked.is_some()) {
            self.wake_blocked(&touched);
        }
        let tracking = self
            .conns
            .values()
            .any(|c| !c.state.watched.is_empty() || c.blocked.is_some());
        self.engine.ks.track_touched(tracking);
    }

    fn on_io_events(&mut self) {
        let events = self.engine.poll();
        for ev in events {
            match ev {
                Event::KeyReady { db, key } => {
                    for t in self.parked.remove(&(db, key)).unwrap_or_default() {
                        self.key_arrived(t);
                    }
                }
                Event::KeyFailed { db, key, error } => {
                    for t in self.parked.remove(&(db, key)).unwrap_or_default() {
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
                Event::ClearDone { token, result } => {
                    if let Some((Some(t), _)) = self.io_waiters.remove(&token) {
                        if let Some(c) = self.conns.get_mut(&t) {
                            c.waiting_io = false;
                            match result {
                                Ok(()) => c.out.ok(),
                                Err(e) => c.out.error(&format!("ERR flush failed on disk: {e}")),
                            }
                        }
                        self.process_input(t);
                    }
                }
                Event::ScanDone { .. } => {}
            }
        }
    }

    /// Forgets every parking registration of a client.
    fn unpark(&mut self, t: usize) {
        self.parked.retain(|_, v| {
            v.retain(|&x| x != t);
            !v.is_empty()
        });
        if let Some(c) = self.conns.get_mut(&t) {
            c.waiting_keys = 0;
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
                }
            },
        }
        if let Some(t) = client {
            self.process_input(t);
        }
    }

    fn cron(&mut self) {
        self.engine.tick();
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
            if args
                .first()
                .is_some_and(|a| a.eq_ignore_ascii_case(b"blmove"))
            {
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
        // sled allocates from this process's heap too; jemalloc cannot tell its share from the
        // cache's, so its configured cache size is subtracted as an estimate (sled's real use
        // differs: 30-70 MB were seen). RocksDB allocates through the C++ allocator, outside
        // this count, and is bounded by its own settings.
        let store = self.engine.store();
        let backend_heap = if store.name() == "sled" {
            store.memory_usage().unwrap_or(0) as usize
        } else {
            0
        };
        let used = allocated().saturating_sub(backend_heap);
        self.shared.used_memory = used;
        self.shared.used_memory_peak = self.shared.used_memory_peak.max(used);
        let maxmemory = self.shared.config.get_u64("maxmemory") as usize;
        let over = self.engine.enforce_memory(used, maxmemory);
        // Between maxmemory and the hard limit writers wait; past it they are refused.
        let hard = maxmemory + (maxmemory / 8).max(1 << 20);
        self.shared.oom = over && used > hard;
        self.shared.mem_delay = over && !self.shared.oom;
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

    fn flush(&mut self, t: usize) {
        let Some(c) = self.conns.get_mut(&t) else {
            return;
        };
        while c.written < c.out.buf.len() {
            match c.sock.write(&c.out.buf[c.written..]) {
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
        let want_write = c.written < c.out.buf.len();
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

    fn close(&mut self, t: usize) {
        if let Some(mut c) = self.conns.remove(&t) {
            let _ = self.poll.registry().deregister(&mut c.sock);
            self.ids.remove(&c.state.id);
            let channels: Vec<Vec<u8>> = c.state.channels.drain().collect();
            let patterns: Vec<Vec<u8>> = c.state.patterns.drain().collect();
            self.shared.pubsub.forget(c.state.id, &channels, &patterns);
            if c.pending.is_some() {
                self.unpark(t);
            }
            self.mem_waiters.retain(|&x| x != t);
        }
        self.shared.connected_clients = self.conns.len();
        self.shared.parked_clients = self.conns.values().filter(|c| c.waiting_keys > 0).count();
    }
}
