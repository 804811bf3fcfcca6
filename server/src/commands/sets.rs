//! Set commands, on an ordinary set and on a paged one (`sets_paged`): each command first
//! asks for a paged set's manifest and otherwise works on the one-record set.

use super::args::{scan_cursor, scan_hash, scan_opts, ScanOpts};
use super::flags::*;
use super::sets_paged as paged;
use super::typed::Set;
use super::{cmd, CommandSpec, Ctx, KeySpec, ALL_KEYS, KEY1};
use super::{CmdError, CmdResult, TypedDb};
use crate::glob::glob_match;
use crate::reply::Reply;
use crate::util::parse_i64;
use crate::value::Value;
use kvtier_core::Db;
use rand::seq::IteratorRandom;
use rand::Rng;

pub const COMMANDS: &[CommandSpec] = &[
    cmd("sadd", -3, WRITE | DENYOOM | FAST, KEY1, sadd),
    cmd("srem", -3, WRITE | FAST, KEY1, srem),
    cmd("smembers", 2, READONLY, KEY1, smembers),
    cmd("sismember", 3, READONLY | FAST, KEY1, sismember),
    cmd("smismember", -3, READONLY | FAST, KEY1, smismember),
    cmd("scard", 2, READONLY | FAST, KEY1, scard),
    cmd("spop", -2, WRITE | FAST, KEY1, spop),
    cmd("srandmember", -2, READONLY, KEY1, srandmember),
    cmd("smove", 4, WRITE | FAST, KeySpec::Range(1, 2, 1), smove),
    cmd("sinter", -2, READONLY, ALL_KEYS, sinter),
    cmd("sunion", -2, READONLY, ALL_KEYS, sunion),
    cmd("sdiff", -2, READONLY, ALL_KEYS, sdiff),
    cmd("sinterstore", -3, WRITE | DENYOOM, ALL_KEYS, sinterstore),
    cmd("sunionstore", -3, WRITE | DENYOOM, ALL_KEYS, sunionstore),
    cmd("sdiffstore", -3, WRITE | DENYOOM, ALL_KEYS, sdiffstore),
    cmd("sintercard", -3, READONLY, KeySpec::Numkeys(1), sintercard),
    cmd("sscan", -3, READONLY, KEY1, sscan),
];

/// The selected DB and the reply buffer at once, for replies built from borrowed values.
pub(crate) fn split<'c>(ctx: &'c mut Ctx) -> (Db<'c, Value>, &'c mut Reply) {
    (ctx.engine.db(ctx.client.db, ctx.now_ms), ctx.out)
}

/// Applies `f` to the set at `key`: `None` if absent.
fn with_set<R>(
    ctx: &mut Ctx,
    key: &[u8],
    f: impl FnOnce(&Set) -> R,
) -> Result<Option<R>, CmdError> {
    Ok(ctx.db().read::<Set>(key)?.map(f))
}

fn sadd(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let key = &args[1];
    let members = &args[2..];
    if let Some(m) = paged::manifest(ctx, key) {
        let added = paged::add(ctx, key, m, members)?;
        ctx.out.int(added as i64);
        if added > 0 {
            super::notify::notify(ctx, super::notify::class::SET, "sadd", key);
        }
        return Ok(());
    }
    // One lookup (one keyspace hit or miss, as before paging): the size, for the paging check.
    let state = with_set(ctx, key, |s| {
        (s.len(), members.iter().any(|m| !s.contains(m)))
    })?;
    let len_before = state.map_or(0, |(n, _)| n);
    let missing = state.map(|(_, any)| any);
    let mut db = ctx.db();
    let added = match missing {
        None => {
            let set: Set = members.iter().map(Vec::as_slice).collect();
            let n = set.len();
            db.insert(key, Value::Set(Box::new(set)));
            n
        }
        Some(false) => 0,
        Some(true) => {
            let Some(Value::Set(s)) = db.get_mut(key) else {
                unreachable!("checked above")
            };
            members.iter().filter(|m| s.insert(m)).count()
        }
    };
    ctx.out.int(added as i64);
    if added > 0 {
        paged::maybe_page_out(ctx, key, len_before);
        super::notify::notify_new(ctx, missing.is_some(), key);
        super::notify::notify(ctx, super::notify::class::SET, "sadd", key);
    }
    Ok(())
}

