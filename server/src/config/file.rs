//! The config file: loading a redis.conf-style file at startup and writing the settings back
//! to it (CONFIG REWRITE).

use super::{find, Config, COMPAT, SETTINGS};
use std::fmt::Write as _;
use std::path::Path;

impl Config {
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
