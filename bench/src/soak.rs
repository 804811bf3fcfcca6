//! `kvtier-bench soak`: a bounded mixed load over a dataset much larger than `maxmemory`,
//! per backend, with every reply checked.
//!
//! For each backend, in a fresh directory under `TMPDIR`:
//!
//! 1. **preload**: about `data-mb` (default 10 x maxmemory) of values, sizes uniform in
//!    `min-value..=max-value`: strings (`s:N`), counters (`c:N`), hashes (`h:N`), lists (`l:N`),
//!    sets (`S:N`), sorted sets (`z:N`), and `owned-per-client` strings per load client
//!    (`o:C:N`) that only client C ever touches, so the driver knows their last value;
//! 2. **load**: `clients` connections run a mixed workload (GET SET INCR DEL EXPIRE HSET HGET
//!    LPUSH+LTRIM LRANGE SADD SISMEMBER ZADD ZSCORE MGET MSET MULTI/EXEC) until `seconds` have
//!    passed or `ops` commands were sent, whichever comes first; a fifth of the requests are
//!    pipelines of 2..=`max-pipeline` commands; `hot-pct` % of key choices go to a hot set of
//!    `hot-keys-pct` % of each kind's keys, the rest are uniform over all keys. Each key name has
//!    one type, so no command can get WRONGTYPE: every error reply is a finding. Values are
//!    self-describing (key, writer tag, length, filler), so a torn, truncated or misplaced value
//!    is recognised; an owned key must read back exactly the value its client last wrote;
//! 3. meanwhile one more connection sends PING every 2 ms (longest and p99 round trip), and a
//!    sampler reads the server's `VmRSS` every 100 ms and `INFO` every second;
//! 4. **verify**: `SAVE`, then every owned key is read back and compared with what its client
//!    last wrote (or its absence after a DEL); `SHUTDOWN`, restart on the same directory, and
//!    the same comparison again.
//!
//! Prints a summary line per backend and appends one CSV row per backend to `--csv`. Exits
//! with an error if any reply was wrong or any owned key mismatched.

use crate::report::{fmt_rate, percentile};
use crate::server::{connect, default_server_bin, io_err, rss_kb, spawn_kvtier};
use kvtier_testutil::{parse_info, Resp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Backends to soak, repeatable or comma-separated (fs, sled, rocksdb; any name the server
    /// binary accepts).
    #[arg(long = "backend", value_delimiter = ',', default_value = "fs")]
    backends: Vec<String>,
    /// The server's maxmemory, in MiB.
    #[arg(long, default_value_t = 32)]
    maxmemory_mb: u64,
    /// Dataset preloaded, in MiB of values (default: 10 x maxmemory).
    #[arg(long)]
    data_mb: Option<u64>,
    /// Smallest value (string, or a collection's total) in bytes.
    #[arg(long, default_value_t = 100)]
    min_value: usize,
    /// Largest value (string, or a collection's total) in bytes.
    #[arg(long, default_value_t = 8192)]
    max_value: usize,
    /// Load connections.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Time limit of the load phase, in seconds.
    #[arg(long, default_value_t = 75.0)]
    seconds: f64,
    /// Limit on commands sent in the load phase.
    #[arg(long, default_value_t = 5_000_000)]
    ops: u64,
    /// Longest pipeline a client sends (a fifth of the requests are pipelines of 2..=this).
    #[arg(long, default_value_t = 16)]
    max_pipeline: usize,
    /// Percentage of shared-key choices that go to the hot set.
    #[arg(long, default_value_t = 50)]
    hot_pct: u32,
    /// Size of the hot set, in percent of each kind's keys.
    #[arg(long, default_value_t = 1.0)]
    hot_keys_pct: f64,
    /// Keys only one client writes (its last value is known), per load client.
    #[arg(long, default_value_t = 64)]
    owned_per_client: usize,
    /// Connections of the preload.
    #[arg(long, default_value_t = 8)]
    preload_conns: usize,
    /// kvtier-server binary (default: $CARGO_TARGET_DIR/release/kvtier-server, else
    /// target/release/kvtier-server). Copy it elsewhere first if others rebuild it meanwhile.
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Extra server argument, repeatable (`--server-arg=--io-threads --server-arg=8`).
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    server_args: Vec<String>,
    /// CSV file a row per backend is appended to (created with a header if missing).
    #[arg(long, default_value = "bench/results/soak.csv")]
    csv: PathBuf,
    /// Seed of the workload's random choices (default: random; printed).
    #[arg(long)]
    seed: Option<u64>,
}

const MIB: u64 = 1 << 20;
/// Errors and mismatches printed in full (all are counted).
const SHOW_FIRST: usize = 8;
/// How long a server phase other than the load may take (preload, SAVE, shutdown, restart).
const PHASE_BUDGET: Duration = Duration::from_secs(900);

// ---------------------------------------------------------------------------------------------
// Keys and self-describing values

/// The shared key kinds; each key name has exactly one type for the whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    Counter,
    Hash,
    List,
    Set,
    Zset,
}

const KINDS: [Kind; 6] = [
    Kind::Str,
    Kind::Counter,
    Kind::Hash,
    Kind::List,
    Kind::Set,
    Kind::Zset,
];

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::Str => "s",
            Kind::Counter => "c",
            Kind::Hash => "h",
            Kind::List => "l",
            Kind::Set => "S",
            Kind::Zset => "z",
        }
    }
}

fn key(kind: Kind, i: u64) -> Vec<u8> {
    format!("{}:{i}", kind.prefix()).into_bytes()
}

fn owned_key(client: usize, j: usize) -> Vec<u8> {
    format!("o:{client}:{j}").into_bytes()
}

/// `{key}|{tag}|{len}|` then a filler byte derived from the tag: `len` bytes in all (more if
/// the header does not fit). `tag` says who wrote it (0: the preload).
fn value(key: &[u8], tag: u64, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len.max(key.len() + 48));
    v.extend_from_slice(key);
    v.push(b'|');
    v.extend_from_slice(tag.to_string().as_bytes());
    v.push(b'|');
    let len = len.max(v.len() + 21);
    v.extend_from_slice(len.to_string().as_bytes());
    v.push(b'|');
    v.resize(len, fill(tag));
    v
}

fn fill(tag: u64) -> u8 {
    b'a' + (tag % 26) as u8
}

/// Checks a value made by [`value`] for `key`; returns its (tag, length).
fn check_value(key: &[u8], v: &[u8]) -> Result<(u64, usize), String> {
    let bad = |why: &str| {
        format!(
            "{}: {why}: {} bytes {:?}",
            String::from_utf8_lossy(key),
            v.len(),
            String::from_utf8_lossy(&v[..v.len().min(60)])
        )
    };
    let rest = v
        .strip_prefix(key)
        .and_then(|r| r.strip_prefix(b"|"))
        .ok_or_else(|| bad("value of another key"))?;
    let mut parts = rest.splitn(3, |&b| b == b'|');
    let num = |p: Option<&[u8]>| -> Option<u64> { std::str::from_utf8(p?).ok()?.parse().ok() };
    let tag = num(parts.next()).ok_or_else(|| bad("bad tag"))?;
    let len = num(parts.next()).ok_or_else(|| bad("bad length"))? as usize;
    let filler = parts.next().ok_or_else(|| bad("no filler"))?;
    if v.len() != len {
        return Err(bad(&format!("length {} != {len} written", v.len())));
    }
    if filler.iter().any(|&b| b != fill(tag)) {
        return Err(bad("filler torn or mixed"));
    }
    Ok((tag, len))
}

