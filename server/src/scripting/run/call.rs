//! `redis.call` / `redis.pcall`: the checks a script's command passes (allowed in scripts,
//! ACL, read-only, OOM, cold keys) before it runs through the server's own call path.

use super::super::convert::reply_to_lua;
use super::super::vm::COUNTED;
use super::host::err_table;
use crate::commands::{self, flags, Action};
use crate::reply::Reply;
use crate::server::Server;
use kvtier_core::Residency;
use mlua::{Lua, Value};
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

impl Server {
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
    pub(super) fn script_call(&mut self, lua: &Lua, args: &[Value]) -> mlua::Result<(Value, bool)> {
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
        if !crate::commands::arity_accepts(spec.arity, argv.len()) {
            let msg = "ERR Wrong number of args calling Redis command from script";
            return self.refuse_call(lua, msg, Some(spec.name));
        }
        // A container's subcommand is looked up and checked like a command, as in Redis.
        if let Err(refusal) = crate::subcommands::check(spec, &argv) {
            let msg = match refusal {
                crate::subcommands::Refusal::Unknown => {
                    "ERR Unknown Redis command called from script"
                }
                crate::subcommands::Refusal::Arity(_) => {
                    "ERR Wrong number of args calling Redis command from script"
                }
            };
            return self.refuse_call(lua, msg, refusal.stats_name());
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
        if read_only && (spec.has(flags::WRITE) || crate::commands::pause::may_replicate(&argv[0]))
        {
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
        // The script ran Lua since its last call: that time is not this command's.
        self.clock_mark = None;
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
}
