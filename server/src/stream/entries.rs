//! Where a stream's entries live, behind one interface: in the stream's own record (a
//! `BTreeMap`) or in pages (`paged::stream`). The stream's logic (node bookkeeping, trimming,
//! first-ID tracking) is written once against it in `ops`, so both forms reply the same.
//!
//! A paged stream's reads can fail (a page that cannot be read): every method returns a
//! `StoreError` then, and a write is complete when it returns, also on error.

use super::{Fields, StreamId};
use kvtier_core::StoreError;
use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};

pub type R<T> = Result<T, StoreError>;

/// Reading a stream's entries.
pub trait EntriesRead {
    /// Number of live entries.
    fn count(&self) -> u64;
    /// The first live entry's ID.
    fn first_id(&mut self) -> R<Option<StreamId>>;
    /// The last live entry's ID.
    fn last_id(&mut self) -> R<Option<StreamId>>;
    /// The fields of entry `id`, `None` when there is no such entry.
    fn get(&mut self, id: StreamId) -> R<Option<Fields>>;
    /// Entries with IDs in `[start, end]`, forwards or backwards, at most `count` (0 = all).
    fn range(
        &mut self,
        start: StreamId,
        end: StreamId,
        rev: bool,
        count: usize,
    ) -> R<Vec<(StreamId, Fields)>>;
    /// Number of live entries with an ID below `id`.
    fn count_below(&mut self, id: StreamId) -> R<u64>;

    fn contains(&mut self, id: StreamId) -> R<bool> {
        Ok(self.get(id)?.is_some())
    }
    /// The first and last live entries with their fields.
    fn first_entry(&mut self) -> R<Option<(StreamId, Fields)>> {
        Ok(self
            .range(StreamId::MIN, StreamId::MAX, false, 1)?
            .into_iter()
            .next())
    }
    fn last_entry(&mut self) -> R<Option<(StreamId, Fields)>> {
        Ok(self
            .range(StreamId::MIN, StreamId::MAX, true, 1)?
            .into_iter()
            .next())
    }
}

/// Changing a stream's entries (the node bookkeeping is the caller's, in `ops`).
pub trait EntriesWrite: EntriesRead {
    /// Appends an entry whose ID is above every live one.
    fn push(&mut self, id: StreamId, fields: Fields) -> R<()>;
    /// Removes entry `id`; whether it was there.
    fn remove(&mut self, id: StreamId) -> R<bool>;
    /// Removes the first `n` live entries (`n` at most the count).
    fn remove_first(&mut self, n: u64) -> R<()>;
}

/// The entries of a stream in one record, read (`&BTreeMap`) or changed (`&mut BTreeMap`).
pub struct Plain<M>(pub M);

impl<M: Deref<Target = BTreeMap<StreamId, Fields>>> EntriesRead for Plain<M> {
    fn count(&self) -> u64 {
        self.0.len() as u64
    }
    fn first_id(&mut self) -> R<Option<StreamId>> {
        Ok(self.0.keys().next().copied())
    }
    fn last_id(&mut self) -> R<Option<StreamId>> {
        Ok(self.0.keys().next_back().copied())
    }
    fn get(&mut self, id: StreamId) -> R<Option<Fields>> {
        Ok(self.0.get(&id).cloned())
    }
    fn contains(&mut self, id: StreamId) -> R<bool> {
        Ok(self.0.contains_key(&id))
    }
    fn range(
        &mut self,
        start: StreamId,
        end: StreamId,
        rev: bool,
        count: usize,
    ) -> R<Vec<(StreamId, Fields)>> {
        Ok(range_of(&self.0, start, end, rev, count))
    }
    fn count_below(&mut self, id: StreamId) -> R<u64> {
        Ok(self.0.range(..id).count() as u64)
    }
}

impl<M: DerefMut<Target = BTreeMap<StreamId, Fields>>> EntriesWrite for Plain<M> {
    fn push(&mut self, id: StreamId, fields: Fields) -> R<()> {
        self.0.insert(id, fields);
        Ok(())
    }
    fn remove(&mut self, id: StreamId) -> R<bool> {
        Ok(self.0.remove(&id).is_some())
    }
    fn remove_first(&mut self, n: u64) -> R<()> {
        for _ in 0..n {
            if self.0.pop_first().is_none() {
                break;
            }
        }
        Ok(())
    }
}

/// Entries of `map` with IDs in `[start, end]` (see [`EntriesRead::range`]), copied.
pub fn range_of(
    map: &BTreeMap<StreamId, Fields>,
    start: StreamId,
    end: StreamId,
    rev: bool,
    count: usize,
) -> Vec<(StreamId, Fields)> {
    if start > end {
        return Vec::new();
    }
    let it = map.range(start..=end).map(|(k, v)| (*k, v.clone()));
    let limit = if count == 0 { usize::MAX } else { count };
    if rev {
        it.rev().take(limit).collect()
    } else {
        it.take(limit).collect()
    }
}
