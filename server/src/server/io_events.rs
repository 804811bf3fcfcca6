use super::*;

impl Server {
    pub(super) fn on_io_events(&mut self) {
        let events = self.engine.poll();
        // Keys the IO work changed (expired records found) belong to no client's command.
        self.tracking_tick();
        for ev in events {
            match ev {
                Event::KeyReady { db, key } => {
                    for t in self.parked.remove(&(db, key)).unwrap_or_default() {
                        self.key_arrived(t);
                    }
                }
                Event::KeyFailed {
                    db,
                    key,
                    error,
                    corrupt,
                } => {
                    let mut waiters = self.parked.remove(&(db, key.clone())).unwrap_or_default();
                    if corrupt {
                        // A damaged record must not block a command that replaces or deletes
                        // it without reading it: those run as if the key were absent, and the
                        // bad record goes with their save. Readers get the error.
                        let (replacers, readers): (Vec<usize>, Vec<usize>) = waiters
                            .into_iter()
                            .partition(|&t| self.overwrites_without_reading(t));
                        waiters = readers;
                        if !replacers.is_empty() {
                            self.engine.replace_corrupt(db, &key);
                        }
                        for t in replacers {
                            self.key_arrived(t);
                        }
                    }
                    for t in waiters {
                        self.unpark(t);
                        let msg = format!("IOERR disk store read failed: {error}");
                        self.reply_error(t, &msg, None);
                        if let Some(c) = self.conns.get_mut(&t) {
                            c.wait = Wait::Idle;
                            c.state.multi = None;
                        }
                        self.process_input(t);
                    }
                }
                Event::BarrierDone { token, result } => self.barrier_done(token, result),
                Event::ClearDone { token, result } => match self.io_waiters.remove(&token) {
                    Some((Some(t), IoThen::ExecClear)) => {
                        if let Some(c) = self.conns.get_mut(&t) {
                            c.exec_io = c.exec_io.saturating_sub(1);
                            if c.exec_io == 0 {
                                c.wait = Wait::Idle;
                                c.held_from = None;
                                self.to_flush.push(t);
                            }
                        }
                        self.process_input(t);
                    }
                    Some((Some(t), _)) => {
                        if let Some(c) = self.conns.get_mut(&t) {
                            c.wait = Wait::Idle;
                            match result {
                                Ok(()) => c.out.ok(),
                                Err(e) => c.out.error(&format!("ERR flush failed on disk: {e}")),
                            }
                        }
                        self.process_input(t);
                    }
                    _ => {}
                },
                Event::ScanDone { token, result } if self.shared.page_collector.owns(token) => {
                    let shared = &mut self.shared;
                    shared
                        .page_collector
                        .page(&mut self.engine, &mut shared.page_gc, result);
                    // The next page at once: a run goes at the scan's speed, one page in flight.
                    if self.shared.page_collector.wants_scan() {
                        let token = self.shared.token();
                        self.shared.page_collector.tick(&mut self.engine, token);
                    }
                }
                Event::ScanDone { token, result } => {
                    self.route_saves();
                    self.key_page_done(token, result)
                }
            }
        }
    }

    pub(super) fn barrier_done(&mut self, token: u64, result: Result<(), String>) {
        let Some((client, then)) = self.io_waiters.remove(&token) else {
            return;
        };
        if let Some(t) = client {
            if let Some(c) = self.conns.get_mut(&t) {
                c.wait = Wait::Idle;
            }
        }
        let IoThen::Barrier(then) = then else {
            return;
        };
        match then {
            BarrierThen::Save { reply } => {
                self.shared.bgsave_in_progress = false;
                self.shared.last_bgsave_ok = result.is_ok();
                if result.is_ok() {
                    self.shared.last_save_unix = kvtier_core::engine::now_ms() / 1000;
                }
                if let (true, Some(t)) = (reply, client) {
                    if let Some(c) = self.conns.get_mut(&t) {
                        match &result {
                            Ok(()) => c.out.ok(),
                            Err(e) => c
                                .out
                                .error(&format!("ERR saving to the disk store failed: {e}")),
                        }
                    }
                }
            }
            BarrierThen::Shutdown => match result {
                Ok(()) => {
                    log::warn!("all data is on disk; exiting");
                    self.exit = true;
                }
                Err(e) => {
                    log::error!("shutdown aborted: saving failed: {e}");
                    if let Some(c) = client.and_then(|t| self.conns.get_mut(&t)) {
                        c.out.error("ERR Errors trying to SHUTDOWN. Check logs.");
                    }
                    self.shutting_down = false;
                    self.resume_all();
                }
            },
        }
        if let Some(t) = client {
            self.process_input(t);
        }
    }

