//! Micro-benchmark of the fs backend: operations per second for get, single put (+ sync),
//! batched put (batches of 100, + sync) and scan, for 100 B and 4 KiB values.
//!
//! Run with `cargo bench -p kvtier-fs --bench fs_rates`. The store lives in a temporary
//! directory under `TMPDIR` (or the system default), so point `TMPDIR` at the disk to measure.
//! Each measurement stops at a fixed operation count or a time budget, whichever comes first,
//! so the whole run stays well under a minute even on a slow disk.

use kvtier_core::{DiskStore, WriteOp};
use kvtier_fs::FsStore;
use std::hint::black_box;
use std::time::{Duration, Instant};

const VALUE_SIZES: [usize; 2] = [100, 4096];
const BATCH: usize = 100;
/// Time budget of one measurement.
const BUDGET: Duration = Duration::from_secs(3);

/// Runs `op(i)` for `i = 0, 1, …` until `max_iters` or the time budget, and returns
/// `(iterations, elapsed)`.
fn run(max_iters: usize, mut op: impl FnMut(usize)) -> (usize, Duration) {
    let start = Instant::now();
    let mut i = 0;
    while i < max_iters && (i == 0 || start.elapsed() < BUDGET) {
        op(i);
        i += 1;
    }
    (i, start.elapsed())
}

fn report(what: &str, size: usize, ops: usize, elapsed: Duration) {
    println!(
        "{what:<28} {size:>5} B  {:>10.0} ops/s   ({ops} ops in {:.2} s)",
        ops as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
}

fn key(prefix: &str, i: usize) -> Vec<u8> {
    format!("{prefix}:{i:08}").into_bytes()
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument is ignored too.
    let dir = tempfile::Builder::new()
        .prefix("kvtier-fs-bench.")
        .tempdir()
        .expect("temp dir (set TMPDIR to choose where)");
    println!("fs_rates: store in {}", dir.path().display());
    println!("(an op is one key: batches and scans count every key they write or return)");

    for size in VALUE_SIZES {
        let store = FsStore::open(dir.path().join(format!("v{size}"))).expect("open");
        let value = vec![b'x'; size];

        // Single-key put, each followed by sync: what one durable write costs.
        let (n, t) = run(600, |i| {
            store
                .write(&[WriteOp::Put {
                    db: 0,
                    key: key("single", i),
                    value: value.clone(),
                }])
                .expect("put");
            store.sync().expect("sync");
        });
        report("put 1 key + sync", size, n, t);

        // Batches of 100 keys, each followed by sync. Counted in keys per second.
        let (n, t) = run(60, |b| {
            let batch: Vec<WriteOp> = (0..BATCH)
                .map(|j| WriteOp::Put {
                    db: 0,
                    key: key("batch", b * BATCH + j),
                    value: value.clone(),
                })
                .collect();
            store.write(&batch).expect("batch");
            store.sync().expect("sync");
        });
        report("put batch of 100 + sync", size, n * BATCH, t);
        let batch_keys = n * BATCH;

        // Gets of the keys written by the batches, in a scattered order (warm page cache).
        let (n, t) = run(50_000, |i| {
            let k = key("batch", i.wrapping_mul(7919) % batch_keys);
            black_box(store.get(0, &k).expect("get").expect("present"));
        });
        report("get (page cache warm)", size, n, t);

        // Full scans with pages of 100 keys, counted in keys per second.
        let mut keys = 0;
        let (_, t) = run(20, |_| {
            let mut cursor = Vec::new();
            loop {
                let page = store.scan(0, &cursor, 100).expect("scan");
                keys += page.keys.len();
                match page.next {
                    Some(c) => cursor = c,
                    None => break,
                }
            }
        });
        report("scan (pages of 100)", size, keys, t);
    }
}
