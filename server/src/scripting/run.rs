//! Running a script or function: the server side of `redis.call` and friends.
//!
//! A run is like an EXEC: the caller's commands run one after the other through the server's
//! own call path (statistics, MONITOR, keyspace notifications, WATCH invalidation and
//! blocked-client wake-ups happen as for a client's commands), inside the one save group that
//! `execute` opens around the EVAL. Keys a script did not declare and that are not in memory
//! abandon the run (if nothing was written yet) and it starts again once they are loaded.

use super::convert::{error_of, reply_to_lua, write_value};
use super::vm::{self, LuaFailure, COUNTED, HOST};
use super::{RunState, ScriptFlags};
use crate::commands::{self, flags, Action, CmdResult};
use crate::reply::Reply;
use crate::server::Server;
use kvtier_core::Residency;
use mlua::{Function, Lua, MultiValue, Value};
use std::cell::RefCell;
use std::time::Instant;

/// Commands a script may not call (Redis's `noscript` commands, blocking ones included).
const NOT_IN_SCRIPTS: &[&str] = &[
    "auth",
    "hello",
    "multi",
    "exec",
    "discard",
    "watch",
    "unwatch",
    "eval",
    "evalsha",
    "eval_ro",
    "evalsha_ro",
    "fcall",
    "fcall_ro",
    "function",
    "script",
    "subscribe",
    "psubscribe",
    "unsubscribe",
    "punsubscribe",
    "ssubscribe",
    "sunsubscribe",
    "monitor",
    "client",
    "config",
    "acl",
    "role",
    "latency",
    "replicaof",
    "slaveof",
    "failover",
    "bgrewriteaof",
    "shutdown",
    "save",
    "bgsave",
    "debug",
    "reset",
    "quit",
    "sync",
    "psync",
    "replconf",
    "wait",
    "blpop",
    "brpop",
    "brpoplpush",
    "blmove",
    "blmpop",
    "bzpopmin",
    "bzpopmax",
    "bzmpop",
];

/// `redis.call`s a run abandoned for cold keys goes on making to find more of them.
const COLD_EXPLORE_CALLS: u32 = 100_000;

/// How long a run abandoned for cold keys may go on looking for more.
const COLD_EXPLORE_TIME: std::time::Duration = std::time::Duration::from_millis(200);

/// Lua heap above which a full collection follows a run.
const GC_AFTER_RUN_BYTES: usize = 64 << 20;

/// Retries of one request for cold keys before the script is refused.
const MAX_COLD_RETRIES: u32 = 64;

/// What a script run is for.
pub struct Invocation {
    pub func: Function,
    pub flags: ScriptFlags,
    /// sha (EVAL) or function name (FCALL).
    pub name: String,
    pub is_function: bool,
    pub read_only: bool,
    pub keys: Vec<Vec<u8>>,
    pub argv: Vec<Vec<u8>>,
}

fn err_table(lua: &Lua, msg: &str) -> mlua::Result<mlua::Table> {
    let t = lua.create_table()?;
    t.raw_set("err", msg)?;
    Ok(t)
}

fn failed(lua: &Lua, msg: &str) -> mlua::Result<MultiValue> {
    Ok(MultiValue::from_iter([
        Value::Table(err_table(lua, msg)?),
        Value::Boolean(true),
    ]))
}

