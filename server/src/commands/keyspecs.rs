//! COMMAND INFO's key specifications and COMMAND DOCS, derived from each command's own
//! [`KeySpec`] and flags (kvtier keeps no copy of Redis's command documentation): where a
//! command's keys start (`begin_search`) and how many follow (`find_keys`), which cluster
//! clients and proxies use to find the keys of commands they do not know.

use super::{flags::*, CommandSpec, KeySpec};
use crate::reply::Reply;

/// How a key spec finds its first key.
enum Begin {
    Index(i64),
    Keyword(&'static str, i64),
    Unknown,
}

/// How a key spec finds the keys after the first.
enum Find {
    /// `lastkey` relative to the first key (negative: from the end), `keystep`, `limit`.
    Range(i64, i64, i64),
    /// `keynumidx`, `firstkey`, `keystep`, relative to the begin position.
    Keynum(i64, i64, i64),
    Unknown,
}

/// Keys a command only reads (the sources of a STORE variant).
const READ: &[&str] = &["RO", "access"];
/// A STORE variant's destination, replaced whole.
const STORE: &[&str] = &["OW", "update"];

type Spec = (&'static [&'static str], Begin, Find);

fn specs(c: &CommandSpec) -> Vec<Spec> {
    let own = key_flags(c);
    match c.keys {
        KeySpec::None => Vec::new(),
        KeySpec::Range(first, last, step) => {
            let last = if last < 0 {
                last as i64
            } else {
                (last - first) as i64
            };
            vec![(
                own,
                Begin::Index(first as i64),
                Find::Range(last, step as i64, 0),
            )]
        }
        KeySpec::Numkeys(at) => vec![(own, Begin::Index(at as i64), Find::Keynum(0, 1, 1))],
        KeySpec::DestNumkeys => vec![
            (STORE, Begin::Index(1), Find::Range(0, 1, 0)),
            (READ, Begin::Index(2), Find::Keynum(0, 1, 1)),
        ],
        // BY and GET patterns name keys too: not computable from positions, as in Redis.
        KeySpec::SortStore => vec![
            (READ, Begin::Index(1), Find::Range(0, 1, 0)),
            (STORE, Begin::Unknown, Find::Unknown),
        ],
        KeySpec::GeoStore(base) => vec![
            (READ, Begin::Index(1), Find::Range(0, 1, 0)),
            (
                STORE,
                Begin::Keyword("STORE", base as i64),
                Find::Range(0, 1, 0),
            ),
            (
                STORE,
                Begin::Keyword("STOREDIST", base as i64),
                Find::Range(0, 1, 0),
            ),
        ],
        // XREAD/XREADGROUP: the keys are the first half of what follows STREAMS.
        KeySpec::Streams => vec![(own, Begin::Keyword("STREAMS", 1), Find::Range(-1, 1, 2))],
    }
}

/// The access flags of the keys of `c`: read, plain overwrite, delete or read-modify-write.
fn key_flags(c: &CommandSpec) -> &'static [&'static str] {
    match c.name {
        _ if c.has(READONLY) => &["RO", "access"],
        "set" | "mset" | "setex" | "psetex" | "msetnx" | "restore" => &["OW", "update"],
        "del" | "unlink" => &["RM", "delete"],
        _ if c.has(WRITE) => &["RW", "access", "update"],
        _ => &["RO"],
    }
}

/// Writes the key specs of `c` (COMMAND INFO's ninth field).
pub fn write_key_specs(out: &mut Reply, c: &CommandSpec) {
    let specs = specs(c);
    out.array(specs.len());
    for (flags, begin, find) in specs {
        out.map(3);
        out.bulk_str("flags");
        out.set(flags.len());
        for f in flags {
            out.simple(f);
        }
        out.bulk_str("begin_search");
        out.map(2);
        match begin {
            Begin::Index(i) => {
                out.bulk_str("type");
                out.bulk_str("index");
                out.bulk_str("spec");
                out.map(1);
                out.bulk_str("index");
                out.int(i);
            }
            Begin::Keyword(word, from) => {
                out.bulk_str("type");
                out.bulk_str("keyword");
                out.bulk_str("spec");
                out.map(2);
                out.bulk_str("keyword");
                out.bulk_str(word);
                out.bulk_str("startfrom");
                out.int(from);
            }
            Begin::Unknown => {
                out.bulk_str("type");
                out.bulk_str("unknown");
                out.bulk_str("spec");
                out.map(0);
            }
        }
        out.bulk_str("find_keys");
        out.map(2);
        match find {
            Find::Range(last, step, limit) => {
                out.bulk_str("type");
                out.bulk_str("range");
                out.bulk_str("spec");
                out.map(3);
                for (name, v) in [("lastkey", last), ("keystep", step), ("limit", limit)] {
                    out.bulk_str(name);
                    out.int(v);
                }
            }
            Find::Keynum(idx, first, step) => {
                out.bulk_str("type");
                out.bulk_str("keynum");
                out.bulk_str("spec");
                out.map(3);
                for (name, v) in [("keynumidx", idx), ("firstkey", first), ("keystep", step)] {
                    out.bulk_str(name);
                    out.int(v);
                }
            }
            Find::Unknown => {
                out.bulk_str("type");
                out.bulk_str("unknown");
                out.bulk_str("spec");
                out.map(0);
            }
        }
    }
}

/// Redis's documentation group of a command, from its ACL category.
fn group(c: &CommandSpec) -> &'static str {
    match super::type_category(c).unwrap_or("") {
        "@string" => "string",
        "@list" => "list",
        "@hash" => "hash",
        "@set" => "set",
        "@sortedset" => "sorted-set",
        "@transaction" => "transactions",
        "@pubsub" => "pubsub",
        "@connection" => "connection",
        "@keyspace" => "generic",
        "@bitmap" => "bitmap",
        "@scripting" => "scripting",
        "@hyperloglog" => "hyperloglog",
        "@geo" => "geo",
        "@stream" => "stream",
        _ => "server",
    }
}

/// COMMAND DOCS: for each command, its documentation group
/// (kvtier ships no summaries of its own yet).
pub fn write_docs(out: &mut Reply, cmds: &[&CommandSpec]) {
    out.map(cmds.len());
    for c in cmds {
        out.bulk_str(c.name);
        out.map(1);
        out.bulk_str("group");
        out.bulk_str(group(c));
    }
}
