//! SWAPDB: two DBs exchange contents without moving records, durably and in order.

use super::*;

fn set_in(e: &mut Engine<V>, db: DbIndex, key: &[u8], val: &[u8]) {
    e.ks.begin_group();
    e.ks.db(db, now_ms()).insert(key, V(val.to_vec()));
    e.ks.end_group();
}

/// The value of `key` in Redis DB `db`, loading it first if needed.
fn get_in(e: &mut Engine<V>, db: DbIndex, key: &[u8]) -> Option<Vec<u8>> {
    if e.ensure(db, key) == Residency::Unknown {
        poll_until(
            e,
            |ev| matches!(ev, Event::KeyReady { db: d, key: k } if *d == db && k == key),
        );
    }
    assert_ne!(e.ensure(db, key), Residency::Unknown);
    e.ks.db(db, now_ms()).get(key).map(|v| v.0.clone())
}

#[test]
fn swapped_dbs_show_each_others_keys_cold_or_resident_and_after_a_reopen() {
    let store = Arc::new(GateStore::default());
    let mut e = engine(Arc::clone(&store));
    set_in(&mut e, 0, b"cold", b"zero");
    set_in(&mut e, 1, b"cold", b"one");
    set_in(&mut e, 1, b"only1", b"x");
    barrier(&mut e, 1).unwrap();
    drop(e);
    let mut e = engine(Arc::clone(&store));
    set_in(&mut e, 0, b"warm", b"w0");
    let before = (e.db_epoch(0), e.db_epoch(1), e.db_epoch(2));
    e.swap_db(0, 1);
    assert_eq!(get_in(&mut e, 0, b"cold"), Some(b"one".to_vec()));
    assert_eq!(get_in(&mut e, 1, b"cold"), Some(b"zero".to_vec()));
    assert_eq!(get_in(&mut e, 1, b"warm"), Some(b"w0".to_vec()));
    assert_eq!(get_in(&mut e, 0, b"warm"), None);
    assert_ne!(
        before.0,
        e.db_epoch(0),
        "a multi-page scan of DB 0 must start over"
    );
    assert_ne!(before.1, e.db_epoch(1));
    assert_eq!(before.2, e.db_epoch(2));
    // Written after the swap: goes to the namespace DB 0 now shows.
    set_in(&mut e, 0, b"after", b"a");
    barrier(&mut e, 2).unwrap();
    assert_eq!(e.ks.key_count(0), Some(3));
    assert_eq!(e.ks.key_count(1), Some(2));
    drop(e);
    let mut e = engine(Arc::clone(&store));
    assert_eq!(get_in(&mut e, 0, b"cold"), Some(b"one".to_vec()));
    assert_eq!(get_in(&mut e, 0, b"after"), Some(b"a".to_vec()));
    assert_eq!(get_in(&mut e, 1, b"warm"), Some(b"w0".to_vec()));
    assert_eq!(get_in(&mut e, 0, b"only1"), Some(b"x".to_vec()));
    // Swapping back restores the identity.
    e.swap_db(1, 0);
    assert!(e.ks.map.is_identity());
    assert_eq!(get_in(&mut e, 0, b"cold"), Some(b"zero".to_vec()));
}

#[test]
fn a_barrier_after_a_swap_waits_until_the_swap_is_durable() {
    let store = Arc::new(GateStore::default());
    let mut e = engine(Arc::clone(&store));
    store.hold(false, true);
    e.swap_db(2, 3);
    e.barrier(7);
    for _ in 0..20 {
        assert!(
            e.poll()
                .iter()
                .all(|ev| !matches!(ev, Event::BarrierDone { .. })),
            "SAVE must not succeed before the swap is on disk"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    store.hold(false, false);
    poll_until(&mut e, |ev| {
        matches!(
            ev,
            Event::BarrierDone {
                token: 7,
                result: Ok(())
            }
        )
    });
    drop(e);
    let e = engine(Arc::clone(&store));
    assert_eq!(e.store_db(2), 3);
    assert_eq!(e.store_db(3), 2);
}

#[test]
fn a_flush_after_a_swap_empties_the_db_the_client_sees() {
    let store = Arc::new(GateStore::default());
    let mut e = engine(Arc::clone(&store));
    set_in(&mut e, 0, b"k", b"zero");
    set_in(&mut e, 1, b"k", b"one");
    barrier(&mut e, 1).unwrap();
    e.swap_db(0, 1);
    e.clear(2, Some(0));
    poll_until(&mut e, |ev| matches!(ev, Event::ClearDone { token: 2, .. }));
    drop(e);
    let mut e = engine(Arc::clone(&store));
    assert_eq!(get_in(&mut e, 0, b"k"), None);
    assert_eq!(get_in(&mut e, 1, b"k"), Some(b"zero".to_vec()));
    assert_eq!(e.ks.key_count(0), Some(0));
    assert_eq!(e.ks.key_count(1), Some(1));
}

#[test]
fn after_a_reopen_with_a_swap_each_filter_is_built_from_its_own_namespace() {
    let store = Arc::new(GateStore::default());
    let mut e = engine(Arc::clone(&store));
    set_in(&mut e, 0, b"only0", b"a");
    set_in(&mut e, 1, b"only1", b"b");
    e.swap_db(0, 1);
    barrier(&mut e, 1).unwrap();
    drop(e);
    let mut e = engine(Arc::clone(&store));
    build_filters(&mut e);
    // Built from the wrong namespace, the filters would call these keys certainly absent.
    assert_eq!(get_in(&mut e, 0, b"only1"), Some(b"b".to_vec()));
    assert_eq!(get_in(&mut e, 1, b"only0"), Some(b"a".to_vec()));
    assert_eq!(get_in(&mut e, 0, b"only0"), None);
}

#[test]
fn the_expiry_sweep_after_a_swap_deletes_the_expired_record_not_its_namesake() {
    let store = Arc::new(GateStore::default());
    {
        let mut d = store.data.lock().unwrap();
        d.insert(
            (0, b"k".to_vec()),
            crate::encoding::encode(0, Some(1), b"dead"),
        );
        d.insert(
            (1, b"k".to_vec()),
            crate::encoding::encode(0, None, b"alive"),
        );
    }
    let mut e = engine(Arc::clone(&store));
    e.swap_db(0, 1);
    barrier(&mut e, 1).unwrap();
    let dead_on_disk = |s: &GateStore| s.data.lock().unwrap().contains_key(&(0, b"k".to_vec()));
    sweep_while(&mut e, || dead_on_disk(&store));
    assert!(!dead_on_disk(&store), "expired record not reclaimed");
    assert!(store.data.lock().unwrap().contains_key(&(1, b"k".to_vec())));
    assert_eq!(get_in(&mut e, 0, b"k"), Some(b"alive".to_vec()));
    assert_eq!(get_in(&mut e, 1, b"k"), None);
}
