//! Paged sorted sets: a member index partitioned by member hash, and ordered segments.
//!
//! Two kinds of page share the value's generation:
//! - **Member pages** (numbers `0..2^level + split`): a paged hash's pages (`hash` does the
//!   linear hashing and splits), each a `Value::Hash` from member to score, the score as the 8
//!   big-endian bytes of its `f64` bits. ZSCORE and the "is it there, with which score" step of
//!   every write read one of them.
//! - **Segment pages** (numbers from [`SEG_BASE`] up, never reused while the value lives): the
//!   members in (score, member) order cut into runs, each run a `Value::ZSet` of its own
//!   members, so a rank inside a page is the page's own logarithmic rank. The manifest lists
//!   the segments in order with each one's count, bytes and largest element, so the segment of
//!   an element, of a score bound or of a rank is found in the manifest without reading a page.
//!
//! A rank is the counts of the earlier segments (a walk over the manifest, which is in memory)
//! plus a rank inside one page; a score or lex bound is a binary search over the segments' last
//! elements plus one inside one page. So ZRANK, ZCOUNT and the start of a range read one or two
//! segment pages whatever the size of the set.
//!
//! Writes read every page they change before they change any, so a page that cannot be read
//! fails the operation with nothing changed. A segment grown past `page_bytes` is split in two
//! by bytes, except where the set grows at one end (a new largest element in the last segment,
//! a new smallest in the first): there only that element moves to a new segment, so rising
//! scores (timestamps) leave full pages behind instead of half-full ones. A segment emptied is
//! deleted; one that shrank is merged into a neighbour when the two fit in three quarters of a
//! page (below a split's two halves, so a split and a merge do not chase each other).
//!
//! Whole-value uses ([`materialize`]) read the segment pages alone: they hold every member and
//! score.
//!
//! The generation is the member index's (`PagedZSet::gen`), not a second copy that could
//! disagree with it. A segment's last element is a `(Score, member)` so that it compares in
//! the set's own order. `remove` and `pop` take `page_bytes` for merging small segments.
//!
//! Files: `manifest` (the manifest, its encoding and the lookups over it), `ranges` (the read
//! side: ranks, ranges, counts), `segments` (creating, splitting, merging and dropping a
//! segment); the writes and whole-value operations are here.

mod manifest;
mod ranges;
mod segments;
#[cfg(test)]
mod tests;

pub use manifest::{PagedZSet, ZSeg, SEG_BASE};
pub use ranges::{
    count_by_lex, count_by_score, range_by_lex, range_by_rank, range_by_score, rank, walk,
};

use super::hash::{self, PagedHash};
use super::page_key;
use crate::value::Value;
use crate::zset::{Score, ZSet};
use kvtier_core::{Engine, StoreError};
use manifest::damaged;
use segments::{drop_seg, last_of, maybe_merge, new_seg, remove_from_seg, split_seg};

/// Bytes an element is counted for in a segment beyond its member and score.
const ELEM_OVERHEAD: u64 = 16;

/// Counted size of one element of a segment.
pub fn elem_bytes(member: &[u8]) -> u64 {
    member.len() as u64 + 8 + ELEM_OVERHEAD
}

/// A member page's value for `score`.
fn score_value(score: f64) -> Vec<u8> {
    score.to_bits().to_be_bytes().to_vec()
}

pub fn score_of_value(v: &[u8]) -> Result<f64, StoreError> {
    let bits: [u8; 8] = v.try_into().map_err(|_| damaged("a member page's score"))?;
    let s = f64::from_bits(u64::from_be_bytes(bits));
    if s.is_nan() {
        return Err(damaged("a member page's score"));
    }
    Ok(s)
}

/// -0.0 and 0.0 are one score (as in `ZSet::insert`).
fn norm(score: f64) -> f64 {
    if score == 0.0 {
        0.0
    } else {
        score
    }
}

/// Segment `seg`'s page for reading. A page that is missing or does not hold the count the
/// manifest says is corruption (a rank into it would be wrong).
pub fn seg_page<'e>(
    engine: &'e mut Engine<Value>,
    m: &PagedZSet,
    seg: usize,
    now_ms: i64,
) -> Result<&'e ZSet, StoreError> {
    let key = m.seg_key(seg);
    let pages = engine.pages_db();
    match engine.get_or_load(pages, &key, now_ms)? {
        Some(Value::ZSet(z)) if z.len() == m.segs()[seg].count as usize => Ok(z),
        _ => Err(damaged("a segment page is missing or holds another count")),
    }
}

/// Segment `seg`'s page for changing it (dirty from now on).
fn seg_page_mut<'e>(
    engine: &'e mut Engine<Value>,
    m: &PagedZSet,
    seg: usize,
    now_ms: i64,
) -> Result<&'e mut ZSet, StoreError> {
    let key = m.seg_key(seg);
    let pages = engine.pages_db();
    match engine.get_mut_or_load(pages, &key, now_ms)? {
        Some(Value::ZSet(z)) if z.len() == m.segs()[seg].count as usize => {
            // A page written before pages had their own record tag loads as a plain set.
            z.make_page();
            Ok(z)
        }
        _ => Err(damaged("a segment page is missing or holds another count")),
    }
}

