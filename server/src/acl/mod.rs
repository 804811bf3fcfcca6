//! Access control as Redis 7.0 has it: ACL users (passwords, command/key/channel rules), the
//! permission check every request goes through, the ACL LOG, the ACL file, and the other
//! front-door defaults: protected mode and `rename-command`.
//!
//! - `user`: one user, the SETUSER rule language, the text ACL LIST shows.
//! - `categories`: Redis's command categories and which ones a request belongs to.
//! - `command`: the ACL command. `log`: ACL LOG entries.
//! - `protected`: protected mode. `rename`: rename-command. `sha256`: password hashing.
//!
//! The `default` user mirrors `requirepass`: set, it is the only password of `default`;
//! empty, `default` is `nopass` (new connections are authenticated as it).

pub mod categories;
mod command;
mod log;
pub mod protected;
pub mod rename;
mod sha256;
pub mod user;

pub use command::COMMANDS;

use crate::client::ClientState;
use crate::commands::{flags, CommandSpec};
use crate::config::Config;
use std::collections::BTreeMap;
use user::{Access, User};

/// Users, the ACL log and the rename table: one per server (in `Shared`).
#[derive(Debug)]
pub struct Acl {
    pub users: BTreeMap<String, User>,
    pub log: log::AclLog,
    pub renames: rename::Renames,
    /// `requirepass` as last applied to the default user (so that only a change of it, not
    /// any CONFIG SET, resets the default user's passwords).
    requirepass: String,
}

impl Default for Acl {
    fn default() -> Self {
        let mut users = BTreeMap::new();
        users.insert("default".to_string(), User::default_user());
        Acl {
            users,
            log: Default::default(),
            renames: Default::default(),
            requirepass: String::new(),
        }
    }
}

/// Why a request was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Denied {
    /// The command (`get`, `config|set`).
    Command(String),
    Key(Vec<u8>),
    Channel(Vec<u8>),
    /// The client's user was deleted: the connection is closed, as in Redis.
    NoUser,
}

impl Denied {
    /// The error `redis.call` raises in a script for a refused command (Redis's words).
    pub fn script_message(&self) -> String {
        let what = match self {
            Denied::Command(_) | Denied::NoUser => "run this command or subcommand",
            Denied::Key(_) => "access at least one of the keys mentioned in the command arguments",
            Denied::Channel(_) => "publish to the channel mentioned in the command",
        };
        format!("ERR The user executing the script can't {what}")
    }

    /// The error a queued command gets at EXEC when the ACL changed since it was queued.
    pub fn exec_message(&self) -> String {
        let reason = match self {
            Denied::Command(_) => "no permission to execute the command or subcommand",
            Denied::Key(_) => "no permission to touch the specified keys",
            Denied::Channel(_) => "no permission to access one of the channels used as arguments",
            Denied::NoUser => "no permission",
        };
        format!("NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {reason}")
    }

    /// The error reply, as Redis words it.
    pub fn message(&self) -> String {
        match self {
            Denied::Command(c) => {
                format!("NOPERM this user has no permissions to run the '{c}' command")
            }
            Denied::Key(_) => {
                "NOPERM this user has no permissions to access one of the keys used as arguments"
                    .into()
            }
            Denied::Channel(_) => "NOPERM this user has no permissions to access one of the channels used as arguments".into(),
            Denied::NoUser => "NOPERM this user was deleted".into(),
        }
    }
}

impl Acl {
    /// The server's ACL from its settings: `requirepass`, `user` directives, `aclfile`,
    /// `rename-command`. An error stops the server from starting.
    pub fn from_config(cfg: &Config) -> Result<Acl, String> {
        let mut acl = Acl::default();
        acl.sync_requirepass(cfg);
        let mut from_config = false;
        for (name, line) in &cfg.directives {
            match name.as_str() {
                "user" => {
                    let words: Vec<&str> = line.split_whitespace().collect();
                    let (user, rules) = words.split_first().ok_or("user: a name is needed")?;
                    acl.set_user(user, rules.iter().map(|r| r.as_bytes()))
                        .map_err(|e| format!("user {user}: {e}"))?;
                    from_config = true;
                }
                "rename-command" => acl.renames.add(line)?,
                _ => {}
            }
        }
        if let Some(path) = cfg.get("aclfile").filter(|p| !p.is_empty()) {
            if from_config {
                return Err("Configuring Redis with users defined in redis.conf and at the same time setting an ACL file path is invalid. This setup is very likely to lead to configuration errors and security holes, please define either an ACL file or declare users directly in your redis.conf, but not both.".into());
            }
            acl.load_file(std::path::Path::new(path))?;
        }
        Ok(acl)
    }

