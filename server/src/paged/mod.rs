//! Collections stored in pages, so that a save writes what changed and a read loads what it
//! needs (issue 19).
//!
//! A collection above `paged-value-min-bytes` is kept as a small **manifest** under its own key
//! plus **page** records in the engine's page namespace (`kvtier_core::pages`). A page is an
//! ordinary cache entry there: loaded, dirtied, saved and evicted on its own, in the same save
//! group as the manifest when a command changes both, so a save is one atomic batch of the dirty
//! pages and the manifest.
//!
//! A page key is the value's **generation** (a random 64-bit number drawn when the value becomes
//! paged) and the page number. It names neither the user key nor the DB, so RENAME and MOVE move
//! the manifest alone, and a new value under the same key never meets the old one's pages.
//!
//! Pages of a deleted value are removed in the background ([`Gc`]), a bounded number per cron
//! tick. What a crash, a FLUSHDB or an overwrite that never loaded the old value (a blind SET)
//! leaves behind is unreachable (no manifest names that generation any more) and is found by the
//! store-wide [`collector`].

pub mod collector;
pub mod hash;
pub mod list;
pub mod parts;
pub mod stream;
pub mod zset;

use crate::commands::{CommandSpec, Ctx};
use crate::value::Value;
use kvtier_core::{DbIndex, Engine, StoreError};
use std::collections::VecDeque;

/// The key of page `id` of generation `gen`.
pub fn page_key(gen: u64, id: u32) -> PageKey {
    let mut k = [0u8; 12];
    k[..8].copy_from_slice(&gen.to_be_bytes());
    k[8..].copy_from_slice(&id.to_be_bytes());
    k
}

/// A page key: on the stack, so finding a page (every paged write does) allocates nothing.
pub type PageKey = [u8; 12];

/// A fresh generation: random, so that two values (also across restarts) never share pages.
pub fn new_gen() -> u64 {
    // Never one whose bit 63 is set: a manifest's part records use the generation with that
    // bit flipped (`parts::parts_group`), which must not be another value's generation.
    let gen = rand::random::<u64>() >> 1;
    collector::note_born(gen);
    gen
}

/// The generation and page number of a page key; `None` for a key of another shape.
pub fn parse_page_key(key: &[u8]) -> Option<(u64, u32)> {
    let (gen, id) = key.split_first_chunk::<8>()?;
    Some((
        u64::from_be_bytes(*gen),
        u32::from_be_bytes(id.try_into().ok()?),
    ))
}

/// A hash of a field that never changes between builds (pages are partitioned by it on disk):
/// FNV-1a, then a 64-bit finalizer so that the low bits the page choice uses are well mixed.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Puts the page at `from` (read and checked by the caller a moment ago) under the new key `to`
/// too, sharing its value: a copy (COPY of a paged value) costs a pointer per resident page,
/// and the data is copied only when one of the two values changes that page.
pub fn share_page(
    engine: &mut Engine<Value>,
    from: &[u8],
    to: &[u8],
    now_ms: i64,
) -> Result<(), StoreError> {
    let pages = engine.pages_db();
    let v = engine
        .peek_shared(pages, from)
        .ok_or_else(|| StoreError::Corruption("a page read a moment ago is gone".into()))?;
    engine.db(pages, now_ms).insert_new_shared(to, v);
    Ok(())
}

/// The size under which a page of an ordered paged value (a list, a stream) is merged into a
/// neighbour after a removal (see [`merge_partner`]).
pub fn merge_below(page_bytes: u64) -> u64 {
    page_bytes / 4
}

/// Which of a page's neighbours an ordered paged value (a list, a stream) merges it with after
/// a removal: none unless page `i` of `n` holds less than a quarter of `page_bytes`; then the
/// next one if the two fit in one page (`fits(a, b)` for adjacent pages `a`, `a + 1`), else
/// the previous one. The position of the earlier page of the pair.
pub fn merge_partner(
    n: usize,
    i: usize,
    bytes: u64,
    page_bytes: u64,
    fits: impl Fn(usize, usize) -> bool,
) -> Option<usize> {
    if bytes >= merge_below(page_bytes) {
        None
    } else if i + 1 < n && fits(i, i + 1) {
        Some(i)
    } else if i > 0 && fits(i - 1, i) {
        Some(i - 1)
    } else {
        None
    }
}

