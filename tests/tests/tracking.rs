//! Client-side caching (CLIENT TRACKING): every mode against the real server with a tiny cache,
//! so tracked keys go cold and come back from the disk store; command replies compared with
//! redis-server 7.0.15.

use kvtier_tests::{Client, RedisServer, Resp, Server};
use std::time::{Duration, Instant};

const SMALL_CACHE: &[&str] = &["--maxmemory", "1mb", "--cache-flush-delay", "0"];

fn id(c: &mut Client) -> i64 {
    c.cmd(&["CLIENT", "ID"]).as_int()
}

fn resp3(s: &Server) -> Client {
    let mut c = s.client();
    assert!(matches!(c.cmd(&["HELLO", "3"]), Resp::Map(_)));
    c
}

/// An `invalidate` push for `keys`.
fn inval(keys: &[&str]) -> Resp {
    Resp::Push(vec![Resp::bulk("invalidate"), Resp::bulks(keys)])
}

/// An `invalidate` push for a flush (null keys).
fn inval_null() -> Resp {
    Resp::Push(vec![Resp::bulk("invalidate"), Resp::Nil])
}

/// The `__redis__:invalidate` message a RESP2 subscriber gets.
fn message(keys: Resp) -> Resp {
    Resp::Array(vec![
        Resp::bulk("message"),
        Resp::bulk("__redis__:invalidate"),
        keys,
    ])
}

/// Asserts nothing was sent to `c` before the reply to a PING sent now (an invalidation due to
/// an earlier command would have been written before it).
#[track_caller]
fn assert_quiet(c: &mut Client) {
    assert_eq!(
        c.cmd(&["PING"]),
        Resp::Simple("PONG".into()),
        "expected no message before PONG"
    );
}

/// Fills the cache with values the disk store holds, so older keys are evicted from memory.
fn push_cold(c: &mut Client, n: usize) {
    let big = "x".repeat(16 * 1024);
    for i in 0..n {
        assert_eq!(c.cmd(&["SET", &format!("filler:{i}"), &big]), Resp::ok());
    }
}

/// The `flags=` and `redir=` fields of the client's CLIENT INFO line.
fn flags_redir(c: &mut Client) -> (String, String) {
    let line = c.cmd(&["CLIENT", "INFO"]).as_str();
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {line}"))
            .to_string()
    };
    (field("flags="), field("redir="))
}

#[track_caller]
fn assert_flags(c: &mut Client, flags: &str, redir: i64) {
    assert_eq!(flags_redir(c), (flags.to_string(), redir.to_string()));
}

