//! The Lua state: Redis's sandbox (read-only globals and library tables, no `os`/`io`/`print`/
//! `dofile`/`loadfile`), the `redis` table, and the error handler that turns a Lua error into
//! Redis's reply shape.
//!
//! Calls that need the server (`redis.call`, `redis.setresp`, the instruction hook…) go through
//! one registry entry, `kvtier.host`, which the server sets for the duration of a run (a scoped
//! function borrowing the server) and removes afterwards.

use mlua::{Function, HookTriggers, Lua, MultiValue, StdLib, Table, Value, VmState};

/// Registry name of the per-run host function.
pub const HOST: &str = "kvtier.host";
/// Registry name of the unwrapped `xpcall` the runner uses.
const XPCALL: &str = "kvtier.xpcall";
/// Registry names of the argument binder and of the `redis` tables for loading and running.
const BIND: &str = "kvtier.bind";
const LOAD_REDIS: &str = "kvtier.load_redis";
const RUN_REDIS: &str = "kvtier.run_redis";
/// Registry name of the error handler.
const HANDLER: &str = "kvtier.handler";
/// The field Redis 7.0 sets on the error table of a `redis.call`/`redis.pcall` whose error
/// was already counted (INFO errorstats) when the command failed: a script that returns or
/// raises that table is not counted a second time. Scripts see it (and may clear it) as in
/// Redis.
pub const COUNTED: &str = "ignore_error_stats_update";
/// Heap the Lua state may use (scripts, cached scripts and libraries together).
const LUA_MEMORY_LIMIT: usize = 1 << 30;
/// How often (in Lua instructions) the hook looks at time and kill requests.
const HOOK_EVERY: u32 = 10_000;

/// Wrappers written in Lua: they capture the base functions before the sandbox closes and
/// raise errors as Redis does (`redis.call` raises its error table; `pcall` turns such tables
/// into their message, as Redis 7.0 does).
const PRELUDE: &str = r#"
local host, call, setresp, set_repl, log, register, errmsg = ...
local error, type, rawget, rawset, setmetatable, getmetatable, select, tostring =
      error, type, rawget, rawset, setmetatable, getmetatable, select, tostring
local real_pcall, real_xpcall = pcall, xpcall
local G = _G

-- Rust functions (C functions to Lua): an error they raise points at the caller's line even
-- after a tail call, as Redis's do.
redis.call = call
redis.pcall = function(...) return (host('call', false, ...)) end
redis.setresp = setresp
redis.set_repl = set_repl
redis.log = log
redis.register_function = register
redis.replicate_commands = function() return true end
redis.error_reply = function(msg)
  if type(msg) ~= 'string' then error({err='ERR wrong number or type of arguments', kvtier_plain=true}, 0) end
  return {err=msg}
end
redis.status_reply = function(msg)
  if type(msg) ~= 'string' then error({err='ERR wrong number or type of arguments', kvtier_plain=true}, 0) end
  return {ok=msg}
end
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
redis.REDIS_VERSION, redis.REDIS_VERSION_NUM = '7.0.15', 0x07000f

local function stopping() return host('stopping') == true end
local function after_pcall(ok, ...)
  if ok then return ok, ... end
  if stopping() then error((...), 0) end
  local e = ...
  if type(e) == 'userdata' then
    local m = errmsg(e)
    if m then return false, m end
  end
  if type(e) == 'table' and type(rawget(e, 'err')) == 'string' then return false, rawget(e, 'err') end
  return false, e
end
pcall = function(...) return after_pcall(real_pcall(...)) end
local function after_xpcall(ok, ...)
  if not ok and stopping() then error('kvtier: script stopped', 0) end
  return ok, ...
end
xpcall = function(f, h)
  return after_xpcall(real_xpcall(f, function(e)
    if type(e) == 'userdata' then
      local m, counted = errmsg(e)
      if m then
        e = {err = m}
        if counted then e.ignore_error_stats_update = true end
      end
    end
    return h(e)
  end))
end

