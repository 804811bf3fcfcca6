//! `kvtier-bench e2e`: the server over a dataset much larger than `maxmemory`.
//!
//! 1. Starts `kvtier-server` on a free port with a fresh data directory under `TMPDIR`.
//! 2. **set**: writes `data-mb` of values over `threads` pipelined connections, retrying keys
//!    refused with `-OOM` (the server's backpressure) after a short pause.
//! 3. **save**: `SAVE`, so the read phase does not compete with the tail of the writes.
//! 4. **get**: uniform random GETs over all keys for `get-secs`, one latency per request (from
//!    the write of its pipeline batch to the read of its reply), every value checked.
//! 5. **shutdown**: `SHUTDOWN`, wait for the process to exit.
//! 6. **raw**: opens the backend directly on the same data directory and does uniform random
//!    `get`s with the same number of threads for `raw-secs`.
//!
//! The server's RSS (`VmRSS` of `/proc/<pid>/status`) is sampled every 100 ms during 2–5 and
//! compared with the bound `1.15 × maxmemory + 32 MB`.

use crate::report::{self, fmt_rate, fmt_ratio, markdown_table, percentile};
use crate::server::{connect, free_port, rss_kb};
use kvtier_testutil::{kvtier_command, parse_info, Proc, Resp};
use rand::{Rng, RngCore};
use std::collections::HashMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Path of the kvtier-server binary (a release build).
    #[arg(long)]
    server_bin: PathBuf,
    /// Size of the dataset written in the set phase, in MiB (values only).
    #[arg(long, default_value_t = 1024)]
    data_mb: u64,
    /// The server's maxmemory, in MiB.
    #[arg(long, default_value_t = 64)]
    maxmemory_mb: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 10240)]
    value_size: usize,
    /// Server backend (fs, sled, rocksdb).
    #[arg(long, default_value = "fs")]
    backend: String,
    /// Directory for e2e.csv and rss.csv.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Client threads (one connection each), also used for the raw backend reads.
    #[arg(long, default_value_t = 4)]
    threads: usize,
    /// Pipeline depth of the set phase.
    #[arg(long, default_value_t = 16)]
    pipeline: usize,
    /// Pipeline depth of the get phase (1: each latency is one request's round trip).
    #[arg(long, default_value_t = 1)]
    get_pipeline: usize,
    /// Duration of the get phase, in seconds.
    #[arg(long, default_value_t = 20.0)]
    get_secs: f64,
    /// Duration of the raw backend read phase, in seconds.
    #[arg(long, default_value_t = 10.0)]
    raw_secs: f64,
    /// Extra server argument, repeatable (`--server-arg=--io-threads --server-arg=8`).
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    server_args: Vec<String>,
}

const PHASES: &[&str] = &["startup", "set", "save", "get", "shutdown"];
const PH_SET: usize = 1;
const PH_SAVE: usize = 2;
const PH_GET: usize = 3;
const PH_SHUTDOWN: usize = 4;
const MIB: u64 = 1 << 20;

fn key(i: u64) -> Vec<u8> {
    format!("key:{i:010}").into_bytes()
}

/// Starts the server on a free port over `data`, its output in `log`, and waits until it
/// answers PING.
fn start_server(args: &Args, data: &Path, log: &Path) -> Result<Proc, String> {
    let port = free_port()?;
    let mut extra = vec![
        "--maxmemory".to_string(),
        format!("{}mb", args.maxmemory_mb),
        "--cache-flush-delay".into(),
        "1".into(),
    ];
    extra.extend_from_slice(&args.server_args);
    let cmd = kvtier_command(&args.server_bin, port, data, &args.backend, &extra);
    println!("server: {cmd:?}");
    let mut server = Proc::spawn(cmd, port, log)?;
    server.wait_ready(None, Duration::from_secs(30))?;
    Ok(server)
}