#[test]
fn tracking_command_replies_match_redis() {
    // {B} stands for the id of a second client of the same server.
    let script: &[&[&str]] = &[
        &["CLIENT", "TRACKING"],
        &["CLIENT", "TRACKING", "maybe"],
        &["CLIENT", "TRACKING", "on", "foo"],
        &["CLIENT", "TRACKING", "on", "prefix", "a"],
        &["CLIENT", "TRACKING", "on", "bcast", "optin"],
        &["CLIENT", "TRACKING", "on", "bcast", "optin", "optout"],
        &["CLIENT", "TRACKING", "on", "optin", "optout"],
        &["CLIENT", "TRACKING", "on", "redirect", "0"],
        &["CLIENT", "TRACKING", "on", "redirect", "abc"],
        &[
            "CLIENT", "TRACKING", "on", "redirect", "{B}", "redirect", "{B}",
        ],
        &["CLIENT", "TRACKING", "on", "redirect"],
        &["CLIENT", "TRACKING", "on", "prefix"],
        &[
            "CLIENT", "TRACKING", "on", "bcast", "prefix", "a", "prefix", "ab",
        ],
        &[
            "CLIENT", "TRACKING", "on", "bcast", "prefix", "ab", "prefix", "a",
        ],
        &[
            "CLIENT", "TRACKING", "on", "bcast", "prefix", "a", "prefix", "a",
        ],
        &["CLIENT", "TRACKING", "off", "redirect", "99999"],
        &["CLIENT", "TRACKING", "off", "bcast"],
        &["CLIENT", "CACHING", "yes"],
        &["CLIENT", "CACHING"],
        &["CLIENT", "CACHING", "yes", "no"],
        &["CLIENT", "GETREDIR", "x"],
        &["CLIENT", "TRACKINGINFO", "x"],
        &["CLIENT", "TRACKINGINFO"],
        &["CLIENT", "GETREDIR"],
        &[
            "CLIENT", "TRACKING", "on", "bcast", "prefix", "b", "prefix", "a",
        ],
        &["CLIENT", "TRACKING", "on", "bcast", "prefix", "ab"],
        &["CLIENT", "TRACKING", "on", "bcast", "prefix", "b"],
        &["CLIENT", "TRACKING", "on", "bcast", "noloop", "prefix", "c"],
        &["CLIENT", "TRACKINGINFO"],
        &["CLIENT", "GETREDIR"],
        &["CLIENT", "TRACKING", "on"],
        &["CLIENT", "TRACKING", "on", "optin"],
        &["CLIENT", "TRACKING", "off"],
        &["CLIENT", "TRACKINGINFO"],
        &["CLIENT", "TRACKING", "on", "optin", "redirect", "{B}"],
        &["CLIENT", "CACHING", "no"],
        &["CLIENT", "CACHING", "maybe"],
        &["CLIENT", "CACHING", "yes"],
        &["CLIENT", "TRACKINGINFO"],
        &["CLIENT", "GETREDIR"],
        &["CLIENT", "TRACKING", "on", "optout"],
        &["CLIENT", "TRACKING", "off"],
        &["CLIENT", "TRACKING", "on", "optout", "noloop"],
        &["CLIENT", "CACHING", "yes"],
        &["CLIENT", "CACHING", "no"],
        &["CLIENT", "TRACKINGINFO"],
        &["GET", "k"],
        // CACHING applies to the next command only.
        &["CLIENT", "TRACKINGINFO"],
        &["HELLO", "3"],
        &["CLIENT", "TRACKINGINFO"],
        &["CLIENT", "TRACKING", "off"],
        &["CLIENT", "TRACKINGINFO"],
        &[
            "CLIENT", "TRACKING", "on", "bcast", "prefix", "x", "prefix", "y",
        ],
        &["CLIENT", "TRACKINGINFO"],
        &["CLIENT", "TRACKING", "off"],
    ];
    let run = |port: u16| -> Vec<Resp> {
        let mut a = Client::connect(port);
        let mut b = Client::connect(port);
        let bid = id(&mut b);
        let mut replies = Vec::new();
        for req in script {
            let args: Vec<String> = req
                .iter()
                .map(|a| a.replace("{B}", &bid.to_string()))
                .collect();
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let r = a.cmd(&refs);
            // HELLO's reply names the server and the client id: not compared.
            let r = if req[0] == "HELLO" { Resp::Nil } else { r };
            replies.push(normalize(r, bid));
        }
        replies
    };
    let kv = Server::start(SMALL_CACHE);
    let ours = run(kv.port);
    let Some(redis) = RedisServer::start(&[]) else {
        return;
    };
    let theirs = run(redis.port);
    for (i, (o, t)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(o, t, "request {:?}", script[i]);
    }
}

/// Replaces the redirect client's id (different on each server) by a marker.
fn normalize(r: Resp, bid: i64) -> Resp {
    match r {
        Resp::Int(n) if n == bid => Resp::Int(-777),
        Resp::Array(v) => Resp::Array(v.into_iter().map(|x| normalize(x, bid)).collect()),
        Resp::Map(v) => Resp::Map(v.into_iter().map(|(k, x)| (k, normalize(x, bid))).collect()),
        other => other,
    }
}

