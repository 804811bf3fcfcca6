//! SUBSCRIBE UNSUBSCRIBE PSUBSCRIBE PUNSUBSCRIBE PUBLISH PUBSUB, and the sharded SSUBSCRIBE
//! SUNSUBSCRIBE SPUBLISH (Redis 7.0 outside cluster mode: one shard, a channel namespace of its
//! own). Delivery to other clients is done by the server loop ([`Action::Publish`]).

use super::flags::*;
use super::{cmd, Action, CommandSpec, Ctx, KeySpec};
use super::{CmdError, CmdResult};
use crate::glob::glob_match;

const NONE: KeySpec = KeySpec::None;

pub const COMMANDS: &[CommandSpec] = &[
    cmd("subscribe", -2, PUBSUB, NONE, subscribe),
    cmd("unsubscribe", -1, PUBSUB, NONE, unsubscribe),
    cmd("psubscribe", -2, PUBSUB, NONE, psubscribe),
    cmd("punsubscribe", -1, PUBSUB, NONE, punsubscribe),
    cmd("publish", 3, FAST, NONE, publish),
    cmd("pubsub", -2, CONTAINER, NONE, pubsub),
    cmd("ssubscribe", -2, PUBSUB, NONE, ssubscribe),
    cmd("sunsubscribe", -1, PUBSUB, NONE, sunsubscribe),
    cmd("spublish", 3, FAST, NONE, spublish),
];

/// PUBSUB HELP, line for line as Redis 7.0 prints it (clients and tests compare it).
const PUBSUB_HELP: &[&str] = &[
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
];

/// A (un)subscribe confirmation. The count is the client's channels plus patterns, or its
/// shard channels for the shard kinds, as Redis 7.0 counts them.
fn sub_reply(ctx: &mut Ctx, kind: &str, name: Option<&[u8]>) {
    let count = if kind == "ssubscribe" || kind == "sunsubscribe" {
        ctx.client.shard_channels.len()
    } else {
        ctx.client.channels.len() + ctx.client.patterns.len()
    };
    ctx.out.push(3);
    ctx.out.bulk(kind.as_bytes());
    match name {
        Some(n) => ctx.out.bulk(n),
        None => ctx.out.null(),
    }
    ctx.out.int(count as i64);
}

fn subscribe_generic(ctx: &mut Ctx, args: &[Vec<u8>], pattern: bool) {
    let id = ctx.client.id;
    ctx.shared.pubsub.owners.insert(id, ctx.client.user.clone());
    for name in &args[1..] {
        let (set, reg) = if pattern {
            (&mut ctx.client.patterns, &mut ctx.shared.pubsub.patterns)
        } else {
            (&mut ctx.client.channels, &mut ctx.shared.pubsub.channels)
        };
        set.insert(name.clone());
        reg.entry(name.clone()).or_default().insert(id);
        sub_reply(
            ctx,
            if pattern { "psubscribe" } else { "subscribe" },
            Some(name),
        );
    }
}

fn unsubscribe_generic(ctx: &mut Ctx, args: &[Vec<u8>], pattern: bool) {
    let kind = if pattern {
        "punsubscribe"
    } else {
        "unsubscribe"
    };
    let names: Vec<Vec<u8>> = if args.len() > 1 {
        args[1..].to_vec()
    } else if pattern {
        ctx.client.patterns.iter().cloned().collect()
    } else {
        ctx.client.channels.iter().cloned().collect()
    };
    if names.is_empty() {
        return sub_reply(ctx, kind, None);
    }
    let id = ctx.client.id;
    for name in names {
        if pattern {
            ctx.client.patterns.remove(&name);
            ctx.shared
                .pubsub
                .forget(id, &[], std::slice::from_ref(&name));
        } else {
            ctx.client.channels.remove(&name);
            ctx.shared
                .pubsub
                .forget(id, std::slice::from_ref(&name), &[]);
        }
        sub_reply(ctx, kind, Some(&name));
    }
}

fn subscribe(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    subscribe_generic(ctx, args, false);
    Ok(())
}
fn psubscribe(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    subscribe_generic(ctx, args, true);
    Ok(())
}
fn unsubscribe(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    unsubscribe_generic(ctx, args, false);
    Ok(())
}
fn punsubscribe(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    unsubscribe_generic(ctx, args, true);
    Ok(())
}

