//! Ziplist, the compact encoding of Redis before 7.0, still found in older DUMP payloads (lists,
//! old quicklist nodes, hashes and sorted sets). Read only: kvtier never writes it.
//!
//! Layout: total bytes (u32 LE), offset of the last entry (u32 LE), element count (u16 LE,
//! 65535 = "count them"), the entries, then `0xFF`. An entry is the previous entry's length
//! (1 byte, or `0xFE` and a u32 LE), an encoding (string length, big-endian, or an integer
//! type), then the data.

use super::{Bad, R};

const HEADER: usize = 10;
const END: u8 = 0xFF;

fn le(b: &[u8]) -> u64 {
    b.iter().rev().fold(0, |acc, &x| (acc << 8) | x as u64)
}

fn be(b: &[u8]) -> u64 {
    b.iter().fold(0, |acc, &x| (acc << 8) | x as u64)
}

fn signed(u: u64, bits: u32) -> Vec<u8> {
    let shift = 64 - bits;
    (((u << shift) as i64) >> shift).to_string().into_bytes()
}

/// Every element of a ziplist, integers as their decimal text. Checks the header, each entry's
/// bounds and previous-length field, the terminator and the count.
pub fn parse(zl: &[u8]) -> R<Vec<Vec<u8>>> {
    if zl.len() < HEADER + 1 || le(&zl[..4]) != zl.len() as u64 {
        return Err(Bad("ziplist header"));
    }
    if le(&zl[4..8]) >= zl.len() as u64 {
        return Err(Bad("ziplist tail offset"));
    }
    let declared = le(&zl[8..10]) as u16;
    let get = |from: usize, n: usize| zl.get(from..from + n).ok_or(Bad("ziplist entry"));
    let mut items = Vec::new();
    let mut pos = HEADER;
    let mut prev_len = 0usize;
    loop {
        let start = pos;
        let b = get(pos, 1)?[0];
        if b == END {
            if pos != zl.len() - 1 {
                return Err(Bad("ziplist end before the end"));
            }
            break;
        }
        let prev = if b < 0xFE {
            pos += 1;
            b as usize
        } else {
            let p = le(get(pos + 1, 4)?) as usize;
            pos += 5;
            p
        };
        if prev != prev_len {
            return Err(Bad("ziplist previous length"));
        }
        let e = get(pos, 1)?[0];
        let (item, header, data) = match e >> 6 {
            0 => {
                let n = (e & 0x3f) as usize;
                (get(pos + 1, n)?.to_vec(), 1, n)
            }
            1 => {
                let n = ((e as usize & 0x3f) << 8) | get(pos + 1, 1)?[0] as usize;
                (get(pos + 2, n)?.to_vec(), 2, n)
            }
            2 => {
                let n = be(get(pos + 1, 4)?) as usize;
                (get(pos + 5, n)?.to_vec(), 5, n)
            }
            _ => match e {
                0xC0 => (signed(le(get(pos + 1, 2)?), 16), 1, 2),
                0xD0 => (signed(le(get(pos + 1, 4)?), 32), 1, 4),
                0xE0 => (signed(le(get(pos + 1, 8)?), 64), 1, 8),
                0xF0 => (signed(le(get(pos + 1, 3)?), 24), 1, 3),
                0xFE => (signed(le(get(pos + 1, 1)?), 8), 1, 1),
                0xF1..=0xFD => (((e & 0x0f) - 1).to_string().into_bytes(), 1, 0),
                _ => return Err(Bad("ziplist encoding")),
            },
        };
        pos += header + data;
        prev_len = pos - start;
        items.push(item);
    }
    if declared != u16::MAX && declared as usize != items.len() {
        return Err(Bad("ziplist count"));
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ziplist as Redis 6 wrote it for RPUSH l a 12 -300 hello 100000 5000000000.
    fn sample() -> Vec<u8> {
        let mut body = Vec::new();
        let mut prev = 0u8;
        let entries: [&[u8]; 6] = [
            b"\x01a",
            b"\xfe\x0c",
            b"\xc0\xd4\xfe",
            b"\x05hello",
            b"\xf0\xa0\x86\x01",
            b"\xe0\x00\xf2\x05\x2a\x01\x00\x00\x00",
        ];
        let mut tail = 0;
        for e in entries {
            tail = HEADER + body.len();
            body.push(prev);
            body.extend_from_slice(e);
            prev = (e.len() + 1) as u8;
        }
        let total = HEADER + body.len() + 1;
        let mut zl = Vec::new();
        zl.extend_from_slice(&(total as u32).to_le_bytes());
        zl.extend_from_slice(&(tail as u32).to_le_bytes());
        zl.extend_from_slice(&6u16.to_le_bytes());
        zl.extend_from_slice(&body);
        zl.push(END);
        zl
    }

    #[test]
    fn reads_every_encoding() {
        let items = parse(&sample()).unwrap();
        let want: Vec<&[u8]> = vec![b"a", b"12", b"-300", b"hello", b"100000", b"5000000000"];
        assert_eq!(items, want);
    }

    #[test]
    fn rejects_damage() {
        let zl = sample();
        for cut in 0..zl.len() {
            assert!(parse(&zl[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = zl.clone();
        bad[8] = 5; // count
        assert!(parse(&bad).is_err());
        let mut bad = zl;
        bad[HEADER] = 7; // previous length of the first entry
        assert!(parse(&bad).is_err());
    }
}
