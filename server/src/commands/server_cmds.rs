//! Server commands: INFO CONFIG FLUSHDB FLUSHALL TIME COMMAND DEBUG SHUTDOWN SAVE BGSAVE LASTSAVE.

use super::flags::*;
use super::{cmd, Action, BarrierThen, CommandSpec, Ctx, KeySpec};
use super::{CmdError, CmdResult};

const NONE: KeySpec = KeySpec::None;

pub const COMMANDS: &[CommandSpec] = &[
    cmd("info", -1, VIEW_STATS, NONE, info),
    cmd("config", -2, ADMIN | CONTAINER, NONE, config),
    cmd("flushdb", -1, WRITE, NONE, flushdb),
    cmd("flushall", -1, WRITE, NONE, flushall),
    cmd("time", 1, FAST, NONE, time),
    cmd("command", -1, CONTAINER, NONE, command),
    cmd("debug", -2, ADMIN, NONE, debug),
    cmd("shutdown", -1, ADMIN | NO_MULTI, NONE, shutdown),
    cmd("save", 1, ADMIN | NO_MULTI, NONE, save),
    cmd("bgsave", -1, ADMIN, NONE, bgsave),
    cmd("lastsave", 1, FAST, NONE, lastsave),
];

fn info(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let sections: Vec<String> = args[1..]
        .iter()
        .map(|a| String::from_utf8_lossy(a).to_lowercase())
        .collect();
    let text = super::info::render(ctx, &sections);
    ctx.out.verbatim(&text);
    Ok(())
}

fn config(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let sub = args[1].to_ascii_lowercase();
    match sub.as_slice() {
        b"get" if args.len() >= 3 => {
            let mut pairs: Vec<(&'static str, String)> = Vec::new();
            for pat in &args[2..] {
                for (k, v) in ctx.shared.config.matching(pat) {
                    if !pairs.iter().any(|(pk, _)| *pk == k) {
                        pairs.push((k, v.to_string()));
                    }
                }
            }
            ctx.out.map(pairs.len());
            for (k, v) in pairs {
                ctx.out.bulk(k.as_bytes());
                ctx.out.bulk(v.as_bytes());
            }
        }
        b"set" if args.len() >= 4 && args.len().is_multiple_of(2) => {
            let mut next = ctx.shared.config.clone();
            for pair in args[2..].chunks(2) {
                let name = String::from_utf8_lossy(&pair[0]).to_string();
                let value = String::from_utf8_lossy(&pair[1]).to_string();
                if let Err(e) = next.set(&name, &value, true) {
                    return Err(CmdError::msg(format!("ERR {e}")));
                }
            }
            ctx.shared.config = next;
            crate::shared::apply_config(ctx.engine, ctx.shared);
            ctx.out.ok();
        }
        // An odd number of arguments: a name without its value.
        b"set" => return Err(CmdError::Syntax),
        b"resetstat" if args.len() == 2 => {
            ctx.shared.command_stats.clear();
            ctx.shared.error_stats.clear();
            ctx.shared.total_error_replies = 0;
            ctx.shared.total_commands = 0;
            ctx.shared.total_connections = 0;
            ctx.engine.reset_stats();
            ctx.out.ok();
        }
        b"rewrite" if args.len() == 2 => match ctx.shared.config.rewrite() {
            Ok(()) => ctx.out.ok(),
            Err(e) => return Err(CmdError::msg(format!("ERR {e}"))),
        },
        _ => {
            return Err(CmdError::msg(format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try CONFIG HELP.",
                String::from_utf8_lossy(&args[1])
            )))
        }
    }
    Ok(())
}

/// Checks FLUSHDB/FLUSHALL's optional SYNC|ASYNC.
fn flush_args(args: &[Vec<u8>]) -> CmdResult {
    match args.len() {
        1 => Ok(()),
        2 if args[1].eq_ignore_ascii_case(b"sync") || args[1].eq_ignore_ascii_case(b"async") => {
            Ok(())
        }
        _ => Err(CmdError::Syntax),
    }
}

fn flushdb(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    flush_args(args)?;
    // Flushed keys do not expire later (keyspace notifications).
    ctx.shared.expiry_watch = Default::default();
    ctx.action = Action::Clear(Some(ctx.client.db));
    Ok(())
}

fn flushall(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    flush_args(args)?;
    ctx.shared.expiry_watch = Default::default();
    ctx.action = Action::Clear(None);
    Ok(())
}

fn time(ctx: &mut Ctx, _args: &[Vec<u8>]) -> CmdResult {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    ctx.out.array(2);
    ctx.out.bulk(now.as_secs().to_string().as_bytes());
    ctx.out.bulk(now.subsec_micros().to_string().as_bytes());
    Ok(())
}

fn flag_names(c: &super::CommandSpec) -> Vec<&'static str> {
    let mut v = Vec::new();
    for (bit, name) in [
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NO_AUTH, "no_auth"),
        (FAST, "fast"),
    ] {
        if c.has(bit) {
            v.push(name);
        }
    }
    v
}

