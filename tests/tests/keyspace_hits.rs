//! INFO `keyspace_hits` and `keyspace_misses` counted as redis-server 7.0 counts them: the
//! lookups of reading commands, not a write command's lookup of the key it changes (monitoring
//! computes a cache hit ratio from these two). The same requests go to kvtier and to
//! redis-server.

use kvtier_tests::{Client, RedisServer, Server};

/// Write commands on present and missing keys: none of them is a hit or a miss.
const WRITES: &[&[&str]] = &[
    &["SET", "c", "1"],
    &["INCR", "c"],
    &["INCR", "fresh"],
    &["SADD", "s", "a"],
    &["SADD", "s", "b"],
    &["LPUSH", "l", "a"],
    &["RPOP", "l"],
    &["RPOP", "l"],
    &["HSET", "h", "f", "v"],
    &["APPEND", "c", "x"],
    &["ZADD", "z", "1", "m"],
    &["ZINCRBY", "z", "2", "m"],
    &["SPOP", "gone"],
];

/// Reading commands: each key present (a hit) or absent (a miss).
const READS: &[&[&str]] = &[
    &["GET", "c"],
    &["GET", "nope"],
    &["HGET", "h", "f"],
    &["HGET", "nokey", "f"],
    &["SMEMBERS", "s"],
    &["LRANGE", "nope", "0", "-1"],
    &["ZSCORE", "z", "m"],
    &["ZSCORE", "nope", "m"],
    &["STRLEN", "c"],
    &["EXISTS", "c", "nope", "h"],
    &["TTL", "c"],
    &["PTTL", "nope"],
    &["TYPE", "s"],
];

/// (hits, misses) after the writes, then after the reads.
fn counts(c: &mut Client) -> [(i64, i64); 2] {
    c.cmd(&["CONFIG", "RESETSTAT"]);
    let mut out = [(0, 0); 2];
    for (i, requests) in [WRITES, READS].into_iter().enumerate() {
        for r in requests {
            let _ = c.cmd(r);
        }
        out[i] = (c.info_int("keyspace_hits"), c.info_int("keyspace_misses"));
    }
    out
}

#[test]
fn hits_and_misses_count_reads_only() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let kv = counts(&mut c);
    // The kvtier half stands alone: writes count nothing, each read one hit or one miss.
    assert_eq!(kv[0], (0, 0), "writes counted as reads");
    assert_eq!(kv[1], (9, 6));
    let Some(r) = RedisServer::start(&[]) else {
        return;
    };
    let mut rc = r.client();
    assert_eq!(kv, counts(&mut rc));
}
