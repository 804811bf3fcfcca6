//! kill -9 tests through a child process, for any [`DiskStore`](crate::store::DiskStore).
//!
//! The parent test re-executes the current test binary, running only itself (`--exact`), with
//! [`ROLE_ENV`] and [`DIR_ENV`] set. Seeing them, the same test function plays the child: it opens
//! the store in that directory and writes generations of self-describing values forever, telling
//! the parent on stdout how far it got. The parent kills it with SIGKILL (`Child::kill`) at a
//! random moment, reopens the store and checks what survived; then it starts the next child on
//! the same directory. Protocol, one line each: `KVTIER-KIT-READY` once the store is open,
//! `KVTIER-KIT-BEGIN n` before generation `n` writes anything, `KVTIER-KIT-ACK n` once its `sync`
//! returned.

use super::Opener;
use crate::store::{DbIndex, WriteOp};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Set in the child: which workload to play.
pub const ROLE_ENV: &str = "KVTIER_KIT_CRASH_ROLE";
/// Set in the child: the store directory.
pub const DIR_ENV: &str = "KVTIER_KIT_CRASH_DIR";
/// Set in the child: the first generation to write.
const START_ENV: &str = "KVTIER_KIT_CRASH_START";

/// What a child writes, and how the parent kills it.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    /// Names the workload: the child's [`ROLE_ENV`] value, also used in failure messages.
    pub name: &'static str,
    /// Keys of the multi-key batch (half in DB 0, half in DB 7, so batches cross DBs).
    pub batch_keys: usize,
    /// Largest value, in repetitions of a ~15-byte unit.
    pub max_reps: usize,
    /// `sync` after every this many generations.
    pub sync_every: u64,
    /// Child processes started and killed.
    pub rounds: usize,
}

/// Synced writes survive: small batches, a `sync` after each generation.
pub const DURABILITY: Workload = Workload {
    name: "durability",
    batch_keys: 4,
    max_reps: 300,
    sync_every: 1,
    rounds: 6,
};

/// Batches are all-or-nothing: big batches mostly without `sync`, so kills land inside them.
pub const ATOMICITY: Workload = Workload {
    name: "atomicity",
    batch_keys: 16,
    max_reps: 4_000,
    sync_every: 8,
    rounds: 6,
};

const BATCH_DBS: [DbIndex; 2] = [0, 7];
/// Put by every batch when `gen % 3 != 0`, deleted by it otherwise.
const OPT: &str = "batch:opt";
/// Written alone in every generation.
const COUNTER: &str = "counter";

fn batch_key(i: usize) -> (DbIndex, String) {
    (BATCH_DBS[i % 2], format!("batch:{i}"))
}

fn reps(w: &Workload, key: &str, gen: u64) -> usize {
    let h = key
        .bytes()
        .fold(gen.wrapping_mul(0x9e37_79b9_7f4a_7c15), |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    1 + (h >> 33) as usize % w.max_reps
}

/// A value that names its key and generation in every unit, with a length fixed by both, so a
/// torn or mixed value cannot pass for a whole one.
fn value(w: &Workload, key: &str, gen: u64) -> Vec<u8> {
    format!("{key}@{gen};")
        .repeat(reps(w, key, gen))
        .into_bytes()
}

fn parse_value(w: &Workload, key: &str, bytes: &[u8]) -> Result<u64, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| format!("{key}: value is not UTF-8"))?;
    let unit = text
        .split(';')
        .next()
        .ok_or_else(|| format!("{key}: empty value"))?;
    let gen: u64 = unit
        .strip_prefix(key)
        .and_then(|r| r.strip_prefix('@'))
        .and_then(|g| g.parse().ok())
        .ok_or_else(|| {
            format!(
                "{key}: value starts with {:?}",
                unit.chars().take(40).collect::<String>()
            )
        })?;
    if bytes != value(w, key, gen).as_slice() {
        return Err(format!(
            "{key}: torn or mixed value for generation {gen} ({} bytes)",
            bytes.len()
        ));
    }
    Ok(gen)
}

fn put(w: &Workload, db: DbIndex, key: &str, gen: u64) -> WriteOp {
    WriteOp::Put {
        db,
        key: key.as_bytes().to_vec(),
        value: value(w, key, gen),
    }
}

