//! String commands.

use super::flags::*;
use super::notify::{class, existed_for_new, notify, notify_new};
use super::typed::Str;
use super::{cmd, CommandSpec, Ctx, KeySpec, KEY1};
use super::{CmdError, CmdResult, TypedDb};
use crate::util::{fmt_incr_float, parse_f64, parse_i64};
use crate::value::{StrBuf, Value};

pub const COMMANDS: &[CommandSpec] = &[
    cmd("get", 2, READONLY | FAST, KEY1, get),
    cmd("set", -3, WRITE | DENYOOM, KEY1, set),
    cmd("setnx", 3, WRITE | DENYOOM | FAST, KEY1, setnx),
    cmd("setex", 4, WRITE | DENYOOM, KEY1, setex),
    cmd("psetex", 4, WRITE | DENYOOM, KEY1, psetex),
    cmd("getset", 3, WRITE | DENYOOM | FAST, KEY1, getset),
    cmd("getdel", 2, WRITE | FAST, KEY1, getdel),
    cmd("getex", -2, WRITE | FAST, KEY1, getex),
    cmd("mget", -2, READONLY | FAST, KeySpec::Range(1, -1, 1), mget),
    cmd("mset", -3, WRITE | DENYOOM, KeySpec::Range(1, -1, 2), mset),
    cmd(
        "msetnx",
        -3,
        WRITE | DENYOOM,
        KeySpec::Range(1, -1, 2),
        msetnx,
    ),
    cmd("append", 3, WRITE | DENYOOM | FAST, KEY1, append),
    cmd("strlen", 2, READONLY | FAST, KEY1, strlen),
    cmd("incr", 2, WRITE | DENYOOM | FAST, KEY1, incr),
    cmd("decr", 2, WRITE | DENYOOM | FAST, KEY1, decr),
    cmd("incrby", 3, WRITE | DENYOOM | FAST, KEY1, incrby),
    cmd("decrby", 3, WRITE | DENYOOM | FAST, KEY1, decrby),
    cmd("incrbyfloat", 3, WRITE | DENYOOM | FAST, KEY1, incrbyfloat),
    cmd("getrange", 4, READONLY, KEY1, getrange),
    cmd("substr", 4, READONLY, KEY1, getrange),
    cmd("setrange", 4, WRITE | DENYOOM, KEY1, setrange),
    cmd("lcs", -3, READONLY, KeySpec::Range(1, 2, 1), lcs),
];

/// Largest string SETRANGE/APPEND may build (Redis's proto-max-bulk-len default).
const MAX_STRING: usize = 512 * 1024 * 1024;

/// A copy of the string value at `key`, `None` if absent.
pub(super) fn read_str(ctx: &mut Ctx, key: &[u8]) -> Result<Option<Vec<u8>>, CmdError> {
    Ok(ctx.db().read::<Str>(key)?.map(|s| s.to_vec()))
}

fn get(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    // Written from the cache straight into the reply: a copy first cost an allocation and a
    // free per GET.
    let mut db = ctx.engine.db(ctx.client.db, ctx.now_ms);
    match db.read::<Str>(&args[1])? {
        None => ctx.out.null(),
        Some(s) => ctx.out.bulk(s),
    }
    Ok(())
}

/// Parses an expire argument (`EX`/`PX`/`EXAT`/`PXAT` value) into absolute Unix ms, with
/// Redis's error for non-positive or overflowing times. `name` is the command for the message.
pub fn parse_expire(ctx: &Ctx, unit: &[u8], value: &[u8], name: &str) -> Result<i64, CmdError> {
    let n = parse_i64(value).ok_or(CmdError::NotInt)?;
    let u = unit.to_ascii_lowercase();
    let invalid = || CmdError::msg(format!("ERR invalid expire time in '{name}' command"));
    if n <= 0 {
        return Err(invalid());
    }
    let ms = match u.as_slice() {
        b"ex" | b"exat" => n.checked_mul(1000).ok_or_else(invalid)?,
        _ => n,
    };
    match u.as_slice() {
        b"ex" | b"px" => ms.checked_add(ctx.now_ms),
        _ => Some(ms),
    }
    .ok_or_else(invalid)
}

