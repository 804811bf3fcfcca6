//! Pages that no manifest names any more are found by the store-wide page collector and deleted:
//! those of a DB cleared by FLUSHDB (pages live in one namespace shared by every DB) and of a
//! deletion cut short by a kill. No page of a live value is taken, also when a command moves a
//! manifest behind the collector's scan while it runs.

use kvtier_tests::{
    small_pages, sorted_strings as sorted, test_backend, wait_until, Client, Resp, Server,
    NO_COMPACT_ENCODINGS,
};
use std::time::Duration;

fn args() -> Vec<&'static str> {
    small_pages(NO_COMPACT_ENCODINGS)
}

/// Builds a paged hash of `n` fields under `key`; returns how many pages it made (no memory
/// limit, so none is evicted meanwhile).
fn build_hash(c: &mut Client, key: &str, n: usize) -> i64 {
    let before = c.info_int("resident_pages");
    for i in 0..n {
        c.cmd(&["HSET", key, &format!("field-{i}"), &format!("value-{i}")]);
    }
    c.info_int("resident_pages") - before
}

fn build_others(c: &mut Client, n: usize) {
    for i in 0..n {
        let m = format!("member-{i}");
        c.cmd(&["RPUSH", "list", &m]);
        c.cmd(&["ZADD", "zset", &i.to_string(), &m]);
        c.cmd(&["SADD", "set", &m]);
    }
}

/// The contents of every live paged value, by the names `renamed` gives them now.
fn contents(c: &mut Client, keep: &str, list: (&str, &str)) -> Vec<Vec<String>> {
    let (list_db, list_key) = list;
    let mut out = vec![
        sorted(&c.cmd(&["HGETALL", keep])),
        sorted(&c.cmd(&["ZRANGE", "zset", "0", "-1", "WITHSCORES"])),
        sorted(&c.cmd(&["SMEMBERS", "set"])),
    ];
    c.cmd(&["SELECT", list_db]);
    out.push(sorted(&c.cmd(&["LRANGE", list_key, "0", "-1"])));
    c.cmd(&["SELECT", "0"]);
    out
}

fn info_str(c: &mut Client, field: &str) -> String {
    let Resp::Bulk(info) = c.cmd(&["INFO", "diskstore"]) else {
        panic!("INFO failed");
    };
    let text = String::from_utf8_lossy(&info).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")).map(str::to_string))
        .unwrap_or_else(|| panic!("no {field} in INFO"))
}

fn runs_done(c: &mut Client, runs: i64) {
    wait_until(Duration::from_secs(30), "a page collector run", || {
        c.info_int("page_collector_runs") >= runs
    });
}

fn deletions_done(c: &mut Client) {
    wait_until(Duration::from_secs(30), "queued pages deleted", || {
        c.info_int("page_gc_pending") == 0
    });
}

/// Builds a paged hash of `n` fields under `key` a hundred fields per HSET.
fn build_big_hash(c: &mut Client, key: &str, n: usize) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let mut cmd = vec!["HSET".to_string(), key.to_string()];
        for i in chunk {
            cmd.push(format!("field-{i}"));
            cmd.push(format!("value-{i}"));
        }
        let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
        c.cmd(&cmd);
    }
}

