//! Generic key commands. Keyspace-wide ones (KEYS, SCAN, DBSIZE, RANDOMKEY) merge a scan of the
//! disk store with the cache, see [`keyspace_keys`].

use super::flags::*;
use super::{cmd, Action, CommandSpec, Ctx, KeySpec, OtherDbKey, ALL_KEYS, KEY1};
use super::{CmdError, CmdResult};
use crate::glob::glob_match;
use crate::keyscan::{KeyScan, Kind};
use crate::util::parse_i64;
use crate::value::Value;

pub const COMMANDS: &[CommandSpec] = &[
    cmd("del", -2, WRITE, ALL_KEYS, del),
    cmd("unlink", -2, WRITE | FAST, ALL_KEYS, del),
    cmd("exists", -2, READONLY | FAST, ALL_KEYS, exists),
    cmd("type", 2, READONLY | FAST, KEY1, type_),
    cmd("rename", 3, WRITE, KeySpec::Range(1, 2, 1), rename),
    cmd(
        "renamenx",
        3,
        WRITE | FAST,
        KeySpec::Range(1, 2, 1),
        renamenx,
    ),
    cmd("expire", -3, WRITE | FAST, KEY1, expire),
    cmd("pexpire", -3, WRITE | FAST, KEY1, pexpire),
    cmd("expireat", -3, WRITE | FAST, KEY1, expireat),
    cmd("pexpireat", -3, WRITE | FAST, KEY1, pexpireat),
    cmd("ttl", 2, READONLY | FAST, KEY1, ttl),
    cmd("pttl", 2, READONLY | FAST, KEY1, pttl),
    cmd("expiretime", 2, READONLY | FAST, KEY1, expiretime),
    cmd("pexpiretime", 2, READONLY | FAST, KEY1, pexpiretime),
    cmd("persist", 2, WRITE | FAST, KEY1, persist),
    // MOVE and COPY … DB also need the key in the target DB; the server adds it.
    cmd("move", 3, WRITE | FAST, KEY1, move_).with_other_db(OtherDbKey::KeyInDbArg),
    cmd("copy", -3, WRITE | DENYOOM, KeySpec::Range(1, 2, 1), copy)
        .with_other_db(OtherDbKey::DestInDbOption),
    cmd("touch", -2, READONLY | FAST, ALL_KEYS, exists),
    cmd("keys", 2, READONLY, KeySpec::None, keys),
    cmd("scan", -2, READONLY, KeySpec::None, scan),
    cmd("randomkey", 1, READONLY, KeySpec::None, randomkey),
    cmd("dbsize", 1, READONLY | FAST, KeySpec::None, dbsize),
    cmd(
        "swapdb",
        3,
        WRITE | FAST,
        KeySpec::None,
        super::swapdb::swapdb,
    ),
];

fn del(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let mut n = 0;
    for k in &args[1..] {
        if ctx.db().remove(k).is_some() {
            n += 1;
            notify(ctx, "del", k);
        }
    }
    ctx.out.int(n as i64);
    Ok(())
}

/// A generic keyspace notification (class `g`) on the client's DB.
fn notify(ctx: &mut Ctx, event: &str, key: &[u8]) {
    super::notify::notify(ctx, super::notify::class::GENERIC, event, key);
}

fn exists(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let mut db = ctx.db();
    let n = args[1..].iter().filter(|k| db.exists(k)).count();
    ctx.out.int(n as i64);
    Ok(())
}

fn type_(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let name = ctx.db().get(&args[1]).map_or("none", Value::type_name);
    ctx.out.simple(name);
    Ok(())
}

fn rename_common(ctx: &mut Ctx, args: &[Vec<u8>], nx: bool) -> CmdResult {
    let mut db = ctx.db();
    let ttl = db.expire_at(&args[1]);
    let Some(v) = db.get(&args[1]).cloned() else {
        return Err(CmdError::NoSuchKey);
    };
    if args[1] == args[2] {
        if nx {
            ctx.out.int(0)
        } else {
            ctx.out.ok()
        };
        return Ok(());
    }
    if nx && db.contains(&args[2]) {
        ctx.out.int(0);
        return Ok(());
    }
    db.remove(&args[1]);
    db.insert_with_expire(&args[2], v, ttl);
    notify(ctx, "rename_from", &args[1]);
    notify(ctx, "rename_to", &args[2]);
    if nx {
        ctx.out.int(1)
    } else {
        ctx.out.ok()
    }
    Ok(())
}

fn rename(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    rename_common(ctx, args, false)
}

