//! A segment's life: created with a page, split when it outgrows `page_bytes`, merged with a
//! neighbour when small, dropped when empty. The writes in `zset.rs` call these after they
//! have read every page they change.

use super::super::page_key;
use super::manifest::damaged;
use super::{elem_bytes, seg_page, seg_page_mut, PagedZSet, ZSeg};
use crate::value::Value;
use crate::zset::{Score, ZSet};
use kvtier_core::{Engine, StoreError};

/// The largest element of a page.
pub(super) fn last_of(z: &ZSet) -> Option<(Score, Vec<u8>)> {
    z.iter().next_back().map(|(m, s)| (Score(s), m.to_vec()))
}

/// A new segment at position `at` holding `page`, its page created without a load (a fresh
/// number of this generation cannot be in the store).
pub(super) fn new_seg(
    engine: &mut Engine<Value>,
    m: &mut PagedZSet,
    at: usize,
    page: ZSet,
    now_ms: i64,
) {
    let Some(last) = last_of(&page) else {
        return;
    };
    let id = m.alloc_id();
    let bytes = page.iter().map(|(e, _)| elem_bytes(e)).sum();
    let count = page.len() as u32;
    let pages = engine.pages_db();
    engine
        .db(pages, now_ms)
        .insert_new(&page_key(m.gen(), id), Value::ZSet(page));
    m.insert_seg(
        at,
        ZSeg {
            id,
            count,
            bytes,
            last,
        },
    );
}

/// Drops segment `seg` and deletes its page without reading it.
pub(super) fn drop_seg(engine: &mut Engine<Value>, m: &mut PagedZSet, seg: usize, now_ms: i64) {
    let s = m.remove_seg(seg);
    let pages = engine.pages_db();
    engine
        .db(pages, now_ms)
        .delete_blind(&page_key(m.gen(), s.id));
}

/// Removes element (`score`, `member`) from segment `seg` (its page already read); whether the
/// segment emptied and was dropped.
pub(super) fn remove_from_seg(
    engine: &mut Engine<Value>,
    m: &mut PagedZSet,
    seg: usize,
    member: &[u8],
    score: f64,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let p = seg_page_mut(engine, m, seg, now_ms)?;
    if !p.remove_scored(member, score) {
        return Err(damaged("a member missing from its segment"));
    }
    let was_last = m.segs()[seg].last.0 == Score(score) && m.segs()[seg].last.1 == member;
    let new_last = if was_last { last_of(p) } else { None };
    let s = m.seg_mut(seg);
    s.count -= 1;
    s.bytes = s.bytes.saturating_sub(elem_bytes(member));
    if s.count == 0 {
        drop_seg(engine, m, seg, now_ms);
        return Ok(true);
    }
    if let Some(l) = new_last {
        s.last = l;
    }
    Ok(false)
}

/// Splits segment `seg` if it grew past `page_bytes` (after `key` was put in it); whether it
/// did. The cut is by bytes, or next to `key` where the set grows at an end (see the `zset`
/// module doc).
pub(super) fn split_seg(
    engine: &mut Engine<Value>,
    m: &mut PagedZSet,
    seg: usize,
    key: &(Score, Vec<u8>),
    page_bytes: u64,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let s = &m.segs()[seg];
    if s.bytes <= page_bytes || s.count < 2 {
        return Ok(false);
    }
    let (count, half) = (s.count as usize, s.bytes / 2);
    let at_end = seg + 1 == m.segs().len() && s.last == *key;
    let p = seg_page_mut(engine, m, seg, now_ms)?;
    let at_start = seg == 0 && p.iter().next().is_some_and(|(e, _)| e == key.1.as_slice());
    let cut = if at_end {
        count - 1
    } else if at_start {
        1
    } else {
        let mut acc = 0;
        let n = p
            .iter()
            .take_while(|(e, _)| {
                acc += elem_bytes(e);
                acc < half
            })
            .count();
        (n + 1).clamp(1, count - 1)
    };
    let right = p.split_off(cut);
    let moved = right.iter().map(|(e, _)| elem_bytes(e)).sum::<u64>();
    let left_last = last_of(p).expect("a cut leaves elements on the left");
    let s = m.seg_mut(seg);
    s.count = cut as u32;
    s.bytes = s.bytes.saturating_sub(moved);
    s.last = left_last;
    new_seg(engine, m, seg + 1, right, now_ms);
    Ok(true)
}

/// Merges segment `seg` with a neighbour when both fit in three quarters of a page. Upkeep: a
/// neighbour page that cannot be read leaves the segments as they are.
pub(super) fn maybe_merge(
    engine: &mut Engine<Value>,
    m: &mut PagedZSet,
    seg: usize,
    page_bytes: u64,
    now_ms: i64,
) {
    let fits = |a: &ZSeg, b: &ZSeg| {
        a.bytes + b.bytes <= page_bytes.saturating_mul(3) / 4
            && u64::from(a.count) + u64::from(b.count) <= u64::from(u32::MAX)
    };
    let Some(s) = m.segs().get(seg) else {
        return;
    };
    let left = seg
        .checked_sub(1)
        .filter(|&l| fits(&m.segs()[l], s))
        .map(|l| (l, m.segs()[l].bytes));
    let right = m
        .segs()
        .get(seg + 1)
        .filter(|r| fits(s, r))
        .map(|r| (seg, r.bytes));
    let at = match (left, right) {
        (Some((l, lb)), Some((r, rb))) => {
            if lb <= rb {
                l
            } else {
                r
            }
        }
        (Some((l, _)), None) => l,
        (None, Some((r, _))) => r,
        (None, None) => return,
    };
    if let Err(e) = merge(engine, m, at, now_ms) {
        log::warn!("merging segments of a paged zset failed: {e}; retried later");
    }
}

/// Moves segment `at + 1`'s elements into segment `at` and drops `at + 1`.
fn merge(
    engine: &mut Engine<Value>,
    m: &mut PagedZSet,
    at: usize,
    now_ms: i64,
) -> Result<(), StoreError> {
    let moving: Vec<(Vec<u8>, f64)> = seg_page(engine, m, at + 1, now_ms)?
        .iter()
        .map(|(e, s)| (e.to_vec(), s))
        .collect();
    let p = seg_page_mut(engine, m, at, now_ms)?;
    for (e, s) in moving {
        p.insert_absent(e, s);
    }
    let right = m.segs()[at + 1].clone();
    let s = m.seg_mut(at);
    s.count += right.count;
    s.bytes += right.bytes;
    s.last = right.last;
    drop_seg(engine, m, at + 1, now_ms);
    Ok(())
}
