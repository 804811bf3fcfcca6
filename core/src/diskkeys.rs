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
//!
//! **Size.** A quotient filter stores `r` remainder bits per slot, and one that doubles in place
//! gives up one remainder bit per doubling, so it must start with a bit for every doubling it
//! may ever make. Sized up front for billions of keys, a filter of a million keys spent ~6 bytes
//! per key. So a filter is sized for the keys it holds (the persisted key count at open) with
//! room for [`HEADROOM`]x growth, ~2 bytes per key; when it outgrows that, a bigger one is
//! rebuilt by the same background scan while the outgrown one keeps answering (`Growing`): a
//! key is absent only if neither filter has it, and every key saved meanwhile goes into the new
//! one. Rebuilds come at every ~16x growth, so their cost per key stays constant.

use crate::store::DbIndex;
use qfilter::Filter;

/// What a filter knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterState {
    /// Not built yet: every key may be on disk.
    Building,
    /// Outgrew its size: a bigger filter is being rebuilt while the outgrown one keeps
    /// answering, so a negative answer is still certain.
    Growing,
    /// Complete: a negative answer is certain.
    Ready,
    /// Not kept (the page namespace, or a filter that cannot grow further): every key may be
    /// on disk.
    Disabled,
}

#[derive(Debug)]
struct DbKeys {
    filter: Filter,
    /// While `Growing`: the outgrown filter, complete for every key the store held when it
    /// filled (nothing is removed from it after that, so it stays complete).
    previous: Option<Filter>,
    state: FilterState,
    /// Bumped whenever `filter` is replaced by one a scan must fill: a scan page read for an
    /// older number belongs to a filter that is gone, and the scan starts over.
    build: u64,
    /// Whether a filter is kept at all (false for the page namespace): a flush makes a kept
    /// filter ready again, even one that had been given up.
    kept: bool,
}

impl DbKeys {
    /// Keys counted (copies included): while growing, the larger of the two filters.
    fn held(&self) -> u64 {
        let previous = self.previous.as_ref().map_or(0, Filter::len);
        self.filter.len().max(previous)
    }
}

/// Counters for INFO.
#[derive(Debug, Default, Clone)]
pub struct DiskKeysStats {
    /// Lookups answered "absent" by a filter: disk probes avoided.
    pub probes_avoided: std::cell::Cell<u64>,
    /// Probes of keys a ready filter said may exist, that did not.
    pub false_positives: u64,
    /// Filters rebuilt bigger because they outgrew their size.
    pub regrown: u64,
}

/// The key filters of every DB (see the module documentation), kept by the engine as saves
/// reach the store and rebuilt by a scan at open or when one outgrows its size.
#[derive(Debug)]
pub struct DiskKeys {
    dbs: Vec<DbKeys>,
    /// Counters for INFO.
    pub stats: DiskKeysStats,
}

/// A false-positive rate of about 1% once a filter has grown to its largest size (below that it
/// keeps spare remainder bits and does better).
const FP_RATE: f64 = 0.01;
/// The smallest filter: an empty DB costs ~2 KB.
const INITIAL_CAPACITY: u64 = 1 << 12;
/// How much a filter may grow in place before it is rebuilt bigger (each doubling costs one
/// remainder bit per slot up front).
const HEADROOM: u64 = 8;
/// Beyond this many keys a DB's filter is given up (every key is probed again).
const MAX_CAPACITY: u64 = 1 << 33;

/// An empty filter with room for `keys` keys, able to grow [`HEADROOM`]x in place. `None` past
/// [`MAX_CAPACITY`].
fn sized_for(keys: u64) -> Option<Filter> {
    let initial = keys.max(INITIAL_CAPACITY);
    if initial > MAX_CAPACITY {
        return None;
    }
    let max = initial.saturating_mul(HEADROOM).min(MAX_CAPACITY);
    Filter::new_resizeable(initial, max, FP_RATE).ok()
}

fn empty_filter() -> Filter {
    sized_for(0).expect("the smallest filter is valid")
}

impl DiskKeys {
    /// Filters for `databases` DBs, all `Building` (the store's content is not known yet).
    pub fn new(databases: usize) -> Self {
        DiskKeys {
            dbs: (0..databases)
                .map(|_| DbKeys {
                    filter: empty_filter(),
                    previous: None,
                    state: FilterState::Building,
                    build: 0,
                    kept: true,
                })
                .collect(),
            stats: DiskKeysStats::default(),
        }
    }

