//! Paged streams (issue 19), against kvtier with paging off (the one-record form, which the
//! `streams` and `differential_streams` tests compare with redis-server):
//! - random commands with every stream past 1 KB stored as a manifest plus pages of about 256
//!   bytes (a few entries each) in a 1 MB cache flushed at once, so pages are created, emptied,
//!   trimmed, saved, evicted and loaded back all the time;
//! - a stream several times larger than the cache, also across SAVE + kill -9 and a restart.
//!
//! And what paging is for: an XADD to a built stream saves its last page and the manifest, not
//! the stream; a trim drops whole pages without loading them; DEL deletes the pages.

use kvtier_tests::{
    assert_gone_with_its_pages, paged_args, seeds, wait_until, Client, Resp, Server,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Duration;

/// `r` with Unix-millisecond times masked; with `idle` (XPENDING, XINFO CONSUMERS), also every
/// XPENDING row's idle time and every value after an "idle" key: times cannot match between
/// two servers.
fn normal(r: Resp, idle: bool) -> Resp {
    let mut after_idle = false;
    let mut one = |r: Resp| {
        let r = match r {
            Resp::Int(n) if n >= 1_000_000_000_000 => Resp::Int(-1),
            Resp::Int(_) if after_idle => Resp::Int(0),
            r => normal(r, idle),
        };
        after_idle = idle && r == Resp::bulk("idle");
        r
    };
    match r {
        Resp::Array(v) => {
            let row = idle
                && v.len() == 4
                && matches!(v[0], Resp::Bulk(_))
                && matches!(v[1], Resp::Bulk(_))
                && matches!(v[2], Resp::Int(_));
            let mut v: Vec<Resp> = v.into_iter().map(&mut one).collect();
            if row {
                v[2] = Resp::Int(0);
            }
            Resp::Array(v)
        }
        Resp::Map(v) => Resp::Map(
            v.into_iter()
                .flat_map(|(k, x)| [k, x])
                .map(&mut one)
                .collect::<Vec<_>>()
                .chunks(2)
                .map(|p| (p[0].clone(), p[1].clone()))
                .collect(),
        ),
        r => r,
    }
}

const KEYS: [&str; 2] = ["s1", "s2"];

/// One random stream command with explicit IDs, over a few hundred IDs so streams grow past
/// many pages.
fn command(rng: &mut StdRng, top: u64) -> Vec<String> {
    let key = KEYS[rng.random_range(0..2)].to_string();
    let group = ["g1", "g2"][rng.random_range(0..2)].to_string();
    let consumer = ["c1", "c2", "c3"][rng.random_range(0..3)].to_string();
    let id = |rng: &mut StdRng| {
        format!(
            "{}-{}",
            rng.random_range(0..top + 5),
            rng.random_range(0..2)
        )
    };
    let bound = |rng: &mut StdRng| match rng.random_range(0..5) {
        0 => "-".to_string(),
        1 => "+".to_string(),
        2 => format!("({}", id(rng)),
        _ => id(rng),
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
    match rng.random_range(0..32) {
        0..=9 => {
            let mut c = s(&["XADD", &key]);
            match rng.random_range(0..12) {
                0 => c.extend(s(&["MAXLEN", "~", &rng.random_range(0..300).to_string()])),
                1 => c.extend(s(&["MAXLEN", &rng.random_range(20..300).to_string()])),
                2 => c.extend(s(&["MINID", "~", &id(rng)])),
                _ => {}
            }
            c.push(format!("{top}-*"));
            c.extend(s(&[
                "f",
                &"v".repeat(rng.random_range(0..60)),
                "n",
                &top.to_string(),
            ]));
            c
        }
        10..=12 => {
            let rev = rng.random_bool(0.5);
            let mut c = s(&[if rev { "XREVRANGE" } else { "XRANGE" }, &key]);
            c.push(bound(rng));
            c.push(bound(rng));
            if rng.random_bool(0.6) {
                c.extend(s(&["COUNT", &rng.random_range(0..30).to_string()]));
            }
            c
        }
        13 => s(&["XLEN", &key]),
        14 => s(&["XDEL", &key, &id(rng), &id(rng), &id(rng)]),
        15 => {
            let approx = if rng.random_bool(0.5) { "~" } else { "=" };
            if rng.random_bool(0.5) {
                s(&[
                    "XTRIM",
                    &key,
                    "MAXLEN",
                    approx,
                    &rng.random_range(0..300).to_string(),
                ])
            } else {
                s(&["XTRIM", &key, "MINID", approx, &id(rng)])
            }
        }
        16 => {
            let mut c = s(&[
                "XREAD",
                "COUNT",
                &rng.random_range(1..20).to_string(),
                "STREAMS",
            ]);
            c.extend(s(&["s1", "s2", &id(rng), &id(rng)]));
            c
        }
        17 => s(&["XINFO", "STREAM", &key]),
        18 => s(&[
            "XINFO",
            "STREAM",
            &key,
            "FULL",
            "COUNT",
            &rng.random_range(0..15).to_string(),
        ]),
        19 => s(&["XINFO", "GROUPS", &key]),
        20 => s(&["XINFO", "CONSUMERS", &key, &group]),
        21 => s(&["XGROUP", "CREATE", &key, &group, &id(rng), "MKSTREAM"]),
        22 => s(&["XGROUP", "SETID", &key, &group, &id(rng)]),
        23..=25 => {
            let from = if rng.random_bool(0.7) {
                ">".to_string()
            } else {
                id(rng)
            };
            let n = rng.random_range(1..15).to_string();
            s(&[
                "XREADGROUP",
                "GROUP",
                &group,
                &consumer,
                "COUNT",
                &n,
                "STREAMS",
                &key,
                &from,
            ])
        }
        26 => s(&["XACK", &key, &group, &id(rng), &id(rng)]),
        27 => s(&["XPENDING", &key, &group, &bound(rng), &bound(rng), "10"]),
        28 => s(&[
            "XCLAIM",
            &key,
            &group,
            &consumer,
            "0",
            &id(rng),
            &id(rng),
            "RETRYCOUNT",
            "3",
        ]),
        29 => s(&[
            "XAUTOCLAIM",
            &key,
            &group,
            &consumer,
            "0",
            &bound(rng),
            "COUNT",
            "5",
        ]),
        30 => s(&["XSETID", &key, &format!("{}-5", top + 1)]),
        _ => s(&["XGROUP", "DELCONSUMER", &key, &group, &consumer]),
    }
}

/// Random stream commands to a kvtier storing every stream past 1 KB in pages of about 256
/// bytes in a 1 MB cache flushed at once, and to one with paging off.
#[test]
fn paged_streams_answer_as_one_record_streams_do() {
    let small = paged_args(
        "1kb",
        "256",
        &["--cache-flush-delay", "0", "--maxmemory", "1mb"],
    );
    for seed in seeds() {
        let mut t = Twins::start(&small, &[]);
        let both = |t: &mut Twins, args: &[&str]| {
            t.pc.cmd(args);
            t.oc.cmd(args);
        };
        // Small nodes: approximate trims drop whole nodes often.
        both(&mut t, &["CONFIG", "SET", "stream-node-max-entries", "8"]);
        let mut rng = StdRng::seed_from_u64(seed);
        let mut top = 1;
        for step in 0..2000 {
            let c = command(&mut rng, top);
            if c[0] == "XADD" {
                top += 1;
            }
            let c: Vec<&str> = c.iter().map(String::as_str).collect();
            t.check(&c);
            if step % 250 == 249 {
                // Push the streams' pages out of the 1 MB cache.
                let blob = "x".repeat(50_000);
                for i in 0..30 {
                    both(&mut t, &["SET", &format!("churn:{i}"), &blob]);
                }
                // The paged stream's DUMP restores to the same stream; COPY copies its pages.
                if let Resp::Bulk(payload) = t.pc.cmd(&["DUMP", "s1"]) {
                    let a: [&[u8]; 5] = [b"RESTORE", b"restored", b"0", &payload, b"REPLACE"];
                    t.pc.cmd_bytes(&a);
                    t.oc.cmd_bytes(&a);
                    t.check(&["XINFO", "STREAM", "restored", "FULL", "COUNT", "0"]);
                }
                t.check(&["COPY", "s2", "copied", "REPLACE"]);
                t.check(&["XINFO", "STREAM", "copied", "FULL", "COUNT", "0"]);
            }
        }
        for key in KEYS {
            t.check(&["XINFO", "STREAM", key, "FULL", "COUNT", "0"]);
        }
        // Deleting the streams deletes their pages (how many shows they were paged).
        for key in ["s1", "s2", "restored", "copied"] {
            t.check(&["DEL", key]);
        }
        assert_gone_with_its_pages(&mut t.pc, "s1", 20);
        assert_eq!(t.oc.info_int("pages_deleted"), 0);
    }
}

/// The same commands to a kvtier with small pages and a small cache and to one with paging off.
struct Twins {
    paged: Server,
    plain: Server,
    pc: Client,
    oc: Client,
}

const PLAIN: &[&str] = &["--paged-value-min-bytes", "0"];

impl Twins {
    fn start(paged: &[&str], plain: &[&str]) -> Twins {
        let mut plain_args = PLAIN.to_vec();
        plain_args.extend_from_slice(plain);
        let (paged, plain) = (Server::start(paged), Server::start(&plain_args));
        let (pc, oc) = (paged.client(), plain.client());
        Twins {
            paged,
            plain,
            pc,
            oc,
        }
    }

    fn check(&mut self, args: &[&str]) -> Resp {
        let a = self.pc.cmd(args);
        let b = self.oc.cmd(args);
        let v: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
        let idle = v[0].eq_ignore_ascii_case(b"xpending")
            || (v[0].eq_ignore_ascii_case(b"xinfo") && v[1].eq_ignore_ascii_case(b"consumers"));
        assert_eq!(normal(a.clone(), idle), normal(b, idle), "{args:?}");
        a
    }

    fn reconnect(&mut self) {
        self.pc = self.paged.client();
        self.oc = self.plain.client();
    }

    /// Every read command over the whole stream and some windows of it.
    fn compare_all(&mut self, n: u64) {
        for args in [
            vec!["XLEN", "big"],
            vec!["XRANGE", "big", "-", "+", "COUNT", "7"],
            vec!["XREVRANGE", "big", "+", "-", "COUNT", "9"],
            vec!["XINFO", "STREAM", "big"],
            vec!["XINFO", "STREAM", "big", "FULL", "COUNT", "3"],
            vec!["XINFO", "GROUPS", "big"],
            vec!["XINFO", "CONSUMERS", "big", "g"],
            vec!["XPENDING", "big", "g"],
            vec!["XPENDING", "big", "g", "-", "+", "20"],
        ] {
            self.check(&args);
        }
        for at in [1, n / 3, n / 2, n - 5] {
            let from = format!("{at}-0");
            self.check(&["XRANGE", "big", &from, "+", "COUNT", "25"]);
            self.check(&["XREVRANGE", "big", &from, "-", "COUNT", "25"]);
            self.check(&["XREAD", "COUNT", "30", "STREAMS", "big", &from]);
        }
        let a = self.check(&["XRANGE", "big", "-", "+"]);
        let Resp::Array(all) = a else {
            panic!("XRANGE {a:?}")
        };
        assert!(all.len() as u64 > n / 2, "{} entries", all.len());
    }
}

/// A stream several times the cache, built and changed by every stream command, replies as the
/// one-record form does; across SAVE + kill -9 and a restart too.
#[test]
fn a_paged_stream_larger_than_the_cache_matches_the_one_record_form() {
    // Pages of 4 kB (a dozen entries): the manifest lists every page and is rewritten on every
    // save, so 1 kB pages made this test take minutes on RocksDB without testing more.
    const PAGED: &[&str] = &[
        "--paged-value-min-bytes",
        "4kb",
        "--page-bytes",
        "4kb",
        "--maxmemory",
        "2mb",
    ];
    let paged = Server::start(PAGED);
    let plain = Server::start(PLAIN);
    let (pc, oc) = (paged.client(), plain.client());
    let mut t = Twins {
        paged,
        plain,
        pc,
        oc,
    };
    let n = 6_000u64;
    let pad = "p".repeat(600);
    t.check(&["XGROUP", "CREATE", "big", "g", "0", "MKSTREAM"]);
    for i in 1..=n {
        let id = format!("{i}-0");
        let f = if i % 7 == 0 { "other" } else { "f" };
        t.check(&["XADD", "big", &id, f, &pad, "i", &i.to_string()]);
        if i % 1000 == 0 {
            t.check(&[
                "XREADGROUP",
                "GROUP",
                "g",
                "alice",
                "COUNT",
                "40",
                "STREAMS",
                "big",
                ">",
            ]);
        }
    }
    for i in (5..n).step_by(97) {
        t.check(&["XDEL", "big", &format!("{i}-0"), &format!("{}-0", i + 1)]);
    }
    t.check(&["XACK", "big", "g", "1000-0", "2000-0", "3001-0"]);
    t.check(&[
        "XCLAIM", "big", "g", "bob", "0", "1001-0", "1005-0", "2010-0", "JUSTID",
    ]);
    t.check(&["XCLAIM", "big", "g", "bob", "0", "3002-0", "3003-0"]);
    t.check(&["XAUTOCLAIM", "big", "g", "carol", "0", "0", "COUNT", "7"]);
    t.check(&["XTRIM", "big", "MAXLEN", "~", "5500"]);
    t.check(&["XTRIM", "big", "MINID", "800-0"]);
    // Past any clock: XADD's automatic IDs now come from the last ID, the same on both.
    t.check(&["XSETID", "big", "9999999999999-0"]);
    t.check(&["XADD", "big", "MAXLEN", "5700", "*", "f", "late"]);
    t.check(&["XGROUP", "SETID", "big", "g", "2500-0"]);
    t.compare_all(n);
    t.check(&["XADD", "big", "*", "f", "auto"]);
    t.check(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "dave",
        "COUNT",
        "5",
        "STREAMS",
        "big",
        "0",
    ]);
    t.check(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "alice",
        "COUNT",
        "5",
        "STREAMS",
        "big",
        "0",
    ]);
    t.check(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "erin",
        "COUNT",
        "50",
        "STREAMS",
        "big",
        ">",
    ]);

    // SAVE, then kill -9: everything saved is there after the restart.
    assert_eq!(t.pc.cmd(&["SAVE"]), Resp::Simple("OK".into()));
    assert_eq!(t.oc.cmd(&["SAVE"]), Resp::Simple("OK".into()));
    t.paged.kill9();
    t.plain.kill9();
    t.paged.restart(PAGED);
    t.plain.restart(PLAIN);
    t.reconnect();
    t.compare_all(n);
    t.check(&["XTRIM", "big", "MAXLEN", "4000"]);
    t.check(&["XADD", "big", "*", "after", "crash"]);
    // A clean restart.
    assert!(t.paged.shutdown() && t.plain.shutdown(), "SHUTDOWN failed");
    t.paged.restart(PAGED);
    t.plain.restart(PLAIN);
    t.reconnect();
    t.compare_all(n);
    t.check(&["XINFO", "STREAM", "big", "FULL", "COUNT", "0"]);
    t.check(&["DEL", "big"]);
    assert_gone_with_its_pages(&mut t.pc, "big", 300);
    assert_eq!(t.oc.info_int("pages_deleted"), 0);
}

