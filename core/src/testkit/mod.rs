//! Conformance kit: the behaviour every [`DiskStore`] must show, as public test functions.
//!
//! A backend crate runs all of them with one line in a test file:
//! ```ignore
//! kvtier_core::conformance_tests!(|dir: &std::path::Path| MyStore::open(dir));
//! ```
//! The closure opens (or reopens) a store in `dir` and returns `Result<S, StoreError>`.
//!
//! Besides the tests, the kit has [`faulty::Faulty`], a wrapper that makes any store fail on
//! command, and [`crash`], the kill -9 machinery the crash tests use.

pub mod crash;
pub mod faulty;

pub use crash::XorShift;

use crate::store::{DbIndex, DiskStore, StoreError, WriteOp};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};

/// Opens a store in a directory; called again on the same directory to test reopening.
pub type Opener<'a> = &'a dyn Fn(&Path) -> Result<Box<dyn DiskStore>, StoreError>;

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

/// Reopens a store after the previous instance was dropped. Some stores release their
/// directory lock from a background thread shortly after the drop (sled), so a failed open is
/// retried for a few seconds before it counts.
fn reopen(open: Opener, dir: &Path) -> Box<dyn DiskStore> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match open(dir) {
            Ok(s) => return s,
            Err(e) if std::time::Instant::now() > deadline => panic!("reopen: {e:?}"),
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    }
}

fn fresh(open: Opener) -> (tempfile::TempDir, Box<dyn DiskStore>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path()).expect("open a store in an empty directory");
    (dir, store)
}

/// Scans a whole DB with pages of `limit` keys, returning keys in the order seen.
pub fn scan_all(store: &dyn DiskStore, db: DbIndex, limit: usize) -> Vec<Vec<u8>> {
    let mut cursor = Vec::new();
    let mut out = Vec::new();
    loop {
        let page = store.scan(db, &cursor, limit).expect("scan");
        assert!(
            page.keys.len() <= limit,
            "scan returned {} keys for limit {limit}",
            page.keys.len()
        );
        out.extend(page.keys);
        match page.next {
            Some(next) => cursor = next,
            None => return out,
        }
    }
}

/// A written key reads back before and after `sync`, a missing key reads `None`, and
/// [`DiskStore::name`] is not empty.
pub fn round_trip(open: Opener) {
    let (_d, s) = fresh(open);
    assert_eq!(s.get(0, b"missing").unwrap(), None);
    s.write(&[put(0, b"k", b"v")]).unwrap();
    assert_eq!(s.get(0, b"k").unwrap().as_deref(), Some(&b"v"[..]));
    s.sync().unwrap();
    assert_eq!(s.get(0, b"k").unwrap().as_deref(), Some(&b"v"[..]));
    assert!(!s.name().is_empty());
}

/// Keys and values of any bytes round-trip through `get` and `scan`: the empty key and value (an
/// empty value is present, not absent), NUL, `/`, `.`, `..`, non-UTF-8, a 1 MiB key and a
/// 16 MiB value.
pub fn binary_keys_and_values(open: Opener) {
    let (_d, s) = fresh(open);
    let big_key = vec![b'k'; 1 << 20];
    let key_250: Vec<u8> = (0..250u32).map(|i| (i % 251) as u8).collect();
    let big_value: Vec<u8> = (0..16u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let cases: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b"".to_vec(), b"empty key".to_vec()),
        (b"empty value".to_vec(), b"".to_vec()),
        (b"nul\0in\0key".to_vec(), b"nul\0in\0value".to_vec()),
        (b"/".to_vec(), b"slash".to_vec()),
        (b"/etc/passwd".to_vec(), b"absolute".to_vec()),
        (b"..".to_vec(), b"dotdot".to_vec()),
        (b".".to_vec(), b"dot".to_vec()),
        (b"../../escape".to_vec(), b"escape".to_vec()),
        (b"a/b".to_vec(), b"a-slash-b".to_vec()),
        (b"a_b".to_vec(), b"a-underscore-b".to_vec()),
        (b"A".to_vec(), b"upper".to_vec()),
        (b"a".to_vec(), b"lower".to_vec()),
        (vec![0xff, 0xfe, 0x00, 0x80], b"non-utf8".to_vec()),
        (key_250.clone(), b"250".to_vec()),
        (big_key.clone(), b"1MiB key".to_vec()),
        (b"16MiB value".to_vec(), big_value.clone()),
    ];
    let batch: Vec<WriteOp> = cases.iter().map(|(k, v)| put(0, k, v)).collect();
    s.write(&batch).unwrap();
    s.sync().unwrap();
    for (k, v) in &cases {
        let got = s.get(0, k).unwrap();
        assert_eq!(
            got.as_deref(),
            Some(&v[..]),
            "key of {} bytes starting {:?}",
            k.len(),
            &k[..k.len().min(16)]
        );
    }
    // Empty value is present, not absent.
    assert_eq!(s.get(0, b"empty value").unwrap(), Some(vec![]));
    let scanned: HashSet<Vec<u8>> = scan_all(&*s, 0, 5).into_iter().collect();
    let expected: HashSet<Vec<u8>> = cases.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(
        scanned, expected,
        "scan must return every binary key as written"
    );
}

