//! Sorted set commands against the real server, checked against Redis 7.0's replies.

use kvtier_tests::{Client, Resp, Server};
use std::collections::HashMap;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const NOT_INT: &str = "ERR value is not an integer or out of range";
const NOT_FLOAT: &str = "ERR value is not a valid float";
const SYNTAX: &str = "ERR syntax error";
const RANGE_NOT_FLOAT: &str = "ERR min or max is not a float";
const LEX_RANGE: &str = "ERR min or max not valid string range item";
const NOT_POSITIVE: &str = "ERR value is out of range, must be positive";

fn b(items: &[&str]) -> Resp {
    Resp::bulks(items)
}

fn d(s: &str) -> Resp {
    Resp::Double(s.into())
}

fn exists(c: &mut Client, key: &str) -> bool {
    c.cmd(&["EXISTS", key]) == Resp::Int(1)
}

fn all(c: &mut Client, key: &str) -> Resp {
    c.cmd(&["ZRANGE", key, "0", "-1", "WITHSCORES"])
}

/// A sorted set with members a..e scored 1..5.
fn abcde(c: &mut Client, key: &str) {
    c.cmd(&["DEL", key]);
    c.cmd(&[
        "ZADD", key, "1", "a", "2", "b", "3", "c", "4", "d", "5", "e",
    ]);
}

#[test]
fn zadd_options() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(
        c.cmd(&["ZADD", "z", "1", "a", "2", "b", "3", "a"]),
        Resp::Int(2)
    );
    assert_eq!(all(&mut c, "z"), b(&["b", "2", "a", "3"]));
    assert_eq!(c.cmd(&["ZADD", "z", "3", "a"]), Resp::Int(0));
    // CH counts changed scores too, but not unchanged ones.
    assert_eq!(
        c.cmd(&["ZADD", "z", "CH", "1", "a", "2", "b", "9", "c"]),
        Resp::Int(2)
    );
    // NX only adds, XX only updates.
    assert_eq!(
        c.cmd(&["ZADD", "z", "NX", "100", "a", "4", "d"]),
        Resp::Int(1)
    );
    assert_eq!(c.cmd(&["ZSCORE", "z", "a"]), Resp::bulk("1"));
    assert_eq!(
        c.cmd(&["ZADD", "z", "XX", "CH", "10", "a", "5", "new"]),
        Resp::Int(1)
    );
    assert_eq!(c.cmd(&["ZSCORE", "z", "new"]), Resp::Nil);
    assert_eq!(c.cmd(&["ZSCORE", "z", "a"]), Resp::bulk("10"));
    // GT/LT only move scores one way; new members are still added.
    assert_eq!(
        c.cmd(&["ZADD", "z", "GT", "CH", "5", "a", "20", "b", "1", "e"]),
        Resp::Int(2)
    );
    assert_eq!(
        c.cmd(&["ZMSCORE", "z", "a", "b", "e"]),
        b(&["10", "20", "1"])
    );
    assert_eq!(
        c.cmd(&["ZADD", "z", "LT", "CH", "5", "a", "30", "b"]),
        Resp::Int(1)
    );
    assert_eq!(c.cmd(&["ZMSCORE", "z", "a", "b"]), b(&["5", "20"]));
    assert_eq!(
        c.cmd(&["ZADD", "z", "XX", "GT", "6", "a", "1", "zz"]),
        Resp::Int(0)
    );
    assert_eq!(c.cmd(&["ZSCORE", "z", "a"]), Resp::bulk("6"));
    // INCR replies with the new score, or nil when a condition stops it.
    assert_eq!(c.cmd(&["ZADD", "z", "INCR", "1.5", "a"]), Resp::bulk("7.5"));
    assert_eq!(
        c.cmd(&["ZADD", "z", "incr", "-1", "fresh"]),
        Resp::bulk("-1")
    );
    assert_eq!(c.cmd(&["ZADD", "z", "NX", "INCR", "1", "a"]), Resp::Nil);
    assert_eq!(c.cmd(&["ZADD", "z", "XX", "INCR", "1", "nope"]), Resp::Nil);
    assert_eq!(c.cmd(&["ZADD", "z", "GT", "INCR", "-1", "a"]), Resp::Nil);
    assert_eq!(
        c.cmd(&["ZADD", "z", "LT", "INCR", "-1", "a"]),
        Resp::bulk("6.5")
    );
    assert_eq!(c.cmd(&["ZADD", "z", "INCR", "0", "a"]), Resp::bulk("6.5"));
    // XX on a missing key creates nothing.
    assert_eq!(c.cmd(&["ZADD", "nokey", "XX", "1", "a"]), Resp::Int(0));
    assert_eq!(c.cmd(&["ZADD", "nokey", "XX", "INCR", "1", "a"]), Resp::Nil);
    assert!(!exists(&mut c, "nokey"));
    assert_eq!(c.cmd(&["TYPE", "z"]), Resp::Simple("zset".into()));

    // Errors, in Redis's order.
    let errors: &[(&[&str], &str)] = &[
        (&["ZADD", "z", "1", "a", "2"], SYNTAX),
        (&["ZADD", "z", "NX", "1"], SYNTAX),
        (&["ZADD", "z", "FOO", "1", "a"], SYNTAX),
        (
            &["ZADD", "z", "NX", "XX", "1", "a"],
            "ERR XX and NX options at the same time are not compatible",
        ),
        (
            &["ZADD", "z", "GT", "LT", "1", "a"],
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ),
        (
            &["ZADD", "z", "NX", "GT", "1", "a"],
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ),
        (
            &["ZADD", "z", "INCR", "1", "a", "2", "b"],
            "ERR INCR option supports a single increment-element pair",
        ),
        (&["ZADD", "z", "x", "a"], NOT_FLOAT),
        (&["ZADD", "z", "1", "a", "nan", "b"], NOT_FLOAT),
        (&["ZADD", "z", "", "a"], NOT_FLOAT),
        (&["ZADD", "z", " 1", "a"], NOT_FLOAT),
        (&["ZADD", "z", "1e400", "a"], NOT_FLOAT),
        (&["ZADD", "z", "1", "a", "2", "b", "x", "c"], NOT_FLOAT),
    ];
    for (args, want) in errors {
        assert_eq!(c.cmd(args), Resp::err(want), "{args:?}");
    }
    // A failed ZADD changes nothing.
    assert_eq!(c.cmd(&["ZSCORE", "z", "b"]), Resp::bulk("20"));
}

