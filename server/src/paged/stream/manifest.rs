//! The manifest of a paged stream: its page index (each page's ID range, entry count and
//! bytes) and everything of the stream but its entries (IDs, counters, the Redis node
//! bookkeeping, consumer groups), with its versioned encoding.

use super::super::page_key;
use crate::stream::{codec, Fields, Stream, StreamId};
use kvtier_core::StoreError;
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

/// Where the entries are: the pages in ID order; none is empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PageIndex {
    /// Generation: the prefix of every page key of this value.
    pub gen: u64,
    /// The next page number to hand out.
    pub next_id: u32,
    /// Live entries (the sum of the pages' counts).
    pub len: u64,
    pub pages: VecDeque<SPage>,
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

/// Bytes an entry is counted for in its page.
pub fn entry_bytes(fields: &Fields) -> u64 {
    24 + fields.iter().map(|f| f.len() as u64 + 8).sum::<u64>()
}

pub(crate) fn damaged(what: &str) -> StoreError {
    StoreError::Corruption(format!("damaged paged stream: {what}"))
}

impl PageIndex {
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
        out.reserve(HEAD_LEN + ix.pages.len() * PAGE_LEN);
        out.push(VERSION);
        out.extend_from_slice(&ix.gen.to_le_bytes());
        out.extend_from_slice(&ix.next_id.to_le_bytes());
        out.extend_from_slice(&ix.len.to_le_bytes());
        out.extend_from_slice(&(ix.pages.len() as u32).to_le_bytes());
        for p in &ix.pages {
            out.extend_from_slice(&p.id.to_le_bytes());
            id_(out, p.first);
            id_(out, p.last);
            out.extend_from_slice(&p.count.to_le_bytes());
            out.extend_from_slice(&p.bytes.to_le_bytes());
        }
        codec::encode(&self.meta, out);
    }

    pub fn decode(p: &[u8]) -> Result<Self, StoreError> {
        if p.len() < HEAD_LEN || p[0] != VERSION {
            return Err(damaged("short manifest or unknown version"));
        }
        let u32_at = |i: usize| u32::from_le_bytes(p[i..i + 4].try_into().expect("4 bytes"));
        let u64_at = |i: usize| u64::from_le_bytes(p[i..i + 8].try_into().expect("8 bytes"));
        let id_at = |i: usize| StreamId::new(u64_at(i), u64_at(i + 8));
        let n = u32_at(21) as usize;
        if (p.len() - HEAD_LEN) / PAGE_LEN < n {
            return Err(damaged("manifest length"));
        }
        let mut idx = PageIndex {
            gen: u64_at(1),
            next_id: u32_at(9),
            len: u64_at(13),
            pages: VecDeque::with_capacity(n),
        };
        let mut total = 0u64;
        let mut prev: Option<StreamId> = None;
        for i in 0..n {
            let at = HEAD_LEN + i * PAGE_LEN;
            let pg = SPage {
                id: u32_at(at),
                first: id_at(at + 4),
                last: id_at(at + 20),
                count: u32_at(at + 36),
                bytes: u64_at(at + 40),
            };
            if pg.count == 0 || pg.first > pg.last || prev.is_some_and(|l| l >= pg.first) {
                return Err(damaged("page range"));
            }
            prev = Some(pg.last);
            total += u64::from(pg.count);
            idx.pages.push_back(pg);
        }
        if total != idx.len {
            return Err(damaged("entry count"));
        }
        let meta = codec::decode(&p[HEAD_LEN + n * PAGE_LEN..]).map_err(damaged)?;
        if !meta.entries.is_empty() {
            return Err(damaged("entries in the manifest"));
        }
        Ok(PagedStream { idx, meta })
    }
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
            idx: PageIndex {
                gen: 77,
                next_id: 2,
                len: 6,
                pages,
            },
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
}
