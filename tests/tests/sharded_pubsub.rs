//! Sharded pub/sub (SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH, PUBSUB SHARDCHANNELS/SHARDNUMSUB) as
//! Redis 7.0 has it outside cluster mode.
//!
//! Black-box tests check the behaviour; the differential test sends the same interleaved
//! multi-client sequences to a real redis-server and to kvtier and compares every byte each
//! client receives. To know where a command's replies (and the messages pushed before them) end
//! without waiting on a clock, each command is followed by `PING <token>`, whose reply ends with
//! the token as a bulk string in every mode (plain, subscribed RESP2, RESP3).

use kvtier_tests::{assert_err, RedisServer, Resp, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A small cache, so keys written around the pub/sub traffic go through the disk store.
const SMALL_CACHE: &[&str] = &["--maxmemory", "1mb", "--cache-flush-delay", "0"];

fn arr(items: Vec<Resp>) -> Resp {
    Resp::Array(items)
}

fn sub_reply(kind: &str, name: &str, n: i64) -> Resp {
    arr(vec![Resp::bulk(kind), Resp::bulk(name), Resp::Int(n)])
}

fn smessage(channel: &str, msg: &str) -> Resp {
    arr(vec![
        Resp::bulk("smessage"),
        Resp::bulk(channel),
        Resp::bulk(msg),
    ])
}

#[test]
fn ssubscribe_spublish_sunsubscribe() {
    let s = Server::start(SMALL_CACHE);
    let mut sub = s.client();
    let mut other = s.client();
    let mut pubc = s.client();
    assert_eq!(
        sub.cmd(&["SSUBSCRIBE", "a", "b", "a"]),
        sub_reply("ssubscribe", "a", 1)
    );
    assert_eq!(sub.read(), sub_reply("ssubscribe", "b", 2));
    assert_eq!(sub.read(), sub_reply("ssubscribe", "a", 2));
    assert_eq!(
        other.cmd(&["SSUBSCRIBE", "a"]),
        sub_reply("ssubscribe", "a", 1)
    );

    assert_eq!(pubc.cmd(&["SPUBLISH", "a", "hello"]), Resp::Int(2));
    assert_eq!(sub.read(), smessage("a", "hello"));
    assert_eq!(other.read(), smessage("a", "hello"));
    assert_eq!(pubc.cmd(&["SPUBLISH", "b", "x"]), Resp::Int(1));
    assert_eq!(sub.read(), smessage("b", "x"));
    assert_eq!(pubc.cmd(&["SPUBLISH", "nobody", "x"]), Resp::Int(0));

    // Introspection.
    assert_eq!(
        pubc.cmd(&["PUBSUB", "SHARDCHANNELS"]).sorted(),
        vec![Resp::bulk("a"), Resp::bulk("b")]
    );
    assert_eq!(
        pubc.cmd(&["PUBSUB", "SHARDCHANNELS", "b*"]),
        Resp::bulks(&["b"])
    );
    assert_eq!(
        pubc.cmd(&["PUBSUB", "SHARDNUMSUB", "a", "b", "zz"]),
        arr(vec![
            Resp::bulk("a"),
            Resp::Int(2),
            Resp::bulk("b"),
            Resp::Int(1),
            Resp::bulk("zz"),
            Resp::Int(0)
        ])
    );
    assert_eq!(pubc.cmd(&["PUBSUB", "SHARDNUMSUB"]), arr(vec![]));
    // Ordinary channels do not see shard channels.
    assert_eq!(pubc.cmd(&["PUBSUB", "CHANNELS"]), arr(vec![]));
    assert_eq!(pubc.cmd(&["PUBSUB", "NUMPAT"]), Resp::Int(0));

    // A subscribed RESP2 client is limited to pub/sub commands.
    assert_err(&sub.cmd(&["GET", "k"]), "ERR Can't execute 'get'");
    assert_eq!(sub.cmd(&["PING"]), Resp::bulks(&["pong", ""]));

    assert_eq!(
        sub.cmd(&["SUNSUBSCRIBE", "a", "never"]),
        sub_reply("sunsubscribe", "a", 1)
    );
    assert_eq!(sub.read(), sub_reply("sunsubscribe", "never", 1));
    assert_eq!(
        sub.cmd(&["SUNSUBSCRIBE"]),
        sub_reply("sunsubscribe", "b", 0)
    );
    assert_eq!(
        sub.cmd(&["SUNSUBSCRIBE"]),
        arr(vec![Resp::bulk("sunsubscribe"), Resp::Nil, Resp::Int(0)])
    );
    // Out of subscribed mode again; keys still round-trip through the small cache.
    assert_eq!(sub.cmd(&["PING"]), Resp::Simple("PONG".into()));
    assert_eq!(sub.cmd(&["SET", "k", "v"]), Resp::ok());
    assert_eq!(sub.cmd(&["GET", "k"]), Resp::bulk("v"));
    assert_eq!(
        pubc.cmd(&["PUBSUB", "SHARDNUMSUB", "a", "b"]),
        arr(vec![
            Resp::bulk("a"),
            Resp::Int(1),
            Resp::bulk("b"),
            Resp::Int(0)
        ])
    );
}

#[test]
fn shard_channels_are_a_namespace_apart() {
    let s = Server::start(&[]);
    let mut sub = s.client();
    let mut pubc = s.client();
    assert_eq!(
        sub.cmd(&["SSUBSCRIBE", "ch", "ch3"]),
        sub_reply("ssubscribe", "ch", 1)
    );
    assert_eq!(sub.read(), sub_reply("ssubscribe", "ch3", 2));
    // The SUBSCRIBE count leaves shard channels out, and the SSUBSCRIBE count the others.
    assert_eq!(
        sub.cmd(&["SUBSCRIBE", "ch"]),
        sub_reply("subscribe", "ch", 1)
    );
    assert_eq!(
        sub.cmd(&["PSUBSCRIBE", "c*"]),
        sub_reply("psubscribe", "c*", 2)
    );
    assert_eq!(
        sub.cmd(&["SSUBSCRIBE", "ch2"]),
        sub_reply("ssubscribe", "ch2", 3)
    );

    // PUBLISH reaches the channel and the pattern, never the shard channel…
    assert_eq!(pubc.cmd(&["PUBLISH", "ch", "m1"]), Resp::Int(2));
    assert_eq!(sub.read(), Resp::bulks(&["message", "ch", "m1"]));
    assert_eq!(sub.read(), Resp::bulks(&["pmessage", "c*", "ch", "m1"]));
    // …and SPUBLISH only the shard channel (patterns do not match shard channels).
    assert_eq!(pubc.cmd(&["SPUBLISH", "ch", "m2"]), Resp::Int(1));
    assert_eq!(sub.read(), smessage("ch", "m2"));
    assert_eq!(pubc.cmd(&["SPUBLISH", "ch9", "m3"]), Resp::Int(0));
    assert_eq!(sub.cmd(&["PING", "x"]), Resp::bulks(&["pong", "x"]));

    assert_eq!(pubc.cmd(&["PUBSUB", "CHANNELS"]), Resp::bulks(&["ch"]));
    assert_eq!(
        pubc.cmd(&["PUBSUB", "SHARDCHANNELS", "ch"]),
        Resp::bulks(&["ch"])
    );

    // Dropping the ordinary subscriptions leaves the client in subscribed mode.
    assert_eq!(sub.cmd(&["UNSUBSCRIBE"]), sub_reply("unsubscribe", "ch", 1));
    assert_eq!(
        sub.cmd(&["PUNSUBSCRIBE"]),
        sub_reply("punsubscribe", "c*", 0)
    );
    assert_err(&sub.cmd(&["GET", "k"]), "ERR Can't execute 'get'");
    assert_eq!(sub.cmd(&["PING"]), Resp::bulks(&["pong", ""]));
}

#[test]
fn resp3_push_messages() {
    let s = Server::start(SMALL_CACHE);
    let mut sub = s.client();
    let mut pubc = s.client();
    sub.cmd(&["HELLO", "3"]);
    assert_eq!(
        sub.cmd(&["SSUBSCRIBE", "r"]),
        Resp::Push(vec![
            Resp::bulk("ssubscribe"),
            Resp::bulk("r"),
            Resp::Int(1)
        ])
    );
    // RESP3 clients may run any command while subscribed.
    assert_eq!(sub.cmd(&["SET", "k", "v"]), Resp::ok());
    assert_eq!(pubc.cmd(&["SPUBLISH", "r", "hi"]), Resp::Int(1));
    assert_eq!(
        sub.read(),
        Resp::Push(vec![
            Resp::bulk("smessage"),
            Resp::bulk("r"),
            Resp::bulk("hi")
        ])
    );
    assert_eq!(sub.cmd(&["GET", "k"]), Resp::bulk("v"));
    // A publisher subscribed itself gets its message before the count.
    assert_eq!(
        sub.cmd(&["SPUBLISH", "r", "me"]),
        Resp::Push(vec![
            Resp::bulk("smessage"),
            Resp::bulk("r"),
            Resp::bulk("me")
        ])
    );
    assert_eq!(sub.read(), Resp::Int(1));
    assert_eq!(
        sub.cmd(&["PUBSUB", "SHARDNUMSUB", "r"]),
        arr(vec![Resp::bulk("r"), Resp::Int(1)])
    );
    assert_eq!(
        sub.cmd(&["SUNSUBSCRIBE"]),
        Resp::Push(vec![
            Resp::bulk("sunsubscribe"),
            Resp::bulk("r"),
            Resp::Int(0)
        ])
    );
    assert_eq!(
        sub.cmd(&["SUNSUBSCRIBE"]),
        Resp::Push(vec![Resp::bulk("sunsubscribe"), Resp::Nil, Resp::Int(0)])
    );
}

#[test]
fn reset_and_disconnect_forget_shard_subscriptions() {
    let s = Server::start(&[]);
    let mut a = s.client();
    let mut b = s.client();
    let mut c = s.client();
    a.cmd(&["SSUBSCRIBE", "x", "y"]);
    a.read();
    b.cmd(&["SSUBSCRIBE", "x"]);
    let list = c.cmd(&["CLIENT", "LIST"]).as_str();
    // Flag P: a client with only shard channels is a pub/sub client.
    assert!(
        list.contains(" flags=P db=0 sub=0 psub=0 ssub=2 "),
        "{list}"
    );
    assert!(
        list.contains(" flags=P db=0 sub=0 psub=0 ssub=1 "),
        "{list}"
    );
    assert!(
        list.contains(" flags=N db=0 sub=0 psub=0 ssub=0 "),
        "{list}"
    );

    assert_eq!(a.cmd(&["RESET"]), Resp::Simple("RESET".into()));
    assert_eq!(a.cmd(&["GET", "k"]), Resp::Nil);
    drop(b);
    // The server notices the closed socket when it next polls; PUBSUB from c runs after that
    // read event in the same or a later pass, so poll until the count drops (bounded).
    let mut n = -1;
    for _ in 0..200 {
        let r = c.cmd(&["PUBSUB", "SHARDNUMSUB", "x", "y"]);
        n = match &r {
            Resp::Array(v) => v[1].as_int() + v[3].as_int(),
            _ => panic!("{r:?}"),
        };
        if n == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(n, 0);
    assert_eq!(c.cmd(&["PUBSUB", "SHARDCHANNELS"]), arr(vec![]));
    assert_eq!(c.cmd(&["SPUBLISH", "x", "m"]), Resp::Int(0));
}

#[test]
fn errors_multi_acl_and_client_reply() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_err(
        &c.cmd(&["SSUBSCRIBE"]),
        "ERR wrong number of arguments for 'ssubscribe' command",
    );
    assert_err(
        &c.cmd(&["SPUBLISH", "x"]),
        "ERR wrong number of arguments for 'spublish' command",
    );
    assert_err(
        &c.cmd(&["PUBSUB", "SHARDCHANNELS", "a", "b"]),
        "ERR unknown subcommand or wrong number of arguments for 'SHARDCHANNELS'",
    );
    // Inside MULTI, SSUBSCRIBE fails at EXEC (one reply per command is expected there).
    assert_eq!(c.cmd(&["MULTI"]), Resp::ok());
    assert_eq!(c.cmd(&["SSUBSCRIBE", "m"]), Resp::Simple("QUEUED".into()));
    assert_eq!(
        c.cmd(&["EXEC"]),
        arr(vec![Resp::Error(
            "ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client".into()
        )])
    );
    assert_eq!(
        c.cmd(&["PUBSUB", "SHARDNUMSUB", "m"]),
        arr(vec![Resp::bulk("m"), Resp::Int(0)])
    );
    // Scripts may not subscribe.
    assert_err(
        &c.cmd(&["EVAL", "return redis.call('ssubscribe','q')", "0"]),
        "ERR This Redis command is not allowed from script",
    );

    // Channel permissions (&pattern) apply to shard channels.
    c.cmd(&[
        "ACL",
        "SETUSER",
        "u",
        "on",
        "nopass",
        "resetchannels",
        "&ok*",
        "+@all",
    ]);
    let mut u = s.client();
    assert_eq!(u.cmd(&["AUTH", "u", "x"]), Resp::ok());
    assert_eq!(u.cmd(&["SPUBLISH", "ok1", "m"]), Resp::Int(0));
    assert_err(
        &u.cmd(&["SPUBLISH", "no", "m"]),
        "NOPERM this user has no permissions to access one of the channels used as arguments",
    );
    assert_err(
        &u.cmd(&["SSUBSCRIBE", "ok1", "no"]),
        "NOPERM this user has no permissions to access one of the channels used as arguments",
    );
    assert_eq!(
        u.cmd(&["SSUBSCRIBE", "ok1"]),
        sub_reply("ssubscribe", "ok1", 1)
    );

    // The shard commands are in @pubsub, so +@pubsub grants them and -cmd takes one away.
    let cat = c.cmd(&["ACL", "CAT", "pubsub"]);
    for name in ["ssubscribe", "sunsubscribe", "spublish"] {
        assert!(cat.sorted().contains(&Resp::bulk(name)), "{cat:?}");
    }
    c.cmd(&[
        "ACL",
        "SETUSER",
        "p",
        "on",
        "nopass",
        "allchannels",
        "+@pubsub",
        "-spublish",
    ]);
    let mut p = s.client();
    assert_eq!(p.cmd(&["AUTH", "p", "x"]), Resp::ok());
    assert_err(
        &p.cmd(&["SPUBLISH", "a", "m"]),
        "NOPERM this user has no permissions to run the 'spublish' command",
    );
    assert_eq!(p.cmd(&["SSUBSCRIBE", "a"]), sub_reply("ssubscribe", "a", 1));

    // CLIENT REPLY OFF does not silence the (un)subscribe confirmations.
    let mut r = s.client();
    r.send(&["CLIENT", "REPLY", "OFF"]);
    assert_eq!(r.cmd(&["SSUBSCRIBE", "z"]), sub_reply("ssubscribe", "z", 1));
    assert_eq!(
        r.cmd(&["SUNSUBSCRIBE", "z"]),
        sub_reply("sunsubscribe", "z", 0)
    );
    assert_eq!(r.cmd(&["CLIENT", "REPLY", "ON"]), Resp::ok());
}

#[test]
fn acl_setuser_closes_clients_subscribed_to_refused_channels() {
    let s = Server::start(&[]);
    let mut admin = s.client();
    admin.cmd(&[
        "ACL",
        "SETUSER",
        "w",
        "on",
        "nopass",
        "resetchannels",
        "&ok*",
        "+@all",
    ]);
    let mut shard = s.client();
    let mut plain = s.client();
    let mut pattern = s.client();
    for c in [&mut shard, &mut plain, &mut pattern] {
        assert_eq!(c.cmd(&["AUTH", "w", "x"]), Resp::ok());
    }
    assert_eq!(
        shard.cmd(&["SSUBSCRIBE", "ok1"]),
        sub_reply("ssubscribe", "ok1", 1)
    );
    assert_eq!(
        plain.cmd(&["SUBSCRIBE", "ok2"]),
        sub_reply("subscribe", "ok2", 1)
    );
    assert_eq!(
        pattern.cmd(&["PSUBSCRIBE", "ok*"]),
        sub_reply("psubscribe", "ok*", 1)
    );
    // Still allowed: nobody is closed.
    assert_eq!(admin.cmd(&["ACL", "SETUSER", "w", "&other"]), Resp::ok());
    assert_eq!(shard.cmd(&["PING"]), Resp::bulks(&["pong", ""]));
    // `ok1` and `ok*` are refused now, `ok2` is still allowed.
    assert_eq!(
        admin.cmd(&["ACL", "SETUSER", "w", "resetchannels", "&ok2", "&other"]),
        Resp::ok()
    );
    assert_eq!(shard.read_to_close(), b"");
    assert_eq!(pattern.read_to_close(), b"");
    assert_eq!(plain.cmd(&["PING"]), Resp::bulks(&["pong", ""]));
    assert_eq!(
        admin.cmd(&["PUBSUB", "SHARDNUMSUB", "ok1"]),
        arr(vec![Resp::bulk("ok1"), Resp::Int(0)])
    );
    assert_eq!(admin.cmd(&["PUBSUB", "NUMPAT"]), Resp::Int(0));

    // A RESP3 client that subscribes and then logs in as `w` answers to `w`'s rules.
    let mut r3 = s.client();
    r3.cmd(&["HELLO", "3"]);
    r3.cmd(&["SSUBSCRIBE", "zz"]);
    assert_eq!(r3.cmd(&["AUTH", "w", "x"]), Resp::ok());
    assert_eq!(admin.cmd(&["ACL", "SETUSER", "w", "&more"]), Resp::ok());
    assert_eq!(r3.read_to_close(), b"");
}

// ---------------------------------------------------------------------------------------------
// Differential: byte-for-byte against redis-server
// ---------------------------------------------------------------------------------------------

/// A raw connection: writes commands, reads bytes up to a sync token.
struct Raw {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    fn connect(port: u16) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Raw { s, buf: Vec::new() }
    }

    /// Sends `args`, then `PING token` unless `end` is given; returns every byte received up
    /// to the end of the PING's reply (the messages pushed before, the command's replies, the
    /// PING reply), or up to `end` (MULTI and queued commands, where a PING would be queued).
    fn call(&mut self, args: &[&str], token: &str, end: Option<&[u8]>) -> Vec<u8> {
        let ping: &[&str] = &["PING", token];
        let cmds: &[&[&str]] = if end.is_some() {
            &[args]
        } else {
            &[args, ping]
        };
        let mut out = Vec::new();
        for cmd in cmds {
            out.extend_from_slice(format!("*{}\r\n", cmd.len()).as_bytes());
            for a in cmd.iter() {
                out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
            }
        }
        self.s.write_all(&out).expect("write");
        let end = match end {
            Some(e) => e.to_vec(),
            None => format!("${}\r\n{token}\r\n", token.len()).into_bytes(),
        };
        let mut chunk = [0u8; 4096];
        while !self.buf.ends_with(&end) {
            let n = self.s.read(&mut chunk).unwrap_or_else(|e| {
                panic!(
                    "no sync reply after {args:?}: {e}; got {:?}",
                    String::from_utf8_lossy(&self.buf)
                )
            });
            assert!(n > 0, "connection closed before the sync reply");
            self.buf.extend_from_slice(&chunk[..n]);
        }
        std::mem::take(&mut self.buf)
    }
}