#[test]
fn default_mode_invalidates_keys_read_when_any_client_changes_them() {
    let s = Server::start(SMALL_CACHE);
    let mut a = resp3(&s);
    let mut w = s.client();
    assert_eq!(
        w.cmd(&["MSET", "k", "1", "k2", "2", "other", "3"]),
        Resp::ok()
    );
    w.cmd(&["HSET", "h", "f", "v"]);
    w.cmd(&["RPUSH", "l", "a", "b"]);
    push_cold(&mut w, 200);
    assert_eq!(a.cmd(&["CLIENT", "TRACKING", "on"]), Resp::ok());
    assert_eq!(a.cmd(&["GET", "k"]), Resp::bulk("1"));
    // A write by another client: one invalidation.
    assert_eq!(w.cmd(&["SET", "k", "10"]), Resp::ok());
    assert_eq!(a.read(), inval(&["k"]));
    // Forgotten once invalidated: a second change sends nothing until it is read again.
    w.cmd(&["SET", "k", "11"]);
    assert_quiet(&mut a);
    // Keys never read send nothing.
    w.cmd(&["SET", "other", "4"]);
    assert_quiet(&mut a);
    // MGET tracks every key; DEL, APPEND and INCR invalidate.
    assert!(matches!(
        a.cmd(&["MGET", "k", "k2", "nokey"]),
        Resp::Array(_)
    ));
    assert_eq!(w.cmd(&["DEL", "k2"]).as_int(), 1);
    assert_eq!(a.read(), inval(&["k2"]));
    w.cmd(&["INCR", "k"]);
    assert_eq!(a.read(), inval(&["k"]));
    // A key read while missing is tracked too.
    w.cmd(&["SET", "nokey", "x"]);
    assert_eq!(a.read(), inval(&["nokey"]));
    // Other types, other commands.
    assert_eq!(a.cmd(&["HGET", "h", "f"]), Resp::bulk("v"));
    assert!(matches!(a.cmd(&["LRANGE", "l", "0", "-1"]), Resp::Array(_)));
    w.cmd(&["HSET", "h", "g", "w"]);
    assert_eq!(a.read(), inval(&["h"]));
    w.cmd(&["LPOP", "l"]);
    assert_eq!(a.read(), inval(&["l"]));
    // EXPIRE, RENAME (both names), MOVE, COPY's target.
    a.cmd(&["GET", "k"]);
    w.cmd(&["EXPIRE", "k", "1000"]);
    assert_eq!(a.read(), inval(&["k"]));
    a.cmd(&["MGET", "k", "renamed"]);
    w.cmd(&["RENAME", "k", "renamed"]);
    let first = a.read();
    let second = a.read();
    let mut got = vec![first, second];
    got.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(got, vec![inval(&["k"]), inval(&["renamed"])]);
    a.cmd(&["GET", "renamed"]);
    assert_eq!(w.cmd(&["MOVE", "renamed", "1"]).as_int(), 1);
    assert_eq!(a.read(), inval(&["renamed"]));
    a.cmd(&["GET", "copy"]);
    w.cmd(&["SET", "src", "v"]);
    assert_eq!(w.cmd(&["COPY", "src", "copy"]).as_int(), 1);
    assert_eq!(a.read(), inval(&["copy"]));
    // Keys are names: a change in another DB invalidates too, as in Redis.
    a.cmd(&["GET", "k2"]);
    w.cmd(&["SELECT", "3"]);
    w.cmd(&["SET", "k2", "db3"]);
    assert_eq!(a.read(), inval(&["k2"]));
    // A read that does not change nothing sends nothing.
    w.cmd(&["SELECT", "0"]);
    a.cmd(&["GET", "other"]);
    w.cmd(&["GET", "other"]);
    w.cmd(&["DEL", "nosuchkey"]);
    assert_quiet(&mut a);
    // After TRACKING OFF, nothing.
    assert_eq!(a.cmd(&["CLIENT", "TRACKING", "off"]), Resp::ok());
    w.cmd(&["SET", "other", "5"]);
    assert_quiet(&mut a);
}

#[test]
fn own_writes_are_invalidated_after_the_reply_unless_noloop() {
    let s = Server::start(SMALL_CACHE);
    let mut a = resp3(&s);
    let mut w = s.client();
    a.cmd(&["CLIENT", "TRACKING", "on"]);
    a.cmd(&["SET", "k", "1"]);
    push_cold(&mut w, 100);
    assert_eq!(a.cmd(&["GET", "k"]), Resp::bulk("1"));
    // The reply first, then the push.
    assert_eq!(a.cmd(&["SET", "k", "2"]), Resp::ok());
    assert_eq!(a.read(), inval(&["k"]));
    // In a transaction: after the whole EXEC reply.
    a.cmd(&["MULTI"]);
    a.cmd(&["GET", "k"]);
    a.cmd(&["SET", "k", "3"]);
    a.cmd(&["GET", "k"]);
    assert_eq!(
        a.cmd(&["EXEC"]),
        Resp::Array(vec![Resp::bulk("2"), Resp::ok(), Resp::bulk("3")])
    );
    assert_eq!(a.read(), inval(&["k"]));
    // The last GET of the transaction tracked it again.
    a.cmd(&["DEL", "k"]);
    assert_eq!(a.read(), inval(&["k"]));
    // NOLOOP: own writes send nothing, others' still do.
    assert_eq!(a.cmd(&["CLIENT", "TRACKING", "on", "noloop"]), Resp::ok());
    a.cmd(&["GET", "k"]);
    a.cmd(&["SET", "k", "4"]);
    assert_quiet(&mut a);
    a.cmd(&["GET", "k"]);
    w.cmd(&["SET", "k", "5"]);
    assert_eq!(a.read(), inval(&["k"]));
    // A script's reads are the caller's; its writes follow NOLOOP too.
    a.cmd(&["EVAL", "return redis.call('get', KEYS[1])", "1", "k"]);
    w.cmd(&["SET", "k", "6"]);
    assert_eq!(a.read(), inval(&["k"]));
}

