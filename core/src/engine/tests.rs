//! Engine tests over a store whose reads and writes can be held, to force the races of
//! DESIGN.md §6 (stale reads after DEL, stale loads, saves overtaken by newer writes).

use super::*;
use crate::cache::Residency;
use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex};

#[derive(Debug, Clone, PartialEq)]
struct V(Vec<u8>);

impl CacheValue for V {
    fn mem_size(&self) -> usize {
        self.0.len()
    }
    fn type_tag(&self) -> u8 {
        0
    }
    fn encode_payload(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
    fn decode_payload(_: u8, p: &[u8]) -> Result<Self, StoreError> {
        Ok(V(p.to_vec()))
    }
}

type Records = BTreeMap<(DbIndex, Vec<u8>), Vec<u8>>;

/// In-memory store; `hold_reads` / `hold_writes` make IO workers wait until released.
#[derive(Debug, Default)]
struct GateStore {
    data: Mutex<Records>,
    gates: Mutex<(bool, bool)>,
    cv: Condvar,
    fail_writes: Mutex<u32>,
}

impl GateStore {
    fn hold(&self, reads: bool, writes: bool) {
        *self.gates.lock().unwrap() = (reads, writes);
        self.cv.notify_all();
    }
    fn wait(&self, read: bool) {
        let mut g = self.gates.lock().unwrap();
        while (read && g.0) || (!read && g.1) {
            g = self.cv.wait(g).unwrap();
        }
    }
    fn raw_get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.data
            .lock()
            .unwrap()
            .get(&(0, key.to_vec()))
            .map(|b| crate::encoding::decode(b).unwrap().payload.to_vec())
    }
    fn raw_put(&self, key: &[u8], value: &[u8]) {
        self.data
            .lock()
            .unwrap()
            .insert((0, key.to_vec()), crate::encoding::encode(0, None, value));
    }
}

impl DiskStore for GateStore {
    fn get(&self, db: DbIndex, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.wait(true);
        Ok(self.data.lock().unwrap().get(&(db, key.to_vec())).cloned())
    }
    fn write(&self, batch: &[crate::WriteOp]) -> Result<(), StoreError> {
        self.wait(false);
        {
            let mut f = self.fail_writes.lock().unwrap();
            if *f > 0 {
                *f -= 1;
                return Err(StoreError::Io(std::io::Error::other("injected failure")));
            }
        }
        let mut d = self.data.lock().unwrap();
        for op in batch {
            match op {
                crate::WriteOp::Put { db, key, value } => {
                    d.insert((*db, key.clone()), value.clone());
                }
                crate::WriteOp::Delete { db, key } => {
                    d.remove(&(*db, key.clone()));
                }
            }
        }
        Ok(())
    }
    fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }
    fn scan(&self, db: DbIndex, cursor: &[u8], limit: usize) -> Result<ScanPage, StoreError> {
        let d = self.data.lock().unwrap();
        let keys: Vec<Vec<u8>> = d
            .keys()
            .filter(|(kd, k)| *kd == db && k.as_slice() > cursor)
            .take(limit)
            .map(|(_, k)| k.clone())
            .collect();
        let next = (keys.len() == limit)
            .then(|| keys.last().cloned())
            .flatten();
        Ok(ScanPage { keys, next })
    }
    fn clear(&self, _: Option<DbIndex>) -> Result<(), StoreError> {
        self.data.lock().unwrap().clear();
        Ok(())
    }
    fn name(&self) -> &'static str {
        "gate"
    }
}

fn engine(store: Arc<GateStore>) -> Engine<V> {
    let cfg = EngineConfig {
        flush_delay: Duration::from_secs(3600),
        io_threads: 2,
        ..EngineConfig::default()
    };
    Engine::new(store, cfg, Arc::new(|| {}))
}

