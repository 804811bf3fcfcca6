//! A paged zset against a plain `ZSet` over a real engine and an in-memory store, with pages
//! saved and evicted along the way (so what is checked is what the page records hold).

use super::*;
use crate::testing::{engine, engine_on, save_and_evict};
use crate::zset::{LexBound, LexRange, RangeIter, ScoreRange};
use kvtier_core::memstore::MemStore;
use kvtier_core::{DiskStore, Residency, WriteOp};
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::sync::Arc;

const NOW: i64 = 1;

fn resident_pages(e: &mut Engine<Value>, m: &PagedZSet) -> usize {
    let pages = e.pages_db();
    m.page_ids()
        .into_iter()
        .filter(|&id| e.residency(pages, &page_key(m.gen(), id)) == Residency::Resident)
        .count()
}

type Items = Vec<(Vec<u8>, f64)>;

fn items(it: RangeIter<'_>) -> Items {
    it.map(|(m, s)| (m.to_vec(), s)).collect()
}

fn all(z: &ZSet) -> Items {
    z.iter().map(|(m, s)| (m.to_vec(), s)).collect()
}

const SCORES: [f64; 8] = [
    f64::NEG_INFINITY,
    -2.5,
    -0.0,
    0.0,
    1.0,
    3.0,
    7.0,
    f64::INFINITY,
];

/// A short member over four letters (ties and lex bounds are common), now and then one longer
/// than a page (a segment of one element, which cannot split).
fn member(rng: &mut StdRng) -> Vec<u8> {
    let mut m: Vec<u8> = (0..rng.random_range(0..6))
        .map(|_| b'a' + rng.random_range(0..4u8))
        .collect();
    if rng.random_bool(0.03) {
        m.resize(m.len() + 300, b'~');
    }
    m
}

fn lex_bound(rng: &mut StdRng) -> LexBound {
    let v = member(rng);
    match rng.random_range(0..6) {
        0 => LexBound::NegInf,
        1 => LexBound::PosInf,
        2 | 3 => LexBound::Incl(v),
        _ => LexBound::Excl(v),
    }
}

/// The manifest agrees with the pages: order, counts, bytes, last elements, encoding.
fn check_manifest(e: &mut Engine<Value>, m: &PagedZSet, model: &ZSet) {
    assert_eq!(m.len(), model.len() as u64);
    let total: u64 = m.segs().iter().map(|s| u64::from(s.count)).sum();
    assert_eq!(total, m.len());
    for w in m.segs().windows(2) {
        assert!(w[0].last < w[1].last, "segments out of order");
    }
    for i in 0..m.segs().len() {
        let p = seg_page(e, m, i, NOW).expect("segment page");
        let bytes: u64 = p.iter().map(|(x, _)| elem_bytes(x)).sum();
        assert_eq!(bytes, m.segs()[i].bytes, "bytes of segment {i}");
        assert_eq!(last_of(p).as_ref(), Some(&m.segs()[i].last));
    }
    let mut ids = m.page_ids();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), m.page_ids().len());
    if !m.is_empty() {
        let mut out = Vec::new();
        m.encode(&mut out);
        assert_eq!(PagedZSet::decode(&out).unwrap(), *m);
    }
}

