//! Streams in Redis 7.0's RDB encoding (type 19, RDB_TYPE_STREAM_LISTPACKS_2), written from
//! the format's public description:
//!
//! * the listpack nodes, in master-ID order: the master ID (16 bytes, big-endian ms then seq)
//!   as a string, then the listpack as a string. A listpack starts with the master entry
//!   (live count, deleted count, field count, the field names, 0), then each entry: flags
//!   (1 deleted, 2 same fields as the master), ms and seq as differences from the master ID,
//!   the field count and field/value pairs (or only the values when the fields are the
//!   master's), and the entry's element count;
//! * length, last ID, first ID, max deleted ID (ms and seq each a length), entries added;
//! * the groups: name, last ID, entries read, the PEL (raw 16-byte IDs, delivery time as a
//!   millisecond u64 LE, delivery count), the consumers (name, seen time, their PEL IDs).
//!
//! kvtier writes only live entries (Redis keeps deleted ones flagged until their node empties),
//! so a DUMP's bytes may differ from Redis's while holding the same stream.

use super::decode::Reader;
use super::encode::{length, string};
use super::{listpack, types, Bad, R};
use crate::stream::group::{Consumer, Group, Pending};
use crate::stream::{Node, Stream, StreamId};
use std::collections::BTreeSet;

const FLAG_DELETED: i64 = 1;
const FLAG_SAMEFIELDS: i64 = 2;

fn int(v: i64) -> Vec<u8> {
    v.to_string().into_bytes()
}

fn id_len(id: StreamId, out: &mut Vec<u8>) {
    length(id.ms, out);
    length(id.seq, out);
}

/// One node's listpack, from its live entries.
fn node_listpack(s: &Stream, master: StreamId, node: &Node, end: Option<StreamId>) -> Vec<u8> {
    let entries: Vec<_> = match end {
        Some(e) => s.entries.range(master..e).collect(),
        None => s.entries.range(master..).collect(),
    };
    let mut lp = listpack::Writer::default();
    lp.push(&int(entries.len() as i64));
    lp.push(b"0");
    lp.push(&int(node.master_fields.len() as i64));
    node.master_fields.iter().for_each(|f| lp.push(f));
    lp.push(b"0");
    for (id, fields) in entries {
        let same = fields.len() / 2 == node.master_fields.len()
            && fields
                .iter()
                .step_by(2)
                .zip(&node.master_fields)
                .all(|(a, b)| a == b);
        lp.push(&int(if same { FLAG_SAMEFIELDS } else { 0 }));
        lp.push(&int(id.ms.wrapping_sub(master.ms) as i64));
        lp.push(&int(id.seq.wrapping_sub(master.seq) as i64));
        if same {
            fields.iter().skip(1).step_by(2).for_each(|v| lp.push(v));
            lp.push(&int(fields.len() as i64 / 2 + 3));
        } else {
            lp.push(&int(fields.len() as i64 / 2));
            fields.iter().for_each(|f| lp.push(f));
            lp.push(&int(fields.len() as i64 + 4));
        }
    }
    lp.finish()
}

pub fn encode(s: &Stream, out: &mut Vec<u8>) {
    out.push(types::STREAM_LISTPACKS_2);
    length(s.nodes.len() as u64, out);
    let masters: Vec<StreamId> = s.nodes.keys().copied().collect();
    for (i, (master, node)) in s.nodes.iter().enumerate() {
        string(&master.to_be_bytes(), out);
        string(
            &node_listpack(s, *master, node, masters.get(i + 1).copied()),
            out,
        );
    }
    length(s.len(), out);
    id_len(s.last_id, out);
    id_len(s.first_id, out);
    id_len(s.max_deleted_id, out);
    length(s.entries_added, out);
    length(s.groups.len() as u64, out);
    for (name, g) in &s.groups {
        string(name, out);
        id_len(g.last_id, out);
        length(g.entries_read as u64, out);
        length(g.pel.len() as u64, out);
        for (id, p) in &g.pel {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&p.delivery_time.to_le_bytes());
            length(p.delivery_count, out);
        }
        length(g.consumers.len() as u64, out);
        for (cname, c) in &g.consumers {
            string(cname, out);
            out.extend_from_slice(&c.seen_time.to_le_bytes());
            length(c.pel.len() as u64, out);
            for id in &c.pel {
                out.extend_from_slice(&id.to_be_bytes());
            }
        }
    }
}

