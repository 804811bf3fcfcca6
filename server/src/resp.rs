//! Incremental RESP request parser: multibulk (`*N\r\n$len\r\n…`) and inline commands, with
//! Redis's limits and error texts. Lengths are checked before anything is allocated.

use memchr::memchr;

/// Longest inline request, and longest `*N` / `$N` header line (Redis's PROTO_INLINE_MAX_SIZE).
pub const INLINE_MAX: usize = 64 * 1024;
/// Most arguments in one multibulk request (Redis 7.0: INT_MAX). The arguments read so far
/// count against `client-query-buffer-limit` (see [`Parser::held`]), so a huge count cannot
/// grow memory without bound.
pub const MULTIBULK_MAX: i64 = i32::MAX as i64;
/// Before authentication, Redis accepts at most this many arguments per request…
pub const UNAUTH_MULTIBULK_MAX: i64 = 10;
/// …and bulk strings of at most this length.
pub const UNAUTH_BULK_MAX: i64 = 16 * 1024;
/// Bookkeeping bytes an argument costs beyond its payload (what `held` counts).
const ARG_OVERHEAD: usize = 32;
/// Argument buffers a parser keeps from the requests it was given back (see
/// [`Parser::recycle`]), and the largest it keeps: a short request then costs no allocation,
/// and a connection holds at most a few hundred bytes for it.
const SPARE_ARGS: usize = 8;
const SPARE_ARG_CAPACITY: usize = 64;

/// A protocol error: the client gets `-ERR Protocol error: <msg>` and is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtoError(pub String);

/// Parser state kept between reads (a multibulk request may span many reads).
#[derive(Debug, Default)]
pub struct Parser {
    args: Vec<Vec<u8>>,
    /// Arguments still expected in the current multibulk request; 0 = between requests.
    pending: usize,
    /// Length of the bulk string being read, once its `$len` line was seen.
    bulk_len: Option<usize>,
    /// Payload bytes of `args` (plus per-argument overhead).
    held: usize,
    /// The client is not authenticated yet: Redis's tighter limits apply (set by the server
    /// before each parse).
    pub unauthenticated: bool,
    /// Emptied buffers of earlier requests, for the next one's arguments.
    spare: Vec<Vec<u8>>,
    /// An emptied argument list of an earlier request, for the next one.
    spare_list: Vec<Vec<u8>>,
}

impl Parser {
    /// Parses one request from `buf[*pos..]`, advancing `pos` past what it consumed. Returns
    /// `Ok(None)` when more bytes are needed, `Ok(Some(args))` for a request (possibly empty,
    /// which callers skip).
    pub fn parse(
        &mut self,
        buf: &[u8],
        pos: &mut usize,
        max_bulk: usize,
    ) -> Result<Option<Vec<Vec<u8>>>, ProtoError> {
        if self.pending == 0 {
            let Some(&first) = buf.get(*pos) else {
                return Ok(None);
            };
            if first != b'*' {
                return parse_inline(buf, pos);
            }
            let Some((n, next)) = read_line_int(buf, *pos + 1, "too big mbulk count string")?
            else {
                return Ok(None);
            };
            let n = n.ok_or_else(|| ProtoError::new("invalid multibulk length"))?;
            if n > MULTIBULK_MAX {
                return Err(ProtoError::new("invalid multibulk length"));
            }
            if n > UNAUTH_MULTIBULK_MAX && self.unauthenticated {
                return Err(ProtoError::new("unauthenticated multibulk length"));
            }
            *pos = next;
            if n <= 0 {
                return Ok(Some(Vec::new()));
            }
            self.pending = n as usize;
            self.args = std::mem::take(&mut self.spare_list);
            self.args.reserve((n as usize).min(1024));
        }
        while self.pending > 0 {
            let len = match self.bulk_len {
                Some(l) => l,
                None => {
                    let Some(&c) = buf.get(*pos) else {
                        return Ok(None);
                    };
                    if c != b'$' {
                        return Err(ProtoError(format!("expected '$', got '{}'", c as char)));
                    }
                    let Some((n, next)) =
                        read_line_int(buf, *pos + 1, "too big bulk count string")?
                    else {
                        return Ok(None);
                    };
                    let n = n.ok_or_else(|| ProtoError::new("invalid bulk length"))?;
                    if n < 0 || n as u64 > max_bulk as u64 {
                        return Err(ProtoError::new("invalid bulk length"));
                    }
                    if n > UNAUTH_BULK_MAX && self.unauthenticated {
                        return Err(ProtoError::new("unauthenticated bulk length"));
                    }
                    *pos = next;
                    self.bulk_len = Some(n as usize);
                    n as usize
                }
            };
            if buf.len() - *pos < len + 2 {
                return Ok(None);
            }
            let mut arg = self.spare.pop().unwrap_or_default();
            arg.extend_from_slice(&buf[*pos..*pos + len]);
            self.args.push(arg);
            self.held += len + ARG_OVERHEAD;
            // Redis skips the two bytes after the payload without checking them.
            *pos += len + 2;
            self.bulk_len = None;
            self.pending -= 1;
        }
        self.held = 0;
        Ok(Some(std::mem::take(&mut self.args)))
    }

