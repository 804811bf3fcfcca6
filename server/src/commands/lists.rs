//! List commands (the blocking ones live with the server loop).

use super::args::missing_key_reply;
use super::flags::*;
use super::notify::{class, notify, notify_new};
use super::typed::List;
use super::{cmd, CommandSpec, Ctx, KeySpec, KEY1};
use super::{CmdError, CmdResult, TypedDb};
use crate::reply::Reply;
use crate::util::parse_i64;
use crate::value::Value;
use kvtier_core::Db;
use std::collections::VecDeque;

pub const COMMANDS: &[CommandSpec] = &[
    cmd("lpush", -3, WRITE | DENYOOM | FAST, KEY1, lpush),
    cmd("rpush", -3, WRITE | DENYOOM | FAST, KEY1, rpush),
    cmd("lpushx", -3, WRITE | DENYOOM | FAST, KEY1, lpushx),
    cmd("rpushx", -3, WRITE | DENYOOM | FAST, KEY1, rpushx),
    cmd("lpop", -2, WRITE | FAST, KEY1, lpop),
    cmd("rpop", -2, WRITE | FAST, KEY1, rpop),
    cmd("llen", 2, READONLY | FAST, KEY1, llen),
    cmd("lrange", 4, READONLY, KEY1, lrange),
    cmd("lindex", 3, READONLY, KEY1, lindex),
    cmd("lset", 4, WRITE | DENYOOM, KEY1, lset),
    cmd("linsert", 5, WRITE | DENYOOM, KEY1, linsert),
    cmd("lrem", 4, WRITE, KEY1, lrem),
    cmd("ltrim", 4, WRITE, KEY1, ltrim),
    cmd(
        "rpoplpush",
        3,
        WRITE | DENYOOM,
        KeySpec::Range(1, 2, 1),
        rpoplpush,
    ),
    cmd("lmove", 5, WRITE | DENYOOM, KeySpec::Range(1, 2, 1), lmove),
    cmd("lpos", -3, READONLY, KEY1, lpos),
];

/// The client's DB and its reply buffer, borrowed side by side so a handler can write a reply
/// straight from a value it is looking at.
fn db_out<'a>(ctx: &'a mut Ctx<'_>) -> (Db<'a, Value>, &'a mut Reply) {
    (ctx.engine.ks.db(ctx.client.db, ctx.now_ms), &mut *ctx.out)
}

fn pop_end(l: &mut List, left: bool) -> Option<Vec<u8>> {
    if left {
        l.pop_front()
    } else {
        l.pop_back()
    }
}

fn push_end(l: &mut List, v: Vec<u8>, left: bool) {
    if left {
        l.push_front(v)
    } else {
        l.push_back(v)
    }
}

/// LRANGE/LTRIM's reading of start/end (negative from the end) over `len` elements: the
/// inclusive index range they select, or `None` when it is empty.
fn list_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let end = if end < 0 { len + end } else { end };
    if start > end || start >= len {
        return None;
    }
    Some((start as usize, end.min(len - 1) as usize))
}

/// An index (negative from the end) into a list of `len` elements, if inside it.
fn list_index(index: i64, len: usize) -> Option<usize> {
    let i = if index < 0 {
        index.checked_add(len as i64)?
    } else {
        index
    };
    (i >= 0 && (i as usize) < len).then_some(i as usize)
}

fn push(ctx: &mut Ctx, args: &[Vec<u8>], left: bool, only_existing: bool) -> CmdResult {
    let (mut db, out) = db_out(ctx);
    let key = &args[1];
    match db.check::<List>(key)? {
        false if only_existing => {
            out.int(0);
            return Ok(());
        }
        _ => {}
    }
    let existed = db.contains(key);
    let l = db.entry::<List>(key)?;
    for v in &args[2..] {
        push_end(l, v.clone(), left);
    }
    out.int(l.len() as i64);
    notify_new(ctx, existed, key);
    notify(ctx, class::LIST, if left { "lpush" } else { "rpush" }, key);
    Ok(())
}