impl Server {
    /// Runs a script for client `t` and writes its reply. `args` is the client's request (kept
    /// to run it again after loading cold keys).
    pub(crate) fn run_script(&mut self, t: usize, inv: Invocation, args: &[Vec<u8>]) -> CmdResult {
        let f = inv.flags;
        if self.shared.oom && f.declared && !f.no_writes && !f.allow_oom && !inv.read_only {
            // A script that says it may write is refused up front when memory is full, as in
            // Redis (one without a shebang is checked command by command instead).
            return Err("OOM command not allowed when used memory > 'maxmemory'.".into());
        }
        let Some(conn) = self.conns.get_mut(&t) else {
            return Ok(());
        };
        let caller_db = conn.state.db;
        let before = conn.out.buf.len();
        let was_in_exec = conn.state.in_exec;
        // Keyspace-wide commands then answer from memory and the store synchronously, as
        // inside EXEC.
        conn.state.in_exec = true;
        self.scripting.run = Some(RunState {
            client: t,
            name: inv.name.clone(),
            is_function: inv.is_function,
            flags: inv.flags,
            read_only: inv.read_only || inv.flags.no_writes,
            resp3: false,
            wrote: false,
            started: Instant::now(),
            command: args.to_vec(),
            busy: false,
            killed: false,
            cold_keys: Vec::new(),
            may_retry: !was_in_exec,
            cold_stop: false,
            cold_calls: 0,
        });
        let lua = self.scripting.lua.clone();
        let outcome = self.call_lua(&lua, &inv);
        if lua.used_memory() > GC_AFTER_RUN_BYTES {
            // A script that built much garbage: free it now rather than keep it until the
            // incremental collector gets there.
            let _ = lua.gc_collect();
        }
        let run = self.scripting.run.take().expect("set above");
        let Some(conn) = self.conns.get_mut(&t) else {
            return Ok(());
        };
        conn.state.db = caller_db;
        conn.state.in_exec = was_in_exec;
        if run.busy {
            log::warn!(
                "slow script {} finished after {} ms",
                run.name,
                run.started.elapsed().as_millis()
            );
        }
        let retries = self.scripting.retry_count.get(&t).copied().unwrap_or(0);
        let retry = !run.cold_keys.is_empty() && run.may_retry && !run.wrote && !run.killed;
        if retry && retries >= MAX_COLD_RETRIES {
            self.scripting.extra_keys.remove(&t);
            self.scripting.retry_count.remove(&t);
            self.shared.scripts.cold_refused += 1;
            return Err(
                "ERR kvtier: the script kept touching keys that are not in memory \
                 (declare the keys a script uses in numkeys)"
                    .into(),
            );
        }
        if retry {
            self.scripting.retry_count.insert(t, retries + 1);
            // Run again from the start once the keys are in memory (server.rs try_run).
            let extra = self.scripting.extra_keys.entry(t).or_default();
            for k in run.cold_keys {
                if !extra.contains(&k) {
                    extra.push(k);
                }
            }
            self.shared.scripts.cold_retries += 1;
            self.scripting.retry.push(t);
            conn.wait = crate::conn::Wait::Keys {
                cmd: args.to_vec(),
                missing: 0,
            };
            return Ok(());
        }
        self.scripting.extra_keys.remove(&t);
        self.scripting.retry_count.remove(&t);
        let conn = self.conns.get_mut(&t).expect("live");
        if run.killed {
            // Redis words it so for functions too.
            let msg = "ERR Script killed by user with SCRIPT KILL...";
            let source = match &outcome {
                Ok(Err(f)) => f.source.clone(),
                _ => None,
            };
            let killed = LuaFailure {
                msg: msg.into(),
                table: true,
                source,
                plain: false,
                counted: false,
            };
            return Err(failure_text(&killed, &run).into());
        }
        if conn.exec_io > 0 && !was_in_exec {
            // A FLUSHALL/FLUSHDB in the script: the reply waits until the store is cleared.
            conn.wait = crate::conn::Wait::Io;
            conn.held_from = Some(before);
        }
        // A script returning or raising an error table fails as the command; an error its
        // `redis.call` already counted is not counted again (only as the script's failed call).
        let (result, counted) = match outcome {
            Ok(Ok(v)) => match error_of(&v) {
                Some((e, counted)) => (Err(e.into()), counted),
                None => {
                    write_value(&mut conn.out, &v, run.resp3, 0);
                    (Ok(()), false)
                }
            },
            Ok(Err(f)) => (Err(failure_text(&f, &run).into()), f.counted),
            Err(e) => (Err(format!("ERR Error running script: {e}").into()), false),
        };
        self.scripting.error_counted = counted;
        result
    }

