//! The sparse encoding: its run-length opcodes, walking them, the in-place update that must
//! produce Redis's exact bytes, and the conversion to dense.

use super::dense::{dense_put, dense_raise};
use super::{invalidate, Corrupt, Result, DENSE_SIZE, ENC_DENSE, HDR, REGISTERS};

const VAL_MAX_VALUE: u8 = 32;
const VAL_MAX_LEN: usize = 4;
const ZERO_MAX_LEN: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Op {
    Zero(usize),
    XZero(usize),
    Val(u8, usize),
}

impl Op {
    pub(super) fn span(self) -> usize {
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

pub(super) fn push_xzero(out: &mut Vec<u8>, len: usize) {
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
pub(super) fn sparse_ops(s: &[u8]) -> impl Iterator<Item = Result<Op>> + '_ {
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
pub(super) fn sparse_runs(s: &[u8], mut f: impl FnMut(usize, usize, u8)) -> Result<()> {
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
pub(super) fn sparse_raise(
    s: &mut Vec<u8>,
    index: usize,
    count: u8,
    max_bytes: usize,
) -> Result<bool> {
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
