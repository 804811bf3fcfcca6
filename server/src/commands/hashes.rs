//! Hash commands.

use super::args::{scan_cursor, scan_hash, scan_opts, ScanOpts};
use super::flags::*;
use super::hashes_paged as paged;
use super::typed::Hash;
use super::{cmd, CommandSpec, Ctx, KEY1};
use super::{CmdError, CmdResult, TypedDb};
use crate::glob::glob_match;
use crate::paged::hash::PagedHash;
use crate::reply::Reply;
use crate::util::{fmt_incr_float, parse_f64, parse_i64};
use crate::value::Value;
use kvtier_core::Db;
use rand::Rng;

pub const COMMANDS: &[CommandSpec] = &[
    cmd("hset", -4, WRITE | DENYOOM | FAST, KEY1, hset),
    cmd("hsetnx", 4, WRITE | DENYOOM | FAST, KEY1, hsetnx),
    cmd("hget", 3, READONLY | FAST, KEY1, hget),
    cmd("hmset", -4, WRITE | DENYOOM | FAST, KEY1, hmset),
    cmd("hmget", -3, READONLY | FAST, KEY1, hmget),
    cmd("hdel", -3, WRITE | FAST, KEY1, hdel),
    cmd("hlen", 2, READONLY | FAST, KEY1, hlen),
    cmd("hstrlen", 3, READONLY | FAST, KEY1, hstrlen),
    cmd("hexists", 3, READONLY | FAST, KEY1, hexists),
    cmd("hkeys", 2, READONLY, KEY1, hkeys),
    cmd("hvals", 2, READONLY, KEY1, hvals),
    cmd("hgetall", 2, READONLY, KEY1, hgetall),
    cmd("hincrby", 4, WRITE | DENYOOM | FAST, KEY1, hincrby),
    cmd(
        "hincrbyfloat",
        4,
        WRITE | DENYOOM | FAST,
        KEY1,
        hincrbyfloat,
    ),
    cmd("hscan", -3, READONLY, KEY1, hscan),
    cmd("hrandfield", -2, READONLY, KEY1, hrandfield),
];

/// A field and its value, borrowed from a hash.
type Entry<'h> = (&'h [u8], &'h [u8]);

/// Hashes up to this many fields, none longer than [`SMALL_HASH_VALUE`], are what Redis keeps
/// as a listpack (its default `hash-max-listpack-*`): HSCAN returns them whole in one page.
const SMALL_HASH_ENTRIES: usize = 128;
const SMALL_HASH_VALUE: usize = 64;

/// The client's DB and its reply buffer, borrowed side by side so a handler can write a reply
/// straight from a value it is looking at.
fn db_out<'a>(ctx: &'a mut Ctx<'_>) -> (Db<'a, Value>, &'a mut Reply) {
    (ctx.engine.db(ctx.client.db, ctx.now_ms), &mut *ctx.out)
}

/// Sets the field/value pairs of HSET/HMSET; the number of new fields.
fn set_pairs(ctx: &mut Ctx, args: &[Vec<u8>]) -> Result<i64, CmdError> {
    if !args.len().is_multiple_of(2) {
        return Err(CmdError::arity(&args[0]));
    }
    if let Some(m) = paged::manifest(ctx, &args[1]) {
        return paged::set_pairs(ctx, &args[1], m, &args[2..]);
    }
    let mut db = ctx.db();
    let h = db.entry::<Hash>(&args[1])?;
    let len_before = h.len();
    let mut added = 0;
    for pair in args[2..].chunks(2) {
        added += h.insert(pair[0].clone(), pair[1].clone()).is_none() as i64;
    }
    paged::maybe_page_out(ctx, &args[1], len_before);
    Ok(added)
}

fn hset(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let existed = super::notify::existed_for_new(ctx, &args[1]);
    let n = set_pairs(ctx, args)?;
    ctx.out.int(n);
    super::notify::notify_new(ctx, existed, &args[1]);
    super::notify::notify(ctx, super::notify::class::HASH, "hset", &args[1]);
    Ok(())
}

