//! Paged lists: a manifest of ordered segments, one page per segment.
//!
//! The manifest lists the segments in list order with each one's element count and bytes, so an
//! index is found by walking the counts (from the nearer end) without loading a page. Pushes and
//! pops touch only the end page: a full end page starts a new segment, an emptied one is deleted
//! in the same save group as the manifest. A segment's page number is drawn from a counter and
//! never reused while the value lives, so a page key never changes meaning.
//!
//! Files: `manifest` (the manifest, its encoding and the index lookup), `ranges` (the read
//! side), `shrink` (LREM and LTRIM); the page access, the single-element writes, paging out
//! and copying are here.

mod manifest;
#[cfg(test)]
mod parts_tests;
mod ranges;
mod shrink;

pub use manifest::{elem_bytes, PagedList, Seg};
pub use ranges::{materialize, prepare, range, visit};
pub use shrink::{remove, trim};

use super::{new_gen, page_key};
use crate::commands::typed::List;
use crate::listval::Deque;
use crate::value::Value;
use kvtier_core::{Engine, StoreError};
use manifest::damaged;

/// Segment `seg`'s page for reading. A page that is missing or does not hold the count the
/// manifest says is corruption (an index into it would be wrong).
pub fn page<'e>(
    engine: &'e mut Engine<Value>,
    m: &PagedList,
    seg: usize,
    now_ms: i64,
) -> Result<&'e List, StoreError> {
    let key = m.seg_key(seg);
    let pages = engine.pages_db();
    match engine.get_or_load(pages, &key, now_ms)? {
        Some(Value::List(l)) if l.len() == m.segs()[seg].count as usize => Ok(l),
        _ => Err(damaged("a page is missing or holds another count")),
    }
}

/// Segment `seg`'s page for changing it (dirty from now on).
pub fn page_mut<'e>(
    engine: &'e mut Engine<Value>,
    m: &PagedList,
    seg: usize,
    now_ms: i64,
) -> Result<&'e mut List, StoreError> {
    // One lookup of the page, not a read and then a write (every push and pop comes here).
    let key = m.seg_key(seg);
    let pages = engine.pages_db();
    match engine.get_mut_or_load(pages, &key, now_ms)? {
        Some(Value::List(l)) if l.len() == m.segs()[seg].count as usize => Ok(l),
        _ => Err(damaged("a page is missing or holds another count")),
    }
}

/// A new segment holding `page` at position `at` (packed if it fits), its page created without
/// a load (a fresh number of this generation cannot be in the store).
fn new_seg(engine: &mut Engine<Value>, m: &mut PagedList, at: usize, page: Deque, now_ms: i64) {
    let id = m.alloc_id();
    let bytes = page.iter().map(|e| elem_bytes(e)).sum();
    let count = page.len() as u32;
    let pages = engine.pages_db();
    engine.db(pages, now_ms).insert_new(
        &page_key(m.gen, id),
        Value::List(Box::new(List::from_deque(page))),
    );
    m.insert_seg(at, Seg { id, count, bytes });
}

/// Drops segment `seg` (emptied) and deletes its page without reading it.
fn drop_seg(engine: &mut Engine<Value>, m: &mut PagedList, seg: usize, now_ms: i64) {
    let Some(s) = m.remove_seg(seg) else {
        return;
    };
    m.len -= u64::from(s.count);
    let pages = engine.pages_db();
    engine
        .db(pages, now_ms)
        .delete_blind(&page_key(m.gen, s.id));
}

/// Pushes `v` at the head (`left`) or the tail; a full end page starts a new segment.
pub fn push(
    engine: &mut Engine<Value>,
    m: &mut PagedList,
    v: Vec<u8>,
    left: bool,
    page_bytes: u64,
    now_ms: i64,
) -> Result<(), StoreError> {
    let b = elem_bytes(&v);
    let end = if left {
        m.segs().front()
    } else {
        m.segs().back()
    };
    let full = end.is_none_or(|s| s.count == u32::MAX || s.bytes + b > page_bytes);
    if full {
        if !m.segs().is_empty() {
            // The full page is done growing: the room it grew into is given back.
            let last = if left { 0 } else { m.segs().len() - 1 };
            page_mut(engine, m, last, now_ms)?.shrink_to_fit();
        }
        let at = if left { 0 } else { m.segs().len() };
        new_seg(engine, m, at, Deque::new(), now_ms);
    }
    let i = if left { 0 } else { m.segs().len() - 1 };
    let p = page_mut(engine, m, i, now_ms)?;
    if left {
        p.push_front(v);
    } else {
        p.push_back(v);
    }
    let s = m.seg_mut(i);
    s.count += 1;
    s.bytes += b;
    m.len += 1;
    Ok(())
}

