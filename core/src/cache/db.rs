//! The command-facing view of one database: every read and write a command makes goes through
//! here, so the cache can keep versions, dirty flags, LRU and expiry right.
//!
//! A command only runs once all of its keys are resident or known absent (the server parks it
//! otherwise), so a key with no entry here is absent.

use super::{Entry, Key, Keyspace};
use crate::store::DbIndex;
use crate::value::CacheValue;
use std::sync::Arc;

/// A view of one DB at a fixed time, from [`Keyspace::db`]: every read and write of a command
/// goes through it. Expiry is judged against the view's `now_ms`.
pub struct Db<'a, V> {
    ks: &'a mut Keyspace<V>,
    /// The store namespace of the DB (everything inside the cache is indexed by it).
    db: DbIndex,
    /// The Redis DB index the command asked for (see `dbmap`).
    logical: DbIndex,
    now_ms: i64,
}

impl<'a, V: CacheValue> Db<'a, V> {
    pub(super) fn new(ks: &'a mut Keyspace<V>, ns: DbIndex, logical: DbIndex, now_ms: i64) -> Self {
        Db {
            ks,
            db: ns,
            logical,
            now_ms,
        }
    }

    /// The (Redis) DB this view is of.
    pub fn index(&self) -> DbIndex {
        self.logical
    }

    /// The time (Unix milliseconds) this view judges expiry against.
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// Whether the key holds a live value; deletes it (a dirty tombstone) if it has expired.
    fn live(&mut self, key: &[u8]) -> bool {
        self.live_at(key).is_some()
    }

    /// [`Db::live`], giving the entry's position in its map: what the command does next with
    /// the key goes there directly instead of hashing and comparing the key again (each lookup
    /// is a few cache misses once the keyspace outgrows the CPU caches). A position stays valid
    /// for the rest of the command: only eviction and saves move entries, between commands.
    fn live_at(&mut self, key: &[u8]) -> Option<usize> {
        let Some(i) = self.ks.dbs[self.db as usize].get_index_of(key) else {
            self.note_unresolved(key);
            return None;
        };
        self.live_index(i)
    }

    /// [`Db::live_at`] of the entry at position `i` (found by the caller).
    fn live_index(&mut self, i: usize) -> Option<usize> {
        let now = self.now_ms;
        let (key, e) = self.ks.dbs[self.db as usize].get_index(i)?;
        e.value.as_ref()?;
        if e.expired(now) {
            if self.ks.expiry_paused {
                // Logically expired, deleted once the pause ends.
                return None;
            }
            self.ks.stats.expired_keys += 1;
            let key = key.clone();
            self.tombstone(&key);
            return None;
        }
        Some(i)
    }

    /// A lookup of a key that is not resident answers "absent", which is true only if the
    /// store cannot hold it either: the server must have resolved the key first (see
    /// [`Engine::ensure`](crate::Engine::ensure)). One that did not is counted, not guessed at.
    fn note_unresolved(&mut self, key: &[u8]) {
        let ks = &mut *self.ks;
        if ks.diskkeys.may_contain(self.db, key) && !ks.negcache.knows(self.db, key) {
            ks.stats.unresolved_reads += 1;
        }
    }

    /// The entry at a position [`Db::live_at`] gave.
    fn entry_at(&mut self, i: usize) -> &mut Entry<V> {
        self.ks.dbs[self.db as usize]
            .get_index_mut(i)
            .expect("a position given by live_at")
            .1
    }

    fn tombstone(&mut self, key: &[u8]) {
        let e = self.ks.dbs[self.db as usize]
            .get_mut(key)
            .expect("tombstone of a resident key");
        let before = e.count_share();
        let old = e.value.take();
        e.set_expire_at(None);
        let after = e.count_share();
        self.ks.uncount(self.db, before);
        self.ks.count(self.db, after);
        if old.is_some() {
            self.ks.note_value(self.db, key, false);
        }
        self.ks.release(old.as_ref());
        self.ks.mark_dirty(self.db, key);
    }

