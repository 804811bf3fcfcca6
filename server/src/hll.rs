//! HyperLogLog values in Redis's own byte layout, so that GET returns the bytes Redis would hold
//! and SET of bytes taken from Redis works with PFCOUNT/PFADD.
//!
//! Layout (all from Redis's published description of the format):
//! * a 16-byte header: `HYLL`, the encoding (0 dense, 1 sparse), three unused bytes, then the
//!   cached cardinality as a little-endian u64 whose top bit set means "stale";
//! * dense: 16384 registers of 6 bits packed from the least significant bit of each byte;
//! * sparse: run-length opcodes — ZERO `00xxxxxx` (1..64 zero registers), XZERO
//!   `01xxxxxx yyyyyyyy` (1..16384 zero registers), VAL `1vvvvvxx` (1..4 registers of value
//!   1..32).
//!
//! The sparse update splits the opcode covering a register and then merges neighbouring VAL
//! opcodes over a short window, exactly as Redis does: the sparse bytes depend on the order of
//! insertions, and they must come out the same.
//!
//! Files: `dense` (the packed registers), `sparse` (the opcodes and their update), `estimate`
//! (the cardinality); the header, the element hash and the operations over either encoding
//! are here.

mod dense;
mod estimate;
mod sparse;

pub use estimate::{count, count_registers};
pub use sparse::{decode_sparse, to_dense};

use dense::{dense_get, dense_put, dense_raise};
use sparse::{push_xzero, sparse_ops, sparse_raise, sparse_runs, Op};

/// Number of registers (2^14).
pub const REGISTERS: usize = 1 << P;
const P: u32 = 14;
/// Bits of the hash left after the index: the run length counts up to this + 1.
const Q: u32 = 64 - P;
const BITS: usize = 6;
const REG_MAX: u8 = (1 << BITS) - 1;
pub const HDR: usize = 16;
pub const DENSE_SIZE: usize = HDR + (REGISTERS * BITS).div_ceil(8);
const ENC_DENSE: u8 = 0;
const ENC_SPARSE: u8 = 1;
/// The stale-cache flag: top bit of the last cardinality byte.
const STALE: u8 = 0x80;

/// The value is not a well-formed HLL (its registers do not add up to 16384).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corrupt;

pub type Result<T> = std::result::Result<T, Corrupt>;