/// The pages of deleted values waiting for deletion.
#[derive(Debug, Default)]
pub struct Gc {
    /// (generation, page numbers still to delete)
    queue: VecDeque<(u64, Vec<u32>)>,
    /// Pages deleted so far (INFO).
    pub deleted: u64,
}

/// Pages deleted per cron tick: bounds the tombstones (and the batch) one tick adds.
const GC_PAGES_PER_TICK: usize = 256;

impl Gc {
    /// Queues pages `ids` of generation `gen` for deletion.
    pub fn push(&mut self, gen: u64, ids: Vec<u32>) {
        if !ids.is_empty() {
            self.queue.push_back((gen, ids));
        }
    }

    /// The generations with pages queued.
    pub fn queued_gens(&self) -> rustc_hash::FxHashSet<u64> {
        self.queue.iter().map(|(g, _)| *g).collect()
    }

    /// Pages still to delete.
    pub fn pending(&self) -> u64 {
        self.queue.iter().map(|(_, ids)| ids.len() as u64).sum()
    }

    /// Deletes up to [`GC_PAGES_PER_TICK`] queued pages (blind deletes: nothing is loaded).
    pub fn run(&mut self, engine: &mut Engine<Value>, now_ms: i64) {
        let mut budget = GC_PAGES_PER_TICK;
        if self.queue.is_empty() {
            return;
        }
        let pages: DbIndex = engine.pages_db();
        engine.begin_group();
        while budget > 0 {
            let Some((gen, ids)) = self.queue.front_mut() else {
                break;
            };
            let mut db = engine.db(pages, now_ms);
            let take = budget.min(ids.len());
            for id in ids.drain(ids.len() - take..) {
                db.delete_blind(&page_key(*gen, id));
            }
            budget -= take;
            self.deleted += take as u64;
            if ids.is_empty() {
                self.queue.pop_front();
            }
        }
        engine.end_group();
    }
}

/// The page group and numbers of the records a paged value's manifest is stored in beside its
/// own (the parts of a long list's, stream's or sorted set's table, see `parts`); `None` when
/// there are none.
pub fn manifest_parts_of(v: &Value) -> Option<(u64, Vec<u32>)> {
    match v {
        Value::PagedList(m) => {
            let ids = m.part_ids();
            (!ids.is_empty()).then(|| (parts::parts_group(m.gen), ids))
        }
        Value::PagedStream(m) => {
            let ids = m.idx.part_ids();
            (!ids.is_empty()).then(|| (parts::parts_group(m.idx.gen), ids))
        }
        Value::PagedZSet(m) => {
            let ids = m.part_ids();
            (!ids.is_empty()).then(|| (parts::parts_group(m.gen()), ids))
        }
        _ => None,
    }
}

/// The generation and page numbers of a paged value; `None` for one kept in one record.
pub fn pages_of(v: &Value) -> Option<(u64, Vec<u32>)> {
    match v {
        Value::PagedHash(m) | Value::PagedSet(m) => Some((m.gen, (0..m.page_count()).collect())),
        Value::PagedList(m) => Some((m.gen, m.page_ids())),
        Value::PagedZSet(m) => Some((m.gen(), m.page_ids())),
        Value::PagedStream(m) => Some((m.idx.gen, m.idx.page_ids())),
        _ => None,
    }
}

/// The generation of a paged value and how many pages it has, without listing them (the
/// request path's "is all of it in memory" check, see `Engine::resident_pages`).
pub fn page_total(v: &Value) -> Option<(u64, u32)> {
    match v {
        Value::PagedHash(m) | Value::PagedSet(m) => Some((m.gen, m.page_count())),
        Value::PagedList(m) => Some((m.gen, m.segs().len() as u32)),
        Value::PagedZSet(m) => Some((m.gen(), m.index.page_count() + m.segs().len() as u32)),
        Value::PagedStream(m) => Some((m.idx.gen, m.idx.pages().len() as u32)),
        _ => None,
    }
}

/// The generation of a paged value.
fn gen_of(v: &Value) -> Option<u64> {
    match v {
        Value::PagedHash(m) | Value::PagedSet(m) => Some(m.gen),
        Value::PagedList(m) => Some(m.gen),
        Value::PagedZSet(m) => Some(m.gen()),
        Value::PagedStream(m) => Some(m.idx.gen),
        _ => None,
    }
}