    /// Calls the Lua function with the server reachable from `redis.call` for the duration.
    fn call_lua(&mut self, lua: &Lua, inv: &Invocation) -> mlua::Result<Result<Value, LuaFailure>> {
        let bulk_table = |items: &[Vec<u8>]| -> mlua::Result<mlua::Table> {
            lua.create_sequence_from(
                items
                    .iter()
                    .map(|a| lua.create_string(a))
                    .collect::<mlua::Result<Vec<_>>>()?,
            )
        };
        let keys = bulk_table(&inv.keys)?;
        let argv = bulk_table(&inv.argv)?;
        let fargs = if inv.is_function {
            // Functions get their keys and arguments as parameters; KEYS/ARGV do not exist.
            let g = lua.globals();
            g.raw_set("KEYS", Value::Nil)?;
            g.raw_set("ARGV", Value::Nil)?;
            MultiValue::from_iter([Value::Table(keys), Value::Table(argv)])
        } else {
            let g = lua.globals();
            g.raw_set("KEYS", keys)?;
            g.raw_set("ARGV", argv)?;
            MultiValue::new()
        };
        let cell = RefCell::new(self);
        let result = lua.scope(|scope| {
            let host = scope.create_function(|lua, args: MultiValue| {
                let mut server = cell
                    .try_borrow_mut()
                    .map_err(|_| mlua::Error::runtime("re-entrant call"))?;
                server.script_host(lua, args)
            })?;
            lua.set_named_registry_value(HOST, host)?;
            let r = vm::protected_call(lua, &inv.func, fargs);
            lua.unset_named_registry_value(HOST)?;
            r
        });
        // Forget the values of this run (KEYS/ARGV hold the arguments).
        let g = lua.globals();
        let _ = g.raw_set("KEYS", lua.create_table()?);
        let _ = g.raw_set("ARGV", lua.create_table()?);
        result
    }

    /// The `host(op, …)` entry point of the Lua wrappers.
    fn script_host(&mut self, lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
        let mut it = args.into_iter();
        let op = match it.next() {
            Some(Value::String(s)) => s.to_string_lossy(),
            _ => return Ok(MultiValue::new()),
        };
        let rest: Vec<Value> = it.collect();
        let ok = |v: Value| Ok(MultiValue::from_iter([v, Value::Boolean(false)]));
        match op.as_str() {
            "call" => {
                let raise = matches!(rest.first(), Some(Value::Boolean(true)));
                let (v, is_err) = self.script_call(lua, &rest[1.min(rest.len())..])?;
                Ok(MultiValue::from_iter([v, Value::Boolean(is_err && raise)]))
            }
            "stopping" => {
                let s = self.scripting.run.as_ref().is_some_and(|r| r.stopping());
                Ok(MultiValue::from_iter([Value::Boolean(s)]))
            }
            "tick" => {
                let stop = self.script_tick();
                Ok(MultiValue::from_iter([Value::Boolean(stop)]))
            }
            "setresp" => {
                if rest.len() != 1 {
                    return failed(lua, "ERR redis.setresp() requires one argument.");
                }
                let n = match &rest[0] {
                    Value::Integer(i) => *i,
                    Value::Number(n) => *n as i64,
                    _ => 0,
                };
                if n != 2 && n != 3 {
                    return failed(lua, "ERR RESP version must be 2 or 3.");
                }
                if let Some(r) = self.scripting.run.as_mut() {
                    r.resp3 = n == 3;
                }
                ok(Value::Nil)
            }
            "set_repl" => {
                if rest.len() != 1 {
                    return failed(lua, "ERR redis.set_repl() requires one argument.");
                }
                let n = match &rest[0] {
                    Value::Integer(i) => *i,
                    Value::Number(n) => *n as i64,
                    _ => -1,
                };
                if !(0..=3).contains(&n) {
                    return failed(
                        lua,
                        "ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
                    );
                }
                // Accepted: kvtier has no replication.
                ok(Value::Nil)
            }
            "log" => {
                if rest.len() < 2 {
                    return failed(lua, "ERR redis.log() requires two arguments or more.");
                }
                let level = match &rest[0] {
                    Value::Integer(i) => *i,
                    Value::Number(n) => *n as i64,
                    _ => return failed(lua, "ERR First argument must be a number (log level)."),
                };
                if !(0..=3).contains(&level) {
                    return failed(lua, "ERR Invalid debug level.");
                }
                let text: Vec<String> = rest[1..]
                    .iter()
                    .filter_map(|v| lua.coerce_string(v.clone()).ok().flatten())
                    .map(|s| s.to_string_lossy())
                    .collect();
                let line = text.join(" ");
                match level {
                    0 => log::debug!("{line}"),
                    1 => log::info!("{line}"),
                    2 => log::info!("{line}"),
                    _ => log::warn!("{line}"),
                }
                ok(Value::Nil)
            }
            _ => ok(Value::Nil),
        }
    }

    /// A `redis.call` refused before its command runs: counted now (INFO errorstats, and the
    /// command's `rejected_calls` when there is one), as Redis counts it, and marked so as the
    /// script's error it is not counted again.
    fn refuse_call(
        &mut self,
        lua: &Lua,
        msg: &str,
        cmd: Option<&'static str>,
    ) -> mlua::Result<(Value, bool)> {
        let code = msg.split_whitespace().next().unwrap_or("ERR");
        self.count_error(code, cmd, true);
        let t = err_table(lua, msg)?;
        t.raw_set(COUNTED, true)?;
        Ok((Value::Table(t), true))
    }

