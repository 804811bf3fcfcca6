//! Paged hashes (issue 19) against redis-server: kvtier stores every hash past 256 bytes (and
//! past 4 fields, where it is a hash table) as a manifest plus pages of about 64 bytes, in a
//! 1 MB cache flushed at once, so pages are split, saved, evicted and loaded back all the time;
//! every reply must still be Redis's.
//!
//! Replies whose order Redis leaves open (HGETALL, HKEYS, HVALS, a whole HSCAN) are compared as
//! sets; HRANDFIELD is checked for membership.

use kvtier_tests::{
    assert_gone_with_its_pages, scan_to_end, seeds, small_pages, sorted_strings as sorted, Pair,
    Resp, Server, SMALL_CACHE,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeSet;

/// Only a hash Redis would keep as a hash table is paged (a listpack's order shows).
const HASH_TABLES: &[&str] = &["--hash-max-listpack-entries", "4"];

const KEYS: [&str; 3] = ["h0", "h1", "h2"];

fn field(rng: &mut StdRng) -> String {
    format!("field:{}", rng.random_range(0..300))
}

fn value(rng: &mut StdRng) -> String {
    match rng.random_range(0..4) {
        0 => rng.random_range(-50..50).to_string(),
        1 => "x".repeat(rng.random_range(0..40)),
        _ => format!("v{}", rng.random::<u32>()),
    }
}

/// HGETALL as sorted `field=value` lines, whatever the protocol.
fn all_pairs(r: &Resp) -> Vec<String> {
    match r {
        Resp::Map(_) => sorted(r),
        Resp::Array(items) => {
            let mut v: Vec<String> = items
                .chunks(2)
                .map(|p| format!("{}={}", p[0].as_str(), p[1].as_str()))
                .collect();
            v.sort();
            v
        }
        other => panic!("bad HGETALL reply {other:?}"),
    }
}

fn workload(p: &mut Pair, seed: u64, steps: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    for step in 0..steps {
        let key = KEYS[rng.random_range(0..KEYS.len())];
        match rng.random_range(0..100) {
            0..=34 => {
                let mut args = vec!["HSET".to_string(), key.into()];
                for _ in 0..rng.random_range(1..6) {
                    args.push(field(&mut rng));
                    args.push(value(&mut rng));
                }
                p.check(&args);
            }
            35..=44 => {
                let mut args = vec!["HDEL".to_string(), key.into()];
                for _ in 0..rng.random_range(1..8) {
                    args.push(field(&mut rng));
                }
                p.check(&args);
            }
            45..=54 => {
                p.check(&["HGET".to_string(), key.into(), field(&mut rng)]);
            }
            55..=59 => {
                let mut args = vec!["HMGET".to_string(), key.into()];
                for _ in 0..rng.random_range(1..5) {
                    args.push(field(&mut rng));
                }
                p.check(&args);
            }
            60..=62 => {
                p.check(&["HEXISTS".to_string(), key.into(), field(&mut rng)]);
            }
            63..=64 => {
                p.check(&["HSTRLEN".to_string(), key.into(), field(&mut rng)]);
            }
            65..=69 => {
                p.check(&["HLEN", key]);
            }
            70..=73 => {
                let n = rng.random_range(-5..5).to_string();
                p.check(&["HINCRBY".to_string(), key.into(), field(&mut rng), n]);
            }
            74..=75 => {
                p.check(&[
                    "HINCRBYFLOAT".to_string(),
                    key.into(),
                    field(&mut rng),
                    "1.5".into(),
                ]);
            }
            76..=78 => {
                p.check(&[
                    "HSETNX".to_string(),
                    key.into(),
                    field(&mut rng),
                    value(&mut rng),
                ]);
            }
            79..=82 => {
                let cmd = ["HGETALL", "HKEYS", "HVALS"][rng.random_range(0..3)];
                let (want, _) = p.redis_call(&[cmd, key]).unwrap();
                let (got, _) = p.kv_call(&[cmd, key]).unwrap();
                let (want, got) = if cmd == "HGETALL" {
                    (all_pairs(&want), all_pairs(&got))
                } else {
                    (sorted(&want), sorted(&got))
                };
                assert_eq!(want, got, "seed {seed} step {step}: {cmd} {key}");
            }
            83..=84 => {
                let (redis, kv) = (p.redis_port(), p.kv_port());
                let mut rc = kvtier_tests::Client::connect(redis);
                let mut kc = kvtier_tests::Client::connect(kv);
                let want = scan_to_end(&mut rc, &["HSCAN", key, "COUNT", "7"]);
                let got = scan_to_end(&mut kc, &["HSCAN", key, "COUNT", "7"]);
                assert_eq!(want, got, "seed {seed} step {step}: HSCAN {key}");
            }
            85..=86 => {
                let (all, _) = p.redis_call(&["HKEYS", key]).unwrap();
                let all = sorted(&all);
                let (got, _) = p.kv_call(&["HRANDFIELD", key, "5"]).unwrap();
                let got = if all.is_empty() {
                    Vec::new()
                } else {
                    sorted(&got)
                };
                assert!(
                    got.iter().all(|f| all.contains(f)) && got.len() == all.len().min(5),
                    "seed {seed} step {step}: HRANDFIELD {key} 5 gave {got:?}"
                );
            }
            87..=88 => {
                let other = KEYS[rng.random_range(0..KEYS.len())];
                p.check(&["RENAME", key, other]);
            }
            89..=90 => {
                let other = KEYS[rng.random_range(0..KEYS.len())];
                p.check(&["COPY", key, other, "REPLACE"]);
            }
            91 => {
                p.check(&["DEL", key]);
            }
            92..=93 => {
                p.check(&["TYPE", key]);
                p.check(&["EXISTS", key]);
            }
            94..=95 => {
                p.check(&["EXPIRE", key, "1000"]);
                p.check(&["TTL", key]);
            }
            96..=97 => {
                // A DUMP of kvtier's hash restores to the same fields, in kvtier and in Redis.
                let (dump, _) = p.kv_call(&["DUMP", key]).unwrap();
                if let Resp::Bulk(payload) = dump {
                    let payload = payload.as_slice();
                    let args: [&[u8]; 5] = [b"RESTORE", b"restored", b"0", payload, b"REPLACE"];
                    p.check(&args);
                    let (want, _) = p.redis_call(&["HGETALL", key]).unwrap();
                    let (got, _) = p.kv_call(&["HGETALL", "restored"]).unwrap();
                    assert_eq!(
                        all_pairs(&want),
                        all_pairs(&got),
                        "seed {seed} step {step}: DUMP/RESTORE"
                    );
                    let (got, _) = p.redis_call(&["HGETALL", "restored"]).unwrap();
                    assert_eq!(
                        all_pairs(&want),
                        all_pairs(&got),
                        "seed {seed} step {step}: RESTORE in Redis"
                    );
                }
            }
            _ => {
                p.check(&["SELECT", "1"]);
                p.check(&["MOVE".to_string(), "h9".into(), "0".into()]);
                p.check(&[
                    "HSET".to_string(),
                    "h9".into(),
                    field(&mut rng),
                    value(&mut rng),
                ]);
                p.check(&["MOVE", "h9", "0"]);
                p.check(&["SELECT", "0"]);
            }
        }
    }
    for key in KEYS.iter().chain(&["h9"]) {
        let (want, _) = p.redis_call(&["HGETALL", key]).unwrap();
        let (got, _) = p.kv_call(&["HGETALL", key]).unwrap();
        assert_eq!(
            all_pairs(&want),
            all_pairs(&got),
            "seed {seed}: final {key}"
        );
    }
}

#[test]
fn paged_hashes_answer_as_redis_does() {
    // Every write is saved at once (one sync each): the steps are few, the seeds vary.
    for seed in seeds() {
        let resp3 = seed % 2 == 0;
        let label = format!("paged hashes, seed {seed}, resp3 {resp3}");
        let Some(mut p) = Pair::start(
            &label,
            &small_pages(&[HASH_TABLES, SMALL_CACHE].concat()),
            resp3,
        ) else {
            return;
        };
        workload(&mut p, seed, 600);
        let mut c = kvtier_tests::Client::connect(p.kv_port());
        let pages = c.info_int("resident_pages") + c.info_int("pages_deleted");
        assert!(
            pages > 0,
            "[{label}] no hash was paged: the test lost its point"
        );
        eprintln!("{label}: {} commands compared", p.commands());
    }
}

/// A paged hash survives a restart, and its deleted pages are removed in the background.
#[test]
fn a_paged_hash_survives_restart_and_its_pages_are_deleted_with_it() {
    // No memory limit here: the pages stay in memory to be counted.
    let args = &small_pages(HASH_TABLES);
    let mut s = Server::start(args);
    let mut c = s.client();
    for i in 0..2000 {
        c.cmd(&["HSET", "big", &format!("f{i}"), &format!("value-{i}")]);
    }
    assert_eq!(c.cmd(&["HLEN", "big"]), Resp::Int(2000));
    assert!(c.info_int("resident_pages") > 10, "the hash was not paged");
    assert!(s.shutdown(), "SHUTDOWN failed");
    s.restart(args);
    let mut c = s.client();
    assert_eq!(c.cmd(&["HLEN", "big"]), Resp::Int(2000));
    assert_eq!(c.cmd(&["HGET", "big", "f1234"]), Resp::bulk("value-1234"));
    assert_eq!(c.cmd(&["TYPE", "big"]), Resp::Simple("hash".into()));
    assert_eq!(c.cmd(&["DEL", "big"]), Resp::Int(1));
    assert_gone_with_its_pages(&mut c, "big", 10);
}

/// HRANDFIELD on a paged hash picks from about the count's share of its pages: after a restart
/// (no page in memory, no memory limit to evict them), a pick without a count, 20 distinct
/// picks and 50 draws with repetitions load a few pages, not the hash; every pick is a field
/// with its own value; a count reaching the size returns every field.
#[test]
fn hrandfield_on_a_paged_hash_reads_a_few_pages() {
    let args = &small_pages(HASH_TABLES);
    let mut s = Server::start(args);
    let mut c = s.client();
    let n = 2000;
    for i in 0..n {
        c.cmd(&["HSET", "big", &format!("f{i}"), &format!("value-{i}")]);
    }
    assert!(s.shutdown(), "SHUTDOWN failed");
    s.restart(args);
    let mut c = s.client();
    assert_eq!(c.info_int("resident_pages"), 0);
    let value_of = |f: &str| format!("value-{}", f.strip_prefix('f').unwrap());
    let one = c.cmd(&["HRANDFIELD", "big"]).as_str();
    assert!(one.starts_with('f'), "{one}");
    let Resp::Array(flat) = c.cmd(&["HRANDFIELD", "big", "20", "WITHVALUES"]) else {
        panic!("HRANDFIELD with a count")
    };
    assert_eq!(flat.len(), 40);
    let fields: BTreeSet<String> = flat.chunks(2).map(|p| p[0].as_str()).collect();
    assert_eq!(fields.len(), 20, "distinct picks repeated a field");
    for p in flat.chunks(2) {
        assert_eq!(p[1].as_str(), value_of(&p[0].as_str()));
    }
    let Resp::Array(drawn) = c.cmd(&["HRANDFIELD", "big", "-50", "WITHVALUES"]) else {
        panic!("HRANDFIELD with a negative count")
    };
    assert_eq!(drawn.len(), 100);
    for p in drawn.chunks(2) {
        assert_eq!(p[1].as_str(), value_of(&p[0].as_str()));
    }
    let pages = c.info_int("resident_pages");
    let all_pages = {
        // Every page, as HGETALL loads them.
        let all = c.cmd(&["HGETALL", "big"]);
        assert_eq!(all_pairs(&all).len(), n);
        c.info_int("resident_pages")
    };
    assert!(
        pages > 0 && pages * 4 < all_pages,
        "HRANDFIELD loaded {pages} of {all_pages} pages"
    );
    let every = sorted(&c.cmd(&["HRANDFIELD", "big", &n.to_string()]));
    assert_eq!(every.len(), n);
}
