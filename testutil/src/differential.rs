//! Differential testing: the same commands go to a reference redis-server and to kvtier, and
//! the replies must match. [`Pair`] holds both servers and one connection to each;
//! [`differential`] runs a test body in RESP2 and RESP3 against kvtier with its default cache
//! and with a tiny one (values go through the disk store).

use crate::client::RawConn;
use crate::redis::RedisServer;
use crate::resp::Resp;
use crate::server::Server;

/// kvtier arguments of the tiny-cache runs: every value is written to the disk store at once
/// and most are evicted, so replies come from values loaded back.
pub const SMALL_CACHE: &[&str] = &["--maxmemory", "1mb", "--cache-flush-delay", "0"];

/// How many of the last commands a mismatch report lists.
const REPORT_TAIL: usize = 40;

/// Whether kvtier's reply `got` to `args` matches redis-server's `want` (both raw bytes).
pub type Same = fn(args: &[Vec<u8>], want: &[u8], got: &[u8]) -> bool;

/// Byte-for-byte equality, the default [`Same`].
pub fn exact(_args: &[Vec<u8>], want: &[u8], got: &[u8]) -> bool {
    want == got
}

/// A fresh redis-server and a fresh kvtier with one connection to each, and the commands sent
/// so far (for the mismatch report).
pub struct Pair {
    /// Names the run in reports (`"<name>, tiny cache, RESP3"`).
    pub label: String,
    redis: RawConn,
    kv: RawConn,
    same: Same,
    log: Vec<String>,
    kv_server: Server,
    redis_server: RedisServer,
}

impl Pair {
    /// Starts both servers (kvtier with `kv_args`) and connects; with `resp3`, switches both
    /// connections with `HELLO 3` (both must answer with a map). `None` when there is no
    /// redis-server (the reason is printed): the caller skips its comparisons.
    pub fn start(label: &str, kv_args: &[&str], resp3: bool) -> Option<Pair> {
        let Some(redis_server) = RedisServer::start(&[]) else {
            eprintln!("SKIPPED {label}: no redis-server to compare with");
            return None;
        };
        let kv_server = Server::start(kv_args);
        let mut p = Pair {
            label: label.to_string(),
            redis: RawConn::connect(redis_server.port).expect("connect to redis-server"),
            kv: RawConn::connect(kv_server.port).expect("connect to kvtier"),
            same: exact,
            log: Vec::new(),
            kv_server,
            redis_server,
        };
        if resp3 {
            for (who, conn) in [("redis-server", &mut p.redis), ("kvtier", &mut p.kv)] {
                let (r, _) = conn
                    .call_decoded(&["HELLO", "3"])
                    .unwrap_or_else(|e| panic!("[{label}] HELLO 3 on {who}: {e}"));
                assert!(matches!(r, Resp::Map(_)), "[{label}] {who} HELLO 3: {r:?}");
            }
        }
        Some(p)
    }

    /// Compares replies with `same` instead of byte for byte (e.g. to mask timestamps).
    pub fn set_same(&mut self, same: Same) {
        self.same = same;
    }

    pub fn kv_server(&self) -> &Server {
        &self.kv_server
    }

    pub fn redis_port(&self) -> u16 {
        self.redis_server.port
    }

    pub fn kv_port(&self) -> u16 {
        self.kv_server.port
    }

    /// How many commands went to both.
    pub fn commands(&self) -> usize {
        self.log.len()
    }

    /// Sends one request to redis-server only (not compared); returns its decoded and raw
    /// reply, or the connection's error.
    pub fn redis_call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> std::io::Result<(Resp, Vec<u8>)> {
        self.redis.call_decoded(args)
    }

    /// Sends one request to kvtier only (not compared).
    pub fn kv_call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> std::io::Result<(Resp, Vec<u8>)> {
        self.kv.call_decoded(args)
    }

