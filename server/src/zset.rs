//! Sorted set: member → score map plus an ordered index by (score, member).
//!
//! Files: `bounds` (score and lex intervals), `ranges` (ranges by rank, score and lex); the
//! set itself and its single-member operations are here.

mod bounds;
mod ranges;
#[cfg(test)]
mod tests;

pub use bounds::{LexBound, LexRange, ScoreRange};

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

/// Iterator over (member, score) pairs of a range.
pub type RangeIter<'a> = Box<dyn Iterator<Item = (&'a [u8], f64)> + 'a>;
