//! Redis Functions black-box tests: FUNCTION LOAD/LIST/DELETE/FLUSH/DUMP/RESTORE/STATS/KILL,
//! FCALL/FCALL_RO, errors, and libraries surviving a restart and kill -9.

use kvtier_tests::{assert_err, Client, Resp, Server};

const LIB1: &str = "#!lua name=lib1\n\
    redis.register_function('echo', function(keys, args) return {keys[1], args[1]} end)\n\
    redis.register_function{function_name='getter', callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes'}, description='reads'}\n\
    redis.register_function('setter', function(keys, args) return redis.call('set', keys[1], args[1]) end)";

fn load(c: &mut Client, code: &str) -> Resp {
    c.cmd(&["FUNCTION", "LOAD", code])
}

#[test]
fn load_and_call() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(load(&mut c, LIB1), Resp::bulk("lib1"));
    assert_eq!(
        c.cmd(&["FCALL", "echo", "1", "k", "a"]),
        Resp::bulks(&["k", "a"])
    );
    assert_eq!(c.cmd(&["FCALL", "setter", "1", "k", "v"]), Resp::ok());
    assert_eq!(c.cmd(&["FCALL_RO", "getter", "1", "k"]), Resp::bulk("v"));
    assert_eq!(
        c.cmd(&["FCALL_RO", "setter", "1", "k", "v"]),
        Resp::err("ERR Can not execute a script with write flag using *_ro command.")
    );
    assert_eq!(
        c.cmd(&["FCALL", "nosuch", "0"]),
        Resp::err("ERR Function not found")
    );
    assert_eq!(
        c.cmd(&["FCALL", "echo", "x"]),
        Resp::err("ERR Bad number of keys provided")
    );
    // Errors name the function and the line.
    load(
        &mut c,
        "#!lua name=lib2\nredis.register_function('bad', function(k, a)\n  return redis.call('incr', k[1])\nend)",
    );
    c.cmd(&["SET", "str", "x"]);
    assert_eq!(
        c.cmd(&["FCALL", "bad", "1", "str"]),
        Resp::err("ERR value is not an integer or out of range script: bad, on @user_function:3.")
    );
    // KEYS/ARGV do not exist in functions.
    load(
        &mut c,
        "#!lua name=lib3\nredis.register_function('keys', function() return KEYS end)",
    );
    assert_eq!(
        c.cmd(&["FCALL", "keys", "0"]),
        Resp::err("ERR user_function:2: Script attempted to access nonexistent global variable 'KEYS' script: keys, on @user_function:2.")
    );
    let stats = c.cmd(&["FUNCTION", "STATS"]);
    let Resp::Array(v) = stats else {
        panic!("{stats:?}")
    };
    assert_eq!(v[0], Resp::bulk("running_script"));
    assert_eq!(v[1], Resp::Nil);
    assert_eq!(
        c.cmd(&["FUNCTION", "KILL"]),
        Resp::err("NOTBUSY No scripts in execution right now.")
    );
}

#[test]
fn load_errors() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let cases: &[(&str, &str)] = &[
        ("return 1", "ERR Missing library metadata"),
        ("#!lua\nreturn 1", "ERR Library name was not given"),
        ("#!lua name=l1\nreturn 1", "ERR No functions registered"),
        ("#!js name=l1\nreturn 1", "ERR Engine 'js' not found"),
        ("#!lua name=l1 foo=bar\nreturn 1", "ERR Invalid metadata value given: foo=bar"),
        (
            "#!lua name=l-1\nredis.register_function('f', function() end)",
            "ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long",
        ),
        (
            "#!lua name=l1\nreturn +",
            "ERR Error compiling function: user_function:2: unexpected symbol near '+'",
        ),
        (
            "#!lua name=l1\nredis.register_function{function_name='f', callback=function() end, flags={'bogus'}}",
            "ERR Error registering functions: ERR unknown flag given",
        ),
        (
            "#!lua name=l1\nredis.register_function('f', 5)",
            "ERR Error registering functions: ERR second argument to redis.register_function must be a function",
        ),
        (
            "#!lua name=l1\nredis.call('ping')",
            "ERR Error registering functions: ERR user_function:2: Script attempted to access nonexistent global variable 'call'",
        ),
        (
            "#!lua name=l1\nx = 1",
            "ERR Error registering functions: ERR user_function:2: Attempt to modify a readonly table",
        ),
    ];
    for (code, want) in cases {
        assert_eq!(load(&mut c, code), Resp::err(want), "{code}");
    }
    assert_eq!(load(&mut c, LIB1), Resp::bulk("lib1"));
    assert_eq!(
        load(&mut c, LIB1),
        Resp::err("ERR Library 'lib1' already exists")
    );
    assert_eq!(
        load(
            &mut c,
            "#!lua name=other\nredis.register_function('echo', function() return 1 end)"
        ),
        Resp::err("ERR Function echo already exists")
    );
    assert_eq!(
        c.cmd(&[
            "FUNCTION",
            "LOAD",
            "REPLACE",
            "#!lua name=lib1\nredis.register_function('echo', function() return 2 end)"
        ]),
        Resp::bulk("lib1")
    );
    assert_eq!(c.cmd(&["FCALL", "echo", "0"]), Resp::Int(2));
    // The replaced library's other functions are gone.
    assert_eq!(
        c.cmd(&["FCALL", "setter", "1", "k", "v"]),
        Resp::err("ERR Function not found")
    );
}