/// A hash field's value is checked as a value of key `{key}.{field}`.
fn field_key(key: &[u8], field: u64) -> Vec<u8> {
    let mut k = key.to_vec();
    k.extend_from_slice(format!(".f{field}").as_bytes());
    k
}

/// Set and sorted set members: 32 bytes.
fn member(n: u64) -> Vec<u8> {
    format!("m{n:031}").into_bytes()
}

/// Hash fields and set members a key may hold (the load adds within the same range).
const FIELDS: u64 = 64;
const MEMBERS: u64 = 4096;

/// How many keys of each kind, from the dataset size.
#[derive(Debug, Clone)]
struct Layout {
    counts: [u64; 6],
    clients: usize,
    owned_per_client: usize,
    min_value: usize,
    max_value: usize,
}

impl Layout {
    fn new(args: &Args, data_bytes: u64) -> Layout {
        let avg = (args.min_value + args.max_value) as u64 / 2;
        let owned = (args.clients * args.owned_per_client) as u64 * avg;
        let rest = data_bytes.saturating_sub(owned);
        // Shares of the rest, in bytes: strings 64%, hashes 12%, lists 10%, sets 7%, zsets 7%;
        // counters are one per ten strings (a few bytes each).
        let n = |pct: u64| (rest * pct / 100 / avg).max(1);
        let strings = n(64);
        Layout {
            counts: [strings, (strings / 10).max(1), n(12), n(10), n(7), n(7)],
            clients: args.clients,
            owned_per_client: args.owned_per_client,
            min_value: args.min_value,
            max_value: args.max_value,
        }
    }

    fn count(&self, kind: Kind) -> u64 {
        self.counts[KINDS.iter().position(|&k| k == kind).unwrap_or(0)]
    }

    fn shared_keys(&self) -> u64 {
        self.counts.iter().sum()
    }

    fn owned_keys(&self) -> u64 {
        (self.clients * self.owned_per_client) as u64
    }

    fn size(&self, rng: &mut impl Rng) -> usize {
        rng.random_range(self.min_value..=self.max_value)
    }
}

/// splitmix64: the preload size of an owned key, which its client must know.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn owned_initial_len(layout: &Layout, seed: u64, client: usize, j: usize) -> usize {
    let span = (layout.max_value - layout.min_value + 1) as u64;
    layout.min_value + (mix(seed ^ ((client as u64) << 32) ^ j as u64) % span) as usize
}

// ---------------------------------------------------------------------------------------------
// Findings

/// Error replies, malformed replies and wrong values, counted; the first few kept verbatim.
#[derive(Default)]
struct Findings {
    count: AtomicU64,
    first: Mutex<Vec<String>>,
}

impl Findings {
    fn add(&self, msg: String) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first.lock().unwrap_or_else(|e| e.into_inner());
        if first.len() < SHOW_FIRST {
            eprintln!("  ! {msg}");
            first.push(msg);
        }
    }

    fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

// ---------------------------------------------------------------------------------------------
// Preload

/// Writes the dataset over `args.preload_conns` pipelined connections; returns the bytes of
/// values written. `-OOM` replies (backpressure) are retried; any other error is a finding.
fn preload(
    args: &Args,
    layout: &Layout,
    seed: u64,
    port: u16,
    findings: &Findings,
) -> Result<u64, String> {
    let shared = layout.shared_keys();
    let total = shared + layout.owned_keys();
    let conns = args.preload_conns.max(1) as u64;
    let bytes = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..conns)
            .map(|t| {
                let (bytes, done) = (&bytes, &done);
                s.spawn(move || -> Result<(), String> {
                    let mut conn = connect(port).map_err(io_err("preload connect"))?;
                    let mut rng = StdRng::seed_from_u64(mix(seed ^ t));
                    let mut g = t;
                    let mut pending: Vec<Vec<Vec<u8>>> = Vec::new();
                    while g < total || !pending.is_empty() {
                        if start.elapsed() > PHASE_BUDGET {
                            return Err("preload: over the phase budget".into());
                        }
                        while pending.len() < 32 && g < total {
                            let (cmd, n) = preload_command(layout, seed, g, &mut rng);
                            bytes.fetch_add(n, Ordering::Relaxed);
                            pending.push(cmd);
                            g += conns;
                        }
                        for cmd in &pending {
                            let args: Vec<&[u8]> = cmd.iter().map(Vec::as_slice).collect();
                            conn.queue(&args);
                        }
                        conn.flush().map_err(io_err("preload"))?;
                        let mut retry = Vec::new();
                        for cmd in pending.drain(..) {
                            match conn.try_read().map_err(io_err("preload reply"))? {
                                Resp::Error(e) if e.starts_with("OOM") => retry.push(cmd),
                                Resp::Error(e) => findings.add(format!(
                                    "preload {} {}: -{e}",
                                    String::from_utf8_lossy(&cmd[0]),
                                    String::from_utf8_lossy(&cmd[1])
                                )),
                                _ => {
                                    done.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                        if !retry.is_empty() {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        pending = retry;
                    }
                    Ok(())
                })
            })
            .collect();
        let mut last_print = Instant::now();
        while !handles.iter().all(|h| h.is_finished()) {
            std::thread::sleep(Duration::from_millis(100));
            if last_print.elapsed() >= Duration::from_secs(10) {
                last_print = Instant::now();
                println!(
                    "  preload: {}/{total} keys, {:.0} MB",
                    done.load(Ordering::Relaxed),
                    bytes.load(Ordering::Relaxed) as f64 / 1e6
                );
            }
        }
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| "preload thread panicked".to_string())?
            })
            .collect::<Result<Vec<()>, String>>()
    })?;
    Ok(bytes.into_inner())
}

