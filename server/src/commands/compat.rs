//! Commands kvtier answers the way a standalone Redis master without replicas, slow log or
//! latency events answers them: ROLE WAIT SLOWLOG LATENCY.

use super::flags::*;
use super::object::help;
use super::{cmd, CommandSpec, Ctx, KeySpec};
use super::{CmdError, CmdResult};
use crate::util::parse_i64;

const NONE: KeySpec = KeySpec::None;

pub const COMMANDS: &[CommandSpec] = &[
    cmd("role", 1, FAST, NONE, role),
    cmd("wait", 3, 0, NONE, wait),
    cmd("slowlog", -2, ADMIN | CONTAINER, NONE, slowlog),
    cmd("latency", -2, ADMIN | CONTAINER, NONE, latency),
];

fn role(ctx: &mut Ctx, _args: &[Vec<u8>]) -> CmdResult {
    ctx.out.array(3);
    ctx.out.bulk(b"master");
    ctx.out.int(0);
    ctx.out.array(0);
    Ok(())
}

/// WAIT numreplicas timeout: there are no replicas, so 0 at once.
fn wait(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    if parse_i64(&args[1]).is_none() {
        return Err(CmdError::NotInt);
    }
    match parse_i64(&args[2]) {
        None => {
            return Err(CmdError::msg(
                "ERR timeout is not an integer or out of range",
            ))
        }
        Some(t) if t < 0 => return Err(CmdError::msg("ERR timeout is negative")),
        Some(_) => ctx.out.int(0),
    }
    Ok(())
}

fn unknown(cmd: &str, sub: &[u8]) -> CmdError {
    CmdError::msg(format!(
        "ERR unknown subcommand '{}'. Try {cmd} HELP.",
        String::from_utf8_lossy(sub)
    ))
}

/// SLOWLOG: kvtier records no slow log entries (the `slowlog-*` settings are accepted).
fn slowlog(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    match (args[1].to_ascii_lowercase().as_slice(), args.len()) {
        (b"get", 2) => ctx.out.array(0),
        (b"get", 3) => match parse_i64(&args[2]) {
            Some(n) if n >= -1 => ctx.out.array(0),
            _ => {
                return Err(CmdError::msg(
                    "ERR count should be greater than or equal to -1",
                ))
            }
        },
        (b"len", 2) => ctx.out.int(0),
        (b"reset", 2) => ctx.out.ok(),
        (b"help", 2) => help(
            ctx,
            &[
                "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "GET [<count>]",
                "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
                "    Entries are made of:",
                "    id, timestamp, time in microseconds, arguments array, client IP and port,",
                "    client name",
                "LEN",
                "    Return the length of the slowlog.",
                "RESET",
                "    Reset the slowlog.",
                "HELP",
                "    Prints this help.",
            ],
        ),
        // SLOWLOG GET 1 x (arities are checked before the handler, subcommands.rs).
        _ => return Err(crate::subcommands::syntax_error(args)),
    }
    Ok(())
}

/// LATENCY: no latency events are recorded.
fn latency(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    match (args[1].to_ascii_lowercase().as_slice(), args.len()) {
        (b"latest", 2) | (b"history", 3) => ctx.out.array(0),
        (b"reset", _) => ctx.out.int(0),
        (b"doctor", 2) => ctx.out.verbatim(
            "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis \
             instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in \
             order to enable it. If we weren't in a deep space mission I'd suggest to take a look \
             at https://redis.io/topics/latency-monitor.\n",
        ),
        (b"graph", 3) => {
            return Err(CmdError::msg(format!(
                "ERR No samples available for event '{}'",
                String::from_utf8_lossy(&args[2])
            )))
        }
        (b"histogram", _) => ctx.out.map(0),
        _ => return Err(unknown("LATENCY", &args[1])),
    }
    Ok(())
}
