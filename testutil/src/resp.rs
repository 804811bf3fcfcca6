//! RESP replies: the decoded type, a strict reader, a reader of raw reply bytes, the request
//! encoder, and INFO parsing.

use std::io::{self, BufRead};

/// A decoded RESP2/RESP3 reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Resp {
    Simple(String),
    /// `-` simple errors and `!` blob errors.
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    /// `$-1` (RESP2) and `_` (RESP3).
    Nil,
    /// `*-1`: EXEC of an aborted transaction, a blocking pop that timed out (RESP2).
    NilArray,
    Array(Vec<Resp>),
    Map(Vec<(Resp, Resp)>),
    Set(Vec<Resp>),
    Double(String),
    Bool(bool),
    Push(Vec<Resp>),
    /// The text of a verbatim string, without its `txt:` format prefix.
    Verbatim(String),
}

impl Resp {
    pub fn bulk(s: &str) -> Resp {
        Resp::Bulk(s.as_bytes().to_vec())
    }
    pub fn ok() -> Resp {
        Resp::Simple("OK".into())
    }
    pub fn err(s: &str) -> Resp {
        Resp::Error(s.into())
    }
    /// An array of bulk strings.
    pub fn bulks(items: &[&str]) -> Resp {
        Resp::Array(items.iter().map(|s| Resp::bulk(s)).collect())
    }
    pub fn as_str(&self) -> String {
        match self {
            Resp::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
            Resp::Simple(s) | Resp::Error(s) | Resp::Double(s) | Resp::Verbatim(s) => s.clone(),
            Resp::Int(n) => n.to_string(),
            other => format!("{other:?}"),
        }
    }
    pub fn as_int(&self) -> i64 {
        match self {
            Resp::Int(n) => *n,
            other => panic!("expected an integer reply, got {other:?}"),
        }
    }
    /// The items of an array/set, sorted (for replies whose order is unspecified).
    pub fn sorted(&self) -> Vec<Resp> {
        let mut v = match self {
            Resp::Array(v) | Resp::Set(v) => v.clone(),
            other => panic!("expected an array, got {other:?}"),
        };
        v.sort_by_key(|r| format!("{r:?}"));
        v
    }
}

/// Appends one command (an array of bulk strings) to `out`.
pub fn encode_command<A: AsRef<[u8]>>(out: &mut Vec<u8>, args: &[A]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Reads one reply from a buffered reader.
pub fn read_resp(r: &mut impl BufRead) -> io::Result<Resp> {
    read_reply(r, &mut Vec::with_capacity(64))
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Reads one reply; `line` is scratch space for the reply's lines, reused so that a client
/// reading many small replies (the benchmarks) does not allocate one per line. Strict: a line
/// without CRLF, a bad length or an unknown type is an error, not a guess.
pub(crate) fn read_reply(r: &mut impl BufRead, line: &mut Vec<u8>) -> io::Result<Resp> {
    line.clear();
    r.read_until(b'\n', line)?;
    if line.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed by the server",
        ));
    }
    if line.len() < 3 || !line.ends_with(b"\r\n") {
        return Err(bad(format!(
            "reply line without CRLF: {:?}",
            String::from_utf8_lossy(line)
        )));
    }
    let kind = line[0];
    let body = &line[1..line.len() - 2];
    let text = || String::from_utf8_lossy(body).into_owned();
    let number = || -> io::Result<i64> {
        std::str::from_utf8(body)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(format!("bad number in reply: {:?}", text())))
    };
    Ok(match kind {
        b'+' => Resp::Simple(text()),
        b'-' => Resp::Error(text()),
        b':' => Resp::Int(number()?),
        b',' => Resp::Double(text()),
        b'#' => Resp::Bool(body == b"t"),
        b'_' => Resp::Nil,
        b'$' | b'=' | b'!' => {
            let n = number()?;
            if n < 0 {
                return Ok(Resp::Nil);
            }
            let mut buf = vec![0u8; n as usize + 2];
            r.read_exact(&mut buf)?;
            if !buf.ends_with(b"\r\n") {
                return Err(bad("bulk string without trailing CRLF".into()));
            }
            buf.truncate(n as usize);
            match kind {
                b'$' => Resp::Bulk(buf),
                b'!' => Resp::Error(String::from_utf8_lossy(&buf).into_owned()),
                // `=<len>\r\ntxt:<text>`: the three-letter format and its colon go.
                _ => Resp::Verbatim(String::from_utf8_lossy(buf.get(4..).unwrap_or(&[])).into()),
            }
        }
        b'*' | b'~' | b'>' => {
            let n = number()?;
            if n < 0 {
                return Ok(Resp::NilArray);
            }
            let mut items = Vec::with_capacity(n.min(1 << 16) as usize);
            for _ in 0..n {
                items.push(read_reply(r, line)?);
            }
            match kind {
                b'*' => Resp::Array(items),
                b'~' => Resp::Set(items),
                _ => Resp::Push(items),
            }
        }
        b'%' => {
            let n = number()?;
            let mut pairs = Vec::with_capacity(n.clamp(0, 1 << 16) as usize);
            for _ in 0..n {
                let k = read_reply(r, line)?;
                pairs.push((k, read_reply(r, line)?));
            }
            Resp::Map(pairs)
        }
        other => {
            return Err(bad(format!(
                "unknown reply type {:?} in line {:?}",
                other as char,
                String::from_utf8_lossy(line)
            )))
        }
    })
}

