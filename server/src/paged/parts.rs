//! A long manifest's table stored in parts, so that a save rewrites what changed.
//!
//! The manifest of an ordered paged value (a list's segments, a stream's page index, a sorted
//! set's segments) holds a table with an entry per page, which grows with the value (16, 48 and
//! 38 or more bytes a page). Past one part's worth of entries (a value's `max`, about 8 kB of
//! table: [`PART_MAX`] list segments) it is stored as **parts**: consecutive runs of at most
//! `max` entries, each a record of its own in the page namespace, and the manifest's own record
//! holds only the parts' numbers and sizes. A part's bounds move with the entries it holds (a
//! push at the head grows the first part; a part past `max` splits, a nearly empty one joins a
//! neighbour), so a change rewrites one part, never shifts the others. In memory the table
//! stays whole.
//!
//! The parts are written by the manifest's own save, in the same batch
//! ([`kvtier_core::CacheValue::linked_writes`], on the IO worker): each part remembers the
//! layout's clock when it last changed, and the layout shares with every copy of the manifest
//! (a save's snapshot included) the clock of the last snapshot that reached the store, so a save
//! writes the parts changed since, and deletes the parts dropped since. A command only marks.

use super::{page_key, PageKey};
use kvtier_core::{LinkedCommit, LinkedWrite, StoreError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// List segments a part holds at most (8 kB); a part that grows past its `max` is split in two.
/// A table of more entries than `max` (a list of 4 MB in 8 kB pages) is stored in parts, and
/// goes back to one record below a quarter of it (apart, so that a value at the boundary does
/// not switch on every push).
pub const PART_MAX: usize = 512;
/// The entry count that marks a table stored in parts (the parts' table follows).
pub const IN_PARTS: u32 = u32::MAX;
/// Encoded size of the parts' head (count, next number) and of one part.
const PARTS_HEAD_LEN: usize = 4 + 4;
const PART_LEN: usize = 4 + 4;
/// The type tag of a part record: a string's (`value::TAG_STR`), its payload the segments.
const PART_TAG: u8 = 0;

/// The page group of a manifest's part records: not the value's own generation, so that parts
/// are not counted as its pages (`Engine::resident_pages`), but derived from it, so that the
/// page collector keeps them while the value lives (see `collector`).
pub fn parts_group(gen: u64) -> u64 {
    gen ^ (1 << 63)
}

/// The key of part record `id` of the value of generation `gen`.
pub fn part_key(gen: u64, id: u32) -> PageKey {
    page_key(parts_group(gen), id)
}

fn damaged(what: &str) -> StoreError {
    StoreError::Corruption(format!("damaged manifest parts: {what}"))
}

/// How a manifest's table is stored, and what of it has reached the store.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// Entries a part holds at most, and the most a table in one record holds (0: `PART_MAX`).
    max: usize,
    /// `Some` when the table is stored in parts.
    parts: Option<Parts>,
    /// Part records to delete: (number, clock when dropped); pruned once saved.
    dropped: Vec<(u32, u64)>,
    /// The next part number to hand out (never one still waiting for its delete).
    next_id: u32,
    /// Advances with every change of a part.
    clock: u64,
    durable: Durable,
}

/// Two layouts are the same when they store the table the same way (what each has saved is
/// not part of the value).
impl PartialEq for Layout {
    fn eq(&self, o: &Layout) -> bool {
        self.parts == o.parts
    }
}

impl Eq for Layout {}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Parts {
    list: Vec<Part>,
}

#[derive(Debug, Clone, Copy, Eq)]
struct Part {
    id: u32,
    /// Segments it holds (at least one).
    segs: u32,
    /// The layout's clock when it last changed (0: as read from the store).
    changed_at: u64,
}

impl PartialEq for Part {
    fn eq(&self, o: &Part) -> bool {
        (self.id, self.segs) == (o.id, o.segs)
    }
}

/// The clock of the last snapshot of a manifest whose save reached the store, shared by every
/// copy of the manifest.
#[derive(Debug, Clone, Default)]
struct Durable(Arc<AtomicU64>);

impl Durable {
    fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

impl Layout {
    /// A layout whose parts hold at most `max` entries (about 8 kB of table).
    pub fn new(max: usize) -> Self {
        Layout {
            max,
            ..Layout::default()
        }
    }

    fn max(&self) -> usize {
        if self.max == 0 {
            PART_MAX
        } else {
            self.max
        }
    }

    /// Whether the table is stored in parts.
    pub fn in_parts(&self) -> bool {
        self.parts.is_some()
    }

    /// The part holding segment `i` of `n` and the segment's position in it (walked from the
    /// nearer end: pushes and pops are at the ends); `None` when not in parts.
    fn part_of(&self, n: usize, i: usize) -> Option<usize> {
        let parts = &self.parts.as_ref()?.list;
        if i < n / 2 {
            let mut rest = i;
            for (p, part) in parts.iter().enumerate() {
                if rest < part.segs as usize {
                    return Some(p);
                }
                rest -= part.segs as usize;
            }
        } else {
            let mut rest = n.checked_sub(1 + i)?;
            for (p, part) in parts.iter().enumerate().rev() {
                if rest < part.segs as usize {
                    return Some(p);
                }
                rest -= part.segs as usize;
            }
        }
        None
    }

