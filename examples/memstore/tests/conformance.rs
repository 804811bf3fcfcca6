//! The whole conformance kit, plus two tests of what is specific to this backend.

use kvtier_core::{DiskStore, StoreError, WriteOp};
use kvtier_example_memstore::MemStore;

// One line runs every test of the kit against `MemStore`.
kvtier_core::conformance_tests!(|dir: &std::path::Path| MemStore::open(dir));

fn put(key: &[u8], value: &[u8]) -> WriteOp {
    WriteOp::Put {
        db: 0,
        key: key.to_vec(),
        value: value.to_vec(),
    }
}

#[test]
fn only_synced_writes_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = MemStore::open(dir.path()).unwrap();
        s.write(&[put(b"synced", b"1")]).unwrap();
        s.sync().unwrap();
        s.write(&[put(b"not synced", b"2")]).unwrap();
        // Dropped without sync: like a crash, the last write is lost.
    }
    let s = MemStore::open(dir.path()).unwrap();
    assert_eq!(s.get(0, b"synced").unwrap(), Some(b"1".to_vec()));
    assert_eq!(s.get(0, b"not synced").unwrap(), None);
}

#[test]
fn a_damaged_snapshot_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = MemStore::open(dir.path()).unwrap();
        s.write(&[put(b"k", b"some value")]).unwrap();
        s.sync().unwrap();
    }
    let path = dir.path().join("snapshot");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 6;
    bytes[last] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
    assert!(matches!(
        MemStore::open(dir.path()),
        Err(StoreError::Corruption(_))
    ));
}
