//! Black-box test harness: starts the real `kvtier-server` binary on a free port with a fresh
//! data directory and talks RESP to it over TCP.
//!
//! The client, the launcher (backend from `KVTIER_TEST_BACKEND`, default `fs`, so the same
//! tests run against every backend), the reference redis-server and the differential pair live
//! in `kvtier-testutil`, shared with the benchmarks; this crate re-exports them and adds the
//! tests' assertion helpers.

pub use kvtier_testutil::*;

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
