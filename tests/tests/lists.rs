//! List commands against the real server, checked against Redis 7.0's replies.

use kvtier_tests::{assert_err, Client, Resp, Server};

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const NOT_INT: &str = "ERR value is not an integer or out of range";

fn b(items: &[&str]) -> Resp {
    Resp::bulks(items)
}

fn ints(items: &[i64]) -> Resp {
    Resp::Array(items.iter().map(|&n| Resp::Int(n)).collect())
}

fn range(c: &mut Client, key: &str) -> Resp {
    c.cmd(&["LRANGE", key, "0", "-1"])
}

fn exists(c: &mut Client, key: &str) -> bool {
    c.cmd(&["EXISTS", key]) == Resp::Int(1)
}

#[test]
fn push_and_len() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(c.cmd(&["LPUSH", "l", "a", "b", "c"]), Resp::Int(3));
    assert_eq!(range(&mut c, "l"), b(&["c", "b", "a"]));
    assert_eq!(c.cmd(&["RPUSH", "l", "d", "e"]), Resp::Int(5));
    assert_eq!(range(&mut c, "l"), b(&["c", "b", "a", "d", "e"]));
    assert_eq!(c.cmd(&["LPUSHX", "l", "x", "y"]), Resp::Int(7));
    assert_eq!(c.cmd(&["RPUSHX", "l", "z"]), Resp::Int(8));
    assert_eq!(
        range(&mut c, "l"),
        b(&["y", "x", "c", "b", "a", "d", "e", "z"])
    );
    assert_eq!(c.cmd(&["LLEN", "l"]), Resp::Int(8));

    // The X variants never create a key.
    assert_eq!(c.cmd(&["LPUSHX", "nokey", "a"]), Resp::Int(0));
    assert_eq!(c.cmd(&["RPUSHX", "nokey", "a", "b"]), Resp::Int(0));
    assert!(!exists(&mut c, "nokey"));
    assert_eq!(c.cmd(&["LLEN", "nokey"]), Resp::Int(0));

    // Binary-safe and empty elements.
    assert_eq!(
        c.cmd_bytes(&[b"RPUSH", b"bin", b"", b"\x00\xff\r\n"]),
        Resp::Int(2)
    );
    assert_eq!(
        range(&mut c, "bin"),
        Resp::Array(vec![
            Resp::Bulk(vec![]),
            Resp::Bulk(b"\x00\xff\r\n".to_vec())
        ])
    );
    assert_eq!(c.cmd(&["TYPE", "bin"]), Resp::Simple("list".into()));
}

#[test]
fn pop_with_and_without_count() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(c.cmd(&["LPOP", "nokey"]), Resp::Nil);
    assert_eq!(c.cmd(&["RPOP", "nokey"]), Resp::Nil);
    // Redis 7.0: any COUNT on a missing key is a null array, even 0.
    assert_eq!(c.cmd(&["LPOP", "nokey", "0"]), Resp::NilArray);
    assert_eq!(c.cmd(&["LPOP", "nokey", "2"]), Resp::NilArray);
    assert_eq!(c.cmd(&["RPOP", "nokey", "2"]), Resp::NilArray);

    c.cmd(&["RPUSH", "l", "a", "b", "c", "d", "e"]);
    assert_eq!(c.cmd(&["LPOP", "l"]), Resp::bulk("a"));
    assert_eq!(c.cmd(&["RPOP", "l"]), Resp::bulk("e"));
    assert_eq!(c.cmd(&["LPOP", "l", "0"]), b(&[]));
    assert_eq!(c.cmd(&["LPOP", "l", "1"]), b(&["b"]));
    assert_eq!(c.cmd(&["RPOP", "l", "1"]), b(&["d"]));
    c.cmd(&["RPUSH", "l", "x", "y"]);
    assert_eq!(c.cmd(&["RPOP", "l", "2"]), b(&["y", "x"]));
    // A count past the length pops everything and deletes the key.
    assert_eq!(c.cmd(&["LPOP", "l", "10"]), b(&["c"]));
    assert!(!exists(&mut c, "l"));

    c.cmd(&["RPUSH", "one", "a"]);
    assert_eq!(c.cmd(&["RPOP", "one"]), Resp::bulk("a"));
    assert!(!exists(&mut c, "one"));

    for bad in ["-1", "x", "1.5", ""] {
        assert_eq!(
            c.cmd(&["LPOP", "l", bad]),
            Resp::err("ERR value is out of range, must be positive")
        );
        assert_eq!(
            c.cmd(&["RPOP", "nokey", bad]),
            Resp::err("ERR value is out of range, must be positive")
        );
    }
    assert_eq!(
        c.cmd(&["LPOP", "l", "1", "2"]),
        Resp::err("ERR wrong number of arguments for 'lpop' command")
    );
    assert_eq!(
        c.cmd(&["RPOP", "l", "1", "2"]),
        Resp::err("ERR wrong number of arguments for 'rpop' command")
    );

    // RESP3 nulls.
    c.cmd(&["HELLO", "3"]);
    assert_eq!(c.cmd(&["LPOP", "nokey"]), Resp::Nil);
    assert_eq!(c.cmd(&["LPOP", "nokey", "2"]), Resp::Nil);
    c.cmd(&["RPUSH", "l", "a"]);
    assert_eq!(c.cmd(&["RPOP", "l", "0"]), b(&[]));
    assert_eq!(c.cmd(&["RPOP", "l", "3"]), b(&["a"]));
}

