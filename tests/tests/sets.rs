//! Set commands against the real server, checked against Redis 7.0's replies.

use kvtier_tests::{assert_err, Client, Resp, Server};
use std::collections::HashSet;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const NOT_INT: &str = "ERR value is not an integer or out of range";
const NOT_POSITIVE: &str = "ERR value is out of range, must be positive";

fn b(items: &[&str]) -> Resp {
    Resp::bulks(items)
}

/// The reply's items as sorted strings (sets and arrays in any order).
fn members(r: &Resp) -> Vec<String> {
    let mut v: Vec<String> = match r {
        Resp::Array(v) | Resp::Set(v) => v.iter().map(Resp::as_str).collect(),
        other => panic!("expected an array or set, got {other:?}"),
    };
    v.sort();
    v
}

fn sorted(items: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// A numeric INFO field.
fn exists(c: &mut Client, key: &str) -> bool {
    c.cmd(&["EXISTS", key]) == Resp::Int(1)
}

/// Runs SSCAN to the end; returns every member seen (with repeats) and the number of calls.
fn scan_all(
    c: &mut Client,
    key: &str,
    opts: &[&str],
    mut between: impl FnMut(&mut Client),
) -> (Vec<String>, usize) {
    let mut cursor = "0".to_string();
    let (mut seen, mut calls) = (Vec::new(), 0);
    loop {
        let mut args = vec!["SSCAN", key, cursor.as_str()];
        args.extend_from_slice(opts);
        let r = c.cmd(&args);
        calls += 1;
        let Resp::Array(parts) = r else {
            panic!("bad SSCAN reply {r:?}")
        };
        let Resp::Array(items) = &parts[1] else {
            panic!("bad SSCAN items {parts:?}")
        };
        seen.extend(items.iter().map(Resp::as_str));
        cursor = parts[0].as_str();
        if cursor == "0" {
            return (seen, calls);
        }
        assert!(calls < 100_000, "SSCAN does not terminate");
        between(c);
    }
}

#[test]
fn add_remove_and_membership() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(c.cmd(&["SADD", "s", "a", "b", "a"]), Resp::Int(2));
    assert_eq!(c.cmd(&["SADD", "s", "b", "c"]), Resp::Int(1));
    assert_eq!(c.cmd(&["SADD", "s", "a"]), Resp::Int(0));
    assert_eq!(c.cmd(&["SCARD", "s"]), Resp::Int(3));
    assert_eq!(c.cmd(&["SCARD", "nokey"]), Resp::Int(0));
    assert_eq!(c.cmd(&["TYPE", "s"]), Resp::Simple("set".into()));
    assert_eq!(
        members(&c.cmd(&["SMEMBERS", "s"])),
        sorted(&["a", "b", "c"])
    );
    assert_eq!(c.cmd(&["SMEMBERS", "nokey"]), Resp::Array(vec![]));
    assert_eq!(c.cmd(&["SISMEMBER", "s", "a"]), Resp::Int(1));
    assert_eq!(c.cmd(&["SISMEMBER", "s", "z"]), Resp::Int(0));
    assert_eq!(c.cmd(&["SISMEMBER", "nokey", "a"]), Resp::Int(0));
    assert_eq!(
        c.cmd(&["SMISMEMBER", "s", "a", "z", "c"]),
        Resp::Array(vec![Resp::Int(1), Resp::Int(0), Resp::Int(1)])
    );
    assert_eq!(
        c.cmd(&["SMISMEMBER", "nokey", "a", "b"]),
        Resp::Array(vec![Resp::Int(0), Resp::Int(0)])
    );
    assert_eq!(c.cmd(&["SREM", "s", "a", "z", "a"]), Resp::Int(1));
    assert_eq!(c.cmd(&["SREM", "s", "z"]), Resp::Int(0));
    assert_eq!(c.cmd(&["SREM", "nokey", "a"]), Resp::Int(0));
    // Removing the last members deletes the key.
    assert_eq!(c.cmd(&["SREM", "s", "b", "c"]), Resp::Int(2));
    assert!(!exists(&mut c, "s"));
    // Binary-safe members, including the empty string.
    assert_eq!(
        c.cmd_bytes(&[b"SADD", b"bin", b"", b"\x00\xff"]),
        Resp::Int(2)
    );
    assert_eq!(
        c.cmd_bytes(&[b"SISMEMBER", b"bin", b"\x00\xff"]),
        Resp::Int(1)
    );
    assert_eq!(c.cmd_bytes(&[b"SISMEMBER", b"bin", b""]), Resp::Int(1));
}

