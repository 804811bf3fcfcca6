//! Sorted set: member → score map plus an ordered index by (score, member).

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;

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

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ZSet {
    scores: HashMap<Vec<u8>, f64>,
    order: BTreeSet<(Score, Vec<u8>)>,
}

impl ZSet {
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.scores.get(member).copied()
    }

    /// Inserts or updates; returns the previous score.
    pub fn insert(&mut self, member: Vec<u8>, score: f64) -> Option<f64> {
        // -0.0 and 0.0 are the same score in Redis.
        let score = if score == 0.0 { 0.0 } else { score };
        let old = self.scores.insert(member.clone(), score);
        if let Some(o) = old {
            self.order.remove(&(Score(o), member.clone()));
        }
        self.order.insert((Score(score), member));
        old
    }

    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let old = self.scores.remove(member)?;
        self.order.remove(&(Score(old), member.to_vec()));
        Some(old)
    }

    /// Members in ascending (score, member) order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&[u8], f64)> + '_ {
        self.order.iter().map(|(s, m)| (m.as_slice(), s.0))
    }

    /// 0-based rank in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let s = self.score(member)?;
        Some(self.order.range(..(Score(s), member.to_vec())).count())
    }

    pub fn mem_size(&self) -> usize {
        self.scores.keys().map(|k| 2 * k.capacity() + 80).sum()
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
    pub fn gte_min(&self, s: f64) -> bool {
        if self.minex {
            s > self.min
        } else {
            s >= self.min
        }
    }

    pub fn lte_max(&self, s: f64) -> bool {
        if self.maxex {
            s < self.max
        } else {
            s <= self.max
        }
    }

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
        let n = end + 1 - start;
        if rev {
            Box::new(self.iter().rev().skip(start).take(n))
        } else {
            Box::new(self.iter().skip(start).take(n))
        }
    }

    /// Members whose score is in `r`, ascending (or descending with `rev`).
    pub fn range_by_score(&self, r: ScoreRange, rev: bool) -> RangeIter<'_> {
        if r.is_empty() {
            return Box::new(std::iter::empty());
        }
        if rev {
            let upper = if r.max == f64::INFINITY {
                Bound::Unbounded
            } else {
                Bound::Excluded((Score(next_up(r.max)), Vec::new()))
            };
            Box::new(
                self.order
                    .range((Bound::Unbounded, upper))
                    .rev()
                    .map(entry)
                    .skip_while(move |&(_, s)| !r.lte_max(s))
                    .take_while(move |&(_, s)| r.gte_min(s)),
            )
        } else {
            let lower = if r.min == f64::NEG_INFINITY {
                Bound::Unbounded
            } else {
                Bound::Included((Score(r.min), Vec::new()))
            };
            Box::new(
                self.order
                    .range((lower, Bound::Unbounded))
                    .map(entry)
                    .skip_while(move |&(_, s)| !r.gte_min(s))
                    .take_while(move |&(_, s)| r.lte_max(s)),
            )
        }
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
        let in_range = match (self.order.first(), self.order.last()) {
            (Some((_, first)), Some((_, last))) => r.gte_min(last) && r.lte_max(first),
            _ => false,
        };
        if r.is_empty() || !in_range {
            return Box::new(std::iter::empty());
        }
        // The first member on the near side of the range; if it is past the far end, nothing.
        let near = move |m: &[u8]| if rev { r.lte_max(m) } else { r.gte_min(m) };
        let far = move |m: &[u8]| if rev { r.gte_min(m) } else { r.lte_max(m) };
        let it: RangeIter<'a> = if rev {
            Box::new(self.iter().rev())
        } else {
            Box::new(self.iter())
        };
        let mut it = it.skip_while(move |&(m, _)| !near(m)).peekable();
        match it.peek() {
            Some(&(m, _)) if far(m) => Box::new(it),
            _ => Box::new(std::iter::empty()),
        }
    }

    /// Removes and returns the member with the lowest (or, with `max`, highest) score.
    pub fn pop(&mut self, max: bool) -> Option<(Vec<u8>, f64)> {
        let (s, m) = if max {
            self.order.pop_last()?
        } else {
            self.order.pop_first()?
        };
        self.scores.remove(&m);
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
}
