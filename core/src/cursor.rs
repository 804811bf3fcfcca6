//! Scan cursors for backends that scan in key order: the cursor is a tag byte followed by the
//! last key returned, and the next page starts strictly after that key. The tag keeps the empty
//! key (a valid key) apart from the empty cursor (start of the DB).

use crate::store::StoreError;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_empty_key() {
        assert_eq!(decode(b"", "x").unwrap(), None);
        assert_eq!(decode(&after(b""), "x").unwrap(), Some(&b""[..]));
        assert_eq!(decode(&after(b"k"), "x").unwrap(), Some(&b"k"[..]));
        assert!(decode(b"\x02k", "x").is_err());
    }
}
