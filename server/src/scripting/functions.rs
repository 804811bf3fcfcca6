//! Redis Functions: FUNCTION LOAD/LIST/DELETE/FLUSH/DUMP/RESTORE/STATS/KILL, FCALL, FCALL_RO.
//!
//! Libraries persist in `<dir>/functions.kvtier` (the FUNCTION DUMP payload), replaced
//! atomically (write, fsync, rename, fsync the directory) after every change, and read back on
//! the first scripting command after a start: they survive a restart and kill -9.

use super::run::Invocation;
use super::vm::{self, HOST};
use super::ScriptFlags;
use crate::commands::CmdResult;
use crate::server::Server;
use mlua::{Function, Lua, MultiValue, Table, Value};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;

const DUMP_MAGIC: &[u8] = b"KVTF\x01";
const FILE_NAME: &str = "functions.kvtier";
const BAD_NAME: &str = "ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

pub struct FunctionDef {
    pub name: String,
    pub func: Function,
    pub flags: ScriptFlags,
    pub description: Option<String>,
}

pub struct Library {
    pub code: Vec<u8>,
    pub functions: Vec<FunctionDef>,
}

#[derive(Default)]
pub struct Registry {
    pub libs: BTreeMap<String, Library>,
    /// Function name → library name.
    pub by_fn: HashMap<String, String>,
    /// Libraries were read back from disk after the start.
    pub restored: bool,
}

fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The library name from the `#!lua name=<lib>` line, or Redis's error.
fn parse_metadata(code: &[u8]) -> Result<String, String> {
    if !code.starts_with(b"#!") {
        return Err("ERR Missing library metadata".into());
    }
    let end = code.iter().position(|&b| b == b'\n').unwrap_or(code.len());
    let line = String::from_utf8_lossy(&code[..end]);
    let mut parts = line.split(' ').filter(|p| !p.is_empty());
    let engine = &parts.next().unwrap_or("#!")[2..];
    if engine != "lua" {
        return Err(format!("ERR Engine '{engine}' not found"));
    }
    let mut name = None;
    for p in parts {
        match p.strip_prefix("name=") {
            Some(n) => name = Some(n.to_string()),
            None => return Err(format!("ERR Invalid metadata value given: {p}")),
        }
    }
    let name = name.ok_or("ERR Library name was not given")?;
    if !valid_name(&name) {
        return Err(BAD_NAME.into());
    }
    Ok(name)
}

/// Runs a library's code and collects what it registers.
fn evaluate(lua: &Lua, code: &[u8]) -> Result<Vec<FunctionDef>, String> {
    let chunk = vm::compile(lua, code, "user_function")
        .map_err(|m| format!("ERR Error compiling function: {m}"))?;
    let found: RefCell<Vec<FunctionDef>> = RefCell::new(Vec::new());
    let result = lua.scope(|scope| {
        let host = scope.create_function(|lua, args: MultiValue| {
            let mut it = args.into_iter();
            let op = match it.next() {
                Some(Value::String(s)) => s.to_string_lossy(),
                _ => String::new(),
            };
            if op != "register" {
                let v = if op == "call" {
                    Value::Table(err_table(
                        lua,
                        "ERR redis.call is not available while loading a library",
                    )?)
                } else {
                    Value::Boolean(false)
                };
                return Ok(MultiValue::from_iter([v, Value::Boolean(op == "call")]));
            }
            let rest: Vec<Value> = it.collect();
            match register(&rest) {
                Ok(def) => {
                    let mut f = found.borrow_mut();
                    if f.iter().any(|d| d.name == def.name) {
                        return raise(lua, "ERR Function already exists in the library");
                    }
                    f.push(def);
                    Ok(MultiValue::from_iter([Value::Nil, Value::Boolean(false)]))
                }
                Err(e) => raise(lua, &e),
            }
        })?;
        lua.set_named_registry_value(HOST, host)?;
        vm::loading_library(lua, true)?;
        let r = vm::protected_call(lua, &chunk, MultiValue::new());
        vm::loading_library(lua, false)?;
        lua.unset_named_registry_value(HOST)?;
        r
    });
    match result {
        Ok(Ok(_)) => Ok(found.into_inner()),
        Ok(Err(f)) => {
            let msg = if f.table {
                f.msg
            } else {
                format!("ERR {}", f.msg)
            };
            Err(format!("ERR Error registering functions: {msg}"))
        }
        Err(e) => Err(format!("ERR Error registering functions: {e}")),
    }
}

