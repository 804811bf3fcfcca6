//! Requests of other clients while a script is busy (past `busy-reply-threshold`), checked
//! against redis-server 7.0.15: the same requests get the same replies in the same order of
//! checks (an unknown command or a wrong arity is refused as such, not with -BUSY; EXEC is
//! -EXECABORT even outside MULTI; the few commands Redis serves then are served), and INFO
//! commandstats (subcommands named `script|kill`) and errorstats count them the same way.

use kvtier_tests::{Client, RedisServer, Resp, Server};
use std::time::Duration;

/// Requests sent by a second client while the script loops, in order.
const REQUESTS: &[&[&str]] = &[
    &["GET", "x"],
    &["NOSUCHCMD", "a"],
    &["GET"],
    &["PING"],
    &["EXEC"],
    &["DISCARD"],
    &["MULTI"],
    &["GET", "x"],
    &["NOSUCH"],
    &["EXEC"],
    &["MULTI"],
    &["SET", "y", "1"],
    &["UNWATCH"],
    &["DISCARD"],
    &["WATCH", "x"],
    &["UNWATCH"],
    &["AUTH", "nopass"],
    &["CLIENT", "ID"],
    &["CONFIG", "GET", "maxmemory"],
    &["SCRIPT", "KILLX"],
    &["SCRIPT", "KILL", "X"],
    &["SCRIPT"],
    &["FUNCTION", "KILL"],
    &["FUNCTION", "STATS"],
    &["SHUTDOWN"],
    &["SCRIPT", "KILL"],
];

/// What a server answered: each request's reply, the script's reply, then the counters.
#[derive(Debug, PartialEq)]
struct Run {
    replies: Vec<(String, Resp)>,
    script: Resp,
    commandstats: Vec<String>,
    errorstats: Vec<String>,
    total_errors: i64,
}

fn info_lines(c: &mut Client, section: &str, prefix: &str) -> Vec<String> {
    let mut lines: Vec<String> = c
        .cmd(&["INFO", section])
        .as_str()
        .lines()
        .filter(|l| l.starts_with(prefix))
        .map(|l| {
            // Timing fields differ between servers; the counters must not.
            let kept: Vec<&str> = l.split(',').filter(|f| !f.starts_with("usec")).collect();
            kept.join(",").replace(":calls", " calls")
        })
        .collect();
    lines.sort();
    lines
}

fn busy_run(port: u16) -> Run {
    let mut runner = Client::connect(port);
    let mut other = Client::connect(port);
    assert_eq!(
        other.cmd(&["CONFIG", "SET", "busy-reply-threshold", "100"]),
        Resp::ok()
    );
    assert_eq!(other.cmd(&["SET", "x", "1"]), Resp::ok());
    assert_eq!(other.cmd(&["CONFIG", "RESETSTAT"]), Resp::ok());
    runner.send(&["EVAL", "local i = 0 while true do i = i + 1 end", "0"]);
    std::thread::sleep(Duration::from_millis(500));
    let replies = REQUESTS
        .iter()
        .map(|r| (r.join(" "), other.cmd(r)))
        .collect();
    let script = runner.read();
    Run {
        replies,
        script,
        commandstats: info_lines(&mut other, "commandstats", "cmdstat_"),
        errorstats: info_lines(&mut other, "errorstats", "errorstat_"),
        total_errors: other.info_int("total_error_replies"),
    }
}

fn reply_of<'a>(run: &'a Run, request: &str) -> &'a Resp {
    &run.replies.iter().find(|(r, _)| r == request).unwrap().1
}

#[test]
fn requests_during_a_busy_script_are_answered_and_counted_as_redis_does() {
    let s = Server::start(&[]);
    let kv = busy_run(s.port);
    // The kvtier half stands alone.
    let busy = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN \
                NOSAVE.";
    assert_eq!(kv.replies[0].1, Resp::err(busy), "{kv:#?}");
    assert_eq!(
        reply_of(&kv, "GET"),
        &Resp::err("ERR wrong number of arguments for 'get' command")
    );
    assert_eq!(
        reply_of(&kv, "SCRIPT KILL X"),
        &Resp::err("ERR wrong number of arguments for 'script|kill' command")
    );
    assert_eq!(reply_of(&kv, "SCRIPT KILL"), &Resp::ok());
    assert!(
        kv.commandstats
            .iter()
            .any(|l| l.starts_with("cmdstat_script|kill calls=1,rejected_calls=1,")),
        "{kv:#?}"
    );
    assert!(
        kv.commandstats
            .iter()
            .any(|l| l == "cmdstat_get calls=0,rejected_calls=3,failed_calls=0"),
        "{kv:#?}"
    );
    let Some(r) = RedisServer::start(&[]) else {
        return;
    };
    let redis = busy_run(r.port);
    for ((req, k), (_, r)) in kv.replies.iter().zip(&redis.replies) {
        assert_eq!(k, r, "{req}: kvtier (left) and redis-server (right) differ");
    }
    assert_eq!(kv, redis, "kvtier (left) and redis-server (right) differ");
}