    /// Sends `args` to redis-server, then to kvtier; returns redis-server's reply if the two
    /// are the same (by the pair's [`Same`]), else a description of the difference. Panics if
    /// a connection fails.
    pub fn compare<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Vec<u8>, String> {
        let args: Vec<Vec<u8>> = args.iter().map(|a| a.as_ref().to_vec()).collect();
        let line = args.iter().map(|a| show(a)).collect::<Vec<_>>().join(" ");
        self.log.push(line.clone());
        let want = self
            .redis
            .call(&args)
            .unwrap_or_else(|e| panic!("[{}] redis-server: {e} for: {line}", self.label));
        let got = self
            .kv
            .call(&args)
            .unwrap_or_else(|e| panic!("[{}] kvtier: {e} for: {line}", self.label));
        if (self.same)(&args, &want, &got) {
            Ok(want)
        } else {
            Err(format!(
                "{line}\n  redis:  {}\n  kvtier: {}",
                show(&want),
                show(&got)
            ))
        }
    }

    /// Sends to both; panics if the replies differ, listing the last commands. Returns
    /// redis-server's reply.
    pub fn check<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Vec<u8> {
        match self.compare(args) {
            Ok(want) => want,
            Err(diff) => {
                let tail = &self.log[self.log.len().saturating_sub(REPORT_TAIL)..];
                panic!(
                    "[{}] reply mismatch for: {diff}\nlast commands:\n{}",
                    self.label,
                    tail.join("\n")
                );
            }
        }
    }

    /// [`Pair::check`] of a command given as strings.
    pub fn c(&mut self, args: &[&str]) -> Vec<u8> {
        self.check(args)
    }
}

/// Runs `body` on fresh servers four times: kvtier with its default cache and with
/// [`SMALL_CACHE`], each in RESP2 and RESP3. Without redis-server it prints why and returns.
pub fn differential(name: &str, body: impl Fn(&mut Pair)) {
    differential_with(name, exact, body);
}

/// [`differential`] with replies compared by `same`.
pub fn differential_with(name: &str, same: Same, body: impl Fn(&mut Pair)) {
    for small in [false, true] {
        for resp3 in [false, true] {
            let label = format!(
                "{name}, {}, {}",
                if small { "tiny cache" } else { "default cache" },
                if resp3 { "RESP3" } else { "RESP2" }
            );
            let Some(mut p) = Pair::start(&label, if small { SMALL_CACHE } else { &[] }, resp3)
            else {
                return;
            };
            p.set_same(same);
            body(&mut p);
            eprintln!("{}: {} commands compared", p.label, p.commands());
        }
    }
}

/// The seeds of the seeded-random differential sequences: `KVTIER_DIFF_SEEDS`
/// (comma-separated), default `1,2,3`.
pub fn seeds() -> Vec<u64> {
    std::env::var("KVTIER_DIFF_SEEDS")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 2, 3])
}

/// Bytes for a report on one line: printable ASCII as is, CRLF as a space, other bytes
/// escaped; cut after 800 bytes.
pub fn show(b: &[u8]) -> String {
    let mut s = String::new();
    let mut i = 0;
    while i < b.len() && i < 800 {
        match b[i] {
            b'\r' if b.get(i + 1) == Some(&b'\n') => {
                s.push(' ');
                i += 1;
            }
            c @ b' '..=b'~' => s.push(c as char),
            c => s.push_str(&format!("\\x{c:02x}")),
        }
        i += 1;
    }
    if b.len() > 800 {
        s.push_str(&format!("… ({} bytes)", b.len()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_is_one_line() {
        assert_eq!(show(b"*1\r\n$2\r\nab\r\n"), "*1 $2 ab ");
        assert_eq!(show(b"a\nb\x00"), "a\\x0ab\\x00");
        let long = vec![b'x'; 900];
        assert!(show(&long).ends_with("… (900 bytes)"));
    }

    #[test]
    fn seeds_default() {
        if std::env::var_os("KVTIER_DIFF_SEEDS").is_none() {
            assert_eq!(seeds(), vec![1, 2, 3]);
        }
    }
}
