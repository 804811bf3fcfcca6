//! Sorted set: member → score map plus an ordered index by (score, member).

use std::cmp::Ordering;
use std::collections::HashMap;

/// A score with the total order Redis uses (scores are never NaN).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score(pub f64);

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// `order` is an order-statistic B-tree (`indexset`): besides ordered iteration it finds the
/// element at a rank and the rank of an element in logarithmic time, so ZRANK, ZRANGE by rank
/// and ZCOUNT cost what they cost in Redis's skiplist instead of a walk from one end (8 ms per
/// ZREVRANK on a million members with a plain `BTreeSet`).
///
/// Boxed: the two maps take 112 bytes, and every cached value (a counter as much as a zset)
/// is as large as the largest variant of `Value`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ZSet(Box<Members>);

#[derive(Debug, Clone, Default, PartialEq)]
struct Members {
    scores: HashMap<Vec<u8>, f64>,
    order: indexset::BTreeSet<(Score, Vec<u8>)>,
}

impl ZSet {
    pub fn len(&self) -> usize {
        self.0.scores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.scores.is_empty()
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.0.scores.get(member).copied()
    }

    /// Inserts or updates; returns the previous score.
    pub fn insert(&mut self, member: Vec<u8>, score: f64) -> Option<f64> {
        // -0.0 and 0.0 are the same score in Redis.
        let score = if score == 0.0 { 0.0 } else { score };
        let old = self.0.scores.insert(member.clone(), score);
        if let Some(o) = old {
            self.0.order.remove(&(Score(o), member.clone()));
        }
        self.0.order.insert((Score(score), member));
        old
    }

    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let old = self.0.scores.remove(member)?;
        self.0.order.remove(&(Score(old), member.to_vec()));
        Some(old)
    }

    /// Members in ascending (score, member) order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&[u8], f64)> + '_ {
        self.0.order.iter().map(|(s, m)| (m.as_slice(), s.0))
    }

    /// 0-based rank in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let s = self.score(member)?;
        Some(self.0.order.rank(&(Score(s), member.to_vec())))
    }

    pub fn mem_size(&self) -> usize {
        self.0.scores.keys().map(|k| 2 * k.capacity() + 80).sum()
    }
}

/// A score interval as ZRANGEBYSCORE takes it (`(` makes a bound exclusive).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreRange {
    pub min: f64,
    pub max: f64,
    pub minex: bool,
    pub maxex: bool,
}

impl ScoreRange {
    /// Whether no score can ever be in the range.
    pub fn is_empty(&self) -> bool {
        self.min > self.max || (self.min == self.max && (self.minex || self.maxex))
    }
}

/// One end of a lex range: `-`, `+`, `[member` or `(member`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LexBound {
    NegInf,
    PosInf,
    Incl(Vec<u8>),
    Excl(Vec<u8>),
}

impl LexBound {
    /// Parses a ZRANGEBYLEX bound; `None` if it is not a valid range item.
    pub fn parse(b: &[u8]) -> Option<LexBound> {
        match b.first()? {
            b'-' if b.len() == 1 => Some(LexBound::NegInf),
            b'+' if b.len() == 1 => Some(LexBound::PosInf),
            b'[' => Some(LexBound::Incl(b[1..].to_vec())),
            b'(' => Some(LexBound::Excl(b[1..].to_vec())),
            _ => None,
        }
    }

    fn exclusive(&self) -> bool {
        !matches!(self, LexBound::Incl(_))
    }

