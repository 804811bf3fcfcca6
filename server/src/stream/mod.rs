//! The stream data type: entries by ID, the listpack nodes Redis would keep them in (so that
//! approximate trimming and XINFO's node counts behave as in Redis), and consumer groups.

pub mod codec;
pub mod entries;
pub mod group;
pub mod id;

use entries::R;
pub use entries::{EntriesRead, EntriesWrite, Plain};
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

    #[cfg(test)]
    /// Runs `f` on this stream in one record, its entries lent out as [`Plain`] for the
    /// duration (the logic below never touches `self.entries`).
    fn with_plain<T>(
        &mut self,
        f: impl FnOnce(&mut Stream, &mut Plain<&mut BTreeMap<StreamId, Fields>>) -> R<T>,
    ) -> T {
        let mut e = std::mem::take(&mut self.entries);
        let r = f(self, &mut Plain(&mut e));
        self.entries = e;
        r.expect("entries in one record cannot fail to read")
    }

    #[cfg(test)]
    /// Appends an entry (its ID already checked to be greater than `last_id`).
    pub fn append(&mut self, id: StreamId, fields: Fields, max_entries: u64, max_bytes: u64) {
        self.with_plain(|s, es| s.append_in(es, id, fields, max_entries, max_bytes))
    }

    #[cfg(test)]
    /// XDEL of one ID: `true` if it was there.
    pub fn delete(&mut self, id: StreamId) -> bool {
        self.with_plain(|s, es| s.delete_in(es, id))
    }

    #[cfg(test)]
    /// Trims as XADD/XTRIM do; `limit` 0 means no limit. Returns the number of entries removed.
    pub fn trim(&mut self, how: Trim, approx: bool, limit: u64) -> u64 {
        self.with_plain(|s, es| s.trim_in(es, how, approx, limit))
    }

    /// [`Stream::append`] with the entries in `es` (this `Stream` holds the rest).
    pub fn append_in(
        &mut self,
        es: &mut dyn EntriesWrite,
        id: StreamId,
        fields: Fields,
        max_entries: u64,
        max_bytes: u64,
    ) -> R<()> {
        let size: u64 = fields.iter().map(|f| lp_elem_size(f)).sum();
        let new_node = match self.nodes.iter_mut().next_back() {
            None => true,
            Some((_, n)) => {
                (max_bytes > 0 && n.bytes + size >= max_bytes)
                    || (max_entries > 0 && n.live + n.deleted >= max_entries)
            }
        };
        // The node the entry goes to, and whether its field names are the master entry's.
        let (master_id, same) = match self.nodes.iter().next_back() {
            Some((m, n)) if !new_node => (
                *m,
                fields.len() / 2 == n.master_fields.len()
                    && fields
                        .iter()
                        .step_by(2)
                        .zip(&n.master_fields)
                        .all(|(a, b)| a == b),
            ),
            _ => (id, true),
        };
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
        let names: Vec<Vec<u8>> = if new_node {
            fields.iter().step_by(2).cloned().collect()
        } else {
            Vec::new()
        };
        // The entry first: a page that cannot be written leaves the nodes as they were.
        es.push(id, fields)?;
        if new_node {
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
        let node = self
            .nodes
            .get_mut(&master_id)
            .expect("the node just chosen");
        node.bytes += entry;
        node.live += 1;
        node.last_id = id;
        self.last_id = id;
        self.entries_added = self.entries_added.wrapping_add(1);
        if es.count() == 1 {
            self.first_id = id;
        }
        Ok(())
    }

    /// The master ID of the node holding `id`.
    fn node_of(&self, id: StreamId) -> Option<StreamId> {
        self.nodes.range(..=id).next_back().map(|(k, _)| *k)
    }

    /// Flags one entry deleted (a node whose entries are all gone is removed).
    fn remove_entry(&mut self, es: &mut dyn EntriesWrite, id: StreamId) -> R<bool> {
        if !es.remove(id)? {
            return Ok(false);
        }
        if let Some(m) = self.node_of(id) {
            let n = self.nodes.get_mut(&m).expect("node");
            n.live = n.live.saturating_sub(1);
            n.deleted += 1;
            if n.live == 0 {
                self.nodes.remove(&m);
            }
        }
        Ok(true)
    }

    /// Where Redis records the first entry after deletions: the first live ID, or 0-0 when
    /// none is left.
    fn update_first_id(&mut self, es: &mut dyn EntriesWrite) -> R<()> {
        self.first_id = es.first_id()?.unwrap_or(StreamId::MIN);
        Ok(())
    }

    /// [`Stream::delete`] with the entries in `es`.
    pub fn delete_in(&mut self, es: &mut dyn EntriesWrite, id: StreamId) -> R<bool> {
        if !self.remove_entry(es, id)? {
            return Ok(false);
        }
        if id > self.max_deleted_id {
            self.max_deleted_id = id;
        }
        // No live entry below `id` left: the first one was deleted.
        if id < self.first_id || es.first_id()?.is_none_or(|f| f > id) {
            self.update_first_id(es)?;
        }
        Ok(true)
    }

    /// [`Stream::trim`] with the entries in `es`. Whole nodes go first (the first node holds
    /// the first live entries), then an exact trim cuts into the next; the entries go in one
    /// removal from the front at the end, so a paged stream reads at most the page it cuts.
    pub fn trim_in(
        &mut self,
        es: &mut dyn EntriesWrite,
        how: Trim,
        approx: bool,
        limit: u64,
    ) -> R<u64> {
        let len = es.count();
        if let Trim::MaxLen(max) = how {
            if len <= max {
                return Ok(0);
            }
        }
        let mut whole = 0u64;
        let mut gone_nodes = Vec::new();
        let mut cut_node = None;
        for (&master, node) in &self.nodes {
            let live = node.live;
            if limit > 0 && whole + live > limit {
                break;
            }
            let all = match how {
                Trim::MaxLen(max) => len.saturating_sub(whole).saturating_sub(live) >= max,
                Trim::MinId(min) => node.last_id < min,
            };
            if all {
                gone_nodes.push(master);
                whole += live;
                continue;
            }
            if !approx {
                cut_node = Some((master, live));
            }
            break;
        }
        let mut cut = 0;
        if let Some((_, live)) = cut_node {
            cut = match how {
                Trim::MaxLen(max) => len.saturating_sub(whole).saturating_sub(max),
                Trim::MinId(min) => es.count_below(min)?.saturating_sub(whole),
            }
            .min(live);
        }
        if whole + cut == 0 {
            return Ok(0);
        }
        es.remove_first(whole + cut)?;
        for master in gone_nodes {
            self.nodes.remove(&master);
        }
        if let Some((master, _)) = cut_node.filter(|_| cut > 0) {
            let n = self.nodes.get_mut(&master).expect("node");
            n.live -= cut;
            n.deleted += cut;
            if n.live == 0 {
                self.nodes.remove(&master);
            }
        }
        self.update_first_id(es)?;
        Ok(whole + cut)
    }

    /// Whether [`Stream::trim`] would remove anything (without changing the stream, so that a
    /// trim that does nothing leaves the key untouched, as in Redis).
    pub fn trim_would_remove(
        &self,
        es: &mut dyn EntriesRead,
        how: Trim,
        approx: bool,
        limit: u64,
    ) -> R<bool> {
        let len = es.count();
        let first = es.first_id()?;
        match how {
            Trim::MaxLen(max) if len <= max => return Ok(false),
            Trim::MinId(min) if first.is_none_or(|f| f >= min) => return Ok(false),
            _ if !approx => return Ok(true),
            _ => {}
        }
        let Some((_, node)) = self.nodes.iter().next() else {
            return Ok(false);
        };
        if limit > 0 && node.live > limit {
            return Ok(false);
        }
        Ok(match how {
            Trim::MaxLen(max) => len.saturating_sub(node.live) >= max,
            Trim::MinId(min) => node.last_id < min,
        })
    }

    /// The last live entry (of a stream in one record).
    pub fn last_entry(&self) -> Option<(StreamId, &Fields)> {
        self.entries.iter().next_back().map(|(k, v)| (*k, v))
    }

    /// Whether entries were deleted between `start` and the end of the stream, `len` entries
    /// long.
    pub fn has_tombstones_from(&self, len: u64, start: StreamId) -> bool {
        !(len == 0 || self.max_deleted_id.is_zero()) && start <= self.max_deleted_id
    }

    /// How many entries were ever added up to `id` (Redis's estimate of a group's
    /// `entries-read`), or `None` when that cannot be known; `len` is the stream's length.
    pub fn entries_before(&self, len: u64, id: StreamId) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if len == 0 && id <= self.last_id {
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
                return Some(self.entries_added.saturating_sub(len) as i64);
            }
            if id == self.first_id {
                return Some(self.entries_added.saturating_sub(len) as i64 + 1);
            }
        }
        None
    }

    /// A group's lag (entries not yet delivered), or `None` when unknown.
    pub fn group_lag(&self, len: u64, g: &Group) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if g.entries_read != group::ENTRIES_READ_UNKNOWN
            && !self.has_tombstones_from(len, g.last_id)
        {
            return Some((self.entries_added as i64).wrapping_sub(g.entries_read));
        }
        self.entries_before(len, g.last_id)
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