    /// `redis.call` / `redis.pcall`: returns the reply as a Lua value and whether it is an
    /// error. Errors about the call itself (no arguments, an argument of the wrong type) are
    /// not counted, as in Redis; the refusals of the command are (`refuse_call`), and so are the
    /// command's own errors (by `execute`).
    fn script_call(&mut self, lua: &Lua, args: &[Value]) -> mlua::Result<(Value, bool)> {
        let fail = |msg: &str| -> mlua::Result<(Value, bool)> {
            Ok((Value::Table(err_table(lua, msg)?), true))
        };
        if self.scripting.run.as_ref().is_some_and(|r| r.stopping()) {
            return fail("ERR Script is being stopped");
        }
        if args.is_empty() {
            return fail("ERR Please specify at least one argument for this redis lib call");
        }
        let mut argv: Vec<Vec<u8>> = Vec::with_capacity(args.len());
        for a in args {
            match a {
                Value::String(s) => argv.push(s.as_bytes().to_vec()),
                Value::Integer(_) | Value::Number(_) => match lua.coerce_string(a.clone())? {
                    Some(s) => argv.push(s.as_bytes().to_vec()),
                    None => {
                        return fail(
                            "ERR Lua redis lib command arguments must be strings or integers",
                        )
                    }
                },
                _ => {
                    return fail("ERR Lua redis lib command arguments must be strings or integers")
                }
            }
        }
        let Some(spec) = commands::lookup(&argv[0]) else {
            return self.refuse_call(lua, "ERR Unknown Redis command called from script", None);
        };
        let n = argv.len() as i32;
        if (spec.arity > 0 && n != spec.arity) || (spec.arity < 0 && n < -spec.arity) {
            let msg = "ERR Wrong number of args calling Redis command from script";
            return self.refuse_call(lua, msg, Some(spec.name));
        }
        // (Under `config|get` for a container's subcommand, as commandstats counts it.)
        let refused = crate::subcommands::stats_name(spec, &argv);
        if NOT_IN_SCRIPTS.contains(&spec.name) {
            let msg = "ERR This Redis command is not allowed from script";
            return self.refuse_call(lua, msg, refused);
        }
        // The caller's ACL user applies to what its script runs, as in Redis (acl/).
        let caller = self.scripting.run.as_ref().expect("inside a run").client;
        if let Err(denied) = self
            .shared
            .acl
            .check(&self.conns[&caller].state.user, spec, &argv)
        {
            return self.refuse_call(lua, &denied.script_message(), refused);
        }
        let t = self.scripting.run.as_ref().expect("inside a run").client;
        // The caller's ACL applies to what the script runs, as in Redis.
        let conn = &self.conns[&t];
        let config = &self.shared.config;
        if let Err(denied) = self.shared.acl.check_request(
            &conn.state,
            || conn.client_list_line(Instant::now()),
            spec,
            &argv,
            || config.settings().acllog_max_len as usize,
        ) {
            let msg = match denied {
                crate::acl::Denied::Command(_) => {
                    "ERR The user executing the script can't run this command or subcommand"
                }
                crate::acl::Denied::Key(_) => "ERR The user executing the script can't access at least one of the keys mentioned in the command arguments",
                crate::acl::Denied::Channel(_) => "ERR The user executing the script can't publish to the channel mentioned in the command",
                crate::acl::Denied::NoUser => "NOPERM this user was deleted",
            };
            return self.refuse_call(lua, msg, refused);
        }
        let run = self.scripting.run.as_ref().expect("inside a run");
        let (read_only, allow_oom, declared) =
            (run.read_only, run.flags.allow_oom, run.flags.declared);
        if spec.has(flags::WRITE) && read_only {
            let msg = "ERR Write commands are not allowed from read-only scripts.";
            return self.refuse_call(lua, msg, refused);
        }
        if self.shared.oom && spec.has(flags::DENYOOM) && !(declared && allow_oom) {
            let msg = "OOM command not allowed when used memory > 'maxmemory'.";
            return self.refuse_call(lua, msg, refused);
        }
        // The command's keys must be in memory, as for a client's command.
        let db = self.conns[&t].state.db;
        let mut cold = Vec::new();
        if !self.shared.runs_blind(spec, &argv) {
            for k in spec.key_args(&argv) {
                if self.engine.ensure(db, k) == Residency::Unknown {
                    cold.push((db, k.to_vec()));
                }
            }
        }
        let run = self.scripting.run.as_mut().expect("inside a run");
        if !run.cold_keys.is_empty() {
            // The run will be discarded: it goes on only to find more cold keys, and stops
            // before any write or after a bounded number of calls.
            run.cold_calls += 1;
            if spec.has(flags::WRITE) || run.cold_calls > COLD_EXPLORE_CALLS {
                run.cold_stop = true;
                return fail("ERR kvtier: script stopped to load keys");
            }
        }
        if !cold.is_empty() {
            if run.may_retry && !run.wrote {
                run.cold_keys.extend(cold);
                // As if the keys were missing; the value is never seen by the client.
                let v = if run.resp3 {
                    Value::Nil
                } else {
                    Value::Boolean(false)
                };
                return Ok((v, false));
            }
            // After a write (or inside EXEC) the run cannot be abandoned: read the keys now, on
            // this thread (counted in INFO `sync_loads`), so the script sees the right values.
            for (db, k) in &cold {
                if let Err(e) = self.engine.load_now(*db, k) {
                    self.shared.scripts.cold_refused += 1;
                    let msg = format!(
                        "IOERR kvtier: loading key '{}' from the disk store failed: {e}",
                        String::from_utf8_lossy(k)
                    );
                    return self.refuse_call(lua, &msg, refused);
                }
            }
            self.shared.scripts.cold_sync_loads += cold.len() as u64;
        }
        let resp3 = self.scripting.run.as_ref().is_some_and(|r| r.resp3);
        let mut reply = Reply {
            buf: Vec::new(),
            resp3,
        };
        let conn = self.conns.get_mut(&t).expect("live");
        std::mem::swap(&mut conn.out, &mut reply);
        let (action, err) = self.execute(t, spec, &argv);
        match action {
            Action::Clear(db) => self.clear_nested(t, db),
            Action::Publish { .. } | Action::SwapDb(..) | Action::None => {
                self.perform(t, action, &argv)
            }
            // Nothing else can come from the commands a script may call.
            _ => {}
        }
        let conn = self.conns.get_mut(&t).expect("live");
        std::mem::swap(&mut conn.out, &mut reply);
        let is_err = err.is_some();
        if spec.has(flags::WRITE) && !is_err {
            if let Some(r) = self.scripting.run.as_mut() {
                r.wrote = true;
            }
        }
        if reply.buf.is_empty() {
            return Ok((Value::Nil, false));
        }
        let mut pos = 0;
        let v = reply_to_lua(lua, &reply.buf, &mut pos, resp3)?;
        Ok((v, is_err))
    }