/// The command that creates key number `g` of the preload, and its bytes of values.
fn preload_command(layout: &Layout, seed: u64, g: u64, rng: &mut StdRng) -> (Vec<Vec<u8>>, u64) {
    let mut g2 = g;
    for kind in KINDS {
        let n = layout.count(kind);
        if g2 >= n {
            g2 -= n;
            continue;
        }
        let k = key(kind, g2);
        let target = layout.size(rng);
        let mut cmd: Vec<Vec<u8>>;
        let mut bytes = 0u64;
        match kind {
            Kind::Str => {
                let v = value(&k, 0, target);
                bytes += v.len() as u64;
                cmd = vec![b"SET".to_vec(), k, v];
            }
            Kind::Counter => {
                let v = rng.random_range(0..1_000_000u64).to_string().into_bytes();
                bytes += v.len() as u64;
                cmd = vec![b"SET".to_vec(), k, v];
            }
            Kind::Hash => {
                cmd = vec![b"HSET".to_vec(), k.clone()];
                let mut f = 0;
                while bytes < target as u64 && f < FIELDS {
                    let v = value(&field_key(&k, f), 0, rng.random_range(50..=400));
                    bytes += v.len() as u64;
                    cmd.push(format!("f{f}").into_bytes());
                    cmd.push(v);
                    f += 1;
                }
            }
            Kind::List => {
                cmd = vec![b"RPUSH".to_vec(), k.clone()];
                while bytes < target as u64 {
                    let v = value(&k, 0, rng.random_range(40..=200));
                    bytes += v.len() as u64;
                    cmd.push(v);
                }
            }
            Kind::Set | Kind::Zset => {
                cmd = if kind == Kind::Set {
                    vec![b"SADD".to_vec(), k]
                } else {
                    vec![b"ZADD".to_vec(), k]
                };
                let count = (target as u64 / 32).clamp(1, MEMBERS);
                let first = rng.random_range(0..MEMBERS - count + 1);
                for m in first..first + count {
                    if kind == Kind::Zset {
                        cmd.push(rng.random_range(0..1000u32).to_string().into_bytes());
                    }
                    cmd.push(member(m));
                    bytes += 32;
                }
            }
        }
        return (cmd, bytes);
    }
    // An owned key.
    let (client, j) = (
        (g2 / layout.owned_per_client as u64) as usize,
        (g2 % layout.owned_per_client as u64) as usize,
    );
    let k = owned_key(client, j);
    let v = value(&k, 0, owned_initial_len(layout, seed, client, j));
    let n = v.len() as u64;
    (vec![b"SET".to_vec(), k, v], n)
}

// ---------------------------------------------------------------------------------------------
// The load

/// What a client knows of one of its owned keys.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Owned {
    /// Holds `value(key, tag, len)`.
    Val(u64, usize),
    Gone,
    /// A write to it got an error reply: not verified.
    Unknown,
}

/// The reply a queued command must get.
#[derive(Debug)]
enum Expect {
    Ok,
    Queued,
    /// Any integer.
    Int,
    /// Exactly this integer.
    IntIs(i64),
    /// Nil or a valid value of this key.
    Str(Vec<u8>),
    /// Nil or an integer as a bulk string.
    Counter,
    /// Nil or a float as a bulk string.
    Score,
    /// An array of valid values of this key.
    List(Vec<u8>),
    /// An array with one nil-or-valid value per key.
    MGet(Vec<Vec<u8>>),
    /// Exactly what the owner last wrote to this owned key.
    Owned(Vec<u8>, Owned),
    /// `+OK` from a write of owned key number `.0`; on anything else it becomes Unknown.
    OwnedWrite(usize),
    /// EXEC: an array of these.
    Exec(Vec<Expect>),
}

fn describe(r: &Resp) -> String {
    match r {
        Resp::Bulk(v) => format!(
            "bulk of {} bytes {:?}",
            v.len(),
            String::from_utf8_lossy(&v[..v.len().min(60)])
        ),
        Resp::Array(items) => format!("array of {}", items.len()),
        other => format!("{other:?}"),
    }
}

/// Checks `reply` against `want`; `owned` is the client's owned-key state (a failed owned
/// write marks its key Unknown).
fn check(want: &Expect, reply: &Resp, owned: &mut [Owned]) -> Result<(), String> {
    let unexpected = || Err(format!("expected {want:?}, got {}", describe(reply)));
    if let (Resp::Error(e), Expect::OwnedWrite(j)) = (reply, want) {
        owned[*j] = Owned::Unknown;
        return Err(format!("owned write: -{e}"));
    }
    match (want, reply) {
        (_, Resp::Error(e)) => Err(format!("-{e} (expected {want:?})")),
        (Expect::Ok | Expect::OwnedWrite(_), Resp::Simple(s)) if s == "OK" => Ok(()),
        (Expect::Queued, Resp::Simple(s)) if s == "QUEUED" => Ok(()),
        (Expect::Int, Resp::Int(_)) => Ok(()),
        (Expect::IntIs(n), Resp::Int(m)) if n == m => Ok(()),
        (Expect::Str(_) | Expect::Counter | Expect::Score, Resp::Nil) => Ok(()),
        (Expect::Str(k), Resp::Bulk(v)) => check_value(k, v).map(|_| ()),
        (Expect::Counter, Resp::Bulk(v))
            if std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
                .is_some() =>
        {
            Ok(())
        }
        (Expect::Score, Resp::Bulk(v))
            if std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse::<f64>().ok())
                .is_some() =>
        {
            Ok(())
        }
        (Expect::List(k), Resp::Array(items)) => {
            for item in items {
                match item {
                    Resp::Bulk(v) => {
                        check_value(k, v)?;
                    }
                    other => return Err(format!("list element {}", describe(other))),
                }
            }
            Ok(())
        }
        (Expect::MGet(keys), Resp::Array(items)) if keys.len() == items.len() => {
            for (k, item) in keys.iter().zip(items) {
                match item {
                    Resp::Nil => {}
                    Resp::Bulk(v) => {
                        check_value(k, v)?;
                    }
                    other => return Err(format!("MGET item {}", describe(other))),
                }
            }
            Ok(())
        }
        (Expect::Owned(_, Owned::Unknown | Owned::Gone), Resp::Nil) => Ok(()),
        (Expect::Owned(k, Owned::Unknown), Resp::Bulk(v)) => check_value(k, v).map(|_| ()),
        (Expect::Owned(k, Owned::Val(tag, len)), Resp::Bulk(v)) => {
            let got = check_value(k, v)?;
            if got == (*tag, *len) {
                Ok(())
            } else {
                Err(format!(
                    "{}: last written tag {tag} ({len} B), read tag {} ({} B)",
                    String::from_utf8_lossy(k),
                    got.0,
                    got.1
                ))
            }
        }
        (Expect::Owned(k, Owned::Val(tag, _)), Resp::Nil) => Err(format!(
            "{}: last written tag {tag}, read nil (lost write)",
            String::from_utf8_lossy(k)
        )),
        (Expect::Exec(wants), Resp::Array(items)) if wants.len() == items.len() => {
            for (w, r) in wants.iter().zip(items) {
                check(w, r, owned).map_err(|e| format!("in EXEC: {e}"))?;
            }
            Ok(())
        }
        _ => unexpected(),
    }
}

/// One load connection's commands and what it knows.
struct Client<'a> {
    id: usize,
    layout: &'a Layout,
    hot_pct: u32,
    hot_keys_pct: f64,
    rng: StdRng,
    seq: u64,
    owned: Vec<Owned>,
    /// (command, expected reply) queued for the next flush.
    batch: Vec<(Vec<Vec<u8>>, Expect)>,
}

