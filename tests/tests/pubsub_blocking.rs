//! Pub/sub and blocking list commands.

use kvtier_tests::{assert_err, Resp, Server};
use std::time::{Duration, Instant};

fn push(items: &[&str]) -> Resp {
    Resp::Array(items.iter().map(|s| Resp::bulk(s)).collect())
}

#[test]
fn publish_subscribe_resp2_and_resp3() {
    let s = Server::start(&[]);
    let mut sub = s.client();
    let mut pubc = s.client();
    assert_eq!(
        sub.cmd(&["SUBSCRIBE", "news", "sport"]),
        Resp::Array(vec![
            Resp::bulk("subscribe"),
            Resp::bulk("news"),
            Resp::Int(1)
        ])
    );
    assert_eq!(
        sub.read(),
        Resp::Array(vec![
            Resp::bulk("subscribe"),
            Resp::bulk("sport"),
            Resp::Int(2)
        ])
    );
    assert_eq!(
        sub.cmd(&["PSUBSCRIBE", "n*"]),
        Resp::Array(vec![
            Resp::bulk("psubscribe"),
            Resp::bulk("n*"),
            Resp::Int(3)
        ])
    );
    assert_eq!(pubc.cmd(&["PUBLISH", "news", "hello"]), Resp::Int(2));
    assert_eq!(sub.read(), push(&["message", "news", "hello"]));
    assert_eq!(sub.read(), push(&["pmessage", "n*", "news", "hello"]));
    assert_eq!(pubc.cmd(&["PUBLISH", "nobody", "x"]), Resp::Int(1));
    assert_eq!(sub.read(), push(&["pmessage", "n*", "nobody", "x"]));
    assert_eq!(pubc.cmd(&["PUBSUB", "CHANNELS"]), push(&["news", "sport"]));
    assert_eq!(
        pubc.cmd(&["PUBSUB", "NUMSUB", "news", "zzz"]),
        Resp::Array(vec![
            Resp::bulk("news"),
            Resp::Int(1),
            Resp::bulk("zzz"),
            Resp::Int(0)
        ])
    );
    assert_eq!(pubc.cmd(&["PUBSUB", "NUMPAT"]), Resp::Int(1));
    // A subscribed RESP2 client may only use pub/sub commands.
    assert_err(&sub.cmd(&["GET", "k"]), "ERR Can't execute 'get'");
    assert_eq!(sub.cmd(&["PING"]), push(&["pong", ""]));
    assert_eq!(
        sub.cmd(&["UNSUBSCRIBE", "news"]),
        Resp::Array(vec![
            Resp::bulk("unsubscribe"),
            Resp::bulk("news"),
            Resp::Int(2)
        ])
    );
    // RESP3: pushes are push frames and other commands still work.
    let mut sub3 = s.client();
    sub3.cmd(&["HELLO", "3"]);
    assert_eq!(
        sub3.cmd(&["SUBSCRIBE", "c3"]),
        Resp::Push(vec![
            Resp::bulk("subscribe"),
            Resp::bulk("c3"),
            Resp::Int(1)
        ])
    );
    assert_eq!(sub3.cmd(&["SET", "k", "v"]), Resp::ok());
    pubc.cmd(&["PUBLISH", "c3", "m"]);
    assert_eq!(
        sub3.read(),
        Resp::Push(vec![
            Resp::bulk("message"),
            Resp::bulk("c3"),
            Resp::bulk("m")
        ])
    );
    drop(sub3);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(pubc.cmd(&["PUBLISH", "c3", "m"]), Resp::Int(0));
}

#[test]
fn blocking_pops() {
    let s = Server::start(&[]);
    let mut a = s.client();
    let mut b = s.client();
    // Immediate pop when data is there.
    a.cmd(&["RPUSH", "q", "1"]);
    assert_eq!(a.cmd(&["BLPOP", "q", "0"]), push(&["q", "1"]));
    // Timeout.
    let t0 = Instant::now();
    assert_eq!(a.cmd(&["BLPOP", "q", "0.3"]), Resp::NilArray);
    assert!(t0.elapsed() >= Duration::from_millis(250));
    // Woken by another client's push.
    a.send(&["BRPOP", "q1", "q2", "5"]);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(b.cmd(&["LPUSH", "q2", "x"]), Resp::Int(1));
    assert_eq!(a.read(), push(&["q2", "x"]));
    assert_eq!(b.cmd(&["EXISTS", "q2"]), Resp::Int(0));
    // BLMOVE.
    a.send(&["BLMOVE", "src", "dst", "LEFT", "RIGHT", "5"]);
    std::thread::sleep(Duration::from_millis(100));
    b.cmd(&["RPUSH", "src", "m"]);
    assert_eq!(a.read(), Resp::bulk("m"));
    assert_eq!(b.cmd(&["LRANGE", "dst", "0", "-1"]), push(&["m"]));
    // Errors and MULTI.
    assert_eq!(
        a.cmd(&["BLPOP", "q", "-1"]),
        Resp::err("ERR timeout is negative")
    );
    assert_eq!(
        a.cmd(&["BLPOP", "q", "abc"]),
        Resp::err("ERR timeout is not a float or out of range")
    );
    a.cmd(&["MULTI"]);
    a.cmd(&["BLPOP", "empty", "0"]);
    assert_eq!(a.cmd(&["EXEC"]), Resp::Array(vec![Resp::NilArray]));
    b.cmd(&["SET", "str", "x"]);
    assert_err(&a.cmd(&["BLPOP", "str", "0"]), "WRONGTYPE");
}