/// A later put replaces the value (shorter or empty) without adding a second key.
pub fn overwrite(open: Opener) {
    let (_d, s) = fresh(open);
    s.write(&[put(0, b"k", b"first, longer value")]).unwrap();
    s.write(&[put(0, b"k", b"second")]).unwrap();
    assert_eq!(s.get(0, b"k").unwrap().as_deref(), Some(&b"second"[..]));
    s.write(&[put(0, b"k", b"")]).unwrap();
    assert_eq!(s.get(0, b"k").unwrap(), Some(vec![]));
    assert_eq!(scan_all(&*s, 0, 10).len(), 1);
}

/// Deleting a key removes it from `get` and `scan`; deleting an absent key, or a key twice, is
/// not an error and touches nothing else.
pub fn delete_present_and_absent(open: Opener) {
    let (_d, s) = fresh(open);
    s.write(&[put(0, b"k", b"v"), put(0, b"other", b"o")])
        .unwrap();
    s.write(&[del(0, b"k")]).unwrap();
    assert_eq!(s.get(0, b"k").unwrap(), None);
    s.write(&[del(0, b"never-existed")]).unwrap();
    s.write(&[del(0, b"k")]).unwrap();
    assert_eq!(s.get(0, b"other").unwrap().as_deref(), Some(&b"o"[..]));
    assert_eq!(scan_all(&*s, 0, 10), vec![b"other".to_vec()]);
}