fn hmset(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let existed = super::notify::existed_for_new(ctx, &args[1]);
    set_pairs(ctx, args)?;
    ctx.out.ok();
    super::notify::notify_new(ctx, existed, &args[1]);
    super::notify::notify(ctx, super::notify::class::HASH, "hset", &args[1]);
    Ok(())
}

fn hsetnx(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    if let Some(m) = paged::manifest(ctx, &args[1]) {
        let new = paged::get(ctx, &m, &args[2])?.is_none()
            && paged::set(ctx, &args[1], m, &args[2], args[3].clone())?;
        ctx.out.int(i64::from(new));
        if new {
            super::notify::notify(ctx, super::notify::class::HASH, "hset", &args[1]);
        }
        return Ok(());
    }
    let (mut db, out) = db_out(ctx);
    match db.read::<Hash>(&args[1])? {
        Some(h) if h.contains_key(&args[2]) => out.int(0),
        h => {
            let existed = h.is_some();
            let h = db.entry::<Hash>(&args[1])?;
            let len_before = h.len();
            h.insert(args[2].clone(), args[3].clone());
            out.int(1);
            paged::maybe_page_out(ctx, &args[1], len_before);
            super::notify::notify_new(ctx, existed, &args[1]);
            super::notify::notify(ctx, super::notify::class::HASH, "hset", &args[1]);
        }
    }
    Ok(())
}

fn hget(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    if let Some(m) = paged::manifest(ctx, &args[1]) {
        match paged::get(ctx, &m, &args[2])? {
            Some(v) => ctx.out.bulk(&v),
            None => ctx.out.null(),
        }
        return Ok(());
    }
    let (mut db, out) = db_out(ctx);
    match db.read::<Hash>(&args[1])?.and_then(|h| h.get(&args[2])) {
        Some(v) => out.bulk(v),
        None => out.null(),
    }
    Ok(())
}

fn hmget(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    if let Some(m) = paged::manifest(ctx, &args[1]) {
        let mut values = Vec::with_capacity(args.len() - 2);
        for f in &args[2..] {
            values.push(paged::get(ctx, &m, f)?);
        }
        ctx.out.array(values.len());
        for v in values {
            match v {
                Some(v) => ctx.out.bulk(&v),
                None => ctx.out.null(),
            }
        }
        return Ok(());
    }
    let (mut db, out) = db_out(ctx);
    let h = db.read::<Hash>(&args[1])?;
    out.array(args.len() - 2);
    for f in &args[2..] {
        match h.and_then(|h| h.get(f)) {
            Some(v) => out.bulk(v),
            None => out.null(),
        }
    }
    Ok(())
}

fn hdel(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let ordered_up_to = ctx.shared.config.settings().hash_max_listpack_entries as usize;
    if let Some(m) = paged::manifest(ctx, &args[1]) {
        let removed = paged::remove(ctx, &args[1], m, &args[2..])?;
        ctx.out.int(removed as i64);
        if removed > 0 {
            super::notify::notify(ctx, super::notify::class::HASH, "hdel", &args[1]);
            if !ctx.db().contains(&args[1]) {
                super::notify::notify(ctx, super::notify::class::GENERIC, "del", &args[1]);
            }
        }
        return Ok(());
    }
    let (mut db, out) = db_out(ctx);
    let key = &args[1];
    match db.read::<Hash>(key)? {
        Some(h) if args[2..].iter().any(|f| h.contains_key(f)) => {}
        _ => {
            out.int(0);
            return Ok(());
        }
    }
    let h = db.entry::<Hash>(key)?;
    // A hash of listpack size keeps its order, as Redis's listpack does; a larger one is a
    // hash table in Redis (no order), where an O(1) removal is what matters.
    let remove = |h: &mut Hash, f: &[u8]| {
        if h.len() <= ordered_up_to {
            h.shift_remove(f)
        } else {
            h.swap_remove(f)
        }
    };
    let removed = args[2..].iter().filter(|f| remove(h, f).is_some()).count();
    let emptied = h.is_empty();
    if emptied {
        db.remove(key);
    }
    out.int(removed as i64);
    super::notify::notify(ctx, super::notify::class::HASH, "hdel", key);
    if emptied {
        super::notify::notify(ctx, super::notify::class::GENERIC, "del", key);
    }
    Ok(())
}

