//! The sorted-set commands on a paged sorted set (see `paged::zset`). ZADD, ZINCRBY, ZREM,
//! ZSCORE, ZMSCORE and ZRANK touch the member pages of the members they name and the segment
//! pages their scores fall in; ZCARD reads the manifest; ranges by rank, score or lex, counts,
//! pops and ZREMRANGEBY* find their start in the manifest and read the segments they cover.
//! ZSCAN and ZRANDMEMBER read member pages, as HSCAN and HRANDFIELD do on a paged hash.
//! Whole-set uses (the sources of ZUNION/ZINTER/ZDIFF, GEO searches, SORT, DUMP, ZRANDMEMBER
//! with a count that reaches the size) read the set into one `ZSet` first.

use super::zsets::{parse_score, parse_score_range, tally, zadd_plan, Range, ZaddOpts, ZaddTally};
use super::{CmdError, Ctx};
use crate::paged::hash::{self, PagedHash};
use crate::paged::page_key;
use crate::paged::zset::{self, PagedZSet};
use crate::value::Value;
use crate::zset::ZSet;
use kvtier_core::Engine;
use std::ops::Deref;
use std::sync::Arc;

const ERR_NAN: &str = "ERR resulting score is not a number (NaN)";

/// A paged sorted set's manifest as the cache holds it, shared (see [`shared`]).
pub struct Shared(Arc<Value>);

impl Deref for Shared {
    type Target = PagedZSet;
    fn deref(&self) -> &PagedZSet {
        match &*self.0 {
            Value::PagedZSet(m) => m,
            _ => unreachable!("made from a paged sorted set only"),
        }
    }
}

/// For a command that only reads: the manifest at `key` if it holds a live paged sorted set
/// (counted as a hit), through the cache's shared handle rather than copied (it holds each
/// segment's largest member, some 60 bytes per page, per read).
pub fn shared(ctx: &mut Ctx, key: &[u8]) -> Option<Shared> {
    if !matches!(
        ctx.engine.peek(ctx.client.db, key),
        Some(Value::PagedZSet(_))
    ) {
        return None;
    }
    // The counted read (it also reclaims a key that has expired).
    ctx.db().get(key)?;
    let v = ctx.engine.peek_shared(ctx.client.db, key)?;
    matches!(*v, Value::PagedZSet(_)).then_some(Shared(v))
}

/// Writes the changed manifest back (the key becomes dirty, in the command's save group with
/// the pages it changed), or deletes the key once the last member is gone (its pages then go
/// to the collector, see `paged::collect_released`).
pub fn store(ctx: &mut Ctx, key: &[u8], m: PagedZSet) {
    let mut db = ctx.db();
    // Back in place first, also when it is to be deleted: the deletion hands the real
    // manifest (its generation and pages) to the page collector, not a placeholder.
    if let Some(Value::PagedZSet(x)) = db.get_mut(key) {
        **x = m;
    }
    if matches!(db.get(key), Some(Value::PagedZSet(x)) if x.is_empty()) {
        db.remove(key);
    }
}

/// For a command that may change the set: the manifest at `key` taken out of the cache (an
/// empty placeholder stays there, the key not marked changed), so the command works on it
/// without copying it (some 60 bytes per page, per command). Every path of the command then
/// ends in [`store`] (it changed the set) or [`put_back`] (it did not).
pub fn take(ctx: &mut Ctx, key: &[u8]) -> Option<PagedZSet> {
    if !matches!(
        ctx.engine.peek(ctx.client.db, key),
        Some(Value::PagedZSet(_))
    ) {
        return None;
    }
    // The counted read (it also reclaims a key that has expired).
    ctx.db().get(key)?;
    match ctx.db().get_mut_unmarked(key) {
        Some(Value::PagedZSet(m)) => Some(std::mem::take(m)),
        _ => None,
    }
}

