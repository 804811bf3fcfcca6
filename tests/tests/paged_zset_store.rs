//! Paged sorted sets and the store: what a write saves (a few pages and the manifest, not the
//! set), surviving restarts, deleting the pages with the key, and the request path loading a
//! command's pages before it runs. (`paged_zset.rs` compares the replies with redis-server.)

use kvtier_tests::{
    assert_gone_with_its_pages, paged_args, sorted_strings as sorted, wait_until, Client, Resp,
    Server,
};
use std::time::Duration;

/// Sorted sets past 256 bytes and 4 members are paged, in pages of about 64 bytes.
fn paged() -> Vec<&'static str> {
    paged_args("256", "64", &["--zset-max-listpack-entries", "4"])
}

/// The whole set as "member score" lines, for comparing before and after a restart.
fn contents(c: &mut Client, key: &str) -> Vec<String> {
    let r = c.cmd(&["ZRANGE", key, "0", "-1", "WITHSCORES"]);
    let Resp::Array(items) = r else {
        panic!("bad ZRANGE reply {r:?}")
    };
    items
        .chunks(2)
        .map(|p| format!("{} {}", p[0].as_str(), p[1].as_str()))
        .collect()
}

/// A paged sorted set survives restarts (after writes of every kind), and its pages are
/// deleted with it.
#[test]
fn a_paged_zset_survives_restart_and_its_pages_are_deleted_with_it() {
    // No memory limit: the pages stay in memory to be counted.
    let args = &paged();
    let mut s = Server::start(args);
    let mut c = s.client();
    for i in 0..2000 {
        c.cmd(&["ZADD", "big", &(i % 97).to_string(), &format!("member-{i}")]);
    }
    assert_eq!(c.cmd(&["ZCARD", "big"]), Resp::Int(2000));
    assert!(c.info_int("resident_pages") > 10, "the set was not paged");
    assert_eq!(
        c.cmd(&["OBJECT", "ENCODING", "big"]),
        Resp::bulk("skiplist")
    );
    let before = contents(&mut c, "big");
    assert!(s.shutdown(), "SHUTDOWN failed");
    s.restart(args);
    let mut c = s.client();
    assert_eq!(contents(&mut c, "big"), before);
    assert_eq!(c.cmd(&["ZSCORE", "big", "member-1234"]), Resp::bulk("70"));
    assert_eq!(c.cmd(&["TYPE", "big"]), Resp::Simple("zset".into()));
    // Writes of every kind, then another restart.
    c.cmd(&["ZINCRBY", "big", "1000", "member-5"]);
    c.cmd(&["ZREM", "big", "member-6", "member-7"]);
    c.cmd(&["ZPOPMIN", "big", "30"]);
    c.cmd(&["ZREMRANGEBYSCORE", "big", "50", "60"]);
    c.cmd(&["ZADD", "big", "-1", "first", "5000", "last"]);
    let before = contents(&mut c, "big");
    assert_eq!(
        c.cmd(&["ZRANK", "big", "last"]).as_int() + 1,
        before.len() as i64
    );
    assert!(s.shutdown(), "SHUTDOWN failed");
    s.restart(args);
    let mut c = s.client();
    assert_eq!(contents(&mut c, "big"), before);
    assert_eq!(c.cmd(&["ZREVRANK", "big", "last"]), Resp::Int(0));
    assert_eq!(c.cmd(&["DEL", "big"]), Resp::Int(1));
    assert_gone_with_its_pages(&mut c, "big", 10);
}

/// Popping a paged sorted set to the end deletes the key, and its pages go to the collector.
#[test]
fn a_paged_zset_popped_to_the_end_is_deleted() {
    let s = Server::start(&paged());
    let mut c = s.client();
    for i in 0..300 {
        c.cmd(&["ZADD", "q", &i.to_string(), &format!("job-{i}")]);
    }
    assert!(c.info_int("resident_pages") > 0, "the set was not paged");
    for i in 0..100 {
        let want = [format!("job-{i}"), i.to_string()];
        assert_eq!(c.cmd(&["ZPOPMIN", "q"]), Resp::bulks(&[&want[0], &want[1]]));
    }
    let r = c.cmd(&["ZPOPMAX", "q", "50"]);
    assert_eq!(sorted(&r).len(), 100);
    assert_eq!(c.cmd(&["ZCARD", "q"]), Resp::Int(150));
    c.cmd(&["ZREMRANGEBYRANK", "q", "0", "-1"]);
    assert_eq!(c.cmd(&["ZPOPMIN", "q"]), Resp::Array(vec![]));
    assert_gone_with_its_pages(&mut c, "q", 0);
}