/// Every query of the paged set answers what the model answers.
fn check_queries(e: &mut Engine<Value>, m: &PagedZSet, model: &ZSet, rng: &mut StdRng) {
    let len = model.len() as u64;
    for _ in 0..8 {
        let x = member(rng);
        assert_eq!(score(e, m, &x, NOW).unwrap(), model.score(&x), "score");
        let want = model.rank(&x).map(|r| r as u64);
        assert_eq!(rank(e, m, &x, false, NOW).unwrap(), want, "rank");
        let rev = want.map(|r| len - 1 - r);
        assert_eq!(rank(e, m, &x, true, NOW).unwrap(), rev, "revrank");
    }
    for _ in 0..6 {
        let a = rng.random_range(0..len + 2);
        let b = rng.random_range(0..len + 2);
        for rev in [false, true] {
            let got = range_by_rank(e, m, a, b, rev, NOW).unwrap();
            let want = items(model.range_by_rank(a as usize, b as usize, rev));
            assert_eq!(got, want, "ranks {a}..={b} rev={rev}");
        }
    }
    for _ in 0..6 {
        let r = ScoreRange {
            min: SCORES[rng.random_range(0..SCORES.len())],
            max: SCORES[rng.random_range(0..SCORES.len())],
            minex: rng.random(),
            maxex: rng.random(),
        };
        assert_eq!(
            count_by_score(e, m, r, NOW).unwrap(),
            model.count_by_score(r) as u64,
            "{r:?}"
        );
        let (offset, limit) = (rng.random_range(0..4), rng.random_range(0..40));
        for rev in [false, true] {
            let got = range_by_score(e, m, r, rev, offset, limit, NOW).unwrap();
            let want: Items = items(model.range_by_score(r, rev))
                .into_iter()
                .skip(offset as usize)
                .take(limit as usize)
                .collect();
            assert_eq!(got, want, "{r:?} rev={rev} limit {offset} {limit}");
        }
    }
    for _ in 0..6 {
        let r = LexRange {
            min: lex_bound(rng),
            max: lex_bound(rng),
        };
        assert_eq!(
            count_by_lex(e, m, &r, NOW).unwrap(),
            model.range_by_lex(&r, false).count() as u64,
            "{r:?}"
        );
        let (offset, limit) = (rng.random_range(0..4), rng.random_range(0..40));
        for rev in [false, true] {
            let far = |x: &[u8]| if rev { r.gte_min(x) } else { r.lte_max(x) };
            let got = range_by_lex(e, m, &r, rev, offset, limit, NOW).unwrap();
            let want: Items = items(model.range_by_lex_from(&r, rev))
                .into_iter()
                .skip(offset as usize)
                .take_while(|(x, _)| far(x))
                .take(limit as usize)
                .collect();
            assert_eq!(got, want, "{r:?} rev={rev} limit {offset} {limit}");
        }
    }
}

/// The segment positions whose pages are resident.
fn resident_segs(e: &mut Engine<Value>, m: &PagedZSet) -> Vec<usize> {
    let pages = e.pages_db();
    (0..m.segs().len())
        .filter(|&i| e.residency(pages, &m.seg_key(i)) == Residency::Resident)
        .collect()
}

/// A count by score reads at most the two pages `score_span` names, a range by score the
/// pages between them (what a planner would load first).
fn check_score_reads_stay_in_span(e: &mut Engine<Value>, m: &PagedZSet, rng: &mut StdRng) {
    let r = ScoreRange {
        min: f64::from(rng.random_range(-20..20)) / 4.0,
        max: f64::from(rng.random_range(-20..20)) / 4.0,
        minex: rng.random(),
        maxex: rng.random(),
    };
    let before = resident_segs(e, m);
    let span = m.score_span(r);
    count_by_score(e, m, r, NOW).unwrap();
    let ends: Vec<usize> = span.map_or(Vec::new(), |(a, b)| vec![a, b]);
    for i in resident_segs(e, m) {
        assert!(before.contains(&i) || ends.contains(&i), "{r:?} read {i}");
    }
    range_by_score(e, m, r, rng.random(), 0, u64::MAX, NOW).unwrap();
    for i in resident_segs(e, m) {
        let inside = span.is_some_and(|(a, b)| (a..=b).contains(&i));
        assert!(before.contains(&i) || inside, "{r:?} read {i}");
    }
}

