//! Knowing "not on disk" without the disk: per DB, an approximate membership filter (a quotient
//! filter, which supports removal) of the keys the store holds.
//!
//! A key the filter does not contain is certainly absent from the store, so a command on a new
//! key runs at once instead of waiting for a probe; a key it contains may be there (false
//! positives cost one probe, counted in INFO).
//!
//! **The invariant** that makes a negative answer safe: for every fingerprint, the filter holds at
//! least as many copies as the store holds keys with that fingerprint. So the engine
//! - inserts a copy when a put of a key reaches the store and the key was not known to be there
//!   already (when unsure, it inserts: an extra copy only makes a stale positive, a missing one
//!   would make a false negative, i.e. a wrong answer);
//! - removes a copy only when a delete reaches the store for a key known to have been there;
//! - ignores removals while a filter is being rebuilt (the rebuild may not have counted the key
//!   yet, and removing would take another key's copy).
//!
//! At open the filters are unknown (every key "may be on disk") and are rebuilt in the
//! background by a key-only scan of the store, one page at a time; the server answers meanwhile.

use crate::store::DbIndex;
use qfilter::Filter;

/// What a filter knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterState {
    /// Not built yet: every key may be on disk.
    Building,
    /// Complete: a negative answer is certain.
    Ready,
    /// Given up (it could not grow): every key may be on disk.
    Disabled,
}

#[derive(Debug)]
struct DbKeys {
    filter: Filter,
    state: FilterState,
}

/// Counters for INFO.
#[derive(Debug, Default, Clone)]
pub struct DiskKeysStats {
    /// Lookups answered "absent" by a filter: disk probes avoided.
    pub probes_avoided: u64,
    /// Probes of keys a ready filter said may exist, that did not.
    pub false_positives: u64,
}

/// The key filters of every DB (see the module documentation), kept by the engine as saves
/// reach the store and rebuilt by a scan at open.
#[derive(Debug)]
pub struct DiskKeys {
    dbs: Vec<DbKeys>,
    /// Counters for INFO.
    pub stats: DiskKeysStats,
}

/// A false-positive rate of about 1% at the largest size: 10 M keys cost ~14 MB.
const FP_RATE: f64 = 0.01;
const INITIAL_CAPACITY: u64 = 1 << 12;
const MAX_CAPACITY: u64 = 1 << 33;

fn new_filter() -> Filter {
    Filter::new_resizeable(INITIAL_CAPACITY, MAX_CAPACITY, FP_RATE)
        .expect("constant filter parameters are valid")
}

impl DiskKeys {
    /// Filters for `databases` DBs, all `Building` (the store's content is not known yet).
    pub fn new(databases: usize) -> Self {
        DiskKeys {
            dbs: (0..databases)
                .map(|_| DbKeys {
                    filter: new_filter(),
                    state: FilterState::Building,
                })
                .collect(),
            stats: DiskKeysStats::default(),
        }
    }

    /// What the filter of `db` knows.
    pub fn state(&self, db: DbIndex) -> FilterState {
        self.dbs[db as usize].state
    }

    /// Whether `key` may be in the store (`false` is certain).
    pub fn may_contain(&self, db: DbIndex, key: &[u8]) -> bool {
        let d = &self.dbs[db as usize];
        d.state != FilterState::Ready || d.filter.contains(key)
    }

    /// Whether the filter of `db` is [`FilterState::Ready`], i.e. its "absent" answers are
    /// certain (the engine uses it to count false positives).
    pub fn ready(&self, db: DbIndex) -> bool {
        self.dbs[db as usize].state == FilterState::Ready
    }

    /// A put of `key` reached the store (or a rebuild found it there).
    pub fn added(&mut self, db: DbIndex, key: &[u8]) {
        let d = &mut self.dbs[db as usize];
        if d.state == FilterState::Disabled {
            return;
        }
        if d.filter.insert_duplicated(key).is_err() {
            log::warn!("the key filter of db {db} is full; disk probes for new keys resume");
            d.state = FilterState::Disabled;
            d.filter = new_filter();
        }
    }

    /// A delete of `key`, known to have been in the store, reached it.
    pub fn removed(&mut self, db: DbIndex, key: &[u8]) {
        let d = &mut self.dbs[db as usize];
        if d.state == FilterState::Ready {
            d.filter.remove(key);
        }
    }

    /// The DB's store content is gone (FLUSHDB): an empty, ready filter.
    pub fn cleared(&mut self, db: Option<DbIndex>) {
        for (i, d) in self.dbs.iter_mut().enumerate() {
            if db.is_none_or(|c| c as usize == i) {
                d.filter = new_filter();
                d.state = FilterState::Ready;
            }
        }
    }

    /// The rebuild of `db` saw every key of the store.
    pub fn built(&mut self, db: DbIndex) {
        let d = &mut self.dbs[db as usize];
        if d.state == FilterState::Building {
            d.state = FilterState::Ready;
        }
    }

    /// Heap bytes of all filters (they count against `maxmemory`).
    pub fn memory_usage(&self) -> usize {
        self.dbs.iter().map(|d| d.filter.memory_usage()).sum()
    }

    /// Keys counted in all filters (copies included).
    pub fn len(&self) -> u64 {
        self.dbs.iter().map(|d| d.filter.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_only_when_ready_and_never_for_a_present_key() {
        let mut k = DiskKeys::new(2);
        assert!(k.may_contain(0, b"x"), "a building filter knows nothing");
        for i in 0..10_000 {
            k.added(0, format!("key:{i}").as_bytes());
        }
        k.built(0);
        for i in 0..10_000 {
            assert!(k.may_contain(0, format!("key:{i}").as_bytes()));
        }
        let absent = (0..10_000)
            .filter(|i| !k.may_contain(0, format!("new:{i}").as_bytes()))
            .count();
        assert!(
            absent > 9_500,
            "too many false positives: {}",
            10_000 - absent
        );
        assert!(k.may_contain(1, b"x"), "db 1 is still building");
        k.removed(0, b"key:7");
        assert!(!k.may_contain(0, b"key:7") || k.stats.false_positives == 0);
        k.cleared(Some(0));
        assert!(!k.may_contain(0, b"key:8"));
    }

    #[test]
    fn removal_while_building_is_ignored_so_no_key_is_lost() {
        let mut k = DiskKeys::new(1);
        k.added(0, b"a");
        k.removed(0, b"a");
        k.built(0);
        assert!(
            k.may_contain(0, b"a"),
            "a stale positive is allowed, a lost key is not"
        );
    }

    #[test]
    fn extra_copies_keep_a_key_after_one_removal() {
        let mut k = DiskKeys::new(1);
        k.built(0);
        // Added twice when the engine was unsure whether it was already there.
        k.added(0, b"a");
        k.added(0, b"a");
        k.removed(0, b"a");
        assert!(k.may_contain(0, b"a"));
    }
}
