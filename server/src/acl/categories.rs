//! ACL command categories: Redis 7.0's list (ACL CAT) and which categories a request belongs
//! to. A command's categories are the ones COMMAND INFO reports (server_cmds.rs derives them
//! from the command's flags and family); a few container subcommands differ from their
//! container, as in Redis (CLIENT KILL is dangerous, CLIENT ID is not; ACL WHOAMI is not admin).

use crate::commands::CommandSpec;

/// Redis 7.0's categories, in its order (what `ACL CAT` lists).
pub const CATEGORIES: [&str; 21] = [
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// Commands whose permission (and NOPERM name) is per subcommand: `config|get`.
pub const CONTAINERS: &[&str] = &[
    "acl", "client", "command", "config", "function", "latency", "memory", "module", "object",
    "pubsub", "script", "slowlog", "xinfo", "xgroup", "cluster",
];

/// Whether `name` (lowercase) is a container command.
pub fn is_container(name: &str) -> bool {
    CONTAINERS.contains(&name)
}

/// The categories (with `@`) of a request for `spec`, `sub` being its subcommand if `spec` is
/// a container.
pub fn of(spec: &CommandSpec, sub: Option<&[u8]>) -> Vec<&'static str> {
    let sub = sub.map(|s| String::from_utf8_lossy(s).to_ascii_lowercase());
    match (spec.name, sub.as_deref()) {
        ("acl", Some("whoami" | "cat" | "genpass" | "help")) => vec!["@slow"],
        ("acl", _) => vec!["@admin", "@slow", "@dangerous"],
        // (CLIENT TRACKING is @slow @connection only, as in Redis 7.0.)
        ("client", Some("kill" | "list" | "pause" | "unpause" | "unblock" | "no-evict")) => {
            vec!["@admin", "@slow", "@dangerous", "@connection"]
        }
        ("client", _) => vec!["@slow", "@connection"],
        // A container's HELP is harmless: Redis keeps only its family (stream, scripting,
        // connection; keyspace for OBJECT) and @slow, never @admin, @dangerous, @read or @write.
        (name, Some("help")) if is_container(name) => {
            let family = |c: &&str| {
                ["@stream", "@scripting", "@connection"].contains(c)
                    || (name == "object" && *c == "@keyspace")
            };
            let mut v: Vec<&'static str> = crate::commands::server_cmds::acl_categories(spec)
                .into_iter()
                .filter(family)
                .collect();
            v.insert(0, "@slow");
            v
        }
        _ => crate::commands::server_cmds::acl_categories(spec),
    }
}

/// The categories COMMAND LIST FILTERBY ACLCAT sees for a command (`sub`: `None`) or one of
/// its subcommands: a container itself has only @slow in Redis (COMMAND, which also runs
/// without a subcommand, @connection too); the rest as [`of`].
pub fn listed(spec: &CommandSpec, sub: Option<&[u8]>) -> Vec<&'static str> {
    match (sub, spec.name) {
        (None, "command") => vec!["@slow", "@connection"],
        (None, name) if is_container(name) => vec!["@slow"],
        _ => of(spec, sub),
    }
}

/// Whether `name` (without `@`, any case) is a category.
pub fn known(name: &str) -> Option<&'static str> {
    CATEGORIES
        .iter()
        .find(|c| c.eq_ignore_ascii_case(name))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_of_commands() {
        let get = crate::commands::lookup(b"get").unwrap();
        let cats = of(get, None);
        assert!(cats.contains(&"@read") && cats.contains(&"@string"));
        let flushall = crate::commands::lookup(b"flushall").unwrap();
        assert!(of(flushall, None).contains(&"@dangerous"));
        let client = crate::commands::lookup(b"client").unwrap();
        assert!(of(client, Some(b"KILL")).contains(&"@dangerous"));
        assert!(!of(client, Some(b"id")).contains(&"@dangerous"));
        assert_eq!(known("STRING"), Some("string"));
        assert_eq!(known("nope"), None);
    }
}
