//! LZF, the compression RDB strings may use (`0xC3` string encoding).
//!
//! The stream is a sequence of runs. A control byte below 32 starts a literal run of
//! `ctrl + 1` bytes. Otherwise it is a back reference: the top 3 bits are the length minus 2
//! (7 means "plus the next byte"), the low 5 bits and the following byte the distance minus 1.
//!
//! The compressor is written to make the same choices as the liblzf build inside Redis (a
//! 16-bit hash of the next three bytes, greedy longest match up to 264 bytes within 8 KiB,
//! re-hashing the last two positions of a match), so that DUMP output matches redis-server's
//! byte for byte.

use std::cell::RefCell;

/// Longest literal run one control byte can announce.
const MAX_LIT: usize = 32;
/// Farthest back a reference can point.
const MAX_OFF: usize = 1 << 13;
/// Longest match one reference can copy.
const MAX_REF: usize = (1 << 8) + (1 << 3);
const HLOG: u32 = 16;
const HSIZE: usize = 1 << HLOG;

/// Decompresses `input`, which must expand to exactly `expected` bytes. `None` on any
/// malformed stream (reference before the start, overrun, short output). The output never
/// grows past `expected`, so a hostile length allocates only as the data really expands.
pub fn decompress(input: &[u8], expected: usize) -> Option<Vec<u8>> {
    // One input byte can produce at most 264/2 output bytes: a larger claim is a lie.
    if expected > input.len().saturating_mul(MAX_REF) {
        return None;
    }
    let mut out: Vec<u8> = Vec::with_capacity(expected.min(input.len().saturating_mul(4)));
    let mut ip = 0;
    while ip < input.len() {
        let ctrl = input[ip] as usize;
        ip += 1;
        if ctrl < 32 {
            let n = ctrl + 1;
            let lit = input.get(ip..ip + n)?;
            if out.len() + n > expected {
                return None;
            }
            out.extend_from_slice(lit);
            ip += n;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                len += *input.get(ip)? as usize;
                ip += 1;
            }
            let back = ((ctrl & 0x1f) << 8) + *input.get(ip)? as usize + 1;
            ip += 1;
            let len = len + 2;
            if back > out.len() || out.len() + len > expected {
                return None;
            }
            // Byte by byte: the source may overlap what is being written (runs).
            let start = out.len() - back;
            for i in 0..len {
                let b = out[start + i];
                out.push(b);
            }
        }
    }
    (out.len() == expected).then_some(out)
}

/// The hash slot of the three bytes ending the rolling value `h` (which also carries the byte
/// before them in its top 8 bits, as liblzf's does).
fn slot(h: u32) -> usize {
    ((h >> (3 * 8 - HLOG)).wrapping_sub(h.wrapping_mul(5)) as usize) & (HSIZE - 1)
}

fn first(input: &[u8], p: usize) -> u32 {
    ((input[p] as u32) << 8) | input[p + 1] as u32
}

fn next(h: u32, input: &[u8], p: usize) -> u32 {
    (h << 8) | input[p + 2] as u32
}

/// How many bytes at `r` and `ip` are equal, knowing the first three are; as liblzf counts it
/// (which, for a long enough tail, checks 16 bytes before looking at `maxlen`, so a match may
/// end up to two bytes past it, never past the input).
fn match_len(input: &[u8], r: usize, ip: usize, maxlen: usize) -> usize {
    let mut len = 2;
    if maxlen > 16 {
        for _ in 0..16 {
            len += 1;
            if input[r + len] != input[ip + len] {
                return len;
            }
        }
    }
    loop {
        len += 1;
        if !(len < maxlen && input[r + len] == input[ip + len]) {
            return len;
        }
    }
}

/// The last position seen for each hash slot, kept from one call to the next: DUMP compresses
/// every element of a collection, and clearing 256 KiB for each one cost far more than the
/// compression. A slot counts only if stamped with the current call's generation.
struct Table {
    slots: Vec<u64>,
    generation: u32,
}

impl Table {
    /// The position in slot `s`, 0 if none (position 0 is never a reference: liblzf requires
    /// a reference strictly after the start, so 0 can mean "empty").
    fn get(&self, s: usize) -> usize {
        let v = self.slots[s];
        if (v >> 32) as u32 == self.generation {
            v as u32 as usize
        } else {
            0
        }
    }

    fn set(&mut self, s: usize, pos: usize) {
        self.slots[s] = ((self.generation as u64) << 32) | pos as u64;
    }
}

thread_local! {
    static TABLE: RefCell<Table> = RefCell::new(Table {
        slots: vec![0; HSIZE],
        generation: 0,
    });
}