#[test]
fn range_index_set() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.cmd(&["RPUSH", "l", "a", "b", "c", "d", "e"]);
    let all: &[&str] = &["a", "b", "c", "d", "e"];
    let cases: &[(&str, &str, &[&str])] = &[
        ("0", "-1", all),
        ("-100", "100", all),
        ("1", "2", &["b", "c"]),
        ("-2", "-1", &["d", "e"]),
        ("3", "1", &[]),
        ("5", "10", &[]),
        ("4", "4", &["e"]),
        ("-100", "-100", &[]),
        ("-100", "0", &["a"]),
        ("0", "-6", &[]),
        ("-9223372036854775808", "9223372036854775807", all),
    ];
    for (start, end, want) in cases {
        assert_eq!(
            c.cmd(&["LRANGE", "l", start, end]),
            b(want),
            "{start} {end}"
        );
    }
    assert_eq!(c.cmd(&["LRANGE", "nokey", "0", "-1"]), b(&[]));
    assert_eq!(c.cmd(&["LRANGE", "l", "x", "1"]), Resp::err(NOT_INT));
    assert_eq!(c.cmd(&["LRANGE", "l", "0", "1.0"]), Resp::err(NOT_INT));
    assert_eq!(c.cmd(&["LRANGE", "nokey", "0", "x"]), Resp::err(NOT_INT));

    assert_eq!(c.cmd(&["LINDEX", "l", "0"]), Resp::bulk("a"));
    assert_eq!(c.cmd(&["LINDEX", "l", "4"]), Resp::bulk("e"));
    assert_eq!(c.cmd(&["LINDEX", "l", "-1"]), Resp::bulk("e"));
    assert_eq!(c.cmd(&["LINDEX", "l", "-5"]), Resp::bulk("a"));
    assert_eq!(c.cmd(&["LINDEX", "l", "5"]), Resp::Nil);
    assert_eq!(c.cmd(&["LINDEX", "l", "-6"]), Resp::Nil);
    assert_eq!(c.cmd(&["LINDEX", "l", "-9223372036854775808"]), Resp::Nil);
    assert_eq!(c.cmd(&["LINDEX", "l", "x"]), Resp::err(NOT_INT));
    assert_eq!(c.cmd(&["LINDEX", "nokey", "0"]), Resp::Nil);
    // Redis looks the key up before parsing the index.
    assert_eq!(c.cmd(&["LINDEX", "nokey", "x"]), Resp::Nil);

    assert_eq!(c.cmd(&["LSET", "l", "0", "A"]), Resp::ok());
    assert_eq!(c.cmd(&["LSET", "l", "-1", "E"]), Resp::ok());
    assert_eq!(c.cmd(&["LSET", "l", "2", ""]), Resp::ok());
    assert_eq!(range(&mut c, "l"), b(&["A", "b", "", "d", "E"]));
    assert_eq!(
        c.cmd(&["LSET", "l", "5", "x"]),
        Resp::err("ERR index out of range")
    );
    assert_eq!(
        c.cmd(&["LSET", "l", "-6", "x"]),
        Resp::err("ERR index out of range")
    );
    assert_eq!(c.cmd(&["LSET", "l", "x", "y"]), Resp::err(NOT_INT));
    assert_eq!(
        c.cmd(&["LSET", "nokey", "0", "x"]),
        Resp::err("ERR no such key")
    );
    assert_eq!(
        c.cmd(&["LSET", "nokey", "x", "y"]),
        Resp::err("ERR no such key")
    );
    assert!(!exists(&mut c, "nokey"));

    c.cmd(&["HELLO", "3"]);
    assert_eq!(c.cmd(&["LINDEX", "l", "9"]), Resp::Nil);
    assert_eq!(c.cmd(&["LRANGE", "nokey", "0", "-1"]), b(&[]));
}

