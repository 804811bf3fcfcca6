use super::*;

impl Server {
    /// Entry point for one request of client `t`.
    pub(crate) fn handle(&mut self, t: usize, mut args: Vec<Vec<u8>>) {
        let conn = self.conns.get_mut(&t).expect("live conn");
        // rename-command: requests name commands by their new names from here on.
        let visible = self.shared.acl.renames.resolve(&mut args);
        let Some(spec) = commands::lookup(&args[0]).filter(|_| visible) else {
            let msg = unknown_command(&args);
            if conn.state.multi.is_some() {
                conn.state.multi_error = true;
            }
            return self.reply_error(t, &msg, None);
        };
        if !crate::commands::arity_accepts(spec.arity, args.len()) {
            if conn.state.multi.is_some() {
                conn.state.multi_error = true;
            }
            let msg = format!("ERR wrong number of arguments for '{}' command", spec.name);
            return self.reply_error(t, &msg, Some(spec.name));
        }
        // A container's unknown subcommand or wrong arity is refused here like a command's, as
        // Redis does (before AUTH, at queue time inside MULTI, counted as rejected); EXEC and
        // scripts meet the same check in `commands::run`.
        if let Err(refusal) = crate::subcommands::check(spec, &args) {
            if conn.state.multi.is_some() {
                conn.state.multi_error = true;
            }
            let msg = refusal.error(spec, &args).text().into_owned();
            return self.reply_error(t, &msg, refusal.stats_name());
        }
        // Counted under `config|set` for a container's subcommand, as Redis counts it.
        let stat = crate::subcommands::stats_name(spec, &args);
        if !conn.state.authenticated && !spec.has(flags::NO_AUTH) {
            return self.reply_error(t, "NOAUTH Authentication required.", stat);
        }
        // (The log's settings and the client's line are only computed for a refusal.)
        let config = &self.shared.config;
        if let Err(denied) = self.shared.acl.check_request(
            &conn.state,
            || conn.client_list_line(Instant::now()),
            spec,
            &args,
            || config.settings().acllog_max_len as usize,
        ) {
            if denied == crate::acl::Denied::NoUser {
                conn.close_after_write = true;
                return;
            }
            // Refused at queue time, as in Redis: the transaction then fails with EXECABORT.
            if conn.state.multi.is_some() {
                conn.state.multi_error = true;
            }
            return self.reply_error(t, &denied.message(), stat);
        }
        if conn.state.subscriptions() > 0 && !conn.out.resp3 && !spec.has(flags::PUBSUB) {
            let msg = format!("ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context", spec.name);
            return self.reply_error(t, &msg, stat);
        }
        if conn.state.multi.is_some() && spec.has(flags::NO_MULTI) {
            if spec.name == "watch" {
                return self.reply_error(
                    t,
                    "ERR WATCH inside MULTI is not allowed",
                    Some(spec.name),
                );
            }
            conn.state.multi_error = true;
            return self.reply_error(t, "ERR Command not allowed inside a transaction", stat);
        }
        if self.scripting.run.is_some() {
            // Another client's request while a script is busy (scripting/busy.rs).
            return self.busy_request(t, spec, args);
        }
        if let Some(queue) = &mut conn.state.multi {
            if !spec.has(flags::NO_QUEUE) {
                queue.push(args);
                conn.out.simple("QUEUED");
                return;
            }
        }
        // Straight to the run with the command already looked up (a resumed one is looked up
        // again in `try_run`).
        self.run_pending(t, spec, args, false);
    }

    pub(crate) fn reply_error(&mut self, t: usize, msg: &str, cmd: Option<&'static str>) {
        if let Some(conn) = self.conns.get_mut(&t) {
            conn.out.error(msg);
        }
        self.tracking_refused(t, cmd);
        let code = msg.split_whitespace().next().unwrap_or("ERR");
        self.count_error(code, cmd, true);
    }

    /// Counts an error reply with this code (INFO errorstats) against `cmd` (commandstats).
    pub(crate) fn count_error(&mut self, code: &str, cmd: Option<&'static str>, rejected: bool) {
        self.shared.total_error_replies += 1;
        *self.shared.error_stats.entry(code.to_string()).or_insert(0) += 1;
        if let Some(c) = cmd {
            let s = self.shared.command_stats.entry(c).or_default();
            if rejected {
                s.rejected_calls += 1;
            } else {
                s.failed_calls += 1;
            }
        }
    }

