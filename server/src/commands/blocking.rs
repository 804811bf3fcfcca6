//! BLPOP BRPOP BLMOVE: pop at once when a list has elements, otherwise block the client (the
//! server loop wakes it when one of its keys changes, or answers nil at the timeout). Inside
//! MULTI they never block, as in Redis.

use super::flags::*;
use super::{cmd, Action, CommandSpec, Ctx, KeySpec};
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
];

/// Parses a timeout in seconds (a float) into milliseconds; replies the Redis error if invalid.
fn parse_timeout(ctx: &mut Ctx, arg: &[u8]) -> Option<u64> {
    match crate::util::parse_f64(arg) {
        Some(t) if t < 0.0 => {
            ctx.out.error("ERR timeout is negative");
            None
        }
        Some(t) if t.is_finite() && t * 1000.0 < u64::MAX as f64 => Some((t * 1000.0) as u64),
        _ => {
            ctx.out.error("ERR timeout is not a float or out of range");
            None
        }
    }
}

/// A popped element and the key it came from.
type Popped = (Vec<u8>, Vec<u8>);

/// Pops from the first non-empty list among `keys`; `Err` after a WRONGTYPE reply.
fn pop_first(ctx: &mut Ctx, keys: &[Vec<u8>], left: bool) -> Result<Option<Popped>, ()> {
    let mut db = ctx.db();
    for k in keys {
        match db.get(k) {
            None => continue,
            Some(Value::List(l)) if l.is_empty() => continue,
            Some(Value::List(_)) => {}
            Some(_) => {
                ctx.out.err_wrongtype();
                return Err(());
            }
        }
        let Some(Value::List(l)) = db.get_mut(k) else {
            unreachable!("checked above")
        };
        let v = if left { l.pop_front() } else { l.pop_back() }.expect("non-empty");
        if l.is_empty() {
            db.remove(k);
        }
        return Ok(Some((k.clone(), v)));
    }
    Ok(None)
}

fn bpop(ctx: &mut Ctx, args: &[Vec<u8>], left: bool) {
    let Some(timeout) = parse_timeout(ctx, &args[args.len() - 1]) else {
        return;
    };
    match pop_first(ctx, &args[1..args.len() - 1], left) {
        Err(()) => {}
        Ok(Some((k, v))) => {
            ctx.out.array(2);
            ctx.out.bulk(&k);
            ctx.out.bulk(&v);
        }
        Ok(None) if ctx.client.multi.is_some() || ctx.client.in_exec => ctx.out.null_array(),
        Ok(None) => {
            ctx.action = Action::Block {
                timeout_ms: timeout,
            }
        }
    }
}

fn blpop(ctx: &mut Ctx, args: &[Vec<u8>]) {
    bpop(ctx, args, true);
}

fn brpop(ctx: &mut Ctx, args: &[Vec<u8>]) {
    bpop(ctx, args, false);
}

fn side(arg: &[u8]) -> Option<bool> {
    match arg.to_ascii_lowercase().as_slice() {
        b"left" => Some(true),
        b"right" => Some(false),
        _ => None,
    }
}

fn blmove(ctx: &mut Ctx, args: &[Vec<u8>]) {
    let (Some(from_left), Some(to_left)) = (side(&args[3]), side(&args[4])) else {
        return ctx.out.err_syntax();
    };
    let Some(timeout) = parse_timeout(ctx, &args[5]) else {
        return;
    };
    let mut db = ctx.db();
    if let Some(v) = db.get(&args[2]) {
        if !matches!(v, Value::List(_)) {
            return ctx.out.err_wrongtype();
        }
    }
    match pop_first(ctx, &args[1..2], from_left) {
        Err(()) => {}
        Ok(Some((_, v))) => {
            let mut db = ctx.db();
            let Value::List(dst) =
                db.get_or_insert_with(&args[2], || Value::List(Default::default()))
            else {
                unreachable!("type checked above")
            };
            if to_left {
                dst.push_front(v.clone());
            } else {
                dst.push_back(v.clone());
            }
            ctx.out.bulk(&v);
        }
        Ok(None) if ctx.client.multi.is_some() || ctx.client.in_exec => ctx.out.null(),
        Ok(None) => {
            ctx.action = Action::Block {
                timeout_ms: timeout,
            }
        }
    }
}
