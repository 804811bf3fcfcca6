//! INFO in Redis's format, plus kvtier's `# Diskstore` section.

use crate::commands::Ctx;
use std::fmt::Write as _;

const ALL: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "diskstore",
    "commandstats",
    "errorstats",
    "cluster",
    "keyspace",
];
const DEFAULT: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "diskstore",
    "errorstats",
    "cluster",
    "keyspace",
];

pub fn render(ctx: &mut Ctx, asked: &[String]) -> String {
    let wanted: Vec<&str> = if asked.is_empty() || asked.iter().any(|a| a == "default") {
        DEFAULT.to_vec()
    } else if asked.iter().any(|a| a == "all" || a == "everything") {
        ALL.to_vec()
    } else {
        ALL.iter()
            .copied()
            .filter(|s| asked.iter().any(|a| a == s))
            .collect()
    };
    let mut out = String::new();
    for s in wanted {
        match s {
            "server" => server(ctx, &mut out),
            "clients" => clients(ctx, &mut out),
            "memory" => memory(ctx, &mut out),
            "persistence" => persistence(ctx, &mut out),
            "stats" => stats(ctx, &mut out),
            "diskstore" => diskstore(ctx, &mut out),
            "commandstats" => commandstats(ctx, &mut out),
            "errorstats" => errorstats(ctx, &mut out),
            "keyspace" => keyspace(ctx, &mut out),
            "replication" => replication(&mut out),
            "cluster" => section(&mut out, "Cluster", &[("cluster_enabled", "0".into())]),
            _ => {}
        }
    }
    while out.ends_with("\r\n\r\n") {
        out.truncate(out.len() - 2);
    }
    out
}

fn server(ctx: &mut Ctx, out: &mut String) {
    let up = ctx.shared.started.elapsed().as_secs();
    section(
        out,
        "Server",
        &[
            ("redis_version", crate::REDIS_VERSION.into()),
            ("kvtier_version", env!("CARGO_PKG_VERSION").into()),
            ("redis_mode", "standalone".into()),
            ("os", std::env::consts::OS.into()),
            ("arch_bits", "64".into()),
            ("process_id", std::process::id().to_string()),
            ("tcp_port", ctx.shared.config.settings().port.to_string()),
            ("uptime_in_seconds", up.to_string()),
            ("uptime_in_days", (up / 86400).to_string()),
            ("hz", ctx.shared.config.settings().hz.to_string()),
            (
                "executable",
                std::env::current_exe()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
            (
                "config_file",
                ctx.shared
                    .config
                    .file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
        ],
    );
}

fn clients(ctx: &mut Ctx, out: &mut String) {
    section(
        out,
        "Clients",
        &[
            (
                "connected_clients",
                ctx.shared.connected_clients.to_string(),
            ),
            (
                "maxclients",
                ctx.shared.config.settings().maxclients.to_string(),
            ),
            ("blocked_clients", ctx.shared.blocked_clients.to_string()),
            ("tracking_clients", ctx.shared.tracking.clients.to_string()),
            ("parked_clients", ctx.shared.parked_clients.to_string()),
        ],
    );
}

fn human(n: u64) -> String {
    let units = ["B", "K", "M", "G", "T"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n}B")
    } else {
        format!("{v:.2}{}", units[i])
    }
}

fn memory(ctx: &mut Ctx, out: &mut String) {
    let used = ctx.shared.used_memory as u64;
    let maxmemory = ctx.shared.config.settings().maxmemory;
    let backend = match ctx.shared.backend_heap_measured {
        Some(measured) => measured as u64,
        None => ctx.engine.store().memory_usage().unwrap_or(0),
    };
    let heap = crate::heap::Heap::read();
    let (allocated, active, resident) = (
        heap.allocated as u64,
        heap.active as u64,
        heap.resident as u64,
    );
    let rss = rss_bytes();
    let ratio = |a: u64, b: u64| format!("{:.2}", a as f64 / b.max(1) as f64);
    section(
        out,
        "Memory",
        &[
            ("used_memory", used.to_string()),
            ("used_memory_human", human(used)),
            ("used_memory_rss", rss.to_string()),
            ("used_memory_rss_human", human(rss)),
            ("used_memory_peak", ctx.shared.used_memory_peak.to_string()),
            (
                "used_memory_startup",
                ctx.shared.used_memory_startup.to_string(),
            ),
            (
                "backend_memory_budget",
                ctx.shared.backend_memory_budget.to_string(),
            ),
            (
                "used_memory_peak_human",
                human(ctx.shared.used_memory_peak as u64),
            ),
            ("allocator_allocated", allocated.to_string()),
            ("allocator_active", active.to_string()),
            ("allocator_resident", resident.to_string()),
            ("maxmemory", maxmemory.to_string()),
            ("maxmemory_human", human(maxmemory)),
            (
                "maxmemory_policy",
                ctx.shared
                    .config
                    .get("maxmemory-policy")
                    .unwrap_or("")
                    .into(),
            ),
            ("allocator_frag_ratio", ratio(active, allocated)),
            ("allocator_rss_ratio", ratio(resident, active)),
            ("rss_overhead_ratio", ratio(rss, resident)),
            ("mem_fragmentation_ratio", ratio(rss, used)),
            ("backend_memory", backend.to_string()),
            ("backend_memory_human", human(backend)),
            ("mem_allocator", allocator()),
        ],
    );
}

/// The process's resident set (Linux `/proc/self/status`, in kB there so no page size is
/// assumed; 0 where that does not exist).
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0);
    kb * 1024
}

