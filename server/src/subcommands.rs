//! Redis 7.0's container commands and their subcommands (`config|set`…): what INFO
//! commandstats names a request by, each subcommand's arity, and which subcommands Redis serves
//! while a script is busy (`allow_busy`). Taken from redis-server 7.0.15's COMMAND INFO.

use crate::commands::{CmdError, CommandSpec};
use rustc_hash::FxHashMap;
use std::sync::OnceLock;

/// `(container|subcommand, arity, allowed while a script is busy)`.
static SUBCOMMANDS: &[(&str, i32, bool)] = &[
    ("acl|list", 2, false),
    ("acl|save", 2, false),
    ("acl|log", -2, false),
    ("acl|help", 2, false),
    ("acl|setuser", -3, false),
    ("acl|genpass", -2, false),
    ("acl|deluser", -3, false),
    ("acl|getuser", 3, false),
    ("acl|users", 2, false),
    ("acl|load", 2, false),
    ("acl|whoami", 2, false),
    ("acl|dryrun", -4, false),
    ("acl|cat", -2, false),
    ("client|id", 2, false),
    ("client|caching", 3, false),
    ("client|list", -2, false),
    ("client|info", 2, false),
    ("client|help", 2, false),
    ("client|getredir", 2, false),
    ("client|unpause", 2, false),
    ("client|trackinginfo", 2, false),
    ("client|kill", -3, false),
    ("client|tracking", -3, false),
    ("client|no-evict", 3, false),
    ("client|setname", 3, false),
    ("client|pause", -3, false),
    ("client|reply", 3, false),
    ("client|getname", 2, false),
    ("client|unblock", -3, false),
    ("cluster|info", 2, false),
    ("cluster|delslots", -3, false),
    ("cluster|bumpepoch", 2, false),
    ("cluster|keyslot", 3, false),
    ("cluster|meet", -4, false),
    ("cluster|addslotsrange", -4, false),
    ("cluster|countkeysinslot", 3, false),
    ("cluster|myid", 2, false),
    ("cluster|addslots", -3, false),
    ("cluster|failover", -2, false),
    ("cluster|reset", -2, false),
    ("cluster|slots", 2, false),
    ("cluster|getkeysinslot", 4, false),
    ("cluster|count-failure-reports", 3, false),
    ("cluster|setslot", -4, false),
    ("cluster|shards", 2, false),
    ("cluster|nodes", 2, false),
    ("cluster|help", 2, false),
    ("cluster|links", 2, false),
    ("cluster|flushslots", 2, false),
    ("cluster|replicas", 3, false),
    ("cluster|forget", 3, false),
    ("cluster|slaves", 3, false),
    ("cluster|saveconfig", 2, false),
    ("cluster|replicate", 3, false),
    ("cluster|delslotsrange", -4, false),
    ("cluster|set-config-epoch", 3, false),
    ("command|list", -2, false),
    ("command|count", 2, false),
    ("command|getkeys", -4, false),
    ("command|info", -2, false),
    ("command|help", 2, false),
    ("command|docs", -2, false),
    ("command|getkeysandflags", -4, false),
    ("config|rewrite", 2, false),
    ("config|get", -3, false),
    ("config|help", 2, false),
    ("config|set", -4, false),
    ("config|resetstat", 2, false),
    ("function|list", -2, false),
    ("function|stats", 2, true),
    ("function|help", 2, false),
    ("function|delete", 3, false),
    ("function|dump", 2, false),
    ("function|flush", -2, false),
    ("function|kill", 2, true),
    ("function|restore", -3, false),
    ("function|load", -3, false),
    ("latency|latest", 2, false),
    ("latency|reset", -2, false),
    ("latency|graph", 3, false),
    ("latency|help", 2, false),
    ("latency|histogram", -2, false),
    ("latency|doctor", 2, false),
    ("latency|history", 3, false),
    ("memory|stats", 2, false),
    ("memory|help", 2, false),
    ("memory|purge", 2, false),
    ("memory|usage", -3, false),
    ("memory|doctor", 2, false),
    ("memory|malloc-stats", 2, false),
    ("module|list", 2, false),
    ("module|unload", 3, false),
    ("module|help", 2, false),
    ("module|loadex", -3, false),
    ("module|load", -3, false),
    ("object|help", 2, false),
    ("object|encoding", 3, false),
    ("object|freq", 3, false),
    ("object|idletime", 3, false),
    ("object|refcount", 3, false),
    ("pubsub|shardnumsub", -2, false),
    ("pubsub|numpat", 2, false),
    ("pubsub|numsub", -2, false),
    ("pubsub|shardchannels", -2, false),
    ("pubsub|help", 2, false),
    ("pubsub|channels", -2, false),
    ("script|help", 2, false),
    ("script|kill", 2, true),
    ("script|load", 3, false),
    ("script|debug", 3, false),
    ("script|flush", -2, false),
    ("script|exists", -3, false),
    ("slowlog|reset", 2, false),
    ("slowlog|help", 2, false),
    ("slowlog|get", -2, false),
    ("slowlog|len", 2, false),
    ("xgroup|destroy", 4, false),
    ("xgroup|help", 2, false),
    ("xgroup|createconsumer", 5, false),
    ("xgroup|setid", -5, false),
    ("xgroup|create", -5, false),
    ("xgroup|delconsumer", 5, false),
    ("xinfo|stream", -3, false),
    ("xinfo|help", 2, false),
    ("xinfo|groups", 3, false),
    ("xinfo|consumers", 4, false),
];