#[test]
fn arity_and_wrong_type() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let arity: &[&[&str]] = &[
        &["SADD", "s"],
        &["SREM", "s"],
        &["SMEMBERS"],
        &["SMEMBERS", "s", "x"],
        &["SISMEMBER", "s"],
        &["SMISMEMBER", "s"],
        &["SCARD"],
        &["SPOP"],
        &["SRANDMEMBER"],
        &["SMOVE", "a", "b"],
        &["SINTER"],
        &["SUNION"],
        &["SDIFF"],
        &["SINTERSTORE", "d"],
        &["SUNIONSTORE", "d"],
        &["SDIFFSTORE", "d"],
        &["SINTERCARD", "1"],
        &["SSCAN", "s"],
    ];
    kvtier_tests::assert_arity_errors(&mut c, arity);
    c.cmd(&["SET", "str", "x"]);
    c.cmd(&["SADD", "s", "a"]);
    let wrong: &[&[&str]] = &[
        &["SADD", "str", "a"],
        &["SREM", "str", "a"],
        &["SMEMBERS", "str"],
        &["SISMEMBER", "str", "a"],
        &["SMISMEMBER", "str", "a"],
        &["SCARD", "str"],
        &["SPOP", "str"],
        &["SPOP", "str", "0"],
        &["SRANDMEMBER", "str"],
        &["SRANDMEMBER", "str", "0"],
        &["SMOVE", "str", "s", "a"],
        &["SMOVE", "s", "str", "a"],
        &["SINTER", "s", "str"],
        // Every key is type-checked, even after a missing one.
        &["SINTER", "nokey", "str"],
        &["SUNION", "s", "str"],
        &["SDIFF", "nokey", "str"],
        &["SDIFF", "s", "str"],
        &["SINTERSTORE", "d", "s", "str"],
        &["SUNIONSTORE", "d", "str"],
        &["SDIFFSTORE", "d", "s", "str"],
        &["SINTERCARD", "2", "nokey", "str"],
        &["SSCAN", "str", "0"],
    ];
    for args in wrong {
        assert_eq!(c.cmd(args), Resp::err(WRONGTYPE), "{args:?}");
    }
    // The string is untouched and no destination was written.
    assert_eq!(c.cmd(&["GET", "str"]), Resp::bulk("x"));
    assert!(!exists(&mut c, "d"));
    // A missing source makes SMOVE reply 0 before looking at the destination.
    assert_eq!(c.cmd(&["SMOVE", "nokey", "str", "a"]), Resp::Int(0));
}