fn renamenx(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    rename_common(ctx, args, true)
}

fn expire_generic(ctx: &mut Ctx, args: &[Vec<u8>], unit_ms: i64, absolute: bool) -> CmdResult {
    let cond = super::args::ExpireCond::parse(&args[3..])?;
    // Options are checked before the time value, as in Redis.
    let Some(n) = parse_i64(&args[2]) else {
        return Err(CmdError::NotInt);
    };
    let name = String::from_utf8_lossy(&args[0]).to_lowercase();
    let Some(ms) = n.checked_mul(unit_ms) else {
        return Err(CmdError::msg(format!(
            "ERR invalid expire time in '{name}' command"
        )));
    };
    let when = if absolute {
        Some(ms)
    } else {
        ms.checked_add(ctx.now_ms)
    };
    let Some(when) = when else {
        return Err(CmdError::msg(format!(
            "ERR invalid expire time in '{name}' command"
        )));
    };
    let mut db = ctx.db();
    if !db.contains(&args[1]) {
        ctx.out.int(0);
        return Ok(());
    }
    if !cond.allows(db.expire_at(&args[1]), when) {
        ctx.out.int(0);
        return Ok(());
    }
    db.set_expire(&args[1], Some(when));
    let event = if when <= ctx.now_ms { "del" } else { "expire" };
    notify(ctx, event, &args[1]);
    ctx.out.int(1);
    Ok(())
}

fn expire(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    expire_generic(ctx, args, 1000, false)
}
fn pexpire(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    expire_generic(ctx, args, 1, false)
}
fn expireat(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    expire_generic(ctx, args, 1000, true)
}
fn pexpireat(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    expire_generic(ctx, args, 1, true)
}

fn ttl_generic(ctx: &mut Ctx, args: &[Vec<u8>], div: i64, absolute: bool) {
    let now = ctx.now_ms;
    let mut db = ctx.db();
    if !db.exists(&args[1]) {
        return ctx.out.int(-2);
    }
    match db.expire_at(&args[1]) {
        None => ctx.out.int(-1),
        Some(t) if absolute => ctx.out.int(t / div),
        // Redis rounds the remaining time to the nearest unit.
        Some(t) => ctx.out.int(((t - now).max(0) + div / 2) / div),
    }
}

fn ttl(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    ttl_generic(ctx, args, 1000, false);
    Ok(())
}
fn pttl(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    ttl_generic(ctx, args, 1, false);
    Ok(())
}
fn expiretime(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    ttl_generic(ctx, args, 1000, true);
    Ok(())
}
fn pexpiretime(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    ttl_generic(ctx, args, 1, true);
    Ok(())
}

fn persist(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let mut db = ctx.db();
    if db.expire_at(&args[1]).is_some() {
        db.set_expire(&args[1], None);
        notify(ctx, "persist", &args[1]);
        ctx.out.int(1);
    } else {
        ctx.out.int(0);
    }
    Ok(())
}

fn move_(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let target = super::args::db_index(&args[2], ctx.engine.databases())?;
    if target == ctx.client.db {
        return Err(CmdError::msg(
            "ERR source and destination objects are the same",
        ));
    }
    let mut src = ctx.db();
    let ttl = src.expire_at(&args[1]);
    let Some(v) = src.get(&args[1]).cloned() else {
        ctx.out.int(0);
        return Ok(());
    };
    if ctx.db_at(target).contains(&args[1]) {
        ctx.out.int(0);
        return Ok(());
    }
    ctx.db().remove(&args[1]);
    ctx.db_at(target).insert_with_expire(&args[1], v, ttl);
    notify(ctx, "move_from", &args[1]);
    super::notify::notify_db(
        ctx,
        target,
        super::notify::class::GENERIC,
        "move_to",
        &args[1],
    );
    ctx.out.int(1);
    Ok(())
}

/// The target DB of `COPY src dst [DB n] [REPLACE]`, if any (for key loading).
pub fn copy_target_db(args: &[Vec<u8>], databases: usize) -> Option<u32> {
    let i = args
        .iter()
        .skip(3)
        .position(|a| a.eq_ignore_ascii_case(b"db"))?;
    super::args::db_index(args.get(i + 4)?, databases).ok()
}