/// Puts back a manifest [`take`] took, unchanged: the key stays as clean as it was.
pub fn put_back(ctx: &mut Ctx, key: &[u8], m: PagedZSet) {
    if let Some(Value::PagedZSet(x)) = ctx.db().get_mut_unmarked(key) {
        **x = m;
    }
}

fn page_bytes(ctx: &Ctx) -> u64 {
    ctx.shared.config.settings().page_bytes
}

/// The whole set in one `ZSet`.
pub fn materialize(ctx: &mut Ctx, m: &PagedZSet) -> Result<ZSet, CmdError> {
    zset::materialize(ctx.engine, m, ctx.now_ms).map_err(CmdError::store)
}

/// For a command that reads a sorted set whole (set operations, ZRANDMEMBER reaching the size, GEO
/// searches): the paged sorted set at `key` read into one `ZSet`; `None` for any other key,
/// which the caller reads as before.
pub fn whole(ctx: &mut Ctx, key: &[u8]) -> Result<Option<ZSet>, CmdError> {
    match shared(ctx, key) {
        Some(m) => materialize(ctx, &m).map(Some),
        None => Ok(None),
    }
}

/// A member and its score.
pub type Scored = (Vec<u8>, f64);

/// A member page's entries as (member, score).
fn scored(entries: Vec<(Vec<u8>, Vec<u8>)>) -> Result<Vec<Scored>, CmdError> {
    entries
        .into_iter()
        .map(|(k, v)| Ok((k, zset::score_of_value(&v).map_err(CmdError::store)?)))
        .collect()
}

/// One step of ZSCAN on a paged set: the members (and scores) of one member page, the cursor a
/// member page number, exactly as HSCAN steps through a paged hash (pages split only towards
/// higher numbers, so every member present for the whole scan is returned). The next cursor (0
/// after the last page) and the members matching `pattern`.
pub fn scan_page(
    ctx: &mut Ctx,
    m: &PagedZSet,
    cursor: u64,
    pattern: Option<&[u8]>,
) -> Result<(u64, Vec<Scored>), CmdError> {
    let (next, entries) = super::paged_hashlike::scan_page(ctx, &m.index, cursor, pattern)?;
    Ok((next, scored(entries)?))
}

/// ZRANDMEMBER's picks from a paged set's member pages, as HRANDFIELD's from a paged hash's
/// (see `paged_sample`): one member (`None`), distinct members below the size (`Some(n)`,
/// n >= 0), or the pool that draws with repetitions take from (a negative count).
pub fn random_members(
    ctx: &mut Ctx,
    m: &PagedZSet,
    count: Option<i64>,
) -> Result<Vec<Scored>, CmdError> {
    use super::paged_sample;
    let entries = match count {
        None => paged_sample::random_entry(ctx, &m.index)?
            .into_iter()
            .collect(),
        Some(n) if n >= 0 => paged_sample::sample_distinct(ctx, &m.index, n as usize)?,
        Some(_) => paged_sample::draw_pool(ctx, &m.index)?,
    };
    scored(entries)
}

/// The named members that are in the set, with their scores, as a small `ZSet` (GEOPOS,
/// GEODIST, GEOHASH: one member page each instead of the whole set).
pub fn subset(ctx: &mut Ctx, m: &PagedZSet, members: &[Vec<u8>]) -> Result<ZSet, CmdError> {
    let mut z = ZSet::default();
    for (member, s) in members.iter().zip(scores(ctx, m, members)?) {
        if let Some(s) = s {
            z.insert(member.clone(), s);
        }
    }
    Ok(z)
}