/// The allocator as Redis names it (`jemalloc-5.3.0`): kvtier's heap, RocksDB's included, is
/// jemalloc's.
fn allocator() -> String {
    let version = tikv_jemalloc_ctl::version::read().unwrap_or("unknown");
    let release = version.split('-').next().unwrap_or(version);
    format!("jemalloc-{release}")
}

fn persistence(ctx: &mut Ctx, out: &mut String) {
    let s = &ctx.engine.stats();
    section(
        out,
        "Persistence",
        &[
            ("loading", "0".into()),
            (
                "rdb_changes_since_last_save",
                ctx.engine.dirty_len().to_string(),
            ),
            (
                "rdb_bgsave_in_progress",
                (ctx.shared.bgsave_in_progress as u8).to_string(),
            ),
            ("rdb_last_save_time", ctx.shared.last_save_unix.to_string()),
            (
                "rdb_last_bgsave_status",
                if ctx.shared.last_bgsave_ok {
                    "ok"
                } else {
                    "err"
                }
                .into(),
            ),
            ("aof_enabled", "0".into()),
            (
                "diskstore_last_save_error",
                s.last_save_error.clone().unwrap_or_default(),
            ),
        ],
    );
}

fn stats(ctx: &mut Ctx, out: &mut String) {
    let ks = &ctx.engine.cache_report().stats;
    section(
        out,
        "Stats",
        &[
            (
                "total_connections_received",
                ctx.shared.total_connections.to_string(),
            ),
            (
                "total_commands_processed",
                ctx.shared.total_commands.to_string(),
            ),
            (
                "rejected_connections",
                ctx.shared.rejected_connections.to_string(),
            ),
            ("expired_keys", ks.expired_keys.to_string()),
            ("evicted_keys", ks.evicted_keys.to_string()),
            ("keyspace_hits", ks.hits.to_string()),
            ("keyspace_misses", ks.misses.to_string()),
            ("tracking_total_keys", ctx.shared.tracking.keys.to_string()),
            (
                "tracking_total_items",
                ctx.shared.tracking.items.to_string(),
            ),
            (
                "tracking_total_prefixes",
                ctx.shared.tracking.prefixes.to_string(),
            ),
            (
                "total_error_replies",
                ctx.shared.total_error_replies.to_string(),
            ),
            (
                "script_cold_retries",
                ctx.shared.scripts.cold_retries.to_string(),
            ),
            (
                "script_cold_refused",
                ctx.shared.scripts.cold_refused.to_string(),
            ),
            (
                "script_cold_sync_loads",
                ctx.shared.scripts.cold_sync_loads.to_string(),
            ),
            ("script_busy_runs", ctx.shared.scripts.busy_runs.to_string()),
        ],
    );
}