/// Random writes to a paged set and a plain one side by side, tiny pages so that segments
/// split, merge and empty all the time; queries compared every few steps, pages saved and
/// evicted every few hundred.
#[test]
fn a_paged_zset_behaves_like_a_zset() {
    for seed in 0..8u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        // Every other seed keeps one score, which is what lex ranges are for.
        let one_score = seed % 2 == 1;
        let pick_score = |rng: &mut StdRng| {
            if one_score {
                5.0
            } else if rng.random_bool(0.3) {
                SCORES[rng.random_range(0..SCORES.len())]
            } else {
                f64::from(rng.random_range(-20..20)) / 4.0
            }
        };
        let page_bytes = 150 + 100 * (seed % 3);
        let mut e = engine();
        let mut model = ZSet::default();
        for _ in 0..40 {
            model.insert(member(&mut rng), pick_score(&mut rng));
        }
        let mut m = page_out(&mut e, &model, page_bytes, NOW);
        check_manifest(&mut e, &m, &model);
        let mut evictions = 0;
        for step in 0..3000 {
            match rng.random_range(0..20) {
                0..=13 => {
                    let (x, s) = (member(&mut rng), pick_score(&mut rng));
                    let got = insert(&mut e, &mut m, x.clone(), s, page_bytes, NOW).unwrap();
                    assert_eq!(got, model.insert(x, s), "insert");
                }
                14..=17 => {
                    let x = member(&mut rng);
                    let got = remove(&mut e, &mut m, &x, page_bytes, NOW).unwrap();
                    assert_eq!(got, model.remove(&x), "remove");
                }
                _ => {
                    let (n, max) = (rng.random_range(0..6), rng.random());
                    let got = pop(&mut e, &mut m, n, max, page_bytes, NOW).unwrap();
                    let want: Items = (0..n).map_while(|_| model.pop(max)).collect();
                    assert_eq!(got, want, "pop {n} max={max}");
                }
            }
            if step % 25 == 0 {
                check_manifest(&mut e, &m, &model);
                check_queries(&mut e, &m, &model, &mut rng);
            }
            if step % 300 == 150 {
                save_and_evict(&mut e);
                check_score_reads_stay_in_span(&mut e, &m, &mut rng);
                if !m.segs().is_empty() && resident_pages(&mut e, &m) < m.page_ids().len() {
                    evictions += 1;
                }
            }
        }
        assert!(evictions > 0, "no page was ever evicted");
        save_and_evict(&mut e);
        check_manifest(&mut e, &m, &model);
        check_queries(&mut e, &m, &model, &mut rng);
        assert_eq!(all(&materialize(&mut e, &m, NOW).unwrap()), all(&model));
        // Drained to nothing (segments empty and merge on the way), then written again.
        let mut step = 0;
        while !model.is_empty() {
            if rng.random_bool(0.5) {
                let x = all(&model)[rng.random_range(0..model.len())].0.clone();
                let got = remove(&mut e, &mut m, &x, page_bytes, NOW).unwrap();
                assert_eq!(got, model.remove(&x), "remove");
            } else {
                let (n, max) = (rng.random_range(1..4), rng.random());
                let got = pop(&mut e, &mut m, n, max, page_bytes, NOW).unwrap();
                let want: Items = (0..n).map_while(|_| model.pop(max)).collect();
                assert_eq!(got, want, "pop {n} max={max}");
            }
            step += 1;
            if step % 10 == 0 {
                check_manifest(&mut e, &m, &model);
                check_queries(&mut e, &m, &model, &mut rng);
            }
            if step % 100 == 50 {
                save_and_evict(&mut e);
            }
        }
        assert!(m.segs().is_empty() && m.is_empty());
        check_queries(&mut e, &m, &model, &mut rng);
        for _ in 0..50 {
            let (x, s) = (member(&mut rng), pick_score(&mut rng));
            let got = insert(&mut e, &mut m, x.clone(), s, page_bytes, NOW).unwrap();
            assert_eq!(got, model.insert(x, s), "insert");
        }
        check_manifest(&mut e, &m, &model);
        check_queries(&mut e, &m, &model, &mut rng);
    }
}