#[test]
fn pages_of_a_flushed_db_and_of_a_deletion_cut_by_a_kill_are_collected_and_live_ones_kept() {
    let a = &args();
    let mut s = Server::start(a);
    let mut c = s.client();
    let overwritten = build_hash(&mut c, "overwritten", 300);
    build_hash(&mut c, "keep", 300);
    build_others(&mut c, 300);
    build_big_hash(&mut c, "big", 8000);
    c.cmd(&["SELECT", "1"]);
    let flushed = build_hash(&mut c, "gone", 300);
    c.cmd(&["SELECT", "0"]);
    assert!(flushed > 10, "pages: {flushed}");
    let want = contents(&mut c, "keep", ("0", "list"));
    assert!(s.shutdown());

    s.restart(a);
    let mut c = s.client();
    runs_done(&mut c, 1);
    assert_eq!(
        c.info_int("orphan_pages_found"),
        0,
        "a store whose pages all belong to values has nothing to collect"
    );
    // The run took each manifest's generation from the start of its record, as the scan read
    // it: no manifest was read on the event loop, and none is in memory.
    assert_eq!(c.info_int("sync_loads"), 0);
    assert_eq!(c.info_int("resident_pages"), 0);
    // A SET over a paged value that nothing loaded replaces it unread: its pages are left to
    // the collector's next run.
    assert_eq!(c.cmd(&["SET", "overwritten", "x"]), Resp::ok());
    deletions_done(&mut c);
    // FLUSHDB drops a manifest that only the store holds; its pages are in the shared
    // namespace.
    c.cmd(&["SELECT", "1"]);
    assert_eq!(c.cmd(&["FLUSHDB"]), Resp::ok());
    c.cmd(&["SELECT", "0"]);
    runs_done(&mut c, 2);
    assert_eq!(c.info_int("orphan_pages_found"), flushed + overwritten);
    deletions_done(&mut c);
    assert_eq!(contents(&mut c, "keep", ("0", "list")), want);
    assert_eq!(c.cmd(&["GET", "overwritten"]), Resp::bulk("x"));

    // A deletion of many pages cut short: the manifest's delete is on disk, the queue of its
    // pages was only in memory.
    assert_eq!(c.cmd(&["DEL", "big"]), Resp::Int(1));
    assert_eq!(c.cmd(&["SAVE"]), Resp::ok());
    assert!(
        c.info_int("page_gc_pending") > 0,
        "the deletion finished first"
    );
    s.restart(a);
    let mut c = s.client();
    runs_done(&mut c, 1);
    assert!(c.info_int("orphan_pages_found") > 0);
    deletions_done(&mut c);
    assert_eq!(c.cmd(&["EXISTS", "big"]), Resp::Int(0));
    assert!(s.shutdown());

    // Nothing unreachable is left, and every live value reads back whole.
    s.restart(a);
    let mut c = s.client();
    runs_done(&mut c, 1);
    assert_eq!(c.info_int("orphan_pages_found"), 0);
    assert_eq!(contents(&mut c, "keep", ("0", "list")), want);
}

#[test]
fn manifests_moved_while_the_collector_runs_keep_their_pages() {
    let a = &args();
    let mut s = Server::start(a);
    let mut c = s.client();
    build_hash(&mut c, "keep", 300);
    build_others(&mut c, 300);
    // Enough other keys that the mark scan takes many pages, so the commands below run while
    // it is under way (the file-per-key store scans far slower than the others).
    let fillers = if test_backend() == "fs" { 200 } else { 2000 };
    for i in 0..fillers {
        let mut cmd = vec!["MSET".to_string()];
        for j in 0..100 {
            cmd.push(format!("filler:{i}:{j}"));
            cmd.push("v".to_string());
        }
        let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
        assert_eq!(c.cmd(&cmd), Resp::ok());
    }
    let want = contents(&mut c, "keep", ("0", "list"));
    assert!(s.shutdown());

    for round in 0..3 {
        s.restart(a);
        let mut c = s.client();
        // Once the mark scan is under way: the manifest has not been read yet, and moving it
        // under a name the scan has passed would hide it from the scan.
        wait_until(Duration::from_secs(10), "the mark scan", || {
            info_str(&mut c, "page_collector_phase") == "mark"
        });
        // Moved to names that sort before and after the scan position, and to another DB.
        let (old, new) = if round % 2 == 0 {
            ("keep", "a-keep")
        } else {
            ("a-keep", "keep")
        };
        assert_eq!(c.cmd(&["RENAME", old, new]), Resp::ok());
        let (list_db, from_db) = if round % 2 == 0 {
            ("2", "0")
        } else {
            ("0", "2")
        };
        c.cmd(&["SELECT", from_db]);
        assert_eq!(c.cmd(&["MOVE", "list", list_db]), Resp::Int(1));
        c.cmd(&["SELECT", "0"]);
        c.cmd(&["SET", &format!("filler:0:{round}"), "w"]);
        runs_done(&mut c, 1);
        deletions_done(&mut c);
        assert_eq!(c.info_int("orphan_pages_found"), 0, "round {round}");
        assert_eq!(
            contents(&mut c, new, (list_db, "list")),
            want,
            "round {round}"
        );
        assert!(s.shutdown());
    }
    s.restart(a);
    let mut c = s.client();
    runs_done(&mut c, 1);
    assert_eq!(contents(&mut c, "a-keep", ("2", "list")), want);
}
