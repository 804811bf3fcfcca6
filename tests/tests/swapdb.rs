//! SWAPDB over the disk tier: two DBs whose keys are mostly only on disk exchange contents at
//! once, stay swapped across a restart and a kill -9, and the clients that depend on either DB
//! (WATCH, blocked, parked on cold keys) see what Redis's clients see.

use kvtier_tests::{wait_until, Client, RedisServer, Resp, Server};
use std::time::Duration;

const TINY: &[&str] = &["--maxmemory", "1mb", "--cache-flush-delay", "0"];
const N: usize = 1500;

fn fill(c: &mut Client, db: &str, tag: &str) {
    assert_eq!(c.cmd(&["SELECT", db]), Resp::ok());
    for chunk in (0..N).collect::<Vec<_>>().chunks(100) {
        let mut args: Vec<String> = vec!["MSET".into()];
        for i in chunk {
            args.push(format!("k:{i}"));
            args.push(format!("{tag}-{i}-{}", "v".repeat(200)));
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(c.cmd(&refs), Resp::ok());
    }
    c.cmd(&["SET", &format!("only-{tag}"), "1"]);
}

/// Checks that DB `db` holds the keys written with `tag` (sampled, mostly cold).
fn check(c: &mut Client, db: &str, tag: &str) {
    check_with(c, db, tag, 0);
}

/// [`check`] of a DB that also holds `extra` other keys.
fn check_with(c: &mut Client, db: &str, tag: &str, extra: i64) {
    assert_eq!(c.cmd(&["SELECT", db]), Resp::ok());
    assert_eq!(
        c.cmd(&["DBSIZE"]),
        Resp::Int(N as i64 + 1 + extra),
        "db {db}"
    );
    for i in (0..N).step_by(37) {
        let v = c.cmd(&["GET", &format!("k:{i}")]).as_str();
        assert!(v.starts_with(&format!("{tag}-{i}-")), "db {db} k:{i} = {v}");
    }
    assert_eq!(c.cmd(&["EXISTS", &format!("only-{tag}")]), Resp::Int(1));
}

/// Waits until the key filters are rebuilt after a start, so the checks that follow are
/// answered by them (a filter built from the wrong namespace would call keys absent).
fn filters_built(c: &mut Client) {
    wait_until(Duration::from_secs(20), "key filters built", || {
        c.info_int("filters_building") == 0
    });
}

/// A server with a tiny cache whose DBs 0 and 1 hold the `zero` and `one` keys, saved (so
/// mostly only on disk), and a client in DB 0.
fn cold_pair() -> (Server, Client) {
    let s = Server::start(TINY);
    let mut c = s.client();
    fill(&mut c, "0", "zero");
    fill(&mut c, "1", "one");
    assert_eq!(c.cmd(&["SAVE"]), Resp::ok());
    assert_eq!(c.cmd(&["SELECT", "0"]), Resp::ok());
    (s, c)
}

#[test]
fn replies_and_errors_match_redis() {
    let s = Server::start(&[]);
    let mut kv = s.client();
    let redis = RedisServer::start(&[]);
    let mut rd = redis.as_ref().map(RedisServer::client);
    for req in [
        &["SWAPDB", "a", "1"][..],
        &["SWAPDB", "0", "b"],
        &["SWAPDB", "0", "16"],
        &["SWAPDB", "-1", "0"],
        &["SWAPDB", "0", "0"],
        &["SWAPDB", "1"],
        &["SWAPDB", "1", "2", "3"],
        &["SWAPDB", "0", "1"],
        &["COMMAND", "GETKEYS", "SWAPDB", "0", "1"],
    ] {
        let got = kv.cmd(req);
        if let Some(rd) = rd.as_mut() {
            assert_eq!(got, rd.cmd(req), "{req:?}");
        } else {
            assert!(matches!(got, Resp::Error(_) | Resp::Simple(_)), "{req:?}");
        }
    }
}

#[test]
fn cold_dbs_swap_and_stay_swapped_across_restart_and_kill9() {
    let (mut s, mut c) = cold_pair();
    assert_eq!(c.cmd(&["SWAPDB", "0", "1"]), Resp::ok());
    check(&mut c, "0", "one");
    check(&mut c, "1", "zero");
    // Keys of another DB are untouched; SCAN of a swapped DB reads the other store content.
    let Resp::Array(page) = c.cmd(&["SCAN", "0", "MATCH", "only-*", "COUNT", "10000"]) else {
        panic!()
    };
    assert_eq!(page[1], Resp::bulks(&["only-zero"]));
    // A write after the swap (in DB 0, which shows DB 1's old content), then a clean restart.
    assert_eq!(c.cmd(&["SELECT", "0"]), Resp::ok());
    assert_eq!(c.cmd(&["SET", "after", "x"]), Resp::ok());
    assert!(s.shutdown());
    let mut s = Server::start_in(&s.dir.clone(), TINY);
    let mut c = s.client();
    filters_built(&mut c);
    check(&mut c, "1", "zero");
    check_with(&mut c, "0", "one", 1);
    assert_eq!(c.cmd(&["GET", "after"]), Resp::bulk("x"));
    // Swap back, write, SAVE (the point in time the swap must be part of), then kill -9.
    assert_eq!(c.cmd(&["SWAPDB", "1", "0"]), Resp::ok());
    assert_eq!(c.cmd(&["SET", "after2", "y"]), Resp::ok());
    assert_eq!(c.cmd(&["SAVE"]), Resp::ok());
    s.kill9();
    let s = Server::start_in(&s.dir.clone(), TINY);
    let mut c = s.client();
    filters_built(&mut c);
    check_with(&mut c, "1", "one", 1);
    assert_eq!(c.cmd(&["GET", "after"]), Resp::bulk("x"));
    check_with(&mut c, "0", "zero", 1);
    assert_eq!(c.cmd(&["GET", "after2"]), Resp::bulk("y"));
}

#[test]
fn watched_keys_are_touched_only_when_a_live_key_exists_in_either_db() {
    let s = Server::start(TINY);
    let mut c = s.client();
    let mut watch_swap_exec = |setup: &[&[&str]], expect_abort: bool| {
        c.cmd(&["FLUSHALL"]);
        for cmd in setup {
            c.cmd(cmd);
        }
        // Make every key cold: only disk holds them when SWAPDB runs. (A PX 1 key must have
        // expired before WATCH: one that expires after it does touch it, in Redis too.)
        c.cmd(&["SAVE"]);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(c.cmd(&["SELECT", "0"]), Resp::ok());
        assert_eq!(c.cmd(&["WATCH", "x"]), Resp::ok());
        assert_eq!(c.cmd(&["SWAPDB", "0", "1"]), Resp::ok());
        assert_eq!(c.cmd(&["MULTI"]), Resp::ok());
        c.cmd(&["PING"]);
        let r = c.cmd(&["EXEC"]);
        assert_eq!(
            r == Resp::Nil || r == Resp::NilArray,
            expect_abort,
            "{setup:?}: {r:?}"
        );
    };
    // x exists in DB 0 and the swap removes it.
    watch_swap_exec(&[&["SELECT", "0"], &["SET", "x", "30"]], true);
    // x is missing in DB 0 and the swap brings it.
    watch_swap_exec(&[&["SELECT", "1"], &["SET", "x", "30"]], true);
    // Neither DB holds x: nothing changes.
    watch_swap_exec(&[&["SELECT", "1"], &["SET", "y", "30"]], false);
    // An expired x replaced with nothing.
    watch_swap_exec(&[&["SELECT", "0"], &["SET", "x", "1", "PX", "1"]], false);
}

#[test]
fn a_client_blocked_on_the_other_db_wakes_when_the_swap_brings_its_key() {
    let s = Server::start(TINY);
    let mut c = s.client();
    assert_eq!(c.cmd(&["RPUSH", "q", "job"]), Resp::Int(1));
    c.cmd(&["SAVE"]);
    let mut b = s.client();
    assert_eq!(b.cmd(&["SELECT", "1"]), Resp::ok());
    b.send(&["BLPOP", "q", "10"]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(c.cmd(&["SWAPDB", "0", "1"]), Resp::ok());
    b.set_timeout(Duration::from_secs(5));
    assert_eq!(b.read(), Resp::bulks(&["q", "job"]));
    assert_eq!(c.cmd(&["LLEN", "q"]), Resp::Int(0));
}

#[test]
fn reads_of_cold_keys_racing_swaps_see_one_db_or_the_other_whole() {
    let (s, mut c) = cold_pair();
    let port = s.port;
    let swapper = std::thread::spawn(move || {
        let mut w = Client::connect(port);
        for _ in 0..41 {
            assert_eq!(w.cmd(&["SWAPDB", "0", "1"]), Resp::ok());
            std::thread::sleep(Duration::from_millis(3));
        }
    });
    // Pipelines of reads of cold keys: each parks, and may be let go by a swap and re-asked.
    for round in 0..20 {
        let keys: Vec<String> = (0..100)
            .map(|i| format!("k:{}", (round * 71 + i * 13) % N))
            .collect();
        for k in &keys {
            c.send(&["GET", k]);
        }
        for k in &keys {
            let v = c.read().as_str();
            let i = &k[2..];
            assert!(
                v.starts_with(&format!("zero-{i}-")) || v.starts_with(&format!("one-{i}-")),
                "{k} = {v:?}"
            );
        }
    }
    swapper.join().unwrap();
    // 41 swaps: DB 0 shows what DB 1 held, and nothing was lost or mixed up.
    check(&mut c, "0", "one");
    check(&mut c, "1", "zero");
}

#[test]
fn a_restart_with_fewer_databases_than_a_swap_needs_is_refused_with_the_reason() {
    let mut s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(c.cmd(&["SET", "x", "1"]), Resp::ok());
    assert_eq!(c.cmd(&["SWAPDB", "0", "9"]), Resp::ok());
    assert_eq!(c.cmd(&["SAVE"]), Resp::ok());
    assert!(s.shutdown());
    let out = std::process::Command::new(kvtier_tests::server_binary())
        .args([
            "--port",
            &kvtier_tests::free_port().to_string(),
            "--databases",
            "4",
        ])
        .arg("--dir")
        .arg(&s.dir)
        .args(["--backend", &kvtier_tests::test_backend()])
        .output()
        .expect("run the server");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("databases 16"), "{err}");
    // With enough DBs it starts, still swapped.
    let s = Server::start_in(&s.dir.clone(), &[]);
    let mut c = s.client();
    assert_eq!(c.cmd(&["GET", "x"]), Resp::Nil);
    assert_eq!(c.cmd(&["SELECT", "9"]), Resp::ok());
    assert_eq!(c.cmd(&["GET", "x"]), Resp::bulk("1"));
}

#[test]
fn commands_after_a_swapdb_inside_exec_see_the_swapped_cold_keys() {
    let (_server, mut c) = cold_pair();
    assert_eq!(c.cmd(&["MULTI"]), Resp::ok());
    for cmd in [
        &["GET", "k:7"][..],
        &["SWAPDB", "0", "1"],
        &["GET", "k:7"],
        &["EXISTS", "only-one"],
        &["SWAPDB", "1", "2"],
        &["SELECT", "2"],
        &["GET", "k:7"],
    ] {
        assert_eq!(c.cmd(cmd), Resp::Simple("QUEUED".into()));
    }
    let Resp::Array(r) = c.cmd(&["EXEC"]) else {
        panic!()
    };
    assert!(r[0].as_str().starts_with("zero-7-"), "{:?}", r[0]);
    assert!(r[2].as_str().starts_with("one-7-"), "{:?}", r[2]);
    assert_eq!(r[3], Resp::Int(1));
    assert!(r[6].as_str().starts_with("zero-7-"), "{:?}", r[6]);
}