local function readonly() error('Attempt to modify a readonly table', 2) end
local protected = {}
for _, name in ipairs({'redis', 'string', 'table', 'math', 'coroutine', 'cjson', 'bit', 'struct', 'cmsgpack'}) do
  local real = rawget(G, name)
  if real then
    local proxy = setmetatable({}, {__index = real, __newindex = readonly})
    protected[proxy] = true
    rawset(G, name, proxy)
    if name == 'string' then
      -- Methods of strings ("x"):upper() go through the same (read-only) table.
      getmetatable('').__index = proxy
    end
  end
end
protected[G] = true
local real_setmetatable = setmetatable
rawset(G, 'setmetatable', function(t, mt)
  if protected[t] then error('Attempt to modify a readonly table', 0) end
  return real_setmetatable(t, mt)
end)
real_setmetatable(G, {
  __index = function(_, k)
    error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
  end,
  __newindex = readonly,
})
-- Binds a function's arguments for xpcall (Lua 5.1's xpcall passes none).
local function bind(f, a, b) return function() return f(a, b) end end
-- What library code sees as `redis` while FUNCTION LOAD runs it.
local load_allowed = {register_function = true, log = true, setresp = true, LOG_DEBUG = true,
  LOG_VERBOSE = true, LOG_NOTICE = true, LOG_WARNING = true, REDIS_VERSION = true,
  REDIS_VERSION_NUM = true}
local run_redis = rawget(G, 'redis')
local load_redis = setmetatable({}, {
  __index = function(_, k)
    if load_allowed[k] then return run_redis[k] end
    error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
  end,
  __newindex = readonly,
})
protected[load_redis] = true
return real_xpcall, bind, load_redis, run_redis
"#;

/// Creates the sandboxed Lua state with the `redis` table and the embedded libraries.
pub fn new_vm() -> mlua::Result<Lua> {
    let lua = Lua::new_with(
        StdLib::TABLE | StdLib::STRING | StdLib::MATH,
        mlua::LuaOptions::default(),
    )?;
    // A script cannot take the machine's memory: past this, allocations fail as Lua errors.
    lua.set_memory_limit(LUA_MEMORY_LIMIT)?;
    let g = lua.globals();
    for name in [
        "print", "dofile", "loadfile", "module", "require", "setfenv", "getfenv", "newproxy",
    ] {
        g.raw_set(name, Value::Nil)?;
    }
    let redis = lua.create_table()?;
    redis.raw_set(
        "sha1hex",
        lua.create_function(|_, s: mlua::String| Ok(super::sha1_hex(&s.as_bytes())))?,
    )?;
    g.raw_set("redis", redis)?;
    super::libs::install(&lua)?;
    g.raw_set("KEYS", lua.create_table()?)?;
    g.raw_set("ARGV", lua.create_table()?)?;
    let host = lua.create_function(|lua, args: MultiValue| {
        let f: Function = lua.named_registry_value(HOST)?;
        f.call::<MultiValue>(args)
    })?;
    let raising = |op: &'static str| {
        lua.create_function(move |lua, args: MultiValue| {
            let host: Function = lua.named_registry_value(HOST)?;
            let mut call_args = MultiValue::from_iter([Value::String(lua.create_string(op)?)]);
            if op == "call" {
                call_args.push_back(Value::Boolean(true));
            }
            call_args.extend(args);
            let out: MultiValue = host.call(call_args)?;
            let mut it = out.into_iter();
            let v = it.next().unwrap_or(Value::Nil);
            if matches!(it.next(), Some(Value::Boolean(true))) {
                let (msg, counted) = match &v {
                    Value::Table(t) => (
                        t.raw_get::<String>("err").unwrap_or_default(),
                        is_counted(t),
                    ),
                    _ => (String::new(), false),
                };
                return Err(mlua::Error::external(Raised { msg, counted }));
            }
            Ok(v)
        })
    };
    // The message of an error a Rust function raised, and whether it is already counted.
    let errmsg = lua.create_function(|_, v: Value| {
        Ok(match v {
            Value::Error(e) => match raised(&e) {
                Some(r) => (Some(r.msg.clone()), r.counted),
                None => (thrown_message(&e).map(str::to_string), false),
            },
            _ => (None, false),
        })
    })?;
    let (xpcall, bind, load_redis, run_redis): (Function, Function, Table, Table) =
        lua.load(PRELUDE).set_name("=kvtier").call((
            host,
            raising("call")?,
            raising("setresp")?,
            raising("set_repl")?,
            raising("log")?,
            raising("register")?,
            errmsg,
        ))?;
    lua.set_named_registry_value(XPCALL, xpcall)?;
    lua.set_named_registry_value(BIND, bind)?;
    lua.set_named_registry_value(LOAD_REDIS, load_redis)?;
    lua.set_named_registry_value(RUN_REDIS, run_redis)?;
    lua.set_named_registry_value(HANDLER, lua.create_function(error_handler)?)?;
    lua.set_hook(
        HookTriggers::new().every_nth_instruction(HOOK_EVERY),
        |lua, _| {
            let stop = match lua.named_registry_value::<Value>(HOST) {
                Ok(Value::Function(f)) => f.call::<bool>("tick").unwrap_or(false),
                _ => false,
            };
            if stop {
                Err(mlua::Error::runtime("kvtier: script stopped"))
            } else {
                Ok(VmState::Continue)
            }
        },
    );
    Ok(lua)
}

