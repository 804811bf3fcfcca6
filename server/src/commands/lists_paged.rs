//! Which pages of a paged list (`paged::list`) a list command needs, so the request path loads
//! them batched while the client is parked instead of one synchronous read per page.

use crate::paged::list::PagedList;
use crate::util::parse_i64;

/// At most this many pages are asked for up front (LRANGE over a whole large list, LREM, SORT):
/// the rest are read synchronously as the command reaches them, so a command never pins more
/// than about this many pages at once.
const MAX_PAGES: usize = 256;

/// The page numbers of paged list `m`, stored under `key`, that command `args` touches.
pub fn pages_needed(name: &str, args: &[Vec<u8>], key: &[u8], m: &PagedList) -> Vec<u32> {
    let len = m.len;
    let at = |i: u64| m.locate(i).map(|(seg, _)| m.segs()[seg].id);
    let head = || at(0).into_iter().collect::<Vec<_>>();
    let tail = || at(len.saturating_sub(1)).into_iter().collect::<Vec<_>>();
    let end = |left: bool| if left { head() } else { tail() };
    let side = |a: Option<&Vec<u8>>| a.and_then(|a| super::lists::parse_side(a));
    // Pages covering `start..=end` (clamped), at most MAX_PAGES.
    let span = |start: u64, end: u64| -> Vec<u32> {
        let Some((first, _)) = m.locate(start) else {
            return Vec::new();
        };
        let last = m
            .locate(end.min(len.saturating_sub(1)))
            .map_or(first, |(s, _)| s);
        (first..=last)
            .take(MAX_PAGES)
            .map(|s| m.segs()[s].id)
            .collect()
    };
    let index = |a: &[u8]| -> Option<u64> {
        let i = parse_i64(a)?;
        let i = if i < 0 { i.checked_add(len as i64)? } else { i };
        u64::try_from(i).ok()
    };
    let count = |a: Option<&Vec<u8>>| a.and_then(|a| parse_i64(a)).unwrap_or(1).max(1) as u64;
    match name {
        "lpush" | "lpushx" => head(),
        "rpush" | "rpushx" => tail(),
        "lpop" => span(0, count(args.get(2)) - 1),
        "rpop" => span(len.saturating_sub(count(args.get(2))), len),
        "blpop" => head(),
        "brpop" => tail(),
        "lmpop" | "blmpop" => {
            let mut p = head();
            p.extend(tail());
            p
        }
        "lindex" | "lset" => index(&args[2]).and_then(at).into_iter().collect(),
        "lrange" | "ltrim" => {
            let s = parse_i64(&args[2]).unwrap_or(0);
            let e = parse_i64(&args[3]).unwrap_or(-1);
            let s = if s < 0 { (len as i64 + s).max(0) } else { s } as u64;
            let e = if e < 0 { len as i64 + e } else { e };
            if e < 0 {
                return Vec::new();
            }
            if name == "ltrim" {
                // Only the two edge pages are cut; the others are deleted unread.
                let mut p: Vec<u32> = [at(s), at(e as u64)].into_iter().flatten().collect();
                p.dedup();
                return p;
            }
            span(s, e as u64)
        }
        "rpoplpush" | "brpoplpush" | "lmove" | "blmove" => {
            let (from_left, to_left) = match name {
                "lmove" | "blmove" => (side(args.get(3)), side(args.get(4))),
                _ => (Some(false), Some(true)),
            };
            let mut p = Vec::new();
            if args.get(1).is_some_and(|a| a == key) {
                p.extend(from_left.map(end).unwrap_or_default());
            }
            if args.get(2).is_some_and(|a| a == key) {
                p.extend(to_left.map(end).unwrap_or_default());
            }
            p.dedup();
            p
        }
        "linsert" | "lrem" | "lpos" | "sort" | "sort_ro" | "dump" | "copy" => span(0, len),
        _ => Vec::new(),
    }
}
