//! The manifest of a paged sorted set and its encoding.

use super::super::hash::{PagedHash, MANIFEST_LEN as INDEX_LEN};
use super::super::page_key;
use crate::zset::{Score, ScoreRange};
use kvtier_core::StoreError;

/// The first page number of a segment. Member pages are numbered `0..2^level + split` with
/// `level <= 30` (below `2^31`), so the two kinds share a generation but never a number.
pub const SEG_BASE: u32 = 0x8000_0000;

/// One segment: page `id` holds `count` consecutive members (in (score, member) order) taking
/// `bytes`, the largest of which is `last`.
#[derive(Debug, Clone, PartialEq)]
pub struct ZSeg {
    pub id: u32,
    pub count: u32,
    pub bytes: u64,
    /// The segment's largest element: a key's segment is found by a binary search over these,
    /// without loading a page.
    pub last: (Score, Vec<u8>),
}

/// The manifest of a paged sorted set, stored under the set's key. (`Default`: the empty
/// placeholder a write command leaves in the cache while it holds the manifest.)
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PagedZSet {
    /// Member -> score, partitioned by member hash exactly like a paged hash (its generation is
    /// the value's: see [`PagedZSet::gen`]). Its `len` is the number of members.
    pub index: PagedHash,
    /// The segments in (score, member) order; none is empty.
    pub segs: Vec<ZSeg>,
    /// The next segment page number to hand out (from [`SEG_BASE`] up).
    pub next_id: u32,
}

/// Layout version, the first byte of an encoded manifest. Bump it when the layout changes.
const VERSION: u8 = 1;
/// Fixed part: version, index manifest, next_id, segment count.
const HEAD_LEN: usize = 1 + INDEX_LEN + 4 + 4;
/// One segment without its last member's bytes: id, count, bytes, last score, member length.
const SEG_FIXED: usize = 4 + 4 + 8 + 8 + 4;

pub(super) fn damaged(what: &str) -> StoreError {
    StoreError::Corruption(format!("damaged paged zset: {what}"))
}

impl PagedZSet {
    /// Generation: the prefix of every page key of this value (member and segment pages).
    pub fn gen(&self) -> u64 {
        self.index.gen
    }

    /// Number of members.
    pub fn len(&self) -> u64 {
        self.index.len
    }

    pub fn is_empty(&self) -> bool {
        self.index.len == 0
    }

    /// Every page number in use, member pages then segment pages (to delete the pages with the
    /// value).
    pub fn page_ids(&self) -> Vec<u32> {
        (0..self.index.page_count())
            .chain(self.segs.iter().map(|s| s.id))
            .collect()
    }

    /// The key of the page of segment `seg`.
    pub fn seg_key(&self, seg: usize) -> super::super::PageKey {
        page_key(self.gen(), self.segs[seg].id)
    }

    /// Memory the manifest takes.
    pub fn mem_size(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.segs.capacity() * std::mem::size_of::<ZSeg>()
            + self.segs.iter().map(|s| s.last.1.capacity()).sum::<usize>()
    }

    /// A segment page number no segment uses.
    pub(super) fn alloc_id(&mut self) -> u32 {
        if self.next_id < u32::MAX {
            self.next_id += 1;
            return self.next_id - 1;
        }
        // 2 billion segments later: take the lowest free number.
        let mut used: Vec<u32> = self.segs.iter().map(|s| s.id).collect();
        used.sort_unstable();
        let mut free = SEG_BASE;
        for id in used {
            if id != free {
                break;
            }
            free += 1;
        }
        free
    }

    /// The number of segments whose last element satisfies `below` (a predicate true on a
    /// prefix of the order): the segment at that position holds the first element that does
    /// not (or is the end).
    pub fn seg_partition(&self, below: impl Fn(f64, &[u8]) -> bool) -> usize {
        self.segs
            .partition_point(|s| below(s.last.0 .0, s.last.1.as_slice()))
    }

