//! Argument parsers shared by several commands: DB index, SCAN cursor and options, the
//! EXPIRE family's conditions; and the missing-key reply of the commands with an optional count.

use super::{CmdError, CmdResult};
use crate::reply::Reply;
use crate::util::parse_i64;

/// A DB index argument (SELECT, MOVE, COPY … DB): Redis's not-an-integer or out-of-range error.
pub fn db_index(arg: &[u8], databases: usize) -> Result<u32, CmdError> {
    db_in_range(parse_i64(arg).ok_or(CmdError::NotInt)?, databases)
}

/// An integer DB index checked against the number of DBs (SWAPDB parses both its indexes
/// before it checks either).
pub fn db_in_range(n: i64, databases: usize) -> Result<u32, CmdError> {
    u32::try_from(n)
        .ok()
        .filter(|&d| (d as usize) < databases)
        .ok_or(CmdError::DbIndexOutOfRange)
}

/// A SCAN/SSCAN/HSCAN/ZSCAN cursor, accepted as Redis's `strtoul` check does (an empty string
/// is 0, a negative number wraps).
pub fn scan_cursor(b: &[u8]) -> Result<u64, CmdError> {
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() {
        // strtoul converts nothing: fine for "", an error for a lone sign.
        return if b.is_empty() {
            Ok(0)
        } else {
            Err(CmdError::InvalidCursor)
        };
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return Err(CmdError::InvalidCursor);
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add((c - b'0') as u64))
            .ok_or(CmdError::InvalidCursor)?;
    }
    Ok(if neg { v.wrapping_neg() } else { v })
}

/// The options after a SCAN-family cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanOpts {
    /// MATCH pattern; `None` for none or `*`.
    pub pattern: Option<Vec<u8>>,
    pub count: usize,
    /// TYPE (SCAN only), lower-cased.
    pub type_name: Option<String>,
}

/// Parses `[MATCH pattern] [COUNT n]` (and `[TYPE t]` when `with_type`, for SCAN), as Redis.
pub fn scan_opts(args: &[Vec<u8>], with_type: bool) -> Result<ScanOpts, CmdError> {
    let mut o = ScanOpts {
        pattern: None,
        count: 10,
        type_name: None,
    };
    for pair in args.chunks(2) {
        let [opt, value] = pair else {
            return Err(CmdError::Syntax);
        };
        match opt.to_ascii_lowercase().as_slice() {
            b"count" => match parse_i64(value) {
                None => return Err(CmdError::NotInt),
                Some(n) if n < 1 => return Err(CmdError::Syntax),
                Some(n) => o.count = usize::try_from(n).unwrap_or(usize::MAX),
            },
            b"match" => o.pattern = (value.as_slice() != b"*").then(|| value.clone()),
            b"type" if with_type => {
                o.type_name = Some(String::from_utf8_lossy(value).to_lowercase())
            }
            _ => return Err(CmdError::Syntax),
        }
    }
    Ok(o)
}

/// Where an element (key, field, member) sits in SCAN order: a fixed hash of its bytes
/// (FNV-1a, then a finalizer to spread it), 63 bits so a cursor fits any client's signed
/// integer, never 0 since cursor 0 means "start"/"done". A cursor is then a position that
/// survives elements being added or removed between calls.
pub fn scan_hash(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &c in b {
        h ^= c as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    (h >> 1).max(1)
}

/// The condition of EXPIRE/PEXPIRE/EXPIREAT/PEXPIREAT (NX, XX, GT, LT).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpireCond {
    pub nx: bool,
    pub xx: bool,
    pub gt: bool,
    pub lt: bool,
}

impl ExpireCond {
    /// Parses the options after the time, with Redis's errors for unknown or clashing ones.
    pub fn parse(args: &[Vec<u8>]) -> Result<Self, CmdError> {
        let mut c = ExpireCond::default();
        for a in args {
            match a.to_ascii_lowercase().as_slice() {
                b"nx" => c.nx = true,
                b"xx" => c.xx = true,
                b"gt" => c.gt = true,
                b"lt" => c.lt = true,
                _ => {
                    return Err(CmdError::msg(format!(
                        "ERR Unsupported option {}",
                        String::from_utf8_lossy(a)
                    )))
                }
            }
        }
        if c.nx && (c.xx || c.gt || c.lt) {
            return Err(CmdError::msg(
                "ERR NX and XX, GT or LT options at the same time are not compatible",
            ));
        }
        if c.gt && c.lt {
            return Err(CmdError::msg(
                "ERR GT and LT options at the same time are not compatible",
            ));
        }
        Ok(c)
    }