    /// Counts a call of the command `name` that started at `start` (commandstats, and the
    /// commands processed).
    pub(crate) fn count_call(&mut self, name: &'static str, start: Instant) {
        self.count_call_until(name, start, Instant::now());
    }

    /// [`Server::count_call`] of a call that ended at `end`.
    fn count_call_until(&mut self, name: &'static str, start: Instant, end: Instant) {
        let stat = self.shared.command_stats.entry(name).or_default();
        stat.calls += 1;
        stat.usec += end.saturating_duration_since(start).as_micros() as u64;
        self.shared.total_commands += 1;
    }

    /// Runs the client's pending command if all its keys are available; parks it otherwise.
    pub(super) fn try_run(&mut self, t: usize) {
        if self.shutting_down {
            // Stays pending; runs if the shutdown fails (see `resume_all`).
            return;
        }
        let Some(c) = self.conns.get_mut(&t) else {
            return;
        };
        // (A command let go by flow control does not wait for memory a second time.)
        let (args, waited) = match std::mem::take(&mut c.wait) {
            Wait::Keys { cmd, .. } => (cmd, false),
            Wait::Memory { cmd, .. } => (cmd, true),
            other => {
                c.wait = other;
                return;
            }
        };
        // Known to exist: `handle` refused unknown commands.
        let Some(spec) = commands::lookup(&args[0]) else {
            return;
        };
        self.run_pending(t, spec, args, waited);
    }

    /// Runs client `t`'s command `args` (of `spec`) if all its keys are available; parks it
    /// otherwise (`waited`: it was held by flow control already, and is not held again).
    fn run_pending(
        &mut self,
        t: usize,
        spec: &'static CommandSpec,
        args: Vec<Vec<u8>>,
        waited: bool,
    ) {
        let Some(c) = self.conns.get_mut(&t) else {
            return;
        };
        let scripting = &self.scripting;
        let declared = |a: &[Vec<u8>]| scripting.declared_no_writes(a);
        if self.shutting_down || commands::pause::holds(&mut self.shared, &c.state, &args, declared)
        {
            // A pending shutdown or CLIENT PAUSE: stays pending until it ends (see
            // `resume_all`).
            c.wait = Wait::Keys {
                cmd: args,
                missing: 0,
            };
            // (INFO counts it: `blocked_clients` is counted when INFO runs, not per held
            // request, which with many clients held was a pass over every client each.)
            return;
        }
        let keys = self.needed_keys(t, spec, &args);
        let mut missing = 0;
        for (db, key) in &keys {
            if self.engine.ensure(*db, key) == Residency::Unknown {
                let waiters = self.parked.entry((*db, key.clone())).or_default();
                if !waiters.contains(&t) {
                    waiters.push(t);
                    missing += 1;
                }
            }
        }
        if missing > 0 {
            let conn = self.conns.get_mut(&t).expect("live");
            // The keys that arrive first stay until the last one is there. A later try may
            // need more (the pages of a paged value whose manifest just arrived): those are
            // pinned too.
            for k in keys {
                if !conn.pins.contains(&k) {
                    self.engine.pin(k.0, &k.1);
                    conn.pins.push(k);
                }
            }
            conn.wait = Wait::Keys { cmd: args, missing };
            self.prefetch(t);
            self.shared.parked_clients = self.conns.values().filter(|c| c.wait.loading()).count();
            return;
        }
        let conn = self.conns.get_mut(&t).expect("live");
        let maxmemory = self.shared.config.settings().maxmemory as usize;
        if maxmemory > 0
            && args.iter().map(Vec::len).sum::<usize>() > maxmemory
            && Self::grows_memory(&conn.state, spec)
        {
            self.release_pins(t);
            // The one case a writer is refused rather than slowed: it can never fit.
            return self.reply_error(
                t,
                "OOM command not allowed when used memory > 'maxmemory'.",
                None,
            );
        }
        if self.shared.writers_held() && !waited && Self::grows_memory(&conn.state, spec) {
            // Flow control: hold the writer (and so stop reading its input) while saves and
            // eviction make room; readers go on being served.
            conn.wait = Wait::Memory {
                cmd: args,
                since: Instant::now(),
            };
            self.mem_waiters.push(t);
            self.shared.writers_delayed_total += 1;
            self.shared.delayed_writers = self.mem_waiters.len();
            return;
        }
        // Pins are kept through a wait for memory: eviction meanwhile would send the command
        // back to loading its keys, and around again.
        self.release_pins(t);
        self.tracking_before_call(t);
        let conn = self.conns.get_mut(&t).expect("live");
        if args[0].eq_ignore_ascii_case(b"exec") && conn.state.multi.is_some() {
            self.exec(t);
            if !self.shared.monitor_ids.is_empty() {
                self.feed_monitors(t, &args);
            }
        } else {
            self.run_request(t, spec, &args);
            if let Some(i) = self.scripting.retry.iter().position(|&x| x == t) {
                // The script met keys not in memory: it runs again once they are loaded.
                self.scripting.retry.swap_remove(i);
                self.retry_script(t, &args);
                self.try_run(t);
            }
        }
        self.tracking_after_command(t, &args);
        self.after_command();
        // The request's buffers hold the next one's arguments (an allocation per argument
        // less).
        if let Some(c) = self.conns.get_mut(&t) {
            c.parser.recycle(args);
        }
    }

