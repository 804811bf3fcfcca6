//! Which pages of a paged stream (`paged::stream`) a stream command needs, so the request path
//! loads them batched while the client is parked instead of one synchronous read per page.

use super::streams::{interval_id, parse_read_args};
use crate::paged::stream::{PageIndex, PagedStream};
use crate::stream::{id, StreamId};
use crate::util::parse_i64;

/// At most this many pages are asked for up front (XRANGE over a whole large stream, DUMP):
/// the rest are read synchronously as the command reaches them.
const MAX_PAGES: usize = 256;

/// The page numbers of paged stream `m`, stored under `key`, that command `args` touches.
pub fn pages_needed(
    name: &str,
    args: &[Vec<u8>],
    key: &[u8],
    m: &PagedStream,
    page_bytes: u64,
) -> Vec<u32> {
    let ix = &m.idx;
    let ids = |r: std::ops::Range<usize>| -> Vec<u32> {
        r.take(MAX_PAGES).map(|i| ix.pages()[i].id).collect()
    };
    let first = || ids(0..ix.pages().len().min(1));
    let last = || ids(ix.pages().len().saturating_sub(1)..ix.pages().len());
    // Pages from the one holding `from` on, enough for `count` entries (0 = all).
    let after = |from: StreamId, count: usize| -> Vec<u32> {
        let span = ix.overlapping(from, StreamId::MAX);
        let mut got = 0usize;
        let mut out = Vec::new();
        for i in span.take(MAX_PAGES) {
            out.push(ix.pages()[i].id);
            got += ix.pages()[i].count as usize;
            if count > 0 && got >= count {
                break;
            }
        }
        out
    };
    // The pages holding `ids`, once each.
    let holding = |want: &mut dyn Iterator<Item = StreamId>| -> Vec<u32> {
        let mut out: Vec<u32> = want
            .filter_map(|id| ix.locate(id).map(|i| ix.pages()[i].id))
            .take(MAX_PAGES)
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    };
    let count_arg = |at: usize| -> usize {
        let mut j = at;
        while j + 1 < args.len() {
            if args[j].eq_ignore_ascii_case(b"count") {
                return parse_i64(&args[j + 1]).unwrap_or(0).max(0) as usize;
            }
            j += 1;
        }
        0
    };
    match name {
        // The last page (appended to) and, with a trim, the first (cut into).
        "xadd" | "xtrim" => {
            let trims = name == "xtrim"
                || args
                    .iter()
                    .skip(2)
                    .any(|a| a.eq_ignore_ascii_case(b"maxlen") || a.eq_ignore_ascii_case(b"minid"));
            let mut p = if trims { first() } else { Vec::new() };
            if name == "xadd" {
                p.extend(last());
            }
            p.dedup();
            p
        }
        "xrange" | "xrevrange" if args.len() >= 4 => {
            let rev = name == "xrevrange";
            let (s, e) = if rev {
                (&args[3], &args[2])
            } else {
                (&args[2], &args[3])
            };
            let (Ok(start), Ok(end)) = (interval_id(s, true), interval_id(e, false)) else {
                return Vec::new();
            };
            let count = count_arg(4);
            let span = ix.overlapping(start, end);
            let order: Vec<usize> = if rev {
                span.rev().collect()
            } else {
                span.collect()
            };
            let mut got = 0usize;
            let mut out = Vec::new();
            for i in order.into_iter().take(MAX_PAGES) {
                out.push(ix.pages()[i].id);
                got += ix.pages()[i].count as usize;
                if count > 0 && got >= count {
                    break;
                }
            }
            out
        }
        "xdel" => xdel_pages(ix, args, page_bytes),
        "xclaim" => holding(&mut args.iter().skip(5).map_while(|a| id::parse_strict(a))),
        "xread" | "xreadgroup" => {
            let Ok(r) = parse_read_args(args, name == "xreadgroup") else {
                return Vec::new();
            };
            let keys = &args[r.streams_at..r.streams_at + r.nstreams];
            let Some(k) = keys.iter().position(|k| k == key) else {
                return Vec::new();
            };
            let a = &args[r.streams_at + r.nstreams + k];
            let from = match (a.as_slice(), &r.group) {
                (b">", Some((g, _))) => m.meta.groups.get(g).map(|g| g.last_id),
                (_, Some((g, c))) => {
                    // A consumer's history: the pages of its pending entries after the ID.
                    let (Some(g), Some(after)) = (m.meta.groups.get(g), id::parse_strict(a)) else {
                        return Vec::new();
                    };
                    let Some(c) = g.consumers.get(c) else {
                        return Vec::new();
                    };
                    let limit = if r.count == 0 { usize::MAX } else { r.count };
                    return holding(&mut c.pel.range(after..).take(limit).copied());
                }
                (b"$", None) => return Vec::new(),
                (_, None) => id::parse_strict(a),
            };
            match from.and_then(|f| f.incr()) {
                Some(f) => after(f, r.count),
                None => Vec::new(),
            }
        }
        "xautoclaim" if args.len() >= 6 => {
            let (Some(g), Ok(start)) = (m.meta.groups.get(&args[2]), interval_id(&args[5], true))
            else {
                return Vec::new();
            };
            let count = match count_arg(6) {
                0 => 100,
                n => n,
            };
            holding(
                &mut g
                    .pel
                    .range(start..)
                    .take(count.saturating_mul(10))
                    .map(|(id, _)| *id),
            )
        }
        "xinfo" => {
            let full = args.get(3).is_some_and(|a| a.eq_ignore_ascii_case(b"full"));
            if !args
                .get(1)
                .is_some_and(|a| a.eq_ignore_ascii_case(b"stream"))
            {
                Vec::new()
            } else if full {
                let count = match args.get(5).and_then(|a| parse_i64(a)) {
                    Some(n) if n >= 0 => n as usize,
                    _ => 10,
                };
                after(StreamId::MIN, count)
            } else {
                let mut p = first();
                p.extend(last());
                p.dedup();
                p
            }
        }
        "dump" | "copy" => ids(0..ix.pages().len()),
        _ => Vec::new(),
    }
}

/// The pages XDEL needs: those holding the ids, and the neighbours of each one the deletion may
/// leave small enough to be merged into a neighbour (see `paged::merge_below`), so the merge finds that neighbour in memory instead of reading it
/// on the event loop. What a page keeps is estimated from its average entry; a neighbour loaded
/// for a merge that does not happen costs one page read ahead.
fn xdel_pages(ix: &PageIndex, args: &[Vec<u8>], page_bytes: u64) -> Vec<u32> {
    let mut hit: Vec<(usize, u64)> = Vec::new();
    for i in args
        .iter()
        .skip(2)
        .filter_map(|a| id::parse_strict(a))
        .filter_map(|id| ix.locate(id))
    {
        match hit.iter_mut().find(|(j, _)| *j == i) {
            Some((_, n)) => *n += 1,
            None => hit.push((i, 1)),
        }
        if hit.len() >= MAX_PAGES {
            break;
        }
    }
    let mut out = Vec::new();
    for (i, n) in hit {
        let p = &ix.pages()[i];
        out.push(p.id);
        let count = u64::from(p.count).max(1);
        let kept = p.bytes / count * count.saturating_sub(n);
        // Twice the merge threshold: entries differ in size.
        if kept < 2 * crate::paged::merge_below(page_bytes) {
            out.extend(i.checked_sub(1).map(|j| ix.pages()[j].id));
            out.extend(ix.pages().get(i + 1).map(|p| p.id));
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}