fn err_table(lua: &Lua, msg: &str) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("err", msg)?;
    Ok(t)
}

fn raise(lua: &Lua, msg: &str) -> mlua::Result<MultiValue> {
    Ok(MultiValue::from_iter([
        Value::Table(err_table(lua, msg)?),
        Value::Boolean(true),
    ]))
}

/// The arguments of `redis.register_function`, positional or named.
fn register(args: &[Value]) -> Result<FunctionDef, String> {
    let (name, callback, flags, description) = match args {
        [Value::Table(t)] => {
            let (mut name, mut cb, mut flags, mut desc) = (None, None, ScriptFlags::default(), None);
            for pair in t.pairs::<Value, Value>() {
                let (k, v) = pair.map_err(|e| e.to_string())?;
                let key = match &k {
                    Value::String(s) => s.to_string_lossy(),
                    _ => String::new(),
                };
                match (key.as_str(), v) {
                    ("function_name", Value::String(s)) => name = Some(s.to_string_lossy()),
                    ("function_name", _) => {
                        return Err("ERR function_name argument given to redis.register_function must be a string".into())
                    }
                    ("callback", Value::Function(f)) => cb = Some(f),
                    ("callback", _) => {
                        return Err("ERR callback argument given to redis.register_function must be a function".into())
                    }
                    ("description", Value::String(s)) => desc = Some(s.to_string_lossy()),
                    ("description", _) => {
                        return Err("ERR description argument given to redis.register_function must be a string".into())
                    }
                    ("flags", Value::Table(ft)) => {
                        for f in ft.sequence_values::<Value>() {
                            match f {
                                Ok(Value::String(s)) => flags
                                    .set(&s.to_string_lossy())
                                    .map_err(|_| "ERR unknown flag given".to_string())?,
                                _ => return Err("ERR unknown flag given".into()),
                            }
                        }
                    }
                    ("flags", _) => {
                        return Err("ERR flags argument to redis.register_function must be a table representing function flags".into())
                    }
                    _ => return Err("ERR unknown argument given to redis.register_function".into()),
                }
            }
            let name = name.ok_or("ERR redis.register_function must get a function name argument")?;
            let cb = cb.ok_or("ERR redis.register_function must get a callback argument")?;
            (name, cb, flags, desc)
        }
        [_] => return Err("ERR calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).".into()),
        [n, f] => {
            let Value::String(n) = n else {
                return Err("ERR first argument to redis.register_function must be a string".into());
            };
            let Value::Function(f) = f else {
                return Err("ERR second argument to redis.register_function must be a function".into());
            };
            (n.to_string_lossy(), f.clone(), ScriptFlags::default(), None)
        }
        _ => return Err("ERR wrong number of arguments to redis.register_function".into()),
    };
    if !valid_name(&name) {
        return Err(BAD_NAME.into());
    }
    Ok(FunctionDef {
        name,
        func: callback,
        // A function's flags always apply (functions have no "no shebang" mode).
        flags: ScriptFlags {
            declared: true,
            ..flags
        },
        description,
    })
}

