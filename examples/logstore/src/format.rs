//! The bytes on disk: record groups inside segment files, and the hint file.
//!
//! Everything is little-endian. See the crate's README.md for the picture.

use kvtier_core::DbIndex;
use std::collections::BTreeMap;

/// First four bytes of every group ("KVLG"), so that garbage is rarely taken for a header.
pub const GROUP_MAGIC: u32 = u32::from_le_bytes(*b"KVLG");
/// `magic u32 | count u32 | body_len u64 | crc u32`.
pub const GROUP_HEADER: usize = 20;
/// `crc u32 | kind u8 | db u32 | key_len u32 | value_len u64`, then key and value.
pub const RECORD_HEADER: usize = 21;
/// First bytes of the hint file.
pub const HINT_MAGIC: &[u8; 8] = b"KVLOGHT1";

/// What a record does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Put = 1,
    Delete = 2,
    /// Removes every key of `db` written before it.
    ClearDb = 3,
    /// Removes every key of every DB written before it.
    ClearAll = 4,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Put,
            2 => Kind::Delete,
            3 => Kind::ClearDb,
            4 => Kind::ClearAll,
            _ => return None,
        })
    }
}

/// Where the newest record of a key is: segment id, byte offset of the record, record length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    pub seg: u64,
    pub off: u64,
    pub len: u64,
}

/// One decoded record, borrowing from the bytes it was decoded from.
#[derive(Debug)]
pub struct Record<'a> {
    pub kind: Kind,
    pub db: DbIndex,
    pub key: &'a [u8],
    pub value: &'a [u8],
    /// Offset of the record inside the slice it was parsed from.
    pub rel: usize,
    /// Whole record length, header included.
    pub len: usize,
}

/// A group being built: records are appended, then `finish` fills in the header.
pub struct GroupBuf {
    buf: Vec<u8>,
    count: u32,
}

impl Default for GroupBuf {
    fn default() -> Self {
        GroupBuf {
            buf: vec![0; GROUP_HEADER],
            count: 0,
        }
    }
}

impl GroupBuf {
    /// Appends a record; returns its offset from the start of the group and its length.
    pub fn push(&mut self, kind: Kind, db: DbIndex, key: &[u8], value: &[u8]) -> (u64, u64) {
        let start = self.buf.len();
        self.buf.reserve(RECORD_HEADER + key.len() + value.len());
        self.buf.extend_from_slice(&[0; 4]);
        self.buf.push(kind as u8);
        self.buf.extend_from_slice(&db.to_le_bytes());
        self.buf
            .extend_from_slice(&(key.len() as u32).to_le_bytes());
        self.buf
            .extend_from_slice(&(value.len() as u64).to_le_bytes());
        self.buf.extend_from_slice(key);
        self.buf.extend_from_slice(value);
        let crc = crc32fast::hash(&self.buf[start + 4..]);
        self.buf[start..start + 4].copy_from_slice(&crc.to_le_bytes());
        self.count += 1;
        (start as u64, (self.buf.len() - start) as u64)
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes of the group so far, header included.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Fills in the header and returns the whole group.
    pub fn finish(&mut self) -> &[u8] {
        let body_len = (self.buf.len() - GROUP_HEADER) as u64;
        self.buf[0..4].copy_from_slice(&GROUP_MAGIC.to_le_bytes());
        self.buf[4..8].copy_from_slice(&self.count.to_le_bytes());
        self.buf[8..16].copy_from_slice(&body_len.to_le_bytes());
        let crc = group_crc(&self.buf[4..16], &self.buf[GROUP_HEADER..]);
        self.buf[16..20].copy_from_slice(&crc.to_le_bytes());
        &self.buf
    }

    /// Empties the group for reuse.
    pub fn clear(&mut self) {
        self.buf.truncate(GROUP_HEADER);
        self.count = 0;
    }
}

/// The group checksum covers count, body length and body: a torn group fails it.
fn group_crc(count_and_len: &[u8], body: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(count_and_len);
    h.update(body);
    h.finalize()
}

/// A decoded group header.
#[derive(Debug, Clone, Copy)]
pub struct GroupHeader {
    raw: [u8; GROUP_HEADER],
    pub count: u32,
    pub body_len: u64,
}

/// Decodes a group header, or `None` if it does not start with the magic.
pub fn group_header(raw: &[u8]) -> Option<GroupHeader> {
    let raw: [u8; GROUP_HEADER] = raw.get(..GROUP_HEADER)?.try_into().ok()?;
    if u32::from_le_bytes(raw[0..4].try_into().ok()?) != GROUP_MAGIC {
        return None;
    }
    Some(GroupHeader {
        raw,
        count: u32::from_le_bytes(raw[4..8].try_into().ok()?),
        body_len: u64::from_le_bytes(raw[8..16].try_into().ok()?),
    })
}

/// Checks the group checksum and splits the body into records (offsets relative to the body).
/// `Err` means the group is torn or damaged and none of it may be applied.
pub fn group_records<'a>(h: &GroupHeader, body: &'a [u8]) -> Result<Vec<Record<'a>>, String> {
    let crc = u32::from_le_bytes(h.raw[16..20].try_into().expect("4 bytes"));
    if body.len() as u64 != h.body_len || group_crc(&h.raw[4..16], body) != crc {
        return Err("group checksum mismatch".into());
    }
    let mut out = Vec::with_capacity(h.count.min(1 << 16) as usize);
    let mut rel = 0;
    while rel < body.len() {
        let rec = record_at(body, rel)?;
        rel += rec.len;
        out.push(rec);
    }
    if out.len() != h.count as usize {
        return Err(format!(
            "group says {} records, holds {}",
            h.count,
            out.len()
        ));
    }
    Ok(out)
}

