//! Redis's RDB serialization of one value, as DUMP produces it and RESTORE takes it.
//!
//! A payload is the value's RDB encoding (a type byte, then the value), the RDB version as a
//! u16 LE, then the CRC-64 (Jones polynomial, as Redis computes it) of all that as a u64 LE.
//! kvtier writes version 10, as Redis 7.0 does, with the encodings Redis 7.0 picks for the
//! value's size (see [`encode`]), and reads every encoding Redis 7.0 can load for strings,
//! lists, sets, hashes and sorted sets (see [`decode`]); streams in [`stream`].

mod decode;
mod encode;
mod intset;
mod listpack;
mod lzf;
mod stream;
mod ziplist;

use crate::config::Config;
use crate::value::Value;
use crc::{Crc, CRC_64_REDIS};

/// The RDB version written, and the newest one accepted (Redis 7.0's).
pub const RDB_VERSION: u16 = 10;

/// The object type bytes of the RDB format.
mod types {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const HASH: u8 = 4;
    pub const ZSET_2: u8 = 5;
    pub const LIST_ZIPLIST: u8 = 10;
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const HASH_ZIPLIST: u8 = 13;
    pub const LIST_QUICKLIST: u8 = 14;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
    pub const STREAM_LISTPACKS_2: u8 = 19;
}

/// Malformed data, with what was wrong (for tests and logs; the client sees Redis's
/// "Bad data format").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bad(pub &'static str);

type R<T> = Result<T, Bad>;

/// Why a RESTORE payload was refused, one variant per error text Redis gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreError {
    /// Too short, a newer RDB version, or a CRC mismatch.
    VersionOrChecksum,
    /// The checksum holds but the value does not parse (or is of a type kvtier lacks).
    BadFormat(Bad),
}

fn crc64(data: &[u8]) -> u64 {
    const CRC: Crc<u64> = Crc::<u64>::new(&CRC_64_REDIS);
    CRC.checksum(data)
}

/// The DUMP payload of `v`, in the encodings Redis 7.0 would use under `config`'s thresholds.
pub fn dump(v: &Value, config: &Config) -> Vec<u8> {
    let encoding = crate::commands::object::encoding(v, config);
    let shape = encode::ListShape {
        fill: config.settings().list_max_listpack_size,
        compress_depth: config.settings().list_compress_depth as usize,
    };
    let mut out = encode::value(v, encoding, shape);
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The value a RESTORE payload holds, checked as Redis checks it: footer first (version, CRC),
/// then the value. Bytes after the value are ignored, as Redis does.
pub fn restore(payload: &[u8]) -> Result<Value, RestoreError> {
    let body = payload
        .len()
        .checked_sub(10)
        .ok_or(RestoreError::VersionOrChecksum)?;
    let version = u16::from_le_bytes([payload[body], payload[body + 1]]);
    let crc = u64::from_le_bytes(payload[body + 2..].try_into().expect("8 bytes"));
    if version > RDB_VERSION || crc64(&payload[..body + 2]) != crc {
        return Err(RestoreError::VersionOrChecksum);
    }
    decode::value(&payload[..body]).map_err(RestoreError::BadFormat)
}

/// Wraps a raw RDB value encoding in a payload (version and CRC): for tests that build the
/// older encodings by hand.
#[cfg(test)]
fn seal(body: &[u8], version: u16) -> Vec<u8> {
    let mut out = body.to_vec();
    out.extend_from_slice(&version.to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

#[cfg(test)]
mod tests;
