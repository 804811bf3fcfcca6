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

/// The elements of an array, set or map reply as sorted strings (a map's pairs as
/// `field=value`), for replies whose order Redis leaves open (SMEMBERS, HKEYS, HGETALL…).
#[track_caller]
pub fn sorted_strings(r: &Resp) -> Vec<String> {
    let mut v: Vec<String> = match r {
        Resp::Array(items) | Resp::Set(items) => items.iter().map(Resp::as_str).collect(),
        Resp::Map(pairs) => pairs
            .iter()
            .map(|(k, v)| format!("{}={}", k.as_str(), v.as_str()))
            .collect(),
        other => panic!("expected an array, a set or a map, got {other:?}"),
    };
    v.sort();
    v
}

/// Polls `cond` every 50 ms until it holds; panics naming `what` once `timeout` has passed
/// (background work such as page deletion finishes on its own schedule).
#[track_caller]
pub fn wait_until(timeout: std::time::Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
