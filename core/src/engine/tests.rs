//! Engine tests over a store whose reads and writes can be held, to force the races of
//! DESIGN.md §6 (stale reads after DEL, stale loads, saves overtaken by newer writes).

use super::*;
use crate::cache::Residency;
use crate::store::ScanPage;
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
    fail_clears: Mutex<u32>,
}

impl GateStore {
    /// Records of Redis DBs (not kvtier's own, such as key counts).
    fn user_records(&self) -> usize {
        let d = self.data.lock().unwrap();
        d.keys()
            .filter(|(db, _)| *db != crate::keycount::META_DB)
            .count()
    }
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
    fn clear(&self, db: Option<DbIndex>) -> Result<(), StoreError> {
        {
            let mut f = self.fail_clears.lock().unwrap();
            if *f > 0 {
                *f -= 1;
                return Err(StoreError::Io(std::io::Error::other(
                    "injected clear failure",
                )));
            }
        }
        self.data
            .lock()
            .unwrap()
            .retain(|(d, _), _| db.is_some_and(|c| c != *d));
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
    assert!(store.user_records() == 0, "expired record reclaimed");
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
    sweep_while(&mut e, || store.user_records() > 1);
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

/// Lets the expiry sweep run (ticks, polls, and barriers so the tombstones it makes are saved
/// without waiting out the flush delay) while `pending` holds, for up to 5 seconds.
fn sweep_while(e: &mut Engine<V>, mut pending: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while pending() && Instant::now() < deadline {
        e.tick();
        e.poll();
        e.barrier(99);
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits (polling) until the engine has no IO left, collecting events.
fn settle(e: &mut Engine<V>) -> Vec<Event> {
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        events.extend(e.poll());
        if !e.busy() {
            return events;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("engine still busy");
}

#[test]
fn a_flush_inside_an_open_group_neither_panics_nor_splits_it() {
    // MULTI; SET a; FLUSHDB; SET b; EXEC — the transaction's group stays open across the flush.
    let store = Arc::new(GateStore::default());
    store.raw_put(b"old", b"disk");
    let mut e = engine(Arc::clone(&store));
    e.ks.begin_group();
    e.ks.db(0, 0).insert(b"a", V(b"1".to_vec()));
    e.clear(1, Some(0));
    e.ks.db(0, 0).insert(b"b", V(b"2".to_vec()));
    // A barrier asked for mid-transaction must not take the open group out early.
    e.barrier(2);
    // The clear may already be done here (it does not wait for the group); keep its event.
    let mut events = e.poll();
    assert!(events
        .iter()
        .all(|ev| !matches!(ev, Event::BarrierDone { .. })));
    e.ks.end_group();
    events.extend(settle(&mut e));
    assert!(events.iter().any(|ev| matches!(
        ev,
        Event::ClearDone {
            token: 1,
            result: Ok(())
        }
    )));
    assert!(events.iter().any(|ev| matches!(
        ev,
        Event::BarrierDone {
            token: 2,
            result: Ok(())
        }
    )));
    assert_eq!(store.raw_get(b"b"), Some(b"2".to_vec()));
    assert_eq!(store.raw_get(b"a"), None);
    assert_eq!(store.raw_get(b"old"), None);
    assert_eq!(e.ks.dirty_len(), 0);
}

#[test]
fn a_flush_wakes_whoever_waits_for_a_queued_load() {
    let store = Arc::new(GateStore::default());
    let mut e = Engine::new(
        Arc::clone(&store) as Arc<dyn DiskStore>,
        EngineConfig {
            max_inflight_loads: 1,
            io_threads: 1,
            ..EngineConfig::default()
        },
        Arc::new(|| {}),
    );
    store.hold(true, false);
    assert_eq!(e.ensure(0, b"first"), Residency::Unknown);
    // Queued behind the one load in flight.
    assert_eq!(e.ensure(0, b"second"), Residency::Unknown);
    e.clear(9, Some(0));
    let events = e.poll();
    assert!(
        events
            .iter()
            .any(|ev| matches!(ev, Event::KeyReady { key, .. } if key == b"second")),
        "a parked client would wait forever: {events:?}"
    );
    // Asked again, the key is absent (its DB is being flushed), without a disk read.
    assert_eq!(e.ensure(0, b"second"), Residency::KnownAbsent);
    store.hold(false, false);
    settle(&mut e);
}

#[test]
fn a_failed_flush_is_retried_and_only_then_acknowledged() {
    let store = Arc::new(GateStore::default());
    store.raw_put(b"old", b"disk");
    *store.fail_clears.lock().unwrap() = 2;
    let mut e = engine(Arc::clone(&store));
    e.ks.db(0, 0).insert(b"new", V(b"n".to_vec()));
    e.clear(5, Some(0));
    // Writes after the flush are kept (dirty) and saved only after it.
    e.ks.db(0, 0).insert(b"after", V(b"x".to_vec()));
    let mut saw_barrier_failure = false;
    e.barrier(6);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut done = false;
    while Instant::now() < deadline && !done {
        for ev in e.poll() {
            match ev {
                Event::ClearDone { token: 5, result } => {
                    assert!(result.is_ok());
                    done = true;
                }
                Event::BarrierDone { token: 6, result } => saw_barrier_failure = result.is_err(),
                _ => {}
            }
        }
        e.tick();
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(done, "the flush was never retried to success");
    assert!(
        saw_barrier_failure,
        "SAVE during a failing flush must report failure"
    );
    assert_eq!(e.stats.clear_errors, 2);
    assert_eq!(store.raw_get(b"old"), None, "old data would come back");
    assert_eq!(barrier(&mut e, 7), Ok(()));
    assert_eq!(store.raw_get(b"after"), Some(b"x".to_vec()));
    assert_eq!(store.raw_get(b"new"), None);
}

#[test]
fn large_groups_are_linear() {
    // One MSET of 200,000 keys, a rewrite of all of them in one more command (a merge), then a
    // FLUSHDB of the dirty group: quadratic bookkeeping would take hours here.
    let store = Arc::new(GateStore::default());
    let mut e = engine(Arc::clone(&store));
    let n = 200_000;
    for round in 0..2u8 {
        e.ks.begin_group();
        for i in 0..n {
            e.ks.db(0, 0)
                .insert(format!("k{i}").as_bytes(), V(vec![round]));
        }
        e.ks.end_group();
    }
    assert_eq!(e.ks.dirty_len(), n);
    assert_eq!(e.io_stats().pending_groups, 1);
    e.clear(1, None);
    assert_eq!(e.ks.dirty_len(), 0);
    settle(&mut e);
    assert!(store.user_records() == 0);
}

#[test]
fn a_merge_keeps_the_backoff_of_a_failed_group() {
    let store = Arc::new(GateStore::default());
    *store.fail_writes.lock().unwrap() = 1;
    let mut e = engine(Arc::clone(&store));
    e.ks.db(0, 0).insert(b"a", V(b"1".to_vec()));
    assert!(barrier(&mut e, 1).is_err());
    // A new command writes `a` again plus another key: its group merges into the failed one.
    e.ks.begin_group();
    e.ks.db(0, 0).insert(b"a", V(b"2".to_vec()));
    e.ks.db(0, 0).insert(b"b", V(b"3".to_vec()));
    e.ks.end_group();
    let g = e.ks.groups.groups.values().next().expect("one group");
    assert!(g.retry_at.is_some(), "the merge reset the backoff");
    assert_eq!(e.ks.groups.groups.len(), 1);
    assert_eq!(barrier(&mut e, 2), Ok(()));
    assert_eq!(store.raw_get(b"a"), Some(b"2".to_vec()));
}

#[test]
fn freshly_loaded_keys_are_not_the_first_evicted() {
    let store = Arc::new(GateStore::default());
    for i in 0..50 {
        store.raw_put(format!("k{i}").as_bytes(), b"v");
    }
    let mut e = engine(Arc::clone(&store));
    for i in 0..50 {
        load(&mut e, format!("k{i}").as_bytes());
    }
    // Touch nothing; evict half: the oldest loads go first, the newest stay.
    e.ks.evict(25 * (2 + 1 + 64), 50);
    assert!(
        e.ks.db(0, 0).is_resident(b"k49"),
        "the newest load was evicted"
    );
}

#[test]
fn the_sweep_drops_a_page_that_raced_a_flush() {
    let store = Arc::new(GateStore::default());
    {
        let mut d = store.data.lock().unwrap();
        d.insert(
            (0, b"old".to_vec()),
            crate::encoding::encode(0, Some(1), b"expired long ago"),
        );
    }
    let mut e = engine(Arc::clone(&store));
    store.hold(false, false);
    e.tick(); // sends the sweep's scan
    e.clear(3, Some(0));
    let events = settle(&mut e);
    assert!(events
        .iter()
        .any(|ev| matches!(ev, Event::ClearDone { token: 3, .. })));
    // Whatever the sweep saw before the flush, nothing of it is in memory now.
    assert!(!e.ks.db(0, 0).is_resident(b"old"));
    assert!(store.user_records() == 0);
}

fn build_filters(e: &mut Engine<V>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while (0..16).any(|db| e.ks.diskkeys.state(db) != crate::diskkeys::FilterState::Ready) {
        assert!(Instant::now() < deadline, "filters not built");
        e.tick();
        e.poll();
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_built_filter_answers_new_keys_without_a_probe_and_keeps_saved_ones() {
    let store = Arc::new(GateStore::default());
    store.raw_put(b"on-disk", b"v");
    let mut e = engine(Arc::clone(&store));
    build_filters(&mut e);
    // Any disk read would now hang the worker: the answer must come from the filter.
    store.hold(true, false);
    assert_eq!(e.ensure(0, b"new-key"), Residency::KnownAbsent);
    assert!(e.ks.diskkeys.stats.probes_avoided.get() >= 1);
    assert_eq!(e.ensure(0, b"on-disk"), Residency::Unknown);
    store.hold(false, false);
    load(&mut e, b"on-disk");
    // A new key saved and evicted must be found again (no false negative).
    e.ks.db(0, 0).insert(b"fresh", V(b"f".to_vec()));
    assert_eq!(barrier(&mut e, 1), Ok(()));
    e.ks.evict(usize::MAX, 16);
    assert!(!e.ks.db(0, 0).is_resident(b"fresh"));
    assert_eq!(e.ensure(0, b"fresh"), Residency::Unknown);
    load(&mut e, b"fresh");
    assert_eq!(e.ks.db(0, 0).get(b"fresh"), Some(&V(b"f".to_vec())));
    // Deleted and saved: absent again without a probe (or at worst a stale positive).
    e.ks.db(0, 0).remove(b"fresh");
    assert_eq!(barrier(&mut e, 2), Ok(()));
    e.ks.negcache.clear(None);
    store.hold(true, false);
    assert_eq!(e.ensure(0, b"fresh"), Residency::KnownAbsent);
    store.hold(false, false);
}

fn set(e: &mut Engine<V>, key: &[u8], val: &[u8]) {
    e.ks.begin_group();
    e.ks.db(0, now_ms()).insert(key, V(val.to_vec()));
    e.ks.end_group();
}

fn del(e: &mut Engine<V>, key: &[u8]) {
    e.ks.begin_group();
    e.ks.db(0, now_ms()).remove(key);
    e.ks.end_group();
}

/// Waits for the background filter build, so new keys are known absent without a probe.
fn filters_built(e: &mut Engine<V>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !e.ks.diskkeys.ready(0) && Instant::now() < deadline {
        e.tick();
        e.poll();
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(e.ks.diskkeys.ready(0), "filter not built");
}

#[test]
fn a_filter_that_outgrows_its_size_is_rebuilt_without_losing_a_key() {
    let store = Arc::new(GateStore::default());
    let mut e = engine(Arc::clone(&store));
    filters_built(&mut e);
    // An empty store's filter has room for ~62k keys in place: 100k outgrow it.
    let n = 100_000u32;
    let key = |i: u32| format!("k{i}").into_bytes();
    for i in 0..n {
        set(&mut e, &key(i), b"v");
    }
    assert_eq!(barrier(&mut e, 1), Ok(()));
    assert!(e.ks.diskkeys.stats.regrown >= 1, "the filter never outgrew");
    let f = &e.ks.diskkeys;
    assert!((0..n).all(|i| f.may_contain(0, &key(i))), "a key was lost");
    // The scan of the store fills the bigger filter; then it alone answers.
    filters_built(&mut e);
    let f = &e.ks.diskkeys;
    assert!((0..n).all(|i| f.may_contain(0, &key(i))), "a key was lost");
    let absent = (0..10_000u32)
        .filter(|i| !f.may_contain(0, format!("new{i}").as_bytes()))
        .count();
    assert!(absent > 9_500, "{absent} of 10,000 new keys known absent");
    // Reopened, the filter is sized from the key count and does not outgrow while it fills.
    drop(e);
    let mut e = engine(Arc::clone(&store));
    filters_built(&mut e);
    assert_eq!(e.ks.diskkeys.stats.regrown, 0);
    assert!((0..n).all(|i| e.ks.diskkeys.may_contain(0, &key(i))));
}

#[test]
fn key_counts_are_exact_and_survive_a_reopen() {
    let store = Arc::new(GateStore::default());
    let mut e = engine(Arc::clone(&store));
    filters_built(&mut e);
    assert_eq!(e.ks.key_count(0), Some(0));
    for i in 0..10u8 {
        set(&mut e, &[b'k', i], b"v");
    }
    del(&mut e, b"k\x03");
    set(&mut e, b"k\x04", b"changed");
    assert_eq!(e.ks.key_count(0), Some(9), "counted before any save");
    barrier(&mut e, 1).unwrap();
    assert_eq!(e.ks.key_count(0), Some(9), "unchanged by the save");
    del(&mut e, b"k\x05");
    barrier(&mut e, 2).unwrap();
    drop(e);
    let e = engine(Arc::clone(&store));
    assert_eq!(e.ks.key_count(0), Some(8), "persisted with the data");
    assert_eq!(e.ks.key_count(1), Some(0));
}

#[test]
fn a_blind_write_over_a_key_never_loaded_is_resolved_by_its_save() {
    let store = Arc::new(GateStore::default());
    let mut e = engine(Arc::clone(&store));
    filters_built(&mut e);
    set(&mut e, b"old", b"1");
    barrier(&mut e, 1).unwrap();
    drop(e);
    // Reopened: the filter is still building (its scans are held), so "old" may be on disk
    // and is not loaded.
    let mut e = engine(Arc::clone(&store));
    store.hold(true, false);
    set(&mut e, b"old", b"2");
    set(&mut e, b"new", b"1");
    assert_eq!(
        e.ks.key_count(0),
        None,
        "not known until the saves resolve them"
    );
    store.hold(false, false);
    barrier(&mut e, 2).unwrap();
    assert_eq!(e.ks.key_count(0), Some(2), "an overwrite is not a new key");
    drop(e);
    assert_eq!(engine(Arc::clone(&store)).ks.key_count(0), Some(2));
}

#[test]
fn a_flush_makes_the_count_zero_and_a_store_without_counts_is_not_guessed() {
    let store = Arc::new(GateStore::default());
    store.raw_put(b"legacy", b"x");
    let mut e = engine(Arc::clone(&store));
    assert_eq!(e.ks.key_count(0), None, "records but no count: unknown");
    e.clear(7, Some(0));
    poll_until(&mut e, |ev| matches!(ev, Event::ClearDone { token: 7, .. }));
    assert_eq!(e.ks.key_count(0), Some(0));
    filters_built(&mut e);
    set(&mut e, b"a", b"1");
    barrier(&mut e, 1).unwrap();
    drop(e);
    assert_eq!(engine(Arc::clone(&store)).ks.key_count(0), Some(1));
}

mod swapdb;

#[test]
fn cold_keys_asked_together_go_out_as_one_batch_per_worker() {
    let store = Arc::new(GateStore::default());
    for i in 0..100 {
        store.raw_put(format!("k{i}").as_bytes(), b"v");
    }
    let mut e = engine(Arc::clone(&store));
    // Both workers (io_threads 2) take a share of the 100 keys: two jobs of 50, not a job per
    // shrinking remainder (50, 25, 13, … 1).
    for i in 0..100 {
        assert_eq!(e.ensure(0, format!("k{i}").as_bytes()), Residency::Unknown);
    }
    let before = e.stats.load_batches;
    let ready = settle(&mut e)
        .iter()
        .filter(|ev| matches!(ev, Event::KeyReady { .. }))
        .count();
    assert_eq!(ready, 100);
    assert_eq!(e.stats.load_batches - before, 2);
}

#[test]
fn a_read_of_a_key_that_may_be_on_disk_is_counted_as_unresolved() {
    let store = Arc::new(GateStore::default());
    store.raw_put(b"on-disk", b"v");
    let mut e = engine(Arc::clone(&store));
    filters_built(&mut e);
    // A new key the filter rules out, read without a load: a true "absent", not counted.
    assert_eq!(e.db(0, now_ms()).get(b"never-stored"), None);
    assert_eq!(e.cache_report().stats.unresolved_reads, 0);
    // A key the store holds, read before it was loaded: the "absent" answer is a guess.
    assert_eq!(e.db(0, now_ms()).get(b"on-disk"), None);
    assert_eq!(e.cache_report().stats.unresolved_reads, 1);
    // Loaded first, as the server does: found, nothing more counted.
    load(&mut e, b"on-disk");
    assert_eq!(e.db(0, now_ms()).get(b"on-disk"), Some(&V(b"v".to_vec())));
    assert_eq!(e.cache_report().stats.unresolved_reads, 1);
}
