//! Error statistics (INFO errorstats, `total_error_replies`, commandstats `failed_calls` and
//! `rejected_calls`) counted as redis-server 7.0 counts them: an error from a command, from a
//! command inside EXEC, from a script, a command rejected before it runs (wrong arity, unknown
//! command), and EXEC answering EXECABORT (a call of EXEC that failed). The same requests go to
//! kvtier and to redis-server.
//!
//! Scripts: an error of a `redis.call`/`redis.pcall` (the command's own, or the call refused:
//! unknown command, arity, not allowed from scripts) is counted once, when the call fails; a
//! script that returns or raises that error table (even with its text changed) adds only a
//! failed call of EVAL, unless the script cleared the table's `ignore_error_stats_update`.

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
    // A queued command rejected: the transaction aborts (EXECABORT), a failed call of EXEC.
    &["MULTI"],
    &["GET"],
    &["EXEC"],
    &["MULTI"],
    &["NOSUCHCOMMAND"],
    &["EXEC"],
    &["EXEC"],
    // Scripts: an error returned by the script, and a script that raises one.
    &["EVAL", "return redis.error_reply('MYERR custom')", "0"],
    &["EVAL", "return {err='OTHER failure'}", "0"],
    &["EVAL", "error('plain')", "0"],
];

/// Commands whose commandstats counters are compared.
const COMMANDS: &[&str] = &[
    "set", "incr", "lpush", "hset", "select", "expire", "scan", "evalsha", "get", "multi", "eval",
    "exec",
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

/// Scripts whose errors come from a `redis.call`/`redis.pcall`, or look like they do.
const SCRIPTS: &[&str] = &[
    "return redis.call('incr', KEYS[1])",
    "return redis.pcall('incr', KEYS[1])",
    "local r = redis.pcall('incr', KEYS[1]); return 1",
    "return redis.call('set', KEYS[1], 'v', 'xx', 'nx')",
    "local r = redis.pcall('incr', KEYS[1]); error(r)",
    // The table keeps its mark when its text changes; a new table has none.
    "local r = redis.pcall('incr', KEYS[1]); r.err = 'OTHER changed'; return r",
    "local r = redis.pcall('incr', KEYS[1]); return redis.error_reply(r.err)",
    "local r = redis.pcall('incr', KEYS[1]); return {err = r.err}",
    "local r = redis.pcall('incr', KEYS[1]); r.ignore_error_stats_update = nil; return r",
    "local r = redis.pcall('incr', KEYS[1]); return type(r.ignore_error_stats_update)",
    // pcall(redis.call) gets the message as a string; xpcall's handler gets the table.
    "local ok, e = pcall(redis.call, 'incr', KEYS[1]); return e",
    "local ok, e = pcall(redis.call, 'incr', KEYS[1]); error(e)",
    "local ok, e = xpcall(function() return redis.call('incr', KEYS[1]) end, \
     function(e) return e end); return e",
    // Calls refused before the command runs: counted then (the command's rejected_calls).
    "redis.call('nosuchcommand')",
    "local r = redis.pcall('nosuchcommand'); return 1",
    "redis.call('get')",
    "local r = redis.pcall('get'); return 1",
    "return redis.pcall('multi')",
    // Errors of the call itself: not counted until the script fails with them.
    "local r = redis.pcall(); return 1",
    "return redis.pcall()",
    "return redis.pcall('set', {})",
    // A script's own errors, and a mark a script sets itself.
    "error('plain')",
    "return {err = 'MINE x', ignore_error_stats_update = true}",
];

/// What one script of [`SCRIPTS`] left, statistics reset before it.
#[derive(Debug, PartialEq)]
struct ScriptRun {
    script: String,
    reply: Resp,
    /// The errorstats lines.
    errors: Vec<String>,
    total: i64,
    /// The commandstats lines of the commands it ran (without timings), sorted.
    stats: Vec<String>,
}

/// Runs each script of [`SCRIPTS`] with statistics reset before it.
fn script_counters(c: &mut Client) -> Vec<ScriptRun> {
    SCRIPTS
        .iter()
        .map(|script| {
            assert_eq!(c.cmd(&["SET", "s", "abc"]), Resp::ok());
            assert_eq!(c.cmd(&["CONFIG", "RESETSTAT"]), Resp::ok());
            let reply = c.cmd(&["EVAL", script, "1", "s"]);
            let errors = c
                .cmd(&["INFO", "errorstats"])
                .as_str()
                .lines()
                .filter(|l| l.starts_with("errorstat_"))
                .map(str::to_string)
                .collect();
            let total = c.info_int("total_error_replies");
            let mut stats: Vec<String> = c
                .cmd(&["INFO", "commandstats"])
                .as_str()
                .lines()
                .filter(|l| l.starts_with("cmdstat_") && !l.starts_with("cmdstat_config"))
                .filter(|l| !l.starts_with("cmdstat_info"))
                .map(|l| {
                    let kept: Vec<&str> = l.split(',').filter(|f| !f.starts_with("usec")).collect();
                    kept.join(",")
                })
                .collect();
            stats.sort();
            ScriptRun {
                script: script.to_string(),
                reply,
                errors,
                total,
                stats,
            }
        })
        .collect()
}

#[test]
fn script_errors_are_counted_as_redis_counts_them() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let kv = script_counters(&mut c);
    // The kvtier half stands alone: the error of a failing redis.call is counted once, and the
    // EVAL that fails with it is a failed call.
    let first = &kv[0];
    assert!(
        matches!(&first.reply, Resp::Error(e) if e.starts_with("ERR value is not an integer")),
        "{first:?}"
    );
    assert_eq!(first.errors, ["errorstat_ERR:count=1"]);
    assert_eq!(first.total, 1);
    let eval_failed = "cmdstat_eval:calls=1,rejected_calls=0,failed_calls=1";
    assert!(first.stats.iter().any(|l| l == eval_failed), "{first:?}");
    let Some(r) = RedisServer::start(&[]) else {
        return;
    };
    let redis = script_counters(&mut r.client());
    for (k, r) in kv.iter().zip(&redis) {
        assert_eq!(k, r, "kvtier (left) and redis-server (right) differ");
    }
}

#[test]
fn execabort_is_a_failed_call_of_exec() {
    let s = Server::start(&[]);
    let mut c = s.client();
    for r in [
        &["MULTI"][..],
        &["GET"],
        &["EXEC"],
        &["MULTI"],
        &["PING"],
        &["EXEC"],
    ] {
        c.cmd(r);
    }
    let info = c.cmd(&["INFO", "commandstats"]).as_str();
    let exec = info
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_exec:"))
        .unwrap_or_else(|| panic!("no cmdstat_exec in {info}"));
    assert!(
        exec.ends_with("rejected_calls=0,failed_calls=1") && exec.starts_with("calls=2,"),
        "{exec}"
    );
    let errors = c.cmd(&["INFO", "errorstats"]).as_str();
    assert!(errors.contains("errorstat_EXECABORT:count=1"), "{errors}");
}