#[test]
fn insert_rem_trim() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.cmd(&["RPUSH", "l", "a", "b", "c"]);
    assert_eq!(c.cmd(&["LINSERT", "l", "BEFORE", "b", "X"]), Resp::Int(4));
    assert_eq!(c.cmd(&["LINSERT", "l", "after", "c", "Y"]), Resp::Int(5));
    assert_eq!(c.cmd(&["LINSERT", "l", "before", "a", "0"]), Resp::Int(6));
    assert_eq!(range(&mut c, "l"), b(&["0", "a", "X", "b", "c", "Y"]));
    assert_eq!(c.cmd(&["LINSERT", "l", "before", "zz", "Q"]), Resp::Int(-1));
    assert_eq!(
        c.cmd(&["LINSERT", "nokey", "before", "a", "Q"]),
        Resp::Int(0)
    );
    assert!(!exists(&mut c, "nokey"));
    let syntax = Resp::err("ERR syntax error");
    assert_eq!(c.cmd(&["LINSERT", "l", "middle", "a", "Q"]), syntax);
    assert_eq!(c.cmd(&["LINSERT", "nokey", "middle", "a", "Q"]), syntax);
    // The first occurrence of the pivot.
    c.cmd(&["RPUSH", "dup", "p", "x", "p"]);
    assert_eq!(c.cmd(&["LINSERT", "dup", "AFTER", "p", "n"]), Resp::Int(4));
    assert_eq!(range(&mut c, "dup"), b(&["p", "n", "x", "p"]));

    c.cmd(&["DEL", "l"]);
    c.cmd(&["RPUSH", "l", "a", "b", "a", "c", "a", "b", "a"]);
    assert_eq!(c.cmd(&["LREM", "l", "1", "a"]), Resp::Int(1));
    assert_eq!(range(&mut c, "l"), b(&["b", "a", "c", "a", "b", "a"]));
    assert_eq!(c.cmd(&["LREM", "l", "-2", "a"]), Resp::Int(2));
    assert_eq!(range(&mut c, "l"), b(&["b", "a", "c", "b"]));
    assert_eq!(c.cmd(&["LREM", "l", "0", "b"]), Resp::Int(2));
    assert_eq!(range(&mut c, "l"), b(&["a", "c"]));
    assert_eq!(c.cmd(&["LREM", "l", "5", "zz"]), Resp::Int(0));
    assert_eq!(
        c.cmd(&["LREM", "l", "-9223372036854775808", "a"]),
        Resp::Int(1)
    );
    assert_eq!(c.cmd(&["LREM", "l", "0", "c"]), Resp::Int(1));
    assert!(!exists(&mut c, "l"));
    assert_eq!(c.cmd(&["LREM", "nokey", "0", "a"]), Resp::Int(0));
    assert_eq!(c.cmd(&["LREM", "nokey", "x", "a"]), Resp::err(NOT_INT));

    c.cmd(&["RPUSH", "t", "a", "b", "c", "d", "e"]);
    assert_eq!(c.cmd(&["LTRIM", "t", "1", "-2"]), Resp::ok());
    assert_eq!(range(&mut c, "t"), b(&["b", "c", "d"]));
    assert_eq!(c.cmd(&["LTRIM", "t", "-100", "100"]), Resp::ok());
    assert_eq!(range(&mut c, "t"), b(&["b", "c", "d"]));
    assert_eq!(c.cmd(&["LTRIM", "t", "0", "0"]), Resp::ok());
    assert_eq!(range(&mut c, "t"), b(&["b"]));
    assert_eq!(c.cmd(&["LTRIM", "t", "x", "0"]), Resp::err(NOT_INT));
    assert_eq!(c.cmd(&["LTRIM", "t", "1", "0"]), Resp::ok());
    assert!(!exists(&mut c, "t"));
    c.cmd(&["RPUSH", "t", "a", "b"]);
    assert_eq!(c.cmd(&["LTRIM", "t", "5", "10"]), Resp::ok());
    assert!(!exists(&mut c, "t"));
    assert_eq!(c.cmd(&["LTRIM", "nokey", "0", "1"]), Resp::ok());
    assert!(!exists(&mut c, "nokey"));
}