fn set(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let (mut nx, mut xx, mut get_old, mut keepttl) = (false, false, false, false);
    // As in Redis, options are all parsed before the expire value is checked, and repeating
    // the same expire option is allowed (the last one wins); mixing units is not.
    let mut expire_arg: Option<(Vec<u8>, &[u8])> = None;
    let mut i = 3;
    while i < args.len() {
        let a = args[i].to_ascii_lowercase();
        match a.as_slice() {
            b"nx" if !xx => nx = true,
            b"xx" if !nx => xx = true,
            b"get" => get_old = true,
            b"keepttl" if expire_arg.is_none() => keepttl = true,
            b"ex" | b"px" | b"exat" | b"pxat"
                if expire_arg.as_ref().is_none_or(|(u, _)| *u == a)
                    && !keepttl
                    && i + 1 < args.len() =>
            {
                expire_arg = Some((a, &args[i + 1]));
                i += 1;
            }
            _ => return Err(CmdError::Syntax),
        }
        i += 1;
    }
    let expire = match expire_arg {
        Some((unit, value)) => Some(parse_expire(ctx, &unit, value, "set")?),
        None => None,
    };
    let key = &args[1];
    let old = if get_old {
        Some(read_str(ctx, key)?)
    } else {
        None
    };
    // NX and XX load the key first; a plain SET may run blind (the key not loaded).
    let exists = if nx || xx {
        ctx.db().contains(key)
    } else {
        existed_for_new(ctx, key)
    };
    if (nx && exists) || (xx && !exists) {
        match old {
            Some(Some(v)) => ctx.out.bulk(&v),
            _ => ctx.out.null(),
        }
        return Ok(());
    }
    let mut db = ctx.db();
    let value = Value::Str(StrBuf::from_slice(&args[2]));
    if keepttl {
        db.insert_keep_ttl(key, value);
    } else {
        db.insert_with_expire(key, value, expire);
    }
    notify_new(ctx, exists, key);
    notify(ctx, class::STRING, "set", key);
    if expire.is_some() {
        notify(ctx, class::GENERIC, "expire", key);
    }
    match old {
        Some(Some(v)) => ctx.out.bulk(&v),
        Some(None) => ctx.out.null(),
        None => ctx.out.ok(),
    }
    Ok(())
}

fn setnx(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let mut db = ctx.db();
    if db.contains(&args[1]) {
        ctx.out.int(0);
    } else {
        db.insert(&args[1], Value::Str(StrBuf::from_slice(&args[2])));
        notify_new(ctx, false, &args[1]);
        notify(ctx, class::STRING, "set", &args[1]);
        ctx.out.int(1);
    }
    Ok(())
}

fn setex_common(ctx: &mut Ctx, args: &[Vec<u8>], unit: &[u8], name: &str) -> CmdResult {
    let t = parse_expire(ctx, unit, &args[2], name)?;
    let existed = existed_for_new(ctx, &args[1]);
    ctx.db()
        .insert_with_expire(&args[1], Value::Str(StrBuf::from_slice(&args[3])), Some(t));
    notify_new(ctx, existed, &args[1]);
    notify(ctx, class::STRING, "set", &args[1]);
    notify(ctx, class::GENERIC, "expire", &args[1]);
    ctx.out.ok();
    Ok(())
}

fn setex(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    setex_common(ctx, args, b"ex", "setex")
}

fn psetex(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    setex_common(ctx, args, b"px", "psetex")
}

fn getset(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let old = read_str(ctx, &args[1])?;
    ctx.db()
        .insert(&args[1], Value::Str(StrBuf::from_slice(&args[2])));
    notify_new(ctx, old.is_some(), &args[1]);
    notify(ctx, class::STRING, "set", &args[1]);
    match old {
        Some(v) => ctx.out.bulk(&v),
        None => ctx.out.null(),
    }
    Ok(())
}

fn getdel(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let old = read_str(ctx, &args[1])?;
    match old {
        Some(v) => {
            ctx.db().remove(&args[1]);
            notify(ctx, class::GENERIC, "del", &args[1]);
            ctx.out.bulk(&v)
        }
        None => ctx.out.null(),
    }
    Ok(())
}