impl Client<'_> {
    /// A shared key of `kind`: from the hot set `hot_pct` % of the time, else uniform.
    fn pick(&mut self, kind: Kind) -> Vec<u8> {
        let n = self.layout.count(kind);
        let hot = ((n as f64 * self.hot_keys_pct / 100.0) as u64).clamp(1, n);
        let i = if self.rng.random_range(0..100) < self.hot_pct {
            self.rng.random_range(0..hot)
        } else {
            self.rng.random_range(0..n)
        };
        key(kind, i)
    }

    fn tag(&mut self) -> u64 {
        self.seq += 1;
        ((self.id as u64 + 1) << 40) | self.seq
    }

    fn push(&mut self, cmd: Vec<Vec<u8>>, want: Expect) {
        self.batch.push((cmd, want));
    }

    fn string_set(&mut self) -> (Vec<u8>, Vec<u8>) {
        let k = self.pick(Kind::Str);
        let (tag, len) = (self.tag(), self.layout.size(&mut self.rng));
        let v = value(&k, tag, len);
        (k, v)
    }

    /// Queues one operation (one to six commands).
    fn queue_op(&mut self) {
        let b = |s: &str| s.as_bytes().to_vec();
        let roll = self.rng.random_range(0..100u32);
        match roll {
            0..=15 => {
                let k = self.pick(Kind::Str);
                self.push(vec![b("GET"), k.clone()], Expect::Str(k));
            }
            16..=24 => {
                let (k, v) = self.string_set();
                self.push(vec![b("SET"), k, v], Expect::Ok);
            }
            25..=30 => {
                let k = self.pick(Kind::Counter);
                self.push(vec![b("INCR"), k], Expect::Int);
            }
            31..=32 => {
                let k = self.pick(Kind::Counter);
                self.push(vec![b("GET"), k], Expect::Counter);
            }
            33 => {
                let kind = KINDS[self.rng.random_range(0..KINDS.len())];
                let k = self.pick(kind);
                self.push(vec![b("DEL"), k], Expect::Int);
            }
            34 => {
                let kind = KINDS[self.rng.random_range(0..KINDS.len())];
                let k = self.pick(kind);
                let ttl = self.rng.random_range(5..=60u32).to_string().into_bytes();
                self.push(vec![b("EXPIRE"), k, ttl], Expect::Int);
            }
            35..=40 => {
                let k = self.pick(Kind::Hash);
                let f = self.rng.random_range(0..FIELDS);
                let tag = self.tag();
                let v = value(&field_key(&k, f), tag, self.rng.random_range(50..=400));
                self.push(
                    vec![b("HSET"), k, format!("f{f}").into_bytes(), v],
                    Expect::Int,
                );
            }
            41..=45 => {
                let k = self.pick(Kind::Hash);
                let f = self.rng.random_range(0..FIELDS);
                let fk = field_key(&k, f);
                self.push(
                    vec![b("HGET"), k, format!("f{f}").into_bytes()],
                    Expect::Str(fk),
                );
            }
            46..=49 => {
                // LPUSH then LTRIM, so hot lists stay bounded.
                let k = self.pick(Kind::List);
                let tag = self.tag();
                let v = value(&k, tag, self.rng.random_range(40..=200));
                self.push(vec![b("LPUSH"), k.clone(), v], Expect::Int);
                self.push(vec![b("LTRIM"), k, b("0"), b("99")], Expect::Ok);
            }
            50..=53 => {
                let k = self.pick(Kind::List);
                self.push(
                    vec![b("LRANGE"), k.clone(), b("0"), b("9")],
                    Expect::List(k),
                );
            }
            54..=56 => {
                let k = self.pick(Kind::Set);
                let m = member(self.rng.random_range(0..MEMBERS));
                self.push(vec![b("SADD"), k, m], Expect::Int);
            }
            57 => {
                let k = self.pick(Kind::Set);
                let m = member(self.rng.random_range(0..MEMBERS));
                self.push(vec![b("SISMEMBER"), k, m], Expect::Int);
            }
            58..=60 => {
                let k = self.pick(Kind::Zset);
                let m = member(self.rng.random_range(0..MEMBERS));
                let score = self.rng.random_range(0..1000u32).to_string().into_bytes();
                self.push(vec![b("ZADD"), k, score, m], Expect::Int);
            }
            61 => {
                let k = self.pick(Kind::Zset);
                let m = member(self.rng.random_range(0..MEMBERS));
                self.push(vec![b("ZSCORE"), k, m], Expect::Score);
            }
            62..=65 => {
                let n = self.rng.random_range(2..=10);
                let keys: Vec<Vec<u8>> = (0..n).map(|_| self.pick(Kind::Str)).collect();
                let mut cmd = vec![b("MGET")];
                cmd.extend(keys.iter().cloned());
                self.push(cmd, Expect::MGet(keys));
            }
            66..=68 => {
                let mut cmd = vec![b("MSET")];
                for _ in 0..self.rng.random_range(2..=5) {
                    let (k, v) = self.string_set();
                    cmd.push(k);
                    cmd.push(v);
                }
                self.push(cmd, Expect::Ok);
            }
            69..=71 => {
                self.push(vec![b("MULTI")], Expect::Ok);
                let (k, v) = self.string_set();
                self.push(vec![b("SET"), k, v], Expect::Queued);
                let c = self.pick(Kind::Counter);
                self.push(vec![b("INCR"), c], Expect::Queued);
                let h = self.pick(Kind::Hash);
                let f = self.rng.random_range(0..FIELDS);
                let tag = self.tag();
                let hv = value(&field_key(&h, f), tag, self.rng.random_range(50..=400));
                self.push(
                    vec![b("HSET"), h, format!("f{f}").into_bytes(), hv],
                    Expect::Queued,
                );
                let s = self.pick(Kind::Str);
                self.push(vec![b("GET"), s.clone()], Expect::Queued);
                self.push(
                    vec![b("EXEC")],
                    Expect::Exec(vec![Expect::Ok, Expect::Int, Expect::Int, Expect::Str(s)]),
                );
            }
            _ => self.queue_owned_op(roll),
        }
    }

    /// Operations on this client's own keys, checked exactly.
    fn queue_owned_op(&mut self, roll: u32) {
        if self.owned.is_empty() {
            return;
        }
        let j = self.rng.random_range(0..self.owned.len());
        let k = owned_key(self.id, j);
        let state = self.owned[j];
        let b = |s: &str| s.as_bytes().to_vec();
        match roll {
            72..=84 => {
                let (tag, len) = (self.tag(), self.layout.size(&mut self.rng));
                let v = value(&k, tag, len);
                self.owned[j] = Owned::Val(tag, v.len());
                self.push(vec![b("SET"), k, v], Expect::OwnedWrite(j));
            }
            85..=97 => self.push(vec![b("GET"), k.clone()], Expect::Owned(k, state)),
            98 => {
                let n = i64::from(matches!(state, Owned::Val(..)));
                self.owned[j] = Owned::Gone;
                let want = if state == Owned::Unknown {
                    Expect::Int
                } else {
                    Expect::IntIs(n)
                };
                self.push(vec![b("DEL"), k], want);
            }
            _ => {
                // A long TTL: the key must keep its value (and still exist after the restart).
                let n = i64::from(matches!(state, Owned::Val(..)));
                let want = if state == Owned::Unknown {
                    Expect::Int
                } else {
                    Expect::IntIs(n)
                };
                self.push(vec![b("EXPIRE"), k, b("3600")], want);
            }
        }
    }
}

