//! List commands (the blocking ones are in `blocking`), written once for a list in one record
//! and a paged one (`list_access`).

use super::args::missing_key_reply;
use super::flags::*;
use super::list_access::{read_list, write_list};
use super::notify::{class, notify, notify_new};
use super::{cmd, CommandSpec, Ctx, KeySpec, KEY1};
use super::{CmdError, CmdResult};
use crate::util::parse_i64;
use crate::value::Value;

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
    let key = &args[1];
    let done = write_list(ctx, key, !only_existing, |l, out| {
        for v in &args[2..] {
            l.push(v.clone(), left)?;
        }
        out.int(l.len() as i64);
        Ok(())
    })?;
    let Some(w) = done else {
        ctx.out.int(0);
        return Ok(());
    };
    notify_new(ctx, !w.created, key);
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

/// Pops up to `count` elements from one end of the list at `key` (which must be a list or
/// absent), with the events Redis sends; `None` when the key is absent. The pages the pops
/// reach are read first, so a page that cannot be read fails the command before any element
/// is taken.
pub fn pop_many(
    ctx: &mut Ctx,
    key: &[u8],
    left: bool,
    count: usize,
) -> Result<Option<Vec<Vec<u8>>>, CmdError> {
    let done = write_list(ctx, key, false, |l, _| {
        let n = count.min(l.len());
        if n == 0 {
            return Ok(Vec::new());
        }
        let len = l.len();
        let (s, e) = if left { (0, n - 1) } else { (len - n, len - 1) };
        if n > 1 {
            // Every page first, so a page that cannot be read fails the command before it
            // changed anything (one pop reads its one page before changing it anyway).
            l.prepare(s, e)?;
        }
        let mut popped = Vec::with_capacity(n);
        for _ in 0..n {
            match l.pop(left)? {
                Some(v) => popped.push(v),
                None => break,
            }
        }
        Ok(popped)
    })?;
    let Some(w) = done else {
        return Ok(None);
    };
    notify(ctx, class::LIST, if left { "lpop" } else { "rpop" }, key);
    if w.emptied {
        notify(ctx, class::GENERIC, "del", key);
    }
    Ok(Some(w.result))
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
    let key = &args[1];
    if count == Some(0) {
        // Nothing changes: checked without making the key dirty.
        match read_list(ctx, key, |_, _| Ok(()))? {
            None => ctx.out.null_array(),
            Some(()) => ctx.out.array(0),
        }
        return Ok(());
    }
    match (pop_many(ctx, key, left, count.unwrap_or(1))?, count) {
        (None, Some(_)) => ctx.out.null_array(),
        (None, None) => ctx.out.null(),
        (Some(v), None) => match v.first() {
            Some(v) => ctx.out.bulk(v),
            None => ctx.out.null(),
        },
        (Some(v), Some(_)) => ctx.out.bulks(v.iter().map(Vec::as_slice)),
    }
    Ok(())
}

fn lpop(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    pop(ctx, args, true)
}

fn rpop(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    pop(ctx, args, false)
}

/// The length of the list at `key` (0 when absent).
fn len_of(ctx: &mut Ctx, key: &[u8]) -> Result<Option<usize>, CmdError> {
    read_list(ctx, key, |l, _| Ok(l.len()))
}

fn llen(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let n = len_of(ctx, &args[1])?.unwrap_or(0);
    ctx.out.int(n as i64);
    Ok(())
}

fn lrange(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let (Some(start), Some(end)) = (parse_i64(&args[2]), parse_i64(&args[3])) else {
        return Err(CmdError::NotInt);
    };
    let found = read_list(ctx, &args[1], |l, out| {
        match list_range(start, end, l.len()) {
            None => out.array(0),
            Some((s, e)) => {
                l.prepare(s, e)?;
                out.array(e - s + 1);
                l.range(s, e, &mut |x| out.bulk(x))?;
            }
        }
        Ok(())
    })?;
    if found.is_none() {
        ctx.out.array(0);
    }
    Ok(())
}

