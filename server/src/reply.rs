//! RESP2/RESP3 reply encoder writing straight into a client's output buffer.

/// The output buffer of one client plus the protocol it speaks.
#[derive(Debug, Default)]
pub struct Reply {
    pub buf: Vec<u8>,
    pub resp3: bool,
}

impl Reply {
    fn line(&mut self, prefix: u8, body: &[u8]) {
        self.buf.push(prefix);
        self.buf.extend_from_slice(body);
        self.buf.extend_from_slice(b"\r\n");
    }

    fn len_line(&mut self, prefix: u8, n: i64) {
        let mut b = itoa::Buffer::new();
        self.line(prefix, b.format(n).as_bytes());
    }

    pub fn ok(&mut self) {
        self.buf.extend_from_slice(b"+OK\r\n");
    }

    pub fn simple(&mut self, s: &str) {
        self.line(b'+', s.as_bytes());
    }

    /// An error reply; `msg` carries its code, e.g. `ERR syntax error` or `WRONGTYPE …`. A
    /// command's own failure is a `CmdError` its handler returns (see `commands::run`); this
    /// writes one, or an error that is part of a reply (EXEC's array, a script's table).
    pub fn error(&mut self, msg: &str) {
        // Newlines would break the protocol; Redis replaces them with spaces too.
        let clean: String = msg
            .chars()
            .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
            .collect();
        self.line(b'-', clean.as_bytes());
    }

    pub fn int(&mut self, n: i64) {
        self.len_line(b':', n);
    }

    pub fn bulk(&mut self, b: &[u8]) {
        self.len_line(b'$', b.len() as i64);
        self.buf.extend_from_slice(b);
        self.buf.extend_from_slice(b"\r\n");
    }

    pub fn bulk_str(&mut self, s: &str) {
        self.bulk(s.as_bytes());
    }

    /// Null bulk string (`$-1` / `_`).
    pub fn null(&mut self) {
        if self.resp3 {
            self.buf.extend_from_slice(b"_\r\n");
        } else {
            self.buf.extend_from_slice(b"$-1\r\n");
        }
    }

    /// Null array (`*-1` / `_`).
    pub fn null_array(&mut self) {
        if self.resp3 {
            self.buf.extend_from_slice(b"_\r\n");
        } else {
            self.buf.extend_from_slice(b"*-1\r\n");
        }
    }

    pub fn array(&mut self, n: usize) {
        self.len_line(b'*', n as i64);
    }

    /// A map of `n` pairs (`%n` in RESP3, a flat array of 2n in RESP2).
    pub fn map(&mut self, n: usize) {
        if self.resp3 {
            self.len_line(b'%', n as i64);
        } else {
            self.len_line(b'*', 2 * n as i64);
        }
    }

    /// A set reply (`~n` in RESP3, an array in RESP2).
    pub fn set(&mut self, n: usize) {
        self.len_line(if self.resp3 { b'~' } else { b'*' }, n as i64);
    }

    /// A push frame (`>n` in RESP3, an array in RESP2).
    pub fn push(&mut self, n: usize) {
        self.len_line(if self.resp3 { b'>' } else { b'*' }, n as i64);
    }

    /// A double (`,` in RESP3, a bulk string formatted as Redis 7.0 does in RESP2).
    pub fn double(&mut self, d: f64) {
        if self.resp3 {
            let s = if d.is_infinite() {
                if d > 0.0 {
                    "inf".to_string()
                } else {
                    "-inf".to_string()
                }
            } else {
                crate::util::fmt_double(d)
            };
            self.line(b',', s.as_bytes());
        } else {
            self.bulk(crate::util::fmt_double(d).as_bytes());
        }
    }

    /// Verbatim text (`=` in RESP3 with format `txt`, a bulk string in RESP2).
    pub fn verbatim(&mut self, s: &str) {
        if self.resp3 {
            self.len_line(b'=', s.len() as i64 + 4);
            self.buf.extend_from_slice(b"txt:");
            self.buf.extend_from_slice(s.as_bytes());
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(s.as_bytes());
        }
    }

    pub fn bulks<'a>(&mut self, items: impl ExactSizeIterator<Item = &'a [u8]>) {
        self.array(items.len());
        for i in items {
            self.bulk(i);
        }
    }
}
