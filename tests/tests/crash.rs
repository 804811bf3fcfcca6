//! Crash suite: a concurrent workload (strings, lists, counters, hashes, sets, MSET and
//! MULTI/EXEC pairs, DEL, FLUSHDB) runs against the real server while SAVEs come and go; the server is
//! killed with SIGKILL at a random moment, restarted, and every key is checked against the
//! recorded history:
//! - whatever was acknowledged before the last acknowledged SAVE was sent is there;
//! - anything newer may be old or new, but is one of the values written (never torn, never
//!   another key's), lists, hashes and sets are prefixes of what was added (exactly, member by
//!   member, with the count the manifest gives: the settings page them within a cycle or two), counters lie between the
//!   durable and the attempted count, and the two keys of a transaction or MSET agree.
//!
//! Cycles per run: `KVTIER_CRASH_CYCLES` (default 6); the backend is the suite's
//! (`KVTIER_TEST_BACKEND`). The figures of a long run are in docs/reliability.md.

use kvtier_tests::{test_backend, Client, Resp, Server};
use rand::{Rng, SeedableRng};
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CLIENTS: usize = 4;
const STRINGS: usize = 8;
/// Small page settings, so that lists, hashes and sets become paged within a cycle or two and
/// the checker sees paged values cut by the kill as well as one-record ones.
const ARGS: &[&str] = &[
    "--maxmemory",
    "2mb",
    "--cache-flush-delay",
    "50",
    "--paged-value-min-bytes",
    "512",
    "--page-bytes",
    "128",
];

/// Acknowledgement order across all clients: a write whose ack number is below the number
/// taken just before an acknowledged SAVE was sent is durable.
static ACKS: AtomicU64 = AtomicU64::new(1);

fn ack_now() -> u64 {
    ACKS.fetch_add(1, Ordering::SeqCst)
}

fn encode(args: &[String]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

/// Sends one request; `None` once the server is gone.
fn call(c: &mut Client, args: &[String]) -> Option<Resp> {
    c.stream.write_all(&encode(args)).ok()?;
    c.try_read().ok()
}

fn s(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| p.to_string()).collect()
}

/// One write of a string key: its sequence number (`None` = deleted) and when it was acked.
#[derive(Clone, Debug)]
struct Op {
    seq: Option<u64>,
    ack: Option<u64>,
}

/// What one client wrote during a cycle, and the state found at its start.
#[derive(Default, Debug, Clone)]
struct History {
    /// Per string key: the state at the cycle's start, then the writes.
    strings: Vec<(Option<u64>, Vec<Op>)>,
    /// List: length at the start; pushes (element = index) with their acks.
    list: (u64, Vec<Option<u64>>),
    /// Counter: value at the start; increments' acks.
    counter: (i64, Vec<Option<u64>>),
    /// Hash: fields at the start; new fields' acks.
    hash: (u64, Vec<Option<u64>>),
    /// Set: members at the start; new members' acks.
    set: (u64, Vec<Option<u64>>),
    /// Pair: value of both keys at the start; writes.
    pair: (Option<u64>, Vec<Op>),
}

fn value(c: usize, key: &str, seq: u64) -> String {
    // Self-describing, so a torn or misplaced value is recognised.
    format!("{c}|{key}|{seq}|{}", "p".repeat((seq % 7 * 40) as usize))
}

fn parse(c: usize, key: &str, v: &str) -> u64 {
    let mut it = v.splitn(4, '|');
    let (cc, kk, seq, pad) = (it.next(), it.next(), it.next(), it.next());
    assert_eq!(
        cc,
        Some(c.to_string().as_str()),
        "{key}: value of another client: {v}"
    );
    assert_eq!(kk, Some(key), "{key}: value of another key: {v}");
    let seq: u64 = seq.and_then(|s| s.parse().ok()).expect("sequence");
    assert_eq!(
        pad.map(str::len),
        Some((seq % 7 * 40) as usize),
        "{key}: torn value"
    );
    seq
}

