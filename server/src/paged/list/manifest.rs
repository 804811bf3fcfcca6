//! The manifest of a paged list (its segments and counts), its encoding and the index lookup
//! over it: everything that needs no page.

use super::super::page_key;
use crate::paged::parts::{Layout, IN_PARTS, PART_MAX};
use kvtier_core::{LinkedCommit, LinkedWrite, StoreError};
use std::collections::VecDeque;

/// One segment: page `id` holds `count` consecutive elements taking `bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seg {
    pub id: u32,
    pub count: u32,
    pub bytes: u64,
}

impl Seg {
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.to_le_bytes());
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&self.bytes.to_le_bytes());
    }
}

/// The manifest of a paged list, stored under the list's key. A long one's table is stored in
/// parts (see `parts`); in memory it is one table either way.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PagedList {
    /// Generation: the prefix of every page key of this value.
    pub gen: u64,
    /// The next page number to hand out.
    pub next_id: u32,
    /// Number of elements (the sum of the segments' counts).
    pub len: u64,
    /// The segments in list order; none is empty.
    segs: VecDeque<Seg>,
    /// How the table is stored.
    layout: Layout,
}

/// Bytes an element is counted for beyond its own.
const ELEM_OVERHEAD: u64 = 8;
/// Encoded size of the manifest's fixed part and of one segment.
const HEAD_LEN: usize = 8 + 4 + 8 + 4;
pub(super) const SEG_LEN: usize = 4 + 4 + 8;

/// Counted size of one element.
pub fn elem_bytes(e: &[u8]) -> u64 {
    e.len() as u64 + ELEM_OVERHEAD
}

pub(super) fn damaged(what: &str) -> StoreError {
    StoreError::Corruption(format!("damaged paged list: {what}"))
}

impl PagedList {
    /// A manifest of `segs`.
    pub fn new(gen: u64, next_id: u32, segs: VecDeque<Seg>) -> Self {
        let mut m = PagedList {
            gen,
            next_id,
            len: segs.iter().map(|s| u64::from(s.count)).sum(),
            segs,
            layout: Layout::new(PART_MAX),
        };
        m.layout.reshape(m.segs.len());
        m
    }

    /// The segments in list order.
    pub fn segs(&self) -> &VecDeque<Seg> {
        &self.segs
    }

    /// Segment `i` for changing its count or bytes.
    pub fn seg_mut(&mut self, i: usize) -> &mut Seg {
        self.layout.changed(self.segs.len(), i);
        &mut self.segs[i]
    }

    /// Inserts segment `s` at position `at` (`0..=segs.len()`).
    pub fn insert_seg(&mut self, at: usize, s: Seg) {
        self.layout.inserted(self.segs.len(), at);
        self.segs.insert(at, s);
    }

    /// Removes the segment at `at`.
    pub fn remove_seg(&mut self, at: usize) -> Option<Seg> {
        if at >= self.segs.len() {
            return None;
        }
        self.layout.removed(self.segs.len(), at);
        self.segs.remove(at)
    }

    /// Whether the table is stored in parts.
    #[cfg(test)]
    pub fn in_parts(&self) -> bool {
        self.layout.in_parts()
    }

    /// Whether the layout is the one for this table, every part within bounds (tests).
    #[cfg(test)]
    pub fn layout_is_sound(&self) -> bool {
        self.layout.is_sound(self.segs.len())
    }

    /// Every part record number in use (to delete them with the value).
    pub fn part_ids(&self) -> Vec<u32> {
        self.layout.part_ids()
    }

    /// The part records a save of this manifest writes beside its own (see
    /// [`kvtier_core::CacheValue::linked_writes`]).
    pub fn linked_writes(&self, out: &mut Vec<LinkedWrite>) -> Option<LinkedCommit> {
        let encode = |at: usize, n: usize, out: &mut Vec<u8>| {
            out.reserve(n * SEG_LEN);
            for s in self.segs.range(at..at + n) {
                s.encode(out);
            }
        };
        self.layout.writes(self.gen, encode, out)
    }

    /// Every page number in use (to delete the pages with the value).
    pub fn page_ids(&self) -> Vec<u32> {
        self.segs.iter().map(|s| s.id).collect()
    }

