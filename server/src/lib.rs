//! kvtier-server as a library: the full Redis-protocol server over any [`DiskStore`].
//!
//! The stock `kvtier-server` binary is [`main_builtin`]: it parses the command line, opens the
//! configured built-in backend (fs, sled or rocksdb) and serves. A third-party backend gets the
//! same server, settings and behaviour with a `main.rs` of a few lines:
//!
//! ```no_run
//! # use std::sync::Arc;
//! # fn open_my_store(_: &std::path::Path) -> Result<Arc<dyn kvtier_core::DiskStore>, String> { todo!() }
//! fn main() -> std::process::ExitCode {
//!     kvtier_server::serve_with("mystore", |dir, _config| open_my_store(dir))
//! }
//! ```
//!
//! # Layout
//! Dependencies point one way: the event loop (`server`) drives sessions and commands, which
//! use `kvtier-core`, which drives the store. `docs/architecture.md` draws the request path.
//! - `server/`: the owner thread, one file per concern: `event_loop` (loop, accept, signals,
//!   cron), `input`/`output` (socket reads and writes), `dispatch` (checks, queueing, the one
//!   `execute()` path of every command), `residency` (which keys a request needs; parking,
//!   pins, prefetch), `transaction` (EXEC), `memory` (maxmemory and flow control), `watch`
//!   (WATCH, SWAPDB, after-command work), `blocking`, `fanout` (pub/sub, MONITOR delivery),
//!   `io_events` (completions of the IO workers).
//! - `conn`, `client`: one connection's buffers and waiting state; per-client session state.
//! - `resp`, `reply`: RESP parser and encoder.
//! - `commands/`: the command table ([`CommandSpec`](commands::CommandSpec): arity, flags, key
//!   positions, handler) and one file per command family.
//! - `scripting/` (Lua, functions), `tracking/` (client-side caching), `keyscan` (KEYS/SCAN over
//!   the store), `acl/` (users, protected mode, rename-command).
//! - [`config`] (the typed settings table), `info`, `shared` (server-wide state and statistics).
//! - `backend`: the only place that names the built-in backends; claims the data directory.
//! - `value`, `hashval`, `listval`, `setval`, `pairmap` (with `counted`), `zset/`, `stream/`, `hll/`, `geohash`, `rdb/`:
//!   Redis values (with their compact small forms), their encodings and DUMP/RESTORE. `paged/`: hashes, lists and sorted sets kept as a manifest plus pages.
//!   `pubsub`, `glob`, `util`: helpers. `heap`: jemalloc's figures.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod acl;
mod backend;
mod client;
mod commands;
pub mod config;
mod conn;
mod counted;
#[cfg(test)]
mod fuzz;
mod geohash;
mod glob;
mod hashval;
mod heap;
mod hll;
mod keyscan;
mod listval;
mod paged;
mod pairmap;
mod pubsub;
mod rdb;
mod reply;
mod resp;
mod scripting;
mod server;
mod setval;
mod shared;
mod stream;
mod subcommands;
#[cfg(test)]
mod testing;
mod tracking;
mod util;
mod value;
mod zset;

pub use config::Config;
pub use kvtier_core::DiskStore;

use clap::Parser;
use kvtier_core::{Engine, EngineConfig};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

// jemalloc for every binary built on this crate: `maxmemory` is measured with its statistics.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The Redis version kvtier answers as (HELLO, INFO): the command set and replies of 7.0.
pub const REDIS_VERSION: &str = "7.0.15";

/// kvtier-server [CONFIG-FILE] [--setting value]...
///
/// Settings use redis.conf names (port, dir, backend, maxmemory, cache-flush-delay, ...);
/// command-line values override the file, the last one winning.
#[derive(Parser, Debug)]
#[command(version, about, trailing_var_arg = true)]
struct Args {
    /// redis.conf-style configuration file.
    config: Option<String>,
    /// `--name value` settings.
    #[arg(allow_hyphen_values = true, num_args = 0..)]
    overrides: Vec<String>,
}

fn load_config(args: Args, backend: &str) -> Result<config::Config, String> {
    let mut cfg = config::Config::default();
    // The binary's own backend is the default; a file or `--backend` may still name another
    // (the caller refuses it if it cannot open it).
    cfg.set("backend", backend, false)?;
    let mut overrides = args.overrides;
    match args.config {
        Some(c) if c.starts_with("--") => overrides.insert(0, c),
        Some(c) => cfg.load_file(&PathBuf::from(c))?,
        None => {}
    }
    let mut i = 0;
    while i < overrides.len() {
        let name = overrides[i]
            .strip_prefix("--")
            .ok_or_else(|| format!("expected --setting, got '{}'", overrides[i]))?;
        let mut values = Vec::new();
        i += 1;
        while i < overrides.len() && !overrides[i].starts_with("--") {
            values.push(overrides[i].clone());
            i += 1;
        }
        cfg.set(name, &values.join(" "), false)
            .map_err(|e| format!("invalid setting --{name}: {e}"))?;
    }
    Ok(cfg)
}

