//! Sorted set commands.

use super::args::{missing_key_reply, scan_cursor, scan_opts, ScanOpts};
use super::flags::*;
use super::sets::{scan_batch, scan_reply, split};
use super::typed::{Either, Set};
use super::zsets_paged as paged;
use super::{cmd, CommandSpec, Ctx, KeySpec, KEY1};
use super::{CmdError, CmdResult, TypedDb};
use crate::glob::glob_match;
use crate::reply::Reply;
use crate::util::{fmt_double, parse_f64, parse_i64};
use crate::value::Value;
use crate::zset::{LexBound, LexRange, ScoreRange, ZSet};
use kvtier_core::Db;
use std::collections::{HashMap, HashSet};

pub const COMMANDS: &[CommandSpec] = &[
    cmd("zadd", -4, WRITE | DENYOOM | FAST, KEY1, zadd),
    cmd("zrem", -3, WRITE | FAST, KEY1, zrem),
    cmd("zcard", 2, READONLY | FAST, KEY1, zcard),
    cmd("zscore", 3, READONLY | FAST, KEY1, zscore),
    cmd("zmscore", -3, READONLY | FAST, KEY1, zmscore),
    cmd("zincrby", 4, WRITE | DENYOOM | FAST, KEY1, zincrby),
    cmd("zrank", 3, READONLY | FAST, KEY1, zrank),
    cmd("zrevrank", 3, READONLY | FAST, KEY1, zrevrank),
    cmd("zrange", -4, READONLY, KEY1, zrange),
    cmd("zrangebyscore", -4, READONLY, KEY1, zrangebyscore),
    cmd("zrevrangebyscore", -4, READONLY, KEY1, zrevrangebyscore),
    cmd("zrangebylex", -4, READONLY, KEY1, zrangebylex),
    cmd("zrevrangebylex", -4, READONLY, KEY1, zrevrangebylex),
    cmd("zrevrange", -4, READONLY, KEY1, zrevrange),
    cmd("zcount", 4, READONLY | FAST, KEY1, zcount),
    cmd("zlexcount", 4, READONLY | FAST, KEY1, zlexcount),
    cmd("zpopmin", -2, WRITE | FAST, KEY1, zpopmin),
    cmd("zpopmax", -2, WRITE | FAST, KEY1, zpopmax),
    cmd("zremrangebyrank", 4, WRITE, KEY1, zremrangebyrank),
    cmd("zremrangebyscore", 4, WRITE, KEY1, zremrangebyscore),
    cmd("zremrangebylex", 4, WRITE, KEY1, zremrangebylex),
    cmd(
        "zunionstore",
        -4,
        WRITE | DENYOOM,
        KeySpec::DestNumkeys,
        zunionstore,
    ),
    cmd(
        "zinterstore",
        -4,
        WRITE | DENYOOM,
        KeySpec::DestNumkeys,
        zinterstore,
    ),
    cmd("zscan", -3, READONLY, KEY1, zscan),
    cmd("zunion", -3, READONLY, KeySpec::Numkeys(1), zunion),
    cmd("zinter", -3, READONLY, KeySpec::Numkeys(1), zinter),
    cmd("zdiff", -3, READONLY, KeySpec::Numkeys(1), zdiff),
    cmd("zintercard", -3, READONLY, KeySpec::Numkeys(1), zintercard),
    cmd(
        "zdiffstore",
        -4,
        WRITE | DENYOOM,
        KeySpec::DestNumkeys,
        zdiffstore,
    ),
    cmd(
        "zrangestore",
        -5,
        WRITE | DENYOOM,
        KeySpec::Range(1, 2, 1),
        zrangestore,
    ),
    cmd("zrandmember", -2, READONLY, KEY1, zrandmember),
    cmd("zmpop", -4, WRITE, KeySpec::Numkeys(1), zmpop),
    cmd("bzmpop", -5, WRITE, KeySpec::Numkeys(2), bzmpop),
    cmd(
        "bzpopmin",
        -3,
        WRITE | FAST,
        KeySpec::Range(1, -2, 1),
        bzpopmin,
    ),
    cmd(
        "bzpopmax",
        -3,
        WRITE | FAST,
        KeySpec::Range(1, -2, 1),
        bzpopmax,
    ),
];

const ERR_NAN: &str = "ERR resulting score is not a number (NaN)";
const ERR_NOT_FLOAT_RANGE: &str = "ERR min or max is not a float";
const ERR_LEX_RANGE: &str = "ERR min or max not valid string range item";

// ---- number parsing (C `strtod` as Redis uses it) ----

/// A hexadecimal float as `strtod` reads it (`0x1A`, `-0x1.8p3`).
fn parse_hex_float(s: &str) -> Option<f64> {
    let (neg, s) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let s = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    let (mant, exp) = match s.find(['p', 'P']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0.0f64;
    for c in int.chars() {
        v = v * 16.0 + c.to_digit(16)? as f64;
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += c.to_digit(16)? as f64 * scale;
        scale /= 16.0;
    }
    if let Some(e) = exp {
        let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let e: i32 = e
            .parse()
            .unwrap_or(if e.starts_with('-') { -10_000 } else { 10_000 });
        v *= 2f64.powi(e.clamp(-10_000, 10_000));
    }
    Some(if neg { -v } else { v })
}

/// Any float `strtod` would read in full (decimal, hex, inf), overflow allowed.
fn strtod_full(b: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(b).ok()?;
    if s.contains(['x', 'X']) {
        parse_hex_float(s)
    } else {
        parse_f64(b)
    }
}

/// A score argument as Redis's `getDoubleFromObject` accepts it: no spaces, no NaN, no
/// overflow or underflow to zero. `None` means `ERR value is not a valid float`.
pub(super) fn parse_score(b: &[u8]) -> Option<f64> {
    if b.first().is_none_or(u8::is_ascii_whitespace) {
        return None;
    }
    let v = strtod_full(b)?;
    let lower = b.to_ascii_lowercase();
    let digits = lower
        .strip_prefix(b"-")
        .or_else(|| lower.strip_prefix(b"+"));
    let digits = digits.unwrap_or(&lower);
    if v.is_infinite() && !digits.starts_with(b"inf") {
        return None; // ERANGE overflow
    }
    if v == 0.0 && !lower.contains(&b'x') {
        let mantissa = digits.split(|&c| c == b'e').next().unwrap_or_default();
        if mantissa.iter().any(|c| (b'1'..=b'9').contains(c)) {
            return None; // ERANGE underflow
        }
    }
    Some(v)
}

/// A range bound number as `zslParseRange` reads it: leading spaces allowed, "" is 0.
fn parse_range_num(b: &[u8]) -> Option<f64> {
    if b.is_empty() {
        return Some(0.0);
    }
    let start = b
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))?;
    strtod_full(&b[start..])
}