/// ACL categories, in Redis's order (the bit order of its categories).
pub(crate) fn acl_categories(c: &super::CommandSpec) -> Vec<&'static str> {
    const ORDER: &[&str] = &[
        "@keyspace",
        "@read",
        "@write",
        "@set",
        "@sortedset",
        "@list",
        "@hash",
        "@string",
        "@bitmap",
        "@hyperloglog",
        "@geo",
        "@stream",
        "@pubsub",
        "@admin",
        "@fast",
        "@slow",
        "@blocking",
        "@dangerous",
        "@connection",
        "@transaction",
        "@scripting",
    ];
    let mut v = Vec::new();
    if c.has(WRITE) {
        v.push("@write");
    } else if c.has(READONLY) {
        v.push("@read");
    }
    if c.has(ADMIN) {
        v.extend(["@admin", "@dangerous"]);
    }
    if let Some(t) = super::type_category(c) {
        v.push(t);
    }
    if c.name.starts_with("sort") {
        v.extend(["@set", "@sortedset", "@list"]);
    }
    match c.name {
        "sort" | "sort_ro" | "info" | "keys" | "monitor" | "restore" | "restore-asking" => {
            v.push("@dangerous")
        }
        "flushall" | "flushdb" | "swapdb" => v.extend(["@keyspace", "@dangerous"]),
        // Categories Redis gives these beyond their flags (ACL rules and COMMAND INFO).
        "lastsave" | "role" => v.extend(["@admin", "@dangerous"]),
        "command" => v.push("@connection"),
        _ => {}
    }
    v.push(if c.has(FAST) { "@fast" } else { "@slow" });
    if matches!(
        c.name,
        "blpop" | "brpop" | "blmove" | "brpoplpush" | "blmpop" | "bzmpop" | "bzpopmin" | "bzpopmax"
    ) {
        v.push("@blocking");
    }
    v.sort_by_key(|cat| ORDER.iter().position(|o| o == cat));
    v.dedup();
    v
}

fn command_info(ctx: &mut Ctx, c: &super::CommandSpec) {
    let (first, last, step) = match c.keys {
        KeySpec::None => (0, 0, 0),
        KeySpec::Range(f, l, s) => (f as i64, l as i64, s as i64),
        KeySpec::Numkeys(_) | KeySpec::Streams => (0, 0, 0),
        KeySpec::DestNumkeys | KeySpec::SortStore | KeySpec::GeoStore(_) => (1, 1, 1),
    };
    ctx.out.array(10);
    ctx.out.bulk(c.name.as_bytes());
    ctx.out.int(c.arity as i64);
    let mut flags = flag_names(c);
    // Key positions a client must compute from the arguments (numkeys, STORE): cluster
    // clients route these with COMMAND GETKEYS.
    if matches!(
        c.keys,
        KeySpec::Numkeys(_)
            | KeySpec::DestNumkeys
            | KeySpec::SortStore
            | KeySpec::GeoStore(_)
            | KeySpec::Streams
    ) {
        flags.push("movablekeys");
    }
    ctx.out.set(flags.len());
    for f in flags {
        ctx.out.simple(f);
    }
    ctx.out.int(first);
    ctx.out.int(last);
    ctx.out.int(step);
    let categories = acl_categories(c);
    ctx.out.set(categories.len());
    for cat in categories {
        ctx.out.simple(cat);
    }
    ctx.out.array(0);
    super::keyspecs::write_key_specs(ctx.out, c);
    ctx.out.array(0);
}

fn command(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let all = super::all();
    let sub = args.get(1).map(|a| a.to_ascii_lowercase());
    match sub.as_deref() {
        None => {
            ctx.out.array(all.len());
            for c in all {
                command_info(ctx, c);
            }
        }
        Some(b"count") => ctx.out.int(all.len() as i64),
        // COMMAND INFO alone: every command, as COMMAND (Redis 7.0).
        Some(b"info") if args.len() == 2 => {
            ctx.out.array(all.len());
            for c in all {
                command_info(ctx, c);
            }
        }
        Some(b"info") => {
            ctx.out.array(args.len() - 2);
            for name in &args[2..] {
                match super::lookup(name) {
                    Some(c) => command_info(ctx, c),
                    None => ctx.out.null_array(),
                }
            }
        }
        Some(b"docs") => {
            let cmds: Vec<&super::CommandSpec> = if args.len() == 2 {
                all.to_vec()
            } else {
                // Unknown names are left out, as Redis does.
                args[2..].iter().filter_map(|n| super::lookup(n)).collect()
            };
            super::keyspecs::write_docs(ctx.out, &cmds);
        }
        // Its only option is FILTERBY MODULE|ACLCAT|PATTERN <arg>.
        Some(b"list")
            if args.len() != 2
                && !(args.len() == 5
                    && args[2].eq_ignore_ascii_case(b"filterby")
                    && [&b"module"[..], b"aclcat", b"pattern"]
                        .iter()
                        .any(|t| args[3].eq_ignore_ascii_case(t))) =>
        {
            return Err(CmdError::Syntax)
        }
        Some(b"list") => {
            let names = command_list(&all, args.get(3).zip(args.get(4)));
            ctx.out.array(names.len());
            for name in names {
                ctx.out.bulk(name.as_bytes());
            }
        }
        Some(b"getkeys") if args.len() >= 3 => match super::lookup(&args[2]) {
            Some(c) => {
                if !matches!(c.keys, KeySpec::None)
                    && !super::arity_accepts(c.arity, args.len() - 2)
                {
                    return Err(CmdError::msg(
                        "ERR Invalid number of arguments specified for command",
                    ));
                }
                let keys = c.key_args(&args[2..]);
                if keys.is_empty() {
                    return Err(CmdError::msg("ERR The command has no key arguments"));
                }
                ctx.out.array(keys.len());
                for k in keys {
                    ctx.out.bulk(k);
                }
            }
            None => return Err(CmdError::msg("ERR Invalid command specified")),
        },
        _ => {
            return Err(CmdError::msg(format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try COMMAND HELP.",
                String::from_utf8_lossy(&args[1])
            )))
        }
    }
    Ok(())
}