fn srem(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let key = &args[1];
    let members = &args[2..];
    if let Some(m) = paged::manifest(ctx, key) {
        let removed = paged::remove(ctx, key, m, members)?;
        ctx.out.int(removed as i64);
        if removed > 0 {
            super::notify::notify_removed(ctx, super::notify::class::SET, "srem", key);
        }
        return Ok(());
    }
    let present = with_set(ctx, key, |s| members.iter().any(|m| s.contains(m)))?;
    if present != Some(true) {
        ctx.out.int(0);
        return Ok(());
    }
    let mut db = ctx.db();
    let Some(Value::Set(s)) = db.get_mut(key) else {
        unreachable!("checked above")
    };
    let removed = members.iter().filter(|m| s.remove(m.as_slice())).count();
    let emptied = s.is_empty();
    if emptied {
        db.remove(key);
    }
    ctx.out.int(removed as i64);
    super::notify::notify(ctx, super::notify::class::SET, "srem", key);
    if emptied {
        super::notify::notify(ctx, super::notify::class::GENERIC, "del", key);
    }
    Ok(())
}

fn smembers(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    if let Some(m) = paged::manifest(ctx, &args[1]) {
        return paged::members_reply(ctx, &m);
    }
    let (mut db, out) = split(ctx);
    match db.read::<Set>(&args[1])? {
        None => out.set(0),
        Some(s) => {
            out.set(s.len());
            s.iter().for_each(|m| out.bulk(m));
        }
    }
    Ok(())
}

fn sismember(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    if let Some(m) = paged::manifest(ctx, &args[1]) {
        let found = paged::contains(ctx, &m, &args[2])?;
        ctx.out.int(i64::from(found));
        return Ok(());
    }
    let found = with_set(ctx, &args[1], |s| s.contains(&args[2]))?;
    ctx.out.int(found.unwrap_or(false) as i64);

    Ok(())
}

fn smismember(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let members = &args[2..];
    if let Some(m) = paged::manifest(ctx, &args[1]) {
        let mut found = Vec::with_capacity(members.len());
        for member in members {
            found.push(paged::contains(ctx, &m, member)?);
        }
        ctx.out.array(members.len());
        found.iter().for_each(|&f| ctx.out.int(i64::from(f)));
        return Ok(());
    }
    let found = with_set(ctx, &args[1], |s| {
        members.iter().map(|m| s.contains(m)).collect::<Vec<_>>()
    })?;
    ctx.out.array(members.len());
    for f in found.unwrap_or_else(|| vec![false; members.len()]) {
        ctx.out.int(f as i64);
    }
    Ok(())
}

fn scard(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    if let Some(m) = paged::manifest(ctx, &args[1]) {
        ctx.out.int(m.len as i64);
        return Ok(());
    }
    let n = with_set(ctx, &args[1], Set::len)?;
    ctx.out.int(n.unwrap_or(0) as i64);

    Ok(())
}