/// An error table raised by a Rust function (`redis.call`…): Lua sees it as an error value
/// whose message `pcall` returns and the error handler reports without the `ERR` prefix.
#[derive(Debug)]
pub struct Raised {
    pub msg: String,
    /// The table carried [`COUNTED`]: the error is already in the statistics.
    pub counted: bool,
}

impl std::fmt::Display for Raised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.msg)
    }
}

/// Whether an error table carries [`COUNTED`] set to `true` (Redis looks for the boolean).
pub fn is_counted(t: &Table) -> bool {
    matches!(t.raw_get::<Value>(COUNTED), Ok(Value::Boolean(true)))
}

impl std::error::Error for Raised {}

/// A string error raised by a Rust library function (cjson, bit…), already carrying the
/// caller's position (`user_script:1: …`) as `luaL_error` would.
#[derive(Debug)]
pub struct Thrown(pub String);

impl std::fmt::Display for Thrown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Thrown {}

/// The [`Raised`] error inside an mlua error.
fn raised(e: &mlua::Error) -> Option<&Raised> {
    e.chain().find_map(|c| c.downcast_ref::<Raised>())
}

/// The message of a [`Thrown`] error inside an mlua error.
pub fn thrown_message(e: &mlua::Error) -> Option<&str> {
    e.chain()
        .find_map(|c| c.downcast_ref::<Thrown>())
        .map(|r| r.0.as_str())
}

/// What a failed run raised, with where in the user's code.
#[derive(Debug, Clone)]
pub struct LuaFailure {
    /// The message (an `err` field, or the error value as text).
    pub msg: String,
    /// Raised as a table with `err` (kept as is) rather than a string (prefixed with `ERR`).
    pub table: bool,
    /// `@user_script` / `@user_function` and the line, when a user frame was found.
    pub source: Option<(String, i64)>,
    /// Reported without the `script: …` suffix (argument errors of `redis.error_reply`).
    pub plain: bool,
    /// The error of a `redis.call` already counted in the statistics (see [`COUNTED`]).
    pub counted: bool,
}

