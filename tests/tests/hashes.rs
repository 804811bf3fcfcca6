//! Hash commands against the real server, checked against Redis 7.0's replies.

use kvtier_tests::{Client, Resp, Server};
use std::collections::{HashMap, HashSet};

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const NOT_INT: &str = "ERR value is not an integer or out of range";

fn b(items: &[&str]) -> Resp {
    Resp::bulks(items)
}

fn exists(c: &mut Client, key: &str) -> bool {
    c.cmd(&["EXISTS", key]) == Resp::Int(1)
}

fn strs(r: &Resp) -> Vec<String> {
    match r {
        Resp::Array(v) => v.iter().map(Resp::as_str).collect(),
        other => panic!("expected an array, got {other:?}"),
    }
}

/// A flat field/value array (RESP2 HGETALL, HSCAN page) as a map.
fn pairs(r: &Resp) -> HashMap<String, String> {
    let v = strs(r);
    assert_eq!(v.len() % 2, 0, "odd reply {r:?}");
    v.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect()
}

/// Runs HSCAN to the end; returns every (field, value) seen, in order, and the number of calls.
fn scan_all(c: &mut Client, key: &str, opts: &[&str]) -> (Vec<(String, String)>, usize) {
    let mut cursor = "0".to_string();
    let mut seen = Vec::new();
    let mut calls = 0;
    loop {
        let mut args = vec!["HSCAN", key, cursor.as_str()];
        args.extend_from_slice(opts);
        let r = c.cmd(&args);
        calls += 1;
        let Resp::Array(parts) = r else {
            panic!("bad HSCAN reply {r:?}")
        };
        let items = strs(&parts[1]);
        seen.extend(items.chunks(2).map(|p| (p[0].clone(), p[1].clone())));
        cursor = parts[0].as_str();
        if cursor == "0" {
            return (seen, calls);
        }
        assert!(calls < 100_000, "HSCAN does not terminate");
    }
}

#[test]
fn set_get_delete() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(c.cmd(&["HSET", "h", "a", "1", "b", "2"]), Resp::Int(2));
    assert_eq!(c.cmd(&["HSET", "h", "a", "3", "c", "4"]), Resp::Int(1));
    // A field repeated in one call counts once; the last value wins.
    assert_eq!(c.cmd(&["HSET", "h", "d", "x", "d", "5"]), Resp::Int(1));
    assert_eq!(c.cmd(&["HMSET", "h", "e", "6", "a", "1"]), Resp::ok());
    assert_eq!(c.cmd(&["HGET", "h", "a"]), Resp::bulk("1"));
    assert_eq!(c.cmd(&["HGET", "h", "d"]), Resp::bulk("5"));
    assert_eq!(c.cmd(&["HGET", "h", "nope"]), Resp::Nil);
    assert_eq!(c.cmd(&["HGET", "nokey", "a"]), Resp::Nil);
    assert_eq!(c.cmd(&["TYPE", "h"]), Resp::Simple("hash".into()));

    assert_eq!(c.cmd(&["HSETNX", "h", "a", "9"]), Resp::Int(0));
    assert_eq!(c.cmd(&["HGET", "h", "a"]), Resp::bulk("1"));
    assert_eq!(c.cmd(&["HSETNX", "h", "z", "9"]), Resp::Int(1));
    assert_eq!(c.cmd(&["HSETNX", "new", "f", "v"]), Resp::Int(1));
    assert_eq!(c.cmd(&["HGET", "new", "f"]), Resp::bulk("v"));

    assert_eq!(
        c.cmd(&["HMGET", "h", "a", "nope", "b"]),
        Resp::Array(vec![Resp::bulk("1"), Resp::Nil, Resp::bulk("2")])
    );
    assert_eq!(
        c.cmd(&["HMGET", "nokey", "a", "b"]),
        Resp::Array(vec![Resp::Nil, Resp::Nil])
    );

    assert_eq!(c.cmd(&["HLEN", "h"]), Resp::Int(6));
    assert_eq!(c.cmd(&["HLEN", "nokey"]), Resp::Int(0));
    c.cmd(&["HSET", "h", "long", "hello world", "empty", ""]);
    assert_eq!(c.cmd(&["HSTRLEN", "h", "long"]), Resp::Int(11));
    assert_eq!(c.cmd(&["HSTRLEN", "h", "empty"]), Resp::Int(0));
    assert_eq!(c.cmd(&["HSTRLEN", "h", "nope"]), Resp::Int(0));
    assert_eq!(c.cmd(&["HSTRLEN", "nokey", "a"]), Resp::Int(0));
    assert_eq!(c.cmd(&["HEXISTS", "h", "empty"]), Resp::Int(1));
    assert_eq!(c.cmd(&["HEXISTS", "h", "nope"]), Resp::Int(0));
    assert_eq!(c.cmd(&["HEXISTS", "nokey", "a"]), Resp::Int(0));

    assert_eq!(c.cmd(&["HDEL", "h", "z", "nope", "z"]), Resp::Int(1));
    assert_eq!(c.cmd(&["HDEL", "h", "nope"]), Resp::Int(0));
    assert_eq!(c.cmd(&["HDEL", "nokey", "a"]), Resp::Int(0));
    assert_eq!(c.cmd(&["HDEL", "new", "f"]), Resp::Int(1));
    assert!(!exists(&mut c, "new"));
    assert_eq!(
        c.cmd(&["HDEL", "h", "a", "b", "c", "d", "e", "long", "empty"]),
        Resp::Int(7)
    );
    assert!(!exists(&mut c, "h"));

    // Binary-safe fields and values.
    assert_eq!(
        c.cmd_bytes(&[b"HSET", b"bin", b"\x00f\r\n", b"\xff\x00"]),
        Resp::Int(1)
    );
    assert_eq!(
        c.cmd_bytes(&[b"HGET", b"bin", b"\x00f\r\n"]),
        Resp::Bulk(b"\xff\x00".to_vec())
    );
}

