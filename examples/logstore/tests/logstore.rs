//! Behaviour specific to the log-structured store: torn tails, compaction, the hint file.

use kvtier_core::testkit::scan_all;
use kvtier_core::{DbIndex, DiskStore, StoreError, WriteOp};
use kvtier_example_logstore::{LogOptions, LogStore};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn put(db: DbIndex, key: &[u8], value: &[u8]) -> WriteOp {
    WriteOp::Put {
        db,
        key: key.to_vec(),
        value: value.to_vec(),
    }
}

fn del(db: DbIndex, key: &[u8]) -> WriteOp {
    WriteOp::Delete {
        db,
        key: key.to_vec(),
    }
}

/// Small segments and no background thread, so tests decide when compaction runs.
fn small() -> LogOptions {
    LogOptions {
        segment_bytes: 4096,
        background_compaction: false,
        ..LogOptions::default()
    }
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

fn len(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().len()
}

/// Everything in DBs 0..4, as a map, read through scan and get.
fn dump(s: &LogStore) -> BTreeMap<(DbIndex, Vec<u8>), Vec<u8>> {
    let mut out = BTreeMap::new();
    for db in 0..4 {
        for k in scan_all(s, db, 50) {
            let v = s.get(db, &k).unwrap().expect("a scanned key reads back");
            out.insert((db, k), v);
        }
    }
    out
}

/// Copies the store's files while it is open: what a kill -9 at this moment would leave (the
/// page cache survives a killed process).
fn crash_image(from: &Path, to: &Path) {
    std::fs::create_dir(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
    }
}

#[test]
fn a_torn_batch_at_the_tail_is_dropped_whole_and_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = LogStore::open(dir.path()).unwrap();
        s.write(&[put(0, b"a", b"1"), put(1, b"b", b"2")]).unwrap();
        s.sync().unwrap();
    }
    let seg = segments(dir.path()).pop().unwrap();
    let good = len(&seg);
    let hint_after_a = std::fs::read(dir.path().join("index.hint")).unwrap();
    {
        let s = LogStore::open(dir.path()).unwrap();
        let big = vec![7u8; 10_000];
        s.write(&[put(0, b"c", &big), put(2, b"d", &big), del(0, b"a")])
            .unwrap();
    }
    let full = len(&seg);
    // A crash in the middle of writing that batch: only part of its group reached the file.
    for (case, keep_hint) in [("hint points before the tear", true), ("no hint", false)] {
        let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
        f.set_len(good + (full - good) / 2).unwrap();
        drop(f);
        if keep_hint {
            std::fs::write(dir.path().join("index.hint"), &hint_after_a).unwrap();
        } else {
            std::fs::remove_file(dir.path().join("index.hint")).unwrap();
        }
        let s = LogStore::open(dir.path()).unwrap();
        assert_eq!(s.open_stats().used_hint, keep_hint, "{case}");
        assert_eq!(s.open_stats().truncated_bytes, (full - good) / 2, "{case}");
        assert_eq!(len(&seg), good, "{case}: the torn tail is cut off");
        // None of the torn batch, all of the one before.
        assert_eq!(
            s.get(0, b"a").unwrap().as_deref(),
            Some(&b"1"[..]),
            "{case}"
        );
        assert_eq!(
            s.get(1, b"b").unwrap().as_deref(),
            Some(&b"2"[..]),
            "{case}"
        );
        assert_eq!(s.get(0, b"c").unwrap(), None, "{case}");
        assert_eq!(s.get(2, b"d").unwrap(), None, "{case}");
        drop(s);
        // Tear it again for the next case (zeros past `good` are no group either).
        let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
        f.set_len(full).unwrap();
    }
    // After recovery the log goes on normally.
    std::fs::remove_file(dir.path().join("index.hint")).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(good + 1).unwrap();
    drop(f);
    {
        let s = LogStore::open(dir.path()).unwrap();
        s.write(&[put(3, b"e", b"after")]).unwrap();
        s.sync().unwrap();
    }
    let s = LogStore::open(dir.path()).unwrap();
    assert_eq!(s.get(3, b"e").unwrap().as_deref(), Some(&b"after"[..]));
    assert_eq!(s.get(0, b"a").unwrap().as_deref(), Some(&b"1"[..]));
}

