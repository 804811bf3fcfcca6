//! DBSIZE and INFO `keys=` are exact without reading the keyspace: a per-DB count persisted
//! with every save batch, merged with what memory holds. These tests keep memory tiny so most
//! keys live only on disk, write blind (SET/MSET over keys that were never loaded), restart
//! cleanly and after kill -9, and compare DBSIZE with the keys that are really there.

use kvtier_tests::{Client, Resp, Server};
use std::collections::HashSet;
use std::time::{Duration, Instant};

const TINY: &[&str] = &["--maxmemory", "1mb", "--cache-flush-delay", "0"];

fn mset(c: &mut Client, keys: impl Iterator<Item = String>) {
    let mut args: Vec<String> = vec!["MSET".into()];
    for k in keys {
        args.push(k.clone());
        args.push(format!("value-of-{k}-{}", "x".repeat(100)));
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(c.cmd(&refs), Resp::ok());
}

/// Every key of the DB by a full iteration of SCAN (which reads the store page by page).
fn scan_all(c: &mut Client) -> HashSet<String> {
    let mut keys = HashSet::new();
    let mut cursor = "0".to_string();
    loop {
        let Resp::Array(reply) = c.cmd(&["SCAN", &cursor, "COUNT", "1000"]) else {
            panic!("SCAN failed")
        };
        cursor = reply[0].as_str();
        if let Resp::Array(page) = &reply[1] {
            keys.extend(page.iter().map(Resp::as_str));
        }
        if cursor == "0" {
            return keys;
        }
    }
}

fn keyspace_keys(c: &mut Client, db: u32) -> i64 {
    let info = c.cmd(&["INFO", "keyspace"]).as_str();
    let prefix = format!("db{db}:keys=");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |rest| {
            rest.split(',').next().unwrap().parse().expect("keys=N")
        })
}

#[test]
fn dbsize_is_exact_with_blind_writes_over_cold_keys_and_across_a_restart() {
    let mut s = Server::start(TINY);
    let mut c = s.client();
    mset(&mut c, (0..3000).map(|i| format!("k:{i}")));
    assert_eq!(c.cmd(&["SAVE"]), Resp::ok());
    // Overwrites of keys that are only on disk (blind: no load), new keys, deletes of cold keys.
    mset(&mut c, (2500..3500).map(|i| format!("k:{i}")));
    for i in 0..100 {
        c.cmd(&["SET", &format!("k:{}", i * 7), "again"]);
    }
    let deleted = c.cmd(&["DEL", "k:1", "k:2", "k:3", "missing"]);
    assert_eq!(deleted, Resp::Int(3));
    let expected = 3500 - 3;
    assert_eq!(c.cmd(&["DBSIZE"]), Resp::Int(expected));
    // INFO shows the exact count once the blind writes' saves have found out whether their
    // keys existed (until then it shows the resident keys, with `cached=1`).
    assert_eq!(c.cmd(&["SAVE"]), Resp::ok());
    assert_eq!(keyspace_keys(&mut c, 0), expected);
    assert_eq!(scan_all(&mut c).len() as i64, expected);
    assert!(s.shutdown());
    let s = Server::start_in(&s.dir.clone(), TINY);
    let mut c = s.client();
    assert_eq!(c.cmd(&["DBSIZE"]), Resp::Int(expected), "after a restart");
    assert_eq!(keyspace_keys(&mut c, 0), expected);
    assert_eq!(scan_all(&mut c).len() as i64, expected);
}

#[test]
fn dbsize_matches_the_keys_that_survive_kill_9() {
    let mut s = Server::start(TINY);
    let mut c = s.client();
    mset(&mut c, (0..2000).map(|i| format!("a:{i}")));
    assert_eq!(c.cmd(&["SAVE"]), Resp::ok());
    // Writes racing the kill: some may be lost, but the count must agree with the data.
    mset(&mut c, (1000..4000).map(|i| format!("a:{i}")));
    for i in 0..200 {
        c.cmd(&["DEL", &format!("a:{}", i * 3)]);
    }
    s.kill9();
    let s = Server::start_in(&s.dir.clone(), TINY);
    let mut c = s.client();
    let present = scan_all(&mut c);
    assert!(
        present.len() >= 2000 - 200,
        "acked before SAVE: {}",
        present.len()
    );
    assert_eq!(c.cmd(&["DBSIZE"]), Resp::Int(present.len() as i64));
    assert_eq!(keyspace_keys(&mut c, 0), present.len() as i64);
}

#[test]
fn move_and_flushdb_keep_both_dbs_counts_exact() {
    let s = Server::start(TINY);
    let mut c = s.client();
    mset(&mut c, (0..1500).map(|i| format!("m:{i}")));
    assert_eq!(c.cmd(&["MOVE", "m:7", "3"]), Resp::Int(1));
    assert_eq!(c.cmd(&["DBSIZE"]), Resp::Int(1499));
    assert_eq!(c.cmd(&["SELECT", "3"]), Resp::ok());
    assert_eq!(c.cmd(&["DBSIZE"]), Resp::Int(1));
    assert_eq!(c.cmd(&["FLUSHDB"]), Resp::ok());
    assert_eq!(c.cmd(&["DBSIZE"]), Resp::Int(0));
    assert_eq!(c.cmd(&["SELECT", "0"]), Resp::ok());
    assert_eq!(c.cmd(&["DBSIZE"]), Resp::Int(1499));
    assert_eq!(c.cmd(&["FLUSHALL"]), Resp::ok());
    assert_eq!(c.cmd(&["DBSIZE"]), Resp::Int(0));
    mset(&mut c, (0..10).map(|i| format!("n:{i}")));
    assert_eq!(c.cmd(&["DBSIZE"]), Resp::Int(10));
}

#[test]
fn keys_that_expired_on_disk_are_not_returned_and_stop_being_counted() {
    let s = Server::start(TINY);
    let mut c = s.client();
    mset(&mut c, (0..1000).map(|i| format!("keep:{i}")));
    for i in 0..300 {
        let k = format!("gone:{i}");
        c.cmd(&["SET", &k, &"y".repeat(200), "PX", "400"]);
    }
    // Push them out of memory, then let them expire there.
    mset(&mut c, (1000..3000).map(|i| format!("keep:{i}")));
    std::thread::sleep(Duration::from_millis(600));
    let keys = scan_all(&mut c);
    assert!(
        keys.iter().all(|k| k.starts_with("keep:")),
        "SCAN returned an expired key"
    );
    let Resp::Array(matched) = c.cmd(&["KEYS", "gone:*"]) else {
        panic!("KEYS")
    };
    assert!(matched.is_empty(), "KEYS returned expired keys");
    // The sweep reclaims them from the store; DBSIZE, like Redis's, counts a key until then.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n = c.cmd(&["DBSIZE"]).as_int();
        if n == 3000 {
            break;
        }
        assert!(Instant::now() < deadline, "expired keys still counted: {n}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
