//! Behaviour of the RocksDB backend beyond the conformance kit (which also covers second opens,
//! checkpoints, extreme DB indexes, clear racing with writes, and kill -9).

use kvtier_core::testkit::scan_all;
use kvtier_core::{DbIndex, DiskStore, StoreError, WriteOp};
use kvtier_rocksdb::{RocksOptions, RocksStore};
use std::path::Path;

fn put(db: DbIndex, key: &[u8], value: &[u8]) -> WriteOp {
    WriteOp::Put {
        db,
        key: key.to_vec(),
        value: value.to_vec(),
    }
}

/// The text of the newest OPTIONS file RocksDB wrote into `dir`.
fn options_file(dir: &Path) -> String {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("OPTIONS-"))
        .collect();
    names.sort_by_key(|n| n["OPTIONS-".len()..].parse::<u64>().unwrap_or(0));
    std::fs::read_to_string(dir.join(names.last().expect("an OPTIONS file"))).unwrap()
}

#[test]
fn defaults() {
    let d = RocksOptions::default();
    assert_eq!(d.block_cache_bytes, 64 << 20);
    assert_eq!(d.write_buffer_bytes, 16 << 20);
    assert_eq!(d.bloom_bits_per_key, 10.0);
    assert!(d.compression);
    assert!(d.low_priority_compactions);
    let dir = tempfile::tempdir().unwrap();
    let s = RocksStore::open(dir.path()).unwrap();
    assert_eq!(s.options(), &d);
    let text = options_file(dir.path());
    assert!(text.contains("compression=kLZ4Compression"), "{text}");
    assert!(text.contains("bottommost_compression=kZSTD"), "{text}");
    assert!(text.contains("filter_policy=bloomfilter"), "{text}");
}

#[test]
fn options_are_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let options = RocksOptions {
        block_cache_bytes: 3 << 20,
        write_buffer_bytes: 5 << 20,
        bloom_bits_per_key: 0.0,
        compression: false,
        low_priority_compactions: false,
    };
    let s = RocksStore::open_with(dir.path(), options.clone()).unwrap();
    assert_eq!(s.options(), &options);
    assert_eq!(
        s.property("rocksdb.block-cache-capacity").unwrap(),
        Some(3 << 20)
    );
    let text = options_file(dir.path());
    assert!(
        text.contains(&format!("write_buffer_size={}", 5 << 20)),
        "{text}"
    );
    assert!(text.contains("compression=kNoCompression"), "{text}");
    assert!(text.contains("filter_policy=nullptr"), "{text}");
    assert_eq!(s.name(), "rocksdb");
    assert!(s.atomic_batches());
}

/// Level 0 is compacted by volume, not by RocksDB's fixed count of 4 files: with the small
/// memtables a small `maxmemory` leaves, 4 files rewrote the whole store every few MiB.
#[test]
fn level0_compaction_follows_memtable_size() {
    for (buffer, trigger, slowdown, stop) in [
        (1usize << 20, 8, 24, 40),
        (2 << 20, 4, 20, 36),
        (16 << 20, 4, 20, 36),
        (64 << 20, 4, 20, 36),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let options = RocksOptions {
            write_buffer_bytes: buffer,
            ..RocksOptions::default()
        };
        drop(RocksStore::open_with(dir.path(), options).unwrap());
        let text = options_file(dir.path());
        for (name, want) in [
            ("level0_file_num_compaction_trigger", trigger),
            ("level0_slowdown_writes_trigger", slowdown),
            ("level0_stop_writes_trigger", stop),
        ] {
            assert!(
                text.contains(&format!("{name}={want}\n")),
                "{buffer}: {name} not {want}"
            );
        }
    }
}

#[test]
fn memory_usage_counts_memtables() {
    let dir = tempfile::tempdir().unwrap();
    let s = RocksStore::open(dir.path()).unwrap();
    let before = s.memory_usage().unwrap();
    let value = vec![7u8; 1 << 20];
    let batch: Vec<WriteOp> = (0..4u32)
        .map(|i| put(0, &i.to_be_bytes(), &value))
        .collect();
    s.write(&batch).unwrap();
    let after = s.memory_usage().unwrap();
    assert!(after >= before + (4 << 20), "{before} -> {after}");
}

#[test]
fn reopen_after_drop_without_sync() {
    // Writes go through the WAL, so a closed (or killed) process keeps them without `sync`.
    let dir = tempfile::tempdir().unwrap();
    {
        let s = RocksStore::open(dir.path()).unwrap();
        s.write(&[put(0, b"a", b"0"), put(9, b"a", b"9")]).unwrap();
    }
    let s = RocksStore::open(dir.path()).unwrap();
    assert_eq!(s.get(0, b"a").unwrap().as_deref(), Some(&b"0"[..]));
    assert_eq!(s.get(9, b"a").unwrap().as_deref(), Some(&b"9"[..]));
}

#[test]
fn scan_is_in_key_order_and_handles_the_empty_key() {
    let dir = tempfile::tempdir().unwrap();
    let s = RocksStore::open(dir.path()).unwrap();
    let keys: Vec<&[u8]> = vec![b"", b"\0", b"\0\0", b"a", b"ab", b"b", b"\xff"];
    let batch: Vec<WriteOp> = keys.iter().rev().map(|k| put(2, k, b"v")).collect();
    s.write(&batch).unwrap();
    s.write(&[put(1, b"zz", b"other db"), put(3, b"", b"other db")])
        .unwrap();
    for limit in [1, 2, 7, 8] {
        let got = scan_all(&s, 2, limit);
        let want: Vec<Vec<u8>> = keys.iter().map(|k| k.to_vec()).collect();
        assert_eq!(got, want, "limit {limit}");
    }
    assert!(matches!(
        s.scan(2, b"not a cursor", 10),
        Err(StoreError::InvalidArgument(_))
    ));
}

#[cfg(target_os = "linux")]
#[test]
fn compactions_run_at_the_lowest_cpu_priority() {
    let threads = || kvtier_testutil::thread_nices(std::process::id());
    let base = threads()
        .into_iter()
        .find(|(n, _)| !n.starts_with("rocksdb"))
        .map_or(0, |(_, n)| n);
    let dir = tempfile::tempdir().unwrap();
    let options = RocksOptions {
        write_buffer_bytes: 1 << 20,
        compression: false,
        ..RocksOptions::default()
    };
    let s = RocksStore::open_with(dir.path(), options).unwrap();
    // A compaction thread lowers itself when it takes its first job: enough memtables for
    // level 0 to reach its trigger (8 files of 1 MiB).
    let value = vec![7u8; 1024];
    for batch in 0..24u32 {
        let ops: Vec<WriteOp> = (0..1024u32)
            .map(|i| put(0, format!("k{batch:03}:{i:05}").as_bytes(), &value))
            .collect();
        s.write(&ops).unwrap();
    }
    s.sync().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let low: Vec<i64> = threads()
            .into_iter()
            .filter(|(n, _)| n.starts_with("rocksdb:low"))
            .map(|(_, n)| n)
            .collect();
        if low.contains(&19.max(base)) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no compaction thread lowered its priority: {low:?} (base {base})"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
