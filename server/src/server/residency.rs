use super::*;
use crate::paged::page_key;

impl Server {
    /// The (db, key) pairs a request needs in memory; none when it needs only its own keys and
    /// every one is in memory as a one-record value, so it can run with nothing to load (see
    /// `keys_for`).
    pub(super) fn needed_keys(
        &self,
        t: usize,
        spec: &CommandSpec,
        args: &[Vec<u8>],
    ) -> Vec<(u32, Vec<u8>)> {
        let conn = &self.conns[&t];
        let db = conn.state.db;
        if spec.name == "exec" {
            let mut keys = Vec::new();
            if let Some(queued) = &conn.state.multi {
                // A SELECT queued in the transaction changes the DB of the commands after it,
                // and a SWAPDB what their DBs show: their keys are loaded now, before the swap,
                // under the DB that holds them now.
                let mut db = db;
                let databases = self.engine.databases();
                let mut now_in: Vec<u32> = (0..databases as u32).collect();
                for q in queued {
                    if q[0].eq_ignore_ascii_case(b"select") && q.len() == 2 {
                        if let Ok(n) = commands::args::db_index(&q[1], databases) {
                            db = n;
                        }
                    }
                    if q[0].eq_ignore_ascii_case(b"swapdb") {
                        if let Some((a, b)) = commands::swapdb::swapdb_args(q, databases) {
                            now_in.swap(a as usize, b as usize);
                        }
                    }
                    let q_keys = self.keys_of(db, q);
                    keys.extend(
                        q_keys
                            .into_iter()
                            .map(|(d, k)| (now_in.get(d as usize).copied().unwrap_or(d), k)),
                    );
                }
            }
            return keys;
        }
        // Keys a script touched without declaring them, found cold on an earlier run: with
        // any, the list is built whole.
        let script_keys = self.scripting.extra_keys(t);
        let mut keys = self.keys_for(db, spec, args, script_keys.is_empty());
        keys.extend_from_slice(script_keys);
        keys
    }

    /// The keys of a request not looked up yet (queued in MULTI, buffered behind a parked
    /// one, blocked).
    pub(super) fn keys_of(&self, db: u32, args: &[Vec<u8>]) -> Vec<(u32, Vec<u8>)> {
        match commands::lookup(&args[0]) {
            // Every key, resident or not: a transaction waiting for some pins the others, which
            // a list without them would leave to eviction meanwhile.
            Some(spec) => self.keys_for(db, spec, args, false),
            None => Vec::new(),
        }
    }

    /// The keys of request `args` of command `spec`, in `db`. With `none_if_resident`, none
    /// when the request needs only its own key arguments and every one is in memory as a
    /// one-record value, deleted, or known absent from the store: the common case, answered without building the list (an allocation
    /// and a copy of each key per command) or looking each key up twice.
    fn keys_for(
        &self,
        db: u32,
        spec: &CommandSpec,
        args: &[Vec<u8>],
        none_if_resident: bool,
    ) -> Vec<(u32, Vec<u8>)> {
        // Prefetch looks at requests not yet arity-checked: one with too few arguments has no
        // keys to load (and indexing its arguments would panic; found by the dispatch fuzz).
        if !crate::commands::arity_accepts(spec.arity, args.len()) {
            return Vec::new();
        }
        if self.shared.runs_blind(spec, args) {
            // Nothing to load: the old values are replaced unread.
            return Vec::new();
        }
        let own = spec.key_args(args);
        // Keys beyond the command's own first (WATCHed ones, another DB's): the fast path below
        // holds only when there are none.
        let mut keys = Vec::new();
        let databases = self.engine.databases();
        if spec.name == "swapdb" {
            // Whether a WATCHed key of either DB is touched depends on whether it exists in
            // either: those keys are loaded first.
            if let Some((a, b)) = commands::swapdb::swapdb_args(args, databases) {
                for c in self.conns.values() {
                    for (d, k) in &c.state.watched {
                        if *d == a || *d == b {
                            keys.push((a, k.clone()));
                            keys.push((b, k.clone()));
                        }
                    }
                }
            }
        }
        if let Some((target, key)) = spec.other_db_key(args, databases) {
            keys.push((target, key.to_vec()));
        }
        if none_if_resident && keys.is_empty() {
            let engine = &self.engine;
            let pages_db = engine.pages_db();
            // A paged value counts as in memory when the pages the request needs are.
            let in_memory = |k: &[u8]| match engine.peek(db, k) {
                // Deleted in memory, or known absent from the store: nothing to load either
                // (a command on a missing key is as common as one on a present key).
                None => engine.residency(db, k) != Residency::Unknown,
                // Every page in memory: whatever the request needs is (one lookup, where
                // finding the pages a ZADD needs took several).
                Some(v)
                    if crate::paged::page_total(v)
                        .is_some_and(|(gen, total)| engine.resident_pages(gen) >= total) =>
                {
                    true
                }
                Some(v) => self.pages_of(spec, args, k, v).is_none_or(|(gen, ids)| {
                    ids.iter()
                        .all(|&id| engine.peek(pages_db, &page_key(gen, id)).is_some())
                }),
            };
            if own.iter().all(|k| in_memory(k)) {
                return keys;
            }
        }
        // The command's own keys ahead of the others, in the order they are loaded and pinned.
        keys.splice(0..0, own.into_iter().map(|k| (db, k.to_vec())));
        self.add_pages(spec, args, &mut keys);
        keys
    }

