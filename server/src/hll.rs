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
const VAL_MAX_VALUE: u8 = 32;
const VAL_MAX_LEN: usize = 4;
const ZERO_MAX_LEN: usize = 64;
/// The stale-cache flag: top bit of the last cardinality byte.
const STALE: u8 = 0x80;
/// 0.5 / ln(2), the constant of the estimator for m → ∞.
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

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

// --- dense registers ---------------------------------------------------------------------------

fn dense_get(regs: &[u8], i: usize) -> u8 {
    let bit = i * BITS;
    let (byte, shift) = (bit / 8, bit % 8);
    let lo = regs[byte] >> shift;
    // The last register fits in its byte; the byte after the array reads as 0.
    let hi = regs.get(byte + 1).map_or(0, |b| (*b as u16) << (8 - shift)) as u8;
    (lo | hi) & REG_MAX
}

fn dense_put(regs: &mut [u8], i: usize, v: u8) {
    let bit = i * BITS;
    let (byte, shift) = (bit / 8, bit % 8);
    let word = (REG_MAX as u16) << shift;
    let val = (v as u16) << shift;
    regs[byte] = (regs[byte] & !(word as u8)) | val as u8;
    if let Some(b) = regs.get_mut(byte + 1) {
        *b = (*b & !((word >> 8) as u8)) | (val >> 8) as u8;
    }
}

/// Raises register `i` of a dense HLL to `v`; whether it changed.
fn dense_raise(regs: &mut [u8], i: usize, v: u8) -> bool {
    if v > dense_get(regs, i) {
        dense_put(regs, i, v);
        true
    } else {
        false
    }
}

// --- sparse opcodes ----------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Zero(usize),
    XZero(usize),
    Val(u8, usize),
}

impl Op {
    fn span(self) -> usize {
        match self {
            Op::Zero(n) | Op::XZero(n) | Op::Val(_, n) => n,
        }
    }
    fn width(self) -> usize {
        if matches!(self, Op::XZero(_)) {
            2
        } else {
            1
        }
    }
}

/// Reads the opcode at `p`. The second byte of an XZERO cut off by the end of the value reads
/// as 0, as in Redis (whose strings end with a 0 byte), so a damaged value gives Redis's result.
fn op_at(s: &[u8], p: usize) -> Result<Op> {
    let b = s[p];
    Ok(if b & 0xc0 == 0 {
        Op::Zero((b & 0x3f) as usize + 1)
    } else if b & 0x80 == 0 {
        let lo = s.get(p + 1).copied().unwrap_or(0);
        Op::XZero(((((b & 0x3f) as usize) << 8) | lo as usize) + 1)
    } else {
        Op::Val(((b >> 2) & 0x1f) + 1, (b & 0x03) as usize + 1)
    })
}

fn val_byte(v: u8, len: usize) -> u8 {
    0x80 | ((v - 1) << 2) | (len as u8 - 1)
}

fn push_xzero(out: &mut Vec<u8>, len: usize) {
    let l = len - 1;
    out.push(0x40 | (l >> 8) as u8);
    out.push((l & 0xff) as u8);
}

/// A run of `len` zero registers as one opcode (ZERO if it fits, else XZERO).
fn push_zeros(out: &mut Vec<u8>, len: usize) {
    if len > ZERO_MAX_LEN {
        push_xzero(out, len);
    } else {
        out.push((len - 1) as u8);
    }
}

/// Every opcode of a sparse HLL with the register it starts at.
fn sparse_ops(s: &[u8]) -> impl Iterator<Item = Result<Op>> + '_ {
    let mut p = HDR;
    std::iter::from_fn(move || {
        if p >= s.len() {
            return None;
        }
        let op = op_at(s, p);
        p += op.map_or(s.len(), Op::width);
        Some(op)
    })
}

/// Calls `f(first, len, value)` for each run of a sparse HLL; corrupt unless the runs cover
/// exactly the 16384 registers (a VAL run reaching past the end is corrupt at once, even one
/// that starts right after the last register: Redis refuses that too).
fn sparse_runs(s: &[u8], mut f: impl FnMut(usize, usize, u8)) -> Result<()> {
    let mut idx = 0usize;
    for op in sparse_ops(s) {
        match op? {
            Op::Zero(n) | Op::XZero(n) => idx += n,
            Op::Val(v, n) => {
                if idx + n > REGISTERS {
                    return Err(Corrupt);
                }
                f(idx, n, v);
                idx += n;
            }
        }
    }
    if idx == REGISTERS {
        Ok(())
    } else {
        Err(Corrupt)
    }
}

/// Converts a sparse HLL to dense in place (a dense one is left alone). The header, cached
/// cardinality included, is kept.
pub fn to_dense(s: &mut Vec<u8>) -> Result<()> {
    if s[4] == ENC_DENSE {
        return Ok(());
    }
    let mut dense = vec![0u8; DENSE_SIZE];
    dense[..HDR].copy_from_slice(&s[..HDR]);
    dense[4] = ENC_DENSE;
    sparse_runs(s, |first, n, v| {
        for i in first..first + n {
            dense_put(&mut dense[HDR..], i, v);
        }
    })?;
    *s = dense;
    Ok(())
}

