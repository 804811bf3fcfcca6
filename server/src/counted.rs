//! An iterator that counts what it has left, for the values kept in two forms (`hashval`,
//! `setval`): a walk of a packed buffer cannot tell its length, and commands size their replies
//! from `len()` of the iterator.

/// `inner` with its exact length.
#[derive(Clone)]
pub struct Counted<I> {
    inner: I,
    left: usize,
}

impl<I> Counted<I> {
    /// `inner`, which yields exactly `len` items.
    pub fn new(inner: I, len: usize) -> Self {
        Counted { inner, left: len }
    }
}

impl<I: Iterator> Iterator for Counted<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<Self::Item> {
        let next = self.inner.next()?;
        self.left -= 1;
        Some(next)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<I: Iterator> ExactSizeIterator for Counted<I> {}
