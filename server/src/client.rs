//! Per-connection state that command handlers can see and change.

use std::collections::HashSet;
use std::time::Instant;

#[derive(Debug)]
pub struct ClientState {
    pub id: u64,
    pub db: u32,
    pub name: Option<Vec<u8>>,
    pub authenticated: bool,
    /// The ACL user this connection runs as (`default` until AUTH/HELLO names another).
    pub user: String,
    pub addr: String,
    pub laddr: String,
    pub created: Instant,
    pub last_interaction: Instant,
    pub last_cmd: &'static str,
    /// Commands queued by MULTI; `None` outside a transaction.
    pub multi: Option<Vec<Vec<Vec<u8>>>>,
    /// A queued command was rejected: EXEC must fail with EXECABORT.
    pub multi_error: bool,
    pub watched: Vec<(u32, Vec<u8>)>,
    /// Watched keys that had already expired when WATCHed: their reclaim is no change (as in
    /// Redis); only consulted for keys in `watched`, reset by the first WATCH after EXEC.
    pub watch_stale: Vec<(u32, Vec<u8>)>,
    /// A watched key was touched: EXEC must return a null array.
    pub watch_dirty: bool,
    pub channels: HashSet<Vec<u8>>,
    pub patterns: HashSet<Vec<u8>>,
    /// Shard channels (SSUBSCRIBE): a namespace of their own, counted apart in replies.
    pub shard_channels: HashSet<Vec<u8>>,
    /// Keys a blocking command waits on (with their DB), and its deadline.
    pub blocked_on: Vec<(u32, Vec<u8>)>,
    pub block_deadline: Option<Instant>,
    /// When the client blocked: blocked clients are served in this order.
    pub blocked_at: Option<Instant>,
    /// CLIENT UNBLOCK … ERROR: the block ends with an error instead of a timeout.
    pub unblock_error: bool,
    /// The earliest expire time of the watched keys that had one at WATCH time.
    pub watch_expires_at: Option<i64>,
    /// In MONITOR mode.
    pub monitor: bool,
    /// Set while EXEC runs the queued commands (blocking commands must not block then).
    pub in_exec: bool,
    /// Set while a blocked command runs again after one of its keys changed: a key of the
    /// wrong type then keeps it blocked instead of failing it, as in Redis.
    pub woken: bool,
    /// CLIENT REPLY ON/OFF/SKIP.
    pub reply_mode: crate::commands::connection::ReplyMode,
    /// CLIENT NO-EVICT ON: shown as flag `e`. kvtier never evicts clients (it has no
    /// `maxmemory-clients`), so the setting changes nothing else.
    pub no_evict: bool,
    /// CLIENT TRACKING settings (tracking.rs).
    pub tracking: crate::tracking::ClientTracking,
}

impl ClientState {
    pub fn new(id: u64, addr: String, laddr: String, authenticated: bool) -> Self {
        let now = Instant::now();
        ClientState {
            id,
            db: 0,
            name: None,
            authenticated,
            user: "default".into(),
            addr,
            laddr,
            created: now,
            last_interaction: now,
            last_cmd: "NULL",
            multi: None,
            multi_error: false,
            watched: Vec::new(),
            watch_dirty: false,
            watch_stale: Vec::new(),
            channels: HashSet::new(),
            patterns: HashSet::new(),
            shard_channels: HashSet::new(),
            blocked_on: Vec::new(),
            block_deadline: None,
            blocked_at: None,
            unblock_error: false,
            watch_expires_at: None,
            monitor: false,
            in_exec: false,
            woken: false,
            reply_mode: Default::default(),
            no_evict: false,
            tracking: Default::default(),
        }
    }

    /// All subscriptions, shard channels included: any of them puts a RESP2 client in
    /// subscribed mode.
    pub fn subscriptions(&self) -> usize {
        self.channels.len() + self.patterns.len() + self.shard_channels.len()
    }
}
