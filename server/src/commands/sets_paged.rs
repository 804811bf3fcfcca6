//! The set commands on a paged set (see `paged`). A paged set is a paged hash whose fields are
//! the members, with empty values: the same manifest, linear hashing and page splits. SADD,
//! SREM, SISMEMBER, SMISMEMBER and SMOVE touch the pages of the members they name; SCARD reads
//! the manifest; SMEMBERS walks the pages in turn; SSCAN returns one page per call; SPOP and
//! SRANDMEMBER pick a page, then a member of it (with a count, about the count's share of the
//! pages). Whole-set uses (SINTER and the other set operations, SORT, DUMP, a count that
//! reaches the set's size) read the set into one `Set` first.

use super::paged_hashlike::{self as hashlike, Kind};
use super::typed::Set;
use super::{paged_sample, CmdError, Ctx};
use crate::paged::hash::{self, PagedHash};
use crate::value::Value;
use rand::Rng;

/// A member's value in its page: a set needs none.
const NO_VALUE: &[u8] = b"";

/// The manifest at `key` if it holds a live paged set (counted as a hit); `None` for anything
/// else, which the caller handles as an ordinary set (or answers WRONGTYPE for).
pub fn manifest(ctx: &mut Ctx, key: &[u8]) -> Option<PagedHash> {
    hashlike::manifest(ctx, key, Kind::Set)
}

/// Writes the changed manifest back, or deletes the key once the last member is gone.
pub fn store(ctx: &mut Ctx, key: &[u8], m: PagedHash) {
    hashlike::store(ctx, key, m, Kind::Set)
}

fn upkeep(ctx: &mut Ctx, m: &mut PagedHash) {
    hashlike::upkeep(ctx, m, Kind::Set)
}

