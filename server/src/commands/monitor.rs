//! MONITOR: clients in monitor mode receive every command the server runs, one status line
//! each, as Redis formats them (`+<secs>.<micros> [<db> <addr>] "arg" …`). The server loop
//! calls [`line`] after each command and delivers it to [`Shared::monitor_ids`].
//!
//! [`Shared::monitor_ids`]: crate::shared::Shared

use super::flags::*;
use super::CmdResult;
use super::{cmd, CommandSpec, Ctx, KeySpec};

// Queued inside MULTI as in Redis 7.0; EXEC then refuses it (below).
pub const COMMANDS: &[CommandSpec] = &[cmd("monitor", 1, ADMIN, KeySpec::None, monitor)];

fn monitor(ctx: &mut Ctx, _args: &[Vec<u8>]) -> CmdResult {
    if ctx.client.in_exec {
        // Redis's words: a client inside EXEC may not block, and MONITOR would.
        return Err(super::CmdError::Msg(
            "ERR MONITOR isn't allowed for DENY BLOCKING client".into(),
        ));
    }
    if !ctx.client.monitor {
        ctx.client.monitor = true;
        ctx.shared.monitor_ids.push(ctx.client.id);
    }
    ctx.out.ok();
    Ok(())
}

/// Leaves monitor mode (RESET).
pub fn stop(ctx: &mut Ctx) {
    if std::mem::take(&mut ctx.client.monitor) {
        let id = ctx.client.id;
        ctx.shared.monitor_ids.retain(|&m| m != id);
    }
}

/// Appends `a` quoted as Redis's sdscatrepr does.
fn repr(out: &mut String, a: &[u8]) {
    out.push('"');
    for &b in a {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            7 => out.push_str("\\a"),
            8 => out.push_str("\\b"),
            32..=126 => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
}

/// The monitor line of a command run by a client at `addr` on DB `db` (AUTH and HELLO's
/// credentials redacted, as Redis does).
pub fn line(db: u32, addr: &str, args: &[Vec<u8>]) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut out = format!("{}.{:06} [{db} {addr}]", now.as_secs(), now.subsec_micros());
    let redact_from = if args[0].eq_ignore_ascii_case(b"auth") {
        1
    } else if args[0].eq_ignore_ascii_case(b"hello") {
        args.iter()
            .position(|a| a.eq_ignore_ascii_case(b"auth"))
            .map_or(args.len(), |i| i + 1)
    } else {
        args.len()
    };
    for (i, a) in args.iter().enumerate() {
        out.push(' ');
        if i >= redact_from {
            out.push_str("\"(redacted)\"");
        } else {
            repr(&mut out, a);
        }
    }
    out
}