fn getex(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let mut expire_arg: Option<(Vec<u8>, &[u8])> = None;
    let mut persist = false;
    let mut i = 2;
    while i < args.len() {
        let a = args[i].to_ascii_lowercase();
        match a.as_slice() {
            b"persist" if expire_arg.is_none() => persist = true,
            b"ex" | b"px" | b"exat" | b"pxat"
                if !persist
                    && expire_arg.as_ref().is_none_or(|(u, _)| *u == a)
                    && i + 1 < args.len() =>
            {
                expire_arg = Some((a, &args[i + 1]));
                i += 1;
            }
            _ => return Err(CmdError::Syntax),
        }
        i += 1;
    }
    // Redis looks the key up (nil, WRONGTYPE) before it checks the expire value.
    let v = read_str(ctx, &args[1])?;
    let Some(v) = v else {
        ctx.out.null();
        return Ok(());
    };
    let expire = match expire_arg {
        Some((unit, value)) => Some(Some(parse_expire(ctx, &unit, value, "getex")?)),
        None if persist => Some(None),
        None => None,
    };
    if let Some(e) = expire {
        ctx.db().set_expire(&args[1], e);
        let event = if e.is_some() { "expire" } else { "persist" };
        notify(ctx, class::GENERIC, event, &args[1]);
    }
    ctx.out.bulk(&v);
    Ok(())
}

fn mget(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    ctx.out.array(args.len() - 1);
    for k in &args[1..] {
        match ctx.engine.db(ctx.client.db, ctx.now_ms).get(k) {
            Some(Value::Str(s)) => ctx.out.bulk(s),
            _ => ctx.out.null(),
        }
    }
    Ok(())
}

fn mset(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(CmdError::arity(&args[0]));
    }
    for pair in args[1..].chunks(2) {
        let existed = existed_for_new(ctx, &pair[0]);
        ctx.db()
            .insert(&pair[0], Value::Str(StrBuf::from_slice(&pair[1])));
        notify_new(ctx, existed, &pair[0]);
        notify(ctx, class::STRING, "set", &pair[0]);
    }
    ctx.out.ok();
    Ok(())
}

fn msetnx(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(CmdError::arity(&args[0]));
    }
    let mut db = ctx.db();
    if args[1..].chunks(2).any(|p| db.contains(&p[0])) {
        ctx.out.int(0);
        return Ok(());
    }
    for pair in args[1..].chunks(2) {
        db.insert(&pair[0], Value::Str(StrBuf::from_slice(&pair[1])));
    }
    for pair in args[1..].chunks(2) {
        notify_new(ctx, false, &pair[0]);
        notify(ctx, class::STRING, "set", &pair[0]);
    }
    ctx.out.int(1);
    Ok(())
}

fn append(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let mut db = ctx.db();
    match db.read::<Str>(&args[1])? {
        None => {
            db.insert(&args[1], Value::Str(StrBuf::from_slice(&args[2])));
            notify_new(ctx, false, &args[1]);
            notify(ctx, class::STRING, "append", &args[1]);
            ctx.out.int(args[2].len() as i64);
        }
        Some(s) => {
            if s.len() + args[2].len() > MAX_STRING {
                return Err(CmdError::msg(
                    "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
                ));
            }
            let Some(Value::Str(s)) = db.get_mut(&args[1]) else {
                unreachable!("checked above")
            };
            s.extend_from_slice(&args[2]);
            let len = s.len() as i64;
            notify(ctx, class::STRING, "append", &args[1]);
            ctx.out.int(len);
        }
    }
    Ok(())
}

fn strlen(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let n = ctx.db().read::<Str>(&args[1])?.map_or(0, |s| s.len());
    ctx.out.int(n as i64);
    Ok(())
}