/// One subcommand of a container command.
#[derive(Debug, Clone, Copy)]
pub struct Subcommand {
    /// `container|subcommand`, as commandstats names it.
    pub name: &'static str,
    /// Redis arity (counting the container's name and the subcommand).
    pub arity: i32,
    /// Served while a script is busy (Redis's `allow_busy`).
    pub allow_busy: bool,
}

/// The subcommands of each container, by container name: built once, because every request
/// asks (commandstats naming), and a scan of the whole table per request cost most of the owner
/// thread's time at -P 16.
fn by_container() -> &'static FxHashMap<&'static str, Vec<Subcommand>> {
    static MAP: OnceLock<FxHashMap<&'static str, Vec<Subcommand>>> = OnceLock::new();
    MAP.get_or_init(|| {
        let mut map: FxHashMap<&'static str, Vec<Subcommand>> = FxHashMap::default();
        for &(name, arity, allow_busy) in SUBCOMMANDS {
            let (container, _) = name.split_once('|').expect("container|subcommand");
            map.entry(container).or_default().push(Subcommand {
                name,
                arity,
                allow_busy,
            });
        }
        map
    })
}

/// The subcommands of container `spec` (none for another command).
pub fn of(spec: &CommandSpec) -> &'static [Subcommand] {
    by_container().get(spec.name).map_or(&[], Vec::as_slice)
}

/// Whether `spec` is a container command (one with subcommands).
pub fn is_container(spec: &CommandSpec) -> bool {
    spec.has(crate::commands::flags::CONTAINER)
}

/// The subcommand `sub` of the container `spec`, if Redis has it (any case).
pub fn find(spec: &CommandSpec, sub: &[u8]) -> Option<Subcommand> {
    by_container()
        .get(spec.name)?
        .iter()
        .find(|s| {
            s.name
                .split_once('|')
                .is_some_and(|(_, name)| name.as_bytes().eq_ignore_ascii_case(sub))
        })
        .copied()
}

/// The name INFO commandstats counts a request under, as Redis 7.0 does: `config|set` for a
/// container's subcommand, the command's name otherwise (a container called with no
/// subcommand too). `None` for a subcommand Redis does not have: Redis refuses it before it
/// is a command, and counts it in no command's statistics.
pub fn stats_name(spec: &CommandSpec, args: &[Vec<u8>]) -> Option<&'static str> {
    match args.get(1) {
        Some(sub) if is_container(spec) => find(spec, sub).map(|s| s.name),
        _ => Some(spec.name),
    }
}

/// Why Redis refuses a container's request before it runs: processCommand looks a
/// subcommand up like a command, and checks its existence and arity before anything else.
#[derive(Debug, Clone, Copy)]
pub enum Refusal {
    /// The container has no such subcommand.
    Unknown,
    /// The subcommand with the wrong number of arguments.
    Arity(Subcommand),
}

impl Refusal {
    /// The error a client's request is refused with, as redis-server 7.0.15 words it
    /// (`ERR unknown subcommand 'x'. Try CLIENT HELP.`, `ERR wrong number of arguments for
    /// 'client|getname' command`).
    pub fn error(self, spec: &CommandSpec, args: &[Vec<u8>]) -> CmdError {
        match self {
            Refusal::Unknown => {
                let name = &args[1];
                CmdError::msg(format!(
                    "ERR unknown subcommand '{}'. Try {} HELP.",
                    String::from_utf8_lossy(&name[..name.len().min(128)]),
                    spec.name.to_ascii_uppercase()
                ))
            }
            Refusal::Arity(sub) => CmdError::Arity(sub.name.to_string()),
        }
    }

