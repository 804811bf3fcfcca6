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
//!
//! Files: `hooks` (the calls from the server around commands and in the event loop),
//! `invalidate` (what a change sends, and to whom); the settings and tables are here.

mod hooks;
mod invalidate;

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
