//! Hostile input against the real binary: random valid-shaped commands with garbage
//! arguments, mutated raw byte streams, path-like and huge key names, large values. The
//! server must stay up, answer PING after every batch, keep its data directory to itself and
//! read everything back after a restart.
//!
//! `KVTIER_DISPATCH_CASES` (default 3000) sets how many random commands the dispatch fuzz
//! sends, `KVTIER_FUZZ_SEED` its seed; `KVTIER_LARGE_VALUE_MB` (default 64) the large value's
//! size (512 is Redis's limit: run it by hand, it needs about 2 GB of RAM).

use kvtier_tests::{Client, Resp, Server};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::time::Duration;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Commands not sent by the dispatch fuzz: they would end the connection or the server,
/// change its settings or users, block, or change the reply protocol (one reply per request
/// is how the fuzz reads).
const EXCLUDED: &[&str] = &[
    "shutdown",
    "debug",
    "monitor",
    "subscribe",
    "psubscribe",
    "ssubscribe",
    "quit",
    "client",
    "config",
    "acl",
    "sync",
    "psync",
    "replicaof",
    "slaveof",
    "failover",
    "wait",
    "blpop",
    "brpop",
    "blmove",
    "brpoplpush",
    "blmpop",
    "bzpopmin",
    "bzpopmax",
    "bzmpop",
    "xread",
    "xreadgroup",
    "auth",
    "hello",
    "module",
    "cluster",
    "save",
    "bgsave",
    "bgrewriteaof",
];

const WORDS: &[&str] = &[
    "EX",
    "PX",
    "EXAT",
    "NX",
    "XX",
    "GT",
    "LT",
    "KEEPTTL",
    "GET",
    "WITHSCORES",
    "LIMIT",
    "COUNT",
    "MATCH",
    "TYPE",
    "BY",
    "STORE",
    "ASC",
    "DESC",
    "ALPHA",
    "WEIGHTS",
    "AGGREGATE",
    "SUM",
    "MIN",
    "MAX",
    "BEFORE",
    "AFTER",
    "LEFT",
    "RIGHT",
    "REV",
    "BYSCORE",
    "BYLEX",
    "IDX",
    "LEN",
    "MINMATCHLEN",
    "WITHMATCHLEN",
    "REPLACE",
    "DB",
    "ABSTTL",
    "IDLETIME",
    "FREQ",
    "ENCODING",
    "FLUSH",
    "LOAD",
    "SYNC",
    "ASYNC",
    "RANK",
    "MAXLEN",
    "CH",
    "INCR",
    "BIT",
    "BYTE",
    "OVERFLOW",
    "WRAP",
    "SAT",
    "FAIL",
    "u8",
    "i64",
    "#1",
    "WITHVALUES",
    "NOMKSTREAM",
    "-inf",
    "+inf",
    "(1",
    "[a",
    "-",
    "+",
    "*",
    "0",
    "-1",
    "1",
    "9223372036854775807",
    "-9223372036854775808",
    "-9223372036854775807",
    "-2147483648",
    "4294967296",
    "-134217729",
    "18446744073709551616",
    "1e308",
    "nan",
    "3.14",
    "0x10",
    "",
];

fn random_arg(rng: &mut StdRng) -> Vec<u8> {
    match rng.random_range(0..10) {
        0..=3 => format!("k{}", rng.random_range(0..12)).into_bytes(),
        4..=6 => WORDS[rng.random_range(0..WORDS.len())].as_bytes().to_vec(),
        7 => rng.random_range(-1000i64..1000).to_string().into_bytes(),
        8 => (0..rng.random_range(0..40)).map(|_| rng.random()).collect(),
        _ => {
            // Scripts, patterns and payloads with some structure.
            let pieces: &[&[u8]] = &[
                b"return 1",
                b"return redis.call('get', KEYS[1])",
                b"return redis.call('set', KEYS[1], ARGV[1])",
                b"return {1, 'a', {2}}",
                b"error(",
                b"*[a-",
                b"h?llo\\",
                b"\x00\x0b\x07\x00\x01",
            ];
            pieces[rng.random_range(0..pieces.len())].to_vec()
        }
    }
}

/// The command table as COMMAND reports it: (name, arity), minus the excluded commands.
fn command_table(c: &mut Client) -> Vec<(String, i64)> {
    let Resp::Array(infos) = c.cmd(&["COMMAND"]) else {
        panic!("COMMAND is not an array")
    };
    let mut v: Vec<(String, i64)> = infos
        .iter()
        .filter_map(|i| match i {
            Resp::Array(f) if f.len() >= 2 => Some((f[0].as_str(), f[1].as_int())),
            _ => None,
        })
        .filter(|(n, _)| !EXCLUDED.contains(&n.as_str()))
        .collect();
    v.sort();
    v
}

