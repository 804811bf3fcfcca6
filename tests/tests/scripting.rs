//! EVAL / EVALSHA / SCRIPT black-box tests: conversions both ways in RESP2 and RESP3, error
//! shapes with script name and line, the script cache, BUSY with SCRIPT KILL, scripts over
//! keys that are only on disk (tiny cache), and one save group per script.

use kvtier_tests::{assert_err, Client, Resp, Server};
use std::time::{Duration, Instant};

const SMALL_CACHE: &[&str] = &["--maxmemory", "1mb", "--cache-flush-delay", "0"];

fn eval(c: &mut Client, script: &str) -> Resp {
    c.cmd(&["EVAL", script, "0"])
}

fn int(n: i64) -> Resp {
    Resp::Int(n)
}

#[test]
fn lua_values_become_replies_resp2() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let cases: &[(&str, Resp)] = &[
        ("return 'abc'", Resp::bulk("abc")),
        ("return 3.99", int(3)),
        ("return -3.99", int(-3)),
        ("return 1e20", int(i64::MIN)),
        ("return true", int(1)),
        ("return false", Resp::Nil),
        ("return nil", Resp::Nil),
        ("return {}", Resp::Array(vec![])),
        ("return {1,2,nil,4}", Resp::Array(vec![int(1), int(2)])),
        ("return {true,false}", Resp::Array(vec![int(1), Resp::Nil])),
        ("return {ok='fine'}", Resp::Simple("fine".into())),
        ("return {err='MY error'}", Resp::err("MY error")),
        (
            "return redis.status_reply('FINE')",
            Resp::Simple("FINE".into()),
        ),
        (
            "return redis.error_reply('My Error')",
            Resp::err("My Error"),
        ),
        ("return {ok=5}", Resp::Array(vec![])),
        ("return {double=3.5}", Resp::bulk("3.5")),
        (
            "return {map={a=1}}",
            Resp::Array(vec![Resp::bulk("a"), int(1)]),
        ),
        ("return {set={a=true}}", Resp::Array(vec![Resp::bulk("a")])),
        ("return {big_number='123'}", Resp::bulk("123")),
        (
            "return {verbatim_string={format='txt', string='hi'}}",
            Resp::bulk("hi"),
        ),
        ("redis.setresp(3) return false", int(0)),
        (
            "return {1,{2,{3}}}",
            Resp::Array(vec![
                int(1),
                Resp::Array(vec![int(2), Resp::Array(vec![int(3)])]),
            ]),
        ),
        (
            "return redis.sha1hex('')",
            Resp::bulk("da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        ),
    ];
    for (script, want) in cases {
        assert_eq!(&eval(&mut c, script), want, "{script}");
    }
}

#[test]
fn lua_values_become_replies_resp3() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.cmd(&["HELLO", "3"]);
    let cases: &[(&str, Resp)] = &[
        ("return nil", Resp::Nil),
        ("return false", Resp::Nil),
        ("redis.setresp(3) return false", Resp::Bool(false)),
        ("redis.setresp(3) return true", Resp::Bool(true)),
        ("return {double=3.5}", Resp::Double("3.5".into())),
        (
            "return {map={a=1}}",
            Resp::Map(vec![(Resp::bulk("a"), int(1))]),
        ),
        ("return {set={a=true}}", Resp::Set(vec![Resp::bulk("a")])),
    ];
    for (script, want) in cases {
        assert_eq!(&eval(&mut c, script), want, "{script}");
    }
}

