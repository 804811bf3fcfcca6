//! The settings table: one entry per setting drives the config file parser, `--name value`
//! overrides, CONFIG GET/SET/REWRITE and INFO.
//!
//! Files: `compat` (the Redis settings accepted for compatibility), `values` (memory amounts
//! and event classes), `file` (the config file and CONFIG REWRITE); the table, [`Settings`]
//! and [`Config`] are here.

use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy)]
enum Kind {
    Int(i64, i64),
    Memory,
    /// A memory amount within bounds, inclusive (Redis's minimum for a buffer's limit).
    MemoryIn(u64, u64),
    Enum(&'static [&'static str]),
    Str,
    /// Accepted for compatibility with redis.conf files, with no effect.
    Ignored,
    /// `yes` or `no`.
    Bool,
    /// Redis's keyspace notification classes (`notify-keyspace-events`).
    Events,
}

struct Setting {
    name: &'static str,
    default: &'static str,
    kind: Kind,
    mutable: bool,
}

const fn s(name: &'static str, default: &'static str, kind: Kind, mutable: bool) -> Setting {
    Setting {
        name,
        default,
        kind,
        mutable,
    }
}

/// Declares the settings kvtier itself reads: the table entry that validates and prints each
/// one, and a field of [`Settings`] that holds its parsed value. Code reads the field (no name
/// to misspell, no string lookup on the hot path); the table drives parsing, CONFIG GET/SET/
/// REWRITE and INFO as for every other setting.
macro_rules! typed_settings {
    ($( s($field:ident : $ty:ty = $name:literal, $default:expr, $kind:expr, $mutable:expr $(,)?) ),* $(,)?) => {
        static SETTINGS: &[Setting] = &[ $( s($name, $default, $kind, $mutable), )* ];

        /// The parsed value of every setting in `SETTINGS`, kept in step with the text values
        /// by [`Config::set`].
        #[derive(Debug, Clone, Default)]
        pub struct Settings {
            $(
                #[doc = concat!("`", $name, "`")]
                pub $field: $ty,
            )*
        }

        impl Settings {
            /// Stores `value` (already validated and normalized) in the field named `name`.
            fn store(&mut self, name: &str, value: &str) {
                match name {
                    $( $name => self.$field = Parse::parse_setting(value), )*
                    _ => {}
                }
            }
        }
    };
}

/// A setting's normalized text as the type of its [`Settings`] field.
trait Parse {
    fn parse_setting(v: &str) -> Self;
}

impl Parse for u64 {
    fn parse_setting(v: &str) -> u64 {
        // Validated by the table first: a negative or non-number cannot reach here.
        v.parse().unwrap_or(0)
    }
}

impl Parse for i64 {
    fn parse_setting(v: &str) -> i64 {
        v.parse().unwrap_or(0)
    }
}

impl Parse for bool {
    fn parse_setting(v: &str) -> bool {
        v == "yes"
    }
}

impl Parse for String {
    fn parse_setting(v: &str) -> String {
        v.to_string()
    }
}

/// Redis's bounds for `proto-max-bulk-len` and `client-query-buffer-limit`.
const BUFFER_LIMIT: Kind = Kind::MemoryIn(1 << 20, i64::MAX as u64);

