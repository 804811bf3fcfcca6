//! INFO memory tells an operator where the process's memory is: the allocator's figures under
//! Redis's names, and on sled the backend's heap as measured rather than its configured cache
//! (sled's heap is many times its cache setting; docs/backends.md).

use kvtier_tests::{info_field, parse_info, test_backend, Server};

#[test]
fn info_memory_accounts_for_the_whole_heap() {
    let s = Server::start(&["--maxmemory", "8mb", "--sled-cache-capacity", "1mb"]);
    let mut c = s.client();
    // 6 MB of 3 KB values through an 8 MB limit: some are evicted, the backend holds all.
    let value = "v".repeat(3000);
    for chunk in 0..20 {
        for i in 0..100 {
            c.send(&["SET", &format!("k:{chunk}:{i}"), &value]);
        }
        for _ in 0..100 {
            c.read();
        }
    }
    // One memory check after the writes (every 10 ms at most).
    std::thread::sleep(std::time::Duration::from_millis(200));
    // Every figure from one reply: the heap moves between two INFO calls (RocksDB's threads).
    let info = parse_info(&c.cmd(&["INFO", "memory"]));
    let field = |name: &str| info_field(&info, name);
    let allocated = field("allocator_allocated");
    let used = field("used_memory");
    let backend = field("backend_memory");
    assert!(allocated <= field("allocator_active"));
    assert!(field("used_memory_rss") > 0);
    if test_backend() == "sled" {
        // The cache's estimate and the heap measured beside it add up to the allocator's total
        // (taken a moment apart: within a quarter), and sled's share is well over the 1 MB it
        // was configured with.
        let sum = used + backend;
        assert!(
            (sum - allocated).abs() < allocated / 4,
            "used {used} + backend {backend} vs allocated {allocated}"
        );
        assert!(backend > 2 << 20, "sled's measured heap: {backend}");
    } else {
        // Elsewhere the backend's memory is inside the allocator's total (`used_memory`).
        assert!(
            backend <= allocated,
            "backend {backend} vs allocated {allocated}"
        );
    }
}