fn spop(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let count = match args.len() {
        2 => None,
        3 => match parse_i64(&args[2]) {
            Some(n) if n >= 0 => Some(n as usize),
            _ => return Err(CmdError::NotPositive),
        },
        _ => return Err(CmdError::Syntax),
    };
    let key = &args[1];
    if let Some(m) = paged::manifest(ctx, key) {
        return spop_paged(ctx, key, m, count);
    }
    let len = with_set(ctx, key, Set::len)?;
    let len = len.unwrap_or(0);
    let Some(count) = count else {
        if len == 0 {
            ctx.out.null();
            return Ok(());
        }
        let mut db = ctx.db();
        let Some(Value::Set(s)) = db.get_mut(key) else {
            unreachable!("checked above")
        };
        let m = s
            .iter()
            .choose(&mut rand::rng())
            .map(<[u8]>::to_vec)
            .expect("non-empty");
        s.remove(&m);
        if s.is_empty() {
            db.remove(key);
        }
        ctx.out.bulk(&m);
        super::notify::notify_removed(ctx, super::notify::class::SET, "spop", key);
        return Ok(());
    };
    if count == 0 || len == 0 {
        ctx.out.set(0);
        return Ok(());
    }
    let popped: Vec<Vec<u8>> = if count >= len {
        match ctx.db().remove(key) {
            Some(Value::Set(s)) => (*s).into_iter().collect(),
            _ => unreachable!("checked above"),
        }
    } else {
        let mut db = ctx.db();
        let Some(Value::Set(s)) = db.get_mut(key) else {
            unreachable!("checked above")
        };
        let picked: Vec<Vec<u8>> = s
            .iter()
            .choose_multiple(&mut rand::rng(), count)
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect();
        for m in &picked {
            s.remove(m);
        }
        picked
    };
    ctx.out.set(popped.len());
    popped.iter().for_each(|m| ctx.out.bulk(m));
    super::notify::notify_removed(ctx, super::notify::class::SET, "spop", key);
    Ok(())
}

/// SPOP on a paged set: one member from a page picked at random, or `count` members from a
/// few pages (all of the set, read whole, when `count` reaches its size).
fn spop_paged(
    ctx: &mut Ctx,
    key: &[u8],
    m: crate::paged::hash::PagedHash,
    count: Option<usize>,
) -> CmdResult {
    let Some(count) = count else {
        let Some(member) = paged::random_member(ctx, &m)? else {
            // A paged set is never empty; pages that read empty answer as a missing key.
            ctx.out.null();
            return Ok(());
        };
        paged::remove(ctx, key, m, std::slice::from_ref(&member))?;
        ctx.out.bulk(&member);
        super::notify::notify_removed(ctx, super::notify::class::SET, "spop", key);
        return Ok(());
    };
    if count == 0 {
        ctx.out.set(0);
        return Ok(());
    }
    let popped: Vec<Vec<u8>> = if count as u64 >= m.len {
        let all = paged::materialize(ctx, &m)?;
        ctx.db().remove(key);
        all.into_iter().collect()
    } else {
        let picked = paged::sample_distinct(ctx, &m, count)?;
        paged::remove(ctx, key, m, &picked)?;
        picked
    };
    ctx.out.set(popped.len());
    popped.iter().for_each(|m| ctx.out.bulk(m));
    if !popped.is_empty() {
        super::notify::notify_removed(ctx, super::notify::class::SET, "spop", key);
    }
    Ok(())
}

fn srandmember(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let count = match args.len() {
        2 => None,
        3 => match parse_i64(&args[2]) {
            Some(i64::MIN) => {
                return Err(CmdError::msg("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"))
            }
            Some(n) => Some(n),
            None => return Err(CmdError::NotInt),
        },
        _ => return Err(CmdError::Syntax),
    };
    super::refuse_huge_draws(ctx, &args[1], count)?;
    if let Some(m) = paged::manifest(ctx, &args[1]) {
        let Some(count) = count else {
            match paged::random_member(ctx, &m)? {
                Some(member) => ctx.out.bulk(&member),
                None => ctx.out.null(),
            }
            return Ok(());
        };
        let picks = if count == 0 {
            Vec::new()
        } else if count < 0 {
            paged::sample_repeated(ctx, &m, count.unsigned_abs() as usize)?
        } else if count as u64 >= m.len {
            paged::materialize(ctx, &m)?.into_iter().collect()
        } else {
            paged::sample_distinct(ctx, &m, count as usize)?
        };
        ctx.out.array(picks.len());
        picks.iter().for_each(|p| ctx.out.bulk(p));
        return Ok(());
    }
    let (mut db, out) = split(ctx);
    let set = db.read::<Set>(&args[1])?;
    let mut rng = rand::rng();
    let Some(count) = count else {
        match set.and_then(|s| s.iter().choose(&mut rng)) {
            Some(m) => out.bulk(m),
            None => out.null(),
        }
        return Ok(());
    };
    random_members(out, set, count)
}