#[test]
fn move_between_lists() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.cmd(&["RPUSH", "src", "a", "b", "c"]);
    assert_eq!(c.cmd(&["RPOPLPUSH", "src", "dst"]), Resp::bulk("c"));
    assert_eq!(range(&mut c, "dst"), b(&["c"]));
    assert_eq!(
        c.cmd(&["LMOVE", "src", "dst", "LEFT", "RIGHT"]),
        Resp::bulk("a")
    );
    assert_eq!(range(&mut c, "dst"), b(&["c", "a"]));
    assert_eq!(
        c.cmd(&["LMOVE", "dst", "src", "right", "left"]),
        Resp::bulk("a")
    );
    assert_eq!(range(&mut c, "src"), b(&["a", "b"]));
    assert_eq!(
        c.cmd(&["LMOVE", "src", "dst", "right", "right"]),
        Resp::bulk("b")
    );
    assert_eq!(
        c.cmd(&["LMOVE", "src", "dst", "left", "left"]),
        Resp::bulk("a")
    );
    assert!(!exists(&mut c, "src"));
    assert_eq!(range(&mut c, "dst"), b(&["a", "c", "b"]));

    // Rotation on one key, including a one-element list that must survive.
    assert_eq!(c.cmd(&["RPOPLPUSH", "dst", "dst"]), Resp::bulk("b"));
    assert_eq!(range(&mut c, "dst"), b(&["b", "a", "c"]));
    assert_eq!(
        c.cmd(&["LMOVE", "dst", "dst", "left", "right"]),
        Resp::bulk("b")
    );
    assert_eq!(range(&mut c, "dst"), b(&["a", "c", "b"]));
    c.cmd(&["RPUSH", "one", "x"]);
    assert_eq!(
        c.cmd(&["LMOVE", "one", "one", "left", "right"]),
        Resp::bulk("x")
    );
    assert_eq!(range(&mut c, "one"), b(&["x"]));

    assert_eq!(c.cmd(&["RPOPLPUSH", "nokey", "dst"]), Resp::Nil);
    assert_eq!(c.cmd(&["LMOVE", "nokey", "dst", "left", "left"]), Resp::Nil);
    let syntax = Resp::err("ERR syntax error");
    assert_eq!(c.cmd(&["LMOVE", "dst", "x", "left", "middle"]), syntax);
    assert_eq!(c.cmd(&["LMOVE", "nokey", "x", "up", "left"]), syntax);

    // Wrong type at the destination leaves the source untouched.
    c.cmd(&["SET", "str", "v"]);
    assert_eq!(c.cmd(&["RPOPLPUSH", "dst", "str"]), Resp::err(WRONGTYPE));
    assert_eq!(
        c.cmd(&["LMOVE", "dst", "str", "left", "left"]),
        Resp::err(WRONGTYPE)
    );
    assert_eq!(range(&mut c, "dst"), b(&["a", "c", "b"]));
    assert_eq!(c.cmd(&["RPOPLPUSH", "str", "dst"]), Resp::err(WRONGTYPE));
    // A missing source wins over a wrong-type destination.
    assert_eq!(c.cmd(&["RPOPLPUSH", "nokey", "str"]), Resp::Nil);

    c.cmd(&["HELLO", "3"]);
    assert_eq!(c.cmd(&["LMOVE", "nokey", "dst", "left", "left"]), Resp::Nil);
}

