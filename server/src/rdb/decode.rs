//! Reads one RDB-encoded value: every string, list, set, hash and sorted-set encoding Redis 7.0
//! loads (plain, ziplist, listpack, intset, quicklist v1 and v2, old string-double sorted
//! sets), and streams (type 19, in `stream.rs`). Modules, zipmaps and Redis 7.2's listpack sets
//! are refused.
//!
//! Hostile input is expected: every length is checked against the bytes that remain before
//! anything is allocated for it, so a claimed length of 2^40 fails fast without allocating.

use super::{intset, listpack, lzf, types, ziplist, Bad, R};
use crate::listval::List;
use crate::util::parse_f64;
use crate::value::Value;
use crate::zset::ZSet;
use std::collections::VecDeque;

/// A length field or one of the special string encodings.
enum Len {
    Plain(u64),
    Int(usize),
    Lzf,
}

pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(super) fn take(&mut self, n: u64) -> R<&'a [u8]> {
        if n > self.remaining() as u64 {
            return Err(Bad("truncated"));
        }
        let s = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn byte(&mut self) -> R<u8> {
        Ok(self.take(1)?[0])
    }

    fn len_or_encoding(&mut self) -> R<Len> {
        let b = self.byte()?;
        let be = |s: &[u8]| s.iter().fold(0u64, |acc, &x| (acc << 8) | x as u64);
        Ok(match b >> 6 {
            0 => Len::Plain((b & 0x3f) as u64),
            1 => Len::Plain((((b & 0x3f) as u64) << 8) | self.byte()? as u64),
            2 if b == 0x80 => Len::Plain(be(self.take(4)?)),
            2 if b == 0x81 => Len::Plain(be(self.take(8)?)),
            2 => return Err(Bad("length encoding")),
            _ => match b & 0x3f {
                0 => Len::Int(1),
                1 => Len::Int(2),
                2 => Len::Int(4),
                3 => Len::Lzf,
                _ => return Err(Bad("string encoding")),
            },
        })
    }

    pub(super) fn length(&mut self) -> R<u64> {
        match self.len_or_encoding()? {
            Len::Plain(n) => Ok(n),
            _ => Err(Bad("encoded length")),
        }
    }

    /// A count of things that each take at least `min_bytes`: refused if the rest of the
    /// payload cannot hold that many, so it is safe to preallocate.
    pub(super) fn count(&mut self, min_bytes: u64) -> R<usize> {
        let n = self.length()?;
        if n == 0 {
            return Err(Bad("empty collection"));
        }
        if n.saturating_mul(min_bytes) > self.remaining() as u64 {
            return Err(Bad("count beyond the payload"));
        }
        Ok(n as usize)
    }

    pub(super) fn string(&mut self) -> R<Vec<u8>> {
        match self.len_or_encoding()? {
            Len::Plain(n) => Ok(self.take(n)?.to_vec()),
            Len::Int(width) => {
                let b = self.take(width as u64)?;
                let u = b.iter().rev().fold(0u64, |acc, &x| (acc << 8) | x as u64);
                let shift = 64 - 8 * width as u32;
                Ok((((u << shift) as i64) >> shift).to_string().into_bytes())
            }
            Len::Lzf => {
                let clen = self.length()?;
                let len = self.length()?;
                let data = self.take(clen)?;
                let len = usize::try_from(len).map_err(|_| Bad("LZF length"))?;
                lzf::decompress(data, len).ok_or(Bad("LZF data"))
            }
        }
    }

    /// A score of the old ZSET type: a length byte (253 NaN, 254 +inf, 255 -inf) and text.
    fn string_double(&mut self) -> R<f64> {
        match self.byte()? {
            253 => Err(Bad("NaN score")),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            n => score(self.take(n as u64)?),
        }
    }

    fn binary_double(&mut self) -> R<f64> {
        let d = f64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes"));
        if d.is_nan() {
            return Err(Bad("NaN score"));
        }
        Ok(d)
    }
}

fn score(text: &[u8]) -> R<f64> {
    parse_f64(text).ok_or(Bad("score text"))
}

fn nonempty<T>(items: Vec<T>) -> R<Vec<T>> {
    if items.is_empty() {
        return Err(Bad("empty collection"));
    }
    Ok(items)
}

fn set_of(items: impl IntoIterator<Item = Vec<u8>>, capacity: usize) -> R<Value> {
    let mut s = crate::setval::Set::with_capacity(capacity);
    for m in items {
        if !s.insert(&m) {
            return Err(Bad("duplicate set member"));
        }
    }
    Ok(Value::Set(Box::new(s)))
}

fn hash_of(pairs: impl IntoIterator<Item = R<(Vec<u8>, Vec<u8>)>>, capacity: usize) -> R<Value> {
    let mut h = crate::hashval::Hash::with_capacity(capacity);
    for p in pairs {
        let (k, v) = p?;
        if h.contains_key(&k) {
            return Err(Bad("duplicate hash field"));
        }
        h.insert(k, v);
    }
    Ok(Value::Hash(Box::new(h)))
}