fn run_client(port: u16, c: usize, h: &Mutex<History>, stop: &AtomicBool, seed: u64) -> Option<()> {
    let mut cl = Client::connect(port);
    cl.set_timeout(Duration::from_secs(20));
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut next_seq = {
        let h = h.lock().unwrap();
        let mut m = h.pair.0.unwrap_or(0);
        for (start, _) in &h.strings {
            m = m.max(start.unwrap_or(0));
        }
        m + 1
    };
    while !stop.load(Ordering::Relaxed) {
        match rng.random_range(0..11) {
            0..=3 => {
                let i = rng.random_range(0..STRINGS);
                let key = format!("s:{c}:{i}");
                let del = rng.random_range(0..8) == 0;
                let seq = next_seq;
                next_seq += 1;
                let op_index = {
                    let mut h = h.lock().unwrap();
                    h.strings[i].1.push(Op {
                        seq: (!del).then_some(seq),
                        ack: None,
                    });
                    h.strings[i].1.len() - 1
                };
                let req = if del {
                    s(&["DEL", &key])
                } else {
                    s(&["SET", &key, &value(c, &key, seq)])
                };
                call(&mut cl, &req)?;
                h.lock().unwrap().strings[i].1[op_index].ack = Some(ack_now());
            }
            4 => {
                let idx = {
                    let mut h = h.lock().unwrap();
                    h.list.1.push(None);
                    h.list.0 + h.list.1.len() as u64 - 1
                };
                call(&mut cl, &s(&["RPUSH", &format!("l:{c}"), &idx.to_string()]))?;
                let mut h = h.lock().unwrap();
                let pos = (idx - h.list.0) as usize;
                h.list.1[pos] = Some(ack_now());
            }
            5 => {
                let pos = {
                    let mut h = h.lock().unwrap();
                    h.counter.1.push(None);
                    h.counter.1.len() - 1
                };
                call(&mut cl, &s(&["INCR", &format!("n:{c}")]))?;
                h.lock().unwrap().counter.1[pos] = Some(ack_now());
            }
            6 => {
                let idx = {
                    let mut h = h.lock().unwrap();
                    h.hash.1.push(None);
                    h.hash.0 + h.hash.1.len() as u64 - 1
                };
                let f = format!("f{idx}");
                call(
                    &mut cl,
                    &s(&["HSET", &format!("h:{c}"), &f, &idx.to_string()]),
                )?;
                let mut h = h.lock().unwrap();
                let pos = (idx - h.hash.0) as usize;
                h.hash.1[pos] = Some(ack_now());
            }
            10 => {
                let idx = {
                    let mut h = h.lock().unwrap();
                    h.set.1.push(None);
                    h.set.0 + h.set.1.len() as u64 - 1
                };
                call(
                    &mut cl,
                    &s(&["SADD", &format!("t:{c}"), &format!("m{idx}")]),
                )?;
                let mut h = h.lock().unwrap();
                let pos = (idx - h.set.0) as usize;
                h.set.1[pos] = Some(ack_now());
            }
            _ => {
                let (a, b) = (format!("p:{c}:a"), format!("p:{c}:b"));
                let seq = next_seq;
                next_seq += 1;
                let pos = {
                    let mut h = h.lock().unwrap();
                    h.pair.1.push(Op {
                        seq: Some(seq),
                        ack: None,
                    });
                    h.pair.1.len() - 1
                };
                // The same value under both keys: written by MSET or by a transaction.
                if rng.random_range(0..2) == 0 {
                    let req = s(&["MSET", &a, &value(c, "p", seq), &b, &value(c, "p", seq)]);
                    call(&mut cl, &req)?;
                } else {
                    call(&mut cl, &s(&["MULTI"]))?;
                    call(&mut cl, &s(&["SET", &a, &value(c, "p", seq)]))?;
                    call(&mut cl, &s(&["SET", &b, &value(c, "p", seq)]))?;
                    let r = call(&mut cl, &s(&["EXEC"]))?;
                    assert!(matches!(r, Resp::Array(_)), "EXEC: {r:?}");
                }
                h.lock().unwrap().pair.1[pos].ack = Some(ack_now());
            }
        }
    }
    Some(())
}

/// The flusher works in DB 1: writes keys, sometimes FLUSHDB. Returns (written keys with their
/// acks, flushes with their send and ack order).
#[derive(Default)]
struct Flushes {
    /// (key, sent order, ack)
    keys: Vec<(String, u64, Option<u64>)>,
    /// (sent order, ack)
    flushes: Vec<(u64, Option<u64>)>,
}

fn run_flusher(port: u16, f: &Mutex<Flushes>, stop: &AtomicBool, cycle: usize) -> Option<()> {
    let mut cl = Client::connect(port);
    cl.set_timeout(Duration::from_secs(20));
    call(&mut cl, &s(&["SELECT", "1"]))?;
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let sent = ack_now();
        if i.is_multiple_of(40) {
            f.lock().unwrap().flushes.push((sent, None));
            call(&mut cl, &s(&["FLUSHDB"]))?;
            f.lock().unwrap().flushes.last_mut().unwrap().1 = Some(ack_now());
        } else {
            let key = format!("f:{cycle}:{i}");
            f.lock().unwrap().keys.push((key.clone(), sent, None));
            call(&mut cl, &s(&["SET", &key, "x"]))?;
            f.lock().unwrap().keys.last_mut().unwrap().2 = Some(ack_now());
        }
    }
    Some(())
}

