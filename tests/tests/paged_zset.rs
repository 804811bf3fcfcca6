//! Paged sorted sets against redis-server: kvtier stores every sorted set past 256 bytes that
//! Redis keeps as a skiplist (here past 4 members) as a manifest plus pages of about 64 bytes,
//! in a 1 MB cache flushed at once, so member pages and score segments are split, merged, saved,
//! evicted and loaded back all the time; every reply must still be Redis's.
//!
//! Replies whose order Redis leaves open (a whole ZSCAN) are compared as sorted lists;
//! ZRANDMEMBER, whose picks are random, is checked for membership, count and reply type.
//! Saves, restarts, page deletion and loading ahead are in `paged_zset_store.rs`.

use kvtier_tests::{
    check_random_picks, scan_to_end, seeds, small_pages, sorted_strings as sorted, Client, Pair,
    Resp, SMALL_CACHE,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeSet;
use std::time::Duration;

/// Only a sorted set Redis would keep as a skiplist is paged (a listpack's encoding shows).
const SKIPLISTS: &[&str] = &["--zset-max-listpack-entries", "4"];

/// Sorted sets with mixed scores; `lex` has every score 0 (lex ranges are defined on it).
const KEYS: [&str; 3] = ["z0", "z1", "z2"];
const LEX: &str = "lex";
const GEO: &str = "geo";

fn member(rng: &mut StdRng) -> String {
    match rng.random_range(0..6) {
        0 => format!(
            "{}{}",
            "x".repeat(rng.random_range(0..90)),
            rng.random_range(0..9)
        ),
        1 => rng.random_range(0..50).to_string(),
        _ => format!("member:{}", rng.random_range(0..300)),
    }
}

fn score(rng: &mut StdRng) -> String {
    match rng.random_range(0..10) {
        0 => "-inf".into(),
        1 => "+inf".into(),
        // Never -0 (kvtier, like every Redis command but a few, stores it as 0).
        2 => format!("{:.3}", rng.random_range(-100.0..100.0)).replace("-0.000", "0"),
        3 => "0".into(),
        _ => rng.random_range(-30..30).to_string(),
    }
}

fn bound(rng: &mut StdRng) -> String {
    let s = match rng.random_range(0..8) {
        0 => return "-inf".into(),
        1 => return "+inf".into(),
        _ => rng.random_range(-35..35).to_string(),
    };
    if rng.random_bool(0.3) {
        format!("({s}")
    } else {
        s
    }
}

fn lex_bound(rng: &mut StdRng) -> String {
    match rng.random_range(0..8) {
        0 => "-".into(),
        1 => "+".into(),
        2 => format!("(member:{}", rng.random_range(0..300)),
        _ => format!("[member:{}", rng.random_range(0..300)),
    }
}

fn rank(rng: &mut StdRng) -> String {
    rng.random_range(-60..60).to_string()
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// The members of `key` in Redis (the reference for checking random picks).
fn redis_members(p: &mut Pair, key: &str) -> BTreeSet<String> {
    let (r, _) = p.redis_call(&["ZRANGE", key, "0", "-1"]).unwrap();
    assert!(!matches!(r, Resp::Error(_)), "ZRANGE {key} in Redis: {r:?}");
    sorted(&r).into_iter().collect()
}

/// Every (member, score) a ZSCAN to the end returns, as "member score" strings.
fn scan_all(c: &mut Client, key: &str, pattern: Option<&str>) -> BTreeSet<String> {
    let mut args = vec!["ZSCAN", key, "COUNT", "7"];
    if let Some(p) = pattern {
        args.extend(["MATCH", p]);
    }
    scan_to_end(c, &args)
}

/// ZRANDMEMBER key [count] on both (see `check_random_picks`).
fn check_zrandmember(p: &mut Pair, key: &str, count: Option<i64>, ctx: &str) {
    let all = redis_members(p, key);
    check_random_picks(p, "ZRANDMEMBER", key, count, &all, ctx);
}

fn zadd_args(rng: &mut StdRng, key: &str, lex: bool) -> Vec<String> {
    let mut args = strings(&["ZADD", key]);
    // Flags Redis accepts together (an invalid mix is checked too, rarely).
    match rng.random_range(0..12) {
        0 => args.push("NX".into()),
        1 => args.push("XX".into()),
        2 => args.extend(strings(&["GT", "CH"])),
        3 => args.push("LT".into()),
        4 => args.push("CH".into()),
        5 => args.extend(strings(&["XX", "NX"])),
        _ => {}
    }
    for _ in 0..rng.random_range(1..8) {
        args.push(if lex { "0".into() } else { score(rng) });
        args.push(member(rng));
    }
    args
}

/// Lex ranges only on `lex` (Redis defines them for equal scores only: on mixed scores its
/// answer depends on the skiplist's random levels).
fn ranges(p: &mut Pair, rng: &mut StdRng, key: &str, lex: bool) {
    let ws = |rng: &mut StdRng| rng.random_bool(0.5).then_some("WITHSCORES");
    match rng.random_range(0..9) {
        0 => {
            let mut a = strings(&["ZRANGE", key, &rank(rng), &rank(rng)]);
            a.extend(ws(rng).map(String::from));
            p.check(&a);
        }
        1 => {
            let mut a = strings(&["ZREVRANGE", key, &rank(rng), &rank(rng)]);
            a.extend(ws(rng).map(String::from));
            p.check(&a);
        }
        2 => {
            let mut a = strings(&["ZRANGEBYSCORE", key, &bound(rng), &bound(rng)]);
            a.extend(ws(rng).map(String::from));
            if rng.random_bool(0.4) {
                a.extend(strings(&["LIMIT", &rng.random_range(-1..20).to_string()]));
                a.push(rng.random_range(-1..15).to_string());
            }
            p.check(&a);
        }
        3 => {
            let mut a = strings(&["ZREVRANGEBYSCORE", key, &bound(rng), &bound(rng)]);
            a.extend(ws(rng).map(String::from));
            if rng.random_bool(0.4) {
                a.extend(strings(&[
                    "LIMIT",
                    &rng.random_range(0..20).to_string(),
                    "5",
                ]));
            }
            p.check(&a);
        }
        4 if lex => {
            let cmd = ["ZRANGEBYLEX", "ZREVRANGEBYLEX"][rng.random_range(0..2)];
            let mut a = strings(&[cmd, key, &lex_bound(rng), &lex_bound(rng)]);
            if rng.random_bool(0.4) {
                a.extend(strings(&[
                    "LIMIT",
                    &rng.random_range(0..20).to_string(),
                    "7",
                ]));
            }
            p.check(&a);
        }
        5 => {
            // Unified ZRANGE.
            let rev = rng.random_bool(0.5);
            let mut a = match rng.random_range(0..if lex { 3 } else { 2 }) {
                0 => strings(&["ZRANGE", key, &rank(rng), &rank(rng)]),
                1 => strings(&["ZRANGE", key, &bound(rng), &bound(rng), "BYSCORE"]),
                _ => strings(&["ZRANGE", key, &lex_bound(rng), &lex_bound(rng), "BYLEX"]),
            };
            let by_rank = a.len() == 4;
            if rev {
                a.push("REV".into());
            }
            if !by_rank && rng.random_bool(0.5) {
                a.extend(strings(&[
                    "LIMIT",
                    &rng.random_range(0..10).to_string(),
                    "4",
                ]));
            }
            if !a.iter().any(|x| x == "BYLEX") && rng.random_bool(0.5) {
                a.push("WITHSCORES".into());
            }
            p.check(&a);
        }
        6 => {
            p.check(&["ZCOUNT", key, &bound(rng), &bound(rng)]);
            if lex {
                p.check(&["ZLEXCOUNT", key, &lex_bound(rng), &lex_bound(rng)]);
            }
        }
        7 => {
            let a = match rng.random_range(0..3) {
                0 => strings(&["ZRANGESTORE", "stored", key, &rank(rng), &rank(rng)]),
                1 => strings(&["ZRANGESTORE", "stored", key, &bound(rng), "+inf", "BYSCORE"]),
                _ => strings(&[
                    "ZRANGESTORE",
                    key,
                    key,
                    "0",
                    &rng.random_range(0..40).to_string(),
                ]),
            };
            p.check(&a);
            check_listing(p, &["ZRANGE", "stored", "0", "-1", "WITHSCORES"]);
        }
        _ => {
            let m = member(rng);
            p.check(&["ZRANK", key, &m]);
            p.check(&["ZREVRANK", key, &m]);
            p.check(&["ZSCORE", key, &m]);
        }
    }
}

fn writes(p: &mut Pair, rng: &mut StdRng, key: &str, lex: bool) {
    match rng.random_range(0..10) {
        0..=3 => {
            let a = zadd_args(rng, key, lex);
            p.check(&a);
        }
        4 => {
            let incr = if lex { "0".to_string() } else { score(rng) };
            p.check(&["ZINCRBY", key, &incr, &member(rng)]);
            if !lex {
                p.check(&["ZADD", key, "INCR", &score(rng), &member(rng)]);
            }
        }
        5 => {
            let mut a = strings(&["ZREM", key]);
            for _ in 0..rng.random_range(1..6) {
                a.push(member(rng));
            }
            p.check(&a);
        }
        6 => {
            let cmd = ["ZPOPMIN", "ZPOPMAX"][rng.random_range(0..2)];
            match rng.random_range(0..3) {
                0 => p.check(&[cmd, key]),
                _ => p.check(&[cmd, key, &rng.random_range(0..6).to_string()]),
            };
        }
        7 => {
            let side = ["MIN", "MAX"][rng.random_range(0..2)];
            match rng.random_range(0..4) {
                0 => p.check(&["ZMPOP", "2", "nokey", key, side, "COUNT", "3"]),
                1 => p.check(&["BZMPOP", "0.01", "1", key, side]),
                2 => p.check(&["BZPOPMIN", "nokey", key, "0.01"]),
                _ => p.check(&["BZPOPMAX", key, "0.01"]),
            };
        }
        8 => {
            match rng.random_range(0..3) {
                0 => p.check(&["ZREMRANGEBYRANK", key, &rank(rng), &rank(rng)]),
                1 => p.check(&["ZREMRANGEBYSCORE", key, &bound(rng), &bound(rng)]),
                _ if !lex => p.check(&["ZREMRANGEBYSCORE", key, &bound(rng), "+inf"]),
                _ => p.check(&["ZREMRANGEBYLEX", key, &lex_bound(rng), &lex_bound(rng)]),
            };
        }
        _ => {
            // Many at once: a set crosses the paging threshold inside one command.
            let mut a = strings(&["ZADD", key]);
            for _ in 0..30 {
                a.push(if lex { "0".into() } else { score(rng) });
                a.push(member(rng));
            }
            p.check(&a);
        }
    }
}

fn geo(p: &mut Pair, rng: &mut StdRng) {
    match rng.random_range(0..6) {
        0 | 1 => {
            let mut a = strings(&["GEOADD", GEO]);
            match rng.random_range(0..5) {
                0 => a.push("NX".into()),
                1 => a.extend(strings(&["XX", "CH"])),
                2 => a.push("CH".into()),
                _ => {}
            }
            for _ in 0..rng.random_range(1..10) {
                a.push(format!("{:.4}", rng.random_range(-20.0..20.0)));
                a.push(format!("{:.4}", rng.random_range(30.0..60.0)));
                a.push(format!("place:{}", rng.random_range(0..200)));
            }
            p.check(&a);
        }
        2 => {
            let (a, b) = (rng.random_range(0..200), rng.random_range(0..200));
            p.check(&[
                "GEODIST",
                GEO,
                &format!("place:{a}"),
                &format!("place:{b}"),
                "km",
            ]);
            p.check(&["GEOPOS", GEO, &format!("place:{a}"), "nope"]);
            p.check(&["GEOHASH", GEO, &format!("place:{b}")]);
        }
        3 => {
            let r = rng.random_range(100..2000).to_string();
            p.check(&[
                "GEOSEARCH",
                GEO,
                "FROMLONLAT",
                "0",
                "45",
                "BYRADIUS",
                &r,
                "km",
                "ASC",
                "WITHDIST",
            ]);
            p.check(&["GEORADIUS", GEO, "5", "40", &r, "km", "COUNT", "5", "DESC"]);
        }
        4 => {
            let m = format!("place:{}", rng.random_range(0..200));
            p.check(&[
                "GEOSEARCH",
                GEO,
                "FROMMEMBER",
                &m,
                "BYBOX",
                "900",
                "900",
                "km",
                "ASC",
                "WITHCOORD",
            ]);
            p.check(&[
                "GEOSEARCHSTORE",
                "gdst",
                GEO,
                "FROMLONLAT",
                "0",
                "45",
                "BYRADIUS",
                "800",
                "km",
                "STOREDIST",
            ]);
            p.check(&["ZRANGE", "gdst", "0", "-1", "WITHSCORES"]);
        }
        _ => {
            p.check(&["ZCARD", GEO]);
            p.check(&["ZREM", GEO, &format!("place:{}", rng.random_range(0..200))]);
        }
    }
}

fn others(p: &mut Pair, rng: &mut StdRng, key: &str, ctx: &str) {
    let other = KEYS[rng.random_range(0..KEYS.len())];
    match rng.random_range(0..16) {
        0 => {
            let mut a = strings(&["ZMSCORE", key]);
            for _ in 0..rng.random_range(1..5) {
                a.push(member(rng));
            }
            p.check(&a);
            p.check(&["ZCARD", key]);
        }
        1 => {
            let (want, _) = p.redis_call(&["ZCARD", key]).unwrap();
            if matches!(want, Resp::Int(n) if n > 4) {
                p.check(&["OBJECT", "ENCODING", key]);
            }
            p.check(&["TYPE", key]);
        }
        2 => {
            let pattern = ["*", "member:1*", "*x*"][rng.random_range(0..3)];
            let pattern = rng.random_bool(0.5).then_some(pattern);
            let mut rc = Client::connect(p.redis_port());
            let mut kc = Client::connect(p.kv_port());
            let want = scan_all(&mut rc, key, pattern);
            let got = scan_all(&mut kc, key, pattern);
            assert_eq!(want, got, "{ctx}: ZSCAN {key} {pattern:?}");
        }
        3 => {
            let count = match rng.random_range(0..4) {
                0 => None,
                1 => Some(rng.random_range(0..30)),
                2 => Some(rng.random_range(30..400)),
                _ => Some(-rng.random_range(1..40)),
            };
            check_zrandmember(p, key, count, ctx);
        }
        4 => {
            let cmd = ["ZUNION", "ZINTER", "ZDIFF"][rng.random_range(0..3)];
            p.check(&[cmd, "2", key, other, "WITHSCORES"]);
            p.check(&["ZINTERCARD", "2", key, other]);
        }
        5 => {
            let cmd = ["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"][rng.random_range(0..3)];
            let dst = ["z0", "z1", "z2", "stored"][rng.random_range(0..4)];
            p.check(&[cmd, dst, "2", key, other]);
            if cmd != "ZDIFFSTORE" {
                p.check(&[
                    cmd,
                    "stored",
                    "2",
                    key,
                    other,
                    "WEIGHTS",
                    "2",
                    "0.5",
                    "AGGREGATE",
                    "MAX",
                ]);
            }
        }
        6 => {
            p.check(&["SORT", key, "ALPHA"]);
            p.check(&["SORT", key, "ALPHA", "DESC", "LIMIT", "1", "5"]);
            p.check(&["SORT", key, "BY", "nosort", "LIMIT", "2", "6"]);
        }
        7 => {
            p.check(&["RENAME", key, other]);
        }
        8 => {
            p.check(&["COPY", key, other, "REPLACE"]);
            p.check(&["ZRANGE", other, "0", "-1", "WITHSCORES"]);
        }
        9 => {
            if rng.random_bool(0.3) {
                p.check(&["DEL", key]);
            }
        }
        10 => {
            // Redis's WRONGTYPE, both ways.
            p.check(&["GET", key]);
            p.check(&["SCARD", key]);
            p.check(&["LPUSHX", key, "x"]);
            p.check(&["ZADD", "str", "1", "x"]);
            p.check(&["ZUNION", "2", key, "str"]);
            p.check(&["ZRANGESTORE", "str2", "str", "0", "-1"]);
        }
        11 => {
            p.check(&["EXPIRE", key, "1000"]);
            p.check(&["TTL", key]);
            if rng.random_bool(0.2) {
                p.check(&["PEXPIRE", key, "1"]);
                std::thread::sleep(Duration::from_millis(5));
                p.check(&["EXISTS", key]);
            }
        }
        12 => {
            // A DUMP of kvtier's set restores to the same set, in kvtier and in Redis.
            let (dump, _) = p.kv_call(&["DUMP", key]).unwrap();
            if let Resp::Bulk(payload) = dump {
                let payload = payload.as_slice();
                let args: [&[u8]; 5] = [b"RESTORE", b"restored", b"0", payload, b"REPLACE"];
                p.check(&args);
                p.check(&["ZRANGE", "restored", "0", "-1", "WITHSCORES"]);
                let (a, _) = p
                    .redis_call(&["ZRANGE", key, "0", "-1", "WITHSCORES"])
                    .unwrap();
                let (b, _) = p
                    .redis_call(&["ZRANGE", "restored", "0", "-1", "WITHSCORES"])
                    .unwrap();
                assert_eq!(a, b, "{ctx}: DUMP/RESTORE of {key} in Redis");
            }
        }
        13 => {
            p.check(&["SELECT", "1"]);
            p.check(&["MOVE", "z9", "0"]);
            let mut a = strings(&["ZADD", "z9"]);
            for _ in 0..12 {
                a.push(score(rng));
                a.push(member(rng));
            }
            p.check(&a);
            p.check(&["MOVE", "z9", "0"]);
            p.check(&["SELECT", "0"]);
            p.check(&["ZRANGE", "z9", "0", "-1", "WITHSCORES"]);
        }
        _ => {
            check_listing(p, &["ZRANGE", key, "0", "-1", "WITHSCORES"]);
            p.check(&["EXISTS", key]);
        }
    }
}

/// [`Pair::check`] of a long listing: a mismatch first prints the elements that differ (the
/// report cuts a long reply short).
fn check_listing(p: &mut Pair, args: &[&str]) {
    if let Err(e) = p.compare(args) {
        let (a, _) = p.redis_call(args).unwrap();
        let (b, _) = p.kv_call(args).unwrap();
        if let (Resp::Array(a), Resp::Array(b)) = (&a, &b) {
            for (x, y) in a.iter().zip(b) {
                if x != y {
                    eprintln!("DIFF {x:?} vs {y:?}");
                }
            }
        }
        panic!("{e}");
    }
}

fn workload(p: &mut Pair, seed: u64, steps: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    p.check(&["SET", "str", "text"]);
    for step in 0..steps {
        let ctx = format!("seed {seed} step {step}");
        let lex = rng.random_bool(0.15);
        let key = if lex {
            LEX
        } else {
            KEYS[rng.random_range(0..KEYS.len())]
        };
        match rng.random_range(0..100) {
            0..=34 => writes(p, &mut rng, key, lex),
            35..=59 => ranges(p, &mut rng, key, lex),
            60..=69 => geo(p, &mut rng),
            _ => others(p, &mut rng, key, &ctx),
        }
    }
    for key in KEYS
        .iter()
        .chain(&[LEX, GEO, "z9", "stored", "restored", "gdst"])
    {
        p.check(&["ZRANGE", key, "0", "-1", "WITHSCORES"]);
        p.check(&["ZCARD", key]);
    }
}

#[test]
fn paged_zsets_answer_as_redis_does() {
    for seed in seeds() {
        let resp3 = seed % 2 == 0;
        let label = format!("paged zsets, seed {seed}, resp3 {resp3}");
        let Some(mut p) = Pair::start(
            &label,
            &small_pages(&[SKIPLISTS, SMALL_CACHE].concat()),
            resp3,
        ) else {
            return;
        };
        // The same listpack limit in Redis, so OBJECT ENCODING and DUMP agree.
        p.redis_call(&["CONFIG", "SET", "zset-max-listpack-entries", "4"])
            .unwrap();
        workload(&mut p, seed, 1000);
        let mut c = Client::connect(p.kv_port());
        let pages = c.info_int("resident_pages") + c.info_int("pages_deleted");
        assert!(
            pages > 0,
            "[{label}] no zset was paged: the test lost its point"
        );
        eprintln!("{label}: {} commands compared", p.commands());
    }
}
