//! What tracking sends: the keys a change invalidates (default mode, BCAST prefixes, the table
//! limit) and the invalidation messages themselves, to the client or its redirect.

use super::Payload;
use crate::server::Server;
use std::collections::HashSet;

impl Server {
    /// Sends the invalidations held for clients' own commands, except to a client whose reply
    /// still waits for IO (a FLUSHDB's +OK comes once the store is cleared): those wait until
    /// it is written (the next pass of the event loop after that).
    pub(super) fn tracking_send_pending(&mut self) {
        if self.tracking.pending.is_empty() {
            return;
        }
        let mut waiting = Vec::new();
        for (target, payload) in std::mem::take(&mut self.tracking.pending) {
            if self
                .conns
                .get(&target)
                .is_some_and(|c| matches!(c.wait, crate::conn::Wait::Io))
            {
                waiting.push((target, payload));
            } else {
                self.tracking_send(target, &payload);
            }
        }
        self.tracking.pending = waiting;
    }

    /// Sends the keys collected for BCAST prefixes (once per event-loop pass).
    pub(crate) fn tracking_broadcast(&mut self) {
        if self.tracking.prefixes.is_empty() {
            return;
        }
        let mut messages: Vec<(u64, Vec<Vec<u8>>)> = Vec::new();
        for p in self.tracking.prefixes.values_mut() {
            if p.keys.is_empty() {
                continue;
            }
            let keys = std::mem::take(&mut p.keys);
            for &id in &p.clients {
                let noloop = self
                    .ids
                    .get(&id)
                    .and_then(|tok| self.conns.get(tok))
                    .is_some_and(|c| c.state.tracking.noloop);
                let list: Vec<Vec<u8>> = keys
                    .iter()
                    .filter(|(_, by)| !(noloop && **by == Some(id)))
                    .map(|(k, _)| k.clone())
                    .collect();
                if !list.is_empty() {
                    messages.push((id, list));
                }
            }
        }
        for (id, keys) in messages {
            if let Some(&tok) = self.ids.get(&id) {
                self.tracking_send(tok, &Payload::Keys(keys));
            }
        }
    }

    /// Takes the keys changed since the last look and invalidates them; `current` is the
    /// client whose command changed them, if any.
    pub(super) fn tracking_touched(&mut self, current: Option<usize>) {
        let touched = self.engine.take_touched();
        if touched.is_empty() {
            return;
        }
        let modifier = current.and_then(|t| self.conns.get(&t)).map(|c| c.state.id);
        let mut done: HashSet<&[u8]> = HashSet::new();
        for (_, key) in &touched {
            if done.insert(key.as_slice()) {
                self.tracking_invalidate(key, current, modifier, true, true);
            }
        }
        self.tracking.seen.extend(touched);
    }

    /// One changed key. `current`: the client running now (NOLOOP; its own invalidations wait
    /// for its reply when `defer`). `bcast`: also collect it for the BCAST prefixes.
    fn tracking_invalidate(
        &mut self,
        key: &[u8],
        current: Option<usize>,
        modifier: Option<u64>,
        bcast: bool,
        defer: bool,
    ) {
        if bcast && !self.tracking.prefixes.is_empty() {
            for (prefix, p) in self.tracking.prefixes.iter_mut() {
                if key.starts_with(prefix) {
                    p.keys.insert(key.to_vec(), modifier);
                }
            }
        }
        let Some(ids) = self.tracking.keys.remove(key) else {
            return;
        };
        self.tracking.items -= ids.len();
        let mut ids: Vec<u64> = ids.into_iter().collect();
        ids.sort_unstable();
        for id in ids {
            let Some(&target) = self.ids.get(&id) else {
                continue;
            };
            let Some(c) = self.conns.get(&target) else {
                continue;
            };
            let tr = &c.state.tracking;
            // A client that switched to BCAST gets nothing for keys it read before.
            if !tr.on || tr.bcast {
                continue;
            }
            let is_current = current == Some(target);
            if is_current && tr.noloop {
                continue;
            }
            let payload = Payload::Keys(vec![key.to_vec()]);
            if is_current && defer {
                self.tracking.pending.push((target, payload));
            } else {
                self.tracking_send(target, &payload);
            }
        }
    }

    /// `tracking-table-max-keys`: over the limit, keys are dropped (with an invalidation, so
    /// clients drop them too) with an effort that grows while the table stays over.
    pub(super) fn tracking_limit(&mut self, current: Option<usize>) {
        let max = self.shared.config.settings().tracking_table_max_keys as usize;
        if max == 0 || self.tracking.keys.len() <= max {
            self.tracking.over_limit_runs = 0;
            return;
        }
        let effort = 100 * (self.tracking.over_limit_runs + 1);
        for _ in 0..effort {
            let Some(key) = self.tracking.keys.keys().next().cloned() else {
                break;
            };
            self.tracking_invalidate(&key, current, None, false, false);
            if self.tracking.keys.len() <= max {
                self.tracking.over_limit_runs = 0;
                return;
            }
        }
        self.tracking.over_limit_runs += 1;
    }

    /// Writes one invalidation for tracking client `target`: to itself (RESP3 push), or to its
    /// redirect client (RESP3 push, or a `__redis__:invalidate` message when that client is a
    /// RESP2 subscriber). A RESP2 client without a redirect gets nothing, as in Redis.
    pub(super) fn tracking_send(&mut self, target: usize, payload: &Payload) {
        let Some(c) = self.conns.get(&target) else {
            return;
        };
        let redirect = c.state.tracking.redirect;
        // A null is written in the protocol of the tracking client, as Redis does.
        let null: &[u8] = if c.out.resp3 { b"_\r\n" } else { b"$-1\r\n" };
        let mut dest = target;
        if redirect != 0 {
            match self
                .ids
                .get(&redirect)
                .filter(|t| self.conns.contains_key(t))
            {
                Some(&r) => dest = r,
                None => {
                    let c = self.conns.get_mut(&target).expect("looked up above");
                    c.state.tracking.broken_redir = true;
                    if c.out.resp3 {
                        c.out.push(2);
                        c.out.bulk(b"tracking-redir-broken");
                        c.out.int(redirect as i64);
                        self.to_flush.push(target);
                    }
                    return;
                }
            }
        }
        let Some(d) = self.conns.get_mut(&dest) else {
            return;
        };
        if d.out.resp3 {
            d.out.push(2);
            d.out.bulk(b"invalidate");
        } else if redirect != 0 && d.state.subscriptions() > 0 {
            d.out.array(3);
            d.out.bulk(b"message");
            d.out.bulk(b"__redis__:invalidate");
        } else {
            return;
        }
        match payload {
            Payload::Keys(keys) => {
                d.out.array(keys.len());
                for k in keys {
                    d.out.bulk(k);
                }
            }
            Payload::Null => d.out.buf.extend_from_slice(null),
        }
        self.to_flush.push(dest);
    }
}