fn assert_alive(s: &Server, context: &str) {
    let mut c = s.client();
    c.set_timeout(Duration::from_secs(30));
    match c.try_read_after(&["PING"]) {
        Ok(Resp::Simple(p)) if p == "PONG" => {}
        other => panic!("server not answering PING after {context}: {other:?}"),
    }
}

trait PingAfter {
    fn try_read_after(&mut self, cmd: &[&str]) -> std::io::Result<Resp>;
}

impl PingAfter for Client {
    fn try_read_after(&mut self, cmd: &[&str]) -> std::io::Result<Resp> {
        self.send(cmd);
        self.try_read()
    }
}

#[test]
fn dispatch_fuzz_random_commands_keep_the_server_up() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut s = Server::start_in(&dir, &["--maxmemory", "2mb"]);
    let cases = env_u64("KVTIER_DISPATCH_CASES", 3000);
    let mut restarted = false;
    let (mut ok_replies, mut error_replies) = (0u64, 0u64);
    let seed = env_u64("KVTIER_FUZZ_SEED", 17);
    let mut rng = StdRng::seed_from_u64(seed);
    let names = command_table(&mut s.client());
    assert!(names.len() > 150, "too few commands: {}", names.len());
    let batch = 50;
    let mut sent = 0;
    while sent < cases {
        let mut c = s.client();
        c.set_timeout(Duration::from_secs(30));
        let mut requests = Vec::new();
        for _ in 0..batch {
            let (name, arity) = &names[rng.random_range(0..names.len())];
            let mut args: Vec<Vec<u8>> = vec![name.clone().into_bytes()];
            if rng.random_bool(0.5) {
                // A subcommand-looking first argument for containers.
                args.push(
                    [
                        "GET", "HELP", "LIST", "INFO", "ENCODING", "FLUSH", "KILL", "LOAD", "STATS",
                    ][rng.random_range(0..9)]
                    .as_bytes()
                    .to_vec(),
                );
            }
            // Mostly as many arguments as the command's arity asks for (valid-shaped), else any.
            let wanted = match *arity {
                a if a > 0 && rng.random_bool(0.8) => a as usize,
                a if a < 0 && rng.random_bool(0.8) => -a as usize + rng.random_range(0..4),
                _ => rng.random_range(1..8),
            };
            if args.len() > wanted {
                args.truncate(wanted.max(1));
            }
            while args.len() < wanted {
                args.push(random_arg(&mut rng));
            }
            let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            c.send_bytes(&refs);
            requests.push(args);
        }
        for (i, req) in requests.iter().enumerate() {
            let reply = c.try_read();
            match &reply {
                Ok(Resp::Error(_)) => error_replies += 1,
                Ok(_) => ok_replies += 1,
                Err(_) => {}
            }
            if let Err(e) = reply {
                let shown: Vec<String> = requests
                    .iter()
                    .map(|r| {
                        r.iter()
                            .map(|a| format!("{:?}", String::from_utf8_lossy(a)))
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .collect();
                let log =
                    std::fs::read_to_string(kvtier_tests::log_path_for(&s.dir)).unwrap_or_default();
                let tail: Vec<&str> = log
                    .lines()
                    .filter(|l| l.contains("panicked") || l.contains("ERROR"))
                    .collect();
                panic!(
                    "no reply to request {i} {:?} (seed {seed}, after {sent} commands): {e}\n\
                     batch:\n{}\nserver log (panics, errors):\n{}",
                    String::from_utf8_lossy(&req[0]),
                    shown.join("\n"),
                    tail.join("\n")
                );
            }
        }
        sent += batch;
        assert_alive(&s, &format!("{sent} random commands (seed {seed})"));
        if !restarted && sent >= cases / 2 {
            // The second half runs over a cold cache: commands park on keys only on disk.
            restarted = true;
            assert!(s.shutdown(), "clean shutdown");
            s = Server::start_in(&dir, &["--maxmemory", "2mb"]);
        }
    }
    eprintln!(
        "dispatch fuzz: {sent} commands (seed {seed}), {ok_replies} replies, \
         {error_replies} errors"
    );
    assert_eq!(ok_replies + error_replies, sent);
}

fn mutate(rng: &mut StdRng, mut data: Vec<u8>) -> Vec<u8> {
    for _ in 0..rng.random_range(1..4) {
        let len = data.len();
        match rng.random_range(0..5) {
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                data[i] ^= 1 << rng.random_range(0..8);
            }
            1 if len > 0 => data.truncate(rng.random_range(0..len)),
            2 => {
                let h = [
                    "*-1\r\n",
                    "$99999999999\r\n",
                    "*2147483648\r\n",
                    "\"",
                    "'",
                    "\0",
                ][rng.random_range(0..6)];
                let at = rng.random_range(0..=len);
                data.splice(at..at, h.bytes());
            }
            3 => data.extend((0..rng.random_range(1..64)).map(|_| rng.random::<u8>())),
            _ => data.extend_from_slice(b"\r\n"),
        }
    }
    data
}

