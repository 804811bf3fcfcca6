//! HyperLogLog commands: PFADD, PFCOUNT, PFMERGE, PFDEBUG, PFSELFTEST. The value is a plain
//! string in Redis's HLL byte layout (see `crate::hll`).

use super::flags::*;
use super::notify::{class, notify, notify_new};
use super::typed::Str;
use super::{cmd, CommandSpec, Ctx, KeySpec, ALL_KEYS, KEY1};
use super::{CmdError, CmdResult, TypedDb};
use crate::hll;
use crate::value::Value;

pub const COMMANDS: &[CommandSpec] = &[
    cmd("pfadd", -2, WRITE | DENYOOM | FAST, KEY1, pfadd),
    cmd("pfcount", -2, READONLY, ALL_KEYS, pfcount),
    cmd("pfmerge", -2, WRITE | DENYOOM, ALL_KEYS, pfmerge),
    cmd(
        "pfdebug",
        3,
        WRITE | DENYOOM | ADMIN,
        KeySpec::Range(2, 2, 1),
        pfdebug,
    ),
    cmd("pfselftest", 1, ADMIN, KeySpec::None, pfselftest),
];

const ERR_NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";
const ERR_CORRUPT: &str = "INVALIDOBJ Corrupted HLL object detected";

/// What a key holds, as the HLL commands see it.
enum Hll {
    Missing,
    Valid,
}

/// Checks `key` as Redis does before any HLL command; `Err(())` after replying the error
/// (wrong type, or a string that is not an HLL).
fn check(ctx: &mut Ctx, key: &[u8]) -> Result<Hll, CmdError> {
    match ctx.db().read::<Str>(key)? {
        None => Ok(Hll::Missing),
        Some(s) if hll::looks_valid(s) => Ok(Hll::Valid),
        Some(_) => Err(CmdError::msg(ERR_NOT_HLL)),
    }
}

/// The bytes of a key already checked to be an HLL.
fn bytes_of(ctx: &mut Ctx, key: &[u8]) -> Vec<u8> {
    match ctx.db().get(key) {
        Some(Value::Str(s)) => s.to_vec(),
        _ => unreachable!("checked to be an HLL"),
    }
}

fn sparse_max(ctx: &Ctx) -> usize {
    ctx.shared.config.settings().hll_sparse_max_bytes as usize
}

/// Replaces the bytes of a key, keeping its TTL.
fn store(ctx: &mut Ctx, key: &[u8], s: Vec<u8>) {
    if let Some(v) = ctx.db().get_mut(key) {
        *v = Value::Str(s.into());
    }
}

fn pfadd(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let key = &args[1];
    let state = check(ctx, key)?;
    let max = sparse_max(ctx);
    let elems = args[2..].iter().map(Vec::as_slice);
    let created = matches!(state, Hll::Missing);
    if created {
        let mut s = hll::new_sparse();
        for e in elems {
            // A new value is well formed: adding to it cannot fail.
            let _ = hll::add(&mut s, e, max);
        }
        hll::invalidate(&mut s);
        ctx.db().insert(key, Value::Str(s.into()));
        notify_new(ctx, false, key);
        notify(ctx, class::STRING, "pfadd", key);
        ctx.out.int(1);
        return Ok(());
    }
    // Read-only first: a PFADD that raises no register does not rewrite the value.
    if let Ok(false) = read(ctx, key, |s| hll::would_change(s, elems.clone())) {
        ctx.out.int(0);
        return Ok(());
    }
    let mut db = ctx.db();
    let Some(Value::Str(held)) = db.get_mut(key) else {
        unreachable!("checked to be an HLL")
    };
    // Worked on as a vector (an HLL is never short enough to be inline, so no copy) and put
    // back whatever happens.
    let mut hll_bytes = std::mem::take(held).into_vec();
    let s = &mut hll_bytes;
    let mut updated = false;
    let mut corrupt = false;
    for e in elems {
        match hll::add(s, e, max) {
            Ok(changed) => updated |= changed,
            Err(hll::Corrupt) => {
                corrupt = true;
                break;
            }
        }
    }
    // (A corrupt HLL's cached cardinality is left alone, as Redis leaves it.)
    if updated && !corrupt {
        hll::invalidate(s);
    }
    // As in Redis, registers raised before a corrupt part was met stay raised.
    if let Some(Value::Str(held)) = ctx.db().get_mut(key) {
        *held = hll_bytes.into();
    }
    if corrupt {
        return Err(CmdError::msg(ERR_CORRUPT));
    }
    if updated {
        notify(ctx, class::STRING, "pfadd", key);
    }
    ctx.out.int(updated as i64);
    Ok(())
}

/// Runs `f` on the bytes of a key already checked to be an HLL, without copying them.
fn read<R>(ctx: &mut Ctx, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
    match ctx.db().get(key) {
        Some(Value::Str(s)) => f(s),
        _ => unreachable!("checked to be an HLL"),
    }
}