#[test]
fn replies_become_lua_values() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.cmd(&["SET", "s", "str"]);
    c.cmd(&["HSET", "h", "f", "v"]);
    c.cmd(&["SADD", "st", "m"]);
    c.cmd(&["ZADD", "z", "1.5", "a"]);
    let cases: &[(&str, Resp)] = &[
        (
            "return type(redis.call('get', 'nokey'))",
            Resp::bulk("boolean"),
        ),
        ("return redis.call('get', 's')", Resp::bulk("str")),
        ("return redis.call('ping')", Resp::Simple("PONG".into())),
        ("return redis.call('ping').ok", Resp::bulk("PONG")),
        (
            "return redis.pcall('incr', 's').err",
            Resp::bulk("ERR value is not an integer or out of range"),
        ),
        (
            "return redis.call('hgetall', 'h')",
            Resp::bulks(&["f", "v"]),
        ),
        ("return redis.call('zscore', 'z', 'a')", Resp::bulk("1.5")),
        // RESP3 shapes after redis.setresp(3).
        (
            "redis.setresp(3) return redis.call('hgetall', 'h').map.f",
            Resp::bulk("v"),
        ),
        (
            "redis.setresp(3) return redis.call('smembers', 'st').set.m",
            int(1),
        ),
        (
            "redis.setresp(3) return type(redis.call('get', 'nokey'))",
            Resp::bulk("nil"),
        ),
        (
            "redis.setresp(3) return redis.call('zscore', 'z', 'a').double",
            int(1),
        ),
        ("return redis.call('set', 'n', 1.5)", Resp::ok()),
        ("return redis.call('get', 'n')", Resp::bulk("1.5")),
        ("return {#KEYS, #ARGV}", Resp::Array(vec![int(0), int(0)])),
    ];
    for (script, want) in cases {
        assert_eq!(&eval(&mut c, script), want, "{script}");
    }
    let got = c.cmd(&[
        "EVAL",
        "return {KEYS[1], KEYS[2], ARGV[1], #ARGV}",
        "2",
        "k1",
        "k2",
        "a1",
    ]);
    assert_eq!(
        got,
        Resp::Array(vec![
            Resp::bulk("k1"),
            Resp::bulk("k2"),
            Resp::bulk("a1"),
            int(1)
        ])
    );
}

#[test]
fn errors_name_the_script_and_line() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.cmd(&["SET", "s", "str"]);
    let sha = |body: &str| sha1(body.as_bytes());
    let cases: Vec<(&str, String)> = vec![
        (
            "return x",
            format!("ERR user_script:1: Script attempted to access nonexistent global variable 'x' script: {}, on @user_script:1.", sha("return x")),
        ),
        (
            "local a = 1\nreturn redis.call('incr', 's')",
            format!("ERR value is not an integer or out of range script: {}, on @user_script:2.", sha("local a = 1\nreturn redis.call('incr', 's')")),
        ),
        (
            "error('boom')",
            format!("ERR user_script:1: boom script: {}, on @user_script:1.", sha("error('boom')")),
        ),
        (
            "error({err='MY custom'})",
            format!("MY custom script: {}, on @user_script:1.", sha("error({err='MY custom'})")),
        ),
        (
            "x = 1",
            format!("ERR user_script:1: Attempt to modify a readonly table script: {}, on @user_script:1.", sha("x = 1")),
        ),
        (
            "return redis.call('nosuch')",
            format!("ERR Unknown Redis command called from script script: {}, on @user_script:1.", sha("return redis.call('nosuch')")),
        ),
        (
            "return redis.call('multi')",
            format!("ERR This Redis command is not allowed from script script: {}, on @user_script:1.", sha("return redis.call('multi')")),
        ),
        (
            "return redis.call('get')",
            format!("ERR Wrong number of args calling Redis command from script script: {}, on @user_script:1.", sha("return redis.call('get')")),
        ),
        (
            "return os",
            format!("ERR user_script:1: Script attempted to access nonexistent global variable 'os' script: {}, on @user_script:1.", sha("return os")),
        ),
    ];
    for (script, want) in cases {
        assert_eq!(eval(&mut c, script), Resp::Error(want), "{script}");
    }
    assert_eq!(
        eval(&mut c, "return +"),
        Resp::err(
            "ERR Error compiling script (new function): user_script:1: unexpected symbol near '+'"
        )
    );
    // pcall sees redis.call's error as its message.
    assert_eq!(
        eval(
            &mut c,
            "local ok, e = pcall(redis.call, 'incr', 's') return e"
        ),
        Resp::bulk("ERR value is not an integer or out of range")
    );
    // Read-only scripts refuse writes.
    let r = c.cmd(&["EVAL_RO", "return redis.call('set', 'x', '1')", "0"]);
    assert_err(
        &r,
        "ERR Write commands are not allowed from read-only scripts.",
    );
    let r = c.cmd(&[
        "EVAL",
        "#!lua flags=no-writes\nreturn redis.call('set', 'x', '1')",
        "0",
    ]);
    assert_err(
        &r,
        "ERR Write commands are not allowed from read-only scripts.",
    );
    assert_eq!(
        c.cmd(&["EVAL", "#!lua flags=bogus\nreturn 1", "0"]),
        Resp::err("ERR Unexpected flag in script shebang: bogus")
    );
    assert_eq!(c.cmd(&["EXISTS", "x"]), int(0));
}

