//! Paged sets against redis-server: kvtier stores every set past 256 bytes that Redis keeps as
//! a hash table as a manifest plus pages of about 64 bytes, in a 1 MB cache flushed at once, so
//! pages are split, saved, evicted and loaded back all the time; every reply must still be
//! Redis's. An all-integer set stays an intset (one record, never paged).
//!
//! Replies whose order Redis leaves open (SMEMBERS, SINTER, SUNION, SDIFF, a whole SSCAN) are
//! compared as sorted lists; SRANDMEMBER and SPOP, whose picks are random, are checked for
//! membership, counts, distinctness and reply type, and SPOP's picks are then made the same on
//! both sides.

use kvtier_tests::{
    assert_gone_with_its_pages, check_random_picks, same_shape, scan_to_end, seeds, small_pages,
    sorted_strings as sorted, wait_until, Client, Pair, Resp, Server, SMALL_CACHE,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeSet;
use std::time::Duration;

/// Sets of strings (paged once large); `ints` only ever holds integers (an intset in Redis).
const KEYS: [&str; 3] = ["s0", "s1", "s2"];
const INTS: &str = "ints";

fn member(rng: &mut StdRng) -> String {
    match rng.random_range(0..5) {
        0 => rng.random_range(-50..300).to_string(),
        1 => format!(
            "{}{}",
            "x".repeat(rng.random_range(0..30)),
            rng.random_range(0..9)
        ),
        _ => format!("member:{}", rng.random_range(0..400)),
    }
}

fn int_member(rng: &mut StdRng) -> String {
    rng.random_range(-100..200).to_string()
}

fn to_args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// The members of `key` in Redis (the reference for checking random picks).
fn redis_members(p: &mut Pair, key: &str) -> BTreeSet<String> {
    let (r, _) = p.redis_call(&["SMEMBERS", key]).unwrap();
    assert!(
        !matches!(r, Resp::Error(_)),
        "SMEMBERS {key} in Redis: {r:?}"
    );
    sorted(&r).into_iter().collect()
}

/// Every member a SSCAN to the end returns.
fn scan_members(c: &mut Client, key: &str, pattern: Option<&str>) -> BTreeSet<String> {
    let mut args = vec!["SSCAN", key, "COUNT", "5"];
    if let Some(p) = pattern {
        args.extend(["MATCH", p]);
    }
    scan_to_end(c, &args)
}

/// SRANDMEMBER key [count] on both (see `check_random_picks`).
fn check_srandmember(p: &mut Pair, key: &str, count: Option<i64>, ctx: &str) {
    let all = redis_members(p, key);
    check_random_picks(p, "SRANDMEMBER", key, count, &all, ctx);
}

/// SPOP key [count] on both, checked like SRANDMEMBER; then Redis gives back what it popped
/// and pops what kvtier popped, so both hold the same set again.
fn check_spop(p: &mut Pair, key: &str, count: Option<u64>, ctx: &str) {
    let mut args = vec!["SPOP".to_string(), key.to_string()];
    if let Some(n) = count {
        args.push(n.to_string());
    }
    let all = redis_members(p, key);
    let (want, _) = p.redis_call(&args).unwrap();
    let (got, _) = p.kv_call(&args).unwrap();
    assert!(
        same_shape(&want, &got),
        "{ctx}: {args:?}: {want:?} vs {got:?}"
    );
    let (w, g) = match &got {
        Resp::Nil => (Vec::new(), Vec::new()),
        Resp::Bulk(_) => (vec![want.as_str()], vec![got.as_str()]),
        _ => (sorted(&want), sorted(&got)),
    };
    assert_eq!(w.len(), g.len(), "{ctx}: {args:?} counts");
    assert!(
        g.iter().all(|m| all.contains(m)),
        "{ctx}: {g:?} not members"
    );
    let popped = g.iter().collect::<BTreeSet<&String>>().len();
    assert_eq!(popped, g.len(), "{ctx}: repeated pops {g:?}");
    if !w.is_empty() {
        let mut back = vec!["SADD".to_string(), key.to_string()];
        back.extend(w);
        p.redis_call(&back).unwrap();
        let mut pop = vec!["SREM".to_string(), key.to_string()];
        pop.extend(g);
        p.redis_call(&pop).unwrap();
    }
    assert_eq!(
        redis_members(p, key).len(),
        all.len() - popped,
        "{ctx}: SPOP left a different count"
    );
    p.check(&["SCARD", key]);
    p.check(&["EXISTS", key]);
}

fn workload(p: &mut Pair, seed: u64, steps: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    p.check(&["SET", "str", "text"]);
    for step in 0..steps {
        let ctx = format!("seed {seed} step {step}");
        let ints = rng.random_bool(0.15);
        let key = if ints {
            INTS
        } else {
            KEYS[rng.random_range(0..KEYS.len())]
        };
        let other = KEYS[rng.random_range(0..KEYS.len())];
        let pick = |rng: &mut StdRng| if ints { int_member(rng) } else { member(rng) };
        match rng.random_range(0..100) {
            0..=29 => {
                let mut args = vec!["SADD".to_string(), key.into()];
                for _ in 0..rng.random_range(1..9) {
                    args.push(pick(&mut rng));
                }
                p.check(&args);
            }
            30..=37 => {
                let mut args = vec!["SREM".to_string(), key.into()];
                for _ in 0..rng.random_range(1..6) {
                    args.push(pick(&mut rng));
                }
                p.check(&args);
            }
            38..=42 => {
                p.check(&["SISMEMBER".to_string(), key.into(), pick(&mut rng)]);
            }
            43..=45 => {
                let mut args = vec!["SMISMEMBER".to_string(), key.into()];
                for _ in 0..rng.random_range(1..5) {
                    args.push(pick(&mut rng));
                }
                p.check(&args);
            }
            46..=48 => {
                p.check(&["SCARD", key]);
                // An intset stays one: never paged (Redis lists its members sorted).
                p.check(&["OBJECT", "ENCODING", INTS]);
            }
            49..=51 => {
                let (want, _) = p.redis_call(&["SMEMBERS", key]).unwrap();
                let (got, _) = p.kv_call(&["SMEMBERS", key]).unwrap();
                assert!(same_shape(&want, &got), "{ctx}: SMEMBERS shape");
                assert_eq!(sorted(&want), sorted(&got), "{ctx}: SMEMBERS {key}");
            }
            52..=53 => {
                let pattern = ["*", "member:1*", "*x*", "2?"][rng.random_range(0..4)];
                let pattern = rng.random_bool(0.5).then_some(pattern);
                let mut rc = Client::connect(p.redis_port());
                let mut kc = Client::connect(p.kv_port());
                let want = scan_members(&mut rc, key, pattern);
                let got = scan_members(&mut kc, key, pattern);
                assert_eq!(want, got, "{ctx}: SSCAN {key} {pattern:?}");
            }
            54..=57 => {
                let count = match rng.random_range(0..4) {
                    0 => None,
                    1 => Some(0),
                    2 => Some(rng.random_range(1..40)),
                    _ => Some(-rng.random_range(1..40)),
                };
                check_srandmember(p, key, count, &ctx);
            }
            58..=61 => {
                let count = match rng.random_range(0..4) {
                    0 | 1 => None,
                    2 => Some(rng.random_range(0..6)),
                    _ => Some(rng.random_range(0..400)),
                };
                check_spop(p, key, count, &ctx);
            }
            62..=64 => {
                let m = pick(&mut rng);
                p.check(&["SMOVE".to_string(), key.into(), other.into(), m]);
            }
            65..=69 => {
                let cmd = ["SINTER", "SUNION", "SDIFF"][rng.random_range(0..3)];
                let mut args = vec![cmd, key, other];
                if rng.random_bool(0.3) {
                    args.push(KEYS[rng.random_range(0..KEYS.len())]);
                }
                let (want, _) = p.redis_call(&args).unwrap();
                let (got, _) = p.kv_call(&args).unwrap();
                assert!(same_shape(&want, &got), "{ctx}: {cmd} shape");
                assert_eq!(sorted(&want), sorted(&got), "{ctx}: {args:?}");
            }
            70..=72 => {
                let cmd = ["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"][rng.random_range(0..3)];
                let dst = ["s0", "s1", "s2", "stored"][rng.random_range(0..4)];
                p.check(&[cmd, dst, key, other]);
            }
            73 => {
                p.check(&["SINTERCARD", "2", key, other]);
                p.check(&["SINTERCARD", "2", key, other, "LIMIT", "3"]);
            }
            74..=75 => {
                p.check(&["SORT", key, "ALPHA"]);
                p.check(&["SORT", key, "ALPHA", "DESC", "LIMIT", "1", "5"]);
                p.check(&["SORT", key, "ALPHA", "STORE", "sorted"]);
            }
            76..=77 => {
                p.check(&["RENAME", key, other]);
            }
            78..=79 => {
                p.check(&["COPY", key, other, "REPLACE"]);
            }
            80 => {
                p.check(&["DEL", key]);
            }
            81..=82 => {
                p.check(&["TYPE", key]);
                p.check(&["EXISTS", key]);
                // Redis's WRONGTYPE, both ways.
                p.check(&["GET", key]);
                p.check(&["LLEN", key]);
                p.check(&["SADD", "str", "x"]);
                p.check(&["SCARD", "str"]);
                p.check(&["SMOVE", key, "str", "member:1"]);
                p.check(&["SMOVE", "str", key, "member:1"]);
                p.check(&["SINTER", key, "str"]);
                p.check(&["SUNIONSTORE", "dst", key, "str"]);
            }
            83..=84 => {
                p.check(&["EXPIRE", key, "1000"]);
                p.check(&["TTL", key]);
            }
            85..=87 => {
                // A DUMP of kvtier's set restores to the same members, in kvtier and in Redis.
                let (dump, _) = p.kv_call(&["DUMP", key]).unwrap();
                if let Resp::Bulk(payload) = dump {
                    let payload = payload.as_slice();
                    let args: [&[u8]; 5] = [b"RESTORE", b"restored", b"0", payload, b"REPLACE"];
                    p.check(&args);
                    let want = redis_members(p, key);
                    let (got, _) = p.kv_call(&["SMEMBERS", "restored"]).unwrap();
                    let got: BTreeSet<String> = sorted(&got).into_iter().collect();
                    assert_eq!(want, got, "{ctx}: DUMP/RESTORE");
                    assert_eq!(
                        want,
                        redis_members(p, "restored"),
                        "{ctx}: RESTORE in Redis"
                    );
                    p.check(&["SCARD", "restored"]);
                }
            }
            88..=89 => {
                p.check(&["SELECT", "1"]);
                p.check(&["MOVE".to_string(), "s9".into(), "0".into()]);
                p.check(&["SADD".to_string(), "s9".into(), member(&mut rng)]);
                p.check(&["MOVE", "s9", "0"]);
                p.check(&["SELECT", "0"]);
                p.check(&["SCARD", "s9"]);
            }
            _ => {
                // Add many at once: a set crosses the paging threshold inside one command.
                let mut args = to_args(&["SADD", key]);
                for _ in 0..40 {
                    args.push(pick(&mut rng));
                }
                p.check(&args);
            }
        }
    }
    for key in KEYS
        .iter()
        .chain(&[INTS, "s9", "stored", "restored", "dst"])
    {
        let want = redis_members(p, key);
        let (got, _) = p.kv_call(&["SMEMBERS", key]).unwrap();
        let got: BTreeSet<String> = sorted(&got).into_iter().collect();
        assert_eq!(want, got, "seed {seed}: final {key}");
        p.check(&["SCARD", key]);
    }
}

#[test]
fn paged_sets_answer_as_redis_does() {
    // Every write is saved at once (one sync each): the steps are few, the seeds vary.
    for seed in seeds() {
        let resp3 = seed % 2 == 0;
        let label = format!("paged sets, seed {seed}, resp3 {resp3}");
        let Some(mut p) = Pair::start(&label, &small_pages(SMALL_CACHE), resp3) else {
            return;
        };
        workload(&mut p, seed, 700);
        let mut c = Client::connect(p.kv_port());
        let pages = c.info_int("resident_pages") + c.info_int("pages_deleted");
        assert!(
            pages > 0,
            "[{label}] no set was paged: the test lost its point"
        );
        eprintln!("{label}: {} commands compared", p.commands());
    }
}

/// An all-integer set within `set-max-intset-entries` is an intset in Redis and is never paged;
/// one member that is no integer makes it a hash table, which is then paged.
#[test]
fn an_intset_is_never_paged() {
    let s = Server::start(&small_pages(&[]));
    let mut c = s.client();
    for i in 0..500 {
        c.cmd(&["SADD", "ints", &(i * 1000).to_string()]);
    }
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "ints"]), Resp::bulk("intset"));
    assert_eq!(c.info_int("resident_pages"), 0, "an intset was paged");
    assert_eq!(c.cmd(&["SADD", "ints", "not-a-number"]), Resp::Int(1));
    // Sizes are summed again each time the count passes a multiple of 64 (512 here).
    for i in 0..20 {
        c.cmd(&["SADD", "ints", &format!("m{i}")]);
    }
    assert_eq!(
        c.cmd(&["OBJECT", "ENCODING", "ints"]),
        Resp::bulk("hashtable")
    );
    assert!(c.info_int("resident_pages") > 0, "the set was not paged");
    assert_eq!(c.cmd(&["SCARD", "ints"]), Resp::Int(521));
    assert_eq!(c.cmd(&["SISMEMBER", "ints", "499000"]), Resp::Int(1));
}

