//! Bit commands on strings: SETBIT GETBIT BITCOUNT BITPOS BITOP BITFIELD BITFIELD_RO.
//!
//! Bit 0 is the most significant bit of the first byte, as in Redis.

use super::flags::*;
use super::strings::read_str;
use super::{cmd, CommandSpec, Ctx, KeySpec, KEY1};
use super::{CmdError, CmdResult};
use crate::util::parse_i64;
use crate::value::Value;

pub const COMMANDS: &[CommandSpec] = &[
    cmd("setbit", 4, WRITE | DENYOOM, KEY1, setbit),
    cmd("getbit", 3, READONLY | FAST, KEY1, getbit),
    cmd("bitcount", -2, READONLY, KEY1, bitcount),
    cmd("bitpos", -3, READONLY, KEY1, bitpos),
    cmd(
        "bitop",
        -4,
        WRITE | DENYOOM,
        KeySpec::Range(2, -1, 1),
        bitop,
    ),
    cmd("bitfield", -2, WRITE | DENYOOM, KEY1, bitfield),
    cmd("bitfield_ro", -2, READONLY | FAST, KEY1, bitfield_ro),
];

const ERR_OFFSET: &str = "ERR bit offset is not an integer or out of range";

/// Parses a bit offset (`#n` multiplies by `width` when allowed), bounded by
/// proto-max-bulk-len as in Redis.
fn parse_offset(ctx: &mut Ctx, arg: &[u8], hash_width: Option<u64>) -> Result<u64, CmdError> {
    let (mul, digits) = match (arg.first(), hash_width) {
        (Some(b'#'), Some(w)) => (w, &arg[1..]),
        _ => (1, arg),
    };
    let limit = ctx.shared.config.settings().proto_max_bulk_len.max(1) * 8;
    match parse_i64(digits) {
        Some(n) if n >= 0 => match (n as u64).checked_mul(mul) {
            Some(v) if v < limit => Ok(v),
            _ => Err(CmdError::msg(ERR_OFFSET)),
        },
        _ => Err(CmdError::msg(ERR_OFFSET)),
    }
}

fn get_bit(s: &[u8], bit: u64) -> u8 {
    let byte = (bit >> 3) as usize;
    match s.get(byte) {
        Some(b) => (b >> (7 - (bit & 7))) & 1,
        None => 0,
    }
}

fn set_bit(s: &mut Vec<u8>, bit: u64, on: bool) {
    let byte = (bit >> 3) as usize;
    if s.len() <= byte {
        s.resize(byte + 1, 0);
    }
    let mask = 1u8 << (7 - (bit & 7));
    if on {
        s[byte] |= mask;
    } else {
        s[byte] &= !mask;
    }
}

/// Stores a string built from the old value (creating the key when absent).
fn store_str(ctx: &mut Ctx, key: &[u8], value: Vec<u8>) {
    let mut db = ctx.db();
    match db.get_mut(key) {
        Some(Value::Str(s)) => *s = value.into(),
        _ => db.insert(key, Value::Str(value.into())),
    }
}

fn setbit(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let bit = parse_offset(ctx, &args[2], None)?;
    let on = match args[3].as_slice() {
        b"0" => false,
        b"1" => true,
        _ => return Err(CmdError::msg("ERR bit is not an integer or out of range")),
    };
    let cur = read_str(ctx, &args[1])?;
    let existed = cur.is_some();
    let mut s = cur.unwrap_or_default();
    let old = get_bit(&s, bit);
    set_bit(&mut s, bit, on);
    store_str(ctx, &args[1], s);
    super::notify::notify_new(ctx, existed, &args[1]);
    ctx.out.int(old as i64);
    super::notify::notify(ctx, super::notify::class::STRING, "setbit", &args[1]);
    Ok(())
}

fn getbit(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let bit = parse_offset(ctx, &args[2], None)?;
    let cur = read_str(ctx, &args[1])?;
    ctx.out.int(get_bit(&cur.unwrap_or_default(), bit) as i64);
    Ok(())
}