#[test]
fn scores_and_formatting() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.cmd(&[
        "ZADD", "z", "1.1", "a", "-inf", "lo", "+inf", "hi", "1e20", "big", "0x10", "hex",
    ]);
    c.cmd(&["ZADD", "z", "-0", "zero", "0.00001", "tiny", "3", "three"]);
    assert_eq!(
        c.cmd(&["ZSCORE", "z", "a"]),
        Resp::bulk("1.1000000000000001")
    );
    assert_eq!(c.cmd(&["ZSCORE", "z", "lo"]), Resp::bulk("-inf"));
    assert_eq!(c.cmd(&["ZSCORE", "z", "hi"]), Resp::bulk("inf"));
    assert_eq!(c.cmd(&["ZSCORE", "z", "big"]), Resp::bulk("1e+20"));
    assert_eq!(c.cmd(&["ZSCORE", "z", "hex"]), Resp::bulk("16"));
    assert_eq!(c.cmd(&["ZSCORE", "z", "zero"]), Resp::bulk("0"));
    assert_eq!(
        c.cmd(&["ZSCORE", "z", "tiny"]),
        Resp::bulk("1.0000000000000001e-05")
    );
    assert_eq!(c.cmd(&["ZSCORE", "z", "three"]), Resp::bulk("3"));
    assert_eq!(c.cmd(&["ZSCORE", "z", "nope"]), Resp::Nil);
    assert_eq!(c.cmd(&["ZSCORE", "nokey", "a"]), Resp::Nil);
    assert_eq!(
        c.cmd(&["ZMSCORE", "z", "a", "nope", "three"]),
        Resp::Array(vec![
            Resp::bulk("1.1000000000000001"),
            Resp::Nil,
            Resp::bulk("3")
        ])
    );
    assert_eq!(
        c.cmd(&["ZMSCORE", "nokey", "a", "b"]),
        Resp::Array(vec![Resp::Nil, Resp::Nil])
    );
    assert_eq!(
        c.cmd(&["ZRANGE", "z", "0", "1", "WITHSCORES"]),
        b(&["lo", "-inf", "zero", "0"])
    );

    // RESP3: doubles.
    c.cmd(&["HELLO", "3"]);
    assert_eq!(c.cmd(&["ZSCORE", "z", "a"]), d("1.1000000000000001"));
    assert_eq!(c.cmd(&["ZSCORE", "z", "hi"]), d("inf"));
    assert_eq!(c.cmd(&["ZSCORE", "z", "lo"]), d("-inf"));
    assert_eq!(c.cmd(&["ZSCORE", "z", "three"]), d("3"));
    assert_eq!(c.cmd(&["ZSCORE", "z", "nope"]), Resp::Nil);
    assert_eq!(
        c.cmd(&["ZMSCORE", "z", "three", "nope"]),
        Resp::Array(vec![d("3"), Resp::Nil])
    );
    assert_eq!(
        c.cmd(&["ZINCRBY", "z", "1.1", "three"]),
        d("4.0999999999999996")
    );
    assert_eq!(
        c.cmd(&["ZADD", "z", "INCR", "1", "three"]),
        d("5.0999999999999996")
    );
    assert_eq!(c.cmd(&["ZADD", "z", "NX", "INCR", "1", "three"]), Resp::Nil);
}

