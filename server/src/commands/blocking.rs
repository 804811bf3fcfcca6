//! BLPOP BRPOP BLMOVE: pop at once when a list has elements, otherwise block the client (the
//! server loop wakes it when one of its keys changes, or answers nil at the timeout). Inside
//! MULTI they never block, as in Redis.

use super::flags::*;
use super::{cmd, Action, CommandSpec, Ctx, KeySpec};
use super::{lists, CmdError, CmdResult};
use crate::value::Value;

pub const COMMANDS: &[CommandSpec] = &[
    cmd("blpop", -3, WRITE, KeySpec::Range(1, -2, 1), blpop),
    cmd("brpop", -3, WRITE, KeySpec::Range(1, -2, 1), brpop),
    cmd(
        "blmove",
        6,
        WRITE | DENYOOM,
        KeySpec::Range(1, 2, 1),
        blmove,
    ),
    cmd(
        "brpoplpush",
        4,
        WRITE | DENYOOM,
        KeySpec::Range(1, 2, 1),
        brpoplpush,
    ),
    cmd("lmpop", -4, WRITE, KeySpec::Numkeys(1), lmpop),
    cmd("blmpop", -5, WRITE, KeySpec::Numkeys(2), blmpop),
];

/// Parses a timeout in seconds (a float) into milliseconds, with Redis's error if invalid.
pub fn parse_timeout(arg: &[u8]) -> Result<u64, CmdError> {
    match crate::util::parse_f64(arg) {
        Some(t) if t < 0.0 => Err(CmdError::msg("ERR timeout is negative")),
        Some(t) if t.is_finite() && t * 1000.0 < u64::MAX as f64 => Ok((t * 1000.0) as u64),
        _ => Err(CmdError::msg("ERR timeout is not a float or out of range")),
    }
}

/// A popped element and the key it came from.
type Popped = (Vec<u8>, Vec<u8>);
/// Popped elements and the key they came from.
type PoppedMany = (Vec<u8>, Vec<Vec<u8>>);

/// Pops from the first non-empty list among `keys`; `Err` after a WRONGTYPE reply. A client
/// woken by a change of its keys skips keys of another type (it stays blocked, as in Redis).
fn pop_first(ctx: &mut Ctx, keys: &[Vec<u8>], left: bool) -> Result<Option<Popped>, CmdError> {
    Ok(pop_first_n(ctx, keys, left, 1)?.map(|(k, mut v)| (k, v.remove(0))))
}

/// Pops up to `count` elements from the first non-empty list among `keys`.
fn pop_first_n(
    ctx: &mut Ctx,
    keys: &[Vec<u8>],
    left: bool,
    count: usize,
) -> Result<Option<PoppedMany>, CmdError> {
    let woken = ctx.client.woken;
    for k in keys {
        match ctx.db().get(k) {
            None => continue,
            Some(Value::List(l)) if l.is_empty() => continue,
            Some(Value::List(_) | Value::PagedList(_)) => {}
            Some(_) if woken => continue,
            Some(_) => return Err(CmdError::WrongType),
        }
        if let Some(v) = lists::pop_many(ctx, k, left, count)? {
            return Ok(Some((k.clone(), v)));
        }
    }
    Ok(None)
}

fn bpop(ctx: &mut Ctx, args: &[Vec<u8>], left: bool) -> CmdResult {
    let timeout = parse_timeout(&args[args.len() - 1])?;
    match pop_first(ctx, &args[1..args.len() - 1], left)? {
        Some((k, v)) => {
            ctx.out.array(2);
            ctx.out.bulk(&k);
            ctx.out.bulk(&v);
        }
        None if ctx.client.multi.is_some() || ctx.client.in_exec => ctx.out.null_array(),
        None => {
            ctx.action = Action::Block {
                timeout_ms: timeout,
            }
        }
    }
    Ok(())
}

fn blpop(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    bpop(ctx, args, true)
}

fn brpop(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    bpop(ctx, args, false)
}

fn blmove(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let (Some(from_left), Some(to_left)) =
        (lists::parse_side(&args[3]), lists::parse_side(&args[4]))
    else {
        return Err(CmdError::Syntax);
    };
    blmove_common(ctx, args, from_left, to_left, &args[5])
}

fn brpoplpush(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    blmove_common(ctx, args, false, true, &args[3])
}

fn blmove_common(
    ctx: &mut Ctx,
    args: &[Vec<u8>],
    from_left: bool,
    to_left: bool,
    t: &[u8],
) -> CmdResult {
    let timeout = parse_timeout(t)?;
    let woken = ctx.client.woken;
    // Redis checks the source's type first, then the destination's when there is something
    // to move.
    let src_ok = match ctx.db().get(&args[1]) {
        Some(Value::List(_) | Value::PagedList(_)) => true,
        None => false,
        Some(_) if woken => false,
        Some(_) => return Err(CmdError::WrongType),
    };
    let moved = if src_ok {
        lists::move_element(ctx, &args[1], &args[2], from_left, to_left)?
    } else {
        None
    };
    match moved {
        Some(v) => ctx.out.bulk(&v),
        None if ctx.client.multi.is_some() || ctx.client.in_exec => ctx.out.null(),
        None => {
            ctx.action = Action::Block {
                timeout_ms: timeout,
            }
        }
    }
    Ok(())
}

/// Parses `numkeys key... LEFT|RIGHT [COUNT n]` from `at`: (keys, left, count).
fn parse_lmpop(args: &[Vec<u8>], at: usize) -> Result<(&[Vec<u8>], bool, usize), CmdError> {
    let numkeys = match crate::util::parse_i64(&args[at]) {
        Some(n) if n > 0 && n <= i32::MAX as i64 => n as usize,
        _ => {
            return Err(CmdError::msg("ERR numkeys should be greater than 0"));
        }
    };
    let where_at = at + 1 + numkeys;
    if where_at >= args.len() {
        return Err(CmdError::Syntax);
    }
    let Some(left) = lists::parse_side(&args[where_at]) else {
        return Err(CmdError::Syntax);
    };
    let mut count = None;
    let mut j = where_at + 1;
    while j < args.len() {
        if count.is_none() && args[j].eq_ignore_ascii_case(b"count") && j + 1 < args.len() {
            match crate::util::parse_i64(&args[j + 1]) {
                Some(c) if c > 0 => count = Some(c as usize),
                _ => {
                    return Err(CmdError::msg("ERR count should be greater than 0"));
                }
            }
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok((&args[at + 1..where_at], left, count.unwrap_or(1)))
}

fn write_lmpop(ctx: &mut Ctx, key: &[u8], popped: &[Vec<u8>]) {
    ctx.out.array(2);
    ctx.out.bulk(key);
    ctx.out.bulks(popped.iter().map(Vec::as_slice));
}

fn lmpop(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let (keys, left, count) = parse_lmpop(args, 1)?;
    match pop_first_n(ctx, keys, left, count)? {
        None => ctx.out.null_array(),
        Some((k, v)) => write_lmpop(ctx, &k, &v),
    }
    Ok(())
}

fn blmpop(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let timeout = parse_timeout(&args[1])?;
    let (keys, left, count) = parse_lmpop(args, 2)?;
    match pop_first_n(ctx, keys, left, count)? {
        Some((k, v)) => write_lmpop(ctx, &k, &v),
        None if ctx.client.multi.is_some() || ctx.client.in_exec => ctx.out.null_array(),
        None => {
            ctx.action = Action::Block {
                timeout_ms: timeout,
            }
        }
    }
    Ok(())
}
