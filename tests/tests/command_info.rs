//! COMMAND INFO key specs and COMMAND DOCS: a client that does not know a command finds its
//! keys from the key specs alone (as cluster clients and proxies do), and they agree with
//! COMMAND GETKEYS; where kvtier's answer is Redis's exactly (GET), it is compared byte for byte.

use kvtier_tests::{Client, RedisServer, Resp, Server};

/// A RESP2 map reply (a flat array) as (name, value) pairs.
fn pairs(r: &Resp) -> Vec<(String, Resp)> {
    let Resp::Array(items) = r else {
        panic!("not a map: {r:?}")
    };
    items
        .chunks(2)
        .map(|p| (p[0].as_str(), p[1].clone()))
        .collect()
}

fn field(r: &Resp, name: &str) -> Resp {
    pairs(r)
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name} in {r:?}"))
        .1
}

/// The key positions of `args` according to the key specs of COMMAND INFO.
fn keys_by_specs(c: &mut Client, args: &[&str]) -> Vec<String> {
    let Resp::Array(info) = c.cmd(&["COMMAND", "INFO", args[0]]) else {
        panic!()
    };
    let Resp::Array(info) = &info[0] else {
        panic!()
    };
    let Resp::Array(specs) = &info[8] else {
        panic!()
    };
    let mut keys = Vec::new();
    for spec in specs {
        let begin = field(spec, "begin_search");
        let begin_spec = field(&begin, "spec");
        let start = match field(&begin, "type").as_str().as_str() {
            "index" => field(&begin_spec, "index").as_int() as usize,
            "keyword" => {
                let word = field(&begin_spec, "keyword").as_str();
                let from = field(&begin_spec, "startfrom").as_int() as usize;
                match (from..args.len()).find(|&i| args[i].eq_ignore_ascii_case(&word)) {
                    Some(i) => i + 1,
                    None => continue,
                }
            }
            other => panic!("begin_search {other}"),
        };
        let find = field(spec, "find_keys");
        let fs = field(&find, "spec");
        match field(&find, "type").as_str().as_str() {
            "range" => {
                let last = field(&fs, "lastkey").as_int();
                let step = field(&fs, "keystep").as_int() as usize;
                let limit = field(&fs, "limit").as_int();
                let end = if last >= 0 {
                    start + last as usize
                } else if limit > 1 {
                    start + (args.len() - start) / limit as usize - 1
                } else {
                    (args.len() as i64 + last) as usize
                };
                keys.extend((start..=end).step_by(step).map(|i| args[i].to_string()));
            }
            "keynum" => {
                let n: usize = args[start + field(&fs, "keynumidx").as_int() as usize]
                    .parse()
                    .unwrap();
                let first = start + field(&fs, "firstkey").as_int() as usize;
                let step = field(&fs, "keystep").as_int() as usize;
                keys.extend((0..n).map(|i| args[first + i * step].to_string()));
            }
            other => panic!("find_keys {other}"),
        }
    }
    keys
}

#[test]
fn key_specs_find_the_keys_getkeys_names() {
    let s = Server::start(&[]);
    let mut c = s.client();
    for req in [
        &["GET", "k"][..],
        &["MSET", "a", "1", "b", "2", "c", "3"],
        &["BLPOP", "l1", "l2", "0"],
        &["EVAL", "return 1", "2", "x", "y", "arg"],
        &["ZUNIONSTORE", "dst", "2", "z1", "z2", "WEIGHTS", "1", "2"],
        &["RENAME", "from", "to"],
        &["LMOVE", "src", "dst", "LEFT", "RIGHT"],
        &["XREAD", "COUNT", "2", "STREAMS", "s1", "s2", "0", "0"],
        &["GEORADIUS", "g", "0", "0", "1", "km", "STORE", "out"],
        &["SINTERCARD", "2", "s1", "s2", "LIMIT", "1"],
    ] {
        let mut by_specs = keys_by_specs(&mut c, req);
        let mut cmd = vec!["COMMAND", "GETKEYS"];
        cmd.extend_from_slice(req);
        let Resp::Array(got) = c.cmd(&cmd) else {
            panic!("GETKEYS {req:?}")
        };
        let mut got: Vec<String> = got.iter().map(Resp::as_str).collect();
        by_specs.sort();
        got.sort();
        assert_eq!(by_specs, got, "{req:?}");
    }
}

#[test]
fn command_info_of_get_and_docs_match_redis_in_shape() {
    let s = Server::start(&[]);
    let mut c = s.client();
    if let Some(redis) = RedisServer::start(&[]) {
        let mut r = redis.client();
        for cmd in [
            &["COMMAND", "INFO", "GET"][..],
            &["COMMAND", "INFO", "SWAPDB"],
        ] {
            assert_eq!(c.cmd(cmd), r.cmd(cmd), "{cmd:?}");
        }
    }
    let docs = c.cmd(&["COMMAND", "DOCS", "GET", "LPUSH", "NOSUCH"]);
    let docs = pairs(&docs);
    assert_eq!(docs.len(), 2, "unknown commands are left out");
    assert_eq!(field(&docs[0].1, "group"), Resp::bulk("string"));
    assert_eq!(field(&docs[1].1, "group"), Resp::bulk("list"));
    let Resp::Array(all) = c.cmd(&["COMMAND", "DOCS"]) else {
        panic!()
    };
    assert_eq!(all.len() as i64, 2 * c.cmd(&["COMMAND", "COUNT"]).as_int());
}

/// The names of a COMMAND LIST reply, sorted.
fn listed(c: &mut Client, filter: &[&str]) -> Vec<String> {
    let mut cmd = vec!["COMMAND", "LIST"];
    cmd.extend_from_slice(filter);
    let Resp::Array(items) = c.cmd(&cmd) else {
        panic!("COMMAND LIST {filter:?}")
    };
    let mut names: Vec<String> = items.iter().map(|r| r.as_str().to_string()).collect();
    names.sort();
    names
}

/// COMMAND LIST names subcommands (`config|get`) and applies FILTERBY as redis-server 7.0.15
/// does: for the families kvtier serves whole, the same names; a module filter lists nothing.
#[test]
fn command_list_names_subcommands_and_filters_as_redis() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let all = listed(&mut c, &[]);
    for name in ["get", "config", "config|get", "client|list", "xinfo|stream"] {
        assert!(all.iter().any(|n| n == name), "{name} missing");
    }
    let filters: [&[&str]; 7] = [
        &["FILTERBY", "PATTERN", "CONFIG*"],
        &["FILTERBY", "PATTERN", "client|*"],
        &["FILTERBY", "ACLCAT", "hyperloglog"],
        &["FILTERBY", "ACLCAT", "HASH"],
        &["FILTERBY", "ACLCAT", "scripting"],
        &["FILTERBY", "ACLCAT", "nosuch"],
        &["FILTERBY", "MODULE", "x"],
    ];
    assert!(listed(&mut c, filters[6]).is_empty());
    assert_eq!(listed(&mut c, filters[1]).len(), 16, "CLIENT's subcommands");
    if let Some(redis) = RedisServer::start(&[]) {
        let mut r = redis.client();
        for f in filters {
            assert_eq!(listed(&mut c, f), listed(&mut r, f), "{f:?}");
        }
        // Every name kvtier lists, Redis lists too.
        let theirs = listed(&mut r, &[]);
        for name in &all {
            assert!(theirs.contains(name), "{name} is not Redis's");
        }
    }
    assert_eq!(
        c.cmd(&["COMMAND", "LIST", "FILTERBY", "OTHER", "x"]),
        Resp::err("ERR syntax error")
    );
}