/// Pops from the head (`left`) or the tail; an emptied end page is deleted.
pub fn pop(
    engine: &mut Engine<Value>,
    m: &mut PagedList,
    left: bool,
    now_ms: i64,
) -> Result<Option<Vec<u8>>, StoreError> {
    if m.segs().is_empty() {
        return Ok(None);
    }
    let i = if left { 0 } else { m.segs().len() - 1 };
    let p = page_mut(engine, m, i, now_ms)?;
    let v = if left { p.pop_front() } else { p.pop_back() };
    let v = v.ok_or_else(|| damaged("an empty page"))?;
    let s = m.seg_mut(i);
    s.count -= 1;
    s.bytes = s.bytes.saturating_sub(elem_bytes(&v));
    let emptied = s.count == 0;
    m.len -= 1;
    if emptied {
        drop_seg(engine, m, i, now_ms);
    }
    Ok(Some(v))
}

/// Element `index` (inside the list).
pub fn get(
    engine: &mut Engine<Value>,
    m: &PagedList,
    index: u64,
    now_ms: i64,
) -> Result<Vec<u8>, StoreError> {
    let (seg, off) = m.locate(index).ok_or_else(|| damaged("index"))?;
    page(engine, m, seg, now_ms)?
        .get(off)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| damaged("index"))
}

/// Replaces element `index` (inside the list).
pub fn set(
    engine: &mut Engine<Value>,
    m: &mut PagedList,
    index: u64,
    v: Vec<u8>,
    now_ms: i64,
) -> Result<(), StoreError> {
    let (seg, off) = m.locate(index).ok_or_else(|| damaged("index"))?;
    let added = elem_bytes(&v);
    let p = page_mut(engine, m, seg, now_ms)?;
    let old = p.get(off).map_or(0, elem_bytes);
    p.set(off, v);
    let s = m.seg_mut(seg);
    s.bytes = (s.bytes + added).saturating_sub(old);
    Ok(())
}

/// Inserts `v` so that it becomes element `index` (`0..=len`). A page grown past twice
/// `page_bytes` is split in two.
pub fn insert(
    engine: &mut Engine<Value>,
    m: &mut PagedList,
    index: u64,
    v: Vec<u8>,
    page_bytes: u64,
    now_ms: i64,
) -> Result<(), StoreError> {
    if index == 0 || index >= m.len {
        return push(engine, m, v, index == 0, page_bytes, now_ms);
    }
    let (seg, off) = m.locate(index).ok_or_else(|| damaged("index"))?;
    let b = elem_bytes(&v);
    page_mut(engine, m, seg, now_ms)?.insert(off, v);
    let s = m.seg_mut(seg);
    s.count += 1;
    s.bytes += b;
    let split = s.bytes > page_bytes.saturating_mul(2) && s.count >= 2;
    m.len += 1;
    if split {
        let p = page_mut(engine, m, seg, now_ms)?;
        let tail = p.with_deque(|d| d.split_off(d.len() / 2));
        let moved: u64 = tail.iter().map(|e| elem_bytes(e)).sum();
        let s = m.seg_mut(seg);
        s.count -= tail.len() as u32;
        s.bytes = s.bytes.saturating_sub(moved);
        new_seg(engine, m, seg + 1, tail, now_ms);
    }
    Ok(())
}

/// Turns `l` into pages of about `page_bytes` each under a new generation; returns the manifest
/// (the caller stores it under the key in place of `l`).
pub fn page_out(engine: &mut Engine<Value>, l: Deque, page_bytes: u64, now_ms: i64) -> PagedList {
    let mut m = PagedList::new(new_gen(), 0, Default::default());
    let mut page = Deque::new();
    let mut bytes = 0;
    for e in l {
        let b = elem_bytes(&e);
        if !page.is_empty() && bytes + b > page_bytes {
            let at = m.segs().len();
            new_seg(engine, &mut m, at, std::mem::take(&mut page), now_ms);
            bytes = 0;
        }
        bytes += b;
        page.push_back(e);
        m.len += 1;
    }
    if !page.is_empty() {
        let at = m.segs().len();
        new_seg(engine, &mut m, at, page, now_ms);
    }
    m
}

/// A copy under a new generation (COPY): every page is copied.
pub fn deep_copy(
    engine: &mut Engine<Value>,
    m: &PagedList,
    now_ms: i64,
) -> Result<PagedList, StoreError> {
    let copy = PagedList::new(new_gen(), m.next_id, m.segs().clone());
    for seg in 0..m.segs().len() {
        page(engine, m, seg, now_ms)?;
        super::share_page(engine, &m.seg_key(seg), &copy.seg_key(seg), now_ms)?;
    }
    Ok(copy)
}
