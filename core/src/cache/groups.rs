//! Save groups: sets of dirty keys that must reach disk in one backend batch.
//!
//! Every key changed by one command (or one EXEC) joins that command's group. When a key that is
//! still dirty in an older group is changed again, the two groups merge: saving the key's newer
//! value alone would expose half of the newer command on disk.
//!
//! A key's group is recorded in its cache entry (`Entry::group`), which is the truth; a group's
//! key list is only the set of candidates to save. So the list is appended to without searching
//! (a key is appended exactly when it enters a group from clean or from a save in flight), and a
//! stale or repeated candidate is skipped when the group is dispatched. Every operation here is
//! therefore O(1) per key: an MSET of 100,000 keys or a FLUSHDB of a large dirty group must not
//! stall the owner thread.

use super::group_table::GroupTable;
use crate::store::DbIndex;
use smallvec::SmallVec;
use std::collections::VecDeque;
use std::time::Instant;

/// A group's candidate keys. Under random single-key writes nearly every group holds one key
/// for its whole life, so that one is stored inline: a `Vec` allocated room for four (128
/// bytes) on its first push, which made a dirty key cost about 250 bytes on top of its entry.
pub(crate) type GroupKeys = SmallVec<[(DbIndex, Vec<u8>); 1]>;

#[derive(Debug)]
pub(crate) struct Group {
    pub keys: GroupKeys,
    pub since: Instant,
    /// Set after a failed save: not retried before this instant. Boxed: rare, and a pending
    /// group per dirty key makes every byte of `Group` count.
    pub retry_at: Option<Box<Instant>>,
}

impl Group {
    pub(crate) fn new() -> Self {
        Group {
            keys: GroupKeys::new(),
            since: Instant::now(),
            retry_at: None,
        }
    }

    /// When a failed save of this group may be retried.
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at.as_deref().copied()
    }
}

#[derive(Debug, Default)]
pub(crate) struct Groups {
    next_id: u64,
    /// Group of the running command, if one is open (`Some(0)`: open, no key changed yet).
    current: Option<u64>,
    pub groups: GroupTable,
    /// Group ids in order of creation; ids of merged or saved groups are skipped when popped.
    pub queue: VecDeque<u64>,
    dirty_keys: usize,
}

/// Below this many slots a table is not worth shrinking.
const SHRINK_FLOOR: usize = 1024;

impl Groups {
    /// Gives back the memory of a burst: a write storm can leave hundreds of thousands of
    /// groups pending, and a drained table keeps its capacity (about 80 bytes a slot) until it
    /// is shrunk. Called from the cron; O(len) only when most of the capacity is unused.
    pub fn shrink_idle(&mut self) {
        self.groups.compact();
        if self.groups.capacity() > SHRINK_FLOOR.max(4 * self.groups.span()) {
            self.groups.shrink_to(2 * self.groups.span());
        }
        if self.queue.capacity() > SHRINK_FLOOR.max(4 * self.queue.len()) {
            self.queue.shrink_to(2 * self.queue.len());
        }
    }

    /// Opens a group; it is created lazily by the first key that changes.
    pub fn begin(&mut self) {
        self.current = Some(0);
    }

    pub fn end(&mut self) {
        self.current = None;
    }

    /// The group of the command running now, which must not be saved before the command ends
    /// (a transaction is one batch even if a barrier is asked for in its middle).
    pub fn open_group(&self) -> Option<u64> {
        self.current.filter(|&c| c != 0)
    }

    pub fn dirty_keys(&self) -> usize {
        self.dirty_keys
    }

    /// Makes sure group `id` exists (in the queue too), creating it if needed.
    fn ensure(&mut self, id: u64) -> &mut Group {
        let queue = &mut self.queue;
        self.groups.get_or_insert_with(id, || {
            queue.push_back(id);
            Group::new()
        })
    }

    /// Puts a just-changed key into the current group. Returns the group it now belongs to and
    /// the keys whose group changed through a merge (the caller relabels their entries).
    /// Groups merge into the smaller id, so a key's group id never grows while it stays dirty:
    /// a barrier that waits for "every group up to id B" therefore covers every change made
    /// before it.
    ///
    /// `old_group` is the entry's group (0 when clean, or while a save of it is in flight).
    pub fn join(
        &mut self,
        db: DbIndex,
        key: &[u8],
        old_group: u64,
        was_dirty: bool,
    ) -> (u64, Vec<(DbIndex, Vec<u8>)>) {
        if !was_dirty {
            self.dirty_keys += 1;
        }
        let old = if was_dirty { old_group } else { 0 };
        let mut moved = Vec::new();
        let target = match (self.current, old) {
            (Some(0), 0) | (None, 0) => {
                // The common case (one command, one key): created with its key, one lookup.
                self.next_id += 1;
                let id = self.next_id;
                let mut g = Group::new();
                g.keys.push((db, key.to_vec()));
                *self.groups.get_or_insert_with(id, Group::new) = g;
                self.queue.push_back(id);
                if self.current.is_some() {
                    self.current = Some(id);
                }
                return (id, moved);
            }
            (Some(0), g) => {
                self.current = Some(g);
                g
            }
            (None, g) => g,
            (Some(c), 0) => c,
            (Some(c), g) if g == c => c,
            (Some(c), g) => {
                let (small, large) = (c.min(g), c.max(g));
                moved = self.merge_into(large, small);
                self.current = Some(small);
                small
            }
        };
        // Only a key that was in no group is new to this one; otherwise it is already listed
        // (in `target`, or in a group just merged into it), and the group exists.
        if old == 0 {
            self.ensure(target).keys.push((db, key.to_vec()));
        }
        (target, moved)
    }

