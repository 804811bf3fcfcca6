//! Listpack, the compact encoding Redis 7.0 uses for small lists (quicklist nodes), hashes and
//! sorted sets.
//!
//! Layout: total bytes (u32 LE), element count (u16 LE, 65535 = "count them"), the entries,
//! then `0xFF`. An entry is an encoding byte (with the data's length or an integer), the data,
//! then its own length (encoding + data) in 1 to 5 bytes, 7 bits each, the low bits last, every
//! byte but the first with its high bit set (so it can be walked backwards).

use super::{Bad, R};
use crate::util::parse_i64;

const HEADER: usize = 6;
const EOF: u8 = 0xFF;
/// The count field's value meaning "too many to store here".
const UNKNOWN_COUNT: u16 = u16::MAX;

/// The back-length bytes for an entry of `len` bytes.
fn backlen(len: usize, out: &mut Vec<u8>) {
    let groups = match len {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    };
    for i in (0..groups).rev() {
        let b = ((len >> (7 * i)) & 127) as u8;
        out.push(if i == groups - 1 { b } else { b | 128 });
    }
}

/// Builds a listpack the way Redis's `lpAppend` does: strings that are canonical integers are
/// stored in the smallest integer encoding.
#[derive(Debug)]
pub struct Writer {
    buf: Vec<u8>,
    count: usize,
}

impl Default for Writer {
    fn default() -> Self {
        Writer {
            buf: vec![0; HEADER],
            count: 0,
        }
    }
}

impl Writer {
    /// Bytes the finished listpack would take now.
    pub fn size(&self) -> usize {
        self.buf.len() + 1
    }

    pub fn count(&self) -> usize {
        self.count
    }

    pub fn push(&mut self, s: &[u8]) {
        let start = self.buf.len();
        match parse_i64(s) {
            Some(v) => self.int(v),
            None => self.string(s),
        }
        let len = self.buf.len() - start;
        backlen(len, &mut self.buf);
        self.count += 1;
    }

    fn int(&mut self, v: i64) {
        let b = &mut self.buf;
        if (0..=127).contains(&v) {
            b.push(v as u8);
        } else if (-4096..=4095).contains(&v) {
            let u = (v as u16) & 0x1fff;
            b.extend_from_slice(&[0xC0 | (u >> 8) as u8, u as u8]);
        } else if (-32768..=32767).contains(&v) {
            b.push(0xF1);
            b.extend_from_slice(&(v as i16).to_le_bytes());
        } else if (-8388608..=8388607).contains(&v) {
            b.push(0xF2);
            b.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
        } else if i32::try_from(v).is_ok() {
            b.push(0xF3);
            b.extend_from_slice(&(v as i32).to_le_bytes());
        } else {
            b.push(0xF4);
            b.extend_from_slice(&v.to_le_bytes());
        }
    }

    fn string(&mut self, s: &[u8]) {
        let b = &mut self.buf;
        let n = s.len();
        if n < 64 {
            b.push(0x80 | n as u8);
        } else if n < 4096 {
            b.extend_from_slice(&[0xE0 | (n >> 8) as u8, n as u8]);
        } else {
            b.push(0xF0);
            b.extend_from_slice(&(n as u32).to_le_bytes());
        }
        b.extend_from_slice(s);
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(EOF);
        let total = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&total.to_le_bytes());
        // 65535 and above are all stored as "unknown".
        let count = self.count.min(UNKNOWN_COUNT as usize) as u16;
        self.buf[4..6].copy_from_slice(&count.to_le_bytes());
        self.buf
    }
}

fn int_entry(v: i64) -> Vec<u8> {
    v.to_string().into_bytes()
}

/// Sign-extends the low `bits` bits of `u`.
fn signed(u: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((u << shift) as i64) >> shift
}

fn le(b: &[u8]) -> u64 {
    b.iter().rev().fold(0, |acc, &x| (acc << 8) | x as u64)
}

