//! Paged lists (issue 19) against redis-server: kvtier stores every list past 256 bytes as a
//! manifest plus pages of about 64 bytes (a few elements each), in a 1 MB cache flushed at
//! once, so pages are created, split, emptied, saved, evicted and loaded back all the time;
//! every reply must still be Redis's.

use kvtier_tests::{
    info_field, paged_args, parse_info, seeds, small_pages, wait_until, Pair, Resp, Server,
    SMALL_CACHE,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Duration;

const KEYS: [&str; 3] = ["l0", "l1", "l2"];

/// A few distinct values, so LREM, LPOS and LINSERT find matches.
fn elem(rng: &mut StdRng) -> String {
    match rng.random_range(0..4) {
        0 => format!("e{}", rng.random_range(0..12)),
        1 => "x".repeat(rng.random_range(0..30)),
        // Past what a packed page holds: a page with it is kept in the other form.
        2 if rng.random_ratio(1, 20) => "y".repeat(300),
        _ => format!("v{}", rng.random_range(0..1000)),
    }
}

fn index(rng: &mut StdRng) -> String {
    rng.random_range(-60..60).to_string()
}

fn side(rng: &mut StdRng) -> &'static str {
    ["LEFT", "RIGHT"][rng.random_range(0..2)]
}

fn workload(p: &mut Pair, seed: u64, steps: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    for _ in 0..steps {
        let key = KEYS[rng.random_range(0..KEYS.len())].to_string();
        let other = KEYS[rng.random_range(0..KEYS.len())].to_string();
        let k = key.clone();
        let args: Vec<String> = match rng.random_range(0..100) {
            0..=29 => {
                let cmd = ["LPUSH", "RPUSH", "LPUSHX", "RPUSHX"][rng.random_range(0..4)];
                let mut a = vec![cmd.to_string(), k];
                for _ in 0..rng.random_range(1..12) {
                    a.push(elem(&mut rng));
                }
                a
            }
            30..=39 => {
                let cmd = ["LPOP", "RPOP"][rng.random_range(0..2)];
                let mut a = vec![cmd.to_string(), k];
                if rng.random_bool(0.5) {
                    a.push(rng.random_range(0..9).to_string());
                }
                a
            }
            40..=46 => vec!["LRANGE".into(), k, index(&mut rng), index(&mut rng)],
            47..=51 => vec!["LINDEX".into(), k, index(&mut rng)],
            52..=54 => vec!["LSET".into(), k, index(&mut rng), elem(&mut rng)],
            55..=57 => {
                let where_ = ["BEFORE", "AFTER"][rng.random_range(0..2)];
                vec![
                    "LINSERT".into(),
                    k,
                    where_.into(),
                    elem(&mut rng),
                    elem(&mut rng),
                ]
            }
            58..=60 => {
                let n = rng.random_range(-3..4).to_string();
                vec!["LREM".into(), k, n, elem(&mut rng)]
            }
            61..=62 => vec!["LTRIM".into(), k, index(&mut rng), index(&mut rng)],
            63..=66 => {
                let mut a = vec!["LPOS".into(), k, elem(&mut rng)];
                if rng.random_bool(0.5) {
                    a.extend([
                        "RANK".into(),
                        ["1", "2", "-1", "-2"][rng.random_range(0..4)].into(),
                    ]);
                }
                if rng.random_bool(0.5) {
                    a.extend(["COUNT".into(), rng.random_range(0..4).to_string()]);
                }
                if rng.random_bool(0.3) {
                    a.extend(["MAXLEN".into(), rng.random_range(0..30).to_string()]);
                }
                a
            }
            67..=70 => vec!["LLEN".into(), k],
            71..=74 => vec![
                "LMOVE".into(),
                k,
                other,
                side(&mut rng).into(),
                side(&mut rng).into(),
            ],
            75..=76 => vec!["RPOPLPUSH".into(), k, other],
            77..=78 => vec![
                "BLMOVE".into(),
                k,
                other,
                side(&mut rng).into(),
                side(&mut rng).into(),
                "0.01".into(),
            ],
            79..=80 => {
                let cmd = ["BLPOP", "BRPOP"][rng.random_range(0..2)];
                vec![cmd.into(), k, other, "0.01".into()]
            }
            81..=82 => vec![
                "LMPOP".into(),
                "2".into(),
                k,
                other,
                side(&mut rng).into(),
                "COUNT".into(),
                rng.random_range(1..8).to_string(),
            ],
            83..=84 => vec!["SORT".into(), k, "ALPHA".into()],
            85..=86 => vec!["RENAME".into(), k, other],
            87..=88 => vec!["COPY".into(), k, other, "REPLACE".into()],
            89 => vec!["DEL".into(), k],
            90..=91 => vec!["OBJECT".into(), "ENCODING".into(), k],
            92..=93 => vec!["TYPE".into(), k],
            94..=95 => vec!["EXPIRE".into(), k, "1000".into()],
            96..=97 => {
                // kvtier's DUMP of a (paged) list restores to the same list in kvtier and Redis.
                let (dump, _) = p.kv_call(&["DUMP", &key]).unwrap();
                if let Resp::Bulk(payload) = dump {
                    let args: [&[u8]; 5] = [b"RESTORE", b"restored", b"0", &payload, b"REPLACE"];
                    p.check(&args);
                    p.check(&["LRANGE", "restored", "0", "-1"]);
                }
                vec!["LRANGE".into(), key, "0".into(), "-1".into()]
            }
            _ => {
                let mut a = vec!["RPUSH".to_string(), "big".into()];
                for _ in 0..40 {
                    a.push(elem(&mut rng));
                }
                p.check(&a);
                vec!["LRANGE".into(), "big".into(), index(&mut rng), "-1".into()]
            }
        };
        p.check(&args);
    }
    for key in KEYS.iter().chain(&["big", "restored"]) {
        p.check(&["LRANGE", key, "0", "-1"]);
    }
}