#[test]
fn zincrby() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(c.cmd(&["ZINCRBY", "z", "1.5", "a"]), Resp::bulk("1.5"));
    assert_eq!(c.cmd(&["ZINCRBY", "z", "-3", "a"]), Resp::bulk("-1.5"));
    assert_eq!(
        c.cmd(&["ZINCRBY", "z", "1.1", "b"]),
        Resp::bulk("1.1000000000000001")
    );
    assert_eq!(c.cmd(&["ZINCRBY", "z", "x", "a"]), Resp::err(NOT_FLOAT));
    assert_eq!(c.cmd(&["ZINCRBY", "z", "nan", "a"]), Resp::err(NOT_FLOAT));
    assert_eq!(c.cmd(&["ZINCRBY", "z", "inf", "a"]), Resp::bulk("inf"));
    let nan = "ERR resulting score is not a number (NaN)";
    assert_eq!(c.cmd(&["ZINCRBY", "z", "-inf", "a"]), Resp::err(nan));
    assert_eq!(c.cmd(&["ZADD", "z", "INCR", "-inf", "a"]), Resp::err(nan));
    assert_eq!(c.cmd(&["ZSCORE", "z", "a"]), Resp::bulk("inf"));
    assert_eq!(
        all(&mut c, "z"),
        b(&["b", "1.1000000000000001", "a", "inf"])
    );
}

#[test]
fn zrem_zcard_and_ranks() {
    let s = Server::start(&[]);
    let mut c = s.client();
    abcde(&mut c, "z");
    assert_eq!(c.cmd(&["ZCARD", "z"]), Resp::Int(5));
    assert_eq!(c.cmd(&["ZCARD", "nokey"]), Resp::Int(0));
    assert_eq!(c.cmd(&["ZRANK", "z", "a"]), Resp::Int(0));
    assert_eq!(c.cmd(&["ZRANK", "z", "d"]), Resp::Int(3));
    assert_eq!(c.cmd(&["ZREVRANK", "z", "d"]), Resp::Int(1));
    assert_eq!(c.cmd(&["ZRANK", "z", "nope"]), Resp::Nil);
    assert_eq!(c.cmd(&["ZREVRANK", "nokey", "a"]), Resp::Nil);
    // Equal scores order by member.
    c.cmd(&["ZADD", "z", "2", "bb", "2", "ba"]);
    assert_eq!(c.cmd(&["ZRANGE", "z", "1", "3"]), b(&["b", "ba", "bb"]));
    assert_eq!(c.cmd(&["ZREM", "z", "a", "nope", "a"]), Resp::Int(1));
    assert_eq!(c.cmd(&["ZREM", "z", "nope"]), Resp::Int(0));
    assert_eq!(c.cmd(&["ZREM", "nokey", "a"]), Resp::Int(0));
    assert_eq!(c.cmd(&["ZCARD", "z"]), Resp::Int(6));
    assert_eq!(
        c.cmd(&["ZREM", "z", "b", "ba", "bb", "c", "d", "e"]),
        Resp::Int(6)
    );
    assert!(!exists(&mut c, "z"));
}

