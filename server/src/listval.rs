//! A list value in one of two forms (the choice is invisible to commands):
//! - **packed**: the elements in order in one buffer, each as its length in one byte, its
//!   bytes and its length again (so the tail can be walked backwards), as Redis's listpack. A
//!   list (or a page of a paged list) of at most [`PACKED_BYTES`] framed bytes whose elements
//!   are at most [`PACKED_ELEM_MAX`] bytes costs one allocation and two bytes per element
//!   instead of a 24-byte slot each. A push or pop at the head moves the buffer (at most
//!   8 kB), and an index is found by walking from the nearer end, as in a Redis quicklist node.
//! - **deque**: a `VecDeque` of elements, for lists past those bounds (and pages holding a
//!   long element).
//!
//! A list changes form when it crosses the bounds. Bulk changes (LREM, page merges and
//! splits) run on the deque form and pack the result again when it fits.

use std::collections::VecDeque;

/// Most framed bytes a packed list holds: the size of a Redis quicklist node under the default
/// `list-max-listpack-size -2`, and of a page under the default `page-bytes`, so the pages of
/// a long list of short elements are packed (a page counts each element as its bytes plus 8,
/// more than its two frame bytes).
const PACKED_BYTES: usize = 8 * 1024;
/// Longest element a packed list holds (its length fits the one-byte frame).
const PACKED_ELEM_MAX: usize = 255;

/// The deque form, also the type of a paged list's pages.
pub type Deque = VecDeque<Elem>;

/// An element of the deque form: up to 16 bytes inline, so a list of short elements (ids,
/// small tokens) costs its 24-byte slot and no allocation per element.
pub type Elem = crate::value::StrBuf;

#[derive(Clone, Debug)]
enum Repr {
    Packed {
        buf: Vec<u8>,
        len: u32,
    },
    /// Boxed: keeps the enum at the packed form's 32 bytes (the allocation every small list
    /// carries).
    Deque(Box<Deque>),
}

#[derive(Clone, Debug)]
pub struct List(Repr);

impl Default for List {
    fn default() -> Self {
        List(Repr::Packed {
            buf: Vec::new(),
            len: 0,
        })
    }
}

impl PartialEq for List {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

fn packs(v: &[u8]) -> bool {
    v.len() <= PACKED_ELEM_MAX
}

/// Whether a packed buffer of `used` bytes has room for `v` framed.
fn room(used: usize, v: &[u8]) -> bool {
    packs(v) && used + v.len() + 2 <= PACKED_BYTES
}

/// Replaces the `old` bytes at `at` of a packed buffer with `v` framed, moving the rest of the
/// buffer once. Grown exactly (the allocator rounds up to its size class), not doubled: a
/// small list's buffer is most of its memory.
fn put_framed(buf: &mut Vec<u8>, at: usize, old: usize, v: &[u8]) {
    let new = v.len() + 2;
    let tail = at + old;
    if new > old {
        let grow = new - old;
        buf.reserve_exact(grow);
        let end = buf.len();
        buf.resize(end + grow, 0);
        buf.copy_within(tail..end, tail + grow);
    } else if new < old {
        buf.copy_within(tail.., at + new);
        buf.truncate(buf.len() - (old - new));
    }
    buf[at] = v.len() as u8;
    buf[at + 1..at + new - 1].copy_from_slice(v);
    buf[at + new - 1] = v.len() as u8;
}

/// Byte offset of element `i` (`0..=len`) in a packed buffer of `len` elements, walked from
/// the nearer end.
fn offset(buf: &[u8], len: usize, i: usize) -> usize {
    if i <= len / 2 {
        let mut at = 0;
        for _ in 0..i {
            at += usize::from(buf[at]) + 2;
        }
        at
    } else {
        let mut end = buf.len();
        for _ in i..len {
            end -= usize::from(buf[end - 1]) + 2;
        }
        end
    }
}

impl List {
    /// A list holding `d`'s elements: packed when they fit.
    pub fn from_deque(d: Deque) -> Self {
        let mut l = List(Repr::Deque(Box::new(d)));
        l.pack_if_fits();
        l
    }

