//! ACL, requirepass, protected mode and rename-command, black-box. Where Redis defines the
//! replies, the same command sequences also go to a real redis-server 7.0 (when one is on
//! PATH; otherwise that half is skipped with a printed reason) and the replies are compared.

use kvtier_tests::{free_port, Client, RedisServer as Redis, Resp, Server};
use std::net::{IpAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn err(r: &Resp) -> String {
    match r {
        Resp::Error(e) => e.clone(),
        other => panic!("expected an error, got {other:?}"),
    }
}

/// A reply with the words of every bulk string sorted: command-rule lists and ACL CAT output
/// are the same sets in Redis and kvtier, not always in the same order.
fn normalized(r: &Resp) -> Resp {
    match r {
        Resp::Bulk(b) => {
            let mut w: Vec<&str> = std::str::from_utf8(b).unwrap_or("").split(' ').collect();
            w.sort_unstable();
            Resp::Bulk(w.join(" ").into_bytes())
        }
        Resp::Array(a) => Resp::Array(a.iter().map(normalized).collect()),
        Resp::Set(a) => Resp::Array(a.iter().map(normalized).collect()),
        Resp::Map(m) => Resp::Array(
            m.iter()
                .flat_map(|(k, v)| [normalized(k), normalized(v)])
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Runs the same commands on kvtier and (if present) redis-server: replies must be equal
/// (after `normalized`).
fn same_replies(kv: &mut Client, redis: Option<&mut Client>, cmds: &[&[&str]]) {
    let mut redis = redis;
    for c in cmds {
        let got = kv.cmd(c);
        if let Some(r) = redis.as_deref_mut() {
            let want = r.cmd(c);
            assert_eq!(normalized(&got), normalized(&want), "command {c:?}");
        }
    }
}

#[test]
fn setuser_getuser_list_like_redis() {
    let s = Server::start(&[]);
    let mut kv = s.client();
    let redis = Redis::start(&[]);
    let mut rc = redis.as_ref().map(Redis::client);
    same_replies(
        &mut kv,
        rc.as_mut(),
        &[
            &["ACL", "LIST"],
            &[
                "ACL",
                "SETUSER",
                "alice",
                "on",
                ">p1",
                "~foo*",
                "%R~r*",
                "%W~w*",
                "&ch*",
                "+@all",
                "-@dangerous",
                "+get",
                "-flushall",
            ],
            &["ACL", "GETUSER", "alice"],
            &[
                "ACL",
                "SETUSER",
                "bob",
                "nopass",
                "allkeys",
                "allchannels",
                "allcommands",
            ],
            &["ACL", "SETUSER", "carol"],
            &["ACL", "LIST"],
            &["ACL", "GETUSER", "carol"],
            &["ACL", "GETUSER", "nobody"],
            &["ACL", "USERS"],
            &["ACL", "WHOAMI"],
            &["ACL", "CAT"],
            &["ACL", "CAT", "nosuch"],
            &["ACL", "SETUSER", "x", "badrule"],
            &["ACL", "SETUSER", "x", "+nosuchcmd"],
            &["ACL", "SETUSER", "x", "+@nosuchcat"],
            &["ACL", "SETUSER", "x", "#abc"],
            &["ACL", "SETUSER", "x", "<nopw"],
            &["ACL", "SETUSER", "x", "%X~a"],
            &["ACL", "SETUSER", "x", "+config|get|x"],
            &["ACL", "SETUSER", "x", "allkeys", "~a"],
            &["ACL", "SETUSER", "x", "allchannels", "&a"],
            &["ACL", "SETUSER", "a b"],
            &["ACL", "GETUSER", "x"],
            &[
                "ACL", "SETUSER", "t", "+get", "-get", "+set", "~a", "~b", "~a", "%R~c", "%W~c",
            ],
            &[
                "ACL",
                "SETUSER",
                "t2",
                "on",
                "reset",
                ">x",
                "nopass",
                "&a",
                "allchannels",
            ],
            &[
                "ACL",
                "SETUSER",
                "t3",
                "+@read",
                "-@read",
                "+config|get",
                "-config",
            ],
            &["ACL", "LIST"],
            &["ACL", "DELUSER", "default"],
            &["ACL", "DELUSER", "alice", "nobody"],
            &["ACL", "USERS"],
            &["ACL", "GENPASS", "0"],
            &["ACL", "GENPASS", "4097"],
            &["ACL", "GENPASS", "abc"],
            &["ACL", "LOG", "abc"],
            &["ACL", "SAVE"],
            &["ACL", "LOAD"],
            &["ACL"],
            &["ACL", "FOO"],
            &["ACL", "SETUSER"],
            &["ACL", "CAT", "a", "b"],
            &["ACL", "HELP"],
            &["ACL", "DRYRUN", "nobody", "get", "x"],
            &["ACL", "DRYRUN", "bob", "get", "x"],
        ],
    );
    // GENPASS: 256 bits by default, 4 bits per hex digit rounded up.
    assert_eq!(kv.cmd(&["ACL", "GENPASS"]).as_str().len(), 64);
    assert_eq!(kv.cmd(&["ACL", "GENPASS", "5"]).as_str().len(), 2);
    assert_ne!(kv.cmd(&["ACL", "GENPASS"]), kv.cmd(&["ACL", "GENPASS"]));
    // ACL CAT <category>: every command we list is in Redis's list.
    for cat in ["string", "list", "hash", "set", "sortedset", "connection"] {
        let Some(r) = rc.as_mut() else { break };
        let names = |x: Resp| -> Vec<String> {
            let mut v: Vec<String> = match x {
                Resp::Array(a) => a.iter().map(Resp::as_str).collect(),
                o => panic!("{o:?}"),
            };
            v.sort();
            v
        };
        let ours = names(kv.cmd(&["ACL", "CAT", cat]));
        let theirs = names(r.cmd(&["ACL", "CAT", cat]));
        // A container (CLIENT) is listed by Redis as its subcommands (client|id, …).
        let missing: Vec<&String> = ours
            .iter()
            .filter(|n| {
                !theirs
                    .iter()
                    .any(|t| t == *n || t.starts_with(&format!("{n}|")))
            })
            .collect();
        assert!(
            missing.is_empty(),
            "@{cat}: not in Redis's list: {missing:?}"
        );
    }
}

#[test]
fn permissions_and_noperm_errors_like_redis() {
    let s = Server::start(&[]);
    let redis = Redis::start(&[]);
    let setup: &[&str] = &[
        "ACL",
        "SETUSER",
        "u",
        "on",
        ">pw",
        "~k*",
        "&c*",
        "+get",
        "+set",
        "+multi",
        "+exec",
        "+subscribe",
        "+publish",
        "+config|get",
        "+acl|whoami",
        "+ping",
    ];
    s.client().cmd(setup);
    if let Some(r) = &redis {
        r.client().cmd(setup);
    }
    let script: &[&[&str]] = &[
        &["AUTH", "u", "wrong"],
        &["AUTH", "nouser", "pw"],
        &["AUTH", "u", "pw"],
        &["ACL", "WHOAMI"],
        &["GET", "k1"],
        &["GET", "x"],
        &["SET", "x", "1"],
        &["LPUSH", "k1", "a"],
        &["CONFIG", "GET", "maxmemory"],
        &["CONFIG", "SET", "maxmemory", "1"],
        &["FLUSHALL"],
        &["PUBLISH", "c1", "m"],
        &["PUBLISH", "x", "m"],
        &["MULTI"],
        &["GET", "x"],
        &["GET", "k1"],
        &["EXEC"],
        &["MULTI"],
        &["SET", "k1", "v"],
        &["EXEC"],
        &["GET", "k1"],
        &["SUBSCRIBE", "c1", "x"],
        &["AUTH", "default", "anything"],
        &["ACL", "WHOAMI"],
        &["FLUSHALL"],
    ];
    let mut kv = s.client();
    let mut rc = redis.as_ref().map(Redis::client);
    same_replies(&mut kv, rc.as_mut(), script);
    assert_eq!(
        err(&s.client().cmd(&["HELLO", "3", "AUTH", "u", "nope"])),
        "WRONGPASS invalid username-password pair or user is disabled."
    );
    // HELLO AUTH logs in as the user.
    let mut h = s.client();
    assert!(matches!(
        h.cmd(&["HELLO", "2", "AUTH", "u", "pw"]),
        Resp::Array(_)
    ));
    assert_eq!(h.cmd(&["ACL", "WHOAMI"]), Resp::bulk("u"));
    assert_eq!(
        err(&h.cmd(&["LPUSH", "k", "v"])),
        "NOPERM this user has no permissions to run the 'lpush' command"
    );
    // The log has the refusals, newest first, with Redis's fields.
    let log = s.client().cmd(&["ACL", "LOG", "1"]);
    let Resp::Array(entries) = log else {
        panic!("{log:?}")
    };
    let Resp::Array(fields) = &entries[0] else {
        panic!()
    };
    let names: Vec<String> = fields.iter().step_by(2).map(Resp::as_str).collect();
    assert_eq!(
        names,
        [
            "count",
            "reason",
            "context",
            "object",
            "username",
            "age-seconds",
            "client-info"
        ]
    );
    assert_eq!(fields[3], Resp::bulk("command"));
    assert_eq!(fields[7], Resp::bulk("lpush"));
    // Failed logins are logged under the command as typed.
    let mut failing = s.client();
    failing.cmd(&["auth", "u", "wrong"]);
    let Resp::Array(entries) = s.client().cmd(&["ACL", "LOG", "1"]) else {
        panic!()
    };
    let Resp::Array(fields) = &entries[0] else {
        panic!()
    };
    assert_eq!(
        (&fields[3], &fields[7], &fields[9]),
        (&Resp::bulk("auth"), &Resp::bulk("auth"), &Resp::bulk("u"))
    );
    assert_eq!(s.client().cmd(&["ACL", "LOG", "RESET"]), Resp::ok());
    assert_eq!(s.client().cmd(&["ACL", "LOG"]), Resp::Array(vec![]));
    // A disabled user cannot log in; a deleted user's connections are closed.
    let mut c = s.client();
    c.cmd(&["AUTH", "u", "pw"]);
    s.client().cmd(&["ACL", "SETUSER", "u", "off"]);
    assert_eq!(
        err(&s.client().cmd(&["AUTH", "u", "pw"])),
        "WRONGPASS invalid username-password pair or user is disabled."
    );
    // CLIENT LIST shows the user; CLIENT KILL USER closes its connections.
    s.client().cmd(&["ACL", "SETUSER", "u", "on"]);
    let mut k = s.client();
    k.cmd(&["AUTH", "u", "pw"]);
    let list = s.client().cmd(&["CLIENT", "LIST"]).as_str();
    assert!(list.lines().any(|l| l.ends_with(" user=u")), "{list}");
    // (h, c and k are logged in as u.)
    assert_eq!(
        s.client().cmd(&["CLIENT", "KILL", "USER", "u"]),
        Resp::Int(3)
    );
    assert!(err(&s.client().cmd(&["CLIENT", "KILL", "USER", "nobody"])).contains("No such user"));
    // Kills happen on the server's next periodic pass (10 per second).
    std::thread::sleep(std::time::Duration::from_millis(500));
    k.send(&["PING"]);
    assert!(k.try_read().is_err(), "killed by CLIENT KILL USER");
    let mut c = s.client();
    c.cmd(&["AUTH", "u", "pw"]);
    s.client().cmd(&["ACL", "DELUSER", "u"]);
    c.send(&["GET", "k1"]);
    assert!(
        c.try_read().is_err(),
        "a deleted user's connection is closed"
    );
}

/// Rules changed between MULTI and EXEC: the queued commands are checked again at EXEC, with
/// Redis's errors inside the EXEC reply.
#[test]
fn exec_rechecks_changed_rules_like_redis() {
    let s = Server::start(&[]);
    let redis = Redis::start(&[]);
    let mut servers: Vec<(Client, Client)> = vec![(s.client(), s.client())];
    if let Some(r) = &redis {
        servers.push((r.client(), r.client()));
    }
    let mut replies = Vec::new();
    for (admin, c) in &mut servers {
        admin.cmd(&["SET", "k1", "v"]);
        admin.cmd(&[
            "ACL", "SETUSER", "ex", "on", "nopass", "~k*", "&c*", "+multi", "+exec", "+get",
            "+publish",
        ]);
        c.cmd(&["AUTH", "ex", "x"]);
        let mut got = Vec::new();
        for cmd in [
            &["MULTI"][..],
            &["GET", "k1"],
            &["GET", "k2"],
            &["PUBLISH", "c1", "m"],
        ] {
            got.push(c.cmd(cmd));
        }
        admin.cmd(&["ACL", "SETUSER", "ex", "resetkeys", "~k1", "resetchannels"]);
        got.push(c.cmd(&["EXEC"]));
        c.cmd(&["MULTI"]);
        c.cmd(&["GET", "k1"]);
        admin.cmd(&["ACL", "SETUSER", "ex", "-get"]);
        got.push(c.cmd(&["EXEC"]));
        replies.push(got);
    }
    let Resp::Array(exec) = &replies[0][4] else {
        panic!("{:?}", replies[0][4])
    };
    assert_eq!(exec[0], Resp::bulk("v"));
    assert_eq!(err(&exec[1]), "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: no permission to touch the specified keys");
    if replies.len() == 2 {
        assert_eq!(replies[0], replies[1], "kvtier vs redis-server");
    }
}

/// Commands run by a script are checked against the caller's user (Redis's texts).
#[test]
fn scripts_run_commands_as_the_caller() {
    let s = Server::start(&[]);
    let redis = Redis::start(&[]);
    let setup: &[&str] = &[
        "ACL", "SETUSER", "sc", "on", "nopass", "~k*", "&c*", "+eval", "+get",
    ];
    let script: &[&[&str]] = &[
        &["AUTH", "sc", "x"],
        &["EVAL", "return redis.call('set','k1','v')", "0"],
        &["EVAL", "return redis.call('get','x')", "0"],
        &["EVAL", "return redis.pcall('get','x')", "0"],
        &["EVAL", "return redis.call('get','k1')", "0"],
    ];
    s.client().cmd(setup);
    let mut kv = s.client();
    let ours: Vec<Resp> = script.iter().map(|c| kv.cmd(c)).collect();
    assert!(err(&ours[1])
        .starts_with("ERR The user executing the script can't run this command or subcommand"));
    assert!(err(&ours[2]).starts_with(
        "ERR The user executing the script can't access at least one of the keys mentioned in the command arguments"
    ));
    if let Some(r) = &redis {
        r.client().cmd(setup);
        let mut rc = r.client();
        let theirs: Vec<Resp> = script.iter().map(|c| rc.cmd(c)).collect();
        // Same replies up to the script's sha/line suffix of uncaught errors.
        let head = |x: &Resp| match x {
            Resp::Error(e) => Resp::Error(e.split(" script: ").next().unwrap_or("").to_string()),
            o => o.clone(),
        };
        let ours: Vec<Resp> = ours.iter().map(head).collect();
        let theirs: Vec<Resp> = theirs.iter().map(head).collect();
        assert_eq!(ours, theirs);
    }
}

#[test]
fn command_rules_key_and_channel_patterns() {
    let s = Server::start(&["--maxmemory", "1mb"]);
    let mut admin = s.client();
    admin.cmd(&["SET", "r1", "v"]);
    admin.cmd(&["SET", "w1", "v"]);
    admin.cmd(&[
        "ACL",
        "SETUSER",
        "u",
        "on",
        "nopass",
        "%R~r*",
        "%W~w*",
        "~both",
        "&news.*",
        "+@all",
        "-@dangerous",
        "-@admin",
    ]);
    let mut c = s.client();
    c.cmd(&["AUTH", "u", "x"]);
    assert_eq!(c.cmd(&["GET", "r1"]), Resp::bulk("v"));
    assert!(err(&c.cmd(&["SET", "r1", "x"])).starts_with("NOPERM"));
    assert_eq!(c.cmd(&["SET", "w1", "x"]), Resp::ok());
    assert!(err(&c.cmd(&["GET", "w1"])).starts_with("NOPERM"));
    // INCR reads and writes: needs both.
    assert!(err(&c.cmd(&["INCR", "w1"])).contains("keys"));
    assert_eq!(c.cmd(&["INCR", "both"]), Resp::Int(1));
    assert!(err(&c.cmd(&["FLUSHALL"])).contains("'flushall'"));
    assert!(err(&c.cmd(&["KEYS", "*"])).contains("'keys'"));
    assert!(err(&c.cmd(&["DEBUG", "SLEEP", "0"])).contains("'debug'"));
    // Channels: a glob for SUBSCRIBE/PUBLISH, literal for PSUBSCRIBE patterns.
    assert_eq!(c.cmd(&["PUBLISH", "news.x", "m"]), Resp::Int(0));
    assert!(err(&c.cmd(&["PUBLISH", "other", "m"])).contains("channels"));
    assert!(err(&c.cmd(&["PSUBSCRIBE", "news.x*"])).contains("channels"));
    // Rules changed while a client is logged in apply to its next command.
    admin.cmd(&["ACL", "SETUSER", "u", "+flushall"]);
    assert_eq!(c.cmd(&["FLUSHALL"]), Resp::ok());
    admin.cmd(&["ACL", "SETUSER", "u", "nocommands", "+get"]);
    assert!(err(&c.cmd(&["SET", "w1", "x"])).contains("'set'"));
    admin.cmd(&["ACL", "SETUSER", "u", "allcommands", "resetkeys"]);
    assert!(err(&c.cmd(&["GET", "r1"])).contains("keys"));
    // DRYRUN answers without running.
    assert_eq!(
        admin.cmd(&["ACL", "DRYRUN", "u", "get", "r1"]),
        Resp::bulk("This user has no permissions to access the 'r1' key")
    );
    // # (hash) and < (remove) password rules.
    let hash = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8";
    admin.cmd(&[
        "ACL",
        "SETUSER",
        "h",
        "on",
        &format!("#{hash}"),
        "+@all",
        "allkeys",
    ]);
    let mut h = s.client();
    assert_eq!(h.cmd(&["AUTH", "h", "password"]), Resp::ok());
    admin.cmd(&["ACL", "SETUSER", "h", "<password", ">new"]);
    assert!(err(&s.client().cmd(&["AUTH", "h", "password"])).starts_with("WRONGPASS"));
    assert_eq!(s.client().cmd(&["AUTH", "h", "new"]), Resp::ok());
}

#[test]
fn requirepass_is_the_default_users_password() {
    let s = Server::start(&["--requirepass", "secret"]);
    let mut c = s.client();
    assert_eq!(
        err(&c.cmd(&["GET", "k"])),
        "NOAUTH Authentication required."
    );
    // Every command but AUTH/HELLO/QUIT/RESET needs it.
    for cmd in [
        &["PING"][..],
        &["ACL", "WHOAMI"],
        &["CONFIG", "GET", "x"],
        &["MULTI"],
    ] {
        assert_eq!(
            err(&c.cmd(cmd)),
            "NOAUTH Authentication required.",
            "{cmd:?}"
        );
    }
    assert_eq!(c.cmd(&["RESET"]), Resp::Simple("RESET".into()));
    assert_eq!(
        err(&c.cmd(&["AUTH", "default", "bad"])),
        "WRONGPASS invalid username-password pair or user is disabled."
    );
    assert_eq!(c.cmd(&["AUTH", "secret"]), Resp::ok());
    let line = c.cmd(&["ACL", "LIST"]);
    let Resp::Array(lines) = line else { panic!() };
    assert_eq!(
        lines[0].as_str(),
        "user default on #2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b ~* &* +@all"
    );
    // CONFIG SET requirepass changes it; "" makes the default user nopass again.
    c.cmd(&["CONFIG", "SET", "requirepass", "other"]);
    assert!(err(&s.client().cmd(&["AUTH", "secret"])).starts_with("WRONGPASS"));
    assert_eq!(s.client().cmd(&["AUTH", "other"]), Resp::ok());
    c.cmd(&["CONFIG", "SET", "requirepass", ""]);
    assert_eq!(s.client().cmd(&["PING"]), Resp::Simple("PONG".into()));
    // RESET logs out to the default user.
    c.cmd(&["ACL", "SETUSER", "z", "on", "nopass", "+@all", "allkeys"]);
    c.cmd(&["AUTH", "z", "x"]);
    assert_eq!(c.cmd(&["ACL", "WHOAMI"]), Resp::bulk("z"));
    c.cmd(&["RESET"]);
    assert_eq!(c.cmd(&["ACL", "WHOAMI"]), Resp::bulk("default"));
}

#[test]
fn aclfile_save_load_and_config_users() {
    let tmp = tempfile::tempdir().unwrap();
    let file: PathBuf = tmp.path().join("users.acl");
    std::fs::write(
        &file,
        "user default on nopass ~* &* +@all\nuser bob on >pw ~b* +get\n",
    )
    .unwrap();
    let s = Server::start(&["--aclfile", file.to_str().unwrap()]);
    let mut c = s.client();
    assert_eq!(c.cmd(&["ACL", "USERS"]), Resp::bulks(&["bob", "default"]));
    c.cmd(&["ACL", "SETUSER", "carol", "on", ">x", "+@read", "~*"]);
    assert_eq!(c.cmd(&["ACL", "SAVE"]), Resp::ok());
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(saved.contains("user carol on #"), "{saved}");
    c.cmd(&["ACL", "DELUSER", "carol"]);
    assert_eq!(c.cmd(&["ACL", "LOAD"]), Resp::ok());
    assert_eq!(
        c.cmd(&["ACL", "USERS"]),
        Resp::bulks(&["bob", "carol", "default"])
    );
    // A broken file changes nothing, with Redis's message.
    std::fs::write(&file, "user x on +nosuch\n").unwrap();
    let e = err(&c.cmd(&["ACL", "LOAD"]));
    assert_eq!(
        e,
        format!("ERR {}:1: Error in applying operation '+nosuch': Unknown command or category name in ACL. WARNING: ACL errors detected, no change to the previously active ACL rules was performed", file.display())
    );
    assert_eq!(
        c.cmd(&["ACL", "USERS"]),
        Resp::bulks(&["bob", "carol", "default"])
    );
    std::fs::write(&file, "foo\n").unwrap();
    assert!(err(&c.cmd(&["ACL", "LOAD"])).contains("should start with user keyword"));
    // `user` directives on the command line (as in redis.conf).
    let s2 = Server::start(&["--user", "dave", "on", ">pw", "+@all", "~*"]);
    let mut d = s2.client();
    assert_eq!(d.cmd(&["AUTH", "dave", "pw"]), Resp::ok());
    assert_eq!(d.cmd(&["ACL", "WHOAMI"]), Resp::bulk("dave"));
}

#[test]
fn rename_command_renames_and_disables() {
    let s = Server::start(&[
        "--rename-command",
        "flushall",
        "",
        "--rename-command",
        "config",
        "myconfig",
    ]);
    let mut c = s.client();
    assert_eq!(
        err(&c.cmd(&["FLUSHALL"])),
        "ERR unknown command 'FLUSHALL', with args beginning with: "
    );
    assert!(err(&c.cmd(&["CONFIG", "GET", "port"])).starts_with("ERR unknown command 'CONFIG'"));
    assert!(matches!(
        c.cmd(&["MYCONFIG", "GET", "port"]),
        Resp::Array(_)
    ));
    // Inside a transaction too.
    c.cmd(&["MULTI"]);
    assert_eq!(
        c.cmd(&["myconfig", "get", "port"]),
        Resp::Simple("QUEUED".into())
    );
    assert!(matches!(c.cmd(&["EXEC"]), Resp::Array(_)));
    // From a config file as well, and CONFIG SET cannot change it.
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("kv.conf");
    std::fs::write(&conf, "rename-command DEBUG \"\"\n").unwrap();
    let dir = tmp.path().join("data");
    let port = free_port();
    let mut child = Command::new(kvtier_tests::server_binary())
        .arg(&conf)
        .args(["--port", &port.to_string(), "--dir", dir.to_str().unwrap()])
        .args(["--backend", &kvtier_tests::test_backend()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut c = Client::connect(port);
    assert!(err(&c.cmd(&["DEBUG", "SLEEP", "0"])).starts_with("ERR unknown command 'DEBUG'"));
    assert!(err(&c.cmd(&["CONFIG", "SET", "rename-command", "get x"]))
        .starts_with("ERR Unknown option"));
    let _ = child.kill();
    let _ = child.wait();
}

/// The machine's first non-loopback IPv4 address (the one a UDP socket would send from).
fn non_loopback_ip() -> Option<IpAddr> {
    let sock = UdpSocket::bind("0.0.0.0:0").ok()?;
    sock.connect("192.0.2.1:9").ok()?;
    let ip = sock.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[test]
fn protected_mode_refuses_outside_clients_without_password() {
    let Some(ip) = non_loopback_ip() else {
        eprintln!("SKIPPED protected-mode test: this machine has no non-loopback address");
        return;
    };
    let connect = |port: u16| {
        let stream = TcpStream::connect((ip, port)).expect("connect via the outside address");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream
    };
    let read_all = |mut s: TcpStream| {
        use std::io::{Read, Write};
        s.write_all(b"PING\r\n").unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    };
    let s = Server::start(&["--bind", "*"]);
    let got = read_all(connect(s.port));
    assert!(
        got.starts_with("-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user."),
        "{got}"
    );
    assert!(got
        .ends_with("in order for the server to start accepting connections from the outside.\r\n"));
    // Loopback clients are served.
    assert_eq!(s.client().cmd(&["PING"]), Resp::Simple("PONG".into()));
    // Byte for byte what redis-server says.
    if let Some(r) = Redis::start(&["--bind", "*", "--protected-mode", "yes"]) {
        assert_eq!(read_all(connect(r.port)), got);
    }
    // With a password, or protected mode off, outsiders are let in.
    s.client().cmd(&["CONFIG", "SET", "requirepass", "pw"]);
    {
        use std::io::{BufRead, BufReader, Write};
        let mut st = connect(s.port);
        st.write_all(b"PING\r\n").unwrap();
        let mut line = String::new();
        BufReader::new(st).read_line(&mut line).unwrap();
        assert_eq!(line, "-NOAUTH Authentication required.\r\n");
    }
    let mut admin = s.client();
    admin.cmd(&["AUTH", "pw"]);
    admin.cmd(&["CONFIG", "SET", "requirepass", ""]);
    admin.cmd(&["CONFIG", "SET", "protected-mode", "no"]);
    {
        use std::io::{BufRead, BufReader, Write};
        let mut st = connect(s.port);
        st.write_all(b"PING\r\n").unwrap();
        let mut line = String::new();
        BufReader::new(st).read_line(&mut line).unwrap();
        assert_eq!(line, "+PONG\r\n");
    }
}