fn lpush(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    push(ctx, args, true, false)
}

fn rpush(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    push(ctx, args, false, false)
}

fn lpushx(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    push(ctx, args, true, true)
}

fn rpushx(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    push(ctx, args, false, true)
}

fn pop(ctx: &mut Ctx, args: &[Vec<u8>], left: bool) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::arity(&args[0]));
    }
    let count = match args.get(2) {
        None => None,
        Some(a) => match parse_i64(a) {
            Some(n) if n >= 0 => Some(n as usize),
            _ => return Err(CmdError::NotPositive),
        },
    };
    let (mut db, out) = db_out(ctx);
    let key = &args[1];
    match db.check::<List>(key)? {
        false if count.is_some() => {
            out.null_array();
            return Ok(());
        }
        false => {
            out.null();
            return Ok(());
        }
        true => {}
    }
    if count == Some(0) {
        out.array(0);
        return Ok(());
    }
    let l = db.entry::<List>(key)?;
    match count {
        None => {
            let v = pop_end(l, left).expect("lists are never empty");
            out.bulk(&v);
        }
        Some(n) => {
            let n = n.min(l.len());
            out.array(n);
            for _ in 0..n {
                let v = pop_end(l, left).expect("counted");
                out.bulk(&v);
            }
        }
    }
    let emptied = l.is_empty();
    if emptied {
        db.remove(key);
    }
    notify(ctx, class::LIST, if left { "lpop" } else { "rpop" }, key);
    if emptied {
        notify(ctx, class::GENERIC, "del", key);
    }
    Ok(())
}

fn lpop(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    pop(ctx, args, true)
}

fn rpop(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    pop(ctx, args, false)
}

fn llen(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let (mut db, out) = db_out(ctx);
    match db.get(&args[1]) {
        None => out.int(0),
        Some(Value::List(l)) => out.int(l.len() as i64),
        Some(_) => return Err(CmdError::WrongType),
    }
    Ok(())
}

fn lrange(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let (Some(start), Some(end)) = (parse_i64(&args[2]), parse_i64(&args[3])) else {
        return Err(CmdError::NotInt);
    };
    let (mut db, out) = db_out(ctx);
    match db.get(&args[1]) {
        None => out.array(0),
        Some(Value::List(l)) => match list_range(start, end, l.len()) {
            None => out.array(0),
            Some((s, e)) => out.bulks(l.range(s..=e).map(Vec::as_slice)),
        },
        Some(_) => return Err(CmdError::WrongType),
    }
    Ok(())
}

fn lindex(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let (mut db, out) = db_out(ctx);
    match db.get(&args[1]) {
        None => out.null(),
        Some(Value::List(l)) => match parse_i64(&args[2]) {
            None => return Err(CmdError::NotInt),
            Some(i) => match list_index(i, l.len()) {
                Some(i) => out.bulk(&l[i]),
                None => out.null(),
            },
        },
        Some(_) => return Err(CmdError::WrongType),
    }
    Ok(())
}

fn lset(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let (mut db, out) = db_out(ctx);
    let key = &args[1];
    let len = match db.get(key) {
        None => return Err(CmdError::NoSuchKey),
        Some(Value::List(l)) => l.len(),
        Some(_) => return Err(CmdError::WrongType),
    };
    let Some(index) = parse_i64(&args[2]) else {
        return Err(CmdError::NotInt);
    };
    let Some(i) = list_index(index, len) else {
        return Err(CmdError::IndexOutOfRange);
    };
    db.entry::<List>(key)?[i] = args[3].clone();
    out.ok();
    notify(ctx, class::LIST, "lset", key);
    Ok(())
}

