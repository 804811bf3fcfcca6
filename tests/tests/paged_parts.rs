//! A long paged list's or stream's manifest is stored in parts (issue 19): a push, a pop, an
//! LSET, an XADD or an XDEL saves the page it touches and one part of the manifest, not a table
//! of every page that grows with the value. The value reads back whole after restarts (its
//! manifest read from its parts), after growing and after shrinking back to one record, and its
//! part records go with it: nothing is left for the page collector.

use kvtier_tests::{paged_args, wait_until, Client, Resp, Server};
use std::collections::VecDeque;
use std::time::Duration;

/// Lists of 256 bytes or more are paged, in pages of about 64 bytes (four of the elements
/// below), saved at once.
fn args() -> Vec<&'static str> {
    paged_args("256", "64", &["--cache-flush-delay", "0"])
}

/// What a command does to the model of the list.
type Step = Box<dyn Fn(&mut VecDeque<String>)>;

/// Deletes `key`, waits for its pages to be deleted and saved, and checks after a restart that
/// the page collector finds nothing of it left.
fn deleted_without_leftovers(s: &mut Server, a: &[&str], key: &str) {
    let mut c = s.client();
    assert_eq!(c.cmd(&["DEL", key]), Resp::Int(1));
    wait_until(Duration::from_secs(30), "pages deleted", || {
        c.info_int("page_gc_pending") == 0
    });
    settle(&mut c);
    assert!(s.shutdown(), "SHUTDOWN failed");
    s.restart(a);
    nothing_left_for_the_collector(&mut s.client(), key);
}

/// Waits for the page collector's first run since the start and checks it found no record
/// that no value names.
fn nothing_left_for_the_collector(c: &mut Client, what: &str) {
    wait_until(Duration::from_secs(30), "a page collector run", || {
        c.info_int("page_collector_runs") >= 1
    });
    assert_eq!(
        c.info_int("orphan_pages_found"),
        0,
        "records of a deleted {what} were left behind"
    );
}

fn settle(c: &mut Client) {
    wait_until(Duration::from_secs(30), "everything saved", || {
        c.info_int("dirty_keys") == 0
    });
}

fn push_all(c: &mut Client, cmd: &str, key: &str, elems: &[String]) {
    for chunk in elems.chunks(100) {
        let mut a = vec![cmd, key];
        a.extend(chunk.iter().map(String::as_str));
        assert!(matches!(c.cmd(&a), Resp::Int(_)), "{cmd}");
    }
}

fn check(c: &mut Client, key: &str, model: &VecDeque<String>, when: &str) {
    assert_eq!(
        c.cmd(&["LLEN", key]),
        Resp::Int(model.len() as i64),
        "{when}: LLEN"
    );
    let want: Vec<Resp> = model.iter().map(|e| Resp::bulk(e)).collect();
    assert_eq!(
        c.cmd(&["LRANGE", key, "0", "-1"]),
        Resp::Array(want),
        "{when}: LRANGE"
    );
}

