//! The manifest of a paged sorted set and its encoding.

use super::super::hash::{PagedHash, MANIFEST_LEN as INDEX_LEN};
use super::super::page_key;
use crate::paged::parts::{Layout, IN_PARTS};
use crate::zset::{Score, ScoreRange};
use kvtier_core::{LinkedCommit, LinkedWrite, StoreError};

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

impl ZSeg {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.to_le_bytes());
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&self.bytes.to_le_bytes());
        out.extend_from_slice(&self.last.0 .0.to_bits().to_le_bytes());
        out.extend_from_slice(&(self.last.1.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.last.1);
    }

    /// The segment at `*at` in `p`, moving `at` past it.
    fn decode(p: &[u8], at: &mut usize) -> Result<ZSeg, StoreError> {
        let u32_at = |i: usize| u32::from_le_bytes(p[i..i + 4].try_into().expect("4 bytes"));
        let u64_at = |i: usize| u64::from_le_bytes(p[i..i + 8].try_into().expect("8 bytes"));
        if p.len() - *at < SEG_FIXED {
            return Err(damaged("short segment"));
        }
        let i = *at;
        let (id, count, bytes) = (u32_at(i), u32_at(i + 4), u64_at(i + 8));
        let score = f64::from_bits(u64_at(i + 16));
        let mlen = u32_at(i + 24) as usize;
        *at += SEG_FIXED;
        if p.len() - *at < mlen {
            return Err(damaged("short segment member"));
        }
        let member = p[*at..*at + mlen].to_vec();
        *at += mlen;
        if count == 0 || id < SEG_BASE || score.is_nan() {
            return Err(damaged("segment"));
        }
        Ok(ZSeg {
            id,
            count,
            bytes,
            last: (Score(score), member),
        })
    }
}

/// The manifest of a paged sorted set, stored under the set's key. (`Default`: the empty
/// placeholder a write command leaves in the cache while it holds the manifest.) A long segment
/// table is stored in parts (`paged::parts`), so that a save writes the parts that changed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PagedZSet {
    /// Member -> score, partitioned by member hash exactly like a paged hash (its generation is
    /// the value's: see [`PagedZSet::gen`]). Its `len` is the number of members.
    pub index: PagedHash,
    /// The segments in (score, member) order; none is empty.
    segs: Vec<ZSeg>,
    /// The next segment page number to hand out (from [`SEG_BASE`] up).
    pub next_id: u32,
    /// How the segment table is stored.
    layout: Layout,
}

/// Layout version, the first byte of an encoded manifest. Bump it when the layout changes.
const VERSION: u8 = 1;
/// Fixed part: version, index manifest, next_id, segment count.
const HEAD_LEN: usize = 1 + INDEX_LEN + 4 + 4;
/// One segment without its last member's bytes: id, count, bytes, last score, member length.
const SEG_FIXED: usize = 4 + 4 + 8 + 8 + 4;
/// Segments a part of the table holds at most: about 8 kB with members of a dozen bytes (see
/// `paged::parts`).
const PART_SEGS: usize = 192;

pub(super) fn damaged(what: &str) -> StoreError {
    StoreError::Corruption(format!("damaged paged zset: {what}"))
}

impl PagedZSet {
    /// A manifest of `segs` over member index `index`.
    pub fn new(index: PagedHash, next_id: u32, segs: Vec<ZSeg>) -> Self {
        let mut m = PagedZSet {
            index,
            segs,
            next_id,
            layout: Layout::new(PART_SEGS),
        };
        m.layout.reshape(m.segs.len());
        m
    }

    /// The segments in (score, member) order.
    pub fn segs(&self) -> &[ZSeg] {
        &self.segs
    }

    /// Segment `i` for changing its count, bytes or last element.
    pub fn seg_mut(&mut self, i: usize) -> &mut ZSeg {
        self.layout.changed(self.segs.len(), i);
        &mut self.segs[i]
    }

    /// Inserts segment `s` at position `at`.
    pub fn insert_seg(&mut self, at: usize, s: ZSeg) {
        self.layout.inserted(self.segs.len(), at);
        self.segs.insert(at, s);
    }

    /// Removes the segment at `at`.
    pub fn remove_seg(&mut self, at: usize) -> ZSeg {
        self.layout.removed(self.segs.len(), at);
        self.segs.remove(at)
    }

    /// Every part record number in use (to delete them with the value).
    pub fn part_ids(&self) -> Vec<u32> {
        self.layout.part_ids()
    }

    /// Whether the segment table is stored in parts.
    #[cfg(test)]
    pub fn in_parts(&self) -> bool {
        self.layout.in_parts()
    }

    /// The part records a save of this manifest writes beside its own (see
    /// [`kvtier_core::CacheValue::linked_writes`]).
    pub fn linked_writes(&self, out: &mut Vec<LinkedWrite>) -> Option<LinkedCommit> {
        let encode = |at: usize, n: usize, out: &mut Vec<u8>| {
            for s in &self.segs[at..at + n] {
                s.encode(out);
            }
        };
        self.layout.writes(self.gen(), encode, out)
    }

    /// The keys of the part records a manifest read in parts still needs (none once linked).
    pub fn linked_keys(&self) -> Vec<Vec<u8>> {
        self.layout.linked_keys(self.gen(), !self.segs.is_empty())
    }

