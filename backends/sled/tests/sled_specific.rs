//! Behaviour of the sled backend beyond the conformance kit (which also covers second opens,
//! checkpoints, extreme DB indexes, clear racing with writes, and kill -9).

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
