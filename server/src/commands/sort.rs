//! SORT and SORT_RO.
//!
//! BY and GET patterns read other keys, which are only known once the values are: they are
//! looked up in memory, so a pattern key that is only on disk (evicted) reads as missing.

use super::flags::*;
use super::{cmd, CommandSpec, Ctx, KeySpec, KEY1};
use super::{CmdError, CmdResult};
use crate::util::{parse_f64, parse_i64};
use crate::value::Value;
use std::cmp::Ordering;
use std::collections::VecDeque;

pub const COMMANDS: &[CommandSpec] = &[
    cmd("sort", -2, WRITE | DENYOOM, KeySpec::SortStore, sort),
    cmd("sort_ro", -2, READONLY, KEY1, sort_ro),
];

/// The value a BY/GET pattern designates for `elem`: `#` is the element itself, the first `*`
/// is replaced by it, and `key->field` reads a hash field.
fn lookup(ctx: &mut Ctx, pattern: &[u8], elem: &[u8]) -> Option<Vec<u8>> {
    if pattern == b"#" {
        return Some(elem.to_vec());
    }
    let star = pattern.iter().position(|&c| c == b'*')?;
    let rest = &pattern[star + 1..];
    let (suffix, field) = match rest.windows(2).position(|w| w == b"->") {
        Some(i) if i + 2 < rest.len() => (&rest[..i], Some(&rest[i + 2..])),
        _ => (rest, None),
    };
    let mut key = pattern[..star].to_vec();
    key.extend_from_slice(elem);
    key.extend_from_slice(suffix);
    match (ctx.db().get(&key), field) {
        (Some(Value::Str(s)), None) => Some(s.to_vec()),
        (Some(Value::Hash(h)), Some(f)) => h.get(f).map(<[u8]>::to_vec),
        (Some(Value::PagedHash(m)), Some(f)) => {
            let m = **m;
            // A page that cannot be read counts as a missing field, as a missing key does.
            crate::paged::hash::get(ctx.engine, &m, f, ctx.now_ms)
                .ok()
                .flatten()
        }
        _ => None,
    }
}

fn sort(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    sort_generic(ctx, args, false)
}

fn sort_ro(ctx: &mut Ctx, args: &[Vec<u8>]) -> CmdResult {
    sort_generic(ctx, args, true)
}