/// A member's score (one member page).
pub fn score(
    engine: &mut Engine<Value>,
    m: &PagedZSet,
    member: &[u8],
    now_ms: i64,
) -> Result<Option<f64>, StoreError> {
    hash::get(engine, &m.index, member, now_ms)?
        .map(|v| score_of_value(&v))
        .transpose()
}

/// A member's score if its member page is in memory, without loading it (`None` otherwise, or
/// if the page does not hold it): for a planner that loads a write's old segment before the
/// command runs (the member page first, then on the next try the segment it names).
pub fn peek_score(engine: &Engine<Value>, m: &PagedZSet, member: &[u8]) -> Option<f64> {
    let key = page_key(m.gen(), m.member_page(member));
    match engine.peek(engine.pages_db(), &key) {
        Some(Value::Hash(h)) => h.get(member).and_then(|v| score_of_value(v).ok()),
        _ => None,
    }
}

/// The segment of `member`, whose score is `score`, after checking its page holds it.
fn seg_holding(
    engine: &mut Engine<Value>,
    m: &PagedZSet,
    member: &[u8],
    score: f64,
    now_ms: i64,
) -> Result<usize, StoreError> {
    let seg = m
        .seg_of(score, member)
        .ok_or_else(|| damaged("a member without a segment"))?;
    if !seg_page(engine, m, seg, now_ms)?.contains_scored(member, score) {
        return Err(damaged("a member missing from its segment"));
    }
    Ok(seg)
}

/// Sets `member`'s score, updating `m` (the caller stores it back); the previous score. An
/// unchanged score changes nothing (no page becomes dirty).
pub fn insert(
    engine: &mut Engine<Value>,
    m: &mut PagedZSet,
    member: Vec<u8>,
    score: f64,
    page_bytes: u64,
    now_ms: i64,
) -> Result<Option<f64>, StoreError> {
    debug_assert!(!score.is_nan(), "the commands reject NaN scores");
    let score = norm(score);
    let old = self::score(engine, m, &member, now_ms)?;
    if old.is_some_and(|o| o.to_bits() == score.to_bits()) {
        return Ok(old);
    }
    // Every page read before anything changes (the member page was read above).
    let from = match old {
        Some(o) => Some(seg_holding(engine, m, &member, o, now_ms)?),
        None => None,
    };
    let to = m.seg_of(score, &member);
    if let Some(t) = to {
        seg_page(engine, m, t, now_ms)?;
    }
    hash::set(
        engine,
        &mut m.index,
        member.clone(),
        score_value(score),
        now_ms,
    )?;
    let Some(mut to) = to else {
        // The first element.
        let mut page = ZSet::page();
        page.insert_absent(member, score);
        new_seg(engine, m, 0, page, now_ms);
        return Ok(old);
    };
    let b = elem_bytes(&member);
    let key = (Score(score), member);
    let p = seg_page_mut(engine, m, to, now_ms)?;
    // In the segment it was in, the element moves (count and bytes are unchanged); any other
    // segment does not hold it.
    if let (Some(o), true) = (old, from == Some(to)) {
        p.remove_scored(&key.1, o);
    }
    p.insert_absent(key.1.clone(), score);
    let new_last = (from == Some(to)).then(|| last_of(p)).flatten();
    let s = m.seg_mut(to);
    if let Some(l) = new_last {
        s.last = l;
    } else {
        s.count += 1;
        s.bytes += b;
        if key > s.last {
            s.last = key.clone();
        }
    }
    // The segment the element left, if it moved to another one and that one is not empty.
    let mut left_behind = None;
    if let (Some(f), Some(o)) = (from, old) {
        if f != to {
            if remove_from_seg(engine, m, f, &key.1, o, now_ms)? {
                if f < to {
                    to -= 1;
                }
            } else {
                left_behind = Some(f);
            }
        }
    }
    let split = split_seg(engine, m, to, &key, page_bytes, now_ms)?;
    if let Some(f) = left_behind {
        // A split of `to` below it moved it up one.
        let f = if split && f > to { f + 1 } else { f };
        maybe_merge(engine, m, f, page_bytes, now_ms);
    }
    index_upkeep(engine, &mut m.index, page_bytes, now_ms);
    Ok(old)
}

/// Splits the index's next member page if the index outgrew its pages. Upkeep, not part of
/// the write: a split whose page cannot be read is left for a later write.
fn index_upkeep(engine: &mut Engine<Value>, index: &mut PagedHash, page_bytes: u64, now_ms: i64) {
    if let Err(e) = hash::maybe_split(engine, index, page_bytes, now_ms) {
        log::warn!("splitting a member page of a paged zset failed: {e}; retried later");
    }
}

