//! Paged streams: a manifest (the stream without its entries, plus the page index) and pages of
//! entries as ordered ID ranges, one page per range.
//!
//! XADD appends to the last page (a full one starts a new page); reads find the pages whose
//! ranges overlap what they ask for from the index alone; trimming drops whole pages from the
//! front without reading them and cuts into at most one; an emptied page is deleted in the
//! same save group as the manifest. A page number is drawn from a counter and never reused
//! while the value lives, so a page key never changes meaning. A page is a `Value::Stream`
//! holding entries only.
//!
//! [`Paged`] is the entries of a paged stream behind `stream::entries`, so the stream logic
//! and every command run unchanged over either form.

mod manifest;
#[cfg(test)]
mod tests;

pub use manifest::{entry_bytes, PageIndex, PagedStream, SPage};

use super::{new_gen, page_key};
use crate::stream::entries::{range_of, EntriesRead, EntriesWrite, R};
use crate::stream::{Fields, Stream, StreamId};
use crate::value::Value;
use kvtier_core::Engine;
use manifest::damaged;
use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};

/// The entries of a paged stream: its page index (`&PageIndex` to read, `&mut` to change) and
/// the engine its pages live in.
pub struct Paged<'e, I> {
    pub engine: &'e mut Engine<Value>,
    pub idx: I,
    pub now_ms: i64,
    pub page_bytes: u64,
}

/// The page at position `i` for reading. A page that is missing or does not hold the count
/// the index says is corruption (a reply from it would be wrong).
fn page<'e>(
    engine: &'e mut Engine<Value>,
    idx: &PageIndex,
    i: usize,
    now_ms: i64,
) -> R<&'e BTreeMap<StreamId, Fields>> {
    let key = idx.key_at(i);
    let pages = engine.pages_db();
    match engine.get_or_load(pages, &key, now_ms)? {
        Some(Value::Stream(s)) if s.entries.len() == idx.pages()[i].count as usize => {
            Ok(&s.entries)
        }
        _ => Err(damaged("a page is missing or holds another count")),
    }
}

/// The page at position `i` for changing it (dirty from now on).
fn page_mut<'e>(
    engine: &'e mut Engine<Value>,
    idx: &PageIndex,
    i: usize,
    now_ms: i64,
) -> R<&'e mut BTreeMap<StreamId, Fields>> {
    let key = idx.key_at(i);
    let pages = engine.pages_db();
    match engine.get_mut_or_load(pages, &key, now_ms)? {
        Some(Value::Stream(s)) if s.entries.len() == idx.pages()[i].count as usize => {
            Ok(&mut s.entries)
        }
        _ => Err(damaged("a page is missing or holds another count")),
    }
}

/// A new page at the end holding `entries`, created without a load (a fresh number of this
/// generation cannot be in the store).
fn new_page(
    engine: &mut Engine<Value>,
    idx: &mut PageIndex,
    entries: BTreeMap<StreamId, Fields>,
    now_ms: i64,
) {
    let id = idx.alloc_id();
    let first = entries.keys().next().copied().unwrap_or(StreamId::MIN);
    let last = entries.keys().next_back().copied().unwrap_or(StreamId::MIN);
    let sp = SPage {
        id,
        first,
        last,
        count: entries.len() as u32,
        bytes: entries.values().map(entry_bytes).sum(),
    };
    idx.len += u64::from(sp.count);
    let page = Stream {
        entries,
        ..Stream::default()
    };
    let pages = engine.pages_db();
    engine
        .db(pages, now_ms)
        .insert_new(&page_key(idx.gen, id), Value::Stream(Box::new(page)));
    idx.push_page(sp);
}

/// Merges the page at position `i`, if XDEL left it under a quarter of `page_bytes`, with its
/// next neighbour (else its previous one) when the two fit in one page: the later page's
/// entries move to the earlier page and the later page is deleted, so deletions scattered over
/// a long stream do not leave it as many nearly empty pages (each a record, a manifest row and
/// a read). Upkeep: a neighbour that cannot be read leaves the pages as they are.
fn merge_small(
    engine: &mut Engine<Value>,
    idx: &mut PageIndex,
    i: usize,
    page_bytes: u64,
    now_ms: i64,
) {
    let p = idx.pages();
    let fits = |a: usize, b: usize| {
        p[a].bytes + p[b].bytes <= page_bytes
            && u64::from(p[a].count) + u64::from(p[b].count) < u64::from(u32::MAX)
    };
    let Some(first) = super::merge_partner(p.len(), i, p[i].bytes, page_bytes, fits) else {
        return;
    };
    if let Err(e) = merge(engine, idx, first, now_ms) {
        log::warn!("merging pages of a paged stream failed: {e}; retried on a later XDEL");
    }
}