fn sort_generic(ctx: &mut Ctx, args: &[Vec<u8>], readonly: bool) -> CmdResult {
    let (mut desc, mut alpha) = (false, false);
    let (mut start, mut count) = (0i64, -1i64);
    let mut by: Option<&[u8]> = None;
    let mut dontsort = false;
    let mut gets: Vec<&[u8]> = Vec::new();
    let mut store: Option<&[u8]> = None;
    let mut i = 2;
    while i < args.len() {
        let left = args.len() - i - 1;
        match args[i].to_ascii_lowercase().as_slice() {
            b"asc" => desc = false,
            b"desc" => desc = true,
            b"alpha" => alpha = true,
            b"limit" if left >= 2 => {
                let (Some(s), Some(c)) = (parse_i64(&args[i + 1]), parse_i64(&args[i + 2])) else {
                    return Err(CmdError::NotInt);
                };
                (start, count) = (s, c);
                i += 2;
            }
            b"store" if left >= 1 && !readonly => {
                store = Some(&args[i + 1]);
                i += 1;
            }
            b"by" if left >= 1 => {
                let p = args[i + 1].as_slice();
                // A pattern without `*` means "do not sort".
                dontsort = !p.contains(&b'*');
                by = Some(p);
                i += 1;
            }
            b"get" if left >= 1 => {
                gets.push(&args[i + 1]);
                i += 1;
            }
            _ => return Err(CmdError::Syntax),
        }
        i += 1;
    }
    let (mut elems, is_set): (Vec<Vec<u8>>, bool) = match ctx.db().get(&args[1]) {
        None => (Vec::new(), false),
        Some(Value::List(l)) => (l.iter().map(<[u8]>::to_vec).collect(), false),
        Some(Value::PagedList(m)) => {
            let m = m.clone();
            let l = crate::paged::list::materialize(ctx.engine, &m, ctx.now_ms)
                .map_err(CmdError::store)?;
            (l.into_iter().map(|e| e.into_vec()).collect(), false)
        }
        Some(Value::Set(s)) => (s.iter().map(<[u8]>::to_vec).collect(), true),
        Some(Value::PagedSet(m)) => {
            let m = **m;
            let s =
                crate::paged::hash::members(ctx.engine, &m, ctx.now_ms).map_err(CmdError::store)?;
            (s.into_iter().collect(), true)
        }
        Some(Value::ZSet(z)) => (z.iter().map(|(m, _)| m.to_vec()).collect(), false),
        Some(Value::PagedZSet(m)) => {
            let m = m.clone();
            let z = crate::paged::zset::materialize(ctx.engine, &m, ctx.now_ms)
                .map_err(CmdError::store)?;
            (z.iter().map(|(m, _)| m.to_vec()).collect(), false)
        }
        Some(_) => return Err(CmdError::WrongType),
    };
    // A set has no order of its own: when stored, sort it anyway so the result is stable.
    if dontsort && is_set && store.is_some() {
        dontsort = false;
        alpha = true;
        by = None;
    }
    if dontsort && desc {
        elems.reverse();
    }
    if !dontsort {
        let mut keyed: Vec<(Vec<u8>, Option<Vec<u8>>, f64)> = Vec::with_capacity(elems.len());
        for e in elems {
            let cmpval = match by {
                Some(p) => lookup(ctx, p, &e),
                None => Some(e.clone()),
            };
            let score = if alpha {
                0.0
            } else {
                match &cmpval {
                    None => 0.0,
                    Some(v) => match parse_f64(v) {
                        Some(f) if !f.is_nan() => f,
                        _ => {
                            return Err(CmdError::msg(
                                "ERR One or more scores can't be converted into double",
                            ))
                        }
                    },
                }
            };
            keyed.push((e, cmpval, score));
        }
        keyed.sort_by(|a, b| {
            let cmp = if !alpha {
                a.2.partial_cmp(&b.2)
                    .unwrap_or(Ordering::Equal)
                    .then_with(|| a.0.cmp(&b.0))
            } else {
                match (&a.1, &b.1) {
                    (None, None) => Ordering::Equal,
                    (None, Some(_)) => Ordering::Less,
                    (Some(_), None) => Ordering::Greater,
                    (Some(x), Some(y)) => x.cmp(y),
                }
            };
            if desc {
                cmp.reverse()
            } else {
                cmp
            }
        });
        elems = keyed.into_iter().map(|(e, _, _)| e).collect();
    }
    let len = elems.len() as i64;
    let start = start.max(0).min(len);
    let count = if count < 0 { len } else { count };
    let end = start.saturating_add(count).min(len);
    let picked = &elems[start as usize..end as usize];
    let mut rows: Vec<Option<Vec<u8>>> = Vec::new();
    for e in picked {
        if gets.is_empty() {
            rows.push(Some(e.clone()));
        } else {
            for g in &gets {
                rows.push(lookup(ctx, g, e));
            }
        }
    }
    match store {
        None => {
            ctx.out.array(rows.len());
            for r in &rows {
                match r {
                    Some(v) => ctx.out.bulk(v),
                    None => ctx.out.null(),
                }
            }
        }
        Some(dst) => {
            let n = rows.len();
            let mut db = ctx.db();
            let existed = db.contains(dst);
            if n == 0 {
                db.remove(dst);
                // Redis signals the destination as modified even when it stays absent.
                db.touch(dst);
            } else {
                let l: VecDeque<crate::listval::Elem> = rows
                    .into_iter()
                    .map(|r| r.unwrap_or_default().into())
                    .collect();
                db.insert(
                    dst,
                    Value::List(Box::new(crate::listval::List::from_deque(l))),
                );
                super::page_out::page_out_written(ctx, dst);
            }
            ctx.out.int(n as i64);
            use super::notify::{class, notify_store};
            notify_store(ctx, class::LIST, "sortstore", dst, n > 0, existed);
        }
    }
    Ok(())
}
