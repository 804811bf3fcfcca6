//! Error statistics (INFO errorstats, `total_error_replies`, commandstats `failed_calls` and
//! `rejected_calls`) counted as redis-server 7.0 counts them: an error from a command, from a
//! command inside EXEC, from a script, and a command rejected before it runs (wrong arity,
//! unknown command, EXECABORT). The same requests go to kvtier and to redis-server.
//!
//! Not covered: a script that returns or raises the error of a `redis.call`/`redis.pcall`.
//! Redis counts that error once (for the inner command); kvtier counts it again for the
//! script's own error reply.

use kvtier_tests::{Client, RedisServer, Resp, Server};

/// Requests whose errors are counted; each is sent and its reply read.
const REQUESTS: &[&[&str]] = &[
    &["SET", "s", "abc"],
    // Errors of the commands themselves.
    &["INCR", "s"],
    &["LPUSH", "s", "x"],
    &["HSET", "h", "f"],
    &["SELECT", "99"],
    &["EXPIRE", "s", "10", "NX", "XX"],
    &["SCAN", "0", "COUNT", "0"],
    &["EVALSHA", "0000000000000000000000000000000000000000", "0"],
    // Rejected before running: arity, unknown command.
    &["GET"],
    &["NOSUCHCOMMAND", "x"],
    // Inside EXEC: each failing command counts; EXEC itself does not fail.
    &["MULTI"],
    &["INCR", "s"],
    &["LPUSH", "s", "y"],
    &["SET", "t", "1"],
    &["EXEC"],
    // A queued command rejected: the transaction aborts (EXECABORT).
    &["MULTI"],
    &["GET"],
    &["EXEC"],
    // Scripts: an error returned by the script, and a script that raises one.
    &["EVAL", "return redis.error_reply('MYERR custom')", "0"],
    &["EVAL", "return {err='OTHER failure'}", "0"],
    &["EVAL", "error('plain')", "0"],
];

/// Commands whose commandstats counters are compared. Not EXEC: kvtier counts an EXECABORT
/// as a rejected call and does not count EXEC's own calls, where Redis counts both as calls
/// (the EXECABORT one failed).
const COMMANDS: &[&str] = &[
    "set", "incr", "lpush", "hset", "select", "expire", "scan", "evalsha", "get", "multi", "eval",
];

/// The error counters after the requests: errorstats lines, the total, and per command
/// `(calls, rejected_calls, failed_calls)`.
fn counters(c: &mut Client) -> (Vec<String>, i64, Vec<(String, String)>) {
    for r in REQUESTS {
        let _ = c.cmd(r);
    }
    let errorstats: Vec<String> = c
        .cmd(&["INFO", "errorstats"])
        .as_str()
        .lines()
        .filter(|l| l.starts_with("errorstat_"))
        .map(str::to_string)
        .collect();
    let total = c.info_int("total_error_replies");
    let info = c.cmd(&["INFO", "commandstats"]).as_str();
    let stats = COMMANDS
        .iter()
        .map(|name| {
            let line = info
                .lines()
                .find_map(|l| l.strip_prefix(&format!("cmdstat_{name}:")))
                .unwrap_or("");
            // Timing fields differ between servers; the counters must not.
            let kept: Vec<&str> = line.split(',').filter(|f| !f.starts_with("usec")).collect();
            (name.to_string(), kept.join(","))
        })
        .collect();
    (errorstats, total, stats)
}

#[test]
fn error_statistics_match_redis() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let (kv_errors, kv_total, kv_stats) = counters(&mut c);
    // The kvtier half stands alone: the codes Redis would count are all there.
    for code in [
        "ERR",
        "WRONGTYPE",
        "NOSCRIPT",
        "EXECABORT",
        "MYERR",
        "OTHER",
    ] {
        assert!(
            kv_errors
                .iter()
                .any(|l| l.starts_with(&format!("errorstat_{code}:"))),
            "{code} missing from {kv_errors:?}"
        );
    }
    assert!(kv_total > 0);
    let Some(r) = RedisServer::start(&[]) else {
        return;
    };
    let mut rc = r.client();
    let (redis_errors, redis_total, redis_stats) = counters(&mut rc);
    assert_eq!(kv_errors, redis_errors);
    assert_eq!(kv_total, redis_total);
    assert_eq!(kv_stats, redis_stats);
}

#[test]
fn an_error_inside_exec_is_reply_data_and_counted_once() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.cmd(&["SET", "s", "abc"]);
    c.cmd(&["MULTI"]);
    c.cmd(&["INCR", "s"]);
    c.cmd(&["GET", "s"]);
    let reply = c.cmd(&["EXEC"]);
    assert_eq!(
        reply,
        Resp::Array(vec![
            Resp::err("ERR value is not an integer or out of range"),
            Resp::bulk("abc"),
        ])
    );
    assert_eq!(c.info_int("total_error_replies"), 1);
    let info = c.cmd(&["INFO", "errorstats"]).as_str();
    assert!(info.contains("errorstat_ERR:count=1"), "{info}");
}