    /// The key of the page of segment `seg`.
    pub fn seg_key(&self, seg: usize) -> super::super::PageKey {
        page_key(self.gen, self.segs[seg].id)
    }

    /// Memory the manifest takes.
    pub fn mem_size(&self) -> usize {
        // (The layout: 8 bytes a part of hundreds of segments.)
        std::mem::size_of::<Self>() + self.segs.capacity() * std::mem::size_of::<Seg>()
    }

    /// A page number no segment uses.
    pub(super) fn alloc_id(&mut self) -> u32 {
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

    /// The manifest's own record: the head, then every segment, or (stored in parts) the parts'
    /// numbers and sizes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.gen.to_le_bytes());
        out.extend_from_slice(&self.next_id.to_le_bytes());
        out.extend_from_slice(&self.len.to_le_bytes());
        if self.layout.in_parts() {
            out.extend_from_slice(&IN_PARTS.to_le_bytes());
            self.layout.encode(out);
        } else {
            out.reserve(self.segs.len() * SEG_LEN + 4);
            out.extend_from_slice(&(self.segs.len() as u32).to_le_bytes());
            for s in &self.segs {
                s.encode(out);
            }
        }
    }

    /// A manifest from its record. One stored in parts comes back without its segments until
    /// [`PagedList::link`] is given the part records ([`PagedList::linked_keys`]).
    pub fn decode(p: &[u8]) -> Result<Self, StoreError> {
        if p.len() < HEAD_LEN {
            return Err(damaged("short manifest"));
        }
        let n = u32_at(p, 20);
        let mut m = PagedList {
            gen: u64_at(p, 0),
            next_id: u32_at(p, 8),
            len: u64_at(p, 12),
            ..PagedList::default()
        };
        if m.len == 0 {
            return Err(damaged("element count"));
        }
        if n == IN_PARTS {
            let (layout, used) = Layout::decode(&p[HEAD_LEN..], PART_MAX)?;
            if HEAD_LEN + used != p.len() {
                return Err(damaged("manifest length"));
            }
            m.layout = layout;
            return Ok(m);
        }
        let n = n as usize;
        if p.len() != HEAD_LEN + n * SEG_LEN {
            return Err(damaged("manifest length"));
        }
        m.segs = decode_segs(&p[HEAD_LEN..], n)?;
        m.check_len()?;
        Ok(m)
    }

    /// The keys of the part records a manifest read in parts still needs (none once linked).
    pub fn linked_keys(&self) -> Vec<Vec<u8>> {
        self.layout.linked_keys(self.gen, !self.segs.is_empty())
    }

    /// Completes a manifest read in parts with its part records' bytes, in order.
    pub fn link(&mut self, parts: Vec<Option<Vec<u8>>>) -> Result<(), StoreError> {
        let segs = self.layout.link(parts, SEG_LEN, |e| {
            let s = Seg {
                id: u32_at(e, 0),
                count: u32_at(e, 4),
                bytes: u64_at(e, 8),
            };
            if s.count == 0 {
                return Err(damaged("empty segment"));
            }
            Ok(s)
        })?;
        self.segs = segs.into();
        self.check_len()
    }

    fn check_len(&self) -> Result<(), StoreError> {
        let total: u64 = self.segs.iter().map(|s| u64::from(s.count)).sum();
        if total != self.len || self.len == 0 {
            return Err(damaged("element count"));
        }
        Ok(())
    }
}

fn u32_at(p: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(p[i..i + 4].try_into().expect("4 bytes"))
}

fn u64_at(p: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(p[i..i + 8].try_into().expect("8 bytes"))
}

/// `n` segments from `p` (exactly `n * SEG_LEN` bytes, checked by the caller).
fn decode_segs(p: &[u8], n: usize) -> Result<VecDeque<Seg>, StoreError> {
    let mut segs = VecDeque::with_capacity(n);
    for i in 0..n {
        let at = i * SEG_LEN;
        let s = Seg {
            id: u32_at(p, at),
            count: u32_at(p, at + 4),
            bytes: u64_at(p, at + 8),
        };
        if s.count == 0 {
            return Err(damaged("empty segment"));
        }
        segs.push_back(s);
    }
    Ok(segs)
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
        PagedList::new(9, counts.len() as u32 * 3, segs)
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
        empty_seg.seg_mut(1).count = 0;
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
