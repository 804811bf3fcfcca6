//! HyperLogLog commands against the real server, with the replies and bytes Redis 7.0 gives.
//! Every test runs with the default cache and with a tiny one (values go through the disk
//! store and are loaded back).

use kvtier_tests::{assert_arity_errors, Client, Resp, Server};

const NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";
const CORRUPT: &str = "INVALIDOBJ Corrupted HLL object detected";
const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const TINY: &[&str] = &["--maxmemory", "1mb", "--cache-flush-delay", "0"];

/// Runs `f` on a server with the default cache and on one with a tiny cache.
fn both(f: impl Fn(&mut Client)) {
    for args in [&[][..], TINY] {
        let s = Server::start(args);
        let mut c = s.client();
        f(&mut c);
    }
}

fn bytes(r: Resp) -> Vec<u8> {
    match r {
        Resp::Bulk(b) => b,
        other => panic!("expected a bulk string, got {other:?}"),
    }
}

/// Fills the cache with other values so that earlier keys are evicted to disk.
fn churn(c: &mut Client) {
    let blob = "x".repeat(20_000);
    for i in 0..100 {
        c.cmd(&["SET", &format!("churn:{i}"), &blob]);
    }
}

#[test]
fn pfadd_and_pfcount() {
    both(|c| {
        assert_eq!(c.cmd(&["PFADD", "h", "a", "b", "c"]), Resp::Int(1));
        assert_eq!(c.cmd(&["PFADD", "h", "a"]), Resp::Int(0));
        assert_eq!(c.cmd(&["PFCOUNT", "h"]), Resp::Int(3));
        assert_eq!(c.cmd(&["PFCOUNT", "nokey"]), Resp::Int(0));
        // No elements: creates the key (1), then changes nothing (0).
        assert_eq!(c.cmd(&["PFADD", "e"]), Resp::Int(1));
        assert_eq!(c.cmd(&["PFADD", "e"]), Resp::Int(0));
        assert_eq!(c.cmd(&["PFCOUNT", "e"]), Resp::Int(0));
        assert_eq!(c.cmd(&["TYPE", "h"]), Resp::Simple("string".into()));
        // Redis's estimates for these sets (Ertl's estimator).
        for i in 1..=1000 {
            c.cmd(&["PFADD", "k", &format!("el{i}")]);
        }
        let many: Vec<String> = (1..=3000).map(|i| i.to_string()).collect();
        let mut args = vec!["PFADD", "d"];
        args.extend(many.iter().map(String::as_str));
        assert_eq!(c.cmd(&args), Resp::Int(1));
        churn(c);
        assert_eq!(c.cmd(&["PFCOUNT", "k"]), Resp::Int(1005));
        assert_eq!(c.cmd(&["PFCOUNT", "d"]), Resp::Int(3005));
        // A union is counted without changing the keys.
        let before = bytes(c.cmd(&["GET", "k"]));
        assert_eq!(c.cmd(&["PFCOUNT", "d", "k", "h"]), Resp::Int(4019));
        assert_eq!(bytes(c.cmd(&["GET", "k"])), before);
        // PFADD keeps the key's TTL.
        c.cmd(&["EXPIRE", "h", "1000"]);
        c.cmd(&["PFADD", "h", "new"]);
        assert!(c.cmd(&["TTL", "h"]).as_int() > 0);
    });
}

#[test]
fn redis_byte_layout() {
    both(|c| {
        c.cmd(&["PFADD", "h", "a", "b", "c"]);
        let mut want = b"HYLL\x01\x00\x00\x00".to_vec();
        // Cached cardinality marked stale, then the sparse opcodes.
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0x80]);
        want.extend_from_slice(&[
            0x60, 0xf3, 0x80, 0x50, 0xb1, 0x84, 0x4b, 0xfb, 0x80, 0x42, 0x5a,
        ]);
        churn(c);
        assert_eq!(bytes(c.cmd(&["GET", "h"])), want);
        assert_eq!(c.cmd(&["PFCOUNT", "h"]), Resp::Int(3));
        // PFCOUNT caches its estimate in the header.
        want[8..16].copy_from_slice(&[3, 0, 0, 0, 0, 0, 0, 0]);
        churn(c);
        assert_eq!(bytes(c.cmd(&["GET", "h"])), want);
        // ...and the cache is what a later PFCOUNT returns, even over trailing garbage.
        c.cmd(&["APPEND", "h", "hello"]);
        assert_eq!(c.cmd(&["PFCOUNT", "h"]), Resp::Int(3));
        // Bytes written with SET (as copied from Redis) are an HLL.
        c.cmd_bytes(&[b"SET", b"copy", &want]);
        assert_eq!(c.cmd(&["PFADD", "copy", "a", "b"]), Resp::Int(0));
        assert_eq!(c.cmd(&["PFADD", "copy", "z"]), Resp::Int(1));
        assert_eq!(c.cmd(&["PFCOUNT", "copy"]), Resp::Int(4));
    });
}

