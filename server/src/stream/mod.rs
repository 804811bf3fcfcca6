//! The stream data type: entries by ID, the listpack nodes Redis would keep them in (so that
//! approximate trimming and XINFO's node counts behave as in Redis), and consumer groups.

pub mod codec;
pub mod group;
pub mod id;

use group::Group;
pub use id::StreamId;
use std::collections::BTreeMap;

/// Field/value pairs, flattened: `[f1, v1, f2, v2, …]`.
pub type Fields = Vec<Vec<u8>>;

/// One listpack node as Redis would build it: entries are appended to the newest node until it
/// holds `stream-node-max-entries` entries or `stream-node-max-bytes` bytes. Deleted entries
/// stay in their node (flagged) until every entry of the node is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Live entries.
    pub live: u64,
    /// Entries flagged deleted.
    pub deleted: u64,
    /// Estimated listpack size in bytes.
    pub bytes: u64,
    /// The fields of the node's first entry (the "master entry").
    pub master_fields: Vec<Vec<u8>>,
    /// The ID of the last entry appended to the node (live or not).
    pub last_id: StreamId,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stream {
    pub entries: BTreeMap<StreamId, Fields>,
    /// Keyed by the node's master ID (its first entry's ID).
    pub nodes: BTreeMap<StreamId, Node>,
    pub last_id: StreamId,
    /// The first live entry's ID as Redis records it (0-0 before any entry).
    pub first_id: StreamId,
    pub entries_added: u64,
    pub max_deleted_id: StreamId,
    /// By name, in byte order.
    pub groups: BTreeMap<Vec<u8>, Group>,
}

/// How a trim decides what goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

/// Bytes a listpack element takes for `s` (string or integer encoding, plus its back-length).
fn lp_elem_size(s: &[u8]) -> u64 {
    let data = match crate::util::parse_i64(s) {
        Some(v) if s.len() <= 20 && v.to_string().as_bytes() == s => match v {
            0..=127 => 1,
            -4096..=4095 => 2,
            -32768..=32767 => 3,
            -8388608..=8388607 => 4,
            -2147483648..=2147483647 => 5,
            _ => 9,
        },
        _ => match s.len() {
            0..=63 => 1 + s.len(),
            64..=4095 => 2 + s.len(),
            n => 5 + n,
        },
    } as u64;
    let back = match data {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    };
    data + back
}

fn lp_int_size(v: u64) -> u64 {
    lp_elem_size(v.to_string().as_bytes())
}