#[test]
fn compaction_keeps_the_data_and_drops_the_dead_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let s = LogStore::open_with(dir.path(), small()).unwrap();
    for round in 0..5u32 {
        let batch: Vec<WriteOp> = (0..200u32)
            .map(|i| {
                let key = format!("k{i}");
                if (i + round) % 7 == 0 {
                    del(i % 4, key.as_bytes())
                } else {
                    put(i % 4, key.as_bytes(), format!("{round}:{i}").as_bytes())
                }
            })
            .collect();
        s.write(&batch).unwrap();
    }
    s.write(&[put(3, b"", b"empty key")]).unwrap();
    s.clear(Some(2)).unwrap();
    s.write(&[put(2, b"after clear", b"x")]).unwrap();
    let before = dump(&s);
    let (dead, total) = s.dead_and_total_bytes();
    assert!(
        dead * 2 > total,
        "the workload leaves mostly dead bytes ({dead}/{total})"
    );
    let segs_before = s.segment_count();

    let stats = s.compact().unwrap();
    assert_eq!(stats.input_segments, segs_before);
    assert!(stats.output_bytes < stats.input_bytes / 2, "{stats:?}");
    assert_eq!(dump(&s), before);
    let (dead, total) = s.dead_and_total_bytes();
    assert!(
        dead * 10 < total,
        "after compaction {dead}/{total} bytes are dead"
    );
    assert_eq!(s.compactions(), 1);
    // The inputs are gone from the directory, only live segments remain.
    assert_eq!(segments(dir.path()).len(), s.segment_count());
    // Compacting again with nothing new is harmless.
    s.compact().unwrap();
    assert_eq!(dump(&s), before);
    drop(s);

    // Reopen through the hint, and again through a full replay.
    let s = LogStore::open_with(dir.path(), small()).unwrap();
    assert!(s.open_stats().used_hint);
    assert_eq!(dump(&s), before);
    drop(s);
    std::fs::remove_file(dir.path().join("index.hint")).unwrap();
    let s = LogStore::open_with(dir.path(), small()).unwrap();
    assert!(!s.open_stats().used_hint);
    assert_eq!(dump(&s), before);
}

#[test]
fn compaction_racing_with_writers_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(LogStore::open_with(dir.path(), small()).unwrap());
    let writers: Vec<_> = (0..2u32)
        .map(|t| {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                let mut model = BTreeMap::new();
                for i in 0..1500u32 {
                    let key = format!("t{t}:{}", i % 60).into_bytes();
                    if i % 11 == 0 {
                        s.write(&[del(t, &key)]).unwrap();
                        model.remove(&(t, key));
                    } else {
                        let v = format!("{i}").repeat(1 + i as usize % 20).into_bytes();
                        s.write(&[put(t, &key, &v)]).unwrap();
                        model.insert((t, key), v);
                    }
                }
                model
            })
        })
        .collect();
    let mut compactions = 0;
    while writers.iter().any(|w| !w.is_finished()) || compactions == 0 {
        s.compact().unwrap();
        compactions += 1;
    }
    let mut model = BTreeMap::new();
    for w in writers {
        model.extend(w.join().unwrap());
    }
    assert_eq!(dump(&s), model);
    let s = Arc::into_inner(s).unwrap();
    drop(s);
    let s = LogStore::open_with(dir.path(), small()).unwrap();
    assert_eq!(dump(&s), model);
}

#[test]
fn background_compaction_starts_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let opts = LogOptions {
        segment_bytes: 4096,
        compact_dead_ratio: 0.5,
        compact_min_bytes: 16 << 10,
        background_compaction: true,
    };
    let s = LogStore::open_with(dir.path(), opts).unwrap();
    // Overwrite the same few keys until the dead share passes the ratio; the thread compacts.
    let mut i = 0u32;
    while s.compactions() == 0 {
        s.write(&[put(0, format!("k{}", i % 10).as_bytes(), &[i as u8; 200])])
            .unwrap();
        i += 1;
        assert!(i < 10_000_000, "no compaction started");
    }
    for k in 0..10u32 {
        assert!(s.get(0, format!("k{k}").as_bytes()).unwrap().is_some());
    }
}