/// A count (zero allowed: a stream may have no nodes, groups, PEL or consumers) of things
/// taking at least `min_bytes` each, refused if the rest of the payload cannot hold them.
fn count(r: &mut Reader, min_bytes: u64) -> R<usize> {
    let n = r.length()?;
    if n > r.remaining() as u64 / min_bytes.max(1) {
        return Err(Bad("stream count out of range"));
    }
    Ok(n as usize)
}

fn read_id(r: &mut Reader) -> R<StreamId> {
    Ok(StreamId::new(r.length()?, r.length()?))
}

fn raw_id(r: &mut Reader) -> R<StreamId> {
    StreamId::from_be_bytes(r.take(16)?).ok_or(Bad("stream ID"))
}

fn millis(r: &mut Reader) -> R<i64> {
    Ok(i64::from_le_bytes(
        r.take(8)?.try_into().map_err(|_| Bad("time"))?,
    ))
}

/// Walks a node's listpack elements.
struct Items(std::vec::IntoIter<Vec<u8>>);

impl Items {
    fn bytes(&mut self) -> R<Vec<u8>> {
        self.0.next().ok_or(Bad("stream listpack truncated"))
    }
    fn int(&mut self) -> R<i64> {
        crate::util::parse_i64(&self.bytes()?).ok_or(Bad("stream listpack integer"))
    }
    fn count(&mut self) -> R<usize> {
        let n = self.int()?;
        if n < 0 || n as usize > self.0.len() {
            return Err(Bad("stream listpack count"));
        }
        Ok(n as usize)
    }
}

fn read_node(s: &mut Stream, master: StreamId, lp: &[u8]) -> R<()> {
    let mut it = Items(listpack::parse(lp)?.into_iter());
    let live = it.int()?;
    let deleted = it.int()?;
    let nfields = it.count()?;
    let master_fields = (0..nfields).map(|_| it.bytes()).collect::<R<Vec<_>>>()?;
    if it.int()? != 0 {
        return Err(Bad("stream master entry terminator"));
    }
    let mut node = Node {
        live: 0,
        deleted: 0,
        bytes: lp.len() as u64,
        master_fields,
        last_id: master,
    };
    let mut seen = 0usize;
    while it.0.len() > 0 {
        let flags = it.int()?;
        let id = StreamId::new(
            master.ms.wrapping_add(it.int()? as u64),
            master.seq.wrapping_add(it.int()? as u64),
        );
        let fields = if flags & FLAG_SAMEFIELDS != 0 {
            let mut f = Vec::with_capacity(node.master_fields.len() * 2);
            for name in &node.master_fields {
                f.push(name.clone());
                f.push(it.bytes()?);
            }
            f
        } else {
            let n = it.count()?;
            (0..2 * n).map(|_| it.bytes()).collect::<R<Vec<_>>>()?
        };
        it.int()?; // the entry's element count
        if id < master || (seen > 0 && id <= node.last_id) {
            return Err(Bad("stream entry IDs out of order"));
        }
        seen += 1;
        node.last_id = id;
        if flags & FLAG_DELETED != 0 {
            node.deleted += 1;
        } else {
            node.live += 1;
            s.entries.insert(id, fields);
        }
    }
    if node.live as i64 != live || node.deleted as i64 != deleted || node.live == 0 {
        return Err(Bad("stream listpack counts"));
    }
    s.nodes.insert(master, node);
    Ok(())
}