    /// Takes back the arguments of a request that has run, to parse the next ones into
    /// (a few small buffers at most; the rest is freed).
    pub fn recycle(&mut self, mut args: Vec<Vec<u8>>) {
        for mut a in args.drain(..) {
            if self.spare.len() < SPARE_ARGS && a.capacity() <= SPARE_ARG_CAPACITY {
                a.clear();
                self.spare.push(a);
            }
        }
        if args.capacity() <= SPARE_ARGS && self.spare_list.capacity() == 0 {
            self.spare_list = args;
        }
    }

    /// Memory held by the arguments of a request still being read: counted with the unparsed
    /// input against `client-query-buffer-limit`.
    pub fn held(&self) -> usize {
        self.held
    }
}

impl ProtoError {
    fn new(msg: &str) -> Self {
        ProtoError(msg.to_string())
    }
}

/// Reads a `\r\n`-terminated integer starting at `start`. `Ok(None)`: incomplete line.
/// `Ok(Some((None, _)))`: not a valid integer.
#[allow(clippy::type_complexity)]
fn read_line_int(
    buf: &[u8],
    start: usize,
    too_big: &'static str,
) -> Result<Option<(Option<i64>, usize)>, ProtoError> {
    let rest = &buf[start.min(buf.len())..];
    let Some(nl) = memchr(b'\r', rest) else {
        if rest.len() > INLINE_MAX {
            return Err(ProtoError::new(too_big));
        }
        return Ok(None);
    };
    if nl > INLINE_MAX {
        return Err(ProtoError::new(too_big));
    }
    if rest.len() < nl + 2 {
        return Ok(None);
    }
    let n = crate::util::parse_i64(&rest[..nl]);
    Ok(Some((n, start + nl + 2)))
}

fn parse_inline(buf: &[u8], pos: &mut usize) -> Result<Option<Vec<Vec<u8>>>, ProtoError> {
    let rest = &buf[*pos..];
    // Redis looks for the newline with strchr, which stops at a NUL byte: a NUL before the
    // newline means the request is not complete yet (and at 64 KB it is too big), as there.
    let newline = memchr(b'\n', rest).filter(|&nl| memchr(0, &rest[..nl]).is_none());
    let Some(nl) = newline else {
        if rest.len() > INLINE_MAX {
            return Err(ProtoError::new("too big inline request"));
        }
        return Ok(None);
    };
    if nl > INLINE_MAX {
        return Err(ProtoError::new("too big inline request"));
    }
    let mut line = &rest[..nl];
    if line.last() == Some(&b'\r') {
        line = &line[..line.len() - 1];
    }
    let args = split_args(line).ok_or_else(|| ProtoError::new("unbalanced quotes in request"))?;
    *pos += nl + 1;
    Ok(Some(args))
}

/// The second argument (for most commands, the first key) of each of the next `max` complete
/// multibulk requests in `buf` from `pos`, without parsing them into arguments. Stops at
/// anything else (an inline request, a partial or malformed one: the parser judges those).
/// For warming the cache lines of a pipeline's keys before running it (see
/// `Server::warm_keys`): a hint only, so it never fails.
pub fn second_args<'a>(buf: &'a [u8], mut pos: usize, max: usize, mut f: impl FnMut(&'a [u8])) {
    // The parser's count line after the type byte at `at` (a non-negative one), and where the
    // line ends.
    let line = |at: usize, kind: u8| -> Option<(usize, usize)> {
        if *buf.get(at)? != kind {
            return None;
        }
        match read_line_int(buf, at + 1, "") {
            Ok(Some((Some(n), next))) => Some((usize::try_from(n).ok()?, next)),
            _ => None,
        }
    };
    for _ in 0..max {
        let Some((n, mut at)) = line(pos, b'*') else {
            return;
        };
        let mut second = None;
        for i in 0..n {
            let Some((len, start)) = line(at, b'$') else {
                return;
            };
            let Some(end) = start.checked_add(len).filter(|&e| e + 2 <= buf.len()) else {
                return;
            };
            if i == 1 {
                second = Some(start..end);
            }
            at = end + 2;
        }
        if let Some(r) = second {
            f(&buf[r]);
        }
        pos = at;
    }
}