/// A paged set survives a restart, and its deleted pages are removed in the background.
#[test]
fn a_paged_set_survives_restart_and_its_pages_are_deleted_with_it() {
    // No memory limit here: the pages stay in memory to be counted.
    let args = &small_pages(&[]);
    let mut s = Server::start(args);
    let mut c = s.client();
    for i in 0..2000 {
        c.cmd(&["SADD", "big", &format!("member-{i}")]);
    }
    assert_eq!(c.cmd(&["SCARD", "big"]), Resp::Int(2000));
    assert!(c.info_int("resident_pages") > 10, "the set was not paged");
    assert_eq!(
        c.cmd(&["OBJECT", "ENCODING", "big"]),
        Resp::bulk("hashtable")
    );
    assert!(s.shutdown(), "SHUTDOWN failed");
    s.restart(args);
    let mut c = s.client();
    assert_eq!(c.cmd(&["SCARD", "big"]), Resp::Int(2000));
    assert_eq!(c.cmd(&["SISMEMBER", "big", "member-1234"]), Resp::Int(1));
    assert_eq!(c.cmd(&["SISMEMBER", "big", "member-2000"]), Resp::Int(0));
    assert_eq!(c.cmd(&["TYPE", "big"]), Resp::Simple("set".into()));
    let members = sorted(&c.cmd(&["SMEMBERS", "big"]));
    let mut want: Vec<String> = (0..2000).map(|i| format!("member-{i}")).collect();
    want.sort();
    assert_eq!(members, want);
    assert_eq!(c.cmd(&["DEL", "big"]), Resp::Int(1));
    assert_gone_with_its_pages(&mut c, "big", 10);
}