/// Moves the entries of the page at `first + 1` into the page at `first` and deletes the
/// later page. Both are read before either changes, so a failed read changes nothing.
fn merge(engine: &mut Engine<Value>, idx: &mut PageIndex, first: usize, now_ms: i64) -> R<()> {
    let moved = page(engine, idx, first + 1, now_ms)?.clone();
    page(engine, idx, first, now_ms)?;
    let into = page_mut(engine, idx, first, now_ms)?;
    let count = moved.len() as u32;
    let bytes: u64 = moved.values().map(entry_bytes).sum();
    let last = moved.keys().next_back().copied();
    into.extend(moved);
    let s = idx.page_mut(first);
    s.count += count;
    s.bytes += bytes;
    if let Some(l) = last {
        s.last = l;
    }
    // `drop_page` takes the dropped count off the length: the entries are still in the stream.
    idx.len += u64::from(count);
    drop_page(engine, idx, first + 1, now_ms);
    Ok(())
}

/// Drops the page at position `i` and deletes it without reading it.
fn drop_page(engine: &mut Engine<Value>, idx: &mut PageIndex, i: usize, now_ms: i64) {
    let Some(p) = idx.remove_page(i) else {
        return;
    };
    idx.len -= u64::from(p.count);
    let pages = engine.pages_db();
    engine
        .db(pages, now_ms)
        .delete_blind(&page_key(idx.gen, p.id));
}

impl<I: Deref<Target = PageIndex>> EntriesRead for Paged<'_, I> {
    fn count(&self) -> u64 {
        self.idx.len
    }
    fn first_id(&mut self) -> R<Option<StreamId>> {
        Ok(self.idx.pages().front().map(|p| p.first))
    }
    fn last_id(&mut self) -> R<Option<StreamId>> {
        Ok(self.idx.pages().back().map(|p| p.last))
    }
    fn get(&mut self, id: StreamId) -> R<Option<Fields>> {
        let Some(i) = self.idx.locate(id) else {
            return Ok(None);
        };
        Ok(page(self.engine, &self.idx, i, self.now_ms)?
            .get(&id)
            .cloned())
    }
    fn range(
        &mut self,
        start: StreamId,
        end: StreamId,
        rev: bool,
        count: usize,
    ) -> R<Vec<(StreamId, Fields)>> {
        let limit = if count == 0 { usize::MAX } else { count };
        let span = self.idx.overlapping(start, end);
        let order: Box<dyn Iterator<Item = usize>> = if rev {
            Box::new(span.rev())
        } else {
            Box::new(span)
        };
        let mut out = Vec::new();
        for i in order {
            let p = page(self.engine, &self.idx, i, self.now_ms)?;
            out.extend(range_of(p, start, end, rev, limit - out.len()));
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }
    fn count_below(&mut self, id: StreamId) -> R<u64> {
        let i = self.idx.pages().partition_point(|p| p.last < id);
        let whole: u64 = self
            .idx
            .pages()
            .range(..i)
            .map(|p| u64::from(p.count))
            .sum();
        let part = match self.idx.pages().get(i) {
            Some(p) if p.first < id => page(self.engine, &self.idx, i, self.now_ms)?
                .range(..id)
                .count() as u64,
            _ => 0,
        };
        Ok(whole + part)
    }
}