    /// Mirrors a changed `requirepass` into the default user.
    pub fn sync_requirepass(&mut self, cfg: &Config) {
        let pass = cfg.get("requirepass").unwrap_or("").to_string();
        if pass == self.requirepass {
            return;
        }
        let rules: Vec<Vec<u8>> = if pass.is_empty() {
            vec![b"nopass".to_vec()]
        } else {
            vec![b"resetpass".to_vec(), format!(">{pass}").into_bytes()]
        };
        if let Some(u) = self.users.get_mut("default") {
            let _ = u.apply_all(rules.iter().map(Vec::as_slice));
        }
        self.requirepass = pass;
    }

    /// Creates or changes a user (ACL SETUSER): all rules apply or none.
    pub fn set_user<'a>(
        &mut self,
        name: &str,
        rules: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), String> {
        let mut u = self
            .users
            .get(name)
            .cloned()
            .unwrap_or_else(|| User::new(name));
        u.apply_all(rules)?;
        self.users.insert(name.to_string(), u);
        Ok(())
    }

    /// Whether a new connection starts authenticated (as `default`).
    pub fn default_nopass(&self) -> bool {
        self.users
            .get("default")
            .is_some_and(|u| u.enabled && u.nopass)
    }

    /// Whether `user` exists, is enabled and accepts `password`.
    pub fn authenticate(&self, user: &[u8], password: &[u8]) -> bool {
        std::str::from_utf8(user)
            .ok()
            .and_then(|u| self.users.get(u))
            .is_some_and(|u| u.accepts(password))
    }

    /// Whether `username` may run this request (command, keys, channels).
    pub fn check(
        &self,
        username: &str,
        spec: &CommandSpec,
        args: &[Vec<u8>],
    ) -> Result<(), Denied> {
        if spec.has(flags::NO_AUTH) {
            // AUTH, HELLO, QUIT, RESET: every user may run them, as in Redis.
            return Ok(());
        }
        let Some(u) = self.users.get(username) else {
            return Err(Denied::NoUser);
        };
        if u.unrestricted() {
            return Ok(());
        }
        let sub = if spec.has(flags::CONTAINER) {
            args.get(1).map(Vec::as_slice)
        } else {
            None
        };
        if !u.may_run(spec, sub) {
            let name = match sub {
                Some(s) => format!(
                    "{}|{}",
                    spec.name,
                    String::from_utf8_lossy(s).to_lowercase()
                ),
                None => spec.name.to_string(),
            };
            return Err(Denied::Command(name));
        }
        let access = access_of(spec, args);
        if let Some(k) = spec
            .key_args(args)
            .into_iter()
            .find(|k| !u.may_access_key(k, access))
        {
            return Err(Denied::Key(k.to_vec()));
        }
        let (channels, is_pattern): (&[Vec<u8>], bool) = match spec.name {
            "publish" | "spublish" => (&args[1..2], false),
            "subscribe" | "ssubscribe" => (&args[1..], false),
            "psubscribe" => (&args[1..], true),
            _ => (&[], false),
        };
        if let Some(c) = channels.iter().find(|c| !u.may_use_channel(c, is_pattern)) {
            return Err(Denied::Channel(c.clone()));
        }
        Ok(())
    }

    /// Checks a request of `client` and records a refusal in the ACL log. `Err` is the error
    /// reply; `client_info` is its CLIENT LIST line.
    pub fn check_request(
        &mut self,
        client: &ClientState,
        client_info: impl FnOnce() -> String,
        spec: &CommandSpec,
        args: &[Vec<u8>],
        max_log: impl FnOnce() -> usize,
    ) -> Result<(), Denied> {
        let denied = match self.check(&client.user, spec, args) {
            Ok(()) => return Ok(()),
            Err(d) => d,
        };
        let (reason, object) = match &denied {
            Denied::Command(c) => ("command", c.clone()),
            Denied::Key(k) => ("key", String::from_utf8_lossy(k).into_owned()),
            Denied::Channel(c) => ("channel", String::from_utf8_lossy(c).into_owned()),
            Denied::NoUser => return Err(denied),
        };
        let context = if client.multi.is_some() {
            "multi"
        } else {
            "toplevel"
        };
        let info = format!("{} user={}", client_info(), client.user);
        self.log
            .add(reason, context, &object, &client.user, info, max_log());
        Err(denied)
    }

    /// Replaces every user with the ACL file's (ACL LOAD, startup). Nothing changes on an error.
    pub fn load_file(&mut self, path: &std::path::Path) -> Result<(), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("Error loading ACLs, opening file '{}': {e}", path.display()))?;
        let mut users = BTreeMap::new();
        const NO_CHANGE: &str =
            "WARNING: ACL errors detected, no change to the previously active ACL rules was performed";
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            if words[0] != "user" || words.len() < 2 {
                return Err(format!(
                    "{}:{} should start with user keyword followed by the username. {NO_CHANGE}",
                    path.display(),
                    i + 1
                ));
            }
            let name = words[1];
            if users.contains_key(name) {
                return Err(format!(
                    "WARNING: Duplicate user '{name}' found on line {}. {NO_CHANGE}",
                    i + 1
                ));
            }
            let mut u = User::new(name);
            for w in &words[2..] {
                u.apply(w.as_bytes()).map_err(|e| {
                    format!(
                        "{}:{}: Error in applying operation '{w}': {e}. {NO_CHANGE}",
                        path.display(),
                        i + 1
                    )
                })?;
            }
            users.insert(name.to_string(), u);
        }
        users
            .entry("default".to_string())
            .or_insert_with(User::default_user);
        self.users = users;
        Ok(())
    }

    /// Writes every user to the ACL file (ACL SAVE), atomically.
    pub fn save_file(&self, path: &std::path::Path) -> Result<(), String> {
        let mut text = String::new();
        for u in self.users.values() {
            text.push_str(&u.describe());
            text.push('\n');
        }
        let tmp = path.with_extension("acl-tmp");
        std::fs::write(&tmp, text)
            .and_then(|_| std::fs::rename(&tmp, path))
            .map_err(|e| format!("There was an error trying to save the ACLs. Please check the server logs for more information ({e})"))
    }
}

