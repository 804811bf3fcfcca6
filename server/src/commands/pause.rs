//! CLIENT PAUSE / CLIENT UNPAUSE: while a pause is on, the server loop holds the commands it
//! covers (every command with ALL, writes with WRITE) as pending, and runs them when the pause
//! ends (timeout or UNPAUSE), in order, as Redis does.

use super::{CmdError, CmdResult, Ctx};
use crate::client::ClientState;
use crate::shared::Shared;
use std::time::{Duration, Instant};

/// An active pause: until when, and whether it covers every command (ALL) or writes (WRITE).
#[derive(Debug, Clone, Copy)]
pub struct Pause {
    until: Instant,
    all: bool,
}

/// CLIENT PAUSE timeout [WRITE|ALL].
pub fn pause(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let timeout = match crate::util::parse_i64(&args[2]) {
        None => {
            return Err(CmdError::msg(
                "ERR timeout is not an integer or out of range",
            ))
        }
        Some(t) if t < 0 => return Err(CmdError::msg("ERR timeout is negative")),
        Some(t) => t as u64,
    };
    let all = match args.get(3).map(|a| a.to_ascii_lowercase()) {
        None => true,
        Some(m) if m == b"all" => true,
        Some(m) if m == b"write" => false,
        Some(_) => return Err(CmdError::msg("ERR CLIENT PAUSE mode must be WRITE or ALL")),
    };
    ctx.shared.pause = Some(Pause {
        until: Instant::now() + Duration::from_millis(timeout),
        all,
    });
    ctx.out.ok();
    Ok(())
}

/// CLIENT UNPAUSE.
pub fn unpause(ctx: &mut Ctx) {
    if ctx.shared.pause.take().is_some() {
        ctx.shared.pause_released = true;
    }
    ctx.out.ok();
}

/// Ends a pause whose time is up (the server loop then runs what it held).
pub fn tick(shared: &mut Shared) {
    if shared.pause.is_some_and(|p| Instant::now() >= p.until) {
        shared.pause = None;
        shared.pause_released = true;
    }
}

/// The commands besides scripts that Redis 7.0 flags `may-replicate` without `write`: they may
/// add to the replication stream, so a WRITE pause holds them and a read-only script may not
/// call them.
pub fn may_replicate(name: &[u8]) -> bool {
    [&b"publish"[..], b"spublish", b"pfcount"]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n))
}

/// The `no-writes` flag an EVAL body declares on its shebang line (`#!lua flags=no-writes`);
/// `None` without a shebang.
fn shebang_no_writes(body: &[u8]) -> Option<bool> {
    let first = body.split(|&b| b == b'\n').next().unwrap_or_default();
    first.starts_with(b"#!").then(|| {
        first
            .split(|&b| b == b' ')
            .filter_map(|w| w.strip_prefix(b"flags="))
            .any(|f| f.split(|&b| b == b',').any(|x| x == b"no-writes"))
    })
}

/// Whether a script request may write, as Redis 7.0 judges it: a script or function that
/// declares its flags writes unless it declares `no-writes` (FCALL_RO and EVAL_RO included);
/// one that declares none (no shebang), or is not there, takes its command's flags: EVAL,
/// EVALSHA and FCALL may replicate, their `_RO` forms do not. `None`: not a script command.
fn script_writes(a: &[Vec<u8>], declared: &impl Fn(&[Vec<u8>]) -> Option<bool>) -> Option<bool> {
    let name = a[0].to_ascii_lowercase();
    let flags = match name.as_slice() {
        b"eval" | b"eval_ro" => a.get(1).and_then(|body| shebang_no_writes(body)),
        b"evalsha" | b"evalsha_ro" | b"fcall" | b"fcall_ro" => declared(a),
        _ => return None,
    };
    Some(match flags {
        Some(no_writes) => !no_writes,
        None => !name.ends_with(b"_ro"),
    })
}

/// Whether the request must wait for the pause to end. `declared` gives the `no-writes` flag
/// an EVALSHA(_RO) or FCALL(_RO) request's script or function declares (see
/// `Scripting::declared_no_writes`).
pub fn holds(
    shared: &mut Shared,
    state: &ClientState,
    args: &[Vec<u8>],
    declared: impl Fn(&[Vec<u8>]) -> Option<bool>,
) -> bool {
    tick(shared);
    let Some(p) = shared.pause else {
        return false;
    };
    if p.all {
        return true;
    }
    let writes = |a: &[Vec<u8>]| {
        script_writes(a, &declared).unwrap_or_else(|| {
            may_replicate(&a[0]) || super::lookup(&a[0]).is_some_and(|s| s.has(super::flags::WRITE))
        })
    };
    if args[0].eq_ignore_ascii_case(b"exec") {
        return state
            .multi
            .as_ref()
            .is_some_and(|q| q.iter().any(|c| writes(c)));
    }
    writes(args)
}
