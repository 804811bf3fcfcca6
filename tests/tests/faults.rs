//! Faults found by probing the engine from outside, each pinned by a test that failed before its
//! fix: client input that crashed the server, acknowledged writes lost at SHUTDOWN, hung
//! clients, flushes acknowledged before they were durable, a damaged record breaking its DB,
//! and memory limits escaped by pipelining.

use kvtier_tests::{assert_err, test_backend, Client, Resp, Server};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn restart(s: &mut Server, extra: &[&str]) -> Server {
    assert!(s.shutdown(), "SHUTDOWN failed");
    Server::start_in(&s.dir.clone(), extra)
}

#[test]
fn flush_and_bgsave_inside_multi_neither_crash_nor_lose_data() {
    for flush in [&["FLUSHDB"][..], &["FLUSHALL"], &["BGSAVE"]] {
        let mut s = Server::start(&["--cache-flush-delay", "60"]);
        let _tmp = s.take_tmp();
        let mut c = s.client();
        assert_eq!(c.cmd(&["SET", "before", "x"]), Resp::ok());
        c.cmd(&["MULTI"]);
        c.cmd(&["SET", "a", "1"]);
        c.cmd(&[flush[0]]);
        c.cmd(&["SET", "b", "2"]);
        let reply = c.cmd(&["EXEC"]);
        let Resp::Array(items) = &reply else {
            panic!("EXEC with {flush:?}: {reply:?}");
        };
        assert_eq!(items.len(), 3, "{reply:?}");
        assert_eq!(c.cmd(&["PING"]), Resp::Simple("PONG".into()));
        let flushed = flush[0] != "BGSAVE";
        let mut s2 = restart(&mut s, &[]);
        let mut c = s2.client();
        assert_eq!(c.cmd(&["GET", "b"]), Resp::bulk("2"), "{flush:?}");
        let old = if flushed { Resp::Nil } else { Resp::bulk("1") };
        assert_eq!(c.cmd(&["GET", "a"]), old, "{flush:?}");
        let old = if flushed { Resp::Nil } else { Resp::bulk("x") };
        assert_eq!(c.cmd(&["GET", "before"]), old, "{flush:?}");
        s2.kill9();
    }
}

#[test]
fn flushall_inside_exec_is_durable_before_its_reply() {
    let mut s = Server::start(&[]);
    let _tmp = s.take_tmp();
    let mut c = s.client();
    for i in 0..50 {
        c.cmd(&["SET", &format!("old{i}"), "v"]);
    }
    assert_eq!(c.cmd(&["SAVE"]), Resp::ok());
    c.cmd(&["MULTI"]);
    c.cmd(&["FLUSHALL"]);
    assert_eq!(c.cmd(&["EXEC"]), Resp::Array(vec![Resp::ok()]));
    s.kill9();
    let mut s2 = Server::start_in(&s.dir.clone(), &[]);
    let mut c = s2.client();
    assert_eq!(c.cmd(&["DBSIZE"]), Resp::Int(0));
    assert_eq!(c.cmd(&["GET", "old7"]), Resp::Nil);
    s2.kill9();
}

#[test]
fn save_and_shutdown_are_refused_inside_multi_as_redis_does() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.cmd(&["MULTI"]);
    assert_eq!(
        c.cmd(&["SAVE"]),
        Resp::err("ERR Command not allowed inside a transaction")
    );
    assert_eq!(
        c.cmd(&["SHUTDOWN"]),
        Resp::err("ERR Command not allowed inside a transaction")
    );
    assert_err(&c.cmd(&["EXEC"]), "EXECABORT");
    assert_eq!(c.cmd(&["PING"]), Resp::Simple("PONG".into()));
}

#[test]
fn bgsave_inside_multi_finishes() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.cmd(&["SET", "k", "v"]);
    c.cmd(&["MULTI"]);
    c.cmd(&["BGSAVE"]);
    assert_eq!(
        c.cmd(&["EXEC"]),
        Resp::Array(vec![Resp::Simple("Background saving scheduled".into())])
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.info_int("rdb_bgsave_in_progress") != 0 {
        assert!(
            Instant::now() < deadline,
            "BGSAVE inside MULTI never finished"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        c.cmd(&["BGSAVE"]),
        Resp::Simple("Background saving started".into())
    );
}

#[test]
fn shutdown_loses_no_acknowledged_write_of_concurrent_writers() {
    let mut s = Server::start(&["--cache-flush-delay", "1"]);
    let _tmp = s.take_tmp();
    let port = s.port;
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut c = Client::connect(port);
                c.set_timeout(Duration::from_secs(30));
                let mut acked = Vec::new();
                for i in 0..1_000_000 {
                    if stop.load(Ordering::Relaxed) && i % 64 == 0 && acked.len() > 10_000 {
                        break;
                    }
                    let key = format!("w{w}:{i}");
                    c.send(&["SET", &key, "v"]);
                    // The server closes connections at exit: a write with no reply is unknown.
                    match c.try_read() {
                        Ok(Resp::Simple(ok)) if ok == "OK" => acked.push(key),
                        _ => break,
                    }
                }
                acked
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(400));
    assert!(s.shutdown(), "SHUTDOWN failed");
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<String> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert!(acked.len() > 100, "writers did not get going");
    let s2 = Server::start_in(&s.dir.clone(), &[]);
    let mut c = s2.client();
    let mut missing = 0;
    for chunk in acked.chunks(500) {
        let mut args = vec!["MGET"];
        args.extend(chunk.iter().map(String::as_str));
        let Resp::Array(vals) = c.cmd(&args) else {
            panic!("MGET failed")
        };
        missing += vals.iter().filter(|v| **v == Resp::Nil).count();
    }
    assert_eq!(missing, 0, "{missing} of {} acked SETs lost", acked.len());
}

