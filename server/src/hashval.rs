//! A hash value in one of two forms (the choice is invisible to commands):
//! - **packed**: the fields and values in insertion order in one buffer, each preceded by its
//!   length in one byte, as Redis's listpack. A small hash (at most [`PACKED_MAX`] fields, none
//!   and no value longer than [`PACKED_VALUE_MAX`] bytes, Redis's defaults for
//!   `hash-max-listpack-entries` and `-value`) costs one allocation and a few bytes per field
//!   instead of a map slot, an index slot and two allocations; a lookup is a walk, which is why
//!   the form is kept small.
//! - **map**: an insertion-ordered hash map ([`PairMap`]: a field and its value in one
//!   allocation), for larger hashes and the pages of a paged value.
//!
//! A packed hash becomes a map when it outgrows the bounds; a map stays a map (as in Redis).
//! Either form keeps insertion order (HGETALL of a small hash lists fields as Redis's listpack
//! does); removing from a packed hash keeps the order of the rest.

use crate::pairmap::{self, PairMap};

/// Most fields a packed hash holds.
const PACKED_MAX: usize = 128;
/// Longest field or value a packed hash holds (its length fits the one-byte prefix).
const PACKED_VALUE_MAX: usize = 64;

type Map = PairMap;

#[derive(Clone, Debug)]
enum Repr {
    /// `len` (field, value) pairs, each part as a length byte and its bytes.
    Packed { buf: Vec<u8>, len: u32 },
    /// Boxed: the map's struct is 72 bytes, which every small hash would otherwise carry.
    Map(Box<Map>),
}

#[derive(Clone, Debug)]
pub struct Hash(Repr);

impl Default for Hash {
    fn default() -> Self {
        Hash::new()
    }
}

impl PartialEq for Hash {
    /// Equal when they hold the same fields with the same values, in any order.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(f, v)| other.get(f) == Some(v))
    }
}

/// The pairs of a packed buffer, in order.
#[derive(Clone)]
pub struct Packed<'a>(&'a [u8]);

impl<'a> Iterator for Packed<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let (f, rest) = take(self.0)?;
        let (v, rest) = take(rest)?;
        self.0 = rest;
        Some((f, v))
    }
}

/// One length-prefixed part and what follows it.
fn take(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&n, rest) = b.split_first()?;
    Some(rest.split_at(usize::from(n)))
}

/// The byte range of the pair whose field is `field`, if any.
fn find(buf: &[u8], field: &[u8]) -> Option<(std::ops::Range<usize>, std::ops::Range<usize>)> {
    let mut at = 0;
    while at < buf.len() {
        let flen = usize::from(buf[at]);
        let f = at + 1..at + 1 + flen;
        let vlen = usize::from(buf[f.end]);
        let v = f.end + 1..f.end + 1 + vlen;
        if &buf[f.clone()] == field {
            return Some((at..v.end, v));
        }
        at = v.end;
    }
    None
}

fn fits_packed(field: &[u8], value: &[u8]) -> bool {
    field.len() <= PACKED_VALUE_MAX && value.len() <= PACKED_VALUE_MAX
}

fn push_part(buf: &mut Vec<u8>, part: &[u8]) {
    buf.push(part.len() as u8);
    buf.extend_from_slice(part);
}

impl Hash {
    /// An empty hash (packed).
    pub fn new() -> Self {
        Hash(Repr::Packed {
            buf: Vec::new(),
            len: 0,
        })
    }

    /// An empty hash for about `n` fields: a map when they could not be packed anyway (a page
    /// of a paged value).
    pub fn with_capacity(n: usize) -> Self {
        if n > PACKED_MAX {
            Hash(Repr::Map(Box::new(Map::with_capacity(n))))
        } else {
            Hash::new()
        }
    }

    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Packed { len, .. } => *len as usize,
            Repr::Map(m) => m.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match &self.0 {
            Repr::Packed { buf, .. } => find(buf, field).map(|(_, v)| &buf[v]),
            Repr::Map(m) => m.get(field),
        }
    }

    pub fn contains_key(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Sets `field`; the previous value. A field already there keeps its place in the order.
    pub fn insert(&mut self, field: Vec<u8>, value: Vec<u8>) -> Option<Vec<u8>> {
        if let Repr::Packed { buf, len } = &mut self.0 {
            let old = find(buf, &field);
            let grows = old.is_none() && *len as usize >= PACKED_MAX;
            if fits_packed(&field, &value) && !grows {
                let Some((_, v)) = old else {
                    // Grown exactly (the allocator rounds up to its size class), not doubled:
                    // a small hash's buffer is most of its memory.
                    buf.reserve_exact(field.len() + value.len() + 2);
                    push_part(buf, &field);
                    push_part(buf, &value);
                    *len += 1;
                    return None;
                };
                let prev = buf[v.clone()].to_vec();
                let mut part = Vec::with_capacity(value.len() + 1);
                push_part(&mut part, &value);
                // The value's length byte and bytes are replaced in place.
                buf.splice(v.start - 1..v.end, part);
                return Some(prev);
            }
            self.unpack();
        }
        let Repr::Map(m) = &mut self.0 else {
            unreachable!("unpacked above");
        };
        m.insert(&field, &value)
    }

    /// Turns a packed hash into a map (same order).
    fn unpack(&mut self) {
        if let Repr::Packed { buf, len } = &self.0 {
            let mut m = Map::with_capacity(*len as usize + 1);
            for (f, v) in Packed(buf) {
                m.set(f, v);
            }
            self.0 = Repr::Map(Box::new(m));
        }
    }

    /// Removes `field`, keeping the order of the rest; its value.
    pub fn shift_remove(&mut self, field: &[u8]) -> Option<Vec<u8>> {
        match &mut self.0 {
            Repr::Packed { buf, len } => {
                let (pair, v) = find(buf, field)?;
                let prev = buf[v].to_vec();
                buf.drain(pair);
                *len -= 1;
                Some(prev)
            }
            Repr::Map(m) => m.shift_remove(field),
        }
    }

    /// Removes `field` in O(1) from a map (the last field takes its place); a packed hash
    /// keeps its order.
    pub fn swap_remove(&mut self, field: &[u8]) -> Option<Vec<u8>> {
        match &mut self.0 {
            Repr::Packed { .. } => self.shift_remove(field),
            Repr::Map(m) => m.swap_remove(field),
        }
    }

    /// The fields and values in order.
    pub fn iter(&self) -> Iter<'_> {
        let parts = match &self.0 {
            Repr::Packed { buf, .. } => Parts::Packed(Packed(buf)),
            Repr::Map(m) => Parts::Map(m.iter()),
        };
        Iter::new(parts, self.len())
    }

    pub fn keys(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        self.iter().map(|(f, _)| f)
    }

    pub fn values(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        self.iter().map(|(_, v)| v)
    }

    /// The pair at position `i` in the order (a walk when packed).
    pub fn get_index(&self, i: usize) -> Option<(&[u8], &[u8])> {
        match &self.0 {
            Repr::Packed { buf, .. } => Packed(buf).nth(i),
            Repr::Map(m) => m.get_index(i),
        }
    }

    /// Fields the hash has room for without growing (tests).
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        match &self.0 {
            Repr::Packed { len, .. } => *len as usize,
            Repr::Map(m) => m.capacity(),
        }
    }

    pub fn shrink_to_fit(&mut self) {
        match &mut self.0 {
            Repr::Packed { buf, .. } => buf.shrink_to_fit(),
            Repr::Map(m) => m.shrink_to_fit(),
        }
    }

    /// Bytes the hash takes beyond its own struct (approximate for a map).
    pub fn mem_size(&self) -> usize {
        match &self.0 {
            Repr::Packed { buf, .. } => buf.capacity(),
            Repr::Map(m) => m.mem_size(),
        }
    }

    /// Whether the hash is in packed form (tests).
    #[cfg(test)]
    fn is_packed(&self) -> bool {
        matches!(self.0, Repr::Packed { .. })
    }
}