struct LoadShared<'a> {
    port: u16,
    stop: &'a AtomicBool,
    ops: &'a AtomicU64,
    ops_limit: u64,
    findings: &'a Findings,
}

/// One load client; returns its owned-key states at the end.
fn load_client(args: &Args, layout: &Layout, seed: u64, id: usize, sh: &LoadShared) -> Vec<Owned> {
    // The preload wrote value(key, 0, initial length) to each owned key.
    let owned = (0..layout.owned_per_client)
        .map(|j| {
            let len = owned_initial_len(layout, seed, id, j);
            Owned::Val(0, value(&owned_key(id, j), 0, len).len())
        })
        .collect();
    let mut c = Client {
        id,
        layout,
        hot_pct: args.hot_pct,
        hot_keys_pct: args.hot_keys_pct,
        rng: StdRng::seed_from_u64(mix(seed ^ 0x5eed ^ ((id as u64) << 20))),
        seq: 0,
        owned,
        batch: Vec::new(),
    };
    let mut conn = match connect(sh.port) {
        Ok(conn) => conn,
        Err(e) => {
            sh.findings.add(format!("client {id}: connect: {e}"));
            return vec![Owned::Unknown; c.owned.len()];
        }
    };
    while !sh.stop.load(Ordering::Relaxed) {
        let ops = if c.rng.random_range(0..5) == 0 {
            c.rng.random_range(2..=args.max_pipeline.max(2))
        } else {
            1
        };
        for _ in 0..ops {
            c.queue_op();
        }
        for (cmd, _) in &c.batch {
            let parts: Vec<&[u8]> = cmd.iter().map(Vec::as_slice).collect();
            conn.queue(&parts);
        }
        let sent = c.batch.len() as u64;
        let io = conn.flush().and_then(|()| {
            for (cmd, want) in c.batch.drain(..) {
                let reply = conn.try_read()?;
                if let Err(e) = check(&want, &reply, &mut c.owned) {
                    sh.findings.add(format!(
                        "client {id}: {} {}: {e}",
                        String::from_utf8_lossy(&cmd[0]),
                        cmd.get(1)
                            .map_or(String::new(), |a| String::from_utf8_lossy(
                                &a[..a.len().min(40)]
                            )
                            .into_owned())
                    ));
                }
            }
            Ok(())
        });
        if let Err(e) = io {
            // The connection is gone (or the reply stream is out of step): end this client and
            // verify none of its keys whose last write may not have been answered.
            sh.findings.add(format!("client {id}: connection: {e}"));
            return vec![Owned::Unknown; c.owned.len()];
        }
        if sh.ops.fetch_add(sent, Ordering::Relaxed) + sent >= sh.ops_limit {
            sh.stop.store(true, Ordering::Relaxed);
        }
    }
    c.owned
}

// ---------------------------------------------------------------------------------------------
// PING and RSS/INFO sampling

/// What the PING client saw.
#[derive(Default)]
struct PingLog {
    /// Every round trip: (seconds since `t0` when it was sent, µs).
    rtt: Vec<(f64, u64)>,
    /// The longest the pinger's own 2 ms sleep overran, in µs: how long this (client) thread
    /// can wait for a CPU. A PING stall much longer than this is the server's.
    sleep_overrun_max_us: u64,
}

/// Sends PING every 2 ms until `stop`.
fn pinger(port: u16, t0: Instant, stop: &AtomicBool, findings: &Findings) -> PingLog {
    let mut log = PingLog::default();
    let mut conn = match connect(port) {
        Ok(c) => c,
        Err(e) => {
            findings.add(format!("pinger: connect: {e}"));
            return log;
        }
    };
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        match conn.try_cmd(&[b"PING"]) {
            Ok(Resp::Simple(s)) if s == "PONG" => log.rtt.push((
                t.duration_since(t0).as_secs_f64(),
                t.elapsed().as_micros() as u64,
            )),
            Ok(other) => findings.add(format!("PING: {}", describe(&other))),
            Err(e) => {
                findings.add(format!("PING: {e}"));
                return log;
            }
        }
        let slept = Instant::now();
        std::thread::sleep(Duration::from_millis(2));
        let overrun = slept.elapsed().saturating_sub(Duration::from_millis(2));
        log.sleep_overrun_max_us = log.sleep_overrun_max_us.max(overrun.as_micros() as u64);
    }
    log
}

const PH_PRELOAD: usize = 0;
const PH_LOAD: usize = 1;
const PH_VERIFY: usize = 2;

/// What the sampler saw: RSS samples (KiB) per phase, and INFO maxima and the last INFO.
#[derive(Default)]
struct Samples {
    rss_kb: [Vec<u64>; 3],
    /// Per phase.
    used_memory_max: [u64; 3],
    /// One point per INFO, to explain the slowest PINGs.
    timeline: Vec<InfoPoint>,
    /// Largest anonymous and file-backed parts of the RSS (KiB), read once a second.
    rss_anon_max_kb: u64,
    rss_file_max_kb: u64,
    backend_memory_max: u64,
    dirty_keys_max: u64,
    last_info: HashMap<String, String>,
}

/// The server's state at one INFO sample.
#[derive(Debug, Clone, Copy)]
struct InfoPoint {
    t: f64,
    rss_kb: u64,
    used_memory: u64,
    dirty_keys: u64,
    over_limit: u64,
    writers_delayed: u64,
    saves_in_flight: u64,
    loads_in_flight: u64,
}

/// `RssAnon` and `RssFile` of /proc/<pid>/status in KiB: the heap and what is mapped from
/// files (page cache a backend maps, reclaimable).
fn rss_parts_kb(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("RssAnon:"), field("RssFile:"))
}

