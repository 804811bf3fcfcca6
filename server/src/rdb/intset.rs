//! Intset, Redis's encoding of a small set of integers: the width of every element (u32 LE:
//! 2, 4 or 8 bytes), the element count (u32 LE), then the elements, sorted, little-endian.

use super::{Bad, R};

/// The intset of `values` (which need not be sorted), in the narrowest width that holds them.
pub fn build(values: &mut [i64]) -> Vec<u8> {
    values.sort_unstable();
    let fits = |lo: i64, hi: i64| values.iter().all(|v| (lo..=hi).contains(v));
    let width: usize = if fits(i16::MIN.into(), i16::MAX.into()) {
        2
    } else if fits(i32::MIN.into(), i32::MAX.into()) {
        4
    } else {
        8
    };
    let mut out = Vec::with_capacity(8 + width * values.len());
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(values.len() as u32).to_le_bytes());
    for v in values.iter() {
        out.extend_from_slice(&v.to_le_bytes()[..width]);
    }
    out
}

/// The elements of an intset, in stored order.
pub fn parse(blob: &[u8]) -> R<Vec<i64>> {
    let word = |at: usize| -> R<u64> {
        let b = blob.get(at..at + 4).ok_or(Bad("intset header"))?;
        Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")) as u64)
    };
    let width = word(0)?;
    let count = word(4)?;
    if !matches!(width, 2 | 4 | 8) || blob.len() as u64 != 8 + width * count {
        return Err(Bad("intset size"));
    }
    let width = width as usize;
    Ok(blob[8..]
        .chunks_exact(width)
        .map(|c| {
            let shift = 64 - 8 * width as u32;
            let u = c.iter().rev().fold(0u64, |acc, &x| (acc << 8) | x as u64);
            ((u << shift) as i64) >> shift
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_redis_bytes_and_round_trips() {
        // SADD st 1 2 3 on redis-server 7.0.15, the intset inside its DUMP.
        assert_eq!(
            build(&mut [3, 1, 2]),
            b"\x02\x00\x00\x00\x03\x00\x00\x00\x01\x00\x02\x00\x03\x00"
        );
        for mut set in [
            vec![-5, 40000],
            vec![i64::MIN, 0, i64::MAX],
            vec![-32768, 32767],
        ] {
            let blob = build(&mut set);
            assert_eq!(parse(&blob).unwrap(), set);
        }
    }

    #[test]
    fn rejects_bad_sizes() {
        let blob = build(&mut [1, 2, 3]);
        assert!(parse(&blob[..blob.len() - 1]).is_err());
        let mut bad = blob.clone();
        bad[0] = 3;
        assert!(parse(&bad).is_err());
        let mut bad = blob;
        bad[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse(&bad).is_err());
        assert!(parse(b"\x02\x00").is_err());
    }
}
