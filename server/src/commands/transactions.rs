//! MULTI EXEC DISCARD WATCH UNWATCH. Queueing and EXEC itself are done by the server loop (it
//! owns the other clients' WATCH state and runs queued commands); these handlers cover the rest.

use super::flags::*;
use super::{cmd, CommandSpec, Ctx, KeySpec};
use super::{CmdError, CmdResult};

pub const COMMANDS: &[CommandSpec] = &[
    cmd("multi", 1, FAST | NO_QUEUE, KeySpec::None, multi),
    // EXEC is intercepted by the server loop; this handler only runs outside MULTI.
    cmd("exec", 1, NO_QUEUE, KeySpec::None, exec_without_multi),
    cmd("discard", 1, FAST | NO_QUEUE, KeySpec::None, discard),
    cmd(
        "watch",
        -2,
        FAST | NO_QUEUE | NO_MULTI | TRACK_TOUCHED,
        KeySpec::Range(1, -1, 1),
        watch,
    ),
    // Queued inside MULTI like any command, as in Redis (only MULTI, EXEC, DISCARD, WATCH,
    // QUIT and RESET are not).
    cmd("unwatch", 1, FAST, KeySpec::None, unwatch),
];

fn multi(ctx: &mut Ctx, _args: &[Vec<u8>]) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::msg("ERR MULTI calls can not be nested"));
    }
    ctx.client.multi = Some(Vec::new());
    ctx.client.multi_error = false;
    ctx.out.ok();
    Ok(())
}

fn exec_without_multi(_ctx: &mut Ctx, _args: &[Vec<u8>]) -> CmdResult {
    Err(CmdError::msg("ERR EXEC without MULTI"))
}

fn discard(ctx: &mut Ctx, _args: &[Vec<u8>]) -> CmdResult {
    if ctx.client.multi.take().is_none() {
        return Err(CmdError::msg("ERR DISCARD without MULTI"));
    }
    ctx.client.multi_error = false;
    ctx.client.watched.clear();
    ctx.client.watch_expires_at = None;
    ctx.client.watch_dirty = false;
    ctx.out.ok();
    Ok(())
}

fn watch(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let now = ctx.now_ms;
    if ctx.client.watched.is_empty() {
        ctx.client.watch_stale.clear();
    }
    for k in &args[1..] {
        let stale =
            ctx.db().is_resident(k) && !ctx.db().is_live(k) && ctx.db().peek_expire_at(k).is_some();
        if stale {
            ctx.client.watch_stale.push((ctx.client.db, k.clone()));
        }
        // Looked at without reclaiming: WATCH of an already expired key must not count as a
        // change of it, and only a key that expires after WATCH counts as touched at EXEC.
        let ttl = ctx.db().peek_expire_at(k).filter(|&t| t > now);
        if let Some(t) = ttl {
            let w = &mut ctx.client.watch_expires_at;
            *w = Some(w.map_or(t, |old| old.min(t)));
        }
        let entry = (ctx.client.db, k.clone());
        if !ctx.client.watched.contains(&entry) {
            ctx.client.watched.push(entry);
        }
    }
    ctx.out.ok();
    Ok(())
}

fn unwatch(ctx: &mut Ctx, _args: &[Vec<u8>]) -> CmdResult {
    ctx.client.watched.clear();
    ctx.client.watch_expires_at = None;
    ctx.client.watch_dirty = false;
    ctx.out.ok();
    Ok(())
}
