//! Redis compatibility additions against the real server: compatibility CONFIG options,
//! OBJECT/MEMORY, bit commands, LCS, SORT, the multi-key sorted set and list commands, and the
//! small introspection commands clients call. Expected replies are Redis 7.0.15's.

use kvtier_tests::{wait_until, Client, Resp, Server};
use std::time::{Duration, Instant};

const SYNTAX: &str = "ERR syntax error";
const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

fn b(items: &[&str]) -> Resp {
    Resp::bulks(items)
}

fn int(n: i64) -> Resp {
    Resp::Int(n)
}

fn start() -> (Server, Client) {
    let s = Server::start(&[]);
    let c = s.client();
    (s, c)
}

/// CONFIG GET of one parameter as (name, value).
fn config_get(c: &mut Client, name: &str) -> Option<(String, String)> {
    match c.cmd(&["CONFIG", "GET", name]) {
        Resp::Array(v) if v.len() == 2 => Some((v[0].as_str(), v[1].as_str())),
        Resp::Map(v) if v.len() == 1 => Some((v[0].0.as_str(), v[0].1.as_str())),
        _ => None,
    }
}

#[test]
fn compatibility_config_options_are_accepted_and_reported() {
    let (_s, mut c) = start();
    for (name, value) in [
        ("list-max-ziplist-size", "16"),
        ("list-max-listpack-size", "-2"),
        ("list-compress-depth", "1"),
        ("set-max-intset-entries", "64"),
        ("zset-max-ziplist-entries", "4"),
        ("zset-max-ziplist-value", "8"),
        ("hash-max-listpack-entries", "4"),
        ("hash-max-ziplist-value", "8"),
        ("slowlog-log-slower-than", "-1"),
        ("lua-time-limit", "100"),
        ("activerehashing", "no"),
        ("lazyfree-lazy-user-del", "yes"),
        ("appendfsync", "always"),
        ("latency-tracking", "no"),
    ] {
        assert_eq!(c.cmd(&["CONFIG", "SET", name, value]), Resp::ok(), "{name}");
        assert_eq!(
            config_get(&mut c, name),
            Some((name.to_string(), value.to_string()))
        );
    }
    // Aliases share the value of the current name.
    assert_eq!(config_get(&mut c, "busy-reply-threshold").unwrap().1, "100");
    assert_eq!(
        config_get(&mut c, "zset-max-listpack-value").unwrap().1,
        "8"
    );
    // Validation errors are Redis's.
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "activerehashing", "maybe"]),
        Resp::err("ERR CONFIG SET failed (possibly related to argument 'activerehashing') - argument must be 'yes' or 'no'")
    );
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "notify-keyspace-events", "Q"]),
        Resp::err("ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")
    );
    for (set, shown) in [("KEA", "AKE"), ("Elg", "glE"), ("Ex", "xE"), ("", "")] {
        c.cmd(&["CONFIG", "SET", "notify-keyspace-events", set]);
        assert_eq!(
            config_get(&mut c, "notify-keyspace-events").unwrap().1,
            shown
        );
    }
    // Several patterns in one CONFIG GET.
    let r = c.cmd(&["CONFIG", "GET", "maxmemory", "*max-*-entries"]);
    let names: Vec<String> = match r {
        Resp::Array(v) => v.chunks(2).map(|p| p[0].as_str()).collect(),
        other => panic!("{other:?}"),
    };
    for n in [
        "maxmemory",
        "hash-max-ziplist-entries",
        "set-max-intset-entries",
    ] {
        assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
    }
}

#[test]
fn object_encoding_follows_the_thresholds() {
    let (_s, mut c) = start();
    let enc = |c: &mut Client, k: &str| c.cmd(&["OBJECT", "ENCODING", k]).as_str();
    c.cmd(&["SET", "n", "12345"]);
    c.cmd(&["SET", "short", "hello"]);
    c.cmd(&["SET", "long", &"x".repeat(45)]);
    assert_eq!(enc(&mut c, "n"), "int");
    assert_eq!(enc(&mut c, "short"), "embstr");
    assert_eq!(enc(&mut c, "long"), "raw");
    c.cmd(&["RPUSH", "l", "a"]);
    assert_eq!(enc(&mut c, "l"), "quicklist");
    c.cmd(&["SADD", "s", "1", "2"]);
    assert_eq!(enc(&mut c, "s"), "intset");
    c.cmd(&["SADD", "s", "a"]);
    assert_eq!(enc(&mut c, "s"), "hashtable");
    c.cmd(&["HSET", "h", "f", "v"]);
    assert_eq!(enc(&mut c, "h"), "listpack");
    c.cmd(&["CONFIG", "SET", "hash-max-ziplist-entries", "0"]);
    assert_eq!(enc(&mut c, "h"), "hashtable");
    c.cmd(&["ZADD", "z", "1", "a"]);
    assert_eq!(enc(&mut c, "z"), "listpack");
    c.cmd(&["ZADD", "z", "2", &"m".repeat(65)]);
    assert_eq!(enc(&mut c, "z"), "skiplist");
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "nokey"]), Resp::Nil);
    assert_eq!(c.cmd(&["OBJECT", "REFCOUNT", "n"]), int(1));
    assert_eq!(c.cmd(&["SET", "small", "7"]), Resp::ok());
    assert_eq!(c.cmd(&["OBJECT", "REFCOUNT", "small"]), int(2147483647));
    assert_eq!(
        c.cmd(&["OBJECT", "FREQ", "n"]),
        Resp::err("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.")
    );
    assert_eq!(c.cmd(&["OBJECT", "IDLETIME", "n"]), int(0));
    assert_eq!(
        c.cmd(&["OBJECT", "FOO", "n"]),
        Resp::err("ERR unknown subcommand 'FOO'. Try OBJECT HELP.")
    );
    assert_eq!(
        c.cmd(&["OBJECT", "ENCODING"]),
        Resp::err("ERR wrong number of arguments for 'object|encoding' command")
    );
    assert!(c.cmd(&["MEMORY", "USAGE", "long"]).as_int() > 45);
    assert_eq!(c.cmd(&["MEMORY", "USAGE", "nokey"]), Resp::Nil);
}

