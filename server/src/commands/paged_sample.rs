//! Random picks from a paged hash or set without reading all of it (SPOP, SRANDMEMBER,
//! HRANDFIELD). The request path loads about the count's share of the pages, from a page
//! picked at random ([`pages_for`]); the picks then take from the pages in memory first, each
//! page giving its share of the count, and read other pages only for what is still missing.
//! Redis does not define the distribution of these picks either; they are uniform over pages,
//! and within a page over its entries.

use super::{CmdError, Ctx};
use crate::paged::hash::{self, PagedHash};
use crate::paged::stable_hash;
use kvtier_core::Residency;
use rand::seq::IteratorRandom;
use rand::Rng;
use std::collections::HashSet;

/// A field (or member) and its value (empty for a set).
pub type Entry = (Vec<u8>, Vec<u8>);

/// The page a pick has the request path load first: the same for a retry of the same request
/// (so a parked command does not chase a new page on every try), a different one as the value
/// changes or time passes.
fn pick_page(m: &PagedHash) -> u32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let seed = m.gen ^ m.len.rotate_left(32) ^ secs;
    (stable_hash(&seed.to_le_bytes()) % u64::from(m.page_count())) as u32
}

/// [`pages_for`] with the count as the request gives it (`args[2]` of HRANDFIELD, SRANDMEMBER,
/// SPOP, ZRANDMEMBER; none without one, 0 when it is not a number).
pub fn pages_for_arg(m: &PagedHash, count: Option<&Vec<u8>>) -> Vec<u32> {
    pages_for(m, count.map(|c| crate::util::parse_i64(c).unwrap_or(0)))
}

/// The pages a pick needs in memory: one for a pick without a count (`None`); about the
/// count's share of the pages for distinct picks below the size or for draws with repetitions
/// (a negative count); every page when distinct picks reach the size (the reply is all of it);
/// none for a count of 0.
pub fn pages_for(m: &PagedHash, count: Option<i64>) -> Vec<u32> {
    let Some(count) = count else {
        return vec![pick_page(m)];
    };
    let n = u64::from(m.page_count());
    let wanted = count.unsigned_abs();
    if count > 0 && wanted >= m.len {
        (0..m.page_count()).collect()
    } else if count == 0 {
        Vec::new()
    } else {
        let k = (wanted.saturating_mul(n) / m.len.max(1))
            .saturating_add(1)
            .min(n);
        let from = pick_page(m);
        (0..k as u32).map(|i| (from + i) % m.page_count()).collect()
    }
}

/// Whether page `id` of `m` is in memory (read without waiting on the disk).
fn resident(ctx: &mut Ctx, m: &PagedHash, id: u32) -> bool {
    let pages_db = ctx.engine.pages_db();
    matches!(
        ctx.engine.residency(pages_db, &m.page_key(id)),
        Residency::Resident
    )
}

/// One entry at random: a page, then an entry of it. Pages already in memory are tried first,
/// from a random one on, so a pick does not wait on a synchronous read when the request path
/// brought a page in; only if every one of them is empty are the others read. `None` if every
/// page reads empty.
pub fn random_entry(ctx: &mut Ctx, m: &PagedHash) -> Result<Option<Entry>, CmdError> {
    let n = m.page_count();
    let mut rng = rand::rng();
    let start = rng.random_range(0..n);
    for resident_only in [true, false] {
        for i in 0..n {
            let id = (start + i) % n;
            if resident_only && !resident(ctx, m, id) {
                continue;
            }
            let page = hash::page(ctx.engine, m, id, ctx.now_ms).map_err(CmdError::store)?;
            if let Some(p) = page.filter(|p| !p.is_empty()) {
                let at = rng.random_range(0..p.len());
                return Ok(p.get_index(at).map(|(k, v)| (k.to_vec(), v.to_vec())));
            }
        }
    }
    Ok(None)
}

/// `count` distinct entries at random, `count` below the value's size: pages are walked from a
/// random one on, those in memory first, each giving its share of the count; then any page, for
/// what is still missing.
pub fn sample_distinct(ctx: &mut Ctx, m: &PagedHash, count: usize) -> Result<Vec<Entry>, CmdError> {
    let n = m.page_count();
    let mut rng = rand::rng();
    let start = rng.random_range(0..n);
    let mut picked: Vec<Entry> = Vec::with_capacity(count);
    let mut chosen: HashSet<Vec<u8>> = HashSet::new();
    let len = m.len.max(1) as usize;
    for resident_only in [true, false] {
        for i in 0..n {
            if picked.len() >= count {
                return Ok(picked);
            }
            let id = (start + i) % n;
            if resident_only && !resident(ctx, m, id) {
                continue;
            }
            let page = hash::page(ctx.engine, m, id, ctx.now_ms).map_err(CmdError::store)?;
            let Some(p) = page else { continue };
            let want = count - picked.len();
            // A page's share of the count, so that a few pages in memory do not give it all.
            let take = if resident_only {
                (count.saturating_mul(p.len())).div_ceil(len).min(want)
            } else {
                want
            };
            let fresh = p.iter().filter(|(k, _)| !chosen.contains(*k));
            for (k, v) in fresh.choose_multiple(&mut rng, take) {
                chosen.insert(k.to_vec());
                picked.push((k.to_vec(), v.to_vec()));
            }
        }
    }
    Ok(picked)
}

/// What draws with repetitions (a negative count) pick from: the entries of the pages in
/// memory (the request path loaded about the count's share), or of the whole value if none is.
/// The caller draws, so a large count costs its reply, not a second copy of it.
pub fn draw_pool(ctx: &mut Ctx, m: &PagedHash) -> Result<Vec<Entry>, CmdError> {
    fn from_pages(
        ctx: &mut Ctx,
        m: &PagedHash,
        only_resident: bool,
        pool: &mut Vec<Entry>,
    ) -> Result<(), CmdError> {
        for id in 0..m.page_count() {
            if only_resident && !resident(ctx, m, id) {
                continue;
            }
            let page = hash::page(ctx.engine, m, id, ctx.now_ms).map_err(CmdError::store)?;
            if let Some(p) = page {
                pool.extend(p.iter().map(|(k, v)| (k.to_vec(), v.to_vec())));
            }
        }
        Ok(())
    }
    let mut pool: Vec<Entry> = Vec::new();
    from_pages(ctx, m, true, &mut pool)?;
    if pool.is_empty() {
        from_pages(ctx, m, false, &mut pool)?;
    }
    Ok(pool)
}
