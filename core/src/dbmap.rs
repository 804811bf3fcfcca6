//! SWAPDB without moving data: which store namespace holds each Redis DB.
//!
//! Redis swaps two DBs by swapping two pointers. kvtier's DBs live mostly on disk, so it does
//! the same one level down: a Redis (logical) DB index is mapped to a store namespace, and
//! SWAPDB swaps two entries of the map. Everything below the engine's public API (the cache's
//! maps, key filters, counts, loads, saves) is indexed by store namespace, so a swap touches
//! none of it; only what the API takes and gives back is translated.
//!
//! The map is a record in kvtier's own namespace ([`META_DB`]). While a changed map is not yet
//! durable, every batch the workers write carries it (see `keycount::StoredCounts`), so no
//! write made after a swap can be durable without the swap: after a crash the store shows the
//! state before the swap or a state after it, never the swap's later writes in the wrong DB.

use crate::keycount::META_DB;
use crate::store::{DbIndex, DiskStore, WriteOp};

/// Key of the map's record in [`META_DB`].
const MAP_KEY: &[u8] = b"dbmap";

/// Logical DB → store namespace, and back. The identity until the first SWAPDB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbMap {
    to_store: Vec<DbIndex>,
    to_logical: Vec<DbIndex>,
}

impl DbMap {
    /// The identity map of `databases` DBs.
    pub fn identity(databases: usize) -> Self {
        let ids: Vec<DbIndex> = (0..databases as DbIndex).collect();
        DbMap {
            to_store: ids.clone(),
            to_logical: ids,
        }
    }

    /// The store namespace holding logical DB `db`. Indices past the Redis DBs (the page
    /// namespace) are never swapped: they map to themselves.
    pub fn store(&self, db: DbIndex) -> DbIndex {
        self.to_store.get(db as usize).copied().unwrap_or(db)
    }

    /// The logical DB whose data is in store namespace `ns`.
    pub fn logical(&self, ns: DbIndex) -> DbIndex {
        self.to_logical.get(ns as usize).copied().unwrap_or(ns)
    }

    /// Swaps what logical DBs `a` and `b` show.
    pub fn swap(&mut self, a: DbIndex, b: DbIndex) {
        self.to_store.swap(a as usize, b as usize);
        for (l, &s) in self.to_store.iter().enumerate() {
            self.to_logical[s as usize] = l as DbIndex;
        }
    }

    /// Whether no swap is in effect.
    pub fn is_identity(&self) -> bool {
        self.to_store
            .iter()
            .enumerate()
            .all(|(l, &s)| l == s as usize)
    }

    /// The record's bytes: the store namespace of each logical DB, 4 bytes little-endian each.
    pub fn encode(&self) -> Vec<u8> {
        self.to_store.iter().flat_map(|s| s.to_le_bytes()).collect()
    }

    /// Reads a map of `databases` DBs back from [`DbMap::encode`]'s bytes. A record of more DBs
    /// (the server ran with a larger `databases`) is accepted when the DBs beyond `databases`
    /// are not swapped with DBs below it; a shorter one is extended with the identity.
    pub fn decode(bytes: &[u8], databases: usize) -> Result<Self, String> {
        if !bytes.len().is_multiple_of(4) {
            return Err("the DB map record is damaged (its length is not a multiple of 4)".into());
        }
        let mut to_store: Vec<DbIndex> = bytes
            .chunks_exact(4)
            .map(|c| DbIndex::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        let n = to_store.len();
        let mut seen = vec![false; n];
        for &s in &to_store {
            if s as usize >= n || std::mem::replace(&mut seen[s as usize], true) {
                return Err("the DB map record is damaged (not a permutation)".into());
            }
        }
        if n > databases {
            if let Some(l) = (0..databases).find(|&l| to_store[l] as usize >= databases) {
                return Err(format!(
                    "DB {l} was swapped (SWAPDB) with DB {}, beyond `databases {databases}`: \
                     start with `databases {n}`, or swap them back first",
                    to_store[l]
                ));
            }
            to_store.truncate(databases);
        }
        to_store.extend(n as DbIndex..databases as DbIndex);
        let mut map = DbMap {
            to_store,
            to_logical: vec![0; databases],
        };
        for (l, &s) in map.to_store.iter().enumerate() {
            map.to_logical[s as usize] = l as DbIndex;
        }
        Ok(map)
    }

    /// Reads the persisted map (one point read); the identity when there is none.
    pub fn load(store: &dyn DiskStore, databases: usize) -> Result<Self, String> {
        match store.get(META_DB, MAP_KEY) {
            Ok(Some(bytes)) => Self::decode(&bytes, databases),
            Ok(None) => Ok(Self::identity(databases)),
            Err(e) => Err(format!("reading the DB map (SWAPDB) failed: {e}")),
        }
    }
}

/// The write that persists `encoded` (from [`DbMap::encode`]).
pub fn map_record(encoded: &[u8]) -> WriteOp {
    WriteOp::Put {
        db: META_DB,
        key: MAP_KEY.to_vec(),
        value: encoded.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swaps_compose_and_round_trip() {
        let mut m = DbMap::identity(4);
        assert!(m.is_identity());
        m.swap(0, 2);
        m.swap(2, 3);
        assert_eq!((m.store(0), m.store(2), m.store(3)), (2, 3, 0));
        for l in 0..4 {
            assert_eq!(m.logical(m.store(l)), l);
        }
        assert_eq!(DbMap::decode(&m.encode(), 4).unwrap(), m);
        m.swap(2, 3);
        m.swap(0, 2);
        assert!(m.is_identity());
    }

    #[test]
    fn another_database_count_is_handled_or_refused() {
        let mut m = DbMap::identity(4);
        m.swap(0, 1);
        let bigger = DbMap::decode(&m.encode(), 6).unwrap();
        assert_eq!((bigger.store(0), bigger.store(5)), (1, 5));
        assert_eq!(DbMap::decode(&m.encode(), 2).unwrap().store(0), 1);
        m.swap(1, 3);
        assert!(DbMap::decode(&m.encode(), 2)
            .unwrap_err()
            .contains("databases 4"));
        assert!(DbMap::decode(&[1, 0, 0], 4).is_err());
        assert!(DbMap::decode(&[0, 0, 0, 0, 0, 0, 0, 0], 2).is_err());
    }
}
