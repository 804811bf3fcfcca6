//! The sorted set's ranges and pops against a walk over the whole set.

use super::*;

fn zset(items: &[(&str, f64)]) -> ZSet {
    let mut z = ZSet::default();
    for (m, s) in items {
        z.insert(m.as_bytes().to_vec(), *s);
    }
    z
}

fn names(it: RangeIter<'_>) -> Vec<String> {
    it.map(|(m, _)| String::from_utf8_lossy(m).into_owned())
        .collect()
}

#[test]
fn score_ranges() {
    let z = zset(&[("a", 1.0), ("b", 2.0), ("c", 2.0), ("d", 3.0), ("z", 0.0)]);
    let r = |min, minex, max, maxex| ScoreRange {
        min,
        max,
        minex,
        maxex,
    };
    assert_eq!(
        names(z.range_by_score(r(1.0, true, 3.0, false), false)),
        ["b", "c", "d"]
    );
    assert_eq!(
        names(z.range_by_score(r(2.0, false, 2.0, false), true)),
        ["c", "b"]
    );
    assert_eq!(
        names(z.range_by_score(r(2.0, true, 2.0, false), false)),
        Vec::<String>::new()
    );
    let all = r(f64::NEG_INFINITY, false, f64::INFINITY, false);
    assert_eq!(
        names(z.range_by_score(all, true)),
        ["d", "c", "b", "a", "z"]
    );
    // -0 and 0 are the same score.
    assert_eq!(
        names(z.range_by_score(r(-0.0, false, 0.0, false), false)),
        ["z"]
    );
    assert_eq!(
        names(z.range_by_score(r(-0.0, false, -0.0, false), true)),
        ["z"]
    );
    assert_eq!(
        names(z.range_by_score(r(0.0, true, 1.0, true), false)),
        Vec::<String>::new()
    );
}

#[test]
fn lex_ranges_and_pops() {
    let mut z = zset(&[("a", 0.0), ("b", 0.0), ("c", 0.0), ("d", 0.0)]);
    let lex = |min: &str, max: &str| LexRange {
        min: LexBound::parse(min.as_bytes()).unwrap(),
        max: LexBound::parse(max.as_bytes()).unwrap(),
    };
    assert_eq!(names(z.range_by_lex(&lex("(a", "[c"), false)), ["b", "c"]);
    assert_eq!(names(z.range_by_lex(&lex("-", "(c"), true)), ["b", "a"]);
    assert_eq!(
        names(z.range_by_lex(&lex("+", "-"), false)),
        Vec::<String>::new()
    );
    assert_eq!(names(z.range_by_lex(&lex("[b", "[b"), false)), ["b"]);
    assert_eq!(
        names(z.range_by_lex_from(&lex("[b", "[b"), false)),
        ["b", "c", "d"]
    );
    assert!(LexBound::parse(b"b").is_none());
    assert!(LexBound::parse(b"+b").is_none());
    assert_eq!(z.pop(false), Some((b"a".to_vec(), 0.0)));
    assert_eq!(z.pop(true), Some((b"d".to_vec(), 0.0)));
    assert_eq!((z.len(), z.score(b"a")), (2, None));
    assert_eq!(names(z.range_by_rank(0, 1, true)), ["c", "b"]);
}