/// SRANDMEMBER's reply with a count: distinct members for a positive count, `-count`
/// independent draws for a negative one.
fn random_members(out: &mut Reply, set: Option<&Set>, count: i64) -> CmdResult {
    let mut rng = rand::rng();
    let Some(set) = set.filter(|s| count != 0 && !s.is_empty()) else {
        out.array(0);
        return Ok(());
    };
    if count < 0 {
        // With repetitions: `-count` independent draws.
        let members: Vec<&[u8]> = set.iter().collect();
        let n = count.unsigned_abs() as usize;
        out.array(n);
        for _ in 0..n {
            out.bulk(members[rng.random_range(0..members.len())]);
        }
    } else if count as usize >= set.len() {
        out.array(set.len());
        set.iter().for_each(|m| out.bulk(m));
    } else {
        let picked = set.iter().choose_multiple(&mut rng, count as usize);
        out.array(picked.len());
        picked.iter().for_each(|m| out.bulk(m));
    }
    Ok(())
}

/// Whether the set at `key` (paged or not) holds `member`: `None` if absent, WRONGTYPE if it
/// is no set. A paged set's manifest comes along.
#[allow(clippy::type_complexity)]
fn member_of(
    ctx: &mut Ctx,
    key: &[u8],
    member: &[u8],
) -> Result<Option<(bool, Option<crate::paged::hash::PagedHash>)>, CmdError> {
    if let Some(m) = paged::manifest(ctx, key) {
        return Ok(Some((paged::contains(ctx, &m, member)?, Some(m))));
    }
    Ok(with_set(ctx, key, |s| s.contains(member))?.map(|has| (has, None)))
}

fn smove(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let (src, dst, member) = (&args[1], &args[2], &args[3]);
    let Some((has, src_m)) = member_of(ctx, src, member)? else {
        ctx.out.int(0);
        return Ok(());
    };
    // Redis checks the destination's type before anything moves.
    let dst_state = member_of(ctx, dst, member)?;
    if !has || src == dst {
        ctx.out.int(has as i64);
        return Ok(());
    }
    let emptied = match src_m {
        Some(m) => {
            paged::remove(ctx, src, m, std::slice::from_ref(member))?;
            !ctx.db().contains(src)
        }
        None => {
            let mut db = ctx.db();
            let Some(Value::Set(s)) = db.get_mut(src) else {
                unreachable!("checked above")
            };
            s.remove(member);
            let emptied = s.is_empty();
            if emptied {
                db.remove(src);
            }
            emptied
        }
    };
    // As in Redis, the destination is only touched (WATCH) when it gains the member.
    let already = matches!(dst_state, Some((true, _)));
    if !already {
        match dst_state {
            Some((_, Some(m))) => {
                paged::add(ctx, dst, m, std::slice::from_ref(member))?;
            }
            _ => {
                let mut db = ctx.db();
                let Value::Set(d) = db.get_or_insert_with(dst, || Value::Set(Box::default()))
                else {
                    unreachable!("checked above")
                };
                let len_before = d.len();
                d.insert(member);
                paged::maybe_page_out(ctx, dst, len_before);
            }
        }
    }
    ctx.out.int(1);
    use super::notify::{class, notify};
    notify(ctx, class::SET, "srem", src);
    if emptied {
        notify(ctx, class::GENERIC, "del", src);
    }
    if !already {
        notify(ctx, class::SET, "sadd", dst);
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
enum SetOp {
    Inter,
    Union,
    Diff,
}

/// The set source `i` of a set operation: a paged set read whole before (`paged[i]`), or the
/// ordinary set at `keys[i]`.
fn source<'a>(
    db: &'a mut Db<'_, Value>,
    paged: &'a [Option<Set>],
    keys: &[Vec<u8>],
    i: usize,
) -> Option<&'a Set> {
    if let Some(s) = &paged[i] {
        return Some(s);
    }
    match db.get(&keys[i]) {
        Some(Value::Set(s)) => Some(s),
        _ => None,
    }
}