/// Popping a paged set to the end deletes it: SPOP and SREM empty the pages, the last member
/// deletes the key, and its pages go to the collector.
#[test]
fn a_paged_set_popped_to_the_end_is_deleted() {
    let s = Server::start(&small_pages(&[]));
    let mut c = s.client();
    for i in 0..300 {
        c.cmd(&["SADD", "q", &format!("job-{i}")]);
    }
    assert!(c.info_int("resident_pages") > 0, "the set was not paged");
    let mut seen = BTreeSet::new();
    for _ in 0..100 {
        let r = c.cmd(&["SPOP", "q"]);
        assert!(seen.insert(r.as_str()), "popped twice: {r:?}");
    }
    for _ in 0..20 {
        // Distinct picks from a few pages, not the whole set.
        let picks = sorted(&c.cmd(&["SRANDMEMBER", "q", "50"]));
        assert_eq!(picks.iter().collect::<BTreeSet<_>>().len(), 50, "{picks:?}");
        assert!(
            picks.iter().all(|m| !seen.contains(m)),
            "a popped member: {picks:?}"
        );
        let drawn = sorted(&c.cmd(&["SRANDMEMBER", "q", "-500"]));
        assert_eq!(drawn.len(), 500);
        assert!(
            drawn.iter().all(|m| !seen.contains(m)),
            "a popped member drawn"
        );
        let popped = sorted(&c.cmd(&["SPOP", "q", "7"]));
        assert_eq!(popped.len(), 7);
        for m in popped {
            assert!(seen.insert(m.clone()), "popped twice: {m}");
        }
    }
    assert_eq!(c.cmd(&["SCARD", "q"]), Resp::Int(60));
    let rest = c.cmd(&["SPOP", "q", "1000"]);
    for m in sorted(&rest) {
        assert!(seen.insert(m.clone()), "popped twice: {m}");
    }
    assert_eq!(seen.len(), 300);
    assert_eq!(c.cmd(&["SPOP", "q"]), Resp::Nil);
    assert_gone_with_its_pages(&mut c, "q", 0);
}

