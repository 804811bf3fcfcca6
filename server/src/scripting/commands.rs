//! EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT. The table entries give arity, flags and key
//! positions (`numkeys` at 2, so declared keys are loaded before the script starts); the work
//! is done by the server (`scripting_command`), which the handlers here never reach.

use super::run::Invocation;
use super::{sha1_hex, Script, ScriptFlags};
use crate::commands::flags::*;
use crate::commands::{cmd, Action, CmdError, CmdResult, CommandSpec, Ctx, KeySpec};
use crate::server::Server;

pub const COMMANDS: &[CommandSpec] = &[
    cmd("eval", -3, NO_QUEUE_NEVER, KeySpec::Numkeys(2), by_server),
    cmd(
        "evalsha",
        -3,
        NO_QUEUE_NEVER,
        KeySpec::Numkeys(2),
        by_server,
    ),
    cmd("eval_ro", -3, READONLY, KeySpec::Numkeys(2), by_server),
    cmd("evalsha_ro", -3, READONLY, KeySpec::Numkeys(2), by_server),
    cmd("script", -2, CONTAINER, KeySpec::None, by_server),
    cmd("fcall", -3, NO_QUEUE_NEVER, KeySpec::Numkeys(2), by_server),
    cmd("fcall_ro", -3, READONLY, KeySpec::Numkeys(2), by_server),
    cmd("function", -2, CONTAINER, KeySpec::None, by_server),
];

/// No extra flags (a name for "queued in MULTI like any command").
const NO_QUEUE_NEVER: u32 = 0;

/// Never called: `Server::call` sends these commands to `scripting_command`.
fn by_server(_ctx: &mut Ctx, _args: &[Vec<u8>]) -> CmdResult {
    Err("ERR internal: scripting command without the server".into())
}

/// The first line of a script starting with `#!`: its flags, or Redis's error.
pub fn parse_shebang(body: &[u8]) -> Result<ScriptFlags, String> {
    if !body.starts_with(b"#!") {
        return Ok(ScriptFlags::default());
    }
    let Some(end) = body.iter().position(|&b| b == b'\n') else {
        return Err("ERR Invalid script shebang".into());
    };
    let line = String::from_utf8_lossy(&body[..end]);
    let mut parts = line.split(' ').filter(|p| !p.is_empty());
    let engine = parts.next().unwrap_or("");
    if engine != "#!lua" {
        return Err(format!("ERR Unexpected engine in script shebang: {engine}"));
    }
    let mut flags = ScriptFlags {
        declared: true,
        ..Default::default()
    };
    for p in parts {
        match p.strip_prefix("flags=") {
            Some(list) => {
                for f in list.split(',').filter(|f| !f.is_empty()) {
                    flags
                        .set(f)
                        .map_err(|f| format!("ERR Unexpected flag in script shebang: {f}"))?;
                }
            }
            None => return Err(format!("ERR Unknown lua shebang option: {p}")),
        }
    }
    Ok(flags)
}

/// A list of arguments.
type Args = Vec<Vec<u8>>;

/// Parses `numkeys` at index 2: (keys, args) or Redis's error text.
pub fn split_keys(args: &[Vec<u8>]) -> Result<(Args, Args), &'static str> {
    let n =
        crate::util::parse_i64(&args[2]).ok_or("ERR value is not an integer or out of range")?;
    if n < 0 {
        return Err("ERR Number of keys can't be negative");
    }
    let n = n as usize;
    if n > args.len() - 3 {
        return Err("ERR Number of keys can't be greater than number of args");
    }
    Ok((args[3..3 + n].to_vec(), args[3 + n..].to_vec()))
}

impl Server {
    /// The server side of the scripting commands (see `Server::call`): as
    /// [`crate::commands::run`], a failure is replied here and returned for the statistics.
    pub(crate) fn scripting_command(
        &mut self,
        t: usize,
        spec: &CommandSpec,
        args: &[Vec<u8>],
    ) -> (Action, Option<CmdError>) {
        // SCRIPT's and FUNCTION's unknown subcommands and wrong arities, as for every
        // container (commands::run).
        let checked = crate::subcommands::check(spec, args).map_err(|r| r.error(spec, args));
        let res = checked.and_then(|()| match spec.name {
            "eval" | "evalsha" | "eval_ro" | "evalsha_ro" => self.eval(t, spec.name, args),
            "script" => self.script(t, args),
            "fcall" | "fcall_ro" => self.fcall(t, spec.name, args),
            "function" => self.function(t, args),
            _ => Ok(()),
        });
        let Err(e) = res else {
            return (Action::None, None);
        };
        if let Some(c) = self.conns.get_mut(&t) {
            c.out.error(&e.text());
        }
        (Action::None, Some(e))
    }