#[test]
fn spop_and_srandmember() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let all = ["a", "b", "c", "d", "e"];
    let mut args = vec!["SADD", "s"];
    args.extend_from_slice(&all);
    c.cmd(&args);
    let universe: HashSet<String> = all.iter().map(|s| s.to_string()).collect();

    // SRANDMEMBER never changes the set.
    let one = c.cmd(&["SRANDMEMBER", "s"]).as_str();
    assert!(universe.contains(&one));
    let three = members(&c.cmd(&["SRANDMEMBER", "s", "3"]));
    assert_eq!(three.len(), 3);
    assert_eq!(three.iter().collect::<HashSet<_>>().len(), 3, "distinct");
    assert!(three.iter().all(|m| universe.contains(m)));
    assert_eq!(members(&c.cmd(&["SRANDMEMBER", "s", "10"])), sorted(&all));
    let repeats = members(&c.cmd(&["SRANDMEMBER", "s", "-20"]));
    assert_eq!(repeats.len(), 20);
    assert!(repeats.iter().all(|m| universe.contains(m)));
    assert_eq!(c.cmd(&["SRANDMEMBER", "s", "0"]), Resp::Array(vec![]));
    assert_eq!(c.cmd(&["SRANDMEMBER", "nokey"]), Resp::Nil);
    assert_eq!(c.cmd(&["SRANDMEMBER", "nokey", "3"]), Resp::Array(vec![]));
    assert_eq!(c.cmd(&["SRANDMEMBER", "nokey", "-3"]), Resp::Array(vec![]));
    assert_eq!(c.cmd(&["SRANDMEMBER", "s", "x"]), Resp::err(NOT_INT));
    assert_eq!(c.cmd(&["SRANDMEMBER", "s", "-0"]), Resp::err(NOT_INT));
    assert_eq!(
        c.cmd(&["SRANDMEMBER", "s", "-9223372036854775808"]),
        Resp::err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
    );
    assert_eq!(
        c.cmd(&["SRANDMEMBER", "s", "1", "2"]),
        Resp::err("ERR syntax error")
    );
    assert_eq!(c.cmd(&["SCARD", "s"]), Resp::Int(5));

    // SPOP removes what it returns.
    let popped = c.cmd(&["SPOP", "s"]).as_str();
    assert!(universe.contains(&popped));
    assert_eq!(c.cmd(&["SISMEMBER", "s", &popped]), Resp::Int(0));
    let two = members(&c.cmd(&["SPOP", "s", "2"]));
    assert_eq!(two.len(), 2);
    assert!(!two.contains(&popped));
    assert_eq!(c.cmd(&["SCARD", "s"]), Resp::Int(2));
    assert_eq!(c.cmd(&["SPOP", "s", "0"]), Resp::Array(vec![]));
    assert_eq!(c.cmd(&["SPOP", "s", "-1"]), Resp::err(NOT_POSITIVE));
    assert_eq!(c.cmd(&["SPOP", "s", "x"]), Resp::err(NOT_POSITIVE));
    assert_eq!(
        c.cmd(&["SPOP", "s", "1", "2"]),
        Resp::err("ERR syntax error")
    );
    // Popping at least everything returns the rest and deletes the key.
    let rest = members(&c.cmd(&["SPOP", "s", "10"]));
    assert_eq!(rest.len(), 2);
    let mut everything: Vec<String> = rest.into_iter().chain(two).chain([popped]).collect();
    everything.sort();
    assert_eq!(everything, sorted(&all));
    assert!(!exists(&mut c, "s"));
    assert_eq!(c.cmd(&["SPOP", "s"]), Resp::Nil);
    assert_eq!(c.cmd(&["SPOP", "s", "3"]), Resp::Array(vec![]));
    // The last single SPOP deletes the key too.
    c.cmd(&["SADD", "one", "x"]);
    assert_eq!(c.cmd(&["SPOP", "one"]), Resp::bulk("x"));
    assert!(!exists(&mut c, "one"));
}

#[test]
fn smove() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.cmd(&["SADD", "src", "a", "b"]);
    c.cmd(&["SADD", "dst", "b"]);
    assert_eq!(c.cmd(&["SMOVE", "src", "dst", "a"]), Resp::Int(1));
    assert_eq!(members(&c.cmd(&["SMEMBERS", "dst"])), sorted(&["a", "b"]));
    assert_eq!(c.cmd(&["SMOVE", "src", "dst", "a"]), Resp::Int(0));
    assert_eq!(c.cmd(&["SMOVE", "nokey", "dst", "a"]), Resp::Int(0));
    // Same key: 1 if the member is there, nothing changes.
    assert_eq!(c.cmd(&["SMOVE", "dst", "dst", "a"]), Resp::Int(1));
    assert_eq!(c.cmd(&["SMOVE", "dst", "dst", "zz"]), Resp::Int(0));
    assert_eq!(c.cmd(&["SCARD", "dst"]), Resp::Int(2));
    // Moving the last member deletes the source and may create the destination.
    assert_eq!(c.cmd(&["SMOVE", "src", "new", "b"]), Resp::Int(1));
    assert!(!exists(&mut c, "src"));
    assert_eq!(c.cmd(&["SMEMBERS", "new"]), b(&["b"]));
    // Moving a member the destination already has still removes it from the source.
    c.cmd(&["SADD", "src2", "b", "c"]);
    assert_eq!(c.cmd(&["SMOVE", "src2", "new", "b"]), Resp::Int(1));
    assert_eq!(c.cmd(&["SMEMBERS", "src2"]), b(&["c"]));
    assert_eq!(c.cmd(&["SCARD", "new"]), Resp::Int(1));
}