fn pfcount(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    if args.len() > 2 {
        // A union: registers merged into a scratch array; the keys are not changed.
        let mut regs = vec![0u8; hll::REGISTERS];
        for key in &args[1..] {
            let state = check(ctx, key)?;
            if let Hll::Valid = state {
                if read(ctx, key, |s| hll::merge_into(&mut regs, s)).is_err() {
                    return Err(CmdError::msg(ERR_CORRUPT));
                }
            }
        }
        let n = hll::count_registers(&regs);
        ctx.out.int(n as i64);
        return Ok(());
    }
    let key = &args[1];
    let state = check(ctx, key)?;
    if let Hll::Missing = state {
        ctx.out.int(0);
        return Ok(());
    }
    let card = match read(ctx, key, |s| hll::cached(s).ok_or_else(|| hll::count(s))) {
        Ok(cached) => {
            ctx.out.int(cached as i64);
            return Ok(());
        }
        Err(Ok(card)) => card,
        Err(Err(hll::Corrupt)) => return Err(CmdError::msg(ERR_CORRUPT)),
    };
    // The estimate is cached in the header, which changes the value (as in Redis).
    if let Some(Value::Str(s)) = ctx.db().get_mut(key) {
        hll::set_cached(s, card);
    }
    ctx.out.int(card as i64);
    Ok(())
}

fn pfmerge(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let mut regs = vec![0u8; hll::REGISTERS];
    let mut any_dense = false;
    for key in &args[1..] {
        let state = check(ctx, key)?;
        if let Hll::Valid = state {
            let merged = read(ctx, key, |s| {
                any_dense |= !hll::is_sparse(s);
                hll::merge_into(&mut regs, s)
            });
            if merged.is_err() {
                return Err(CmdError::msg(ERR_CORRUPT));
            }
        }
    }
    let dest = &args[1];
    let existed = ctx.db().contains(dest);
    let mut s = if existed {
        bytes_of(ctx, dest)
    } else {
        hll::new_sparse()
    };
    // The destination turns dense if any input was dense.
    if any_dense && hll::to_dense(&mut s).is_err() {
        return Err(CmdError::msg(ERR_CORRUPT));
    }
    let max = sparse_max(ctx);
    for (i, &r) in regs.iter().enumerate() {
        if r > 0 {
            // A corrupt destination was already refused while merging it.
            let _ = hll::raise(&mut s, i, r, max);
        }
    }
    hll::invalidate(&mut s);
    if existed {
        store(ctx, dest, s);
    } else {
        ctx.db().insert(dest, Value::Str(s.into()));
        notify_new(ctx, false, dest);
    }
    notify(ctx, class::STRING, "pfadd", dest);
    ctx.out.ok();
    Ok(())
}

fn pfdebug(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let sub = args[1].to_ascii_lowercase();
    let key = &args[2];
    match check(ctx, key)? {
        Hll::Missing => return Err(CmdError::msg("ERR The specified key does not exist")),
        Hll::Valid => {}
    }
    let mut s = bytes_of(ctx, key);
    match sub.as_slice() {
        b"getreg" => {
            // Like Redis, reading the registers converts a sparse value to dense.
            if hll::is_sparse(&s) {
                if hll::to_dense(&mut s).is_err() {
                    return Err(CmdError::msg(ERR_CORRUPT));
                }
                store(ctx, key, s.clone());
            }
            let Ok(regs) = hll::registers(&s) else {
                return Err(CmdError::msg(ERR_CORRUPT));
            };
            ctx.out.array(regs.len());
            for r in regs {
                ctx.out.int(r as i64);
            }
        }
        b"decode" => {
            if !hll::is_sparse(&s) {
                return Err(CmdError::msg("ERR HLL encoding is not sparse"));
            }
            match hll::decode_sparse(&s) {
                Ok(text) => ctx.out.bulk(text.as_bytes()),
                Err(_) => return Err(CmdError::msg(ERR_CORRUPT)),
            }
        }
        b"encoding" => ctx.out.simple(if hll::is_sparse(&s) {
            "sparse"
        } else {
            "dense"
        }),
        b"todense" => {
            let conv = hll::is_sparse(&s);
            if conv {
                if hll::to_dense(&mut s).is_err() {
                    return Err(CmdError::msg(ERR_CORRUPT));
                }
                store(ctx, key, s);
            }
            ctx.out.int(conv as i64);
        }
        _ => {
            return Err(CmdError::msg(format!(
                "ERR Unknown PFDEBUG subcommand '{}'",
                String::from_utf8_lossy(&args[1])
            )))
        }
    }
    Ok(())
}

fn pfselftest(ctx: &mut Ctx, _args: &[Vec<u8>]) -> CmdResult {
    match hll::self_test() {
        Ok(()) => ctx.out.ok(),
        Err(e) => return Err(CmdError::msg(e)),
    }
    Ok(())
}
