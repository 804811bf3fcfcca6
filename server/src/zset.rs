//! Sorted set: member → score map plus an ordered index by (score, member).
//!
//! Files: `bounds` (score and lex intervals), `ranges` (ranges by rank, score and lex); the
//! set itself and its single-member operations are here.

mod bounds;
mod packed;
mod ranges;
#[cfg(test)]
mod tests;

pub use bounds::{LexBound, LexRange, ScoreRange};

use packed::{Packed, PackedIter};

use std::cmp::Ordering;
use std::collections::HashMap;

/// The member → score map of a tree, hashed with foldhash (seeded per map) rather than SipHash.
type Scores = HashMap<Vec<u8>, f64, foldhash::quality::RandomState>;

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

/// Members that a run holds at most before it becomes a tree: Redis's default
/// `zset-max-listpack-entries`, past which a member's lookup by name stops being cheap.
const RUN_MAX: usize = 128;
/// The same for a segment page of a paged set: a page of `page-bytes` (8 kB by default) holds a
/// few hundred members, always looked up by (score, member); only an unusually large
/// `page-bytes` makes a page a tree.
const PAGE_RUN_MAX: usize = 2048;
/// Elements a tree node holds at most. `indexset`'s default (1024) allocates a 32 kB node for
/// the smallest tree: a set just past `RUN_MAX` took three times its members' size.
const TREE_NODE: usize = 128;

fn new_order() -> indexset::BTreeSet<Elem> {
    indexset::BTreeSet::with_maximum_node_size(TREE_NODE)
}

/// A sorted set in one of three forms (the choice is invisible to commands):
/// - **packed** (`zset/packed.rs`): small sets (at most `RUN_MAX` members of at most 64 bytes)
///   keep every (score, member) pair in one buffer, as Redis's listpack does.
/// - a **run**: the (score, member) pairs in order in one vector. The segment pages of a paged
///   set use it: one allocation per member instead of three, a copy (copy-on-write while a
///   save holds a page) is one vector, and inserting or removing an element whose score is
///   known is a binary search and a move of at most a page. A member's lookup by name is a
///   walk, which is why a run is kept small.
/// - a **tree**: a member → score map plus an order-statistic B-tree (`indexset`) by (score,
///   member), which finds the element at a rank and the rank of an element in logarithmic time,
///   so ZRANK, ZRANGE by rank and ZCOUNT cost what they cost in Redis's skiplist.
///
/// A packed set or a run turns into a tree when it outgrows its bound; a tree stays a tree (as
/// in Redis).
/// Boxed: a tree's two maps take 112 bytes, and every cached value (a counter as much as a
/// zset) is as large as the largest variant of `Value`.
#[derive(Debug, Clone, Default)]
pub struct ZSet(Box<Members>);

type Elem = (Score, Vec<u8>);

#[derive(Debug, Clone)]
enum Members {
    /// A small set (not a page) in one buffer.
    Packed(Packed),
    /// Sorted by (score, member), no member twice. `page`: a segment page of a paged set (a
    /// larger bound, and its own record tag so a load knows it is one).
    Run { elems: Vec<Elem>, page: bool },
    /// Boxed: the two maps take about 130 bytes, which every small set (a run) would
    /// otherwise carry in its own allocation.
    Tree(Box<Tree>),
}

/// A tree's member → score map and order-statistic tree.
#[derive(Clone, Debug)]
struct Tree {
    scores: Scores,
    order: indexset::BTreeSet<Elem>,
}

impl Default for Members {
    fn default() -> Self {
        Members::Packed(Packed::default())
    }
}

impl PartialEq for ZSet {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

/// -0.0 and 0.0 are the same score in Redis.
fn norm(score: f64) -> f64 {
    if score == 0.0 {
        0.0
    } else {
        score
    }
}

/// Where (`score`, `member`) is in a run, or where it would go.
fn search(elems: &[Elem], score: f64, member: &[u8]) -> Result<usize, usize> {
    elems.binary_search_by(|(s, m)| (s, m.as_slice()).cmp(&(&Score(score), member)))
}

impl ZSet {
    /// An empty segment page of a paged set.
    pub fn page() -> ZSet {
        ZSet(Box::new(Members::Run {
            elems: Vec::new(),
            page: true,
        }))
    }

    /// An empty set in tree form (tests: the form a large set takes).
    #[cfg(test)]
    pub(crate) fn empty_tree() -> ZSet {
        ZSet(Box::new(Members::Tree(Box::new(Tree {
            scores: Scores::default(),
            order: new_order(),
        }))))
    }

