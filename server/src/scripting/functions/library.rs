//! A library's code turned into its functions: the `#!lua name=<lib>` line, running the code
//! and the arguments of `redis.register_function`. Nothing here touches the registry.

use super::super::vm::{self, HOST};
use super::super::ScriptFlags;
use super::FunctionDef;
use mlua::{Lua, MultiValue, Table, Value};
use std::cell::RefCell;

const BAD_NAME: &str = "ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The library name from the `#!lua name=<lib>` line, or Redis's error.
pub(super) fn parse_metadata(code: &[u8]) -> Result<String, String> {
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
pub(super) fn evaluate(lua: &Lua, code: &[u8]) -> Result<Vec<FunctionDef>, String> {
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
