//! A hot set that fits in the cache is served from memory once loaded, whatever the backend:
//! with sled, whose heap is the server's own, the heap once counted as cache and every key was
//! loaded, served and evicted again on each read.

use kvtier_tests::{Client, Resp, Server};

fn pipe_set(c: &mut Client, from: usize, to: usize, value: &str) {
    for i in from..to {
        c.send(&["SET", &format!("k:{i}"), value]);
    }
    for _ in from..to {
        assert_eq!(c.read(), Resp::ok());
    }
}

#[test]
fn a_hot_set_within_maxmemory_is_read_from_memory_after_its_first_load() {
    let s = Server::start(&["--maxmemory", "16mb", "--cache-flush-delay", "0"]);
    let mut c = s.client();
    let value = "v".repeat(4000);
    // 48 MB of data: three times the cache.
    for chunk in 0..12 {
        pipe_set(&mut c, chunk * 1000, (chunk + 1) * 1000, &value);
    }
    assert_eq!(c.cmd(&["SAVE"]), Resp::ok());
    let before = c.info_int("disk_loads");
    // 100 keys (400 KB), read 20 times each.
    for _ in 0..20 {
        for i in 0..100 {
            c.send(&["GET", &format!("k:{i}")]);
        }
        for _ in 0..100 {
            assert_eq!(c.read().as_str().len(), 4000);
        }
    }
    let loads = c.info_int("disk_loads") - before;
    assert!(
        loads <= 150,
        "{loads} disk loads for 2,000 reads of 100 keys"
    );
}