typed_settings! {
    s(port: u64 = "port", "6379", Kind::Int(0, 65535), false),
    s(bind: String = "bind", "127.0.0.1", Kind::Str, false),
    s(dir: String = "dir", "./data", Kind::Str, false),
    // Checked by the binary that opens the store: the stock one knows fs, sled and rocksdb;
    // one built with `kvtier_server::serve_with` knows its own.
    s(backend: String = "backend", "fs", Kind::Str, false),
    s(databases: u64 = "databases", "16", Kind::Int(1, 1 << 16), false),
    s(maxmemory: u64 = "maxmemory", "0", Kind::Memory, true),
    s(maxmemory_samples: u64 = "maxmemory-samples", "5", Kind::Int(1, 64), true),
    s(maxmemory_policy: String = "maxmemory-policy",
        "allkeys-lru",
        Kind::Enum(&[
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
            "volatile-ttl",
            "allkeys-lru",
            "allkeys-lfu",
            "allkeys-random",
            "noeviction",
        ]),
        true,
    ),
    // How long a write may wait for memory (saves and eviction to make room) before -OOM;
    // 0 waits as long as it takes, like a slow disk in any database.
    s(maxmemory_max_wait: u64 = "maxmemory-max-wait",
        "0",
        Kind::Int(0, i32::MAX as i64),
        true,
    ),
    s(maxclients: u64 = "maxclients", "10000", Kind::Int(1, 1_000_000), true),
    s(timeout: u64 = "timeout", "0", Kind::Int(0, i32::MAX as i64), true),
    s(requirepass: String = "requirepass", "", Kind::Str, true),
    // Read workers, and as many write workers (saves, flushes).
    s(io_threads: u64 = "io-threads", "4", Kind::Int(1, 128), false),
    // How much lower the write workers' CPU priority is (nice 0-19; 0: the same as the rest),
    // so that on busy cores saves yield to clients and to reads (docs/configuration.md).
    s(io_save_nice: u64 = "io-save-nice", "19", Kind::Int(0, 19), false),
    s(cache_flush_delay: u64 = "cache-flush-delay", "1", Kind::Int(0, 3600), true),
    // Writers wait while the oldest unsaved write is this many seconds past its flush delay
    // (saves falling behind on busy cores), so what a crash can lose stays bounded (0: no
    // bound; then only memory bounds it).
    s(cache_flush_max_lag: u64 = "cache-flush-max-lag", "2", Kind::Int(0, 3600), true),
    // A hash whose fields and values pass this many bytes is stored in pages, so that a save
    // writes the pages that changed and a read loads the page it needs (0: never page).
    s(paged_value_min_bytes: u64 = "paged-value-min-bytes", "64kb", Kind::Memory, true),
    // The size a page of a paged value is kept near (pages split as the value grows).
    s(page_bytes: u64 = "page-bytes", "8kb", Kind::Memory, true),
    s(negcache_max_entries: u64 = "negcache-max-entries",
        "100000",
        Kind::Int(0, i64::MAX),
        true,
    ),
    // At least 1mb, as in Redis: a smaller limit would refuse ordinary requests (a limit of 0
    // closed every client on its first command).
    s(proto_max_bulk_len: u64 = "proto-max-bulk-len", "512mb", BUFFER_LIMIT, true),
    s(client_query_buffer_limit: u64 = "client-query-buffer-limit", "1gb", BUFFER_LIMIT, true),
    s(loglevel: String = "loglevel",
        "notice",
        Kind::Enum(&["debug", "verbose", "notice", "warning"]),
        true,
    ),
    s(logfile: String = "logfile", "", Kind::Str, false),
    s(hz: u64 = "hz", "10", Kind::Int(1, 500), true),
    // 0 = sized from maxmemory (see backend.rs: the backend's memory is inside the budget).
    s(rocksdb_block_cache_size: u64 = "rocksdb-block-cache-size", "0", Kind::Memory, false),
    s(rocksdb_write_buffer_size: u64 = "rocksdb-write-buffer-size", "0", Kind::Memory, false),
    s(sled_cache_capacity: u64 = "sled-cache-capacity", "0", Kind::Memory, false),
    s(daemonize: String = "daemonize", "no", Kind::Enum(&["no"]), false),
    s(save: String = "save", "", Kind::Ignored, true),
    s(appendonly: String = "appendonly", "no", Kind::Ignored, true),
    // Only loopback clients while the default user has no password (acl/protected.rs).
    s(protected_mode: bool = "protected-mode", "yes", Kind::Bool, true),
    s(tcp_keepalive: String = "tcp-keepalive", "300", Kind::Ignored, true),
    // (Redis settings that kvtier reads.)
    s(notify_keyspace_events: String = "notify-keyspace-events", "", Kind::Events, true),
    s(busy_reply_threshold: u64 = "busy-reply-threshold", "5000", LONG, true),
    s(tracking_table_max_keys: u64 = "tracking-table-max-keys", "1000000", LONG, true),
    s(acllog_max_len: u64 = "acllog-max-len", "128", LONG, true),
    s(stream_node_max_bytes: u64 = "stream-node-max-bytes", "4096", BYTES, true),
    s(stream_node_max_entries: u64 = "stream-node-max-entries", "100", LONG, true),
    s(hll_sparse_max_bytes: u64 = "hll-sparse-max-bytes", "3000", BYTES, true),
    // (Encoding thresholds: what OBJECT ENCODING and DUMP choose by.)
    s(list_max_listpack_size: i64 = "list-max-listpack-size", "-2", INT, true),
    s(list_compress_depth: u64 = "list-compress-depth", "0", UINT, true),
    s(set_max_intset_entries: u64 = "set-max-intset-entries", "512", LONG, true),
    s(hash_max_listpack_entries: u64 = "hash-max-listpack-entries", "512", LONG, true),
    s(hash_max_listpack_value: u64 = "hash-max-listpack-value", "64", BYTES, true),
    s(zset_max_listpack_entries: u64 = "zset-max-listpack-entries", "128", LONG, true),
    s(zset_max_listpack_value: u64 = "zset-max-listpack-value", "64", BYTES, true),
}

mod compat;
use compat::{ALIASES, BYTES, COMPAT, INT, LONG, UINT};
mod file;
#[cfg(test)]
mod tests;
mod values;
use values::normalize_events;
pub use values::parse_memory;

