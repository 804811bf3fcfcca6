//! The disk tier's fast paths, seen from outside: new keys need no disk probe (key filters),
//! blind writes do not load, a pipeline of cold reads is loaded in a few batches (prefetch), a
//! write stream is saved in large batches (group commit).

use kvtier_tests::{Client, Resp, Server};
use std::time::{Duration, Instant};

fn wait_filters(c: &mut Client) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.info_int("filters_building") > 0 {
        assert!(Instant::now() < deadline, "key filters not built");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A server whose store holds `n` keys `k:<i>` = `v:<i>`, restarted so that none is in memory.
fn cold_server(n: usize, extra: &[&str]) -> (Server, Option<tempfile::TempDir>) {
    let mut s = Server::start(&["--cache-flush-delay", "0"]);
    let tmp = s.take_tmp();
    let mut c = s.client();
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let mut args: Vec<String> = vec!["MSET".into()];
        for i in chunk {
            args.push(format!("k:{i}"));
            args.push(format!("v:{i}"));
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(c.cmd(&refs), Resp::ok());
    }
    assert!(s.shutdown());
    let s2 = Server::start_in(&s.dir.clone(), extra);
    (s2, tmp)
}

#[test]
fn new_keys_are_known_absent_without_a_disk_probe() {
    let (s, _tmp) = cold_server(2000, &[]);
    let mut c = s.client();
    wait_filters(&mut c);
    assert!(c.info_int("filter_keys") >= 2000);
    let misses = c.info_int("disk_load_misses");
    let loads = c.info_int("disk_loads");
    for i in 0..1000 {
        assert_eq!(c.cmd(&["GET", &format!("new:{i}")]), Resp::Nil);
        assert_eq!(c.cmd(&["INCR", &format!("counter:{i}")]), Resp::Int(1));
    }
    let probes = c.info_int("disk_load_misses") - misses;
    // About 1% false positives are allowed, each costing one probe.
    assert!(probes < 60, "{probes} disk probes for 2000 new keys");
    assert!(c.info_int("filter_probes_avoided") >= 1900);
    assert_eq!(c.info_int("disk_loads"), loads, "a new key was loaded");
    // Keys that are on disk are still found.
    assert_eq!(c.cmd(&["GET", "k:1234"]), Resp::bulk("v:1234"));
}

#[test]
fn blind_writes_do_not_load_and_replace_cold_values() {
    let (mut s, _tmp) = cold_server(500, &[]);
    let mut c = s.client();
    let loads = c.info_int("disk_loads");
    assert_eq!(c.cmd(&["SET", "k:1", "new"]), Resp::ok());
    assert_eq!(c.cmd(&["MSET", "k:2", "a", "k:3", "b"]), Resp::ok());
    assert_eq!(c.cmd(&["SETEX", "k:4", "100", "c"]), Resp::ok());
    assert_eq!(
        c.info_int("disk_loads"),
        loads,
        "a blind write loaded its key"
    );
    // A write that reads (NX, GET) still loads.
    assert_eq!(c.cmd(&["SET", "k:5", "x", "NX"]), Resp::Nil);
    assert_eq!(c.cmd(&["SET", "k:6", "y", "GET"]), Resp::bulk("v:6"));
    let dir = s.dir.clone();
    assert!(s.shutdown());
    let s2 = Server::start_in(&dir, &[]);
    let mut c = s2.client();
    assert_eq!(c.cmd(&["GET", "k:1"]), Resp::bulk("new"));
    assert_eq!(c.cmd(&["GET", "k:3"]), Resp::bulk("b"));
    assert_eq!(c.cmd(&["GET", "k:5"]), Resp::bulk("v:5"));
    assert_eq!(c.cmd(&["GET", "k:6"]), Resp::bulk("y"));
    assert_eq!(c.cmd(&["DBSIZE"]), Resp::Int(500));
    let ttl = c.cmd(&["TTL", "k:4"]).as_int();
    assert!((90..=100).contains(&ttl), "ttl {ttl}");
}

#[test]
fn a_pipeline_of_cold_reads_is_loaded_in_a_few_batches() {
    let (s, _tmp) = cold_server(1000, &[]);
    let mut c = s.client();
    let batches = c.info_int("load_batches");
    let loads = c.info_int("disk_loads");
    let mut raw = Vec::new();
    for i in 0..100 {
        let key = format!("k:{}", i * 7);
        raw.extend_from_slice(format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len()).as_bytes());
    }
    c.send_raw(&raw);
    for i in 0..100 {
        assert_eq!(c.read(), Resp::bulk(&format!("v:{}", i * 7)));
    }
    assert_eq!(c.info_int("disk_loads") - loads, 100);
    // About one job per IO thread: the keys are shared out once, not in ever smaller jobs.
    let used = c.info_int("load_batches") - batches;
    assert!(used <= 4, "100 pipelined cold GETs took {used} load jobs");
}

