use super::*;

impl Server {
    /// EXEC of client `t` (in MULTI). A transaction refused for the server's state (OOM, a
    /// full disk) is a rejected call; one that runs, or fails (EXECABORT) or finds its watched
    /// keys changed, is a call of EXEC in the statistics, as in Redis.
    pub(super) fn exec(&mut self, t: usize) {
        let start = Instant::now();
        let conn = self.conns.get_mut(&t).expect("live");
        let queued = conn.state.multi.take().expect("in multi");
        let aborted = std::mem::take(&mut conn.state.multi_error);
        // A watched key that expired since WATCH counts as touched, as in Redis.
        let expired = conn
            .state
            .watch_expires_at
            .take()
            .is_some_and(|t| t <= kvtier_core::engine::now_ms());
        let dirty = std::mem::take(&mut conn.state.watch_dirty) || expired;
        conn.state.watched.clear();
        if aborted {
            // Redis runs EXEC, which fails: a failed call, not a rejected one.
            conn.out
                .error("EXECABORT Transaction discarded because of previous errors.");
            self.tracking_refused(t, Some("exec"));
            self.count_call("exec", start);
            return self.count_error("EXECABORT", Some("exec"), false);
        }
        if dirty {
            conn.out.null_array();
            return self.count_call("exec", start);
        }
        if self.shared.oom
            && queued
                .iter()
                .any(|q| commands::lookup(&q[0]).is_some_and(|s| s.has(flags::DENYOOM)))
        {
            return self.reply_error(
                t,
                "OOM command not allowed when used memory > 'maxmemory'.",
                Some("exec"),
            );
        }
        if self.engine.stats().out_of_space
            && queued
                .iter()
                .any(|q| commands::lookup(&q[0]).is_some_and(|s| s.has(flags::WRITE)))
        {
            return self.reply_error(t, MISCONF_NO_SPACE, Some("exec"));
        }
        let conn = self.conns.get_mut(&t).expect("live");
        let reply_start = conn.out.buf.len();
        conn.out.array(queued.len());
        conn.state.in_exec = true;
        let mut bgsave = false;
        // One save group for the whole transaction: it reaches disk in one batch.
        self.engine.begin_group();
        let oom = std::mem::replace(&mut self.shared.oom, false);
        let user = self
            .conns
            .get(&t)
            .map(|c| c.state.user.clone())
            .unwrap_or_default();
        for q in &queued {
            let spec = commands::lookup(&q[0]).expect("checked at queue time");
            // The ACL may have changed since the command was queued: checked again, as Redis.
            if let Err(denied) = self.shared.acl.check(&user, spec, q) {
                if let Some(c) = self.conns.get_mut(&t) {
                    c.out.error(&denied.exec_message());
                }
                continue;
            }
            let (action, _) = self.execute(t, spec, q);
            match action {
                Action::Clear(db) => self.clear_nested(t, db),
                // BGSAVE: a point in time taken when the transaction ends (below).
                Action::Barrier(BarrierThen::Save { .. }) => bgsave = true,
                a => self.perform(t, a, q),
            }
        }
        self.shared.oom = oom;
        self.engine.end_group();
        self.count_call("exec", start);
        if bgsave {
            let token = self.shared.token();
            self.io_waiters.insert(
                token,
                (None, IoThen::Barrier(BarrierThen::Save { reply: false })),
            );
            self.engine.barrier(token);
        }
        if let Some(c) = self.conns.get_mut(&t) {
            c.state.in_exec = false;
            if c.exec_io > 0 {
                // Nothing of the reply leaves, and no further command runs, until then.
                c.wait = Wait::Io;
                c.held_from = Some(reply_start);
            }
        }
    }

    /// A flush inside a transaction or script: it takes effect in memory at its place; the
    /// reply is held until the store is cleared too, as a plain FLUSHDB's reply is.
    pub(crate) fn clear_nested(&mut self, t: usize, db: Option<u32>) {
        let token = self.shared.token();
        if db.is_some() {
            self.shared.page_collector.request();
        }
        self.invalidate_watchers(db);
        self.tracking_flush(t);
        self.engine.clear(token, db);
        self.io_waiters.insert(token, (Some(t), IoThen::ExecClear));
        if let Some(c) = self.conns.get_mut(&t) {
            c.out.ok();
            c.exec_io += 1;
        }
    }
}