    /// Turns a deque that fits the packed bounds into the packed form.
    fn pack_if_fits(&mut self) {
        let Repr::Deque(d) = &self.0 else {
            return;
        };
        // Every element takes at least its two frame bytes: a long deque cannot fit.
        if d.len() * 2 > PACKED_BYTES || !d.iter().all(|e| packs(e)) {
            return;
        }
        let bytes: usize = d.iter().map(|e| e.len() + 2).sum();
        if bytes > PACKED_BYTES {
            return;
        }
        let mut buf = Vec::with_capacity(bytes);
        for e in d.iter() {
            let end = buf.len();
            put_framed(&mut buf, end, 0, e);
        }
        let len = d.len() as u32;
        self.0 = Repr::Packed { buf, len };
    }

    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Packed { len, .. } => *len as usize,
            Repr::Deque(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The deque form for changing it (a packed list is unpacked, and stays so).
    fn deque_mut(&mut self) -> &mut Deque {
        if let Repr::Packed { .. } = self.0 {
            let d: Deque = self.iter().map(Elem::from_slice).collect();
            self.0 = Repr::Deque(Box::new(d));
        }
        match &mut self.0 {
            Repr::Deque(d) => d,
            Repr::Packed { .. } => unreachable!("unpacked above"),
        }
    }

    /// Runs `f` on the deque form, then packs the list if it fits (for bulk changes: LREM,
    /// merging and splitting pages).
    pub fn with_deque<T>(&mut self, f: impl FnOnce(&mut Deque) -> T) -> T {
        let out = f(self.deque_mut());
        self.pack_if_fits();
        out
    }

    /// The elements as a deque (the list is used up).
    pub fn into_deque(self) -> Deque {
        match self.0 {
            Repr::Deque(d) => *d,
            Repr::Packed { .. } => self.iter().map(Elem::from_slice).collect(),
        }
    }

    pub fn push_back(&mut self, v: Vec<u8>) {
        match &mut self.0 {
            Repr::Packed { buf, len } if room(buf.len(), &v) => {
                let end = buf.len();
                put_framed(buf, end, 0, &v);
                *len += 1;
            }
            _ => self.deque_mut().push_back(v.into()),
        }
    }

    pub fn push_front(&mut self, v: Vec<u8>) {
        match &mut self.0 {
            Repr::Packed { buf, len } if room(buf.len(), &v) => {
                put_framed(buf, 0, 0, &v);
                *len += 1;
            }
            _ => self.deque_mut().push_front(v.into()),
        }
    }

    pub fn pop_back(&mut self) -> Option<Vec<u8>> {
        match &mut self.0 {
            Repr::Packed { buf, len } => {
                let n = usize::from(*buf.last()?);
                let end = buf.len() - 1;
                let v = buf[end - n..end].to_vec();
                buf.truncate(end - n - 1);
                *len -= 1;
                Some(v)
            }
            Repr::Deque(d) => d.pop_back().map(Elem::into_vec),
        }
    }

    pub fn pop_front(&mut self) -> Option<Vec<u8>> {
        match &mut self.0 {
            Repr::Packed { buf, len } => {
                let n = usize::from(*buf.first()?);
                let v = buf[1..1 + n].to_vec();
                buf.drain(..n + 2);
                *len -= 1;
                Some(v)
            }
            Repr::Deque(d) => d.pop_front().map(Elem::into_vec),
        }
    }

    /// Element `i` (a walk from the nearer end when packed).
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        match &self.0 {
            Repr::Packed { buf, len } => {
                if i >= *len as usize {
                    return None;
                }
                let at = offset(buf, *len as usize, i);
                Some(&buf[at + 1..at + 1 + usize::from(buf[at])])
            }
            Repr::Deque(d) => d.get(i).map(Elem::as_slice),
        }
    }

