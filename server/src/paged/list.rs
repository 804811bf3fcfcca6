//! Paged lists: a manifest of ordered segments, one page per segment.
//!
//! The manifest lists the segments in list order with each one's element count and bytes, so an
//! index is found by walking the counts (from the nearer end) without loading a page. Pushes and
//! pops touch only the end page: a full end page starts a new segment, an emptied one is deleted
//! in the same save group as the manifest. A segment's page number is drawn from a counter and
//! never reused while the value lives, so a page key never changes meaning.

use super::{ensure_page, new_gen, page_key};
use crate::commands::typed::List;
use crate::value::Value;
use kvtier_core::{Engine, StoreError};
use std::collections::VecDeque;

/// One segment: page `id` holds `count` consecutive elements taking `bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seg {
    pub id: u32,
    pub count: u32,
    pub bytes: u64,
}

/// The manifest of a paged list, stored under the list's key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PagedList {
    /// Generation: the prefix of every page key of this value.
    pub gen: u64,
    /// The next page number to hand out.
    pub next_id: u32,
    /// Number of elements (the sum of the segments' counts).
    pub len: u64,
    /// The segments in list order; none is empty.
    pub segs: VecDeque<Seg>,
}

/// Bytes an element is counted for beyond its own.
const ELEM_OVERHEAD: u64 = 8;
/// Encoded size of the manifest's fixed part and of one segment.
const HEAD_LEN: usize = 8 + 4 + 8 + 4;
const SEG_LEN: usize = 4 + 4 + 8;

/// Counted size of one element.
pub fn elem_bytes(e: &[u8]) -> u64 {
    e.len() as u64 + ELEM_OVERHEAD
}

fn damaged(what: &str) -> StoreError {
    StoreError::Corruption(format!("damaged paged list: {what}"))
}

impl PagedList {
    /// Every page number in use (to delete the pages with the value).
    pub fn page_ids(&self) -> Vec<u32> {
        self.segs.iter().map(|s| s.id).collect()
    }

    /// The key of the page of segment `seg`.
    pub fn seg_key(&self, seg: usize) -> Vec<u8> {
        page_key(self.gen, self.segs[seg].id)
    }

    /// Memory the manifest takes.
    pub fn mem_size(&self) -> usize {
        std::mem::size_of::<Self>() + self.segs.capacity() * std::mem::size_of::<Seg>()
    }

    /// A page number no segment uses.
    fn alloc_id(&mut self) -> u32 {
        if self.next_id < u32::MAX {
            self.next_id += 1;
            return self.next_id - 1;
        }
        // 4 billion pages later: take the lowest free number.
        let mut used: Vec<u32> = self.page_ids();
        used.sort_unstable();
        let mut free = 0;
        for id in used {
            if id != free {
                break;
            }
            free += 1;
        }
        free
    }

    /// The segment holding element `index` and the offset in it; `None` past the end.
    pub fn locate(&self, index: u64) -> Option<(usize, usize)> {
        if index >= self.len {
            return None;
        }
        if index < self.len / 2 {
            let mut rest = index;
            for (i, s) in self.segs.iter().enumerate() {
                let c = u64::from(s.count);
                if rest < c {
                    return Some((i, rest as usize));
                }
                rest -= c;
            }
        } else {
            let mut rest = self.len - 1 - index;
            for (i, s) in self.segs.iter().enumerate().rev() {
                let c = u64::from(s.count);
                if rest < c {
                    return Some((i, (c - 1 - rest) as usize));
                }
                rest -= c;
            }
        }
        None
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(HEAD_LEN + self.segs.len() * SEG_LEN);
        out.extend_from_slice(&self.gen.to_le_bytes());
        out.extend_from_slice(&self.next_id.to_le_bytes());
        out.extend_from_slice(&self.len.to_le_bytes());
        out.extend_from_slice(&(self.segs.len() as u32).to_le_bytes());
        for s in &self.segs {
            out.extend_from_slice(&s.id.to_le_bytes());
            out.extend_from_slice(&s.count.to_le_bytes());
            out.extend_from_slice(&s.bytes.to_le_bytes());
        }
    }