/// The server's `INFO all` as a map.
fn server_info(port: u16) -> Result<HashMap<String, String>, String> {
    let mut c = connect(port).map_err(|e| format!("connect: {e}"))?;
    let r = c
        .try_cmd(&[b"INFO", b"all"])
        .map_err(|e| format!("INFO: {e}"))?;
    Ok(parse_info(&r).into_iter().collect())
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    t: f64,
    phase: usize,
    rss_kb: u64,
}

/// Samples the server's RSS every 100 ms, tagged with the current phase.
struct Sampler {
    stop: Arc<AtomicBool>,
    phase: Arc<AtomicUsize>,
    handle: JoinHandle<Vec<Sample>>,
}

impl Sampler {
    fn start(pid: u32, t0: Instant) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let phase = Arc::new(AtomicUsize::new(0));
        let (stop2, phase2) = (stop.clone(), phase.clone());
        let handle = std::thread::spawn(move || {
            let mut samples = Vec::new();
            let mut next = Instant::now();
            while !stop2.load(Ordering::Relaxed) {
                if let Some(kb) = rss_kb(pid) {
                    samples.push(Sample {
                        t: t0.elapsed().as_secs_f64(),
                        phase: phase2.load(Ordering::Relaxed),
                        rss_kb: kb,
                    });
                }
                next += Duration::from_millis(100);
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            samples
        });
        Sampler {
            stop,
            phase,
            handle,
        }
    }

    fn set_phase(&self, p: usize) {
        self.phase.store(p, Ordering::Relaxed);
    }

    fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("sampler thread")
    }
}

/// Writes the whole dataset; returns (seconds, OOM replies retried).
fn set_phase(args: &Args, port: u16, nkeys: u64, pid: u32) -> Result<(f64, u64), String> {
    let done = AtomicU64::new(0);
    let oom = AtomicU64::new(0);
    let abort = AtomicBool::new(false);
    let threads = args.threads as u64;
    let start = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (done, oom, abort) = (&done, &oom, &abort);
                s.spawn(move || -> Result<(), String> {
                    let r = set_worker(
                        args,
                        port,
                        t * nkeys / threads..(t + 1) * nkeys / threads,
                        done,
                        oom,
                        abort,
                    );
                    if r.is_err() {
                        abort.store(true, Ordering::Relaxed);
                    }
                    r
                })
            })
            .collect();
        let mut last_print = Instant::now();
        while !handles.iter().all(|h| h.is_finished()) {
            std::thread::sleep(Duration::from_millis(100));
            if last_print.elapsed() >= Duration::from_secs(10) {
                last_print = Instant::now();
                let n = done.load(Ordering::Relaxed);
                let secs = start.elapsed().as_secs_f64();
                println!(
                    "  set: {n}/{nkeys} keys, {:.1} MB/s, {} OOM retries, server RSS {} MB",
                    (n * args.value_size as u64) as f64 / 1e6 / secs,
                    oom.load(Ordering::Relaxed),
                    rss_kb(pid).unwrap_or(0) / 1024
                );
            }
        }
        handles
            .into_iter()
            .map(|h| h.join().expect("set worker"))
            .collect::<Result<Vec<()>, String>>()
    })?;
    Ok((start.elapsed().as_secs_f64(), oom.into_inner()))
}

fn set_worker(
    args: &Args,
    port: u16,
    range: std::ops::Range<u64>,
    done: &AtomicU64,
    oom: &AtomicU64,
    abort: &AtomicBool,
) -> Result<(), String> {
    let mut conn = connect(port).map_err(|e| format!("connect: {e}"))?;
    // Incompressible filler, so that compressing backends get no free ride; each value starts
    // with its key, which the get phase checks.
    let mut value = vec![0u8; args.value_size];
    rand::rng().fill_bytes(&mut value);
    let mut pending: Vec<u64> = Vec::with_capacity(args.pipeline);
    let mut next = range.start;
    while next < range.end || !pending.is_empty() {
        if abort.load(Ordering::Relaxed) {
            return Err("aborted".into());
        }
        if pending.is_empty() {
            let end = (next + args.pipeline as u64).min(range.end);
            pending.extend(next..end);
            next = end;
        }
        for &i in &pending {
            let k = key(i);
            let n = k.len().min(value.len());
            value[..n].copy_from_slice(&k[..n]);
            conn.queue(&[b"SET", &k, &value]);
        }
        conn.flush().map_err(|e| format!("SET: {e}"))?;
        let mut retry = Vec::new();
        for &i in &pending {
            match conn.try_read().map_err(|e| format!("SET reply: {e}"))? {
                Resp::Simple(s) if s == "OK" => {}
                Resp::Error(e) if e.starts_with("OOM") => retry.push(i),
                other => return Err(format!("SET {i}: unexpected reply {other:?}")),
            }
        }
        done.fetch_add((pending.len() - retry.len()) as u64, Ordering::Relaxed);
        if !retry.is_empty() {
            oom.fetch_add(retry.len() as u64, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(5));
        }
        pending = retry;
    }
    Ok(())
}