    /// Replaces element `i` (inside the list).
    pub fn set(&mut self, i: usize, v: Vec<u8>) {
        if let Repr::Packed { buf, len } = &mut self.0 {
            let at = offset(buf, *len as usize, i);
            let old = usize::from(buf[at]) + 2;
            if room(buf.len() - old, &v) {
                put_framed(buf, at, old, &v);
                return;
            }
        }
        self.deque_mut()[i] = v.into();
    }

    /// Inserts `v` so that it becomes element `i` (`0..=len`).
    pub fn insert(&mut self, i: usize, v: Vec<u8>) {
        if let Repr::Packed { buf, len } = &mut self.0 {
            if room(buf.len(), &v) {
                let at = offset(buf, *len as usize, i);
                put_framed(buf, at, 0, &v);
                *len += 1;
                return;
            }
        }
        self.deque_mut().insert(i, v.into());
    }

    /// Keeps elements `start..=end` (inside the list).
    pub fn trim(&mut self, start: usize, end: usize) {
        let n = self.len();
        match &mut self.0 {
            Repr::Packed { buf, len } => {
                let (a, b) = (offset(buf, n, start), offset(buf, n, end + 1));
                buf.truncate(b);
                buf.drain(..a);
                *len = (end + 1 - start) as u32;
            }
            Repr::Deque(d) => {
                d.truncate(end + 1);
                d.drain(..start);
            }
        }
    }

    /// Gives back the room a buffer grew into (a page that is done growing).
    pub fn shrink_to_fit(&mut self) {
        match &mut self.0 {
            Repr::Packed { buf, .. } => buf.shrink_to_fit(),
            Repr::Deque(d) => d.shrink_to_fit(),
        }
    }

    /// The elements in order, from either end.
    pub fn iter(&self) -> Iter<'_> {
        match &self.0 {
            Repr::Packed { buf, len } => Iter::Packed {
                buf,
                left: *len as usize,
            },
            Repr::Deque(d) => Iter::Deque(d.iter()),
        }
    }

    /// Bytes the list takes beyond its own struct (approximate for a deque).
    pub fn mem_size(&self) -> usize {
        const SLOT: usize = std::mem::size_of::<Elem>();
        match &self.0 {
            Repr::Packed { buf, .. } => buf.capacity(),
            // (An inline element's bytes are in its slot.)
            Repr::Deque(d) => d
                .iter()
                .map(|e| if e.spilled() { e.capacity() } else { 0 } + SLOT)
                .sum(),
        }
    }

    /// Whether the list is in packed form (tests).
    #[cfg(test)]
    fn is_packed(&self) -> bool {
        matches!(self.0, Repr::Packed { .. })
    }
}

impl FromIterator<Vec<u8>> for List {
    fn from_iter<T: IntoIterator<Item = Vec<u8>>>(iter: T) -> Self {
        let mut l = List::default();
        for e in iter {
            l.push_back(e);
        }
        l
    }
}