#[test]
fn whole_hash_replies() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.cmd(&["HSET", "h", "a", "1", "b", "2", "c", "3"]);
    let mut keys = strs(&c.cmd(&["HKEYS", "h"]));
    keys.sort();
    assert_eq!(keys, ["a", "b", "c"]);
    let mut vals = strs(&c.cmd(&["HVALS", "h"]));
    vals.sort();
    assert_eq!(vals, ["1", "2", "3"]);
    let all = c.cmd(&["HGETALL", "h"]);
    let want: HashMap<String, String> = [("a", "1"), ("b", "2"), ("c", "3")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(pairs(&all), want);
    assert_eq!(c.cmd(&["HKEYS", "nokey"]), b(&[]));
    assert_eq!(c.cmd(&["HVALS", "nokey"]), b(&[]));
    assert_eq!(c.cmd(&["HGETALL", "nokey"]), b(&[]));

    // RESP3: HGETALL is a map, HKEYS/HVALS stay arrays.
    c.cmd(&["HELLO", "3"]);
    match c.cmd(&["HGETALL", "h"]) {
        Resp::Map(m) => {
            let got: HashMap<String, String> =
                m.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            assert_eq!(got, want);
            assert!(m
                .iter()
                .all(|(k, v)| matches!((k, v), (Resp::Bulk(_), Resp::Bulk(_)))));
        }
        other => panic!("expected a map, got {other:?}"),
    }
    assert_eq!(c.cmd(&["HGETALL", "nokey"]), Resp::Map(vec![]));
    assert!(matches!(c.cmd(&["HKEYS", "h"]), Resp::Array(v) if v.len() == 3));
    assert!(matches!(c.cmd(&["HVALS", "h"]), Resp::Array(v) if v.len() == 3));
    assert_eq!(c.cmd(&["HGET", "h", "nope"]), Resp::Nil);
    assert_eq!(
        c.cmd(&["HMGET", "h", "a", "nope"]),
        Resp::Array(vec![Resp::bulk("1"), Resp::Nil])
    );
}