    /// Called by the instruction hook: whether the script must stop. Past the busy threshold,
    /// other clients are served -BUSY meanwhile.
    fn script_tick(&mut self) -> bool {
        let threshold = self.shared.config.settings().busy_reply_threshold;
        let Some(run) = self.scripting.run.as_mut() else {
            return false;
        };
        if threshold > 0 && run.started.elapsed().as_millis() as u64 >= threshold {
            if !run.busy {
                run.busy = true;
                self.shared.scripts.busy_runs += 1;
                log::warn!(
                    "script {} is still running after {} ms: other clients get -BUSY",
                    run.name,
                    threshold
                );
            }
            self.serve_busy();
        }
        if let Some(run) = self.scripting.run.as_mut() {
            if !run.cold_keys.is_empty() && run.started.elapsed() >= COLD_EXPLORE_TIME {
                run.cold_stop = true;
            }
        }
        self.scripting.run.as_ref().is_some_and(|r| r.stopping())
    }
}

/// Redis's text for a script error: `<message> script: <name>, on @user_script:<line>.`
fn failure_text(f: &LuaFailure, run: &RunState) -> String {
    let msg = if f.table {
        f.msg.clone()
    } else {
        format!("ERR {}", f.msg)
    };
    if f.plain {
        return msg;
    }
    let (src, line) = f.source.clone().unwrap_or_else(|| {
        (
            if run.is_function {
                "@user_function"
            } else {
                "@user_script"
            }
            .to_string(),
            0,
        )
    });
    format!("{msg} script: {}, on {src}:{line}.", run.name)
}
