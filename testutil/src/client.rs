//! RESP clients over loopback TCP: [`Client`] decodes replies, [`RawConn`] keeps their bytes.

use crate::resp::{
    encode_command, info_field, parse_info, read_raw_reply, read_reply, read_resp, Resp,
};
use std::io::{self, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The read timeout of [`Client::connect`] and [`RawConn::connect`]: long enough for a slow
/// command on a loaded machine, short enough that a lost reply fails the test.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A blocking RESP client that keeps replies' exact types. Commands are either sent at once
/// ([`Client::send`], [`Client::cmd`]; these panic on I/O errors, for tests) or queued and
/// written as one pipeline ([`Client::queue`], [`Client::flush`]; these return the error, for
/// the benchmarks). Nagle is off, so a small request never waits for the previous one's ACK.
pub struct Client {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
    out: Vec<u8>,
    line: Vec<u8>,
}

impl Client {
    pub fn connect(port: u16) -> Client {
        Client::try_connect(port).expect("connect")
    }

    /// Connects, or says why not (a server that is not up yet, or gone).
    pub fn try_connect(port: u16) -> io::Result<Client> {
        Client::try_connect_timeout(port, READ_TIMEOUT)
    }

    /// Connects with a read timeout of `timeout`.
    pub fn try_connect_timeout(port: u16, timeout: Duration) -> io::Result<Client> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(timeout))?;
        let reader = BufReader::with_capacity(64 << 10, stream.try_clone()?);
        Ok(Client {
            stream,
            reader,
            out: Vec::with_capacity(64 << 10),
            line: Vec::with_capacity(64),
        })
    }

    /// Appends one command to the output buffer (written by [`Client::flush`]).
    pub fn queue(&mut self, args: &[&[u8]]) {
        encode_command(&mut self.out, args);
    }

    /// Writes every queued command in one go.
    pub fn flush(&mut self) -> io::Result<()> {
        let r = self.stream.write_all(&self.out);
        self.out.clear();
        r
    }

    /// Sends one command and reads its reply, or the I/O error.
    pub fn try_cmd(&mut self, args: &[&[u8]]) -> io::Result<Resp> {
        self.queue(args);
        self.flush()?;
        self.try_read()
    }

    /// Reads one reply, or the error that ended the connection.
    pub fn try_read(&mut self) -> io::Result<Resp> {
        read_reply(&mut self.reader, &mut self.line)
    }

    pub fn send(&mut self, args: &[&str]) {
        let b: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.send_bytes(&b);
    }

    pub fn send_bytes(&mut self, args: &[&[u8]]) {
        self.queue(args);
        self.flush().expect("write");
    }

    /// Writes bytes as they are (partial or malformed requests).
    pub fn send_raw(&mut self, raw: &[u8]) {
        self.stream.write_all(raw).expect("write");
    }

    /// Sends a command and reads its reply.
    pub fn cmd(&mut self, args: &[&str]) -> Resp {
        self.send(args);
        self.read()
    }

    pub fn cmd_bytes(&mut self, args: &[&[u8]]) -> Resp {
        self.send_bytes(args);
        self.read()
    }

    pub fn read(&mut self) -> Resp {
        self.try_read().expect("read reply")
    }

    /// Reads raw bytes until the server closes the connection (or the timeout).
    pub fn read_to_close(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = self.reader.read_to_end(&mut out);
        out
    }

    /// A numeric field of `INFO everything`.
    pub fn info_int(&mut self, field: &str) -> i64 {
        info_field(&parse_info(&self.cmd(&["INFO", "everything"])), field)
    }

    pub fn set_timeout(&mut self, d: Duration) {
        self.stream.set_read_timeout(Some(d)).expect("timeout");
    }
}

/// A connection that returns each reply's raw bytes, for byte-for-byte comparisons of kvtier
/// with redis-server (RESP2 and RESP3 alike).
pub struct RawConn {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl RawConn {
    pub fn connect(port: u16) -> io::Result<RawConn> {
        let w = TcpStream::connect(("127.0.0.1", port))?;
        w.set_nodelay(true)?;
        w.set_read_timeout(Some(READ_TIMEOUT))?;
        let r = BufReader::new(w.try_clone()?);
        Ok(RawConn { w, r })
    }

    /// Sends one request and returns its reply's bytes.
    pub fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<Vec<u8>> {
        let mut req = Vec::new();
        encode_command(&mut req, args);
        self.w.write_all(&req)?;
        let mut out = Vec::new();
        read_raw_reply(&mut self.r, &mut out)?;
        Ok(out)
    }

    /// Sends one request and returns its reply decoded and as bytes.
    pub fn call_decoded<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<(Resp, Vec<u8>)> {
        let raw = self.call(args)?;
        let decoded = read_resp(&mut io::Cursor::new(&raw))?;
        Ok((decoded, raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A server that expects `request` and answers `reply`, then closes.
    fn canned(request: &'static [u8], reply: &'static [u8]) -> (u16, std::thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut got = vec![0u8; request.len()];
            s.read_exact(&mut got).unwrap();
            assert_eq!(got, request);
            s.write_all(reply).unwrap();
        });
        (port, server)
    }

    #[test]
    fn pipelined_round_trip() {
        let (port, server) = canned(
            b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n",
            b"$3\r\nabc\r\n$-1\r\n-OOM full\r\n:42\r\n*2\r\n+OK\r\n$0\r\n\r\n",
        );
        let mut c = Client::try_connect(port).unwrap();
        c.queue(&[b"GET", b"k"]);
        c.queue(&[b"PING"]);
        c.flush().unwrap();
        assert_eq!(c.try_read().unwrap(), Resp::Bulk(b"abc".to_vec()));
        assert_eq!(c.try_read().unwrap(), Resp::Nil);
        assert_eq!(c.try_read().unwrap(), Resp::err("OOM full"));
        assert_eq!(c.read(), Resp::Int(42));
        assert_eq!(
            c.read(),
            Resp::Array(vec![Resp::ok(), Resp::Bulk(Vec::new())])
        );
        server.join().unwrap();
        assert!(c.try_read().is_err());
    }

    #[test]
    fn raw_conn_returns_bytes_and_decoded() {
        let (port, server) = canned(b"*1\r\n$5\r\nHELLO\r\n", b"%1\r\n+a\r\n#t\r\n");
        let mut c = RawConn::connect(port).unwrap();
        let (decoded, raw) = c.call_decoded(&["HELLO"]).unwrap();
        assert_eq!(raw, b"%1\r\n+a\r\n#t\r\n");
        assert_eq!(
            decoded,
            Resp::Map(vec![(Resp::Simple("a".into()), Resp::Bool(true))])
        );
        server.join().unwrap();
    }
}
