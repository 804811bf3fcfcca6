//! Writes a value in the RDB encoding Redis 7.0 would pick for it, so that DUMP output equals
//! redis-server's wherever kvtier knows the same thing Redis does:
//!
//! * strings: integer encoding for canonical integers of up to 11 characters that fit 32 bits,
//!   LZF for longer strings when it saves at least 4 bytes (the same compressor as Redis), raw
//!   otherwise — byte for byte as Redis;
//! * lists: quicklist v2 of PACKED listpack nodes, split as `RPUSH` would fill them under
//!   `list-max-listpack-size`, interior nodes LZF-compressed under `list-compress-depth` (a
//!   list Redis built by pushing at the head may be split differently; both load anywhere);
//! * sets: intset (sorted, as Redis) or plain set; hashes: listpack or plain hash; sorted sets:
//!   listpack (sorted by score, as Redis) or ZSET_2 with binary doubles, highest score first —
//!   chosen by the same thresholds as `OBJECT ENCODING`. Sets and hashes come out in kvtier's
//!   own order, which is not Redis's insertion or hash-table order: the same content, other bytes.

use super::{intset, listpack, lzf, types};
use crate::util::{fmt_double, parse_i64};
use crate::value::Value;

/// An RDB length: 6 bits, 14 bits (big-endian), or a marker byte and a 32/64-bit big-endian.
pub fn length(n: u64, out: &mut Vec<u8>) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.extend_from_slice(&[0x40 | (n >> 8) as u8, n as u8]);
    } else if n <= u32::MAX as u64 {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// An RDB string as Redis's `rdbSaveRawString` writes it (integer, LZF or raw).
pub fn string(s: &[u8], out: &mut Vec<u8>) {
    if s.len() <= 11 {
        if let Some(v) = parse_i64(s) {
            if let Ok(v) = i8::try_from(v) {
                out.extend_from_slice(&[0xC0, v as u8]);
                return;
            } else if let Ok(v) = i16::try_from(v) {
                out.push(0xC1);
                out.extend_from_slice(&v.to_le_bytes());
                return;
            } else if let Ok(v) = i32::try_from(v) {
                out.push(0xC2);
                out.extend_from_slice(&v.to_le_bytes());
                return;
            }
        }
    }
    if s.len() > 20 {
        if let Some(c) = lzf::compress(s, s.len() - 4) {
            out.push(0xC3);
            length(c.len() as u64, out);
            length(s.len() as u64, out);
            out.extend_from_slice(&c);
            return;
        }
    }
    length(s.len() as u64, out);
    out.extend_from_slice(s);
}

/// The byte limits of a quicklist node for a negative `list-max-listpack-size` (-1 … -5).
const NODE_BYTES: [usize; 5] = [4096, 8192, 16384, 32768, 65536];
/// A node never grows past this many bytes when its limit is a count.
const SAFETY_BYTES: usize = 8192;
/// What Redis adds to an element's length to estimate its growth of a node.
const ENTRY_OVERHEAD: usize = 8;

/// Whether a node of `bytes` bytes and `count` elements takes one more of `len` bytes, as
/// Redis's quicklist decides when pushing at the tail.
fn node_takes(bytes: usize, count: usize, len: usize, fill: i64) -> bool {
    let grown = bytes + len + ENTRY_OVERHEAD;
    if fill < 0 {
        let level = ((-fill - 1) as usize).min(NODE_BYTES.len() - 1);
        return grown <= NODE_BYTES[level];
    }
    grown <= SAFETY_BYTES && (count as i64) < fill
}

/// Quicklist nodes under this size are never compressed.
const COMPRESS_MIN_BYTES: usize = 48;
/// Compression must save more than this many bytes to be kept.
const COMPRESS_MIN_GAIN: usize = 8;

/// The list as a quicklist of listpacks. With `list-compress-depth` N > 0, Redis keeps every
/// node but the N at each end LZF-compressed, and DUMP writes those nodes compressed.
fn list(items: &crate::listval::List, shape: ListShape, out: &mut Vec<u8>) {
    let fill = shape.fill;
    let mut nodes: Vec<Vec<u8>> = Vec::new();
    let mut node = listpack::Writer::default();
    for item in items.iter() {
        if node.count() > 0 && !node_takes(node.size(), node.count(), item.len(), fill) {
            nodes.push(std::mem::take(&mut node).finish());
        }
        node.push(item);
    }
    if node.count() > 0 {
        nodes.push(node.finish());
    }
    out.push(types::LIST_QUICKLIST_2);
    length(nodes.len() as u64, out);
    let count = nodes.len();
    for (i, n) in nodes.into_iter().enumerate() {
        const PACKED: u64 = 2;
        length(PACKED, out);
        let depth = shape.compress_depth;
        let interior = depth > 0 && i >= depth && i + depth < count;
        let compressed = (interior && n.len() >= COMPRESS_MIN_BYTES)
            .then(|| lzf::compress(&n, n.len()))
            .flatten()
            .filter(|c| c.len() + COMPRESS_MIN_GAIN < n.len());
        match compressed {
            Some(c) => {
                out.push(0xC3);
                length(c.len() as u64, out);
                length(n.len() as u64, out);
                out.extend_from_slice(&c);
            }
            None => string(&n, out),
        }
    }
}

/// A score as Redis 7.0 stores it in a listpack: integral scores within ±2^62 as integers
/// (whatever their size, e.g. 2^60), the rest as `%.17g` text (`inf`, `-inf`).
fn listpack_score(score: f64) -> String {
    const LIMIT: f64 = (1u64 << 62) as f64;
    if score.fract() == 0.0 && (-LIMIT..=LIMIT).contains(&score) {
        (score as i64).to_string()
    } else {
        fmt_double(score)
    }
}

/// How lists are cut into quicklist nodes: `list-max-listpack-size` and `list-compress-depth`.
#[derive(Debug, Clone, Copy)]
pub struct ListShape {
    pub fill: i64,
    pub compress_depth: usize,
}

/// `v`'s type byte and encoding; `encoding` is what `OBJECT ENCODING` says for it.
pub fn value(v: &Value, encoding: &str, shape: ListShape) -> Vec<u8> {
    let mut out = Vec::new();
    match v {
        Value::Str(s) => {
            out.push(types::STRING);
            string(s, &mut out);
        }
        Value::List(l) => list(l, shape, &mut out),
        Value::Set(s) if encoding == "intset" => {
            let mut ints: Vec<i64> = s.iter().filter_map(parse_i64).collect();
            out.push(types::SET_INTSET);
            string(&intset::build(&mut ints), &mut out);
        }
        Value::Set(s) => {
            out.push(types::SET);
            length(s.len() as u64, &mut out);
            s.iter().for_each(|m| string(m, &mut out));
        }
        Value::Hash(h) if encoding == "listpack" => {
            let mut lp = listpack::Writer::default();
            for (k, v) in h.iter() {
                lp.push(k);
                lp.push(v);
            }
            out.push(types::HASH_LISTPACK);
            string(&lp.finish(), &mut out);
        }
        Value::Hash(h) => {
            out.push(types::HASH);
            length(h.len() as u64, &mut out);
            for (k, v) in h.iter() {
                string(k, &mut out);
                string(v, &mut out);
            }
        }
        Value::ZSet(z) if encoding == "listpack" => {
            let mut lp = listpack::Writer::default();
            for (m, score) in z.iter() {
                lp.push(m);
                lp.push(listpack_score(score).as_bytes());
            }
            out.push(types::ZSET_LISTPACK);
            string(&lp.finish(), &mut out);
        }
        Value::ZSet(z) => {
            out.push(types::ZSET_2);
            length(z.len() as u64, &mut out);
            for (m, score) in z.iter().rev() {
                string(m, &mut out);
                out.extend_from_slice(&score.to_le_bytes());
            }
        }
        Value::Stream(s) => super::stream::encode(s, &mut out),
        // The one caller (DUMP) hands a paged hash over as the `Value::Hash` of its pages.
        Value::PagedHash(_)
        | Value::PagedList(_)
        | Value::PagedSet(_)
        | Value::PagedZSet(_)
        | Value::PagedStream(_) => {
            unreachable!("a paged value is materialized before encoding")
        }
    }
    out
}