fn parse_score_bound(b: &[u8]) -> Option<(f64, bool)> {
    match b.strip_prefix(b"(") {
        Some(rest) => Some((parse_range_num(rest)?, true)),
        None => Some((parse_range_num(b)?, false)),
    }
}

pub(super) fn parse_score_range(min: &[u8], max: &[u8]) -> Option<ScoreRange> {
    let (min, minex) = parse_score_bound(min)?;
    let (max, maxex) = parse_score_bound(max)?;
    Some(ScoreRange {
        min,
        max,
        minex,
        maxex,
    })
}

fn parse_lex_range(min: &[u8], max: &[u8]) -> Option<LexRange> {
    Some(LexRange {
        min: LexBound::parse(min)?,
        max: LexBound::parse(max)?,
    })
}

// ---- helpers ----

/// Applies `f` to the sorted set at `key`: `None` if absent.
fn with_zset<R>(
    ctx: &mut Ctx,
    key: &[u8],
    f: impl FnOnce(&ZSet) -> R,
) -> Result<Option<R>, CmdError> {
    Ok(ctx.db().read::<ZSet>(key)?.map(f))
}

/// Changes an existing sorted set, deleting the key if it ends up empty.
fn modify_zset<R>(ctx: &mut Ctx, key: &[u8], f: impl FnOnce(&mut ZSet) -> R) -> R {
    let mut db = ctx.db();
    let Some(Value::ZSet(z)) = db.get_mut(key) else {
        unreachable!("caller checked the key holds a sorted set")
    };
    let r = f(z);
    if z.is_empty() {
        db.remove(key);
    }
    r
}

/// Writes members with optional scores: a flat array in RESP2, and with scores in RESP3 an
/// array of [member, score] pairs (`nested`), as Redis 7 does.
fn write_entries(out: &mut Reply, items: &[(&[u8], f64)], withscores: bool, nested: bool) {
    write_entries_from(out, items.len(), items.iter().copied(), withscores, nested);
}

/// [`write_entries`] of `len` entries produced one at a time (draws with repetitions can be
/// many more than the set holds: they are written as drawn, never collected).
fn write_entries_from<'a>(
    out: &mut Reply,
    len: usize,
    items: impl Iterator<Item = (&'a [u8], f64)>,
    withscores: bool,
    nested: bool,
) {
    if !withscores {
        out.array(len);
        items.for_each(|(m, _)| out.bulk(m));
    } else if nested && out.resp3 {
        out.array(len);
        for (m, s) in items {
            out.array(2);
            out.bulk(m);
            out.double(s);
        }
    } else {
        out.array(len * 2);
        for (m, s) in items {
            out.bulk(m);
            out.double(s);
        }
    }
}

/// Clamps Redis rank indexes to `0..len`; `None` if the range is empty.
pub(super) fn clamp_ranks(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut start = if start < 0 { len + start } else { start };
    let mut end = if end < 0 { len + end } else { end };
    start = start.max(0);
    if start > end || start >= len {
        return None;
    }
    end = end.min(len - 1);
    Some((start as usize, end as usize))
}

// ---- ZADD / ZINCRBY ----

#[derive(Default, Clone, Copy)]
pub struct ZaddOpts {
    pub nx: bool,
    pub xx: bool,
    pub gt: bool,
    pub lt: bool,
    pub ch: bool,
    pub incr: bool,
}

#[derive(Default)]
pub struct ZaddTally {
    pub added: usize,
    pub updated: usize,
    pub processed: usize,
    pub score: f64,
}

/// What adding `score` does to a member whose current score is `cur`: `Ok(None)` nothing,
/// `Ok(Some(new))` it gets `new`, `Err(())` the increment makes NaN.
pub(super) fn zadd_plan(cur: Option<f64>, score: f64, o: ZaddOpts) -> Result<Option<f64>, ()> {
    match cur {
        Some(_) if o.nx => Ok(None),
        Some(c) => {
            let s = if o.incr { score + c } else { score };
            if s.is_nan() {
                return Err(());
            }
            if (o.lt && s >= c) || (o.gt && s <= c) {
                return Ok(None);
            }
            Ok(Some(s))
        }
        None if o.xx => Ok(None),
        None => Ok(Some(score)),
    }
}

pub(super) fn tally(t: &mut ZaddTally, cur: Option<f64>, new: Option<f64>) {
    if let Some(s) = new {
        t.processed += 1;
        t.score = s;
        match cur {
            None => t.added += 1,
            Some(c) if c != s => t.updated += 1,
            Some(_) => {}
        }
    }
}

/// Shared by ZADD and ZINCRBY; the reply is the caller's.
fn zadd_common(
    ctx: &mut Ctx,
    key: &[u8],
    pairs: &[(f64, &[u8])],
    o: ZaddOpts,
) -> Result<ZaddTally, CmdError> {
    if let Some(m) = paged::take(ctx, key) {
        return paged::zadd(ctx, key, m, pairs, o);
    }
    // Dry run against the current scores: if nothing would change, nothing is written.
    let plan = with_zset(ctx, key, |z| -> Result<ZaddTally, ()> {
        let mut t = ZaddTally::default();
        for &(score, m) in pairs {
            let cur = z.score(m);
            tally(&mut t, cur, zadd_plan(cur, score, o)?);
        }
        Ok(t)
    })?;
    let exists = plan.is_some();
    let plan = match plan {
        Some(Err(())) => return Err(CmdError::msg(ERR_NAN)),
        Some(Ok(t)) => t,
        None if o.xx => return Ok(ZaddTally::default()),
        None => ZaddTally {
            added: 1, // a new key always gains members
            ..ZaddTally::default()
        },
    };
    if plan.added == 0 && plan.updated == 0 {
        return Ok(plan);
    }
    let mut db = ctx.db();
    if !exists {
        db.insert(key, Value::ZSet(ZSet::default()));
    }
    let Some(Value::ZSet(z)) = db.get_mut(key) else {
        unreachable!("checked above")
    };
    let len_before = z.len();
    let mut t = ZaddTally::default();
    for &(score, m) in pairs {
        let cur = z.score(m);
        let new = zadd_plan(cur, score, o).unwrap_or(None);
        if let Some(s) = new {
            z.insert(m.to_vec(), s);
        }
        tally(&mut t, cur, new);
    }
    super::notify::notify_new(ctx, exists, key);
    let event = if o.incr { "zincr" } else { "zadd" };
    super::notify::notify(ctx, super::notify::class::ZSET, event, key);
    paged::maybe_page_out(ctx, key, len_before);
    Ok(t)
}

