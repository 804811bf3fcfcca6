//! A small uniform sample of the keys of each DB that are in the store (reservoir sampling over
//! the keys the engine sees anyway: the key-filter rebuild at open reads them all, saves add new
//! ones). RANDOMKEY starts its store read just after a sampled key, so where the store orders
//! by key, its start positions are spread like the keys themselves, without a full scan.
//! Deleted keys may stay in the sample: a sampled key is only ever a position.

use crate::store::DbIndex;

/// Keys kept per DB.
const PER_DB: usize = 256;
/// Longer keys are not sampled (the sample's memory stays small).
const MAX_KEY: usize = 256;

/// Reservoir samples of store keys, one per DB.
#[derive(Debug)]
pub struct KeySample {
    dbs: Vec<(Vec<Vec<u8>>, u64)>,
    rng: u64,
}

impl KeySample {
    /// Empty samples for `databases` DBs.
    pub fn new(databases: usize) -> Self {
        KeySample {
            dbs: vec![(Vec::new(), 0); databases],
            rng: 0x9e37_79b9_7f4a_7c15,
        }
    }

    fn rand(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// Offers a key known to be in the store.
    pub fn offer(&mut self, db: DbIndex, key: &[u8]) {
        if key.len() > MAX_KEY {
            return;
        }
        let r = self.rand();
        let Some((keys, seen)) = self.dbs.get_mut(db as usize) else {
            return;
        };
        *seen += 1;
        if keys.len() < PER_DB {
            keys.push(key.to_vec());
        } else {
            let i = (r % *seen) as usize;
            if i < PER_DB {
                keys[i] = key.to_vec();
            }
        }
    }

    /// A random sampled key of `db`.
    pub fn pick(&mut self, db: DbIndex) -> Option<Vec<u8>> {
        let r = self.rand();
        let (keys, _) = self.dbs.get(db as usize)?;
        (!keys.is_empty()).then(|| keys[(r % keys.len() as u64) as usize].clone())
    }

    /// Forgets the sample of one DB or all (after a flush).
    pub fn clear(&mut self, db: Option<DbIndex>) {
        for (i, d) in self.dbs.iter_mut().enumerate() {
            if db.is_none_or(|x| x as usize == i) {
                *d = (Vec::new(), 0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_is_bounded_and_spread() {
        let mut s = KeySample::new(2);
        assert_eq!(s.pick(0), None);
        for i in 0..10_000u32 {
            s.offer(0, format!("k{i:05}").as_bytes());
        }
        let picks: std::collections::HashSet<Vec<u8>> =
            (0..500).filter_map(|_| s.pick(0)).collect();
        assert!(picks.len() > 100, "{} distinct", picks.len());
        // Not just the first keys offered.
        assert!(picks.iter().any(|k| k.as_slice() > b"k05000".as_slice()));
        s.offer(0, &vec![b'x'; MAX_KEY + 1]);
        s.clear(Some(0));
        assert_eq!(s.pick(0), None);
        assert_eq!(s.pick(1), None);
    }
}