#[test]
fn lpos_options() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.cmd(&["RPUSH", "l", "a", "b", "c", "1", "2", "3", "c", "c"]);
    let mut lpos = |args: &[&str]| {
        let mut full = vec!["LPOS", "l"];
        full.extend_from_slice(args);
        c.cmd(&full)
    };
    assert_eq!(lpos(&["c"]), Resp::Int(2));
    assert_eq!(lpos(&["a"]), Resp::Int(0));
    assert_eq!(lpos(&["c", "RANK", "2"]), Resp::Int(6));
    assert_eq!(lpos(&["c", "rank", "-1"]), Resp::Int(7));
    assert_eq!(lpos(&["c", "RANK", "-3"]), Resp::Int(2));
    assert_eq!(lpos(&["c", "RANK", "-4"]), Resp::Nil);
    assert_eq!(lpos(&["c", "RANK", "9223372036854775807"]), Resp::Nil);
    assert_eq!(lpos(&["c", "COUNT", "0"]), ints(&[2, 6, 7]));
    assert_eq!(lpos(&["c", "COUNT", "2"]), ints(&[2, 6]));
    assert_eq!(lpos(&["c", "RANK", "2", "COUNT", "0"]), ints(&[6, 7]));
    assert_eq!(lpos(&["c", "RANK", "-1", "COUNT", "2"]), ints(&[7, 6]));
    assert_eq!(lpos(&["c", "MAXLEN", "3"]), Resp::Int(2));
    assert_eq!(lpos(&["c", "MAXLEN", "2"]), Resp::Nil);
    assert_eq!(lpos(&["c", "COUNT", "0", "MAXLEN", "7"]), ints(&[2, 6]));
    assert_eq!(lpos(&["c", "RANK", "-1", "MAXLEN", "1"]), Resp::Int(7));
    assert_eq!(lpos(&["c", "RANK", "-1", "MAXLEN", "0"]), Resp::Int(7));
    // The last of repeated options wins.
    assert_eq!(lpos(&["c", "COUNT", "1", "COUNT", "2"]), ints(&[2, 6]));
    assert_eq!(lpos(&["zz"]), Resp::Nil);
    assert_eq!(lpos(&["zz", "COUNT", "0"]), ints(&[]));

    assert_eq!(
        lpos(&["c", "RANK", "0"]),
        Resp::err(
            "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... \
             or use negative to start from the end of the list"
        )
    );
    assert_eq!(lpos(&["c", "RANK", "x"]), Resp::err(NOT_INT));
    let count_neg = Resp::err("ERR COUNT can't be negative");
    assert_eq!(lpos(&["c", "COUNT", "-1"]), count_neg);
    assert_eq!(lpos(&["c", "COUNT", "x"]), count_neg);
    let maxlen_neg = Resp::err("ERR MAXLEN can't be negative");
    assert_eq!(lpos(&["c", "MAXLEN", "-1"]), maxlen_neg);
    assert_eq!(lpos(&["c", "MAXLEN", "x"]), maxlen_neg);
    assert_eq!(lpos(&["c", "FOO", "1"]), Resp::err("ERR syntax error"));
    assert_eq!(lpos(&["c", "RANK"]), Resp::err("ERR syntax error"));

    assert_eq!(c.cmd(&["LPOS", "nokey", "zz"]), Resp::Nil);
    assert_eq!(c.cmd(&["LPOS", "nokey", "zz", "COUNT", "1"]), ints(&[]));
    // Options are checked before the key.
    assert_err(
        &c.cmd(&["LPOS", "nokey", "c", "RANK", "0"]),
        "ERR RANK can't be zero",
    );

    c.cmd(&["HELLO", "3"]);
    assert_eq!(c.cmd(&["LPOS", "l", "zz"]), Resp::Nil);
    assert_eq!(c.cmd(&["LPOS", "nokey", "zz", "COUNT", "1"]), ints(&[]));
}