#[test]
fn increments() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(c.cmd(&["HINCRBY", "h", "n", "10"]), Resp::Int(10));
    assert_eq!(c.cmd(&["HINCRBY", "h", "n", "-15"]), Resp::Int(-5));
    assert_eq!(c.cmd(&["HGET", "h", "n"]), Resp::bulk("-5"));
    assert_eq!(c.cmd(&["HINCRBY", "h", "m", "0"]), Resp::Int(0));
    assert_eq!(c.cmd(&["HINCRBY", "h", "n", "x"]), Resp::err(NOT_INT));
    assert_eq!(c.cmd(&["HINCRBY", "nokey", "n", "1.5"]), Resp::err(NOT_INT));
    assert!(!exists(&mut c, "nokey"));
    c.cmd(&[
        "HSET",
        "h",
        "str",
        "abc",
        "big",
        "9223372036854775807",
        "sp",
        " 1",
        "small",
        "-9223372036854775808",
    ]);
    let not_int = Resp::err("ERR hash value is not an integer");
    assert_eq!(c.cmd(&["HINCRBY", "h", "str", "1"]), not_int);
    assert_eq!(c.cmd(&["HINCRBY", "h", "sp", "1"]), not_int);
    let overflow = Resp::err("ERR increment or decrement would overflow");
    assert_eq!(c.cmd(&["HINCRBY", "h", "big", "1"]), overflow);
    assert_eq!(c.cmd(&["HINCRBY", "h", "small", "-1"]), overflow);
    assert_eq!(
        c.cmd(&["HGET", "h", "big"]),
        Resp::bulk("9223372036854775807")
    );
    assert_eq!(
        c.cmd(&["HINCRBY", "h", "big", "-9223372036854775807"]),
        Resp::Int(0)
    );

    assert_eq!(c.cmd(&["HINCRBYFLOAT", "h", "f", "1.5"]), Resp::bulk("1.5"));
    assert_eq!(c.cmd(&["HINCRBYFLOAT", "h", "f", "0.1"]), Resp::bulk("1.6"));
    assert_eq!(c.cmd(&["HINCRBYFLOAT", "h", "f", "-1.6"]), Resp::bulk("0"));
    assert_eq!(c.cmd(&["HINCRBYFLOAT", "h", "n", "1e3"]), Resp::bulk("995"));
    assert_eq!(c.cmd(&["HGET", "h", "n"]), Resp::bulk("995"));
    assert_eq!(
        c.cmd(&["HINCRBYFLOAT", "h", "g", "5.0e-1"]),
        Resp::bulk("0.5")
    );
    assert_eq!(
        c.cmd(&["HINCRBYFLOAT", "h", "g2", "1e20"]),
        Resp::bulk("100000000000000000000")
    );
    assert_eq!(
        c.cmd(&["HINCRBYFLOAT", "h", "g3", "1e-5"]),
        Resp::bulk("0.00001")
    );
    // An integer field becomes a float field and back.
    assert_eq!(
        c.cmd(&["HINCRBYFLOAT", "h", "n", "0.5"]),
        Resp::bulk("995.5")
    );
    assert_eq!(
        c.cmd(&["HINCRBY", "h", "n", "1"]),
        Resp::err("ERR hash value is not an integer")
    );
    assert_eq!(
        c.cmd(&["HINCRBYFLOAT", "h", "str", "1"]),
        Resp::err("ERR hash value is not a float")
    );
    let not_float = Resp::err("ERR value is not a valid float");
    assert_eq!(c.cmd(&["HINCRBYFLOAT", "h", "f", "x"]), not_float);
    assert_eq!(c.cmd(&["HINCRBYFLOAT", "h", "f", "nan"]), not_float);
    assert_eq!(c.cmd(&["HINCRBYFLOAT", "nokey", "f", ""]), not_float);
    assert_eq!(
        c.cmd(&["HINCRBYFLOAT", "h", "f", "inf"]),
        Resp::err("ERR value is NaN or Infinity")
    );
    c.cmd(&["HSET", "h", "inf", "inf"]);
    assert_eq!(
        c.cmd(&["HINCRBYFLOAT", "h", "inf", "1"]),
        Resp::err("ERR increment would produce NaN or Infinity")
    );
    assert_eq!(c.cmd(&["HGET", "h", "inf"]), Resp::bulk("inf"));
}