fn linsert(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let after = match args[2].to_ascii_lowercase().as_slice() {
        b"before" => false,
        b"after" => true,
        _ => return Err(CmdError::Syntax),
    };
    let (mut db, out) = db_out(ctx);
    let key = &args[1];
    let pos = match db.get(key) {
        None => {
            out.int(0);
            return Ok(());
        }
        Some(Value::List(l)) => l.iter().position(|e| *e == args[3]),
        Some(_) => return Err(CmdError::WrongType),
    };
    let Some(pos) = pos else {
        out.int(-1);
        return Ok(());
    };
    let l = db.entry::<List>(key)?;
    l.insert(pos + after as usize, args[4].clone());
    out.int(l.len() as i64);
    notify(ctx, class::LIST, "linsert", key);
    Ok(())
}

fn lrem(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let Some(count) = parse_i64(&args[2]) else {
        return Err(CmdError::NotInt);
    };
    let (mut db, out) = db_out(ctx);
    let key = &args[1];
    let elem = &args[3];
    match db.get(key) {
        None => {
            out.int(0);
            return Ok(());
        }
        Some(Value::List(l)) if !l.contains(elem) => {
            out.int(0);
            return Ok(());
        }
        Some(Value::List(_)) => {}
        Some(_) => return Err(CmdError::WrongType),
    }
    let limit = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
    let limit = if count == 0 { usize::MAX } else { limit };
    let l = db.entry::<List>(key)?;
    let mut removed = 0;
    if count >= 0 {
        l.retain(|e| {
            let hit = removed < limit && e == elem;
            removed += hit as usize;
            !hit
        });
    } else {
        let mut kept = VecDeque::with_capacity(l.len());
        for e in l.drain(..).rev() {
            if removed < limit && e == *elem {
                removed += 1;
            } else {
                kept.push_front(e);
            }
        }
        *l = kept;
    }
    let emptied = l.is_empty();
    if emptied {
        db.remove(key);
    }
    out.int(removed as i64);
    if removed > 0 {
        notify(ctx, class::LIST, "lrem", key);
    }
    if emptied {
        notify(ctx, class::GENERIC, "del", key);
    }
    Ok(())
}

fn ltrim(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let (Some(start), Some(end)) = (parse_i64(&args[2]), parse_i64(&args[3])) else {
        return Err(CmdError::NotInt);
    };
    let (mut db, out) = db_out(ctx);
    let key = &args[1];
    let len = match db.get(key) {
        None => {
            out.ok();
            return Ok(());
        }
        Some(Value::List(l)) => l.len(),
        Some(_) => return Err(CmdError::WrongType),
    };
    let emptied = list_range(start, end, len).is_none();
    match list_range(start, end, len) {
        None => {
            db.remove(key);
        }
        Some((0, e)) if e + 1 == len => {
            // Nothing to trim; Redis still reports the key as modified (WATCH).
            db.touch(key);
        }
        Some((s, e)) => {
            let l = db.entry::<List>(key)?;
            l.truncate(e + 1);
            l.drain(..s);
        }
    }
    out.ok();
    notify(ctx, class::LIST, "ltrim", key);
    if emptied {
        notify(ctx, class::GENERIC, "del", key);
    }
    Ok(())
}

/// Parses LMOVE's LEFT/RIGHT: `Some(true)` for LEFT.
fn parse_side(a: &[u8]) -> Option<bool> {
    match a.to_ascii_lowercase().as_slice() {
        b"left" => Some(true),
        b"right" => Some(false),
        _ => None,
    }
}

fn move_common(ctx: &mut Ctx, src: &[u8], dst: &[u8], from_left: bool, to_left: bool) -> CmdResult {
    let (mut db, out) = db_out(ctx);
    if !db.check::<List>(src)? {
        out.null();
        return Ok(());
    }
    db.check::<List>(dst)?;
    let l = db.entry::<List>(src)?;
    let v = pop_end(l, from_left).expect("lists are never empty");
    let src_empty = l.is_empty();
    let dst_existed = db.contains(dst);
    push_end(db.entry::<List>(dst)?, v.clone(), to_left);
    if src_empty && src != dst {
        db.remove(src);
    }
    out.bulk(&v);
    notify_move(
        ctx,
        src,
        dst,
        from_left,
        to_left,
        src_empty && src != dst,
        dst_existed,
    );
    Ok(())
}