#[test]
fn algebra_and_store() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.cmd(&["SADD", "s1", "a", "b", "c", "d"]);
    c.cmd(&["SADD", "s2", "c", "d", "e"]);
    c.cmd(&["SADD", "s3", "d", "e", "f"]);
    assert_eq!(
        members(&c.cmd(&["SINTER", "s1", "s2"])),
        sorted(&["c", "d"])
    );
    assert_eq!(
        members(&c.cmd(&["SINTER", "s1", "s2", "s3"])),
        sorted(&["d"])
    );
    assert_eq!(
        members(&c.cmd(&["SINTER", "s1"])),
        sorted(&["a", "b", "c", "d"])
    );
    assert_eq!(c.cmd(&["SINTER", "s1", "nokey"]), Resp::Array(vec![]));
    assert_eq!(
        members(&c.cmd(&["SUNION", "s1", "s2", "s3", "nokey"])),
        sorted(&["a", "b", "c", "d", "e", "f"])
    );
    assert_eq!(c.cmd(&["SUNION", "nokey"]), Resp::Array(vec![]));
    assert_eq!(members(&c.cmd(&["SDIFF", "s1", "s2"])), sorted(&["a", "b"]));
    assert_eq!(
        members(&c.cmd(&["SDIFF", "s1", "s2", "s3"])),
        sorted(&["a", "b"])
    );
    assert_eq!(members(&c.cmd(&["SDIFF", "s3", "s1"])), sorted(&["e", "f"]));
    assert_eq!(
        members(&c.cmd(&["SDIFF", "s1", "nokey"])),
        sorted(&["a", "b", "c", "d"])
    );
    assert_eq!(c.cmd(&["SDIFF", "nokey", "s1"]), Resp::Array(vec![]));
    assert_eq!(c.cmd(&["SDIFF", "s1", "s1"]), Resp::Array(vec![]));

    // STORE variants reply with the size and overwrite any type, dropping its TTL.
    c.cmd(&["SET", "d", "string", "EX", "100"]);
    assert_eq!(c.cmd(&["SINTERSTORE", "d", "s1", "s2"]), Resp::Int(2));
    assert_eq!(c.cmd(&["TYPE", "d"]), Resp::Simple("set".into()));
    assert_eq!(c.cmd(&["TTL", "d"]), Resp::Int(-1));
    assert_eq!(members(&c.cmd(&["SMEMBERS", "d"])), sorted(&["c", "d"]));
    assert_eq!(c.cmd(&["SUNIONSTORE", "d", "s2", "s3"]), Resp::Int(4));
    assert_eq!(
        members(&c.cmd(&["SMEMBERS", "d"])),
        sorted(&["c", "d", "e", "f"])
    );
    assert_eq!(c.cmd(&["SDIFFSTORE", "d", "s1", "s3"]), Resp::Int(3));
    assert_eq!(
        members(&c.cmd(&["SMEMBERS", "d"])),
        sorted(&["a", "b", "c"])
    );
    // The destination may be one of the sources.
    assert_eq!(c.cmd(&["SUNIONSTORE", "s1", "s1", "s3"]), Resp::Int(6));
    assert_eq!(c.cmd(&["SCARD", "s1"]), Resp::Int(6));
    c.cmd(&["SREM", "s1", "e", "f"]);
    // An empty result deletes the destination.
    for args in [
        &["SINTERSTORE", "d", "s1", "nokey"][..],
        &["SUNIONSTORE", "d", "nokey"],
        &["SDIFFSTORE", "d", "s1", "s1"],
    ] {
        c.cmd(&["SADD", "d", "x"]);
        assert_eq!(c.cmd(args), Resp::Int(0), "{args:?}");
        assert!(!exists(&mut c, "d"), "{args:?}");
    }
}

