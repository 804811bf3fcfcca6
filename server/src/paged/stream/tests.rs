//! A paged stream against a stream in one record over a real engine and an in-memory store,
//! with pages saved and evicted along the way: every operation must leave both the same.

use super::*;
use crate::stream::{EntriesWrite, Plain, Trim};
use crate::testing::{engine, save_and_evict};
use rand::{rngs::StdRng, Rng, SeedableRng};

const NOW: i64 = 1;

/// Runs `f` on both forms.
fn both(
    e: &mut Engine<Value>,
    plain: &mut Stream,
    paged: &mut PagedStream,
    mut f: impl FnMut(&mut Stream, &mut dyn EntriesWrite) -> String,
) {
    let mut entries = std::mem::take(&mut plain.entries);
    let a = f(plain, &mut Plain(&mut entries));
    plain.entries = entries;
    let PagedStream { idx, meta } = paged;
    let mut es = Paged {
        engine: e,
        idx,
        now_ms: NOW,
        page_bytes: 200,
    };
    let b = f(meta, &mut es);
    assert_eq!(a, b);
}

#[test]
fn paged_stream_matches_one_record() {
    let mut rng = StdRng::seed_from_u64(19);
    let mut e = engine();
    let mut plain = Stream::default();
    let mut paged = page_out(&mut e, Stream::default(), 200, NOW);
    let mut next = 1u64;
    for step in 0..4000 {
        let op = rng.random_range(0..100);
        let a = StreamId::new(rng.random_range(0..next + 2), rng.random_range(0..3));
        let b = StreamId::new(rng.random_range(0..next + 2), rng.random_range(0..3));
        let n = rng.random_range(0..40u64);
        let approx = rng.random_bool(0.5);
        let vlen = rng.random_range(0..30);
        both(&mut e, &mut plain, &mut paged, |s, es| match op {
            0..=49 => {
                let id = StreamId::new(next, 0);
                let f = vec![b"f".to_vec(), vec![b'x'; vlen]];
                s.append_in(es, id, f, 10, 4096).unwrap();
                format!("add {id:?}")
            }
            50..=64 => format!("del {}", s.delete_in(es, a).unwrap()),
            65..=69 => format!(
                "trim {}",
                s.trim_in(es, Trim::MaxLen(n * 5), approx, 0).unwrap()
            ),
            70..=72 => format!("trim {}", s.trim_in(es, Trim::MinId(a), approx, 0).unwrap()),
            73..=89 => format!(
                "{:?} {:?}",
                es.range(a.min(b), a.max(b), op % 2 == 0, n as usize)
                    .unwrap(),
                es.count_below(a).unwrap()
            ),
            _ => format!(
                "{:?} {:?} {:?} {:?}",
                es.first_entry().unwrap(),
                es.last_entry().unwrap(),
                es.get(a).unwrap(),
                es.count()
            ),
        });
        if op < 50 {
            next += 1;
        }
        let mut meta = plain.clone();
        meta.entries.clear();
        assert_eq!(meta, paged.meta, "step {step}");
        if step % 97 == 0 {
            save_and_evict(&mut e);
        }
    }
    assert!(paged.idx.pages().len() > 3, "{}", paged.idx.pages().len());
    check_index(&mut e, &paged);
    let whole = materialize(&mut e, &paged, NOW).unwrap();
    assert_eq!(whole, plain);
    let copy = deep_copy(&mut e, &paged, NOW).unwrap();
    save_and_evict(&mut e);
    assert_eq!(materialize(&mut e, &copy, NOW).unwrap(), plain);
}

/// The index agrees with the pages: each page's count, bytes and ID range, and the total.
fn check_index(e: &mut Engine<Value>, paged: &PagedStream) {
    let mut total = 0;
    for i in 0..paged.idx.pages().len() {
        let sp = paged.idx.pages()[i];
        let p = page(e, &paged.idx, i, NOW).unwrap();
        assert_eq!(p.len(), sp.count as usize);
        assert_eq!(p.values().map(entry_bytes).sum::<u64>(), sp.bytes);
        assert_eq!(p.keys().next().copied(), Some(sp.first));
        assert_eq!(p.keys().next_back().copied(), Some(sp.last));
        if i > 0 {
            assert!(paged.idx.pages()[i - 1].last < sp.first);
        }
        total += u64::from(sp.count);
    }
    assert_eq!(total, paged.idx.len);
}

/// XDEL scattered over a long stream merges the pages it leaves small into their neighbours:
/// the stream keeps about as many pages as its entries fill, every entry left reads back.
#[test]
fn scattered_deletions_merge_small_pages() {
    let mut e = engine();
    let mut plain = Stream::default();
    let mut paged = page_out(&mut e, Stream::default(), 200, NOW);
    for n in 1..=2000u64 {
        both(&mut e, &mut plain, &mut paged, |s, es| {
            // 41 bytes an entry: four to a page of 200, one is under a quarter of a page.
            let f = vec![b"f".to_vec(), Vec::new()];
            s.append_in(es, StreamId::new(n, 0), f, 10, 4096).unwrap();
            String::new()
        });
    }
    let before = paged.idx.pages().len();
    save_and_evict(&mut e);
    // Nine entries in ten go, spread over every page; pages are evicted half way, so merges
    // read neighbours from the store too.
    for n in (1..=2000u64).filter(|n| n % 10 != 0) {
        both(&mut e, &mut plain, &mut paged, |s, es| {
            format!("{}", s.delete_in(es, StreamId::new(n, 0)).unwrap())
        });
        if n == 1000 {
            save_and_evict(&mut e);
        }
    }
    check_index(&mut e, &paged);
    let after = paged.idx.pages().len();
    let bytes: u64 = paged.idx.pages().iter().map(|p| p.bytes).sum();
    // Without merging every page would still hold its tenth: as many pages as before.
    assert!(after * 4 < before, "{before} pages -> {after}");
    assert!(
        (after as u64) <= bytes / 50 + 2,
        "{after} pages for {bytes} bytes"
    );
    assert_eq!(materialize(&mut e, &paged, NOW).unwrap(), plain);
    save_and_evict(&mut e);
    assert_eq!(materialize(&mut e, &paged, NOW).unwrap(), plain);
}