/// Splits an inline request like Redis's `sdssplitargs`: whitespace-separated words, `"…"` with
/// C escapes (`\n`, `\xHH`, …) and `'…'` with `\'`. `None` on unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut args = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && is_space(line[i]) {
            i += 1;
        }
        // A NUL ends the request like the end of the line (Redis parses a C string); a loop
        // that did not stop here pushed empty words forever on `\0`.
        if i >= n || line[i] == 0 {
            return Some(args);
        }
        let mut cur = Vec::new();
        let (mut in_dq, mut in_sq) = (false, false);
        loop {
            if in_dq {
                if i >= n || line[i] == 0 {
                    return None;
                }
                if line[i] == b'\\'
                    && i + 3 < n
                    && line[i + 1] == b'x'
                    && line[i + 2].is_ascii_hexdigit()
                    && line[i + 3].is_ascii_hexdigit()
                {
                    let h = std::str::from_utf8(&line[i + 2..i + 4]).ok()?;
                    cur.push(u8::from_str_radix(h, 16).ok()?);
                    i += 3;
                } else if line[i] == b'\\' && i + 1 < n && line[i + 1] != 0 {
                    i += 1;
                    cur.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        c => c,
                    });
                } else if line[i] == b'"' {
                    // A closing quote must be followed by a space or the end.
                    if i + 1 < n && !is_space(line[i + 1]) && line[i + 1] != 0 {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(line[i]);
                }
            } else if in_sq {
                if i >= n || line[i] == 0 {
                    return None;
                }
                if line[i] == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    i += 1;
                    cur.push(b'\'');
                } else if line[i] == b'\'' {
                    if i + 1 < n && !is_space(line[i + 1]) && line[i + 1] != 0 {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(line[i]);
                }
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => break,
                    b'"' => in_dq = true,
                    b'\'' => in_sq = true,
                    c => cur.push(c),
                }
            }
            i += 1;
        }
        args.push(cur);
    }
}

