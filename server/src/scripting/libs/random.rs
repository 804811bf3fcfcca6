//! `math.random` / `math.randomseed` as Redis 7.0 replaces them: one rand48 generator (48-bit
//! linear congruential, 31-bit outputs) for the server's life, starting from rand48's standard
//! initial state, so a fresh server draws the same numbers as a fresh Redis.

use super::{lib_error, number_arg};
use mlua::{Lua, MultiValue, Table, Value};
use std::cell::Cell;
use std::rc::Rc;

const A: u64 = 0x5_DEEC_E66D;
const C: u64 = 0xB;
const MASK: u64 = (1 << 48) - 1;
/// Largest output + 1 used as the divisor (INT32_MAX, as Redis uses).
const MAX: u64 = 2_147_483_647;

/// The generator's state, shared by `math.random` and the server (which reseeds it).
#[derive(Clone)]
pub struct Rand48(Rc<Cell<u64>>);

impl Rand48 {
    pub fn new() -> Self {
        Rand48(Rc::new(Cell::new(0x1234_ABCD_330E)))
    }

    pub fn seed(&self, seed: i32) {
        self.0.set((((seed as u32 as u64) << 16) | 0x330E) & MASK);
    }

    fn next(&self) -> u64 {
        let x = (A.wrapping_mul(self.0.get()).wrapping_add(C)) & MASK;
        self.0.set(x);
        x >> 17
    }
}

impl Default for Rand48 {
    fn default() -> Self {
        Self::new()
    }
}

/// Replaces `math.random` and `math.randomseed` in the `math` table.
pub fn install(lua: &Lua, math: &Table, rng: &Rand48) -> mlua::Result<()> {
    let r = rng.clone();
    math.raw_set(
        "random",
        lua.create_function(move |lua, args: MultiValue| {
            let x = (r.next() % MAX) as f64 / MAX as f64;
            let int = |i: usize| -> mlua::Result<i64> {
                Ok(number_arg(lua, args.get(i), i + 1, "random")? as i64)
            };
            Ok(Value::Number(match args.len() {
                0 => x,
                1 => {
                    let u = int(0)?;
                    if u < 1 {
                        return Err(lib_error(
                            lua,
                            "bad argument #1 to 'random' (interval is empty)",
                        ));
                    }
                    (x * u as f64).floor() + 1.0
                }
                2 => {
                    let (l, u) = (int(0)?, int(1)?);
                    if l > u {
                        return Err(lib_error(
                            lua,
                            "bad argument #2 to 'random' (interval is empty)",
                        ));
                    }
                    (x * (u - l + 1) as f64).floor() + l as f64
                }
                _ => return Err(lib_error(lua, "wrong number of arguments")),
            }))
        })?,
    )?;
    let r = rng.clone();
    math.raw_set(
        "randomseed",
        lua.create_function(move |lua, args: MultiValue| {
            r.seed(number_arg(lua, args.front(), 1, "randomseed")? as i64 as i32);
            Ok(())
        })?,
    )?;
    Ok(())
}
