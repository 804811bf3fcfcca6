//! The settings table: one entry per setting drives the config file parser, `--name value`
//! overrides, CONFIG GET/SET/REWRITE and INFO.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy)]
enum Kind {
    Int(i64, i64),
    Memory,
    Enum(&'static [&'static str]),
    Str,
    /// Accepted for compatibility with redis.conf files, with no effect.
    Ignored,
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

const BACKENDS: &[&str] = &["fs", "sled", "rocksdb"];

static SETTINGS: &[Setting] = &[
    s("port", "6379", Kind::Int(0, 65535), false),
    s("bind", "127.0.0.1", Kind::Str, false),
    s("dir", "./data", Kind::Str, false),
    s("backend", "fs", Kind::Enum(BACKENDS), false),
    s("databases", "16", Kind::Int(1, 1 << 16), false),
    s("maxmemory", "0", Kind::Memory, true),
    s("maxmemory-samples", "5", Kind::Int(1, 64), true),
    s(
        "maxmemory-policy",
        "allkeys-lru",
        Kind::Enum(&["allkeys-lru", "noeviction"]),
        true,
    ),
    // How long a write may wait for memory (saves and eviction to make room) before -OOM;
    // 0 waits as long as it takes, like a slow disk in any database.
    s(
        "maxmemory-max-wait",
        "0",
        Kind::Int(0, i32::MAX as i64),
        true,
    ),
    s("maxclients", "10000", Kind::Int(1, 1_000_000), true),
    s("timeout", "0", Kind::Int(0, i32::MAX as i64), true),
    s("requirepass", "", Kind::Str, true),
    s("io-threads", "4", Kind::Int(1, 128), false),
    s("cache-flush-delay", "1", Kind::Int(0, 3600), true),
    s(
        "negcache-max-entries",
        "100000",
        Kind::Int(0, i64::MAX),
        true,
    ),
    s("proto-max-bulk-len", "512mb", Kind::Memory, true),
    s("client-query-buffer-limit", "1gb", Kind::Memory, true),
    s(
        "loglevel",
        "notice",
        Kind::Enum(&["debug", "verbose", "notice", "warning"]),
        true,
    ),
    s("logfile", "", Kind::Str, false),
    s("hz", "10", Kind::Int(1, 500), true),
    // 0 = sized from maxmemory (see backend.rs: the backend's memory is inside the budget).
    s("rocksdb-block-cache-size", "0", Kind::Memory, false),
    s("rocksdb-write-buffer-size", "0", Kind::Memory, false),
    s("sled-cache-capacity", "0", Kind::Memory, false),
    s("daemonize", "no", Kind::Enum(&["no"]), false),
    s("save", "", Kind::Ignored, true),
    s("appendonly", "no", Kind::Ignored, true),
    s("protected-mode", "no", Kind::Ignored, true),
    s("tcp-keepalive", "300", Kind::Ignored, true),
];

/// Parses a memory amount the way redis.conf does: `1k` = 1000, `1kb` = 1024, … `1gb`.
pub fn parse_memory(v: &str) -> Option<u64> {
    let lower = v.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mul: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(mul)
}

#[derive(Debug, Clone)]
pub struct Config {
    values: BTreeMap<&'static str, String>,
    pub file: Option<PathBuf>,
}

fn find(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name.eq_ignore_ascii_case(name))
}

impl Default for Config {
    fn default() -> Self {
        let mut c = Config {
            values: BTreeMap::new(),
            file: None,
        };
        // Stored normalized (memory in bytes…), as CONFIG GET shows them.
        for s in SETTINGS {
            c.set(s.name, s.default, false).expect("valid default");
        }
        c
    }
}

impl Config {
    /// Validates and stores one setting. `runtime` is true for CONFIG SET (immutable ones refused).
    pub fn set(&mut self, name: &str, value: &str, runtime: bool) -> Result<(), String> {
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
                let n: i64 = value
                    .parse()
                    .map_err(|_| bad("argument couldn't be parsed into an integer"))?;
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
            Kind::Str | Kind::Ignored => value.to_string(),
        };
        self.values.insert(setting.name, normalized);
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        find(name)
            .and_then(|s| self.values.get(s.name))
            .map(String::as_str)
    }

    pub fn get_u64(&self, name: &str) -> u64 {
        self.get(name).and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    /// Settings whose name matches a glob, for CONFIG GET.
    pub fn matching(&self, pattern: &[u8]) -> Vec<(&'static str, &str)> {
        self.values
            .iter()
            .filter(|(k, _)| crate::glob::glob_match(pattern, k.as_bytes(), true))
            .map(|(k, v)| (*k, v.as_str()))
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
        for s in SETTINGS {
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
        assert_eq!(c.get_u64("proto-max-bulk-len"), 512 << 20);
        c.set("maxmemory", "64mb", true).unwrap();
        assert_eq!(c.get_u64("maxmemory"), 64 << 20);
        assert!(c.set("port", "1", true).unwrap_err().contains("immutable"));
        assert!(c.set("nope", "1", false).is_err());
        assert!(c.set("timeout", "abc", true).is_err());
        assert!(c
            .set("backend", "lmdb", false)
            .unwrap_err()
            .contains("fs, sled, rocksdb"));
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