/// Every element of a listpack, integers as their decimal text. Checks the header, each
/// entry's bounds and back length, the terminator and the count.
pub fn parse(lp: &[u8]) -> R<Vec<Vec<u8>>> {
    if lp.len() < HEADER + 1 || le(&lp[..4]) != lp.len() as u64 {
        return Err(Bad("listpack header"));
    }
    let declared = le(&lp[4..6]) as u16;
    let mut items = Vec::new();
    let mut pos = HEADER;
    loop {
        let b = *lp.get(pos).ok_or(Bad("listpack without terminator"))?;
        if b == EOF {
            if pos != lp.len() - 1 {
                return Err(Bad("listpack terminator before the end"));
            }
            break;
        }
        let get = |from: usize, n: usize| lp.get(from..from + n).ok_or(Bad("listpack entry"));
        let (item, len) = match b {
            0x00..=0x7F => (int_entry(b as i64), 1),
            0x80..=0xBF => {
                let n = (b & 0x3f) as usize;
                (get(pos + 1, n)?.to_vec(), 1 + n)
            }
            0xC0..=0xDF => {
                let u = ((b as u64 & 0x1f) << 8) | get(pos + 1, 1)?[0] as u64;
                (int_entry(signed(u, 13)), 2)
            }
            0xE0..=0xEF => {
                let n = ((b as usize & 0x0f) << 8) | get(pos + 1, 1)?[0] as usize;
                (get(pos + 2, n)?.to_vec(), 2 + n)
            }
            0xF0 => {
                let n = le(get(pos + 1, 4)?) as usize;
                (get(pos + 5, n)?.to_vec(), 5 + n)
            }
            0xF1 => (int_entry(signed(le(get(pos + 1, 2)?), 16)), 3),
            0xF2 => (int_entry(signed(le(get(pos + 1, 3)?), 24)), 4),
            0xF3 => (int_entry(signed(le(get(pos + 1, 4)?), 32)), 5),
            0xF4 => (int_entry(le(get(pos + 1, 8)?) as i64), 9),
            _ => return Err(Bad("listpack encoding")),
        };
        pos += len;
        let mut expect = Vec::with_capacity(5);
        backlen(len, &mut expect);
        if lp.get(pos..pos + expect.len()) != Some(&expect[..]) {
            return Err(Bad("listpack back length"));
        }
        pos += expect.len();
        items.push(item);
    }
    if declared != UNKNOWN_COUNT && declared as usize != items.len() {
        return Err(Bad("listpack count"));
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(items: &[&[u8]]) -> Vec<u8> {
        let mut w = Writer::default();
        items.iter().for_each(|i| w.push(i));
        w.finish()
    }

    #[test]
    fn matches_redis_bytes() {
        // RPUSH l a b 1 -5 70000 on redis-server 7.0.15, the listpack inside its DUMP.
        let lp = build(&[b"a", b"b", b"1", b"-5", b"70000"]);
        assert_eq!(
            lp,
            b"\x17\x00\x00\x00\x05\x00\x81a\x02\x81b\x02\x01\x01\xdf\xfb\x02\xf2p\x11\x01\x04\xff"
        );
    }

    #[test]
    fn every_encoding_round_trips() {
        let long = vec![b'x'; 5000];
        let mid = vec![b'y'; 300];
        let items: Vec<&[u8]> = vec![
            b"0",
            b"127",
            b"128",
            b"-1",
            b"-4096",
            b"4095",
            b"-4097",
            b"32767",
            b"-32768",
            b"8388607",
            b"-8388608",
            b"2147483647",
            b"-2147483648",
            b"9223372036854775807",
            b"-9223372036854775808",
            b"007",
            b"-0",
            b"",
            b"binary\x00\xff",
            &mid,
            &long,
        ];
        let lp = build(&items);
        assert_eq!(parse(&lp).unwrap(), items);
    }

    #[test]
    fn rejects_damage() {
        let lp = build(&[b"hello", b"42"]);
        for cut in 0..lp.len() {
            assert!(parse(&lp[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = lp.clone();
        bad[4] = 3; // wrong count
        assert!(parse(&bad).is_err());
        let mut bad = lp.clone();
        bad[6] = 0xBF; // string longer than the listpack
        assert!(parse(&bad).is_err());
        let mut bad = lp;
        bad[6] = 0xF7; // no such encoding
        assert!(parse(&bad).is_err());
    }
}