fn copy(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let mut target = ctx.client.db;
    let mut replace = false;
    let mut i = 3;
    while i < args.len() {
        match args[i].to_ascii_lowercase().as_slice() {
            b"replace" => replace = true,
            b"db" if i + 1 < args.len() => {
                let t = super::args::db_index(&args[i + 1], ctx.engine.databases())?;
                target = t;
                i += 1;
            }
            _ => return Err(CmdError::Syntax),
        }
        i += 1;
    }
    if target == ctx.client.db && args[1] == args[2] {
        return Err(CmdError::msg(
            "ERR source and destination objects are the same",
        ));
    }
    let mut src = ctx.db();
    let ttl = src.expire_at(&args[1]);
    let Some(v) = src.get(&args[1]).cloned() else {
        ctx.out.int(0);
        return Ok(());
    };
    let mut dst = ctx.db_at(target);
    if dst.contains(&args[2]) && !replace {
        ctx.out.int(0);
        return Ok(());
    }
    // A paged value's copy gets pages of its own (a new generation), never shared ones.
    let v = crate::paged::deep_copy(ctx.engine, v, ctx.now_ms).map_err(CmdError::store)?;
    ctx.db_at(target).insert_with_expire(&args[2], v, ttl);
    super::notify::notify_db(
        ctx,
        target,
        super::notify::class::GENERIC,
        "copy_to",
        &args[2],
    );
    ctx.out.int(1);
    Ok(())
}

/// Every live key of the client's DB: the store's keys plus resident ones, minus keys deleted in
/// memory whose delete has not reached disk yet. Runs a full store scan on the owner thread:
/// O(keys on disk), like KEYS in Redis.
pub fn keyspace_keys(ctx: &mut Ctx) -> Result<Vec<Vec<u8>>, CmdError> {
    let db_index = ctx.client.db;
    let store = std::sync::Arc::clone(ctx.engine.store());
    let mut cursor = Vec::new();
    let mut keys: Vec<Vec<u8>> = Vec::new();
    // A flush of this DB that is not yet done on disk has emptied it already: the store's
    // keys are logically gone.
    let clearing = ctx.engine.is_clearing(db_index);
    loop {
        if clearing {
            break;
        }
        match store.scan(ctx.engine.store_db(db_index), &cursor, 1024) {
            Ok(page) => {
                keys.extend(page.keys);
                match page.next {
                    Some(n) => cursor = n,
                    None => break,
                }
            }
            Err(e) => {
                return Err(CmdError::msg(format!("ERR disk store scan failed: {e}")));
            }
        }
    }
    let db = ctx.db();
    // Disk keys that are resident are judged by memory (newer); the rest are live on disk.
    let mut out: Vec<Vec<u8>> = keys.into_iter().filter(|k| !db.is_resident(k)).collect();
    out.extend(db.resident_keys().map(<[u8]>::to_vec));
    Ok(out)
}

/// Starts a keyspace-wide command on the IO workers (see `keyscan.rs`). With a flush of the DB
/// pending the store is logically empty, so it completes at once from memory.
fn start_scan(ctx: &mut Ctx, kind: Kind, cursor: Vec<u8>) -> CmdResult {
    let db = ctx.client.db;
    let mut scan = KeyScan::new(kind, db, ctx.engine.db_epoch(db), cursor);
    if ctx.engine.is_clearing(db) {
        let mut view = ctx.engine.db(db, ctx.now_ms);
        scan.absorb(None, &mut view, &mut ctx.shared.scan_cursors, ctx.out);
        return Ok(());
    }
    ctx.action = Action::KeyScan(Box::new(scan));
    Ok(())
}

fn keys(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    if !ctx.client.in_exec {
        let pattern = args[1].clone();
        start_scan(ctx, Kind::Keys { pattern }, Vec::new())?;
        return Ok(());
    }
    let all = keyspace_keys(ctx)?;
    let matched: Vec<&Vec<u8>> = all
        .iter()
        .filter(|k| glob_match(&args[1], k, false))
        .collect();
    ctx.out.array(matched.len());
    for k in matched {
        ctx.out.bulk(k);
    }
    Ok(())
}

fn dbsize(ctx: &mut Ctx, _args: &[Vec<u8>]) -> CmdResult {
    // O(1) from the persisted count merged with memory (see kvtier_core::keycount); counted
    // by reading the store only while that is not known (a store written before counts
    // existed, or blind writes over never-loaded keys whose saves have not resolved them yet).
    if let Some(n) = ctx.engine.key_count(ctx.client.db) {
        ctx.out.int(n as i64);
        return Ok(());
    }
    if !ctx.client.in_exec {
        start_scan(ctx, Kind::DbSize, Vec::new())?;
        return Ok(());
    }
    let all = keyspace_keys(ctx)?;
    ctx.out.int(all.len() as i64);
    Ok(())
}