#[test]
fn a_long_lists_manifest_is_saved_in_parts() {
    let a = &args();
    let mut s = Server::start(a);
    let mut c = s.client();
    let mut model: VecDeque<String> = (0..16_000).map(|i| format!("e{i:05}")).collect();
    push_all(&mut c, "RPUSH", "l", model.make_contiguous());
    settle(&mut c);
    // Nothing is evicted (no memory limit): every page is resident.
    let pages = c.info_int("resident_pages");
    assert!(pages > 3000, "the list has {pages} pages");
    // In one record, the manifest alone would be 16 bytes per page, rewritten by every save.
    let one_record = pages * 16;
    let mut steps: Vec<(Vec<String>, Step)> = vec![
        (
            vec!["LPUSH".into(), "l".into(), "head".into()],
            Box::new(|m| m.push_front("head".into())),
        ),
        (
            vec!["RPUSH".into(), "l".into(), "tail".into()],
            Box::new(|m| m.push_back("tail".into())),
        ),
        (
            vec!["LPOP".into(), "l".into(), "3".into()],
            Box::new(|m| {
                m.drain(..3);
            }),
        ),
        (
            vec!["RPOP".into(), "l".into()],
            Box::new(|m| {
                m.pop_back();
            }),
        ),
        (
            vec!["LSET".into(), "l".into(), "8000".into(), "middle".into()],
            Box::new(|m| m[8000] = "middle".into()),
        ),
    ];
    for (cmd, apply) in steps.drain(..) {
        let before = c.info_int("bytes_saved");
        let argv: Vec<&str> = cmd.iter().map(String::as_str).collect();
        assert!(!matches!(c.cmd(&argv), Resp::Error(_)), "{cmd:?}");
        apply(&mut model);
        settle(&mut c);
        let written = c.info_int("bytes_saved") - before;
        assert!(
            written > 0 && written * 4 < one_record,
            "{cmd:?} saved {written} bytes; the manifest in one record is {one_record}"
        );
    }
    check(&mut c, "l", &model, "before a restart");

    // Read back from its parts, and grown from there at both ends.
    assert!(s.shutdown(), "SHUTDOWN failed");
    s.restart(a);
    let mut c = s.client();
    check(&mut c, "l", &model, "after a restart");
    let more: Vec<String> = (0..3000).map(|i| format!("n{i:05}")).collect();
    push_all(&mut c, "LPUSH", "l", &more);
    push_all(&mut c, "RPUSH", "l", &more);
    for e in &more {
        model.push_front(e.clone());
        model.push_back(e.clone());
    }
    assert!(s.shutdown(), "SHUTDOWN failed");
    s.restart(a);
    let mut c = s.client();
    check(&mut c, "l", &model, "after growing and a restart");

    // Back to one record.
    assert_eq!(c.cmd(&["LTRIM", "l", "10", "400"]), Resp::ok());
    let kept: VecDeque<String> = model.range(10..=400).cloned().collect();
    settle(&mut c);
    assert!(s.shutdown(), "SHUTDOWN failed");
    s.restart(a);
    let mut c = s.client();
    check(&mut c, "l", &kept, "after LTRIM and a restart");

    // A second long list, copied and deleted: its pages and parts go with it.
    let model: VecDeque<String> = (0..16_000).map(|i| format!("f{i:05}")).collect();
    push_all(&mut c, "RPUSH", "m", &Vec::from(model.clone()));
    assert_eq!(c.cmd(&["COPY", "m", "m2"]), Resp::Int(1));
    assert_eq!(c.cmd(&["DEL", "m"]), Resp::Int(1));
    assert_eq!(c.cmd(&["DEL", "l"]), Resp::Int(1));
    wait_until(Duration::from_secs(30), "pages deleted", || {
        c.info_int("page_gc_pending") == 0
    });
    settle(&mut c);
    assert!(s.shutdown(), "SHUTDOWN failed");
    s.restart(a);
    let mut c = s.client();
    check(&mut c, "m2", &model, "a copy after a restart");
    nothing_left_for_the_collector(&mut c, "list");
}

/// Killed while pushing to a long list whose saves run back to back: after the restart the
/// list is a prefix of what was pushed, at least what a SAVE made durable, its manifest's parts
/// agreeing with its pages (a torn save would show a wrong count, a gap or a failed load).
#[test]
fn a_long_list_killed_mid_save_reads_back_as_a_prefix() {
    let a = &args();
    let mut s = Server::start(a);
    let mut c = s.client();
    let all: Vec<String> = (0..40_000).map(|i| format!("k{i:05}")).collect();
    push_all(&mut c, "RPUSH", "q", &all[..16_000]);
    assert_eq!(c.cmd(&["SAVE"]), Resp::ok());
    let durable = 16_000;
    // Pushes at both ends would not give a prefix: the tail only, in batches, then the kill.
    push_all(&mut c, "RPUSH", "q", &all[16_000..]);
    s.kill9();
    s.restart(a);
    let mut c = s.client();
    let Resp::Int(n) = c.cmd(&["LLEN", "q"]) else {
        panic!("LLEN after the kill")
    };
    let n = n as usize;
    assert!(
        (durable..=all.len()).contains(&n),
        "{n} elements after the kill"
    );
    eprintln!("{n} of {} elements after the kill", all.len());
    let want: VecDeque<String> = all[..n].iter().cloned().collect();
    check(&mut c, "q", &want, "after the kill");
    assert_eq!(c.info_int("load_errors"), 0);
}

/// Every entry of stream `key` as "id field value" strings.
fn entries(c: &mut Client, key: &str) -> Vec<String> {
    let Resp::Array(all) = c.cmd(&["XRANGE", key, "-", "+"]) else {
        panic!("XRANGE {key}")
    };
    all.iter()
        .map(|e| match e {
            Resp::Array(p) => match (&p[0], &p[1]) {
                (Resp::Bulk(id), Resp::Array(f)) => {
                    let mut s = String::from_utf8_lossy(id).into_owned();
                    for x in f {
                        if let Resp::Bulk(b) = x {
                            s.push(' ');
                            s.push_str(&String::from_utf8_lossy(b));
                        }
                    }
                    s
                }
                r => panic!("entry {r:?}"),
            },
            r => panic!("entry {r:?}"),
        })
        .collect()
}