#[test]
fn hscan() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.cmd(&["HSET", "h", "a1", "1", "a2", "2", "b1", "3"]);
    // A small hash comes back whole, whatever COUNT says.
    let r = c.cmd(&["HSCAN", "h", "0", "COUNT", "1"]);
    let Resp::Array(parts) = &r else {
        panic!("bad reply {r:?}")
    };
    assert_eq!(parts[0], Resp::bulk("0"));
    assert_eq!(pairs(&parts[1]).len(), 3);
    let r = c.cmd(&["HSCAN", "h", "0", "MATCH", "a*"]);
    let Resp::Array(parts) = &r else {
        panic!("bad reply {r:?}")
    };
    let want: HashMap<String, String> = [
        ("a1".to_string(), "1".to_string()),
        ("a2".into(), "2".into()),
    ]
    .into_iter()
    .collect();
    assert_eq!(pairs(&parts[1]), want);
    assert_eq!(
        c.cmd(&["HSCAN", "h", "0", "match", "z*", "count", "5"]),
        Resp::Array(vec![Resp::bulk("0"), b(&[])])
    );
    assert_eq!(
        c.cmd(&["HSCAN", "nokey", "0"]),
        Resp::Array(vec![Resp::bulk("0"), b(&[])])
    );

    // Errors: the cursor first, then the key, then the options.
    let invalid = Resp::err("ERR invalid cursor");
    assert_eq!(c.cmd(&["HSCAN", "h", "x"]), invalid);
    assert_eq!(c.cmd(&["HSCAN", "h", "18446744073709551616"]), invalid);
    assert_eq!(c.cmd(&["HSCAN", "h", " 1"]), invalid);
    assert_eq!(c.cmd(&["HSCAN", "nokey", "x"]), invalid);
    let syntax = Resp::err("ERR syntax error");
    assert_eq!(c.cmd(&["HSCAN", "h", "0", "COUNT", "0"]), syntax);
    assert_eq!(c.cmd(&["HSCAN", "h", "0", "COUNT", "-1"]), syntax);
    assert_eq!(
        c.cmd(&["HSCAN", "h", "0", "COUNT", "x"]),
        Resp::err(NOT_INT)
    );
    assert_eq!(c.cmd(&["HSCAN", "h", "0", "FOO", "1"]), syntax);
    assert_eq!(c.cmd(&["HSCAN", "h", "0", "MATCH"]), syntax);
    assert_eq!(c.cmd(&["HSCAN", "h", "0", "TYPE", "string"]), syntax);
    assert_eq!(
        c.cmd(&["HSCAN", "nokey", "0", "FOO"]),
        Resp::Array(vec![Resp::bulk("0"), b(&[])])
    );

    // A big hash is paged with a cursor; every field comes back exactly once.
    let mut args: Vec<String> = vec!["HSET".into(), "big".into()];
    for i in 0..1000 {
        args.push(format!("field:{i}"));
        args.push(format!("v{i}"));
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(c.cmd(&refs), Resp::Int(1000));
    let (seen, calls) = scan_all(&mut c, "big", &["COUNT", "20"]);
    assert!(calls > 10, "COUNT 20 over 1000 fields took {calls} calls");
    let fields: HashSet<&str> = seen.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(fields.len(), 1000);
    assert_eq!(seen.len(), 1000, "a field came back twice");
    assert!(seen.iter().all(|(f, v)| f[6..] == v[1..]));
    let (seen, _) = scan_all(&mut c, "big", &[]);
    assert_eq!(seen.len(), 1000);
    let (seen, _) = scan_all(&mut c, "big", &["MATCH", "field:1?", "COUNT", "100"]);
    let mut got: Vec<&str> = seen.iter().map(|(f, _)| f.as_str()).collect();
    got.sort();
    let mut want: Vec<String> = (10..20).map(|i| format!("field:{i}")).collect();
    want.sort();
    assert_eq!(got, want);

    // Changes during a scan: fields present throughout are all returned.
    let mut cursor = "0".to_string();
    let mut seen = HashSet::new();
    let mut round = 0;
    loop {
        let r = c.cmd(&["HSCAN", "big", &cursor, "COUNT", "50"]);
        let Resp::Array(parts) = r else {
            panic!("bad reply")
        };
        for p in strs(&parts[1]).chunks(2) {
            seen.insert(p[0].clone());
        }
        cursor = parts[0].as_str();
        if cursor == "0" {
            break;
        }
        // Delete a few fields (ids 0..100 become "volatile") and add new ones.
        let del = format!("field:{round}");
        c.cmd(&["HDEL", "big", &del]);
        let add = format!("new:{round}");
        c.cmd(&["HSET", "big", &add, "x"]);
        round += 1;
    }
    for i in 100..1000 {
        assert!(seen.contains(&format!("field:{i}")), "field:{i} missed");
    }
}