impl Stream {
    pub fn len(&self) -> u64 {
        self.entries.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The ID XADD `*` or `<ms>-*` gives (or `None` when no greater ID exists), with the
    /// current time `now_ms`.
    pub fn next_auto_id(&self, now_ms: u64, ms: Option<u64>) -> Option<StreamId> {
        match ms {
            None => {
                if now_ms > self.last_id.ms {
                    Some(StreamId::new(now_ms, 0))
                } else {
                    self.last_id.incr()
                }
            }
            Some(ms) if ms == self.last_id.ms => {
                (self.last_id.seq < u64::MAX).then(|| StreamId::new(ms, self.last_id.seq + 1))
            }
            Some(ms) if ms > self.last_id.ms => Some(StreamId::new(ms, 0)),
            Some(_) => None,
        }
    }

    /// Appends an entry (its ID already checked to be greater than `last_id`).
    pub fn append(&mut self, id: StreamId, fields: Fields, max_entries: u64, max_bytes: u64) {
        let size: u64 = fields.iter().map(|f| lp_elem_size(f)).sum();
        let new_node = match self.nodes.iter_mut().next_back() {
            None => true,
            Some((_, n)) => {
                (max_bytes > 0 && n.bytes + size >= max_bytes)
                    || (max_entries > 0 && n.live + n.deleted >= max_entries)
            }
        };
        if new_node {
            let names: Vec<Vec<u8>> = fields.iter().step_by(2).cloned().collect();
            // Header, count, deleted, field count, the fields, the master terminator.
            let master: u64 = 6
                + 2
                + 2
                + lp_int_size(names.len() as u64)
                + names.iter().map(|f| lp_elem_size(f)).sum::<u64>()
                + 2
                + 1;
            self.nodes.insert(
                id,
                Node {
                    live: 0,
                    deleted: 0,
                    bytes: master,
                    master_fields: names,
                    last_id: id,
                },
            );
        }
        let (master_id, node) = self.nodes.iter_mut().next_back().expect("a node");
        let same = fields.len() / 2 == node.master_fields.len()
            && fields
                .iter()
                .step_by(2)
                .zip(&node.master_fields)
                .all(|(a, b)| a == b);
        let ms_diff = id.ms - master_id.ms;
        // Both parts are stored as differences from the master ID (the sequence's may be
        // negative, as a signed 64-bit integer).
        let seq_diff = id.seq.wrapping_sub(master_id.seq) as i64;
        let mut entry = 1 + lp_int_size(ms_diff) + lp_elem_size(seq_diff.to_string().as_bytes());
        if same {
            entry += fields
                .iter()
                .skip(1)
                .step_by(2)
                .map(|f| lp_elem_size(f))
                .sum::<u64>();
        } else {
            entry += lp_int_size(fields.len() as u64 / 2) + size;
        }
        let lp_count = if same {
            fields.len() as u64 / 2 + 3
        } else {
            fields.len() as u64 + 4
        };
        entry += lp_int_size(lp_count);
        node.bytes += entry;
        node.live += 1;
        node.last_id = id;
        self.entries.insert(id, fields);
        self.last_id = id;
        self.entries_added = self.entries_added.wrapping_add(1);
        if self.entries.len() == 1 {
            self.first_id = id;
        }
    }

    /// The master ID of the node holding `id`.
    fn node_of(&self, id: StreamId) -> Option<StreamId> {
        self.nodes.range(..=id).next_back().map(|(k, _)| *k)
    }

    /// Flags one entry deleted (a node whose entries are all gone is removed).
    fn remove_entry(&mut self, id: StreamId) -> bool {
        if self.entries.remove(&id).is_none() {
            return false;
        }
        if let Some(m) = self.node_of(id) {
            let n = self.nodes.get_mut(&m).expect("node");
            n.live = n.live.saturating_sub(1);
            n.deleted += 1;
            if n.live == 0 {
                self.nodes.remove(&m);
            }
        }
        true
    }

    /// Where Redis records the first entry after deletions: the first live ID, or 0-0 when
    /// none is left.
    fn update_first_id(&mut self) {
        self.first_id = self.entries.keys().next().copied().unwrap_or(StreamId::MIN);
    }

    /// XDEL of one ID: `true` if it was there.
    pub fn delete(&mut self, id: StreamId) -> bool {
        if !self.remove_entry(id) {
            return false;
        }
        if id > self.max_deleted_id {
            self.max_deleted_id = id;
        }
        if id < self.first_id || self.entries.range(..id).next().is_none() {
            self.update_first_id();
        }
        true
    }

    /// Trims as XADD/XTRIM do; `limit` 0 means no limit. Returns the number of entries removed.
    pub fn trim(&mut self, how: Trim, approx: bool, limit: u64) -> u64 {
        if let Trim::MaxLen(max) = how {
            if self.len() <= max {
                return 0;
            }
        }
        let mut deleted = 0u64;
        while let Some((&master, node)) = self.nodes.iter().next() {
            let live = node.live;
            if limit > 0 && deleted + live > limit {
                break;
            }
            let whole = match how {
                Trim::MaxLen(max) => self.len() - live >= max,
                Trim::MinId(min) => node.last_id < min,
            };
            if whole {
                let ids: Vec<StreamId> = self
                    .entries
                    .range(master..)
                    .take(live as usize)
                    .map(|(k, _)| *k)
                    .collect();
                for id in ids {
                    self.entries.remove(&id);
                }
                self.nodes.remove(&master);
                deleted += live;
                continue;
            }
            if approx {
                break;
            }
            let ids: Vec<StreamId> = self
                .entries
                .range(master..)
                .take(live as usize)
                .map(|(k, _)| *k)
                .collect();
            for id in ids {
                let stop = match how {
                    Trim::MaxLen(max) => self.len() <= max,
                    Trim::MinId(min) => id >= min,
                };
                if stop {
                    break;
                }
                self.remove_entry(id);
                deleted += 1;
            }
            break;
        }
        if deleted > 0 {
            self.update_first_id();
        }
        deleted
    }

    /// Whether [`Stream::trim`] would remove anything (without changing the stream, so that a
    /// trim that does nothing leaves the key untouched, as in Redis).
    pub fn trim_would_remove(&self, how: Trim, approx: bool, limit: u64) -> bool {
        let first = self.first_entry().map(|(id, _)| id);
        match how {
            Trim::MaxLen(max) if self.len() <= max => return false,
            Trim::MinId(min) if first.is_none_or(|f| f >= min) => return false,
            _ if !approx => return true,
            _ => {}
        }
        let Some((_, node)) = self.nodes.iter().next() else {
            return false;
        };
        if limit > 0 && node.live > limit {
            return false;
        }
        match how {
            Trim::MaxLen(max) => self.len() - node.live >= max,
            Trim::MinId(min) => node.last_id < min,
        }
    }

    /// Entries with IDs in `[start, end]`, forwards or backwards, at most `count` (0 = all).
    pub fn range(
        &self,
        start: StreamId,
        end: StreamId,
        rev: bool,
        count: usize,
    ) -> Vec<(StreamId, &Fields)> {
        if start > end {
            return Vec::new();
        }
        let it = self.entries.range(start..=end).map(|(k, v)| (*k, v));
        let limit = if count == 0 { usize::MAX } else { count };
        if rev {
            it.rev().take(limit).collect()
        } else {
            it.take(limit).collect()
        }
    }

    /// The first and last live entries.
    pub fn first_entry(&self) -> Option<(StreamId, &Fields)> {
        self.entries.iter().next().map(|(k, v)| (*k, v))
    }

    pub fn last_entry(&self) -> Option<(StreamId, &Fields)> {
        self.entries.iter().next_back().map(|(k, v)| (*k, v))
    }

    /// Whether entries were deleted between `start` and the end of the stream.
    pub fn has_tombstones_from(&self, start: StreamId) -> bool {
        !(self.entries.is_empty() || self.max_deleted_id.is_zero()) && start <= self.max_deleted_id
    }

    /// How many entries were ever added up to `id` (Redis's estimate of a group's
    /// `entries-read`), or `None` when that cannot be known.
    pub fn entries_before(&self, id: StreamId) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.is_empty() && id <= self.last_id {
            return Some(self.entries_added as i64);
        }
        if id == self.last_id {
            return Some(self.entries_added as i64);
        }
        if id > self.last_id {
            return None;
        }
        if self.max_deleted_id.is_zero() || self.max_deleted_id < self.first_id {
            if id < self.first_id {
                return Some(self.entries_added.saturating_sub(self.len()) as i64);
            }
            if id == self.first_id {
                return Some(self.entries_added.saturating_sub(self.len()) as i64 + 1);
            }
        }
        None
    }