    /// The segment that holds (or would hold) element `(score, member)`: the first whose last
    /// element is not below it, or the last segment for a key above them all. `None` when
    /// there are no segments.
    pub fn seg_of(&self, score: f64, member: &[u8]) -> Option<usize> {
        let key = (Score(score), member);
        let i = self
            .segs
            .partition_point(|s| (s.last.0, s.last.1.as_slice()) < key);
        (!self.segs.is_empty()).then(|| i.min(self.segs.len() - 1))
    }

    /// The rank of the first element of segment `seg` (the elements of the earlier ones).
    /// Linear in the segments, which the manifest holds: no page is read.
    pub fn seg_start(&self, seg: usize) -> u64 {
        self.segs[..seg].iter().map(|s| u64::from(s.count)).sum()
    }

    /// The segment holding rank `rank` and the offset in it; `None` past the end.
    pub fn locate_rank(&self, rank: u64) -> Option<(usize, usize)> {
        let mut rest = rank;
        for (i, s) in self.segs.iter().enumerate() {
            let c = u64::from(s.count);
            if rest < c {
                return Some((i, rest as usize));
            }
            rest -= c;
        }
        None
    }

    /// The member page of `member`: the first page ZSCORE, ZADD, ZREM and ZRANK read (the
    /// segment comes from the score found there).
    pub fn member_page(&self, member: &[u8]) -> u32 {
        self.index.page_of(member)
    }

    /// The page number of the segment holding (or receiving) element `(score, member)`.
    pub fn seg_page_of(&self, score: f64, member: &[u8]) -> Option<u32> {
        self.seg_of(score, member).map(|i| self.segs[i].id)
    }

    /// The segment page numbers covering ascending ranks `lo..=hi` (clamped to the set), at
    /// most `max` of them from `lo` on: what `range_by_rank`, `pop` and `walk` read, for a
    /// planner that loads pages before the command runs.
    pub fn seg_pages_for_ranks(&self, lo: u64, hi: u64, max: usize) -> Vec<u32> {
        let Some((first, _)) = self.locate_rank(lo) else {
            return Vec::new();
        };
        let last = self
            .locate_rank(hi.min(self.len().saturating_sub(1)))
            .map_or(first, |(s, _)| s);
        (first..=last.max(first))
            .take(max)
            .map(|s| self.segs[s].id)
            .collect()
    }

    /// The positions of the segments where score range `r`'s two ends fall, from the manifest
    /// alone: `score_ranks` (ZCOUNT) reads at most these two pages, and a range by score reads
    /// pages from the first to the second. `None` for an empty range or set.
    pub fn score_span(&self, r: ScoreRange) -> Option<(usize, usize)> {
        if r.is_empty() || self.segs.is_empty() {
            return None;
        }
        let (min, max) = (r.min + 0.0, r.max + 0.0);
        let lo = if r.minex {
            self.seg_partition(|s, _| s <= min)
        } else {
            self.seg_partition(|s, _| s < min)
        };
        let hi = if r.maxex {
            self.seg_partition(|s, _| s < max)
        } else {
            self.seg_partition(|s, _| s <= max)
        };
        let last = self.segs.len() - 1;
        Some((lo.min(last), hi.min(last)))
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        let members: usize = self.segs.iter().map(|s| s.last.1.len()).sum();
        out.reserve(HEAD_LEN + self.segs.len() * SEG_FIXED + members);
        out.push(VERSION);
        self.index.encode(out);
        out.extend_from_slice(&self.next_id.to_le_bytes());
        out.extend_from_slice(&(self.segs.len() as u32).to_le_bytes());
        for s in &self.segs {
            out.extend_from_slice(&s.id.to_le_bytes());
            out.extend_from_slice(&s.count.to_le_bytes());
            out.extend_from_slice(&s.bytes.to_le_bytes());
            out.extend_from_slice(&s.last.0 .0.to_bits().to_le_bytes());
            out.extend_from_slice(&(s.last.1.len() as u32).to_le_bytes());
            out.extend_from_slice(&s.last.1);
        }
    }