/// SHA1 in hex, as EVALSHA names a script (written out here: the tests need no crate for it).
fn sha1(data: &[u8]) -> String {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut msg = data.to_vec();
    let bits = (data.len() as u64) * 8;
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bits.to_be_bytes());
    for chunk in msg.chunks(64) {
        let mut w = [0u32; 80];
        for i in 0..16 {
            w[i] = u32::from_be_bytes(chunk[i * 4..i * 4 + 4].try_into().unwrap());
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

#[test]
fn script_cache() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let sha = sha1(b"return 1");
    assert_eq!(
        c.cmd(&["EVALSHA", &sha, "0"]),
        Resp::err("NOSCRIPT No matching script. Please use EVAL.")
    );
    assert_eq!(c.cmd(&["SCRIPT", "LOAD", "return 1"]), Resp::bulk(&sha));
    assert_eq!(c.cmd(&["EVALSHA", &sha, "0"]), int(1));
    assert_eq!(c.cmd(&["EVALSHA", &sha.to_uppercase(), "0"]), int(1));
    assert_eq!(
        c.cmd(&["SCRIPT", "EXISTS", &sha, "abc"]),
        Resp::Array(vec![int(1), int(0)])
    );
    assert_eq!(c.cmd(&["SCRIPT", "FLUSH"]), Resp::ok());
    assert_eq!(
        c.cmd(&["SCRIPT", "EXISTS", &sha]),
        Resp::Array(vec![int(0)])
    );
    // EVAL caches too.
    assert_eq!(eval(&mut c, "return 1"), int(1));
    assert_eq!(c.cmd(&["EVALSHA", &sha, "0"]), int(1));
    assert_eq!(
        c.cmd(&["SCRIPT", "KILL"]),
        Resp::err("NOTBUSY No scripts in execution right now.")
    );
    assert_eq!(
        c.cmd(&["SCRIPT", "FLUSH", "bogus"]),
        Resp::err("ERR SCRIPT FLUSH only support SYNC|ASYNC option")
    );
    assert_eq!(
        c.cmd(&["EVAL", "return 1", "2", "a"]),
        Resp::err("ERR Number of keys can't be greater than number of args")
    );
    assert_eq!(
        c.cmd(&["EVAL", "return 1", "-1"]),
        Resp::err("ERR Number of keys can't be negative")
    );
}

#[test]
fn libraries_cjson_bit_cmsgpack_struct() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let cases: &[(&str, Resp)] = &[
        (
            "return cjson.encode({1,2,{a=1}})",
            Resp::bulk("[1,2,{\"a\":1}]"),
        ),
        ("return cjson.encode({})", Resp::bulk("{}")),
        ("return cjson.encode(1/3)", Resp::bulk("0.33333333333333")),
        ("return cjson.decode('[1,2,{\"a\":1.5}]')[3].a", int(1)),
        (
            "return cjson.decode('{\"a\":null}').a == cjson.null",
            int(1),
        ),
        ("return bit.band(7, 3)", int(3)),
        ("return bit.tobit(0xffffffff)", int(-1)),
        ("return bit.tohex(255)", Resp::bulk("000000ff")),
        ("return bit.lshift(1, 31)", int(-2147483648)),
        ("return cmsgpack.unpack(cmsgpack.pack({a=1})).a", int(1)),
        ("return struct.size('>I2i4B')", int(7)),
        (
            "return {struct.unpack('>I2i4B', struct.pack('>I2i4B', 258, -1, 7))}",
            Resp::Array(vec![int(258), int(-1), int(7), int(8)]),
        ),
    ];
    for (script, want) in cases {
        assert_eq!(&eval(&mut c, script), want, "{script}");
    }
    let r = eval(&mut c, "return cjson.decode('bogus')");
    assert_err(
        &r,
        "ERR user_script:1: Expected value but found invalid token at character 1",
    );
}

