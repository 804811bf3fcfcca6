//! Stream commands against the real server: every command, errors, cold keys (a tiny cache
//! sends streams through the disk store and back), persistence across a restart, blocking
//! XREAD / XREADGROUP woken by another client, and keyspace events. Replies as Redis 7.0.15
//! gives them (the differential test compares them byte for byte).

use kvtier_tests::{assert_err, Client, Resp, Server};
use std::time::{Duration, Instant};

const TINY: &[&str] = &["--maxmemory", "1mb", "--cache-flush-delay", "0"];
const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

/// Runs `f` on a server with the default cache and on one with a tiny cache.
fn both(f: impl Fn(&mut Client)) {
    for args in [&[][..], TINY] {
        let s = Server::start(args);
        let mut c = s.client();
        f(&mut c);
    }
}

/// Fills the cache with other values so that earlier keys are evicted to disk.
fn churn(c: &mut Client) {
    let blob = "x".repeat(20_000);
    for i in 0..100 {
        c.cmd(&["SET", &format!("churn:{i}"), &blob]);
    }
}

fn b(s: &str) -> Resp {
    Resp::bulk(s)
}

/// `[id, [f, v, …]]`.
fn entry(id: &str, fields: &[&str]) -> Resp {
    Resp::Array(vec![b(id), Resp::bulks(fields)])
}

