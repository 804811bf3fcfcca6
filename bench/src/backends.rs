//! `kvtier-bench backends`: the `DiskStore` backends side by side, without the server.
//!
//! For each backend, in a fresh directory under `TMPDIR`:
//! 1. single-key put + sync (what one durable write costs), keys in DB 1;
//! 2. batches of 100 keys + sync, which also write the dataset (DB 0) used by the next steps;
//! 3. random gets, uniform over the dataset (page cache warm: the data was just written);
//! 4. full scans in pages of 100 keys;
//! 5. checkpoint of the whole store, or N/A when the backend answers `Unsupported`.
//!
//! Every rate counts keys: a batch of 100 is 100 ops, a scan page of 100 keys is 100 ops. Each
//! measurement stops at its op count or its time budget, whichever comes first.

use crate::report::{self, fmt_rate, fmt_ratio, markdown_table, STORE_BACKENDS};
use kvtier_core::{StoreError, WriteOp};
use rand::{Rng, RngCore};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Keys written by the batched puts: the dataset for gets, scans and checkpoints.
    #[arg(long, default_value_t = 10_000)]
    keys: usize,
    /// Value size in bytes.
    #[arg(long, default_value_t = 1024)]
    value_size: usize,
    /// Directory for backends.csv.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Time budget of each measurement, in seconds (the batched puts get 5x this).
    #[arg(long, default_value_t = 4.0)]
    budget: f64,
    /// Backends to measure, comma separated (logstore is examples/logstore).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "fs,sled,rocksdb,logstore"
    )]
    backends: Vec<String>,
}

const BATCH: usize = 100;
const SCAN_PAGE: usize = 100;
/// Size of the random pool values are cut from.
const POOL: usize = 1 << 20;

/// The measured operations, in table order: (csv name, table label).
const OPS: &[(&str, &str)] = &[
    ("put_sync", "put 1 key + sync"),
    ("put_batch100_sync", "put batch of 100 + sync"),
    ("get_random", "random get"),
    ("scan", "scan (pages of 100)"),
    ("checkpoint", "checkpoint"),
];

/// One measurement: `None` when the backend does not support the operation.
#[derive(Debug, Clone, Copy)]
struct Rate {
    ops: u64,
    secs: f64,
}

impl Rate {
    fn per_sec(&self) -> f64 {
        self.ops as f64 / self.secs.max(1e-9)
    }
}

/// Results of one backend.
#[derive(Debug)]
struct BackendResult {
    name: String,
    rates: Vec<Option<Rate>>,
    atomic_batches: bool,
    approximate_len: Option<u64>,
    memory_usage: Option<u64>,
    disk_bytes: u64,
    keys: usize,
}

/// Runs `op(i)` for `i = 0, 1, …` until `max` iterations or `budget`, at least once.
fn timed(
    max: usize,
    budget: Duration,
    mut op: impl FnMut(usize) -> Result<u64, String>,
) -> Result<Rate, String> {
    let start = Instant::now();
    let mut i = 0;
    let mut ops = 0;
    while i < max && (i == 0 || start.elapsed() < budget) {
        ops += op(i)?;
        i += 1;
    }
    Ok(Rate {
        ops,
        secs: start.elapsed().as_secs_f64(),
    })
}

fn key(prefix: &str, i: usize) -> Vec<u8> {
    format!("{prefix}:{i:09}").into_bytes()
}

fn e(what: &str) -> impl Fn(StoreError) -> String + '_ {
    move |err| format!("{what}: {err}")
}

