//! Where tracking meets a command's life and the event loop: before and after a command, on
//! a refusal, a flush, a close, and periodic work. What is sent is in `invalidate`.

use super::Payload;
use crate::server::Server;

/// Whether a request is a CLIENT subcommand Redis 7.0 knows: those leave a CLIENT CACHING
/// in effect for the next command (an unknown subcommand does not, as in Redis).
fn is_client_command(args: &[Vec<u8>]) -> bool {
    const SUBCOMMANDS: &[&str] = &[
        "caching",
        "getname",
        "getredir",
        "help",
        "id",
        "info",
        "kill",
        "list",
        "no-evict",
        "pause",
        "reply",
        "setname",
        "tracking",
        "trackinginfo",
        "unblock",
        "unpause",
    ];
    args[0].eq_ignore_ascii_case(b"client")
        && args.get(1).is_some_and(|s| {
            SUBCOMMANDS
                .iter()
                .any(|n| s.eq_ignore_ascii_case(n.as_bytes()))
        })
}

impl Server {
    /// Before a command of client `t` runs: keeps the table under `tracking-table-max-keys`.
    pub(crate) fn tracking_before_call(&mut self, t: usize) {
        if self.tracking.active() {
            self.tracking_limit(Some(t));
        }
    }

    /// After one command (top level, in EXEC or in a script) of client `t` ran: invalidates
    /// the keys it changed, then remembers the keys it read.
    pub(crate) fn tracking_after_call(
        &mut self,
        t: usize,
        spec: &crate::commands::CommandSpec,
        args: &[Vec<u8>],
    ) {
        if !self.tracking.active() {
            return;
        }
        self.tracking_touched(Some(t));
        if !spec.has(crate::commands::flags::READONLY)
            || matches!(spec.name, "eval_ro" | "evalsha_ro" | "fcall_ro")
        {
            return;
        }
        let Some(c) = self.conns.get(&t) else {
            return;
        };
        if !c.state.tracking.remembers() {
            return;
        }
        let id = c.state.id;
        // A read inside a script tracks the keys the script declared (EVAL/FCALL's numkeys),
        // not the ones the read names, as Redis 7.0 does; a script declaring none tracks none.
        let script = self.scripting.run.as_ref().filter(|r| r.client == t);
        let keys: Vec<Vec<u8>> = match script {
            Some(run) => crate::commands::lookup(&run.command[0])
                .map(|s| {
                    s.key_args(&run.command)
                        .into_iter()
                        .map(<[u8]>::to_vec)
                        .collect()
                })
                .unwrap_or_default(),
            None => spec
                .key_args(args)
                .into_iter()
                .map(<[u8]>::to_vec)
                .collect(),
        };
        for key in keys {
            if self.tracking.keys.entry(key).or_default().insert(id) {
                self.tracking.items += 1;
            }
        }
    }

    /// After a top-level command of client `t` (and its reply): sends the invalidations it
    /// caused itself, ends a CLIENT CACHING that applied to it, and follows setting changes.
    pub(crate) fn tracking_after_command(&mut self, t: usize, args: &[Vec<u8>]) {
        let mut resync = false;
        if let Some(c) = self.conns.get_mut(&t) {
            let tr = &mut c.state.tracking;
            if tr.caching && c.state.multi.is_none() && !is_client_command(args) {
                tr.caching = false;
            }
            resync = std::mem::take(&mut tr.changed);
        }
        if resync {
            self.tracking_resync();
        }
        self.tracking_send_pending();
    }

    /// A request refused before it ran (unknown command, wrong arity, ACL…): like any other
    /// command outside MULTI it ends a CLIENT CACHING, as in Redis.
    pub(crate) fn tracking_refused(&mut self, t: usize, cmd: Option<&str>) {
        if let Some(c) = self.conns.get_mut(&t) {
            // (CLIENT's subcommands are counted as `client|caching`…)
            let client = cmd.is_some_and(|c| c == "client" || c.starts_with("client|"));
            if c.state.multi.is_none() && !client {
                c.state.tracking.caching = false;
            }
        }
    }

    /// Outside commands (IO events, periodic work): keys changed by expiry or the disk sweep.
    pub(crate) fn tracking_tick(&mut self) {
        if !self.tracking.active() {
            return;
        }
        self.tracking_touched(None);
        self.tracking_send_pending();
    }

    /// Periodic work: the table limit, with no client running.
    pub(crate) fn tracking_cron(&mut self) {
        if self.tracking.active() {
            self.tracking_limit(None);
        }
    }

    /// A flush: every tracking client gets a null invalidation and the table is emptied (as
    /// Redis, whatever the DB flushed). `t` is the client that flushed.
    pub(crate) fn tracking_flush(&mut self, t: usize) {
        if !self.tracking.active() {
            return;
        }
        let targets: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.state.tracking.on)
            .map(|(tok, _)| *tok)
            .collect();
        for target in targets {
            if target == t {
                self.tracking.pending.push((target, Payload::Null));
            } else {
                self.tracking_send(target, &Payload::Null);
            }
        }
        self.tracking.keys.clear();
        self.tracking.items = 0;
    }

    /// A tracking client closed: recount and drop its prefixes.
    pub(crate) fn tracking_closed(&mut self, was_tracking: bool) {
        if was_tracking {
            self.tracking_resync();
        }
    }

    /// Recounts tracking clients and rebuilds the prefix registrations from the clients'
    /// settings (after CLIENT TRACKING, RESET or a close), keeping keys already collected.
    fn tracking_resync(&mut self) {
        let mut clients = 0;
        for p in self.tracking.prefixes.values_mut() {
            p.clients.clear();
        }
        for c in self.conns.values() {
            let tr = &c.state.tracking;
            if !tr.on {
                continue;
            }
            clients += 1;
            if tr.bcast {
                for prefix in &tr.prefixes {
                    let p = self.tracking.prefixes.entry(prefix.clone()).or_default();
                    p.clients.insert(c.state.id);
                }
            }
        }
        self.tracking.prefixes.retain(|_, p| !p.clients.is_empty());
        self.tracking.clients = clients;
        if self.tracking.active() {
            self.engine.track_touched(true);
        }
    }
}