/// Compresses `input` into at most `max_out` bytes; `None` if it does not fit (then the caller
/// stores the data plain). Inputs shorter than 3 bytes (or of 4 GiB and more) are not
/// compressed.
pub fn compress(input: &[u8], max_out: usize) -> Option<Vec<u8>> {
    if input.len() < 3 || u32::try_from(input.len()).is_err() {
        return None;
    }
    TABLE.with(|t| {
        let mut t = t.borrow_mut();
        t.generation = t.generation.wrapping_add(1);
        if t.generation == 0 {
            t.slots.fill(0);
            t.generation = 1;
        }
        compress_with(&mut t, input, max_out)
    })
}

fn compress_with(table: &mut Table, input: &[u8], max_out: usize) -> Option<Vec<u8>> {
    let n = input.len();
    let mut out: Vec<u8> = Vec::with_capacity(max_out + 1);
    // `run` is the index of the current literal run's control byte; `lit` its length so far.
    let mut lit = 0usize;
    out.push(0);
    let mut run = 0usize;
    let mut ip = 0usize;
    let mut h = first(input, 0);
    while ip < n - 2 {
        h = next(h, input, ip);
        let s = slot(h);
        let r = table.get(s);
        table.set(s, ip);
        let matched = r > 0
            && r < ip
            && ip - r - 1 < MAX_OFF
            && input[r + 2] == input[ip + 2]
            && input[r] == input[ip]
            && input[r + 1] == input[ip + 1];
        if matched {
            let off = ip - r - 1;
            let maxlen = (n - ip - 2).min(MAX_REF);
            // Room for the reference (up to 3 bytes) and a new run byte.
            let out_len = out.len() - usize::from(lit == 0);
            if out.len() + 4 >= max_out && out_len + 4 >= max_out {
                return None;
            }
            // Close the literal run (dropping its byte if it is empty).
            if lit == 0 {
                out.pop();
            } else {
                out[run] = (lit - 1) as u8;
            }
            let len = match_len(input, r, ip, maxlen);
            let code = len - 2;
            if code < 7 {
                out.push(((off >> 8) + (code << 5)) as u8);
            } else {
                out.push(((off >> 8) + (7 << 5)) as u8);
                out.push((code - 7) as u8);
            }
            out.push(off as u8);
            run = out.len();
            out.push(0);
            lit = 0;
            ip += len;
            if ip >= n - 2 {
                break;
            }
            // Hash the last two positions of the match so later data can refer into it.
            ip -= 2;
            h = first(input, ip);
            h = next(h, input, ip);
            table.set(slot(h), ip);
            ip += 1;
            h = next(h, input, ip);
            table.set(slot(h), ip);
            ip += 1;
        } else {
            if out.len() >= max_out {
                return None;
            }
            lit += 1;
            out.push(input[ip]);
            ip += 1;
            if lit == MAX_LIT {
                out[run] = (lit - 1) as u8;
                lit = 0;
                run = out.len();
                out.push(0);
            }
        }
    }
    if out.len() + 3 > max_out {
        return None;
    }
    while ip < n {
        lit += 1;
        out.push(input[ip]);
        ip += 1;
        if lit == MAX_LIT {
            out[run] = (lit - 1) as u8;
            lit = 0;
            run = out.len();
            out.push(0);
        }
    }
    if lit == 0 {
        out.pop();
    } else {
        out[run] = (lit - 1) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let samples: Vec<Vec<u8>> = vec![
            b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_vec(),
            b"hello hello hello hello hello world world world".to_vec(),
            (0..5000u32).map(|i| (i % 251) as u8).collect(),
            (0..3000u32).map(|i| (i * 7 % 13) as u8).collect(),
            b"abc".to_vec(),
        ];
        for s in samples {
            if let Some(c) = compress(&s, s.len() + 64) {
                assert_eq!(decompress(&c, s.len()).as_deref(), Some(&s[..]));
            }
        }
    }

    #[test]
    fn compresses_runs_and_refuses_what_does_not_fit() {
        let s = vec![b'x'; 100];
        let c = compress(&s, 96).unwrap();
        assert!(c.len() < 10);
        assert!(compress(b"abcdefghijklmnopqrstuvwxyz", 22).is_none());
    }

    #[test]
    fn rejects_malformed_streams() {
        // A reference before the start of the output.
        assert!(decompress(&[0xE0, 0x05, 0x00], 10).is_none());
        // A literal run longer than the input.
        assert!(decompress(&[0x05, b'a'], 6).is_none());
        // Output longer or shorter than announced.
        assert!(decompress(&[0x01, b'a', b'b'], 1).is_none());
        assert!(decompress(&[0x01, b'a', b'b'], 3).is_none());
        // An absurd announced length is refused before allocating.
        assert!(decompress(&[0x00, b'a'], 1 << 40).is_none());
        assert_eq!(decompress(&[0x00, b'a', 0x20, 0x00], 4).unwrap(), b"aaaa");
    }
}