/// Decodes the record starting at `rel` in `bytes`, checking its own checksum.
pub fn record_at(bytes: &[u8], rel: usize) -> Result<Record<'_>, String> {
    let rest = &bytes[rel.min(bytes.len())..];
    if rest.len() < RECORD_HEADER {
        return Err("truncated record header".into());
    }
    let u32_at = |i: usize| u32::from_le_bytes(rest[i..i + 4].try_into().expect("4 bytes"));
    let crc = u32_at(0);
    let kind = Kind::from_u8(rest[4]).ok_or("unknown record kind")?;
    let db = u32_at(5);
    let key_len = u32_at(9) as usize;
    let value_len = u64::from_le_bytes(rest[13..21].try_into().expect("8 bytes"));
    let len = usize::try_from(value_len)
        .ok()
        .and_then(|v| (RECORD_HEADER + key_len).checked_add(v))
        .filter(|&l| l <= rest.len())
        .ok_or("record longer than its container")?;
    if crc32fast::hash(&rest[4..len]) != crc {
        return Err("record checksum mismatch".into());
    }
    let key_end = RECORD_HEADER + key_len;
    Ok(Record {
        kind,
        db,
        key: &rest[RECORD_HEADER..key_end],
        value: &rest[key_end..len],
        rel,
        len,
    })
}

/// The index: per DB, key → location of its newest record.
pub type Index = BTreeMap<DbIndex, BTreeMap<Vec<u8>, Loc>>;