#[test]
fn zrange_by_rank_score_and_lex() {
    let s = Server::start(&[]);
    let mut c = s.client();
    abcde(&mut c, "z");
    let cases: &[(&[&str], Resp)] = &[
        (&["ZRANGE", "z", "0", "-1"], b(&["a", "b", "c", "d", "e"])),
        (
            &["ZRANGE", "z", "1", "2", "WITHSCORES"],
            b(&["b", "2", "c", "3"]),
        ),
        (&["ZRANGE", "z", "-2", "-1"], b(&["d", "e"])),
        (
            &["ZRANGE", "z", "-100", "100"],
            b(&["a", "b", "c", "d", "e"]),
        ),
        (&["ZRANGE", "z", "3", "1"], b(&[])),
        (&["ZRANGE", "z", "5", "10"], b(&[])),
        (&["ZRANGE", "z", "0", "1", "REV"], b(&["e", "d"])),
        (
            &["ZRANGE", "z", "0", "-1", "LIMIT", "0", "-1"],
            b(&["a", "b", "c", "d", "e"]),
        ),
        (&["ZRANGE", "z", "(1", "4", "BYSCORE"], b(&["b", "c", "d"])),
        (
            &["ZRANGE", "z", "-inf", "(2", "BYSCORE", "WITHSCORES"],
            b(&["a", "1"]),
        ),
        (
            &["ZRANGE", "z", "4", "(1", "BYSCORE", "REV"],
            b(&["d", "c", "b"]),
        ),
        (
            &["ZRANGE", "z", "1", "5", "BYSCORE", "LIMIT", "1", "2"],
            b(&["b", "c"]),
        ),
        (
            &["ZRANGE", "z", "1", "5", "BYSCORE", "LIMIT", "1", "-5"],
            b(&["b", "c", "d", "e"]),
        ),
        (
            &["ZRANGE", "z", "1", "5", "BYSCORE", "LIMIT", "-1", "2"],
            b(&[]),
        ),
        (
            &["ZRANGE", "z", "1", "5", "BYSCORE", "LIMIT", "1", "0"],
            b(&[]),
        ),
        (&["ZRANGE", "z", "+inf", "-inf", "BYSCORE"], b(&[])),
        (&["ZRANGE", "z", "(3", "(3", "BYSCORE"], b(&[])),
        // Empty and "(" bounds read as 0, like strtod.
        (&["ZRANGE", "z", "(", "2", "BYSCORE"], b(&["a", "b"])),
        (&["ZRANGE", "z", "[b", "(d", "BYLEX"], b(&["b", "c"])),
        (
            &["ZRANGE", "z", "-", "+", "BYLEX", "LIMIT", "3", "5"],
            b(&["d", "e"]),
        ),
        (
            &["ZRANGE", "z", "+", "[c", "BYLEX", "REV"],
            b(&["e", "d", "c"]),
        ),
        (&["ZRANGE", "z", "+", "-", "BYLEX"], b(&[])),
        (
            &["ZRANGE", "z", "0", "1", "withscores", "withscores"],
            b(&["a", "1", "b", "2"]),
        ),
        (&["ZRANGE", "nokey", "0", "-1"], b(&[])),
        // The older forms.
        (
            &["ZREVRANGE", "z", "0", "1", "WITHSCORES"],
            b(&["e", "5", "d", "4"]),
        ),
        (
            &[
                "ZRANGEBYSCORE",
                "z",
                "2",
                "+inf",
                "WITHSCORES",
                "LIMIT",
                "1",
                "2",
            ],
            b(&["c", "3", "d", "4"]),
        ),
        (&["ZRANGEBYSCORE", "z", "(1", "(5"], b(&["b", "c", "d"])),
        (
            &["ZREVRANGEBYSCORE", "z", "+inf", "1", "LIMIT", "1", "2"],
            b(&["d", "c"]),
        ),
        (&["ZREVRANGEBYSCORE", "z", "1", "5"], b(&[])),
        (&["ZRANGEBYLEX", "z", "(a", "[c"], b(&["b", "c"])),
        (
            &["ZREVRANGEBYLEX", "z", "+", "-", "LIMIT", "1", "2"],
            b(&["d", "c"]),
        ),
        (
            &["ZRANGEBYLEX", "z", "[", "+"],
            b(&["a", "b", "c", "d", "e"]),
        ),
    ];
    for (args, want) in cases {
        assert_eq!(&c.cmd(args), want, "{args:?}");
    }
    let limit_rank =
        "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX";
    let lex_scores = "ERR syntax error, WITHSCORES not supported in combination with BYLEX";
    let errors: &[(&[&str], &str)] = &[
        (&["ZRANGE", "z", "0", "-1", "LIMIT", "1", "2"], limit_rank),
        (&["ZREVRANGE", "z", "0", "1", "LIMIT", "1", "1"], limit_rank),
        (
            &["ZRANGE", "z", "-", "+", "BYLEX", "WITHSCORES"],
            lex_scores,
        ),
        (&["ZRANGEBYLEX", "z", "-", "+", "WITHSCORES"], lex_scores),
        (&["ZRANGE", "z", "1", "2", "BYSCORE", "BYLEX"], SYNTAX),
        (&["ZRANGE", "z", "1", "2", "REV", "REV"], SYNTAX),
        (&["ZRANGE", "z", "1", "2", "BYSCORE", "LIMIT", "1"], SYNTAX),
        (&["ZRANGEBYSCORE", "z", "1", "2", "BYSCORE"], SYNTAX),
        (&["ZRANGEBYSCORE", "z", "1", "2", "REV"], SYNTAX),
        (
            &["ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", "0", "2", "3"],
            SYNTAX,
        ),
        (
            &["ZRANGE", "z", "1", "5", "BYSCORE", "LIMIT", "x", "1"],
            NOT_INT,
        ),
        (&["ZRANGE", "z", "a", "b"], NOT_INT),
        (&["ZRANGE", "nokey", "a", "b"], NOT_INT),
        (&["ZRANGE", "z", "a", "b", "BYSCORE"], RANGE_NOT_FLOAT),
        (&["ZRANGEBYSCORE", "z", "[1", "5"], RANGE_NOT_FLOAT),
        (&["ZRANGE", "z", "a", "b", "BYLEX"], LEX_RANGE),
        (&["ZRANGEBYLEX", "z", "+a", "+"], LEX_RANGE),
        (&["ZREVRANGEBYLEX", "z", "+", "a"], LEX_RANGE),
    ];
    for (args, want) in errors {
        assert_eq!(c.cmd(args), Resp::err(want), "{args:?}");
    }
}

#[test]
fn zcount_and_zlexcount() {
    let s = Server::start(&[]);
    let mut c = s.client();
    abcde(&mut c, "z");
    assert_eq!(c.cmd(&["ZCOUNT", "z", "-inf", "+inf"]), Resp::Int(5));
    assert_eq!(c.cmd(&["ZCOUNT", "z", "(1", "3"]), Resp::Int(2));
    assert_eq!(c.cmd(&["ZCOUNT", "z", "3", "1"]), Resp::Int(0));
    assert_eq!(c.cmd(&["ZCOUNT", "nokey", "0", "1"]), Resp::Int(0));
    assert_eq!(
        c.cmd(&["ZCOUNT", "z", "x", "1"]),
        Resp::err(RANGE_NOT_FLOAT)
    );
    assert_eq!(c.cmd(&["ZLEXCOUNT", "z", "-", "+"]), Resp::Int(5));
    assert_eq!(c.cmd(&["ZLEXCOUNT", "z", "[b", "(d"]), Resp::Int(2));
    assert_eq!(c.cmd(&["ZLEXCOUNT", "z", "[b", "[b"]), Resp::Int(1));
    assert_eq!(c.cmd(&["ZLEXCOUNT", "z", "(b", "[b"]), Resp::Int(0));
    assert_eq!(c.cmd(&["ZLEXCOUNT", "nokey", "-", "+"]), Resp::Int(0));
    assert_eq!(c.cmd(&["ZLEXCOUNT", "z", "a", "b"]), Resp::err(LEX_RANGE));
}

