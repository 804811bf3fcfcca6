//! The settings table: one entry per setting drives the config file parser, `--name value`
//! overrides, CONFIG GET/SET/REWRITE and INFO.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

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
    s(io_threads: u64 = "io-threads", "4", Kind::Int(1, 128), false),
    s(cache_flush_delay: u64 = "cache-flush-delay", "1", Kind::Int(0, 3600), true),
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

/// The classes `notify-keyspace-events` accepts, in Redis's order for CONFIG GET.
const EVENT_CLASSES: &str = "gKE$lshzxetmdn";

/// Normalizes a `notify-keyspace-events` value as Redis prints it back.
fn normalize_events(v: &str) -> Option<String> {
    let mut set = std::collections::BTreeSet::new();
    for ch in v.chars() {
        match ch {
            'A' => set.extend("g$lshzxetd".chars()),
            c if EVENT_CLASSES.contains(c) => {
                set.insert(c);
            }
            _ => return None,
        }
    }
    let has = |c| set.contains(&c);
    // Redis's order (keyspaceEventsFlagsToString): A or the classes, then K, E, m.
    let mut out = String::new();
    if "g$lshzxetd".chars().all(has) {
        // Redis prints no `n` after `A` although the class stays on; kvtier keeps it visible
        // (the setting is stored as text).
        out.push('A');
        if has('n') {
            out.push('n');
        }
    } else {
        out.extend("g$lshzxetdn".chars().filter(|&c| has(c)));
    }
    out.extend("KEm".chars().filter(|&c| has(c)));
    Some(out)
}

/// Parses a memory amount the way redis.conf does: `1k` = 1000, `1kb` = 1024, … `1gb`.
///
/// Reads it exactly as Redis 7.0's `memtoull` does, odd inputs included
/// (compared with redis-server 7.0.15 in tests/tests/config_memory.rs): digits then an optional
/// unit (`b`, `k`, `kb`, `m`, `mb`, `g`, `gb`, any case), nothing else — no sign, no spaces, no
/// fraction. No digits read as 0 (`""`, `kb`); more than 127 digits are refused; a number past
/// 64 bits saturates at 2^64-1 and the unit's multiplication wraps, as `strtoull` and C's
/// unsigned arithmetic do there (a bounded setting then refuses it by its range).
pub fn parse_memory(v: &str) -> Option<u64> {
    let b = v.as_bytes();
    if b.first() == Some(&b'-') {
        return None;
    }
    let split = b
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(b.len());
    let (digits, unit) = b.split_at(split);
    let mul: u64 = match unit.to_ascii_lowercase().as_slice() {
        b"" | b"b" => 1,
        b"k" => 1000,
        b"kb" => 1024,
        b"m" => 1000 * 1000,
        b"mb" => 1024 * 1024,
        b"g" => 1000 * 1000 * 1000,
        b"gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    if digits.len() >= 128 {
        return None;
    }
    let n = digits.iter().fold(0u64, |n, d| {
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
            .unwrap_or(u64::MAX)
    });
    Some(n.wrapping_mul(mul))
}

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

    /// Loads a redis.conf-style file: `name value…` per line, `#` comments, quoted values.
    pub fn load_file(&mut self, path: &Path) -> Result<(), String> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "Fatal error, can't open config file '{}': {e}",
                path.display()
            )
        })?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words = crate::resp::split_args(line.as_bytes()).ok_or_else(|| {
                format!("*** FATAL CONFIG FILE ERROR ***\nline {}: >>> '{line}'\nUnbalanced quotes in configuration line", i + 1)
            })?;
            let name = String::from_utf8_lossy(&words[0]).to_string();
            let value = words[1..]
                .iter()
                .map(|w| String::from_utf8_lossy(w).to_string())
                .collect::<Vec<_>>()
                .join(" ");
            self.set(&name, &value, false).map_err(|e| {
                let why = if find(&name).is_none() {
                    "Bad directive or wrong number of arguments".to_string()
                } else {
                    e
                };
                format!(
                    "*** FATAL CONFIG FILE ERROR ***\nline {}: >>> '{line}'\n{why}",
                    i + 1
                )
            })?;
        }
        self.file = Some(path.to_path_buf());
        Ok(())
    }

    /// Writes the current settings back to the config file (CONFIG REWRITE): settings that
    /// differ from their defaults, comments and unknown lines of the old file kept.
    pub fn rewrite(&self) -> Result<(), String> {
        let path = self
            .file
            .as_ref()
            .ok_or("The server is running without a config file")?;
        let old = std::fs::read_to_string(path).unwrap_or_default();
        let mut out = String::new();
        let mut written = std::collections::HashSet::new();
        for line in old.lines() {
            let name = line.split_whitespace().next().unwrap_or("");
            match find(name).filter(|_| !line.trim_start().starts_with('#')) {
                Some(s) => {
                    if written.insert(s.name) {
                        let _ = writeln!(out, "{} {}", s.name, quote(&self.values[s.name]));
                    }
                }
                None => {
                    let _ = writeln!(out, "{line}");
                }
            }
        }
        let defaults = Config::default();
        for s in SETTINGS.iter().chain(COMPAT) {
            if !written.contains(s.name) && self.values[s.name] != defaults.values[s.name] {
                let _ = writeln!(out, "{} {}", s.name, quote(&self.values[s.name]));
            }
        }
        let tmp = path.with_extension("tmp-rewrite");
        std::fs::write(&tmp, out)
            .and_then(|_| std::fs::rename(&tmp, path))
            .map_err(|e| format!("Rewriting config file: {e}"))
    }
}