fn lindex(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let found = read_list(ctx, &args[1], |l, out| {
        let i = parse_i64(&args[2]).ok_or(CmdError::NotInt)?;
        match list_index(i, l.len()) {
            Some(i) => out.bulk(&l.get(i)?),
            None => out.null(),
        }
        Ok(())
    })?;
    if found.is_none() {
        ctx.out.null();
    }
    Ok(())
}

fn lset(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let key = &args[1];
    // Checked before anything changes: a failed LSET leaves the key alone (and clean).
    let len = len_of(ctx, key)?.ok_or(CmdError::NoSuchKey)?;
    let index = parse_i64(&args[2]).ok_or(CmdError::NotInt)?;
    let i = list_index(index, len).ok_or(CmdError::IndexOutOfRange)?;
    write_list(ctx, key, false, |l, out| {
        l.set(i, args[3].clone())?;
        out.ok();
        Ok(())
    })?;
    notify(ctx, class::LIST, "lset", key);
    Ok(())
}

/// The index of the first element equal to `elem` in the list at `key`: `None` without the
/// key, `Some(None)` without a match.
fn position(ctx: &mut Ctx, key: &[u8], elem: &[u8]) -> Result<Option<Option<usize>>, CmdError> {
    read_list(ctx, key, |l, _| {
        let mut pos = None;
        l.visit(false, &mut |i, e| {
            if e == elem {
                pos = Some(i);
            }
            pos.is_none()
        })?;
        Ok(pos)
    })
}

fn linsert(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let after = match args[2].to_ascii_lowercase().as_slice() {
        b"before" => false,
        b"after" => true,
        _ => return Err(CmdError::Syntax),
    };
    let key = &args[1];
    let pos = match position(ctx, key, &args[3])? {
        None => {
            ctx.out.int(0);
            return Ok(());
        }
        Some(None) => {
            ctx.out.int(-1);
            return Ok(());
        }
        Some(Some(pos)) => pos,
    };
    write_list(ctx, key, false, |l, out| {
        l.insert(pos + usize::from(after), args[4].clone())?;
        out.int(l.len() as i64);
        Ok(())
    })?;
    notify(ctx, class::LIST, "linsert", key);
    Ok(())
}

fn lrem(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let Some(count) = parse_i64(&args[2]) else {
        return Err(CmdError::NotInt);
    };
    let key = &args[1];
    let elem = &args[3];
    if !matches!(position(ctx, key, elem)?, Some(Some(_))) {
        ctx.out.int(0);
        return Ok(());
    }
    let limit = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
    let limit = if count == 0 { usize::MAX } else { limit };
    let done = write_list(ctx, key, false, |l, out| {
        let removed = l.remove(elem, limit, count < 0)?;
        out.int(removed as i64);
        Ok(removed)
    })?;
    if let Some(w) = done {
        if w.result > 0 {
            notify(ctx, class::LIST, "lrem", key);
        }
        if w.emptied {
            notify(ctx, class::GENERIC, "del", key);
        }
    }
    Ok(())
}

fn ltrim(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let (Some(start), Some(end)) = (parse_i64(&args[2]), parse_i64(&args[3])) else {
        return Err(CmdError::NotInt);
    };
    let key = &args[1];
    let Some(len) = len_of(ctx, key)? else {
        ctx.out.ok();
        return Ok(());
    };
    let range = list_range(start, end, len);
    match range {
        None => {
            // A paged list's pages go with its manifest (see `paged::collect_released`).
            ctx.db().remove(key);
        }
        Some((0, e)) if e + 1 == len => {
            // Nothing to trim; Redis still reports the key as modified (WATCH).
            ctx.db().touch(key);
        }
        Some((s, e)) => {
            write_list(ctx, key, false, |l, _| l.trim(s, e))?;
        }
    }
    ctx.out.ok();
    notify(ctx, class::LIST, "ltrim", key);
    if range.is_none() {
        notify(ctx, class::GENERIC, "del", key);
    }
    Ok(())
}

/// Parses LMOVE's LEFT/RIGHT: `Some(true)` for LEFT.
pub fn parse_side(a: &[u8]) -> Option<bool> {
    match a.to_ascii_lowercase().as_slice() {
        b"left" => Some(true),
        b"right" => Some(false),
        _ => None,
    }
}