    /// Whether the set is in tree form.
    #[cfg(test)]
    pub(crate) fn is_tree(&self) -> bool {
        matches!(&*self.0, Members::Tree(_))
    }

    /// Elements a run has room for (tests).
    #[cfg(test)]
    pub(crate) fn run_capacity(&self) -> Option<usize> {
        match &*self.0 {
            Members::Run { elems, .. } => Some(elems.capacity()),
            Members::Packed(_) | Members::Tree(_) => None,
        }
    }

    /// Whether the set is in packed form (tests).
    #[cfg(test)]
    pub(crate) fn is_packed(&self) -> bool {
        matches!(&*self.0, Members::Packed(_))
    }

    /// Whether this is a segment page (recorded with its own tag).
    pub fn is_page(&self) -> bool {
        matches!(&*self.0, Members::Run { page: true, .. })
    }

    /// Makes this set a segment page (a set loaded from a record written before pages had
    /// their own tag, or one a page's bound turned into a tree that has shrunk since).
    pub fn make_page(&mut self) {
        if self.is_page() || self.len() > PAGE_RUN_MAX {
            return;
        }
        let elems = match &mut *self.0 {
            Members::Packed(p) => p.iter().map(|(m, s)| (Score(s), m.to_vec())).collect(),
            Members::Run { elems, .. } => std::mem::take(elems),
            Members::Tree(t) => {
                let Tree { order, .. } = &mut **t;
                std::mem::take(order).into_iter().collect()
            }
        };
        *self.0 = Members::Run { elems, page: true };
    }

