//! One client connection: socket, buffers, parser and what it is waiting for.

use crate::client::ClientState;
use crate::reply::Reply;
use crate::resp::Parser;
use mio::net::TcpStream;

/// What a client waits for before its next command may run: one state at a time, so the loop
/// asks one question (`is_waiting`) and every transition is an assignment of this.
#[derive(Debug, Default)]
pub enum Wait {
    /// Free to run its next command.
    #[default]
    Idle,
    /// `cmd` waits for `missing` keys to be loaded; with 0, for a CLIENT PAUSE or a pending
    /// shutdown to end (or it is about to run).
    Keys { cmd: Vec<Vec<u8>>, missing: usize },
    /// `cmd`, a write, is held by flow control since `since` until memory is freed.
    Memory {
        cmd: Vec<Vec<u8>>,
        since: std::time::Instant,
    },
    /// The reply waits for disk work: a barrier (SAVE, SHUTDOWN), a clear (FLUSH*), the store
    /// pages of a keyspace scan, or the flushes of the EXEC or script just run (`exec_io`).
    Io,
    /// A blocking command (BLPOP…) waiting for its keys to change.
    Blocked { cmd: Vec<Vec<u8>> },
}

impl Wait {
    /// The command waiting for its keys, if any.
    pub fn keys_cmd(&self) -> Option<&[Vec<u8>]> {
        match self {
            Wait::Keys { cmd, .. } => Some(cmd),
            _ => None,
        }
    }

    /// Whether it waits for keys still loading.
    pub fn loading(&self) -> bool {
        matches!(self, Wait::Keys { missing, .. } if *missing > 0)
    }
}

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
    /// The peer closed its side: reads go on to the end of the stream (no later readiness
    /// event will announce it; see `Server::on_readable`).
    pub peer_closed: bool,
    /// What the client waits for before its next command may run.
    pub wait: Wait,
    /// Keys of a waiting command held in memory (not evictable) until it runs: kept through a
    /// wait for memory, so eviction cannot send the command back to loading them.
    pub pins: Vec<(u32, Vec<u8>)>,
    pub close_after_write: bool,
    pub writable_interest: bool,
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
            peer_closed: false,
            wait: Wait::Idle,
            pins: Vec::new(),
            close_after_write: false,
            writable_interest: false,
            exec_io: 0,
            held_from: None,
        }
    }

    /// Whether the client is waiting for disk work and must not run more commands yet.
    pub fn is_waiting(&self) -> bool {
        !matches!(self.wait, Wait::Idle)
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
        } else if matches!(
            self.wait,
            Wait::Keys { .. } | Wait::Memory { .. } | Wait::Blocked { .. }
        ) {
            "b"
        } else if s.monitor {
            "O"
        } else {
            ""
        };
        // Tracking flags (t, R, B) follow, then no-evict (e), as in Redis.
        let e = if s.no_evict { "e" } else { "" };
        let rest = format!("{rest}{}{e}", s.tracking.list_flags());
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
