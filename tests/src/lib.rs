//! Black-box test harness: starts the real `kvtier-server` binary on a free port with a fresh
//! data directory and talks RESP to it over TCP.
//!
//! The backend comes from `KVTIER_TEST_BACKEND` (default `fs`), so the same tests run against
//! every backend.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A decoded RESP2/RESP3 reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Nil,
    NilArray,
    Array(Vec<Resp>),
    Map(Vec<(Resp, Resp)>),
    Set(Vec<Resp>),
    Double(String),
    Bool(bool),
    Push(Vec<Resp>),
    Verbatim(String),
}

impl Resp {
    pub fn bulk(s: &str) -> Resp {
        Resp::Bulk(s.as_bytes().to_vec())
    }
    pub fn ok() -> Resp {
        Resp::Simple("OK".into())
    }
    pub fn err(s: &str) -> Resp {
        Resp::Error(s.into())
    }
    /// An array of bulk strings.
    pub fn bulks(items: &[&str]) -> Resp {
        Resp::Array(items.iter().map(|s| Resp::bulk(s)).collect())
    }
    pub fn as_str(&self) -> String {
        match self {
            Resp::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
            Resp::Simple(s) | Resp::Error(s) | Resp::Double(s) | Resp::Verbatim(s) => s.clone(),
            Resp::Int(n) => n.to_string(),
            other => format!("{other:?}"),
        }
    }
    pub fn as_int(&self) -> i64 {
        match self {
            Resp::Int(n) => *n,
            other => panic!("expected an integer reply, got {other:?}"),
        }
    }
    /// The items of an array/set, sorted (for replies whose order is unspecified).
    pub fn sorted(&self) -> Vec<Resp> {
        let mut v = match self {
            Resp::Array(v) | Resp::Set(v) => v.clone(),
            other => panic!("expected an array, got {other:?}"),
        };
        v.sort_by_key(|r| format!("{r:?}"));
        v
    }
}