#[test]
fn wrong_type_and_arity() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.cmd(&["SET", "str", "v"]);
    let wrongtype: &[&[&str]] = &[
        &["LPUSH", "str", "a"],
        &["RPUSH", "str", "a"],
        &["LPUSHX", "str", "a"],
        &["RPUSHX", "str", "a"],
        &["LPOP", "str"],
        &["RPOP", "str"],
        &["LPOP", "str", "0"],
        &["RPOP", "str", "2"],
        &["LLEN", "str"],
        &["LRANGE", "str", "0", "-1"],
        &["LINDEX", "str", "0"],
        &["LINDEX", "str", "x"],
        &["LSET", "str", "0", "a"],
        &["LSET", "str", "x", "a"],
        &["LINSERT", "str", "before", "a", "b"],
        &["LREM", "str", "0", "a"],
        &["LTRIM", "str", "0", "1"],
        &["RPOPLPUSH", "str", "x"],
        &["LMOVE", "str", "x", "left", "left"],
        &["LPOS", "str", "a"],
        &["LPOS", "str", "a", "COUNT", "1"],
    ];
    for args in wrongtype {
        assert_eq!(c.cmd(args), Resp::err(WRONGTYPE), "{args:?}");
    }
    assert_eq!(c.cmd(&["GET", "str"]), Resp::bulk("v"));

    let arity: &[&[&str]] = &[
        &["LPUSH", "k"],
        &["RPUSH", "k"],
        &["LPUSHX", "k"],
        &["RPUSHX", "k"],
        &["LPOP"],
        &["RPOP"],
        &["LLEN"],
        &["LLEN", "k", "x"],
        &["LRANGE", "k", "0"],
        &["LRANGE", "k", "0", "1", "2"],
        &["LINDEX", "k"],
        &["LSET", "k", "0"],
        &["LINSERT", "k", "before", "a"],
        &["LREM", "k", "0"],
        &["LTRIM", "k", "0"],
        &["RPOPLPUSH", "k"],
        &["RPOPLPUSH", "k", "a", "b"],
        &["LMOVE", "k", "a", "left"],
        &["LPOS", "k"],
    ];
    kvtier_tests::assert_arity_errors(&mut c, arity);
    assert!(!exists(&mut c, "k"));
}

#[test]
fn lists_survive_restart() {
    let mut s = Server::start(&["--cache-flush-delay", "60"]);
    let tmp = s.take_tmp();
    let dir = s.dir.clone();
    let mut c = s.client();
    c.cmd_bytes(&[b"RPUSH", b"l", b"a", b"", b"\x00\r\n", b"d"]);
    c.cmd(&["LSET", "l", "0", "A"]);
    c.cmd(&["RPUSH", "gone", "x"]);
    assert_eq!(c.cmd(&["SAVE"]), Resp::ok());
    // Emptied after a save: the deletion must reach the disk too.
    c.cmd(&["RPOPLPUSH", "gone", "moved"]);
    drop(c);
    assert!(s.shutdown(), "SHUTDOWN must exit cleanly");
    let s2 = Server::start_in(&dir, &[]);
    let mut c = s2.client();
    assert_eq!(
        range(&mut c, "l"),
        Resp::Array(vec![
            Resp::bulk("A"),
            Resp::bulk(""),
            Resp::Bulk(b"\x00\r\n".to_vec()),
            Resp::bulk("d"),
        ])
    );
    assert!(!exists(&mut c, "gone"));
    assert_eq!(range(&mut c, "moved"), b(&["x"]));
    drop(tmp);
}
