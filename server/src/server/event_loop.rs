use super::*;

impl Server {
    /// Runs until SHUTDOWN or a signal, after everything dirty reached disk.
    pub fn run(&mut self) -> std::io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut last_cron = Instant::now();
        while !self.exit {
            let hz = self.shared.config.settings().hz.max(1);
            let period = Duration::from_millis(1000 / hz);
            let mut timeout = period.saturating_sub(last_cron.elapsed());
            if self.input_ready() {
                timeout = Duration::ZERO;
            } else if !self.mem_waiters.is_empty() && !self.shared.writers_held() {
                // Writers are being let go a few per pass (`release_mem_waiters`).
                timeout = timeout.min(Duration::from_millis(1));
            }
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            self.pass_now = Instant::now();
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept(),
                    WAKER => {}
                    SIGNALS => self.on_signal(),
                    Token(t) => {
                        if ev.is_readable() || ev.is_read_closed() {
                            self.on_readable(t, ev.is_read_closed());
                        }
                        if ev.is_writable() {
                            self.to_flush.push(t);
                        }
                    }
                }
            }
            self.on_io_events();
            self.tracking_tick();
            self.read_more();
            if last_cron.elapsed() >= period {
                self.cron();
                self.tracking_tick();
                self.tracking_cron();
                last_cron = Instant::now();
            }
            self.enforce_memory();
            self.tracking_broadcast();
            self.flush_all();
            // Clients resumed above may have parked on other keys: their loads go out before
            // the loop sleeps.
            self.engine.send_queued_loads();
        }
        self.engine.shutdown();
        Ok(())
    }

    /// Before a shutdown's final barrier: every queued page deletion joins it, so the pages of
    /// values deleted just before SHUTDOWN do not stay on disk.
    pub(super) fn drain_page_gc(&mut self) {
        let now = kvtier_core::engine::now_ms();
        while self.shared.page_gc.pending() > 0 {
            self.shared.page_gc.run(&mut self.engine, now);
        }
    }

    pub(super) fn on_signal(&mut self) {
        for sig in self.signals.pending() {
            log::warn!("received signal {sig}, scheduling shutdown");
            self.shutting_down = true;
            self.drain_page_gc();
            let token = self.shared.token();
            self.engine.barrier(token);
            self.io_waiters
                .insert(token, (None, IoThen::Barrier(BarrierThen::Shutdown)));
        }
    }

    pub(crate) fn accept(&mut self) {
        loop {
            let (mut sock, addr) = match self.listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::warn!("accept failed: {e}");
                    return;
                }
            };
            let maxclients = self.shared.config.settings().maxclients as usize;
            if self.conns.len() >= maxclients {
                let _ = sock.write(b"-ERR max number of clients reached\r\n");
                self.shared.rejected_connections += 1;
                continue;
            }
            let _ = sock.set_nodelay(true);
            let token = self.next_token;
            self.next_token += 1;
            if let Err(e) =
                self.poll
                    .registry()
                    .register(&mut sock, Token(token), Interest::READABLE)
            {
                log::warn!("register failed: {e}");
                continue;
            }
            if crate::acl::protected::refuses(&self.shared, &addr) {
                let _ = sock.write(crate::acl::protected::DENIED.as_bytes());
                continue;
            }
            let laddr = sock.local_addr().map(|a| a.to_string()).unwrap_or_default();
            let authed = self.shared.acl.default_nopass();
            let id = self.next_client_id;
            self.next_client_id += 1;
            let state = ClientState::new(id, addr.to_string(), laddr, authed);
            self.ids.insert(id, token);
            self.conns.insert(token, Conn::new(sock, state));
            self.shared.total_connections += 1;
            self.shared.connected_clients = self.conns.len();
        }
    }

    pub(super) fn cron(&mut self) {
        self.clock_base = wall_clock_base();
        self.engine.tick();
        commands::pause::tick(&mut self.shared);
        if std::mem::take(&mut self.shared.pause_released) {
            self.resume_all();
        }
        self.engine.pause_expiry(self.shared.pause.is_some());
        let now_ms = kvtier_core::engine::now_ms();
        commands::notify::expire_tick(&mut self.engine, &mut self.shared, now_ms);
        for (channel, message) in std::mem::take(&mut self.shared.notifications) {
            self.publish(&channel, &message);
        }
        let timeout = self.shared.config.settings().timeout;
        let now = Instant::now();
        if timeout > 0 {
            let idle: Vec<usize> = self
                .conns
                .iter()
                .filter(|(_, c)| {
                    !c.is_waiting()
                        && c.state.subscriptions() == 0
                        && now.duration_since(c.state.last_interaction).as_secs() > timeout
                })
                .map(|(t, _)| *t)
                .collect();
            for t in idle {
                self.close(t);
            }
        }
        // CLIENT UNBLOCK: end those blocks now, as a timeout (or an error, see below).
        for (id, error) in std::mem::take(&mut self.shared.unblock_requests) {
            if let Some(c) = self.ids.get(&id).and_then(|t| self.conns.get_mut(t)) {
                if matches!(c.wait, Wait::Blocked { .. }) {
                    c.state.block_deadline = Some(now);
                    c.state.unblock_error = error;
                }
            }
        }
        let expired: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                matches!(c.wait, Wait::Blocked { .. })
                    && c.state.block_deadline.is_some_and(|d| d <= now)
            })
            .map(|(t, _)| *t)
            .collect();
        for t in expired {
            let Some(c) = self.conns.get_mut(&t) else {
                continue;
            };
            let Wait::Blocked { .. } = std::mem::take(&mut c.wait) else {
                continue;
            };
            c.state.blocked_on.clear();
            c.state.block_deadline = None;
            if std::mem::take(&mut c.state.unblock_error) {
                c.out.error("UNBLOCKED client unblocked via CLIENT UNBLOCK");
            } else {
                // Every blocking command times out with a null array, BLMOVE and BRPOPLPUSH
                // included (as Redis 7.0 answers them).
                c.out.null_array();
            }
            self.to_flush.push(t);
            self.process_input(t);
        }
        self.shared.blocked_clients = self.blocked_count();
        for id in std::mem::take(&mut self.shared.kill_requests) {
            if let Some(t) = self
                .conns
                .iter()
                .find(|(_, c)| c.state.id == id)
                .map(|(t, _)| *t)
            {
                self.close(t);
            }
        }
        let now = kvtier_core::engine::now_ms();
        self.engine.active_expire(now, 20);
        crate::paged::collect_expired(&mut self.engine, &mut self.shared.page_gc);
        self.shared.page_gc.run(&mut self.engine, now);
        if self.shared.page_collector.wants_scan() {
            let token = self.shared.token();
            self.shared.page_collector.tick(&mut self.engine, token);
        }
    }
}
