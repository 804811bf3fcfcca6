//! Behaviour of the sled backend beyond the conformance kit.

use kvtier_core::testkit::scan_all;
use kvtier_core::{DiskStore, StoreError, WriteOp};
use kvtier_sled::{SledOptions, SledStore};

fn put(db: u32, key: &[u8], value: &[u8]) -> WriteOp {
    WriteOp::Put {
        db,
        key: key.to_vec(),
        value: value.to_vec(),
    }
}

#[test]
fn options_are_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let options = SledOptions {
        cache_capacity_bytes: 3 << 20,
    };
    let s = SledStore::open_with(dir.path(), options.clone()).unwrap();
    assert_eq!(s.options(), &options);
    assert_eq!(s.memory_usage(), Some(3 << 20));
    assert_eq!(s.name(), "sled");
    assert!(s.atomic_batches());
    assert_eq!(s.approximate_len(0), None, "sled's len() is a full scan");
    let d = SledStore::open(tempfile::tempdir().unwrap().path().join("x")).unwrap();
    assert_eq!(d.options(), &SledOptions::default());
}

#[test]
fn reopen_after_drop_keeps_synced_multi_db_batch() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = SledStore::open(dir.path()).unwrap();
        s.write(&[
            put(0, b"a", b"0"),
            put(7, b"a", b"7"),
            put(7, b"b", b"x"),
            WriteOp::Delete {
                db: 7,
                key: b"b".to_vec(),
            },
        ])
        .unwrap();
        s.sync().unwrap();
    }
    let s = SledStore::open(dir.path()).unwrap();
    assert_eq!(s.get(0, b"a").unwrap().as_deref(), Some(&b"0"[..]));
    assert_eq!(s.get(7, b"a").unwrap().as_deref(), Some(&b"7"[..]));
    assert_eq!(s.get(7, b"b").unwrap(), None);
    assert_eq!(scan_all(&s, 7, 1), vec![b"a".to_vec()]);
}

#[test]
fn second_open_of_the_same_directory_fails() {
    let dir = tempfile::tempdir().unwrap();
    let _s = SledStore::open(dir.path()).unwrap();
    assert!(SledStore::open(dir.path()).is_err());
}

#[test]
fn scan_is_in_key_order_and_handles_the_empty_key() {
    let dir = tempfile::tempdir().unwrap();
    let s = SledStore::open(dir.path()).unwrap();
    let keys: Vec<&[u8]> = vec![b"", b"\0", b"a", b"ab", b"b", b"\xff"];
    let batch: Vec<WriteOp> = keys.iter().rev().map(|k| put(2, k, b"v")).collect();
    s.write(&batch).unwrap();
    for limit in [1, 2, 6, 7] {
        let got = scan_all(&s, 2, limit);
        let want: Vec<Vec<u8>> = keys.iter().map(|k| k.to_vec()).collect();
        assert_eq!(got, want, "limit {limit}");
    }
    assert!(matches!(
        s.scan(2, b"not a cursor", 10),
        Err(StoreError::InvalidArgument(_))
    ));
}

#[test]
fn clear_then_reuse_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = SledStore::open(dir.path()).unwrap();
        s.write(&[put(1, b"old", b"1"), put(2, b"keep", b"2")])
            .unwrap();
        s.clear(Some(1)).unwrap();
        s.write(&[put(1, b"new", b"n")]).unwrap();
        s.sync().unwrap();
    }
    let s = SledStore::open(dir.path()).unwrap();
    assert_eq!(s.get(1, b"old").unwrap(), None);
    assert_eq!(s.get(1, b"new").unwrap().as_deref(), Some(&b"n"[..]));
    assert_eq!(s.get(2, b"keep").unwrap().as_deref(), Some(&b"2"[..]));
    s.clear(None).unwrap();
    drop(s);
    let s = SledStore::open(dir.path()).unwrap();
    assert!(scan_all(&s, 1, 10).is_empty());
    assert!(scan_all(&s, 2, 10).is_empty());
}

#[test]
fn checkpoint_reopens_with_the_same_data() {
    let dir = tempfile::tempdir().unwrap();
    let s = SledStore::open(dir.path().join("live")).unwrap();
    let batch: Vec<WriteOp> = (0..3000u32)
        .map(|i| put(i % 3, format!("k{i}").as_bytes(), &i.to_be_bytes()))
        .collect();
    s.write(&batch).unwrap();
    let dest = dir.path().join("copy");
    s.checkpoint(&dest).unwrap();
    assert!(s.checkpoint(&dest).is_err(), "destination must not exist");
    s.write(&[put(0, b"after", b"x")]).unwrap();
    let c = SledStore::open(&dest).unwrap();
    for db in 0..3 {
        assert_eq!(
            scan_all(&c, db, 100),
            scan_all(&s, db, 100)
                .into_iter()
                .filter(|k| k != b"after")
                .collect::<Vec<_>>()
        );
    }
    assert_eq!(c.get(1, b"k1").unwrap(), Some(1u32.to_be_bytes().to_vec()));
    assert_eq!(c.get(0, b"after").unwrap(), None);
}

#[test]
fn clear_racing_with_writes_and_scans() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(SledStore::open(dir.path()).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..3u32)
        .map(|t| {
            let s = Arc::clone(&s);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut i = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let k = format!("{t}:{}", i % 100).into_bytes();
                    // Cross-DB batches take the transaction path.
                    s.write(&[put(1, &k, b"v"), put(t + 2, &k, b"v")]).unwrap();
                    let _ = s.get(1, &k).unwrap();
                    if i % 50 == 49 {
                        let _ = scan_all(&*s, 1, 7);
                    }
                    i += 1;
                }
            })
        })
        .collect();
    for i in 0..20 {
        s.clear(if i % 4 == 3 { None } else { Some(1) }).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    s.write(&[put(1, b"last", b"x")]).unwrap();
    s.sync().unwrap();
    let keys = scan_all(&*s, 1, 1000);
    drop(s);
    let s = SledStore::open(dir.path()).unwrap();
    assert_eq!(scan_all(&s, 1, 1000), keys);
}