fn debug(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let sub = args[1].to_ascii_lowercase();
    match sub.as_slice() {
        b"sleep" if args.len() == 3 => {
            let secs = crate::util::parse_f64(&args[2]).unwrap_or(0.0).max(0.0);
            ctx.action = Action::Sleep(std::time::Duration::from_secs_f64(secs));
            ctx.out.ok();
        }
        b"set-active-expire" if args.len() == 3 => ctx.out.ok(),
        b"jmap" => ctx.out.ok(),
        _ => {
            return Err(CmdError::msg(format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
                String::from_utf8_lossy(&args[1])
            )))
        }
    }
    Ok(())
}

fn shutdown(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    for a in &args[1..] {
        match a.to_ascii_lowercase().as_slice() {
            b"save" | b"nosave" | b"now" | b"force" => {}
            _ => return Err(CmdError::Syntax),
        }
    }
    // NOSAVE is not honoured: the disk is the database, so dirty data is always written.
    ctx.action = Action::Barrier(BarrierThen::Shutdown);
    Ok(())
}

fn save(ctx: &mut Ctx, _args: &[Vec<u8>]) -> CmdResult {
    ctx.action = Action::Barrier(BarrierThen::Save { reply: true });
    Ok(())
}

fn bgsave(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    if args.len() > 2 || (args.len() == 2 && !args[1].eq_ignore_ascii_case(b"schedule")) {
        return Err(CmdError::Syntax);
    }
    if ctx.shared.bgsave_in_progress {
        return Err(CmdError::msg("ERR Background save already in progress"));
    }
    ctx.shared.bgsave_in_progress = true;
    // Inside EXEC the point in time is taken when the transaction ends, as Redis schedules it.
    ctx.out.simple(if ctx.client.in_exec {
        "Background saving scheduled"
    } else {
        "Background saving started"
    });
    ctx.action = Action::Barrier(BarrierThen::Save { reply: false });
    Ok(())
}

fn lastsave(ctx: &mut Ctx, _args: &[Vec<u8>]) -> CmdResult {
    ctx.out.int(ctx.shared.last_save_unix);
    Ok(())
}

/// COMMAND LIST's names, as Redis 7.0 lists them: every command and every container's
/// subcommand (`config|get`), kept by FILTERBY `filter` = (MODULE | ACLCAT | PATTERN, arg):
/// no command comes from a module; ACLCAT keeps those in the category (a subcommand by its own
/// categories); PATTERN matches the full name without regard to case.
fn command_list(
    all: &[&'static super::CommandSpec],
    filter: Option<(&Vec<u8>, &Vec<u8>)>,
) -> Vec<&'static str> {
    let mut names = Vec::new();
    for &c in all {
        names.push((c, None, c.name));
        for sub in crate::subcommands::of(c) {
            let short = sub.name.split_once('|').map_or(sub.name, |(_, s)| s);
            names.push((c, Some(short), sub.name));
        }
    }
    let Some((kind, arg)) = filter else {
        return names.into_iter().map(|(_, _, n)| n).collect();
    };
    let kind = kind.to_ascii_lowercase();
    if kind == b"module" {
        return Vec::new();
    }
    let category = format!("@{}", String::from_utf8_lossy(arg).to_ascii_lowercase());
    names
        .into_iter()
        .filter(|(c, sub, full)| match kind.as_slice() {
            b"aclcat" => crate::acl::categories::listed(c, sub.map(str::as_bytes))
                .contains(&category.as_str()),
            _ => crate::glob::glob_match(arg, full.as_bytes(), true),
        })
        .map(|(_, _, n)| n)
        .collect()
}