#[test]
fn page_out_then_materialize_gives_the_set_back() {
    let mut e = engine();
    let mut z = ZSet::default();
    for i in 0..500u32 {
        z.insert(format!("member:{i}").into_bytes(), f64::from(i % 37) - 3.0);
    }
    let m = page_out(&mut e, &z, 512, NOW);
    assert!(m.segs().len() > 10 && m.index.page_count() > 4);
    // Pages of about `page_bytes`: none above it.
    assert!(m.segs().iter().all(|s| s.bytes <= 512));
    save_and_evict(&mut e);
    assert_eq!(resident_pages(&mut e, &m), 0);
    assert_eq!(materialize(&mut e, &m, NOW).unwrap(), z);
    // Materializing read the segments, not the member pages.
    assert_eq!(resident_pages(&mut e, &m), m.segs().len());
    for (x, s) in z.iter() {
        assert_eq!(score(&mut e, &m, x, NOW).unwrap(), Some(s));
    }
}

#[test]
fn a_deep_copy_has_pages_of_its_own() {
    let mut e = engine();
    let mut z = ZSet::default();
    for i in 0..200u32 {
        z.insert(format!("m{i}").into_bytes(), f64::from(i));
    }
    let mut m = page_out(&mut e, &z, 256, NOW);
    let copy = deep_copy(&mut e, &m, NOW).unwrap();
    assert_ne!(copy.gen(), m.gen());
    // The copy shares the resident pages (a pointer each) until one side changes one.
    let pages = e.pages_db();
    for seg in 0..m.segs().len() {
        let (a, b) = (
            e.peek_shared(pages, &m.seg_key(seg)).unwrap(),
            e.peek_shared(pages, &copy.seg_key(seg)).unwrap(),
        );
        assert!(Arc::ptr_eq(&a, &b), "segment {seg}");
    }
    for i in 0..100u32 {
        remove(&mut e, &mut m, format!("m{i}").as_bytes(), 256, NOW).unwrap();
    }
    insert(&mut e, &mut m, b"m150".to_vec(), -1.0, 256, NOW).unwrap();
    save_and_evict(&mut e);
    assert_eq!(materialize(&mut e, &copy, NOW).unwrap(), z);
    assert_eq!(score(&mut e, &copy, b"m150", NOW).unwrap(), Some(150.0));
    assert_eq!(score(&mut e, &copy, b"m3", NOW).unwrap(), Some(3.0));
    assert_eq!(rank(&mut e, &copy, b"m150", false, NOW).unwrap(), Some(150));
    assert_eq!(rank(&mut e, &m, b"m150", false, NOW).unwrap(), Some(0));
    assert_eq!(m.len(), 100);
}

#[test]
fn writes_touch_only_what_they_change() {
    let mut e = engine();
    let mut z = ZSet::default();
    for i in 0..300u32 {
        z.insert(format!("m{i:03}").into_bytes(), f64::from(i));
    }
    let mut m = page_out(&mut e, &z, 256, NOW);
    save_and_evict(&mut e);
    // The same score again, and a member that is not there: nothing becomes dirty.
    assert_eq!(
        insert(&mut e, &mut m, b"m007".to_vec(), 7.0, 256, NOW).unwrap(),
        Some(7.0)
    );
    assert_eq!(remove(&mut e, &mut m, b"nope", 256, NOW).unwrap(), None);
    assert_eq!(e.dirty_len(), 0);
    // A planner sees a score only once the member page is in memory, and names its segment.
    assert_eq!(peek_score(&e, &m, b"m150"), None);
    assert_eq!(score(&mut e, &m, b"m150", NOW).unwrap(), Some(150.0));
    assert_eq!(peek_score(&e, &m, b"m150"), Some(150.0));
    let seg = m.seg_page_of(150.0, b"m150").unwrap();
    let pos = m.segs().iter().position(|s| s.id == seg).unwrap();
    assert!(seg_page(&mut e, &m, pos, NOW)
        .unwrap()
        .score(b"m150")
        .is_some());
    save_and_evict(&mut e);
    // A rank reads one member page and one segment page.
    assert_eq!(rank(&mut e, &m, b"m150", false, NOW).unwrap(), Some(150));
    assert_eq!(resident_pages(&mut e, &m), 2);
    save_and_evict(&mut e);
    // A count by score reads the two bound pages.
    let r = ScoreRange {
        min: 10.0,
        max: 250.0,
        minex: false,
        maxex: true,
    };
    assert_eq!(count_by_score(&mut e, &m, r, NOW).unwrap(), 240);
    assert_eq!(resident_pages(&mut e, &m), 2);
}