fn quote(v: &str) -> String {
    if v.is_empty() || v.contains(char::is_whitespace) || v.contains('"') {
        format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("1kb"), Some(1024));
        assert_eq!(parse_memory("64mb"), Some(64 << 20));
        assert_eq!(parse_memory("2GB"), Some(2 << 30));
        assert_eq!(parse_memory("12"), Some(12));
        assert_eq!(parse_memory("1x"), None);
    }

    #[test]
    fn set_validates() {
        let mut c = Config::default();
        assert_eq!(c.settings().proto_max_bulk_len, 512 << 20);
        c.set("maxmemory", "64mb", true).unwrap();
        assert_eq!(c.settings().maxmemory, 64 << 20);
        assert!(c.set("port", "1", true).unwrap_err().contains("immutable"));
        assert!(c.set("nope", "1", false).is_err());
        assert!(c.set("timeout", "abc", true).is_err());
        // Any name: the binary that opens the store decides (the stock one refuses lmdb).
        assert!(c.set("backend", "lmdb", false).is_ok());
        let dir = tempfile::tempdir().unwrap();
        let err = crate::backend::open_backend("lmdb", dir.path(), &c)
            .err()
            .unwrap();
        assert!(err.contains("fs, sled, rocksdb"), "{err}");
    }

    #[test]
    fn buffer_limits_have_redis_bounds() {
        let mut c = Config::default();
        let between = |name: &str| {
            format!(
                "CONFIG SET failed (possibly related to argument '{name}') - argument must be \
                 between 1048576 and 9223372036854775807 inclusive"
            )
        };
        for name in ["client-query-buffer-limit", "proto-max-bulk-len"] {
            for v in [
                "0",
                "1",
                "1048575",
                "1023kb",
                "9223372036854775808",
                "99999999999999999999",
                "",
                "kb",
            ] {
                assert_eq!(c.set(name, v, true), Err(between(name)), "{name} {v}");
            }
            for v in ["-1", "abc", "1.5mb", "1xb"] {
                let err = c.set(name, v, true).unwrap_err();
                assert!(
                    err.ends_with("- argument must be a memory value"),
                    "{v}: {err}"
                );
            }
            c.set(name, "1mb", true).unwrap();
            assert_eq!(c.get(name), Some("1048576"));
            c.set(name, "9223372036854775807", true).unwrap();
            assert_eq!(c.get(name), Some("9223372036854775807"));
        }
        c.set("client-query-buffer-limit", "2MB", true).unwrap();
        assert_eq!(c.settings().client_query_buffer_limit, 2 << 20);
        // Past 64 bits saturates, the unit wraps (Redis's `strtoull` and multiplication).
        assert_eq!(parse_memory("99999999999999999999"), Some(u64::MAX));
        assert_eq!(parse_memory("17179869185gb"), Some(1 << 30));
        assert_eq!(parse_memory(" 2mb"), None);
        assert_eq!(parse_memory("+5mb"), None);
        // No digits are 0, as Redis reads them.
        assert_eq!(parse_memory("kb"), Some(0));
        assert_eq!(parse_memory(""), Some(0));
    }

    #[test]
    fn file_errors_name_the_line() {
        let dir = std::env::temp_dir().join(format!("kvtier-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("k.conf");
        std::fs::write(&f, "# c\nport 7000\nbogus 1\n").unwrap();
        let err = Config::default().load_file(&f).unwrap_err();
        assert!(err.contains("line 3"), "{err}");
        std::fs::write(&f, "port 7000\nmaxmemory 10mb\n").unwrap();
        let mut c = Config::default();
        c.load_file(&f).unwrap();
        assert_eq!(c.get("port"), Some("7000"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