/// C's `isspace`, what Redis skips between words (Rust's `is_ascii_whitespace` lacks `\v`).
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, ProtoError> {
        let mut p = Parser::default();
        let mut pos = 0;
        let mut out = Vec::new();
        while let Some(a) = p.parse(input, &mut pos, 512 << 20)? {
            out.push(a);
        }
        Ok(out)
    }

    #[test]
    fn recycled_buffers_hold_the_next_requests_arguments() {
        let mut p = Parser::default();
        let input = b"*3\r\n$5\r\nRPUSH\r\n$1\r\nk\r\n$3\r\nabc\r\n*2\r\n$3\r\nGET\r\n$10\r\n0123456789\r\n";
        let mut pos = 0;
        let first = p.parse(input, &mut pos, 1 << 20).unwrap().unwrap();
        assert_eq!(
            first,
            vec![b"RPUSH".to_vec(), b"k".to_vec(), b"abc".to_vec()]
        );
        p.recycle(first);
        let second = p.parse(input, &mut pos, 1 << 20).unwrap().unwrap();
        // A recycled buffer never shows what it held before.
        assert_eq!(second, vec![b"GET".to_vec(), b"0123456789".to_vec()]);
        // Large buffers and long lists are not kept.
        p.recycle(vec![vec![0u8; 4096]; 100]);
        assert!(p.spare.len() <= SPARE_ARGS);
        assert!(p
            .spare
            .iter()
            .all(|a| a.is_empty() && a.capacity() <= SPARE_ARG_CAPACITY));
        assert!(p.spare_list.capacity() <= SPARE_ARGS);
    }

    #[test]
    fn multibulk_and_inline() {
        let r = parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\nset a \"b c\"\r\n").unwrap();
        assert_eq!(r[0], vec![b"GET".to_vec(), b"k".to_vec()]);
        assert_eq!(r[1], vec![b"PING".to_vec()]);
        assert_eq!(r[2], vec![b"set".to_vec(), b"a".to_vec(), b"b c".to_vec()]);
    }

    #[test]
    fn byte_at_a_time() {
        let input = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
        let mut p = Parser::default();
        let mut got = None;
        let mut buf = Vec::new();
        let mut pos = 0;
        for &b in input.iter() {
            buf.push(b);
            if let Some(a) = p.parse(&buf, &mut pos, 1 << 20).unwrap() {
                got = Some(a);
            }
        }
        assert_eq!(got.unwrap()[2], b"hello".to_vec());
    }

    #[test]
    fn errors() {
        assert_eq!(
            parse_all(b"*1\r\n$-5\r\n").unwrap_err().0,
            "invalid bulk length"
        );
        assert_eq!(
            parse_all(b"*1\r\n$600000000\r\n").unwrap_err().0,
            "invalid bulk length"
        );
        assert_eq!(
            parse_all(b"*abc\r\n").unwrap_err().0,
            "invalid multibulk length"
        );
        assert_eq!(
            parse_all(b"*3000000000\r\n").unwrap_err().0,
            "invalid multibulk length"
        );
        // Redis 7.0 waits for the arguments of a count up to INT_MAX.
        assert_eq!(
            parse_all(b"*9999999\r\n").unwrap(),
            Vec::<Vec<Vec<u8>>>::new()
        );
        assert_eq!(
            parse_all(b"*1\r\nx\r\n").unwrap_err().0,
            "expected '$', got 'x'"
        );
        assert_eq!(
            parse_all(b"set \"a\r\n").unwrap_err().0,
            "unbalanced quotes in request"
        );
        assert_eq!(
            parse_all(&vec![b'a'; 70000]).unwrap_err().0,
            "too big inline request"
        );
    }

    /// Fuzz crasher (corpus `nul-bytes.bin`): an inline request with a NUL byte looped forever
    /// pushing empty words, hanging the server and growing its memory.
    #[test]
    fn regression_inline_nul_byte_ends_the_request() {
        assert_eq!(split_args(b"\x00\x01").unwrap(), Vec::<Vec<u8>>::new());
        assert_eq!(split_args(b"a\x00b c").unwrap(), vec![b"a".to_vec()]);
        assert_eq!(split_args(b"  \x00").unwrap(), Vec::<Vec<u8>>::new());
        assert!(split_args(b"\"a\x00\"").is_none());
        assert!(split_args(b"'a\x00'").is_none());
        assert_eq!(split_args(b"\"a\"\x00x").unwrap(), vec![b"a".to_vec()]);
        // \v and \f separate words, as C's isspace says.
        assert_eq!(split_args(b"a\x0bb").unwrap(), vec![b"a\x0bb".to_vec()]);
        assert_eq!(split_args(b"\x0b\x0ca").unwrap(), vec![b"a".to_vec()]);
        // On the wire, a NUL before the newline leaves the inline request incomplete (Redis's
        // strchr); past 64 KB it is too big.
        assert_eq!(
            parse_all(b"\x00\x01\r\nPING\r\n").unwrap(),
            Vec::<Vec<Vec<u8>>>::new()
        );
        let mut big = b"\x00\r\n".to_vec();
        big.extend(std::iter::repeat_n(b'a', 70_000));
        assert_eq!(parse_all(&big).unwrap_err().0, "too big inline request");
    }

    #[test]
    fn split_args_escapes() {
        assert_eq!(
            split_args(b"a \"\\x41\\n\" 'it\\'s'").unwrap(),
            vec![b"a".to_vec(), b"A\n".to_vec(), b"it's".to_vec()]
        );
        assert!(split_args(b"\"a\"b").is_none());
        assert_eq!(split_args(b"   ").unwrap(), Vec::<Vec<u8>>::new());
    }

    #[test]
    fn second_args_are_found_in_whole_requests_only() {
        let buf = b"*3\r\n$3\r\nSET\r\n$2\r\nk1\r\n$1\r\nv\r\n*1\r\n$4\r\nPING\r\n\
                    *2\r\n$3\r\nGET\r\n$0\r\n\r\n*2\r\n$3\r\nGET\r\n$2\r\nk3\r\n*2\r\n$3\r\nGET\r\n$2\r\nk";
        let mut seen = Vec::new();
        second_args(buf, 0, 10, |k| seen.push(k.to_vec()));
        assert_eq!(seen, [b"k1".to_vec(), b"".to_vec(), b"k3".to_vec()]);
        let mut seen = Vec::new();
        second_args(buf, 0, 1, |k| seen.push(k.to_vec()));
        assert_eq!(seen, [b"k1".to_vec()]);
        // Whatever the bytes, no panic and nothing past the buffer.
        for bad in [
            &b"*2\r\n$3\r\nGET\r\n$99999999999999999999\r\n"[..],
            b"*9223372036854775807\r\n",
            b"*2\r\n$-1\r\n",
            b"*2\r\n$3\r\nGET\r\n$18446744073709551615\r\nk\r\n",
            b"GET k\r\n",
            b"*",
            b"",
        ] {
            second_args(bad, 0, 10, |k| panic!("found {k:?} in {bad:?}"));
        }
    }
}