/// FNV-1a, a checksum for the dump payload.
fn checksum(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Registry {
    /// Loads (or replaces) a library; returns its name.
    pub fn load(&mut self, lua: &Lua, code: &[u8], replace: bool) -> Result<String, String> {
        let name = parse_metadata(code)?;
        if self.libs.contains_key(&name) && !replace {
            return Err(format!("ERR Library '{name}' already exists"));
        }
        let functions = evaluate(lua, code)?;
        if functions.is_empty() {
            return Err("ERR No functions registered".into());
        }
        for f in &functions {
            if self.by_fn.get(&f.name).is_some_and(|l| *l != name) {
                return Err(format!("ERR Function {} already exists", f.name));
            }
        }
        self.delete(&name);
        for f in &functions {
            self.by_fn.insert(f.name.clone(), name.clone());
        }
        self.libs.insert(
            name.clone(),
            Library {
                code: code.to_vec(),
                functions,
            },
        );
        Ok(name)
    }

    pub fn delete(&mut self, name: &str) -> bool {
        let Some(lib) = self.libs.remove(name) else {
            return false;
        };
        for f in lib.functions {
            self.by_fn.remove(&f.name);
        }
        true
    }

    pub fn dump(&self) -> Vec<u8> {
        let mut out = DUMP_MAGIC.to_vec();
        for lib in self.libs.values() {
            out.extend_from_slice(&(lib.code.len() as u32).to_le_bytes());
            out.extend_from_slice(&lib.code);
        }
        let sum = checksum(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// The library codes of a dump payload.
    pub fn parse_dump(payload: &[u8]) -> Option<Vec<Vec<u8>>> {
        let body_len = payload.len().checked_sub(8)?;
        let (body, sum) = payload.split_at(body_len);
        if !body.starts_with(DUMP_MAGIC) || checksum(body).to_le_bytes() != sum {
            return None;
        }
        let mut codes = Vec::new();
        let mut rest = &body[DUMP_MAGIC.len()..];
        while !rest.is_empty() {
            let n = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
            codes.push(rest.get(4..4 + n)?.to_vec());
            rest = &rest[4 + n..];
        }
        Some(codes)
    }

    fn function_count(&self) -> usize {
        self.by_fn.len()
    }
}

impl Server {
    fn functions_file(&self) -> PathBuf {
        PathBuf::from(&self.shared.config.settings().dir).join(FILE_NAME)
    }

    /// Reads the libraries saved before a restart (once).
    fn restore_functions(&mut self) {
        if self.scripting.functions.restored {
            return;
        }
        self.scripting.functions.restored = true;
        let path = self.functions_file();
        let Ok(payload) = std::fs::read(&path) else {
            return;
        };
        let Some(codes) = Registry::parse_dump(&payload) else {
            log::warn!("{}: damaged functions file ignored", path.display());
            return;
        };
        let lua = self.scripting.lua.clone();
        for code in codes {
            if let Err(e) = self.scripting.functions.load(&lua, &code, true) {
                log::warn!("a saved function library failed to load: {e}");
            }
        }
    }

    /// Saves the libraries durably (temp file, fsync, rename, fsync of the directory).
    fn persist_functions(&mut self) -> Result<(), String> {
        let path = self.functions_file();
        let tmp = path.with_extension("tmp");
        let payload = self.scripting.functions.dump();
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&payload)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            if let Some(dir) = path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| format!("ERR saving the function libraries failed: {e}"))
    }

    pub(crate) fn fcall(&mut self, t: usize, name: &str, args: &[Vec<u8>]) -> CmdResult {
        self.restore_functions();
        let fname = String::from_utf8_lossy(&args[1]).into_owned();
        let (keys, argv) = match super::commands::split_keys(args) {
            Ok(v) => v,
            Err("ERR value is not an integer or out of range") => {
                return Err("ERR Bad number of keys provided".into())
            }
            Err(e) => return Err(e.into()),
        };
        let reg = &self.scripting.functions;
        let Some(def) = reg
            .by_fn
            .get(&fname)
            .and_then(|l| reg.libs.get(l))
            .and_then(|l| l.functions.iter().find(|f| f.name == fname))
        else {
            return Err("ERR Function not found".into());
        };
        let read_only = name == "fcall_ro";
        if read_only && !def.flags.no_writes {
            return Err("ERR Can not execute a script with write flag using *_ro command.".into());
        }
        let inv = Invocation {
            func: def.func.clone(),
            flags: def.flags,
            name: fname,
            is_function: true,
            read_only,
            keys,
            argv,
        };
        self.run_script(t, inv, args)
    }

    pub(crate) fn function(&mut self, t: usize, args: &[Vec<u8>]) -> CmdResult {
        self.restore_functions();
        let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
        let arity_ok = match sub.as_str() {
            "load" => (3..=4).contains(&args.len()),
            "delete" => args.len() == 3,
            "flush" => args.len() <= 3,
            "restore" => (3..=4).contains(&args.len()),
            "list" => true,
            "dump" | "stats" | "kill" | "help" => args.len() == 2,
            _ => {
                let msg = format!(
                    "ERR unknown subcommand '{}'. Try FUNCTION HELP.",
                    String::from_utf8_lossy(&args[1])
                );
                return Err(msg.into());
            }
        };
        if !arity_ok {
            let msg = format!("ERR wrong number of arguments for 'function|{sub}' command");
            return Err(msg.into());
        }
        let lua = self.scripting.lua.clone();
        let changed = match sub.as_str() {
            "load" => {
                let replace = args.len() == 4;
                if replace && !args[2].eq_ignore_ascii_case(b"replace") {
                    let msg = format!(
                        "ERR Unknown option given: {}",
                        String::from_utf8_lossy(&args[2])
                    );
                    return Err(msg.into());
                }
                match self
                    .scripting
                    .functions
                    .load(&lua, &args[args.len() - 1], replace)
                {
                    Ok(name) => {
                        self.conns
                            .get_mut(&t)
                            .expect("live")
                            .out
                            .bulk(name.as_bytes());
                        true
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            "delete" => {
                let name = String::from_utf8_lossy(&args[2]).into_owned();
                if self.scripting.functions.delete(&name) {
                    self.conns.get_mut(&t).expect("live").out.ok();
                    true
                } else {
                    return Err("ERR Library not found".into());
                }
            }
            "flush" => {
                if let Some(mode) = args.get(2) {
                    if !mode.eq_ignore_ascii_case(b"sync") && !mode.eq_ignore_ascii_case(b"async") {
                        return Err("ERR FUNCTION FLUSH only supports SYNC|ASYNC option".into());
                    }
                }
                let f = &mut self.scripting.functions;
                f.libs.clear();
                f.by_fn.clear();
                self.conns.get_mut(&t).expect("live").out.ok();
                true
            }
            "dump" => {
                let payload = self.scripting.functions.dump();
                self.conns.get_mut(&t).expect("live").out.bulk(&payload);
                false
            }
            "restore" => {
                self.function_restore(t, &lua, args)?;
                true
            }
            "list" => {
                self.function_list(t, args)?;
                false
            }
            "stats" => {
                let (libs, funcs) = (
                    self.scripting.functions.libs.len(),
                    self.scripting.functions.function_count(),
                );
                let out = &mut self.conns.get_mut(&t).expect("live").out;
                out.map(2);
                out.bulk(b"running_script");
                out.null();
                out.bulk(b"engines");
                out.map(1);
                out.bulk(b"LUA");
                out.map(2);
                out.bulk(b"libraries_count");
                out.int(libs as i64);
                out.bulk(b"functions_count");
                out.int(funcs as i64);
                false
            }
            "kill" => return Err("NOTBUSY No scripts in execution right now.".into()),
            _ => {
                let lines = [
                    "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                    "LOAD [REPLACE] <FUNCTION CODE>",
                    "DELETE <LIBRARY NAME>",
                    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
                    "FCALL <FUNCTION NAME> <NUMKEYS> <KEY1> ... <KEYN> <ARG1> ... <ARGN>",
                    "FCALL_RO <FUNCTION NAME> <NUMKEYS> <KEY1> ... <KEYN> <ARG1> ... <ARGN>",
                    "KILL",
                    "FLUSH [ASYNC|SYNC]",
                    "DUMP",
                    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
                    "STATS",
                    "HELP",
                ];
                let out = &mut self.conns.get_mut(&t).expect("live").out;
                out.array(lines.len());
                for l in lines {
                    out.simple(l);
                }
                false
            }
        };
        if changed {
            if let Err(e) = self.persist_functions() {
                log::warn!("{e}");
            }
        }
        Ok(())
    }

    fn function_restore(&mut self, t: usize, lua: &Lua, args: &[Vec<u8>]) -> CmdResult {
        let policy = args
            .get(3)
            .map(|p| String::from_utf8_lossy(p).to_ascii_lowercase())
            .unwrap_or_else(|| "append".into());
        if !["append", "replace", "flush"].contains(&policy.as_str()) {
            return Err(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE."
                    .into(),
            );
        }
        let Some(codes) = Registry::parse_dump(&args[2]) else {
            return Err("ERR DUMP payload version or checksum are wrong".into());
        };
        // Built aside and swapped in whole: a failure leaves the libraries as they were.
        let mut next = Registry {
            restored: true,
            ..Default::default()
        };
        if policy != "flush" {
            for (name, lib) in &self.scripting.functions.libs {
                if let Err(e) = next.load(lua, &lib.code, true) {
                    log::warn!("reloading library {name}: {e}");
                }
            }
        }
        for code in codes {
            if policy == "append" {
                if let Ok(name) = parse_metadata(&code) {
                    if next.libs.contains_key(&name) {
                        return Err(format!("ERR Library {name} already exists").into());
                    }
                }
            }
            next.load(lua, &code, policy != "append")?;
        }
        self.scripting.functions = next;
        self.conns.get_mut(&t).expect("live").out.ok();
        Ok(())
    }

    fn function_list(&mut self, t: usize, args: &[Vec<u8>]) -> CmdResult {
        let (mut pattern, mut code) = (None, false);
        let mut i = 2;
        while i < args.len() {
            if args[i].eq_ignore_ascii_case(b"withcode") && !code {
                code = true;
            } else if args[i].eq_ignore_ascii_case(b"libraryname") && pattern.is_none() {
                let Some(p) = args.get(i + 1) else {
                    return Err("ERR library name argument was not given".into());
                };
                pattern = Some(p.clone());
                i += 1;
            } else {
                let msg = format!("ERR Unknown argument {}", String::from_utf8_lossy(&args[i]));
                return Err(msg.into());
            }
            i += 1;
        }
        let libs: Vec<(&String, &Library)> = self
            .scripting
            .functions
            .libs
            .iter()
            .filter(|(n, _)| {
                pattern
                    .as_ref()
                    .is_none_or(|p| crate::glob::glob_match(p, n.as_bytes(), false))
            })
            .collect();
        let out = &mut self.conns.get_mut(&t).expect("live").out;
        out.array(libs.len());
        for (name, lib) in libs {
            out.map(if code { 4 } else { 3 });
            out.bulk(b"library_name");
            out.bulk(name.as_bytes());
            out.bulk(b"engine");
            out.bulk(b"LUA");
            out.bulk(b"functions");
            out.array(lib.functions.len());
            for f in &lib.functions {
                out.map(3);
                out.bulk(b"name");
                out.bulk(f.name.as_bytes());
                out.bulk(b"description");
                match &f.description {
                    Some(d) => out.bulk(d.as_bytes()),
                    None => out.null(),
                }
                out.bulk(b"flags");
                let names = f.flags.names();
                out.set(names.len());
                for n in names {
                    out.simple(n);
                }
            }
            if code {
                out.bulk(b"library_code");
                out.bulk(&lib.code);
            }
        }
        Ok(())
    }
}
