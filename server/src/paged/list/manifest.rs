//! The manifest of a paged list (its segments and counts), its encoding and the index lookup
//! over it: everything that needs no page.

use super::super::page_key;
use kvtier_core::StoreError;
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

pub(super) fn damaged(what: &str) -> StoreError {
    StoreError::Corruption(format!("damaged paged list: {what}"))
}

impl PagedList {
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