/// ZADD, ZINCRBY and GEOADD on a paged set, with ZADD's options: each member's current score
/// decides (as `zadd_plan` does for a one-record set) whether it is added or updated. A page
/// that cannot be read fails the command after the members before it were written (their pages
/// and the manifest stay consistent).
pub fn zadd(
    ctx: &mut Ctx,
    key: &[u8],
    mut m: PagedZSet,
    pairs: &[(f64, &[u8])],
    o: ZaddOpts,
) -> Result<ZaddTally, CmdError> {
    let page_bytes = page_bytes(ctx);
    let mut t = ZaddTally::default();
    let mut failed = None;
    let mut changed = false;
    for &(score, member) in pairs {
        let cur = match zset::score(ctx.engine, &m, member, ctx.now_ms) {
            Ok(c) => c,
            Err(e) => {
                failed = Some(CmdError::store(e));
                break;
            }
        };
        // NaN comes only from INCR, which takes one pair: nothing was written yet.
        let Ok(new) = zadd_plan(cur, score, o) else {
            put_back(ctx, key, m);
            return Err(CmdError::msg(ERR_NAN));
        };
        if let Some(s) = new {
            if cur != Some(s) {
                let r = zset::insert(
                    ctx.engine,
                    &mut m,
                    member.to_vec(),
                    s,
                    page_bytes,
                    ctx.now_ms,
                );
                if let Err(e) = r {
                    failed = Some(CmdError::store(e));
                    break;
                }
                changed = true;
            }
        }
        tally(&mut t, cur, new);
    }
    if changed {
        store(ctx, key, m);
        let event = if o.incr { "zincr" } else { "zadd" };
        super::notify::notify(ctx, super::notify::class::ZSET, event, key);
    } else {
        put_back(ctx, key, m);
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(t),
    }
}

/// Removes `members`; how many were there. The last one gone deletes the key.
pub fn remove(
    ctx: &mut Ctx,
    key: &[u8],
    mut m: PagedZSet,
    members: &[Vec<u8>],
) -> Result<usize, CmdError> {
    let page_bytes = page_bytes(ctx);
    let mut removed = 0;
    let mut failed = None;
    for member in members {
        match zset::remove(ctx.engine, &mut m, member, page_bytes, ctx.now_ms) {
            Ok(was) => removed += usize::from(was.is_some()),
            Err(e) => {
                failed = Some(CmdError::store(e));
                break;
            }
        }
    }
    if removed > 0 {
        store(ctx, key, m);
    } else {
        put_back(ctx, key, m);
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(removed),
    }
}

/// The scores of `members` (one member page each).
pub fn scores(
    ctx: &mut Ctx,
    m: &PagedZSet,
    members: &[Vec<u8>],
) -> Result<Vec<Option<f64>>, CmdError> {
    members
        .iter()
        .map(|e| zset::score(ctx.engine, m, e, ctx.now_ms).map_err(CmdError::store))
        .collect()
}

/// ZRANK / ZREVRANK.
pub fn rank(
    ctx: &mut Ctx,
    m: &PagedZSet,
    member: &[u8],
    rev: bool,
) -> Result<Option<u64>, CmdError> {
    zset::rank(ctx.engine, m, member, rev, ctx.now_ms).map_err(CmdError::store)
}

/// The members of a ZRANGE-family range, as `zsets::collect_range` takes them from a
/// one-record set (a negative offset selects nothing, a negative limit is no limit).
pub fn range(
    ctx: &mut Ctx,
    m: &PagedZSet,
    range: &Range,
    rev: bool,
    offset: i64,
    limit: i64,
) -> Result<Vec<(Vec<u8>, f64)>, CmdError> {
    let limit = u64::try_from(limit).unwrap_or(u64::MAX);
    let (e, now) = (&mut *ctx.engine, ctx.now_ms);
    let r = match range {
        Range::Rank(start, end) => {
            match super::zsets::clamp_ranks(*start, *end, m.len() as usize) {
                Some((s, t)) => zset::range_by_rank(e, m, s as u64, t as u64, rev, now),
                None => Ok(Vec::new()),
            }
        }
        _ if offset < 0 => Ok(Vec::new()),
        Range::Score(r) => zset::range_by_score(e, m, *r, rev, offset as u64, limit, now),
        Range::Lex(r) => zset::range_by_lex(e, m, r, rev, offset as u64, limit, now),
    };
    r.map_err(CmdError::store)
}