/// A paged set as a source of ZUNION, ZINTER, ZDIFF and their STORE forms, as in Redis (members
/// score 1).
#[test]
fn a_paged_set_is_a_source_of_zunion_zinter_zdiff() {
    let Some(mut p) = Pair::start(
        "paged set as a sorted-set source",
        &small_pages(SMALL_CACHE),
        false,
    ) else {
        return;
    };
    let mut args = to_args(&["SADD", "big"]);
    args.extend((0..200).map(|i| format!("member-{i}")));
    p.check(&args);
    p.check(&["ZADD", "z", "5", "member-3", "7", "other"]);
    for cmd in [
        &["ZUNIONSTORE", "out", "2", "big", "z"][..],
        &["ZINTERSTORE", "out", "2", "big", "z", "WEIGHTS", "2", "3"],
        &["ZDIFFSTORE", "out", "2", "big", "z"],
        &["ZINTERCARD", "2", "big", "z"],
        &["ZINTER", "2", "z", "big", "WITHSCORES"],
    ] {
        p.check(cmd);
    }
    let (want, _) = p.redis_call(&["ZUNION", "2", "big", "z"]).unwrap();
    let (got, _) = p.kv_call(&["ZUNION", "2", "big", "z"]).unwrap();
    assert_eq!(sorted(&want), sorted(&got));
}

