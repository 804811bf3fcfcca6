//! `bit`: LuaBitOp's 32-bit operations (results are signed 32-bit numbers).

use super::number_arg;
use mlua::{Lua, MultiValue, Table, Value};

/// A number as LuaBitOp normalises it: rounded to an integer, taken modulo 2^32.
fn tobit(n: f64) -> i32 {
    let r = n.round_ties_even();
    if !r.is_finite() {
        return 0;
    }
    r.rem_euclid(4_294_967_296.0) as u32 as i32
}

fn arg(lua: &Lua, args: &MultiValue, i: usize, name: &str) -> mlua::Result<i32> {
    Ok(tobit(number_arg(lua, args.get(i), i + 1, name)?))
}

pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let unary = |name: &'static str, f: fn(i32) -> i32| {
        lua.create_function(move |lua, args: MultiValue| Ok(f(arg(lua, &args, 0, name)?)))
    };
    t.raw_set("tobit", unary("tobit", |x| x)?)?;
    t.raw_set("bnot", unary("bnot", |x| !x)?)?;
    t.raw_set("bswap", unary("bswap", |x| x.swap_bytes())?)?;
    let fold = |name: &'static str, f: fn(i32, i32) -> i32| {
        lua.create_function(move |lua, args: MultiValue| {
            let mut acc = arg(lua, &args, 0, name)?;
            for i in 1..args.len() {
                acc = f(acc, arg(lua, &args, i, name)?);
            }
            Ok(acc)
        })
    };
    t.raw_set("band", fold("band", |a, b| a & b)?)?;
    t.raw_set("bor", fold("bor", |a, b| a | b)?)?;
    t.raw_set("bxor", fold("bxor", |a, b| a ^ b)?)?;
    let shift = |name: &'static str, f: fn(u32, u32) -> u32| {
        lua.create_function(move |lua, args: MultiValue| {
            let x = arg(lua, &args, 0, name)? as u32;
            let n = (arg(lua, &args, 1, name)? as u32) & 31;
            Ok(f(x, n) as i32)
        })
    };
    t.raw_set("lshift", shift("lshift", |x, n| x << n)?)?;
    t.raw_set("rshift", shift("rshift", |x, n| x >> n)?)?;
    t.raw_set(
        "arshift",
        shift("arshift", |x, n| ((x as i32) >> n) as u32)?,
    )?;
    t.raw_set("rol", shift("rol", |x, n| x.rotate_left(n))?)?;
    t.raw_set("ror", shift("ror", |x, n| x.rotate_right(n))?)?;
    t.raw_set(
        "tohex",
        lua.create_function(|lua, args: MultiValue| {
            let x = arg(lua, &args, 0, "tohex")? as u32;
            let n = match args.get(1) {
                None | Some(Value::Nil) => 8,
                _ => arg(lua, &args, 1, "tohex")?,
            };
            let upper = n < 0;
            let digits = n.unsigned_abs().min(8) as usize;
            let full = if upper {
                format!("{x:08X}")
            } else {
                format!("{x:08x}")
            };
            Ok(full[8 - digits..].to_string())
        })?,
    )?;
    Ok(t)
}
