//! `kvtier-bench keyspace`: keyspace-wide commands and restart over many small keys, kvtier
//! (one run per backend) side by side with redis-server on the same data.
//!
//! For each server, in a fresh directory under `TMPDIR` and on a free loopback port:
//!
//! 1. **load**: `SET key:<n> <value>` for `n` in `0..keys`, one connection, pipelines of
//!    `pipeline` commands (kvtier's `-OOM` backpressure replies are retried after 5 ms);
//! 2. **save**: `SAVE` (kvtier: every dirty key reaches the store; redis: writes `dump.rdb`);
//! 3. **DBSIZE**, **KEYS `key:<prefix>*`**, **RANDOMKEY** (`randomkey-samples` times) and one full
//!    **SCAN** iteration with `COUNT scan-count`, each checked (DBSIZE = keys, KEYS returns exactly
//!    the matching keys, RANDOMKEY a loaded key, SCAN every loaded key at least once). While each
//!    runs, a second connection sends PING in a loop (1 ms apart) and records the longest round
//!    trip: how long the other clients were stalled;
//! 4. **restart**: `SHUTDOWN` (redis: `SHUTDOWN NOSAVE`, its RDB is the one from step 2), then
//!    the same binary is started again over the same directory and the time from the spawn to
//!    the first correct reply to `GET key:<keys/2>` is measured; `DBSIZE` checks nothing was lost.
//!
//! Every phase is bounded by `budget-secs` (a SCAN iteration that runs out is reported as
//! incomplete); server processes are killed and temp directories removed on every exit path.

use crate::report::{self, fmt_rate, markdown_table};
use crate::server::{
    connect, default_server_bin, free_port, io_err, rss_kb, spawn_command, spawn_kvtier,
};
use kvtier_testutil::{parse_info, Client, Proc, Resp};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Number of keys loaded (`key:0` … `key:<N-1>`).
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    /// kvtier backends to run, repeatable or comma-separated (fs, sled, rocksdb).
    #[arg(long = "backend", value_delimiter = ',', default_value = "fs")]
    backends: Vec<String>,
    /// kvtier's maxmemory (redis units: 64mb, 1gb, ...).
    #[arg(long, default_value = "64mb")]
    maxmemory: String,
    /// kvtier-server binary (default: $CARGO_TARGET_DIR/release/kvtier-server, else
    /// target/release/kvtier-server).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// redis-server binary.
    #[arg(long, default_value = "/usr/bin/redis-server")]
    redis_bin: PathBuf,
    /// Skip the redis-server run.
    #[arg(long)]
    no_redis: bool,
    /// Value size in bytes.
    #[arg(long, default_value_t = 32)]
    value_size: usize,
    /// SETs per pipeline in the load phase.
    #[arg(long, default_value_t = 1000)]
    pipeline: usize,
    /// COUNT of each SCAN call.
    #[arg(long, default_value_t = 1000)]
    scan_count: u64,
    /// KEYS pattern is `key:<prefix>*`.
    #[arg(long, default_value = "12345")]
    keys_prefix: String,
    /// RANDOMKEY calls (the median is reported).
    #[arg(long, default_value_t = 5)]
    randomkey_samples: usize,
    /// Time limit of each phase in seconds (load, SCAN iteration, shutdown, restart).
    #[arg(long, default_value_t = 600.0)]
    budget_secs: f64,
    /// Directory for keyspace.csv.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Extra kvtier-server argument, repeatable (`--server-arg=--io-threads --server-arg=8`).
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    server_args: Vec<String>,
}

fn key(n: u64) -> Vec<u8> {
    format!("key:{n}").into_bytes()
}