fn zadd(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let mut o = ZaddOpts::default();
    let mut i = 2;
    while i < args.len() {
        match args[i].to_ascii_lowercase().as_slice() {
            b"nx" => o.nx = true,
            b"xx" => o.xx = true,
            b"gt" => o.gt = true,
            b"lt" => o.lt = true,
            b"ch" => o.ch = true,
            b"incr" => o.incr = true,
            _ => break,
        }
        i += 1;
    }
    let elements = args.len() - i;
    if elements == 0 || !elements.is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    if o.nx && o.xx {
        return Err(CmdError::msg(
            "ERR XX and NX options at the same time are not compatible",
        ));
    }
    if (o.gt || o.lt) && (o.nx || (o.gt && o.lt)) {
        return Err(CmdError::msg(
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if o.incr && elements > 2 {
        return Err(CmdError::msg(
            "ERR INCR option supports a single increment-element pair",
        ));
    }
    let mut pairs = Vec::with_capacity(elements / 2);
    for p in args[i..].chunks(2) {
        let Some(score) = parse_score(&p[0]) else {
            return Err(CmdError::NotFloat);
        };
        pairs.push((score, p[1].as_slice()));
    }
    let t = zadd_common(ctx, &args[1], &pairs, o)?;
    if o.incr {
        if t.processed > 0 {
            ctx.out.double(t.score)
        } else {
            ctx.out.null()
        }
    } else {
        let n = t.added + if o.ch { t.updated } else { 0 };
        ctx.out.int(n as i64)
    }
    Ok(())
}

fn zincrby(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let Some(incr) = parse_score(&args[2]) else {
        return Err(CmdError::NotFloat);
    };
    let o = ZaddOpts {
        incr: true,
        ..ZaddOpts::default()
    };
    let t = zadd_common(ctx, &args[1], &[(incr, &args[3])], o)?;
    ctx.out.double(t.score);

    Ok(())
}

// ---- simple reads and removals ----

fn zrem(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let members = &args[2..];
    if let Some(m) = paged::take(ctx, &args[1]) {
        let n = paged::remove(ctx, &args[1], m, members)?;
        ctx.out.int(n as i64);
        if n > 0 {
            super::notify::notify(ctx, super::notify::class::ZSET, "zrem", &args[1]);
            if !ctx.db().contains(&args[1]) {
                super::notify::notify(ctx, super::notify::class::GENERIC, "del", &args[1]);
            }
        }
        return Ok(());
    }
    let present = with_zset(ctx, &args[1], |z| {
        members.iter().any(|m| z.score(m).is_some())
    })?;
    if present != Some(true) {
        ctx.out.int(0);
        return Ok(());
    }
    let n = modify_zset(ctx, &args[1], |z| {
        members.iter().filter(|m| z.remove(m).is_some()).count()
    });
    ctx.out.int(n as i64);
    super::notify::notify(ctx, super::notify::class::ZSET, "zrem", &args[1]);
    if !ctx.db().contains(&args[1]) {
        super::notify::notify(ctx, super::notify::class::GENERIC, "del", &args[1]);
    }
    Ok(())
}

fn zcard(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    if let Some(m) = paged::shared(ctx, &args[1]) {
        ctx.out.int(m.len() as i64);
        return Ok(());
    }
    let n = with_zset(ctx, &args[1], ZSet::len)?;
    ctx.out.int(n.unwrap_or(0) as i64);

    Ok(())
}

fn zscore(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let s = match paged::shared(ctx, &args[1]) {
        Some(m) => Some(paged::scores(ctx, &m, &args[2..3])?[0]),
        None => with_zset(ctx, &args[1], |z| z.score(&args[2]))?,
    };
    match s.flatten() {
        Some(s) => ctx.out.double(s),
        None => ctx.out.null(),
    }

    Ok(())
}

fn zmscore(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let members = &args[2..];
    let scores = match paged::shared(ctx, &args[1]) {
        Some(m) => Some(paged::scores(ctx, &m, members)?),
        None => with_zset(ctx, &args[1], |z| {
            members.iter().map(|m| z.score(m)).collect::<Vec<_>>()
        })?,
    };
    let scores = scores.unwrap_or_else(|| vec![None; members.len()]);
    ctx.out.array(scores.len());
    for s in scores {
        match s {
            Some(s) => ctx.out.double(s),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

fn zrank_common(ctx: &mut Ctx, args: &[Vec<u8>], rev: bool) -> CmdResult {
    if let Some(m) = paged::shared(ctx, &args[1]) {
        match paged::rank(ctx, &m, &args[2], rev)? {
            Some(r) => ctx.out.int(r as i64),
            None => ctx.out.null(),
        }
        return Ok(());
    }
    let r = with_zset(ctx, &args[1], |z| {
        z.rank(&args[2])
            .map(|r| if rev { z.len() - 1 - r } else { r })
    })?;
    match r.flatten() {
        Some(r) => ctx.out.int(r as i64),
        None => ctx.out.null(),
    }
    Ok(())
}

fn zrank(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    zrank_common(ctx, args, false)
}

fn zrevrank(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    zrank_common(ctx, args, true)
}

// ---- ranges ----

#[derive(Clone, Copy, PartialEq)]
enum RangeBy {
    Rank,
    Score,
    Lex,
}

pub enum Range {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

/// Parses the range of a ZRANGE-family command, with Redis's error if invalid.
fn parse_range(by: RangeBy, min: &[u8], max: &[u8]) -> Result<Range, CmdError> {
    match by {
        RangeBy::Rank => match (parse_i64(min), parse_i64(max)) {
            (Some(a), Some(b)) => Ok(Range::Rank(a, b)),
            _ => Err(CmdError::NotInt),
        },
        RangeBy::Score => parse_score_range(min, max)
            .map(Range::Score)
            .ok_or(CmdError::msg(ERR_NOT_FLOAT_RANGE)),
        RangeBy::Lex => parse_lex_range(min, max)
            .map(Range::Lex)
            .ok_or(CmdError::msg(ERR_LEX_RANGE)),
    }
}

/// The members of `z` in a range, ascending or descending, after `offset` and up to `limit`
/// (negative = no limit; a negative offset selects nothing, as in Redis).
fn collect_range<'a>(
    z: &'a ZSet,
    range: &'a Range,
    rev: bool,
    offset: i64,
    limit: i64,
) -> Vec<(&'a [u8], f64)> {
    let take = if limit < 0 {
        usize::MAX
    } else {
        limit as usize
    };
    let it = match range {
        // LIMIT does not apply to ranks (ZRANGE accepts only `LIMIT <any> -1` with them).
        Range::Rank(start, end) => {
            return match clamp_ranks(*start, *end, z.len()) {
                Some((s, e)) => z.range_by_rank(s, e, rev).collect(),
                None => Vec::new(),
            }
        }
        Range::Score(r) => z.range_by_score(*r, rev),
        Range::Lex(r) => {
            // Redis skips the offset before checking the far end of the range, which shows
            // when scores differ.
            if offset < 0 {
                return Vec::new();
            }
            let far_end = move |m: &[u8]| if rev { r.gte_min(m) } else { r.lte_max(m) };
            return z
                .range_by_lex_from(r, rev)
                .skip(offset as usize)
                .take_while(|(m, _)| far_end(m))
                .take(take)
                .collect();
        }
    };
    if offset < 0 {
        return Vec::new();
    }
    it.skip(offset as usize).take(take).collect()
}

/// ZRANGE and its older forms, which preset the range type and direction.
fn zrange_generic(
    ctx: &mut Ctx,
    args: &[Vec<u8>],
    by: Option<RangeBy>,
    rev: Option<bool>,
) -> CmdResult {
    zrange_to(ctx, args, by, rev, None)
}

/// ZRANGE's work; with `store`, the range is stored there (ZRANGESTORE) instead of replied.
fn zrange_to(
    ctx: &mut Ctx,
    args: &[Vec<u8>],
    by: Option<RangeBy>,
    rev: Option<bool>,
    store: Option<&[u8]>,
) -> CmdResult {
    let (mut by, mut rev) = (by, rev);
    let mut withscores = false;
    let (mut offset, mut limit) = (0i64, -1i64);
    let mut i = 4;
    while i < args.len() {
        let a = args[i].to_ascii_lowercase();
        let left = args.len() - i - 1;
        match a.as_slice() {
            b"withscores" if store.is_none() => withscores = true,
            b"limit" if left >= 2 => {
                match (parse_i64(&args[i + 1]), parse_i64(&args[i + 2])) {
                    (Some(o), Some(l)) => (offset, limit) = (o, l),
                    _ => return Err(CmdError::NotInt),
                }
                i += 2;
            }
            b"rev" if rev.is_none() => rev = Some(true),
            b"bylex" if by.is_none() => by = Some(RangeBy::Lex),
            b"byscore" if by.is_none() => by = Some(RangeBy::Score),
            _ => return Err(CmdError::Syntax),
        }
        i += 1;
    }
    let by = by.unwrap_or(RangeBy::Rank);
    let rev = rev.unwrap_or(false);
    if limit != -1 && by == RangeBy::Rank {
        return Err(CmdError::msg(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if withscores && by == RangeBy::Lex {
        return Err(CmdError::msg(
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    // Reversed score and lex ranges are given as max, min.
    let (min, max) = if rev && by != RangeBy::Rank {
        (&args[3], &args[2])
    } else {
        (&args[2], &args[3])
    };
    let range = parse_range(by, min, max)?;
    let paged_items = match paged::shared(ctx, &args[1]) {
        Some(m) => Some(paged::range(ctx, &m, &range, rev, offset, limit)?),
        None => None,
    };
    let (mut db, out) = split(ctx);
    let Some(dst) = store else {
        if let Some(items) = &paged_items {
            let items: Vec<(&[u8], f64)> = items.iter().map(|(m, s)| (m.as_slice(), *s)).collect();
            write_entries(out, &items, withscores, true);
            return Ok(());
        }
        match db.read::<ZSet>(&args[1])? {
            None => out.array(0),
            Some(z) => {
                let items = collect_range(z, &range, rev, offset, limit);
                write_entries(out, &items, withscores, true);
            }
        }
        return Ok(());
    };
    let result = match paged_items {
        Some(items) => {
            let mut r = ZSet::default();
            for (m, sc) in items {
                r.insert(m, sc);
            }
            r
        }
        None => match db.read::<ZSet>(&args[1])? {
            None => ZSet::default(),
            Some(z) => {
                let mut r = ZSet::default();
                for (m, sc) in collect_range(z, &range, rev, offset, limit) {
                    r.insert(m.to_vec(), sc);
                }
                r
            }
        },
    };
    let n = result.len();
    let existed = db.contains(dst);
    if n == 0 {
        db.remove(dst);
    } else {
        db.insert(dst, Value::ZSet(result));
    }
    out.int(n as i64);
    super::notify::notify_store(
        ctx,
        super::notify::class::ZSET,
        "zrangestore",
        dst,
        n > 0,
        existed,
    );
    paged::maybe_page_out(ctx, dst, 0);
    Ok(())
}

fn zrangestore(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    zrange_to(ctx, &args[1..], None, None, Some(&args[1]))
}

fn zrange(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    zrange_generic(ctx, args, None, None)
}

fn zrangebyscore(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    zrange_generic(ctx, args, Some(RangeBy::Score), Some(false))
}

fn zrevrangebyscore(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    zrange_generic(ctx, args, Some(RangeBy::Score), Some(true))
}

fn zrangebylex(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    zrange_generic(ctx, args, Some(RangeBy::Lex), Some(false))
}

fn zrevrangebylex(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    zrange_generic(ctx, args, Some(RangeBy::Lex), Some(true))
}

fn zrevrange(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    zrange_generic(ctx, args, Some(RangeBy::Rank), Some(true))
}

fn zcount_common(ctx: &mut Ctx, args: &[Vec<u8>], by: RangeBy) -> CmdResult {
    let range = parse_range(by, &args[2], &args[3])?;
    if let Some(m) = paged::shared(ctx, &args[1]) {
        let n = paged::count(ctx, &m, &range)?;
        ctx.out.int(n as i64);
        return Ok(());
    }
    let n = with_zset(ctx, &args[1], |z| match &range {
        Range::Score(r) => z.count_by_score(*r),
        Range::Lex(r) => z.range_by_lex(r, false).count(),
        Range::Rank(..) => unreachable!("counts are by score or lex"),
    })?;
    ctx.out.int(n.unwrap_or(0) as i64);
    Ok(())
}

fn zcount(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    zcount_common(ctx, args, RangeBy::Score)
}

fn zlexcount(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    zcount_common(ctx, args, RangeBy::Lex)
}

fn zremrange_common(ctx: &mut Ctx, args: &[Vec<u8>], by: RangeBy) -> CmdResult {
    let range = parse_range(by, &args[2], &args[3])?;
    // Taken rather than copied, as ZADD and ZREM do: every path below ends in `paged::remove`
    // (which stores it, or puts it back when nothing went) or in `paged::put_back`.
    let paged = paged::take(ctx, &args[1]);
    let doomed = match &paged {
        Some(m) => match paged::range(ctx, m, &range, false, 0, -1) {
            Ok(found) => Some(found.into_iter().map(|(m, _)| m).collect()),
            Err(e) => {
                if let Some(m) = paged {
                    paged::put_back(ctx, &args[1], m);
                }
                return Err(e);
            }
        },
        None => with_zset(ctx, &args[1], |z| {
            collect_range(z, &range, false, 0, -1)
                .into_iter()
                .map(|(m, _)| m.to_vec())
                .collect::<Vec<_>>()
        })?,
    };
    let doomed: Vec<Vec<u8>> = doomed.unwrap_or_default();
    if doomed.is_empty() {
        // Nothing in the range: the set is unchanged, and its key stays as clean as it was.
        if let Some(m) = paged {
            paged::put_back(ctx, &args[1], m);
        }
    } else {
        match paged {
            Some(m) => {
                paged::remove(ctx, &args[1], m, &doomed)?;
            }
            None => modify_zset(ctx, &args[1], |z| {
                doomed.iter().for_each(|m| {
                    z.remove(m);
                })
            }),
        }
        let event = match by {
            RangeBy::Rank => "zremrangebyrank",
            RangeBy::Score => "zremrangebyscore",
            RangeBy::Lex => "zremrangebylex",
        };
        super::notify::notify_removed(ctx, super::notify::class::ZSET, event, &args[1]);
    }
    ctx.out.int(doomed.len() as i64);
    Ok(())
}

fn zremrangebyrank(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    zremrange_common(ctx, args, RangeBy::Rank)
}

fn zremrangebyscore(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    zremrange_common(ctx, args, RangeBy::Score)
}

fn zremrangebylex(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    zremrange_common(ctx, args, RangeBy::Lex)
}

// ---- ZPOPMIN / ZPOPMAX ----

fn zpop(ctx: &mut Ctx, args: &[Vec<u8>], max: bool) -> CmdResult {
    let count = match args.len() {
        2 => None,
        3 => match parse_i64(&args[2]) {
            Some(n) if n >= 0 => Some(n as usize),
            _ => return Err(CmdError::NotPositive),
        },
        _ => return Err(CmdError::Syntax),
    };
    let popped = if let Some(m) = paged::take(ctx, &args[1]) {
        paged::pop(ctx, &args[1], m, count.unwrap_or(1) as u64, max)?
    } else {
        let len = with_zset(ctx, &args[1], ZSet::len)?;
        let n = count.unwrap_or(1).min(len.unwrap_or(0));
        if n == 0 {
            Vec::new()
        } else {
            modify_zset(ctx, &args[1], |z| {
                (0..n).filter_map(|_| z.pop(max)).collect::<Vec<_>>()
            })
        }
    };
    if popped.is_empty() {
        ctx.out.array(0);
        return Ok(());
    }
    let items: Vec<(&[u8], f64)> = popped.iter().map(|(m, s)| (m.as_slice(), *s)).collect();
    write_entries(ctx.out, &items, true, count.is_some());
    let event = if max { "zpopmax" } else { "zpopmin" };
    super::notify::notify_removed(ctx, super::notify::class::ZSET, event, &args[1]);
    Ok(())
}

fn zpopmin(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    zpop(ctx, args, false)
}

fn zpopmax(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    zpop(ctx, args, true)
}

// ---- ZUNIONSTORE / ZINTERSTORE ----

#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    fn apply(self, target: &mut f64, v: f64) {
        match self {
            Aggregate::Sum => {
                *target += v;
                // inf + -inf: Redis makes it 0.
                if target.is_nan() {
                    *target = 0.0;
                }
            }
            // NaN (inf * 0 weights) never wins.
            Aggregate::Min if v < *target => *target = v,
            Aggregate::Max if v > *target => *target = v,
            Aggregate::Min | Aggregate::Max => {}
        }
    }
}

fn weighted(score: f64, weight: f64) -> f64 {
    let v = score * weight;
    if v.is_nan() {
        0.0
    } else {
        v
    }
}

/// Source `i` of ZUNION/ZINTER/ZDIFF: a paged set read whole beforehand, or the key's value.
fn source<'a>(
    db: &'a mut Db<'_, Value>,
    paged: &'a [Option<Value>],
    keys: &[Vec<u8>],
    i: usize,
) -> Option<&'a Value> {
    match &paged[i] {
        Some(v) => Some(v),
        None => db.get(&keys[i]),
    }
}

/// Calls `f` with each (member, score) of a sorted set or set (members of a set score 1).
fn for_each_scored(v: Option<&Value>, mut f: impl FnMut(&[u8], f64)) {
    match v {
        Some(Value::ZSet(z)) => z.iter().for_each(|(m, s)| f(m, s)),
        Some(Value::Set(s)) => s.iter().for_each(|m| f(m, 1.0)),
        _ => {}
    }
}

fn score_in(v: Option<&Value>, m: &[u8]) -> Option<f64> {
    match v {
        Some(Value::ZSet(z)) => z.score(m),
        Some(Value::Set(s)) => s.contains(m).then_some(1.0),
        _ => None,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

/// ZUNION/ZINTER/ZDIFF, their STORE forms and ZINTERCARD (Redis's
/// zunionInterDiffGenericCommand). With `dst` the numkeys is at 2, else at 1.
fn zsetop(ctx: &mut Ctx, args: &[Vec<u8>], op: SetOp, dst: bool, card_only: bool) -> CmdResult {
    let at = if dst { 2 } else { 1 };
    let Some(numkeys) = parse_i64(&args[at]) else {
        return Err(CmdError::NotInt);
    };
    if numkeys < 1 {
        let name = String::from_utf8_lossy(&args[0]).to_lowercase();
        return Err(CmdError::msg(format!(
            "ERR at least 1 input key is needed for '{name}' command"
        )));
    }
    if numkeys > (args.len() - at - 1) as i64 {
        return Err(CmdError::Syntax);
    }
    let n = numkeys as usize;
    let keys = &args[at + 1..at + 1 + n];
    // A paged set source is read whole first (its pages were loaded before the command ran);
    // every other source is read where it is.
    let mut paged: Vec<Option<Value>> = super::sets_paged::materialize_sources(ctx, keys)?
        .into_iter()
        .map(|s| s.map(|s| Value::Set(Box::new(s))))
        .collect();
    for (k, p) in keys.iter().zip(paged.iter_mut()) {
        if p.is_none() {
            *p = paged::whole(ctx, k)?.map(Value::ZSet);
        }
    }
    // Every source must be a sorted set or a set; this is checked before the options.
    let mut sizes = Vec::with_capacity(n);
    for (k, p) in keys.iter().zip(&paged) {
        let size = match p {
            Some(Value::Set(s)) => s.len(),
            Some(Value::ZSet(z)) => z.len(),
            _ => match ctx.db().read_either::<ZSet, Set>(k)? {
                None => 0,
                Some(Either::A(z)) => z.len(),
                Some(Either::B(s)) => s.len(),
            },
        };
        sizes.push(size);
    }
    let mut weights = vec![1.0; n];
    let mut agg = Aggregate::Sum;
    let mut withscores = false;
    let mut limit = 0usize;
    let mut j = at + 1 + n;
    while j < args.len() {
        let remaining = args.len() - j;
        let opts = op != SetOp::Diff && !card_only;
        if opts && remaining > n && args[j].eq_ignore_ascii_case(b"weights") {
            for (w, a) in weights.iter_mut().zip(&args[j + 1..]) {
                match parse_score(a) {
                    Some(v) => *w = v,
                    None => return Err(CmdError::msg("ERR weight value is not a float")),
                }
            }
            j += n + 1;
        } else if opts && remaining >= 2 && args[j].eq_ignore_ascii_case(b"aggregate") {
            agg = match args[j + 1].to_ascii_lowercase().as_slice() {
                b"sum" => Aggregate::Sum,
                b"min" => Aggregate::Min,
                b"max" => Aggregate::Max,
                _ => return Err(CmdError::Syntax),
            };
            j += 2;
        } else if !dst && !card_only && args[j].eq_ignore_ascii_case(b"withscores") {
            withscores = true;
            j += 1;
        } else if card_only && remaining >= 2 && args[j].eq_ignore_ascii_case(b"limit") {
            match parse_i64(&args[j + 1]) {
                Some(l) if l >= 0 => limit = l as usize,
                _ => return Err(CmdError::msg("ERR LIMIT can't be negative")),
            }
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let mut acc: HashMap<Vec<u8>, f64> = HashMap::new();
    let mut db = ctx.db();
    match op {
        SetOp::Inter => {
            // Smallest sources first, as Redis orders them (it matters for float sums).
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by_key(|&i| sizes[i]);
            if card_only {
                if sizes[order[0]] == 0 {
                    ctx.out.int(0);
                    return Ok(());
                }
                let mut count = 0usize;
                let first: Vec<Vec<u8>> = {
                    let mut v = Vec::new();
                    for_each_scored(source(&mut db, &paged, keys, order[0]), |m, _| {
                        v.push(m.to_vec())
                    });
                    v
                };
                for m in first {
                    if order[1..]
                        .iter()
                        .all(|&i| score_in(source(&mut db, &paged, keys, i), &m).is_some())
                    {
                        count += 1;
                        if limit > 0 && count >= limit {
                            break;
                        }
                    }
                }
                ctx.out.int(count as i64);
                return Ok(());
            }
            if sizes[order[0]] > 0 {
                let first = order[0];
                for_each_scored(source(&mut db, &paged, keys, first), |m, s| {
                    acc.insert(m.to_vec(), weighted(s, weights[first]));
                });
                for &i in &order[1..] {
                    if acc.is_empty() {
                        break;
                    }
                    let from = source(&mut db, &paged, keys, i);
                    acc.retain(|m, v| match score_in(from, m) {
                        Some(s) => {
                            // Unlike the first source's, a NaN here (inf * 0) is left for
                            // the aggregate to deal with, as in Redis.
                            agg.apply(v, s * weights[i]);
                            true
                        }
                        None => false,
                    });
                }
            }
        }
        SetOp::Union => {
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by_key(|&i| sizes[i]);
            for &i in &order {
                for_each_scored(source(&mut db, &paged, keys, i), |m, s| {
                    let v = weighted(s, weights[i]);
                    match acc.get_mut(m) {
                        Some(t) => agg.apply(t, v),
                        None => {
                            acc.insert(m.to_vec(), v);
                        }
                    }
                });
            }
        }
        SetOp::Diff => {
            if sizes[0] > 0 {
                for_each_scored(source(&mut db, &paged, keys, 0), |m, s| {
                    acc.insert(m.to_vec(), s);
                });
                for i in 1..n {
                    if acc.is_empty() {
                        break;
                    }
                    let from = source(&mut db, &paged, keys, i);
                    acc.retain(|m, _| score_in(from, m).is_none());
                }
            }
        }
    }
    let mut z = ZSet::default();
    // A stored sorted set holds -0 as 0, but the reply of ZUNION/ZINTER/ZDIFF shows a computed
    // -0 (0 times a negative weight) as Redis does.
    let mut negative_zeros = HashSet::new();
    for (m, s) in acc {
        if s == 0.0 && s.is_sign_negative() && !dst {
            negative_zeros.insert(m.clone());
        }
        z.insert(m, s);
    }
    let len = z.len();
    if dst {
        let existed = db.contains(&args[1]);
        if len == 0 {
            db.remove(&args[1]);
        } else {
            db.insert(&args[1], Value::ZSet(z));
        }
        ctx.out.int(len as i64);
        let event = String::from_utf8_lossy(&args[0]).to_lowercase();
        super::notify::notify_store(
            ctx,
            super::notify::class::ZSET,
            &event,
            &args[1],
            len > 0,
            existed,
        );
        paged::maybe_page_out(ctx, &args[1], 0);
        return Ok(());
    }
    let items: Vec<(&[u8], f64)> = z
        .iter()
        .map(|(m, s)| match negative_zeros.contains(m) {
            true => (m, -0.0),
            false => (m, s),
        })
        .collect();
    write_entries(ctx.out, &items, withscores, true);
    Ok(())
}

fn zunionstore(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    zsetop(ctx, args, SetOp::Union, true, false)
}

fn zinterstore(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    zsetop(ctx, args, SetOp::Inter, true, false)
}

fn zdiffstore(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    zsetop(ctx, args, SetOp::Diff, true, false)
}

fn zunion(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    zsetop(ctx, args, SetOp::Union, false, false)
}

fn zinter(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    zsetop(ctx, args, SetOp::Inter, false, false)
}

fn zdiff(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    zsetop(ctx, args, SetOp::Diff, false, false)
}

fn zintercard(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    zsetop(ctx, args, SetOp::Inter, false, true)
}

// ---- ZRANDMEMBER ----

fn zrandmember(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    use rand::Rng;
    let (count, withscores) = super::random_count_args(args, b"withscores")?;
    super::refuse_huge_draws(ctx, &args[1], count)?;
    let mut whole = None;
    if let Some(m) = paged::shared(ctx, &args[1]) {
        match count {
            // Distinct picks that reach the size: the reply is the whole set.
            Some(n) if n > 0 && n.unsigned_abs() >= m.len() => {
                whole = Some(paged::materialize(ctx, &m)?);
            }
            _ => return zrandmember_paged(ctx, &m, count, withscores),
        }
    }
    let (mut db, out) = split(ctx);
    let z = match &whole {
        Some(z) => z,
        None => match db.read::<ZSet>(&args[1])? {
            Some(z) => z,
            None => return missing_key_reply(out, count.is_some()),
        },
    };
    let entries: Vec<(&[u8], f64)> = z.iter().collect();
    let mut rng = rand::rng();
    let Some(n) = count else {
        let (m, _) = entries[rng.random_range(0..entries.len())];
        out.bulk(m);
        return Ok(());
    };
    if n < 0 {
        let draws = usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX);
        let picks = (0..draws).map(|_| entries[rng.random_range(0..entries.len())]);
        write_entries_from(out, draws, picks, withscores, true);
        return Ok(());
    }
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    let picks: Vec<(&[u8], f64)> = if n >= entries.len() {
        entries
    } else {
        rand::seq::index::sample(&mut rng, entries.len(), n)
            .into_iter()
            .map(|i| entries[i])
            .collect()
    };
    write_entries(out, &picks, withscores, true);
    Ok(())
}

/// ZRANDMEMBER on a paged set below its size: picks from about the count's share of the member
/// pages (see `paged_sample`), not from the whole set.
fn zrandmember_paged(
    ctx: &mut Ctx,
    m: &crate::paged::zset::PagedZSet,
    count: Option<i64>,
    withscores: bool,
) -> CmdResult {
    use rand::Rng;
    let picked = paged::random_members(ctx, m, count)?;
    let out = &mut *ctx.out;
    if picked.is_empty() {
        // A paged set is never empty; member pages that read empty answer as a missing key.
        return missing_key_reply(out, count.is_some());
    }
    let Some(n) = count else {
        out.bulk(&picked[0].0);
        return Ok(());
    };
    fn as_entry((k, s): &(Vec<u8>, f64)) -> (&[u8], f64) {
        (k.as_slice(), *s)
    }
    if n >= 0 {
        write_entries_from(
            out,
            picked.len(),
            picked.iter().map(as_entry),
            withscores,
            true,
        );
    } else {
        let mut rng = rand::rng();
        let draws = usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX);
        let picks = (0..draws).map(|_| as_entry(&picked[rng.random_range(0..picked.len())]));
        write_entries_from(out, draws, picks, withscores, true);
    }
    Ok(())
}

// ---- ZMPOP / BZMPOP / BZPOPMIN / BZPOPMAX ----

/// Parses `numkeys key... MIN|MAX [COUNT n]` from `at`: (keys, max, count).
fn parse_mpop(args: &[Vec<u8>], at: usize) -> Result<(&[Vec<u8>], bool, usize), CmdError> {
    let numkeys = match parse_i64(&args[at]) {
        Some(n) if n > 0 && n <= i32::MAX as i64 => n as usize,
        _ => {
            return Err(CmdError::msg("ERR numkeys should be greater than 0"));
        }
    };
    let where_at = at + 1 + numkeys;
    if where_at >= args.len() {
        return Err(CmdError::Syntax);
    }
    let keys = &args[at + 1..where_at];
    let max = match args[where_at].to_ascii_lowercase().as_slice() {
        b"min" => false,
        b"max" => true,
        _ => {
            return Err(CmdError::Syntax);
        }
    };
    let mut count = None;
    let mut j = where_at + 1;
    while j < args.len() {
        if count.is_none() && args[j].eq_ignore_ascii_case(b"count") && j + 1 < args.len() {
            match parse_i64(&args[j + 1]) {
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
    Ok((keys, max, count.unwrap_or(1)))
}

/// Pops up to `count` from the first non-empty sorted set of `keys`: the key and the
/// elements. `Err` after a WRONGTYPE reply (unless `skip_wrongtype`, for a woken client).
type ZPopped = (Vec<u8>, Vec<(Vec<u8>, f64)>);
fn zpop_first(
    ctx: &mut Ctx,
    keys: &[Vec<u8>],
    max: bool,
    count: usize,
) -> Result<Option<ZPopped>, CmdError> {
    let woken = ctx.client.woken;
    for k in keys {
        if let Some(m) = paged::take(ctx, k) {
            let popped = paged::pop(ctx, k, m, count as u64, max)?;
            let event = if max { "zpopmax" } else { "zpopmin" };
            super::notify::notify_removed(ctx, super::notify::class::ZSET, event, k);
            return Ok(Some((k.clone(), popped)));
        }
        match ctx.db().read::<ZSet>(k) {
            Ok(Some(z)) if !z.is_empty() => {}
            Ok(_) => continue,
            Err(_) if woken => continue,
            Err(e) => return Err(e),
        }
        let popped = modify_zset(ctx, k, |z| {
            (0..count).map_while(|_| z.pop(max)).collect::<Vec<_>>()
        });
        let event = if max { "zpopmax" } else { "zpopmin" };
        super::notify::notify_removed(ctx, super::notify::class::ZSET, event, k);
        return Ok(Some((k.clone(), popped)));
    }
    Ok(None)
}

fn write_mpop(out: &mut Reply, key: &[u8], popped: &[(Vec<u8>, f64)]) {
    out.array(2);
    out.bulk(key);
    out.array(popped.len());
    for (m, s) in popped {
        out.array(2);
        out.bulk(m);
        out.double(*s);
    }
}

fn zmpop(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let (keys, max, count) = parse_mpop(args, 1)?;
    match zpop_first(ctx, keys, max, count)? {
        None => ctx.out.null_array(),
        Some((k, popped)) => write_mpop(ctx.out, &k, &popped),
    }
    Ok(())
}

fn bzmpop(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let timeout = super::blocking::parse_timeout(&args[1])?;
    let (keys, max, count) = parse_mpop(args, 2)?;
    match zpop_first(ctx, keys, max, count)? {
        Some((k, popped)) => write_mpop(ctx.out, &k, &popped),
        None if ctx.client.multi.is_some() || ctx.client.in_exec => ctx.out.null_array(),
        None => {
            ctx.action = super::Action::Block {
                timeout_ms: timeout,
            }
        }
    }
    Ok(())
}

fn bzpop(ctx: &mut Ctx, args: &[Vec<u8>], max: bool) -> CmdResult {
    let timeout = super::blocking::parse_timeout(&args[args.len() - 1])?;
    match zpop_first(ctx, &args[1..args.len() - 1], max, 1)? {
        Some((k, popped)) => {
            let (m, s) = &popped[0];
            ctx.out.array(3);
            ctx.out.bulk(&k);
            ctx.out.bulk(m);
            ctx.out.double(*s);
        }
        None if ctx.client.multi.is_some() || ctx.client.in_exec => ctx.out.null_array(),
        None => {
            ctx.action = super::Action::Block {
                timeout_ms: timeout,
            }
        }
    }
    Ok(())
}

fn bzpopmin(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    bzpop(ctx, args, false)
}

fn bzpopmax(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    bzpop(ctx, args, true)
}

// ---- ZSCAN ----

fn zscan(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let cursor = scan_cursor(&args[2])?;
    if let Some(m) = paged::shared(ctx, &args[1]) {
        let ScanOpts { pattern, .. } = scan_opts(&args[3..], false)?;
        let (next, batch) = paged::scan_page(ctx, &m, cursor, pattern.as_deref())?;
        let mut items = Vec::with_capacity(batch.len() * 2);
        for (m, s) in batch {
            items.push(m);
            items.push(fmt_double(s).into_bytes());
        }
        scan_reply(ctx.out, next, &items);
        return Ok(());
    }
    let (mut db, out) = split(ctx);
    let Some(z) = db.read::<ZSet>(&args[1])? else {
        scan_reply(out, 0, &[]);
        return Ok(());
    };
    let ScanOpts { pattern, count, .. } = scan_opts(&args[3..], false)?;
    let (next, batch) = scan_batch(z.iter(), z.len(), cursor, count);
    let mut items = Vec::with_capacity(batch.len() * 2);
    for (m, s) in batch {
        if pattern.as_ref().is_none_or(|p| glob_match(p, m, false)) {
            items.push(m.to_vec());
            items.push(fmt_double(s).into_bytes());
        }
    }
    scan_reply(out, next, &items);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_parse_like_strtod() {
        assert_eq!(parse_score(b"1.5"), Some(1.5));
        assert_eq!(parse_score(b"0x10"), Some(16.0));
        assert_eq!(parse_score(b"-0x1.8p1"), Some(-3.0));
        assert_eq!(parse_score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_score(b"0e5"), Some(0.0));
        for bad in [
            &b""[..],
            b" 1",
            b"1 ",
            b"nan",
            b"1e400",
            b"1e-400",
            b"0x",
            b"abc",
        ] {
            assert_eq!(parse_score(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_range_num(b""), Some(0.0));
        assert_eq!(parse_range_num(b" 2"), Some(2.0));
        assert_eq!(parse_range_num(b"1e400"), Some(f64::INFINITY));
        assert_eq!(parse_range_num(b" "), None);
        assert_eq!(parse_score_bound(b"("), Some((0.0, true)));
    }

    #[test]
    fn rank_clamping() {
        assert_eq!(clamp_ranks(0, -1, 5), Some((0, 4)));
        assert_eq!(clamp_ranks(-100, 100, 5), Some((0, 4)));
        assert_eq!(clamp_ranks(3, 2, 5), None);
        assert_eq!(clamp_ranks(5, 10, 5), None);
        assert_eq!(clamp_ranks(0, -1, 0), None);
    }
}