fn hlen(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    if let Some(m) = paged::manifest(ctx, &args[1]) {
        ctx.out.int(m.len as i64);
        return Ok(());
    }
    let (mut db, out) = db_out(ctx);
    let h = db.read::<Hash>(&args[1])?;
    out.int(h.map_or(0, Hash::len) as i64);

    Ok(())
}

fn hstrlen(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    if let Some(m) = paged::manifest(ctx, &args[1]) {
        let n = paged::get(ctx, &m, &args[2])?.map_or(0, |v| v.len());
        ctx.out.int(n as i64);
        return Ok(());
    }
    let (mut db, out) = db_out(ctx);
    let h = db.read::<Hash>(&args[1])?;
    out.int(h.and_then(|h| h.get(&args[2])).map_or(0, <[u8]>::len) as i64);

    Ok(())
}

fn hexists(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    if let Some(m) = paged::manifest(ctx, &args[1]) {
        let found = paged::get(ctx, &m, &args[2])?.is_some();
        ctx.out.int(i64::from(found));
        return Ok(());
    }
    let (mut db, out) = db_out(ctx);
    let h = db.read::<Hash>(&args[1])?;
    out.int(h.is_some_and(|h| h.contains_key(&args[2])) as i64);

    Ok(())
}

fn hkeys(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    if let Some(m) = paged::manifest(ctx, &args[1]) {
        return paged::all(ctx, &m, true, false);
    }
    let (mut db, out) = db_out(ctx);
    let h = db.read::<Hash>(&args[1])?;
    match h {
        Some(h) => out.bulks(h.keys()),
        None => out.array(0),
    }

    Ok(())
}

fn hvals(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    if let Some(m) = paged::manifest(ctx, &args[1]) {
        return paged::all(ctx, &m, false, true);
    }
    let (mut db, out) = db_out(ctx);
    let h = db.read::<Hash>(&args[1])?;
    match h {
        Some(h) => out.bulks(h.values()),
        None => out.array(0),
    }

    Ok(())
}

fn hgetall(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    if let Some(m) = paged::manifest(ctx, &args[1]) {
        return paged::all(ctx, &m, true, true);
    }
    let (mut db, out) = db_out(ctx);
    let h = db.read::<Hash>(&args[1])?;
    let h = h.map(|h| h.iter());
    out.map(h.as_ref().map_or(0, |i| i.len()));
    for (k, v) in h.into_iter().flatten() {
        out.bulk(k);
        out.bulk(v);
    }

    Ok(())
}

/// A field's value in a paged (`m`) or an ordinary hash.
fn field_of(
    ctx: &mut Ctx,
    m: Option<PagedHash>,
    key: &[u8],
    field: &[u8],
) -> Result<Option<Vec<u8>>, CmdError> {
    match m {
        Some(m) => paged::get(ctx, &m, field),
        None => Ok(ctx
            .db()
            .read::<Hash>(key)?
            .and_then(|h| h.get(field))
            .map(<[u8]>::to_vec)),
    }
}

/// Sets one field of a paged (`m`) or an ordinary hash (which may become paged).
fn put_field(
    ctx: &mut Ctx,
    m: Option<PagedHash>,
    key: &[u8],
    field: &[u8],
    value: Vec<u8>,
) -> Result<(), CmdError> {
    match m {
        Some(m) => {
            paged::set(ctx, key, m, field, value)?;
        }
        None => {
            let mut db = ctx.db();
            let h = db.entry::<Hash>(key)?;
            let len_before = h.len();
            h.insert(field.to_vec(), value);
            paged::maybe_page_out(ctx, key, len_before);
        }
    }
    Ok(())
}