#[test]
fn hrandfield() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.cmd(&["HSET", "h", "a", "1", "b", "2", "c", "3"]);
    let fields = ["a", "b", "c"];
    let value_of = |f: &str| (f.as_bytes()[0] - b'a' + b'1') as char;
    for _ in 0..20 {
        let f = c.cmd(&["HRANDFIELD", "h"]).as_str();
        assert!(fields.contains(&f.as_str()), "{f}");
    }
    assert_eq!(c.cmd(&["HRANDFIELD", "nokey"]), Resp::Nil);
    assert_eq!(c.cmd(&["HRANDFIELD", "nokey", "2"]), b(&[]));
    assert_eq!(c.cmd(&["HRANDFIELD", "nokey", "-2", "WITHVALUES"]), b(&[]));
    assert_eq!(c.cmd(&["HRANDFIELD", "h", "0"]), b(&[]));
    assert_eq!(c.cmd(&["HRANDFIELD", "h", "0", "withvalues"]), b(&[]));

    for _ in 0..20 {
        // Positive: distinct fields, at most the hash's size.
        let two = strs(&c.cmd(&["HRANDFIELD", "h", "2"]));
        assert_eq!(two.len(), 2);
        assert_ne!(two[0], two[1]);
        assert!(two.iter().all(|f| fields.contains(&f.as_str())));
        let mut all = strs(&c.cmd(&["HRANDFIELD", "h", "10"]));
        all.sort();
        assert_eq!(all, fields);
        // Negative: exactly that many, repeats allowed.
        let many = strs(&c.cmd(&["HRANDFIELD", "h", "-10"]));
        assert_eq!(many.len(), 10);
        assert!(many.iter().all(|f| fields.contains(&f.as_str())));
        // WITHVALUES: flat pairs in RESP2.
        let pv = strs(&c.cmd(&["HRANDFIELD", "h", "-5", "WITHVALUES"]));
        assert_eq!(pv.len(), 10);
        for p in pv.chunks(2) {
            assert_eq!(p[1], value_of(&p[0]).to_string());
        }
        let pv = pairs(&c.cmd(&["HRANDFIELD", "h", "2", "withvalues"]));
        assert_eq!(pv.len(), 2);
    }
    // Over enough draws a negative count repeats something.
    let many = strs(&c.cmd(&["HRANDFIELD", "h", "-100"]));
    let distinct: HashSet<&String> = many.iter().collect();
    assert!(distinct.len() <= 3 && many.len() == 100);

    assert_eq!(c.cmd(&["HRANDFIELD", "h", "x"]), Resp::err(NOT_INT));
    assert_eq!(c.cmd(&["HRANDFIELD", "nokey", "x"]), Resp::err(NOT_INT));
    assert_eq!(
        c.cmd(&["HRANDFIELD", "h", "-9223372036854775808"]),
        Resp::err(
            "ERR value is out of range, value must between -9223372036854775807 and \
             9223372036854775807"
        )
    );
    let range = Resp::err("ERR value is out of range");
    assert_eq!(
        c.cmd(&["HRANDFIELD", "h", "9223372036854775807", "WITHVALUES"]),
        range
    );
    assert_eq!(
        c.cmd(&["HRANDFIELD", "h", "-4611686018427387904", "WITHVALUES"]),
        range
    );
    let syntax = Resp::err("ERR syntax error");
    assert_eq!(c.cmd(&["HRANDFIELD", "h", "2", "foo"]), syntax);
    assert_eq!(c.cmd(&["HRANDFIELD", "h", "2", "WITHVALUES", "x"]), syntax);

    // RESP3: WITHVALUES gives [field, value] pairs.
    c.cmd(&["HELLO", "3"]);
    assert_eq!(c.cmd(&["HRANDFIELD", "nokey"]), Resp::Nil);
    for count in ["2", "-4"] {
        match c.cmd(&["HRANDFIELD", "h", count, "WITHVALUES"]) {
            Resp::Array(items) => {
                assert_eq!(
                    items.len(),
                    count.trim_start_matches('-').parse::<usize>().unwrap()
                );
                for it in items {
                    let p = strs(&it);
                    assert_eq!(p.len(), 2);
                    assert_eq!(p[1], value_of(&p[0]).to_string());
                }
            }
            other => panic!("expected an array, got {other:?}"),
        }
    }
    assert_eq!(
        c.cmd(&["HRANDFIELD", "h", "1", "WITHVALUES"])
            .sorted()
            .len(),
        1
    );
    assert_eq!(c.cmd(&["HRANDFIELD", "nokey", "1", "WITHVALUES"]), b(&[]));
}