#[test]
fn bit_commands() {
    let (_s, mut c) = start();
    assert_eq!(c.cmd(&["SETBIT", "k", "7", "1"]), int(0));
    assert_eq!(c.cmd(&["SETBIT", "k", "7", "0"]), int(1));
    assert_eq!(c.cmd(&["SETBIT", "k", "100", "1"]), int(0));
    assert_eq!(c.cmd(&["GETBIT", "k", "100"]), int(1));
    assert_eq!(c.cmd(&["GETBIT", "k", "10000"]), int(0));
    assert_eq!(c.cmd(&["STRLEN", "k"]), int(13));
    assert_eq!(
        c.cmd(&["SETBIT", "k", "-1", "1"]),
        Resp::err("ERR bit offset is not an integer or out of range")
    );
    assert_eq!(
        c.cmd(&["SETBIT", "k", "1", "2"]),
        Resp::err("ERR bit is not an integer or out of range")
    );
    c.cmd(&["SET", "s", "foobar"]);
    assert_eq!(c.cmd(&["BITCOUNT", "s"]), int(26));
    assert_eq!(c.cmd(&["BITCOUNT", "s", "1", "1"]), int(6));
    assert_eq!(c.cmd(&["BITCOUNT", "s", "5", "30", "BIT"]), int(17));
    assert_eq!(c.cmd(&["BITCOUNT", "s", "1"]), Resp::err(SYNTAX));
    assert_eq!(c.cmd(&["BITPOS", "s", "1"]), int(1));
    assert_eq!(c.cmd(&["BITPOS", "s", "0"]), int(0));
    assert_eq!(c.cmd(&["BITPOS", "s", "1", "7", "15", "BIT"]), int(9));
    assert_eq!(
        c.cmd(&["BITPOS", "s", "2"]),
        Resp::err("ERR The bit argument must be 1 or 0.")
    );
    c.cmd(&["SET", "ff", "\u{7f}"]);
    assert_eq!(c.cmd(&["BITPOS", "ff", "1"]), int(1));
    assert_eq!(c.cmd(&["BITPOS", "nokey", "1"]), int(-1));
    c.cmd(&["SET", "a", "abc"]);
    c.cmd(&["SET", "b", "a"]);
    assert_eq!(c.cmd(&["BITOP", "AND", "dst", "a", "b"]), int(3));
    assert_eq!(c.cmd(&["GET", "dst"]), Resp::Bulk(b"a\0\0".to_vec()));
    assert_eq!(
        c.cmd(&["BITOP", "NOT", "dst", "a", "b"]),
        Resp::err("ERR BITOP NOT must be called with a single source key.")
    );
    assert_eq!(c.cmd(&["BITOP", "OR", "dst", "nokey"]), int(0));
    assert_eq!(c.cmd(&["EXISTS", "dst"]), int(0));
    c.cmd(&["RPUSH", "l", "x"]);
    assert_eq!(c.cmd(&["BITOP", "AND", "dst", "l"]), Resp::err(WRONGTYPE));
    let r = c.cmd(&[
        "BITFIELD", "bf", "SET", "i8", "0", "100", "GET", "i8", "0", "INCRBY", "i8", "0", "100",
        "OVERFLOW", "SAT", "INCRBY", "i8", "0", "100", "OVERFLOW", "FAIL", "INCRBY", "i8", "0",
        "1",
    ]);
    assert_eq!(
        r,
        Resp::Array(vec![int(0), int(100), int(-56), int(44), int(45)])
    );
    assert_eq!(
        c.cmd(&["BITFIELD", "bf", "OVERFLOW", "FAIL", "INCRBY", "u2", "0", "8"]),
        Resp::Array(vec![Resp::Nil])
    );
    assert_eq!(
        c.cmd(&["BITFIELD", "bf", "GET", "u64", "0"]),
        Resp::err("ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.")
    );
    assert_eq!(
        c.cmd(&["BITFIELD_RO", "bf", "SET", "i8", "0", "1"]),
        Resp::err("ERR BITFIELD_RO only supports the GET subcommand")
    );
    assert_eq!(
        c.cmd(&["BITFIELD_RO", "bf", "GET", "u4", "#1"]),
        Resp::Array(vec![int(13)])
    );
}

