//! The manifest of a paged stream: its page index (each page's ID range, entry count and
//! bytes) and everything of the stream but its entries (IDs, counters, the Redis node
//! bookkeeping, consumer groups), with its versioned encoding.

use super::super::page_key;
use crate::paged::parts::{Layout, IN_PARTS};
use crate::stream::{codec, Fields, Stream, StreamId};
use kvtier_core::{LinkedCommit, LinkedWrite, StoreError};
use std::collections::VecDeque;

/// One page: entries with IDs in `[first, last]`, `count` of them, taking `bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SPage {
    pub id: u32,
    pub first: StreamId,
    pub last: StreamId,
    pub count: u32,
    pub bytes: u64,
}

impl SPage {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.to_le_bytes());
        id_(out, self.first);
        id_(out, self.last);
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&self.bytes.to_le_bytes());
    }

    /// A page from its `PAGE_LEN` bytes.
    fn decode(p: &[u8]) -> SPage {
        let u32_at = |i: usize| u32::from_le_bytes(p[i..i + 4].try_into().expect("4 bytes"));
        let u64_at = |i: usize| u64::from_le_bytes(p[i..i + 8].try_into().expect("8 bytes"));
        let id_at = |i: usize| StreamId::new(u64_at(i), u64_at(i + 8));
        SPage {
            id: u32_at(0),
            first: id_at(4),
            last: id_at(20),
            count: u32_at(36),
            bytes: u64_at(40),
        }
    }
}

/// Where the entries are: the pages in ID order; none is empty. A long index is stored in
/// parts (`paged::parts`), so that a save writes the parts that changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PageIndex {
    /// Generation: the prefix of every page key of this value.
    pub gen: u64,
    /// The next page number to hand out.
    pub next_id: u32,
    /// Live entries (the sum of the pages' counts).
    pub len: u64,
    pages: VecDeque<SPage>,
    layout: Layout,
}

/// The manifest stored under the stream's key.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PagedStream {
    pub idx: PageIndex,
    /// The stream without its entries (`meta.entries` stays empty).
    pub meta: Stream,
}

/// Manifest format version (first byte), so the format can evolve.
const VERSION: u8 = 1;
const HEAD_LEN: usize = 1 + 8 + 4 + 8 + 4;
const PAGE_LEN: usize = 4 + 16 + 16 + 4 + 8;
/// Pages of the index a part holds at most (8 kB; see `paged::parts`).
const PART_PAGES: usize = 8192 / PAGE_LEN;

/// Bytes an entry is counted for in its page.
pub fn entry_bytes(fields: &Fields) -> u64 {
    24 + fields.iter().map(|f| f.len() as u64 + 8).sum::<u64>()
}

pub(crate) fn damaged(what: &str) -> StoreError {
    StoreError::Corruption(format!("damaged paged stream: {what}"))
}

impl PageIndex {
    /// An index of `pages` holding `len` entries.
    pub fn new(gen: u64, next_id: u32, len: u64, pages: VecDeque<SPage>) -> Self {
        let mut ix = PageIndex {
            gen,
            next_id,
            len,
            pages,
            layout: Layout::new(PART_PAGES),
        };
        ix.layout.reshape(ix.pages.len());
        ix
    }

    /// The pages in ID order.
    pub fn pages(&self) -> &VecDeque<SPage> {
        &self.pages
    }

    /// The page at position `i`, for changing its range, count or bytes.
    pub fn page_mut(&mut self, i: usize) -> &mut SPage {
        self.layout.changed(self.pages.len(), i);
        &mut self.pages[i]
    }

    /// Appends page `p` (the newest IDs).
    pub fn push_page(&mut self, p: SPage) {
        self.layout.inserted(self.pages.len(), self.pages.len());
        self.pages.push_back(p);
    }

    /// Removes the page at position `i`.
    pub fn remove_page(&mut self, i: usize) -> Option<SPage> {
        if i >= self.pages.len() {
            return None;
        }
        self.layout.removed(self.pages.len(), i);
        self.pages.remove(i)
    }

    /// Every part record number in use (to delete them with the value).
    pub fn part_ids(&self) -> Vec<u32> {
        self.layout.part_ids()
    }

    /// Whether the index is stored in parts.
    #[cfg(test)]
    pub fn in_parts(&self) -> bool {
        self.layout.in_parts()
    }

    pub fn page_ids(&self) -> Vec<u32> {
        self.pages.iter().map(|p| p.id).collect()
    }

    /// The key of the page at position `i`.
    pub fn key_at(&self, i: usize) -> crate::paged::PageKey {
        page_key(self.gen, self.pages[i].id)
    }

