//! kvtier-server: a Redis-protocol server whose RAM is a bounded cache over a disk store.

#![forbid(unsafe_code)]

mod backend;
mod client;
mod commands;
mod config;
mod conn;
mod glob;
mod info;
mod pubsub;
mod reply;
mod resp;
mod server;
mod shared;
mod util;
mod value;
mod zset;

use clap::Parser;
use kvtier_core::{Engine, EngineConfig};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

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

fn load_config(args: Args) -> Result<config::Config, String> {
    let mut cfg = config::Config::default();
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
    let level = match cfg.get("loglevel").unwrap_or("notice") {
        "debug" => log::LevelFilter::Debug,
        "verbose" | "notice" => log::LevelFilter::Info,
        _ => log::LevelFilter::Warn,
    };
    let mut b = env_logger::Builder::new();
    b.filter_level(level).parse_default_env();
    if let Some(path) = cfg.get("logfile").filter(|p| !p.is_empty()) {
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
fn parse_args() -> Args {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if raw
        .iter()
        .any(|a| matches!(a.as_str(), "-h" | "--help" | "-V" | "--version"))
    {
        Args::parse();
    }
    let mut it = raw.into_iter().peekable();
    let config = it.next_if(|a| !a.starts_with("--"));
    Args {
        config,
        overrides: it.collect(),
    }
}

fn run() -> Result<(), String> {
    let cfg = load_config(parse_args())?;
    init_logging(&cfg);
    let dir = PathBuf::from(cfg.get("dir").unwrap_or("./data"));
    let kind = cfg.get("backend").unwrap_or("fs").to_string();
    let store = backend::open_backend(&kind, &dir, &cfg)?;
    let addr = format!(
        "{}:{}",
        cfg.get("bind").unwrap_or("127.0.0.1"),
        cfg.get("port").unwrap_or("6379")
    );
    let sock: std::net::SocketAddr = addr
        .parse()
        .map_err(|e| format!("invalid bind address {addr}: {e}"))?;
    let listener =
        mio::net::TcpListener::bind(sock).map_err(|e| format!("can't listen on {addr}: {e}"))?;
    let engine_cfg = EngineConfig {
        databases: cfg.get_u64("databases") as usize,
        io_threads: cfg.get_u64("io-threads") as usize,
        flush_delay: Duration::from_secs(cfg.get_u64("cache-flush-delay")),
        negcache_entries: cfg.get_u64("negcache-max-entries") as usize,
        maxmemory_samples: cfg.get_u64("maxmemory-samples") as usize,
        ..EngineConfig::default()
    };
    log::info!(
        "kvtier {} listening on {addr}, backend {kind} in {}",
        env!("CARGO_PKG_VERSION"),
        dir.display()
    );
    let shared = shared::Shared::new(cfg);
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

fn main() {
    if let Err(e) = run() {
        eprintln!("kvtier-server: {e}");
        std::process::exit(1);
    }
}