fn diskstore(ctx: &mut Ctx, out: &mut String) {
    let io = ctx.engine.io_stats();
    let s = ctx.engine.stats().clone();
    let c = ctx.engine.cache_report();
    section(
        out,
        "Diskstore",
        &[
            ("backend", ctx.engine.store().name().into()),
            (
                "atomic_batches",
                (ctx.engine.store().atomic_batches() as u8).to_string(),
            ),
            ("io_threads", ctx.engine.config().io_threads.to_string()),
            (
                "io_save_threads",
                ctx.engine.config().io_threads.to_string(),
            ),
            (
                "io_save_nice",
                ctx.engine.config().background_nice.to_string(),
            ),
            (
                "cache_flush_delay_ms",
                ctx.engine.config().flush_delay.as_millis().to_string(),
            ),
            ("queued_loads", io.queued_loads.to_string()),
            ("loads_in_flight", io.loads_in_flight.to_string()),
            ("saves_in_flight", io.saves_in_flight.to_string()),
            ("pending_save_groups", io.pending_groups.to_string()),
            ("dirty_keys", io.dirty_keys.to_string()),
            (
                "oldest_dirty_age_ms",
                io.oldest_dirty_age.as_millis().to_string(),
            ),
            ("save_lag_ms", ctx.engine.save_lag().as_millis().to_string()),
            (
                "saves_urgent",
                (ctx.engine.saves_urgent() as u8).to_string(),
            ),
            ("urgent_save_batches", s.urgent_save_batches.to_string()),
            ("cache_hits", c.stats.hits.to_string()),
            ("cache_misses", c.stats.misses.to_string()),
            ("disk_loads", s.disk_loads.to_string()),
            ("load_batches", s.load_batches.to_string()),
            ("filter_probes_avoided", c.filter_probes_avoided.to_string()),
            (
                "filter_false_positives",
                c.filter_false_positives.to_string(),
            ),
            ("filter_keys", c.filter_keys.to_string()),
            ("filters_building", c.filters_building.to_string()),
            ("filters_regrown", c.filter_regrown.to_string()),
            ("filter_bytes", c.filter_bytes.to_string()),
            (
                "keys_per_save_batch",
                format!(
                    "{:.1}",
                    s.keys_saved as f64 / (s.save_batches.max(1)) as f64
                ),
            ),
            ("disk_load_misses", s.disk_load_misses.to_string()),
            ("keys_saved", s.keys_saved.to_string()),
            ("save_batches", s.save_batches.to_string()),
            ("bytes_saved", s.bytes_saved.to_string()),
            ("negcache_entries", c.negcache_entries.to_string()),
            ("negcache_hits", c.negcache_hits.to_string()),
            ("evicted_keys", c.stats.evicted_keys.to_string()),
            ("expired_on_load", s.expired_on_load.to_string()),
            ("save_errors", s.save_errors.to_string()),
            ("store_full", u8::from(s.out_of_space).to_string()),
            ("load_errors", s.load_errors.to_string()),
            ("sync_loads", s.sync_loads.to_string()),
            ("corrupt_records", s.corrupt_records.to_string()),
            (
                "backend_errors",
                (s.save_errors + s.load_errors).to_string(),
            ),
            ("clear_errors", s.clear_errors.to_string()),
            ("negcache_bytes", c.negcache_bytes.to_string()),
            ("unresolved_reads", c.stats.unresolved_reads.to_string()),
            // Pages of paged values in memory, and those of deleted values still to delete.
            // Pages with a value (a deleted page waiting for its save is not resident).
            ("resident_pages", c.resident_pages.to_string()),
            ("page_gc_pending", ctx.shared.page_gc.pending().to_string()),
            ("pages_deleted", ctx.shared.page_gc.deleted.to_string()),
            (
                "page_collector_phase",
                ctx.shared.page_collector.phase_name().to_string(),
            ),
            (
                "page_collector_runs",
                ctx.shared.page_collector.runs.to_string(),
            ),
            (
                "orphan_pages_found",
                ctx.shared.page_collector.found.to_string(),
            ),
            ("memory_over_limit", (ctx.shared.mem_over as u8).to_string()),
            ("saves_lagging", (ctx.shared.save_lagging as u8).to_string()),
            ("writers_delayed", ctx.shared.delayed_writers.to_string()),
            (
                "writers_delayed_total",
                ctx.shared.writers_delayed_total.to_string(),
            ),
            (
                "writers_delay_usec_total",
                ctx.shared.writer_delay_usec.to_string(),
            ),
        ],
    );
}