fn info_u64(info: &HashMap<String, String>, name: &str) -> u64 {
    info.get(name).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Reads VmRSS every 100 ms and INFO every second until `stop`.
fn sampler(pid: u32, port: u16, t0: Instant, phase: &AtomicUsize, stop: &AtomicBool) -> Samples {
    let mut s = Samples::default();
    let mut conn = connect(port).ok();
    let mut next = Instant::now();
    let mut tick = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let ph = phase.load(Ordering::Relaxed).min(2);
        let kb = rss_kb(pid);
        if let Some(kb) = kb {
            s.rss_kb[ph].push(kb);
        }
        if tick.is_multiple_of(10) {
            let (anon, file) = rss_parts_kb(pid);
            s.rss_anon_max_kb = s.rss_anon_max_kb.max(anon);
            s.rss_file_max_kb = s.rss_file_max_kb.max(file);
            if let Some(c) = conn.as_mut() {
                match c.try_cmd(&[b"INFO", b"all"]) {
                    Ok(r) => {
                        let info: HashMap<String, String> = parse_info(&r).into_iter().collect();
                        let used = info_u64(&info, "used_memory");
                        s.used_memory_max[ph] = s.used_memory_max[ph].max(used);
                        s.timeline.push(InfoPoint {
                            t: t0.elapsed().as_secs_f64(),
                            rss_kb: kb.unwrap_or(0),
                            used_memory: used,
                            dirty_keys: info_u64(&info, "dirty_keys"),
                            over_limit: info_u64(&info, "memory_over_limit"),
                            writers_delayed: info_u64(&info, "writers_delayed"),
                            saves_in_flight: info_u64(&info, "saves_in_flight"),
                            loads_in_flight: info_u64(&info, "loads_in_flight"),
                        });
                        s.backend_memory_max =
                            s.backend_memory_max.max(info_u64(&info, "backend_memory"));
                        s.dirty_keys_max = s.dirty_keys_max.max(info_u64(&info, "dirty_keys"));
                        s.last_info = info;
                    }
                    Err(_) => conn = None,
                }
            }
        }
        tick += 1;
        next += Duration::from_millis(100);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Verification

/// Reads every owned key whose last value is known and compares; returns (checked, mismatches).
fn verify(
    port: u16,
    owned: &[Vec<Owned>],
    what: &str,
    findings: &Findings,
) -> Result<(u64, u64), String> {
    let mut conn = connect(port).map_err(io_err("verify connect"))?;
    let all: Vec<(usize, usize, Owned)> = owned
        .iter()
        .enumerate()
        .flat_map(|(c, keys)| keys.iter().enumerate().map(move |(j, &st)| (c, j, st)))
        .filter(|(_, _, st)| *st != Owned::Unknown)
        .collect();
    let (mut checked, mut mismatches) = (0u64, 0u64);
    let mut scratch: Vec<Owned> = Vec::new();
    for chunk in all.chunks(200) {
        let keys: Vec<Vec<u8>> = chunk.iter().map(|&(c, j, _)| owned_key(c, j)).collect();
        for k in &keys {
            conn.queue(&[b"GET", k]);
        }
        conn.flush().map_err(io_err("verify GET"))?;
        for (k, &(_, _, st)) in keys.iter().zip(chunk) {
            let reply = conn.try_read().map_err(io_err("verify GET reply"))?;
            checked += 1;
            if let Err(e) = check(&Expect::Owned(k.clone(), st), &reply, &mut scratch) {
                mismatches += 1;
                findings.add(format!("verify {what}: {e}"));
            }
        }
    }
    Ok((checked, mismatches))
}

// ---------------------------------------------------------------------------------------------
// One backend

struct Outcome {
    backend: String,
    data_bytes: u64,
    load_secs: f64,
    ops: u64,
    errors: u64,
    ping_max_us: u64,
    ping_p99_us: u64,
    pings: usize,
    rss_max_mb: f64,
    rss_avg_mb: f64,
    rss_max_load_mb: f64,
    /// RSS maximum of the preload and of SAVE + read-back (before the restart).
    rss_max_preload_mb: f64,
    rss_max_verify_mb: f64,
    bound_mb: f64,
    verified: u64,
    mismatches: u64,
    used_memory_max: u64,
    used_memory_max_load: u64,
    backend_memory_max: u64,
    evicted: u64,
    disk_loads: u64,
    writers_delayed: u64,
    save_secs: f64,
    loadavg: String,
    pings_over_100ms: usize,
    rss_anon_max_mb: f64,
    rss_file_max_mb: f64,
    ping_sleep_overrun_us: u64,
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "NA".into())
}

fn run_backend(
    args: &Args,
    server_bin: &Path,
    backend: &str,
    seed: u64,
) -> Result<(Outcome, tempfile::TempDir), String> {
    let data_mb = args.data_mb.unwrap_or(10 * args.maxmemory_mb);
    let layout = Layout::new(args, data_mb * MIB);
    let tmp = tempfile::Builder::new()
        .prefix("kvtier-bench-soak.")
        .tempdir()
        .map_err(|e| format!("temp dir (set TMPDIR to choose where): {e}"))?;
    let dir = tmp.path().join("data");
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let maxmemory = format!("{}mb", args.maxmemory_mb);
    let mut server = spawn_kvtier(server_bin, backend, &maxmemory, &args.server_args, &dir)?;
    server.wait_ready(None, Duration::from_secs(60))?;
    let (port, pid) = (server.port, server.pid());
    println!(
        "soak {backend}: maxmemory {maxmemory}, {data_mb} MiB dataset: {} shared keys \
         (strings, counters, hashes, lists, sets, zsets: {:?}) + {} owned, data in {}",
        layout.shared_keys(),
        layout.counts,
        layout.owned_keys(),
        dir.display()
    );

    let findings = Findings::default();
    // Times of the PINGs and INFO samples are seconds since here.
    let t0 = Instant::now();
    let phase = AtomicUsize::new(PH_PRELOAD);
    let stop_sampler = AtomicBool::new(false);
    let stop_load = AtomicBool::new(false);
    let ops = AtomicU64::new(0);
    let mut o = std::thread::scope(|s| -> Result<Outcome, String> {
        let sampler_thread = s.spawn(|| sampler(pid, port, t0, &phase, &stop_sampler));
        let result = (|| -> Result<Outcome, String> {
            // preload
            let t = Instant::now();
            let data_bytes = preload(args, &layout, seed, port, &findings)?;
            println!(
                "  preload: {:.1} MB in {:.1} s, server RSS {} MB",
                data_bytes as f64 / 1e6,
                t.elapsed().as_secs_f64(),
                rss_kb(pid).unwrap_or(0) / 1024
            );

            // load, with the pinger
            phase.store(PH_LOAD, Ordering::Relaxed);
            let loadavg_start = loadavg();
            let stop_ping = AtomicBool::new(false);
            let sh = LoadShared {
                port,
                stop: &stop_load,
                ops: &ops,
                ops_limit: args.ops,
                findings: &findings,
            };
            let start = Instant::now();
            let (owned, ping_us) = std::thread::scope(|s2| {
                let ping = s2.spawn(|| pinger(port, t0, &stop_ping, &findings));
                let clients: Vec<_> = (0..args.clients)
                    .map(|id| {
                        let (layout, sh) = (&layout, &sh);
                        s2.spawn(move || load_client(args, layout, seed, id, sh))
                    })
                    .collect();
                let limit = Duration::from_secs_f64(args.seconds);
                let mut last_print = Instant::now();
                while !clients.iter().all(|h| h.is_finished()) {
                    std::thread::sleep(Duration::from_millis(50));
                    if start.elapsed() >= limit {
                        stop_load.store(true, Ordering::Relaxed);
                    }
                    if let Err(e) = server.check_alive() {
                        findings.add(format!("server died during the load: {e}"));
                        stop_load.store(true, Ordering::Relaxed);
                    }
                    if last_print.elapsed() >= Duration::from_secs(10) {
                        last_print = Instant::now();
                        let n = ops.load(Ordering::Relaxed);
                        println!(
                            "  load: {:.0} s, {n} commands, {}/s, {} errors, RSS {} MB",
                            start.elapsed().as_secs_f64(),
                            fmt_rate(n as f64 / start.elapsed().as_secs_f64()),
                            findings.count(),
                            rss_kb(pid).unwrap_or(0) / 1024
                        );
                    }
                }
                let owned: Vec<Vec<Owned>> = clients
                    .into_iter()
                    .map(|h| h.join().expect("load client thread"))
                    .collect();
                stop_ping.store(true, Ordering::Relaxed);
                let ping_us = ping.join().expect("pinger thread");
                (owned, ping_us)
            });
            let load_secs = start.elapsed().as_secs_f64();
            let ops_done = ops.load(Ordering::Relaxed);
            let load_errors = findings.count();

            // verify: after SAVE, then after a restart
            phase.store(PH_VERIFY, Ordering::Relaxed);
            server.check_alive()?;
            let mut conn = connect(port).map_err(io_err("connect"))?;
            let t = Instant::now();
            match conn.try_cmd(&[b"SAVE"]).map_err(io_err("SAVE"))? {
                Resp::Simple(s) if s == "OK" => {}
                other => findings.add(format!("SAVE: {}", describe(&other))),
            }
            let save_secs = t.elapsed().as_secs_f64();
            let (verified, mut mismatches) = verify(port, &owned, "after SAVE", &findings)?;
            println!(
                "  SAVE {save_secs:.2} s; {verified} owned keys checked after SAVE, \
                 {mismatches} mismatches"
            );
            stop_sampler.store(true, Ordering::Relaxed);
            let samples = sampler_thread.join().expect("sampler thread");
            server.shutdown(&[], PHASE_BUDGET)?;
            let mut restarted =
                spawn_kvtier(server_bin, backend, &maxmemory, &args.server_args, &dir)?;
            restarted.wait_ready(None, PHASE_BUDGET)?;
            let (v2, m2) = verify(restarted.port, &owned, "after restart", &findings)?;
            println!("  restart: {v2} owned keys checked, {m2} mismatches");
            mismatches += m2;
            restarted.shutdown(&[], PHASE_BUDGET)?;

            let pings = ping_us.rtt.len();
            let ping_sleep_overrun_us = ping_us.sleep_overrun_max_us;
            report_slow_pings(&ping_us.rtt, &samples.timeline);
            println!(
                "  the PING client's own 2 ms sleep overran by at most {:.1} ms (client-side CPU wait)",
                ping_sleep_overrun_us as f64 / 1000.0
            );
            let mut ping_us: Vec<u64> = ping_us.rtt.iter().map(|&(_, us)| us).collect();
            ping_us.sort_unstable();
            let mb = |kb: u64| kb as f64 / 1024.0;
            let all_rss: Vec<u64> = samples.rss_kb.iter().flatten().copied().collect();
            let info = &samples.last_info;
            Ok(Outcome {
                backend: backend.to_string(),
                data_bytes,
                load_secs,
                ops: ops_done,
                errors: load_errors,
                ping_max_us: ping_us.last().copied().unwrap_or(0),
                ping_p99_us: percentile(&ping_us, 99.0),
                pings,
                rss_max_mb: mb(all_rss.iter().copied().max().unwrap_or(0)),
                rss_avg_mb: mb(all_rss.iter().sum::<u64>() / all_rss.len().max(1) as u64),
                rss_max_load_mb: mb(samples.rss_kb[PH_LOAD].iter().copied().max().unwrap_or(0)),
                rss_max_preload_mb: mb(samples.rss_kb[PH_PRELOAD]
                    .iter()
                    .copied()
                    .max()
                    .unwrap_or(0)),
                rss_max_verify_mb: mb(samples.rss_kb[PH_VERIFY].iter().copied().max().unwrap_or(0)),
                bound_mb: 1.15 * args.maxmemory_mb as f64 + 32.0,
                verified: verified + v2,
                mismatches,
                used_memory_max: samples.used_memory_max.iter().copied().max().unwrap_or(0),
                used_memory_max_load: samples.used_memory_max[PH_LOAD],
                rss_anon_max_mb: mb(samples.rss_anon_max_kb),
                rss_file_max_mb: mb(samples.rss_file_max_kb),
                pings_over_100ms: ping_us.iter().filter(|&&us| us > 100_000).count(),
                ping_sleep_overrun_us,
                backend_memory_max: samples.backend_memory_max,
                evicted: info_u64(info, "evicted_keys"),
                disk_loads: info_u64(info, "disk_loads"),
                writers_delayed: info_u64(info, "writers_delayed_total"),
                save_secs,
                loadavg: loadavg_start,
            })
        })();
        // On an early error the sampler must still be stopped for the scope to end.
        stop_sampler.store(true, Ordering::Relaxed);
        stop_load.store(true, Ordering::Relaxed);
        result
    })?;
    // Errors found after the load (SAVE, verify) count too; mismatches are counted apart.
    o.errors = findings.count() - o.mismatches;
    Ok((o, tmp))
}

/// Prints the five slowest PINGs with what the server was doing around them (the INFO sample
/// nearest in time).
fn report_slow_pings(pings: &[(f64, u64)], timeline: &[InfoPoint]) {
    let mut slow: Vec<(f64, u64)> = pings.to_vec();
    slow.sort_unstable_by_key(|&(_, us)| std::cmp::Reverse(us));
    for &(t, us) in slow.iter().take(5) {
        let near = timeline
            .iter()
            .min_by(|a, b| (a.t - t).abs().total_cmp(&(b.t - t).abs()));
        let ctx = near.map_or(String::new(), |p| {
            format!(
                "; INFO at {:.1} s: RSS {} MB, used_memory {:.1} MB, dirty_keys {}, memory_over_limit {}, writers_delayed {}, saves/loads in flight {}/{}",
                p.t,
                p.rss_kb / 1024,
                p.used_memory as f64 / MIB as f64,
                p.dirty_keys,
                p.over_limit,
                p.writers_delayed,
                p.saves_in_flight,
                p.loads_in_flight
            )
        });
        println!("  slow PING at {t:.1} s: {:.1} ms{ctx}", us as f64 / 1000.0);
    }
}

// ---------------------------------------------------------------------------------------------
// Report

const CSV_HEADER: &str = "backend,maxmemory_mb,dataset_bytes,clients,seconds,ops,ops_per_sec,\
errors,max_ping_ms,p99_ping_ms,rss_max_mb,rss_bound_mb,within_bound,verify_mismatches,\
verified_keys,rss_avg_mb,rss_max_load_mb,used_memory_max_mb,backend_memory_max_mb,\
evicted_keys,disk_loads,writers_delayed,save_secs,loadavg_1m,unix_time,used_memory_max_load_mb,pings_over_100ms,rss_anon_max_mb,rss_file_max_mb,\
pinger_sleep_overrun_max_ms";

fn csv_row(args: &Args, o: &Outcome) -> String {
    let ms = |us: u64| format!("{:.2}", us as f64 / 1000.0);
    let mb = |b: u64| format!("{:.1}", b as f64 / MIB as f64);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    [
        o.backend.clone(),
        args.maxmemory_mb.to_string(),
        o.data_bytes.to_string(),
        args.clients.to_string(),
        format!("{:.1}", o.load_secs),
        o.ops.to_string(),
        format!("{:.0}", o.ops as f64 / o.load_secs),
        o.errors.to_string(),
        ms(o.ping_max_us),
        ms(o.ping_p99_us),
        format!("{:.1}", o.rss_max_mb),
        format!("{:.1}", o.bound_mb),
        if o.rss_max_mb <= o.bound_mb {
            "yes"
        } else {
            "no"
        }
        .to_string(),
        o.mismatches.to_string(),
        o.verified.to_string(),
        format!("{:.1}", o.rss_avg_mb),
        format!("{:.1}", o.rss_max_load_mb),
        mb(o.used_memory_max),
        mb(o.backend_memory_max),
        o.evicted.to_string(),
        o.disk_loads.to_string(),
        o.writers_delayed.to_string(),
        format!("{:.2}", o.save_secs),
        o.loadavg.clone(),
        now.to_string(),
        mb(o.used_memory_max_load),
        o.pings_over_100ms.to_string(),
        format!("{:.1}", o.rss_anon_max_mb),
        format!("{:.1}", o.rss_file_max_mb),
        ms(o.ping_sleep_overrun_us),
    ]
    .join(",")
}

fn append_csv(path: &Path, row: &str) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    let new = !path.exists();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("open {}: {e}", path.display()))?;
    let text = if new {
        format!("{CSV_HEADER}\n{row}\n")
    } else {
        format!("{row}\n")
    };
    f.write_all(text.as_bytes())
        .map_err(|e| format!("write {}: {e}", path.display()))
}

