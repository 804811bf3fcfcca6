//! Redis values as kvtier keeps them in the cache, and their on-disk payloads.

use crate::paged::hash::PagedHash;
use crate::paged::list::PagedList;
use crate::paged::stream::PagedStream;
use crate::paged::zset::PagedZSet;
use crate::stream::Stream;
use crate::zset::ZSet;
use kvtier_core::{CacheValue, StoreError};

/// A string value's bytes (see [`Value::Str`]): the same 24 bytes as a `Vec<u8>`.
pub type StrBuf = smallvec::SmallVec<[u8; 16]>;

#[derive(Debug, Clone, PartialEq)]
// Boxed collections on purpose (see below): clippy's `box_collection` assumes the box buys
// nothing, but here it keeps every other key's value small.
#[allow(clippy::box_collection)]
pub enum Value {
    /// Up to 16 bytes inline (counters, flags, short tokens): no allocation of its own, and
    /// no pointer to chase when the key is read.
    Str(StrBuf),
    // Every variant but `Str` is boxed: a `Value` is then 32 bytes and its `Arc` allocation 48
    // (it was 80 and 96 with the largest variant, a hash, inline), and most keys are strings.
    List(Box<crate::listval::List>),
    /// In insertion order, as Redis keeps a small hash (a listpack): HGETALL, HKEYS and DUMP
    /// list the fields in the order they were added.
    Hash(Box<crate::hashval::Hash>),
    Set(Box<crate::setval::Set>),
    ZSet(ZSet),
    /// A stream carries groups and node bookkeeping.
    Stream(Box<Stream>),
    /// A hash stored in pages (see `paged`): the manifest only; the fields are in page records.
    PagedHash(Box<PagedHash>),
    /// A list stored in pages: the manifest of its segments only.
    PagedList(Box<PagedList>),
    /// A set stored in pages: the same manifest and pages as a paged hash, every member a
    /// field with an empty value.
    PagedSet(Box<PagedHash>),
    /// A sorted set stored in pages: the manifest of its member index and score segments.
    PagedZSet(Box<PagedZSet>),
    /// A stream stored in pages: its manifest (everything but the entries, and the page
    /// index).
    PagedStream(Box<PagedStream>),
}

const TAG_STR: u8 = 0;
const TAG_LIST: u8 = 1;
const TAG_HASH: u8 = 2;
const TAG_SET: u8 = 3;
const TAG_ZSET: u8 = 4;
const TAG_STREAM: u8 = 5;
const TAG_PAGED_HASH: u8 = 6;
const TAG_PAGED_LIST: u8 = 7;
const TAG_PAGED_SET: u8 = 8;
const TAG_PAGED_ZSET: u8 = 9;
const TAG_PAGED_STREAM: u8 = 10;
/// A segment page of a paged sorted set: a sorted set's payload, loaded as a page (a sorted
/// run; see `zset::ZSet`). Pages written before this tag carry `TAG_ZSET`.
const TAG_ZSET_PAGE: u8 = 11;

/// Whether a record type tag is a paged value's manifest (the page collector's mark scan reads
/// only those).
pub fn is_paged_tag(tag: u8) -> bool {
    matches!(
        tag,
        TAG_PAGED_HASH | TAG_PAGED_LIST | TAG_PAGED_SET | TAG_PAGED_ZSET | TAG_PAGED_STREAM
    )
}

/// The page generation of a manifest, read from the first bytes of its record's payload (a
/// typed scan's `payload_heads`) without reading or decoding the whole manifest: every manifest
/// encoding puts it at a fixed place at the start. `None` for another tag or too few bytes.
pub fn paged_gen_of_head(tag: u8, payload: &[u8]) -> Option<u64> {
    let at = match tag {
        TAG_PAGED_HASH | TAG_PAGED_SET | TAG_PAGED_LIST => 0,
        // After the manifest's version byte.
        TAG_PAGED_ZSET | TAG_PAGED_STREAM => 1,
        _ => return None,
    };
    let b: [u8; 8] = payload.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(b))
}

