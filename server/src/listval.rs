//! A list value in one of two forms (the choice is invisible to commands):
//! - **packed**: the elements in order in one buffer, each as its length in one byte, its
//!   bytes and its length again (so the tail can be walked backwards), as Redis's listpack. A
//!   small list (at most [`PACKED_MAX`] elements of at most [`PACKED_ELEM_MAX`] bytes) costs one
//!   allocation and two bytes per element instead of a 24-byte slot and an allocation each.
//!   Pushing or popping at the head moves the buffer (at most about 8 kB), as in a listpack.
//! - **deque**: a `VecDeque` of elements, for larger lists and every page of a paged list.
//!
//! A packed list becomes a deque when it outgrows the bounds. A change other than a push or a
//! pop (LSET, LINSERT, LREM, LTRIM) runs on the deque form and packs the result again when it
//! fits.

use std::collections::VecDeque;

/// Most elements a packed list holds.
const PACKED_MAX: usize = 128;
/// Longest element a packed list holds (its length fits the one-byte prefix and suffix).
const PACKED_ELEM_MAX: usize = 64;

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

/// One element as the packed form stores it.
fn framed(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() + 2);
    out.push(v.len() as u8);
    out.extend_from_slice(v);
    out.push(v.len() as u8);
    out
}

impl List {
    /// A list holding `d`'s elements: packed when they fit.
    pub fn from_deque(d: Deque) -> Self {
        if d.len() <= PACKED_MAX && d.iter().all(|e| packs(e)) {
            let mut buf = Vec::with_capacity(d.iter().map(|e| e.len() + 2).sum());
            for e in &d {
                buf.extend_from_slice(&framed(e));
            }
            List(Repr::Packed {
                buf,
                len: d.len() as u32,
            })
        } else {
            List(Repr::Deque(Box::new(d)))
        }
    }

    /// A list in deque form (a page of a paged list).
    pub fn deque(d: Deque) -> Self {
        List(Repr::Deque(Box::new(d)))
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
    pub fn deque_mut(&mut self) -> &mut Deque {
        if let Repr::Packed { .. } = self.0 {
            let d: Deque = self.iter().map(Elem::from_slice).collect();
            self.0 = Repr::Deque(Box::new(d));
        }
        match &mut self.0 {
            Repr::Deque(d) => d,
            Repr::Packed { .. } => unreachable!("unpacked above"),
        }
    }

    /// Runs `f` on the deque form, then packs the list again if it fits.
    pub fn with_deque<T>(&mut self, f: impl FnOnce(&mut Deque) -> T) -> T {
        let was_packed = matches!(self.0, Repr::Packed { .. });
        let out = f(self.deque_mut());
        if was_packed {
            let d = std::mem::take(self.deque_mut());
            *self = List::from_deque(d);
        }
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
            Repr::Packed { buf, len } if (*len as usize) < PACKED_MAX && packs(&v) => {
                // Grown exactly (the allocator rounds up to its size class), not doubled: a
                // small list's buffer is most of its memory.
                buf.reserve_exact(v.len() + 2);
                buf.push(v.len() as u8);
                buf.extend_from_slice(&v);
                buf.push(v.len() as u8);
                *len += 1;
            }
            _ => self.deque_mut().push_back(v.into()),
        }
    }

    pub fn push_front(&mut self, v: Vec<u8>) {
        match &mut self.0 {
            Repr::Packed { buf, len } if (*len as usize) < PACKED_MAX && packs(&v) => {
                buf.reserve_exact(v.len() + 2);
                buf.splice(0..0, framed(&v));
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
            Repr::Packed { len, .. } => {
                let len = *len as usize;
                if i >= len {
                    None
                } else if i < len / 2 {
                    self.iter().nth(i)
                } else {
                    self.iter().rev().nth(len - 1 - i)
                }
            }
            Repr::Deque(d) => d.get(i).map(Elem::as_slice),
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
    /// bounds (by count and by a long element) and changes made on the deque form.
    #[test]
    fn both_forms_agree_with_a_deque() {
        for seed in 0..40u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut l = List::default();
            let mut model: VecDeque<Vec<u8>> = VecDeque::new();
            let mut n = 0u32;
            for _ in 0..1500 {
                n += 1;
                let long = rng.random_ratio(1, 300);
                let mut v = format!("e{n}").into_bytes();
                v.resize(if long { 65 } else { rng.random_range(0..20) }, b'x');
                match rng.random_range(0..12) {
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
                    _ => {
                        let i = rng.random_range(0..=model.len());
                        assert_eq!(l.get(i), model.get(i).map(Vec::as_slice));
                    }
                }
                assert_eq!(l.len(), model.len());
            }
            assert!(l.iter().eq(model.iter().map(Vec::as_slice)), "seed {seed}");
            assert!(l.iter().rev().eq(model.iter().rev().map(Vec::as_slice)));
            assert_eq!(l.iter().len(), model.len());
            let as_deque: Deque = model.iter().map(|e| Elem::from_slice(e)).collect();
            assert_eq!(List::from_deque(as_deque.clone()), l);
            assert_eq!(l.clone().into_deque(), as_deque);
        }
    }

    #[test]
    fn a_small_list_is_packed_until_it_outgrows_the_bounds() {
        let mut l: List = (0..128u32).map(|i| i.to_string().into_bytes()).collect();
        assert!(l.is_packed());
        // A change on the deque form packs the result again when it fits.
        l.with_deque(|d| d[5] = Elem::from_slice(b"five"));
        assert!(l.is_packed() && l.get(5) == Some(&b"five"[..]));
        l.push_front(b"x".to_vec());
        assert!(!l.is_packed() && l.len() == 129);
        let mut long = List::default();
        long.push_back(vec![b'v'; 65]);
        assert!(!long.is_packed());
        assert!(!List::deque(Deque::new()).is_packed());
    }
}
