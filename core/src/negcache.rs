//! The negative cache: keys known to be absent from the disk store, so that a lookup of a missing
//! key does not cost a disk read every time. Bounded, with sampled approximate-LRU replacement.
//!
//! Deleted keys whose delete has not reached disk are not kept here but as tombstones in the
//! object cache (they are dirty entries like any other), which pins them until the delete is
//! saved; only then do they move here.

use crate::store::DbIndex;
use indexmap::{Equivalent, IndexMap};
use std::cell::Cell;
use std::hash::{Hash, Hasher};

/// A borrowed `(db, key)` for lookups: hashes exactly as the owned `(DbIndex, Vec<u8>)` does
/// (a `Vec<u8>` hashes as its slice), so a lookup needs no copy of the key. Lookups come on
/// every key not in memory, and again on a miss (see `Db::note_unresolved`).
struct KeyRef<'a>(DbIndex, &'a [u8]);

impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.0.hash(h);
        self.1.hash(h);
    }
}

impl Equivalent<(DbIndex, Vec<u8>)> for KeyRef<'_> {
    fn equivalent(&self, k: &(DbIndex, Vec<u8>)) -> bool {
        self.0 == k.0 && self.1 == k.1.as_slice()
    }
}

/// Bytes an entry costs beyond its key: the map slot and the key's allocation header.
const ENTRY_OVERHEAD: usize = 64;

/// A bounded set of `(db, key)` pairs known absent from the disk store (see the module
/// documentation). Its memory is tracked in [`NegCache::bytes`].
#[derive(Debug)]
pub struct NegCache {
    // (Cells: a lookup refreshes recency through `&self`, so the request path can ask
    // without a mutable borrow of the engine.)
    map: IndexMap<(DbIndex, Vec<u8>), Cell<u64>, crate::cache::KeyHasher>,
    capacity: usize,
    /// Heap bytes held (keys plus per-entry overhead): the negative cache counts against
    /// `maxmemory` like everything else, and gives memory back under pressure.
    bytes: usize,
    clock: Cell<u64>,
    rng: u64,
    /// Lookups answered "absent" by the negative cache: disk reads saved.
    pub hits: Cell<u64>,
}

impl NegCache {
    /// An empty cache holding at most `capacity` keys (0: it holds none).
    pub fn new(capacity: usize) -> Self {
        NegCache {
            map: IndexMap::default(),
            capacity,
            bytes: 0,
            clock: Cell::new(0),
            rng: 0x9e37_79b9_7f4a_7c15,
            hits: Cell::new(0),
        }
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Approximate heap bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn entry_bytes(key: &[u8]) -> usize {
        // The key's own allocation plus the map's slot (hash, tuple, clock) and index entry.
        key.len() + ENTRY_OVERHEAD
    }

    /// Forgets entries (least recently used first, approximately) until about `bytes` were
    /// freed; returns the bytes freed. Used when memory is over the limit.
    /// Entries for which `keep` says yes stay.
    pub fn shrink_by(&mut self, bytes: usize, keep: impl Fn(DbIndex, &[u8]) -> bool) -> usize {
        let before = self.bytes;
        // Bounded: kept entries may make some rounds evict nothing.
        let mut rounds = 2 * self.map.len() + 8;
        while self.bytes + bytes > before && !self.map.is_empty() && rounds > 0 {
            rounds -= 1;
            self.evict_one_except(&keep);
        }
        if self.map.len() < self.map.capacity() / 4 {
            self.map.shrink_to_fit();
        }
        before - self.bytes
    }

    /// Changes the most keys held, evicting at once down to the new capacity.
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
        while self.map.len() > self.capacity {
            self.evict_one();
        }
    }

    /// Whether `key` is known absent on disk, without counting a hit or refreshing it.
    pub fn knows(&self, db: DbIndex, key: &[u8]) -> bool {
        !self.map.is_empty() && self.map.contains_key(&KeyRef(db, key))
    }

    /// Whether `key` is known absent on disk; counts a hit and refreshes its recency.
    pub fn contains(&self, db: DbIndex, key: &[u8]) -> bool {
        let clock = self.clock.get() + 1;
        self.clock.set(clock);
        // An empty cache answers without hashing the key.
        if self.map.is_empty() {
            return false;
        }
        match self.map.get(&KeyRef(db, key)) {
            Some(lru) => {
                lru.set(clock);
                self.hits.set(self.hits.get() + 1);
                true
            }
            None => false,
        }
    }

