//! What paged hashes and paged sets share (a paged set is a paged hash whose values are
//! empty): finding the manifest under a key, writing it back, page upkeep, and reading one
//! page for a scan. The command files keep what differs (replies, member versus field).

use super::paged_sample::Entry;
use super::{CmdError, Ctx};
use crate::glob::glob_match;
use crate::paged::hash::{self, PagedHash};
use crate::value::Value;

/// Which value a paged-hash manifest stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Hash,
    Set,
}

impl Kind {
    fn of(self, v: &Value) -> Option<&PagedHash> {
        match (self, v) {
            (Kind::Hash, Value::PagedHash(m)) | (Kind::Set, Value::PagedSet(m)) => Some(m),
            _ => None,
        }
    }

    fn of_mut(self, v: &mut Value) -> Option<&mut PagedHash> {
        match (self, v) {
            (Kind::Hash, Value::PagedHash(m)) | (Kind::Set, Value::PagedSet(m)) => Some(m),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Hash => "hash",
            Kind::Set => "set",
        }
    }
}

/// The manifest at `key` if it holds a live paged value of `kind` (counted as a hit); `None`
/// for anything else, which the caller handles as a one-record value (or answers WRONGTYPE
/// for). Peeked first, so a miss is not counted as a keyspace access twice.
pub fn manifest(ctx: &mut Ctx, key: &[u8], kind: Kind) -> Option<PagedHash> {
    ctx.engine
        .peek(ctx.client.db, key)
        .and_then(|v| kind.of(v))?;
    ctx.db().get(key).and_then(|v| kind.of(v)).copied()
}

/// Writes the changed manifest back (the key becomes dirty, in the command's save group with
/// the pages it changed), or deletes the key once its last entry is gone (its pages then go to
/// the collector, see `paged::collect_released`).
pub fn store(ctx: &mut Ctx, key: &[u8], m: PagedHash, kind: Kind) {
    let mut db = ctx.db();
    if m.len == 0 {
        db.remove(key);
    } else if let Some(x) = db.get_mut(key).and_then(|v| kind.of_mut(v)) {
        *x = m;
    }
}

/// Splits a page if the value outgrew its pages. A split is upkeep, not part of the command:
/// one that cannot read its page is left for a later write.
pub fn upkeep(ctx: &mut Ctx, m: &mut PagedHash, kind: Kind) {
    let page_bytes = ctx.shared.config.settings().page_bytes;
    if let Err(e) = hash::maybe_split(ctx.engine, m, page_bytes, ctx.now_ms) {
        log::warn!(
            "splitting a page of a paged {} failed: {e}; retried on a later write",
            kind.name()
        );
    }
}

/// The page a scan step with cursor `cursor` reads (HSCAN, SSCAN, and ZSCAN over a paged sorted
/// set's member pages): the page the cursor names, none past the last.
pub fn scan_plan(cursor: &[u8], m: &PagedHash) -> Vec<u32> {
    crate::util::parse_i64(cursor)
        .and_then(|c| u32::try_from(c).ok())
        .filter(|&c| c < m.page_count())
        .into_iter()
        .collect()
}

/// One step of HSCAN/SSCAN: the cursor is a page number (pages only split towards higher
/// numbers, so every entry present for the whole scan is returned). The next cursor (0 after
/// the last page) and the page's entries matching `pattern`.
pub fn scan_page(
    ctx: &mut Ctx,
    m: &PagedHash,
    cursor: u64,
    pattern: Option<&[u8]>,
) -> Result<(u64, Vec<Entry>), CmdError> {
    let id = u32::try_from(cursor).unwrap_or(u32::MAX);
    let mut entries = Vec::new();
    if id < m.page_count() {
        if let Some(p) = hash::page(ctx.engine, m, id, ctx.now_ms).map_err(CmdError::store)? {
            entries = p
                .iter()
                .filter(|(k, _)| pattern.is_none_or(|p| glob_match(p, k, false)))
                .map(|(k, v)| (k.to_vec(), v.to_vec()))
                .collect();
        }
    }
    let next = if id.saturating_add(1) < m.page_count() {
        u64::from(id) + 1
    } else {
        0
    };
    Ok((next, entries))
}
