//! Libraries Redis embeds in its Lua: cjson, cmsgpack, bit, struct — written here in Rust with
//! the same results and error texts.

pub mod bit;
pub mod cjson;
pub mod cmsgpack;
pub mod random;
pub mod structpack;

use super::vm::Thrown;
use mlua::{Lua, Value};

pub fn install(lua: &Lua) -> mlua::Result<()> {
    let g = lua.globals();
    let math: mlua::Table = g.raw_get("math")?;
    let rng = random::Rand48::new();
    random::install(lua, &math, &rng)?;
    g.raw_set("bit", bit::table(lua)?)?;
    g.raw_set("cjson", cjson::table(lua)?)?;
    g.raw_set("cmsgpack", cmsgpack::table(lua)?)?;
    g.raw_set("struct", structpack::table(lua)?)?;
    Ok(())
}

/// An error as `luaL_error` raises it: prefixed with the calling Lua code's position.
pub fn lib_error(lua: &Lua, msg: impl std::fmt::Display) -> mlua::Error {
    let position = lua.inspect_stack(1).and_then(|frame| {
        let line = frame.curr_line();
        let src = frame.source().short_src.map(|s| s.into_owned())?;
        (line > 0).then(|| format!("{src}:{line}: "))
    });
    mlua::Error::external(Thrown(format!("{}{msg}", position.unwrap_or_default())))
}

/// A number argument (strings that look like numbers count, as in Lua).
pub fn number_arg(lua: &Lua, v: Option<&Value>, pos: usize, fname: &str) -> mlua::Result<f64> {
    let n = match v {
        Some(Value::Integer(i)) => Some(*i as f64),
        Some(Value::Number(n)) => Some(*n),
        Some(Value::String(s)) => s.to_str().ok().and_then(|s| s.trim().parse::<f64>().ok()),
        _ => None,
    };
    n.ok_or_else(|| {
        let got = v.map_or("no value", |v| v.type_name());
        lua_arg_error(lua, pos, fname, &format!("number expected, got {got}"))
    })
}

/// `bad argument #n to 'f' (…)` as luaL_argerror words it.
pub fn lua_arg_error(lua: &Lua, pos: usize, fname: &str, extra: &str) -> mlua::Error {
    lib_error(lua, format!("bad argument #{pos} to '{fname}' ({extra})"))
}