/// A save of a changed paged set writes the changed page and the manifest, not the set: SADD
/// and SREM of one member each save a handful of records whatever the set's size.
#[test]
fn a_write_to_a_paged_set_saves_one_page_and_the_manifest() {
    let s = Server::start(&small_pages(&[]));
    let mut c = s.client();
    for chunk in 0..20 {
        let mut args = vec!["SADD".to_string(), "big".to_string()];
        args.extend((0..100).map(|i| format!("member-{}", chunk * 100 + i)));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        c.cmd(&args);
    }
    assert!(c.info_int("resident_pages") > 100, "the set was not paged");
    let settled = |c: &mut Client| c.info_int("dirty_keys") == 0;
    wait_until(Duration::from_secs(10), "the set saved", || settled(&mut c));
    for (cmd, member) in [("SADD", "new-member"), ("SREM", "member-777")] {
        let before = c.info_int("keys_saved");
        assert_eq!(c.cmd(&[cmd, "big", member]), Resp::Int(1));
        wait_until(Duration::from_secs(10), "the write saved", || {
            settled(&mut c) && c.info_int("keys_saved") > before
        });
        let saved = c.info_int("keys_saved") - before;
        eprintln!("{cmd} of one member: {saved} records saved");
        // The member's page and the manifest (and, for a growing set, a page a split made).
        assert!(saved <= 4, "{cmd} of one member saved {saved} records");
    }
    assert_eq!(c.cmd(&["SCARD", "big"]), Resp::Int(2000));
}
