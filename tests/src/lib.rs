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

/// Whether two replies are of the same RESP type (an array, a RESP3 set, nil…).
pub fn same_shape(a: &Resp, b: &Resp) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

/// A random pick (SRANDMEMBER, ZRANDMEMBER, HRANDFIELD without values: `name key [count]`) on
/// both servers of `p`: the same reply type and length, kvtier's picks drawn from `all` (the
/// members Redis holds), distinct for a positive count. The picks themselves are random, so
/// they are not compared.
pub fn check_random_picks(
    p: &mut Pair,
    name: &str,
    key: &str,
    count: Option<i64>,
    all: &std::collections::BTreeSet<String>,
    ctx: &str,
) {
    let mut args = vec![name.to_string(), key.to_string()];
    if let Some(n) = count {
        args.push(n.to_string());
    }
    let (want, _) = p.redis_call(&args).unwrap();
    let (got, _) = p.kv_call(&args).unwrap();
    assert!(
        same_shape(&want, &got),
        "{ctx}: {args:?}: {want:?} vs {got:?}"
    );
    match &got {
        Resp::Nil => assert!(all.is_empty(), "{ctx}: nil from a non-empty value"),
        Resp::Bulk(_) => assert!(all.contains(&got.as_str()), "{ctx}: {got:?}"),
        _ => {
            let (w, g) = (sorted_strings(&want), sorted_strings(&got));
            assert_eq!(w.len(), g.len(), "{ctx}: {args:?} counts");
            assert!(
                g.iter().all(|m| all.contains(m)),
                "{ctx}: {g:?} not members"
            );
            if count.is_some_and(|n| n > 0) {
                let distinct: std::collections::BTreeSet<&String> = g.iter().collect();
                assert_eq!(distinct.len(), g.len(), "{ctx}: repeated picks {g:?}");
            }
        }
    }
}