    /// Reads a value (refreshing its LRU clock), or `None` if absent or expired.
    pub fn get(&mut self, key: &[u8]) -> Option<&V> {
        let i = self.read_at(key)?;
        self.entry_at(i).value.as_deref()
    }

    /// [`Db::get`] consuming the view, so the value can outlive it (a helper that picks a DB and
    /// returns what it found).
    pub fn into_get(mut self, key: &[u8]) -> Option<&'a V> {
        let i = self.read_at(key)?;
        self.ks.dbs[self.db as usize][i].value.as_deref()
    }

    /// [`Db::get_mut`] consuming the view.
    pub fn into_get_mut(mut self, key: &[u8]) -> Option<&'a mut V> {
        let i = self.write_at(key)?;
        self.into_value_mut(i)
    }

    /// [`Db::into_get`] of the entry at position `i`, found by the caller (see
    /// [`crate::Engine::get_or_load`]).
    pub(crate) fn into_get_found(mut self, i: usize) -> Option<&'a V> {
        let found = self.live_index(i);
        let i = self.count_read(found)?;
        self.ks.dbs[self.db as usize][i].value.as_deref()
    }

    /// [`Db::into_get_mut`] of the entry at position `i`, found by the caller.
    pub(crate) fn into_get_mut_found(mut self, i: usize) -> Option<&'a mut V> {
        let i = self.live_index(i)?;
        self.mark_written(i);
        self.into_value_mut(i)
    }

    fn into_value_mut(self, i: usize) -> Option<&'a mut V> {
        self.ks.dbs[self.db as usize][i]
            .value
            .as_mut()
            .map(Arc::make_mut)
    }

    /// What [`Db::get`] does before handing the value out: the live key's position, with a
    /// hit or a miss counted and its LRU clock refreshed.
    fn read_at(&mut self, key: &[u8]) -> Option<usize> {
        let found = self.live_at(key);
        self.count_read(found)
    }

    /// A read's hit or miss counted (while reads count), and a hit's LRU clock refreshed.
    fn count_read(&mut self, found: Option<usize>) -> Option<usize> {
        self.count_lookup(found.is_some());
        let i = found?;
        let clock = self.ks.tick_clock();
        self.entry_at(i).lru = clock;
        Some(i)
    }

    /// A reading command's lookup counted as a keyspace hit or miss, while reads count.
    fn count_lookup(&mut self, hit: bool) {
        let counts = u64::from(self.ks.count_reads);
        if hit {
            self.ks.stats.hits += counts;
        } else {
            self.ks.stats.misses += counts;
        }
    }

    /// What [`Db::get_mut`] does before handing the value out: the live key's position, the
    /// key marked changed and its LRU clock refreshed.
    fn write_at(&mut self, key: &[u8]) -> Option<usize> {
        let i = self.live_at(key)?;
        self.mark_written(i);
        Some(i)
    }

    /// The live entry at `i` marked changed, its LRU clock refreshed.
    fn mark_written(&mut self, i: usize) {
        self.ks.mark_dirty_at(self.db, i);
        let clock = self.ks.tick_clock();
        self.entry_at(i).lru = clock;
    }

    /// Whether the key holds a live value. Deletes it if it has expired, like [`Db::get`], but
    /// counts no hit or miss and leaves its LRU clock alone.
    pub fn contains(&mut self, key: &[u8]) -> bool {
        self.live(key)
    }

    /// [`Db::contains`] for a reading command that asks only whether the key exists (EXISTS,
    /// TTL): counted as a keyspace hit or miss like [`Db::get`], its LRU clock left alone (as
    /// Redis's `LOOKUP_NOTOUCH`).
    pub fn exists(&mut self, key: &[u8]) -> bool {
        let found = self.live(key);
        self.count_lookup(found);
        found
    }

    /// Mutable access; the key becomes dirty. A value shared with an in-flight save is copied
    /// first (copy-on-write), so the save writes the snapshot it was given.
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        let i = self.write_at(key)?;
        self.entry_at(i).value.as_mut().map(Arc::make_mut)
    }

    /// The value for changing it in place **without** marking the key changed: for a command
    /// that takes a large value apart and puts it back as it was when it changed nothing (a
    /// paged value's manifest, which a copy per command would cost). Once it changes the
    /// value it must go through [`Db::get_mut`], which marks the key; nothing else reads the
    /// key in between (the owner thread runs one command at a time).
    pub fn get_mut_unmarked(&mut self, key: &[u8]) -> Option<&mut V> {
        let i = self.live_at(key)?;
        self.entry_at(i).value.as_mut().map(Arc::make_mut)
    }

    /// Returns the value, creating it with `make` if absent; the key becomes dirty.
    pub fn get_or_insert_with(&mut self, key: &[u8], make: impl FnOnce() -> V) -> &mut V {
        if !self.live(key) {
            self.put(key, make(), None);
        }
        self.get_mut(key).expect("just inserted")
    }

    /// Sets a value and clears any TTL (Redis SET semantics).
    pub fn insert(&mut self, key: &[u8], value: V) {
        self.put(key, value, None);
    }

    /// Sets a value with an absolute expire time (Unix ms), or none.
    pub fn insert_with_expire(&mut self, key: &[u8], value: V, expire_at: Option<i64>) {
        self.put(key, value, expire_at);
    }

    /// Sets a value keeping the key's current TTL, if any.
    pub fn insert_keep_ttl(&mut self, key: &[u8], value: V) {
        let ttl = self.expire_at(key);
        self.put(key, value, ttl);
    }

    /// Creates a key the caller knows the store cannot hold (a page of a new generation, see
    /// [`crate::pages`]): no load, and no read on save to learn whether it existed.
    pub fn insert_new(&mut self, key: &[u8], value: V) {
        self.put_with(key, Arc::new(value), None, true);
    }

    /// [`Db::insert_new`] with a value shared with whoever else holds it (another key, a
    /// caller): nothing is copied until one of them changes it, as with a save's hold
    /// (copy-on-write). The copy of a paged value's resident pages costs a pointer each.
    pub fn insert_new_shared(&mut self, key: &[u8], value: Arc<V>) {
        self.put_with(key, value, None, true);
    }

    /// Deletes a key whether or not it is resident, without loading it: a dirty tombstone (for
    /// the pages of a deleted paged value, which nobody reads again).
    pub fn delete_blind(&mut self, key: &[u8]) {
        if self.ks.dbs[self.db as usize].contains_key(key) {
            if self.live(key) {
                self.remove(key);
            }
            return;
        }
        self.ks.negcache.remove(self.db, key);
        self.ks.dbs[self.db as usize].insert(Key::from_slice(key), Entry::tombstone(None));
        self.ks.count(self.db, (0, 1));
        self.ks.mark_dirty(self.db, key);
    }

    fn put(&mut self, key: &[u8], value: V, expire_at: Option<i64>) {
        self.put_with(key, Arc::new(value), expire_at, false);
    }

    fn put_with(&mut self, key: &[u8], value: Arc<V>, expire_at: Option<i64>, known_absent: bool) {
        let clock = self.ks.tick_clock();
        let map = &mut self.ks.dbs[self.db as usize];
        let i = match map.get_full_mut(key) {
            Some((i, _, e)) => {
                let before = e.count_share();
                let old = e.value.replace(value);
                e.set_expire_at(expire_at);
                e.lru = clock;
                let after = e.count_share();
                self.ks.uncount(self.db, before);
                self.ks.count(self.db, after);
                if old.is_none() {
                    self.ks.note_value(self.db, key, true);
                }
                self.ks.release(old.as_ref());
                i
            }
            None => {
                // Known absent from the store (by the filter or the negative cache), or not
                // known: a blind write over a key that was never loaded.
                let in_negcache = self.ks.negcache.remove(self.db, key);
                let absent =
                    known_absent || in_negcache || !self.ks.diskkeys.may_contain(self.db, key);
                let (i, _) = self.ks.dbs[self.db as usize].insert_full(
                    Key::from_slice(key),
                    Entry::new(
                        value,
                        expire_at,
                        clock,
                        if absent { Some(false) } else { None },
                    ),
                );
                let share = if absent { (1, 0) } else { (0, 1) };
                self.ks.count(self.db, share);
                self.ks.note_value(self.db, key, true);
                i
            }
        };
        self.ks.mark_dirty_at(self.db, i);
    }

    /// Deletes a key, returning its value if it was live.
    pub fn remove(&mut self, key: &[u8]) -> Option<V> {
        let i = self.live_at(key)?;
        let e = self.entry_at(i);
        let before = e.count_share();
        let old = e.value.take();
        e.set_expire_at(None);
        let after = e.count_share();
        self.ks.uncount(self.db, before);
        self.ks.count(self.db, after);
        if old.is_some() {
            self.ks.note_value(self.db, key, false);
        }
        self.ks.release(old.as_ref());
        self.ks.mark_dirty_at(self.db, i);
        old.map(|v| Arc::try_unwrap(v).unwrap_or_else(|shared| (*shared).clone()))
    }

    /// Absolute expire time (Unix ms) of a live key.
    pub fn expire_at(&mut self, key: &[u8]) -> Option<i64> {
        let i = self.live_at(key)?;
        self.entry_at(i).expire_at()
    }

    /// Sets or clears the TTL of a live key; `false` if the key is absent. An expire time in the
    /// past deletes the key, as in Redis.
    pub fn set_expire(&mut self, key: &[u8], expire_at: Option<i64>) -> bool {
        let Some(i) = self.live_at(key) else {
            return false;
        };
        if expire_at.is_some_and(|t| t <= self.now_ms) {
            self.remove(key);
            return true;
        }
        self.entry_at(i).set_expire_at(expire_at);
        self.ks.mark_dirty_at(self.db, i);
        true
    }

    /// Marks a key as modified for WATCH without changing it.
    pub fn touch(&mut self, key: &[u8]) {
        self.ks.record_touch(self.db, key);
    }

    /// Live resident keys (not tombstones, not expired). With a disk store behind, keyspace-wide
    /// commands combine this with a store scan.
    pub fn resident_keys(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let now = self.now_ms;
        self.ks.dbs[self.db as usize]
            .iter()
            .filter(move |(_, e)| e.value.is_some() && !e.expired(now))
            .map(|(k, _)| k.as_slice())
    }

    /// Live resident keys the store may not hold: new or rewritten without a load (not known
    /// to be on disk). A store scan cannot return them; keyspace-wide commands add them.
    pub fn memory_only_keys(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let now = self.now_ms;
        self.ks.dbs[self.db as usize]
            .iter()
            .filter(move |(_, e)| e.value.is_some() && !e.expired(now) && e.on_disk != Some(true))
            .map(|(k, _)| k.as_slice())
    }

    /// The expire time of a resident value without judging or reclaiming it (for statistics).
    pub fn peek_expire_at(&self, key: &[u8]) -> Option<i64> {
        self.ks.dbs[self.db as usize]
            .get(key)
            .and_then(|e| e.expire_at())
    }

    /// Whether a resident key holds a live value, without reclaiming an expired one (a reclaim
    /// is a change WATCH would see; Redis's own existence checks for WATCH do not reclaim).
    pub fn is_live(&self, key: &[u8]) -> bool {
        self.ks.dbs[self.db as usize]
            .get(key)
            .is_some_and(|e| e.value.is_some() && !e.expired(self.now_ms))
    }

    /// Whether a key is in memory as a tombstone or a value (expired or not).
    pub fn is_resident(&self, key: &[u8]) -> bool {
        self.ks.dbs[self.db as usize].contains_key(key)
    }

    /// A random live resident key.
    pub fn random_resident_key(&mut self) -> Option<Vec<u8>> {
        let n = self.ks.dbs[self.db as usize].len();
        for _ in 0..100.min(n * 2) {
            let i = (self.ks.rand() % n as u64) as usize;
            let key = self.ks.dbs[self.db as usize].get_index(i)?.0.to_vec();
            if self.live(&key) {
                return Some(key);
            }
        }
        self.resident_keys().next().map(<[u8]>::to_vec)
    }
}