/// The path of the server binary built by cargo next to this test executable.
pub fn server_binary() -> PathBuf {
    if let Ok(p) = std::env::var("KVTIER_SERVER_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test-binary> → target/<profile>/kvtier-server
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("kvtier-server");
    assert!(
        bin.exists(),
        "{} not found: run `cargo build --release -p kvtier-server` first (the README's test command does)",
        bin.display()
    );
    bin
}

/// Where a server started on data directory `dir` writes its log (stderr).
pub fn log_path_for(dir: &Path) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.with_file_name(format!("{name}.server.log"))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub fn test_backend() -> String {
    std::env::var("KVTIER_TEST_BACKEND").unwrap_or_else(|_| "fs".into())
}

/// A running server; killed (SIGKILL) on drop unless shut down.
pub struct Server {
    pub port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
    _tmp: Option<tempfile::TempDir>,
    pub args: Vec<String>,
}

impl Server {
    /// Starts a server with a fresh data directory and extra `--name value` arguments.
    pub fn start(extra: &[&str]) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("data");
        let mut s = Server::start_in(&dir, extra);
        s._tmp = Some(tmp);
        s
    }

    /// Starts a server on an existing data directory (for restart tests).
    pub fn start_in(dir: &Path, extra: &[&str]) -> Server {
        // A free port can be taken by another test's server between `free_port` and our bind;
        // the server then exits with "can't listen" and we try another port.
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let mut args: Vec<String> = vec![
                "--port".into(),
                port.to_string(),
                "--dir".into(),
                dir.display().to_string(),
                "--backend".into(),
                test_backend(),
                "--io-threads".into(),
                "2".into(),
            ];
            args.extend(extra.iter().map(|s| s.to_string()));
            // The server's log goes to a file next to its data directory: a pipe nobody reads
            // would fill up and block the server on its next log line.
            let log_path = log_path_for(dir);
            let log = std::fs::File::create(&log_path).expect("create the server log");
            let child = Command::new(server_binary())
                .args(&args)
                .stdout(Stdio::null())
                .stderr(Stdio::from(log))
                .spawn()
                .expect("spawn kvtier-server");
            let mut s = Server {
                port,
                dir: dir.to_path_buf(),
                child: Some(child),
                _tmp: None,
                args,
            };
            match s.wait_ready() {
                Ok(()) => return s,
                Err(e) if e.contains("can't listen") => last = e,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("kvtier-server could not get a port: {last}");
    }

    /// Waits until *this* server answers: a connection that reaches another test's server on a
    /// reused port is recognised by its process id and not taken for ours.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let pid = self.child.as_ref().map(|c| c.id()).unwrap_or(0);
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    let err = std::fs::read_to_string(log_path_for(&self.dir)).unwrap_or_default();
                    return Err(format!("kvtier-server exited early ({status}): {err}"));
                }
            }
            if let Ok(mut c) = Client::try_connect(self.port) {
                c.set_timeout(Duration::from_secs(5));
                match read_info_pid(&mut c) {
                    // NOAUTH (requirepass set): the pid cannot be asked. A server of another
                    // test with a password may hold the port while ours failed to bind: it is
                    // ours only once our own log says it listens on this port.
                    None => {
                        let log =
                            std::fs::read_to_string(log_path_for(&self.dir)).unwrap_or_default();
                        if log.contains(&format!(":{} ", self.port))
                            || log.contains(&format!(":{},", self.port))
                        {
                            return Ok(());
                        }
                    }
                    Some(p) if p == pid => return Ok(()),
                    Some(_) => {}
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!(
            "kvtier-server did not start listening on port {}",
            self.port
        ))
    }

    pub fn client(&self) -> Client {
        Client::connect(self.port)
    }

    /// kill -9, for crash tests.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SHUTDOWN and waits for the process to exit; returns its exit success.
    pub fn shutdown(&mut self) -> bool {
        let mut c = self.client();
        c.send(&["SHUTDOWN"]);
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                return st.success();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("server did not exit after SHUTDOWN");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Takes the child process (e.g. to send it a signal); the caller then owns its lifetime.
    pub fn take_child(&mut self) -> Child {
        self.child.take().expect("running")
    }

    /// Keeps the data directory alive beyond this server (for restarts).
    pub fn take_tmp(&mut self) -> Option<tempfile::TempDir> {
        self._tmp.take()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A minimal RESP client that keeps replies' exact types.
pub struct Client {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(port: u16) -> Client {
        Client::try_connect(port).expect("connect")
    }

    /// Connects, or says why not (a server that is not up yet, or gone).
    pub fn try_connect(port: u16) -> std::io::Result<Client> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let reader = BufReader::new(stream.try_clone()?);
        Ok(Client { stream, reader })
    }

    pub fn send(&mut self, args: &[&str]) {
        let b: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.send_bytes(&b);
    }

    pub fn send_bytes(&mut self, args: &[&[u8]]) {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.stream.write_all(&out).expect("write");
    }

    pub fn send_raw(&mut self, raw: &[u8]) {
        self.stream.write_all(raw).expect("write");
    }

    /// Sends a command and reads its reply.
    pub fn cmd(&mut self, args: &[&str]) -> Resp {
        self.send(args);
        self.read()
    }

    pub fn cmd_bytes(&mut self, args: &[&[u8]]) -> Resp {
        self.send_bytes(args);
        self.read()
    }

    pub fn read(&mut self) -> Resp {
        read_resp(&mut self.reader).expect("read reply")
    }

    /// Reads raw bytes until the server closes the connection (or the timeout).
    pub fn read_to_close(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = self.reader.read_to_end(&mut out);
        out
    }

    /// Reads one reply, or the error that ended the connection.
    pub fn try_read(&mut self) -> std::io::Result<Resp> {
        read_resp(&mut self.reader)
    }

    /// A numeric field of `INFO everything`.
    pub fn info_int(&mut self, field: &str) -> i64 {
        let info = self.cmd(&["INFO", "everything"]).as_str();
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .unwrap_or_else(|| panic!("INFO has no {field}"))
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("INFO {field} is not a number"))
    }

    pub fn set_timeout(&mut self, d: Duration) {
        self.stream.set_read_timeout(Some(d)).expect("timeout");
    }
}