/// `key:<n>` → `n`, if the key has that shape.
fn key_index(k: &[u8]) -> Option<u64> {
    let digits = k.strip_prefix(b"key:")?;
    if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The value of `key:<n>`: its number, then filler, `size` bytes in all.
fn value(n: u64, size: usize) -> Vec<u8> {
    let mut v = format!("v{n}:").into_bytes();
    let fill = b'a' + (n % 26) as u8;
    v.resize(size.max(v.len()), fill);
    v.truncate(size);
    v
}

/// Which server a run measures.
#[derive(Clone)]
enum Target {
    Redis,
    Kvtier(String),
}

impl Target {
    fn label(&self) -> String {
        match self {
            Target::Redis => "redis".into(),
            Target::Kvtier(b) => format!("kvtier {b}"),
        }
    }

    fn csv_names(&self) -> (&'static str, &str) {
        match self {
            Target::Redis => ("redis", "-"),
            Target::Kvtier(b) => ("kvtier", b),
        }
    }
}

/// Spawns the server for `target` over `dir` on a free port; does not wait for it.
fn spawn(args: &Args, server_bin: &Path, target: &Target, dir: &Path) -> Result<Proc, String> {
    match target {
        Target::Redis => {
            let port = free_port()?;
            let mut c = Command::new(&args.redis_bin);
            c.arg("--port")
                .arg(port.to_string())
                .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args(["--daemonize", "no", "--dbfilename", "dump.rdb", "--dir"])
                .arg(dir);
            spawn_command(c, port, dir)
        }
        Target::Kvtier(backend) => {
            spawn_kvtier(server_bin, backend, &args.maxmemory, &args.server_args, dir)
        }
    }
}

/// Longest PING round trip seen by another client while something else ran.
#[derive(Debug, Clone, Copy, Default)]
struct PingStats {
    max_us: u64,
    pings: u64,
}

/// A thread that sends PING on its own connection until stopped (or a hard time cap).
struct Pinger {
    stop: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
    handle: JoinHandle<Result<PingStats, String>>,
}

impl Pinger {
    fn start(port: u16, cap: Duration) -> Result<Pinger, String> {
        let mut conn = connect(port).map_err(io_err("pinger connect"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicU64::new(0));
        let (stop2, count2) = (stop.clone(), count.clone());
        let handle = std::thread::spawn(move || {
            let mut st = PingStats::default();
            let start = Instant::now();
            while !stop2.load(Ordering::Relaxed) && start.elapsed() < cap {
                let sent = Instant::now();
                match conn.try_cmd(&[b"PING"]) {
                    Ok(Resp::Simple(s)) if s == "PONG" => {}
                    Ok(other) => return Err(format!("PING: unexpected reply {other:?}")),
                    Err(e) => return Err(format!("PING: {e}")),
                }
                st.max_us = st.max_us.max(sent.elapsed().as_micros() as u64);
                st.pings += 1;
                count2.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(st)
        });
        let pinger = Pinger {
            stop,
            count,
            handle,
        };
        // Make sure it is pinging before the measured command goes out.
        let deadline = Instant::now() + Duration::from_secs(10);
        while pinger.count.load(Ordering::Relaxed) < 3 && !pinger.handle.is_finished() {
            if Instant::now() > deadline {
                pinger.stop.store(true, Ordering::Relaxed);
                return Err("pinger: no PONG within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(pinger)
    }

    fn finish(self) -> Result<PingStats, String> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .join()
            .map_err(|_| "pinger thread panicked".to_string())?
    }
}

/// Runs `f` while a pinger measures the stall of other clients.
fn with_pinger<T>(
    port: u16,
    cap: Duration,
    f: impl FnOnce() -> Result<T, String>,
) -> Result<(T, PingStats), String> {
    let pinger = Pinger::start(port, cap)?;
    let r = f();
    let st = pinger.finish();
    Ok((r?, st?))
}

#[derive(Debug, Default)]
struct ScanStats {
    secs: f64,
    calls: u64,
    returned: u64,
    unique: u64,
    foreign: u64,
    complete: bool,
    max_call_us: u64,
}

#[derive(Debug, Default)]
struct Results {
    version: String,
    load_secs: f64,
    oom_retries: u64,
    rss_after_load_kb: u64,
    /// kvtier's INFO `disk_load_misses` after the load (`None` for redis).
    load_disk_misses: Option<u64>,
    save_secs: f64,
    idle_ping: PingStats,
    dbsize_us: u64,
    dbsize_stall: PingStats,
    keys_us: u64,
    keys_matched: u64,
    keys_expected: u64,
    keys_stall: PingStats,
    randomkey_us: Vec<u64>,
    randomkey_stall: PingStats,
    scan: ScanStats,
    scan_stall: PingStats,
    shutdown_secs: f64,
    disk_bytes: u64,
    restart_secs: f64,
    dbsize_after_restart: i64,
}

fn expect_ok(reply: std::io::Result<Resp>, what: &str) -> Result<(), String> {
    match reply.map_err(io_err(what))? {
        Resp::Simple(s) if s == "OK" => Ok(()),
        other => Err(format!("{what}: unexpected reply {other:?}")),
    }
}

fn dbsize(conn: &mut Client) -> Result<i64, String> {
    match conn.try_cmd(&[b"DBSIZE"]).map_err(io_err("DBSIZE"))? {
        Resp::Int(n) => Ok(n),
        other => Err(format!("DBSIZE: unexpected reply {other:?}")),
    }
}

fn load(args: &Args, port: u16, budget: Duration) -> Result<(f64, u64), String> {
    let mut conn = connect(port).map_err(io_err("connect"))?;
    let start = Instant::now();
    let mut last_print = start;
    let (mut next, mut oom) = (0u64, 0u64);
    let mut pending: Vec<u64> = Vec::with_capacity(args.pipeline);
    while next < args.keys || !pending.is_empty() {
        if start.elapsed() > budget {
            return Err(format!(
                "load: {next} of {} keys sent after the {:.0} s budget",
                args.keys,
                budget.as_secs_f64()
            ));
        }
        if pending.is_empty() {
            let end = (next + args.pipeline as u64).min(args.keys);
            pending.extend(next..end);
            next = end;
        }
        for &n in &pending {
            conn.queue(&[b"SET", &key(n), &value(n, args.value_size)]);
        }
        conn.flush().map_err(io_err("SET"))?;
        let mut retry = Vec::new();
        for &n in &pending {
            match conn.try_read().map_err(io_err("SET reply"))? {
                Resp::Simple(s) if s == "OK" => {}
                Resp::Error(e) if e.starts_with("OOM") => retry.push(n),
                other => return Err(format!("SET key:{n}: unexpected reply {other:?}")),
            }
        }
        if !retry.is_empty() {
            oom += retry.len() as u64;
            std::thread::sleep(Duration::from_millis(5));
        }
        pending = retry;
        if last_print.elapsed() >= Duration::from_secs(10) {
            last_print = Instant::now();
            println!(
                "  load: {next}/{} keys sent, {} keys/s, {oom} OOM retries",
                args.keys,
                fmt_rate(next as f64 / start.elapsed().as_secs_f64())
            );
        }
    }
    Ok((start.elapsed().as_secs_f64(), oom))
}

fn scan_all(args: &Args, conn: &mut Client, budget: Duration) -> Result<ScanStats, String> {
    let n = args.keys as usize;
    let mut seen = vec![0u64; n.div_ceil(64)];
    let mut st = ScanStats::default();
    let count = args.scan_count.to_string();
    let max_calls = args.keys / args.scan_count.max(1) * 10 + 1000;
    let mut cursor = b"0".to_vec();
    let start = Instant::now();
    let mut last_print = start;
    loop {
        let t = Instant::now();
        let reply = conn
            .try_cmd(&[b"SCAN", &cursor, b"COUNT", count.as_bytes()])
            .map_err(io_err("SCAN"))?;
        st.max_call_us = st.max_call_us.max(t.elapsed().as_micros() as u64);
        st.calls += 1;
        let Resp::Array(mut parts) = reply else {
            return Err(format!("SCAN: unexpected reply {reply:?}"));
        };
        let (Some(Resp::Array(keys)), Some(Resp::Bulk(next))) = (parts.pop(), parts.pop()) else {
            return Err("SCAN: reply is not [cursor, keys]".into());
        };
        for k in keys {
            let Resp::Bulk(k) = k else {
                return Err(format!("SCAN: non-bulk key {k:?}"));
            };
            st.returned += 1;
            match key_index(&k) {
                Some(i) if i < args.keys => {
                    let (w, b) = (i as usize / 64, i % 64);
                    if seen[w] & (1 << b) == 0 {
                        seen[w] |= 1 << b;
                        st.unique += 1;
                    }
                }
                _ => st.foreign += 1,
            }
        }
        cursor = next;
        if cursor == b"0" {
            st.complete = true;
            break;
        }
        if st.calls >= max_calls || start.elapsed() > budget {
            println!(
                "  SCAN: stopped after {} calls, {:.0} s (budget), {} of {} keys seen",
                st.calls,
                start.elapsed().as_secs_f64(),
                st.unique,
                args.keys
            );
            break;
        }
        if last_print.elapsed() >= Duration::from_secs(10) {
            last_print = Instant::now();
            println!(
                "  SCAN: {} calls, {} keys seen, {:.0} s",
                st.calls,
                st.unique,
                start.elapsed().as_secs_f64()
            );
        }
    }
    st.secs = start.elapsed().as_secs_f64();
    Ok(st)
}

/// One full run against one server.
fn run_target(args: &Args, server_bin: &Path, target: &Target) -> Result<Results, String> {
    let tmp = tempfile::Builder::new()
        .prefix("kvtier-bench-keyspace.")
        .tempdir()
        .map_err(|e| format!("temp dir (set TMPDIR to choose where): {e}"))?;
    let dir = tmp.path().join("data");
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let budget = Duration::from_secs_f64(args.budget_secs);
    // A phase's pinger may outlive the phase's budget by its own longest reply.
    let ping_cap = budget + Duration::from_secs(150);
    let mut r = Results::default();

    println!("{}: data in {}", target.label(), dir.display());
    let mut server = spawn(args, server_bin, target, &dir)?;
    server.wait_ready(None, Duration::from_secs(60))?;
    let port = server.port;
    let mut conn = connect(port).map_err(io_err("connect"))?;
    let info = parse_info(
        &conn
            .try_cmd(&[b"INFO", b"server"])
            .map_err(io_err("INFO"))?,
    );
    r.version = info
        .iter()
        .find(|(k, _)| k == "redis_version")
        .map_or("?".into(), |(_, v)| v.clone());

    // load + save
    let (secs, oom) = load(args, port, budget)?;
    r.load_secs = secs;
    r.oom_retries = oom;
    r.rss_after_load_kb = rss_kb(server.pid()).unwrap_or(0);
    if let Target::Kvtier(_) = target {
        let info = parse_info(&conn.try_cmd(&[b"INFO", b"all"]).map_err(io_err("INFO"))?);
        r.load_disk_misses = info
            .iter()
            .find(|(k, _)| k == "disk_load_misses")
            .and_then(|(_, v)| v.parse().ok());
    }
    println!(
        "  load: {} keys in {secs:.2} s = {} keys/s, {oom} OOM retries",
        args.keys,
        fmt_rate(args.keys as f64 / secs)
    );
    let t = Instant::now();
    expect_ok(conn.try_cmd(&[b"SAVE"]), "SAVE")?;
    r.save_secs = t.elapsed().as_secs_f64();
    println!("  SAVE: {:.2} s", r.save_secs);

    // idle baseline of the pinger
    let ((), st) = with_pinger(port, ping_cap, || {
        std::thread::sleep(Duration::from_millis(500));
        Ok(())
    })?;
    r.idle_ping = st;

    // DBSIZE
    let (n, st) = with_pinger(port, ping_cap, || {
        let t = Instant::now();
        let n = dbsize(&mut conn)?;
        r.dbsize_us = t.elapsed().as_micros() as u64;
        Ok(n)
    })?;
    r.dbsize_stall = st;
    if n != args.keys as i64 {
        return Err(format!("DBSIZE returned {n}, expected {}", args.keys));
    }
    println!(
        "  DBSIZE: {} ms, stall {} ms",
        ms(r.dbsize_us),
        ms(st.max_us)
    );

    // KEYS key:<prefix>*
    let pattern = format!("key:{}*", args.keys_prefix);
    let (matched, st) = with_pinger(port, ping_cap, || {
        let t = Instant::now();
        let reply = conn
            .try_cmd(&[b"KEYS", pattern.as_bytes()])
            .map_err(io_err("KEYS"))?;
        r.keys_us = t.elapsed().as_micros() as u64;
        let Resp::Array(keys) = reply else {
            return Err(format!("KEYS: unexpected reply {reply:?}"));
        };
        for k in &keys {
            let ok = matches!(k, Resp::Bulk(b) if b.starts_with(pattern.trim_end_matches('*').as_bytes())
                && key_index(b).is_some_and(|i| i < args.keys));
            if !ok {
                return Err(format!("KEYS {pattern}: unexpected key {k:?}"));
            }
        }
        Ok(keys.len() as u64)
    })?;
    r.keys_stall = st;
    r.keys_matched = matched;
    r.keys_expected = (0..args.keys)
        .filter(|n| n.to_string().starts_with(&args.keys_prefix))
        .count() as u64;
    if r.keys_matched != r.keys_expected {
        return Err(format!(
            "KEYS {pattern}: {matched} keys, expected {}",
            r.keys_expected
        ));
    }
    println!(
        "  KEYS {pattern}: {matched} keys in {} ms, stall {} ms",
        ms(r.keys_us),
        ms(st.max_us)
    );

    // RANDOMKEY
    let (lat, st) = with_pinger(port, ping_cap, || {
        let mut lat = Vec::new();
        for _ in 0..args.randomkey_samples {
            let t = Instant::now();
            let reply = conn.try_cmd(&[b"RANDOMKEY"]).map_err(io_err("RANDOMKEY"))?;
            lat.push(t.elapsed().as_micros() as u64);
            match reply {
                Resp::Bulk(k) if key_index(&k).is_some_and(|i| i < args.keys) => {}
                other => return Err(format!("RANDOMKEY: unexpected reply {other:?}")),
            }
        }
        Ok(lat)
    })?;
    r.randomkey_us = lat;
    r.randomkey_us.sort_unstable();
    r.randomkey_stall = st;
    println!(
        "  RANDOMKEY: median {} ms of {}, stall {} ms",
        ms(median(&r.randomkey_us)),
        r.randomkey_us.len(),
        ms(st.max_us)
    );

    // SCAN
    let (scan, st) = with_pinger(port, ping_cap, || scan_all(args, &mut conn, budget))?;
    r.scan = scan;
    r.scan_stall = st;
    println!(
        "  SCAN: {} calls, {} keys returned ({} distinct loaded keys, {} others) in {:.2} s, \
         complete: {}, stall {} ms",
        r.scan.calls,
        r.scan.returned,
        r.scan.unique,
        r.scan.foreign,
        r.scan.secs,
        r.scan.complete,
        ms(st.max_us)
    );
    drop(conn);

    // restart
    let t = Instant::now();
    match target {
        Target::Redis => server.shutdown(&[b"NOSAVE"], budget)?,
        Target::Kvtier(_) => server.shutdown(&[], budget)?,
    }
    r.shutdown_secs = t.elapsed().as_secs_f64();
    drop(server);
    r.disk_bytes = report::disk_usage(&dir);
    let probe_n = args.keys / 2;
    let (probe_key, probe_value) = (key(probe_n), value(probe_n, args.value_size));
    let t = Instant::now();
    let mut server = spawn(args, server_bin, target, &dir)?;
    server.wait_ready(Some((&probe_key, &probe_value)), budget)?;
    r.restart_secs = t.elapsed().as_secs_f64();
    let mut conn = connect(server.port).map_err(io_err("connect"))?;
    r.dbsize_after_restart = dbsize(&mut conn)?;
    println!(
        "  shutdown {:.2} s, restart to first GET {:.3} s, DBSIZE after restart {}",
        r.shutdown_secs, r.restart_secs, r.dbsize_after_restart
    );
    if r.dbsize_after_restart != args.keys as i64 {
        return Err(format!(
            "DBSIZE after restart {}, expected {}",
            r.dbsize_after_restart, args.keys
        ));
    }
    drop(conn);
    match target {
        Target::Redis => server.shutdown(&[b"NOSAVE"], budget)?,
        Target::Kvtier(_) => server.shutdown(&[], budget)?,
    }
    Ok(r)
}

fn median(sorted: &[u64]) -> u64 {
    report::percentile(sorted, 50.0)
}

/// µs → milliseconds with a precision that suits the magnitude.
fn ms(us: u64) -> String {
    let m = us as f64 / 1000.0;
    if m < 10.0 {
        format!("{m:.2}")
    } else if m < 1000.0 {
        format!("{m:.1}")
    } else {
        fmt_rate(m)
    }
}

/// One output row: (csv name, table label, unit, per-result csv value, per-result shown value).
type Row = (&'static str, String, &'static str, Vec<(String, String)>);

fn rows(args: &Args, results: &[(Target, Results)]) -> Vec<Row> {
    let each = |f: &dyn Fn(&Results) -> (String, String)| -> Vec<(String, String)> {
        results.iter().map(|(_, r)| f(r)).collect()
    };
    let ms_row = |us: u64| (format!("{:.3}", us as f64 / 1000.0), ms(us));
    let n = args.keys as f64;
    vec![
        (
            "load_keys_per_sec",
            format!(
                "load: SET, pipelines of {}, keys/s (seconds)",
                args.pipeline
            ),
            "keys/s",
            each(&|r| {
                let rate = n / r.load_secs;
                (
                    format!("{rate:.1}"),
                    format!("{} ({:.2} s)", fmt_rate(rate), r.load_secs),
                )
            }),
        ),
        (
            "load_oom_retries",
            "SETs refused with -OOM (retried)".into(),
            "replies",
            each(&|r| (r.oom_retries.to_string(), r.oom_retries.to_string())),
        ),
        (
            "load_disk_lookups",
            "  store lookups that found nothing (INFO disk_load_misses)".into(),
            "lookups",
            each(&|r| {
                r.load_disk_misses.map_or(("NA".into(), "N/A".into()), |m| {
                    (m.to_string(), m.to_string())
                })
            }),
        ),
        (
            "rss_after_load_mib",
            "server RSS after the load".into(),
            "MiB",
            each(&|r| {
                let m = r.rss_after_load_kb as f64 / 1024.0;
                (format!("{m:.1}"), format!("{m:.0} MiB"))
            }),
        ),
        (
            "save_secs",
            "SAVE after the load".into(),
            "s",
            each(&|r| {
                (
                    format!("{:.3}", r.save_secs),
                    format!("{:.2} s", r.save_secs),
                )
            }),
        ),
        (
            "idle_ping_max_ms",
            "PING max round trip, idle (0.5 s)".into(),
            "ms",
            each(&|r| ms_row(r.idle_ping.max_us)),
        ),
        (
            "dbsize_ms",
            "DBSIZE, ms".into(),
            "ms",
            each(&|r| ms_row(r.dbsize_us)),
        ),
        (
            "dbsize_stall_ms",
            "  other client's max PING during DBSIZE, ms".into(),
            "ms",
            each(&|r| ms_row(r.dbsize_stall.max_us)),
        ),
        (
            "keys_ms",
            format!("KEYS key:{}*, ms", args.keys_prefix),
            "ms",
            each(&|r| ms_row(r.keys_us)),
        ),
        (
            "keys_matched",
            "  keys matched (all checked)".into(),
            "keys",
            each(&|r| (r.keys_matched.to_string(), r.keys_matched.to_string())),
        ),
        (
            "keys_stall_ms",
            "  other client's max PING during KEYS, ms".into(),
            "ms",
            each(&|r| ms_row(r.keys_stall.max_us)),
        ),
        (
            "randomkey_median_ms",
            format!("RANDOMKEY, median of {}, ms", args.randomkey_samples),
            "ms",
            each(&|r| ms_row(median(&r.randomkey_us))),
        ),
        (
            "randomkey_stall_ms",
            "  other client's max PING during RANDOMKEYs, ms".into(),
            "ms",
            each(&|r| ms_row(r.randomkey_stall.max_us)),
        ),
        (
            "scan_secs",
            format!("full SCAN, COUNT {}, seconds", args.scan_count),
            "s",
            each(&|r| {
                let shown = if r.scan.complete {
                    format!("{:.2}", r.scan.secs)
                } else {
                    format!("{:.2} (stopped, budget)", r.scan.secs)
                };
                (format!("{:.3}", r.scan.secs), shown)
            }),
        ),
        (
            "scan_calls",
            "  SCAN calls".into(),
            "calls",
            each(&|r| (r.scan.calls.to_string(), r.scan.calls.to_string())),
        ),
        (
            "scan_keys_returned",
            "  keys returned (distinct)".into(),
            "keys",
            each(&|r| {
                (
                    r.scan.returned.to_string(),
                    format!("{} ({})", r.scan.returned, r.scan.unique),
                )
            }),
        ),
        (
            "scan_all_keys_returned",
            "  every loaded key returned".into(),
            "bool",
            each(&|r| {
                let ok = r.scan.complete && r.scan.unique == args.keys && r.scan.foreign == 0;
                (ok.to_string(), if ok { "yes".into() } else { "NO".into() })
            }),
        ),
        (
            "scan_max_call_ms",
            "  slowest SCAN call, ms".into(),
            "ms",
            each(&|r| ms_row(r.scan.max_call_us)),
        ),
        (
            "scan_stall_ms",
            "  other client's max PING during the SCAN, ms".into(),
            "ms",
            each(&|r| ms_row(r.scan_stall.max_us)),
        ),
        (
            "shutdown_secs",
            "SHUTDOWN to exit".into(),
            "s",
            each(&|r| {
                (
                    format!("{:.3}", r.shutdown_secs),
                    format!("{:.2} s", r.shutdown_secs),
                )
            }),
        ),
        (
            "disk_mib",
            "data on disk (redis: dump.rdb)".into(),
            "MiB",
            each(&|r| {
                let m = r.disk_bytes as f64 / (1 << 20) as f64;
                (format!("{m:.1}"), format!("{m:.1} MiB"))
            }),
        ),
        (
            "restart_to_first_get_secs",
            "restart: spawn to first GET reply".into(),
            "s",
            each(&|r| {
                (
                    format!("{:.4}", r.restart_secs),
                    format!("{:.3} s", r.restart_secs),
                )
            }),
        ),
    ]
}

pub fn run(args: &Args) -> Result<(), String> {
    if args.keys == 0 || args.pipeline == 0 || args.scan_count == 0 {
        return Err("--keys, --pipeline and --scan-count must be at least 1".into());
    }
    if args.randomkey_samples == 0 {
        return Err("--randomkey-samples must be at least 1".into());
    }
    if args.value_size == 0 {
        return Err("--value-size must be at least 1".into());
    }
    if args.keys_prefix.is_empty() || !args.keys_prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Err("--keys-prefix must be digits".into());
    }
    if !args.budget_secs.is_finite() || args.budget_secs <= 0.0 {
        return Err("--budget-secs must be a positive number".into());
    }
    for b in &args.backends {
        if !report::BACKENDS.contains(&b.as_str()) {
            return Err(format!(
                "unknown backend '{b}' (valid: {})",
                report::BACKENDS.join(", ")
            ));
        }
    }
    let server_bin = args.server_bin.clone().unwrap_or_else(default_server_bin);
    if !args.backends.is_empty() && !server_bin.is_file() {
        return Err(format!(
            "kvtier-server not found at {} (--server-bin)",
            server_bin.display()
        ));
    }
    let mut targets: Vec<Target> = Vec::new();
    if !args.no_redis {
        targets.push(Target::Redis);
    }
    targets.extend(args.backends.iter().cloned().map(Target::Kvtier));
    println!(
        "keyspace: {} keys of {} B, kvtier {} (maxmemory {}), servers: {}",
        args.keys,
        args.value_size,
        server_bin.display(),
        args.maxmemory,
        targets
            .iter()
            .map(Target::label)
            .collect::<Vec<_>>()
            .join(", ")
    );

    let mut results = Vec::new();
    for t in &targets {
        let r = run_target(args, &server_bin, t).map_err(|e| format!("{}: {e}", t.label()))?;
        results.push((t.clone(), r));
    }

    let rows = rows(args, &results);
    let mut header = vec![format!("{} keys of {} B", args.keys, args.value_size)];
    for (t, r) in &results {
        header.push(match t {
            Target::Redis => format!("redis {}", r.version),
            Target::Kvtier(b) => format!("kvtier {b}"),
        });
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|(_, label, _, vals)| {
            let mut row = vec![label.clone()];
            row.extend(vals.iter().map(|(_, shown)| shown.clone()));
            row
        })
        .collect();
    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
    println!();
    print!("{}", markdown_table(&header_refs, &table));

    let mut csv = Vec::new();
    for (name, _, unit, vals) in &rows {
        for ((t, _), (v, _)) in results.iter().zip(vals) {
            let (server, backend) = t.csv_names();
            csv.push(vec![
                server.to_string(),
                backend.to_string(),
                args.keys.to_string(),
                name.to_string(),
                v.clone(),
                unit.to_string(),
            ]);
        }
    }
    let path = args.out.join("keyspace.csv");
    report::write_csv(
        &path,
        &["server", "backend", "keys", "metric", "value", "unit"],
        &csv,
    )?;
    println!("\nwrote {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values() {
        assert_eq!(key_index(&key(12345)), Some(12345));
        assert_eq!(key_index(b"key:0"), Some(0));
        assert_eq!(key_index(b"key:01"), None);
        assert_eq!(key_index(b"key:"), None);
        assert_eq!(key_index(b"other:1"), None);
        assert_eq!(value(7, 8), b"v7:hhhhh");
        assert_eq!(value(123456, 4), b"v123");
        assert_eq!(value(1, 32).len(), 32);
    }

    #[test]
    fn ms_formatting() {
        assert_eq!(ms(1234), "1.23");
        assert_eq!(ms(12_345), "12.3");
        assert_eq!(ms(1_234_567), "1,235");
    }
}
