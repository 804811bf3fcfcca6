//! Running a script or function: the server side of `redis.call` and friends.
//!
//! A run is like an EXEC: the caller's commands run one after the other through the server's
//! own call path (statistics, MONITOR, keyspace notifications, WATCH invalidation and
//! blocked-client wake-ups happen as for a client's commands), inside the one save group that
//! `execute` opens around the EVAL. Keys a script did not declare and that are not in memory
//! abandon the run (if nothing was written yet) and it starts again once they are loaded.
//!
//! Files: `call` (`redis.call` and its checks), `host` (the other requests of a running
//! script, and the instruction hook); starting a run and turning its outcome into the reply
//! are here.

mod call;
mod host;

use super::convert::{error_of, write_value};
use super::vm::{self, LuaFailure, HOST};
use super::{RunState, ScriptFlags};
use crate::commands::CmdResult;
use crate::server::Server;
use mlua::{Function, Lua, MultiValue, Value};
use std::cell::RefCell;
use std::time::Instant;

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