    pub fn len(&self) -> usize {
        match &*self.0 {
            Members::Packed(p) => p.len(),
            Members::Run { elems, .. } => elems.len(),
            Members::Tree(t) => {
                let Tree { scores, .. } = &**t;
                scores.len()
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match &*self.0 {
            Members::Packed(p) => p.score(member),
            Members::Run { elems, .. } => elems.iter().find(|(_, m)| m == member).map(|e| e.0 .0),
            Members::Tree(t) => {
                let Tree { scores, .. } = &**t;
                scores.get(member).copied()
            }
        }
    }

    /// Whether `member` is in the set with score `score` (a run finds it by binary search).
    pub fn contains_scored(&self, member: &[u8], score: f64) -> bool {
        match &*self.0 {
            Members::Packed(p) => p.rank_scored(member, norm(score)).is_some(),
            Members::Run { elems, .. } => search(elems, norm(score), member).is_ok(),
            Members::Tree(t) => {
                let Tree { scores, .. } = &**t;
                scores.get(member) == Some(&norm(score))
            }
        }
    }

    /// Inserts or updates; returns the previous score.
    pub fn insert(&mut self, member: Vec<u8>, score: f64) -> Option<f64> {
        let score = norm(score);
        match &mut *self.0 {
            Members::Packed(p) => {
                let old = p.remove(&member);
                self.insert_absent(member, score);
                old
            }
            Members::Run { elems, .. } => {
                let old = elems.iter().position(|(_, m)| *m == member);
                let old = old.map(|i| elems.remove(i).0 .0);
                self.insert_absent(member, score);
                old
            }
            Members::Tree(t) => {
                let Tree { scores, order } = &mut **t;
                let old = scores.insert(member.clone(), score);
                if let Some(o) = old {
                    order.remove(&(Score(o), member.clone()));
                }
                order.insert((Score(score), member));
                old
            }
        }
    }

    /// Inserts a member the caller knows is not in the set (a segment page's writes know it
    /// from the member index): a run skips the walk that looks for it.
    pub fn insert_absent(&mut self, member: Vec<u8>, score: f64) {
        let score = norm(score);
        match &mut *self.0 {
            Members::Packed(p) => {
                if p.len() < RUN_MAX && Packed::fits(&member) {
                    p.insert_absent(&member, score);
                } else {
                    self.grow_into_tree();
                    self.insert_absent(member, score);
                }
            }
            Members::Run { elems, page } => {
                let at = search(elems, score, &member).unwrap_or_else(|at| at);
                debug_assert!(elems.iter().all(|(_, m)| *m != member));
                if !*page {
                    // Grown exactly, not doubled: a small set's run is most of its memory (a
                    // page is grown as a vector is, its size being bounded by `page-bytes`).
                    elems.reserve_exact(1);
                }
                elems.insert(at, (Score(score), member));
                let max = if *page { PAGE_RUN_MAX } else { RUN_MAX };
                if elems.len() > max {
                    self.grow_into_tree();
                }
            }
            Members::Tree(t) => {
                let Tree { scores, order } = &mut **t;
                scores.insert(member.clone(), score);
                order.insert((Score(score), member));
            }
        }
    }

    /// Makes room for the `n` elements a record holds, exactly (a run's vector would otherwise
    /// double its way there and keep up to twice the room it needs).
    pub(crate) fn reserve_decoded(&mut self, n: usize) {
        if let Members::Run { elems, page } = &mut *self.0 {
            let max = if *page { PAGE_RUN_MAX } else { RUN_MAX };
            elems.reserve_exact(n.min(max));
        }
    }

    /// Appends an element read from a record: pushed when it sorts after the last (a record
    /// lists its elements in order), inserted otherwise.
    pub(crate) fn push_decoded(&mut self, member: Vec<u8>, score: f64) {
        if let Members::Packed(p) = &mut *self.0 {
            if p.len() < RUN_MAX && p.push_sorted(&member, norm(score)) {
                return;
            }
        }
        if let Members::Run { elems, page } = &mut *self.0 {
            let max = if *page { PAGE_RUN_MAX } else { RUN_MAX };
            let after = elems
                .last()
                .is_none_or(|(s, m)| (s, m.as_slice()) < (&Score(norm(score)), member.as_slice()));
            if after && elems.len() < max {
                elems.push((Score(norm(score)), member));
                return;
            }
        }
        self.insert(member, score);
    }

    fn grow_into_tree(&mut self) {
        let elems = match &mut *self.0 {
            Members::Packed(p) => p.iter().map(|(m, s)| (Score(s), m.to_vec())).collect(),
            Members::Run { elems, .. } => std::mem::take(elems),
            Members::Tree(_) => return,
        };
        let scores = elems.iter().map(|(s, m)| (m.clone(), s.0)).collect();
        let mut order = new_order();
        for e in elems {
            order.insert(e);
        }
        *self.0 = Members::Tree(Box::new(Tree { scores, order }));
    }

    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match &mut *self.0 {
            Members::Packed(p) => p.remove(member),
            Members::Run { elems, .. } => {
                let i = elems.iter().position(|(_, m)| m == member)?;
                Some(elems.remove(i).0 .0)
            }
            Members::Tree(t) => {
                let Tree { scores, order } = &mut **t;
                let old = scores.remove(member)?;
                order.remove(&(Score(old), member.to_vec()));
                Some(old)
            }
        }
    }

    /// Removes `member` whose score the caller knows; whether it was there with that score.
    pub fn remove_scored(&mut self, member: &[u8], score: f64) -> bool {
        match &mut *self.0 {
            Members::Packed(p) => p.remove_scored(member, norm(score)),
            Members::Run { elems, .. } => match search(elems, norm(score), member) {
                Ok(i) => {
                    elems.remove(i);
                    true
                }
                Err(_) => false,
            },
            Members::Tree(_) => {
                if self.contains_scored(member, score) {
                    self.remove(member);
                    true
                } else {
                    false
                }
            }
        }
    }

    /// Members in ascending (score, member) order.
    pub fn iter(&self) -> Iter<'_> {
        match &*self.0 {
            Members::Packed(p) => Iter::Packed(p.iter()),
            Members::Run { elems, .. } => Iter::Run(elems.iter()),
            Members::Tree(t) => {
                let Tree { order, .. } = &**t;
                Iter::Tree(order.iter())
            }
        }
    }

    /// 0-based rank in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let s = self.score(member)?;
        self.rank_scored(member, s)
    }

    /// 0-based rank of `member` whose score the caller knows (`None` if it is not there so).
    pub fn rank_scored(&self, member: &[u8], score: f64) -> Option<usize> {
        match &*self.0 {
            Members::Packed(p) => p.rank_scored(member, norm(score)),
            Members::Run { elems, .. } => search(elems, norm(score), member).ok(),
            Members::Tree(t) => self
                .contains_scored(member, score)
                .then(|| t.order.rank(&(Score(norm(score)), member.to_vec()))),
        }
    }

    pub fn mem_size(&self) -> usize {
        match &*self.0 {
            Members::Packed(p) => p.mem_size(),
            Members::Run { elems, .. } => {
                elems.iter().map(|(_, m)| m.capacity() + 8).sum::<usize>()
                    + elems.capacity() * std::mem::size_of::<Elem>()
            }
            Members::Tree(t) => {
                let Tree { scores, .. } = &**t;
                scores.keys().map(|k| 2 * k.capacity() + 80).sum()
            }
        }
    }