    /// Adds the pages a command needs of the paged values among its keys that are in memory
    /// (a manifest still on disk is loaded first; its pages are asked for on the next try).
    fn add_pages(&self, spec: &CommandSpec, args: &[Vec<u8>], keys: &mut Vec<(u32, Vec<u8>)>) {
        let engine = &self.engine;
        let pages_db = engine.pages_db();
        let mut pages = Vec::new();
        for (db, key) in keys.iter() {
            let Some((gen, ids)) = engine
                .peek(*db, key)
                .and_then(|v| self.pages_of(spec, args, key, v))
            else {
                continue;
            };
            pages.extend(
                ids.into_iter()
                    .map(|id| (pages_db, page_key(gen, id).to_vec())),
            );
        }
        keys.extend(pages);
    }

    /// The generation and page numbers of paged value `v` (under `key`) that request `args`
    /// needs; `None` for a value kept in one record.
    fn pages_of(
        &self,
        spec: &CommandSpec,
        args: &[Vec<u8>],
        key: &[u8],
        v: &Value,
    ) -> Option<(u64, Vec<u32>)> {
        let page_bytes = self.shared.config.settings().page_bytes;
        Some(match v {
            Value::PagedHash(m) => (
                m.gen,
                commands::hashes_paged::pages_needed(spec.name, args, m, page_bytes),
            ),
            Value::PagedSet(m) => (
                m.gen,
                commands::sets_paged::pages_needed(spec.name, args, key, m, page_bytes),
            ),
            Value::PagedZSet(m) => (
                m.gen(),
                commands::zsets_paged::pages_needed(
                    spec.name,
                    args,
                    key,
                    m,
                    &self.engine,
                    page_bytes,
                ),
            ),
            Value::PagedList(m) => (
                m.gen,
                commands::lists_paged::pages_needed(spec.name, args, key, m),
            ),
            Value::PagedStream(m) => (
                m.idx.gen,
                commands::streams_paged::pages_needed(spec.name, args, key, m, page_bytes),
            ),
            _ => return None,
        })
    }

    /// Queues loads for the keys of the commands buffered behind a parked one, so a pipeline
    /// of cold reads costs about one batched read instead of one disk round trip per command.
    /// Bounded by `PREFETCH_COMMANDS`; stops at a command that changes the DB.
    pub(super) fn prefetch(&mut self, t: usize) {
        let max_bulk = self.shared.config.settings().proto_max_bulk_len as usize;
        let Some(c) = self.conns.get(&t) else {
            return;
        };
        let (db, mut pos) = (c.state.db, c.inpos);
        let mut parser = crate::resp::Parser::default();
        let mut ahead = Vec::new();
        while ahead.len() < PREFETCH_COMMANDS {
            match parser.parse(&c.inbuf, &mut pos, max_bulk) {
                Ok(Some(args)) if args.is_empty() => continue,
                Ok(Some(args)) => {
                    let stop = [b"select".as_slice(), b"multi", b"exec", b"swapdb"]
                        .iter()
                        .any(|n| args[0].eq_ignore_ascii_case(n));
                    if stop {
                        break;
                    }
                    ahead.push(args);
                }
                _ => break,
            }
        }
        for args in ahead {
            for (d, key) in self.keys_of(db, &args) {
                self.engine.ensure(d, &key);
            }
        }
    }

    /// Forgets every parking registration of a client.
    pub(super) fn unpark(&mut self, t: usize) {
        self.parked.retain(|_, v| {
            v.retain(|&x| x != t);
            !v.is_empty()
        });
        self.release_pins(t);
        if let Some(Wait::Keys { missing, .. }) = self.conns.get_mut(&t).map(|c| &mut c.wait) {
            *missing = 0;
        }
    }

    /// Lets the keys a parked command held in memory be evicted again.
    pub(super) fn release_pins(&mut self, t: usize) {
        let Some(c) = self.conns.get_mut(&t) else {
            return;
        };
        for (db, key) in std::mem::take(&mut c.pins) {
            self.engine.unpin(db, &key);
        }
    }

    pub(super) fn key_arrived(&mut self, t: usize) {
        let Some(c) = self.conns.get_mut(&t) else {
            return;
        };
        let Wait::Keys { missing, .. } = &mut c.wait else {
            return;
        };
        *missing = missing.saturating_sub(1);
        let all_there = *missing == 0;
        if all_there {
            // Re-checks every key: one may have been evicted again meanwhile.
            self.try_run(t);
            self.process_input(t);
        }
    }

    /// Whether the client's parked command overwrites or deletes its keys without reading them
    /// (SET, MSET, DEL…), so that a damaged record of one of them can simply be replaced.
    pub(super) fn overwrites_without_reading(&self, t: usize) -> bool {
        let Some(args) = self.conns.get(&t).and_then(|c| c.wait.keys_cmd()) else {
            return false;
        };
        commands::lookup(&args[0]).is_some_and(|s| s.overwrites_keys(args))
    }
}