    /// The name commandstats counts the refusal under: none for an unknown subcommand.
    pub fn stats_name(self) -> Option<&'static str> {
        match self {
            Refusal::Unknown => None,
            Refusal::Arity(sub) => Some(sub.name),
        }
    }
}

/// Redis's `addReplySubcommandSyntaxError`, which some handlers answer wrong options of a
/// subcommand whose arity the table lets through (`FUNCTION FLUSH a b`, `SLOWLOG GET 1 x`).
pub fn syntax_error(args: &[Vec<u8>]) -> CmdError {
    let sub = &args[1];
    CmdError::msg(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        String::from_utf8_lossy(&sub[..sub.len().min(128)]),
        String::from_utf8_lossy(&args[0]).to_ascii_uppercase()
    ))
}

/// Redis's checks of a container's subcommand, done before its handler runs (so every
/// container answers a subcommand's wrong arity with Redis's text, from the table above).
/// Anything else (not a container, the container alone) passes.
pub fn check(spec: &CommandSpec, args: &[Vec<u8>]) -> Result<(), Refusal> {
    let Some(name) = args.get(1) else {
        return Ok(());
    };
    if !is_container(spec) {
        return Ok(());
    }
    let sub = find(spec, name).ok_or(Refusal::Unknown)?;
    if !crate::commands::arity_accepts(sub.arity, args.len()) {
        return Err(Refusal::Arity(sub));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<Vec<u8>> {
        v.iter().map(|a| a.as_bytes().to_vec()).collect()
    }

    #[test]
    fn the_container_flag_marks_exactly_the_commands_with_subcommands() {
        for spec in crate::commands::all() {
            assert_eq!(
                is_container(spec),
                by_container().contains_key(spec.name),
                "{}",
                spec.name
            );
            // ACL names permissions per subcommand of the same commands.
            assert_eq!(
                is_container(spec),
                crate::acl::categories::is_container(spec.name),
                "{}",
                spec.name
            );
        }
    }

    #[test]
    fn names_by_subcommand() {
        let script = crate::commands::lookup(b"script").unwrap();
        assert_eq!(
            stats_name(script, &args(&["SCRIPT", "KILL"])),
            Some("script|kill")
        );
        assert_eq!(
            stats_name(script, &args(&["script", "Flush", "x"])),
            Some("script|flush")
        );
        assert_eq!(stats_name(script, &args(&["SCRIPT", "KILLX"])), None);
        assert_eq!(stats_name(script, &args(&["SCRIPT"])), Some("script"));
        let get = crate::commands::lookup(b"get").unwrap();
        assert_eq!(stats_name(get, &args(&["GET", "kill"])), Some("get"));
        let kill = find(script, b"kill").unwrap();
        assert_eq!((kill.arity, kill.allow_busy), (2, true));
        assert!(!find(script, b"load").unwrap().allow_busy);
    }

    #[test]
    fn checks_arity_and_existence() {
        let client = crate::commands::lookup(b"client").unwrap();
        let text = |a: &[&str]| {
            check(client, &args(a))
                .err()
                .map(|r| r.error(client, &args(a)).text().into_owned())
        };
        assert_eq!(text(&["CLIENT", "GETNAME"]), None);
        assert_eq!(text(&["CLIENT"]), None);
        assert_eq!(
            text(&["client", "GetName", "x"]).as_deref(),
            Some("ERR wrong number of arguments for 'client|getname' command")
        );
        assert_eq!(
            text(&["CLIENT", "KILL"]).as_deref(),
            Some("ERR wrong number of arguments for 'client|kill' command")
        );
        assert_eq!(text(&["CLIENT", "KILL", "a", "b", "c"]), None);
        assert_eq!(
            text(&["client", "Foo", "x"]).as_deref(),
            Some("ERR unknown subcommand 'Foo'. Try CLIENT HELP.")
        );
        assert_eq!(
            check(client, &args(&["CLIENT", "SETNAME"]))
                .unwrap_err()
                .stats_name(),
            Some("client|setname")
        );
        assert_eq!(
            check(client, &args(&["CLIENT", "NOPE"]))
                .unwrap_err()
                .stats_name(),
            None
        );
        let get = crate::commands::lookup(b"get").unwrap();
        assert!(check(get, &args(&["GET", "kill"])).is_ok());
    }
}
