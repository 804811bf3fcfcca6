//! Differential test of the HyperLogLog and geo commands: the same fixed and seeded-random
//! command sequences go to a real `redis-server` (7.0.15 here and in CI) and to kvtier, and
//! every reply must be byte-for-byte the same: the raw HLL bytes GET returns, PFCOUNT's
//! estimates, geo scores (ZRANGE WITHSCORES), decoded coordinates, distances, geohashes,
//! search results in Redis's order, and error texts.
//!
//! Each sequence runs in RESP2 and RESP3, against kvtier with its default cache and with a tiny
//! cache (`--maxmemory 1mb --cache-flush-delay 0`, values go through the disk store).
//! redis-server comes from `REDIS_SERVER_BIN` or `PATH`; without it the tests print why and
//! pass without checking anything. Seeds: `KVTIER_DIFF_SEEDS` (default `1,2,3`).

use kvtier_tests::{differential, seeds};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

// ---------------------------------------------------------------------------------------------
// HyperLogLog
// ---------------------------------------------------------------------------------------------

#[test]
fn hll_fixed_sequences() {
    differential("hll fixed", |p| {
        p.c(&["PFADD", "h"]);
        p.c(&["GET", "h"]);
        p.c(&["PFADD", "h"]);
        p.c(&["PFADD", "h", "a", "b", "c"]);
        p.c(&["GET", "h"]);
        p.c(&["PFCOUNT", "h"]);
        // The estimate is now cached in the header.
        p.c(&["GET", "h"]);
        p.c(&["PFADD", "h", "a"]);
        p.c(&["GET", "h"]);
        p.c(&["PFCOUNT", "nokey"]);
        p.c(&["PFCOUNT", "h", "nokey"]);
        p.c(&["PFDEBUG", "ENCODING", "h"]);
        p.c(&["PFDEBUG", "DECODE", "h"]);
        // Many elements: sparse grows, then turns dense past hll-sparse-max-bytes.
        for chunk in 0..40 {
            let mut args = vec!["PFADD".to_string(), "big".to_string()];
            args.extend((0..100).map(|i| format!("element:{}", chunk * 100 + i)));
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            p.c(&a);
            if chunk % 5 == 0 {
                p.c(&["PFDEBUG", "ENCODING", "big"]);
                p.c(&["GET", "big"]);
                p.c(&["PFCOUNT", "big"]);
            }
        }
        p.c(&["GET", "big"]);
        p.c(&["PFCOUNT", "big"]);
        p.c(&["PFCOUNT", "big", "h"]);
        p.c(&["PFDEBUG", "DECODE", "big"]);
        p.c(&["PFDEBUG", "GETREG", "big"]);
        // Merges: sparse into new, dense into sparse.
        p.c(&["PFMERGE", "m1", "h"]);
        p.c(&["GET", "m1"]);
        p.c(&["PFADD", "h2", "x", "y", "z", "a"]);
        p.c(&["PFMERGE", "h2", "h"]);
        p.c(&["GET", "h2"]);
        p.c(&["PFCOUNT", "h2"]);
        p.c(&["PFMERGE", "m2", "h", "big", "nokey"]);
        p.c(&["GET", "m2"]);
        p.c(&["PFCOUNT", "m2"]);
        p.c(&["PFMERGE", "empty"]);
        p.c(&["GET", "empty"]);
        p.c(&["PFDEBUG", "GETREG", "h2"]);
        p.c(&["GET", "h2"]);
        p.c(&["PFADD", "t", "1", "2", "3"]);
        p.c(&["PFDEBUG", "TODENSE", "t"]);
        p.c(&["PFDEBUG", "TODENSE", "t"]);
        p.c(&["GET", "t"]);
        p.c(&["PFDEBUG", "DECODE", "t"]);
        p.c(&["PFCOUNT", "t"]);
        p.c(&["PFADD", "t", "4"]);
        p.c(&["GET", "t"]);
        // Errors.
        p.c(&["SET", "str", "hello"]);
        p.c(&["PFADD", "str", "a"]);
        p.c(&["PFCOUNT", "str"]);
        p.c(&["PFCOUNT", "h", "str"]);
        p.c(&["PFMERGE", "str", "h"]);
        p.c(&["PFMERGE", "h", "str"]);
        p.c(&["PFDEBUG", "ENCODING", "str"]);
        p.c(&["RPUSH", "list", "a"]);
        p.c(&["PFADD", "list", "a"]);
        p.c(&["PFCOUNT", "list"]);
        p.c(&["PFCOUNT", "h", "list"]);
        p.c(&["PFMERGE", "list", "h"]);
        p.c(&["PFDEBUG", "GETREG", "list"]);
        p.c(&["PFDEBUG", "ENCODING", "nokey"]);
        p.c(&["PFDEBUG", "NOSUCH", "h"]);
        p.c(&["PFDEBUG", "GETREG", "h", "extra"]);
        p.c(&["PFADD"]);
        p.c(&["PFCOUNT"]);
        p.c(&["PFMERGE"]);
        p.c(&["PFSELFTEST", "x"]);
        // Corruption: garbage after a sparse HLL, a dense HLL of the wrong length.
        p.c(&["PFADD", "bad", "a", "b", "c"]);
        p.c(&["APPEND", "bad", "hello"]);
        p.c(&["PFCOUNT", "bad"]);
        p.c(&["PFADD", "bad", "zzz"]);
        p.c(&["PFCOUNT", "bad", "h"]);
        p.c(&["PFMERGE", "m3", "bad"]);
        p.c(&["APPEND", "big", "x"]);
        p.c(&["PFCOUNT", "big"]);
        // A header claiming an unknown encoding.
        let mut enc = b"HYLL\x05".to_vec();
        enc.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x7f, 0xff]);
        p.check(&[b"SET".to_vec(), b"enc".to_vec(), enc]);
        p.c(&["PFCOUNT", "enc"]);
        // Bytes Redis produced, written back with SET, work as an HLL.
        let raw = p.c(&["GET", "m2"]);
        let body = bulk_body(&raw);
        p.check(&[b"SET".to_vec(), b"copy".to_vec(), body]);
        p.c(&["PFCOUNT", "copy"]);
        p.c(&["PFADD", "copy", "new-one"]);
        p.c(&["PFCOUNT", "copy"]);
        p.c(&["GET", "copy"]);
        // A smaller sparse limit promotes sooner.
        p.c(&["CONFIG", "SET", "hll-sparse-max-bytes", "100"]);
        p.c(&[
            "PFADD", "small", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j",
        ]);
        p.c(&[
            "PFADD", "small", "k", "l", "m", "n", "o", "p", "q", "r", "s", "t",
        ]);
        p.c(&["PFDEBUG", "ENCODING", "small"]);
        p.c(&["GET", "small"]);
        p.c(&["PFCOUNT", "small"]);
        p.c(&["TYPE", "h"]);
        p.c(&["PFSELFTEST"]);
    });
}