#[test]
fn mutated_byte_streams_never_take_the_server_down() {
    let s = Server::start(&[]);
    let mut rng = StdRng::seed_from_u64(env_u64("KVTIER_FUZZ_SEED", 17));
    let seeds: &[&[u8]] = &[
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n",
        b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
        b"set k \"a b\\x41\" 'c'\r\nget k\r\n",
        b"*4\r\n$4\r\nHSET\r\n$1\r\nh\r\n$1\r\nf\r\n$1\r\nv\r\nPING\r\n",
        b"*1\r\n$5\r\nMULTI\r\n*1\r\n$4\r\nEXEC\r\n",
    ];
    let streams = env_u64("KVTIER_RAW_STREAMS", 400);
    for i in 0..streams {
        let base = seeds[rng.random_range(0..seeds.len())].to_vec();
        let data = mutate(&mut rng, base);
        let mut sock = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let _ = sock.write_all(&data);
        // End of input: the server answers what it could parse and closes.
        let _ = sock.shutdown(Shutdown::Write);
        let mut out = Vec::new();
        let _ = sock.read_to_end(&mut out);
        if i % 50 == 0 {
            assert_alive(
                &s,
                &format!("raw stream {i}: {:?}", String::from_utf8_lossy(&data)),
            );
        }
    }
    assert_alive(&s, "all raw streams");
}

/// Every file under `root`, relative to it.
fn tree(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            out.insert(p.strip_prefix(root).unwrap().display().to_string());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

#[test]
fn path_like_and_huge_keys_stay_inside_the_data_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let dir = root.join("a").join("data");
    std::fs::create_dir_all(&dir).unwrap();
    let big_key = vec![b'K'; 1 << 20];
    let keys: Vec<Vec<u8>> = [
        &b"/"[..],
        b"..",
        b".",
        b"../..",
        b"../../etc/passwd",
        b"../escape",
        b"../../escape2",
        b"/tmp/abs",
        b"a/b/c",
        b"a/../../../b",
        b"\0",
        b"a\0b",
        b"..\0/x",
        b"",
        b" ",
        b"\r\n",
        b"CON",
        b"nul.txt",
        "ключ/🙂".as_bytes(),
    ]
    .iter()
    .map(|k| k.to_vec())
    .chain([big_key.clone()])
    .collect();
    let value_of = |i: usize| format!("value-{i}-{}", "x".repeat(i * 100)).into_bytes();
    let outside_before = tree(&root);
    {
        let mut s = Server::start_in(&dir, &["--maxmemory", "4mb"]);
        let mut c = s.client();
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(
                c.cmd_bytes(&[b"SET", k, &value_of(i)]),
                Resp::ok(),
                "key {i}"
            );
        }
        // Collections under path-like keys too.
        assert_eq!(
            c.cmd_bytes(&[b"HSET", b"../../h", b"../f", b"v"]),
            Resp::Int(1)
        );
        assert!(s.shutdown(), "clean shutdown");
    }
    // Nothing appeared outside the data directory (the log file next to it is the harness's).
    let log_name = kvtier_tests::log_path_for(&dir)
        .strip_prefix(&root)
        .unwrap()
        .display()
        .to_string();
    let outside_after: BTreeSet<String> = tree(&root)
        .into_iter()
        .filter(|p| !p.starts_with("a/data/") && *p != log_name)
        .collect();
    assert_eq!(
        outside_after, outside_before,
        "files created outside the data dir"
    );
    // No file is named after a key anywhere (keys are hashed into file names).
    for p in tree(tmp.path()) {
        for name in ["escape", "escape2", "passwd", "abs", "nul.txt", "CON"] {
            assert!(!p.ends_with(name), "{p} was created");
        }
    }
    // Everything reads back after a restart with a tiny cache (so from disk).
    let s = Server::start_in(&dir, &["--maxmemory", "2mb"]);
    let mut c = s.client();
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(
            c.cmd_bytes(&[b"GET", k]),
            Resp::Bulk(value_of(i)),
            "key {i} after restart"
        );
    }
    assert_eq!(
        c.cmd_bytes(&[b"HGET", b"../../h", b"../f"]),
        Resp::bulk("v")
    );
    assert_eq!(c.cmd(&["DBSIZE"]), Resp::Int(keys.len() as i64 + 1));
    assert_eq!(c.cmd_bytes(&[b"EXISTS", &big_key]), Resp::Int(1));
}

