//! SWAPDB: two DBs exchange their contents at once. The engine swaps which store namespace
//! each shows (no data moves, see kvtier_core::dbmap); the server then re-examines the clients
//! that depend on either DB (parked on cold keys, WATCHing, blocked), see `Server::swap_dbs`.

use super::{Action, Ctx};

/// `SWAPDB index1 index2`.
pub fn swapdb(ctx: &mut Ctx, args: &[Vec<u8>]) {
    let databases = ctx.engine.ks.databases() as i64;
    let Some(a) = crate::util::parse_i64(&args[1]) else {
        return ctx.out.error("ERR invalid first DB index");
    };
    let Some(b) = crate::util::parse_i64(&args[2]) else {
        return ctx.out.error("ERR invalid second DB index");
    };
    if !(0..databases).contains(&a) || !(0..databases).contains(&b) {
        return ctx.out.error("ERR DB index is out of range");
    }
    ctx.out.ok();
    if a != b {
        ctx.action = Action::SwapDb(a as u32, b as u32);
    }
}

/// The two DBs of a well-formed SWAPDB (for loading the keys it must judge first).
pub fn swapdb_args(args: &[Vec<u8>], databases: u32) -> Option<(u32, u32)> {
    let db = |a: &Vec<u8>| {
        crate::util::parse_i64(a)
            .and_then(|n| u32::try_from(n).ok())
            .filter(|&n| n < databases)
    };
    Some((db(args.get(1)?)?, db(args.get(2)?)?))
}