/// Within one `write` batch, the last op on a key wins (put over put, delete over put, put over
/// delete).
pub fn batch_last_wins(open: Opener) {
    let (_d, s) = fresh(open);
    s.write(&[
        put(0, b"a", b"1"),
        put(0, b"a", b"2"),
        put(0, b"b", b"1"),
        del(0, b"b"),
        del(0, b"c"),
        put(0, b"c", b"3"),
        put(0, b"d", b"1"),
        del(0, b"d"),
        put(0, b"d", b"4"),
    ])
    .unwrap();
    assert_eq!(s.get(0, b"a").unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(s.get(0, b"b").unwrap(), None);
    assert_eq!(s.get(0, b"c").unwrap().as_deref(), Some(&b"3"[..]));
    assert_eq!(s.get(0, b"d").unwrap().as_deref(), Some(&b"4"[..]));
    let keys: BTreeSet<Vec<u8>> = scan_all(&*s, 0, 2).into_iter().collect();
    assert_eq!(
        keys,
        [b"a".to_vec(), b"c".to_vec(), b"d".to_vec()]
            .into_iter()
            .collect()
    );
}

/// The same key in different DBs names different records, for `get`, delete and `scan`.
pub fn db_isolation(open: Opener) {
    let (_d, s) = fresh(open);
    s.write(&[
        put(0, b"k", b"zero"),
        put(1, b"k", b"one"),
        put(15, b"only15", b"x"),
    ])
    .unwrap();
    assert_eq!(s.get(0, b"k").unwrap().as_deref(), Some(&b"zero"[..]));
    assert_eq!(s.get(1, b"k").unwrap().as_deref(), Some(&b"one"[..]));
    assert_eq!(s.get(2, b"k").unwrap(), None);
    assert_eq!(s.get(0, b"only15").unwrap(), None);
    s.write(&[del(1, b"k")]).unwrap();
    assert_eq!(s.get(0, b"k").unwrap().as_deref(), Some(&b"zero"[..]));
    assert_eq!(scan_all(&*s, 0, 10), vec![b"k".to_vec()]);
    assert!(scan_all(&*s, 1, 10).is_empty());
    assert_eq!(scan_all(&*s, 15, 10), vec![b"only15".to_vec()]);
}

/// Without concurrent writes, `scan` returns every key exactly once whatever the page size, and
/// nothing for an empty DB.
pub fn scan_exactly_once(open: Opener) {
    let (_d, s) = fresh(open);
    assert!(scan_all(&*s, 0, 10).is_empty());
    let n = 1000;
    let batch: Vec<WriteOp> = (0..n)
        .map(|i| put(0, format!("key:{i}").as_bytes(), b"v"))
        .collect();
    s.write(&batch).unwrap();
    for limit in [1, 7, 100, 5000] {
        let keys = scan_all(&*s, 0, limit);
        assert_eq!(keys.len(), n, "limit {limit}: duplicates or missing keys");
        let set: HashSet<_> = keys.iter().collect();
        assert_eq!(set.len(), n, "limit {limit}: a key was returned twice");
    }
}

/// `scan_heads` pages like `scan` (same keys, same cursors) and each head is the start of the
/// key's record (a record shorter than the head whole), in every DB, for every page size.
pub fn scan_heads_match_records(open: Opener) {
    let (_d, s) = fresh(open);
    let batch: Vec<WriteOp> = (0..300u32)
        .map(|i| {
            let value: Vec<u8> = (0..(i % 40)).map(|b| (b as u8) ^ (i as u8)).collect();
            put(i % 3, format!("k{i}").as_bytes(), &value)
        })
        .collect();
    s.write(&batch).unwrap();
    for db in 0..4 {
        for limit in [1, 13, 1000] {
            let mut cursor = Vec::new();
            loop {
                let plain = s.scan(db, &cursor, limit).unwrap();
                let (page, heads) = s.scan_heads(db, &cursor, limit, 11).unwrap();
                assert_eq!(
                    page, plain,
                    "db {db} limit {limit}: scan_heads pages differently"
                );
                assert_eq!(heads.len(), page.keys.len());
                for (k, h) in page.keys.iter().zip(&heads) {
                    let full = s.get(db, k).unwrap().expect("scanned key exists");
                    let want = full[..full.len().min(11)].to_vec();
                    assert_eq!(h.as_ref(), Some(&want), "head of {k:?}");
                }
                match page.next {
                    Some(c) => cursor = c,
                    None => break,
                }
            }
        }
    }
}

/// While other threads write and delete, a scan still returns every key present for its whole
/// duration.
pub fn scan_during_concurrent_writes(open: Opener) {
    let (_d, s) = fresh(open);
    let s: Arc<dyn DiskStore> = Arc::from(s);
    let stable: Vec<Vec<u8>> = (0..300)
        .map(|i| format!("stable:{i}").into_bytes())
        .collect();
    let batch: Vec<WriteOp> = stable.iter().map(|k| put(0, k, b"s")).collect();
    s.write(&batch).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|t| {
            let s = Arc::clone(&s);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) && i < 2000 {
                    let k = format!("churn:{t}:{}", i % 50).into_bytes();
                    let op = if i % 3 == 2 {
                        del(0, &k)
                    } else {
                        put(0, &k, b"c")
                    };
                    s.write(&[op, put(0, b"stable:7", b"rewritten")]).unwrap();
                    i += 1;
                }
            })
        })
        .collect();
    for _ in 0..3 {
        let seen: HashSet<Vec<u8>> = scan_all(&*s, 0, 17).into_iter().collect();
        for k in &stable {
            assert!(
                seen.contains(k),
                "key {:?} present for the whole scan was missed",
                String::from_utf8_lossy(k)
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
}

/// `clear(Some(db))` empties one DB and leaves the others; `clear(None)` empties all; a cleared
/// DB can be written again.
pub fn clear_one_and_all(open: Opener) {
    let (_d, s) = fresh(open);
    s.write(&[put(0, b"a", b"1"), put(1, b"b", b"2"), put(2, b"c", b"3")])
        .unwrap();
    s.clear(Some(1)).unwrap();
    assert_eq!(s.get(1, b"b").unwrap(), None);
    assert!(scan_all(&*s, 1, 10).is_empty());
    assert_eq!(s.get(0, b"a").unwrap().as_deref(), Some(&b"1"[..]));
    // A cleared DB is usable again.
    s.write(&[put(1, b"b2", b"x")]).unwrap();
    assert_eq!(s.get(1, b"b2").unwrap().as_deref(), Some(&b"x"[..]));
    s.clear(None).unwrap();
    for db in 0..3 {
        assert!(scan_all(&*s, db, 10).is_empty(), "db {db} not cleared");
    }
    assert_eq!(s.get(0, b"a").unwrap(), None);
    s.write(&[put(0, b"again", b"y")]).unwrap();
    assert_eq!(s.get(0, b"again").unwrap().as_deref(), Some(&b"y"[..]));
}

/// Synced writes, deletes and a `clear` survive dropping and reopening the store.
pub fn reopen_persistence(open: Opener) {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = open(dir.path()).unwrap();
        s.write(&[
            put(0, b"kept", b"v1"),
            put(3, b"db3", b"v3"),
            put(0, b"gone", b"x"),
        ])
        .unwrap();
        s.write(&[del(0, b"gone"), put(0, b"kept", b"v2")]).unwrap();
        s.sync().unwrap();
    }
    let s = reopen(open, dir.path());
    assert_eq!(s.get(0, b"kept").unwrap().as_deref(), Some(&b"v2"[..]));
    assert_eq!(s.get(3, b"db3").unwrap().as_deref(), Some(&b"v3"[..]));
    assert_eq!(s.get(0, b"gone").unwrap(), None);
    assert_eq!(scan_all(&*s, 0, 10), vec![b"kept".to_vec()]);
    s.clear(Some(3)).unwrap();
    drop(s);
    let s = reopen(open, dir.path());
    assert_eq!(s.get(3, b"db3").unwrap(), None, "clear must be durable");
}

/// Eight threads writing, reading and syncing at once: every write is seen, and no value is a
/// torn mix of two writes.
pub fn concurrent_threads(open: Opener) {
    let (_d, s) = fresh(open);
    let s: Arc<dyn DiskStore> = Arc::from(s);
    let threads = 8;
    let per_thread = 40;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let s = Arc::clone(&s);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                for i in 0..per_thread {
                    let own = format!("own:{t}:{i}").into_bytes();
                    let shared = format!("shared:{}", i % 4).into_bytes();
                    // Shared values are self-describing so a torn mix is detectable.
                    let sv = format!("t{t}i{i}:").repeat(50).into_bytes();
                    s.write(&[put(0, &own, &own), put(0, &shared, &sv)])
                        .unwrap();
                    assert_eq!(s.get(0, &own).unwrap().as_deref(), Some(&own[..]));
                    if i % 5 == 0 {
                        s.sync().unwrap();
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let mut expected = BTreeMap::new();
    for t in 0..threads {
        for i in 0..per_thread {
            let own = format!("own:{t}:{i}").into_bytes();
            expected.insert(own.clone(), own);
        }
    }
    for (k, v) in &expected {
        assert_eq!(s.get(0, k).unwrap().as_ref(), Some(v));
    }
    for i in 0..4 {
        let v = s
            .get(0, format!("shared:{i}").as_bytes())
            .unwrap()
            .expect("shared key");
        let text = String::from_utf8(v).expect("utf8");
        let unit = &text[..text.find(':').unwrap() + 1];
        assert_eq!(text, unit.repeat(50), "shared value is a mix of two writes");
    }
    assert_eq!(scan_all(&*s, 0, 64).len(), expected.len() + 4);
}

/// Opening a store at a path below a regular file returns an error.
pub fn open_on_a_file_fails(open: Opener) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-directory");
    std::fs::write(&file, b"x").unwrap();
    let r = open(&file.join("sub"));
    assert!(r.is_err(), "opening a store below a regular file must fail");
}

/// A second open of a directory in use fails (the store must lock its directory); once the
/// first store is dropped, opening works again.
pub fn second_open_of_the_same_directory_fails(open: Opener) {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path()).expect("first open");
    first.write(&[put(0, b"k", b"v")]).unwrap();
    first.sync().unwrap();
    assert!(
        open(dir.path()).is_err(),
        "a second open of a directory in use must fail (take a lock in the directory)"
    );
    drop(first);
    let again = reopen(open, dir.path());
    assert_eq!(again.get(0, b"k").unwrap().as_deref(), Some(&b"v"[..]));
}

/// [`DiskStore::checkpoint`] makes an independent, openable copy of the current state and refuses
/// an existing destination. Skipped (passes) when the backend returns
/// [`StoreError::Unsupported`].
pub fn checkpoint_round_trip(open: Opener) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir.path().join("live")).unwrap();
    let batch: Vec<WriteOp> = (0..600u32)
        .map(|i| put(i % 3, format!("k{i}").as_bytes(), &i.to_be_bytes()))
        .collect();
    s.write(&batch).unwrap();
    s.write(&[del(0, b"k0"), put(1, b"", b"empty key")])
        .unwrap();
    s.clear(Some(2)).unwrap();
    let dest = dir.path().join("copy");
    match s.checkpoint(&dest) {
        Err(StoreError::Unsupported) => {
            eprintln!(
                "checkpoint_round_trip: skipped, {} has no checkpoint",
                s.name()
            );
            return;
        }
        r => r.expect("checkpoint"),
    }
    assert!(
        s.checkpoint(&dest).is_err(),
        "checkpoint into an existing destination must fail"
    );
    // Later writes do not reach the copy, and the copy is a store of its own.
    s.write(&[put(0, b"after", b"x"), del(1, b"k1")]).unwrap();
    // The checkpoint may have been written through a store that releases its lock late (sled).
    let c = reopen(open, &dest);
    assert_eq!(scan_all(&*c, 0, 100).len(), 199);
    assert_eq!(scan_all(&*c, 1, 1000).len(), 201);
    assert!(scan_all(&*c, 2, 100).is_empty());
    assert_eq!(c.get(1, b"k1").unwrap(), Some(1u32.to_be_bytes().to_vec()));
    assert_eq!(c.get(1, b"").unwrap().as_deref(), Some(&b"empty key"[..]));
    assert_eq!(c.get(0, b"k0").unwrap(), None);
    assert_eq!(c.get(0, b"after").unwrap(), None);
    assert_eq!(s.get(0, b"after").unwrap().as_deref(), Some(&b"x"[..]));
    c.write(&[put(0, b"in copy", b"y")]).unwrap();
    assert_eq!(s.get(0, b"in copy").unwrap(), None);
}