fn randomkey(ctx: &mut Ctx, _args: &[Vec<u8>]) -> CmdResult {
    if !ctx.client.in_exec {
        // From memory in proportion to its share of the keyspace (the key filter counts the
        // store's keys), otherwise a page of the store from a random position: never a full
        // scan.
        let resident = ctx.engine.resident_len(ctx.client.db) as u64;
        let on_disk = ctx.engine.filter_keys();
        if resident > 0 && rand::random_range(0..resident + on_disk) < resident {
            if let Some(k) = ctx.db().random_resident_key() {
                ctx.out.bulk(&k);
                return Ok(());
            }
        }
        // A random position in the store's order: the backend's own, or just after a sampled
        // store key or a key held in memory (where the store orders by key); from the start
        // otherwise.
        let db = ctx.client.db;
        let cursor = match ctx.engine.store().random_cursor(rand::random()) {
            Some(c) => c,
            None => ctx
                .engine
                .sampled_key(db)
                .or_else(|| ctx.db().random_resident_key())
                .map(|k| kvtier_core::cursor::after(&k))
                .unwrap_or_default(),
        };
        start_scan(ctx, Kind::RandomKey { wrapped: false }, cursor)?;
        return Ok(());
    }
    let all = keyspace_keys(ctx)?;
    if all.is_empty() {
        ctx.out.null();
        return Ok(());
    }
    let i = rand::random_range(0..all.len());
    ctx.out.bulk(&all[i]);
    Ok(())
}

/// The type of a key that is only on disk, read from its record header; `None` when it is
/// gone, expired or unreadable (a damaged record is logged and skipped, never fatal to SCAN).
fn disk_type(ctx: &mut Ctx, key: &[u8]) -> Option<&'static str> {
    let db = ctx.client.db;
    let bytes = match ctx.engine.store().get(ctx.engine.store_db(db), key) {
        Ok(b) => b?,
        Err(e) => {
            log::warn!("SCAN TYPE: reading a key failed: {e}");
            return None;
        }
    };
    match kvtier_core::encoding::decode(&bytes) {
        Ok(rec) if !rec.is_expired(ctx.now_ms) => crate::value::type_name_of_tag(rec.type_tag),
        Ok(_) => None,
        Err(e) => {
            log::warn!("SCAN TYPE: skipping a damaged record: {e}");
            None
        }
    }
}

fn scan(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let cursor = super::args::scan_cursor(&args[1])?;
    let super::args::ScanOpts {
        pattern,
        count,
        type_name: type_filter,
    } = super::args::scan_opts(&args[2..], true)?;
    if !ctx.client.in_exec {
        let db = ctx.client.db;
        let epoch = ctx.engine.db_epoch(db);
        let (store_cursor, first) = match cursor {
            0 => (Vec::new(), true),
            id => (
                ctx.shared
                    .scan_cursors
                    .take(id, db, epoch)
                    .unwrap_or_default(),
                false,
            ),
        };
        let kind = Kind::Scan {
            count,
            pattern,
            type_name: type_filter,
            first,
        };
        start_scan(ctx, kind, store_cursor)?;
        return Ok(());
    }
    let all = keyspace_keys(ctx)?;
    let mut hashed: Vec<(u64, Vec<u8>)> = all
        .into_iter()
        .map(|k| (super::args::scan_hash(&k), k))
        .filter(|(h, _)| *h >= cursor)
        .collect();
    hashed.sort();
    let mut end = count.min(hashed.len());
    // Keys sharing a hash go in the same page, so the next cursor skips none of them.
    while end > 0 && end < hashed.len() && hashed[end].0 == hashed[end - 1].0 {
        end += 1;
    }
    let next = hashed.get(end).map_or(0, |(h, _)| *h);
    let mut page = Vec::new();
    for (_, k) in &hashed[..end] {
        if pattern.as_ref().is_some_and(|p| !glob_match(p, k, false)) {
            continue;
        }
        if let Some(t) = &type_filter {
            let ty = match ctx.db().is_resident(k) {
                true => ctx.db().get(k).map(Value::type_name),
                false => disk_type(ctx, k),
            };
            if ty.is_none_or(|ty| ty != t) {
                continue;
            }
        }
        page.push(k.clone());
    }
    ctx.out.array(2);
    ctx.out.bulk(next.to_string().as_bytes());
    ctx.out.array(page.len());
    for k in &page {
        ctx.out.bulk(k);
    }
    Ok(())
}