fn bench_one(kind: &str, root: &Path, args: &Args) -> Result<BackendResult, String> {
    let budget = Duration::from_secs_f64(args.budget);
    let dir = root.join(kind);
    let store = report::open_store(kind, &dir)?;
    // Values are slices of a random pool at scattered offsets: incompressible, and no two
    // neighbouring keys share bytes, so compressing backends get no free ride.
    let mut pool = vec![0u8; POOL + args.value_size];
    rand::rng().fill_bytes(&mut pool);
    let value = |i: usize| {
        let off = i.wrapping_mul(7919) % POOL;
        pool[off..off + args.value_size].to_vec()
    };
    let mut rates = Vec::new();

    // 1. Single-key put + sync, in DB 1 so the scans of DB 0 see only the dataset.
    let r = timed(args.keys, budget, |i| {
        let op = WriteOp::Put {
            db: 1,
            key: key("single", i),
            value: value(i),
        };
        store.write(std::slice::from_ref(&op)).map_err(e("put"))?;
        store.sync().map_err(e("sync"))?;
        Ok(1)
    })?;
    println!(
        "  {kind:<8} put 1 key + sync        {:>12} ops/s",
        fmt_rate(r.per_sec())
    );
    rates.push(Some(r));

    // 2. Batches of 100 + sync: the dataset.
    let batches = args.keys.div_ceil(BATCH);
    let r = timed(batches, budget * 5, |b| {
        let batch: Vec<WriteOp> = (b * BATCH..((b + 1) * BATCH).min(args.keys))
            .map(|i| WriteOp::Put {
                db: 0,
                key: key("k", i),
                value: value(i),
            })
            .collect();
        store.write(&batch).map_err(e("batch"))?;
        store.sync().map_err(e("sync"))?;
        Ok(batch.len() as u64)
    })?;
    let keys = r.ops as usize;
    if keys < args.keys {
        println!(
            "  {kind:<8} (time budget reached: dataset is {keys} keys, not {})",
            args.keys
        );
    }
    println!(
        "  {kind:<8} put batch of 100 + sync {:>12} ops/s",
        fmt_rate(r.per_sec())
    );
    rates.push(Some(r));

    // 3. Random gets, uniform over the dataset.
    let mut rng = rand::rng();
    let r = timed(usize::MAX, budget, |_| {
        let k = key("k", rng.random_range(0..keys));
        match store.get(0, &k).map_err(e("get"))? {
            Some(v) if v.len() == args.value_size => {
                black_box(v);
                Ok(1)
            }
            Some(v) => Err(format!(
                "get returned {} bytes, wrote {}",
                v.len(),
                args.value_size
            )),
            None => Err(format!("key {} missing", String::from_utf8_lossy(&k))),
        }
    })?;
    println!(
        "  {kind:<8} random get              {:>12} ops/s",
        fmt_rate(r.per_sec())
    );
    rates.push(Some(r));

    // 4. Full scans of DB 0.
    let mut first_scan = None;
    let r = timed(usize::MAX, budget, |_| {
        let mut cursor = Vec::new();
        let mut n = 0u64;
        loop {
            let page = store.scan(0, &cursor, SCAN_PAGE).map_err(e("scan"))?;
            n += page.keys.len() as u64;
            match page.next {
                Some(c) => cursor = c,
                None => break,
            }
        }
        first_scan.get_or_insert(n);
        Ok(n)
    })?;
    if first_scan != Some(keys as u64) {
        return Err(format!(
            "{kind}: a full scan returned {first_scan:?} keys, expected {keys}"
        ));
    }
    println!(
        "  {kind:<8} scan (pages of 100)     {:>12} ops/s",
        fmt_rate(r.per_sec())
    );
    rates.push(Some(r));

    let disk_bytes = report::disk_usage(&dir);

    // 5. Checkpoint of the whole store (dataset + single puts), counted in keys per second.
    let dest = root.join(format!("{kind}.checkpoint"));
    let all_keys = (keys + rates[0].map_or(0, |r| r.ops as usize)) as u64;
    let start = Instant::now();
    let r = match store.checkpoint(&dest) {
        Ok(()) => Some(Rate {
            ops: all_keys,
            secs: start.elapsed().as_secs_f64(),
        }),
        Err(StoreError::Unsupported) => None,
        Err(err) => return Err(format!("{kind}: checkpoint: {err}")),
    };
    match r {
        Some(r) => println!(
            "  {kind:<8} checkpoint              {:>12} keys/s",
            fmt_rate(r.per_sec())
        ),
        None => println!("  {kind:<8} checkpoint              {:>12}", "N/A"),
    }
    rates.push(r);

    let result = BackendResult {
        name: kind.to_string(),
        rates,
        atomic_batches: store.atomic_batches(),
        approximate_len: store.approximate_len(0),
        memory_usage: store.memory_usage(),
        disk_bytes,
        keys,
    };
    drop(store);
    let _ = std::fs::remove_dir_all(&dest);
    Ok(result)
}