/// Raises register `index` of a sparse HLL to `count`, promoting it to dense when the value
/// does not fit a VAL opcode or the sparse form would grow beyond `max_bytes`.
fn sparse_raise(s: &mut Vec<u8>, index: usize, count: u8, max_bytes: usize) -> Result<bool> {
    if count > VAL_MAX_VALUE {
        to_dense(s)?;
        return Ok(dense_raise(&mut s[HDR..], index, count));
    }
    // Find the opcode covering `index`, and the one before it (where merging starts).
    let (mut p, mut prev, mut first) = (HDR, None, 0usize);
    let mut op = None;
    while p < s.len() {
        let o = op_at(s, p)?;
        if index < first + o.span() {
            op = Some(o);
            break;
        }
        prev = Some(p);
        p += o.width();
        first += o.span();
    }
    let op = op.ok_or(Corrupt)?;
    let last = first + op.span() - 1;
    match op {
        Op::Val(old, _) if old >= count => return Ok(false),
        // A single register: the opcode becomes its new value.
        Op::Val(_, 1) | Op::Zero(1) => s[p] = val_byte(count, 1),
        _ => {
            // Split the run into (before, the register, after).
            let mut seq = Vec::with_capacity(5);
            match op {
                Op::Val(cur, _) => {
                    if index != first {
                        seq.push(val_byte(cur, index - first));
                    }
                    seq.push(val_byte(count, 1));
                    if index != last {
                        seq.push(val_byte(cur, last - index));
                    }
                }
                _ => {
                    if index != first {
                        push_zeros(&mut seq, index - first);
                    }
                    seq.push(val_byte(count, 1));
                    if index != last {
                        push_zeros(&mut seq, last - index);
                    }
                }
            }
            let old_width = op.width();
            if seq.len() > old_width && s.len() + seq.len() - old_width > max_bytes {
                to_dense(s)?;
                return Ok(dense_raise(&mut s[HDR..], index, count));
            }
            // An XZERO cut off by the end of the value: Redis writes the new opcodes over it
            // but grows the value by their length minus the XZERO's, losing the last byte.
            let new_len = s.len() + seq.len() - old_width;
            let end = (p + old_width).min(s.len());
            s.splice(p..end, seq);
            s.truncate(new_len);
        }
    }
    merge_vals(s, prev.unwrap_or(HDR));
    invalidate(s);
    Ok(true)
}

/// Merges adjacent VAL opcodes of equal value over the few opcodes from `p` on (the window
/// Redis looks at after an update).
fn merge_vals(s: &mut Vec<u8>, mut p: usize) {
    let mut budget = 5;
    while p < s.len() && budget > 0 {
        budget -= 1;
        let b = s[p];
        if b & 0x80 == 0 {
            p += if b & 0x40 != 0 { 2 } else { 1 };
            continue;
        }
        if let Some(&nb) = s.get(p + 1) {
            if nb & 0x80 != 0 {
                let (v1, l1) = ((b >> 2) & 0x1f, (b & 3) as usize + 1);
                let (v2, l2) = ((nb >> 2) & 0x1f, (nb & 3) as usize + 1);
                if v1 == v2 && l1 + l2 <= VAL_MAX_LEN {
                    s[p + 1] = val_byte(v1 + 1, l1 + l2);
                    s.remove(p);
                    continue;
                }
            }
        }
        p += 1;
    }
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

// --- estimation --------------------------------------------------------------------------------

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let (mut y, mut z) = (1.0, x);
    loop {
        x *= x;
        let prev = z;
        z += x * y;
        y += y;
        if prev == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let (mut y, mut z) = (1.0, 1.0 - x);
    loop {
        x = x.sqrt();
        let prev = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
        if prev == z {
            return z / 3.0;
        }
    }
}

/// Ertl's improved estimator (what Redis 5 and later use) from a histogram of register values.
fn estimate(histo: &[u32; 64]) -> u64 {
    let m = REGISTERS as f64;
    let q = Q as usize;
    let mut z = m * tau((m - histo[q + 1] as f64) / m);
    for j in (1..=q).rev() {
        z += histo[j] as f64;
        z *= 0.5;
    }
    z += m * sigma(histo[0] as f64 / m);
    (ALPHA_INF * m * m / z).round() as u64
}

/// The estimated cardinality of a stored HLL (without its cache).
pub fn count(s: &[u8]) -> Result<u64> {
    let mut histo = [0u32; 64];
    if s[4] == ENC_DENSE {
        for i in 0..REGISTERS {
            histo[dense_get(&s[HDR..], i) as usize] += 1;
        }
    } else {
        // Unlike a merge, the histogram walks every opcode; only the total must be right.
        let mut idx = 0usize;
        for op in sparse_ops(s) {
            match op? {
                Op::Zero(n) | Op::XZero(n) => {
                    idx += n;
                    histo[0] += n as u32;
                }
                Op::Val(v, n) => {
                    idx += n;
                    histo[v as usize] += n as u32;
                }
            }
        }
        if idx != REGISTERS {
            return Err(Corrupt);
        }
    }
    Ok(estimate(&histo))
}

/// The estimated cardinality of plain registers (one byte each), for a union.
pub fn count_registers(regs: &[u8]) -> u64 {
    let mut histo = [0u32; 64];
    for &r in regs {
        histo[(r & 63) as usize] += 1;
    }
    estimate(&histo)
}

/// Every register of an HLL (PFDEBUG GETREG), as plain values.
pub fn registers(s: &[u8]) -> Result<Vec<u8>> {
    let mut regs = vec![0u8; REGISTERS];
    merge_into(&mut regs, s)?;
    Ok(regs)
}

/// The opcodes of a sparse HLL as PFDEBUG DECODE prints them (`z:n`, `Z:n`, `v:value,len`).
pub fn decode_sparse(s: &[u8]) -> Result<String> {
    let mut parts = Vec::new();
    for op in sparse_ops(s) {
        parts.push(match op? {
            Op::Zero(n) => format!("z:{n}"),
            Op::XZero(n) => format!("Z:{n}"),
            Op::Val(v, n) => format!("v:{v},{n}"),
        });
    }
    Ok(parts.join(" "))
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
