//! Serving other clients while a script runs past `busy-reply-threshold` (Redis's BUSY state).
//!
//! The Lua instruction hook calls `serve_busy` now and then; it reads what idle clients sent
//! and checks each request as any other (`handle`), then answers `-BUSY` as Redis 7.0 does
//! (counted as the command's rejected call), except for the few commands Redis serves then:
//! SCRIPT KILL / FUNCTION KILL (which stop the script if it has not written), SHUTDOWN NOSAVE
//! (which ends the process at once, as a crash would: what was acknowledged before the script
//! is durable in the store), FUNCTION STATS, and the client's own MULTI, DISCARD, WATCH…

use crate::commands::{flags, Action, CommandSpec};
use crate::server::Server;
use crate::subcommands;
use std::io::{ErrorKind, Read};
use std::time::{Duration, Instant};

/// How often the busy pass looks at the sockets.
const POLL_EVERY: Duration = Duration::from_millis(10);

impl Server {
    pub(crate) fn serve_busy(&mut self) {
        let Some(run) = self.scripting.run.as_ref() else {
            return;
        };
        if self
            .scripting
            .last_busy_poll
            .is_some_and(|at| at.elapsed() < POLL_EVERY)
        {
            return;
        }
        self.scripting.last_busy_poll = Some(Instant::now());
        let own = run.client;
        self.accept();
        let max_bulk = self.shared.config.settings().proto_max_bulk_len as usize;
        let tokens: Vec<usize> = self.conns.keys().copied().filter(|&t| t != own).collect();
        for t in tokens {
            let Some(conn) = self.conns.get_mut(&t) else {
                continue;
            };
            if conn.is_waiting() {
                // Parked on a key or a barrier: its input is for later.
                continue;
            }
            let mut closed = false;
            let mut chunk = [0u8; 4096];
            loop {
                match conn.sock.read(&mut chunk) {
                    Ok(0) => {
                        closed = true;
                        break;
                    }
                    Ok(n) => conn.inbuf.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => {
                        closed = true;
                        break;
                    }
                }
            }
            let mut requests = Vec::new();
            loop {
                let mut pos = conn.inpos;
                match conn.parser.parse(&conn.inbuf, &mut pos, max_bulk) {
                    Ok(Some(args)) => {
                        conn.inpos = pos;
                        if !args.is_empty() {
                            requests.push(args);
                        }
                    }
                    _ => break,
                }
            }
            conn.compact_input();
            for args in requests {
                // Past QUIT, the rest of the input is not read (as outside a busy script).
                if self.conns.get(&t).is_none_or(|c| c.close_after_write) {
                    break;
                }
                self.handle(t, args);
            }
            self.flush(t);
            if closed {
                self.close(t);
            }
        }
    }

