//! Ranges over a sorted set by rank, score and lex: each finds its start by a rank in the
//! order-statistic tree (a lex range over mixed scores walks, as Redis does).

use super::{LexBound, LexRange, RangeIter, ScoreRange, ZSet};

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
        if start > end || end >= self.len() {
            return Box::new(std::iter::empty());
        }
        if rev {
            let last = self.len() - 1;
            Box::new(self.order_range(last - end..last - start + 1).rev())
        } else {
            Box::new(self.order_range(start..end + 1))
        }
    }

    /// The rank of the first member whose score is at least `score` (the set's length if none).
    fn rank_of_score(&self, score: f64) -> usize {
        // The empty member sorts first among members of equal score.
        self.order_rank(score, &[])
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
        let it = self.order_range(ranks);
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
        let in_range = match (self.order_first(), self.order_last()) {
            (Some((first, _)), Some((last, _))) => r.gte_min(last) && r.lte_max(first),
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
                let it = self.order_range(ranks);
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
        let (first, last) = (self.order_first()?, self.order_last()?);
        if first.1 != last.1 {
            return None;
        }
        let score = first.1;
        // The rank of `v`, and whether the member there is `v` itself.
        let at = |v: &Vec<u8>| {
            let i = self.order_rank(score, v);
            (i, self.order_get(i).is_some_and(|(m, _)| m == v.as_slice()))
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
}