/// Ranks, score ranges, counts and lex ranges found through the tree's ranks agree with a
/// walk over the whole set, on sets with ties, infinities, 0.0 and the empty member.
#[test]
fn ranked_lookups_agree_with_a_full_walk() {
    use rand::{rngs::StdRng, Rng, SeedableRng};
    let scores = [
        f64::NEG_INFINITY,
        -2.5,
        -0.0,
        0.0,
        1.0,
        1.0,
        3.0,
        f64::INFINITY,
    ];
    // Seeds below 40 use the packed form (these sets are small enough to stay packed), then
    // a run (a page's form), then a tree.
    for seed in 0..90u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let one_score = seed % 4 == 0;
        let mut z = match seed {
            0..40 => ZSet::default(),
            40..60 => ZSet::page(),
            _ => ZSet::empty_tree(),
        };
        assert_eq!(z.is_packed(), seed < 40);
        for _ in 0..rng.random_range(0..300) {
            let m: Vec<u8> = (0..rng.random_range(0..3))
                .map(|_| b'a' + rng.random_range(0..4u8))
                .collect();
            let s = if one_score {
                7.0
            } else {
                scores[rng.random_range(0..scores.len())]
            };
            z.insert(m, s);
        }
        let all: Vec<(Vec<u8>, f64)> = z.iter().map(|(m, s)| (m.to_vec(), s)).collect();
        for (i, (m, _)) in all.iter().enumerate() {
            assert_eq!(z.rank(m), Some(i));
        }
        for _ in 0..50 {
            let r = ScoreRange {
                min: scores[rng.random_range(0..scores.len())],
                max: scores[rng.random_range(0..scores.len())],
                minex: rng.random(),
                maxex: rng.random(),
            };
            let inside = |s: f64| {
                (if r.minex { s > r.min } else { s >= r.min })
                    && (if r.maxex { s < r.max } else { s <= r.max })
            };
            let want: Vec<&[u8]> = all
                .iter()
                .filter(|(_, s)| inside(*s))
                .map(|(m, _)| m.as_slice())
                .collect();
            let got: Vec<&[u8]> = z.range_by_score(r, false).map(|(m, _)| m).collect();
            assert_eq!(got, want, "{r:?}");
            let mut rev: Vec<&[u8]> = z.range_by_score(r, true).map(|(m, _)| m).collect();
            rev.reverse();
            assert_eq!(rev, want, "{r:?} reversed");
            assert_eq!(z.count_by_score(r), want.len());
            if !all.is_empty() {
                let a = rng.random_range(0..all.len());
                let b = rng.random_range(a..all.len());
                let fwd: Vec<&[u8]> = z.range_by_rank(a, b, false).map(|(m, _)| m).collect();
                let want: Vec<&[u8]> = all[a..=b].iter().map(|(m, _)| m.as_slice()).collect();
                assert_eq!(fwd, want);
                let top: Vec<&[u8]> = z.range_by_rank(a, b, true).map(|(m, _)| m).collect();
                let want: Vec<&[u8]> = all
                    .iter()
                    .rev()
                    .skip(a)
                    .take(b + 1 - a)
                    .map(|(m, _)| m.as_slice())
                    .collect();
                assert_eq!(top, want);
            }
            let bound = |rng: &mut StdRng| {
                let v: Vec<u8> = (0..rng.random_range(0..3))
                    .map(|_| b'a' + rng.random_range(0..4u8))
                    .collect();
                match rng.random_range(0..6) {
                    0 => LexBound::NegInf,
                    1 => LexBound::PosInf,
                    2 | 3 => LexBound::Incl(v),
                    _ => LexBound::Excl(v),
                }
            };
            let lex = LexRange {
                min: bound(&mut rng),
                max: bound(&mut rng),
            };
            for rev in [false, true] {
                // The same walk without ranks: from one end until the near bound holds.
                let near = |m: &[u8]| if rev { lex.lte_max(m) } else { lex.gte_min(m) };
                let walk: Vec<&[u8]> = if rev {
                    all.iter()
                        .rev()
                        .map(|(m, _)| m.as_slice())
                        .skip_while(|m| !near(m))
                        .collect()
                } else {
                    all.iter()
                        .map(|(m, _)| m.as_slice())
                        .skip_while(|m| !near(m))
                        .collect()
                };
                let got: Vec<&[u8]> = z.range_by_lex_from(&lex, rev).map(|(m, _)| m).collect();
                let far = |m: &[u8]| if rev { lex.gte_min(m) } else { lex.lte_max(m) };
                if got.is_empty() {
                    // Nothing: the range is empty, the set's ends are outside it (as
                    // Redis checks first), or nothing lies between its bounds.
                    let ends_outside = match (all.first(), all.last()) {
                        (Some((lo, _)), Some((hi, _))) => !(lex.gte_min(hi) && lex.lte_max(lo)),
                        _ => true,
                    };
                    let first = walk.first().filter(|m| far(m));
                    assert!(
                        lex.is_empty() || ends_outside || first.is_none(),
                        "{lex:?} rev={rev}"
                    );
                } else {
                    assert_eq!(got, walk, "{lex:?} rev={rev}");
                }
            }
        }
    }
}

