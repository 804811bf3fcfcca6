use super::*;

impl Server {
    pub(super) fn flush_all(&mut self) {
        let mut list = std::mem::take(&mut self.to_flush);
        list.sort_unstable();
        list.dedup();
        for t in list {
            self.flush(t);
        }
    }

    pub(crate) fn flush(&mut self, t: usize) {
        let Some(c) = self.conns.get_mut(&t) else {
            return;
        };
        let end = c.held_from.unwrap_or(c.out.buf.len());
        while c.written < end {
            match c.sock.write(&c.out.buf[c.written..end]) {
                Ok(0) => break,
                Ok(n) => c.written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    c.out.buf.clear();
                    c.written = 0;
                    c.close_after_write = true;
                    break;
                }
            }
        }
        if c.written == c.out.buf.len() {
            c.out.buf.clear();
            c.written = 0;
            if c.out.buf.capacity() > 1 << 20 {
                c.out.buf.shrink_to(64 * 1024);
            }
            if c.close_after_write {
                return self.close(t);
            }
        }
        // A client that does not read its replies (a slow subscriber, a stuck pipeline) is
        // disconnected rather than allowed to hold unbounded memory, as Redis does.
        let pending = c.out.buf.len() - c.written;
        let limit = if c.state.subscriptions() > 0 {
            32 << 20
        } else {
            1 << 30
        };
        if pending > limit {
            log::warn!(
                "closing client {}: output buffer over {limit} bytes",
                c.state.id
            );
            return self.close(t);
        }
        let want_write = c.written < end;
        if want_write != c.writable_interest {
            let interest = if want_write {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let _ = self
                .poll
                .registry()
                .reregister(&mut c.sock, Token(t), interest);
            c.writable_interest = want_write;
        }
    }

    pub(crate) fn close(&mut self, t: usize) {
        self.scripting.forget(t);
        let was_tracking = self.conns.get(&t).is_some_and(|c| c.state.tracking.on);
        if let Some(mut c) = self.conns.remove(&t) {
            let _ = self.poll.registry().deregister(&mut c.sock);
            self.ids.remove(&c.state.id);
            self.shared.pubsub.forget_client(&mut c.state);
            if matches!(c.wait, Wait::Keys { .. } | Wait::Memory { .. }) {
                self.unpark(t);
            }
            for (db, key) in std::mem::take(&mut c.pins) {
                self.engine.unpin(db, &key);
            }
            self.mem_waiters.retain(|&x| x != t);
        }
        self.tracking_closed(was_tracking);
        self.shared.connected_clients = self.conns.len();
        self.shared.parked_clients = self.conns.values().filter(|c| c.wait.loading()).count();
    }
}