#[test]
fn lcs() {
    let (_s, mut c) = start();
    c.cmd(&["MSET", "a", "ohmytext", "b", "mynewtext"]);
    assert_eq!(c.cmd(&["LCS", "a", "b"]), Resp::bulk("mytext"));
    assert_eq!(c.cmd(&["LCS", "a", "b", "LEN"]), int(6));
    let r = c.cmd(&["LCS", "a", "b", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"]);
    let pair = |x: i64, y: i64| Resp::Array(vec![int(x), int(y)]);
    assert_eq!(
        r,
        Resp::Array(vec![
            Resp::bulk("matches"),
            Resp::Array(vec![Resp::Array(vec![pair(4, 7), pair(5, 8), int(4)])]),
            Resp::bulk("len"),
            int(6),
        ])
    );
    assert_eq!(
        c.cmd(&["LCS", "a", "b", "IDX", "LEN"]),
        Resp::err("ERR If you want both the length and indexes, please just use IDX.")
    );
    c.cmd(&["RPUSH", "l", "x"]);
    assert_eq!(
        c.cmd(&["LCS", "a", "l"]),
        Resp::err("ERR The specified keys must contain string values")
    );
}

#[test]
fn sort() {
    let (_s, mut c) = start();
    c.cmd(&["RPUSH", "l", "3", "1", "2", "10"]);
    assert_eq!(c.cmd(&["SORT", "l"]), b(&["1", "2", "3", "10"]));
    assert_eq!(c.cmd(&["SORT", "l", "DESC"]), b(&["10", "3", "2", "1"]));
    assert_eq!(c.cmd(&["SORT", "l", "ALPHA"]), b(&["1", "10", "2", "3"]));
    assert_eq!(c.cmd(&["SORT", "l", "LIMIT", "1", "2"]), b(&["2", "3"]));
    assert_eq!(
        c.cmd(&["SORT", "l", "BY", "nosort", "DESC"]),
        b(&["10", "2", "1", "3"])
    );
    c.cmd(&["MSET", "w_1", "30", "w_2", "20", "w_3", "10", "w_10", "5"]);
    assert_eq!(
        c.cmd(&["SORT", "l", "BY", "w_*"]),
        b(&["10", "3", "2", "1"])
    );
    c.cmd(&["HSET", "h_1", "f", "x"]);
    assert_eq!(
        c.cmd(&["SORT", "l", "GET", "#", "GET", "h_*->f", "LIMIT", "0", "2"]),
        Resp::Array(vec![
            Resp::bulk("1"),
            Resp::bulk("x"),
            Resp::bulk("2"),
            Resp::Nil
        ])
    );
    assert_eq!(c.cmd(&["SORT", "l", "STORE", "dst"]), int(4));
    assert_eq!(
        c.cmd(&["LRANGE", "dst", "0", "-1"]),
        b(&["1", "2", "3", "10"])
    );
    assert_eq!(c.cmd(&["SORT", "nokey", "STORE", "dst"]), int(0));
    assert_eq!(c.cmd(&["EXISTS", "dst"]), int(0));
    c.cmd(&["RPUSH", "words", "b", "a"]);
    assert_eq!(
        c.cmd(&["SORT", "words"]),
        Resp::err("ERR One or more scores can't be converted into double")
    );
    assert_eq!(c.cmd(&["SORT_RO", "l", "STORE", "x"]), Resp::err(SYNTAX));
    c.cmd(&["SET", "str", "x"]);
    assert_eq!(c.cmd(&["SORT", "str"]), Resp::err(WRONGTYPE));
}

#[test]
fn multi_key_sorted_set_commands() {
    let (_s, mut c) = start();
    c.cmd(&["ZADD", "za", "1", "a", "2", "b", "3", "c"]);
    c.cmd(&["ZADD", "zb", "1", "b", "2", "c", "3", "d"]);
    assert_eq!(
        c.cmd(&["ZUNION", "2", "za", "zb", "WITHSCORES"]),
        b(&["a", "1", "b", "3", "d", "3", "c", "5"])
    );
    assert_eq!(c.cmd(&["ZINTER", "2", "za", "zb"]), b(&["b", "c"]));
    assert_eq!(c.cmd(&["ZDIFF", "2", "za", "zb"]), b(&["a"]));
    assert_eq!(
        c.cmd(&["ZINTERCARD", "2", "za", "zb", "LIMIT", "1"]),
        int(1)
    );
    assert_eq!(
        c.cmd(&["ZINTERCARD", "2", "za", "zb", "LIMIT", "-1"]),
        Resp::err("ERR LIMIT can't be negative")
    );
    assert_eq!(c.cmd(&["ZDIFFSTORE", "zd", "2", "za", "zb"]), int(1));
    assert_eq!(c.cmd(&["ZRANGESTORE", "zr", "za", "1", "-1"]), int(2));
    assert_eq!(c.cmd(&["ZRANGE", "zr", "0", "-1"]), b(&["b", "c"]));
    assert_eq!(
        c.cmd(&["ZUNION", "0", "za"]),
        Resp::err("ERR at least 1 input key is needed for 'zunion' command")
    );
    assert_eq!(
        c.cmd(&["ZMPOP", "2", "nokey", "za", "MIN", "COUNT", "2"]),
        Resp::Array(vec![
            Resp::bulk("za"),
            Resp::Array(vec![b(&["a", "1"]), b(&["b", "2"])])
        ])
    );
    assert_eq!(
        c.cmd(&["ZMPOP", "1", "za", "MIN", "COUNT", "0"]),
        Resp::err("ERR count should be greater than 0")
    );
    assert_eq!(c.cmd(&["ZMPOP", "1", "nokey", "MAX"]), Resp::NilArray);
    assert_eq!(c.cmd(&["ZRANDMEMBER", "zb", "-5"]).sorted().len(), 5);
    assert_eq!(
        c.cmd(&["BZPOPMAX", "nokey", "zb", "0"]),
        b(&["zb", "d", "3"])
    );
    // Blocking: a ZADD from another client wakes BZPOPMIN.
    let mut waiter = _s.client();
    waiter.send(&["BZPOPMIN", "zq", "5"]);
    std::thread::sleep(Duration::from_millis(100));
    c.cmd(&["ZADD", "zq", "7", "m"]);
    assert_eq!(waiter.read(), b(&["zq", "m", "7"]));
    let t = Instant::now();
    assert_eq!(
        waiter.cmd(&["BZMPOP", "0.1", "1", "zq", "MIN"]),
        Resp::NilArray
    );
    assert!(t.elapsed() < Duration::from_secs(3));
}

#[test]
fn multi_key_list_commands() {
    let (s, mut c) = start();
    c.cmd(&["RPUSH", "l", "a", "b", "c"]);
    assert_eq!(
        c.cmd(&["LMPOP", "2", "nokey", "l", "RIGHT", "COUNT", "2"]),
        Resp::Array(vec![Resp::bulk("l"), b(&["c", "b"])])
    );
    assert_eq!(
        c.cmd(&["LMPOP", "0", "l", "LEFT"]),
        Resp::err("ERR numkeys should be greater than 0")
    );
    assert_eq!(c.cmd(&["LMPOP", "1", "l", "UP"]), Resp::err(SYNTAX));
    assert_eq!(c.cmd(&["BRPOPLPUSH", "l", "dst", "0"]), Resp::bulk("a"));
    // A timeout answers a null array, as Redis 7.0 does (`*-1`, not `$-1`).
    assert_eq!(c.cmd(&["BRPOPLPUSH", "l", "dst", "0.05"]), Resp::NilArray);
    // A blocked client stays blocked when the key becomes another type.
    let mut waiter = s.client();
    waiter.send(&["BLMPOP", "5", "1", "q", "LEFT"]);
    std::thread::sleep(Duration::from_millis(100));
    c.cmd(&["MULTI"]);
    c.cmd(&["LPUSH", "q", "x"]);
    c.cmd(&["DEL", "q"]);
    c.cmd(&["SET", "q", "str"]);
    c.cmd(&["EXEC"]);
    c.cmd(&["DEL", "q"]);
    c.cmd(&["RPUSH", "q", "y"]);
    assert_eq!(waiter.read(), Resp::Array(vec![Resp::bulk("q"), b(&["y"])]));
}

#[test]
fn introspection_and_client_commands() {
    let (s, mut c) = start();
    assert_eq!(
        c.cmd(&["ROLE"]),
        Resp::Array(vec![Resp::bulk("master"), int(0), Resp::Array(vec![])])
    );
    assert_eq!(c.cmd(&["WAIT", "0", "0"]), int(0));
    assert_eq!(
        c.cmd(&["WAIT", "0", "-1"]),
        Resp::err("ERR timeout is negative")
    );
    assert_eq!(c.cmd(&["SLOWLOG", "LEN"]), int(0));
    assert_eq!(c.cmd(&["SLOWLOG", "GET"]), Resp::Array(vec![]));
    assert_eq!(c.cmd(&["LATENCY", "LATEST"]), Resp::Array(vec![]));
    let info = c.cmd(&["INFO"]).as_str();
    assert!(info.contains("# Cluster\r\ncluster_enabled:0"), "{info}");
    assert!(info.contains("role:master"), "{info}");
    // Tools (and Redis's own suite) look for the allocator by name, as Redis reports it.
    assert!(info.contains("\r\nmem_allocator:jemalloc-5."), "{info}");
    // Redis's allocator and RSS figures, as monitoring tools read them: jemalloc's bytes in use
    // sit in the pages it holds, and the process holds at least its heap's live bytes.
    // (All from one reply: the heap moves between two INFO calls.)
    let memory = kvtier_tests::parse_info(&c.cmd(&["INFO", "memory"]));
    let field = |name: &str| kvtier_tests::info_field(&memory, name);
    let (allocated, active) = (field("allocator_allocated"), field("allocator_active"));
    let resident = field("allocator_resident");
    assert!(
        allocated > 0 && allocated <= active && active <= resident,
        "{memory:?}"
    );
    assert!(field("used_memory_rss") > 0, "{memory:?}");
    assert!(memory.iter().any(|(k, _)| k == "mem_fragmentation_ratio"));
    // RESET inside MULTI ends the transaction.
    c.cmd(&["MULTI"]);
    assert_eq!(c.cmd(&["RESET"]), Resp::Simple("RESET".into()));
    assert_eq!(c.cmd(&["EXEC"]), Resp::err("ERR EXEC without MULTI"));
    // CLIENT KILL: the old ip:port form and filters.
    assert_eq!(
        c.cmd(&["CLIENT", "KILL", "1.2.3.4:5"]),
        Resp::err("ERR No such client")
    );
    assert_eq!(
        c.cmd(&["CLIENT", "KILL", "TYPE", "foo"]),
        Resp::err("ERR Unknown client type 'foo'")
    );
    let mut victim = s.client();
    let list = victim.cmd(&["CLIENT", "INFO"]).as_str();
    let addr = list
        .split(' ')
        .find_map(|f| f.strip_prefix("addr="))
        .expect("addr")
        .to_string();
    assert_eq!(c.cmd(&["CLIENT", "KILL", &addr]), Resp::ok());
    std::thread::sleep(Duration::from_millis(300));
    assert!(victim.try_read().is_err());
    assert_eq!(c.cmd(&["CLIENT", "KILL", "ID", "999999"]), int(0));
}

/// Reads one pub/sub message as its parts.
fn message(c: &mut Client) -> Vec<String> {
    match c.read() {
        Resp::Array(v) | Resp::Push(v) => v.iter().map(Resp::as_str).collect(),
        other => panic!("not a message: {other:?}"),
    }
}

/// A plain SET runs without loading its key, unless `new` events are on: then a key that is on
/// disk but not in memory is still known to exist, and only really new keys report `new`.
#[test]
fn new_events_tell_keys_on_disk_from_new_ones() {
    let (mut s, mut c) = start();
    c.cmd(&["SET", "old", "1"]);
    assert_eq!(c.cmd(&["SAVE"]), Resp::ok());
    // After a restart nothing is in memory: "old" is only on disk.
    s.restart(&["--notify-keyspace-events", "En"]);
    let mut c = s.client();
    let mut sub = s.client();
    sub.cmd(&["SUBSCRIBE", "__keyevent@0__:new"]);
    for set in [
        vec!["SET", "old", "2"],
        vec!["SETEX", "old", "100", "3"],
        vec!["MSET", "old", "4"],
        vec!["SET", "fresh", "1"],
    ] {
        assert_eq!(c.cmd(&set), Resp::ok());
    }
    // The first `new` event is the fresh key's: none came for the key already on disk.
    assert_eq!(
        message(&mut sub),
        ["message", "__keyevent@0__:new", "fresh"]
    );
    assert_eq!(c.cmd(&["GET", "old"]), Resp::bulk("4"));
    assert_eq!(c.info_int("unresolved_reads"), 0);
}

#[test]
fn keyspace_notifications() {
    let (s, mut c) = start();
    let mut sub = s.client();
    assert_eq!(sub.cmd(&["PSUBSCRIBE", "*"]).sorted().len(), 3);
    c.cmd(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    c.cmd(&["SET", "foo", "bar"]);
    assert_eq!(
        message(&mut sub),
        ["pmessage", "*", "__keyspace@0__:foo", "set"]
    );
    assert_eq!(
        message(&mut sub),
        ["pmessage", "*", "__keyevent@0__:set", "foo"]
    );
    // Only list events, on the keyevent channel.
    c.cmd(&["CONFIG", "SET", "notify-keyspace-events", "El"]);
    c.cmd(&["SET", "foo", "baz"]);
    c.cmd(&["RPUSH", "l", "a"]);
    c.cmd(&["RPOP", "l"]);
    assert_eq!(
        message(&mut sub),
        ["pmessage", "*", "__keyevent@0__:rpush", "l"]
    );
    assert_eq!(
        message(&mut sub),
        ["pmessage", "*", "__keyevent@0__:rpop", "l"]
    );
    // Generic events: the emptied list was deleted, then expire and del.
    c.cmd(&["CONFIG", "SET", "notify-keyspace-events", "Eg"]);
    c.cmd(&["EXPIRE", "foo", "100"]);
    c.cmd(&["DEL", "foo"]);
    assert_eq!(
        message(&mut sub),
        ["pmessage", "*", "__keyevent@0__:expire", "foo"]
    );
    assert_eq!(
        message(&mut sub),
        ["pmessage", "*", "__keyevent@0__:del", "foo"]
    );
    // Expired keys are reported when their time comes, and new keys once.
    c.cmd(&["CONFIG", "SET", "notify-keyspace-events", "Exn"]);
    c.cmd(&["PSETEX", "gone", "100", "v"]);
    assert_eq!(
        message(&mut sub),
        ["pmessage", "*", "__keyevent@0__:new", "gone"]
    );
    assert_eq!(
        message(&mut sub),
        ["pmessage", "*", "__keyevent@0__:expired", "gone"]
    );
    c.cmd(&["SET", "k", "1"]);
    c.cmd(&["SET", "k", "2"]);
    c.cmd(&["SET", "k2", "1"]);
    assert_eq!(
        message(&mut sub),
        ["pmessage", "*", "__keyevent@0__:new", "k"]
    );
    assert_eq!(
        message(&mut sub),
        ["pmessage", "*", "__keyevent@0__:new", "k2"]
    );
}

#[test]
fn client_reply_off_and_skip() {
    let (_s, mut c) = start();
    c.send(&["CLIENT", "REPLY", "OFF"]);
    c.send(&["SET", "a", "1"]);
    c.send(&["CLIENT", "REPLY", "ON"]);
    assert_eq!(c.read(), Resp::ok());
    c.send(&["CLIENT", "REPLY", "SKIP"]);
    c.send(&["GET", "a"]);
    assert_eq!(c.cmd(&["GET", "a"]), Resp::bulk("1"));
}

#[test]
fn client_unblock() {
    let (s, mut c) = start();
    let mut blocked = s.client();
    let id = blocked.cmd(&["CLIENT", "ID"]).as_int().to_string();
    blocked.send(&["BLPOP", "nolist", "0"]);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(c.cmd(&["CLIENT", "UNBLOCK", &id]), int(1));
    assert_eq!(blocked.read(), Resp::NilArray);
    blocked.send(&["BRPOPLPUSH", "nolist", "dst", "0"]);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(c.cmd(&["CLIENT", "UNBLOCK", &id, "ERROR"]), int(1));
    assert_eq!(
        blocked.read(),
        Resp::err("UNBLOCKED client unblocked via CLIENT UNBLOCK")
    );
    assert_eq!(c.cmd(&["CLIENT", "UNBLOCK", &id]), int(0));
    assert_eq!(
        c.cmd(&["CLIENT", "UNBLOCK", &id, "LATER"]),
        Resp::err("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
    );
    assert_eq!(
        c.cmd(&["CLIENT", "UNBLOCK", "x"]),
        Resp::err("ERR value is not an integer or out of range")
    );
}

#[test]
fn flush_touches_only_watched_keys_it_removes() {
    let (_s, mut c) = start();
    c.cmd(&["SET", "x", "1"]);
    // A watched key that does not exist is not touched by FLUSHALL.
    c.cmd(&["WATCH", "absent"]);
    c.cmd(&["FLUSHALL"]);
    c.cmd(&["MULTI"]);
    c.cmd(&["PING"]);
    assert_eq!(
        c.cmd(&["EXEC"]),
        Resp::Array(vec![Resp::Simple("PONG".into())])
    );
    // Nor is a key of another DB by FLUSHDB.
    c.cmd(&["SELECT", "5"]);
    c.cmd(&["SET", "k", "v"]);
    c.cmd(&["WATCH", "k"]);
    c.cmd(&["SELECT", "0"]);
    c.cmd(&["FLUSHDB"]);
    c.cmd(&["MULTI"]);
    c.cmd(&["PING"]);
    assert_eq!(
        c.cmd(&["EXEC"]),
        Resp::Array(vec![Resp::Simple("PONG".into())])
    );
    // A watched key the flush removes is.
    c.cmd(&["SET", "y", "1"]);
    c.cmd(&["WATCH", "y"]);
    c.cmd(&["FLUSHDB"]);
    c.cmd(&["MULTI"]);
    c.cmd(&["PING"]);
    assert_eq!(c.cmd(&["EXEC"]), Resp::NilArray);
}

#[test]
fn watched_key_that_expires_fails_exec() {
    let (_s, mut c) = start();
    c.cmd(&["SET", "x", "foo", "PX", "100"]);
    c.cmd(&["WATCH", "x"]);
    std::thread::sleep(Duration::from_millis(200));
    c.cmd(&["MULTI"]);
    c.cmd(&["PING"]);
    assert_eq!(c.cmd(&["EXEC"]), Resp::NilArray);
    // UNWATCH forgets it.
    c.cmd(&["SET", "y", "foo", "PX", "100"]);
    c.cmd(&["WATCH", "y"]);
    c.cmd(&["UNWATCH"]);
    std::thread::sleep(Duration::from_millis(200));
    c.cmd(&["MULTI"]);
    c.cmd(&["PING"]);
    assert_eq!(
        c.cmd(&["EXEC"]),
        Resp::Array(vec![Resp::Simple("PONG".into())])
    );
}

#[test]
fn monitor_sees_commands_until_reset() {
    let (s, mut c) = start();
    let mut mon = s.client();
    assert_eq!(mon.cmd(&["MONITOR"]), Resp::ok());
    assert!(c.cmd(&["CLIENT", "LIST"]).as_str().contains("flags=O"));
    c.cmd(&["SET", "a b", "x\"y\n"]);
    c.cmd(&["AUTH", "secret"]);
    c.cmd(&["MULTI"]);
    c.cmd(&["INCR", "n"]);
    c.cmd(&["EXEC"]);
    // The CLIENT LIST above comes first.
    let lines: Vec<String> = (0..6).map(|_| mon.read().as_str()).collect();
    assert!(lines[0].ends_with(r#""CLIENT" "LIST""#), "{lines:?}");
    assert!(lines[1].ends_with(r#""SET" "a b" "x\"y\n""#), "{lines:?}");
    assert!(lines[1].contains(" [0 127.0.0.1:"), "{lines:?}");
    assert!(lines[2].ends_with(r#""AUTH" "(redacted)""#), "{lines:?}");
    assert!(lines[3].ends_with(r#""MULTI""#), "{lines:?}");
    assert!(lines[4].ends_with(r#""INCR" "n""#), "{lines:?}");
    assert!(lines[5].ends_with(r#""EXEC""#), "{lines:?}");
    assert_eq!(mon.cmd(&["RESET"]), Resp::Simple("RESET".into()));
    assert!(!c.cmd(&["CLIENT", "LIST"]).as_str().contains("flags=O"));
}

#[test]
fn client_pause_holds_writes_until_unpause() {
    let (s, mut c) = start();
    assert_eq!(
        c.cmd(&["CLIENT", "PAUSE", "10", "SOMETIMES"]),
        Resp::err("ERR CLIENT PAUSE mode must be WRITE or ALL")
    );
    assert_eq!(
        c.cmd(&["CLIENT", "PAUSE", "-1"]),
        Resp::err("ERR timeout is negative")
    );
    assert_eq!(c.cmd(&["CLIENT", "PAUSE", "5000", "WRITE"]), Resp::ok());
    let mut writer = s.client();
    let t = Instant::now();
    writer.send(&["SET", "k", "v"]);
    // Reads go on.
    assert_eq!(c.cmd(&["GET", "k"]), Resp::Nil);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(c.cmd(&["CLIENT", "UNPAUSE"]), Resp::ok());
    assert_eq!(writer.read(), Resp::ok());
    assert!(t.elapsed() >= Duration::from_millis(200));
    assert!(t.elapsed() < Duration::from_secs(4));
    // ALL holds everything until the timeout.
    assert_eq!(c.cmd(&["CLIENT", "PAUSE", "300", "ALL"]), Resp::ok());
    let t = Instant::now();
    assert_eq!(writer.cmd(&["GET", "k"]), Resp::bulk("v"));
    assert!(t.elapsed() >= Duration::from_millis(250));
}

#[test]
fn command_info_categories_and_movablekeys() {
    let (_s, mut c) = start();
    let info = |c: &mut Client, name: &str| match c.cmd(&["COMMAND", "INFO", name]) {
        Resp::Array(v) => match &v[0] {
            Resp::Array(f) => f.clone(),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    let strs = |r: &Resp| match r {
        Resp::Array(v) | Resp::Set(v) => v.iter().map(Resp::as_str).collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    let get = info(&mut c, "get");
    assert_eq!(strs(&get[6]), ["@read", "@string", "@fast"]);
    let blpop = info(&mut c, "blpop");
    assert_eq!(strs(&blpop[6]), ["@write", "@list", "@slow", "@blocking"]);
    let zunion = info(&mut c, "zunion");
    assert!(strs(&zunion[2]).contains(&"movablekeys".to_string()));
    assert_eq!(strs(&zunion[6]), ["@read", "@sortedset", "@slow"]);
    let typ = info(&mut c, "type");
    assert_eq!(strs(&typ[6]), ["@keyspace", "@read", "@fast"]);
}

/// CLIENT NO-EVICT (Redis 7.0): ON/OFF answer +OK and show as flag `e` in CLIENT INFO, after the
/// tracking flags and kept through MULTI and RESET; anything else is a syntax error. (kvtier never
/// evicts clients, so the flag changes nothing else.) Replies checked against redis-server
/// 7.0.15.
#[test]
fn client_no_evict() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let flags = |c: &mut Client| {
        let info = c.cmd(&["CLIENT", "INFO"]).as_str();
        info.split(' ')
            .find_map(|f| f.strip_prefix("flags="))
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(
        c.cmd(&["CLIENT", "NO-EVICT", "maybe"]),
        Resp::err("ERR syntax error")
    );
    assert_eq!(flags(&mut c), "N");
    assert_eq!(c.cmd(&["CLIENT", "NO-EVICT", "on"]), Resp::ok());
    assert_eq!(flags(&mut c), "e");
    assert_eq!(c.cmd(&["CLIENT", "TRACKING", "on"]), Resp::ok());
    assert_eq!(flags(&mut c), "te");
    assert_eq!(c.cmd(&["RESET"]), Resp::Simple("RESET".into()));
    assert_eq!(flags(&mut c), "e");
    assert_eq!(c.cmd(&["CLIENT", "NO-EVICT", "OFF"]), Resp::ok());
    assert_eq!(flags(&mut c), "N");
}

/// A container's subcommand called with the wrong number of arguments is refused with Redis's
/// `wrong number of arguments for 'client|getname' command`, its arity taken from Redis's
/// command table (every container: CLIENT, CONFIG, OBJECT, MEMORY, XINFO…), and an unknown
/// subcommand with `unknown subcommand 'x'. Try CLIENT HELP.`; the handlers' own texts stay for
/// what the table lets through (CLIENT KILL a b c, FUNCTION FLUSH a b…). Replies checked against
/// redis-server 7.0.15.
#[test]
fn subcommand_wrong_arity() {
    let (_s, mut c) = start();
    #[rustfmt::skip]
    let cases: &[(&[&str], &str)] = &[
        (&["CLIENT", "GETNAME", "extra"], "ERR wrong number of arguments for 'client|getname' command"),
        (&["CLIENT", "ID", "x"], "ERR wrong number of arguments for 'client|id' command"),
        (&["CLIENT", "SETNAME"], "ERR wrong number of arguments for 'client|setname' command"),
        (&["CLIENT", "NO-EVICT"], "ERR wrong number of arguments for 'client|no-evict' command"),
        (&["CLIENT", "NO-EVICT", "on", "off"], "ERR wrong number of arguments for 'client|no-evict' command"),
        (&["CLIENT", "PAUSE"], "ERR wrong number of arguments for 'client|pause' command"),
        (&["CLIENT", "UNPAUSE", "x"], "ERR wrong number of arguments for 'client|unpause' command"),
        (&["CLIENT", "INFO", "x"], "ERR wrong number of arguments for 'client|info' command"),
        (&["CLIENT", "REPLY"], "ERR wrong number of arguments for 'client|reply' command"),
        (&["CLIENT", "CACHING"], "ERR wrong number of arguments for 'client|caching' command"),
        (&["CLIENT", "GETREDIR", "x"], "ERR wrong number of arguments for 'client|getredir' command"),
        (&["CLIENT", "TRACKINGINFO", "x"], "ERR wrong number of arguments for 'client|trackinginfo' command"),
        (&["CLIENT", "UNBLOCK"], "ERR wrong number of arguments for 'client|unblock' command"),
        (&["CLIENT", "KILL"], "ERR wrong number of arguments for 'client|kill' command"),
        (&["client", "getname", "x"], "ERR wrong number of arguments for 'client|getname' command"),
        (&["CLIENT", "KILL", "a", "b", "c"], "ERR syntax error"),
        (&["CLIENT", "LIST", "x"], "ERR syntax error"),
        (&["CLIENT", "UNBLOCK", "1", "x", "y"], "ERR unknown subcommand or wrong number of arguments for 'UNBLOCK'. Try CLIENT HELP."),
        (&["CLIENT", "PAUSE", "10", "x", "y"], "ERR unknown subcommand or wrong number of arguments for 'PAUSE'. Try CLIENT HELP."),
        (&["Client", "Foo", "x"], "ERR unknown subcommand 'Foo'. Try CLIENT HELP."),
        (&["CONFIG", "GET"], "ERR wrong number of arguments for 'config|get' command"),
        (&["CONFIG", "SET", "x"], "ERR wrong number of arguments for 'config|set' command"),
        (&["CONFIG", "RESETSTAT", "x"], "ERR wrong number of arguments for 'config|resetstat' command"),
        (&["CONFIG", "SET", "a", "b", "c"], "ERR syntax error"),
        (&["CONFIG", "FOO"], "ERR unknown subcommand 'FOO'. Try CONFIG HELP."),
        (&["OBJECT", "ENCODING"], "ERR wrong number of arguments for 'object|encoding' command"),
        (&["OBJECT", "HELP", "x"], "ERR wrong number of arguments for 'object|help' command"),
        (&["MEMORY", "USAGE"], "ERR wrong number of arguments for 'memory|usage' command"),
        (&["MEMORY", "DOCTOR", "x"], "ERR wrong number of arguments for 'memory|doctor' command"),
        (&["XINFO", "GROUPS"], "ERR wrong number of arguments for 'xinfo|groups' command"),
        (&["XINFO", "STREAM"], "ERR wrong number of arguments for 'xinfo|stream' command"),
        (&["XINFO", "CONSUMERS", "k", "g", "x"], "ERR wrong number of arguments for 'xinfo|consumers' command"),
        (&["XGROUP", "CREATE", "k", "g"], "ERR wrong number of arguments for 'xgroup|create' command"),
        (&["PUBSUB", "NUMPAT", "x"], "ERR wrong number of arguments for 'pubsub|numpat' command"),
        (&["SCRIPT", "LOAD"], "ERR wrong number of arguments for 'script|load' command"),
        (&["SCRIPT", "FLUSH", "a", "b"], "ERR SCRIPT FLUSH only support SYNC|ASYNC option"),
        (&["FUNCTION", "DELETE"], "ERR wrong number of arguments for 'function|delete' command"),
        (&["FUNCTION", "FLUSH", "a", "b"], "ERR unknown subcommand or wrong number of arguments for 'FLUSH'. Try FUNCTION HELP."),
        (&["FUNCTION", "RESTORE", "x", "y", "z"], "ERR unknown subcommand or wrong number of arguments for 'RESTORE'. Try FUNCTION HELP."),
        (&["FUNCTION", "LOAD", "x", "y", "z"], "ERR Unknown option given: x"),
        (&["COMMAND", "COUNT", "x"], "ERR wrong number of arguments for 'command|count' command"),
        (&["COMMAND", "FOO"], "ERR unknown subcommand 'FOO'. Try COMMAND HELP."),
        (&["COMMAND", "GETKEYS", "get"], "ERR wrong number of arguments for 'command|getkeys' command"),
        (&["COMMAND", "GETKEYS", "get", "k", "x"], "ERR Invalid number of arguments specified for command"),
        (&["COMMAND", "LIST", "x"], "ERR syntax error"),
        (&["SLOWLOG", "LEN", "x"], "ERR wrong number of arguments for 'slowlog|len' command"),
        (&["SLOWLOG", "GET", "1", "x"], "ERR unknown subcommand or wrong number of arguments for 'GET'. Try SLOWLOG HELP."),
        (&["LATENCY", "GRAPH"], "ERR wrong number of arguments for 'latency|graph' command"),
        (&["ACL", "GETUSER"], "ERR wrong number of arguments for 'acl|getuser' command"),
        (&["ACL", "WHOAMI", "x"], "ERR wrong number of arguments for 'acl|whoami' command"),
    ];
    for (args, err) in cases {
        assert_eq!(c.cmd(args), Resp::err(err), "{args:?}");
    }
    // From a script, as for any command: Redis's script texts.
    let script = |c: &mut Client, body: &str| match c.cmd(&["EVAL", body, "0"]) {
        Resp::Error(e) => e.split(" script: ").next().unwrap_or_default().to_string(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        script(&mut c, "return redis.call('object','encoding')"),
        "ERR Wrong number of args calling Redis command from script"
    );
    assert_eq!(
        script(&mut c, "return redis.call('object','foo','k')"),
        "ERR Unknown Redis command called from script"
    );
    // Still served with the right arity.
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]), Resp::Nil);
    // Refused like a command: at queue time inside MULTI (EXEC then aborts), counted as
    // rejected, as redis-server 7.0.15 does.
    assert_eq!(c.cmd(&["CONFIG", "RESETSTAT"]), Resp::ok());
    assert_eq!(c.cmd(&["MULTI"]), Resp::ok());
    assert_eq!(
        c.cmd(&["CLIENT", "GETNAME", "x"]),
        Resp::err("ERR wrong number of arguments for 'client|getname' command")
    );
    assert_eq!(
        c.cmd(&["EXEC"]),
        Resp::err("EXECABORT Transaction discarded because of previous errors.")
    );
    let Resp::Bulk(stats) = c.cmd(&["INFO", "commandstats"]) else {
        panic!("INFO commandstats");
    };
    let stats = String::from_utf8_lossy(&stats);
    assert!(
        stats.contains("cmdstat_client|getname:calls=0,usec=0,usec_per_call=0.00,rejected_calls=1,failed_calls=0"),
        "{stats}"
    );
}

#[test]
fn client_list_by_type_and_id() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let mut sub = s.client();
    sub.cmd(&["SUBSCRIBE", "news"]);
    let ids = |c: &mut Client, args: &[&str]| -> Vec<String> {
        let mut cmd = vec!["CLIENT", "LIST"];
        cmd.extend_from_slice(args);
        let text = c.cmd(&cmd).as_str();
        text.lines()
            .filter_map(|l| l.split(' ').find_map(|f| f.strip_prefix("id=")))
            .map(str::to_string)
            .collect()
    };
    let me = c.cmd(&["CLIENT", "ID"]).as_int().to_string();
    let all = ids(&mut c, &[]);
    assert_eq!(all.len(), 2);
    let other = all.iter().find(|id| **id != me).unwrap().clone();
    // As redis-server 7.0.15 answers: a subscribed client is of type pubsub, the others normal;
    // nobody is a master or replica here.
    assert_eq!(ids(&mut c, &["TYPE", "pubsub"]), vec![other.clone()]);
    assert_eq!(ids(&mut c, &["TYPE", "Normal"]), vec![me.clone()]);
    for t in ["master", "replica", "slave"] {
        assert_eq!(c.cmd(&["CLIENT", "LIST", "TYPE", t]), Resp::bulk(""), "{t}");
    }
    assert_eq!(
        c.cmd(&["CLIENT", "LIST", "TYPE", "foo"]),
        Resp::err("ERR Unknown client type 'foo'")
    );
    assert_eq!(ids(&mut c, &["ID", &me, "0", "99999"]), vec![me.clone()]);
    assert_eq!(ids(&mut c, &["ID", &other, &me]).len(), 2);
    assert_eq!(c.cmd(&["CLIENT", "LIST", "ID", "99999"]), Resp::bulk(""));
    assert_eq!(
        c.cmd(&["CLIENT", "LIST", "ID", "x"]),
        Resp::err("ERR Invalid client ID")
    );
    assert_eq!(
        c.cmd(&["CLIENT", "LIST", "ID"]),
        Resp::err("ERR syntax error")
    );
    assert_eq!(
        c.cmd(&["CLIENT", "LIST", "TYPE", "normal", "x"]),
        Resp::err("ERR syntax error")
    );
    // `cmd=` names a container's subcommand as Redis 7.0.15 does.
    let line = c.cmd(&["CLIENT", "LIST", "ID", &me]).as_str();
    assert!(line.contains(" cmd=client|list "), "{line}");
    let info = c.cmd(&["CLIENT", "INFO"]).as_str();
    assert!(info.contains(" cmd=client|info "), "{info}");
    let line = c.cmd(&["CLIENT", "LIST", "ID", &other]).as_str();
    assert!(line.contains(" cmd=subscribe "), "{line}");
}

/// A WRITE pause also holds what Redis 7.0 flags may-replicate (PUBLISH, PFCOUNT, EVAL…, not
/// EVAL_RO), held clients count in INFO `blocked_clients` as Redis counts them, and a read-only
/// script may not call a may-replicate command (answers as redis-server 7.0.15 gives them).
#[test]
fn write_pause_holds_may_replicate_commands_and_counts_them_blocked() {
    let (s, mut c) = start();
    assert_eq!(c.cmd(&["PFADD", "hll", "a"]), Resp::Int(1));
    assert_eq!(c.cmd(&["CLIENT", "PAUSE", "100000", "WRITE"]), Resp::ok());
    let held: Vec<(Client, Resp)> = [
        (&["PFCOUNT", "hll"][..], Resp::Int(1)),
        (&["PUBLISH", "ch", "m"], Resp::Int(0)),
        (&["EVAL", "return 1", "0"], Resp::Int(1)),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (cmd, want))| {
        let mut w = s.client();
        w.send(cmd);
        wait_until(Duration::from_secs(5), "held clients", || {
            c.info_int("blocked_clients") == i as i64 + 1
        });
        (w, want)
    })
    .collect();
    // Read-only scripts and reads still run.
    assert_eq!(c.cmd(&["EVAL_RO", "return 2", "0"]), Resp::Int(2));
    assert_eq!(c.cmd(&["GET", "nokey"]), Resp::Nil);
    assert_eq!(c.cmd(&["CLIENT", "UNPAUSE"]), Resp::ok());
    for (mut w, want) in held {
        assert_eq!(w.read(), want);
    }
    assert_eq!(c.info_int("blocked_clients"), 0);
    match c.cmd(&["EVAL_RO", "return redis.call('publish', 'ch', 'm')", "0"]) {
        Resp::Error(e) => assert!(
            e.starts_with("ERR Write commands are not allowed from read-only scripts."),
            "{e}"
        ),
        other => panic!("{other:?}"),
    }
}

/// A WRITE pause judges a script by the flags it declares, as redis-server 7.0.15 does
/// (checked against it): a script or function with a shebang or registration flags is held
/// unless it declares `no-writes`, whatever the command (`_RO` forms included); one without a
/// shebang, or unknown, is held under EVALSHA and FCALL but not under their `_RO` forms.
#[test]
fn write_pause_judges_scripts_by_their_declared_flags() {
    let (s, mut c) = start();
    let sha = |c: &mut Client, body: &str| match c.cmd(&["SCRIPT", "LOAD", body]) {
        Resp::Bulk(b) => String::from_utf8(b).unwrap(),
        other => panic!("{other:?}"),
    };
    let plain = sha(&mut c, "return 3");
    let declared = sha(&mut c, "#!lua\nreturn 7");
    let no_writes = sha(&mut c, "#!lua flags=no-writes\nreturn 4");
    let lib = "#!lua name=lib\n\
        redis.register_function('w', function() return 5 end)\n\
        redis.register_function{function_name='r', callback=function() return 6 end, \
        flags={'no-writes'}}";
    assert_eq!(
        c.cmd(&["FUNCTION", "LOAD", lib]),
        Resp::Bulk(b"lib".to_vec())
    );
    assert_eq!(c.cmd(&["CLIENT", "PAUSE", "100000", "WRITE"]), Resp::ok());
    let unknown = "0".repeat(40);
    let held: Vec<(Client, Resp)> = [
        (vec!["EVALSHA", plain.as_str(), "0"], Resp::Int(3)),
        (vec!["EVALSHA", declared.as_str(), "0"], Resp::Int(7)),
        (vec!["EVALSHA_RO", declared.as_str(), "0"], Resp::Int(7)),
        (vec!["EVAL_RO", "#!lua\nreturn 8", "0"], Resp::Int(8)),
        (vec!["FCALL", "w", "0"], Resp::Int(5)),
        (vec!["FCALL_RO", "w", "0"], Resp::Error(String::new())),
        (vec!["FCALL", "nosuch", "0"], Resp::Error(String::new())),
        (
            vec!["EVALSHA", unknown.as_str(), "0"],
            Resp::Error(String::new()),
        ),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (cmd, want))| {
        let mut w = s.client();
        w.send(&cmd);
        wait_until(Duration::from_secs(5), "held clients", || {
            c.info_int("blocked_clients") == i as i64 + 1
        });
        (w, want)
    })
    .collect();
    // Declared no-writes, or no declaration under a read-only form: they run.
    assert_eq!(c.cmd(&["EVALSHA", &no_writes, "0"]), Resp::Int(4));
    assert_eq!(c.cmd(&["FCALL", "r", "0"]), Resp::Int(6));
    assert_eq!(c.cmd(&["FCALL_RO", "r", "0"]), Resp::Int(6));
    assert_eq!(c.cmd(&["EVALSHA_RO", &plain, "0"]), Resp::Int(3));
    assert!(matches!(
        c.cmd(&["FCALL_RO", "nosuch", "0"]),
        Resp::Error(_)
    ));
    assert_eq!(c.info_int("blocked_clients"), 8);
    assert_eq!(c.cmd(&["CLIENT", "UNPAUSE"]), Resp::ok());
    for (mut w, want) in held {
        match (w.read(), want) {
            (Resp::Error(_), Resp::Error(_)) => {}
            (got, want) => assert_eq!(got, want),
        }
    }
}

/// Nothing expires during a CLIENT PAUSE, as in Redis: an expired key reads as absent but is
/// not deleted (no `expired_keys`, no active expiry) until the pause ends.
#[test]
fn expiry_waits_for_the_end_of_a_pause() {
    let (_s, mut c) = start();
    let before = c.info_int("expired_keys");
    assert_eq!(c.cmd(&["MULTI"]), Resp::ok());
    for k in ["a", "b"] {
        assert_eq!(
            c.cmd(&["SET", k, "v", "PX", "20"]),
            Resp::Simple("QUEUED".into())
        );
    }
    assert_eq!(
        c.cmd(&["CLIENT", "PAUSE", "100000", "WRITE"]),
        Resp::Simple("QUEUED".into())
    );
    assert!(matches!(c.cmd(&["EXEC"]), Resp::Array(_)));
    // Past their time and past several active-expiry cycles.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(c.cmd(&["GET", "a"]), Resp::Nil);
    assert_eq!(c.cmd(&["GET", "b"]), Resp::Nil);
    assert_eq!(c.info_int("expired_keys"), before);
    assert_eq!(c.cmd(&["CLIENT", "UNPAUSE"]), Resp::ok());
    assert_eq!(c.cmd(&["GET", "a"]), Resp::Nil);
    assert_eq!(c.cmd(&["GET", "b"]), Resp::Nil);
    assert_eq!(c.info_int("expired_keys"), before + 2);
}