#[test]
fn flushdb_answers_clients_parked_on_cold_keys() {
    let mut s = Server::start(&["--maxmemory", "2mb", "--cache-flush-delay", "0"]);
    let _tmp = s.take_tmp();
    let mut c = s.client();
    let n = 20_000;
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let mut args: Vec<String> = vec!["MSET".into()];
        for i in chunk {
            args.push(format!("cold:{i}"));
            args.push("value".into());
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(c.cmd(&refs), Resp::ok());
    }
    let s2 = restart(&mut s, &["--maxmemory", "2mb"]);
    let mut reader = s2.client();
    reader.set_timeout(Duration::from_secs(20));
    let keys: Vec<String> = (0..n).map(|i| format!("cold:{i}")).collect();
    let mut args = vec!["MGET"];
    args.extend(keys.iter().map(String::as_str));
    reader.send(&args);
    std::thread::sleep(Duration::from_millis(20));
    let mut other = s2.client();
    assert_eq!(other.cmd(&["FLUSHDB"]), Resp::ok());
    match reader.read() {
        Resp::Array(v) => assert_eq!(v.len(), n),
        other => panic!("MGET: {other:?}"),
    }
}

#[test]
fn keyspace_commands_see_a_pending_flush() {
    let mut s = Server::start(&["--cache-flush-delay", "0"]);
    let _tmp = s.take_tmp();
    let mut c = s.client();
    for i in 0..2000 {
        c.cmd(&["SET", &format!("k{i}"), "v"]);
    }
    let s2 = restart(&mut s, &["--maxmemory", "2mb"]);
    let mut c = s2.client();
    c.cmd(&["MULTI"]);
    for q in [
        &["FLUSHDB"][..],
        &["DBSIZE"],
        &["KEYS", "*"],
        &["GET", "k1"],
        &["SCAN", "0"],
    ] {
        assert_eq!(c.cmd(q), Resp::Simple("QUEUED".into()));
    }
    assert_eq!(
        c.cmd(&["EXEC"]),
        Resp::Array(vec![
            Resp::ok(),
            Resp::Int(0),
            Resp::Array(vec![]),
            Resp::Nil,
            Resp::Array(vec![Resp::bulk("0"), Resp::Array(vec![])]),
        ])
    );
    assert_eq!(s2.client().cmd(&["DBSIZE"]), Resp::Int(0));
}

#[test]
fn scan_type_filters_keys_that_are_only_on_disk() {
    let mut s = Server::start(&[]);
    let _tmp = s.take_tmp();
    let mut c = s.client();
    c.cmd(&["SET", "s1", "v"]);
    c.cmd(&["SET", "s2", "v"]);
    c.cmd(&["HSET", "h", "f", "v"]);
    c.cmd(&["RPUSH", "l", "a"]);
    c.cmd(&["SADD", "set", "a"]);
    let s2 = restart(&mut s, &[]);
    let mut c = s2.client();
    let Resp::Array(reply) = c.cmd(&["SCAN", "0", "COUNT", "100", "TYPE", "string"]) else {
        panic!("SCAN")
    };
    let mut keys: Vec<String> = match &reply[1] {
        Resp::Array(k) => k.iter().map(Resp::as_str).collect(),
        other => panic!("{other:?}"),
    };
    keys.sort();
    assert_eq!(keys, ["s1", "s2"]);
}

#[test]
fn watch_sees_a_flush_run_inside_another_clients_exec() {
    let s = Server::start(&[]);
    let mut a = s.client();
    let mut b = s.client();
    a.cmd(&["SET", "k", "0"]);
    assert_eq!(a.cmd(&["WATCH", "k"]), Resp::ok());
    b.cmd(&["MULTI"]);
    b.cmd(&["FLUSHDB"]);
    assert_eq!(b.cmd(&["EXEC"]), Resp::Array(vec![Resp::ok()]));
    a.cmd(&["MULTI"]);
    a.cmd(&["SET", "k", "1"]);
    assert_eq!(a.cmd(&["EXEC"]), Resp::NilArray);
}