fn read_line(r: &mut impl BufRead) -> std::io::Result<String> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// Reads one reply from a buffered reader.
pub fn read_resp(r: &mut impl BufRead) -> std::io::Result<Resp> {
    let line = read_line(r)?;
    let (t, rest) = line.split_at(1);
    let n = || rest.parse::<i64>().unwrap_or(-1);
    Ok(match t {
        "+" => Resp::Simple(rest.into()),
        "-" => Resp::Error(rest.into()),
        ":" => Resp::Int(n()),
        "$" if n() < 0 => Resp::Nil,
        "$" | "=" => {
            let mut buf = vec![0u8; n() as usize + 2];
            r.read_exact(&mut buf)?;
            buf.truncate(n() as usize);
            if t == "=" {
                Resp::Verbatim(String::from_utf8_lossy(&buf[4..]).into_owned())
            } else {
                Resp::Bulk(buf)
            }
        }
        "*" if n() < 0 => Resp::NilArray,
        "*" | "~" | ">" => {
            let items = (0..n())
                .map(|_| read_resp(r))
                .collect::<Result<Vec<_>, _>>()?;
            match t {
                "*" => Resp::Array(items),
                "~" => Resp::Set(items),
                _ => Resp::Push(items),
            }
        }
        "%" => {
            let mut pairs = Vec::new();
            for _ in 0..n() {
                let k = read_resp(r)?;
                pairs.push((k, read_resp(r)?));
            }
            Resp::Map(pairs)
        }
        "_" => Resp::Nil,
        "," => Resp::Double(rest.into()),
        "#" => Resp::Bool(rest == "t"),
        _ => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("unknown reply line {line:?}"),
            ))
        }
    })
}

/// Asserts that a reply is an error starting with `prefix`.
#[track_caller]
pub fn assert_err(r: &Resp, prefix: &str) {
    match r {
        Resp::Error(e) if e.starts_with(prefix) => {}
        other => panic!("expected an error starting with {prefix:?}, got {other:?}"),
    }
}

/// Sends each request and asserts Redis's wrong-arity error for its command.
#[track_caller]
pub fn assert_arity_errors(c: &mut Client, requests: &[&[&str]]) {
    for args in requests {
        let want = format!(
            "ERR wrong number of arguments for '{}' command",
            args[0].to_lowercase()
        );
        assert_eq!(c.cmd(args), Resp::err(&want), "{args:?}");
    }
}

/// The `process_id` from INFO server, or `None` when the server refuses INFO (NOAUTH).
fn read_info_pid(c: &mut Client) -> Option<u32> {
    c.send(&["INFO", "server"]);
    let text = match read_resp(&mut c.reader) {
        // NOAUTH: a server with a password (ours or not: see `wait_ready`).
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

/// A reference `redis-server` (the first on `PATH`) on a free loopback port, for tests that
/// compare replies byte for byte; killed on drop. `None` (with a printed reason) when there is
/// no redis-server, so such tests still run their kvtier half.
pub struct RedisServer {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn start(extra: &[&str]) -> Option<RedisServer> {
        let bin = std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("redis-server"))
                .find(|p| p.is_file())
        });
        let Some(bin) = bin else {
            eprintln!("SKIPPED the redis-server half: no redis-server on PATH");
            return None;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let child = Command::new(bin)
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
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(RedisServer {
            port,
            child,
            _dir: dir,
        })
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

/// A connection that returns each reply's raw bytes, for byte-for-byte comparisons of kvtier
/// with redis-server (RESP2 and RESP3 alike).
pub struct RawConn {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl RawConn {
    pub fn connect(port: u16) -> std::io::Result<RawConn> {
        let w = TcpStream::connect(("127.0.0.1", port))?;
        w.set_read_timeout(Some(Duration::from_secs(30)))?;
        let r = BufReader::new(w.try_clone()?);
        Ok(RawConn { w, r })
    }

    /// Sends one request and returns its reply's bytes.
    pub fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> std::io::Result<Vec<u8>> {
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            let a = a.as_ref();
            req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            req.extend_from_slice(a);
            req.extend_from_slice(b"\r\n");
        }
        self.w.write_all(&req)?;
        let mut out = Vec::new();
        read_raw_reply(&mut self.r, &mut out)?;
        Ok(out)
    }
}

/// Reads one complete RESP2/RESP3 reply, appending its bytes to `out`.
pub fn read_raw_reply(r: &mut impl BufRead, out: &mut Vec<u8>) -> std::io::Result<()> {
    let start = out.len();
    r.read_until(b'\n', out)?;
    let line = String::from_utf8_lossy(&out[start..])
        .trim_end()
        .to_string();
    if line.is_empty() {
        return Err(std::io::Error::other("connection closed"));
    }
    let n: i64 = line[1..].parse().unwrap_or(0);
    match line.as_bytes()[0] {
        b'$' | b'=' | b'!' if n >= 0 => {
            let mut body = vec![0u8; n as usize + 2];
            r.read_exact(&mut body)?;
            out.extend_from_slice(&body);
        }
        b'*' | b'~' | b'>' if n > 0 => (0..n).try_for_each(|_| read_raw_reply(r, out))?,
        b'%' if n > 0 => (0..2 * n).try_for_each(|_| read_raw_reply(r, out))?,
        _ => {}
    }
    Ok(())
}
