//! Server processes: [`Proc`], any server on a port with its log in a file, and [`Server`],
//! `kvtier-server` as the black-box tests start it.

use crate::client::Client;
use crate::resp::Resp;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A loopback port nobody listens on right now (another process may take it before the caller
/// binds it: [`Server::start_in`] retries).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The backend the tests run against: `KVTIER_TEST_BACKEND`, default `fs`.
pub fn test_backend() -> String {
    std::env::var("KVTIER_TEST_BACKEND").unwrap_or_else(|_| "fs".into())
}

/// The server binary: `KVTIER_SERVER_BIN`, else the one cargo built next to the running test
/// executable (`target/<profile>/deps/<test>` → `target/<profile>/kvtier-server`).
pub fn server_binary() -> PathBuf {
    if let Ok(p) = std::env::var("KVTIER_SERVER_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("kvtier-server");
    assert!(
        bin.exists(),
        "{} not found: run `cargo build --release -p kvtier-server` first (the README's test command does)",
        bin.display()
    );
    bin
}

/// Where a [`Server`] started on data directory `dir` writes its log (stdout and stderr).
pub fn log_path_for(dir: &Path) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.with_file_name(format!("{name}.server.log"))
}

/// `kvtier-server --port <port> --dir <dir> --backend <backend>` followed by `extra`.
pub fn kvtier_command<S: AsRef<std::ffi::OsStr>>(
    bin: &Path,
    port: u16,
    dir: &Path,
    backend: &str,
    extra: &[S],
) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("--port")
        .arg(port.to_string())
        .arg("--dir")
        .arg(dir)
        .arg("--backend")
        .arg(backend)
        .args(extra);
    cmd
}

/// A server process listening (once ready) on `port`; killed and reaped on drop unless it has
/// exited or been taken. Its stdout and stderr go to a log file: a pipe nobody reads would
/// fill up and block the server on its next log line.
pub struct Proc {
    child: Option<Child>,
    pub port: u16,
    pub log: PathBuf,
}

impl Proc {
    /// Spawns `cmd` (a server told to listen on `port`) with its output in a new file `log`;
    /// does not wait for it to listen.
    pub fn spawn(mut cmd: Command, port: u16, log: &Path) -> Result<Proc, String> {
        let log_file =
            std::fs::File::create(log).map_err(|e| format!("create {}: {e}", log.display()))?;
        let log_err = log_file.try_clone().map_err(|e| e.to_string())?;
        cmd.stdin(Stdio::null()).stdout(log_file).stderr(log_err);
        let bin = cmd.get_program().to_string_lossy().into_owned();
        let child = cmd.spawn().map_err(|e| format!("spawn {bin}: {e}"))?;
        Ok(Proc {
            child: Some(child),
            port,
            log: log.to_path_buf(),
        })
    }

