//! The ACL SETUSER rule language: applying rules to a user, and keeping its command rules
//! short (dropping rules that a later one overrides or that change nothing).

use super::super::{categories, sha256};
use super::{allowed, CmdRule, KeyPattern, User};
use crate::commands;

impl User {
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