#[test]
fn list_delete_flush_dump_restore() {
    let s = Server::start(&[]);
    let mut c = s.client();
    load(&mut c, LIB1);
    let list = c.cmd(&["FUNCTION", "LIST", "WITHCODE", "LIBRARYNAME", "lib*"]);
    let Resp::Array(libs) = list else {
        panic!("{list:?}")
    };
    assert_eq!(libs.len(), 1);
    let Resp::Array(fields) = &libs[0] else {
        panic!()
    };
    assert_eq!(fields[0], Resp::bulk("library_name"));
    assert_eq!(fields[1], Resp::bulk("lib1"));
    assert_eq!(fields[3], Resp::bulk("LUA"));
    assert_eq!(fields[7], Resp::bulk(LIB1));
    let Resp::Array(funcs) = &fields[5] else {
        panic!()
    };
    assert_eq!(funcs.len(), 3);
    assert!(funcs.contains(&Resp::Array(vec![
        Resp::bulk("name"),
        Resp::bulk("getter"),
        Resp::bulk("description"),
        Resp::bulk("reads"),
        Resp::bulk("flags"),
        Resp::Array(vec![Resp::Simple("no-writes".into())]),
    ])));
    assert_eq!(
        c.cmd(&["FUNCTION", "LIST", "LIBRARYNAME", "nomatch"]),
        Resp::Array(vec![])
    );
    assert_eq!(
        c.cmd(&["FUNCTION", "LIST", "BOGUS"]),
        Resp::err("ERR Unknown argument BOGUS")
    );
    let dump = c.cmd(&["FUNCTION", "DUMP"]);
    let Resp::Bulk(payload) = dump else {
        panic!("{dump:?}")
    };
    assert_eq!(c.cmd(&["FUNCTION", "DELETE", "lib1"]), Resp::ok());
    assert_eq!(
        c.cmd(&["FUNCTION", "DELETE", "lib1"]),
        Resp::err("ERR Library not found")
    );
    assert_eq!(
        c.cmd(&["FCALL", "echo", "0"]),
        Resp::err("ERR Function not found")
    );
    assert_eq!(
        c.cmd_bytes(&[b"FUNCTION", b"RESTORE", &payload]),
        Resp::ok()
    );
    assert_eq!(
        c.cmd(&["FCALL", "echo", "1", "k", "a"]),
        Resp::bulks(&["k", "a"])
    );
    assert_err(
        &c.cmd_bytes(&[b"FUNCTION", b"RESTORE", &payload]),
        "ERR Library lib1 already exists",
    );
    assert_eq!(
        c.cmd_bytes(&[b"FUNCTION", b"RESTORE", &payload, b"REPLACE"]),
        Resp::ok()
    );
    assert_eq!(
        c.cmd(&["FUNCTION", "RESTORE", "bogus"]),
        Resp::err("ERR DUMP payload version or checksum are wrong")
    );
    assert_eq!(c.cmd(&["FUNCTION", "FLUSH"]), Resp::ok());
    assert_eq!(c.cmd(&["FUNCTION", "LIST"]), Resp::Array(vec![]));
    assert_eq!(
        c.cmd_bytes(&[b"FUNCTION", b"RESTORE", &payload, b"FLUSH"]),
        Resp::ok()
    );
    assert_eq!(c.cmd(&["FCALL_RO", "getter", "1", "nokey"]), Resp::Nil);
}

#[test]
fn libraries_survive_restart_and_kill9() {
    let mut s = Server::start(&[]);
    let tmp = s.take_tmp();
    let dir = s.dir.clone();
    let mut c = s.client();
    assert_eq!(load(&mut c, LIB1), Resp::bulk("lib1"));
    assert!(s.shutdown());
    let mut s = Server::start_in(&dir, &[]);
    let mut c = s.client();
    assert_eq!(
        c.cmd(&["FCALL", "echo", "1", "k", "a"]),
        Resp::bulks(&["k", "a"])
    );
    // A change acknowledged just before kill -9 is there after the restart.
    load(
        &mut c,
        "#!lua name=lib2\nredis.register_function('two', function() return 2 end)",
    );
    assert_eq!(c.cmd(&["FUNCTION", "DELETE", "lib1"]), Resp::ok());
    s.kill9();
    let s = Server::start_in(&dir, &[]);
    let mut c = s.client();
    assert_eq!(c.cmd(&["FCALL", "two", "0"]), Resp::Int(2));
    assert_eq!(
        c.cmd(&["FCALL", "echo", "0"]),
        Resp::err("ERR Function not found")
    );
    // Library records are not keys.
    assert_eq!(c.cmd(&["DBSIZE"]), Resp::Int(0));
    assert_eq!(c.cmd(&["KEYS", "*"]), Resp::Array(vec![]));
    drop(s);
    drop(tmp);
}

#[test]
fn busy_function_stats_and_kill() {
    let s = Server::start(&["--busy-reply-threshold", "100"]);
    let mut c = s.client();
    load(
        &mut c,
        "#!lua name=spin\nredis.register_function('spin', function() while true do end end)",
    );
    let mut runner = s.client();
    runner.send(&["FCALL", "spin", "0"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let stats = c.cmd(&["FUNCTION", "STATS"]);
    let Resp::Array(v) = stats else {
        panic!("{stats:?}")
    };
    let Resp::Array(running) = &v[1] else {
        panic!("{v:?}")
    };
    assert_eq!(running[1], Resp::bulk("spin"));
    assert_eq!(running[3], Resp::bulks(&["FCALL", "spin", "0"]));
    assert_eq!(
        c.cmd(&["SCRIPT", "KILL"]),
        Resp::err("BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.")
    );
    assert_eq!(c.cmd(&["FUNCTION", "KILL"]), Resp::ok());
    assert_eq!(
        runner.read(),
        Resp::err(
            "ERR Script killed by user with SCRIPT KILL... script: spin, on @user_function:2."
        )
    );
    assert_eq!(c.cmd(&["PING"]), Resp::Simple("PONG".into()));
}