/// What paging is for: after a restart, an XADD to a large stream loads and saves its last page
/// and the manifest only; a trim drops whole pages without loading them; DEL deletes every
/// page.
#[test]
fn an_xadd_saves_a_page_and_a_trim_drops_pages_unread() {
    // The default flush delay: the build is saved in a few batches (each save rewrites the
    // manifest, which lists every page).
    let args = &paged_args("4kb", "1kb", &["--maxmemory", "4mb"]);
    let mut s = Server::start(args);
    let mut c = s.client();
    let pad = "q".repeat(200);
    for i in 1..=8_000 {
        c.cmd(&["XADD", "log", &format!("{i}-1"), "body", &pad]);
    }
    let settled = |c: &mut Client| c.info_int("dirty_keys") == 0;
    wait_until(Duration::from_secs(20), "the stream saved", || {
        settled(&mut c)
    });
    assert!(s.shutdown(), "SHUTDOWN failed");
    s.restart(args);
    let mut c = s.client();

    let (loads, saved) = (c.info_int("disk_loads"), c.info_int("keys_saved"));
    c.cmd(&["XADD", "log", "8001-1", "body", "new"]);
    wait_until(Duration::from_secs(20), "the XADD saved", || {
        settled(&mut c)
    });
    let loaded = c.info_int("disk_loads") - loads;
    let written = c.info_int("keys_saved") - saved;
    // The manifest and the last page.
    assert!(loaded <= 2, "XADD loaded {loaded} records");
    assert!(
        written <= 3,
        "XADD saved {written} records (manifest and page expected)"
    );
    assert_eq!(c.cmd(&["XLEN", "log"]), Resp::Int(8001));

    // MAXLEN 100 removes 7901 entries: the pages before the last hundred go unread.
    let loads = c.info_int("disk_loads");
    assert_eq!(c.cmd(&["XTRIM", "log", "MAXLEN", "100"]), Resp::Int(7901));
    let loaded = c.info_int("disk_loads") - loads;
    assert!(loaded <= 4, "XTRIM loaded {loaded} records");
    let Resp::Array(first) = c.cmd(&["XRANGE", "log", "-", "+", "COUNT", "1"]) else {
        panic!("XRANGE")
    };
    assert_eq!(
        first[0],
        Resp::Array(vec![
            Resp::bulk("7902-1"),
            Resp::Array(vec![Resp::bulk("body"), Resp::bulk(&pad)])
        ])
    );
    let before = c.info_int("pages_deleted");
    for i in 1..=3_000 {
        c.cmd(&["XADD", "doomed", &format!("{i}-1"), "body", &pad]);
    }
    assert_eq!(c.cmd(&["DEL", "doomed"]), Resp::Int(1));
    // 3000 entries of about 250 bytes in pages of 1 KB.
    assert_gone_with_its_pages(&mut c, "doomed", before + 600);
}