#[test]
fn redirect_to_a_resp2_subscriber_and_broken_redirect() {
    let s = Server::start(SMALL_CACHE);
    let mut sub = s.client();
    let sub_id = id(&mut sub);
    assert!(matches!(
        sub.cmd(&["SUBSCRIBE", "__redis__:invalidate"]),
        Resp::Array(_)
    ));
    let mut a = s.client(); // RESP2
    let mut w = s.client();
    w.cmd(&["SET", "k", "v"]);
    push_cold(&mut w, 100);
    assert_eq!(
        a.cmd(&["CLIENT", "TRACKING", "on", "redirect", &sub_id.to_string()]),
        Resp::ok()
    );
    assert_eq!(a.cmd(&["CLIENT", "GETREDIR"]).as_int(), sub_id);
    assert_flags(&mut a, "t", sub_id);
    assert_eq!(a.cmd(&["GET", "k"]), Resp::bulk("v"));
    w.cmd(&["SET", "k", "v2"]);
    assert_eq!(sub.read(), message(Resp::bulks(&["k"])));
    // A flush: a null to the redirect client.
    a.cmd(&["GET", "k"]);
    assert_eq!(w.cmd(&["FLUSHDB"]), Resp::ok());
    assert_eq!(sub.read(), message(Resp::Nil));
    // Redirect to a RESP3 client: pushes there.
    let mut r3 = resp3(&s);
    let r3_id = id(&mut r3);
    a.cmd(&["CLIENT", "TRACKING", "on", "redirect", &r3_id.to_string()]);
    a.cmd(&["GET", "k"]);
    w.cmd(&["SET", "k", "v3"]);
    assert_eq!(r3.read(), inval(&["k"]));
    // The redirect client goes away: a RESP3 tracking client is told, and flagged R.
    let mut b = resp3(&s);
    b.cmd(&["CLIENT", "TRACKING", "on", "redirect", &r3_id.to_string()]);
    b.cmd(&["GET", "k"]);
    drop(r3);
    // Let the server see the close.
    std::thread::sleep(Duration::from_millis(200));
    w.cmd(&["SET", "k", "v4"]);
    assert_eq!(
        b.read(),
        Resp::Push(vec![Resp::bulk("tracking-redir-broken"), Resp::Int(r3_id)])
    );
    assert_flags(&mut b, "tR", r3_id);
    let info = b.cmd(&["CLIENT", "TRACKINGINFO"]);
    let Resp::Map(pairs) = info else {
        panic!("{info:?}")
    };
    assert_eq!(
        pairs[0].1,
        Resp::Set(vec![Resp::bulk("on"), Resp::bulk("broken_redirect")])
    );
    // Turning tracking on again clears it.
    b.cmd(&["CLIENT", "TRACKING", "on"]);
    assert_flags(&mut b, "t", 0);
}

#[test]
fn bcast_sends_every_changed_key_under_the_prefixes() {
    let s = Server::start(SMALL_CACHE);
    let mut a = resp3(&s);
    let mut w = s.client();
    assert_eq!(
        a.cmd(&["CLIENT", "TRACKING", "on", "bcast", "prefix", "p:", "prefix", "r:"]),
        Resp::ok()
    );
    assert_flags(&mut a, "tB", 0);
    // Keys never read are announced too; one message per prefix, keys in order.
    w.cmd(&["MSET", "p:2", "a", "q:1", "b", "p:1", "c"]);
    assert_eq!(a.read(), inval(&["p:1", "p:2"]));
    w.cmd(&["SET", "r:x", "1"]);
    assert_eq!(a.read(), inval(&["r:x"]));
    w.cmd(&["SET", "q:2", "1"]);
    assert_quiet(&mut a);
    // Own writes come back after the reply, unless NOLOOP.
    assert_eq!(a.cmd(&["SET", "p:3", "1"]), Resp::ok());
    assert_eq!(a.read(), inval(&["p:3"]));
    // Keys pushed to disk and changed there: a DEL of a cold key.
    push_cold(&mut w, 100);
    assert_eq!(w.cmd(&["DEL", "p:1"]).as_int(), 1);
    assert_eq!(a.read(), inval(&["p:1"]));
    // Without prefixes: every key.
    let mut all = resp3(&s);
    all.cmd(&["CLIENT", "TRACKING", "on", "bcast", "noloop"]);
    all.cmd(&["SET", "mine", "1"]);
    assert_quiet(&mut all);
    w.cmd(&["SET", "z", "1"]);
    assert_eq!(all.read(), inval(&["z"]));
    // A client that switched from default mode to BCAST gets nothing for keys read before.
    let mut c = resp3(&s);
    c.cmd(&["CLIENT", "TRACKING", "on"]);
    c.cmd(&["GET", "old"]);
    c.cmd(&["CLIENT", "TRACKING", "off"]);
    c.cmd(&["CLIENT", "TRACKING", "on", "bcast", "prefix", "new"]);
    w.cmd(&["SET", "old", "1"]);
    assert_quiet(&mut c);
    w.cmd(&["SET", "newkey", "1"]);
    assert_eq!(c.read(), inval(&["newkey"]));
}

