//! Startup configuration, CONFIG REWRITE, client limits and signals.

use kvtier_tests::{assert_err, Resp, Server};
use std::io::Read;
use std::time::Duration;

#[test]
fn config_file_overrides_and_rewrite() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("kvtier.conf");
    std::fs::write(&conf, "# my settings\nmaxmemory 10mb\ntimeout 0\nhz 10\n").unwrap();
    let port = kvtier_tests::free_port();
    let dir = tmp.path().join("data");
    let mut child = std::process::Command::new(kvtier_tests::server_binary())
        .arg(&conf)
        .args(["--port", &port.to_string(), "--maxmemory", "20mb", "--dir"])
        .arg(&dir)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut c = kvtier_tests::connect_when_ready(port, child.id(), Duration::from_secs(20))
        .expect("server up");
    // The command line wins over the file.
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "maxmemory"]),
        Resp::bulks(&["maxmemory", &(20u64 << 20).to_string()])
    );
    assert_eq!(c.cmd(&["CONFIG", "SET", "timeout", "300"]), Resp::ok());
    assert_eq!(c.cmd(&["CONFIG", "REWRITE"]), Resp::ok());
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(text.contains("# my settings"), "comments kept: {text}");
    assert!(text.contains("timeout 300"), "{text}");
    assert!(
        text.contains(&format!("maxmemory {}", 20u64 << 20)),
        "{text}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn maxclients_and_idle_timeout() {
    let s = Server::start(&["--timeout", "1"]);
    let mut a = s.client();
    assert_eq!(a.cmd(&["CONFIG", "SET", "maxclients", "2"]), Resp::ok());
    // Let the server see the harness's readiness probe go away.
    std::thread::sleep(Duration::from_millis(200));
    let mut b = s.client();
    assert_eq!(a.cmd(&["PING"]), Resp::Simple("PONG".into()));
    assert_eq!(b.cmd(&["PING"]), Resp::Simple("PONG".into()));
    let mut third = s.client();
    assert_eq!(
        String::from_utf8_lossy(&third.read_to_close()),
        "-ERR max number of clients reached\r\n"
    );
    // Idle clients are closed after `timeout` seconds.
    std::thread::sleep(Duration::from_millis(2500));
    let mut buf = [0u8; 16];
    a.set_timeout(Duration::from_secs(2));
    assert_eq!(
        a.stream.read(&mut buf).unwrap_or(0),
        0,
        "idle client not closed"
    );
}

#[test]
fn sigterm_saves_everything_before_exiting() {
    let mut s = Server::start(&["--cache-flush-delay", "600"]);
    let tmp = s.take_tmp();
    let dir = s.dir.clone();
    let mut c = s.client();
    c.cmd(&["SET", "k", "v"]);
    c.cmd(&["RPUSH", "l", "a", "b"]);
    let mut child = s.take_child();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());
    let s2 = Server::start_in(&dir, &[]);
    let mut c = s2.client();
    assert_eq!(c.cmd(&["GET", "k"]), Resp::bulk("v"));
    assert_eq!(c.cmd(&["LRANGE", "l", "0", "-1"]), Resp::bulks(&["a", "b"]));
    drop(tmp);
}

#[test]
fn bad_settings_stop_the_server_with_a_clear_message() {
    for (args, needle) in [
        (
            vec!["--maxmemory", "lots"],
            "argument must be a memory value",
        ),
        (vec!["--nosuchsetting", "1"], "Unknown option"),
        (
            vec!["--port", "99999"],
            "argument must be between 0 and 65535",
        ),
    ] {
        let out = std::process::Command::new(kvtier_tests::server_binary())
            .args(&args)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let s = Server::start(&[]);
    assert_err(
        &s.client().cmd(&["CONFIG", "SET", "maxmemory", "x"]),
        "ERR CONFIG SET failed",
    );
}