    /// A request of another client while a script is busy, once it has passed the checks every
    /// request goes through first (unknown command, arity, authentication, ACL: see `handle`),
    /// as Redis 7.0 orders them. A subcommand Redis does not have and a subcommand's arity are
    /// refused next; then a command not allowed while a script is busy gets -BUSY (EXEC:
    /// -EXECABORT, its transaction discarded), a rejected call of it, and fails the client's
    /// transaction. The allowed ones run: SCRIPT KILL, FUNCTION KILL / STATS, SHUTDOWN NOSAVE,
    /// MULTI, DISCARD, WATCH, UNWATCH, AUTH, HELLO, RESET, QUIT (queued inside MULTI as usual).
    pub(crate) fn busy_request(
        &mut self,
        t: usize,
        spec: &'static CommandSpec,
        args: Vec<Vec<u8>>,
    ) {
        let Some(run) = self.scripting.run.as_ref() else {
            return;
        };
        let (is_function, wrote) = (run.is_function, run.wrote);
        let busy = if is_function {
            BUSY_FUNCTION
        } else {
            BUSY_SCRIPT
        };
        let in_multi = self.conns.get(&t).is_some_and(|c| c.state.multi.is_some());
        let fail_multi = |server: &mut Server| {
            if let Some(c) = server.conns.get_mut(&t) {
                if c.state.multi.is_some() {
                    c.state.multi_error = true;
                }
            }
        };
        if let Err(refusal) = subcommands::check(spec, &args) {
            fail_multi(self);
            let msg = refusal.error(spec, &args).text().into_owned();
            return self.reply_error(t, &msg, refusal.stats_name());
        }
        let sub = args.get(1).and_then(|name| subcommands::find(spec, name));
        let allowed = sub.map_or(ALLOW_BUSY.contains(&spec.name), |s| s.allow_busy);
        let stat = sub.map_or(spec.name, |s| s.name);
        if !allowed {
            fail_multi(self);
            if spec.name != "exec" {
                return self.reply_error(t, busy, Some(stat));
            }
            // EXEC, in MULTI or not: the transaction is discarded and EXEC rejected.
            if let Some(c) = self.conns.get_mut(&t) {
                let st = &mut c.state;
                st.multi = None;
                st.multi_error = false;
                st.watched.clear();
                st.watch_expires_at = None;
                st.watch_dirty = false;
            }
            let msg = format!("EXECABORT Transaction discarded because of: {busy}");
            return self.reply_error(t, &msg, Some("exec"));
        }
        if in_multi && !spec.has(flags::NO_QUEUE) {
            if let Some(c) = self.conns.get_mut(&t) {
                c.state.multi.get_or_insert_with(Vec::new).push(args);
                c.out.simple("QUEUED");
            }
            return;
        }
        let start = Instant::now();
        let failed = match stat {
            "script|kill" | "function|kill" => {
                let wants_function = stat == "function|kill";
                if wrote {
                    Some("UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.")
                } else if wants_function != is_function {
                    Some(busy)
                } else {
                    if let Some(run) = self.scripting.run.as_mut() {
                        run.killed = true;
                    }
                    if let Some(c) = self.conns.get_mut(&t) {
                        c.out.ok();
                    }
                    None
                }
            }
            // Only a function's run is shown; during EVAL Redis answers -BUSY.
            "function|stats" if !is_function => Some(busy),
            "function|stats" => {
                self.busy_function_stats(t);
                None
            }
            "shutdown"
                if args
                    .iter()
                    .skip(1)
                    .any(|a| a.eq_ignore_ascii_case(b"nosave")) =>
            {
                log::warn!("SHUTDOWN NOSAVE while a script runs: exiting now");
                std::process::exit(0);
            }
            // Saving needs the script to end: refused, as Redis refuses it.
            "shutdown" => Some(busy),
            // MULTI, DISCARD, WATCH, UNWATCH, AUTH, HELLO, RESET, QUIT: their handlers touch
            // only the client's own state.
            _ => {
                let (action, _) = self.execute(t, spec, &args);
                if matches!(action, Action::Close) {
                    self.perform(t, action, &args);
                }
                return;
            }
        };
        self.count_call(stat, start);
        if let Some(msg) = failed {
            if let Some(c) = self.conns.get_mut(&t) {
                c.out.error(msg);
            }
            let code = msg.split(' ').next().unwrap_or("ERR");
            self.count_error(code, Some(stat), false);
        }
    }

    /// FUNCTION STATS while a function runs: its name, command and duration.
    fn busy_function_stats(&mut self, t: usize) {
        let Some(run) = self.scripting.run.as_ref() else {
            return;
        };
        let (name, command, ms) = (
            run.name.clone(),
            run.command.clone(),
            run.started.elapsed().as_millis() as i64,
        );
        let Some(c) = self.conns.get_mut(&t) else {
            return;
        };
        let out = &mut c.out;
        out.map(2);
        out.bulk(b"running_script");
        out.map(3);
        out.bulk(b"name");
        out.bulk(name.as_bytes());
        out.bulk(b"command");
        out.array(command.len());
        for a in &command {
            out.bulk(a);
        }
        out.bulk(b"duration_ms");
        out.int(ms);
        self.scripting.functions.write_engines(out);
    }
}

const BUSY_SCRIPT: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
const BUSY_FUNCTION: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

/// The commands (not containers) Redis 7.0 serves while a script is busy (`allow_busy`); a
/// container's subcommands say so in `subcommands`.
const ALLOW_BUSY: &[&str] = &[
    "auth", "discard", "hello", "multi", "quit", "replconf", "reset", "shutdown", "unwatch",
    "watch",
];
