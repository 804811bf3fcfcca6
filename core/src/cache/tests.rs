//! Cache bookkeeping: save groups and their merging.

use super::Keyspace;
use crate::store::StoreError;
use crate::value::CacheValue;

#[derive(Debug, Clone, PartialEq)]
struct V(u8);

impl CacheValue for V {
    fn mem_size(&self) -> usize {
        1
    }
    fn type_tag(&self) -> u8 {
        0
    }
    fn encode_payload(&self, out: &mut Vec<u8>) {
        out.push(self.0);
    }
    fn decode_payload(_: u8, p: &[u8]) -> Result<Self, StoreError> {
        Ok(V(p[0]))
    }
}

#[test]
fn a_command_touching_keys_of_two_groups_merges_them_into_the_older() {
    let mut ks: Keyspace<V> = Keyspace::new(2, 10);
    ks.db(0, 0).insert(b"a", V(1));
    ks.db(1, 0).insert(b"b", V(2));
    assert_eq!(ks.groups.groups.len(), 2);
    let oldest = ks.groups.min_pending().unwrap();
    ks.begin_group();
    ks.db(1, 0).insert(b"b", V(3));
    ks.db(0, 0).insert(b"a", V(4));
    ks.db(0, 0).insert(b"c", V(5));
    ks.end_group();
    assert_eq!(ks.groups.groups.len(), 1, "one batch for all three keys");
    let g = ks.groups.groups.get(oldest).expect("oldest group");
    assert_eq!(g.keys.len(), 3);
    assert_eq!(ks.dirty_len(), 3);
    for (d, k) in [(0, &b"a"[..]), (1, b"b"), (0, b"c")] {
        assert_eq!(ks.dbs[d].get(k).unwrap().group, oldest);
    }
}

#[test]
fn deletes_are_tombstones_until_saved() {
    let mut ks: Keyspace<V> = Keyspace::new(1, 10);
    ks.db(0, 0).insert(b"k", V(1));
    assert_eq!(ks.db(0, 0).remove(b"k"), Some(V(1)));
    assert!(ks.db(0, 0).is_resident(b"k"));
    assert_eq!(ks.db(0, 0).get(b"k"), None);
    assert_eq!(ks.residency(0, b"k"), super::Residency::Resident);
    // A tombstone is dirty: never evicted before its delete is saved.
    assert_eq!(ks.evict(usize::MAX, 5), 0);
}

#[test]
fn expired_values_read_as_absent_and_become_tombstones() {
    let mut ks: Keyspace<V> = Keyspace::new(1, 10);
    ks.db(0, 1000).insert_with_expire(b"k", V(1), Some(1500));
    assert_eq!(ks.db(0, 1499).get(b"k"), Some(&V(1)));
    assert_eq!(ks.db(0, 1500).get(b"k"), None);
    assert_eq!(ks.stats.expired_keys, 1);
    ks.db(0, 0).insert_with_expire(b"j", V(1), Some(10));
    assert_eq!(ks.active_expire(20, 10), 1);
}

#[test]
fn the_byte_estimate_is_exact_for_small_dbs_and_close_for_large_ones() {
    let mut ks: Keyspace<V> = Keyspace::new(2, 10);
    ks.db(0, 0).insert(b"k", V(1));
    let one = ks.estimate_bytes(16);
    assert_eq!(one, 1 + V(1).mem_size() + 64);
    for i in 0..10_000u32 {
        ks.db(1, 0).insert(&i.to_be_bytes(), V(i as u8));
    }
    let exact = one + 10_000 * (4 + V(0).mem_size() + 64);
    let est = ks.estimate_bytes(64);
    assert!(est.abs_diff(exact) < exact / 10, "{est} vs {exact}");
}

/// A value with pages in the tests below: tag 1 stands for a manifest.
#[derive(Debug, Clone, PartialEq)]
struct P(u8, bool);

impl CacheValue for P {
    fn mem_size(&self) -> usize {
        1
    }
    fn type_tag(&self) -> u8 {
        u8::from(self.1)
    }
    fn encode_payload(&self, out: &mut Vec<u8>) {
        out.push(self.0);
    }
    fn decode_payload(t: u8, p: &[u8]) -> Result<Self, StoreError> {
        Ok(P(p[0], t == 1))
    }
    fn owns_pages(&self) -> bool {
        self.1
    }
}