/// Sends SAVE now and then; returns the ack number taken before the last SAVE that succeeded.
fn run_saver(port: u16, stop: &AtomicBool, floor: &AtomicU64) -> Option<()> {
    let mut cl = Client::connect(port);
    cl.set_timeout(Duration::from_secs(30));
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(150));
        let before = ack_now();
        if call(&mut cl, &s(&["SAVE"]))? == Resp::ok() {
            floor.fetch_max(before, Ordering::SeqCst);
        }
    }
    Some(())
}

fn durable(ack: Option<u64>, floor: u64) -> bool {
    ack.is_some_and(|a| a < floor)
}

/// Checks one client's keys after the restart and returns the state the next cycle starts from.
/// How many of a run of appends (the count at the start, then each append's ack) are durable:
/// all of them up to the last durable one, since a later ack implies the earlier ones.
fn durable_count(appends: &(u64, Vec<Option<u64>>), floor: u64) -> u64 {
    appends.0
        + appends
            .1
            .iter()
            .rposition(|a| durable(*a, floor))
            .map_or(0, |p| p as u64 + 1)
}

fn verify(cl: &mut Client, c: usize, h: &History, floor: u64) -> History {
    let mut next = History::default();
    for (i, (start, ops)) in h.strings.iter().enumerate() {
        let key = format!("s:{c}:{i}");
        let got = match cl.cmd(&["GET", &key]) {
            Resp::Nil => None,
            r @ Resp::Bulk(_) => Some(parse(c, &key, &r.as_str())),
            other => panic!("{key}: {other:?}"),
        };
        // Allowed: the newest durable state and anything written after it.
        let last_durable = ops.iter().rposition(|o| durable(o.ack, floor));
        let mut allowed: Vec<Option<u64>> = match last_durable {
            Some(d) => ops[d..].iter().map(|o| o.seq).collect(),
            None => std::iter::once(*start)
                .chain(ops.iter().map(|o| o.seq))
                .collect(),
        };
        allowed.dedup();
        assert!(
            allowed.contains(&got),
            "{key}: found {got:?}, allowed {allowed:?} (floor {floor}, ops {ops:?})"
        );
        next.strings.push((got, Vec::new()));
    }
    // List: a prefix of the pushes, at least the durable ones.
    let key = format!("l:{c}");
    let Resp::Array(items) = cl.cmd(&["LRANGE", &key, "0", "-1"]) else {
        panic!("LRANGE {key}")
    };
    let got: Vec<u64> = items.iter().map(|r| r.as_str().parse().unwrap()).collect();
    let expect: Vec<u64> = (0..got.len() as u64).collect();
    assert_eq!(got, expect, "{key}: not a prefix of the pushes");
    let durable_len = durable_count(&h.list, floor);
    let attempted = h.list.0 + h.list.1.len() as u64;
    let n = got.len() as u64;
    assert!(
        n >= durable_len && n <= attempted,
        "{key}: {n} items, durable {durable_len}, attempted {attempted}"
    );
    next.list = (n, Vec::new());
    // Counter.
    let key = format!("n:{c}");
    let n = match cl.cmd(&["GET", &key]) {
        Resp::Nil => 0,
        r => r.as_str().parse::<i64>().unwrap(),
    };
    let durable_n = h.counter.0
        + h.counter
            .1
            .iter()
            .rposition(|a| durable(*a, floor))
            .map_or(0, |p| p as i64 + 1);
    let attempted = h.counter.0 + h.counter.1.len() as i64;
    assert!(
        n >= durable_n && n <= attempted,
        "{key}: {n}, durable {durable_n}, attempted {attempted}"
    );
    next.counter = (n, Vec::new());
    // Hash: exactly the fields f0..f<m> with their values, as many as HLEN (the manifest's
    // count) says: a page lost or mixed with another state shows as a gap or a wrong count.
    let key = format!("h:{c}");
    let m = cl.cmd(&["HLEN", &key]).as_int() as u64;
    let Resp::Array(flat) = cl.cmd(&["HGETALL", &key]) else {
        panic!("HGETALL {key}")
    };
    let mut fields: Vec<(u64, String)> = flat
        .chunks(2)
        .map(|p| {
            let f = p[0].as_str();
            let idx = f.strip_prefix('f').and_then(|i| i.parse().ok());
            (
                idx.unwrap_or_else(|| panic!("{key}: field {f}")),
                p[1].as_str(),
            )
        })
        .collect();
    fields.sort();
    let expect: Vec<(u64, String)> = (0..m).map(|i| (i, i.to_string())).collect();
    assert_eq!(
        fields, expect,
        "{key}: fields not f0..f{m} with their values"
    );
    let durable_m = durable_count(&h.hash, floor);
    let attempted = h.hash.0 + h.hash.1.len() as u64;
    assert!(
        m >= durable_m && m <= attempted,
        "{key}: {m} fields, durable {durable_m}, attempted {attempted}"
    );
    next.hash = (m, Vec::new());
    // Set: exactly the members m0..m<k>, as many as SCARD says.
    let key = format!("t:{c}");
    let k = cl.cmd(&["SCARD", &key]).as_int() as u64;
    let Resp::Array(members) = cl.cmd(&["SMEMBERS", &key]) else {
        panic!("SMEMBERS {key}")
    };
    let mut got: Vec<u64> = members
        .iter()
        .map(|r| {
            let m = r.as_str();
            let idx = m.strip_prefix('m').and_then(|i| i.parse().ok());
            idx.unwrap_or_else(|| panic!("{key}: member {m}"))
        })
        .collect();
    got.sort_unstable();
    assert_eq!(got, (0..k).collect::<Vec<_>>(), "{key}: not m0..m{k}");
    let durable_k = durable_count(&h.set, floor);
    let attempted = h.set.0 + h.set.1.len() as u64;
    assert!(
        k >= durable_k && k <= attempted,
        "{key}: {k} members, durable {durable_k}, attempted {attempted}"
    );
    next.set = (k, Vec::new());
    // Pair: both keys agree (atomic batch), and the state is allowed.
    let (a, b) = (format!("p:{c}:a"), format!("p:{c}:b"));
    let Resp::Array(both) = cl.cmd(&["MGET", &a, &b]) else {
        panic!("MGET")
    };
    let seqs: Vec<Option<u64>> = both
        .iter()
        .map(|r| match r {
            Resp::Nil => None,
            r => Some(parse(c, "p", &r.as_str())),
        })
        .collect();
    assert_eq!(
        seqs[0], seqs[1],
        "{a}/{b}: half of a transaction or MSET survived"
    );
    let last_durable = h.pair.1.iter().rposition(|o| durable(o.ack, floor));
    let allowed: Vec<Option<u64>> = match last_durable {
        Some(d) => h.pair.1[d..].iter().map(|o| o.seq).collect(),
        None => std::iter::once(h.pair.0)
            .chain(h.pair.1.iter().map(|o| o.seq))
            .collect(),
    };
    assert!(
        allowed.contains(&seqs[0]),
        "{a}: {:?} not in {allowed:?}",
        seqs[0]
    );
    next.pair = (seqs[0], Vec::new());
    next
}