#[test]
fn rising_scores_leave_full_pages_behind() {
    let mut e = engine();
    let mut m = page_out(&mut e, &ZSet::default(), 512, NOW);
    assert!(m.segs().is_empty());
    for i in 0..2000u32 {
        insert(
            &mut e,
            &mut m,
            format!("t{i}").into_bytes(),
            f64::from(i),
            512,
            NOW,
        )
        .unwrap();
    }
    let full = m.segs()[..m.segs().len() - 1]
        .iter()
        .all(|s| s.bytes + elem_bytes(b"t0000") > 512);
    assert!(
        full,
        "{:?}",
        m.segs().iter().map(|s| s.bytes).collect::<Vec<_>>()
    );
    // Falling scores as well.
    let mut m = page_out(&mut e, &ZSet::default(), 512, NOW);
    for i in 0..2000u32 {
        insert(
            &mut e,
            &mut m,
            format!("t{i}").into_bytes(),
            -f64::from(i),
            512,
            NOW,
        )
        .unwrap();
    }
    let full = m.segs()[1..]
        .iter()
        .all(|s| s.bytes + elem_bytes(b"t0000") > 512);
    assert!(
        full,
        "{:?}",
        m.segs().iter().map(|s| s.bytes).collect::<Vec<_>>()
    );
}

/// A page that cannot be read fails the operations that need it, and a write that needs it
/// changes nothing (not the manifest, not a page); what does not need it still works.
#[test]
fn an_unreadable_page_fails_only_what_needs_it_and_changes_nothing() {
    let store = Arc::new(MemStore::new());
    let mut e = engine_on(Arc::clone(&store));
    let mut z = ZSet::default();
    for i in 0..200u32 {
        z.insert(format!("m{i:03}").into_bytes(), f64::from(i));
    }
    let mut m = page_out(&mut e, &z, 256, NOW);
    save_and_evict(&mut e);
    let before = m.clone();
    let top = m.seg_key(m.segs().len() - 1);
    store
        .write(&[WriteOp::Delete {
            db: kvtier_core::pages::PAGES_NS,
            key: top.to_vec(),
        }])
        .unwrap();
    // Moving m000 to the top needs the top segment's page.
    assert!(insert(&mut e, &mut m, b"m000".to_vec(), 1000.0, 256, NOW).is_err());
    assert_eq!(m, before);
    assert_eq!(e.dirty_len(), 0);
    assert!(remove(&mut e, &mut m, b"m199", 256, NOW).is_err());
    assert!(pop(&mut e, &mut m, 1, true, 256, NOW).is_err());
    assert_eq!(m, before);
    assert_eq!(e.dirty_len(), 0);
    assert!(range_by_rank(&mut e, &m, 195, 199, false, NOW).is_err());
    assert!(materialize(&mut e, &m, NOW).is_err());
    // The rest of the set still answers and changes.
    assert_eq!(score(&mut e, &m, b"m000", NOW).unwrap(), Some(0.0));
    assert_eq!(rank(&mut e, &m, b"m010", false, NOW).unwrap(), Some(10));
    assert_eq!(
        pop(&mut e, &mut m, 2, false, 256, NOW).unwrap(),
        vec![(b"m000".to_vec(), 0.0), (b"m001".to_vec(), 1.0)]
    );
    assert_eq!(
        insert(&mut e, &mut m, b"m002".to_vec(), 2.5, 256, NOW).unwrap(),
        Some(2.0)
    );
    assert_eq!(rank(&mut e, &m, b"m002", false, NOW).unwrap(), Some(0));
}
