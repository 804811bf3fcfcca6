//! Lua scripting (EVAL, EVALSHA, SCRIPT) and Redis Functions (FUNCTION, FCALL), Redis 7.0
//! semantics over Lua 5.1 (mlua, built from source).
//!
//! The Lua state lives in [`Scripting`], owned by the server. A script runs inside the server
//! loop like a MULTI/EXEC transaction: `redis.call` goes through the same path as a client's
//! command (server.rs `call`), every write of the run lands in one save group, and other
//! clients are served only `-BUSY` while a long script runs (see `busy.rs`).

pub mod busy;
pub mod commands;
pub mod convert;
pub mod functions;
pub mod libs;
pub mod run;
pub mod vm;

use std::collections::HashMap;
use std::time::Instant;

/// Hex SHA1 of a script body, as EVALSHA names it.
pub fn sha1_hex(body: &[u8]) -> String {
    sha1_smol::Sha1::from(body).digest().to_string()
}

/// Script flags from a shebang line or a function's registration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScriptFlags {
    pub no_writes: bool,
    pub allow_oom: bool,
    pub allow_stale: bool,
    pub no_cluster: bool,
    pub allow_cross_slot: bool,
    /// The script had a shebang: flags apply (a script without one keeps Redis 6 behaviour).
    pub declared: bool,
}

impl ScriptFlags {
    pub fn set(&mut self, name: &str) -> Result<(), String> {
        match name {
            "no-writes" => self.no_writes = true,
            "allow-oom" => self.allow_oom = true,
            "allow-stale" => self.allow_stale = true,
            "no-cluster" => self.no_cluster = true,
            "allow-cross-slot-keys" => self.allow_cross_slot = true,
            _ => return Err(name.to_string()),
        }
        Ok(())
    }

    /// Names in Redis's order (FUNCTION LIST).
    pub fn names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.no_writes {
            v.push("no-writes");
        }
        if self.allow_oom {
            v.push("allow-oom");
        }
        if self.allow_stale {
            v.push("allow-stale");
        }
        if self.no_cluster {
            v.push("no-cluster");
        }
        if self.allow_cross_slot {
            v.push("allow-cross-slot-keys");
        }
        v
    }
}

/// A script in the EVAL cache.
pub struct Script {
    pub func: mlua::Function,
    pub flags: ScriptFlags,
}

/// The state of the script running now (there is at most one: the server is single threaded).
#[derive(Debug)]
pub struct RunState {
    /// Connection token of the caller.
    pub client: usize,
    /// `sha` of an EVAL script, or the function name of an FCALL.
    pub name: String,
    pub is_function: bool,
    pub flags: ScriptFlags,
    /// EVAL_RO / FCALL_RO, or the `no-writes` flag.
    pub read_only: bool,
    /// `redis.setresp(3)` was called.
    pub resp3: bool,
    /// A write command of the script succeeded: the run can no longer be undone.
    pub wrote: bool,
    pub started: Instant,
    /// The request that started the run (FUNCTION STATS shows it).
    pub command: Vec<Vec<u8>>,
    /// Past the busy threshold: other clients are answered -BUSY.
    pub busy: bool,
    /// SCRIPT KILL / FUNCTION KILL asked to stop the run.
    pub killed: bool,
    /// The script touched keys that are not in memory: the run is abandoned and retried once
    /// they are loaded.
    pub cold_keys: Vec<(u32, Vec<u8>)>,
    /// Whether a retry is possible (not inside EXEC, not after a write).
    pub may_retry: bool,
    /// Cold keys were met and the run stops here (a write came, or enough was explored).
    pub cold_stop: bool,
    /// `redis.call`s since the first cold key (the rest of the run only looks for more).
    pub cold_calls: u32,
}

impl RunState {
    /// Whether the Lua code must stop as soon as possible.
    pub fn stopping(&self) -> bool {
        self.killed || self.cold_stop
    }
}

/// Scripting counters shown by INFO (kept in `Shared`, which INFO reads).
#[derive(Debug, Default, Clone)]
pub struct ScriptStats {
    /// Script runs abandoned because they touched a key not in memory, then run again.
    pub cold_retries: u64,
    /// `redis.call`s refused because a key was not in memory after the script wrote.
    pub cold_refused: u64,
    /// Undeclared cold keys loaded synchronously (the script had already written).
    pub cold_sync_loads: u64,
    /// Runs that went past `busy-reply-threshold`.
    pub busy_runs: u64,
}

/// Everything scripting keeps between runs.
pub struct Scripting {
    pub lua: mlua::Lua,
    pub scripts: HashMap<String, Script>,
    pub run: Option<RunState>,
    /// Keys a script touched undeclared, by connection token: loaded before its next run.
    pub extra_keys: HashMap<usize, Vec<(u32, Vec<u8>)>>,
    /// How many times a connection's request was run again for cold keys.
    pub retry_count: HashMap<usize, u32>,
    /// Connections whose script run was abandoned for cold keys and must be parked again.
    pub retry: Vec<usize>,
    pub functions: functions::Registry,
    /// When the busy pass last looked at the sockets.
    pub last_busy_poll: Option<Instant>,
    /// The error the last run failed with was already counted by its `redis.call` (Redis's
    /// `ignore_error_stats_update`): `Server::execute` counts only the script's failed call.
    pub error_counted: bool,
}

impl Scripting {
    /// The declared `no-writes` flag of the script an EVALSHA(_RO) names or the function an
    /// FCALL(_RO) names: `None` for a script without a shebang (it keeps its command's
    /// flags, as in Redis 6) and for one that is not there.
    pub fn declared_no_writes(&self, args: &[Vec<u8>]) -> Option<bool> {
        let name = args.get(1)?;
        if args[0].len() >= 7 && args[0][..7].eq_ignore_ascii_case(b"evalsha") {
            let sha = String::from_utf8_lossy(name).to_ascii_lowercase();
            let script = self.scripts.get(&sha)?;
            return script.flags.declared.then_some(script.flags.no_writes);
        }
        let fname = String::from_utf8_lossy(name);
        let reg = &self.functions;
        reg.by_fn
            .get(fname.as_ref())
            .and_then(|l| reg.libs.get(l))
            .and_then(|l| l.functions.iter().find(|f| f.name == fname))
            .map(|f| f.flags.no_writes)
    }

    pub fn new() -> Self {
        let lua = vm::new_vm().expect("the Lua state can be created");
        Scripting {
            lua,
            scripts: HashMap::new(),
            run: None,
            extra_keys: HashMap::new(),
            retry_count: HashMap::new(),
            retry: Vec::new(),
            functions: functions::Registry::default(),
            last_busy_poll: None,
            error_counted: false,
        }
    }

    /// Extra keys to load before the client's next script run (undeclared cold keys).
    pub fn extra_keys(&self, t: usize) -> &[(u32, Vec<u8>)] {
        self.extra_keys.get(&t).map_or(&[], |v| v.as_slice())
    }

    /// Drops what was kept for a connection that closed.
    pub fn forget(&mut self, t: usize) {
        self.extra_keys.remove(&t);
        self.retry_count.remove(&t);
        self.retry.retain(|&x| x != t);
    }

    /// Whether a command is one this module runs (it needs the server, not a plain handler).
    pub fn handles(name: &str) -> bool {
        matches!(
            name,
            "eval"
                | "evalsha"
                | "eval_ro"
                | "evalsha_ro"
                | "script"
                | "fcall"
                | "fcall_ro"
                | "function"
        )
    }
}

impl Default for Scripting {
    fn default() -> Self {
        Self::new()
    }
}
