//! RESP parsing and connection behaviour, byte for byte where Redis defines the bytes.

use kvtier_tests::{Resp, Server};

#[test]
fn protocol_errors_reply_then_close() {
    let s = Server::start(&[]);
    let cases: &[(&[u8], &str)] = &[
        (
            b"*1\r\n$-1\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1\r\n$999999999999\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*abc\r\n",
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*3000000000\r\n",
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*1\r\nfoo\r\n",
            "-ERR Protocol error: expected '$', got 'f'\r\n",
        ),
        (
            b"set k \"unbalanced\r\n",
            "-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
    ];
    for (input, expected) in cases {
        let mut c = s.client();
        c.send_raw(input);
        let got = c.read_to_close();
        assert_eq!(
            String::from_utf8_lossy(&got),
            *expected,
            "input {:?}",
            String::from_utf8_lossy(input)
        );
    }
    // A too big inline request.
    let mut c = s.client();
    c.send_raw(&vec![b'a'; 70 * 1024]);
    assert_eq!(
        String::from_utf8_lossy(&c.read_to_close()),
        "-ERR Protocol error: too big inline request\r\n"
    );
    // The server is still up for everyone else.
    assert_eq!(s.client().cmd(&["PING"]), Resp::Simple("PONG".into()));
}

#[test]
fn inline_and_pipelined_requests() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.send_raw(b"PING\r\nset k \"a b\"\r\nget k\r\n\r\nECHO 'x y'\r\n");
    assert_eq!(c.read(), Resp::Simple("PONG".into()));
    assert_eq!(c.read(), Resp::ok());
    assert_eq!(c.read(), Resp::bulk("a b"));
    assert_eq!(c.read(), Resp::bulk("x y"));
    // 1000 pipelined commands in one write.
    let mut buf = Vec::new();
    for i in 0..1000 {
        let _ = i;
        buf.extend_from_slice(b"*2\r\n$4\r\nINCR\r\n$7\r\ncounter\r\n");
    }
    c.send_raw(&buf);
    for i in 0..1000 {
        assert_eq!(c.read(), Resp::Int(i + 1));
    }
    // A request split across many writes.
    let req = b"*3\r\n$3\r\nSET\r\n$5\r\nsplit\r\n$10\r\n0123456789\r\n";
    for b in req.iter() {
        c.send_raw(&[*b]);
    }
    assert_eq!(c.read(), Resp::ok());
    assert_eq!(c.cmd(&["GET", "split"]), Resp::bulk("0123456789"));
}

#[test]
fn unknown_commands_and_arity() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(
        c.cmd(&["FOO", "a", "b"]),
        Resp::err("ERR unknown command 'FOO', with args beginning with: 'a' 'b' ")
    );
    assert_eq!(
        c.cmd(&["GET"]),
        Resp::err("ERR wrong number of arguments for 'get' command")
    );
    assert_eq!(
        c.cmd(&["set", "k"]),
        Resp::err("ERR wrong number of arguments for 'set' command")
    );
}

#[test]
fn binary_keys_and_large_values() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let key: &[u8] = b"\0bin/../key\r\n";
    let value = vec![0xabu8; 3 << 20];
    assert_eq!(c.cmd_bytes(&[b"SET", key, &value]), Resp::ok());
    assert_eq!(c.cmd_bytes(&[b"GET", key]), Resp::Bulk(value));
    assert_eq!(c.cmd_bytes(&[b"SET", b"", b""]), Resp::ok());
    assert_eq!(c.cmd_bytes(&[b"GET", b""]), Resp::Bulk(vec![]));
}

#[test]
fn hello_switches_protocol() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let Resp::Map(m) = c.cmd(&["HELLO", "3"]) else {
        panic!("HELLO 3 must return a map")
    };
    assert!(m.contains(&(Resp::bulk("proto"), Resp::Int(3))));
    assert!(m.contains(&(Resp::bulk("server"), Resp::bulk("redis"))));
    assert_eq!(c.cmd(&["GET", "missing"]), Resp::Nil);
    c.cmd(&["SET", "f", "1.5"]);
    assert_eq!(c.cmd(&["INCRBYFLOAT", "f", "1"]), Resp::bulk("2.5"));
    let Resp::Array(a) = c.cmd(&["HELLO", "2"]) else {
        panic!("HELLO 2 must return a flat array")
    };
    assert_eq!(a.len(), 14);
    assert_eq!(
        c.cmd(&["HELLO", "4"]),
        Resp::err("NOPROTO unsupported protocol version")
    );
}

#[test]
fn auth_and_requirepass() {
    let s = Server::start(&["--requirepass", "secret"]);
    let mut c = s.client();
    assert_eq!(
        c.cmd(&["GET", "k"]),
        Resp::err("NOAUTH Authentication required.")
    );
    assert_eq!(
        c.cmd(&["AUTH", "wrong"]),
        Resp::err("WRONGPASS invalid username-password pair or user is disabled.")
    );
    assert_eq!(c.cmd(&["AUTH", "secret"]), Resp::ok());
    assert_eq!(c.cmd(&["GET", "k"]), Resp::Nil);
    let mut c2 = s.client();
    let Resp::Map(_) = c2.cmd(&["HELLO", "3", "AUTH", "default", "secret"]) else {
        panic!("HELLO with AUTH")
    };
    assert_eq!(c2.cmd(&["PING"]), Resp::Simple("PONG".into()));
}

#[test]
fn quit_closes_after_ok() {
    let s = Server::start(&[]);
    let mut c = s.client();
    c.send(&["QUIT"]);
    assert_eq!(String::from_utf8_lossy(&c.read_to_close()), "+OK\r\n");
}