/// Result of a read phase: sorted latencies in µs (empty for raw reads), ops and seconds.
struct ReadStats {
    latencies_us: Vec<u64>,
    ops: u64,
    secs: f64,
}

fn get_phase(args: &Args, port: u16, nkeys: u64) -> Result<ReadStats, String> {
    let dur = Duration::from_secs_f64(args.get_secs);
    let start = Instant::now();
    let per_thread = std::thread::scope(|s| {
        let handles: Vec<_> = (0..args.threads)
            .map(|_| s.spawn(move || get_worker(args, port, nkeys, start + dur)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("get worker"))
            .collect::<Result<Vec<_>, String>>()
    })?;
    let secs = start.elapsed().as_secs_f64();
    let mut latencies_us: Vec<u64> = per_thread.into_iter().flatten().collect();
    latencies_us.sort_unstable();
    Ok(ReadStats {
        ops: latencies_us.len() as u64,
        latencies_us,
        secs,
    })
}

fn get_worker(args: &Args, port: u16, nkeys: u64, deadline: Instant) -> Result<Vec<u64>, String> {
    let mut conn = connect(port).map_err(|e| format!("connect: {e}"))?;
    let mut rng = rand::rng();
    let mut lat = Vec::new();
    let mut keys = Vec::with_capacity(args.get_pipeline);
    while Instant::now() < deadline {
        keys.clear();
        for _ in 0..args.get_pipeline {
            let k = key(rng.random_range(0..nkeys));
            conn.queue(&[b"GET", &k]);
            keys.push(k);
        }
        let sent = Instant::now();
        conn.flush().map_err(|e| format!("GET: {e}"))?;
        for k in &keys {
            let reply = conn.try_read().map_err(|e| format!("GET reply: {e}"))?;
            lat.push(sent.elapsed().as_micros() as u64);
            let n = k.len().min(args.value_size);
            match reply {
                Resp::Bulk(v) if v.len() == args.value_size && v[..n] == k[..n] => {}
                other => {
                    return Err(format!(
                        "GET {}: wrong reply {}",
                        String::from_utf8_lossy(k),
                        match other {
                            Resp::Bulk(v) => format!("({} bytes)", v.len()),
                            o => format!("{o:?}"),
                        }
                    ))
                }
            }
        }
    }
    Ok(lat)
}

/// Uniform random `get`s straight on the backend directory the server wrote.
fn raw_phase(args: &Args, store_dir: &Path, nkeys: u64) -> Result<ReadStats, String> {
    let store = report::open_store(&args.backend, store_dir)?;
    let dur = Duration::from_secs_f64(args.raw_secs);
    let start = Instant::now();
    let counts = std::thread::scope(|s| {
        let store = &store;
        let handles: Vec<_> = (0..args.threads)
            .map(|_| {
                s.spawn(move || -> Result<u64, String> {
                    let mut rng = rand::rng();
                    let mut n = 0u64;
                    while start.elapsed() < dur {
                        let k = key(rng.random_range(0..nkeys));
                        match store.get(0, &k) {
                            Ok(Some(v)) => {
                                black_box(v);
                            }
                            Ok(None) => {
                                return Err(format!(
                                    "raw get: {} missing on disk",
                                    String::from_utf8_lossy(&k)
                                ))
                            }
                            Err(e) => return Err(format!("raw get: {e}")),
                        }
                        n += 1;
                    }
                    Ok(n)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("raw worker"))
            .collect::<Result<Vec<u64>, String>>()
    })?;
    Ok(ReadStats {
        latencies_us: Vec::new(),
        ops: counts.iter().sum(),
        secs: start.elapsed().as_secs_f64(),
    })
}

fn info_u64(info: &HashMap<String, String>, name: &str) -> u64 {
    info.get(name).and_then(|v| v.parse().ok()).unwrap_or(0)
}

pub fn run(args: &Args) -> Result<(), String> {
    if args.threads == 0 || args.pipeline == 0 || args.get_pipeline == 0 {
        return Err("--threads, --pipeline and --get-pipeline must be at least 1".into());
    }
    if args.value_size < 16 {
        return Err("--value-size must be at least 16".into());
    }
    if !report::BACKENDS.contains(&args.backend.as_str()) {
        return Err(format!("unknown backend '{}'", args.backend));
    }
    let nkeys = (args.data_mb * MIB / args.value_size as u64).max(1);
    let bound_mb = 1.15 * args.maxmemory_mb as f64 + 32.0;
    let tmp = tempfile::Builder::new()
        .prefix("kvtier-bench-e2e.")
        .tempdir()
        .map_err(|e| format!("temp dir (set TMPDIR to choose where): {e}"))?;
    let data = tmp.path().join("data");
    println!(
        "e2e: {} MiB = {nkeys} keys of {} B, maxmemory {} MiB (dataset {:.1}x maxmemory), \
         backend {}, {} threads, data in {}",
        args.data_mb,
        args.value_size,
        args.maxmemory_mb,
        args.data_mb as f64 / args.maxmemory_mb as f64,
        args.backend,
        args.threads,
        data.display()
    );

    let mut server = start_server(args, &data, &tmp.path().join("server.log"))?;
    let pid = server.pid();
    let t0 = Instant::now();
    let sampler = Sampler::start(pid, t0);
    std::thread::sleep(Duration::from_millis(300));

    // set
    sampler.set_phase(PH_SET);
    let (set_secs, oom_retries) = set_phase(args, server.port, nkeys, pid)?;
    let set_rate = nkeys as f64 / set_secs;
    println!(
        "  set: {nkeys} keys in {set_secs:.1} s = {} SET/s, {:.1} MB/s, {oom_retries} OOM retries",
        fmt_rate(set_rate),
        (nkeys * args.value_size as u64) as f64 / 1e6 / set_secs
    );

    // save
    sampler.set_phase(PH_SAVE);
    let save_start = Instant::now();
    let mut c = connect(server.port).map_err(|e| format!("connect: {e}"))?;
    match c.try_cmd(&[b"SAVE"]).map_err(|e| format!("SAVE: {e}"))? {
        Resp::Simple(s) if s == "OK" => {}
        other => return Err(format!("SAVE: {other:?}")),
    }
    let save_secs = save_start.elapsed().as_secs_f64();
    println!("  save: {save_secs:.2} s");
    let info_before = server_info(server.port)?;

    // get
    sampler.set_phase(PH_GET);
    let get = get_phase(args, server.port, nkeys)?;
    let info_after = server_info(server.port)?;
    let get_rate = get.ops as f64 / get.secs;
    let p50 = percentile(&get.latencies_us, 50.0);
    let p99 = percentile(&get.latencies_us, 99.0);
    let loads = info_u64(&info_after, "disk_loads") - info_u64(&info_before, "disk_loads");
    let load_ratio = loads as f64 / get.ops.max(1) as f64;
    println!(
        "  get: {} ops in {:.1} s = {} GET/s, p50 {p50} µs, p99 {p99} µs, {:.1}% loaded from disk",
        get.ops,
        get.secs,
        fmt_rate(get_rate),
        load_ratio * 100.0
    );

    // shutdown
    sampler.set_phase(PH_SHUTDOWN);
    let shutdown_start = Instant::now();
    server.shutdown(&[], Duration::from_secs(300))?;
    let shutdown_secs = shutdown_start.elapsed().as_secs_f64();
    let samples = sampler.finish();
    drop(server);

    // raw backend reads on the same directory
    let store_dir = data.join(&args.backend);
    let disk_bytes = report::disk_usage(&store_dir);
    let raw = raw_phase(args, &store_dir, nkeys)?;
    let raw_rate = raw.ops as f64 / raw.secs;
    println!(
        "  raw {} get: {} ops in {:.1} s = {} gets/s",
        args.backend,
        raw.ops,
        raw.secs,
        fmt_rate(raw_rate)
    );

    // Report.
    let max_rss = |phase: usize| {
        samples
            .iter()
            .filter(|s| s.phase == phase)
            .map(|s| s.rss_kb as f64 / 1024.0)
            .reduce(f64::max)
    };
    let rss_csv = |phase: usize| max_rss(phase).map_or("NA".into(), |x| format!("{x:.1}"));
    let rss_md = |phase: usize| {
        max_rss(phase).map_or("no sample (phase < 100 ms)".into(), |x| {
            format!("{x:.1} MiB")
        })
    };
    let overall_mb = samples.iter().map(|s| s.rss_kb).max().unwrap_or(0) as f64 / 1024.0;
    let held = overall_mb <= bound_mb;
    let maxmemory_bytes = args.maxmemory_mb * MIB;
    let data_bytes = (nkeys * args.value_size as u64) as f64;
    let over = args.data_mb as f64 / args.maxmemory_mb as f64;
    let used_after = info_u64(&info_after, "used_memory");
    let evicted = info_u64(&info_after, "evicted_keys");
    let mib = |x: f64| format!("{x:.1} MiB");
    // (csv name, table label, csv value, table value, unit)
    let rows: Vec<(&str, &str, String, String, &str)> = vec![
        (
            "dataset_mib",
            "dataset",
            args.data_mb.to_string(),
            format!(
                "{} MiB ({nkeys} keys of {} B)",
                args.data_mb, args.value_size
            ),
            "MiB",
        ),
        (
            "maxmemory_mib",
            "maxmemory",
            args.maxmemory_mb.to_string(),
            format!("{} MiB", args.maxmemory_mb),
            "MiB",
        ),
        (
            "dataset_over_maxmemory",
            "dataset / maxmemory",
            format!("{over:.1}"),
            format!("{over:.1}x"),
            "x",
        ),
        (
            "set_ops_per_sec",
            "SET load",
            format!("{set_rate:.1}"),
            format!(
                "{} SET/s = {:.1} MB/s ({set_secs:.1} s, {} threads x pipeline {})",
                fmt_rate(set_rate),
                data_bytes / 1e6 / set_secs,
                args.threads,
                args.pipeline
            ),
            "ops/s",
        ),
        (
            "set_oom_retries",
            "SETs refused with -OOM (retried)",
            oom_retries.to_string(),
            oom_retries.to_string(),
            "replies",
        ),
        (
            "save_secs",
            "SAVE after the load",
            format!("{save_secs:.3}"),
            format!("{save_secs:.2} s"),
            "s",
        ),
        (
            "max_rss_set_mib",
            "max RSS, set phase",
            rss_csv(PH_SET),
            rss_md(PH_SET),
            "MiB",
        ),
        (
            "max_rss_save_mib",
            "max RSS, save phase",
            rss_csv(PH_SAVE),
            rss_md(PH_SAVE),
            "MiB",
        ),
        (
            "max_rss_get_mib",
            "max RSS, get phase",
            rss_csv(PH_GET),
            rss_md(PH_GET),
            "MiB",
        ),
        (
            "max_rss_shutdown_mib",
            "max RSS, shutdown",
            rss_csv(PH_SHUTDOWN),
            rss_md(PH_SHUTDOWN),
            "MiB",
        ),
        (
            "rss_bound_mib",
            "RSS bound (1.15 x maxmemory + 32 MiB)",
            format!("{bound_mb:.1}"),
            mib(bound_mb),
            "MiB",
        ),
        (
            "rss_bound_held",
            "bound held",
            held.to_string(),
            if held {
                format!("yes (max {overall_mb:.1} MiB)")
            } else {
                format!(
                    "NO: max {overall_mb:.1} MiB = {:.0}% of the bound",
                    overall_mb / bound_mb * 100.0
                )
            },
            "bool",
        ),
        (
            "get_ops_per_sec",
            "GET, uniform random over all keys",
            format!("{get_rate:.1}"),
            format!(
                "{} GET/s ({} threads x pipeline {}, {:.0} s)",
                fmt_rate(get_rate),
                args.threads,
                args.get_pipeline,
                get.secs
            ),
            "ops/s",
        ),
        (
            "get_p50_us",
            "GET latency p50",
            p50.to_string(),
            format!("{p50} µs"),
            "us",
        ),
        (
            "get_p99_us",
            "GET latency p99",
            p99.to_string(),
            format!("{p99} µs"),
            "us",
        ),
        (
            "get_disk_load_ratio",
            "GETs that needed a disk load",
            format!("{load_ratio:.4}"),
            format!("{:.1}% ({loads} disk loads)", load_ratio * 100.0),
            "ratio",
        ),
        (
            "raw_backend_gets_per_sec",
            "raw backend random gets, same dir",
            format!("{raw_rate:.1}"),
            format!(
                "{} gets/s ({} threads, {:.0} s)",
                fmt_rate(raw_rate),
                args.threads,
                raw.secs
            ),
            "ops/s",
        ),
        (
            "get_over_raw",
            "GET / raw backend gets",
            format!("{:.3}", get_rate / raw_rate),
            fmt_ratio(get_rate / raw_rate),
            "x",
        ),
        (
            "shutdown_secs",
            "SHUTDOWN to exit",
            format!("{shutdown_secs:.3}"),
            format!("{shutdown_secs:.2} s"),
            "s",
        ),
        (
            "used_memory_after_get",
            "used_memory after the get phase",
            used_after.to_string(),
            format!(
                "{} (maxmemory {maxmemory_bytes} B)",
                mib(used_after as f64 / MIB as f64)
            ),
            "bytes",
        ),
        (
            "evicted_keys",
            "evicted keys (whole run)",
            evicted.to_string(),
            evicted.to_string(),
            "keys",
        ),
        (
            "disk_used_mib",
            "disk used by the backend",
            format!("{:.1}", disk_bytes as f64 / MIB as f64),
            mib(disk_bytes as f64 / MIB as f64),
            "MiB",
        ),
    ];
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|(_, label, _, shown, _)| vec![label.to_string(), shown.clone()])
        .collect();
    let title = format!("e2e, backend {}", args.backend);
    println!();
    print!("{}", markdown_table(&[title.as_str(), "result"], &table));

    let csv: Vec<Vec<String>> = rows
        .iter()
        .map(|(name, _, v, _, unit)| vec![name.to_string(), v.clone(), unit.to_string()])
        .collect();
    let e2e_path = args.out.join("e2e.csv");
    report::write_csv(&e2e_path, &["metric", "value", "unit"], &csv)?;
    let rss: Vec<Vec<String>> = samples
        .iter()
        .map(|s| {
            vec![
                format!("{:.2}", s.t),
                PHASES[s.phase].to_string(),
                format!("{:.1}", s.rss_kb as f64 / 1024.0),
                format!("{bound_mb:.1}"),
                args.maxmemory_mb.to_string(),
            ]
        })
        .collect();
    let rss_path = args.out.join("rss.csv");
    report::write_csv(
        &rss_path,
        &["time_s", "phase", "rss_mib", "bound_mib", "maxmemory_mib"],
        &rss,
    )?;
    println!("\nwrote {} and {}", e2e_path.display(), rss_path.display());
    Ok(())
}
