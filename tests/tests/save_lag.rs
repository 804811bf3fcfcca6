//! Saves run on their own workers at a lower CPU priority (`io-save-nice`), and writers wait
//! while saves are more than `cache-flush-max-lag` behind, so what a crash can lose stays
//! bounded in time even when the saves get little CPU.

#[cfg(target_os = "linux")]
use kvtier_tests::thread_nices;
use kvtier_tests::{kvtier_command, server_binary, test_backend, Client, Proc, Resp};
use std::path::Path;
use std::time::{Duration, Instant};

fn spawn(bin: &Path, dir: &Path, backend: &str, extra: &[&str], env: &[(&str, &str)]) -> Proc {
    let port = kvtier_tests::free_port();
    let mut cmd = kvtier_command(bin, port, dir, backend, extra);
    cmd.envs(env.iter().copied());
    let log = dir.with_extension("log");
    let mut p = Proc::spawn(cmd, port, &log).unwrap_or_else(|e| panic!("{e}"));
    p.wait_ready(None, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    p
}

#[cfg(target_os = "linux")]
#[test]
fn save_workers_run_at_a_lower_cpu_priority_than_read_workers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut p = spawn(
        &server_binary(),
        &dir,
        &test_backend(),
        &["--io-threads", "3", "--io-save-nice", "7"],
        &[],
    );
    let all = thread_nices(p.pid());
    let of = |prefix: &str| -> Vec<i64> {
        all.iter()
            .filter(|(n, _)| n.starts_with(prefix))
            .map(|&(_, nice)| nice)
            .collect()
    };
    let (readers, savers) = (of("kvtier-io-"), of("kvtier-save-"));
    assert_eq!(readers.len(), 3, "{all:?}");
    assert_eq!(savers.len(), 3, "{all:?}");
    // Relative to the readers: the test itself may run under some nice value.
    let base = readers[0];
    assert!(readers.iter().all(|&n| n == base), "{all:?}");
    assert!(savers.iter().all(|&n| n == (base + 7).min(19)), "{all:?}");
    // One save worker is not lowered: saves that fall behind go there.
    assert_eq!(of("kvtier-urgent-"), [base], "{all:?}");
    let mut c = Client::connect(p.port);
    assert_eq!(c.info_int("io_save_nice"), 7);
    assert_eq!(c.info_int("io_save_threads"), 3);
    assert_eq!(c.info_int("saves_urgent"), 0);
    assert_eq!(c.cmd(&["SET", "k", "v"]), Resp::ok());
    p.shutdown(&[], Duration::from_secs(30)).unwrap();
    // With saves not lowered there is nothing to hurry.
    let p = spawn(
        &server_binary(),
        &dir,
        &test_backend(),
        &["--io-threads", "2", "--io-save-nice", "0"],
        &[],
    );
    let all = thread_nices(p.pid());
    assert!(
        all.iter().all(|(n, _)| !n.starts_with("kvtier-urgent-")),
        "{all:?}"
    );
    assert!(all.iter().all(|&(_, nice)| nice == base), "{all:?}");
}

fn wait_info(c: &mut Client, field: &str, want: i64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.info_int(field) != want {
        assert!(Instant::now() < deadline, "{field} never became {want}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn writers_wait_for_lagging_saves_while_readers_go_on() {
    if test_backend() != "fs" {
        eprintln!("skipped: runs once, on its own fault-injecting fs server");
        return;
    }
    let bin = Path::new(env!("CARGO_BIN_EXE_kvtier-faulty-server"));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let args = [
        "--cache-flush-delay",
        "0",
        "--cache-flush-max-lag",
        "2",
        "--io-threads",
        "1",
    ];
    // Every batch write takes 4 s: longer than the lag bound.
    let stall = [("KVTIER_FAULT_STALL_WRITES_MS", "4000")];
    let mut p = spawn(bin, &dir, "faulty-fs", &args, &stall);
    let mut writer = Client::connect(p.port);
    let mut reader = Client::connect(p.port);
    assert_eq!(writer.cmd(&["SET", "a", "1"]), Resp::ok());
    // Its save waits for the one in flight, and falls behind: past half the bound saves are
    // urgent, and the worker that is not lowered takes it.
    assert_eq!(writer.cmd(&["SET", "b", "2"]), Resp::ok());
    // (A counter: `saves_urgent` is 1 only until the urgent worker took what was due.)
    wait_info(&mut reader, "urgent_save_batches", 1);
    // A write now waits for a free worker, both being stuck: past the bound, writers wait.
    assert_eq!(writer.cmd(&["SET", "d", "4"]), Resp::ok());
    wait_info(&mut reader, "saves_lagging", 1);
    assert_eq!(reader.info_int("memory_over_limit"), 0);
    writer.send(&["SET", "c", "3"]);
    wait_info(&mut reader, "writers_delayed", 1);
    // Readers are served while the writer waits.
    assert_eq!(reader.cmd(&["GET", "a"]), Resp::bulk("1"));
    assert_eq!(reader.cmd(&["GET", "b"]), Resp::bulk("2"));
    // The writer goes on once the saves caught up.
    assert_eq!(writer.read(), Resp::ok());
    assert!(reader.info_int("writers_delayed_total") >= 1);
    // Once caught up, saves are not urgent.
    wait_info(&mut reader, "saves_urgent", 0);
    p.shutdown(&[], Duration::from_secs(60)).unwrap();
    // Nothing was lost on the way.
    let mut p = spawn(bin, &dir, "faulty-fs", &[], &[]);
    let mut c = Client::connect(p.port);
    for (k, v) in [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")] {
        assert_eq!(c.cmd(&["GET", k]), Resp::bulk(v), "{k}");
    }
    p.shutdown(&[], Duration::from_secs(30)).unwrap();
}