/// Resolves Redis start/end (negative from the end) over `len` units; `None` when empty.
fn resolve(start: i64, end: i64, len: i64) -> Option<(i64, i64)> {
    let mut s = if start < 0 { len + start } else { start };
    let mut e = if end < 0 { len + end } else { end };
    s = s.max(0);
    e = e.max(0);
    e = e.min(len - 1);
    (s <= e && len > 0).then_some((s, e))
}

/// Parses the optional `BYTE|BIT` unit at `args[i]`: `Some(true)` for BIT.
fn parse_unit(args: &[Vec<u8>], i: usize) -> Result<bool, CmdError> {
    match args.get(i) {
        None => Ok(false),
        Some(a) if a.eq_ignore_ascii_case(b"byte") && args.len() == i + 1 => Ok(false),
        Some(a) if a.eq_ignore_ascii_case(b"bit") && args.len() == i + 1 => Ok(true),
        Some(_) => Err(CmdError::Syntax),
    }
}

fn count_bits(s: &[u8], first: u64, last: u64) -> u64 {
    (first..=last).map(|b| get_bit(s, b) as u64).sum()
}

fn bitcount(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    // Redis 7.0 looks the key up before it parses the range.
    let cur = read_str(ctx, &args[1])?;
    let Some(s) = cur else {
        ctx.out.int(0);
        return Ok(());
    };
    let mut range = None;
    let mut bit_unit = false;
    if args.len() >= 3 {
        if args.len() == 3 {
            return Err(CmdError::Syntax);
        }
        let (Some(a), Some(b)) = (parse_i64(&args[2]), parse_i64(&args[3])) else {
            return Err(CmdError::NotInt);
        };
        // Redis answers an empty negative range before it looks at the unit.
        if a < 0 && b < 0 && a > b {
            ctx.out.int(0);
            return Ok(());
        }
        let u = parse_unit(args, 4)?;
        bit_unit = u;
        range = Some((a, b));
    }
    let n = match range {
        None => s.iter().map(|b| b.count_ones() as u64).sum(),
        Some((a, b)) if bit_unit => match resolve(a, b, s.len() as i64 * 8) {
            Some((f, l)) => count_bits(&s, f as u64, l as u64),
            None => 0,
        },
        Some((a, b)) => match resolve(a, b, s.len() as i64) {
            Some((f, l)) => s[f as usize..=l as usize]
                .iter()
                .map(|b| b.count_ones() as u64)
                .sum(),
            None => 0,
        },
    };
    ctx.out.int(n as i64);
    Ok(())
}

fn bitpos(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let want = match args[2].as_slice() {
        b"0" => 0u8,
        b"1" => 1u8,
        _ if parse_i64(&args[2]).is_none() => return Err(CmdError::NotInt),
        _ => return Err(CmdError::msg("ERR The bit argument must be 1 or 0.")),
    };
    // Redis 7.0 looks the key up before it parses the range.
    let cur = read_str(ctx, &args[1])?;
    let Some(s) = cur else {
        ctx.out.int(if want == 1 { -1 } else { 0 });
        return Ok(());
    };
    let mut start = 0i64;
    let mut end = -1i64;
    let end_given = args.len() >= 5;
    let mut bit_unit = false;
    if args.len() >= 4 {
        let Some(a) = parse_i64(&args[3]) else {
            return Err(CmdError::NotInt);
        };
        start = a;
        if end_given {
            let Some(b) = parse_i64(&args[4]) else {
                return Err(CmdError::NotInt);
            };
            end = b;
            let u = parse_unit(args, 5)?;
            bit_unit = u;
        }
    }
    let len = if bit_unit {
        s.len() as i64 * 8
    } else {
        s.len() as i64
    };
    let Some((f, l)) = resolve(start, end, len) else {
        ctx.out.int(-1);
        return Ok(());
    };
    let (first_bit, last_bit) = if bit_unit {
        (f as u64, l as u64)
    } else {
        (f as u64 * 8, l as u64 * 8 + 7)
    };
    for b in first_bit..=last_bit {
        if get_bit(&s, b) == want {
            ctx.out.int(b as i64);
            return Ok(());
        }
    }
    // Looking for a clear bit with no explicit end: the string is taken as padded with zeros.
    if want == 0 && !end_given {
        ctx.out.int(last_bit as i64 + 1);
        return Ok(());
    }
    ctx.out.int(-1);
    Ok(())
}

