//! A set value in one of two forms (the choice is invisible to commands):
//! - **packed**: the members in one buffer, each preceded by its length in one byte, as Redis
//!   7.2's listpack sets. A small set (at most [`PACKED_MAX`] members of at most
//!   [`PACKED_VALUE_MAX`] bytes, Redis's `set-max-listpack-*` defaults) costs one allocation
//!   and a byte per member beyond the members, instead of a table slot and an allocation each;
//!   a lookup is a walk, which is why the form is kept small.
//! - **table**: a hash set of boxed members hashed with foldhash (seeded per set), for larger
//!   sets.
//!
//! A packed set becomes a table when it outgrows the bounds; a table stays a table (as in
//! Redis). `OBJECT ENCODING` answers from Redis 7.0's rules, not from the form.

use std::collections::HashSet;

/// Most members a packed set holds.
const PACKED_MAX: usize = 128;
/// Longest member a packed set holds (its length fits the one-byte prefix).
const PACKED_VALUE_MAX: usize = 64;

type Table = HashSet<Box<[u8]>, foldhash::quality::RandomState>;

#[derive(Clone, Debug)]
enum Repr {
    /// `len` members, each as a length byte and its bytes.
    Packed { buf: Vec<u8>, len: u32 },
    /// Boxed: the table's struct is 48 bytes, which every small set would otherwise carry.
    Table(Box<Table>),
}

/// A set of byte-string members.
#[derive(Clone, Debug)]
pub struct Set(Repr);

impl Default for Set {
    fn default() -> Self {
        Set::new()
    }
}

impl PartialEq for Set {
    /// Equal when they hold the same members.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|m| other.contains(m))
    }
}

/// The members of a packed buffer, in order.
#[derive(Clone)]
pub struct Packed<'a>(&'a [u8]);

impl<'a> Iterator for Packed<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<Self::Item> {
        let (&n, rest) = self.0.split_first()?;
        let (m, rest) = rest.split_at(usize::from(n));
        self.0 = rest;
        Some(m)
    }
}

/// The byte range (length byte included) of `member` in a packed buffer.
fn find(buf: &[u8], member: &[u8]) -> Option<std::ops::Range<usize>> {
    let mut at = 0;
    while at < buf.len() {
        let end = at + 1 + usize::from(buf[at]);
        if &buf[at + 1..end] == member {
            return Some(at..end);
        }
        at = end;
    }
    None
}

impl Set {
    /// An empty set (packed).
    pub fn new() -> Self {
        Set(Repr::Packed {
            buf: Vec::new(),
            len: 0,
        })
    }

    /// An empty set for about `n` members: a table when they could not be packed anyway.
    pub fn with_capacity(n: usize) -> Self {
        if n > PACKED_MAX {
            Set(Repr::Table(Box::new(Table::with_capacity_and_hasher(
                n,
                Default::default(),
            ))))
        } else {
            Set::new()
        }
    }

    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Packed { len, .. } => *len as usize,
            Repr::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        match &self.0 {
            Repr::Packed { buf, .. } => find(buf, member).is_some(),
            Repr::Table(t) => t.contains(member),
        }
    }

    /// Adds `member`; whether it was new.
    pub fn insert(&mut self, member: &[u8]) -> bool {
        if let Repr::Packed { buf, len } = &mut self.0 {
            if find(buf, member).is_some() {
                return false;
            }
            if member.len() <= PACKED_VALUE_MAX && (*len as usize) < PACKED_MAX {
                // Grown exactly (the allocator rounds up to its size class), not doubled: a
                // small set's buffer is most of its memory.
                buf.reserve_exact(member.len() + 1);
                buf.push(member.len() as u8);
                buf.extend_from_slice(member);
                *len += 1;
                return true;
            }
            self.unpack();
        }
        let Repr::Table(t) = &mut self.0 else {
            unreachable!("unpacked above");
        };
        // Looked up first: a member already there costs no allocation.
        !t.contains(member) && t.insert(member.into())
    }

    /// Turns a packed set into a table.
    fn unpack(&mut self) {
        if let Repr::Packed { buf, len } = &self.0 {
            let mut t = Table::with_capacity_and_hasher(*len as usize + 1, Default::default());
            t.extend(Packed(buf).map(Box::from));
            self.0 = Repr::Table(Box::new(t));
        }
    }

    /// Removes `member`; whether it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match &mut self.0 {
            Repr::Packed { buf, len } => {
                let Some(at) = find(buf, member) else {
                    return false;
                };
                buf.drain(at);
                *len -= 1;
                true
            }
            Repr::Table(t) => t.remove(member),
        }
    }

    /// Keeps the members for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&[u8]) -> bool) {
        match &mut self.0 {
            Repr::Packed { buf, len } => {
                let mut kept = Vec::with_capacity(buf.len());
                let mut n = 0;
                for m in Packed(buf).filter(|m| keep(m)) {
                    kept.push(m.len() as u8);
                    kept.extend_from_slice(m);
                    n += 1;
                }
                *buf = kept;
                *len = n;
            }
            Repr::Table(t) => t.retain(|m| keep(m)),
        }
    }

    /// The members (in no particular order).
    pub fn iter(&self) -> Iter<'_> {
        let parts = match &self.0 {
            Repr::Packed { buf, .. } => Parts::Packed(Packed(buf)),
            Repr::Table(t) => Parts::Table(t.iter()),
        };
        Iter::new(parts, self.len())
    }

    /// Bytes the set takes beyond its own struct (approximate for a table).
    pub fn mem_size(&self) -> usize {
        // A table slot (the boxed member) and its control byte, at the table's load.
        const SLOT: usize = 20;
        match &self.0 {
            Repr::Packed { buf, .. } => buf.capacity(),
            Repr::Table(t) => t.iter().map(|m| m.len()).sum::<usize>() + t.capacity() * SLOT,
        }
    }

    /// Whether the set is in packed form (tests).
    #[cfg(test)]
    fn is_packed(&self) -> bool {
        matches!(self.0, Repr::Packed { .. })
    }
}

