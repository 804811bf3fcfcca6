//! Keyspace notifications (`notify-keyspace-events`): commands report what they did to a key
//! with [`notify`]; the messages are queued in `Shared` and published by the server loop after
//! the command (or transaction), to `__keyspace@<db>__:<key>` (message: the event) and
//! `__keyevent@<db>__:<event>` (message: the key), as Redis 7.0 does.
//!
//! `expired` is reported for keys given a TTL while `x` events are enabled ([`ExpiryWatch`]),
//! by the periodic tick, when their time comes. Stream commands report class `t` events
//! (`commands/streams.rs`). Not emitted: `evicted`, on purpose: a key leaving the cache is not a
//! Redis eviction (it stays on disk).

use super::Ctx;

/// Event classes, as the characters of `notify-keyspace-events`.
pub mod class {
    pub const GENERIC: u8 = b'g';
    pub const STRING: u8 = b'$';
    pub const LIST: u8 = b'l';
    pub const SET: u8 = b's';
    pub const HASH: u8 = b'h';
    pub const ZSET: u8 = b'z';
    pub const NEW: u8 = b'n';
}

/// Whether the configured flags (as CONFIG GET shows them) enable `class` on any channel.
fn enabled(flags: &str, class: u8) -> (bool, bool) {
    let has = |c: u8| flags.as_bytes().contains(&c);
    let on = has(class) || (has(b'A') && b"g$lshzxetd".contains(&class));
    (on && has(b'K'), on && has(b'E'))
}

/// Reports `event` on `key` of the client's DB.
pub fn notify(ctx: &mut Ctx, class: u8, event: &str, key: &[u8]) {
    let db = ctx.client.db;
    notify_db(ctx, db, class, event, key);
}

/// Reports `event` on `key` of DB `db` (MOVE, COPY … DB).
pub fn notify_db(ctx: &mut Ctx, db: u32, class: u8, event: &str, key: &[u8]) {
    // (Read on every write: a typed field, not a lookup by name.)
    let flags = ctx.shared.config.settings().notify_keyspace_events.as_str();
    if flags.is_empty() {
        return;
    }
    let (x_space, x_event) = enabled(flags, b'x');
    if x_space || x_event {
        track_expiry(ctx, db, event, key);
    }
    // (Read on every write: a typed field, not a lookup by name.)
    let flags = ctx.shared.config.settings().notify_keyspace_events.as_str();
    let (keyspace, keyevent) = enabled(flags, class);
    if keyspace {
        let mut channel = format!("__keyspace@{db}__:").into_bytes();
        channel.extend_from_slice(key);
        ctx.shared
            .notifications
            .push((channel, event.as_bytes().to_vec()));
    }
    if keyevent {
        let channel = format!("__keyevent@{db}__:{event}").into_bytes();
        ctx.shared.notifications.push((channel, key.to_vec()));
    }
}

/// Whether `new` events (class `n`) go to any channel.
pub fn new_events_on(config: &crate::config::Config) -> bool {
    let (keyspace, keyevent) = enabled(&config.settings().notify_keyspace_events, class::NEW);
    keyspace || keyevent
}

/// Whether `key` existed before a write that replaces it, for [`notify_new`]. Looked up only
/// while `new` events are on: a blind write's keys are then loaded first (see
/// `Shared::runs_blind`). Otherwise they may not be, and the answer ("existed") fires nothing.
pub fn existed_for_new(ctx: &mut Ctx, key: &[u8]) -> bool {
    !new_events_on(&ctx.shared.config) || ctx.db().contains(key)
}

/// Reports a key created by a command (class `n`) when it did not exist before.
pub fn notify_new(ctx: &mut Ctx, existed: bool, key: &[u8]) {
    if !existed {
        notify(ctx, class::NEW, "new", key);
    }
}

/// Keys with a TTL while `expired` events are enabled, so that their expiry can be reported.
#[derive(Debug, Default)]
pub struct ExpiryWatch {
    by_key: std::collections::HashMap<(u32, Vec<u8>), i64>,
    by_time: std::collections::BTreeSet<(i64, u32, Vec<u8>)>,
}

impl ExpiryWatch {
    fn set(&mut self, db: u32, key: &[u8], when: Option<i64>) {
        if let Some(old) = self.by_key.remove(&(db, key.to_vec())) {
            self.by_time.remove(&(old, db, key.to_vec()));
        }
        if let Some(w) = when {
            self.by_key.insert((db, key.to_vec()), w);
            self.by_time.insert((w, db, key.to_vec()));
        }
    }
}

/// Keeps the expiry watch up to date after `event` on `key` (only while `x` is enabled).
fn track_expiry(ctx: &mut Ctx, db: u32, event: &str, key: &[u8]) {
    match event {
        "expire" | "set" | "setex" | "persist" | "rename_to" | "move_to" | "copy_to" => {
            let when = ctx.db_at(db).expire_at(key);
            ctx.shared.expiry_watch.set(db, key, when);
        }
        "del" | "rename_from" | "move_from" => ctx.shared.expiry_watch.set(db, key, None),
        _ => {}
    }
}

/// Reports `expired` for watched keys whose time has come (called by the server loop's
/// periodic tick): a key still carrying that expire time, or gone, has expired.
pub fn expire_tick(
    engine: &mut kvtier_core::Engine<crate::value::Value>,
    shared: &mut crate::shared::Shared,
    now_ms: i64,
) {
    if engine.expiry_paused() {
        // Nothing expires during a pause: the events come when the keys go.
        return;
    }
    while let Some((when, db, key)) = shared.expiry_watch.by_time.first().cloned() {
        if when > now_ms {
            break;
        }
        shared.expiry_watch.set(db, &key, None);
        let mut d = engine.db(db, now_ms);
        let expired = !d.contains(&key) || d.expire_at(&key) == Some(when);
        let flags = shared.config.settings().notify_keyspace_events.as_str();
        let (keyspace, keyevent) = enabled(flags, b'x');
        if expired && keyspace {
            let mut channel = format!("__keyspace@{db}__:").into_bytes();
            channel.extend_from_slice(&key);
            shared.notifications.push((channel, b"expired".to_vec()));
        }
        if expired && keyevent {
            let channel = format!("__keyevent@{db}__:expired").into_bytes();
            shared.notifications.push((channel, key.clone()));
        }
    }
}

/// The events of a command that stores a result at `key` (the *STORE commands): `event` when
/// something was stored, `del` when an empty result deleted an existing key.
pub fn notify_store(
    ctx: &mut Ctx,
    class: u8,
    event: &str,
    key: &[u8],
    stored: bool,
    existed: bool,
) {
    if stored {
        notify_new(ctx, existed, key);
        notify(ctx, class, event, key);
    } else if existed {
        notify(ctx, class::GENERIC, "del", key);
    }
}

/// The events of a command that removed elements from `key`: `event`, then `del` if that
/// emptied it.
pub fn notify_removed(ctx: &mut Ctx, class: u8, event: &str, key: &[u8]) {
    notify(ctx, class, event, key);
    if !ctx.db().contains(key) {
        notify(ctx, class::GENERIC, "del", key);
    }
}