    /// A group's lag (entries not yet delivered), or `None` when unknown.
    pub fn group_lag(&self, g: &Group) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if g.entries_read != group::ENTRIES_READ_UNKNOWN && !self.has_tombstones_from(g.last_id) {
            return Some((self.entries_added as i64).wrapping_sub(g.entries_read));
        }
        self.entries_before(g.last_id)
            .map(|read| (self.entries_added as i64).wrapping_sub(read))
    }

    /// The number of nodes of Redis's radix tree holding the listpack nodes (XINFO's
    /// `radix-tree-nodes`): the root, every leaf, every branching point and every child of one.
    pub fn rax_nodes(&self) -> u64 {
        fn count(keys: &[[u8; 16]], depth: usize, node_start: bool) -> u64 {
            if depth == 16 {
                return 1;
            }
            let mut children: Vec<&[[u8; 16]]> = Vec::new();
            let mut i = 0;
            while i < keys.len() {
                let c = keys[i][depth];
                let j = i + keys[i..].iter().take_while(|k| k[depth] == c).count();
                children.push(&keys[i..j]);
                i = j;
            }
            let branching = children.len() >= 2;
            let here = u64::from(node_start || branching);
            here + children
                .iter()
                .map(|ch| count(ch, depth + 1, branching))
                .sum::<u64>()
        }
        let keys: Vec<[u8; 16]> = self.nodes.keys().map(|k| k.to_be_bytes()).collect();
        if keys.is_empty() {
            return 1;
        }
        count(&keys, 0, true)
    }

    pub fn mem_size(&self) -> usize {
        let entries: usize = self
            .entries
            .values()
            .map(|f| 48 + f.iter().map(|x| x.len() + 24).sum::<usize>())
            .sum();
        let nodes: usize = self
            .nodes
            .values()
            .map(|n| 64 + n.master_fields.iter().map(|f| f.len() + 24).sum::<usize>())
            .sum();
        let groups: usize = self
            .groups
            .iter()
            .map(|(n, g)| n.len() + g.mem_size())
            .sum();
        96 + entries + nodes + groups
    }
}
