//! A small blocking RESP2 client: commands are queued into a buffer and written in one go
//! (pipelining), replies are read one at a time.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A decoded RESP2 reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Nil,
    Array(Vec<Reply>),
}

/// One connection to the server.
pub struct Conn {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    out: Vec<u8>,
    line: Vec<u8>,
}

impl Conn {
    pub fn connect(port: u16) -> io::Result<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(120)))?;
        let reader = BufReader::with_capacity(64 << 10, stream.try_clone()?);
        Ok(Conn {
            stream,
            reader,
            out: Vec::with_capacity(64 << 10),
            line: Vec::with_capacity(64),
        })
    }

    /// Appends one command to the output buffer (sent by [`Conn::flush`]).
    pub fn queue(&mut self, args: &[&[u8]]) {
        self.out
            .extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            self.out
                .extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            self.out.extend_from_slice(a);
            self.out.extend_from_slice(b"\r\n");
        }
    }

    /// Sends every queued command.
    pub fn flush(&mut self) -> io::Result<()> {
        self.stream.write_all(&self.out)?;
        self.out.clear();
        Ok(())
    }

    /// Sends one command and reads its reply.
    pub fn cmd(&mut self, args: &[&[u8]]) -> io::Result<Reply> {
        self.queue(args);
        self.flush()?;
        self.read()
    }

    /// Reads one reply.
    pub fn read(&mut self) -> io::Result<Reply> {
        self.line.clear();
        self.reader.read_until(b'\n', &mut self.line)?;
        if self.line.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed by the server",
            ));
        }
        if !self.line.ends_with(b"\r\n") {
            return Err(bad(format!(
                "reply line without CRLF: {:?}",
                String::from_utf8_lossy(&self.line)
            )));
        }
        let body = &self.line[1..self.line.len() - 2];
        let text = || String::from_utf8_lossy(body).into_owned();
        let number = || -> io::Result<i64> {
            std::str::from_utf8(body)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad(format!("bad number in reply: {:?}", text())))
        };
        match self.line[0] {
            b'+' => Ok(Reply::Simple(text())),
            b'-' => Ok(Reply::Error(text())),
            b':' => Ok(Reply::Int(number()?)),
            b'$' => {
                let n = number()?;
                if n < 0 {
                    return Ok(Reply::Nil);
                }
                let mut buf = vec![0u8; n as usize + 2];
                self.reader.read_exact(&mut buf)?;
                if !buf.ends_with(b"\r\n") {
                    return Err(bad("bulk string without trailing CRLF".into()));
                }
                buf.truncate(n as usize);
                Ok(Reply::Bulk(buf))
            }
            b'*' => {
                let n = number()?;
                if n < 0 {
                    return Ok(Reply::Nil);
                }
                let mut items = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    items.push(self.read()?);
                }
                Ok(Reply::Array(items))
            }
            other => Err(bad(format!("unexpected reply type byte {other:#04x}"))),
        }
    }
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Parses an INFO reply into `name → value` pairs.
pub fn parse_info(reply: &Reply) -> Vec<(String, String)> {
    let Reply::Bulk(bytes) = reply else {
        return Vec::new();
    };
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn round_trip_against_a_canned_server() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut got = vec![0u8; 20];
            s.read_exact(&mut got).unwrap();
            assert_eq!(&got, b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
            s.write_all(b"$3\r\nabc\r\n$-1\r\n-OOM full\r\n:42\r\n*2\r\n+OK\r\n$0\r\n\r\n")
                .unwrap();
        });
        let mut c = Conn::connect(port).unwrap();
        assert_eq!(
            c.cmd(&[b"GET", b"k"]).unwrap(),
            Reply::Bulk(b"abc".to_vec())
        );
        assert_eq!(c.read().unwrap(), Reply::Nil);
        assert_eq!(c.read().unwrap(), Reply::Error("OOM full".into()));
        assert_eq!(c.read().unwrap(), Reply::Int(42));
        assert_eq!(
            c.read().unwrap(),
            Reply::Array(vec![Reply::Simple("OK".into()), Reply::Bulk(Vec::new())])
        );
        server.join().unwrap();
        assert!(c.read().is_err());
    }

    #[test]
    fn info_parsing() {
        let r = Reply::Bulk(b"# Memory\r\nused_memory:123\r\nmaxmemory:64\r\n\r\n".to_vec());
        assert_eq!(
            parse_info(&r),
            vec![
                ("used_memory".to_string(), "123".to_string()),
                ("maxmemory".to_string(), "64".to_string())
            ]
        );
    }
}