fn summary(o: &Outcome, args: &Args) -> String {
    format!(
        "soak {}: {} clients {:.1} s, {} commands = {}/s, {} errors, PING max {:.1} ms p99 {:.1} ms \
         ({} pings, {} over 100 ms), RSS max {:.1} MB avg {:.1} MB (preload {:.1}, load {:.1}, verify {:.1}; anon max {:.1}, file max {:.1}) bound {:.1} MB: {}, used_memory max \
         {:.1} MB (load {:.1} MB), backend_memory max {:.1} MB, {} evicted, {} disk loads, {} owned-key checks, \
         {} mismatches",
        o.backend,
        args.clients,
        o.load_secs,
        o.ops,
        fmt_rate(o.ops as f64 / o.load_secs),
        o.errors,
        o.ping_max_us as f64 / 1000.0,
        o.ping_p99_us as f64 / 1000.0,
        o.pings,
        o.pings_over_100ms,
        o.rss_max_mb,
        o.rss_avg_mb,
        o.rss_max_preload_mb,
        o.rss_max_load_mb,
        o.rss_max_verify_mb,
        o.rss_anon_max_mb,
        o.rss_file_max_mb,
        o.bound_mb,
        if o.rss_max_mb <= o.bound_mb {
            "within"
        } else {
            "OVER"
        },
        o.used_memory_max as f64 / MIB as f64,
        o.used_memory_max_load as f64 / MIB as f64,
        o.backend_memory_max as f64 / MIB as f64,
        o.evicted,
        o.disk_loads,
        o.verified,
        o.mismatches
    )
}

