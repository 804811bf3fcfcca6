//! A collection a command writes whole (RESTORE, SORT … STORE, SINTERSTORE, SUNIONSTORE,
//! SDIFFSTORE) becomes paged at once when it is large enough, as one grown by its own writes
//! does, instead of staying one record (rewritten whole by every save, loaded whole by every
//! read) until its next write.

use super::Ctx;
use crate::value::Value;

/// Pages the value just written at `key` in the client's DB if it is a hash, set, sorted set,
/// list or stream past `paged-value-min-bytes` (and, for hashes, sets and sorted sets, one Redis
/// would not keep in a compact encoding); leaves anything else as it is.
pub fn page_out_written(ctx: &mut Ctx, key: &[u8]) {
    // `0` as the length before: the check runs whatever the size (it is amortized only for
    // values growing one write at a time).
    match ctx.engine.peek(ctx.client.db, key) {
        Some(Value::Hash(_)) => super::hashes_paged::maybe_page_out(ctx, key, 0),
        Some(Value::Set(_)) => super::sets_paged::maybe_page_out(ctx, key, 0),
        Some(Value::ZSet(_)) => super::zsets_paged::maybe_page_out(ctx, key, 0),
        Some(v @ (Value::List(_) | Value::Stream(_))) => {
            let page_out = match v {
                Value::List(_) => super::list_access::maybe_page_out,
                _ => super::stream_access::maybe_page_out,
            };
            let settings = ctx.shared.config.settings();
            let (page_bytes, min_bytes) = (settings.page_bytes, settings.paged_value_min_bytes);
            if min_bytes > 0 {
                page_out(
                    ctx.engine,
                    ctx.client.db,
                    key,
                    page_bytes,
                    min_bytes,
                    ctx.now_ms,
                );
            }
        }
        _ => {}
    }
}