/// The record files of the fs store's Redis DBs (named by a 64-hex-digit hash of the key; the
/// reserved DB of kvtier's own records, such as key counts, is left out).
fn record_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name() != Some(std::ffi::OsStr::new(&format!("db{}", u32::MAX))) {
                    stack.push(p);
                }
            } else if p.file_name().is_some_and(|n| n.len() == 64) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn one_damaged_fs_record_is_reported_skipped_and_replaceable() {
    if test_backend() != "fs" {
        return;
    }
    let mut s = Server::start(&[]);
    let _tmp = s.take_tmp();
    let mut c = s.client();
    c.cmd(&["SET", "bad", "v"]);
    c.cmd(&["SET", "bad2", "v"]);
    let mut s2 = restart(&mut s, &[]);
    let files_before = record_files(&s2.dir);
    assert_eq!(files_before.len(), 2, "{files_before:?}");
    let mut c = s2.client();
    for i in 0..20 {
        c.cmd(&["SET", &format!("good{i}"), "v"]);
    }
    let s3 = restart(&mut s2, &[]);
    drop(s3);
    for f in &files_before {
        std::fs::write(f, b"this is not a kvtier record at all").unwrap();
    }
    let s4 = Server::start_in(&s2.dir.clone(), &[]);
    let mut c = s4.client();
    // DBSIZE counts records (the persisted count): the two damaged keys exist until they are
    // replaced or deleted; KEYS and SCAN skip what they cannot read.
    assert_eq!(c.cmd(&["DBSIZE"]), Resp::Int(22));
    let Resp::Array(keys) = c.cmd(&["KEYS", "*"]) else {
        panic!("KEYS")
    };
    assert_eq!(keys.len(), 20);
    let Resp::Array(page) = c.cmd(&["SCAN", "0", "COUNT", "1000"]) else {
        panic!("SCAN")
    };
    assert_eq!(page[0], Resp::bulk("0"));
    assert!(c.cmd(&["RANDOMKEY"]).as_str().starts_with("good"));
    assert_eq!(c.cmd(&["GET", "good3"]), Resp::bulk("v"));
    assert_err(&c.cmd(&["GET", "bad"]), "IOERR");
    assert!(c.info_int("corrupt_records") >= 1);
    // Writers that do not read the old value replace the damaged record.
    assert_eq!(c.cmd(&["SET", "bad", "new"]), Resp::ok());
    assert_eq!(c.cmd(&["GET", "bad"]), Resp::bulk("new"));
    c.cmd(&["DEL", "bad2"]);
    assert_eq!(c.cmd(&["SAVE"]), Resp::ok());
    assert_eq!(c.cmd(&["EXISTS", "bad2"]), Resp::Int(0));
    assert_eq!(c.cmd(&["DBSIZE"]), Resp::Int(21));
}

#[test]
fn a_large_pipeline_is_slowed_down_not_refused() {
    let s = Server::start(&["--maxmemory", "32mb", "--cache-flush-delay", "0"]);
    let mut c = s.client();
    c.set_timeout(Duration::from_secs(120));
    let n = 5000;
    let value = "x".repeat(10_000);
    let mut raw = Vec::new();
    for i in 0..n {
        let key = format!("p:{i}");
        raw.extend_from_slice(
            format!(
                "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{value}\r\n",
                key.len(),
                value.len()
            )
            .as_bytes(),
        );
    }
    let mut w = c.stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        use std::io::Write;
        w.write_all(&raw).unwrap();
    });
    for i in 0..n {
        assert_eq!(c.read(), Resp::ok(), "reply {i}");
    }
    sender.join().unwrap();
    // sled's heap grows with its data and cannot be told apart from the cache
    // (docs/backends.md): the bound is asserted for the other backends.
    if test_backend() != "sled" {
        let peak = c.info_int("used_memory_peak") - c.info_int("used_memory_startup");
        assert!(
            peak < 48 << 20,
            "used memory peaked at {peak} bytes over startup with maxmemory 32mb"
        );
    }
    assert_eq!(c.cmd(&["GET", "p:4999"]), Resp::bulk(&value));
}

#[test]
fn a_small_maxmemory_and_many_absent_keys_never_refuse_writes() {
    let s = Server::start(&["--maxmemory", "4mb", "--cache-flush-delay", "0"]);
    let mut c = s.client();
    for i in 0..100 {
        assert_eq!(
            c.cmd(&["SET", &format!("k{i}"), &"v".repeat(1000)]),
            Resp::ok()
        );
    }
    // 30,000 lookups of absent 1 KB keys fill the negative cache, which must give memory back.
    let n = 30_000;
    let mut raw = Vec::new();
    for i in 0..n {
        let key = format!("{i:0>1000}");
        raw.extend_from_slice(format!("*2\r\n$3\r\nGET\r\n$1000\r\n{key}\r\n").as_bytes());
    }
    c.send_raw(&raw);
    for _ in 0..n {
        assert_eq!(c.read(), Resp::Nil);
    }
    for i in 0..100 {
        assert_eq!(
            c.cmd(&["SET", &format!("n{i}"), &"v".repeat(1000)]),
            Resp::ok()
        );
    }
    let used = c.info_int("used_memory") - c.info_int("used_memory_startup");
    assert!(used < 12 << 20, "used memory {used} with maxmemory 4mb");
}