/// Any `DbIndex` works, up to `u32::MAX` (the trait names no limit): put, get, scan and
/// `clear` on a sample of extreme indexes, also after a reopen.
pub fn extreme_db_indexes(open: Opener) {
    // `DbIndex` is any u32: the trait names no limit, so the whole range must work.
    let dbs: [DbIndex; 8] = [0, 1, 15, 16, 255, 256, DbIndex::MAX - 1, DbIndex::MAX];
    let key = [0xffu8; 8];
    let dir = tempfile::tempdir().unwrap();
    {
        let s = open(dir.path()).unwrap();
        let batch: Vec<WriteOp> = dbs
            .iter()
            .map(|&db| put(db, &key, format!("db{db}").as_bytes()))
            .collect();
        s.write(&batch).unwrap();
        for &db in &dbs {
            assert_eq!(
                s.get(db, &key).unwrap(),
                Some(format!("db{db}").into_bytes()),
                "db {db}"
            );
            assert_eq!(scan_all(&*s, db, 1), vec![key.to_vec()], "db {db}");
        }
        assert_eq!(s.get(2, &key).unwrap(), None);
        s.clear(Some(DbIndex::MAX)).unwrap();
        s.clear(Some(0)).unwrap();
        s.sync().unwrap();
    }
    let s = reopen(open, dir.path());
    for &db in &dbs {
        let expected = (db != 0 && db != DbIndex::MAX).then(|| format!("db{db}").into_bytes());
        assert_eq!(s.get(db, &key).unwrap(), expected, "db {db} after reopen");
    }
    s.clear(None).unwrap();
    for db in dbs {
        assert!(scan_all(&*s, db, 1).is_empty(), "db {db} after clear(None)");
    }
}

