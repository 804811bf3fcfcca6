//! Paged hashes: a manifest and pages partitioned by field hash with linear hashing.
//!
//! The hash has `2^level + split` pages. A field lives in page `h mod 2^level`, or in page
//! `h mod 2^(level+1)` when that first choice is below `split` (already split this round). When
//! the hash outgrows its pages (more than `page-bytes` per page on average), page `split` is
//! split in two: about half its fields move to the new last page. Growth therefore touches one
//! page at a time, and a page number never decreases for a field: an HSCAN by page number sees
//! every field present for the whole scan.

use super::{new_gen, page_key, share_page, stable_hash};
use crate::commands::typed::Hash;
use crate::value::Value;
use kvtier_core::{Engine, StoreError};

/// The manifest of a paged hash, stored under the hash's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PagedHash {
    /// Generation: the prefix of every page key of this value.
    pub gen: u64,
    /// Linear hashing round: `2^level` pages at its start.
    pub level: u8,
    /// Pages split in this round.
    pub split: u32,
    /// Number of fields.
    pub len: u64,
    /// Bytes of fields and values (with a small per-field overhead), to decide when to split.
    pub bytes: u64,
}

/// Bytes a field is counted for beyond its field and value.
const FIELD_OVERHEAD: u64 = 8;
/// Encoded manifest length.
pub const MANIFEST_LEN: usize = 8 + 1 + 4 + 8 + 8;

/// Counted size of one field.
pub fn field_bytes(f: &[u8], v: &[u8]) -> u64 {
    (f.len() + v.len()) as u64 + FIELD_OVERHEAD
}

impl PagedHash {
    /// Number of pages.
    pub fn page_count(&self) -> u32 {
        (1u32 << self.level) + self.split
    }

    /// The page holding `field`.
    pub fn page_of(&self, field: &[u8]) -> u32 {
        let h = stable_hash(field);
        let low = (h & ((1u64 << self.level) - 1)) as u32;
        if low < self.split {
            (h & ((1u64 << (self.level + 1)) - 1)) as u32
        } else {
            low
        }
    }

    /// The key of page `id`.
    pub fn page_key(&self, id: u32) -> super::PageKey {
        page_key(self.gen, id)
    }

    /// Whether the next write may split a page, given `page_bytes`.
    pub fn wants_split(&self, page_bytes: u64) -> bool {
        self.bytes > u64::from(self.page_count()) * page_bytes.max(1)
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.gen.to_le_bytes());
        out.push(self.level);
        out.extend_from_slice(&self.split.to_le_bytes());
        out.extend_from_slice(&self.len.to_le_bytes());
        out.extend_from_slice(&self.bytes.to_le_bytes());
    }

    pub fn decode(p: &[u8]) -> Result<Self, StoreError> {
        let bad = || StoreError::Corruption("damaged paged hash manifest".into());
        if p.len() != MANIFEST_LEN {
            return Err(bad());
        }
        let u64_at = |i: usize| u64::from_le_bytes(p[i..i + 8].try_into().expect("8 bytes"));
        let m = PagedHash {
            gen: u64_at(0),
            level: p[8],
            split: u32::from_le_bytes(p[9..13].try_into().expect("4 bytes")),
            len: u64_at(13),
            bytes: u64_at(21),
        };
        if m.level > 30 || m.split >= 1u32 << m.level {
            return Err(bad());
        }
        Ok(m)
    }
}

/// A page for reading; `None` when the store has no such page (read as empty).
pub fn page<'e>(
    engine: &'e mut Engine<Value>,
    m: &PagedHash,
    id: u32,
    now_ms: i64,
) -> Result<Option<&'e Hash>, StoreError> {
    let key = m.page_key(id);
    let pages = engine.pages_db();
    Ok(match engine.get_or_load(pages, &key, now_ms)? {
        Some(Value::Hash(h)) => Some(h),
        _ => None,
    })
}

/// A page for changing it (dirty from now on), created empty if the store has none.
pub fn page_mut<'e>(
    engine: &'e mut Engine<Value>,
    m: &PagedHash,
    id: u32,
    now_ms: i64,
) -> Result<&'e mut Hash, StoreError> {
    let key = m.page_key(id);
    let pages = engine.pages_db();
    if !matches!(
        engine.get_or_load(pages, &key, now_ms)?,
        Some(Value::Hash(_))
    ) {
        engine
            .db(pages, now_ms)
            .insert(&key, Value::Hash(Box::default()));
    }
    match engine.db(pages, now_ms).into_get_mut(&key) {
        Some(Value::Hash(h)) => Ok(h),
        _ => unreachable!("page just made a hash"),
    }
}

