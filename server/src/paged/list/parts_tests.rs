//! A manifest stored in parts (`parts`), through the manifest's own interface: what each save
//! writes, and what a load reads back from the records those saves leave.

use super::manifest::{PagedList, Seg, SEG_LEN};
use crate::paged::parts::{part_key, PART_MAX};
use kvtier_core::LinkedWrite;
use std::collections::{HashMap, VecDeque};

/// A segment whose fields tell it apart.
fn seg(i: u32) -> Seg {
    Seg {
        id: i,
        count: 1 + i % 7,
        bytes: 10 + u64::from(i),
    }
}

/// The part records a store holds, by key.
type Stored = HashMap<Vec<u8>, Vec<u8>>;

/// What a save of `m` writes beside its own record; the save reaches the store when `commit`.
fn save(m: &PagedList, stored: &mut Stored, commit: bool) -> Vec<LinkedWrite> {
    let mut out = Vec::new();
    let done = m.linked_writes(&mut out);
    assert_eq!(done.is_some(), !out.is_empty());
    if commit {
        for w in &out {
            match &w.put {
                None => stored.remove(&w.key),
                Some((_, payload)) => stored.insert(w.key.clone(), payload.clone()),
            };
        }
        if let Some(done) = done {
            done();
        }
    }
    out
}

/// The manifest as a load reads it from its own record and the stored parts.
fn reload(m: &PagedList, stored: &Stored) -> PagedList {
    let mut rec = Vec::new();
    m.encode(&mut rec);
    let mut back = PagedList::decode(&rec).unwrap();
    let keys = back.linked_keys();
    if !keys.is_empty() {
        back.link(keys.iter().map(|k| stored.get(k).cloned()).collect())
            .unwrap();
    }
    back
}

fn sync_len(m: &mut PagedList) {
    m.len = m.segs().iter().map(|s| u64::from(s.count)).sum();
}

/// A long manifest is saved as parts; after that, a push at either end, a change in the middle
/// or a removal writes one or two part records and a small record of its own, and every state
/// reads back the same from what the saves left.
#[test]
fn a_long_manifest_saves_the_parts_that_changed() {
    let n = PART_MAX as u32 * 8;
    let mut m = PagedList::new(5, n, (0..n).map(seg).collect());
    assert!(m.in_parts());
    let mut stored = Stored::new();
    let first = save(&m, &mut stored, true);
    assert_eq!(first.len(), m.part_ids().len());
    assert_eq!(reload(&m, &stored), m);
    assert!(save(&m, &mut stored, true).is_empty(), "nothing changed");
    let mut next = n;
    let mut step = |m: &mut PagedList, what: &str, f: &mut dyn FnMut(&mut PagedList)| {
        f(m);
        sync_len(m);
        let writes = save(m, &mut stored, true);
        assert!(
            (1..=3).contains(&writes.len()),
            "{what}: {} part records written",
            writes.len()
        );
        let mut rec = Vec::new();
        m.encode(&mut rec);
        assert!(
            rec.len() * 8 < m.segs().len() * SEG_LEN,
            "{what}: the manifest's own record is {} bytes",
            rec.len()
        );
        assert_eq!(reload(m, &stored).segs(), m.segs(), "{what}");
    };
    for _ in 0..600 {
        step(&mut m, "push at the head", &mut |m| {
            m.insert_seg(0, seg(next));
            next += 1;
        });
    }
    for _ in 0..600 {
        step(&mut m, "push at the tail", &mut |m| {
            m.insert_seg(m.segs().len(), seg(next));
            next += 1;
        });
    }
    step(&mut m, "a count in the middle", &mut |m| {
        let mid = m.segs().len() / 2;
        m.seg_mut(mid).count += 1;
    });
    for i in 0..800 {
        step(&mut m, "removal", &mut |m| {
            m.remove_seg((i * 7919) % m.segs().len());
        });
    }
}