/// Computes a set operation over `keys` (WRONGTYPE if one holds another type). A paged source
/// is read whole into one set first.
fn set_op(ctx: &mut Ctx, keys: &[Vec<u8>], op: SetOp) -> Result<Set, CmdError> {
    // Type-check every key first, as Redis does, and find the sizes.
    let paged_sets = paged::materialize_sources(ctx, keys)?;
    let mut sizes = Vec::with_capacity(keys.len());
    for (k, p) in keys.iter().zip(&paged_sets) {
        sizes.push(match p {
            Some(s) => Some(s.len()),
            None => with_set(ctx, k, Set::len)?,
        });
    }
    let paged = paged_sets.as_slice();
    let mut db = ctx.db();
    let mut result = Set::new();
    match op {
        SetOp::Inter => {
            if sizes.iter().any(Option::is_none) {
                return Ok(result);
            }
            // Start from the smallest set; the result is never bigger.
            let (first, _) = sizes
                .iter()
                .enumerate()
                .min_by_key(|(_, n)| **n)
                .expect("at least one key");
            if let Some(s) = source(&mut db, paged, keys, first) {
                result = s.clone();
            }
            for i in 0..keys.len() {
                if i == first || result.is_empty() {
                    continue;
                }
                if let Some(s) = source(&mut db, paged, keys, i) {
                    result.retain(|m| s.contains(m));
                }
            }
        }
        SetOp::Union => {
            for i in 0..keys.len() {
                if let Some(s) = source(&mut db, paged, keys, i) {
                    s.iter().for_each(|m| {
                        result.insert(m);
                    });
                }
            }
        }
        SetOp::Diff => {
            if let Some(s) = source(&mut db, paged, keys, 0) {
                result = s.clone();
            }
            for i in 1..keys.len() {
                if result.is_empty() {
                    break;
                }
                if let Some(s) = source(&mut db, paged, keys, i) {
                    result.retain(|m| !s.contains(m));
                }
            }
        }
    }
    Ok(result)
}

fn set_op_reply(ctx: &mut Ctx, args: &[Vec<u8>], op: SetOp) -> CmdResult {
    let result = set_op(ctx, &args[1..], op)?;
    ctx.out.set(result.len());
    result.iter().for_each(|m| ctx.out.bulk(m));
    Ok(())
}

fn set_op_store(ctx: &mut Ctx, args: &[Vec<u8>], op: SetOp) -> CmdResult {
    let result = set_op(ctx, &args[2..], op)?;
    let n = result.len();
    let mut db = ctx.db();
    let existed = db.contains(&args[1]);
    if n == 0 {
        db.remove(&args[1]);
    } else {
        db.insert(&args[1], Value::Set(Box::new(result)));
        super::page_out::page_out_written(ctx, &args[1]);
    }
    ctx.out.int(n as i64);
    let event = String::from_utf8_lossy(&args[0]).to_lowercase();
    super::notify::notify_store(
        ctx,
        super::notify::class::SET,
        &event,
        &args[1],
        n > 0,
        existed,
    );
    Ok(())
}

fn sinter(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    set_op_reply(ctx, args, SetOp::Inter)
}

fn sunion(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    set_op_reply(ctx, args, SetOp::Union)
}

fn sdiff(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    set_op_reply(ctx, args, SetOp::Diff)
}

fn sinterstore(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    set_op_store(ctx, args, SetOp::Inter)
}

fn sunionstore(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    set_op_store(ctx, args, SetOp::Union)
}

fn sdiffstore(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    set_op_store(ctx, args, SetOp::Diff)
}

