//! DUMP / RESTORE in Redis's serialization format, against the real binary with a tiny cache
//! (values go to disk and come back), and crossed with a real redis-server 7.0.15: payloads
//! from Redis restore into kvtier, payloads from kvtier restore into Redis, and both read back
//! the same. Without redis-server on PATH (or `REDIS_SERVER_BIN`) the cross tests print a loud
//! warning and check kvtier alone.

use kvtier_tests::{free_port, Client, Resp, Server};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SMALL_CACHE: &[&str] = &["--maxmemory", "1mb", "--cache-flush-delay", "0"];
const CHECKSUM: &str = "ERR DUMP payload version or checksum are wrong";
const BAD_FORMAT: &str = "ERR Bad data format";

fn server() -> Server {
    Server::start(SMALL_CACHE)
}

/// CRC-64 as Redis computes it (Jones polynomial, reflected, no final xor), bit by bit: an
/// independent check of the server's table-driven crate.
fn crc64(data: &[u8]) -> u64 {
    const POLY: u64 = 0x95ac_9329_ac4b_c9b5; // 0xad93d23594c935a9 reflected
    let mut crc = 0u64;
    for &b in data {
        crc ^= b as u64;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// A payload from a raw RDB value encoding: version 10 and the CRC appended.
fn seal(body: &[u8]) -> Vec<u8> {
    let mut p = body.to_vec();
    p.extend_from_slice(&10u16.to_le_bytes());
    let crc = crc64(&p);
    p.extend_from_slice(&crc.to_le_bytes());
    p
}

fn bulk(r: Resp) -> Vec<u8> {
    match r {
        Resp::Bulk(b) => b,
        other => panic!("expected a bulk reply, got {other:?}"),
    }
}

/// What a key holds, read back with the commands of its type, order-free where the type is.
fn read_back(c: &mut Client, key: &str) -> (String, Resp) {
    let t = c.cmd(&["TYPE", key]).as_str();
    let r = match t.as_str() {
        "string" => c.cmd(&["GET", key]),
        "list" => c.cmd(&["LRANGE", key, "0", "-1"]),
        "set" => Resp::Array(c.cmd(&["SMEMBERS", key]).sorted()),
        "hash" => Resp::Array(c.cmd(&["HGETALL", key]).sorted()),
        "zset" => c.cmd(&["ZRANGE", key, "0", "-1", "WITHSCORES"]),
        "none" => Resp::Nil,
        other => panic!("unexpected type {other}"),
    };
    (t, r)
}

/// Runs each command on `c`, asserting it is not an error.
fn run(c: &mut Client, cmds: &[Vec<Vec<u8>>]) {
    for cmd in cmds {
        let args: Vec<&[u8]> = cmd.iter().map(Vec::as_slice).collect();
        let r = c.cmd_bytes(&args);
        assert!(
            !matches!(r, Resp::Error(_)),
            "{:?}: {r:?}",
            String::from_utf8_lossy(&cmd[0])
        );
    }
}

/// `assert_eq!` for large values: on a mismatch, shows only the start of each.
#[track_caller]
fn assert_same<T: PartialEq + std::fmt::Debug>(got: &T, want: &T, what: &str) {
    if got != want {
        let short = |v: &T| format!("{v:?}").chars().take(600).collect::<String>();
        panic!("{what}: got {} …\nwant {} …", short(got), short(want));
    }
}

fn cmd(parts: &[&[u8]]) -> Vec<Vec<u8>> {
    parts.iter().map(|p| p.to_vec()).collect()
}

/// Commands that build one key of every type, small and large, with binary data, integers of
/// every width and scores with infinities: `(key, commands)`.
fn fixtures() -> Vec<(String, Vec<Vec<Vec<u8>>>)> {
    let mut all: Vec<(String, Vec<Vec<Vec<u8>>>)> = Vec::new();
    let mut add = |key: &str, cmds: Vec<Vec<Vec<u8>>>| all.push((key.to_string(), cmds));
    let push_all = |c: &str, key: &str, items: &[Vec<u8>]| -> Vec<Vec<Vec<u8>>> {
        items
            .chunks(200)
            .map(|ch| {
                let mut v = vec![c.as_bytes().to_vec(), key.as_bytes().to_vec()];
                v.extend(ch.iter().cloned());
                v
            })
            .collect()
    };
    let binary: Vec<u8> = (0..=255u8).cycle().take(700).collect();
    let text: Vec<u8> = b"kvtier ".repeat(300);
    for (k, v) in [
        ("s:int8", b"-100".to_vec()),
        ("s:int16", b"30000".to_vec()),
        ("s:int32", b"-2000000000".to_vec()),
        ("s:int64", b"9223372036854775807".to_vec()),
        ("s:notint", b"007".to_vec()),
        ("s:empty", Vec::new()),
        ("s:short", b"hello world".to_vec()),
        ("s:binary", binary.clone()),
        ("s:lzf", text.clone()),
    ] {
        add(k, vec![cmd(&[b"SET", k.as_bytes(), &v])]);
    }
    let ints: Vec<Vec<u8>> = [
        "0",
        "1",
        "-1",
        "127",
        "128",
        "-4096",
        "4095",
        "-4097",
        "32767",
        "-32768",
        "8388607",
        "-8388608",
        "2147483647",
        "-2147483648",
        "9223372036854775807",
        "-9223372036854775808",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let mut mixed = ints.clone();
    mixed.extend([
        b"".to_vec(),
        binary[..300].to_vec(),
        b"a".to_vec(),
        text.clone(),
    ]);
    add("l:small", push_all("RPUSH", "l:small", &mixed));
    let many: Vec<Vec<u8>> = (0..3000)
        .map(|i| format!("elem-{i}").into_bytes())
        .collect();
    add("l:large", push_all("RPUSH", "l:large", &many));
    add("l:lpush", push_all("LPUSH", "l:lpush", &many[..500]));
    add("st:intset", push_all("SADD", "st:intset", &ints));
    add("st:small", push_all("SADD", "st:small", &mixed));
    add("st:large", push_all("SADD", "st:large", &many));
    let bigints: Vec<Vec<u8>> = (0..1000)
        .map(|i| (i * 7919 - 3000).to_string().into_bytes())
        .collect();
    add("st:bigints", push_all("SADD", "st:bigints", &bigints));
    let pairs = |items: &[Vec<u8>]| -> Vec<Vec<u8>> {
        items
            .iter()
            .enumerate()
            .flat_map(|(i, f)| [f.clone(), format!("{i}").into_bytes()])
            .collect()
    };
    add("h:small", push_all("HSET", "h:small", &pairs(&mixed)));
    add("h:large", push_all("HSET", "h:large", &pairs(&many)));
    // Updates keep a field's place, deletes close the gap, new fields go last (a listpack).
    add(
        "h:edited",
        vec![
            cmd(&[
                b"HSET",
                b"h:edited",
                b"f1",
                b"1",
                b"f2",
                b"2",
                b"f3",
                b"3",
                b"f4",
                b"4",
            ]),
            cmd(&[b"HDEL", b"h:edited", b"f2"]),
            cmd(&[b"HSET", b"h:edited", b"f5", b"5", b"f1", b"one"]),
        ],
    );
    add(
        "h:bigvalue",
        vec![cmd(&[b"HSET", b"h:bigvalue", b"f", &text])],
    );
    let scores = [
        "inf",
        "-inf",
        "0",
        "1.5",
        "-2.25",
        "1e300",
        "0.1",
        "3",
        "-7",
        "123456789012",
    ];
    let zpairs = |items: &[Vec<u8>]| -> Vec<Vec<u8>> {
        items
            .iter()
            .enumerate()
            .flat_map(|(i, m)| [scores[i % scores.len()].as_bytes().to_vec(), m.clone()])
            .collect()
    };
    add("z:small", push_all("ZADD", "z:small", &zpairs(&mixed)));
    let zmany: Vec<Vec<u8>> = many
        .iter()
        .enumerate()
        .flat_map(|(i, m)| [format!("{}", i as f64 / 7.0).into_bytes(), m.clone()])
        .collect();
    add("z:large", push_all("ZADD", "z:large", &zmany));
    add(
        "z:inf",
        vec![cmd(&[
            b"ZADD", b"z:inf", b"inf", b"a", b"-inf", b"b", b"0", b"c",
        ])],
    );
    // Integral scores up to 2^62 are integers in Redis's listpacks, larger ones text.
    add(
        "z:bigscores",
        vec![cmd(&[
            b"ZADD",
            b"z:bigscores",
            b"1152921504606846976",
            b"a",
            b"-4611686018427387904",
            b"b",
            b"9223372036854775808",
            b"c",
            b"15000000000000000",
            b"d",
            b"4503599627370497",
            b"e",
        ])],
    );
    all
}

/// Evicts everything from kvtier's cache by writing filler past `maxmemory` (so reads come
/// from the disk store).
fn churn(c: &mut Client) {
    let filler = "x".repeat(20_000);
    for i in 0..120 {
        c.cmd(&["SET", &format!("filler:{i}"), &filler]);
    }
}

#[test]
fn every_type_round_trips_through_dump_del_restore() {
    let s = server();
    let mut c = s.client();
    let fx = fixtures();
    for (_, cmds) in &fx {
        run(&mut c, cmds);
    }
    let mut dumps = Vec::new();
    for (key, _) in &fx {
        let before = read_back(&mut c, key);
        let payload = bulk(c.cmd(&["DUMP", key]));
        dumps.push((key.clone(), before, payload));
    }
    churn(&mut c);
    for (key, _, payload) in &dumps {
        assert_eq!(c.cmd(&["DEL", key]), Resp::Int(1));
        let r = c.cmd_bytes(&[b"RESTORE", key.as_bytes(), b"0", payload]);
        assert_eq!(r, Resp::ok(), "{key}");
    }
    churn(&mut c);
    for (key, before, payload) in &dumps {
        assert_same(&read_back(&mut c, key), before, key);
        assert_eq!(c.cmd(&["TTL", key]), Resp::Int(-1));
        // A value read back from disk dumps to the same bytes (sets and hashes may differ in
        // order, so only their contents are compared, above).
        let again = bulk(c.cmd(&["DUMP", key]));
        // Sets other than intsets have no order of their own; hashes keep insertion order.
        let unordered = key.starts_with("st:") && key != "st:intset";
        if !unordered {
            assert_same(&again, payload, key);
        }
    }
    assert_eq!(c.cmd(&["DUMP", "nosuchkey"]), Resp::Nil);
}

#[test]
fn small_hashes_keep_insertion_order() {
    let s = server();
    let mut c = s.client();
    for (_, cmds) in fixtures().iter().filter(|(k, _)| k == "h:edited") {
        run(&mut c, cmds);
    }
    let want = Resp::bulks(&["f1", "one", "f3", "3", "f4", "4", "f5", "5"]);
    assert_eq!(c.cmd(&["HGETALL", "h:edited"]), want);
    let p = bulk(c.cmd(&["DUMP", "h:edited"]));
    churn(&mut c);
    assert_eq!(c.cmd(&["HGETALL", "h:edited"]), want);
    let r = c.cmd_bytes(&[b"RESTORE", b"copy", b"0", &p]);
    assert_eq!(r, Resp::ok());
    assert_eq!(c.cmd(&["HGETALL", "copy"]), want);
    assert_eq!(
        c.cmd(&["HKEYS", "copy"]),
        Resp::bulks(&["f1", "f3", "f4", "f5"])
    );
}

#[test]
fn restore_options_ttl_replace_busykey() {
    let s = server();
    let mut c = s.client();
    c.cmd(&["SET", "src", "value"]);
    let p = bulk(c.cmd(&["DUMP", "src"]));
    let restore = |c: &mut Client, args: &[&str]| {
        let mut v: Vec<&[u8]> = vec![b"RESTORE", args[0].as_bytes(), args[1].as_bytes(), &p];
        v.extend(args[2..].iter().map(|a| a.as_bytes()));
        c.cmd_bytes(&v)
    };
    assert_eq!(
        restore(&mut c, &["src", "0"]),
        Resp::err("BUSYKEY Target key name already exists.")
    );
    assert_eq!(restore(&mut c, &["src", "0", "REPLACE"]), Resp::ok());
    // Relative TTL in milliseconds.
    assert_eq!(restore(&mut c, &["k1", "100000"]), Resp::ok());
    let pttl = c.cmd(&["PTTL", "k1"]).as_int();
    assert!((90_000..=100_000).contains(&pttl), "{pttl}");
    assert_eq!(c.cmd(&["GET", "k1"]), Resp::bulk("value"));
    // ABSTTL: an absolute Unix time in milliseconds.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let at = (now_ms + 200_000).to_string();
    assert_eq!(restore(&mut c, &["k2", &at, "ABSTTL"]), Resp::ok());
    assert_eq!(c.cmd(&["PEXPIRETIME", "k2"]), Resp::Int(now_ms + 200_000));
    // An absolute time in the past: OK, and no key (an old one under REPLACE is deleted).
    assert_eq!(restore(&mut c, &["k3", "1", "ABSTTL"]), Resp::ok());
    assert_eq!(c.cmd(&["EXISTS", "k3"]), Resp::Int(0));
    assert_eq!(
        restore(&mut c, &["k2", "1", "ABSTTL", "REPLACE"]),
        Resp::ok()
    );
    assert_eq!(c.cmd(&["EXISTS", "k2"]), Resp::Int(0));
    // A relative TTL that overflows leaves the key already expired, as in Redis.
    assert_eq!(restore(&mut c, &["k3", "9223372036854775807"]), Resp::ok());
    assert_eq!(c.cmd(&["EXISTS", "k3"]), Resp::Int(0));
    // IDLETIME / FREQ are accepted within range, and exclude each other.
    assert_eq!(
        restore(&mut c, &["k4", "0", "IDLETIME", "1000"]),
        Resp::ok()
    );
    assert_eq!(restore(&mut c, &["k5", "0", "FREQ", "255"]), Resp::ok());
    assert_eq!(c.cmd(&["GET", "k5"]), Resp::bulk("value"));
    let errors: &[(&[&str], &str)] = &[
        (&["k6", "-1"], "ERR Invalid TTL value, must be >= 0"),
        (&["k6", "x"], "ERR value is not an integer or out of range"),
        (
            &["k6", "0", "IDLETIME", "-1"],
            "ERR Invalid IDLETIME value, must be >= 0",
        ),
        (
            &["k6", "0", "IDLETIME", "x"],
            "ERR value is not an integer or out of range",
        ),
        (
            &["k6", "0", "FREQ", "256"],
            "ERR Invalid FREQ value, must be >= 0 and <= 255",
        ),
        (
            &["k6", "0", "FREQ", "-1"],
            "ERR Invalid FREQ value, must be >= 0 and <= 255",
        ),
        (
            &["k6", "0", "FREQ", "1", "IDLETIME", "1"],
            "ERR syntax error",
        ),
        (
            &["k6", "0", "IDLETIME", "1", "FREQ", "1"],
            "ERR syntax error",
        ),
        (&["k6", "0", "IDLETIME"], "ERR syntax error"),
        (&["k6", "0", "BOGUS"], "ERR syntax error"),
        // Options are checked before the key, the key before the TTL.
        (&["src", "-1", "BOGUS"], "ERR syntax error"),
        (&["src", "-1"], "BUSYKEY Target key name already exists."),
    ];
    for (args, want) in errors {
        assert_eq!(restore(&mut c, args), Resp::err(want), "{args:?}");
    }
    assert_eq!(c.cmd(&["EXISTS", "k6"]), Resp::Int(0));
    assert_eq!(
        c.cmd(&["RESTORE", "k6", "0"]),
        Resp::err("ERR wrong number of arguments for 'restore' command")
    );
    assert_eq!(
        c.cmd(&["DUMP"]),
        Resp::err("ERR wrong number of arguments for 'dump' command")
    );
    // RESTORE-ASKING is RESTORE outside a cluster.
    let r = c.cmd_bytes(&[b"RESTORE-ASKING", b"k7", b"0", &p]);
    assert_eq!(r, Resp::ok());
    // A restored key is written through to disk like any other.
    churn(&mut c);
    assert_eq!(c.cmd(&["GET", "k7"]), Resp::bulk("value"));
    assert_eq!(c.cmd(&["GET", "k1"]), Resp::bulk("value"));
}

#[test]
fn hostile_payloads_are_refused_and_the_server_stays_up() {
    let s = server();
    let mut c = s.client();
    c.cmd(&["RPUSH", "l", "a", "b", "c"]);
    let good = bulk(c.cmd(&["DUMP", "l"]));
    let mut tries: Vec<(Vec<u8>, &str)> = vec![
        (Vec::new(), CHECKSUM),
        (b"short".to_vec(), CHECKSUM),
        (good[..good.len() - 1].to_vec(), CHECKSUM),
    ];
    let mut flipped = good.clone();
    flipped[3] ^= 0x40;
    tries.push((flipped, CHECKSUM));
    let mut newer = good[..good.len() - 10].to_vec();
    newer.extend_from_slice(&11u16.to_le_bytes());
    let crc = crc64(&newer);
    newer.extend_from_slice(&crc.to_le_bytes());
    tries.push((newer, CHECKSUM));
    // Correct footers over broken bodies.
    let body = &good[..good.len() - 10];
    for cut in 0..body.len() {
        tries.push((seal(&body[..cut]), BAD_FORMAT));
    }
    let huge64 = [0x81, 0, 0, 1, 0, 0, 0, 0, 0];
    for t in [0u8, 1, 2, 3, 4, 5, 14, 18] {
        let mut b = vec![t];
        b.extend_from_slice(&huge64);
        b.extend_from_slice(b"abc");
        tries.push((seal(&b), BAD_FORMAT));
        tries.push((
            seal(&[t, 0x80, 0xff, 0xff, 0xff, 0xff, 1, b'a']),
            BAD_FORMAT,
        ));
    }
    // LZF claiming 2^40 bytes; a stream, a module value, a 7.2 listpack set; empty list.
    tries.push((
        seal(&[0, 0xC3, 2, 0x81, 0, 0, 1, 0, 0, 0, 0, 0, 0, b'a']),
        BAD_FORMAT,
    ));
    for t in [7u8, 15, 19, 20, 21] {
        tries.push((seal(&[t, 1, b'a']), BAD_FORMAT));
    }
    tries.push((seal(&[18, 0]), BAD_FORMAT));
    for (payload, want) in &tries {
        let r = c.cmd_bytes(&[b"RESTORE", b"target", b"0", payload]);
        assert_eq!(r, Resp::err(want), "{payload:?}");
    }
    assert_eq!(c.cmd(&["EXISTS", "target"]), Resp::Int(0));
    // A hand-sealed good body restores (the test's CRC agrees with the server's).
    let r = c.cmd_bytes(&[b"RESTORE", b"target", b"0", &seal(body)]);
    assert_eq!(r, Resp::ok());
    assert_eq!(
        c.cmd(&["LRANGE", "target", "0", "-1"]),
        Resp::bulks(&["a", "b", "c"])
    );
    assert_eq!(c.cmd(&["PING"]), Resp::Simple("PONG".into()));
}

// ---------------------------------------------------------------------------------------------
// Crossed with a real redis-server
// ---------------------------------------------------------------------------------------------

/// A redis-server child on its own port and directory; killed on drop.
struct Redis {
    port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_redis() -> Option<Redis> {
    let Some(bin) = kvtier_tests::redis_binary() else {
        eprintln!("WARNING: redis-server not found: DUMP/RESTORE not crossed with Redis");
        return None;
    };
    for _ in 0..5 {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let child = Command::new(&bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let mut r = Redis {
            port,
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = r.child.try_wait() {
                break; // lost the port: try another
            }
            // Our own server: the port may have been taken by another test's.
            if kvtier_tests::connect_when_ready(port, r.child.id(), Duration::from_millis(100))
                .is_some()
            {
                return Some(r);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("redis-server did not start");
}

/// Encoding settings under which to cross: Redis's defaults; every small-encoding threshold
/// at its minimum (so Redis writes plain sets, hashes and ZSET_2, and one-element list nodes);
/// small value limits with 4 KiB list nodes, compressed inside.
const SETTINGS: &[&[(&str, &str)]] = &[
    &[],
    &[
        ("hash-max-listpack-entries", "0"),
        ("zset-max-listpack-entries", "0"),
        ("set-max-intset-entries", "0"),
        ("list-max-listpack-size", "1"),
    ],
    &[
        ("hash-max-listpack-value", "4"),
        ("zset-max-listpack-value", "4"),
        ("list-max-listpack-size", "-1"),
        // Interior quicklist nodes LZF-compressed (Redis DUMPs them so).
        ("list-compress-depth", "1"),
    ],
];

#[test]
fn crossed_with_redis_both_ways() {
    let Some(redis) = start_redis() else {
        return;
    };
    let mut rc = Client::connect(redis.port);
    let kv = server();
    let mut kc = kv.client();
    assert!(rc
        .cmd(&["INFO", "server"])
        .as_str()
        .contains("redis_version:7.0"));
    let fx = fixtures();
    for settings in SETTINGS {
        for (name, value) in *settings {
            assert_eq!(rc.cmd(&["CONFIG", "SET", name, value]), Resp::ok());
            assert_eq!(kc.cmd(&["CONFIG", "SET", name, value]), Resp::ok());
        }
        rc.cmd(&["FLUSHALL"]);
        kc.cmd(&["FLUSHALL"]);
        for (_, cmds) in &fx {
            run(&mut rc, cmds);
        }
        let mut from_redis = Vec::new();
        for (key, _) in &fx {
            let want = read_back(&mut rc, key);
            let enc = rc.cmd(&["OBJECT", "ENCODING", key]).as_str();
            from_redis.push((key.clone(), want, enc, bulk(rc.cmd(&["DUMP", key]))));
        }
        // Redis → kvtier.
        for (key, want, _, payload) in &from_redis {
            let r = kc.cmd_bytes(&[b"RESTORE", key.as_bytes(), b"0", payload]);
            assert_eq!(r, Resp::ok(), "{key} {settings:?}");
            assert_same(
                &read_back(&mut kc, key),
                want,
                &format!("{key} {settings:?}"),
            );
        }
        churn(&mut kc);
        // kvtier → Redis, under a new name, from values that went through kvtier's disk.
        for (key, want, enc, redis_payload) in &from_redis {
            assert_same(
                &read_back(&mut kc, key),
                want,
                &format!("{key} {settings:?}"),
            );
            assert_eq!(&kc.cmd(&["OBJECT", "ENCODING", key]).as_str(), enc, "{key}");
            let payload = bulk(kc.cmd(&["DUMP", key]));
            let copy = format!("{key}:from-kvtier");
            let r = rc.cmd_bytes(&[b"RESTORE", copy.as_bytes(), b"0", &payload]);
            assert_eq!(r, Resp::ok(), "{key} {settings:?}");
            assert_same(
                &read_back(&mut rc, &copy),
                want,
                &format!("{key} {settings:?}"),
            );
            // Where the order of elements is Redis's own (strings, lists built at the tail,
            // intsets, sorted sets, listpack hashes in insertion order), kvtier's DUMP is
            // Redis's, byte for byte.
            let ordered = key.starts_with("s:")
                || key.starts_with("z:")
                || (key == "st:intset" && enc == "intset")
                || (key.starts_with("h:") && enc == "listpack")
                || key == "h:bigvalue"
                || (key.starts_with("l:") && key != "l:lpush");
            if ordered {
                assert_same(
                    &payload,
                    redis_payload,
                    &format!("DUMP bytes of {key} {settings:?}"),
                );
            }
        }
    }
}

#[test]
fn command_info_as_redis() {
    let s = server();
    let mut c = s.client();
    let strs = |r: &Resp| match r {
        Resp::Array(v) | Resp::Set(v) => v.iter().map(Resp::as_str).collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    let want: &[(&str, i64, &[&str], &[&str])] = &[
        ("dump", 2, &["readonly"], &["@keyspace", "@read", "@slow"]),
        (
            "restore",
            -4,
            &["write", "denyoom"],
            &["@keyspace", "@write", "@slow", "@dangerous"],
        ),
        (
            "restore-asking",
            -4,
            &["write", "denyoom"],
            &["@keyspace", "@write", "@slow", "@dangerous"],
        ),
    ];
    for (name, arity, flags, cats) in want {
        let Resp::Array(v) = c.cmd(&["COMMAND", "INFO", name]) else {
            panic!("no COMMAND INFO for {name}")
        };
        let Resp::Array(f) = &v[0] else {
            panic!("{name}: {v:?}")
        };
        assert_eq!(f[1], Resp::Int(*arity), "{name}");
        assert_eq!(strs(&f[2]), *flags, "{name}");
        assert_eq!(
            &f[3..6],
            &[Resp::Int(1), Resp::Int(1), Resp::Int(1)],
            "{name}"
        );
        assert_eq!(strs(&f[6]), *cats, "{name}");
    }
}

// ---------------------------------------------------------------------------------------------
// Older encodings (Redis 6 and before), built here by an encoder of the test's own
// ---------------------------------------------------------------------------------------------

/// An RDB length.
fn rdb_len(n: usize) -> Vec<u8> {
    match n {
        0..=63 => vec![n as u8],
        64..=16383 => vec![0x40 | (n >> 8) as u8, n as u8],
        _ => {
            let mut v = vec![0x80];
            v.extend_from_slice(&(n as u32).to_be_bytes());
            v
        }
    }
}

/// An RDB string, always plain.
fn rdb_str(s: &[u8]) -> Vec<u8> {
    let mut v = rdb_len(s.len());
    v.extend_from_slice(s);
    v
}

/// A ziplist as Redis 6 builds it: every integer and string encoding, 1- and 5-byte
/// previous-length fields.
fn ziplist(items: &[Vec<u8>]) -> Vec<u8> {
    let mut body = Vec::new();
    let (mut prev, mut tail) = (0usize, 10usize);
    for it in items {
        tail = 10 + body.len();
        let start = body.len();
        if prev < 254 {
            body.push(prev as u8);
        } else {
            body.push(0xFE);
            body.extend_from_slice(&(prev as u32).to_le_bytes());
        }
        let int = std::str::from_utf8(it)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .filter(|n| n.to_string().as_bytes() == it.as_slice());
        match int {
            Some(n @ 0..=12) => body.push(0xF1 + n as u8),
            Some(n) if i8::try_from(n).is_ok() => body.extend_from_slice(&[0xFE, n as u8]),
            Some(n) if i16::try_from(n).is_ok() => {
                body.push(0xC0);
                body.extend_from_slice(&(n as i16).to_le_bytes());
            }
            Some(n) if (-(1 << 23)..1 << 23).contains(&n) => {
                body.push(0xF0);
                body.extend_from_slice(&(n as i32).to_le_bytes()[..3]);
            }
            Some(n) if i32::try_from(n).is_ok() => {
                body.push(0xD0);
                body.extend_from_slice(&(n as i32).to_le_bytes());
            }
            Some(n) => {
                body.push(0xE0);
                body.extend_from_slice(&n.to_le_bytes());
            }
            None if it.len() <= 63 => body.push(it.len() as u8),
            None if it.len() <= 16383 => {
                body.extend_from_slice(&[0x40 | (it.len() >> 8) as u8, it.len() as u8])
            }
            None => {
                body.push(0x80);
                body.extend_from_slice(&(it.len() as u32).to_be_bytes());
            }
        }
        if int.is_none() {
            body.extend_from_slice(it);
        }
        prev = body.len() - start;
    }
    let mut zl = Vec::new();
    zl.extend_from_slice(&((11 + body.len()) as u32).to_le_bytes());
    zl.extend_from_slice(&(tail as u32).to_le_bytes());
    zl.extend_from_slice(&(items.len().min(65535) as u16).to_le_bytes());
    zl.extend_from_slice(&body);
    zl.push(0xFF);
    zl
}

/// A payload as Redis 6 seals it (RDB version 9).
fn seal9(body: &[u8]) -> Vec<u8> {
    let mut p = body.to_vec();
    p.extend_from_slice(&9u16.to_le_bytes());
    let crc = crc64(&p);
    p.extend_from_slice(&crc.to_le_bytes());
    p
}

fn old_payloads() -> Vec<(&'static str, Vec<u8>)> {
    let items: Vec<Vec<u8>> = [
        "0",
        "12",
        "13",
        "-1",
        "127",
        "-128",
        "300",
        "-32768",
        "8388607",
        "-8388608",
        "2147483647",
        "-2147483648",
        "9223372036854775807",
        "007",
        "-0",
        "",
        "a",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .chain([vec![b'x'; 300], vec![7u8; 20_000], (0..=255u8).collect()])
    .collect();
    let zl = ziplist(&items);
    let mut out = Vec::new();
    let typed = |t: u8, parts: &[Vec<u8>]| {
        let mut b = vec![t];
        parts.iter().for_each(|p| b.extend_from_slice(p));
        seal9(&b)
    };
    out.push(("list-ziplist", typed(10, &[rdb_str(&zl)])));
    let node2 = ziplist(&[b"tail".to_vec()]);
    out.push((
        "list-quicklist",
        typed(14, &[rdb_len(2), rdb_str(&zl), rdb_str(&node2)]),
    ));
    let mut linked = vec![rdb_len(items.len())];
    linked.extend(items.iter().map(|i| rdb_str(i)));
    out.push(("list-linked", typed(1, &linked)));
    let pairs: Vec<Vec<u8>> = items
        .iter()
        .enumerate()
        .flat_map(|(i, it)| [it.clone(), format!("v{i}").into_bytes()])
        .collect();
    out.push(("hash-ziplist", typed(13, &[rdb_str(&ziplist(&pairs))])));
    let scored: Vec<Vec<u8>> = items
        .iter()
        .enumerate()
        .flat_map(|(i, it)| {
            // A ziplist sorted set is stored in score order (Redis loads it as is).
            let score = match i {
                0 => "-inf".to_string(),
                _ if i == items.len() - 1 => "inf".to_string(),
                _ => format!("{}", (i as f64 - 5.0) * 1.5),
            };
            [it.clone(), score.into_bytes()]
        })
        .collect();
    out.push(("zset-ziplist", typed(12, &[rdb_str(&ziplist(&scored))])));
    let mut old_zset = vec![rdb_len(4)];
    for (m, s) in [
        ("a", &b"\x031.5"[..]),
        ("b", b"\xfe"),
        ("c", b"\xff"),
        ("d", b"\x02-7"),
    ] {
        old_zset.push(rdb_str(m.as_bytes()));
        old_zset.push(s.to_vec());
    }
    out.push(("zset-old", typed(3, &old_zset)));
    for (name, width, values) in [
        ("intset-16", 2u32, &[-5i64, 7, 300][..]),
        ("intset-32", 4, &[-70000, 1, 2_000_000_000]),
        ("intset-64", 8, &[i64::MIN, 0, i64::MAX]),
    ] {
        let mut blob = width.to_le_bytes().to_vec();
        blob.extend_from_slice(&(values.len() as u32).to_le_bytes());
        for v in values {
            blob.extend_from_slice(&v.to_le_bytes()[..width as usize]);
        }
        out.push((name, typed(11, &[rdb_str(&blob)])));
    }
    out
}

#[test]
fn older_encodings_restore_as_in_redis() {
    let kv = server();
    let mut kc = kv.client();
    let redis = start_redis();
    let mut rc = redis.as_ref().map(|r| Client::connect(r.port));
    for (name, payload) in old_payloads() {
        let r = kc.cmd_bytes(&[b"RESTORE", name.as_bytes(), b"0", &payload]);
        assert_eq!(r, Resp::ok(), "{name}");
        let got = read_back(&mut kc, name);
        assert_ne!(got.1, Resp::Nil, "{name}");
        if let Some(rc) = rc.as_mut() {
            let r = rc.cmd_bytes(&[b"RESTORE", name.as_bytes(), b"0", &payload]);
            assert_eq!(r, Resp::ok(), "redis: {name}");
            // (Not assert_eq: the values are large.)
            assert!(read_back(rc, name) == got, "{name} differs from Redis");
        }
    }
    churn(&mut kc);
    for (name, _) in old_payloads() {
        let got = read_back(&mut kc, name);
        if let Some(rc) = rc.as_mut() {
            assert!(read_back(rc, name) == got, "{name} differs after the disk");
        }
    }
}