/// A client resumed by one key's arrival may park again on a key that is not loading: one that
/// was resident when the prefetch looked and that the loads for the rest of the pipeline pushed
/// out of memory before the client got to it. That load is sent before the server sleeps; it
/// used to wait for the next wake-up, with `hz 1` up to a second each time.
#[test]
fn a_pipeline_of_cold_reads_under_memory_pressure_does_not_wait_for_the_cron() {
    let value = |i: usize| format!("{i}:{}", "x".repeat(16 << 10));
    let mut s = Server::start(&["--cache-flush-delay", "0"]);
    let _tmp = s.take_tmp();
    let mut c = s.client();
    for i in 0..400 {
        assert_eq!(c.cmd(&["SET", &format!("k:{i}"), &value(i)]), Resp::ok());
    }
    assert!(s.shutdown());
    let s = Server::start_in(&s.dir.clone(), &["--hz", "1", "--maxmemory", "1mb"]);
    let mut c = s.client();
    let mut slowest = Duration::ZERO;
    for round in 0..10 {
        // 20 keys made resident, then a pipeline that alternates a cold key with one of them:
        // the cold loads (16 KB each through a 1 MB cache) evict the resident ones first.
        let warm: Vec<usize> = (round * 20..round * 20 + 20).collect();
        for &i in &warm {
            assert_eq!(c.cmd(&["GET", &format!("k:{i}")]), Resp::bulk(&value(i)));
        }
        let order: Vec<usize> = warm.iter().flat_map(|&i| [200 + i, i]).collect();
        let mut raw = Vec::new();
        for i in &order {
            let key = format!("k:{i}");
            raw.extend_from_slice(
                format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len()).as_bytes(),
            );
        }
        let started = Instant::now();
        c.send_raw(&raw);
        for &i in &order {
            assert_eq!(c.read(), Resp::bulk(&value(i)));
        }
        slowest = slowest.max(started.elapsed());
    }
    // Not a benchmark: the stall this guards against costs a second (most rounds had one);
    // 40 reads from the store take milliseconds.
    assert!(
        slowest < Duration::from_millis(500),
        "a pipeline of 40 GETs took {slowest:?}"
    );
}

#[test]
fn a_write_stream_is_saved_in_large_batches() {
    let s = Server::start(&["--cache-flush-delay", "0"]);
    let mut c = s.client();
    let n = 20_000;
    let mut raw = Vec::new();
    for i in 0..n {
        let key = format!("w:{i}");
        raw.extend_from_slice(
            format!(
                "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$5\r\nvalue\r\n",
                key.len()
            )
            .as_bytes(),
        );
    }
    c.send_raw(&raw);
    for _ in 0..n {
        assert_eq!(c.read(), Resp::ok());
    }
    assert_eq!(c.cmd(&["SAVE"]), Resp::ok());
    let saved = c.info_int("keys_saved");
    let batches = c.info_int("save_batches");
    assert!(saved >= n as i64);
    assert!(
        saved / batches.max(1) >= 20,
        "{saved} keys in {batches} batches: no group commit"
    );
}
