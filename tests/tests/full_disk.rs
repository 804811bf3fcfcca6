//! A really full disk: the server runs in a private mount namespace over a small tmpfs, a filler
//! file takes the free space, and the fs backend's writes fail with ENOSPC. Writes must then be
//! refused with a clear error while reads go on, nothing acknowledged is lost, and writes resume
//! by themselves once space is freed.

use kvtier_tests::{free_port, server_binary, test_backend, Client, Resp, Server};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Jailed {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for Jailed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Jailed {
    /// The data directory as seen from outside the server's mount namespace.
    fn inside(&self) -> PathBuf {
        let rel = self.dir.strip_prefix("/").expect("absolute dir");
        Path::new("/proc")
            .join(self.child.id().to_string())
            .join("root")
            .join(rel)
    }
}

/// Starts kvtier-server (fs backend) over a tmpfs of `size` mounted on `dir` in a new mount
/// namespace; `None` where namespaces or tmpfs mounts are not allowed.
fn start_on_tmpfs(dir: &Path, size: &str) -> Option<Jailed> {
    std::fs::create_dir_all(dir).unwrap();
    let port = free_port();
    let script = format!(
        "mount -t tmpfs -o size={size} tmpfs '{}' && exec \"$0\" \"$@\"",
        dir.display()
    );
    let log = std::fs::File::create(dir.with_extension("log")).unwrap();
    let child = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .arg(server_binary())
        .args(["--port", &port.to_string(), "--dir"])
        .arg(dir)
        .args(["--backend", "fs", "--cache-flush-delay", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .ok()?;
    let mut j = Jailed {
        child,
        port,
        dir: dir.to_path_buf(),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = j.child.try_wait() {
            let log = std::fs::read_to_string(dir.with_extension("log")).unwrap_or_default();
            eprintln!("skipped: the server could not start on a private tmpfs: {log}");
            return None;
        }
        if kvtier_tests::connect_when_ready(port, j.child.id(), Duration::from_millis(100))
            .is_some()
        {
            return Some(j);
        }
    }
    let _ = j.child.kill();
    panic!("server on tmpfs did not start");
}

/// Fills the file system holding `path` until it is full.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).expect("create filler");
    let chunk = vec![0u8; 64 * 1024];
    loop {
        if f.write_all(&chunk).is_err() || f.sync_all().is_err() {
            break;
        }
    }
    // Small writes take the last blocks too.
    while f.write_all(&[0u8; 512]).is_ok() && f.sync_all().is_ok() {}
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_full_disk_refuses_writes_serves_reads_and_recovers_without_loss() {
    if test_backend() != "fs" {
        eprintln!("skipped: this test fills a tmpfs under the fs backend");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let Some(server) = start_on_tmpfs(&dir, "8m") else {
        return;
    };
    let mut c = Client::connect(server.port);
    c.set_timeout(Duration::from_secs(10));
    for i in 0..50 {
        assert_eq!(
            c.cmd(&["SET", &format!("before:{i}"), &format!("v{i}")]),
            Resp::ok()
        );
    }
    assert_eq!(c.cmd(&["SAVE"]), Resp::ok());
    let filler = server.inside().join("filler");
    fill(&filler);

    // Acknowledged writes that cannot be saved yet stay in memory; once a save has failed for
    // lack of space, writes are refused with MISCONF.
    let mut accepted = Vec::new();
    let mut i = 0;
    wait_for("writes are refused", || {
        i += 1;
        let k = format!("during:{i}");
        match c.cmd(&["SET", &k, &"x".repeat(2000)]) {
            Resp::Simple(s) if s == "OK" => {
                accepted.push(k);
                false
            }
            Resp::Error(e) => {
                assert!(e.starts_with("MISCONF "), "unexpected error: {e}");
                true
            }
            other => panic!("unexpected reply {other:?}"),
        }
    });
    assert_eq!(c.info_int("store_full"), 1);
    assert!(c.info_int("save_errors") > 0);
    // Reads go on; point-in-time requests report the failure.
    assert_eq!(c.cmd(&["GET", "before:7"]), Resp::bulk("v7"));
    for k in &accepted {
        assert_eq!(
            c.cmd(&["STRLEN", k]),
            Resp::Int(2000),
            "{k} acknowledged, then lost"
        );
    }
    assert!(matches!(c.cmd(&["SAVE"]), Resp::Error(_)), "SAVE must fail");
    // SHUTDOWN cannot make the data durable: it refuses, and the server stays up.
    assert_eq!(
        c.cmd(&["SHUTDOWN"]),
        Resp::err("ERR Errors trying to SHUTDOWN. Check logs.")
    );
    assert_eq!(c.cmd(&["PING"]), Resp::Simple("PONG".into()));
    let refused = c.cmd(&["MSET", "a", "1", "b", "2"]);
    assert!(matches!(refused, Resp::Error(ref e) if e.starts_with("MISCONF")));
    assert_eq!(c.cmd(&["MULTI"]), Resp::ok());
    c.cmd(&["SET", "in-multi", "1"]);
    assert!(matches!(c.cmd(&["EXEC"]), Resp::Error(ref e) if e.starts_with("MISCONF")));

    // Space comes back: the retried save succeeds and writes resume by themselves.
    std::fs::remove_file(&filler).unwrap();
    wait_for("writes are accepted again", || {
        c.cmd(&["SET", "after", "1"]) == Resp::ok()
    });
    assert_eq!(c.info_int("store_full"), 0);
    assert_eq!(c.cmd(&["SAVE"]), Resp::ok());

    // Everything acknowledged is in the store: a copy of it opens with every key.
    let copy = tmp.path().join("copy");
    let status = Command::new("cp")
        .arg("-a")
        .arg(server.inside())
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    drop(server);
    let s = Server::start_in(&copy, &["--backend", "fs"]);
    let mut c = s.client();
    assert_eq!(c.cmd(&["GET", "before:49"]), Resp::bulk("v49"));
    assert_eq!(c.cmd(&["GET", "after"]), Resp::bulk("1"));
    for k in &accepted {
        assert_eq!(
            c.cmd(&["STRLEN", k]),
            Resp::Int(2000),
            "{k} lost in the store"
        );
    }
    assert_eq!(c.cmd(&["EXISTS", "in-multi", "a"]), Resp::Int(0));
}