/// ZCOUNT / ZLEXCOUNT.
pub fn count(ctx: &mut Ctx, m: &PagedZSet, range: &Range) -> Result<u64, CmdError> {
    let (e, now) = (&mut *ctx.engine, ctx.now_ms);
    let r = match range {
        Range::Score(r) => zset::count_by_score(e, m, *r, now),
        Range::Lex(r) => zset::count_by_lex(e, m, r, now),
        Range::Rank(..) => unreachable!("counts are by score or lex"),
    };
    r.map_err(CmdError::store)
}

/// Pops up to `n` members from the low end (or `max`, the high end); the last one gone
/// deletes the key.
pub fn pop(
    ctx: &mut Ctx,
    key: &[u8],
    mut m: PagedZSet,
    n: u64,
    max: bool,
) -> Result<Vec<(Vec<u8>, f64)>, CmdError> {
    let page_bytes = page_bytes(ctx);
    let popped = match zset::pop(ctx.engine, &mut m, n, max, page_bytes, ctx.now_ms) {
        Ok(p) => p,
        Err(e) => {
            // A failed pop changed nothing (it reads every page it would change first).
            put_back(ctx, key, m);
            return Err(CmdError::store(e));
        }
    };
    if popped.is_empty() {
        put_back(ctx, key, m);
    } else {
        store(ctx, key, m);
    }
    Ok(popped)
}

/// After a write that may have grown an ordinary sorted set: one that crossed
/// `paged-value-min-bytes` and that Redis keeps as a skiplist (a listpack's order and encoding
/// are Redis's to show) becomes paged. Summing the sizes is linear, so past 64 members it is
/// checked only when the member count passes a multiple of 64.
pub fn maybe_page_out(ctx: &mut Ctx, key: &[u8], len_before: usize) {
    let min = ctx.shared.config.settings().paged_value_min_bytes;
    if min == 0 {
        return;
    }
    let value = ctx.engine.peek(ctx.client.db, key);
    let z = match value {
        Some(Value::ZSet(z)) if z.len() <= 64 || z.len() >> 6 != len_before >> 6 => z,
        _ => return,
    };
    let bytes: u64 = z.iter().map(|(e, _)| zset::elem_bytes(e)).sum();
    if bytes < min
        || value.is_some_and(|v| super::object::encoding(v, &ctx.shared.config) != "skiplist")
    {
        return;
    }
    let z = z.clone();
    let m = zset::page_out(ctx.engine, &z, page_bytes(ctx), ctx.now_ms);
    ctx.db().insert_keep_ttl(key, Value::PagedZSet(Box::new(m)));
}

/// Most segment pages a range or pop asks to load ahead; the rest are read when reached.
const MAX_AHEAD: usize = 64;

