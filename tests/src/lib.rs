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

/// Server arguments that page a value of `min_bytes` or more, in pages of about `page_bytes`,
/// followed by `extra`.
pub fn paged_args<'a>(min_bytes: &'a str, page_bytes: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--paged-value-min-bytes",
        min_bytes,
        "--page-bytes",
        page_bytes,
    ];
    args.extend_from_slice(extra);
    args
}

/// The paged-type tests' usual `paged_args`: a value of 256 bytes or more is paged, in pages of
/// about 64 bytes (a few members each, so a few hundred members span many pages), and written
/// out as soon as it changes (`--cache-flush-delay 0`); then `extra` (a type's listpack limit,
/// a `--maxmemory` that evicts pages).
pub fn small_pages<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--cache-flush-delay", "0"];
    args.extend_from_slice(extra);
    paged_args("256", "64", &args)
}

/// Listpack and intset limits so low that every hash, set and sorted set of more than four
/// members leaves its compact encoding (and so may be paged).
pub const NO_COMPACT_ENCODINGS: &[&str] = &[
    "--hash-max-listpack-entries",
    "4",
    "--set-max-intset-entries",
    "4",
    "--zset-max-listpack-entries",
    "4",
];

/// A 1 MB cache, added to `small_pages` where the paged-type tests compare with Redis, so pages
/// are also evicted and loaded back.
pub const SMALL_CACHE: &[&str] = &["--maxmemory", "1mb"];

/// Every entry a SSCAN, HSCAN or ZSCAN (`args[0]`) of `args[1]` returns, followed from cursor 0
/// until the server returns cursor 0 again, with the rest of `args` (COUNT, MATCH) on every
/// call: a set's members, or a hash's or sorted set's pairs as `"field value"` strings. A set,
/// since a SCAN may return an entry twice and its order is open.
#[track_caller]
pub fn scan_to_end(c: &mut Client, args: &[&str]) -> std::collections::BTreeSet<String> {
    let width = if args[0].eq_ignore_ascii_case("SSCAN") {
        1
    } else {
        2
    };
    let mut cursor = "0".to_string();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..100_000 {
        let mut call = vec![args[0], args[1], &cursor];
        call.extend_from_slice(&args[2..]);
        let r = c.cmd(&call);
        let Resp::Array(parts) = r else {
            panic!("bad {} reply {r:?}", args[0])
        };
        let (Resp::Array(items) | Resp::Set(items)) = &parts[1] else {
            panic!("bad {} page {:?}", args[0], parts[1])
        };
        for entry in items.chunks(width) {
            let words: Vec<String> = entry.iter().map(Resp::as_str).collect();
            seen.insert(words.join(" "));
        }
        cursor = parts[0].as_str();
        if cursor == "0" {
            return seen;
        }
    }
    panic!("{} does not terminate", args[0]);
}

/// Asserts that `key`, a paged value just deleted (DEL, or emptied by pops and removals), is
/// gone and that the background collector deletes its pages: none left pending, more than
/// `min_deleted` deleted.
#[track_caller]
pub fn assert_gone_with_its_pages(c: &mut Client, key: &str, min_deleted: i64) {
    assert_eq!(c.cmd(&["EXISTS", key]), Resp::Int(0), "{key} still exists");
    wait_until(std::time::Duration::from_secs(10), "pages deleted", || {
        c.info_int("page_gc_pending") == 0 && c.info_int("pages_deleted") > min_deleted
    });
}