    /// Asks the IO workers for the next store page of a keyspace-wide command.
    pub(super) fn next_key_page(&mut self, t: usize, scan: crate::keyscan::KeyScan) {
        if scan.needs_saves() {
            self.engine.track_saves(true);
        }
        let token = self.shared.token();
        let (limit, typed) = scan.page();
        let (db, cursor, filter) = (scan.db, scan.cursor.clone(), scan.filter());
        self.io_waiters
            .insert(token, (Some(t), IoThen::KeyScan(scan)));
        self.engine
            .scan_matching(token, db, cursor, limit, typed, filter);
    }

    /// Hands the keys saved since the last call to the multi-page scans running; stops the
    /// recording when none is left.
    pub(super) fn route_saves(&mut self) {
        let saved = self.engine.take_saved();
        let mut any = false;
        for (_, then) in self.io_waiters.values_mut() {
            if let IoThen::KeyScan(scan) = then {
                if scan.needs_saves() {
                    scan.saw_saves(&saved);
                    any = true;
                }
            }
        }
        if !any {
            self.engine.track_saves(false);
        }
    }

    /// A store page of a keyspace-wide command arrived: merge it with memory, then ask for the
    /// next one or reply and let the client go on.
    pub(super) fn key_page_done(
        &mut self,
        token: u64,
        result: Result<kvtier_core::KeyPage, String>,
    ) {
        let Some((Some(t), IoThen::KeyScan(mut scan))) = self.io_waiters.remove(&token) else {
            return;
        };
        let Some(c) = self.conns.get_mut(&t) else {
            return;
        };
        let page = match result {
            Err(e) => {
                if matches!(
                    scan.kind,
                    crate::keyscan::Kind::RandomKey { wrapped: false }
                ) {
                    // A random start position this store does not take: from the beginning.
                    scan.kind = crate::keyscan::Kind::RandomKey { wrapped: true };
                    scan.cursor.clear();
                    return self.next_key_page(t, scan);
                }
                c.wait = Wait::Idle;
                let msg = format!("ERR disk store scan failed: {e}");
                self.reply_error(t, &msg, None);
                return self.process_input(t);
            }
            // A flush of the DB since the scan began: nothing of the store is left to read.
            Ok(_) if self.engine.db_epoch(scan.db) != scan.epoch => None,
            Ok(p) => Some(p),
        };
        let now = kvtier_core::engine::now_ms();
        let mut db = self.engine.db(scan.db, now);
        match scan.absorb(page, &mut db, &mut self.shared.scan_cursors, &mut c.out) {
            crate::keyscan::Step::More => self.next_key_page(t, scan),
            crate::keyscan::Step::Done => {
                c.wait = Wait::Idle;
                self.to_flush.push(t);
                let running = self
                    .io_waiters
                    .values()
                    .any(|(_, then)| matches!(then, IoThen::KeyScan(s) if s.needs_saves()));
                if !running {
                    self.engine.track_saves(false);
                }
                self.process_input(t);
            }
        }
    }

    /// Runs what was held while a shutdown was pending: parked commands whose keys are all
    /// there, then buffered input.
    pub(super) fn resume_all(&mut self) {
        let tokens: Vec<usize> = self.conns.keys().copied().collect();
        for t in tokens {
            let ready = self
                .conns
                .get(&t)
                .is_some_and(|c| matches!(c.wait, Wait::Keys { missing: 0, .. }));
            if ready {
                self.try_run(t);
            }
            self.process_input(t);
        }
        self.shared.blocked_clients = self.blocked_count();
    }
}
