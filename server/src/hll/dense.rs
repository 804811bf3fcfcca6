//! The dense encoding's registers: 6 bits each, packed from the least significant bit of each
//! byte. The bit twiddling is kept apart from the encoding-level operations that use it.

use super::{BITS, REG_MAX};

pub(super) fn dense_get(regs: &[u8], i: usize) -> u8 {
    let bit = i * BITS;
    let (byte, shift) = (bit / 8, bit % 8);
    let lo = regs[byte] >> shift;
    // The last register fits in its byte; the byte after the array reads as 0.
    let hi = regs.get(byte + 1).map_or(0, |b| (*b as u16) << (8 - shift)) as u8;
    (lo | hi) & REG_MAX
}

pub(super) fn dense_put(regs: &mut [u8], i: usize, v: u8) {
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
pub(super) fn dense_raise(regs: &mut [u8], i: usize, v: u8) -> bool {
    if v > dense_get(regs, i) {
        dense_put(regs, i, v);
        true
    } else {
        false
    }
}
