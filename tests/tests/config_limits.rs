//! The bounds of `client-query-buffer-limit` and `proto-max-bulk-len` (at least 1mb, at most
//! 2^63-1, as in Redis 7.0): CONFIG SET answers exactly as redis-server does, a refused value
//! leaves the limit as it was, and a configuration file or command line with a value out of
//! bounds stops the server at startup, as it stops redis-server.

use kvtier_tests::{free_port, server_binary, test_backend, Client, RedisServer, Resp, Server};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SETTINGS: &[&str] = &["client-query-buffer-limit", "proto-max-bulk-len"];

/// Values tried with CONFIG SET: below, at and above the bounds, and not amounts at all.
const VALUES: &[&str] = &[
    "0",
    "1",
    "512kb",
    "1048575",
    "",
    "kb",
    "1048576",
    "1mb",
    "1MB",
    "3gb",
    "9223372036854775807",
    "9223372036854775808",
    "99999999999999999999",
    "-1",
    "abc",
    "1.5mb",
];

/// Per setting and value: the CONFIG SET reply and the value CONFIG GET shows after it.
fn answers(c: &mut Client) -> Vec<(String, Resp, Resp)> {
    let mut out = Vec::new();
    for name in SETTINGS {
        for v in VALUES {
            let reply = c.cmd(&["CONFIG", "SET", name, v]);
            let now = c.cmd(&["CONFIG", "GET", name]);
            out.push((format!("{name} {v:?}"), reply, now));
        }
        // Back to the default for the next setting's requests.
        c.cmd(&[
            "CONFIG",
            "SET",
            name,
            if *name == "proto-max-bulk-len" {
                "512mb"
            } else {
                "1gb"
            },
        ]);
    }
    out
}

#[test]
fn config_set_refuses_limits_out_of_bounds_as_redis_does() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let kv = answers(&mut c);
    // The kvtier half stands alone: 0 is refused with Redis's text and the limit is kept, so
    // the client goes on being served (a limit of 0 closed it on its next request).
    assert_eq!(
        kv[0].1,
        Resp::err(
            "ERR CONFIG SET failed (possibly related to argument 'client-query-buffer-limit') - \
             argument must be between 1048576 and 9223372036854775807 inclusive"
        )
    );
    assert_eq!(
        kv[0].2,
        Resp::bulks(&["client-query-buffer-limit", "1073741824"])
    );
    assert_eq!(c.cmd(&["PING"]), Resp::Simple("PONG".into()));
    let Some(r) = RedisServer::start(&[]) else {
        return;
    };
    let redis = answers(&mut r.client());
    for (k, r) in kv.iter().zip(&redis) {
        assert_eq!(k, r, "kvtier (left) and redis-server (right) differ");
    }
}

/// Starts kvtier with `file_line` in a configuration file (or, when `file_line` is `None`, with
/// `args` on the command line) and returns its exit success and output once it exits; panics if
/// it is still running after 20 s.
fn start_and_wait(file_line: Option<&str>, args: &[&str]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(server_binary());
    if let Some(line) = file_line {
        let conf = dir.path().join("kvtier.conf");
        std::fs::write(&conf, format!("# limits\n{line}\n")).unwrap();
        cmd.arg(&conf);
    }
    cmd.arg("--port")
        .arg(free_port().to_string())
        .arg("--dir")
        .arg(dir.path().join("data"))
        .arg("--backend")
        .arg(test_backend())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            let text = String::from_utf8_lossy(&out.stderr).into_owned()
                + &String::from_utf8_lossy(&out.stdout);
            return (out.status.success(), text);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kvtier-server kept running");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_limit_out_of_bounds_at_startup_stops_the_server() {
    let why = "argument must be between 1048576 and 9223372036854775807 inclusive";
    let (ok, text) = start_and_wait(Some("client-query-buffer-limit 1000"), &[]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("FATAL CONFIG FILE ERROR") && text.contains("line 2"),
        "{text}"
    );
    assert!(text.contains(why), "{text}");
    let (ok, text) = start_and_wait(None, &["--proto-max-bulk-len", "0"]);
    assert!(!ok, "{text}");
    assert!(text.contains(why), "{text}");
    // Redis stops too.
    if let Some(bin) = kvtier_tests::redis_binary() {
        let out = Command::new(bin)
            .args([
                "--port",
                "0",
                "--save",
                "",
                "--client-query-buffer-limit",
                "1000",
            ])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let text = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(why), "{text}");
    }
}
