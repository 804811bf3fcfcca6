//! Pub/sub registry: which clients (by id) listen on which channels and patterns.

use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Default)]
pub struct PubSub {
    pub channels: HashMap<Vec<u8>, BTreeSet<u64>>,
    pub patterns: HashMap<Vec<u8>, BTreeSet<u64>>,
}

impl PubSub {
    /// Removes a client from every channel and pattern (on disconnect or RESET).
    pub fn forget(&mut self, id: u64, channels: &[Vec<u8>], patterns: &[Vec<u8>]) {
        for (map, names) in [
            (&mut self.channels, channels),
            (&mut self.patterns, patterns),
        ] {
            for n in names {
                if let Some(set) = map.get_mut(n) {
                    set.remove(&id);
                    if set.is_empty() {
                        map.remove(n);
                    }
                }
            }
        }
    }

    /// Who receives a message on `channel`: (client id, matching pattern or None).
    pub fn receivers(&self, channel: &[u8]) -> Vec<(u64, Option<Vec<u8>>)> {
        let mut out: Vec<(u64, Option<Vec<u8>>)> = self
            .channels
            .get(channel)
            .map(|s| s.iter().map(|&id| (id, None)).collect())
            .unwrap_or_default();
        for (p, ids) in &self.patterns {
            if crate::glob::glob_match(p, channel, false) {
                out.extend(ids.iter().map(|&id| (id, Some(p.clone()))));
            }
        }
        out
    }
}