/// The name TYPE reports for a record's type tag (of a key that is only on disk).
pub fn type_name_of_tag(tag: u8) -> Option<&'static str> {
    Some(match tag {
        TAG_STR => "string",
        TAG_LIST | TAG_PAGED_LIST => "list",
        TAG_HASH | TAG_PAGED_HASH => "hash",
        TAG_SET | TAG_PAGED_SET => "set",
        TAG_ZSET | TAG_ZSET_PAGE | TAG_PAGED_ZSET => "zset",
        TAG_STREAM | TAG_PAGED_STREAM => "stream",
        _ => return None,
    })
}

impl Value {
    /// The name TYPE reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) | Value::PagedList(_) => "list",
            Value::Hash(_) | Value::PagedHash(_) => "hash",
            Value::Set(_) | Value::PagedSet(_) => "set",
            Value::ZSet(_) | Value::PagedZSet(_) => "zset",
            Value::Stream(_) | Value::PagedStream(_) => "stream",
        }
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.0.len() < n {
            return Err(StoreError::Corruption("value payload truncated".into()));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u32(&mut self) -> Result<u32, StoreError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }
    fn bytes(&mut self) -> Result<Vec<u8>, StoreError> {
        Ok(self.slice()?.to_vec())
    }
    /// A length-prefixed part, borrowed from the record.
    fn slice(&mut self) -> Result<&'a [u8], StoreError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn f64(&mut self) -> Result<f64, StoreError> {
        Ok(f64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }
    fn count(&mut self) -> Result<usize, StoreError> {
        let n = self.u32()? as usize;
        // Every element takes at least 4 bytes: reject counts the payload cannot hold.
        if n > self.0.len() / 4 {
            return Err(StoreError::Corruption(
                "value element count out of range".into(),
            ));
        }
        Ok(n)
    }
}

impl CacheValue for Value {
    fn mem_size(&self) -> usize {
        match self {
            // (Only what it allocates: inline bytes are part of the entry.)
            Value::Str(s) if s.spilled() => s.capacity(),
            Value::Str(_) => 0,
            Value::List(l) => l.mem_size(),
            Value::Hash(h) => h.mem_size(),
            Value::Set(s) => s.mem_size(),
            Value::ZSet(z) => z.mem_size(),
            Value::Stream(s) => s.mem_size(),
            Value::PagedHash(_) | Value::PagedSet(_) => std::mem::size_of::<PagedHash>(),
            Value::PagedList(m) => m.mem_size(),
            Value::PagedZSet(m) => m.mem_size(),
            Value::PagedStream(m) => m.mem_size(),
        }
    }

    fn type_tag(&self) -> u8 {
        match self {
            Value::Str(_) => TAG_STR,
            Value::List(_) => TAG_LIST,
            Value::Hash(_) => TAG_HASH,
            Value::Set(_) => TAG_SET,
            Value::ZSet(z) if z.is_page() => TAG_ZSET_PAGE,
            Value::ZSet(_) => TAG_ZSET,
            Value::Stream(_) => TAG_STREAM,
            Value::PagedHash(_) => TAG_PAGED_HASH,
            Value::PagedList(_) => TAG_PAGED_LIST,
            Value::PagedSet(_) => TAG_PAGED_SET,
            Value::PagedZSet(_) => TAG_PAGED_ZSET,
            Value::PagedStream(_) => TAG_PAGED_STREAM,
        }
    }

    fn encode_payload(&self, out: &mut Vec<u8>) {
        match self {
            Value::Str(s) => out.extend_from_slice(s),
            Value::List(l) => {
                out.extend_from_slice(&(l.len() as u32).to_le_bytes());
                l.iter().for_each(|e| put_bytes(out, e));
            }
            Value::Hash(h) => {
                out.extend_from_slice(&(h.len() as u32).to_le_bytes());
                for (k, v) in h.iter() {
                    put_bytes(out, k);
                    put_bytes(out, v);
                }
            }
            Value::Set(s) => {
                out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                s.iter().for_each(|m| put_bytes(out, m));
            }
            Value::ZSet(z) => {
                out.extend_from_slice(&(z.len() as u32).to_le_bytes());
                for (m, score) in z.iter() {
                    out.extend_from_slice(&score.to_le_bytes());
                    put_bytes(out, m);
                }
            }
            Value::Stream(s) => crate::stream::codec::encode(s, out),
            Value::PagedHash(m) | Value::PagedSet(m) => m.encode(out),
            Value::PagedList(m) => m.encode(out),
            Value::PagedZSet(m) => m.encode(out),
            Value::PagedStream(m) => m.encode(out),
        }
    }