fn bitop(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    let op = args[1].to_ascii_lowercase();
    if !matches!(op.as_slice(), b"and" | b"or" | b"xor" | b"not") {
        return Err(CmdError::Syntax);
    }
    if op == b"not" && args.len() != 4 {
        return Err(CmdError::msg(
            "ERR BITOP NOT must be called with a single source key.",
        ));
    }
    let mut srcs = Vec::with_capacity(args.len() - 3);
    for k in &args[3..] {
        let v = read_str(ctx, k)?;
        srcs.push(v.unwrap_or_default());
    }
    let len = srcs.iter().map(Vec::len).max().unwrap_or(0);
    let mut out = vec![0u8; len];
    for (i, o) in out.iter_mut().enumerate() {
        let byte = |s: &Vec<u8>| s.get(i).copied().unwrap_or(0);
        *o = match op.as_slice() {
            b"not" => !byte(&srcs[0]),
            b"and" => srcs.iter().fold(0xff, |a, s| a & byte(s)),
            b"or" => srcs.iter().fold(0, |a, s| a | byte(s)),
            _ => srcs.iter().fold(0, |a, s| a ^ byte(s)),
        };
    }
    let mut db = ctx.db();
    let existed = db.contains(&args[2]);
    if len == 0 {
        db.remove(&args[2]);
    } else {
        db.insert(&args[2], Value::Str(out.into()));
    }
    ctx.out.int(len as i64);
    super::notify::notify_store(
        ctx,
        super::notify::class::STRING,
        "set",
        &args[2],
        len > 0,
        existed,
    );
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy)]
struct FieldType {
    signed: bool,
    bits: u32,
}

enum FieldOp {
    Get(FieldType, u64),
    Set(FieldType, u64, i64, Overflow),
    Incr(FieldType, u64, i64, Overflow),
}

fn parse_type(a: &[u8]) -> Result<FieldType, CmdError> {
    let signed = matches!(a.first(), Some(b'i' | b'I'));
    let ok = matches!(a.first(), Some(b'i' | b'I' | b'u' | b'U'));
    let bits = parse_i64(&a[1.min(a.len())..]).unwrap_or(0);
    if !ok || bits < 1 || (signed && bits > 64) || (!signed && bits > 63) {
        return Err(CmdError::msg(
            "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not \
             supported but i64 is.",
        ));
    }
    Ok(FieldType {
        signed,
        bits: bits as u32,
    })
}

fn read_field(s: &[u8], off: u64, t: FieldType) -> i64 {
    let mut v: u64 = 0;
    for i in 0..t.bits as u64 {
        v = (v << 1) | get_bit(s, off + i) as u64;
    }
    if t.signed && t.bits < 64 && (v >> (t.bits - 1)) & 1 == 1 {
        v |= u64::MAX << t.bits;
    }
    v as i64
}

fn write_field(s: &mut Vec<u8>, off: u64, t: FieldType, value: i64) {
    let v = value as u64;
    for i in 0..t.bits as u64 {
        let bit = (v >> (t.bits as u64 - 1 - i)) & 1;
        set_bit(s, off + i, bit == 1);
    }
}

/// Applies overflow handling to `cur + incr` (or a plain set when `cur` is None):
/// `None` when FAIL refuses it.
fn field_value(t: FieldType, cur: Option<i64>, v: i64, of: Overflow) -> Option<i64> {
    let (min, max): (i128, i128) = if t.signed {
        (-(1i128 << (t.bits - 1)), (1i128 << (t.bits - 1)) - 1)
    } else {
        (0, (1i128 << t.bits) - 1)
    };
    let want = cur.map_or(v as i128, |c| c as i128 + v as i128);
    if (min..=max).contains(&want) {
        return Some(want as i64);
    }
    match of {
        Overflow::Fail => None,
        Overflow::Sat => Some(if want > max { max } else { min } as i64),
        Overflow::Wrap => {
            let modulus = 1i128 << t.bits;
            let mut w = want.rem_euclid(modulus);
            if t.signed && w > max {
                w -= modulus;
            }
            Some(w as i64)
        }
    }
}

