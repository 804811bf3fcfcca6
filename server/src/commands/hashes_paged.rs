//! The hash commands on a paged hash (see `paged`): each touches the pages of the fields it
//! names; HGETALL, HKEYS and HVALS walk the pages in turn; HSCAN returns one page per call.

use super::paged_hashlike::{self as hashlike, Kind};
use super::typed::Hash;
use super::{CmdError, Ctx};
use crate::paged::hash::{self, PagedHash};
use crate::value::Value;

/// The manifest at `key` if it holds a live paged hash (counted as a hit); `None` for anything
/// else, which the caller handles as before.
pub fn manifest(ctx: &mut Ctx, key: &[u8]) -> Option<PagedHash> {
    hashlike::manifest(ctx, key, Kind::Hash)
}

/// Writes the changed manifest back, or deletes the key once the last field is gone.
pub fn store(ctx: &mut Ctx, key: &[u8], m: PagedHash) {
    hashlike::store(ctx, key, m, Kind::Hash)
}

fn upkeep(ctx: &mut Ctx, m: &mut PagedHash) {
    hashlike::upkeep(ctx, m, Kind::Hash)
}

/// HSET/HMSET pairs; the number of new fields. A page that cannot be read fails the command
/// after the fields before it were set (their pages and the manifest stay consistent).
pub fn set_pairs(
    ctx: &mut Ctx,
    key: &[u8],
    mut m: PagedHash,
    pairs: &[Vec<u8>],
) -> Result<i64, CmdError> {
    let mut added = 0;
    let mut failed = None;
    for pair in pairs.chunks(2) {
        match hash::set(
            ctx.engine,
            &mut m,
            pair[0].clone(),
            pair[1].clone(),
            ctx.now_ms,
        ) {
            Ok(new) => added += i64::from(new),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
        upkeep(ctx, &mut m);
    }
    store(ctx, key, m);
    match failed {
        Some(e) => Err(CmdError::store(e)),
        None => Ok(added),
    }
}

/// Sets one field; whether it is new.
pub fn set(
    ctx: &mut Ctx,
    key: &[u8],
    mut m: PagedHash,
    f: &[u8],
    v: Vec<u8>,
) -> Result<bool, CmdError> {
    let new = hash::set(ctx.engine, &mut m, f.to_vec(), v, ctx.now_ms).map_err(CmdError::store)?;
    upkeep(ctx, &mut m);
    store(ctx, key, m);
    Ok(new)
}

/// One field's value.
pub fn get(ctx: &mut Ctx, m: &PagedHash, f: &[u8]) -> Result<Option<Vec<u8>>, CmdError> {
    hash::get(ctx.engine, m, f, ctx.now_ms).map_err(CmdError::store)
}

/// Removes fields; how many were there.
pub fn remove(
    ctx: &mut Ctx,
    key: &[u8],
    mut m: PagedHash,
    fields: &[Vec<u8>],
) -> Result<usize, CmdError> {
    let mut removed = 0;
    let mut failed = None;
    for f in fields {
        match hash::remove(ctx.engine, &mut m, f, ctx.now_ms) {
            Ok(was) => removed += usize::from(was),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    if removed > 0 {
        store(ctx, key, m);
    }
    match failed {
        Some(e) => Err(CmdError::store(e)),
        None => Ok(removed),
    }
}

/// HGETALL (`keys` and `values` both), HKEYS or HVALS, page by page.
pub fn all(ctx: &mut Ctx, m: &PagedHash, keys: bool, values: bool) -> Result<(), CmdError> {
    let n = m.len as usize;
    // Read first: an unreadable page fails the command before any reply is written.
    for id in 0..m.page_count() {
        hash::page(ctx.engine, m, id, ctx.now_ms).map_err(CmdError::store)?;
    }
    if keys && values {
        ctx.out.map(n);
    } else {
        ctx.out.array(n);
    }
    let out = &mut *ctx.out;
    hash::for_each(ctx.engine, m, ctx.now_ms, |k, v| {
        if keys {
            out.bulk(k);
        }
        if values {
            out.bulk(v);
        }
    })
    .map_err(CmdError::store)
}

/// HSCAN: the cursor is a page number; each call returns one page (COUNT is a hint Redis may
/// exceed), so a scan holds one page in memory at a time. Pages only split towards higher
/// numbers, so every field present for the whole scan is returned.
pub fn scan(
    ctx: &mut Ctx,
    m: &PagedHash,
    cursor: u64,
    pattern: Option<Vec<u8>>,
) -> Result<(), CmdError> {
    let (next, entries) = hashlike::scan_page(ctx, m, cursor, pattern.as_deref())?;
    let out = &mut *ctx.out;
    out.array(2);
    let mut b = itoa::Buffer::new();
    out.bulk(b.format(next).as_bytes());
    out.array(entries.len() * 2);
    for (k, v) in entries {
        out.bulk(&k);
        out.bulk(&v);
    }
    Ok(())
}

/// The whole hash in one map (HRANDFIELD).
pub fn materialize(ctx: &mut Ctx, m: &PagedHash) -> Result<Hash, CmdError> {
    hash::materialize(ctx.engine, m, ctx.now_ms).map_err(CmdError::store)
}

/// After a write that may have added fields to an ordinary hash: one that crossed
/// `paged-value-min-bytes` becomes paged. Summing the sizes is linear, so past 64 fields it is
/// checked only when the field count passes a multiple of 64.
pub fn maybe_page_out(ctx: &mut Ctx, key: &[u8], len_before: usize) {
    let min = ctx.shared.config.settings().paged_value_min_bytes;
    let page_bytes = ctx.shared.config.settings().page_bytes;
    if min == 0 {
        return;
    }
    let value = ctx.engine.peek(ctx.client.db, key);
    let h = match value {
        Some(Value::Hash(h)) if h.len() <= 64 || h.len() >> 6 != len_before >> 6 => h,
        _ => return,
    };
    let bytes: u64 = h.iter().map(|(f, v)| hash::field_bytes(f, v)).sum();
    // A hash Redis would keep as a listpack (its hash-max-listpack-* settings) keeps the order
    // its fields were added in, which HGETALL shows: only a hash table's order is free to be
    // the pages' order.
    if bytes < min
        || value.is_some_and(|v| super::object::encoding(v, &ctx.shared.config) != "hashtable")
    {
        return;
    }
    let h = h.clone();
    let m = hash::page_out(ctx.engine, &h, page_bytes, ctx.now_ms);
    ctx.db().insert_keep_ttl(key, Value::PagedHash(Box::new(m)));
}

/// The pages of paged hash `m` a command needs in memory, so the request path loads them
/// (batched, without blocking the server) before the command runs. A page it misses anyway (a
/// script, a key changed earlier in the same EXEC) is read synchronously when touched.
pub fn pages_needed(name: &str, args: &[Vec<u8>], m: &PagedHash, page_bytes: u64) -> Vec<u32> {
    let fields = |from: usize, step: usize| -> Vec<u32> {
        args.get(from..)
            .unwrap_or_default()
            .iter()
            .step_by(step)
            .map(|f| m.page_of(f))
            .collect()
    };
    let mut pages = match name {
        // One field; what follows it (HSETNX's value, HINCRBY's increment) is no field.
        "hget" | "hexists" | "hstrlen" | "hsetnx" | "hincrby" | "hincrbyfloat" => {
            vec![m.page_of(&args[2])]
        }
        "hmget" | "hdel" => fields(2, 1),
        "hset" | "hmset" => fields(2, 2),
        "hscan" => hashlike::scan_plan(&args[2], m),
        "hrandfield" => super::paged_sample::pages_for_arg(m, args.get(2)),
        "hgetall" | "hkeys" | "hvals" | "dump" | "copy" => (0..m.page_count()).collect(),
        _ => Vec::new(),
    };
    let writes = matches!(
        name,
        "hset" | "hmset" | "hsetnx" | "hincrby" | "hincrbyfloat"
    );
    if writes {
        // The page a split would divide, if the write may push the hash over its page budget.
        let adding: u64 = args[2..].iter().map(|a| a.len() as u64 + 8).sum();
        let grown = PagedHash {
            bytes: m.bytes + adding,
            ..*m
        };
        if grown.wants_split(page_bytes) {
            pages.push(m.split);
        }
    }
    pages.sort_unstable();
    pages.dedup();
    pages
}
