//! An insertion-ordered map from byte fields to byte values that keeps each field and its value
//! in one allocation: the map form of a large hash, and the pages of paged hashes, sets' and
//! sorted sets' member indexes.
//!
//! `IndexMap<Vec<u8>, Vec<u8>>` cost a 56-byte slot (hash and two vectors) and two allocations
//! per field, and a lookup that found the field read a third place for its value. Here a slot
//! is 24 bytes (hash and one boxed slice) and the value follows the field in the same
//! allocation. Fields are hashed with foldhash (seeded per map, as the cache's keys are), not
//! SipHash.

use indexmap::{Equivalent, IndexSet};
use std::hash::{Hash, Hasher};

type Hasher_ = foldhash::quality::RandomState;

/// A field and its value: `[field length][field][value]`, the length one byte when under 255,
/// else 255 and the length as four bytes (little-endian).
#[derive(Clone, Debug)]
struct Pair(Box<[u8]>);

/// A field length at or above this takes the long form.
const LONG: u8 = 255;

impl Pair {
    fn new(field: &[u8], value: &[u8]) -> Pair {
        let head = if field.len() < usize::from(LONG) {
            1
        } else {
            5
        };
        let mut b = Vec::with_capacity(head + field.len() + value.len());
        if head == 1 {
            b.push(field.len() as u8);
        } else {
            // Fields are bounded by `proto-max-bulk-len` (at most 4 GiB - 1 when configured).
            b.push(LONG);
            b.extend_from_slice(&(field.len() as u32).to_le_bytes());
        }
        b.extend_from_slice(field);
        b.extend_from_slice(value);
        Pair(b.into_boxed_slice())
    }

    /// The field and the value.
    fn parts(&self) -> (&[u8], &[u8]) {
        let b = &self.0;
        let (n, at) = match b[0] {
            LONG => {
                let mut len = [0u8; 4];
                len.copy_from_slice(&b[1..5]);
                (u32::from_le_bytes(len) as usize, 5)
            }
            n => (usize::from(n), 1),
        };
        b[at..].split_at(n)
    }

    fn field(&self) -> &[u8] {
        self.parts().0
    }
}

impl Hash for Pair {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.field().hash(state);
    }
}

impl PartialEq for Pair {
    fn eq(&self, other: &Self) -> bool {
        self.field() == other.field()
    }
}

impl Eq for Pair {}

/// A lookup by field: hashes as the pair holding it does.
struct Field<'a>(&'a [u8]);

impl Hash for Field<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl Equivalent<Pair> for Field<'_> {
    fn equivalent(&self, key: &Pair) -> bool {
        self.0 == key.field()
    }
}

/// The map. Removal comes in both of `IndexMap`'s kinds: `swap_remove` (constant time, the last
/// pair takes the place) and `shift_remove` (keeps the order).
#[derive(Clone, Debug, Default)]
pub struct PairMap(IndexSet<Pair, Hasher_>);

impl PairMap {
    pub fn with_capacity(n: usize) -> Self {
        PairMap(IndexSet::with_capacity_and_hasher(n, Hasher_::default()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        self.0.get(&Field(field)).map(|p| p.parts().1)
    }

    /// Sets `field` to `value`; the previous value's length. A field already there keeps its
    /// place in the order.
    pub fn set(&mut self, field: &[u8], value: &[u8]) -> Option<usize> {
        let (_, old) = self.0.replace_full(Pair::new(field, value));
        old.map(|p| p.parts().1.len())
    }

    /// Sets `field` to `value`; the previous value.
    pub fn insert(&mut self, field: &[u8], value: &[u8]) -> Option<Vec<u8>> {
        let (_, old) = self.0.replace_full(Pair::new(field, value));
        old.map(|p| p.parts().1.to_vec())
    }

    pub fn swap_remove(&mut self, field: &[u8]) -> Option<Vec<u8>> {
        self.0
            .swap_take(&Field(field))
            .map(|p| p.parts().1.to_vec())
    }

    pub fn shift_remove(&mut self, field: &[u8]) -> Option<Vec<u8>> {
        self.0
            .shift_take(&Field(field))
            .map(|p| p.parts().1.to_vec())
    }

    pub fn iter(&self) -> Iter<'_> {
        Iter(self.0.iter())
    }

    pub fn get_index(&self, i: usize) -> Option<(&[u8], &[u8])> {
        self.0.get_index(i).map(Pair::parts)
    }

    /// Pairs the map has room for without growing (tests).
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.0.capacity()
    }

    pub fn shrink_to_fit(&mut self) {
        self.0.shrink_to_fit();
    }

    /// Bytes the map takes beyond its own struct: each pair's allocation, its slot (hash and
    /// pointer) and its share of the index, with the spare slots.
    pub fn mem_size(&self) -> usize {
        const SLOT: usize = 24;
        const INDEX: usize = 9;
        let pairs: usize = self.0.iter().map(|p| p.0.len()).sum();
        pairs + self.0.capacity() * (SLOT + INDEX)
    }
}

/// The pairs in order.
#[derive(Clone)]
pub struct Iter<'a>(indexmap::set::Iter<'a, Pair>);

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(Pair::parts)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use indexmap::IndexMap;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    /// Every operation answers as `IndexMap` does, with short, empty and long (past the
    /// one-byte length) fields and values.
    #[test]
    fn agrees_with_an_index_map() {
        for seed in 0..20u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut m = PairMap::default();
            let mut model: IndexMap<Vec<u8>, Vec<u8>> = IndexMap::new();
            for _ in 0..3000 {
                let n = rng.random_range(0..200u32);
                let mut f = format!("f{n}").into_bytes();
                if n % 17 == 0 {
                    // Long fields share a prefix, so only the length form tells them apart.
                    f = [vec![b'x'; 300], f].concat();
                }
                if n == 0 {
                    f.clear();
                }
                let v = vec![b'v'; rng.random_range(0..40)];
                match rng.random_range(0..10) {
                    0..=4 => assert_eq!(m.insert(&f, &v), model.insert(f, v)),
                    5 => {
                        let want = model.get(&f).map(Vec::len);
                        assert_eq!(m.set(&f, &v), want);
                        model.insert(f, v);
                    }
                    6 => assert_eq!(m.swap_remove(&f), model.swap_remove(&f)),
                    7 => assert_eq!(m.shift_remove(&f), model.shift_remove(&f)),
                    _ => assert_eq!(m.get(&f), model.get(&f).map(Vec::as_slice)),
                }
                assert_eq!(m.len(), model.len());
            }
            let got: Vec<_> = m.iter().collect();
            let want: Vec<_> = model
                .iter()
                .map(|(f, v)| (f.as_slice(), v.as_slice()))
                .collect();
            assert_eq!(got, want, "seed {seed}");
            assert_eq!(m.iter().len(), want.len());
            for i in [0, m.len() / 2, m.len()] {
                assert_eq!(m.get_index(i), want.get(i).copied());
            }
        }
    }

    #[test]
    fn a_field_longer_than_the_short_form_keeps_its_value_apart() {
        let mut m = PairMap::default();
        let f = vec![b'f'; 255];
        assert_eq!(m.set(&f, b"value"), None);
        assert_eq!(m.get(&f), Some(&b"value"[..]));
        assert_eq!(m.get(&f[..254]), None);
        assert_eq!(m.iter().next(), Some((&f[..], &b"value"[..])));
    }
}