#[test]
fn sparse_to_dense_promotion() {
    both(|c| {
        c.cmd(&["PFADD", "e"]);
        assert_eq!(c.cmd(&["PFDEBUG", "DECODE", "e"]), Resp::bulk("Z:16384"));
        c.cmd(&["PFADD", "h", "a", "b", "c"]);
        assert_eq!(
            c.cmd(&["PFDEBUG", "DECODE", "h"]),
            Resp::bulk("Z:8436 v:1,1 Z:4274 v:2,1 Z:3068 v:1,1 Z:603")
        );
        for i in 1..=1000 {
            c.cmd(&["PFADD", "k", &format!("el{i}")]);
        }
        assert_eq!(
            c.cmd(&["PFDEBUG", "ENCODING", "k"]),
            Resp::Simple("sparse".into())
        );
        assert_eq!(c.cmd(&["STRLEN", "k"]), Resp::Int(1916));
        // Past hll-sparse-max-bytes (3000) the value turns dense: 16 + 16384 * 6 / 8 bytes.
        for i in 1001..=3000 {
            c.cmd(&["PFADD", "k", &format!("el{i}")]);
        }
        assert_eq!(
            c.cmd(&["PFDEBUG", "ENCODING", "k"]),
            Resp::Simple("dense".into())
        );
        assert_eq!(c.cmd(&["STRLEN", "k"]), Resp::Int(12304));
        assert_eq!(
            c.cmd(&["PFDEBUG", "DECODE", "k"]),
            Resp::err("ERR HLL encoding is not sparse")
        );
        // A lower limit promotes sooner.
        assert_eq!(
            c.cmd(&["CONFIG", "SET", "hll-sparse-max-bytes", "30"]),
            Resp::ok()
        );
        let elems: Vec<String> = (0..20).map(|i| format!("x{i}")).collect();
        let mut args = vec!["PFADD", "small"];
        args.extend(elems.iter().map(String::as_str));
        c.cmd(&args);
        assert_eq!(
            c.cmd(&["PFDEBUG", "ENCODING", "small"]),
            Resp::Simple("dense".into())
        );
        assert_eq!(c.cmd(&["PFCOUNT", "small"]), Resp::Int(20));
        // TODENSE converts once; GETREG lists the 16384 registers.
        c.cmd(&["PFADD", "t", "1", "2", "3"]);
        assert_eq!(c.cmd(&["PFDEBUG", "TODENSE", "t"]), Resp::Int(1));
        assert_eq!(c.cmd(&["PFDEBUG", "TODENSE", "t"]), Resp::Int(0));
        churn(c);
        assert_eq!(c.cmd(&["PFCOUNT", "t"]), Resp::Int(3));
        let Resp::Array(regs) = c.cmd(&["PFDEBUG", "GETREG", "h"]) else {
            panic!("GETREG gives an array")
        };
        assert_eq!(regs.len(), 16384);
        let nonzero: Vec<i64> = regs.iter().map(Resp::as_int).filter(|&r| r > 0).collect();
        assert_eq!(nonzero, vec![1, 2, 1]);
        // GETREG converted it, as in Redis.
        assert_eq!(
            c.cmd(&["PFDEBUG", "ENCODING", "h"]),
            Resp::Simple("dense".into())
        );
    });
}

#[test]
fn pfmerge() {
    both(|c| {
        c.cmd(&["PFADD", "a", "1", "2", "3"]);
        c.cmd(&["PFADD", "b", "3", "4", "5"]);
        assert_eq!(c.cmd(&["PFMERGE", "m", "a", "b", "nokey"]), Resp::ok());
        assert_eq!(c.cmd(&["PFCOUNT", "m"]), Resp::Int(5));
        assert_eq!(
            c.cmd(&["PFDEBUG", "ENCODING", "m"]),
            Resp::Simple("sparse".into())
        );
        // The destination's own registers take part.
        c.cmd(&["PFADD", "d", "9"]);
        assert_eq!(c.cmd(&["PFMERGE", "d", "a"]), Resp::ok());
        assert_eq!(c.cmd(&["PFCOUNT", "d"]), Resp::Int(4));
        // A dense input makes the destination dense.
        c.cmd(&["PFADD", "x", "1"]);
        c.cmd(&["PFDEBUG", "TODENSE", "x"]);
        churn(c);
        assert_eq!(c.cmd(&["PFMERGE", "m2", "a", "x"]), Resp::ok());
        assert_eq!(
            c.cmd(&["PFDEBUG", "ENCODING", "m2"]),
            Resp::Simple("dense".into())
        );
        assert_eq!(c.cmd(&["PFCOUNT", "m2"]), Resp::Int(3));
        // No sources: an empty HLL.
        assert_eq!(c.cmd(&["PFMERGE", "empty"]), Resp::ok());
        assert_eq!(c.cmd(&["PFCOUNT", "empty"]), Resp::Int(0));
        assert_eq!(c.cmd(&["STRLEN", "empty"]), Resp::Int(18));
    });
}