/// A save whose batch fails (or has not reached the store yet) leaves everything it wrote to
/// the next one; a save in flight while the manifest changes again does not hide the change.
#[test]
fn a_failed_or_overtaken_save_is_written_again() {
    let n = PART_MAX as u32 * 4;
    let mut m = PagedList::new(5, n, (0..n).map(seg).collect());
    let mut stored = Stored::new();
    save(&m, &mut stored, true);
    m.seg_mut(0).bytes += 1;
    let failed = save(&m, &mut stored, false);
    assert_eq!(failed.len(), 1);
    assert_eq!(save(&m, &mut stored, false), failed, "written again");
    // A snapshot taken for a save; the manifest changes while it is in flight.
    let snapshot = m.clone();
    let last = m.segs().len() - 1;
    m.seg_mut(last).bytes += 1;
    save(&snapshot, &mut stored, true);
    let after = save(&m, &mut stored, true);
    assert_eq!(after.len(), 1, "the change after the snapshot");
    assert_eq!(reload(&m, &stored), m);
}

/// Random inserts, removals and changes, model-checked against a plain table: the manifest
/// goes to parts, back to one record (every part deleted) and to parts again, and after every
/// save the part records in the store are exactly the parts in use and read back the table.
#[test]
fn parts_follow_any_sequence_of_changes() {
    let mut m = PagedList::new(7, 0, VecDeque::new());
    let mut model: VecDeque<Seg> = VecDeque::new();
    let mut stored = Stored::new();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = 0u32;
    let (mut was_in_parts, mut back_to_one) = (false, false);
    for round in 0..40_000 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // Grow for a while, then shrink, and so on.
        let grow = (round / 12_000) % 2 == 0;
        let r = rng % 100;
        if model.is_empty() || (grow && r < 70) || (!grow && r < 25) {
            let at = (rng >> 8) as usize % (model.len() + 1);
            m.insert_seg(at, seg(next));
            model.insert(at, seg(next));
            next += 1;
        } else if r < 95 {
            let at = (rng >> 8) as usize % model.len();
            assert_eq!(m.remove_seg(at), model.remove(at));
        } else {
            let at = (rng >> 8) as usize % model.len();
            m.seg_mut(at).bytes += 1;
            model[at].bytes += 1;
        }
        assert_eq!(m.segs(), &model);
        assert!(m.layout_is_sound(), "round {round}");
        was_in_parts |= m.in_parts();
        back_to_one |= was_in_parts && !m.in_parts();
        if round % 97 == 0 && !model.is_empty() {
            sync_len(&mut m);
            save(&m, &mut stored, true);
            assert_eq!(reload(&m, &stored).segs(), &model, "round {round}");
            let mut want: Vec<Vec<u8>> = m
                .part_ids()
                .into_iter()
                .map(|id| part_key(m.gen, id).to_vec())
                .collect();
            let mut have: Vec<Vec<u8>> = stored.keys().cloned().collect();
            // Dropped parts already deleted are no longer named.
            want.retain(|k| stored.contains_key(k));
            want.sort();
            have.sort();
            assert_eq!(have, want, "round {round}");
        }
    }
    assert!(back_to_one && m.in_parts());
}

/// Part records that are missing, short or of the wrong count fail the load.
#[test]
fn damaged_parts_are_reported() {
    let n = PART_MAX as u32 * 3;
    let m = PagedList::new(5, n, (0..n).map(seg).collect());
    let mut stored = Stored::new();
    save(&m, &mut stored, true);
    let mut rec = Vec::new();
    m.encode(&mut rec);
    let back = PagedList::decode(&rec).unwrap();
    let parts: Vec<Option<Vec<u8>>> = back
        .linked_keys()
        .iter()
        .map(|k| stored.get(k).cloned())
        .collect();
    assert!(parts.len() > 1 && parts.iter().all(Option::is_some));
    let mut missing = parts.clone();
    missing[1] = None;
    assert!(back.clone().link(missing).is_err());
    let mut short = parts.clone();
    short[0].as_mut().unwrap().pop();
    assert!(back.clone().link(short).is_err());
    assert!(back.clone().link(parts[1..].to_vec()).is_err());
    let mut wrong_len = back.clone();
    wrong_len.len += 1;
    assert!(wrong_len.link(parts.clone()).is_err());
    assert!(PagedList::decode(&rec[..rec.len() - 1]).is_err());
    let mut linked = back;
    linked.link(parts).unwrap();
    assert_eq!(linked, m);
    assert!(linked.linked_keys().is_empty());
}