    /// Sizes the still empty, building filter of `db` for about `keys` keys (the persisted key
    /// count, read at open), so that the rebuild does not outgrow it.
    pub fn presize(&mut self, db: DbIndex, keys: u64) {
        let d = &mut self.dbs[db as usize];
        if d.state == FilterState::Building && d.filter.is_empty() {
            match sized_for(keys) {
                Some(f) => d.filter = f,
                None => self.give_up(db),
            }
        }
    }

    /// Keeps no filter for `db`: every key may be there (the page namespace, whose keys are
    /// drawn at random and never looked up before they are written).
    pub fn disable(&mut self, db: DbIndex) {
        self.give_up(db);
        self.dbs[db as usize].kept = false;
    }

    fn give_up(&mut self, db: DbIndex) {
        let d = &mut self.dbs[db as usize];
        d.state = FilterState::Disabled;
        d.previous = None;
        d.filter = empty_filter();
    }

    /// What the filter of `db` knows.
    pub fn state(&self, db: DbIndex) -> FilterState {
        self.dbs[db as usize].state
    }

    /// Whether the filter of `db` waits for a scan of the store (building or growing).
    pub fn needs_scan(&self, db: DbIndex) -> bool {
        matches!(
            self.dbs[db as usize].state,
            FilterState::Building | FilterState::Growing
        )
    }

    /// The build number of `db`'s filter (see [`DiskKeys::needs_scan`]): a scan whose pages were
    /// read under another number starts over.
    pub fn build(&self, db: DbIndex) -> u64 {
        self.dbs[db as usize].build
    }

    /// Whether `key` may be in the store (`false` is certain).
    pub fn may_contain(&self, db: DbIndex, key: &[u8]) -> bool {
        let d = &self.dbs[db as usize];
        match d.state {
            FilterState::Ready => d.filter.contains(key),
            FilterState::Growing => {
                d.filter.contains(key) || d.previous.as_ref().is_none_or(|p| p.contains(key))
            }
            FilterState::Building | FilterState::Disabled => true,
        }
    }

    /// Whether the filter of `db` is [`FilterState::Ready`], i.e. its "absent" answers are
    /// certain and exact enough to count false positives.
    pub fn ready(&self, db: DbIndex) -> bool {
        self.dbs[db as usize].state == FilterState::Ready
    }

