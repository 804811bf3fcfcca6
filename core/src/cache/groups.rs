//! Save groups: sets of dirty keys that must reach disk in one backend batch.
//!
//! Every key changed by one command (or one EXEC) joins that command's group. When a key that is
//! still dirty in an older group is changed again, the two groups merge: saving the key's newer
//! value alone would expose half of the newer command on disk.

use crate::store::DbIndex;
use std::collections::{HashMap, VecDeque};
use std::time::Instant;

#[derive(Debug)]
pub(crate) struct Group {
    pub keys: Vec<(DbIndex, Vec<u8>)>,
    pub since: Instant,
    /// Set after a failed save: not retried before this instant.
    pub retry_at: Option<Instant>,
}

#[derive(Debug, Default)]
pub(crate) struct Groups {
    next_id: u64,
    /// Group of the running command, if one is open.
    current: Option<u64>,
    pub groups: HashMap<u64, Group>,
    /// Group ids in order of creation; ids of merged or saved groups are skipped when popped.
    pub queue: VecDeque<u64>,
    dirty_keys: usize,
}

impl Groups {
    /// Opens a group; it is created lazily by the first key that changes (`Some(0)`).
    pub fn begin(&mut self) {
        self.current = Some(0);
    }

    pub fn end(&mut self) {
        self.current = None;
    }

    pub fn dirty_keys(&self) -> usize {
        self.dirty_keys
    }

    fn new_group(&mut self) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.groups.insert(
            id,
            Group {
                keys: Vec::new(),
                since: Instant::now(),
                retry_at: None,
            },
        );
        self.queue.push_back(id);
        id
    }

    /// Puts a just-changed key into the current group. Returns the group it now belongs to and
    /// the keys whose group changed through a merge (the caller relabels their entries).
    /// Groups merge into the smaller id, so a key's group id never grows while it stays dirty:
    /// a barrier that waits for "every group up to id B" therefore covers every change made
    /// before it.
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
                let id = self.new_group();
                if self.current.is_some() {
                    self.current = Some(id);
                }
                id
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
        let keys = &mut self
            .groups
            .get_mut(&target)
            .expect("target group exists")
            .keys;
        if !keys.iter().any(|(d, k)| *d == db && k == key) {
            keys.push((db, key.to_vec()));
        }
        (target, moved)
    }

    /// Moves the keys of `from` into `into` and returns them (so their entries can be relabeled).
    pub fn merge_into(&mut self, from: u64, into: u64) -> Vec<(DbIndex, Vec<u8>)> {
        if from == 0 || from == into {
            return Vec::new();
        }
        let Some(old) = self.groups.remove(&from) else {
            return Vec::new();
        };
        let target = self.groups.get_mut(&into).expect("target group exists");
        target.since = target.since.min(old.since);
        target.retry_at = None;
        for k in &old.keys {
            if !target.keys.contains(k) {
                target.keys.push(k.clone());
            }
        }
        old.keys
    }

    /// Removes a group whose keys are being folded into a restored (older) group after a failed
    /// save, returning its keys.
    pub fn merge_into_restored(&mut self, id: u64) -> Vec<(DbIndex, Vec<u8>)> {
        self.groups.remove(&id).map(|g| g.keys).unwrap_or_default()
    }

    /// Takes a group out for saving.
    pub fn take(&mut self, id: u64) -> Option<Group> {
        self.groups.remove(&id)
    }

    /// Puts back a group whose save failed, to be retried after `retry_at`.
    pub fn restore(&mut self, id: u64, keys: Vec<(DbIndex, Vec<u8>)>, retry_at: Instant) {
        let g = self.groups.entry(id).or_insert_with(|| Group {
            keys: Vec::new(),
            since: Instant::now(),
            retry_at: None,
        });
        for k in keys {
            if !g.keys.contains(&k) {
                g.keys.push(k);
            }
        }
        g.retry_at = Some(retry_at);
        self.queue.push_front(id);
    }

    /// Smallest id of a group still waiting to be saved.
    pub fn min_pending(&self) -> Option<u64> {
        self.groups.keys().copied().min()
    }

    pub fn last_id(&self) -> u64 {
        self.next_id
    }

    /// A dirty key left the cache without being saved (FLUSHDB).
    pub fn forget(&mut self, db: DbIndex, key: &[u8], group: u64) {
        self.dirty_keys = self.dirty_keys.saturating_sub(1);
        if let Some(g) = self.groups.get_mut(&group) {
            g.keys.retain(|(d, k)| !(*d == db && k == key));
            if g.keys.is_empty() {
                self.groups.remove(&group);
            }
        }
    }

    /// A key became clean (its save completed with the current version).
    pub fn cleaned(&mut self) {
        self.dirty_keys = self.dirty_keys.saturating_sub(1);
    }
}