    /// The process id (0 once the child was killed or taken).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The last 20 lines of the log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Ok while the process runs; its exit status and log tail once it has exited.
    pub fn check_alive(&mut self) -> Result<(), String> {
        let Some(child) = self.child.as_mut() else {
            return Err("server process already killed".into());
        };
        match child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(st)) => Err(format!("server exited ({st}):\n{}", self.log_tail())),
            Err(e) => Err(format!("wait for server: {e}")),
        }
    }

    /// Polls until the server answers `GET probe` with `expected` (or PING with PONG when
    /// `probe` is `None`); `-LOADING` and refused connections are retried every millisecond,
    /// so the time this takes after a spawn is the server's startup time to within ~1 ms.
    pub fn wait_ready(
        &mut self,
        probe: Option<(&[u8], &[u8])>,
        budget: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + budget;
        let mut conn: Option<Client> = None;
        let mut last = String::from("no connection");
        loop {
            self.check_alive()?;
            if Instant::now() > deadline {
                return Err(format!(
                    "server on port {} not ready after {:.0} s (last: {last}):\n{}",
                    self.port,
                    budget.as_secs_f64(),
                    self.log_tail()
                ));
            }
            if conn.is_none() {
                conn = Client::try_connect_timeout(self.port, Duration::from_secs(120)).ok();
            }
            if let Some(c) = conn.as_mut() {
                let reply = match probe {
                    Some((k, _)) => c.try_cmd(&[b"GET", k]),
                    None => c.try_cmd(&[b"PING"]),
                };
                match (reply, probe) {
                    (Ok(Resp::Bulk(v)), Some((_, want))) if v == want => return Ok(()),
                    (Ok(Resp::Simple(s)), None) if s == "PONG" => return Ok(()),
                    (Ok(Resp::Error(e)), _) => last = e,
                    (Ok(other), _) => return Err(format!("unexpected readiness reply {other:?}")),
                    (Err(e), _) => {
                        last = e.to_string();
                        conn = None;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Sends SHUTDOWN (with `extra` arguments) and waits up to `budget` for a successful exit.
    pub fn shutdown(&mut self, extra: &[&[u8]], budget: Duration) -> Result<(), String> {
        let mut c = Client::try_connect(self.port).map_err(|e| format!("connect: {e}"))?;
        let mut cmd: Vec<&[u8]> = vec![b"SHUTDOWN"];
        cmd.extend_from_slice(extra);
        c.queue(&cmd);
        c.flush().map_err(|e| format!("SHUTDOWN: {e}"))?;
        // Success closes the connection without a reply; an error reply means it refused.
        if let Ok(Resp::Error(e)) = c.try_read() {
            return Err(format!("SHUTDOWN refused: {e}"));
        }
        let deadline = Instant::now() + budget;
        let child = self.child.as_mut().ok_or("server process already killed")?;
        loop {
            match child.try_wait() {
                Ok(Some(st)) if st.success() => return Ok(()),
                Ok(Some(st)) => {
                    return Err(format!("server exited with {st}:\n{}", self.log_tail()))
                }
                Ok(None) if Instant::now() > deadline => {
                    return Err(format!(
                        "server still running {:.0} s after SHUTDOWN",
                        budget.as_secs_f64()
                    ))
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => return Err(format!("wait for server: {e}")),
            }
        }
    }

    /// kill -9 (SIGKILL) and reap, if it still runs.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Takes the child process (e.g. to send it a signal); the caller then owns its lifetime.
    pub fn take_child(&mut self) -> Option<Child> {
        self.child.take()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// `kvtier-server` on a free port with the backend of [`test_backend`] and two I/O threads,
/// for the black-box tests; killed (SIGKILL) on drop unless shut down. Its log is at
/// [`log_path_for`] of its data directory.
pub struct Server {
    pub port: u16,
    pub dir: PathBuf,
    /// Every argument the server was started with.
    pub args: Vec<String>,
    proc: Proc,
    tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts a server with a fresh data directory and extra `--name value` arguments.
    pub fn start(extra: &[&str]) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("data");
        let mut s = Server::start_in(&dir, extra);
        s.tmp = Some(tmp);
        s
    }

    /// Starts a server on an existing data directory (for restart tests).
    pub fn start_in(dir: &Path, extra: &[&str]) -> Server {
        // A free port can be taken by another test's server between `free_port` and our bind;
        // the server then exits with "can't listen" and we try another port.
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let mut extra_args = vec!["--io-threads", "2"];
            extra_args.extend_from_slice(extra);
            let cmd = kvtier_command(&server_binary(), port, dir, &test_backend(), &extra_args);
            let args = cmd
                .get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            let proc = Proc::spawn(cmd, port, &log_path_for(dir)).unwrap_or_else(|e| panic!("{e}"));
            let mut s = Server {
                port,
                dir: dir.to_path_buf(),
                args,
                proc,
                tmp: None,
            };
            match s.wait_ready() {
                Ok(()) => return s,
                Err(e) if e.contains("can't listen") => last = e,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("kvtier-server could not get a port: {last}");
    }

    /// Starts the server again on the same data directory (and keeps its temp directory) with
    /// `extra` arguments, after a [`Server::kill9`] or [`Server::shutdown`]; a server still
    /// running is killed first.
    pub fn restart(&mut self, extra: &[&str]) {
        self.proc.kill9();
        let tmp = self.tmp.take();
        let mut next = Server::start_in(&self.dir, extra);
        next.tmp = tmp;
        *self = next;
    }

    /// Waits until *this* server answers ([`connect_when_ready`]): a connection that reaches
    /// another test's server on a reused port is recognised by its process id and not taken
    /// for ours. A server that exits meanwhile ends the wait with its log tail (a lost port
    /// race says "can't listen" there, which `start_in` retries on).
    fn wait_ready(&mut self) -> Result<(), String> {
        let (port, pid) = (self.port, self.proc.pid());
        let log = self.proc.log.clone();
        let proc = &mut self.proc;
        let ready = Readiness {
            alive: &mut || {
                proc.check_alive()
                    .map_err(|e| format!("kvtier-server exited early: {e}"))
            },
            // With requirepass set, the pid cannot be asked. A server of another test with a
            // password may hold the port while ours failed to bind: it is ours only once our
            // own log says it listens on this port.
            ours_without_auth: &|| {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                text.contains(&format!(":{port} ")) || text.contains(&format!(":{port},"))
            },
        };
        match connect_to_process(port, pid, Duration::from_secs(20), ready) {
            Ok(_) => Ok(()),
            Err(Some(e)) => Err(e),
            Err(None) => Err(format!(
                "kvtier-server did not start listening on port {port}"
            )),
        }
    }

    pub fn client(&self) -> Client {
        Client::connect(self.port)
    }

    /// kill -9, for crash tests.
    pub fn kill9(&mut self) {
        self.proc.kill9();
    }

    /// Sends SHUTDOWN and waits (up to 30 s) for the process to exit; returns its exit success.
    pub fn shutdown(&mut self) -> bool {
        match self.proc.shutdown(&[], Duration::from_secs(30)) {
            Ok(()) => true,
            Err(e) if e.contains("still running") => {
                self.proc.kill9();
                panic!("server did not exit after SHUTDOWN");
            }
            Err(e) => {
                eprintln!("SHUTDOWN of the server on port {}: {e}", self.port);
                false
            }
        }
    }

    /// Takes the child process (e.g. to send it a signal); the caller then owns its lifetime.
    pub fn take_child(&mut self) -> Child {
        self.proc.take_child().expect("running")
    }

    /// Keeps the data directory alive beyond this server (for restarts).
    pub fn take_tmp(&mut self) -> Option<tempfile::TempDir> {
        self.tmp.take()
    }
}

/// A connection to the server process `pid` listening on `port`, once it answers (within
/// `within`), or `None`. A connection that reaches another process on a reused port, or that
/// connects to itself (TCP may, on a local port nobody listens on yet), is recognised by the
/// process id in `INFO server` and tried again, never taken for the server.
pub fn connect_when_ready(port: u16, pid: u32, within: Duration) -> Option<Client> {
    let ready = Readiness {
        alive: &mut || Ok(()),
        ours_without_auth: &|| false,
    };
    connect_to_process(port, pid, within, ready).ok()
}

/// What the wait of [`connect_to_process`] asks its caller on each attempt.
struct Readiness<'a> {
    /// Run before each attempt; its error ends the wait (the process has exited).
    alive: &'a mut dyn FnMut() -> Result<(), String>,
    /// Whether a server that refuses INFO (NOAUTH: its pid cannot be asked) is ours.
    ours_without_auth: &'a dyn Fn() -> bool,
}

/// The loop of [`connect_when_ready`]: a fresh connection once the process `pid` answers on
/// `port`; `Err(Some(_))` when `ready.alive` failed, `Err(None)` after `within`.
fn connect_to_process(
    port: u16,
    pid: u32,
    within: Duration,
    ready: Readiness,
) -> Result<Client, Option<String>> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        (ready.alive)().map_err(Some)?;
        if let Ok(mut c) = Client::try_connect_timeout(port, Duration::from_secs(5)) {
            let ours = match read_info_pid(&mut c) {
                None => (ready.ours_without_auth)(),
                Some(p) => p == pid,
            };
            if ours {
                return Client::try_connect(port).map_err(|e| Some(format!("connect: {e}")));
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(None)
}

/// The `process_id` from INFO server, or `None` when the server refuses INFO (NOAUTH).
fn read_info_pid(c: &mut Client) -> Option<u32> {
    let text = match c.try_cmd(&[b"INFO", b"server"]) {
        // NOAUTH: a server with a password (ours or not: see `Server::wait_ready`).
        Ok(Resp::Error(e)) if e.starts_with("NOAUTH") => return None,
        // Any other error (-BUSY of another test's server running a long script…) is not a
        // sign that this is our server: wait and try again.
        Ok(Resp::Error(_)) => return Some(0),
        Ok(r) => r.as_str(),
        // A connection that breaks is not a server we can use: wait and try again.
        Err(_) => return Some(0),
    };
    Some(
        text.lines()
            .find_map(|l| l.strip_prefix("process_id:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs the server binary (`cargo build --release -p kvtier-server`, or
    /// `KVTIER_SERVER_BIN`): a SET survives SHUTDOWN and [`Server::restart`] on the same
    /// directory, which stays alive across the restart.
    #[test]
    fn restart_keeps_the_data_directory() {
        let mut s = Server::start(&[]);
        assert_eq!(s.client().cmd(&["SET", "k", "v"]), Resp::ok());
        assert!(s.shutdown());
        let dir = s.dir.clone();
        s.restart(&["--maxmemory", "4mb"]);
        assert_eq!(s.dir, dir);
        assert!(s.args.windows(2).any(|w| w == ["--maxmemory", "4mb"]));
        assert_eq!(s.client().cmd(&["GET", "k"]), Resp::bulk("v"));
        s.kill9();
        s.restart(&[]);
        assert_eq!(s.client().cmd(&["GET", "k"]), Resp::bulk("v"));
        let log = std::fs::read_to_string(log_path_for(&s.dir)).unwrap();
        assert!(!log.is_empty(), "the log file gets the server's output");
    }

    /// Needs the server binary too: the readiness wait takes only the process it started.
    #[test]
    fn readiness_is_the_process_own() {
        let s = Server::start(&[]);
        let pid = s.proc.pid();
        let mut c = connect_when_ready(s.port, pid, Duration::from_secs(5)).expect("ours answers");
        assert_eq!(c.cmd(&["PING"]), Resp::Simple("PONG".into()));
        // Another process id on the same port is not taken for the server, nor is a port where
        // nobody listens.
        let quick = Duration::from_millis(200);
        assert!(connect_when_ready(s.port, pid + 1, quick).is_none());
        assert!(connect_when_ready(free_port(), pid, quick).is_none());
    }

    /// A server that exits during startup ends the wait at once with its log, not after the
    /// 20 s timeout.
    #[test]
    fn a_server_that_exits_ends_the_wait() {
        let started = Instant::now();
        let Err(panic) = std::panic::catch_unwind(|| Server::start(&["--no-such-option", "1"]))
        else {
            panic!("a server with an unknown option started");
        };
        let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains("kvtier-server exited early"), "{msg}");
        assert!(started.elapsed() < Duration::from_secs(10), "{msg}");
    }
}
