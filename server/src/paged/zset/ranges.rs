//! The read side of a paged sorted set: ranks, rank ranges, score and lex ranges and counts.
//! Each finds its start in the manifest (a walk over the segment counts, or a binary search
//! over their last elements) and reads the pages from there on.

use super::{damaged, score, seg_holding, seg_page, PagedZSet};
use crate::value::Value;
use crate::zset::{LexBound, LexRange, Score, ScoreRange, ZSet};
use kvtier_core::{Engine, StoreError};

/// The number of leading elements of `z` satisfying `below` (true on a prefix of the order):
/// a binary search over ranks, each probe a logarithmic lookup.
fn partition_in(z: &ZSet, below: &dyn Fn(f64, &[u8]) -> bool) -> usize {
    let (mut lo, mut hi) = (0, z.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        let (m, s) = z
            .range_by_rank(mid, mid, false)
            .next()
            .expect("rank in page");
        if below(s, m) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// The 0-based rank of `member`, ascending or (`rev`) from the top.
pub fn rank(
    engine: &mut Engine<Value>,
    m: &PagedZSet,
    member: &[u8],
    rev: bool,
    now_ms: i64,
) -> Result<Option<u64>, StoreError> {
    let Some(s) = score(engine, m, member, now_ms)? else {
        return Ok(None);
    };
    let seg = seg_holding(engine, m, member, s, now_ms)?;
    let pos = seg_page(engine, m, seg, now_ms)?
        .rank_scored(member, s)
        .ok_or_else(|| damaged("a member missing from its segment"))?;
    let r = m.seg_start(seg) + pos as u64;
    Ok(Some(if rev { m.len() - 1 - r } else { r }))
}

/// Visits elements from ascending rank `from`, upwards or (`rev`) downwards, until `f`
/// returns false or the set ends. Reads the pages it walks over, one at a time.
pub fn walk(
    engine: &mut Engine<Value>,
    m: &PagedZSet,
    from: u64,
    rev: bool,
    now_ms: i64,
    f: &mut dyn FnMut(&[u8], f64) -> bool,
) -> Result<(), StoreError> {
    let Some((first, off)) = m.locate_rank(from) else {
        return Ok(());
    };
    if rev {
        for seg in (0..=first).rev() {
            let p = seg_page(engine, m, seg, now_ms)?;
            let last = p.len() - 1;
            let end = if seg == first { off } else { last };
            // Ranks `0..=end` of the page, from the top.
            for (e, s) in p.range_by_rank(last - end, last, true) {
                if !f(e, s) {
                    return Ok(());
                }
            }
        }
    } else {
        for seg in first..m.segs().len() {
            let p = seg_page(engine, m, seg, now_ms)?;
            let start = if seg == first { off } else { 0 };
            for (e, s) in p.range_by_rank(start, p.len() - 1, false) {
                if !f(e, s) {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

/// Up to `n` elements from ascending rank `from`, upwards or (`rev`) downwards.
fn take_from(
    engine: &mut Engine<Value>,
    m: &PagedZSet,
    from: u64,
    n: u64,
    rev: bool,
    now_ms: i64,
) -> Result<Vec<(Vec<u8>, f64)>, StoreError> {
    let mut out = Vec::with_capacity(n.min(1 << 16) as usize);
    if n == 0 {
        return Ok(out);
    }
    walk(engine, m, from, rev, now_ms, &mut |e, s| {
        out.push((e.to_vec(), s));
        (out.len() as u64) < n
    })?;
    Ok(out)
}

/// Members with ranks `start..=end` (already clamped to the set), ascending or from the top,
/// as `ZSet::range_by_rank`.
pub fn range_by_rank(
    engine: &mut Engine<Value>,
    m: &PagedZSet,
    start: u64,
    end: u64,
    rev: bool,
    now_ms: i64,
) -> Result<Vec<(Vec<u8>, f64)>, StoreError> {
    if start > end || end >= m.len() {
        return Ok(Vec::new());
    }
    let from = if rev { m.len() - 1 - start } else { start };
    take_from(engine, m, from, end - start + 1, rev, now_ms)
}

/// The number of elements satisfying `below` (true on a prefix of the order): a binary search
/// over the segments, then one inside one page.
fn count_below(
    engine: &mut Engine<Value>,
    m: &PagedZSet,
    below: &dyn Fn(f64, &[u8]) -> bool,
    now_ms: i64,
) -> Result<u64, StoreError> {
    let seg = m.seg_partition(below);
    if seg == m.segs().len() {
        return Ok(m.len());
    }
    let p = seg_page(engine, m, seg, now_ms)?;
    Ok(m.seg_start(seg) + partition_in(p, below) as u64)
}

/// The ranks `lo..hi` of the members whose score is in `r` (two bound lookups).
pub fn score_ranks(
    engine: &mut Engine<Value>,
    m: &PagedZSet,
    r: ScoreRange,
    now_ms: i64,
) -> Result<std::ops::Range<u64>, StoreError> {
    if r.is_empty() || m.is_empty() {
        return Ok(0..0);
    }
    // (-0.0 and 0.0 are one score; stored scores are never -0.0.)
    let (min, max) = (r.min + 0.0, r.max + 0.0);
    let lo = if r.minex {
        count_below(engine, m, &|s, _| s <= min, now_ms)?
    } else {
        count_below(engine, m, &|s, _| s < min, now_ms)?
    };
    let hi = if r.maxex {
        count_below(engine, m, &|s, _| s < max, now_ms)?
    } else {
        count_below(engine, m, &|s, _| s <= max, now_ms)?
    };
    Ok(lo..hi.max(lo))
}

/// How many members have a score in `r` (ZCOUNT).
pub fn count_by_score(
    engine: &mut Engine<Value>,
    m: &PagedZSet,
    r: ScoreRange,
    now_ms: i64,
) -> Result<u64, StoreError> {
    let ranks = score_ranks(engine, m, r, now_ms)?;
    Ok(ranks.end - ranks.start)
}

/// Members whose score is in `r`, ascending (or descending with `rev`), after skipping
/// `offset` of them and at most `limit`: `ZSet::range_by_score(r, rev).skip(offset)
/// .take(limit)`, reading only the pages of what is returned and the bounds.
pub fn range_by_score(
    engine: &mut Engine<Value>,
    m: &PagedZSet,
    r: ScoreRange,
    rev: bool,
    offset: u64,
    limit: u64,
    now_ms: i64,
) -> Result<Vec<(Vec<u8>, f64)>, StoreError> {
    let ranks = score_ranks(engine, m, r, now_ms)?;
    let n = ranks.end - ranks.start;
    if offset >= n {
        return Ok(Vec::new());
    }
    let from = if rev {
        ranks.end - 1 - offset
    } else {
        ranks.start + offset
    };
    take_from(engine, m, from, limit.min(n - offset), rev, now_ms)
}

/// Where a lex range starts, as `ZSet::range_by_lex_from` finds it: `None` when nothing can
/// be in it (empty range, or the set's last member below min or first above max, as Redis
/// checks); else whether every score is equal (members are then in lex order, and bounds are
/// found by rank).
fn lex_plan(
    engine: &mut Engine<Value>,
    m: &PagedZSet,
    r: &LexRange,
    now_ms: i64,
) -> Result<Option<bool>, StoreError> {
    let Some(last) = m.segs().last().map(|s| s.last.clone()) else {
        return Ok(None);
    };
    if r.is_empty() {
        return Ok(None);
    }
    let (first_member, first_score) = {
        let p = seg_page(engine, m, 0, now_ms)?;
        let (e, s) = p.iter().next().ok_or_else(|| damaged("an empty page"))?;
        (e.to_vec(), s)
    };
    if !(r.gte_min(&last.1) && r.lte_max(&first_member)) {
        return Ok(None);
    }
    Ok(Some(Score(first_score) == last.0))
}

/// With equal scores: the number of members below lex bound `b` taken as a range's min
/// (`upper` false), or within it taken as its max (`upper` true).
fn lex_rank(
    engine: &mut Engine<Value>,
    m: &PagedZSet,
    b: &LexBound,
    upper: bool,
    now_ms: i64,
) -> Result<u64, StoreError> {
    Ok(match (b, upper) {
        (LexBound::NegInf, _) => 0,
        (LexBound::PosInf, _) => m.len(),
        (LexBound::Incl(v), false) | (LexBound::Excl(v), true) => {
            count_below(engine, m, &|_, e| e < v.as_slice(), now_ms)?
        }
        (LexBound::Incl(v), true) | (LexBound::Excl(v), false) => {
            count_below(engine, m, &|_, e| e <= v.as_slice(), now_ms)?
        }
    })
}

/// Visits what `ZSet::range_by_lex_from(r, rev)` yields, until `f` returns false.
fn lex_walk(
    engine: &mut Engine<Value>,
    m: &PagedZSet,
    r: &LexRange,
    rev: bool,
    now_ms: i64,
    f: &mut dyn FnMut(&[u8], f64) -> bool,
) -> Result<(), StoreError> {
    let Some(equal) = lex_plan(engine, m, r, now_ms)? else {
        return Ok(());
    };
    let from = match (equal, rev) {
        // Mixed scores: Redis walks in (score, member) order; so does this.
        (false, false) => 0,
        (false, true) => m.len() - 1,
        (true, false) => lex_rank(engine, m, &r.min, false, now_ms)?,
        (true, true) => match lex_rank(engine, m, &r.max, true, now_ms)? {
            0 => return Ok(()),
            hi => hi - 1,
        },
    };
    let near = |e: &[u8]| if rev { r.lte_max(e) } else { r.gte_min(e) };
    let far = |e: &[u8]| if rev { r.gte_min(e) } else { r.lte_max(e) };
    let mut started = false;
    walk(engine, m, from, rev, now_ms, &mut |e, s| {
        if !started {
            if !near(e) {
                return true;
            }
            // The first member on the near side must be inside the far end, or nothing is.
            if !far(e) {
                return false;
            }
            started = true;
        }
        f(e, s)
    })
}

/// Members in lex range `r` as ZRANGE BYLEX takes them: `ZSet::range_by_lex_from(r, rev)
/// .skip(offset).take_while(far end).take(limit)` (Redis skips the offset before checking the
/// far end).
pub fn range_by_lex(
    engine: &mut Engine<Value>,
    m: &PagedZSet,
    r: &LexRange,
    rev: bool,
    offset: u64,
    limit: u64,
    now_ms: i64,
) -> Result<Vec<(Vec<u8>, f64)>, StoreError> {
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    let far = |e: &[u8]| if rev { r.gte_min(e) } else { r.lte_max(e) };
    let mut skipped = 0;
    lex_walk(engine, m, r, rev, now_ms, &mut |e, s| {
        if skipped < offset {
            skipped += 1;
            return true;
        }
        if !far(e) {
            return false;
        }
        out.push((e.to_vec(), s));
        (out.len() as u64) < limit
    })?;
    Ok(out)
}

/// How many members are in lex range `r` (ZLEXCOUNT, as `ZSet::range_by_lex(r, false)
/// .count()`): two bound lookups when every score is equal, else a walk.
pub fn count_by_lex(
    engine: &mut Engine<Value>,
    m: &PagedZSet,
    r: &LexRange,
    now_ms: i64,
) -> Result<u64, StoreError> {
    match lex_plan(engine, m, r, now_ms)? {
        None => Ok(0),
        Some(true) => {
            let lo = lex_rank(engine, m, &r.min, false, now_ms)?;
            let hi = lex_rank(engine, m, &r.max, true, now_ms)?;
            Ok(hi.saturating_sub(lo))
        }
        Some(false) => {
            let mut n = 0;
            lex_walk(engine, m, r, false, now_ms, &mut |e, _| {
                let inside = r.lte_max(e);
                n += u64::from(inside);
                inside
            })?;
            Ok(n)
        }
    }
}