    pub fn decode(p: &[u8]) -> Result<Self, StoreError> {
        if p.len() < HEAD_LEN {
            return Err(damaged("short manifest"));
        }
        let u32_at = |i: usize| u32::from_le_bytes(p[i..i + 4].try_into().expect("4 bytes"));
        let u64_at = |i: usize| u64::from_le_bytes(p[i..i + 8].try_into().expect("8 bytes"));
        let n = u32_at(20) as usize;
        if p.len() != HEAD_LEN + n * SEG_LEN {
            return Err(damaged("manifest length"));
        }
        let mut m = PagedList {
            gen: u64_at(0),
            next_id: u32_at(8),
            len: u64_at(12),
            segs: VecDeque::with_capacity(n),
        };
        let mut total = 0u64;
        for i in 0..n {
            let at = HEAD_LEN + i * SEG_LEN;
            let s = Seg {
                id: u32_at(at),
                count: u32_at(at + 4),
                bytes: u64_at(at + 8),
            };
            if s.count == 0 {
                return Err(damaged("empty segment"));
            }
            total += u64::from(s.count);
            m.segs.push_back(s);
        }
        if total != m.len || m.len == 0 {
            return Err(damaged("element count"));
        }
        Ok(m)
    }
}

/// Segment `seg`'s page for reading. A page that is missing or does not hold the count the
/// manifest says is corruption (an index into it would be wrong).
pub fn page<'e>(
    engine: &'e mut Engine<Value>,
    m: &PagedList,
    seg: usize,
    now_ms: i64,
) -> Result<&'e List, StoreError> {
    let key = m.seg_key(seg);
    ensure_page(engine, &key)?;
    let pages = engine.pages_db();
    match engine.db(pages, now_ms).into_get(&key) {
        Some(Value::List(l)) if l.len() == m.segs[seg].count as usize => Ok(l),
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
    page(engine, m, seg, now_ms)?;
    let key = m.seg_key(seg);
    let pages = engine.pages_db();
    match engine.db(pages, now_ms).into_get_mut(&key) {
        Some(Value::List(l)) => Ok(l),
        _ => Err(damaged("a page is missing")),
    }
}

/// A new empty segment at position `at`, its page created without a load (a fresh number of
/// this generation cannot be in the store).
fn new_seg(engine: &mut Engine<Value>, m: &mut PagedList, at: usize, page: List, now_ms: i64) {
    let id = m.alloc_id();
    let bytes = page.iter().map(|e| elem_bytes(e)).sum();
    let count = page.len() as u32;
    let pages = engine.pages_db();
    engine
        .db(pages, now_ms)
        .insert_new(&page_key(m.gen, id), Value::List(Box::new(page)));
    m.segs.insert(at, Seg { id, count, bytes });
}