    /// Records `key` as absent from the store, evicting an old entry when full. The engine calls
    /// it after a load found nothing and after a delete reached the store.
    pub fn insert(&mut self, db: DbIndex, key: Vec<u8>) {
        if self.capacity == 0 {
            return;
        }
        self.clock.set(self.clock.get() + 1);
        if self.map.len() >= self.capacity && !self.map.contains_key(&(db, key.clone())) {
            self.evict_one();
        }
        let added = Self::entry_bytes(&key);
        if self
            .map
            .insert((db, key), Cell::new(self.clock.get()))
            .is_none()
        {
            self.bytes += added;
        }
    }

    /// Forgets `key`; returns whether it was known absent.
    pub fn remove(&mut self, db: DbIndex, key: &[u8]) -> bool {
        if !self.map.is_empty() && self.map.swap_remove(&KeyRef(db, key)).is_some() {
            self.bytes -= Self::entry_bytes(key);
            return true;
        }
        false
    }

    /// Forgets every key of one DB (or all), e.g. after FLUSHDB.
    pub fn clear(&mut self, db: Option<DbIndex>) {
        match db {
            None => self.map.clear(),
            Some(d) => self.map.retain(|(kd, _), _| *kd != d),
        }
        self.bytes = self.map.keys().map(|(_, k)| Self::entry_bytes(k)).sum();
    }

    fn next_rand(&mut self) -> u64 {
        // xorshift: sampling quality is irrelevant, speed and no dependency matter.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn evict_one(&mut self) {
        self.evict_one_except(&|_, _| false);
    }

    fn evict_one_except(&mut self, keep: &dyn Fn(DbIndex, &[u8]) -> bool) {
        let n = self.map.len();
        if n == 0 {
            return;
        }
        let mut best = None;
        for _ in 0..5 {
            let i = (self.next_rand() % n as u64) as usize;
            let lru = self.map[i].get();
            if let Some(((db, k), _)) = self.map.get_index(i) {
                if keep(*db, k) {
                    continue;
                }
            }
            if best.is_none_or(|(_, b)| lru < b) {
                best = Some((i, lru));
            }
        }
        if let Some((i, _)) = best {
            if let Some(((_, k), _)) = self.map.swap_remove_index(i) {
                self.bytes -= Self::entry_bytes(&k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_db_scoped() {
        let mut n = NegCache::new(100);
        for i in 0..1000 {
            n.insert(0, format!("k{i}").into_bytes());
        }
        assert_eq!(n.len(), 100);
        n.insert(1, b"x".to_vec());
        assert!(n.contains(1, b"x"));
        assert!(!n.contains(0, b"x"));
        n.clear(Some(1));
        assert!(!n.contains(1, b"x"));
        n.remove(0, b"k999");
        assert!(!n.contains(0, b"k999"));
    }

    #[test]
    fn bytes_are_counted_and_given_back() {
        let mut n = NegCache::new(1_000_000);
        for i in 0..1000 {
            n.insert(0, vec![i as u8; 1000 + i % 7]);
        }
        // Keys repeat every 256 values of `i as u8`... and lengths vary: count exactly.
        let expected: usize = n.map.keys().map(|(_, k)| k.len() + ENTRY_OVERHEAD).sum();
        assert_eq!(n.bytes(), expected);
        let freed = n.shrink_by(expected / 2, |_, _| false);
        assert!(freed >= expected / 2, "freed {freed} of {}", expected / 2);
        assert_eq!(n.bytes(), expected - freed);
        n.remove(0, &n.map.keys().next().unwrap().1.clone());
        n.clear(Some(0));
        assert_eq!(n.bytes(), 0);
        assert_eq!(n.shrink_by(10, |_, _| false), 0);
    }

    #[test]
    fn recently_used_keys_survive() {
        let mut n = NegCache::new(50);
        for i in 0..50 {
            n.insert(0, format!("k{i}").into_bytes());
        }
        let mut kept = 0;
        for round in 0..200 {
            if n.contains(0, b"k0") {
                kept += 1;
            } else {
                n.insert(0, b"k0".to_vec());
            }
            n.insert(0, format!("new{round}").into_bytes());
        }
        assert!(kept > 190, "hot key evicted too often: kept {kept}/200");
    }
}
