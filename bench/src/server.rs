//! Starting servers and connecting to them: thin wrappers over `kvtier-testutil` with the
//! benchmarks' settings (errors as `String`s, the log next to the data directory, a long read
//! timeout for replies that wait behind a loaded server).

use kvtier_testutil::{kvtier_command, Client, Proc};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Read timeout of the benchmarks' connections: a reply may queue behind seconds of work.
const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// One client connection to the server on `port` (pipelining with `queue`/`flush`).
pub(crate) fn connect(port: u16) -> std::io::Result<Client> {
    Client::try_connect_timeout(port, READ_TIMEOUT)
}

pub(crate) fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("free port: {e}"))
}

/// Resident set size of a process in KiB, or `None` once it has exited.
pub(crate) fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

pub(crate) fn io_err(what: &str) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Spawns `cmd` (a server told to listen on `port`) with its output in a log file next to
/// `dir`; does not wait for it.
pub(crate) fn spawn_command(cmd: Command, port: u16, dir: &Path) -> Result<Proc, String> {
    Proc::spawn(cmd, port, &dir.with_extension(format!("{port}.log")))
}

/// Spawns `kvtier-server` on `backend` over `dir` with `maxmemory` (redis units) and extra
/// arguments, on a free port; does not wait for it.
pub(crate) fn spawn_kvtier(
    server_bin: &Path,
    backend: &str,
    maxmemory: &str,
    server_args: &[String],
    dir: &Path,
) -> Result<Proc, String> {
    let port = free_port()?;
    let mut extra = vec!["--maxmemory".to_string(), maxmemory.to_string()];
    extra.extend_from_slice(server_args);
    spawn_command(
        kvtier_command(server_bin, port, dir, backend, &extra),
        port,
        dir,
    )
}

/// `$CARGO_TARGET_DIR/release/kvtier-server`, else `target/release/kvtier-server`.
pub(crate) fn default_server_bin() -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| "target".into(), PathBuf::from);
    target.join("release").join("kvtier-server")
}