    fn mark(&mut self, p: usize) {
        self.clock += 1;
        if let Some(parts) = &mut self.parts {
            parts.list[p].changed_at = self.clock;
        }
    }

    fn new_part(&mut self, segs: u32) -> Part {
        self.clock += 1;
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        Part {
            id,
            segs,
            changed_at: self.clock,
        }
    }

    fn drop_part(&mut self, id: u32) {
        self.clock += 1;
        let durable = self.durable.get();
        self.dropped.retain(|&(_, at)| at > durable);
        self.dropped.push((id, self.clock));
    }

    /// Segment `i` of `n` changed.
    pub fn changed(&mut self, n: usize, i: usize) {
        if let Some(p) = self.part_of(n, i) {
            self.mark(p);
        }
    }

    /// A segment was inserted at `at` into a table of `n` (before the insert).
    pub fn inserted(&mut self, n: usize, at: usize) {
        if self.parts.is_none() {
            return self.reshape(n + 1);
        }
        // The part that grows: the one holding the segment now at `at`, or the last one.
        let p = if at < n {
            self.part_of(n, at)
        } else {
            self.parts
                .as_ref()
                .and_then(|ps| ps.list.len().checked_sub(1))
        };
        match p {
            Some(p) => {
                let max = self.max();
                self.mark(p);
                let part = &mut self.parts.as_mut().expect("in parts").list[p];
                part.segs += 1;
                if part.segs as usize > max {
                    let rest = part.segs - part.segs / 2;
                    part.segs -= rest;
                    let new = self.new_part(rest);
                    self.parts
                        .as_mut()
                        .expect("in parts")
                        .list
                        .insert(p + 1, new);
                }
            }
            None => {
                let new = self.new_part(1);
                self.parts.as_mut().expect("in parts").list.push(new);
            }
        }
        self.reshape(n + 1);
    }

    /// The segment at `at` of `n` (before the removal) was removed.
    pub fn removed(&mut self, n: usize, at: usize) {
        let Some(p) = self.part_of(n, at) else {
            return self.reshape(n - 1);
        };
        self.mark(p);
        let max = self.max();
        let list = &mut self.parts.as_mut().expect("in parts").list;
        list[p].segs -= 1;
        let left = list[p].segs as usize;
        if left == 0 {
            let gone = list.remove(p);
            self.drop_part(gone.id);
        } else if left < max / 8 {
            // A small part joins a neighbour it fits with (the later one is absorbed).
            let fits = |q: usize| list[q].segs as usize + left <= max;
            let pair = if p + 1 < list.len() && fits(p + 1) {
                Some(p)
            } else if p > 0 && fits(p - 1) {
                Some(p - 1)
            } else {
                None
            };
            if let Some(first) = pair {
                let later = list.remove(first + 1);
                list[first].segs += later.segs;
                self.drop_part(later.id);
                self.mark(first);
            }
        }
        self.reshape(n - 1);
    }

    /// Switches between one record and parts when a table of `n` segments crosses the bounds.
    pub fn reshape(&mut self, n: usize) {
        let max = self.max();
        match &self.parts {
            None if n > max => {
                let mut list = Vec::new();
                let mut left = n;
                while left > 0 {
                    let take = left.min(max / 2);
                    list.push(self.new_part(take as u32));
                    left -= take;
                }
                self.parts = Some(Parts { list });
            }
            Some(parts) if n < max / 4 => {
                let ids: Vec<u32> = parts.list.iter().map(|p| p.id).collect();
                self.parts = None;
                for id in ids {
                    self.drop_part(id);
                }
            }
            _ => {}
        }
    }

    /// Every part number with a record, or one waiting for its delete.
    pub fn part_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self.dropped.iter().map(|&(id, _)| id).collect();
        ids.extend(
            self.parts
                .iter()
                .flat_map(|ps| ps.list.iter().map(|p| p.id)),
        );
        ids
    }

    /// The records a save of this snapshot of the table of the value of generation `gen`
    /// writes beside the manifest's own (each part's payload written by `encode(first entry,
    /// entries, out)`): the parts changed and dropped since the last save that reached the
    /// store, and what marks this snapshot saved.
    pub fn writes(
        &self,
        gen: u64,
        encode: impl Fn(usize, usize, &mut Vec<u8>),
        out: &mut Vec<LinkedWrite>,
    ) -> Option<LinkedCommit> {
        let key = |id: u32| part_key(gen, id).to_vec();
        let durable = self.durable.get();
        let before = out.len();
        for &(id, _) in self.dropped.iter().filter(|&&(_, at)| at > durable) {
            out.push(LinkedWrite {
                key: key(id),
                put: None,
            });
        }
        if let Some(parts) = &self.parts {
            let mut at = 0;
            for part in &parts.list {
                let n = part.segs as usize;
                if part.changed_at > durable {
                    let mut payload = Vec::new();
                    encode(at, n, &mut payload);
                    out.push(LinkedWrite {
                        key: key(part.id),
                        put: Some((PART_TAG, payload)),
                    });
                }
                at += n;
            }
        }
        if out.len() == before {
            return None;
        }
        let (shared, clock) = (self.durable.0.clone(), self.clock);
        Some(Box::new(move || {
            shared.fetch_max(clock, Ordering::AcqRel);
        }))
    }

