//! Keyspace-wide commands over a store much larger than memory: they read the store on the IO
//! workers, page by page, so other clients are served meanwhile; SCAN keeps its guarantee under
//! concurrent writes and deletes; counts stay exact.

use kvtier_tests::{Client, Resp, Server};
use std::collections::HashSet;
use std::time::Duration;

fn load(c: &mut Client, prefix: &str, n: usize) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let mut args: Vec<String> = vec!["MSET".into()];
        for i in chunk {
            args.push(format!("{prefix}:{i}"));
            args.push(format!("v{i}"));
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(c.cmd(&refs), Resp::ok());
    }
}

fn cold(n: usize) -> (Server, Option<tempfile::TempDir>) {
    let mut s = Server::start(&["--cache-flush-delay", "0"]);
    let tmp = s.take_tmp();
    load(&mut s.client(), "key", n);
    assert!(s.shutdown());
    let s2 = Server::start_in(&s.dir.clone(), &["--maxmemory", "4mb"]);
    (s2, tmp)
}

#[test]
fn keys_runs_while_other_clients_are_served() {
    let (s, _tmp) = cold(10_000);
    let mut a = s.client();
    let mut b = s.client();
    a.send(&["KEYS", "*"]);
    // While the store is read for A, B is answered: A's reply is not there yet when B's is.
    assert_eq!(b.cmd(&["PING"]), Resp::Simple("PONG".into()));
    a.stream.set_nonblocking(true).unwrap();
    let mut probe = [0u8; 1];
    let pending = matches!(
        a.stream.peek(&mut probe),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
    );
    a.stream.set_nonblocking(false).unwrap();
    assert!(
        pending,
        "KEYS answered before another client's PING: it blocked the server"
    );
    a.set_timeout(Duration::from_secs(60));
    match a.read() {
        Resp::Array(keys) => assert_eq!(keys.len(), 10_000),
        other => panic!("KEYS: {other:?}"),
    }
}

#[test]
fn scan_returns_every_key_present_throughout_despite_writes_and_deletes() {
    let (s, _tmp) = cold(5_000);
    let mut c = s.client();
    let mut w = s.client();
    // key:0..2499 stay; key:2500.. are deleted during the scan; new keys are added.
    let mut seen = HashSet::new();
    let mut cursor = "0".to_string();
    let mut round = 0;
    loop {
        let Resp::Array(reply) = c.cmd(&["SCAN", &cursor, "COUNT", "200"]) else {
            panic!("SCAN")
        };
        cursor = reply[0].as_str();
        if let Resp::Array(keys) = &reply[1] {
            seen.extend(keys.iter().map(Resp::as_str));
        }
        w.cmd(&["DEL", &format!("key:{}", 2500 + round)]);
        w.cmd(&["SET", &format!("new:{round}"), "x"]);
        round += 1;
        if cursor == "0" {
            break;
        }
        assert!(round < 1000, "SCAN does not end");
    }
    for i in 0..2500 {
        assert!(seen.contains(&format!("key:{i}")), "key:{i} missed by SCAN");
    }
    assert!(
        round > 10,
        "SCAN COUNT 200 over 5000 keys took {round} calls"
    );
}

#[test]
fn counts_match_and_type_are_exact_for_cold_keys() {
    let (s, _tmp) = cold(3_000);
    let mut c = s.client();
    assert_eq!(c.cmd(&["DBSIZE"]), Resp::Int(3000));
    c.cmd(&["DEL", "key:1", "key:2"]);
    c.cmd(&["SET", "fresh", "1"]);
    c.cmd(&["HSET", "h", "f", "v"]);
    assert_eq!(c.cmd(&["DBSIZE"]), Resp::Int(3000));
    let Resp::Array(keys) = c.cmd(&["KEYS", "key:1*"]) else {
        panic!("KEYS")
    };
    // key:1, key:10..19, key:100..199, key:1000..1999 minus the deleted key:1.
    assert_eq!(keys.len(), 1 + 10 + 100 + 1000 - 1);
    let mut hashes = Vec::new();
    let mut cursor = "0".to_string();
    loop {
        let Resp::Array(reply) = c.cmd(&["SCAN", &cursor, "TYPE", "hash", "COUNT", "500"]) else {
            panic!("SCAN")
        };
        cursor = reply[0].as_str();
        if let Resp::Array(keys) = &reply[1] {
            hashes.extend(keys.iter().map(Resp::as_str));
        }
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(hashes, ["h"]);
    let k = c.cmd(&["RANDOMKEY"]).as_str();
    assert_eq!(c.cmd(&["EXISTS", &k]), Resp::Int(1), "RANDOMKEY gave {k}");
    c.cmd(&["FLUSHDB"]);
    assert_eq!(c.cmd(&["DBSIZE"]), Resp::Int(0));
    assert_eq!(c.cmd(&["RANDOMKEY"]), Resp::Nil);
}

#[test]
fn randomkey_spreads_over_keys_that_are_only_on_disk() {
    let (s, _tmp) = cold(3_000);
    let mut c = s.client();
    // Start positions come from a sample of the store's keys, taken by the key scan that
    // rebuilds the key filter after a restart (until then RANDOMKEY reads from the start).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while c.info_int("filters_building") > 0 {
        assert!(std::time::Instant::now() < deadline, "filters never built");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut seen = HashSet::new();
    for _ in 0..60 {
        let k = c.cmd(&["RANDOMKEY"]).as_str();
        assert!(k.starts_with("key:"), "RANDOMKEY gave {k}");
        seen.insert(k);
    }
    // A start that is always the store's beginning would give the same few keys.
    assert!(
        seen.len() >= 25,
        "only {} distinct keys in 60 calls",
        seen.len()
    );
}