/// One line to the parent; a parent that went away ends the child.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    if out
        .write_all(format!("\n{line}\n").as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

fn child(open: Opener, w: &Workload, dir: &Path) {
    let start: u64 = std::env::var(START_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let store = open(dir).expect("child: open");
    say("KVTIER-KIT-READY");
    // Bounded, in case no parent ever kills it.
    for gen in start..start + 100_000 {
        say(&format!("KVTIER-KIT-BEGIN {gen}"));
        let mut batch: Vec<WriteOp> = (0..w.batch_keys)
            .map(|i| {
                let (db, k) = batch_key(i);
                put(w, db, &k, gen)
            })
            .collect();
        batch.push(if gen % 3 == 0 {
            WriteOp::Delete {
                db: 0,
                key: OPT.as_bytes().to_vec(),
            }
        } else {
            put(w, 0, OPT, gen)
        });
        store.write(&batch).expect("child: batch");
        store
            .write(&[put(w, 0, COUNTER, gen)])
            .expect("child: counter");
        if gen % w.sync_every == 0 {
            store.sync().expect("child: sync");
            say(&format!("KVTIER-KIT-ACK {gen}"));
        }
    }
}

#[derive(Default, Debug)]
struct Reported {
    ready: bool,
    last_begin: Option<u64>,
    last_ack: Option<u64>,
    acks: u64,
}

/// A tiny xorshift generator, so the kit (and the crash tests built on it) need no `rand`.
/// Picks kill moments and workload choices; not for anything that needs good randomness.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (a zero state would stay zero, so the low bit is forced on).
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed | 1)
    }

    /// A generator seeded from the clock: each run of a crash test kills at other moments.
    pub fn from_clock() -> XorShift {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        XorShift::new(nanos)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Reopens the store and checks what the round left; returns the newest generation found.
fn check(
    open: Opener,
    w: &Workload,
    dir: &Path,
    round: usize,
    rep: &Reported,
    seen: &mut HashMap<String, u64>,
) -> (u64, bool) {
    let store = open(dir).unwrap_or_else(|e| panic!("round {round}: reopen after kill: {e}"));
    let atomic = store.atomic_batches();
    let get = |db: DbIndex, key: &str| -> Option<u64> {
        let v = store
            .get(db, key.as_bytes())
            .unwrap_or_else(|e| panic!("round {round}: get {key}: {e}"))?;
        Some(parse_value(w, key, &v).unwrap_or_else(|e| panic!("round {round}: {e}")))
    };
    let mut found: HashMap<String, u64> = HashMap::new();
    let gens: Vec<Option<u64>> = (0..w.batch_keys)
        .map(|i| {
            let (db, k) = batch_key(i);
            get(db, &k)
        })
        .collect();
    let opt = get(0, OPT);
    if atomic {
        assert!(
            gens.iter().all(|g| *g == gens[0]),
            "round {round}: the store claims atomic batches, but the keys of one batch hold \
             different generations after kill -9: {gens:?}"
        );
        match gens[0] {
            Some(g) => assert_eq!(
                opt,
                (g % 3 != 0).then_some(g),
                "round {round}: {OPT} does not match the batch's generation {g}"
            ),
            None => assert_eq!(opt, None, "round {round}: {OPT} without its batch"),
        }
    }
    for (i, g) in gens.iter().enumerate() {
        if let Some(g) = g {
            found.insert(batch_key(i).1, *g);
        }
    }
    if let Some(g) = opt {
        found.insert(OPT.into(), g);
    }
    if let Some(g) = get(0, COUNTER) {
        found.insert(COUNTER.into(), g);
    }
    // Everything a sync acknowledged survives.
    if let Some(ack) = rep.last_ack {
        for key in [batch_key(0).1.as_str(), batch_key(1).1.as_str(), COUNTER] {
            let g = found.get(key).copied();
            assert!(
                g >= Some(ack),
                "round {round}: {key} recovered at generation {g:?}, but generation {ack} was \
                 acknowledged by sync"
            );
        }
    }
    // Nothing from the future, nothing older than what an earlier round recovered.
    for (key, g) in &found {
        assert!(
            rep.last_begin.is_some_and(|b| *g <= b) || seen.get(key) == Some(g),
            "round {round}: {key} holds generation {g}, never written (last begun {:?})",
            rep.last_begin
        );
        if let Some(prev) = seen.get(key) {
            assert!(
                g >= prev,
                "round {round}: {key} went back from generation {prev} to {g}"
            );
        }
    }
    // Scans agree with gets and do not fail.
    for db in BATCH_DBS {
        let mut scanned: Vec<String> = super::scan_all(&*store, db, 3)
            .into_iter()
            .map(|k| String::from_utf8(k).expect("utf8 key"))
            .collect();
        scanned.sort();
        let mut expected: Vec<String> = found
            .keys()
            .filter(|k| {
                (0..w.batch_keys).any(|i| batch_key(i) == (db, (*k).clone()))
                    || (db == 0 && (*k == OPT || *k == COUNTER))
            })
            .cloned()
            .collect();
        expected.sort();
        assert_eq!(
            scanned, expected,
            "round {round}: scan of db {db} disagrees with get"
        );
    }
    *seen = found;
    (seen.values().copied().max().unwrap_or(0), atomic)
}

/// The parent (or, in the child process, the child) of a kill -9 test. `test_name` is the
/// harness's name for the calling test, so the child runs exactly it.
pub fn run(open: Opener, w: &Workload, test_name: &str) {
    if std::env::var(ROLE_ENV).as_deref() == Ok(w.name) {
        let dir = std::env::var(DIR_ENV).expect("child: store directory");
        child(open, w, Path::new(&dir));
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("current test binary");
    let mut rng = XorShift::from_clock();
    let mut seen = HashMap::new();
    let mut next_gen = 1;
    let mut total_acks = 0;
    let mut atomic = false;
    for round in 0..w.rounds {
        let mut child = Command::new(&exe)
            .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
            .env(ROLE_ENV, w.name)
            .env(DIR_ENV, dir.path())
            .env(START_ENV, next_gen.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the child test process");
        let stdout = child.stdout.take().expect("child stdout");
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut rep = Reported::default();
            let mut lines = BufReader::new(stdout);
            let mut line = String::new();
            while lines.read_line(&mut line).unwrap_or(0) > 0 {
                // A line cut by the kill does not count.
                if line.ends_with('\n') {
                    let mut words = line.split_whitespace();
                    match (words.next(), words.next().and_then(|n| n.parse().ok())) {
                        (Some("KVTIER-KIT-READY"), _) => rep.ready = true,
                        (Some("KVTIER-KIT-BEGIN"), Some(n)) => rep.last_begin = Some(n),
                        (Some("KVTIER-KIT-ACK"), Some(n)) => {
                            rep.last_ack = Some(n);
                            rep.acks += 1;
                        }
                        _ => {}
                    }
                    let _ = tx.send((rep.ready, rep.acks));
                }
                line.clear();
            }
            rep
        });
        // Wait until the child is writing (and, in some rounds, until it acknowledged a few
        // syncs, so every run kills at least some children after synced data), then kill it a
        // random moment later.
        let want_acks = if round == 0 { 1 } else { rng.below(3) };
        let mut progressed = false;
        while let Ok((ready, acks)) = rx.recv_timeout(Duration::from_secs(60)) {
            if ready && acks >= want_acks {
                progressed = true;
                break;
            }
        }
        if progressed {
            std::thread::sleep(Duration::from_millis(rng.below(40)));
        }
        let early_exit = child.try_wait().expect("try_wait");
        child.kill().expect("kill the child");
        child.wait().expect("reap the child");
        let rep = reader.join().expect("reader thread");
        assert!(
            progressed && early_exit.is_none(),
            "round {round}: the child did not run as expected (ready: {}, acks: {}, exit: \
             {early_exit:?}); run `{} {test_name} --exact --nocapture` with {ROLE_ENV}={} and \
             {DIR_ENV}=<dir> to see it",
            rep.ready,
            rep.acks,
            exe.display(),
            w.name
        );
        total_acks += rep.acks;
        let (max_gen, claims_atomic) = check(open, w, dir.path(), round, &rep, &mut seen);
        atomic = claims_atomic;
        next_gen = next_gen
            .max(max_gen + 1)
            .max(rep.last_begin.map_or(0, |b| b + 1));
    }
    assert!(total_acks > 0, "no child ever completed a sync");
    eprintln!(
        "kill -9 ({}): {} rounds, {total_acks} acknowledged syncs, atomic batches {}",
        w.name,
        w.rounds,
        if atomic { "checked" } else { "not claimed" }
    );
}

/// The harness's name of a test function `name` in the module whose `module_path!()` is
/// `module_path` (the harness leaves out the crate name).
pub fn test_name(module_path: &str, name: &str) -> String {
    match module_path.split_once("::") {
        Some((_crate, rest)) => format!("{rest}::{name}"),
        None => name.to_string(),
    }
}