/// Drops segment `seg` (emptied) and deletes its page without reading it.
fn drop_seg(engine: &mut Engine<Value>, m: &mut PagedList, seg: usize, now_ms: i64) {
    let Some(s) = m.segs.remove(seg) else {
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
    let end = if left { m.segs.front() } else { m.segs.back() };
    let full = end.is_none_or(|s| s.count == u32::MAX || s.bytes + b > page_bytes);
    if full {
        let at = if left { 0 } else { m.segs.len() };
        new_seg(engine, m, at, List::new(), now_ms);
    }
    let i = if left { 0 } else { m.segs.len() - 1 };
    let p = page_mut(engine, m, i, now_ms)?;
    if left {
        p.push_front(v);
    } else {
        p.push_back(v);
    }
    let s = &mut m.segs[i];
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
    if m.segs.is_empty() {
        return Ok(None);
    }
    let i = if left { 0 } else { m.segs.len() - 1 };
    let p = page_mut(engine, m, i, now_ms)?;
    let v = if left { p.pop_front() } else { p.pop_back() };
    let v = v.ok_or_else(|| damaged("an empty page"))?;
    let s = &mut m.segs[i];
    s.count -= 1;
    s.bytes = s.bytes.saturating_sub(elem_bytes(&v));
    m.len -= 1;
    if s.count == 0 {
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
    Ok(page(engine, m, seg, now_ms)?[off].clone())
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
    let old = std::mem::replace(&mut p[off], v);
    let s = &mut m.segs[seg];
    s.bytes = (s.bytes + added).saturating_sub(elem_bytes(&old));
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
    let s = &mut m.segs[seg];
    s.count += 1;
    s.bytes += b;
    m.len += 1;
    if s.bytes > page_bytes.saturating_mul(2) && s.count >= 2 {
        let p = page_mut(engine, m, seg, now_ms)?;
        let tail = p.split_off(p.len() / 2);
        let moved: u64 = tail.iter().map(|e| elem_bytes(e)).sum();
        let s = &mut m.segs[seg];
        s.count -= tail.len() as u32;
        s.bytes = s.bytes.saturating_sub(moved);
        new_seg(engine, m, seg + 1, tail, now_ms);
    }
    Ok(())
}

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
        (0..m.segs.len()).rev().collect()
    } else {
        (0..m.segs.len()).collect()
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
        let mut freed = 0;
        for &i in &hits {
            if let Some(e) = p.remove(i) {
                freed += elem_bytes(&e);
            }
        }
        let s = &mut m.segs[seg];
        s.count -= hits.len() as u32;
        s.bytes = s.bytes.saturating_sub(freed);
        m.len -= hits.len() as u64;
        removed += hits.len();
        if s.count == 0 {
            emptied.push(seg);
        } else {
            touched.push(s.id);
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
    let Some(at) = m.segs.iter().position(|s| s.id == id) else {
        return Ok(());
    };
    if m.segs[at].bytes >= page_bytes / 4 {
        return Ok(());
    }
    let fits = |a: &Seg, b: &Seg| a.bytes + b.bytes <= page_bytes;
    let first = if at + 1 < m.segs.len() && fits(&m.segs[at], &m.segs[at + 1]) {
        at
    } else if at > 0 && fits(&m.segs[at - 1], &m.segs[at]) {
        at - 1
    } else {
        return Ok(());
    };
    // Both pages are read before either changes, so a failed read changes nothing.
    let moved: List = page(engine, m, first + 1, now_ms)?.clone();
    page(engine, m, first, now_ms)?;
    let into = page_mut(engine, m, first, now_ms)?;
    let count = moved.len() as u32;
    let bytes: u64 = moved.iter().map(|e| elem_bytes(e)).sum();
    into.extend(moved);
    let s = &mut m.segs[first];
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
    while let Some(last) = m.segs.back() {
        if m.len - u64::from(last.count) > end {
            drop_seg(engine, m, m.segs.len() - 1, now_ms);
        } else {
            break;
        }
    }
    if m.len > end + 1 {
        let cut = (m.len - end - 1) as usize;
        let i = m.segs.len() - 1;
        let p = page_mut(engine, m, i, now_ms)?;
        let keep = p.len() - cut;
        let freed: u64 = p.drain(keep..).map(|e| elem_bytes(&e)).sum();
        let s = &mut m.segs[i];
        s.count -= cut as u32;
        s.bytes = s.bytes.saturating_sub(freed);
        m.len -= cut as u64;
    }
    let mut skip = start;
    while let Some(first) = m.segs.front() {
        if u64::from(first.count) <= skip {
            skip -= u64::from(first.count);
            drop_seg(engine, m, 0, now_ms);
        } else {
            break;
        }
    }
    if skip > 0 {
        let p = page_mut(engine, m, 0, now_ms)?;
        let freed: u64 = p.drain(..skip as usize).map(|e| elem_bytes(&e)).sum();
        let s = &mut m.segs[0];
        s.count -= skip as u32;
        s.bytes = s.bytes.saturating_sub(freed);
        m.len -= skip;
    }
    Ok(())
}

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
    while left > 0 && seg < m.segs.len() {
        let p = page(engine, m, seg, now_ms)?;
        for e in p.range(off..) {
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
    let n = m.segs.len();
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
            for e in page(engine, m, seg, now_ms)? {
                if !f(idx, e) {
                    return Ok(());
                }
                idx += 1;
            }
        }
    }
    Ok(())
}

/// Turns `l` into pages of about `page_bytes` each under a new generation; returns the manifest
/// (the caller stores it under the key in place of `l`).
pub fn page_out(engine: &mut Engine<Value>, l: List, page_bytes: u64, now_ms: i64) -> PagedList {
    let mut m = PagedList {
        gen: new_gen(),
        ..PagedList::default()
    };
    let mut page = List::new();
    let mut bytes = 0;
    for e in l {
        let b = elem_bytes(&e);
        if !page.is_empty() && bytes + b > page_bytes {
            let at = m.segs.len();
            new_seg(engine, &mut m, at, std::mem::take(&mut page), now_ms);
            bytes = 0;
        }
        bytes += b;
        page.push_back(e);
        m.len += 1;
    }
    if !page.is_empty() {
        let at = m.segs.len();
        new_seg(engine, &mut m, at, page, now_ms);
    }
    m
}

/// The whole list (DUMP, SORT).
pub fn materialize(
    engine: &mut Engine<Value>,
    m: &PagedList,
    now_ms: i64,
) -> Result<List, StoreError> {
    let mut out = List::with_capacity(m.len as usize);
    visit(engine, m, false, now_ms, &mut |_, e| {
        out.push_back(e.to_vec());
        true
    })?;
    Ok(out)
}

/// A copy under a new generation (COPY): every page is copied.
pub fn deep_copy(
    engine: &mut Engine<Value>,
    m: &PagedList,
    now_ms: i64,
) -> Result<PagedList, StoreError> {
    let mut copy = PagedList {
        gen: new_gen(),
        next_id: m.next_id,
        len: m.len,
        segs: m.segs.clone(),
    };
    let pages = engine.pages_db();
    for seg in 0..m.segs.len() {
        let p = page(engine, m, seg, now_ms)?.clone();
        engine
            .db(pages, now_ms)
            .insert_new(&copy.seg_key(seg), Value::List(Box::new(p)));
    }
    copy.segs.shrink_to_fit();
    Ok(copy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(counts: &[u32]) -> PagedList {
        let segs: VecDeque<Seg> = counts
            .iter()
            .enumerate()
            .map(|(i, &count)| Seg {
                id: i as u32 * 3,
                count,
                bytes: u64::from(count) * 10,
            })
            .collect();
        PagedList {
            gen: 9,
            next_id: counts.len() as u32 * 3,
            len: counts.iter().map(|&c| u64::from(c)).sum(),
            segs,
        }
    }

    #[test]
    fn manifest_round_trip_and_damage() {
        let m = manifest(&[3, 1, 7]);
        let mut out = Vec::new();
        m.encode(&mut out);
        assert_eq!(PagedList::decode(&out).unwrap(), m);
        assert!(PagedList::decode(&out[..out.len() - 1]).is_err());
        let mut bad = out.clone();
        bad[12] ^= 1; // the element count no longer matches the segments
        assert!(PagedList::decode(&bad).is_err());
        let mut empty_seg = manifest(&[3, 1]);
        empty_seg.segs[1].count = 0;
        empty_seg.len = 3;
        let mut out = Vec::new();
        empty_seg.encode(&mut out);
        assert!(PagedList::decode(&out).is_err());
    }

    #[test]
    fn locate_walks_from_either_end() {
        let m = manifest(&[3, 1, 7, 2]);
        let all: Vec<(usize, usize)> = (0..m.len).map(|i| m.locate(i).unwrap()).collect();
        let mut want = Vec::new();
        for (seg, &c) in [3, 1, 7, 2].iter().enumerate() {
            for off in 0..c {
                want.push((seg, off as usize));
            }
        }
        assert_eq!(all, want);
        assert_eq!(m.locate(m.len), None);
        assert_eq!(PagedList::default().locate(0), None);
    }

    #[test]
    fn page_numbers_are_never_shared() {
        let mut m = manifest(&[1, 1]);
        m.next_id = u32::MAX;
        // Ids 0 and 3 are taken: the first free one is 1.
        assert_eq!(m.alloc_id(), 1);
        let mut fresh = PagedList::default();
        assert_eq!((fresh.alloc_id(), fresh.alloc_id()), (0, 1));
    }
}