/// The payload of a RESP bulk reply.
fn bulk_body(raw: &[u8]) -> Vec<u8> {
    let nl = raw.iter().position(|&c| c == b'\n').expect("bulk header");
    raw[nl + 1..raw.len() - 2].to_vec()
}

#[test]
fn hll_random_sequences() {
    for seed in seeds() {
        differential(&format!("hll random seed {seed}"), |p| {
            let mut rng = StdRng::seed_from_u64(seed);
            let keys = ["ha", "hb", "hc", "hd"];
            for step in 0..400 {
                let key = keys[rng.random_range(0..keys.len())];
                match rng.random_range(0..10) {
                    0..=4 => {
                        // Elements from a pool, so that some repeat.
                        let pool = [50u64, 1000, 100_000][rng.random_range(0..3)];
                        let top = [5usize, 40, 300][rng.random_range(0..3)];
                        let n = rng.random_range(0..top);
                        let mut args = vec!["PFADD".to_string(), key.to_string()];
                        args.extend((0..n).map(|_| format!("e{}", rng.random_range(0..pool))));
                        let a: Vec<&str> = args.iter().map(String::as_str).collect();
                        p.c(&a);
                    }
                    5 => {
                        p.c(&["PFCOUNT", key]);
                    }
                    6 => {
                        let other = keys[rng.random_range(0..keys.len())];
                        p.c(&["PFCOUNT", key, other, "missing"]);
                    }
                    7 => {
                        let other = keys[rng.random_range(0..keys.len())];
                        p.c(&["PFMERGE", key, other]);
                    }
                    8 => {
                        p.c(&["GET", key]);
                    }
                    _ => {
                        p.c(&["PFDEBUG", "ENCODING", key]);
                    }
                }
                if step % 100 == 99 {
                    let v = ["3000", "500", "10000"][rng.random_range(0..3)];
                    p.c(&["CONFIG", "SET", "hll-sparse-max-bytes", v]);
                }
            }
            for key in keys {
                p.c(&["GET", key]);
                p.c(&["PFCOUNT", key]);
            }
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Geo
// ---------------------------------------------------------------------------------------------

#[test]
fn geo_fixed_sequences() {
    differential("geo fixed", |p| {
        p.c(&[
            "GEOADD",
            "Sicily",
            "13.361389",
            "38.115556",
            "Palermo",
            "15.087269",
            "37.502669",
            "Catania",
        ]);
        p.c(&["GEOADD", "Sicily", "12.758489", "38.788135", "edge1"]);
        p.c(&["GEOADD", "Sicily", "17.241510", "38.788135", "edge2"]);
        p.c(&["ZRANGE", "Sicily", "0", "-1", "WITHSCORES"]);
        p.c(&["GEOPOS", "Sicily", "Palermo", "Catania", "NonExisting"]);
        p.c(&["GEOPOS", "nokey", "a"]);
        p.c(&["GEOPOS", "Sicily"]);
        for unit in ["m", "km", "ft", "mi", "KM"] {
            p.c(&["GEODIST", "Sicily", "Palermo", "Catania", unit]);
        }
        p.c(&["GEODIST", "Sicily", "Palermo", "Catania"]);
        p.c(&["GEODIST", "Sicily", "Palermo", "Nope"]);
        p.c(&["GEODIST", "nokey", "a", "b"]);
        p.c(&["GEODIST", "Sicily", "Palermo", "Catania", "yards"]);
        p.c(&["GEODIST", "Sicily", "Palermo", "Catania", "km", "extra"]);
        p.c(&["GEOHASH", "Sicily", "Palermo", "Catania", "nope"]);
        p.c(&["GEOHASH", "nokey", "a"]);
        // GEOADD options.
        p.c(&[
            "GEOADD", "Sicily", "NX", "13.0", "38.0", "Palermo", "1", "1", "new",
        ]);
        p.c(&[
            "GEOADD", "Sicily", "XX", "13.0", "38.0", "Palermo", "2", "2", "new2",
        ]);
        p.c(&[
            "GEOADD",
            "Sicily",
            "XX",
            "CH",
            "13.361389",
            "38.115556",
            "Palermo",
        ]);
        p.c(&[
            "GEOADD",
            "Sicily",
            "CH",
            "13.361389",
            "38.115556",
            "Palermo",
            "3",
            "3",
            "n3",
        ]);
        p.c(&["GEOADD", "Sicily", "13.361389", "38.115556", "Palermo"]);
        p.c(&["GEOADD", "xxkey", "XX", "1", "1", "a"]);
        p.c(&["EXISTS", "xxkey"]);
        p.c(&["GEOADD", "Sicily", "NX", "XX", "1", "1", "a"]);
        p.c(&["GEOADD", "Sicily", "1", "1"]);
        p.c(&["GEOADD", "Sicily", "NX", "CH", "XX"]);
        p.c(&["GEOADD", "Sicily", "200", "100", "bad"]);
        p.c(&["GEOADD", "Sicily", "-180.0000001", "0", "bad"]);
        p.c(&["GEOADD", "Sicily", "0", "85.06", "bad"]);
        p.c(&["GEOADD", "Sicily", "abc", "1", "bad"]);
        p.c(&["GEOADD", "Sicily", "1", "nan", "bad"]);
        p.c(&["GEOADD", "Sicily", "180", "85.05112878", "corner"]);
        p.c(&["GEOADD", "Sicily", "-180", "-85.05112878", "corner2"]);
        p.c(&["GEOPOS", "Sicily", "corner", "corner2"]);
        p.c(&["GEOHASH", "Sicily", "corner", "corner2"]);
        p.c(&["ZREM", "Sicily", "corner", "corner2", "new", "n3"]);
        p.c(&["SET", "str", "x"]);
        p.c(&["GEOADD", "str", "1", "1", "a"]);
        p.c(&["GEOADD", "str", "1", "100", "a"]);
        p.c(&["GEOPOS", "str", "a"]);
        p.c(&["GEODIST", "str", "a", "b"]);
        p.c(&["GEOHASH", "str", "a"]);
        p.c(&[
            "GEOSEARCH",
            "str",
            "FROMLONLAT",
            "1",
            "1",
            "BYRADIUS",
            "1",
            "km",
        ]);
        p.c(&["GEORADIUS", "str", "1", "1", "1", "km"]);
        // Searches with every option.
        let opts: &[&[&str]] = &[
            &[],
            &["ASC"],
            &["DESC"],
            &["WITHDIST"],
            &["WITHCOORD"],
            &["WITHHASH"],
            &["WITHDIST", "WITHCOORD", "WITHHASH"],
            &["COUNT", "1"],
            &["COUNT", "2", "DESC", "WITHDIST"],
            &["COUNT", "1", "ANY"],
            &["COUNT", "3", "ANY", "ASC"],
        ];
        for o in opts {
            let mut a = vec![
                "GEOSEARCH",
                "Sicily",
                "FROMLONLAT",
                "15",
                "37",
                "BYRADIUS",
                "200",
                "km",
            ];
            a.extend_from_slice(o);
            p.c(&a);
            let mut a = vec![
                "GEOSEARCH",
                "Sicily",
                "FROMMEMBER",
                "Palermo",
                "BYBOX",
                "400",
                "400",
                "km",
            ];
            a.extend_from_slice(o);
            p.c(&a);
            let mut a = vec!["GEORADIUS", "Sicily", "15", "37", "200", "km"];
            a.extend_from_slice(o);
            p.c(&a);
            let mut a = vec!["GEORADIUS_RO", "Sicily", "15", "37", "100", "mi"];
            a.extend_from_slice(o);
            p.c(&a);
            let mut a = vec!["GEORADIUSBYMEMBER", "Sicily", "Palermo", "300", "km"];
            a.extend_from_slice(o);
            p.c(&a);
            let mut a = vec!["GEORADIUSBYMEMBER_RO", "Sicily", "Catania", "900000", "ft"];
            a.extend_from_slice(o);
            p.c(&a);
        }
        // STORE variants.
        p.c(&[
            "GEOSEARCHSTORE",
            "dst",
            "Sicily",
            "FROMLONLAT",
            "15",
            "37",
            "BYRADIUS",
            "200",
            "km",
        ]);
        p.c(&["ZRANGE", "dst", "0", "-1", "WITHSCORES"]);
        p.c(&[
            "GEOSEARCHSTORE",
            "dst",
            "Sicily",
            "FROMLONLAT",
            "15",
            "37",
            "BYBOX",
            "400",
            "400",
            "km",
            "STOREDIST",
            "COUNT",
            "2",
        ]);
        p.c(&["ZRANGE", "dst", "0", "-1", "WITHSCORES"]);
        p.c(&[
            "GEOSEARCHSTORE",
            "dst",
            "Sicily",
            "FROMLONLAT",
            "0",
            "0",
            "BYRADIUS",
            "1",
            "m",
        ]);
        p.c(&["EXISTS", "dst"]);
        p.c(&[
            "GEOSEARCHSTORE",
            "dst",
            "nokey",
            "FROMLONLAT",
            "0",
            "0",
            "BYRADIUS",
            "1",
            "m",
        ]);
        p.c(&[
            "GEORADIUS",
            "Sicily",
            "15",
            "37",
            "200",
            "km",
            "STORE",
            "st",
        ]);
        p.c(&["ZRANGE", "st", "0", "-1", "WITHSCORES"]);
        p.c(&[
            "GEORADIUS",
            "Sicily",
            "15",
            "37",
            "200",
            "km",
            "STOREDIST",
            "st2",
            "DESC",
        ]);
        p.c(&["ZRANGE", "st2", "0", "-1", "WITHSCORES"]);
        p.c(&[
            "GEORADIUSBYMEMBER",
            "Sicily",
            "Palermo",
            "100",
            "km",
            "STORE",
            "st3",
        ]);
        p.c(&["ZRANGE", "st3", "0", "-1", "WITHSCORES"]);
        p.c(&[
            "GEORADIUS",
            "nokey",
            "15",
            "37",
            "200",
            "km",
            "STORE",
            "st3",
        ]);
        p.c(&["EXISTS", "st3"]);
        p.c(&["GEORADIUSBYMEMBER", "nokey", "x", "200", "km"]);
        p.c(&[
            "GEORADIUSBYMEMBER",
            "nokey",
            "x",
            "200",
            "km",
            "STORE",
            "st",
        ]);
        p.c(&["EXISTS", "st"]);
        p.c(&[
            "GEOSEARCH",
            "nokey",
            "FROMMEMBER",
            "x",
            "BYRADIUS",
            "1",
            "m",
        ]);
        // Errors.
        let errs: &[&[&str]] = &[
            &[
                "GEOSEARCH",
                "Sicily",
                "FROMLONLAT",
                "15",
                "37",
                "BYRADIUS",
                "-1",
                "km",
            ],
            &[
                "GEOSEARCH",
                "Sicily",
                "FROMLONLAT",
                "15",
                "37",
                "BYRADIUS",
                "x",
                "km",
            ],
            &[
                "GEOSEARCH",
                "Sicily",
                "FROMLONLAT",
                "15",
                "37",
                "BYRADIUS",
                "1",
                "yd",
            ],
            &[
                "GEOSEARCH",
                "Sicily",
                "FROMLONLAT",
                "15",
                "37",
                "BYBOX",
                "1",
                "-1",
                "km",
            ],
            &[
                "GEOSEARCH",
                "Sicily",
                "FROMLONLAT",
                "15",
                "37",
                "BYBOX",
                "x",
                "1",
                "km",
            ],
            &[
                "GEOSEARCH",
                "Sicily",
                "FROMLONLAT",
                "15",
                "37",
                "BYBOX",
                "1",
                "y",
                "km",
            ],
            &[
                "GEOSEARCH",
                "Sicily",
                "FROMLONLAT",
                "15",
                "37",
                "BYBOX",
                "1",
                "1",
                "ly",
            ],
            &[
                "GEOSEARCH",
                "Sicily",
                "FROMLONLAT",
                "15",
                "37",
                "BYRADIUS",
                "1",
                "km",
                "BYBOX",
                "1",
                "1",
                "km",
            ],
            &[
                "GEOSEARCH",
                "Sicily",
                "FROMMEMBER",
                "Palermo",
                "FROMLONLAT",
                "1",
                "1",
                "BYRADIUS",
                "1",
                "km",
            ],
            &[
                "GEOSEARCH",
                "Sicily",
                "FROMMEMBER",
                "nope",
                "BYRADIUS",
                "1",
                "km",
            ],
            &["GEOSEARCH", "Sicily", "BYRADIUS", "1", "km", "x", "y"],
            &["GEOSEARCH", "Sicily", "FROMLONLAT", "1", "1", "ASC", "DESC"],
            &[
                "GEOSEARCH",
                "Sicily",
                "FROMLONLAT",
                "200",
                "1",
                "BYRADIUS",
                "1",
                "km",
            ],
            &[
                "GEOSEARCH",
                "Sicily",
                "FROMLONLAT",
                "1",
                "1",
                "BYRADIUS",
                "1",
                "km",
                "COUNT",
                "0",
            ],
            &[
                "GEOSEARCH",
                "Sicily",
                "FROMLONLAT",
                "1",
                "1",
                "BYRADIUS",
                "1",
                "km",
                "COUNT",
                "x",
            ],
            &[
                "GEOSEARCH",
                "Sicily",
                "FROMLONLAT",
                "1",
                "1",
                "BYRADIUS",
                "1",
                "km",
                "ANY",
            ],
            &[
                "GEOSEARCH",
                "Sicily",
                "FROMLONLAT",
                "1",
                "1",
                "BYRADIUS",
                "1",
                "km",
                "STORE",
                "x",
            ],
            &[
                "GEOSEARCH",
                "Sicily",
                "FROMLONLAT",
                "1",
                "1",
                "BYRADIUS",
                "1",
                "km",
                "STOREDIST",
            ],
            &[
                "GEOSEARCHSTORE",
                "d",
                "Sicily",
                "FROMLONLAT",
                "1",
                "1",
                "BYRADIUS",
                "1",
                "km",
                "WITHDIST",
            ],
            &[
                "GEOSEARCHSTORE",
                "d",
                "Sicily",
                "FROMLONLAT",
                "1",
                "1",
                "BYRADIUS",
                "1",
            ],
            &[
                "GEORADIUS",
                "Sicily",
                "15",
                "37",
                "200",
                "km",
                "STORE",
                "x",
                "WITHCOORD",
            ],
            &[
                "GEORADIUS_RO",
                "Sicily",
                "15",
                "37",
                "200",
                "km",
                "STORE",
                "x",
            ],
            &["GEORADIUS", "Sicily", "15", "37", "-2", "km"],
            &["GEORADIUS", "Sicily", "15", "100", "2", "km"],
            &["GEORADIUS", "Sicily", "15", "37", "2", "au"],
            &[
                "GEORADIUS",
                "Sicily",
                "15",
                "37",
                "2",
                "km",
                "FROMMEMBER",
                "x",
            ],
            &["GEORADIUSBYMEMBER", "Sicily", "nope", "2", "km"],
            &["GEORADIUSBYMEMBER", "Sicily", "Palermo", "x", "km"],
            &["GEORADIUSBYMEMBER", "Sicily", "Palermo", "2", "km", "COUNT"],
            &["GEOADD", "Sicily"],
            &["GEOSEARCH", "Sicily", "FROMLONLAT", "1", "1"],
        ];
        for e in errs {
            p.c(e);
        }
        p.c(&["TYPE", "Sicily"]);
        // A plain sorted set: scores no geo command would write still decode as in Redis.
        p.c(&[
            "ZADD",
            "plain",
            "-2",
            "a",
            "-1e10",
            "b",
            "-9223372036854775808",
            "c",
            "-1e19",
            "d",
            "9223372036854775808",
            "e",
            "1.4e19",
            "f",
            "1.8446744073709552e19",
            "g",
            "-0.5",
            "h",
            "inf",
            "i",
            "-inf",
            "j",
            "4503599627370496",
            "k",
            "9007199254740993",
            "l",
            "5",
            "m",
        ]);
        let all = [
            "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m",
        ];
        for cmd in ["GEOPOS", "GEOHASH"] {
            let mut a = vec![cmd, "plain"];
            a.extend(all);
            p.c(&a);
        }
        p.c(&["GEODIST", "plain", "a", "m", "km"]);
        p.c(&[
            "GEOSEARCH",
            "plain",
            "FROMLONLAT",
            "0",
            "0",
            "BYRADIUS",
            "20000",
            "km",
            "WITHHASH",
        ]);
    });
}

/// A random point, mostly near a few centres so that searches find things.
fn random_point(rng: &mut StdRng) -> (f64, f64) {
    let centres = [(13.36, 38.11), (-73.98, 40.75), (139.7, 35.68), (0.0, 0.0)];
    if rng.random_range(0..5) == 0 {
        return (
            rng.random_range(-180.0..180.0),
            rng.random_range(-85.05..85.05),
        );
    }
    let (lon, lat) = centres[rng.random_range(0..centres.len())];
    let spread = [0.01, 0.5, 3.0][rng.random_range(0..3)];
    (
        lon + rng.random_range(-spread..spread),
        lat + rng.random_range(-spread..spread),
    )
}

#[test]
fn geo_random_sequences() {
    for seed in seeds() {
        differential(&format!("geo random seed {seed}"), |p| {
            let mut rng = StdRng::seed_from_u64(seed);
            let units = ["m", "km", "ft", "mi"];
            let member = |rng: &mut StdRng| format!("m{}", rng.random_range(0..120));
            for _ in 0..150 {
                let mut a = vec!["GEOADD".to_string(), "g".to_string()];
                match rng.random_range(0..8) {
                    0 => a.push("NX".into()),
                    1 => a.push("XX".into()),
                    2 => a.push("CH".into()),
                    _ => {}
                }
                for _ in 0..rng.random_range(1..6) {
                    let (lon, lat) = random_point(&mut rng);
                    a.push(format!("{lon:.6}"));
                    a.push(format!("{lat:.6}"));
                    a.push(member(&mut rng));
                }
                let a: Vec<&str> = a.iter().map(String::as_str).collect();
                p.c(&a);
            }
            p.c(&["ZRANGE", "g", "0", "-1", "WITHSCORES"]);
            for step in 0..300 {
                let u = units[rng.random_range(0..units.len())];
                match rng.random_range(0..6) {
                    0 => {
                        let (m1, m2) = (member(&mut rng), member(&mut rng));
                        p.c(&["GEOPOS", "g", &m1, &m2]);
                        p.c(&["GEOHASH", "g", &m1, &m2]);
                    }
                    1 => {
                        let (m1, m2) = (member(&mut rng), member(&mut rng));
                        p.c(&["GEODIST", "g", &m1, &m2, u]);
                    }
                    _ => {
                        let cmd = random_search(&mut rng, step, u);
                        let a: Vec<&str> = cmd.iter().map(String::as_str).collect();
                        p.c(&a);
                        if cmd[0].contains("STORE") || cmd.iter().any(|x| x.starts_with("STORE")) {
                            p.c(&["ZRANGE", "dst", "0", "-1", "WITHSCORES"]);
                        }
                    }
                }
            }
        });
    }
}

/// A random search command with random options (never an invalid combination, except COUNT
/// and ANY which are always valid here).
fn random_search(rng: &mut StdRng, step: usize, unit: &str) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let radius = [0.5, 10.0, 100.0, 1000.0, 5000.0, 20000.0][rng.random_range(0..6)];
    // Distances in the command's unit: about `radius` kilometres.
    let in_unit = |km: f64| match unit {
        "m" => km * 1000.0,
        "ft" => km * 3280.84,
        "mi" => km / 1.609,
        _ => km,
    };
    let (lon, lat) = random_point(rng);
    let from_member = rng.random_bool(0.5);
    let member = format!("m{}", rng.random_range(0..120));
    let store = rng.random_range(0..4) == 0;
    let kind = rng.random_range(0..3);
    match kind {
        0 => {
            a.push(if store { "GEOSEARCHSTORE" } else { "GEOSEARCH" }.into());
            if store {
                a.push("dst".into());
            }
            a.push("g".into());
            if from_member {
                a.extend(["FROMMEMBER".into(), member]);
            } else {
                a.extend([
                    "FROMLONLAT".into(),
                    format!("{lon:.5}"),
                    format!("{lat:.5}"),
                ]);
            }
            if rng.random_bool(0.5) {
                a.extend([
                    "BYRADIUS".into(),
                    format!("{}", in_unit(radius)),
                    unit.into(),
                ]);
            } else {
                a.extend([
                    "BYBOX".into(),
                    format!("{}", in_unit(radius * rng.random_range(0.2..2.0))),
                    format!("{}", in_unit(radius * rng.random_range(0.2..2.0))),
                    unit.into(),
                ]);
            }
            if store && rng.random_bool(0.5) {
                a.push("STOREDIST".into());
            }
        }
        1 => {
            a.push(if from_member && step.is_multiple_of(2) {
                "GEORADIUSBYMEMBER".into()
            } else if from_member {
                "GEORADIUSBYMEMBER_RO".into()
            } else if step.is_multiple_of(2) {
                "GEORADIUS".into()
            } else {
                "GEORADIUS_RO".into()
            });
            a.push("g".into());
            if from_member {
                a.push(member);
            } else {
                a.extend([format!("{lon:.5}"), format!("{lat:.5}")]);
            }
            a.extend([format!("{}", in_unit(radius)), unit.into()]);
        }
        _ => {
            a.extend(["GEORADIUS".into(), "g".into()]);
            a.extend([format!("{lon:.5}"), format!("{lat:.5}")]);
            a.extend([format!("{}", in_unit(radius)), unit.into()]);
            let opt = if rng.random_bool(0.5) {
                "STORE"
            } else {
                "STOREDIST"
            };
            a.extend([opt.into(), "dst".into()]);
        }
    }
    let storing = store || kind == 2;
    match rng.random_range(0..4) {
        0 => a.push("ASC".into()),
        1 => a.push("DESC".into()),
        _ => {}
    }
    if rng.random_bool(0.4) {
        a.extend(["COUNT".into(), rng.random_range(1..8).to_string()]);
        if rng.random_bool(0.3) {
            a.push("ANY".into());
        }
    }
    if !storing {
        for w in ["WITHDIST", "WITHCOORD", "WITHHASH"] {
            if rng.random_bool(0.4) {
                a.push(w.into());
            }
        }
    }
    a
}

#[test]
fn hll_edge_elements_and_large_sets() {
    differential("hll edges", |p| {
        let mut rng = StdRng::seed_from_u64(42);
        // Elements of every length around the hash's 8-byte blocks, and binary ones.
        for len in 0..40usize {
            let e: Vec<u8> = (0..len).map(|_| rng.random::<u8>()).collect();
            p.check(&[b"PFADD".to_vec(), b"bin".to_vec(), e]);
        }
        p.c(&["PFADD", "bin", ""]);
        p.c(&["GET", "bin"]);
        p.c(&["PFCOUNT", "bin"]);
        // Large sets: the estimate far into the dense range.
        for batch in 0..60 {
            let mut args = vec!["PFADD".to_string(), "large".to_string()];
            args.extend((0..2000).map(|i| format!("{}", batch * 2000 + i)));
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            p.c(&a);
            if batch % 6 == 5 {
                p.c(&["PFCOUNT", "large"]);
                p.c(&["PFCOUNT", "large", "bin"]);
            }
        }
        p.c(&["GET", "large"]);
        p.c(&["PFMERGE", "large2", "bin", "large"]);
        p.c(&["GET", "large2"]);
    });
}

#[test]
fn geo_edges() {
    for seed in seeds() {
        differential(&format!("geo edges seed {seed}"), |p| {
            let mut rng = StdRng::seed_from_u64(seed + 1000);
            let mut a = vec!["GEOADD".to_string(), "w".to_string()];
            // Near the poles' limit, the antimeridian, the equator and the prime meridian.
            let lons = [-180.0, -179.9999, 179.9999, 180.0, 0.0, -0.0001, 0.0001];
            let lats = [
                -85.05112878,
                -85.0,
                -70.0,
                0.0,
                0.0001,
                70.0,
                85.0,
                85.05112878,
            ];
            for i in 0..250 {
                let lon = if rng.random_bool(0.3) {
                    lons[rng.random_range(0..lons.len())] + rng.random_range(-0.5..0.5f64)
                } else {
                    rng.random_range(-180.0..180.0)
                };
                let lat = if rng.random_bool(0.3) {
                    lats[rng.random_range(0..lats.len())] + rng.random_range(-0.5..0.5f64)
                } else {
                    rng.random_range(-85.0..85.0)
                };
                let lon = lon.clamp(-180.0, 180.0);
                let lat = lat.clamp(-85.05112878, 85.05112878);
                a.extend([format!("{lon}"), format!("{lat}"), format!("p{i}")]);
            }
            let args: Vec<&str> = a.iter().map(String::as_str).collect();
            p.c(&args);
            p.c(&["ZRANGE", "w", "0", "-1", "WITHSCORES"]);
            let mut all = vec!["GEOPOS", "w"];
            let names: Vec<String> = (0..250).map(|i| format!("p{i}")).collect();
            all.extend(names.iter().map(String::as_str));
            p.c(&all);
            all[0] = "GEOHASH";
            p.c(&all);
            for _ in 0..150 {
                let lon = lons[rng.random_range(0..lons.len())] * rng.random_range(0.99..1.0);
                let lat = lats[rng.random_range(0..lats.len())] * rng.random_range(0.99..1.0);
                let r = 10f64.powf(rng.random_range(-1.0..7.3));
                let (lon, lat, r) = (format!("{lon}"), format!("{lat}"), format!("{r:.3}"));
                let m = format!("p{}", rng.random_range(0..250));
                let w = format!("{:.3}", 10f64.powf(rng.random_range(0.0..7.5)));
                let h = format!("{:.3}", 10f64.powf(rng.random_range(0.0..7.5)));
                p.c(&[
                    "GEOSEARCH",
                    "w",
                    "FROMLONLAT",
                    &lon,
                    &lat,
                    "BYRADIUS",
                    &r,
                    "m",
                    "WITHDIST",
                ]);
                p.c(&["GEOSEARCH", "w", "FROMMEMBER", &m, "BYRADIUS", &r, "m"]);
                p.c(&[
                    "GEOSEARCH",
                    "w",
                    "FROMLONLAT",
                    &lon,
                    &lat,
                    "BYBOX",
                    &w,
                    &h,
                    "m",
                    "ASC",
                ]);
                p.c(&[
                    "GEOSEARCH",
                    "w",
                    "FROMMEMBER",
                    &m,
                    "BYBOX",
                    &w,
                    &h,
                    "m",
                    "WITHCOORD",
                ]);
                p.c(&["GEORADIUS", "w", &lon, &lat, &r, "m", "COUNT", "3", "ANY"]);
                p.c(&["GEODIST", "w", &m, "p0", "km"]);
            }
        });
    }
}

#[test]
fn hll_corruption_fuzz() {
    for seed in seeds() {
        hll_corruption_fuzz_seed(seed);
    }
}

fn hll_corruption_fuzz_seed(seed: u64) {
    differential(&format!("hll corruption fuzz seed {seed}"), |p| {
        let mut rng = StdRng::seed_from_u64(seed + 7);
        // A sparse and a dense HLL as Redis writes them.
        let mut args = vec!["PFADD".to_string(), "sparse".to_string()];
        args.extend((0..200).map(|i| format!("s{i}")));
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        p.c(&a);
        p.c(&["PFMERGE", "dense", "sparse"]);
        p.c(&["PFDEBUG", "TODENSE", "dense"]);
        let sparse = bulk_body(&p.c(&["GET", "sparse"]));
        let dense = bulk_body(&p.c(&["GET", "dense"]));
        // Every round runs in 4 configurations; 3,000 rounds passed once too.
        for round in 0..300 {
            let mut v = if round % 2 == 0 {
                sparse.clone()
            } else {
                dense.clone()
            };
            // Garble a few bytes after the header (keeping the cache stale), sometimes cut
            // or extend the value.
            for _ in 0..rng.random_range(1..5) {
                let i = rng.random_range(16..v.len());
                v[i] = rng.random();
            }
            match rng.random_range(0..6) {
                0 => v.truncate(rng.random_range(16..v.len())),
                1 => v.extend((0..rng.random_range(1..4)).map(|_| rng.random::<u8>())),
                _ => {}
            }
            p.check(&[b"SET".to_vec(), b"f".to_vec(), v]);
            match round % 5 {
                0 => p.c(&["PFCOUNT", "f"]),
                1 => p.c(&["PFADD", "f", "x", "y", "z", &format!("r{round}")]),
                2 => p.c(&["PFMERGE", "m", "f", "sparse"]),
                3 => p.c(&["PFDEBUG", "TODENSE", "f"]),
                _ => p.c(&["PFCOUNT", "f", "sparse"]),
            };
            p.c(&["GET", "f"]);
            if round % 5 == 2 {
                p.c(&["GET", "m"]);
            }
        }
    });
}