impl<'a> FromIterator<&'a [u8]> for Set {
    fn from_iter<T: IntoIterator<Item = &'a [u8]>>(iter: T) -> Self {
        let iter = iter.into_iter();
        let mut s = Set::with_capacity(iter.size_hint().0);
        for m in iter {
            s.insert(m);
        }
        s
    }
}

impl FromIterator<Vec<u8>> for Set {
    fn from_iter<T: IntoIterator<Item = Vec<u8>>>(iter: T) -> Self {
        let iter = iter.into_iter();
        let mut s = Set::with_capacity(iter.size_hint().0);
        for m in iter {
            s.insert(&m);
        }
        s
    }
}

impl IntoIterator for Set {
    type Item = Vec<u8>;
    type IntoIter = std::vec::IntoIter<Vec<u8>>;

    fn into_iter(self) -> Self::IntoIter {
        let members: Vec<Vec<u8>> = match self.0 {
            Repr::Packed { buf, .. } => Packed(&buf).map(<[u8]>::to_vec).collect(),
            Repr::Table(t) => (*t).into_iter().map(Vec::from).collect(),
        };
        members.into_iter()
    }
}

/// The members of a set.
pub type Iter<'a> = crate::counted::Counted<Parts<'a>>;

/// The members of either form, uncounted.
#[derive(Clone)]
pub enum Parts<'a> {
    Packed(Packed<'a>),
    Table(std::collections::hash_set::Iter<'a, Box<[u8]>>),
}

impl<'a> Iterator for Parts<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Parts::Packed(p) => p.next(),
            Parts::Table(t) => t.next().map(|m| &**m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use std::collections::BTreeSet;

    /// Both forms answer every operation as a std set does, through growth past the packed
    /// bounds (by count and by a long member).
    #[test]
    fn both_forms_agree_with_a_std_set() {
        for seed in 0..40u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut s = Set::new();
            let mut model = BTreeSet::new();
            let members = rng.random_range(2..300u32);
            for _ in 0..2000 {
                let mut m = format!("m{}", rng.random_range(0..members)).into_bytes();
                if rng.random_ratio(1, 400) {
                    m.resize(65, b'x');
                }
                match rng.random_range(0..10) {
                    0..=5 => assert_eq!(s.insert(&m), model.insert(m)),
                    6 | 7 => assert_eq!(s.remove(&m), model.remove(&m)),
                    8 if rng.random_ratio(1, 20) => {
                        let cut = rng.random_range(0..members).to_string().into_bytes();
                        s.retain(|m| !m.ends_with(&cut));
                        model.retain(|m| !m.ends_with(&cut));
                    }
                    _ => assert_eq!(s.contains(&m), model.contains(&m)),
                }
                assert_eq!(s.len(), model.len());
            }
            let got: BTreeSet<Vec<u8>> = s.iter().map(<[u8]>::to_vec).collect();
            assert_eq!(got, model, "seed {seed}");
            assert_eq!(s.iter().len(), model.len());
            let copy: Set = model.iter().map(Vec::as_slice).collect();
            assert_eq!(copy, s);
        }
    }

    #[test]
    fn a_small_set_is_packed_until_it_outgrows_the_bounds() {
        let mut s = Set::new();
        for i in 0..128u32 {
            assert!(s.insert(format!("m{i}").as_bytes()));
        }
        assert!(s.is_packed());
        assert!(
            !s.insert(b"m5"),
            "a member already there is not added again"
        );
        assert!(s.insert(b"m128"));
        assert!(!s.is_packed() && s.len() == 129);
        let mut long = Set::new();
        assert!(long.insert(&[b'x'; 64]));
        assert!(long.is_packed());
        assert!(long.insert(&[b'x'; 65]));
        assert!(!long.is_packed() && long.contains(&[b'x'; 64]));
        // The empty member is a member like any other.
        let mut e = Set::new();
        assert!(e.insert(b"") && e.contains(b"") && !e.contains(b"a"));
        assert!(e.remove(b"") && e.is_empty());
    }
}