    /// The position of the page whose ID range holds `id`.
    pub fn locate(&self, id: StreamId) -> Option<usize> {
        let i = self.pages.partition_point(|p| p.last < id);
        (i < self.pages.len() && self.pages[i].first <= id).then_some(i)
    }

    /// Positions `lo..hi` of the pages overlapping `[start, end]`.
    pub fn overlapping(&self, start: StreamId, end: StreamId) -> std::ops::Range<usize> {
        if start > end {
            return 0..0;
        }
        let lo = self.pages.partition_point(|p| p.last < start);
        let hi = self.pages.partition_point(|p| p.first <= end).max(lo);
        lo..hi
    }

    /// A page number no page uses.
    pub(super) fn alloc_id(&mut self) -> u32 {
        if self.next_id < u32::MAX {
            self.next_id += 1;
            return self.next_id - 1;
        }
        let mut used = self.page_ids();
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
}

fn id_(out: &mut Vec<u8>, id: StreamId) {
    out.extend_from_slice(&id.ms.to_le_bytes());
    out.extend_from_slice(&id.seq.to_le_bytes());
}

impl PagedStream {
    pub fn mem_size(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.idx.pages.capacity() * std::mem::size_of::<SPage>()
            + self.meta.mem_size()
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        let ix = &self.idx;
        out.push(VERSION);
        out.extend_from_slice(&ix.gen.to_le_bytes());
        out.extend_from_slice(&ix.next_id.to_le_bytes());
        out.extend_from_slice(&ix.len.to_le_bytes());
        if ix.layout.in_parts() {
            out.extend_from_slice(&IN_PARTS.to_le_bytes());
            ix.layout.encode(out);
        } else {
            out.reserve(HEAD_LEN + ix.pages.len() * PAGE_LEN);
            out.extend_from_slice(&(ix.pages.len() as u32).to_le_bytes());
            for p in &ix.pages {
                p.encode(out);
            }
        }
        codec::encode(&self.meta, out);
    }

    /// The part records a save of this manifest writes beside its own (see
    /// [`kvtier_core::CacheValue::linked_writes`]).
    pub fn linked_writes(&self, out: &mut Vec<LinkedWrite>) -> Option<LinkedCommit> {
        let ix = &self.idx;
        let encode = |at: usize, n: usize, out: &mut Vec<u8>| {
            out.reserve(n * PAGE_LEN);
            for p in ix.pages.range(at..at + n) {
                p.encode(out);
            }
        };
        ix.layout.writes(ix.gen, encode, out)
    }

    /// The keys of the part records a manifest read in parts still needs (none once linked).
    pub fn linked_keys(&self) -> Vec<Vec<u8>> {
        let ix = &self.idx;
        ix.layout.linked_keys(ix.gen, !ix.pages.is_empty())
    }

    /// Completes a manifest read in parts with its part records' bytes, in order.
    pub fn link(&mut self, parts: Vec<Option<Vec<u8>>>) -> Result<(), StoreError> {
        let pages = self
            .idx
            .layout
            .link(parts, PAGE_LEN, |e| Ok(SPage::decode(e)))?;
        self.idx.pages = check_pages(pages.into_iter(), self.idx.len)?;
        Ok(())
    }