    fn owns_pages(&self) -> bool {
        matches!(
            self,
            Value::PagedHash(_)
                | Value::PagedList(_)
                | Value::PagedSet(_)
                | Value::PagedZSet(_)
                | Value::PagedStream(_)
        )
    }

    fn linked_keys(&self) -> Vec<Vec<u8>> {
        match self {
            Value::PagedList(m) => m.linked_keys(),
            Value::PagedStream(m) => m.linked_keys(),
            Value::PagedZSet(m) => m.linked_keys(),
            _ => Vec::new(),
        }
    }

    fn linked_writes(
        &self,
        out: &mut Vec<kvtier_core::LinkedWrite>,
    ) -> Option<kvtier_core::LinkedCommit> {
        match self {
            Value::PagedList(m) => m.linked_writes(out),
            Value::PagedStream(m) => m.linked_writes(out),
            Value::PagedZSet(m) => m.linked_writes(out),
            _ => None,
        }
    }

    fn link(&mut self, parts: Vec<Option<Self>>) -> Result<(), StoreError> {
        let bytes = parts
            .into_iter()
            .map(|p| match p {
                None => Ok(None),
                Some(Value::Str(b)) => Ok(Some(b.into_vec())),
                Some(_) => Err(StoreError::Corruption(
                    "a part of a paged value's manifest holds another type".into(),
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
        match self {
            Value::PagedList(m) => m.link(bytes),
            Value::PagedStream(m) => m.link(bytes),
            Value::PagedZSet(m) => m.link(bytes),
            _ => Err(StoreError::Corruption(
                "parts for a value of one record".into(),
            )),
        }
    }

    fn decode_payload(tag: u8, payload: &[u8]) -> Result<Self, StoreError> {
        let mut r = Reader(payload);
        let v = match tag {
            TAG_STR => return Ok(Value::Str(StrBuf::from_slice(payload))),
            TAG_LIST => {
                let n = r.count()?;
                let mut l = crate::listval::List::default();
                for _ in 0..n {
                    l.push_back(r.bytes()?);
                }
                Value::List(Box::new(l))
            }
            TAG_HASH => {
                let n = r.count()?;
                let mut h = crate::hashval::Hash::with_capacity(n);
                for _ in 0..n {
                    let k = r.bytes()?;
                    h.insert(k, r.bytes()?);
                }
                Value::Hash(Box::new(h))
            }
            TAG_SET => {
                let n = r.count()?;
                let mut s = crate::setval::Set::with_capacity(n);
                for _ in 0..n {
                    s.insert(r.slice()?);
                }
                Value::Set(Box::new(s))
            }
            TAG_ZSET | TAG_ZSET_PAGE => {
                let n = r.count()?;
                let mut z = if tag == TAG_ZSET_PAGE {
                    ZSet::page()
                } else {
                    ZSet::default()
                };
                z.reserve_decoded(n);
                for _ in 0..n {
                    let score = r.f64()?;
                    z.push_decoded(r.bytes()?, score);
                }
                Value::ZSet(z)
            }
            TAG_PAGED_HASH => {
                return PagedHash::decode(payload).map(|m| Value::PagedHash(Box::new(m)))
            }
            TAG_PAGED_LIST => {
                return PagedList::decode(payload).map(|m| Value::PagedList(Box::new(m)))
            }
            TAG_PAGED_SET => {
                return PagedHash::decode(payload).map(|m| Value::PagedSet(Box::new(m)))
            }
            TAG_PAGED_ZSET => {
                return PagedZSet::decode(payload).map(|m| Value::PagedZSet(Box::new(m)))
            }
            TAG_PAGED_STREAM => {
                return PagedStream::decode(payload).map(|m| Value::PagedStream(Box::new(m)))
            }
            TAG_STREAM => {
                return crate::stream::codec::decode(payload)
                    .map(|s| Value::Stream(Box::new(s)))
                    .map_err(|e| StoreError::Corruption(e.into()))
            }
            t => {
                return Err(StoreError::Corruption(format!(
                    "unknown value type tag {t}"
                )))
            }
        };
        if !r.0.is_empty() {
            return Err(StoreError::Corruption("trailing bytes after value".into()));
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value is 32 bytes (its `Arc` allocation 48): every key pays for the largest variant.
    #[test]
    fn a_value_is_no_larger_than_a_string_and_its_tag() {
        assert!(
            std::mem::size_of::<Value>() <= 32,
            "{}",
            std::mem::size_of::<Value>()
        );
    }

    #[test]
    fn every_type_round_trips() {
        let mut z = ZSet::default();
        z.insert(b"a".to_vec(), 1.5);
        z.insert(b"b".to_vec(), -2.0);
        let values = vec![
            Value::Str(b"hello\0".to_vec().into()),
            Value::List(Box::new(
                vec![b"x".to_vec(), b"".to_vec()].into_iter().collect(),
            )),
            Value::Hash(Box::new(
                [(b"f".to_vec(), b"v".to_vec())].into_iter().collect(),
            )),
            Value::Set(Box::new(
                [b"m".to_vec(), b"n".to_vec()].into_iter().collect(),
            )),
            Value::ZSet(z),
            Value::PagedSet(Box::new(PagedHash {
                gen: 7,
                level: 2,
                split: 1,
                len: 40,
                bytes: 900,
            })),
        ];
        for v in values {
            let mut out = Vec::new();
            v.encode_payload(&mut out);
            assert_eq!(Value::decode_payload(v.type_tag(), &out).unwrap(), v);
            if !out.is_empty() && v.type_tag() != TAG_STR {
                assert!(Value::decode_payload(v.type_tag(), &out[..out.len() - 1]).is_err());
            }
        }
    }

    /// A segment page is written under its own tag and loads as a page; a page written with
    /// the plain sorted-set tag (before that tag existed) loads as the same members.
    #[test]
    fn a_zset_page_keeps_its_kind_through_a_record() {
        let mut page = ZSet::page();
        for i in 0..300u32 {
            page.insert_absent(format!("m{i:03}").into_bytes(), f64::from(i / 10));
        }
        let v = Value::ZSet(page.clone());
        assert_eq!(v.type_tag(), TAG_ZSET_PAGE);
        assert_eq!(type_name_of_tag(TAG_ZSET_PAGE), Some("zset"));
        let mut out = Vec::new();
        v.encode_payload(&mut out);
        match Value::decode_payload(TAG_ZSET_PAGE, &out).unwrap() {
            Value::ZSet(z) => assert!(z.is_page() && z == page),
            other => panic!("{other:?}"),
        }
        match Value::decode_payload(TAG_ZSET, &out).unwrap() {
            Value::ZSet(mut z) => {
                assert!(!z.is_page() && z == page);
                z.make_page();
                assert!(z.is_page() && z == page);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(Value::ZSet(ZSet::default()).type_tag(), TAG_ZSET);
    }

    /// The page collector reads a manifest's generation from the start of its record: every
    /// manifest kind keeps it where `paged_gen_of_head` looks, and other values have none.
    #[test]
    fn a_manifests_generation_is_read_from_its_first_bytes() {
        let gen = 0x0102_0304_0506_0708;
        let hash = PagedHash {
            gen,
            ..PagedHash::default()
        };
        let mut zset = PagedZSet::default();
        zset.index.gen = gen;
        let mut stream = PagedStream::default();
        stream.idx.gen = gen;
        let manifests = vec![
            Value::PagedHash(Box::new(hash)),
            Value::PagedSet(Box::new(hash)),
            Value::PagedList(Box::new(PagedList::new(gen, 0, Default::default()))),
            Value::PagedZSet(Box::new(zset)),
            Value::PagedStream(Box::new(stream)),
        ];
        for v in manifests {
            let mut out = Vec::new();
            v.encode_payload(&mut out);
            let head = &out[..out.len().min(kvtier_core::encoding::PAYLOAD_HEAD)];
            assert_eq!(paged_gen_of_head(v.type_tag(), head), Some(gen), "{v:?}");
        }
        let mut out = Vec::new();
        let s = Value::Str(vec![7; 20].into());
        s.encode_payload(&mut out);
        assert_eq!(paged_gen_of_head(s.type_tag(), &out), None);
        assert_eq!(paged_gen_of_head(TAG_PAGED_ZSET, &[1, 2, 3]), None);
    }
}