#[test]
fn zpopmin_and_zpopmax() {
    let s = Server::start(&[]);
    let mut c = s.client();
    abcde(&mut c, "z");
    assert_eq!(c.cmd(&["ZPOPMIN", "z"]), b(&["a", "1"]));
    assert_eq!(c.cmd(&["ZPOPMAX", "z", "2"]), b(&["e", "5", "d", "4"]));
    assert_eq!(c.cmd(&["ZPOPMIN", "z", "0"]), b(&[]));
    assert_eq!(c.cmd(&["ZPOPMIN", "z", "-1"]), Resp::err(NOT_POSITIVE));
    assert_eq!(c.cmd(&["ZPOPMIN", "z", "x"]), Resp::err(NOT_POSITIVE));
    assert_eq!(c.cmd(&["ZPOPMIN", "z", "1", "2"]), Resp::err(SYNTAX));
    assert_eq!(c.cmd(&["ZPOPMIN", "nokey"]), b(&[]));
    assert_eq!(c.cmd(&["ZPOPMAX", "nokey", "3"]), b(&[]));
    // Popping everything deletes the key.
    assert_eq!(c.cmd(&["ZPOPMIN", "z", "10"]), b(&["b", "2", "c", "3"]));
    assert!(!exists(&mut c, "z"));

    // RESP3: one pop is a flat [member, score]; with a count, a list of pairs.
    abcde(&mut c, "z");
    c.cmd(&["HELLO", "3"]);
    assert_eq!(
        c.cmd(&["ZPOPMIN", "z"]),
        Resp::Array(vec![Resp::bulk("a"), d("1")])
    );
    assert_eq!(
        c.cmd(&["ZPOPMAX", "z", "2"]),
        Resp::Array(vec![
            Resp::Array(vec![Resp::bulk("e"), d("5")]),
            Resp::Array(vec![Resp::bulk("d"), d("4")]),
        ])
    );
    assert_eq!(c.cmd(&["ZPOPMAX", "z", "0"]), Resp::Array(vec![]));
    assert_eq!(c.cmd(&["ZPOPMIN", "nokey"]), Resp::Array(vec![]));
}

#[test]
fn zremrangeby() {
    let s = Server::start(&[]);
    let mut c = s.client();
    abcde(&mut c, "z");
    assert_eq!(c.cmd(&["ZREMRANGEBYRANK", "z", "0", "0"]), Resp::Int(1));
    assert_eq!(c.cmd(&["ZREMRANGEBYRANK", "z", "-1", "-1"]), Resp::Int(1));
    assert_eq!(c.cmd(&["ZREMRANGEBYRANK", "z", "5", "10"]), Resp::Int(0));
    assert_eq!(c.cmd(&["ZREMRANGEBYRANK", "z", "2", "1"]), Resp::Int(0));
    assert_eq!(all(&mut c, "z"), b(&["b", "2", "c", "3", "d", "4"]));
    assert_eq!(
        c.cmd(&["ZREMRANGEBYSCORE", "z", "-inf", "(3"]),
        Resp::Int(1)
    );
    assert_eq!(
        c.cmd(&["ZREMRANGEBYSCORE", "z", "(4", "+inf"]),
        Resp::Int(0)
    );
    assert_eq!(c.cmd(&["ZREMRANGEBYLEX", "z", "[d", "+"]), Resp::Int(1));
    assert_eq!(all(&mut c, "z"), b(&["c", "3"]));
    assert_eq!(c.cmd(&["ZREMRANGEBYLEX", "z", "-", "+"]), Resp::Int(1));
    assert!(!exists(&mut c, "z"));
    assert_eq!(
        c.cmd(&["ZREMRANGEBYRANK", "nokey", "0", "-1"]),
        Resp::Int(0)
    );
    assert_eq!(
        c.cmd(&["ZREMRANGEBYSCORE", "nokey", "0", "1"]),
        Resp::Int(0)
    );
    assert_eq!(c.cmd(&["ZREMRANGEBYLEX", "nokey", "-", "+"]), Resp::Int(0));
    abcde(&mut c, "z");
    assert_eq!(c.cmd(&["ZREMRANGEBYRANK", "z", "0", "-1"]), Resp::Int(5));
    assert!(!exists(&mut c, "z"));
    assert_eq!(
        c.cmd(&["ZREMRANGEBYRANK", "z", "x", "0"]),
        Resp::err(NOT_INT)
    );
    assert_eq!(
        c.cmd(&["ZREMRANGEBYSCORE", "z", "x", "0"]),
        Resp::err(RANGE_NOT_FLOAT)
    );
    assert_eq!(
        c.cmd(&["ZREMRANGEBYLEX", "z", "x", "0"]),
        Resp::err(LEX_RANGE)
    );
    // Range errors come before the type check.
    c.cmd(&["SET", "str", "x"]);
    assert_eq!(
        c.cmd(&["ZREMRANGEBYSCORE", "str", "x", "1"]),
        Resp::err(RANGE_NOT_FLOAT)
    );
    assert_eq!(
        c.cmd(&["ZREMRANGEBYSCORE", "str", "0", "1"]),
        Resp::err(WRONGTYPE)
    );
}