    /// Runs a handler for client `t` and returns what it asks the loop to do, and its error
    /// (already replied) if it failed.
    pub(crate) fn call(
        &mut self,
        t: usize,
        spec: &CommandSpec,
        args: &[Vec<u8>],
    ) -> (Action, Option<CmdError>) {
        if crate::scripting::Scripting::handles(spec.name) {
            // Scripts need the whole server (redis.call runs commands through it).
            return self.scripting_command(t, spec, args);
        }
        let conn = self.conns.get_mut(&t).expect("live");
        let mut ctx = Ctx {
            engine: &mut self.engine,
            client: &mut conn.state,
            out: &mut conn.out,
            shared: &mut self.shared,
            now_ms: self.command_ms,
            action: Action::None,
        };
        let err = commands::run(spec, &mut ctx, args);
        (ctx.action, err)
    }

    /// A client's command at top level (not queued in MULTI, not from a script), keys
    /// resident: the refusals that depend on the server's state now, one save group, the
    /// command, then its action at once.
    pub(super) fn run_request(&mut self, t: usize, spec: &'static CommandSpec, args: &[Vec<u8>]) {
        let stat = || crate::subcommands::stats_name(spec, args);
        if self.shared.oom && spec.has(flags::DENYOOM) {
            return self.reply_error(
                t,
                "OOM command not allowed when used memory > 'maxmemory'.",
                stat(),
            );
        }
        if self.engine.stats().out_of_space && spec.has(flags::WRITE) {
            return self.reply_error(t, MISCONF_NO_SPACE, stat());
        }
        let before = self.conns.get(&t).map_or(0, |c| c.out.buf.len());
        self.engine.begin_group();
        let (action, _) = self.execute(t, spec, args);
        self.engine.end_group();
        self.perform(t, action, args);
        if let Some(c) = self.conns.get_mut(&t) {
            commands::connection::apply_reply_mode(&mut c.state, &mut c.out, before, spec.name);
        }
    }

    /// The one path of every command whose keys are resident, whoever runs it: a client, EXEC
    /// for each queued command, a script's `redis.call`. Views of the whole server the
    /// command reads, the handler, client-side caching, statistics, error counts and MONITOR
    /// all happen here and only here, so a command behaves the same wherever it runs. The
    /// caller performs the returned action (at once, or at the end of the transaction). The
    /// command's error, if it failed, is returned too (already replied and counted).
    pub(crate) fn execute(
        &mut self,
        t: usize,
        spec: &CommandSpec,
        args: &[Vec<u8>],
    ) -> (Action, Option<CmdError>) {
        let Some(conn) = self.conns.get_mut(&t) else {
            return (Action::None, None);
        };
        // Under `script|kill` for a container's subcommand; a subcommand Redis does not have
        // counts under no command (Redis refuses it before it is one).
        let stat = crate::subcommands::stats_name(spec, args);
        // CLIENT LIST's `cmd=` names a subcommand as Redis does (`client|list`), and shows the
        // command running now (set before CLIENT LIST/INFO take their snapshot).
        conn.state.last_cmd = stat.unwrap_or(spec.name);
        self.prepare_views(spec);
        // Keyspace hits and misses count reading commands' lookups only, as in Redis.
        self.engine.count_reads(!spec.has(flags::WRITE));
        let start = self.clock_mark.take().unwrap_or_else(Instant::now);
        // The command's wall-clock time (expiry), from the same clock read as its duration.
        self.command_ms = self.wall_ms(start);
        let (action, err) = self.call(t, spec, args);
        self.tracking_after_call(t, spec, args);
        let end = Instant::now();
        if let Some(name) = stat {
            self.count_call_until(name, start, end);
        }
        // The next command of the same pipeline starts where this one ended (see
        // `clock_mark`), unless this one asks the loop for more than a reply.
        if matches!(action, Action::None) && self.chain_clock {
            self.clock_mark = Some(end);
        }
        if let Some(e) = &err {
            if std::mem::take(&mut self.scripting.error_counted) {
                // A script failing with the error of its `redis.call`: that error is counted
                // already, the script's call only fails (as Redis 7.0 counts it).
                if let Some(name) = stat {
                    self.shared
                        .command_stats
                        .entry(name)
                        .or_default()
                        .failed_calls += 1;
                }
            } else {
                self.count_error(e.code(), stat, false);
            }
        }
        if !self.shared.monitor_ids.is_empty() && !spec.has(flags::ADMIN) {
            self.feed_monitors(t, args);
        }
        (action, err)
    }

