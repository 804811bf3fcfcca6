//! One ACL user: its flags, password hashes, command rules, key and channel patterns; the
//! ACL SETUSER rule language that changes it, and the text ACL LIST / GETUSER show.
//!
//! Command rules are kept as an ordered list evaluated left to right (the last rule that
//! matches a command decides), starting with `+@all` or `-@all`. A new rule first drops the
//! earlier rules it fully overrides, and is itself dropped when it changes no command's
//! permission, so the text stays short (`+@all -@dangerous +get` is `+@all -@dangerous`, as
//! in Redis). Redis 7.0 rebuilds the text from its permission bitmaps instead, so for some
//! mixes of categories and exceptions its wording differs from ours; the permissions do not.
//!
//! Files: `parse` (the SETUSER rule language), `describe` (the text); the user, its checks and
//! the rule evaluation are here.

mod describe;
mod parse;
#[cfg(test)]
mod tests;

use super::categories;
use super::sha256;
use crate::commands::CommandSpec;

/// One command rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmdRule {
    /// `+@all` / `-@all` (also `allcommands` / `nocommands`): always the first rule.
    All(bool),
    /// `+@cat` / `-@cat` (category name without `@`).
    Category(bool, &'static str),
    /// `+cmd` / `-cmd`, or `+cmd|sub` for one subcommand (names lowercase).
    Command(bool, &'static str, Option<String>),
}

/// A key pattern with the access it grants: `~p` both, `%R~p` read, `%W~p` write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPattern {
    pub pattern: Vec<u8>,
    pub read: bool,
    pub write: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub enabled: bool,
    pub nopass: bool,
    /// `sanitize-payload` / `skip-sanitize-payload`, shown when set (no effect here: kvtier
    /// has no RESTORE payloads).
    pub sanitize: Option<bool>,
    /// SHA-256 of each password, lowercase hex, in the order added.
    pub passwords: Vec<String>,
    pub rules: Vec<CmdRule>,
    pub keys: Vec<KeyPattern>,
    pub channels: Vec<Vec<u8>>,
}

/// Which accesses a request needs on a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub read: bool,
    pub write: bool,
}

impl User {
    /// A user as ACL SETUSER creates it: off, no password, no commands, keys or channels.
    pub fn new(name: &str) -> User {
        User {
            name: name.to_string(),
            enabled: false,
            nopass: false,
            sanitize: None,
            passwords: Vec::new(),
            rules: vec![CmdRule::All(false)],
            keys: Vec::new(),
            channels: Vec::new(),
        }
    }

    /// The `default` user as a fresh server has it: everything allowed, no password.
    pub fn default_user() -> User {
        let mut u = User::new("default");
        for r in ["on", "nopass", "allkeys", "allchannels", "+@all"] {
            u.apply(r.as_bytes()).expect("valid rule");
        }
        u
    }

    /// Whether the user may do anything at all (the fast path of every check).
    pub fn unrestricted(&self) -> bool {
        self.rules == [CmdRule::All(true)] && self.all_keys() && self.all_channels()
    }

    fn all_keys(&self) -> bool {
        self.keys
            .iter()
            .any(|k| k.pattern == b"*" && k.read && k.write)
    }

    fn all_channels(&self) -> bool {
        self.channels.iter().any(|c| c == b"*")
    }

    /// Whether `password` opens this user (enabled, and nopass or a matching hash).
    pub fn accepts(&self, password: &[u8]) -> bool {
        if !self.enabled {
            return false;
        }
        if self.nopass {
            return true;
        }
        let h = sha256::hex(password);
        // Compared without an early exit, so timing does not tell how much of a hash matched.
        self.passwords.iter().fold(false, |found, p| {
            let diff = p
                .bytes()
                .zip(h.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            found | (diff == 0 && p.len() == h.len())
        })
    }
    /// Whether the user may run `spec` (with subcommand `sub` for a container).
    pub fn may_run(&self, spec: &CommandSpec, sub: Option<&[u8]>) -> bool {
        let cats = categories::of(spec, sub);
        allowed(&self.rules, spec.name, sub, &cats)
    }

    /// Whether the user may access `key` as `access` says.
    pub fn may_access_key(&self, key: &[u8], access: Access) -> bool {
        let ok = |need: bool, flag: fn(&KeyPattern) -> bool| {
            !need
                || self
                    .keys
                    .iter()
                    .any(|k| flag(k) && crate::glob::glob_match(&k.pattern, key, false))
        };
        ok(access.read, |k| k.read) && ok(access.write, |k| k.write)
    }

    /// Whether the user may use `channel`; a pattern (PSUBSCRIBE) must be allowed literally.
    pub fn may_use_channel(&self, channel: &[u8], is_pattern: bool) -> bool {
        self.channels.iter().any(|c| {
            c == b"*"
                || if is_pattern {
                    c == channel
                } else {
                    crate::glob::glob_match(c, channel, false)
                }
        })
    }
}

/// Evaluates rules left to right for one request: the last matching rule decides.
fn allowed(rules: &[CmdRule], name: &str, sub: Option<&[u8]>, cats: &[&str]) -> bool {
    let mut ok = false;
    for r in rules {
        match r {
            CmdRule::All(a) => ok = *a,
            CmdRule::Category(a, c) => {
                if cats.iter().any(|x| x.strip_prefix('@') == Some(c)) {
                    ok = *a;
                }
            }
            CmdRule::Command(a, n, s) => {
                let sub_ok = match s {
                    None => true,
                    Some(s) => sub.is_some_and(|x| x.eq_ignore_ascii_case(s.as_bytes())),
                };
                if *n == name && sub_ok {
                    ok = *a;
                }
            }
        }
    }
    ok
}