    /// Compares the bound values (`-` below every string, `+` above).
    fn cmp_value(&self, other: &LexBound) -> Ordering {
        use LexBound::*;
        match (self, other) {
            (NegInf, NegInf) | (PosInf, PosInf) => Ordering::Equal,
            (NegInf, _) | (_, PosInf) => Ordering::Less,
            (PosInf, _) | (_, NegInf) => Ordering::Greater,
            (Incl(a) | Excl(a), Incl(b) | Excl(b)) => a.cmp(b),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexRange {
    pub min: LexBound,
    pub max: LexBound,
}

impl LexRange {
    pub fn gte_min(&self, m: &[u8]) -> bool {
        match &self.min {
            LexBound::NegInf => true,
            LexBound::PosInf => false,
            LexBound::Incl(v) => m >= v.as_slice(),
            LexBound::Excl(v) => m > v.as_slice(),
        }
    }

    pub fn lte_max(&self, m: &[u8]) -> bool {
        match &self.max {
            LexBound::NegInf => false,
            LexBound::PosInf => true,
            LexBound::Incl(v) => m <= v.as_slice(),
            LexBound::Excl(v) => m < v.as_slice(),
        }
    }

    /// Whether no member can ever be in the range.
    pub fn is_empty(&self) -> bool {
        match self.min.cmp_value(&self.max) {
            Ordering::Greater => true,
            Ordering::Equal => self.min.exclusive() || self.max.exclusive(),
            Ordering::Less => false,
        }
    }
}

/// Iterator over (member, score) pairs of a range.
pub type RangeIter<'a> = Box<dyn Iterator<Item = (&'a [u8], f64)> + 'a>;

/// The smallest score above `x` in `total_cmp` order (for an upper index bound).
fn next_up(x: f64) -> f64 {
    if x == 0.0 {
        return f64::from_bits(1);
    }
    let b = x.to_bits();
    f64::from_bits(if x > 0.0 { b + 1 } else { b - 1 })
}

fn entry((s, m): &(Score, Vec<u8>)) -> (&[u8], f64) {
    (m.as_slice(), s.0)
}

impl ZSet {
    /// Members with ranks `start..=end` (already clamped to the set), ascending or from the top.
    pub fn range_by_rank(&self, start: usize, end: usize, rev: bool) -> RangeIter<'_> {
        if start > end || end >= self.len() {
            return Box::new(std::iter::empty());
        }
        if rev {
            let last = self.len() - 1;
            Box::new(
                self.0
                    .order
                    .range_idx(last - end..=last - start)
                    .rev()
                    .map(entry),
            )
        } else {
            Box::new(self.0.order.range_idx(start..=end).map(entry))
        }
    }

    /// The rank of the first member whose score is at least `score` (the set's length if none).
    fn rank_of_score(&self, score: f64) -> usize {
        // The empty member sorts first among members of equal score.
        self.0.order.rank(&(Score(score), Vec::new()))
    }

    /// The ranks `lo..hi` of the members whose score is in `r`.
    fn score_ranks(&self, r: ScoreRange) -> std::ops::Range<usize> {
        if r.is_empty() {
            return 0..0;
        }
        // (-0.0 and 0.0 are one score; stored scores are never -0.0.)
        let (min, max) = (r.min + 0.0, r.max + 0.0);
        let lo = match (min, r.minex) {
            (f64::INFINITY, true) => self.len(),
            (m, true) => self.rank_of_score(next_up(m)),
            (m, false) => self.rank_of_score(m),
        };
        let hi = match (max, r.maxex) {
            (f64::INFINITY, false) => self.len(),
            (m, false) => self.rank_of_score(next_up(m)),
            (m, true) => self.rank_of_score(m),
        };
        lo..hi.max(lo)
    }

    /// Members whose score is in `r`, ascending (or descending with `rev`).
    pub fn range_by_score(&self, r: ScoreRange, rev: bool) -> RangeIter<'_> {
        let ranks = self.score_ranks(r);
        if ranks.is_empty() {
            return Box::new(std::iter::empty());
        }
        let it = self.0.order.range_idx(ranks).map(entry);
        if rev {
            Box::new(it.rev())
        } else {
            Box::new(it)
        }
    }

    /// How many members have a score in `r` (ZCOUNT), from two ranks.
    pub fn count_by_score(&self, r: ScoreRange) -> usize {
        self.score_ranks(r).len()
    }