/// Runs `steps` (client index, command) on both servers and compares each client's bytes.
fn differential(name: &str, clients: usize, steps: &[(usize, &[&str])]) {
    let Some(redis) = RedisServer::start(&[]) else {
        return;
    };
    let kv = Server::start(SMALL_CACHE);
    let mut rc: Vec<Raw> = (0..clients).map(|_| Raw::connect(redis.port)).collect();
    let mut kc: Vec<Raw> = (0..clients).map(|_| Raw::connect(kv.port)).collect();
    let mut in_multi = vec![false; clients];
    for (i, (who, args)) in steps.iter().enumerate() {
        let token = format!("sync{i}");
        let verb = args[0].to_ascii_uppercase();
        let end: Option<&[u8]> = match verb.as_str() {
            "MULTI" => Some(b"+OK\r\n"),
            "EXEC" | "DISCARD" => None,
            _ if in_multi[*who] => Some(b"+QUEUED\r\n"),
            _ => None,
        };
        in_multi[*who] = verb == "MULTI" || (in_multi[*who] && end.is_some());
        let want = rc[*who].call(args, &token, end);
        let got = kc[*who].call(args, &token, end);
        // HELLO's reply holds the client id, which differs between the servers.
        if verb == "HELLO" {
            continue;
        }
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "{name}: step {i}, client {who}, {args:?}"
        );
    }
}

