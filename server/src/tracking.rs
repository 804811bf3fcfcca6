//! Client-side caching (CLIENT TRACKING), as Redis 7.0 does it.
//!
//! Default mode remembers, per key name (whatever the DB, as Redis), the ids of the tracking
//! clients that read it with a read-only command; the first change of the key sends them one
//! invalidation and forgets them. BCAST mode instead registers prefixes: every changed key under
//! a prefix is collected and sent to the prefix's clients once per event-loop pass.
//!
//! Changes are learned from the keyspace's touched-key record (the one WATCH and blocking
//! commands use): every write, delete, lazy or active expiry, and the disk expiry sweep's
//! tombstones go through it. A key leaving the RAM cache is no change and sends nothing.
//! Flushes send a null invalidation to every tracking client.
//!
//! An invalidation for the client whose command caused it waits until that command (or EXEC,
//! or script) has replied, so it never lands inside a reply.

use crate::server::Server;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// A client's tracking settings (part of its `ClientState`).
#[derive(Debug, Default, Clone)]
pub struct ClientTracking {
    pub on: bool,
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    /// CLIENT CACHING YES/NO was given for the next command.
    pub caching: bool,
    /// The redirect client was gone when an invalidation was due (flag `R`).
    pub broken_redir: bool,
    /// Client id invalidations go to; 0 for none.
    pub redirect: u64,
    /// BCAST prefixes (an empty one matches every key).
    pub prefixes: BTreeSet<Vec<u8>>,
    /// Settings changed by the last command: the server refreshes its prefix table.
    pub changed: bool,
}

impl ClientTracking {
    /// Turns tracking off (CLIENT TRACKING OFF, RESET). The redirect id stays, unused.
    pub fn disable(&mut self) {
        if self.on {
            let redirect = self.redirect;
            *self = ClientTracking {
                redirect,
                changed: true,
                ..ClientTracking::default()
            };
        }
    }

    /// CLIENT LIST flags: `t` tracking, `R` broken redirect, `B` broadcast.
    pub fn list_flags(&self) -> &'static str {
        match (self.on, self.broken_redir, self.bcast) {
            (false, _, _) => "",
            (true, false, false) => "t",
            (true, true, false) => "tR",
            (true, false, true) => "tB",
            (true, true, true) => "tRB",
        }
    }

    /// CLIENT LIST `redir=`: -1 when not tracking, else the redirect id (0 for none).
    pub fn redir_field(&self) -> i64 {
        if self.on {
            self.redirect as i64
        } else {
            -1
        }
    }

    /// Whether a read-only command run now should be remembered (OPTIN needs CACHING YES
    /// first, OPTOUT skips it after CACHING NO).
    fn remembers(&self) -> bool {
        let opted_out = if self.optin {
            !self.caching
        } else {
            self.optout && self.caching
        };
        self.on && !self.bcast && !opted_out
    }
}

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

/// What an invalidation carries: keys, or null (a flush).
#[derive(Debug, Clone)]
enum Payload {
    Keys(Vec<Vec<u8>>),
    Null,
}

#[derive(Debug, Default)]
struct Prefix {
    /// Ids of the BCAST clients registered for it.
    clients: BTreeSet<u64>,
    /// Keys changed since the last broadcast, with the id of the client that changed each
    /// last (None: no client, e.g. expiry), for NOLOOP.
    keys: BTreeMap<Vec<u8>, Option<u64>>,
}

/// The server's tracking tables.
#[derive(Debug, Default)]
pub struct Table {
    /// Default mode: key name → ids of the clients that may have cached it.
    keys: HashMap<Vec<u8>, HashSet<u64>>,
    /// (client, key) pairs in `keys` (INFO tracking_total_items).
    items: usize,
    /// Clients with tracking on.
    clients: usize,
    prefixes: BTreeMap<Vec<u8>, Prefix>,
    /// Invalidations for the client running the current command, sent after its reply.
    pending: Vec<(usize, Payload)>,
    /// Touched keys taken from the keyspace here, handed on to WATCH and blocked clients.
    seen: Vec<(u32, Vec<u8>)>,
    /// Passes in a row that found the table over `tracking-table-max-keys`.
    over_limit_runs: usize,
}

impl Table {
    /// Whether tracking needs the keyspace's touched keys.
    pub fn active(&self) -> bool {
        self.clients > 0 || !self.keys.is_empty() || !self.prefixes.is_empty()
    }

    /// Touched keys this module took from the keyspace since the last call.
    pub fn take_seen(&mut self) -> Vec<(u32, Vec<u8>)> {
        std::mem::take(&mut self.seen)
    }

    /// The figures INFO shows.
    pub fn stats(&self) -> TrackingStats {
        TrackingStats {
            clients: self.clients,
            keys: self.keys.len(),
            items: self.items,
            prefixes: self.prefixes.len(),
        }
    }
}

/// INFO `tracking_clients`, `tracking_total_keys`, `tracking_total_items`,
/// `tracking_total_prefixes`.
#[derive(Debug, Default, Clone, Copy)]
pub struct TrackingStats {
    pub clients: usize,
    pub keys: usize,
    pub items: usize,
    pub prefixes: usize,
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

    /// Sends the invalidations held for clients' own commands, except to a client whose reply
    /// still waits for IO (a FLUSHDB's +OK comes once the store is cleared): those wait until
    /// it is written (the next pass of the event loop after that).
    fn tracking_send_pending(&mut self) {
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

    /// Takes the keys changed since the last look and invalidates them; `current` is the
    /// client whose command changed them, if any.
    fn tracking_touched(&mut self, current: Option<usize>) {
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
    fn tracking_limit(&mut self, current: Option<usize>) {
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
    fn tracking_send(&mut self, target: usize, payload: &Payload) {
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
