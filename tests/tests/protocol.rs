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

/// A client that pipelines several read slices (256 KB each) and closes its sending side at
/// once gets every reply, and then the server closes the connection (the end of its input is
/// seen however the close and the slices interleave).
#[test]
fn half_close_after_a_large_pipeline_gets_every_reply_then_eof() {
    use std::io::{Read, Write};
    let s = Server::start(&[]);
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let value = "v".repeat(1000);
    let n = 2_000; // about 2 MB
    let mut input = Vec::new();
    for i in 0..n {
        let key = format!("k{i}");
        input.extend_from_slice(
            format!(
                "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{value}\r\n",
                key.len(),
                value.len()
            )
            .as_bytes(),
        );
    }
    let writer = {
        let mut w = sock.try_clone().unwrap();
        std::thread::spawn(move || {
            w.write_all(&input).unwrap();
            w.shutdown(std::net::Shutdown::Write).unwrap();
        })
    };
    let mut replies = Vec::new();
    // Read to the end: the server must close once every reply is out (a timeout fails).
    sock.read_to_end(&mut replies)
        .expect("the server closes the connection");
    writer.join().unwrap();
    assert_eq!(replies, b"+OK\r\n".repeat(n));
    assert_eq!(s.client().cmd(&["DBSIZE"]), Resp::Int(n as i64));
}

/// Sends raw bytes on a fresh connection (after `setup` commands, whose replies are read)
/// and returns everything until the server closes it (or 2 s pass).
fn raw_exchange(port: u16, setup: &[&[&str]], input: &[u8]) -> String {
    let mut c = kvtier_tests::Client::connect(port);
    for s in setup {
        c.cmd(s);
    }
    c.set_timeout(std::time::Duration::from_secs(2));
    c.send_raw(input);
    String::from_utf8_lossy(&c.read_to_close()).into_owned()
}

/// Commands sent before a raw exchange.
type Setup<'a> = &'a [&'a [&'a str]];

/// Limits and their errors as redis-server 7.0 has them: the same raw input to both, the same
/// bytes back (when redis-server is on PATH; kvtier's expected bytes are asserted anyway).
#[test]
fn limits_and_protocol_errors_like_redis() {
    let s = Server::start(&[]);
    let redis = kvtier_tests::RedisServer::start(&[]);
    let big_count = [b"*".as_slice(), &[b'1'; 70 * 1024]].concat();
    let big_bulk_count = [b"*1\r\n$".as_slice(), &[b'1'; 70 * 1024]].concat();
    let max_bulk: &[&[&str]] = &[&["CONFIG", "SET", "proto-max-bulk-len", "1mb"]];
    let nul_inline = [b"\x00\x01\r\nPING\r\n".as_slice(), &[b'a'; 70 * 1024]].concat();
    let cases: Vec<(Setup, Vec<u8>, &str)> = vec![
        (
            &[],
            big_count,
            "-ERR Protocol error: too big mbulk count string\r\n",
        ),
        (
            &[],
            big_bulk_count,
            "-ERR Protocol error: too big bulk count string\r\n",
        ),
        (
            &[],
            b"*\r\n".to_vec(),
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            &[],
            b"*+1\r\n".to_vec(),
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            &[],
            b"*1\r\n$\r\n".to_vec(),
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            &[],
            b"*1\r\n$ 4\r\n".to_vec(),
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            &[],
            b"set a 'b\r\n".to_vec(),
            "-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
        (
            &[],
            b"set a \"b\"c\r\n".to_vec(),
            "-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
        (
            &[],
            b"\"\r\n".to_vec(),
            "-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
        (
            max_bulk,
            b"*2\r\n$4\r\nECHO\r\n$1048577\r\n".to_vec(),
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        // A NUL byte before the newline leaves an inline request unfinished, as in Redis
        // (whose strchr stops there), until it is too big. (It once hung kvtier.)
        (
            &[],
            nul_inline,
            "-ERR Protocol error: too big inline request\r\n",
        ),
    ];
    for (setup, input, want) in &cases {
        let shown = String::from_utf8_lossy(&input[..input.len().min(40)]).into_owned();
        assert_eq!(
            raw_exchange(s.port, setup, input),
            *want,
            "kvtier, input {shown:?}"
        );
        if let Some(r) = &redis {
            assert_eq!(
                raw_exchange(r.port, setup, input),
                *want,
                "redis, input {shown:?}"
            );
        }
    }
    // Just under proto-max-bulk-len is fine.
    let mut c = s.client();
    c.cmd(&["CONFIG", "SET", "proto-max-bulk-len", "1mb"]);
    let v = vec![b'v'; 1 << 20];
    assert_eq!(c.cmd_bytes(&[b"SET", b"k", &v]), Resp::ok());
    assert_eq!(s.client().cmd(&["PING"]), Resp::Simple("PONG".into()));
}

/// Before AUTH, Redis allows at most 10 arguments and 16 KB bulk strings per request.
#[test]
fn unauthenticated_limits_like_redis() {
    let s = Server::start(&["--requirepass", "pw"]);
    let redis = kvtier_tests::RedisServer::start(&["--requirepass", "pw"]);
    let cases: &[(&[u8], &str)] = &[
        (
            b"*11\r\n",
            "-ERR Protocol error: unauthenticated multibulk length\r\n",
        ),
        (
            b"*1\r\n$16385\r\n",
            "-ERR Protocol error: unauthenticated bulk length\r\n",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(raw_exchange(s.port, &[], input), *want);
        if let Some(r) = &redis {
            assert_eq!(raw_exchange(r.port, &[], input), *want);
        }
    }
    // Authenticated, the same requests are fine.
    let mut c = s.client();
    assert_eq!(c.cmd(&["AUTH", "pw"]), Resp::ok());
    let v = vec![b'v'; 16385];
    assert_eq!(c.cmd_bytes(&[b"SET", b"k", &v]), Resp::ok());
    let mut args: Vec<&str> = vec!["MSET"];
    for _ in 0..6 {
        args.extend(["a", "b"]);
    }
    assert_eq!(c.cmd(&args), Resp::ok());
}

/// `client-query-buffer-limit`: a request larger than it closes the connection (no reply),
/// as Redis does; others are not affected.
#[test]
fn query_buffer_limit_closes_the_client() {
    let s = Server::start(&[]);
    let mut input = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3000000\r\n".to_vec();
    input.extend(std::iter::repeat_n(b'a', 3_000_000));
    input.extend_from_slice(b"\r\n");
    let setup: &[&[&str]] = &[&["CONFIG", "SET", "client-query-buffer-limit", "1mb"]];
    let mut c = kvtier_tests::Client::connect(s.port);
    c.cmd(setup[0]);
    c.set_timeout(std::time::Duration::from_secs(10));
    use std::io::Write;
    let _ = c.stream.write_all(&input);
    let got = c.read_to_close();
    assert!(
        got.is_empty(),
        "expected a silent close, got {:?}",
        String::from_utf8_lossy(&got)
    );
    assert_eq!(s.client().cmd(&["EXISTS", "k"]), Resp::Int(0));
    // Other clients go on being served.
    let mut c = s.client();
    assert_eq!(c.cmd(&["PING"]), Resp::Simple("PONG".into()));
}
