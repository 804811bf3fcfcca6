//! kill -9 crash test for the fs backend.
//!
//! The parent test (`kill_9_never_tears_or_loses_acknowledged_data`) re-executes this test binary
//! as a child that runs the ignored test `crash_child`. The child opens an [`FsStore`] and writes
//! forever; the parent kills it with SIGKILL at a random moment, reopens the store and checks:
//! - every value is a complete self-describing value of its own key (never torn or mixed), and no
//!   read or scan returns an error;
//! - all keys of the multi-key batch hold the same generation (atomic batches), including the
//!   batch's put-or-delete key;
//! - nothing acknowledged after a `sync` is lost, and no generation goes backwards between rounds.
//!
//! Protocol on the child's stdout (the test harness only captures `print!`, so the child writes
//! to the real stdout): `KVTIER-BEGIN n` before generation `n` writes anything, and
//! `KVTIER-ACK n` once all writes of generation `n` and the following `sync` returned.

use kvtier_core::testkit::XorShift;
use kvtier_core::{DiskStore, WriteOp};
use kvtier_fs::FsStore;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const DIR_ENV: &str = "KVTIER_CRASH_DIR";
const START_ENV: &str = "KVTIER_CRASH_START";
const BATCH_KEYS: usize = 8;
const SINGLE_KEYS: u64 = 16;
const ROUNDS: usize = 25;

fn batch_key(i: usize) -> String {
    format!("batch:{i}")
}
/// Written by every batch: put when `gen % 3 != 0`, deleted otherwise.
const BATCH_OPT: &str = "batch:opt";
/// Written alone (single-key path) in every generation, never deleted.
const COUNTER: &str = "counter";
fn single_key(i: u64) -> String {
    format!("single:{i}")
}

/// Deterministic value size (in repetitions of the unit) for a key and generation, from one unit
/// (~15 bytes) to 14,000 units (~200 KB), so that some writes take a while.
fn reps(key: &str, gen: u64) -> usize {
    const SIZES: [usize; 8] = [1, 2, 17, 300, 1_000, 4_000, 9_000, 14_000];
    let h = key
        .bytes()
        .fold(gen.wrapping_mul(0x9e37_79b9_7f4a_7c15), |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    SIZES[(h >> 29) as usize % SIZES.len()]
}

/// A value that names its key and generation in every unit, with a length fixed by both.
fn value(key: &str, gen: u64) -> Vec<u8> {
    format!("{key}@{gen};").repeat(reps(key, gen)).into_bytes()
}

/// Checks that `bytes` is exactly `value(key, g)` for some `g`, and returns `g`.
fn parse_value(key: &str, bytes: &[u8]) -> Result<u64, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| format!("{key}: value is not UTF-8"))?;
    let unit_len = text
        .find(';')
        .ok_or_else(|| format!("{key}: no unit in a value of {} bytes", bytes.len()))?
        + 1;
    let gen: u64 = text[..unit_len - 1]
        .strip_prefix(key)
        .and_then(|r| r.strip_prefix('@'))
        .and_then(|g| g.parse().ok())
        .ok_or_else(|| format!("{key}: value starts with {:?}", &text[..unit_len]))?;
    if bytes != value(key, gen).as_slice() {
        return Err(format!(
            "{key}: torn or mixed value for generation {gen} ({} bytes, expected {})",
            bytes.len(),
            value(key, gen).len()
        ));
    }
    Ok(gen)
}