/// The events of an element moved from `src` to `dst` (LMOVE, RPOPLPUSH, and their blocking
/// forms), in Redis's order.
pub fn notify_move(
    ctx: &mut Ctx,
    src: &[u8],
    dst: &[u8],
    from_left: bool,
    to_left: bool,
    src_deleted: bool,
    dst_existed: bool,
) {
    // Redis reports the push before the pop.
    notify_new(ctx, dst_existed, dst);
    let push = if to_left { "lpush" } else { "rpush" };
    notify(ctx, class::LIST, push, dst);
    let pop = if from_left { "lpop" } else { "rpop" };
    notify(ctx, class::LIST, pop, src);
    if src_deleted {
        notify(ctx, class::GENERIC, "del", src);
    }
}

fn rpoplpush(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    move_common(ctx, &args[1], &args[2], false, true)
}

fn lmove(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let (Some(from_left), Some(to_left)) = (parse_side(&args[3]), parse_side(&args[4])) else {
        return Err(CmdError::Syntax);
    };
    move_common(ctx, &args[1], &args[2], from_left, to_left)
}

fn lpos(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let (mut rank, mut count, mut maxlen): (i64, Option<usize>, usize) = (1, None, 0);
    let mut i = 3;
    while i < args.len() {
        let Some(value) = args.get(i + 1) else {
            return Err(CmdError::Syntax);
        };
        match args[i].to_ascii_lowercase().as_slice() {
            b"rank" => {
                match parse_i64(value) {
                    None => return Err(CmdError::NotInt),
                    Some(0) => return Err(CmdError::msg(
                        "ERR RANK can't be zero: use 1 to start from the first match, 2 from the \
                         second ... or use negative to start from the end of the list",
                    )),
                    Some(r) => rank = r,
                }
            }
            b"count" => match parse_i64(value) {
                Some(c) if c >= 0 => count = Some(c as usize),
                _ => return Err(CmdError::msg("ERR COUNT can't be negative")),
            },
            b"maxlen" => match parse_i64(value) {
                Some(m) if m >= 0 => maxlen = m as usize,
                _ => return Err(CmdError::msg("ERR MAXLEN can't be negative")),
            },
            _ => return Err(CmdError::Syntax),
        }
        i += 2;
    }
    let (mut db, out) = db_out(ctx);
    let l = match db.get(&args[1]) {
        None => return missing_key_reply(out, count.is_some()),
        Some(Value::List(l)) => l,
        Some(_) => return Err(CmdError::WrongType),
    };
    let from_tail = rank < 0;
    // Redis 7.0 negates the rank in place, so RANK -9223372036854775808 stays negative and
    // matches from the first hit on: keep that.
    let rank = if from_tail { rank.wrapping_neg() } else { rank };
    let len = l.len();
    let scan = if maxlen == 0 { len } else { maxlen.min(len) };
    let want = match count {
        None | Some(0) => usize::MAX,
        Some(c) => c,
    };
    let mut found = Vec::new();
    let mut matches: i64 = 0;
    for n in 0..scan {
        let idx = if from_tail { len - 1 - n } else { n };
        if l[idx] != args[2] {
            continue;
        }
        matches += 1;
        if matches >= rank {
            found.push(idx as i64);
            if count.is_none() || found.len() >= want {
                break;
            }
        }
    }
    match (count, found.first()) {
        (Some(_), _) => {
            out.array(found.len());
            found.iter().for_each(|&n| out.int(n));
        }
        (None, Some(&n)) => out.int(n),
        (None, None) => out.null(),
    }
    Ok(())
}