#[test]
fn commands_in_scripts_behave_as_clients_commands() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let mut watcher = s.client();
    // WATCH: a script's write makes the watcher's EXEC fail.
    watcher.cmd(&["WATCH", "w"]);
    watcher.cmd(&["MULTI"]);
    watcher.cmd(&["SET", "w", "mine"]);
    assert_eq!(
        eval(&mut c, "return redis.call('set', 'w', 'script')"),
        Resp::ok()
    );
    assert_eq!(watcher.cmd(&["EXEC"]), Resp::NilArray);
    // Blocked clients are woken by a script's push.
    let mut blocked = s.client();
    blocked.send(&["BLPOP", "q", "5"]);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(eval(&mut c, "return redis.call('rpush', 'q', 'x')"), int(1));
    assert_eq!(blocked.read(), Resp::bulks(&["q", "x"]));
    // Statistics count the commands a script runs.
    c.cmd(&["CONFIG", "RESETSTAT"]);
    eval(
        &mut c,
        "redis.call('set', 'a', '1') redis.call('set', 'b', '2') return 1",
    );
    let stats = c.cmd(&["INFO", "commandstats"]).as_str();
    assert!(stats.contains("cmdstat_set:calls=2"), "{stats}");
    assert!(stats.contains("cmdstat_eval:calls=1"), "{stats}");
    // SELECT inside a script does not change the caller's DB.
    eval(
        &mut c,
        "redis.call('select', 1) return redis.call('set', 'db1', 'x')",
    );
    assert_eq!(c.cmd(&["GET", "db1"]), Resp::Nil);
    c.cmd(&["SELECT", "1"]);
    assert_eq!(c.cmd(&["GET", "db1"]), Resp::bulk("x"));
    // Keyspace-wide commands answer inside a script.
    c.cmd(&["SELECT", "0"]);
    assert!(eval(&mut c, "return redis.call('dbsize')").as_int() >= 3);
    // In MULTI, EVAL is queued and runs inside EXEC.
    c.cmd(&["MULTI"]);
    c.cmd(&["EVAL", "return redis.call('incr', 'ctr')", "0"]);
    assert_eq!(c.cmd(&["EXEC"]), Resp::Array(vec![int(1)]));
}