/// Runs (ordinary and page) and trees answer every single-member operation as a plain ordered
/// model does, through growth past a run's bound, splits and conversions to a page.
#[test]
fn runs_and_trees_agree_with_a_model() {
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use std::collections::{BTreeSet, HashMap};
    for seed in 0..30u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut z = match seed % 3 {
            0 => ZSet::default(),
            1 => ZSet::page(),
            _ => ZSet::empty_tree(),
        };
        let mut scores: HashMap<Vec<u8>, f64> = HashMap::new();
        let mut order: BTreeSet<(Score, Vec<u8>)> = BTreeSet::new();
        let members = rng.random_range(20..3000u32);
        // Some sets meet members too long for the packed form (which then becomes a tree).
        let long = seed % 5 == 4;
        for step in 0..4000 {
            let mut m = format!("m{}", rng.random_range(0..members)).into_bytes();
            if long && m.len() % 2 == 0 {
                m.resize(65, b'x');
            }
            let s = f64::from(rng.random_range(-5..5i32)) * 0.5;
            let s = if s == 0.0 && rng.random() { -0.0 } else { s };
            match rng.random_range(0..10) {
                0..=3 => {
                    let old = scores.insert(m.clone(), s + 0.0);
                    if let Some(o) = old {
                        order.remove(&(Score(o), m.clone()));
                    }
                    order.insert((Score(s + 0.0), m.clone()));
                    if old.is_none() && rng.random() {
                        z.insert_absent(m, s);
                    } else {
                        assert_eq!(z.insert(m, s), old);
                    }
                }
                4 | 5 => {
                    let old = scores.remove(&m);
                    if let Some(o) = old {
                        order.remove(&(Score(o), m.clone()));
                    }
                    if let (Some(o), true) = (old, rng.random::<bool>()) {
                        assert!(!z.remove_scored(&m, o + 1.0));
                        assert!(z.remove_scored(&m, o));
                    } else {
                        assert_eq!(z.remove(&m), old);
                    }
                }
                6 => {
                    let max = rng.random();
                    let want = if max {
                        order.pop_last()
                    } else {
                        order.pop_first()
                    };
                    if let Some((_, m)) = &want {
                        scores.remove(m);
                    }
                    assert_eq!(z.pop(max), want.map(|(s, m)| (m, s.0)));
                }
                7 if step % 50 == 0 => {
                    // Split and join back, as a page's split and merge do.
                    let at = rng.random_range(0..=z.len());
                    let right = z.split_off(at);
                    assert_eq!(z.len() + right.len(), order.len());
                    for (m, s) in right.iter() {
                        z.insert_absent(m.to_vec(), s);
                    }
                }
                8 if step % 100 == 0 => z.make_page(),
                _ => {
                    assert_eq!(z.score(&m), scores.get(&m).copied());
                    let s = scores.get(&m).copied().unwrap_or(s);
                    let present = scores.contains_key(&m);
                    assert_eq!(z.contains_scored(&m, s), present);
                    let rank = order.range(..(Score(s), m.clone())).count();
                    assert_eq!(z.rank_scored(&m, s), present.then_some(rank));
                    assert_eq!(z.rank(&m), present.then_some(rank));
                }
            }
            assert_eq!(z.len(), order.len());
        }
        let got: Vec<(Vec<u8>, f64)> = z.iter().map(|(m, s)| (m.to_vec(), s)).collect();
        let want: Vec<(Vec<u8>, f64)> = order.iter().map(|(s, m)| (m.clone(), s.0)).collect();
        assert_eq!(got, want, "seed {seed}");
        let back: Vec<(Vec<u8>, f64)> = z.iter().rev().map(|(m, s)| (m.to_vec(), s)).collect();
        assert_eq!(back.len(), want.len());
        assert!(back.iter().rev().eq(want.iter()));
    }
}

#[test]
fn a_run_grows_into_a_tree_and_equals_across_forms() {
    let mut run = ZSet::default();
    let mut tree = ZSet::empty_tree();
    for i in 0..200u32 {
        run.insert(format!("m{i}").into_bytes(), f64::from(i % 7));
        tree.insert(format!("m{i}").into_bytes(), f64::from(i % 7));
        assert_eq!(run, tree);
        assert_eq!(run.is_tree(), i >= 128, "at {i} members");
        assert_eq!(run.is_packed(), i < 128, "at {i} members");
    }
    // One member longer than 64 bytes makes a small set a tree, as in Redis.
    let mut small = ZSet::default();
    small.insert(b"a".to_vec(), 1.0);
    assert!(small.is_packed());
    small.insert(vec![b'x'; 65], 2.0);
    assert!(small.is_tree());
    assert_eq!(small.rank(&[b'x'; 65]), Some(1));
    // A page stays a run far longer, and is written under its own tag (see `value`).
    let mut page = ZSet::page();
    for i in 0..1000u32 {
        page.insert_absent(format!("m{i}").into_bytes(), 1.0);
    }
    assert!(page.is_page() && !page.is_tree());
    assert_eq!(page, {
        let mut t = ZSet::empty_tree();
        for i in 0..1000u32 {
            t.insert(format!("m{i}").into_bytes(), 1.0);
        }
        t
    });
    // A tree of a page's size becomes a page again on `make_page`.
    tree.make_page();
    assert!(tree.is_page() && !tree.is_tree());
    assert_eq!(tree, run);
}

/// A page split in two gives back the room it grew for the whole page (a page of a large set
/// under random inserts splits again and again: kept, that room was a third of its memory).
#[test]
fn a_split_page_gives_back_its_room() {
    let mut z = ZSet::page();
    for i in 0..1000u32 {
        z.insert_absent(format!("m{i:04}").into_bytes(), f64::from(i));
    }
    let right = z.split_off(500);
    assert_eq!((z.len(), right.len()), (500, 500));
    assert!(
        z.run_capacity().is_some_and(|c| c < 600),
        "{:?}",
        z.run_capacity()
    );
    assert!(right.run_capacity().is_some_and(|c| c < 600));
    assert!(z.is_page() && right.is_page());
}