fn hincrby(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let Some(delta) = parse_i64(&args[3]) else {
        return Err(CmdError::NotInt);
    };
    let m = paged::manifest(ctx, &args[1]);
    let old = field_of(ctx, m, &args[1], &args[2])?;
    let current = match old {
        None => 0,
        Some(v) => parse_i64(&v).ok_or(CmdError::msg("ERR hash value is not an integer"))?,
    };
    let Some(n) = current.checked_add(delta) else {
        return Err(CmdError::msg("ERR increment or decrement would overflow"));
    };
    let mut b = itoa::Buffer::new();
    let text = b.format(n).as_bytes().to_vec();
    let existed = m.is_some() || super::notify::existed_for_new(ctx, &args[1]);
    put_field(ctx, m, &args[1], &args[2], text)?;
    ctx.out.int(n);
    super::notify::notify_new(ctx, existed, &args[1]);
    super::notify::notify(ctx, super::notify::class::HASH, "hincrby", &args[1]);
    Ok(())
}

fn hincrbyfloat(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let Some(delta) = parse_f64(&args[3]) else {
        return Err(CmdError::NotFloat);
    };
    if !delta.is_finite() {
        return Err(CmdError::msg("ERR value is NaN or Infinity"));
    }
    let m = paged::manifest(ctx, &args[1]);
    let old = field_of(ctx, m, &args[1], &args[2])?;
    let current = match old {
        None => 0.0,
        Some(v) => parse_f64(&v).ok_or(CmdError::msg("ERR hash value is not a float"))?,
    };
    let n = current + delta;
    if !n.is_finite() {
        return Err(CmdError::msg("ERR increment would produce NaN or Infinity"));
    }
    let text = fmt_incr_float(n).into_bytes();
    ctx.out.bulk(&text);
    let existed = m.is_some() || super::notify::existed_for_new(ctx, &args[1]);
    put_field(ctx, m, &args[1], &args[2], text)?;
    super::notify::notify_new(ctx, existed, &args[1]);
    super::notify::notify(ctx, super::notify::class::HASH, "hincrbyfloat", &args[1]);
    Ok(())
}

fn hscan(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let cursor = scan_cursor(&args[2])?;
    if let Some(m) = paged::manifest(ctx, &args[1]) {
        let ScanOpts { pattern, .. } = scan_opts(&args[3..], false)?;
        return paged::scan(ctx, &m, cursor, pattern);
    }
    let (mut db, out) = db_out(ctx);
    let h = match db.read::<Hash>(&args[1])? {
        None => {
            out.array(2);
            out.bulk(b"0");
            out.array(0);
            return Ok(());
        }
        Some(h) => h,
    };
    let ScanOpts { pattern, count, .. } = scan_opts(&args[3..], false)?;
    let small = h.len() <= SMALL_HASH_ENTRIES
        && h.iter()
            .all(|(k, v)| k.len() <= SMALL_HASH_VALUE && v.len() <= SMALL_HASH_VALUE);
    let (mut page, next): (Vec<Entry>, u64) = if small {
        (h.iter().collect(), 0)
    } else {
        let mut rest: Vec<(u64, &[u8], &[u8])> = h
            .iter()
            .map(|(k, v)| (scan_hash(k), k, v))
            .filter(|e| e.0 >= cursor)
            .collect();
        let by_pos = |a: &(u64, &[u8], &[u8]), b: &(u64, &[u8], &[u8])| {
            a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1))
        };
        let mut next = 0;
        if rest.len() > count {
            // The first `count` in scan order go first, and `rest[count]` is the next one.
            rest.select_nth_unstable_by(count, by_pos);
            let boundary = rest[count].0;
            if rest[..count].iter().any(|e| e.0 < boundary) {
                // Never split fields sharing a position: they all go in the next page.
                rest.truncate(count);
                rest.retain(|e| e.0 < boundary);
                next = boundary;
            } else {
                // More fields share the first position than COUNT: return them all.
                next = rest
                    .iter()
                    .map(|e| e.0)
                    .filter(|&p| p > boundary)
                    .min()
                    .unwrap_or(0);
                rest.retain(|e| e.0 == boundary);
            }
        }
        rest.sort_unstable_by(by_pos);
        (rest.into_iter().map(|(_, k, v)| (k, v)).collect(), next)
    };
    if let Some(p) = pattern {
        page.retain(|(k, _)| glob_match(&p, k, false));
    }
    out.array(2);
    let mut b = itoa::Buffer::new();
    out.bulk(b.format(next).as_bytes());
    out.array(page.len() * 2);
    for (k, v) in page {
        out.bulk(k);
        out.bulk(v);
    }
    Ok(())
}