pub fn run(args: &Args) -> Result<(), String> {
    for b in &args.backends {
        if !STORE_BACKENDS.contains(&b.as_str()) {
            return Err(format!(
                "unknown backend '{b}' (valid: {})",
                STORE_BACKENDS.join(", ")
            ));
        }
    }
    if args.keys == 0 {
        return Err("--keys must be at least 1".into());
    }
    let root = tempfile::Builder::new()
        .prefix("kvtier-bench.")
        .tempdir()
        .map_err(|e| format!("temp dir (set TMPDIR to choose where): {e}"))?;
    println!(
        "backends: {} keys of {} B, budget {} s per measurement, stores under {}",
        args.keys,
        args.value_size,
        args.budget,
        root.path().display()
    );
    let mut results = Vec::new();
    for kind in &args.backends {
        results.push(bench_one(kind, root.path(), args)?);
    }

    // Rates table: one row per operation, one column per backend plus its ratio to fs.
    let fs = results.iter().position(|r| r.name == "fs");
    let mut header: Vec<String> = vec!["operation (ops/s, an op is one key)".into()];
    for r in &results {
        header.push(r.name.clone());
        if fs.is_some() && r.name != "fs" {
            header.push(format!("{} / fs", r.name));
        }
    }
    let mut rows = Vec::new();
    for (i, (_, label)) in OPS.iter().enumerate() {
        let mut row = vec![label.to_string()];
        let base = fs.and_then(|f| results[f].rates[i]).map(|r| r.per_sec());
        for r in &results {
            let rate = r.rates[i].map(|r| r.per_sec());
            row.push(rate.map_or("N/A".into(), fmt_rate));
            if fs.is_some() && r.name != "fs" {
                row.push(match (rate, base) {
                    (Some(x), Some(b)) => fmt_ratio(x / b),
                    _ => "N/A".into(),
                });
            }
        }
        rows.push(row);
    }
    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
    println!();
    print!("{}", markdown_table(&header_refs, &rows));

    // Capabilities and footprint.
    let mut header: Vec<&str> = vec!["capability"];
    header.extend(results.iter().map(|r| r.name.as_str()));
    fn mb(b: u64) -> String {
        format!("{:.1} MB", b as f64 / 1e6)
    }
    type Cap = (&'static str, fn(&BackendResult) -> String);
    let caps: [Cap; 5] = [
        ("atomic batches", |r| {
            if r.atomic_batches { "yes" } else { "no" }.to_string()
        }),
        ("checkpoint", |r| {
            if r.rates[4].is_some() { "yes" } else { "N/A" }.to_string()
        }),
        ("approximate_len (DB 0)", |r| {
            r.approximate_len.map_or("N/A".into(), |n| n.to_string())
        }),
        ("memory_usage", |r| r.memory_usage.map_or("N/A".into(), mb)),
        ("disk used (dataset + single puts)", |r| mb(r.disk_bytes)),
    ];
    let rows: Vec<Vec<String>> = caps
        .iter()
        .map(|(label, f)| {
            let mut row = vec![label.to_string()];
            row.extend(results.iter().map(f));
            row
        })
        .collect();
    println!();
    print!("{}", markdown_table(&header, &rows));

    // CSV: one row per (backend, operation); NA where unsupported.
    let mut csv = Vec::new();
    for r in &results {
        for (i, (name, _)) in OPS.iter().enumerate() {
            let (ops, secs, rate) = match r.rates[i] {
                Some(x) => (
                    x.ops.to_string(),
                    format!("{:.4}", x.secs),
                    format!("{:.1}", x.per_sec()),
                ),
                None => ("NA".into(), "NA".into(), "NA".into()),
            };
            csv.push(vec![
                r.name.clone(),
                name.to_string(),
                ops,
                secs,
                rate,
                r.keys.to_string(),
                args.value_size.to_string(),
            ]);
        }
    }
    let path = args.out.join("backends.csv");
    report::write_csv(
        &path,
        &[
            "backend",
            "operation",
            "ops",
            "seconds",
            "ops_per_sec",
            "dataset_keys",
            "value_size",
        ],
        &csv,
    )?;
    println!("\nwrote {}", path.display());
    Ok(())
}