    /// Moves the keys of `from` into `into` and returns them (so their entries can be relabeled).
    pub fn merge_into(&mut self, from: u64, into: u64) -> Vec<(DbIndex, Vec<u8>)> {
        if from == 0 || from == into {
            return Vec::new();
        }
        let Some(old) = self.groups.remove(from) else {
            return Vec::new();
        };
        let target = self.ensure(into);
        target.since = target.since.min(old.since);
        // A group waiting out a failed save keeps its backoff: merging a new write into it must
        // not turn a failing store into a busy loop.
        target.retry_at = target.retry_at.take().max(old.retry_at);
        target.keys.extend(old.keys.iter().cloned());
        old.keys.into_vec()
    }

    /// Removes a group whose keys are being folded into a restored (older) group after a failed
    /// save, returning its keys.
    pub fn merge_into_restored(&mut self, id: u64) -> Vec<(DbIndex, Vec<u8>)> {
        self.groups
            .remove(id)
            .map(|g| g.keys.into_vec())
            .unwrap_or_default()
    }

    /// Takes a group out for saving.
    pub fn take(&mut self, id: u64) -> Option<Group> {
        self.groups.remove(id)
    }

    /// Puts back a group whose save failed, to be retried after `retry_at`.
    pub fn restore(&mut self, id: u64, keys: Vec<(DbIndex, Vec<u8>)>, retry_at: Instant) {
        let g = self.groups.get_or_insert_with(id, Group::new);
        g.keys.extend(keys);
        g.retry_at = Some(Box::new(g.retry_at().map_or(retry_at, |t| t.max(retry_at))));
        self.queue.push_front(id);
    }

    /// Smallest id of a group still waiting to be saved.
    pub fn min_pending(&self) -> Option<u64> {
        self.groups.min_id()
    }

    pub fn last_id(&self) -> u64 {
        self.next_id
    }

    /// Dirty keys of the cleared DBs left the cache without being saved (FLUSHDB/FLUSHALL):
    /// `forgotten` of them were dirty. One pass over the groups, whatever their size. The open
    /// group of a running command stays (empty if need be): the command's next write joins it.
    pub fn forget_db(&mut self, db: Option<DbIndex>, forgotten: usize) {
        self.dirty_keys = self.dirty_keys.saturating_sub(forgotten);
        let open = self.open_group();
        self.groups.retain(|id, g| {
            g.keys.retain(|(d, _)| db.is_some_and(|c| c != *d));
            !g.keys.is_empty() || Some(id) == open
        });
    }

    /// A key became clean (its save completed with the current version).
    pub fn cleaned(&mut self) {
        self.dirty_keys = self.dirty_keys.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One pending group per dirty key is the common case under random writes: its key must
    /// not cost an allocation of its own beyond the key bytes, and the group stays small.
    #[test]
    fn a_one_key_group_keeps_its_key_inline() {
        let mut g = Groups::default();
        let (id, _) = g.join(0, b"k", 0, false);
        let group = g.groups.get(id).expect("created");
        assert_eq!(group.keys.len(), 1);
        assert!(!group.keys.spilled());
        assert!(
            std::mem::size_of::<Group>() <= 64,
            "{}",
            std::mem::size_of::<Group>()
        );
    }

    /// A burst of groups drained by saves leaves its table's capacity behind until the cron
    /// shrinks it; groups still pending keep their slots.
    #[test]
    fn a_drained_burst_gives_its_memory_back() {
        let mut g = Groups::default();
        let ids: Vec<u64> = (0..50_000u32)
            .map(|i| g.join(0, &i.to_be_bytes(), 0, false).0)
            .collect();
        let burst = g.groups.capacity();
        for id in &ids[..49_990] {
            g.take(*id);
        }
        g.shrink_idle();
        assert!(
            g.groups.capacity() < burst / 8,
            "{} of {burst}",
            g.groups.capacity()
        );
        assert_eq!(g.groups.len(), 10);
        assert!(ids[49_990..].iter().all(|id| g.groups.contains(*id)));
    }
}