fn incr_by(ctx: &mut Ctx, key: &[u8], delta: i64) -> CmdResult {
    let mut db = ctx.db();
    let current = match db.read::<Str>(key)? {
        None => 0,
        Some(s) => parse_i64(s).ok_or(CmdError::NotInt)?,
    };
    let Some(n) = current.checked_add(delta) else {
        return Err(CmdError::msg("ERR increment or decrement would overflow"));
    };
    let mut b = itoa::Buffer::new();
    let text = b.format(n).as_bytes();
    let existed = match db.get_mut(key) {
        Some(Value::Str(s)) => {
            // In place: a counter's buffer already has room for its digits.
            s.clear();
            s.extend_from_slice(text);
            true
        }
        _ => {
            db.insert(key, Value::Str(StrBuf::from_slice(text)));
            false
        }
    };
    notify_new(ctx, existed, key);
    notify(ctx, class::STRING, "incrby", key);
    ctx.out.int(n);
    Ok(())
}

fn incr(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    incr_by(ctx, &args[1], 1)
}

fn decr(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    incr_by(ctx, &args[1], -1)
}

fn incrby(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let d = parse_i64(&args[2]).ok_or(CmdError::NotInt)?;
    incr_by(ctx, &args[1], d)
}

fn decrby(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    match parse_i64(&args[2]) {
        Some(i64::MIN) => Err(CmdError::msg("ERR decrement would overflow")),
        Some(d) => incr_by(ctx, &args[1], -d),
        None => Err(CmdError::NotInt),
    }
}

fn incrbyfloat(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let mut db = ctx.db();
    db.check::<Str>(&args[1])?;
    let Some(delta) = parse_f64(&args[2]) else {
        return Err(CmdError::NotFloat);
    };
    let current = match db.read::<Str>(&args[1])? {
        None => 0.0,
        Some(s) => parse_f64(s).ok_or(CmdError::NotFloat)?,
    };
    let n = current + delta;
    if !n.is_finite() {
        return Err(CmdError::msg("ERR increment would produce NaN or Infinity"));
    }
    let text = fmt_incr_float(n).into_bytes();
    let existed = db.contains(&args[1]);
    db.insert_keep_ttl(&args[1], Value::Str(StrBuf::from_slice(&text)));
    notify_new(ctx, existed, &args[1]);
    notify(ctx, class::STRING, "incrbyfloat", &args[1]);
    ctx.out.bulk(&text);
    Ok(())
}

/// Converts Redis start/end indexes (negative from the end) into a byte range of `len`.
pub fn clamp_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut s = if start < 0 { len + start } else { start };
    let mut e = if end < 0 { len + end } else { end };
    if s < 0 {
        s = 0;
    }
    if e < 0 {
        e = 0;
    }
    if e >= len {
        e = len - 1;
    }
    if s > e || len == 0 {
        return None;
    }
    Some((s as usize, e as usize))
}

fn getrange(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let (Some(start), Some(end)) = (parse_i64(&args[2]), parse_i64(&args[3])) else {
        return Err(CmdError::NotInt);
    };
    let v = read_str(ctx, &args[1])?;
    let v = v.unwrap_or_default();
    if start < 0 && end < 0 && start > end {
        ctx.out.bulk(b"");
        return Ok(());
    }
    match clamp_range(start, end, v.len()) {
        Some((s, e)) => ctx.out.bulk(&v[s..=e]),
        None => ctx.out.bulk(b""),
    }
    Ok(())
}

fn setrange(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let Some(offset) = parse_i64(&args[2]) else {
        return Err(CmdError::NotInt);
    };
    if offset < 0 {
        return Err(CmdError::msg("ERR offset is out of range"));
    }
    let value = &args[3];
    let current = read_str(ctx, &args[1])?;
    let offset = offset as usize;
    if !value.is_empty() && offset + value.len() > MAX_STRING {
        return Err(CmdError::msg(
            "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
        ));
    }
    let mut db = ctx.db();
    match current {
        None if value.is_empty() => {
            ctx.out.int(0);
            return Ok(());
        }
        None => db.insert(&args[1], Value::Str(StrBuf::new())),
        Some(s) if value.is_empty() => {
            ctx.out.int(s.len() as i64);
            return Ok(());
        }
        Some(_) => {}
    }
    let Some(Value::Str(s)) = db.get_mut(&args[1]) else {
        unreachable!("string ensured above")
    };
    if s.len() < offset + value.len() {
        s.resize(offset + value.len(), 0);
    }
    s[offset..offset + value.len()].copy_from_slice(value);
    let len = s.len() as i64;
    notify(ctx, class::STRING, "setrange", &args[1]);
    ctx.out.int(len);
    Ok(())
}

