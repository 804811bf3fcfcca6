//! The reference `redis-server` of the comparison tests.

use crate::client::Client;
use crate::resp::Resp;
use crate::server::free_port;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Finds `redis-server`: `REDIS_SERVER_BIN` (if that file exists), else the first on `PATH`.
pub fn redis_binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("REDIS_SERVER_BIN") {
        return Some(PathBuf::from(p)).filter(|p| p.exists());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
}

/// A reference `redis-server` ([`redis_binary`]) on a free loopback port with its own empty
/// directory and no persistence, for tests that compare replies byte for byte; killed on drop.
pub struct RedisServer {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts one with `extra` arguments and waits until it answers PING (with PONG, or with
    /// NOAUTH when `extra` sets a password). `None`, with the reason printed, when there is no
    /// redis-server, so such tests still run their kvtier half.
    pub fn start(extra: &[&str]) -> Option<RedisServer> {
        let Some(bin) = redis_binary() else {
            eprintln!(
                "SKIPPED the redis-server half: no redis-server (set REDIS_SERVER_BIN or PATH)"
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        // The free port can be taken before redis binds it: it then exits, and we try another.
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new(&bin)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .arg("--dir")
                .arg(dir.path())
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server");
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if let Ok(mut c) = Client::try_connect(port) {
                    match c.try_cmd(&[b"PING"]) {
                        Ok(Resp::Simple(s)) if s == "PONG" => {
                            return Some(RedisServer {
                                port,
                                child,
                                _dir: dir,
                            })
                        }
                        Ok(Resp::Error(e)) if e.starts_with("NOAUTH") => {
                            return Some(RedisServer {
                                port,
                                child,
                                _dir: dir,
                            })
                        }
                        _ => {}
                    }
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("redis-server did not start on port {port}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("redis-server could not get a port");
    }

    pub fn client(&self) -> Client {
        Client::connect(self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