/// Removes `member`, updating `m`; its score if it was there. A member that is not there
/// leaves every page clean.
pub fn remove(
    engine: &mut Engine<Value>,
    m: &mut PagedZSet,
    member: &[u8],
    page_bytes: u64,
    now_ms: i64,
) -> Result<Option<f64>, StoreError> {
    let Some(old) = score(engine, m, member, now_ms)? else {
        return Ok(None);
    };
    let seg = seg_holding(engine, m, member, old, now_ms)?;
    hash::remove(engine, &mut m.index, member, now_ms)?;
    if !remove_from_seg(engine, m, seg, member, old, now_ms)? {
        maybe_merge(engine, m, seg, page_bytes, now_ms);
    }
    Ok(Some(old))
}

/// Removes and returns up to `n` members with the lowest scores (the highest with `max`), in
/// the order popped. Whole segments popped are deleted; the pages are all read first.
pub fn pop(
    engine: &mut Engine<Value>,
    m: &mut PagedZSet,
    n: u64,
    max: bool,
    page_bytes: u64,
    now_ms: i64,
) -> Result<Vec<(Vec<u8>, f64)>, StoreError> {
    let n = n.min(m.len());
    if n == 0 {
        return Ok(Vec::new());
    }
    let popped = range_by_rank(engine, m, 0, n - 1, max, now_ms)?;
    for (e, _) in &popped {
        hash::page(engine, &m.index, m.index.page_of(e), now_ms)?;
    }
    for (e, _) in &popped {
        hash::remove(engine, &mut m.index, e, now_ms)?;
    }
    let mut left = n;
    let mut cut_seg = None;
    while left > 0 {
        let i = if max { m.segs().len() - 1 } else { 0 };
        let c = u64::from(m.segs()[i].count);
        if c <= left {
            drop_seg(engine, m, i, now_ms);
            left -= c;
            continue;
        }
        let p = seg_page_mut(engine, m, i, now_ms)?;
        let mut freed = 0;
        for _ in 0..left {
            if let Some((e, _)) = p.pop(max) {
                freed += elem_bytes(&e);
            }
        }
        let new_last = if max { last_of(p) } else { None };
        let s = m.seg_mut(i);
        s.count -= left as u32;
        s.bytes = s.bytes.saturating_sub(freed);
        if let Some(l) = new_last {
            s.last = l;
        }
        cut_seg = Some(i);
        left = 0;
    }
    if let Some(i) = cut_seg {
        maybe_merge(engine, m, i, page_bytes, now_ms);
    }
    Ok(popped)
}

/// Turns `z` into pages of about `page_bytes` each under a new generation; returns the manifest
/// (the caller stores it under the key in place of `z`).
pub fn page_out(engine: &mut Engine<Value>, z: &ZSet, page_bytes: u64, now_ms: i64) -> PagedZSet {
    let scores: Vec<(&[u8], [u8; 8])> = z
        .iter()
        .map(|(e, s)| (e, norm(s).to_bits().to_be_bytes()))
        .collect();
    let pairs = scores.iter().map(|(e, s)| (*e, &s[..]));
    let index = hash::page_out_pairs(engine, pairs, page_bytes, now_ms);
    let mut m = PagedZSet::new(index, SEG_BASE, Vec::new());
    let mut page = ZSet::page();
    let mut bytes = 0;
    for (e, s) in z.iter() {
        let b = elem_bytes(e);
        if !page.is_empty() && bytes + b > page_bytes {
            let at = m.segs().len();
            new_seg(
                engine,
                &mut m,
                at,
                std::mem::replace(&mut page, ZSet::page()),
                now_ms,
            );
            bytes = 0;
        }
        bytes += b;
        page.insert_absent(e.to_vec(), s);
    }
    let at = m.segs().len();
    new_seg(engine, &mut m, at, page, now_ms);
    m
}

/// The whole set in one `ZSet` (DUMP, SORT, a source of ZUNION): the segment pages alone hold
/// every member and score, so the member pages are not read.
pub fn materialize(
    engine: &mut Engine<Value>,
    m: &PagedZSet,
    now_ms: i64,
) -> Result<ZSet, StoreError> {
    let mut out = ZSet::default();
    walk(engine, m, 0, false, now_ms, &mut |e, s| {
        out.insert(e.to_vec(), s);
        true
    })?;
    Ok(out)
}

/// A copy under a new generation (COPY): every page is copied.
pub fn deep_copy(
    engine: &mut Engine<Value>,
    m: &PagedZSet,
    now_ms: i64,
) -> Result<PagedZSet, StoreError> {
    let copy = PagedZSet::new(
        hash::deep_copy(engine, &m.index, now_ms)?,
        m.next_id,
        m.segs().to_vec(),
    );
    for seg in 0..m.segs().len() {
        seg_page(engine, m, seg, now_ms)?;
        super::share_page(engine, &m.seg_key(seg), &copy.seg_key(seg), now_ms)?;
    }
    Ok(copy)
}