/// LCS a b [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]: Redis's dynamic programming and its
/// backtracking, so the reported ranges are the ones Redis reports.
fn lcs(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let (mut getlen, mut getidx, mut withmatchlen) = (false, false, false);
    let mut minmatchlen: i64 = 0;
    let mut i = 3;
    while i < args.len() {
        match args[i].to_ascii_lowercase().as_slice() {
            b"idx" => getidx = true,
            b"len" => getlen = true,
            b"withmatchlen" => withmatchlen = true,
            b"minmatchlen" if i + 1 < args.len() => {
                let Some(n) = parse_i64(&args[i + 1]) else {
                    return Err(CmdError::NotInt);
                };
                minmatchlen = n.max(0);
                i += 1;
            }
            _ => return Err(CmdError::Syntax),
        }
        i += 1;
    }
    let mut strs = Vec::with_capacity(2);
    for k in &args[1..3] {
        match ctx.db().get(k) {
            None => strs.push(Vec::new()),
            Some(Value::Str(s)) => strs.push(s.to_vec()),
            Some(_) => {
                return Err(CmdError::msg(
                    "ERR The specified keys must contain string values",
                ))
            }
        }
    }
    if getidx && getlen {
        return Err(CmdError::msg(
            "ERR If you want both the length and indexes, please just use IDX.",
        ));
    }
    let (a, b) = (&strs[0], &strs[1]);
    let (alen, blen) = (a.len(), b.len());
    let cells = (alen as u64 + 1) * (blen as u64 + 1);
    if cells.saturating_mul(4) > ctx.shared.config.settings().proto_max_bulk_len {
        return Err(CmdError::msg(
            "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        ));
    }
    let w = blen + 1;
    let mut t = vec![0u32; (alen + 1) * w];
    for i in 1..=alen {
        for j in 1..=blen {
            t[i * w + j] = if a[i - 1] == b[j - 1] {
                t[(i - 1) * w + j - 1] + 1
            } else {
                t[(i - 1) * w + j].max(t[i * w + j - 1])
            };
        }
    }
    let mut idx = t[alen * w + blen] as usize;
    let total = idx;
    let mut result = vec![0u8; idx];
    let mut matches: Vec<[usize; 5]> = Vec::new();
    let (mut a_start, mut a_end, mut b_start, mut b_end) = (alen, 0, 0, 0);
    let (mut i, mut j) = (alen, blen);
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            result[idx - 1] = a[i - 1];
            if a_start == alen {
                (a_start, a_end, b_start, b_end) = (i - 1, i - 1, j - 1, j - 1);
            } else if a_start == i && b_start == j {
                a_start -= 1;
                b_start -= 1;
            } else {
                emit = true;
            }
            if a_start == 0 || b_start == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            j -= 1;
        } else {
            if t[(i - 1) * w + j] > t[i * w + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            if a_start != alen {
                emit = true;
            }
        }
        if emit {
            let len = a_end - a_start + 1;
            if minmatchlen == 0 || len as i64 >= minmatchlen {
                matches.push([a_start, a_end, b_start, b_end, len]);
            }
            a_start = alen;
        }
    }
    if getidx {
        ctx.out.map(2);
        ctx.out.bulk(b"matches");
        ctx.out.array(matches.len());
        for m in &matches {
            ctx.out.array(2 + withmatchlen as usize);
            ctx.out.array(2);
            ctx.out.int(m[0] as i64);
            ctx.out.int(m[1] as i64);
            ctx.out.array(2);
            ctx.out.int(m[2] as i64);
            ctx.out.int(m[3] as i64);
            if withmatchlen {
                ctx.out.int(m[4] as i64);
            }
        }
        ctx.out.bulk(b"len");
        ctx.out.int(total as i64);
    } else if getlen {
        ctx.out.int(total as i64);
    } else {
        ctx.out.bulk(&result);
    }
    Ok(())
}
