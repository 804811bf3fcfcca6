//! The on-disk payload of a stream record: everything, so that a stream loaded back from the
//! store is the same value (entries, nodes, IDs, counters, groups, PELs, consumers).

use super::group::{Consumer, Group, Pending};
use super::{Node, Stream, StreamId};
use std::collections::{BTreeMap, BTreeSet};

/// Format version of the payload, first byte, so that it can evolve.
const VERSION: u8 = 1;

fn u64_(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn id_(out: &mut Vec<u8>, id: StreamId) {
    u64_(out, id.ms);
    u64_(out, id.seq);
}

fn bytes_(out: &mut Vec<u8>, b: &[u8]) {
    u64_(out, b.len() as u64);
    out.extend_from_slice(b);
}

pub fn encode(s: &Stream, out: &mut Vec<u8>) {
    out.push(VERSION);
    id_(out, s.last_id);
    id_(out, s.first_id);
    u64_(out, s.entries_added);
    id_(out, s.max_deleted_id);
    u64_(out, s.entries.len() as u64);
    for (id, fields) in &s.entries {
        id_(out, *id);
        u64_(out, fields.len() as u64);
        fields.iter().for_each(|f| bytes_(out, f));
    }
    u64_(out, s.nodes.len() as u64);
    for (id, n) in &s.nodes {
        id_(out, *id);
        u64_(out, n.live);
        u64_(out, n.deleted);
        u64_(out, n.bytes);
        id_(out, n.last_id);
        u64_(out, n.master_fields.len() as u64);
        n.master_fields.iter().for_each(|f| bytes_(out, f));
    }
    u64_(out, s.groups.len() as u64);
    for (name, g) in &s.groups {
        bytes_(out, name);
        id_(out, g.last_id);
        u64_(out, g.entries_read as u64);
        u64_(out, g.pel.len() as u64);
        for (id, p) in &g.pel {
            id_(out, *id);
            bytes_(out, &p.consumer);
            u64_(out, p.delivery_time as u64);
            u64_(out, p.delivery_count);
        }
        u64_(out, g.consumers.len() as u64);
        for (cname, c) in &g.consumers {
            bytes_(out, cname);
            u64_(out, c.seen_time as u64);
        }
    }
}

struct Reader<'a>(&'a [u8]);

type R<T> = Result<T, &'static str>;

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        if self.0.len() < n {
            return Err("stream payload truncated");
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u64(&mut self) -> R<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }
    fn id(&mut self) -> R<StreamId> {
        Ok(StreamId::new(self.u64()?, self.u64()?))
    }
    fn bytes(&mut self) -> R<Vec<u8>> {
        let n = self.count(1)?;
        Ok(self.take(n)?.to_vec())
    }
    /// A count of items taking at least `min` bytes each: refuses counts the rest cannot hold.
    fn count(&mut self, min: usize) -> R<usize> {
        let n = self.u64()?;
        if n > (self.0.len() / min.max(1)) as u64 {
            return Err("stream payload count out of range");
        }
        Ok(n as usize)
    }
}

pub fn decode(payload: &[u8]) -> Result<Stream, &'static str> {
    let mut r = Reader(payload);
    if r.take(1)? != [VERSION] {
        return Err("unknown stream payload version");
    }
    let mut s = Stream {
        last_id: r.id()?,
        first_id: r.id()?,
        entries_added: r.u64()?,
        max_deleted_id: r.id()?,
        ..Default::default()
    };
    for _ in 0..r.count(24)? {
        let id = r.id()?;
        let n = r.count(8)?;
        let fields = (0..n).map(|_| r.bytes()).collect::<R<Vec<_>>>()?;
        s.entries.insert(id, fields);
    }
    for _ in 0..r.count(64)? {
        let master = r.id()?;
        let live = r.u64()?;
        let deleted = r.u64()?;
        let bytes = r.u64()?;
        let last_id = r.id()?;
        let n = r.count(8)?;
        let master_fields = (0..n).map(|_| r.bytes()).collect::<R<Vec<_>>>()?;
        s.nodes.insert(
            master,
            Node {
                live,
                deleted,
                bytes,
                master_fields,
                last_id,
            },
        );
    }
    for _ in 0..r.count(40)? {
        let name = r.bytes()?;
        let mut g = Group::new(r.id()?, r.u64()? as i64);
        let mut owners: BTreeMap<Vec<u8>, BTreeSet<StreamId>> = BTreeMap::new();
        for _ in 0..r.count(40)? {
            let id = r.id()?;
            let consumer = r.bytes()?;
            let delivery_time = r.u64()? as i64;
            let delivery_count = r.u64()?;
            owners.entry(consumer.clone()).or_default().insert(id);
            g.pel.insert(
                id,
                Pending {
                    consumer,
                    delivery_time,
                    delivery_count,
                },
            );
        }
        for _ in 0..r.count(16)? {
            let cname = r.bytes()?;
            let seen_time = r.u64()? as i64;
            let pel = owners.remove(&cname).unwrap_or_default();
            g.consumers.insert(cname, Consumer { seen_time, pel });
        }
        if !owners.is_empty() {
            return Err("pending entry of a missing consumer");
        }
        s.groups.insert(name, g);
    }
    if !r.0.is_empty() {
        return Err("trailing bytes after stream");
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream with everything set: nodes, deletions, groups, PEL, consumers.
    pub fn sample() -> Stream {
        let mut s = Stream::default();
        for i in 1..=30u64 {
            let fields = if i % 4 == 0 {
                vec![b"other".to_vec(), i.to_string().into_bytes()]
            } else {
                vec![
                    b"f".to_vec(),
                    b"v".to_vec(),
                    b"n".to_vec(),
                    i.to_string().into_bytes(),
                ]
            };
            s.append(StreamId::new(i, i % 3), fields, 10, 4096);
        }
        s.delete(StreamId::new(3, 0));
        s.delete(StreamId::new(11, 2));
        let mut g = Group::new(StreamId::new(6, 0), 6);
        g.assign(StreamId::new(2, 2), b"alice", 1_700_000_000_000, 1);
        g.assign(StreamId::new(4, 1), b"bob", 1_700_000_000_001, 3);
        g.consumer(b"idle", 5);
        s.groups.insert(b"g".to_vec(), g);
        s.groups
            .insert(b"empty".to_vec(), Group::new(StreamId::MIN, -1));
        s.max_deleted_id = StreamId::new(11, 2);
        s
    }

    #[test]
    fn round_trips_and_refuses_truncation() {
        let s = sample();
        let mut out = Vec::new();
        encode(&s, &mut out);
        assert_eq!(decode(&out).unwrap(), s);
        for cut in 0..out.len() {
            assert!(decode(&out[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode(&Stream::default().encoded()).is_ok());
    }

    impl Stream {
        fn encoded(&self) -> Vec<u8> {
            let mut out = Vec::new();
            encode(self, &mut out);
            out
        }
    }
}