#[test]
fn differential_resp2() {
    const LONG_NAME: &str = "subcommand-names-longer-than-128-bytes-are-cut-in-the-error-0123456789-0123456789-0123456789-0123456789-0123456789-0123456789-0123456789";
    let steps: &[(usize, &[&str])] = &[
        (0, &["SSUBSCRIBE"]),
        (0, &["SUNSUBSCRIBE"]),
        (0, &["SPUBLISH", "x"]),
        (0, &["PUBSUB", "SHARDCHANNELS", "a", "b"]),
        (0, &["PUBSUB", "SHARDNUMSUB"]),
        (0, &["SSUBSCRIBE", "news", "news"]),
        (1, &["SSUBSCRIBE", "news", "n2"]),
        (1, &["SUBSCRIBE", "news"]),
        (1, &["PSUBSCRIBE", "n*"]),
        (2, &["SET", "k", "v"]),
        (2, &["SPUBLISH", "news", "hello"]),
        (2, &["PUBLISH", "news", "plain"]),
        (2, &["SPUBLISH", "nobody", "x"]),
        (0, &["GET", "k"]),
        (0, &["PING", "hi"]),
        (1, &["SET", "k", "w"]),
        // (Without a pattern the order is unspecified: Redis lists its hash table.)
        (2, &["PUBSUB", "SHARDCHANNELS", "ne*"]),
        (2, &["PUBSUB", "SHARDCHANNELS", "n?ws"]),
        (2, &["PUBSUB", "SHARDCHANNELS", "zz*"]),
        (2, &["PUBSUB", "SHARDNUMSUB", "news", "nobody"]),
        (2, &["PUBSUB", "CHANNELS"]),
        (2, &["PUBSUB", "NUMSUB", "news"]),
        (2, &["PUBSUB", "NUMPAT"]),
        (1, &["UNSUBSCRIBE"]),
        (1, &["PUNSUBSCRIBE"]),
        (1, &["GET", "k"]),
        (1, &["SUNSUBSCRIBE", "news", "other"]),
        (1, &["GET", "k"]),
        (1, &["SUNSUBSCRIBE"]),
        (2, &["SPUBLISH", "news", "again"]),
        (0, &["SUNSUBSCRIBE"]),
        (0, &["PING"]),
        (0, &["GET", "k"]),
        (2, &["MULTI"]),
        (2, &["SSUBSCRIBE", "m"]),
        (2, &["SPUBLISH", "m", "x"]),
        (2, &["EXEC"]),
        (2, &["PUBSUB", "HELP"]),
        (2, &["PUBSUB", "SHARDNUMSUB", "HELP"]),
        (2, &["PUBSUB", "NOPE"]),
        (2, &["PUBSUB", LONG_NAME]),
        (2, &["PUBSUB", "HELP", "x"]),
        (2, &["PUBSUB", "NUMPAT", "X"]),
        (2, &["PUBSUB", "CHANNELS", "a", "b"]),
        (2, &["PUBSUB"]),
        (2, &["SSUBSCRIBE", "r"]),
        (
            0,
            &["EVAL", "return redis.call('spublish', 'r', 'lua')", "0"],
        ),
        (2, &["PING"]),
        (2, &["SUNSUBSCRIBE", "r"]),
        (2, &["MULTI"]),
        (2, &["SUNSUBSCRIBE", "r"]),
        (2, &["SUNSUBSCRIBE"]),
        (2, &["EXEC"]),
        (2, &["SSUBSCRIBE", "r"]),
        (0, &["SPUBLISH", "r", "1"]),
        (2, &["RESET"]),
        (0, &["SPUBLISH", "r", "2"]),
        (0, &["PUBSUB", "SHARDNUMSUB", "r"]),
        (2, &["GET", "k"]),
    ];
    differential("resp2", 3, steps);
}