/// Clears of one or all DBs racing with writers and scanners never make an operation fail,
/// leave the store consistent, and do not touch other DBs (checked again after a reopen).
pub fn clear_racing_with_writes_and_scans(open: Opener) {
    let dir = tempfile::tempdir().unwrap();
    let s: Arc<dyn DiskStore> = Arc::from(open(dir.path()).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..3u32)
        .map(|t| {
            let (s, stop, progress) = (Arc::clone(&s), Arc::clone(&stop), Arc::clone(&progress));
            std::thread::spawn(move || {
                let mut i = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let k = format!("{t}:{}", i % 100).into_bytes();
                    // Batches span the DB being cleared and one that is not.
                    s.write(&[put(1, &k, b"v"), put(t + 2, &k, b"w")]).unwrap();
                    if let Some(v) = s.get(1, &k).unwrap() {
                        assert_eq!(v, b"v");
                    }
                    if i % 25 == 24 {
                        for k in scan_all(&*s, 1, 7) {
                            assert!(
                                k.starts_with(b"0:")
                                    || k.starts_with(b"1:")
                                    || k.starts_with(b"2:")
                            );
                        }
                    }
                    i += 1;
                    progress.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for i in 0..20 {
        // Let the writers make some progress between clears, however slow the machine.
        let target = progress.load(Ordering::Relaxed) + 10;
        while progress.load(Ordering::Relaxed) < target {
            if workers.iter().any(|w| w.is_finished()) {
                break; // a worker panicked: join below reports it
            }
            std::thread::yield_now();
        }
        s.clear(if i % 4 == 3 { None } else { Some(1) }).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    // After the race the store is consistent: every scanned key reads back, a clear of one DB
    // leaves the others alone, and the state survives a reopen.
    for k in scan_all(&*s, 1, 13) {
        assert_eq!(s.get(1, &k).unwrap().as_deref(), Some(&b"v"[..]));
    }
    s.clear(Some(1)).unwrap();
    assert!(scan_all(&*s, 1, 10).is_empty());
    s.write(&[put(1, b"last", b"x")]).unwrap();
    s.sync().unwrap();
    let others: Vec<Vec<Vec<u8>>> = (2..5).map(|db| scan_all(&*s, db, 1000)).collect();
    drop(s);
    let s = reopen(open, dir.path());
    assert_eq!(scan_all(&*s, 1, 1000), vec![b"last".to_vec()]);
    for (db, keys) in (2..5).zip(others) {
        assert_eq!(scan_all(&*s, db, 1000), keys, "db {db} after reopen");
        for k in keys {
            assert_eq!(s.get(db, &k).unwrap().as_deref(), Some(&b"w"[..]));
        }
    }
}

/// kill -9 of a process that writes and syncs: every batch a `sync` acknowledged survives, no
/// value is torn, and (if the store claims atomic batches) no batch is half there. `test_name`
/// is the harness's name of the calling test (see [`crash::test_name`]).
pub fn kill_9_keeps_synced_writes(open: Opener, test_name: &str) {
    crash::run(open, &crash::DURABILITY, test_name);
}

/// kill -9 in the middle of big multi-DB batches: if the store claims atomic batches, each is
/// all there or not at all after the crash; in any case no value is torn.
pub fn kill_9_batches_all_or_nothing(open: Opener, test_name: &str) {
    crash::run(open, &crash::ATOMICITY, test_name);
}

/// Runs every conformance test for the store opened by `$open` (a closure `|dir: &Path| ...`
/// returning `Result<S, StoreError>` where `S: DiskStore`).
#[macro_export]
macro_rules! conformance_tests {
    ($open:expr) => {
        mod kvtier_conformance {
            #[allow(unused_imports)]
            use super::*;
            fn opener(
                dir: &::std::path::Path,
            ) -> ::std::result::Result<
                ::std::boxed::Box<dyn $crate::store::DiskStore>,
                $crate::store::StoreError,
            > {
                let open = $open;
                open(dir).map(|s| ::std::boxed::Box::new(s) as ::std::boxed::Box<dyn $crate::store::DiskStore>)
            }
            $crate::conformance_tests!(@each opener;
                round_trip, binary_keys_and_values, overwrite, delete_present_and_absent,
                batch_last_wins, db_isolation, scan_exactly_once, scan_during_concurrent_writes,
                clear_one_and_all, reopen_persistence, concurrent_threads, open_on_a_file_fails,
                second_open_of_the_same_directory_fails, checkpoint_round_trip,
                extreme_db_indexes, clear_racing_with_writes_and_scans, scan_heads_match_records);
            $crate::conformance_tests!(@child opener;
                kill_9_keeps_synced_writes, kill_9_batches_all_or_nothing);
        }
    };
    (@each $opener:ident; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::testkit::$name(&$opener);
            }
        )*
    };
    // Tests that re-execute the test binary: they pass their own name, so the child runs
    // exactly them.
    (@child $opener:ident; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::testkit::$name(
                    &$opener,
                    &$crate::testkit::crash::test_name(::std::module_path!(), ::std::stringify!($name)),
                );
            }
        )*
    };
}