#[test]
fn busy_script_and_script_kill() {
    let s = Server::start(&["--busy-reply-threshold", "100"]);
    let mut runner = s.client();
    let mut other = s.client();
    runner.send(&["EVAL", "local i = 0\nwhile true do i = i + 1 end", "0"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        other.cmd(&["PING"]),
        Resp::err("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.")
    );
    // A transaction meanwhile: MULTI works, EXEC discards it (nothing of it runs).
    assert_eq!(other.cmd(&["MULTI"]), Resp::ok());
    assert_err(&other.cmd(&["INCR", "ctr"]), "BUSY ");
    assert_eq!(
        other.cmd(&["EXEC"]),
        Resp::err("EXECABORT Transaction discarded because of: BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.")
    );
    assert_eq!(other.cmd(&["SCRIPT", "KILL"]), Resp::ok());
    let r = runner.read();
    assert_err(&r, "ERR Script killed by user with SCRIPT KILL...");
    assert_eq!(other.cmd(&["PING"]), Resp::Simple("PONG".into()));
    assert_eq!(runner.cmd(&["PING"]), Resp::Simple("PONG".into()));
    assert_eq!(other.cmd(&["GET", "ctr"]), Resp::Nil);
    assert!(other.info_int("script_busy_runs") >= 1);

    // After a write the script cannot be killed; SHUTDOWN NOSAVE still ends the server.
    runner.send(&["EVAL", "redis.call('set', 'k', 'v') while true do end", "0"]);
    std::thread::sleep(Duration::from_millis(300));
    let r = other.cmd(&["SCRIPT", "KILL"]);
    assert_err(
        &r,
        "UNKILLABLE Sorry the script already executed write commands",
    );
    other.send(&["SHUTDOWN", "NOSAVE"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut s = s;
    let mut child = s.take_child();
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "SHUTDOWN NOSAVE did not end the server"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Writes `n` keys of 1 KB and restarts the server, so that every one of them is on disk only
/// (waiting for eviction instead made the test depend on when the memory check ran).
fn fill_cold(s: &mut Server, n: usize) -> (Server, Client) {
    let mut c = s.client();
    let value = "v".repeat(1000);
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let mut args: Vec<String> = vec!["MSET".into()];
        for i in chunk {
            args.push(format!("key:{i}"));
            args.push(format!("{i}:{value}"));
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(c.cmd(&refs), Resp::ok());
    }
    assert!(s.shutdown(), "SHUTDOWN failed");
    let s2 = Server::start_in(&s.dir.clone(), SMALL_CACHE);
    let c2 = s2.client();
    (s2, c2)
}

#[test]
fn scripts_over_keys_only_on_disk() {
    let mut s = Server::start(SMALL_CACHE);
    let _tmp = s.take_tmp();
    let n = 1500;
    let (mut s, mut c) = fill_cold(&mut s, n);
    // Declared keys are loaded before the script starts.
    let r = c.cmd(&[
        "EVAL",
        "return {redis.call('get', KEYS[1]), redis.call('get', KEYS[2])}",
        "2",
        "key:1",
        "key:2",
    ]);
    let Resp::Array(v) = r else { panic!("{r:?}") };
    assert!(v[0].as_str().starts_with("1:v"));
    assert!(v[1].as_str().starts_with("2:v"));
    // Undeclared keys: the run starts again once they are loaded; every value is right.
    let script = "local n = 0\n\
                  for i = 0, tonumber(ARGV[1]) - 1 do\n\
                    local v = redis.call('get', 'key:' .. i)\n\
                    if v and string.sub(v, 1, #tostring(i) + 1) == i .. ':' then n = n + 1 end\n\
                  end\n\
                  return n";
    let before = c.info_int("script_cold_retries");
    assert_eq!(c.cmd(&["EVAL", script, "0", &n.to_string()]), int(n as i64));
    assert!(c.info_int("script_cold_retries") > before);
    // A write first, then undeclared cold keys: the run cannot start again, so they are read
    // synchronously and every value is still right.
    let (_s, mut c) = fill_cold(&mut s, n);
    let before = c.info_int("script_cold_sync_loads");
    let r = c.cmd(&[
        "EVAL",
        "redis.call('set', 'fresh', '1')\n\
         local n = 0\n\
         for i = 0, tonumber(ARGV[1]) - 1 do\n\
           local v = redis.call('get', 'key:' .. i)\n\
           if v and string.sub(v, 1, #tostring(i) + 1) == i .. ':' then n = n + 1 end\n\
         end\n\
         return n",
        "0",
        &n.to_string(),
    ]);
    assert_eq!(
        r,
        int(n as i64),
        "every value read after the write is right"
    );
    assert!(c.info_int("script_cold_sync_loads") > before);
    assert!(c.info_int("sync_loads") > 0);
    assert_eq!(c.cmd(&["GET", "fresh"]), Resp::bulk("1"));
}

#[test]
fn a_script_reaches_disk_in_one_batch() {
    // The writes of one script are one save group: after kill -9, either all of them are on
    // disk or none (the values before the script).
    let keys = 50;
    for round in 0..5 {
        let mut s = Server::start(&["--cache-flush-delay", "0"]);
        let tmp = s.take_tmp();
        let mut c = s.client();
        let set_all =
            "for i = 1, tonumber(ARGV[1]) do redis.call('set', 'k' .. i, ARGV[2]) end return 1";
        assert_eq!(
            c.cmd(&["EVAL", set_all, "0", &keys.to_string(), "old"]),
            int(1)
        );
        assert_eq!(c.cmd(&["SAVE"]), Resp::ok());
        assert_eq!(
            c.cmd(&["EVAL", set_all, "0", &keys.to_string(), "new"]),
            int(1)
        );
        s.kill9();
        let s2 = Server::start_in(&s.dir, &[]);
        let mut c2 = s2.client();
        let values: Vec<Resp> = (1..=keys)
            .map(|i| c2.cmd(&["GET", &format!("k{i}")]))
            .collect();
        assert!(
            values.iter().all(|v| *v == values[0]),
            "round {round}: a script's writes were split on disk: {values:?}"
        );
        drop(s2);
        drop(tmp);
    }
}

#[test]
fn the_callers_acl_applies_inside_scripts() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(
        c.cmd(&["ACL", "SETUSER", "lim", "on", "nopass", "+eval", "+get", "~k*"]),
        Resp::ok()
    );
    assert_eq!(c.cmd(&["AUTH", "lim", "x"]), Resp::ok());
    let r = eval(&mut c, "return redis.call('set', 'k1', 'v')");
    assert_err(
        &r,
        "ERR The user executing the script can't run this command or subcommand script: ",
    );
    let r = eval(&mut c, "return redis.call('get', 'other')");
    assert_err(
        &r,
        "ERR The user executing the script can't access at least one of the keys mentioned in the command arguments script: ",
    );
    assert_eq!(
        eval(&mut c, "return redis.pcall('set', 'k1', 'v')"),
        Resp::err("ERR The user executing the script can't run this command or subcommand")
    );
    assert_eq!(eval(&mut c, "return redis.call('get', 'k1')"), Resp::Nil);
}