    /// Whether a key whose expire time is `current` (`None`: no expire, i.e. infinite) gets
    /// the new time `when`.
    pub fn allows(&self, current: Option<i64>, when: i64) -> bool {
        match current {
            None => !(self.xx || self.gt),
            Some(c) => !self.nx && (!self.gt || when > c) && (!self.lt || when < c),
        }
    }
}

/// The reply of HRANDFIELD, ZRANDMEMBER and LPOS for a key that does not exist: an empty array
/// when a count was given (`counted`, see `random_count_args`), a nil without one, as the reply's
/// shape follows the count.
pub fn missing_key_reply(out: &mut Reply, counted: bool) -> CmdResult {
    if counted {
        out.array(0);
    } else {
        out.null();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(args: &[&str]) -> Vec<Vec<u8>> {
        args.iter().map(|a| a.as_bytes().to_vec()).collect()
    }

    #[test]
    fn db_index_errors() {
        assert_eq!(db_index(b"3", 16), Ok(3));
        assert_eq!(db_index(b"16", 16), Err(CmdError::DbIndexOutOfRange));
        assert_eq!(db_index(b"-1", 16), Err(CmdError::DbIndexOutOfRange));
        assert_eq!(db_index(b"x", 16), Err(CmdError::NotInt));
    }

    #[test]
    fn cursors_as_strtoul() {
        assert_eq!(scan_cursor(b""), Ok(0));
        assert_eq!(scan_cursor(b"+7"), Ok(7));
        assert_eq!(scan_cursor(b"-1"), Ok(u64::MAX));
        assert_eq!(scan_cursor(b"-"), Err(CmdError::InvalidCursor));
        assert_eq!(scan_cursor(b"1x"), Err(CmdError::InvalidCursor));
        assert_eq!(
            scan_cursor(b"99999999999999999999"),
            Err(CmdError::InvalidCursor)
        );
    }

    #[test]
    fn scan_options() {
        let o = scan_opts(&v(&["MATCH", "a*", "count", "5"]), false).unwrap();
        assert_eq!(o.pattern.as_deref(), Some(&b"a*"[..]));
        assert_eq!(o.count, 5);
        assert_eq!(scan_opts(&v(&["match", "*"]), false).unwrap().pattern, None);
        assert_eq!(scan_opts(&v(&["count", "0"]), false), Err(CmdError::Syntax));
        assert_eq!(scan_opts(&v(&["count", "x"]), false), Err(CmdError::NotInt));
        assert_eq!(scan_opts(&v(&["count"]), false), Err(CmdError::Syntax));
        assert_eq!(
            scan_opts(&v(&["type", "set"]), false),
            Err(CmdError::Syntax)
        );
        let o = scan_opts(&v(&["TYPE", "Set"]), true).unwrap();
        assert_eq!(o.type_name.as_deref(), Some("set"));
    }

    #[test]
    fn scan_hash_is_positive_and_stable() {
        assert_eq!(scan_hash(b"a"), scan_hash(b"a"));
        assert_ne!(scan_hash(b"a"), scan_hash(b"b"));
        assert!(scan_hash(b"") >= 1 && scan_hash(b"x") <= i64::MAX as u64);
    }

    #[test]
    fn expire_conditions() {
        assert_eq!(
            ExpireCond::parse(&v(&["nx", "xx"])).unwrap_err().code(),
            "ERR"
        );
        assert!(ExpireCond::parse(&v(&["gt", "lt"])).is_err());
        let gt = ExpireCond::parse(&v(&["GT"])).unwrap();
        assert!(!gt.allows(None, 5));
        assert!(gt.allows(Some(4), 5));
        assert!(!gt.allows(Some(5), 5));
        assert!(ExpireCond::default().allows(None, 1));
    }

    #[test]
    fn missing_key_reply_follows_the_count() {
        let mut out = Reply::default();
        missing_key_reply(&mut out, true).unwrap();
        missing_key_reply(&mut out, false).unwrap();
        assert_eq!(out.buf, b"*0\r\n$-1\r\n");
        let mut out = Reply {
            resp3: true,
            ..Reply::default()
        };
        missing_key_reply(&mut out, true).unwrap();
        missing_key_reply(&mut out, false).unwrap();
        assert_eq!(out.buf, b"*0\r\n_\r\n");
    }
}