/// xpcall's message handler: records what was raised and the innermost user frame.
fn error_handler(lua: &Lua, e: Value) -> mlua::Result<Table> {
    let info = lua.create_table()?;
    let mut level = 1;
    while let Some(frame) = lua.inspect_stack(level) {
        let src = frame.source().source.map(|s| s.into_owned());
        if let Some(s) = src.filter(|s| s.starts_with("@user_")) {
            info.raw_set("source", s)?;
            info.raw_set("line", frame.curr_line())?;
            break;
        }
        level += 1;
    }
    match &e {
        Value::Error(err) => {
            if let Some(r) = raised(err) {
                info.raw_set("msg", r.msg.as_str())?;
                info.raw_set("table", true)?;
                info.raw_set("counted", r.counted)?;
                return Ok(info);
            }
            if let Some(m) = thrown_message(err) {
                info.raw_set("msg", m)?;
                return Ok(info);
            }
        }
        Value::Table(t) => {
            if let Ok(Value::String(m)) = t.raw_get::<Value>("err") {
                info.raw_set("msg", m)?;
                info.raw_set("table", true)?;
                if t.raw_get::<bool>("kvtier_plain").unwrap_or(false) {
                    info.raw_set("plain", true)?;
                }
                info.raw_set("counted", is_counted(t))?;
                return Ok(info);
            }
        }
        Value::Nil => {
            info.raw_set("msg", "nil")?;
            return Ok(info);
        }
        _ => {}
    }
    let tostring: Function = lua.globals().raw_get("tostring")?;
    let msg: Value = tostring.call(e)?;
    info.raw_set("msg", msg)?;
    Ok(info)
}

/// Calls `f` with `args` under the error handler: `Ok(first result)` or the failure.
pub fn protected_call(
    lua: &Lua,
    f: &Function,
    args: MultiValue,
) -> mlua::Result<Result<Value, LuaFailure>> {
    let xpcall: Function = lua.named_registry_value(XPCALL)?;
    let handler: Function = lua.named_registry_value(HANDLER)?;
    let mut call_args = MultiValue::new();
    call_args.push_back(Value::Function(f.clone()));
    call_args.push_back(Value::Function(handler));
    // Lua 5.1's xpcall passes no arguments: bind them in a Lua closure (a Rust one would hide
    // the user's frames from the error handler).
    if !args.is_empty() {
        let bind: Function = lua.named_registry_value(BIND)?;
        let mut bind_args = MultiValue::from_iter([Value::Function(f.clone())]);
        bind_args.extend(args);
        call_args[0] = Value::Function(bind.call::<Function>(bind_args)?);
    }
    let out: MultiValue = xpcall.call(call_args)?;
    let mut it = out.into_iter();
    let ok = matches!(it.next(), Some(Value::Boolean(true)));
    let v = it.next().unwrap_or(Value::Nil);
    if ok {
        return Ok(Ok(v));
    }
    let Value::Table(info) = v else {
        // Not from the handler (Lua does not call it for a memory error).
        let msg = match v {
            Value::String(s) => s.to_string_lossy(),
            Value::Error(e) => e.to_string(),
            _ => "Error running script".into(),
        };
        return Ok(Err(LuaFailure {
            msg,
            table: false,
            source: None,
            plain: false,
            counted: false,
        }));
    };
    let msg = match info.raw_get::<Value>("msg")? {
        Value::String(s) => s.to_string_lossy(),
        _ => "nil".into(),
    };
    let source = match info.raw_get::<Value>("source")? {
        Value::String(s) => Some((
            s.to_string_lossy(),
            info.raw_get::<i64>("line").unwrap_or(0),
        )),
        _ => None,
    };
    Ok(Err(LuaFailure {
        msg,
        table: info.raw_get::<bool>("table").unwrap_or(false),
        source,
        plain: info.raw_get::<bool>("plain").unwrap_or(false),
        counted: info.raw_get::<bool>("counted").unwrap_or(false),
    }))
}

/// Compiles a script body as Redis names it (`@user_script`), turning a shebang line into a
/// comment so line numbers stay.
pub fn compile(lua: &Lua, body: &[u8], chunk: &str) -> Result<Function, String> {
    let mut code = body.to_vec();
    if code.starts_with(b"#!") {
        code[0] = b'-';
        code[1] = b'-';
    }
    lua.load(code)
        .set_name(format!("@{chunk}"))
        .into_function()
        .map_err(|e| match e {
            mlua::Error::SyntaxError { message, .. } => message,
            other => other.to_string(),
        })
}

/// Makes `redis` the restricted table library code sees while FUNCTION LOAD runs it (`true`),
/// or the full one back (`false`).
pub fn loading_library(lua: &Lua, on: bool) -> mlua::Result<()> {
    let t: Table = lua.named_registry_value(if on { LOAD_REDIS } else { RUN_REDIS })?;
    lua.globals().raw_set("redis", t)
}