#[test]
fn zunionstore_and_zinterstore() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.cmd(&["ZADD", "z1", "1", "a", "2", "b", "3", "c"]);
    c.cmd(&["ZADD", "z2", "10", "b", "20", "c", "30", "d"]);
    c.cmd(&["SADD", "s", "c", "d", "e"]);
    let cases: &[(&[&str], i64, Resp)] = &[
        (
            &["ZUNIONSTORE", "d", "2", "z1", "z2"],
            4,
            b(&["a", "1", "b", "12", "c", "23", "d", "30"]),
        ),
        (
            &[
                "ZINTERSTORE",
                "d",
                "2",
                "z1",
                "z2",
                "WEIGHTS",
                "2",
                "0.5",
                "AGGREGATE",
                "MAX",
            ],
            2,
            b(&["b", "5", "c", "10"]),
        ),
        (
            &["ZINTERSTORE", "d", "2", "z1", "z2", "aggregate", "min"],
            2,
            b(&["b", "2", "c", "3"]),
        ),
        // Plain sets count with score 1.
        (
            &["ZUNIONSTORE", "d", "3", "z1", "z2", "s", "AGGREGATE", "MIN"],
            5,
            b(&["a", "1", "c", "1", "d", "1", "e", "1", "b", "2"]),
        ),
        (&["ZINTERSTORE", "d", "2", "z1", "s"], 1, b(&["c", "4"])),
        (
            &["ZUNIONSTORE", "d", "1", "z1", "WEIGHTS", "-1"],
            3,
            b(&["c", "-3", "b", "-2", "a", "-1"]),
        ),
        (
            &["ZUNIONSTORE", "d", "2", "z1", "nokey"],
            3,
            b(&["a", "1", "b", "2", "c", "3"]),
        ),
        // Options may repeat; the last wins.
        (
            &[
                "ZUNIONSTORE",
                "d",
                "2",
                "z1",
                "z2",
                "WEIGHTS",
                "1",
                "2",
                "WEIGHTS",
                "0",
                "1",
            ],
            4,
            b(&["a", "0", "b", "10", "c", "20", "d", "30"]),
        ),
    ];
    for (args, n, want) in cases {
        assert_eq!(c.cmd(args), Resp::Int(*n), "{args:?}");
        assert_eq!(&all(&mut c, "d"), want, "{args:?}");
    }
    // inf + -inf and inf * 0 make 0.
    c.cmd(&["ZADD", "i1", "inf", "x"]);
    c.cmd(&["ZADD", "i2", "-inf", "x"]);
    assert_eq!(c.cmd(&["ZUNIONSTORE", "d", "2", "i1", "i2"]), Resp::Int(1));
    assert_eq!(all(&mut c, "d"), b(&["x", "0"]));
    assert_eq!(
        c.cmd(&["ZINTERSTORE", "d", "1", "i1", "WEIGHTS", "0"]),
        Resp::Int(1)
    );
    assert_eq!(all(&mut c, "d"), b(&["x", "0"]));
    // The destination may be a source, and any type is overwritten.
    assert_eq!(c.cmd(&["ZUNIONSTORE", "z1", "2", "z1", "z1"]), Resp::Int(3));
    assert_eq!(all(&mut c, "z1"), b(&["a", "2", "b", "4", "c", "6"]));
    c.cmd(&["SET", "str", "x"]);
    assert_eq!(c.cmd(&["ZUNIONSTORE", "str", "1", "z2"]), Resp::Int(3));
    assert_eq!(c.cmd(&["TYPE", "str"]), Resp::Simple("zset".into()));
    // An empty result deletes the destination.
    assert_eq!(
        c.cmd(&["ZINTERSTORE", "d", "2", "z1", "nokey"]),
        Resp::Int(0)
    );
    assert!(!exists(&mut c, "d"));
    c.cmd(&["ZADD", "d", "1", "x"]);
    assert_eq!(c.cmd(&["ZUNIONSTORE", "d", "1", "nokey"]), Resp::Int(0));
    assert!(!exists(&mut c, "d"));

    c.cmd(&["SET", "str", "x"]);
    let errors: &[(&[&str], &str)] = &[
        (
            &["ZUNIONSTORE", "d", "0", "z1"],
            "ERR at least 1 input key is needed for 'zunionstore' command",
        ),
        (
            &["ZINTERSTORE", "d", "-1", "z1"],
            "ERR at least 1 input key is needed for 'zinterstore' command",
        ),
        (&["ZUNIONSTORE", "d", "x", "z1"], NOT_INT),
        (&["ZUNIONSTORE", "d", "3", "z1", "z2"], SYNTAX),
        (
            &["ZUNIONSTORE", "d", "2", "z1", "z2", "WEIGHTS", "1"],
            SYNTAX,
        ),
        (
            &["ZUNIONSTORE", "d", "2", "z1", "z2", "WEIGHTS", "1", "x"],
            "ERR weight value is not a float",
        ),
        (
            &["ZUNIONSTORE", "d", "2", "z1", "z2", "AGGREGATE", "foo"],
            SYNTAX,
        ),
        (&["ZUNIONSTORE", "d", "2", "z1", "z2", "AGGREGATE"], SYNTAX),
        (&["ZUNIONSTORE", "d", "2", "z1", "z2", "WITHSCORES"], SYNTAX),
        // The type check comes before the options.
        (&["ZUNIONSTORE", "d", "2", "z1", "str", "foo"], WRONGTYPE),
        (&["ZINTERSTORE", "d", "2", "nokey", "str"], WRONGTYPE),
    ];
    for (args, want) in errors {
        assert_eq!(c.cmd(args), Resp::err(want), "{args:?}");
    }
    assert!(!exists(&mut c, "d"));
}