/// A field's value.
pub fn get(
    engine: &mut Engine<Value>,
    m: &PagedHash,
    field: &[u8],
    now_ms: i64,
) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(page(engine, m, m.page_of(field), now_ms)?.and_then(|h| h.get(field).map(<[u8]>::to_vec)))
}

/// Sets a field, updating `m` (the caller stores it back); whether the field is new.
pub fn set(
    engine: &mut Engine<Value>,
    m: &mut PagedHash,
    field: Vec<u8>,
    value: Vec<u8>,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let added = field_bytes(&field, &value);
    let page = page_mut(engine, m, m.page_of(&field), now_ms)?;
    let old = page.insert(field.clone(), value);
    match &old {
        Some(v) => m.bytes = m.bytes - field_bytes(&field, v) + added,
        None => {
            m.bytes += added;
            m.len += 1;
        }
    }
    Ok(old.is_none())
}

/// Removes a field, updating `m`; whether it was there.
pub fn remove(
    engine: &mut Engine<Value>,
    m: &mut PagedHash,
    field: &[u8],
    now_ms: i64,
) -> Result<bool, StoreError> {
    let id = m.page_of(field);
    // Read first: a field that is not there leaves the page clean.
    if !page(engine, m, id, now_ms)?.is_some_and(|h| h.contains_key(field)) {
        return Ok(false);
    }
    let page = page_mut(engine, m, id, now_ms)?;
    if let Some(v) = page.swap_remove(field) {
        m.bytes = m.bytes.saturating_sub(field_bytes(field, &v));
        m.len -= 1;
    }
    Ok(true)
}

/// Splits page `m.split` if the hash outgrew its pages (one split per call). The new page is a
/// key the store cannot hold yet: created without a load.
pub fn maybe_split(
    engine: &mut Engine<Value>,
    m: &mut PagedHash,
    page_bytes: u64,
    now_ms: i64,
) -> Result<(), StoreError> {
    if !m.wants_split(page_bytes) || m.level >= 30 {
        return Ok(());
    }
    let from = m.split;
    let to = (1u32 << m.level) + from;
    let mask = (1u64 << (m.level + 1)) - 1;
    let src = page_mut(engine, m, from, now_ms)?;
    let moving: Vec<Vec<u8>> = src
        .keys()
        .filter(|f| (stable_hash(f) & mask) as u32 == to)
        .map(<[u8]>::to_vec)
        .collect();
    let mut dst = Hash::with_capacity(moving.len());
    for f in moving {
        if let Some(v) = src.swap_remove(&f) {
            dst.insert(f, v);
        }
    }
    // The page keeps the room it grew for its whole content, now half of it: given back, or
    // every page of a large hash carries about as much empty room as it holds.
    src.shrink_to_fit();
    let pages = engine.pages_db();
    engine
        .db(pages, now_ms)
        .insert_new(&m.page_key(to), Value::Hash(Box::new(dst)));
    m.split += 1;
    if m.split == 1u32 << m.level {
        m.level += 1;
        m.split = 0;
    }
    Ok(())
}

/// Turns `h` into pages of about `page_bytes` each under a new generation; returns the manifest
/// (the caller stores it under the key in place of `h`).
pub fn page_out(engine: &mut Engine<Value>, h: &Hash, page_bytes: u64, now_ms: i64) -> PagedHash {
    page_out_pairs(engine, h.iter(), page_bytes, now_ms)
}

/// Turns the `(field, value)` pairs (distinct fields) into pages under a new generation: the
/// shared part of paging out a hash and a set (whose members are fields with empty values).
pub fn page_out_pairs<'a>(
    engine: &mut Engine<Value>,
    pairs: impl Iterator<Item = (&'a [u8], &'a [u8])> + Clone,
    page_bytes: u64,
    now_ms: i64,
) -> PagedHash {
    let (len, bytes) = pairs.clone().fold((0u64, 0u64), |(n, b), (f, v)| {
        (n + 1, b + field_bytes(f, v))
    });
    let want = bytes.div_ceil(page_bytes.max(1)).max(1);
    // A power of two at or above the page count wanted: split pointer 0.
    let level = (64 - (want - 1).leading_zeros()).min(30) as u8;
    let m = PagedHash {
        gen: new_gen(),
        level,
        split: 0,
        len,
        bytes,
    };
    let mut pages: Vec<Hash> = (0..m.page_count()).map(|_| Hash::new()).collect();
    for (f, v) in pairs {
        pages[m.page_of(f) as usize].insert(f.to_vec(), v.to_vec());
    }
    let pages_db = engine.pages_db();
    let mut db = engine.db(pages_db, now_ms);
    for (id, p) in pages.into_iter().enumerate() {
        db.insert_new(&m.page_key(id as u32), Value::Hash(Box::new(p)));
    }
    m
}