#[test]
fn a_long_streams_page_index_is_saved_in_parts() {
    let a = &args();
    let mut s = Server::start(a);
    let mut c = s.client();
    let mut model: Vec<String> = Vec::new();
    for batch in 0..40 {
        let mut pipe = Vec::new();
        for i in 0..100 {
            let n = batch * 100 + i + 1;
            pipe.push(format!("{n}-0"));
        }
        for id in &pipe {
            assert_eq!(c.cmd(&["XADD", "s", id, "f", "v"]), Resp::bulk(id));
            model.push(format!("{id} f v"));
        }
    }
    settle(&mut c);
    let pages = c.info_int("resident_pages");
    assert!(pages > 1000, "the stream has {pages} pages");
    // In one record, the index alone would be 48 bytes per page, rewritten by every save.
    let one_record = pages * 48;
    for (args, delete) in [
        (vec!["XADD", "s", "9000-0", "f", "v"], None),
        (vec!["XDEL", "s", "2000-0"], Some("2000-0 f v")),
        (vec!["XADD", "s", "9001-0", "f", "v"], None),
    ] {
        let before = c.info_int("bytes_saved");
        assert!(!matches!(c.cmd(&args), Resp::Error(_)), "{args:?}");
        match delete {
            Some(e) => model.retain(|m| m != e),
            None => model.push(format!("{} f v", args[2])),
        }
        settle(&mut c);
        let written = c.info_int("bytes_saved") - before;
        assert!(
            written > 0 && written * 8 < one_record,
            "{args:?} saved {written} bytes; the index in one record is {one_record}"
        );
    }
    assert_eq!(entries(&mut c, "s"), model);
    assert!(s.shutdown(), "SHUTDOWN failed");
    s.restart(a);
    let mut c = s.client();
    assert_eq!(entries(&mut c, "s"), model, "after a restart");
    assert_eq!(c.cmd(&["XLEN", "s"]), Resp::Int(model.len() as i64));
    // Trimmed back to one record, then deleted with its parts.
    assert!(matches!(
        c.cmd(&["XTRIM", "s", "MAXLEN", "50"]),
        Resp::Int(_)
    ));
    let kept = model[model.len() - 50..].to_vec();
    settle(&mut c);
    assert!(s.shutdown(), "SHUTDOWN failed");
    s.restart(a);
    let mut c = s.client();
    assert_eq!(entries(&mut c, "s"), kept, "after XTRIM and a restart");
    deleted_without_leftovers(&mut s, a, "s");
}

/// Members and scores of sorted set `key` in order, as "member score" strings.
fn zrange(c: &mut Client, key: &str) -> Vec<String> {
    let Resp::Array(all) = c.cmd(&["ZRANGE", key, "0", "-1", "WITHSCORES"]) else {
        panic!("ZRANGE {key}")
    };
    all.chunks(2)
        .map(|p| match (&p[0], &p[1]) {
            (Resp::Bulk(m), Resp::Bulk(s)) => format!(
                "{} {}",
                String::from_utf8_lossy(m),
                String::from_utf8_lossy(s)
            ),
            r => panic!("ZRANGE pair {r:?}"),
        })
        .collect()
}

