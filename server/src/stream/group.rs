//! Consumer groups: the last delivered ID, the pending entries list (PEL) and the consumers.

use super::id::StreamId;
use std::collections::{BTreeMap, BTreeSet};

/// `entries-read` when the group's position in the stream is not known.
pub const ENTRIES_READ_UNKNOWN: i64 = -1;

/// An entry delivered to a consumer and not yet acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub consumer: Vec<u8>,
    /// Unix time (ms) of the last delivery.
    pub delivery_time: i64,
    pub delivery_count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Consumer {
    /// Unix time (ms) the consumer last did something.
    pub seen_time: i64,
    /// The IDs of its pending entries (the group's PEL holds their details).
    pub pel: BTreeSet<StreamId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub last_id: StreamId,
    pub entries_read: i64,
    pub pel: BTreeMap<StreamId, Pending>,
    /// By name, in byte order (the order Redis lists them in).
    pub consumers: BTreeMap<Vec<u8>, Consumer>,
}

impl Group {
    pub fn new(last_id: StreamId, entries_read: i64) -> Group {
        Group {
            last_id,
            entries_read,
            pel: BTreeMap::new(),
            consumers: BTreeMap::new(),
        }
    }

    /// The consumer `name`, created if missing; `true` in the second field when created.
    pub fn consumer(&mut self, name: &[u8], now: i64) -> (&mut Consumer, bool) {
        let created = !self.consumers.contains_key(name);
        let c = self
            .consumers
            .entry(name.to_vec())
            .or_insert_with(|| Consumer {
                seen_time: now,
                pel: BTreeSet::new(),
            });
        (c, created)
    }

    /// Removes a consumer and its pending entries; returns how many were pending.
    pub fn delete_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let c = self.consumers.remove(name)?;
        for id in &c.pel {
            self.pel.remove(id);
        }
        Some(c.pel.len())
    }

    /// Acknowledges `id`: drops it from the PEL and its consumer's list. `true` if it was there.
    pub fn ack(&mut self, id: StreamId) -> bool {
        let Some(p) = self.pel.remove(&id) else {
            return false;
        };
        if let Some(c) = self.consumers.get_mut(&p.consumer) {
            c.pel.remove(&id);
        }
        true
    }

    /// Records a delivery of `id` to `consumer` at `now`, moving it from another consumer's
    /// list if needed. `new_delivery` resets the count to 1 (a first read).
    pub fn assign(&mut self, id: StreamId, consumer: &[u8], now: i64, count: u64) {
        if let Some(old) = self.pel.get(&id) {
            if old.consumer != consumer {
                let prev = old.consumer.clone();
                if let Some(c) = self.consumers.get_mut(&prev) {
                    c.pel.remove(&id);
                }
            }
        }
        self.pel.insert(
            id,
            Pending {
                consumer: consumer.to_vec(),
                delivery_time: now,
                delivery_count: count,
            },
        );
        self.consumer(consumer, now).0.pel.insert(id);
    }

    pub fn mem_size(&self) -> usize {
        64 + self.pel.len() * 80
            + self
                .consumers
                .iter()
                .map(|(n, c)| n.len() + 48 + c.pel.len() * 24)
                .sum::<usize>()
    }
}