fn verify_flushes(cl: &mut Client, f: &Flushes, floor: u64) -> usize {
    cl.cmd(&["SELECT", "1"]);
    let last_durable_flush = f
        .flushes
        .iter()
        .filter(|(_, a)| durable(*a, floor))
        .map(|(sent, _)| *sent)
        .max()
        .unwrap_or(0);
    let mut checked = 0;
    for (key, sent, ack) in &f.keys {
        let present = cl.cmd(&["EXISTS", key]) == Resp::Int(1);
        if *sent < last_durable_flush {
            assert!(!present, "{key} written before a durable FLUSHDB came back");
        } else if durable(*ack, floor) {
            // Durable, unless a flush sent after it (durable or not) took it away.
            let flushed_later = f.flushes.iter().any(|(s, _)| s > sent);
            assert!(
                present || flushed_later,
                "{key}: acknowledged before SAVE, lost"
            );
        }
        checked += 1;
    }
    cl.cmd(&["FLUSHDB"]);
    cl.cmd(&["SELECT", "0"]);
    checked
}

#[test]
fn kill_9_at_random_moments_loses_nothing_saved_and_tears_nothing() {
    let cycles: usize = std::env::var("KVTIER_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let seed: u64 = std::env::var("KVTIER_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!(
        "crash suite: backend {}, {cycles} cycles, seed {seed}",
        test_backend()
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut server = Server::start(ARGS);
    let tmp = server.take_tmp();
    let dir = server.dir.clone();
    let mut histories: Vec<History> = (0..CLIENTS)
        .map(|_| History {
            strings: vec![(None, Vec::new()); STRINGS],
            ..History::default()
        })
        .collect();
    let mut keys_checked = 0usize;
    let mut paged_seen = 0i64;
    let started = Instant::now();
    for cycle in 0..cycles {
        let port = server.port;
        let stop = Arc::new(AtomicBool::new(false));
        let floor = Arc::new(AtomicU64::new(0));
        let shared: Vec<Arc<Mutex<History>>> = histories
            .iter()
            .map(|h| Arc::new(Mutex::new(h.clone())))
            .collect();
        let flushes = Arc::new(Mutex::new(Flushes::default()));
        let mut threads = Vec::new();
        for (c, h) in shared.iter().enumerate() {
            let (h, stop) = (Arc::clone(h), Arc::clone(&stop));
            let seed = rng.random();
            threads.push(std::thread::spawn(move || {
                run_client(port, c, &h, &stop, seed);
            }));
        }
        {
            let (f, stop) = (Arc::clone(&flushes), Arc::clone(&stop));
            threads.push(std::thread::spawn(move || {
                run_flusher(port, &f, &stop, cycle);
            }));
        }
        {
            let (fl, stop) = (Arc::clone(&floor), Arc::clone(&stop));
            threads.push(std::thread::spawn(move || {
                run_saver(port, &stop, &fl);
            }));
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(300..1500)));
        server.kill9();
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().expect("workload thread panicked");
        }
        let floor = floor.load(Ordering::SeqCst);
        server = Server::start_in(&dir, ARGS);
        let mut cl = server.client();
        // DBSIZE (a count persisted with the data) agrees with the keys that are there.
        let mut present = 0;
        for c in 0..CLIENTS {
            let mut keys: Vec<String> = (0..STRINGS).map(|i| format!("s:{c}:{i}")).collect();
            keys.extend(["l", "n", "h", "t"].map(|p| format!("{p}:{c}")));
            keys.extend(["a", "b"].map(|p| format!("p:{c}:{p}")));
            let mut args = vec!["EXISTS"];
            args.extend(keys.iter().map(String::as_str));
            present += cl.cmd(&args).as_int();
        }
        assert_eq!(
            cl.cmd(&["DBSIZE"]),
            Resp::Int(present),
            "DBSIZE after kill -9"
        );
        for (c, h) in shared.iter().enumerate() {
            let h = h.lock().unwrap().clone();
            histories[c] = verify(&mut cl, c, &h, floor);
            keys_checked += STRINGS + 5 + 1;
        }
        keys_checked += verify_flushes(&mut cl, &flushes.lock().unwrap(), floor);
        paged_seen = paged_seen.max(pages_while_reading(&mut cl));
    }
    // Pages in memory while a list is read mean it is paged.
    assert!(
        paged_seen > 0,
        "no value became paged: the settings miss their purpose"
    );
    eprintln!(
        "crash suite: backend {}, {cycles} cycles, {keys_checked} keys checked, 0 lost, 0 torn, \
         up to {paged_seen} pages resident, {:.1} s",
        test_backend(),
        started.elapsed().as_secs_f64()
    );
    drop(server);
    drop(tmp);
}