fn zset_of(pairs: impl IntoIterator<Item = R<(Vec<u8>, f64)>>) -> R<Value> {
    let mut z = ZSet::default();
    for p in pairs {
        let (m, s) = p?;
        if z.insert(m, s).is_some() {
            return Err(Bad("duplicate sorted set member"));
        }
    }
    Ok(Value::ZSet(z))
}

/// Splits a flat ziplist/listpack of alternating items into pairs.
fn pairs(items: Vec<Vec<u8>>) -> R<Vec<(Vec<u8>, Vec<u8>)>> {
    if !items.len().is_multiple_of(2) {
        return Err(Bad("odd number of items in a pair encoding"));
    }
    let mut it = items.into_iter();
    let mut out = Vec::with_capacity(it.len() / 2);
    while let (Some(a), Some(b)) = (it.next(), it.next()) {
        out.push((a, b));
    }
    nonempty(out)
}

fn scored(items: Vec<Vec<u8>>) -> R<Value> {
    let p = pairs(items)?;
    zset_of(p.into_iter().map(|(m, s)| Ok((m, score(&s)?))))
}

fn hashed(items: Vec<Vec<u8>>) -> R<Value> {
    let p = pairs(items)?;
    let n = p.len();
    hash_of(p.into_iter().map(Ok), n)
}

/// Reads the value in `body` (a type byte then its encoding; bytes after it are ignored).
pub fn value(body: &[u8]) -> R<Value> {
    let mut r = Reader { buf: body, pos: 0 };
    let t = r.byte()?;
    Ok(match t {
        types::STRING => Value::Str(r.string()?.into()),
        types::LIST => {
            let n = r.count(1)?;
            let mut l = VecDeque::with_capacity(n);
            for _ in 0..n {
                l.push_back(r.string()?.into());
            }
            Value::List(Box::new(List::from_deque(l)))
        }
        types::SET => {
            let n = r.count(1)?;
            let items = (0..n).map(|_| r.string()).collect::<R<Vec<_>>>()?;
            set_of(items, n)?
        }
        types::HASH => {
            let n = r.count(2)?;
            let pairs = (0..n).map(|_| Ok((r.string()?, r.string()?)));
            let pairs = pairs.collect::<R<Vec<_>>>()?;
            hash_of(pairs.into_iter().map(Ok), n)?
        }
        types::ZSET | types::ZSET_2 => {
            // A member takes at least a byte, a binary score 8, a text score 1.
            let n = r.count(if t == types::ZSET_2 { 9 } else { 2 })?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                let m = r.string()?;
                let s = if t == types::ZSET_2 {
                    r.binary_double()?
                } else {
                    r.string_double()?
                };
                items.push(Ok((m, s)));
            }
            zset_of(items)?
        }
        types::SET_INTSET => {
            let ints = nonempty(intset::parse(&r.string()?)?)?;
            let n = ints.len();
            set_of(ints.into_iter().map(|i| i.to_string().into_bytes()), n)?
        }
        types::LIST_ZIPLIST => Value::List(Box::new(List::from_deque(
            nonempty(ziplist::parse(&r.string()?)?)?
                .into_iter()
                .map(Into::into)
                .collect(),
        ))),
        types::HASH_ZIPLIST => hashed(ziplist::parse(&r.string()?)?)?,
        types::ZSET_ZIPLIST => scored(ziplist::parse(&r.string()?)?)?,
        types::HASH_LISTPACK => hashed(listpack::parse(&r.string()?)?)?,
        types::ZSET_LISTPACK => scored(listpack::parse(&r.string()?)?)?,
        types::LIST_QUICKLIST | types::LIST_QUICKLIST_2 => {
            let nodes = r.count(2)?;
            let mut l = VecDeque::new();
            for _ in 0..nodes {
                if t == types::LIST_QUICKLIST {
                    // Empty nodes are skipped, as Redis does.
                    l.extend(ziplist::parse(&r.string()?)?.into_iter().map(Into::into));
                    continue;
                }
                const PLAIN: u64 = 1;
                const PACKED: u64 = 2;
                match r.length()? {
                    PLAIN => l.push_back(r.string()?.into()),
                    PACKED => l.extend(listpack::parse(&r.string()?)?.into_iter().map(Into::into)),
                    _ => return Err(Bad("quicklist container")),
                }
            }
            if l.is_empty() {
                return Err(Bad("empty list"));
            }
            Value::List(Box::new(List::from_deque(l)))
        }
        types::STREAM_LISTPACKS_2 => Value::Stream(Box::new(super::stream::decode(&mut r)?)),
        _ => return Err(Bad("unsupported value type")),
    })
}
