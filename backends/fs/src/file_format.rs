//! Layout of one key's file: `KVF1 | key_len u32 LE | key | value | crc32 LE`.
//!
//! The key is stored because file names are hashes of keys; reading it back lets `get` check
//! that the file really belongs to the key and lets `scan` report keys without a reverse index.

use kvtier_core::StoreError;
use std::io::Read;

const MAGIC: &[u8; 4] = b"KVF1";
const HEADER: usize = 8;
const CRC: usize = 4;

/// Serializes a key's file contents.
pub fn encode(key: &[u8], value: &[u8]) -> Result<Vec<u8>, StoreError> {
    let key_len = u32::try_from(key.len())
        .map_err(|_| StoreError::InvalidArgument("key longer than 4 GiB".into()))?;
    let mut out = Vec::with_capacity(HEADER + key.len() + value.len() + CRC);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&key_len.to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(value);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// Verifies a whole file and returns `(key, value)` slices.
pub fn decode(bytes: &[u8]) -> Result<(&[u8], &[u8]), StoreError> {
    if bytes.len() < HEADER + CRC || &bytes[..4] != MAGIC {
        return Err(StoreError::Corruption("fs record: bad header".into()));
    }
    let (body, crc) = bytes.split_at(bytes.len() - CRC);
    if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
        return Err(StoreError::Corruption(
            "fs record: checksum mismatch".into(),
        ));
    }
    let key_len = u32::from_le_bytes(body[4..8].try_into().expect("4 bytes")) as usize;
    if HEADER + key_len > body.len() {
        return Err(StoreError::Corruption(
            "fs record: key length out of range".into(),
        ));
    }
    Ok((&body[HEADER..HEADER + key_len], &body[HEADER + key_len..]))
}

/// Reads only the key of a file (for scans), without reading or verifying the value.
pub fn read_key(file: &mut std::fs::File, file_len: u64) -> Result<Vec<u8>, StoreError> {
    let mut header = [0u8; HEADER];
    file.read_exact(&mut header).map_err(StoreError::from_io)?;
    if &header[..4] != MAGIC {
        return Err(StoreError::Corruption("fs record: bad header".into()));
    }
    let key_len = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes")) as u64;
    if HEADER as u64 + key_len + CRC as u64 > file_len {
        return Err(StoreError::Corruption(
            "fs record: key length out of range".into(),
        ));
    }
    let mut key = vec![0u8; key_len as usize];
    file.read_exact(&mut key).map_err(StoreError::from_io)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let enc = encode(b"key", b"value").unwrap();
        assert_eq!(decode(&enc).unwrap(), (&b"key"[..], &b"value"[..]));
        for len in 0..enc.len() {
            assert!(decode(&enc[..len]).is_err());
        }
        let mut bad = enc.clone();
        bad[9] ^= 1;
        assert!(matches!(decode(&bad), Err(StoreError::Corruption(_))));
    }
}