/// MurmurHash64A (Austin Appleby's 64-bit variant), blocks read little-endian.
pub fn murmur64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut blocks = data.chunks_exact(8);
    for b in &mut blocks {
        let mut k = u64::from_le_bytes(b.try_into().expect("8 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        for (i, &c) in tail.iter().enumerate() {
            h ^= (c as u64) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element lands in and the length of its run of zero bits plus one.
pub fn pattern(elem: &[u8]) -> (usize, u8) {
    let hash = murmur64a(elem, 0xadc8_3b19);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    // A sentinel bit bounds the count at Q + 1.
    let rest = (hash >> P) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

/// An empty HLL as PFADD creates it: sparse, one XZERO opcode covering every register.
pub fn new_sparse() -> Vec<u8> {
    let mut v = Vec::with_capacity(HDR + 2);
    v.extend_from_slice(b"HYLL");
    v.push(ENC_SPARSE);
    v.extend_from_slice(&[0; 11]);
    push_xzero(&mut v, REGISTERS);
    v
}

/// Whether a string can be read as an HLL at all (Redis's check before every command).
pub fn looks_valid(s: &[u8]) -> bool {
    s.len() >= HDR
        && &s[..4] == b"HYLL"
        && s[4] <= ENC_SPARSE
        && (s[4] != ENC_DENSE || s.len() == DENSE_SIZE)
}

pub fn is_sparse(s: &[u8]) -> bool {
    s[4] == ENC_SPARSE
}

/// The cached cardinality, if it is not stale.
pub fn cached(s: &[u8]) -> Option<u64> {
    if s[15] & STALE != 0 {
        return None;
    }
    Some(u64::from_le_bytes(s[8..16].try_into().expect("8 bytes")))
}

pub fn set_cached(s: &mut [u8], card: u64) {
    s[8..16].copy_from_slice(&card.to_le_bytes());
}

pub fn invalidate(s: &mut [u8]) {
    s[15] |= STALE;
}

/// Raises register `index` to `count` in either encoding; whether anything changed.
pub fn raise(s: &mut Vec<u8>, index: usize, count: u8, max_bytes: usize) -> Result<bool> {
    if s[4] == ENC_SPARSE {
        sparse_raise(s, index, count, max_bytes)
    } else {
        Ok(dense_raise(&mut s[HDR..], index, count))
    }
}

/// The value of register `index` (`Err` if a sparse HLL does not reach it).
fn register(s: &[u8], index: usize) -> Result<u8> {
    if s[4] == ENC_DENSE {
        return Ok(dense_get(&s[HDR..], index));
    }
    let mut first = 0usize;
    for op in sparse_ops(s) {
        let op = op?;
        if index < first + op.span() {
            return Ok(match op {
                Op::Val(v, _) => v,
                _ => 0,
            });
        }
        first += op.span();
    }
    Err(Corrupt)
}

/// Whether adding these elements would raise any register: lets PFADD leave an unchanged
/// value alone (no rewrite, no save). `Err` if the value is corrupt where they land.
pub fn would_change<'a>(s: &[u8], elems: impl IntoIterator<Item = &'a [u8]>) -> Result<bool> {
    for e in elems {
        let (index, count) = pattern(e);
        if count > register(s, index)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Adds an element (PFADD); whether a register changed.
pub fn add(s: &mut Vec<u8>, elem: &[u8], max_bytes: usize) -> Result<bool> {
    let (index, count) = pattern(elem);
    raise(s, index, count, max_bytes)
}

/// Folds an HLL into `max` (register-wise maximum), for PFCOUNT of many keys and PFMERGE.
pub fn merge_into(max: &mut [u8], s: &[u8]) -> Result<()> {
    if s[4] == ENC_DENSE {
        for (i, m) in max.iter_mut().enumerate().take(REGISTERS) {
            *m = (*m).max(dense_get(&s[HDR..], i));
        }
        Ok(())
    } else {
        sparse_runs(s, |first, n, v| {
            for m in &mut max[first..first + n] {
                *m = (*m).max(v);
            }
        })
    }
}

/// Every register of an HLL (PFDEBUG GETREG), as plain values.
pub fn registers(s: &[u8]) -> Result<Vec<u8>> {
    let mut regs = vec![0u8; REGISTERS];
    merge_into(&mut regs, s)?;
    Ok(regs)
}

/// PFSELFTEST: the register packing round-trips every value at every position, and the
/// estimate of growing sets stays within a few standard errors.
pub fn self_test() -> std::result::Result<(), String> {
    let mut regs = vec![0u8; DENSE_SIZE - HDR];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut expect = vec![0u8; REGISTERS];
    for round in 0..64 {
        for (i, e) in expect.iter_mut().enumerate() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *e = (x & REG_MAX as u64) as u8;
            dense_put(&mut regs, i, *e);
        }
        for (i, e) in expect.iter().enumerate() {
            if dense_get(&regs, i) != *e {
                return Err(format!(
                    "TESTFAILED Register error at round {round}, index {i}"
                ));
            }
        }
    }
    let mut sparse = new_sparse();
    let mut dense = new_sparse();
    to_dense(&mut dense).map_err(|_| "TESTFAILED conversion".to_string())?;
    let rel_err = 1.04 / (REGISTERS as f64).sqrt();
    for n in 1..=100_000u64 {
        let e = n.to_le_bytes();
        add(&mut sparse, &e, 3000).map_err(|_| "TESTFAILED sparse add".to_string())?;
        add(&mut dense, &e, 3000).map_err(|_| "TESTFAILED dense add".to_string())?;
        if n % 1000 != 0 && n > 1000 {
            continue;
        }
        let (a, b) = (count(&sparse), count(&dense));
        if a != b {
            return Err(format!("TESTFAILED sparse and dense differ at {n}"));
        }
        let got = a.unwrap_or(0) as f64;
        let tolerance = if n < 500 {
            5.0 * rel_err
        } else {
            4.0 * rel_err
        };
        if (got - n as f64).abs() > tolerance * n as f64 + 1.0 {
            return Err(format!(
                "TESTFAILED Too big error. card:{n} abserr:{}",
                (got - n as f64).abs()
            ));
        }
    }
    Ok(())
}
