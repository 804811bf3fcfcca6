//! Strings, generic key commands, expiry, transactions, config and INFO.

use kvtier_tests::{assert_err, Resp, Server};
use std::time::Duration;

#[test]
fn strings() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(c.cmd(&["SET", "k", "v"]), Resp::ok());
    assert_eq!(c.cmd(&["SET", "k", "v2", "NX"]), Resp::Nil);
    assert_eq!(c.cmd(&["SET", "k", "v2", "XX", "GET"]), Resp::bulk("v"));
    assert_eq!(
        c.cmd(&["SET", "k", "v", "NX", "XX"]),
        Resp::err("ERR syntax error")
    );
    assert_eq!(
        c.cmd(&["SET", "k", "v", "EX", "0"]),
        Resp::err("ERR invalid expire time in 'set' command")
    );
    assert_eq!(
        c.cmd(&["SET", "k", "v", "EX", "x"]),
        Resp::err("ERR value is not an integer or out of range")
    );
    assert_eq!(c.cmd(&["GETSET", "k", "v3"]), Resp::bulk("v2"));
    assert_eq!(c.cmd(&["APPEND", "k", "xyz"]), Resp::Int(5));
    assert_eq!(c.cmd(&["STRLEN", "k"]), Resp::Int(5));
    assert_eq!(c.cmd(&["GETRANGE", "k", "1", "-2"]), Resp::bulk("3xy"));
    assert_eq!(c.cmd(&["SETRANGE", "k", "7", "!"]), Resp::Int(8));
    assert_eq!(c.cmd(&["GET", "k"]), Resp::Bulk(b"v3xyz\0\0!".to_vec()));
    assert_eq!(c.cmd(&["MSET", "a", "1", "b", "2"]), Resp::ok());
    assert_eq!(
        c.cmd(&["MGET", "a", "b", "nope"]),
        Resp::Array(vec![Resp::bulk("1"), Resp::bulk("2"), Resp::Nil])
    );
    assert_eq!(c.cmd(&["MSETNX", "a", "1", "c", "3"]), Resp::Int(0));
    assert_eq!(
        c.cmd(&["MSET", "a"]),
        Resp::err("ERR wrong number of arguments for 'mset' command")
    );
    assert_eq!(c.cmd(&["INCR", "a"]), Resp::Int(2));
    assert_eq!(c.cmd(&["INCRBY", "a", "-5"]), Resp::Int(-3));
    assert_eq!(c.cmd(&["DECRBY", "a", "2"]), Resp::Int(-5));
    assert_eq!(
        c.cmd(&["INCR", "k"]),
        Resp::err("ERR value is not an integer or out of range")
    );
    c.cmd(&["SET", "max", "9223372036854775807"]);
    assert_eq!(
        c.cmd(&["INCR", "max"]),
        Resp::err("ERR increment or decrement would overflow")
    );
    assert_eq!(c.cmd(&["INCRBYFLOAT", "f", "10.5"]), Resp::bulk("10.5"));
    assert_eq!(c.cmd(&["INCRBYFLOAT", "f", "0.1"]), Resp::bulk("10.6"));
    assert_eq!(
        c.cmd(&["INCRBYFLOAT", "f", "abc"]),
        Resp::err("ERR value is not a valid float")
    );
    assert_eq!(c.cmd(&["GETDEL", "f"]), Resp::bulk("10.6"));
    assert_eq!(c.cmd(&["GET", "f"]), Resp::Nil);
    c.cmd(&["RPUSH", "list", "x"]);
    assert_eq!(
        c.cmd(&["GET", "list"]),
        Resp::err("WRONGTYPE Operation against a key holding the wrong kind of value")
    );
    assert_eq!(c.cmd(&["SETNX", "new", "1"]), Resp::Int(1));
    assert_eq!(c.cmd(&["SETNX", "new", "2"]), Resp::Int(0));
}

