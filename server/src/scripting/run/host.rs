//! The `host(op, …)` entry point the Lua wrappers call into (`redis.call`, `setresp`, `log`,
//! …) and the instruction hook's tick: what a running script asks of the server.

use crate::server::Server;
use mlua::{Lua, MultiValue, Value};

/// How long a run abandoned for cold keys may go on looking for more.
const COLD_EXPLORE_TIME: std::time::Duration = std::time::Duration::from_millis(200);

pub(super) fn err_table(lua: &Lua, msg: &str) -> mlua::Result<mlua::Table> {
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
    /// The `host(op, …)` entry point of the Lua wrappers.
    pub(super) fn script_host(&mut self, lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
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