/// Reads a stream after its type byte.
pub fn decode(r: &mut Reader) -> R<Stream> {
    let mut s = Stream::default();
    let nodes = count(r, 2)?;
    for _ in 0..nodes {
        let key = r.string()?;
        let master = StreamId::from_be_bytes(&key).ok_or(Bad("stream node key"))?;
        // Nodes in order, each starting after the previous one's last entry.
        if s.nodes
            .iter()
            .next_back()
            .is_some_and(|(_, prev)| master <= prev.last_id)
        {
            return Err(Bad("stream nodes out of order"));
        }
        let lp = r.string()?;
        read_node(&mut s, master, &lp)?;
    }
    if r.length()? != s.len() {
        return Err(Bad("stream length"));
    }
    s.last_id = read_id(r)?;
    s.first_id = read_id(r)?;
    s.max_deleted_id = read_id(r)?;
    s.entries_added = r.length()?;
    if s.last_entry().is_some_and(|(id, _)| id > s.last_id) {
        return Err(Bad("stream last ID"));
    }
    let groups = count(r, 4)?;
    for _ in 0..groups {
        let name = r.string()?;
        let mut g = Group::new(read_id(r)?, r.length()? as i64);
        let pel = count(r, 17)?;
        for _ in 0..pel {
            let id = raw_id(r)?;
            let delivery_time = millis(r)?;
            let delivery_count = r.length()?;
            g.pel.insert(
                id,
                Pending {
                    consumer: Vec::new(),
                    delivery_time,
                    delivery_count,
                },
            );
        }
        let consumers = count(r, 9)?;
        // PEL entries given to a consumer (each must be given to exactly one).
        let mut owned: BTreeSet<StreamId> = BTreeSet::new();
        for _ in 0..consumers {
            let cname = r.string()?;
            let seen_time = millis(r)?;
            let n = count(r, 16)?;
            let mut ids = BTreeSet::new();
            for _ in 0..n {
                let id = raw_id(r)?;
                let p = g
                    .pel
                    .get_mut(&id)
                    .ok_or(Bad("consumer PEL entry not in group PEL"))?;
                if !owned.insert(id) {
                    return Err(Bad("PEL entry of two consumers"));
                }
                p.consumer = cname.clone();
                ids.insert(id);
            }
            g.consumers.insert(
                cname,
                Consumer {
                    seen_time,
                    pel: ids,
                },
            );
        }
        if owned.len() != g.pel.len() {
            return Err(Bad("group PEL entry without a consumer"));
        }
        if s.groups.insert(name, g).is_some() {
            return Err(Bad("duplicate consumer group"));
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Stream {
        let mut s = Stream::default();
        for i in 1..=250u64 {
            let fields = if i % 5 == 0 {
                vec![b"other".to_vec(), vec![b'x'; (i % 40) as usize]]
            } else {
                vec![b"name".to_vec(), format!("value-{i}").into_bytes()]
            };
            s.append(StreamId::new(i, i % 3), fields, 100, 4096);
        }
        for i in (101..=200).chain([1, 7, 230]) {
            s.delete(StreamId::new(i, i % 3));
        }
        let mut g = Group::new(StreamId::new(9, 0), 9);
        g.assign(StreamId::new(2, 2), b"alice", 1_700_000_000_000, 2);
        g.assign(StreamId::new(4, 1), b"", 1_700_000_000_001, 1);
        g.consumer(b"idle", 5);
        s.groups.insert(b"g".to_vec(), g);
        s.groups
            .insert(b"none".to_vec(), Group::new(StreamId::MIN, -1));
        s
    }

    fn decode_body(body: &[u8]) -> R<Stream> {
        match super::super::decode::value(body)? {
            crate::value::Value::Stream(s) => Ok(*s),
            _ => Err(Bad("not a stream")),
        }
    }

    #[test]
    fn round_trips() {
        let s = sample();
        let mut out = Vec::new();
        encode(&s, &mut out);
        let back = decode_body(&out).unwrap();
        assert_eq!(back.entries, s.entries);
        assert_eq!(back.groups, s.groups);
        assert_eq!(
            (
                back.last_id,
                back.first_id,
                back.max_deleted_id,
                back.entries_added
            ),
            (s.last_id, s.first_id, s.max_deleted_id, s.entries_added)
        );
        assert_eq!(
            back.nodes.keys().collect::<Vec<_>>(),
            s.nodes.keys().collect::<Vec<_>>()
        );
    }

    /// Damaged payloads never panic, and whatever decodes can still be used.
    #[test]
    fn damaged_payloads_are_refused_or_usable() {
        let mut out = Vec::new();
        encode(&sample(), &mut out);
        let mut seed = 0x9e3779b97f4a7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for cut in 0..out.len() {
            let _ = decode_body(&out[..cut]);
        }
        for _ in 0..3000 {
            let mut m = out.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() as usize) % m.len();
                m[at] = next() as u8;
            }
            if let Ok(mut s) = decode_body(&m) {
                let last = s.last_id;
                let _ = crate::stream::entries::range_of(
                    &s.entries,
                    StreamId::MIN,
                    StreamId::MAX,
                    true,
                    0,
                );
                s.trim(crate::stream::Trim::MaxLen(3), true, 100);
                s.trim(crate::stream::Trim::MaxLen(1), false, 0);
                s.delete(StreamId::new(2, 2));
                for g in s.groups.values() {
                    let _ = s.group_lag(s.len(), g);
                }
                if let Some(id) = last.incr() {
                    s.append(id, vec![b"a".to_vec(), b"b".to_vec()], 100, 4096);
                }
                s.rax_nodes();
            }
        }
    }
}
