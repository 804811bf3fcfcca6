//! `rename-command OLD NEW` (config file or command line): the command answers to NEW only;
//! NEW empty (`""`) disables it. A request's name is translated back to the command's own
//! name on arrival, so everything after (transactions, MONITOR, the ACL) sees real names.

use std::collections::{HashMap, HashSet};

#[derive(Debug, Default)]
pub struct Renames {
    /// New name (lowercase) → the command's own name.
    to_real: HashMap<Vec<u8>, &'static str>,
    /// Own names (lowercase) no longer reachable under themselves.
    hidden: HashSet<&'static str>,
}

impl Renames {
    /// Adds one `OLD NEW` directive (NEW may be empty).
    pub fn add(&mut self, directive: &str) -> Result<(), String> {
        let mut words = directive.splitn(2, ' ');
        let old = words.next().unwrap_or("");
        let new = words.next().unwrap_or("").trim();
        if new.contains(' ') || old.is_empty() {
            return Err(format!(
                "rename-command: expected 'OLD NEW', got '{directive}'"
            ));
        }
        let spec = crate::commands::lookup(old.as_bytes())
            .ok_or_else(|| format!("rename-command: no such command '{old}'"))?;
        self.hidden.insert(spec.name);
        if !new.is_empty() {
            self.to_real
                .insert(new.to_ascii_lowercase().into_bytes(), spec.name);
        }
        Ok(())
    }

    /// Translates a request's command name in place. `false`: the name was renamed away or
    /// disabled, the request is an unknown command.
    pub fn resolve(&self, args: &mut [Vec<u8>]) -> bool {
        if self.to_real.is_empty() && self.hidden.is_empty() {
            return true;
        }
        let lower = args[0].to_ascii_lowercase();
        if let Some(real) = self.to_real.get(&lower) {
            args[0] = real.as_bytes().to_vec();
            return true;
        }
        !std::str::from_utf8(&lower).is_ok_and(|n| self.hidden.contains(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_and_disable() {
        let mut r = Renames::default();
        r.add("flushall ").unwrap();
        r.add("CONFIG myconfig").unwrap();
        assert!(r.add("nosuch x").is_err());
        let mut a = vec![b"FLUSHALL".to_vec()];
        assert!(!r.resolve(&mut a));
        let mut a = vec![b"config".to_vec()];
        assert!(!r.resolve(&mut a));
        let mut a = vec![b"MyConfig".to_vec(), b"get".to_vec()];
        assert!(r.resolve(&mut a));
        assert_eq!(a[0], b"config");
        let mut a = vec![b"get".to_vec()];
        assert!(r.resolve(&mut a));
    }
}
