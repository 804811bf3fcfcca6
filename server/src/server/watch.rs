use super::*;

impl Server {
    /// SWAPDB after the engine's checks: clients parked on cold keys of either DB let go of
    /// them (their pins name the old contents) and ask again; WATCHers of a key that exists
    /// in either DB see it modified and blocked clients of either DB look again, as in Redis.
    pub(super) fn swap_dbs(&mut self, a: u32, b: u32) {
        let hit = |keys: &[(u32, Vec<u8>)]| keys.iter().any(|(d, _)| *d == a || *d == b);
        let parked: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| hit(&c.pins))
            .map(|(t, _)| *t)
            .collect();
        for &t in &parked {
            self.unpark(t);
        }
        self.engine.swap_db(a, b);
        let now = kvtier_core::engine::now_ms();
        let engine = &mut self.engine;
        for c in self.conns.values_mut() {
            // (The keys were loaded before SWAPDB ran; evicted since only if clean on disk.)
            let touched = c.state.watched.iter().any(|(d, k)| {
                (*d == a || *d == b)
                    && [a, b]
                        .iter()
                        .any(|&x| watched_key_exists(engine, x, k, now))
            });
            if touched {
                c.state.watch_dirty = true;
            }
        }
        let blocked: Vec<(u32, Vec<u8>)> = self
            .conns
            .values()
            .filter(|c| matches!(c.wait, Wait::Blocked { .. }))
            .flat_map(|c| c.state.blocked_on.iter())
            .filter(|(d, _)| *d == a || *d == b)
            .cloned()
            .collect();
        // Not now: inside EXEC, another client's command must not run mid-transaction.
        self.after_swap.0.extend(parked);
        self.after_swap.1.extend(blocked);
    }

    /// Runs again the clients a SWAPDB let go of (see `swap_dbs`).
    pub(super) fn retry_after_swap(&mut self) {
        let (parked, blocked) = std::mem::take(&mut self.after_swap);
        for t in parked {
            let waiting_memory = self.mem_waiters.contains(&t);
            if !waiting_memory
                && self
                    .conns
                    .get(&t)
                    .is_some_and(|c| c.wait.keys_cmd().is_some())
            {
                self.try_run(t);
                self.process_input(t);
            }
        }
        if !blocked.is_empty() {
            self.wake_blocked(&blocked);
        }
    }

    /// A watcher of a key the flush removes sees it as modified, as in Redis (a watched key
    /// that did not exist, or lives in another DB, is not touched). Called before the clear; a
    /// key whose existence is unknown (on disk, not loaded) counts as existing.
    pub(super) fn invalidate_watchers(&mut self, db: Option<u32>) {
        let now = kvtier_core::engine::now_ms();
        let engine = &mut self.engine;
        for c in self.conns.values_mut() {
            let hit =
                c.state.watched.iter().any(|(d, k)| {
                    db.is_none_or(|x| x == *d) && watched_key_exists(engine, *d, k, now)
                });
            if hit {
                c.state.watch_dirty = true;
            }
        }
    }

    /// Marks watchers of touched keys dirty.
    pub(super) fn after_command(&mut self) {
        if std::mem::take(&mut self.shared.pause_released) {
            self.resume_all();
        }
        // A CLIENT PAUSE (begun or ended by this command) pauses expiry too.
        self.engine.pause_expiry(self.shared.pause.is_some());
        // Keyspace notifications queued by the command (commands/notify.rs).
        for (channel, message) in std::mem::take(&mut self.shared.notifications) {
            self.publish(&channel, &message);
        }
        if !self.after_swap.0.is_empty() || !self.after_swap.1.is_empty() {
            self.retry_after_swap();
        }
        // (Keys client-side caching already took from the keyspace come first.)
        let mut touched = self.tracking.take_seen();
        touched.extend(self.engine.take_touched());
        // Tracking is only on while someone watches or blocks; nothing touched, nothing to do.
        if touched.is_empty() {
            return;
        }
        {
            let now = kvtier_core::engine::now_ms();
            let engine = &mut self.engine;
            for c in self.conns.values_mut() {
                if c.state.watched.is_empty() {
                    continue;
                }
                let st = &mut c.state;
                for w in &touched {
                    if !st.watched.contains(w) {
                        continue;
                    }
                    if let Some(i) = st.watch_stale.iter().position(|s| s == w) {
                        // Expired when watched: its reclaim is no change; what comes after is.
                        if !engine.db(w.0, now).is_live(&w.1) {
                            st.watch_stale.swap_remove(i);
                            continue;
                        }
                    }
                    st.watch_dirty = true;
                }
            }
        }
        if !touched.is_empty()
            && self
                .conns
                .values()
                .any(|c| matches!(c.wait, Wait::Blocked { .. }))
        {
            self.wake_blocked(&touched);
        }
        let tracking = self.tracking.active()
            || self
                .conns
                .values()
                .any(|c| !c.state.watched.is_empty() || matches!(c.wait, Wait::Blocked { .. }));
        self.engine.track_touched(tracking);
    }
}