#[test]
fn large_value_round_trips_through_the_store() {
    let mb = env_u64("KVTIER_LARGE_VALUE_MB", 64) as usize;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let value: Vec<u8> = (0..mb << 20).map(|i| (i % 251) as u8).collect();
    let maxmemory = format!("{}mb", mb * 3 + 16);
    {
        let mut s = Server::start_in(&dir, &["--maxmemory", &maxmemory]);
        let mut c = s.client();
        c.set_timeout(Duration::from_secs(300));
        assert_eq!(c.cmd_bytes(&[b"SET", b"big", &value]), Resp::ok());
        assert_eq!(c.cmd(&["STRLEN", "big"]), Resp::Int(value.len() as i64));
        assert!(s.shutdown());
    }
    let s = Server::start_in(&dir, &["--maxmemory", &maxmemory]);
    let mut c = s.client();
    c.set_timeout(Duration::from_secs(300));
    let last = (value.len() - 3).to_string();
    assert_eq!(
        c.cmd(&["GETRANGE", "big", &last, "-1"]),
        Resp::Bulk(value[value.len() - 3..].to_vec())
    );
    let got = c.cmd(&["GET", "big"]);
    assert!(
        got == Resp::Bulk(value),
        "the large value came back different"
    );
    // Past proto-max-bulk-len: refused before anything is read or allocated.
    c.cmd(&["CONFIG", "SET", "proto-max-bulk-len", "1mb"]);
    let mut raw = s.client();
    raw.send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000\r\n");
    assert_eq!(
        String::from_utf8_lossy(&raw.read_to_close()),
        "-ERR Protocol error: invalid bulk length\r\n"
    );
}

/// Dispatch-fuzz crasher (seed 5): a request with too few arguments pipelined behind one
/// parked on a cold key was looked at by the prefetch before its arity check, and indexing
/// its missing arguments killed the server (MOVE k, ZUNIONSTORE, SORT with no key).
#[test]
fn regression_short_requests_behind_a_parked_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    {
        let mut s = Server::start_in(&dir, &[]);
        assert_eq!(s.client().cmd(&["SET", "cold", "v"]), Resp::ok());
        assert!(s.shutdown());
    }
    let s = Server::start_in(&dir, &[]);
    let mut c = s.client();
    // After a restart "cold" is only on disk: GET parks, and the rest is prefetched.
    c.send_raw(
        b"*2\r\n$3\r\nGET\r\n$4\r\ncold\r\n*2\r\n$4\r\nMOVE\r\n$1\r\nk\r\n\
          *1\r\n$11\r\nZUNIONSTORE\r\n*1\r\n$4\r\nSORT\r\n*1\r\n$6\r\nZUNION\r\n",
    );
    assert_eq!(c.read(), Resp::bulk("v"));
    for name in ["move", "zunionstore", "sort", "zunion"] {
        assert_eq!(
            c.read(),
            Resp::err(&format!(
                "ERR wrong number of arguments for '{name}' command"
            ))
        );
    }
    assert_alive(&s, "short requests behind a parked one");
}

/// Draws with repetitions whose reply could never be held (a count of -9223372036854775807):
/// ZRANDMEMBER panicked allocating the picks, HRANDFIELD and SRANDMEMBER grew the reply until
/// memory ran out. Each is now refused as out of range, on one-record and paged values alike;
/// a missing key still answers an empty array, and a large but holdable count still works.
#[test]
fn huge_negative_random_counts_are_refused_not_built() {
    let s = Server::start(&kvtier_tests::paged_args("256", "64", &[]));
    let mut c = s.client();
    let huge = "-9223372036854775807";
    for (key, fill) in [("small", 3), ("big", 300)] {
        for i in 0..fill {
            let m = format!("member-{i}");
            c.cmd(&["HSET", &format!("h-{key}"), &m, "v"]);
            c.cmd(&["SADD", &format!("s-{key}"), &m]);
            c.cmd(&["ZADD", &format!("z-{key}"), &i.to_string(), &m]);
        }
        for (cmd, k) in [
            ("HRANDFIELD", format!("h-{key}")),
            ("SRANDMEMBER", format!("s-{key}")),
            ("ZRANDMEMBER", format!("z-{key}")),
        ] {
            assert_eq!(
                c.cmd(&[cmd, &k, huge]),
                Resp::err("ERR value is out of range"),
                "{cmd} {k}"
            );
            let Resp::Array(drawn) = c.cmd(&[cmd, &k, "-100000"]) else {
                panic!("{cmd} {k} -100000")
            };
            assert_eq!(drawn.len(), 100_000, "{cmd} {k}");
            assert_eq!(c.cmd(&[cmd, "missing", huge]), Resp::Array(vec![]));
        }
    }
    assert_alive(&s, "huge negative random counts");
}