    /// A put of `key` reached the store (or a rebuild found it there).
    pub fn added(&mut self, db: DbIndex, key: &[u8]) {
        let d = &mut self.dbs[db as usize];
        if d.state == FilterState::Disabled {
            return;
        }
        if d.filter.insert_duplicated(key).is_ok() {
            return;
        }
        // Full. A ready filter is complete: it keeps answering while a bigger one is built. A
        // filter that is itself being built is not, so a bigger one starts over, answering
        // "may be on disk" until it is done (an outgrown rebuild means the size guess was off).
        let held = d.held();
        let (grown, state) = if d.state == FilterState::Ready {
            (sized_for(held.saturating_mul(2)), FilterState::Growing)
        } else {
            (sized_for(held.saturating_mul(4)), FilterState::Building)
        };
        let Some(mut grown) = grown else {
            log::warn!("the key filter of db {db} is full; disk probes for new keys resume");
            self.give_up(db);
            return;
        };
        grown
            .insert_duplicated(key)
            .expect("an empty filter takes one key");
        let old = std::mem::replace(&mut d.filter, grown);
        d.previous = (state == FilterState::Growing).then_some(old);
        d.state = state;
        d.build += 1;
        self.stats.regrown += 1;
        log::info!("the key filter of db {db} outgrew its size at {held} keys; rebuilding it");
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
            if d.kept && db.is_none_or(|c| c as usize == i) {
                d.filter = empty_filter();
                d.previous = None;
                d.state = FilterState::Ready;
                d.build += 1;
            }
        }
    }

    /// The scan of `db` under build number `build` saw every key of the store.
    pub fn built(&mut self, db: DbIndex, build: u64) {
        let d = &mut self.dbs[db as usize];
        if d.build == build && matches!(d.state, FilterState::Building | FilterState::Growing) {
            d.state = FilterState::Ready;
            d.previous = None;
        }
    }

    /// Heap bytes of all filters (they count against `maxmemory`).
    pub fn memory_usage(&self) -> usize {
        self.dbs
            .iter()
            .map(|d| d.filter.memory_usage() + d.previous.as_ref().map_or(0, Filter::memory_usage))
            .sum()
    }

    /// Keys counted in all filters (copies included; while growing, the larger of the two).
    pub fn len(&self) -> u64 {
        self.dbs.iter().map(DbKeys::held).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u64) -> Vec<u8> {
        format!("key:{i}").into_bytes()
    }

    fn ready(databases: usize) -> DiskKeys {
        let mut k = DiskKeys::new(databases);
        for db in 0..databases as DbIndex {
            k.built(db, k.build(db));
        }
        k
    }

    #[test]
    fn negative_only_when_ready_and_never_for_a_present_key() {
        let mut k = DiskKeys::new(2);
        assert!(k.may_contain(0, b"x"), "a building filter knows nothing");
        for i in 0..10_000 {
            k.added(0, &key(i));
        }
        k.built(0, k.build(0));
        for i in 0..10_000 {
            assert!(k.may_contain(0, &key(i)));
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
        k.cleared(Some(0));
        assert!(!k.may_contain(0, &key(8)));
    }

    #[test]
    fn removal_while_building_is_ignored_so_no_key_is_lost() {
        let mut k = DiskKeys::new(1);
        k.added(0, b"a");
        k.removed(0, b"a");
        k.built(0, k.build(0));
        assert!(
            k.may_contain(0, b"a"),
            "a stale positive is allowed, a lost key is not"
        );
    }

    #[test]
    fn extra_copies_keep_a_key_after_one_removal() {
        let mut k = ready(1);
        // Added twice when the engine was unsure whether it was already there.
        k.added(0, b"a");
        k.added(0, b"a");
        k.removed(0, b"a");
        assert!(k.may_contain(0, b"a"));
    }

    #[test]
    fn an_outgrown_filter_keeps_answering_while_a_bigger_one_is_built() {
        let mut k = ready(1);
        let n = 100_000;
        for i in 0..n {
            k.added(0, &key(i));
            assert!(k.may_contain(0, &key(i)));
        }
        assert_eq!(k.state(0), FilterState::Growing);
        assert!(k.needs_scan(0));
        assert_eq!(k.stats.regrown, 1);
        let build = k.build(0);
        // Every key is known through the outgrown filter or the new one, and new keys are
        // still answered "absent" without the disk.
        assert!((0..n).all(|i| k.may_contain(0, &key(i))));
        let absent = (0..10_000)
            .filter(|i| !k.may_contain(0, format!("new:{i}").as_bytes()))
            .count();
        assert!(
            absent > 9_500,
            "growing answers too few negatives: {absent}"
        );
        // Removals are ignored until the scan is done (the new filter may miss the key).
        k.removed(0, &key(5));
        assert!(k.may_contain(0, &key(5)));
        // The scan re-adds what the store holds; a scan page of an older build is not counted.
        k.built(0, build - 1);
        assert_eq!(k.state(0), FilterState::Growing);
        for i in 0..n {
            k.added(0, &key(i));
        }
        k.built(0, build);
        assert_eq!(k.state(0), FilterState::Ready);
        assert!(!k.needs_scan(0));
        assert!((0..n).all(|i| k.may_contain(0, &key(i))));
    }

    #[test]
    fn an_outgrown_building_filter_starts_over_bigger() {
        let mut k = DiskKeys::new(1);
        let build = k.build(0);
        for i in 0..100_000 {
            k.added(0, &key(i));
        }
        assert_eq!(k.state(0), FilterState::Building);
        assert!(k.build(0) > build, "the scan must start over");
        k.built(0, build);
        assert_eq!(
            k.state(0),
            FilterState::Building,
            "a stale scan ends nothing"
        );
        k.built(0, k.build(0));
        assert_eq!(k.state(0), FilterState::Ready);
    }

    #[test]
    fn a_filter_costs_a_few_bytes_per_key() {
        let n = 1_000_000;
        let mut k = DiskKeys::new(1);
        k.presize(0, n);
        for i in 0..n {
            k.added(0, &key(i));
        }
        k.built(0, k.build(0));
        assert_eq!(k.stats.regrown, 0, "a presized filter does not regrow");
        let per_key = k.memory_usage() as f64 / n as f64;
        // A filter sized for 2^33 keys spent ~5.3 bytes per key at this size.
        assert!(per_key < 3.5, "{per_key:.2} bytes per key");
        let fp = (0..100_000)
            .filter(|i| k.may_contain(0, format!("new:{i}").as_bytes()))
            .count();
        assert!(fp < 1_000, "false positives: {fp} in 100,000");
    }

    #[test]
    fn a_disabled_namespace_stays_disabled_after_a_flush() {
        let mut k = DiskKeys::new(2);
        k.disable(1);
        k.added(1, b"p");
        k.cleared(None);
        assert_eq!(k.state(1), FilterState::Disabled);
        assert_eq!(k.state(0), FilterState::Ready);
        assert!(k.may_contain(1, b"anything"));
        assert!(!k.needs_scan(1));
    }
}
