//! Pub/sub registry: which clients (by id) listen on which channels, patterns and shard
//! channels (SSUBSCRIBE; a namespace apart from channels, never matched by patterns).

use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Default)]
pub struct PubSub {
    pub channels: HashMap<Vec<u8>, BTreeSet<u64>>,
    pub patterns: HashMap<Vec<u8>, BTreeSet<u64>>,
    pub shard_channels: HashMap<Vec<u8>, BTreeSet<u64>>,
    /// The ACL user each subscribed client had when it last subscribed: ACL SETUSER closes a
    /// user's clients whose subscriptions its new channel rules refuse, as Redis does.
    pub owners: HashMap<u64, String>,
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

    /// Removes a client from the given shard channels.
    pub fn forget_shard(&mut self, id: u64, names: &[Vec<u8>]) {
        for n in names {
            if let Some(set) = self.shard_channels.get_mut(n) {
                set.remove(&id);
                if set.is_empty() {
                    self.shard_channels.remove(n);
                }
            }
        }
    }

    /// Drops every subscription of a client, in its own state and here (RESET, disconnect).
    pub fn forget_client(&mut self, client: &mut crate::client::ClientState) {
        let channels: Vec<Vec<u8>> = client.channels.drain().collect();
        let patterns: Vec<Vec<u8>> = client.patterns.drain().collect();
        let shard: Vec<Vec<u8>> = client.shard_channels.drain().collect();
        self.forget(client.id, &channels, &patterns);
        self.forget_shard(client.id, &shard);
        self.owners.remove(&client.id);
    }

    /// Clients of `user` subscribed to a channel, pattern or shard channel that `may` (channel,
    /// is_pattern) now refuses.
    pub fn revoked(&self, user: &str, may: impl Fn(&[u8], bool) -> bool) -> Vec<u64> {
        let mut out = BTreeSet::new();
        for (map, is_pattern) in [
            (&self.channels, false),
            (&self.patterns, true),
            (&self.shard_channels, false),
        ] {
            for (name, ids) in map {
                if !may(name, is_pattern) {
                    out.extend(
                        ids.iter()
                            .filter(|id| self.owners.get(id).is_some_and(|u| u == user)),
                    );
                }
            }
        }
        out.into_iter().collect()
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

    /// Who receives an SPUBLISH on shard channel `channel`.
    pub fn shard_receivers(&self, channel: &[u8]) -> Vec<u64> {
        self.shard_channels
            .get(channel)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }
}
