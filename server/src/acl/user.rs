//! One ACL user: its flags, password hashes, command rules, key and channel patterns; the
//! ACL SETUSER rule language that changes it, and the text ACL LIST / GETUSER show.
//!
//! Command rules are kept as an ordered list evaluated left to right (the last rule that
//! matches a command decides), starting with `+@all` or `-@all`. A new rule first drops the
//! earlier rules it fully overrides, and is itself dropped when it changes no command's
//! permission, so the text stays short (`+@all -@dangerous +get` is `+@all -@dangerous`, as
//! in Redis). Redis 7.0 rebuilds the text from its permission bitmaps instead, so for some
//! mixes of categories and exceptions its wording differs from ours; the permissions do not.

use super::categories;
use super::sha256;
use crate::commands::{self, CommandSpec};

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

    /// Applies several rules atomically: on an error nothing changes.
    pub fn apply_all<'a>(
        &mut self,
        rules: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), String> {
        let mut next = self.clone();
        for r in rules {
            next.apply(r).map_err(|e| {
                format!(
                    "Error in ACL SETUSER modifier '{}': {e}",
                    String::from_utf8_lossy(r)
                )
            })?;
        }
        *self = next;
        Ok(())
    }

    /// Applies one ACL SETUSER rule; the error is the reason Redis gives.
    pub fn apply(&mut self, rule: &[u8]) -> Result<(), String> {
        let lower = String::from_utf8_lossy(rule).to_ascii_lowercase();
        match lower.as_str() {
            "on" => self.enabled = true,
            "off" => self.enabled = false,
            "nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            "resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            "allkeys" => self.keys = vec![all_pattern()],
            "resetkeys" => self.keys.clear(),
            "allchannels" => self.channels = vec![b"*".to_vec()],
            "resetchannels" => self.channels.clear(),
            "allcommands" => self.rules = vec![CmdRule::All(true)],
            "nocommands" => self.rules = vec![CmdRule::All(false)],
            "sanitize-payload" => self.sanitize = Some(true),
            "skip-sanitize-payload" => self.sanitize = Some(false),
            "reset" => {
                for r in [
                    "resetpass",
                    "resetkeys",
                    "resetchannels",
                    "off",
                    "-@all",
                    "sanitize-payload",
                ] {
                    self.apply(r.as_bytes())?;
                }
            }
            "clearselectors" => {}
            _ => return self.apply_prefixed(rule),
        }
        Ok(())
    }

    fn apply_prefixed(&mut self, rule: &[u8]) -> Result<(), String> {
        let (&first, rest) = rule.split_first().ok_or("Syntax error")?;
        match first {
            b'>' => {
                self.add_password(sha256::hex(rest));
            }
            b'#' => {
                let h = valid_hash(rest)?;
                self.add_password(h);
            }
            b'<' | b'!' => {
                let h = if first == b'<' {
                    sha256::hex(rest)
                } else {
                    valid_hash(rest)?
                };
                let before = self.passwords.len();
                self.passwords.retain(|p| *p != h);
                if self.passwords.len() == before {
                    return Err(
                        "The password you are trying to remove from the user does not exist".into(),
                    );
                }
            }
            b'~' => self.add_key(rest, true, true)?,
            b'%' => {
                let tilde = rest.iter().position(|&c| c == b'~').ok_or("Syntax error")?;
                let (mut read, mut write) = (false, false);
                for &c in &rest[..tilde] {
                    match c.to_ascii_uppercase() {
                        b'R' => read = true,
                        b'W' => write = true,
                        _ => return Err("Syntax error".into()),
                    }
                }
                if !(read || write) {
                    return Err("Syntax error".into());
                }
                self.add_key(&rest[tilde + 1..], read, write)?;
            }
            b'&' => {
                if self.all_channels() {
                    return Err("Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels".into());
                }
                if rest == b"*" {
                    self.channels = vec![b"*".to_vec()];
                } else if !self.channels.iter().any(|c| c == rest) {
                    self.channels.push(rest.to_vec());
                }
            }
            b'+' | b'-' => self.add_command_rule(first == b'+', rest)?,
            b'(' => return Err("Selectors are not supported by kvtier".into()),
            _ => return Err("Syntax error".into()),
        }
        Ok(())
    }

    fn add_password(&mut self, hash: String) {
        self.nopass = false;
        if !self.passwords.contains(&hash) {
            self.passwords.push(hash);
        }
    }

    fn add_key(&mut self, pattern: &[u8], read: bool, write: bool) -> Result<(), String> {
        if self.all_keys() {
            return Err("Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns".into());
        }
        if pattern == b"*" && read && write {
            self.keys = vec![all_pattern()];
            return Ok(());
        }
        match self.keys.iter_mut().find(|k| k.pattern == pattern) {
            Some(k) => {
                k.read |= read;
                k.write |= write;
            }
            None => self.keys.push(KeyPattern {
                pattern: pattern.to_vec(),
                read,
                write,
            }),
        }
        Ok(())
    }

    fn add_command_rule(&mut self, allow: bool, what: &[u8]) -> Result<(), String> {
        const UNKNOWN: &str = "Unknown command or category name in ACL";
        let what = String::from_utf8_lossy(what).to_ascii_lowercase();
        let rule = if let Some(cat) = what.strip_prefix('@') {
            if cat == "all" {
                self.rules = vec![CmdRule::All(allow)];
                return Ok(());
            }
            CmdRule::Category(allow, categories::known(cat).ok_or(UNKNOWN)?)
        } else {
            let mut parts = what.splitn(3, '|');
            let name = parts.next().unwrap_or("");
            let sub = parts.next();
            if parts.next().is_some() {
                return Err("Allowing first-arg of a subcommand is not supported".into());
            }
            let spec = commands::lookup(name.as_bytes()).ok_or(UNKNOWN)?;
            if sub.is_some_and(str::is_empty) {
                return Err(UNKNOWN.into());
            }
            CmdRule::Command(allow, spec.name, sub.map(str::to_string))
        };
        // Earlier rules this one overrides for every command they cover are dropped.
        let mut next: Vec<CmdRule> = self
            .rules
            .iter()
            .filter(|r| !overridden_by(r, &rule))
            .cloned()
            .collect();
        let without = next.clone();
        next.push(rule);
        self.rules = if changes_anything(&without, &next) {
            next
        } else {
            without
        };
        Ok(())
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

    /// The flags ACL GETUSER lists.
    pub fn flags(&self) -> Vec<&'static str> {
        let mut v = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            v.push("nopass");
        }
        match self.sanitize {
            Some(false) => v.push("skip-sanitize-payload"),
            Some(true) => v.push("sanitize-payload"),
            None => {}
        }
        v
    }

    /// The command rules as text (`+@all -@dangerous +config|get`).
    pub fn describe_commands(&self) -> String {
        let words: Vec<String> = self
            .rules
            .iter()
            .map(|r| match r {
                CmdRule::All(a) => format!("{}@all", sign(*a)),
                CmdRule::Category(a, c) => format!("{}@{c}", sign(*a)),
                CmdRule::Command(a, n, None) => format!("{}{n}", sign(*a)),
                CmdRule::Command(a, n, Some(s)) => format!("{}{n}|{s}", sign(*a)),
            })
            .collect();
        words.join(" ")
    }

    /// The key patterns as text (`~a %R~b`).
    pub fn describe_keys(&self) -> String {
        let words: Vec<String> = self
            .keys
            .iter()
            .map(|k| {
                let p = String::from_utf8_lossy(&k.pattern);
                match (k.read, k.write) {
                    (true, true) => format!("~{p}"),
                    (true, false) => format!("%R~{p}"),
                    _ => format!("%W~{p}"),
                }
            })
            .collect();
        words.join(" ")
    }

    /// The channel patterns as text (`&a &b`).
    pub fn describe_channels(&self) -> String {
        let words: Vec<String> = self
            .channels
            .iter()
            .map(|c| format!("&{}", String::from_utf8_lossy(c)))
            .collect();
        words.join(" ")
    }

    /// The user as an ACL LIST line / ACL file line: `user alice on #… ~* &* +@all`.
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("user {}", self.name)];
        parts.extend(self.flags().iter().map(|f| f.to_string()));
        parts.extend(self.passwords.iter().map(|p| format!("#{p}")));
        if !self.keys.is_empty() {
            parts.push(self.describe_keys());
        }
        if !self.all_channels() {
            parts.push("resetchannels".into());
        }
        if !self.channels.is_empty() {
            parts.push(self.describe_channels());
        }
        parts.push(self.describe_commands());
        parts.join(" ")
    }
}