#[test]
fn sintercard() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.cmd(&["SADD", "s1", "a", "b", "c", "d"]);
    c.cmd(&["SADD", "s2", "b", "c", "d", "e"]);
    assert_eq!(c.cmd(&["SINTERCARD", "2", "s1", "s2"]), Resp::Int(3));
    assert_eq!(c.cmd(&["SINTERCARD", "1", "s1"]), Resp::Int(4));
    assert_eq!(
        c.cmd(&["SINTERCARD", "2", "s1", "s2", "LIMIT", "2"]),
        Resp::Int(2)
    );
    assert_eq!(
        c.cmd(&["SINTERCARD", "2", "s1", "s2", "limit", "0"]),
        Resp::Int(3)
    );
    assert_eq!(
        c.cmd(&["SINTERCARD", "2", "s1", "s2", "LIMIT", "10"]),
        Resp::Int(3)
    );
    assert_eq!(c.cmd(&["SINTERCARD", "2", "s1", "nokey"]), Resp::Int(0));
    let numkeys = "ERR numkeys should be greater than 0";
    assert_eq!(c.cmd(&["SINTERCARD", "0", "s1"]), Resp::err(numkeys));
    assert_eq!(c.cmd(&["SINTERCARD", "-1", "s1"]), Resp::err(numkeys));
    assert_eq!(c.cmd(&["SINTERCARD", "x", "s1"]), Resp::err(numkeys));
    assert_eq!(
        c.cmd(&["SINTERCARD", "3", "s1", "s2"]),
        Resp::err("ERR Number of keys can't be greater than number of args")
    );
    let negative = "ERR LIMIT can't be negative";
    assert_eq!(
        c.cmd(&["SINTERCARD", "1", "s1", "LIMIT", "-1"]),
        Resp::err(negative)
    );
    assert_eq!(
        c.cmd(&["SINTERCARD", "1", "s1", "LIMIT", "x"]),
        Resp::err(negative)
    );
    assert_eq!(
        c.cmd(&["SINTERCARD", "1", "s1", "LIMIT"]),
        Resp::err("ERR syntax error")
    );
    assert_eq!(
        c.cmd(&["SINTERCARD", "1", "s1", "foo"]),
        Resp::err("ERR syntax error")
    );
}

#[test]
fn sscan() {
    let s = Server::start(&[]);
    let mut c = s.client();
    // Small sets come back whole in one call.
    c.cmd(&["SADD", "small", "a1", "a2", "b1"]);
    let (seen, calls) = scan_all(&mut c, "small", &[], |_| {});
    assert_eq!(
        (sorted_strings(seen), calls),
        (sorted(&["a1", "a2", "b1"]), 1)
    );
    let (seen, _) = scan_all(&mut c, "small", &["MATCH", "a*"], |_| {});
    assert_eq!(sorted_strings(seen), sorted(&["a1", "a2"]));
    assert_eq!(
        c.cmd(&["SSCAN", "nokey", "0"]),
        Resp::Array(vec![Resp::bulk("0"), Resp::Array(vec![])])
    );
    assert_eq!(
        c.cmd(&["SSCAN", "small", "x"]),
        Resp::err("ERR invalid cursor")
    );
    assert_eq!(
        c.cmd(&["SSCAN", "small", "18446744073709551616"]),
        Resp::err("ERR invalid cursor")
    );
    assert_eq!(
        c.cmd(&["SSCAN", "nokey", "x"]),
        Resp::err("ERR invalid cursor")
    );
    assert_eq!(
        c.cmd(&["SSCAN", "small", "0", "COUNT", "0"]),
        Resp::err("ERR syntax error")
    );
    assert_eq!(
        c.cmd(&["SSCAN", "small", "0", "COUNT", "x"]),
        Resp::err(NOT_INT)
    );
    assert_eq!(
        c.cmd(&["SSCAN", "small", "0", "MATCH"]),
        Resp::err("ERR syntax error")
    );
    assert_eq!(
        c.cmd(&["SSCAN", "small", "0", "TYPE", "string"]),
        Resp::err("ERR syntax error")
    );

    // A big set takes several calls and every member comes back.
    let n = 3000;
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let names: Vec<String> = chunk.iter().map(|i| format!("m{i}")).collect();
        let mut args = vec!["SADD", "big"];
        args.extend(names.iter().map(String::as_str));
        c.cmd(&args);
    }
    let (seen, calls) = scan_all(&mut c, "big", &["COUNT", "50"], |_| {});
    assert!(calls > 1, "a big set should take several calls");
    let unique: HashSet<String> = seen.into_iter().collect();
    assert_eq!(unique.len(), n);
    let (seen, _) = scan_all(&mut c, "big", &["MATCH", "m1?", "COUNT", "100"], |_| {});
    assert_eq!(
        sorted_strings(seen),
        sorted_strings((10..20).map(|i| format!("m{i}")).collect())
    );
    // Members added and removed during the scan never hide the ones that stay.
    let mut round = 0;
    let (seen, _) = scan_all(&mut c, "big", &["COUNT", "20"], |c| {
        round += 1;
        c.cmd(&["SADD", "big", &format!("new{round}")]);
        c.cmd(&["SREM", "big", &format!("m{}", 2000 + round)]);
    });
    let seen: HashSet<String> = seen.into_iter().collect();
    let removed_up_to = 2000 + round;
    for i in (0..2000).chain(removed_up_to + 1..n) {
        assert!(seen.contains(&format!("m{i}")), "m{i} missed by SSCAN");
    }
}