impl FromIterator<(Vec<u8>, Vec<u8>)> for Hash {
    fn from_iter<T: IntoIterator<Item = (Vec<u8>, Vec<u8>)>>(iter: T) -> Self {
        let mut h = Hash::new();
        for (f, v) in iter {
            h.insert(f, v);
        }
        h
    }
}

/// The fields and values of a hash, in order.
pub type Iter<'a> = crate::counted::Counted<Parts<'a>>;

/// The pairs of either form, uncounted.
#[derive(Clone)]
pub enum Parts<'a> {
    Packed(Packed<'a>),
    Map(pairmap::Iter<'a>),
}

impl<'a> Iterator for Parts<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Parts::Packed(p) => p.next(),
            Parts::Map(m) => m.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    /// Both forms answer every operation as an insertion-ordered map does, through growth past
    /// the packed bounds (by count and by a long field or value).
    #[test]
    fn both_forms_agree_with_an_ordered_map() {
        for seed in 0..40u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut h = Hash::new();
            let mut model = indexmap::IndexMap::new();
            let fields = rng.random_range(2..300u32);
            for _ in 0..2000 {
                let f = format!("f{}", rng.random_range(0..fields)).into_bytes();
                let long = rng.random_ratio(1, 400);
                let v = vec![b'v'; if long { 65 } else { rng.random_range(0..10) }];
                match rng.random_range(0..10) {
                    0..=5 => assert_eq!(h.insert(f.clone(), v.clone()), model.insert(f, v)),
                    6 | 7 => assert_eq!(h.shift_remove(&f), model.shift_remove(&f)),
                    _ => {
                        assert_eq!(h.get(&f), model.get(&f).map(Vec::as_slice));
                        assert_eq!(h.contains_key(&f), model.contains_key(&f));
                    }
                }
                assert_eq!(h.len(), model.len());
            }
            let got: Vec<(&[u8], &[u8])> = h.iter().collect();
            let want: Vec<(&[u8], &[u8])> = model
                .iter()
                .map(|(f, v)| (f.as_slice(), v.as_slice()))
                .collect();
            assert_eq!(got, want, "seed {seed}");
            for i in [0, h.len() / 2, h.len()] {
                assert_eq!(h.get_index(i), want.get(i).copied());
            }
            let copy: Hash = want.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
            assert_eq!(copy, h);
        }
    }

    #[test]
    fn a_small_hash_is_packed_until_it_outgrows_the_bounds() {
        let mut h = Hash::new();
        for i in 0..128u32 {
            h.insert(format!("f{i}").into_bytes(), b"v".to_vec());
        }
        assert!(h.is_packed());
        // Updating in place keeps the form and the order.
        assert_eq!(
            h.insert(b"f3".to_vec(), vec![b'x'; 64]),
            Some(b"v".to_vec())
        );
        assert!(h.is_packed() && h.get_index(3).unwrap().0 == b"f3");
        h.insert(b"f128".to_vec(), b"v".to_vec());
        assert!(!h.is_packed());
        let mut long = Hash::new();
        long.insert(b"f".to_vec(), vec![b'v'; 65]);
        assert!(!long.is_packed());
        // Removing from a packed hash keeps the order of the rest, whichever removal.
        let mut h: Hash = (0..5u8).map(|i| (vec![b'a' + i], vec![i])).collect();
        assert_eq!(h.swap_remove(b"b"), Some(vec![1]));
        assert_eq!(h.keys().collect::<Vec<_>>(), [b"a", b"c", b"d", b"e"]);
    }
}
