//! SWAPDB: two DBs exchange their contents at once. The engine swaps which store namespace
//! each shows (no data moves, see kvtier_core::dbmap); the server then re-examines the clients
//! that depend on either DB (parked on cold keys, WATCHing, blocked), see `Server::swap_dbs`.

use super::args::{db_in_range, db_index};
use super::{Action, CmdError, CmdResult, Ctx};
use crate::util::parse_i64;

/// `SWAPDB index1 index2`.
pub fn swapdb(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let databases = ctx.engine.databases();
    // Both are parsed before either is checked against the number of DBs, as in Redis.
    let a = parse_i64(&args[1]).ok_or(CmdError::msg("ERR invalid first DB index"))?;
    let b = parse_i64(&args[2]).ok_or(CmdError::msg("ERR invalid second DB index"))?;
    let (a, b) = (db_in_range(a, databases)?, db_in_range(b, databases)?);
    ctx.out.ok();
    if a != b {
        ctx.action = Action::SwapDb(a, b);
    }
    Ok(())
}

/// The two DBs of a well-formed SWAPDB (for loading the keys it must judge first).
pub fn swapdb_args(args: &[Vec<u8>], databases: usize) -> Option<(u32, u32)> {
    let db = |a: &Vec<u8>| db_index(a, databases).ok();
    Some((db(args.get(1)?)?, db(args.get(2)?)?))
}
