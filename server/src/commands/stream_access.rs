//! One interface to a stream whether it is kept in one record or in pages (`paged::stream`),
//! so each stream command is written once: a command gets the stream without its entries
//! (IDs, counters, nodes, groups: `Stream`, whose `entries` it must not use) and its entries
//! behind `stream::entries`. A paged stream's entry reads can fail (a page that cannot be
//! read); a command reads what it needs before it writes any reply.

use super::{CmdError, Ctx};
use crate::paged::stream::{self as paged, PagedStream};
use crate::reply::Reply;
use crate::stream::{EntriesRead, EntriesWrite, Plain, Stream};
use crate::value::Value;
use kvtier_core::{Engine, StoreError};

impl From<StoreError> for CmdError {
    fn from(e: StoreError) -> CmdError {
        CmdError::store(e)
    }
}

/// Fails with WRONGTYPE unless `key` is a stream or missing; whether it exists.
pub fn check_stream(ctx: &mut Ctx, key: &[u8]) -> Result<bool, CmdError> {
    match ctx.engine.db(ctx.client.db, ctx.now_ms).get(key) {
        None => Ok(false),
        Some(Value::Stream(_) | Value::PagedStream(_)) => Ok(true),
        Some(_) => Err(CmdError::WrongType),
    }
}

/// A paged stream's manifest as the cache holds it, shared: read without a copy.
struct Shared(std::sync::Arc<Value>);

impl Shared {
    fn get(&self) -> &PagedStream {
        match &*self.0 {
            Value::PagedStream(m) => m,
            _ => unreachable!("made from a paged stream only"),
        }
    }
}

/// Runs `f` on the stream at `key` for reading, with the reply buffer beside it. `Ok(None)`
/// when there is no such key; WRONGTYPE when it holds another type. Nothing becomes dirty.
pub fn read_stream<T>(
    ctx: &mut Ctx,
    key: &[u8],
    f: impl FnOnce(&Stream, &mut dyn EntriesRead, &mut Reply) -> Result<T, CmdError>,
) -> Result<Option<T>, CmdError> {
    let (db, now_ms) = (ctx.client.db, ctx.now_ms);
    let page_bytes = ctx.shared.config.settings().page_bytes;
    let shared = match ctx.engine.db(db, now_ms).get(key) {
        None => return Ok(None),
        Some(Value::Stream(_)) => None,
        Some(Value::PagedStream(_)) => ctx.engine.peek_shared(db, key).map(Shared),
        Some(_) => return Err(CmdError::WrongType),
    };
    match shared {
        None => match ctx.engine.peek(db, key) {
            Some(Value::Stream(s)) => f(s, &mut Plain(&s.entries), ctx.out).map(Some),
            _ => unreachable!("looked up above"),
        },
        Some(m) => {
            let m = m.get();
            let mut es = paged::Paged {
                engine: &mut *ctx.engine,
                idx: &m.idx,
                now_ms,
                page_bytes,
            };
            f(&m.meta, &mut es, ctx.out).map(Some)
        }
    }
}

/// What [`write_stream`]'s command returned.
pub struct Written<T> {
    pub result: T,
}

/// Runs `f` on the stream at `key` for changing it (the key becomes dirty): created empty
/// first when absent and `create` is set, otherwise `Ok(None)` for a missing key. A stream in
/// one record that grew past `paged-value-min-bytes` is paged out afterwards.
pub fn write_stream<T>(
    ctx: &mut Ctx,
    key: &[u8],
    create: bool,
    f: impl FnOnce(&mut Stream, &mut dyn EntriesWrite, &mut Reply) -> Result<T, CmdError>,
) -> Result<Option<Written<T>>, CmdError> {
    let (db, now_ms) = (ctx.client.db, ctx.now_ms);
    let settings = ctx.shared.config.settings();
    let (page_bytes, min_bytes) = (settings.page_bytes, settings.paged_value_min_bytes);
    let mut created = false;
    let paged = match ctx.engine.db(db, now_ms).get(key) {
        None if !create => return Ok(None),
        None => {
            created = true;
            false
        }
        Some(Value::Stream(_)) => false,
        Some(Value::PagedStream(_)) => true,
        Some(_) => return Err(CmdError::WrongType),
    };
    if !paged {
        let mut dbv = ctx.engine.db(db, now_ms);
        if created {
            dbv.insert(key, Value::Stream(Box::default()));
        }
        let Some(Value::Stream(s)) = dbv.into_get_mut(key) else {
            unreachable!("a stream, checked above")
        };
        let before = s.len();
        let mut entries = std::mem::take(&mut s.entries);
        let result = f(s, &mut Plain(&mut entries), ctx.out);
        s.entries = entries;
        let after = s.len();
        if min_bytes > 0 && after > before && (after <= 64 || after >> 6 != before >> 6) {
            maybe_page_out(ctx.engine, db, key, page_bytes, min_bytes, now_ms);
        }
        return result.map(|result| Some(Written { result }));
    }
    // The manifest leaves the cache while the pages change (the key is dirty and pinned by the
    // command, so nothing evicts or reads the placeholder), and goes back whatever happens.
    let mut m = match ctx.engine.db(db, now_ms).get_mut(key) {
        Some(Value::PagedStream(m)) => std::mem::take(&mut **m),
        _ => unreachable!("a paged stream, checked above"),
    };
    let PagedStream { idx, meta } = &mut m;
    let mut es = paged::Paged {
        engine: &mut *ctx.engine,
        idx,
        now_ms,
        page_bytes,
    };
    let result = f(meta, &mut es, ctx.out);
    if let Some(Value::PagedStream(slot)) = ctx.engine.db(db, now_ms).get_mut(key) {
        **slot = m;
    }
    result.map(|result| Some(Written { result }))
}

/// A stream in one record that has reached `min_bytes` becomes paged.
pub(crate) fn maybe_page_out(
    engine: &mut Engine<Value>,
    db: u32,
    key: &[u8],
    page_bytes: u64,
    min_bytes: u64,
    now_ms: i64,
) {
    let big = match engine.peek(db, key) {
        Some(Value::Stream(s)) => {
            s.entries.values().map(paged::entry_bytes).sum::<u64>() >= min_bytes
        }
        _ => false,
    };
    if !big {
        return;
    }
    let s = match engine.db(db, now_ms).get_mut(key) {
        Some(Value::Stream(s)) => std::mem::take(&mut **s),
        _ => return,
    };
    let m = paged::page_out(engine, s, page_bytes, now_ms);
    engine
        .db(db, now_ms)
        .insert_keep_ttl(key, Value::PagedStream(Box::new(m)));
}