    /// Members in the lex range `r`, ascending or descending. Lex ranges are meant for sets
    /// whose scores are all equal; with mixed scores this gives what Redis gives for small sets.
    pub fn range_by_lex<'a>(&'a self, r: &'a LexRange, rev: bool) -> RangeIter<'a> {
        Box::new(self.range_by_lex_from(r, rev).take_while(move |&(m, _)| {
            if rev {
                r.gte_min(m)
            } else {
                r.lte_max(m)
            }
        }))
    }

    /// From the first member in the lex range (the last with `rev`) to the end of the set,
    /// unbounded at the far end: ZRANGE applies LIMIT's offset before checking it.
    pub fn range_by_lex_from<'a>(&'a self, r: &'a LexRange, rev: bool) -> RangeIter<'a> {
        // As Redis: nothing if the last member is below min or the first above max.
        let in_range = match (self.0.order.first(), self.0.order.last()) {
            (Some((_, first)), Some((_, last))) => r.gte_min(last) && r.lte_max(first),
            _ => false,
        };
        if r.is_empty() || !in_range {
            return Box::new(std::iter::empty());
        }
        // The first member on the near side of the range; if it is past the far end, nothing.
        let near = move |m: &[u8]| if rev { r.lte_max(m) } else { r.gte_min(m) };
        let far = move |m: &[u8]| if rev { r.gte_min(m) } else { r.lte_max(m) };
        let it: RangeIter<'a> = match self.lex_ranks(r, rev) {
            // All scores equal (what lex ranges are for): the near end is found by rank.
            Some(ranks) => {
                let it = self.0.order.range_idx(ranks).map(entry);
                if rev {
                    Box::new(it.rev())
                } else {
                    Box::new(it)
                }
            }
            // Mixed scores: Redis walks in (score, member) order; so does this.
            None if rev => Box::new(self.iter().rev()),
            None => Box::new(self.iter()),
        };
        let mut it = it.skip_while(move |&(m, _)| !near(m)).peekable();
        match it.peek() {
            Some(&(m, _)) if far(m) => Box::new(it),
            _ => Box::new(std::iter::empty()),
        }
    }

    /// When every member has the same score (members are then in lex order): the ranks from
    /// the near end of lex range `r` to the far end of the set (`..hi` from the top with `rev`).
    /// `None` with mixed scores.
    fn lex_ranks(&self, r: &LexRange, rev: bool) -> Option<std::ops::Range<usize>> {
        let (first, last) = (self.0.order.first()?, self.0.order.last()?);
        if first.0 != last.0 {
            return None;
        }
        let score = first.0;
        // The rank of `v`, and whether the member there is `v` itself.
        let at = |v: &Vec<u8>| {
            let i = self.0.order.rank(&(score, v.clone()));
            (i, self.0.order.get_index(i).is_some_and(|(_, m)| m == v))
        };
        Some(if rev {
            let hi = match &r.max {
                LexBound::PosInf => self.len(),
                LexBound::NegInf => 0,
                LexBound::Incl(v) => {
                    let (i, found) = at(v);
                    i + usize::from(found)
                }
                LexBound::Excl(v) => at(v).0,
            };
            0..hi
        } else {
            let lo = match &r.min {
                LexBound::NegInf => 0,
                LexBound::PosInf => self.len(),
                LexBound::Incl(v) => at(v).0,
                LexBound::Excl(v) => {
                    let (i, found) = at(v);
                    i + usize::from(found)
                }
            };
            lo..self.len()
        })
    }

    /// Removes and returns the member with the lowest (or, with `max`, highest) score.
    pub fn pop(&mut self, max: bool) -> Option<(Vec<u8>, f64)> {
        let (s, m) = if max {
            self.0.order.pop_last()?
        } else {
            self.0.order.pop_first()?
        };
        self.0.scores.remove(&m);
        Some((m, s.0))
    }
}

#[cfg(test)]
mod tests {
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
        for seed in 0..40u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let one_score = seed % 4 == 0;
            let mut z = ZSet::default();
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
}