#[test]
fn optin_and_optout_follow_client_caching() {
    let s = Server::start(SMALL_CACHE);
    let mut w = s.client();
    w.cmd(&["MSET", "a", "1", "b", "2"]);
    push_cold(&mut w, 100);
    let mut i = resp3(&s);
    i.cmd(&["CLIENT", "TRACKING", "on", "optin"]);
    i.cmd(&["GET", "a"]);
    w.cmd(&["SET", "a", "x"]);
    assert_quiet(&mut i);
    assert_eq!(i.cmd(&["CLIENT", "CACHING", "yes"]), Resp::ok());
    i.cmd(&["GET", "a"]);
    // Only the command right after CACHING YES was tracked.
    i.cmd(&["GET", "b"]);
    w.cmd(&["MSET", "a", "y", "b", "z"]);
    assert_eq!(i.read(), inval(&["a"]));
    assert_quiet(&mut i);
    // CACHING YES before MULTI covers the whole transaction.
    i.cmd(&["CLIENT", "CACHING", "yes"]);
    i.cmd(&["MULTI"]);
    i.cmd(&["GET", "a"]);
    i.cmd(&["GET", "b"]);
    i.cmd(&["EXEC"]);
    w.cmd(&["DEL", "b"]);
    assert_eq!(i.read(), inval(&["b"]));

    let mut o = resp3(&s);
    o.cmd(&["CLIENT", "TRACKING", "on", "optout"]);
    o.cmd(&["GET", "a"]);
    w.cmd(&["SET", "a", "1"]);
    assert_eq!(o.read(), inval(&["a"]));
    assert_eq!(o.cmd(&["CLIENT", "CACHING", "no"]), Resp::ok());
    o.cmd(&["GET", "a"]);
    w.cmd(&["SET", "a", "2"]);
    assert_quiet(&mut o);
}

#[test]
fn flushes_send_a_null_invalidation_to_every_tracking_client() {
    let s = Server::start(SMALL_CACHE);
    let mut a = resp3(&s);
    let mut bc = resp3(&s);
    let mut w = s.client();
    a.cmd(&["CLIENT", "TRACKING", "on"]);
    bc.cmd(&["CLIENT", "TRACKING", "on", "bcast", "prefix", "p"]);
    w.cmd(&["SET", "k", "1"]);
    push_cold(&mut w, 50);
    a.cmd(&["GET", "k"]);
    assert_eq!(w.cmd(&["FLUSHALL"]), Resp::ok());
    assert_eq!(a.read(), inval_null());
    assert_eq!(bc.read(), inval_null());
    // The table was emptied: a later write of k sends nothing.
    w.cmd(&["SET", "k", "2"]);
    assert_quiet(&mut a);
    // A client's own flush inside a transaction: the null follows EXEC's reply.
    a.cmd(&["GET", "k"]);
    a.cmd(&["MULTI"]);
    a.cmd(&["SET", "j", "1"]);
    a.cmd(&["FLUSHDB"]);
    assert_eq!(a.cmd(&["EXEC"]), Resp::Array(vec![Resp::ok(), Resp::ok()]));
    assert_eq!(a.read(), inval_null());
    assert_eq!(bc.read(), inval_null());
}

#[test]
fn expiry_invalidates_keys_in_memory_and_on_disk() {
    let s = Server::start(SMALL_CACHE);
    let mut a = resp3(&s);
    let mut w = s.client();
    a.cmd(&["CLIENT", "TRACKING", "on"]);
    // Expiry of a key in memory: by a read (the push then follows the reply) or by active
    // expiry (before it), whichever comes first.
    w.cmd(&["SET", "lazy", "1", "PX", "100"]);
    w.cmd(&["SET", "x", "1"]);
    a.cmd(&["GET", "lazy"]);
    std::thread::sleep(Duration::from_millis(150));
    a.send(&["MGET", "x", "lazy"]);
    let mut got = vec![a.read(), a.read()];
    got.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(
        got,
        vec![
            Resp::Array(vec![Resp::bulk("1"), Resp::Nil]),
            inval(&["lazy"])
        ]
    );
    // A key read, then pushed out of memory, expiring on disk: the expiry sweep deletes it
    // and the reader hears of it.
    w.cmd(&["SET", "cold", "1", "PX", "1500"]);
    assert_eq!(a.cmd(&["GET", "cold"]), Resp::bulk("1"));
    push_cold(&mut w, 300);
    a.set_timeout(Duration::from_secs(20));
    let start = Instant::now();
    assert_eq!(a.read(), inval(&["cold"]));
    assert!(start.elapsed() < Duration::from_secs(15));
    // It was the disk sweep (or a load) that found it expired, not memory.
    assert!(w.info_int("expired_on_load") >= 1);
}