#[test]
fn reopen_reads_the_hint_instead_of_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let image = tempfile::tempdir().unwrap();
    let expected;
    {
        let s = LogStore::open_with(dir.path(), small()).unwrap();
        let batch: Vec<WriteOp> = (0..1000u32)
            .map(|i| put(i % 4, format!("key{i}").as_bytes(), &[1; 100]))
            .collect();
        s.write(&batch).unwrap();
        expected = dump(&s);
    }
    {
        // A clean close wrote the hint: open reads no log at all.
        let s = LogStore::open_with(dir.path(), small()).unwrap();
        assert!(s.open_stats().used_hint);
        assert_eq!(s.open_stats().replayed_bytes, 0);
        assert_eq!(dump(&s), expected);
        // Writes after it, then a "crash" (an image of the files taken while the store is open):
        // open replays just the log written after the hint.
        s.write(&[put(0, b"new", b"1"), del(1, b"key1")]).unwrap();
        s.sync().unwrap();
        crash_image(dir.path(), &image.path().join("img"));
    }
    let img = image.path().join("img");
    let s = LogStore::open_with(&img, small()).unwrap();
    assert!(s.open_stats().used_hint);
    assert!(s.open_stats().replayed_bytes > 0);
    assert!(s.open_stats().replayed_bytes < 200, "{:?}", s.open_stats());
    assert_eq!(s.get(0, b"new").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(s.get(1, b"key1").unwrap(), None);
    assert_eq!(s.get(2, b"key2").unwrap(), Some(vec![1; 100]));
    drop(s);
    // A damaged hint is ignored: open replays the whole log and gets the same answer.
    let hint = img.join("index.hint");
    let mut bytes = std::fs::read(&hint).unwrap();
    bytes[40] ^= 1;
    std::fs::write(&hint, bytes).unwrap();
    let s = LogStore::open_with(&img, small()).unwrap();
    assert!(!s.open_stats().used_hint);
    assert_eq!(s.get(0, b"new").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(s.get(1, b"key1").unwrap(), None);
    assert_eq!(scan_all(&s, 2, 1000).len(), 250);
}

#[test]
fn a_damaged_record_reads_as_corruption() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = LogStore::open(dir.path()).unwrap();
        s.write(&[put(0, b"victim", b"VICTIM-VALUE"), put(0, b"fine", b"ok")])
            .unwrap();
    }
    let seg = segments(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = bytes
        .windows(12)
        .position(|w| w == b"VICTIM-VALUE")
        .unwrap();
    bytes[at] ^= 0x20;
    std::fs::write(&seg, bytes).unwrap();
    // The hint lets open skip the damaged group; the read checks the record's own checksum.
    let s = LogStore::open(dir.path()).unwrap();
    assert!(s.open_stats().used_hint);
    assert!(matches!(
        s.get(0, b"victim"),
        Err(StoreError::Corruption(_))
    ));
    assert_eq!(s.get(0, b"fine").unwrap().as_deref(), Some(&b"ok"[..]));
}

#[test]
fn leftovers_of_an_interrupted_compaction_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    drop(LogStore::open(dir.path()).unwrap());
    let stray = dir.path().join("0000000100000001.seg.tmp");
    std::fs::write(&stray, b"half a compaction output").unwrap();
    let s = LogStore::open(dir.path()).unwrap();
    assert!(!stray.exists());
    assert_eq!(s.segment_count(), 1);
}

#[test]
fn sizes_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let s = LogStore::open(dir.path()).unwrap();
    assert!(s.atomic_batches());
    assert_eq!(s.name(), "logstore");
    let empty = s.memory_usage().unwrap();
    s.write(&[put(5, &[b'k'; 1000], b"v"), put(5, b"x", b"v")])
        .unwrap();
    assert_eq!(s.approximate_len(5), Some(2));
    assert_eq!(s.approximate_len(6), Some(0));
    assert!(s.memory_usage().unwrap() >= empty + 1001);
}
