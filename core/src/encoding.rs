//! The on-disk record format: what kvtier stores as a backend value.
//!
//! ```text
//! offset  size  field
//! 0       1     format version (currently 1)
//! 1       1     type tag (opaque to core; the server's value types define it)
//! 2       1     flags (bit 0: an expire follows)
//! 3       0|8   expire: absolute Unix time in milliseconds, little-endian i64
//! ..      n     payload
//! end-4   4     crc32 (crc32fast) of every byte before it, little-endian
//! ```
//! The checksum lets a reader tell a damaged record from a value: decoding never returns bytes
//! that were not written as one record.

use crate::store::StoreError;

/// The only format version this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;
const FLAG_EXPIRE: u8 = 1;
const HEADER_LEN: usize = 3;
const CRC_LEN: usize = 4;

/// A decoded record borrowing its payload from the stored bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// The value's type tag, as given by [`CacheValue::type_tag`](crate::CacheValue::type_tag).
    pub type_tag: u8,
    /// Absolute expire time in Unix milliseconds, if the key has a TTL.
    pub expire_at_ms: Option<i64>,
    /// The serialized value, as written by
    /// [`CacheValue::encode_payload`](crate::CacheValue::encode_payload).
    pub payload: &'a [u8],
}

impl Record<'_> {
    /// Whether the record's expire time is at or before `now_ms`.
    pub fn is_expired(&self, now_ms: i64) -> bool {
        self.expire_at_ms.is_some_and(|t| t <= now_ms)
    }
}

/// Encodes a record whose payload the caller writes into `out` through `write_payload`, so a large
/// value is serialized once, straight into the output buffer.
pub fn encode_with(
    type_tag: u8,
    expire_at_ms: Option<i64>,
    out: &mut Vec<u8>,
    write_payload: impl FnOnce(&mut Vec<u8>),
) {
    let start = out.len();
    out.push(FORMAT_VERSION);
    out.push(type_tag);
    match expire_at_ms {
        Some(t) => {
            out.push(FLAG_EXPIRE);
            out.extend_from_slice(&t.to_le_bytes());
        }
        None => out.push(0),
    }
    write_payload(out);
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// Encodes a record with an already-serialized payload.
pub fn encode(type_tag: u8, expire_at_ms: Option<i64>, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + HEADER_LEN + 8 + CRC_LEN);
    encode_with(type_tag, expire_at_ms, &mut out, |o| {
        o.extend_from_slice(payload)
    });
    out
}

/// Bytes of a record that hold its header (version, type, flags, expire time).
pub const HEAD_LEN: usize = HEADER_LEN + 8;

/// Payload bytes a typed scan reads beyond [`HEAD_LEN`] (see [`head_payload`]): enough for a
/// value type to put what a scan needs to know at the start of its payload (the server's paged
/// values put their page generation there).
pub const PAYLOAD_HEAD: usize = 16;

/// The payload bytes among the first bytes of a record (up to [`PAYLOAD_HEAD`] of them after a
/// head of [`HEAD_LEN`] + [`PAYLOAD_HEAD`] bytes; fewer, or the checksum's, for a short record).
pub fn head_payload(head: &[u8]) -> &[u8] {
    let start = if head.get(2).is_some_and(|f| f & FLAG_EXPIRE != 0) {
        HEADER_LEN + 8
    } else {
        HEADER_LEN
    };
    head.get(start..).unwrap_or(&[])
}

/// Reads the type tag and expire time from the first [`HEAD_LEN`] bytes of a record, without
/// the payload (so without verifying the checksum: a load of the key still does).
pub fn decode_head(head: &[u8]) -> Result<(u8, Option<i64>), StoreError> {
    if head.len() < HEADER_LEN || head[0] != FORMAT_VERSION || head[2] & !FLAG_EXPIRE != 0 {
        return Err(StoreError::Corruption("damaged record header".into()));
    }
    if head[2] & FLAG_EXPIRE == 0 {
        return Ok((head[1], None));
    }
    let t = head
        .get(HEADER_LEN..HEADER_LEN + 8)
        .ok_or_else(|| StoreError::Corruption("truncated expire field".into()))?;
    Ok((
        head[1],
        Some(i64::from_le_bytes(t.try_into().expect("8 bytes"))),
    ))
}

/// Decodes and verifies a record. Damage is `Corruption`; a version this build does not know is
/// `Corruption` too, with a message naming the version.
pub fn decode(bytes: &[u8]) -> Result<Record<'_>, StoreError> {
    if bytes.len() < HEADER_LEN + CRC_LEN {
        return Err(StoreError::Corruption(format!(
            "record of {} bytes is shorter than the minimum of {}",
            bytes.len(),
            HEADER_LEN + CRC_LEN
        )));
    }
    let (body, crc_bytes) = bytes.split_at(bytes.len() - CRC_LEN);
    let stored = u32::from_le_bytes(crc_bytes.try_into().expect("4 bytes"));
    if crc32fast::hash(body) != stored {
        return Err(StoreError::Corruption("record checksum mismatch".into()));
    }
    if body[0] != FORMAT_VERSION {
        return Err(StoreError::Corruption(format!(
            "unknown record format version {} (this build reads version {FORMAT_VERSION})",
            body[0]
        )));
    }
    let type_tag = body[1];
    let flags = body[2];
    if flags & !FLAG_EXPIRE != 0 {
        return Err(StoreError::Corruption(format!(
            "unknown record flags {flags:#04x}"
        )));
    }
    let mut rest = &body[HEADER_LEN..];
    let expire_at_ms = if flags & FLAG_EXPIRE != 0 {
        if rest.len() < 8 {
            return Err(StoreError::Corruption("truncated expire field".into()));
        }
        let (t, r) = rest.split_at(8);
        rest = r;
        Some(i64::from_le_bytes(t.try_into().expect("8 bytes")))
    } else {
        None
    };
    Ok(Record {
        type_tag,
        expire_at_ms,
        payload: rest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_and_without_expire() {
        for exp in [None, Some(0), Some(-5), Some(1_700_000_000_123)] {
            for payload in [&b""[..], b"hello", &[0u8; 1000][..]] {
                let enc = encode(7, exp, payload);
                let rec = decode(&enc).unwrap();
                assert_eq!(rec.type_tag, 7);
                assert_eq!(rec.expire_at_ms, exp);
                assert_eq!(rec.payload, payload);
            }
        }
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let enc = encode(3, Some(42), b"some payload bytes");
        for i in 0..enc.len() * 8 {
            let mut bad = enc.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(
                matches!(decode(&bad), Err(StoreError::Corruption(_))),
                "flip of bit {i} not detected"
            );
        }
    }

    #[test]
    fn truncation_is_detected() {
        let enc = encode(3, None, b"payload");
        for len in 0..enc.len() {
            assert!(decode(&enc[..len]).is_err(), "truncated to {len} accepted");
        }
    }

    #[test]
    fn unknown_version_is_named() {
        let mut enc = encode(1, None, b"x");
        enc[0] = 9;
        let n = enc.len() - 4;
        let crc = crc32fast::hash(&enc[..n]);
        enc[n..].copy_from_slice(&crc.to_le_bytes());
        let err = decode(&enc).unwrap_err().to_string();
        assert!(err.contains("unknown record format version 9"), "{err}");
    }

    #[test]
    fn expiry_check() {
        let enc = encode(1, Some(100), b"x");
        let rec = decode(&enc).unwrap();
        assert!(rec.is_expired(100));
        assert!(!rec.is_expired(99));
        assert!(!decode(&encode(1, None, b"x")).unwrap().is_expired(i64::MAX));
    }
}