    /// Completes a manifest read in parts with its part records' bytes, in order.
    pub fn link(&mut self, parts: Vec<Option<Vec<u8>>>) -> Result<(), StoreError> {
        let segs = self.layout.link_with(parts, |p, n, out| {
            let mut at = 0;
            for _ in 0..n {
                out.push(ZSeg::decode(p, &mut at)?);
            }
            if at != p.len() {
                return Err(damaged("trailing bytes in a part"));
            }
            Ok(())
        })?;
        check_segs(&segs, self.index.len)?;
        self.segs = segs;
        Ok(())
    }

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
        out.push(VERSION);
        self.index.encode(out);
        out.extend_from_slice(&self.next_id.to_le_bytes());
        if self.layout.in_parts() {
            out.extend_from_slice(&IN_PARTS.to_le_bytes());
            self.layout.encode(out);
            return;
        }
        let members: usize = self.segs.iter().map(|s| s.last.1.len()).sum();
        out.reserve(4 + self.segs.len() * SEG_FIXED + members);
        out.extend_from_slice(&(self.segs.len() as u32).to_le_bytes());
        for s in &self.segs {
            s.encode(out);
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
        let next_id = u32_at(at);
        let n = u32_at(at + 4);
        at += 8;
        if n == IN_PARTS {
            let (layout, used) = Layout::decode(&p[at..], PART_SEGS)?;
            if at + used != p.len() {
                return Err(damaged("trailing bytes"));
            }
            if index.len == 0 {
                return Err(damaged("member count"));
            }
            return Ok(PagedZSet {
                index,
                segs: Vec::new(),
                next_id,
                layout,
            });
        }
        let n = n as usize;
        // Every segment takes at least SEG_FIXED bytes: reject counts the payload cannot hold.
        if n > (p.len() - at) / SEG_FIXED {
            return Err(damaged("segment count"));
        }
        let mut segs: Vec<ZSeg> = Vec::with_capacity(n);
        for _ in 0..n {
            segs.push(ZSeg::decode(p, &mut at)?);
        }
        if at != p.len() {
            return Err(damaged("trailing bytes"));
        }
        check_segs(&segs, index.len)?;
        Ok(PagedZSet::new(index, next_id, segs))
    }
}

/// Checks a segment table as read: last elements in strictly ascending order (the binary
/// searches rely on it) and counts adding up to the member count.
fn check_segs(segs: &[ZSeg], len: u64) -> Result<(), StoreError> {
    if segs.windows(2).any(|w| w[0].last >= w[1].last) {
        return Err(damaged("segments out of order"));
    }
    let total: u64 = segs.iter().map(|s| u64::from(s.count)).sum();
    if total != len || len == 0 {
        return Err(damaged("member count"));
    }
    Ok(())
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
        PagedZSet::new(
            PagedHash {
                gen: 77,
                level: 2,
                split: 1,
                len: counts.iter().map(|&c| u64::from(c)).sum(),
                bytes: 1234,
            },
            SEG_BASE + counts.len() as u32 * 2,
            segs,
        )
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
        bad.seg_mut(1).count = 0;
        bad.index.len = 3;
        assert!(PagedZSet::decode(&encoded(&bad)).is_err());
        // Segments out of order.
        let mut bad = manifest(&[3, 1]);
        let first = bad.remove_seg(0);
        bad.insert_seg(1, first);
        assert!(PagedZSet::decode(&encoded(&bad)).is_err());
        // A segment numbered like a member page.
        let mut bad = manifest(&[3, 1]);
        bad.seg_mut(0).id = 5;
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

    /// A long segment table is saved as parts beside the manifest and read back through them;
    /// a change to one segment writes one part; a part that is missing, cut or out of order
    /// fails the load.
    #[test]
    fn a_long_segment_table_round_trips_through_its_parts() {
        let mut m = manifest(&vec![3; 2000]);
        assert!(m.in_parts());
        let mut stored = std::collections::HashMap::new();
        let mut save = |m: &PagedZSet| {
            let mut writes = Vec::new();
            if let Some(done) = m.linked_writes(&mut writes) {
                done();
            }
            for w in &writes {
                stored.insert(w.key.clone(), w.put.clone().expect("a put").1);
            }
            (writes.len(), stored.clone())
        };
        save(&m);
        m.seg_mut(1000).bytes += 1;
        let (written, stored) = save(&m);
        assert_eq!(written, 1);
        let out = encoded(&m);
        // (A hundredth of the table in one record.)
        assert!(
            out.len() * 100 < 2000 * SEG_FIXED,
            "the manifest's own record: {} bytes",
            out.len()
        );
        let back = PagedZSet::decode(&out).unwrap();
        let parts: Vec<Option<Vec<u8>>> = back
            .linked_keys()
            .iter()
            .map(|k| stored.get(k).cloned())
            .collect();
        let mut linked = back.clone();
        linked.link(parts.clone()).unwrap();
        assert_eq!(linked, m);
        assert!(linked.linked_keys().is_empty());
        let mut missing = parts.clone();
        missing[2] = None;
        assert!(back.clone().link(missing).is_err());
        let mut cut = parts.clone();
        cut[0].as_mut().unwrap().pop();
        assert!(back.clone().link(cut).is_err());
        let mut swapped = parts;
        swapped.swap(0, 1);
        assert!(back.clone().link(swapped).is_err());
    }
}