/// Reads the end page a push at that end of the list at `key` will change (none for a list
/// in one record), so the push after a pop cannot fail and lose the element.
fn ready_end(ctx: &mut Ctx, key: &[u8], left: bool) -> Result<(), CmdError> {
    read_list(ctx, key, |l, _| match l.len() {
        0 => Ok(()),
        _ if left => l.prepare(0, 0),
        n => l.prepare(n - 1, n - 1),
    })
    .map(drop)
}

/// LMOVE and friends once the source is known to be a list or absent: checks the
/// destination's type, moves one element and sends the events; the element, `None` when the
/// source is absent.
pub fn move_element(
    ctx: &mut Ctx,
    src: &[u8],
    dst: &[u8],
    from_left: bool,
    to_left: bool,
) -> Result<Option<Vec<u8>>, CmdError> {
    if ctx
        .db()
        .get(dst)
        .is_some_and(|v| !matches!(v, Value::List(_) | Value::PagedList(_)))
    {
        return Err(CmdError::WrongType);
    }
    if src == dst {
        // One list: its other end is read before the pop, so the push cannot fail.
        let done = write_list(ctx, src, false, |l, _| {
            let n = l.len();
            l.prepare(0, 0)?;
            l.prepare(n - 1, n - 1)?;
            let Some(v) = l.pop(from_left)? else {
                return Ok(None);
            };
            l.push(v.clone(), to_left)?;
            Ok(Some(v))
        })?;
        let v = done.and_then(|w| w.result);
        if v.is_some() {
            notify_move(ctx, src, dst, from_left, to_left, false, true);
        }
        return Ok(v);
    }
    ready_end(ctx, dst, to_left)?;
    let Some(popped) = write_list(ctx, src, false, |l, _| l.pop(from_left))? else {
        return Ok(None);
    };
    let Some(v) = popped.result else {
        return Ok(None);
    };
    let pushed = write_list(ctx, dst, true, |l, _| l.push(v.clone(), to_left))?;
    let dst_existed = pushed.is_some_and(|w| !w.created);
    notify_move(
        ctx,
        src,
        dst,
        from_left,
        to_left,
        popped.emptied,
        dst_existed,
    );
    Ok(Some(v))
}

fn move_common(ctx: &mut Ctx, src: &[u8], dst: &[u8], from_left: bool, to_left: bool) -> CmdResult {
    // Redis checks the source's type first, then the destination's.
    if len_of(ctx, src)?.is_none() {
        ctx.out.null();
        return Ok(());
    }
    match move_element(ctx, src, dst, from_left, to_left)? {
        Some(v) => ctx.out.bulk(&v),
        None => ctx.out.null(),
    }
    Ok(())
}

/// The events of an element moved from `src` to `dst` (LMOVE, RPOPLPUSH, and their blocking
/// forms), in Redis's order.
fn notify_move(
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
    let from_tail = rank < 0;
    // Redis 7.0 negates the rank in place, so RANK -9223372036854775808 stays negative and
    // matches from the first hit on: keep that.
    let rank = if from_tail { rank.wrapping_neg() } else { rank };
    let want = match count {
        None | Some(0) => usize::MAX,
        Some(c) => c,
    };
    let found = read_list(ctx, &args[1], |l, _| {
        let scan = if maxlen == 0 { usize::MAX } else { maxlen };
        let mut found = Vec::new();
        let (mut matches, mut seen): (i64, usize) = (0, 0);
        l.visit(from_tail, &mut |idx, e| {
            seen += 1;
            if e == args[2] {
                matches += 1;
                if matches >= rank {
                    found.push(idx as i64);
                    if count.is_none() || found.len() >= want {
                        return false;
                    }
                }
            }
            seen < scan
        })?;
        Ok(found)
    })?;
    let out = &mut *ctx.out;
    match (found, count) {
        (None, _) => return missing_key_reply(out, count.is_some()),
        (Some(found), Some(_)) => {
            out.array(found.len());
            found.iter().for_each(|&n| out.int(n));
        }
        (Some(found), None) => match found.first() {
            Some(&n) => out.int(n),
            None => out.null(),
        },
    }
    Ok(())
}