fn init_logging(cfg: &config::Config) {
    let level = match cfg.settings().loglevel.as_str() {
        "debug" => log::LevelFilter::Debug,
        "verbose" | "notice" => log::LevelFilter::Info,
        _ => log::LevelFilter::Warn,
    };
    let mut b = env_logger::Builder::new();
    b.filter_level(level).parse_default_env();
    if let Some(path) = Some(cfg.settings().logfile.as_str()).filter(|p| !p.is_empty()) {
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            Ok(f) => {
                b.target(env_logger::Target::Pipe(Box::new(f)));
            }
            Err(e) => eprintln!("can't open logfile {path}: {e}; logging to stderr"),
        }
    }
    b.init();
}

/// Splits the command line: clap handles `--help`/`--version`; everything else is Redis-style
/// (`[config-file] --name value ...`), which clap's flag parsing would reject.
fn parse_args(backend: &str) -> Result<Config, String> {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if raw
        .iter()
        .any(|a| matches!(a.as_str(), "-h" | "--help" | "-V" | "--version"))
    {
        Args::parse();
    }
    parse_with_backend(raw, backend)
}

fn parse_with_backend(raw: Vec<String>, backend: &str) -> Result<Config, String> {
    let mut it = raw.into_iter().peekable();
    let config = it.next_if(|a| !a.starts_with("--"));
    load_config(
        Args {
            config,
            overrides: it.collect(),
        },
        backend,
    )
}

/// Parses settings exactly as the stock binary does: an optional redis.conf-style file, then
/// `--name value` overrides (the last one wins). `args` excludes the program name.
pub fn config_from_args(args: impl IntoIterator<Item = String>) -> Result<Config, String> {
    parse_with_backend(args.into_iter().collect(), "fs")
}

/// Runs the stock server: built-in backends, chosen by the `backend` setting.
pub fn main_builtin() -> ExitCode {
    finish(parse_args("fs").and_then(|cfg| {
        init_logging(&cfg);
        let kind = cfg.settings().backend.clone();
        let dir = data_dir(&cfg);
        let store = backend::open_backend(&kind, &dir, &cfg)?;
        run(cfg, store)?;
        // `run` returned after a clean shutdown, with the store closed.
        backend::after_clean_close(&kind, &dir);
        Ok(())
    }))
}

/// Runs the full server over a store opened by `open`, for a backend named `name` (what the
/// `backend` setting must say, if given, and what the data directory is marked with). `open`
/// gets the directory reserved for the store (`<dir>/<name>`) and the parsed settings. Parses
/// the command line as the stock binary does, serves until SHUTDOWN or SIGTERM, and returns
/// the process exit code.
pub fn serve_with(
    name: &str,
    open: impl FnOnce(&Path, &Config) -> Result<Arc<dyn DiskStore>, String>,
) -> ExitCode {
    finish(parse_args(name).and_then(|cfg| {
        match cfg.get("backend") {
            Some(b) if b == name => {}
            other => {
                return Err(format!(
                    "this server runs the '{name}' backend, not '{}'",
                    other.unwrap_or("")
                ))
            }
        }
        init_logging(&cfg);
        let dir = data_dir(&cfg);
        let store_dir = backend::claim_dir(name, &dir)?;
        let store = open(&store_dir, &cfg)?;
        run(cfg, store)
    }))
}

fn data_dir(cfg: &Config) -> PathBuf {
    PathBuf::from(&cfg.settings().dir)
}

fn finish(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kvtier-server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Serves clients with `store` as the database until SHUTDOWN or SIGTERM (after every dirty
/// key is on disk). Logging is the caller's (see [`serve_with`]).
pub fn run(cfg: Config, store: Arc<dyn DiskStore>) -> Result<(), String> {
    let dir = data_dir(&cfg);
    // A damaged SWAPDB map, or one that swapped a DB beyond `databases`, stops startup here
    // rather than showing DBs with the wrong contents.
    kvtier_core::dbmap::DbMap::load(&*store, cfg.settings().databases as usize)?;
    let kind = store.name();
    let addr = format!(
        "{}:{}",
        acl::protected::listen_host(cfg.get("bind")),
        cfg.settings().port
    );
    let sock: std::net::SocketAddr = addr
        .parse()
        .map_err(|e| format!("invalid bind address {addr}: {e}"))?;
    let listener =
        mio::net::TcpListener::bind(sock).map_err(|e| format!("can't listen on {addr}: {e}"))?;
    let engine_cfg = EngineConfig {
        databases: cfg.settings().databases as usize,
        io_threads: cfg.settings().io_threads as usize,
        background_nice: cfg.settings().io_save_nice as i32,
        flush_delay: Duration::from_secs(cfg.settings().cache_flush_delay),
        negcache_entries: cfg.settings().negcache_max_entries as usize,
        maxmemory_samples: cfg.settings().maxmemory_samples as usize,
        ..EngineConfig::default()
    };
    log::info!(
        "kvtier {} listening on {addr}, backend {kind} in {}",
        env!("CARGO_PKG_VERSION"),
        dir.display()
    );
    // Users (requirepass, `user` lines, aclfile) and renamed commands; an error stops startup.
    let acl = acl::Acl::from_config(&cfg)?;
    let mut shared = shared::Shared::new(cfg);
    shared.acl = acl;
    let mut srv = server::Server::new(
        listener,
        move |waker| {
            let notify: kvtier_core::engine::Notify = Arc::new(move || {
                let _ = waker.wake();
            });
            Engine::new(store, engine_cfg, notify)
        },
        shared,
    )
    .map_err(|e| format!("event loop setup failed: {e}"))?;
    srv.run().map_err(|e| format!("event loop failed: {e}"))
}