fn cached(c: &mut Client) -> i64 {
    let Resp::Bulk(info) = c.cmd(&["INFO", "keyspace"]) else {
        panic!("INFO")
    };
    let info = String::from_utf8_lossy(&info).to_string();
    info.split("cached=")
        .nth(1)
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn xadd_ids_and_ranges() {
    both(|c| {
        assert_eq!(c.cmd(&["XADD", "s", "1-1", "a", "1"]), b("1-1"));
        assert_eq!(c.cmd(&["XADD", "s", "1-*", "b", "2"]), b("1-2"));
        assert_eq!(c.cmd(&["XADD", "s", "5", "c", "3", "d", "4"]), b("5-0"));
        assert_err(
            &c.cmd(&["XADD", "s", "5-0", "a", "1"]),
            "ERR The ID specified in XADD is equal or smaller",
        );
        assert_err(
            &c.cmd(&["XADD", "s", "0-0", "a", "1"]),
            "ERR The ID specified in XADD must be greater than 0-0",
        );
        let auto = c.cmd(&["XADD", "s", "*", "e", "5"]).as_str();
        let ms: u64 = auto.split('-').next().unwrap().parse().unwrap();
        assert!(ms > 1_600_000_000_000, "{auto}");
        assert_eq!(c.cmd(&["XLEN", "s"]), Resp::Int(4));
        churn(c);
        assert_eq!(
            c.cmd(&["XRANGE", "s", "-", "5"]),
            Resp::Array(vec![
                entry("1-1", &["a", "1"]),
                entry("1-2", &["b", "2"]),
                entry("5-0", &["c", "3", "d", "4"]),
            ])
        );
        assert_eq!(
            c.cmd(&["XRANGE", "s", "(1-1", "+", "COUNT", "1"]),
            Resp::Array(vec![entry("1-2", &["b", "2"])])
        );
        assert_eq!(
            c.cmd(&["XREVRANGE", "s", "(5-0", "-"]),
            Resp::Array(vec![entry("1-2", &["b", "2"]), entry("1-1", &["a", "1"])])
        );
        assert_eq!(
            c.cmd(&["XRANGE", "s", "-", "+", "COUNT", "0"]),
            Resp::NilArray
        );
        assert_eq!(c.cmd(&["XRANGE", "nokey", "-", "+"]), Resp::Array(vec![]));
        assert_eq!(c.cmd(&["TYPE", "s"]), Resp::Simple("stream".into()));
        assert_eq!(c.cmd(&["OBJECT", "ENCODING", "s"]), b("stream"));
        // NOMKSTREAM
        assert_eq!(
            c.cmd(&["XADD", "nos", "NOMKSTREAM", "*", "a", "1"]),
            Resp::Nil
        );
        assert_eq!(c.cmd(&["EXISTS", "nos"]), Resp::Int(0));
    });
}

#[test]
fn trimming_and_deletion() {
    both(|c| {
        for i in 1..=10 {
            c.cmd(&["XADD", "s", &format!("{i}-1"), "f", &i.to_string()]);
        }
        assert_eq!(c.cmd(&["XDEL", "s", "2-1", "3-1", "99-1"]), Resp::Int(2));
        assert_eq!(c.cmd(&["XTRIM", "s", "MAXLEN", "=", "6"]), Resp::Int(2));
        assert_eq!(
            c.cmd(&["XRANGE", "s", "-", "+", "COUNT", "1"]),
            Resp::Array(vec![entry("5-1", &["f", "5"])])
        );
        assert_eq!(c.cmd(&["XTRIM", "s", "MINID", "7"]), Resp::Int(2));
        // Approximate trimming removes whole nodes only (100 entries each): nothing here.
        assert_eq!(c.cmd(&["XTRIM", "s", "MAXLEN", "~", "1"]), Resp::Int(0));
        assert_eq!(
            c.cmd(&["XADD", "s", "MAXLEN", "2", "11-1", "f", "11"]),
            b("11-1")
        );
        churn(c);
        assert_eq!(c.cmd(&["XLEN", "s"]), Resp::Int(2));
        let Resp::Array(info) = c.cmd(&["XINFO", "STREAM", "s"]) else {
            panic!("XINFO")
        };
        assert_eq!(info[0], b("length"));
        assert_eq!(info[1], Resp::Int(2));
        assert_eq!(info[7], b("11-1"));
        assert_eq!(info[9], b("3-1"));
        assert_eq!(info[11], Resp::Int(11));
        assert_eq!(info[13], b("10-1"));
        assert_err(
            &c.cmd(&["XTRIM", "s", "MINID", "0", "LIMIT", "5"]),
            "ERR syntax error, LIMIT cannot be used without the special ~ option",
        );
        assert_err(
            &c.cmd(&["XTRIM", "s", "MAXLEN", "-1"]),
            "ERR The MAXLEN argument must be >= 0.",
        );
        assert_err(&c.cmd(&["XDEL", "s", "x"]), "ERR Invalid stream ID");
        // 250 entries fill three nodes; `~` removes the whole first node only.
        for i in 1..=250 {
            c.cmd(&["XADD", "big", &format!("{i}-0"), "f", "v"]);
        }
        assert_eq!(
            c.cmd(&["XTRIM", "big", "MAXLEN", "~", "120"]),
            Resp::Int(100)
        );
        assert_eq!(
            c.cmd(&["XTRIM", "big", "MAXLEN", "~", "0", "LIMIT", "50"]),
            Resp::Int(0)
        );
        assert_eq!(c.cmd(&["XLEN", "big"]), Resp::Int(150));
    });
}

#[test]
fn xsetid_and_errors() {
    both(|c| {
        c.cmd(&["XADD", "s", "5-1", "a", "1"]);
        assert_eq!(
            c.cmd(&[
                "XSETID",
                "s",
                "9-9",
                "ENTRIESADDED",
                "3",
                "MAXDELETEDID",
                "1-1"
            ]),
            Resp::ok()
        );
        assert_err(
            &c.cmd(&["XSETID", "s", "1"]),
            "ERR The ID specified in XSETID is smaller than the target stream top item",
        );
        assert_err(&c.cmd(&["XSETID", "nokey", "1"]), "ERR no such key");
        assert_err(
            &c.cmd(&["XSETID", "s", "9-9", "ENTRIESADDED", "0"]),
            "ERR The entries_added specified in XSETID is smaller",
        );
        assert_eq!(
            c.cmd(&["XADD", "s", "9-9", "a", "1"]).as_str(),
            "ERR The ID specified in XADD is equal or smaller than the target stream top item"
        );
        c.cmd(&["SET", "str", "x"]);
        for cmd in [
            &["XADD", "str", "*", "a", "1"][..],
            &["XRANGE", "str", "-", "+"],
            &["XLEN", "str"],
            &["XREAD", "STREAMS", "str", "0"],
            &["XGROUP", "CREATE", "str", "g", "0"],
            &["XINFO", "STREAM", "str"],
        ] {
            assert_eq!(c.cmd(cmd), Resp::err(WRONGTYPE), "{cmd:?}");
        }
        assert_err(
            &c.cmd(&["XADD", "s"]),
            "ERR wrong number of arguments for 'xadd' command",
        );
        assert_err(
            &c.cmd(&["XADD", "s", "*", "a"]),
            "ERR wrong number of arguments for 'xadd' command",
        );
        assert_err(
            &c.cmd(&["XINFO", "FOO"]),
            "ERR unknown subcommand 'FOO'. Try XINFO HELP.",
        );
        assert_err(
            &c.cmd(&["XGROUP", "CREATE", "s"]),
            "ERR wrong number of arguments for 'xgroup|create' command",
        );
    });
}

#[test]
fn consumer_groups() {
    both(|c| {
        assert_err(
            &c.cmd(&["XGROUP", "CREATE", "s", "g", "0"]),
            "ERR The XGROUP subcommand requires the key to exist",
        );
        assert_eq!(
            c.cmd(&["XGROUP", "CREATE", "s", "g", "0", "MKSTREAM"]),
            Resp::ok()
        );
        assert_eq!(
            c.cmd(&["XGROUP", "CREATE", "s", "g", "0"]),
            Resp::err("BUSYGROUP Consumer Group name already exists")
        );
        for i in 1..=3 {
            c.cmd(&["XADD", "s", &format!("{i}-1"), "f", &i.to_string()]);
        }
        churn(c);
        assert_eq!(
            c.cmd(&[
                "XREADGROUP",
                "GROUP",
                "g",
                "alice",
                "COUNT",
                "2",
                "STREAMS",
                "s",
                ">"
            ]),
            Resp::Array(vec![Resp::Array(vec![
                b("s"),
                Resp::Array(vec![entry("1-1", &["f", "1"]), entry("2-1", &["f", "2"])])
            ])])
        );
        assert_eq!(
            c.cmd(&["XREADGROUP", "GROUP", "g", "bob", "STREAMS", "s", ">"]),
            Resp::Array(vec![Resp::Array(vec![
                b("s"),
                Resp::Array(vec![entry("3-1", &["f", "3"])])
            ])])
        );
        churn(c);
        // Summary form.
        assert_eq!(
            c.cmd(&["XPENDING", "s", "g"]),
            Resp::Array(vec![
                Resp::Int(3),
                b("1-1"),
                b("3-1"),
                Resp::Array(vec![
                    Resp::bulks(&["alice", "2"]),
                    Resp::bulks(&["bob", "1"])
                ])
            ])
        );
        // History: alice's pending entries, delivered again.
        let Resp::Array(h) = c.cmd(&["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "0"])
        else {
            panic!("history")
        };
        assert_eq!(
            h[0],
            Resp::Array(vec![
                b("s"),
                Resp::Array(vec![entry("1-1", &["f", "1"]), entry("2-1", &["f", "2"])])
            ])
        );
        let Resp::Array(rows) = c.cmd(&["XPENDING", "s", "g", "-", "+", "10", "alice"]) else {
            panic!("xpending")
        };
        assert_eq!(rows.len(), 2);
        let Resp::Array(row) = &rows[0] else { panic!() };
        assert_eq!(row[0], b("1-1"));
        assert_eq!(row[1], b("alice"));
        assert_eq!(row[3], Resp::Int(2));
        assert_eq!(c.cmd(&["XACK", "s", "g", "1-1", "9-9"]), Resp::Int(1));
        // XCLAIM moves 2-1 to carol with a given retry count.
        assert_eq!(
            c.cmd(&["XCLAIM", "s", "g", "carol", "0", "2-1", "RETRYCOUNT", "7"]),
            Resp::Array(vec![entry("2-1", &["f", "2"])])
        );
        assert_eq!(
            c.cmd(&["XCLAIM", "s", "g", "carol", "0", "3-1", "JUSTID"]),
            Resp::Array(vec![b("3-1")])
        );
        // A deleted entry is dropped from the PEL by XAUTOCLAIM and reported.
        c.cmd(&["XDEL", "s", "3-1"]);
        assert_eq!(
            c.cmd(&["XAUTOCLAIM", "s", "g", "dave", "0", "0"]),
            Resp::Array(vec![
                b("0-0"),
                Resp::Array(vec![entry("2-1", &["f", "2"])]),
                Resp::bulks(&["3-1"])
            ])
        );
        churn(c);
        let Resp::Array(groups) = c.cmd(&["XINFO", "GROUPS", "s"]) else {
            panic!()
        };
        assert_eq!(
            groups[0],
            Resp::Array(vec![
                b("name"),
                b("g"),
                b("consumers"),
                Resp::Int(4),
                b("pending"),
                Resp::Int(1),
                b("last-delivered-id"),
                b("3-1"),
                b("entries-read"),
                Resp::Int(3),
                b("lag"),
                Resp::Int(0),
            ])
        );
        let Resp::Array(cons) = c.cmd(&["XINFO", "CONSUMERS", "s", "g"]) else {
            panic!()
        };
        assert_eq!(cons.len(), 4);
        assert_eq!(
            c.cmd(&["XGROUP", "DELCONSUMER", "s", "g", "dave"]),
            Resp::Int(1)
        );
        assert_eq!(
            c.cmd(&["XGROUP", "CREATECONSUMER", "s", "g", "erin"]),
            Resp::Int(1)
        );
        assert_eq!(
            c.cmd(&["XGROUP", "CREATECONSUMER", "s", "g", "erin"]),
            Resp::Int(0)
        );
        assert_eq!(
            c.cmd(&["XGROUP", "SETID", "s", "g", "0", "ENTRIESREAD", "0"]),
            Resp::ok()
        );
        // From the start again, without acknowledgement: nothing becomes pending (and
        // DELCONSUMER dropped dave's entry).
        assert_eq!(
            c.cmd(&[
                "XREADGROUP",
                "GROUP",
                "g",
                "erin",
                "NOACK",
                "STREAMS",
                "s",
                ">"
            ]),
            Resp::Array(vec![Resp::Array(vec![
                b("s"),
                Resp::Array(vec![entry("1-1", &["f", "1"]), entry("2-1", &["f", "2"])])
            ])])
        );
        assert_eq!(
            c.cmd(&["XPENDING", "s", "g"]),
            Resp::Array(vec![Resp::Int(0), Resp::Nil, Resp::Nil, Resp::NilArray])
        );
        assert_eq!(c.cmd(&["XGROUP", "DESTROY", "s", "g"]), Resp::Int(1));
        assert_eq!(c.cmd(&["XGROUP", "DESTROY", "s", "g"]), Resp::Int(0));
        assert_err(
            &c.cmd(&["XREADGROUP", "GROUP", "g", "x", "STREAMS", "s", ">"]),
            "NOGROUP No such key 's' or consumer group 'g' in XREADGROUP with GROUP option",
        );
        assert_err(
            &c.cmd(&["XPENDING", "s", "g"]),
            "NOGROUP No such key 's' or consumer group 'g'",
        );
    });
}

#[test]
fn xinfo_stream_full_round_trips_through_disk() {
    let s = Server::start(TINY);
    let mut c = s.client();
    c.cmd(&["XADD", "s", "1-1", "a", "1"]);
    c.cmd(&["XADD", "s", "2-1", "b", "2"]);
    c.cmd(&["XGROUP", "CREATE", "s", "g", "0"]);
    c.cmd(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "c",
        "COUNT",
        "1",
        "STREAMS",
        "s",
        ">",
    ]);
    c.cmd(&["XDEL", "s", "1-1"]);
    let before = c.cmd(&["XINFO", "STREAM", "s", "FULL"]);
    churn(&mut c);
    assert!(cached(&mut c) < 101, "the stream left the cache");
    assert_eq!(c.cmd(&["XINFO", "STREAM", "s", "FULL"]), before);
}

#[test]
fn persistence_across_restart() {
    let mut s = Server::start(TINY);
    let mut c = s.client();
    c.cmd(&["XADD", "s", "1-1", "a", "1"]);
    c.cmd(&["XADD", "s", "2-1", "b", "2"]);
    c.cmd(&["XGROUP", "CREATE", "s", "g", "0"]);
    c.cmd(&["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"]);
    c.cmd(&[
        "XSETID",
        "s",
        "5-0",
        "ENTRIESADDED",
        "9",
        "MAXDELETEDID",
        "4-0",
    ]);
    let full = c.cmd(&["XINFO", "STREAM", "s", "FULL"]);
    let range = c.cmd(&["XRANGE", "s", "-", "+"]);
    assert!(s.shutdown());
    let tmp = s.take_tmp();
    let s2 = Server::start_in(&s.dir, TINY);
    let mut c = s2.client();
    assert_eq!(c.cmd(&["XRANGE", "s", "-", "+"]), range);
    assert_eq!(c.cmd(&["XINFO", "STREAM", "s", "FULL"]), full);
    assert_eq!(c.cmd(&["TYPE", "s"]), Resp::Simple("stream".into()));
    drop(tmp);
}

#[test]
fn keyspace_commands_on_streams() {
    both(|c| {
        c.cmd(&["XADD", "s", "1-1", "a", "1"]);
        c.cmd(&["XGROUP", "CREATE", "s", "g", "0"]);
        assert_eq!(c.cmd(&["COPY", "s", "t"]), Resp::Int(1));
        c.cmd(&["XADD", "s", "2-1", "b", "2"]);
        assert_eq!(c.cmd(&["XLEN", "t"]), Resp::Int(1));
        let Resp::Array(groups) = c.cmd(&["XINFO", "GROUPS", "t"]) else {
            panic!("XINFO GROUPS")
        };
        assert_eq!(groups.len(), 1);
        assert_eq!(c.cmd(&["RENAME", "t", "u"]), Resp::ok());
        assert_eq!(c.cmd(&["TYPE", "u"]), Resp::Simple("stream".into()));
        assert_eq!(c.cmd(&["EXPIRE", "u", "100"]), Resp::Int(1));
        assert!(c.cmd(&["TTL", "u"]).as_int() > 0);
        churn(c);
        assert_eq!(c.cmd(&["TYPE", "u"]), Resp::Simple("stream".into()));
        assert!(c.cmd(&["MEMORY", "USAGE", "s"]).as_int() > 0);
        assert_eq!(c.cmd(&["DEL", "s", "u"]), Resp::Int(2));
        assert_eq!(c.cmd(&["EXISTS", "s"]), Resp::Int(0));
    });
}

#[test]
fn blocking_xread_on_a_cold_key_is_woken_by_xadd() {
    let s = Server::start(TINY);
    let mut c = s.client();
    c.cmd(&["XADD", "cold", "1-1", "a", "1"]);
    churn(&mut c);
    let mut blocked = s.client();
    blocked.send(&["XREAD", "BLOCK", "10000", "STREAMS", "cold", "$"]);
    let mut blocked_g = s.client();
    c.cmd(&["XGROUP", "CREATE", "cold", "g", "$"]);
    churn(&mut c);
    blocked_g.send(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "c",
        "BLOCK",
        "10000",
        "STREAMS",
        "cold",
        ">",
    ]);
    // Wait until both are parked.
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.info_int("blocked_clients") < 2 {
        assert!(Instant::now() < deadline, "clients did not block");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut other = s.client();
    assert_eq!(other.cmd(&["XADD", "cold", "2-1", "b", "2"]), b("2-1"));
    let want = Resp::Array(vec![Resp::Array(vec![
        b("cold"),
        Resp::Array(vec![entry("2-1", &["b", "2"])]),
    ])]);
    assert_eq!(blocked.read(), want);
    assert_eq!(blocked_g.read(), want);
    // The group delivered it: it is pending for `c`.
    let Resp::Array(p) = c.cmd(&["XPENDING", "cold", "g"]) else {
        panic!()
    };
    assert_eq!(p[0], Resp::Int(1));
    // A timeout answers a null array.
    assert_eq!(
        blocked.cmd(&["XREAD", "BLOCK", "50", "STREAMS", "cold", "$"]),
        Resp::NilArray
    );
    assert_eq!(
        blocked.cmd(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "BLOCK",
            "50",
            "STREAMS",
            "cold",
            ">"
        ]),
        Resp::NilArray
    );
    // A key created while blocked wakes the reader too.
    blocked.send(&["XREAD", "BLOCK", "10000", "STREAMS", "fresh", "0"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.info_int("blocked_clients") < 1 {
        assert!(Instant::now() < deadline, "client did not block");
        std::thread::sleep(Duration::from_millis(10));
    }
    c.cmd(&["XADD", "fresh", "7-7", "x", "y"]);
    assert_eq!(
        blocked.read(),
        Resp::Array(vec![Resp::Array(vec![
            b("fresh"),
            Resp::Array(vec![entry("7-7", &["x", "y"])])
        ])])
    );
}

#[test]
fn blocking_reads_do_not_block_inside_multi() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.cmd(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    c.cmd(&["MULTI"]);
    c.cmd(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]);
    c.cmd(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "c",
        "BLOCK",
        "0",
        "STREAMS",
        "s",
        ">",
    ]);
    assert_eq!(
        c.cmd(&["EXEC"]),
        Resp::Array(vec![Resp::NilArray, Resp::NilArray])
    );
}

#[test]
fn resp3_replies_are_maps() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.cmd(&["HELLO", "3"]);
    c.cmd(&["XADD", "s", "1-1", "a", "1"]);
    assert_eq!(
        c.cmd(&["XREAD", "STREAMS", "s", "0"]),
        Resp::Map(vec![(b("s"), Resp::Array(vec![entry("1-1", &["a", "1"])]))])
    );
    let Resp::Map(info) = c.cmd(&["XINFO", "STREAM", "s"]) else {
        panic!("map")
    };
    assert_eq!(info.len(), 10);
}