fn sintercard(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let numkeys = match parse_i64(&args[1]) {
        Some(n) if n > 0 => n as usize,
        _ => return Err(CmdError::msg("ERR numkeys should be greater than 0")),
    };
    if numkeys > args.len() - 2 {
        return Err(CmdError::msg(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    let keys = &args[2..2 + numkeys];
    let mut limit = 0usize;
    let mut i = 2 + numkeys;
    while i < args.len() {
        if args[i].eq_ignore_ascii_case(b"limit") && i + 1 < args.len() {
            match parse_i64(&args[i + 1]) {
                Some(n) if n >= 0 => limit = n as usize,
                _ => return Err(CmdError::msg("ERR LIMIT can't be negative")),
            }
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let result = set_op(ctx, keys, SetOp::Inter)?;
    let n = if limit == 0 {
        result.len()
    } else {
        result.len().min(limit)
    };
    ctx.out.int(n as i64);
    Ok(())
}

/// Collections this small are returned in one SCAN call with cursor 0, as Redis does for its
/// compact encodings.
const SCAN_ALL_AT_ONCE: usize = 128;

/// Picks the next SCAN batch of a collection of `len` items, in hash order from `cursor`:
/// every member present for the whole iteration is returned at least once however the
/// collection changes in between. Returns the next cursor (0 = done) and the batch. Each call
/// costs O(len), so big collections hand out at least 1/256 of their items per call.
pub(crate) fn scan_batch<'a, T>(
    items: impl Iterator<Item = (&'a [u8], T)>,
    len: usize,
    cursor: u64,
    count: usize,
) -> (u64, Vec<(&'a [u8], T)>) {
    if len <= SCAN_ALL_AT_ONCE {
        return (0, items.collect());
    }
    let mut cands: Vec<(u64, (&'a [u8], T))> = items
        .map(|it| (scan_hash(it.0), it))
        .filter(|(k, _)| *k >= cursor)
        .collect();
    let batch = count.max(len / 256);
    if cands.len() <= batch {
        return (0, cands.into_iter().map(|(_, it)| it).collect());
    }
    cands.select_nth_unstable_by_key(batch, |(k, _)| *k);
    let mut next = cands[batch].0;
    let mut take = batch;
    if cands[..batch].iter().all(|(k, _)| *k == next) {
        // Hash collisions filled the batch: take the whole group so the cursor moves on.
        cands.sort_unstable_by_key(|(k, _)| *k);
        take = cands.partition_point(|(k, _)| *k <= next);
        next = cands.get(take).map_or(0, |(k, _)| *k);
    }
    cands.truncate(take);
    (next, cands.into_iter().map(|(_, it)| it).collect())
}

/// Writes a SCAN reply: the cursor, then the items.
pub(crate) fn scan_reply(out: &mut Reply, cursor: u64, items: &[Vec<u8>]) {
    out.array(2);
    out.bulk_str(&cursor.to_string());
    out.array(items.len());
    items.iter().for_each(|i| out.bulk(i));
}

fn sscan(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let cursor = scan_cursor(&args[2])?;
    if let Some(m) = paged::manifest(ctx, &args[1]) {
        let ScanOpts { pattern, .. } = scan_opts(&args[3..], false)?;
        return paged::scan(ctx, &m, cursor, pattern);
    }
    let (mut db, out) = split(ctx);
    let Some(set) = db.read::<Set>(&args[1])? else {
        scan_reply(out, 0, &[]);
        return Ok(());
    };
    let ScanOpts { pattern, count, .. } = scan_opts(&args[3..], false)?;
    let (next, batch) = scan_batch(set.iter().map(|m| (m, ())), set.len(), cursor, count);
    let items: Vec<Vec<u8>> = batch
        .into_iter()
        .filter(|(m, _)| pattern.as_ref().is_none_or(|p| glob_match(p, m, false)))
        .map(|(m, _)| m.to_vec())
        .collect();
    scan_reply(out, next, &items);
    Ok(())
}
