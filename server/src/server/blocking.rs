use super::*;

impl Server {
    /// Parks a client in a blocking command until one of its keys changes or the timeout.
    pub(super) fn block(&mut self, t: usize, args: &[Vec<u8>], timeout_ms: u64) {
        let db = self.conns[&t].state.db;
        let keys = self.keys_of(db, args);
        let Some(c) = self.conns.get_mut(&t) else {
            return;
        };
        c.state.blocked_on = keys;
        c.state.blocked_at = Some(Instant::now());
        c.state.block_deadline =
            (timeout_ms > 0).then(|| Instant::now() + Duration::from_millis(timeout_ms));
        c.wait = Wait::Blocked { cmd: args.to_vec() };
        self.engine.track_touched(true);
        // `blocked_clients` is counted when INFO runs (see `prepare_views`).
    }

    /// Clients in a blocking command (INFO `blocked_clients`).
    /// Clients held by a CLIENT PAUSE (or a pending shutdown) count too, as Redis counts the
    /// clients it postpones.
    pub(super) fn blocked_count(&self) -> usize {
        let holding = self.shutting_down || self.shared.pause.is_some();
        self.conns
            .values()
            .filter(|c| match c.wait {
                Wait::Blocked { .. } => true,
                Wait::Keys { missing: 0, .. } => holding,
                _ => false,
            })
            .count()
    }

    /// Re-runs blocked commands whose keys were touched.
    pub(super) fn wake_blocked(&mut self, touched: &[(u32, Vec<u8>)]) {
        let mut ready: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                matches!(c.wait, Wait::Blocked { .. })
                    && c.state.blocked_on.iter().any(|k| touched.contains(k))
            })
            .map(|(t, _)| *t)
            .collect();
        // Served in the order they blocked, as in Redis.
        ready.sort_by_key(|t| self.conns[t].state.blocked_at);
        for t in ready {
            let Some(c) = self.conns.get_mut(&t) else {
                continue;
            };
            let Wait::Blocked { cmd: args } = std::mem::take(&mut c.wait) else {
                continue;
            };
            c.state.blocked_on.clear();
            // A command that blocks again keeps its deadline and its place in line, as in Redis
            // (XREAD woken by a change that adds no entry).
            let kept = (c.state.block_deadline.take(), c.state.blocked_at);
            c.wait = Wait::Keys {
                cmd: args,
                missing: 0,
            };
            c.state.woken = true;
            self.try_run(t);
            if let Some(c) = self.conns.get_mut(&t) {
                c.state.woken = false;
                if matches!(c.wait, Wait::Blocked { .. }) {
                    (c.state.block_deadline, c.state.blocked_at) = kept;
                }
            }
            self.process_input(t);
        }
        self.shared.blocked_clients = self.blocked_count();
    }
}