/// The member and score a command leaves, or `None` when it removes its member.
type Member = Option<(&'static str, i64)>;

fn sorted_model(m: &std::collections::BTreeMap<String, i64>) -> Vec<String> {
    let mut v: Vec<(i64, &String)> = m.iter().map(|(k, &s)| (s, k)).collect();
    v.sort();
    v.into_iter().map(|(s, k)| format!("{k} {s}")).collect()
}

#[test]
fn a_long_sorted_sets_segment_table_is_saved_in_parts() {
    let a = &args();
    let mut s = Server::start(a);
    let mut c = s.client();
    let n = 12_000;
    let mut model = std::collections::BTreeMap::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let mut cmd = vec!["ZADD".to_string(), "z".to_string()];
        for i in chunk {
            cmd.push((i * 2).to_string());
            cmd.push(format!("m{i:05}"));
            model.insert(format!("m{i:05}"), (i * 2) as i64);
        }
        let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
        assert_eq!(c.cmd(&cmd), Resp::Int(chunk.len() as i64));
    }
    settle(&mut c);
    // A 64-byte segment page holds at most five of these members: in one record the segment
    // table would be at least 2,400 segments of 38 bytes, rewritten by every save.
    let one_record = (n / 5) as i64 * 38;
    let steps: [(&[&str], Member); 4] = [
        (
            &["ZADD", "z", "12001", "new-middle"],
            Some(("new-middle", 12001)),
        ),
        (&["ZREM", "z", "m00100"], None),
        (&["ZADD", "z", "1", "m00200"], Some(("m00200", 1))),
        (&["ZINCRBY", "z", "3", "m09000"], Some(("m09000", 18003))),
    ];
    for (cmd, put) in steps {
        let before = c.info_int("bytes_saved");
        assert!(!matches!(c.cmd(cmd), Resp::Error(_)), "{cmd:?}");
        match put {
            Some((m, score)) => {
                model.insert(m.to_string(), score);
            }
            None => {
                model.remove(cmd[2]);
            }
        }
        settle(&mut c);
        let written = c.info_int("bytes_saved") - before;
        assert!(
            written > 0 && written * 2 < one_record,
            "{cmd:?} saved {written} bytes; the table in one record is at least {one_record}"
        );
    }
    assert_eq!(zrange(&mut c, "z"), sorted_model(&model));
    assert!(s.shutdown(), "SHUTDOWN failed");
    s.restart(a);
    let mut c = s.client();
    assert_eq!(zrange(&mut c, "z"), sorted_model(&model), "after a restart");
    assert_eq!(c.cmd(&["ZRANK", "z", "m00200"]), Resp::Int(1));
    // Cut back to one record, then deleted with its parts.
    assert!(matches!(
        c.cmd(&["ZREMRANGEBYRANK", "z", "100", "-1"]),
        Resp::Int(_)
    ));
    let kept: Vec<String> = sorted_model(&model).into_iter().take(100).collect();
    settle(&mut c);
    assert!(s.shutdown(), "SHUTDOWN failed");
    s.restart(a);
    let mut c = s.client();
    assert_eq!(
        zrange(&mut c, "z"),
        kept,
        "after ZREMRANGEBYRANK and a restart"
    );
    deleted_without_leftovers(&mut s, a, "z");
}

/// The same for a long sorted set and a long stream written in turns: after the kill each is a
/// prefix of what was added (members with rising scores, entries with rising IDs), at least
/// what the SAVE made durable, and reads back through its manifest's parts.
#[test]
fn a_long_sorted_set_and_stream_killed_mid_save_read_back_as_prefixes() {
    let a = &args();
    let mut s = Server::start(a);
    let mut c = s.client();
    let zadd = |c: &mut Client, range: std::ops::Range<usize>| {
        let mut cmd = vec!["ZADD".to_string(), "z".to_string()];
        for i in range.clone() {
            cmd.push(i.to_string());
            cmd.push(format!("m{i:05}"));
        }
        let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
        assert_eq!(c.cmd(&cmd), Resp::Int(range.len() as i64));
    };
    let xadd = |c: &mut Client, range: std::ops::Range<usize>| {
        for i in range {
            let id = format!("{}-0", i + 1);
            assert_eq!(c.cmd(&["XADD", "s", &id, "f", "v"]), Resp::bulk(&id));
        }
    };
    for b in 0..120 {
        zadd(&mut c, b * 100..(b + 1) * 100);
    }
    xadd(&mut c, 0..4000);
    assert_eq!(c.cmd(&["SAVE"]), Resp::ok());
    for b in 120..300 {
        zadd(&mut c, b * 100..(b + 1) * 100);
        xadd(&mut c, 4000 + (b - 120) * 40..4000 + (b - 119) * 40);
    }
    s.kill9();
    s.restart(a);
    let mut c = s.client();
    let Resp::Int(nz) = c.cmd(&["ZCARD", "z"]) else {
        panic!("ZCARD after the kill")
    };
    let Resp::Int(ns) = c.cmd(&["XLEN", "s"]) else {
        panic!("XLEN after the kill")
    };
    let (nz, ns) = (nz as usize, ns as usize);
    eprintln!("{nz} of 30000 members, {ns} of 11200 entries after the kill");
    assert!((12_000..=30_000).contains(&nz), "{nz} members");
    assert!((4_000..=11_200).contains(&ns), "{ns} entries");
    let want_z: Vec<String> = (0..nz).map(|i| format!("m{i:05} {i}")).collect();
    assert_eq!(zrange(&mut c, "z"), want_z);
    let want_s: Vec<String> = (0..ns).map(|i| format!("{}-0 f v", i + 1)).collect();
    assert_eq!(entries(&mut c, "s"), want_s);
    assert_eq!(c.info_int("load_errors"), 0);
}
