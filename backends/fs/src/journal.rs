//! The batch journal that makes multi-key batches atomic on a filesystem with no multi-file
//! transactions. A batch is first written whole to `journal/batch.jnl` (write temp, fsync, rename,
//! fsync dir): that rename is the commit point. The key files are then written; once they are
//! durable the journal is removed. At open, a journal that is still there is replayed, so a crash
//! leaves either none or all of a batch.
//!
//! Format: `KVJ1 | count u32 | ops… | crc32`, each op `kind u8 | db u32 | key_len u32 | key |
//! [value_len u64 | value]` (kind 1 = put, 2 = delete).

use kvtier_core::{StoreError, WriteOp};

const MAGIC: &[u8; 4] = b"KVJ1";

pub fn encode(ops: &[&WriteOp]) -> Vec<u8> {
    let size: usize = ops
        .iter()
        .map(|op| {
            17 + op.key().len()
                + match op {
                    WriteOp::Put { value, .. } => value.len(),
                    WriteOp::Delete { .. } => 0,
                }
        })
        .sum();
    let mut out = Vec::with_capacity(size + 12);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(ops.len() as u32).to_le_bytes());
    for op in ops {
        let kind = match op {
            WriteOp::Put { .. } => 1u8,
            WriteOp::Delete { .. } => 2u8,
        };
        out.push(kind);
        out.extend_from_slice(&op.db().to_le_bytes());
        out.extend_from_slice(&(op.key().len() as u32).to_le_bytes());
        out.extend_from_slice(op.key());
        if let WriteOp::Put { value, .. } = op {
            out.extend_from_slice(&(value.len() as u64).to_le_bytes());
            out.extend_from_slice(value);
        }
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

pub fn decode(bytes: &[u8]) -> Result<Vec<WriteOp>, StoreError> {
    let bad = |what: &str| StoreError::Corruption(format!("fs journal: {what}"));
    if bytes.len() < 12 || &bytes[..4] != MAGIC {
        return Err(bad("bad header"));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
        return Err(bad("checksum mismatch"));
    }
    let mut r = Reader { buf: &body[4..] };
    let count = r.u32().ok_or_else(|| bad("truncated"))?;
    let mut ops = Vec::with_capacity(count.min(1 << 20) as usize);
    for _ in 0..count {
        let op = (|| {
            let kind = r.take(1)?[0];
            let db = r.u32()?;
            let key_len = r.u32()? as usize;
            let key = r.take(key_len)?.to_vec();
            match kind {
                1 => {
                    let len = usize::try_from(r.u64()?).ok()?;
                    let value = r.take(len)?.to_vec();
                    Some(WriteOp::Put { db, key, value })
                }
                2 => Some(WriteOp::Delete { db, key }),
                _ => None,
            }
        })()
        .ok_or_else(|| bad("malformed op"))?;
        ops.push(op);
    }
    Ok(ops)
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Some(a)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let ops = vec![
            WriteOp::Put {
                db: 3,
                key: b"a".to_vec(),
                value: b"xyz".to_vec(),
            },
            WriteOp::Delete {
                db: 0,
                key: b"".to_vec(),
            },
        ];
        let refs: Vec<&WriteOp> = ops.iter().collect();
        let enc = encode(&refs);
        assert_eq!(decode(&enc).unwrap(), ops);
        for len in 0..enc.len() {
            assert!(decode(&enc[..len]).is_err());
        }
    }
}