    /// The parts' table (after the manifest's head).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let Some(parts) = &self.parts else {
            return;
        };
        out.extend_from_slice(&(parts.list.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.next_id.to_le_bytes());
        for p in &parts.list {
            out.extend_from_slice(&p.id.to_le_bytes());
            out.extend_from_slice(&p.segs.to_le_bytes());
        }
    }

    /// A layout in parts of at most `max` entries from its table, as read from the store
    /// (nothing to write), and the bytes the table took at the start of `p`.
    pub fn decode(p: &[u8], max: usize) -> Result<(Self, usize), StoreError> {
        if p.len() < PARTS_HEAD_LEN {
            return Err(damaged("short parts table"));
        }
        let u32_at = |i: usize| u32::from_le_bytes(p[i..i + 4].try_into().expect("4 bytes"));
        let count = u32_at(0) as usize;
        let used = PARTS_HEAD_LEN + count * PART_LEN;
        if count == 0 || p.len() < used {
            return Err(damaged("parts table length"));
        }
        let mut list = Vec::with_capacity(count);
        for i in 0..count {
            let at = PARTS_HEAD_LEN + i * PART_LEN;
            let part = Part {
                id: u32_at(at),
                segs: u32_at(at + 4),
                changed_at: 0,
            };
            if part.segs == 0 {
                return Err(damaged("empty part"));
            }
            list.push(part);
        }
        let layout = Layout {
            parts: Some(Parts { list }),
            next_id: u32_at(4),
            ..Layout::new(max)
        };
        Ok((layout, used))
    }

    /// The table from its part records' payloads (`parts`, in order, as the load read them),
    /// each `entry_len` bytes an entry, decoded by `entry`.
    pub fn link<T>(
        &self,
        parts: Vec<Option<Vec<u8>>>,
        entry_len: usize,
        mut entry: impl FnMut(&[u8]) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        self.link_with(parts, |bytes, n, out| {
            if bytes.len() != n * entry_len {
                return Err(damaged("part length"));
            }
            for e in bytes.chunks_exact(entry_len) {
                out.push(entry(e)?);
            }
            Ok(())
        })
    }

    /// [`Layout::link`] for entries of varying length: `part(payload, entries, out)` decodes
    /// one part's payload, which must hold exactly `entries` entries, onto `out`.
    pub fn link_with<T>(
        &self,
        parts: Vec<Option<Vec<u8>>>,
        mut part: impl FnMut(&[u8], usize, &mut Vec<T>) -> Result<(), StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        if !self.in_parts() {
            return Err(damaged("not in parts"));
        }
        if parts.len() != self.parts().count() {
            return Err(damaged("part count"));
        }
        let mut out = Vec::new();
        for ((_, n), bytes) in self.parts().zip(parts) {
            let bytes = bytes.ok_or_else(|| damaged("a part record is missing"))?;
            let before = out.len();
            part(&bytes, n, &mut out)?;
            if out.len() - before != n {
                return Err(damaged("entries in a part"));
            }
        }
        Ok(out)
    }

    /// The keys of the part records a table of the value of generation `gen` read in parts
    /// still needs: none when not in parts or once it holds its entries (`linked`).
    pub fn linked_keys(&self, gen: u64, linked: bool) -> Vec<Vec<u8>> {
        if !self.in_parts() || linked {
            return Vec::new();
        }
        self.parts()
            .map(|(id, _)| part_key(gen, id).to_vec())
            .collect()
    }

    /// The part numbers in order, with the segments each holds.
    pub fn parts(&self) -> impl Iterator<Item = (u32, usize)> + '_ {
        self.parts
            .iter()
            .flat_map(|ps| ps.list.iter().map(|p| (p.id, p.segs as usize)))
    }

    /// Whether every part holds between one and `PART_MAX` segments, `n` in all, and the
    /// layout is the one for a table of `n` (tests).
    #[cfg(test)]
    pub fn is_sound(&self, n: usize) -> bool {
        match &self.parts {
            Some(ps) => {
                ps.list.iter().map(|p| p.segs as usize).sum::<usize>() == n
                    && ps
                        .list
                        .iter()
                        .all(|p| p.segs >= 1 && p.segs as usize <= self.max())
                    && n >= self.max() / 4
            }
            None => n <= self.max(),
        }
    }
}
