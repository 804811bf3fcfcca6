//! OBJECT and MEMORY: introspection of one key's value.
//!
//! kvtier keeps every value in one in-memory representation, so `OBJECT ENCODING` answers what
//! Redis 7.0 would choose for a value of that size and content, by the encoding thresholds of
//! the configuration (`hash-max-listpack-entries`, `set-max-intset-entries`, …).

use super::flags::*;
use super::{cmd, CommandSpec, Ctx, KeySpec};
use super::{CmdError, CmdResult};
use crate::config::Config;
use crate::util::parse_i64;
use crate::value::Value;
use kvtier_core::CacheValue;

/// The key of `OBJECT <sub> key` / `MEMORY USAGE key`.
const KEY2: KeySpec = KeySpec::Range(2, 2, 1);

pub const COMMANDS: &[CommandSpec] = &[
    cmd("object", -2, READONLY | CONTAINER, KEY2, object),
    cmd("memory", -2, READONLY | CONTAINER, KEY2, memory),
];

/// Redis's refcount of shared integer objects (OBJ_SHARED_REFCOUNT).
const SHARED_REFCOUNT: i64 = i32::MAX as i64;

/// Whether a string is one Redis stores as an integer (`int` encoding): at most 20 bytes and
/// the canonical text of an i64.
fn is_int_string(s: &[u8]) -> bool {
    s.len() <= 20 && parse_i64(s).is_some_and(|n| n.to_string().as_bytes() == s)
}

/// What `OBJECT ENCODING` answers for `v` in Redis 7.0 under `config`'s thresholds.
pub fn encoding(v: &Value, config: &Config) -> &'static str {
    let t = config.settings();
    let small = |count: usize, entries: u64, longest: usize, value: u64| {
        count as u64 <= entries && longest as u64 <= value
    };
    match v {
        Value::Str(s) if is_int_string(s) => "int",
        Value::Str(s) if s.len() <= 44 => "embstr",
        Value::Str(_) => "raw",
        // Redis 7.0 always keeps lists in a quicklist (of listpacks).
        Value::List(_) | Value::PagedList(_) => "quicklist",
        Value::Set(s) => {
            if s.len() as u64 <= t.set_max_intset_entries && s.iter().all(is_int_string) {
                "intset"
            } else {
                "hashtable"
            }
        }
        // Paged only above `paged-value-min-bytes`: far past Redis's listpack limits. A set is
        // paged only when Redis would keep it as a hash table, never as an intset.
        Value::PagedHash(_) | Value::PagedSet(_) => "hashtable",
        // Paged only when Redis would keep it as a skiplist (see `zsets_paged::maybe_page_out`).
        Value::PagedZSet(_) => "skiplist",
        Value::Hash(h) => {
            let longest = h.iter().map(|(k, v)| k.len().max(v.len())).max();
            if small(
                h.len(),
                t.hash_max_listpack_entries,
                longest.unwrap_or(0),
                t.hash_max_listpack_value,
            ) {
                "listpack"
            } else {
                "hashtable"
            }
        }
        Value::ZSet(z) => {
            let longest = z.iter().map(|(m, _)| m.len()).max();
            if small(
                z.len(),
                t.zset_max_listpack_entries,
                longest.unwrap_or(0),
                t.zset_max_listpack_value,
            ) {
                "listpack"
            } else {
                "skiplist"
            }
        }
        Value::Stream(_) | Value::PagedStream(_) => "stream",
    }
}

fn sub_arity(cmd: &str, sub: &[u8]) -> CmdError {
    CmdError::msg(format!(
        "ERR wrong number of arguments for '{cmd}|{}' command",
        String::from_utf8_lossy(sub).to_lowercase()
    ))
}

fn unknown_sub(cmd: &str, sub: &[u8]) -> CmdError {
    CmdError::msg(format!(
        "ERR unknown subcommand '{}'. Try {cmd} HELP.",
        String::from_utf8_lossy(sub)
    ))
}

/// Replies a help text as an array of status lines, as Redis's addReplyHelp does.
pub fn help(ctx: &mut Ctx, lines: &[&str]) {
    ctx.out.array(lines.len());
    for l in lines {
        ctx.out.simple(l);
    }
}

const OBJECT_HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
];

fn lfu_policy(config: &Config) -> bool {
    config
        .get("maxmemory-policy")
        .is_some_and(|p| p.ends_with("-lfu"))
}