#[test]
fn keys_and_expiry() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.cmd(&["MSET", "a", "1", "b", "2", "c", "3"]);
    assert_eq!(c.cmd(&["EXISTS", "a", "b", "zz", "a"]), Resp::Int(3));
    assert_eq!(c.cmd(&["DEL", "a", "zz"]), Resp::Int(1));
    assert_eq!(c.cmd(&["TYPE", "b"]), Resp::Simple("string".into()));
    assert_eq!(c.cmd(&["TYPE", "a"]), Resp::Simple("none".into()));
    assert_eq!(c.cmd(&["RENAME", "b", "b2"]), Resp::ok());
    assert_eq!(
        c.cmd(&["RENAME", "nope", "x"]),
        Resp::err("ERR no such key")
    );
    assert_eq!(c.cmd(&["RENAMENX", "b2", "c"]), Resp::Int(0));
    assert_eq!(
        c.cmd(&["KEYS", "*"]).sorted(),
        vec![Resp::bulk("b2"), Resp::bulk("c")]
    );
    assert_eq!(c.cmd(&["KEYS", "b?"]), Resp::bulks(&["b2"]));
    assert_eq!(c.cmd(&["DBSIZE"]), Resp::Int(2));
    assert_eq!(c.cmd(&["TTL", "c"]), Resp::Int(-1));
    assert_eq!(c.cmd(&["TTL", "nope"]), Resp::Int(-2));
    assert_eq!(c.cmd(&["EXPIRE", "c", "100"]), Resp::Int(1));
    assert_eq!(c.cmd(&["TTL", "c"]), Resp::Int(100));
    assert_eq!(c.cmd(&["EXPIRE", "c", "50", "GT"]), Resp::Int(0));
    assert_eq!(c.cmd(&["PERSIST", "c"]), Resp::Int(1));
    assert_eq!(c.cmd(&["PEXPIRE", "c", "150"]), Resp::Int(1));
    assert!(c.cmd(&["PTTL", "c"]).as_int() > 0);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(c.cmd(&["GET", "c"]), Resp::Nil);
    assert_eq!(c.cmd(&["EXISTS", "c"]), Resp::Int(0));
    c.cmd(&["SET", "e", "1", "PX", "100"]);
    std::thread::sleep(Duration::from_millis(400));
    // Active expiry removes it without anyone reading it.
    assert_eq!(c.cmd(&["DBSIZE"]), Resp::Int(1));
    assert_eq!(c.cmd(&["EXPIRE", "b2", "-1"]), Resp::Int(1));
    assert_eq!(c.cmd(&["EXISTS", "b2"]), Resp::Int(0));
    assert_eq!(
        c.cmd(&["EXPIRE", "x", "1", "NX", "XX"]),
        Resp::err("ERR NX and XX, GT or LT options at the same time are not compatible")
    );
}

#[test]
fn select_move_copy_scan_flush() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.cmd(&["SET", "k", "v"]);
    assert_eq!(c.cmd(&["MOVE", "k", "1"]), Resp::Int(1));
    assert_eq!(c.cmd(&["GET", "k"]), Resp::Nil);
    assert_eq!(c.cmd(&["SELECT", "1"]), Resp::ok());
    assert_eq!(c.cmd(&["GET", "k"]), Resp::bulk("v"));
    assert_eq!(c.cmd(&["COPY", "k", "k2"]), Resp::Int(1));
    assert_eq!(c.cmd(&["COPY", "k", "k", "DB", "0"]), Resp::Int(1));
    assert_eq!(
        c.cmd(&["SELECT", "16"]),
        Resp::err("ERR DB index is out of range")
    );
    assert_eq!(c.cmd(&["SELECT", "0"]), Resp::ok());
    assert_eq!(c.cmd(&["GET", "k"]), Resp::bulk("v"));
    for i in 0..200 {
        c.cmd(&["SET", &format!("key:{i}"), "x"]);
    }
    let mut cursor = "0".to_string();
    let mut seen = std::collections::HashSet::new();
    loop {
        let Resp::Array(r) = c.cmd(&["SCAN", &cursor, "COUNT", "17", "MATCH", "key:*"]) else {
            panic!("scan reply")
        };
        cursor = r[0].as_str();
        let Resp::Array(keys) = &r[1] else {
            panic!("keys")
        };
        for k in keys {
            seen.insert(k.as_str());
        }
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 200);
    assert_eq!(c.cmd(&["FLUSHDB"]), Resp::ok());
    assert_eq!(c.cmd(&["DBSIZE"]), Resp::Int(0));
    c.cmd(&["SELECT", "1"]);
    assert_eq!(c.cmd(&["DBSIZE"]), Resp::Int(2));
    assert_eq!(c.cmd(&["FLUSHALL"]), Resp::ok());
    assert_eq!(c.cmd(&["DBSIZE"]), Resp::Int(0));
    assert_eq!(c.cmd(&["RANDOMKEY"]), Resp::Nil);
}

