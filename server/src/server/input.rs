use super::*;

impl Server {
    /// Reads what client `t` sent and runs it. `peer_closed`: the readiness event said the
    /// peer closed its side, so reading goes on to the end of the stream, now or in a later
    /// slice (no later event will tell).
    pub(super) fn on_readable(&mut self, t: usize, peer_closed: bool) {
        let limit = self.shared.config.settings().client_query_buffer_limit as usize;
        self.more_input.retain(|&x| x != t);
        let mut closed = false;
        let mut more = false;
        // One buffer for every read, zeroed once (a fresh 16 KB array per call was a memset
        // per request).
        let mut chunk = std::mem::take(&mut self.read_buf);
        chunk.resize(READ_CHUNK, 0);
        let mut read = 0;
        let drain = match self.conns.get_mut(&t) {
            Some(c) => {
                c.peer_closed |= peer_closed;
                c.peer_closed
            }
            None => false,
        };
        loop {
            let Some(conn) = self.conns.get_mut(&t) else {
                self.read_buf = chunk;
                return;
            };
            let unparsed = conn.inbuf.len() - conn.inpos;
            // At most a slice per event-loop pass, so the memory limit and other clients are
            // looked at between slices; the rest stays in the socket (and TCP slows the
            // sender). A single request larger than a slice is read on to its end.
            let big_request = conn.incomplete && unparsed >= INPUT_SLICE.min(limit);
            if !big_request && (unparsed >= INPUT_SLICE.min(limit) || read >= INPUT_SLICE) {
                more = true;
                break;
            }
            match conn.sock.read(&mut chunk) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => {
                    read += n;
                    conn.inbuf.extend_from_slice(&chunk[..n]);
                    conn.state.last_interaction = self.pass_now;
                    if conn.inbuf.len() - conn.inpos + conn.parser.held() > limit {
                        log::warn!("closing client {}: query buffer over limit", conn.state.id);
                        closed = true;
                        break;
                    }
                    if conn.inbuf.len() - conn.inpos >= INPUT_SLICE {
                        self.process_input(t);
                    }
                    if n < chunk.len() && !drain {
                        // The socket had less than asked: it is empty now, and more data will
                        // raise a new readiness event. Saves one read() (EAGAIN) per request.
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        self.read_buf = chunk;
        if more {
            self.more_input.push(t);
        }
        self.process_input(t);
        if closed {
            // Replies to what was already read are still flushed when possible.
            self.flush(t);
            self.close(t);
        }
    }

    /// Whether a client has unread input and is free to run it.
    pub(super) fn input_ready(&self) -> bool {
        self.more_input.iter().any(|t| {
            self.conns
                .get(t)
                .is_some_and(|c| !c.is_waiting() && !self.shutting_down)
        })
    }

    /// Reads the next slice of input of clients that stopped at `INPUT_SLICE` and may run more.
    pub(super) fn read_more(&mut self) {
        if self.more_input.is_empty() || self.shutting_down {
            return;
        }
        let ready: Vec<usize> = self
            .more_input
            .iter()
            .copied()
            .filter(|t| self.conns.get(t).is_some_and(|c| !c.is_waiting()))
            .collect();
        for t in ready {
            self.on_readable(t, false);
        }
    }

    /// Runs as many complete requests from the client's buffer as it may.
    pub(super) fn process_input(&mut self, t: usize) {
        let max_bulk = self.shared.config.settings().proto_max_bulk_len as usize;
        // Only this client's commands, back to back, share clock reads (see `clock_mark`).
        self.clock_mark = None;
        self.chain_clock = true;
        self.warm_keys(t);
        loop {
            let Some(conn) = self.conns.get_mut(&t) else {
                return;
            };
            if conn.is_waiting() || conn.close_after_write || self.shutting_down {
                break;
            }
            let mut pos = conn.inpos;
            conn.parser.unauthenticated = !conn.state.authenticated;
            let parsed = conn.parser.parse(&conn.inbuf, &mut pos, max_bulk);
            conn.inpos = pos;
            match parsed {
                Ok(Some(args)) if args.is_empty() => continue,
                Ok(Some(args)) => {
                    conn.incomplete = false;
                    self.handle(t, args)
                }
                Ok(None) => {
                    // Part of a request is buffered: reading must go on until it is whole.
                    conn.incomplete = conn.inpos < conn.inbuf.len();
                    break;
                }
                Err(e) => {
                    conn.out.error(&format!("ERR Protocol error: {}", e.0));
                    conn.close_after_write = true;
                    self.shared.total_error_replies += 1;
                    break;
                }
            }
        }
        self.chain_clock = false;
        self.clock_mark = None;
        if let Some(conn) = self.conns.get_mut(&t) {
            conn.compact_input();
        }
        self.to_flush.push(t);
    }

    /// Warms the cache lines of the keys of the requests in the client's buffer (see
    /// [`kvtier_core::Engine::warm`]): under random keys most of a pipelined command's time was
    /// waiting for memory, one key at a time.
    fn warm_keys(&self, t: usize) {
        let Some(conn) = self.conns.get(&t) else {
            return;
        };
        let db = conn.state.db;
        // A lone request (no pipeline) is not warmed: its command looks its key up at once.
        // So the first key waits for a second request. Nor is a key the request before had
        // (a pipeline on one hot key).
        let mut first: Option<&[u8]> = None;
        let mut last: Option<&[u8]> = None;
        let mut seen = 0;
        crate::resp::second_args(&conn.inbuf, conn.inpos, WARM_REQUESTS, |key| {
            seen += 1;
            if seen == 1 {
                first = Some(key);
                return;
            }
            for k in first.take().into_iter().chain([key]) {
                if last != Some(k) {
                    self.engine.warm(db, k);
                    last = Some(k);
                }
            }
        });
    }
}

/// Most requests of one buffer [`Server::warm_keys`] looks at: more than a pipeline's worth of
/// keys would evict each other's lines again before their commands run.
const WARM_REQUESTS: usize = 64;