#[test]
fn manifests_are_handed_back_when_deleted_replaced_or_expired() {
    let mut ks: Keyspace<P> = Keyspace::new(1, 10);
    ks.db(0, 0).insert(b"a", P(1, true));
    ks.db(0, 0).insert(b"plain", P(9, false));
    assert!(
        ks.take_released().is_empty(),
        "a new value releases nothing"
    );
    ks.db(0, 0).insert(b"a", P(2, true));
    ks.db(0, 0).remove(b"plain");
    let got: Vec<P> = ks.take_released().iter().map(|v| (**v).clone()).collect();
    assert_eq!(got, vec![P(1, true)], "the overwritten manifest only");
    ks.db(0, 0).set_expire(b"a", Some(5));
    assert!(!ks.db(0, 10).contains(b"a"));
    let got: Vec<P> = ks.take_released().iter().map(|v| (**v).clone()).collect();
    assert_eq!(got, vec![P(2, true)], "the expired manifest");
}

#[test]
fn pages_live_past_the_redis_dbs_and_are_never_touched_keys() {
    let mut ks: Keyspace<V> = Keyspace::new(2, 10);
    assert_eq!((ks.databases(), ks.pages_db()), (2, 2));
    ks.track_touched(true);
    let pages = ks.pages_db();
    ks.db(pages, 0).insert_new(b"page", V(1));
    ks.db(0, 0).insert(b"key", V(2));
    assert_eq!(ks.take_touched(), vec![(0, b"key".to_vec())]);
    // A page created new is known absent from the store: its save needs no read first.
    assert_eq!(ks.dbs[2].get(&b"page"[..]).unwrap().on_disk, Some(false));
    ks.db(pages, 0).delete_blind(b"never-loaded");
    let e = ks.dbs[2].get(&b"never-loaded"[..]).unwrap();
    assert!(
        e.value.is_none() && e.dirty,
        "a blind delete is a dirty tombstone"
    );
    assert_eq!(ks.peek(0, b"key"), Some(&V(2)));
}

/// An entry per resident key (plus up to as much again in spare capacity): it must stay
/// small. 56 bytes before the fields were narrowed.
#[test]
fn an_entry_takes_forty_bytes() {
    assert!(std::mem::size_of::<super::Entry<V>>() <= 40);
}

/// A time to live survives the narrowed entry, the largest one a client can give included,
/// and "no expiry" stays distinct from every real time.
#[test]
fn expire_times_round_trip() {
    let mut ks: Keyspace<V> = Keyspace::new(1, 10);
    let mut db = ks.db(0, 1_000);
    db.insert_with_expire(b"k", V(1), Some(5_000));
    assert_eq!(db.expire_at(b"k"), Some(5_000));
    db.insert_with_expire(b"far", V(1), Some(i64::MAX));
    assert_eq!(db.expire_at(b"far"), Some(i64::MAX - 1));
    db.insert(b"none", V(1));
    assert_eq!(db.expire_at(b"none"), None);
    assert!(db.set_expire(b"none", Some(2_000)));
    assert_eq!(db.expire_at(b"none"), Some(2_000));
    assert!(db.set_expire(b"none", None));
    assert_eq!(db.expire_at(b"none"), None);
    let mut later = ks.db(0, 5_000);
    assert!(later.get(b"k").is_none(), "expired at 5000");
    assert!(later.get(b"far").is_some());
    assert!(later.get(b"none").is_some());
}

/// The request path trusts `resident_pages` to say a paged value is wholly in memory: the
/// count follows pages gaining and losing their values, and only in the page namespace.
#[test]
fn resident_pages_are_counted_per_group() {
    let mut ks: Keyspace<V> = Keyspace::new(1, 10);
    let pages = ks.pages_db();
    let page = |group: u64, id: u32| {
        let mut k = group.to_be_bytes().to_vec();
        k.extend_from_slice(&id.to_be_bytes());
        k
    };
    let mut db = ks.db(pages, 0);
    for id in 0..3 {
        db.insert_new(&page(7, id), V(1));
    }
    db.insert_new(&page(8, 0), V(1));
    db.insert(&page(7, 0), V(2)); // an overwrite is not a new page
    assert_eq!((ks.resident_pages(7), ks.resident_pages(8)), (3, 1));
    let mut db = ks.db(pages, 0);
    db.remove(&page(7, 1));
    db.delete_blind(&page(7, 2));
    db.delete_blind(&page(7, 9)); // never resident
    assert_eq!(ks.resident_pages(7), 1);
    ks.db(pages, 0).insert(&page(7, 1), V(3)); // a tombstone given a value again
    assert_eq!(ks.resident_pages(7), 2);
    // A Redis DB's keys are not pages, whatever their shape.
    ks.db(0, 0).insert(&page(9, 0), V(1));
    assert_eq!(ks.resident_pages(9), 0);
    ks.clear(Some(pages));
    assert_eq!((ks.resident_pages(7), ks.resident_pages(8)), (0, 0));
}