#[test]
fn keyspace_events() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.cmd(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    let mut sub = s.client();
    sub.cmd(&["PSUBSCRIBE", "__keyevent@0__:*"]);
    c.cmd(&["XADD", "s", "MAXLEN", "1", "1-1", "a", "1"]);
    c.cmd(&["XADD", "s", "MAXLEN", "1", "2-1", "a", "1"]);
    c.cmd(&["XDEL", "s", "2-1"]);
    c.cmd(&["XADD", "s", "3-1", "a", "1"]);
    c.cmd(&["XGROUP", "CREATE", "s", "g", "0"]);
    c.cmd(&["XGROUP", "CREATECONSUMER", "s", "g", "c"]);
    c.cmd(&["XGROUP", "SETID", "s", "g", "0"]);
    c.cmd(&["XGROUP", "DELCONSUMER", "s", "g", "c"]);
    c.cmd(&["XGROUP", "DESTROY", "s", "g"]);
    c.cmd(&["XSETID", "s", "9-9"]);
    c.cmd(&["XTRIM", "s", "MAXLEN", "0"]);
    let mut events = Vec::new();
    // `A` does not include `n`: no "new" event, as in Redis.
    for _ in 0..12 {
        let Resp::Array(m) = sub.read() else { panic!() };
        events.push(
            m[2].as_str()
                .trim_start_matches("__keyevent@0__:")
                .to_string(),
        );
    }
    assert_eq!(
        events,
        [
            "xadd",
            "xadd",
            "xtrim",
            "xdel",
            "xadd",
            "xgroup-create",
            "xgroup-createconsumer",
            "xgroup-setid",
            "xgroup-delconsumer",
            "xgroup-destroy",
            "xsetid",
            "xtrim"
        ]
    );
}