pub fn run(args: &Args) -> Result<(), String> {
    if args.clients == 0 || args.preload_conns == 0 || args.max_pipeline == 0 {
        return Err("--clients, --preload-conns and --max-pipeline must be at least 1".into());
    }
    if !args.seconds.is_finite() || args.seconds <= 0.0 || args.ops == 0 {
        return Err("--seconds and --ops must be positive (the load is bounded by both)".into());
    }
    if args.min_value < 1 || args.max_value < args.min_value {
        return Err("need 1 <= --min-value <= --max-value".into());
    }
    if args.maxmemory_mb == 0
        || args.hot_pct > 100
        || args.hot_keys_pct.is_nan()
        || args.hot_keys_pct <= 0.0
    {
        return Err("--maxmemory-mb must be positive, --hot-pct at most 100, \
                    --hot-keys-pct positive"
            .into());
    }
    let server_bin = args.server_bin.clone().unwrap_or_else(default_server_bin);
    if !server_bin.is_file() {
        return Err(format!(
            "kvtier-server not found at {} (--server-bin)",
            server_bin.display()
        ));
    }
    let seed = args.seed.unwrap_or_else(|| rand::rng().random());
    println!(
        "soak: seed {seed}, server {}, backends {}",
        server_bin.display(),
        args.backends.join(",")
    );
    let mut failures = Vec::new();
    let mut lines = Vec::new();
    for backend in &args.backends {
        match run_backend(args, &server_bin, backend, seed) {
            Ok((o, tmp)) => {
                let line = summary(&o, args);
                println!("{line}");
                append_csv(&args.csv, &csv_row(args, &o))?;
                if o.errors > 0 || o.mismatches > 0 {
                    failures.push(format!(
                        "{backend}: {} errors, {} mismatches",
                        o.errors, o.mismatches
                    ));
                }
                lines.push(line);
                // Removing the data directory can take minutes (fs: a file per key).
                drop(tmp);
            }
            Err(e) => {
                eprintln!("soak {backend}: {e}");
                failures.push(format!("{backend}: {e}"));
            }
        }
    }
    println!();
    for l in &lines {
        println!("{l}");
    }
    println!("appended to {}", args.csv.display());
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "soak failed (seed {seed}): {}",
            failures.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_describe_themselves() {
        let v = value(b"s:1", 7, 100);
        assert_eq!(v.len(), 100);
        assert_eq!(check_value(b"s:1", &v), Ok((7, 100)));
        assert!(check_value(b"s:2", &v).is_err());
        assert!(check_value(b"s:1", &v[..99]).is_err());
        let mut torn = v.clone();
        torn[90] = b'x';
        assert!(check_value(b"s:1", &torn).is_err());
        // Too short for its header: grows to fit.
        let short = value(b"o:3:4", 1 << 41, 5);
        assert_eq!(check_value(b"o:3:4", &short).map(|t| t.0), Ok(1 << 41));
    }

    #[test]
    fn owned_checks_are_exact() {
        let k = b"o:0:1".to_vec();
        let v = value(&k, 5, 300);
        let mut owned = vec![Owned::Unknown; 2];
        let want = Expect::Owned(k.clone(), Owned::Val(5, 300));
        assert!(check(&want, &Resp::Bulk(v.clone()), &mut owned).is_ok());
        let old = Expect::Owned(k.clone(), Owned::Val(4, 300));
        assert!(check(&old, &Resp::Bulk(v), &mut owned).is_err());
        assert!(check(&want, &Resp::Nil, &mut owned).is_err());
        let gone = Expect::Owned(k, Owned::Gone);
        assert!(check(&gone, &Resp::Nil, &mut owned).is_ok());
        let mut owned = vec![Owned::Val(1, 1)];
        assert!(check(
            &Expect::OwnedWrite(0),
            &Resp::Error("ERR x".into()),
            &mut owned
        )
        .is_err());
        assert_eq!(owned[0], Owned::Unknown);
    }
}
