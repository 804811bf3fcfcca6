//! Stream entry IDs (`<ms>-<seq>`) and their textual forms as commands accept them.

use std::fmt;

/// An entry ID: milliseconds and a sequence number, ordered as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub const fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    pub fn is_zero(&self) -> bool {
        *self == StreamId::MIN
    }

    /// The next ID, or `None` after the last possible one.
    pub fn incr(self) -> Option<StreamId> {
        if self.seq < u64::MAX {
            Some(StreamId::new(self.ms, self.seq + 1))
        } else if self.ms < u64::MAX {
            Some(StreamId::new(self.ms + 1, 0))
        } else {
            None
        }
    }

    /// The previous ID, or `None` before 0-0.
    pub fn decr(self) -> Option<StreamId> {
        if self.seq > 0 {
            Some(StreamId::new(self.ms, self.seq - 1))
        } else if self.ms > 0 {
            Some(StreamId::new(self.ms - 1, u64::MAX))
        } else {
            None
        }
    }

    pub fn to_bytes(self) -> Vec<u8> {
        self.to_string().into_bytes()
    }

    /// Big-endian bytes: the key Redis's rax uses, ordered like the IDs.
    pub fn to_be_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.ms.to_be_bytes());
        b[8..].copy_from_slice(&self.seq.to_be_bytes());
        b
    }

    pub fn from_be_bytes(b: &[u8]) -> Option<StreamId> {
        if b.len() != 16 {
            return None;
        }
        Some(StreamId::new(
            u64::from_be_bytes(b[..8].try_into().ok()?),
            u64::from_be_bytes(b[8..].try_into().ok()?),
        ))
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// An unsigned decimal as Redis's `string2ull` accepts it: digits only, no sign, fits in u64.
fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 20 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// A parsed ID argument: the ID, and whether its sequence part was `*` (XADD `<ms>-*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    pub id: StreamId,
    pub seq_auto: bool,
}

/// Parses an ID argument. `missing_seq` fills in a bare `<ms>`; `strict` refuses `-` and `+`;
/// `allow_seq_auto` accepts `<ms>-*`.
pub fn parse(arg: &[u8], missing_seq: u64, strict: bool, allow_seq_auto: bool) -> Option<Parsed> {
    if arg.len() > 127 {
        return None;
    }
    let plain = |id| {
        Some(Parsed {
            id,
            seq_auto: false,
        })
    };
    if !strict && arg == b"-" {
        return plain(StreamId::MIN);
    }
    if !strict && arg == b"+" {
        return plain(StreamId::MAX);
    }
    match arg.iter().position(|&c| c == b'-') {
        None => plain(StreamId::new(parse_u64(arg)?, missing_seq)),
        Some(dash) => {
            let ms = parse_u64(&arg[..dash])?;
            let rest = &arg[dash + 1..];
            if allow_seq_auto && rest == b"*" {
                return Some(Parsed {
                    id: StreamId::new(ms, 0),
                    seq_auto: true,
                });
            }
            plain(StreamId::new(ms, parse_u64(rest)?))
        }
    }
}

/// Parses a plain (strict) ID, `<ms>` meaning `<ms>-0`.
pub fn parse_strict(arg: &[u8]) -> Option<StreamId> {
    parse(arg, 0, true, false).map(|p| p.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(parse_strict(b"5"), Some(StreamId::new(5, 0)));
        assert_eq!(parse_strict(b"5-3"), Some(StreamId::new(5, 3)));
        assert_eq!(parse_strict(b"-"), None);
        assert_eq!(parse_strict(b"5-"), None);
        assert_eq!(parse_strict(b"a-1"), None);
        assert_eq!(parse(b"+", 0, false, false).unwrap().id, StreamId::MAX);
        assert_eq!(
            parse(b"7", u64::MAX, false, false).unwrap().id.seq,
            u64::MAX
        );
        assert!(parse(b"7-*", 0, true, true).unwrap().seq_auto);
        assert_eq!(StreamId::new(1, u64::MAX).incr(), Some(StreamId::new(2, 0)));
        assert_eq!(StreamId::MIN.decr(), None);
    }
}
