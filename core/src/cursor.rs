//! Scan cursors for backends that scan in key order: the cursor is a tag byte followed by the
//! last key returned, and the next page starts strictly after that key. The tag keeps the empty
//! key (a valid key) apart from the empty cursor (start of the DB).

use crate::store::{HeadPage, ScanPage, StoreError};

const TAG: u8 = 0x01;

/// The cursor that continues after `last_key`.
pub fn after(last_key: &[u8]) -> Vec<u8> {
    let mut c = Vec::with_capacity(last_key.len() + 1);
    c.push(TAG);
    c.extend_from_slice(last_key);
    c
}

/// `None` = start of the DB; `Some(key)` = continue strictly after `key`. `backend` names the
/// store in the error for a cursor it did not make.
pub fn decode<'a>(cursor: &'a [u8], backend: &str) -> Result<Option<&'a [u8]>, StoreError> {
    match cursor.split_first() {
        None => Ok(None),
        Some((&TAG, key)) => Ok(Some(key)),
        Some(_) => Err(StoreError::InvalidArgument(format!(
            "not a scan cursor of the {backend} backend"
        ))),
    }
}

/// One page of a scan in key order, built key by key: a backend's `scan` and `scan_heads` push
/// the keys (and, for `scan_heads`, the start of each record) until the page is full.
#[derive(Debug)]
pub struct PageBuilder {
    limit: usize,
    head_len: Option<usize>,
    keys: Vec<Vec<u8>>,
    heads: Vec<Option<Vec<u8>>>,
}

impl PageBuilder {
    /// A page of at most `limit` keys, keeping the first `head_len` bytes of each record if set.
    pub fn new(limit: usize, head_len: Option<usize>) -> Self {
        PageBuilder {
            limit,
            head_len,
            keys: Vec::with_capacity(limit.min(1024)),
            heads: Vec::new(),
        }
    }

    /// Adds a key and its record (read only when heads are wanted). `false` when the page was
    /// already full: the key was not added, and there is at least one more key after the page.
    pub fn push<'v>(&mut self, key: &[u8], record: impl FnOnce() -> &'v [u8]) -> bool {
        if self.keys.len() == self.limit {
            return false;
        }
        self.keys.push(key.to_vec());
        if let Some(n) = self.head_len {
            let v = record();
            self.heads.push(Some(v[..v.len().min(n)].to_vec()));
        }
        true
    }

    /// The page; `more` says a key follows it (the next cursor continues after the last key).
    pub fn finish(self, more: bool, cursor: &[u8]) -> HeadPage {
        let next = more.then(|| match self.keys.last() {
            Some(last) => after(last),
            None => cursor.to_vec(),
        });
        (
            ScanPage {
                keys: self.keys,
                next,
            },
            self.heads,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_stops_at_its_limit_and_continues_after_its_last_key() {
        let mut p = PageBuilder::new(2, Some(3));
        assert!(p.push(b"a", || b"12345"));
        assert!(p.push(b"b", || b"1"));
        assert!(!p.push(b"c", || b"x"));
        let (page, heads) = p.finish(true, b"");
        assert_eq!(page.keys, vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(page.next, Some(after(b"b")));
        assert_eq!(heads, vec![Some(b"123".to_vec()), Some(b"1".to_vec())]);
        let (page, heads) = PageBuilder::new(5, None).finish(false, b"");
        assert!(page.keys.is_empty() && page.next.is_none() && heads.is_empty());
    }

    #[test]
    fn round_trip_and_empty_key() {
        assert_eq!(decode(b"", "x").unwrap(), None);
        assert_eq!(decode(&after(b""), "x").unwrap(), Some(&b""[..]));
        assert_eq!(decode(&after(b"k"), "x").unwrap(), Some(&b"k"[..]));
        assert!(decode(b"\x02k", "x").is_err());
    }
}
