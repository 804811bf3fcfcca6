//! The negative cache: keys known to be absent from the disk store, so that a lookup of a missing
//! key does not cost a disk read every time. Bounded, with sampled approximate-LRU replacement.
//!
//! Deleted keys whose delete has not reached disk are not kept here but as tombstones in the
//! object cache (they are dirty entries like any other), which pins them until the delete is
//! saved; only then do they move here.

use crate::store::DbIndex;
use indexmap::IndexMap;

#[derive(Debug)]
pub struct NegCache {
    map: IndexMap<(DbIndex, Vec<u8>), u64>,
    capacity: usize,
    clock: u64,
    rng: u64,
    pub hits: u64,
}

impl NegCache {
    pub fn new(capacity: usize) -> Self {
        NegCache {
            map: IndexMap::new(),
            capacity,
            clock: 0,
            rng: 0x9e37_79b9_7f4a_7c15,
            hits: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
        while self.map.len() > self.capacity {
            self.evict_one();
        }
    }

    /// Whether `key` is known absent on disk; counts a hit and refreshes its recency.
    pub fn contains(&mut self, db: DbIndex, key: &[u8]) -> bool {
        self.clock += 1;
        let clock = self.clock;
        // Avoid allocating a tuple key for the lookup in the common miss case.
        if self.map.is_empty() {
            return false;
        }
        match self.map.get_mut(&(db, key.to_vec())) {
            Some(lru) => {
                *lru = clock;
                self.hits += 1;
                true
            }
            None => false,
        }
    }

    pub fn insert(&mut self, db: DbIndex, key: Vec<u8>) {
        if self.capacity == 0 {
            return;
        }
        self.clock += 1;
        if self.map.len() >= self.capacity && !self.map.contains_key(&(db, key.clone())) {
            self.evict_one();
        }
        self.map.insert((db, key), self.clock);
    }

    pub fn remove(&mut self, db: DbIndex, key: &[u8]) {
        if !self.map.is_empty() {
            self.map.swap_remove(&(db, key.to_vec()));
        }
    }

    /// Forgets every key of one DB (or all), e.g. after FLUSHDB.
    pub fn clear(&mut self, db: Option<DbIndex>) {
        match db {
            None => self.map.clear(),
            Some(d) => self.map.retain(|(kd, _), _| *kd != d),
        }
    }

    fn next_rand(&mut self) -> u64 {
        // xorshift: sampling quality is irrelevant, speed and no dependency matter.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn evict_one(&mut self) {
        let n = self.map.len();
        if n == 0 {
            return;
        }
        let mut best = None;
        for _ in 0..5 {
            let i = (self.next_rand() % n as u64) as usize;
            let lru = self.map[i];
            if best.is_none_or(|(_, b)| lru < b) {
                best = Some((i, lru));
            }
        }
        if let Some((i, _)) = best {
            self.map.swap_remove_index(i);
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