    /// What some commands read of the server beyond the keyspace (their `VIEW_*` and
    /// `TRACK_TOUCHED` flags), taken just before they run.
    fn prepare_views(&mut self, spec: &CommandSpec) {
        // Touched keys are recorded only while someone needs them (see `after_command`).
        if spec.has(flags::TRACK_TOUCHED) {
            self.engine.track_touched(true);
        }
        if spec.has(flags::VIEW_STATS) {
            self.shared.tracking = self.tracking.stats();
            self.shared.blocked_clients = self.blocked_count();
            self.shared.parked_clients = self.conns.values().filter(|c| c.wait.loading()).count();
        }
        if spec.has(flags::VIEW_CLIENTS) {
            let now = Instant::now();
            self.shared.client_list = self
                .conns
                .values()
                .map(|c| c.client_list_line(now))
                .collect();
        }
    }

    pub(crate) fn perform(&mut self, t: usize, action: Action, args: &[Vec<u8>]) {
        match action {
            Action::None => {}
            Action::Close => {
                if let Some(c) = self.conns.get_mut(&t) {
                    c.close_after_write = true;
                }
            }
            Action::Sleep(d) => std::thread::sleep(d),
            Action::Barrier(then) => {
                if matches!(then, BarrierThen::Shutdown) {
                    self.shutting_down = true;
                    self.drain_page_gc();
                }
                let token = self.shared.token();
                if let Some(c) = self.conns.get_mut(&t) {
                    c.wait = Wait::Io;
                }
                self.io_waiters
                    .insert(token, (Some(t), IoThen::Barrier(then)));
                self.engine.barrier(token);
            }
            Action::Clear(db) => {
                let token = self.shared.token();
                if let Some(c) = self.conns.get_mut(&t) {
                    c.wait = Wait::Io;
                }
                self.io_waiters.insert(token, (Some(t), IoThen::Clear));
                if db.is_some() {
                    // Pages are shared by every DB: the flushed DB's are found by a collection.
                    self.shared.page_collector.request();
                }
                self.invalidate_watchers(db);
                self.tracking_flush(t);
                self.engine.clear(token, db);
            }
            Action::Block { timeout_ms } => self.block(t, args, timeout_ms),
            Action::SwapDb(a, b) => self.swap_dbs(a, b),
            Action::BlockWith { timeout_ms, args } => self.block(t, &args, timeout_ms),
            Action::KeyScan(scan) => {
                if let Some(c) = self.conns.get_mut(&t) {
                    c.wait = Wait::Io;
                }
                // Saves recorded so far belong to the scans already running, not to this one.
                self.route_saves();
                self.next_key_page(t, *scan);
            }
            Action::Publish {
                channel,
                message,
                shard,
            } => {
                let n = if shard {
                    self.spublish(&channel, &message)
                } else {
                    self.publish(&channel, &message)
                };
                if let Some(c) = self.conns.get_mut(&t) {
                    c.out.int(n as i64);
                }
            }
        }
    }
}

/// Redis's reply to a command it does not know: its name, then its arguments quoted until the
/// list reaches 128 bytes, the last one cut to fit.
fn unknown_command(args: &[Vec<u8>]) -> String {
    let mut msg = format!(
        "ERR unknown command '{}', with args beginning with: ",
        String::from_utf8_lossy(&args[0][..args[0].len().min(128)])
    );
    let mut listed = 0usize;
    for a in args.iter().skip(1) {
        if listed >= 128 {
            break;
        }
        let part = &a[..a.len().min(128 - listed)];
        let quoted = format!("'{}' ", String::from_utf8_lossy(part));
        listed += part.len() + 3;
        msg.push_str(&quoted);
    }
    msg
}