/// A save of a changed paged sorted set writes the changed pages and the manifest, not the
/// set: a ZADD of one member to a 2,000-member set saves a handful of records.
#[test]
fn a_write_to_a_paged_zset_saves_a_few_pages_and_the_manifest() {
    let s = Server::start(&paged());
    let mut c = s.client();
    for chunk in 0..20 {
        let mut args = vec!["ZADD".to_string(), "big".to_string()];
        for i in 0..100 {
            let n = chunk * 100 + i;
            args.push(n.to_string());
            args.push(format!("member-{n}"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        c.cmd(&args);
    }
    assert!(c.info_int("resident_pages") > 100, "the set was not paged");
    let settled = |c: &mut Client| c.info_int("dirty_keys") == 0;
    wait_until(Duration::from_secs(10), "the set saved", || settled(&mut c));
    for (cmd, want) in [
        (&["ZADD", "big", "999.5", "new-member"][..], Resp::Int(1)),
        (&["ZADD", "big", "1500.5", "member-3"], Resp::Int(0)),
        (&["ZREM", "big", "member-777"], Resp::Int(1)),
    ] {
        let before = c.info_int("keys_saved");
        assert_eq!(c.cmd(cmd), want, "{cmd:?}");
        wait_until(Duration::from_secs(10), "the write saved", || {
            settled(&mut c) && c.info_int("keys_saved") > before
        });
        let saved = c.info_int("keys_saved") - before;
        eprintln!("{cmd:?}: {saved} records saved");
        // The member page, the one or two segments, the manifest (and a page a split made).
        assert!(saved <= 6, "{cmd:?} saved {saved} records");
    }
    assert_eq!(c.cmd(&["ZCARD", "big"]), Resp::Int(2000));
    assert_eq!(c.cmd(&["ZRANK", "big", "member-3"]), Resp::Int(1500));
}

/// The request path loads the pages a command on a paged sorted set needs before it runs (the
/// planner, `zsets_paged::pages_needed`): after a restart, with nothing in memory, reads,
/// writes, ranges, counts and pops read no page synchronously (INFO `sync_loads`).
#[test]
fn commands_on_a_cold_paged_zset_load_their_pages_ahead() {
    // Pages of about 1 kB: segments of some 30 members, so a write moves members between
    // segments that hold others too.
    let args = &paged_args("256", "1024", &["--zset-max-listpack-entries", "4"]);
    let mut s = Server::start(args);
    let mut c = s.client();
    for chunk in 0..20 {
        let mut a = vec!["ZADD".to_string(), "big".to_string()];
        for i in 0..100 {
            let n = chunk * 100 + i;
            a.push(n.to_string());
            a.push(format!("member-{n}"));
        }
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        c.cmd(&a);
    }
    assert!(c.info_int("resident_pages") > 50, "the set was not paged");
    assert!(s.shutdown(), "SHUTDOWN failed");
    s.restart(args);
    let mut c = s.client();
    let cmds: &[&[&str]] = &[
        &["ZCARD", "big"],
        &["ZSCORE", "big", "member-1234"],
        &["ZMSCORE", "big", "member-1", "member-1999", "nope"],
        &["ZRANK", "big", "member-1500"],
        &["ZREVRANK", "big", "member-10"],
        &["ZADD", "big", "5.5", "member-1800"],
        &["ZADD", "big", "1000.5", "brand-new"],
        &["ZINCRBY", "big", "3", "member-900"],
        &["ZREM", "big", "member-700"],
        &["ZRANGE", "big", "100", "120", "WITHSCORES"],
        &["ZREVRANGE", "big", "0", "5"],
        &["ZRANGEBYSCORE", "big", "300", "350"],
        &[
            "ZREVRANGEBYSCORE",
            "big",
            "1700",
            "(1650",
            "LIMIT",
            "2",
            "5",
        ],
        &["ZCOUNT", "big", "10", "1900"],
        &["ZPOPMIN", "big", "3"],
        &["ZPOPMAX", "big", "40"],
    ];
    let mut sync = 0;
    for cmd in cmds {
        let before = c.info_int("sync_loads");
        let r = c.cmd(cmd);
        assert!(!matches!(r, Resp::Error(_)), "{cmd:?}: {r:?}");
        let n = c.info_int("sync_loads") - before;
        if n > 0 {
            eprintln!("{cmd:?}: {n} pages read synchronously");
        }
        sync += n;
    }
    assert_eq!(sync, 0, "pages the planner missed");
    assert_eq!(c.cmd(&["ZSCORE", "big", "member-1800"]), Resp::bulk("5.5"));
    assert_eq!(c.cmd(&["ZCARD", "big"]), Resp::Int(2000 - 43));
}

/// ZSCAN and ZRANDMEMBER on a cold paged sorted set read member pages, not the set: after a
/// restart, one ZSCAN step, a pick, 20 distinct picks and 50 draws load a few pages (as
/// HRANDFIELD's picks do, those planned ahead first, then another for what is still missing),
/// every member comes with its own score, and a ZSCAN to the end returns every member once.
#[test]
fn zscan_and_zrandmember_on_a_paged_zset_read_a_few_pages() {
    let args = &paged();
    let mut s = Server::start(args);
    let mut c = s.client();
    let n = 2000;
    let score_of = |m: &str| m.strip_prefix("member-").unwrap().parse::<i64>().unwrap() % 97;
    for i in 0..n {
        let m = format!("member-{i}");
        c.cmd(&["ZADD", "big", &score_of(&m).to_string(), &m]);
    }
    assert!(s.shutdown(), "SHUTDOWN failed");
    s.restart(args);
    let mut c = s.client();
    assert_eq!(c.info_int("resident_pages"), 0);
    let check_pairs = |flat: &[Resp]| {
        for p in flat.chunks(2) {
            let m = p[0].as_str();
            assert_eq!(p[1].as_str(), score_of(&m).to_string(), "score of {m}");
        }
    };
    let Resp::Array(step) = c.cmd(&["ZSCAN", "big", "0"]) else {
        panic!("ZSCAN reply")
    };
    assert_ne!(step[0].as_str(), "0", "one step returned the whole set");
    let Resp::Array(flat) = &step[1] else {
        panic!("ZSCAN items")
    };
    assert!(!flat.is_empty() && flat.len() < n, "{} items", flat.len());
    check_pairs(flat);
    let one = c.cmd(&["ZRANDMEMBER", "big"]).as_str();
    assert!(one.starts_with("member-"), "{one}");
    let Resp::Array(flat) = c.cmd(&["ZRANDMEMBER", "big", "20", "WITHSCORES"]) else {
        panic!("ZRANDMEMBER with a count")
    };
    assert_eq!(flat.len(), 40);
    let members: std::collections::BTreeSet<String> =
        flat.chunks(2).map(|p| p[0].as_str()).collect();
    assert_eq!(members.len(), 20, "distinct picks repeated a member");
    check_pairs(&flat);
    let Resp::Array(drawn) = c.cmd(&["ZRANDMEMBER", "big", "-50", "WITHSCORES"]) else {
        panic!("ZRANDMEMBER with a negative count")
    };
    assert_eq!(drawn.len(), 100);
    check_pairs(&drawn);
    let pages = c.info_int("resident_pages");
    c.cmd(&["ZRANGE", "big", "0", "-1"]);
    let segments = c.info_int("resident_pages") - pages;
    assert!(
        pages > 0 && pages * 4 < segments,
        "ZSCAN and ZRANDMEMBER loaded {pages} pages; the segments alone are {segments}"
    );
    // A whole scan: every member once, with its score.
    let mut seen = std::collections::BTreeMap::new();
    let mut cursor = "0".to_string();
    loop {
        let Resp::Array(step) = c.cmd(&["ZSCAN", "big", &cursor]) else {
            panic!("ZSCAN reply")
        };
        let Resp::Array(flat) = &step[1] else {
            panic!("ZSCAN items")
        };
        check_pairs(flat);
        for p in flat.chunks(2) {
            assert!(seen.insert(p[0].as_str(), ()).is_none(), "{:?} twice", p[0]);
        }
        cursor = step[0].as_str();
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), n);
    let every = sorted(&c.cmd(&["ZRANDMEMBER", "big", &n.to_string()]));
    assert_eq!(every.len(), n);
    assert_eq!(c.cmd(&["ZRANDMEMBER", "big", "0"]), Resp::Array(vec![]));
}