fn put(key: &str, gen: u64) -> WriteOp {
    WriteOp::Put {
        db: 0,
        key: key.as_bytes().to_vec(),
        value: value(key, gen),
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    out.write_all(format!("\n{line}\n").as_bytes()).unwrap();
    out.flush().unwrap();
}

/// The child: writes generations from `KVTIER_CRASH_START` on until it is killed. Ignored, and a
/// no-op without the environment variable, so `cargo test -- --ignored` does not hang.
#[test]
#[ignore = "child process of kill_9_never_tears_or_loses_acknowledged_data"]
fn crash_child() {
    let Ok(dir) = std::env::var(DIR_ENV) else {
        return;
    };
    let start: u64 = std::env::var(START_ENV).unwrap().parse().unwrap();
    let store = FsStore::open(&dir).expect("child: open");
    say("KVTIER-READY");
    for gen in start.. {
        say(&format!("KVTIER-BEGIN {gen}"));
        // One multi-key batch: 8 puts of the same generation, plus a put or a delete.
        let mut batch: Vec<WriteOp> = (0..BATCH_KEYS).map(|i| put(&batch_key(i), gen)).collect();
        batch.push(if gen % 3 == 0 {
            WriteOp::Delete {
                db: 0,
                key: BATCH_OPT.as_bytes().to_vec(),
            }
        } else {
            put(BATCH_OPT, gen)
        });
        store.write(&batch).expect("child: batch");
        // Single-key writes and an occasional single-key delete.
        store
            .write(&[put(&single_key(gen % SINGLE_KEYS), gen)])
            .expect("child: single put");
        if gen % 5 == 0 {
            let victim = single_key((gen * 7 + 3) % SINGLE_KEYS);
            store
                .write(&[WriteOp::Delete {
                    db: 0,
                    key: victim.into_bytes(),
                }])
                .expect("child: delete");
        }
        store.write(&[put(COUNTER, gen)]).expect("child: counter");
        store.sync().expect("child: sync");
        say(&format!("KVTIER-ACK {gen}"));
    }
}

/// What the child reported before it died.
#[derive(Default, Debug)]
struct Reported {
    ready: bool,
    last_begin: Option<u64>,
    last_ack: Option<u64>,
}

/// Reopens the store after a crash and checks every invariant. Returns the largest generation
/// found; updates `seen` (the last recovered generation of each present key).
fn check_recovered(
    dir: &Path,
    round: usize,
    rep: &Reported,
    seen: &mut HashMap<String, u64>,
) -> u64 {
    let store = FsStore::open(dir).unwrap_or_else(|e| panic!("round {round}: reopen: {e}"));
    let get = |key: &str| -> Option<u64> {
        let v = store
            .get(0, key.as_bytes())
            .unwrap_or_else(|e| panic!("round {round}: get {key}: {e}"))?;
        Some(parse_value(key, &v).unwrap_or_else(|e| panic!("round {round}: {e}")))
    };
    let mut found: HashMap<String, u64> = HashMap::new();

    // Batch atomicity: every batch key holds the same generation.
    let gens: Vec<Option<u64>> = (0..BATCH_KEYS).map(|i| get(&batch_key(i))).collect();
    let batch_gen = gens[0];
    assert!(
        gens.iter().all(|g| *g == batch_gen),
        "round {round}: batch keys hold different generations: {gens:?}"
    );
    let opt = get(BATCH_OPT);
    if let Some(g) = batch_gen {
        let expected = (g % 3 != 0).then_some(g);
        assert_eq!(
            opt, expected,
            "round {round}: {BATCH_OPT} does not match batch generation {g}"
        );
        for i in 0..BATCH_KEYS {
            found.insert(batch_key(i), g);
        }
    }
    if batch_gen.is_none() {
        assert_eq!(opt, None, "round {round}: {BATCH_OPT} without a batch");
    }
    if let Some(g) = opt {
        found.insert(BATCH_OPT.to_string(), g);
    }
    if let Some(g) = get(COUNTER) {
        found.insert(COUNTER.to_string(), g);
    }
    for i in 0..SINGLE_KEYS {
        if let Some(g) = get(&single_key(i)) {
            found.insert(single_key(i), g);
        }
    }

    // Acknowledged data survives: gen `ack` was fully written and synced.
    if let Some(ack) = rep.last_ack {
        let single = single_key(ack % SINGLE_KEYS);
        // The single key written in generation `ack` may have been deleted by a later one.
        let deleted_later = (ack + 1..=rep.last_begin.unwrap_or(ack))
            .any(|g| g % 5 == 0 && single_key((g * 7 + 3) % SINGLE_KEYS) == single);
        for key in [&batch_key(0), COUNTER, &single] {
            let g = found.get(key).copied();
            assert!(
                g >= Some(ack) || (*key == single && deleted_later),
                "round {round}: {key} recovered at {g:?}, but generation {ack} was acknowledged"
            );
        }
    }
    // Nothing from the future, nothing older than what an earlier round recovered.
    for (key, g) in &found {
        assert!(
            rep.last_begin.is_some_and(|b| *g <= b) || seen.get(key).is_some_and(|s| g == s),
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

    // A scan sees exactly the keys read above, and reading it never fails.
    let mut scanned = Vec::new();
    let mut cursor = Vec::new();
    loop {
        let page = store
            .scan(0, &cursor, 7)
            .unwrap_or_else(|e| panic!("round {round}: scan: {e}"));
        scanned.extend(page.keys.into_iter().map(|k| String::from_utf8(k).unwrap()));
        match page.next {
            Some(c) => cursor = c,
            None => break,
        }
    }
    scanned.sort();
    let mut expected: Vec<String> = found.keys().cloned().collect();
    expected.sort();
    assert_eq!(scanned, expected, "round {round}: scan disagrees with get");

    // Open cleaned up after the crash: no temp files, no pending journal.
    assert_eq!(
        std::fs::read_dir(dir.join("tmp")).unwrap().count(),
        0,
        "round {round}: temp files left after open"
    );
    assert!(
        !dir.join("journal/batch.jnl").exists(),
        "round {round}: journal still pending after open"
    );

    *seen = found;
    seen.values().copied().max().unwrap_or(0)
}

#[test]
fn kill_9_never_tears_or_loses_acknowledged_data() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = XorShift::from_clock();
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut next_gen: u64 = 1;
    let mut total_acks = 0;

    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args(["crash_child", "--exact", "--ignored", "--nocapture"])
            .args(["--test-threads=1"])
            .env(DIR_ENV, dir.path())
            .env(START_ENV, next_gen.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn child");
        // A reader thread follows the child's reports until the pipe closes at its death.
        let stdout = child.stdout.take().unwrap();
        let (ready_tx, ready_rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut rep = Reported::default();
            let mut out = BufReader::new(stdout);
            let mut line = String::new();
            while out.read_line(&mut line).unwrap_or(0) > 0 {
                // Only complete lines count (the child can die in the middle of one).
                if line.ends_with('\n') {
                    let mut words = line.split_whitespace();
                    match (words.next(), words.next().and_then(|n| n.parse().ok())) {
                        (Some("KVTIER-READY"), _) => {
                            rep.ready = true;
                            let _ = ready_tx.send(());
                        }
                        (Some("KVTIER-BEGIN"), Some(n)) => rep.last_begin = Some(n),
                        (Some("KVTIER-ACK"), Some(n)) => rep.last_ack = Some(n),
                        _ => {}
                    }
                }
                line.clear();
            }
            rep
        });

        let ready = ready_rx.recv_timeout(Duration::from_secs(20));
        let delay = Duration::from_millis(5 + rng.below(146));
        if ready.is_ok() {
            std::thread::sleep(delay);
        }
        let early_exit = child.try_wait().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        let rep = reader.join().unwrap();
        assert!(
            ready.is_ok() && early_exit.is_none(),
            "round {round}: child not running as expected (ready: {}, exit: {early_exit:?})",
            rep.ready
        );
        if let Some(ack) = rep.last_ack {
            total_acks += ack + 1 - next_gen;
        }

        let max_gen = check_recovered(dir.path(), round, &rep, &mut seen);
        next_gen = next_gen
            .max(max_gen + 1)
            .max(rep.last_begin.map_or(0, |b| b + 1));
    }
    eprintln!(
        "crash test: {ROUNDS} rounds, {total_acks} acknowledged generations, {:.1?}",
        started.elapsed()
    );
    assert!(total_acks > 0, "the child never completed a generation");
}
