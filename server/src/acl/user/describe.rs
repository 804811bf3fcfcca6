//! A user as text: the flags and rules ACL GETUSER lists and the line ACL LIST and the ACL
//! file hold.

use super::{CmdRule, User};

impl User {
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