#[test]
fn wrong_type_and_arity() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.cmd(&["SET", "str", "v"]);
    let wrongtype: &[&[&str]] = &[
        &["HSET", "str", "f", "v"],
        &["HSETNX", "str", "f", "v"],
        &["HGET", "str", "f"],
        &["HMSET", "str", "f", "v"],
        &["HMGET", "str", "f"],
        &["HDEL", "str", "f"],
        &["HLEN", "str"],
        &["HSTRLEN", "str", "f"],
        &["HEXISTS", "str", "f"],
        &["HKEYS", "str"],
        &["HVALS", "str"],
        &["HGETALL", "str"],
        &["HINCRBY", "str", "f", "1"],
        &["HINCRBYFLOAT", "str", "f", "1"],
        &["HSCAN", "str", "0"],
        &["HRANDFIELD", "str"],
        &["HRANDFIELD", "str", "0"],
        &["HRANDFIELD", "str", "-3", "WITHVALUES"],
    ];
    for args in wrongtype {
        assert_eq!(c.cmd(args), Resp::err(WRONGTYPE), "{args:?}");
    }
    assert_eq!(c.cmd(&["GET", "str"]), Resp::bulk("v"));
    // Argument errors come before the type check.
    assert_eq!(c.cmd(&["HINCRBY", "str", "f", "x"]), Resp::err(NOT_INT));
    assert_eq!(
        c.cmd(&["HSCAN", "str", "x"]),
        Resp::err("ERR invalid cursor")
    );

    let arity: &[&[&str]] = &[
        &["HSET", "k", "f"],
        &["HSET", "k", "f", "v", "g"],
        &["HSETNX", "k", "f"],
        &["HGET", "k"],
        &["HMSET", "k", "f"],
        &["HMSET", "k", "f", "v", "g"],
        &["HMGET", "k"],
        &["HDEL", "k"],
        &["HLEN"],
        &["HLEN", "k", "x"],
        &["HSTRLEN", "k"],
        &["HEXISTS", "k"],
        &["HKEYS"],
        &["HVALS", "k", "x"],
        &["HGETALL"],
        &["HINCRBY", "k", "f"],
        &["HINCRBYFLOAT", "k", "f", "1", "2"],
        &["HSCAN", "k"],
        &["HRANDFIELD"],
    ];
    kvtier_tests::assert_arity_errors(&mut c, arity);
    assert!(!exists(&mut c, "k"));
}

#[test]
fn hashes_survive_restart() {
    let mut s = Server::start(&["--cache-flush-delay", "60"]);
    let tmp = s.take_tmp();
    let dir = s.dir.clone();
    let mut c = s.client();
    c.cmd_bytes(&[
        b"HSET",
        b"h",
        b"a",
        b"1",
        b"",
        b"empty-field",
        b"\x00\r\n",
        b"",
    ]);
    c.cmd(&["HINCRBYFLOAT", "h", "a", "0.5"]);
    c.cmd(&["HSET", "gone", "f", "v"]);
    assert_eq!(c.cmd(&["SAVE"]), Resp::ok());
    // Emptied after a save: the deletion must reach the disk too.
    c.cmd(&["HDEL", "gone", "f"]);
    drop(c);
    assert!(s.shutdown(), "SHUTDOWN must exit cleanly");
    let s2 = Server::start_in(&dir, &[]);
    let mut c = s2.client();
    assert_eq!(c.cmd(&["HLEN", "h"]), Resp::Int(3));
    assert_eq!(c.cmd(&["HGET", "h", "a"]), Resp::bulk("1.5"));
    assert_eq!(c.cmd(&["HGET", "h", ""]), Resp::bulk("empty-field"));
    assert_eq!(c.cmd_bytes(&[b"HGET", b"h", b"\x00\r\n"]), Resp::bulk(""));
    assert!(!exists(&mut c, "gone"));
    drop(tmp);
}
