//! `kvtier-bench`: backend and end-to-end comparisons for kvtier.
//!
//! - `kvtier-bench backends` measures the `DiskStore` backends (fs, sled, rocksdb) directly:
//!   durable single puts, durable batches, random gets, scans and checkpoints.
//! - `kvtier-bench e2e --server-bin PATH` starts the real server with a small `maxmemory`, writes
//!   a dataset many times larger, reads it back at random while sampling the server's RSS, and
//!   compares the GET rate with raw random reads of the same backend directory.
//! - `kvtier-bench keyspace` loads many small keys into kvtier (per backend) and redis-server and
//!   times DBSIZE, KEYS, RANDOMKEY, a full SCAN (with the stall they cause other clients) and a
//!   restart to the first GET.
//! - `kvtier-bench soak` runs a bounded mixed load of 64 clients over a dataset 10x `maxmemory`
//!   per backend, checking every reply, with a PING client (longest stall), RSS and INFO
//!   sampling, and owned keys read back after SAVE and after a restart.
//!
//! All print markdown tables and write CSV files; `bench/plot.py` turns the backends and e2e ones
//! into PNG plots.

mod backends;
mod e2e;
mod keyspace;
mod report;
mod server;
mod soak;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "kvtier-bench",
    version,
    about = "kvtier backend and end-to-end benchmarks"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Compare the disk store backends (fs, sled, rocksdb) without the server.
    Backends(backends::Args),
    /// Run the server over a dataset much larger than maxmemory: SET load, random GETs, RSS.
    E2e(e2e::Args),
    /// Keyspace-wide commands (DBSIZE, KEYS, RANDOMKEY, SCAN) and restart over many small keys,
    /// kvtier vs redis-server.
    Keyspace(keyspace::Args),
    /// Bounded mixed load of many clients over a dataset 10x maxmemory: errors, PING stall, RSS,
    /// owned keys verified after SAVE and a restart.
    Soak(soak::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Backends(args) => backends::run(&args),
        Cmd::E2e(args) => e2e::run(&args),
        Cmd::Keyspace(args) => keyspace::run(&args),
        Cmd::Soak(args) => soak::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kvtier-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