#[test]
fn tracking_table_limit_evicts_keys_with_an_invalidation() {
    let s = Server::start(SMALL_CACHE);
    let mut a = resp3(&s);
    let mut w = s.client();
    a.cmd(&["CLIENT", "TRACKING", "on"]);
    a.cmd(&["MGET", "k1", "k2", "k3"]);
    assert_eq!(
        w.cmd(&["CONFIG", "SET", "tracking-table-max-keys", "1"]),
        Resp::ok()
    );
    a.set_timeout(Duration::from_secs(10));
    let mut evicted = Vec::new();
    for _ in 0..2 {
        match a.read() {
            Resp::Push(v) if v[0] == Resp::bulk("invalidate") => evicted.push(v[1].clone()),
            other => panic!("{other:?}"),
        }
    }
    evicted.sort_by_key(|r| format!("{r:?}"));
    evicted.dedup();
    assert_eq!(evicted.len(), 2);
    // One key is left, still tracked.
    w.cmd(&["CONFIG", "SET", "tracking-table-max-keys", "0"]);
    w.cmd(&["MSET", "k1", "1", "k2", "2", "k3", "3"]);
    match a.read() {
        Resp::Push(v) => assert!(!evicted.contains(&v[1]), "{v:?}"),
        other => panic!("{other:?}"),
    }
    assert_quiet(&mut a);
}

#[test]
fn reset_turns_tracking_off_and_client_list_shows_it() {
    let s = Server::start(SMALL_CACHE);
    let mut a = resp3(&s);
    let mut w = s.client();
    assert_flags(&mut a, "N", -1);
    a.cmd(&["CLIENT", "SETNAME", "test-client"]);
    a.cmd(&["CLIENT", "TRACKING", "on"]);
    a.cmd(&["GET", "k"]);
    assert_flags(&mut a, "t", 0);
    assert_eq!(a.cmd(&["RESET"]), Resp::Simple("RESET".into()));
    assert_flags(&mut a, "N", -1);
    assert_eq!(a.cmd(&["CLIENT", "GETNAME"]), Resp::Nil);
    assert_eq!(a.cmd(&["CLIENT", "GETREDIR"]).as_int(), -1);
    // RESET went back to RESP2; in RESP3 again, nothing arrives for the key read before.
    a.cmd(&["HELLO", "3"]);
    w.cmd(&["SET", "k", "1"]);
    assert_quiet(&mut a);
}

