//! The packed form of a small sorted set: every (score, member) pair in one buffer, in order, as
//! Redis's listpack. A set of ten short members costs one allocation of about twenty bytes a
//! member instead of a 32-byte slot plus an allocation per member.
//!
//! An element is `[score: f64 LE][member length: u8][member][member length: u8]`: the length
//! at both ends lets the set be walked from either end. Members are at most
//! [`PACKED_MEMBER_MAX`] bytes, so one byte holds the length. Lookups walk the buffer, which is
//! why the form is kept to a small number of members (see `RUN_MAX`).

use super::Score;
use std::cmp::Ordering;

/// The longest member the packed form holds (Redis's `zset-max-listpack-value`).
pub const PACKED_MEMBER_MAX: usize = 64;

/// Bytes an element takes beyond its member.
const ELEM_OVERHEAD: usize = 8 + 2;

#[derive(Debug, Clone, Default)]
pub struct Packed {
    buf: Vec<u8>,
    len: u32,
}

/// The element starting at `off`, and where the next one starts.
fn elem_at(buf: &[u8], off: usize) -> ((&[u8], f64), usize) {
    let score = f64::from_le_bytes(buf[off..off + 8].try_into().expect("8 bytes"));
    let n = usize::from(buf[off + 8]);
    let member = &buf[off + 9..off + 9 + n];
    ((member, score), off + n + ELEM_OVERHEAD)
}

/// The element ending at `end`, and where it starts.
fn elem_before(buf: &[u8], end: usize) -> ((&[u8], f64), usize) {
    let n = usize::from(buf[end - 1]);
    let start = end - n - ELEM_OVERHEAD;
    (elem_at(buf, start).0, start)
}

/// Appends the element (`score`, `member`) in the packed format.
fn put_elem(buf: &mut Vec<u8>, member: &[u8], score: f64) {
    buf.extend_from_slice(&score.to_le_bytes());
    buf.push(member.len() as u8);
    buf.extend_from_slice(member);
    buf.push(member.len() as u8);
}

/// (score, member) order, as the sorted set orders its elements.
fn cmp(a: (&[u8], f64), score: f64, member: &[u8]) -> Ordering {
    (Score(a.1), a.0).cmp(&(Score(score), member))
}

impl Packed {
    /// Whether a member can be held in this form.
    pub fn fits(member: &[u8]) -> bool {
        member.len() <= PACKED_MEMBER_MAX
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn iter(&self) -> PackedIter<'_> {
        PackedIter {
            buf: &self.buf,
            front: 0,
            back: self.buf.len(),
            left: self.len(),
        }
    }

    /// Element `i` in order.
    pub fn get(&self, i: usize) -> Option<(&[u8], f64)> {
        self.iter().nth(i)
    }

    /// The score of `member`.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.iter().find(|e| e.0 == member).map(|e| e.1)
    }

    /// How many elements sort before (`score`, `member`).
    pub fn rank_of(&self, score: f64, member: &[u8]) -> usize {
        self.iter()
            .take_while(|&e| cmp(e, score, member) == Ordering::Less)
            .count()
    }

    /// The rank and byte offset of (`score`, `member`), or where it would go.
    fn search(&self, score: f64, member: &[u8]) -> Result<(usize, usize), (usize, usize)> {
        let mut off = 0;
        for i in 0..self.len() {
            let (e, next) = elem_at(&self.buf, off);
            match cmp(e, score, member) {
                Ordering::Less => off = next,
                Ordering::Equal => return Ok((i, off)),
                Ordering::Greater => return Err((i, off)),
            }
        }
        Err((self.len(), off))
    }

    /// The rank of `member` with `score`, if it is there so.
    pub fn rank_scored(&self, member: &[u8], score: f64) -> Option<usize> {
        self.search(score, member).ok().map(|(i, _)| i)
    }

    /// Inserts an element that is not in the set (the caller checked), in order. The buffer
    /// grows by exactly the element: a small set's buffer is most of its memory.
    pub fn insert_absent(&mut self, member: &[u8], score: f64) {
        debug_assert!(Self::fits(member));
        let at = match self.search(score, member) {
            Ok((_, off)) | Err((_, off)) => off,
        };
        let mut e = Vec::with_capacity(member.len() + ELEM_OVERHEAD);
        put_elem(&mut e, member, score);
        self.buf.reserve_exact(e.len());
        self.buf.splice(at..at, e);
        self.len += 1;
    }

    /// Appends an element that sorts after every other (a record lists its elements in
    /// order); `false` (nothing done) when it does not.
    pub fn push_sorted(&mut self, member: &[u8], score: f64) -> bool {
        let after = self
            .iter()
            .next_back()
            .is_none_or(|last| cmp(last, score, member) == Ordering::Less);
        if !after || !Self::fits(member) {
            return false;
        }
        self.buf.reserve_exact(member.len() + ELEM_OVERHEAD);
        put_elem(&mut self.buf, member, score);
        self.len += 1;
        true
    }

    /// Removes the element at byte offset `off`; returns its score.
    fn remove_at(&mut self, off: usize) -> f64 {
        let ((_, score), next) = elem_at(&self.buf, off);
        self.buf.drain(off..next);
        self.len -= 1;
        score
    }

    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let mut off = 0;
        for _ in 0..self.len() {
            let ((m, _), next) = elem_at(&self.buf, off);
            if m == member {
                return Some(self.remove_at(off));
            }
            off = next;
        }
        None
    }

    /// Removes `member` if it is there with `score`.
    pub fn remove_scored(&mut self, member: &[u8], score: f64) -> bool {
        match self.search(score, member) {
            Ok((_, off)) => {
                self.remove_at(off);
                true
            }
            Err(_) => false,
        }
    }

    /// Removes the first (or, with `max`, the last) element.
    pub fn pop(&mut self, max: bool) -> Option<(Vec<u8>, f64)> {
        if self.len == 0 {
            return None;
        }
        let (e, start) = if max {
            elem_before(&self.buf, self.buf.len())
        } else {
            (elem_at(&self.buf, 0).0, 0)
        };
        let member = e.0.to_vec();
        let score = self.remove_at(start);
        Some((member, score))
    }

    /// Heap bytes the set holds.
    pub fn mem_size(&self) -> usize {
        self.buf.capacity()
    }
}

/// The elements of a packed set in order, from either end.
#[derive(Clone)]
pub struct PackedIter<'a> {
    buf: &'a [u8],
    front: usize,
    back: usize,
    left: usize,
}

impl<'a> Iterator for PackedIter<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let (e, next) = elem_at(self.buf, self.front);
        self.front = next;
        self.left -= 1;
        Some(e)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl DoubleEndedIterator for PackedIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let (e, start) = elem_before(self.buf, self.back);
        self.back = start;
        self.left -= 1;
        Some(e)
    }
}

impl ExactSizeIterator for PackedIter<'_> {}