/// Pages in memory right after client 0's list was read whole, in one transaction so eviction
/// cannot run in between (on RocksDB its own memory leaves the 2 MB cache nothing to keep).
fn pages_while_reading(cl: &mut Client) -> i64 {
    cl.cmd(&["MULTI"]);
    cl.cmd(&["LRANGE", "l:0", "0", "-1"]);
    cl.cmd(&["INFO", "diskstore"]);
    let Resp::Array(replies) = cl.cmd(&["EXEC"]) else {
        panic!("EXEC")
    };
    let info = replies[1].as_str();
    info.lines()
        .find_map(|l| l.strip_prefix("resident_pages:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no resident_pages in INFO: {info}"))
}

/// The history check itself must catch a loss: a durable write that is missing is reported.
#[test]
#[should_panic(expected = "allowed")]
fn the_checker_reports_a_lost_durable_write() {
    let s = Server::start(&[]);
    let mut cl = s.client();
    let mut h = History {
        strings: vec![(None, Vec::new()); STRINGS],
        ..History::default()
    };
    // A write acknowledged (ack 5) before a SAVE that covered it (floor 10), yet absent.
    h.strings[0].1.push(Op {
        seq: Some(1),
        ack: Some(5),
    });
    verify(&mut cl, 0, &h, 10);
}
