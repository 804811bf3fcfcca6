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
        fn map(e: &(Score, Vec<u8>)) -> (&[u8], f64) {
            (e.1.as_slice(), e.0 .0)
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
                    .map(map)
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
                    .map(map)
                    .skip_while(move |&(_, s)| !r.gte_min(s))
                    .take_while(move |&(_, s)| r.lte_max(s)),
            )
        }
    }

    /// Members in the lex range `r` (meaningful when all scores are equal, as in Redis).
    pub fn range_by_lex<'a>(&'a self, r: &'a LexRange, rev: bool) -> RangeIter<'a> {
        if r.is_empty() {
            return Box::new(std::iter::empty());
        }
        if rev {
            Box::new(
                self.iter()
                    .rev()
                    .skip_while(move |&(m, _)| !r.lte_max(m))
                    .take_while(move |&(m, _)| r.gte_min(m)),
            )
        } else {
            Box::new(
                self.iter()
                    .skip_while(move |&(m, _)| !r.gte_min(m))
                    .take_while(move |&(m, _)| r.lte_max(m)),
            )
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
