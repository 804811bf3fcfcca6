//! Server-wide state that handlers may read or change: configuration, statistics, and facts
//! about other clients that some commands report.

use crate::commands::CommandSpec;
use crate::config::Config;
use std::collections::HashMap;
use std::time::Instant;

#[derive(Debug, Default, Clone)]
pub struct CommandStat {
    pub calls: u64,
    pub usec: u64,
    pub rejected_calls: u64,
    pub failed_calls: u64,
}

#[derive(Debug)]
pub struct Shared {
    pub config: Config,
    pub started: Instant,
    pub total_connections: u64,
    pub total_commands: u64,
    pub rejected_connections: u64,
    pub connected_clients: usize,
    pub blocked_clients: usize,
    pub parked_clients: usize,
    pub command_stats: rustc_hash::FxHashMap<&'static str, CommandStat>,
    pub error_stats: HashMap<String, u64>,
    pub total_error_replies: u64,
    pub last_save_unix: i64,
    pub bgsave_in_progress: bool,
    pub last_bgsave_ok: bool,
    pub used_memory: usize,
    pub used_memory_peak: usize,
    /// Memory is over `maxmemory` even after evicting every clean key.
    pub oom: bool,
    /// Memory is over `maxmemory` and saves or eviction can free it: writers wait.
    pub mem_over: bool,
    /// Saves are more than `cache-flush-max-lag` behind: writers wait.
    pub save_lagging: bool,
    /// Clients whose write waits for memory (shown in INFO).
    pub delayed_writers: usize,
    /// Pages of deleted paged values, deleted a bounded number per cron tick.
    pub page_gc: crate::paged::Gc,
    /// Finds pages no manifest names (see `paged::collector`).
    pub page_collector: crate::paged::collector::Collector,
    /// Writes ever held back for memory, and the total time they waited (INFO).
    pub writers_delayed_total: u64,
    pub writer_delay_usec: u64,
    /// Heap in use when the server was up, excluded from `maxmemory`.
    pub used_memory_startup: usize,
    /// Memory the backend may use beyond the cache, taken out of `maxmemory`.
    pub backend_memory_budget: usize,
    /// sled only: its heap as measured (jemalloc's total less startup and the object cache's
    /// estimate), which its own figure (the configured cache) understates many times over.
    pub backend_heap_measured: Option<usize>,
    /// Lines for CLIENT LIST, refreshed by the server before a handler that needs them.
    pub client_list: Vec<String>,
    /// Client ids CLIENT KILL asked to close.
    pub kill_requests: Vec<u64>,
    /// CLIENT UNBLOCK requests (client id, end with an error), done by the server loop.
    pub unblock_requests: Vec<(u64, bool)>,
    /// Clients in MONITOR mode (ids; closed ones are dropped when next fed).
    pub monitor_ids: Vec<u64>,
    /// CLIENT PAUSE in effect (commands/pause.rs).
    pub pause: Option<crate::commands::pause::Pause>,
    /// A pause just ended: the server loop runs the commands it held.
    pub pause_released: bool,
    pub pubsub: crate::pubsub::PubSub,
    /// Keyspace notifications (channel, message) queued by commands, published by the
    /// server loop once the command or transaction is done.
    pub notifications: Vec<(Vec<u8>, Vec<u8>)>,
    /// Keys whose `expired` event is due (commands/notify.rs).
    pub expiry_watch: crate::commands::notify::ExpiryWatch,
    pub next_token: u64,
    /// SCAN cursor numbers handed out, and the store positions they stand for.
    pub scan_cursors: crate::keyscan::Cursors,
    /// Users, ACL log and renamed commands (acl/).
    pub acl: crate::acl::Acl,
    /// Scripting counters (INFO).
    pub scripts: crate::scripting::ScriptStats,
    /// Client-side caching figures for INFO, refreshed before INFO runs (tracking.rs).
    pub tracking: crate::tracking::TrackingStats,
}

impl Shared {
    /// Whether writers wait instead of running (flow control): for memory, or for saves
    /// that fell behind.
    pub fn writers_held(&self) -> bool {
        self.mem_over || self.save_lagging
    }

    pub fn new(config: Config) -> Self {
        Shared {
            config,
            started: Instant::now(),
            total_connections: 0,
            total_commands: 0,
            rejected_connections: 0,
            connected_clients: 0,
            blocked_clients: 0,
            parked_clients: 0,
            command_stats: Default::default(),
            error_stats: HashMap::new(),
            total_error_replies: 0,
            last_save_unix: kvtier_core::engine::now_ms() / 1000,
            bgsave_in_progress: false,
            last_bgsave_ok: true,
            used_memory: 0,
            used_memory_peak: 0,
            oom: false,
            mem_over: false,
            save_lagging: false,
            delayed_writers: 0,
            page_gc: Default::default(),
            page_collector: crate::paged::collector::Collector::new(),
            writers_delayed_total: 0,
            writer_delay_usec: 0,
            used_memory_startup: 0,
            backend_memory_budget: 0,
            backend_heap_measured: None,
            client_list: Vec::new(),
            kill_requests: Vec::new(),
            unblock_requests: Vec::new(),
            monitor_ids: Vec::new(),
            pause: None,
            pause_released: false,
            notifications: Vec::new(),
            expiry_watch: Default::default(),
            pubsub: Default::default(),
            next_token: 1,
            scan_cursors: Default::default(),
            acl: Default::default(),
            scripts: Default::default(),
            tracking: Default::default(),
        }
    }

    /// Whether this request runs without loading its keys: a blind write (see
    /// [`CommandSpec::blind_write`]), unless `new` keyspace events are on, which need to know
    /// whether each key existed before.
    pub fn runs_blind(&self, spec: &CommandSpec, args: &[Vec<u8>]) -> bool {
        spec.blind_write(args) && !crate::commands::notify::new_events_on(&self.config)
    }

    pub fn token(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }
}

/// Applies the settings that can change at runtime to the engine (at startup and after
/// CONFIG SET).
pub fn apply_config(engine: &mut kvtier_core::Engine<crate::value::Value>, shared: &mut Shared) {
    shared.acl.sync_requirepass(&shared.config);
    let c = &shared.config;
    engine.set_flush_delay(std::time::Duration::from_secs(
        c.settings().cache_flush_delay,
    ));
    engine.set_maxmemory_samples(c.settings().maxmemory_samples as usize);
    // Saves in flight hold serialized copies of their values: keep a batch small next to the
    // cache so they cannot blow the memory limit.
    let maxmemory = c.settings().maxmemory as usize;
    engine.set_max_batch_bytes(if maxmemory == 0 {
        8 << 20
    } else {
        (maxmemory / 16).clamp(64 << 10, 8 << 20)
    });
    engine.set_negcache_capacity(c.settings().negcache_max_entries as usize);
}