#[test]
fn paged_lists_answer_as_redis_does() {
    for seed in seeds() {
        let resp3 = seed % 2 == 0;
        let label = format!("paged lists, seed {seed}, resp3 {resp3}");
        let Some(mut p) = Pair::start(&label, &small_pages(SMALL_CACHE), resp3) else {
            return;
        };
        workload(&mut p, seed, 800);
        let mut c = kvtier_tests::Client::connect(p.kv_port());
        let pages = c.info_int("resident_pages") + c.info_int("pages_deleted");
        assert!(
            pages > 0,
            "[{label}] no list was paged: the test lost its point"
        );
        eprintln!("{label}: {} commands compared", p.commands());
    }
}

/// A paged list survives a restart through a cache far smaller than it, reads back in order,
/// and its pages are deleted with it.
#[test]
fn a_paged_list_survives_restart_and_its_pages_are_deleted_with_it() {
    let args = &paged_args("4kb", "1kb", &["--maxmemory", "2mb"]);
    let mut s = Server::start(args);
    let mut c = s.client();
    let n = 4_000;
    for i in 0..n {
        let side = if i % 2 == 0 { "RPUSH" } else { "LPUSH" };
        c.cmd(&[side, "q", &format!("{i:0>6}-{}", "p".repeat(100))]);
    }
    assert_eq!(c.cmd(&["LLEN", "q"]), Resp::Int(n));
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "q"]), Resp::bulk("quicklist"));
    assert!(c.info_int("resident_pages") > 0, "the list was not paged");
    assert!(s.shutdown(), "SHUTDOWN failed");
    s.restart(args);
    let mut c = s.client();
    assert_eq!(c.cmd(&["LLEN", "q"]), Resp::Int(n));
    assert_eq!(c.cmd(&["TYPE", "q"]), Resp::Simple("list".into()));
    // Odd numbers were pushed at the head (the last one first), even ones at the tail.
    let want = |i: i64| Resp::bulk(&format!("{i:0>6}-{}", "p".repeat(100)));
    assert_eq!(c.cmd(&["LINDEX", "q", "0"]), want(n - 1));
    assert_eq!(c.cmd(&["LINDEX", "q", "-1"]), want(n - 2));
    assert_eq!(c.cmd(&["LINDEX", "q", &(n / 2).to_string()]), want(0));
    let Resp::Array(all) = c.cmd(&["LRANGE", "q", "0", "-1"]) else {
        panic!("LRANGE")
    };
    assert_eq!(all.len(), n as usize);
    for (k, got) in all.iter().enumerate() {
        let k = k as i64;
        let i = if k < n / 2 {
            n - 1 - 2 * k
        } else {
            2 * (k - n / 2)
        };
        assert_eq!(got, &want(i), "element {k}");
    }
    assert_eq!(c.cmd(&["DEL", "q"]), Resp::Int(1));
    wait_until(Duration::from_secs(20), "pages deleted", || {
        c.info_int("page_gc_pending") == 0
    });
    assert!(c.info_int("pages_deleted") > 100);
}