    pub fn decode(p: &[u8]) -> Result<Self, StoreError> {
        if p.len() < HEAD_LEN || p[0] != VERSION {
            return Err(damaged("short manifest or unknown version"));
        }
        let u32_at = |i: usize| u32::from_le_bytes(p[i..i + 4].try_into().expect("4 bytes"));
        let u64_at = |i: usize| u64::from_le_bytes(p[i..i + 8].try_into().expect("8 bytes"));
        let n = u32_at(21);
        let mut idx = PageIndex {
            gen: u64_at(1),
            next_id: u32_at(9),
            len: u64_at(13),
            pages: VecDeque::new(),
            layout: Layout::new(PART_PAGES),
        };
        let rest = if n == IN_PARTS {
            let (layout, used) = Layout::decode(&p[HEAD_LEN..], PART_PAGES)?;
            idx.layout = layout;
            &p[HEAD_LEN + used..]
        } else {
            let n = n as usize;
            if (p.len() - HEAD_LEN) / PAGE_LEN < n {
                return Err(damaged("manifest length"));
            }
            let table = &p[HEAD_LEN..HEAD_LEN + n * PAGE_LEN];
            idx.pages = check_pages(table.chunks_exact(PAGE_LEN).map(SPage::decode), idx.len)?;
            &p[HEAD_LEN + n * PAGE_LEN..]
        };
        let meta = codec::decode(rest).map_err(damaged)?;
        if !meta.entries.is_empty() {
            return Err(damaged("entries in the manifest"));
        }
        Ok(PagedStream { idx, meta })
    }
}

/// The pages of an index as read, checked: none empty, in ID order without overlap, `len`
/// entries in all.
fn check_pages(
    pages: impl Iterator<Item = SPage>,
    len: u64,
) -> Result<VecDeque<SPage>, StoreError> {
    let mut out = VecDeque::new();
    let mut total = 0u64;
    let mut prev: Option<StreamId> = None;
    for pg in pages {
        if pg.count == 0 || pg.first > pg.last || prev.is_some_and(|l| l >= pg.first) {
            return Err(damaged("page range"));
        }
        prev = Some(pg.last);
        total += u64::from(pg.count);
        out.push_back(pg);
    }
    if total != len {
        return Err(damaged("entry count"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PagedStream {
        let meta = Stream {
            last_id: StreamId::new(9, 9),
            entries_added: 12,
            ..Stream::default()
        };
        let pages = [(1, 3, 2), (5, 8, 4)]
            .iter()
            .enumerate()
            .map(|(i, &(a, b, c))| SPage {
                id: i as u32,
                first: StreamId::new(a, 0),
                last: StreamId::new(b, 0),
                count: c,
                bytes: 100,
            })
            .collect();
        PagedStream {
            idx: PageIndex::new(77, 2, 6, pages),
            meta,
        }
    }

    #[test]
    fn manifest_round_trip_and_damage() {
        let m = sample();
        let mut out = Vec::new();
        m.encode(&mut out);
        assert_eq!(PagedStream::decode(&out).unwrap(), m);
        for cut in 0..out.len() {
            assert!(PagedStream::decode(&out[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = out.clone();
        bad[13] ^= 1; // the entry count no longer matches the pages
        assert!(PagedStream::decode(&bad).is_err());
    }

    #[test]
    fn locate_and_overlap() {
        let m = sample();
        let ix = &m.idx;
        assert_eq!(ix.locate(StreamId::new(2, 5)), Some(0));
        assert_eq!(ix.locate(StreamId::new(4, 0)), None);
        assert_eq!(ix.locate(StreamId::new(8, 0)), Some(1));
        assert_eq!(ix.locate(StreamId::new(8, 1)), None);
        assert_eq!(
            ix.overlapping(StreamId::new(0, 0), StreamId::new(4, 0)),
            0..1
        );
        assert_eq!(ix.overlapping(StreamId::new(4, 0), StreamId::MAX), 1..2);
        assert_eq!(
            ix.overlapping(StreamId::new(4, 0), StreamId::new(4, 9)),
            1..1
        );
        assert_eq!(ix.overlapping(StreamId::MIN, StreamId::MAX), 0..2);
    }

    /// A long index is saved as parts beside the manifest and read back through them; a part
    /// that is missing or out of order fails the load.
    #[test]
    fn a_long_index_round_trips_through_its_parts() {
        let n = 2000u64;
        let pages: VecDeque<SPage> = (0..n)
            .map(|i| SPage {
                id: i as u32,
                first: StreamId::new(i * 10, 0),
                last: StreamId::new(i * 10 + 5, 0),
                count: 3,
                bytes: 99,
            })
            .collect();
        let m = PagedStream {
            idx: PageIndex::new(5, n as u32, n * 3, pages),
            meta: sample().meta,
        };
        assert!(m.idx.in_parts());
        let mut writes = Vec::new();
        m.linked_writes(&mut writes).expect("parts to write")();
        let stored: std::collections::HashMap<Vec<u8>, Vec<u8>> = writes
            .into_iter()
            .map(|w| (w.key, w.put.expect("a put").1))
            .collect();
        let mut out = Vec::new();
        m.encode(&mut out);
        assert!(
            out.len() < 1000,
            "the manifest's own record: {} bytes",
            out.len()
        );
        let back = PagedStream::decode(&out).unwrap();
        let parts: Vec<Option<Vec<u8>>> = back
            .linked_keys()
            .iter()
            .map(|k| stored.get(k).cloned())
            .collect();
        let mut linked = back.clone();
        linked.link(parts.clone()).unwrap();
        assert_eq!(linked, m);
        assert!(linked.linked_keys().is_empty());
        // Nothing changed since that save: nothing to write.
        assert!(m.linked_writes(&mut Vec::new()).is_none());
        let mut missing = parts.clone();
        missing[0] = None;
        assert!(back.clone().link(missing).is_err());
        let mut swapped = parts;
        swapped.swap(0, 1);
        assert!(back.clone().link(swapped).is_err());
    }
}