/// Polls until `pred` holds for an event (or 5 s pass).
fn poll_until(e: &mut Engine<V>, mut pred: impl FnMut(&Event) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if e.poll().iter().any(&mut pred) {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("event not seen in time");
}

fn barrier(e: &mut Engine<V>, token: u64) -> Result<(), String> {
    e.barrier(token);
    let mut res = None;
    poll_until(e, |ev| match ev {
        Event::BarrierDone { token: t, result } if *t == token => {
            res = Some(result.clone());
            true
        }
        _ => false,
    });
    res.unwrap()
}

fn load(e: &mut Engine<V>, key: &[u8]) {
    if e.ensure(0, key) == Residency::Unknown {
        poll_until(
            e,
            |ev| matches!(ev, Event::KeyReady { key: k, .. } if k == key),
        );
    }
}

#[test]
fn del_then_get_before_delete_is_on_disk_does_not_resurrect() {
    let store = Arc::new(GateStore::default());
    store.raw_put(b"k", b"old");
    let mut e = engine(Arc::clone(&store));
    load(&mut e, b"k");
    assert_eq!(e.ks.db(0, 0).get(b"k"), Some(&V(b"old".to_vec())));
    store.hold(false, true);
    assert!(e.ks.db(0, 0).remove(b"k").is_some());
    e.barrier(1); // the delete is now in flight, held by the store
                  // Memory must answer "absent" without a disk read that would find the old value.
    assert_eq!(e.ensure(0, b"k"), Residency::Resident);
    assert_eq!(e.ks.db(0, 0).get(b"k"), None);
    store.hold(false, false);
    poll_until(&mut e, |ev| matches!(ev, Event::BarrierDone { .. }));
    assert_eq!(store.raw_get(b"k"), None);
    // After the delete reached disk the key is known absent: no load either.
    assert_eq!(e.ensure(0, b"k"), Residency::KnownAbsent);
}

#[test]
fn a_load_finishing_after_a_write_is_dropped() {
    let store = Arc::new(GateStore::default());
    store.raw_put(b"k", b"disk");
    let mut e = engine(Arc::clone(&store));
    store.hold(true, false);
    assert_eq!(e.ensure(0, b"k"), Residency::Unknown);
    // While the load is held, a command overwrites the key (SET needs no load in Redis terms).
    e.ks.db(0, 0).insert(b"k", V(b"new".to_vec()));
    store.hold(false, false);
    poll_until(&mut e, |ev| matches!(ev, Event::KeyReady { .. }));
    assert_eq!(e.ks.db(0, 0).get(b"k"), Some(&V(b"new".to_vec())));
    barrier(&mut e, 1).unwrap();
    assert_eq!(store.raw_get(b"k"), Some(b"new".to_vec()));
}

#[test]
fn a_load_finishing_after_a_delete_is_dropped() {
    let store = Arc::new(GateStore::default());
    store.raw_put(b"k", b"disk");
    let mut e = engine(Arc::clone(&store));
    store.hold(true, false);
    assert_eq!(e.ensure(0, b"k"), Residency::Unknown);
    e.ks.db(0, 0).insert(b"k", V(b"tmp".to_vec()));
    e.ks.db(0, 0).remove(b"k");
    store.hold(false, false);
    poll_until(&mut e, |ev| matches!(ev, Event::KeyReady { .. }));
    assert_eq!(e.ks.db(0, 0).get(b"k"), None);
}

#[test]
fn a_save_overtaken_by_a_newer_write_leaves_the_key_dirty() {
    let store = Arc::new(GateStore::default());
    let mut e = engine(Arc::clone(&store));
    e.ks.db(0, 0).insert(b"k", V(b"v1".to_vec()));
    store.hold(false, true);
    e.barrier(1);
    // v1's save is in flight; a newer write must not be marked clean by its completion.
    e.ks.db(0, 0).insert(b"k", V(b"v2".to_vec()));
    store.hold(false, false);
    poll_until(&mut e, |ev| {
        matches!(ev, Event::BarrierDone { token: 1, .. })
    });
    assert_eq!(store.raw_get(b"k"), Some(b"v1".to_vec()));
    assert_eq!(e.ks.dirty_len(), 1, "v2 must still be dirty");
    // Clean keys can be evicted; a dirty one must not be.
    e.ks.evict(usize::MAX, 5);
    assert_eq!(e.ks.db(0, 0).get(b"k"), Some(&V(b"v2".to_vec())));
    barrier(&mut e, 2).unwrap();
    assert_eq!(store.raw_get(b"k"), Some(b"v2".to_vec()));
    assert_eq!(e.ks.dirty_len(), 0);
}

#[test]
fn failed_saves_are_retried_and_reported() {
    let store = Arc::new(GateStore::default());
    let mut e = engine(Arc::clone(&store));
    *store.fail_writes.lock().unwrap() = 1;
    e.ks.db(0, 0).insert(b"k", V(b"v".to_vec()));
    assert!(barrier(&mut e, 1).is_err(), "SAVE must report the failure");
    assert_eq!(e.stats.save_errors, 1);
    assert_eq!(e.ks.dirty_len(), 1, "the key stays dirty");
    // The retry happens after a backoff, without anyone asking.
    let deadline = Instant::now() + Duration::from_secs(5);
    while store.raw_get(b"k").is_none() && Instant::now() < deadline {
        e.tick();
        e.poll();
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(store.raw_get(b"k"), Some(b"v".to_vec()));
}

#[test]
fn keys_written_by_one_group_are_saved_in_one_batch() {
    let store = Arc::new(GateStore::default());
    let mut e = engine(Arc::clone(&store));
    e.ks.begin_group();
    for k in [&b"a"[..], b"b", b"c"] {
        e.ks.db(0, 0).insert(k, V(k.to_vec()));
    }
    e.ks.end_group();
    // A later single-key write to one of them joins (merges with) the same group.
    e.ks.db(0, 0).insert(b"b", V(b"b2".to_vec()));
    e.ks.db(0, 0).insert(b"z", V(b"z".to_vec()));
    assert_eq!(e.io_stats().pending_groups, 2);
    barrier(&mut e, 1).unwrap();
    assert_eq!(e.stats.keys_saved, 4);
    assert_eq!(store.raw_get(b"b"), Some(b"b2".to_vec()));
}

#[test]
fn eviction_only_takes_clean_keys_and_loads_bring_them_back() {
    let store = Arc::new(GateStore::default());
    let mut e = engine(Arc::clone(&store));
    for i in 0..100 {
        e.ks.db(0, 0)
            .insert(format!("k{i}").as_bytes(), V(vec![b'x'; 100]));
    }
    assert_eq!(e.ks.evict(usize::MAX, 5), 0, "dirty keys are never evicted");
    barrier(&mut e, 1).unwrap();
    assert!(e.ks.evict(5_000, 5) >= 5_000);
    let resident = e.ks.resident_len(0);
    assert!(resident < 100);
    for i in 0..100 {
        let k = format!("k{i}");
        load(&mut e, k.as_bytes());
        assert_eq!(e.ks.db(0, 0).get(k.as_bytes()), Some(&V(vec![b'x'; 100])));
    }
}

#[test]
fn expired_keys_on_disk_are_never_served_and_get_deleted() {
    let store = Arc::new(GateStore::default());
    store.data.lock().unwrap().insert(
        (0, b"old".to_vec()),
        crate::encoding::encode(0, Some(1), b"stale"),
    );
    let mut e = engine(Arc::clone(&store));
    load(&mut e, b"old");
    assert_eq!(e.ks.db(0, now_ms()).get(b"old"), None);
    barrier(&mut e, 1).unwrap();
    assert!(
        store.data.lock().unwrap().is_empty(),
        "expired record reclaimed"
    );
}

#[test]
fn flush_discards_a_load_that_raced_it() {
    let store = Arc::new(GateStore::default());
    store.raw_put(b"k", b"disk");
    let mut e = engine(Arc::clone(&store));
    store.hold(true, false);
    assert_eq!(e.ensure(0, b"k"), Residency::Unknown);
    e.clear(7, Some(0));
    store.hold(false, false);
    poll_until(&mut e, |ev| matches!(ev, Event::ClearDone { token: 7, .. }));
    for _ in 0..50 {
        e.poll();
        std::thread::sleep(Duration::from_millis(2));
    }
    load(&mut e, b"k");
    assert_eq!(e.ks.db(0, 0).get(b"k"), None);
}

#[test]
fn the_sweep_deletes_expired_keys_nobody_reads() {
    let store = Arc::new(GateStore::default());
    {
        let mut d = store.data.lock().unwrap();
        d.insert(
            (0, b"dead".to_vec()),
            crate::encoding::encode(0, Some(1), b"x"),
        );
        d.insert(
            (0, b"alive".to_vec()),
            crate::encoding::encode(0, None, b"y"),
        );
    }
    let mut e = engine(Arc::clone(&store));
    let deadline = Instant::now() + Duration::from_secs(5);
    while store.data.lock().unwrap().len() > 1 && Instant::now() < deadline {
        e.tick();
        e.poll();
        // Tombstones of expired keys are saved at the flush delay; force it.
        e.barrier(99);
        std::thread::sleep(Duration::from_millis(5));
    }
    let d = store.data.lock().unwrap();
    assert!(d.contains_key(&(0, b"alive".to_vec())));
    assert!(
        !d.contains_key(&(0, b"dead".to_vec())),
        "expired key not reclaimed"
    );
    drop(d);
    // The live key was probed but not cached.
    assert!(!e.ks.db(0, 0).is_resident(b"alive"));
}