/// Runs ZSCAN to the end; returns every member → score seen and the number of calls.
fn zscan_all(c: &mut Client, key: &str, opts: &[&str]) -> (HashMap<String, String>, usize) {
    let mut cursor = "0".to_string();
    let (mut seen, mut calls) = (HashMap::new(), 0);
    loop {
        let mut args = vec!["ZSCAN", key, cursor.as_str()];
        args.extend_from_slice(opts);
        let r = c.cmd(&args);
        calls += 1;
        let Resp::Array(parts) = r else {
            panic!("bad ZSCAN reply {r:?}")
        };
        let Resp::Array(items) = &parts[1] else {
            panic!("bad ZSCAN items {parts:?}")
        };
        assert_eq!(items.len() % 2, 0);
        for p in items.chunks(2) {
            seen.insert(p[0].as_str(), p[1].as_str());
        }
        cursor = parts[0].as_str();
        if cursor == "0" {
            return (seen, calls);
        }
        assert!(calls < 100_000, "ZSCAN does not terminate");
    }
}

#[test]
fn zscan() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.cmd(&["ZADD", "z", "1.1", "a1", "2", "a2", "3", "b1"]);
    let (seen, calls) = zscan_all(&mut c, "z", &[]);
    assert_eq!(calls, 1);
    assert_eq!(seen.len(), 3);
    assert_eq!(seen["a1"], "1.1000000000000001");
    assert_eq!(seen["b1"], "3");
    let (seen, _) = zscan_all(&mut c, "z", &["MATCH", "a*", "COUNT", "5"]);
    assert_eq!(seen.len(), 2);
    assert_eq!(
        c.cmd(&["ZSCAN", "nokey", "0"]),
        Resp::Array(vec![Resp::bulk("0"), Resp::Array(vec![])])
    );
    assert_eq!(c.cmd(&["ZSCAN", "z", "x"]), Resp::err("ERR invalid cursor"));
    assert_eq!(c.cmd(&["ZSCAN", "z", "0", "COUNT", "0"]), Resp::err(SYNTAX));
    assert_eq!(
        c.cmd(&["ZSCAN", "z", "0", "COUNT", "x"]),
        Resp::err(NOT_INT)
    );
    assert_eq!(c.cmd(&["ZSCAN", "z", "0", "NOVALUES"]), Resp::err(SYNTAX));
    // Scores stay bulk strings in RESP3.
    c.cmd(&["HELLO", "3"]);
    assert_eq!(
        c.cmd(&["ZSCAN", "z", "0", "MATCH", "b*"]),
        Resp::Array(vec![Resp::bulk("0"), b(&["b1", "3"])])
    );
    // A big sorted set takes several calls and every member comes back.
    let n = 2000;
    let items: Vec<String> = (0..n)
        .flat_map(|i| [i.to_string(), format!("m{i}")])
        .collect();
    let mut args = vec!["ZADD", "big"];
    args.extend(items.iter().map(String::as_str));
    assert_eq!(c.cmd(&args), Resp::Int(n as i64));
    let (seen, calls) = zscan_all(&mut c, "big", &["COUNT", "25"]);
    assert!(calls > 1);
    assert_eq!(seen.len(), n);
    assert!((0..n).all(|i| seen[&format!("m{i}")] == i.to_string()));
}

#[test]
fn resp3_withscores_pairs() {
    let s = Server::start(&[]);
    let mut c = s.client();
    abcde(&mut c, "z");
    c.cmd(&["HELLO", "3"]);
    let pair = |m: &str, s: &str| Resp::Array(vec![Resp::bulk(m), d(s)]);
    let want = Resp::Array(vec![pair("a", "1"), pair("b", "2")]);
    assert_eq!(c.cmd(&["ZRANGE", "z", "0", "1", "WITHSCORES"]), want);
    assert_eq!(
        c.cmd(&["ZRANGEBYSCORE", "z", "-inf", "2", "WITHSCORES"]),
        want
    );
    assert_eq!(
        c.cmd(&["ZREVRANGE", "z", "0", "0", "WITHSCORES"]),
        Resp::Array(vec![pair("e", "5")])
    );
    assert_eq!(c.cmd(&["ZRANGE", "z", "0", "1"]), b(&["a", "b"]));
    assert_eq!(
        c.cmd(&["ZRANGE", "nokey", "0", "1", "WITHSCORES"]),
        Resp::Array(vec![])
    );
}