fn publish(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    ctx.action = Action::Publish {
        channel: args[1].clone(),
        message: args[2].clone(),
        shard: false,
    };
    Ok(())
}

fn ssubscribe(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    // Inside EXEC the client expects one reply per command, so (unlike SUBSCRIBE) Redis 7.0
    // refuses it there.
    if ctx.client.in_exec {
        return Err(CmdError::msg(
            "ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client",
        ));
    }
    let id = ctx.client.id;
    ctx.shared.pubsub.owners.insert(id, ctx.client.user.clone());
    for name in &args[1..] {
        ctx.client.shard_channels.insert(name.clone());
        ctx.shared
            .pubsub
            .shard_channels
            .entry(name.clone())
            .or_default()
            .insert(id);
        sub_reply(ctx, "ssubscribe", Some(name));
    }
    Ok(())
}

fn sunsubscribe(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let names: Vec<Vec<u8>> = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        ctx.client.shard_channels.iter().cloned().collect()
    };
    if names.is_empty() {
        sub_reply(ctx, "sunsubscribe", None);
        return Ok(());
    }
    let id = ctx.client.id;
    for name in names {
        ctx.client.shard_channels.remove(&name);
        ctx.shared
            .pubsub
            .forget_shard(id, std::slice::from_ref(&name));
        sub_reply(ctx, "sunsubscribe", Some(&name));
    }
    Ok(())
}

fn spublish(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    ctx.action = Action::Publish {
        channel: args[1].clone(),
        message: args[2].clone(),
        shard: true,
    };
    Ok(())
}

fn pubsub(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let sub = args[1].to_ascii_lowercase();
    match (sub.as_slice(), args.len()) {
        (b"channels", 2 | 3) => {
            let mut names: Vec<&Vec<u8>> = ctx
                .shared
                .pubsub
                .channels
                .keys()
                .filter(|c| args.get(2).is_none_or(|p| glob_match(p, c, false)))
                .collect();
            names.sort();
            let names: Vec<Vec<u8>> = names.into_iter().cloned().collect();
            ctx.out.array(names.len());
            for n in &names {
                ctx.out.bulk(n);
            }
        }
        // A flat array even in RESP3, as Redis 7.0 replies.
        (b"numsub", _) => {
            ctx.out.array((args.len() - 2) * 2);
            for c in &args[2..] {
                let n = ctx.shared.pubsub.channels.get(c).map_or(0, |s| s.len());
                ctx.out.bulk(c);
                ctx.out.int(n as i64);
            }
        }
        (b"shardchannels", 2 | 3) => {
            let mut names: Vec<Vec<u8>> = ctx
                .shared
                .pubsub
                .shard_channels
                .keys()
                .filter(|c| args.get(2).is_none_or(|p| glob_match(p, c, false)))
                .cloned()
                .collect();
            names.sort();
            ctx.out.array(names.len());
            for n in &names {
                ctx.out.bulk(n);
            }
        }
        // Also a flat array in RESP3.
        (b"shardnumsub", _) => {
            ctx.out.array((args.len() - 2) * 2);
            for c in &args[2..] {
                let n = ctx
                    .shared
                    .pubsub
                    .shard_channels
                    .get(c)
                    .map_or(0, |s| s.len());
                ctx.out.bulk(c);
                ctx.out.int(n as i64);
            }
        }
        (b"help", 2) => super::object::help(ctx, PUBSUB_HELP),
        (b"numpat", 2) => {
            let n = ctx.shared.pubsub.patterns.len();
            ctx.out.int(n as i64)
        }
        // Fixed-arity subcommands fail Redis's command-table arity check.
        (b"help" | b"numpat", _) => {
            return Err(CmdError::msg(format!(
                "ERR wrong number of arguments for 'pubsub|{}' command",
                String::from_utf8_lossy(&sub)
            )))
        }
        (b"channels" | b"shardchannels", _) => {
            return Err(CmdError::msg(format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
                String::from_utf8_lossy(&args[1])
            )))
        }
        // Redis shows at most 128 bytes of an unknown name.
        _ => {
            return Err(CmdError::msg(format!(
                "ERR unknown subcommand '{}'. Try PUBSUB HELP.",
                String::from_utf8_lossy(&args[1][..args[1].len().min(128)])
            )))
        }
    }
    Ok(())
}