#[test]
fn transactions() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(c.cmd(&["MULTI"]), Resp::ok());
    assert_eq!(c.cmd(&["SET", "a", "1"]), Resp::Simple("QUEUED".into()));
    assert_eq!(c.cmd(&["INCR", "a"]), Resp::Simple("QUEUED".into()));
    assert_eq!(
        c.cmd(&["EXEC"]),
        Resp::Array(vec![Resp::ok(), Resp::Int(2)])
    );
    assert_eq!(c.cmd(&["EXEC"]), Resp::err("ERR EXEC without MULTI"));
    c.cmd(&["MULTI"]);
    assert_eq!(
        c.cmd(&["GET"]),
        Resp::err("ERR wrong number of arguments for 'get' command")
    );
    assert_eq!(
        c.cmd(&["EXEC"]),
        Resp::err("EXECABORT Transaction discarded because of previous errors.")
    );
    // Runtime errors do not abort the others.
    c.cmd(&["MULTI"]);
    c.cmd(&["LPUSH", "a", "x"]);
    c.cmd(&["INCR", "a"]);
    let Resp::Array(r) = c.cmd(&["EXEC"]) else {
        panic!("exec")
    };
    assert_err(&r[0], "WRONGTYPE");
    assert_eq!(r[1], Resp::Int(3));
    // WATCH: a change by another client aborts EXEC.
    let mut other = s.client();
    assert_eq!(c.cmd(&["WATCH", "a"]), Resp::ok());
    other.cmd(&["SET", "a", "100"]);
    c.cmd(&["MULTI"]);
    c.cmd(&["INCR", "a"]);
    assert_eq!(c.cmd(&["EXEC"]), Resp::NilArray);
    assert_eq!(c.cmd(&["GET", "a"]), Resp::bulk("100"));
    c.cmd(&["WATCH", "a"]);
    c.cmd(&["MULTI"]);
    assert_eq!(
        c.cmd(&["WATCH", "a"]),
        Resp::err("ERR WATCH inside MULTI is not allowed")
    );
    c.cmd(&["INCR", "a"]);
    assert_eq!(c.cmd(&["EXEC"]), Resp::Array(vec![Resp::Int(101)]));
    assert_eq!(c.cmd(&["DISCARD"]), Resp::err("ERR DISCARD without MULTI"));
    c.cmd(&["MULTI"]);
    assert_eq!(
        c.cmd(&["MULTI"]),
        Resp::err("ERR MULTI calls can not be nested")
    );
    assert_eq!(c.cmd(&["DISCARD"]), Resp::ok());
}

#[test]
fn config_info_and_server_commands() {
    let s = Server::start(&["--maxmemory", "100mb"]);
    let mut c = s.client();
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "maxmemory"]),
        Resp::bulks(&["maxmemory", &(100u64 << 20).to_string()])
    );
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", "200mb"]), Resp::ok());
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "maxmemory"]),
        Resp::bulks(&["maxmemory", &(200u64 << 20).to_string()])
    );
    assert_err(
        &c.cmd(&["CONFIG", "SET", "port", "1"]),
        "ERR CONFIG SET failed",
    );
    assert_err(
        &c.cmd(&["CONFIG", "SET", "nosuch", "1"]),
        "ERR Unknown option",
    );
    let Resp::Array(all) = c.cmd(&["CONFIG", "GET", "*"]) else {
        panic!("config get")
    };
    assert!(all.len() > 20);
    let info = c.cmd(&["INFO"]).as_str();
    for needle in [
        "# Server",
        "redis_version:7.0.15",
        "# Memory",
        "used_memory:",
        "# Diskstore",
        "backend:",
        "# Keyspace",
    ] {
        assert!(info.contains(needle), "INFO lacks {needle}");
    }
    let info = c.cmd(&["INFO", "diskstore"]).as_str();
    assert!(info.starts_with("# Diskstore") && !info.contains("# Server"));
    assert_eq!(c.cmd(&["SAVE"]), Resp::ok());
    assert_eq!(
        c.cmd(&["BGSAVE"]),
        Resp::Simple("Background saving started".into())
    );
    assert!(c.cmd(&["LASTSAVE"]).as_int() > 1_600_000_000);
    let Resp::Array(t) = c.cmd(&["TIME"]) else {
        panic!("time")
    };
    assert_eq!(t.len(), 2);
    assert!(c.cmd(&["COMMAND", "COUNT"]).as_int() > 100);
    assert_eq!(c.cmd(&["CLIENT", "SETNAME", "me"]), Resp::ok());
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]), Resp::bulk("me"));
    assert!(c.cmd(&["CLIENT", "LIST"]).as_str().contains("name=me"));
    assert_eq!(c.cmd(&["ECHO", "hi"]), Resp::bulk("hi"));
}

/// A command's clock is never behind the client's: an expiry set at the client's now plus 10 s
/// reads back as at most 10,000 ms to live (one derivation of the server's clock was a
/// millisecond behind the wall clock, and Redis's own suite saw a PTTL of 10001).
#[test]
fn a_ttl_read_back_is_never_above_what_was_set() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(c.cmd(&["SET", "foo", "bar"]), Resp::ok());
    for _ in 0..200 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let at = (now + 10_000).to_string();
        assert_eq!(c.cmd(&["PEXPIREAT", "foo", &at]), Resp::Int(1));
        let ttl = c.cmd(&["PTTL", "foo"]).as_int();
        assert!((9_000..=10_000).contains(&ttl), "PTTL {ttl}");
    }
}
