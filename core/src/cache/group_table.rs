//! The pending save groups by id. Ids are handed out in sequence and groups mostly leave in
//! about the order they came, so a deque indexed by `id - base` holds them: creating a group
//! is a push at the back and finding one is an index, with no hashing and with neighbouring
//! groups in neighbouring memory (a hash table of 100,000 pending groups, one per key under a
//! random write stream, cost a cache miss or two per write).
//!
//! A group that stays while thousands after it are saved (a save that keeps failing) would
//! hold the base back and leave a hole per later group; the cron moves such a straggler into a
//! small side map, so memory follows the groups pending, not the ids handed out since.

use super::groups::Group;
use rustc_hash::FxHashMap;
use std::collections::VecDeque;

/// Holes tolerated in front of the recent groups before the oldest is moved aside.
const SPARSE_SLACK: usize = 1024;

#[derive(Debug, Default)]
pub(crate) struct GroupTable {
    /// Id of `slots[0]`.
    base: u64,
    /// `None`: saved, merged away, or never used. Never starts or ends with `None` (trimmed),
    /// except transiently inside a method.
    slots: VecDeque<Option<Group>>,
    /// Groups in `slots`.
    live: usize,
    /// Stragglers moved out of `slots` (see the module documentation); usually empty. Ids
    /// are ours, not a client's: Fx hashing is safe.
    old: FxHashMap<u64, Group>,
}

impl GroupTable {
    pub fn len(&self) -> usize {
        self.live + self.old.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn slot(&self, id: u64) -> Option<usize> {
        id.checked_sub(self.base)
            .map(|i| i as usize)
            .filter(|&i| i < self.slots.len())
    }

    pub fn get(&self, id: u64) -> Option<&Group> {
        if let Some(g) = self.old.get(&id) {
            return Some(g);
        }
        self.slot(id).and_then(|i| self.slots[i].as_ref())
    }

    #[cfg(test)]
    pub fn contains(&self, id: u64) -> bool {
        self.get(id).is_some()
    }

    /// The group `id`, created with `make` if absent (at any id, older ones included: a failed
    /// save puts its group back under its old id).
    pub fn get_or_insert_with(&mut self, id: u64, make: impl FnOnce() -> Group) -> &mut Group {
        if self.old.contains_key(&id) {
            return self.old.get_mut(&id).expect("present");
        }
        if self.slots.is_empty() {
            self.base = id;
        }
        if id < self.base {
            return self.old.entry(id).or_insert_with(make);
        }
        let i = (id - self.base) as usize;
        if i >= self.slots.len() {
            self.slots.resize_with(i + 1, || None);
        }
        let slot = &mut self.slots[i];
        if slot.is_none() {
            *slot = Some(make());
            self.live += 1;
        }
        slot.as_mut().expect("just filled")
    }

    pub fn remove(&mut self, id: u64) -> Option<Group> {
        if let Some(g) = self.old.remove(&id) {
            return Some(g);
        }
        let i = self.slot(id)?;
        let g = self.slots[i].take()?;
        self.live -= 1;
        self.trim();
        Some(g)
    }

    /// Drops empty slots at both ends, so the front is the oldest pending group.
    fn trim(&mut self) {
        while matches!(self.slots.front(), Some(None)) {
            self.slots.pop_front();
            self.base += 1;
        }
        while matches!(self.slots.back(), Some(None)) {
            self.slots.pop_back();
        }
    }

    /// Smallest id of a pending group.
    pub fn min_id(&self) -> Option<u64> {
        let recent = self.slots.front().map(|_| self.base);
        self.old.keys().copied().chain(recent).min()
    }

    pub fn values(&self) -> impl Iterator<Item = &Group> {
        self.old.values().chain(self.slots.iter().flatten())
    }

    /// Keeps the groups for which `keep(id, group)` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(u64, &mut Group) -> bool) {
        self.old.retain(|&id, g| keep(id, g));
        let base = self.base;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if let Some(g) = slot {
                if !keep(base + i as u64, g) {
                    *slot = None;
                    self.live -= 1;
                }
            }
        }
        self.trim();
    }

    /// Moves stragglers aside while the recent slots are mostly holes (called by the cron).
    pub fn compact(&mut self) {
        while self.slots.len() > 2 * self.live + SPARSE_SLACK {
            let Some(Some(g)) = self.slots.pop_front() else {
                unreachable!("trimmed: the front slot holds a group");
            };
            self.old.insert(self.base, g);
            self.base += 1;
            self.live -= 1;
            self.trim();
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.capacity()
    }

    /// Gives back spare capacity beyond `keep` slots.
    pub fn shrink_to(&mut self, keep: usize) {
        self.slots.shrink_to(keep.max(self.slots.len()));
    }

    /// Slots in use, holes included (what the memory is proportional to).
    pub fn span(&self) -> usize {
        self.slots.len() + self.old.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_come_and_go_in_any_order_and_older_ids_come_back() {
        let mut t = GroupTable::default();
        for id in 10..20 {
            t.get_or_insert_with(id, Group::new);
        }
        assert_eq!(t.len(), 10);
        assert!(t.remove(15).is_some());
        assert!(t.remove(15).is_none());
        assert!(t.remove(10).is_some());
        assert_eq!(t.min_id(), Some(11));
        // A failed save restores an id below the base.
        t.get_or_insert_with(3, Group::new);
        assert_eq!(t.min_id(), Some(3));
        assert_eq!(t.len(), 9);
        t.retain(|id, _| id % 2 == 1);
        assert_eq!(t.len(), 5, "3, 11, 13, 17, 19");
        assert_eq!(t.min_id(), Some(3));
        for id in [3, 11, 13, 17, 19] {
            assert!(t.contains(id), "{id}");
            t.remove(id);
        }
        assert!(t.is_empty());
        // A straggler with thousands saved after it is moved aside, and still found.
        t.get_or_insert_with(5000, Group::new);
        for id in 5001..10_000 {
            t.get_or_insert_with(id, Group::new);
        }
        for id in 5001..9_999 {
            t.remove(id);
        }
        assert_eq!(t.span(), 5000);
        t.compact();
        assert_eq!((t.len(), t.span()), (2, 2));
        assert!(t.contains(5000) && t.contains(9_999));
        assert_eq!(t.min_id(), Some(5000));
        t.get_or_insert_with(10_000, Group::new);
        assert_eq!(t.remove(5000).map(|g| g.keys.len()), Some(0));
        assert_eq!(t.min_id(), Some(9_999));
        t.remove(9_999);
        t.remove(10_000);
        assert!(t.is_empty());
        assert_eq!(t.span(), 0);
        assert_eq!(t.min_id(), None);
        // Ids far beyond the base after the table emptied start a new base.
        t.get_or_insert_with(1000, Group::new);
        assert_eq!((t.min_id(), t.span()), (Some(1000), 1));
        assert_eq!(t.get(1000).map(|g| g.keys.len()), Some(0));
    }
}