fn commandstats(ctx: &mut Ctx, out: &mut String) {
    let mut names: Vec<_> = ctx.shared.command_stats.iter().collect();
    names.sort_by_key(|(n, _)| *n);
    let lines: Vec<(String, String)> = names
        .into_iter()
        .map(|(n, s)| {
            (
                format!("cmdstat_{n}"),
                format!(
                    "calls={},usec={},usec_per_call={:.2},rejected_calls={},failed_calls={}",
                    s.calls,
                    s.usec,
                    if s.calls > 0 {
                        s.usec as f64 / s.calls as f64
                    } else {
                        0.0
                    },
                    s.rejected_calls,
                    s.failed_calls
                ),
            )
        })
        .collect();
    let refs: Vec<(&str, String)> = lines.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    section(out, "Commandstats", &refs);
}

fn errorstats(ctx: &mut Ctx, out: &mut String) {
    let mut errs: Vec<_> = ctx.shared.error_stats.iter().collect();
    errs.sort();
    let lines: Vec<(String, String)> = errs
        .into_iter()
        .map(|(e, n)| (format!("errorstat_{e}"), format!("count={n}")))
        .collect();
    let refs: Vec<(&str, String)> = lines.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    section(out, "Errorstats", &refs);
}

/// A standalone master with no replicas, as Redis reports one.
fn replication(out: &mut String) {
    let zeros = "0".repeat(40);
    section(
        out,
        "Replication",
        &[
            ("role", "master".into()),
            ("connected_slaves", "0".into()),
            ("master_failover_state", "no-failover".into()),
            ("master_replid", zeros.clone()),
            ("master_replid2", zeros),
            ("master_repl_offset", "0".into()),
            ("second_repl_offset", "-1".into()),
            ("repl_backlog_active", "0".into()),
            ("repl_backlog_size", "1048576".into()),
            ("repl_backlog_first_byte_offset", "0".into()),
            ("repl_backlog_histlen", "0".into()),
        ],
    );
}

fn keyspace(ctx: &mut Ctx, out: &mut String) {
    // `keys` is the DB's exact key count (as DBSIZE) when known, otherwise the resident keys
    // (`cached=1` says so); `expires` counts the resident keys with a TTL: the TTLs of keys
    // only on disk are in their records, not in memory.
    let mut lines = Vec::new();
    for db in 0..ctx.engine.databases() as u32 {
        let exact = ctx.engine.key_count(db);
        let view = ctx.engine.db(db, ctx.now_ms);
        let resident: Vec<&[u8]> = view.resident_keys().collect();
        let expires = resident
            .iter()
            .filter(|k| view.peek_expire_at(k).is_some())
            .count();
        let (n, cached) = match exact {
            Some(n) => (n as usize, 0),
            None => (resident.len(), 1),
        };
        if n > 0 {
            lines.push((
                format!("db{db}"),
                format!("keys={n},expires={expires},avg_ttl=0,cached={cached}"),
            ));
        }
    }
    let refs: Vec<(&str, String)> = lines.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    section(out, "Keyspace", &refs);
}

/// `key:value` lines for INFO, one section.
pub fn section(out: &mut String, title: &str, lines: &[(&str, String)]) {
    let _ = writeln!(out, "# {title}\r");
    for (k, v) in lines {
        let _ = writeln!(out, "{k}:{v}\r");
    }
    out.push_str("\r\n");
}
