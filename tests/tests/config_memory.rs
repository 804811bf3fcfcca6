//! Memory amounts and integers in CONFIG SET are read exactly as redis-server 7.0.15 reads them,
//! odd inputs included: a space before or after, a sign, a fraction, units in any case, no
//! digits, numbers past 64 bits (they saturate, and a unit's multiplication wraps) and each
//! setting's range. The same requests go to kvtier and to redis-server; the reply and the value
//! CONFIG GET shows after it must be the same.

use kvtier_tests::{Client, RedisServer, Resp, Server};

/// Memory settings Redis 7.0 has, with the value each is put back to after every request.
const MEMORY_SETTINGS: &[(&str, &str)] = &[
    ("maxmemory", "0"),
    ("stream-node-max-bytes", "4096"),
    ("hll-sparse-max-bytes", "3000"),
    ("hash-max-listpack-value", "64"),
    ("zset-max-listpack-value", "64"),
    ("active-defrag-ignore-bytes", "104857600"),
    ("auto-aof-rewrite-min-size", "67108864"),
    ("cluster-link-sendbuf-limit", "0"),
    ("proto-max-bulk-len", "536870912"),
    ("client-query-buffer-limit", "1073741824"),
];

const MEMORY_VALUES: &[&str] = &[
    " 2mb",
    "2mb ",
    " ",
    "5 mb",
    "+5mb",
    "-1",
    "-0",
    "1.5mb",
    "5MB",
    "5Mb",
    "5m",
    "5M",
    "5b",
    "5B",
    "5k",
    "5kb",
    "5gb",
    "2g",
    "007",
    "",
    "kb",
    "b",
    "5t",
    "5tb",
    "5mbb",
    "0x10",
    "5%",
    "0",
    "1",
    "3mb",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999",
    "17179869184gb",
    "17179869185gb",
];

/// Integer settings and their value to put back: read by Redis's `string2ll`.
const INT_SETTINGS: &[(&str, &str)] = &[
    ("hash-max-listpack-entries", "512"),
    ("slowlog-log-slower-than", "10000"),
];

const INT_VALUES: &[&str] = &[
    "+5", "007", "-0", " 5", "5 ", "5.0", "5k", "", "-1", "0", "7", "64",
];

/// Per setting and value: the CONFIG SET reply and the value CONFIG GET shows after it.
fn answers(c: &mut Client) -> Vec<(String, Resp, Resp)> {
    let mut out = Vec::new();
    let groups = [(MEMORY_SETTINGS, MEMORY_VALUES), (INT_SETTINGS, INT_VALUES)];
    for (settings, values) in groups {
        for (name, default) in settings {
            for v in values {
                let reply = c.cmd(&["CONFIG", "SET", name, v]);
                let now = c.cmd(&["CONFIG", "GET", name]);
                out.push((format!("{name} {v:?}"), reply, now));
                assert_eq!(c.cmd(&["CONFIG", "SET", name, default]), Resp::ok());
            }
        }
    }
    out
}

#[test]
fn memory_and_integer_values_are_read_as_redis_reads_them() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let kv = answers(&mut c);
    // The kvtier half stands alone: a space before a memory value is refused, the value kept.
    let (_, reply, now) = kv.iter().find(|(k, ..)| k == "maxmemory \" 2mb\"").unwrap();
    assert_eq!(
        reply,
        &Resp::err(
            "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must \
             be a memory value"
        )
    );
    assert_eq!(now, &Resp::bulks(&["maxmemory", "0"]));
    assert_eq!(c.cmd(&["PING"]), Resp::Simple("PONG".into()));
    let Some(r) = RedisServer::start(&[]) else {
        return;
    };
    let redis = answers(&mut r.client());
    assert_eq!(kv.len(), redis.len());
    for (k, r) in kv.iter().zip(&redis) {
        assert_eq!(k, r, "kvtier (left) and redis-server (right) differ");
    }
}