/// The server's settings: defaults, then a redis.conf-style file, then `--name value`
/// overrides, then CONFIG SET; each value validated by the settings table.
#[derive(Debug, Clone)]
pub struct Config {
    values: BTreeMap<&'static str, String>,
    /// The configuration file loaded, if any (CONFIG REWRITE writes it back).
    pub file: Option<PathBuf>,
    /// Directives that may repeat (`rename-command OLD NEW`, `user NAME RULES…`), in order,
    /// with their lowercase name; read at startup by acl/, not settable with CONFIG SET.
    pub directives: Vec<(String, String)>,
    /// The settings kvtier reads, parsed (see `typed_settings!`).
    typed: Settings,
}

/// Directives kept as a list instead of a single value.
const REPEATABLE: &[&str] = &["rename-command", "user"];

fn find(name: &str) -> Option<&'static Setting> {
    let name = ALIASES
        .iter()
        .find(|(alias, _)| alias.eq_ignore_ascii_case(name))
        .map_or(name, |(_, canonical)| canonical);
    SETTINGS
        .iter()
        .chain(COMPAT)
        .find(|s| s.name.eq_ignore_ascii_case(name))
}

impl Default for Config {
    fn default() -> Self {
        let mut c = Config {
            values: BTreeMap::new(),
            file: None,
            directives: Vec::new(),
            typed: Settings::default(),
        };
        // Stored normalized (memory in bytes…), as CONFIG GET shows them.
        for s in SETTINGS.iter().chain(COMPAT) {
            c.set(s.name, s.default, false).expect("valid default");
        }
        c
    }
}

impl Config {
    /// Validates and stores one setting. `runtime` is true for CONFIG SET (immutable ones refused).
    pub fn set(&mut self, name: &str, value: &str, runtime: bool) -> Result<(), String> {
        if !runtime {
            if let Some(d) = REPEATABLE.iter().find(|d| d.eq_ignore_ascii_case(name)) {
                self.directives.push((d.to_string(), value.to_string()));
                return Ok(());
            }
        }
        let setting = find(name).ok_or_else(|| {
            format!("Unknown option or number of arguments for CONFIG SET - '{name}'")
        })?;
        if runtime && !setting.mutable {
            return Err(format!("CONFIG SET failed (possibly related to argument '{}') - can't set immutable config", setting.name));
        }
        let bad = |why: &str| {
            format!(
                "CONFIG SET failed (possibly related to argument '{}') - {why}",
                setting.name
            )
        };
        let normalized = match setting.kind {
            Kind::Int(min, max) => {
                // Redis's `string2ll`: no sign but `-`, no spaces, no leading zeros.
                let n = crate::util::parse_i64(value.as_bytes())
                    .ok_or_else(|| bad("argument couldn't be parsed into an integer"))?;
                if n < min || n > max {
                    return Err(bad(&format!(
                        "argument must be between {min} and {max} inclusive"
                    )));
                }
                n.to_string()
            }
            Kind::Memory => parse_memory(value)
                .ok_or_else(|| bad("argument must be a memory value"))?
                .to_string(),
            // (Redis checks a signed setting's range on the value read as signed: with `max` at
            // most 2^63-1, the same as checking the unsigned value.)
            Kind::MemoryIn(min, max) => {
                let n =
                    parse_memory(value).ok_or_else(|| bad("argument must be a memory value"))?;
                if !(min..=max).contains(&n) {
                    return Err(bad(&format!(
                        "argument must be between {min} and {max} inclusive"
                    )));
                }
                n.to_string()
            }
            Kind::Enum(opts) => {
                let v = value.to_ascii_lowercase();
                if !opts.contains(&v.as_str()) {
                    return Err(bad(&format!(
                        "argument(s) must be one of the following: {}",
                        opts.join(", ")
                    )));
                }
                v
            }
            Kind::Bool => match value.to_ascii_lowercase().as_str() {
                v @ ("yes" | "no") => v.to_string(),
                _ => return Err(bad("argument must be 'yes' or 'no'")),
            },
            Kind::Events => normalize_events(value)
                .ok_or_else(|| bad("Invalid event class character. Use 'Ag$lshzxeKEtmdn'."))?,
            Kind::Str | Kind::Ignored => value.to_string(),
        };
        self.typed.store(setting.name, &normalized);
        self.values.insert(setting.name, normalized);
        Ok(())
    }

    /// The parsed values of the settings kvtier reads: what code should use.
    pub fn settings(&self) -> &Settings {
        &self.typed
    }

    /// The current value of a setting (by name or alias), as text; `None` for an unknown name.
    pub fn get(&self, name: &str) -> Option<&str> {
        find(name)
            .and_then(|s| self.values.get(s.name))
            .map(String::as_str)
    }

    /// Settings whose name matches a glob, for CONFIG GET (old alias names included, as in
    /// Redis).
    pub fn matching(&self, pattern: &[u8]) -> Vec<(&'static str, &str)> {
        let canonical = self.values.iter().map(|(k, v)| (*k, v.as_str()));
        let aliases = ALIASES
            .iter()
            .map(|(alias, name)| (*alias, self.values[name].as_str()));
        canonical
            .chain(aliases)
            .filter(|(k, _)| crate::glob::glob_match(pattern, k.as_bytes(), true))
            .collect()
    }
}