/// Popping a paged list empties and deletes its pages as it goes: nothing is left to collect.
#[test]
fn a_drained_paged_queue_leaves_no_pages() {
    let args = &paged_args("1kb", "256", &[]);
    let s = Server::start(args);
    let mut c = s.client();
    for i in 0..3000 {
        c.cmd(&["RPUSH", "jobs", &format!("job-{i}-{}", "j".repeat(20))]);
    }
    assert!(c.info_int("resident_pages") > 100);
    for i in 0..3000 {
        let want = format!("job-{i}-{}", "j".repeat(20));
        assert_eq!(c.cmd(&["LPOP", "jobs"]), Resp::bulk(&want));
    }
    assert_eq!(c.cmd(&["EXISTS", "jobs"]), Resp::Int(0));
    assert_eq!(c.info_int("page_gc_pending"), 0);
    assert_eq!(
        c.info_int("pages_deleted"),
        0,
        "pages were left for the collector"
    );
    // A deleted page is not resident, saved or not; the deletions are saved.
    assert_eq!(c.info_int("resident_pages"), 0);
    wait_until(Duration::from_secs(20), "the deletions saved", || {
        c.info_int("dirty_keys") == 0
    });
    assert_eq!(c.info_int("resident_pages"), 0);
}

/// LREM scattered over a long paged list merges the pages it leaves nearly empty into their
/// neighbours: after removing three elements in four, the list has far fewer pages, and its
/// elements are the ones kept, in order, also after a restart.
#[test]
fn scattered_removals_merge_small_pages() {
    let args = &small_pages(&[]);
    let mut s = Server::start(args);
    let mut c = s.client();
    let n = 2000;
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let mut push = vec!["RPUSH".to_string(), "l".to_string()];
        push.extend(chunk.iter().map(|i| format!("e{i}")));
        let push: Vec<&str> = push.iter().map(String::as_str).collect();
        c.cmd(&push);
    }
    let settled = |c: &mut kvtier_tests::Client| c.info_int("dirty_keys") == 0;
    wait_until(Duration::from_secs(10), "the list saved", || {
        settled(&mut c)
    });
    let before = c.info_int("resident_pages");
    assert!(before > 100, "the list was not paged ({before} pages)");
    for i in (0..n).filter(|i| i % 4 != 0) {
        assert_eq!(c.cmd(&["LREM", "l", "1", &format!("e{i}")]), Resp::Int(1));
    }
    wait_until(Duration::from_secs(10), "the removals saved", || {
        settled(&mut c)
    });
    let after = c.info_int("resident_pages");
    assert!(
        after * 2 < before,
        "pages before the removals {before}, after {after}"
    );
    let kept: Vec<Resp> = (0..n)
        .filter(|i| i % 4 == 0)
        .map(|i| Resp::bulk(&format!("e{i}")))
        .collect();
    assert_eq!(
        c.cmd(&["LRANGE", "l", "0", "-1"]),
        Resp::Array(kept.clone())
    );
    assert!(s.shutdown(), "SHUTDOWN failed");
    s.restart(args);
    let mut c = s.client();
    assert_eq!(c.cmd(&["LRANGE", "l", "0", "-1"]), Resp::Array(kept));
}

/// A long list of short elements costs a few bytes per element in memory, as in Redis (whose
/// quicklist takes about 5 for these), not a 24-byte slot each (about 27 per element in all
/// when pages were deques): its pages are packed. Not on sled, whose heap beside the cache is
/// an estimate that moves by more than this list takes (docs/backends.md).
#[test]
fn a_long_list_of_short_elements_is_compact_in_memory() {
    if kvtier_tests::test_backend() == "sled" {
        return;
    }
    let s = Server::start(&["--maxmemory", "512mb"]);
    let mut c = s.client();
    // The heap the allocator counts, less the backend's (memtables, caches).
    let heap = |c: &mut kvtier_tests::Client| {
        let info = parse_info(&c.cmd(&["INFO", "memory"]));
        info_field(&info, "allocator_allocated") - info_field(&info, "backend_memory")
    };
    let before = heap(&mut c);
    let n = 300_000;
    for chunk in 0..n / 1000 {
        let mut push = vec!["LPUSH".to_string(), "l".to_string()];
        push.extend((0..1000).map(|i| format!("{}", chunk * 1000 + i)));
        let push: Vec<&str> = push.iter().map(String::as_str).collect();
        c.cmd(&push);
    }
    assert_eq!(c.cmd(&["LLEN", "l"]), Resp::Int(n));
    assert!(c.info_int("resident_pages") > 10, "the list was not paged");
    wait_until(Duration::from_secs(30), "the list saved", || {
        c.info_int("dirty_keys") == 0
    });
    let per_elem = (heap(&mut c) - before) / n;
    assert!(
        per_elem <= 16,
        "{per_elem} bytes of heap per element of up to 6 bytes"
    );
    assert_eq!(
        c.cmd(&["LINDEX", "l", "0"]),
        Resp::bulk(&(n - 1).to_string())
    );
    assert_eq!(c.cmd(&["LINDEX", "l", "-1"]), Resp::bulk("0"));
}
