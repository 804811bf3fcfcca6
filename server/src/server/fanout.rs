use super::*;

impl Server {
    /// Sends the monitor line of client `t`'s command to the clients in MONITOR mode.
    pub(super) fn feed_monitors(&mut self, t: usize, args: &[Vec<u8>]) {
        let Some(c) = self.conns.get(&t) else {
            return;
        };
        let line = commands::monitor::line(c.state.db, &c.state.addr, args);
        for id in std::mem::take(&mut self.shared.monitor_ids) {
            let Some(&mt) = self.ids.get(&id) else {
                continue; // disconnected
            };
            if let Some(m) = self.conns.get_mut(&mt).filter(|m| m.state.monitor) {
                m.out.simple(&line);
                self.to_flush.push(mt);
                self.shared.monitor_ids.push(id);
            }
        }
    }

    /// Sends a message to every subscriber of `channel`; returns how many received it.
    pub(super) fn publish(&mut self, channel: &[u8], message: &[u8]) -> usize {
        let receivers = self.shared.pubsub.receivers(channel);
        for (id, pattern) in &receivers {
            match pattern {
                Some(p) => self.deliver(*id, &[b"pmessage", p, channel, message]),
                None => self.deliver(*id, &[b"message", channel, message]),
            }
        }
        receivers.len()
    }

    /// Sends an SPUBLISH message to the subscribers of shard channel `channel`.
    pub(super) fn spublish(&mut self, channel: &[u8], message: &[u8]) -> usize {
        let receivers = self.shared.pubsub.shard_receivers(channel);
        for &id in &receivers {
            self.deliver(id, &[b"smessage", channel, message]);
        }
        receivers.len()
    }

    /// Writes the push frame `frame` (its elements as bulk strings) to client `id` and queues
    /// the client's flush; a receiver with no open connection is skipped.
    fn deliver(&mut self, id: u64, frame: &[&[u8]]) {
        let Some(&t) = self.ids.get(&id) else { return };
        let Some(c) = self.conns.get_mut(&t) else {
            return;
        };
        c.out.push(frame.len());
        for part in frame {
            c.out.bulk(part);
        }
        self.to_flush.push(t);
    }
}