#[test]
fn arity_and_wrong_type() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let arity: &[&[&str]] = &[
        &["ZADD", "z", "1"],
        &["ZREM", "z"],
        &["ZCARD"],
        &["ZSCORE", "z"],
        &["ZMSCORE", "z"],
        &["ZINCRBY", "z", "1"],
        &["ZRANK", "z"],
        &["ZRANK", "z", "a", "WITHSCORE"],
        &["ZREVRANK", "z"],
        &["ZRANGE", "z", "0"],
        &["ZRANGEBYSCORE", "z", "0"],
        &["ZREVRANGEBYSCORE", "z", "0"],
        &["ZRANGEBYLEX", "z", "-"],
        &["ZREVRANGEBYLEX", "z", "+"],
        &["ZREVRANGE", "z", "0"],
        &["ZCOUNT", "z", "0"],
        &["ZLEXCOUNT", "z", "-"],
        &["ZPOPMIN"],
        &["ZPOPMAX"],
        &["ZREMRANGEBYRANK", "z", "0"],
        &["ZREMRANGEBYSCORE", "z", "0"],
        &["ZREMRANGEBYLEX", "z", "-"],
        &["ZUNIONSTORE", "d", "1"],
        &["ZINTERSTORE", "d", "1"],
        &["ZSCAN", "z"],
    ];
    kvtier_tests::assert_arity_errors(&mut c, arity);
    c.cmd(&["SET", "str", "x"]);
    let wrong: &[&[&str]] = &[
        &["ZADD", "str", "1", "a"],
        &["ZADD", "str", "XX", "1", "a"],
        &["ZREM", "str", "a"],
        &["ZCARD", "str"],
        &["ZSCORE", "str", "a"],
        &["ZMSCORE", "str", "a"],
        &["ZINCRBY", "str", "1", "a"],
        &["ZRANK", "str", "a"],
        &["ZREVRANK", "str", "a"],
        &["ZRANGE", "str", "0", "1"],
        &["ZRANGEBYSCORE", "str", "0", "1"],
        &["ZREVRANGEBYSCORE", "str", "1", "0"],
        &["ZRANGEBYLEX", "str", "-", "+"],
        &["ZREVRANGEBYLEX", "str", "+", "-"],
        &["ZREVRANGE", "str", "0", "1"],
        &["ZCOUNT", "str", "0", "1"],
        &["ZLEXCOUNT", "str", "-", "+"],
        &["ZPOPMIN", "str"],
        &["ZPOPMAX", "str", "0"],
        &["ZREMRANGEBYRANK", "str", "0", "1"],
        &["ZREMRANGEBYSCORE", "str", "0", "1"],
        &["ZREMRANGEBYLEX", "str", "-", "+"],
        &["ZUNIONSTORE", "d", "1", "str"],
        &["ZINTERSTORE", "d", "1", "str"],
        &["ZSCAN", "str", "0"],
    ];
    for args in wrong {
        assert_eq!(c.cmd(args), Resp::err(WRONGTYPE), "{args:?}");
    }
    assert_eq!(c.cmd(&["GET", "str"]), Resp::bulk("x"));
    // Other collection types are wrong too (a set is fine only as a ZUNIONSTORE source).
    c.cmd(&["SADD", "set", "a"]);
    assert_eq!(c.cmd(&["ZADD", "set", "1", "a"]), Resp::err(WRONGTYPE));
    assert_eq!(c.cmd(&["SADD", "z", "a"]), Resp::Int(1));
    c.cmd(&["ZADD", "zs", "1", "a"]);
    assert_eq!(c.cmd(&["SCARD", "zs"]), Resp::err(WRONGTYPE));
}

#[test]
fn zsets_survive_restart_and_eviction() {
    let mut s = Server::start(&["--maxmemory", "4mb", "--cache-flush-delay", "0"]);
    let tmp = s.take_tmp();
    let dir = s.dir.clone();
    let mut c = s.client();
    c.cmd(&["ZADD", "keep", "1.5", "x", "-inf", "lo", "2", ""]);
    let big = "v".repeat(200_000);
    for i in 0..30 {
        c.cmd(&["ZADD", &format!("fill:{i}"), &i.to_string(), &big]);
    }
    for i in 0..30 {
        assert_eq!(c.cmd(&["ZCARD", &format!("fill:{i}")]), Resp::Int(1));
    }
    // Cold keys are loaded back for reads, writes and ZUNIONSTORE.
    assert_eq!(all(&mut c, "keep"), b(&["lo", "-inf", "x", "1.5", "", "2"]));
    assert_eq!(c.cmd(&["ZSCORE", "fill:7", &big]), Resp::bulk("7"));
    assert_eq!(
        c.cmd(&["ZINCRBY", "fill:8", "0.5", &big]),
        Resp::bulk("8.5")
    );
    assert_eq!(
        c.cmd(&["ZUNIONSTORE", "u", "2", "fill:1", "fill:2"]),
        Resp::Int(1)
    );
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
    assert_eq!(all(&mut c, "keep"), b(&["lo", "-inf", "x", "1.5", "", "2"]));
    assert_eq!(c.cmd(&["ZSCORE", "fill:8", &big]), Resp::bulk("8.5"));
    assert_eq!(c.cmd(&["ZSCORE", "u", &big]), Resp::bulk("3"));
    assert_eq!(c.cmd(&["ZCARD", "fill:29"]), Resp::Int(1));
    drop(tmp);
}