#[test]
fn differential_resp3_and_acl() {
    let steps: &[(usize, &[&str])] = &[
        (0, &["HELLO", "3"]),
        (0, &["SSUBSCRIBE"]),
        (0, &["SUNSUBSCRIBE"]),
        (0, &["SSUBSCRIBE", "a"]),
        (1, &["SSUBSCRIBE", "a"]),
        (1, &["SSUBSCRIBE", "b"]),
        (0, &["SET", "k", "1"]),
        (0, &["SPUBLISH", "a", "self"]),
        (1, &["PING"]),
        (0, &["INCR", "k"]),
        (0, &["PUBSUB", "SHARDNUMSUB", "a", "b", "c"]),
        (0, &["PUBSUB", "NUMSUB", "a"]),
        (0, &["PUBSUB", "SHARDNUMSUB"]),
        (0, &["PUBSUB", "SHARDCHANNELS", "a"]),
        (1, &["SUNSUBSCRIBE", "b"]),
        (2, &["SPUBLISH", "b", "gone"]),
        (2, &["SPUBLISH", "a", "both"]),
        (1, &["PING", "p"]),
        (0, &["SUNSUBSCRIBE"]),
        (0, &["SUNSUBSCRIBE"]),
        (0, &["GET", "k"]),
        (0, &["SSUBSCRIBE", "t"]),
        (0, &["MULTI"]),
        (0, &["SSUBSCRIBE", "t2"]),
        (0, &["SPUBLISH", "t", "in-exec"]),
        (0, &["SUNSUBSCRIBE"]),
        (0, &["EXEC"]),
        (0, &["PUBSUB", "HELP"]),
        // Channel permissions apply to shard channels.
        (
            2,
            &[
                "ACL",
                "SETUSER",
                "u",
                "on",
                "nopass",
                "resetchannels",
                "&ok*",
                "+@all",
            ],
        ),
        (2, &["AUTH", "u", "pw"]),
        (2, &["SPUBLISH", "no", "m"]),
        (2, &["SSUBSCRIBE", "ok1", "no"]),
        (2, &["SSUBSCRIBE", "ok1"]),
        (1, &["SPUBLISH", "ok1", "allowed"]),
        (2, &["PING"]),
        (2, &["SPUBLISH", "ok2", "m"]),
        (2, &["SUNSUBSCRIBE", "no"]),
        (2, &["SUNSUBSCRIBE"]),
        (2, &["PUBSUB", "SHARDNUMSUB", "ok1"]),
    ];
    differential("resp3", 3, steps);
}