#[test]
fn errors() {
    both(|c| {
        c.cmd(&["SET", "str", "hello"]);
        c.cmd(&["RPUSH", "list", "a"]);
        c.cmd(&["PFADD", "h", "a"]);
        for req in [
            &["PFADD", "str", "a"][..],
            &["PFCOUNT", "str"],
            &["PFCOUNT", "h", "str"],
            &["PFMERGE", "str", "h"],
            &["PFMERGE", "h", "str"],
            &["PFDEBUG", "ENCODING", "str"],
        ] {
            assert_eq!(c.cmd(req), Resp::err(NOT_HLL), "{req:?}");
        }
        for req in [
            &["PFADD", "list", "a"][..],
            &["PFCOUNT", "list"],
            &["PFCOUNT", "h", "list"],
            &["PFMERGE", "list"],
        ] {
            assert_eq!(c.cmd(req), Resp::err(WRONGTYPE), "{req:?}");
        }
        // Garbage after a sparse HLL: corrupt once the cache is stale.
        c.cmd(&["PFADD", "bad", "a", "b", "c"]);
        c.cmd(&["APPEND", "bad", "hello"]);
        churn(c);
        assert_eq!(c.cmd(&["PFCOUNT", "bad"]), Resp::err(CORRUPT));
        assert_eq!(c.cmd(&["PFCOUNT", "bad", "h"]), Resp::err(CORRUPT));
        assert_eq!(c.cmd(&["PFMERGE", "m", "bad"]), Resp::err(CORRUPT));
        // A dense HLL of the wrong length is not an HLL at all.
        c.cmd(&["PFADD", "dense", "a"]);
        c.cmd(&["PFDEBUG", "TODENSE", "dense"]);
        c.cmd(&["APPEND", "dense", "x"]);
        assert_eq!(c.cmd(&["PFCOUNT", "dense"]), Resp::err(NOT_HLL));
        assert_eq!(
            c.cmd(&["PFDEBUG", "GETREG", "nokey"]),
            Resp::err("ERR The specified key does not exist")
        );
        assert_eq!(
            c.cmd(&["PFDEBUG", "FOO", "h"]),
            Resp::err("ERR Unknown PFDEBUG subcommand 'FOO'")
        );
        assert_arity_errors(
            c,
            &[
                &["PFADD"],
                &["PFCOUNT"],
                &["PFMERGE"],
                &["PFDEBUG", "GETREG"],
                &["PFDEBUG", "GETREG", "h", "x"],
                &["PFSELFTEST", "x"],
            ],
        );
        assert_eq!(c.cmd(&["PFSELFTEST"]), Resp::ok());
    });
}

#[test]
fn pfcount_cache_is_a_change_for_watch() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.cmd(&["PFADD", "h", "a", "b", "c"]);
    // Computing the estimate writes it into the value: a WATCH sees a change...
    c.cmd(&["WATCH", "h"]);
    assert_eq!(c.cmd(&["PFCOUNT", "h"]), Resp::Int(3));
    c.cmd(&["MULTI"]);
    c.cmd(&["PING"]);
    assert_eq!(c.cmd(&["EXEC"]), Resp::NilArray);
    // ...but reading a cached estimate changes nothing.
    c.cmd(&["WATCH", "h"]);
    assert_eq!(c.cmd(&["PFCOUNT", "h"]), Resp::Int(3));
    c.cmd(&["MULTI"]);
    c.cmd(&["PING"]);
    assert_eq!(
        c.cmd(&["EXEC"]),
        Resp::Array(vec![Resp::Simple("PONG".into())])
    );
}

#[test]
fn many_hlls_round_trip_through_disk() {
    let s = Server::start(TINY);
    let mut c = s.client();
    // 150 dense HLLs of 12 KiB each: far more than the cache holds.
    let mut counts = Vec::new();
    for k in 0..150 {
        let elems: Vec<String> = (0..(k * 7 % 300 + 1)).map(|i| format!("{k}:{i}")).collect();
        let key = format!("hll:{k}");
        let mut args = vec!["PFADD", key.as_str()];
        args.extend(elems.iter().map(String::as_str));
        c.cmd(&args);
        c.cmd(&["PFDEBUG", "TODENSE", &key]);
        counts.push(c.cmd(&["PFCOUNT", &key]));
    }
    for (k, want) in counts.iter().enumerate() {
        let key = format!("hll:{k}");
        assert_eq!(&c.cmd(&["PFCOUNT", &key]), want, "{key}");
        assert_eq!(c.cmd(&["STRLEN", &key]), Resp::Int(12304));
    }
    assert!(c.cmd(&["PFCOUNT", "hll:1", "hll:2"]).as_int() > 0);
}

#[test]
fn keyspace_events() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let mut sub = s.client();
    c.cmd(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    sub.cmd(&["SUBSCRIBE", "__keyspace@0__:h"]);
    c.cmd(&["PFADD", "h", "a"]);
    c.cmd(&["PFADD", "h", "a"]);
    c.cmd(&["PFMERGE", "h"]);
    let events: Vec<String> = (0..2)
        .map(|_| match sub.read() {
            Resp::Array(v) | Resp::Push(v) => v[2].as_str(),
            other => panic!("expected a message, got {other:?}"),
        })
        .collect();
    // The second PFADD changed nothing: no event.
    assert_eq!(events, ["pfadd", "pfadd"]);
}