/// A paged value read whole into its one-record form (DUMP, SORT, a paged set as a source of
/// SINTER or ZUNION); `None` for a value that is
/// not paged. Every page is loaded.
pub fn materialize(
    engine: &mut Engine<Value>,
    v: &Value,
    now_ms: i64,
) -> Result<Option<Value>, StoreError> {
    Ok(match v {
        Value::PagedHash(m) => Some(Value::Hash(Box::new(hash::materialize(engine, m, now_ms)?))),
        Value::PagedList(m) => Some(Value::List(Box::new(crate::listval::List::from_deque(
            list::materialize(engine, m, now_ms)?,
        )))),
        Value::PagedSet(m) => Some(Value::Set(Box::new(hash::members(engine, m, now_ms)?))),
        Value::PagedZSet(m) => Some(Value::ZSet(zset::materialize(engine, m, now_ms)?)),
        Value::PagedStream(m) => Some(Value::Stream(Box::new(stream::materialize(
            engine, m, now_ms,
        )?))),
        _ => None,
    })
}

/// A copy of `v` for another key (COPY): a paged value gets pages of its own under a new
/// generation, never shared ones.
pub fn deep_copy(engine: &mut Engine<Value>, v: Value, now_ms: i64) -> Result<Value, StoreError> {
    Ok(match v {
        Value::PagedHash(m) => Value::PagedHash(Box::new(hash::deep_copy(engine, &m, now_ms)?)),
        Value::PagedList(m) => Value::PagedList(Box::new(list::deep_copy(engine, &m, now_ms)?)),
        Value::PagedSet(m) => Value::PagedSet(Box::new(hash::deep_copy(engine, &m, now_ms)?)),
        Value::PagedZSet(m) => Value::PagedZSet(Box::new(zset::deep_copy(engine, &m, now_ms)?)),
        Value::PagedStream(m) => {
            Value::PagedStream(Box::new(stream::deep_copy(engine, &m, now_ms)?))
        }
        v => v,
    })
}

/// After a command: the paged values it deleted or replaced have their pages queued for
/// deletion, unless the value is still under one of the command's keys in some DB (RENAME and
/// MOVE move a manifest; its pages stay).
pub fn collect_released(ctx: &mut Ctx, spec: &CommandSpec, args: &[Vec<u8>]) {
    let released = ctx.engine.take_released();
    if released.is_empty() {
        return;
    }
    let engine = &ctx.engine;
    let mut live = Vec::new();
    for key in spec.key_args(args) {
        for db in 0..engine.databases() as DbIndex {
            if let Some(gen) = engine.peek(db, key).and_then(gen_of) {
                live.push(gen);
            }
        }
    }
    for v in released {
        if let Some((gen, ids)) = pages_of(&v) {
            if !live.contains(&gen) {
                ctx.shared.page_gc.push(gen, ids);
                if let Some((group, ids)) = manifest_parts_of(&v) {
                    ctx.shared.page_gc.push(group, ids);
                }
            }
        }
    }
}

/// Outside commands (active expiry): every released paged value's pages are deleted.
pub fn collect_expired(engine: &mut Engine<Value>, gc: &mut Gc) {
    for v in engine.take_released() {
        if let Some((gen, ids)) = pages_of(&v) {
            gc.push(gen, ids);
        }
        if let Some((group, ids)) = manifest_parts_of(&v) {
            gc.push(group, ids);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_keys_are_unique_and_ordered_by_page() {
        assert_ne!(page_key(1, 2), page_key(2, 1));
        assert!(page_key(7, 1) < page_key(7, 2));
        assert_eq!(page_key(7, 1).len(), 12);
    }

    #[test]
    fn the_field_hash_is_fixed() {
        // Pages on disk are partitioned by this function: it must never change.
        assert_eq!(stable_hash(b"field"), 0x1f34_f4d6_2626_7e5a);
        assert_eq!(stable_hash(b""), 0xefd0_1f60_ba99_2926);
        let spread: std::collections::HashSet<u64> = (0..1000u32)
            .map(|i| stable_hash(&i.to_le_bytes()) & 15)
            .collect();
        assert_eq!(spread.len(), 16);
    }
}