    /// Moves the elements from rank `at` on into a new set of the same kind (a page's split).
    pub fn split_off(&mut self, at: usize) -> ZSet {
        match &mut *self.0 {
            Members::Run { elems, page } => {
                let right = elems.split_off(at.min(elems.len()));
                // The left part keeps the room it grew for the whole page, now about half of
                // it: given back, or every split page of a large set carries that much empty
                // room.
                elems.shrink_to_fit();
                ZSet(Box::new(Members::Run {
                    elems: right,
                    page: *page,
                }))
            }
            Members::Packed(_) | Members::Tree(_) => {
                let mut right = ZSet::page();
                while self.len() > at {
                    let (m, s) = self.pop(true).expect("a set longer than `at`");
                    right.insert_absent(m, s);
                }
                right
            }
        }
    }

    /// Removes and returns the member with the lowest (or, with `max`, highest) score.
    pub fn pop(&mut self, max: bool) -> Option<(Vec<u8>, f64)> {
        match &mut *self.0 {
            Members::Packed(p) => p.pop(max),
            Members::Run { elems, .. } => {
                let (s, m) = if max {
                    elems.pop()?
                } else if elems.is_empty() {
                    return None;
                } else {
                    elems.remove(0)
                };
                Some((m, s.0))
            }
            Members::Tree(t) => {
                let Tree { scores, order } = &mut **t;
                let (s, m) = if max {
                    order.pop_last()?
                } else {
                    order.pop_first()?
                };
                scores.remove(&m);
                Some((m, s.0))
            }
        }
    }

    /// The elements at ranks `r`, in order (both ends).
    fn order_range(
        &self,
        r: std::ops::Range<usize>,
    ) -> Box<dyn DoubleEndedIterator<Item = (&[u8], f64)> + '_> {
        match &*self.0 {
            Members::Packed(p) => Box::new(p.iter().skip(r.start).take(r.len())),
            Members::Run { elems, .. } => Box::new(elems[r].iter().map(entry)),
            Members::Tree(t) => {
                let Tree { order, .. } = &**t;
                Box::new(order.range_idx(r).map(entry))
            }
        }
    }

    /// How many elements sort before (`score`, `member`).
    fn order_rank(&self, score: f64, member: &[u8]) -> usize {
        match &*self.0 {
            Members::Packed(p) => p.rank_of(score, member),
            Members::Run { elems, .. } => {
                elems.partition_point(|(s, m)| (*s, m.as_slice()) < (Score(score), member))
            }
            Members::Tree(t) => {
                let Tree { order, .. } = &**t;
                order.rank(&(Score(score), member.to_vec()))
            }
        }
    }

    fn order_get(&self, i: usize) -> Option<(&[u8], f64)> {
        match &*self.0 {
            Members::Packed(p) => p.get(i),
            Members::Run { elems, .. } => elems.get(i).map(entry),
            Members::Tree(t) => {
                let Tree { order, .. } = &**t;
                order.get_index(i).map(entry)
            }
        }
    }

    fn order_first(&self) -> Option<(&[u8], f64)> {
        self.order_get(0)
    }

    fn order_last(&self) -> Option<(&[u8], f64)> {
        match &*self.0 {
            Members::Packed(p) => p.iter().next_back(),
            _ => self.len().checked_sub(1).and_then(|i| self.order_get(i)),
        }
    }
}

/// An element as (member, score), the form every reader takes.
fn entry((s, m): &Elem) -> (&[u8], f64) {
    (m.as_slice(), s.0)
}

/// The elements of a set in (score, member) order, from either end.
pub enum Iter<'a> {
    Packed(PackedIter<'a>),
    Run(std::slice::Iter<'a, Elem>),
    Tree(indexset::Iter<'a, Elem>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Packed(it) => it.next(),
            Iter::Run(it) => it.next().map(entry),
            Iter::Tree(it) => it.next().map(entry),
        }
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Packed(it) => it.next_back(),
            Iter::Run(it) => it.next_back().map(entry),
            Iter::Tree(it) => it.next_back().map(entry),
        }
    }
}

/// Iterator over (member, score) pairs of a range.
pub type RangeIter<'a> = Box<dyn Iterator<Item = (&'a [u8], f64)> + 'a>;
