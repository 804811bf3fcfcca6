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

/// Whether an EVAL body declares `no-writes` on its shebang line (`#!lua flags=no-writes`):
/// only such a script runs during a WRITE pause, as in Redis. (EVALSHA and FCALL, whose flags
/// live in the script cache and the function libraries, are not held.)
fn no_writes(body: &[u8]) -> bool {
    let first = body.split(|&b| b == b'\n').next().unwrap_or_default();
    first.starts_with(b"#!")
        && first
            .split(|&b| b == b' ')
            .filter_map(|w| w.strip_prefix(b"flags="))
            .any(|f| f.split(|&b| b == b',').any(|x| x == b"no-writes"))
}

/// Whether the request must wait for the pause to end.
pub fn holds(shared: &mut Shared, state: &ClientState, args: &[Vec<u8>]) -> bool {
    tick(shared);
    let Some(p) = shared.pause else {
        return false;
    };
    if p.all {
        return true;
    }
    let writes = |a: &[Vec<u8>]| {
        may_replicate(&a[0])
            || a[0].eq_ignore_ascii_case(b"eval") && a.get(1).is_some_and(|s| !no_writes(s))
            || super::lookup(&a[0]).is_some_and(|s| s.has(super::flags::WRITE))
    };
    if args[0].eq_ignore_ascii_case(b"exec") {
        return state
            .multi
            .as_ref()
            .is_some_and(|q| q.iter().any(|c| writes(c)));
    }
    writes(args)
}