    /// Decodes a manifest, checking what a damaged one would break: the layout, non-empty
    /// segments whose counts add up to the member count, segment numbers out of the member
    /// pages' range, and last elements in strictly ascending order (the binary searches rely
    /// on it).
    pub fn decode(p: &[u8]) -> Result<Self, StoreError> {
        if p.len() < HEAD_LEN {
            return Err(damaged("short manifest"));
        }
        if p[0] != VERSION {
            return Err(damaged("unknown manifest version"));
        }
        let index = PagedHash::decode(&p[1..1 + INDEX_LEN])?;
        let mut at = 1 + INDEX_LEN;
        let u32_at = |i: usize| u32::from_le_bytes(p[i..i + 4].try_into().expect("4 bytes"));
        let u64_at = |i: usize| u64::from_le_bytes(p[i..i + 8].try_into().expect("8 bytes"));
        let next_id = u32_at(at);
        let n = u32_at(at + 4) as usize;
        at += 8;
        // Every segment takes at least SEG_FIXED bytes: reject counts the payload cannot hold.
        if n > (p.len() - at) / SEG_FIXED {
            return Err(damaged("segment count"));
        }
        let mut segs: Vec<ZSeg> = Vec::with_capacity(n);
        let mut total = 0u64;
        for _ in 0..n {
            if p.len() - at < SEG_FIXED {
                return Err(damaged("short segment"));
            }
            let (id, count, bytes) = (u32_at(at), u32_at(at + 4), u64_at(at + 8));
            let score = f64::from_bits(u64_at(at + 16));
            let mlen = u32_at(at + 24) as usize;
            at += SEG_FIXED;
            if p.len() - at < mlen {
                return Err(damaged("short segment member"));
            }
            let member = p[at..at + mlen].to_vec();
            at += mlen;
            if count == 0 || id < SEG_BASE || score.is_nan() {
                return Err(damaged("segment"));
            }
            let last = (Score(score), member);
            if segs.last().is_some_and(|prev| prev.last >= last) {
                return Err(damaged("segments out of order"));
            }
            total += u64::from(count);
            segs.push(ZSeg {
                id,
                count,
                bytes,
                last,
            });
        }
        if at != p.len() {
            return Err(damaged("trailing bytes"));
        }
        if total != index.len || index.len == 0 {
            return Err(damaged("member count"));
        }
        Ok(PagedZSet {
            index,
            segs,
            next_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn manifest(counts: &[u32]) -> PagedZSet {
        let segs: Vec<ZSeg> = counts
            .iter()
            .enumerate()
            .map(|(i, &count)| ZSeg {
                id: SEG_BASE + i as u32 * 2,
                count,
                bytes: u64::from(count) * 30,
                last: (Score(i as f64), format!("m{i}").into_bytes()),
            })
            .collect();
        PagedZSet {
            index: PagedHash {
                gen: 77,
                level: 2,
                split: 1,
                len: counts.iter().map(|&c| u64::from(c)).sum(),
                bytes: 1234,
            },
            next_id: SEG_BASE + counts.len() as u32 * 2,
            segs,
        }
    }

    fn encoded(m: &PagedZSet) -> Vec<u8> {
        let mut out = Vec::new();
        m.encode(&mut out);
        out
    }

    #[test]
    fn manifest_round_trip_and_damage() {
        let m = manifest(&[3, 1, 7]);
        let out = encoded(&m);
        assert_eq!(PagedZSet::decode(&out).unwrap(), m);
        assert_eq!(m.gen(), 77);
        assert!(m.mem_size() >= std::mem::size_of::<PagedZSet>() + 3 * 2);
        // Every truncation is detected.
        for cut in 0..out.len() {
            assert!(PagedZSet::decode(&out[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = out.clone();
        longer.push(0);
        assert!(PagedZSet::decode(&longer).is_err());
        let mut bad = out.clone();
        bad[0] = 2; // a layout this build does not know
        assert!(PagedZSet::decode(&bad).is_err());
        // The member count no longer matches the segments.
        let mut bad = m.clone();
        bad.index.len += 1;
        assert!(PagedZSet::decode(&encoded(&bad)).is_err());
        // An empty segment.
        let mut bad = manifest(&[3, 1]);
        bad.segs[1].count = 0;
        bad.index.len = 3;
        assert!(PagedZSet::decode(&encoded(&bad)).is_err());
        // Segments out of order.
        let mut bad = manifest(&[3, 1]);
        bad.segs.swap(0, 1);
        assert!(PagedZSet::decode(&encoded(&bad)).is_err());
        // A segment numbered like a member page.
        let mut bad = manifest(&[3, 1]);
        bad.segs[0].id = 5;
        assert!(PagedZSet::decode(&encoded(&bad)).is_err());
        // A damaged index manifest.
        let mut bad = out.clone();
        bad[1 + 8] = 40; // level 40
        assert!(PagedZSet::decode(&bad).is_err());
    }

    #[test]
    fn page_numbers_of_members_and_segments_never_meet() {
        let mut m = manifest(&[1, 1]);
        let ids = m.page_ids();
        assert_eq!(ids.len(), 5 + 2);
        assert!(ids[..5].iter().all(|&i| i < SEG_BASE));
        assert!(ids[5..].iter().all(|&i| i >= SEG_BASE));
        m.next_id = u32::MAX;
        // SEG_BASE and SEG_BASE + 2 are taken: the first free one is SEG_BASE + 1.
        assert_eq!(m.alloc_id(), SEG_BASE + 1);
    }

    #[test]
    fn segments_are_found_by_their_last_elements() {
        let m = manifest(&[3, 1, 7, 2]);
        assert_eq!(m.seg_of(-5.0, b""), Some(0));
        assert_eq!(m.seg_of(0.0, b"m0"), Some(0));
        assert_eq!(m.seg_of(0.0, b"m1"), Some(1));
        assert_eq!(m.seg_of(3.0, b"m3"), Some(3));
        assert_eq!(m.seg_of(9.0, b""), Some(3));
        assert_eq!(manifest(&[]).seg_of(1.0, b""), None);
        assert_eq!(m.seg_page_of(0.0, b"m1"), Some(SEG_BASE + 2));
        assert_eq!(m.seg_partition(|s, _| s < 2.0), 2);
        assert_eq!(m.seg_start(2), 4);
        assert_eq!(m.locate_rank(4), Some((2, 0)));
        assert_eq!(m.locate_rank(12), Some((3, 1)));
        assert_eq!(m.locate_rank(13), None);
        let id = |i: u32| SEG_BASE + i * 2;
        assert_eq!(m.seg_pages_for_ranks(2, 5, 9), vec![id(0), id(1), id(2)]);
        assert_eq!(m.seg_pages_for_ranks(2, 99, 2), vec![id(0), id(1)]);
        assert_eq!(m.seg_pages_for_ranks(11, 99, 9), vec![id(3)]);
        assert!(m.seg_pages_for_ranks(13, 20, 9).is_empty());
        let r = |min, minex, max, maxex| ScoreRange {
            min,
            max,
            minex,
            maxex,
        };
        // Last elements: scores 0, 1, 2, 3 (members m0..m3).
        assert_eq!(m.score_span(r(1.0, false, 2.0, false)), Some((1, 3)));
        assert_eq!(m.score_span(r(1.0, true, 2.0, true)), Some((2, 2)));
        assert_eq!(m.score_span(r(-9.0, false, 99.0, false)), Some((0, 3)));
        assert_eq!(m.score_span(r(2.0, true, 1.0, false)), None);
    }
}