fn sign(allow: bool) -> char {
    if allow {
        '+'
    } else {
        '-'
    }
}

fn all_pattern() -> KeyPattern {
    KeyPattern {
        pattern: b"*".to_vec(),
        read: true,
        write: true,
    }
}

fn valid_hash(h: &[u8]) -> Result<String, String> {
    if h.len() != 64
        || !h
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
    {
        return Err("The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters".into());
    }
    Ok(String::from_utf8_lossy(h).into_owned())
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

/// Whether `new` makes the earlier rule `old` irrelevant for every request `old` covers.
fn overridden_by(old: &CmdRule, new: &CmdRule) -> bool {
    match (old, new) {
        (CmdRule::All(_), _) => false,
        (CmdRule::Category(_, a), CmdRule::Category(_, b)) => a == b,
        (CmdRule::Command(_, a, _), CmdRule::Command(_, b, None)) => a == b,
        (CmdRule::Command(_, a, Some(x)), CmdRule::Command(_, b, Some(y))) => a == b && x == y,
        (CmdRule::Command(_, n, sub), CmdRule::Category(_, c)) => {
            let Some(spec) = commands::lookup(n.as_bytes()) else {
                return false;
            };
            let cats = categories::of(spec, sub.as_deref().map(str::as_bytes));
            let in_cat = |cats: &[&str]| cats.iter().any(|x| x.strip_prefix('@') == Some(c));
            // A whole-command rule is overridden only if every subcommand is in the category.
            in_cat(&cats) && (sub.is_some() || !categories::is_container(spec.name))
        }
        _ => false,
    }
}

/// Whether two rule lists differ for any command (or any subcommand either names).
fn changes_anything(a: &[CmdRule], b: &[CmdRule]) -> bool {
    let subs: Vec<(&str, &str)> = a
        .iter()
        .chain(b)
        .filter_map(|r| match r {
            CmdRule::Command(_, n, Some(s)) => Some((*n, s.as_str())),
            _ => None,
        })
        .chain(
            // Subcommands whose categories differ from their container's.
            [
                ("client", "kill"),
                ("client", "id"),
                ("acl", "whoami"),
                ("acl", "setuser"),
            ],
        )
        .collect();
    commands::all().into_iter().any(|spec| {
        let cats = categories::of(spec, None);
        allowed(a, spec.name, None, &cats) != allowed(b, spec.name, None, &cats)
    }) || subs.iter().any(|(n, s)| {
        commands::lookup(n.as_bytes()).is_some_and(|spec| {
            let sub = Some(s.as_bytes());
            let cats = categories::of(spec, sub);
            allowed(a, spec.name, sub, &cats) != allowed(b, spec.name, sub, &cats)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(rules: &[&str]) -> User {
        let mut u = User::new("t");
        u.apply_all(rules.iter().map(|r| r.as_bytes())).unwrap();
        u
    }

    #[test]
    fn describes_like_redis() {
        assert_eq!(
            User::default_user().describe(),
            "user default on nopass ~* &* +@all"
        );
        assert_eq!(user(&[]).describe(), "user t off resetchannels -@all");
        assert_eq!(
            user(&["+@all", "-@dangerous", "+get"]).describe_commands(),
            "+@all -@dangerous"
        );
        assert_eq!(
            user(&["+@all", "-@dangerous", "+flushall", "-flushall"]).describe_commands(),
            "+@all -@dangerous"
        );
        assert_eq!(user(&["+get", "-get"]).describe_commands(), "-@all");
        assert_eq!(
            user(&["+get", "-get", "+get"]).describe_commands(),
            "-@all +get"
        );
        assert_eq!(user(&["+@read", "-@read"]).describe_commands(), "-@all");
        assert_eq!(
            user(&["allcommands", "-get", "nocommands", "+set"]).describe_commands(),
            "-@all +set"
        );
        assert_eq!(
            user(&["+config|get", "-config"]).describe_commands(),
            "-@all"
        );
        assert_eq!(
            user(&["+@all", "-@admin", "+debug"]).describe_commands(),
            "+@all -@admin +debug"
        );
        assert_eq!(user(&["~a", "~b", "~a"]).describe_keys(), "~a ~b");
        assert_eq!(user(&["~a", "allkeys"]).describe_keys(), "~*");
        assert_eq!(user(&["%R~a", "%W~a"]).describe_keys(), "~a");
        assert_eq!(user(&["%RW~a"]).describe_keys(), "~a");
        assert_eq!(user(&["~a", "resetkeys", "~b"]).describe_keys(), "~b");
        assert_eq!(
            user(&["&a", "allchannels"]).describe(),
            "user t off &* -@all"
        );
        assert_eq!(
            user(&[">x", "nopass"]).describe(),
            "user t off nopass resetchannels -@all"
        );
        assert_eq!(
            user(&["nopass", ">y"]).describe(),
            "user t off #a1fce4363854ff888cff4b8e7875d600c2682390412a8cf79b37d0b11148b0fa resetchannels -@all"
        );
        assert_eq!(
            user(&["on", "reset"]).describe(),
            "user t off sanitize-payload resetchannels -@all"
        );
    }

    #[test]
    fn rule_errors() {
        let mut u = User::new("t");
        let err = |u: &mut User, r: &str| u.apply_all([r.as_bytes()]).unwrap_err();
        assert_eq!(
            err(&mut u, "badrule"),
            "Error in ACL SETUSER modifier 'badrule': Syntax error"
        );
        assert!(err(&mut u, "+nosuchcmd").ends_with("Unknown command or category name in ACL"));
        assert!(err(&mut u, "+@nosuch").ends_with("Unknown command or category name in ACL"));
        assert!(err(&mut u, "#abc").contains("exactly 64 characters"));
        assert!(err(&mut u, "<nopw").contains("does not exist"));
        assert!(err(&mut u, "%X~a").ends_with("Syntax error"));
        assert!(err(&mut u, "+config|get|x").ends_with("not supported"));
        u.apply(b"allkeys").unwrap();
        assert!(err(&mut u, "~a").contains("'allkeys' flag"));
        // Atomic: a failing rule list changes nothing.
        let before = u.clone();
        assert!(u.apply_all([b"on".as_slice(), b"bad"]).is_err());
        assert_eq!(u, before);
    }

    #[test]
    fn permissions() {
        let get = commands::lookup(b"get").unwrap();
        let flushall = commands::lookup(b"flushall").unwrap();
        let config = commands::lookup(b"config").unwrap();
        let u = user(&["+@all", "-@dangerous", "+flushall"]);
        assert!(u.may_run(get, None) && u.may_run(flushall, None));
        assert!(!u.may_run(config, Some(b"get")));
        let u = user(&["+config|get"]);
        assert!(u.may_run(config, Some(b"GET")) && !u.may_run(config, Some(b"set")));
        let u = user(&["%R~r*", "%W~w*", "~both"]);
        let r = Access {
            read: true,
            write: false,
        };
        let w = Access {
            read: false,
            write: true,
        };
        let rw = Access {
            read: true,
            write: true,
        };
        assert!(u.may_access_key(b"r1", r) && !u.may_access_key(b"r1", w));
        assert!(u.may_access_key(b"w1", w) && !u.may_access_key(b"w1", rw));
        assert!(u.may_access_key(b"both", rw) && !u.may_access_key(b"x", r));
        let u = user(&["&news.*"]);
        assert!(u.may_use_channel(b"news.a", false));
        assert!(!u.may_use_channel(b"news.*x", true) && u.may_use_channel(b"news.*", true));
        let u = user(&["on", ">pw"]);
        assert!(u.accepts(b"pw") && !u.accepts(b"px"));
        assert!(!user(&["off", ">pw"]).accepts(b"pw"));
    }
}