/// Hint file: `HINT_MAGIC | cut_seg u64 | cut_off u64 | entries u64 | entry* | crc u32`, with
/// `entry = db u32 | key_len u32 | key | seg u64 | off u64 | len u64` and the crc over all
/// bytes before it. It is the whole index as it was when the log ended at `(cut_seg, cut_off)`.
pub fn encode_hint(index: &Index, cut_seg: u64, cut_off: u64) -> Vec<u8> {
    let entries: usize = index.values().map(BTreeMap::len).sum();
    let mut out = Vec::with_capacity(36 + entries * 40);
    out.extend_from_slice(HINT_MAGIC);
    out.extend_from_slice(&cut_seg.to_le_bytes());
    out.extend_from_slice(&cut_off.to_le_bytes());
    out.extend_from_slice(&(entries as u64).to_le_bytes());
    for (db, keys) in index {
        for (key, loc) in keys {
            out.extend_from_slice(&db.to_le_bytes());
            out.extend_from_slice(&(key.len() as u32).to_le_bytes());
            out.extend_from_slice(key);
            out.extend_from_slice(&loc.seg.to_le_bytes());
            out.extend_from_slice(&loc.off.to_le_bytes());
            out.extend_from_slice(&loc.len.to_le_bytes());
        }
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// A decoded hint file.
pub struct Hint {
    pub cut_seg: u64,
    pub cut_off: u64,
    pub index: Index,
}

pub fn decode_hint(bytes: &[u8]) -> Result<Hint, String> {
    if bytes.len() < HINT_MAGIC.len() + 28 || &bytes[..8] != HINT_MAGIC {
        return Err("bad hint header".into());
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
        return Err("hint checksum mismatch".into());
    }
    let mut rest = &body[8..];
    let mut take = |n: usize| -> Result<&[u8], String> {
        if rest.len() < n {
            return Err("truncated hint".into());
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    let u64_of = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
    let u32_of = |b: &[u8]| u32::from_le_bytes(b.try_into().expect("4 bytes"));
    let cut_seg = u64_of(take(8)?);
    let cut_off = u64_of(take(8)?);
    let entries = u64_of(take(8)?);
    let mut index = Index::new();
    for _ in 0..entries {
        let db = u32_of(take(4)?);
        let key_len = u32_of(take(4)?) as usize;
        let key = take(key_len)?.to_vec();
        let seg = u64_of(take(8)?);
        let off = u64_of(take(8)?);
        let len = u64_of(take(8)?);
        index
            .entry(db)
            .or_default()
            .insert(key, Loc { seg, off, len });
    }
    if !rest.is_empty() {
        return Err("trailing bytes in hint".into());
    }
    Ok(Hint {
        cut_seg,
        cut_off,
        index,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_round_trip_and_damage() {
        let mut g = GroupBuf::default();
        let (o1, l1) = g.push(Kind::Put, 3, b"key", b"value");
        let (o2, _) = g.push(Kind::Delete, u32::MAX, b"", b"");
        let bytes = g.finish().to_vec();
        assert_eq!(o1 as usize, GROUP_HEADER);
        assert_eq!(o2, o1 + l1);
        let h = group_header(&bytes).unwrap();
        let recs = group_records(&h, &bytes[GROUP_HEADER..]).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(
            (recs[0].kind, recs[0].db, recs[0].key, recs[0].value),
            (Kind::Put, 3, &b"key"[..], &b"value"[..])
        );
        assert_eq!((recs[1].kind, recs[1].db), (Kind::Delete, u32::MAX));
        // A record read alone (as `get` does) checks its own crc.
        let rec = record_at(&bytes, o1 as usize).unwrap();
        assert_eq!(rec.value, b"value");
        let mut bad = bytes.clone();
        bad[o1 as usize + RECORD_HEADER + 4] ^= 1;
        assert!(record_at(&bad, o1 as usize).is_err());
        assert!(group_records(&h, &bad[GROUP_HEADER..]).is_err());
        // A torn group: the body is shorter than the header says.
        assert!(group_records(&h, &bytes[GROUP_HEADER..bytes.len() - 1]).is_err());
    }

    #[test]
    fn hint_round_trip_and_damage() {
        let mut index = Index::new();
        index.entry(0).or_default().insert(
            b"".to_vec(),
            Loc {
                seg: 1 << 32,
                off: 20,
                len: 30,
            },
        );
        index.entry(u32::MAX).or_default().insert(
            b"k".to_vec(),
            Loc {
                seg: 2 << 32,
                off: 0,
                len: 1,
            },
        );
        let bytes = encode_hint(&index, 2 << 32, 99);
        let h = decode_hint(&bytes).unwrap();
        assert_eq!((h.cut_seg, h.cut_off), (2 << 32, 99));
        assert_eq!(h.index, index);
        for i in [0, 9, bytes.len() / 2, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(decode_hint(&bad).is_err(), "flip at {i}");
        }
        assert!(decode_hint(&bytes[..bytes.len() - 3]).is_err());
    }
}