#[test]
fn stream_dump_restore_round_trips() {
    both(|c| {
        c.cmd(&["XADD", "s", "1-1", "a", "1", "b", "2"]);
        c.cmd(&["XADD", "s", "2-1", "a", "3", "b", "4"]);
        c.cmd(&["XADD", "s", "3-1", "other", "x"]);
        c.cmd(&["XDEL", "s", "2-1"]);
        c.cmd(&["XGROUP", "CREATE", "s", "g", "0"]);
        c.cmd(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "alice",
            "COUNT",
            "1",
            "STREAMS",
            "s",
            ">",
        ]);
        let full = c.cmd(&["XINFO", "STREAM", "s", "FULL"]);
        let Resp::Bulk(dump) = c.cmd(&["DUMP", "s"]) else {
            panic!("dump")
        };
        c.cmd(&["DEL", "s"]);
        assert_eq!(c.cmd_bytes(&[b"RESTORE", b"s", b"0", &dump]), Resp::ok());
        churn(c);
        assert_eq!(c.cmd(&["XINFO", "STREAM", "s", "FULL"]), full);
    });
}

/// Waits until the server counts `n` blocked clients.
fn wait_blocked(c: &mut Client, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.info_int("blocked_clients") < n {
        assert!(Instant::now() < deadline, "clients did not block");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn blocked_xreadgroup_ends_when_its_stream_or_group_goes() {
    let s = Server::start(TINY);
    let mut c = s.client();
    let mut blocked = s.client();
    let read = [
        "XREADGROUP",
        "GROUP",
        "g",
        "c",
        "BLOCK",
        "10000",
        "STREAMS",
        "s",
        ">",
    ];
    c.cmd(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    blocked.send(&read);
    wait_blocked(&mut c, 1);
    c.cmd(&["DEL", "s"]);
    assert_eq!(
        blocked.read(),
        Resp::err("UNBLOCKED the stream key no longer exists")
    );
    c.cmd(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    blocked.send(&read);
    wait_blocked(&mut c, 1);
    c.cmd(&["XGROUP", "DESTROY", "s", "g"]);
    assert_eq!(
        blocked.read(),
        Resp::err("NOGROUP the consumer group this client was blocked on no longer exists")
    );
    // A change that adds nothing keeps it blocked; an entry then wakes it.
    c.cmd(&["XGROUP", "CREATE", "s", "g", "$"]);
    blocked.send(&read);
    wait_blocked(&mut c, 1);
    c.cmd(&["XGROUP", "CREATECONSUMER", "s", "g", "other"]);
    churn(&mut c);
    c.cmd(&["XADD", "s", "5-5", "a", "b"]);
    assert_eq!(
        blocked.read(),
        Resp::Array(vec![Resp::Array(vec![
            b("s"),
            Resp::Array(vec![entry("5-5", &["a", "b"])])
        ])])
    );
}

#[test]
fn commands_that_change_nothing_leave_watch_alone() {
    let s = Server::start(TINY);
    let mut c = s.client();
    let mut other = s.client();
    c.cmd(&["XADD", "s", "1-1", "a", "1"]);
    c.cmd(&["XGROUP", "CREATE", "s", "g", "0"]);
    for noop in [
        &["XDEL", "s", "9-9"][..],
        &["XTRIM", "s", "MAXLEN", "5"],
        &["XTRIM", "s", "MINID", "1"],
        &["XTRIM", "s", "MAXLEN", "~", "1"],
        &["XACK", "s", "g", "1-1"],
    ] {
        c.cmd(&["WATCH", "s"]);
        other.cmd(noop);
        c.cmd(&["MULTI"]);
        c.cmd(&["PING"]);
        assert_eq!(
            c.cmd(&["EXEC"]),
            Resp::Array(vec![Resp::Simple("PONG".into())]),
            "{noop:?}"
        );
    }
    c.cmd(&["WATCH", "s"]);
    other.cmd(&["XDEL", "s", "1-1"]);
    c.cmd(&["MULTI"]);
    c.cmd(&["PING"]);
    assert_eq!(c.cmd(&["EXEC"]), Resp::NilArray);
}
