//! DUMP and RESTORE (and RESTORE-ASKING, the same in a server without cluster): a value in
//! Redis's serialization format (see `crate::rdb`), so values move between kvtier and Redis.
//!
//! kvtier keeps no per-key LRU clock or LFU counter, so RESTORE's IDLETIME and FREQ are checked
//! as Redis checks them and then have no effect (OBJECT IDLETIME/FREQ read 0 as for any key).
//! Payloads are always checked in depth, as Redis does with `sanitize-dump-payload yes`
//! (element counts, listpack/ziplist structure, no duplicate members or fields, no NaN
//! scores), whatever that setting says: kvtier has no partly-checked value representation.

use super::flags::*;
use super::notify::{class, notify};
use super::{cmd, CommandSpec, Ctx, KEY1};
use super::{CmdError, CmdResult};
use crate::rdb::{self, RestoreError};
use crate::util::parse_i64;
use kvtier_core::CacheValue;

pub const COMMANDS: &[CommandSpec] = &[
    cmd("dump", 2, READONLY, KEY1, dump),
    cmd("restore", -4, WRITE | DENYOOM, KEY1, restore),
    cmd("restore-asking", -4, WRITE | DENYOOM, KEY1, restore),
];

fn dump(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let mut db = ctx.engine.db(ctx.client.db, ctx.now_ms);
    match db.get(&args[1]) {
        None => ctx.out.null(),
        Some(v) if v.owns_pages() => {
            let v = v.clone();
            let whole = crate::paged::materialize(ctx.engine, &v, ctx.now_ms)
                .map_err(CmdError::store)?
                .unwrap_or(v);
            let payload = rdb::dump(&whole, &ctx.shared.config);
            ctx.out.bulk(&payload);
        }
        Some(v) => {
            let payload = rdb::dump(v, &ctx.shared.config);
            ctx.out.bulk(&payload);
        }
    }
    Ok(())
}

/// An integer argument, or Redis's not-an-integer error.
fn int_arg(a: &[u8]) -> Result<i64, CmdError> {
    parse_i64(a).ok_or(CmdError::NotInt)
}

/// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f], checked in Redis's order:
/// options, then an existing key, the TTL, the payload's footer, the payload's value.
fn restore(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let (mut replace, mut absttl) = (false, false);
    let (mut idle, mut freq) = (false, false);
    let mut i = 4;
    while i < args.len() {
        let more = i + 1 < args.len();
        match args[i].to_ascii_lowercase().as_slice() {
            b"replace" => replace = true,
            b"absttl" => absttl = true,
            // IDLETIME and FREQ exclude each other: the second is a syntax error.
            b"idletime" if more && !freq => {
                let n = int_arg(&args[i + 1])?;
                if n < 0 {
                    return Err(CmdError::msg("ERR Invalid IDLETIME value, must be >= 0"));
                }
                idle = true;
                i += 1;
            }
            b"freq" if more && !idle => {
                let n = int_arg(&args[i + 1])?;
                if !(0..=255).contains(&n) {
                    return Err(CmdError::msg(
                        "ERR Invalid FREQ value, must be >= 0 and <= 255",
                    ));
                }
                freq = true;
                i += 1;
            }
            _ => return Err(CmdError::Syntax),
        }
        i += 1;
    }
    let key = &args[1];
    if !replace && ctx.db().contains(key) {
        return Err(CmdError::msg("BUSYKEY Target key name already exists."));
    }
    let ttl = int_arg(&args[2])?;
    if ttl < 0 {
        return Err(CmdError::msg("ERR Invalid TTL value, must be >= 0"));
    }
    let value = match rdb::restore(&args[3]) {
        Ok(v) => v,
        Err(RestoreError::VersionOrChecksum) => {
            return Err(CmdError::msg(
                "ERR DUMP payload version or checksum are wrong",
            ))
        }
        Err(RestoreError::BadFormat(why)) => {
            log::debug!("RESTORE: bad payload ({})", why.0);
            return Err(CmdError::msg("ERR Bad data format"));
        }
    };
    let expire_at = match ttl {
        0 => None,
        t if absttl => Some(t),
        // As Redis: a relative TTL that overflows wraps negative, so the key is already expired.
        t => Some(t.wrapping_add(ctx.now_ms)),
    };
    let now = ctx.now_ms;
    let mut db = ctx.db();
    let deleted = replace && db.remove(key).is_some();
    if expire_at.is_some_and(|at| at <= now) {
        // Already expired: nothing is created (an old value under REPLACE is gone).
        if deleted {
            notify(ctx, class::GENERIC, "del", key);
        }
        ctx.out.ok();
        return Ok(());
    }
    db.insert_with_expire(key, value, expire_at);
    super::page_out::page_out_written(ctx, key);
    notify(ctx, class::GENERIC, "restore", key);
    ctx.out.ok();
    Ok(())
}