impl<I: DerefMut<Target = PageIndex>> EntriesWrite for Paged<'_, I> {
    fn push(&mut self, id: StreamId, fields: Fields) -> R<()> {
        let b = entry_bytes(&fields);
        let full = self
            .idx
            .pages()
            .back()
            .is_none_or(|p| p.count == u32::MAX || p.bytes + b > self.page_bytes);
        if full {
            new_page(self.engine, &mut self.idx, BTreeMap::new(), self.now_ms);
        }
        let i = self.idx.pages().len() - 1;
        page_mut(self.engine, &self.idx, i, self.now_ms)?.insert(id, fields);
        let p = self.idx.page_mut(i);
        if p.count == 0 {
            p.first = id;
        }
        p.last = id;
        p.count += 1;
        p.bytes += b;
        self.idx.len += 1;
        Ok(())
    }

    fn remove(&mut self, id: StreamId) -> R<bool> {
        let Some(i) = self.idx.locate(id) else {
            return Ok(false);
        };
        let p = page_mut(self.engine, &self.idx, i, self.now_ms)?;
        let Some(fields) = p.remove(&id) else {
            return Ok(false);
        };
        let (first, last) = (p.keys().next().copied(), p.keys().next_back().copied());
        self.idx.len -= 1;
        let sp = self.idx.page_mut(i);
        sp.count -= 1;
        sp.bytes = sp.bytes.saturating_sub(entry_bytes(&fields));
        match (first, last) {
            (Some(f), Some(l)) => {
                (sp.first, sp.last) = (f, l);
                merge_small(self.engine, &mut self.idx, i, self.page_bytes, self.now_ms);
            }
            // Emptied (its count is 0 now, so `drop_page` leaves `len` as it is).
            _ => drop_page(self.engine, &mut self.idx, i, self.now_ms),
        }
        Ok(true)
    }

    fn remove_first(&mut self, mut n: u64) -> R<()> {
        while n > 0 {
            let Some(p) = self.idx.pages().front() else {
                break;
            };
            let count = u64::from(p.count);
            if count <= n {
                // Whole pages go unread.
                drop_page(self.engine, &mut self.idx, 0, self.now_ms);
                n -= count;
                continue;
            }
            let pg = page_mut(self.engine, &self.idx, 0, self.now_ms)?;
            let mut freed = 0;
            for _ in 0..n {
                if let Some((_, f)) = pg.pop_first() {
                    freed += entry_bytes(&f);
                }
            }
            let first = pg.keys().next().copied().unwrap_or(StreamId::MIN);
            let sp = self.idx.page_mut(0);
            sp.count -= n as u32;
            sp.bytes = sp.bytes.saturating_sub(freed);
            sp.first = first;
            self.idx.len -= n;
            break;
        }
        Ok(())
    }
}

/// Turns `s` into a manifest and pages of about `page_bytes` each under a new generation (the
/// caller stores the manifest under the key in place of `s`).
pub fn page_out(
    engine: &mut Engine<Value>,
    mut s: Stream,
    page_bytes: u64,
    now_ms: i64,
) -> PagedStream {
    let entries = std::mem::take(&mut s.entries);
    let mut idx = PageIndex::new(new_gen(), 0, 0, Default::default());
    let mut page = BTreeMap::new();
    let mut bytes = 0;
    for (id, f) in entries {
        let b = entry_bytes(&f);
        if !page.is_empty() && bytes + b > page_bytes {
            new_page(engine, &mut idx, std::mem::take(&mut page), now_ms);
            bytes = 0;
        }
        bytes += b;
        page.insert(id, f);
    }
    if !page.is_empty() {
        new_page(engine, &mut idx, page, now_ms);
    }
    PagedStream { idx, meta: s }
}

/// The stream read whole into its one-record form (DUMP, DEBUG): every page is loaded.
pub fn materialize(engine: &mut Engine<Value>, m: &PagedStream, now_ms: i64) -> R<Stream> {
    let mut s = m.meta.clone();
    for i in 0..m.idx.pages().len() {
        let p = page(engine, &m.idx, i, now_ms)?;
        s.entries.extend(p.iter().map(|(k, v)| (*k, v.clone())));
    }
    Ok(s)
}

/// A copy under a new generation (COPY): every page is copied.
pub fn deep_copy(engine: &mut Engine<Value>, m: &PagedStream, now_ms: i64) -> R<PagedStream> {
    let mut copy = m.clone();
    // A fresh index under the new generation: its parts, if any, are all written by its save.
    copy.idx = PageIndex::new(new_gen(), m.idx.next_id, m.idx.len, m.idx.pages().clone());
    for i in 0..m.idx.pages().len() {
        page(engine, &m.idx, i, now_ms)?;
        super::share_page(engine, &m.idx.key_at(i), &copy.idx.key_at(i), now_ms)?;
    }
    Ok(copy)
}