/// The pages of paged sorted set `m` (at `key`) a command needs in memory, so the request path
/// loads them (batched, without blocking the server) before the command runs. A page it misses
/// (a segment a write splits or merges into, the member pages of what a pop takes, anything a
/// script touches) is read synchronously when touched. A write's old segment is found from the
/// member's score once its member page is in memory (`peek_score`): the first try loads the
/// member page, the next the segment. A destination the command overwrites unread needs none.
pub fn pages_needed(
    name: &str,
    args: &[Vec<u8>],
    key: &[u8],
    m: &PagedZSet,
    engine: &Engine<Value>,
    page_bytes: u64,
) -> Vec<u32> {
    let mut pages = Vec::new();
    // A member's page, and its segment if the member page already tells its score.
    let member = |pages: &mut Vec<u32>, e: &[u8]| -> Option<f64> {
        pages.push(m.member_page(e));
        let old = zset::peek_score(engine, m, e);
        if let Some(id) = old.and_then(|s| m.seg_page_of(s, e)) {
            pages.push(id);
        }
        old
    };
    let arg = |i: usize| args.get(i).map(Vec::as_slice);
    let num = |i: usize| arg(i).and_then(crate::util::parse_i64);
    let len = m.len();
    let ranks = |pages: &mut Vec<u32>, start: i64, end: i64, rev: bool| {
        if let Some((s, e)) = super::zsets::clamp_ranks(start, end, len as usize) {
            let (s, e) = (s as u64, e as u64);
            let (lo, hi) = if rev {
                (len - 1 - e, len - 1 - s)
            } else {
                (s, e)
            };
            pages.extend(m.seg_pages_for_ranks(lo, hi, MAX_AHEAD));
        }
    };
    let scores = |pages: &mut Vec<u32>, min: Option<&[u8]>, max: Option<&[u8]>, all: bool| {
        let r = min.zip(max).and_then(|(a, b)| parse_score_range(a, b));
        if let Some((lo, hi)) = r.and_then(|r| m.score_span(r)) {
            if all {
                pages.extend(m.segs()[lo..=hi].iter().take(MAX_AHEAD).map(|s| s.id));
            } else {
                pages.extend([m.segs()[lo].id, m.segs()[hi].id]);
            }
        }
    };
    // A pop's end segments, and (once those are in memory, on the next try) the member pages
    // of what it takes.
    let ends = |pages: &mut Vec<u32>, n: u64, max: bool| {
        let n = n.min(len);
        if n == 0 {
            return;
        }
        let (lo, hi) = if max { (len - n, len - 1) } else { (0, n - 1) };
        let mut ids = m.seg_pages_for_ranks(lo, hi, MAX_AHEAD);
        if max {
            ids.reverse();
        }
        let mut left = n as usize;
        for &id in &ids {
            let Some(Value::ZSet(z)) = engine.peek(engine.pages_db(), &page_key(m.gen(), id))
            else {
                break;
            };
            let taken: Vec<&[u8]> = if max {
                z.iter().rev().take(left).map(|(e, _)| e).collect()
            } else {
                z.iter().take(left).map(|(e, _)| e).collect()
            };
            left -= taken.len();
            pages.extend(taken.into_iter().map(|e| m.member_page(e)));
            if left == 0 {
                break;
            }
        }
        pages.extend(ids);
    };
    let segments = || m.segs().iter().map(|s| s.id).collect::<Vec<u32>>();
    let among = |from: usize| {
        args.get(from..)
            .unwrap_or_default()
            .iter()
            .any(|a| a == key)
    };
    // Lex bounds are found by binary searches over members; the first segment is always read.
    let lex = |pages: &mut Vec<u32>| pages.extend(m.segs().first().map(|s| s.id));
    match name {
        "zscore" | "zmscore" | "zrank" | "zrevrank" | "zrem" | "geopos" | "geohash" => {
            for e in args.get(2..).unwrap_or_default() {
                member(&mut pages, e);
            }
        }
        "geodist" => {
            for e in args.get(2..4).unwrap_or_default() {
                member(&mut pages, e);
            }
        }
        "zadd" | "geoadd" => {
            let flags: &[&[u8]] = &[b"nx", b"xx", b"gt", b"lt", b"ch", b"incr"];
            let mut i = 2;
            while arg(i).is_some_and(|a| flags.iter().any(|f| a.eq_ignore_ascii_case(f))) {
                i += 1;
            }
            let incr = args[2..i].iter().any(|a| a.eq_ignore_ascii_case(b"incr"));
            let step = if name == "zadd" { 2 } else { 3 };
            for p in args.get(i..).unwrap_or_default().chunks(step) {
                let e = &p[step - 1];
                let old = member(&mut pages, e);
                let new = if name == "zadd" {
                    parse_score(&p[0])
                } else {
                    let lon_lat = crate::util::parse_f64(&p[0])
                        .zip(p.get(1).and_then(|l| crate::util::parse_f64(l)));
                    lon_lat.map(|(lon, lat)| crate::geohash::encode_score(lon, lat) as f64)
                };
                let new = if incr {
                    old.zip(new).map(|(a, b)| a + b)
                } else {
                    new
                };
                grow(&mut pages, m, e, new, page_bytes);
            }
        }
        "zincrby" => {
            if let Some(e) = arg(3) {
                let old = member(&mut pages, e);
                let new = old.zip(arg(2).and_then(parse_score)).map(|(a, b)| a + b);
                grow(&mut pages, m, e, new, page_bytes);
            }
        }
        "zrange" | "zrangestore" => {
            // ZRANGESTORE's source is at 2 (its destination, at 1, is overwritten unread).
            let at = if name == "zrange" { 1 } else { 2 };
            if arg(at) == Some(key) {
                let opts = args.get(at + 3..).unwrap_or_default();
                let has = |o: &[u8]| opts.iter().any(|a| a.eq_ignore_ascii_case(o));
                let rev = has(b"rev");
                if has(b"byscore") {
                    let (min, max) = if rev {
                        (at + 2, at + 1)
                    } else {
                        (at + 1, at + 2)
                    };
                    scores(&mut pages, arg(min), arg(max), true);
                } else if has(b"bylex") {
                    lex(&mut pages);
                } else if let (Some(s), Some(e)) = (num(at + 1), num(at + 2)) {
                    ranks(&mut pages, s, e, rev);
                }
            }
        }
        "zrevrange" | "zremrangebyrank" => {
            if let (Some(s), Some(e)) = (num(2), num(3)) {
                ranks(&mut pages, s, e, name == "zrevrange");
            }
        }
        "zrangebyscore" | "zremrangebyscore" => scores(&mut pages, arg(2), arg(3), true),
        "zrevrangebyscore" => scores(&mut pages, arg(3), arg(2), true),
        "zcount" => scores(&mut pages, arg(2), arg(3), false),
        "zrangebylex" | "zrevrangebylex" | "zlexcount" | "zremrangebylex" => lex(&mut pages),
        "zpopmin" | "zpopmax" => {
            let n = if args.len() > 2 {
                num(2).unwrap_or(0).max(0) as u64
            } else {
                1
            };
            ends(&mut pages, n, name == "zpopmax");
        }
        "bzpopmin" | "bzpopmax" => ends(&mut pages, 1, name == "bzpopmax"),
        "zmpop" | "bzmpop" => {
            let max = args.iter().any(|a| a.eq_ignore_ascii_case(b"max"));
            let at = args.iter().rposition(|a| a.eq_ignore_ascii_case(b"count"));
            let n = at.and_then(|i| num(i + 1)).unwrap_or(1).max(0) as u64;
            ends(&mut pages, n, max);
        }
        // One member page per step, as HSCAN on a paged hash.
        "zscan" => pages = super::paged_hashlike::scan_plan(&args[2], &m.index),
        "zrandmember" => pages = super::paged_sample::pages_for_arg(&m.index, args.get(2)),
        "zunion"
        | "zinter"
        | "zdiff"
        | "zintercard"
        | "geosearch"
        | "georadius_ro"
        | "georadiusbymember_ro" => pages = segments(),
        // Their destination comes later (STORE) or first (at 1): read only as a source.
        "georadius" | "georadiusbymember" | "sort" | "sort_ro" | "dump" if arg(1) == Some(key) => {
            pages = segments()
        }
        "zunionstore" | "zinterstore" | "zdiffstore" if among(3) => pages = segments(),
        "geosearchstore" if arg(2) == Some(key) => pages = segments(),
        // A copy copies the member pages too.
        "copy" if arg(1) == Some(key) => pages = m.page_ids(),
        _ => {}
    }
    pages.sort_unstable();
    pages.dedup();
    pages
}

/// A write's destination segment (from the new score, when known) and the member page a split
/// of the index would divide, if the write may push the index over its page budget.
fn grow(pages: &mut Vec<u32>, m: &PagedZSet, e: &[u8], new: Option<f64>, page_bytes: u64) {
    if let Some(id) = new.and_then(|s| m.seg_page_of(s, e)) {
        pages.push(id);
    }
    let grown = PagedHash {
        bytes: m.index.bytes + hash::field_bytes(e, &[0; 8]),
        ..m.index
    };
    if grown.wants_split(page_bytes) {
        pages.push(m.index.split);
    }
}