/// One step of a differential scenario: a client (by name) sends a command; `{x}` in an
/// argument is the id of client `x`.
type Step = (&'static str, &'static [&'static str]);

/// Runs a scenario on one server: after each step every client not inside MULTI is synced with
/// a PING, and everything it received before the PONG is recorded with the step's reply. Ids of
/// the scenario's clients are replaced by their names, HELLO replies are dropped.
fn run_scenario(port: u16, steps: &[Step]) -> Vec<(String, Vec<String>)> {
    let mut names: Vec<&str> = Vec::new();
    for (n, args) in steps {
        for a in args.iter().chain(std::iter::once(n)) {
            let name = a.trim_start_matches('{').trim_end_matches('}');
            if (a.starts_with('{') || a == n) && !names.contains(&name) {
                names.push(name);
            }
        }
    }
    let mut clients: Vec<Client> = names.iter().map(|_| Client::connect(port)).collect();
    let ids: Vec<i64> = clients.iter_mut().map(id).collect();
    let show = |r: &Resp| {
        let mut s = format!("{r:?}");
        for (i, n) in names.iter().enumerate() {
            s = s.replace(&format!("Int({})", ids[i]), &format!("Id({n})"));
        }
        s
    };
    let mut in_multi = vec![false; names.len()];
    let mut closed = vec![false; names.len()];
    let mut log = Vec::new();
    for (n, args) in steps {
        let who = names.iter().position(|x| x == n).expect("named");
        let args: Vec<String> = args
            .iter()
            .map(
                |a| match names.iter().position(|x| format!("{{{x}}}") == *a) {
                    Some(i) => ids[i].to_string(),
                    None => a.to_string(),
                },
            )
            .collect();
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let reply = clients[who].cmd(&refs);
        let cmd = args[0].to_ascii_uppercase();
        if cmd == "MULTI" {
            in_multi[who] = true;
        } else if cmd == "EXEC" || cmd == "DISCARD" {
            in_multi[who] = false;
        }
        let mut seen = vec![if cmd == "HELLO" {
            "hello".into()
        } else {
            show(&reply)
        }];
        for (i, c) in clients.iter_mut().enumerate() {
            if in_multi[i] || closed[i] {
                continue;
            }
            c.send(&["PING"]);
            loop {
                // A client killed by the step: recorded, then left alone.
                let Ok(r) = c.try_read() else {
                    seen.push(format!("{} closed", names[i]));
                    closed[i] = true;
                    break;
                };
                let pong = r == Resp::Simple("PONG".into())
                    || r == Resp::Array(vec![Resp::bulk("pong"), Resp::bulk("")]);
                if pong {
                    break;
                }
                seen.push(format!("{} got {}", names[i], show(&r)));
            }
        }
        log.push((refs.join(" "), seen));
    }
    log
}

#[test]
fn invalidation_messages_match_redis() {
    let scenarios: &[&[Step]] = &[
        // Default mode, RESP3: own writes, others' writes, MULTI, MGET, HDEL.
        &[
            ("a", &["HELLO", "3"]),
            ("a", &["CLIENT", "TRACKING", "on"]),
            ("a", &["MGET", "k", "k", "j"]),
            ("b", &["MSET", "k", "1", "j", "2"]),
            ("a", &["HSET", "h", "f", "1"]),
            ("a", &["HGET", "h", "f"]),
            ("a", &["HDEL", "h", "f"]),
            ("a", &["MULTI"]),
            ("a", &["GET", "k"]),
            ("a", &["SET", "k", "3"]),
            ("a", &["GET", "k"]),
            ("a", &["EXEC"]),
            ("b", &["DEL", "k"]),
            ("a", &["FLUSHALL"]),
        ],
        // OPTIN / OPTOUT with CACHING, across CLIENT commands and transactions.
        &[
            ("a", &["HELLO", "3"]),
            ("a", &["CLIENT", "TRACKING", "on", "optin"]),
            ("a", &["GET", "x"]),
            ("a", &["CLIENT", "CACHING", "yes"]),
            ("a", &["CLIENT", "ID"]),
            ("a", &["GET", "y"]),
            ("b", &["MSET", "x", "1", "y", "2"]),
            ("a", &["CLIENT", "CACHING", "yes"]),
            ("a", &["MULTI"]),
            ("a", &["GET", "x"]),
            ("a", &["EXEC"]),
            ("b", &["SET", "x", "3"]),
            ("c", &["HELLO", "3"]),
            ("c", &["CLIENT", "TRACKING", "on", "optout"]),
            ("c", &["CLIENT", "CACHING", "no"]),
            ("c", &["GET", "x"]),
            ("c", &["GET", "y"]),
            ("b", &["MSET", "x", "4", "y", "5"]),
            // A refused request ends CACHING YES too.
            ("a", &["CLIENT", "CACHING", "yes"]),
            ("a", &["GET"]),
            ("a", &["GET", "x"]),
            ("a", &["CLIENT", "CACHING", "yes"]),
            ("a", &["NOSUCHCOMMAND"]),
            ("a", &["GET", "y"]),
            ("b", &["MSET", "x", "6", "y", "7"]),
        ],
        // BCAST with prefixes, NOLOOP, several clients, transactions.
        &[
            ("a", &["HELLO", "3"]),
            ("c", &["HELLO", "3"]),
            (
                "a",
                &[
                    "CLIENT", "TRACKING", "on", "bcast", "prefix", "p", "prefix", "q:",
                ],
            ),
            (
                "c",
                &[
                    "CLIENT", "TRACKING", "on", "bcast", "noloop", "prefix", "pp",
                ],
            ),
            ("b", &["MSET", "p1", "1", "pp1", "2", "q:1", "3", "r", "4"]),
            ("c", &["MULTI"]),
            ("c", &["SET", "pp2", "1"]),
            ("c", &["SET", "p3", "1"]),
            ("c", &["EXEC"]),
            ("a", &["SET", "pp3", "1"]),
            ("a", &["CLIENT", "TRACKING", "on", "bcast", "prefix", "z"]),
            ("b", &["SET", "zz", "1"]),
            ("b", &["FLUSHDB"]),
        ],
        // REDIRECT: to a RESP2 subscriber, to a RESP2 non-subscriber, to a RESP3 client,
        // redirect gone (RESP3 and RESP2 tracking clients), two clients to one.
        &[
            ("s", &["SUBSCRIBE", "__redis__:invalidate"]),
            ("n", &["PING"]),
            ("r", &["HELLO", "3"]),
            ("a", &["CLIENT", "TRACKING", "on", "redirect", "{s}"]),
            ("c", &["CLIENT", "TRACKING", "on", "redirect", "{s}"]),
            ("a", &["GET", "k"]),
            ("c", &["GET", "k"]),
            ("b", &["SET", "k", "1"]),
            ("a", &["GET", "k"]),
            ("b", &["FLUSHALL"]),
            ("a", &["CLIENT", "TRACKING", "on", "redirect", "{n}"]),
            ("a", &["GET", "k"]),
            ("b", &["SET", "k", "2"]),
            ("a", &["HELLO", "3"]),
            ("a", &["CLIENT", "TRACKING", "on", "redirect", "{r}"]),
            ("a", &["GET", "k"]),
            ("b", &["SET", "k", "3"]),
            ("a", &["GET", "k"]),
            ("r", &["QUIT"]),
            ("b", &["SET", "k", "4"]),
            ("a", &["CLIENT", "TRACKINGINFO"]),
            ("a", &["CLIENT", "TRACKING", "on", "redirect", "{s}"]),
            ("a", &["HELLO", "2"]),
            ("a", &["GET", "k"]),
            ("s", &["UNSUBSCRIBE"]),
            ("b", &["SET", "k", "5"]),
        ],
        // Scripts: reads count for the caller, NOLOOP applies to its writes; EVAL_RO.
        &[
            ("a", &["HELLO", "3"]),
            ("a", &["CLIENT", "TRACKING", "on", "noloop"]),
            (
                "a",
                &[
                    "EVAL",
                    "redis.call('get', KEYS[1]); return redis.call('set', KEYS[1], 'v')",
                    "1",
                    "s1",
                ],
            ),
            ("b", &["SET", "s1", "2"]),
            (
                "a",
                &["EVAL_RO", "return redis.call('get', KEYS[1])", "1", "s2"],
            ),
            ("b", &["SET", "s2", "2"]),
            ("a", &["CLIENT", "TRACKING", "off"]),
            ("a", &["CLIENT", "TRACKING", "on"]),
            (
                "a",
                &["EVAL", "return redis.call('get', KEYS[1])", "1", "s3"],
            ),
            ("a", &["SET", "s3", "1"]),
            // A read in a script tracks the keys the script declared, not the one it read.
            (
                "a",
                &["EVAL", "return redis.call('get', 's9')", "2", "s4", "s5"],
            ),
            ("b", &["MSET", "s4", "1", "s5", "1", "s9", "1"]),
            ("a", &["EVAL", "return redis.call('get', 's9')", "0"]),
            (
                "a",
                &["EVAL", "return redis.call('set', 's9', '1')", "1", "s6"],
            ),
            ("b", &["MSET", "s6", "1", "s9", "2"]),
            ("a", &["RESET"]),
            ("b", &["SET", "s3", "2"]),
        ],
    ];
    let kv = Server::start(SMALL_CACHE);
    let Some(redis) = RedisServer::start(&[]) else {
        return;
    };
    for steps in scenarios {
        let ours = run_scenario(kv.port, steps);
        let theirs = run_scenario(redis.port, steps);
        // Ids in arguments differ between the servers: compare what came back.
        for (o, t) in ours.iter().zip(&theirs) {
            assert_eq!(o.1, t.1, "after {:?} (redis: {:?})", o.0, t.0);
        }
        let mut c = Client::connect(kv.port);
        c.cmd(&["FLUSHALL"]);
        let mut c = Client::connect(redis.port);
        c.cmd(&["FLUSHALL"]);
    }
}

#[test]
fn info_reports_tracking_figures() {
    let s = Server::start(SMALL_CACHE);
    let mut a = s.client();
    let mut b = s.client();
    let mut w = s.client();
    assert_eq!(w.info_int("tracking_clients"), 0);
    a.cmd(&["CLIENT", "TRACKING", "on"]);
    a.cmd(&["MGET", "k1", "k2"]);
    b.cmd(&["CLIENT", "TRACKING", "on"]);
    b.cmd(&["GET", "k1"]);
    let mut p = s.client();
    p.cmd(&[
        "CLIENT", "TRACKING", "on", "bcast", "prefix", "x:", "prefix", "y:",
    ]);
    assert_eq!(w.info_int("tracking_clients"), 3);
    assert_eq!(w.info_int("tracking_total_keys"), 2);
    assert_eq!(w.info_int("tracking_total_items"), 3);
    assert_eq!(w.info_int("tracking_total_prefixes"), 2);
    w.cmd(&["SET", "k1", "1"]);
    assert_eq!(w.info_int("tracking_total_keys"), 1);
    assert_eq!(w.info_int("tracking_total_items"), 1);
    drop(p);
    b.cmd(&["CLIENT", "TRACKING", "off"]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(w.info_int("tracking_clients"), 1);
    assert_eq!(w.info_int("tracking_total_prefixes"), 0);
    w.cmd(&["FLUSHALL"]);
    assert_eq!(w.info_int("tracking_total_keys"), 0);
    assert_eq!(w.info_int("tracking_total_items"), 0);
}

#[test]
fn tracking_subcommands_are_not_dangerous_for_acl() {
    let run = |port: u16| -> Vec<Resp> {
        let mut admin = Client::connect(port);
        admin.cmd(&[
            "ACL",
            "SETUSER",
            "u",
            "on",
            "nopass",
            "+@all",
            "-@dangerous",
        ]);
        let mut c = Client::connect(port);
        let mut out = vec![c.cmd(&["AUTH", "u", "x"])];
        for req in [
            &["CLIENT", "TRACKING", "on"][..],
            &["CLIENT", "GETREDIR"],
            &["CLIENT", "TRACKING", "off"],
        ] {
            out.push(c.cmd(req));
        }
        let list = c.cmd(&["CLIENT", "LIST"]);
        out.push(match list {
            Resp::Error(e) => Resp::Error(e.split(' ').take(1).collect()),
            other => panic!("{other:?}"),
        });
        out
    };
    let kv = Server::start(SMALL_CACHE);
    let ours = run(kv.port);
    assert_eq!(ours[1], Resp::ok());
    if let Some(redis) = RedisServer::start(&[]) {
        assert_eq!(ours, run(redis.port));
    }
}