    /// Compiles and caches a script body; returns its sha.
    fn cache_script(&mut self, body: &[u8]) -> Result<String, String> {
        let sha = sha1_hex(body);
        if self.scripting.scripts.contains_key(&sha) {
            return Ok(sha);
        }
        let flags = parse_shebang(body)?;
        let func = super::vm::compile(&self.scripting.lua, body, "user_script")
            .map_err(|m| format!("ERR Error compiling script (new function): {m}"))?;
        self.scripting
            .scripts
            .insert(sha.clone(), Script { func, flags });
        Ok(sha)
    }

    fn eval(&mut self, t: usize, name: &str, args: &[Vec<u8>]) -> CmdResult {
        let (keys, argv) = split_keys(args)?;
        let sha = if name.starts_with("evalsha") {
            let sha = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
            if !self.scripting.scripts.contains_key(&sha) {
                return Err("NOSCRIPT No matching script. Please use EVAL.".into());
            }
            sha
        } else {
            self.cache_script(&args[1])?
        };
        let script = &self.scripting.scripts[&sha];
        let inv = Invocation {
            func: script.func.clone(),
            flags: script.flags,
            name: sha,
            is_function: false,
            read_only: name.ends_with("_ro"),
            keys,
            argv,
        };
        self.run_script(t, inv, args)
    }

    fn script(&mut self, t: usize, args: &[Vec<u8>]) -> CmdResult {
        // (Arities are checked before, from Redis's table: `scripting_command`.)
        let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
        match sub.as_str() {
            "load" => {
                let sha = self.cache_script(&args[2])?;
                self.conns
                    .get_mut(&t)
                    .expect("live")
                    .out
                    .bulk(sha.as_bytes());
            }
            "exists" => {
                let found: Vec<bool> = args[2..]
                    .iter()
                    .map(|s| {
                        let sha = String::from_utf8_lossy(s).to_ascii_lowercase();
                        self.scripting.scripts.contains_key(&sha)
                    })
                    .collect();
                let out = &mut self.conns.get_mut(&t).expect("live").out;
                out.array(found.len());
                for f in found {
                    out.int(f as i64);
                }
            }
            "flush" => {
                let mode_ok = |m: &Vec<u8>| {
                    m.eq_ignore_ascii_case(b"sync") || m.eq_ignore_ascii_case(b"async")
                };
                if args.len() > 3 || !args.get(2).is_none_or(mode_ok) {
                    return Err("ERR SCRIPT FLUSH only support SYNC|ASYNC option".into());
                }
                self.scripting.scripts.clear();
                self.conns.get_mut(&t).expect("live").out.ok();
            }
            // A command runs only when no script does: nothing to kill (a running script is
            // killed from the busy loop, busy.rs).
            "kill" => return Err("NOTBUSY No scripts in execution right now.".into()),
            "help" => {
                let lines = [
                    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                    "EXISTS <sha1> [<sha1> ...]",
                    "    Return information about the existence of the scripts in the script cache.",
                    "FLUSH [ASYNC|SYNC]",
                    "    Flush the Lua scripts cache. Very dangerous on replicas.",
                    "    When called without the optional mode argument, the behavior is determined by the",
                    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
                    "    * ASYNC: Asynchronously flush the scripts cache.",
                    "    * SYNC: Synchronously flush the scripts cache.",
                    "KILL",
                    "    Kill the currently executing Lua script.",
                    "LOAD <script>",
                    "    Load a script into the scripts cache without executing it.",
                    "HELP",
                    "    Print this help.",
                ];
                let out = &mut self.conns.get_mut(&t).expect("live").out;
                out.array(lines.len());
                for l in lines {
                    out.simple(l);
                }
            }
            // SCRIPT DEBUG: kvtier has no Lua debugger.
            _ => {
                let msg = format!(
                    "ERR unknown subcommand '{}'. Try SCRIPT HELP.",
                    String::from_utf8_lossy(&args[1])
                );
                return Err(msg.into());
            }
        }
        Ok(())
    }

    /// Undoes the accounting of a script run abandoned for cold keys: it runs again and is
    /// counted then.
    pub(crate) fn retry_script(&mut self, _t: usize, args: &[Vec<u8>]) {
        if let Some(spec) = crate::commands::lookup(&args[0]) {
            if let Some(s) = self.shared.command_stats.get_mut(spec.name) {
                s.calls = s.calls.saturating_sub(1);
            }
            self.shared.total_commands = self.shared.total_commands.saturating_sub(1);
        }
    }
}