/// The access a request needs on its keys: read for read-only commands, write only for
/// commands that replace or delete keys unread (SET, DEL…), both otherwise.
fn access_of(spec: &CommandSpec, args: &[Vec<u8>]) -> Access {
    if spec.has(flags::READONLY) {
        Access {
            read: true,
            write: false,
        }
    } else if spec.has(flags::WRITE) && spec.overwrites_keys(args) {
        Access {
            read: false,
            write: true,
        }
    } else {
        Access {
            read: true,
            write: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<Vec<u8>> {
        a.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    fn check(acl: &Acl, user: &str, a: &[&str]) -> Result<(), Denied> {
        let a = args(a);
        let spec = crate::commands::lookup(&a[0]).unwrap();
        acl.check(user, spec, &a)
    }

    #[test]
    fn requirepass_drives_the_default_user() {
        let mut acl = Acl::default();
        assert!(acl.default_nopass());
        let mut cfg = Config::default();
        cfg.set("requirepass", "secret", true).unwrap();
        acl.sync_requirepass(&cfg);
        assert!(!acl.default_nopass());
        assert!(acl.authenticate(b"default", b"secret"));
        assert!(!acl.authenticate(b"default", b"other"));
        cfg.set("requirepass", "", true).unwrap();
        acl.sync_requirepass(&cfg);
        assert!(acl.default_nopass());
    }

    #[test]
    fn checks_commands_keys_channels() {
        let mut acl = Acl::default();
        let rules = ["on", ">pw", "~k*", "%R~r*", "&c*", "+@all", "-@dangerous"];
        acl.set_user("u", rules.iter().map(|r| r.as_bytes()))
            .unwrap();
        assert_eq!(check(&acl, "u", &["get", "k1"]), Ok(()));
        assert_eq!(
            check(&acl, "u", &["get", "x"]),
            Err(Denied::Key(b"x".to_vec()))
        );
        assert_eq!(check(&acl, "u", &["get", "r1"]), Ok(()));
        assert_eq!(
            check(&acl, "u", &["set", "r1", "v"]),
            Err(Denied::Key(b"r1".to_vec()))
        );
        assert_eq!(
            check(&acl, "u", &["flushall"]),
            Err(Denied::Command("flushall".into()))
        );
        assert_eq!(
            check(&acl, "u", &["config", "GET", "x"]),
            Err(Denied::Command("config|get".into()))
        );
        assert_eq!(check(&acl, "u", &["publish", "c1", "m"]), Ok(()));
        assert_eq!(
            check(&acl, "u", &["subscribe", "c1", "x"]),
            Err(Denied::Channel(b"x".to_vec()))
        );
        assert_eq!(check(&acl, "u", &["auth", "u", "pw"]), Ok(()));
        assert_eq!(check(&acl, "gone", &["get", "k"]), Err(Denied::NoUser));
        assert_eq!(check(&acl, "default", &["flushall"]), Ok(()));
    }
}