/// SADD (and SMOVE's destination): adds `members`; how many were new. A page that cannot be
/// read fails the command after the members before it were added (their pages and the
/// manifest stay consistent).
pub fn add(
    ctx: &mut Ctx,
    key: &[u8],
    mut m: PagedHash,
    members: &[Vec<u8>],
) -> Result<usize, CmdError> {
    let mut added = 0;
    let mut failed = None;
    for member in members {
        // Read first: a member already there leaves its page clean.
        match contains(ctx, &m, member) {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
        match hash::set(ctx.engine, &mut m, member.clone(), Vec::new(), ctx.now_ms) {
            Ok(new) => added += usize::from(new),
            Err(e) => {
                failed = Some(CmdError::store(e));
                break;
            }
        }
        upkeep(ctx, &mut m);
    }
    if added > 0 {
        store(ctx, key, m);
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(added),
    }
}

/// Removes `members`; how many were there. The last one gone deletes the key.
pub fn remove(
    ctx: &mut Ctx,
    key: &[u8],
    mut m: PagedHash,
    members: &[Vec<u8>],
) -> Result<usize, CmdError> {
    let mut removed = 0;
    let mut failed = None;
    for member in members {
        match hash::remove(ctx.engine, &mut m, member, ctx.now_ms) {
            Ok(was) => removed += usize::from(was),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    if removed > 0 {
        store(ctx, key, m);
    }
    match failed {
        Some(e) => Err(CmdError::store(e)),
        None => Ok(removed),
    }
}

/// Whether `member` is in the set (one page read).
pub fn contains(ctx: &mut Ctx, m: &PagedHash, member: &[u8]) -> Result<bool, CmdError> {
    let page = hash::page(ctx.engine, m, m.page_of(member), ctx.now_ms).map_err(CmdError::store)?;
    Ok(page.is_some_and(|p| p.contains_key(member)))
}

/// The whole set in one `Set` (set operations, counted SPOP/SRANDMEMBER).
pub fn materialize(ctx: &mut Ctx, m: &PagedHash) -> Result<Set, CmdError> {
    hash::members(ctx.engine, m, ctx.now_ms).map_err(CmdError::store)
}

/// For a command that reads its set sources whole (SINTER and the other set operations; the
/// hook ZUNION, ZINTER and ZDIFF need for a paged set source): each paged set among `keys` read
/// into one set, `None` for every other key (absent, an ordinary set, or another type, which the
/// caller checks as before).
pub fn materialize_sources(ctx: &mut Ctx, keys: &[Vec<u8>]) -> Result<Vec<Option<Set>>, CmdError> {
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        out.push(match manifest(ctx, k) {
            Some(m) => Some(materialize(ctx, &m)?),
            None => None,
        });
    }
    Ok(out)
}

/// SMEMBERS, page by page.
pub fn members_reply(ctx: &mut Ctx, m: &PagedHash) -> Result<(), CmdError> {
    // Read first: an unreadable page fails the command before any reply is written.
    for id in 0..m.page_count() {
        hash::page(ctx.engine, m, id, ctx.now_ms).map_err(CmdError::store)?;
    }
    // The manifest's count is what was written; a page reading back short (damage) must not
    // make the reply's length disagree with its elements.
    let mut all = Vec::with_capacity(m.len as usize);
    hash::for_each(ctx.engine, m, ctx.now_ms, |f, _| all.push(f.to_vec()))
        .map_err(CmdError::store)?;
    ctx.out.set(all.len());
    all.iter().for_each(|f| ctx.out.bulk(f));
    Ok(())
}

/// SSCAN: the cursor is a page number; each call returns one page (COUNT is a hint Redis may
/// exceed), so a scan holds one page in memory at a time. Pages only split towards higher
/// numbers, so every member present for the whole scan is returned.
pub fn scan(
    ctx: &mut Ctx,
    m: &PagedHash,
    cursor: u64,
    pattern: Option<Vec<u8>>,
) -> Result<(), CmdError> {
    let (next, entries) = hashlike::scan_page(ctx, m, cursor, pattern.as_deref())?;
    let items: Vec<Vec<u8>> = entries.into_iter().map(|(k, _)| k).collect();
    super::sets::scan_reply(ctx.out, next, &items);
    Ok(())
}

/// One member at random (SRANDMEMBER and SPOP without a count); see [`paged_sample`].
pub fn random_member(ctx: &mut Ctx, m: &PagedHash) -> Result<Option<Vec<u8>>, CmdError> {
    Ok(paged_sample::random_entry(ctx, m)?.map(|(k, _)| k))
}

/// `count` distinct members at random, `count` below the set's size (SPOP and SRANDMEMBER with
/// a count), without reading the whole set.
pub fn sample_distinct(
    ctx: &mut Ctx,
    m: &PagedHash,
    count: usize,
) -> Result<Vec<Vec<u8>>, CmdError> {
    let picked = paged_sample::sample_distinct(ctx, m, count)?;
    Ok(picked.into_iter().map(|(k, _)| k).collect())
}

/// `draws` members at random with repetitions (SRANDMEMBER with a negative count).
pub fn sample_repeated(
    ctx: &mut Ctx,
    m: &PagedHash,
    draws: usize,
) -> Result<Vec<Vec<u8>>, CmdError> {
    let pool = paged_sample::draw_pool(ctx, m)?;
    if pool.is_empty() {
        return Ok(Vec::new());
    }
    let mut rng = rand::rng();
    Ok((0..draws)
        .map(|_| pool[rng.random_range(0..pool.len())].0.clone())
        .collect())
}

/// After a write that may have added members to an ordinary set: one that crossed
/// `paged-value-min-bytes` becomes paged. Summing the sizes is linear, so past 64 members it is
/// checked only when the member count passes a multiple of 64.
pub fn maybe_page_out(ctx: &mut Ctx, key: &[u8], len_before: usize) {
    let min = ctx.shared.config.settings().paged_value_min_bytes;
    let page_bytes = ctx.shared.config.settings().page_bytes;
    if min == 0 {
        return;
    }
    let value = ctx.engine.peek(ctx.client.db, key);
    let s = match value {
        Some(Value::Set(s)) if s.len() <= 64 || s.len() >> 6 != len_before >> 6 => s,
        _ => return,
    };
    let bytes: u64 = s.iter().map(|f| hash::field_bytes(f, NO_VALUE)).sum();
    // A set Redis would keep as an intset lists its members sorted (SMEMBERS, SSCAN): only a
    // hash table's order is free to be the pages' order.
    if bytes < min
        || value.is_some_and(|v| super::object::encoding(v, &ctx.shared.config) != "hashtable")
    {
        return;
    }
    let s = s.clone();
    let pairs = s.iter().map(|f| (f, NO_VALUE));
    let m = hash::page_out_pairs(ctx.engine, pairs, page_bytes, ctx.now_ms);
    ctx.db().insert_keep_ttl(key, Value::PagedSet(Box::new(m)));
}

/// The pages of paged set `m` (at `key`) a command needs in memory, so the request path loads
/// them (batched, without blocking the server) before the command runs. A page it misses
/// anyway (a script, a key changed earlier in the same EXEC) is read synchronously when
/// touched. A destination the command overwrites unread (SINTERSTORE's, COPY's, SORT … STORE's)
/// needs none.
pub fn pages_needed(
    name: &str,
    args: &[Vec<u8>],
    key: &[u8],
    m: &PagedHash,
    page_bytes: u64,
) -> Vec<u32> {
    let members = |from: usize| -> Vec<u32> {
        args.get(from..)
            .unwrap_or_default()
            .iter()
            .map(|f| m.page_of(f))
            .collect()
    };
    let all = || (0..m.page_count()).collect::<Vec<u32>>();
    let all_if = |read: bool| if read { all() } else { Vec::new() };
    // Whether the key is read (a source) rather than only overwritten (a destination at 1).
    let first = |at: usize| args.get(at).is_some_and(|a| a.as_slice() == key);
    let among = |from: usize| {
        args.get(from..)
            .unwrap_or_default()
            .iter()
            .any(|a| a.as_slice() == key)
    };
    let mut pages = match name {
        "sismember" => members(2),
        "sadd" | "srem" | "smismember" => members(2),
        // The member's page, in the source and in the destination alike.
        "smove" => members(3),
        // SPOP's negative count is an error: no pages.
        "spop" if args.len() > 2 && crate::util::parse_i64(&args[2]).is_none_or(|c| c < 0) => {
            Vec::new()
        }
        "spop" | "srandmember" => paged_sample::pages_for_arg(m, args.get(2)),
        "sscan" => super::paged_hashlike::scan_plan(&args[2], m),
        "smembers" | "sinter" | "sunion" | "sdiff" | "sintercard" | "zunion" | "zinter"
        | "zdiff" | "zintercard" => all(),
        "sinterstore" | "sunionstore" | "sdiffstore" | "zunionstore" | "zinterstore"
        | "zdiffstore" => all_if(among(2)),
        "sort" | "sort_ro" | "dump" | "copy" => all_if(first(1)),
        _ => Vec::new(),
    };
    if matches!(name, "sadd" | "smove") {
        // The page a split would divide, if the write may push the set over its page budget.
        let from = if name == "sadd" { 2 } else { 3 };
        let adding: u64 = args
            .get(from..)
            .unwrap_or_default()
            .iter()
            .map(|a| hash::field_bytes(a, NO_VALUE))
            .sum();
        let grown = PagedHash {
            bytes: m.bytes + adding,
            ..*m
        };
        if grown.wants_split(page_bytes) {
            pages.push(m.split);
        }
    }
    pages.sort_unstable();
    pages.dedup();
    pages
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> PagedHash {
        PagedHash {
            gen: 9,
            level: 3,
            split: 2,
            len: 500,
            bytes: 500 * 16,
        }
    }

    fn args(a: &[&str]) -> Vec<Vec<u8>> {
        a.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn pages_needed_names_the_members_pages() {
        let m = manifest();
        let page = |s: &str| m.page_of(s.as_bytes());
        let mut want = vec![page("a"), page("b")];
        want.sort_unstable();
        want.dedup();
        let got = pages_needed("srem", &args(&["srem", "k", "a", "b"]), b"k", &m, 1 << 20);
        assert_eq!(got, want);
        let got = pages_needed("smove", &args(&["smove", "s", "d", "x"]), b"d", &m, 1 << 20);
        assert_eq!(got, vec![page("x")]);
        let all = pages_needed("smembers", &args(&["smembers", "k"]), b"k", &m, 64);
        assert_eq!(all, (0..m.page_count()).collect::<Vec<_>>());
        let one = pages_needed("spop", &args(&["spop", "k"]), b"k", &m, 64);
        assert_eq!(one.len(), 1);
        assert!(one[0] < m.page_count());
        let few = pages_needed("spop", &args(&["spop", "k", "20"]), b"k", &m, 64);
        assert_eq!(few.len(), 1, "20 of 500 members over 10 pages: {few:?}");
        let half = pages_needed(
            "srandmember",
            &args(&["srandmember", "k", "-250"]),
            b"k",
            &m,
            64,
        );
        assert_eq!(half.len(), 6);
        let every = pages_needed("spop", &args(&["spop", "k", "500"]), b"k", &m, 64);
        assert_eq!(every.len(), 10);
        assert!(pages_needed("spop", &args(&["spop", "k", "0"]), b"k", &m, 64).is_empty());
        assert!(pages_needed("sscan", &args(&["sscan", "k", "99"]), b"k", &m, 64).is_empty());
        assert_eq!(
            pages_needed("sscan", &args(&["sscan", "k", "3"]), b"k", &m, 64),
            vec![3]
        );
    }

    #[test]
    fn an_overwritten_destination_needs_no_pages() {
        let m = manifest();
        let store = args(&["sunionstore", "d", "a", "b"]);
        assert!(pages_needed("sunionstore", &store, b"d", &m, 64).is_empty());
        assert_eq!(pages_needed("sunionstore", &store, b"a", &m, 64).len(), 10);
        let store = args(&["sunionstore", "d", "d", "b"]);
        assert_eq!(pages_needed("sunionstore", &store, b"d", &m, 64).len(), 10);
        let copy = args(&["copy", "a", "d", "replace"]);
        assert!(pages_needed("copy", &copy, b"d", &m, 64).is_empty());
        assert_eq!(pages_needed("copy", &copy, b"a", &m, 64).len(), 10);
        let sort = args(&["sort", "a", "alpha", "store", "d"]);
        assert!(pages_needed("sort", &sort, b"d", &m, 64).is_empty());
    }

    #[test]
    fn a_growing_write_loads_the_page_it_may_split() {
        // 8 KB over 10 pages of 64 bytes is far past the budget: the split page is wanted.
        let m = manifest();
        let got = pages_needed("sadd", &args(&["sadd", "k", "new"]), b"k", &m, 64);
        assert!(got.contains(&m.split), "{got:?}");
        let roomy = pages_needed("sadd", &args(&["sadd", "k", "new"]), b"k", &m, 1 << 20);
        assert_eq!(roomy, vec![m.page_of(b"new")]);
    }
}
