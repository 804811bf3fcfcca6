//! The read side of a paged list: ranges and walks over the elements, and the whole list.

use super::{page, PagedList};
use crate::listval::Deque;
use crate::value::Value;
use kvtier_core::{Engine, StoreError};

/// Makes the pages of `start..=end` resident and checks them, so that a reply written from
/// them afterwards cannot fail half-way.
pub fn prepare(
    engine: &mut Engine<Value>,
    m: &PagedList,
    start: u64,
    end: u64,
    now_ms: i64,
) -> Result<(), StoreError> {
    let Some((first, _)) = m.locate(start) else {
        return Ok(());
    };
    let last = m
        .locate(end.min(m.len.saturating_sub(1)))
        .map_or(first, |(s, _)| s);
    for seg in first..=last {
        page(engine, m, seg, now_ms)?;
    }
    Ok(())
}

/// Visits elements `start..=end` in order.
pub fn range(
    engine: &mut Engine<Value>,
    m: &PagedList,
    start: u64,
    end: u64,
    now_ms: i64,
    f: &mut dyn FnMut(&[u8]),
) -> Result<(), StoreError> {
    let Some((mut seg, mut off)) = m.locate(start) else {
        return Ok(());
    };
    let mut left = end.min(m.len - 1) - start + 1;
    while left > 0 && seg < m.segs().len() {
        let p = page(engine, m, seg, now_ms)?;
        for e in p.iter().skip(off) {
            if left == 0 {
                break;
            }
            f(e);
            left -= 1;
        }
        seg += 1;
        off = 0;
    }
    Ok(())
}

/// Visits elements with their index, from the head or (`from_tail`) the tail, until `f`
/// returns false.
pub fn visit(
    engine: &mut Engine<Value>,
    m: &PagedList,
    from_tail: bool,
    now_ms: i64,
    f: &mut dyn FnMut(usize, &[u8]) -> bool,
) -> Result<(), StoreError> {
    let n = m.segs().len();
    if from_tail {
        let mut idx = m.len as usize;
        for seg in (0..n).rev() {
            for e in page(engine, m, seg, now_ms)?.iter().rev() {
                idx -= 1;
                if !f(idx, e) {
                    return Ok(());
                }
            }
        }
    } else {
        let mut idx = 0;
        for seg in 0..n {
            for e in page(engine, m, seg, now_ms)?.iter() {
                if !f(idx, e) {
                    return Ok(());
                }
                idx += 1;
            }
        }
    }
    Ok(())
}

/// The whole list (DUMP, SORT).
pub fn materialize(
    engine: &mut Engine<Value>,
    m: &PagedList,
    now_ms: i64,
) -> Result<Deque, StoreError> {
    let mut out = Deque::with_capacity(m.len as usize);
    visit(engine, m, false, now_ms, &mut |_, e| {
        out.push_back(e.into());
        true
    })?;
    Ok(out)
}