fn object(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let sub = args[1].to_ascii_lowercase();
    match sub.as_slice() {
        b"help" if args.len() == 2 => {
            help(ctx, OBJECT_HELP);
            return Ok(());
        }
        b"encoding" | b"refcount" | b"idletime" | b"freq" if args.len() != 3 => {
            return Err(sub_arity("object", &args[1]))
        }
        b"encoding" | b"refcount" | b"idletime" | b"freq" => {}
        _ => {
            return Err(unknown_sub("OBJECT", &args[1]));
        }
    }
    let lfu = lfu_policy(&ctx.shared.config);
    let mut db = ctx.engine.db(ctx.client.db, ctx.now_ms);
    let Some(v) = db.get(&args[2]) else {
        ctx.out.null();
        return Ok(());
    };
    match sub.as_slice() {
        b"encoding" => {
            let e = encoding(v, &ctx.shared.config);
            ctx.out.bulk(e.as_bytes());
        }
        b"refcount" => {
            // Redis shares the integers 0..9999 when it has no maxmemory; kvtier's maxmemory
            // bounds a cache, not the data, so it answers as such a Redis.
            let shared = matches!(v, Value::Str(s) if is_int_string(s)
                && parse_i64(s).is_some_and(|n| (0..10_000).contains(&n)));
            ctx.out.int(if shared { SHARED_REFCOUNT } else { 1 });
        }
        b"idletime" if lfu => {
            return Err(CmdError::msg(
                "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that \
             when switching between policies at runtime LRU and LFU data will take some time \
             to adjust.",
            ))
        }
        // The cache's LRU clock is not exposed per key: every key reads as just used.
        b"idletime" => ctx.out.int(0),
        b"freq" if !lfu => return Err(CmdError::msg(
            "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please \
             note that when switching between policies at runtime LRU and LFU data will take \
             some time to adjust.",
        )),
        _ => ctx.out.int(0),
    }
    Ok(())
}

const MEMORY_HELP: &[&str] = &[
    "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
    "HELP",
    "    Prints this help.",
];

/// Bytes Redis would report for a key: the value's size in the cache plus the key and the
/// per-key overhead (dict entry and object header).
fn usage(key: &[u8], v: &Value) -> i64 {
    const KEY_OVERHEAD: usize = 56;
    (v.mem_size() + key.len() + KEY_OVERHEAD) as i64
}

fn memory(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let sub = args[1].to_ascii_lowercase();
    match sub.as_slice() {
        b"help" if args.len() == 2 => help(ctx, MEMORY_HELP),
        b"usage" if args.len() >= 3 => {
            let mut i = 3;
            while i < args.len() {
                if args[i].eq_ignore_ascii_case(b"samples") && i + 1 < args.len() {
                    if parse_i64(&args[i + 1]).is_none_or(|n| n < 0) {
                        return Err(CmdError::NotInt);
                    }
                    i += 2;
                } else {
                    return Err(CmdError::Syntax);
                }
            }
            let mut db = ctx.engine.db(ctx.client.db, ctx.now_ms);
            match db.get(&args[2]) {
                None => ctx.out.null(),
                Some(v) => {
                    let n = usage(&args[2], v);
                    ctx.out.int(n);
                }
            }
        }
        b"doctor" if args.len() == 2 => ctx.out.verbatim(
            "Hi Sam, I can't find any memory issue in your instance. I can only account for \
             what occurs on this base.",
        ),
        b"malloc-stats" if args.len() == 2 => ctx
            .out
            .verbatim("Stats not supported for the current allocator"),
        b"purge" if args.len() == 2 => ctx.out.ok(),
        b"stats" if args.len() == 2 => {
            let s = &ctx.shared;
            let fields: [(&str, i64); 3] = [
                ("peak.allocated", s.used_memory_peak as i64),
                ("total.allocated", s.used_memory as i64),
                ("startup.allocated", s.used_memory_startup as i64),
            ];
            ctx.out.map(fields.len());
            for (k, v) in &fields {
                ctx.out.bulk(k.as_bytes());
                ctx.out.int(*v);
            }
        }
        b"usage" | b"doctor" | b"malloc-stats" | b"purge" | b"stats" | b"help" => {
            return Err(sub_arity("memory", &args[1]))
        }
        _ => return Err(unknown_sub("MEMORY", &args[1])),
    }
    Ok(())
}
