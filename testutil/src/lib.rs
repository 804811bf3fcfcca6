//! What the black-box tests (`tests/`) and the benchmarks (`bench/`) share: one RESP client,
//! one launcher for `kvtier-server` (and for any server process), a reference `redis-server`,
//! and the pair of connections the differential tests compare replies over.
//!
//! * [`resp`]: the reply type [`Resp`], its readers ([`read_resp`], [`read_raw_reply`]) and INFO
//!   parsing ([`parse_info`]).
//! * [`client`]: [`Client`] (decoded replies; commands sent at once or queued and flushed as one
//!   pipeline) and [`RawConn`] (each reply's exact bytes).
//! * [`server`]: [`Proc`] (a server process with a log file, readiness probe, SHUTDOWN and
//!   kill -9) and [`Server`] (`kvtier-server` on a fresh or given data directory with the backend
//!   of `KVTIER_TEST_BACKEND`, for tests).
//! * [`redis`]: [`RedisServer`], the reference server of comparisons.
//! * [`differential`]: [`Pair`], one command to redis-server and to kvtier with the replies
//!   compared, and the RESP2/RESP3 × default/tiny cache matrix the differential tests run.
//! * [`threads`]: [`thread_nices`], a process's threads and their CPU priorities.

pub mod client;
pub mod differential;
pub mod redis;
pub mod resp;
pub mod server;
pub mod threads;

pub use client::{Client, RawConn};
pub use differential::{differential, differential_with, seeds, show, Pair, SMALL_CACHE};
pub use redis::{redis_binary, RedisServer};
pub use resp::{encode_command, info_field, parse_info, read_raw_reply, read_resp, Resp};
pub use server::{
    connect_when_ready, free_port, kvtier_command, log_path_for, server_binary, test_backend, Proc,
    Server,
};
pub use threads::thread_nices;
