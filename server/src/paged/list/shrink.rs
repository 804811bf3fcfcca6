//! The writes that take out runs of elements (LREM, LTRIM): they may empty pages, which are
//! deleted, or leave them small, which are merged into a neighbour.

use super::{drop_seg, elem_bytes, page, page_mut, PagedList};
use crate::value::Value;
use kvtier_core::{Engine, StoreError};

/// Removes up to `limit` elements equal to `elem`, from the head or (`from_tail`) the tail;
/// how many. A page without a match is read but left clean; emptied pages are deleted, and a
/// page left under a quarter of `page_bytes` is merged into a neighbour when both fit in one
/// page (see [`merge_small`]).
pub fn remove(
    engine: &mut Engine<Value>,
    m: &mut PagedList,
    elem: &[u8],
    limit: usize,
    from_tail: bool,
    page_bytes: u64,
    now_ms: i64,
) -> Result<usize, StoreError> {
    let mut removed = 0;
    let order: Vec<usize> = if from_tail {
        (0..m.segs().len()).rev().collect()
    } else {
        (0..m.segs().len()).collect()
    };
    let mut emptied = Vec::new();
    let mut touched = Vec::new();
    let mut failed = None;
    for seg in order {
        if removed == limit {
            break;
        }
        match page(engine, m, seg, now_ms) {
            Ok(p) if !p.iter().any(|e| e == elem) => continue,
            Ok(_) => {}
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
        let want = limit - removed;
        let p = match page_mut(engine, m, seg, now_ms) {
            Ok(p) => p,
            Err(e) => {
                failed = Some(e);
                break;
            }
        };
        let mut hits: Vec<usize> = p
            .iter()
            .enumerate()
            .filter(|(_, e)| *e == elem)
            .map(|(i, _)| i)
            .collect();
        if from_tail {
            hits.reverse();
        }
        hits.truncate(want);
        hits.sort_unstable_by(|a, b| b.cmp(a));
        let freed: u64 = p.with_deque(|d| {
            hits.iter()
                .filter_map(|&i| d.remove(i))
                .map(|e| elem_bytes(&e))
                .sum()
        });
        let s = m.seg_mut(seg);
        s.count -= hits.len() as u32;
        s.bytes = s.bytes.saturating_sub(freed);
        let (left, id) = (s.count, s.id);
        m.len -= hits.len() as u64;
        removed += hits.len();
        if left == 0 {
            emptied.push(seg);
        } else {
            touched.push(id);
        }
    }
    // Emptied segments are dropped last, from the highest position, so positions stay valid.
    emptied.sort_unstable_by(|a, b| b.cmp(a));
    for seg in emptied {
        drop_seg(engine, m, seg, now_ms);
    }
    if failed.is_none() {
        for id in touched {
            if let Err(e) = merge_small(engine, m, id, page_bytes, now_ms) {
                // Upkeep only: the removal is done and consistent; the pages stay as they are.
                log::warn!("merging a small page of a paged list failed: {e}");
                break;
            }
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(removed),
    }
}

/// Merges the segment with page `id`, if it holds less than a quarter of `page_bytes`, with
/// its next neighbour (else its previous one) when the two fit in one page: the later
/// segment's elements move to the earlier page and the later page is deleted, so removals
/// scattered over a long list do not leave it as many nearly empty pages.
fn merge_small(
    engine: &mut Engine<Value>,
    m: &mut PagedList,
    id: u32,
    page_bytes: u64,
    now_ms: i64,
) -> Result<(), StoreError> {
    let Some(at) = m.segs().iter().position(|s| s.id == id) else {
        return Ok(());
    };
    let segs = m.segs();
    let fits = |a: usize, b: usize| segs[a].bytes + segs[b].bytes <= page_bytes;
    let partner = super::super::merge_partner(segs.len(), at, segs[at].bytes, page_bytes, fits);
    let Some(first) = partner else {
        return Ok(());
    };
    // Both pages are read before either changes, so a failed read changes nothing.
    let moved: Vec<crate::listval::Elem> = page(engine, m, first + 1, now_ms)?
        .iter()
        .map(crate::listval::Elem::from_slice)
        .collect();
    page(engine, m, first, now_ms)?;
    let into = page_mut(engine, m, first, now_ms)?;
    let count = moved.len() as u32;
    let bytes: u64 = moved.iter().map(|e| elem_bytes(e)).sum();
    into.with_deque(|d| d.extend(moved));
    let s = m.seg_mut(first);
    s.count += count;
    s.bytes += bytes;
    // `drop_seg` takes the dropped count off the length: the elements are still in the list.
    m.len += u64::from(count);
    drop_seg(engine, m, first + 1, now_ms);
    Ok(())
}

/// Keeps elements `start..=end` (inside the list): whole segments outside are deleted without
/// being read, the two edge pages are cut.
pub fn trim(
    engine: &mut Engine<Value>,
    m: &mut PagedList,
    start: u64,
    end: u64,
    now_ms: i64,
) -> Result<(), StoreError> {
    // The tail first, so `start` still counts from the head.
    while let Some(last) = m.segs().back() {
        if m.len - u64::from(last.count) > end {
            drop_seg(engine, m, m.segs().len() - 1, now_ms);
        } else {
            break;
        }
    }
    if m.len > end + 1 {
        let cut = (m.len - end - 1) as usize;
        let i = m.segs().len() - 1;
        let p = page_mut(engine, m, i, now_ms)?;
        let keep = p.len() - cut;
        let freed: u64 = p.iter().skip(keep).map(elem_bytes).sum();
        p.trim(0, keep - 1);
        let s = m.seg_mut(i);
        s.count -= cut as u32;
        s.bytes = s.bytes.saturating_sub(freed);
        m.len -= cut as u64;
    }
    let mut skip = start;
    while let Some(first) = m.segs().front() {
        if u64::from(first.count) <= skip {
            skip -= u64::from(first.count);
            drop_seg(engine, m, 0, now_ms);
        } else {
            break;
        }
    }
    if skip > 0 {
        let p = page_mut(engine, m, 0, now_ms)?;
        let freed: u64 = p.iter().take(skip as usize).map(elem_bytes).sum();
        let last = p.len() - 1;
        p.trim(skip as usize, last);
        let s = m.seg_mut(0);
        s.count -= skip as u32;
        s.bytes = s.bytes.saturating_sub(freed);
        m.len -= skip;
    }
    Ok(())
}
