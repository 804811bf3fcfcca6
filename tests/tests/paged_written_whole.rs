//! A collection a command writes whole (RESTORE, SORT … STORE, SUNIONSTORE and the other set
//! STORE forms) is paged at once when it is large enough, like one grown by its own writes, not
//! left as one record until its next write; its contents survive a restart.

use kvtier_tests::{
    paged_args, sorted_strings as sorted, Client, Resp, Server, NO_COMPACT_ENCODINGS,
};

/// Values of 256 bytes or more are paged, in pages of about 64 bytes; every type past its
/// compact encoding's limits (so each is eligible).
fn paged() -> Vec<&'static str> {
    paged_args("256", "64", NO_COMPACT_ENCODINGS)
}

/// Runs `cmd` and returns how many pages it created (INFO `resident_pages`, with no memory
/// limit, so no page is evicted meanwhile).
fn pages_made(c: &mut Client, cmd: &[&str]) -> (Resp, i64) {
    let before = c.info_int("resident_pages");
    let r = c.cmd(cmd);
    (r, c.info_int("resident_pages") - before)
}

fn dump(c: &mut Client, key: &str) -> Vec<u8> {
    match c.cmd(&["DUMP", key]) {
        Resp::Bulk(b) => b,
        r => panic!("DUMP {key}: {r:?}"),
    }
}

#[test]
fn values_written_whole_are_paged_at_once() {
    let args = &paged();
    let mut s = Server::start(args);
    let mut c = s.client();
    for i in 0..300 {
        let m = format!("member-{i}");
        c.cmd(&["HSET", "h", &m, &format!("value-{i}")]);
        c.cmd(&["SADD", "s", &m]);
        c.cmd(&["ZADD", "z", &i.to_string(), &m]);
        c.cmd(&["RPUSH", "l", &m]);
    }
    for key in ["h", "s", "z", "l"] {
        let payload = dump(&mut c, key);
        let copy = format!("{key}-restored");
        let cmd: [&[u8]; 4] = [b"RESTORE", copy.as_bytes(), b"0", &payload];
        let before = c.info_int("resident_pages");
        assert_eq!(c.cmd_bytes(&cmd), Resp::ok(), "RESTORE {copy}");
        let made = c.info_int("resident_pages") - before;
        assert!(made > 10, "RESTORE {copy} made {made} pages");
    }
    let (r, made) = pages_made(&mut c, &["SORT", "l", "ALPHA", "STORE", "sorted"]);
    assert_eq!(r, Resp::Int(300));
    assert!(made > 10, "SORT … STORE made {made} pages");
    for (cmd, n) in [
        ("SUNIONSTORE", 300),
        ("SINTERSTORE", 300),
        ("SDIFFSTORE", 0),
    ] {
        let dst = format!("{cmd}-dst");
        let (r, made) = pages_made(&mut c, &[cmd, &dst, "s", "s-restored"]);
        assert_eq!(r, Resp::Int(n), "{cmd}");
        if n > 0 {
            assert!(made > 10, "{cmd} made {made} pages");
        }
    }
    let want = |c: &mut Client| {
        [
            sorted(&c.cmd(&["HGETALL", "h-restored"])),
            sorted(&c.cmd(&["SMEMBERS", "s-restored"])),
            sorted(&c.cmd(&["SMEMBERS", "SUNIONSTORE-dst"])),
            sorted(&c.cmd(&["SMEMBERS", "SINTERSTORE-dst"])),
        ]
    };
    let sets_before = want(&mut c);
    assert_eq!(sets_before[0], sorted(&c.cmd(&["HGETALL", "h"])));
    assert_eq!(sets_before[1], sorted(&c.cmd(&["SMEMBERS", "s"])));
    let ordered = |c: &mut Client| {
        (
            c.cmd(&["ZRANGE", "z-restored", "0", "-1", "WITHSCORES"]),
            c.cmd(&["LRANGE", "l-restored", "0", "-1"]),
            c.cmd(&["LRANGE", "sorted", "0", "-1"]),
        )
    };
    let ordered_before = ordered(&mut c);
    assert_eq!(
        ordered_before.0,
        c.cmd(&["ZRANGE", "z", "0", "-1", "WITHSCORES"])
    );
    assert_eq!(ordered_before.1, c.cmd(&["LRANGE", "l", "0", "-1"]));
    assert_eq!(
        ordered_before.2,
        c.cmd(&["SORT", "l", "ALPHA"]),
        "SORT … STORE's list"
    );
    assert!(s.shutdown(), "SHUTDOWN failed");
    s.restart(args);
    let mut c = s.client();
    assert_eq!(want(&mut c), sets_before);
    assert_eq!(ordered(&mut c), ordered_before);
}