/// The elements of a list in order, from either end.
pub enum Iter<'a> {
    /// `buf` holds the `left` elements not yet taken from either end.
    Packed {
        buf: &'a [u8],
        left: usize,
    },
    Deque(std::collections::vec_deque::Iter<'a, Elem>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        match self {
            Iter::Packed { buf, left } => {
                if *left == 0 {
                    return None;
                }
                let n = usize::from(buf[0]);
                let v = &buf[1..1 + n];
                *buf = &buf[n + 2..];
                *left -= 1;
                Some(v)
            }
            Iter::Deque(d) => d.next().map(Elem::as_slice),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match self {
            Iter::Packed { left, .. } => *left,
            Iter::Deque(d) => d.len(),
        };
        (n, Some(n))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Packed { buf, left } => {
                if *left == 0 {
                    return None;
                }
                let end = buf.len() - 1;
                let n = usize::from(buf[end]);
                let v = &buf[end - n..end];
                *buf = &buf[..end - n - 1];
                *left -= 1;
                Some(v)
            }
            Iter::Deque(d) => d.next_back().map(Elem::as_slice),
        }
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    /// Both forms answer every operation as a deque does, through growth past the packed
    /// bounds (by bytes and by a long element), shrinking back, and changes in the middle.
    #[test]
    fn both_forms_agree_with_a_deque() {
        for seed in 0..40u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut l = List::default();
            let mut model: VecDeque<Vec<u8>> = VecDeque::new();
            let mut n = 0u32;
            let mut was_packed = 0;
            for _ in 0..3000 {
                n += 1;
                let long = rng.random_ratio(1, 500);
                let mut v = format!("e{n}").into_bytes();
                v.resize(if long { 256 } else { rng.random_range(0..40) }, b'x');
                match rng.random_range(0..16) {
                    0..=2 => {
                        l.push_back(v.clone());
                        model.push_back(v);
                    }
                    3..=5 => {
                        l.push_front(v.clone());
                        model.push_front(v);
                    }
                    6 | 7 => assert_eq!(l.pop_front(), model.pop_front()),
                    8 => assert_eq!(l.pop_back(), model.pop_back()),
                    9 if !model.is_empty() => {
                        let i = rng.random_range(0..model.len());
                        l.with_deque(|d| d.remove(i));
                        model.remove(i);
                    }
                    10 if !model.is_empty() => {
                        let i = rng.random_range(0..model.len());
                        l.set(i, v.clone());
                        model[i] = v;
                    }
                    11 => {
                        let i = rng.random_range(0..=model.len());
                        l.insert(i, v.clone());
                        model.insert(i, v);
                    }
                    12 if model.len() > 2 && rng.random_ratio(1, 8) => {
                        let s = rng.random_range(0..model.len());
                        let e = rng.random_range(s..model.len());
                        l.trim(s, e);
                        model.truncate(e + 1);
                        model.drain(..s);
                    }
                    _ => {
                        let i = rng.random_range(0..=model.len());
                        assert_eq!(l.get(i), model.get(i).map(Vec::as_slice));
                    }
                }
                assert_eq!(l.len(), model.len());
                was_packed += usize::from(l.is_packed());
            }
            assert!(l.iter().eq(model.iter().map(Vec::as_slice)), "seed {seed}");
            assert!(l.iter().rev().eq(model.iter().rev().map(Vec::as_slice)));
            assert_eq!(l.iter().len(), model.len());
            let as_deque: Deque = model.iter().map(|e| Elem::from_slice(e)).collect();
            assert_eq!(List::from_deque(as_deque.clone()), l);
            assert_eq!(l.clone().into_deque(), as_deque);
            assert!(was_packed > 0, "seed {seed} never used the packed form");
        }
    }

    #[test]
    fn a_list_is_packed_while_it_fits_the_bounds() {
        // 2,000 short elements (6 framed bytes each): 12 kB, packed up to 8 kB.
        let mut l = List::default();
        let mut packed = 0;
        for i in 0..2000u32 {
            l.push_back(format!("{i:04}").into_bytes());
            packed += usize::from(l.is_packed());
        }
        assert_eq!(packed, PACKED_BYTES / 6);
        // Two bytes per element beyond its own, not a 24-byte slot.
        let small: List = (0..1000u32)
            .map(|i| format!("{i:04}").into_bytes())
            .collect();
        assert!(small.is_packed() && small.mem_size() < 1000 * 8);
        // A bulk change packs the result again when it fits.
        l.with_deque(|d| d.truncate(100));
        assert!(l.is_packed() && l.get(99) == Some(&b"0099"[..]));
        // An element too long for the one-byte frame turns it into a deque, in any position.
        let mut long = l.clone();
        long.set(5, vec![b'v'; 256]);
        assert!(!long.is_packed() && long.get(5).map(<[u8]>::len) == Some(256));
        let mut long = l.clone();
        long.insert(50, vec![b'v'; 256]);
        assert!(!long.is_packed() && long.len() == 101);
        l.push_front(vec![b'v'; 255]);
        assert!(l.is_packed() && l.get(0).map(<[u8]>::len) == Some(255));
        assert!(List::from_deque(Deque::new()).is_packed());
    }
}