/// Reads one complete RESP2/RESP3 reply, appending its exact bytes to `out`.
pub fn read_raw_reply(r: &mut impl BufRead, out: &mut Vec<u8>) -> io::Result<()> {
    let start = out.len();
    r.read_until(b'\n', out)?;
    let line = String::from_utf8_lossy(&out[start..])
        .trim_end()
        .to_string();
    if line.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed by the server",
        ));
    }
    let n: i64 = line[1..].parse().unwrap_or(0);
    match line.as_bytes()[0] {
        b'$' | b'=' | b'!' if n >= 0 => {
            let mut body = vec![0u8; n as usize + 2];
            r.read_exact(&mut body)?;
            out.extend_from_slice(&body);
        }
        b'*' | b'~' | b'>' if n > 0 => (0..n).try_for_each(|_| read_raw_reply(r, out))?,
        b'%' if n > 0 => (0..2 * n).try_for_each(|_| read_raw_reply(r, out))?,
        _ => {}
    }
    Ok(())
}

/// An INFO reply as `name → value` pairs, in order (section headers and blank lines skipped).
pub fn parse_info(reply: &Resp) -> Vec<(String, String)> {
    let text = match reply {
        Resp::Bulk(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Resp::Verbatim(s) => s.clone(),
        _ => return Vec::new(),
    };
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

/// A numeric field of a parsed INFO reply (panics when it is missing or not a number), so
/// figures that move can be compared within one reply.
pub fn info_field(info: &[(String, String)], field: &str) -> i64 {
    let (_, value) = info
        .iter()
        .find(|(k, _)| k == field)
        .unwrap_or_else(|| panic!("INFO has no {field}"));
    value
        .parse()
        .unwrap_or_else(|_| panic!("INFO {field} is not a number"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn decode(b: &[u8]) -> io::Result<Resp> {
        read_resp(&mut Cursor::new(b))
    }

    #[test]
    fn every_reply_type_decodes() {
        let wire =
            b"+OK\r\n-ERR no\r\n:-7\r\n$4\r\na\r\nb\r\n$-1\r\n*-1\r\n_\r\n,1.5\r\n#t\r\n#f\r\n\
            =8\r\ntxt:abcd\r\n!5\r\nERR x\r\n~1\r\n:1\r\n>2\r\n+a\r\n+b\r\n%1\r\n+k\r\n*0\r\n";
        let mut r = Cursor::new(&wire[..]);
        let want = [
            Resp::ok(),
            Resp::err("ERR no"),
            Resp::Int(-7),
            Resp::Bulk(b"a\r\nb".to_vec()),
            Resp::Nil,
            Resp::NilArray,
            Resp::Nil,
            Resp::Double("1.5".into()),
            Resp::Bool(true),
            Resp::Bool(false),
            Resp::Verbatim("abcd".into()),
            Resp::err("ERR x"),
            Resp::Set(vec![Resp::Int(1)]),
            Resp::Push(vec![Resp::Simple("a".into()), Resp::Simple("b".into())]),
            Resp::Map(vec![(Resp::Simple("k".into()), Resp::Array(vec![]))]),
        ];
        for w in want {
            assert_eq!(read_resp(&mut r).unwrap(), w);
        }
        let err = read_resp(&mut r).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn malformed_replies_are_errors() {
        for bad in [
            &b":12x\r\n"[..],
            b"+no crlf\n",
            b"$3\r\nabcd\r\n",
            b"?1\r\n",
            b"*2\r\n:1\r\n",
        ] {
            assert!(decode(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn raw_reply_keeps_exact_bytes_of_one_reply() {
        let wire = b"*2\r\n$2\r\nab\r\n%1\r\n+k\r\n:1\r\n+next\r\n";
        let mut r = Cursor::new(&wire[..]);
        let mut out = Vec::new();
        read_raw_reply(&mut r, &mut out).unwrap();
        assert_eq!(out, b"*2\r\n$2\r\nab\r\n%1\r\n+k\r\n:1\r\n");
        out.clear();
        read_raw_reply(&mut r, &mut out).unwrap();
        assert_eq!(out, b"+next\r\n");
        assert!(read_raw_reply(&mut r, &mut out).is_err());
    }

    #[test]
    fn commands_encode_as_bulk_arrays() {
        let mut out = Vec::new();
        encode_command(&mut out, &["SET", "k", ""]);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
    }

    #[test]
    fn info_parsing() {
        let r = Resp::Bulk(b"# Memory\r\nused_memory:123\r\nmaxmemory:64\r\n\r\n".to_vec());
        assert_eq!(
            parse_info(&r),
            vec![
                ("used_memory".to_string(), "123".to_string()),
                ("maxmemory".to_string(), "64".to_string())
            ]
        );
        assert!(parse_info(&Resp::Int(1)).is_empty());
    }
}
