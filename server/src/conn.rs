//! One client connection: socket, buffers, parser and what it is waiting for.

use crate::client::ClientState;
use crate::reply::Reply;
use crate::resp::Parser;
use mio::net::TcpStream;

pub struct Conn {
    pub sock: TcpStream,
    pub state: ClientState,
    pub out: Reply,
    /// Bytes of `out.buf` already written to the socket.
    pub written: usize,
    pub inbuf: Vec<u8>,
    pub inpos: usize,
    pub parser: Parser,
    /// The buffered input ends inside a request (a large one may exceed the read slice).
    pub incomplete: bool,
    /// A command parked until its keys are loaded.
    pub pending: Option<Vec<Vec<u8>>>,
    /// Keys of `pending` still loading.
    pub waiting_keys: usize,
    /// Keys of `pending` held in memory (not evictable) until it runs.
    pub pins: Vec<(u32, Vec<u8>)>,
    /// Waiting for a barrier or a clear to complete.
    pub waiting_io: bool,
    pub close_after_write: bool,
    pub writable_interest: bool,
    /// A blocking command (BLPOP…) waiting for its keys to change.
    pub blocked: Option<Vec<Vec<u8>>>,
    /// Since when a write has been held back because memory is full of dirty data.
    pub mem_wait_since: Option<std::time::Instant>,
    /// Flushes inside the EXEC just run that are not yet durable.
    pub exec_io: usize,
    /// Output from this offset on is held back (an EXEC reply waiting for `exec_io`).
    pub held_from: Option<usize>,
}

impl Conn {
    pub fn new(sock: TcpStream, state: ClientState) -> Self {
        Conn {
            sock,
            state,
            out: Reply::default(),
            written: 0,
            inbuf: Vec::with_capacity(16 * 1024),
            inpos: 0,
            parser: Parser::default(),
            incomplete: false,
            pending: None,
            waiting_keys: 0,
            pins: Vec::new(),
            waiting_io: false,
            close_after_write: false,
            writable_interest: false,
            blocked: None,
            mem_wait_since: None,
            exec_io: 0,
            held_from: None,
        }
    }

    /// Whether the client is waiting for disk work and must not run more commands yet.
    pub fn is_waiting(&self) -> bool {
        self.pending.is_some() || self.waiting_io || self.blocked.is_some()
    }

    /// Drops consumed input so the buffer does not grow with pipelined traffic.
    pub fn compact_input(&mut self) {
        if self.inpos > 0 {
            self.inbuf.drain(..self.inpos);
            self.inpos = 0;
        }
    }

    /// CLIENT LIST flags: `P` for a subscribed client (any kind of channel) comes first, as in
    /// Redis; `N` when there is no flag at all.
    fn flags(&self) -> String {
        let s = &self.state;
        let rest = if s.multi.is_some() {
            "x"
        } else if self.pending.is_some() || self.blocked.is_some() {
            "b"
        } else if s.monitor {
            "O"
        } else {
            ""
        };
        // Tracking flags (t, R, B) follow, as in Redis.
        let rest = format!("{rest}{}", s.tracking.list_flags());
        match (s.subscriptions() > 0, rest.as_str()) {
            (true, r) => format!("P{r}"),
            (false, "") => "N".into(),
            (false, r) => r.into(),
        }
    }

    pub fn client_list_line(&self, now: std::time::Instant) -> String {
        let s = &self.state;
        format!(
            "id={} addr={} laddr={} fd=0 name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={} obl={} redir={} resp={} cmd={} user={}",
            s.id,
            s.addr,
            s.laddr,
            s.name.as_ref().map(|n| String::from_utf8_lossy(n).into_owned()).unwrap_or_default(),
            now.duration_since(s.created).as_secs(),
            now.duration_since(s.last_interaction).as_secs(),
            self.flags(),
            s.db,
            s.channels.len(),
            s.patterns.len(),
            s.shard_channels.len(),
            s.multi.as_ref().map_or(-1, |m| m.len() as i64),
            self.inbuf.len() - self.inpos,
            self.out.buf.len() - self.written,
            s.tracking.redir_field(),
            if self.out.resp3 { 3 } else { 2 },
            s.last_cmd,
            s.user
        )
    }
}