fn bitfield_common(ctx: &mut Ctx, args: &[Vec<u8>], readonly: bool) -> CmdResult {
    let mut ops = Vec::new();
    let mut of = Overflow::Wrap;
    let mut i = 2;
    while i < args.len() {
        let sub = args[i].to_ascii_lowercase();
        let left = args.len() - i - 1;
        match sub.as_slice() {
            b"get" if left >= 2 => {
                let t = parse_type(&args[i + 1])?;
                let off = parse_offset(ctx, &args[i + 2], Some(t.bits as u64))?;
                ops.push(FieldOp::Get(t, off));
                i += 3;
            }
            b"set" | b"incrby" if left >= 3 => {
                if readonly {
                    return Err(CmdError::msg(
                        "ERR BITFIELD_RO only supports the GET subcommand",
                    ));
                }
                let t = parse_type(&args[i + 1])?;
                let off = parse_offset(ctx, &args[i + 2], Some(t.bits as u64))?;
                let Some(v) = parse_i64(&args[i + 3]) else {
                    return Err(CmdError::NotInt);
                };
                ops.push(if sub == b"set" {
                    FieldOp::Set(t, off, v, of)
                } else {
                    FieldOp::Incr(t, off, v, of)
                });
                i += 4;
            }
            b"overflow" if left >= 1 => {
                if readonly {
                    return Err(CmdError::msg(
                        "ERR BITFIELD_RO only supports the GET subcommand",
                    ));
                }
                of = match args[i + 1].to_ascii_lowercase().as_slice() {
                    b"wrap" => Overflow::Wrap,
                    b"sat" => Overflow::Sat,
                    b"fail" => Overflow::Fail,
                    _ => return Err(CmdError::msg("ERR Invalid OVERFLOW type specified")),
                };
                i += 2;
            }
            _ => return Err(CmdError::Syntax),
        }
    }
    let cur = read_str(ctx, &args[1])?;
    let mut s = cur.unwrap_or_default();
    // Like Redis, a write grows (or creates) the string to its highest field first, even when
    // OVERFLOW FAIL then refuses it.
    let mut writes = false;
    for op in &ops {
        if let FieldOp::Set(t, off, ..) | FieldOp::Incr(t, off, ..) = *op {
            writes = true;
            let need = ((off + t.bits as u64 - 1) / 8 + 1) as usize;
            if s.len() < need {
                s.resize(need, 0);
            }
        }
    }
    ctx.out.array(ops.len());
    for op in &ops {
        match *op {
            FieldOp::Get(t, off) => ctx.out.int(read_field(&s, off, t)),
            FieldOp::Set(t, off, v, of) => {
                let old = read_field(&s, off, t);
                match field_value(t, None, v, of) {
                    Some(nv) => {
                        write_field(&mut s, off, t, nv);
                        ctx.out.int(old);
                    }
                    None => ctx.out.null(),
                }
            }
            FieldOp::Incr(t, off, v, of) => {
                let old = read_field(&s, off, t);
                match field_value(t, Some(old), v, of) {
                    Some(nv) => {
                        write_field(&mut s, off, t, nv);
                        ctx.out.int(nv);
                    }
                    None => ctx.out.null(),
                }
            }
        }
    }
    if writes {
        store_str(ctx, &args[1], s);
        super::notify::notify(ctx, super::notify::class::STRING, "setbit", &args[1]);
    }
    Ok(())
}

fn bitfield(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    bitfield_common(ctx, args, false)
}

fn bitfield_ro(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    bitfield_common(ctx, args, true)
}