fn sorted_strings(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn resp3_set_replies() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.cmd(&["HELLO", "3"]);
    c.cmd(&["SADD", "s1", "a", "b"]);
    c.cmd(&["SADD", "s2", "b"]);
    for args in [
        &["SMEMBERS", "s1"][..],
        &["SINTER", "s1", "s2"],
        &["SUNION", "s1", "s2"],
        &["SDIFF", "s1", "s2"],
        &["SMEMBERS", "nokey"],
        &["SPOP", "nokey", "2"],
    ] {
        assert!(matches!(c.cmd(args), Resp::Set(_)), "{args:?}");
    }
    assert_eq!(c.cmd(&["SMEMBERS", "s2"]), Resp::Set(vec![Resp::bulk("b")]));
    // SRANDMEMBER with a count is an array even in RESP3; SMISMEMBER gives integers.
    assert!(matches!(c.cmd(&["SRANDMEMBER", "s1", "2"]), Resp::Array(_)));
    assert_eq!(
        c.cmd(&["SMISMEMBER", "s1", "a", "z"]),
        Resp::Array(vec![Resp::Int(1), Resp::Int(0)])
    );
    assert_eq!(c.cmd(&["SISMEMBER", "s1", "a"]), Resp::Int(1));
    assert_eq!(c.cmd(&["SRANDMEMBER", "nokey"]), Resp::Nil);
    assert_eq!(
        c.cmd(&["SPOP", "s2", "5"]),
        Resp::Set(vec![Resp::bulk("b")])
    );
    assert_err(&c.cmd(&["SADD", "s1"]), "ERR wrong number of arguments");
}

#[test]
fn sets_survive_restart_and_eviction() {
    let mut s = Server::start(&["--maxmemory", "4mb", "--cache-flush-delay", "0"]);
    let tmp = s.take_tmp();
    let dir = s.dir.clone();
    let mut c = s.client();
    c.cmd(&["SADD", "keep", "x", "y", ""]);
    let big = "v".repeat(200_000);
    for i in 0..30 {
        c.cmd(&["SADD", &format!("fill:{i}"), &big, &i.to_string()]);
    }
    for i in 0..30 {
        assert_eq!(c.cmd(&["SCARD", &format!("fill:{i}")]), Resp::Int(2));
    }
    // Cold keys are loaded back for reads, writes and set algebra.
    assert_eq!(
        members(&c.cmd(&["SMEMBERS", "keep"])),
        sorted(&["", "x", "y"])
    );
    assert_eq!(c.cmd(&["SCARD", "fill:0"]), Resp::Int(2));
    assert_eq!(
        c.cmd(&["SINTERCARD", "2", "fill:1", "fill:2"]),
        Resp::Int(1)
    );
    assert_eq!(c.cmd(&["SMOVE", "fill:3", "keep", "3"]), Resp::Int(1));
    // Whatever was evicted must have come back from the disk for the reads above.
    if c.info_int("evicted_keys") > 0 {
        assert!(c.info_int("disk_loads") > 0, "nothing was loaded back");
    } else {
        eprintln!("warning: nothing was evicted, the cold path went untested");
    }
    drop(c);
    assert!(s.shutdown());
    let s2 = Server::start_in(&dir, &[]);
    let mut c = s2.client();
    assert_eq!(
        members(&c.cmd(&["SMEMBERS", "keep"])),
        sorted(&["", "3", "x", "y"])
    );
    assert_eq!(members(&c.cmd(&["SMEMBERS", "fill:3"])), vec![big.clone()]);
    assert_eq!(c.cmd(&["SCARD", "fill:29"]), Resp::Int(2));
    drop(tmp);
}