/// An XDEL that leaves a page under a quarter of `page-bytes` merges it into a neighbour. The
/// neighbour is loaded ahead of the command with the page it deletes from, not read on the
/// event loop when the merge needs it (INFO `sync_loads`), and every entry is still there.
#[test]
fn an_xdel_that_merges_pages_loads_the_neighbour_ahead() {
    // Pages of 1 KB hold ten of these entries.
    let args = &paged_args("4kb", "1kb", &["--maxmemory", "4mb"]);
    let mut s = Server::start(args);
    let mut c = s.client();
    let pad = "q".repeat(60);
    let n = 4_000u64;
    for i in 1..=n {
        c.cmd(&["XADD", "log", &format!("{i}-1"), "b", &pad]);
    }
    // Nine of the ten entries of the page starting at `first`, in one XDEL.
    let xdel_page = |c: &mut Client, first: u64| {
        let ids: Vec<String> = (first + 1..first + 10).map(|i| format!("{i}-1")).collect();
        let mut cmd = vec!["XDEL", "log"];
        cmd.extend(ids.iter().map(String::as_str));
        assert_eq!(c.cmd(&cmd), Resp::Int(9));
    };
    let cold_restart = |s: &mut Server, c: &mut Client| {
        wait_until(Duration::from_secs(20), "the stream saved", || {
            c.info_int("dirty_keys") == 0
        });
        assert!(s.shutdown(), "SHUTDOWN failed");
        s.restart(args);
    };
    let mut deleted = Vec::new();
    // Every fourth page (the second of each four) shrinks to one entry: its neighbours are
    // full, so it stays as it is.
    for first in (11..=n).step_by(40) {
        xdel_page(&mut c, first);
        deleted.push(first);
    }
    cold_restart(&mut s, &mut c);
    let mut c = s.client();
    assert!(matches!(c.cmd(&["XLEN", "log"]), Resp::Int(_)));
    let sync = c.info_int("sync_loads");
    // The page before each of those shrinks too, and merges with it: a page that nothing
    // loaded since the restart.
    for first in (1..=n).step_by(40) {
        xdel_page(&mut c, first);
        deleted.push(first);
    }
    assert_eq!(
        c.info_int("sync_loads"),
        sync,
        "an XDEL read a page on the event loop"
    );
    let gone = |i: u64| deleted.iter().any(|&f| i > f && i < f + 10);
    let want: Vec<Resp> = (1..=n)
        .filter(|&i| !gone(i))
        .map(|i| Resp::bulk(&format!("{i}-1")))
        .collect();
    assert_eq!(c.cmd(&["XLEN", "log"]), Resp::Int(want.len() as i64));
    // Every entry left, in order: none lost or duplicated by a merge.
    let Resp::Array(all) = c.cmd(&["XRANGE", "log", "-", "+"]) else {
        panic!("XRANGE")
    };
    let ids: Vec<Resp> = all
        .iter()
        .map(|e| match e {
            Resp::Array(parts) => parts[0].clone(),
            other => panic!("entry {other:?}"),
        })
        .collect();
    assert_eq!(ids, want);
}