/// Visits every field (every page is made resident in turn).
pub fn for_each(
    engine: &mut Engine<Value>,
    m: &PagedHash,
    now_ms: i64,
    mut f: impl FnMut(&[u8], &[u8]),
) -> Result<(), StoreError> {
    for id in 0..m.page_count() {
        if let Some(p) = page(engine, m, id, now_ms)? {
            for (k, v) in p.iter() {
                f(k, v);
            }
        }
    }
    Ok(())
}

/// The whole hash in one map (DUMP, COPY, SORT and other whole-value uses).
pub fn materialize(
    engine: &mut Engine<Value>,
    m: &PagedHash,
    now_ms: i64,
) -> Result<Hash, StoreError> {
    let mut out = Hash::with_capacity(m.len as usize);
    for_each(engine, m, now_ms, |f, v| {
        out.insert(f.to_vec(), v.to_vec());
    })?;
    Ok(out)
}

/// The fields alone in one set: the members of a paged set (whose pages are a paged hash's
/// with empty values), for whole-value uses (SMEMBERS sources of SINTER, DUMP, SORT).
pub fn members(
    engine: &mut Engine<Value>,
    m: &PagedHash,
    now_ms: i64,
) -> Result<crate::commands::typed::Set, StoreError> {
    let mut out = crate::commands::typed::Set::with_capacity(m.len as usize);
    for_each(engine, m, now_ms, |f, _| {
        out.insert(f);
    })?;
    Ok(out)
}

/// A copy under a new generation (COPY): every page is copied.
pub fn deep_copy(
    engine: &mut Engine<Value>,
    m: &PagedHash,
    now_ms: i64,
) -> Result<PagedHash, StoreError> {
    let copy = PagedHash {
        gen: new_gen(),
        ..*m
    };
    let pages_db = engine.pages_db();
    for id in 0..m.page_count() {
        let to = copy.page_key(id);
        if page(engine, m, id, now_ms)?.is_some() {
            share_page(engine, &m.page_key(id), &to, now_ms)?;
        } else {
            engine
                .db(pages_db, now_ms)
                .insert_new(&to, Value::Hash(Box::default()));
        }
    }
    Ok(copy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trip_and_damage() {
        let m = PagedHash {
            gen: 42,
            level: 3,
            split: 5,
            len: 1000,
            bytes: 123_456,
        };
        let mut out = Vec::new();
        m.encode(&mut out);
        assert_eq!(out.len(), MANIFEST_LEN);
        assert_eq!(PagedHash::decode(&out).unwrap(), m);
        assert!(PagedHash::decode(&out[1..]).is_err());
        let mut bad = out.clone();
        bad[8] = 2; // split 5 is not below 2^2
        assert!(PagedHash::decode(&bad).is_err());
    }

    /// A page split in two gives back the room it had grown for what moved out.
    #[test]
    fn a_split_page_keeps_no_room_for_what_moved_out() {
        let mut e = crate::testing::engine();
        let h: Hash = (0..4000u32)
            .map(|i| (format!("f{i}").into_bytes(), b"v".to_vec()))
            .collect();
        // One page (page_bytes above the whole hash), then many small fields added to it.
        let mut m = page_out(&mut e, &h, u64::MAX / 2, 1);
        assert_eq!(m.page_count(), 1);
        let half = m.bytes / 2;
        maybe_split(&mut e, &mut m, half, 1).unwrap();
        assert_eq!(m.page_count(), 2);
        let p = page(&mut e, &m, 0, 1).unwrap().unwrap();
        assert!(p.len() < 3000 && p.len() > 1000, "{}", p.len());
        assert!(
            p.capacity() <= p.len() + p.len() / 8,
            "{} for {}",
            p.capacity(),
            p.len()
        );
    }

    #[test]
    fn linear_hashing_addresses_every_page_and_splits_consistently() {
        let fields: Vec<Vec<u8>> = (0..4000u32).map(|i| i.to_string().into_bytes()).collect();
        let mut m = PagedHash {
            gen: 1,
            level: 0,
            split: 0,
            len: 0,
            bytes: 0,
        };
        for _ in 0..37 {
            let before: Vec<u32> = fields.iter().map(|f| m.page_of(f)).collect();
            let (from, to) = (m.split, (1u32 << m.level) + m.split);
            m.split += 1;
            if m.split == 1 << m.level {
                m.level += 1;
                m.split = 0;
            }
            let mut used = vec![false; m.page_count() as usize];
            for (f, b) in fields.iter().zip(before) {
                let a = m.page_of(f);
                used[a as usize] = true;
                // A split moves fields only from the split page to the new page.
                assert!(a == b || (b == from && a == to), "{b} -> {a}");
            }
            assert!(
                used.iter().all(|&u| u),
                "an empty page at {} pages",
                m.page_count()
            );
        }
    }
}