fn hrandfield(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let (count, withvalues) = super::random_count_args(args, b"withvalues")?;
    super::refuse_huge_draws(ctx, &args[1], count)?;
    if let Some(m) = paged::manifest(ctx, &args[1]) {
        return hrandfield_paged(ctx, &m, count, withvalues);
    }
    let (mut db, out) = db_out(ctx);
    let Some(h) = db.read::<Hash>(&args[1])? else {
        return super::args::missing_key_reply(out, count.is_some());
    };
    random_fields(out, h, count, withvalues)
}

/// HRANDFIELD on a paged hash: from a page or a few (about the count's share; see
/// `paged_sample`), and from the whole hash only when distinct picks reach its size.
fn hrandfield_paged(
    ctx: &mut Ctx,
    m: &crate::paged::hash::PagedHash,
    count: Option<i64>,
    withvalues: bool,
) -> CmdResult {
    use super::paged_sample;
    let empty = |out: &mut Reply| {
        // A paged hash is never empty; pages that read empty answer as a missing key.
        super::args::missing_key_reply(out, count.is_some())
    };
    let Some(n) = count else {
        return match paged_sample::random_entry(ctx, m)? {
            Some((k, _)) => {
                ctx.out.bulk(&k);
                Ok(())
            }
            None => empty(ctx.out),
        };
    };
    if n > 0 && n.unsigned_abs() >= m.len {
        let h = paged::materialize(ctx, m)?;
        if h.is_empty() {
            return empty(ctx.out);
        }
        return random_fields(ctx.out, &h, count, withvalues);
    }
    if n >= 0 {
        let picks = paged_sample::sample_distinct(ctx, m, n as usize)?;
        reply_fields(ctx.out, picks.len(), withvalues);
        picks
            .iter()
            .for_each(|(k, v)| emit_field(ctx.out, (k, v), withvalues));
        return Ok(());
    }
    let pool = paged_sample::draw_pool(ctx, m)?;
    if pool.is_empty() {
        return empty(ctx.out);
    }
    let draws = usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX);
    let mut rng = rand::rng();
    reply_fields(ctx.out, draws, withvalues);
    for _ in 0..draws {
        let (k, v) = &pool[rng.random_range(0..pool.len())];
        emit_field(ctx.out, (k, v), withvalues);
    }
    Ok(())
}

/// The array header of an HRANDFIELD reply of `picks` fields.
fn reply_fields(out: &mut Reply, picks: usize, withvalues: bool) {
    out.array(if withvalues && !out.resp3 {
        picks * 2
    } else {
        picks
    });
}

/// One field of an HRANDFIELD reply (a field-value pair in RESP3).
fn emit_field(out: &mut Reply, (k, v): Entry, withvalues: bool) {
    if withvalues && out.resp3 {
        out.array(2);
    }
    out.bulk(k);
    if withvalues {
        out.bulk(v);
    }
}

/// HRANDFIELD's reply from a non-empty hash.
fn random_fields(out: &mut Reply, h: &Hash, count: Option<i64>, withvalues: bool) -> CmdResult {
    let entries: Vec<Entry> = h.iter().collect();
    let mut rng = rand::rng();
    let Some(n) = count else {
        let (k, _) = entries[rng.random_range(0..entries.len())];
        out.bulk(k);
        return Ok(());
    };
    let emit = |out: &mut Reply, e: Entry| emit_field(out, e, withvalues);
    let reply_len = |out: &mut Reply, picks: usize| reply_fields(out, picks, withvalues);
    if n >= 0 {
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        if n >= entries.len() {
            reply_len(out, entries.len());
            entries.into_iter().for_each(|e| emit(out, e));
        } else {
            reply_len(out, n);
            for i in rand::seq::index::sample(&mut rng, entries.len(), n) {
                emit(out, entries[i]);
            }
        }
    } else {
        // Negative: that many picks, repeats allowed.
        let n = usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX);
        reply_len(out, n);
        for _ in 0..n {
            emit(out, entries[rng.random_range(0..entries.len())]);
        }
    }
    Ok(())
}
