//! The cardinality estimate: Ertl's improved estimator over a histogram of register values,
//! from a stored HLL or from plain registers.

use super::dense::dense_get;
use super::sparse::{sparse_ops, Op};
use super::{Corrupt, Result, ENC_DENSE, HDR, Q, REGISTERS};

/// 0.5 / ln(2), the constant of the estimator for m → ∞.
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

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
